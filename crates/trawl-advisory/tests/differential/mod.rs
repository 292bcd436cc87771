//! Shared driver of the version-scheme differential tests (`pypi_differential`,
//! `npm_differential`, `go_differential`, `crates_differential`).
//!
//! Versions (a corpus of real ones from `fixtures/versions/`, made by
//! `scripts/version-corpus.py`, plus generated ones) are parsed here and sorted
//! with our ordering; every adjacent pair of that order and a few thousand
//! random pairs (invalid versions included) then go to the reference
//! implementation in one process, as JSON: `{"versions": [..], "pairs":
//! [[i, j], ..]}` in, `{"reference": name, "parsed": [normal form | {"error":
//! kind}], "cmp": [-1 | 0 | 1 | null]}` out (see `reference/`). Every version
//! must be accepted or refused alike, with the same normal form or error kind,
//! and every pair ordered alike, through both our `Ord` and
//! `VersionScheme::compare`.

// Each test uses the parts it needs.
#![allow(dead_code)]

use std::cmp::Ordering;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// xorshift64*: deterministic, dependency-free.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    pub fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }

    /// Mangles `s` now and then (a character dropped, doubled or replaced by
    /// one from `alphabet`), so that near-valid versions are tried too.
    pub fn mangle(&mut self, s: &mut String, alphabet: &[char]) {
        if s.is_empty() || !self.chance(8) {
            return;
        }
        let chars: Vec<char> = s.chars().collect();
        let at = self.below(chars.len());
        let mut out: Vec<char> = chars[..at].to_vec();
        match self.below(3) {
            0 => {}
            1 => out.extend([chars[at], chars[at]]),
            _ => out.push(alphabet[self.below(alphabet.len())]),
        }
        out.extend(&chars[at + 1..]);
        *s = out.into_iter().collect();
    }
}

