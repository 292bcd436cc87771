//! Language packages matched in their own ecosystems: real Go vulnerability
//! database records (Debian's golang-golang-x-vuln-dev) and GitHub advisories
//! (`tests/data/osv-lang/README.md` says where each record came from), real
//! catalogers over small root filesystems, and the language rootfs built by
//! `scripts/lang-artifacts/build-packages.sh`.

use std::path::{Path, PathBuf};
use std::process::Command;

use trawl_advisory::AdvisoryDb;
use trawl_classify::{FixStateKind, ImageInfo, Report, Verdict};
use trawl_inventory::{Inventory, Package};
use trawl_layers::{Limits, read_rootfs};

mod schema_check;

fn records() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/osv-lang")
}

/// The real records, plus any extra ones written to a temporary directory.
fn database(extra: &[serde_json::Value]) -> AdvisoryDb {
    let dir = tempfile::tempdir().unwrap();
    for (i, r) in extra.iter().enumerate() {
        std::fs::write(dir.path().join(format!("extra{i}.json")), r.to_string()).unwrap();
    }
    let (db, warnings) = AdvisoryDb::from_osv_dirs(&[records(), dir.path().to_owned()]).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    db
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

/// An inventory of packages given as JSON (the report's own package form).
fn inventory(packages: &[serde_json::Value]) -> Inventory {
    Inventory {
        packages: packages
            .iter()
            .map(|p| serde_json::from_value::<Package>(p.clone()).unwrap())
            .collect(),
        ..Inventory::default()
    }
}

fn go(name: &str, version: &str, binary: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "golang", "name": name, "version": version, "arch": null,
        "source_name": name, "source_version": version,
        "purl": format!("pkg:golang/{name}@{version}"), "layer": null, "database": binary,
    })
}

fn rows(report: &Report) -> Vec<String> {
    report
        .findings
        .iter()
        .map(|f| {
            format!(
                "{} {} {} {} @{} ids={}+{} fixed={} | {}",
                f.ecosystem,
                f.package,
                f.installed_version,
                f.purl.as_deref().unwrap_or("-"),
                f.path.as_deref().unwrap_or("-"),
                f.id,
                f.aliases.join(","),
                f.fixed_version.as_deref().unwrap_or("-"),
                f.remediation
            )
        })
        .collect()
}

const DPKG_TAR: &[u8] =
    b"Package: tar\nStatus: install ok installed\nVersion: 1.34+dfsg-1.2\nArchitecture: amd64\n\n";
const NPM_TAR: &[u8] = br#"{"name": "tar", "version": "6.1.0"}"#;

