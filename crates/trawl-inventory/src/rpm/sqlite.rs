//! rpm's SQLite backend (`rpmdb.sqlite`: Fedora 33+, RHEL 9, CBL-Mariner /
//! Azure Linux, Amazon Linux 2023).
//!
//! The header blobs are the `blob` column of the `Packages` table
//! (`hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL`, see
//! `lib/backend/sqlite.c` in <https://github.com/rpm-software-management/rpm>);
//! the other tables are indexes rpm can rebuild.
//!
//! Cargo feature `rpm-sqlite` (default); without it [`read_sqlite`] answers
//! [`SqliteError::NotSupported`] for any SQLite file, so an image with an
//! `rpmdb.sqlite` is reported with an unreadable database and its scan is
//! `partial`. Feature `bundled-sqlite` (default) compiles SQLite in; without
//! it the system's libsqlite3 is linked.
//!
//! The file is read with SQLite itself (rusqlite) from the bytes in
//! memory through `sqlite3_deserialize`, read-only: nothing is written to
//! disk and the scanned image is never modified. rpm keeps its database in
//! WAL mode; an in-memory database cannot use a WAL, so the copy handed to
//! SQLite is marked as a rollback-journal database (file format bytes 18 and
//! 19, <https://www.sqlite.org/fileformat.html#file_format_version_numbers>),
//! which reads the same pages.
//!
//! # An untrusted database
//!
//! The file comes from the image, so its schema is the attacker's: a
//! `Packages` that is a recursive view runs forever and fills the disk with
//! the sorter's temporary files. Following SQLite's advice for untrusted
//! databases (<https://www.sqlite.org/security.html>), the connection is
//! defensive (`SQLITE_DBCONFIG_DEFENSIVE`, `trusted_schema` off, views and
//! triggers disabled, nothing attached), `Packages` must be a plain table
//! whose `hnum` and `blob` are stored columns, `sqlite3_limit` caps value and
//! statement sizes, temporary storage stays in memory and is never used (the
//! rows are read in storage order and sorted here), the page cache is small, a
//! progress handler stops the reading after [`MAX_VM_STEPS`] virtual-machine
//! steps or [`MAX_QUERY_TIME`], and at most [`MAX_ROWS`] rows and as many
//! blob bytes as the file holds are read. `sqlite3_hard_heap_limit64` is not
//! used: it is process-wide and would cap every other SQLite user of the
//! process.

#[cfg(feature = "rpm-sqlite")]
use std::io::Read;
#[cfg(feature = "rpm-sqlite")]
use std::sync::Arc;
#[cfg(feature = "rpm-sqlite")]
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
#[cfg(feature = "rpm-sqlite")]
use std::time::Instant;

#[cfg(feature = "rpm-sqlite")]
use rusqlite::config::DbConfig;
#[cfg(feature = "rpm-sqlite")]
use rusqlite::limits::Limit;
#[cfg(feature = "rpm-sqlite")]
use rusqlite::types::ValueRef;
#[cfg(feature = "rpm-sqlite")]
use rusqlite::{Connection, OpenFlags};

/// The SQLite file header's magic.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";
#[cfg(feature = "rpm-sqlite")]
const WAL_FORMAT: u8 = 2;
#[cfg(feature = "rpm-sqlite")]
const LEGACY_FORMAT: u8 = 1;

/// At most this many rows of `Packages` are read. The largest real
/// installations hold a few thousand packages.
pub const MAX_ROWS: usize = 100_000;
/// Reading one database stops after this many SQLite virtual-machine steps,
/// all its queries together (a real database takes about ten per row).
pub const MAX_VM_STEPS: u64 = 20_000_000;
/// Reading one database stops after this long, however few steps it took.
pub const MAX_QUERY_TIME: Duration = Duration::from_secs(10);
/// How often (in VM steps) the progress handler looks at the budget.
#[cfg(feature = "rpm-sqlite")]
const STEPS_PER_CHECK: u32 = 1000;
/// The page cache, in KiB (a negative `cache_size`).
#[cfg(feature = "rpm-sqlite")]
const CACHE_KIB: i64 = 4096;

