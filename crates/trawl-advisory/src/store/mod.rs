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
//! | `packages` | package key | every `affected` entry of one (ecosystem, package), in a compact encoding with one CRC-32: for each entry its record's `seq`, its position in the record, and its ranges compiled for matching |
//! | `ecosystems` | normalised ecosystem | number of entries |
//!
//! The package key is an integer: the ecosystem's position among the
//! store's ecosystems in the high bits, a hash of the package name in the
//! low ones (see `package_key`). It is the `packages` table's rowid, so a
//! lookup is one descent of a B-tree whose inner pages hold nothing but
//! integers, and one ecosystem's packages (all an image asks about) stay
//! together in the file. Names whose keys collide share one row, each
//! package with its name, and a query reads its own only. An entry holds
//! what matching reads, pre-digested: the range events already sorted into
//! intervals, each bound as its version text, the vendor status; it is
//! evaluated in place without building anything (see
//! `CompiledAffected::evaluate_encoded`).
//!
//! A query reads the package's row (one per index key: `Debian:12`, then
//! `Debian`), evaluates every entry against the installed version, then
//! reads the records of the matching ones only, in `seq` order, a run of
//! close sequence numbers at a time (one range scan rather than a descent
//! each). Records are placed in the order of the first package they name,
//! so one query's records are neighbours. The statements are prepared once
//! and cached; one read transaction stays open, since the file never
//! changes.
//!
//! SQLite was chosen over a hand-made format because it gives the B-tree
//! index, page-level access with its own page cache, and mature tooling
//! (`sqlite3` can inspect a file) for free. Against a million advisories it opens
//! in well under a millisecond; matching a mixed 1000-package inventory
//! (2,746 matches) takes 4.5–5.5 ms (fastest of 100 runs, load about 5 on 2
//! shared cores; 7.1–8.3 ms at the same time before answers stopped
//! decoding their records, 10.2–11.4 ms for schema 3; see
//! `benches/store.rs` and the README's performance section).
//!
//! An answer does not own a decoded copy of its record. A query checks each
//! matching record whole, in place (checksum, then every tag, count, string
//! bound and JSON value, exactly as far as the decoder reads; see
//! `StoredRecord::check`), keeps its bytes (the encoding's structure and
//! text, one copy) in an `Arc` its matches share, and reads the matched
//! entries' vendor severities on the way. The match's [`AdvisoryRef`]
//! reads the id, aliases and upstream ids from those bytes, without
//! decoding (the answer is sorted and suppressed by them); the first
//! dereference to the [`Advisory`](crate::Advisory) (summary, severity,
//! [`AdvisoryMatch::affected`], serialization) decodes the whole record
//! once for every match sharing it. Because the bytes were checked whole,
//! that later decoding cannot fail, and damage is still a
//! [`StoreError::Corrupt`] of the query that read it (the tests hold the
//! check and the decoder to agreeing on every cut and many changed bytes of
//! a record).
//!
//! History (2026-12-04, issue 13): every match first decoded its record and
//! then deep-copied the matched `affected` entry with all its listed
//! versions, and a record matching twice was deep-copied again: 41.8 ms for
//! the bench's 1000 packages. Records decoded once into a shared `Arc`:
//! 16.5 ms (both at load average 4–5). Schema version 3 had one `entries`
//! row per entry, joined to `records` in SQL and filtered by an SQL
//! function evaluating each entry; version 4's package rows cut the B-tree
//! descents, the per-row SQL work and the calls into Rust, and its entries
//! keep their listed versions sorted, so that evaluation binary-searches
//! them instead of parsing each. Range bounds in the language schemes that
//! are plain `major.minor.patch` releases, as most are, are compared as
//! numbers rather than parsed (and allocated) per comparison. Decoding each
//! matched record whole and freeing it again were then 46% of the bench's
//! instructions (callgrind: 280.3M for 4 passes); checking them in place
//! instead brought that to 169.0M. What is left (callgrind): SQLite about
//! 24% (B-tree seeks 10%), entry evaluation about 25% (version comparison
//! 11%), the record check 16% (a third of it UTF-8 validation and the copy),
//! the allocator about 12%, preparing the query 4%. Bounds pre-parsed at
//! build time per scheme (a schema change) would cut entry evaluation.
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

use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};

use crate::db::{AdvisoryMatch, AdvisoryRef, AdvisorySource, PackageQuery, QueryError};
use crate::ecosystem::Ecosystem;
use crate::feed::{FeedError, FeedWarning, OpenError, open_regular};
use crate::fix::FixState;
use affected::{Installed, PreparedQuery};
use record::{BlobError, PackageReader, StoredRecord, evaluate_entry, unframe};

