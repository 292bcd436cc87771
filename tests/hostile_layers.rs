//! Hostile layers through the library: a package database over the size
//! limit is never taken for an empty one (issue 15, item 5). The hostile
//! layers of items 3, 4 and 13 are scanned by `trawl scan`, within the
//! issue's resource bounds, in `tests/hostile_images.rs`; the same
//! reproductions at the level of the layer reader, with allocation counts,
//! are in `crates/trawl-layers/tests/budget.rs`.
//!
//! The package database is the one `dpkg` wrote on this (Debian) machine,
//! `/var/lib/dpkg/status`; the layers around it are built here.

#[path = "../crates/trawl-layers/tests/support/oci_layout.rs"]
mod oci_layout;

use std::path::Path;

use oci_layout::{E, tar_of, write_layout};
use serde_json::json;
use trawl::inventory::InventoryWarning;
use trawl::{AdvisoryDb, ImageSource, Limits, Scanner, Verdict};

const OS_RELEASE: &[u8] = b"ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n";

/// The machine's dpkg status file (CI runs on Debian 12, with dpkg).
fn dpkg_status() -> Vec<u8> {
    std::fs::read("/var/lib/dpkg/status").expect("/var/lib/dpkg/status (a Debian machine)")
}

/// Advisories for Debian 12: `dpkg` (in every status file) is affected in
/// every version, so reading the status file gives a finding.
fn debian_feed(dir: &Path) -> AdvisoryDb {
    std::fs::write(
        dir.join("TRAWL-DPKG.json"),
        json!({"id": "TRAWL-DPKG", "modified": "2026-11-01T00:00:00Z",
               "affected": [{"package": {"ecosystem": "Debian:12", "name": "dpkg"},
                             "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]})
        .to_string(),
    )
    .unwrap();
    AdvisoryDb::from_osv_dirs(&[dir]).unwrap().0
}

/// An OCI layout of these layers; the source naming it.
fn image(dir: &Path, layers: &[Vec<u8>]) -> ImageSource {
    write_layout(&dir.join("layout"), layers);
    format!("oci-dir:{}:test", dir.join("layout").display())
        .parse()
        .unwrap()
}

/// Issue 15, item 5: a package database over the size limit was dropped
/// with a warning and the image reported healthy.
#[test]
fn a_package_database_over_the_size_limit_makes_the_scan_partial() {
    let status = dpkg_status();
    let tmp = tempfile::tempdir().unwrap();
    let feed = tmp.path().join("feed");
    std::fs::create_dir(&feed).unwrap();
    let source = image(
        tmp.path(),
        &[tar_of(&[
            E::File("etc/os-release", OS_RELEASE),
            E::File("var/lib/dpkg/status", &status),
        ])],
    );
    let scanner = Scanner::builder()
        .database(debian_feed(&feed))
        .build()
        .unwrap();
    // Read, the database gives a finding.
    let read = scanner.scan_blocking(&source).unwrap();
    assert_eq!(read.verdict, Verdict::Unhealthy);

    let limits = Limits {
        max_file_size: status.len() as u64 - 1,
        ..Limits::default()
    };
    let scanner = Scanner::builder()
        .database(debian_feed(&feed))
        .limits(limits)
        .build()
        .unwrap();
    let dropped = scanner.scan_blocking(&source).unwrap();
    assert_eq!(
        dropped.verdict,
        Verdict::Partial,
        "{}",
        dropped.verdict_reason
    );
    let scanned = scanner.inventory_blocking(&source).unwrap();
    let unreadable: Vec<&InventoryWarning> = scanned
        .inventory
        .warnings
        .iter()
        .filter(|w| w.makes_incomplete())
        .collect();
    assert_eq!(
        unreadable,
        [&InventoryWarning::UnreadableFile {
            path: "var/lib/dpkg/status".into(),
            layer: Some(read.image.layers[0].clone()),
            reason: format!(
                "{} bytes, over the {}-byte limit for one file",
                status.len(),
                status.len() - 1
            ),
        }]
    );
}
