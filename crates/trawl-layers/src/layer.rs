//! Reading one layer: detect the compression, stream the tar once, keep what is
//! selected, record whiteouts.
//!
//! Layers are changesets in the sense of the OCI image spec, "Representing
//! Changes" (<https://github.com/opencontainers/image-spec/blob/main/layer.md>):
//! `.wh.<name>` deletes `<name>` from the layers below, `.wh..wh..opq` hides
//! every lower entry of its directory.
//!
//! Tar entries are parsed by the `tar` crate, which reads an entry's PAX
//! records and GNU long names and links whole before handing the entry out.
//! Its raw mode (extension entries handed out as they are) would let us read
//! them ourselves, but then it no longer applies a PAX `size` record to the
//! next entry, and the stream goes out of step at the first file over 8 GiB
//! written as PAX. So the crate keeps parsing, and the stream under it is
//! metered instead: while one entry's headers are parsed, at most
//! [`Limits::max_header_ext_bytes`] may be read, and a larger header ends
//! the layer with [`LayerError::HeaderTooLarge`].
//!
//! Every read of an entry's content is exact: a stream that ends before the
//! size its header states is an error naming the entry, never a short file.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::budget::{Budget, Limits, Pool, Reservation};
use crate::error::{LayerError, LayerWarning};
use crate::extractor::{self, EntryInfo, Extractor, Outcome};
use crate::selection::{Selection, normalize_entry};

/// How a layer blob is compressed, as found from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
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

/// What an extractor made of one file: the bytes it kept, or why it could not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Extraction {
    pub(crate) id: String,
    pub(crate) result: Result<Arc<[u8]>, String>,
}

/// A regular file as one layer left it: its contents when selected and
/// kept, why they were not when selected and dropped, and what extractors
/// got from it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Regular {
    /// A `Vec` behind the `Arc`: kept contents are read into their final
    /// buffer, never copied into another.
    pub(crate) data: Option<Arc<Vec<u8>>>,
    pub(crate) dropped: Option<String>,
    pub(crate) extracted: Arc<[Extraction]>,
}

impl Regular {
    pub(crate) fn dropped(reason: String) -> Self {
        Regular {
            dropped: Some(reason),
            ..Default::default()
        }
    }

    /// What a hard link to this file holds: the same, when the link's path
    /// is selected; else only the extraction results (the contents are the
    /// target's, kept for the target's path).
    pub(crate) fn linked(&self, selected: bool) -> Self {
        if selected {
            self.clone()
        } else {
            Regular {
                extracted: self.extracted.clone(),
                ..Default::default()
            }
        }
    }

    /// Bytes held: contents and extraction results.
    pub(crate) fn held_bytes(&self) -> u64 {
        self.data.as_ref().map_or(0, |d| d.len() as u64)
            + self
                .extracted
                .iter()
                .map(|x| match &x.result {
                    Ok(d) => d.len() as u64,
                    Err(e) => e.len() as u64,
                })
                .sum::<u64>()
    }
}

/// One change a layer makes at a path the selection cares about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Change {
    /// A regular file: kept, dropped or extracted from.
    Regular(Regular),
    /// A symbolic link and its target, as written in the tar.
    Symlink(String),
    /// A hard link to another path, resolved at merge time against lower
    /// layers; `selected` when the link's own path is selected.
    HardLink { target: String, selected: bool },
    /// A directory.
    Dir,
    /// Something that is not a directory and whose contents are not kept (a file
    /// at an ancestor of a selected path, a device, a link that cannot be
    /// followed).
    Opaque,
}

/// What one layer changes, restricted to the selection. Produced by
/// [`read_layer`], combined in order by [`crate::MergedFs::from_layers`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerChanges {
    pub(crate) entries: BTreeMap<String, Change>,
    pub(crate) whiteouts: BTreeSet<String>,
    pub(crate) opaque_dirs: BTreeSet<String>,
    /// Fingerprints of the non-directories and directories that were not
    /// recorded (when the selection records everything), sorted: a later
    /// layer's file there still replaces what lower layers had below it.
    pub(crate) hidden_files: Vec<u64>,
    pub(crate) hidden_dirs: Vec<u64>,
    pub(crate) warnings: Vec<LayerWarning>,
    /// Warnings beyond [`Limits::max_warnings`], counted only.
    pub(crate) more_warnings: u64,
    pub(crate) compression: Option<Compression>,
    pub(crate) uncompressed_size: u64,
    /// Whether a scan-wide budget refused something: the result then
    /// depends on the other layers and is never cached.
    #[serde(skip)]
    pub(crate) budget_limited: bool,
}

