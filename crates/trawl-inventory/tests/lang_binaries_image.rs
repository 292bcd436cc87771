//! Go, Rust and Java catalogers end to end: real binaries and archives in
//! tar layers, read by `trawl-layers` with the catalogers' selection (their
//! extractors run while the layer streams), merged, and cataloged.

mod common_lang;

use trawl_inventory::{InventoryWarning, PackageKind, PackageRole, catalog, selection};
use trawl_layers::{LayerChanges, Limits, MergedFs, read_layer};

fn file(rel: &str) -> Vec<u8> {
    std::fs::read(common_lang::artifacts().join(rel)).unwrap()
}

fn layer(id: &str, entries: &[(&str, Vec<u8>, u32)], limits: &Limits) -> (String, LayerChanges) {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data, mode) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        h.set_cksum();
        tar.append_data(&mut h, path, &data[..]).unwrap();
    }
    let blob = tar.into_inner().unwrap();
    let changes = read_layer(id, &blob[..], &selection(), limits).unwrap();
    (id.to_string(), changes)
}

fn layers(limits: &Limits) -> MergedFs {
    let base = layer(
        "sha256:base",
        &[
            ("usr/local/bin/app", file("go/app-go1.19-amd64"), 0o755),
            ("usr/local/bin/app-old", file("go/app-go1.15-s390x"), 0o755),
            (
                "usr/local/bin/auditable-demo",
                file("rust/auditable-demo"),
                0o755,
            ),
            // Not executable: not an extractor's business.
            ("usr/share/doc/app-copy", file("go/app-go1.19-amd64"), 0o644),
            (
                "app/demo-boot.jar",
                file("java/demo-boot-0.0.1-SNAPSHOT.jar"),
                0o644,
            ),
            ("app/demo-web.war", file("java/demo-web.war"), 0o644),
            (
                "opt/broken.jar",
                b"PK\x03\x04 this is no zip archive".to_vec(),
                0o644,
            ),
        ],
        limits,
    );
    let top = layer(
        "sha256:top",
        &[("app/.wh.demo-web.war", Vec::new(), 0o644)],
        limits,
    );
    MergedFs::from_layers(vec![base, top])
}

#[test]
fn binaries_and_archives_in_layers() {
    let fs = layers(&Limits::default());
    let inv = catalog(&fs);
    for name in ["go-binary", "rust-binary", "java-archive"] {
        assert!(inv.catalogers.iter().any(|c| c == name), "{name}");
    }
    let count = |kind: PackageKind, db: &str| {
        inv.packages
            .iter()
            .filter(|p| p.kind == kind && p.database == db)
            .count()
    };
    assert_eq!(count(PackageKind::Golang, "usr/local/bin/app"), 5);
    assert_eq!(count(PackageKind::Golang, "usr/local/bin/app-old"), 5);
    assert_eq!(count(PackageKind::Golang, "usr/share/doc/app-copy"), 0);
    assert_eq!(count(PackageKind::Cargo, "usr/local/bin/auditable-demo"), 4);
    // demo-boot.jar: itself and four libraries; the war was deleted.
    assert_eq!(count(PackageKind::Maven, "app/demo-boot.jar"), 5);
    assert_eq!(count(PackageKind::Maven, "app/demo-web.war"), 0);
    assert!(
        inv.packages
            .iter()
            .all(|p| p.layer.as_deref() == Some("sha256:base"))
    );
    let stdlib = inv
        .packages
        .iter()
        .find(|p| p.database == "usr/local/bin/app-old" && p.role == Some(PackageRole::Toolchain))
        .unwrap();
    assert_eq!(stdlib.version, "go1.15.15");

    // The broken jar is an unreadable file: the scan is incomplete.
    assert_eq!(inv.warnings.len(), 1, "{:?}", inv.warnings);
    assert!(matches!(
        &inv.warnings[0],
        InventoryWarning::UnreadableFile { path, layer: Some(l), .. }
            if path == "opt/broken.jar" && l == "sha256:base"
    ));
    assert!(inv.is_incomplete());
}

/// With no memory or temporary space to spare, every file reaches the
/// extractors as a stream: Go's inline build info is still read; the
/// pointer-format binary, the Rust binary and the jars are reported as not
/// inspected, never silently skipped.
#[test]
fn without_spool_space_what_needs_seeking_is_reported() {
    let limits = Limits {
        max_extract_memory: 1024,
        max_temp_bytes: 0,
        ..Limits::default()
    };
    let fs = layers(&limits);
    let inv = catalog(&fs);
    let go_app = inv
        .packages
        .iter()
        .filter(|p| p.database == "usr/local/bin/app")
        .count();
    assert_eq!(go_app, 5);
    let unread: Vec<&str> = inv
        .warnings
        .iter()
        .filter_map(|w| match w {
            InventoryWarning::UnreadableFile { path, .. } => Some(path.as_str()),
            _ => None,
        })
        .collect();
    for path in [
        "usr/local/bin/app-old",
        "usr/local/bin/auditable-demo",
        "app/demo-boot.jar",
        "opt/broken.jar",
    ] {
        assert!(unread.contains(&path), "{path}: {unread:?}");
    }
    assert!(inv.is_incomplete());
}
