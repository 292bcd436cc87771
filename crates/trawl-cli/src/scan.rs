//! `trawl scan`: scan an image for known vulnerabilities.
//!
//! ```text
//! trawl scan [FEEDS] [POLICY] [--format table|json|sarif|cyclonedx|spdx] [--output FILE] [--inventory-only] [--cache-dir DIR [--cache-max-size SIZE]] SOURCE
//! ```
//!
//! SOURCE is `registry:HOST/REPO[:TAG|@sha256:…]` (or a bare reference such as
//! `debian:12`), `oci-dir:PATH[:TAG]`, `oci-archive:FILE[:TAG]`,
//! `docker-archive:FILE[:TAG]` or `dir:ROOTFS`. Registry options:
//! `--platform`, `--ca-file`, `--insecure-registry`, `--username` with
//! `--password-stdin` (otherwise credentials come from Docker's config file),
//! `--transfer-deadline SECS` (default 1800: each manifest or blob transfer must
//! finish in 30 minutes) and `--min-throughput SIZE` (default 64K: a transfer
//! receiving less than that in any 30-second window after the first is aborted;
//! 0 turns the check off).
//! Feeds: `--osv DIR`, `--ghsa DIR|ZIP` (the GitHub Advisory Database: a
//! checkout or its archive zip), `--secdb DIR|FILE`, `--debian-tracker FILE`
//! (each repeatable), or a compiled database: `--db FILE`. Without either, the
//! default database: `$TRAWL_DB`, else `$XDG_CACHE_HOME/trawl/trawl.db`, else
//! `~/.cache/trawl/trawl.db` (`trawl db update` fills it); with none there,
//! one line on stderr says how to get one and the verdict is `unsupported`.
//! A compiled database's age is in the report, with a warning when it is
//! older than `--max-db-age` (default 5 days; `0` disables). Policy: `--severity-threshold`, `--ignore-unfixed`,
//! `--ignore-file FILE`, `--vex FILE`. `--output FILE` writes the report to
//! FILE (atomically) instead of stdout.
//!
//! Exit status: 0 when the scan ran and the image is healthy (or unsupported),
//! 1 when it is unhealthy (for CI gates), 2 when the scan could not run, 3 when
//! the scan is partial (a layer or package database could not be read and
//! nothing was found in the rest: not healthy, but nothing to fix either).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use trawl::advisory::WarningSummary;
use trawl::classify::escape_terminal;
use trawl::registry::Credentials;
use trawl::{AdvisoryDb, ImageSource, RegistryOptions, Scanner, Verdict};

use crate::cli::Global;
use crate::{defaults, policy, size};

/// `--format`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// Aligned columns for a person.
    Table,
    /// The JSON report (schema_version 1).
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
    /// A CycloneDX 1.6 JSON BOM with the vulnerabilities.
    Cyclonedx,
    /// An SPDX 2.3 JSON SBOM (packages only); `created` is now, or
    /// `SOURCE_DATE_EPOCH` when set.
    Spdx,
}

