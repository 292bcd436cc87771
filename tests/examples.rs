//! The embedding examples run as their docs say, on the Debian test image:
//! `scan_image` finds what the feed says, `custom_source` answers from both
//! of its feeds, `rematch` stores inventories and matches them again
//! against a compiled database.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// An example of this build profile, built (or found up to date) by cargo
/// first: `cargo test` of one target does not build the examples.
fn example(name: &str) -> PathBuf {
    static PROFILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PROFILE
        .get_or_init(|| common::cargo_build(&["-p", "trawl-scan", "--examples"]))
        .join("examples")
        .join(name)
}

fn run(name: &str, args: &[&str]) -> String {
    let out = Command::new(example(name)).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name} {args:?}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// One OSV record in its own directory: `name` in Debian 12, fixed in `fixed`.
fn feed(dir: &Path, id: &str, name: &str, fixed: &str) -> String {
    let dir = dir.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let record = serde_json::json!({
        "id": id, "modified": "2026-11-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "Debian:12", "name": name},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]
    });
    std::fs::write(dir.join(format!("{id}.json")), record.to_string()).unwrap();
    dir.display().to_string()
}

#[test]
fn the_embedding_examples_run() {
    let image = format!(
        "oci-dir:{}:bookworm",
        common::images().join("debian/oci").display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store").display().to_string();

    // rematch: store the inventory; it names tar's source version.
    let out = run("rematch", &["inventory", &store, &image]);
    assert!(out.contains(" packages"), "{out}");
    let stored = std::fs::read(Path::new(&store).join("0.json")).unwrap();
    let scanned: trawl::Scanned = serde_json::from_slice(&stored).unwrap();
    let tar = scanned
        .inventory
        .packages
        .iter()
        .find(|p| p.source_name == "tar")
        .unwrap();
    let fixed = format!("{}+trawl1", tar.source_version);

    let public = feed(tmp.path(), "TRAWL-PUBLIC", "not-installed", "1.0-1");
    let in_house = feed(tmp.path(), "TRAWL-IN-HOUSE", "tar", &fixed);

    let out = run("scan_image", &[&image, &public]);
    assert!(out.starts_with("healthy:"), "{out}");
    let out = run("scan_image", &[&image, &in_house]);
    assert!(out.starts_with("unhealthy:"), "{out}");
    assert!(
        out.contains("TRAWL-IN-HOUSE") && out.contains(&fixed),
        "{out}"
    );

    let out = run("custom_source", &[&image, &public, &in_house]);
    assert!(out.starts_with("unhealthy:"), "{out}");
    assert!(out.contains("TRAWL-IN-HOUSE tar"), "{out}");

    // A new database arrives: the stored inventory is matched against it.
    let db = tmp.path().join("trawl.db");
    let feeds = trawl::advisory::FeedPaths {
        osv_dirs: vec![in_house.into()],
        ..Default::default()
    };
    trawl::advisory::AdvisoryStore::build(&feeds, &db).unwrap();
    let out = run("rematch", &["match", &store, db.to_str().unwrap()]);
    assert_eq!(out, format!("{image}: unhealthy (1 findings)\n"));
}
