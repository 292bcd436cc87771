//! Ranges of the PyPI, npm, Go and crates.io ecosystems evaluated under their own
//! version schemes, the same in memory and in the compiled store: PEP 440
//! spellings, npm's `v`, Go's SEMVER ranges written without `v` against installed
//! `v` versions, pseudo-versions and Go release tags for `stdlib`; versions a
//! scheme refuses are query errors or feed warnings, never silent answers.

use std::path::PathBuf;

use serde_json::json;
use trawl_advisory::{
    AdvisoryDb, AdvisoryStore, FeedPaths, InvalidVersion, PackageQuery, QueryError, StoreError,
    WarningReason,
};

fn record(id: &str, ecosystem: &str, name: &str, kind: &str, events: serde_json::Value) -> String {
    json!({
        "id": id,
        "modified": "2024-01-01T00:00:00Z",
        "affected": [{
            "package": {"ecosystem": ecosystem, "name": name},
            "ranges": [{"type": kind, "events": events}],
        }],
    })
    .to_string()
}

fn records() -> Vec<(&'static str, String)> {
    vec![
        (
            "PYSEC-1",
            record(
                "PYSEC-1",
                "PyPI",
                "requests",
                "ECOSYSTEM",
                json!([{"introduced": "2.3.0"}, {"fixed": "2.31.0"}]),
            ),
        ),
        (
            // A legacy (non-PEP 440) bound: the range is dropped with a warning.
            "PYSEC-2",
            record(
                "PYSEC-2",
                "PyPI",
                "legacy",
                "ECOSYSTEM",
                json!([{"introduced": "0"}, {"fixed": "0.1dev-r1234"}]),
            ),
        ),
        (
            "GHSA-npm",
            record(
                "GHSA-npm",
                "npm",
                "lodash",
                "SEMVER",
                json!([{"introduced": "0"}, {"fixed": "4.17.21"}]),
            ),
        ),
        (
            "GO-x-net",
            record(
                "GO-x-net",
                "Go",
                "golang.org/x/net",
                "SEMVER",
                json!([{"introduced": "0"}, {"fixed": "0.17.0"}]),
            ),
        ),
        (
            "GO-stdlib",
            record(
                "GO-stdlib",
                "Go",
                "stdlib",
                "SEMVER",
                json!([
                    {"introduced": "0"}, {"fixed": "1.20.8"},
                    {"introduced": "1.21.0-0"}, {"fixed": "1.21.1"}
                ]),
            ),
        ),
        (
            "RUSTSEC-1",
            record(
                "RUSTSEC-1",
                "crates.io",
                "smallvec",
                "SEMVER",
                json!([{"introduced": "0.6.3"}, {"fixed": "1.6.1"}]),
            ),
        ),
    ]
}

/// `Ok(None)`: not affected; `Ok(Some(fix))`: affected (fix `""` = none);
/// `Err(())`: the installed version is refused.
type Answer<'a> = Result<Option<&'a str>, ()>;

