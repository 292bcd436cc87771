//! The parts of an ELF executable that the Go and cargo-auditable readers
//! need: program headers (to map virtual addresses to file offsets) and
//! section headers with their names.
//!
//! The headers are decoded by the `object` crate's low-level ELF types, over
//! any [`ReadRef`]: a byte slice, or an [`object::ReadCache`] that reads a
//! `Read + Seek` file on demand without loading it. Every table and string
//! read is bounded here before `object` is asked for it, so a lying header
//! (a billion sections, a string table of a gigabyte) costs a typed error,
//! not memory. The format: <https://refspecs.linuxfoundation.org/elf/gabi4+/ch4.intro.html>.

use std::marker::PhantomData;

use object::elf::{ELFCLASS32, ELFCLASS64, ELFDATA2LSB, ELFDATA2MSB, PF_W, PF_X, PT_LOAD};
use object::read::ReadRef;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};

/// At most this many program headers are read (real executables have about ten).
pub const MAX_PROGRAM_HEADERS: u32 = 4096;
/// At most this many section headers are read (real executables have tens).
pub const MAX_SECTIONS: u32 = 65_536;
/// The section-name string table is read only up to this size.
pub const MAX_SECTION_NAMES: u64 = 1 << 20;

/// Why an ELF file's headers could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ElfError {
    /// The file does not start with the ELF magic, or its class or byte order
    /// is not one ELF defines.
    #[error("not an ELF file")]
    NotElf,
    /// A header field is inconsistent (the decoder's description).
    #[error("malformed ELF {what}: {reason}")]
    Malformed {
        /// The structure (`file header`, `program headers`, `section headers`).
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A count over this reader's limit.
    #[error("ELF file declares {count} {what}, over the limit of {max}")]
    TooMany {
        /// What is counted.
        what: &'static str,
        /// The declared count.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// A range the headers point to lies (partly) outside the file.
    #[error(
        "{what}: {size} bytes at file offset {offset:#x} lie outside the file ({file_len} bytes)"
    )]
    OutsideFile {
        /// What was being read.
        what: String,
        /// File offset.
        offset: u64,
        /// Bytes wanted.
        size: u64,
        /// The file's length.
        file_len: u64,
    },
    /// A virtual address that no loadable segment maps to file bytes.
    #[error("{what}: virtual address {addr:#x} is in no loaded segment of the file")]
    Unmapped {
        /// What was being read.
        what: String,
        /// The address.
        addr: u64,
    },
}

/// A loadable segment (`PT_LOAD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    pub flags: u32,
    pub vaddr: u64,
    pub offset: u64,
    pub filesz: u64,
    pub memsz: u64,
}

impl Segment {
    /// Writable and not executable: where Go's linker puts `.go.buildinfo`.
    pub fn is_data(&self) -> bool {
        self.flags & (PF_X.0 | PF_W.0) == PF_W.0
    }
}

/// A section header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Section {
    name_offset: u32,
    pub sh_type: u32,
    pub addr: u64,
    pub offset: u64,
    pub size: u64,
}

/// `SHT_NOBITS`: the section occupies no file bytes.
const SHT_NOBITS: u32 = 8;

/// The decoded headers of one ELF file, over its bytes.
pub(crate) struct Elf<'data, R: ReadRef<'data>> {
    data: R,
    len: u64,
    pub segments: Vec<Segment>,
    sections: Vec<Section>,
    section_names: &'data [u8],
    _data: PhantomData<&'data ()>,
}

/// What `object` calls an error is a static description; keep it.
fn malformed(what: &'static str) -> impl Fn(object::read::Error) -> ElfError {
    move |e| ElfError::Malformed {
        what,
        reason: e.to_string(),
    }
}

