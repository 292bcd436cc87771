//! A rescan's results without building reports ([`trawl_watch::rematch`]:
//! judgements, `MatchResult::judged`) are those of the reports
//! (`Scanner::rematch_all`, `MatchResult::from_report`), byte for byte:
//! verdict, reason, summary JSON, finding rows, results hash, and the report
//! JSON of an image stored without one. Over the watch bench's synthetic
//! variations of the Debian and distroless test images (with language
//! packages added to some), against a base database and its day's update,
//! under the default policy and under one that suppresses findings in every
//! way a policy can.

#[path = "../../../benches/peers/rescan.rs"]
#[allow(dead_code)]
mod rescan;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use trawl::advisory::{AdvisoryStore, StoreBuilder};
use trawl::classify::{IgnoreRule, VexStatement, VexStatus};
use trawl::{ImageSource, Package, Policy, Scanned, Scanner, Severity, Verdict};
use trawl_watch::store::{MatchResult, MatchTarget, Rematched, StoredInventory};

/// Variants rescanned per database and policy.
const IMAGES: usize = 60;

/// The built test images (`$TRAWL_TEST_IMAGES`, else the workspace's
/// `target/test-images`), built by the workspace's script when missing.
fn images() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::env::var_os("TRAWL_TEST_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/test-images"));
    let status = std::process::Command::new("bash")
        .arg(root.join("scripts/build-test-images.sh"))
        .arg(&dir)
        .status()
        .expect("run scripts/build-test-images.sh");
    assert!(
        status.success(),
        "building the test images failed: {status}"
    );
    dir
}

fn inventory(name: &str, tag: &str) -> Scanned {
    let layout = images().join(name).join("oci");
    let source: ImageSource = format!("oci:{}:{tag}", layout.display()).parse().unwrap();
    Scanner::builder()
        .build()
        .unwrap()
        .inventory_blocking(&source)
        .unwrap()
}

fn language_package(kind: &str, name: &str, version: &str, database: &str) -> Package {
    serde_json::from_value(serde_json::json!({
        "type": kind,
        "name": name,
        "version": version,
        "source_name": name,
        "source_version": version,
        "purl": format!("pkg:{kind}/{name}@{version}"),
        "layer": null,
        "database": database,
    }))
    .unwrap()
}

/// Records about the language packages [`with_language`] adds.
fn language_records(builder: &mut StoreBuilder) {
    let records = [
        (
            "GHSA-lodash-1",
            "CVE-2021-23337",
            "npm",
            "lodash",
            "4.17.21",
        ),
        ("GHSA-lodash-2", "CVE-2020-28500", "npm", "lodash", ""),
        (
            "PYSEC-2021-59",
            "CVE-2021-33503",
            "PyPI",
            "urllib3",
            "1.26.5",
        ),
        ("GO-2023-1570", "CVE-2022-41723", "Go", "stdlib", "1.20.1"),
        (
            "GO-2023-1571",
            "CVE-2022-41724",
            "Go",
            "toolchain",
            "1.20.2",
        ),
    ];
    for (id, cve, ecosystem, name, fixed) in records {
        let mut events = vec![serde_json::json!({"introduced": "0"})];
        if !fixed.is_empty() {
            events.push(serde_json::json!({"fixed": fixed}));
        }
        let record = serde_json::json!({
            "id": id,
            "modified": "2026-11-01T00:00:00Z",
            "aliases": [cve],
            "summary": format!("{cve} in {name}"),
            "affected": [{
                "package": {"ecosystem": ecosystem, "name": name},
                "ranges": [{"type": "SEMVER", "events": events}],
            }],
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        });
        builder.add_osv(serde_json::from_value(record).unwrap());
    }
}

