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
//! | `meta` | name | format, schema version, counts, content SHA-256 |
//! | `records` | sequence number | one record, postcard-encoded |
//! | `entries` | (normalised ecosystem, package, insertion order, affected index) | what matching reads of one `affected` entry, and its record's `seq` |
//! | `ecosystems` | normalised ecosystem | number of entries |
//!
//! A query reads the `entries` rows of its (ecosystem, package) by primary key,
//! evaluates them, and decodes only the records that match. Records are placed
//! in the order of the first package they name, so one query's records share
//! pages. SQLite was chosen
//! over a hand-made format because it gives the B-tree index, page-level
//! access through `mmap`, and mature tooling (`sqlite3` can inspect a file)
//! for free; with postcard records it opens in well under a millisecond and
//! matches a 1000-package inventory in a few milliseconds against half a million
//! advisories (see `benches/store.rs`).
//!
//! # Integrity, and what open costs
//!
//! Opening must not read the file, so the checks are layered:
//! - on open, from the 100-byte SQLite header: the magic, the application id
//!   (`TRWL`), the schema version (`user_version`), and that the file is exactly
//!   as long as the header says (a truncated download is caught here); then the
//!   `meta` row, and the small `ecosystems` table against its own SHA-256;
//! - on every read, each record and index entry against the adler32 stored in
//!   front of it, and SQLite's own page checks: damage is reported for the record
//!   read, naming the file;
//! - on demand, [`AdvisoryStore::verify`]: `PRAGMA quick_check` and the SHA-256 of
//!   the whole content against the one recorded at build time. It reads every
//!   page (about a second for 500,000 advisories), so `db info`, `db pull` and
//!   `db update` run it, and scans do not.
//!
//! The file is opened with `immutable=1` and `mode=ro`: nothing is ever written,
//! no lock or journal file is created. A new database replaces the old one by
//! rename, so an open store keeps reading the file it opened.

// Ranges are evaluated by the in-memory database's own code, so both agree.
use crate::db::affected;
mod build;
mod record;

pub use build::{FeedPaths, StoreBuilder};

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};

use crate::db::{AdvisoryMatch, AdvisorySource, PackageQuery, QueryError};
use crate::ecosystem::Ecosystem;
use crate::feed::{FeedError, FeedWarning};
use crate::fix::{FixState, VendorStatus};
use crate::osv::{Advisory, Affected};
use affected::{CompiledAffected, PreparedQuery};
use record::{BlobError, decode_advisory, decode_entry};

/// The schema version this crate reads and writes; also SQLite's `user_version`.
pub const SCHEMA_VERSION: u32 = 1;

/// SQLite `application_id` of a store: `TRWL`.
const APPLICATION_ID: u32 = u32::from_be_bytes(*b"TRWL");

