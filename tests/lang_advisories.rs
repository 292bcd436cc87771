//! Real advisories against the language-heavy test image: published OSV
//! records (`tests/data/lang-advisories/`, their sources in its README) fed to
//! `trawl scan --osv`, and the findings compared, as a whole set, with an
//! independent evaluation of the same records
//! (`tests/reference/lang_advisories.py`): the packages as each ecosystem's own
//! tool listed them when the test data was built, OS-owned packages left to
//! the distribution, every range evaluated with the ecosystem's own version
//! implementation (Python's `packaging`, node's `semver`, x/mod/semver,
//! Maven's ComparableVersion, Gem::Version, composer/semver). A database
//! built from the same records (`trawl db build`) gives the same report.

mod common;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The workspace root.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The advisory records.
fn advisories() -> PathBuf {
    root().join("tests/data/lang-advisories")
}

/// The version references' directory (`scripts/install-version-references.sh`).
fn references() -> PathBuf {
    std::env::var_os("TRAWL_VERSION_REFERENCES")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/version-references"))
}

/// The evaluator's answer: the findings, and the would-be findings of the
/// OS-owned packages (`owned<TAB>…` lines). `None` when a reference is not
/// installed (skipped, as the version differential tests skip, except under
/// CI, which installs every reference).
fn expected() -> Option<(BTreeSet<String>, BTreeSet<String>)> {
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lang-advisories");
    let out = Command::new("python3")
        .arg(root().join("tests/reference/lang_advisories.py"))
        .arg(advisories())
        .arg(common::lang_artifacts())
        .arg(references())
        .arg(&work)
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(2) {
        let why = format!(
            "{}; install the references with scripts/install-version-references.sh \
             and .ci/run's Debian packages",
            stderr.trim()
        );
        assert!(std::env::var_os("CI").is_none(), "{why}");
        println!("{why}; skipping");
        return None;
    }
    assert!(out.status.success(), "the evaluator failed: {stderr}");
    print!("{stderr}");
    let text = String::from_utf8(out.stdout).unwrap();
    let (mut mine, mut owned) = (BTreeSet::new(), BTreeSet::new());
    for line in text.lines() {
        match line.strip_prefix("owned\t") {
            Some(rest) => owned.insert(rest.to_string()),
            None => mine.insert(line.to_string()),
        };
    }
    Some((mine, owned))
}

/// `trawl ARGS… oci-dir:IMAGE:lang --format json`: its exit status and report.
fn scan(args: &[&str]) -> (Output, Value) {
    let source = format!(
        "oci-dir:{}:lang",
        common::lang_artifacts().join("image").display()
    );
    let out = Command::new(common::trawl_bin())
        .arg("scan")
        .args(args)
        .args(["--format", "json", &source])
        .env("NO_COLOR", "1")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "report: {e}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, report)
}

/// `ecosystem<TAB>package<TAB>version<TAB>path<TAB>id<TAB>aliases` of each
/// finding, the evaluator's format.
fn finding_rows(report: &Value) -> BTreeSet<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or("-").to_string();
            let aliases: BTreeSet<&str> = f["aliases"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            let aliases: Vec<&str> = aliases.into_iter().collect();
            [
                s("ecosystem"),
                s("package"),
                s("installed_version"),
                s("path"),
                s("id"),
                aliases.join(","),
            ]
            .join("\t")
        })
        .collect()
}

/// The lines only in `ours` and only in `theirs`, for an assertion message.
fn diff(ours: &BTreeSet<String>, theirs: &BTreeSet<String>) -> String {
    let mut text = String::new();
    for l in theirs.difference(ours) {
        text.push_str(&format!("\n  evaluator only: {l}"));
    }
    for l in ours.difference(theirs) {
        text.push_str(&format!("\n  trawl only:     {l}"));
    }
    text
}

/// Findings per ecosystem, `Go: 167, Maven: 2, …`.
fn per_ecosystem(rows: &BTreeSet<String>) -> BTreeMap<&str, usize> {
    let mut n = BTreeMap::new();
    for r in rows {
        *n.entry(r.split('\t').next().unwrap()).or_default() += 1;
    }
    n
}

