//! An rpm header as the rpm database stores it: the header structure of an
//! `.rpm` file without the lead, the signature header and the 8-byte header
//! magic (rpm's `headerExport` / `headerImport` "blob").
//!
//! Format (<https://rpm-software-management.github.io/rpm/manual/format_header.html>,
//! LSB "Package File Format" § Header), every integer big-endian:
//!
//! ```text
//! il: u32                        number of index entries
//! dl: u32                        size of the data store
//! il × { tag: u32, type: u32, offset: u32, count: u32 }
//! dl bytes of data store         entries' values at their offsets
//! ```
//!
//! Strings are NUL-terminated; `INT32` values are 4-byte aligned in the data
//! store. A header read back from the database starts with a region entry
//! (`HEADERIMMUTABLE`, tag 63) covering the entries the package was built
//! with; entries rpm added at install time follow it, and such a later entry
//! overrides an earlier one with the same tag, so the last one wins here.
//!
//! Written here rather than taken from the `rpm` crate: that crate parses
//! whole `.rpm` files (lead, signature, magic-prefixed header, payload) and
//! offers no entry point for a bare database blob, and it would pull a large
//! dependency tree for the nine tags a scanner needs.

use std::fmt;

/// rpm's own limits on a header (`hdrchkTags`, `hdrchkData`): anything larger
/// is corrupt, whatever the blob's length says.
const MAX_INDEX_ENTRIES: u32 = 0x0000_ffff;
const MAX_DATA_SIZE: u32 = 0x0fff_ffff;
const ENTRY_SIZE: usize = 16;

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_VENDOR: u32 = 1011;
const TAG_LICENSE: u32 = 1014;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;
const TAG_MODULARITYLABEL: u32 = 5096;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;
/// The largest valid type (`RPM_I18NSTRING_TYPE`).
const TYPE_MAX: u32 = 9;

/// The package fields Trawl reads from an rpm header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RpmHeader {
    /// `NAME` (`openssl-libs`).
    pub name: String,
    /// `EPOCH`, when set.
    pub epoch: Option<u32>,
    /// `VERSION` (`3.0.7`).
    pub version: String,
    /// `RELEASE` (`1.el9`).
    pub release: String,
    /// `ARCH` (`x86_64`, `noarch`); absent for `gpg-pubkey` entries.
    pub arch: Option<String>,
    /// `SOURCERPM` (`openssl-3.0.7-1.el9.src.rpm`); absent for source-less
    /// pseudo-packages.
    pub source_rpm: Option<String>,
    /// `MODULARITYLABEL`, for packages from a module stream.
    pub modularity_label: Option<String>,
    /// `LICENSE`.
    pub license: Option<String>,
    /// `VENDOR`.
    pub vendor: Option<String>,
}