impl LayerChanges {
    /// Number of selected or relevant entries this layer holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the layer touches nothing selected.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
            && self.whiteouts.is_empty()
            && self.opaque_dirs.is_empty()
            && self.hidden_files.is_empty()
            && self.hidden_dirs.is_empty()
    }

    /// The compression found in the blob.
    pub fn compression(&self) -> Option<Compression> {
        self.compression
    }

    /// Size of the layer's tar stream, after decompression.
    pub fn uncompressed_size(&self) -> u64 {
        self.uncompressed_size
    }

    /// Problems with single entries that did not stop the layer from being
    /// read (at most [`Limits::max_warnings`]; see
    /// [`more_warnings`](Self::more_warnings)).
    pub fn warnings(&self) -> &[LayerWarning] {
        &self.warnings
    }

    /// How many warnings were found beyond those listed.
    pub fn more_warnings(&self) -> u64 {
        self.more_warnings
    }

    /// Whether a scan-wide budget ([`Limits::max_kept_bytes`],
    /// [`Limits::max_temp_bytes`]) made this layer drop or degrade something
    /// it would have kept on its own; such a result depends on the other
    /// layers of the scan and is never cached.
    pub fn is_budget_limited(&self) -> bool {
        self.budget_limited
    }

    /// Bytes held: kept contents, extraction results, recorded paths.
    pub(crate) fn held_bytes(&self) -> u64 {
        self.entries
            .iter()
            .map(|(p, c)| {
                p.len() as u64
                    + match c {
                        Change::Regular(r) => r.held_bytes(),
                        Change::Symlink(t) => t.len() as u64,
                        Change::HardLink { target, .. } => target.len() as u64,
                        Change::Dir | Change::Opaque => 0,
                    }
            })
            .sum::<u64>()
            + self
                .whiteouts
                .iter()
                .chain(&self.opaque_dirs)
                .map(|p| p.len() as u64)
                .sum::<u64>()
    }

    /// Paths and fingerprints recorded, as counted against
    /// [`Limits::max_entries`].
    pub(crate) fn recorded(&self) -> u64 {
        (self.entries.len()
            + self.whiteouts.len()
            + self.opaque_dirs.len()
            + self.hidden_files.len()
            + self.hidden_dirs.len()) as u64
    }

    fn warn(&mut self, warning: LayerWarning, max: usize) {
        if self.warnings.len() < max {
            self.warnings.push(warning);
        } else {
            self.more_warnings += 1;
        }
    }
}

/// Why a symlink was not followed.
pub(crate) fn link_too_long(len: usize, components: usize) -> String {
    format!(
        "a symlink whose target of {len} bytes in {components} components is over the limits; not followed"
    )
}

