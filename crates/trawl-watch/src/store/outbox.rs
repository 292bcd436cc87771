//! The notification outbox: the events a scan or a rescan gives rise to,
//! written in the same transaction as the result they report (so a crash
//! can neither lose an event nor invent one), one row per event and
//! target, delivered by [`crate::notify`].
//!
//! Both stores keep the same `outbox` table:
//!
//! | column | holds |
//! |---|---|
//! | `seq` | arrival order |
//! | `event_id`, `target` | the event's id and the URL it goes to: unique together |
//! | `kind`, `body` | the event's type and its JSON, as sent (retries send the same bytes) |
//! | `state` | `pending`, `delivered` or `given_up` |
//! | `attempts`, `next_attempt`, `last_error` | delivery attempts so far, when the next is due (Unix ms), why the last failed |
//! | `lease_owner`, `lease_token`, `lease_until` | the process delivering it, as for jobs |
//! | `created`, `done` | when it was written and when it was delivered or given up (Unix ms) |
//!
//! A `verdict.changed` event's id is derived from the image's digest and
//! the rescan (advisory database, policy and plan sequence number) that
//! changed it, so the unique key allows one per image per database update
//! whatever happens; the other events' ids are random.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{FindingRow, MatchResult};

/// Findings listed in one event at most (the most severe first); the
/// rest are counted in `findings_omitted`.
pub const MAX_EVENT_FINDINGS: usize = 100;

/// Tags listed in one event at most; the rest are counted in `tags_omitted`.
pub const MAX_EVENT_TAGS: usize = 100;

/// Bytes of a scan error carried in a `scan.failed` event at most.
const MAX_EVENT_ERROR: usize = 4096;

/// A notification claimed for delivery under a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// The outbox row.
    pub seq: i64,
    /// This claim's lease token.
    pub token: i64,
    /// The event's id (the same on every attempt and for every target).
    pub event_id: String,
    /// `scan.completed`, `scan.failed` or `verdict.changed`.
    pub kind: String,
    /// The URL it goes to.
    pub target: String,
    /// The JSON body.
    pub body: String,
    /// Attempts made before this one.
    pub attempts: i64,
    /// When the event was written (Unix ms).
    pub created_ms: i64,
}

/// What became of a delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// Try again at `at_ms` (Unix ms).
    Retry {
        /// When.
        at_ms: i64,
        /// Why this attempt failed.
        error: String,
    },
    /// Not tried again.
    GivenUp {
        /// Why.
        error: String,
    },
}

/// How many outbox rows are in each state (all targets, all processes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Waiting for (another) delivery attempt.
    pub pending: i64,
    /// Delivered and not pruned yet.
    pub delivered: i64,
    /// Given up and not pruned yet.
    pub given_up: i64,
}

/// An image as an event names it.
#[derive(Debug, Clone, Default)]
pub(crate) struct EventImage {
    pub(crate) digest: String,
    pub(crate) registry: String,
    pub(crate) repository: String,
    /// (repository, tag); tag `''` for an untagged push.
    pub(crate) tags: Vec<(String, String)>,
}

/// An event to write: its id, type and body.
#[derive(Debug, Clone)]
pub(crate) struct NewEvent {
    pub(crate) id: String,
    pub(crate) kind: &'static str,
    pub(crate) body: String,
}

/// A random event id (`evt_` and 32 hex digits).
fn random_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut words = [0u64; 2];
    for w in &mut words {
        // Each RandomState carries fresh random keys.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(nanos);
        h.write_u64(n);
        h.write_u32(std::process::id());
        *w = h.finish();
    }
    format!("evt_{:016x}{:016x}", words[0], words[1])
}

/// The id of the `verdict.changed` of `digest` in the rescan `seq` of
/// (`advisory_db`, `policy`): the same whoever writes it.
fn change_id(digest: &str, advisory_db: &str, policy: &str, seq: i64) -> String {
    let text = format!("verdict.changed\n{digest}\n{advisory_db}\n{policy}\n{seq}");
    let hash = hex::encode(Sha256::digest(text.as_bytes()));
    format!("evt_{}", &hash[..32])
}

