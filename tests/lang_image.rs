//! The language-heavy test image end to end: a real OCI image (built by
//! `scripts/lang-artifacts/build-image.sh` with umoci from packages pip, npm,
//! pnpm, composer and dpkg installed, Go binaries, a cargo-auditable binary
//! and Java archives), scanned by `trawl scan --inventory-only` as a user
//! runs it.
//!
//! Every ecosystem's list equals what its own tool listed when the data was
//! built (`importlib.metadata`, `npm ls`, `pnpm ls`, `Gem::Specification`,
//! `composer show`, the `deps.json` libraries, `go version -m`,
//! `rust-audit-info`, `unzip` + the archives' pom.properties/manifests,
//! `dpkg-query`): name, version and path, with the layer that introduced
//! each file and the OS package owning each metadata file. Every output
//! format carries the language packages.

mod common;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

#[path = "../crates/trawl-classify/tests/schema_check/mod.rs"]
mod schema_check;

/// `trawl scan --inventory-only --format FORMAT` of the image: its stdout.
fn scan(format: &str) -> String {
    let source = format!(
        "oci-dir:{}:lang",
        common::lang_artifacts().join("image").display()
    );
    let out = Command::new(common::trawl_bin())
        .args(["scan", "--inventory-only", "--format", format, &source])
        .env("NO_COLOR", "1")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn report() -> &'static Value {
    static REPORT: OnceLock<Value> = OnceLock::new();
    REPORT.get_or_init(|| {
        let report = serde_json::from_str(&scan("json")).unwrap();
        schema_check::assert_valid_inventory(&report);
        report
    })
}

/// The image's two layers (their blob digests, as reports name layers), base
/// first, from the manifest.
fn layers() -> Vec<String> {
    let image = common::lang_artifacts().join("image");
    let blob = |digest: &str| -> Value {
        let hex = digest.strip_prefix("sha256:").unwrap();
        serde_json::from_slice(&std::fs::read(image.join("blobs/sha256").join(hex)).unwrap())
            .unwrap()
    };
    let index: Value =
        serde_json::from_slice(&std::fs::read(image.join("index.json")).unwrap()).unwrap();
    let manifest = blob(index["manifests"][0]["digest"].as_str().unwrap());
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// `name<TAB>version<TAB>location<TAB>layer` rows of one package type in
/// the report, sorted.
fn ours(kind: &str) -> Vec<String> {
    let mut rows: Vec<String> = report()["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == kind)
        .map(|p| {
            let mut location = p["database"].as_str().unwrap().to_string();
            for inner in p["nested"].as_array().into_iter().flatten() {
                location.push_str("!/");
                location.push_str(inner.as_str().unwrap());
            }
            format!(
                "{}\t{}\t{}\t{}",
                p["name"].as_str().unwrap(),
                p["version"].as_str().unwrap(),
                location,
                p["layer"].as_str().unwrap_or("-")
            )
        })
        .collect();
    rows.sort();
    rows
}

/// The rows of `expected/<file>` (name, version, path from the tool), in
/// layer `layer`.
fn tool_list(files: &[&str], layer: &str) -> Vec<String> {
    let mut rows = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(common::lang_artifacts().join("expected").join(file)).unwrap();
        rows.extend(
            text.lines()
                .filter(|l| !l.is_empty())
                .map(|l| format!("{l}\t{layer}")),
        );
    }
    rows.sort();
    rows
}

#[test]
fn installed_language_packages_equal_their_tools_lists() {
    let layers = layers();
    assert_eq!(layers.len(), 2);
    let base = &layers[0];
    for (kind, files) in [
        ("pypi", &["python.tsv"][..]),
        ("npm", &["npm.tsv", "pnpm.tsv"]),
        ("gem", &["gem.tsv"]),
        ("composer", &["composer.tsv"]),
        ("nuget", &["dotnet.tsv"]),
    ] {
        assert_eq!(ours(kind), tool_list(files, base), "{kind}");
    }
}

#[test]
fn os_packages_equal_dpkg_query_and_own_their_metadata_files() {
    let rootfs = common::lang_artifacts().join("rootfs");
    let out = Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            rootfs.join("var/lib/dpkg").display()
        ))
        .args(["-W", "-f", "${Package}\t${Version}\tvar/lib/dpkg/status\n"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let base = &layers()[0];
    let mut expected: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| format!("{l}\t{base}"))
        .collect();
    expected.sort();
    assert_eq!(ours("deb"), expected);

    // owners.tsv: `dpkg -S` of every metadata file; no other package is owned.
    let owners: BTreeMap<String, String> =
        std::fs::read_to_string(common::lang_artifacts().join("expected/owners.tsv"))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(path, owner)| (path.to_string(), owner.to_string()))
            .collect();
    let mut owned = 0;
    for p in report()["packages"].as_array().unwrap() {
        if p["type"] == "deb" {
            continue;
        }
        let database = p["database"].as_str().unwrap();
        let want = owners.get(database).map(String::as_str);
        assert_eq!(p["owned_by"].as_str(), want, "{database}");
        owned += usize::from(want.is_some());
    }
    assert!(owned >= 90, "{owned} owned packages");
}

