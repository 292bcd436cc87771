//! The warm rescan: 1,000 stored inventories re-matched against a new
//! compiled advisory database, in-process, the way a registry-watching
//! service re-judges what it has already scanned when new advisories arrive.
//!
//! Inventories: variations of the real inventories of the Debian and
//! distroless test images (80% Debian, 20% distroless): each has its own
//! source, manifest, layer and diff_id digests (images in one of 16 groups
//! share their base layer), is "built" 0–6 Debian point releases earlier
//! (`+deb12uN` revisions lowered, so older images are more vulnerable), and
//! a third of them lack some packages. Stored as compact JSON of
//! [`trawl::Scanned`], one file each.
//!
//! Database: a compiled store ([`trawl::advisory::StoreBuilder`]) with 8 to
//! 187 records for every source package of the two images in `Debian:12`,
//! as real Debian data has them: most fixed in older releases, some by a
//! Debian 12 point update (so older builds are affected), a few unfixed or
//! fixed in a pending update, last-affected, introduced later, listed
//! versions; CVSS vectors and Debian urgencies. The same names again in
//! `Debian:11` and `Debian:13`, and 300,000 synthetic records over 18 other
//! distro releases and thousands of made-up packages. Built once into
//! `target/bench-data/` and reused while the images' packages are the same
//! (the file name carries a hash of them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use trawl::advisory::{Advisory, AdvisoryStore, StoreBuilder};
use trawl::{Scanned, Scanner, Verdict};

/// Stored inventories to rescan.
const INVENTORIES: usize = 1000;
/// Synthetic records besides those about the images' packages.
const SYNTHETIC: u64 = 300_000;
/// Bump when the generator changes, so a stored database is rebuilt.
const GENERATION: u32 = 4;

/// What [`prepare`] made.
pub struct Prepared {
    /// The inventory files.
    pub files: Vec<PathBuf>,
    /// Their total size.
    pub bytes: u64,
    /// Packages over all inventories.
    pub packages: usize,
    /// The compiled database.
    pub db: PathBuf,
    /// Records in it.
    pub records: u64,
    /// Its size.
    pub db_bytes: u64,
}

/// One rescan of every inventory.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Open the database to the last report.
    pub total: Duration,
    /// Opening the database and building the scanner.
    pub open: Duration,
    /// Reading and deserializing the files.
    pub load: Duration,
    /// `Scanner::rematch_all` over the whole batch.
    pub rematch: Duration,
    /// Findings over all reports.
    pub findings: usize,
    /// Reports with the verdict `unhealthy`.
    pub unhealthy: usize,
}

/// Writes the inventories (fresh each time) under `work` and makes sure the
/// database exists under `bench_data`.
pub fn prepare(work: &Path, bench_data: &Path, debian: &Scanned, distroless: &Scanned) -> Prepared {
    let dir = work.join("inventories");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the inventory directory");
    let mut files = Vec::with_capacity(INVENTORIES);
    let (mut bytes, mut packages) = (0, 0);
    for n in 0..INVENTORIES {
        let base = if n % 5 == 4 { distroless } else { debian };
        let scanned = variant(base, n);
        packages += scanned.inventory.packages.len();
        let json = serde_json::to_vec(&scanned).expect("a Scanned serializes");
        bytes += json.len() as u64;
        let path = dir.join(format!("{n:04}.json"));
        std::fs::write(&path, json).expect("write an inventory");
        files.push(path);
    }

    // The source packages the records are about, at the images' versions.
    let mut sources: BTreeMap<String, String> = BTreeMap::new();
    for scanned in [debian, distroless] {
        for p in &scanned.inventory.packages {
            sources
                .entry(p.source_name.clone())
                .or_insert_with(|| p.source_version.clone());
        }
    }
    let db = database(bench_data, &sources);
    let store = AdvisoryStore::open(&db).expect("the rescan database opens");
    Prepared {
        files,
        bytes,
        packages,
        records: store.info().records,
        db_bytes: std::fs::metadata(&db).map_or(0, |m| m.len()),
        db,
    }
}

