//! Package databases that are mostly junk, or built to cost: each gives at
//! most [`MAX_ENTRY_WARNINGS`] listed warnings, one count of the rest and an
//! `UnreadableDatabase` (the scan is incomplete, never healthy), while every
//! valid package is kept. Also dpkg's own rule for a `status` entry without
//! `Status` (checked against `dpkg-query`), and empty and populated Berkeley
//! DB files written by `db5.3_load`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use trawl_inventory::rpm::{MAX_ENTRIES, RpmDbKind, read_packages, read_sqlite};
use trawl_inventory::{Inventory, InventoryWarning, MAX_ENTRY_WARNINGS, catalog, selection};
use trawl_layers::{Limits, read_rootfs};

fn fixtures() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures"
    ))
}

/// A root file system holding `files` (path relative to the root, contents).
fn rootfs(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, data) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    dir
}

fn scan(files: &[(&str, &[u8])]) -> Inventory {
    let root = rootfs(files);
    catalog(&read_rootfs(root.path(), &selection(), &Limits::default()).unwrap())
}

/// The warnings' shape: how many of each kind, and the unreadable reasons.
fn counts(inv: &Inventory) -> (usize, Vec<(String, usize)>, Vec<String>) {
    let mut malformed = 0;
    let mut not_listed = Vec::new();
    let mut unreadable = Vec::new();
    for w in &inv.warnings {
        match w {
            InventoryWarning::MalformedEntry { .. } => malformed += 1,
            InventoryWarning::EntriesNotListed { database, count } => {
                not_listed.push((database.clone(), *count))
            }
            InventoryWarning::UnreadableDatabase { database, reason } => {
                unreadable.push(format!("{database}: {reason}"))
            }
            other => panic!("unexpected warning {other:?}"),
        }
    }
    (malformed, not_listed, unreadable)
}

const VALID_APK: &[u8] = b"P:musl\nV:1.2.5-r0\nA:x86_64\no:musl\n\nP:busybox\nV:1.36.1-r29\n\n";

#[test]
fn apk_installed_of_30_mib_junk_lines() {
    let mut db = VALID_APK.to_vec();
    let mut n = 0usize;
    while db.len() < 30 << 20 {
        writeln!(db, "junk line {n}").unwrap();
        n += 1;
    }
    db.extend_from_slice(b"\nP:zlib\nV:1.3.1-r1\n");
    let inv = scan(&[("lib/apk/db/installed", &db)]);
    let names: Vec<&str> = inv.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["musl", "busybox", "zlib"],
        "the valid records are kept"
    );
    let (malformed, not_listed, unreadable) = counts(&inv);
    assert_eq!(malformed, MAX_ENTRY_WARNINGS);
    assert_eq!(
        not_listed,
        [("lib/apk/db/installed".to_string(), n - MAX_ENTRY_WARNINGS)]
    );
    assert_eq!(
        unreadable,
        [format!(
            "lib/apk/db/installed: {n} of {} entries are malformed: packages may be missing",
            n + 3
        )]
    );
    assert!(inv.is_incomplete());
    let text: usize = inv.warnings.iter().map(|w| w.to_string().len()).sum();
    assert!(text < 16 << 10, "{text} bytes of warnings");
}

#[test]
fn apk_with_more_junk_than_packages_is_unreadable() {
    let inv = scan(&[(
        "lib/apk/db/installed",
        b"P:musl\nV:1.2.5-r0\n\nnot a field\nneither\n",
    )]);
    assert_eq!(inv.packages.len(), 1);
    let (malformed, not_listed, unreadable) = counts(&inv);
    assert_eq!((malformed, not_listed.len(), unreadable.len()), (2, 0, 1));
    // One junk line among real records is only a skipped entry.
    let inv = scan(&[(
        "lib/apk/db/installed",
        b"P:musl\nV:1.2.5-r0\n\nnot a field\nP:zlib\nV:1.3.1-r1\n",
    )]);
    assert_eq!(inv.packages.len(), 2);
    assert!(!inv.is_incomplete(), "{:?}", inv.warnings);
}

