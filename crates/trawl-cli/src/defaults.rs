//! Where the default advisory database lives, and how old it may get.
//!
//! The database `trawl scan` uses without `--db` or feed options, and the one
//! `trawl db update` fills without `--dir`/`--output`:
//!
//! 1. `$TRAWL_DB`, when set and not empty;
//! 2. `$XDG_CACHE_HOME/trawl/trawl.db`, when `XDG_CACHE_HOME` is an absolute
//!    path (the XDG Base Directory spec says to ignore a relative one);
//! 3. `$HOME/.cache/trawl/trawl.db` (`%USERPROFILE%` on Windows).
//!
//! `trawl db update` mirrors the feeds in `feeds/` beside that database.
//!
//! The environment is read by hand rather than through the `dirs` crate: the
//! rule above is XDG's on every platform (`dirs` answers `~/Library/Caches`
//! on macOS and ignores `XDG_CACHE_HOME` there), and it is ten lines.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// The default database's path, from the process environment; `None` when
/// none of `TRAWL_DB`, `XDG_CACHE_HOME` and `HOME` says where.
pub fn database() -> Option<PathBuf> {
    database_from(|name| std::env::var_os(name))
}

/// [`database`] over any environment (`env` answers a variable's value).
pub fn database_from(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(path) = set("TRAWL_DB") {
        return Some(path);
    }
    let cache = set("XDG_CACHE_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| {
            set(if cfg!(windows) { "USERPROFILE" } else { "HOME" }).map(|h| h.join(".cache"))
        })?;
    Some(cache.join("trawl").join("trawl.db"))
}

/// Where `trawl db update` keeps the feeds for the database at `db`: `feeds/`
/// beside it.
pub fn feed_dir(db: &std::path::Path) -> PathBuf {
    crate::cli::parent_dir(db).join("feeds")
}

/// The one line `trawl scan` prints when there is no database to match against.
pub fn missing_message(path: Option<&std::path::Path>) -> String {
    match path {
        Some(path) => format!(
            "no advisory database at {}: run `trawl db update` (or pass --db/--osv)",
            path.display()
        ),
        None => "no advisory database (TRAWL_DB, XDG_CACHE_HOME and HOME are unset): run `trawl db update --output FILE` and set TRAWL_DB (or pass --db/--osv)".to_string(),
    }
}

/// Parses `--max-db-age`: a number with a unit `s`, `m`, `h`, `d` or `w`
/// (`5d`, `36h`); `0` (any unit) disables the check.
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?}: give a unit: s, m, h, d or w (e.g. 5d)"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number and a unit, e.g. 5d"))?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (s, m, h, d, w)")),
    };
    number
        .checked_mul(unit)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?}: too large"))
}

/// An age in words: `3d 4h`, `5h 12m`, `40s`.
pub fn describe_age(age: Duration) -> String {
    let secs = age.as_secs();
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn trawl_db_then_xdg_then_home() {
        let home = if cfg!(windows) { "USERPROFILE" } else { "HOME" };
        let all = [
            ("TRAWL_DB", "/x/my.db"),
            ("XDG_CACHE_HOME", "/xdg"),
            (home, "/home/u"),
        ];
        assert_eq!(database_from(env(&all)), Some("/x/my.db".into()));
        assert_eq!(
            database_from(env(&all[1..])),
            Some(PathBuf::from("/xdg/trawl/trawl.db"))
        );
        assert_eq!(
            database_from(env(&all[2..])),
            Some(PathBuf::from("/home/u/.cache/trawl/trawl.db"))
        );
        // Empty values count as unset; a relative XDG_CACHE_HOME is ignored.
        let odd = [
            ("TRAWL_DB", ""),
            ("XDG_CACHE_HOME", "relative"),
            (home, "/home/u"),
        ];
        assert_eq!(
            database_from(env(&odd)),
            Some(PathBuf::from("/home/u/.cache/trawl/trawl.db"))
        );
        assert_eq!(database_from(env(&[])), None);
    }

    #[test]
    fn ages_parse_with_units_and_zero_disables() {
        assert_eq!(parse_age("5d"), Ok(Duration::from_secs(5 * 86_400)));
        assert_eq!(parse_age("36h"), Ok(Duration::from_secs(36 * 3600)));
        assert_eq!(parse_age("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_age("0"), Ok(Duration::ZERO));
        assert!(parse_age("5").is_err());
        assert!(parse_age("5y").is_err());
        assert!(parse_age("d").is_err());
        assert!(parse_age("99999999999999999999d").is_err());
        assert_eq!(
            describe_age(Duration::from_secs(3 * 86_400 + 4 * 3600)),
            "3d 4h"
        );
        assert_eq!(
            describe_age(Duration::from_secs(5 * 3600 + 12 * 60)),
            "5h 12m"
        );
        assert_eq!(describe_age(Duration::from_secs(40)), "40s");
    }
}
