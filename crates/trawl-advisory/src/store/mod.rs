//! The compiled advisory database: every feed in one file, queried in place.
//!
//! [`AdvisoryStore::build`] (or a [`StoreBuilder`]) reads the feeds and writes one
//! SQLite file; [`AdvisoryStore::open`] opens it read-only and answers the same
//! queries as an [`AdvisoryDb`](crate::AdvisoryDb) loaded from the same feeds,
//! through [`AdvisorySource`].
//!
//! # Layout
//!
//! | table | key | holds |
//! |---|---|---|
//! | `meta` | name | format, schema version, counts, content SHA-256, build time (`built_at`, Unix seconds; `SOURCE_DATE_EPOCH` when set) |
//! | `records` | sequence number (`seq`) | one whole record, in a compact encoding with its CRC-32 |
//! | `entries` | (package key, insertion order, affected index) | one `affected` entry: its ecosystem and package, its record's `seq`, and its ranges compiled for matching |
//! | `ecosystems` | normalised ecosystem | number of entries |
//!
//! The package key is an integer: the ecosystem's position among the
//! store's ecosystems in the high bits, a hash of the package name in the
//! low ones (see `package_key`). Integer keys make the index search a few
//! integer comparisons per page, and one ecosystem's entries (all an image
//! asks about) stay together in the file. An entry holds what matching
//! reads, pre-digested: the range events already sorted into intervals, each
//! bound as its version text, the vendor status; it is evaluated in place
//! without building anything (see `CompiledAffected::evaluate_encoded`).
//!
//! One query per (ecosystem, package) joins the package's entries to their
//! records. The join is filtered by `trawl_match`, an SQL function this
//! store registers on its connection, which evaluates each entry against
//! the installed version, so that SQLite reads (and this code decodes) the
//! records of matching entries only. The statement is prepared once and
//! cached; one read transaction stays open, since the file never changes.
//! Records are placed in the order of the first package they name, so one
//! query's records share pages.
//!
//! SQLite was chosen over a hand-made format because it gives the B-tree
//! index, page-level access with its own page cache, and mature tooling
//! (`sqlite3` can inspect a file) for free. Against a million advisories it opens
//! in well under a millisecond; matching a mixed 1000-package inventory takes
//! about 16 ms (see `benches/store.rs` and the README's performance section).
//!
//! Each matching record is decoded once per query into an `Arc`, which its
//! matches share ([`Shared`]); a match names its `affected`
//! entry by position ([`AdvisoryMatch::affected`]) instead of holding a copy.
//! Before (2026-12-04), every match decoded its record and then deep-copied
//! the matched `affected` entry with all its listed versions, and a record
//! matching twice was deep-copied again: 41.8 ms for the bench's 1000
//! packages, against 16.5 ms now (`cargo bench -p trawl-advisory --bench
//! store`, 1,011,845 advisories, both at load average 4–5 on 2 shared cores;
//! 22.5 ms at load 9–10).
//! What is left is mostly decoding the whole record (every `versions` entry a
//! `String`) and SQLite's page cache.
//!
//! # Integrity, and what open costs
//!
//! Opening must not read the file, so the checks are layered:
//! - on open, from the 100-byte SQLite header: the magic, the application id
//!   (`TRWL`), the schema version (`user_version`), and that the file is exactly
//!   as long as the header says (a truncated download is caught here); then the
//!   `meta` row, and the small `ecosystems` table against its own SHA-256;
//! - on every read, each record and index entry against the CRC-32 stored in
//!   front of it, and SQLite's own page checks: damage is reported for the record
//!   read, naming the file;
//! - on demand, [`AdvisoryStore::verify`]: `PRAGMA quick_check`, every checksum
//!   and package key, and the SHA-256 of the whole content against the one
//!   recorded at build time. It reads every
//!   page (about a second for 500,000 advisories), so `db info`, `db pull` and
//!   `db update` run it, and scans do not.
//!
//! The file is opened with `immutable=1` and `mode=ro`: nothing is ever written,
//! no lock or journal file is created. A new database replaces the old one by
//! rename, so an open store keeps reading the file it opened.
//!
//! # A file changed under an open store
//!
//! Someone may still write the file in place (`cp new.db trawl.db`, a
//! truncation). The store is therefore read with `read(2)` into a bounded
//! page cache (`mmap_size = 0`, `cache_size` 32 MiB), never through a memory
//! mapping, which would turn such a write into SIGBUS and kill the process.
//! Only regular files are opened ([`StoreError::NotARegularFile`] for a FIFO,
//! device or directory, refused without blocking). The file's identity
//! (device, inode, size, modification time) is recorded by `fstat` on open;
//! [`AdvisoryStore::has_changed`] compares it with the open file's, queries
//! do so themselves, and once it differs every query fails with
//! [`StoreError::Changed`] and the store claims no ecosystem. (A write that
//! keeps the size and lands within the file system's timestamp tick of the
//! open is not seen by this check; the page and record checksums remain.)

// Ranges are evaluated by the in-memory database's own code, so both agree.
use crate::db::affected;
mod build;
pub(crate) mod record;
pub(crate) mod wire;

pub use build::{FeedPaths, StoreBuilder};

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};

