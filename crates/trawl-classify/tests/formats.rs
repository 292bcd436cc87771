//! SARIF, CycloneDX and SPDX output of a real report, checked by each
//! format's own validator: Microsoft's SARIF Multitool (`sarif-multitool`,
//! npm `@microsoft/sarif-multitool`), CycloneDX's Python library
//! (`cyclonedx-python-lib[json-validation]`) and SPDX's `pyspdxtools` (PyPI
//! `spdx-tools`). A validator that is not installed is reported and skipped;
//! CI installs all three.
//!
//! The report comes from the real pipeline: a two-layer image made of the
//! shared Ubuntu dpkg status fixture and Ubuntu os-release, catalogued by
//! `trawl-inventory` and matched against OSV records written here, so it has
//! findings of every severity, with and without fixes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sha2::{Digest, Sha256};
use trawl_advisory::{Advisory, AdvisoryDb};
use trawl_classify::{ImageInfo, Report, formats};
use trawl_inventory::Inventory;
use trawl_layers::{Limits, MergedFs, read_layer};
use validators::{assert_valid, cyclonedx_validator, sarif_multitool, spdx_validator};

mod schema_check;
mod validators;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, path, *data).unwrap();
    }
    tar.into_inner().unwrap()
}

/// OSV records for the fixture's source packages, one per rating path:
/// a CVSS vector, the feed's severity word, Debian-style urgency, none.
const RECORDS: &[&str] = &[
    r#"{"id": "CVE-2024-1001", "modified": "2024-01-01T00:00:00Z",
        "summary": "util-linux: heap overflow in libblkid",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [{"package": {"ecosystem": "Ubuntu:20.04:LTS", "name": "util-linux"},
          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.31.1-0.4ubuntu3.2"}]}]}]}"#,
    r#"{"id": "CVE-2024-1002", "modified": "2024-01-01T00:00:00Z", "aliases": ["UBUNTU-CVE-2024-1002"],
        "affected": [{"package": {"ecosystem": "Ubuntu:20.04:LTS", "name": "ustr"},
          "database_specific": {"severity": "high"},
          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0.4-4"}]}]}]}"#,
    r#"{"id": "CVE-2024-1003", "modified": "2024-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "Ubuntu:20.04:LTS", "name": "pam"},
          "database_specific": {"severity": "medium"},
          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}"#,
    r#"{"id": "CVE-2024-1004", "modified": "2024-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "Ubuntu:20.04:LTS", "name": "zlib"},
          "database_specific": {"severity": "low"},
          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:1.2.11.dfsg-0ubuntu2.1"}]}]}]}"#,
    r#"{"id": "CVE-2024-1005", "modified": "2024-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "Ubuntu:20.04:LTS", "name": "bzip2"},
          "ecosystem_specific": {"urgency": "unimportant"},
          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0.6-8.1ubuntu0.1"}]}]}]}"#,
    r#"{"id": "CVE-2024-1006", "modified": "2024-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "Ubuntu:20.04:LTS", "name": "glibc"},
          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}"#,
    r#"{"id": "CVE-2024-1007", "modified": "2024-01-01T00:00:00Z",
        "database_specific": {"severity": "critical"},
        "affected": [{"package": {"ecosystem": "Ubuntu:20.04:LTS", "name": "perl"},
          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "5.26.1-6ubuntu0.1"}]}]}]}"#,
];

struct Scan {
    report: Report,
    base: String,
    top: String,
    manifest_digest: String,
}

