//! `trawl db`: the compiled advisory database from the command line: build it
//! from feeds, inspect it, download the feeds and rebuild it, and ship it
//! through a registry as an OCI artifact.
//!
//! ```sh
//! trawl db build --osv DIR... --ghsa DIR|ZIP... --secdb DIR|FILE... --debian-tracker FILE... -o trawl.db
//! trawl db info trawl.db
//! trawl db update [--dir feeds] [-o feeds/trawl.db] [--ecosystem Debian]... [--alpine-release v3.18]...
//!           [--osv-base URL] [--secdb-base URL] [--tracker-url URL | --no-tracker]
//! trawl db push trawl.db REGISTRY/REPO:TAG [--insecure-registry HOST] [--ca-file PEM] [--username U --password-stdin]
//! trawl db pull REGISTRY/REPO:TAG -o trawl.db [same registry options]
//! ```
//!
//! `trawl db update` with no arguments fills the default database (the one
//! `trawl scan` uses: `$TRAWL_DB`, else `$XDG_CACHE_HOME/trawl/trawl.db`, else
//! `~/.cache/trawl/trawl.db`), mirroring the feeds in `feeds/` beside it:
//! osv.dev's export of every ecosystem Trawl matches ([`DEFAULT_ECOSYSTEMS`])
//! and the Debian security tracker.
//!
//! An error prints `db: …` with its causes and exits with status 1.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use trawl::advisory::fetch::{FeedMirror, FeedSources, FetchOutcome, OSV_BASE, SECDB_BASE};
use trawl::advisory::{
    AdvisoryStore, Ecosystem, FeedPaths, FeedWarning, StoreInfo, WarningSummary,
};
use trawl::classify::escape_terminal;
use trawl::registry::{Credentials, RegistryClient, RegistryOptions, RegistryReference};

use crate::cli::Global;

/// The OCI artifact type of a Trawl advisory database.
const ARTIFACT_TYPE: &str = "application/vnd.trawl.advisory-db.v1";
/// The media type of its one blob, the SQLite file.
const BLOB_MEDIA_TYPE: &str = "application/vnd.trawl.advisory-db.v1.sqlite";

/// The osv.dev ecosystems `trawl db update` downloads when none is named:
/// every distribution whose images Trawl maps to an OSV ecosystem, and every
/// language ecosystem it inventories. (Alpine comes from osv.dev's export,
/// which carries Alpine's secdb for every release; Azure Linux is left out
/// until osv.dev publishes its export — name it with `--ecosystem`.)
pub const DEFAULT_ECOSYSTEMS: [&str; 18] = [
    "Debian",
    "Ubuntu",
    "Alpine",
    "Wolfi",
    "Chainguard",
    "Rocky Linux",
    "AlmaLinux",
    "Photon OS",
    "SUSE",
    "openSUSE",
    "Go",
    "crates.io",
    "PyPI",
    "npm",
    "Maven",
    "RubyGems",
    "Packagist",
    "NuGet",
];

