//! The compiled store answers exactly as the in-memory database built from the
//! same feeds (real Alpine 3.4 packages against the real secdb, and a generated
//! inventory over every package of every fixture feed), and refuses damaged,
//! truncated and foreign files with errors naming the file.

use std::path::{Path, PathBuf};

use trawl_advisory::osv::Event;
use trawl_advisory::{
    Advisory, AdvisoryDb, AdvisorySource, AdvisoryStore, FeedPaths, PackageQuery, StoreError,
    debian_tracker, osv, secdb,
};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every fixture feed: OSV (good, bulk and broken), the whole secdb snapshot,
/// the tracker excerpts (good and broken).
fn feeds() -> FeedPaths {
    FeedPaths {
        osv_dirs: vec![fixtures().join("osv")],
        secdb_paths: vec![shared().join("secdb")],
        debian_tracker_files: vec![
            fixtures().join("debian-tracker/tracker.json"),
            fixtures().join("debian-tracker/broken.json"),
        ],
        ghsa_paths: vec![fixtures().join("ghsa")],
    }
}

fn build(dir: &Path) -> (AdvisoryDb, AdvisoryStore, PathBuf) {
    let f = feeds();
    let (db, db_warnings) = AdvisoryDb::from_feed_paths(&f).expect("feeds readable");
    let out = dir.join("trawl.db");
    let (info, warnings) = AdvisoryStore::build(&f, &out).expect("store builds");
    assert_eq!(
        warnings, db_warnings,
        "the same warnings, in the same order"
    );
    assert!(!warnings.is_empty(), "the broken fixtures warn");
    assert_eq!(info.records, db.len() as u64);
    let store = AdvisoryStore::open(&out).expect("store opens");
    assert_eq!(store.info(), &info);
    (db, store, out)
}

/// Compares everything a match says, as the report would serialise it.
fn assert_same_answer(db: &AdvisoryDb, store: &AdvisoryStore, query: &PackageQuery<'_>) -> usize {
    let want = db.matches(query);
    let got = store.matches(query);
    match (&want, &got) {
        (Ok(want), Ok(got)) => {
            // A stored answer holds its records undecoded: the ids (read
            // without decoding) are the record's, and the first read of
            // anything else decodes the record once for every match of it.
            for (w, g) in want.iter().zip(got) {
                assert!(!g.advisory.is_decoded(), "{query:?}");
                assert_eq!(g.advisory.id(), w.advisory.id);
                assert_eq!(g.advisory.aliases().collect::<Vec<_>>(), w.advisory.aliases);
                assert_eq!(
                    g.advisory.upstream().collect::<Vec<_>>(),
                    w.advisory.upstream
                );
            }
            assert_eq!(
                serde_json::to_value(want).unwrap(),
                serde_json::to_value(got).unwrap(),
                "{query:?}"
            );
            for (i, g) in got.iter().enumerate() {
                assert!(g.advisory.is_decoded(), "{query:?}");
                for other in &got[i + 1..] {
                    if other.advisory.id() == g.advisory.id()
                        && other.advisory.upstream().eq(g.advisory.upstream())
                    {
                        // Matches of one record share it.
                        assert_eq!(
                            other.advisory.same_record(&g.advisory),
                            std::ptr::eq(&*other.advisory, &*g.advisory)
                        );
                    }
                }
            }
        }
        (Err(want), Err(StoreError::Query(got))) => assert_eq!(want, got, "{query:?}"),
        _ => panic!("{query:?}: in memory {want:?}, store {got:?}"),
    }
    let want = db.assess(query).map(|m| serde_json::to_value(m).unwrap());
    let got = store
        .assess(query)
        .map(|m| serde_json::to_value(m).unwrap());
    assert_eq!(want.ok(), got.ok(), "assess {query:?}");
    // Through the trait, as a scanner sees it.
    let via_trait = AdvisorySource::matches(store, query).map(|m| m.len());
    assert_eq!(via_trait.ok(), db.matches(query).ok().map(|m| m.len()));
    want_len(db, query)
}

