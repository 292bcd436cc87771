//! Downloading feeds from where their publishers serve them (cargo feature `fetch`).
//!
//! - osv.dev: one `all.zip` per ecosystem,
//!   `https://osv-vulnerabilities.storage.googleapis.com/<Ecosystem>/all.zip`
//!   (<https://google.github.io/osv.dev/data/#data-dumps>);
//! - Alpine: the secdb JSON per release and repository,
//!   `https://secdb.alpinelinux.org/<release>/<repo>.json`;
//! - Debian: the security tracker's JSON,
//!   `https://security-tracker.debian.org/tracker/data/json`.
//!
//! A [`FeedMirror`] keeps them in a directory, with each URL's `ETag` and
//! `Last-Modified` in `state.json`, and asks with `If-None-Match` /
//! `If-Modified-Since` next time, so an unchanged feed costs one `304`. Every file
//! (and every unpacked OSV directory) is written beside its target and renamed
//! into place; a failed download leaves the previous copy. [`FeedMirror::update`]
//! then rebuilds the [`AdvisoryStore`](crate::AdvisoryStore) — atomically, and
//! only when a feed changed.
//!
//! Base URLs are configurable ([`FeedSources`]) for mirrors and for tests. They
//! must be `https://`, except for loopback hosts (`127.0.0.0/8`, `::1`,
//! `localhost`): a plain `http://` URL for any other host is refused before
//! anything is requested ([`FetchError::InsecureUrl`], see
//! [`FeedSources::check_urls`]), and so is a redirect to one.
//!
//! # Limits
//!
//! What a feed server sends is untrusted. [`FeedLimits`] bounds it, counting
//! bytes as they are read rather than trusting `Content-Length` or the sizes
//! a zip archive declares; exceeding a limit fails the update with
//! [`FetchError::LimitExceeded`], naming the limit, the URL and the archive
//! entry, and leaves the previous copy in place.
//!
//! | limit | default | bounds |
//! |---|---|---|
//! | [`max_download`](FeedLimits::max_download) | 2 GiB | bytes of one downloaded file |
//! | [`max_entries`](FeedLimits::max_entries) | 1,000,000 | entries in one OSV archive |
//! | [`max_entry_size`](FeedLimits::max_entry_size) | 64 MiB | uncompressed bytes of one archive entry |
//! | [`max_unpacked`](FeedLimits::max_unpacked) | 8 GiB | uncompressed bytes unpacked from one archive |
//! | [`max_ratio`](FeedLimits::max_ratio) | 100 | uncompressed ÷ compressed bytes of one entry, once it is over [`ratio_floor`](FeedLimits::ratio_floor) (1 MiB) |
//!
//! ```no_run
//! use trawl_advisory::fetch::{FeedLimits, FeedMirror, FeedSources};
//!
//! let mirror = FeedMirror::new("/var/lib/trawl/feeds")?.with_limits(FeedLimits {
//!     max_download: 512 << 20,
//!     ..FeedLimits::default()
//! });
//! let sources = FeedSources {
//!     osv_ecosystems: vec!["Debian".into()],
//!     ..FeedSources::default()
//! };
//! sources.check_urls()?; // `update` checks too, before any request
//! mirror.update(&sources, "/var/lib/trawl/trawl.db")?;
//! # Ok::<(), trawl_advisory::fetch::FetchError>(())
//! ```

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::feed::FeedWarning;
use crate::store::{AdvisoryStore, FeedPaths, StoreError, StoreInfo};

/// osv.dev's bucket of per-ecosystem exports.
pub const OSV_BASE: &str = "https://osv-vulnerabilities.storage.googleapis.com";
/// Alpine's secdb.
pub const SECDB_BASE: &str = "https://secdb.alpinelinux.org";
/// The Debian security tracker's JSON export.
pub const DEBIAN_TRACKER_URL: &str = "https://security-tracker.debian.org/tracker/data/json";

pub use crate::limits::{FeedLimit, FeedLimits, MAX_ARCHIVE_ENTRY, MAX_DOWNLOAD};

