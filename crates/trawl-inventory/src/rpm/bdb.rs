//! A reader for the Berkeley DB hash access method, enough to list every value
//! of rpm's `Packages` database (CentOS/RHEL ≤ 8, Amazon Linux 2).
//!
//! Written by hand: no maintained Rust crate reads Berkeley DB files, and
//! linking libdb would put a large C library on the path of untrusted input.
//! The layout below is from Berkeley DB's `dbinc/db_page.h` and `hash/hash.h`
//! (<https://docs.oracle.com/cd/E17276_01/html/programmer_reference/am_conf.html>
//! documents the access method, the headers the bytes).
//!
//! The file is an array of pages of `pagesize` bytes. All integers are in the
//! byte order of the machine that created the file; the metadata page's magic
//! tells which.
//!
//! - Page 0, the hash metadata page: `magic` (0x061561) at 12, `version` at 16,
//!   `pagesize` at 20, `encrypt_alg` at 24, page `type` (8) at 25, `metaflags`
//!   at 26 (bit 0: pages carry checksums), `last_pgno` at 32, `max_bucket` at 72,
//!   `spares[32]` at 96. Bucket `b` lives on page `b + spares[⌈log2(b+1)⌉]`.
//! - Every other page starts with a 26-byte header: `next_pgno` at 16, `entries`
//!   (u16) at 20, `hf_offset` (u16) at 22, `type` at 25; with checksums the
//!   index starts at 32 instead of 26.
//! - Hash pages (type 13, or 2 for files from before 4.6) hold `entries` u16
//!   offsets, in key/value pairs; item `i` spans from its offset to the offset
//!   of item `i-1` (the page end for item 0). An item's first byte is its kind:
//!   `H_KEYDATA` (1, the bytes follow) or `H_OFFPAGE` (3: 3 bytes padding, the
//!   first overflow page number u32, the total length u32). A bucket continues
//!   on the page `next_pgno` names.
//! - Overflow pages (type 7) carry `hf_offset` bytes of the value after the
//!   header and chain through `next_pgno` (0 ends the chain).
//! - A bucket page that was never written (zeros, so its own page number at
//!   offset 8 is 0) is an empty bucket: Berkeley DB allocates bucket pages
//!   without writing them, and an empty database made by `db_load` or rpm
//!   has nothing but such buckets.
//!
//! Every page is visited at most once, so a hostile file cannot loop or make
//! the walk quadratic; every offset and length is checked against the file.

use std::borrow::Cow;
use std::ops::ControlFlow;

const HASH_MAGIC: u32 = 0x0006_1561;
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASHMETA: u8 = 8;
const P_HASH: u8 = 13;
const H_KEYDATA: u8 = 1;
const H_OFFPAGE: u8 = 3;
const PAGE_HEADER: usize = 26;
/// With `DBMETA_CHKSUM` a 2-byte pad and a 4-byte checksum follow the header.
const PAGE_HEADER_CHECKSUMMED: usize = 32;
const METAFLAG_CHECKSUM: u8 = 0x01;
const NCACHED: usize = 32;

/// Why a Berkeley DB file, or one of its values, could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BdbError {
    /// Shorter than a metadata page.
    #[error("Berkeley DB file truncated: {0} bytes")]
    Truncated(usize),
    /// No hash magic in either byte order.
    #[error("not a Berkeley DB hash database (magic {0:#x})")]
    NotHash(u32),
    /// A metadata field out of range.
    #[error("Berkeley DB metadata: {0}")]
    BadMeta(String),
    /// Encrypted databases cannot be read without the key.
    #[error("Berkeley DB file is encrypted")]
    Encrypted,
    /// A page that is missing, of the wrong type or malformed.
    #[error("Berkeley DB page {page}: {reason}")]
    BadPage {
        /// The page number.
        page: u32,
        /// What is wrong.
        reason: String,
    },
}

/// One key and its value: borrowed when stored on a hash page, owned when
/// gathered from a chain of overflow pages.
pub type BdbPair<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

/// Byte order of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Little,
    Big,
}