/// The real versions of `fixtures/versions/NAME.txt`.
pub fn corpus(name: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/versions")
        .join(format!("{name}.txt"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Where `scripts/install-version-references.sh` puts the Python and node
/// references: `$TRAWL_VERSION_REFERENCES`, else `target/version-references`.
pub fn references_dir() -> PathBuf {
    std::env::var_os("TRAWL_VERSION_REFERENCES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/version-references")
        })
}

/// A reference that is not installed: skipped with `why` on a developer's
/// machine, a failure under CI (`CI` set), which installs every reference.
pub fn missing_reference(why: &str) {
    let message = format!(
        "{why}; install the references with scripts/install-version-references.sh \
         (Go's come from Debian: golang-go golang-golang-x-mod-dev golang-golang-x-vuln-dev)"
    );
    if std::env::var_os("CI").is_some() {
        panic!("{message}");
    }
    println!("skipping the differential test: {message}");
}

/// Whether `command` runs and exits successfully.
pub fn runs(command: &mut Command) -> bool {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One scheme's side of the comparison.
pub struct Scheme<'a, T> {
    pub name: &'a str,
    /// Our parse: the normal form to compare with the reference's, or the error
    /// kind as the reference names it.
    pub parse: &'a dyn Fn(&str) -> Result<T, String>,
    pub normal_form: &'a dyn Fn(&T) -> String,
    /// The reference's error, reduced to the kind `parse` names.
    pub reference_error: &'a dyn Fn(&serde_json::Value) -> String,
    /// `VersionScheme::compare`.
    pub compare_str: &'a dyn Fn(&str, &str) -> Ordering,
    /// Pairs on which the reference is known to give an answer no total order
    /// can (documented in the scheme's module); counted, not compared.
    pub known_divergence: &'a dyn Fn(&str, &str) -> bool,
}

/// Runs `reference` on the versions and checks every answer; panics listing the
/// disagreements. Prints the counts.
pub fn check<T: Ord>(
    scheme: &Scheme<'_, T>,
    mut versions: Vec<String>,
    reference: &mut Command,
    rng: &mut Rng,
) {
    let started = Instant::now();
    versions.sort();
    versions.dedup();
    let parsed: Vec<Result<T, String>> = versions.iter().map(|v| (scheme.parse)(v)).collect();
    let mut valid: Vec<usize> = (0..versions.len()).filter(|&i| parsed[i].is_ok()).collect();
    let ours = |i: usize, j: usize| match (&parsed[i], &parsed[j]) {
        (Ok(a), Ok(b)) => Some(a.cmp(b)),
        _ => None,
    };
    valid.sort_by(|&i, &j| ours(i, j).unwrap_or(Ordering::Equal));
    let mut pairs: Vec<(usize, usize)> = valid.windows(2).map(|w| (w[0], w[1])).collect();
    let random = 10_000.max(versions.len());
    for _ in 0..random {
        let i = if rng.chance(2) {
            valid[rng.below(valid.len())]
        } else {
            rng.below(versions.len())
        };
        let j = if rng.chance(2) {
            valid[rng.below(valid.len())]
        } else {
            rng.below(versions.len())
        };
        pairs.push((i, j));
    }

    let job = serde_json::json!({ "versions": versions, "pairs": pairs });
    let output = run_json(reference, &job);
    let name = output["reference"].as_str().unwrap_or("?").to_owned();
    let ref_parsed = output["parsed"].as_array().expect("parsed");
    let ref_cmp = output["cmp"].as_array().expect("cmp");
    assert_eq!(ref_parsed.len(), versions.len());
    assert_eq!(ref_cmp.len(), pairs.len());

    let mut bad = Vec::new();
    for ((version, ours), theirs) in versions.iter().zip(&parsed).zip(ref_parsed) {
        match (ours, theirs.as_str()) {
            (Ok(v), Some(normal)) => {
                let mine = (scheme.normal_form)(v);
                if mine != normal {
                    bad.push(format!(
                        "{version:?}: we normalise to {mine:?}, {name} to {normal:?}"
                    ));
                }
            }
            (Ok(_), None) => bad.push(format!("{version:?}: we accept it, {name} says {theirs}")),
            (Err(e), Some(normal)) => bad.push(format!(
                "{version:?}: we refuse it ({e}), {name} reads {normal:?}"
            )),
            (Err(e), None) => {
                let kind = (scheme.reference_error)(theirs);
                if *e != kind {
                    bad.push(format!(
                        "{version:?}: we refuse it as {e}, {name} as {kind}"
                    ));
                }
            }
        }
    }
    let mut excluded = 0;
    for (&(i, j), theirs) in pairs.iter().zip(ref_cmp) {
        let (a, b) = (&versions[i], &versions[j]);
        let theirs = theirs.as_i64().map(|c| c.cmp(&0));
        let mine = ours(i, j);
        if let Some(o) = mine {
            let via_str = (scheme.compare_str)(a, b);
            if via_str != o {
                bad.push(format!(
                    "{a:?} vs {b:?}: Ord says {o:?}, compare() {via_str:?}"
                ));
            }
        }
        if mine != theirs {
            if (scheme.known_divergence)(a, b) {
                excluded += 1;
            } else {
                bad.push(format!(
                    "{a:?} vs {b:?}: we say {mine:?}, {name} {theirs:?}"
                ));
            }
        }
    }

    println!(
        "{} differential against {name}: {} versions ({} valid), {} pairs ({} adjacent in our \
         order, {random} random), {excluded} in the documented divergence, in {:.1?}; {} \
         disagreements",
        scheme.name,
        versions.len(),
        valid.len(),
        pairs.len(),
        valid.len().saturating_sub(1),
        started.elapsed(),
        bad.len(),
    );
    assert!(
        bad.is_empty(),
        "{} disagreements with {name}, first ones: {:#?}",
        bad.len(),
        &bad[..bad.len().min(30)]
    );
}

fn run_json(command: &mut Command, job: &serde_json::Value) -> serde_json::Value {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting the reference");
    let input = serde_json::to_vec(job).expect("job");
    let mut stdin = child.stdin.take().expect("stdin");
    // Written from a thread: the reference may answer before reading it all.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("reference output");
    writer.join().expect("writer").expect("writing the job");
    assert!(
        output.status.success(),
        "the reference failed: {}",
        output.status
    );
    serde_json::from_slice(&output.stdout).expect("reference JSON")
}
