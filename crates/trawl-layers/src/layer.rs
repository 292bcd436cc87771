//! Reading one layer: detect the compression, stream the tar once, keep what is
//! selected, record whiteouts.
//!
//! Layers are changesets in the sense of the OCI image spec, "Representing
//! Changes" (<https://github.com/opencontainers/image-spec/blob/main/layer.md>):
//! `.wh.<name>` deletes `<name>` from the layers below, `.wh..wh..opq` hides
//! every lower entry of its directory.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

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

/// Size of the blocks the blob is read in.
const BLOCK_SIZE: usize = 256 << 10;
/// Size of the decompressed chunks handed to the tar walk.
const CHUNK_SIZE: usize = 256 << 10;
/// Blocks, and chunks, one stage may run ahead of the next: memory stays
/// bounded (a few MiB per layer) whatever the layer's size.
const IN_FLIGHT: usize = 4;

/// A filled buffer travelling between stages: the bytes are `buf[..len]`.
/// Buffers go back to the stage that filled them once read, so a layer
/// allocates (and zeroes) a handful of them, not one per megabyte.
struct Filled {
    buf: Vec<u8>,
    len: usize,
}

/// What a layer read checks besides its content being readable.
#[derive(Debug, Clone, Default)]
struct Expect {
    /// Lowercase hex SHA-256 of the blob as stored (compressed).
    blob: Option<String>,
    /// Lowercase hex SHA-256 of the tar stream (the diff_id).
    tar: Option<String>,
}

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
    read_layer_expecting(layer, Expect::default(), blob, selection, limits)
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
    let expect = Expect {
        blob: None,
        tar: diff_id.map(|d| parse_diff_id(layer, d)).transpose()?,
    };
    read_layer_expecting(layer, expect, blob, selection, limits)
}

/// [`read_layer`], also checking that the blob itself, as stored (compressed),
/// hashes to `digest` (`sha256:…`, the layer's digest in the manifest); a
/// mismatch is [`LayerError::BlobDigestMismatch`]. The tar stream is not
/// hashed: the blob's digest already pins it (see the crate docs on
/// verification).
pub fn read_layer_verified<R: Read + Send>(
    layer: &str,
    digest: &str,
    blob: R,
    selection: &Selection,
    limits: &Limits,
) -> Result<LayerChanges, LayerError> {
    let Some(hex) = sha256_hex(digest) else {
        return Err(LayerError::UnsupportedDigest {
            layer: layer.to_string(),
            digest: digest.to_string(),
        });
    };
    let expect = Expect {
        blob: Some(hex),
        tar: None,
    };
    read_layer_expecting(layer, expect, blob, selection, limits)
}

/// The lowercase hex of a `sha256:<64 hex digits>` digest.
pub(crate) fn sha256_hex(digest: &str) -> Option<String> {
    match digest.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(hex.to_ascii_lowercase())
        }
        _ => None,
    }
}

/// The diff_id's hex, or [`LayerError::UnsupportedDiffId`].
pub(crate) fn parse_diff_id(layer: &str, diff_id: &str) -> Result<String, LayerError> {
    sha256_hex(diff_id).ok_or_else(|| LayerError::UnsupportedDiffId {
        layer: layer.to_string(),
        diff_id: diff_id.to_string(),
    })
}

/// Reads a whole buffer, or up to the end of the stream; returns the length.
fn fill<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A buffer of `size` bytes: one sent back by the next stage, or a new one.
fn recycled(returned: &Receiver<Vec<u8>>, size: usize) -> Vec<u8> {
    match returned.try_recv() {
        Ok(buf) => buf,
        Err(_) => vec![0; size],
    }
}