/// Why a header blob could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The blob ends before the structure it declares.
    #[error("header truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the header declares (or the 8-byte preamble).
        needed: u64,
        /// Bytes present.
        available: usize,
    },
    /// `il` or `dl` beyond rpm's own limits.
    #[error(
        "header declares {index_entries} index entries and {data_size} data bytes: beyond rpm's limits"
    )]
    TooLarge {
        /// `il`.
        index_entries: u32,
        /// `dl`.
        data_size: u32,
    },
    /// An index entry that does not describe a value inside the data store.
    #[error("index entry {entry} (tag {tag}): {reason}")]
    BadEntry {
        /// 0-based position in the index.
        entry: usize,
        /// The entry's tag.
        tag: u32,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A tag every installed package has is missing.
    #[error("header has no {0} tag")]
    Missing(&'static str),
}

/// One index entry, as read.
#[derive(Debug, Clone, Copy)]
struct Entry {
    position: usize,
    tag: u32,
    kind: u32,
    offset: u32,
    count: u32,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tag {} type {}", self.tag, self.kind)
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// A parsed header: the index and the data store, borrowed from the blob.
struct Layout<'a> {
    index: &'a [u8],
    data: &'a [u8],
}

impl<'a> Layout<'a> {
    fn new(blob: &'a [u8]) -> Result<Self, HeaderError> {
        let truncated = |needed: u64| HeaderError::Truncated {
            needed,
            available: blob.len(),
        };
        let (Some(il), Some(dl)) = (be32(blob, 0), be32(blob, 4)) else {
            return Err(truncated(8));
        };
        if il == 0 || il > MAX_INDEX_ENTRIES || dl > MAX_DATA_SIZE {
            return Err(HeaderError::TooLarge {
                index_entries: il,
                data_size: dl,
            });
        }
        // Both bounded above, so this cannot overflow u64.
        let index_len = u64::from(il) * ENTRY_SIZE as u64;
        let needed = 8 + index_len + u64::from(dl);
        if (blob.len() as u64) < needed {
            return Err(truncated(needed));
        }
        let index_end = 8 + index_len as usize;
        Ok(Layout {
            index: &blob[8..index_end],
            data: &blob[index_end..index_end + dl as usize],
        })
    }

    fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.index
            .chunks_exact(ENTRY_SIZE)
            .enumerate()
            .map(|(position, e)| Entry {
                position,
                tag: u32::from_be_bytes([e[0], e[1], e[2], e[3]]),
                kind: u32::from_be_bytes([e[4], e[5], e[6], e[7]]),
                offset: u32::from_be_bytes([e[8], e[9], e[10], e[11]]),
                count: u32::from_be_bytes([e[12], e[13], e[14], e[15]]),
            })
    }

    fn bad(e: Entry, reason: &'static str) -> HeaderError {
        HeaderError::BadEntry {
            entry: e.position,
            tag: e.tag,
            reason,
        }
    }

    /// The first string of a `STRING`, `STRING_ARRAY` or `I18NSTRING` entry
    /// (the untranslated one for the latter).
    fn string(&self, e: Entry) -> Result<String, HeaderError> {
        if !matches!(e.kind, TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING) {
            return Err(Self::bad(e, "not a string type"));
        }
        if e.count == 0 {
            return Err(Self::bad(e, "string entry with count 0"));
        }
        let start = e.offset as usize;
        let rest = self
            .data
            .get(start..)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| Self::bad(e, "offset beyond the data store"))?;
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| Self::bad(e, "string not NUL-terminated inside the data store"))?;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }

    fn int32(&self, e: Entry) -> Result<u32, HeaderError> {
        if e.kind != TYPE_INT32 {
            return Err(Self::bad(e, "not an INT32"));
        }
        if e.count == 0 {
            return Err(Self::bad(e, "INT32 entry with count 0"));
        }
        if !e.offset.is_multiple_of(4) {
            return Err(Self::bad(e, "INT32 not 4-byte aligned"));
        }
        be32(self.data, e.offset as usize)
            .ok_or_else(|| Self::bad(e, "value beyond the data store"))
    }
}

impl RpmHeader {
    /// Parses a header blob as stored in the rpm database.
    ///
    /// ```
    /// use trawl_inventory::rpm::{RpmHeader, HeaderError};
    /// // il = 1, dl = 4: one NAME string "ab\0" at offset 0 (plus padding).
    /// let mut blob = vec![0, 0, 0, 1, 0, 0, 0, 4];
    /// blob.extend_from_slice(&[0, 0, 0x03, 0xe8, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 1]);
    /// blob.extend_from_slice(b"ab\0\0");
    /// assert_eq!(RpmHeader::parse(&blob), Err(HeaderError::Missing("VERSION")));
    /// assert!(matches!(RpmHeader::parse(&blob[..10]), Err(HeaderError::Truncated { .. })));
    /// ```
    pub fn parse(blob: &[u8]) -> Result<RpmHeader, HeaderError> {
        let layout = Layout::new(blob)?;
        let mut found: [Option<Entry>; 9] = [None; 9];
        for e in layout.entries() {
            if e.kind > TYPE_MAX {
                return Err(Layout::bad(e, "unknown type"));
            }
            // Region trailers are stored as negative offsets in the data store,
            // but index entries themselves always point inside it.
            if e.offset as usize > layout.data.len() {
                return Err(Layout::bad(e, "offset beyond the data store"));
            }
            let slot = match e.tag {
                TAG_NAME => 0,
                TAG_VERSION => 1,
                TAG_RELEASE => 2,
                TAG_EPOCH => 3,
                TAG_ARCH => 4,
                TAG_SOURCERPM => 5,
                TAG_MODULARITYLABEL => 6,
                TAG_LICENSE => 7,
                TAG_VENDOR => 8,
                _ => continue,
            };
            found[slot] = Some(e);
        }
        let string = |slot: usize| found[slot].map(|e| layout.string(e)).transpose();
        let required = |slot: usize, what: &'static str| {
            string(slot)?
                .filter(|s| !s.is_empty())
                .ok_or(HeaderError::Missing(what))
        };
        Ok(RpmHeader {
            name: required(0, "NAME")?,
            version: required(1, "VERSION")?,
            release: required(2, "RELEASE")?,
            epoch: found[3].map(|e| layout.int32(e)).transpose()?,
            arch: string(4)?,
            source_rpm: string(5)?.filter(|s| !s.is_empty()),
            modularity_label: string(6)?.filter(|s| !s.is_empty()),
            license: string(7)?,
            vendor: string(8)?,
        })
    }

    /// `VERSION-RELEASE`, with `EPOCH:` in front when the epoch is set: the
    /// form rpm compares and advisories quote.
    pub fn evr(&self) -> String {
        match self.epoch {
            Some(e) => format!("{e}:{}-{}", self.version, self.release),
            None => format!("{}-{}", self.version, self.release),
        }
    }

    /// The source package's name and version from `SOURCERPM`
    /// (`openssl-3.0.7-1.el9.src.rpm` → `openssl`, `3.0.7-1.el9`), the
    /// version carrying this package's epoch since `SOURCERPM` does not record
    /// one and binary and source packages share it. `None` when there is no
    /// well-formed `SOURCERPM`.
    pub fn source(&self) -> Option<(String, String)> {
        let srpm = self.source_rpm.as_deref()?;
        let stem = srpm
            .strip_suffix(".src.rpm")
            .or_else(|| srpm.strip_suffix(".nosrc.rpm"))?;
        let (rest, release) = stem.rsplit_once('-')?;
        let (name, version) = rest.rsplit_once('-')?;
        if name.is_empty() || version.is_empty() || release.is_empty() {
            return None;
        }
        let evr = match self.epoch {
            Some(e) => format!("{e}:{version}-{release}"),
            None => format!("{version}-{release}"),
        };
        Some((name.to_string(), evr))
    }
}

