//! The HTTP side: the registry's webhook and the REST API.
//!
//! | route | auth | answer |
//! |---|---|---|
//! | `POST /events` | `Authorization: Bearer WEBHOOK_TOKEN` | 202 `{"queued", "recorded", "forgotten", "ignored", "unknown_registry"}`; 503 with `Retry-After` and `{"error", "recorded", "queued", "deferred"}` when the scan queue filled before the last event (the events before it are recorded); 400 for a body that is no envelope |
//! | `GET /v1/images` | `Authorization: Bearer TOKEN` | one row per repository and tag (`tag: null` for an image pushed by digest only) |
//! | `GET /v1/images/{digest}` | same | the image: tags, state, verdict, counts, scan history |
//! | `GET /v1/images/{digest}/findings` | same | its findings, filtered by `severity`, `fix_state`, `package`, `id`; with `suppressed=true`, those the policy suppresses instead |
//! | `GET /healthz` | none | `{"status": "ok", "queued", "running", "advisory_db", "policy", "unknown_registry_events", "rescanned", "process", "notifications"}`: the queue and the notification outbox (`{"targets", "pending", "delivered", "given_up"}`) are the store's (all processes'); the rest this process's (`rescanned`: images it matched again since it started) |
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
use trawl::{Finding, Severity};

use crate::events::{Classified, Deleted, Envelope, Kind, Recorded};
use crate::redact::redact_urls;
use crate::service::{Shared, now};
use crate::store::{
    AffectedImage, Cursor, FindingQuery, ImageRecord, RegistryFinding, RegistrySummary, Scope,
    StoreError, TagName, VulnerabilityRow,
};

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
        .route("/v1/vulnerabilities", get(vulnerabilities))
        .route("/v1/vulnerabilities/{id}", get(vulnerability))
        .route("/v1/findings", get(registry_findings))
        .route("/v1/summary", get(summary))
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

/// A request with an API token, and what that token sees.
struct ApiAuth(Scope);

