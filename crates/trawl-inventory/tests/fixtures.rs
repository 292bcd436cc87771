//! dpkg inventory and OS detection against the shared real-world fixtures, and
//! against `dpkg-query` itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use trawl_inventory::{Inventory, InventoryWarning, catalog, selection};
use trawl_layers::{Limits, read_rootfs};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

fn scan_dir(root: &Path) -> Inventory {
    let fs = read_rootfs(root, &selection(), &Limits::default()).unwrap();
    catalog(&fs)
}

/// A rootfs holding `var/lib/dpkg/status` = the txtar section of the trivy fixture.
fn trivy_rootfs() -> tempfile::TempDir {
    let txtar = std::fs::read_to_string(fixtures().join("dpkg/trivy-valid.txtar")).unwrap();
    let start =
        txtar.find("-- var/lib/dpkg/status --\n").unwrap() + "-- var/lib/dpkg/status --\n".len();
    let rest = &txtar[start..];
    let end = rest.find("\n-- ").map_or(rest.len(), |i| i + 1);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("var/lib/dpkg")).unwrap();
    std::fs::write(dir.path().join("var/lib/dpkg/status"), &rest[..end]).unwrap();
    dir
}

#[test]
fn status_file_matches_dpkg_query_field_for_field() {
    let root = trivy_rootfs();
    let inv = scan_dir(root.path());
    let ours: Vec<String> = inv
        .packages
        .iter()
        .map(|p| {
            format!(
                "{}\t{}\t{}\t{}\t{}",
                p.name,
                p.version,
                p.arch.as_deref().unwrap_or(""),
                p.source_name,
                p.source_version
            )
        })
        .collect();
    assert_eq!(
        ours.len(),
        90,
        "90 installed packages, one config-files entry left out"
    );
    let Ok(out) = Command::new("dpkg-query")
        .arg(format!("--admindir={}", root.path().join("var/lib/dpkg").display()))
        .args(["-W", "-f", "${db:Status-Status}\t${Package}\t${Version}\t${Architecture}\t${source:Package}\t${source:Version}\n"])
        .output()
    else {
        eprintln!("dpkg-query not installed; skipping the differential half");
        return;
    };
    let theirs: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("installed\t").map(str::to_string))
        .collect();
    let mut ours_sorted = ours.clone();
    ours_sorted.sort();
    let mut theirs_sorted = theirs;
    theirs_sorted.sort();
    assert_eq!(ours_sorted, theirs_sorted);
    let git = inv.packages.iter().find(|p| p.name == "fdisk").unwrap();
    assert_eq!(
        git.purl, "pkg:deb/debian/fdisk@2.31.1-0.4ubuntu3.1?arch=amd64",
        "no os-release: the default namespace"
    );
}

#[test]
fn distroless_status_d() {
    let inv = scan_dir(&fixtures().join("dpkg/distroless"));
    assert_eq!(inv.databases, ["var/lib/dpkg/status.d"]);
    assert_eq!(
        inv.packages.len(),
        1,
        "the .md5sums file is not a package entry"
    );
    let p = &inv.packages[0];
    assert_eq!(
        (
            p.name.as_str(),
            p.version.as_str(),
            p.arch.as_deref(),
            p.source_name.as_str(),
            p.source_version.as_str()
        ),
        (
            "libsqlite3-0",
            "3.34.1-3",
            Some("arm64"),
            "sqlite3",
            "3.34.1-3"
        )
    );
    assert_eq!(p.database, "var/lib/dpkg/status.d/libsqlite3-0");
    assert_eq!(p.layer, None);
    assert_eq!(p.purl, "pkg:deb/debian/libsqlite3-0@3.34.1-3?arch=arm64");
}

#[test]
fn corrupt_and_deinstalled_status_d_entries() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("var/lib/dpkg/status.d");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["corrupt", "deinstall"] {
        std::fs::copy(
            fixtures().join("dpkg/status.d-corrupt").join(f),
            dir.join(f),
        )
        .unwrap();
    }
    let inv = scan_dir(root.path());
    let names: Vec<&str> = inv.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["linux-image-6.14.0-1012-aws"],
        "the config-files entry is not installed"
    );
    assert_eq!(inv.packages[0].source_name, "linux-signed-aws-6.14");
    assert_eq!(inv.warnings.len(), 1, "{:?}", inv.warnings);
    assert!(matches!(
        &inv.warnings[0],
        InventoryWarning::MalformedEntry { database, line: 5, .. } if database == "var/lib/dpkg/status.d/corrupt"
    ));
}

#[test]
fn os_release_fixtures() {
    let cases = [
        ("os-release/debian/from-os-release", "debian", Some("8")),
        ("os-release/debian/with-point-release", "debian", Some("13")),
        (
            "os-release/debian/from-debian_version",
            "debian",
            Some("10"),
        ),
        ("os-release/ubuntu", "ubuntu", Some("20.04")),
    ];
    for (dir, id, version) in cases {
        let inv = scan_dir(&fixtures().join(dir));
        let os = inv.os.unwrap_or_else(|| panic!("{dir}: no OS"));
        assert_eq!(
            (os.id.as_str(), os.version_id.as_deref()),
            (id, version),
            "{dir}"
        );
    }
    assert_eq!(scan_dir(&fixtures().join("os-release/empty")).os, None);
}