use crate::db::{AdvisoryMatch, AdvisorySource, PackageQuery, QueryError, Shared};
use crate::ecosystem::Ecosystem;
use crate::feed::{FeedError, FeedWarning, OpenError, open_regular};
use crate::fix::FixState;
use crate::osv::Advisory;
use affected::{Installed, PreparedQuery};
use record::{BlobError, decode_advisory, evaluate_entry};

/// The schema version this crate reads and writes; also SQLite's `user_version`.
/// Version 3 files language packages under their ecosystem's canonical name
/// ([`crate::canonical`]); a version 2 store, whose keys are names as the
/// feeds wrote them, is refused (rebuild it with `trawl db build`/`update`).
pub const SCHEMA_VERSION: u32 = 3;

/// SQLite `application_id` of a store: `TRWL`.
const APPLICATION_ID: u32 = u32::from_be_bytes(*b"TRWL");

/// `meta.format` of a store.
const FORMAT_NAME: &str = "trawl-advisory-db";

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE records (seq INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE entries (
    key INTEGER NOT NULL, ord INTEGER NOT NULL, affected INTEGER NOT NULL,
    ecosystem TEXT NOT NULL, name TEXT NOT NULL, seq INTEGER NOT NULL, entry BLOB,
    PRIMARY KEY (key, ord, affected)
) WITHOUT ROWID;
CREATE TABLE ecosystems (key TEXT PRIMARY KEY, entries INTEGER NOT NULL) WITHOUT ROWID;
";

/// The matching entries of one (ecosystem, package), in `AdvisoryDb` order,
/// with their records: `trawl_match` (see [`Probe`]) decides which entries
/// match before SQLite reads a record, so only matching records are read.
const MATCH_QUERY: &str = "SELECT e.seq, e.affected, r.data FROM entries e JOIN records r ON r.seq = e.seq \
     WHERE e.key=?1 AND trawl_match(e.ecosystem, e.name, e.seq, e.affected, e.entry) \
     ORDER BY e.ord, e.affected";

/// Matches a query keeps on the stack before allocating its answer.
const STAGED: usize = 4;

/// How long a query trusts the last check that the file is unchanged (one
/// `fstat`, about half a microsecond, a tenth of a query): a query more than
/// this after the last check checks again, so a burst of queries costs a
/// few checks, not one each; a query that fails always checks. See
/// [`AdvisoryStore::has_changed`].
const CHECK_INTERVAL: Duration = Duration::from_millis(1);

/// SQLite's page cache for one store, in KiB (`PRAGMA cache_size` takes
/// negative numbers as KiB): 32 MiB.
const CACHE_KIB: u32 = 32 * 1024;

/// What identifies a file's content cheaply: device and inode (which file) and
/// size and modification time (whether it was written since). An in-place
/// write changes the size or the modification time; a replacement by rename
/// leaves the opened file alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
}

impl FileIdentity {
    fn of(metadata: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Self {
                dev: metadata.dev(),
                ino: metadata.ino(),
                size: metadata.len(),
                mtime: (metadata.mtime(), metadata.mtime_nsec()),
            }
        }
        #[cfg(not(unix))]
        {
            let mtime = metadata
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or((0, 0), |d| {
                    (d.as_secs() as i64, i64::from(d.subsec_nanos()))
                });
            Self {
                dev: 0,
                ino: 0,
                size: metadata.len(),
                mtime,
            }
        }
    }
}

/// A compiled advisory database, opened read-only.
///
/// Queries go through one SQLite connection behind a mutex, so the store can be
/// shared between threads; each query holds it for a few microseconds.
pub struct AdvisoryStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    info: StoreInfo,
    /// Each ecosystem and its position in [`StoreInfo::ecosystems`], the
    /// high part of its packages' keys.
    ecosystems: HashMap<String, u32>,
    /// Set once a read finds damage: from then on the store claims no
    /// ecosystem, so that no package is called unaffected on its word.
    damaged: AtomicBool,
    /// The opened file, kept open to `fstat` it: the same file SQLite reads
    /// (checked on open), whatever later happens to the path.
    file: std::fs::File,
    /// Its size and modification time at open.
    identity: FileIdentity,
    /// Set once the file is seen changed: sticky.
    changed: AtomicBool,
    /// When the store was opened: the origin of `checked`.
    opened: Instant,
    /// Nanoseconds after `opened` of the last check (see [`CHECK_INTERVAL`]).
    checked: AtomicU64,
    /// What the connection's `trawl_match` function works with.
    probe: Arc<Mutex<Probe>>,
}

/// The state of `trawl_match(ecosystem, name, seq, affected, entry)`, the SQL function that
/// evaluates index entries inside the match query, so that SQLite reads the
/// record of a matching entry only: the current query's installed version
/// in, the verdicts of the entries it accepted (in order) and the first
/// damage found out.
#[derive(Default)]
struct Probe {
    installed: Option<Installed<'static>>,
    /// The queried (ecosystem, package): rows of another package whose key
    /// collides with it are not its entries.
    ecosystem: String,
    name: String,
    hits: Vec<(i64, u32, FixState)>,
    error: Option<(i64, BlobError)>,
}

