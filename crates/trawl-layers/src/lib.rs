//! Streaming layer extraction and the merged file view for Trawl.
//!
//! # Brief overview
//!
//! A container image is a stack of tar layers. Trawl never unpacks one to
//! disk: each layer is streamed once, in parallel with the others, and only
//! the files the catalogers asked for are kept in memory.
//!
//! - [`Selection`]: the paths, directory trees and glob patterns the
//!   catalogers need, and the [`Extractor`]s that read large files (binaries,
//!   archives) while they stream, keeping only a small result.
//! - [`read_layer`]: one layer blob (gzip, zstd or plain tar, found by its
//!   magic bytes) to the [`LayerChanges`] it makes to the selection, whiteouts
//!   included.
//! - [`extract`]: many layers read in parallel, merged in order into a
//!   [`MergedFs`].
//! - [`MergedFs`]: the final view (whiteouts and opaque directories applied,
//!   symlinks resolved inside the image root) plus, for every kept path, which
//!   layer wrote which version — the basis of layer attribution.
//! - [`read_rootfs`]: the same view of a plain directory (`dir:` sources).
//! - [`Limits`]: bounds on what any input can make the scanner read, keep
//!   or spend: per entry, and one budget shared by every layer of a scan
//!   (memory, temporary disk, entries, warnings, a deadline). Whatever a
//!   limit stops is visible: a dropped file ([`MergedFs::dropped`]), a typed
//!   [`LayerError`], or a summary warning.
//! - [`LayerCache`]: what each layer contributed, keyed by (layer digest or
//!   diff_id, selection), in memory and optionally on disk, so shared base
//!   layers are read once; [`extract_with`] uses it.
//!
//! # Globs and extractors
//!
//! Language packages sit anywhere in an image, so a [`Selection`] also takes
//! glob patterns (`**/node_modules/*/package.json`: such small files are kept
//! whole, like exact paths) and [`Extractor`]s, which see every regular
//! file's path, size and mode, sniff the leading bytes of those they want,
//! and read the content the reader can afford ([`Content`]) while the layer
//! streams, keeping only a small result ([`MergedFs::extracted`]). With
//! either, whiteouts, opaque directories and symlinks are recorded for every
//! path, so deletions and links apply to matches anywhere.
//!
//! # Budget
//!
//! [`Limits`] bounds each entry and, shared by every layer of one
//! extraction, the memory held, the temporary disk used, the entries
//! recorded and the time spent. What a limit stops is never silent: a
//! selected file that was not kept is listed by [`MergedFs::dropped`], a
//! layer that could not be read to its end fails with a typed
//! [`LayerError`] ([`extract_partial`] goes on without it), and warnings
//! beyond the cap are counted in one summary.
//!
//! # Verification
//!
//! A layer is read once, as a stream, and checked as it streams. What is
//! checked depends on how the layer is named:
//!
//! - A [`LayerStream`] whose id is the blob's digest (`sha256:…`, as in the
//!   manifest) is checked against that digest: the blob's bytes, as stored,
//!   are hashed ([`read_layer_verified`]), and the layer is cached under that
//!   digest. Its diff_id is not hashed. The digest already pins the blob, and
//!   with it the tar it decompresses to; the diff_id (the tar's own digest,
//!   from the image config) would only check that the config agrees with the
//!   blob, at the price of hashing the tar, which is several times larger
//!   than the blob: for zstd layers, which decompress fast, that hashing
//!   cost more than decompressing. A blob that is not its digest is an
//!   integrity error ([`LayerError::BlobDigestMismatch`]), and what it held is
//!   never cached.
//! - Any other layer is checked against its diff_id, when it has one
//!   ([`read_layer_checked`]), and cached under the diff_id.
//!
//! Either way a cache entry is only ever filled from content that matched
//! its key, so an image cannot plant an entry that another image's layer
//! would then be answered from: a hostile layer that claims a popular base
//! layer's diff_id is cached under its own blob digest, which it cannot
//! share with the real one. (Sources that verify blobs themselves, as
//! `trawl-registry` does, make the blob digest checked twice; that second
//! hash is of the compressed bytes only, and keeps the cache safe with any
//! reader.)
//!
//! ```
//! use trawl_layers::{extract, LayerStream, Limits, Selection};
//!
//! fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
//!     let mut tar = tar::Builder::new(Vec::new());
//!     for (path, data) in files {
//!         let mut h = tar::Header::new_gnu();
//!         h.set_size(data.len() as u64);
//!         h.set_cksum();
//!         tar.append_data(&mut h, path, *data).unwrap();
//!     }
//!     tar.into_inner().unwrap()
//! }
//! let base = layer(&[("etc/motd", b"hello"), ("etc/issue", b"Debian")]);
//! let top = layer(&[("etc/.wh.motd", b"")]);
//! let layers = vec![
//!     LayerStream::new("sha256:base", std::io::Cursor::new(base)),
//!     LayerStream::new("sha256:top", std::io::Cursor::new(top)),
//! ];
//! let sel = Selection::new().with_prefix("etc");
//! let fs = extract(layers, &sel, &Limits::default()).unwrap();
//! assert!(fs.file("etc/motd").is_none());
//! assert_eq!(fs.file("etc/issue").unwrap().layer, Some("sha256:base"));
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod budget;
mod cache;
mod error;
mod extractor;
mod layer;
mod merged;
mod rootfs;
mod selection;