/// `trawl db`'s subcommands.
#[derive(Debug, Args)]
pub struct DbArgs {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build a database from feeds on disk.
    Build {
        /// A directory of OSV records (e.g. osv.dev's Debian/all.zip unpacked).
        #[arg(long)]
        osv: Vec<PathBuf>,
        /// An Alpine secdb file or directory (JSON or YAML).
        #[arg(long)]
        secdb: Vec<PathBuf>,
        /// A Debian security tracker JSON file.
        #[arg(long = "debian-tracker")]
        debian_tracker: Vec<PathBuf>,
        /// The GitHub Advisory Database in its OSV form: a checkout of
        /// github/advisory-database (its root, `advisories/` or
        /// `advisories/github-reviewed/`) or GitHub's archive zip of it. Reviewed
        /// advisories only.
        #[arg(long, value_name = "DIR|ZIP")]
        ghsa: Vec<PathBuf>,
        /// The database to write (replaced atomically).
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Show what a database holds, after checking all of it.
    Info {
        /// The database.
        file: PathBuf,
    },
    /// Download the feeds (conditionally) and rebuild the database if any changed.
    ///
    /// With no arguments: every ecosystem Trawl supports, into the default
    /// database ($TRAWL_DB, else $XDG_CACHE_HOME/trawl/trawl.db, else
    /// ~/.cache/trawl/trawl.db) that `trawl scan` uses, the feeds kept in
    /// `feeds/` beside it.
    Update {
        /// Where the feeds are kept (default: `feeds/` beside the database).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The database (default DIR/trawl.db with --dir, else the default database).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// An osv.dev ecosystem to download (`Debian`, `Alpine`, `Ubuntu`...). Default,
        /// when neither this nor --alpine-release is given: every ecosystem Trawl
        /// supports (Debian, Ubuntu, Alpine, Wolfi, Chainguard, Rocky Linux,
        /// AlmaLinux, Photon OS, SUSE, openSUSE, Go, crates.io, PyPI, npm, Maven,
        /// RubyGems, Packagist, NuGet).
        #[arg(long)]
        ecosystem: Vec<String>,
        /// An Alpine release whose secdb to download (`v3.18`, `edge`).
        #[arg(long = "alpine-release")]
        alpine_release: Vec<String>,
        /// Base URL of the OSV exports.
        #[arg(long = "osv-base", default_value = OSV_BASE)]
        osv_base: String,
        /// Base URL of Alpine's secdb.
        #[arg(long = "secdb-base", default_value = SECDB_BASE)]
        secdb_base: String,
        /// URL of the Debian security tracker JSON.
        #[arg(long = "tracker-url", default_value = trawl::advisory::fetch::DEBIAN_TRACKER_URL)]
        tracker_url: String,
        /// Do not download the Debian tracker.
        #[arg(long = "no-tracker")]
        no_tracker: bool,
    },
    /// Push a database to a registry as an OCI artifact.
    Push {
        /// The database.
        file: PathBuf,
        /// Where to push it: REGISTRY/REPO:TAG.
        reference: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Pull a database pushed with `trawl db push`.
    Pull {
        /// Where it is: REGISTRY/REPO:TAG or @sha256:...
        reference: String,
        /// The file to write (replaced atomically, once the download verifies).
        #[arg(short, long)]
        output: PathBuf,
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

/// How to reach the registry.
#[derive(Debug, Args)]
struct RegistryArgs {
    /// Allow plain HTTP to this registry (HOST[:PORT]).
    #[arg(long = "insecure-registry")]
    insecure_registry: Vec<String>,
    /// Also trust the CA certificates in this PEM file.
    #[arg(long = "ca-file")]
    ca_file: Vec<PathBuf>,
    /// Registry user name (the password is read from stdin).
    #[arg(long, requires = "password_stdin")]
    username: Option<String>,
    /// Read the registry password from stdin.
    #[arg(long = "password-stdin", requires = "username")]
    password_stdin: bool,
}

type Error = Box<dyn std::error::Error>;

/// Runs a `trawl db` subcommand: exit status 0, or 1 after printing the error.
pub fn main(args: DbArgs, global: &Global) -> ExitCode {
    match run(args, global) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("db: {}", escape_terminal(&e.to_string()));
            let mut source = e.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {}", escape_terminal(&cause.to_string()));
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: DbArgs, global: &Global) -> Result<(), Error> {
    let show_warnings = |warnings: &[FeedWarning]| {
        if !global.quiet {
            print_warnings(warnings);
        }
    };
    match cli.command {
        Command::Build {
            osv,
            secdb,
            debian_tracker,
            ghsa,
            output,
        } => {
            let feeds = FeedPaths {
                osv_dirs: osv,
                secdb_paths: secdb,
                debian_tracker_files: debian_tracker,
                ghsa_paths: ghsa,
            };
            let (info, warnings) = AdvisoryStore::build(&feeds, &output)?;
            show_warnings(&warnings);
            println!("wrote {}", output.display());
            print_info(&info);
        }
        Command::Info { file } => {
            let store = AdvisoryStore::open(&file)?;
            store.verify()?;
            println!("{}: verified", file.display());
            print_info(store.info());
        }
        Command::Update {
            dir,
            output,
            ecosystem,
            alpine_release,
            osv_base,
            secdb_base,
            tracker_url,
            no_tracker,
        } => {
            let (dir, output) = match (dir, output) {
                (Some(dir), Some(output)) => (dir, output),
                (Some(dir), None) => {
                    let output = dir.join("trawl.db");
                    (dir, output)
                }
                (None, Some(output)) => (crate::defaults::feed_dir(&output), output),
                (None, None) => {
                    let output = crate::defaults::database().ok_or(
                        "no default database location: TRAWL_DB, XDG_CACHE_HOME and HOME are unset; pass --output",
                    )?;
                    (crate::defaults::feed_dir(&output), output)
                }
            };
            std::fs::create_dir_all(crate::cli::parent_dir(&output))
                .map_err(|e| format!("cannot create the directory of {}: {e}", output.display()))?;
            let ecosystem = if ecosystem.is_empty() && alpine_release.is_empty() {
                DEFAULT_ECOSYSTEMS.iter().map(|e| e.to_string()).collect()
            } else {
                ecosystem
            };
            let sources = FeedSources {
                osv_base,
                osv_ecosystems: ecosystem,
                secdb_base,
                alpine_releases: alpine_release,
                debian_tracker: (!no_tracker).then_some(tracker_url),
                ..FeedSources::default()
            };
            let report = FeedMirror::new(&dir)?.update(&sources, &output)?;
            for (url, outcome) in &report.fetched {
                match outcome {
                    FetchOutcome::Downloaded(bytes) => println!("downloaded {url} ({bytes} bytes)"),
                    FetchOutcome::NotModified => println!("unchanged  {url}"),
                }
            }
            match &report.rebuilt {
                Some((info, warnings)) => {
                    show_warnings(warnings);
                    println!("rebuilt {}", output.display());
                    print_info(info);
                }
                None => println!("{} is up to date", output.display()),
            }
        }
        Command::Push {
            file,
            reference,
            registry,
        } => {
            // Refuse to publish a damaged file.
            let store = AdvisoryStore::open(&file)?;
            store.verify()?;
            drop(store);
            let reference: RegistryReference = reference.parse()?;
            let blob = std::fs::read(&file)?;
            let client = RegistryClient::new(registry.options(&reference)?)?;
            let digest = client.push_artifact(&reference, ARTIFACT_TYPE, BLOB_MEDIA_TYPE, blob)?;
            println!("pushed {} to {reference}@{digest}", file.display());
        }
        Command::Pull {
            reference,
            output,
            registry,
        } => {
            let reference: RegistryReference = reference.parse()?;
            let client = RegistryClient::new(registry.options(&reference)?)?;
            let artifact = client.pull_artifact(&reference)?;
            if artifact.artifact_type() != Some(ARTIFACT_TYPE) {
                return Err(format!(
                    "{reference} is not a Trawl advisory database (artifact type {:?})",
                    artifact.artifact_type()
                )
                .into());
            }
            let index = artifact
                .blobs()
                .iter()
                .position(|b| b.media_type == BLOB_MEDIA_TYPE)
                .ok_or_else(|| format!("{reference} has no {BLOB_MEDIA_TYPE} blob"))?;
            pull_into(&mut artifact.open_blob(index)?, &output)?;
            let store = AdvisoryStore::open(&output)?;
            println!(
                "pulled {reference}@{} to {}",
                artifact.manifest_digest(),
                output.display()
            );
            print_info(store.info());
        }
    }
    Ok(())
}

impl RegistryArgs {
    fn options(&self, reference: &RegistryReference) -> Result<RegistryOptions, Error> {
        let mut options = RegistryOptions::default();
        for host in &self.insecure_registry {
            options = options.insecure_registry(host);
        }
        for ca in &self.ca_file {
            options = options.ca_file(ca);
        }
        if let (Some(user), true) = (&self.username, self.password_stdin) {
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            options = options.credentials(reference.registry(), Credentials::new(user, password));
        }
        Ok(options)
    }
}

/// Streams the blob (verified against its digest as it is read) to a temporary
/// file beside `output`, checks the whole database, then renames it into place.
fn pull_into(blob: &mut dyn Read, output: &Path) -> Result<(), Error> {
    let dir = match output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".trawl-db-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    std::io::copy(blob, temp.as_file_mut())?;
    temp.as_file().sync_all()?;
    AdvisoryStore::open(temp.path())?.verify()?;
    temp.persist(output)?;
    Ok(())
}

/// Prints the first problems, then the counts: expected skips (GIT ranges,
/// ecosystems without a version scheme) are counted, not listed.
fn print_warnings(warnings: &[FeedWarning]) {
    const SHOWN: usize = 20;
    let summary = WarningSummary::of(warnings);
    let problems = warnings
        .iter()
        .filter(|w| !WarningSummary::is_expected_skip(&w.reason));
    for warning in problems.take(SHOWN) {
        eprintln!("warning: {}", escape_terminal(&warning.to_string()));
    }
    if summary.other > SHOWN {
        eprintln!("... and {} more warnings", summary.other - SHOWN);
    }
    if summary.other > 0 {
        eprintln!("{} warnings", summary.other);
    }
    if summary.git_ranges > 0 {
        eprintln!(
            "skipped {} GIT ranges (commit ranges cannot match package versions)",
            summary.git_ranges
        );
    }
    if !summary.unknown_ecosystems.is_empty() {
        let total: usize = summary.unknown_ecosystems.values().sum();
        let each: Vec<String> = summary
            .unknown_ecosystems
            .iter()
            .map(|(ecosystem, n)| format!("{} {n}", escape_terminal(ecosystem)))
            .collect();
        eprintln!(
            "skipped {total} affected packages in ecosystems Trawl does not match: {}",
            each.join(", ")
        );
    }
}

fn print_info(info: &StoreInfo) {
    println!("schema version  {}", info.schema_version);
    println!("records         {}", info.records);
    println!("indexed entries {}", info.entries);
    println!("content sha256  {}", info.content_sha256);
    println!("built by        {}", escape_terminal(&info.built_by));
    let built_at = info
        .built_at
        .and_then(|t| chrono::DateTime::from_timestamp(i64::try_from(t).ok()?, 0))
        .map_or("unknown".to_string(), |t| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        });
    println!("built at        {built_at}");
    if let Some(skipped) = info.skipped_git_ranges {
        println!("GIT ranges      {skipped} skipped");
    }
    println!("ecosystems      {}", info.ecosystems.len());
    for (ecosystem, entries) in &info.ecosystems {
        let unmatched = if Ecosystem::parse(ecosystem).scheme().is_none() {
            "  (no version scheme: never matched)"
        } else {
            ""
        };
        println!("  {:<40} {entries}{unmatched}", escape_terminal(ecosystem));
    }
}