impl Probe {
    /// `trawl_match` itself: true when the entry covers the installed
    /// version (its verdict is queued), false when it does not or when no
    /// query is running; an error when the entry is damaged.
    fn evaluate(probe: &Mutex<Probe>, ctx: &Context<'_>) -> rusqlite::Result<bool> {
        let mut probe = probe.lock().unwrap_or_else(|e| e.into_inner());
        let Probe {
            installed,
            ecosystem,
            name,
            hits,
            error,
        } = &mut *probe;
        let Some(installed) = installed else {
            return Ok(false);
        };
        let is = |at: usize, text: &str| matches!(ctx.get_raw(at), ValueRef::Text(t) if t == text.as_bytes());
        if !is(1, name) || !is(0, ecosystem) {
            return Ok(false);
        }
        let seq: i64 = ctx.get(2)?;
        let affected: u32 = ctx.get(3)?;
        let blob = match ctx.get_raw(4) {
            ValueRef::Blob(blob) => blob,
            // Entries of ecosystems without a version scheme never match.
            ValueRef::Null => return Ok(false),
            _ => {
                *error = Some((seq, BlobError::Decode("entry is not a blob".into())));
                return Err(rusqlite::Error::UserFunctionError("damaged entry".into()));
            }
        };
        match evaluate_entry(blob, installed) {
            Ok(Some(fix_state)) => {
                hits.push((seq, affected, fix_state));
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => {
                *error = Some((seq, e));
                Err(rusqlite::Error::UserFunctionError("damaged entry".into()))
            }
        }
    }
}

impl std::fmt::Debug for AdvisoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdvisoryStore")
            .field("path", &self.path)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// What a store holds, from its `meta` and `ecosystems` tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreInfo {
    /// The schema version ([`SCHEMA_VERSION`] for a store this crate opens).
    pub schema_version: u32,
    /// Live records.
    pub records: u64,
    /// Indexed `affected` entries.
    pub entries: u64,
    /// Normalised ecosystems (`Debian:12`) and their entry counts, sorted.
    pub ecosystems: Vec<(String, u64)>,
    /// SHA-256 (hex) of the content, recorded at build time; see
    /// [`AdvisoryStore::verify`].
    pub content_sha256: String,
    /// SHA-256 (hex) of the `ecosystems` table, checked on open.
    pub ecosystems_sha256: String,
    /// The library that wrote the file, e.g. `trawl-advisory 0.1.0`.
    pub built_by: String,
    /// When the file was built, in seconds since the Unix epoch (UTC): the
    /// build's clock, or `SOURCE_DATE_EPOCH` when set (reproducible builds).
    /// `None` for a file written before the time was recorded.
    pub built_at: Option<u64>,
    /// How many `GIT` ranges the feeds had, skipped since commit ranges cannot
    /// match package versions (see [`WarningReason::GitRange`](crate::WarningReason::GitRange)).
    /// `None` for a file written before the count was recorded.
    pub skipped_git_ranges: Option<u64>,
}

/// Why a store could not be built, opened or read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A feed could not be read.
    #[error(transparent)]
    Feed(#[from] FeedError),
    /// The file could not be read or written.
    #[error("advisory database {}: {source}", path.display())]
    Io {
        /// The database file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Not an SQLite file at all.
    #[error("advisory database {}: not an SQLite database file", path.display())]
    NotADatabase {
        /// The file.
        path: PathBuf,
    },
    /// An SQLite file, but not one this crate wrote.
    #[error("advisory database {}: not a Trawl advisory database (application id {application_id:#010x})", path.display())]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// The application id found.
        application_id: u32,
    },
    /// The file is shorter or longer than its header says: cut off, or appended to.
    #[error("advisory database {}: truncated or damaged: the header says {expected} bytes, the file has {actual}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes according to the header.
        expected: u64,
        /// Bytes on disk.
        actual: u64,
    },
    /// Written with another schema version; rebuild it (or use a matching Trawl).
    #[error("advisory database {}: schema version {found}, this Trawl reads version {expected}; rebuild it with `db build` or `db update`", path.display())]
    SchemaVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// [`SCHEMA_VERSION`].
        expected: u32,
    },
    /// A record, entry or table does not match its checksum or cannot be decoded.
    #[error("advisory database {}: corrupt {what}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is damaged, e.g. `record 1234` or `entries row (Debian:12, openssl)`.
        what: String,
        /// How.
        reason: String,
    },
    /// SQLite failed to open or read the file (including its own corruption
    /// checks).
    #[error("advisory database {}: {message}", path.display())]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// SQLite's message.
        message: String,
    },
    /// The database could not be written.
    #[error("cannot write advisory database {}: {message}", path.display())]
    Write {
        /// The target file.
        path: PathBuf,
        /// SQLite's message.
        message: String,
    },
    /// The query itself cannot be answered (unknown ecosystem, invalid version).
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The path names a FIFO, device, socket or directory, not a database file;
    /// it was not read (opening a FIFO does not wait for a writer).
    #[error("advisory database {}: not a regular file but a {kind}", path.display())]
    NotARegularFile {
        /// The path.
        path: PathBuf,
        /// What it is: `FIFO`, `directory`, `character device`, `block device`, `socket`.
        kind: &'static str,
    },
    /// The file was modified in place (its size or modification time changed)
    /// after it was opened, so its pages can no longer be trusted: every query
    /// from then on fails with this error. Open the file again (a database
    /// replaced by rename, as `db update` does, is never this: the store keeps
    /// reading the file it opened). See [`AdvisoryStore::has_changed`].
    #[error("advisory database {}: the file was modified in place after it was opened; open it again", path.display())]
    Changed {
        /// The file.
        path: PathBuf,
    },
}