/// Why an SQLite rpm database could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteError {
    /// Not an SQLite file at all.
    #[error("not an SQLite database")]
    NotSqlite,
    /// An SQLite database without rpm's `Packages` table.
    #[error("SQLite database is not an rpm database: no Packages table with a blob column")]
    NotRpmDb,
    /// A `Packages` that is not a plain table of stored columns (a view, a
    /// virtual table, a generated column): refused unread.
    #[error("SQLite database refused: {0}")]
    Refused(String),
    /// Reading stopped at one of the caps on an untrusted database
    /// ([`MAX_ROWS`], [`MAX_VM_STEPS`], [`MAX_QUERY_TIME`], blob bytes).
    #[error("SQLite database read stopped: {0}")]
    OverLimit(String),
    /// SQLite could not read it (corrupt, truncated).
    #[error("SQLite: {0}")]
    Sqlite(String),
    /// An SQLite file, but this build reads none (cargo feature `rpm-sqlite`
    /// off).
    #[error(
        "SQLite rpm databases are not supported in this build (trawl-inventory feature `rpm-sqlite`)"
    )]
    NotSupported,
}

#[cfg(feature = "rpm-sqlite")]
impl From<rusqlite::Error> for SqliteError {
    fn from(e: rusqlite::Error) -> Self {
        SqliteError::Sqlite(e.to_string())
    }
}

/// Why the progress handler stopped a query.
#[cfg(feature = "rpm-sqlite")]
const STOPPED_STEPS: u8 = 1;
#[cfg(feature = "rpm-sqlite")]
const STOPPED_TIME: u8 = 2;

/// A connection set up for a database nobody vouches for, with the progress
/// handler's verdict.
#[cfg(feature = "rpm-sqlite")]
struct Guarded {
    conn: Connection,
    stopped: Arc<AtomicU8>,
}

#[cfg(feature = "rpm-sqlite")]
impl Guarded {
    fn open(max_value: usize) -> Result<Guarded, SqliteError> {
        let conn = Connection::open_with_flags(
            ":memory:",
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // `ENABLE_ATTACH_CREATE` needs SQLite 3.49, which a system
        // libsqlite3 (Debian 12: 3.40) may predate; the ATTACH limit of 0
        // below refuses every ATTACH anyway.
        #[cfg(feature = "bundled-sqlite")]
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_ATTACH_CREATE, false)?;
        for (config, on) in [
            (DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true),
            (DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false),
            (DbConfig::SQLITE_DBCONFIG_ENABLE_VIEW, false),
            (DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false),
            (DbConfig::SQLITE_DBCONFIG_ENABLE_FKEY, false),
            (DbConfig::SQLITE_DBCONFIG_WRITABLE_SCHEMA, false),
        ] {
            conn.set_db_config(config, on)?;
        }
        let max_value = i32::try_from(max_value).unwrap_or(i32::MAX).max(1024);
        for (limit, value) in [
            // No value (a blob) can be longer than the file that stores it.
            (Limit::SQLITE_LIMIT_LENGTH, max_value),
            // Bounds the schema statements SQLite parses from the file.
            (Limit::SQLITE_LIMIT_SQL_LENGTH, 100_000),
            (Limit::SQLITE_LIMIT_COLUMN, 200),
            (Limit::SQLITE_LIMIT_EXPR_DEPTH, 100),
            (Limit::SQLITE_LIMIT_COMPOUND_SELECT, 4),
            (Limit::SQLITE_LIMIT_VDBE_OP, 25_000),
            (Limit::SQLITE_LIMIT_FUNCTION_ARG, 8),
            (Limit::SQLITE_LIMIT_ATTACHED, 0),
            (Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 100),
            (Limit::SQLITE_LIMIT_VARIABLE_NUMBER, 10),
            (Limit::SQLITE_LIMIT_TRIGGER_DEPTH, 1),
            (Limit::SQLITE_LIMIT_WORKER_THREADS, 0),
        ] {
            conn.set_limit(limit, value)?;
        }
        conn.execute_batch(&format!(
            "PRAGMA temp_store = MEMORY; PRAGMA cache_size = -{CACHE_KIB}; PRAGMA query_only = 1;"
        ))?;
        let stopped = Arc::new(AtomicU8::new(0));
        let flag = stopped.clone();
        let started = Instant::now();
        let mut checks: u64 = 0;
        conn.progress_handler(
            STEPS_PER_CHECK as i32,
            Some(move || {
                checks += 1;
                let why = if checks * u64::from(STEPS_PER_CHECK) > MAX_VM_STEPS {
                    STOPPED_STEPS
                } else if started.elapsed() > MAX_QUERY_TIME {
                    STOPPED_TIME
                } else {
                    return false;
                };
                flag.store(why, Ordering::Relaxed);
                true
            }),
        )?;
        Ok(Guarded { conn, stopped })
    }

