//! The compiled store at scale: 1,000,000+ advisories (the real fixture feeds
//! plus deterministic synthetic records over 22 distro releases and the eight
//! language ecosystems osv.dev exports and Trawl matches, eleven version
//! schemes, skewed package popularity, fixed / last-affected / open ranges,
//! version lists, and for language records the long `versions` lists and
//! `GIT` ranges GHSA and osv.dev give them). Measures opening, matching a
//! mixed 1000-package inventory (dpkg, apk, rpm, PyPI, npm, Go, Maven,
//! crates.io, RubyGems, Packagist, NuGet), and (once, printed before
//! criterion runs) the resident memory an open store adds.
//!
//! Goals: open < 1 ms, 1000 packages < 5 ms, RSS after open < 32 MiB.
//!
//! The database is built once into `target/bench-data/` and reused; delete it
//! to rebuild (or when the generator changes, bump `GENERATION`).
//! `TRAWL_BENCH_DB=FILE` measures another store file instead.
//! `TRAWL_BENCH_RUNS=N` skips criterion and times N matches of the inventory
//! one by one, printing the fastest, the median and the slowest: on a
//! machine shared with other jobs the fastest run is the steadiest figure
//! for comparing two builds.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::Criterion;
use trawl_advisory::{Advisory, AdvisoryStore, FeedPaths, PackageQuery, StoreBuilder};

const ADVISORIES: u64 = 1_000_000;
const GENERATION: u32 = 3;
const INVENTORY: usize = 1000;

/// (ecosystem, version flavour).
const ECOSYSTEMS: [(&str, Flavour); 30] = [
    ("Debian:10", Flavour::Dpkg("+deb10u")),
    ("Debian:11", Flavour::Dpkg("+deb11u")),
    ("Debian:12", Flavour::Dpkg("+deb12u")),
    ("Debian:13", Flavour::Dpkg("+deb13u")),
    ("Ubuntu:20.04:LTS", Flavour::Dpkg("ubuntu0.20.04.")),
    ("Ubuntu:22.04:LTS", Flavour::Dpkg("ubuntu0.22.04.")),
    ("Ubuntu:24.04:LTS", Flavour::Dpkg("ubuntu0.24.04.")),
    ("Alpine:v3.15", Flavour::Apk),
    ("Alpine:v3.16", Flavour::Apk),
    ("Alpine:v3.17", Flavour::Apk),
    ("Alpine:v3.18", Flavour::Apk),
    ("Alpine:v3.19", Flavour::Apk),
    ("Alpine:v3.20", Flavour::Apk),
    ("Wolfi", Flavour::Apk),
    ("Rocky Linux:8", Flavour::Rpm("el8")),
    ("Rocky Linux:9", Flavour::Rpm("el9")),
    ("AlmaLinux:8", Flavour::Rpm("el8")),
    ("AlmaLinux:9", Flavour::Rpm("el9")),
    ("Red Hat:enterprise_linux:9::baseos", Flavour::Rpm("el9")),
    (
        "SUSE:Linux Enterprise Server 15 SP5",
        Flavour::Rpm("150500"),
    ),
    ("openSUSE:Leap 15.5", Flavour::Rpm("lp155")),
    ("Photon OS:5.0", Flavour::Rpm("ph5")),
    ("PyPI", Flavour::Lang("PyPI")),
    ("npm", Flavour::Lang("npm")),
    ("Go", Flavour::Lang("Go")),
    ("Maven", Flavour::Lang("Maven")),
    ("crates.io", Flavour::Lang("crates.io")),
    ("RubyGems", Flavour::Lang("RubyGems")),
    ("Packagist", Flavour::Lang("Packagist")),
    ("NuGet", Flavour::Lang("NuGet")),
];
const PACKAGES_PER_ECOSYSTEM: u64 = 6000;

