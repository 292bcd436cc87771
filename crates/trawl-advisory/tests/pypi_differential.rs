//! Differential test: our PEP 440 versions against Python's `packaging`
//! (`packaging.version.Version`: acceptance, `str()`, ordering).
//!
//! Versions: real PyPI versions (`fixtures/versions/pypi.txt`, legacy
//! non-PEP 440 ones included) and generated ones that go through every
//! spelling PEP 440 normalises, near misses and numbers past 64 bits and past
//! Python's 4,300-digit `int()` limit. See `differential/mod.rs` for the
//! protocol; the reference side is `reference/pep440.py`.

mod differential;

use std::cmp::Ordering;
use std::process::Command;

use differential::{Rng, Scheme, check, corpus, missing_reference, references_dir, runs};
use trawl_advisory::version::Pep440Error;
use trawl_advisory::{InvalidVersion, Pep440Version, VersionScheme};

fn number(rng: &mut Rng) -> String {
    match rng.below(30) {
        0 => "0".repeat(1 + rng.below(3)),
        1 => format!("0{}", rng.below(10)),
        2 => (0..20 + rng.below(10))
            .map(|_| char::from(b'0' + rng.below(10) as u8))
            .collect(),
        3..=12 => "0".to_owned(),
        _ => rng.below(12).to_string(),
    }
}

fn separator(rng: &mut Rng) -> &'static str {
    rng.pick(&["", "", "", ".", "-", "_"])
}

/// A version assembled from PEP 440's parts in their many spellings.
fn generated(rng: &mut Rng) -> String {
    let mut s = String::new();
    if rng.chance(10) {
        s.push_str(rng.pick(&[" ", "\t", "\n", "\u{1c}", "\u{85}", "\u{3000}", "\u{feff}"]));
    }
    if rng.chance(6) {
        s.push_str(rng.pick(&["v", "V"]));
    }
    if rng.chance(6) {
        s.push_str(&number(rng));
        s.push('!');
    }
    for i in 0..1 + rng.below(5) {
        if i > 0 {
            s.push('.');
        }
        s.push_str(&number(rng));
    }
    if rng.chance(2) {
        s.push_str(separator(rng));
        s.push_str(rng.pick(&[
            "a", "alpha", "b", "beta", "c", "rc", "pre", "preview", "RC", "Alpha", "PREview", "B",
        ]));
        s.push_str(separator(rng));
        if !rng.chance(4) {
            s.push_str(&number(rng));
        }
    }
    if rng.chance(3) {
        if rng.chance(3) {
            s.push('-');
            s.push_str(&number(rng));
        } else {
            s.push_str(separator(rng));
            s.push_str(rng.pick(&["post", "rev", "r", "POST", "Rev"]));
            s.push_str(separator(rng));
            if !rng.chance(4) {
                s.push_str(&number(rng));
            }
        }
    }
    if rng.chance(3) {
        s.push_str(separator(rng));
        s.push_str(rng.pick(&["dev", "DEV", "Dev"]));
        s.push_str(separator(rng));
        if !rng.chance(4) {
            s.push_str(&number(rng));
        }
    }
    if rng.chance(4) {
        s.push('+');
        for i in 0..1 + rng.below(4) {
            if i > 0 {
                s.push_str(rng.pick(&[".", "-", "_"]));
            }
            s.push_str(&match rng.below(4) {
                0 => number(rng),
                _ => (0..1 + rng.below(5))
                    .map(|_| char::from(b"abcxyzABC019"[rng.below(12)]))
                    .collect(),
            });
        }
    }
    if rng.chance(10) {
        s.push_str(rng.pick(&[" ", "\r\n", "\u{1f}", "\u{a0}", "\u{feff}"]));
    }
    rng.mangle(
        &mut s,
        &['.', '-', '_', '+', '!', 'a', 'r', 'v', '0', '9', ' ', 'é'],
    );
    s
}

/// The reference's `str()` of a valid version, or its exception's name.
fn our_parse(s: &str) -> Result<Pep440Version, String> {
    Pep440Version::parse(s).map_err(|e| match e.reason {
        InvalidVersion::Pep440(Pep440Error::Syntax { .. }) => "InvalidVersion".to_owned(),
        InvalidVersion::Pep440(Pep440Error::TooManyDigits) => "ValueError".to_owned(),
        other => format!("unexpected error {other}"),
    })
}

#[test]
fn packaging_agrees() {
    let dir = references_dir().join("python");
    let python = || {
        let mut command = Command::new("python3");
        if dir.is_dir() {
            command.env("PYTHONPATH", &dir);
        }
        command
    };
    if !runs(python().args(["-c", "import packaging.version"])) {
        missing_reference("Python's packaging is not importable by python3");
        return;
    }

    let mut versions = corpus("pypi");
    let real = versions.len();
    let mut rng = Rng(0x7065_7034_3430_2021);
    for _ in 0..8000 {
        versions.push(generated(&mut rng));
    }
    let huge = "9".repeat(4300);
    versions.extend([
        format!("1.{huge}"),
        format!("1.0{huge}"),
        format!("1.0+{huge}"),
        format!("1.0+a{huge}"),
        format!("{huge}!1.0rc0"),
    ]);
    println!("{real} real versions, {} generated", versions.len() - real);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/pep440.py");
    let scheme = Scheme {
        name: "PEP 440",
        parse: &our_parse,
        normal_form: &Pep440Version::normalized,
        reference_error: &|e| e["error"].as_str().unwrap_or("?").to_owned(),
        compare_str: &|a, b| {
            VersionScheme::Pep440
                .compare(a, b)
                .unwrap_or(Ordering::Equal)
        },
        known_divergence: &|_, _| false,
    };
    check(&scheme, versions, python().arg(script), &mut rng);
}
