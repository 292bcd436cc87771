//! The results store and the job queue, on SQLite or PostgreSQL behind one
//! interface: [`Store`].
//!
//! | backend | for | location |
//! |---|---|---|
//! | SQLite ([`StoreLocation::sqlite`]) | one process, one file; the default (`DATA/watch.sqlite`) | a file, locked to its process |
//! | PostgreSQL ([`StoreLocation::postgres`]) | many processes on many machines sharing one database | `postgres://USER@HOST:PORT/DB` |
//!
//! Both keep the same tables and give the same answers (the behaviour
//! tests run against both):
//!
//! | table | key | holds |
//! |---|---|---|
//! | `images` | manifest digest | where to pull it, the stored inventory and report (JSON) and the report's SHA-256, verdict, summary, scan and rescan counts, when it was last scanned, matched, pushed and pulled. The report is a cache stamped with what it was matched against: a scan writes it, a rescan does not (it writes the verdict, summary, hash and the finding rows that changed), and a stale one is rebuilt from the inventory when served ([`StoredReport`]) |
//! | `tags` | (repository, tag, digest) | the repositories and tags naming each image; tag `''` lists an image pushed by digest only |
//! | `findings` | (digest, id, key) | one row per image and finding of its report, keyed by what does not move when another finding comes or goes (the key: package, path, installed version, and a repeat count for findings alike in all these): id, aliases, package and version, source package and version, ecosystem, severity (rank), fix state, fixed version, layer, path, suppressed; indexed by every id and alias, by package and source package, by severity. The report's order is derived from the columns (severity, package, id, key) |
//! | `jobs` | manifest digest | the scan queue: `queued` or `running`, in arrival order, and the lease of a running job |
//! | `rescans`, `rescan_batches` | id | rescans planned after an advisory database or policy change, split into batches that processes claim under leases |
//! | `outbox` | seq; (event id, target) unique | notifications to deliver, one row per event and target, written in the transaction of the result they report ([`outbox`]) |
//! | `summary_counts`, `summary_deltas` | (kind, repository, key); seq | the counts [`Store::summary`] reads, kept by triggers on `images`, `findings` and `tags` (PostgreSQL appends deltas that are folded in) |
//! | `summary_images`, `summary_packages` | digest; (digest, package) | each image's findings that count, in all and per package, so that the counters know when an image's first or last one comes or goes |
//!
//! On PostgreSQL, `findings` is a view: images share the rows of the
//! packages they share, stored once per (advisory database and policy,
//! package), and an image whose rows the shared ones would not give
//! exactly keeps rows of its own (the `layout` module says how, and why).
//!
//! The summary's counters are the database's own business: triggers keep
//! them on every write, whichever statement makes it (the `counters`
//! module says how, and what a scoped summary counts).
//!
//! Every change is one transaction. Findings are written set-wise (SQLite:
//! one prepared statement reused in the transaction; PostgreSQL: `COPY …
//! FROM STDIN BINARY`), rescans read and write their batch in a handful of
//! statements, so no call costs a round trip per finding or per image. A
//! rescan writes only the finding rows that changed: it compares the new
//! rows with the stored ones by key (PostgreSQL, for images in own mode: it
//! reads the batch's stored keys and value hashes
//! ([`FindingRow::value_hash`]), then deletes the gone keys with one
//! statement, updates the changed rows from a temporary table filled with
//! one `COPY`, and copies the new ones in). On PostgreSQL a normalized
//! image's rescan writes only its `images` row: the rows of its packages
//! under the new target are written once for the whole registry, by the
//! first batch that needs them.
//!
//! # Leases, and which job a crash is charged to
//!
//! A running job holds a lease: its owner (one per process), a token (one
//! per claim) and an expiry that the worker renews while it scans
//! ([`Store::heartbeat`]). A job whose lease expired, or whose owner is known
//! to be gone, is *orphaned*: its process died during the scan
//! ([`Store::recover_orphans`]). With SQLite the file's lock proves, at
//! start, that the previous process is gone; with PostgreSQL only expiry
//! tells, so another process takes the job over once its lease runs out.
//!
//! A crash takes every scan of the process with it, and only one of them
//! may have caused it. So a job is charged an attempt only when it was
//! running *alone* in its process since it was claimed; jobs that ran beside
//! others are not charged but marked `after_crash`, and such jobs then run
//! one at a time (no other job is claimed by a process running one, and one
//! is claimed only by a process running nothing). A poisonous image is thus
//! charged for each crash it causes, and the images that happened to be
//! scanned beside it are not; after [`MAX_ATTEMPTS`] crashes it is given up,
//! so it cannot keep the service in a crash loop.
//!
//! # Rescans shared by processes
//!
//! A process that takes a new advisory database or policy (a
//! [`MatchTarget`]) plans a rescan of it ([`Store::plan_rescan`]): the
//! images with an inventory, pushed or pulled within the window, whose
//! report came from another target, split into batches. Every process
//! matching against the same target claims batches of it
//! ([`Store::claim_rescan`], under a lease renewed with
//! [`Store::renew_rescan`]) and stores them ([`Store::finish_rescan`]), so N
//! processes share one rescan and each image is matched once per target: a
//! batch is written only while its claim holds, and only into images still
//! stale for the target. The newest planned target wins: planning one
//! drops the waiting batches of the others, and a batch of an older target
//! writes nothing. An image stored against another target after the plan
//! (by a process that had not taken the new database yet) is planned again
//! when that process takes it.

mod counters;
mod layout;
pub mod outbox;
mod postgres;
mod query;
mod sqlite;

pub use layout::package_key;
pub use outbox::{Delivery, DeliveryOutcome, OutboxCounts};

pub use query::{
    Affected, AffectedImage, Cursor, FindingQuery, FindingsPage, ImageFinding, RegistryFinding,
    RegistrySummary, Scope, TagName, VulnerabilityRow,
};

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use trawl::classify::{FindingFacts, FixStateKind, Judgement};
use trawl::{Finding, Report, Severity};

use crate::events::Recorded;

/// Crashes charged to one job before it is given up; also how often a
/// rescan batch is taken over after its lease expired before it is dropped.
pub const MAX_ATTEMPTS: i64 = 3;

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The directory of the SQLite file could not be created.
    #[error("cannot create data directory {}: {source}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// SQLite failed.
    #[error("results store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed (or the connection to it).
    #[error("results store: {}", postgres_message(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// No PostgreSQL connection could be had from the pool.
    #[error("results store: no connection to PostgreSQL: {0}")]
    Pool(String),
    /// Another process holds the SQLite file.
    #[error("results store {} is in use by another process (one watch per SQLite file; use PostgreSQL for several)", path.display())]
    Locked {
        /// The file.
        path: PathBuf,
    },
    /// The store was written by a newer (or unknown) version.
    #[error("results store {location}: schema version {found}, this program knows up to {known}")]
    Schema {
        /// The file or database.
        location: String,
        /// Its schema version.
        found: i64,
        /// The newest this program knows.
        known: i64,
    },
    /// A store location that is not one.
    #[error("{0}")]
    Location(String),
    /// A report or an event could not be (de)serialized for the store.
    #[error("results store: JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A blocking task running a store call ended without an answer.
    #[error("results store: the task running the query was lost")]
    Lost,
}

impl StoreError {
    /// Whether the store was unreachable rather than wrong: the connection
    /// to PostgreSQL was lost or refused (a server restarting, a backend
    /// terminated), the server is shutting down or not yet accepting
    /// connections (SQLSTATE classes 08 and 57P), or the pool had no
    /// connection to give. The same call may succeed once the server is back.
    pub fn is_connection_loss(&self) -> bool {
        match self {
            StoreError::Pool(_) => true,
            StoreError::Postgres(e) => {
                let code = e.code().map(|c| c.code());
                e.is_closed()
                    || code.is_some_and(|c| c.starts_with("08") || c.starts_with("57P"))
                    || (e.as_db_error().is_none()
                        && std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()))
            }
            _ => false,
        }
    }
}

/// A PostgreSQL error with what the server said (`db error` alone says nothing).
fn postgres_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// Where the store lives: an SQLite file or a PostgreSQL database.
///
/// ```
/// use trawl_watch::StoreLocation;
/// let pg: StoreLocation = "postgres://watch@db.example:5432/trawl".parse()?;
/// assert!(pg.is_postgres() && !pg.has_password());
/// let file: StoreLocation = "sqlite:/var/lib/trawl-watch/watch.sqlite".parse()?;
/// assert_eq!(file.to_string(), "sqlite:/var/lib/trawl-watch/watch.sqlite");
/// # Ok::<(), trawl_watch::StoreError>(())
/// ```
#[derive(Clone)]
pub struct StoreLocation(Location);

#[derive(Clone)]
enum Location {
    Sqlite(PathBuf),
    Postgres {
        config: Box<tokio_postgres::Config>,
        /// The URL as given, for messages (the password is never in it).
        shown: String,
        pool_size: usize,
    },
}

impl StoreLocation {
    /// An SQLite file (created with its directory when missing).
    pub fn sqlite(path: impl Into<PathBuf>) -> StoreLocation {
        StoreLocation(Location::Sqlite(path.into()))
    }

    /// A PostgreSQL database by URL (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB?…`)
    /// or libpq key/value string (`host=… user=… dbname=…`). Give the
    /// password with [`StoreLocation::with_password`] rather than in the
    /// URL when the URL is shown anywhere.
    pub fn postgres(url: &str) -> Result<StoreLocation, StoreError> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::Location(format!("not a PostgreSQL URL: {e}")))?;
        Ok(StoreLocation(Location::Postgres {
            shown: redact_password(url),
            config: Box::new(config),
            pool_size: 16,
        }))
    }

    /// The same database with this password.
    pub fn with_password(mut self, password: impl AsRef<[u8]>) -> StoreLocation {
        if let Location::Postgres { config, .. } = &mut self.0 {
            config.password(password);
        }
        self
    }

    /// At most this many PostgreSQL connections per process (default 16;
    /// at least 2). Ignored for SQLite.
    pub fn with_pool_size(mut self, size: usize) -> StoreLocation {
        if let Location::Postgres { pool_size, .. } = &mut self.0 {
            *pool_size = size.max(2);
        }
        self
    }

    /// Whether this is a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        matches!(self.0, Location::Postgres { .. })
    }

    /// Whether a PostgreSQL location carries a password.
    pub fn has_password(&self) -> bool {
        matches!(&self.0, Location::Postgres { config, .. } if config.get_password().is_some())
    }
}