/// Every third image gets language packages: two instances of one npm
/// package, a PyPI one, a Go toolchain (looked up under two names) and one
/// of an ecosystem without advisory data.
fn with_language(mut scanned: Scanned, n: usize) -> Scanned {
    if n.is_multiple_of(3) {
        let packages = &mut scanned.inventory.packages;
        packages.push(language_package(
            "npm",
            "lodash",
            "4.17.20",
            "app/node_modules/lodash/package.json",
        ));
        packages.push(language_package(
            "npm",
            "lodash",
            "4.17.20",
            "srv/node_modules/lodash/package.json",
        ));
        packages.push(language_package(
            "pypi",
            "urllib3",
            "1.26.0",
            "usr/lib/python3/site-packages/urllib3-1.26.0.dist-info/METADATA",
        ));
        packages.push(language_package(
            "golang",
            "stdlib",
            "1.19.0",
            "usr/local/bin/app",
        ));
        packages.push(language_package(
            "gem",
            "rack",
            "2.0.0",
            "usr/lib/ruby/gems/rack-2.0.0.gemspec",
        ));
    }
    scanned
}

/// A policy that suppresses by VEX, by ignore rules (one about a language
/// package), by severity and by fix state, annotates with VEX, and has an
/// expired rule.
fn strict_policy(id_for_vex: &str, purl: &str, id_to_ignore: &str) -> Policy {
    Policy {
        severity_threshold: Severity::Medium,
        ignore_unfixed: false,
        ignores: vec![
            IgnoreRule {
                id: id_to_ignore.into(),
                package: None,
                expires: None,
                reason: "accepted".into(),
                origin: "ignore.txt:1".into(),
            },
            IgnoreRule {
                id: "GO-2023-1570".into(),
                package: Some("stdlib".into()),
                expires: Some("2027-01-01".into()),
                reason: "not reachable".into(),
                origin: "ignore.txt:3".into(),
            },
            IgnoreRule {
                id: "CVE-2021-33503".into(),
                package: Some("urllib3".into()),
                expires: Some("2020-01-01".into()),
                reason: "expired long ago".into(),
                origin: "ignore.txt:2".into(),
            },
        ],
        vex: vec![
            VexStatement {
                vulnerability: vec![id_for_vex.into()],
                products: vec![purl.into()],
                status: VexStatus::NotAffected,
                justification: Some("vulnerable_code_not_in_execute_path".into()),
                origin: "vex.json#statement1".into(),
            },
            VexStatement {
                vulnerability: vec!["CVE-2021-23337".into()],
                products: vec!["pkg:npm/lodash@4.17.20".into()],
                status: VexStatus::UnderInvestigation,
                justification: None,
                origin: "vex.json#statement2".into(),
            },
        ],
        today: "2026-12-04".into(),
    }
}

fn assert_same(new: &MatchResult, old: &MatchResult, digest: &str) {
    assert_eq!(new.verdict, old.verdict, "{digest}");
    assert_eq!(new.verdict_reason, old.verdict_reason, "{digest}");
    assert_eq!(new.summary, old.summary, "{digest}");
    assert_eq!(new.findings.len(), old.findings.len(), "{digest}");
    for (i, (n, o)) in new.findings.iter().zip(&old.findings).enumerate() {
        assert_eq!(n, o, "{digest}: finding row {i}");
    }
    assert_eq!(new.report_sha256, old.report_sha256, "{digest}");
    assert_eq!(new.report, old.report, "{digest}");
    assert_eq!(new.target, old.target, "{digest}");
    // The same packages and links for PostgreSQL's normalized layout.
    assert_eq!(new.layout_digest(), old.layout_digest(), "{digest}");
}

