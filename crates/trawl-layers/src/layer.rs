//! Reading one layer: detect the compression, stream the tar once, keep what is
//! selected, record whiteouts.
//!
//! Layers are changesets in the sense of the OCI image spec, "Representing
//! Changes" (<https://github.com/opencontainers/image-spec/blob/main/layer.md>):
//! `.wh.<name>` deletes `<name>` from the layers below, `.wh..wh..opq` hides
//! every lower entry of its directory.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{LayerError, LayerWarning};
use crate::selection::{Selection, normalize_entry};

/// Limits that bound what one scan may read and keep, whatever the input.
///
/// ```
/// let limits = trawl_layers::Limits { max_file_size: 64 << 20, ..Default::default() };
/// assert_eq!(limits.max_file_size, 64 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest selected file kept in memory; a larger one is reported, not kept.
    pub max_file_size: u64,
    /// Largest decompressed size of one layer (decompression-bomb guard).
    pub max_layer_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_size: 512 << 20,
            max_layer_size: 64 << 30,
        }
    }
}

/// How a layer blob is compressed, as found from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Compression {
    /// A plain tar stream.
    None,
    /// gzip (one or more members).
    Gzip,
    /// zstd (one or more frames, including zstd:chunked).
    Zstd,
}

impl Compression {
    /// Detects the compression from the magic bytes at the start of a blob.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Compression::None => "tar",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// One change a layer makes at a path the selection cares about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Change {
    /// A regular file and its contents.
    File(Arc<[u8]>),
    /// A symbolic link and its target, as written in the tar.
    Symlink(String),
    /// A hard link to another path, resolved at merge time against lower layers.
    HardLink(String),
    /// A directory.
    Dir,
    /// Something that is not a directory and whose contents are not kept (a file
    /// at an ancestor of a selected path, a device, a too-large file).
    Opaque,
}

/// What one layer changes, restricted to the selection. Produced by
/// [`read_layer`], combined in order by [`crate::MergedFs::from_layers`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerChanges {
    pub(crate) entries: BTreeMap<String, Change>,
    pub(crate) whiteouts: BTreeSet<String>,
    pub(crate) opaque_dirs: BTreeSet<String>,
    pub(crate) warnings: Vec<LayerWarning>,
    pub(crate) compression: Option<Compression>,
    pub(crate) uncompressed_size: u64,
}

impl LayerChanges {
    /// Number of selected or relevant entries this layer holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the layer touches nothing selected.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.whiteouts.is_empty() && self.opaque_dirs.is_empty()
    }

    /// The compression found in the blob.
    pub fn compression(&self) -> Option<Compression> {
        self.compression
    }

    /// Size of the layer's tar stream, after decompression.
    pub fn uncompressed_size(&self) -> u64 {
        self.uncompressed_size
    }

    /// Problems with single entries that did not stop the layer from being read.
    pub fn warnings(&self) -> &[LayerWarning] {
        &self.warnings
    }
}

/// Counts bytes pulled from the blob and remembers whether the blob itself
/// failed, so that a failure is blamed on the right stage.
struct Source<R> {
    inner: R,
    failed: bool,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|_| self.failed = true)
    }
}

/// Counts decompressed bytes, stops at the limit, and hashes them when the
/// layer's uncompressed digest (diff_id) is to be checked.
struct Bounded<R> {
    inner: R,
    read: u64,
    limit: u64,
    exceeded: bool,
    hasher: Option<Sha256>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            self.exceeded = true;
            return Err(io::Error::other("decompressed size limit exceeded"));
        }
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// Decompressed chunks a layer's decoding thread may run ahead by.
const CHUNKS_IN_FLIGHT: usize = 4;
const CHUNK_SIZE: usize = 1 << 20;

