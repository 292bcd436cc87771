//! The policy flags `trawl scan` and `trawl watch` share, and how they
//! become a [`Policy`].

use std::path::PathBuf;

use trawl::{Policy, Severity};
use trawl_watch::PolicyFiles;

/// What counts toward the verdict.
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// Findings below this severity do not count (unknown always counts).
    #[arg(long, value_name = "SEVERITY", default_value = "unknown", value_parser = parse_severity)]
    pub severity_threshold: Severity,
    /// Findings without a fixed version do not count.
    #[arg(long)]
    pub ignore_unfixed: bool,
    /// An ignore file: `ID [package=NAME] [expires=YYYY-MM-DD] reason="..."` per line. Repeatable.
    #[arg(long = "ignore-file", value_name = "FILE")]
    pub ignore_files: Vec<PathBuf>,
    /// An OpenVEX document; `not_affected` statements suppress. Repeatable.
    #[arg(long = "vex", value_name = "FILE")]
    pub vex_files: Vec<PathBuf>,
}

fn parse_severity(text: &str) -> Result<Severity, String> {
    text.parse().map_err(|e| format!("{e}"))
}

impl PolicyArgs {
    /// The flags as the service's [`PolicyFiles`], which `trawl watch`
    /// watches and `trawl scan` reads once.
    pub fn files(&self) -> PolicyFiles {
        let mut files = PolicyFiles::default();
        files.severity_threshold = self.severity_threshold;
        files.ignore_unfixed = self.ignore_unfixed;
        files.ignore_files = self.ignore_files.clone();
        files.vex_files = self.vex_files.clone();
        files
    }

    /// Reads the ignore and VEX files into a policy as of today (see
    /// [`PolicyFiles::load`]).
    pub fn load(&self) -> Result<Policy, trawl::classify::policy::PolicyError> {
        self.files().load()
    }
}