/// An opened Berkeley DB hash file: its metadata, and its pages borrowed.
#[derive(Debug)]
pub struct BdbHash<'a> {
    data: &'a [u8],
    order: Order,
    page_size: usize,
    header_len: usize,
    /// Pages actually present (`last_pgno + 1`, capped by the file length).
    page_count: u32,
    max_bucket: u32,
    spares: [u32; NCACHED],
}

impl<'a> BdbHash<'a> {
    /// Reads the metadata page and checks it describes a hash database whose
    /// pages fit in `data`.
    pub fn open(data: &'a [u8]) -> Result<BdbHash<'a>, BdbError> {
        if data.len() < 512 {
            return Err(BdbError::Truncated(data.len()));
        }
        let le = u32::from_le_bytes([data[12], data[13], data[14], data[15]]);
        let order = if le == HASH_MAGIC {
            Order::Little
        } else if le.swap_bytes() == HASH_MAGIC {
            Order::Big
        } else {
            return Err(BdbError::NotHash(le));
        };
        let u32_at = |at: usize| read_u32(data, at, order).unwrap_or(0);
        let version = u32_at(16);
        if !(8..=10).contains(&version) {
            return Err(BdbError::BadMeta(format!("hash version {version}")));
        }
        let page_size = u32_at(20) as usize;
        if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(BdbError::BadMeta(format!("page size {page_size}")));
        }
        if data[24] != 0 {
            return Err(BdbError::Encrypted);
        }
        if data[25] != P_HASHMETA {
            return Err(BdbError::BadMeta(format!("page 0 has type {}", data[25])));
        }
        let header_len = if data[26] & METAFLAG_CHECKSUM != 0 {
            PAGE_HEADER_CHECKSUMMED
        } else {
            PAGE_HEADER
        };
        let in_file = (data.len() / page_size) as u64;
        let last_pgno = u64::from(u32_at(32));
        let page_count = (last_pgno + 1).min(in_file) as u32;
        let mut spares = [0u32; NCACHED];
        for (i, s) in spares.iter_mut().enumerate() {
            *s = u32_at(96 + 4 * i);
        }
        Ok(BdbHash {
            data,
            order,
            page_size,
            header_len,
            page_count,
            max_bucket: u32_at(72),
            spares,
        })
    }

    /// True when the file was written big-endian.
    pub fn is_big_endian(&self) -> bool {
        self.order == Order::Big
    }

