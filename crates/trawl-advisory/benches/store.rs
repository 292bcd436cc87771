//! The compiled store at scale: 500,000+ advisories (the real fixture feeds plus
//! deterministic synthetic records over 22 distro releases, three version
//! schemes, skewed package popularity, fixed / last-affected / open ranges and
//! version lists). Measures opening, matching a 1000-package inventory, and (once,
//! printed before criterion runs) the resident memory an open store adds.
//!
//! Goals: open < 50 ms, 1000 packages < 5 ms, RSS after open < 32 MiB.
//!
//! The database is built once into `target/bench-data/` and reused; delete it
//! to rebuild (or when the generator changes, bump `GENERATION`).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::Criterion;
use trawl_advisory::{Advisory, AdvisoryStore, FeedPaths, PackageQuery, StoreBuilder};

const ADVISORIES: u64 = 500_000;
const GENERATION: u32 = 2;
const INVENTORY: usize = 1000;

/// (ecosystem, version flavour).
const ECOSYSTEMS: [(&str, Flavour); 22] = [
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
];
const PACKAGES_PER_ECOSYSTEM: u64 = 6000;

#[derive(Clone, Copy)]
enum Flavour {
    Dpkg(&'static str),
    Apk,
    Rpm(&'static str),
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
    let package = package_name(rng.skewed(PACKAGES_PER_ECOSYSTEM));
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
    if rng.below(20) == 0 {
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

fn database() -> PathBuf {
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

/// A 1000-package inventory: Debian 12 packages, most with advisories, at
/// versions spread over the advisories' ranges.
fn inventory() -> Vec<(String, String)> {
    let mut rng = Rng(42);
    (0..INVENTORY as u64)
        .map(|i| {
            let name = package_name(if i < 900 {
                rng.below(PACKAGES_PER_ECOSYSTEM)
            } else {
                100_000 + i
            });
            let v = version(
                Flavour::Dpkg("+deb12u"),
                rng.below(4),
                rng.below(20),
                rng.below(30),
                1 + rng.below(9),
            );
            (name, v)
        })
        .collect()
}

fn match_all(store: &AdvisoryStore, inventory: &[(String, String)]) -> usize {
    inventory
        .iter()
        .map(|(name, version)| {
            let query = PackageQuery {
                ecosystem: "Debian:12.5",
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
