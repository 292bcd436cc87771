//! Whole-transfer limits for registry downloads, and URL redaction for messages.
//!
//! The HTTP client's read timeout bounds each wait for bytes, so a server that sends a
//! byte now and then could hold a download forever. A [`TransferClock`] watches one
//! transfer (a manifest, a blob with all its resumptions, a listing page, a token or error
//! body) as its bytes arrive: past [`RegistryOptions::transfer_deadline`] it is
//! [`RegistryError::TransferDeadline`]; fewer bytes than
//! [`RegistryOptions::min_throughput`] asks for in a window (every window after the first)
//! is [`RegistryError::TooSlow`]. Both are final: the transfer is not resumed or retried.
//! The clock is read whenever a read returns; a connection that sends nothing at all is
//! ended by the read timeout.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use reqwest::Url;

use crate::RegistryError;
use crate::options::RegistryOptions;

/// How a stopped transfer stopped, kept so that later reads fail the same way.
#[derive(Debug, Clone, Copy)]
enum Stopped {
    Deadline(Duration),
    Slow(u64),
}

/// The deadline and throughput check of one transfer.
#[derive(Debug)]
pub(crate) struct TransferClock {
    what: String,
    started: Instant,
    deadline: Duration,
    min_bytes: u64,
    window: Duration,
    window_started: Instant,
    window_bytes: u64,
    first_window: bool,
    stopped: Option<Stopped>,
}

impl TransferClock {
    /// A clock started now for `what` (the document or blob, and its redacted URL).
    pub(crate) fn start(options: &RegistryOptions, what: String) -> Self {
        let now = Instant::now();
        Self {
            what,
            started: now,
            deadline: options.transfer_deadline,
            min_bytes: options.min_throughput_bytes,
            window: options.throughput_window,
            window_started: now,
            window_bytes: 0,
            first_window: true,
            stopped: None,
        }
    }

    /// Names the transfer anew (e.g. once a redirect has shown where it comes from).
    pub(crate) fn rename(&mut self, what: String) {
        self.what = what;
    }

    /// Counts `received` bytes and checks the deadline and the current window.
    pub(crate) fn check(&mut self, received: usize) -> Result<(), RegistryError> {
        if let Some(stopped) = self.stopped {
            return Err(self.error(stopped));
        }
        let now = Instant::now();
        self.window_bytes = self.window_bytes.saturating_add(received as u64);
        let elapsed = now.duration_since(self.started);
        if elapsed > self.deadline {
            return Err(self.stop(Stopped::Deadline(elapsed)));
        }
        if self.min_bytes > 0 && now.duration_since(self.window_started) >= self.window {
            if !self.first_window && self.window_bytes < self.min_bytes {
                return Err(self.stop(Stopped::Slow(self.window_bytes)));
            }
            self.first_window = false;
            self.window_started = now;
            self.window_bytes = 0;
        }
        Ok(())
    }

    fn stop(&mut self, stopped: Stopped) -> RegistryError {
        self.stopped = Some(stopped);
        tracing::debug!(what = %self.what, ?stopped, "registry transfer aborted");
        self.error(stopped)
    }

    fn error(&self, stopped: Stopped) -> RegistryError {
        match stopped {
            Stopped::Deadline(after) => RegistryError::TransferDeadline {
                what: self.what.clone(),
                after,
            },
            Stopped::Slow(bytes) => RegistryError::TooSlow {
                what: self.what.clone(),
                bytes,
                window: self.window,
                min_bytes: self.min_bytes,
            },
        }
    }
}

/// A reader whose transfer is watched by a [`TransferClock`]; its failures are I/O errors
/// carrying the [`RegistryError`] (see [`RegistryError::from_io`]).
pub(crate) struct ClockedReader<R> {
    pub(crate) inner: R,
    pub(crate) clock: TransferClock,
}

impl<R: Read> Read for ClockedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.clock.check(n).map_err(RegistryError::into_io)?;
                Ok(n)
            }
            Err(e) => {
                // Past the deadline, that is the reason, whatever the read said.
                self.clock.check(0).map_err(RegistryError::into_io)?;
                Err(e)
            }
        }
    }
}

