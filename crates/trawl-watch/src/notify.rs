//! Outgoing notifications: HMAC-signed JSON events POSTed to the
//! configured URLs ([`NotifyTarget`]).
//!
//! # Events
//!
//! | type | when |
//! |---|---|
//! | `scan.completed` | an image was pulled, scanned and matched (its verdict, summary, the advisory database and policy) |
//! | `scan.failed` | a scan failed, or was given up after crashes (the error, URL secrets redacted) |
//! | `verdict.changed` | an image's stored verdict changed (a rescan after an advisory database or policy change, or a scan of an image that had one): `previous_verdict`, `verdict`, and the findings that count now, the most severe first, at most [`MAX_EVENT_FINDINGS`](crate::store::outbox::MAX_EVENT_FINDINGS) (`findings_total`, `findings_omitted`) |
//!
//! Each is written into the store's outbox in the transaction that stores
//! what it reports, once per target ([`crate::store::outbox`]), so a crash
//! neither loses nor invents one, and a database update gives at most one
//! `verdict.changed` per image (its id is derived from the image and the
//! update).
//!
//! # Delivery
//!
//! A task in every process claims due rows under a lease (PostgreSQL:
//! `FOR UPDATE SKIP LOCKED`) and POSTs each body with these headers:
//!
//! | header | value |
//! |---|---|
//! | `Content-Type` | `application/json` |
//! | `X-Trawl-Event` | the event's type |
//! | `X-Trawl-Event-Id` | its id: the same on every attempt; de-duplicate by it |
//! | `X-Trawl-Timestamp` | Unix seconds of this attempt |
//! | `X-Trawl-Signature` | `sha256=` and the lower-case hex HMAC-SHA256, keyed with the target's secret, of the timestamp, `.`, and the body's bytes ([`sign`]) |
//! | `X-Trawl-Delivery-Attempt` | 1 for the first attempt, then 2, 3… |
//!
//! A 2xx answer delivers it. Network errors, timeouts ([`Notifications::timeout`]),
//! 5xx, 408 and 429 are retried with exponential backoff and jitter
//! ([`Notifications::first_retry`] doubling up to [`Notifications::max_retry`];
//! a 429's or 503's `Retry-After` in seconds is honoured within that) until
//! [`Notifications::give_up_after`] has passed since the event was
//! written; any other answer (a redirect is not followed; other 4xx) gives
//! it up at once. Delivery is at least once: a process that stops gives
//! back the rows it was sending ([`Store::release_deliveries`](crate::Store::release_deliveries)),
//! and one that dies after the POST but before recording it leaves the row
//! to be sent again once its lease expires. Events of one image are not ordered across retries.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hmac::{KeyInit, Mac};
use tracing::{debug, info, warn};

use crate::redact::redact_urls;
use crate::service::Shared;
use crate::store::{Delivery, DeliveryOutcome};

type HmacSha256 = hmac::Hmac<sha2_hmac::Sha256>;

/// A URL notifications are POSTed to, and the secret their signatures are
/// keyed with (read from a file; never shown).
#[derive(Clone, PartialEq, Eq)]
pub struct NotifyTarget {
    /// `http://` or `https://` URL; the outbox names the target by it, so
    /// keep it the same across restarts and processes.
    pub url: String,
    /// The HMAC key.
    pub secret: Vec<u8>,
}

impl NotifyTarget {
    /// A target; the URL must be `http` or `https` with a host, and the
    /// secret not empty.
    pub fn new(url: impl Into<String>, secret: impl Into<Vec<u8>>) -> Result<NotifyTarget, String> {
        let url = url.into();
        let secret = secret.into();
        check_url(&url)?;
        if secret.iter().all(u8::is_ascii_whitespace) {
            return Err(format!("the secret of {} is empty", redact_urls(&url)));
        }
        Ok(NotifyTarget { url, secret })
    }
}

impl std::fmt::Debug for NotifyTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyTarget")
            .field("url", &redact_urls(&self.url))
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| format!("{:?} is not a URL: {e}", redact_urls(url)))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!(
            "{:?}: a notification URL is http:// or https:// with a host",
            redact_urls(url)
        ));
    }
    Ok(())
}

/// Where notifications go and how they are delivered.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Notifications {
    /// The targets; none by default (then no event is written).
    pub targets: Vec<NotifyTarget>,
    /// One POST's time limit, connecting included (default 10 s).
    pub timeout: Duration,
    /// The delay before the first retry (default 1 s); it doubles with
    /// every failed attempt.
    pub first_retry: Duration,
    /// The longest delay between attempts (default 1 h).
    pub max_retry: Duration,
    /// An event not delivered this long after it was written is given up
    /// (default 24 h).
    pub give_up_after: Duration,
    /// Delivered and given-up events are deleted from the outbox this long
    /// after (default 7 days).
    pub keep_done: Duration,
    /// How often a process looks for due events written by other processes
    /// or due for a retry (default 1 s; its own events wake it at once).
    pub poll_interval: Duration,
    /// Events POSTed at once by one process at most (default 8).
    pub concurrency: usize,
}