/// Opens the database, then reads, deserializes and re-matches every file.
pub fn rescan(files: &[PathBuf], db: &Path) -> Timing {
    let started = Instant::now();
    let store = AdvisoryStore::open(db).expect("the rescan database opens");
    let scanner = Scanner::builder()
        .database(store)
        .build()
        .expect("a scanner without a cache directory builds");
    let open = started.elapsed();
    let t0 = Instant::now();
    let stored: Vec<Scanned> = files
        .iter()
        .map(|path| {
            let json = std::fs::read(path).expect("read a stored inventory");
            serde_json::from_slice(&json).expect("a stored inventory parses")
        })
        .collect();
    let t1 = Instant::now();
    let reports = scanner.rematch_all(stored);
    let (load, rematch) = (t1 - t0, t1.elapsed());
    assert_eq!(reports.len(), files.len());
    let findings = reports.iter().map(|r| r.findings.len()).sum();
    let unhealthy = reports
        .iter()
        .filter(|r| r.verdict == Verdict::Unhealthy)
        .count();
    Timing {
        total: started.elapsed(),
        open,
        load,
        rematch,
        findings,
        unhealthy,
    }
}

fn sha256(text: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
}

/// Inventory `n`: `base` under another name, digests and build date.
pub fn variant(base: &Scanned, n: usize) -> Scanned {
    let mut s = base.clone();
    let kind = if n % 5 == 4 { "distroless" } else { "debian" };
    s.source = format!(
        "registry:registry.example.com/team{:02}/{kind}-service{n:04}:build-{}",
        n % 37,
        100 + n % 13
    );
    let layer = |i: usize, old: &str| {
        if i == 0 {
            sha256(&format!("base {} {old}", n % 16))
        } else {
            sha256(&format!("image {n} layer {i} {old}"))
        }
    };
    let renamed: BTreeMap<String, String> = s
        .image
        .layers
        .iter()
        .enumerate()
        .map(|(i, old)| (old.clone(), layer(i, old)))
        .collect();
    s.image.layers = s.image.layers.iter().map(|l| renamed[l].clone()).collect();
    s.image.diff_ids = s
        .image
        .diff_ids
        .iter()
        .enumerate()
        .map(|(i, old)| layer(i, &format!("diff {old}")))
        .collect();
    s.image.manifest_digest = Some(sha256(&format!("manifest {n}")));

    let age = (n % 7) as u32;
    let mut index = 0;
    s.inventory.packages.retain(|_| {
        index += 1;
        n % 3 != 1 || !(index + n).is_multiple_of(9)
    });
    for p in &mut s.inventory.packages {
        if let Some(l) = p.layer.as_mut().and_then(|l| renamed.get(l.as_str())) {
            p.layer = Some(l.clone());
        }
        let version = older(&p.version, age);
        if version != p.version {
            p.purl = p.purl.replace(&encode(&p.version), &encode(&version));
            p.version = version;
        }
        p.source_version = older(&p.source_version, age);
    }
    s
}

/// `version` as it was `age` Debian point releases ago: a `+deb12uN`
/// revision lowered by `age`, dropped below 1.
fn older(version: &str, age: u32) -> String {
    const MARK: &str = "+deb12u";
    let Some(at) = version.find(MARK) else {
        return version.to_string();
    };
    let digits_at = at + MARK.len();
    let digits = version[digits_at..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    let Ok(update) = version[digits_at..digits_at + digits].parse::<u32>() else {
        return version.to_string();
    };
    let rest = &version[digits_at + digits..];
    match update.saturating_sub(age) {
        0 => format!("{}{rest}", &version[..at]),
        u => format!("{}{MARK}{u}{rest}", &version[..at]),
    }
}

/// A version as a package URL writes it.
fn encode(version: &str) -> String {
    version.replace('+', "%2B")
}

/// A version above `v` in Debian 12: the next security updates.
fn above(v: &str, step: u64) -> String {
    const MARK: &str = "+deb12u";
    match v.find(MARK) {
        Some(at) => {
            let digits = &v[at + MARK.len()..];
            let end = digits.bytes().take_while(u8::is_ascii_digit).count();
            let update: u64 = digits[..end].parse().unwrap_or(0);
            format!("{}{MARK}{}", &v[..at], update + 1 + step)
        }
        None => format!("{v}{MARK}{}", 1 + step),
    }
}

/// A version clearly older than `v`: the same upstream version with its
/// rightmost non-zero number lowered (`2.36-9+deb12u3` -> `2.35-1`), the
/// way most advisories about a package were fixed releases ago.
fn older_release(v: &str, step: u64) -> String {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) if e.bytes().all(|b| b.is_ascii_digit()) => (format!("{e}:"), r),
        _ => (String::new(), v),
    };
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((u, _)) => (u, "-1"),
        None => (rest, ""),
    };
    let bytes = upstream.as_bytes();
    let mut end = bytes.len();
    while end > 0 {
        if !bytes[end - 1].is_ascii_digit() {
            end -= 1;
            continue;
        }
        let mut start = end;
        while start > 0 && bytes[start - 1].is_ascii_digit() {
            start -= 1;
        }
        match upstream[start..end].parse::<u64>() {
            Ok(n) if n > 0 => {
                let lowered = n.saturating_sub(1 + step);
                return format!(
                    "{epoch}{}{lowered}{}{revision}",
                    &upstream[..start],
                    &upstream[end..]
                );
            }
            _ => end = start,
        }
    }
    format!("{v}~pre{}", 1 + step)
}