#[test]
fn oversized_fields_skip_the_entry() {
    let mut db = b"P:musl\nV:1.2.5-r0\n\nP:".to_vec();
    db.extend(std::iter::repeat_n(b'a', 1 << 20));
    db.extend_from_slice(b"\nV:1\n\nP:zlib\nV:1.3.1-r1\n");
    let inv = scan(&[("lib/apk/db/installed", &db)]);
    let names: Vec<&str> = inv.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["musl", "zlib"]);
    assert_eq!(
        inv.warnings,
        [InventoryWarning::MalformedEntry {
            database: "lib/apk/db/installed".into(),
            line: 4,
            reason: "P is 1048576 bytes long (at most 4096)".into()
        }]
    );
}

const VALID_STANZA: &str = "Package: base-files\nStatus: install ok installed\nVersion: 12.4+deb12u8\nArchitecture: amd64\n\n";

#[test]
fn dpkg_status_of_junk_paragraphs() {
    // 8 MiB: 1.4 million junk paragraphs (30 MiB takes long in a debug build).
    let mut status = VALID_STANZA.to_string();
    let mut n = 0usize;
    while status.len() < 8 << 20 {
        status.push_str("junk\n\n");
        n += 1;
    }
    status.push_str(&VALID_STANZA.replace("base-files", "tzdata"));
    let inv = scan(&[("var/lib/dpkg/status", status.as_bytes())]);
    let names: Vec<&str> = inv.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["base-files", "tzdata"]);
    let (malformed, not_listed, unreadable) = counts(&inv);
    assert_eq!(malformed, MAX_ENTRY_WARNINGS);
    assert_eq!(
        not_listed,
        [("var/lib/dpkg/status".to_string(), n - MAX_ENTRY_WARNINGS)]
    );
    assert_eq!(unreadable.len(), 1);
}

#[test]
fn dpkg_paragraph_with_endless_fields() {
    let mut status = VALID_STANZA.to_string();
    status.push_str("Package: bloat\nStatus: install ok installed\nVersion: 1\n");
    for i in 0..500_000 {
        status.push_str(&format!("X-Field-{i}: v\n"));
    }
    status.push('\n');
    status.push_str(&VALID_STANZA.replace("base-files", "tzdata"));
    let inv = scan(&[("var/lib/dpkg/status", status.as_bytes())]);
    let names: Vec<&str> = inv.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["base-files", "tzdata"]);
    assert!(
        matches!(&inv.warnings[..], [InventoryWarning::MalformedEntry { line: 1006, reason, .. }]
            if reason == "more than 1000 fields"),
        "{:?}",
        inv.warnings
    );
}

#[test]
fn status_d_junk_files_share_one_cap() {
    let mut files: Vec<(String, Vec<u8>)> = (0..300)
        .map(|i| {
            (
                format!("var/lib/dpkg/status.d/junk{i:03}"),
                b"junk\n".to_vec(),
            )
        })
        .collect();
    files.push((
        "var/lib/dpkg/status.d/base-files".into(),
        b"Package: base-files\nVersion: 12.4+deb12u8\nArchitecture: amd64\n".to_vec(),
    ));
    let files: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    let inv = scan(&files);
    assert_eq!(inv.packages.len(), 1);
    let (malformed, not_listed, unreadable) = counts(&inv);
    assert_eq!(malformed, MAX_ENTRY_WARNINGS);
    assert_eq!(not_listed, [("var/lib/dpkg/status.d".to_string(), 200)]);
    assert_eq!(
        unreadable,
        ["var/lib/dpkg/status.d: 300 of 301 entries are malformed: packages may be missing"]
    );
}