impl FromStr for StoreLocation {
    type Err = StoreError;

    /// `postgres://…` or `postgresql://…`, else `sqlite:PATH` or a path.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            StoreLocation::postgres(s)
        } else if let Some(path) = s.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err(StoreError::Location("sqlite: names no file".into()));
            }
            Ok(StoreLocation::sqlite(path))
        } else if s.contains("://") {
            Err(StoreError::Location(format!(
                "{:?}: use postgres://USER@HOST[:PORT]/DB or sqlite:PATH",
                redact_password(s)
            )))
        } else if s.is_empty() {
            Err(StoreError::Location("an empty store location".into()))
        } else {
            Ok(StoreLocation::sqlite(s))
        }
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Location::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Location::Postgres { shown, .. } => f.write_str(shown),
        }
    }
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreLocation({self})")
    }
}

/// A URL with the password of its user info replaced by `<redacted>`.
fn redact_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => match authority[..at].split_once(':') {
            Some((user, _)) => format!(
                "{}{user}:<redacted>{}",
                &url[..scheme_end + 3],
                &url[scheme_end + 3 + at..]
            ),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// Where a scan of one image stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageState {
    /// Waiting for a worker.
    Queued,
    /// A worker is pulling it.
    Scanning,
    /// It has a report.
    Scanned,
    /// Its last scan failed and it has no report.
    Failed,
}

impl ImageState {
    /// The lower-case name the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageState::Queued => "queued",
            ImageState::Scanning => "scanning",
            ImageState::Scanned => "scanned",
            ImageState::Failed => "failed",
        }
    }

    fn of(job: Option<&str>, has_report: bool) -> ImageState {
        match (job, has_report) {
            (Some("running"), _) => ImageState::Scanning,
            (Some(_), _) => ImageState::Queued,
            (None, true) => ImageState::Scanned,
            (None, false) => ImageState::Failed,
        }
    }
}

/// One image as stored, without its inventory and report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImageRecord {
    /// The manifest digest.
    pub digest: String,
    /// The registry it is pulled from.
    pub registry: String,
    /// The manifest media type.
    pub media_type: String,
    /// (repository, tag) pairs naming it; `None` for an untagged push.
    pub tags: Vec<(String, Option<String>)>,
    /// Where its scan stands.
    pub state: ImageState,
    /// `healthy`, `unhealthy`, `unsupported` or `partial`, once scanned.
    pub verdict: Option<String>,
    /// Why, in words.
    pub verdict_reason: Option<String>,
    /// The report's summary (JSON), once scanned.
    pub summary: Option<String>,
    /// The content SHA-256 of the advisory database the report was matched against.
    pub advisory_db: Option<String>,
    /// The id of the policy the report was classified under.
    pub policy: Option<String>,
    /// The last scan failure, if the last scan failed.
    pub error: Option<String>,
    /// Scans (pulls of the image).
    pub scans: i64,
    /// Re-matches of the stored inventory against a new advisory database or policy.
    pub rescans: i64,
    /// Failed scans.
    pub failures: i64,
    /// Unix seconds of the last successful scan.
    pub last_scanned: Option<i64>,
    /// Unix seconds of the last match (scan or rescan).
    pub last_matched: Option<i64>,
    /// Unix seconds of the last push.
    pub last_pushed: Option<i64>,
    /// Unix seconds of the last pull.
    pub last_pulled: Option<i64>,
    /// Unix seconds of the last failed scan.
    pub last_failed: Option<i64>,
    /// Its scan job, while it has one.
    pub job: Option<JobStatus>,
}

/// A queued or running job, as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobStatus {
    /// Crashes charged to it (it was running alone when its process died).
    pub attempts: i64,
    /// A process died while it ran, so it runs alone.
    pub after_crash: bool,
}

/// A scan to run, claimed under a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The manifest digest.
    pub digest: String,
    /// The configured registry (as events name it) to pull from.
    pub registry: String,
    /// The repository to pull from.
    pub repository: String,
    /// This claim's lease token: renewing, finishing and releasing the job
    /// need it, so a claim that lost its lease changes nothing of the next.
    pub token: i64,
}

/// What became of a batch of events: the first `recorded` were applied, in
/// order; the rest (`deferred`) were not, because the next of them needed a
/// scan and `max_pending` scans were waiting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Events applied.
    pub recorded: usize,
    /// New jobs, net of queued ones that deletions removed.
    pub queued: usize,
    /// Images forgotten: deleted from the last repository holding them.
    pub forgotten: usize,
    /// Events not applied.
    pub deferred: usize,
    /// Jobs waiting for a worker afterwards.
    pub pending: usize,
}

/// What [`Store::recover_orphans`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Orphaned jobs queued again (each now runs alone).
    pub jobs: usize,
    /// Of them, those charged an attempt (they were running alone).
    pub charged: usize,
}

/// What a report is matched against: the advisory database (its content
/// SHA-256) and the policy (its id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MatchTarget {
    /// The advisory database's content SHA-256.
    pub advisory_db: String,
    /// The policy's id.
    pub policy: String,
}

/// One finding of a report as the `findings` table holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FindingRow {
    /// The vulnerability id.
    pub id: String,
    /// Its other ids.
    pub aliases: Vec<String>,
    /// The installed binary package.
    pub package: String,
    /// Its installed version.
    pub version: String,
    /// The source package the advisory is about.
    pub source_name: String,
    /// The source version compared.
    pub source_version: String,
    /// The feed ecosystem that matched (`Debian:12`).
    pub ecosystem: String,
    /// How serious it is.
    pub severity: Severity,
    /// Fixed, unfixed, or will not be fixed.
    pub fix_state: FixStateKind,
    /// The version that fixes it.
    pub fixed_version: Option<String>,
    /// The layer that introduced the package.
    pub layer: Option<String>,
    /// For a language package: where it is in the image.
    pub path: Option<String>,
    /// The policy suppresses it (it does not count toward the verdict).
    pub suppressed: bool,
}

/// Severities by rank, as the store keeps them (a small integer, so that
/// "at or above" is a range).
const SEVERITIES: [Severity; 6] = [
    Severity::Unknown,
    Severity::Negligible,
    Severity::Low,
    Severity::Medium,
    Severity::High,
    Severity::Critical,
];

/// The rank the store keeps for a severity: unknown 0 … critical 5.
pub fn severity_rank(severity: Severity) -> i16 {
    SEVERITIES
        .iter()
        .position(|s| *s == severity)
        .and_then(|i| i16::try_from(i).ok())
        .unwrap_or(0)
}

/// The severity of a stored rank (unknown for a rank out of range).
pub fn severity_of_rank(rank: i16) -> Severity {
    usize::try_from(rank)
        .ok()
        .and_then(|i| SEVERITIES.get(i).copied())
        .unwrap_or(Severity::Unknown)
}

const FIX_STATES: [FixStateKind; 3] = [
    FixStateKind::Fixed,
    FixStateKind::Unfixed,
    FixStateKind::WillNotFix,
];

/// The fix state of its stored name (unfixed for an unknown name).
pub fn fix_state_of(name: &str) -> FixStateKind {
    FIX_STATES
        .into_iter()
        .find(|k| k.as_str() == name)
        .unwrap_or(FixStateKind::Unfixed)
}

impl FindingRow {
    /// [`FindingRow::new`], taking the finding's values instead of copying them.
    fn from_finding(finding: Finding, suppressed: bool) -> FindingRow {
        FindingRow {
            id: finding.id,
            aliases: finding.aliases,
            package: finding.package,
            version: finding.installed_version,
            source_name: finding.source_name,
            source_version: finding.source_version,
            ecosystem: finding.ecosystem,
            severity: finding.severity,
            fix_state: finding.fix_state,
            fixed_version: finding.fixed_version,
            layer: finding.layer,
            path: finding.path,
            suppressed,
        }
    }

    fn new(finding: &Finding, suppressed: bool) -> FindingRow {
        FindingRow {
            id: finding.id.clone(),
            aliases: finding.aliases.clone(),
            package: finding.package.clone(),
            version: finding.installed_version.clone(),
            source_name: finding.source_name.clone(),
            source_version: finding.source_version.clone(),
            ecosystem: finding.ecosystem.clone(),
            severity: finding.severity,
            fix_state: finding.fix_state,
            fixed_version: finding.fixed_version.clone(),
            layer: finding.layer.clone(),
            path: finding.path.clone(),
            suppressed,
        }
    }

    /// What identifies the finding within its image beside its id, so
    /// that its bytes sort as the report orders findings of one package
    /// and id: package, path (none first), installed version, separated by
    /// U+001F (below every printable character).
    fn key_base(&self) -> String {
        key_base_of(&self.package, self.path.as_deref(), &self.version)
    }

    /// A hash of what the row holds beside its key (id, package, path,
    /// version): the store compares a rescan's rows with the stored ones by
    /// it, without reading them whole. The first 8 bytes of the SHA-256 of
    /// the columns' JSON.
    pub fn value_hash(&self) -> i64 {
        // Serialized straight into the hasher, as the JSON array of these
        // (the same bytes `serde_json::json!([...]).to_string()` gives, so
        // stored hashes stay valid) without building the array first.
        let values = (
            &self.aliases,
            &self.source_name,
            &self.source_version,
            &self.ecosystem,
            severity_rank(self.severity),
            self.fix_state.as_str(),
            &self.fixed_version,
            &self.layer,
            self.suppressed,
            // In the key, but also here: a key that repeats (a count
            // appended) could otherwise match rows that differ in these.
            &self.package,
            &self.version,
            &self.path,
        );
        json_hash(&values)
    }

    /// The id and aliases, lower-case and without repeats: what a lookup
    /// by any of them compares with.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = std::iter::once(&self.id)
            .chain(&self.aliases)
            .map(|k| k.to_ascii_lowercase())
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }
}

/// [`FindingRow::key_base`] of a row of `package`, `path` and `version`.
fn key_base_of(package: &str, path: Option<&str>, version: &str) -> String {
    let path = path.unwrap_or_default();
    let mut key = String::with_capacity(
        package.len() + path.len() + version.len() + 2 * KEY_SEPARATOR.len_utf8(),
    );
    key.push_str(package);
    key.push(KEY_SEPARATOR);
    key.push_str(path);
    key.push(KEY_SEPARATOR);
    key.push_str(version);
    key
}