fn want_len(db: &AdvisoryDb, query: &PackageQuery<'_>) -> usize {
    db.matches(query).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn alpine_3_4_installed_packages_match_as_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (db, store, _) = build(dir.path());
    let text = std::fs::read_to_string(shared().join("apk/alpine-3.4/expected.tsv")).unwrap();
    let mut total = 0;
    let mut packages = 0;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let f: Vec<&str> = line.split('\t').collect();
        for ecosystem in ["Alpine:3.4.6", "Alpine:v3.4", "Alpine"] {
            let query = PackageQuery {
                ecosystem,
                name: f[2],
                version: f[1],
            };
            let n = assert_same_answer(&db, &store, &query);
            if ecosystem == "Alpine:3.4.6" {
                total += n;
            }
        }
        packages += 1;
    }
    assert_eq!(packages, 15);
    // As tests/secdb_feed.rs establishes by hand for the same data.
    assert_eq!(total, 57);
    for ecosystem in [
        "Alpine:3.4.6",
        "Debian:12",
        "Debian:bookworm",
        "Alpine:v3.99",
        "PyPI",
    ] {
        assert_eq!(
            store.has_ecosystem(ecosystem),
            db.has_ecosystem(ecosystem),
            "{ecosystem}"
        );
    }
    assert!(store.has_ecosystem("Alpine:3.4.6") && !store.has_ecosystem("Alpine:v3.99"));
}

/// Every (ecosystem, package) of every fixture feed, at every version its
/// records name and at versions below and above them all.
#[test]
fn generated_inventory_matches_as_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (db, store, _) = build(dir.path());
    let mut records: Vec<Advisory> = osv::load_dir(fixtures().join("osv")).unwrap().advisories;
    records.extend(
        trawl_advisory::ghsa::load(fixtures().join("ghsa"))
            .unwrap()
            .advisories,
    );
    for path in &feeds().secdb_paths {
        records.extend(
            secdb::load_path(path)
                .unwrap()
                .records
                .into_iter()
                .map(|r| r.advisory),
        );
    }
    for path in &feeds().debian_tracker_files {
        records.extend(
            debian_tracker::load_file(path)
                .unwrap()
                .records
                .into_iter()
                .map(|r| r.advisory),
        );
    }
    let mut queries: std::collections::BTreeSet<(String, String, String)> = Default::default();
    for record in &records {
        for affected in &record.affected {
            let Some(package) = &affected.package else {
                continue;
            };
            let mut versions: Vec<String> = affected.versions.clone();
            for range in &affected.ranges {
                versions.extend(range.events.iter().map(|e| match e {
                    Event::Introduced(v)
                    | Event::Fixed(v)
                    | Event::LastAffected(v)
                    | Event::Limit(v) => v.clone(),
                }));
            }
            versions.extend(
                [
                    "0.1-r0", "0.1-1", "1:0.1-1", "999-r0", "999-1", "1.0.0", "x y",
                ]
                .map(String::from),
            );
            for version in versions {
                queries.insert((package.ecosystem.clone(), package.name.clone(), version));
            }
        }
    }
    assert!(queries.len() > 2000, "{}", queries.len());
    let mut matched = 0;
    for (ecosystem, name, version) in &queries {
        let query = PackageQuery {
            ecosystem,
            name,
            version,
        };
        matched += assert_same_answer(&db, &store, &query);
    }
    assert!(
        matched > 1000,
        "the inventory hits many advisories: {matched}"
    );
}

#[test]
fn opening_reads_nothing_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_, store, path) = build(dir.path());
    let before = std::fs::read(&path).unwrap();
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    let query = PackageQuery {
        ecosystem: "Alpine:v3.4",
        name: "openssl",
        version: "1.0.2h-r1",
    };
    assert!(!store.matches(&query).unwrap().is_empty());
    store.verify().expect("an intact store verifies");
    drop(store);
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        modified
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["trawl.db"], "no journal, lock or temporary file");
}