/// A Debian 12 point update at or before `v`'s (`+deb12uN`, N from 1 up to
/// `v`'s), when `v` has one: images built before it are affected.
fn point_update(v: &str, rng: &mut Rng) -> Option<String> {
    const MARK: &str = "+deb12u";
    let at = v.find(MARK)?;
    let digits = &v[at + MARK.len()..];
    let end = digits.bytes().take_while(u8::is_ascii_digit).count();
    let update: u64 = digits[..end].parse().ok().filter(|&u| u > 0)?;
    Some(format!("{}{MARK}{}", &v[..at], 1 + rng.below(update)))
}

/// SplitMix64: deterministic test data.
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
}

const CVSS: [&str; 3] = [
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N",
    "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:N/I:L/A:N",
];
const URGENCY: [&str; 5] = ["low", "medium", "high", "unimportant", "not yet assigned"];

fn record(id: String, year: u64, cve: u64, affected: serde_json::Value, rng: &mut Rng) -> Advisory {
    let mut value = serde_json::json!({
        "id": id,
        "modified": format!("{year}-0{}-1{}T08:00:00Z", 1 + rng.below(9), rng.below(10)),
        "published": format!("{year}-01-0{}T08:00:00Z", 1 + rng.below(9)),
        "aliases": [format!("CVE-{year}-{cve}")],
        "summary": format!("CVE-{year}-{cve}: input validation flaw"),
        "details": "A crafted input can make the parser read past the end of a buffer. \
                    A remote attacker may cause a denial of service.",
        "affected": [affected],
        "references": [{"type": "ADVISORY", "url": format!("https://security-tracker.debian.org/tracker/CVE-{year}-{cve}")}],
    });
    if rng.below(2) == 0 {
        value["severity"] =
            serde_json::json!([{"type": "CVSS_V3", "score": CVSS[rng.below(3) as usize]}]);
    }
    serde_json::from_value(value).expect("generated records are valid OSV")
}