/// A path's fingerprint: the first 8 bytes of its SHA-256, so that no
/// image can make one path stand for another.
pub(crate) fn fingerprint(path: &str) -> u64 {
    let digest = Sha256::digest(path.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
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
    let budget = Budget::new(limits, None);
    read_layer_expecting(layer, Expect::default(), blob, selection, &budget)
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
    let budget = Budget::new(limits, None);
    read_layer_checked_in(layer, diff_id, blob, selection, &budget)
}

pub(crate) fn read_layer_checked_in<R: Read + Send>(
    layer: &str,
    diff_id: Option<&str>,
    blob: R,
    selection: &Selection,
    budget: &Budget,
) -> Result<LayerChanges, LayerError> {
    let expect = Expect {
        blob: None,
        tar: diff_id.map(|d| parse_diff_id(layer, d)).transpose()?,
    };
    read_layer_expecting(layer, expect, blob, selection, budget)
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
    let budget = Budget::new(limits, None);
    read_layer_verified_in(layer, digest, blob, selection, &budget)
}

pub(crate) fn read_layer_verified_in<R: Read + Send>(
    layer: &str,
    digest: &str,
    blob: R,
    selection: &Selection,
    budget: &Budget,
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
    read_layer_expecting(layer, expect, blob, selection, budget)
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
    budget: &Budget,
) -> Result<LayerChanges, LayerError> {
    let limits = &budget.limits;
    let deadline = || LayerError::Deadline {
        layer: layer.to_string(),
        limit: limits.deadline.unwrap_or_default(),
    };
    if budget.expired() {
        return Err(deadline());
    }
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
                budget,
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
            decompress(compression, input, budget, &chunk_tx, &chunk_back_rx)
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
        let mut walk = Walk::new(layer, selection, budget, &mut changes);
        let walked = walk_tar(&mut walk, &mut stream, &mut last_entry)
            // What follows the end-of-archive marker (padding, further gzip
            // members) is decompressed and, for the diff_id, hashed too.
            .and_then(|()| stream.drain().map_err(Stop::Io));
        walk.finish();
        let tar = stream.hasher.take().map(|h| hex::encode(h.finalize()));
        // Dropping the reader closes the channel: stages still running stop.
        drop(stream);
        // A stream that ended because a stage died is not a complete layer.
        let (walked, decoded) = match decoder.join() {
            Ok(decoded) => (walked, decoded),
            Err(_) => (
                Err(Stop::Io(io::Error::other(
                    "the decompression thread failed",
                ))),
                Decoded::default(),
            ),
        };
        let blob_result = reader
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the blob reading thread failed")));
        (walked.map(|()| tar), blob_result, decoded)
    });

    // Past the deadline, the stages stop where they are: nothing about the
    // layer is known, not even whether the blob is its digest.
    if (walked.is_err() || blob_result.is_err()) && budget.expired() {
        return Err(deadline());
    }
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
        Err(Stop::Layer(e)) => return Err(e),
        Err(Stop::Io(e)) => {
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
    budget: &Budget,
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
        if budget.expired() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the scan's deadline passed",
            ));
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
    budget: &Budget,
    tx: &SyncSender<io::Result<Filled>>,
    returned: &Receiver<Vec<u8>>,
) -> Decoded {
    let limit = budget.limits.max_layer_size;
    let mut produced: u64 = 0;
    let mut exceeded = false;
    let result = (|| -> io::Result<()> {
        let mut decoder: Box<dyn Read + '_> = match compression {
            Compression::None => Box::new(&mut input),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(&mut input)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(&mut input)?),
        };
        loop {
            if budget.expired() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the scan's deadline passed",
                ));
            }
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
    while !budget.expired() && input.fill_buf().is_ok_and(|b| !b.is_empty()) {
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
/// Most leading bytes read for extractors' sniffing.
const MAX_SNIFF: usize = 64 << 10;
/// Longest error message kept from an extractor.
const MAX_MESSAGE: usize = 1024;

/// Why the walk stopped early.
enum Stop {
    /// The stream failed (corrupt, truncated, malformed); classified later.
    Io(io::Error),
    /// A typed reason (deadline, budget, oversized headers).
    Layer(LayerError),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        Stop::Io(e)
    }
}

/// The tar stream, counting what is read while an entry's headers are
/// parsed: the tar reader reads PAX records and GNU long names whole, so
/// they are cut off here, at [`Limits::max_header_ext_bytes`]. Seeking (how
/// skipped contents pass) is not counted.
struct Metered<R> {
    inner: R,
    /// Bytes that may still be read; `u64::MAX` outside header parsing.
    allowance: Rc<Cell<u64>>,
    /// Set when a read was refused.
    tripped: Rc<Cell<bool>>,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let allowance = self.allowance.get();
        if allowance == 0 && !buf.is_empty() {
            self.tripped.set(true);
            return Err(io::Error::other("tar headers over the size limit"));
        }
        let want = usize::try_from(allowance).map_or(buf.len(), |a| a.min(buf.len()));
        let n = self.inner.read(&mut buf[..want])?;
        if allowance != u64::MAX {
            self.allowance.set(allowance - n as u64);
        }
        Ok(n)
    }
}

impl<R: Seek> Seek for Metered<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// One entry's content, read exactly: a stream that ends before the size
/// the header states is an error (the layer is truncated), never a short
/// file; and reading stops once the scan's deadline has passed.
struct Exact<'b, R> {
    inner: R,
    remaining: u64,
    budget: &'b Budget,
    truncated: bool,
}