#[test]
fn language_ranges_in_memory_and_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("osv");
    std::fs::create_dir(&feed).unwrap();
    for (id, text) in records() {
        std::fs::write(feed.join(format!("{id}.json")), text).unwrap();
    }
    let (db, warnings) =
        AdvisoryDb::from_paths(&[&feed], &[] as &[PathBuf], &[] as &[PathBuf]).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(
        matches!(
            &warnings[0].reason,
            WarningReason::InvalidVersion { package, error }
                if package == "legacy" && matches!(error.reason, InvalidVersion::Pep440(_))
        ),
        "{warnings:#?}"
    );
    let store_path = dir.path().join("trawl.db");
    let feeds = FeedPaths {
        osv_dirs: vec![feed],
        secdb_paths: vec![],
        debian_tracker_files: vec![],
        ghsa_paths: vec![],
    };
    let (_, store_warnings) = AdvisoryStore::build(&feeds, &store_path).unwrap();
    assert_eq!(store_warnings, warnings);
    let store = AdvisoryStore::open(&store_path).unwrap();

    let cases: &[(&str, &str, &str, Answer<'static>)] = &[
        ("PyPI", "requests", "2.30.0", Ok(Some("2.31.0"))),
        ("PyPI", "requests", "2.31.0", Ok(None)),
        ("PyPI", "requests", "2.31.0RC1", Ok(Some("2.31.0"))),
        ("PyPI", "requests", "2.31.dev0", Ok(Some("2.31.0"))),
        ("PyPI", "requests", "2.31.0.post1", Ok(None)),
        ("PyPI", "requests", "2.31.0+ubuntu1", Ok(None)),
        ("PyPI", "requests", "2.3", Ok(Some("2.31.0"))),
        ("PyPI", "requests", "2.3.0rc1", Ok(None)),
        ("PyPI", "requests", " v2.30-1 ", Ok(Some("2.31.0"))),
        ("PyPI", "requests", "2.30.0-final", Err(())),
        ("PyPI", "legacy", "0.0.1", Ok(None)),
        ("npm", "lodash", "4.17.15", Ok(Some("4.17.21"))),
        ("npm", "lodash", "4.17.21", Ok(None)),
        ("npm", "lodash", "4.17.21-beta.1", Ok(Some("4.17.21"))),
        ("npm", "lodash", "v4.17.20", Ok(Some("4.17.21"))),
        ("npm", "lodash", "4.17.21+build", Ok(None)),
        ("npm", "lodash", "=4.17.20", Err(())),
        ("Go", "golang.org/x/net", "v0.16.0", Ok(Some("0.17.0"))),
        ("Go", "golang.org/x/net", "0.16.0", Ok(Some("0.17.0"))),
        ("Go", "golang.org/x/net", "v0.17.0", Ok(None)),
        (
            "Go",
            "golang.org/x/net",
            "v0.0.0-20191109021931-daa7c04131f5",
            Ok(Some("0.17.0")),
        ),
        (
            "Go",
            "golang.org/x/net",
            "v0.17.1-0.20231010203028-eb2b8c3e8b8e",
            Ok(None),
        ),
        ("Go", "golang.org/x/net", "v0.16", Ok(Some("0.17.0"))),
        ("Go", "golang.org/x/net", "v0.16.0.1", Err(())),
        ("Go", "stdlib", "go1.20.7", Ok(Some("1.20.8"))),
        ("Go", "stdlib", "go1.20.8", Ok(None)),
        ("Go", "stdlib", "go1.21rc2", Ok(Some("1.21.1"))),
        ("Go", "stdlib", "go1.21.0", Ok(Some("1.21.1"))),
        ("Go", "stdlib", "go1.21.1 X:boringcrypto", Ok(None)),
        ("Go", "stdlib", "go1", Ok(Some("1.20.8"))),
        ("Go", "stdlib", "devel go1.22-abcdef", Err(())),
        ("crates.io", "smallvec", "1.6.0", Ok(Some("1.6.1"))),
        ("crates.io", "smallvec", "1.6.1+meta", Ok(None)),
        ("crates.io", "smallvec", "0.6.2", Ok(None)),
    ];
    for &(ecosystem, name, version, want) in cases {
        let query = PackageQuery {
            ecosystem,
            name,
            version,
        };
        let got = db.matches(&query);
        let answer: Answer<'_> = match &got {
            Ok(found) => Ok(found
                .first()
                .map(|m| m.fixed_version.as_deref().unwrap_or(""))),
            Err(QueryError::InvalidVersion { source, .. }) => {
                assert_eq!(source.version, version);
                Err(())
            }
            Err(other) => panic!("{query:?}: {other}"),
        };
        assert_eq!(answer, want, "{query:?}");
        let from_store = store.matches(&query);
        match (&got, &from_store) {
            (Ok(a), Ok(b)) => assert_eq!(
                serde_json::to_value(a).unwrap(),
                serde_json::to_value(b).unwrap(),
                "{query:?}"
            ),
            (Err(a), Err(StoreError::Query(b))) => assert_eq!(a, b, "{query:?}"),
            _ => panic!("{query:?}: in memory {got:?}, store {from_store:?}"),
        }
    }
}