/// `url` fit for messages and logs: user name, password, query and fragment replaced —
/// presigned storage URLs carry their signatures in the query.
pub(crate) fn redact_url(url: &Url) -> String {
    let mut shown = url.clone();
    let had_userinfo = !shown.username().is_empty() || shown.password().is_some();
    let had_query = shown.query().is_some();
    // Fails only for URLs that cannot have credentials; then there are none to hide.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    let mut text = shown.to_string();
    if had_userinfo && let Some(i) = text.find("://") {
        text.insert_str(i + 3, "<redacted>@");
    }
    if had_query {
        text.push_str("?<redacted>");
    }
    text
}

/// `text` with every `http://` or `https://` URL in it redacted as by [`redact_url`] (for
/// error chains, which quote the URL they failed on).
pub(crate) fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = find_url_start(rest) {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '<' | '>'))
            .unwrap_or(tail.len());
        let candidate = &tail[..end];
        match Url::parse(candidate) {
            Ok(url) => out.push_str(&redact_url(&url)),
            // Not a URL after all; keep the scheme only.
            Err(_) => out.push_str(&candidate[..candidate.find("://").map_or(0, |i| i + 3)]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn find_url_start(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    [lower.find("https://"), lower.find("http://")]
        .into_iter()
        .flatten()
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_credentials_and_queries() {
        let url = Url::parse(
            "https://alice:s3cret@storage.example/blobs/x?X-Amz-Signature=abc&X-Amz-Credential=k#f",
        )
        .unwrap();
        let shown = redact_url(&url);
        assert_eq!(
            shown,
            "https://<redacted>@storage.example/blobs/x?<redacted>"
        );
        assert_eq!(
            redact_url(&Url::parse("http://127.0.0.1:5000/v2/a/blobs/sha256:1").unwrap()),
            "http://127.0.0.1:5000/v2/a/blobs/sha256:1"
        );
        let text = "error sending request for url (https://u:p@s.example/b?sig=1): timed out; \
                    then HTTP://x.example/?token=2 failed";
        let redacted = redact_urls_in(text);
        for secret in ["u:p", "sig=1", "token=2"] {
            assert!(!redacted.contains(secret), "{redacted}");
        }
        assert!(
            redacted.contains("https://<redacted>@s.example/b?<redacted>)"),
            "{redacted}"
        );
        assert!(redacted.ends_with("failed"), "{redacted}");
    }

    #[test]
    fn clock_stops_slow_and_late_transfers() {
        let options = RegistryOptions::default()
            .transfer_deadline(Duration::from_millis(300))
            .min_throughput(100, Duration::from_millis(50));
        let mut clock = TransferClock::start(&options, "blob x".into());
        // The first window is free.
        std::thread::sleep(Duration::from_millis(60));
        clock.check(1).unwrap();
        clock.check(200).unwrap();
        std::thread::sleep(Duration::from_millis(60));
        clock.check(0).unwrap();
        std::thread::sleep(Duration::from_millis(60));
        let e = clock.check(10).unwrap_err();
        assert!(
            matches!(
                e,
                RegistryError::TooSlow {
                    bytes: 10,
                    min_bytes: 100,
                    ..
                }
            ),
            "{e}"
        );
        // Sticky.
        assert!(matches!(
            clock.check(1000),
            Err(RegistryError::TooSlow { .. })
        ));

        let options = RegistryOptions::default()
            .transfer_deadline(Duration::from_millis(100))
            .min_throughput(0, Duration::from_millis(10));
        let mut clock = TransferClock::start(&options, "blob y".into());
        clock.check(1).unwrap();
        std::thread::sleep(Duration::from_millis(120));
        let e = clock.check(1).unwrap_err();
        assert!(matches!(e, RegistryError::TransferDeadline { .. }), "{e}");
        assert!(e.to_string().contains("blob y"), "{e}");
    }
}