/// The records about one real source package in one Debian release.
fn package_records(
    ecosystem: &str,
    name: &str,
    installed: &str,
    serial: &mut u64,
    rng: &mut Rng,
    out: &mut StoreBuilder,
) {
    // Most packages have a few dozen records, a few (glibc, openssl, perl...)
    // hundreds; nearly all are fixed in older releases than the image's.
    let count = 8 + rng.below(30) + if rng.below(8) == 0 { 150 } else { 0 };
    for j in 0..count {
        *serial += 1;
        let step = rng.below(3);
        let older = older_release(installed, step);
        // Hits at the image's own version: 1% fixed in a pending update, 3%
        // unfixed; 9% fixed by a Debian 12 point update (hits older builds).
        let events = match rng.below(100) {
            0..79 => serde_json::json!([{"introduced": "0"}, {"fixed": older}]),
            79..88 => {
                let fixed = point_update(installed, rng).unwrap_or(older);
                serde_json::json!([{"introduced": "0"}, {"fixed": fixed}])
            }
            88 => serde_json::json!([{"introduced": "0"}, {"fixed": above(installed, step)}]),
            89..92 => serde_json::json!([{"introduced": "0"}]),
            92..96 => serde_json::json!([{"introduced": "0"}, {"last_affected": older}]),
            96..98 => serde_json::json!([
                {"introduced": above(installed, step)},
                {"fixed": above(installed, step + 3)}
            ]),
            _ => {
                serde_json::json!([{"introduced": "0"}, {"fixed": older_release(installed, step + 1)}])
            }
        };
        let mut affected = serde_json::json!({
            "package": {"ecosystem": ecosystem, "name": name},
            "ranges": [{"type": "ECOSYSTEM", "events": events}],
            "ecosystem_specific": {"urgency": URGENCY[rng.below(5) as usize]},
        });
        if j % 13 == 12 {
            affected["versions"] = serde_json::json!([older_release(installed, 7)]);
        }
        let year = 2016 + rng.below(10);
        let id = match j % 3 {
            0 => format!("DSA-{}-1", 4000 + *serial),
            1 => format!("DLA-{}-1", 2000 + *serial),
            _ => format!("DEBIAN-CVE-{year}-{}", 20000 + *serial),
        };
        out.add_osv(record(id, year, 20000 + *serial, affected, rng));
    }
}

/// Other distro releases, with thousands of made-up packages each.
const NOISE: [(&str, &str); 18] = [
    ("Ubuntu:20.04:LTS", "dpkg"),
    ("Ubuntu:22.04:LTS", "dpkg"),
    ("Ubuntu:24.04:LTS", "dpkg"),
    ("Debian:10", "dpkg"),
    ("Alpine:v3.17", "apk"),
    ("Alpine:v3.18", "apk"),
    ("Alpine:v3.19", "apk"),
    ("Alpine:v3.20", "apk"),
    ("Wolfi", "apk"),
    ("Rocky Linux:8", "el8"),
    ("Rocky Linux:9", "el9"),
    ("AlmaLinux:8", "el8"),
    ("AlmaLinux:9", "el9"),
    ("Red Hat:enterprise_linux:9::baseos", "el9"),
    ("SUSE:Linux Enterprise Server 15 SP5", "150500"),
    ("openSUSE:Leap 15.5", "lp155"),
    ("Photon OS:5.0", "ph5"),
    ("Mageia:9", "mga9"),
];

fn synthetic_record(n: u64, rng: &mut Rng) -> Advisory {
    let (ecosystem, flavour) = NOISE[rng.below(NOISE.len() as u64) as usize];
    // Skewed popularity: the minimum of two draws.
    let package = format!("pkg{:05}", rng.below(5000).min(rng.below(5000)));
    let (major, minor, patch) = (rng.below(5), rng.below(30), rng.below(40));
    let version = |rev: u64| match flavour {
        "dpkg" => format!("{major}.{minor}.{patch}-{rev}ubuntu0.{}", rev % 4),
        "apk" => format!("{major}.{minor}.{patch}-r{rev}"),
        dist => format!("{major}.{minor}.{patch}-{rev}.{dist}"),
    };
    let events = match rng.below(8) {
        0 => serde_json::json!([{"introduced": "0"}]),
        1 => serde_json::json!([{"introduced": "0"}, {"last_affected": version(3)}]),
        _ => serde_json::json!([{"introduced": "0"}, {"fixed": version(1 + rng.below(9))}]),
    };
    let affected = serde_json::json!({
        "package": {"ecosystem": ecosystem, "name": package},
        "ranges": [{"type": "ECOSYSTEM", "events": events}],
    });
    let year = 2014 + rng.below(12);
    record(
        format!("SYN-{year}-{n:07}"),
        year,
        100_000 + n,
        affected,
        rng,
    )
}

/// Which compiled database: the one the rescan is measured against, or a
/// change of it (the `watch` bench).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code, reason = "the changes are the watch bench's")]
pub enum Edition {
    /// The records described above.
    Base,
    /// A day's worth of new records on top of [`Edition::Base`]:
    /// [`DAY_ABOUT_IMAGES`] about the images' own source packages in
    /// `Debian:12` (unfixed at the installed versions, so the images holding
    /// them change), the rest of [`DAY_RECORDS`] synthetic ones.
    Update,
    /// Every record drawn anew (another seed, other ids): every image's
    /// findings change.
    Replacement,
}

