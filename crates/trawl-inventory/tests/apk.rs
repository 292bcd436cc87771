//! apk inventory against the shared real-world fixtures (Alpine 3.4 with a
//! broken entry, Alpine 3.16, a corrupt database), truncated and bit-flipped
//! copies of them, and layer attribution across real tar layers.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use trawl_inventory::apk::{ApkEntryError, ApkEntryProblem, ApkInstalledDb};
use trawl_inventory::{Inventory, InventoryWarning, PackageKind, catalog, selection};
use trawl_layers::{Limits, MergedFs, read_layer, read_rootfs};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(rel)).unwrap()
}

/// A root file system holding `files` (path relative to the root, contents).
fn rootfs(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, data) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    dir
}

fn scan_dir(root: &Path) -> Inventory {
    let fs = read_rootfs(root, &selection(), &Limits::default()).unwrap();
    catalog(&fs)
}

/// `expected.tsv` without its header: `name\tversion\torigin` lines.
fn expected_tsv(rel: &str) -> Vec<String> {
    String::from_utf8(fixture(rel))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn tsv(inv: &Inventory) -> Vec<String> {
    inv.packages
        .iter()
        .map(|p| format!("{}\t{}\t{}", p.name, p.version, p.source_name))
        .collect()
}

#[test]
fn alpine_3_16_matches_expected_list_and_fields() {
    let data = fixture("apk/alpine-3.16/installed");
    let alpine = b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.16.2\n";
    let root = rootfs(&[("lib/apk/db/installed", &data), ("etc/os-release", alpine)]);
    let inv = scan_dir(root.path());
    assert_eq!(tsv(&inv), expected_tsv("apk/alpine-3.16/expected.tsv"));
    assert_eq!(inv.warnings, []);
    assert_eq!(inv.databases, ["lib/apk/db/installed"]);
    let musl = inv.packages.iter().find(|p| p.name == "musl").unwrap();
    assert_eq!(musl.kind, PackageKind::Apk);
    assert_eq!(musl.arch.as_deref(), Some("x86_64"));
    assert_eq!(musl.source_version, "1.2.3-r0");
    assert_eq!(musl.license.as_deref(), Some("MIT"));
    assert_eq!(
        musl.maintainer.as_deref(),
        Some("Timo Teräs <timo.teras@iki.fi>")
    );
    assert_eq!(musl.layer, None, "a directory has no layers");
    assert_eq!(
        musl.purl,
        "pkg:apk/alpine/musl@1.2.3-r0?arch=x86_64&distro=alpine-3.16.2"
    );
    let json = serde_json::to_value(musl).unwrap();
    assert_eq!(json["type"], "apk");
    assert_eq!(json["license"], "MIT");
}

#[test]
fn alpine_3_4_skips_the_entry_without_a_version() {
    let data = fixture("apk/alpine-3.4/installed");
    let root = rootfs(&[("lib/apk/db/installed", &data)]);
    let inv = scan_dir(root.path());
    assert_eq!(tsv(&inv), expected_tsv("apk/alpine-3.4/expected.tsv"));
    assert_eq!(
        inv.warnings,
        [InventoryWarning::MalformedEntry {
            database: "lib/apk/db/installed".into(),
            line: 23,
            reason: "package invalidPackageWithoutAVersion: no V: (version) field".into(),
        }]
    );
    let libc = inv
        .packages
        .iter()
        .find(|p| p.name == "libc-utils")
        .unwrap();
    assert_eq!(
        libc.purl, "pkg:apk/alpine/libc-utils@0.7-r0?arch=x86_64",
        "no OS detected: the default namespace and no distro qualifier"
    );
}

#[test]
fn corrupt_database_keeps_what_is_readable() {
    let db = ApkInstalledDb::parse(&fixture("apk/corrupt/installed"));
    assert_eq!(
        db.errors,
        [ApkEntryError {
            line: 1,
            problem: ApkEntryProblem::MalformedLine {
                text: "this is a corrupt db".into()
            },
        }]
    );
    let found: Vec<(&str, &str, Option<&str>)> = db
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.version.as_str(), e.origin.as_deref()))
        .collect();
    assert_eq!(
        found,
        [(
            "alpine-baselayout-data",
            "3.2.0-r22",
            Some("alpine-baselayout")
        )]
    );
    assert_eq!(db.entries[0].line, 3);
}

