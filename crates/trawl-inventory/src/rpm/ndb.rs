//! rpm's native database format, NDB (`Packages.db`, SUSE and openSUSE).
//!
//! Written by hand: the format is rpm's own (`lib/backend/ndb/rpmpkg.c` in
//! <https://github.com/rpm-software-management/rpm>) and no crate reads it.
//! All integers are little-endian.
//!
//! - The file starts with slot pages of 4096 bytes. The first 32 bytes are the
//!   header: magic `RpmP`, format version (0), generation, number of slot
//!   pages, next package index.
//! - The rest of the slot pages is an array of 16-byte slots (the first two
//!   slot positions hold the header): magic `Slot`, package index, offset and
//!   length of the package's blob in 16-byte blocks. A slot with offset 0 is
//!   free.
//! - A blob is a 16-byte head (magic `BlbS`, package index, generation, blob
//!   length), the header blob itself, zero padding to a whole block after the
//!   tail, and a 12-byte tail (Adler-32 of head, blob and padding; blob length;
//!   magic `BlbE`).
//!
//! Each slot is checked like rpm checks it (inside the file, after the slot
//! pages, consistent lengths and checksum); a bad slot is reported in its
//! place and the others are still read.

const PAGE_SIZE: usize = 4096;
const SLOT_SIZE: usize = 16;
const BLOCK_SIZE: usize = 16;
const HEADER_SLOTS: usize = 2;
const BLOB_HEAD: usize = 16;
const BLOB_TAIL: usize = 12;
const MAGIC_HEADER: &[u8; 4] = b"RpmP";
const MAGIC_SLOT: &[u8; 4] = b"Slot";
const MAGIC_BLOB_HEAD: &[u8; 4] = b"BlbS";
const MAGIC_BLOB_TAIL: &[u8; 4] = b"BlbE";

/// Why an NDB file, or one of its package blobs, could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NdbError {
    /// Shorter than its header or its declared slot pages.
    #[error("NDB file truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the header declares.
        needed: u64,
        /// Bytes present.
        available: usize,
    },
    /// Not an NDB file, or a version this reader does not know.
    #[error("not an rpm NDB database: {0}")]
    BadHeader(String),
    /// A slot that does not describe a readable blob.
    #[error("NDB slot {slot}: {reason}")]
    BadSlot {
        /// 0-based slot number (2 is the first package slot).
        slot: usize,
        /// What is wrong.
        reason: String,
    },
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// One package blob found in an NDB file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdbBlob<'a> {
    /// rpm's package index (the header number `rpm -q --qf '%{dbinstance}'` shows).
    pub package_index: u32,
    /// The header blob.
    pub data: &'a [u8],
}

/// Every live package blob of an NDB file, in package index order. A broken
/// slot or blob gives an error in its place.
pub fn read_ndb(data: &[u8]) -> Result<Vec<Result<NdbBlob<'_>, NdbError>>, NdbError> {
    if data.len() < 32 {
        return Err(NdbError::Truncated {
            needed: 32,
            available: data.len(),
        });
    }
    if &data[0..4] != MAGIC_HEADER {
        return Err(NdbError::BadHeader(format!("magic {:02x?}", &data[0..4])));
    }
    let version = le32(data, 4);
    if version != 0 {
        return Err(NdbError::BadHeader(format!("version {version}")));
    }
    let slot_pages = u64::from(le32(data, 12));
    let slots_end = slot_pages * PAGE_SIZE as u64;
    if slot_pages == 0 || slots_end > data.len() as u64 {
        return Err(NdbError::Truncated {
            needed: slots_end.max(PAGE_SIZE as u64),
            available: data.len(),
        });
    }
    let slots_end = slots_end as usize;
    let first_blob_block = slots_end / BLOCK_SIZE;
    let file_blocks = data.len() / BLOCK_SIZE;
    let mut found = Vec::new();
    let mut spans = Vec::new();
    for (slot, raw) in data[..slots_end]
        .chunks_exact(SLOT_SIZE)
        .enumerate()
        .skip(HEADER_SLOTS)
    {
        // One past the reader's cap is enough for it to see the cap was hit.
        if found.len() > super::MAX_ENTRIES {
            break;
        }
        let bad = |reason: String| NdbError::BadSlot { slot, reason };
        if &raw[0..4] != MAGIC_SLOT {
            found.push((u32::MAX, Err(bad("no slot magic".into()))));
            continue;
        }
        let (package_index, block_offset, block_count) =
            (le32(raw, 4), le32(raw, 8) as usize, le32(raw, 12) as usize);
        if block_offset == 0 {
            continue;
        }
        let blob = if package_index == 0 || block_count == 0 || block_offset < first_blob_block {
            Err(bad(format!(
                "package {package_index} at block {block_offset} (+{block_count}) overlaps the slot pages or is empty"
            )))
        } else if block_offset.saturating_add(block_count) > file_blocks {
            Err(bad(format!(
                "package {package_index}: blocks {block_offset}+{block_count} beyond the file's {file_blocks}"
            )))
        } else {
            let start = block_offset * BLOCK_SIZE;
            read_blob(
                &data[start..start + block_count * BLOCK_SIZE],
                package_index,
            )
            .map_err(bad)
            .map(|data| NdbBlob {
                package_index,
                data,
            })
        };
        if blob.is_ok() {
            spans.push((block_offset, block_offset + block_count, slot, found.len()));
        }
        found.push((package_index, blob));
    }
    reject_overlaps(&mut found, spans);
    found.sort_by_key(|(index, _)| *index);
    Ok(found.into_iter().map(|(_, blob)| blob).collect())
}