    /// The page size in bytes.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Every key/value pair, bucket by bucket. A broken value or bucket chain
    /// yields an error in its place and the walk goes on with the next one.
    pub fn pairs(&self) -> Vec<Result<BdbPair<'a>, BdbError>> {
        let mut out = Vec::new();
        self.visit_pairs(|pair| {
            out.push(pair);
            ControlFlow::Continue(())
        });
        out
    }

    /// Like [`BdbHash::pairs`], handing each pair to `visit` as soon as it is
    /// read, so that an overflow value's buffer can be dropped before the
    /// next one is gathered; the walk ends when `visit` breaks.
    pub fn visit_pairs(
        &self,
        mut visit: impl FnMut(Result<BdbPair<'a>, BdbError>) -> ControlFlow<()>,
    ) {
        let mut visited = vec![false; self.page_count as usize];
        // The bucket count comes from the file: never walk more buckets than
        // there are pages to hold them.
        let buckets = u64::from(self.max_bucket) + 1;
        for bucket in 0..buckets.min(u64::from(self.page_count)) {
            let mut pgno = match self.bucket_page(bucket as u32) {
                Ok(p) => p,
                Err(e) => {
                    if visit(Err(e)).is_break() {
                        return;
                    }
                    continue;
                }
            };
            while pgno != 0 {
                match self.hash_page(pgno, &mut visited, &mut visit) {
                    Ok(Some(next)) => pgno = next,
                    Ok(None) => return,
                    Err(e) => {
                        if visit(Err(e)).is_break() {
                            return;
                        }
                        break;
                    }
                }
            }
        }
    }

    /// The first page of `bucket` (`BS_TO_PAGE` in Berkeley DB).
    fn bucket_page(&self, bucket: u32) -> Result<u32, BdbError> {
        let log2 = (u64::from(bucket) + 1).next_power_of_two().trailing_zeros() as usize;
        let spare = self.spares.get(log2).copied().unwrap_or(0);
        match bucket.checked_add(spare) {
            // Page 0 is the metadata page: no bucket lives there.
            Some(0) | None => Err(BdbError::BadMeta(format!(
                "bucket {bucket}: spare {spare} names no page"
            ))),
            Some(page) => Ok(page),
        }
    }

    fn page(&self, pgno: u32, visited: &mut [bool]) -> Result<&'a [u8], BdbError> {
        let bad = |reason: &str| BdbError::BadPage {
            page: pgno,
            reason: reason.to_string(),
        };
        let seen = visited
            .get_mut(pgno as usize)
            .ok_or_else(|| bad("beyond the end of the file"))?;
        if *seen {
            return Err(bad("reached twice (a cycle or a shared page)"));
        }
        *seen = true;
        let start = pgno as usize * self.page_size;
        self.data
            .get(start..start + self.page_size)
            .ok_or_else(|| bad("beyond the end of the file"))
    }

    fn u16_at(&self, page: &[u8], at: usize) -> u16 {
        let b = [page[at], page[at + 1]];
        match self.order {
            Order::Little => u16::from_le_bytes(b),
            Order::Big => u16::from_be_bytes(b),
        }
    }

    /// Hands the pairs of one hash page to `visit`; returns its `next_pgno`,
    /// or `None` when `visit` broke off the walk.
    fn hash_page(
        &self,
        pgno: u32,
        visited: &mut [bool],
        visit: &mut impl FnMut(Result<BdbPair<'a>, BdbError>) -> ControlFlow<()>,
    ) -> Result<Option<u32>, BdbError> {
        let page = self.page(pgno, visited)?;
        let bad = |reason: String| BdbError::BadPage { page: pgno, reason };
        // Berkeley DB reads bucket pages blindly: one never written (all
        // zeros, its page number field 0) is an empty bucket (`__ham_pgin`).
        if page[25] != P_HASHMETA && read_u32(page, 8, self.order) == Some(0) {
            return Ok(Some(0));
        }
        let kind = page[25];
        if kind != P_HASH && kind != P_HASH_UNSORTED {
            return Err(bad(format!("bucket page has type {kind}")));
        }
        let next = read_u32(page, 16, self.order).unwrap_or(0);
        let entries = usize::from(self.u16_at(page, 20));
        let index_end = self.header_len + 2 * entries;
        if entries % 2 != 0 || index_end > self.page_size {
            return Err(bad(format!("{entries} entries do not fit the page")));
        }
        let item = |i: usize| -> Result<&'a [u8], BdbError> {
            let start = usize::from(self.u16_at(page, self.header_len + 2 * i));
            let end = if i == 0 {
                self.page_size
            } else {
                usize::from(self.u16_at(page, self.header_len + 2 * (i - 1)))
            };
            if start < index_end || start >= end || end > self.page_size {
                return Err(bad(format!("item {i} spans {start}..{end}")));
            }
            Ok(&page[start..end])
        };
        for pair in 0..entries / 2 {
            let mut read_pair = || -> Result<_, BdbError> {
                let key = self.item_value(item(2 * pair)?, pgno, visited)?;
                let value = self.item_value(item(2 * pair + 1)?, pgno, visited)?;
                Ok((key, value))
            };
            if visit(read_pair()).is_break() {
                return Ok(None);
            }
        }
        Ok(Some(next))
    }

    /// The bytes an item stands for: inline, or gathered from overflow pages.
    fn item_value(
        &self,
        item: &'a [u8],
        pgno: u32,
        visited: &mut [bool],
    ) -> Result<Cow<'a, [u8]>, BdbError> {
        match item[0] {
            H_KEYDATA => Ok(Cow::Borrowed(&item[1..])),
            H_OFFPAGE => {
                let (Some(first), Some(total)) =
                    (read_u32(item, 4, self.order), read_u32(item, 8, self.order))
                else {
                    return Err(BdbError::BadPage {
                        page: pgno,
                        reason: format!("off-page item of {} bytes", item.len()),
                    });
                };
                self.overflow(first, total, visited).map(Cow::Owned)
            }
            other => Err(BdbError::BadPage {
                page: pgno,
                reason: format!("unsupported item kind {other} (duplicates are not used by rpm)"),
            }),
        }
    }

    /// Concatenates an overflow chain, checking it adds up to `total` bytes.
    fn overflow(&self, first: u32, total: u32, visited: &mut [bool]) -> Result<Vec<u8>, BdbError> {
        let total = total as usize;
        if total > self.data.len() {
            return Err(BdbError::BadPage {
                page: first,
                reason: format!("overflow item of {total} bytes is larger than the file"),
            });
        }
        let mut value = Vec::with_capacity(total);
        let mut pgno = first;
        while pgno != 0 {
            let page = self.page(pgno, visited)?;
            let bad = |reason: String| BdbError::BadPage { page: pgno, reason };
            if page[25] != P_OVERFLOW {
                return Err(bad(format!(
                    "overflow chain reaches a page of type {}",
                    page[25]
                )));
            }
            let len = usize::from(self.u16_at(page, 22));
            let chunk = page
                .get(self.header_len..self.header_len + len)
                .ok_or_else(|| bad(format!("overflow length {len} exceeds the page")))?;
            if value.len() + chunk.len() > total {
                return Err(bad(format!("overflow chain longer than its {total} bytes")));
            }
            value.extend_from_slice(chunk);
            pgno = read_u32(page, 16, self.order).unwrap_or(0);
        }
        if value.len() != total {
            return Err(BdbError::BadPage {
                page: first,
                reason: format!("overflow chain holds {} of {total} bytes", value.len()),
            });
        }
        Ok(value)
    }
}