/// The trivy fixture's real status file with one more stanza, a copy of a
/// real one under another name, without its `Status` line.
fn status_with_stanza_without_status() -> String {
    let txtar = std::fs::read_to_string(fixtures().join("dpkg/trivy-valid.txtar")).unwrap();
    let start =
        txtar.find("-- var/lib/dpkg/status --\n").unwrap() + "-- var/lib/dpkg/status --\n".len();
    let rest = &txtar[start..];
    let status = &rest[..rest.find("\n-- ").map_or(rest.len(), |i| i + 1)];
    let first = &status[..status.find("\n\n").unwrap() + 2];
    let ghost: String = first
        .lines()
        .filter(|l| !l.starts_with("Status:"))
        .map(|l| match l.strip_prefix("Package: ") {
            Some(_) => "Package: ghost-package\n".to_string(),
            None => format!("{l}\n"),
        })
        .collect();
    format!("{status}\n{ghost}")
}

#[test]
fn dpkg_status_entry_without_status_is_not_installed_as_dpkg_query_says() {
    let status = status_with_stanza_without_status();
    let root = rootfs(&[("var/lib/dpkg/status", status.as_bytes())]);
    let inv = catalog(&read_rootfs(root.path(), &selection(), &Limits::default()).unwrap());
    let mut ours: Vec<String> = inv
        .packages
        .iter()
        .map(|p| format!("{}\t{}", p.name, p.version))
        .collect();
    ours.sort();
    let out = Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            root.path().join("var/lib/dpkg").display()
        ))
        .args(["-W", "-f", "${db:Status-Status}\t${Package}\t${Version}\n"])
        .output()
        .expect("dpkg-query (Debian's dpkg package) runs");
    assert!(out.status.success());
    let mut theirs: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("installed\t").map(str::to_string))
        .collect();
    theirs.sort();
    assert_eq!(ours.len(), 90);
    assert_eq!(ours, theirs);
    assert!(!ours.iter().any(|p| p.starts_with("ghost-package")));
    assert!(
        matches!(&inv.warnings[..], [InventoryWarning::MalformedEntry { reason, .. }]
            if reason == "package ghost-package: no Status field (dpkg does not list it as installed)"),
        "{:?}",
        inv.warnings
    );
    assert!(!inv.is_incomplete());
}