/// rpm never stores two blobs in the same blocks; slots pointing into
/// another slot's blob would let a small file hand out its bytes many times
/// over, so each blob after the first to claim a block is an error.
/// `spans` are (first block, end block, slot, index in `found`).
fn reject_overlaps(
    found: &mut [(u32, Result<NdbBlob<'_>, NdbError>)],
    mut spans: Vec<(usize, usize, usize, usize)>,
) {
    spans.sort_unstable();
    let mut end = 0;
    for (start, stop, slot, i) in spans {
        if start < end {
            let package_index = found[i].0;
            found[i].1 = Err(NdbError::BadSlot {
                slot,
                reason: format!("package {package_index}: blob overlaps another package's"),
            });
        }
        end = end.max(stop);
    }
}

/// Checks one blob's head, tail and checksum; returns the header blob.
fn read_blob(area: &[u8], package_index: u32) -> Result<&[u8], String> {
    if area.len() < BLOB_HEAD + BLOB_TAIL {
        return Err(format!("{} bytes cannot hold a blob", area.len()));
    }
    if &area[0..4] != MAGIC_BLOB_HEAD {
        return Err("no blob magic".into());
    }
    let owner = le32(area, 4);
    if owner != package_index {
        return Err(format!(
            "blob belongs to package {owner}, slot says {package_index}"
        ));
    }
    let len = le32(area, 12) as usize;
    let blocks = (BLOB_HEAD + BLOB_TAIL)
        .saturating_add(len)
        .div_ceil(BLOCK_SIZE);
    if blocks * BLOCK_SIZE != area.len() {
        return Err(format!(
            "blob of {len} bytes does not fill its {} blocks",
            area.len() / BLOCK_SIZE
        ));
    }
    let tail = &area[area.len() - BLOB_TAIL..];
    if &tail[8..12] != MAGIC_BLOB_TAIL || le32(tail, 4) as usize != len {
        return Err("blob tail does not match its head".into());
    }
    let checksum = adler2::adler32_slice(&area[..area.len() - BLOB_TAIL]);
    if checksum != le32(tail, 0) {
        return Err(format!(
            "checksum {checksum:#010x}, tail says {:#010x}",
            le32(tail, 0)
        ));
    }
    Ok(&area[BLOB_HEAD..BLOB_HEAD + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checks() {
        assert!(matches!(read_ndb(b"RpmP"), Err(NdbError::Truncated { .. })));
        let mut file = vec![0u8; PAGE_SIZE];
        file[0..4].copy_from_slice(b"XpmP");
        assert!(matches!(read_ndb(&file), Err(NdbError::BadHeader(_))));
        file[0..4].copy_from_slice(MAGIC_HEADER);
        file[12..16].copy_from_slice(&2u32.to_le_bytes());
        assert!(matches!(
            read_ndb(&file),
            Err(NdbError::Truncated { needed: 8192, .. })
        ));
        file[12..16].copy_from_slice(&1u32.to_le_bytes());
        for slot in file[32..].chunks_exact_mut(16) {
            slot[0..4].copy_from_slice(MAGIC_SLOT);
        }
        assert_eq!(read_ndb(&file), Ok(Vec::new()), "all slots free");
    }
}
