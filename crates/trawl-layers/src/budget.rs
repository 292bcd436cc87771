//! What one scan may read, keep and spend: the per-entry [`Limits`] and the
//! scan-wide budget every layer of one extraction draws from.
//!
//! Layers are read in parallel, so the budget is a handful of atomics shared
//! by their threads. A layer that was refused something because the others
//! had used the budget up depends on them: its result is never cached.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Bounds on what one scan may read, keep and spend, whatever the input.
///
/// `max_file_size`, `max_layer_size`, `max_extract_memory`, the path and link
/// limits and `max_header_ext_bytes` apply to each entry or layer;
/// `max_kept_bytes`, `max_temp_bytes`, `max_entries` and `deadline` are one
/// budget shared by every layer of an extraction ([`crate::extract`] and its
/// variants, [`crate::read_rootfs`]); `max_warnings` bounds each layer's
/// warnings and the merged view's. Going over a limit is never unbounded
/// growth: the file is dropped ([`crate::MergedFs::dropped`]), the layer
/// fails with a typed [`crate::LayerError`], or the warning is summarised.
///
/// | limit | default |
/// |---|---|
/// | `max_file_size` | 128 MiB |
/// | `max_layer_size` | 64 GiB |
/// | `max_kept_bytes` | 192 MiB |
/// | `max_extract_memory` | 8 MiB |
/// | `max_temp_bytes` | 384 MiB |
/// | `max_entries` | 1,000,000 |
/// | `max_warnings` | 1,000 |
/// | `max_path_len` | 4,096 bytes |
/// | `max_link_target_len` | 4,096 bytes |
/// | `max_link_components` | 256 |
/// | `max_header_ext_bytes` | 1 MiB |
/// | `deadline` | 30 minutes |
///
/// ```
/// use std::time::Duration;
/// let limits = trawl_layers::Limits {
///     max_file_size: 64 << 20,
///     deadline: Some(Duration::from_secs(60)),
///     ..Default::default()
/// };
/// assert_eq!(limits.max_kept_bytes, 192 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest selected file kept in memory; a larger one is dropped (see
    /// [`crate::MergedFs::dropped`]) with a warning. Also the largest result
    /// an extractor may return.
    pub max_file_size: u64,
    /// Largest decompressed size of one layer (decompression-bomb guard).
    pub max_layer_size: u64,
    /// Scan-wide: bytes held for the scan at any time: selected files,
    /// extractor results, the paths and link targets recorded, and files
    /// handed to extractors in memory while they run. A selected file that
    /// no longer fits is dropped.
    pub max_kept_bytes: u64,
    /// Largest file handed to an extractor whole in memory
    /// ([`crate::Content::bytes`]); larger ones are spooled to disk or
    /// streamed.
    pub max_extract_memory: u64,
    /// Scan-wide: bytes spooled to the scan's temporary directory at any
    /// time (files handed to extractors as [`crate::Content::seekable`]). A
    /// file that does not fit is streamed instead.
    pub max_temp_bytes: u64,
    /// Scan-wide: paths recorded (files, links, directories, whiteouts, and
    /// the entries remembered so that a later layer's changes apply to
    /// them), and, for a `dir:` root file system, directory entries visited.
    /// A layer that goes over it fails ([`crate::LayerError::OverBudget`]).
    pub max_entries: u64,
    /// Warnings kept per layer and in the merged view; the rest are counted
    /// in one summary warning ([`crate::LayerWarning::MoreWarnings`]).
    pub max_warnings: usize,
    /// Longest entry path; a longer entry is skipped with a warning.
    pub max_path_len: usize,
    /// Longest symlink target; a longer link is recorded as unresolvable.
    pub max_link_target_len: usize,
    /// Most `/`-separated components in a symlink target; a link with more
    /// is recorded as unresolvable.
    pub max_link_components: usize,
    /// Bytes of tar headers read for one entry: its 512-byte header blocks,
    /// PAX records, GNU long names and links, sparse maps. A layer with
    /// larger headers fails ([`crate::LayerError::HeaderTooLarge`]).
    pub max_header_ext_bytes: u64,
    /// Scan-wide: wall-clock time for the whole extraction, from its start;
    /// when it passes every layer still being read stops with
    /// [`crate::LayerError::Deadline`]. `None`: no deadline.
    pub deadline: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_size: 128 << 20,
            max_layer_size: 64 << 30,
            max_kept_bytes: 192 << 20,
            max_extract_memory: 8 << 20,
            max_temp_bytes: 384 << 20,
            max_entries: 1_000_000,
            max_warnings: 1_000,
            max_path_len: 4096,
            max_link_target_len: 4096,
            max_link_components: 256,
            max_header_ext_bytes: 1 << 20,
            deadline: Some(Duration::from_secs(30 * 60)),
        }
    }
}

/// The scan-wide part of [`Limits`], shared by the layers of one extraction.
#[derive(Debug)]
pub(crate) struct Budget {
    pub(crate) limits: Limits,
    kept: AtomicU64,
    temp: AtomicU64,
    entries: AtomicU64,
    deadline: Option<Instant>,
    expired: AtomicBool,
    temp_base: Option<PathBuf>,
    temp_dir: OnceLock<Result<tempfile::TempDir, String>>,
}

