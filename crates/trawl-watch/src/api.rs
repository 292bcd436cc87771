//! The HTTP side: the registry's webhook and the REST API.
//!
//! | route | auth | answer |
//! |---|---|---|
//! | `POST /events` | `Authorization: Bearer WEBHOOK_TOKEN` | 202 `{"queued", "recorded", "forgotten", "ignored", "unknown_registry"}`; 503 with `Retry-After` and `{"error", "recorded", "queued", "deferred"}` when the scan queue filled before the last event (the events before it are recorded); 400 for a body that is no envelope |
//! | `GET /v1/images` | `Authorization: Bearer TOKEN` | one row per repository and tag (`tag: null` for an image pushed by digest only) |
//! | `GET /v1/images/{digest}` | same | the image: tags, state, verdict, counts, scan history |
//! | `GET /v1/images/{digest}/findings` | same | its findings, filtered by `severity`, `fix_state`, `package`, `id`; with `suppressed=true`, those the policy suppresses instead |
//! | `GET /healthz` | none | `{"status": "ok", "queued", "running", "advisory_db", "policy", "unknown_registry_events", "rescanned", "process"}`: the queue is the store's (all processes'); the rest this process's (`rescanned`: images it matched again since it started) |
//!
//! A missing or wrong token is 401, an unknown digest 404, an image not
//! scanned yet 409. Errors are `{"error": "..."}`. Stored scan errors are
//! served with URL secrets redacted ([`redact_urls`]), those stored by older
//! versions too.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tracing::{debug, info};
use trawl::classify::{FixStateKind, Summary};
use trawl::{Finding, Report, Severity};

use crate::events::{Classified, Deleted, Envelope, Kind, Recorded};
use crate::redact::redact_urls;
use crate::service::{Shared, now};
use crate::store::{ImageRecord, StoreError};

/// Seconds a registry is asked to wait when the queue is full.
const RETRY_AFTER_SECS: u32 = 10;

/// The routes, over the shared state.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/events", post(events))
        .route("/healthz", get(healthz))
        .route("/v1/images", get(list_images))
        .route("/v1/images/{digest}", get(image))
        .route("/v1/images/{digest}/findings", get(findings))
        .with_state(shared)
}

/// An error answer: `{"error": message}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "results store");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "results store failed")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(serde_json::json!({"error": self.message})),
        )
            .into_response();
        let headers = response.headers_mut();
        match self.status {
            StatusCode::UNAUTHORIZED => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            }
            _ => {}
        }
        response
    }
}

/// Whether the request carries `Authorization: Bearer <expected>`.
fn authorize(headers: &HeaderMap, expected: &str) -> Result<(), ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    match given {
        Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong bearer token",
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "an Authorization: Bearer token is required",
        )),
    }
}

/// Compares without stopping at the first difference, so the time taken
/// does not tell how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A request with the API token.
struct ApiAuth;

impl FromRequestParts<Arc<Shared>> for ApiAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        authorize(&parts.headers, &shared.config.api_token).map(|()| ApiAuth)
    }
}

/// A request with the webhook token.
struct WebhookAuth;

impl FromRequestParts<Arc<Shared>> for WebhookAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        authorize(&parts.headers, &shared.config.webhook_token).map(|()| WebhookAuth)
    }
}

/// `POST /events`: a notification envelope from the registry.
async fn events(
    _: WebhookAuth,
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let envelope: Envelope = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("not a notification envelope: {e}"),
        )
    })?;
    let arrived = now();
    let mut records = Vec::new();
    let (mut ignored, mut unknown_registry) = (0, 0);
    for event in &envelope.events {
        match event.classify(&shared.registry_hosts, arrived) {
            Classified::Record(record) => records.push(record),
            Classified::Ignored(why) => {
                debug!(id = ?event.id, action = ?event.action, %why, "event ignored");
                ignored += 1;
            }
            Classified::UnknownRegistry(host) => {
                shared.refuse_unknown_registry(&event.id, &host);
                unknown_registry += 1;
            }
        }
    }
    if records.is_empty() {
        return Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({
                "queued": 0, "recorded": 0, "forgotten": 0, "ignored": ignored,
                "unknown_registry": unknown_registry,
            })),
        )
            .into_response());
    }
    for record in &records {
        match record {
            Recorded::Image(image) => info!(
                event = match image.kind {
                    Kind::Push => "push",
                    Kind::Pull => "pull",
                },
                repository = %image.repository,
                tag = image.tag.as_deref().unwrap_or(""),
                digest = %image.digest,
                "event"
            ),
            Recorded::Delete(deletion) => {
                let (digest, tag) = match &deletion.deleted {
                    Deleted::Manifest(digest) => (digest.as_str(), ""),
                    Deleted::Tag(tag) => ("", tag.as_str()),
                };
                info!(event = "delete", repository = %deletion.repository, tag, digest, "event")
            }
        }
    }
    let max_pending = shared.config.max_pending;
    let applied = shared.store.apply(records, max_pending, arrived).await?;
    if applied.recorded > 0 {
        // (A job may be new even when deletions make the net count zero.)
        shared.work.notify_waiters();
    }
    if applied.forgotten > 0 {
        info!(
            images = applied.forgotten,
            "deleted from their last repository: forgotten"
        );
    }
    if applied.deferred > 0 {
        info!(
            pending = applied.pending,
            recorded = applied.recorded,
            deferred = applied.deferred,
            "scan queue full: asking the registry to send the envelope again"
        );
        let response = (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS))],
            Json(serde_json::json!({
                "error": format!("{} scans are waiting; retry later", applied.pending),
                "recorded": applied.recorded, "queued": applied.queued,
                "deferred": applied.deferred,
            })),
        )
            .into_response();
        return Ok(response);
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({
            "queued": applied.queued, "recorded": applied.recorded,
            "forgotten": applied.forgotten, "ignored": ignored,
            "unknown_registry": unknown_registry,
        })),
    )
        .into_response())
}