/// Three stages overlap, each on its own thread: the blob is read in blocks
/// (and hashed when its digest is to be checked), the blocks are
/// decompressed into chunks, and this thread walks the tar in the chunks
/// (hashing them when the diff_id is to be checked). Skipped file contents
/// are never copied. The channels hold a few buffers, so memory stays
/// bounded.
fn read_layer_expecting<R: Read + Send>(
    layer: &str,
    expect: Expect,
    mut blob: R,
    selection: &Selection,
    limits: &Limits,
) -> Result<LayerChanges, LayerError> {
    // The first block decides the compression.
    let mut first = vec![0; BLOCK_SIZE];
    let first_len = fill(&mut blob, &mut first).map_err(|e| LayerError::read(layer, e))?;
    let compression = Compression::detect(&first[..first_len]);
    let mut changes = LayerChanges {
        compression: Some(compression),
        ..Default::default()
    };
    let mut last_entry: Option<String> = None;

    let (walked, blob_result, decoded) = std::thread::scope(|scope| {
        let (block_tx, block_rx) = sync_channel::<Filled>(IN_FLIGHT);
        let (block_back_tx, block_back_rx) = sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
        let (chunk_tx, chunk_rx) = sync_channel::<io::Result<Filled>>(IN_FLIGHT);
        let (chunk_back_tx, chunk_back_rx) = sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
        let hash_blob = expect.blob.is_some();
        let reader = scope.spawn(move || {
            read_blocks(
                blob,
                Filled {
                    buf: first,
                    len: first_len,
                },
                hash_blob,
                &block_tx,
                &block_back_rx,
            )
        });
        let decoder = scope.spawn(move || {
            let input = BlockReader {
                rx: block_rx,
                back: block_back_tx,
                current: Filled {
                    buf: Vec::new(),
                    len: 0,
                },
                pos: 0,
            };
            decompress(
                compression,
                input,
                limits.max_layer_size,
                &chunk_tx,
                &chunk_back_rx,
            )
        });
        let mut stream = ChunkReader {
            rx: chunk_rx,
            back: chunk_back_tx,
            current: Filled {
                buf: Vec::new(),
                len: 0,
            },
            pos: 0,
            consumed: 0,
            hasher: expect.tar.as_ref().map(|_| Sha256::new()),
        };
        let walked = walk_tar(
            layer,
            &mut stream,
            selection,
            limits,
            &mut changes,
            &mut last_entry,
        )
        // What follows the end-of-archive marker (padding, further gzip
        // members) is decompressed and, for the diff_id, hashed too.
        .and_then(|()| stream.drain());
        let tar = stream.hasher.take().map(|h| hex::encode(h.finalize()));
        // Dropping the reader closes the channel: stages still running stop.
        drop(stream);
        // A stream that ended because a stage died is not a complete layer.
        let (walked, decoded) = match decoder.join() {
            Ok(decoded) => (walked, decoded),
            Err(_) => (
                Err(io::Error::other("the decompression thread failed")),
                Decoded::default(),
            ),
        };
        let blob_result = reader
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the blob reading thread failed")));
        (walked.map(|()| tar), blob_result, decoded)
    });

    // The blob itself failing (its reader's own verification included), or
    // not being its digest, is reported first: nothing else about such a blob
    // can be trusted. (The blob is read to its end even when its content
    // fails, so this is known.)
    let blob_digest = blob_result.map_err(|e| LayerError::read(layer, e))?;
    if let (Some(expected), Some(actual)) = (&expect.blob, &blob_digest)
        && expected != actual
    {
        return Err(LayerError::BlobDigestMismatch {
            layer: layer.to_string(),
            actual: format!("sha256:{actual}"),
        });
    }
    let tar = match walked {
        Ok(tar) => tar,
        Err(e) => {
            return Err(if decoded.exceeded {
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
    };
    if let (Some(expected), Some(actual)) = (expect.tar, tar)
        && expected != actual
    {
        return Err(LayerError::DiffIdMismatch {
            layer: layer.to_string(),
            expected: format!("sha256:{expected}"),
            actual: format!("sha256:{actual}"),
        });
    }
    changes.uncompressed_size = decoded.produced;
    Ok(changes)
}

/// The reading stage: sends the blob in blocks, starting with `first`, and
/// always reads it to its end (a verifying reader checks its digest there),
/// also once the next stage has stopped listening. Returns the blob's
/// SHA-256 (hex) when asked to compute it.
fn read_blocks<R: Read>(
    mut blob: R,
    first: Filled,
    hash: bool,
    tx: &SyncSender<Filled>,
    returned: &Receiver<Vec<u8>>,
) -> io::Result<Option<String>> {
    let mut hasher = hash.then(Sha256::new);
    let mut listening = true;
    let mut block = first;
    loop {
        if block.len == 0 {
            break;
        }
        if let Some(h) = &mut hasher {
            h.update(&block.buf[..block.len]);
        }
        if listening {
            if let Err(unsent) = tx.send(block) {
                listening = false;
                block = unsent.0;
            } else {
                block = Filled {
                    buf: recycled(returned, BLOCK_SIZE),
                    len: 0,
                };
            }
        }
        // A short block is the last one; the next read returns nothing (and
        // is where a verifying reader checks the digest).
        block.len = fill(&mut blob, &mut block.buf)?;
    }
    Ok(hasher.map(|h| hex::encode(h.finalize())))
}

/// The blocks from the reading stage as one buffered stream; consumed
/// blocks go back to it.
struct BlockReader {
    rx: Receiver<Filled>,
    back: SyncSender<Vec<u8>>,
    current: Filled,
    pos: usize,
}

impl Read for BlockReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for BlockReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.current.len {
            match self.rx.recv() {
                Ok(next) => {
                    let done = std::mem::replace(&mut self.current, next);
                    if !done.buf.is_empty() {
                        let _ = self.back.try_send(done.buf);
                    }
                    self.pos = 0;
                }
                // The reading stage is done: end of the blob.
                Err(_) => return Ok(&[]),
            }
        }
        Ok(&self.current.buf[self.pos..self.current.len])
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.current.len);
    }
}

