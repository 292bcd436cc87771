//! Embedding only the layer reader or the inventory costs no HTTP, TLS or
//! async runtime: `cargo tree -e normal` of `trawl-layers` and of
//! `trawl-inventory` without default features lists none of reqwest, hyper,
//! rustls, tokio, aws-lc or oci-client (the registry client's stack), and
//! without `rpm-sqlite` not rusqlite either. Runs cargo offline against the
//! committed Cargo.lock.

use std::process::Command;

const HEAVY: [&str; 7] = [
    "reqwest",
    "hyper",
    "rustls",
    "tokio",
    "aws-lc-rs",
    "aws-lc-sys",
    "oci-client",
];

/// The package names in `cargo tree -e normal -p PACKAGE ARGS`.
fn tree(package: &str, args: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--locked",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p}", "-p", package])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree -p {package} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    assert!(names.iter().any(|n| n == package), "{names:?}");
    names
}

fn heavy(names: &[String]) -> Vec<&String> {
    names
        .iter()
        .filter(|n| HEAVY.contains(&n.as_str()))
        .collect()
}

#[test]
fn layers_and_inventory_without_defaults_pull_no_http_tls_or_async_crates() {
    for package in ["trawl-layers", "trawl-inventory"] {
        let names = tree(package, &["--no-default-features"]);
        assert_eq!(heavy(&names), Vec::<&String>::new(), "{package}");
    }
    let names = tree("trawl-inventory", &["--no-default-features"]);
    assert!(!names.iter().any(|n| n == "rusqlite"), "{names:?}");
    // The check can fail: the defaults do pull rusqlite.
    let names = tree("trawl-inventory", &[]);
    assert!(names.iter().any(|n| n == "rusqlite"), "{names:?}");
}