/// The ELF identification: `(class64, big_endian)`, from the first 16 bytes.
pub(crate) fn ident(head: &[u8]) -> Result<(bool, bool), ElfError> {
    if head.len() < 16 || &head[..4] != b"\x7fELF" {
        return Err(ElfError::NotElf);
    }
    let class64 = match head[4] {
        c if c == ELFCLASS64.0 => true,
        c if c == ELFCLASS32.0 => false,
        _ => return Err(ElfError::NotElf),
    };
    let big_endian = match head[5] {
        d if d == ELFDATA2MSB.0 => true,
        d if d == ELFDATA2LSB.0 => false,
        _ => return Err(ElfError::NotElf),
    };
    Ok((class64, big_endian))
}

impl<'data, R: ReadRef<'data>> Elf<'data, R> {
    /// Decodes the file header, program headers and section headers.
    pub fn parse(data: R) -> Result<Self, ElfError> {
        Self::parse_with(data, true)
    }

    /// Decodes the file header and program headers only (the first bytes of
    /// a file read as a stream: the section headers are at its end).
    pub fn parse_program_headers(data: R) -> Result<Self, ElfError> {
        Self::parse_with(data, false)
    }

    fn parse_with(data: R, with_sections: bool) -> Result<Self, ElfError> {
        let len = data.len().map_err(|()| ElfError::NotElf)?;
        let head = data.read_bytes_at(0, 16).map_err(|()| ElfError::NotElf)?;
        let (class64, _) = ident(head)?;
        let (segments, sections, names) = if class64 {
            headers::<object::elf::FileHeader64<object::Endianness>, R>(data, len, with_sections)?
        } else {
            headers::<object::elf::FileHeader32<object::Endianness>, R>(data, len, with_sections)?
        };
        Ok(Elf {
            data,
            len,
            segments,
            sections,
            section_names: names,
            _data: PhantomData,
        })
    }

    /// Whether `addr` is in the zero-filled tail (`.bss`) of a loaded
    /// segment, past its file bytes.
    pub fn in_bss(&self, addr: u64) -> bool {
        self.segments
            .iter()
            .any(|s| s.vaddr <= addr && addr - s.vaddr >= s.filesz && addr - s.vaddr < s.memsz)
    }

    /// The first section with this name.
    pub fn section(&self, name: &[u8]) -> Option<Section> {
        self.sections.iter().copied().find(|s| {
            let start = s.name_offset as usize;
            self.section_names
                .get(start..)
                .and_then(|rest| rest.get(..name.len() + 1))
                .is_some_and(|n| &n[..name.len()] == name && n[name.len()] == 0)
        })
    }

    /// The file bytes of a section (an error for `SHT_NOBITS` or a range
    /// outside the file).
    pub fn section_data(&self, section: &Section, what: &str) -> Result<&'data [u8], ElfError> {
        if section.sh_type == SHT_NOBITS {
            return Err(ElfError::Malformed {
                what: "section headers",
                reason: "the section occupies no file bytes (SHT_NOBITS)".into(),
            });
        }
        self.read_at(section.offset, section.size, what)
    }

    /// `size` bytes at file offset `offset`.
    pub fn read_at(&self, offset: u64, size: u64, what: &str) -> Result<&'data [u8], ElfError> {
        if offset.checked_add(size).is_none_or(|end| end > self.len) {
            return Err(ElfError::OutsideFile {
                what: what.to_string(),
                offset,
                size,
                file_len: self.len,
            });
        }
        self.data
            .read_bytes_at(offset, size)
            .map_err(|()| ElfError::OutsideFile {
                what: what.to_string(),
                offset,
                size,
                file_len: self.len,
            })
    }

    /// Up to `size` bytes at virtual address `addr`, as Go's `debug/buildinfo`
    /// reads them: from the loaded segment holding `addr`, cut at that
    /// segment's end (so possibly fewer bytes than asked for).
    pub fn read_vaddr(&self, addr: u64, size: u64, what: &str) -> Result<&'data [u8], ElfError> {
        let seg = self
            .segments
            .iter()
            .find(|s| s.filesz > 0 && s.vaddr <= addr && addr - s.vaddr < s.filesz)
            .ok_or_else(|| ElfError::Unmapped {
                what: what.to_string(),
                addr,
            })?;
        let rel = addr - seg.vaddr;
        let n = size.min(seg.filesz - rel);
        let offset = seg.offset.checked_add(rel).ok_or(ElfError::OutsideFile {
            what: what.to_string(),
            offset: u64::MAX,
            size: n,
            file_len: self.len,
        })?;
        self.read_at(offset, n, what)
    }
}

