//! Errors and warnings of layer reading.

use std::io;
use std::path::PathBuf;

/// A layer could not be read. Every variant names the layer (its digest) and,
/// where known, the tar entry being read when it failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayerError {
    /// The blob itself could not be read: an I/O error, or the source's own
    /// verification failed (a digest or size mismatch reported by the reader).
    #[error("layer {layer}: reading the blob failed: {source}")]
    Read {
        /// The layer's id.
        layer: String,
        /// The underlying error (may wrap a digest-mismatch error).
        #[source]
        source: io::Error,
    },
    /// The compressed stream is corrupt or truncated.
    #[error(
        "layer {layer}: {compression} stream is corrupt or truncated{}: {source}",
        at(entry)
    )]
    Decompress {
        /// The layer's id.
        layer: String,
        /// `gzip` or `zstd`.
        compression: &'static str,
        /// The last tar entry reached before the failure.
        entry: Option<String>,
        /// The decompressor's error.
        #[source]
        source: io::Error,
    },
    /// The tar stream is malformed or ends early.
    #[error("layer {layer}: malformed or truncated tar{}: {source}", at(entry))]
    Tar {
        /// The layer's id.
        layer: String,
        /// The last tar entry reached before the failure.
        entry: Option<String>,
        /// The tar reader's error.
        #[source]
        source: io::Error,
    },
    /// The layer decompresses to more than [`crate::Limits::max_layer_size`].
    #[error("layer {layer}: decompressed size exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The layer's id.
        layer: String,
        /// The configured limit.
        limit: u64,
    },
    /// The decompressed layer does not hash to the diff_id the image config states.
    #[error(
        "layer {layer}: uncompressed content is {actual}, but the image config says {expected}"
    )]
    DiffIdMismatch {
        /// The layer's id.
        layer: String,
        /// The diff_id from the image config.
        expected: String,
        /// The digest of what was read.
        actual: String,
    },
    /// The blob, as stored, does not hash to the layer's digest (see
    /// [`crate::read_layer_verified`]).
    #[error("layer {layer}: the blob's content is {actual}, not the layer's digest")]
    BlobDigestMismatch {
        /// The layer's id: its digest.
        layer: String,
        /// The digest of what was read.
        actual: String,
    },
    /// A layer digest that is not a `sha256:` digest.
    #[error("layer {layer}: unsupported digest {digest:?} (expected sha256:<64 hex digits>)")]
    UnsupportedDigest {
        /// The layer's id.
        layer: String,
        /// The digest as given.
        digest: String,
    },
    /// A diff_id that is not a `sha256:` digest.
    #[error("layer {layer}: unsupported diff_id {diff_id:?} (expected sha256:<64 hex digits>)")]
    UnsupportedDiffId {
        /// The layer's id.
        layer: String,
        /// The diff_id as given.
        diff_id: String,
    },
    /// The layer's tar headers for one entry (PAX records, GNU long names or
    /// links, sparse maps) are larger than
    /// [`crate::Limits::max_header_ext_bytes`]; they were not read further.
    #[error(
        "layer {layer}: tar headers over the {limit}-byte limit{}",
        after(entry)
    )]
    HeaderTooLarge {
        /// The layer's id.
        layer: String,
        /// The last entry read before the oversized headers.
        entry: Option<String>,
        /// The configured limit.
        limit: u64,
    },
    /// The layer would have gone over one of the scan-wide budgets that
    /// cannot be met by dropping a single file ([`crate::Limits::max_entries`],
    /// or [`crate::Limits::max_kept_bytes`] for the paths recorded); it was
    /// not read to its end.
    #[error("layer {layer}: over the scan's {budget} budget of {limit}; layer not read to its end")]
    OverBudget {
        /// The layer's id.
        layer: String,
        /// The [`crate::Limits`] field (`max_entries`, `max_kept_bytes`).
        budget: &'static str,
        /// Its value.
        limit: u64,
    },
    /// The extraction's deadline ([`crate::Limits::deadline`]) passed before
    /// the layer was read to its end.
    #[error("layer {layer}: the scan's deadline of {}s passed; layer not read to its end", limit.as_secs_f64())]
    Deadline {
        /// The layer's id.
        layer: String,
        /// The configured deadline.
        limit: std::time::Duration,
    },
    /// A root file system directory (`dir:` source) could not be read.
    #[error("root file system {}: {source}", path.display())]
    Rootfs {
        /// The path that failed.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

fn after(entry: &Option<String>) -> String {
    entry
        .as_ref()
        .map(|e| format!(" after entry {e:?}"))
        .unwrap_or_default()
}

fn at(entry: &Option<String>) -> String {
    entry
        .as_ref()
        .map(|e| format!(" at entry {e:?}"))
        .unwrap_or_default()
}

impl LayerError {
    pub(crate) fn read(layer: &str, source: io::Error) -> Self {
        LayerError::Read {
            layer: layer.to_string(),
            source,
        }
    }

    /// Whether the error means the image is not what its digests say (the
    /// blob could not be read or failed its digest check, or the content
    /// does not match the config's diff_id), as opposed to content that is
    /// authentic but unreadable (corrupt compression, malformed tar, over a
    /// size limit). Scanners stop on the former and may go on without the
    /// layer on the latter.
    pub fn is_integrity(&self) -> bool {
        matches!(
            self,
            LayerError::Read { .. }
                | LayerError::BlobDigestMismatch { .. }
                | LayerError::UnsupportedDigest { .. }
                | LayerError::DiffIdMismatch { .. }
                | LayerError::UnsupportedDiffId { .. }
                | LayerError::Rootfs { .. }
        )
    }

    /// The id of the layer the error is about, if it is about a layer.
    pub fn layer(&self) -> Option<&str> {
        match self {
            LayerError::Read { layer, .. }
            | LayerError::Decompress { layer, .. }
            | LayerError::Tar { layer, .. }
            | LayerError::TooLarge { layer, .. }
            | LayerError::HeaderTooLarge { layer, .. }
            | LayerError::OverBudget { layer, .. }
            | LayerError::Deadline { layer, .. }
            | LayerError::BlobDigestMismatch { layer, .. }
            | LayerError::UnsupportedDigest { layer, .. }
            | LayerError::DiffIdMismatch { layer, .. }
            | LayerError::UnsupportedDiffId { layer, .. } => Some(layer),
            LayerError::Rootfs { .. } => None,
        }
    }
}

/// A problem with one entry that was skipped while the rest was read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum LayerWarning {
    /// An entry name that climbs out of the root, or is not UTF-8; it was ignored.
    #[error("layer {layer}: ignored entry with an unsafe or unreadable name {entry:?}")]
    UnsafePath {
        /// The layer's id.
        layer: String,
        /// The name as found (lossily decoded).
        entry: String,
    },
    /// A selected file larger than [`crate::Limits::max_file_size`]; not kept
    /// (it is listed by [`crate::MergedFs::dropped`]).
    #[error("layer {layer}: {path} is {size} bytes, over the {limit}-byte limit; not read")]
    FileTooLarge {
        /// The layer's id.
        layer: String,
        /// The file's path.
        path: String,
        /// Its size from the tar header.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A hard link whose target is neither in its own layer nor below it.
    #[error("layer #{layer_index}: hard link {path} points to missing {target}")]
    DanglingHardLink {
        /// Position of the layer (0 = base).
        layer_index: usize,
        /// The link's path.
        path: String,
        /// The missing target.
        target: String,
    },
    /// An entry whose path is longer than [`crate::Limits::max_path_len`];
    /// it was skipped.
    #[error(
        "layer {layer}: skipped an entry whose {len}-byte path is over the {limit}-byte limit (starts {start:?})"
    )]
    PathTooLong {
        /// The layer's id.
        layer: String,
        /// The first bytes of the path (lossily decoded).
        start: String,
        /// The path's length in bytes.
        len: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A symlink whose target is longer than
    /// [`crate::Limits::max_link_target_len`] or has more components than
    /// [`crate::Limits::max_link_components`]; it is not followed, and is
    /// listed by [`crate::MergedFs::dropped`] (what it leads to was not read).
    #[error(
        "layer {layer}: symlink {path} has a target of {len} bytes in {components} components, over the limits; not followed"
    )]
    LinkTooLong {
        /// The layer's id.
        layer: String,
        /// The link's path.
        path: String,
        /// The target's length in bytes.
        len: usize,
        /// The target's `/`-separated components.
        components: usize,
    },
    /// More warnings than [`crate::Limits::max_warnings`]: this many more
    /// were found and not listed.
    #[error("{count} more warnings not listed")]
    MoreWarnings {
        /// How many were left out.
        count: u64,
    },
    /// A file in a `dir:` root file system that could not be read.
    #[error("root file system: {path}: {reason}")]
    Unreadable {
        /// The path inside the root.
        path: String,
        /// Why it could not be read.
        reason: String,
    },
}
