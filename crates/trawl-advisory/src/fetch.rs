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
//! Base URLs are configurable ([`FeedSources`]) for mirrors and for tests.

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

/// The largest download accepted (the tracker JSON is about 100 MB, osv.dev's
/// Debian export about 200 MB unpacked).
pub const MAX_DOWNLOAD: u64 = 2 << 30;
/// The largest file accepted inside an OSV archive.
pub const MAX_ARCHIVE_ENTRY: u64 = 64 << 20;

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
    /// The download is larger than [`MAX_DOWNLOAD`].
    #[error("downloading {url}: larger than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: u64,
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
        let client = reqwest::blocking::Client::builder()
            .user_agent(concat!("trawl-advisory/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            // The blocking client has no per-read timeout: bound the whole
            // transfer instead, generously for the largest feeds.
            .timeout(Duration::from_secs(1800))
            .build()
            .map_err(|e| FetchError::Http {
                url: String::new(),
                message: e.to_string(),
            })?;
        Ok(Self { dir, client })
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
        if response.content_length().is_some_and(|n| n > MAX_DOWNLOAD) {
            return Err(FetchError::TooLarge {
                url: url.clone(),
                limit: MAX_DOWNLOAD,
            });
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
        let mut limited = response.take(MAX_DOWNLOAD + 1);
        let size =
            std::io::copy(&mut limited, temp.as_file_mut()).map_err(|e| http(e.to_string()))?;
        if size > MAX_DOWNLOAD {
            return Err(FetchError::TooLarge {
                url: url.clone(),
                limit: MAX_DOWNLOAD,
            });
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
            Kind::OsvArchive => unpack_osv(url, temp.path(), &download.target)?,
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
/// it in for `target`.
fn unpack_osv(url: &str, archive: &Path, target: &Path) -> Result<(), FetchError> {
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
        if entry.size() > MAX_ARCHIVE_ENTRY {
            return Err(bad(format!(
                "entry {} is {} bytes, over {MAX_ARCHIVE_ENTRY}",
                name.display(),
                entry.size()
            )));
        }
        let out = staging.path().join(&name);
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let mut file = std::fs::File::create(&out).map_err(io(&out))?;
        let copied = std::io::copy(&mut (&mut entry).take(MAX_ARCHIVE_ENTRY + 1), &mut file)
            .map_err(|e| bad(format!("entry {}: {e}", name.display())))?;
        if copied > MAX_ARCHIVE_ENTRY {
            return Err(bad(format!(
                "entry {} is over {MAX_ARCHIVE_ENTRY} bytes",
                name.display()
            )));
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