/// How the decompressing stage ended.
#[derive(Default)]
struct Decoded {
    /// Decompressed bytes sent on.
    produced: u64,
    /// Whether it stopped at [`Limits::max_layer_size`].
    exceeded: bool,
}

/// The decompressing stage: sends the tar stream on in chunks, at most
/// `limit` bytes of it. An error is sent on and ends the stream. Whatever
/// happens, the rest of the blob is read (and dropped), so that its digest
/// is checked.
fn decompress(
    compression: Compression,
    mut input: BlockReader,
    limit: u64,
    tx: &SyncSender<io::Result<Filled>>,
    returned: &Receiver<Vec<u8>>,
) -> Decoded {
    let mut produced: u64 = 0;
    let mut exceeded = false;
    let result = (|| -> io::Result<()> {
        let mut decoder: Box<dyn Read + '_> = match compression {
            Compression::None => Box::new(&mut input),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(&mut input)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(&mut input)?),
        };
        loop {
            let mut chunk = recycled(returned, CHUNK_SIZE);
            let len = fill(&mut decoder, &mut chunk)?;
            if len == 0 {
                return Ok(());
            }
            produced += len as u64;
            if produced > limit {
                exceeded = true;
                return Err(io::Error::other("decompressed size limit exceeded"));
            }
            if tx.send(Ok(Filled { buf: chunk, len })).is_err() {
                // The walk has stopped; nothing more to decompress.
                return Ok(());
            }
        }
    })();
    if let Err(e) = result {
        let _ = tx.send(Err(e));
    }
    // The blob's last bytes (after the compressed stream, or after a
    // failure), for the digest check.
    while input.fill_buf().is_ok_and(|b| !b.is_empty()) {
        let n = input.current.len - input.pos;
        input.consume(n);
    }
    Decoded { produced, exceeded }
}

/// The tar stream, in the chunks the decompressing stage sends; consumed
/// chunks go back to it. Hashes everything it hands out or skips when the
/// diff_id is checked. Seeks forward only: skipping a file's contents costs
/// no copy.
struct ChunkReader {
    rx: Receiver<io::Result<Filled>>,
    back: SyncSender<Vec<u8>>,
    current: Filled,
    pos: usize,
    /// Bytes handed out or skipped so far.
    consumed: u64,
    hasher: Option<Sha256>,
}

impl ChunkReader {
    /// The unread part of the current chunk, receiving the next one when it
    /// is used up; empty at the end of the stream.
    fn available(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.current.len {
            match self.rx.recv() {
                Ok(Ok(next)) => {
                    let done = std::mem::replace(&mut self.current, next);
                    if !done.buf.is_empty() {
                        let _ = self.back.try_send(done.buf);
                    }
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                // The decompressing stage finished: end of stream.
                Err(_) => return Ok(&[]),
            }
        }
        Ok(&self.current.buf[self.pos..self.current.len])
    }

    /// Marks `n` available bytes as read (or skipped).
    fn advance(&mut self, n: usize) {
        if let Some(h) = &mut self.hasher {
            h.update(&self.current.buf[self.pos..self.pos + n]);
        }
        self.pos += n;
        self.consumed += n as u64;
    }

    /// Reads to the end of the stream.
    fn drain(&mut self) -> io::Result<()> {
        loop {
            let n = self.available()?.len();
            if n == 0 {
                return Ok(());
            }
            self.advance(n);
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.available()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.advance(n);
        Ok(n)
    }
}

impl Seek for ChunkReader {
    /// Only forward from the current position (what the tar reader needs to
    /// skip contents); returns the new position.
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let SeekFrom::Current(mut ahead) = pos else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a layer stream only seeks forward",
            ));
        };
        if ahead < 0 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a layer stream only seeks forward",
            ));
        }
        while ahead > 0 {
            let available = self.available()?.len();
            if available == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "unexpected end of the layer while skipping",
                ));
            }
            let n = usize::try_from(ahead).map_or(available, |a| a.min(available));
            self.advance(n);
            ahead -= n as i64;
        }
        Ok(self.consumed)
    }
}

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

fn walk_tar<R: Read + Seek>(
    layer: &str,
    stream: R,
    selection: &Selection,
    limits: &Limits,
    changes: &mut LayerChanges,
    last_entry: &mut Option<String>,
) -> io::Result<()> {
    let mut archive = tar::Archive::new(stream);
    // Seeking skips what is not selected without copying it.
    for entry in archive.entries_with_seek()? {
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