/// The first 8 bytes (big-endian) of the SHA-256 of `value`'s JSON
/// (compact, as `serde_json::to_string` writes it). Serialized into a
/// buffer kept by the thread, then hashed at once: feeding the hasher each
/// of serde_json's tokens cost more than the serializing.
fn json_hash<T: serde::Serialize + ?Sized>(value: &T) -> i64 {
    thread_local! {
        /// The last value's JSON, kept for its capacity.
        static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUFFER.with_borrow_mut(|buffer| {
        buffer.clear();
        // Writing into a vector cannot fail; what is hashed serializes
        // (strings, numbers, options, sequences, enums of unit variants).
        let _ = serde_json::to_writer(&mut *buffer, value);
        let digest = Sha256::digest(buffer.as_slice());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(first)
    })
}

/// Separates the parts of a finding's stable key.
const KEY_SEPARATOR: char = '\u{1f}';

/// The stable keys of an image's finding rows, in their order: a finding
/// row is stored under (digest, id, key), and a rescan compares rows by
/// it, so a finding added or removed moves no other row. The key is
/// [`FindingRow::key_base`]; a row whose (id, key) repeats an earlier
/// one's (two findings alike in all of these) gets `U+001F n` appended,
/// its n-th repeat, so keys are unique within an image whatever the
/// package names hold.
pub(crate) fn finding_keys(rows: &[FindingRow]) -> Vec<String> {
    let mut keys: Vec<String> = rows.iter().map(FindingRow::key_base).collect();
    // Repeats are rare: found by reference, then suffixed.
    let mut repeats: Vec<(usize, usize)> = Vec::new();
    {
        let mut seen: std::collections::HashMap<(&str, &str), usize> =
            std::collections::HashMap::with_capacity(rows.len());
        for (i, (f, key)) in rows.iter().zip(&keys).enumerate() {
            let n = seen.entry((f.id.as_str(), key.as_str())).or_insert(0);
            if *n > 0 {
                repeats.push((i, *n));
            }
            *n += 1;
        }
    }
    for (i, n) in repeats {
        keys[i] = format!("{}{KEY_SEPARATOR}{n}", keys[i]);
    }
    keys
}

/// A report to store, with what the store keeps of it apart.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MatchResult {
    /// The verdict's name.
    pub verdict: String,
    /// Why.
    pub verdict_reason: String,
    /// The summary, JSON.
    pub summary: String,
    /// The whole report, JSON, when it is to be stored: a scan stores it
    /// ([`MatchResult::new`]); a rescan does not (the stored one becomes a
    /// stale cache, rebuilt from the inventory when served: see
    /// [`StoredReport`]), except for an image stored without one
    /// ([`MatchResult::rematched`]).
    pub report: Option<String>,
    /// SHA-256 (hex) of the results the store keeps apart: the verdict, its
    /// reason, the summary and every finding row. A rescan whose results
    /// hash the same writes nothing of them but its new target and counts.
    /// (Not the report's hash: serializing and hashing a whole report per
    /// image was most of a rescan's CPU.)
    pub report_sha256: String,
    /// The findings that count, then the suppressed ones, in report order.
    pub findings: Vec<FindingRow>,
    /// The aggregate of `findings` the summary's counters take
    /// ([`FindingCounts::of`] them): computed with the rows, by whoever
    /// builds the result (a scan or rescan worker), not in the store's
    /// transaction.
    pub counts: FindingCounts,
    /// The database and policy it was matched against.
    pub target: MatchTarget,
    /// The report's OS and packages: what PostgreSQL stores the findings
    /// against ([`layout`]).
    os: Option<trawl::inventory::OsRelease>,
    packages: Vec<trawl::Package>,
}

impl MatchResult {
    /// How the findings would be stored normalized, or why they cannot be
    /// (the `layout` module). `cache` holds what the results of a batch
    /// share ([`layout::BatchCache`]).
    pub(crate) fn layout<'a>(
        &'a self,
        cache: &mut layout::BatchCache<'a>,
    ) -> Result<layout::Layout<'a>, String> {
        layout::layout(cache, self.os.as_ref(), &self.packages, &self.findings)
    }

    /// The SHA-256 of the links PostgreSQL would store for this result and
    /// how many distinct packages they name, or why its findings would be
    /// stored as the image's own (the `layout` module). For tests.
    #[doc(hidden)]
    pub fn layout_digest(&self) -> Result<([u8; 32], usize), String> {
        self.layout(&mut layout::BatchCache::default())
            .map(|l| (l.links_sha256, l.packages.len()))
    }

    /// [`MatchResult::layout_digest`] of each of a batch's results, as
    /// PostgreSQL's write computes their layouts (the package keys shared).
    /// For benches.
    #[doc(hidden)]
    pub fn layout_digests<'a>(
        results: impl IntoIterator<Item = &'a MatchResult>,
    ) -> Vec<Result<([u8; 32], usize), String>> {
        let mut cache = layout::BatchCache::default();
        results
            .into_iter()
            .map(|r| {
                r.layout(&mut cache)
                    .map(|l| (l.links_sha256, l.packages.len()))
            })
            .collect()
    }

    /// What the store keeps of `report`, matched against `target`, with
    /// the report's JSON (a scan's result).
    pub fn new(report: &Report, target: &MatchTarget) -> Result<MatchResult, serde_json::Error> {
        MatchResult::rematched(report, target, true)
    }

    /// What the store keeps of `report`, matched against `target`; the
    /// report's JSON only `with_report` (a rescan of an image stored without
    /// a report).
    pub fn rematched(
        report: &Report,
        target: &MatchTarget,
        with_report: bool,
    ) -> Result<MatchResult, serde_json::Error> {
        let findings = finding_rows(report);
        let verdict = report.verdict.as_str().to_string();
        let summary = serde_json::to_string(&report.summary)?;
        let report_sha256 = results_sha256(&verdict, &report.verdict_reason, &summary, &findings);
        let json = if with_report {
            Some(serde_json::to_string(report)?)
        } else {
            None
        };
        Ok(MatchResult {
            verdict,
            verdict_reason: report.verdict_reason.clone(),
            summary,
            report: json,
            report_sha256,
            counts: FindingCounts::of(&findings),
            findings,
            target: target.clone(),
            os: report.os.clone(),
            packages: report.packages.clone(),
        })
    }

    /// [`MatchResult::rematched`], taking the report's findings instead of
    /// copying them (a rescan has no other use for the report).
    pub fn from_report(
        report: Report,
        target: &MatchTarget,
        with_report: bool,
    ) -> Result<MatchResult, serde_json::Error> {
        let json = if with_report {
            Some(serde_json::to_string(&report)?)
        } else {
            None
        };
        let verdict = report.verdict.as_str().to_string();
        let summary = serde_json::to_string(&report.summary)?;
        let findings: Vec<FindingRow> = report
            .findings
            .into_iter()
            .map(|f| FindingRow::from_finding(f, false))
            .chain(
                report
                    .suppressed
                    .into_iter()
                    .map(|f| FindingRow::from_finding(f, true)),
            )
            .collect();
        let report_sha256 = results_sha256(&verdict, &report.verdict_reason, &summary, &findings);
        Ok(MatchResult {
            verdict,
            verdict_reason: report.verdict_reason,
            summary,
            report: json,
            report_sha256,
            counts: FindingCounts::of(&findings),
            findings,
            target: target.clone(),
            os: report.os,
            packages: report.packages,
        })
    }
}

impl MatchResult {
    /// What the store keeps of a judgement (a rescan's result: no report
    /// JSON): the same as [`MatchResult::rematched`] without the report,
    /// for the report judged alike, without building that report.
    pub fn judged(
        judgement: &Judgement<'_>,
        target: &MatchTarget,
    ) -> Result<MatchResult, serde_json::Error> {
        let row = |f: FindingFacts<'_>, suppressed: bool| FindingRow {
            id: f.id.to_string(),
            aliases: f.aliases.to_vec(),
            package: f.package.to_string(),
            version: f.installed_version.to_string(),
            source_name: f.source_name.to_string(),
            source_version: f.source_version.to_string(),
            ecosystem: f.ecosystem.to_string(),
            severity: f.severity,
            fix_state: f.fix_state,
            fixed_version: f.fixed_version.map(str::to_string),
            layer: f.layer.map(str::to_string),
            path: f.path.map(str::to_string),
            suppressed,
        };
        let findings: Vec<FindingRow> = judgement
            .findings()
            .map(|f| row(f, false))
            .chain(judgement.suppressed().map(|f| row(f, true)))
            .collect();
        let verdict = judgement.verdict().as_str().to_string();
        let summary = serde_json::to_string(judgement.summary())?;
        let reason = judgement.verdict_reason();
        let report_sha256 = results_sha256(&verdict, reason, &summary, &findings);
        Ok(MatchResult {
            verdict,
            verdict_reason: reason.to_string(),
            summary,
            report: None,
            report_sha256,
            counts: FindingCounts::of(&findings),
            findings,
            target: target.clone(),
            os: None,
            packages: Vec::new(),
        })
    }

    /// The result with the OS and packages of the inventory it was judged
    /// from ([`MatchResult::judged`] has only the judgement): what
    /// PostgreSQL stores the findings against (the `layout` module;
    /// without them, an image's findings are stored as its own).
    pub fn with_inventory(mut self, inventory: trawl::Inventory) -> MatchResult {
        self.os = inventory.os;
        self.packages = inventory.packages;
        self
    }
}

