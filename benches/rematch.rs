//! The watch service's own CPU per rescanned image (issue 14), without a
//! store: `cargo bench --bench rematch`.
//!
//! What a rescan batch costs the service between reading the stored
//! inventories and writing the results: [`trawl_watch::rematch`] (parse each
//! stored inventory, match the batch, build the summary, finding rows and
//! results hash) on `TRAWL_BENCH_BATCH` (default 256) stored inventories,
//! the watch bench's synthetic variations of the Debian and distroless test
//! images (`benches/peers/rescan.rs`), against the rescan bench's base
//! database and its day's update. Then the fixed cost a process pays for each
//! new database file: opening it and verifying it whole.
//!
//! Prints, per database, the wall time and the process's CPU time (user +
//! system, all threads: `rematch` spreads a batch over the cores) per
//! image, best of `TRAWL_BENCH_ROUNDS` (default 5) batches, the same
//! through whole reports (`Scanner::rematch_all` and
//! `MatchResult::from_report`, the path before judgements), and the CPU
//! the store then spends on each changed image's rows in the service
//! (their value hashes, [`trawl_watch::store::FindingRow::value_hash`]), and
//! what PostgreSQL's write computes of every image first: its layout
//! (package keys, links, rows grouped, rebuilt and hashed; the
//! `trawl_watch::store::package_key` part of it timed apart), for the batch
//! as the store computes it (what images share computed once) and for each
//! image alone. For a profile,
//! run the built bench under callgrind with one round:
//!
//! ```sh
//! cargo bench --bench rematch --no-run   # prints the binary's path
//! TRAWL_BENCH_ROUNDS=1 TRAWL_BENCH_ONLY=update valgrind --tool=callgrind \
//!     --toggle-collect='trawl_watch::service::rematch*' target/release/deps/rematch-HASH
//! ```
//!
//! `TRAWL_BENCH_ONLY=base|update|verify` runs one part, and
//! `TRAWL_BENCH_REPORTS=0` leaves out the path through whole reports. Test images:
//! `target/test-images` or `$TRAWL_TEST_IMAGES`; the databases are built once
//! into `target/bench-data/` (shared with the `peers` and `watch` benches).

