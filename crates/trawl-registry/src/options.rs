//! How to open image sources: the platform taken from multi-platform images (every kind of
//! source) and, with the `registry` feature, how registries are reached: trust, insecure
//! hosts, credentials, retries, limits.

#[cfg(feature = "registry")]
use std::collections::HashMap;
#[cfg(feature = "registry")]
use std::fmt;
#[cfg(feature = "registry")]
use std::path::PathBuf;
#[cfg(feature = "registry")]
use std::time::Duration;

use crate::Platform;

/// A user name and password (or token) for one registry.
///
/// `Debug` never shows the password.
#[cfg(feature = "registry")]
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or access token.
    pub password: String,
}

#[cfg(feature = "registry")]
impl Credentials {
    /// Credentials from a user name and a password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }
}

#[cfg(feature = "registry")]
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Options for opening image sources and for pulling from and pushing to registries; a
/// builder with sensible defaults.
///
/// The platform applies to every source with multi-platform images (OCI layouts and
/// archives too). Everything else is about registries and exists only with the `registry`
/// feature (on by default); without it a [`crate::ImageSource::Registry`] source fails to
/// open with [`crate::RegistryError::RegistrySupportNotBuilt`].
///
/// Defaults: platform `linux/<host arch>`; TLS with the system's trust store; plain HTTP
/// only to loopback hosts; credentials from `$DOCKER_CONFIG/config.json` or
/// `~/.docker/config.json`; 4 attempts per request; 10 s connect and 60 s read timeouts;
/// each transfer (manifest, blob, listing page) finished within [`DEFAULT_TRANSFER_DEADLINE`]
/// (30 min) and receiving at least [`DEFAULT_MIN_THROUGHPUT_BYTES`] (64 KiB) in every
/// [`DEFAULT_THROUGHPUT_WINDOW`] (30 s) after the first.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    pub(crate) platform: Platform,
    #[cfg(feature = "registry")]
    pub(crate) ca_files: Vec<PathBuf>,
    #[cfg(feature = "registry")]
    pub(crate) insecure_hosts: Vec<String>,
    #[cfg(feature = "registry")]
    pub(crate) credentials: HashMap<String, Credentials>,
    #[cfg(feature = "registry")]
    pub(crate) docker_config: Option<PathBuf>,
    #[cfg(feature = "registry")]
    pub(crate) max_attempts: u32,
    #[cfg(feature = "registry")]
    pub(crate) retry_base_delay: Duration,
    #[cfg(feature = "registry")]
    pub(crate) connect_timeout: Duration,
    #[cfg(feature = "registry")]
    pub(crate) read_timeout: Duration,
    #[cfg(feature = "registry")]
    pub(crate) listing_page_size: usize,
    #[cfg(feature = "registry")]
    pub(crate) transfer_deadline: Duration,
    #[cfg(feature = "registry")]
    pub(crate) min_throughput_bytes: u64,
    #[cfg(feature = "registry")]
    pub(crate) throughput_window: Duration,
}

/// Default of [`RegistryOptions::transfer_deadline`]: 30 minutes per transfer.
#[cfg(feature = "registry")]
pub const DEFAULT_TRANSFER_DEADLINE: Duration = Duration::from_secs(30 * 60);
/// Default minimum of [`RegistryOptions::min_throughput`]: 64 KiB per window.
#[cfg(feature = "registry")]
pub const DEFAULT_MIN_THROUGHPUT_BYTES: u64 = 64 * 1024;
/// Default window of [`RegistryOptions::min_throughput`]: 30 seconds.
#[cfg(feature = "registry")]
pub const DEFAULT_THROUGHPUT_WINDOW: Duration = Duration::from_secs(30);

#[cfg_attr(
    not(feature = "registry"),
    expect(
        clippy::derivable_impls,
        reason = "only the platform is left without `registry`"
    )
)]
impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            platform: Platform::host(),
            #[cfg(feature = "registry")]
            ca_files: Vec::new(),
            #[cfg(feature = "registry")]
            insecure_hosts: Vec::new(),
            #[cfg(feature = "registry")]
            credentials: HashMap::new(),
            #[cfg(feature = "registry")]
            docker_config: None,
            #[cfg(feature = "registry")]
            max_attempts: 4,
            #[cfg(feature = "registry")]
            retry_base_delay: Duration::from_millis(250),
            #[cfg(feature = "registry")]
            connect_timeout: Duration::from_secs(10),
            #[cfg(feature = "registry")]
            read_timeout: Duration::from_secs(60),
            #[cfg(feature = "registry")]
            listing_page_size: 1000,
            #[cfg(feature = "registry")]
            transfer_deadline: DEFAULT_TRANSFER_DEADLINE,
            #[cfg(feature = "registry")]
            min_throughput_bytes: DEFAULT_MIN_THROUGHPUT_BYTES,
            #[cfg(feature = "registry")]
            throughput_window: DEFAULT_THROUGHPUT_WINDOW,
        }
    }
}