#[test]
fn a_rebuild_replaces_the_file_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let (_, old, path) = build(dir.path());
    let only_osv = FeedPaths {
        osv_dirs: vec![fixtures().join("osv/debian")],
        ..FeedPaths::default()
    };
    let (info, _) = AdvisoryStore::build(&only_osv, &path).unwrap();
    let new = AdvisoryStore::open(&path).unwrap();
    assert_eq!(new.info(), &info);
    assert!(new.info().records < old.info().records);
    // The store opened before keeps reading the file it opened.
    let query = PackageQuery {
        ecosystem: "Alpine:v3.4",
        name: "openssl",
        version: "1.0.2h-r1",
    };
    assert!(!old.matches(&query).unwrap().is_empty());
    assert!(new.matches(&query).unwrap().is_empty());
    assert!(!new.has_ecosystem("Alpine:v3.4"));
    let count = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(count, 1, "no temporary file is left behind");
}

fn expect_error(path: &Path) -> StoreError {
    let err = AdvisoryStore::open(path).expect_err("must be refused");
    let text = err.to_string();
    assert!(
        text.contains(&path.display().to_string()),
        "names the file: {text}"
    );
    err
}

#[test]
fn truncated_foreign_and_future_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, path) = build(dir.path());
    let bytes = std::fs::read(&path).unwrap();

    let cut = dir.path().join("cut.db");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(
        expect_error(&cut),
        StoreError::Truncated { expected, actual, .. }
            if expected == bytes.len() as u64 && actual == (bytes.len() / 2) as u64
    ));
    // Cut inside the header.
    std::fs::write(&cut, &bytes[..50]).unwrap();
    assert!(matches!(
        expect_error(&cut),
        StoreError::NotADatabase { .. }
    ));
    std::fs::write(&cut, b"").unwrap();
    assert!(matches!(
        expect_error(&cut),
        StoreError::NotADatabase { .. }
    ));

    let text = dir.path().join("text.db");
    std::fs::write(&text, "{\"not\": \"a database\"}\n".repeat(20)).unwrap();
    assert!(matches!(
        expect_error(&text),
        StoreError::NotADatabase { .. }
    ));

    // Another program's SQLite file.
    let other = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&other).unwrap();
    conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(conn);
    assert!(matches!(
        expect_error(&other),
        StoreError::NotAStore {
            application_id: 0,
            ..
        }
    ));

    // A store from a future schema, and one of the previous layout (3: one
    // `entries` row per entry, before the `packages` rows): `user_version`
    // is bytes 60..64 of the header.
    for other in [
        trawl_advisory::store::SCHEMA_VERSION + 1,
        trawl_advisory::store::SCHEMA_VERSION - 1,
    ] {
        let file = dir.path().join(format!("schema-{other}.db"));
        let mut changed = bytes.clone();
        changed[60..64].copy_from_slice(&other.to_be_bytes());
        std::fs::write(&file, &changed).unwrap();
        let err = expect_error(&file);
        assert!(
            matches!(
                err,
                StoreError::SchemaVersion {
                    found,
                    expected: trawl_advisory::store::SCHEMA_VERSION,
                    ..
                } if found == other
            ),
            "{err}"
        );
        assert!(err.to_string().contains("rebuild"), "{err}");
    }

    let missing = dir.path().join("missing.db");
    assert!(matches!(expect_error(&missing), StoreError::Io { .. }));
}

