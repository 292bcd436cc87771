//! Truncated, bit-flipped and foreign rpm databases: typed errors or per-entry
//! warnings, never a panic, never more packages than the intact file holds.

use std::path::{Path, PathBuf};

use trawl_inventory::rpm::{
    BdbError, HeaderError, NdbError, RpmDbError, RpmDbKind, RpmHeader, SqliteError, read_packages,
    read_sqlite,
};
use trawl_inventory::{InventoryWarning, catalog, selection};
use trawl_layers::{Limits, read_rootfs};

fn fixture(path: &str) -> Vec<u8> {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/rpm");
    std::fs::read(dir.join(path)).unwrap()
}

/// Deterministic positions spread over `len` (a small LCG: reproducible runs).
fn positions(len: usize, n: usize, seed: u64) -> Vec<usize> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 33) as usize) % len
        })
        .collect()
}

/// Reads `data`; returns how many packages came out (0 for a whole-file error).
fn packages_read(kind: RpmDbKind, data: &[u8]) -> usize {
    match read_packages(kind, data) {
        Ok(entries) => entries.iter().filter(|e| e.is_ok()).count(),
        Err(_) => 0,
    }
}

fn truncations_and_flips(kind: RpmDbKind, data: &[u8], cuts: usize, flips: usize) {
    let intact = packages_read(kind, data);
    assert!(intact > 0);
    let mut step = (data.len() / cuts).max(1);
    // Never a multiple of the page size: cut inside pages, too.
    if step.is_multiple_of(16) {
        step += 7;
    }
    let mut failures = 0;
    for cut in (0..data.len()).step_by(step) {
        let n = packages_read(kind, &data[..cut]);
        assert!(n <= intact, "{kind:?} cut at {cut}: {n} > {intact}");
        failures += usize::from(n < intact);
    }
    assert!(failures > 0, "{kind:?}: truncation never noticed");
    let mut copy = data.to_vec();
    for (i, at) in positions(data.len(), flips, data.len() as u64)
        .into_iter()
        .enumerate()
    {
        let bit = 1u8 << (i % 8);
        copy[at] ^= bit;
        // A flip may change a value without breaking structure: only the
        // count is bounded. The point is that nothing panics or hangs.
        let n = packages_read(kind, &copy);
        assert!(n <= intact, "{kind:?} flip at {at}");
        copy[at] ^= bit;
    }
}

#[test]
fn bdb_truncated_and_flipped() {
    truncations_and_flips(
        RpmDbKind::BerkeleyDb,
        &fixture("libuuid-bdb/Packages"),
        1500,
        3000,
    );
}

#[test]
fn ndb_truncated_and_flipped() {
    truncations_and_flips(RpmDbKind::Ndb, &fixture("sle15-bci/Packages.db"), 600, 1500);
}

#[test]
fn sqlite_truncated_and_flipped() {
    truncations_and_flips(
        RpmDbKind::Sqlite,
        &fixture("cbl-mariner-2.0/rpmdb.sqlite"),
        60,
        150,
    );
}

#[test]
fn whole_file_errors_are_typed() {
    let bdb = fixture("libuuid-bdb/Packages");
    assert_eq!(
        read_packages(RpmDbKind::BerkeleyDb, &bdb[..300]).unwrap_err(),
        RpmDbError::Bdb(BdbError::Truncated(300))
    );
    let mut not_hash = bdb.clone();
    not_hash[12..16].copy_from_slice(&[1, 2, 3, 4]);
    assert!(matches!(
        read_packages(RpmDbKind::BerkeleyDb, &not_hash),
        Err(RpmDbError::Bdb(BdbError::NotHash(_)))
    ));
    let ndb = fixture("sle15-bci/Packages.db");
    assert!(matches!(
        read_packages(RpmDbKind::Ndb, &ndb[..20]),
        Err(RpmDbError::Ndb(NdbError::Truncated {
            needed: 32,
            available: 20
        }))
    ));
    assert!(matches!(
        read_packages(RpmDbKind::Ndb, &bdb),
        Err(RpmDbError::Ndb(NdbError::BadHeader(_)))
    ));
    assert_eq!(read_sqlite(&ndb), Err(SqliteError::NotSqlite));
}