impl AdvisoryStore {
    /// Builds a store from the feeds on disk and writes it to `out` atomically
    /// (see [`StoreBuilder::write`]). Returns what was written and the feeds'
    /// warnings.
    pub fn build(
        feeds: &FeedPaths,
        out: impl AsRef<Path>,
    ) -> Result<(StoreInfo, Vec<FeedWarning>), StoreError> {
        let mut builder = StoreBuilder::new();
        let warnings = builder.add_paths(feeds)?;
        let info = builder.write(out)?;
        Ok((info, warnings))
    }

    /// Opens a store read-only, checking its header, schema version and
    /// metadata (see the module docs for what is checked when).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        let (file, identity) = check_header(&path)?;
        let sqlite = |e: rusqlite::Error| sqlite_error(&path, e);
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(immutable_uri(&path), flags).map_err(sqlite)?;
        // No memory mapping: a mapped file truncated or rewritten in place
        // kills the process with SIGBUS; read(2) into a bounded page cache
        // turns the same damage into an error. One read transaction stays
        // open for the connection's life, so that queries do not each begin
        // and end one (the file is not expected to change; see `has_changed`).
        conn.execute_batch(&format!(
            "PRAGMA mmap_size = 0; PRAGMA cache_size = -{CACHE_KIB}; PRAGMA query_only = 1; BEGIN;"
        ))
        .map_err(sqlite)?;

        let probe = Arc::new(Mutex::new(Probe::default()));
        let shared = probe.clone();
        conn.create_scalar_function(
            "trawl_match",
            5,
            FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DIRECTONLY,
            move |ctx| Probe::evaluate(&shared, ctx),
        )
        .map_err(sqlite)?;