fn time(now: i64) -> String {
    chrono::DateTime::from_timestamp(now, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn image_json(image: &EventImage) -> Value {
    let tags: Vec<Value> = image
        .tags
        .iter()
        .take(MAX_EVENT_TAGS)
        .map(|(repository, tag)| {
            json!({
                "repository": repository,
                "tag": if tag.is_empty() { None } else { Some(tag) },
            })
        })
        .collect();
    json!({
        "registry": image.registry,
        "repository": image.repository,
        "digest": image.digest,
        "tags": tags,
        "tags_omitted": image.tags.len().saturating_sub(MAX_EVENT_TAGS),
    })
}

/// The findings that count, the most severe first, at most
/// [`MAX_EVENT_FINDINGS`]; and how many that left out.
fn findings_json(findings: &[FindingRow]) -> (Vec<Value>, usize, usize) {
    let mut counting: Vec<&FindingRow> = findings.iter().filter(|f| !f.suppressed).collect();
    counting.sort_by_key(|f| std::cmp::Reverse(super::severity_rank(f.severity)));
    let total = counting.len();
    let listed = counting
        .iter()
        .take(MAX_EVENT_FINDINGS)
        .map(|f| {
            json!({
                "id": f.id,
                "aliases": f.aliases,
                "package": f.package,
                "version": f.version,
                "ecosystem": f.ecosystem,
                "severity": f.severity,
                "fix_state": f.fix_state,
                "fixed_version": f.fixed_version,
            })
        })
        .collect();
    (listed, total, total.saturating_sub(MAX_EVENT_FINDINGS))
}

fn target_json(result: &MatchResult) -> Value {
    json!({"sha256": result.target.advisory_db})
}

fn summary_json(result: &MatchResult) -> Value {
    serde_json::from_str(&result.summary).unwrap_or(Value::Null)
}

/// `scan.completed`: an image was pulled, scanned and matched.
pub(crate) fn scan_completed(image: &EventImage, result: &MatchResult, now: i64) -> NewEvent {
    let id = random_id();
    let body = json!({
        "id": id,
        "type": "scan.completed",
        "time": time(now),
        "image": image_json(image),
        "verdict": result.verdict,
        "verdict_reason": result.verdict_reason,
        "summary": summary_json(result),
        "advisory_db": target_json(result),
        "policy": result.target.policy,
    });
    NewEvent {
        id,
        kind: "scan.completed",
        body: body.to_string(),
    }
}

/// `scan.failed`: a scan of an image failed (or was given up).
pub(crate) fn scan_failed(image: &EventImage, error: &str, now: i64) -> NewEvent {
    let id = random_id();
    let mut error = crate::redact::redact_urls(error);
    if error.len() > MAX_EVENT_ERROR {
        let mut end = MAX_EVENT_ERROR;
        while !error.is_char_boundary(end) {
            end -= 1;
        }
        error.truncate(end);
        error.push('…');
    }
    let body = json!({
        "id": id,
        "type": "scan.failed",
        "time": time(now),
        "image": image_json(image),
        "error": error,
    });
    NewEvent {
        id,
        kind: "scan.failed",
        body: body.to_string(),
    }
}

/// `verdict.changed`: an image's verdict is not what it was. `rescan_seq`
/// is the rescan plan's sequence number when a rescan changed it (the id
/// is then derived from it); `None` for a scan (a random id).
pub(crate) fn verdict_changed(
    image: &EventImage,
    previous: &str,
    result: &MatchResult,
    rescan_seq: Option<i64>,
    now: i64,
) -> NewEvent {
    let id = match rescan_seq {
        Some(seq) => change_id(
            &image.digest,
            &result.target.advisory_db,
            &result.target.policy,
            seq,
        ),
        None => random_id(),
    };
    let (findings, total, omitted) = findings_json(&result.findings);
    let body = json!({
        "id": id,
        "type": "verdict.changed",
        "time": time(now),
        "image": image_json(image),
        "previous_verdict": previous,
        "verdict": result.verdict,
        "verdict_reason": result.verdict_reason,
        "summary": summary_json(result),
        "advisory_db": target_json(result),
        "policy": result.target.policy,
        "findings": findings,
        "findings_total": total,
        "findings_omitted": omitted,
    });
    NewEvent {
        id,
        kind: "verdict.changed",
        body: body.to_string(),
    }
}

/// Whether a verdict moving from `previous` to `new` is a change to tell.
pub(crate) fn changed(previous: Option<&str>, new: &str) -> bool {
    previous.is_some_and(|p| p != new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_ne!(random_id(), random_id());
        assert_eq!(random_id().len(), 36);
        assert_eq!(change_id("d", "a", "p", 1), change_id("d", "a", "p", 1));
        assert_ne!(change_id("d", "a", "p", 1), change_id("d", "a", "p", 2));
        assert!(changed(Some("healthy"), "unhealthy"));
        assert!(!changed(Some("healthy"), "healthy"));
        assert!(!changed(None, "healthy"));
    }

    #[test]
    fn long_errors_are_cut() {
        let image = EventImage::default();
        let event = scan_failed(&image, &"é".repeat(10_000), 0);
        let body: Value = serde_json::from_str(&event.body).unwrap();
        assert!(body["error"].as_str().unwrap().len() <= MAX_EVENT_ERROR + 3);
        assert_eq!(body["id"], event.id.as_str());
        assert_eq!(body["image"]["tags_omitted"], 0);
    }
}