#[derive(Clone, Copy)]
enum Flavour {
    Dpkg(&'static str),
    Apk,
    Rpm(&'static str),
    /// A language ecosystem: plain `major.minor.patch` versions, names in
    /// the ecosystem's shape.
    Lang(&'static str),
}

/// SplitMix64: deterministic, fast, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Skewed towards small values: a few packages get most advisories, as
    /// the kernel, glibc and openssl do.
    fn skewed(&mut self, n: u64) -> u64 {
        let a = self.below(n);
        let b = self.below(n);
        a.min(b).min(self.below(n))
    }
}

fn version(flavour: Flavour, major: u64, minor: u64, patch: u64, rev: u64) -> String {
    match flavour {
        Flavour::Dpkg(suffix) => format!("{major}.{minor}.{patch}-{rev}{suffix}{}", rev % 5),
        Flavour::Apk => format!("{major}.{minor}.{patch}-r{rev}"),
        Flavour::Rpm(dist) => format!("{major}.{minor}.{patch}-{rev}.{dist}"),
        Flavour::Lang(_) => format!("{major}.{minor}.{}", patch * 10 + rev),
    }
}

/// A package name as `flavour`'s ecosystem spells it.
fn name_in(flavour: Flavour, i: u64) -> String {
    match flavour {
        Flavour::Lang("PyPI") => format!("py-pkg{i:05}"),
        Flavour::Lang("npm") if i.is_multiple_of(3) => format!("@scope{}/pkg{i:05}", i % 7),
        Flavour::Lang("Go") => format!("github.com/org{}/pkg{i:05}", i % 50),
        Flavour::Lang("Maven") => format!("org.example{}:pkg{i:05}", i % 20),
        Flavour::Lang("Packagist") => format!("vendor{}/pkg{i:05}", i % 30),
        Flavour::Lang(_) => format!("pkg{i:05}"),
        _ => package_name(i),
    }
}

fn package_name(i: u64) -> String {
    const STEMS: [&str; 12] = [
        "lib", "python3-", "perl-", "golang-", "node-", "ruby-", "", "x11-", "gst-", "qt6-",
        "texlive-", "php-",
    ];
    format!("{}pkg{i:05}", STEMS[(i % 12) as usize])
}

fn synthetic(n: u64, rng: &mut Rng) -> Advisory {
    let (ecosystem, flavour) = ECOSYSTEMS[rng.below(ECOSYSTEMS.len() as u64) as usize];
    let package = name_in(flavour, rng.skewed(PACKAGES_PER_ECOSYSTEM));
    let major = rng.below(4);
    let minor = rng.below(20);
    let fixed = version(flavour, major, minor, rng.below(30), 1 + rng.below(9));
    let events = match rng.below(10) {
        0 => serde_json::json!([{"introduced": "0"}]),
        1 => serde_json::json!([{"introduced": version(flavour, major, 0, 0, 1)},
                                {"last_affected": fixed}]),
        2 => {
            serde_json::json!([{"introduced": "0"}, {"fixed": version(flavour, major, minor, 0, 1)},
                                {"introduced": version(flavour, major + 1, 0, 0, 1)}, {"fixed": fixed}])
        }
        _ => serde_json::json!([{"introduced": "0"}, {"fixed": fixed}]),
    };
    let urgency = ["low", "medium", "high", "unimportant"][rng.below(4) as usize];
    let mut affected = serde_json::json!({
        "package": {"ecosystem": ecosystem, "name": package},
        "ranges": [{"type": "ECOSYSTEM", "events": events}],
        "ecosystem_specific": {"urgency": urgency},
    });
    if let Flavour::Lang(_) = flavour {
        // GHSA and osv.dev list every affected release, and often the
        // fixing commit too.
        affected["ecosystem_specific"] = serde_json::Value::Null;
        let listed: Vec<String> = (0..rng.below(30))
            .map(|p| version(flavour, major, minor.saturating_sub(1), p, 0))
            .collect();
        affected["versions"] = serde_json::json!(listed);
        if rng.below(3) == 0 {
            affected["ranges"].as_array_mut().expect("ranges").push(
                serde_json::json!({"type": "GIT", "repo": format!("https://github.com/example/{n}"),
                    "events": [{"introduced": "0"}, {"fixed": format!("{:040x}", rng.next())}]}),
            );
        }
    } else if rng.below(20) == 0 {
        affected["versions"] = serde_json::json!([version(flavour, major, minor, 1, 1)]);
    }
    let year = 2015 + rng.below(10);
    serde_json::from_value(serde_json::json!({
        "id": format!("SYN-{year}-{n:07}"),
        "modified": format!("{year}-0{}-1{}T12:00:00Z", 1 + rng.below(9), rng.below(10)),
        "aliases": [format!("CVE-{year}-{}", 10000 + n)],
        "summary": format!("synthetic issue {n} in {package}: buffer overflow in parser"),
        "details": "A crafted input can make the parser write past the end of a heap buffer. \
                    Remote attackers may cause a denial of service or execute code.",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [affected],
        "references": [{"type": "ADVISORY", "url": format!("https://security.example/{n}")}],
    }))
    .expect("generated records are valid OSV")
}

fn fixtures() -> FeedPaths {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    FeedPaths {
        osv_dirs: vec![manifest.join("tests/fixtures/osv")],
        secdb_paths: vec![manifest.join("../../../shared/fixtures/secdb")],
        debian_tracker_files: vec![manifest.join("tests/fixtures/debian-tracker/tracker.json")],
        ghsa_paths: vec![manifest.join("tests/fixtures/ghsa")],
    }
}

/// The bench database: `TRAWL_BENCH_DB` when set (to compare layouts of
/// one store), else the generated one, built on first use.
fn database() -> PathBuf {
    if let Some(path) = std::env::var_os("TRAWL_BENCH_DB") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("bench-data");
    let path = dir.join(format!("advisory-store-{ADVISORIES}-g{GENERATION}.db"));
    if AdvisoryStore::open(&path).is_ok() {
        return path;
    }
    std::fs::create_dir_all(&dir).expect("create target/bench-data");
    let started = Instant::now();
    let mut builder = StoreBuilder::new();
    builder
        .add_paths(&fixtures())
        .expect("fixture feeds readable");
    let mut rng = Rng(0x7472_6177_6c21);
    for n in 0..ADVISORIES {
        builder.add_osv(synthetic(n, &mut rng));
    }
    let info = builder.write(&path).expect("bench store written");
    eprintln!(
        "built {} ({} records, {} entries, {} MiB) in {:.1?}",
        path.display(),
        info.records,
        info.entries,
        std::fs::metadata(&path).map_or(0, |m| m.len() >> 20),
        started.elapsed()
    );
    path
}

/// A mixed 1000-package inventory, as a Debian-based image with language
/// packages and a few other distributions' layers would give: (ecosystem as
/// the scanner asks, name, version). Most packages have advisories; one in
/// ten is unknown to every feed.
fn inventory() -> Vec<(String, String, String)> {
    // (ecosystem as queried, the generator's ecosystem, share of 1000).
    const MIX: [(&str, &str, u64); 11] = [
        ("Debian:12.5", "Debian:12", 350),
        ("Alpine:v3.19", "Alpine:v3.19", 60),
        ("Rocky Linux:9", "Rocky Linux:9", 60),
        ("PyPI", "PyPI", 120),
        ("npm", "npm", 180),
        ("Go", "Go", 80),
        ("Maven", "Maven", 80),
        ("crates.io", "crates.io", 20),
        ("RubyGems", "RubyGems", 20),
        ("Packagist", "Packagist", 20),
        ("NuGet", "NuGet", 10),
    ];
    let mut rng = Rng(42);
    let mut out = Vec::with_capacity(INVENTORY);
    for (queried, generated, share) in MIX {
        let flavour = ECOSYSTEMS
            .iter()
            .find(|(e, _)| *e == generated)
            .expect("a generated ecosystem")
            .1;
        for i in 0..share {
            let known = i % 10 != 9;
            let name = name_in(
                flavour,
                if known {
                    rng.below(PACKAGES_PER_ECOSYSTEM)
                } else {
                    100_000 + i
                },
            );
            let v = version(
                flavour,
                rng.below(4),
                rng.below(20),
                rng.below(30),
                1 + rng.below(9),
            );
            out.push((queried.to_owned(), name, v));
        }
    }
    assert_eq!(out.len(), INVENTORY);
    out
}

fn match_all(store: &AdvisoryStore, inventory: &[(String, String, String)]) -> usize {
    inventory
        .iter()
        .map(|(ecosystem, name, version)| {
            let query = PackageQuery {
                ecosystem,
                name,
                version,
            };
            store.matches(&query).expect("valid query").len()
        })
        .sum()
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let path = database();
    let inventory = inventory();

    // Memory, measured before criterion allocates anything of its own.
    let before = rss_kib();
    let started = Instant::now();
    let store = AdvisoryStore::open(&path).expect("bench store opens");
    let opened = started.elapsed();
    let after_open = rss_kib();
    let started = Instant::now();
    let found = match_all(&store, &inventory);
    let matched = started.elapsed();
    let after_match = rss_kib();
    if let (Some(before), Some(after_open), Some(after_match)) = (before, after_open, after_match) {
        eprintln!(
            "store: {} records, file {} MiB; first open {opened:.2?}, first match of {INVENTORY} packages {matched:.2?} ({found} matches); RSS +{} KiB after open, +{} KiB after matching",
            store.info().records,
            std::fs::metadata(&path).map_or(0, |m| m.len() >> 20),
            after_open.saturating_sub(before),
            after_match.saturating_sub(before),
        );
    }
    drop(store);

    if let Some(runs) = std::env::var("TRAWL_BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
    {
        let store = AdvisoryStore::open(&path).expect("opens");
        let mut times: Vec<_> = (0..runs.max(1))
            .map(|_| {
                let started = Instant::now();
                black_box(match_all(&store, &inventory));
                started.elapsed()
            })
            .collect();
        times.sort();
        eprintln!(
            "match {INVENTORY} packages, {} runs: fastest {:.2?}, median {:.2?}, slowest {:.2?}",
            times.len(),
            times[0],
            times[times.len() / 2],
            times[times.len() - 1]
        );
        return;
    }

    let mut c = Criterion::default().configure_from_args();
    c.bench_function("store/open", |b| {
        b.iter(|| black_box(AdvisoryStore::open(&path).expect("opens")))
    });
    let store = AdvisoryStore::open(&path).expect("opens");
    c.bench_function("store/match_1000_packages", |b| {
        b.iter(|| black_box(match_all(&store, &inventory)))
    });
    c.final_summary();
}