impl<R: Read> Read for Exact<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        if self.budget.expired() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the scan's deadline passed",
            ));
        }
        let want = usize::try_from(self.remaining).map_or(buf.len(), |r| r.min(buf.len()));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            self.truncated = true;
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the layer ends inside this entry, {} bytes short of the size its header states",
                    self.remaining
                ),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Reads until `buf` is full or the stream ends; returns the length.
fn read_up_to<R: Read>(reader: &mut R, buf: &mut Vec<u8>, want: usize) -> io::Result<()> {
    let mut chunk = [0u8; 8192];
    while buf.len() < want {
        let n = (want - buf.len()).min(chunk.len());
        match reader.read(&mut chunk[..n]) {
            Ok(0) => break,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One layer's walk: what it records, and the budget it draws from.
struct Walk<'a> {
    layer: &'a str,
    selection: &'a Selection,
    budget: &'a Budget,
    limits: &'a Limits,
    /// Globs or extractors: whiteouts, opaque markers and symlinks are
    /// recorded everywhere, every other entry fingerprinted.
    everything: bool,
    extractors: Vec<&'a dyn Extractor>,
    changes: &'a mut LayerChanges,
}

impl<'a> Walk<'a> {
    fn new(
        layer: &'a str,
        selection: &'a Selection,
        budget: &'a Budget,
        changes: &'a mut LayerChanges,
    ) -> Self {
        Walk {
            layer,
            selection,
            budget,
            limits: &budget.limits,
            everything: selection.records_everything(),
            extractors: selection.extractors().collect(),
            changes,
        }
    }

    /// Sorts the fingerprints, for lookups at merge time.
    fn finish(&mut self) {
        self.changes.hidden_files.sort_unstable();
        self.changes.hidden_files.dedup();
        self.changes.hidden_dirs.sort_unstable();
        self.changes.hidden_dirs.dedup();
    }

    fn warn(&mut self, warning: LayerWarning) {
        self.changes.warn(warning, self.limits.max_warnings);
    }

    fn over_budget(&self, budget: &'static str) -> Stop {
        Stop::Layer(LayerError::OverBudget {
            layer: self.layer.to_string(),
            budget,
            limit: match budget {
                "max_entries" => self.limits.max_entries,
                _ => self.limits.max_kept_bytes,
            },
        })
    }

    /// Counts one more recorded path (and its bytes) against the budget.
    fn charge(&mut self, bytes: usize) -> Result<(), Stop> {
        if !self.budget.add_entries(1) {
            return Err(self.over_budget("max_entries"));
        }
        if !self.budget.reserve(Pool::Kept, bytes as u64) {
            return Err(self.over_budget("max_kept_bytes"));
        }
        Ok(())
    }

    fn record(&mut self, path: String, change: Change) -> Result<(), Stop> {
        let extra = match &change {
            Change::Symlink(t) => t.len(),
            Change::HardLink { target, .. } => target.len(),
            _ => 0,
        };
        self.charge(path.len() + extra)?;
        // A later entry for the same path replaces the earlier one, as tar extraction does.
        self.changes.entries.insert(path, change);
        Ok(())
    }

    /// Remembers an entry that is not recorded, by fingerprint (only when
    /// the selection records everything).
    fn hide(&mut self, path: &str, dir: bool) -> Result<(), Stop> {
        if !self.everything {
            return Ok(());
        }
        if !self.budget.add_entries(1) {
            return Err(self.over_budget("max_entries"));
        }
        let print = fingerprint(path);
        if dir {
            self.changes.hidden_dirs.push(print);
        } else {
            self.changes.hidden_files.push(print);
        }
        Ok(())
    }

    fn entry<R: Read>(
        &mut self,
        mut entry: tar::Entry<'_, R>,
        last_entry: &mut Option<String>,
    ) -> Result<(), Stop> {
        let raw_name = entry.path_bytes();
        if raw_name.len() > self.limits.max_path_len {
            let start = String::from_utf8_lossy(&raw_name[..raw_name.len().min(64)]).into_owned();
            let len = raw_name.len();
            *last_entry = Some(format!("{start}…"));
            self.warn(LayerWarning::PathTooLong {
                layer: self.layer.to_string(),
                start,
                len,
                limit: self.limits.max_path_len,
            });
            return Ok(());
        }
        let Some(path) = normalize_entry(&raw_name) else {
            let shown = String::from_utf8_lossy(&raw_name).into_owned();
            *last_entry = Some(shown.clone());
            if std::str::from_utf8(&raw_name).is_ok() && !shown.trim_matches(['.', '/']).is_empty()
            {
                self.warn(LayerWarning::UnsafePath {
                    layer: self.layer.to_string(),
                    entry: shown,
                });
            }
            return Ok(());
        };
        drop(raw_name);
        *last_entry = Some(path.clone());

        let (dir, base) = match path.rfind('/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => ("", path.as_str()),
        };
        if let Some(hidden) = base.strip_prefix(WHITEOUT_PREFIX) {
            if base == OPAQUE_MARKER {
                if dir.is_empty() || self.everything || self.selection.is_relevant(dir) {
                    let dir = dir.to_string();
                    self.charge(dir.len())?;
                    self.changes.opaque_dirs.insert(dir);
                }
            } else if !hidden.is_empty() {
                let target = if dir.is_empty() {
                    hidden.to_string()
                } else {
                    format!("{dir}/{hidden}")
                };
                if self.everything || self.selection.is_relevant(&target) {
                    self.charge(target.len())?;
                    self.changes.whiteouts.insert(target);
                }
            }
            return Ok(());
        }
        let selected = self.selection.selects(&path);
        let relevant = selected || self.selection.leads_to(&path);
        if !relevant && !self.everything {
            return Ok(());
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            return if relevant {
                self.record(path, Change::Dir)
            } else {
                self.hide(&path, true)
            };
        }
        if kind.is_symlink() {
            let change = match entry
                .link_name_bytes()
                .and_then(|l| String::from_utf8(l.into_owned()).ok())
            {
                Some(target)
                    if target.len() > self.limits.max_link_target_len
                        || target.split('/').count() > self.limits.max_link_components =>
                {
                    let components = target.split('/').count();
                    self.warn(LayerWarning::LinkTooLong {
                        layer: self.layer.to_string(),
                        path: path.clone(),
                        len: target.len(),
                        components,
                    });
                    // Whatever the link leads to is not read: the scan is
                    // incomplete, as for a file that was not kept.
                    Change::Regular(Regular::dropped(link_too_long(target.len(), components)))
                }
                Some(target) => Change::Symlink(target),
                None => Change::Opaque,
            };
            return self.record(path, change);
        }
        if kind.is_hard_link() {
            let change = match entry.link_name_bytes().and_then(|l| normalize_entry(&l)) {
                Some(target) => match self.changes.entries.get(&target) {
                    Some(Change::Regular(r)) => Change::Regular(r.linked(selected)),
                    _ => Change::HardLink { target, selected },
                },
                None => {
                    self.warn(LayerWarning::UnsafePath {
                        layer: self.layer.to_string(),
                        entry: format!("{path} (hard link target)"),
                    });
                    Change::Opaque
                }
            };
            return self.record(path, change);
        }
        let regular = kind.is_file() || kind == tar::EntryType::Continuous || kind.is_gnu_sparse();
        if !regular {
            return if relevant {
                self.record(path, Change::Opaque)
            } else {
                self.hide(&path, false)
            };
        }
        let info = EntryInfo {
            path: &path,
            size: entry.size(),
            mode: entry.header().mode().unwrap_or(0),
        };
        let wanting: Vec<&dyn Extractor> = self
            .extractors
            .iter()
            .copied()
            .filter(|x| x.wants(&info))
            .collect();
        let found = if selected {
            Some(self.keep(&mut entry, &info, &wanting)?)
        } else if !wanting.is_empty() {
            self.extract(&mut entry, &info, wanting)?
        } else {
            None
        };
        match found {
            Some(regular) => self.record(path, Change::Regular(regular)),
            None if relevant => self.record(path, Change::Opaque),
            None => self.hide(&path, false),
        }
    }

    /// A selected file: kept whole when it fits, else dropped with the reason.
    fn keep<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        info: &EntryInfo<'_>,
        wanting: &[&dyn Extractor],
    ) -> Result<Regular, Stop> {
        let size = info.size;
        if size > self.limits.max_file_size {
            self.warn(LayerWarning::FileTooLarge {
                layer: self.layer.to_string(),
                path: info.path.to_string(),
                size,
                limit: self.limits.max_file_size,
            });
            return Ok(Regular::dropped(format!(
                "{size} bytes, over the {}-byte limit for one file",
                self.limits.max_file_size
            )));
        }
        let Some(reservation) = Reservation::take(self.budget, Pool::Kept, size) else {
            self.changes.budget_limited = true;
            return Ok(Regular::dropped(format!(
                "{size} bytes, over what is left of the scan's {}-byte memory budget",
                self.limits.max_kept_bytes
            )));
        };
        let mut exact = Exact {
            inner: entry,
            remaining: size,
            budget: self.budget,
            truncated: false,
        };
        // The size is within the per-file limit and the memory budget, so
        // the buffer can be allocated whole (its pages are only touched as
        // bytes arrive): no growing, no copy.
        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        exact.read_to_end(&mut data)?;
        reservation.keep();
        let data = Arc::new(data);
        let extracted = if wanting.is_empty() {
            Arc::default()
        } else {
            let outcomes = extractor::run_in_memory(wanting, info, &data);
            self.results(wanting, outcomes)
        };
        Ok(Regular {
            data: Some(data),
            dropped: None,
            extracted,
        })
    }

    /// A file extractors want: sniffed, then handed over in memory, spooled
    /// or streamed. `None` when no extractor kept anything.
    fn extract<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        info: &EntryInfo<'_>,
        mut wanting: Vec<&dyn Extractor>,
    ) -> Result<Option<Regular>, Stop> {
        let size = info.size;
        let mut exact = Exact {
            inner: entry,
            remaining: size,
            budget: self.budget,
            truncated: false,
        };
        let sniff = wanting
            .iter()
            .map(|x| x.sniff_len())
            .max()
            .unwrap_or(0)
            .min(MAX_SNIFF);
        let mut head = Vec::new();
        if sniff > 0 {
            let want = usize::try_from(size).map_or(sniff, |s| s.min(sniff));
            read_up_to(&mut exact, &mut head, want)?;
            wanting.retain(|x| {
                let n = x.sniff_len().min(head.len());
                x.sniff_len() == 0 || x.sniff(&head[..n])
            });
            if wanting.is_empty() {
                return Ok(None);
            }
        }
        let limits = self.limits;
        let in_memory = size <= limits.max_extract_memory && size <= limits.max_kept_bytes;
        let spoolable = size <= limits.max_temp_bytes;
        let outcomes = if let Some(_held) = in_memory
            .then(|| Reservation::take(self.budget, Pool::Kept, size))
            .flatten()
        {
            let mut data = head;
            data.reserve_exact(
                usize::try_from(size)
                    .unwrap_or(0)
                    .saturating_sub(data.len()),
            );
            exact.read_to_end(&mut data)?;
            extractor::run_in_memory(&wanting, info, &data)
        } else if let Some(_held) = spoolable
            .then(|| Reservation::take(self.budget, Pool::Temp, size))
            .flatten()
        {
            if in_memory {
                self.changes.budget_limited = true;
            }
            match self.spool(&mut exact, &head) {
                Ok(Ok(mut file)) => extractor::run_seekable(&wanting, info, &mut file, size),
                Ok(Err(e)) => wanting
                    .iter()
                    .map(|_| Err(format!("could not spool the file to disk: {e}")))
                    .collect(),
                Err(e) => return Err(Stop::Io(e)),
            }
        } else {
            if in_memory || spoolable {
                self.changes.budget_limited = true;
            }
            let mut stream = io::Cursor::new(head).chain(&mut exact);
            let outcomes = extractor::run_streaming(&wanting, info, &mut stream, size);
            drop(stream);
            if exact.truncated || self.budget.expired() {
                // The extractors saw the error; the walk reports it.
                return Err(Stop::Io(io::Error::new(
                    if exact.truncated {
                        io::ErrorKind::UnexpectedEof
                    } else {
                        io::ErrorKind::TimedOut
                    },
                    "the layer ends inside this entry",
                )));
            }
            outcomes
        };
        let extracted = self.results(&wanting, outcomes);
        Ok((!extracted.is_empty()).then(|| Regular {
            extracted,
            ..Default::default()
        }))
    }

    /// Copies the file to the scan's temporary directory: `Err` when the
    /// layer could not be read, `Ok(Err)` when the copy could not be
    /// written (the rest of the entry is then skipped).
    fn spool<R: Read>(
        &self,
        exact: &mut Exact<'_, R>,
        head: &[u8],
    ) -> io::Result<Result<std::fs::File, io::Error>> {
        let mut file = match self.budget.spool_file() {
            Ok(f) => f,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) = file.write_all(head) {
            return Ok(Err(e));
        }
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = match exact.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if let Err(e) = file.write_all(&buf[..n]) {
                return Ok(Err(e));
            }
        }
        if let Err(e) = file.seek(SeekFrom::Start(0)) {
            return Ok(Err(e));
        }
        Ok(Ok(file))
    }

    /// Extractors' outcomes as kept results, each within the limits.
    fn results(&mut self, wanting: &[&dyn Extractor], outcomes: Vec<Outcome>) -> Arc<[Extraction]> {
        let (extracted, limited) = extraction_results(wanting, outcomes, self.budget);
        self.changes.budget_limited |= limited;
        extracted
    }
}