/// The report of a two-layer image: the base has os-release and every
/// package but `libustr-1.0-1`, the top layer adds it (the fixture's last
/// stanza, `git`, is deinstalled and no package).
fn scan() -> Scan {
    let txtar = std::fs::read_to_string(fixtures().join("dpkg/trivy-valid.txtar")).unwrap();
    let status = txtar.split("-- var/lib/dpkg/status --\n").nth(1).unwrap();
    let ustr_at = status.find("\nPackage: libustr-1.0-1\n").unwrap() + 1;
    let base_status = &status[..ustr_at];
    let os_release = std::fs::read(fixtures().join("os-release/ubuntu/etc/os-release")).unwrap();

    let base_blob = layer(&[
        ("etc/os-release", &os_release),
        ("var/lib/dpkg/status", base_status.as_bytes()),
    ]);
    let top_blob = layer(&[("var/lib/dpkg/status", status.as_bytes())]);
    let (base, top) = (sha256(&base_blob), sha256(&top_blob));
    let sel = trawl_inventory::selection();
    let limits = Limits::default();
    let fs = MergedFs::from_layers(vec![
        (
            base.clone(),
            read_layer(&base, &base_blob[..], &sel, &limits).unwrap(),
        ),
        (
            top.clone(),
            read_layer(&top, &top_blob[..], &sel, &limits).unwrap(),
        ),
    ]);
    let inventory = trawl_inventory::catalog(&fs);
    assert_eq!(inventory.packages.len(), 90);

    let mut db = AdvisoryDb::new();
    for record in RECORDS {
        let advisory: Advisory = serde_json::from_str(record).unwrap();
        assert!(db.add_osv(advisory).is_empty());
    }
    let manifest = serde_json::json!({"schemaVersion": 2, "layers": [&base, &top]}).to_string();
    let manifest_digest = sha256(manifest.as_bytes());
    let image = ImageInfo {
        manifest_digest: Some(manifest_digest.clone()),
        layers: vec![base.clone(), top.clone()],
        diff_ids: vec![base.clone(), top.clone()],
    };
    let report = Report::generate("oci-dir:/images/fixture:latest", image, inventory, &db);
    schema_check::assert_serializes_to_valid_report(&report);
    Scan {
        report,
        base,
        top,
        manifest_digest,
    }
}

/// Every (id, package) finding the records above produce on the fixture.
const EXPECTED_FINDINGS: &[(&str, &str)] = &[
    ("CVE-2024-1001", "bsdutils"),
    ("CVE-2024-1001", "fdisk"),
    ("CVE-2024-1001", "libblkid1"),
    ("CVE-2024-1001", "libfdisk1"),
    ("CVE-2024-1001", "libmount1"),
    ("CVE-2024-1001", "libsmartcols1"),
    ("CVE-2024-1001", "libuuid1"),
    ("CVE-2024-1001", "mount"),
    ("CVE-2024-1001", "util-linux"),
    ("CVE-2024-1002", "libustr-1.0-1"),
    ("CVE-2024-1003", "libpam-modules"),
    ("CVE-2024-1003", "libpam-modules-bin"),
    ("CVE-2024-1003", "libpam-runtime"),
    ("CVE-2024-1003", "libpam0g"),
    ("CVE-2024-1004", "zlib1g"),
    ("CVE-2024-1005", "bzip2"),
    ("CVE-2024-1005", "libbz2-1.0"),
    ("CVE-2024-1006", "libc-bin"),
    ("CVE-2024-1006", "libc6"),
];

fn render(write: impl Fn(&mut Vec<u8>) -> Result<(), formats::FormatError>) -> (String, Value) {
    let mut out = Vec::new();
    write(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let json = serde_json::from_str(&text).unwrap();
    (text, json)
}

fn created() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_714_564_800)
}

// --- SARIF ------------------------------------------------------------------