/// Which feeds to download, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSources {
    /// Base URL of the OSV exports ([`OSV_BASE`]).
    pub osv_base: String,
    /// OSV ecosystems to download, as osv.dev names them (`Debian`, `Alpine`,
    /// `Ubuntu`, `Rocky Linux`).
    pub osv_ecosystems: Vec<String>,
    /// Base URL of Alpine's secdb ([`SECDB_BASE`]).
    pub secdb_base: String,
    /// Alpine releases to download (`v3.18`, `edge`).
    pub alpine_releases: Vec<String>,
    /// Alpine repositories per release (`main`, `community`).
    pub alpine_repositories: Vec<String>,
    /// The tracker JSON's URL ([`DEBIAN_TRACKER_URL`]); `None` to skip it.
    pub debian_tracker: Option<String>,
}

impl FeedSources {
    /// Checks every configured URL: `https://`, or `http://` to a loopback
    /// host (`127.0.0.0/8`, `::1`, `localhost`) only. [`FeedMirror::update`]
    /// and [`FeedMirror::feed_paths`] call it before anything else.
    ///
    /// ```
    /// use trawl_advisory::fetch::{FeedSources, FetchError};
    ///
    /// let local = FeedSources { osv_base: "http://127.0.0.1:8080/osv".into(), ..FeedSources::default() };
    /// assert!(local.check_urls().is_ok());
    /// let plain = FeedSources { osv_base: "http://mirror.example/osv".into(), ..FeedSources::default() };
    /// assert!(matches!(plain.check_urls(), Err(FetchError::InsecureUrl { .. })));
    /// ```
    pub fn check_urls(&self) -> Result<(), FetchError> {
        check_url(&self.osv_base)?;
        check_url(&self.secdb_base)?;
        if let Some(url) = &self.debian_tracker {
            check_url(url)?;
        }
        Ok(())
    }
}

/// Whether `url` may be fetched: `https`, or `http` to a loopback host.
fn url_allowed(url: &reqwest::Url) -> Result<(), &'static str> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err("plain http:// is accepted for loopback hosts only; use https://"),
        _ => Err("only https:// (or http:// to a loopback host) is supported"),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => {
            let name = host.strip_suffix('.').unwrap_or(host);
            name.eq_ignore_ascii_case("localhost")
        }
    }
}

fn check_url(url: &str) -> Result<(), FetchError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| FetchError::InvalidUrl {
        url: url.to_owned(),
        message: e.to_string(),
    })?;
    match url_allowed(&parsed) {
        Ok(()) => Ok(()),
        Err(_) if parsed.scheme() == "http" => Err(FetchError::InsecureUrl {
            url: url.to_owned(),
        }),
        Err(message) => Err(FetchError::InvalidUrl {
            url: url.to_owned(),
            message: message.to_owned(),
        }),
    }
}

impl Default for FeedSources {
    /// The publishers' own URLs, no OSV ecosystem, no Alpine release, and the
    /// Debian tracker.
    fn default() -> Self {
        Self {
            osv_base: OSV_BASE.to_owned(),
            osv_ecosystems: Vec::new(),
            secdb_base: SECDB_BASE.to_owned(),
            alpine_releases: Vec::new(),
            alpine_repositories: vec!["main".into(), "community".into()],
            debian_tracker: Some(DEBIAN_TRACKER_URL.to_owned()),
        }
    }
}

