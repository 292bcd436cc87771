//! Per-layer result cache, keyed by (layer diff_id, selection, limits).
//!
//! Images share base layers; what a layer contributes to a given selection
//! never changes, so it is read once and remembered — in memory for the
//! process, and optionally on disk across processes. Concurrent scans that
//! need the same layer wait for one read instead of decompressing it twice.
//!
//! An on-disk entry is `MAGIC ‖ sha256(payload) ‖ payload`, the payload being
//! the [`LayerChanges`] encoded with `postcard`. Entries are written to a
//! temporary file and renamed into place (readers never see half an entry),
//! and checked on read: a corrupt or truncated entry is deleted, counted and
//! rebuilt from the layer.
//!
//! A result that a scan-wide budget limited ([`LayerChanges::is_budget_limited`])
//! depends on the other layers of that scan: it is neither stored nor served.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};

use crate::budget::{Budget, Limits, Pool};
use crate::error::LayerError;
use crate::layer::LayerChanges;
use crate::selection::Selection;

/// Format 2: regular files carry extraction results and drop reasons;
/// unrecorded entries are fingerprinted.
const MAGIC: &[u8; 8] = b"TRAWLLC\x02";
/// Largest on-disk entry read back (an entry holds selected files only).
const MAX_ENTRY: u64 = 4 << 30;

type Cell = Arc<OnceLock<Option<Arc<LayerChanges>>>>;

/// Remembers what layers contribute to a selection. Cheap to share: wrap it in
/// an `Arc` and hand it to every scan.
///
/// ```
/// use trawl_layers::{LayerCache, Limits, Selection};
/// let dir = tempfile::tempdir().unwrap();
/// let cache = LayerCache::with_dir(dir.path()).unwrap();
/// let key = LayerCache::key("sha256:0000000000000000000000000000000000000000000000000000000000000000",
///                           &Selection::new().with_path("etc/os-release"), &Limits::default());
/// assert_eq!(key.len(), 64);
/// assert_eq!(cache.stats().misses, 0);
/// ```
#[derive(Debug)]
pub struct LayerCache {
    dir: Option<PathBuf>,
    max_memory: u64,
    inner: Mutex<Memory>,
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    misses: AtomicU64,
    corrupt: AtomicU64,
}

#[derive(Debug, Default)]
struct Memory {
    cells: HashMap<String, Cell>,
    /// Keys of filled cells, oldest first, with their approximate size.
    order: VecDeque<(String, u64)>,
    bytes: u64,
}

/// What [`LayerCache::prune`] removed and kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Entries removed (least recently used first).
    pub removed_entries: u64,
    /// Their bytes.
    pub removed_bytes: u64,
    /// Temporary files left by interrupted writes, removed.
    pub removed_temporary: u64,
    /// Entries kept.
    pub kept_entries: u64,
    /// Their bytes (at most the limit, unless one entry alone is larger).
    pub kept_bytes: u64,
}

/// Counters of how the cache has been used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Layers served from memory.
    pub memory_hits: u64,
    /// Layers served from the disk cache.
    pub disk_hits: u64,
    /// Layers that had to be read.
    pub misses: u64,
    /// Disk entries found corrupt (deleted and rebuilt).
    pub corrupt_entries: u64,
}

impl Default for LayerCache {
    fn default() -> Self {
        Self::in_memory()
    }
}

impl LayerCache {
    /// A cache that lives as long as the process (at most 256 MiB of kept file contents).
    pub fn in_memory() -> Self {
        LayerCache {
            dir: None,
            max_memory: 256 << 20,
            inner: Mutex::default(),
            memory_hits: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            corrupt: AtomicU64::new(0),
        }
    }

    /// A cache that also keeps entries in `dir` (created if missing).
    pub fn with_dir(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(LayerCache {
            dir: Some(dir),
            ..Self::in_memory()
        })
    }

    /// Caps the memory part (approximate bytes of kept contents); the oldest
    /// entries are dropped first.
    pub fn with_memory_limit(mut self, bytes: u64) -> Self {
        self.max_memory = bytes;
        self
    }