/// Extractors' outcomes as kept results: a result over the per-file limit
/// or the scan's memory budget becomes an error; `Ok(None)` is left out.
/// Also says whether the scan-wide budget refused one.
pub(crate) fn extraction_results(
    wanting: &[&dyn Extractor],
    outcomes: Vec<Outcome>,
    budget: &Budget,
) -> (Arc<[Extraction]>, bool) {
    let limits = &budget.limits;
    let mut limited = false;
    let mut kept = Vec::new();
    for (x, outcome) in wanting.iter().zip(outcomes) {
        let result = match outcome {
            Ok(None) => continue,
            Ok(Some(bytes)) if bytes.len() as u64 > limits.max_file_size => Err(format!(
                "{} extracted {} bytes, over the {}-byte limit for one file",
                x.id(),
                bytes.len(),
                limits.max_file_size
            )),
            Ok(Some(bytes)) => {
                if budget.reserve(Pool::Kept, bytes.len() as u64) {
                    Ok(Arc::from(bytes))
                } else {
                    limited = true;
                    Err(format!(
                        "{} extracted {} bytes, over what is left of the scan's {}-byte memory budget",
                        x.id(),
                        bytes.len(),
                        limits.max_kept_bytes
                    ))
                }
            }
            Err(mut message) => {
                if message.len() > MAX_MESSAGE {
                    let mut cut = MAX_MESSAGE;
                    while !message.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    message.truncate(cut);
                    message.push('…');
                }
                budget.reserve(Pool::Kept, message.len() as u64);
                Err(message)
            }
        };
        kept.push(Extraction {
            id: x.id().to_string(),
            result,
        });
    }
    (kept.into(), limited)
}