        let meta: HashMap<String, String> = {
            let mut stmt = conn
                .prepare("SELECT key, value FROM meta")
                .map_err(sqlite)?;
            let rows = stmt
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(sqlite)?;
            rows.collect::<Result<_, _>>().map_err(sqlite)?
        };
        let corrupt_meta = |reason: String| StoreError::Corrupt {
            path: path.clone(),
            what: "meta table".into(),
            reason,
        };
        let field = |key: &str| {
            meta.get(key)
                .ok_or_else(|| corrupt_meta(format!("no `{key}`")))
        };
        let number = |key: &str| {
            field(key)?
                .parse::<u64>()
                .map_err(|e| corrupt_meta(format!("`{key}`: {e}")))
        };
        if field("format")? != FORMAT_NAME {
            return Err(corrupt_meta(format!(
                "format is {:?}, not {FORMAT_NAME:?}",
                field("format")?
            )));
        }
        let schema_version = number("schema_version")?;
        if schema_version != u64::from(SCHEMA_VERSION) {
            return Err(StoreError::SchemaVersion {
                path,
                found: u32::try_from(schema_version).unwrap_or(u32::MAX),
                expected: SCHEMA_VERSION,
            });
        }
        let content_sha256 = field("content_sha256")?.clone();
        let ecosystems_sha256 = field("ecosystems_sha256")?.clone();
        for (key, hash) in [
            ("content_sha256", &content_sha256),
            ("ecosystems_sha256", &ecosystems_sha256),
        ] {
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(corrupt_meta(format!("`{key}` is not a SHA-256")));
            }
        }

        let ecosystems: Vec<(String, u64)> = {
            let mut stmt = conn
                .prepare("SELECT key, entries FROM ecosystems ORDER BY key")
                .map_err(sqlite)?;
            let rows = stmt
                .query_map([], |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as u64)))
                .map_err(sqlite)?;
            rows.collect::<Result<_, _>>().map_err(sqlite)?
        };
        let mut hash = Sha256::new();
        for (key, count) in &ecosystems {
            hash_ecosystem(&mut hash, key, *count);
        }
        if hex::encode(hash.finalize()) != ecosystems_sha256 {
            return Err(StoreError::Corrupt {
                path,
                what: "ecosystems table".into(),
                reason: "its SHA-256 differs from the one recorded at build time".into(),
            });
        }
        // SQLite opened the path anew: make sure it is the file checked above,
        // and that nothing wrote to it meanwhile.
        let same = std::fs::metadata(&path).is_ok_and(|now| FileIdentity::of(&now) == identity)
            && file
                .metadata()
                .is_ok_and(|now| FileIdentity::of(&now) == identity);
        if !same {
            return Err(StoreError::Changed { path });
        }
        let info = StoreInfo {
            schema_version: SCHEMA_VERSION,
            records: number("records")?,
            entries: number("entries")?,
            ecosystems_sha256,
            content_sha256,
            built_by: meta.get("built_by").cloned().unwrap_or_default(),
            built_at: meta.get("built_at").and_then(|t| t.parse().ok()),
            skipped_git_ranges: meta.get("skipped_git_ranges").and_then(|t| t.parse().ok()),
            ecosystems,
        };
        Ok(Self {
            ecosystems: info
                .ecosystems
                .iter()
                .enumerate()
                .map(|(i, (key, _))| (key.clone(), i as u32))
                .collect(),
            path,
            conn: Mutex::new(conn),
            info,
            damaged: AtomicBool::new(false),
            file,
            identity,
            changed: AtomicBool::new(false),
            opened: Instant::now(),
            checked: AtomicU64::new(0),
            probe,
        })
    }

    /// Whether the opened file was modified in place since [`open`](Self::open):
    /// its size or modification time differ (one `fstat` of the file this
    /// store holds open). Once true it stays true, and every query fails with
    /// [`StoreError::Changed`]. A database replaced by rename (as `db update`
    /// writes it) is not a change: the store keeps reading the file it opened.
    ///
    /// Queries check this themselves (at most once a millisecond, and after
    /// any failed read), so a caller need not; a long-lived service may call it
    /// to reopen early. The file is read with `read(2)`, never through a
    /// memory mapping, so an in-place write can at worst make a query fail,
    /// never crash the process.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), trawl_advisory::StoreError> {
    /// use trawl_advisory::AdvisoryStore;
    ///
    /// let mut store = AdvisoryStore::open("trawl.db")?;
    /// if store.has_changed() {
    ///     store = AdvisoryStore::open("trawl.db")?;
    /// }
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub fn has_changed(&self) -> bool {
        if self.changed.load(Ordering::Relaxed) {
            return true;
        }
        let changed = self
            .file
            .metadata()
            .map_or(true, |now| FileIdentity::of(&now) != self.identity);
        if changed {
            self.changed.store(true, Ordering::Relaxed);
            // Claim no ecosystem any more: nothing is called unaffected.
            self.damaged.store(true, Ordering::Relaxed);
        }
        changed
    }

    /// [`StoreError::Changed`] if the file is known changed, or is found
    /// changed by a check, made when the last is over [`CHECK_INTERVAL`] old.
    fn check_unchanged(&self) -> Result<(), StoreError> {
        if self.changed.load(Ordering::Relaxed) {
            return Err(self.changed_error());
        }
        let now = u64::try_from(self.opened.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let last = self.checked.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= CHECK_INTERVAL.as_nanos() as u64 {
            self.checked.store(now, Ordering::Relaxed);
            if self.has_changed() {
                return Err(self.changed_error());
            }
        }
        Ok(())
    }

    fn changed_error(&self) -> StoreError {
        StoreError::Changed {
            path: self.path.clone(),
        }
    }

    /// The file this store reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the store holds.
    pub fn info(&self) -> &StoreInfo {
        &self.info
    }

    /// Reads the whole file: SQLite's `PRAGMA quick_check`, every record's and
    /// entry's checksum, and the content SHA-256 against the one recorded at build
    /// time. Slow (it reads every page); for `db info` and after downloads.
    pub fn verify(&self) -> Result<(), StoreError> {
        if self.has_changed() {
            return Err(self.changed_error());
        }
        let conn = self.lock();
        let sqlite = |e: rusqlite::Error| sqlite_error(&self.path, e);
        let problems: Vec<String> = {
            let mut stmt = conn.prepare("PRAGMA quick_check").map_err(sqlite)?;
            let rows = stmt.query_map([], |row| row.get(0)).map_err(sqlite)?;
            rows.collect::<Result<_, _>>().map_err(sqlite)?
        };
        if problems != ["ok"] {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                what: "file".into(),
                reason: format!("SQLite quick_check: {}", problems.join("; ")),
            });
        }
        let mut hasher = ContentHasher::default();
        let mut stmt = conn
            .prepare("SELECT seq, data FROM records ORDER BY seq")
            .map_err(sqlite)?;
        let mut rows = stmt.query([]).map_err(sqlite)?;
        while let Some(row) = rows.next().map_err(sqlite)? {
            let seq: i64 = row.get(0).map_err(sqlite)?;
            let data = row
                .get_ref(1)
                .map_err(sqlite)?
                .as_blob()
                .map_err(|e| self.corrupt(format!("record {seq}"), e.to_string()))?;
            record::unframe(data)
                .map_err(|e| self.corrupt(format!("record {seq}"), e.to_string()))?;
            hasher.record(seq, data);
        }
        let mut stmt = conn
            .prepare(
                "SELECT key, ord, affected, ecosystem, name, seq, entry FROM entries \
                 ORDER BY key, ord, affected",
            )
            .map_err(sqlite)?;
        let mut rows = stmt.query([]).map_err(sqlite)?;
        while let Some(row) = rows.next().map_err(sqlite)? {
            let key: i64 = row.get(0).map_err(sqlite)?;
            let ord: i64 = row.get(1).map_err(sqlite)?;
            let affected: u32 = row.get(2).map_err(sqlite)?;
            let ecosystem: String = row.get(3).map_err(sqlite)?;
            let name: String = row.get(4).map_err(sqlite)?;
            let seq: i64 = row.get(5).map_err(sqlite)?;
            let entry: Option<Vec<u8>> = row.get(6).map_err(sqlite)?;
            let what = || format!("entries row ({ecosystem}, {name}, {seq})");
            if self
                .ecosystems
                .get(&ecosystem)
                .map(|&i| package_key(i, &name))
                != Some(key)
            {
                return Err(self.corrupt(what(), "its key does not match its package".into()));
            }
            if let Some(entry) = &entry {
                record::unframe(entry).map_err(|e| self.corrupt(what(), e.to_string()))?;
            }
            hasher.entry(key, ord, affected, &ecosystem, &name, seq, entry.as_deref());
        }
        let mut ecosystems = Sha256::new();
        for (key, count) in &self.info.ecosystems {
            hash_ecosystem(&mut ecosystems, key, *count);
        }
        let computed = hasher.finish(&ecosystems.finalize());
        if computed != self.info.content_sha256 {
            return Err(self.corrupt(
                "content".into(),
                format!(
                    "SHA-256 {computed} differs from the {} recorded at build time",
                    self.info.content_sha256
                ),
            ));
        }
        Ok(())
    }

    /// The advisories affecting an installed package: the same answer as
    /// [`AdvisoryDb::matches`](crate::AdvisoryDb::matches) over the same feeds,
    /// with each matching record decoded once and shared by its matches.
    pub fn matches(
        &self,
        query: &PackageQuery<'_>,
    ) -> Result<Vec<AdvisoryMatch<'static>>, StoreError> {
        let all = self.assess(query)?;
        if all.iter().all(|m| m.fix_state.is_affected()) {
            // Nothing to suppress (the usual case): the answer as it is.
            return Ok(all);
        }
        let not_affected: HashSet<String> = all
            .iter()
            .filter(|m| !m.fix_state.is_affected())
            .flat_map(|m| vulnerability_ids(&m.advisory).map(str::to_owned))
            .collect();
        Ok(all
            .into_iter()
            .filter(|m| {
                m.fix_state.is_affected()
                    && !vulnerability_ids(&m.advisory).any(|id| not_affected.contains(id))
            })
            .collect())
    }

    /// Every statement about an installed package, as
    /// [`AdvisoryDb::assess`](crate::AdvisoryDb::assess) gives it.
    pub fn assess(
        &self,
        query: &PackageQuery<'_>,
    ) -> Result<Vec<AdvisoryMatch<'static>>, StoreError> {
        self.check_unchanged()?;
        let PreparedQuery {
            ecosystem,
            installed,
        } = PreparedQuery::new(query)?;
        let failed = |e| self.sqlite_failure(e);
        // Entries are stored under the canonical name (see `canonical`).
        let name = crate::canonical::package_name(query.ecosystem, query.name);
        let name = name.as_ref();
        // The index keys (the release's ecosystem, then its distribution's)
        // the store has entries under, with their positions.
        let keys = affected::index_keys(&ecosystem)
            .filter_map(|key| Some((key, *self.ecosystems.get(key)?)));
        if keys.clone().next().is_none() {
            return Ok(Vec::new());
        }

        let conn = self.lock();
        // The query's installed version, for `trawl_match` (one query at a
        // time: the connection is locked).
        let probe = &self.probe;
        {
            let mut probe = probe.lock().unwrap_or_else(|e| e.into_inner());
            probe.installed = Some(installed.into_owned());
            probe.name.clear();
            probe.name.push_str(name);
            probe.hits.clear();
            probe.error = None;
        }
        // Matches, in index order. A short answer stays on the stack until it
        // is complete: its vector is the one large allocation of a query, and
        // allocating it first would make the allocator tidy up, slowing every
        // small allocation after it.
        let mut staged: [Option<AdvisoryMatch<'static>>; STAGED] = Default::default();
        let mut found: Vec<AdvisoryMatch<'static>> = Vec::new();
        let mut count = 0;
        // Records already decoded, by seq: a record matching again (another of
        // its `affected` entries) is copied from its first match.
        let mut decoded = Decoded::default();
        for (key, ecosystem_index) in keys {
            {
                let mut probe = probe.lock().unwrap_or_else(|e| e.into_inner());
                probe.ecosystem.clear();
                probe.ecosystem.push_str(key);
            }
            let mut stmt = conn.prepare_cached(MATCH_QUERY).map_err(failed)?;
            let mut rows = stmt
                .query([package_key(ecosystem_index, name)])
                .map_err(failed)?;
            loop {
                let row = match rows.next() {
                    Ok(Some(row)) => row,
                    Ok(None) => break,
                    Err(e) => {
                        return Err(
                            match probe.lock().unwrap_or_else(|e| e.into_inner()).error.take() {
                                Some((seq, e)) => self
                                    .corrupt_blob(format!("entries row ({key}, {name}, {seq})"), e),
                                None => failed(e),
                            },
                        );
                    }
                };
                let seq: i64 = row.get(0).map_err(failed)?;
                let affected_index: u32 = row.get(1).map_err(failed)?;
                let what = || format!("record {seq}");
                // The verdict `trawl_match` gave this row. Rows it accepted but
                // another condition refused left theirs before it.
                let fix_state = {
                    let mut probe = probe.lock().unwrap_or_else(|e| e.into_inner());
                    let hits = &mut probe.hits;
                    let at = hits
                        .iter()
                        .position(|(s, a, _)| (*s, *a) == (seq, affected_index));
                    match at {
                        Some(at) => hits.drain(..=at).next_back().map(|(_, _, fix)| fix),
                        None => None,
                    }
                };
                let Some(fix_state) = fix_state else {
                    return Err(self.corrupt(what(), "matched without a verdict".into()));
                };
                let advisory = match decoded.get(seq) {
                    Some(earlier) => Arc::clone(earlier),
                    None => {
                        let blob = row
                            .get_ref(2)
                            .map_err(failed)?
                            .as_blob()
                            .map_err(|e| self.corrupt(what(), e.to_string()))?;
                        let advisory = Arc::new(
                            decode_advisory(blob).map_err(|e| self.corrupt_blob(what(), e))?,
                        );
                        decoded.insert(seq, Arc::clone(&advisory));
                        advisory
                    }
                };
                let one =
                    AdvisoryMatch::new(Shared::Owned(advisory), affected_index as usize, fix_state)
                        .ok_or_else(|| {
                            self.corrupt(
                                what(),
                                format!("it has no affected entry {affected_index}"),
                            )
                        })?;
                if count < STAGED {
                    staged[count] = Some(one);
                } else {
                    if found.is_empty() {
                        found.reserve(2 * STAGED);
                        found.extend(staged.iter_mut().filter_map(Option::take));
                    }
                    found.push(one);
                }
                count += 1;
            }
        }
        probe.lock().unwrap_or_else(|e| e.into_inner()).installed = None;
        drop(conn);
        if count <= STAGED {
            found.reserve_exact(count);
            found.extend(staged.into_iter().flatten());
        }
        found.sort_by(|a, b| a.advisory.id.cmp(&b.advisory.id));
        Ok(found)
    }

    /// Whether any record covers the ecosystem, as
    /// [`AdvisoryDb::has_ecosystem`](crate::AdvisoryDb::has_ecosystem) answers it;
    /// always `false` once a read has found the file damaged.
    pub fn has_ecosystem(&self, ecosystem: &str) -> bool {
        if self.damaged.load(Ordering::Relaxed) {
            return false;
        }
        let ecosystem = Ecosystem::parse(ecosystem);
        [ecosystem.as_str(), ecosystem.distro()]
            .iter()
            .any(|key| self.ecosystems.contains_key(*key))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave the read-only connection in
        // a state later queries would misread.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn corrupt_blob(&self, what: String, error: BlobError) -> StoreError {
        self.corrupt(what, error.to_string())
    }

    fn corrupt(&self, what: String, reason: String) -> StoreError {
        self.damaged.store(true, Ordering::Relaxed);
        // Damage read from a file written in place is that change.
        if self.has_changed() {
            return self.changed_error();
        }
        StoreError::Corrupt {
            path: self.path.clone(),
            what,
            reason,
        }
    }

    fn sqlite_failure(&self, e: rusqlite::Error) -> StoreError {
        self.damaged.store(true, Ordering::Relaxed);
        if self.has_changed() {
            return self.changed_error();
        }
        sqlite_error(&self.path, e)
    }
}