use std::io::{self, Read};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use budget::Limits;
pub use cache::{CacheStats, LayerCache, Pruned};
pub use error::{LayerError, LayerWarning};
pub use extractor::{Content, EntryInfo, Extractor, ReadSeek};
pub use layer::{Compression, LayerChanges, read_layer, read_layer_checked, read_layer_verified};
pub use merged::{Dropped, Extracted, FileVersion, FileView, MergedFs};
pub use rootfs::read_rootfs;
pub use selection::{GlobError, Selection, normalize};

use budget::Budget;

type Opener<'a> = Box<dyn FnOnce() -> io::Result<Box<dyn Read + Send + 'a>> + Send + 'a>;

/// One layer to read: its id (the blob digest), its diff_id when known, and
/// how to open its blob. Opening is deferred so a cached layer is never opened.
pub struct LayerStream<'a> {
    /// The layer's id, used in the merged view and in errors. When it is a
    /// `sha256:` digest it is taken as the blob's digest, and checked (see
    /// [Verification](crate#verification)).
    pub id: String,
    /// The uncompressed digest from the image config: checked while reading,
    /// and the cache key, unless the id is the blob's digest (see
    /// [Verification](crate#verification)).
    pub diff_id: Option<String>,
    /// The blob's size in bytes, when the source says: shown in the
    /// layer's tracing span.
    size: Option<u64>,
    open: Opener<'a>,
}

impl<'a> LayerStream<'a> {
    /// A layer whose blob is already open.
    pub fn new(id: impl Into<String>, reader: impl Read + Send + 'a) -> Self {
        Self::lazy(
            id,
            move || Ok(Box::new(reader) as Box<dyn Read + Send + 'a>),
        )
    }

    /// A layer opened only if it has to be read.
    pub fn lazy(
        id: impl Into<String>,
        open: impl FnOnce() -> io::Result<Box<dyn Read + Send + 'a>> + Send + 'a,
    ) -> Self {
        LayerStream {
            id: id.into(),
            diff_id: None,
            size: None,
            open: Box::new(open),
        }
    }

    /// Sets the diff_id (`sha256:…` of the uncompressed tar).
    pub fn with_diff_id(mut self, diff_id: impl Into<String>) -> Self {
        self.diff_id = Some(diff_id.into());
        self
    }

    /// Sets the blob's size in bytes (from the manifest), for diagnostics:
    /// it is a field of the layer's `layer` tracing span.
    pub fn with_size(mut self, size: u64) -> Self {
        self.size = Some(size);
        self
    }

    /// Whether the id is a blob digest, which reading then verifies: see
    /// [Verification](crate#verification).
    fn is_digest(&self) -> bool {
        layer::sha256_hex(&self.id).is_some()
    }

    /// The cache key: by the blob's digest when the id is one (verified as
    /// the layer is read), else by the diff_id (verified as well).
    fn cache_key(&self, selection: &Selection, limits: &Limits) -> Option<String> {
        if self.is_digest() {
            Some(LayerCache::blob_key(&self.id, selection, limits))
        } else {
            let diff_id = self.diff_id.as_deref()?;
            Some(LayerCache::key(diff_id, selection, limits))
        }
    }

    fn read(self, selection: &Selection, budget: &Budget) -> Result<LayerChanges, LayerError> {
        if budget.expired() {
            // Not even opened: a source may block on opening.
            return Err(LayerError::Deadline {
                layer: self.id,
                limit: budget.limits.deadline.unwrap_or_default(),
            });
        }
        if self.is_digest() {
            // The blob's digest pins the content; a diff_id must still be one.
            if let Some(diff_id) = &self.diff_id {
                layer::parse_diff_id(&self.id, diff_id)?;
            }
            let blob = (self.open)().map_err(|e| LayerError::read(&self.id, e))?;
            layer::read_layer_verified_in(&self.id, &self.id, blob, selection, budget)
        } else {
            let blob = (self.open)().map_err(|e| LayerError::read(&self.id, e))?;
            layer::read_layer_checked_in(&self.id, self.diff_id.as_deref(), blob, selection, budget)
        }
    }
}

impl std::fmt::Debug for LayerStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerStream")
            .field("id", &self.id)
            .field("diff_id", &self.diff_id)
            .finish_non_exhaustive()
    }
}

