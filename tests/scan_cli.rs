//! `trawl scan` as users run it, on the Debian test image and the
//! Alpine 3.4 fixture: every `--format` is produced, each machine format
//! passes its own validator (SARIF Multitool, CycloneDX's library, SPDX's
//! tools), the JSON equals the library's report, the exit status gates on the
//! verdict, and the remediation steps, applied to the inventory and matched
//! again, clear every fixable finding.

mod common;
#[path = "../crates/trawl-classify/tests/schema_check/mod.rs"]
mod schema_check;
#[path = "../crates/trawl-classify/tests/validators/mod.rs"]
mod validators;

use std::path::{Path, PathBuf};
use std::process::Command;

use trawl::classify::FixStateKind;
use trawl::{AdvisoryDb, ImageSource, Inventory, Report, Scanner, Verdict};
use validators::{assert_valid, cyclonedx_validator, sarif_multitool, spdx_validator};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn scan(args: &[&str]) -> Run {
    let out = Command::new(common::trawl_bin())
        .arg("scan")
        .args(args)
        .env("SOURCE_DATE_EPOCH", "1763856000")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs every format; checks exit status, validity and the JSON contract.
/// Returns the JSON report.
fn every_format(feed_args: &[&str], source: &str, library: &Report) -> Report {
    let mut json = None;
    for format in ["json", "table", "sarif", "cyclonedx", "spdx"] {
        let mut args = feed_args.to_vec();
        args.extend(["--format", format, source]);
        let run = scan(&args);
        assert_eq!(
            run.code, 1,
            "{format}: an unhealthy image exits 1: {}",
            run.stderr
        );
        match format {
            "json" => {
                schema_check::assert_valid_report(&serde_json::from_str(&run.stdout).unwrap());
                let report: Report = serde_json::from_str(&run.stdout).unwrap();
                assert_eq!(&report, library, "the CLI reports what the library does");
                json = Some(report);
            }
            "table" => {
                assert!(
                    run.stdout.contains("Verdict:   UNHEALTHY"),
                    "{}",
                    run.stdout
                );
                for step in &library.remediation {
                    assert!(
                        run.stdout.contains(&step.package) && run.stdout.contains(&step.to),
                        "the table shows the step for {}:\n{}",
                        step.package,
                        run.stdout
                    );
                }
            }
            "sarif" => {
                let log: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
                assert_eq!(log["version"], "2.1.0");
                let results = log["runs"][0]["results"].as_array().unwrap();
                assert_eq!(results.len(), library.findings.len());
                assert_valid("SARIF", sarif_multitool(&run.stdout));
            }
            "cyclonedx" => {
                let bom: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
                assert_eq!(bom["specVersion"], "1.6");
                let components = bom["components"].as_array().unwrap();
                let kinds = |kind: &str| components.iter().filter(|c| c["type"] == kind).count();
                assert_eq!(kinds("library"), library.packages.len());
                assert_eq!(kinds("operating-system"), 1);
                assert_eq!(components.len(), library.packages.len() + 1);
                assert!(!bom["vulnerabilities"].as_array().unwrap().is_empty());
                assert_valid("CycloneDX", cyclonedx_validator(&run.stdout));
            }
            "spdx" => {
                let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
                assert_eq!(doc["spdxVersion"], "SPDX-2.3");
                // The image (or root file system), its OS, and one per package.
                let packages = doc["packages"].as_array().unwrap();
                let purposes = |p: &str| {
                    packages
                        .iter()
                        .filter(|x| x["primaryPackagePurpose"] == p)
                        .count()
                };
                assert_eq!(purposes("CONTAINER"), 1);
                assert_eq!(purposes("OPERATING-SYSTEM"), 1);
                assert_eq!(purposes("LIBRARY"), library.packages.len());
                assert_eq!(packages.len(), library.packages.len() + 2);
                assert_valid("SPDX", spdx_validator(&run.stdout));
            }
            _ => unreachable!(),
        }
    }
    json.unwrap()
}

/// The report's inventory with every remediation step applied: each
/// upgraded package at the step's target version.
fn remediated(report: &Report) -> Inventory {
    let mut packages = report.packages.clone();
    for step in &report.remediation {
        for p in packages.iter_mut().filter(|p| p.name == step.package) {
            p.version = step.to.clone();
            p.source_version = step.to.clone();
        }
    }
    let mut databases: Vec<String> = packages.iter().map(|p| p.database.clone()).collect();
    databases.dedup();
    Inventory {
        os: report.os.clone(),
        packages,
        databases,
        warnings: Vec::new(),
        catalogers: report.catalogers.clone(),
    }
}

/// Applies the steps and matches again: no fixable finding is left, and the
/// unfixable ones are exactly those the report said no step fixes.
fn remediation_clears_every_fixable_finding(report: &Report, db: &AdvisoryDb) {
    assert!(report.summary.fixable > 0);
    let after = Report::generate(
        report.source.clone(),
        report.image.clone(),
        remediated(report),
        db,
    );
    assert_eq!(after.summary.fixable, 0, "{:#?}", after.findings);
    assert!(after.remediation.is_empty());
    let mut left: Vec<(&str, &str)> = after
        .findings
        .iter()
        .map(|f| (f.id.as_str(), f.package.as_str()))
        .collect();
    let mut unfixable: Vec<(&str, &str)> = report
        .findings
        .iter()
        .filter(|f| f.fix_state != FixStateKind::Fixed)
        .map(|f| (f.id.as_str(), f.package.as_str()))
        .collect();
    left.sort();
    unfixable.sort();
    assert_eq!(left, unfixable);
}

#[test]
fn debian_image_every_format_validates_and_remediation_clears_fixable_findings() {
    let images = common::images();
    let source = format!("oci-dir:{}:bookworm", images.join("debian/oci").display());
    let image: ImageSource = source.parse().unwrap();
    let inventory_only = Scanner::builder()
        .build()
        .unwrap()
        .scan_blocking(&image)
        .unwrap();
    let feed = tempfile::tempdir().unwrap();
    common::write_osv_feed(feed.path(), &inventory_only);
    let load = || AdvisoryDb::from_osv_dirs(&[feed.path()]).unwrap().0;
    let library = Scanner::builder()
        .database(load())
        .build()
        .unwrap()
        .scan_blocking(&image)
        .unwrap();
    assert_eq!(library.verdict, Verdict::Unhealthy);

    let osv = feed.path().to_str().unwrap();
    let report = every_format(&["--osv", osv], &source, &library);
    remediation_clears_every_fixable_finding(&report, &load());

    // The same through a compiled database.
    let db_file = feed.path().join("trawl.db");
    let mut builder = trawl::advisory::StoreBuilder::new();
    builder.add_osv_dir(feed.path()).unwrap();
    builder.write(&db_file).unwrap();
    let run = scan(&[
        "--db",
        db_file.to_str().unwrap(),
        "--format",
        "json",
        &source,
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    schema_check::assert_valid_report(&serde_json::from_str(&run.stdout).unwrap());
    assert_eq!(
        serde_json::from_str::<Report>(&run.stdout).unwrap(),
        library
    );

    // CI gating by policy: with only fixable critical findings counting, the
    // CLI's verdict and exit status are the library's under the same policy.
    let run = scan(&[
        "--osv",
        osv,
        "--severity-threshold",
        "critical",
        "--ignore-unfixed",
        "--format",
        "json",
        &source,
    ]);
    let policy = trawl::Policy {
        severity_threshold: trawl::Severity::Critical,
        ignore_unfixed: true,
        ..trawl::Policy::default()
    };
    let gated_library = Scanner::builder()
        .database(load())
        .policy(policy)
        .build()
        .unwrap()
        .scan_blocking(&image)
        .unwrap();
    schema_check::assert_valid_report(&serde_json::from_str(&run.stdout).unwrap());
    let gated: Report = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(gated, gated_library);
    assert!(
        !gated.suppressed.is_empty(),
        "the policy suppressed something"
    );
    assert_eq!(run.code, i32::from(gated.verdict == Verdict::Unhealthy));
}

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures")
}

#[test]
fn alpine_34_fixture_every_format_validates_and_remediation_clears_fixable_findings() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("lib/apk/db")).unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::copy(
        shared().join("apk/alpine-3.4/installed"),
        root.path().join("lib/apk/db/installed"),
    )
    .unwrap();
    std::fs::write(
        root.path().join("etc/os-release"),
        "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.4.6\nPRETTY_NAME=\"Alpine Linux v3.4\"\n",
    )
    .unwrap();
    let source = format!("dir:{}", root.path().display());
    let secdb = shared().join("secdb/v3.4");
    let none: [PathBuf; 0] = [];
    let load = || {
        AdvisoryDb::from_paths(&none, std::slice::from_ref(&secdb), &none)
            .unwrap()
            .0
    };
    let library = Scanner::builder()
        .database(load())
        .build()
        .unwrap()
        .scan_blocking(&source.parse().unwrap())
        .unwrap();
    assert_eq!(library.ecosystem.as_deref(), Some("Alpine:v3.4"));
    assert_eq!(library.verdict, Verdict::Unhealthy);
    // The fixture's broken entry is skipped with a warning, not fatal.
    assert_eq!(library.warnings.len(), 1, "{:?}", library.warnings);

    let report = every_format(&["--secdb", secdb.to_str().unwrap()], &source, &library);
    remediation_clears_every_fixable_finding(&report, &load());

    // Each SARIF result points at the line where its package's record starts.
    let mut sarif = Vec::new();
    trawl::classify::formats::write_sarif(&mut sarif, &library).unwrap();
    let sarif: serde_json::Value = serde_json::from_slice(&sarif).unwrap();
    let installed = std::fs::read_to_string(root.path().join("lib/apk/db/installed")).unwrap();
    let lines: Vec<&str> = installed.lines().collect();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), library.findings.len());
    for r in results {
        let location = &r["locations"][0];
        let name = location["logicalLocations"][0]["name"].as_str().unwrap();
        let physical = &location["physicalLocation"];
        assert_eq!(physical["artifactLocation"]["uri"], "lib/apk/db/installed");
        let start = physical["region"]["startLine"].as_u64().unwrap() as usize;
        assert!(
            start == 1 || lines[start - 2].is_empty(),
            "a record starts at {start}"
        );
        let record: Vec<&str> = lines[start - 1..]
            .iter()
            .take_while(|l| !l.is_empty())
            .copied()
            .collect();
        assert!(
            record.contains(&format!("P:{name}").as_str()),
            "{name} at {start}"
        );
    }
}

