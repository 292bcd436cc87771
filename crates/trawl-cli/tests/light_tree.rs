//! Embedding a stage crate without the features that need the network costs
//! no HTTP, TLS or async runtime: `cargo tree -e normal` of `trawl-layers`,
//! of `trawl-inventory` and `trawl-registry` without default features (no
//! `rpm-sqlite`, no `registry`), and of `trawl-advisory` and `trawl-classify`
//! without `fetch` lists none of reqwest, hyper, rustls, tokio, aws-lc or
//! oci-client (the registry client's and the feed fetcher's stack); the
//! inventory without `rpm-sqlite` not rusqlite either, and nothing without
//! `bundled-sqlite` compiles SQLite in. Runs cargo offline against the
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

#[test]
fn registry_without_its_registry_feature_pulls_no_http_tls_or_async_crates() {
    let names = tree("trawl-registry", &["--no-default-features"]);
    assert_eq!(heavy(&names), Vec::<&String>::new());
    // Reference parsing stays, through oci-spec alone.
    assert!(names.iter().any(|n| n == "oci-spec"), "{names:?}");
    // The check can fail: the defaults pull the registry client's stack.
    let names = tree("trawl-registry", &[]);
    for crate_name in ["reqwest", "rustls", "tokio", "oci-client"] {
        assert!(
            names.iter().any(|n| n == crate_name),
            "{crate_name}: {names:?}"
        );
    }
}

#[test]
fn advisory_and_classify_without_fetch_pull_no_http_tls_or_async_crates() {
    for package in ["trawl-advisory", "trawl-classify"] {
        let names = tree(package, &["--no-default-features"]);
        assert_eq!(heavy(&names), Vec::<&String>::new(), "{package}");
    }
    // The classifier's defaults add SQLite's sources only: it takes the
    // advisory crate without `fetch`.
    let names = tree("trawl-classify", &[]);
    assert_eq!(heavy(&names), Vec::<&String>::new());
    // The check can fail: `fetch` pulls reqwest with rustls.
    let names = tree("trawl-advisory", &["--features", "fetch"]);
    for crate_name in ["reqwest", "rustls"] {
        assert!(
            names.iter().any(|n| n == crate_name),
            "{crate_name}: {names:?}"
        );
    }
}

/// Whether `cargo tree` shows rusqlite's `bundled` feature (SQLite compiled
/// in) for `-p PACKAGE ARGS`.
fn bundles_sqlite(package: &str, args: &[&str]) -> bool {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "--offline", "--locked", "-e", "normal,features"])
        .args(["-i", "rusqlite", "--prefix", "none", "-p", package])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree -i rusqlite -p {package} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rusqlite"), "{text}");
    text.lines()
        .any(|line| line.starts_with("rusqlite feature \"bundled\""))
}

#[test]
fn sqlite_is_bundled_by_default_and_linked_from_the_system_without_it() {
    // A distribution packager builds the command with the system's SQLite.
    for (package, off) in [
        ("trawl-cli", &["--no-default-features"][..]),
        (
            "trawl-scan",
            &["--no-default-features", "--features", "rpm-sqlite"][..],
        ),
        ("trawl-advisory", &["--no-default-features"][..]),
        ("trawl-watch", &["--no-default-features"][..]),
    ] {
        assert!(bundles_sqlite(package, &[]), "{package} defaults");
        assert!(!bundles_sqlite(package, off), "{package} {off:?}");
    }
}

#[test]
fn facade_without_features_pulls_no_http_or_tls_crates() {
    let names = tree("trawl-scan", &["--no-default-features"]);
    // tokio stays, with `sync` only: the async scan's oneshot channel.
    let heavy: Vec<&String> = heavy(&names)
        .into_iter()
        .filter(|n| n.as_str() != "tokio")
        .collect();
    assert_eq!(heavy, Vec::<&String>::new());
    assert!(!names.iter().any(|n| n == "mio"), "{names:?}");
    // The check can fail: the defaults pull the registry client and fetcher.
    let names = tree("trawl-scan", &[]);
    assert!(names.iter().any(|n| n == "reqwest"), "{names:?}");
}
