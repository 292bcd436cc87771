//! Bounds on what downloading and unpacking a feed may cost: [`FeedLimits`],
//! used by the downloader (`fetch`) and by the readers of feed archives
//! ([`ghsa`](crate::ghsa)).

/// The default [`FeedLimits::max_download`]: 2 GiB (the tracker JSON is about
/// 100 MB, osv.dev's Debian export about 200 MB unpacked).
pub const MAX_DOWNLOAD: u64 = 2 << 30;
/// The default [`FeedLimits::max_entry_size`]: 64 MiB.
pub const MAX_ARCHIVE_ENTRY: u64 = 64 << 20;

/// Bounds on what downloading and unpacking feeds may cost; see the `fetch`
/// module's docs (cargo feature `fetch`), where a mirror takes them with
/// `FeedMirror::with_limits`. The GitHub Advisory Database's zip is read
/// within them too ([`GhsaOptions::limits`](crate::ghsa::GhsaOptions::limits)).
///
/// ```
/// use trawl_advisory::limits::FeedLimits;
///
/// let limits = FeedLimits::default();
/// assert_eq!(limits.max_download, 2 << 30);
/// assert_eq!(limits.max_entries, 1_000_000);
/// assert_eq!(limits.max_entry_size, 64 << 20);
/// assert_eq!(limits.max_unpacked, 8 << 30);
/// assert_eq!(limits.max_ratio, 100);
/// assert_eq!(limits.ratio_floor, 1 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedLimits {
    /// Bytes of one downloaded file, counted as received (2 GiB).
    pub max_download: u64,
    /// Entries (files and directories) in one OSV archive (1,000,000).
    pub max_entries: u64,
    /// Uncompressed bytes of one archive entry, counted as unpacked (64 MiB).
    pub max_entry_size: u64,
    /// Uncompressed bytes of all entries unpacked from one archive (8 GiB).
    pub max_unpacked: u64,
    /// Uncompressed bytes per compressed byte of one entry (100), checked once
    /// the entry is over [`ratio_floor`](Self::ratio_floor). Deflate gives
    /// JSON about 10; a zip bomb gives 1,000 and more.
    pub max_ratio: u64,
    /// Uncompressed bytes of an entry below which its ratio is not checked
    /// (1 MiB): small files of repetitive text compress very well, harmlessly.
    pub ratio_floor: u64,
}

impl Default for FeedLimits {
    fn default() -> Self {
        Self {
            max_download: MAX_DOWNLOAD,
            max_entries: 1_000_000,
            max_entry_size: MAX_ARCHIVE_ENTRY,
            max_unpacked: 8 << 30,
            max_ratio: 100,
            ratio_floor: 1 << 20,
        }
    }
}

/// Which of the [`FeedLimits`] was exceeded; displayed as its field name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FeedLimit {
    /// [`FeedLimits::max_download`].
    Download,
    /// [`FeedLimits::max_entries`].
    Entries,
    /// [`FeedLimits::max_entry_size`].
    EntrySize,
    /// [`FeedLimits::max_unpacked`].
    Unpacked,
    /// [`FeedLimits::max_ratio`].
    Ratio,
}

impl FeedLimit {
    /// The name of the [`FeedLimits`] field, e.g. `max_entries`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Download => "max_download",
            Self::Entries => "max_entries",
            Self::EntrySize => "max_entry_size",
            Self::Unpacked => "max_unpacked",
            Self::Ratio => "max_ratio",
        }
    }
}

impl std::fmt::Display for FeedLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