#[test]
fn a_broken_blob_is_one_warning_and_the_rest_is_kept() {
    let mut ndb = fixture("sle15-bci/Packages.db");
    // Slot 2's blob starts at block 256; break its head magic.
    ndb[256 * 16] ^= 0xff;
    let entries = read_packages(RpmDbKind::Ndb, &ndb).unwrap();
    assert_eq!(entries.len(), 35);
    assert!(matches!(
        &entries[0],
        Err(RpmDbError::Ndb(NdbError::BadSlot { slot: 2, .. }))
    ));
    assert_eq!(entries.iter().filter(|e| e.is_ok()).count(), 34);

    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("var/lib/rpm")).unwrap();
    std::fs::write(root.path().join("var/lib/rpm/Packages.db"), &ndb).unwrap();
    let inv = catalog(&read_rootfs(root.path(), &selection(), &Limits::default()).unwrap());
    assert_eq!(inv.packages.len(), 34);
    assert!(
        matches!(
            &inv.warnings[..],
            [InventoryWarning::MalformedEntry { database, line: 1, reason }]
                if database == "var/lib/rpm/Packages.db" && reason.contains("slot 2")
        ),
        "{:?}",
        inv.warnings
    );
}

#[test]
fn sqlite_that_is_not_an_rpmdb() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, name TEXT);")
        .unwrap();
    let bytes = conn.serialize("main").unwrap().to_vec();
    assert_eq!(
        read_packages(RpmDbKind::Sqlite, &bytes).unwrap_err(),
        RpmDbError::Sqlite(SqliteError::NotRpmDb)
    );
    // Through the cataloger: a warning naming the file, no packages, and the
    // inventory is marked incomplete (the scan's verdict becomes partial).
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("var/lib/rpm")).unwrap();
    std::fs::write(root.path().join("var/lib/rpm/rpmdb.sqlite"), &bytes).unwrap();
    let inv = catalog(&read_rootfs(root.path(), &selection(), &Limits::default()).unwrap());
    assert!(inv.packages.is_empty());
    assert!(
        matches!(
            &inv.warnings[..],
            [InventoryWarning::UnreadableDatabase { database, reason }]
                if database == "var/lib/rpm/rpmdb.sqlite" && reason.contains("not an rpm database")
        ),
        "{:?}",
        inv.warnings
    );
    assert!(inv.is_incomplete());
    // Beside a readable database of another backend, the unreadable one is
    // only a warning: the inventory is complete.
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/rpm/libuuid-bdb/Packages"
        ),
        root.path().join("var/lib/rpm/Packages"),
    )
    .unwrap();
    let inv = catalog(&read_rootfs(root.path(), &selection(), &Limits::default()).unwrap());
    assert_eq!(inv.packages.len(), 1);
    assert!(!inv.is_incomplete(), "{:?}", inv.warnings);
    assert!(matches!(
        &inv.warnings[..],
        [InventoryWarning::MalformedEntry { line: 0, .. }]
    ));
    // A blob column holding something that is not a header: per-row errors.
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL);
         INSERT INTO Packages VALUES (1, x'0000000100000004');",
    )
    .unwrap();
    let bytes = conn.serialize("main").unwrap().to_vec();
    let entries = read_packages(RpmDbKind::Sqlite, &bytes).unwrap();
    assert!(matches!(
        &entries[..],
        [Err(RpmDbError::Header(HeaderError::Truncated {
            needed: 28,
            available: 8
        }))]
    ));
}

/// Real header blobs with their counts and offsets pushed out of range.
#[test]
fn real_headers_with_out_of_range_counts_and_offsets() {
    let blobs: Vec<Vec<u8>> = read_sqlite(&fixture("cbl-mariner-2.0/rpmdb.sqlite"))
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(blobs.len(), 129);
    for blob in &blobs {
        assert!(RpmHeader::parse(blob).is_ok());
        let il = u32::from_be_bytes(blob[0..4].try_into().unwrap()) as usize;
        // il beyond the blob, beyond rpm's limit; dl beyond the blob.
        for (at, value) in [(0, il as u32 + 1), (0, 0x0100_0000), (4, u32::MAX >> 4)] {
            let mut b = blob.clone();
            b[at..at + 4].copy_from_slice(&value.to_be_bytes());
            assert!(
                matches!(
                    RpmHeader::parse(&b),
                    Err(HeaderError::Truncated { .. } | HeaderError::TooLarge { .. })
                ),
                "field at {at} = {value:#x}"
            );
        }
        // Every index entry's offset past the data store.
        for entry in 0..il {
            let mut b = blob.clone();
            let at = 8 + 16 * entry + 8;
            b[at..at + 4].copy_from_slice(&0x0f00_0000u32.to_be_bytes());
            assert!(matches!(
                RpmHeader::parse(&b),
                Err(HeaderError::BadEntry { entry: e, .. }) if e == entry
            ));
        }
    }
}