/// [`MatchResult::report_sha256`]: every value length-prefixed (absent
/// values and flags as one tag byte), so that no two results hash alike by
/// shifting text between fields.
fn results_sha256(verdict: &str, reason: &str, summary: &str, findings: &[FindingRow]) -> String {
    fn text(h: &mut Vec<u8>, s: &str) {
        h.extend_from_slice(&(s.len() as u64).to_le_bytes());
        h.extend_from_slice(s.as_bytes());
    }
    fn opt(h: &mut Vec<u8>, s: Option<&str>) {
        match s {
            Some(s) => {
                h.push(1);
                text(h, s);
            }
            None => h.push(0),
        }
    }
    let mut hash = Sha256::new();
    // Each row's bytes are gathered, then hashed at once: cheaper than
    // feeding the hasher each value.
    let mut buffer = Vec::with_capacity(1024);
    let h = &mut buffer;
    for s in [verdict, reason, summary] {
        text(h, s);
    }
    h.extend_from_slice(&(findings.len() as u64).to_le_bytes());
    for f in findings {
        text(h, &f.id);
        h.extend_from_slice(&(f.aliases.len() as u64).to_le_bytes());
        for a in &f.aliases {
            text(h, a);
        }
        for s in [
            &f.package,
            &f.version,
            &f.source_name,
            &f.source_version,
            &f.ecosystem,
        ] {
            text(h, s);
        }
        h.extend_from_slice(&severity_rank(f.severity).to_le_bytes());
        text(h, f.fix_state.as_str());
        opt(h, f.fixed_version.as_deref());
        opt(h, f.layer.as_deref());
        opt(h, f.path.as_deref());
        h.push(u8::from(f.suppressed));
        hash.update(h.as_slice());
        h.clear();
    }
    hash.update(h.as_slice());
    hex::encode(hash.finalize())
}

/// The finding rows of a report: those that count, then the suppressed ones.
fn finding_rows(report: &Report) -> Vec<FindingRow> {
    report
        .findings
        .iter()
        .map(|f| FindingRow::new(f, false))
        .chain(report.suppressed.iter().map(|f| FindingRow::new(f, true)))
        .collect()
}

/// The aggregate of an image's findings that count (not suppressed), as
/// the summary's counters need it: findings per
/// `severity|fix_state` key (the severity's rank and the fix state's
/// name, `5|fixed`: the key of the `S` and `s` counters) and findings per
/// binary package (the `P` and `p` counters; the image counts for a
/// package when it has a finding there). PostgreSQL keeps it with the
/// image (`images.counts`), written with its results; triggers turn its
/// changes into counter deltas.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindingCounts {
    /// Findings per `severity|fix_state` key.
    pub by_key: BTreeMap<String, i64>,
    /// Findings per binary package.
    pub by_package: BTreeMap<String, i64>,
}

impl FindingCounts {
    /// Counts the rows that count (suppressed ones are left out).
    pub fn of(rows: &[FindingRow]) -> FindingCounts {
        let mut counts = FindingCounts::default();
        // Counted by (rank, fix state) first, the keys written once each
        // (not a string per row).
        let mut by_key = [[0i64; FIX_STATES.len()]; SEVERITIES.len()];
        // Packages by name, hashed (a tree of strings compared each row's
        // name with several others'), then put in order once.
        let mut by_package: HashMap<&str, i64> = HashMap::new();
        for f in rows.iter().filter(|f| !f.suppressed) {
            let rank = usize::try_from(severity_rank(f.severity)).unwrap_or_default();
            match FIX_STATES.iter().position(|k| *k == f.fix_state) {
                Some(state) if rank < SEVERITIES.len() => by_key[rank][state] += 1,
                _ => {
                    let key = format!("{}|{}", rank, f.fix_state.as_str());
                    *counts.by_key.entry(key).or_default() += 1;
                }
            }
            *by_package.entry(f.package.as_str()).or_default() += 1;
        }
        counts.by_package = by_package
            .into_iter()
            .map(|(name, n)| (name.to_string(), n))
            .collect();
        for (rank, states) in by_key.iter().enumerate() {
            for (state, n) in states.iter().enumerate().filter(|(_, n)| **n > 0) {
                let key = format!("{rank}|{}", FIX_STATES[state].as_str());
                *counts.by_key.entry(key).or_default() += n;
            }
        }
        counts
    }

    /// The findings that count, in all.
    pub fn findings(&self) -> i64 {
        self.by_key.values().sum()
    }

    /// As `images.counts` keeps it: one JSON object, a key's count under
    /// `s` and the key, a package's under `p` and its name
    /// (`{"s5|fixed": 2, "plibssl3": 2}`): one flat object, so that SQL
    /// reads it with one `jsonb_each`, and no name collides with a key.
    /// The keys come in order (every `p` key before every `s` key).
    pub fn json(&self) -> String {
        let mut out = Vec::with_capacity(32 * (self.by_key.len() + self.by_package.len()) + 2);
        out.push(b'{');
        let mut key = String::new();
        for (i, (prefix, name, n)) in self.flat().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_entry(&mut out, &mut key, Some(prefix), name, Some(n));
        }
        out.push(b'}');
        // Only JSON was written, from strings and numbers.
        String::from_utf8(out).unwrap_or_default()
    }

    /// The keys and counts of [`FindingCounts::json`], in key order: the
    /// names of a map share their prefix, and `p` sorts before `s`, so the
    /// two maps' orders laid end to end are the order of the prefixed keys.
    fn flat(&self) -> impl Iterator<Item = (char, &str, i64)> {
        let packages = self.by_package.iter().map(|(n, c)| ('p', n.as_str(), *c));
        let keys = self.by_key.iter().map(|(k, c)| ('s', k.as_str(), *c));
        packages.chain(keys)
    }

    /// How `images.counts` changes from `old` (as stored: its JSON) to
    /// these counts, as PostgreSQL's `images.counts_change` takes it: the
    /// keys whose count differs, with their count before (`was`) and after
    /// (`now`), `null` for none (`{"was": {"plibc6": 2, "s4|fixed": null},
    /// "now": {"plibc6": 3, "s4|fixed": 1}}`). The database checks it
    /// against both documents and turns it into counter deltas; `None`
    /// when `old` is not a document of counts, or when more than half the
    /// keys of the larger document change (the database then compares the
    /// two documents itself: a change of most keys is no cheaper to take
    /// than the documents, and written beside them it made a full
    /// replacement's rows big enough to be compressed or moved out of line,
    /// its `UPDATE images` 5.4 -> 6.7 s at 10,000 images).
    ///
    /// Both sides are walked in key order and compared in place: the old
    /// document's keys are borrowed from its text where they need no
    /// unescaping. This and [`FindingCounts::json`] run for every image a
    /// rescan writes; built as maps of owned keys (each document twice,
    /// and the change as a JSON value) they were 12% of a service's CPU in
    /// a day's update.
    pub fn change_from(&self, old: &str) -> Option<String> {
        let OldCounts(mut old) = serde_json::from_str(old).ok()?;
        old.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if old.windows(2).any(|w| w[0].0 == w[1].0) {
            // A key twice: not a document PostgreSQL wrote.
            return None;
        }
        let (old_len, new_len) = (old.len(), self.by_key.len() + self.by_package.len());
        // (key, before, after) of each key whose count differs.
        let mut changed: Vec<(std::borrow::Cow<'_, str>, Option<i64>, Option<i64>)> = Vec::new();
        let mut key = String::new();
        let mut olds = old.into_iter().peekable();
        let mut news = self.flat().peekable();
        loop {
            let order = match (olds.peek(), news.peek()) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some((o, _)), Some((prefix, name, _))) => {
                    key.clear();
                    key.push(*prefix);
                    key.push_str(name);
                    o.as_ref().cmp(key.as_str())
                }
            };
            match order {
                std::cmp::Ordering::Less => {
                    if let Some((o, n)) = olds.next() {
                        changed.push((o, Some(n), None));
                    }
                }
                std::cmp::Ordering::Greater => {
                    if let Some((prefix, name, n)) = news.next() {
                        changed.push((format!("{prefix}{name}").into(), None, Some(n)));
                    }
                }
                std::cmp::Ordering::Equal => {
                    if let (Some((o, before)), Some((_, _, after))) = (olds.next(), news.next())
                        && before != after
                    {
                        changed.push((o, Some(before), Some(after)));
                    }
                }
            }
        }
        if 2 * changed.len() > old_len.max(new_len) {
            return None;
        }
        let mut out = Vec::with_capacity(48 * changed.len() + 20);
        for (part, side) in [(&b"{\"was\":{"[..], 0), (&b"},\"now\":{"[..], 1)] {
            out.extend_from_slice(part);
            for (i, (k, before, after)) in changed.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let n = if side == 0 { *before } else { *after };
                write_entry(&mut out, &mut key, None, k, n);
            }
        }
        out.extend_from_slice(b"}}");
        String::from_utf8(out).ok()
    }
}

/// Writes `"<prefix><name>":<n or null>`, `key` the buffer the name is
/// put together in.
fn write_entry(
    out: &mut Vec<u8>,
    key: &mut String,
    prefix: Option<char>,
    name: &str,
    n: Option<i64>,
) {
    key.clear();
    if let Some(prefix) = prefix {
        key.push(prefix);
    }
    key.push_str(name);
    // Writing a string into a vector cannot fail.
    let _ = serde_json::to_writer(&mut *out, key.as_str());
    out.push(b':');
    match n {
        // Into a vector: cannot fail.
        Some(n) => {
            let _ = std::io::Write::write_fmt(out, format_args!("{n}"));
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// A stored `images.counts` document: its keys (borrowed from the text
/// when they need no unescaping) and counts, in the document's order.
struct OldCounts<'a>(Vec<(std::borrow::Cow<'a, str>, i64)>);

impl<'de> serde::Deserialize<'de> for OldCounts<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Key<'a>(std::borrow::Cow<'a, str>);
        impl<'de> serde::Deserialize<'de> for Key<'de> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Key<'de>;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a key")
                    }
                    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                        Ok(Key(v.into()))
                    }
                    fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                        Ok(Key(v.to_owned().into()))
                    }
                }
                d.deserialize_str(V)
            }
        }
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = OldCounts<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of counts")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(64));
                while let Some((Key(k), n)) = map.next_entry::<Key<'de>, i64>()? {
                    entries.push((k, n));
                }
                Ok(OldCounts(entries))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

/// What [`Store::plan_rescan`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RescanPlan {
    /// Batches were planned for this many stale images (maybe none): the
    /// target is the newest one planned.
    Planned {
        /// Images newly planned.
        images: usize,
        /// Batches they were split into.
        batches: usize,
    },
    /// Another process planned a newer target since this one: this target
    /// is not rescanned (the process should take the newer database).
    Superseded,
}

/// A batch of a rescan, claimed under a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RescanBatch {
    /// The batch's id.
    pub id: i64,
    /// This claim's lease token.
    pub token: i64,
    /// What its images are to be matched against.
    pub target: MatchTarget,
    /// Its images, by digest.
    pub digests: Vec<String>,
}