impl AdvisorySource for AdvisoryStore {
    fn matches(&self, query: &PackageQuery<'_>) -> Result<Vec<AdvisoryMatch<'_>>, QueryError> {
        AdvisoryStore::matches(self, query).map_err(|e| match e {
            StoreError::Query(e) => e,
            // The store also stops claiming any ecosystem once damaged, so
            // nothing is called unaffected.
            other => QueryError::Source {
                message: other.to_string(),
            },
        })
    }

    fn has_ecosystem(&self, ecosystem: &str) -> bool {
        AdvisoryStore::has_ecosystem(self, ecosystem)
    }
}

fn sqlite_error(path: &Path, e: rusqlite::Error) -> StoreError {
    StoreError::Sqlite {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// Checks the 100-byte SQLite header (<https://www.sqlite.org/fileformat.html#the_database_header>)
/// without involving SQLite, so that the common failures get precise errors.
fn check_header(path: &Path) -> Result<(std::fs::File, FileIdentity), StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    // A FIFO, device or directory is refused without waiting on it.
    let (mut file, metadata) = open_regular(path).map_err(|e| match e {
        OpenError::Io(e) => io(e),
        OpenError::NotRegular(kind) => StoreError::NotARegularFile {
            path: path.to_owned(),
            kind,
        },
    })?;
    let identity = FileIdentity::of(&metadata);
    let actual = metadata.len();
    let mut header = [0u8; 100];
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..]).map_err(io)? {
            0 => break,
            n => read += n,
        }
    }
    if read < header.len() || &header[..16] != b"SQLite format 3\0" {
        return Err(StoreError::NotADatabase {
            path: path.to_owned(),
        });
    }
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let application_id = be32(68);
    if application_id != APPLICATION_ID {
        return Err(StoreError::NotAStore {
            path: path.to_owned(),
            application_id,
        });
    }
    let found = be32(60);
    if found != SCHEMA_VERSION {
        return Err(StoreError::SchemaVersion {
            path: path.to_owned(),
            found,
            expected: SCHEMA_VERSION,
        });
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536,
        n => u64::from(n),
    };
    // The page count is only valid when the change counter matches the
    // "version-valid-for" number; files this crate writes always qualify.
    let pages = u64::from(be32(28));
    if pages == 0 || be32(24) != be32(92) {
        return Err(StoreError::Corrupt {
            path: path.to_owned(),
            what: "header".into(),
            reason: "no valid page count".into(),
        });
    }
    let expected = page_size * pages;
    if expected != actual {
        return Err(StoreError::Truncated {
            path: path.to_owned(),
            expected,
            actual,
        });
    }
    Ok((file, identity))
}

