//! The GitHub Advisory Database in its OSV form.
//!
//! GitHub publishes its advisories as OSV records in the
//! [`github/advisory-database`](https://github.com/github/advisory-database)
//! repository: `advisories/github-reviewed/YYYY/MM/GHSA-…/GHSA-….json` for the
//! reviewed ones (with package ecosystems and ranges), and
//! `advisories/unreviewed/…` for the rest (mostly without a package, so they
//! match nothing). [`load`] and the builders' `add_ghsa` read either
//!
//! - a checkout (or any copy of the tree): the repository root, its
//!   `advisories` directory, or a directory of records itself; or
//! - GitHub's archive zip of the repository (one top-level directory, e.g.
//!   `advisory-database-main/advisories/github-reviewed/…`), streamed entry by
//!   entry without unpacking it to disk, within [`FeedLimits`](crate::limits::FeedLimits)
//!   (cargo feature `zip`, part of the default `fetch`): an entry over `max_entry_size` or `max_ratio`
//!   (a zip bomb) is skipped with a [`WarningReason::ArchiveEntryOverLimit`](crate::WarningReason::ArchiveEntryOverLimit);
//!   an archive over `max_entries` or `max_unpacked` fails with
//!   [`FeedError::ArchiveLimit`].
//!
//! Only `github-reviewed` is read unless [`GhsaOptions::include_unreviewed`]
//! is set. Records are plain OSV: severity comes from
//! `database_specific.severity` (`LOW`, `MODERATE`, `HIGH`, `CRITICAL`) and
//! the CVSS vectors in `severity`, both kept as given. `Pub` and `Hex`
//! versions are ordered as SemVer; packages in ecosystems Trawl has no
//! version scheme for (`SwiftURL`, `GitHub Actions`, …) are kept but cannot match; each is a
//! [`WarningReason::UnknownEcosystem`](crate::WarningReason::UnknownEcosystem), counted by
//! [`WarningSummary`](crate::feed::WarningSummary).

use std::path::{Path, PathBuf};

use crate::feed::{FeedError, FeedWarning};
use crate::osv::{Advisory, OsvLoad};

/// The directory of reviewed advisories within `advisories/`.
pub const REVIEWED: &str = "github-reviewed";
/// The directory of unreviewed advisories within `advisories/`.
pub const UNREVIEWED: &str = "unreviewed";

/// What to read from the GitHub Advisory Database, and within which limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GhsaOptions {
    /// Also read `advisories/unreviewed` (default: reviewed advisories only).
    pub include_unreviewed: bool,
    /// Bounds on reading the archive zip.
    pub limits: crate::limits::FeedLimits,
}

/// Reads the GitHub Advisory Database at `path` (a checkout or its archive
/// zip, see the [module docs](self)) with default [`GhsaOptions`].
///
/// Invalid files and records become warnings; a path that cannot be read, an
/// unusable zip, or a zip over a whole-archive limit is an error.
pub fn load(path: impl AsRef<Path>) -> Result<OsvLoad, FeedError> {
    load_with(path, &GhsaOptions::default())
}

/// [`load`] with other options.
pub fn load_with(path: impl AsRef<Path>, options: &GhsaOptions) -> Result<OsvLoad, FeedError> {
    let mut load = OsvLoad::default();
    let mut advisories = Vec::new();
    load.files = visit(
        path.as_ref(),
        options,
        &mut |_, a| advisories.push(a),
        &mut load.warnings,
    )?;
    load.advisories = advisories;
    Ok(load)
}

/// Reads the database at `path` into a database being built: every record
/// goes to `add` (which answers its own warnings, tagged here with the
/// record's file), after the archive's or checkout's own warnings.
pub(crate) fn add_all(
    path: &Path,
    options: &GhsaOptions,
    add: &mut dyn FnMut(Advisory) -> Vec<FeedWarning>,
) -> Result<Vec<FeedWarning>, FeedError> {
    let mut warnings = Vec::new();
    let mut record_warnings = Vec::new();
    visit(
        path,
        options,
        &mut |path, advisory| {
            record_warnings.extend(add(advisory).into_iter().map(|mut w| {
                w.path = Some(path.to_owned());
                w
            }));
        },
        &mut warnings,
    )?;
    warnings.append(&mut record_warnings);
    Ok(warnings)
}