/// `OLDFILENAMES`: full paths, in headers older than rpm 4.
const TAG_OLDFILENAMES: u32 = 1027;
/// `DIRINDEXES`: for each file, the index of its directory in `DIRNAMES`.
const TAG_DIRINDEXES: u32 = 1116;
/// `BASENAMES`: each file's name within its directory.
const TAG_BASENAMES: u32 = 1117;
/// `DIRNAMES`: the directories, each ending in `/`.
const TAG_DIRNAMES: u32 = 1118;
/// Most directories one header may list before it is taken as hostile (real
/// packages list thousands); bounds the index kept while visiting files.
pub const MAX_DIRNAMES: u32 = 1 << 20;

impl<'a> Layout<'a> {
    /// The `count` NUL-terminated strings of a `STRING_ARRAY` entry, each
    /// with its offset in the data store.
    fn string_array(
        &self,
        e: Entry,
    ) -> Result<impl Iterator<Item = (usize, &'a [u8])> + 'a, HeaderError> {
        if e.kind != TYPE_STRING_ARRAY {
            return Err(Self::bad(e, "not a STRING_ARRAY"));
        }
        // Each string takes at least its NUL: a larger count cannot fit.
        if e.count as usize > self.data.len() {
            return Err(Self::bad(e, "more strings than the data store holds"));
        }
        let mut pos = e.offset as usize;
        let mut rest = self
            .data
            .get(pos..)
            .ok_or_else(|| Self::bad(e, "offset beyond the data store"))?;
        // Checked up front, so the iterator below never runs short.
        let mut probe = rest;
        for _ in 0..e.count {
            let end = probe
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(|| Self::bad(e, "string array runs past the data store"))?;
            probe = &probe[end + 1..];
        }
        Ok((0..e.count).map_while(move |_| {
            let end = rest.iter().position(|&b| b == 0)?;
            let s = (pos, &rest[..end]);
            rest = &rest[end + 1..];
            pos += end + 1;
            Some(s)
        }))
    }

    /// The `INT32` array of an entry, checked to lie inside the data store.
    fn int32_array(&self, e: Entry) -> Result<&'a [u8], HeaderError> {
        if e.kind != TYPE_INT32 {
            return Err(Self::bad(e, "not an INT32"));
        }
        if !e.offset.is_multiple_of(4) {
            return Err(Self::bad(e, "INT32 not 4-byte aligned"));
        }
        let len = (e.count as usize)
            .checked_mul(4)
            .ok_or_else(|| Self::bad(e, "INT32 array too long"))?;
        let start = e.offset as usize;
        start
            .checked_add(len)
            .and_then(|end| self.data.get(start..end))
            .ok_or_else(|| Self::bad(e, "INT32 array runs past the data store"))
    }
}