/// Which scan-wide budget a request was refused from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pool {
    Kept,
    Temp,
}

impl Budget {
    /// A fresh budget; the deadline runs from now. Spooled files go to a
    /// private directory created (on first use) in `temp_base`, or in the
    /// system's temporary directory.
    pub(crate) fn new(limits: &Limits, temp_base: Option<&Path>) -> Self {
        let now = Instant::now();
        Budget {
            limits: *limits,
            kept: AtomicU64::new(0),
            temp: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            deadline: limits.deadline.map(|d| now.checked_add(d).unwrap_or(now)),
            expired: AtomicBool::new(false),
            temp_base: temp_base.map(Path::to_path_buf),
            temp_dir: OnceLock::new(),
        }
    }

    fn counter(&self, pool: Pool) -> (&AtomicU64, u64) {
        match pool {
            Pool::Kept => (&self.kept, self.limits.max_kept_bytes),
            Pool::Temp => (&self.temp, self.limits.max_temp_bytes),
        }
    }

    /// Takes `amount` from `pool` if it fits.
    pub(crate) fn reserve(&self, pool: Pool, amount: u64) -> bool {
        let (counter, limit) = self.counter(pool);
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(amount).filter(|total| *total <= limit)
            })
            .is_ok()
    }

    /// Gives `amount` back to `pool`.
    pub(crate) fn release(&self, pool: Pool, amount: u64) {
        let (counter, _) = self.counter(pool);
        let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
            Some(used.saturating_sub(amount))
        });
    }

    /// Counts `n` recorded entries; false once over `max_entries`.
    pub(crate) fn add_entries(&self, n: u64) -> bool {
        let before = self.entries.fetch_add(n, Ordering::AcqRel);
        before.saturating_add(n) <= self.limits.max_entries
    }

    /// Gives back `n` entries counted by [`add_entries`](Self::add_entries).
    pub(crate) fn remove_entries(&self, n: u64) {
        let _ = self
            .entries
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(n))
            });
    }

    /// Whether the deadline has passed (checked against the clock, and
    /// remembered once it has).
    pub(crate) fn expired(&self) -> bool {
        if self.expired.load(Ordering::Relaxed) {
            return true;
        }
        match self.deadline {
            Some(at) if Instant::now() >= at => {
                self.expired.store(true, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }

    /// A new anonymous file in the scan's private temporary directory; it is
    /// gone from the disk once dropped.
    pub(crate) fn spool_file(&self) -> std::io::Result<std::fs::File> {
        let dir = self.temp_dir.get_or_init(|| {
            let mut builder = tempfile::Builder::new();
            builder.prefix("trawl-scan-");
            match &self.temp_base {
                Some(base) => builder.tempdir_in(base),
                None => builder.tempdir(),
            }
            .map_err(|e| e.to_string())
        });
        match dir {
            Ok(dir) => tempfile::tempfile_in(dir.path()),
            Err(e) => Err(std::io::Error::other(format!(
                "cannot create the scan's temporary directory: {e}"
            ))),
        }
    }
}

/// Part of a pool held until dropped.
pub(crate) struct Reservation<'a> {
    budget: &'a Budget,
    pool: Pool,
    amount: u64,
}

impl<'a> Reservation<'a> {
    /// Reserves `amount` from `pool`, or `None` when it does not fit.
    pub(crate) fn take(budget: &'a Budget, pool: Pool, amount: u64) -> Option<Self> {
        // `then`, not `then_some`: a reservation built for nothing would
        // give back, when dropped, what it never took.
        budget.reserve(pool, amount).then(|| Reservation {
            budget,
            pool,
            amount,
        })
    }

    /// Keeps the reserved amount charged for good (memory that stays held).
    pub(crate) fn keep(mut self) {
        self.amount = 0;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.amount > 0 {
            self.budget.release(self.pool, self.amount);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_refuse_what_does_not_fit_and_take_back_releases() {
        let limits = Limits {
            max_kept_bytes: 100,
            max_temp_bytes: 10,
            max_entries: 3,
            ..Limits::default()
        };
        let b = Budget::new(&limits, None);
        let r = Reservation::take(&b, Pool::Kept, 60).unwrap();
        assert!(Reservation::take(&b, Pool::Kept, 41).is_none());
        // A refusal gives nothing back.
        assert!(Reservation::take(&b, Pool::Kept, 41).is_none());
        drop(r);
        assert!(b.reserve(Pool::Kept, 100));
        assert!(!b.reserve(Pool::Kept, 1));
        assert!(!b.reserve(Pool::Temp, 11));
        assert!(b.add_entries(3));
        assert!(!b.add_entries(1));
        assert!(!b.expired());
        let past = Budget::new(
            &Limits {
                deadline: Some(Duration::ZERO),
                ..limits
            },
            None,
        );
        assert!(past.expired());
    }
}