/// `trawl scan`'s options.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// A directory of OSV JSON records (e.g. osv.dev's Debian export, unzipped). Repeatable.
    #[arg(long = "osv", value_name = "DIR")]
    osv: Vec<PathBuf>,
    /// Alpine secdb: a directory of (or one) secdb YAML/JSON files. Repeatable.
    #[arg(long = "secdb", value_name = "DIR|FILE")]
    secdb: Vec<PathBuf>,
    /// A compiled advisory database (`trawl db build ...` or `trawl db pull`),
    /// instead of feeds. Default, when no feed is given: $TRAWL_DB, else
    /// $XDG_CACHE_HOME/trawl/trawl.db, else ~/.cache/trawl/trawl.db (`trawl db update`).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["osv", "ghsa", "secdb", "debian_tracker"])]
    db: Option<PathBuf>,
    /// Warn (in the report and on stderr) when the compiled database is older
    /// than this: a number and s, m, h, d or w (`5d`, `36h`); 0 never warns.
    #[arg(long, value_name = "AGE", default_value = "5d", value_parser = defaults::parse_age)]
    max_db_age: Duration,
    /// The Debian security tracker's JSON export. Repeatable.
    #[arg(long = "debian-tracker", value_name = "FILE")]
    debian_tracker: Vec<PathBuf>,
    /// The GitHub Advisory Database (OSV form): a checkout of
    /// github/advisory-database or GitHub's zip of it; reviewed advisories only.
    /// Repeatable.
    #[arg(long = "ghsa", value_name = "DIR|ZIP")]
    ghsa: Vec<PathBuf>,
    #[command(flatten)]
    policy: policy::PolicyArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Write the report to this file (replaced atomically) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// List the OS and packages only; match nothing.
    #[arg(long)]
    inventory_only: bool,
    /// Keep per-layer results here, so a rescan reads no unchanged layer.
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// After the scan, prune the cache directory to this size (least recently used layers first).
    #[arg(long, value_name = "SIZE", requires = "cache_dir", value_parser = size::parse_size)]
    cache_max_size: Option<u64>,
    /// Platform to pick from a multi-platform image (default: linux and the host's architecture).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// An extra CA certificate (PEM) to trust for registries.
    #[arg(long, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// Allow plain HTTP for this registry (loopback is always allowed). Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    insecure_registries: Vec<String>,
    /// Registry user name; the password is read from standard input (--password-stdin).
    #[arg(long, requires = "password_stdin")]
    username: Option<String>,
    /// Read the registry password from standard input.
    #[arg(long, requires = "username")]
    password_stdin: bool,
    /// Abort a registry transfer (a manifest, or a blob with its resumptions) not finished
    /// after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = trawl::registry::DEFAULT_TRANSFER_DEADLINE.as_secs())]
    transfer_deadline: u64,
    /// Abort a registry transfer receiving less than this many bytes in any 30-second window
    /// after the first (K, M, G suffixes; 0 turns the check off).
    #[arg(long, value_name = "BYTES_PER_30S", default_value = "64K", value_parser = size::parse_size)]
    min_throughput: u64,
    /// The image: registry:HOST/REPO[:TAG|@DIGEST] (or a bare reference such as debian:12),
    /// oci-dir:PATH[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:TAG], dir:ROOTFS.
    source: String,
}

