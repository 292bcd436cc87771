//! Differential test: our rpm version ordering against rpm 4.18's own
//! `rpm.vercmp()` (Debian's `rpm` package), which parses both arguments as
//! `[epoch:]version[-release]` and compares them with `rpmvercmp()`.
//!
//! Versions: every EVR of the real rpm databases in `../shared/fixtures/rpm` (plus
//! their version and release parts alone), and a few thousand generated ones over a
//! small alphabet rich in `~ ^ . _ +`, letters, digits and leading zeros, with and
//! without epochs and releases. They are sorted with our comparator; every adjacent
//! pair and thousands of random pairs go to rpm in one process (a generated Lua
//! table, looped over in `rpm --eval '%{lua: ...}'`), which must agree on each.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::process::Command;

use trawl_advisory::RpmVersion;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/rpm");

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

/// EVRs from the fixtures' `expected.tsv` (name, epoch, version, release, ...).
fn real_versions() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(FIXTURES).expect("rpm fixtures") {
        let path = entry.expect("entry").path().join("expected.tsv");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let fields: Vec<&str> = line.split('\t').collect();
            let [_, epoch, version, release, ..] = fields[..] else {
                continue;
            };
            out.insert(version.to_owned());
            out.insert(release.to_owned());
            out.insert(format!("{version}-{release}"));
            let epoch = if epoch.is_empty() { "0" } else { epoch };
            out.insert(format!("{epoch}:{version}-{release}"));
        }
    }
    out.retain(|v| !v.is_empty());
    out
}

fn generated_part(rng: &mut Rng, alphabet: &[u8]) -> String {
    let mut s = String::new();
    for _ in 0..=rng.below(7) {
        s.push(rng.pick(alphabet));
    }
    s
}

/// A random EVR over an alphabet where near-collisions are frequent.
fn generated_version(rng: &mut Rng) -> String {
    const PART: &[u8] = b"000112399..._+~~^^aazZbB";
    let mut s = String::new();
    match rng.below(6) {
        0 => {
            let _ = write!(s, "{}:", rng.below(3));
        }
        1 => s.push(':'), // empty epoch: 0
        _ => {}
    }
    s.push_str(&generated_part(rng, PART));
    if rng.below(3) != 0 {
        s.push('-');
        s.push_str(&generated_part(rng, PART));
    }
    s
}

fn lua_string(s: &str) -> String {
    // Our alphabet has no quote, backslash, `%` or braces (rpm macro syntax).
    assert!(!s.contains(['"', '\\', '%', '{', '}']), "{s}");
    format!("\"{s}\"")
}

/// Asks rpm about every pair at once; returns rpm's -1/0/1 per pair.
fn rpm_vercmp(pairs: &[(&str, &str)]) -> Vec<Ordering> {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("pairs.lua");
    let mut lua = String::from("local pairs_ = {\n");
    for (a, b) in pairs {
        let _ = writeln!(lua, "{{{},{}}},", lua_string(a), lua_string(b));
    }
    lua.push_str(
        "}\nlocal out = {}\nfor i, p in ipairs(pairs_) do out[i] = rpm.vercmp(p[1], p[2]) end\n\
         print(table.concat(out, \",\"))\n",
    );
    std::fs::write(&script, lua).expect("write script");
    let output = Command::new("rpm")
        .arg("--eval")
        .arg(format!("%{{lua: dofile(\"{}\")}}", script.display()))
        .output()
        .expect("rpm is installed (apt-get install rpm)");
    assert!(
        output.status.success(),
        "rpm failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let answers: Vec<Ordering> = text
        .trim()
        .split(',')
        .map(|n| match n {
            "-1" => Ordering::Less,
            "0" => Ordering::Equal,
            "1" => Ordering::Greater,
            other => panic!("unexpected rpm answer {other:?}"),
        })
        .collect();
    assert_eq!(answers.len(), pairs.len());
    answers
}

#[test]
fn agrees_with_rpm_vercmp() {
    let real = real_versions();
    assert!(real.len() > 300, "{} real versions", real.len());
    let mut rng = Rng(0x05ee_d0f7_aa11);
    let mut strings: BTreeSet<String> = real.clone();
    while strings.len() < real.len() + 4000 {
        strings.insert(generated_version(&mut rng));
    }
    let mut versions: Vec<RpmVersion> = strings
        .iter()
        .map(|s| RpmVersion::parse(s).expect("every generated string is a valid EVR"))
        .collect();
    versions.sort();

    let mut pairs: Vec<(&RpmVersion, &RpmVersion)> =
        versions.windows(2).map(|w| (&w[0], &w[1])).collect();
    let real_versions: Vec<&RpmVersion> = versions
        .iter()
        .filter(|v| real.contains(v.as_str()))
        .collect();
    for _ in 0..4000 {
        let a = &versions[rng.below(versions.len())];
        let b = &versions[rng.below(versions.len())];
        pairs.push((a, b));
    }
    for _ in 0..2000 {
        let a = real_versions[rng.below(real_versions.len())];
        let b = real_versions[rng.below(real_versions.len())];
        pairs.push((a, b));
    }
    let texts: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let answers = rpm_vercmp(&texts);

    let disagreements: Vec<String> = pairs
        .iter()
        .zip(&answers)
        .filter(|((a, b), rpm)| a.cmp(b) != **rpm)
        .map(|((a, b), rpm)| format!("{a} vs {b}: rpm {rpm:?}, ours {:?}", a.cmp(b)))
        .collect();
    assert!(
        disagreements.is_empty(),
        "{} of {} pairs disagree:\n{}",
        disagreements.len(),
        pairs.len(),
        disagreements[..disagreements.len().min(40)].join("\n")
    );
    assert!(pairs.len() > 10_000, "{} pairs", pairs.len());
    // The sort put equal versions side by side; rpm must have seen some.
    assert!(answers.contains(&Ordering::Equal));
    eprintln!(
        "rpm agreed on {} pairs over {} versions ({} real)",
        pairs.len(),
        versions.len(),
        real.len()
    );
}
