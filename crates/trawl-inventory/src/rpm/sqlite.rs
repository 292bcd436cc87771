//! rpm's SQLite backend (`rpmdb.sqlite`: Fedora 33+, RHEL 9, CBL-Mariner /
//! Azure Linux, Amazon Linux 2023).
//!
//! The header blobs are the `blob` column of the `Packages` table
//! (`hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL`, see
//! `lib/backend/sqlite.c` in <https://github.com/rpm-software-management/rpm>);
//! the other tables are indexes rpm can rebuild.
//!
//! The file is read with SQLite itself (rusqlite, bundled) from the bytes in
//! memory through `sqlite3_deserialize`, read-only: nothing is written to
//! disk and the scanned image is never modified. rpm keeps its database in
//! WAL mode; an in-memory database cannot use a WAL, so the copy handed to
//! SQLite is marked as a rollback-journal database (file format bytes 18 and
//! 19, <https://www.sqlite.org/fileformat.html#file_format_version_numbers>),
//! which reads the same pages.

use std::io::Read;

use rusqlite::{Connection, OpenFlags};

/// The SQLite file header's magic.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";
const WAL_FORMAT: u8 = 2;
const LEGACY_FORMAT: u8 = 1;

/// Why an SQLite rpm database could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqliteError {
    /// Not an SQLite file at all.
    #[error("not an SQLite database")]
    NotSqlite,
    /// An SQLite database without rpm's `Packages` table.
    #[error("SQLite database is not an rpm database: no Packages table with a blob column")]
    NotRpmDb,
    /// SQLite could not read it (corrupt, truncated).
    #[error("SQLite: {0}")]
    Sqlite(String),
}

impl From<rusqlite::Error> for SqliteError {
    fn from(e: rusqlite::Error) -> Self {
        SqliteError::Sqlite(e.to_string())
    }
}

/// Every header blob of an `rpmdb.sqlite` file, in `hnum` order. A row whose
/// blob cannot be read gives an error in its place.
pub fn read_sqlite(data: &[u8]) -> Result<Vec<Result<Vec<u8>, SqliteError>>, SqliteError> {
    if data.len() < 100 || !data.starts_with(SQLITE_MAGIC) {
        return Err(SqliteError::NotSqlite);
    }
    let mut header = [0u8; 100];
    header.copy_from_slice(&data[..100]);
    for byte in &mut header[18..20] {
        if *byte == WAL_FORMAT {
            *byte = LEGACY_FORMAT;
        }
    }
    let mut conn = Connection::open_with_flags(
        ":memory:",
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.deserialize_read_exact("main", (&header[..]).chain(&data[100..]), data.len(), true)?;
    let has_table: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('Packages') WHERE name = 'blob')",
        [],
        |row| row.get(0),
    )?;
    if !has_table {
        return Err(SqliteError::NotRpmDb);
    }
    let mut stmt = conn.prepare("SELECT blob FROM Packages ORDER BY hnum")?;
    let rows = stmt.query_map([], |row| row.get::<_, Vec<u8>>(0))?;
    Ok(rows.map(|r| r.map_err(SqliteError::from)).collect())
}

#[cfg(test)]
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
}