/// An image's stored inventory, to be matched again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredInventory {
    /// The manifest digest.
    pub digest: String,
    /// The inventory (JSON of a [`trawl::Scanned`]).
    pub inventory: String,
    /// The SHA-256 of its current report, if it has one.
    pub report_sha256: Option<String>,
}

/// An image's report as stored: a cache of the report of `cached`, and
/// what the image's results (verdict, summary, findings) are of now.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredReport {
    /// The cached report (JSON).
    pub report: String,
    /// What it was matched against (`None` for a report stored before
    /// the cache was stamped, and never rescanned since).
    pub cached: Option<MatchTarget>,
    /// What the image's results were last matched against.
    pub current: Option<MatchTarget>,
    /// The stored inventory (JSON of a [`trawl::Scanned`]), when the cache
    /// is stale: the report to serve is rebuilt from it against `current`.
    pub inventory: Option<String>,
}

impl StoredReport {
    /// Whether the cached report is the image's current one.
    pub fn is_current(&self) -> bool {
        self.inventory.is_none()
    }
}

/// Reads the cache stamp and the current target of a report row: the
/// stamp (db, policy), the current (db, policy), the report and the
/// inventory (given only when the stamp differs).
fn stored_report(
    report: String,
    cached: (Option<String>, Option<String>),
    current: (Option<String>, Option<String>),
    inventory: Option<String>,
) -> StoredReport {
    let target = |(db, policy): (Option<String>, Option<String>)| match (db, policy) {
        (Some(advisory_db), Some(policy)) => Some(MatchTarget {
            advisory_db,
            policy,
        }),
        _ => None,
    };
    let (cached, current) = (target(cached), target(current));
    StoredReport {
        inventory: if cached == current { None } else { inventory },
        report,
        cached,
        current,
    }
}

/// An image matched again, to store.
#[derive(Debug, Clone)]
pub struct Rematched {
    /// The manifest digest.
    pub digest: String,
    /// The SHA-256 of its report when its inventory was read
    /// ([`StoredInventory::report_sha256`]).
    pub previous_sha256: Option<String>,
    /// The new result.
    pub result: MatchResult,
}

/// The results store and job queue, on SQLite or PostgreSQL. Cloning is
/// cheap and clones share the connection (SQLite) or the pool (PostgreSQL).
///
/// Times are explicit (`now`: Unix seconds; `now_ms`, `until_ms`: Unix
/// milliseconds) so that tests can move them; the service takes them from
/// [`Store::now_ms`], which for PostgreSQL follows the database server's
/// clock, so leases mean the same on every machine.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// The notification targets (URLs) events are written for.
    notify: Arc<[String]>,
}

#[derive(Clone)]
enum Backend {
    Sqlite(Arc<sqlite::SqliteStore>),
    Postgres(postgres::PgStore),
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.backend {
            Backend::Sqlite(s) => write!(f, "Store(sqlite:{})", s.path().display()),
            Backend::Postgres(p) => write!(f, "Store({})", p.shown()),
        }
    }
}

/// Runs `call` on the SQLite store on the blocking pool.
macro_rules! sqlite {
    ($store:expr, |$s:ident| $body:expr) => {{
        let store = $store.clone();
        tokio::task::spawn_blocking(move || {
            let $s = &*store;
            $body
        })
        .await
        .map_err(|_| StoreError::Lost)?
    }};
}

impl Store {
    /// Opens the store, creating it or bringing its schema up to date:
    /// SQLite versions 1 to 3 (before this crate) are upgraded in place;
    /// PostgreSQL migrations are applied in order under an advisory lock,
    /// so processes starting together apply each once. A store written by
    /// a newer version is refused.
    pub async fn open(location: &StoreLocation) -> Result<Store, StoreError> {
        let backend = match &location.0 {
            Location::Sqlite(path) => {
                let path = path.clone();
                let store = tokio::task::spawn_blocking(move || sqlite::SqliteStore::open(&path))
                    .await
                    .map_err(|_| StoreError::Lost)??;
                Backend::Sqlite(Arc::new(store))
            }
            Location::Postgres {
                config,
                shown,
                pool_size,
            } => Backend::Postgres(
                postgres::PgStore::open((**config).clone(), shown.clone(), *pool_size).await?,
            ),
        };
        Ok(Store {
            backend,
            notify: Arc::from(Vec::new()),
        })
    }

    /// The same store, writing each event of a scan, failure or verdict
    /// change into the outbox once for each of `targets` (URLs; none by
    /// default: then no event is written).
    pub fn with_notify_targets(mut self, targets: Vec<String>) -> Store {
        self.notify = Arc::from(targets);
        self
    }

    /// The notification targets events are written for.
    pub fn notify_targets(&self) -> &[String] {
        &self.notify
    }

    /// Whether only one process can use the store (SQLite): then the
    /// running jobs found at start are orphans for certain.
    pub fn single_process(&self) -> bool {
        matches!(self.backend, Backend::Sqlite(_))
    }

