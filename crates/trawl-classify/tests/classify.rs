//! Classification on real data: the Alpine 3.4 installed database against the
//! real Alpine 3.4 secdb; remediation steps that, applied, clear every
//! fixable finding; alias merging; policy (ignore file, VEX, threshold,
//! ignore-unfixed).

use std::path::{Path, PathBuf};

use trawl_advisory::AdvisoryDb;
use trawl_classify::policy::{parse_ignore_file, parse_vex};
use trawl_classify::{
    FixStateKind, ImageInfo, Judgement, MatchCache, Policy, Report, Severity, Verdict,
};
use trawl_inventory::Inventory;
use trawl_layers::{Limits, read_rootfs};

mod schema_check;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

fn rootfs(files: &[(&str, &[u8])]) -> Inventory {
    let dir = tempfile::tempdir().unwrap();
    for (path, data) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    let fs = read_rootfs(
        dir.path(),
        &trawl_inventory::selection(),
        &Limits::default(),
    )
    .unwrap();
    trawl_inventory::catalog(&fs)
}

fn alpine34() -> Inventory {
    let installed = std::fs::read(fixtures().join("apk/alpine-3.4/installed")).unwrap();
    rootfs(&[
        ("lib/apk/db/installed", &installed),
        (
            "etc/os-release",
            b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.4.6\n",
        ),
    ])
}

fn secdb34() -> AdvisoryDb {
    let none: [PathBuf; 0] = [];
    let (db, _warnings) =
        AdvisoryDb::from_paths(&none, &[fixtures().join("secdb/v3.4")], &none).unwrap();
    db
}

#[test]
fn alpine_34_against_its_secdb() {
    let report = Report::generate(
        "dir:alpine-3.4",
        ImageInfo::default(),
        alpine34(),
        &secdb34(),
    );
    schema_check::assert_serializes_to_valid_report(&report);
    assert_eq!(report.ecosystem.as_deref(), Some("Alpine:v3.4"));
    assert_eq!(report.verdict, Verdict::Unhealthy);
    assert_eq!(
        report.findings.len(),
        57,
        "per installed package and CVE (hand-checked in trawl-advisory)"
    );
    assert_eq!(report.summary.fixable, 57, "secdb lists fixes only");
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.fix_state == FixStateKind::Fixed)
    );
    let musl: Vec<(&str, Option<&str>)> = report
        .findings
        .iter()
        .filter(|f| f.package == "musl")
        .map(|f| (f.id.as_str(), f.fixed_version.as_deref()))
        .collect();
    assert_eq!(musl.len(), 2, "{musl:?}");
    // One step per affected package, to the highest fix among its findings.
    let steps: Vec<&str> = report
        .remediation
        .iter()
        .map(|s| s.package.as_str())
        .collect();
    let mut affected: Vec<&str> = report.findings.iter().map(|f| f.package.as_str()).collect();
    affected.sort();
    affected.dedup();
    let mut sorted_steps = steps.clone();
    sorted_steps.sort();
    assert_eq!(sorted_steps, affected);
    let ssl = report
        .remediation
        .iter()
        .find(|s| s.package == "libssl1.0")
        .unwrap();
    assert_eq!(ssl.fixes.len(), 23);
    assert!(ssl.to.starts_with("1.0.2"), "{}", ssl.to);
}

/// Applies every remediation step to the inventory and matches again.
fn apply(report: &Report, mut inventory: Inventory) -> Inventory {
    for step in &report.remediation {
        for p in inventory
            .packages
            .iter_mut()
            .filter(|p| p.name == step.package)
        {
            p.version = step.to.clone();
            p.source_version = step.to.clone();
        }
    }
    inventory
}