/// For the `record` fuzz target, not part of the API: checks `payload` (a
/// record's encoding, its checksum frame removed) as a query checks a
/// matched record, decodes it, and panics if the two disagree: the check
/// accepting what the decoder refuses (or the reverse), or reading other
/// ids, entry counts or vendor severities than the decoded record has.
#[doc(hidden)]
pub fn fuzz_record(payload: &[u8]) {
    record::fuzz(payload);
}

/// The schema version this crate reads and writes; also SQLite's `user_version`.
/// Version 3 files language packages under their ecosystem's canonical name
/// ([`crate::canonical`]); version 4 keeps a package's entries in one
/// `packages` row instead of an `entries` row each. An older store is
/// refused with [`StoreError::SchemaVersion`] (rebuild it with `trawl db
/// build`/`update`).
pub const SCHEMA_VERSION: u32 = 4;

/// SQLite `application_id` of a store: `TRWL`.
const APPLICATION_ID: u32 = u32::from_be_bytes(*b"TRWL");

/// `meta.format` of a store.
const FORMAT_NAME: &str = "trawl-advisory-db";

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE records (seq INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE packages (key INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE ecosystems (key TEXT PRIMARY KEY, entries INTEGER NOT NULL) WITHOUT ROWID;
";

/// The `packages` row of a package key: every entry of the package (and of
/// any other whose name's key collides with it).
const PACKAGE_QUERY: &str = "SELECT data FROM packages WHERE key = ?1";

/// The records from `?1` to `?2` (at most 62 apart) whose offset from `?1`
/// is a bit set in `?3`, in order: the records a query matched are read a run of close
/// sequence numbers at a time, stepping over the ones between without
/// reading (SQLite copies every blob it returns).
const RECORDS_QUERY: &str = "SELECT seq, data FROM records \
     WHERE seq BETWEEN ?1 AND ?2 AND (?3 >> (seq - ?1)) & 1";

/// Matched records at most this far apart are read by one range scan
/// (stepping over the ones between, on the same or the next page) rather
/// than by a B-tree descent each.
const RUN_GAP: i64 = 16;

/// The widest run: offsets from its first record are bits of an `i64`.
const RUN_SPAN: i64 = 62;

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
    conn: Mutex<Conn>,
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
}

/// The connection, and what queries reuse from one to the next.
struct Conn {
    conn: Connection,
    /// The current query's matching entries, in answer order.
    hits: Vec<Hit>,
    /// The records they name, by sequence number (sorted, once each), and
    /// each one once read and checked.
    records: Vec<(i64, Option<Arc<StoredRecord>>)>,
}

/// A matching entry: its record, its position in the record's `affected`,
/// the verdict.
struct Hit {
    seq: i64,
    affected: u32,
    fix_state: FixState,
    /// The entry's vendor severity, read with its record.
    vendor_severity: Option<String>,
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
        /// What is damaged, e.g. `record 1234` or `packages row (Debian:12, openssl)`.
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
            conn: Mutex::new(Conn {
                conn,
                hits: Vec::new(),
                records: Vec::new(),
            }),
            info,
            damaged: AtomicBool::new(false),
            file,
            identity,
            changed: AtomicBool::new(false),
            opened: Instant::now(),
            checked: AtomicU64::new(0),
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
        let guard = self.lock();
        let conn = &guard.conn;
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
            .prepare("SELECT key, data FROM packages ORDER BY key")
            .map_err(sqlite)?;
        let mut rows = stmt.query([]).map_err(sqlite)?;
        while let Some(row) = rows.next().map_err(sqlite)? {
            let key: i64 = row.get(0).map_err(sqlite)?;
            let data = row
                .get_ref(1)
                .map_err(sqlite)?
                .as_blob()
                .map_err(|e| self.corrupt(format!("packages row {key}"), e.to_string()))?;
            self.verify_package(key, data)?;
            hasher.package(key, data);
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
            .flat_map(|m| m.advisory.ids().map(str::to_owned))
            .collect();
        Ok(all
            .into_iter()
            .filter(|m| {
                m.fix_state.is_affected() && !m.advisory.ids().any(|id| not_affected.contains(id))
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

        let mut guard = self.lock();
        let Conn {
            conn,
            hits,
            records,
        } = &mut *guard;
        hits.clear();
        records.clear();
        // The package's entries, evaluated in place against the installed
        // version: one row per index key.
        {
            let mut stmt = conn.prepare_cached(PACKAGE_QUERY).map_err(failed)?;
            for (key, ecosystem_index) in keys {
                let mut rows = stmt
                    .query([package_key(ecosystem_index, name)])
                    .map_err(failed)?;
                let Some(row) = rows.next().map_err(failed)? else {
                    continue;
                };
                let what = || format!("packages row ({key}, {name})");
                let blob = row
                    .get_ref(0)
                    .map_err(failed)?
                    .as_blob()
                    .map_err(|e| self.corrupt(what(), e.to_string()))?;
                evaluate_package(blob, key, name, &installed, hits)
                    .map_err(|e| self.corrupt_blob(what(), e))?;
            }
        }
        if hits.is_empty() {
            return Ok(Vec::new());
        }
        // Their records, each decoded once, read in sequence order a run
        // of close ones at a time (a package's records sit together).
        records.extend(hits.iter().map(|hit| (hit.seq, None)));
        records.sort_unstable_by_key(|(seq, _)| *seq);
        records.dedup_by_key(|(seq, _)| *seq);
        {
            let mut stmt = conn.prepare_cached(RECORDS_QUERY).map_err(failed)?;
            let mut rest = records.as_mut_slice();
            while let Some(&(first, _)) = rest.first() {
                let end = rest
                    .windows(2)
                    .position(|w| w[1].0 - w[0].0 > RUN_GAP || w[1].0 - first > RUN_SPAN)
                    .map_or(rest.len(), |at| at + 1);
                let (run, after) = rest.split_at_mut(end);
                rest = after;
                let last = run.last().map_or(first, |(seq, _)| *seq);
                let mask = run
                    .iter()
                    .fold(0i64, |mask, (seq, _)| mask | 1 << (seq - first));
                let mut rows = stmt.query([first, last, mask]).map_err(failed)?;
                let mut wanted = run.iter_mut().peekable();
                while let Some(row) = rows.next().map_err(failed)? {
                    let seq: i64 = row.get(0).map_err(failed)?;
                    // Skip what is not wanted; a wanted record missing
                    // from the file stays undecoded (reported below).
                    while wanted.next_if(|(want, _)| *want < seq).is_some() {}
                    let Some((_, slot)) = wanted.next_if(|(want, _)| *want == seq) else {
                        continue;
                    };
                    let what = || format!("record {seq}");
                    let blob = row
                        .get_ref(1)
                        .map_err(failed)?
                        .as_blob()
                        .map_err(|e| self.corrupt(what(), e.to_string()))?;
                    // Checked whole, kept as bytes: decoded when a caller
                    // reads more than its ids. The entries' vendor
                    // severities are read on the way.
                    let record = unframe(blob)
                        .and_then(|payload| {
                            StoredRecord::check(payload, |at, severity| {
                                for hit in hits.iter_mut() {
                                    if hit.seq == seq && hit.affected as usize == at {
                                        hit.vendor_severity = severity.map(str::to_owned);
                                    }
                                }
                            })
                        })
                        .map_err(|e| self.corrupt_blob(what(), e))?;
                    *slot = Some(Arc::new(record));
                }
            }
        }
        // The matches, in index order.
        let mut found = Vec::with_capacity(hits.len());
        for Hit {
            seq,
            affected,
            fix_state,
            vendor_severity,
        } in hits.drain(..)
        {
            let what = || format!("record {seq}");
            let record = records
                .binary_search_by_key(&seq, |(s, _)| *s)
                .ok()
                .and_then(|at| records.get(at)?.1.clone())
                .ok_or_else(|| {
                    self.corrupt(what(), "an entry names it, the file lacks it".into())
                })?;
            if affected as usize >= record.entries() {
                return Err(self.corrupt(what(), format!("it has no affected entry {affected}")));
            }
            found.push(AdvisoryMatch::checked(
                AdvisoryRef::stored(record),
                affected as usize,
                fix_state,
                vendor_severity,
            ));
        }
        records.clear();
        drop(guard);
        found.sort_by(|a, b| a.advisory.id().cmp(b.advisory.id()));
        Ok(found)
    }

    /// Checks one `packages` row for [`verify`](Self::verify): its
    /// checksum and structure, and that each package it holds has its key.
    fn verify_package(&self, key: i64, data: &[u8]) -> Result<(), StoreError> {
        let what = || format!("packages row {key}");
        let mut reader = PackageReader::new(data).map_err(|e| self.corrupt_blob(what(), e))?;
        while let Some((ecosystem, name, count)) = reader
            .next_package()
            .map_err(|e| self.corrupt_blob(what(), e))?
        {
            if self
                .ecosystems
                .get(ecosystem)
                .map(|&i| package_key(i, name))
                != Some(key)
            {
                return Err(self.corrupt(
                    format!("packages row ({ecosystem}, {name})"),
                    "its key does not match its package".into(),
                ));
            }
            for _ in 0..count {
                let entry = reader.entry().map_err(|e| self.corrupt_blob(what(), e))?;
                if let Some(payload) = entry.entry {
                    wire::Reader::new(payload).map_err(|e| self.corrupt_blob(what(), e))?;
                }
            }
        }
        reader.finish().map_err(|e| self.corrupt_blob(what(), e))
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Conn> {
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

    fn package(&mut self, key: i64, data: &[u8]) {
        self.hash.update(b"P");
        self.hash.update(key.to_le_bytes());
        self.bytes(data);
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

/// Evaluates the entries of (`ecosystem`, `name`) in a `packages` row
/// against the installed version, queueing the matching ones; the row's
/// other packages (whose keys collide with it) are read past.
fn evaluate_package(
    blob: &[u8],
    ecosystem: &str,
    name: &str,
    installed: &Installed<'_>,
    hits: &mut Vec<Hit>,
) -> Result<(), BlobError> {
    let mut row = PackageReader::new(blob)?;
    while let Some((stored_ecosystem, stored_name, count)) = row.next_package()? {
        let wanted = stored_ecosystem == ecosystem && stored_name == name;
        for _ in 0..count {
            let entry = row.entry()?;
            let (true, Some(payload)) = (wanted, entry.entry) else {
                continue;
            };
            if let Some(fix_state) = evaluate_entry(payload, installed)? {
                hits.push(Hit {
                    seq: entry.seq,
                    affected: entry.affected,
                    fix_state,
                    vendor_severity: None,
                });
            }
        }
    }
    row.finish()
}

#[cfg(test)]
mod tests {
    use super::record::{StoredEntry, encode_entry, encode_package};
    use super::*;
    use crate::db::affected::CompiledAffected;
    use crate::version::VersionScheme;

    /// A row holding two packages whose keys collide: each query takes its
    /// own package's entries only, in stored order.
    #[test]
    fn a_row_of_colliding_packages_answers_each_for_itself() {
        let compiled = |fixed: &str| {
            let affected: crate::osv::Affected = serde_json::from_str(&format!(
                r#"{{"package": {{"ecosystem": "Alpine:v3.4", "name": "x"}},
                    "ranges": [{{"type": "ECOSYSTEM", "events": [{{"introduced": "0"}}, {{"fixed": "{fixed}"}}]}}]}}"#
            ))
            .unwrap();
            encode_entry(
                None,
                &CompiledAffected::compile(VersionScheme::Apk, &affected, &mut Vec::new()),
            )
        };
        let (low, high) = (compiled("1.1-r0"), compiled("2.0-r0"));
        fn entry(seq: i64, entry: &[u8]) -> StoredEntry<'_> {
            StoredEntry {
                affected: 0,
                seq,
                entry: Some(entry),
            }
        }
        let row = encode_package(&[
            (
                "Alpine:v3.4",
                "musl",
                vec![entry(3, &high), entry(1, &low), entry(2, &high)],
            ),
            ("Alpine:v3.4", "openssl", vec![entry(4, &high)]),
            ("Alpine:v3.5", "musl", vec![entry(5, &high)]),
        ]);
        let hits_for = |ecosystem: &str, name: &str, version: &str| {
            let query = PackageQuery {
                ecosystem,
                name,
                version,
            };
            let prepared = PreparedQuery::new(&query).unwrap();
            let mut hits = Vec::new();
            evaluate_package(&row, ecosystem, name, &prepared.installed, &mut hits).unwrap();
            hits.into_iter()
                .map(|hit| (hit.seq, hit.fix_state))
                .collect::<Vec<_>>()
        };
        let fixed = |v: &str| FixState::Fixed(v.into());
        assert_eq!(
            hits_for("Alpine:v3.4", "musl", "1.0-r0"),
            [
                (3, fixed("2.0-r0")),
                (1, fixed("1.1-r0")),
                (2, fixed("2.0-r0"))
            ]
        );
        assert_eq!(
            hits_for("Alpine:v3.4", "musl", "1.5-r0"),
            [(3, fixed("2.0-r0")), (2, fixed("2.0-r0"))]
        );
        assert_eq!(
            hits_for("Alpine:v3.4", "openssl", "1.5-r0"),
            [(4, fixed("2.0-r0"))]
        );
        assert_eq!(
            hits_for("Alpine:v3.5", "musl", "1.5-r0"),
            [(5, fixed("2.0-r0"))]
        );
        assert!(hits_for("Alpine:v3.4", "zlib", "1.0-r0").is_empty());
        assert!(hits_for("Alpine:v3.4", "musl", "2.0-r0").is_empty());
    }
}
