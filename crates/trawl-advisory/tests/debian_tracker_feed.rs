//! The Debian security tracker JSON: fix states per release, and bad entries.

use std::path::{Path, PathBuf};

use trawl_advisory::{AdvisoryDb, FixState, PackageQuery, debian_tracker};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/debian-tracker")
        .join(name)
}

/// (id, fix state, vendor severity) of every statement about the package.
fn assess(
    db: &AdvisoryDb,
    ecosystem: &str,
    name: &str,
    version: &str,
) -> Vec<(String, FixState, Option<String>)> {
    db.assess(&PackageQuery {
        ecosystem,
        name,
        version,
    })
    .expect("valid query")
    .into_iter()
    .map(|m| {
        (
            m.advisory.id.clone(),
            m.fix_state,
            m.vendor_severity.clone(),
        )
    })
    .collect()
}

fn s(x: &str) -> Option<String> {
    Some(x.to_owned())
}

#[test]
fn fix_states_per_release() {
    let mut db = AdvisoryDb::new();
    let warnings = db
        .add_debian_tracker(fixture("tracker.json"))
        .expect("readable");
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert_eq!(db.len(), 5, "one record per (package, issue)");

    // Resolved with a version: affected below it, not at it.
    assert_eq!(
        assess(&db, "Debian:12", "glibc", "2.36-9+deb12u1"),
        [
            (
                "CVE-2019-1010022".into(),
                FixState::Unfixed,
                s("unimportant")
            ),
            (
                "CVE-2023-4911".into(),
                FixState::Fixed("2.36-9+deb12u3".into()),
                s("not yet assigned")
            ),
        ]
    );
    assert_eq!(
        assess(&db, "Debian:12.5", "glibc", "2.36-9+deb12u3"),
        [(
            "CVE-2019-1010022".into(),
            FixState::Unfixed,
            s("unimportant")
        )]
    );
    // fixed_version "0": not affected; it suppresses, never matches.
    assert_eq!(
        assess(&db, "Debian:11", "glibc", "2.31-13+deb11u10"),
        [
            (
                "CVE-2019-1010022".into(),
                FixState::Unfixed,
                s("unimportant")
            ),
            (
                "CVE-2023-4911".into(),
                FixState::NotAffected,
                s("not yet assigned")
            ),
        ]
    );
    let matches = db
        .matches(&PackageQuery {
            ecosystem: "Debian:11",
            name: "glibc",
            version: "2.31-13+deb11u10",
        })
        .expect("valid");
    let ids: Vec<&str> = matches.iter().map(|m| m.advisory.id.as_str()).collect();
    assert_eq!(ids, ["CVE-2019-1010022"]);

    // trixie is Debian 13; sid is skipped.
    assert_eq!(
        assess(&db, "Debian:13", "glibc", "2.37-11"),
        [(
            "CVE-2023-4911".into(),
            FixState::Fixed("2.37-12".into()),
            s("not yet assigned")
        )]
    );
    assert!(!db.has_ecosystem("Debian:sid"));

    // open + nodsa_reason ignored / no-dsa / postponed / end-of-life.
    let zlib = |eco, version| assess(&db, eco, "zlib", version);
    assert_eq!(
        zlib("Debian:12", "1:1.2.13.dfsg-1"),
        [("CVE-2023-45853".into(), FixState::WillNotFix, s("low"))]
    );
    assert_eq!(
        zlib("Debian:11", "1:1.2.11.dfsg-2+deb11u2"),
        [("CVE-2023-45853".into(), FixState::Unfixed, s("low"))],
        "postponed: a fix is planned"
    );
    assert_eq!(
        zlib("Debian:10", "1:1.2.11.dfsg-1+deb10u2"),
        [(
            "CVE-2023-45853".into(),
            FixState::WillNotFix,
            s("end-of-life")
        )]
    );
    let curl = |eco, version| assess(&db, eco, "curl", version);
    assert_eq!(
        curl("Debian:11", "7.74.0-1.3+deb11u14"),
        [(
            "CVE-2024-2398".into(),
            FixState::WillNotFix,
            s("not yet assigned")
        )],
        "no-dsa without a reason"
    );
    // undetermined: not known to be safe.
    assert_eq!(
        curl("Debian:12", "7.88.1-10+deb12u8"),
        [(
            "TEMP-0000000-A1B2C3".into(),
            FixState::Unfixed,
            s("not yet assigned")
        )]
    );

    // The record keeps the tracker's text and its note.
    let m = &db
        .matches(&PackageQuery {
            ecosystem: "Debian:12",
            name: "zlib",
            version: "1:1.2.13.dfsg-1",
        })
        .expect("valid")[0];
    assert_eq!(
        m.advisory.summary.as_deref(),
        Some("MiniZip in zlib through 1.3 has an integer overflow ...")
    );
    let vendor = m.affected().vendor.as_ref().expect("vendor statement");
    assert_eq!(vendor.note.as_deref(), Some("Minor issue (ignored)"));
    assert_eq!(
        m.advisory
            .database_specific
            .as_ref()
            .and_then(|d| d.get("debianbug"))
            .and_then(|b| b.as_u64()),
        Some(1_054_290)
    );
}