/// Streams the records at `path` to `on_record`; returns the number of
/// `*.json` files read.
pub(crate) fn visit(
    path: &Path,
    options: &GhsaOptions,
    on_record: &mut dyn FnMut(&Path, Advisory),
    warnings: &mut Vec<FeedWarning>,
) -> Result<usize, FeedError> {
    let metadata = std::fs::metadata(path).map_err(|source| FeedError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    if metadata.is_dir() {
        let mut files = 0;
        for dir in record_dirs(path, options) {
            files += crate::osv::load::visit_dir(&dir, on_record, warnings)?;
        }
        return Ok(files);
    }
    if !metadata.is_file() {
        return Err(FeedError::NotARegularFile {
            path: path.to_owned(),
            kind: crate::feed::file_kind(&metadata.file_type()),
        });
    }
    visit_zip(path, options, on_record, warnings)
}

/// The directories to walk for a checkout at `root`.
fn record_dirs(root: &Path, options: &GhsaOptions) -> Vec<PathBuf> {
    let advisories = root.join("advisories");
    let base = if advisories.is_dir() {
        advisories
    } else {
        root.to_owned()
    };
    let reviewed = base.join(REVIEWED);
    if !reviewed.is_dir() {
        // A directory of records itself (e.g. `advisories/github-reviewed`).
        return vec![base];
    }
    let mut dirs = vec![reviewed];
    let unreviewed = base.join(UNREVIEWED);
    if options.include_unreviewed && unreviewed.is_dir() {
        dirs.push(unreviewed);
    }
    dirs
}

#[cfg(feature = "zip")]
/// Whether an archive entry is a record to read: `*.json` under
/// `advisories/github-reviewed/` (or `unreviewed/`), at the archive's root or
/// below its one top-level directory.
fn wanted_entry(name: &Path, options: &GhsaOptions) -> bool {
    if name.extension().is_none_or(|e| e != "json") {
        return false;
    }
    let parts: Vec<&std::ffi::OsStr> = name.iter().collect();
    (0..=1).any(|at| {
        parts.get(at).is_some_and(|p| *p == "advisories")
            && parts
                .get(at + 1)
                .is_some_and(|p| *p == REVIEWED || (options.include_unreviewed && *p == UNREVIEWED))
            && parts.len() > at + 2
    })
}

#[cfg(not(feature = "zip"))]
fn visit_zip(
    path: &Path,
    _options: &GhsaOptions,
    _on_record: &mut dyn FnMut(&Path, Advisory),
    _warnings: &mut Vec<FeedWarning>,
) -> Result<usize, FeedError> {
    Err(FeedError::Archive {
        path: path.to_owned(),
        message: "reading zip archives needs trawl-advisory's `zip` feature".into(),
    })
}

/// Reads the wanted entries of the zip at `path` one at a time, counting the
/// bytes inflated rather than trusting the sizes the archive declares.
#[cfg(feature = "zip")]
fn visit_zip(
    path: &Path,
    options: &GhsaOptions,
    on_record: &mut dyn FnMut(&Path, Advisory),
    warnings: &mut Vec<FeedWarning>,
) -> Result<usize, FeedError> {
    use std::io::Read;

    use crate::feed::WarningReason;

    let limits = &options.limits;
    let (file, _) = crate::feed::open_regular(path).map_err(|e| e.into_feed_error(path))?;
    let mut zip =
        zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| FeedError::Archive {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    let over = |limit: &'static str, max: u64| FeedError::ArchiveLimit {
        path: path.to_owned(),
        limit,
        max,
    };
    if zip.len() as u64 > limits.max_entries {
        return Err(over("max_entries", limits.max_entries));
    }
    let warn = |warnings: &mut Vec<FeedWarning>, entry: PathBuf, reason| {
        warnings.push(FeedWarning {
            path: Some(entry),
            record: None,
            reason,
        })
    };
    let mut files = 0;
    let mut unpacked: u64 = 0;
    let mut buffer = vec![0u8; 64 << 10];
    for i in 0..zip.len() {
        let mut entry = match zip.by_index(i) {
            Ok(entry) => entry,
            Err(e) => {
                warn(
                    warnings,
                    path.join(format!("#{i}")),
                    WarningReason::Unreadable {
                        message: e.to_string(),
                    },
                );
                continue;
            }
        };
        if !entry.is_file() {
            continue;
        }
        // Names reaching outside the archive are never records.
        let Some(name) = entry.enclosed_name() else {
            continue;
        };
        if !wanted_entry(&name, options) {
            continue;
        }
        let shown = path.join(&name);
        let entry_over = |limit: &'static str, max: u64| WarningReason::ArchiveEntryOverLimit {
            entry: name.display().to_string(),
            limit,
            max,
        };
        files += 1;
        // The declared size refuses an honest giant early; the count below
        // catches a lying one.
        if entry.size() > limits.max_entry_size {
            warn(
                warnings,
                shown,
                entry_over("max_entry_size", limits.max_entry_size),
            );
            continue;
        }
        let compressed = entry.compressed_size().max(1);
        let mut bytes = Vec::with_capacity(usize::try_from(entry.size().min(1 << 20)).unwrap_or(0));
        let mut skipped = None;
        loop {
            let n = match entry.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    skipped = Some(WarningReason::Unreadable {
                        message: e.to_string(),
                    });
                    break;
                }
            };
            let size = bytes.len() as u64 + n as u64;
            unpacked += n as u64;
            if unpacked > limits.max_unpacked {
                return Err(over("max_unpacked", limits.max_unpacked));
            }
            if size > limits.max_entry_size {
                skipped = Some(entry_over("max_entry_size", limits.max_entry_size));
                break;
            }
            if size > limits.ratio_floor && size > limits.max_ratio.saturating_mul(compressed) {
                skipped = Some(entry_over("max_ratio", limits.max_ratio));
                break;
            }
            bytes.extend_from_slice(&buffer[..n]);
        }
        match skipped {
            Some(reason) => warn(warnings, shown, reason),
            None => crate::osv::load::parse_records(&shown, &bytes, on_record, warnings),
        }
    }
    Ok(files)
}