/// Records a day adds in [`Edition::Update`].
pub const DAY_RECORDS: u64 = 300;
/// Of which about the images' source packages.
pub const DAY_ABOUT_IMAGES: u64 = 20;

/// The compiled database for `sources`, built once.
fn database(bench_data: &Path, sources: &BTreeMap<String, String>) -> PathBuf {
    database_edition(bench_data, sources, Edition::Base)
}

/// The compiled database `edition` for `sources`, built once.
pub fn database_edition(
    bench_data: &Path,
    sources: &BTreeMap<String, String>,
    edition: Edition,
) -> PathBuf {
    let mut hash = Sha256::new();
    for (name, version) in sources {
        hash.update(format!("{name} {version}\n"));
    }
    let key = &hex::encode(hash.finalize())[..12];
    let suffix = match edition {
        Edition::Base => "",
        Edition::Update => "-update",
        Edition::Replacement => "-replacement",
    };
    let path = bench_data.join(format!("peers-rescan-{key}-g{GENERATION}{suffix}.db"));
    if AdvisoryStore::open(&path).is_ok() {
        return path;
    }
    std::fs::create_dir_all(bench_data).expect("create target/bench-data");
    eprintln!("building the rescan database {} ...", path.display());
    let started = Instant::now();
    let info = build_database(&path, sources, edition, SYNTHETIC, |_| {});
    eprintln!(
        "built it in {:.1?}: {} records, {} affected entries",
        started.elapsed(),
        info.records,
        info.entries
    );
    path
}

/// Writes the database `edition` for `sources` to `path` with `synthetic`
/// noise records (instead of [`SYNTHETIC`]), and whatever `more` adds
/// (tests add records about language packages).
pub fn build_database(
    path: &Path,
    sources: &BTreeMap<String, String>,
    edition: Edition,
    synthetic: u64,
    more: impl FnOnce(&mut StoreBuilder),
) -> trawl::advisory::StoreInfo {
    let mut builder = StoreBuilder::new();
    let (mut rng, mut serial) = match edition {
        Edition::Replacement => (Rng(0x5245_504c_4143), 500_000),
        _ => (Rng(0x5045_4552_5321), 0),
    };
    for ecosystem in ["Debian:12", "Debian:11", "Debian:13"] {
        for (name, version) in sources {
            let installed = match ecosystem {
                "Debian:12" => version.clone(),
                other => version.replace("deb12", &format!("deb{}", &other[7..])),
            };
            package_records(
                ecosystem,
                name,
                &installed,
                &mut serial,
                &mut rng,
                &mut builder,
            );
        }
    }
    for n in 0..synthetic {
        builder.add_osv(synthetic_record(n, &mut rng));
    }
    if edition == Edition::Update {
        // Two records each about every fifth source package, from the
        // first; then synthetic ones.
        let about: Vec<(&String, &String)> = sources.iter().step_by(5).collect();
        for j in 0..DAY_ABOUT_IMAGES {
            let (name, installed) = about[j as usize / 2 % about.len()];
            serial += 1;
            let events = if j % 2 == 0 {
                serde_json::json!([{"introduced": "0"}, {"fixed": above(installed, 0)}])
            } else {
                serde_json::json!([{"introduced": "0"}])
            };
            let affected = serde_json::json!({
                "package": {"ecosystem": "Debian:12", "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
                "ecosystem_specific": {"urgency": "high"},
            });
            builder.add_osv(record(
                format!("DEBIAN-CVE-2026-{}", 90000 + serial),
                2026,
                90000 + serial,
                affected,
                &mut rng,
            ));
        }
        for n in synthetic..synthetic + DAY_RECORDS - DAY_ABOUT_IMAGES {
            builder.add_osv(synthetic_record(n, &mut rng));
        }
    }
    more(&mut builder);
    let tmp = path.with_extension("db.tmp");
    let info = builder.write(&tmp).expect("the rescan database is written");
    std::fs::rename(&tmp, path).expect("move the database into place");
    info
}