#[test]
fn remediation_steps_clear_every_fixable_finding() {
    let db = secdb34();
    let report = Report::generate("dir:alpine-3.4", ImageInfo::default(), alpine34(), &db);
    schema_check::assert_serializes_to_valid_report(&report);
    assert!(report.summary.fixable > 0);
    let after = Report::generate(
        "dir:alpine-3.4",
        ImageInfo::default(),
        apply(&report, alpine34()),
        &db,
    );
    schema_check::assert_serializes_to_valid_report(&after);
    assert_eq!(after.summary.fixable, 0, "{:?}", after.findings.first());
    assert_eq!(after.verdict, Verdict::Healthy);
    assert!(after.remediation.is_empty());
}

/// One cache shared by the reports of several inventories (alike, partly
/// alike, remediated) against one database gives every report exactly
/// what matching it alone gives, in either order.
#[test]
fn a_shared_match_cache_changes_no_report() {
    let db = secdb34();
    let first = Report::generate("dir:alpine-3.4", ImageInfo::default(), alpine34(), &db);
    let remediated = apply(&first, alpine34());
    let mut partly = alpine34();
    partly.packages.truncate(partly.packages.len() / 2);
    let inventories = [alpine34(), remediated, partly, alpine34()];
    let alone: Vec<String> = inventories
        .iter()
        .map(|inv| {
            let r = Report::generate("dir:alpine-3.4", ImageInfo::default(), inv.clone(), &db);
            serde_json::to_string(&r).unwrap()
        })
        .collect();
    for order in [[0, 1, 2, 3], [2, 1, 3, 0]] {
        let cache = MatchCache::default();
        for i in order {
            let r = Report::generate_cached(
                "dir:alpine-3.4",
                ImageInfo::default(),
                inventories[i].clone(),
                &db,
                &Policy::default(),
                &cache,
            );
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                alone[i],
                "inventory {i}"
            );
            // The judgement decides as the report does, finding by finding.
            let image = ImageInfo::default();
            let judged = Judgement::generate_cached(
                &image,
                &inventories[i],
                &db,
                &Policy::default(),
                &cache,
            );
            assert_eq!(judged.verdict(), r.verdict);
            assert_eq!(judged.verdict_reason(), r.verdict_reason);
            assert_eq!(judged.summary(), &r.summary);
            assert_eq!(judged.findings().len(), r.findings.len());
            for (facts, f) in judged.findings().zip(&r.findings) {
                assert_eq!(facts.id, f.id);
                assert_eq!(facts.aliases, f.aliases.as_slice());
                assert_eq!(facts.package, f.package);
                assert_eq!(facts.installed_version, f.installed_version);
                assert_eq!(facts.source_name, f.source_name);
                assert_eq!(facts.source_version, f.source_version);
                assert_eq!(facts.fixed_version, f.fixed_version.as_deref());
                assert_eq!((facts.fix_state, facts.severity), (f.fix_state, f.severity));
                assert_eq!(facts.ecosystem, f.ecosystem);
                assert_eq!(facts.layer, f.layer.as_deref());
                assert_eq!(facts.path, f.path.as_deref());
            }
            assert_eq!(judged.suppressed().len(), r.suppressed.len());
        }
    }
    assert!(!first.findings.is_empty());
}

fn debian_inventory() -> Inventory {
    rootfs(&[
        (
            "var/lib/dpkg/status",
            b"Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u1\nArchitecture: amd64\nSource: glibc\n\n\
              Package: libc-bin\nStatus: install ok installed\nVersion: 2.36-9+deb12u1\nArchitecture: amd64\nSource: glibc\n\n\
              Package: apt\nStatus: install ok installed\nVersion: 2.6.1\nArchitecture: amd64\n",
        ),
        ("etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n"),
    ])
}

fn osv(dir: &Path, records: &[serde_json::Value]) -> AdvisoryDb {
    for (i, r) in records.iter().enumerate() {
        std::fs::write(dir.join(format!("r{i}.json")), r.to_string()).unwrap();
    }
    AdvisoryDb::from_osv_dirs(&[dir]).unwrap().0
}

