//! Scans pulled from a real registry (Debian's docker-registry with basic
//! auth, TLS with a test CA, token auth, and a multi-platform index) give
//! reports identical to scans of the same images as OCI layouts.

mod common;
#[path = "../crates/trawl-registry/tests/registry_support/mod.rs"]
mod registry_support;

use std::time::Duration;

use registry_support::{DEBIAN_REPO, MULTI_REPO, PASSWORD, USER, fixture};
use trawl::registry::Credentials;
use trawl::{AdvisoryDb, ImageSource, RegistryOptions, Report, Scanner, Verdict};

fn options(host: &str) -> RegistryOptions {
    RegistryOptions::default()
        .credentials(host, Credentials::new(USER, PASSWORD))
        .docker_config(fixture().dir.path().join("no-docker-config.json"))
        .retry_base_delay(Duration::from_millis(20))
}

/// A feed with one record that affects the Debian image's openssl.
fn database() -> AdvisoryDb {
    let dir = tempfile::tempdir().unwrap();
    let record = serde_json::json!({"id": "TRAWL-REGISTRY-1", "summary": "test record",
        "affected": [{"package": {"ecosystem": "Debian:12", "name": "openssl"},
                      "database_specific": {"severity": "high"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]});
    std::fs::write(dir.path().join("r.json"), record.to_string()).unwrap();
    AdvisoryDb::from_osv_dirs(&[dir.path()]).unwrap().0
}

fn scan(options: RegistryOptions, source: String) -> Report {
    let scanner = Scanner::builder()
        .database(database())
        .registry_options(options)
        .build()
        .unwrap();
    let source: ImageSource = source.parse().unwrap();
    scanner
        .scan_blocking(&source)
        .unwrap_or_else(|e| panic!("{source}: {e}"))
}

fn layout(dir: &str, tag: &str) -> Report {
    let path = common::images().join(dir);
    scan(
        RegistryOptions::default(),
        format!("oci-dir:{}:{tag}", path.display()),
    )
}

/// Everything but the source string must be equal.
fn assert_same(mut pulled: Report, mut local: Report) {
    assert!(pulled.source.starts_with("registry:"), "{}", pulled.source);
    pulled.source.clear();
    local.source.clear();
    assert_eq!(pulled, local);
}

#[test]
fn registry_scans_equal_layout_scans() {
    let f = fixture();
    let debian = layout("debian/oci", "bookworm");
    assert_eq!(
        debian.verdict,
        Verdict::Unhealthy,
        "the feed affects openssl"
    );
    assert!(!debian.findings.is_empty());

    let basic = format!("registry:{}/{DEBIAN_REPO}:bookworm", f.basic.host);
    assert_same(scan(options(&f.basic.host), basic), debian.clone());

    let tls = format!("registry:{}/{DEBIAN_REPO}:bookworm", f.tls.host);
    assert_same(
        scan(options(&f.tls.host).ca_file(&f.pki.ca), tls),
        debian.clone(),
    );

    let token = format!("registry:{}/{DEBIAN_REPO}:bookworm", f.token.host);
    assert_same(scan(options(&f.token.host), token), debian.clone());

    let by_digest = format!(
        "registry:{}/{DEBIAN_REPO}@{}",
        f.basic.host,
        debian.image.manifest_digest.as_deref().unwrap()
    );
    assert_same(scan(options(&f.basic.host), by_digest), debian.clone());
}

#[test]
fn multi_platform_index_scans_the_chosen_platform() {
    let f = fixture();
    let multi = format!("registry:{}/{MULTI_REPO}:multi", f.basic.host);
    let amd64 = options(&f.basic.host).platform("linux/amd64".parse().unwrap());
    assert_same(scan(amd64, multi.clone()), layout("debian/oci", "bookworm"));
    let arm64 = options(&f.basic.host).platform("linux/arm64".parse().unwrap());
    let distroless = scan(arm64, multi);
    let packages: Vec<&str> = distroless
        .findings
        .iter()
        .map(|f| f.package.as_str())
        .collect();
    assert_eq!(
        packages,
        ["libssl3"],
        "distroless carries openssl's libssl3 only"
    );
    assert_same(distroless, layout("distroless/oci", "latest"));
}
