//! `rpmdb.sqlite` files written by SQLite itself with hostile schemas: a
//! `Packages` that is a recursive view, a virtual table, generated columns,
//! too many rows. Each is refused or stopped quickly with a typed error, never
//! run to exhaustion, and SQLite never creates a temporary file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use trawl_inventory::rpm::{RpmDbError, RpmDbKind, SqliteError, read_packages};
use trawl_inventory::{Inventory, InventoryWarning, catalog, selection};
use trawl_layers::{Limits, read_rootfs};

/// A database file written by SQLite from `sql`.
fn database(sql: &str) -> Vec<u8> {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(sql).unwrap();
    conn.serialize("main").unwrap().to_vec()
}

/// rpm's own schema (`lib/backend/sqlite.c`).
const RPM_SCHEMA: &str =
    "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);";

/// A recursive view under rpm's table name: every row computed, endlessly.
const RECURSIVE_VIEW: &str = "CREATE VIEW Packages AS \
     WITH RECURSIVE r(hnum, blob) AS (SELECT 1, zeroblob(1000) UNION ALL SELECT hnum + 1, blob FROM r) \
     SELECT hnum, blob FROM r;";

/// SQLite's temporary files (`etilqs_*`) this process has open.
fn sqlite_temp_files() -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|p| p.display().to_string())
                .filter(|p| p.contains("etilqs_"))
                .collect()
        })
        .unwrap_or_default()
}

/// Catalogs a root file system holding `db` as the rpm database on another
/// thread, giving up after `bound`; asserts SQLite opened no temporary file
/// meanwhile.
fn catalog_within(db: Vec<u8>, bound: Duration) -> (Inventory, Duration) {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("var/lib/rpm")).unwrap();
    std::fs::write(root.path().join("var/lib/rpm/rpmdb.sqlite"), db).unwrap();
    let path: PathBuf = root.path().to_path_buf();
    let started = Instant::now();
    let worker = std::thread::spawn(move || {
        catalog(&read_rootfs(Path::new(&path), &selection(), &Limits::default()).unwrap())
    });
    while !worker.is_finished() {
        let temp = sqlite_temp_files();
        assert!(temp.is_empty(), "SQLite opened temporary files: {temp:?}");
        assert!(
            started.elapsed() < bound,
            "reading the database took longer than {bound:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    (worker.join().unwrap(), started.elapsed())
}

fn unreadable_reason(inv: &Inventory) -> &str {
    match &inv.warnings[..] {
        [InventoryWarning::UnreadableDatabase { database, reason }]
            if database == "var/lib/rpm/rpmdb.sqlite" =>
        {
            reason
        }
        other => panic!("expected one UnreadableDatabase warning, got {other:?}"),
    }
}

#[test]
fn recursive_view_is_refused_quickly_without_temporary_files() {
    let db = database(RECURSIVE_VIEW);
    assert!(db.len() <= 4096, "a tiny file: {} bytes", db.len());
    let (inv, took) = catalog_within(db.clone(), Duration::from_secs(20));
    assert!(inv.packages.is_empty());
    assert!(inv.is_incomplete());
    assert_eq!(
        unreadable_reason(&inv),
        "SQLite database refused: Packages is a view, not a table"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(
        read_packages(RpmDbKind::Sqlite, &db).unwrap_err(),
        RpmDbError::Sqlite(SqliteError::Refused(
            "Packages is a view, not a table".into()
        ))
    );
}

#[test]
fn other_computed_tables_are_refused() {
    let cases = [
        (
            "CREATE VIRTUAL TABLE Packages USING fts5(hnum, blob);",
            "Packages is a virtual table",
        ),
        (
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB AS (zeroblob(100000000)));",
            "Packages has generated hnum or blob columns",
        ),
        (
            "CREATE TABLE Packages (n INTEGER PRIMARY KEY, hnum AS (n * n) STORED, blob BLOB);",
            "Packages has generated hnum or blob columns",
        ),
        // The table name is matched as SQLite does, without regard to case.
        (
            "CREATE VIEW pACKAGES AS SELECT 1 AS hnum, x'00' AS blob;",
            "Packages is a view, not a table",
        ),
    ];
    for (sql, reason) in cases {
        let (inv, _) = catalog_within(database(sql), Duration::from_secs(20));
        assert_eq!(
            unreadable_reason(&inv),
            format!("SQLite database refused: {reason}"),
            "{sql}"
        );
    }
}

#[test]
fn triggers_views_and_indexes_beside_the_table_change_nothing() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/rpm/cbl-mariner-2.0/rpmdb.sqlite");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("rpmdb.sqlite");
    std::fs::copy(&fixture, &copy).unwrap();
    let conn = Connection::open(&copy).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = DELETE;
         CREATE TRIGGER t AFTER INSERT ON Packages BEGIN DELETE FROM Packages; END;
         CREATE VIEW Endless AS WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT x FROM r;
         CREATE INDEX by_blob ON Packages (length(blob));",
    )
    .unwrap();
    drop(conn);
    let (inv, _) = catalog_within(std::fs::read(&copy).unwrap(), Duration::from_secs(20));
    assert_eq!(inv.packages.len(), 129, "{:?}", inv.warnings);
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
}

#[test]
fn too_many_rows_stop_the_read() {
    // 100,001 rows of one byte: a small file, more rows than any real system.
    let db = database(&format!(
        "{RPM_SCHEMA}
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100001)
         INSERT INTO Packages (blob) SELECT x'00' FROM n;"
    ));
    let (inv, _) = catalog_within(db, Duration::from_secs(30));
    assert_eq!(
        unreadable_reason(&inv),
        "SQLite database read stopped: more than 100000 rows in Packages"
    );
}

#[test]
fn rows_are_read_in_hnum_order_with_per_row_errors() {
    // Stored out of hnum order (no rowid alias), one row holding text.
    let db = database(
        "CREATE TABLE Packages (hnum INTEGER, blob BLOB);
         INSERT INTO Packages VALUES (3, x'03'), (1, x'01'), (2, 'two');",
    );
    let blobs = trawl_inventory::rpm::read_sqlite(&db).unwrap();
    assert_eq!(blobs.len(), 3);
    assert_eq!(blobs[0], Ok(vec![1]));
    assert!(matches!(&blobs[1], Err(SqliteError::Sqlite(m)) if m.contains("not a blob")));
    assert_eq!(blobs[2], Ok(vec![3]));
}

/// A stale Berkeley DB beside the SQLite database rpm uses: when the SQLite
/// one is refused, the old one's packages are listed but the inventory is
/// incomplete (they may be out of date); a file that is no rpm SQLite
/// database at all does not count against it.
#[test]
fn refused_sqlite_beside_a_stale_berkeley_db_is_incomplete() {
    let bdb = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/rpm/libuuid-bdb/Packages"),
    )
    .unwrap();
    for (sqlite, incomplete) in [
        (database(RECURSIVE_VIEW), true),
        (database("CREATE TABLE Other (x);"), false),
    ] {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("var/lib/rpm")).unwrap();
        std::fs::write(root.path().join("var/lib/rpm/rpmdb.sqlite"), sqlite).unwrap();
        std::fs::write(root.path().join("var/lib/rpm/Packages"), &bdb).unwrap();
        let inv = catalog(&read_rootfs(root.path(), &selection(), &Limits::default()).unwrap());
        assert_eq!(inv.packages.len(), 1);
        assert_eq!(inv.packages[0].name, "libuuid");
        assert_eq!(inv.is_incomplete(), incomplete, "{:?}", inv.warnings);
    }
}
