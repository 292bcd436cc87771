//! Differential test: our Go versions against `golang.org/x/mod/semver`
//! (`IsValid`, `Canonical`, `Compare`), `golang.org/x/mod/module`
//! (`IsPseudoVersion`) and `golang.org/x/vuln`'s release tag mapping
//! (`GoTagToSemver`), built with the Go toolchain from Debian's packages,
//! offline (GOPATH mode, no module proxy).
//!
//! Versions: real module versions and pseudo-versions
//! (`fixtures/versions/go.txt`), the same without their `v` (as OSV's Go
//! records write them), Go release tags of every form, and generated versions:
//! shorthands, pre-releases and build metadata, pseudo-versions of the three
//! forms, numbers past 64 bits, near misses. See `differential/mod.rs` for the
//! protocol; the reference side is `reference/go_semver.go`.

mod differential;

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::process::Command;

use differential::{Rng, Scheme, check, corpus, missing_reference, runs};
use trawl_advisory::version::GoError;
use trawl_advisory::{GoVersion, InvalidVersion, VersionScheme};

const GOCODE: &str = "/usr/share/gocode/src";

fn number(rng: &mut Rng) -> String {
    if !rng.chance(8) {
        return rng.below(12).to_string();
    }
    rng.pick(&["00", "01", "123456789012345678901234567890"])
        .to_owned()
}

fn identifier(rng: &mut Rng) -> String {
    rng.pick(&[
        "0",
        "1",
        "2",
        "10",
        "01",
        "alpha",
        "beta",
        "rc",
        "a-b",
        "-",
        "0a",
        "Z",
        "",
        "pre",
        "99999999999999999999999",
    ])
    .to_owned()
}

fn timestamp(rng: &mut Rng) -> String {
    let digits = if rng.chance(10) {
        13 + rng.below(3)
    } else {
        14
    };
    (0..digits)
        .map(|_| char::from(b'0' + rng.below(10) as u8))
        .collect()
}

fn revision(rng: &mut Rng) -> String {
    rng.pick(&["daa7c04131f5", "abcdef123456", "A1", "dead-beef", "x.y", ""])
        .to_owned()
}

fn generated(rng: &mut Rng) -> String {
    let mut s = String::new();
    if !rng.chance(3) {
        s.push('v');
    }
    match rng.below(6) {
        // The three pseudo-version forms, and near misses of them.
        0 => {
            let pre = match rng.below(3) {
                0 => String::new(),
                1 => "0.".to_owned(),
                _ => format!("{}.0.", identifier(rng)),
            };
            s.push_str(&format!(
                "{}.{}.{}-{pre}{}-{}",
                number(rng),
                number(rng),
                number(rng),
                timestamp(rng),
                revision(rng)
            ));
        }
        // Shorthands.
        1 => {
            s.push_str(&number(rng));
            if rng.chance(2) {
                s.push('.');
                s.push_str(&number(rng));
            }
        }
        _ => {
            s.push_str(&format!("{}.{}.{}", number(rng), number(rng), number(rng)));
            if rng.chance(2) {
                s.push('-');
                for i in 0..1 + rng.below(3) {
                    if i > 0 {
                        s.push('.');
                    }
                    s.push_str(&identifier(rng));
                }
            }
        }
    }
    if rng.chance(4) {
        s.push('+');
        s.push_str(rng.pick(&["incompatible", "meta.01", "x-y", ""]));
    }
    rng.mangle(&mut s, &['.', '-', '+', '0', 'v', 'a', ' ']);
    s
}