type Headers<'data> = (Vec<Segment>, Vec<Section>, &'data [u8]);

fn headers<'data, H, R>(data: R, len: u64, with_sections: bool) -> Result<Headers<'data>, ElfError>
where
    H: FileHeader<Endian = object::Endianness>,
    R: ReadRef<'data>,
{
    let header = H::parse(data).map_err(malformed("file header"))?;
    let endian = header.endian().map_err(malformed("file header"))?;

    let phnum = header
        .phnum(endian, data)
        .map_err(malformed("program headers"))?;
    if phnum > MAX_PROGRAM_HEADERS {
        return Err(ElfError::TooMany {
            what: "program headers",
            count: phnum.into(),
            max: MAX_PROGRAM_HEADERS.into(),
        });
    }
    let mut segments = Vec::new();
    for ph in header
        .program_headers(endian, data)
        .map_err(malformed("program headers"))?
    {
        if ph.p_type(endian) != PT_LOAD {
            continue;
        }
        segments.push(Segment {
            flags: ph.p_flags(endian).0,
            vaddr: ph.p_vaddr(endian).into(),
            offset: ph.p_offset(endian).into(),
            filesz: ph.p_filesz(endian).into(),
            memsz: ph.p_memsz(endian).into(),
        });
    }

    if !with_sections {
        return Ok((segments, Vec::new(), &[]));
    }
    let shnum = header
        .shnum(endian, data)
        .map_err(malformed("section headers"))?;
    if shnum > MAX_SECTIONS {
        return Err(ElfError::TooMany {
            what: "section headers",
            count: shnum.into(),
            max: MAX_SECTIONS.into(),
        });
    }
    let shdrs = header
        .section_headers(endian, data)
        .map_err(malformed("section headers"))?;
    let mut sections = Vec::with_capacity(shdrs.len());
    for sh in shdrs {
        sections.push(Section {
            name_offset: sh.sh_name(endian),
            sh_type: sh.sh_type(endian).0,
            addr: sh.sh_addr(endian).into(),
            offset: sh.sh_offset(endian).into(),
            size: sh.sh_size(endian).into(),
        });
    }
    let names: &'data [u8] = if sections.is_empty() {
        &[]
    } else {
        let index = header
            .shstrndx(endian, data)
            .map_err(malformed("section headers"))? as usize;
        let strtab = sections.get(index).ok_or(ElfError::Malformed {
            what: "section headers",
            reason: "section name table index out of range".into(),
        })?;
        if strtab.sh_type == SHT_NOBITS {
            &[]
        } else if strtab.size > MAX_SECTION_NAMES {
            return Err(ElfError::TooMany {
                what: "bytes of section names",
                count: strtab.size,
                max: MAX_SECTION_NAMES,
            });
        } else if strtab
            .offset
            .checked_add(strtab.size)
            .is_none_or(|end| end > len)
        {
            return Err(ElfError::OutsideFile {
                what: "section name table".into(),
                offset: strtab.offset,
                size: strtab.size,
                file_len: len,
            });
        } else {
            data.read_bytes_at(strtab.offset, strtab.size)
                .map_err(|()| ElfError::OutsideFile {
                    what: "section name table".into(),
                    offset: strtab.offset,
                    size: strtab.size,
                    file_len: len,
                })?
        }
    };
    Ok((segments, sections, names))
}