#[test]
fn a_damaged_record_is_reported_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _, path) = build(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    // The stored bytes of the records naming musl in v3.4 and the id of a
    // record matching it, located in the file and each damaged by one bit.
    let query = PackageQuery {
        ecosystem: "Alpine:v3.4",
        name: "musl",
        version: "1.1.0-r0",
    };
    let id = db.matches(&query).unwrap()[0].advisory.id.clone();
    let records: Vec<Vec<u8>> = {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT data FROM records WHERE instr(data, CAST(?1 AS BLOB)) > 0 \
                 AND instr(data, CAST('Alpine:v3.4' AS BLOB)) > 0 \
                 AND instr(data, CAST('musl' AS BLOB)) > 0",
            )
            .unwrap();
        stmt.query_map([&id], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert!(!records.is_empty());
    for record in &records {
        let at = bytes
            .windows(record.len())
            .position(|w| w == record.as_slice())
            .expect("small records sit whole in one page");
        bytes[at + record.len() / 2] ^= 0x01;
    }
    let damaged = dir.path().join("damaged.db");
    std::fs::write(&damaged, &bytes).unwrap();

    // Opening reads no record, so it succeeds; the damage surfaces on the read.
    let store = AdvisoryStore::open(&damaged).expect("header and meta are intact");
    assert!(want_len(&db, &query) > 0);
    let err = store
        .matches(&query)
        .expect_err("the damaged record is read");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("damaged.db") && text.contains("record") && text.contains("checksum"),
        "{text}"
    );
    // Once damage is seen the store vouches for no ecosystem.
    assert!(!store.has_ecosystem("Alpine:v3.4"));
    // The full check finds it too, from a fresh open.
    let fresh = AdvisoryStore::open(&damaged).unwrap();
    let err = fresh.verify().expect_err("verify reads every record");
    assert!(err.to_string().contains("damaged.db"), "{err}");
}

/// A flipped bit in a package's `packages` row (its entries) is reported
/// when a query reads the row, naming the file and the row; other packages
/// still answer until then, and none after.
#[test]
fn a_damaged_package_row_is_reported_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _, path) = build(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    // musl's row in v3.4: a row's text (ecosystem, then name) ends its blob.
    let row: Vec<u8> = {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let text = "Alpine:v3.4musl";
        conn.query_row(
            "SELECT data FROM packages WHERE substr(data, length(data) - ?2 + 1) = CAST(?1 AS BLOB)",
            rusqlite::params![text, text.len() as i64],
            |row| row.get(0),
        )
        .unwrap()
    };
    let at = bytes
        .windows(row.len())
        .position(|w| w == row.as_slice())
        .expect("the row sits whole in one page");
    // A byte of its entries (not of its name: then the row would merely
    // not be musl's).
    bytes[at + 8] ^= 0x01;
    let damaged = dir.path().join("damaged.db");
    std::fs::write(&damaged, &bytes).unwrap();

    let store = AdvisoryStore::open(&damaged).unwrap();
    let openssl = PackageQuery {
        ecosystem: "Alpine:v3.4",
        name: "openssl",
        version: "1.0.2a-r0",
    };
    assert_eq!(
        store.matches(&openssl).unwrap().len(),
        want_len(&db, &openssl)
    );
    let musl = PackageQuery {
        ecosystem: "Alpine:v3.4",
        name: "musl",
        version: "1.1.0-r0",
    };
    let err = store.matches(&musl).expect_err("the damaged row is read");
    let text = err.to_string();
    assert!(
        matches!(err, StoreError::Corrupt { .. })
            && text.contains("damaged.db")
            && text.contains("packages row")
            && text.contains("musl")
            && text.contains("checksum"),
        "{text}"
    );
    assert!(!store.has_ecosystem("Alpine:v3.4"));
    let err = AdvisoryStore::open(&damaged)
        .unwrap()
        .verify()
        .expect_err("verify reads every row");
    assert!(err.to_string().contains("packages row"), "{err}");
}