/// A spinner with `message`, drawn only when `show`.
fn spinner(message: String, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Runs the scan; exit status 1 when the image is unhealthy (for CI gates),
/// 3 when it is partial. An error is exit status 2 (`cli::fail`).
pub fn run(args: &ScanArgs, global: &Global) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let progress = global.progress();
    let note = |text: &str| {
        if !global.quiet {
            eprintln!("note: {}", escape_terminal(text));
        }
    };
    let source: ImageSource = args.source.parse()?;
    // Refuse an output file that cannot be written before a long pull.
    if let Some(dir) = args.output.as_deref().map(crate::cli::parent_dir)
        && !dir.is_dir()
    {
        return Err(format!("--output: {} is not a directory", dir.display()).into());
    }
    if matches!(source, ImageSource::Registry { .. }) && std::path::Path::new(&args.source).exists()
    {
        return Err(format!(
            "{:?} is a local path; name its kind, e.g. oci-dir:{0}, oci-archive:{0}, docker-archive:{0} or dir:{0}",
            args.source
        )
        .into());
    }
    let mut registry = RegistryOptions::default()
        .transfer_deadline(Duration::from_secs(args.transfer_deadline))
        .min_throughput(
            args.min_throughput,
            trawl::registry::DEFAULT_THROUGHPUT_WINDOW,
        );
    if let Some(p) = &args.platform {
        registry = registry.platform(p.parse()?);
    }
    if let Some(ca) = &args.ca_file {
        registry = registry.ca_file(ca);
    }
    for host in &args.insecure_registries {
        registry = registry.insecure_registry(host.clone());
    }
    if let (Some(user), true, ImageSource::Registry { reference }) =
        (&args.username, args.password_stdin, &source)
    {
        let mut password = String::new();
        std::io::stdin().read_line(&mut password)?;
        let password = password.trim_end_matches(['\r', '\n']);
        registry = registry.credentials(
            reference.registry(),
            Credentials::new(user.clone(), password.to_string()),
        );
    }
    let mut builder = Scanner::builder().registry_options(registry);
    let feeds_given = !(args.osv.is_empty()
        && args.ghsa.is_empty()
        && args.secdb.is_empty()
        && args.debian_tracker.is_empty());
    // The compiled database to use, if any: --db, else (no feeds) the default.
    let store_path = match (&args.db, feeds_given || args.inventory_only) {
        (Some(path), _) => Some(path.clone()),
        (None, false) => match defaults::database() {
            Some(path) if path.exists() => Some(path),
            path => {
                note(&defaults::missing_message(path.as_deref()));
                None
            }
        },
        (None, true) => None,
    };
    let mut database = None;
    if let (false, Some(path)) = (args.inventory_only, store_path) {
        let store = trawl::advisory::AdvisoryStore::open(&path)?;
        database = Some(DatabaseInfo::new(path, store.info().built_at));
        builder = builder.database(store);
    } else if !args.inventory_only {
        let bar = spinner(
            format!(
                "loading advisories from {} location(s)",
                args.osv.len() + args.ghsa.len() + args.secdb.len() + args.debian_tracker.len()
            ),
            progress,
        );
        let feeds = trawl::advisory::FeedPaths {
            osv_dirs: args.osv.clone(),
            secdb_paths: args.secdb.clone(),
            debian_tracker_files: args.debian_tracker.clone(),
            ghsa_paths: args.ghsa.clone(),
        };
        let (db, warnings) = AdvisoryDb::from_feed_paths(&feeds)?;
        bar.finish_and_clear();
        // Expected skips (GIT ranges, ecosystems without a version scheme)
        // are counted by `trawl db build`; here only real problems are noted.
        let problems: Vec<_> = warnings
            .iter()
            .filter(|w| !WarningSummary::is_expected_skip(&w.reason))
            .collect();
        if let Some(first) = problems.first() {
            note(&format!(
                "{} advisory record(s) or file(s) skipped; first: {first}",
                problems.len(),
            ));
        }
        builder = builder.database(db);
    }
    if let Some(dir) = &args.cache_dir {
        builder = builder.cache_dir(dir);
    }
    let policy = args.policy.load()?;
    for expired in policy.expired_rules() {
        note(&expired);
    }
    builder = builder.policy(policy);
    // One bar per layer blob being read (pulled, for a registry), under a
    // spinner for the whole scan; drawn only when stderr is a terminal.
    let bars = if progress {
        MultiProgress::new()
    } else {
        MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
    };
    let overall = bars.add(spinner(format!("scanning {source}"), progress));
    let layer_bars: Arc<Mutex<HashMap<usize, ProgressBar>>> = Arc::default();
    if progress {
        let (bars, layer_bars) = (bars.clone(), layer_bars.clone());
        builder = builder.on_progress(move |p| {
            let Ok(mut layer_bars) = layer_bars.lock() else {
                return;
            };
            let bar = layer_bars.entry(p.index).or_insert_with(|| {
                let bar = bars.add(ProgressBar::new(p.size.unwrap_or(0)));
                bar.set_style(
                    ProgressStyle::with_template(
                        "  {prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                let hex = p.digest.split_once(':').map_or(&*p.digest, |(_, h)| h);
                bar.set_prefix(format!(
                    "layer {} {}",
                    p.index + 1,
                    &hex[..hex.len().min(12)]
                ));
                bar
            });
            bar.set_position(p.read);
            if p.done {
                bar.finish();
            }
        });
    }
    let scanner = builder.build()?;

    let started = Instant::now();
    let scanned = scanner.inventory_blocking(&source);
    overall.finish_and_clear();
    if let Ok(layer_bars) = layer_bars.lock() {
        layer_bars.values().for_each(ProgressBar::finish_and_clear);
    }
    let _ = bars.clear();
    let scanned = scanned?;
    tracing::info!(elapsed = ?started.elapsed(), packages = scanned.inventory.packages.len(), "inventory done");
    let mut report = scanner.rematch(scanned);
    if let Some(stale) = database
        .as_ref()
        .and_then(|db| db.staleness(args.max_db_age))
    {
        note(&stale);
        report.warnings.push(stale);
    }
    if let Some(max) = args.cache_max_size {
        let pruned = scanner.layer_cache().prune(max)?;
        tracing::info!(
            removed = pruned.removed_entries,
            kept_bytes = pruned.kept_bytes,
            "layer cache pruned"
        );
    }

    match &args.output {
        Some(path) => crate::cli::write_atomically(path, |out| {
            write_report(out, args, &report, database.as_ref(), global.color(false))
        })?,
        None => {
            let stdout = std::io::stdout();
            let color = global.color(std::io::IsTerminal::is_terminal(&stdout));
            let mut out = stdout.lock();
            write_report(&mut out, args, &report, database.as_ref(), color)?;
            out.flush()?;
        }
    }
    if !args.inventory_only {
        match report.verdict {
            Verdict::Healthy | Verdict::Unsupported => {}
            Verdict::Partial => {
                note(&report.verdict_reason);
                return Ok(ExitCode::from(3));
            }
            // Unhealthy, and any verdict added later: a gate never passes
            // on a verdict it does not know.
            _ => return Ok(ExitCode::from(1)),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The compiled advisory database a scan matched against: where it is and
/// when it was built. The JSON report carries it as `advisory_database`
/// ([`trawl::classify::AdvisoryDatabaseInfo`], which the report's schema
/// describes); the table ends with a line about it.
#[derive(Debug)]
struct DatabaseInfo {
    /// The file.
    path: PathBuf,
    /// When it was built (RFC 3339, UTC); `None` for a file that does not say.
    built_at: Option<String>,
    /// Its age at the time of the scan, in seconds.
    age_seconds: Option<u64>,
}

impl DatabaseInfo {
    fn new(path: PathBuf, built_at: Option<u64>) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self {
            path,
            built_at: built_at.and_then(|t| {
                chrono::DateTime::from_timestamp(i64::try_from(t).ok()?, 0)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            }),
            age_seconds: built_at.map(|t| now.saturating_sub(t)),
        }
    }

    /// Why the database is too old to trust under `max` (zero: never).
    fn staleness(&self, max: Duration) -> Option<String> {
        if max.is_zero() {
            return None;
        }
        let path = self.path.display();
        match (self.age_seconds, &self.built_at) {
            (Some(age), Some(built)) if age > max.as_secs() => Some(format!(
                "advisory database {path} is {} old (built {built}; --max-db-age {}): run `trawl db update`",
                defaults::describe_age(Duration::from_secs(age)),
                defaults::describe_age(max),
            )),
            (None, _) | (_, None) => Some(format!(
                "advisory database {path} does not record when it was built (an older trawl wrote it): rebuild it with `trawl db update` or `trawl db build`"
            )),
            _ => None,
        }
    }

    /// One line for the end of the table.
    fn describe(&self) -> String {
        match (&self.built_at, self.age_seconds) {
            (Some(built), Some(age)) => format!(
                "Advisory database: {} (built {built}, {} ago)",
                self.path.display(),
                defaults::describe_age(Duration::from_secs(age))
            ),
            _ => format!(
                "Advisory database: {} (build time unknown)",
                self.path.display()
            ),
        }
    }
}

/// The JSON report with the database it was matched against.
#[derive(serde::Serialize)]
struct JsonReport<'a> {
    #[serde(flatten)]
    report: &'a trawl::Report,
    #[serde(skip_serializing_if = "Option::is_none")]
    advisory_database: Option<trawl::classify::AdvisoryDatabaseInfo>,
}

/// Writes the report in the chosen format; `color` for the table.
fn write_report(
    out: &mut dyn Write,
    args: &ScanArgs,
    report: &trawl::Report,
    database: Option<&DatabaseInfo>,
    color: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut out = out;
    match (args.format, args.inventory_only) {
        (Format::Json, false) => serde_json::to_writer_pretty(
            &mut out,
            &JsonReport {
                report,
                advisory_database: database.map(|d| trawl::classify::AdvisoryDatabaseInfo {
                    path: d.path.clone(),
                    built_at: d.built_at.clone(),
                    age_seconds: d.age_seconds,
                }),
            },
        )?,
        (Format::Json, true) => serde_json::to_writer_pretty(
            &mut out,
            &trawl::classify::InventoryDocument::from(report),
        )?,
        (Format::Table, false) => {
            trawl::classify::write_table_with(&mut out, report, color)?;
            if let Some(db) = database {
                writeln!(out, "{}", escape_terminal(&db.describe()))?;
            }
        }
        (Format::Table, true) => trawl::classify::write_inventory_table(out, report)?,
        (Format::Sarif, _) => trawl::classify::formats::write_sarif(out, report)?,
        (Format::Cyclonedx, _) => trawl::classify::formats::write_cyclonedx(out, report)?,
        (Format::Spdx, _) => {
            // SOURCE_DATE_EPOCH (reproducible-builds.org) pins the time for reproducible SBOMs.
            let created = std::env::var("SOURCE_DATE_EPOCH")
                .ok()
                .and_then(|s| s.parse().ok())
                .map(|secs| std::time::UNIX_EPOCH + Duration::from_secs(secs))
                .unwrap_or_else(std::time::SystemTime::now);
            trawl::classify::formats::write_spdx(out, report, created)?
        }
    }
    if matches!(args.format, Format::Json) {
        writeln!(out)?;
    }
    Ok(())
}