#[cfg(all(test, feature = "zip"))]
mod tests {
    use super::*;

    #[test]
    fn entries_under_reviewed_advisories_only() {
        let reviewed = GhsaOptions::default();
        let all = GhsaOptions {
            include_unreviewed: true,
            ..GhsaOptions::default()
        };
        let cases = [
            (
                "advisory-database-main/advisories/github-reviewed/2023/01/GHSA-x/GHSA-x.json",
                true,
                true,
            ),
            (
                "advisories/github-reviewed/2023/01/GHSA-x/GHSA-x.json",
                true,
                true,
            ),
            (
                "advisory-database-main/advisories/unreviewed/2023/01/GHSA-y/GHSA-y.json",
                false,
                true,
            ),
            (
                "advisory-database-main/advisories/github-reviewed/README.md",
                false,
                false,
            ),
            ("advisory-database-main/package.json", false, false),
            ("a/b/advisories/github-reviewed/x.json", false, false),
            (
                "advisory-database-main/advisories/github-reviewed.json",
                false,
                false,
            ),
        ];
        for (name, want_reviewed, want_all) in cases {
            assert_eq!(
                wanted_entry(Path::new(name), &reviewed),
                want_reviewed,
                "{name}"
            );
            assert_eq!(
                wanted_entry(Path::new(name), &all),
                want_all,
                "{name} (all)"
            );
        }
    }
}