/// `GET /healthz`.
async fn healthz(State(shared): State<Arc<Shared>>) -> Result<Response, ApiError> {
    let (queued, running) = shared
        .store
        .queue_lengths()
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let target = shared.ids.read().unwrap_or_else(|e| e.into_inner()).clone();
    let counter = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    Ok(Json(serde_json::json!({
        "status": "ok", "queued": queued, "running": running,
        "advisory_db": target.advisory_db, "policy": target.policy,
        "unknown_registry_events": counter(&shared.unknown_registry_events),
        "rescanned": counter(&shared.rescanned), "process": shared.owner,
    }))
    .into_response())
}

/// Finding counts of an image's report (those that count toward the verdict).
#[derive(Debug, Serialize)]
struct Counts {
    findings: usize,
    fixable: usize,
    suppressed: usize,
    by_severity: BTreeMap<Severity, usize>,
    by_fix_state: BTreeMap<FixStateKind, usize>,
}

fn counts(image: &ImageRecord) -> Option<Counts> {
    let summary: Summary = serde_json::from_str(image.summary.as_deref()?).ok()?;
    Some(Counts {
        findings: summary.findings,
        fixable: summary.fixable,
        suppressed: summary.suppressed,
        by_severity: summary.by_severity,
        by_fix_state: summary.by_fix_state,
    })
}