/// `file:` URI opening `path` read-only and immutable
/// (<https://www.sqlite.org/uri.html>).
fn immutable_uri(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut uri = String::from("file:");
    for &b in absolute.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?mode=ro&immutable=1");
    uri
}

/// The content checksum: records in sequence order, then index entries in key
/// order, then the ecosystems table's own hash; every field length-prefixed so
/// that no two contents hash the same stream.
#[derive(Default)]
struct ContentHasher {
    hash: Sha256,
}

impl ContentHasher {
    fn bytes(&mut self, bytes: &[u8]) {
        self.hash.update((bytes.len() as u64).to_le_bytes());
        self.hash.update(bytes);
    }

    fn record(&mut self, seq: i64, data: &[u8]) {
        self.hash.update(b"R");
        self.hash.update(seq.to_le_bytes());
        self.bytes(data);
    }

    #[allow(clippy::too_many_arguments)]
    fn entry(
        &mut self,
        key: i64,
        ord: i64,
        affected: u32,
        ecosystem: &str,
        name: &str,
        seq: i64,
        entry: Option<&[u8]>,
    ) {
        self.hash.update(b"E");
        self.hash.update(key.to_le_bytes());
        self.bytes(ecosystem.as_bytes());
        self.bytes(name.as_bytes());
        self.hash.update(ord.to_le_bytes());
        self.hash.update(affected.to_le_bytes());
        self.hash.update(seq.to_le_bytes());
        match entry {
            Some(entry) => self.bytes(entry),
            None => self.hash.update(u64::MAX.to_le_bytes()),
        }
    }