/// Calls `visit(dirname, basename)` for every file the package of this
/// header blob installs, in header order: the directory ends in `/`
/// (`/usr/lib/python3.9/site-packages/`), so the path is the two joined. Reads
/// `BASENAMES`/`DIRNAMES`/`DIRINDEXES`, or `OLDFILENAMES` in headers from
/// before rpm 4 (then the path is split at its last `/`). A header without
/// files visits nothing. Memory: four bytes per directory, at most
/// [`MAX_DIRNAMES`] directories.
///
/// ```
/// use trawl_inventory::rpm::header::visit_files;
/// // il = 1: OLDFILENAMES ["/etc/a", "/b"] as a STRING_ARRAY at offset 0.
/// let mut blob = vec![0, 0, 0, 1, 0, 0, 0, 10];
/// blob.extend_from_slice(&[0, 0, 0x04, 0x03, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 2]);
/// blob.extend_from_slice(b"/etc/a\0/b\0");
/// let mut files = Vec::new();
/// visit_files(&blob, |d, b| files.push([d, b].concat())).unwrap();
/// assert_eq!(files, [b"/etc/a".to_vec(), b"/b".to_vec()]);
/// ```
pub fn visit_files(blob: &[u8], mut visit: impl FnMut(&[u8], &[u8])) -> Result<(), HeaderError> {
    let layout = Layout::new(blob)?;
    let (mut old, mut indexes, mut bases, mut dirs) = (None, None, None, None);
    for e in layout.entries() {
        match e.tag {
            TAG_OLDFILENAMES => old = Some(e),
            TAG_DIRINDEXES => indexes = Some(e),
            TAG_BASENAMES => bases = Some(e),
            TAG_DIRNAMES => dirs = Some(e),
            _ => {}
        }
    }
    let Some(bases) = bases else {
        if let Some(old) = old {
            for (_, path) in layout.string_array(old)? {
                let cut = path.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
                visit(&path[..cut], &path[cut..]);
            }
        }
        return Ok(());
    };
    let (Some(indexes), Some(dirs)) = (indexes, dirs) else {
        return Err(Layout::bad(
            bases,
            "BASENAMES without DIRNAMES and DIRINDEXES",
        ));
    };
    if dirs.count > MAX_DIRNAMES {
        return Err(Layout::bad(dirs, "more directories than a package has"));
    }
    if indexes.count != bases.count {
        return Err(Layout::bad(
            indexes,
            "DIRINDEXES and BASENAMES differ in length",
        ));
    }
    // Directory strings by index, as offsets into the data store.
    let data = layout.data;
    let mut dir_starts: Vec<u32> = Vec::with_capacity(dirs.count.min(4096) as usize);
    for (offset, _) in layout.string_array(dirs)? {
        // The data store is at most MAX_DATA_SIZE (< 2^32) bytes.
        dir_starts.push(offset as u32);
    }
    let index_bytes = layout.int32_array(indexes)?;
    for (i, (_, name)) in layout.string_array(bases)?.enumerate() {
        let at = i * 4;
        let idx = u32::from_be_bytes([
            index_bytes[at],
            index_bytes[at + 1],
            index_bytes[at + 2],
            index_bytes[at + 3],
        ]);
        let Some(&start) = dir_starts.get(idx as usize) else {
            return Err(Layout::bad(indexes, "directory index out of range"));
        };
        let dir = &data[start as usize..];
        let dir = &dir[..dir.iter().position(|&b| b == 0).unwrap_or(dir.len())];
        visit(dir, name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a blob from (tag, type, value bytes) with correct offsets.
    fn blob(entries: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data: Vec<u8> = Vec::new();
        for (tag, kind, value) in entries {
            if *kind == TYPE_INT32 {
                while !data.len().is_multiple_of(4) {
                    data.push(0);
                }
            }
            for v in [*tag, *kind, data.len() as u32, 1] {
                index.extend_from_slice(&v.to_be_bytes());
            }
            data.extend_from_slice(value);
        }
        let mut out = Vec::new();
        out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend(index);
        out.extend(data);
        out
    }

    fn openssl() -> Vec<u8> {
        blob(&[
            (TAG_NAME, TYPE_STRING, b"openssl-libs\0"),
            (TAG_VERSION, TYPE_STRING, b"3.0.7\0"),
            (TAG_RELEASE, TYPE_STRING, b"1.el9\0"),
            (TAG_EPOCH, TYPE_INT32, &1u32.to_be_bytes()),
            (TAG_ARCH, TYPE_STRING, b"x86_64\0"),
            (TAG_SOURCERPM, TYPE_STRING, b"openssl-3.0.7-1.el9.src.rpm\0"),
            (TAG_LICENSE, TYPE_STRING, b"ASL 2.0\0"),
            (TAG_VENDOR, TYPE_STRING, b"Red Hat, Inc.\0"),
        ])
    }

    #[test]
    fn reads_fields_and_source() {
        let h = RpmHeader::parse(&openssl()).unwrap();
        assert_eq!(
            h,
            RpmHeader {
                name: "openssl-libs".into(),
                epoch: Some(1),
                version: "3.0.7".into(),
                release: "1.el9".into(),
                arch: Some("x86_64".into()),
                source_rpm: Some("openssl-3.0.7-1.el9.src.rpm".into()),
                modularity_label: None,
                license: Some("ASL 2.0".into()),
                vendor: Some("Red Hat, Inc.".into()),
            }
        );
        assert_eq!(h.evr(), "1:3.0.7-1.el9");
        assert_eq!(
            h.source(),
            Some(("openssl".to_string(), "1:3.0.7-1.el9".to_string()))
        );
    }

    #[test]
    fn later_entry_overrides_earlier() {
        let b = blob(&[
            (TAG_NAME, TYPE_STRING, b"a\0"),
            (TAG_VERSION, TYPE_STRING, b"1\0"),
            (TAG_RELEASE, TYPE_STRING, b"1\0"),
            (TAG_NAME, TYPE_STRING, b"b\0"),
        ]);
        assert_eq!(RpmHeader::parse(&b).unwrap().name, "b");
    }

    #[test]
    fn out_of_range_offsets_counts_and_sizes() {
        let good = openssl();
        // Every entry's offset pushed past the data store.
        for i in 0..8 {
            let mut b = good.clone();
            let at = 8 + i * 16 + 8;
            b[at..at + 4].copy_from_slice(&0x00ff_0000u32.to_be_bytes());
            assert!(
                matches!(RpmHeader::parse(&b), Err(HeaderError::BadEntry { entry, .. }) if entry == i),
                "entry {i}"
            );
        }
        // il larger than the blob / than rpm allows.
        let mut b = good.clone();
        b[0..4].copy_from_slice(&1000u32.to_be_bytes());
        assert!(matches!(
            RpmHeader::parse(&b),
            Err(HeaderError::Truncated { .. })
        ));
        b[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            RpmHeader::parse(&b),
            Err(HeaderError::TooLarge { .. })
        ));
        // dl larger than the blob.
        let mut b = good.clone();
        b[4..8].copy_from_slice(&0x0100_0000u32.to_be_bytes());
        assert!(matches!(
            RpmHeader::parse(&b),
            Err(HeaderError::Truncated { .. })
        ));
        // A count of 0 on the epoch, an unknown type, a misaligned INT32.
        let epoch_entry = 8 + 3 * 16;
        let mut b = good.clone();
        b[epoch_entry + 12..epoch_entry + 16].copy_from_slice(&0u32.to_be_bytes());
        assert!(matches!(
            RpmHeader::parse(&b),
            Err(HeaderError::BadEntry { entry: 3, .. })
        ));
        let mut b = good.clone();
        b[epoch_entry + 4..epoch_entry + 8].copy_from_slice(&77u32.to_be_bytes());
        assert!(matches!(
            RpmHeader::parse(&b),
            Err(HeaderError::BadEntry {
                entry: 3,
                reason: "unknown type",
                ..
            })
        ));
        let mut b = good.clone();
        let off = u32::from_be_bytes(b[epoch_entry + 8..epoch_entry + 12].try_into().unwrap());
        b[epoch_entry + 8..epoch_entry + 12].copy_from_slice(&(off + 1).to_be_bytes());
        assert!(matches!(
            RpmHeader::parse(&b),
            Err(HeaderError::BadEntry { entry: 3, .. })
        ));
        // A string running off the end of the data store.
        let mut b = good.clone();
        let last = b.len() - 1;
        b[last] = b'x';
        assert!(matches!(
            RpmHeader::parse(&b),
            Err(HeaderError::BadEntry { entry: 7, .. })
        ));
        // Every truncation fails cleanly.
        for cut in 0..good.len() {
            assert!(RpmHeader::parse(&good[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn source_rpm_forms() {
        let mut h = RpmHeader {
            source_rpm: Some("util-linux-2.32.1-42.el8_8.src.rpm".into()),
            ..RpmHeader::default()
        };
        assert_eq!(
            h.source(),
            Some(("util-linux".into(), "2.32.1-42.el8_8".into()))
        );
        h.source_rpm = Some("garbage".into());
        assert_eq!(h.source(), None);
        h.source_rpm = Some("-1.src.rpm".into());
        assert_eq!(h.source(), None);
    }
}

#[cfg(test)]
mod file_list_tests {
    use super::*;

    /// A blob from (tag, type, count, value bytes), INT32 values aligned.
    fn blob(entries: &[(u32, u32, u32, Vec<u8>)]) -> Vec<u8> {
        let (mut index, mut data) = (Vec::new(), Vec::new());
        for (tag, kind, count, value) in entries {
            if *kind == TYPE_INT32 {
                while data.len() % 4 != 0 {
                    data.push(0);
                }
            }
            for v in [*tag, *kind, data.len() as u32, *count] {
                index.extend_from_slice(&v.to_be_bytes());
            }
            data.extend_from_slice(value);
        }
        let mut out = (entries.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend(index);
        out.extend(data);
        out
    }

    fn ints(v: &[u32]) -> Vec<u8> {
        v.iter().flat_map(|i| i.to_be_bytes()).collect()
    }

    fn files(b: &[u8]) -> Result<Vec<String>, HeaderError> {
        let mut out = Vec::new();
        visit_files(b, |d, n| {
            out.push(format!(
                "{}{}",
                String::from_utf8_lossy(d),
                String::from_utf8_lossy(n)
            ))
        })?;
        Ok(out)
    }

    #[test]
    fn compressed_file_names() {
        let good = blob(&[
            (TAG_NAME, TYPE_STRING, 1, b"python3-urllib3\0".to_vec()),
            (
                TAG_BASENAMES,
                TYPE_STRING_ARRAY,
                3,
                b"METADATA\0site-packages\0x\0".to_vec(),
            ),
            (
                TAG_DIRNAMES,
                TYPE_STRING_ARRAY,
                2,
                b"/usr/lib/a.dist-info/\0/usr/lib/\0".to_vec(),
            ),
            (TAG_DIRINDEXES, TYPE_INT32, 3, ints(&[0, 1, 0])),
        ]);
        assert_eq!(
            files(&good).unwrap(),
            [
                "/usr/lib/a.dist-info/METADATA",
                "/usr/lib/site-packages",
                "/usr/lib/a.dist-info/x"
            ]
        );
        // Directory index out of range; counts that disagree; missing arrays.
        let bad_index = blob(&[
            (TAG_BASENAMES, TYPE_STRING_ARRAY, 1, b"a\0".to_vec()),
            (TAG_DIRNAMES, TYPE_STRING_ARRAY, 1, b"/\0".to_vec()),
            (TAG_DIRINDEXES, TYPE_INT32, 1, ints(&[7])),
        ]);
        assert!(matches!(
            files(&bad_index),
            Err(HeaderError::BadEntry { .. })
        ));
        let short = blob(&[
            (TAG_BASENAMES, TYPE_STRING_ARRAY, 2, b"a\0b\0".to_vec()),
            (TAG_DIRNAMES, TYPE_STRING_ARRAY, 1, b"/\0".to_vec()),
            (TAG_DIRINDEXES, TYPE_INT32, 1, ints(&[0])),
        ]);
        assert!(matches!(files(&short), Err(HeaderError::BadEntry { .. })));
        let lying_count = blob(&[
            (TAG_BASENAMES, TYPE_STRING_ARRAY, 1000, b"a\0".to_vec()),
            (TAG_DIRNAMES, TYPE_STRING_ARRAY, 1, b"/\0".to_vec()),
            (TAG_DIRINDEXES, TYPE_INT32, 1000, ints(&[0])),
        ]);
        assert!(matches!(
            files(&lying_count),
            Err(HeaderError::BadEntry { .. })
        ));
        let alone = blob(&[(TAG_BASENAMES, TYPE_STRING_ARRAY, 1, b"a\0".to_vec())]);
        assert!(matches!(files(&alone), Err(HeaderError::BadEntry { .. })));
        let none = blob(&[(TAG_NAME, TYPE_STRING, 1, b"a\0".to_vec())]);
        assert_eq!(files(&none).unwrap(), Vec::<String>::new());
        for cut in 0..good.len() {
            let _ = files(&good[..cut]);
        }
    }
}