/// Why feeds could not be downloaded or the database rebuilt.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The request failed or the server answered with an error status.
    #[error("downloading {url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// A download or an archive exceeds one of the [`FeedLimits`]; nothing
    /// from it was kept.
    #[error("{url}{}: over {limit} ({max})", entry.as_ref().map_or_else(String::new, |e| format!(", entry {e:?}")))]
    LimitExceeded {
        /// The URL of the download or archive.
        url: String,
        /// Which limit.
        limit: FeedLimit,
        /// Its value.
        max: u64,
        /// The archive entry being unpacked, when the limit concerns one
        /// (`None` for [`FeedLimit::Download`] and [`FeedLimit::Entries`]).
        entry: Option<String>,
    },
    /// A plain `http://` URL for a host other than loopback, configured or
    /// redirected to: refused, since anyone on the path could change the feed.
    #[error(
        "refusing {url}: plain http:// is accepted for loopback hosts only (127.0.0.0/8, ::1, localhost); use https://"
    )]
    InsecureUrl {
        /// The URL.
        url: String,
    },
    /// A configured URL that does not parse or is neither `https` nor `http`.
    #[error("feed URL {url:?}: {message}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// A downloaded OSV archive is not a usable zip file.
    #[error("OSV archive from {url}: {message}")]
    Archive {
        /// The URL it came from.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// A file in the mirror directory could not be read or written.
    #[error("feed mirror {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A name that cannot be used as a directory (an ecosystem or release
    /// containing `/`, `..`).
    #[error("{what} {name:?} cannot name a directory")]
    InvalidName {
        /// `ecosystem`, `release` or `repository`.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// The database could not be rebuilt from the downloaded feeds.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What happened to one URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// Downloaded anew (status 200), with this many bytes.
    Downloaded(u64),
    /// The server said the copy is current (status 304).
    NotModified,
}

/// The result of [`FeedMirror::update`].
#[derive(Debug)]
pub struct UpdateReport {
    /// Each URL and what happened to it, in download order.
    pub fetched: Vec<(String, FetchOutcome)>,
    /// The new database's summary and the feeds' warnings, when it was
    /// rebuilt; `None` when every feed was current and the file was left alone.
    pub rebuilt: Option<(StoreInfo, Vec<FeedWarning>)>,
}

/// A directory holding downloaded feeds and what the servers said about them.
#[derive(Debug)]
pub struct FeedMirror {
    dir: PathBuf,
    client: reqwest::blocking::Client,
    limits: FeedLimits,
}

/// `state.json`: per URL, the validators for the next conditional request.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    urls: BTreeMap<String, Validators>,
    /// The URLs the database was last built from, to rebuild when the selection
    /// changes even though no feed did.
    built_from: Vec<String>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Validators {
    etag: Option<String>,
    last_modified: Option<String>,
}

/// One file to keep current: where it comes from and where it goes.
struct Download {
    url: String,
    target: PathBuf,
    kind: Kind,
}

enum Kind {
    /// Stored as downloaded.
    File,
    /// An OSV `all.zip`, unpacked into the target directory.
    OsvArchive,
}

impl FeedMirror {
    /// A mirror in `dir` (created if missing), with a 30 s connect timeout and
    /// 30 min for each whole transfer.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, FetchError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| FetchError::Io {
            path: dir.clone(),
            source,
        })?;
        // Redirects stay on https (or loopback), like the configured URLs.
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            if let Err(message) = url_allowed(attempt.url()) {
                let error = format!("redirected to {}: {message}", attempt.url());
                attempt.error(error)
            } else if attempt.previous().len() >= 10 {
                attempt.error("more than 10 redirects")
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::blocking::Client::builder()
            .user_agent(concat!("trawl-advisory/", env!("CARGO_PKG_VERSION")))
            .redirect(redirects)
            .connect_timeout(Duration::from_secs(30))
            // The blocking client has no per-read timeout: bound the whole
            // transfer instead, generously for the largest feeds.
            .timeout(Duration::from_secs(1800))
            .build()
            .map_err(|e| FetchError::Http {
                url: String::new(),
                message: e.to_string(),
            })?;
        Ok(Self {
            dir,
            client,
            limits: FeedLimits::default(),
        })
    }

    /// The same mirror with other [`FeedLimits`].
    pub fn with_limits(mut self, limits: FeedLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The limits downloads and archives are held to.
    pub fn limits(&self) -> &FeedLimits {
        &self.limits
    }

    /// The mirror's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where each selected feed lives in the mirror, for building a store.
    pub fn feed_paths(&self, sources: &FeedSources) -> Result<FeedPaths, FetchError> {
        let mut paths = FeedPaths::default();
        for download in self.plan(sources)? {
            match download.kind {
                Kind::OsvArchive => paths.osv_dirs.push(download.target),
                Kind::File if download.target.starts_with(self.dir.join("secdb")) => {
                    paths.secdb_paths.push(download.target)
                }
                Kind::File => paths.debian_tracker_files.push(download.target),
            }
        }
        Ok(paths)
    }

    /// Brings every selected feed up to date, then rebuilds `database` from them
    /// if a feed changed, the selection changed, or the file does not exist.
    pub fn update(
        &self,
        sources: &FeedSources,
        database: impl AsRef<Path>,
    ) -> Result<UpdateReport, FetchError> {
        let database = database.as_ref();
        let mut state = self.read_state()?;
        let plan = self.plan(sources)?;
        let mut fetched = Vec::new();
        for download in &plan {
            // A copy that went missing must be fetched whole.
            if !download.target.exists() {
                state.urls.remove(&download.url);
            }
            let outcome = self.fetch(download, &mut state)?;
            // Remember validators as soon as a file is in place.
            self.write_state(&state)?;
            fetched.push((download.url.clone(), outcome));
        }
        let urls: Vec<String> = plan.iter().map(|d| d.url.clone()).collect();
        let changed = fetched
            .iter()
            .any(|(_, o)| matches!(o, FetchOutcome::Downloaded(_)));
        let rebuilt = if changed || state.built_from != urls || !database.exists() {
            let built = AdvisoryStore::build(&self.feed_paths(sources)?, database)?;
            AdvisoryStore::open(database)?.verify()?;
            state.built_from = urls;
            self.write_state(&state)?;
            Some(built)
        } else {
            None
        };
        Ok(UpdateReport { fetched, rebuilt })
    }

    fn plan(&self, sources: &FeedSources) -> Result<Vec<Download>, FetchError> {
        sources.check_urls()?;
        let mut plan = Vec::new();
        for ecosystem in &sources.osv_ecosystems {
            check_name("ecosystem", ecosystem)?;
            plan.push(Download {
                url: format!(
                    "{}/{}/all.zip",
                    sources.osv_base.trim_end_matches('/'),
                    encode_segment(ecosystem)
                ),
                target: self.dir.join("osv").join(ecosystem),
                kind: Kind::OsvArchive,
            });
        }
        for release in &sources.alpine_releases {
            check_name("release", release)?;
            for repository in &sources.alpine_repositories {
                check_name("repository", repository)?;
                plan.push(Download {
                    url: format!(
                        "{}/{release}/{repository}.json",
                        sources.secdb_base.trim_end_matches('/')
                    ),
                    target: self
                        .dir
                        .join("secdb")
                        .join(release)
                        .join(format!("{repository}.json")),
                    kind: Kind::File,
                });
            }
        }
        if let Some(url) = &sources.debian_tracker {
            plan.push(Download {
                url: url.clone(),
                target: self.dir.join("debian-tracker").join("tracker.json"),
                kind: Kind::File,
            });
        }
        Ok(plan)
    }

    fn fetch(&self, download: &Download, state: &mut State) -> Result<FetchOutcome, FetchError> {
        let url = &download.url;
        let http = |message: String| FetchError::Http {
            url: url.clone(),
            message,
        };
        let mut request = self.client.get(url);
        if let Some(known) = state.urls.get(url) {
            if let Some(etag) = &known.etag {
                request = request.header(reqwest::header::IF_NONE_MATCH, etag);
            }
            if let Some(date) = &known.last_modified {
                request = request.header(reqwest::header::IF_MODIFIED_SINCE, date);
            }
        }
        let response = request.send().map_err(|e| http(error_chain(&e)))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(FetchOutcome::NotModified);
        }
        if !status.is_success() {
            return Err(http(format!("server answered {status}")));
        }
        let max_download = self.limits.max_download;
        let too_large = || FetchError::LimitExceeded {
            url: url.clone(),
            limit: FeedLimit::Download,
            max: max_download,
            entry: None,
        };
        if response.content_length().is_some_and(|n| n > max_download) {
            return Err(too_large());
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let validators = Validators {
            etag: header(reqwest::header::ETAG),
            last_modified: header(reqwest::header::LAST_MODIFIED),
        };
        let parent = download.target.parent().unwrap_or(&self.dir);
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| FetchError::Io { path, source }
        };
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        let mut temp = tempfile::Builder::new()
            .prefix(".download-")
            .tempfile_in(parent)
            .map_err(io(parent))?;
        // Counted as received: `Content-Length` may be absent or false.
        let mut limited = response.take(max_download.saturating_add(1));
        let size =
            std::io::copy(&mut limited, temp.as_file_mut()).map_err(|e| http(e.to_string()))?;
        if size > max_download {
            return Err(too_large());
        }
        temp.as_file_mut().flush().map_err(io(temp.path()))?;
        match download.kind {
            Kind::File => {
                temp.as_file().sync_all().map_err(io(temp.path()))?;
                temp.persist(&download.target).map_err(|e| FetchError::Io {
                    path: download.target.clone(),
                    source: e.error,
                })?;
            }
            Kind::OsvArchive => unpack_osv(url, temp.path(), &download.target, &self.limits)?,
        }
        state.urls.insert(url.clone(), validators);
        Ok(FetchOutcome::Downloaded(size))
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    fn read_state(&self) -> Result<State, FetchError> {
        let path = self.state_path();
        match std::fs::read(&path) {
            // An unreadable state only costs full downloads.
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!("{}: {e}; downloading every feed anew", path.display());
                State::default()
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(source) => Err(FetchError::Io { path, source }),
        }
    }

    fn write_state(&self, state: &State) -> Result<(), FetchError> {
        let path = self.state_path();
        let io = |source| FetchError::Io {
            path: path.clone(),
            source,
        };
        let mut temp = tempfile::NamedTempFile::new_in(&self.dir).map_err(io)?;
        serde_json::to_writer_pretty(temp.as_file_mut(), state)
            .map_err(|e| io(std::io::Error::other(e)))?;
        temp.persist(&path).map_err(|e| io(e.error))?;
        Ok(())
    }
}