    fn finish(mut self, ecosystems: &[u8]) -> String {
        self.hash.update(b"C");
        self.hash.update(ecosystems);
        hex::encode(self.hash.finalize())
    }
}

/// The `entries` key of a package: the position of its ecosystem among the
/// store's (sorted) ecosystems in the high 20 bits, FNV-1a of its name in the
/// low 43, so that one ecosystem's entries (what one image reads) stay
/// together in the file. An integer key makes the index search cheap; rows
/// whose keys collide are told apart by their `ecosystem` and `name`
/// columns, which every query also matches.
pub(crate) fn package_key(ecosystem_index: u32, name: &str) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    const NAME_BITS: u32 = 43;
    let mut hash = OFFSET;
    for &b in name.as_bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(PRIME);
    }
    // More than 2^20 ecosystems share the top position (still correct).
    let high = u64::from(ecosystem_index.min((1 << 20) - 1)) << NAME_BITS;
    i64::try_from(high | (hash >> (64 - NAME_BITS))).unwrap_or(i64::MAX)
}

fn hash_ecosystem(hash: &mut Sha256, key: &str, count: u64) {
    hash.update((key.len() as u64).to_le_bytes());
    hash.update(key.as_bytes());
    hash.update(count.to_le_bytes());
}

/// The records one query has decoded, shared by their matches: a
/// short list while it is short (most packages), a map once it is not.
#[derive(Default)]
struct Decoded {
    few: [(i64, Option<Arc<Advisory>>); Decoded::FEW],
    len: usize,
    many: HashMap<i64, Arc<Advisory>>,
}

impl Decoded {
    const FEW: usize = 16;

    fn get(&self, seq: i64) -> Option<&Arc<Advisory>> {
        match self.few.get(..self.len) {
            Some(few) if self.len < Self::FEW => few
                .iter()
                .find(|(s, _)| *s == seq)
                .and_then(|(_, a)| a.as_ref()),
            _ => self.many.get(&seq),
        }
    }

    fn insert(&mut self, seq: i64, advisory: Arc<Advisory>) {
        if let Some(slot) = self.few.get_mut(self.len) {
            *slot = (seq, Some(advisory));
            self.len += 1;
            if self.len == Self::FEW {
                self.many.extend(
                    self.few
                        .iter_mut()
                        .filter_map(|(s, a)| Some((*s, a.take()?))),
                );
            }
        } else {
            self.many.insert(seq, advisory);
        }
    }
}

/// The ids a record is known by: its own, its aliases and its upstream ids.
fn vulnerability_ids(advisory: &Advisory) -> impl Iterator<Item = &str> {
    std::iter::once(advisory.id.as_str())
        .chain(advisory.aliases.iter().map(String::as_str))
        .chain(advisory.upstream.iter().map(String::as_str))
}
