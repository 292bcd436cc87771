//! Range semantics, one small record per case.

use serde_json::json;
use trawl_advisory::{
    Advisory, AdvisoryDb, FeedWarning, PackageQuery, QueryError, RecordRef, VersionScheme,
    WarningReason,
};

fn record(id: &str, ecosystem: &str, name: &str, affected: serde_json::Value) -> Advisory {
    let mut entry = affected;
    entry["package"] = json!({"ecosystem": ecosystem, "name": name});
    serde_json::from_value(
        json!({"id": id, "modified": "2024-01-01T00:00:00Z", "affected": [entry]}),
    )
    .expect("valid record")
}

fn events(events: serde_json::Value) -> serde_json::Value {
    json!({"ranges": [{"type": "ECOSYSTEM", "events": events}]})
}

/// `None`: not affected. `Some(fix)`: affected, with that fix (`None` = no fix).
fn check(db: &AdvisoryDb, ecosystem: &str, name: &str, version: &str) -> Option<Option<String>> {
    let query = PackageQuery {
        ecosystem,
        name,
        version,
    };
    let found = db.matches(&query).expect("valid query");
    assert!(found.len() <= 1, "{found:#?}");
    found.into_iter().next().map(|m| m.fixed_version)
}

fn db_with(records: impl IntoIterator<Item = Advisory>) -> AdvisoryDb {
    let mut db = AdvisoryDb::new();
    for r in records {
        let warnings = db.add_osv(r);
        assert!(warnings.is_empty(), "{warnings:#?}");
    }
    db
}

#[test]
fn range_semantics_table() {
    let fixed = |v: &str| Some(Some(v.to_owned()));
    let unfixed = Some(None);
    // (description, affected entry, installed version, expected)
    let cases: Vec<(&str, serde_json::Value, &str, Option<Option<String>>)> = vec![
        (
            "below fixed",
            events(json!([{"introduced": "0"}, {"fixed": "1.2-3"}])),
            "1.2-2",
            fixed("1.2-3"),
        ),
        (
            "equal to fixed",
            events(json!([{"introduced": "0"}, {"fixed": "1.2-3"}])),
            "1.2-3",
            None,
        ),
        (
            "dpkg-equal to fixed",
            events(json!([{"introduced": "0"}, {"fixed": "1.2-3"}])),
            "0:1.02-3",
            None,
        ),
        (
            "above fixed",
            events(json!([{"introduced": "0"}, {"fixed": "1.2-3"}])),
            "1.2-3+deb12u1",
            None,
        ),
        (
            "tilde sorts before the fix",
            events(json!([{"introduced": "0"}, {"fixed": "3.0.11-1"}])),
            "3.0.11-1~deb12u1",
            fixed("3.0.11-1"),
        ),
        (
            "epoch beats a higher upstream",
            events(json!([{"introduced": "0"}, {"fixed": "1:1.2.13.dfsg-1"}])),
            "1.3-1",
            fixed("1:1.2.13.dfsg-1"),
        ),
        (
            "introduced later than installed",
            events(json!([{"introduced": "2.0"}, {"fixed": "2.5"}])),
            "1.9",
            None,
        ),
        (
            "equal to introduced",
            events(json!([{"introduced": "2.0"}, {"fixed": "2.5"}])),
            "2.0",
            fixed("2.5"),
        ),
        (
            "no closing event",
            events(json!([{"introduced": "0"}])),
            "99:9",
            unfixed.clone(),
        ),
        (
            "last_affected equal",
            events(json!([{"introduced": "0"}, {"last_affected": "1.4-1"}])),
            "1.4-1",
            unfixed.clone(),
        ),
        (
            "above last_affected",
            events(json!([{"introduced": "0"}, {"last_affected": "1.4-1"}])),
            "1.4-1+b1",
            None,
        ),
        (
            "first interval",
            events(
                json!([{"introduced": "1.0"}, {"fixed": "1.5"}, {"introduced": "2.0"}, {"fixed": "2.5"}]),
            ),
            "1.2",
            fixed("1.5"),
        ),
        (
            "between intervals",
            events(
                json!([{"introduced": "1.0"}, {"fixed": "1.5"}, {"introduced": "2.0"}, {"fixed": "2.5"}]),
            ),
            "1.7",
            None,
        ),
        (
            "second interval, events unsorted",
            events(
                json!([{"fixed": "2.5"}, {"introduced": "2.0"}, {"fixed": "1.5"}, {"introduced": "1.0"}]),
            ),
            "2.1",
            fixed("2.5"),
        ),
        (
            "after both intervals",
            events(
                json!([{"introduced": "1.0"}, {"fixed": "1.5"}, {"introduced": "2.0"}, {"fixed": "2.5"}]),
            ),
            "3",
            None,
        ),
        (
            "below limit",
            events(json!([{"introduced": "0"}, {"limit": "2.0"}])),
            "1.9",
            unfixed.clone(),
        ),
        (
            "at limit",
            events(json!([{"introduced": "0"}, {"limit": "2.0"}])),
            "2.0",
            None,
        ),
        (
            "limit * is no limit",
            events(json!([{"introduced": "0"}, {"limit": "*"}])),
            "2.0",
            unfixed.clone(),
        ),
        (
            "versions list only",
            json!({"versions": ["1.0-1", "1.0-2"]}),
            "1.0-2",
            unfixed.clone(),
        ),
        (
            "versions list, dpkg-equal",
            json!({"versions": ["1.0-1"]}),
            "1.00-1",
            unfixed.clone(),
        ),
        (
            "versions list, not listed",
            json!({"versions": ["1.0-1"]}),
            "1.0-3",
            None,
        ),
        (
            "range says fixed, versions list says affected",
            json!({"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0"}]}], "versions": ["1.5"]}),
            "1.5",
            unfixed.clone(),
        ),
        (
            "two ranges: the later fix applies",
            json!({"ranges": [
                {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2"}]},
                {"type": "ECOSYSTEM", "events": [{"introduced": "1"}, {"fixed": "3"}]}]}),
            "1.5",
            fixed("3"),
        ),
        (
            "two ranges: one unfixed means no fix",
            json!({"ranges": [
                {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2"}]},
                {"type": "ECOSYSTEM", "events": [{"introduced": "1"}]}]}),
            "1.5",
            unfixed.clone(),
        ),
    ];
    for (what, affected, installed, want) in cases {
        let db = db_with([record("DSA-1-1", "Debian:12", "pkg", affected)]);
        assert_eq!(check(&db, "Debian:12", "pkg", installed), want, "{what}");
    }
}

