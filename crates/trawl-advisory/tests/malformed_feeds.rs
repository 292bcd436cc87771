//! Malformed language feeds: ranges with events out of order, versions the
//! ecosystem cannot parse, `limit` events, empty event lists, unknown
//! ecosystems and range types, and a huge single file. Each gives a typed
//! warning (or the documented answer) and bounded work, never a panic, and
//! the in-memory database and the compiled store agree on all of it.

use std::path::Path;

use serde_json::json;
use trawl_advisory::feed::MAX_RECORD_FILE;
use trawl_advisory::{
    AdvisoryDb, AdvisoryStore, FeedPaths, PackageQuery, StoreBuilder, WarningReason, WarningSummary,
};

fn write(dir: &Path, name: &str, value: serde_json::Value) {
    std::fs::write(dir.join(name), serde_json::to_vec_pretty(&value).unwrap()).unwrap();
}

fn record(id: &str, ecosystem: &str, name: &str, ranges: serde_json::Value) -> serde_json::Value {
    json!({
        "id": id, "modified": "2024-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": ecosystem, "name": name}, "ranges": ranges}]
    })
}

/// A directory of malformed records, each about its own package.
fn feed(dir: &Path) {
    write(
        dir,
        "out-of-order.json",
        record(
            "BAD-ORDER",
            "PyPI",
            "order",
            json!([{"type": "ECOSYSTEM", "events": [{"fixed": "2.0"}, {"introduced": "1.0"}]}]),
        ),
    );
    write(
        dir,
        "bad-version.json",
        record(
            "BAD-VERSION",
            "npm",
            "badver",
            json!([
                {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "not a version!"}]},
                {"type": "ECOSYSTEM", "events": [{"introduced": "3.0.0"}, {"fixed": "3.1.0"}]}
            ]),
        ),
    );
    write(
        dir,
        "limit.json",
        record(
            "BAD-LIMIT",
            "Go",
            "example.com/limit",
            json!([{"type": "SEMVER", "events": [{"introduced": "0"}, {"limit": "1.5.0"}, {"limit": "*"}]}]),
        ),
    );
    write(
        dir,
        "empty.json",
        record(
            "BAD-EMPTY",
            "Maven",
            "org.example:empty",
            json!([{"type": "ECOSYSTEM", "events": []}, {"type": "ECOSYSTEM"}]),
        ),
    );
    write(
        dir,
        "unknown.json",
        record(
            "BAD-ECOSYSTEM",
            "Bogus:1",
            "thing",
            json!([{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]),
        ),
    );
    write(
        dir,
        "odd-range.json",
        record(
            "BAD-RANGE",
            "crates.io",
            "odd",
            json!([{"type": "CALVER", "events": [{"introduced": "0"}]}]),
        ),
    );
    write(
        dir,
        "not-a-record.json",
        json!({"id": 7, "affected": "none"}),
    );
    std::fs::write(
        dir.join("truncated.json"),
        b"{\"id\": \"BAD-TRUNC\", \"affe",
    )
    .unwrap();
    // Sparse: the size alone refuses it, nothing is read.
    let huge = std::fs::File::create(dir.join("huge.json")).unwrap();
    huge.set_len(100 << 30).unwrap();
}

fn query<'a>(ecosystem: &'a str, name: &'a str, version: &'a str) -> PackageQuery<'a> {
    PackageQuery {
        ecosystem,
        name,
        version,
    }
}