#[test]
fn usr_lib_location_and_precedence() {
    let data = fixture("apk/alpine-3.16/installed");
    let only_usr = rootfs(&[("usr/lib/apk/db/installed", &data)]);
    let inv = scan_dir(only_usr.path());
    assert_eq!(inv.databases, ["usr/lib/apk/db/installed"]);
    assert_eq!(inv.packages.len(), 14);

    let old = fixture("apk/alpine-3.4/installed");
    let both = rootfs(&[
        ("lib/apk/db/installed", &data),
        ("usr/lib/apk/db/installed", &old),
    ]);
    let inv = scan_dir(both.path());
    assert_eq!(
        inv.databases,
        ["lib/apk/db/installed"],
        "apk-tools reads /lib"
    );
    assert_eq!(tsv(&inv), expected_tsv("apk/alpine-3.16/expected.tsv"));
}

fn keys(db: &ApkInstalledDb) -> Vec<(String, String)> {
    db.entries
        .iter()
        .map(|e| (e.name.clone(), e.version.clone()))
        .collect()
}

#[test]
fn truncated_databases() {
    for rel in ["apk/alpine-3.16/installed", "apk/alpine-3.4/installed"] {
        let data = fixture(rel);
        let full = keys(&ApkInstalledDb::parse(&data));
        for cut in 0..data.len() {
            let part = keys(&ApkInstalledDb::parse(&data[..cut]));
            // Every record wholly before the cut is read unchanged; only the
            // last one read may have lost the tail of a value.
            let n = part.len();
            assert!(n <= full.len(), "{rel} cut at {cut}");
            if n > 0 {
                assert_eq!(part[..n - 1], full[..n - 1], "{rel} cut at {cut}");
                assert!(
                    full[n - 1].0.starts_with(&part[n - 1].0)
                        && full[n - 1].1.starts_with(&part[n - 1].1),
                    "{rel} cut at {cut}: {:?} vs {:?}",
                    part[n - 1],
                    full[n - 1]
                );
            }
        }
    }
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn bit_flipped_databases() {
    let mut rng = XorShift(0x5eed_a9c1);
    for rel in ["apk/alpine-3.16/installed", "apk/alpine-3.4/installed"] {
        let data = fixture(rel);
        let full: HashSet<(String, String)> =
            keys(&ApkInstalledDb::parse(&data)).into_iter().collect();
        for _ in 0..4000 {
            let mut copy = data.clone();
            let at = (rng.next() % copy.len() as u64) as usize;
            copy[at] ^= 1 << (rng.next() % 8);
            let flipped = keys(&ApkInstalledDb::parse(&copy));
            // One flipped bit changes at most one field or one line break, so
            // at most one record reads differently, and records are never
            // invented from file lists.
            let changed = flipped.iter().filter(|k| !full.contains(*k)).count();
            assert!(changed <= 1, "{rel} flip at {at}: {changed} changed");
            assert!(
                flipped.len() + 2 >= full.len() && flipped.len() <= full.len() + 1,
                "{rel} flip at {at}: {} entries",
                flipped.len()
            );
        }
    }
}

/// An uncompressed layer tar holding `lib/apk/db/installed` = `installed`.
fn layer(installed: &str) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(installed.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "lib/apk/db/installed", installed.as_bytes())
        .unwrap();
    tar.into_inner().unwrap()
}

#[test]
fn layer_attribution_follows_the_database_history() {
    let base = "P:musl\nV:1.2.3-r0\nA:x86_64\no:musl\n\nP:busybox\nV:1.35.0-r17\nA:x86_64\n\n";
    let upgrade = "P:musl\nV:1.2.3-r0\nA:x86_64\no:musl\n\nP:busybox\nV:1.35.0-r18\nA:x86_64\n\n\
                   P:curl\nV:8.0-r0\nA:x86_64\n\n";
    let layers = [("sha256:base", base), ("sha256:upgrade", upgrade)]
        .into_iter()
        .map(|(id, db)| {
            let changes = read_layer(id, &layer(db)[..], &selection(), &Limits::default()).unwrap();
            (id.to_string(), changes)
        })
        .collect();
    let inv = catalog(&MergedFs::from_layers(layers));
    let found: Vec<(&str, &str, Option<&str>)> = inv
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str(), p.layer.as_deref()))
        .collect();
    assert_eq!(
        found,
        [
            ("musl", "1.2.3-r0", Some("sha256:base")),
            ("busybox", "1.35.0-r18", Some("sha256:upgrade")),
            ("curl", "8.0-r0", Some("sha256:upgrade")),
        ]
    );
}