#[test]
fn git_ranges_are_skipped_with_a_counted_warning() {
    let mut db = AdvisoryDb::new();
    let warnings = db.add_osv(record(
        "DSA-1-1",
        "Debian:12",
        "pkg",
        json!({"ranges": [
            {"type": "GIT", "repo": "https://example.invalid/x.git", "events": [{"introduced": "0"}]},
            {"type": "GIT", "events": [{"introduced": "abc"}, {"fixed": "def"}]},
            {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2"}]}]}),
    ));
    assert_eq!(
        warnings.iter().map(|w| &w.reason).collect::<Vec<_>>(),
        [
            &WarningReason::GitRange {
                package: "pkg".into(),
                repo: Some("https://example.invalid/x.git".into())
            },
            &WarningReason::GitRange {
                package: "pkg".into(),
                repo: None
            },
        ]
    );
    assert_eq!(trawl_advisory::WarningSummary::of(&warnings).git_ranges, 2);
    // The GIT ranges match nothing; the ECOSYSTEM range still does.
    assert_eq!(
        check(&db, "Debian:12", "pkg", "1.0"),
        Some(Some("2".into()))
    );
    assert_eq!(check(&db, "Debian:12", "pkg", "2"), None);
}

#[test]
fn withdrawn_records_are_ignored() {
    let mut r = record(
        "DSA-2-1",
        "Debian:12",
        "pkg",
        events(json!([{"introduced": "0"}])),
    );
    r.withdrawn = Some("2024-02-01T00:00:00Z".into());
    let db = db_with([r]);
    assert_eq!(db.len(), 0);
    assert_eq!(check(&db, "Debian:12", "pkg", "1.0"), None);
}

#[test]
fn ecosystems_and_names_must_match() {
    let open = || events(json!([{"introduced": "0"}]));
    let db = db_with([
        record("DSA-3-1", "Debian:11", "openssl", open()),
        record("DSA-4-1", "Debian:12.5", "curl", open()),
        record("DSA-5-1", "Debian", "bash", open()),
        record("DSA-6-1", "Debian:12", "openssl", open()),
    ]);
    // Other release.
    assert_eq!(
        check(&db, "Debian:12", "curl", "1"),
        Some(None),
        "12.5 is release 12"
    );
    assert_eq!(check(&db, "Debian:13", "curl", "1"), None);
    // Binary vs source: advisories name the source package.
    assert_eq!(check(&db, "Debian:12", "libssl3", "3.0.11-1"), None);
    let found = db
        .matches(&PackageQuery {
            ecosystem: "Debian:12",
            name: "openssl",
            version: "3.0.11-1",
        })
        .expect("valid");
    let ids: Vec<&str> = found.iter().map(|m| m.advisory.id.as_str()).collect();
    assert_eq!(ids, ["DSA-6-1"], "the Debian:11 record does not apply");
    // A release-less record applies to every release.
    assert_eq!(check(&db, "Debian:12", "bash", "5.2-2"), Some(None));
    // Ubuntu uses the same scheme but is another ecosystem.
    assert_eq!(
        check(&db, "Ubuntu:22.04:LTS", "openssl", "3.0.2-0ubuntu1"),
        None
    );
}

#[test]
fn query_errors() {
    let mut db = AdvisoryDb::new();
    db.add_osv(record(
        "HSEC-xxxx",
        "Hackage",
        "aeson",
        events(json!([{"introduced": "0"}, {"fixed": "2.0.1.0"}])),
    ));
    assert_eq!(db.len(), 1, "records of scheme-less ecosystems are kept");
    let err = db
        .matches(&PackageQuery {
            ecosystem: "Hackage",
            name: "aeson",
            version: "2.0.0.0",
        })
        .expect_err("no Hackage scheme");
    assert_eq!(
        err,
        QueryError::UnsupportedEcosystem {
            ecosystem: "Hackage".into()
        }
    );

    let err = db
        .matches(&PackageQuery {
            ecosystem: "Debian:12",
            name: "bash",
            version: "1.0-",
        })
        .expect_err("invalid version");
    assert!(matches!(err, QueryError::InvalidVersion { .. }));
    assert_eq!(
        err.to_string(),
        "package bash in Debian:12: invalid version \"1.0-\": revision number is empty"
    );
    assert_eq!(
        VersionScheme::for_ecosystem("Ubuntu:Pro:18.04:LTS"),
        Some(VersionScheme::Dpkg)
    );
}

#[test]
fn unusable_ranges_are_warned_about_and_skipped() {
    let affected = json!({"ranges": [
        {"type": "CALVER", "events": [{"introduced": "0"}, {"fixed": "1.0.0"}]},
        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "bad version"}]},
        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}
    ]});
    let mut db = AdvisoryDb::new();
    let warnings = db.add_osv(record("DSA-7-1", "Debian:12", "pkg", affected));
    let reasons: Vec<&WarningReason> = warnings.iter().map(|w| &w.reason).collect();
    assert!(
        matches!(
            reasons[..],
            [
                WarningReason::UnsupportedRangeType { .. },
                WarningReason::InvalidVersion { .. }
            ]
        ),
        "{warnings:#?}"
    );
    assert!(
        warnings
            .iter()
            .all(|w: &FeedWarning| w.record == Some(RecordRef::Id("DSA-7-1".into())))
    );
    assert_eq!(
        warnings[1].to_string(),
        "record DSA-7-1: package pkg: invalid version \"bad version\": version string has embedded spaces"
    );
    // The usable range still works.
    assert_eq!(
        check(&db, "Debian:12", "pkg", "1.5"),
        Some(Some("2.0".into()))
    );
}

