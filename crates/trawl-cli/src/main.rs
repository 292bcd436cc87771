//! `trawl`: find known vulnerabilities in container images.
//!
//! ```text
//! trawl scan [OPTIONS] SOURCE            scan an image (exit 0 healthy or unsupported,
//!                                        1 unhealthy, 2 could not run, 3 partial)
//! trawl db build|info|update|push|pull   the compiled advisory database
//! trawl watch [OPTIONS]                  scan images as they are pushed to a registry
//! trawl completions bash|zsh|fish|elvish|powershell
//! trawl man [--out DIR]                  the manual pages (trawl.1 and one per subcommand)
//! trawl schema report|inventory          the JSON Schema of `scan --format json`'s report
//!                                        (or of `scan --inventory-only --format json`)
//! ```
//!
//! Install it with `cargo install --path crates/trawl-cli`. The options every
//! subcommand takes: `--quiet` (no progress bars, no informational messages
//! on stderr; errors still show) and `--color auto|always|never` (`auto`
//! colours a terminal unless `NO_COLOR` is set and not empty). Logs go to
//! stderr, filtered by `TRAWL_LOG` (tracing's filter syntax).

mod cli;
mod db;
mod defaults;
mod policy;
mod scan;
mod size;
mod watch;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// mimalloc rather than the C library's allocator. `trawl watch` keeps
/// two rescan batches in memory at once (`--rescan-concurrency 2`), each
/// built on the matching threads and freed on others; glibc's allocator
/// then fragments, and its `malloc` walks long free lists: measured on the
/// watch bench (10,000 images, 2 processes), the first match against a
/// new database cost the services 28–36 s of CPU with glibc against
/// 12–18 s with mimalloc (11–15 s either way with one batch at a time).
/// mimalloc v2 without transparent huge pages keeps a scan's peak RSS
/// within 2 MiB of glibc's (v3 held 40 MiB more).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Find known vulnerabilities in container images, build and ship the
/// advisory database, and watch a registry.
#[derive(Debug, Parser)]
#[command(name = "trawl", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: cli::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scan an image for known vulnerabilities.
    ///
    /// Exit status: 0 when the scan ran and the image is healthy (or
    /// unsupported), 1 when it is unhealthy (for CI gates), 2 when the scan
    /// could not run, 3 when the scan is partial (a layer or package database
    /// could not be read and nothing was found in the rest: not healthy, but
    /// nothing to fix either).
    Scan(scan::ScanArgs),
    /// Build, inspect, update and distribute the compiled advisory database.
    Db(db::DbArgs),
    /// Scan images pushed to a registry (its notification webhook) and
    /// rescan those in use when the advisory database changes.
    Watch(watch::WatchArgs),
    /// Print a shell completion script to stdout.
    ///
    /// bash: `trawl completions bash > ~/.local/share/bash-completion/completions/trawl`;
    /// zsh: into a directory on `$fpath` as `_trawl`; fish:
    /// `trawl completions fish > ~/.config/fish/completions/trawl.fish`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (roff), generated from the same definitions as
    /// the options.
    ///
    /// Without --out, trawl.1 goes to stdout (`trawl man | man -l -`).
    Man {
        /// Write trawl.1 and one page per subcommand (trawl-scan.1,
        /// trawl-db-build.1, ...) into this directory.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Print the JSON Schema (draft 2020-12) of a document trawl writes.
    ///
    /// `trawl schema report` describes `trawl scan --format json`'s output,
    /// `trawl schema inventory` that of `--inventory-only`; their
    /// `schema_version` property is a constant that changes whenever either
    /// shape does.
    Schema {
        /// The document.
        #[arg(value_enum)]
        document: SchemaDocument,
    },
}

/// The documents whose schema `trawl schema` prints.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SchemaDocument {
    /// The JSON report (`trawl scan --format json`).
    Report,
    /// The inventory (`trawl scan --inventory-only --format json`).
    Inventory,
}

fn main() -> ExitCode {
    let args = parse(std::env::args_os().collect());
    let global = args.global;
    match args.command {
        Command::Scan(scan) => {
            cli::init_logging(&global, "warn");
            match scan::run(&scan, &global) {
                Ok(code) => code,
                Err(e) => cli::fail(&*e),
            }
        }
        Command::Db(db) => {
            cli::init_logging(&global, "warn");
            db::main(db, &global)
        }
        Command::Watch(watch) => {
            cli::init_logging(&global, "info");
            match watch::run(watch) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => cli::fail(&*e),
            }
        }
        Command::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "trawl", &mut out);
            match out.flush() {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => cli::fail(&e),
            }
        }
        Command::Man { out } => match man(out.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => cli::fail(&e),
        },
        Command::Schema { document } => {
            let schema = match document {
                SchemaDocument::Report => trawl::classify::report_schema(),
                SchemaDocument::Inventory => trawl::classify::inventory_schema(),
            };
            let mut out = std::io::stdout().lock();
            let written = serde_json::to_writer_pretty(&mut out, &schema)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out))
                .and_then(|()| out.flush());
            match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => cli::fail(&e),
            }
        }
    }
}

/// Parses the command line (exiting with status 2 and a usage message on
/// an error). clap's own help and error messages follow `--color` too,
/// which is only known once parsed: so it is looked for first.
fn parse(args: Vec<std::ffi::OsString>) -> Cli {
    let mut command = Cli::command();
    let choice = args.windows(2).rev().find_map(|pair| {
        let value = match pair[0].to_str() {
            Some("--color") => pair[1].to_str()?,
            _ => pair[1].to_str()?.strip_prefix("--color=")?,
        };
        match value {
            "always" => Some(clap::ColorChoice::Always),
            "never" => Some(clap::ColorChoice::Never),
            _ => None,
        }
    });
    if let Some(choice) = choice {
        command = command.color(choice);
    }
    let matches = command.get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Renders the manual: `trawl.1` to stdout, or every page into `dir`.
fn man(dir: Option<&Path>) -> std::io::Result<()> {
    let command = Cli::command();
    match dir {
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(command).render(&mut out)?;
            out.flush()
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            clap_mangen::generate_to(command, dir)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
    }
}
