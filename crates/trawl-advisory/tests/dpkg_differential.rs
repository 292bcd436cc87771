//! Differential test: our dpkg version ordering against `dpkg --compare-versions`.
//!
//! Versions come from this machine's dpkg status file and apt package lists (the
//! `Version:` field, `Source: name (version)` and relationship constraints) plus a few
//! thousand generated ones. They are sorted with our comparator; every adjacent pair
//! and a few thousand random pairs are then put to dpkg, which must agree on each.
//! dpkg is spawned directly (no shell) from a few threads: one exec per pair, each
//! asking the relation we computed (`lt`, `eq` or `gt`), whose truth settles it.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use trawl_advisory::DpkgVersion;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick(&mut self, chars: &[u8]) -> char {
        char::from(chars[self.below(chars.len())])
    }
}

const RELATION_FIELDS: &[&str] = &[
    "Depends:",
    "Pre-Depends:",
    "Recommends:",
    "Suggests:",
    "Enhances:",
    "Breaks:",
    "Conflicts:",
    "Replaces:",
    "Provides:",
    "Built-Using:",
    "Static-Built-Using:",
];

/// Version strings from a control-file stanza stream (status or Packages).
fn versions_in(control: &str, out: &mut BTreeSet<String>) {
    for line in control.lines() {
        if let Some(v) = line.strip_prefix("Version:") {
            out.insert(v.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("Source:") {
            if let Some((_, v)) = rest.split_once('(') {
                out.insert(v.trim_end().trim_end_matches(')').trim().to_owned());
            }
        } else if RELATION_FIELDS.iter().any(|f| line.starts_with(f)) {
            for constraint in line.split('(').skip(1) {
                let Some((inner, _)) = constraint.split_once(')') else {
                    continue;
                };
                let v = inner.trim_start_matches(['<', '>', '=', ' ']).trim();
                if !v.is_empty() {
                    out.insert(v.to_owned());
                }
            }
        }
    }
}

/// A Packages list, decompressed with apt's own helper (or the matching tool).
fn read_list(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    if name.ends_with("_Packages") {
        return std::fs::read_to_string(path).ok();
    }
    let helper = Path::new("/usr/lib/apt/apt-helper");
    let output = if helper.exists() {
        Command::new(helper)
            .arg("cat-file")
            .arg(path)
            .output()
            .ok()?
    } else {
        let tool = match path.extension()?.to_str()? {
            "lz4" => "lz4cat",
            "gz" => "zcat",
            "xz" => "xzcat",
            "zst" => "zstdcat",
            _ => return None,
        };
        Command::new(tool).arg(path).output().ok()?
    };
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

fn host_versions() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Ok(status) = std::fs::read_to_string("/var/lib/dpkg/status") {
        versions_in(&status, &mut out);
    }
    if let Ok(dir) = std::fs::read_dir("/var/lib/apt/lists") {
        for entry in dir.flatten() {
            let path = entry.path();
            let is_list = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains("_Packages"));
            if let Some(text) = is_list.then(|| read_list(&path)).flatten() {
                versions_in(&text, &mut out);
            }
        }
    }
    out
}

/// A random version with valid structure, drawn from a small alphabet so that near
/// collisions (`1.0` / `1.00`, `~` / end of string) are frequent.
fn generated_version(rng: &mut Rng) -> String {
    const DIGITS: &[u8] = b"0000123789";
    const UPSTREAM: &[u8] = b"0123456789..+~~aAzZb";
    const REVISION: &[u8] = b"0123456789..+~~aAzb";
    let mut s = String::new();
    let epoch = rng.below(4) == 0;
    if epoch {
        for _ in 0..=rng.below(3) {
            s.push(rng.pick(DIGITS));
        }
        s.push(':');
    }
    let revision = rng.below(3) != 0;
    // dpkg only warns about a non-digit start; keep a few.
    s.push(if rng.below(15) == 0 {
        rng.pick(b"aZ~")
    } else {
        rng.pick(DIGITS)
    });
    for _ in 0..rng.below(10) {
        match rng.below(40) {
            0 => {
                // A digit run far beyond u64, with leading zeros now and then.
                for _ in 0..20 + rng.below(25) {
                    s.push(rng.pick(DIGITS));
                }
            }
            1 if epoch => s.push(':'),
            2 if revision => s.push('-'),
            _ => s.push(rng.pick(UPSTREAM)),
        }
    }
    if revision {
        s.push('-');
        for _ in 0..=rng.below(6) {
            s.push(rng.pick(REVISION));
        }
    }
    s
}

fn relation(o: Ordering) -> &'static str {
    match o {
        Ordering::Less => "lt",
        Ordering::Equal => "eq",
        Ordering::Greater => "gt",
    }
}

/// Asks dpkg whether `a <op> b`; `Err` carries an unexpected exit status.
fn dpkg_says(a: &str, op: &str, b: &str) -> Result<bool, String> {
    let status = Command::new("dpkg")
        .args(["--compare-versions", a, op, b])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| e.to_string())?;
    match status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        other => Err(format!("dpkg exited with {other:?}")),
    }
}

#[test]
fn dpkg_compare_versions_agrees() {
    if Command::new("dpkg").arg("--version").output().is_err() {
        println!("dpkg is not installed; skipping the differential test");
        return;
    }
    let started = Instant::now();

    let host = host_versions();
    let mut rejected = Vec::new();
    let mut versions: Vec<DpkgVersion> = Vec::new();
    for v in &host {
        match DpkgVersion::parse(v) {
            Ok(parsed) => versions.push(parsed),
            Err(e) => rejected.push(e.to_string()),
        }
    }
    assert!(
        rejected.is_empty(),
        "real versions rejected by our parser: {rejected:#?}"
    );
    let host_count = versions.len();

    let mut rng = Rng(0x7472_6177_6c21_2024);
    let mut generated = BTreeSet::new();
    while generated.len() < 3000 {
        generated.insert(generated_version(&mut rng));
    }
    for v in &generated {
        match DpkgVersion::parse(v) {
            Ok(parsed) if !host.contains(v) => versions.push(parsed),
            Ok(_) => {}
            Err(e) => panic!("generator produced an invalid version: {e}"),
        }
    }

    versions.sort();
    let mut pairs: Vec<(usize, usize)> = (1..versions.len()).map(|i| (i - 1, i)).collect();
    for _ in 0..3000 {
        pairs.push((rng.below(versions.len()), rng.below(versions.len())));
    }

    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    let chunk = pairs.len().div_ceil(workers);
    let versions = &versions;
    let disagreements: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = pairs
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut bad = Vec::new();
                    for &(i, j) in part {
                        let (a, b) = (&versions[i], &versions[j]);
                        let op = relation(a.cmp(b));
                        match dpkg_says(a.as_str(), op, b.as_str()) {
                            Ok(true) => {}
                            Ok(false) => bad.push(format!("we say {a} {op} {b}; dpkg disagrees")),
                            Err(e) => bad.push(format!("{a} {op} {b}: {e}")),
                        }
                    }
                    bad
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|_| vec!["worker panicked".into()]))
            .collect()
    });

    println!(
        "dpkg differential: {} versions ({} from this host, {} generated), {} pairs checked \
         ({} adjacent, 3000 random) with {workers} workers in {:.1?}; {} disagreements",
        versions.len(),
        host_count,
        versions.len() - host_count,
        pairs.len(),
        versions.len() - 1,
        started.elapsed(),
        disagreements.len(),
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements with dpkg, first ones: {:#?}",
        disagreements.len(),
        &disagreements[..disagreements.len().min(20)]
    );
    assert!(host_count > 0, "no versions found on this host");
}