#[test]
fn newer_copy_of_a_record_replaces_the_older() {
    let mut db = AdvisoryDb::new();
    let old = record(
        "DSA-8-1",
        "Debian:12",
        "pkg",
        events(json!([{"introduced": "0"}, {"fixed": "1.0"}])),
    );
    let mut new = record(
        "DSA-8-1",
        "Debian:12",
        "pkg",
        events(json!([{"introduced": "0"}, {"fixed": "2.0"}])),
    );
    new.modified = Some("2024-06-01T00:00:00Z".into());
    db.add_osv(new.clone());
    db.add_osv(old.clone()); // older: ignored
    assert_eq!(
        check(&db, "Debian:12", "pkg", "1.5"),
        Some(Some("2.0".into()))
    );
    assert_eq!(db.len(), 1);

    let mut withdrawn = new.clone();
    withdrawn.modified = Some("2024-07-01T00:00:00Z".into());
    withdrawn.withdrawn = withdrawn.modified.clone();
    db.add_osv(withdrawn);
    db.add_osv(new); // older than the withdrawal: stays withdrawn
    assert_eq!(db.len(), 0);
    assert_eq!(check(&db, "Debian:12", "pkg", "1.5"), None);
}

#[test]
fn every_scheme_evaluates_its_ecosystems() {
    let fixed = |v: &str| Some(Some(v.to_owned()));
    let db = db_with([
        record(
            "RLSA-2024:0001",
            "Rocky Linux:9",
            "openssl",
            events(json!([{"introduced": "0"}, {"fixed": "1:3.0.7-25.el9_3"}])),
        ),
        record(
            "ALPINE-1",
            "Alpine:v3.18",
            "openssl",
            events(json!([{"introduced": "0"}, {"fixed": "3.1.4-r1"}])),
        ),
        record(
            "RUSTSEC-2024-0001",
            "crates.io",
            "tokio",
            json!({"ranges": [{"type": "SEMVER", "events": [{"introduced": "1.0.0"}, {"fixed": "1.18.4"}]}]}),
        ),
        // A SEMVER range inside a distro record is evaluated under SemVer.
        record(
            "DSA-9-1",
            "Debian:12",
            "node",
            json!({"ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "18.19.1"}]}]}),
        ),
    ]);
    // rpm: a missing epoch is 0, so the epoch-1 fix is above 3.0.7-27 too.
    assert_eq!(
        check(&db, "Rocky Linux:9.3", "openssl", "3.0.7-27.el9"),
        fixed("1:3.0.7-25.el9_3")
    );
    assert_eq!(
        check(&db, "Rocky Linux:9", "openssl", "1:3.0.7-25.el9_3"),
        None
    );
    assert_eq!(
        check(&db, "Rocky Linux:9", "openssl", "1:3.0.7-24.el9"),
        fixed("1:3.0.7-25.el9_3")
    );
    // apk: revisions and pre-release suffixes.
    assert_eq!(
        check(&db, "Alpine:3.18.4", "openssl", "3.1.4-r0"),
        fixed("3.1.4-r1")
    );
    assert_eq!(check(&db, "Alpine:v3.18", "openssl", "3.1.4-r1"), None);
    assert_eq!(
        check(&db, "Alpine:v3.18", "openssl", "3.1.4_rc1-r5"),
        fixed("3.1.4-r1")
    );
    assert_eq!(check(&db, "Alpine:v3.17", "openssl", "3.0.0-r0"), None);
    // semver.
    assert_eq!(check(&db, "crates.io", "tokio", "1.18.3"), fixed("1.18.4"));
    assert_eq!(check(&db, "crates.io", "tokio", "1.18.4+build"), None);
    assert_eq!(check(&db, "crates.io", "tokio", "0.2.0"), None);
    assert_eq!(check(&db, "Debian:12", "node", "18.19.0"), fixed("18.19.1"));
    // A dpkg version that is not semver cannot be in a SEMVER range.
    assert_eq!(
        check(&db, "Debian:12", "node", "18.19.0+dfsg-6~deb12u1"),
        None
    );
}

#[test]
fn unknown_ecosystems_are_warned_about() {
    let mut db = AdvisoryDb::new();
    let warnings = db.add_osv(record(
        "XYZ-1",
        "Plan 9",
        "rc",
        events(json!([{"introduced": "0"}])),
    ));
    assert_eq!(
        warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["record XYZ-1: package rc: no version scheme for ecosystem \"Plan 9\"; it cannot match"]
    );
    assert_eq!(db.len(), 1);
}

#[test]
fn vendor_statements_set_the_fix_state() {
    use trawl_advisory::{FixState, VendorStatement, VendorStatus};
    let with_vendor = |id: &str, status, affected: serde_json::Value| {
        let mut r = record(id, "Debian:12", "pkg", affected);
        r.affected[0].vendor = Some(VendorStatement {
            status,
            severity: Some("low".into()),
            note: None,
        });
        r
    };
    let mut osv = record(
        "DEBIAN-CVE-2024-1",
        "Debian:12",
        "pkg",
        events(json!([{"introduced": "0"}])),
    );
    osv.upstream = vec!["CVE-2024-1".into()];
    let db = db_with([
        with_vendor(
            "CVE-2024-2",
            Some(VendorStatus::WillNotFix),
            events(json!([{"introduced": "0"}])),
        ),
        with_vendor(
            "CVE-2024-3",
            Some(VendorStatus::WillNotFix),
            events(json!([{"introduced": "0"}, {"fixed": "2.0"}])),
        ),
        // Says "not affected" for CVE-2024-1: the OSV record naming it upstream
        // is suppressed.
        with_vendor("CVE-2024-1", Some(VendorStatus::NotAffected), json!({})),
        osv,
    ]);
    let query = PackageQuery {
        ecosystem: "Debian:12",
        name: "pkg",
        version: "1.0",
    };
    let states = |found: Vec<trawl_advisory::AdvisoryMatch<'_>>| {
        found
            .into_iter()
            .map(|m| (m.advisory.id.clone(), m.fix_state))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        states(db.matches(&query).expect("valid")),
        [
            ("CVE-2024-2".to_owned(), FixState::WillNotFix),
            ("CVE-2024-3".to_owned(), FixState::Fixed("2.0".into())),
        ]
    );
    assert_eq!(
        states(db.assess(&query).expect("valid")),
        [
            ("CVE-2024-1".to_owned(), FixState::NotAffected),
            ("CVE-2024-2".to_owned(), FixState::WillNotFix),
            ("CVE-2024-3".to_owned(), FixState::Fixed("2.0".into())),
            ("DEBIAN-CVE-2024-1".to_owned(), FixState::Unfixed),
        ]
    );
    // Fix states serialise in snake case.
    assert_eq!(
        serde_json::to_string(&[FixState::Fixed("2.0".into()), FixState::WillNotFix])
            .expect("serialises"),
        r#"[{"fixed":"2.0"},"will_not_fix"]"#
    );
}