/// Reads the blob to its end, decompressing, and sends the output in chunks.
/// Stops early when the receiver is gone; an error is sent and ends the stream.
fn decompress_into<R: BufRead>(
    compression: Compression,
    source: &mut R,
    tx: &SyncSender<io::Result<Vec<u8>>>,
) {
    let result = (|| -> io::Result<()> {
        let mut decoder: Box<dyn Read + '_> = match compression {
            Compression::None => Box::new(&mut *source),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(&mut *source)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(&mut *source)?),
        };
        loop {
            let mut chunk = vec![0u8; CHUNK_SIZE];
            let mut filled = 0;
            while filled < chunk.len() {
                match decoder.read(&mut chunk[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if filled == 0 {
                break;
            }
            chunk.truncate(filled);
            if tx.send(Ok(chunk)).is_err() {
                return Ok(());
            }
        }
        drop(decoder);
        // The blob's last bytes (after the compressed stream), for the digest check.
        io::copy(source, &mut io::sink()).map(drop)
    })();
    if let Err(e) = result {
        let _ = tx.send(Err(e));
    }
}

/// The consuming end of [`decompress_into`].
struct ChunkReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                // The sender finished: end of stream.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Reads one layer blob (gzip, zstd or plain tar, detected by magic bytes) in a
/// single pass and returns the changes it makes to the selected paths.
///
/// `layer` names the layer in errors and warnings (its digest). The blob is
/// always read to its end, so a verifying reader (see `trawl-registry`) gets to
/// check the digest; a failure there is reported as [`LayerError::Read`].
pub fn read_layer<R: Read + Send>(
    layer: &str,
    blob: R,
    selection: &Selection,
    limits: &Limits,
) -> Result<LayerChanges, LayerError> {
    read_layer_checked(layer, None, blob, selection, limits)
}

/// [`read_layer`], also checking that the decompressed tar stream hashes to
/// `diff_id` (`sha256:…`, from the image config's `rootfs.diff_ids`); a
/// mismatch is [`LayerError::DiffIdMismatch`].
pub fn read_layer_checked<R: Read + Send>(
    layer: &str,
    diff_id: Option<&str>,
    blob: R,
    selection: &Selection,
    limits: &Limits,
) -> Result<LayerChanges, LayerError> {
    let expected = match diff_id {
        None => None,
        Some(d) => match d.strip_prefix("sha256:") {
            Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(hex.to_ascii_lowercase())
            }
            _ => {
                return Err(LayerError::UnsupportedDiffId {
                    layer: layer.to_string(),
                    diff_id: d.to_string(),
                });
            }
        },
    };
    let mut source = BufReader::with_capacity(
        256 << 10,
        Source {
            inner: blob,
            failed: false,
        },
    );
    let head = match source.fill_buf() {
        Ok(h) => h,
        Err(e) => return Err(LayerError::read(layer, e)),
    };
    let compression = Compression::detect(head);
    let mut changes = LayerChanges {
        compression: Some(compression),
        ..Default::default()
    };
    let mut last_entry: Option<String> = None;

    // Two stages overlap: a helper thread reads the blob (verifying its digest)
    // and decompresses it; this thread hashes the tar (diff_id) and walks it.
    // The channel holds a few chunks, so memory stays bounded.
    let (drained, exceeded, decompressed, actual) = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(CHUNKS_IN_FLIGHT);
        let source = &mut source;
        let producer = scope.spawn(move || decompress_into(compression, source, &tx));
        let mut bounded = Bounded {
            inner: ChunkReader {
                rx,
                chunk: Vec::new(),
                pos: 0,
            },
            read: 0,
            limit: limits.max_layer_size,
            exceeded: false,
            hasher: expected.as_ref().map(|_| Sha256::new()),
        };
        let walked = walk_tar(
            layer,
            &mut bounded,
            selection,
            limits,
            &mut changes,
            &mut last_entry,
        );
        // Drain what follows the end-of-archive marker: padding, further gzip
        // members, and the blob's last bytes, so the digest check at EOF runs.
        let drained = walked.and_then(|()| io::copy(&mut bounded, &mut io::sink()).map(drop));
        let actual = bounded.hasher.take().map(|h| hex::encode(h.finalize()));
        let (exceeded, read) = (bounded.exceeded, bounded.read);
        // Dropping the reader closes the channel: a producer still running stops.
        drop(bounded);
        // A stream that ended because its producer died is not a complete layer.
        let drained = match producer.join() {
            Ok(()) => drained,
            Err(_) => Err(io::Error::other("the decompression thread failed")),
        };
        (drained, exceeded, read, actual)
    });

    if let Err(e) = drained {
        return Err(if source.get_ref().failed {
            LayerError::read(layer, e)
        } else if exceeded {
            LayerError::TooLarge {
                layer: layer.to_string(),
                limit: limits.max_layer_size,
            }
        } else if e.kind() == io::ErrorKind::UnexpectedEof || compression == Compression::None {
            LayerError::Tar {
                layer: layer.to_string(),
                entry: last_entry,
                source: e,
            }
        } else {
            LayerError::Decompress {
                layer: layer.to_string(),
                compression: compression.name(),
                entry: last_entry,
                source: e,
            }
        });
    }
    if let (Some(expected), Some(actual)) = (expected, actual)
        && expected != actual
    {
        return Err(LayerError::DiffIdMismatch {
            layer: layer.to_string(),
            expected: format!("sha256:{expected}"),
            actual: format!("sha256:{actual}"),
        });
    }
    changes.uncompressed_size = decompressed;
    Ok(changes)
}