    /// Unix milliseconds by the store's clock: the local clock for SQLite;
    /// for PostgreSQL the server's (measured against the local clock at most
    /// a minute ago), so every process agrees on when a lease expires.
    pub async fn now_ms(&self) -> Result<i64, StoreError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(local_now_ms()),
            Backend::Postgres(p) => send(p.now_ms()).await,
        }
    }

    /// Queues again the running jobs of owners other than `owner` whose
    /// lease expired before `now_ms` or, with `owners_gone`, all of them (at
    /// start with SQLite: the file's lock proves their process is gone).
    /// Each is marked `after_crash`; one that was running alone is charged
    /// an attempt.
    pub async fn recover_orphans(
        &self,
        owner: &str,
        owners_gone: bool,
        now_ms: i64,
    ) -> Result<Recovered, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let owner = owner.to_string();
                sqlite!(s, |s| s.recover_orphans(&owner, owners_gone, now_ms))
            }
            Backend::Postgres(p) => send(p.recover_orphans(owner, owners_gone, now_ms)).await,
        }
    }

    /// Records a batch of events in one transaction, in order: tags, push
    /// and pull times, a scan job for each image that needs one, and
    /// deletions. An image needs a scan when it is pushed and has no report
    /// yet (new, or its scans failed), or when it is pulled and was never
    /// seen; never while a job for it is queued or running. An image deleted
    /// from the last repository that holds it is forgotten: its results, its
    /// findings, its job, its tags.
    ///
    /// Back-pressure is per event: events are applied in order until one
    /// needs a scan while `max_pending` (at least 1) jobs are queued; that one
    /// and all after it are not applied ([`Applied::deferred`]). A registry
    /// sends a refused envelope again whole, and applying the events already
    /// applied once more changes nothing (jobs coalesce, tags are set, times
    /// only move forward), so the prefix semantics keep its retries exact,
    /// and an envelope larger than the queue still gets through, a part per
    /// retry, as the workers drain the queue. With PostgreSQL, envelopes are
    /// applied one at a time across all processes (a transaction-scoped
    /// advisory lock), so the count of waiting jobs is exact.
    pub async fn apply(
        &self,
        events: Vec<Recorded>,
        max_pending: usize,
        now: i64,
    ) -> Result<Applied, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => sqlite!(s, |s| s.apply(&events, max_pending, now)),
            Backend::Postgres(p) => send(retried(|| p.apply(&events, max_pending, now))).await,
        }
    }

    /// Takes a job for `owner` under a lease until `lease_until_ms`, or
    /// `None`. Orphans of other owners whose lease expired are recovered
    /// first. Jobs marked `after_crash` come first and run alone: one is
    /// claimed only when `owner` runs nothing, and while it runs `owner` gets
    /// nothing else. Jobs charged [`MAX_ATTEMPTS`] crashes are given up
    /// (recorded as failed) on the way. With PostgreSQL, processes claim
    /// with `FOR UPDATE SKIP LOCKED`, so none waits for another and no job
    /// is claimed twice.
    pub async fn claim(
        &self,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Option<Job>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let (owner, notify) = (owner.to_string(), self.notify.clone());
                sqlite!(s, |s| s.claim(&owner, now_ms, lease_until_ms, &notify))
            }
            Backend::Postgres(p) => {
                send(p.claim(owner, now_ms, lease_until_ms, &self.notify)).await
            }
        }
    }

    /// Extends a running job's lease to `until_ms`; false when the claim
    /// `token` no longer holds it (the job was deleted or recovered).
    pub async fn heartbeat(
        &self,
        digest: &str,
        token: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let digest = digest.to_string();
                sqlite!(s, |s| s.heartbeat(&digest, token, until_ms))
            }
            Backend::Postgres(p) => send(p.heartbeat(digest, token, until_ms)).await,
        }
    }

    /// Puts a running job back in the queue, uncharged (the service is
    /// stopping, or the result could not be stored for want of a
    /// connection). Does nothing when `token` no longer holds it.
    pub async fn release(&self, digest: &str, token: i64) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let digest = digest.to_string();
                sqlite!(s, |s| s.release(&digest, token))
            }
            Backend::Postgres(p) => send(p.release(digest, token)).await,
        }
    }

    /// Stores a scan's inventory (JSON), report and findings and removes its
    /// job, if the claim `token` still holds it (nothing is stored if the
    /// image was deleted or the job taken over meanwhile). True when stored.
    pub async fn finish_scan(
        &self,
        digest: &str,
        token: i64,
        inventory: String,
        result: MatchResult,
        now: i64,
    ) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let (digest, notify) = (digest.to_string(), self.notify.clone());
                sqlite!(s, |s| s
                    .finish_scan(&digest, token, &inventory, &result, now, &notify))
            }
            Backend::Postgres(p) => {
                send(retried(|| {
                    p.finish_scan(digest, token, &inventory, &result, now, &self.notify)
                }))
                .await
            }
        }
    }

    /// Records a failed scan and removes its job, if the claim `token` still
    /// holds it (the next push queues it again).
    pub async fn fail_scan(
        &self,
        digest: &str,
        token: i64,
        error: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let (digest, error) = (digest.to_string(), error.to_string());
                let notify = self.notify.clone();
                sqlite!(s, |s| s.fail_scan(&digest, token, &error, now, &notify))
            }
            Backend::Postgres(p) => {
                send(p.fail_scan(digest, token, error, now, &self.notify)).await
            }
        }
    }

    /// Plans the rescan of `target` (see the module docs): the images with
    /// an inventory, pushed or pulled at or after `since` (Unix seconds),
    /// whose report came from another target and that no open batch of this
    /// target holds yet, in batches of `batch_size`. A target planned
    /// before and superseded since by another is planned again only with
    /// `replace` (the database or policy was deliberately changed back);
    /// else [`RescanPlan::Superseded`].
    pub async fn plan_rescan(
        &self,
        target: &MatchTarget,
        since: i64,
        batch_size: usize,
        replace: bool,
    ) -> Result<RescanPlan, StoreError> {
        let batch_size = batch_size.max(1);
        match &self.backend {
            Backend::Sqlite(s) => {
                let target = target.clone();
                sqlite!(s, |s| s.plan_rescan(&target, since, batch_size, replace))
            }
            Backend::Postgres(p) => send(p.plan_rescan(target, since, batch_size, replace)).await,
        }
    }

    /// Takes a batch of the rescan of `target` for `owner`, under a lease
    /// until `until_ms`: a waiting one, or one whose lease expired (taken
    /// over; after [`MAX_ATTEMPTS`] takeovers it is dropped). `None` when
    /// there is none, or `target` is not the newest planned.
    pub async fn claim_rescan(
        &self,
        owner: &str,
        target: &MatchTarget,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Option<RescanBatch>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let (owner, target) = (owner.to_string(), target.clone());
                sqlite!(s, |s| s.claim_rescan(&owner, &target, now_ms, until_ms))
            }
            Backend::Postgres(p) => send(p.claim_rescan(owner, target, now_ms, until_ms)).await,
        }
    }

    /// Extends a rescan batch's lease; false when the claim no longer holds it.
    pub async fn renew_rescan(
        &self,
        batch: &RescanBatch,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let (id, token) = (batch.id, batch.token);
                sqlite!(s, |s| s.renew_rescan(id, token, until_ms))
            }
            Backend::Postgres(p) => send(p.renew_rescan(batch.id, batch.token, until_ms)).await,
        }
    }

    /// Gives a claimed batch back, uncharged (the service is stopping).
    pub async fn release_rescan(&self, batch: &RescanBatch) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let (id, token) = (batch.id, batch.token);
                sqlite!(s, |s| s.release_rescan(id, token))
            }
            Backend::Postgres(p) => send(p.release_rescan(batch.id, batch.token)).await,
        }
    }

    /// The stored inventories of `digests` (those that have one), in one query.
    pub async fn inventories(
        &self,
        digests: &[String],
    ) -> Result<Vec<StoredInventory>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let digests = digests.to_vec();
                sqlite!(s, |s| s.inventories(&digests))
            }
            Backend::Postgres(p) => send(p.inventories(digests)).await,
        }
    }

    /// Stores a claimed batch's results and ends the batch, if the claim
    /// still holds it and its target is still the newest planned; each image
    /// only while it is stale for the target. An image whose report did not
    /// change ([`Rematched::previous_sha256`]) gets only its new target and
    /// counts; the others their verdict, summary and report hash too, and
    /// the finding rows that changed (compared by key). The report is
    /// written only to an image stored without one (no previous hash); the
    /// others keep theirs as a stale cache ([`StoredReport`]). Returns the images
    /// written (each counted as one rescan). On PostgreSQL, what follows
    /// the batch's commit (statistics and, after a rescan's last batch,
    /// collecting the old targets' package rows) is logged when it fails,
    /// not returned: the images are written, and the count says so.
    pub async fn finish_rescan(
        &self,
        batch: &RescanBatch,
        results: Vec<Rematched>,
        now: i64,
    ) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let (batch, notify) = (batch.clone(), self.notify.clone());
                sqlite!(s, |s| s.finish_rescan(&batch, &results, now, &notify))
            }
            Backend::Postgres(p) => {
                // The batch's write, run again whole on a deadlock (what an
                // aborted transaction wrote is gone).
                let written = send(retried(|| {
                    p.finish_rescan(batch, &results, now, &self.notify)
                }))
                .await?;
                let Some(written) = written else {
                    return Ok(0);
                };
                // What follows the commit, retried on its own: run again
                // with the write, a deadlock here had the write find its
                // batch gone and report 0 images written although all were.
                // Its failure is logged, not returned: the images are
                // stored and the batch is gone (no process stores it
                // again), so an error would only have the service report
                // the batch as not stored and drop its count, while what
                // was not done is housekeeping done later anyway: the old
                // targets' package rows are collected by the next plan, the
                // statistics by autovacuum's analyses; the counters' deltas
                // are read with the counts until a later commit folds them
                // (the summary stays exact) and autovacuum vacuums them.
                if let Err(e) =
                    send(retried(|| p.after_rescan_batch(&batch.target, &written))).await
                {
                    tracing::warn!(
                        batch = batch.id,
                        images = written.written,
                        error = %e,
                        "rescan batch stored; what follows its commit failed"
                    );
                }
                Ok(written.written)
            }
        }
    }

    /// Every image, by digest.
    pub async fn images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => sqlite!(s, |s| s.select_images(None)),
            Backend::Postgres(p) => send(p.select_images(None)).await,
        }
    }

    /// One image.
    pub async fn image(&self, digest: &str) -> Result<Option<ImageRecord>, StoreError> {
        let images = match &self.backend {
            Backend::Sqlite(s) => {
                let digest = digest.to_string();
                sqlite!(s, |s| s.select_images(Some(&digest)))?
            }
            Backend::Postgres(p) => send(p.select_images(Some(digest))).await?,
        };
        Ok(images.into_iter().next())
    }

    /// The stored report of an image: `None` for an unknown digest,
    /// `Some(None)` when it has not been scanned yet. The report is a cache
    /// written by the scan (and by [`Store::cache_report`]); after a rescan
    /// it is stale and carries the inventory to rebuild it from.
    pub async fn report(&self, digest: &str) -> Result<Option<Option<StoredReport>>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let digest = digest.to_string();
                sqlite!(s, |s| s.report(&digest))
            }
            Backend::Postgres(p) => send(p.report(digest)).await,
        }
    }

    /// Caches `report` (JSON), rebuilt against `target`, as the report of
    /// `digest`, if the image's results are still of `target`; true when
    /// written.
    pub async fn cache_report(
        &self,
        digest: &str,
        target: &MatchTarget,
        report: &str,
    ) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let (digest, target, report) =
                    (digest.to_string(), target.clone(), report.to_string());
                sqlite!(s, |s| s.cache_report(&digest, &target, &report))
            }
            Backend::Postgres(p) => send(p.cache_report(digest, target, report)).await,
        }
    }

    /// The stored finding rows of an image, in report order (the findings
    /// that count, then the suppressed ones).
    pub async fn findings(&self, digest: &str) -> Result<Vec<FindingRow>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let digest = digest.to_string();
                sqlite!(s, |s| s.findings(&digest))
            }
            Backend::Postgres(p) => send(p.findings(digest)).await,
        }
    }

    /// The stored finding rows of an image by (id, stable key), each with
    /// a version that tells whether a write touched it: PostgreSQL gives
    /// the row version's `xmin` (any update or re-insert changes it),
    /// SQLite the row number (a re-insert changes it, an update in place
    /// does not). For diagnostics and tests of the rescan's delta writes.
    pub async fn finding_versions(
        &self,
        digest: &str,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let digest = digest.to_string();
                sqlite!(s, |s| s.finding_versions(&digest))
            }
            Backend::Postgres(p) => send(p.finding_versions(digest)).await,
        }
    }

    /// One row per vulnerability id among the findings `q` selects, the
    /// most severe first (then the most images, then by id). See
    /// [`VulnerabilityRow`] for what each says.
    pub async fn vulnerabilities(
        &self,
        q: &FindingQuery,
    ) -> Result<Vec<VulnerabilityRow>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let q = q.clone();
                sqlite!(s, |s| block_on(query::vulnerabilities(
                    s,
                    query::Dialect::Sqlite,
                    &q
                )))
            }
            Backend::Postgres(p) => {
                send(query::vulnerabilities(p, query::Dialect::Postgres, q)).await
            }
        }
    }

    /// The images in `scope` with a finding of the vulnerability `id`, by
    /// digest, each with those findings; empty when none has it. A finding
    /// is of it when its id or an alias is `id` (case-insensitive), or
    /// one of the ids and aliases of such a finding: a CVE finds the
    /// findings filed under its DSA or GHSA that name it, and a GHSA finds
    /// the DSA through the CVE they share. Only findings in scope lead to
    /// others.
    pub async fn vulnerability(
        &self,
        id: &str,
        scope: &Scope,
    ) -> Result<Vec<AffectedImage>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let (id, scope) = (id.to_string(), scope.clone());
                sqlite!(s, |s| block_on(query::vulnerability(
                    s,
                    query::Dialect::Sqlite,
                    &id,
                    &scope
                )))
            }
            Backend::Postgres(p) => {
                send(query::vulnerability(p, query::Dialect::Postgres, id, scope)).await
            }
        }
    }

    /// At most `limit` (at least 1) of the findings `q` selects, after
    /// `after`, in a stable order: severity (highest first), id, digest,
    /// place in the report.
    pub async fn findings_page(
        &self,
        q: &FindingQuery,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<FindingsPage, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let (q, after) = (q.clone(), after.cloned());
                sqlite!(s, |s| block_on(query::findings_page(
                    s,
                    query::Dialect::Sqlite,
                    &q,
                    after.as_ref(),
                    limit
                )))
            }
            Backend::Postgres(p) => {
                send(query::findings_page(
                    p,
                    query::Dialect::Postgres,
                    q,
                    after,
                    limit,
                ))
                .await
            }
        }
    }

    /// Images by verdict, findings by severity and fix state, and the most
    /// affected packages and repositories, of the images in `scope` (and
    /// in a repository under `repository`, when given). Read from counters
    /// the database keeps on every write (see the `counters` module): a
    /// few hundred rows, however many findings. Scoped, it counts image
    /// listings: an image listed in two repositories of the scope counts
    /// in each.
    pub async fn summary(
        &self,
        scope: &Scope,
        repository: Option<&str>,
    ) -> Result<RegistrySummary, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let (scope, repository) = (scope.clone(), repository.map(str::to_string));
                sqlite!(s, |s| block_on(counters::summary(
                    s,
                    query::Dialect::Sqlite,
                    &scope,
                    repository.as_deref()
                )))
            }
            Backend::Postgres(p) => {
                send(counters::summary(
                    p,
                    query::Dialect::Postgres,
                    scope,
                    repository,
                ))
                .await
            }
        }
    }

    /// [`Store::summary`] aggregated from every finding row instead of the
    /// counters: what the counters must equal (tests compare the two).
    #[doc(hidden)]
    pub async fn summary_recount(
        &self,
        scope: &Scope,
        repository: Option<&str>,
    ) -> Result<RegistrySummary, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let (scope, repository) = (scope.clone(), repository.map(str::to_string));
                sqlite!(s, |s| block_on(query::recount(
                    s,
                    query::Dialect::Sqlite,
                    &scope,
                    repository.as_deref()
                )))
            }
            Backend::Postgres(p) => {
                send(query::recount(
                    p,
                    query::Dialect::Postgres,
                    scope,
                    repository,
                ))
                .await
            }
        }
    }

    /// Takes at most `limit` notifications that are due at `now_ms` for
    /// `targets` (pending, next attempt due, no live lease: waiting ones, or
    /// those of a process that died while delivering), for `owner` under a
    /// lease until `until_ms`, the longest waiting first. With PostgreSQL,
    /// processes claim with `FOR UPDATE SKIP LOCKED`: none waits for
    /// another, and no row is claimed twice while its lease holds.
    pub async fn claim_deliveries(
        &self,
        owner: &str,
        targets: &[String],
        now_ms: i64,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        match &self.backend {
            Backend::Sqlite(s) => {
                let (owner, targets) = (owner.to_string(), targets.to_vec());
                sqlite!(s, |s| s
                    .claim_deliveries(&owner, &targets, now_ms, until_ms, limit))
            }
            Backend::Postgres(p) => {
                send(p.claim_deliveries(owner, targets, now_ms, until_ms, limit)).await
            }
        }
    }

    /// Records what became of a claimed delivery, if the claim still holds
    /// it; true when recorded. A retry clears the lease and counts the
    /// attempt.
    pub async fn finish_delivery(
        &self,
        delivery: &Delivery,
        outcome: &DeliveryOutcome,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let (seq, token, outcome) = (delivery.seq, delivery.token, outcome.clone());
                sqlite!(s, |s| s.finish_delivery(seq, token, &outcome, now_ms))
            }
            Backend::Postgres(p) => {
                send(p.finish_delivery(delivery.seq, delivery.token, outcome, now_ms)).await
            }
        }
    }

    /// Gives back the deliveries `owner` holds, uncharged (the service is
    /// stopping: what it was sending is sent again, by whichever process
    /// claims it first). Returns how many.
    pub async fn release_deliveries(&self, owner: &str) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let owner = owner.to_string();
                sqlite!(s, |s| s.release_deliveries(&owner))
            }
            Backend::Postgres(p) => send(p.release_deliveries(owner)).await,
        }
    }

    /// Gives up the pending notifications written before `before_ms` and
    /// not being sent (also those for a target no process has any more), with
    /// `error`; returns how many.
    pub async fn expire_outbox(
        &self,
        before_ms: i64,
        now_ms: i64,
        error: &str,
    ) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let error = error.to_string();
                sqlite!(s, |s| s.expire_outbox(before_ms, now_ms, &error))
            }
            Backend::Postgres(p) => send(p.expire_outbox(before_ms, now_ms, error)).await,
        }
    }

    /// Deletes the notifications delivered or given up before `before_ms`;
    /// returns how many.
    pub async fn prune_outbox(&self, before_ms: i64) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => sqlite!(s, |s| s.prune_outbox(before_ms)),
            Backend::Postgres(p) => send(p.prune_outbox(before_ms)).await,
        }
    }

    /// Outbox rows by state.
    pub async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => sqlite!(s, |s| s.outbox_counts()),
            Backend::Postgres(p) => send(p.outbox_counts()).await,
        }
    }

    /// Every outbox row of `event_id`: (target, state, attempts, body), by target.
    pub async fn outbox_event(
        &self,
        event_id: &str,
    ) -> Result<Vec<(String, String, i64, String)>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let id = event_id.to_string();
                sqlite!(s, |s| s.outbox_event(&id))
            }
            Backend::Postgres(p) => send(p.outbox_event(event_id)).await,
        }
    }

    /// The ids and types of the events in the outbox, in the order written.
    pub async fn outbox_events(&self) -> Result<Vec<(String, String)>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => sqlite!(s, |s| s.outbox_events()),
            Backend::Postgres(p) => send(p.outbox_events()).await,
        }
    }

    /// Jobs waiting and jobs running.
    pub async fn queue_lengths(&self) -> Result<(i64, i64), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => sqlite!(s, |s| s.queue_lengths()),
            Backend::Postgres(p) => send(p.queue_lengths()).await,
        }
    }
}