fn read_u32(b: &[u8], at: usize, order: Order) -> Option<u32> {
    let bytes: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(match order {
        Order::Little => u32::from_le_bytes(bytes),
        Order::Big => u32::from_be_bytes(bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_is_not_a_hash_database() {
        assert_eq!(
            BdbHash::open(&[0; 100]).unwrap_err(),
            BdbError::Truncated(100)
        );
        assert!(matches!(
            BdbHash::open(&[0; 4096]),
            Err(BdbError::NotHash(0))
        ));
        let mut meta = vec![0u8; 4096];
        meta[12..16].copy_from_slice(&HASH_MAGIC.to_be_bytes());
        meta[16..20].copy_from_slice(&9u32.to_be_bytes());
        meta[20..24].copy_from_slice(&1000u32.to_be_bytes());
        assert!(matches!(BdbHash::open(&meta), Err(BdbError::BadMeta(_))));
        meta[20..24].copy_from_slice(&4096u32.to_be_bytes());
        meta[25] = P_HASHMETA;
        let db = BdbHash::open(&meta).unwrap();
        assert!(db.is_big_endian());
        // max_bucket 0, spares 0: bucket 0 is page 0, the metadata page.
        let pairs = db.pairs();
        assert_eq!(pairs.len(), 1);
        assert!(matches!(pairs[0], Err(BdbError::BadMeta(_))));
    }

    #[test]
    fn bucket_pages_follow_spares() {
        let mut meta = vec![0u8; 4096];
        meta[12..16].copy_from_slice(&HASH_MAGIC.to_le_bytes());
        meta[16..20].copy_from_slice(&9u32.to_le_bytes());
        meta[20..24].copy_from_slice(&4096u32.to_le_bytes());
        meta[25] = P_HASHMETA;
        for (i, s) in [1u32, 1, 1, 2].iter().enumerate() {
            meta[96 + 4 * i..100 + 4 * i].copy_from_slice(&s.to_le_bytes());
        }
        let db = BdbHash::open(&meta).unwrap();
        let pages: Vec<u32> = (0..8).map(|b| db.bucket_page(b).unwrap()).collect();
        assert_eq!(pages, [1, 2, 3, 4, 6, 7, 8, 9]);
    }
}