/// `meta.format` of a store.
const FORMAT_NAME: &str = "trawl-advisory-db";

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE records (seq INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE entries (
    ecosystem TEXT NOT NULL, name TEXT NOT NULL, ord INTEGER NOT NULL,
    affected INTEGER NOT NULL, seq INTEGER NOT NULL, entry BLOB,
    PRIMARY KEY (ecosystem, name, ord, affected)
) WITHOUT ROWID;
CREATE TABLE ecosystems (key TEXT PRIMARY KEY, entries INTEGER NOT NULL) WITHOUT ROWID;
";

/// A compiled advisory database, opened read-only.
///
/// Queries go through one SQLite connection behind a mutex, so the store can be
/// shared between threads; each query holds it for a few microseconds.
pub struct AdvisoryStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    info: StoreInfo,
    ecosystems: HashSet<String>,
    /// Set once a read finds damage: from then on the store claims no
    /// ecosystem, so that no package is called unaffected on its word.
    damaged: AtomicBool,
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
        check_header(&path)?;
        let sqlite = |e: rusqlite::Error| sqlite_error(&path, e);
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(immutable_uri(&path), flags).map_err(sqlite)?;
        // Pages are read through the mapping: no copies in SQLite's cache.
        conn.execute_batch("PRAGMA mmap_size = 4294967296; PRAGMA query_only = 1;")
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
        let info = StoreInfo {
            schema_version: SCHEMA_VERSION,
            records: number("records")?,
            entries: number("entries")?,
            ecosystems_sha256,
            content_sha256,
            built_by: meta.get("built_by").cloned().unwrap_or_default(),
            ecosystems,
        };
        Ok(Self {
            ecosystems: info.ecosystems.iter().map(|(k, _)| k.clone()).collect(),
            path,
            conn: Mutex::new(conn),
            info,
            damaged: AtomicBool::new(false),
        })
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
                "SELECT ecosystem, name, ord, affected, seq, entry FROM entries \
                 ORDER BY ecosystem, name, ord, affected",
            )
            .map_err(sqlite)?;
        let mut rows = stmt.query([]).map_err(sqlite)?;
        while let Some(row) = rows.next().map_err(sqlite)? {
            let ecosystem: String = row.get(0).map_err(sqlite)?;
            let name: String = row.get(1).map_err(sqlite)?;
            let ord: i64 = row.get(2).map_err(sqlite)?;
            let affected: u32 = row.get(3).map_err(sqlite)?;
            let seq: i64 = row.get(4).map_err(sqlite)?;
            let entry: Option<Vec<u8>> = row.get(5).map_err(sqlite)?;
            if let Some(entry) = &entry {
                record::unframe(entry).map_err(|e| {
                    self.corrupt(
                        format!("entries row ({ecosystem}, {name}, {seq})"),
                        e.to_string(),
                    )
                })?;
            }
            hasher.entry(&ecosystem, &name, ord, affected, seq, entry.as_deref());
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
    /// with records owned.
    pub fn matches(
        &self,
        query: &PackageQuery<'_>,
    ) -> Result<Vec<AdvisoryMatch<'static>>, StoreError> {
        let all = self.assess(query)?;
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
        let prepared = PreparedQuery::new(query)?;
        let installed = &prepared.installed;
        let keys = prepared.keys();

        let conn = self.lock();
        // (seq, affected index, fix state, the record's bytes) of each match, in
        // index order; records are decoded after, once each.
        let mut hits: Vec<(i64, u32, FixState)> = Vec::new();
        let mut blobs: HashMap<i64, Vec<u8>> = HashMap::new();
        for key in keys.iter().filter(|k| self.ecosystems.contains(**k)) {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT e.seq, e.affected, e.entry, r.data FROM entries e \
                     JOIN records r ON r.seq = e.seq \
                     WHERE e.ecosystem = ?1 AND e.name = ?2 ORDER BY e.ord, e.affected",
                )
                .map_err(|e| self.sqlite_failure(e))?;
            let mut rows = stmt
                .query([key, query.name])
                .map_err(|e| self.sqlite_failure(e))?;
            while let Some(row) = rows.next().map_err(|e| self.sqlite_failure(e))? {
                let seq: i64 = row.get(0).map_err(|e| self.sqlite_failure(e))?;
                let affected_index: u32 = row.get(1).map_err(|e| self.sqlite_failure(e))?;
                let what = || format!("entries row ({key}, {}, {seq})", query.name);
                // Entries of ecosystems without a version scheme never match.
                let Some(blob) = row
                    .get_ref(2)
                    .map_err(|e| self.sqlite_failure(e))?
                    .as_blob_or_null()
                    .map_err(|e| self.corrupt(what(), e.to_string()))?
                else {
                    continue;
                };
                let entry = decode_entry(blob).map_err(|e| self.corrupt_blob(what(), e))?;
                let fix_state = if entry.status == Some(VendorStatus::NotAffected) {
                    FixState::NotAffected
                } else {
                    let compiled = CompiledAffected::compile(
                        prepared.installed.version.scheme(),
                        &entry.to_affected(query.name),
                        &mut Vec::new(),
                    );
                    let Some(verdict) = compiled.evaluate(installed) else {
                        continue;
                    };
                    match verdict.fixed {
                        Some(version) => FixState::Fixed(version),
                        None if entry.status == Some(VendorStatus::WillNotFix) => {
                            FixState::WillNotFix
                        }
                        None => FixState::Unfixed,
                    }
                };
                if let std::collections::hash_map::Entry::Vacant(slot) = blobs.entry(seq) {
                    let data = row
                        .get_ref(3)
                        .map_err(|e| self.sqlite_failure(e))?
                        .as_blob()
                        .map_err(|e| self.corrupt(format!("record {seq}"), e.to_string()))?;
                    slot.insert(data.to_vec());
                }
                hits.push((seq, affected_index, fix_state));
            }
        }
        drop(conn);

        let mut uses: HashMap<i64, usize> = HashMap::new();
        for (seq, _, _) in &hits {
            *uses.entry(*seq).or_default() += 1;
        }
        let mut records: HashMap<i64, Advisory> = HashMap::new();
        let mut found = Vec::with_capacity(hits.len());
        for (seq, affected_index, fix_state) in hits {
            let what = || format!("record {seq}");
            if let std::collections::hash_map::Entry::Vacant(slot) = records.entry(seq) {
                let blob = blobs.get(&seq).map_or(&[][..], Vec::as_slice);
                slot.insert(decode_advisory(blob).map_err(|e| self.corrupt_blob(what(), e))?);
            }
            let remaining = uses.get_mut(&seq).map_or(0, |n| {
                *n -= 1;
                *n
            });
            // The last match of a record takes it; earlier ones copy it.
            let advisory = if remaining == 0 {
                records.remove(&seq)
            } else {
                records.get(&seq).cloned()
            };
            let Some(advisory) = advisory else {
                continue;
            };
            let affected = advisory
                .affected
                .get(affected_index as usize)
                .cloned()
                .ok_or_else(|| {
                    self.corrupt(what(), format!("it has no affected entry {affected_index}"))
                })?;
            found.push(AdvisoryMatch {
                advisory: Cow::Owned(advisory),
                fixed_version: fix_state.fixed_version().map(str::to_owned),
                fix_state,
                vendor_severity: vendor_severity(&affected).map(str::to_owned),
                affected: Cow::Owned(affected),
            });
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
            .any(|key| self.ecosystems.contains(*key))
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
        StoreError::Corrupt {
            path: self.path.clone(),
            what,
            reason,
        }
    }

    fn sqlite_failure(&self, e: rusqlite::Error) -> StoreError {
        self.damaged.store(true, Ordering::Relaxed);
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
fn check_header(path: &Path) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let actual = file.metadata().map_err(io)?.len();
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
    Ok(())
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

    fn entry(
        &mut self,
        ecosystem: &str,
        name: &str,
        ord: i64,
        affected: u32,
        seq: i64,
        entry: Option<&[u8]>,
    ) {
        self.hash.update(b"E");
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

fn hash_ecosystem(hash: &mut Sha256, key: &str, count: u64) {
    hash.update((key.len() as u64).to_le_bytes());
    hash.update(key.as_bytes());
    hash.update(count.to_le_bytes());
}

/// The ids a record is known by: its own, its aliases and its upstream ids.
fn vulnerability_ids(advisory: &Advisory) -> impl Iterator<Item = &str> {
    std::iter::once(advisory.id.as_str())
        .chain(advisory.aliases.iter().map(String::as_str))
        .chain(advisory.upstream.iter().map(String::as_str))
}

/// The vendor's severity word, as `AdvisoryDb` reads it.
fn vendor_severity(affected: &Affected) -> Option<&str> {
    affected
        .vendor
        .as_ref()
        .and_then(|v| v.severity.as_deref())
        .or_else(|| {
            affected
                .ecosystem_specific
                .as_ref()
                .and_then(|v| v.get("urgency"))
                .and_then(|v| v.as_str())
        })
}
