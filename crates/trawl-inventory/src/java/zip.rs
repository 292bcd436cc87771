//! A bounded reader of ZIP central directories (jar, war, ear), reading the
//! few entries a Java cataloger needs.
//!
//! Written by hand rather than with the `zip` crate, which (2.x) keeps every
//! central-directory record of an archive in memory, with no cap on their
//! number, and on a central directory it cannot use searches the whole file
//! backwards for earlier end records, with a forward search for each:
//! unbounded memory and quadratic time on a hostile jar. This reader finds
//! the end record the way the JVM's own `java.util.zip.ZipFile` does (in the
//! last 64 KiB, the central directory immediately before it, so a prefix such
//! as an executable jar's launch script shifts every offset), streams the
//! central directory once under an entry cap, and keeps only the entries its
//! caller selects. Format: PKWARE's APPNOTE.TXT
//! (<https://pkware.cachefly.net/webdocs/casestudies/APPNOTE.TXT>), sections
//! 4.3.6 (local header), 4.3.12 (central header), 4.3.14-16 (ZIP64 and
//! end records), 4.5.3 (ZIP64 extra field).

use std::io::{self, BufReader, Read, Seek, SeekFrom};

use super::JavaError;

/// `Read + Seek` as one trait object (archives nest: a jar inside a jar is
/// read through a window over its parent).
pub use trawl_layers::ReadSeek;

const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD_LEN: u64 = 22;
const LOCATOR_SIG: u32 = 0x0706_4b50;
const LOCATOR_LEN: u64 = 20;
const EOCD64_SIG: u32 = 0x0606_4b50;
const EOCD64_LEN: u64 = 56;
const CEN_SIG: u32 = 0x0201_4b50;
const CEN_LEN: usize = 46;
const LOC_SIG: u32 = 0x0403_4b50;
const LOC_LEN: u64 = 30;

/// Compression methods this reader inflates.
pub(crate) const STORED: u16 = 0;
pub(crate) const DEFLATED: u16 = 8;

/// One central-directory record, as far as the Java reader needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub name: String,
    pub method: u16,
    pub flags: u16,
    pub compressed: u64,
    pub uncompressed: u64,
    /// Offset of the local header, relative to the archive's start.
    local_offset: u64,
}

impl Entry {
    pub fn encrypted(&self) -> bool {
        self.flags & 1 != 0
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes([
        b[at],
        b[at + 1],
        b[at + 2],
        b[at + 3],
        b[at + 4],
        b[at + 5],
        b[at + 6],
        b[at + 7],
    ])
}

fn io_err(e: io::Error) -> JavaError {
    JavaError::Io(e.to_string())
}

fn read_at(r: &mut dyn ReadSeek, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    r.seek(SeekFrom::Start(offset))?;
    r.read_exact(buf)
}

/// Where an archive's central directory is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Directory {
    /// Declared number of entries.
    pub entries: u64,
    /// File offset of the central directory.
    cen_start: u64,
    cen_len: u64,
    /// What entry offsets are relative to (nonzero with a prefix).
    base: u64,
}

/// Finds the end of central directory record (and its ZIP64 form).
pub(crate) fn directory(r: &mut dyn ReadSeek, len: u64) -> Result<Directory, JavaError> {
    if len < EOCD_LEN {
        return Err(JavaError::NotZip("shorter than an end record".into()));
    }
    let tail_len = len.min(EOCD_LEN + 0xffff);
    let tail_start = len - tail_len;
    let mut tail = vec![0u8; tail_len as usize];
    read_at(r, tail_start, &mut tail).map_err(io_err)?;
    let mut i = tail.len() - EOCD_LEN as usize;
    loop {
        if le32(&tail, i) == EOCD_SIG {
            let pos = tail_start + i as u64;
            let e = &tail[i..];
            let comment = u64::from(le16(e, 20));
            let mut entries = u64::from(le16(e, 10));
            let mut cen_len = u64::from(le32(e, 12));
            let mut cen_offset = u64::from(le32(e, 16));
            let mut end_pos = pos;
            if let Some((n, l, o, p)) = zip64_end(r, pos)? {
                (entries, cen_len, cen_offset, end_pos) = (n, l, o, p);
            }
            // The central directory ends where the end record starts; what
            // its stated offset falls short by is a prefix.
            if let Some(cen_start) = end_pos.checked_sub(cen_len)
                && let Some(base) = cen_start.checked_sub(cen_offset)
                && (pos + EOCD_LEN + comment == len || signature_at(r, cen_start, CEN_SIG, entries))
            {
                return Ok(Directory {
                    entries,
                    cen_start,
                    cen_len,
                    base,
                });
            }
        }
        if i == 0 {
            return Err(JavaError::NotZip(
                "no end of central directory record".into(),
            ));
        }
        i -= 1;
    }
}

/// Whether a record with `sig` starts at `offset` (an empty directory has
/// none to check).
fn signature_at(r: &mut dyn ReadSeek, offset: u64, sig: u32, entries: u64) -> bool {
    if entries == 0 {
        return true;
    }
    let mut b = [0u8; 4];
    read_at(r, offset, &mut b).is_ok() && u32::from_le_bytes(b) == sig
}

