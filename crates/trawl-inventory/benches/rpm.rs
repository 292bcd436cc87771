//! Inventory of real rpm databases: the CBL-Mariner SQLite fixture (129
//! packages) and a generated Berkeley DB of 1032 packages with overflow pages
//! (`scripts/gen-rpm-bdb.sh`), each through the whole cataloger.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;

use criterion::{Criterion, criterion_group, criterion_main};
use trawl_inventory::{catalog, selection};
use trawl_layers::{Limits, MergedFs, read_rootfs};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/rpm")
}

/// A rootfs holding `db` at `var/lib/rpm/<name>`, read into the merged view.
fn merged(db: &Path, name: &str) -> (tempfile::TempDir, MergedFs) {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("var/lib/rpm")).unwrap();
    std::fs::copy(db, root.path().join("var/lib/rpm").join(name)).unwrap();
    let fs = read_rootfs(root.path(), &selection(), &Limits::default()).unwrap();
    (root, fs)
}

fn bench(c: &mut Criterion) {
    let (_sqlite_root, sqlite) = merged(
        &fixtures().join("cbl-mariner-2.0/rpmdb.sqlite"),
        "rpmdb.sqlite",
    );
    assert_eq!(catalog(&sqlite).packages.len(), 129);
    c.bench_function("rpm sqlite cbl-mariner (129 packages)", |b| {
        b.iter(|| black_box(catalog(black_box(&sqlite))))
    });

    let generated = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rpm-bdb");
    let status = Command::new("sh")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/gen-rpm-bdb.sh"))
        .arg(&generated)
        .arg("8")
        .status()
        .unwrap();
    assert!(status.success(), "scripts/gen-rpm-bdb.sh needs db5.3-util");
    let (_bdb_root, bdb) = merged(&generated.join("le/Packages"), "Packages");
    assert_eq!(catalog(&bdb).packages.len(), 1032);
    c.bench_function("rpm bdb generated (1032 packages)", |b| {
        b.iter(|| black_box(catalog(black_box(&bdb))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
