//! What can go wrong while reading advisory feeds.
//!
//! A feed is large and written by others; one bad file or record must not cost the
//! rest. Such problems become [`FeedWarning`]s that travel next to the loaded data;
//! only a feed that cannot be read at all is a [`FeedError`].
//!
//! Feed files are opened as regular files only: a FIFO, device, socket or
//! directory where a file is expected is refused at once
//! ([`FeedError::NotARegularFile`]) instead of blocking the load.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::osv::Advisory;
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
    /// The feed path names a FIFO, device, socket or directory where a regular
    /// file is expected; it was not read (a FIFO would block the load).
    #[error("advisory feed {} is not a regular file but a {kind}", path.display())]
    NotARegularFile {
        /// The path.
        path: PathBuf,
        /// What it is: `FIFO`, `directory`, `character device`, `block device`, `socket`.
        kind: &'static str,
    },
    /// A feed archive (e.g. the GitHub Advisory Database's zip) is not a usable
    /// zip file.
    #[error("advisory feed archive {}: {message}", path.display())]
    Archive {
        /// The archive.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A feed archive exceeds a limit that bounds the whole archive (its number
    /// of entries, or the bytes unpacked from all of them); nothing more was read.
    #[error("advisory feed archive {}: over {limit} ({max})", path.display())]
    ArchiveLimit {
        /// The archive.
        path: PathBuf,
        /// The limit's name, as the `FeedLimits` field: `max_entries` or `max_unpacked`.
        limit: &'static str,
        /// Its value.
        max: u64,
    },
}

/// Why [`open_regular`] refused a path.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// Opening or `fstat` failed.
    Io(std::io::Error),
    /// Not a regular file; what it is instead.
    NotRegular(&'static str),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => e.fmt(f),
            Self::NotRegular(kind) => write!(f, "not a regular file but a {kind}"),
        }
    }
}

impl OpenError {
    /// As a [`FeedError`] naming `path`.
    pub(crate) fn into_feed_error(self, path: &Path) -> FeedError {
        match self {
            Self::Io(source) => FeedError::ReadFile {
                path: path.to_owned(),
                source,
            },
            Self::NotRegular(kind) => FeedError::NotARegularFile {
                path: path.to_owned(),
                kind,
            },
        }
    }
}

/// Opens `path` for reading only if it is a regular file: opened with
/// `O_NONBLOCK` (so that opening a FIFO with no writer returns at once), then
/// checked with `fstat` on the handle, so the check is of the file actually
/// opened, not of whatever the path named a moment earlier. Reads from a
/// regular file ignore `O_NONBLOCK`.
pub(crate) fn open_regular(path: &Path) -> Result<(std::fs::File, std::fs::Metadata), OpenError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options.open(path).map_err(OpenError::Io)?;
    let metadata = file.metadata().map_err(OpenError::Io)?;
    if !metadata.is_file() {
        return Err(OpenError::NotRegular(file_kind(&metadata.file_type())));
    }
    Ok((file, metadata))
}

/// Reads the whole of a regular file (see [`open_regular`]).
pub(crate) fn read_regular(path: &Path) -> Result<Vec<u8>, OpenError> {
    use std::io::Read;
    let (mut file, metadata) = open_regular(path)?;
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0).min(1 << 30));
    file.read_to_end(&mut bytes).map_err(OpenError::Io)?;
    Ok(bytes)
}

/// Why [`read_regular_bounded`] did not return a file's bytes.
#[derive(Debug)]
pub(crate) enum BoundedReadError {
    /// Opening or reading failed, or the path is not a regular file.
    Open(OpenError),
    /// The file is larger than the bound; its size when known.
    TooLarge(u64),
}