/// Unpacks the `*.json` files of an OSV archive into a new directory, then swaps
/// it in for `target`, within `limits`: the entry count from the central
/// directory, sizes counted as the entries are inflated (the zip reader
/// consumes at most an entry's declared compressed size, so the ratio is
/// measured against what was really read).
fn unpack_osv(
    url: &str,
    archive: &Path,
    target: &Path,
    limits: &FeedLimits,
) -> Result<(), FetchError> {
    let bad = |message: String| FetchError::Archive {
        url: url.to_owned(),
        message,
    };
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| FetchError::Io { path, source }
    };
    let file = std::fs::File::open(archive).map_err(io(archive))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;
    if zip.len() as u64 > limits.max_entries {
        return Err(FetchError::LimitExceeded {
            url: url.to_owned(),
            limit: FeedLimit::Entries,
            max: limits.max_entries,
            entry: None,
        });
    }
    let mut unpacked: u64 = 0;
    let mut buffer = vec![0u8; 64 << 10];
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let staging = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(parent)
        .map_err(io(parent))?;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| bad(e.to_string()))?;
        if !entry.is_file() {
            continue;
        }
        // osv.dev's archives are flat; anything reaching outside is refused.
        let Some(name) = entry.enclosed_name() else {
            return Err(bad(format!("entry {:?} escapes the archive", entry.name())));
        };
        if name.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let exceeded = |limit: FeedLimit, max: u64| FetchError::LimitExceeded {
            url: url.to_owned(),
            limit,
            max,
            entry: Some(name.display().to_string()),
        };
        // The declared size refuses an honest giant early; the count below
        // catches a lying one.
        if entry.size() > limits.max_entry_size {
            return Err(exceeded(FeedLimit::EntrySize, limits.max_entry_size));
        }
        let compressed = entry.compressed_size().max(1);
        let out = staging.path().join(&name);
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let mut file = std::fs::File::create(&out).map_err(io(&out))?;
        let mut size: u64 = 0;
        loop {
            let n = match entry.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(bad(format!("entry {}: {e}", name.display()))),
            };
            size += n as u64;
            unpacked += n as u64;
            if size > limits.max_entry_size {
                return Err(exceeded(FeedLimit::EntrySize, limits.max_entry_size));
            }
            if unpacked > limits.max_unpacked {
                return Err(exceeded(FeedLimit::Unpacked, limits.max_unpacked));
            }
            if size > limits.ratio_floor && size > limits.max_ratio.saturating_mul(compressed) {
                return Err(exceeded(FeedLimit::Ratio, limits.max_ratio));
            }
            file.write_all(&buffer[..n]).map_err(io(&out))?;
        }
    }
    // Swap: the old copy moves aside, the new one in, the old one goes.
    let staged = staging.keep();
    let old = parent.join(format!(
        ".old-{}",
        target
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    ));
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(io(&old))?;
    }
    if target.exists() {
        std::fs::rename(target, &old).map_err(io(target))?;
    }
    std::fs::rename(&staged, target).map_err(io(target))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(io(&old))?;
    }
    Ok(())
}

fn check_name(what: &'static str, name: &str) -> Result<(), FetchError> {
    let bad = name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']);
    if bad {
        return Err(FetchError::InvalidName {
            what,
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Percent-encodes one URL path segment (`Rocky Linux` → `Rocky%20Linux`).
fn encode_segment(segment: &str) -> String {
    let mut out = String::new();
    for &b in segment.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An error and its causes, since reqwest's own message omits them.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