#[test]
fn rematch_gives_the_results_of_the_reports() {
    let debian = inventory("debian", "bookworm");
    let distroless = inventory("distroless", "latest");
    let mut sources: BTreeMap<String, String> = BTreeMap::new();
    for scanned in [&debian, &distroless] {
        for p in &scanned.inventory.packages {
            sources
                .entry(p.source_name.clone())
                .or_insert_with(|| p.source_version.clone());
        }
    }
    let scanned: Vec<Scanned> = (0..IMAGES)
        .map(|n| {
            let base = if n % 5 == 4 { &distroless } else { &debian };
            with_language(rescan::variant(base, n), n)
        })
        .collect();
    // Every seventh image is stored without a report: it gets its JSON.
    let stored: Vec<StoredInventory> = scanned
        .iter()
        .enumerate()
        .map(|(n, s)| StoredInventory {
            digest: s.image.manifest_digest.clone().unwrap(),
            inventory: serde_json::to_string(s).unwrap(),
            report_sha256: (n % 7 != 3).then(|| format!("{n:064}")),
        })
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let mut compared = 0;
    let (mut suppressed, mut language, mut with_report) = (0, 0, 0);
    let mut suppressed_language = 0;
    let mut normalizable = 0;
    let mut verdicts = std::collections::HashSet::new();
    for (name, edition) in [
        ("base", rescan::Edition::Base),
        ("update", rescan::Edition::Update),
    ] {
        let path = dir.path().join(format!("{name}.db"));
        rescan::build_database(&path, &sources, edition, 2_000, language_records);
        let open = || AdvisoryStore::open(&path).unwrap();
        let target = |policy: &str| MatchTarget {
            advisory_db: open().info().content_sha256.clone(),
            policy: policy.into(),
        };
        // The strict policy names findings of the first image.
        let plain = Scanner::builder().database(open()).build().unwrap();
        let first = plain.rematch(scanned[0].clone());
        let vex_finding = &first.findings[0];
        let purl = first
            .packages
            .iter()
            .find(|p| p.name == vex_finding.package)
            .unwrap()
            .purl
            .clone();
        let ignored = first
            .findings
            .iter()
            .find(|f| f.id != vex_finding.id)
            .unwrap()
            .id
            .clone();
        let strict = strict_policy(&vex_finding.id, &purl, &ignored);
        for (policy_name, policy) in [("default", Policy::default()), ("strict", strict)] {
            let scanner = Scanner::builder()
                .database(open())
                .policy(policy)
                .build()
                .unwrap();
            let target = target(policy_name);
            let new = trawl_watch::rematch(&scanner, stored.clone(), &target).unwrap();
            assert_eq!(new.len(), IMAGES);
            let new: std::collections::HashMap<&str, &Rematched> =
                new.iter().map(|r| (r.digest.as_str(), r)).collect();
            let reports = scanner.rematch_all(scanned.clone());
            for (report, s) in reports.into_iter().zip(&stored) {
                let new = new[s.digest.as_str()];
                assert_eq!(new.previous_sha256, s.report_sha256);
                suppressed += report.suppressed.len();
                language += report.findings.iter().filter(|f| f.path.is_some()).count();
                suppressed_language += report
                    .suppressed
                    .iter()
                    .filter(|f| f.path.is_some())
                    .count();
                verdicts.insert(report.verdict);
                let old =
                    MatchResult::from_report(report, &target, s.report_sha256.is_none()).unwrap();
                with_report += usize::from(old.report.is_some());
                normalizable += usize::from(new.result.layout_digest().is_ok());
                assert_same(
                    &new.result,
                    &old,
                    &format!("{name}, {policy_name}: {}", s.digest),
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 4 * IMAGES);
    // What was compared covers what could differ.
    assert!(suppressed > 1000, "{suppressed} suppressed findings");
    assert!(language > 100, "{language} language findings");
    assert!(
        suppressed_language > 10,
        "{suppressed_language} suppressed language findings"
    );
    assert!(
        with_report >= 4 * 8,
        "{with_report} images stored without a report"
    );
    assert!(verdicts.contains(&Verdict::Unhealthy), "{verdicts:?}");
    // Every image's findings map onto its packages (none would be stored
    // as its own for want of it).
    assert_eq!(
        normalizable, compared,
        "images whose findings map onto packages"
    );
}