/// Go release tags of every form the toolchain has had, and near misses.
fn toolchain_tags(rng: &mut Rng) -> Vec<String> {
    let mut tags = vec![
        "go1".to_owned(),
        "go1.0".to_owned(),
        "go1.0.1".to_owned(),
        "go".to_owned(),
        "go1.".to_owned(),
        "go2".to_owned(),
        "go01.2".to_owned(),
        "go1.21.5 X:boringcrypto".to_owned(),
        "go1.22.0 X:nocoverageredesign,loopvar".to_owned(),
        "go1.20\u{85}extra".to_owned(),
        "devel go1.23-abcdef Tue Jan 2 15:04:05 2024 +0000".to_owned(),
    ];
    for minor in 0..25 {
        tags.push(format!("go1.{minor}"));
        for patch in 0..3 {
            tags.push(format!("go1.{minor}.{patch}"));
        }
        for n in 1..3 {
            tags.push(format!("go1.{minor}beta{n}"));
            tags.push(format!("go1.{minor}rc{n}"));
        }
    }
    for _ in 0..300 {
        let mut tag = format!("go{}.{}", number(rng), number(rng));
        if rng.chance(2) {
            tag.push_str(&format!(".{}", number(rng)));
        }
        if rng.chance(2) {
            tag.push_str(rng.pick(&["beta", "rc", "-pre", "alpha", "RC", "-rc"]));
            if !rng.chance(5) {
                tag.push_str(&number(rng));
            }
        }
        rng.mangle(&mut tag, &['.', '-', '0', ' ', 'o']);
        tags.push(tag);
    }
    tags
}

fn our_parse(s: &str) -> Result<GoVersion, String> {
    GoVersion::parse(s).map_err(|e| match e.reason {
        InvalidVersion::Go(GoError::Syntax { .. }) => "syntax".to_owned(),
        InvalidVersion::Go(GoError::Toolchain) => "tag".to_owned(),
        other => format!("unexpected error {other}"),
    })
}

fn normal_form(v: &GoVersion) -> String {
    if v.is_pseudo() {
        format!("{} pseudo", v.canonical())
    } else {
        v.canonical().to_owned()
    }
}

/// Builds the reference in GOPATH mode under `dir`: Debian's x/mod and x/vuln
/// sources linked in, the program placed under x/vuln so that it may import
/// x/vuln's internal package.
fn build_reference(dir: &Path) -> Result<PathBuf, String> {
    let src = dir.join("gopath/src/golang.org/x");
    let program = src.join("vuln/trawlref");
    std::fs::create_dir_all(&program).map_err(|e| e.to_string())?;
    for (link, target) in [
        (src.join("mod"), format!("{GOCODE}/golang.org/x/mod")),
        (
            src.join("vuln/internal"),
            format!("{GOCODE}/golang.org/x/vuln/internal"),
        ),
    ] {
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(&target, &link).map_err(|e| e.to_string())?;
        }
    }
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/go_semver.go"),
        program.join("main.go"),
    )
    .map_err(|e| e.to_string())?;
    let binary = dir.join("go-semver-reference");
    let output = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg("golang.org/x/vuln/trawlref")
        .env("GO111MODULE", "off")
        .env("GOPATH", dir.join("gopath"))
        .env("GOCACHE", dir.join("gocache"))
        .env("GOFLAGS", "")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .output()
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(binary)
}

#[test]
fn x_mod_semver_agrees() {
    let sources = [
        "golang.org/x/mod/semver",
        "golang.org/x/vuln/internal/semver",
    ];
    if !runs(Command::new("go").arg("version")) {
        missing_reference("the go command is not installed");
        return;
    }
    if let Some(missing) = sources.iter().find(|p| !Path::new(GOCODE).join(p).is_dir()) {
        missing_reference(&format!("{GOCODE}/{missing} is not installed"));
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-differential");
    let binary = build_reference(&dir).unwrap_or_else(|e| panic!("building the reference: {e}"));
    let go_version = Command::new("go")
        .arg("version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();

    let real = corpus("go");
    let mut versions = real.clone();
    // As OSV's Go records write them.
    versions.extend(
        real.iter()
            .filter_map(|v| v.strip_prefix('v'))
            .map(str::to_owned),
    );
    let mut rng = Rng(0x676f_2073_656d_7672);
    versions.extend(toolchain_tags(&mut rng));
    for _ in 0..6000 {
        versions.push(generated(&mut rng));
    }
    println!(
        "{} real versions (each also without its v), {} tags and generated",
        real.len(),
        versions.len() - 2 * real.len()
    );

    let scheme = Scheme {
        name: "Go",
        parse: &our_parse,
        normal_form: &normal_form,
        reference_error: &|e| e["error"].as_str().unwrap_or("?").to_owned(),
        compare_str: &|a, b| VersionScheme::Go.compare(a, b).unwrap_or(Ordering::Equal),
        known_divergence: &|_, _| false,
    };
    check(
        &scheme,
        versions,
        Command::new(binary).env("TRAWL_GO_REFERENCE", go_version),
        &mut rng,
    );
}
