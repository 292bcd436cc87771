//! What can go wrong while reading advisory feeds.
//!
//! A feed is large and written by others; one bad file or record must not cost the
//! rest. Such problems become [`FeedWarning`]s that travel next to the loaded data;
//! only a feed that cannot be read at all is a [`FeedError`].

use std::fmt;
use std::path::PathBuf;

use crate::version::VersionError;

/// A feed that could not be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    /// The feed directory could not be listed.
    #[error("cannot read advisory feed directory {}: {source}", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The feed file could not be read.
    #[error("cannot read advisory feed file {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// A problem with part of a feed; the rest of the feed is still used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedWarning {
    /// The file the problem is in, when the data came from a file.
    pub path: Option<PathBuf>,
    /// The record the problem is in, when it concerns one record.
    pub record: Option<RecordRef>,
    /// What is wrong, and what was skipped because of it.
    pub reason: WarningReason,
}

/// Names a record within a feed file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RecordRef {
    /// The record's id.
    Id(String),
    /// The record's position (from 0) in a file holding an array of records, used
    /// when the record has no readable id.
    Index(usize),
}

impl fmt::Display for RecordRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(f, "record {id}"),
            Self::Index(i) => write!(f, "record #{i}"),
        }
    }
}

/// Why part of a feed was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WarningReason {
    /// A file or directory entry could not be read; it was skipped.
    #[error("unreadable: {message}")]
    Unreadable {
        /// The I/O error, as text.
        message: String,
    },
    /// A file is not valid JSON; it was skipped.
    #[error("invalid JSON: {message}")]
    InvalidJson {
        /// The parser's message, with line and column.
        message: String,
    },
    /// A JSON value is not a valid OSV record; the record was skipped.
    #[error("not a valid OSV record: {message}")]
    InvalidRecord {
        /// The parser's message.
        message: String,
    },
    /// A version in a range or `versions` list does not parse under the ecosystem's
    /// scheme: the range was skipped, or the listed version is matched as exact text
    /// only.
    #[error("package {package}: {error}")]
    InvalidVersion {
        /// The affected package's name.
        package: String,
        /// The version and what is wrong with it.
        error: VersionError,
    },
    /// A range type the ecosystem's scheme cannot evaluate (e.g. `SEMVER` for Debian);
    /// the range was skipped.
    #[error("package {package}: {range_type} ranges are not supported here; the range was skipped")]
    UnsupportedRangeType {
        /// The affected package's name.
        package: String,
        /// The range type as written in the feed.
        range_type: String,
    },
}

impl fmt::Display for FeedWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.path {
            write!(f, "{}: ", path.display())?;
        }
        if let Some(record) = &self.record {
            write!(f, "{record}: ")?;
        }
        self.reason.fmt(f)
    }
}