    /// The error for a failed SQLite call: the cap that stopped it, if any.
    fn error(&self, e: rusqlite::Error) -> SqliteError {
        match self.stopped.load(Ordering::Relaxed) {
            STOPPED_STEPS => {
                SqliteError::OverLimit(format!("more than {MAX_VM_STEPS} SQLite steps"))
            }
            STOPPED_TIME => {
                SqliteError::OverLimit(format!("more than {} s", MAX_QUERY_TIME.as_secs()))
            }
            _ => e.into(),
        }
    }
}

/// Every header blob of an `rpmdb.sqlite` file, in `hnum` order. A row whose
/// blob cannot be read gives an error in its place.
pub fn read_sqlite(data: &[u8]) -> Result<Vec<Result<Vec<u8>, SqliteError>>, SqliteError> {
    if data.len() < 100 || !data.starts_with(SQLITE_MAGIC) {
        return Err(SqliteError::NotSqlite);
    }
    #[cfg(feature = "rpm-sqlite")]
    {
        read_rpm_sqlite(data)
    }
    #[cfg(not(feature = "rpm-sqlite"))]
    {
        Err(SqliteError::NotSupported)
    }
}

#[cfg(feature = "rpm-sqlite")]
fn read_rpm_sqlite(data: &[u8]) -> Result<Vec<Result<Vec<u8>, SqliteError>>, SqliteError> {
    let mut header = [0u8; 100];
    header.copy_from_slice(&data[..100]);
    for byte in &mut header[18..20] {
        if *byte == WAL_FORMAT {
            *byte = LEGACY_FORMAT;
        }
    }
    let mut db = Guarded::open(data.len())?;
    db.conn
        .deserialize_read_exact("main", (&header[..]).chain(&data[100..]), data.len(), true)?;
    check_schema(&db)?;
    read_rows(&db, data.len())
}

/// `Packages` must be an ordinary table whose `hnum` and `blob` are stored
/// columns: anything else would have SQLite compute the rows, which a hostile
/// file can make endless.
#[cfg(feature = "rpm-sqlite")]
fn check_schema(db: &Guarded) -> Result<(), SqliteError> {
    let entries: Vec<(String, String)> = (|| {
        let mut stmt = db.conn.prepare(
            "SELECT type, coalesce(sql, '') FROM main.sqlite_schema \
             WHERE lower(name) = 'packages' LIMIT 4",
        )?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        rows.collect::<Result<_, _>>()
    })()
    .map_err(|e| db.error(e))?;
    match entries.as_slice() {
        [] => return Err(SqliteError::NotRpmDb),
        [(kind, sql)] if kind == "table" => {
            let head: String = sql
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
                .to_ascii_uppercase();
            if head.starts_with("CREATE VIRTUAL") {
                return Err(SqliteError::Refused("Packages is a virtual table".into()));
            }
        }
        [(kind, _)] => {
            return Err(SqliteError::Refused(format!(
                "Packages is a {kind}, not a table"
            )));
        }
        _ => {
            return Err(SqliteError::Refused(
                "several schema entries are named Packages".into(),
            ));
        }
    }
    // `hidden` is 0 for an ordinary column, 2 or 3 for a generated one.
    let columns: Vec<(String, i64)> = (|| {
        let mut stmt = db
            .conn
            .prepare("SELECT lower(name), hidden FROM pragma_table_xinfo('Packages', 'main')")?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        rows.collect::<Result<_, _>>()
    })()
    .map_err(|e| db.error(e))?;
    let column = |name: &str| columns.iter().find(|(n, _)| n == name).map(|(_, h)| *h);
    match (column("hnum"), column("blob")) {
        (Some(0), Some(0)) => Ok(()),
        (Some(_), Some(_)) => Err(SqliteError::Refused(
            "Packages has generated hnum or blob columns".into(),
        )),
        _ => Err(SqliteError::NotRpmDb),
    }
}