#[test]
fn published_advisories_give_what_the_ecosystems_own_rules_give() {
    let Some((expected, owned)) = expected() else {
        return;
    };
    let osv = advisories();
    let (out, report) = scan(&["--osv", osv.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "unhealthy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = finding_rows(&report);
    assert!(
        ours == expected,
        "findings differ from the independent evaluation:{}",
        diff(&ours, &expected)
    );
    let counts = per_ecosystem(&ours);
    println!("{} findings: {counts:?}", ours.len());
    // Every ecosystem with records has findings, and the boundaries hold:
    // records fixed in exactly the installed version (requests 2.31.0,
    // go1.19.8, go1.23.5) do not match it, and the Debian-owned copies stay
    // the distribution's.
    for eco in ["Go", "Maven", "PyPI", "npm"] {
        assert!(counts.get(eco).is_some_and(|n| *n > 0), "{eco}: {counts:?}");
    }
    let ids = |package: &str, version: &str| -> BTreeSet<String> {
        ours.iter()
            .map(|r| r.split('\t').collect::<Vec<_>>())
            .filter(|c| c[1] == package && c[2] == version)
            .flat_map(|c| {
                std::iter::once(c[4].to_string())
                    .chain(c[5].split(',').map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let requests = ids("requests", "2.31.0");
    assert!(requests.contains("CVE-2024-35195"), "{requests:?}");
    assert!(!requests.contains("PYSEC-2023-74"), "{requests:?}");
    assert!(ids("stdlib", "go1.23.4").contains("GO-2025-3420"));
    assert!(!ids("stdlib", "go1.23.5").contains("GO-2025-3420"));
    assert!(!ids("stdlib", "go1.19.8").contains("GO-2023-1705"));
    assert!(ids("stdlib", "go1.19.8").contains("GO-2025-3420"));
    assert!(ids("ms", "2.0.0").is_empty(), "ms is fixed in 2.0.0");

    // The OS-owned packages the same records cover: listed, owned, not found.
    assert!(owned.len() >= 8, "{owned:?}");
    let packages = report["packages"].as_array().unwrap();
    let found_paths: BTreeSet<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for row in &owned {
        let path = row.split('\t').nth(3).unwrap();
        let p = packages
            .iter()
            .find(|p| p["database"] == path)
            .unwrap_or_else(|| panic!("{path} is not in the report"));
        assert!(p["owned_by"].is_string(), "{path}: {p}");
        assert!(!found_paths.contains(path), "{path} was matched as {row}");
    }

    // Coverage: the ecosystems in the image without records are named, with
    // the number of packages (no OS package owns) left unmatched, as
    // `find_language` documents; the OS, without Debian records, is not
    // judged: the verdict stays `unhealthy` and says both.
    let lists = common::lang_artifacts().join("expected");
    let owners: BTreeSet<String> = std::fs::read_to_string(lists.join("owners.tsv"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('\t').map(|(p, _)| p.to_string()))
        .collect();
    let unowned = |file: &str| {
        std::fs::read_to_string(lists.join(file))
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
            .filter(|l| !owners.contains(l.split('\t').nth(2).unwrap()))
            .count()
    };
    let audit: Value = serde_json::from_str(
        &std::fs::read_to_string(
            common::lang_artifacts().join("rust/auditable-demo.expected.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let crates = audit["packages"].as_array().unwrap().len();
    let want: BTreeSet<String> = [
        ("NuGet", unowned("dotnet.tsv")),
        ("Packagist", unowned("composer.tsv")),
        ("crates.io", crates),
    ]
    .iter()
    .map(|(eco, n)| format!("no advisory data for {eco} ({n} packages not matched)"))
    .collect();
    let warnings: BTreeSet<String> = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    assert_eq!(warnings, want);
    assert_eq!(report["verdict"], "unhealthy");
    let reason = report["verdict_reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!("{} known vulnerabilities", ours.len())),
        "{reason}"
    );
    assert!(
        reason.contains("the OS packages were not judged, more may exist: the advisory data has no records for Debian:12"),
        "{reason}"
    );
    for w in &want {
        assert!(reason.contains(w.as_str()), "{w} in {reason}");
    }

    // A database built from the same records gives the same report.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("trawl.db");
    let built = Command::new(common::trawl_bin())
        .args(["db", "build", "--osv", osv.to_str().unwrap(), "-o"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let (db_out, mut from_db) = scan(&["--db", db.to_str().unwrap()]);
    assert_eq!(db_out.status.code(), out.status.code());
    let database = from_db
        .as_object_mut()
        .unwrap()
        .remove("advisory_database")
        .expect("a --db report names its database");
    assert_eq!(database["path"], db.to_str().unwrap());
    let mut from_feeds = report.clone();
    assert!(
        from_feeds
            .as_object_mut()
            .unwrap()
            .remove("advisory_database")
            .is_none_or(|v| v.is_null())
    );
    assert!(
        from_db == from_feeds,
        "the --db report differs from the feed report; findings:{}",
        diff(&finding_rows(&from_db), &finding_rows(&from_feeds))
    );
}