/// `(name, version)` of each module `go version -m` listed, replacements
/// applied (the replacement is what is linked), the toolchain as `stdlib`.
fn go_version_m(expected: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(expected).unwrap();
    let mut lines = text.lines();
    let toolchain = lines.next().unwrap().rsplit_once(": ").unwrap().1;
    let mut out = vec![("stdlib".to_string(), toolchain.to_string())];
    for line in lines {
        let cols: Vec<&str> = line.trim_start_matches('\t').split('\t').collect();
        match cols[0] {
            "mod" | "dep" => out.push((cols[1].into(), cols[2].into())),
            "=>" => *out.last_mut().unwrap() = (cols[1].into(), cols[2].into()),
            _ => {}
        }
    }
    out
}

#[test]
fn binaries_and_archives_equal_their_reference_readers() {
    let top = &layers()[1];
    let a = common::lang_artifacts();
    let mut expected = Vec::new();
    for (path, listing) in [
        ("usr/local/bin/app", a.join("go/app-go1.19-amd64.expected")),
        ("usr/local/bin/trivy", a.join("go/trivy.expected")),
        ("usr/local/bin/syft", a.join("go/syft.expected")),
    ] {
        for (name, version) in go_version_m(&listing) {
            expected.push(format!("{name}\t{version}\t{path}\t{top}"));
        }
    }
    expected.sort();
    assert_eq!(ours("golang"), expected);

    let audit: Value = serde_json::from_str(
        &std::fs::read_to_string(a.join("rust/auditable-demo.expected.json")).unwrap(),
    )
    .unwrap();
    let mut expected: Vec<String> = audit["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}\t{}\tusr/local/bin/auditable-demo\t{top}",
                p["name"].as_str().unwrap(),
                p["version"].as_str().unwrap()
            )
        })
        .collect();
    expected.sort();
    assert_eq!(ours("cargo"), expected);

    // `chain<TAB>group<TAB>artifact<TAB>version<TAB>evidence`, from unzip.
    let mut expected = Vec::new();
    for (path, listing) in [
        ("app/demo-boot.jar", "demo-boot-0.0.1-SNAPSHOT.jar"),
        ("srv/demo-ear-3.2.ear", "demo-ear-3.2.ear"),
    ] {
        let text = std::fs::read_to_string(a.join(format!("java/{listing}.expected.tsv"))).unwrap();
        for line in text.lines().filter(|l| !l.is_empty()) {
            let c: Vec<&str> = line.split('\t').collect();
            let name = if c[1].is_empty() {
                c[2].to_string()
            } else {
                format!("{}:{}", c[1], c[2])
            };
            let mut location = path.to_string();
            for inner in c[0].split(" > ").filter(|s| !s.is_empty()) {
                location.push_str("!/");
                location.push_str(inner);
            }
            expected.push(format!("{name}\t{}\t{location}\t{top}", c[3]));
        }
    }
    expected.sort();
    assert_eq!(ours("maven"), expected);
}

#[test]
fn every_format_carries_the_language_packages() {
    let packages = report()["packages"].as_array().unwrap();
    let purls: BTreeSet<&str> = packages
        .iter()
        .map(|p| p["purl"].as_str().unwrap())
        .collect();
    let types: BTreeSet<&str> = packages
        .iter()
        .map(|p| p["type"].as_str().unwrap())
        .collect();
    // The report says which catalogers looked at the image.
    let catalogers: BTreeSet<&str> = report()["catalogers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(catalogers.len() >= 9, "{catalogers:?}");
    assert_eq!(
        types,
        BTreeSet::from([
            "cargo", "composer", "deb", "gem", "golang", "maven", "npm", "nuget", "pypi"
        ])
    );

    let cyclonedx: Value = serde_json::from_str(&scan("cyclonedx")).unwrap();
    let in_bom: BTreeSet<&str> = cyclonedx["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["purl"].as_str())
        .collect();
    assert_eq!(in_bom, purls, "CycloneDX components");

    let spdx: Value = serde_json::from_str(&scan("spdx")).unwrap();
    let in_spdx: BTreeSet<&str> = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["externalRefs"].as_array().into_iter().flatten())
        .filter(|r| r["referenceType"] == "purl")
        .map(|r| r["referenceLocator"].as_str().unwrap())
        .collect();
    assert_eq!(in_spdx, purls, "SPDX purl references");

    let table = scan("table");
    for section in [
        "OS packages (14)",
        "Go packages (",
        "crates.io packages (4)",
        "PyPI packages (31)",
        "npm packages (105)",
        "Maven packages (11)",
        "RubyGems packages (94)",
        "Packagist packages (12)",
        "NuGet packages (18)",
    ] {
        assert!(table.contains(section), "{section} in\n{table}");
    }
    assert!(table.contains("app/demo-boot.jar!/BOOT-INF/lib/guava-31.1-jre.jar"));

    let sarif: Value = serde_json::from_str(&scan("sarif")).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
}
