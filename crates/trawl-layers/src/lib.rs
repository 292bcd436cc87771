//! Streaming layer extraction and the merged file view for Trawl.
//!
//! # Brief overview
//!
//! A container image is a stack of tar layers. Trawl never unpacks one to
//! disk: each layer is streamed once, in parallel with the others, and only
//! the files the catalogers asked for are kept in memory.
//!
//! - [`Selection`]: the paths and directory trees the catalogers need.
//! - [`read_layer`]: one layer blob (gzip, zstd or plain tar, found by its
//!   magic bytes) to the [`LayerChanges`] it makes to the selection, whiteouts
//!   included.
//! - [`extract`]: many layers read in parallel, merged in order into a
//!   [`MergedFs`].
//! - [`MergedFs`]: the final view (whiteouts and opaque directories applied,
//!   symlinks resolved inside the image root) plus, for every kept path, which
//!   layer wrote which version — the basis of layer attribution.
//! - [`read_rootfs`]: the same view of a plain directory (`dir:` sources).
//! - [`Limits`]: bounds on what any input can make the scanner read or keep.
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

mod error;
mod layer;
mod merged;
mod rootfs;
mod selection;

use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use error::{LayerError, LayerWarning};
pub use layer::{Compression, LayerChanges, Limits, read_layer};
pub use merged::{FileVersion, FileView, MergedFs};
pub use rootfs::read_rootfs;
pub use selection::{Selection, normalize};

/// One layer blob to read: its id (the digest) and a reader over its bytes.
pub struct LayerStream {
    /// The layer's id, used in the merged view and in errors.
    pub id: String,
    /// The blob, compressed or not.
    pub reader: Box<dyn Read + Send>,
}

impl LayerStream {
    /// Wraps a reader.
    pub fn new(id: impl Into<String>, reader: impl Read + Send + 'static) -> Self {
        LayerStream {
            id: id.into(),
            reader: Box::new(reader),
        }
    }
}

impl std::fmt::Debug for LayerStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerStream")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Reads every layer (in parallel, at most one thread per core) and merges them
/// in order. Stops at the first layer that cannot be read, naming it.
pub fn extract(
    layers: Vec<LayerStream>,
    selection: &Selection,
    limits: &Limits,
) -> Result<MergedFs, LayerError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    extract_with_threads(layers, selection, limits, threads)
}

/// [`extract`] with an explicit number of worker threads (1 = sequential).
pub fn extract_with_threads(
    layers: Vec<LayerStream>,
    selection: &Selection,
    limits: &Limits,
    threads: usize,
) -> Result<MergedFs, LayerError> {
    let ids: Vec<String> = layers.iter().map(|l| l.id.clone()).collect();
    let jobs: Vec<Mutex<Option<LayerStream>>> =
        layers.into_iter().map(|l| Mutex::new(Some(l))).collect();
    let results: Vec<Mutex<Option<Result<LayerChanges, LayerError>>>> =
        jobs.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = jobs.get(i) else { break };
            let Some(job) = slot.lock().ok().and_then(|mut j| j.take()) else {
                continue;
            };
            let result = read_layer(&job.id, job.reader, selection, limits);
            if let Ok(mut r) = results[i].lock() {
                *r = Some(result);
            }
        }
    };
    let threads = threads.clamp(1, ids.len().max(1));
    if threads == 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(work);
            }
        });
    }
    let mut merged = Vec::with_capacity(ids.len());
    for (id, result) in ids.into_iter().zip(results) {
        let result = result.into_inner().ok().flatten().unwrap_or_else(|| {
            Err(LayerError::Read {
                layer: id.clone(),
                source: std::io::Error::other("layer worker did not finish"),
            })
        });
        merged.push((id, result?));
    }
    Ok(MergedFs::from_layers(merged))
}