fn fingerprint(id: &str, package: &str, version: &str, arch: &str) -> String {
    let mut h = Sha256::new();
    for part in [id, package, version, arch] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

#[test]
fn sarif_has_a_rule_per_vulnerability_and_a_result_per_finding() {
    let Scan { report, top, .. } = scan();
    let (text, sarif) = render(|out| formats::write_sarif(out, &report));
    assert_valid("SARIF", sarif_multitool(&text));

    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    assert_eq!(sarif["runs"].as_array().unwrap().len(), 1);
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "trawl");
    assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));

    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), report.findings.len());
    let mut found: Vec<(&str, &str)> = results
        .iter()
        .map(|r| {
            (
                r["ruleId"].as_str().unwrap(),
                r["locations"][0]["logicalLocations"][0]["name"]
                    .as_str()
                    .unwrap(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(found, EXPECTED_FINDINGS);

    let rules = driver["rules"].as_array().unwrap();
    let rule_ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    // Most serious first; the perl record does not match (fixed version installed).
    assert_eq!(
        rule_ids,
        [
            "CVE-2024-1001",
            "CVE-2024-1002",
            "CVE-2024-1003",
            "CVE-2024-1004",
            "CVE-2024-1005",
            "CVE-2024-1006"
        ]
    );
    let security_severity: Vec<Option<&str>> = rules
        .iter()
        .map(|r| r["properties"]["security-severity"].as_str())
        .collect();
    assert_eq!(
        security_severity,
        [
            Some("9.8"),
            Some("8.0"),
            Some("5.5"),
            Some("2.0"),
            Some("0.0"),
            None
        ]
    );
    assert_eq!(
        rules[0]["properties"]["tags"],
        serde_json::json!(["security", "vulnerability", "critical"])
    );
    assert_eq!(
        rules[0]["shortDescription"]["text"],
        "CVE-2024-1001: util-linux: heap overflow in libblkid"
    );
    let help = rules[0]["help"]["text"].as_str().unwrap();
    assert!(
        help.contains("fdisk 2.31.1-0.4ubuntu3.1 (source util-linux 2.31.1-0.4ubuntu3.1): fixed in 2.31.1-0.4ubuntu3.2"),
        "{help}"
    );
    assert!(
        rules[1]["fullDescription"]["text"]
            .as_str()
            .unwrap()
            .contains("also UBUNTU-CVE-2024-1002")
    );

    let result_for = |id: &str, package: &str| {
        results
            .iter()
            .find(|r| {
                r["ruleId"] == id && r["locations"][0]["logicalLocations"][0]["name"] == package
            })
            .unwrap()
    };
    let fdisk = result_for("CVE-2024-1001", "fdisk");
    assert_eq!(fdisk["level"], "error");
    assert_eq!(fdisk["ruleIndex"], 0);
    assert_eq!(
        fdisk["message"]["text"],
        "fdisk 2.31.1-0.4ubuntu3.1 is affected by CVE-2024-1001 (critical); fixed in util-linux 2.31.1-0.4ubuntu3.2"
    );
    assert_eq!(
        fdisk["partialFingerprints"]["trawl/v1"],
        fingerprint("CVE-2024-1001", "fdisk", "2.31.1-0.4ubuntu3.1", "amd64")
    );
    assert_eq!(
        fdisk["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "var/lib/dpkg/status"
    );
    assert_eq!(
        fdisk["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
        report
            .packages
            .iter()
            .find(|p| p.name == "fdisk")
            .unwrap()
            .purl
    );
    let ustr = result_for("CVE-2024-1002", "libustr-1.0-1");
    assert_eq!(ustr["level"], "error");
    assert_eq!(ustr["properties"]["layer"], top.as_str());
    assert_eq!(ustr["properties"]["fixedVersion"], "1.0.4-4");
    let pam = result_for("CVE-2024-1003", "libpam0g");
    assert_eq!(pam["level"], "warning");
    assert!(
        pam["message"]["text"]
            .as_str()
            .unwrap()
            .ends_with("no fixed version is available yet")
    );
    assert!(pam["properties"].get("fixedVersion").is_none());
    assert_eq!(result_for("CVE-2024-1004", "zlib1g")["level"], "note");
    assert_eq!(result_for("CVE-2024-1005", "bzip2")["level"], "note");
    assert_eq!(result_for("CVE-2024-1006", "libc6")["level"], "note");

    // Fingerprints are unique and the same on every run.
    let prints: BTreeSet<&str> = results
        .iter()
        .map(|r| r["partialFingerprints"]["trawl/v1"].as_str().unwrap())
        .collect();
    assert_eq!(prints.len(), results.len());
    let (again, _) = render(|out| formats::write_sarif(out, &scan().report));
    assert_eq!(again, text);
}

// --- CycloneDX --------------------------------------------------------------

#[test]
fn cyclonedx_lists_image_os_packages_and_vulnerabilities() {
    let Scan {
        report,
        base,
        top,
        manifest_digest,
    } = scan();
    let (text, bom) = render(|out| formats::write_cyclonedx(out, &report));
    assert_valid("CycloneDX", cyclonedx_validator(&text));

    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert_eq!(bom["specVersion"], "1.6");
    let serial = bom["serialNumber"].as_str().unwrap();
    assert!(
        serial.starts_with("urn:uuid:") && serial.len() == 45,
        "{serial}"
    );

    let image = &bom["metadata"]["component"];
    assert_eq!(image["type"], "container");
    assert_eq!(image["name"], "oci-dir:/images/fixture:latest");
    assert_eq!(image["version"], manifest_digest.as_str());
    assert_eq!(image["hashes"][0]["alg"], "SHA-256");
    assert_eq!(
        image["hashes"][0]["content"],
        manifest_digest.strip_prefix("sha256:").unwrap()
    );
    assert_eq!(bom["metadata"]["tools"]["components"][0]["name"], "trawl");

    let components = bom["components"].as_array().unwrap();
    assert_eq!(components.len(), 1 + report.packages.len());
    assert_eq!(components[0]["type"], "operating-system");
    assert_eq!(components[0]["name"], "ubuntu");
    assert_eq!(components[0]["version"], "20.04");
    assert!(components[1..].iter().all(|c| c["type"] == "library"));
    let refs: BTreeSet<&str> = components
        .iter()
        .chain([image])
        .map(|c| c["bom-ref"].as_str().unwrap())
        .collect();
    assert_eq!(refs.len(), components.len() + 1, "bom-refs are unique");

    let component = |name: &str| components.iter().find(|c| c["name"] == name).unwrap();
    let property = |c: &Value, name: &str| {
        c["properties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["value"].as_str().unwrap().to_string())
    };
    let fdisk = component("fdisk");
    let fdisk_pkg = report.packages.iter().find(|p| p.name == "fdisk").unwrap();
    assert_eq!(fdisk["version"], "2.31.1-0.4ubuntu3.1");
    assert_eq!(fdisk["purl"], fdisk_pkg.purl.as_str());
    assert_eq!(fdisk["bom-ref"], fdisk_pkg.purl.as_str());
    assert_eq!(
        property(fdisk, "trawl:package:source_name").as_deref(),
        Some("util-linux")
    );
    assert_eq!(property(fdisk, "trawl:package:layer"), Some(base));
    assert_eq!(
        property(component("libustr-1.0-1"), "trawl:package:layer"),
        Some(top)
    );

    let vulns = bom["vulnerabilities"].as_array().unwrap();
    assert_eq!(vulns.len(), 6);
    for v in vulns {
        for a in v["affects"].as_array().unwrap() {
            assert!(refs.contains(a["ref"].as_str().unwrap()), "{a}");
        }
    }
    let vuln = |id: &str| vulns.iter().find(|v| v["id"] == id).unwrap();
    let util_linux = vuln("CVE-2024-1001");
    assert_eq!(util_linux["bom-ref"], "vuln:CVE-2024-1001:util-linux");
    assert_eq!(util_linux["source"]["name"], "Ubuntu:20.04:LTS");
    assert_eq!(util_linux["ratings"][0]["severity"], "critical");
    assert_eq!(util_linux["ratings"][0]["method"], "CVSSv3");
    assert_eq!(util_linux["ratings"][0]["score"], 9.8);
    assert_eq!(util_linux["affects"].as_array().unwrap().len(), 9);
    assert_eq!(
        util_linux["analysis"],
        serde_json::json!({"response": ["update"], "detail": "fixed in util-linux 2.31.1-0.4ubuntu3.2"})
    );
    assert!(
        util_linux["recommendation"]
            .as_str()
            .unwrap()
            .contains("to 2.31.1-0.4ubuntu3.2 or later")
    );
    let ustr = vuln("CVE-2024-1002");
    assert_eq!(ustr["references"][0]["id"], "UBUNTU-CVE-2024-1002");
    assert_eq!(ustr["ratings"][0]["method"], "other");
    assert_eq!(ustr["ratings"][0]["severity"], "high");
    let pam = vuln("CVE-2024-1003");
    assert!(pam.get("analysis").is_none(), "no fix: no analysis claimed");
    assert_eq!(pam["affects"].as_array().unwrap().len(), 4);
    assert_eq!(vuln("CVE-2024-1005")["ratings"][0]["severity"], "none");
    assert_eq!(vuln("CVE-2024-1006")["ratings"][0]["severity"], "unknown");

    // Reproducible, and the serial number follows the content.
    let (again, _) = render(|out| formats::write_cyclonedx(out, &scan().report));
    assert_eq!(again, text);
    let mut other = report.clone();
    other.image.manifest_digest = Some(sha256(b"another manifest"));
    let (_, other_bom) = render(|out| formats::write_cyclonedx(out, &other));
    assert_ne!(other_bom["serialNumber"], bom["serialNumber"]);
}

// --- SPDX -------------------------------------------------------------------

#[test]
fn spdx_describes_the_image_containing_its_packages() {
    let Scan {
        report,
        manifest_digest,
        ..
    } = scan();
    let (text, doc) = render(|out| formats::write_spdx(out, &report, created()));
    assert_valid("SPDX", spdx_validator(&text));

    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["dataLicense"], "CC0-1.0");
    assert_eq!(doc["SPDXID"], "SPDXRef-DOCUMENT");
    assert_eq!(doc["name"], "oci-dir:/images/fixture:latest");
    let namespace = doc["documentNamespace"].as_str().unwrap();
    let digest_segment = manifest_digest.replace(':', "%3A");
    assert!(
        namespace.starts_with(&format!(
            "https://spdx.org/spdxdocs/trawl/{digest_segment}/"
        )),
        "{namespace}"
    );
    assert_eq!(
        doc["creationInfo"],
        serde_json::json!({
            "creators": [format!("Tool: trawl-{}", env!("CARGO_PKG_VERSION"))],
            "created": "2024-05-01T12:00:00Z"
        })
    );

    let packages = doc["packages"].as_array().unwrap();
    assert_eq!(packages.len(), 2 + report.packages.len());
    let ids: BTreeSet<&str> = packages
        .iter()
        .map(|p| p["SPDXID"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), packages.len(), "SPDX ids are unique");
    for id in &ids {
        let rest = id.strip_prefix("SPDXRef-").unwrap();
        assert!(
            rest.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'),
            "{id}"
        );
    }
    assert_eq!(packages[0]["primaryPackagePurpose"], "CONTAINER");
    assert_eq!(packages[0]["versionInfo"], manifest_digest.as_str());
    assert_eq!(packages[1]["primaryPackagePurpose"], "OPERATING-SYSTEM");
    assert_eq!(packages[1]["name"], "ubuntu");

    let fdisk = packages.iter().find(|p| p["name"] == "fdisk").unwrap();
    let fdisk_pkg = report.packages.iter().find(|p| p.name == "fdisk").unwrap();
    assert_eq!(
        fdisk["SPDXID"],
        "SPDXRef-Package-deb-fdisk-2.31.1-0.4ubuntu3.1-amd64"
    );
    assert_eq!(fdisk["versionInfo"], "2.31.1-0.4ubuntu3.1");
    assert_eq!(fdisk["downloadLocation"], "NOASSERTION");
    assert_eq!(
        fdisk["externalRefs"],
        serde_json::json!([{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": fdisk_pkg.purl
        }])
    );
    assert_eq!(
        fdisk["sourceInfo"],
        "built from source package util-linux 2.31.1-0.4ubuntu3.1"
    );

    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for r in doc["relationships"].as_array().unwrap() {
        *kinds
            .entry(r["relationshipType"].as_str().unwrap())
            .or_default() += 1;
        assert!(
            r["spdxElementId"] == "SPDXRef-DOCUMENT"
                || ids.contains(r["spdxElementId"].as_str().unwrap())
        );
        assert!(ids.contains(r["relatedSpdxElement"].as_str().unwrap()));
    }
    assert_eq!(
        kinds,
        BTreeMap::from([("CONTAINS", report.packages.len() + 1), ("DESCRIBES", 1)])
    );

    let (again, _) = render(|out| formats::write_spdx(out, &scan().report, created()));
    assert_eq!(again, text);
}

// --- edge cases and the validators themselves --------------------------------

#[test]
fn an_unsupported_image_still_gives_valid_documents() {
    let report = Report::generate(
        "dir:/empty rootfs",
        ImageInfo::default(),
        Inventory::default(),
        &AdvisoryDb::new(),
    );
    schema_check::assert_serializes_to_valid_report(&report);
    let (sarif_text, sarif) = render(|out| formats::write_sarif(out, &report));
    assert_eq!(sarif["runs"][0]["results"], serde_json::json!([]));
    assert_eq!(sarif["runs"][0]["properties"]["verdict"], "unsupported");
    assert_valid("SARIF", sarif_multitool(&sarif_text));

    let (bom_text, bom) = render(|out| formats::write_cyclonedx(out, &report));
    assert!(bom.get("vulnerabilities").is_none());
    assert_eq!(bom["components"], serde_json::json!([]));
    assert!(bom["metadata"]["component"].get("version").is_none());
    assert_valid("CycloneDX", cyclonedx_validator(&bom_text));

    let (spdx_text, spdx) = render(|out| formats::write_spdx(out, &report, created()));
    assert_eq!(spdx["packages"].as_array().unwrap().len(), 1);
    assert!(
        spdx["documentNamespace"]
            .as_str()
            .unwrap()
            .starts_with("https://spdx.org/spdxdocs/trawl/dir%3A%2Fempty%20rootfs/")
    );
    assert_valid("SPDX", spdx_validator(&spdx_text));
}

/// The validator wrappers must fail on broken documents, or the tests above
/// would prove nothing (SARIF Multitool, for one, exits 0 on invalid logs).
#[test]
fn validators_reject_broken_documents() {
    let report = scan().report;
    let broken = |text: String, edit: &dyn Fn(&mut Value)| {
        let mut v: Value = serde_json::from_str(&text).unwrap();
        edit(&mut v);
        v.to_string()
    };
    let (sarif, _) = render(|out| formats::write_sarif(out, &report));
    // A schema violation (no message), then a GitHub one (no location). The
    // Multitool runs GitHub's rules only on schema-valid logs, and reports a
    // bad enum value alone (`"level": "severe"`) only alongside other schema
    // errors, so neither of those is the probe.
    for (field, rule) in [("message", "JSON1002"), ("locations", "\"GH1")] {
        let sarif = broken(sarif.clone(), &|v| {
            let result = v["runs"][0]["results"][0].as_object_mut().unwrap();
            result.remove(field);
        });
        if let Some(verdict) = sarif_multitool(&sarif) {
            let problems = verdict.unwrap_err();
            assert!(problems.contains(rule), "{problems}");
        }
    }

    let (bom, _) = render(|out| formats::write_cyclonedx(out, &report));
    let bom = broken(bom, &|v| {
        v["vulnerabilities"][0]["ratings"][0]["severity"] = "severe".into();
    });
    if let Some(verdict) = cyclonedx_validator(&bom) {
        assert!(verdict.unwrap_err().contains("severe"));
    }

    let (spdx, _) = render(|out| formats::write_spdx(out, &report, created()));
    let spdx = broken(spdx, &|v| {
        v["relationships"][0]["relatedSpdxElement"] = "SPDXRef-Missing".into();
    });
    if let Some(verdict) = spdx_validator(&spdx) {
        assert!(verdict.unwrap_err().contains("SPDXRef-Missing"));
    }
}