/// How [`extract_with`] reads layers.
#[derive(Debug, Clone, Copy)]
pub struct ExtractOptions<'c> {
    /// Worker threads (layers are read in parallel); at least 1.
    pub threads: usize,
    /// The per-layer cache to consult and fill (layers with a diff_id only).
    pub cache: Option<&'c LayerCache>,
    /// Where the scan's private temporary directory (files spooled for
    /// extractors, within [`Limits::max_temp_bytes`]) is created; it is
    /// removed when the extraction ends. `None`: the system's temporary
    /// directory.
    pub temp_dir: Option<&'c Path>,
}

impl Default for ExtractOptions<'_> {
    fn default() -> Self {
        ExtractOptions {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cache: None,
            temp_dir: None,
        }
    }
}

/// Reads every layer (in parallel, at most one thread per core) and merges them
/// in order. Stops at the first layer that cannot be read, naming it.
pub fn extract(
    layers: Vec<LayerStream<'_>>,
    selection: &Selection,
    limits: &Limits,
) -> Result<MergedFs, LayerError> {
    extract_with(layers, selection, limits, ExtractOptions::default())
}

/// [`extract`] with an explicit number of worker threads (1 = sequential).
pub fn extract_with_threads(
    layers: Vec<LayerStream<'_>>,
    selection: &Selection,
    limits: &Limits,
    threads: usize,
) -> Result<MergedFs, LayerError> {
    extract_with(
        layers,
        selection,
        limits,
        ExtractOptions {
            threads,
            ..ExtractOptions::default()
        },
    )
}

/// [`extract`] with explicit options: thread count and a layer cache.
pub fn extract_with(
    layers: Vec<LayerStream<'_>>,
    selection: &Selection,
    limits: &Limits,
    options: ExtractOptions<'_>,
) -> Result<MergedFs, LayerError> {
    let mut merged = Vec::new();
    for (id, result) in read_layers(layers, selection, limits, options) {
        merged.push((id, result?));
    }
    Ok(MergedFs::from_layers_with_limits(merged, limits))
}