#[test]
fn bad_entries_are_warnings_and_the_rest_loads() {
    let path = fixture("broken.json");
    let feed = debian_tracker::load_file(&path).expect("readable");
    let p = path.display();
    let got: Vec<String> = feed.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            // Issues and releases in key order.
            format!("{p}: entry openssl CVE-2024-0001: unexpected entry: not an object"),
            format!("{p}: entry openssl CVE-2024-0002: unexpected entry: no `releases` object"),
            format!(
                "{p}: entry openssl CVE-2024-0727 bookworm-backports: unexpected entry: unknown release \"bookworm-backports\"; skipped"
            ),
            format!(
                "{p}: entry openssl CVE-2024-0727 bullseye: package openssl: invalid version \"1.1.1w-0+deb11u2 bad\": version string has embedded spaces"
            ),
            format!(
                "{p}: entry openssl CVE-2024-0727 buster: unexpected entry: unknown status \"fixed\""
            ),
            format!("{p}: entry openssl CVE-2024-0727 forky: unexpected entry: not an object"),
            format!(
                "{p}: entry openssl CVE-2024-0727 trixie: unexpected entry: `resolved` without `fixed_version`"
            ),
            format!("{p}: entry bash: unexpected entry: not an object of issues"),
            format!(
                "{p}: entry busybox CVE-2022-48174 bookworm: unexpected entry: `urgency` is not a string"
            ),
        ]
    );
    // The good release entry of the bad issue survives.
    let mut db = AdvisoryDb::new();
    db.add_converted(feed);
    assert_eq!(db.len(), 1);
    let found = db
        .matches(&PackageQuery {
            ecosystem: "Debian:12",
            name: "openssl",
            version: "3.0.11-1~deb12u2",
        })
        .expect("valid");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].fixed_version.as_deref(), Some("3.0.13-1~deb12u1"));

    // Not JSON at all, and a missing file.
    let dir = tempfile::tempdir().expect("tempdir");
    let garbage = dir.path().join("tracker.json");
    std::fs::write(&garbage, "<html>503</html>").expect("write");
    let feed = debian_tracker::load_file(&garbage).expect("readable");
    assert!(feed.records.is_empty());
    assert_eq!(feed.warnings.len(), 1);
    assert!(
        feed.warnings[0].to_string().contains("invalid JSON"),
        "{}",
        feed.warnings[0]
    );
    assert!(debian_tracker::load_file(dir.path().join("missing.json")).is_err());
}

#[test]
fn all_feeds_together() {
    let osv = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/osv/debian");
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/secdb/v3.4");
    let (db, warnings) =
        AdvisoryDb::from_paths(&[osv], &[shared], &[fixture("tracker.json")]).expect("readable");
    assert_eq!(
        warnings.len(),
        2,
        "the two bad 3.4 secdb versions: {warnings:#?}"
    );
    assert!(db.has_ecosystem("Debian:12"));
    assert!(db.has_ecosystem("Alpine:3.4.6"));
    assert!(!db.has_ecosystem("Alpine:v3.18"));
    // The OSV record and the tracker record for the same CVE both apply.
    let found = db
        .matches(&PackageQuery {
            ecosystem: "Debian:12",
            name: "glibc",
            version: "2.36-9+deb12u1",
        })
        .expect("valid");
    let ids: Vec<&str> = found.iter().map(|m| m.advisory.id.as_str()).collect();
    assert_eq!(ids, ["CVE-2019-1010022", "CVE-2023-4911", "DSA-5514-1"]);
}