/// A Debian record about Debian's `tar` (test record, not a published one).
fn debian_tar() -> serde_json::Value {
    serde_json::json!({"id": "TEST-DEBIAN-TAR", "upstream": ["CVE-2022-48303"],
        "affected": [{"package": {"ecosystem": "Debian:12", "name": "tar"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.34+dfsg-1.2+deb12u1"}]}]}]})
}

#[test]
fn an_npm_package_named_like_a_debian_source_package_is_not_matched_there() {
    let inv = rootfs(&[
        ("var/lib/dpkg/status", DPKG_TAR),
        ("etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n"),
        ("app/node_modules/tar/package.json", NPM_TAR),
    ]);
    assert_eq!(inv.packages.len(), 2, "{:?}", inv.packages);
    let db = database(&[debian_tar()]);
    let report = Report::generate("dir:t", ImageInfo::default(), inv, &db);
    schema_check::assert_serializes_to_valid_report(&report);
    // Only Debian's tar; npm's tar is matched in npm, where nothing affects it.
    assert_eq!(
        rows(&report),
        [
            "Debian:12 tar 1.34+dfsg-1.2 - @- ids=CVE-2022-48303+TEST-DEBIAN-TAR fixed=1.34+dfsg-1.2+deb12u1 | upgrade tar to 1.34+dfsg-1.2+deb12u1 or later"
        ]
    );
    assert_eq!(report.verdict, Verdict::Unhealthy);
}

#[test]
fn an_ecosystem_without_advisory_data_makes_the_scan_partial() {
    let inv = rootfs(&[
        ("var/lib/dpkg/status", DPKG_TAR),
        ("etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n"),
        ("app/node_modules/tar/package.json", NPM_TAR),
    ]);
    // Debian data only: no npm records at all.
    let dir = tempfile::tempdir().unwrap();
    let mut tar = debian_tar();
    tar["affected"][0]["ranges"][0]["events"][1]["fixed"] = "1.34+dfsg-1.1".into();
    std::fs::write(dir.path().join("tar.json"), tar.to_string()).unwrap();
    let db = AdvisoryDb::from_osv_dirs(&[dir.path()]).unwrap().0;
    let report = Report::generate("dir:t", ImageInfo::default(), inv, &db);
    schema_check::assert_serializes_to_valid_report(&report);
    assert!(report.findings.is_empty());
    assert_eq!(report.verdict, Verdict::Partial);
    assert_eq!(
        report.verdict_reason,
        "incomplete scan: no advisory data for npm (1 package not matched)"
    );
}

#[test]
fn every_instance_is_a_finding_naming_its_path() {
    let inv = rootfs(&[
        (
            "app/node_modules/cookie/package.json",
            br#"{"name": "cookie", "version": "0.5.0"}"#,
        ),
        (
            "app/node_modules/express/node_modules/cookie/package.json",
            br#"{"name": "cookie", "version": "0.4.1"}"#,
        ),
        (
            "srv/node_modules/cookie/package.json",
            br#"{"name": "cookie", "version": "0.7.0"}"#,
        ),
    ]);
    let report = Report::generate("dir:t", ImageInfo::default(), inv, &database(&[]));
    schema_check::assert_serializes_to_valid_report(&report);
    assert_eq!(
        rows(&report),
        [
            "npm cookie 0.5.0 pkg:npm/cookie@0.5.0 @app/node_modules/cookie/package.json ids=CVE-2024-47764+GHSA-pxg6-pf52-xh8x fixed=0.7.0 | upgrade cookie from 0.5.0 to 0.7.0 (npm, /app/node_modules/cookie/package.json)",
            "npm cookie 0.4.1 pkg:npm/cookie@0.4.1 @app/node_modules/express/node_modules/cookie/package.json ids=CVE-2024-47764+GHSA-pxg6-pf52-xh8x fixed=0.7.0 | upgrade cookie from 0.4.1 to 0.7.0 (npm, /app/node_modules/express/node_modules/cookie/package.json)",
        ]
    );
    // No OS package database, but every ecosystem covered: judged by its
    // language packages.
    assert_eq!(report.verdict, Verdict::Unhealthy);
    assert_eq!(
        report.verdict_reason,
        "2 known vulnerabilities (2 with a fix available)"
    );
    let steps: Vec<(&str, Option<&str>, &str, &str)> = report
        .remediation
        .iter()
        .map(|s| {
            (
                s.package.as_str(),
                s.path.as_deref(),
                s.from.as_str(),
                s.to.as_str(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (
                "cookie",
                Some("app/node_modules/cookie/package.json"),
                "0.5.0",
                "0.7.0"
            ),
            (
                "cookie",
                Some("app/node_modules/express/node_modules/cookie/package.json"),
                "0.4.1",
                "0.7.0"
            ),
        ]
    );
    assert!(
        report
            .remediation
            .iter()
            .all(|s| s.ecosystem.as_deref() == Some("npm"))
    );
}

#[test]
fn go_stdlib_meets_the_vulndb_stdlib_entries() {
    let db = database(&[]);
    let inv = inventory(&[
        go("stdlib", "go1.4.2", "usr/local/bin/old"),
        go("example.com/app", "(devel)", "usr/local/bin/old"),
        go("github.com/beego/beego/v2", "v2.0.3", "usr/local/bin/old"),
        go("stdlib", "go1.15.15", "usr/local/bin/new"),
    ]);
    let report = Report::generate("dir:go", ImageInfo::default(), inv, &db);
    schema_check::assert_serializes_to_valid_report(&report);
    assert_eq!(
        rows(&report),
        [
            "Go github.com/beego/beego/v2 v2.0.3 pkg:golang/github.com/beego/beego/v2@v2.0.3 @usr/local/bin/old ids=CVE-2022-31836+GHSA-95f9-94vc-665h,GO-2022-0569 fixed=2.0.4 | rebuild /usr/local/bin/old with github.com/beego/beego/v2 2.0.4 or later (installed v2.0.3; Go)",
            "Go stdlib go1.4.2 pkg:golang/stdlib@go1.4.2 @usr/local/bin/old ids=GO-2021-0157+CVE-2015-5739,CVE-2015-5740,CVE-2015-5741,GO-2021-0159 fixed=1.4.3 | rebuild /usr/local/bin/old with Go 1.4.3 or later (Go toolchain)",
        ]
    );
    // `(devel)` is not matched, and not a failure.
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(report.verdict, Verdict::Unhealthy);

    let fixed = inventory(&[go("stdlib", "go1.4.3", "usr/local/bin/app")]);
    let report = Report::generate("dir:go", ImageInfo::default(), fixed, &db);
    schema_check::assert_serializes_to_valid_report(&report);
    assert!(report.findings.is_empty());
    assert_eq!(
        report.verdict,
        Verdict::Healthy,
        "{}",
        report.verdict_reason
    );
}

#[test]
fn toolchain_entries_match_stdlib_too() {
    let toolchain = serde_json::json!({"id": "TEST-TOOLCHAIN", "aliases": ["CVE-0000-0001"],
        "affected": [{"package": {"ecosystem": "Go", "name": "toolchain"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "1.21.0-0"}, {"fixed": "1.21.5"}]}]}]});
    let db = database(&[toolchain]);
    let report = Report::generate(
        "dir:go",
        ImageInfo::default(),
        inventory(&[go("stdlib", "go1.21rc2", "app")]),
        &db,
    );
    schema_check::assert_serializes_to_valid_report(&report);
    assert_eq!(
        rows(&report),
        [
            "Go stdlib go1.21rc2 pkg:golang/stdlib@go1.21rc2 @app ids=CVE-0000-0001+TEST-TOOLCHAIN fixed=1.21.5 | rebuild /app with Go 1.21.5 or later (Go toolchain)"
        ]
    );
}

#[test]
fn pypi_names_meet_in_pep503_form() {
    let inv = rootfs(&[(
        "usr/local/lib/python3.11/site-packages/Requests-2.31.0.dist-info/METADATA",
        b"Metadata-Version: 2.1\nName: Requests\nVersion: 2.31.0\n",
    )]);
    let report = Report::generate("dir:py", ImageInfo::default(), inv, &database(&[]));
    schema_check::assert_serializes_to_valid_report(&report);
    assert_eq!(report.findings.len(), 1, "{:?}", rows(&report));
    let f = &report.findings[0];
    assert_eq!(
        (f.id.as_str(), f.fix_state),
        ("CVE-2024-35195", FixStateKind::Fixed)
    );
    assert_eq!(
        f.remediation,
        "upgrade Requests from 2.31.0 to 2.32.2 (PyPI, /usr/local/lib/python3.11/site-packages/Requests-2.31.0.dist-info/METADATA)"
    );
}

/// The built language test data (`$TRAWL_LANG_ARTIFACTS`, else the
/// workspace's `target/lang-artifacts`), built on first use.
fn artifacts() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::env::var_os("TRAWL_LANG_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/lang-artifacts"));
    let status = Command::new("bash")
        .arg(root.join("scripts/lang-artifacts/build-packages.sh"))
        .arg(&dir)
        .status()
        .expect("run scripts/lang-artifacts/build-packages.sh");
    assert!(
        status.success(),
        "building the language test data failed: {status}"
    );
    dir
}

#[test]
fn the_language_rootfs_against_real_advisories() {
    let root = artifacts().join("rootfs");
    let fs = read_rootfs(&root, &trawl_inventory::selection(), &Limits::default()).unwrap();
    let inv = trawl_inventory::catalog(&fs);
    let owned = inv
        .packages
        .iter()
        .find(|p| p.name == "requests" && p.version == "2.28.1")
        .expect("Debian's requests");
    assert_eq!(owned.owned_by.as_deref(), Some("python3-requests"));
    let report = Report::generate("dir:lang", ImageInfo::default(), inv, &database(&[]));
    schema_check::assert_serializes_to_valid_report(&report);
    // Sorted by severity (HIGH, MODERATE, LOW), then package. Debian's
    // requests 2.28.1 (owned by python3-requests) is not matched in PyPI;
    // the rootfs has no os-release, so its dpkg packages are not judged.
    assert_eq!(
        rows(&report),
        [
            "npm body-parser 1.20.1 pkg:npm/body-parser@1.20.1 @app/node_modules/body-parser/package.json ids=CVE-2024-45590+GHSA-qwcr-r2fm-qrc7 fixed=1.20.3 | upgrade body-parser from 1.20.1 to 1.20.3 (npm, /app/node_modules/body-parser/package.json)",
            "npm path-to-regexp 0.1.7 pkg:npm/path-to-regexp@0.1.7 @app/node_modules/path-to-regexp/package.json ids=CVE-2024-45296+GHSA-9wv6-86v2-598j fixed=0.1.10 | upgrade path-to-regexp from 0.1.7 to 0.1.10 (npm, /app/node_modules/path-to-regexp/package.json)",
            "PyPI requests 2.31.0 pkg:pypi/requests@2.31.0 @usr/local/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA ids=CVE-2024-35195+GHSA-9wx4-h78v-vm56 fixed=2.32.2 | upgrade requests from 2.31.0 to 2.32.2 (PyPI, /usr/local/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA)",
            "npm cookie 0.5.0 pkg:npm/cookie@0.5.0 @app/node_modules/cookie/package.json ids=CVE-2024-47764+GHSA-pxg6-pf52-xh8x fixed=0.7.0 | upgrade cookie from 0.5.0 to 0.7.0 (npm, /app/node_modules/cookie/package.json)",
        ]
    );
    assert_eq!(report.verdict, Verdict::Unhealthy);
    assert_eq!(
        report.verdict_reason,
        "4 known vulnerabilities (4 with a fix available); the OS packages were not judged, \
         more may exist: unknown OS: no os-release or release file; the scan is incomplete, \
         more may exist: no advisory data for NuGet (18 packages not matched); no advisory \
         data for Packagist (12 packages not matched); no advisory data for RubyGems (4 \
         packages not matched)"
    );
}
