//! Shared by the version differential tests: a deterministic generator, and one
//! reference process fed all versions and pairs at once.
//!
//! The protocol with the reference drivers in `tests/reference/`: the first line is
//! the number of versions N, then N lines of hex-encoded UTF-8 versions (so blanks,
//! newlines and any other character travel unharmed), then one `i j` line per pair of
//! version indices to compare. The driver answers one line per version, then one per
//! pair.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

pub fn hex(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

pub fn unhex(s: &str) -> Result<String, String> {
    let bytes = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|e| format!("bad hex {s:?}: {e}"))?;
    String::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))
}

/// Runs `command`, feeding it the versions and pairs; returns its lines: first the
/// per-version answers, then the per-pair ones.
pub fn ask_reference(
    mut command: Command,
    versions: &[String],
    pairs: &[(usize, usize)],
) -> Result<(Vec<String>, Vec<String>), String> {
    let mut input = String::new();
    let _ = writeln!(input, "{}", versions.len());
    for v in versions {
        let _ = writeln!(input, "{}", hex(v));
    }
    for (i, j) in pairs {
        let _ = writeln!(input, "{i} {j}");
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {command:?}: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    writer
        .join()
        .map_err(|_| "writer panicked".to_owned())?
        .map_err(|e| format!("writing to the reference: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "reference failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let text = String::from_utf8(output.stdout).map_err(|e| e.to_string())?;
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.len() != versions.len() + pairs.len() {
        return Err(format!(
            "reference gave {} lines for {} versions and {} pairs",
            lines.len(),
            versions.len(),
            pairs.len()
        ));
    }
    let pair_lines = lines.split_off(versions.len());
    Ok((lines, pair_lines))
}

/// Whether `program` runs (`program --version` or similar exits at all).
pub fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// The first path that exists.
pub fn first_existing(paths: &[&str]) -> Option<PathBuf> {
    paths.iter().map(PathBuf::from).find(|p| p.exists())
}

/// `tests/<relative>` in this crate.
pub fn test_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(relative)
}

/// Non-empty, non-comment lines of a fixture list.
pub fn fixture_lines(relative: &str) -> Vec<String> {
    std::fs::read_to_string(test_file(relative))
        .unwrap_or_else(|e| panic!("fixture {relative}: {e}"))
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The strings a language scheme's differential test compares: `real` (the
/// ecosystem's own versions), then the real Maven and NuGet versions of
/// `fixtures/versions/` not among them (other ecosystems' strings), then
/// `n` more from `generate` not among either.
pub struct Corpus {
    /// All of them, in that order.
    pub texts: Vec<String>,
    /// How many came from the other ecosystems.
    pub others: usize,
    /// How many were generated.
    pub generated: usize,
    /// The generator, to go on drawing from (pairs).
    pub rng: Rng,
}

impl Corpus {
    /// The corpus for `real`, generating with `seed`.
    pub fn new(
        real: &std::collections::BTreeSet<String>,
        seed: u64,
        n: usize,
        generate: impl Fn(&mut Rng) -> String,
    ) -> Corpus {
        let others: std::collections::BTreeSet<String> =
            fixture_lines("fixtures/versions/maven.txt")
                .into_iter()
                .chain(fixture_lines("fixtures/versions/nuget.txt"))
                .filter(|v| !real.contains(v))
                .collect();
        let mut rng = Rng(seed);
        let mut generated = std::collections::BTreeSet::new();
        while generated.len() < n {
            let v = generate(&mut rng);
            if !real.contains(&v) && !others.contains(&v) {
                generated.insert(v);
            }
        }
        Corpus {
            texts: real
                .iter()
                .chain(&others)
                .chain(&generated)
                .cloned()
                .collect(),
            others: others.len(),
            generated: generated.len(),
            rng,
        }
    }
}

/// Upstream versions of Debian packages whose names start with `prefix` (e.g.
/// `ruby-`), from this machine's apt lists and dpkg status: epoch and Debian
/// revision removed. Real version strings of those ecosystems, repackaged.
pub fn debian_upstream_versions(prefix: &str) -> Vec<String> {
    let mut texts = Vec::new();
    if let Ok(status) = std::fs::read_to_string("/var/lib/dpkg/status") {
        texts.push(status);
    }
    if let Ok(dir) = std::fs::read_dir("/var/lib/apt/lists") {
        for entry in dir.flatten() {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !name.contains("_Packages") {
                continue;
            }
            let text = if name.ends_with("_Packages") {
                std::fs::read_to_string(&path).ok()
            } else {
                Command::new("/usr/lib/apt/apt-helper")
                    .arg("cat-file")
                    .arg(&path)
                    .output()
                    .ok()
                    .filter(|o| o.status.success())
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            };
            texts.extend(text);
        }
    }
    let mut out = std::collections::BTreeSet::new();
    for text in &texts {
        let mut package = "";
        for line in text.lines() {
            if let Some(p) = line.strip_prefix("Package: ") {
                package = p.trim();
            } else if let Some(v) = line.strip_prefix("Version: ")
                && package.starts_with(prefix)
            {
                let v = v.trim();
                let v = v.split_once(':').map_or(v, |(_, rest)| rest);
                let v = v.rsplit_once('-').map_or(v, |(upstream, _)| upstream);
                out.insert(v.to_owned());
            }
        }
    }
    out.into_iter().collect()
}

/// Adjacent pairs of a sorted list, plus `random` random pairs.
pub fn pairs(len: usize, random: usize, rng: &mut Rng) -> Vec<(usize, usize)> {
    let mut pairs: Vec<(usize, usize)> = (1..len).map(|i| (i - 1, i)).collect();
    for _ in 0..random {
        pairs.push((rng.below(len), rng.below(len)));
    }
    pairs
}

/// A merge sort that, unlike `slice::sort`, accepts an order that is not transitive
/// (Maven's is not: `0 < 0-0-1 < 0.rc.foo < 0`) without panicking. Neighbours end up
/// close in the order wherever it is consistent, which is what adjacent pairs need.
pub fn merge_sort_by<T: Clone>(items: &mut [T], less_eq: &impl Fn(&T, &T) -> bool) {
    if items.len() < 2 {
        return;
    }
    let mid = items.len() / 2;
    merge_sort_by(&mut items[..mid], less_eq);
    merge_sort_by(&mut items[mid..], less_eq);
    let mut merged = Vec::with_capacity(items.len());
    let (mut i, mut j) = (0, mid);
    while i < mid && j < items.len() {
        if less_eq(&items[i], &items[j]) {
            merged.push(items[i].clone());
            i += 1;
        } else {
            merged.push(items[j].clone());
            j += 1;
        }
    }
    merged.extend_from_slice(&items[i..mid]);
    merged.extend_from_slice(&items[j..]);
    items.clone_from_slice(&merged);
}