/// How many times a PostgreSQL write is tried when the server aborts it
/// to break a deadlock ([`retried`]).
const DEADLOCK_ATTEMPTS: u32 = 5;

/// Runs a PostgreSQL write (one or more transactions, each rolled back
/// whole when it fails) again when the server aborted it to break a
/// deadlock. The lock orders of the writers cannot rule every cycle out:
/// an envelope moving a tag from one image to another locks the second
/// image (its push) before the first (the tag's old image), while a rescan
/// batch writing both locks them in digest order (see the `counters`
/// module). PostgreSQL then aborts one of them; without a retry a webhook
/// was answered 500 (the registry sends it again) or a rescan batch waited
/// for its lease to run out, and tests writing from two processes failed
/// about once in 15 runs under load. The writes are safe to run again:
/// what an aborted transaction did is gone, and what a committed one did
/// before it (a rescan's package claims) is idempotent. What follows a
/// write's last commit must not be in it: run again, the write would find
/// its work gone and report it undone (a rescan batch's housekeeping is
/// retried apart, see [`Store::finish_rescan`]).
async fn retried<T, F>(mut write: impl FnMut() -> F) -> Result<T, StoreError>
where
    F: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 1;
    loop {
        match write().await {
            Err(StoreError::Postgres(e))
                if attempt < DEADLOCK_ATTEMPTS
                    && e.code()
                        == Some(&tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED) =>
            {
                tracing::debug!(attempt, error = %e, "deadlock: the write is run again");
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// A PostgreSQL call's future, boxed and checked to be `Send` here, where
/// its lifetimes are plain (the compiler cannot prove it through the
/// service's task spawns otherwise).
fn send<'a, T>(
    future: impl std::future::Future<Output = T> + Send + 'a,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>> {
    Box::pin(future)
}

/// Runs a query of the SQLite store to its end on a blocking thread (its
/// statements never wait on anything but the connection's lock).
fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Handle::current().block_on(future)
}

/// Unix milliseconds by the local clock.
pub(crate) fn local_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The SQLite file's directory, created when missing.
fn create_parent(path: &Path) -> Result<(), StoreError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
                path: dir.to_owned(),
                source,
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let pg: StoreLocation = "postgresql://w:s3cret@db:5433/trawl?sslmode=disable"
            .parse()
            .unwrap();
        assert!(pg.is_postgres() && pg.has_password());
        assert_eq!(
            pg.to_string(),
            "postgresql://w:<redacted>@db:5433/trawl?sslmode=disable"
        );
        assert!(!format!("{pg:?}").contains("s3cret"));
        let pg = StoreLocation::postgres("postgres://w@db/trawl")
            .unwrap()
            .with_password("x");
        assert!(pg.has_password());
        assert_eq!(pg.to_string(), "postgres://w@db/trawl");
        let file: StoreLocation = "/var/lib/w/watch.sqlite".parse().unwrap();
        assert!(!file.is_postgres());
        assert_eq!(file.to_string(), "sqlite:/var/lib/w/watch.sqlite");
        for bad in [
            "",
            "sqlite:",
            "mysql://u:p@h/db",
            "postgres://h:notaport/db",
        ] {
            let e = bad
                .parse::<StoreLocation>()
                .err()
                .unwrap_or_else(|| panic!("{bad}"));
            assert!(!e.to_string().contains(":p@"), "{e}");
        }
    }

    #[test]
    fn severity_ranks_round_trip() {
        for (rank, severity) in SEVERITIES.iter().enumerate() {
            let rank = i16::try_from(rank).unwrap();
            assert_eq!(severity_rank(*severity), rank);
            assert_eq!(severity_of_rank(rank), *severity);
        }
        assert_eq!(severity_of_rank(99), Severity::Unknown);
        for kind in FIX_STATES {
            assert_eq!(fix_state_of(kind.as_str()), kind);
        }
    }

    /// The value hash as it was first computed (a `serde_json::Value`
    /// array, printed): stored rows carry it, so the streamed computation
    /// must give the same numbers.
    fn value_hash_as_stored(r: &FindingRow) -> i64 {
        let values = serde_json::json!([
            r.aliases,
            r.source_name,
            r.source_version,
            r.ecosystem,
            severity_rank(r.severity),
            r.fix_state.as_str(),
            r.fixed_version,
            r.layer,
            r.suppressed,
            r.package,
            r.version,
            r.path,
        ]);
        let digest = Sha256::digest(values.to_string().as_bytes());
        i64::from_be_bytes(digest[..8].try_into().unwrap())
    }

    #[test]
    fn finding_keys_number_repeats_only() {
        let row = |id: &str, package: &str, path: Option<&str>| FindingRow {
            id: id.into(),
            aliases: vec![],
            package: package.into(),
            version: "1.0".into(),
            source_name: package.into(),
            source_version: "1.0".into(),
            ecosystem: "Debian:12".into(),
            severity: Severity::Low,
            fix_state: FixStateKind::Unfixed,
            fixed_version: None,
            layer: None,
            path: path.map(str::to_string),
            suppressed: false,
        };
        let rows = [
            row("CVE-1", "a", None),
            row("CVE-1", "a", None),
            row("CVE-2", "a", None),
            row("CVE-1", "a", Some("/x")),
            row("CVE-1", "a", None),
        ];
        let s = KEY_SEPARATOR;
        assert_eq!(
            finding_keys(&rows),
            [
                format!("a{s}{s}1.0"),
                format!("a{s}{s}1.0{s}1"),
                format!("a{s}{s}1.0"),
                format!("a{s}/x{s}1.0"),
                format!("a{s}{s}1.0{s}2"),
            ]
        );
    }

    #[test]
    fn value_hash_is_the_stored_one() {
        let mut row = FindingRow {
            id: "CVE-1".into(),
            aliases: vec!["DSA-1".into(), "GHSA-\"q\\\u{1f}é".into()],
            package: "lib\u{1f}ssl3".into(),
            version: "3.0.1-1".into(),
            source_name: "openssl".into(),
            source_version: "3.0.1-1".into(),
            ecosystem: "Debian:12".into(),
            severity: Severity::High,
            fix_state: FixStateKind::WillNotFix,
            fixed_version: Some("3.0.2-1\n".into()),
            layer: None,
            path: Some("/usr/lib/x.jar".into()),
            suppressed: true,
        };
        assert_eq!(row.value_hash(), value_hash_as_stored(&row));
        row.aliases.clear();
        row.fixed_version = None;
        row.layer = Some("sha256:aa".into());
        row.path = None;
        row.suppressed = false;
        row.severity = Severity::Unknown;
        assert_eq!(row.value_hash(), value_hash_as_stored(&row));
        let before = row.value_hash();
        row.version = "3.0.1-2".into();
        assert_ne!(row.value_hash(), before);
    }

    #[test]
    fn results_hash_changes_with_every_kept_value() {
        let row = FindingRow {
            id: "CVE-1".into(),
            aliases: vec!["DSA-1".into()],
            package: "libssl3".into(),
            version: "3.0.1-1".into(),
            source_name: "openssl".into(),
            source_version: "3.0.1-1".into(),
            ecosystem: "Debian:12".into(),
            severity: Severity::High,
            fix_state: FixStateKind::Fixed,
            fixed_version: Some("3.0.2-1".into()),
            layer: Some("sha256:aa".into()),
            path: None,
            suppressed: false,
        };
        let hash = |rows: &[FindingRow]| results_sha256("unhealthy", "1 finding", "{}", rows);
        let base = hash(std::slice::from_ref(&row));
        assert_eq!(base, hash(std::slice::from_ref(&row.clone())));
        let changes: [fn(&mut FindingRow); 8] = [
            |r| r.severity = Severity::Critical,
            |r| r.fix_state = FixStateKind::Unfixed,
            |r| r.fixed_version = None,
            |r| r.suppressed = true,
            |r| r.aliases.clear(),
            |r| r.path = Some(String::new()),
            // Text moved from one field to the next.
            |r| {
                r.package = "libssl".into();
                r.version = "33.0.1-1".into();
            },
            |r| r.layer = None,
        ];
        for change in changes {
            let mut other = row.clone();
            change(&mut other);
            assert_ne!(hash(&[other]), base);
        }
        assert_ne!(
            results_sha256("healthy", "1 finding", "{}", std::slice::from_ref(&row)),
            base
        );
        assert_ne!(hash(&[row.clone(), row]), base);
        assert_ne!(hash(&[]), base);
    }

    #[test]
    fn finding_counts_count_what_counts() {
        let row =
            |package: &str, severity: Severity, fix: FixStateKind, suppressed: bool| FindingRow {
                id: "CVE-1".into(),
                aliases: vec![],
                package: package.into(),
                version: "1.0".into(),
                source_name: package.into(),
                source_version: "1.0".into(),
                ecosystem: "Debian:12".into(),
                severity,
                fix_state: fix,
                fixed_version: None,
                layer: None,
                path: None,
                suppressed,
            };
        let rows = [
            row("libssl3", Severity::Critical, FixStateKind::Fixed, false),
            row("libssl3", Severity::Critical, FixStateKind::Fixed, false),
            row("bash", Severity::Low, FixStateKind::WillNotFix, false),
            row("libssl3", Severity::Low, FixStateKind::Unfixed, false),
            // Suppressed: not counted, not even its package.
            row("zlib1g", Severity::Critical, FixStateKind::Fixed, true),
            row("bash", Severity::High, FixStateKind::Fixed, true),
        ];
        let counts = FindingCounts::of(&rows);
        let map = |pairs: &[(&str, i64)]| -> BTreeMap<String, i64> {
            pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
        };
        assert_eq!(
            counts.by_key,
            map(&[("5|fixed", 2), ("2|will_not_fix", 1), ("2|unfixed", 1)])
        );
        assert_eq!(counts.by_package, map(&[("libssl3", 3), ("bash", 1)]));
        assert_eq!(counts.findings(), 4);
        let json: serde_json::Value = serde_json::from_str(&counts.json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"s5|fixed": 2, "s2|will_not_fix": 1, "s2|unfixed": 1,
                               "plibssl3": 3, "pbash": 1})
        );
        // The keys are those the SQL writes: the rank and the state's name.
        assert_eq!(severity_rank(Severity::Critical), 5);
        assert_eq!(FixStateKind::WillNotFix.as_str(), "will_not_fix");
        let none = FindingCounts::of(&rows[4..]);
        assert_eq!(none, FindingCounts::default());
        assert_eq!(none.json(), "{}");
        // The change from stored counts: every key whose count differs,
        // before and after (null: none).
        let change = |old: &str, new: &FindingCounts| -> Option<serde_json::Value> {
            new.change_from(old)
                .map(|c| serde_json::from_str(&c).unwrap())
        };
        let old = r#"{"s5|fixed": 1, "s2|will_not_fix": 1, "s2|unfixed": 1, "plibssl3": 3,
                      "pzlib1g": 2, "pbash": 1}"#;
        assert_eq!(
            change(old, &counts),
            Some(serde_json::json!({
                "was": {"s5|fixed": 1, "pzlib1g": 2},
                "now": {"s5|fixed": 2, "pzlib1g": null}
            }))
        );
        // More than half the keys change: the documents are compared.
        assert_eq!(
            change(r#"{"s5|fixed": 1, "plibssl3": 3, "pzlib1g": 2}"#, &counts),
            None
        );
        assert_eq!(change("{}", &counts), None);
        assert_eq!(
            change(&counts.json(), &counts),
            Some(serde_json::json!({"was": {}, "now": {}}))
        );
        assert_eq!(
            change("{}", &none),
            Some(serde_json::json!({"was": {}, "now": {}}))
        );
        assert_eq!(change("[1]", &counts), None);
        assert_eq!(change(r#"{"s5|fixed": "1"}"#, &counts), None);
    }

    /// What `json` and `change_from` computed as maps of owned keys (the
    /// implementation before they walked both sides in order): the oracle.
    fn counts_json_by_maps(counts: &FindingCounts) -> String {
        let mut object = serde_json::Map::new();
        for (prefix, map) in [("s", &counts.by_key), ("p", &counts.by_package)] {
            for (name, n) in map {
                object.insert(format!("{prefix}{name}"), (*n).into());
            }
        }
        serde_json::Value::Object(object).to_string()
    }

    fn change_by_maps(counts: &FindingCounts, old: &str) -> Option<serde_json::Value> {
        let old: BTreeMap<String, i64> = serde_json::from_str(old).ok()?;
        let new: BTreeMap<String, i64> = serde_json::from_str(&counts_json_by_maps(counts)).ok()?;
        let (mut was, mut now) = (serde_json::Map::new(), serde_json::Map::new());
        for key in old.keys().chain(new.keys()) {
            let (before, after) = (old.get(key), new.get(key));
            if before != after && !was.contains_key(key) {
                was.insert(key.clone(), before.copied().into());
                now.insert(key.clone(), after.copied().into());
            }
        }
        if 2 * was.len() > old.len().max(new.len()) {
            return None;
        }
        Some(serde_json::json!({ "was": was, "now": now }))
    }

    /// Counts and stored documents drawn at random (names that need
    /// escaping, keys PostgreSQL orders by length first, spaces, counts
    /// that come, go and change): `json` writes what the maps wrote, byte
    /// for byte, and `change_from` says what they said.
    #[test]
    fn counts_documents_agree_with_the_maps() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        const NAMES: [&str; 12] = [
            "libc6",
            "libssl3",
            "zlib1g",
            "a",
            "libc6-dev",
            "quote\"d",
            "back\\slash",
            "unicode-\u{e9}",
            "ctl-\u{1f}",
            "p",
            "s5|fixed",
            "tab\t",
        ];
        const KEYS: [&str; 6] = [
            "5|fixed",
            "4|unfixed",
            "2|will_not_fix",
            "0|fixed",
            "3|x",
            "s",
        ];
        let draw = |next: &mut dyn FnMut(u64) -> u64| {
            let mut c = FindingCounts::default();
            for name in NAMES {
                if next(3) > 0 {
                    c.by_package.insert(name.to_string(), 1 + next(4) as i64);
                }
            }
            for key in KEYS {
                if next(3) > 0 {
                    c.by_key.insert(key.to_string(), 1 + next(4) as i64);
                }
            }
            c
        };
        let mut changes = 0;
        for round in 0..2000 {
            let new = draw(&mut next);
            assert_eq!(new.json(), counts_json_by_maps(&new), "round {round}");
            // The stored document: another draw, or this one with a few
            // counts moved, written as PostgreSQL writes jsonb (keys by
            // length, then bytes; a space after each colon and comma).
            let mut before = if next(2) == 0 {
                draw(&mut next)
            } else {
                new.clone()
            };
            if next(2) == 0
                && let Some(n) = before.by_package.values_mut().next()
            {
                *n += 1;
            }
            let value: serde_json::Value = serde_json::from_str(&before.json()).unwrap();
            let mut entries: Vec<(&String, &serde_json::Value)> =
                value.as_object().unwrap().iter().collect();
            entries.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then(a.0.cmp(b.0)));
            let stored = format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|(k, v)| format!("{}: {v}", serde_json::to_string(k).unwrap()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let fast = new
                .change_from(&stored)
                .map(|c| serde_json::from_str::<serde_json::Value>(&c).unwrap());
            assert_eq!(
                fast,
                change_by_maps(&new, &stored),
                "round {round}: {stored}"
            );
            changes += usize::from(fast.is_some());
        }
        // Both answers were seen.
        assert!((100..1900).contains(&changes), "{changes} changes");
        // Not documents of counts, or a key twice (PostgreSQL never writes
        // one): no change, the database compares the documents.
        let some = draw(&mut next);
        for bad in [
            "[1]",
            "{\"plibc6\": 1.5}",
            "{\"plibc6\": 1, \"plibc6\": 2}",
            "",
            "{",
        ] {
            assert_eq!(some.change_from(bad), None, "{bad}");
        }
    }
}