/// Reads a regular file (see [`open_regular`]) of at most `max` bytes,
/// counting what is read (a file growing while it is read is caught too).
pub(crate) fn read_regular_bounded(path: &Path, max: u64) -> Result<Vec<u8>, BoundedReadError> {
    use std::io::Read;
    let (file, metadata) = open_regular(path).map_err(BoundedReadError::Open)?;
    if metadata.len() > max {
        return Err(BoundedReadError::TooLarge(metadata.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| BoundedReadError::Open(OpenError::Io(e)))?;
    if bytes.len() as u64 > max {
        return Err(BoundedReadError::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The largest file of OSV records read from a directory: 64 MiB, as
/// [`FeedLimits::max_entry_size`](crate::limits::FeedLimits::max_entry_size)
/// bounds one archive entry (osv.dev's largest records are a few MB).
pub const MAX_RECORD_FILE: u64 = crate::limits::MAX_ARCHIVE_ENTRY;

/// Reads a feed file given by the caller: a [`FeedError`] when it cannot be
/// read or is not a regular file.
pub(crate) fn read_feed_file(path: &Path) -> Result<Vec<u8>, FeedError> {
    read_regular(path).map_err(|e| e.into_feed_error(path))
}

/// A short name for a file type that is not a regular file.
pub(crate) fn file_kind(file_type: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "FIFO";
        }
        if file_type.is_char_device() {
            return "character device";
        }
        if file_type.is_block_device() {
            return "block device";
        }
        if file_type.is_socket() {
            return "socket";
        }
    }
    if file_type.is_dir() {
        "directory"
    } else if file_type.is_symlink() {
        "symbolic link"
    } else if file_type.is_file() {
        "regular file"
    } else {
        "special file"
    }
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
    /// Where an entry sits in a vendor feed, e.g.
    /// `packages[3] openssl secfixes "1.0.2h-r2"` or `openssl CVE-2016-2177 bookworm`.
    Entry(String),
}

impl fmt::Display for RecordRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(f, "record {id}"),
            Self::Index(i) => write!(f, "record #{i}"),
            Self::Entry(entry) => write!(f, "entry {entry}"),
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
    /// A file is not valid YAML; it was skipped.
    #[error("invalid YAML: {message}")]
    InvalidYaml {
        /// The parser's message, with line and column.
        message: String,
    },
    /// An entry of a vendor feed does not have the expected shape; it was skipped.
    #[error("unexpected entry: {message}")]
    InvalidEntry {
        /// What was expected and what was found.
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
    /// No version scheme is known for the ecosystem, so the package's ranges can
    /// never match; the record is kept (a later version of this crate may use it).
    #[error("package {package}: no version scheme for ecosystem {ecosystem:?}; it cannot match")]
    UnknownEcosystem {
        /// The affected package's name.
        package: String,
        /// The ecosystem as written in the feed.
        ecosystem: String,
    },
    /// A `GIT` range: commit hashes say nothing about package versions, so the
    /// range was skipped (the entry's other ranges and versions still count).
    #[error("package {package}: GIT range{} skipped (commit ranges cannot match package versions)", repo.as_ref().map_or_else(String::new, |r| format!(" of {r}")))]
    GitRange {
        /// The affected package's name.
        package: String,
        /// The repository the range names.
        repo: Option<String>,
    },
    /// One entry of a feed archive is over a per-entry limit (its size, or its
    /// compression ratio: a zip bomb); it was skipped unread past the limit.
    #[error("archive entry {entry}: over {limit} ({max}); skipped")]
    ArchiveEntryOverLimit {
        /// The entry's name in the archive.
        entry: String,
        /// The limit's name, as the `FeedLimits` field: `max_entry_size` or `max_ratio`.
        limit: &'static str,
        /// Its value.
        max: u64,
    },
    /// A file in a feed directory is larger than [`MAX_RECORD_FILE`]; it was
    /// skipped without being read whole.
    #[error("file of {size} bytes is over the {max}-byte limit for one feed file; skipped")]
    FileTooLarge {
        /// Its size (at least `max + 1` when it grew while being read).
        size: u64,
        /// The limit.
        max: u64,
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

/// Feed warnings counted by kind, for a summary line instead of thousands of
/// lines: the expected skips (`GIT` ranges, ecosystems without a version
/// scheme) apart from real problems.
///
/// ```
/// use trawl_advisory::feed::{FeedWarning, WarningReason, WarningSummary};
///
/// let warning = |reason| FeedWarning { path: None, record: None, reason };
/// let summary = WarningSummary::of(&[
///     warning(WarningReason::GitRange { package: "x".into(), repo: None }),
///     warning(WarningReason::UnknownEcosystem { package: "p".into(), ecosystem: "Pub".into() }),
///     warning(WarningReason::UnknownEcosystem { package: "q".into(), ecosystem: "Pub".into() }),
///     warning(WarningReason::InvalidJson { message: "eof".into() }),
/// ]);
/// assert_eq!(summary.git_ranges, 1);
/// assert_eq!(summary.unknown_ecosystems.get("Pub"), Some(&2));
/// assert_eq!(summary.other, 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WarningSummary {
    /// `GIT` ranges skipped ([`WarningReason::GitRange`]).
    pub git_ranges: usize,
    /// Affected packages in ecosystems without a version scheme
    /// ([`WarningReason::UnknownEcosystem`]), per ecosystem as written.
    pub unknown_ecosystems: std::collections::BTreeMap<String, usize>,
    /// Every other warning.
    pub other: usize,
}

impl WarningSummary {
    /// Counts `warnings`.
    pub fn of(warnings: &[FeedWarning]) -> Self {
        let mut summary = Self::default();
        for warning in warnings {
            match &warning.reason {
                WarningReason::GitRange { .. } => summary.git_ranges += 1,
                WarningReason::UnknownEcosystem { ecosystem, .. } => {
                    *summary
                        .unknown_ecosystems
                        .entry(ecosystem.clone())
                        .or_default() += 1;
                }
                _ => summary.other += 1,
            }
        }
        summary
    }

    /// Whether a warning is an expected skip, counted rather than listed.
    pub fn is_expected_skip(reason: &WarningReason) -> bool {
        matches!(
            reason,
            WarningReason::GitRange { .. } | WarningReason::UnknownEcosystem { .. }
        )
    }
}

/// Records converted from a vendor feed into the OSV model, ready for
/// [`AdvisoryDb::add_converted`](crate::AdvisoryDb::add_converted).
#[derive(Debug, Default)]
pub struct ConvertedFeed {
    /// The converted records.
    pub records: Vec<ConvertedRecord>,
    /// Files and entries that were skipped, and why.
    pub warnings: Vec<FeedWarning>,
    /// How many files were read.
    pub files: usize,
}

/// One converted record and where it came from.
#[derive(Debug, Clone)]
pub struct ConvertedRecord {
    /// The record. Its id is the vulnerability id the vendor uses (a CVE, or e.g.
    /// `XSA-207`), shared with other packages' records.
    pub advisory: Advisory,
    /// Identifies the record within all feeds (feed, release, package,
    /// vulnerability), so a feed loaded twice is not duplicated.
    pub key: String,
    /// The file it was read from.
    pub path: PathBuf,
}