#[path = "../tests/common/mod.rs"]
#[allow(dead_code)]
mod common;
#[path = "peers/rescan.rs"]
#[allow(dead_code)]
mod rescan;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rescan::Edition;
use trawl::advisory::AdvisoryStore;
use trawl::{ImageSource, Scanned, Scanner};
use trawl_watch::store::{MatchResult, MatchTarget, StoredInventory, package_key};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The process's CPU time so far (user + system, every thread).
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn main() {
    let batch = env_usize("TRAWL_BENCH_BATCH", 256);
    let rounds = env_usize("TRAWL_BENCH_ROUNDS", 5).max(1);
    let only = std::env::var("TRAWL_BENCH_ONLY").ok();
    let wanted = |part: &str| only.as_deref().is_none_or(|o| o == part);
    // `TRAWL_BENCH_REPORTS=0`: not the old path (for a profile of the new).
    let reports = std::env::var("TRAWL_BENCH_REPORTS").map_or(true, |v| v != "0");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));

    let inventory = |name: &str, tag: &str| -> Scanned {
        let layout = common::images().join(name).join("oci");
        let source: ImageSource = format!("oci:{}:{tag}", layout.display())
            .parse()
            .expect("a valid source");
        Scanner::builder()
            .build()
            .expect("a scanner builds")
            .inventory_blocking(&source)
            .expect("the image scans")
    };
    let debian = inventory("debian", "bookworm");
    let distroless = inventory("distroless", "latest");
    let mut sources: BTreeMap<String, String> = BTreeMap::new();
    for scanned in [&debian, &distroless] {
        for p in &scanned.inventory.packages {
            sources
                .entry(p.source_name.clone())
                .or_insert_with(|| p.source_version.clone());
        }
    }
    // As the store holds them: compact JSON of `Scanned`, 80% Debian.
    let stored: Vec<StoredInventory> = (0..batch)
        .map(|n| {
            let base = if n % 5 == 4 { &distroless } else { &debian };
            let scanned = rescan::variant(base, n);
            StoredInventory {
                digest: scanned.image.manifest_digest.clone().unwrap_or_default(),
                inventory: serde_json::to_string(&scanned).expect("a Scanned serializes"),
                report_sha256: Some("0".repeat(64)),
            }
        })
        .collect();
    let bytes: usize = stored.iter().map(|s| s.inventory.len()).sum();
    eprintln!(
        "{batch} stored inventories, {} KB of JSON on average",
        bytes / batch / 1024
    );

    // The part of it that is parsing the stored JSON (one thread, as
    // `rematch` parses).
    let mut best_parse = Duration::MAX;
    for _ in 0..rounds {
        let cpu = cpu_time();
        for s in &stored {
            let scanned: Scanned = serde_json::from_str(&s.inventory).expect("it parses");
            std::hint::black_box(scanned);
        }
        best_parse = best_parse.min(cpu_time() - cpu);
    }
    eprintln!(
        "parsing (and dropping) the stored inventories, best of {rounds}: CPU {best_parse:.1?} \
         ({:.3} ms/image)",
        best_parse.as_secs_f64() * 1e3 / batch as f64
    );

    // The package keys alone (`trawl_watch::store::package_key`, one per
    // inventory package of every image: part of the layouts below).
    let parsed: Vec<Scanned> = stored
        .iter()
        .map(|s| serde_json::from_str(&s.inventory).expect("it parses"))
        .collect();
    let mut best_keys = Duration::MAX;
    for _ in 0..rounds {
        let cpu = cpu_time();
        let mut sum = 0i64;
        for s in &parsed {
            for p in &s.inventory.packages {
                sum = sum.wrapping_add(package_key(s.inventory.os.as_ref(), p));
            }
        }
        std::hint::black_box(sum);
        best_keys = best_keys.min(cpu_time() - cpu);
    }
    let packages: usize = parsed.iter().map(|s| s.inventory.packages.len()).sum();
    eprintln!(
        "package keys ({} packages per image), best of {rounds}: CPU {best_keys:.1?} \
         ({:.3} ms/image)",
        packages / batch,
        best_keys.as_secs_f64() * 1e3 / batch as f64
    );

    let bench_data = root.join("target/bench-data");
    for (name, edition) in [("base", Edition::Base), ("update", Edition::Update)] {
        if !wanted(name) {
            continue;
        }
        let path = rescan::database_edition(&bench_data, &sources, edition);
        let db = AdvisoryStore::open(&path).expect("the database opens");
        let target = MatchTarget {
            advisory_db: db.info().content_sha256.clone(),
            policy: "bench".into(),
        };
        let scanner = Scanner::builder()
            .database(db)
            .build()
            .expect("a scanner builds");
        let (mut best_wall, mut best_cpu, mut best_hashes, mut best_layout, mut best_alone) = (
            Duration::MAX,
            Duration::MAX,
            Duration::MAX,
            Duration::MAX,
            Duration::MAX,
        );
        let mut best_drop = Duration::MAX;
        let mut normalized = 0;
        let mut findings = 0;
        for _ in 0..rounds {
            let input = stored.clone();
            let (wall, cpu) = (Instant::now(), cpu_time());
            let rematched =
                trawl_watch::rematch(&scanner, input, &target).expect("the batch rematches");
            let (wall, cpu) = (wall.elapsed(), cpu_time() - cpu);
            assert_eq!(rematched.len(), batch);
            findings = rematched.iter().map(|r| r.result.findings.len()).sum();
            best_wall = best_wall.min(wall);
            best_cpu = best_cpu.min(cpu);
            // What the store's write computes of every row of a changed image.
            let hashes = cpu_time();
            let mut sum = 0i64;
            for r in &rematched {
                for row in &r.result.findings {
                    sum = sum.wrapping_add(row.value_hash());
                }
            }
            best_hashes = best_hashes.min(cpu_time() - hashes);
            std::hint::black_box(sum);
            // What PostgreSQL's write computes of every image first: its
            // layout (package keys, links, rows grouped and rebuilt, hashes),
            // what the batch's images share computed once, as the store does.
            let layouts = cpu_time();
            let digests = MatchResult::layout_digests(rematched.iter().map(|r| &r.result));
            normalized = std::hint::black_box(digests)
                .iter()
                .filter(|d| d.is_ok())
                .count();
            best_layout = best_layout.min(cpu_time() - layouts);
            // The same, each image's alone.
            let alone = cpu_time();
            for r in &rematched {
                std::hint::black_box(r.result.layout_digest()).ok();
            }
            best_alone = best_alone.min(cpu_time() - alone);
            // Freeing the batch's results (the service drops them after the write).
            let dropping = cpu_time();
            drop(rematched);
            best_drop = best_drop.min(cpu_time() - dropping);
        }
        let per = |d: Duration| d.as_secs_f64() * 1e3 / batch as f64;
        eprintln!(
            "rematch against {name:<6}: {findings} finding rows; best of {rounds}: \
             wall {best_wall:.1?} ({:.3} ms/image), CPU {best_cpu:.1?} ({:.3} ms/image)",
            per(best_wall),
            per(best_cpu)
        );
        // The same through whole reports, as rescans did before
        // judgements: parse, `Scanner::rematch_all`, `MatchResult::from_report`.
        let mut best_reports = Duration::MAX;
        for _ in 0..rounds * usize::from(reports) {
            let input = stored.clone();
            let cpu = cpu_time();
            let scanned: Vec<Scanned> = input
                .iter()
                .map(|s| serde_json::from_str(&s.inventory).expect("it parses"))
                .collect();
            let results: Vec<MatchResult> = scanner
                .rematch_all(scanned)
                .into_iter()
                .map(|r| MatchResult::from_report(r, &target, false).expect("it serializes"))
                .collect();
            std::hint::black_box(results);
            best_reports = best_reports.min(cpu_time() - cpu);
        }
        if reports {
            eprintln!(
                "  the same through whole reports (the path before judgements): CPU \
                 {best_reports:.1?} ({:.3} ms/image)",
                per(best_reports)
            );
        }
        eprintln!(
            "  the rows' value hashes (the store's write of a changed image): \
             CPU {best_hashes:.1?} ({:.3} ms/image)",
            per(best_hashes)
        );
        eprintln!(
            "  the layouts (PostgreSQL's write: package keys, links, rows rebuilt, hashes; \
             {normalized} of {batch} normalized): CPU {best_layout:.1?} ({:.3} ms/image); \
             each image's alone: CPU {best_alone:.1?} ({:.3} ms/image)",
            per(best_layout),
            per(best_alone)
        );
        eprintln!(
            "  freeing the results: CPU {best_drop:.1?} ({:.3} ms/image); the service's part \
             (rematch, layouts, freeing): {:.3} ms/image",
            per(best_drop),
            per(best_cpu + best_layout + best_drop)
        );
    }

    if wanted("verify") {
        let path = rescan::database_edition(&bench_data, &sources, Edition::Update);
        let (mut best_wall, mut best_cpu) = (Duration::MAX, Duration::MAX);
        for _ in 0..rounds {
            let (wall, cpu) = (Instant::now(), cpu_time());
            let db = AdvisoryStore::open(&path).expect("the database opens");
            db.verify().expect("the database verifies");
            best_wall = best_wall.min(wall.elapsed());
            best_cpu = best_cpu.min(cpu_time() - cpu);
        }
        eprintln!(
            "open and verify {} ({} MB), best of {rounds}: wall {best_wall:.1?}, CPU {best_cpu:.1?}",
            path.display(),
            std::fs::metadata(&path).map_or(0, |m| m.len() >> 20),
        );
    }
}