/// `--cache-dir` with `--cache-max-size`: the directory stays within the
/// bound (least recently used layers go first) and scans from it give the
/// same inventory.
#[test]
fn the_cache_directory_is_pruned_to_its_bound() {
    let images = common::images();
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_str().unwrap();
    let entries = || -> Vec<u64> {
        std::fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .collect()
    };
    let debian = format!("oci-dir:{}:bookworm", images.join("debian/oci").display());
    let distroless = format!("oci-dir:{}:latest", images.join("distroless/oci").display());
    let run = |source: &str, bound: &str| {
        let run = scan(&[
            "--inventory-only",
            "--format",
            "json",
            "--cache-dir",
            cache_dir,
            "--cache-max-size",
            bound,
            source,
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        schema_check::assert_valid_inventory(&serde_json::from_str(&run.stdout).unwrap());
        run.stdout
    };
    let unbounded = run(&debian, "1G");
    let whole = entries();
    assert_eq!(whole.len(), 2, "one entry per layer of the Debian image");
    // A bound below the Debian image's two entries: after the distroless
    // scan (the most recent), at most the bound is kept, and it is not empty.
    let bound = whole.iter().sum::<u64>() - 1;
    run(&distroless, &bound.to_string());
    let kept = entries();
    assert!(
        !kept.is_empty() && kept.iter().sum::<u64>() <= bound,
        "{kept:?} within {bound}"
    );
    assert_eq!(run(&debian, "0"), unbounded, "the same inventory, rebuilt");
    assert!(entries().is_empty(), "a bound of 0 keeps nothing");
    let refused = scan(&["--cache-max-size", "1G", "--inventory-only", &debian]);
    assert_eq!(refused.code, 2, "--cache-max-size needs --cache-dir");
}