/// Unix seconds as RFC 3339 (UTC).
fn time(secs: Option<i64>) -> Option<String> {
    chrono::DateTime::from_timestamp(secs?, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// One row of `GET /v1/images`.
#[derive(Debug, Serialize)]
struct ImageRow {
    repository: String,
    tag: Option<String>,
    digest: String,
    state: &'static str,
    verdict: Option<String>,
    counts: Option<Counts>,
    scans: i64,
    rescans: i64,
    last_scanned: Option<String>,
    last_pushed: Option<String>,
    last_pulled: Option<String>,
}

/// `GET /v1/images`.
async fn list_images(
    _: ApiAuth,
    State(shared): State<Arc<Shared>>,
) -> Result<Json<Vec<ImageRow>>, ApiError> {
    let images = shared.store.images().await?;
    let mut rows = Vec::new();
    for image in images {
        for (repository, tag) in &image.tags {
            rows.push(ImageRow {
                repository: repository.clone(),
                tag: tag.clone(),
                digest: image.digest.clone(),
                state: image.state.as_str(),
                verdict: image.verdict.clone(),
                counts: counts(&image),
                scans: image.scans,
                rescans: image.rescans,
                last_scanned: time(image.last_scanned),
                last_pushed: time(image.last_pushed),
                last_pulled: time(image.last_pulled),
            });
        }
    }
    rows.sort_by(|a, b| {
        (&a.repository, &a.tag, &a.digest).cmp(&(&b.repository, &b.tag, &b.digest))
    });
    Ok(Json(rows))
}

/// A (repository, tag) pair.
#[derive(Debug, Serialize)]
struct TagRef {
    repository: String,
    tag: Option<String>,
}

/// `GET /v1/images/{digest}`.
#[derive(Debug, Serialize)]
struct ImageDetail {
    digest: String,
    registry: String,
    media_type: String,
    tags: Vec<TagRef>,
    state: &'static str,
    verdict: Option<String>,
    verdict_reason: Option<String>,
    counts: Option<Counts>,
    advisory_db: Option<String>,
    policy: Option<String>,
    error: Option<String>,
    job: Option<JobDetail>,
    scans: i64,
    rescans: i64,
    failures: i64,
    last_scanned: Option<String>,
    last_matched: Option<String>,
    last_pushed: Option<String>,
    last_pulled: Option<String>,
    last_failed: Option<String>,
}

/// The scan job of an image, while it has one.
#[derive(Debug, Serialize)]
struct JobDetail {
    /// Crashes charged to it (its process died while it ran alone).
    attempts: i64,
    /// A process died while it ran, so it runs alone.
    after_crash: bool,
}

async fn image(
    _: ApiAuth,
    State(shared): State<Arc<Shared>>,
    Path(digest): Path<String>,
) -> Result<Json<ImageDetail>, ApiError> {
    let image = shared
        .store
        .image(&digest)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such image"))?;
    Ok(Json(ImageDetail {
        counts: counts(&image),
        digest: image.digest,
        registry: image.registry,
        media_type: image.media_type,
        tags: image
            .tags
            .into_iter()
            .map(|(repository, tag)| TagRef { repository, tag })
            .collect(),
        state: image.state.as_str(),
        verdict: image.verdict,
        verdict_reason: image.verdict_reason,
        advisory_db: image.advisory_db,
        policy: image.policy,
        error: image.error.as_deref().map(redact_urls),
        job: image.job.map(|job| JobDetail {
            attempts: job.attempts,
            after_crash: job.after_crash,
        }),
        scans: image.scans,
        rescans: image.rescans,
        failures: image.failures,
        last_scanned: time(image.last_scanned),
        last_matched: time(image.last_matched),
        last_pushed: time(image.last_pushed),
        last_pulled: time(image.last_pulled),
        last_failed: time(image.last_failed),
    }))
}

/// Query parameters of `GET /v1/images/{digest}/findings`; all optional,
/// all must hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FindingFilter {
    /// At or above this severity, in the order unknown < negligible < low <
    /// medium < high < critical (so `unknown` keeps everything and `low`
    /// drops findings of unknown severity).
    severity: Option<String>,
    /// `fixed`, `unfixed` or `will_not_fix`.
    fix_state: Option<String>,
    /// The binary package or the source package it was built from.
    package: Option<String>,
    /// The finding's id or any of its aliases (case-insensitive).
    id: Option<String>,
    /// `true`: the findings the policy suppresses (each with its reason)
    /// instead of those that count.
    #[serde(default)]
    suppressed: bool,
}

impl FindingFilter {
    /// The findings that pass, or why the filter is invalid.
    fn apply(&self, findings: Vec<Finding>) -> Result<Vec<Finding>, String> {
        let severity = self
            .severity
            .as_deref()
            .map(Severity::from_str)
            .transpose()
            .map_err(|e| e.to_string())?;
        let fix_state = match self.fix_state.as_deref() {
            None => None,
            Some(s) => Some(
                [
                    FixStateKind::Fixed,
                    FixStateKind::Unfixed,
                    FixStateKind::WillNotFix,
                ]
                .into_iter()
                .find(|k| k.as_str() == s)
                .ok_or_else(|| {
                    format!("unknown fix_state {s:?} (fixed, unfixed or will_not_fix)")
                })?,
            ),
        };
        Ok(findings
            .into_iter()
            .filter(|f| severity.is_none_or(|min| f.severity >= min))
            .filter(|f| fix_state.is_none_or(|k| f.fix_state == k))
            .filter(|f| {
                self.package
                    .as_deref()
                    .is_none_or(|p| f.package == p || f.source_name == p)
            })
            .filter(|f| {
                self.id.as_deref().is_none_or(|id| {
                    f.id.eq_ignore_ascii_case(id)
                        || f.aliases.iter().any(|a| a.eq_ignore_ascii_case(id))
                })
            })
            .collect())
    }
}

/// `GET /v1/images/{digest}/findings`.
async fn findings(
    _: ApiAuth,
    State(shared): State<Arc<Shared>>,
    Path(digest): Path<String>,
    filter: Result<Query<FindingFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Finding>>, ApiError> {
    let Query(filter) =
        filter.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let report = shared
        .store
        .report(&digest)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such image"))?
        .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "not scanned yet"))?;
    let report: Report = serde_json::from_str(&report).map_err(|e| {
        tracing::error!(error = %e, "stored report unreadable");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "stored report unreadable",
        )
    })?;
    let findings = if filter.suppressed {
        report.suppressed
    } else {
        report.findings
    };
    filter
        .apply(findings)
        .map(Json)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        let mut headers = HeaderMap::new();
        assert!(authorize(&headers, "s3cret").is_err());
        for (value, ok) in [
            ("Bearer s3cret", true),
            ("bearer s3cret", true),
            ("Bearer s3cre", false),
            ("Bearer s3cret2", false),
            ("Basic s3cret", false),
            ("s3cret", false),
        ] {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            assert_eq!(authorize(&headers, "s3cret").is_ok(), ok, "{value}");
        }
    }
}