impl RegistryOptions {
    /// The platform chosen from image indexes and manifest lists.
    pub fn platform(mut self, platform: Platform) -> Self {
        self.platform = platform;
        self
    }
}

#[cfg(feature = "registry")]
impl RegistryOptions {
    /// Also trust the CA certificates in this PEM file.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_files.push(path.into());
        self
    }

    /// Allow plain HTTP to `host` (`HOST[:PORT]`, as in references) when it does not speak TLS.
    pub fn insecure_registry(mut self, host: impl Into<String>) -> Self {
        self.insecure_hosts.push(host.into());
        self
    }

    /// Use these credentials for `registry` (`HOST[:PORT]` as in references, e.g.
    /// `docker.io`) instead of Docker's configuration.
    pub fn credentials(mut self, registry: impl Into<String>, credentials: Credentials) -> Self {
        self.credentials.insert(registry.into(), credentials);
        self
    }

    /// Read Docker's client configuration from this `config.json` instead of the default.
    pub fn docker_config(mut self, path: impl Into<PathBuf>) -> Self {
        self.docker_config = Some(path.into());
        self
    }

    /// How many times a request is sent before its failure is final (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The first retry delay; it doubles with each retry (capped at 8 s) unless the server
    /// sends `Retry-After`.
    pub fn retry_base_delay(mut self, delay: Duration) -> Self {
        self.retry_base_delay = delay;
        self
    }

    /// Connect and read timeouts (a read timeout bounds each wait for bytes, not a whole
    /// download).
    pub fn timeouts(mut self, connect: Duration, read: Duration) -> Self {
        self.connect_timeout = connect;
        self.read_timeout = read;
        self
    }

    /// The longest one transfer may take: a manifest, a listing page, a token or error body,
    /// or a blob with all its resumptions, from its request to its last byte. Past it the
    /// transfer is aborted with [`crate::RegistryError::TransferDeadline`], and not retried.
    /// Default [`DEFAULT_TRANSFER_DEADLINE`] (30 minutes).
    ///
    /// The deadline is checked as bytes arrive; a server that sends nothing at all is cut
    /// off earlier by the read timeout (see [`RegistryOptions::timeouts`]).
    pub fn transfer_deadline(mut self, deadline: Duration) -> Self {
        self.transfer_deadline = deadline;
        self
    }

    /// The slowest a transfer may be: at least `bytes` in every `window` after the first
    /// (which is free, for connection set-up and redirects); fewer aborts it with
    /// [`crate::RegistryError::TooSlow`], and it is not retried. `bytes` 0 turns the check
    /// off. Default [`DEFAULT_MIN_THROUGHPUT_BYTES`] (64 KiB) per
    /// [`DEFAULT_THROUGHPUT_WINDOW`] (30 s). A zero `window` is taken as 1 ms.
    pub fn min_throughput(mut self, bytes: u64, window: Duration) -> Self {
        self.min_throughput_bytes = bytes;
        self.throughput_window = window.max(Duration::from_millis(1));
        self
    }

    /// How many names a tag or catalog listing asks for per page (`n`; at least 1).
    pub fn listing_page_size(mut self, names: usize) -> Self {
        self.listing_page_size = names.max(1);
        self
    }

    /// Whether plain HTTP may be used for `host`.
    pub(crate) fn allows_plain_http(&self, host: &str) -> bool {
        self.insecure_hosts.iter().any(|h| h == host) || is_loopback(host)
    }
}

/// `localhost`, `127.x.x.x` or `[::1]`, with or without a port.
#[cfg(feature = "registry")]
pub(crate) fn is_loopback(host: &str) -> bool {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(all(test, feature = "registry"))]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:1",
            "[::1]:80",
            "::1",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["example.com", "10.0.0.1:5000", "localhost.example.com"] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn debug_hides_password() {
        let shown = format!("{:?}", Credentials::new("alice", "s3cret"));
        assert!(
            shown.contains("alice") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
}