fn walk_tar<R: Read + Seek>(
    walk: &mut Walk<'_>,
    stream: R,
    last_entry: &mut Option<String>,
) -> Result<(), Stop> {
    let allowance = Rc::new(Cell::new(u64::MAX));
    let tripped = Rc::new(Cell::new(false));
    let mut archive = tar::Archive::new(Metered {
        inner: stream,
        allowance: allowance.clone(),
        tripped: tripped.clone(),
    });
    let header_limit = walk.limits.max_header_ext_bytes;
    // Seeking skips what is not selected without copying it.
    let mut entries = archive.entries_with_seek()?;
    loop {
        if walk.budget.expired() {
            return Err(Stop::Layer(LayerError::Deadline {
                layer: walk.layer.to_string(),
                limit: walk.limits.deadline.unwrap_or_default(),
            }));
        }
        allowance.set(header_limit);
        let next = entries.next();
        allowance.set(u64::MAX);
        let entry = match next {
            None => return Ok(()),
            Some(Ok(entry)) => entry,
            Some(Err(_)) if tripped.get() => {
                return Err(Stop::Layer(LayerError::HeaderTooLarge {
                    layer: walk.layer.to_string(),
                    entry: last_entry.clone(),
                    limit: header_limit,
                }));
            }
            Some(Err(e)) => return Err(Stop::Io(e)),
        };
        walk.entry(entry, last_entry)?;
    }
}
