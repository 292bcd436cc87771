//! Loading the fixture feed: good records survive, bad ones become exact warnings.

use std::path::{Path, PathBuf};

use trawl_advisory::osv::{self, Event};
use trawl_advisory::{AdvisoryDb, FeedError, FeedWarning, PackageQuery, WarningReason};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/osv")
}

fn assert_fixture_warnings(warnings: &[FeedWarning]) {
    let [no_id, truncated] = warnings else {
        panic!("expected exactly two warnings, got {warnings:#?}");
    };
    assert_eq!(no_id.path, Some(fixtures().join("broken/no-id.json")));
    assert_eq!(no_id.record, None);
    match &no_id.reason {
        WarningReason::InvalidRecord { message } => {
            assert!(message.starts_with("missing field `id`"), "{message}")
        }
        other => panic!("unexpected reason {other:?}"),
    }
    assert_eq!(
        truncated.path,
        Some(fixtures().join("broken/truncated.json"))
    );
    assert_eq!(truncated.record, None);
    match &truncated.reason {
        WarningReason::InvalidJson { message } => {
            assert!(message.starts_with("EOF while parsing"), "{message}")
        }
        other => panic!("unexpected reason {other:?}"),
    }
    assert!(
        truncated
            .to_string()
            .contains("truncated.json: invalid JSON: EOF while parsing"),
        "{truncated}"
    );
}

#[test]
fn load_dir_keeps_good_records_and_warns_about_bad_ones() {
    let load = osv::load_dir(fixtures()).expect("fixture dir is readable");
    assert_fixture_warnings(&load.warnings);
    assert_eq!(load.files, 7, "README.md is not read");
    let ids: Vec<&str> = load.advisories.iter().map(|a| a.id.as_str()).collect();
    // File-name order; the array's records in array order; withdrawn ones included.
    assert_eq!(
        ids,
        [
            "DEBIAN-CVE-2024-2511",
            "DEBIAN-CVE-2024-0727",
            "DEBIAN-CVE-2023-45853",
            "DLA-3461-1",
            "DLA-3842-1",
            "DSA-5514-1",
        ]
    );
    let dsa = &load.advisories[5];
    assert_eq!(dsa.upstream, ["CVE-2023-4911"]);
    assert_eq!(dsa.affected.len(), 2);
    assert_eq!(
        dsa.affected[1].ranges[0].events,
        [
            Event::Introduced("0".into()),
            Event::Fixed("2.36-9+deb12u3".into())
        ]
    );
}

#[test]
fn load_file_reads_one_record_or_an_array() {
    let one = osv::load_file(fixtures().join("debian/DSA-5514-1.json")).expect("readable");
    assert_eq!(one.advisories.len(), 1);
    assert!(one.warnings.is_empty());
    let many = osv::load_file(fixtures().join("bulk/openssl.json")).expect("readable");
    assert_eq!(many.advisories.len(), 2);
    assert!(matches!(
        osv::load_file(fixtures().join("no/such.json")),
        Err(FeedError::ReadFile { .. })
    ));
}

#[test]
fn array_records_are_named_by_id_or_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mixed.json");
    let json = r#"[
      {"id": "DSA-1-1", "affected": []},
      {"summary": "no id"},
      {"id": "DSA-3-1", "affected": "not a list"}
    ]"#;
    std::fs::write(&path, json).expect("write");
    let load = osv::load_dir(dir.path()).expect("readable");
    assert_eq!(load.advisories.len(), 1);
    let records: Vec<String> = load
        .warnings
        .iter()
        .map(|w| {
            w.record
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(records, ["record #1", "record DSA-3-1"]);
    assert!(load.warnings.iter().all(|w| w.path.as_ref() == Some(&path)));
}

#[test]
fn unreadable_dir_is_an_error() {
    let err = osv::load_dir(fixtures().join("missing")).expect_err("no such dir");
    assert!(matches!(err, FeedError::ReadDir { .. }));
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn database_from_fixture_dir() {
    let (db, warnings) = AdvisoryDb::from_osv_dirs(&[fixtures()]).expect("readable");
    assert_fixture_warnings(&warnings);
    assert_eq!(db.len(), 5, "the withdrawn DLA-3461-1 is not indexed");
    assert!(db.get("DLA-3461-1").is_none());

    let query = PackageQuery {
        ecosystem: "Debian:12",
        name: "openssl",
        version: "3.0.11-1~deb12u2",
    };
    let found = db.matches(&query).expect("valid query");
    let got: Vec<(&str, Option<&str>)> = found
        .iter()
        .map(|m| (m.advisory.id.as_str(), m.fixed_version.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("DEBIAN-CVE-2024-0727", Some("3.0.13-1~deb12u1")),
            ("DEBIAN-CVE-2024-2511", Some("3.0.14-1~deb12u1")),
        ]
    );

    // Unfixed, listed version; the withdrawn record's fix does not show up.
    let zlib = PackageQuery {
        ecosystem: "Debian:12",
        name: "zlib",
        version: "1:1.2.13.dfsg-1",
    };
    let found = db.matches(&zlib).expect("valid query");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].advisory.id, "DEBIAN-CVE-2023-45853");
    assert_eq!(found[0].fixed_version, None);

    // The affected entry handed back is the one for the queried release.
    let glibc = PackageQuery {
        ecosystem: "Debian:11",
        name: "glibc",
        version: "2.31-13+deb11u6",
    };
    let found = db.matches(&glibc).expect("valid query");
    assert_eq!(found.len(), 1);
    let package = found[0].affected().package.as_ref().expect("has package");
    assert_eq!(package.ecosystem, "Debian:11");
    assert_eq!(found[0].fixed_version.as_deref(), Some("2.31-13+deb11u7"));
}