#[test]
fn malformed_records_warn_by_type_and_the_rest_still_match() {
    let dir = tempfile::tempdir().unwrap();
    let osv = dir.path().join("osv");
    std::fs::create_dir(&osv).unwrap();
    feed(&osv);

    let (db, warnings) = AdvisoryDb::from_osv_dirs(&[&osv]).expect("a readable directory");
    let reasons: Vec<&WarningReason> = warnings.iter().map(|w| &w.reason).collect();
    let count = |f: &dyn Fn(&WarningReason) -> bool| reasons.iter().filter(|r| f(r)).count();
    assert_eq!(
        count(
            &|r| matches!(r, WarningReason::FileTooLarge { size, max } if *size == 100 << 30 && *max == MAX_RECORD_FILE)
        ),
        1,
        "{warnings:#?}"
    );
    assert_eq!(
        count(
            &|r| matches!(r, WarningReason::InvalidVersion { package, .. } if package == "badver")
        ),
        1
    );
    assert_eq!(
        count(
            &|r| matches!(r, WarningReason::UnknownEcosystem { ecosystem, .. } if ecosystem == "Bogus:1")
        ),
        1
    );
    assert_eq!(
        count(
            &|r| matches!(r, WarningReason::UnsupportedRangeType { range_type, .. } if range_type == "CALVER")
        ),
        1
    );
    assert_eq!(
        count(&|r| matches!(r, WarningReason::InvalidRecord { .. })),
        1
    );
    assert_eq!(
        count(&|r| matches!(r, WarningReason::InvalidJson { .. })),
        1
    );
    assert_eq!(warnings.len(), 6, "{warnings:#?}");
    let summary = WarningSummary::of(&warnings);
    assert_eq!(summary.unknown_ecosystems.len(), 1);
    assert_eq!(summary.other, 5);

    // Events are sorted before use: [fixed 2.0, introduced 1.0] is 1.0 ≤ v < 2.0.
    let affected = |db: &AdvisoryDb, e, n, v| db.matches(&query(e, n, v)).unwrap().len();
    assert_eq!(affected(&db, "PyPI", "order", "1.5"), 1);
    assert_eq!(affected(&db, "PyPI", "order", "2.0"), 0);
    assert_eq!(affected(&db, "PyPI", "order", "0.9"), 0);
    // The unparsable range is skipped; the other range of the entry counts.
    assert_eq!(affected(&db, "npm", "badver", "1.0.0"), 0);
    assert_eq!(affected(&db, "npm", "badver", "3.0.5"), 1);
    // `limit`: nothing at or above it is affected by the range; "*" is no limit.
    assert_eq!(affected(&db, "Go", "example.com/limit", "1.4.9"), 1);
    assert_eq!(affected(&db, "Go", "example.com/limit", "1.5.0"), 0);
    // Empty (or missing) events: the range covers nothing.
    assert_eq!(affected(&db, "Maven", "org.example:empty", "1.0"), 0);
    // An unknown range type is skipped.
    assert_eq!(affected(&db, "crates.io", "odd", "1.0.0"), 0);

    // The store says the same, and warns the same.
    let out = dir.path().join("trawl.db");
    let (_, store_warnings) = AdvisoryStore::build(
        &FeedPaths {
            osv_dirs: vec![osv.clone()],
            ..FeedPaths::default()
        },
        &out,
    )
    .unwrap();
    assert_eq!(store_warnings, warnings);
    let store = AdvisoryStore::open(&out).unwrap();
    for (e, n, v) in [
        ("PyPI", "order", "1.5"),
        ("PyPI", "order", "2.0"),
        ("npm", "badver", "3.0.5"),
        ("Go", "example.com/limit", "1.4.9"),
        ("Go", "example.com/limit", "1.5.0"),
        ("Maven", "org.example:empty", "1.0"),
        ("crates.io", "odd", "1.0.0"),
    ] {
        assert_eq!(
            store.matches(&query(e, n, v)).unwrap().len(),
            affected(&db, e, n, v),
            "{e} {n} {v}"
        );
    }
}

/// Records whose every field is the wrong shape or absurdly large are
/// refused or read without panicking; deep nesting is refused by the JSON
/// parser's recursion limit.
#[test]
fn hostile_shapes_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut builder = StoreBuilder::new();
    let mut many_events = Vec::new();
    for i in 0..20_000 {
        many_events.push(json!({"introduced": format!("{i}.0.0")}));
        many_events.push(json!({"fixed": format!("{i}.0.1")}));
    }
    write(
        dir.path(),
        "many.json",
        record(
            "MANY",
            "npm",
            "many",
            json!([{"type": "ECOSYSTEM", "events": many_events}]),
        ),
    );
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    std::fs::write(dir.path().join("deep.json"), deep).unwrap();
    write(
        dir.path(),
        "nulls.json",
        json!({"id": "NULLS", "affected": [{"package": null, "ranges": null, "versions": null}]}),
    );
    write(
        dir.path(),
        "versions.json",
        json!({"id": "VERSIONS", "affected": [{"package": {"ecosystem": "PyPI", "name": "v"},
            "versions": ["1.0", "not!a!version", "", "\u{0}"]}]}),
    );
    let warnings = builder.add_osv_dir(dir.path()).unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| matches!(&w.reason, WarningReason::InvalidJson { message } if message.contains("recursion"))),
        "{warnings:#?}"
    );
    let out = dir.path().join("out.db");
    builder.write(&out).unwrap();
    let store = AdvisoryStore::open(&out).unwrap();
    assert_eq!(
        store.matches(&query("npm", "many", "7.0.0")).unwrap().len(),
        1
    );
    assert_eq!(
        store.matches(&query("npm", "many", "7.0.1")).unwrap().len(),
        0
    );
    // Listed versions that do not parse match as exact text.
    assert_eq!(store.matches(&query("PyPI", "v", "1.0")).unwrap().len(), 1);
    assert_eq!(
        store
            .matches(&query("PyPI", "v", "not!a!version"))
            .unwrap_or_default()
            .len(),
        0,
        "an installed version that does not parse is a query error or no match"
    );
}