/// The rows in storage order (for rpm's table, `hnum` order), sorted by
/// `hnum` here rather than by SQLite, whose sorter would spill to disk.
#[cfg(feature = "rpm-sqlite")]
fn read_rows(
    db: &Guarded,
    max_bytes: usize,
) -> Result<Vec<Result<Vec<u8>, SqliteError>>, SqliteError> {
    let mut rows: Vec<(i64, Result<Vec<u8>, SqliteError>)> = Vec::new();
    let mut bytes = 0usize;
    let result = (|| -> Result<(), SqliteError> {
        let mut stmt = db
            .conn
            .prepare("SELECT hnum, blob FROM main.Packages")
            .map_err(|e| db.error(e))?;
        let mut query = stmt.query([]).map_err(|e| db.error(e))?;
        while let Some(row) = query.next().map_err(|e| db.error(e))? {
            if rows.len() == MAX_ROWS {
                return Err(SqliteError::OverLimit(format!(
                    "more than {MAX_ROWS} rows in Packages"
                )));
            }
            let hnum = match row.get_ref(0) {
                Ok(ValueRef::Integer(n)) => n,
                _ => i64::MAX,
            };
            let blob = match row.get_ref(1) {
                Ok(ValueRef::Blob(b)) => {
                    bytes = bytes.saturating_add(b.len());
                    if bytes > max_bytes {
                        // Stored blobs cannot add up to more than the file:
                        // pages must be shared between rows.
                        return Err(SqliteError::OverLimit(format!(
                            "the blobs add up to more than the file's {max_bytes} bytes"
                        )));
                    }
                    Ok(b.to_vec())
                }
                Ok(other) => Err(SqliteError::Sqlite(format!(
                    "row {hnum}: blob is {:?}, not a blob",
                    other.data_type()
                ))),
                Err(e) => Err(SqliteError::from(e)),
            };
            rows.push((hnum, blob));
        }
        Ok(())
    })();
    result?;
    rows.sort_by_key(|(hnum, _)| *hnum);
    Ok(rows.into_iter().map(|(_, blob)| blob).collect())
}

#[cfg(all(test, feature = "rpm-sqlite"))]
mod tests {
    use super::*;

    #[test]
    fn not_sqlite() {
        assert_eq!(read_sqlite(b"hello"), Err(SqliteError::NotSqlite));
        assert_eq!(read_sqlite(&[0u8; 4096]), Err(SqliteError::NotSqlite));
    }

    #[test]
    fn sqlite_without_packages_table() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE Other (x INTEGER); INSERT INTO Other VALUES (1);")
            .unwrap();
        let bytes = conn.serialize("main").unwrap().to_vec();
        assert_eq!(read_sqlite(&bytes), Err(SqliteError::NotRpmDb));
    }

    #[test]
    fn progress_handler_stops_a_runaway_query() {
        let db = Guarded::open(1 << 20).unwrap();
        let e = db
            .conn
            .query_row(
                "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) \
                 SELECT count(*) FROM r",
                [],
                |row| row.get::<_, i64>(0),
            )
            .unwrap_err();
        assert_eq!(
            db.error(e),
            SqliteError::OverLimit("more than 20000000 SQLite steps".into())
        );
    }

    /// Even a view the schema check let through could not be read.
    #[test]
    fn views_cannot_be_queried_at_all() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE VIEW Packages AS SELECT 1 AS hnum, x'00' AS blob;")
            .unwrap();
        let bytes = conn.serialize("main").unwrap().to_vec();
        let mut db = Guarded::open(bytes.len()).unwrap();
        db.conn
            .deserialize_read_exact("main", &bytes[..], bytes.len(), true)
            .unwrap();
        let e = read_rows(&db, bytes.len()).unwrap_err();
        assert!(
            matches!(&e, SqliteError::Sqlite(m) if m.contains("prohibited")),
            "{e:?}"
        );
    }
}