/// Packages are found by an integer key derived from their name; the row of
/// another package filed under the queried one's key (a hash collision,
/// forced here) is not taken for the queried package's, and `verify` reports
/// a key that does not match its package. (A row holding both colliding
/// packages is tested in the store's unit tests.)
#[test]
fn colliding_package_keys_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _, path) = build(dir.path());
    let musl = PackageQuery {
        ecosystem: "Alpine:v3.4",
        name: "musl",
        version: "1.1.0-r0",
    };
    let openssl = PackageQuery {
        ecosystem: "Alpine:v3.4",
        name: "openssl",
        version: "1.0.2a-r0",
    };
    assert!(!db.matches(&musl).unwrap().is_empty());
    assert!(!db.matches(&openssl).unwrap().is_empty());
    // A copy whose openssl row carries musl's key (and musl's row is gone).
    // A row's text (ecosystem, then name) ends its blob.
    let forced = dir.path().join("forced.db");
    std::fs::copy(&path, &forced).unwrap();
    {
        let conn = rusqlite::Connection::open(&forced).unwrap();
        let key_of = |text: &str| -> i64 {
            conn.query_row(
                "SELECT key FROM packages WHERE substr(data, length(data) - ?2 + 1) = CAST(?1 AS BLOB)",
                rusqlite::params![text, text.len() as i64],
                |row| row.get(0),
            )
            .unwrap()
        };
        let (musl_key, openssl_key) = (key_of("Alpine:v3.4musl"), key_of("Alpine:v3.4openssl"));
        conn.execute("DELETE FROM packages WHERE key = ?1", [musl_key])
            .unwrap();
        let changed = conn
            .execute(
                "UPDATE packages SET key = ?1 WHERE key = ?2",
                [musl_key, openssl_key],
            )
            .unwrap();
        assert_eq!(changed, 1);
    }
    let store = AdvisoryStore::open(&forced).unwrap();
    assert!(store.matches(&musl).unwrap().is_empty());
    let err = store.verify().expect_err("the moved row is found out");
    assert!(err.to_string().contains("key does not match"), "{err}");
}

/// Language records whose names are written in other forms than installed
/// packages use (`Django_REST.framework` on PyPI, `Newtonsoft.Json` on NuGet,
/// `Monolog/Monolog` on Packagist): the compiled store files them under each
/// ecosystem's canonical name, as the in-memory database does, and answers
/// both the same for every spelling.
#[test]
fn language_names_meet_in_their_canonical_form() {
    let dir = tempfile::tempdir().unwrap();
    let osv = dir.path().join("osv");
    std::fs::create_dir(&osv).unwrap();
    for (id, ecosystem, name, fixed) in [
        ("TEST-PYPI-1", "PyPI", "Django_REST.framework", "3.15.2"),
        ("TEST-NUGET-1", "NuGet", "Newtonsoft.Json", "13.0.1"),
        ("TEST-COMPOSER-1", "Packagist", "Monolog/Monolog", "2.10.0"),
        ("TEST-NPM-1", "npm", "@Scope/Name", "2.0.0"),
    ] {
        let record = serde_json::json!({
            "id": id, "modified": "2026-11-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": ecosystem, "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]
        });
        std::fs::write(osv.join(format!("{id}.json")), record.to_string()).unwrap();
    }
    let feeds = FeedPaths {
        osv_dirs: vec![osv.clone()],
        ..FeedPaths::default()
    };
    let none: &[PathBuf] = &[];
    let (db, _) = AdvisoryDb::from_paths(&[osv], none, none).unwrap();
    let out = dir.path().join("trawl.db");
    AdvisoryStore::build(&feeds, &out).unwrap();
    let store = AdvisoryStore::open(&out).unwrap();
    for (ecosystem, name, version, hits) in [
        ("PyPI", "djangorestframework", "3.14.0", 0),
        ("PyPI", "django-rest-framework", "3.14.0", 1),
        ("PyPI", "Django_Rest.Framework", "3.14.0", 1),
        ("PyPI", "django-rest-framework", "3.15.2", 0),
        ("NuGet", "newtonsoft.json", "12.0.3", 1),
        ("NuGet", "NEWTONSOFT.JSON", "12.0.3", 1),
        ("Packagist", "monolog/monolog", "2.9.0", 1),
        // npm names are case-sensitive: a different package.
        ("npm", "@scope/name", "1.0.0", 0),
        ("npm", "@Scope/Name", "1.0.0", 1),
    ] {
        let query = PackageQuery {
            ecosystem,
            name,
            version,
        };
        assert_eq!(
            assert_same_answer(&db, &store, &query),
            hits,
            "{ecosystem} {name} {version}"
        );
    }
}