impl FromRequestParts<Arc<Shared>> for ApiAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let config = &shared.config;
        // Every token is compared (in constant time), so how long the
        // check takes does not tell which one nearly matched.
        let unscoped = authorize(&parts.headers, &config.api_token);
        let mut found = unscoped.as_ref().ok().map(|()| Scope::All);
        for scoped in &config.scoped_tokens {
            if authorize(&parts.headers, &scoped.token).is_ok() && found.is_none() {
                found = Some(scoped.scope.clone());
            }
        }
        match (found, unscoped) {
            (Some(scope), _) => Ok(ApiAuth(scope)),
            // Its error says whether a token was given at all.
            (None, Err(e)) => Err(e),
            (None, Ok(())) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "wrong bearer token",
            )),
        }
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
    let outbox = shared
        .store
        .outbox_counts()
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let target = shared.ids.read().unwrap_or_else(|e| e.into_inner()).clone();
    let counter = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    Ok(Json(serde_json::json!({
        "status": "ok", "queued": queued, "running": running,
        "advisory_db": target.advisory_db, "policy": target.policy,
        "unknown_registry_events": counter(&shared.unknown_registry_events),
        "rescanned": counter(&shared.rescanned), "process": shared.owner,
        "notifications": {
            "targets": shared.config.notify.targets.len(),
            "pending": outbox.pending, "delivered": outbox.delivered, "given_up": outbox.given_up,
        },
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

/// `GET /v1/images` (JSON or CSV).
async fn list_images(
    ApiAuth(scope): ApiAuth,
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let images = shared.store.images().await?;
    let mut rows = Vec::new();
    for image in images {
        for (repository, tag) in &image.tags {
            if !scope.covers(repository) {
                continue;
            }
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
    if !wants_csv(&headers) {
        return Ok(Json(rows).into_response());
    }
    let mut csv = Csv::new(&[
        "repository",
        "tag",
        "digest",
        "state",
        "verdict",
        "findings",
        "fixable",
        "scans",
        "rescans",
        "last_scanned",
        "last_pushed",
        "last_pulled",
    ]);
    for r in rows {
        let counts = r.counts.as_ref();
        csv.row([
            r.repository,
            r.tag.unwrap_or_default(),
            r.digest,
            r.state.to_string(),
            r.verdict.unwrap_or_default(),
            counts.map(|c| c.findings.to_string()).unwrap_or_default(),
            counts.map(|c| c.fixable.to_string()).unwrap_or_default(),
            r.scans.to_string(),
            r.rescans.to_string(),
            r.last_scanned.unwrap_or_default(),
            r.last_pushed.unwrap_or_default(),
            r.last_pulled.unwrap_or_default(),
        ]);
    }
    Ok(csv.into_response())
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

/// The image, with only the tags `scope` covers; 404 when it has none (an
/// image out of scope is answered as one that does not exist).
async fn visible_image(
    shared: &Shared,
    scope: &Scope,
    digest: &str,
) -> Result<ImageRecord, ApiError> {
    let mut image = shared
        .store
        .image(digest)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such image"))?;
    if *scope != Scope::All {
        image
            .tags
            .retain(|(repository, _)| scope.covers(repository));
        if image.tags.is_empty() {
            return Err(ApiError::new(StatusCode::NOT_FOUND, "no such image"));
        }
    }
    Ok(image)
}

async fn image(
    ApiAuth(scope): ApiAuth,
    State(shared): State<Arc<Shared>>,
    Path(digest): Path<String>,
) -> Result<Json<ImageDetail>, ApiError> {
    let image = visible_image(&shared, &scope, &digest).await?;
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
        let severity = parse_severity(self.severity.as_deref())?;
        let fix_state = parse_fix_state(self.fix_state.as_deref())?;
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

fn parse_severity(text: Option<&str>) -> Result<Option<Severity>, String> {
    text.map(Severity::from_str)
        .transpose()
        .map_err(|e| e.to_string())
}

fn parse_fix_state(text: Option<&str>) -> Result<Option<FixStateKind>, String> {
    match text {
        None => Ok(None),
        Some(s) => [
            FixStateKind::Fixed,
            FixStateKind::Unfixed,
            FixStateKind::WillNotFix,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .map(Some)
        .ok_or_else(|| format!("unknown fix_state {s:?} (fixed, unfixed or will_not_fix)")),
    }
}

/// `GET /v1/images/{digest}/findings`.
async fn findings(
    ApiAuth(scope): ApiAuth,
    State(shared): State<Arc<Shared>>,
    Path(digest): Path<String>,
    filter: Result<Query<FindingFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Finding>>, ApiError> {
    let Query(filter) =
        filter.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    visible_image(&shared, &scope, &digest).await?;
    let stored = shared
        .store
        .report(&digest)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such image"))?
        .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "not scanned yet"))?;
    let report = crate::service::current_report(&shared, &digest, stored)
        .await
        .map_err(|e| {
            tracing::error!(error = %crate::redact::error_chain(&e), "stored report unreadable");
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

/// Query parameters of the registry-wide endpoints; all optional, all
/// must hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFilter {
    /// At or above this severity (as for an image's findings).
    severity: Option<String>,
    /// `fixed`, `unfixed` or `will_not_fix`.
    fix_state: Option<String>,
    /// The binary package or its source package.
    package: Option<String>,
    /// `Debian:12`, or `Debian` for every release.
    ecosystem: Option<String>,
    /// Images in a repository under this prefix.
    repository: Option<String>,
    /// The layer digest that introduced the package.
    layer: Option<String>,
    /// The id or any alias (case-insensitive).
    id: Option<String>,
    /// Images pushed this recently (`30d`, `12h`, …).
    pushed_within: Option<String>,
    /// Images pulled this recently.
    pulled_within: Option<String>,
    /// `GET /v1/findings`: findings per page (default 100, at most 1000).
    limit: Option<usize>,
    /// `GET /v1/findings`: the `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Findings per page of `GET /v1/findings` by default, and at most.
const PAGE_DEFAULT: usize = 100;
const PAGE_MAX: usize = 1000;

impl RegistryFilter {
    fn query(&self, scope: Scope) -> Result<FindingQuery, ApiError> {
        let bad = |e: String| ApiError::new(StatusCode::BAD_REQUEST, e);
        let since = |within: &Option<String>, name: &str| -> Result<Option<i64>, ApiError> {
            within
                .as_deref()
                .map(|w| {
                    let d = crate::config::parse_duration(w)
                        .map_err(|e| bad(format!("{name}: {e}")))?;
                    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                    Ok(now().saturating_sub(secs))
                })
                .transpose()
        };
        Ok(FindingQuery {
            scope,
            severity: parse_severity(self.severity.as_deref()).map_err(bad)?,
            fix_state: parse_fix_state(self.fix_state.as_deref()).map_err(bad)?,
            package: self.package.clone(),
            ecosystem: self.ecosystem.clone(),
            repository: self
                .repository
                .as_deref()
                .map(|r| r.trim_end_matches('/').to_string())
                .filter(|r| !r.is_empty()),
            layer: self.layer.clone(),
            id: self.id.clone(),
            pushed_since: since(&self.pushed_within, "pushed_within")?,
            pulled_since: since(&self.pulled_within, "pulled_within")?,
        })
    }
}

fn registry_filter(
    filter: Result<Query<RegistryFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<RegistryFilter, ApiError> {
    filter
        .map(|Query(f)| f)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))
}

/// `GET /v1/vulnerabilities` (JSON or CSV): one row per vulnerability id.
async fn vulnerabilities(
    ApiAuth(scope): ApiAuth,
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    filter: Result<Query<RegistryFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let filter = registry_filter(filter)?;
    if filter.limit.is_some() || filter.cursor.is_some() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "vulnerabilities are not paged (limit and cursor are for /v1/findings)",
        ));
    }
    let rows = shared.store.vulnerabilities(&filter.query(scope)?).await?;
    if !wants_csv(&headers) {
        return Ok(Json(rows).into_response());
    }
    let mut csv = Csv::new(&[
        "id",
        "severity",
        "fix_state",
        "images",
        "findings",
        "packages",
        "aliases",
    ]);
    for VulnerabilityRow {
        id,
        severity,
        fix_state,
        images,
        findings,
        packages,
        aliases,
        ..
    } in rows
    {
        csv.row([
            id,
            severity.to_string(),
            fix_state.as_str().to_string(),
            images.to_string(),
            findings.to_string(),
            packages.join(" "),
            aliases.join(" "),
        ]);
    }
    Ok(csv.into_response())
}

/// `GET /v1/vulnerabilities/{id}`.
#[derive(Debug, Serialize)]
struct VulnerabilityDetail {
    /// The id asked for.
    id: String,
    /// The ids of the findings found by it, and their aliases.
    ids: Vec<String>,
    /// The highest severity among them.
    severity: Severity,
    /// The images affected, by digest.
    images: Vec<AffectedImage>,
}

async fn vulnerability(
    ApiAuth(scope): ApiAuth,
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Json<VulnerabilityDetail>, ApiError> {
    let images = shared.store.vulnerability(&id, &scope).await?;
    if images.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no image has this vulnerability",
        ));
    }
    let findings = images.iter().flat_map(|i| &i.findings);
    let mut ids: Vec<String> = findings
        .clone()
        .flat_map(|f| std::iter::once(&f.id).chain(&f.aliases))
        .cloned()
        .collect();
    ids.sort();
    ids.dedup();
    let severity = findings
        .map(|f| f.severity)
        .max()
        .unwrap_or(Severity::Unknown);
    Ok(Json(VulnerabilityDetail {
        id,
        ids,
        severity,
        images,
    }))
}

/// `GET /v1/findings`: a page.
#[derive(Debug, Serialize)]
struct FindingsAnswer {
    findings: Vec<RegistryFinding>,
    /// Give it as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
    /// The next page's query (relative to this request's path).
    next: Option<String>,
}

/// This request's query with `cursor` set to `cursor`, as a relative
/// reference (`?…`), so it holds wherever the router is mounted.
fn next_link(query: Option<&str>, cursor: &str) -> String {
    let mut parts: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("cursor=") && *p != "cursor")
        .collect();
    let last = format!("cursor={cursor}");
    parts.push(&last);
    format!("?{}", parts.join("&"))
}

async fn registry_findings(
    ApiAuth(scope): ApiAuth,
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    filter: Result<Query<RegistryFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let filter = registry_filter(filter)?;
    let query = filter.query(scope)?;
    let after =
        match filter.cursor.as_deref() {
            None => None,
            Some(c) => Some(Cursor::decode(c).ok_or_else(|| {
                ApiError::new(StatusCode::BAD_REQUEST, "not a cursor of this API")
            })?),
        };
    let limit = filter.limit.unwrap_or(PAGE_DEFAULT).clamp(1, PAGE_MAX);
    let page = shared
        .store
        .findings_page(&query, after.as_ref(), limit)
        .await?;
    let next_cursor = page.next.as_ref().map(Cursor::encode);
    let next = next_cursor.as_deref().map(|c| next_link(uri.query(), c));
    let link = next
        .as_deref()
        .and_then(|n| HeaderValue::from_str(&format!("<{n}>; rel=\"next\"")).ok());
    let mut response = if wants_csv(&headers) {
        let mut csv = Csv::new(&[
            "severity",
            "id",
            "aliases",
            "package",
            "version",
            "source_name",
            "source_version",
            "ecosystem",
            "fix_state",
            "fixed_version",
            "layer",
            "digest",
            "tags",
            "verdict",
            "last_pushed",
            "last_pulled",
        ]);
        for r in page.findings {
            let f = r.finding;
            csv.row([
                f.severity.to_string(),
                f.id,
                f.aliases.join(" "),
                f.package,
                f.version,
                f.source_name,
                f.source_version,
                f.ecosystem,
                f.fix_state.as_str().to_string(),
                f.fixed_version.unwrap_or_default(),
                f.layer.unwrap_or_default(),
                r.digest,
                tag_list(&r.tags),
                r.verdict.unwrap_or_default(),
                time(r.last_pushed).unwrap_or_default(),
                time(r.last_pulled).unwrap_or_default(),
            ]);
        }
        csv.into_response()
    } else {
        Json(FindingsAnswer {
            findings: page.findings,
            next_cursor,
            next,
        })
        .into_response()
    };
    if let Some(link) = link {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

/// `repository:tag` (or `repository@` for an untagged listing), space-separated.
fn tag_list(tags: &[TagName]) -> String {
    tags.iter()
        .map(|t| match &t.tag {
            Some(tag) => format!("{}:{tag}", t.repository),
            None => format!("{}@", t.repository),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Query parameters of `GET /v1/summary`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SummaryFilter {
    /// Images in a repository under this prefix.
    repository: Option<String>,
}

/// `GET /v1/summary`.
async fn summary(
    ApiAuth(scope): ApiAuth,
    State(shared): State<Arc<Shared>>,
    filter: Result<Query<SummaryFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RegistrySummary>, ApiError> {
    let Query(filter) =
        filter.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let repository = filter
        .repository
        .as_deref()
        .map(|r| r.trim_end_matches('/'))
        .filter(|r| !r.is_empty());
    Ok(Json(shared.store.summary(&scope, repository).await?))
}

/// Whether the client asked for CSV (`Accept: text/csv`, with or without
/// other types).
fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| {
            media
                .split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/csv"))
        })
}

/// An RFC 4180 CSV document: a header row, then rows, CRLF after each.
/// A field is quoted when it holds a comma, a quote or a line break (quotes
/// doubled); a field starting with `=`, `+`, `-`, `@`, a tab or a carriage
/// return gets a leading `'`, so a spreadsheet shows it instead of running
/// it as a formula.
struct Csv {
    body: Vec<u8>,
}

impl Csv {
    fn new(header: &[&str]) -> Csv {
        let mut csv = Csv { body: Vec::new() };
        csv.row(header.iter().map(|h| h.to_string()));
        csv
    }

    fn row(&mut self, fields: impl IntoIterator<Item = String>) {
        for (i, field) in fields.into_iter().enumerate() {
            if i > 0 {
                self.body.push(b',');
            }
            let defused = if field.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{field}")
            } else {
                field
            };
            if defused.contains([',', '"', '\r', '\n']) {
                self.body.push(b'"');
                self.body
                    .extend_from_slice(defused.replace('"', "\"\"").as_bytes());
                self.body.push(b'"');
            } else {
                self.body.extend_from_slice(defused.as_bytes());
            }
        }
        self.body.extend_from_slice(b"\r\n");
    }
}

impl IntoResponse for Csv {
    fn into_response(self) -> Response {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8; header=present"),
            )],
            self.body,
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        let mut csv = Csv::new(&["a", "b"]);
        csv.row(["x,y".to_string(), "say \"hi\"\nthere".to_string()]);
        csv.row(["=1+2".to_string(), "-3".to_string()]);
        csv.row(["@SUM(A1)".to_string(), "+x".to_string()]);
        csv.row(["plain".to_string(), String::new()]);
        assert_eq!(
            String::from_utf8(csv.body).unwrap(),
            "a,b\r\n\"x,y\",\"say \"\"hi\"\"\nthere\"\r\n'=1+2,'-3\r\n'@SUM(A1),'+x\r\nplain,\r\n"
        );
    }

    #[test]
    fn accept_chooses_csv() {
        let mut headers = HeaderMap::new();
        assert!(!wants_csv(&headers));
        for (value, csv) in [
            ("text/csv", true),
            ("application/json, TEXT/CSV; q=0.5", true),
            ("application/json", false),
            ("*/*", false),
            ("text/csv-schema", false),
        ] {
            headers.insert(header::ACCEPT, HeaderValue::from_static(value));
            assert_eq!(wants_csv(&headers), csv, "{value}");
        }
    }

    #[test]
    fn next_links_keep_the_query() {
        assert_eq!(
            next_link(Some("severity=high&cursor=old&limit=2"), "NEW"),
            "?severity=high&limit=2&cursor=NEW"
        );
        assert_eq!(next_link(None, "NEW"), "?cursor=NEW");
    }

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