/// The ZIP64 end record for an end record at `eocd_pos`, when its locator is
/// there: `(entries, cen_len, cen_offset, position)`.
fn zip64_end(
    r: &mut dyn ReadSeek,
    eocd_pos: u64,
) -> Result<Option<(u64, u64, u64, u64)>, JavaError> {
    let Some(loc_pos) = eocd_pos.checked_sub(LOCATOR_LEN) else {
        return Ok(None);
    };
    let mut loc = [0u8; LOCATOR_LEN as usize];
    if read_at(r, loc_pos, &mut loc).is_err() || le32(&loc, 0) != LOCATOR_SIG {
        return Ok(None);
    }
    // The ZIP64 end record sits right before the locator (its stated
    // offset would not account for a prefix).
    let Some(end64_pos) = loc_pos.checked_sub(EOCD64_LEN) else {
        return Ok(None);
    };
    let mut e = [0u8; EOCD64_LEN as usize];
    if read_at(r, end64_pos, &mut e).is_err() || le32(&e, 0) != EOCD64_SIG {
        return Ok(None);
    }
    Ok(Some((le64(&e, 32), le64(&e, 40), le64(&e, 48), end64_pos)))
}

/// Streams the central directory, calling `keep` with each record, and
/// returns the records it keeps. At most `max_entries` records are read.
pub(crate) fn entries(
    r: &mut dyn ReadSeek,
    dir: &Directory,
    max_entries: u64,
    mut keep: impl FnMut(&str) -> bool,
) -> Result<Vec<Entry>, JavaError> {
    if dir.entries > max_entries {
        return Err(JavaError::TooManyEntries {
            count: dir.entries,
            max: max_entries,
        });
    }
    r.seek(SeekFrom::Start(dir.cen_start)).map_err(io_err)?;
    let mut cen = BufReader::with_capacity(64 * 1024, Window::new(r, dir.cen_start, dir.cen_len));
    let mut kept = Vec::new();
    let mut fixed = [0u8; CEN_LEN];
    let mut var = Vec::new();
    let mut offset = 0u64;
    for index in 0..dir.entries {
        cen.read_exact(&mut fixed)
            .map_err(|_| JavaError::Malformed {
                what: "central directory",
                offset,
                reason: format!(
                    "ends after {index} of {} records (truncated or lying end record)",
                    dir.entries
                ),
            })?;
        if le32(&fixed, 0) != CEN_SIG {
            return Err(JavaError::Malformed {
                what: "central directory",
                offset,
                reason: format!("record {index} has no central header signature"),
            });
        }
        let name_len = usize::from(le16(&fixed, 28));
        let extra_len = usize::from(le16(&fixed, 30));
        let comment_len = usize::from(le16(&fixed, 32));
        var.resize(name_len + extra_len + comment_len, 0);
        cen.read_exact(&mut var).map_err(|_| JavaError::Malformed {
            what: "central directory",
            offset,
            reason: format!("record {index} is cut off"),
        })?;
        offset += (CEN_LEN + var.len()) as u64;
        let name = String::from_utf8_lossy(&var[..name_len]);
        if !keep(&name) {
            continue;
        }
        let mut entry = Entry {
            name: name.into_owned(),
            flags: le16(&fixed, 8),
            method: le16(&fixed, 10),
            compressed: u64::from(le32(&fixed, 20)),
            uncompressed: u64::from(le32(&fixed, 24)),
            local_offset: u64::from(le32(&fixed, 42)),
        };
        zip64_extra(&mut entry, &var[name_len..name_len + extra_len]);
        kept.push(entry);
    }
    Ok(kept)
}

/// Replaces saturated 32-bit sizes and offset with the ZIP64 extra field's.
fn zip64_extra(entry: &mut Entry, mut extra: &[u8]) {
    while extra.len() >= 4 {
        let id = le16(extra, 0);
        let size = usize::from(le16(extra, 2));
        let Some(data) = extra.get(4..4 + size) else {
            return;
        };
        if id == 0x0001 {
            let mut at = 0;
            let mut next = |v: &mut u64| {
                if *v == 0xffff_ffff
                    && let Some(b) = data.get(at..at + 8)
                {
                    *v = le64(b, 0);
                    at += 8;
                }
            };
            next(&mut entry.uncompressed);
            next(&mut entry.compressed);
            next(&mut entry.local_offset);
            return;
        }
        extra = &extra[4 + size..];
    }
}

/// The file offset and length of an entry's (compressed) data.
pub(crate) fn data_range(
    r: &mut dyn ReadSeek,
    dir: &Directory,
    entry: &Entry,
    len: u64,
) -> Result<(u64, u64), JavaError> {
    let bad = |reason: String| JavaError::Malformed {
        what: "local header",
        offset: entry.local_offset,
        reason: format!("{}: {reason}", entry.name),
    };
    let loc_pos = dir
        .base
        .checked_add(entry.local_offset)
        .filter(|p| p.checked_add(LOC_LEN).is_some_and(|e| e <= len))
        .ok_or_else(|| bad("outside the archive".into()))?;
    let mut loc = [0u8; LOC_LEN as usize];
    read_at(r, loc_pos, &mut loc).map_err(io_err)?;
    if le32(&loc, 0) != LOC_SIG {
        return Err(bad("no local header signature".into()));
    }
    let start = loc_pos + LOC_LEN + u64::from(le16(&loc, 26)) + u64::from(le16(&loc, 28));
    if start
        .checked_add(entry.compressed)
        .is_none_or(|end| end > len)
    {
        return Err(bad(format!(
            "{} bytes of data run past the end of the archive",
            entry.compressed
        )));
    }
    Ok((start, entry.compressed))
}

/// A window of `len` bytes at `start` of another reader.
pub(crate) struct Window<'a> {
    inner: &'a mut dyn ReadSeek,
    start: u64,
    len: u64,
    pos: u64,
}

impl<'a> Window<'a> {
    pub fn new(inner: &'a mut dyn ReadSeek, start: u64, len: u64) -> Self {
        Window {
            inner,
            start,
            len,
            pos: 0,
        }
    }
}

impl Read for Window<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(left) as usize;
        self.inner.seek(SeekFrom::Start(self.start + self.pos))?;
        let got = self.inner.read(&mut buf[..n])?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl Seek for Window<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        self.pos = target;
        Ok(target)
    }
}
