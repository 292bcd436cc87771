//! Reading OSV records from files and directory trees.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Advisory;
use crate::feed::{
    BoundedReadError, FeedError, FeedWarning, MAX_RECORD_FILE, RecordRef, WarningReason, file_kind,
    read_feed_file, read_regular_bounded,
};

/// The records read from a feed, and what had to be skipped.
#[derive(Debug, Default)]
pub struct OsvLoad {
    /// Every record that parsed, withdrawn ones included, in path order.
    pub advisories: Vec<Advisory>,
    /// Files and records that were skipped, and why.
    pub warnings: Vec<FeedWarning>,
    /// How many `*.json` files were read.
    pub files: usize,
}

/// Reads every `*.json` file under `dir`, recursively, in file-name order.
///
/// Each file holds one OSV record (as osv.dev's per-ecosystem exports ship them) or a
/// JSON array of records. Unreadable files, files over
/// [`MAX_RECORD_FILE`](crate::feed::MAX_RECORD_FILE), invalid JSON and invalid
/// records become warnings, as do FIFOs and devices named `*.json` (they are never opened, so
/// they cannot block the load); only a `dir` that cannot be read at all is an error.
pub fn load_dir(dir: impl AsRef<Path>) -> Result<OsvLoad, FeedError> {
    let mut load = OsvLoad::default();
    load.files = visit_dir(
        dir.as_ref(),
        &mut |_, a| load.advisories.push(a),
        &mut load.warnings,
    )?;
    Ok(load)
}

/// Reads one file holding an OSV record or a JSON array of records.
///
/// Invalid JSON and invalid records become warnings; a file that cannot be read is an
/// error, and so is a path that is not a regular file
/// ([`FeedError::NotARegularFile`]: a FIFO is refused at once, not waited on).
pub fn load_file(path: impl AsRef<Path>) -> Result<OsvLoad, FeedError> {
    let path = path.as_ref();
    let bytes = read_feed_file(path)?;
    let mut load = OsvLoad {
        files: 1,
        ..OsvLoad::default()
    };
    parse_records(
        path,
        &bytes,
        &mut |_, a| load.advisories.push(a),
        &mut load.warnings,
    );
    Ok(load)
}

/// Streams the records under `dir` to `on_record`; returns the number of files read.
pub(crate) fn visit_dir(
    dir: &Path,
    on_record: &mut dyn FnMut(&Path, Advisory),
    warnings: &mut Vec<FeedWarning>,
) -> Result<usize, FeedError> {
    // Fail early and precisely when the root itself is unusable.
    std::fs::metadata(dir).map_err(|source| FeedError::ReadDir {
        path: dir.to_owned(),
        source,
    })?;
    let mut files = 0;
    let walk = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name();
    for entry in walk {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) if err.depth() == 0 => {
                return Err(FeedError::ReadDir {
                    path: dir.to_owned(),
                    source: err
                        .into_io_error()
                        .unwrap_or_else(|| std::io::Error::other("cannot walk the feed directory")),
                });
            }
            Err(err) => {
                warnings.push(file_warning(
                    err.path().map(Path::to_owned),
                    WarningReason::Unreadable {
                        message: err.to_string(),
                    },
                ));
                continue;
            }
        };
        let path = entry.path();
        if entry.file_type().is_dir() || path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        if !entry.file_type().is_file() {
            // A FIFO or device named `*.json`: never opened.
            warnings.push(file_warning(
                Some(path.to_owned()),
                WarningReason::Unreadable {
                    message: format!("not a regular file but a {}", file_kind(&entry.file_type())),
                },
            ));
            continue;
        }
        files += 1;
        match read_regular_bounded(path, MAX_RECORD_FILE) {
            Ok(bytes) => parse_records(path, &bytes, on_record, warnings),
            Err(BoundedReadError::TooLarge(size)) => warnings.push(file_warning(
                Some(path.to_owned()),
                WarningReason::FileTooLarge {
                    size,
                    max: MAX_RECORD_FILE,
                },
            )),
            Err(BoundedReadError::Open(err)) => warnings.push(file_warning(
                Some(path.to_owned()),
                WarningReason::Unreadable {
                    message: err.to_string(),
                },
            )),
        }
    }
    Ok(files)
}

fn file_warning(path: Option<PathBuf>, reason: WarningReason) -> FeedWarning {
    FeedWarning {
        path,
        record: None,
        reason,
    }
}

/// Parses one file's bytes: a record object or an array of records.
pub(crate) fn parse_records(
    path: &Path,
    bytes: &[u8],
    on_record: &mut dyn FnMut(&Path, Advisory),
    warnings: &mut Vec<FeedWarning>,
) {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let warn = |record, reason| FeedWarning {
        path: Some(path.to_owned()),
        record,
        reason,
    };
    let invalid_json = |err: serde_json::Error| WarningReason::InvalidJson {
        message: err.to_string(),
    };
    let invalid_record = |err: serde_json::Error| WarningReason::InvalidRecord {
        message: err.to_string(),
    };

    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        let values = match serde_json::from_slice::<Vec<serde_json::Value>>(bytes) {
            Ok(values) => values,
            Err(err) => return warnings.push(warn(None, invalid_json(err))),
        };
        for (index, value) in values.into_iter().enumerate() {
            let record = Some(id_of(&value).map_or(RecordRef::Index(index), RecordRef::Id));
            match Advisory::deserialize(value) {
                Ok(advisory) => on_record(path, advisory),
                Err(err) => warnings.push(warn(record, invalid_record(err))),
            }
        }
        return;
    }

    match serde_json::from_slice::<Advisory>(bytes) {
        Ok(advisory) => on_record(path, advisory),
        Err(err) if err.is_data() => {
            // Valid JSON, wrong shape: name the record if it has a readable id.
            let record = serde_json::from_slice::<serde_json::Value>(bytes)
                .ok()
                .and_then(|v| id_of(&v))
                .map(RecordRef::Id);
            warnings.push(warn(record, invalid_record(err)));
        }
        Err(err) => warnings.push(warn(None, invalid_json(err))),
    }
}

fn id_of(value: &serde_json::Value) -> Option<String> {
    value.get("id")?.as_str().map(str::to_owned)
}
