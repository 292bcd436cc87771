//! What the subcommands share: the global options, logging setup, error
//! reporting, colour and progress decisions, and atomic output files.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

/// The options every subcommand takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// No progress bars and no informational messages on stderr (errors still show).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// When to colour the output: auto (a terminal, unless NO_COLOR is set), always or never.
    #[arg(
        long,
        value_enum,
        value_name = "WHEN",
        default_value = "auto",
        global = true
    )]
    pub color: ColorChoice,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour a terminal, unless `NO_COLOR` is set and not empty.
    Auto,
    /// Always colour (overrides `NO_COLOR`, as an explicit flag should).
    Always,
    /// Never colour.
    Never,
}

impl Global {
    /// Whether to colour output written to a terminal (`is_terminal`) or
    /// not, under `--color` and `NO_COLOR` (https://no-color.org).
    pub fn color(&self, is_terminal: bool) -> bool {
        use_color(self.color, is_terminal, std::env::var_os("NO_COLOR"))
    }

    /// Whether to draw progress bars: only on a terminal, and not `--quiet`.
    pub fn progress(&self) -> bool {
        !self.quiet && std::io::stderr().is_terminal()
    }
}

/// The colour decision, given `NO_COLOR`'s value.
fn use_color(choice: ColorChoice, is_terminal: bool, no_color: Option<OsString>) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => is_terminal && no_color.is_none_or(|v| v.is_empty()),
    }
}

/// The directory a file is in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Writes a file atomically: `write` fills a temporary file in the same
/// directory, which is flushed, synced and renamed over `path` only when
/// `write` succeeds. A reader never sees a half-written file, and a failed
/// run leaves what was there.
pub fn write_atomically<T>(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<T, Box<dyn std::error::Error>>,
) -> Result<T, Box<dyn std::error::Error>> {
    let dir = parent_dir(path);
    let temp = tempfile::Builder::new()
        .prefix(".trawl-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| format!("cannot create a file in {}: {e}", dir.display()))?;
    let mut out = std::io::BufWriter::new(temp);
    let value = write(&mut out)?;
    let temp = out.into_inner().map_err(|e| e.into_error())?;
    temp.as_file().sync_all()?;
    temp.persist(path)
        .map_err(|e| format!("cannot write {}: {}", path.display(), e.error))?;
    Ok(value)
}

/// Logs to stderr, filtered by `TRAWL_LOG` (tracing's filter syntax), else
/// at `default` (`warn`, `info`, ...).
///
/// Under `--quiet` the default is `error`; the log is coloured as `--color`
/// and `NO_COLOR` say for stderr.
pub fn init_logging(global: &Global, default: &str) {
    let default = if global.quiet { "error" } else { default };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(global.color(std::io::stderr().is_terminal()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRAWL_LOG")
                .unwrap_or_else(|_| default.into()),
        )
        .init();
}

/// Prints `error: …` with its chain of causes to stderr, escaped for the
/// terminal (messages quote image contents and servers' answers); exit
/// status 2.
pub fn fail(e: &dyn std::error::Error) -> ExitCode {
    let escape =
        |e: &dyn std::error::Error| trawl::classify::escape_terminal(&e.to_string()).into_owned();
    let mut msg = format!("error: {}", escape(e));
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(&format!("\n  caused by: {}", escape(s)));
        source = s.source();
    }
    eprintln!("{msg}");
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_follows_the_flag_then_no_color_then_the_terminal() {
        let set = || Some(OsString::from("1"));
        assert!(use_color(ColorChoice::Auto, true, None));
        assert!(use_color(ColorChoice::Auto, true, Some(OsString::new())));
        assert!(!use_color(ColorChoice::Auto, true, set()));
        assert!(!use_color(ColorChoice::Auto, false, None));
        assert!(use_color(ColorChoice::Always, false, set()));
        assert!(!use_color(ColorChoice::Never, true, None));
    }

    #[test]
    fn a_failed_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        std::fs::write(&path, "old").unwrap();
        let failed = write_atomically::<()>(&path, |out| {
            out.write_all(b"half")?;
            Err("the scan failed".into())
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        write_atomically(&path, |out| Ok(out.write_all(b"new")?)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left behind");
    }
}