    /// The on-disk directory, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// How the cache has been used so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            corrupt_entries: self.corrupt.load(Ordering::Relaxed),
        }
    }

    /// Bounds the on-disk part to `max_bytes`: entries are removed least
    /// recently used first (an entry's modification time is refreshed each
    /// time it is read) until the rest fits, and temporary files that
    /// interrupted writes left behind for over an hour are removed. Files that
    /// are not cache entries are left alone. Safe while other scans use the
    /// cache, in this process or another: an entry removed under a reader is
    /// simply read from its layer again. Does nothing for an in-memory cache.
    ///
    /// ```
    /// use trawl_layers::LayerCache;
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = LayerCache::with_dir(dir.path()).unwrap();
    /// let pruned = cache.prune(64 << 20).unwrap();
    /// assert_eq!((pruned.removed_entries, pruned.kept_entries), (0, 0));
    /// ```
    pub fn prune(&self, max_bytes: u64) -> io::Result<Pruned> {
        let mut pruned = Pruned::default();
        let Some(dir) = &self.dir else {
            return Ok(pruned);
        };
        let now = std::time::SystemTime::now();
        let mut entries = Vec::new();
        for item in fs::read_dir(dir)? {
            let item = match item {
                Ok(item) => item,
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "layer cache directory entry unreadable");
                    continue;
                }
            };
            let name = item.file_name();
            let Some(name) = name.to_str() else { continue };
            // Entries only: a symlink or directory is never followed or removed.
            let Ok(meta) = item.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            if is_entry_name(name) {
                entries.push((modified, name.to_string(), meta.len()));
            } else if name.starts_with(".tmp")
                && now
                    .duration_since(modified)
                    .is_ok_and(|age| age > std::time::Duration::from_secs(3600))
                && remove(&item.path())
            {
                pruned.removed_temporary += 1;
            }
        }
        let mut total: u64 = entries.iter().map(|e| e.2).sum();
        // Oldest first; the name breaks ties so the order is deterministic.
        entries.sort();
        for (_, name, len) in entries {
            if total > max_bytes && remove(&dir.join(&name)) {
                total -= len;
                pruned.removed_entries += 1;
                pruned.removed_bytes += len;
            } else {
                pruned.kept_entries += 1;
                pruned.kept_bytes += len;
            }
        }
        Ok(pruned)
    }

    /// The cache key of a layer for a selection: what is kept depends on the
    /// layer's uncompressed content (diff_id), the selection (paths,
    /// prefixes, globs, extractor ids) and the per-entry limits.
    pub fn key(diff_id: &str, selection: &Selection, limits: &Limits) -> String {
        Self::key_with(b"trawl-layer-cache-v3\0", diff_id, selection, limits)
    }

    /// The cache key of a layer for a selection by the layer's blob digest
    /// (`sha256:…`, as in the manifest), for layers read with
    /// [`read_layer_verified`](crate::read_layer_verified), which checks the
    /// blob against it: what is kept depends on the blob, the selection and
    /// the per-entry limits. Never equal to a [`key`](Self::key).
    pub fn blob_key(digest: &str, selection: &Selection, limits: &Limits) -> String {
        Self::key_with(b"trawl-layer-cache-v3\0blob\0", digest, selection, limits)
    }

    fn key_with(namespace: &[u8], id: &str, selection: &Selection, limits: &Limits) -> String {
        let mut h = Sha256::new();
        h.update(namespace);
        h.update(id.as_bytes());
        for p in selection.paths() {
            h.update(b"\0p");
            h.update(p.as_bytes());
        }
        for p in selection.prefixes() {
            h.update(b"\0d");
            h.update(p.as_bytes());
        }
        for g in selection.globs() {
            h.update(b"\0g");
            h.update(g.as_bytes());
        }
        let mut ids: Vec<&str> = selection.extractors().map(|x| x.id()).collect();
        ids.sort_unstable();
        for id in ids {
            h.update(b"\0x");
            h.update(id.as_bytes());
        }
        // Every limit that can change what one layer yields on its own (the
        // scan-wide budgets and the deadline only limit results that are
        // never cached).
        h.update(b"\0l");
        for n in [
            limits.max_file_size,
            limits.max_extract_memory,
            limits.max_temp_bytes,
            limits.max_kept_bytes,
            limits.max_warnings as u64,
            limits.max_path_len as u64,
            limits.max_link_target_len as u64,
            limits.max_link_components as u64,
            limits.max_header_ext_bytes,
        ] {
            h.update(n.to_le_bytes());
        }
        hex::encode(h.finalize())
    }

    /// The changes for `key`: from memory, else from disk, else by running
    /// `read` (once, however many threads ask at the same time). A stored
    /// result is charged to `budget`; when it does not fit, or when another
    /// scan's read was limited by its budget, the layer is read again here,
    /// under this scan's budget. Budget-limited results are not kept.
    pub(crate) fn get_or_read(
        &self,
        key: &str,
        budget: &Budget,
        read: impl FnOnce() -> Result<LayerChanges, LayerError>,
    ) -> Result<Arc<LayerChanges>, LayerError> {
        let cell = {
            let mut mem = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            mem.cells.entry(key.to_string()).or_default().clone()
        };
        let mut failure = None;
        let mut filled_here = false;
        let mut read_here = false;
        let mut read = Some(read);
        let value = cell.get_or_init(|| {
            filled_here = true;
            if let Some(c) = self.load(key) {
                self.disk_hits.fetch_add(1, Ordering::Relaxed);
                return Some(Arc::new(c));
            }
            self.misses.fetch_add(1, Ordering::Relaxed);
            let read = read.take()?;
            read_here = true;
            match read() {
                Ok(c) => {
                    if !c.is_budget_limited()
                        && let Err(e) = self.store(key, &c)
                    {
                        tracing::warn!(key, error = %e, "could not write layer cache entry");
                    }
                    Some(Arc::new(c))
                }
                Err(e) => {
                    failure = Some(e);
                    None
                }
            }
        });
        match value {
            Some(changes) if changes.is_budget_limited() => {
                let changes = changes.clone();
                self.forget(key, &cell);
                match read.take() {
                    // Another scan's result, limited by its budget: not ours.
                    Some(read) => read().map(Arc::new),
                    None => Ok(changes),
                }
            }
            Some(changes) => {
                if filled_here {
                    self.remember(key, changes);
                } else {
                    self.memory_hits.fetch_add(1, Ordering::Relaxed);
                }
                if !read_here && !admit(budget, changes) {
                    // Read under this scan's budget instead; such a result is
                    // not kept.
                    if let Some(read) = read.take() {
                        return read().map(Arc::new);
                    }
                }
                Ok(changes.clone())
            }
            None => {
                self.forget(key, &cell);
                match (failure, read.take()) {
                    (Some(e), _) => Err(e),
                    // Another thread's read failed (its error is reported there);
                    // the failure may have been its own, so read the layer ourselves.
                    (None, Some(read)) => read().map(Arc::new),
                    (None, None) => Err(LayerError::Read {
                        layer: key.to_string(),
                        source: io::Error::other("layer read failed"),
                    }),
                }
            }
        }
    }

    fn remember(&self, key: &str, changes: &LayerChanges) {
        let size = approximate_size(changes);
        let mut mem = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        mem.order.push_back((key.to_string(), size));
        mem.bytes += size;
        while mem.bytes > self.max_memory && mem.order.len() > 1 {
            let Some((old, old_size)) = mem.order.pop_front() else {
                break;
            };
            mem.cells.remove(&old);
            mem.bytes = mem.bytes.saturating_sub(old_size);
        }
    }

    fn forget(&self, key: &str, cell: &Cell) {
        let mut mem = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if mem.cells.get(key).is_some_and(|c| Arc::ptr_eq(c, cell)) {
            mem.cells.remove(key);
        }
    }

    fn path(&self, key: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{key}.layer")))
    }

    fn load(&self, key: &str) -> Option<LayerChanges> {
        let path = self.path(key)?;
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "layer cache entry unreadable");
                return None;
            }
        };
        // Read means used: pruning removes the least recently used first.
        let _ = file.set_modified(std::time::SystemTime::now());
        let mut bytes = Vec::new();
        let decoded = file
            .take(MAX_ENTRY)
            .read_to_end(&mut bytes)
            .ok()
            .and_then(|_| decode(&bytes));
        if decoded.is_none() {
            self.corrupt.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(path = %path.display(), "corrupt layer cache entry ignored; rebuilding it");
            let _ = fs::remove_file(&path);
        }
        decoded
    }

    fn store(&self, key: &str, changes: &LayerChanges) -> io::Result<()> {
        let Some(path) = self.path(key) else {
            return Ok(());
        };
        let payload = postcard::to_allocvec(changes).map_err(io::Error::other)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(MAGIC)?;
        tmp.write_all(&Sha256::digest(&payload))?;
        tmp.write_all(&payload)?;
        tmp.as_file().sync_data()?;
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// `<64 hex digits>.layer`, the names [`LayerCache`] gives its entries.
fn is_entry_name(name: &str) -> bool {
    name.strip_suffix(".layer")
        .is_some_and(|key| key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Removes a file; one already gone counts as removed by someone else.
fn remove(path: &Path) -> bool {
    match fs::remove_file(path) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove layer cache file");
            false
        }
    }
}

fn decode(bytes: &[u8]) -> Option<LayerChanges> {
    let rest = bytes.strip_prefix(MAGIC)?;
    if rest.len() < 32 {
        return None;
    }
    let (sum, payload) = rest.split_at(32);
    if Sha256::digest(payload).as_slice() != sum {
        return None;
    }
    postcard::from_bytes(payload).ok()
}

fn approximate_size(changes: &LayerChanges) -> u64 {
    changes.held_bytes() + 8 * changes.recorded() + 64
}

/// Charges a stored result to a scan's budget: false when it does not fit.
fn admit(budget: &Budget, changes: &LayerChanges) -> bool {
    let bytes = changes.held_bytes();
    if !budget.reserve(Pool::Kept, bytes) {
        return false;
    }
    if !budget.add_entries(changes.recorded()) {
        budget.remove_entries(changes.recorded());
        budget.release(Pool::Kept, bytes);
        return false;
    }
    true
}