impl Default for Notifications {
    fn default() -> Self {
        Notifications {
            targets: Vec::new(),
            timeout: Duration::from_secs(10),
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(86_400),
            keep_done: Duration::from_secs(7 * 86_400),
            poll_interval: Duration::from_secs(1),
            concurrency: 8,
        }
    }
}

/// Reads `--notify URL=SECRET_FILE`: the URL, and the file holding the
/// signing secret (split at the last `=`, so the URL's query may have
/// some; the file's name may not).
pub fn parse_notify(spec: &str) -> Result<(String, PathBuf), String> {
    let usage = || format!("{:?}: use URL=SECRET_FILE", redact_urls(spec));
    let (url, file) = spec.rsplit_once('=').ok_or_else(usage)?;
    if file.is_empty() || url.is_empty() {
        return Err(usage());
    }
    check_url(url)?;
    Ok((url.to_string(), PathBuf::from(file)))
}

/// Pairs `--notify` values with their secrets (`secret` reads a file;
/// trailing white space is dropped); a URL given twice is refused.
pub fn notify_targets(
    specs: &[(String, PathBuf)],
    mut secret: impl FnMut(&Path) -> Result<String, String>,
) -> Result<Vec<NotifyTarget>, String> {
    let mut targets: Vec<NotifyTarget> = Vec::new();
    for (url, file) in specs {
        if targets.iter().any(|t| &t.url == url) {
            return Err(format!("--notify {} is given twice", redact_urls(url)));
        }
        let text = secret(file)?;
        targets.push(NotifyTarget::new(url.clone(), text.trim_end().as_bytes())?);
    }
    Ok(targets)
}

/// The `X-Trawl-Signature` value of `body` sent at `timestamp` (Unix
/// seconds): `sha256=` and the hex HMAC-SHA256 of `"{timestamp}.{body}"`
/// keyed with `secret`.
///
/// ```
/// let signature = trawl_watch::notify::sign(b"s3cret", 1_700_000_000, br#"{"id":"evt_1"}"#);
/// assert!(trawl_watch::notify::verify(b"s3cret", "1700000000", br#"{"id":"evt_1"}"#, &signature));
/// assert!(!trawl_watch::notify::verify(b"other", "1700000000", br#"{"id":"evt_1"}"#, &signature));
/// ```
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `signature` (an `X-Trawl-Signature` value) signs `body` sent at
/// `timestamp` (the `X-Trawl-Timestamp` value) with `secret`, compared in
/// constant time. Receivers should also refuse timestamps far from their
/// clock (replays).
pub fn verify(secret: &[u8], timestamp: &str, body: &[u8], signature: &str) -> bool {
    let Some(hex_mac) = signature.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_mac) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// The delay before attempt `attempts + 1` after `attempts` failed ones:
/// `first` doubled per failure, at most `max`, the upper half of it
/// random (jitter), so receivers coming back are not hit by every
/// process at once.
pub(crate) fn backoff(first: Duration, max: Duration, attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.clamp(0, 30)).unwrap_or(30);
    let full = first.saturating_mul(1u32 << exp).min(max);
    let half = full / 2;
    let random = {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_i64(attempts);
        h.finish()
    };
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(if nanos == 0 { 0 } else { random % nanos })
}

/// What an answer means for the delivery: `None` delivered, else the
/// error and whether to retry, and a `Retry-After` in seconds.
fn judge(
    status: reqwest::StatusCode,
    retry_after: Option<u64>,
) -> Option<(String, bool, Option<u64>)> {
    if status.is_success() {
        return None;
    }
    let retry = status.is_server_error()
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
    Some((format!("answered {status}"), retry, retry_after))
}