fn records() -> Vec<serde_json::Value> {
    let range = |fixed: Option<&str>| match fixed {
        Some(f) => {
            serde_json::json!([{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": f}]}])
        }
        None => serde_json::json!([{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]),
    };
    vec![
        serde_json::json!({"id": "DSA-5514-1", "aliases": ["CVE-2023-4911"], "summary": "glibc security update",
            "affected": [{"package": {"ecosystem": "Debian:12", "name": "glibc"}, "ranges": range(Some("2.36-9+deb12u3"))}]}),
        serde_json::json!({"id": "DEBIAN-CVE-2023-4911", "upstream": ["CVE-2023-4911"],
            "affected": [{"package": {"ecosystem": "Debian:12", "name": "glibc"}, "ranges": range(Some("2.36-9+deb12u3")),
                          "ecosystem_specific": {"urgency": "high"}}]}),
        serde_json::json!({"id": "DEBIAN-CVE-2023-5156", "upstream": ["CVE-2023-5156"],
            "affected": [{"package": {"ecosystem": "Debian:12", "name": "glibc"}, "ranges": range(Some("2.36-9+deb12u4")),
                          "ecosystem_specific": {"urgency": "medium"}}]}),
        serde_json::json!({"id": "DEBIAN-CVE-2011-3374", "upstream": ["CVE-2011-3374"],
            "affected": [{"package": {"ecosystem": "Debian:12", "name": "apt"}, "ranges": range(None),
                          "ecosystem_specific": {"urgency": "unimportant"}}]}),
    ]
}

#[test]
fn a_dsa_and_its_cve_are_one_finding() {
    let dir = tempfile::tempdir().unwrap();
    let report = Report::generate(
        "dir:x",
        ImageInfo::default(),
        debian_inventory(),
        &osv(dir.path(), &records()),
    );
    schema_check::assert_serializes_to_valid_report(&report);
    let libc: Vec<(&str, &[String], Severity, &str)> = report
        .findings
        .iter()
        .filter(|f| f.package == "libc6")
        .map(|f| {
            (
                f.id.as_str(),
                &f.aliases[..],
                f.severity,
                f.severity_source.as_str(),
            )
        })
        .collect();
    assert_eq!(
        libc,
        [
            (
                "CVE-2023-4911",
                &["DEBIAN-CVE-2023-4911".to_string(), "DSA-5514-1".to_string()][..],
                Severity::High,
                "vendor:Debian"
            ),
            (
                "CVE-2023-5156",
                &["DEBIAN-CVE-2023-5156".to_string()][..],
                Severity::Medium,
                "vendor:Debian"
            ),
        ]
    );
    // Two binaries of glibc, three vulnerabilities in all (one for apt).
    assert_eq!(report.findings.len(), 5);
    assert_eq!(report.summary.by_fix_state[&FixStateKind::Unfixed], 1);
    let apt = report.findings.iter().find(|f| f.package == "apt").unwrap();
    assert_eq!(
        (apt.severity, apt.fix_state),
        (Severity::Negligible, FixStateKind::Unfixed)
    );
    assert_eq!(apt.remediation, "no fixed version of apt is available yet");
    // One upgrade clears both glibc findings: the higher of the two fixes.
    let step = report
        .remediation
        .iter()
        .find(|s| s.package == "libc6")
        .unwrap();
    assert_eq!(
        (step.from.as_str(), step.to.as_str()),
        ("2.36-9+deb12u1", "2.36-9+deb12u4")
    );
    assert_eq!(step.fixes, ["CVE-2023-4911", "CVE-2023-5156"]);
    assert_eq!(step.max_severity, Severity::High);
    assert_eq!(
        report.remediation[0].max_severity,
        Severity::High,
        "most serious first"
    );
    let after = Report::generate(
        "dir:x",
        ImageInfo::default(),
        apply(&report, debian_inventory()),
        &osv(dir.path(), &records()),
    );
    schema_check::assert_serializes_to_valid_report(&after);
    assert_eq!(after.summary.fixable, 0);
    assert_eq!(after.findings.len(), 1, "apt's unfixed finding remains");
}

/// The Debian inventory's report under `policy`, checked against the
/// published schema.
fn under(db: &AdvisoryDb, policy: &Policy) -> Report {
    let r = Report::generate_with_policy(
        "dir:x",
        ImageInfo::default(),
        debian_inventory(),
        db,
        policy,
    );
    schema_check::assert_serializes_to_valid_report(&r);
    r
}

/// (id, package) of each finding that counts, in report order.
fn counted(r: &Report) -> Vec<(&str, &str)> {
    r.findings
        .iter()
        .map(|f| (f.id.as_str(), f.package.as_str()))
        .collect()
}

#[test]
fn policy_suppresses_with_reasons_and_reports_expired_rules() {
    let dir = tempfile::tempdir().unwrap();
    let db = osv(dir.path(), &records());
    let ignores = parse_ignore_file(
        "CVE-2023-5156 package=glibc reason=\"tracked in JIRA-1\"\nCVE-2011-3374 expires=2025-01-01 reason=old\n",
        Path::new("trawl.ignore"),
    )
    .unwrap();
    let vex = parse_vex(
        r#"{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [
            {"vulnerability": {"name": "CVE-2023-4911"}, "products": [{"@id": "pkg:deb/debian/libc-bin"}],
             "status": "not_affected", "justification": "vulnerable_code_not_present"},
            {"vulnerability": {"name": "CVE-2023-4911"}, "products": [{"@id": "pkg:deb/debian/libc6"}], "status": "affected"}]}"#,
        Path::new("app.vex.json"),
    )
    .unwrap();
    let policy = Policy {
        ignores,
        vex,
        today: "2026-11-23".into(),
        ..Policy::default()
    };
    let r = under(&db, &policy);
    assert_eq!(
        counted(&r),
        [("CVE-2023-4911", "libc6"), ("CVE-2011-3374", "apt")]
    );
    assert_eq!(
        r.findings[0].vex_status,
        Some(trawl_classify::VexStatus::Affected)
    );
    let suppressed: Vec<(&str, &str, &str, Option<&str>)> = r
        .suppressed
        .iter()
        .map(|f| {
            let s = f.suppression.as_ref().unwrap();
            (
                f.id.as_str(),
                f.package.as_str(),
                s.by.as_str(),
                s.origin.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        suppressed,
        [
            (
                "CVE-2023-4911",
                "libc-bin",
                "vex",
                Some("app.vex.json#statement0")
            ),
            (
                "CVE-2023-5156",
                "libc-bin",
                "ignore-file",
                Some("trawl.ignore:1")
            ),
            (
                "CVE-2023-5156",
                "libc6",
                "ignore-file",
                Some("trawl.ignore:1")
            ),
        ]
    );
    assert_eq!(r.summary.suppressed, 3);
    assert_eq!(
        r.expired_ignores.len(),
        1,
        "the expired rule is reported, and apt's finding still counts"
    );
    assert_eq!(r.verdict, Verdict::Unhealthy);

    let strict = Policy {
        severity_threshold: Severity::High,
        ignore_unfixed: true,
        ..Policy::default()
    };
    let r = under(&db, &strict);
    assert_eq!(
        counted(&r),
        [("CVE-2023-4911", "libc-bin"), ("CVE-2023-4911", "libc6")]
    );
    let by: Vec<&str> = r
        .suppressed
        .iter()
        .map(|f| f.suppression.as_ref().unwrap().by.as_str())
        .collect();
    assert_eq!(
        by,
        [
            "severity-threshold",
            "severity-threshold",
            "severity-threshold"
        ]
    );

    let only_fixed = Policy {
        ignore_unfixed: true,
        ..Policy::default()
    };
    let r = under(&db, &only_fixed);
    assert!(
        r.findings
            .iter()
            .all(|f| f.fix_state == FixStateKind::Fixed)
    );
    assert_eq!(r.suppressed.len(), 1);
    assert_eq!(
        r.suppressed[0].suppression.as_ref().unwrap().by,
        "ignore-unfixed"
    );
}
