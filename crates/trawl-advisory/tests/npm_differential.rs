//! Differential test: our npm versions against node's `semver` package
//! (`new SemVer(v)` and `semver.compare`, loose = false).
//!
//! Versions: real npm registry versions (`fixtures/versions/npm.txt`) and
//! generated ones: pre-release identifiers numeric and not, leading zeros,
//! numbers around 2^53, whitespace JavaScript trims and does not, loose-only
//! spellings, lengths around node's 256-character limit. See
//! `differential/mod.rs` for the protocol; the reference side is
//! `reference/npm_semver.js`.

mod differential;

use std::cmp::Ordering;
use std::process::Command;

use differential::{Rng, Scheme, check, corpus, missing_reference, references_dir, runs};
use trawl_advisory::version::NpmError;
use trawl_advisory::{InvalidVersion, NpmVersion, VersionScheme};

fn number(rng: &mut Rng) -> String {
    if !rng.chance(8) {
        return rng.below(12).to_string();
    }
    rng.pick(&[
        "01",
        "9007199254740990",
        "9007199254740991",
        "9007199254740992",
        "123456789012345678901234",
    ])
    .to_owned()
}

fn identifier(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => rng
            .pick(&[
                "0",
                "1",
                "2",
                "11",
                "01",
                "00",
                "9007199254740991",
                "9007199254740992",
                "9007199254740993",
                "18014398509481985",
                "99999999999999999999",
            ])
            .to_owned(),
        _ => rng
            .pick(&[
                "alpha", "beta", "rc", "a", "A", "-", "--", "0a", "a-b", "x1", "Beta", "z", "",
            ])
            .to_owned(),
    }
}

fn generated(rng: &mut Rng) -> String {
    let mut s = String::new();
    if rng.chance(10) {
        s.push_str(rng.pick(&[" ", "\t", "\u{feff}", "\u{85}", "\u{3000}", "\u{2028}"]));
    }
    if rng.chance(6) {
        s.push_str(rng.pick(&["v", "v", "V", "=", "v="]));
    }
    s.push_str(&format!("{}.{}.{}", number(rng), number(rng), number(rng)));
    if rng.chance(2) {
        s.push('-');
        for i in 0..1 + rng.below(4) {
            if i > 0 {
                s.push('.');
            }
            s.push_str(&identifier(rng));
        }
    }
    if rng.chance(4) {
        s.push('+');
        for i in 0..1 + rng.below(3) {
            if i > 0 {
                s.push('.');
            }
            s.push_str(rng.pick(&["build", "001", "sha-1a2b", "x", ""]));
        }
    }
    if rng.chance(10) {
        s.push_str(rng.pick(&[" ", "\n", "\u{feff}", "\u{85}", "\u{a0}"]));
    }
    if rng.chance(40) {
        // Near node's limit of 256 UTF-16 code units, counted before trimming.
        let pad = 250 + rng.below(12) - s.len().min(250);
        s = match rng.below(3) {
            0 => format!("{s}{}", " ".repeat(pad)),
            1 => format!("{}{s}", "\u{3000}".repeat(pad)),
            _ => format!("1.2.3-{}", "a".repeat(245 + rng.below(10))),
        };
    }
    rng.mangle(
        &mut s,
        &['.', '-', '+', '0', '1', 'a', 'v', ' ', '\u{1F600}'],
    );
    s
}

/// The reference's `version` property, or its error reduced to a kind.
fn our_parse(s: &str) -> Result<NpmVersion, String> {
    NpmVersion::parse(s).map_err(|e| match e.reason {
        InvalidVersion::Npm(NpmError::Syntax { .. }) => "Invalid Version".to_owned(),
        InvalidVersion::Npm(NpmError::TooLong { .. }) => "too long".to_owned(),
        InvalidVersion::Npm(NpmError::TooBig { part }) => format!("Invalid {part} version"),
        other => format!("unexpected error {other}"),
    })
}

fn reference_error(error: &serde_json::Value) -> String {
    let message = error["error"].as_str().unwrap_or("?");
    if message.starts_with("Invalid Version:") {
        "Invalid Version".to_owned()
    } else if message.starts_with("version is longer than 256") {
        "too long".to_owned()
    } else {
        message.to_owned()
    }
}

/// node stops at two numeric identifiers that are distinct but equal as
/// doubles and calls the versions equal; we go on (see `version::npm`).
fn double_tie(a: &str, b: &str) -> bool {
    let pre = |s: &str| -> Vec<String> {
        NpmVersion::parse(s)
            .map(|v| v.normalized())
            .ok()
            .and_then(|n| n.split_once('-').map(|(_, p)| p.to_owned()))
            .map(|p| p.split('.').map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    pre(a).iter().zip(pre(b).iter()).any(|(x, y)| {
        x != y && numeric(x) && numeric(y) && x.parse::<f64>().ok() == y.parse::<f64>().ok()
    })
}

#[test]
fn node_semver_agrees() {
    let modules = references_dir().join("node/node_modules");
    let node = || {
        let mut command = Command::new("node");
        if modules.is_dir() {
            command.env("NODE_PATH", &modules);
        }
        command
    };
    if !runs(node().args(["-e", "require('semver')"])) {
        missing_reference("node cannot require('semver')");
        return;
    }

    let mut versions = corpus("npm");
    let real = versions.len();
    let mut rng = Rng(0x6e70_6d20_7365_6d76);
    for _ in 0..8000 {
        versions.push(generated(&mut rng));
    }
    println!("{real} real versions, {} generated", versions.len() - real);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/npm_semver.js");
    let scheme = Scheme {
        name: "npm",
        parse: &our_parse,
        normal_form: &NpmVersion::normalized,
        reference_error: &reference_error,
        compare_str: &|a, b| VersionScheme::Npm.compare(a, b).unwrap_or(Ordering::Equal),
        known_divergence: &double_tie,
    };
    check(&scheme, versions, node().arg(script), &mut rng);
}