/// Runs `db5.3_load` (Berkeley DB's own loader) with `input` on stdin,
/// creating a hash database; returns the file.
fn db_load(input: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Packages");
    let mut child = Command::new("db5.3_load")
        .arg(&path)
        .stdin(Stdio::piped())
        .spawn()
        .expect("db5.3_load (Debian's db5.3-util) runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    assert!(child.wait().unwrap().success());
    std::fs::read(path).unwrap()
}

/// `db_dump` format: hex key and value lines under a hash header.
fn db_load_input(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut input =
        b"VERSION=3\nformat=bytevalue\ntype=hash\ndb_pagesize=4096\nHEADER=END\n".to_vec();
    for (k, v) in pairs {
        writeln!(input, " {}\n {}", hex::encode(k), hex::encode(v)).unwrap();
    }
    input.extend_from_slice(b"DATA=END\n");
    input
}

#[test]
fn empty_berkeley_db_has_no_packages_and_no_warning() {
    let db = db_load(&db_load_input(&[]));
    assert_eq!(read_packages(RpmDbKind::BerkeleyDb, &db).unwrap(), []);
    let inv = scan(&[("var/lib/rpm/Packages", &db)]);
    assert_eq!(inv.databases, ["var/lib/rpm/Packages"]);
    assert!(inv.packages.is_empty());
    assert_eq!(inv.warnings, []);
}

#[test]
fn berkeley_db_written_by_db_load_holds_the_real_headers() {
    // rpm's layout: key = header number (native order), value = header blob;
    // key 0 holds the next header number.
    let blobs: Vec<Vec<u8>> =
        read_sqlite(&std::fs::read(fixtures().join("rpm/cbl-mariner-2.0/rpmdb.sqlite")).unwrap())
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
    let mut pairs = vec![(0u32.to_le_bytes().to_vec(), 130u32.to_le_bytes().to_vec())];
    pairs.extend(
        blobs
            .iter()
            .enumerate()
            .map(|(i, b)| ((i as u32 + 1).to_le_bytes().to_vec(), b.clone())),
    );
    let db = db_load(&db_load_input(&pairs));
    let inv = scan(&[("var/lib/rpm/Packages", &db)]);
    assert_eq!(inv.warnings, []);
    let mut ours: Vec<&str> = inv.packages.iter().map(|p| p.name.as_str()).collect();
    ours.sort();
    let sqlite = scan(&[(
        "var/lib/rpm/rpmdb.sqlite",
        &std::fs::read(fixtures().join("rpm/cbl-mariner-2.0/rpmdb.sqlite")).unwrap(),
    )]);
    let mut expected: Vec<&str> = sqlite.packages.iter().map(|p| p.name.as_str()).collect();
    expected.sort();
    assert_eq!(ours.len(), 129);
    assert_eq!(ours, expected);
}

#[test]
fn berkeley_db_with_more_entries_than_the_cap() {
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (1..=MAX_ENTRIES as u32 + 10)
        .map(|i| (i.to_le_bytes().to_vec(), vec![0]))
        .collect();
    let db = db_load(&db_load_input(&pairs));
    let inv = scan(&[("var/lib/rpm/Packages", &db)]);
    let (malformed, not_listed, unreadable) = counts(&inv);
    assert_eq!(malformed, MAX_ENTRY_WARNINGS);
    assert_eq!(
        not_listed,
        [(
            "var/lib/rpm/Packages".to_string(),
            MAX_ENTRIES - MAX_ENTRY_WARNINGS
        )]
    );
    assert_eq!(
        unreadable,
        ["var/lib/rpm/Packages: more than 100000 entries: the rest of the database is not read"]
    );
}

#[test]
fn sqlite_rpmdb_with_junk_rows_keeps_the_packages() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("rpmdb.sqlite");
    std::fs::copy(fixtures().join("rpm/cbl-mariner-2.0/rpmdb.sqlite"), &copy).unwrap();
    let conn = rusqlite::Connection::open(&copy).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = DELETE;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 150)
         INSERT INTO Packages (blob) SELECT x'00' FROM n;",
    )
    .unwrap();
    drop(conn);
    let inv = scan(&[("var/lib/rpm/rpmdb.sqlite", &std::fs::read(&copy).unwrap())]);
    assert_eq!(inv.packages.len(), 129);
    let (malformed, not_listed, unreadable) = counts(&inv);
    assert_eq!(malformed, MAX_ENTRY_WARNINGS);
    assert_eq!(not_listed, [("var/lib/rpm/rpmdb.sqlite".to_string(), 50)]);
    assert_eq!(
        unreadable,
        ["var/lib/rpm/rpmdb.sqlite: 150 of 279 entries are malformed: packages may be missing"]
    );
}

#[test]
fn ndb_slots_sharing_a_blob_are_refused() {
    let mut ndb = std::fs::read(fixtures().join("rpm/sle15-bci/Packages.db")).unwrap();
    // Slot 2 (the first package slot) copied into a free slot: the same
    // package index and blocks, read twice if nothing checked.
    let free = (40..256)
        .find(|s| ndb[s * 16..s * 16 + 4] == *b"Slot" && ndb[s * 16 + 8..s * 16 + 12] == [0; 4])
        .expect("a free slot");
    let slot2 = ndb[32..48].to_vec();
    ndb[free * 16..free * 16 + 16].copy_from_slice(&slot2);
    let entries = read_packages(RpmDbKind::Ndb, &ndb).unwrap();
    assert_eq!(entries.len(), 36);
    assert_eq!(entries.iter().filter(|e| e.is_ok()).count(), 35);
    let inv = scan(&[("var/lib/rpm/Packages.db", &ndb)]);
    assert_eq!(inv.packages.len(), 35);
    assert!(
        matches!(&inv.warnings[..], [InventoryWarning::MalformedEntry { reason, .. }]
            if reason.contains("overlaps another package's")),
        "{:?}",
        inv.warnings
    );
}