/// Like [`extract_with`], but a layer whose *content* cannot be read (a
/// corrupt or truncated compressed stream, a malformed tar, a layer over the
/// size limit) is left out of the merge instead of failing it; those layers'
/// errors are returned beside the merged view, in layer order. The view is
/// then incomplete (a file the skipped layer wrote, replaced or deleted may
/// be missing or stale), so callers must not treat its results as complete.
///
/// Integrity failures still stop the extraction: a blob that cannot be read
/// or does not match its digest, and a diff_id mismatch, mean the image is not
/// the one that was asked for (see [`LayerError::is_integrity`]).
///
/// ```
/// use trawl_layers::{extract_partial, ExtractOptions, LayerStream, Limits, Selection};
///
/// let selection = Selection::new().with_path("etc/os-release");
/// let good = tar_with("etc/os-release", b"ID=alpine\n");
/// let layers = vec![
///     LayerStream::new("sha256:bad", &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1, 2][..]),
///     LayerStream::new("sha256:good", &good[..]),
/// ];
/// let (fs, skipped) =
///     extract_partial(layers, &selection, &Limits::default(), ExtractOptions::default())?;
/// assert_eq!(fs.file("etc/os-release").unwrap().data, b"ID=alpine\n");
/// assert_eq!(skipped.len(), 1);
/// assert_eq!(skipped[0].layer(), Some("sha256:bad"));
/// # fn tar_with(path: &str, data: &[u8]) -> Vec<u8> {
/// #     let mut b = tar::Builder::new(Vec::new());
/// #     let mut h = tar::Header::new_gnu();
/// #     h.set_size(data.len() as u64);
/// #     h.set_mode(0o644);
/// #     h.set_cksum();
/// #     b.append_data(&mut h, path, data).unwrap();
/// #     b.into_inner().unwrap()
/// # }
/// # Ok::<(), trawl_layers::LayerError>(())
/// ```
pub fn extract_partial(
    layers: Vec<LayerStream<'_>>,
    selection: &Selection,
    limits: &Limits,
    options: ExtractOptions<'_>,
) -> Result<(MergedFs, Vec<LayerError>), LayerError> {
    let mut merged = Vec::new();
    let mut skipped = Vec::new();
    for (id, result) in read_layers(layers, selection, limits, options) {
        match result {
            Ok(changes) => merged.push((id, changes)),
            Err(e) if e.is_integrity() => return Err(e),
            Err(e) => {
                tracing::warn!("{e}; continuing without this layer");
                skipped.push(e);
            }
        }
    }
    Ok((MergedFs::from_layers_with_limits(merged, limits), skipped))
}

/// Reads every layer (in parallel, under one budget) and returns each
/// one's result, in order.
fn read_layers(
    layers: Vec<LayerStream<'_>>,
    selection: &Selection,
    limits: &Limits,
    options: ExtractOptions<'_>,
) -> Vec<(String, Result<LayerChanges, LayerError>)> {
    let budget = Budget::new(limits, options.temp_dir);
    let budget = &budget;
    let ids: Vec<String> = layers.iter().map(|l| l.id.clone()).collect();
    let jobs: Vec<Mutex<Option<LayerStream<'_>>>> =
        layers.into_iter().map(|l| Mutex::new(Some(l))).collect();
    let results: Vec<Mutex<Option<Result<LayerChanges, LayerError>>>> =
        jobs.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    // The workers report to the caller's subscriber, under the caller's span.
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    let parent = tracing::Span::current();
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = jobs.get(i) else { break };
            let Some(job) = slot.lock().ok().and_then(|mut j| j.take()) else {
                continue;
            };
            let span = tracing::debug_span!(
                parent: &parent,
                "layer",
                index = i,
                digest = %job.id,
                size = job.size,
                cached = tracing::field::Empty,
            );
            let _entered = span.enter();
            let mut read = false;
            let result = match (options.cache, job.cache_key(selection, limits)) {
                (Some(cache), Some(key)) => cache
                    .get_or_read(&key, budget, || {
                        read = true;
                        job.read(selection, budget)
                    })
                    .map(|c| (*c).clone()),
                _ => {
                    read = true;
                    job.read(selection, budget)
                }
            };
            span.record("cached", !read);
            if let Ok(mut r) = results[i].lock() {
                *r = Some(result);
            }
        }
    };
    let threads = options.threads.clamp(1, ids.len().max(1));
    if threads == 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| tracing::dispatcher::with_default(&dispatch, work));
            }
        });
    }
    ids.into_iter()
        .zip(results)
        .map(|(id, result)| {
            let result = result.into_inner().ok().flatten().unwrap_or_else(|| {
                Err(LayerError::Read {
                    layer: id.clone(),
                    source: io::Error::other("layer worker did not finish"),
                })
            });
            (id, result)
        })
        .collect()
}