fn walk_tar<R: Read>(
    layer: &str,
    stream: R,
    selection: &Selection,
    limits: &Limits,
    changes: &mut LayerChanges,
    last_entry: &mut Option<String>,
) -> io::Result<()> {
    let mut archive = tar::Archive::new(stream);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw_name = entry.path_bytes();
        let Some(path) = normalize_entry(&raw_name) else {
            let shown = String::from_utf8_lossy(&raw_name).into_owned();
            *last_entry = Some(shown.clone());
            if std::str::from_utf8(&raw_name).is_ok() && !shown.trim_matches(['.', '/']).is_empty()
            {
                changes.warnings.push(LayerWarning::UnsafePath {
                    layer: layer.to_string(),
                    entry: shown,
                });
            }
            continue;
        };
        *last_entry = Some(path.clone());

        let (dir, base) = match path.rfind('/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => ("", path.as_str()),
        };
        if let Some(hidden) = base.strip_prefix(WHITEOUT_PREFIX) {
            if base == OPAQUE_MARKER {
                if dir.is_empty() || selection.is_relevant(dir) {
                    changes.opaque_dirs.insert(dir.to_string());
                }
            } else if !hidden.is_empty() {
                let target = if dir.is_empty() {
                    hidden.to_string()
                } else {
                    format!("{dir}/{hidden}")
                };
                if selection.is_relevant(&target) {
                    changes.whiteouts.insert(target);
                }
            }
            continue;
        }
        if !selection.is_relevant(&path) {
            continue;
        }
        let kind = entry.header().entry_type();
        let change = if kind.is_dir() {
            Change::Dir
        } else if kind.is_symlink() {
            match entry
                .link_name_bytes()
                .and_then(|l| String::from_utf8(l.into_owned()).ok())
            {
                Some(target) => Change::Symlink(target),
                None => Change::Opaque,
            }
        } else if kind.is_hard_link() {
            match entry.link_name_bytes().and_then(|l| normalize_entry(&l)) {
                Some(target) => match changes.entries.get(&target) {
                    Some(Change::File(data)) => Change::File(data.clone()),
                    _ => Change::HardLink(target),
                },
                None => {
                    changes.warnings.push(LayerWarning::UnsafePath {
                        layer: layer.to_string(),
                        entry: format!("{path} (hard link target)"),
                    });
                    Change::Opaque
                }
            }
        } else if (kind.is_file() || kind == tar::EntryType::Continuous) && selection.selects(&path)
        {
            let size = entry.size();
            if size > limits.max_file_size {
                changes.warnings.push(LayerWarning::FileTooLarge {
                    layer: layer.to_string(),
                    path: path.clone(),
                    size,
                    limit: limits.max_file_size,
                });
                Change::Opaque
            } else {
                // Never trust the header for the allocation: grow as bytes arrive.
                let mut data = Vec::with_capacity(size.min(1 << 20) as usize);
                (&mut entry)
                    .take(limits.max_file_size + 1)
                    .read_to_end(&mut data)?;
                Change::File(data.into())
            }
        } else {
            Change::Opaque
        };
        // A later entry for the same path replaces the earlier one, as tar extraction does.
        changes.entries.insert(path, change);
    }
    Ok(())
}
