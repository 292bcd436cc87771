//! Differential test: crates.io versions under our `Semver` scheme against
//! Cargo's own reading of them, the `semver` crate (`semver::Version::parse`
//! and its ordering), which Cargo and crates.io use.
//!
//! The scheme parses with that crate and orders by SemVer precedence, so this
//! holds the wrapper (acceptance, `VersionScheme::compare`, `Eq`/`Hash`) to
//! Cargo over every version in cargo's registry index cache
//! (`fixtures/versions/crates.txt`) and generated ones. Where Cargo's `Ord`
//! and precedence part, the versions differ only in build metadata, which
//! SemVer and OSV ignore and crates.io does too: it refuses a version that
//! differs from a published one only there.

mod differential;

use std::cmp::Ordering;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use differential::{Rng, corpus};
use trawl_advisory::{SemVersion, VersionScheme};

fn generated(rng: &mut Rng) -> String {
    let number = |rng: &mut Rng| {
        if rng.chance(8) {
            rng.pick(&["01", "18446744073709551615", "18446744073709551616"])
                .to_owned()
        } else {
            rng.below(12).to_string()
        }
    };
    let mut s = format!("{}.{}.{}", number(rng), number(rng), number(rng));
    if rng.chance(2) {
        s.push('-');
        for i in 0..1 + rng.below(3) {
            if i > 0 {
                s.push('.');
            }
            s.push_str(rng.pick(&[
                "0",
                "1",
                "10",
                "01",
                "alpha",
                "beta",
                "rc",
                "-",
                "0a",
                "A",
                "",
                "99999999999999999999999",
            ]));
        }
    }
    if rng.chance(4) {
        s.push('+');
        s.push_str(rng.pick(&["build.1", "001", "wasi-0.2.0", "x.y", ""]));
    }
    if rng.chance(12) {
        s.insert_str(0, rng.pick(&["v", " ", "="]));
    }
    rng.mangle(&mut s, &['.', '-', '+', '0', 'a']);
    s
}

fn hash(v: &SemVersion) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

#[test]
fn cargo_semver_agrees() {
    let mut versions = corpus("crates");
    let real = versions.len();
    let mut rng = Rng(0x6372_6174_6573_696f);
    for _ in 0..5000 {
        versions.push(generated(&mut rng));
    }
    versions.sort();
    versions.dedup();

    let mut bad = Vec::new();
    let mut parsed = Vec::new();
    for v in &versions {
        match (SemVersion::parse(v), semver::Version::parse(v)) {
            (Ok(ours), Ok(cargo)) => parsed.push((ours, cargo)),
            (Err(_), Err(_)) => {}
            (ours, cargo) => bad.push(format!("{v:?}: we say {ours:?}, Cargo {cargo:?}")),
        }
    }
    assert!(
        parsed.len() >= real,
        "real crates.io versions refused: {bad:#?}"
    );
    parsed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut pairs: Vec<(usize, usize)> = (1..parsed.len()).map(|i| (i - 1, i)).collect();
    for _ in 0..20_000 {
        pairs.push((rng.below(parsed.len()), rng.below(parsed.len())));
    }
    let mut build_only = 0;
    for &(i, j) in &pairs {
        let ((a, ca), (b, cb)) = (&parsed[i], &parsed[j]);
        let ours = a.cmp(b);
        let cargo = ca.cmp(cb);
        let via_str = VersionScheme::Semver.compare(a.as_str(), b.as_str());
        if via_str != Ok(ours) {
            bad.push(format!("{a} vs {b}: Ord {ours:?}, compare() {via_str:?}"));
        }
        if ours == Ordering::Equal && hash(a) != hash(b) {
            bad.push(format!("{a} == {b} but their hashes differ"));
        }
        if ours != cargo {
            // Cargo's Ord breaks precedence ties on build metadata.
            if ours == Ordering::Equal && ca.build != cb.build {
                build_only += 1;
            } else {
                bad.push(format!("{a} vs {b}: we say {ours:?}, Cargo {cargo:?}"));
            }
        }
    }
    println!(
        "crates.io differential against the semver crate: {} versions ({real} real, {} \
         valid), {} pairs ({} adjacent), {build_only} equal but for build metadata; {} \
         disagreements",
        versions.len(),
        parsed.len(),
        pairs.len(),
        parsed.len() - 1,
        bad.len()
    );
    assert!(
        bad.is_empty(),
        "{} disagreements: {:#?}",
        bad.len(),
        &bad[..bad.len().min(30)]
    );
}