/// The HTTP client deliveries use: no redirects followed, the configured
/// timeout.
pub(crate) fn client(config: &Notifications) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        .user_agent(concat!("trawl-watch/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// POSTs one claimed event and records what became of it.
pub(crate) async fn deliver(shared: &Arc<Shared>, client: &reqwest::Client, delivery: Delivery) {
    let config = &shared.config.notify;
    let Some(target) = config.targets.iter().find(|t| t.url == delivery.target) else {
        return;
    };
    let now_ms = shared.now_ms().await;
    let timestamp = now_ms / 1000;
    let signature = sign(&target.secret, timestamp, delivery.body.as_bytes());
    let sent = client
        .post(&target.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Trawl-Event", &delivery.kind)
        .header("X-Trawl-Event-Id", &delivery.event_id)
        .header("X-Trawl-Timestamp", timestamp.to_string())
        .header("X-Trawl-Signature", signature)
        .header(
            "X-Trawl-Delivery-Attempt",
            (delivery.attempts + 1).to_string(),
        )
        .body(delivery.body.clone())
        .send()
        .await;
    let failure = match sent {
        Ok(response) => {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            judge(response.status(), retry_after)
        }
        Err(e) => Some((redact_urls(&crate::redact::error_chain(&e)), true, None)),
    };
    let now_ms = shared.now_ms().await;
    let url = redact_urls(&target.url);
    let outcome = match failure {
        None => {
            debug!(event = %delivery.event_id, kind = %delivery.kind, target = %url, "notification delivered");
            DeliveryOutcome::Delivered
        }
        Some((error, true, retry_after)) => {
            let mut delay = backoff(config.first_retry, config.max_retry, delivery.attempts);
            if let Some(secs) = retry_after {
                delay = delay.max(Duration::from_secs(secs).min(config.max_retry));
            }
            let at_ms = now_ms.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
            let deadline = delivery.created_ms.saturating_add(
                i64::try_from(config.give_up_after.as_millis()).unwrap_or(i64::MAX),
            );
            if at_ms > deadline {
                let error = format!("{error}; retried for {:?}: given up", config.give_up_after);
                warn!(event = %delivery.event_id, kind = %delivery.kind, target = %url, attempts = delivery.attempts + 1, %error, "notification given up");
                DeliveryOutcome::GivenUp { error }
            } else {
                info!(event = %delivery.event_id, kind = %delivery.kind, target = %url, attempts = delivery.attempts + 1, %error, retry_in = ?delay, "notification not delivered; will retry");
                DeliveryOutcome::Retry { at_ms, error }
            }
        }
        Some((error, false, _)) => {
            warn!(event = %delivery.event_id, kind = %delivery.kind, target = %url, attempts = delivery.attempts + 1, %error, "notification refused by its receiver: given up");
            DeliveryOutcome::GivenUp { error }
        }
    };
    match shared
        .store
        .finish_delivery(&delivery, &outcome, now_ms)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            debug!(event = %delivery.event_id, "the delivery's lease was lost; another process may send it again")
        }
        Err(e) => {
            warn!(error = %e, event = %delivery.event_id, "cannot record a delivery; it will be sent again")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        let s = sign(b"k", 5, b"body");
        // RFC 2104 HMAC-SHA256 of "5.body" with key "k", by openssl.
        assert_eq!(s.len(), "sha256=".len() + 64);
        assert!(verify(b"k", "5", b"body", &s));
        assert!(!verify(b"k", "6", b"body", &s));
        assert!(!verify(b"k", "5", b"bodY", &s));
        assert!(!verify(b"j", "5", b"body", &s));
        assert!(!verify(b"k", "5", b"body", &s.replace("sha256=", "sha1=")));
        assert!(!verify(b"k", "5", b"body", "sha256=zz"));
    }

    #[test]
    fn backoff_doubles_within_bounds() {
        let (first, max) = (Duration::from_secs(1), Duration::from_secs(3600));
        for attempts in 0..40 {
            let d = backoff(first, max, attempts);
            let full = first.saturating_mul(1 << attempts.min(30)).min(max);
            assert!(d >= full / 2 && d <= full, "{attempts}: {d:?}");
        }
        assert_eq!(backoff(Duration::ZERO, max, 3), Duration::ZERO);
    }

    #[test]
    fn answers() {
        use reqwest::StatusCode as S;
        assert!(judge(S::OK, None).is_none());
        assert!(judge(S::NO_CONTENT, None).is_none());
        for retried in [
            S::INTERNAL_SERVER_ERROR,
            S::BAD_GATEWAY,
            S::REQUEST_TIMEOUT,
            S::TOO_MANY_REQUESTS,
        ] {
            assert!(judge(retried, None).unwrap().1, "{retried}");
        }
        for refused in [
            S::BAD_REQUEST,
            S::UNAUTHORIZED,
            S::NOT_FOUND,
            S::FOUND,
            S::MOVED_PERMANENTLY,
        ] {
            assert!(!judge(refused, None).unwrap().1, "{refused}");
        }
    }

    #[test]
    fn specs() {
        assert_eq!(
            parse_notify("https://hooks.example/t?a=b=/etc/trawl/hook.secret"),
            Ok((
                "https://hooks.example/t?a=b".into(),
                PathBuf::from("/etc/trawl/hook.secret")
            ))
        );
        for bad in [
            "https://h.example/x",
            "=f",
            "https://h.example/x=",
            "ftp://h/x=f",
            "h.example=f",
        ] {
            assert!(parse_notify(bad).is_err(), "{bad}");
        }
        let specs = [
            ("http://a.example/".to_string(), PathBuf::from("a")),
            ("http://b.example/".to_string(), PathBuf::from("b")),
        ];
        let read = |f: &Path| Ok(format!("secret-{}\n", f.display()));
        let targets = notify_targets(&specs, read).unwrap();
        assert_eq!(targets[1].secret, b"secret-b");
        assert!(!format!("{targets:?}").contains("secret-"));
        let twice = [specs[0].clone(), specs[0].clone()];
        assert!(notify_targets(&twice, read).is_err());
        assert!(notify_targets(&specs[..1], |_| Ok(" \n".into())).is_err());
    }
}
