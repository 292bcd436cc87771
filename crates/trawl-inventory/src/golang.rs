//! Go binaries: the module build info the Go linker embeds in every
//! executable built in module mode (what `go version -m` prints).
//!
//! # The format (Go's `debug/buildinfo` and `runtime/debug.ParseBuildInfo`)
//!
//! The linker writes a 32-byte header, aligned to 16 bytes, at the start of
//! the `.go.buildinfo` section (the first section of the writable data
//! segment): the magic `"\xff Go buildinf:"` (14 bytes), the pointer size
//! (4 or 8), a flags byte (bit 0: big-endian, bit 1: strings inline), and
//! 16 more bytes.
//!
//! - **Inline** (Go 1.18 and later, flag bit 1): after the header, two
//!   strings, each an unsigned LEB128 length followed by its bytes: the Go
//!   version (`go1.21.5`), then the module info.
//! - **Pointer** (Go 1.13 to 1.17): at header offsets 16 and 16 + pointer
//!   size, two pointers (virtual addresses, in the file's byte order) to Go
//!   string headers `{data pointer, length}` — `runtime.buildVersion` and
//!   `runtime.modinfo` — whose bytes are found through the program headers.
//!
//! The module info is wrapped in two 16-byte sentinels and is made of lines:
//! `path\t<main package>`, `mod\t<path>\t<version>[\t<sum>]` (the main
//! module; version `(devel)` when built from a checkout), `dep\t…` (each
//! dependency, same columns), `=>\t<path>\t<version>\t<sum>` (the module on
//! the previous line is replaced by this one; a local directory replacement
//! has an empty version), and `build\t<key>=<value>` (build settings, not
//! used here). A binary built outside module mode has no module info.
//!
//! # Reading
//!
//! [`read_elf`] reads a whole file in memory and [`read_elf_seekable`] a
//! `Read + Seek` file on demand, both like `go version -m`: the
//! `.go.buildinfo` section (or the first writable, non-executable loadable
//! segment when the section headers are stripped), 64 KiB searched for the
//! aligned magic; both formats. [`read_stream`] reads a file that can only be
//! read once, front to back (a binary too large to keep): it takes the
//! program headers from the first bytes and scans the data segments for the
//! magic as the bytes pass, so the inline format is read without keeping
//! anything but the header and strings; the pointer format needs random
//! access and gives [`GoBuildInfoError::NeedsRandomAccess`].
//!
//! Everything read is bounded: [`MAX_VERSION_LEN`], [`MAX_MODINFO_LEN`],
//! [`MAX_MODULES`], and the ELF reader's own limits.
//!
//! # Packages
//!
//! [`packages`] turns the build info into [`Package`]s (`pkg:golang/…`):
//! the toolchain as `stdlib` (role [`PackageRole::Toolchain`], the version
//! as written, `go1.21.5`), the main module ([`PackageRole::Main`]; a
//! `(devel)` version is kept but has no version to match, and gets no
//! version in its purl) and every dependency ([`PackageRole::Dependency`]).
//! For a replaced dependency the replacement is what is linked, so the
//! package is the replacement's path and version (as Trivy reports it); the
//! module it replaces stays visible in `found_by`:
//! `buildinfo (replaces example.com/old v1.0.0)`.

use std::io::{Read, Seek};

use object::read::ReadRef;
use serde::{Deserialize, Serialize};

use crate::elf::{Elf, ElfError};
use crate::extract::{BinaryFormat, ElfDepsExtractor, elf_packages_of};
use crate::{Cataloger, Inventory, OsRelease, Package, PackageKind, PackageRole};
use trawl_layers::{MergedFs, Selection};

/// The Go modules linked into the image's executables (from the
/// [`ElfDepsExtractor`] results the layer reader kept); a binary that could
/// not be read is an [`crate::InventoryWarning::UnreadableFile`].
#[derive(Debug, Clone, Copy, Default)]
pub struct GoBinaryCataloger;

impl Cataloger for GoBinaryCataloger {
    fn name(&self) -> &'static str {
        "go-binary"
    }

    fn selection(&self) -> Selection {
        Selection::new().with_extractor(ElfDepsExtractor)
    }

    fn catalog(&self, fs: &MergedFs, _os: Option<&OsRelease>, inventory: &mut Inventory) {
        for x in fs.extracted(ElfDepsExtractor::ID) {
            let (pkgs, warnings) = elf_packages_of(BinaryFormat::Go, x.path, x.layer, x.result);
            inventory.packages.extend(pkgs);
            inventory.warnings.extend(warnings);
        }
    }
}

/// The build-info magic.
pub const MAGIC: &[u8; 14] = b"\xff Go buildinf:";
/// The longest Go version string read.
pub const MAX_VERSION_LEN: u64 = 4096;
/// The longest module-info text read.
pub const MAX_MODINFO_LEN: u64 = 8 << 20;
/// The most modules (main, dependencies) one binary's build info may list.
pub const MAX_MODULES: usize = 20_000;

/// How far past the data start the header is searched (as Go does).
const SEARCH_LEN: u64 = 64 * 1024;
const HEADER_LEN: usize = 32;
const ALIGN: u64 = 16;

/// What `go version -m` reads from a Go binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoBuildInfo {
    /// The toolchain version, as written (`go1.21.5`, `devel go1.22-…`).
    pub go_version: String,
    /// How the build info was stored.
    pub format: GoBuildInfoFormat,
    /// The main package's import path (`path` line), when recorded.
    pub path: Option<String>,
    /// The main module (`mod` line), when built in module mode.
    pub main: Option<GoModule>,
    /// Every dependency (`dep` lines), in the binary's order.
    pub deps: Vec<GoModule>,
}

/// The two layouts of the build-info header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GoBuildInfoFormat {
    /// Go 1.18 and later: the strings follow the header.
    Inline,
    /// Go 1.13 to 1.17: the header points to the strings.
    Pointer,
}

/// A module of the build info.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoModule {
    /// Module path (`golang.org/x/text`).
    pub path: String,
    /// Module version (`v0.14.0`, `(devel)`).
    pub version: String,
    /// The go.sum hash (`h1:…`), when recorded.
    pub sum: String,
    /// The module that replaced it (`=>` line): what was linked.
    pub replace: Option<GoReplacement>,
}

/// The module replacing another (`=>` line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoReplacement {
    /// Module path, or a local directory (`../greet`).
    pub path: String,
    /// Version; empty for a local directory.
    pub version: String,
    /// The go.sum hash, when recorded.
    pub sum: String,
}

/// Why a binary's Go build info could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GoBuildInfoError {
    /// The ELF headers could not be used.
    #[error(transparent)]
    Elf(#[from] ElfError),
    /// The build-info header at `offset` is not one Go writes.
    #[error("Go build info header at file offset {offset:#x}: {reason}")]
    BadHeader {
        /// File offset of the magic.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A string of the build info is longer than this reader accepts.
    #[error("Go build info {what} is {len} bytes long, over the limit of {max}")]
    TooLong {
        /// `version` or `module info`.
        what: &'static str,
        /// Declared length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A string of the build info ends past the data it should be in
    /// (a truncated file, or a length or pointer that lies).
    #[error("Go build info {what}: {len} bytes declared, {available} present")]
    Truncated {
        /// `version` or `module info`.
        what: &'static str,
        /// Declared length.
        len: u64,
        /// Bytes present.
        available: u64,
    },
    /// The header is there but the version string is empty.
    #[error("Go build info has an empty Go version")]
    EmptyVersion,
    /// A line of the module info that Go itself would reject.
    #[error("Go module info line {line}: {reason}")]
    BadModinfo {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// More modules than [`MAX_MODULES`].
    #[error("Go module info lists more than {max} modules")]
    TooManyModules {
        /// The limit.
        max: usize,
    },
    /// A Go 1.13–1.17 binary (pointer format) read from a stream, which
    /// cannot go back to where the pointers lead.
    #[error(
        "Go build info at file offset {offset:#x} uses the pointer format (Go 1.13-1.17), which needs random access to the file"
    )]
    NeedsRandomAccess {
        /// File offset of the header.
        offset: u64,
    },
    /// The stream could not be read.
    #[error("reading the binary: {0}")]
    Io(String),
}

/// Reads the build info of an ELF file held in memory: `Ok(None)` when it is
/// not a Go binary (no build-info header).
///
/// ```
/// // Not an ELF file at all.
/// assert!(trawl_inventory::golang::read_elf(b"#!/bin/sh\n").is_err());
/// ```
pub fn read_elf(data: &[u8]) -> Result<Option<GoBuildInfo>, GoBuildInfoError> {
    read_from(&Elf::parse(data)?)
}

/// Reads the build info of an ELF file through `Read + Seek`, reading only
/// the headers and the ranges the build info is in.
pub fn read_elf_seekable<R: Read + Seek>(file: R) -> Result<Option<GoBuildInfo>, GoBuildInfoError> {
    let cache = object::ReadCache::new(file);
    read_from(&Elf::parse(&cache)?)
}

/// Reads the build info from a parsed ELF file.
pub(crate) fn read_from<'data, R: ReadRef<'data>>(
    elf: &Elf<'data, R>,
) -> Result<Option<GoBuildInfo>, GoBuildInfoError> {
    // Go's `DataStart`: the section when its header survives, else the
    // first writable non-executable segment.
    let start = if let Some(section) = elf.section(b".go.buildinfo") {
        section.addr
    } else if let Some(seg) = elf.segments.iter().find(|s| s.is_data()) {
        seg.vaddr
    } else {
        return Ok(None);
    };
    let data = match elf.read_vaddr(start, SEARCH_LEN, "Go build info") {
        Ok(d) => d,
        // A data segment that maps no file bytes holds no build info.
        Err(ElfError::Unmapped { .. }) if elf.section(b".go.buildinfo").is_none() => {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let Some(at) = find_header(data, 0) else {
        return Ok(None);
    };
    let header = &data[at..at + HEADER_LEN];
    let header_addr = start.saturating_add(at as u64);
    let offset_of = |addr: u64| {
        elf.segments
            .iter()
            .find(|s| s.vaddr <= addr && addr - s.vaddr < s.filesz)
            .map_or(0, |s| s.offset.saturating_add(addr - s.vaddr))
    };
    let ptr_size = header[14];
    let flags = header[15];
    let (version, modinfo, format) = if flags & 2 != 0 {
        let mut addr = header_addr.saturating_add(HEADER_LEN as u64);
        let version = read_varint_string(elf, &mut addr, "version", MAX_VERSION_LEN)?;
        let modinfo = read_varint_string(elf, &mut addr, "module info", MAX_MODINFO_LEN)?;
        (version, modinfo, GoBuildInfoFormat::Inline)
    } else {
        if ptr_size != 4 && ptr_size != 8 {
            return Err(GoBuildInfoError::BadHeader {
                offset: offset_of(header_addr),
                reason: format!("pointer size {ptr_size}, not 4 or 8"),
            });
        }
        let big = flags & 1 != 0;
        let p = usize::from(ptr_size);
        let version_ptr = read_ptr(&header[16..16 + p], big);
        let modinfo_ptr = read_ptr(&header[16 + p..16 + 2 * p], big);
        let version = read_go_string(
            elf,
            version_ptr,
            p,
            big,
            "version",
            "runtime.buildVersion",
            MAX_VERSION_LEN,
        )?;
        let modinfo = read_go_string(
            elf,
            modinfo_ptr,
            p,
            big,
            "module info",
            "runtime.modinfo",
            MAX_MODINFO_LEN,
        )?;
        (version, modinfo, GoBuildInfoFormat::Pointer)
    };
    finish(version, modinfo, format).map(Some)
}

/// The first 16-aligned (relative to `base`) offset in `data` holding the
/// magic with a whole header after it.
fn find_header(data: &[u8], base: u64) -> Option<usize> {
    let finder = memchr::memmem::Finder::new(MAGIC);
    let mut from = 0;
    while let Some(i) = finder.find(&data[from..]).map(|i| i + from) {
        if data.len() - i < HEADER_LEN {
            return None;
        }
        if (base + i as u64).is_multiple_of(ALIGN) {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

fn read_ptr(b: &[u8], big: bool) -> u64 {
    match (b.len(), big) {
        (4, false) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]).into(),
        (4, true) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]).into(),
        (_, false) => u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        (_, true) => u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
    }
}

/// An unsigned LEB128 value (Go's `binary.Uvarint`): `(value, bytes used)`.
fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut x = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        if i == 9 && byte > 1 {
            return None;
        }
        x |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Some((x, i + 1));
        }
    }
    None
}

/// A length-prefixed string of the inline format, at virtual address `addr`
/// (advanced past it).
fn read_varint_string<'data, R: ReadRef<'data>>(
    elf: &Elf<'data, R>,
    addr: &mut u64,
    what: &'static str,
    max: u64,
) -> Result<Vec<u8>, GoBuildInfoError> {
    let head = elf.read_vaddr(*addr, 10, what)?;
    let (len, n) = uvarint(head).ok_or_else(|| GoBuildInfoError::BadHeader {
        offset: *addr,
        reason: format!("the {what} length is not a valid varint"),
    })?;
    if len > max {
        return Err(GoBuildInfoError::TooLong { what, len, max });
    }
    *addr = addr.saturating_add(n as u64);
    let bytes = if len == 0 {
        &[][..]
    } else {
        elf.read_vaddr(*addr, len, what)?
    };
    if (bytes.len() as u64) < len {
        return Err(GoBuildInfoError::Truncated {
            what,
            len,
            available: bytes.len() as u64,
        });
    }
    *addr = addr.saturating_add(len);
    Ok(bytes.to_vec())
}

/// A Go string `{data, len}` whose header is at virtual address `addr`.
#[allow(clippy::too_many_arguments)]
fn read_go_string<'data, R: ReadRef<'data>>(
    elf: &Elf<'data, R>,
    addr: u64,
    ptr_size: usize,
    big: bool,
    what: &'static str,
    symbol: &str,
    max: u64,
) -> Result<Vec<u8>, GoBuildInfoError> {
    if elf.in_bss(addr) {
        // A zero-valued variable (`runtime.modinfo` of a binary built
        // outside module mode): an empty string, as Go reads it.
        return Ok(Vec::new());
    }
    let header = elf.read_vaddr(
        addr,
        2 * ptr_size as u64,
        &format!("{symbol} string header"),
    )?;
    if header.len() < 2 * ptr_size {
        return Err(GoBuildInfoError::Truncated {
            what,
            len: 2 * ptr_size as u64,
            available: header.len() as u64,
        });
    }
    let data = read_ptr(&header[..ptr_size], big);
    let len = read_ptr(&header[ptr_size..2 * ptr_size], big);
    if len > max {
        return Err(GoBuildInfoError::TooLong { what, len, max });
    }
    if len == 0 {
        return Ok(Vec::new());
    }
    let bytes = elf.read_vaddr(data, len, &format!("{symbol} data"))?;
    if (bytes.len() as u64) < len {
        return Err(GoBuildInfoError::Truncated {
            what,
            len,
            available: bytes.len() as u64,
        });
    }
    Ok(bytes.to_vec())
}

/// Strips the sentinels and parses the module info.
fn finish(
    version: Vec<u8>,
    modinfo: Vec<u8>,
    format: GoBuildInfoFormat,
) -> Result<GoBuildInfo, GoBuildInfoError> {
    if version.is_empty() {
        return Err(GoBuildInfoError::EmptyVersion);
    }
    // 16 bytes of sentinel on each side, the last line ending just before
    // the closing one; anything else carries no module info (as in Go).
    let b = &modinfo[..];
    let text = if b.len() >= 33 && b[b.len() - 17] == b'\n' {
        String::from_utf8_lossy(&b[16..b.len() - 16])
    } else {
        "".into()
    };
    let parsed = parse_modinfo(&text)?;
    Ok(GoBuildInfo {
        go_version: String::from_utf8_lossy(&version).into_owned(),
        format,
        path: parsed.path,
        main: parsed.main,
        deps: parsed.deps,
    })
}

/// The module lines of a build info's module text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModInfo {
    /// `path` line.
    pub path: Option<String>,
    /// `mod` line.
    pub main: Option<GoModule>,
    /// `dep` lines.
    pub deps: Vec<GoModule>,
}

/// Parses module-info text (between the sentinels) as Go's
/// `runtime/debug.ParseBuildInfo` does, minus the build settings: a
/// `mod`/`dep` line has 2 or 3 tab-separated columns, a `=>` line exactly 3
/// and must follow a `mod` or `dep` line; unknown lines and a last line
/// without a newline are ignored.
///
/// ```
/// use trawl_inventory::golang::parse_modinfo;
///
/// let info = parse_modinfo(
///     "path\texample.com/app\nmod\texample.com/app\t(devel)\t\n\
///      dep\texample.com/old\tv1.0.0\th1:x=\n=>\texample.com/new\tv1.1.0\th1:y=\n",
/// )
/// .unwrap();
/// assert_eq!(info.main.unwrap().version, "(devel)");
/// assert_eq!(info.deps[0].replace.as_ref().unwrap().path, "example.com/new");
/// ```
pub fn parse_modinfo(text: &str) -> Result<ModInfo, GoBuildInfoError> {
    let mut info = ModInfo::default();
    // Which module a `=>` line may replace: the main module or a dep.
    enum Last {
        None,
        Main,
        Dep,
    }
    let mut last = Last::None;
    let mut modules = 0usize;
    let bad = |line: usize, reason: String| GoBuildInfoError::BadModinfo { line, reason };
    let mut rest = text;
    let mut line_no = 0;
    while let Some((line, tail)) = rest.split_once('\n') {
        rest = tail;
        line_no += 1;
        if let Some(p) = line.strip_prefix("path\t") {
            info.path = Some(p.to_string());
        } else if let Some(cols) = line.strip_prefix("mod\t") {
            info.main = Some(module_line(cols).map_err(|r| bad(line_no, r))?);
            last = Last::Main;
            modules += 1;
        } else if let Some(cols) = line.strip_prefix("dep\t") {
            modules += 1;
            if modules > MAX_MODULES {
                return Err(GoBuildInfoError::TooManyModules { max: MAX_MODULES });
            }
            info.deps
                .push(module_line(cols).map_err(|r| bad(line_no, r))?);
            last = Last::Dep;
        } else if let Some(cols) = line.strip_prefix("=>\t") {
            let c: Vec<&str> = cols.split('\t').collect();
            if c.len() != 3 {
                return Err(bad(
                    line_no,
                    format!("expected 3 columns for replacement; got {}", c.len()),
                ));
            }
            let replacement = GoReplacement {
                path: c[0].to_string(),
                version: c[1].to_string(),
                sum: c[2].to_string(),
            };
            let target = match last {
                Last::Main => info.main.as_mut(),
                Last::Dep => info.deps.last_mut(),
                Last::None => None,
            };
            let Some(target) = target else {
                return Err(bad(
                    line_no,
                    "replacement with no module on previous line".into(),
                ));
            };
            target.replace = Some(replacement);
            last = Last::None;
        }
    }
    Ok(info)
}

fn module_line(cols: &str) -> Result<GoModule, String> {
    let c: Vec<&str> = cols.split('\t').collect();
    if c.len() != 2 && c.len() != 3 {
        return Err(format!("expected 2 or 3 columns; got {}", c.len()));
    }
    Ok(GoModule {
        path: c[0].to_string(),
        version: c[1].to_string(),
        sum: c.get(2).copied().unwrap_or("").to_string(),
        replace: None,
    })
}

/// Reads the build info from a stream that passes once, front to back
/// (`Ok(None)`: not a Go binary). Only the inline format (Go 1.18 and
/// later) can be read this way; reading stops right after the build info.
///
/// ```
/// let elf = std::fs::read("/proc/self/exe").unwrap();
/// // A Rust test binary is an ELF file but not a Go one.
/// assert_eq!(trawl_inventory::golang::read_stream(&elf[..]).unwrap(), None);
/// ```
pub fn read_stream<R: Read>(reader: R) -> Result<Option<GoBuildInfo>, GoBuildInfoError> {
    let mut s = StreamScanner {
        r: reader,
        buf: Vec::new(),
        start: 0,
        eof: false,
    };
    // The ELF header and program headers are at the front: keep up to 64 KiB.
    s.fill(SEARCH_LEN as usize)?;
    crate::elf::ident(&s.buf)?;
    let ranges = data_ranges(&s.buf);
    let finder = memchr::memmem::Finder::new(MAGIC);
    loop {
        // Search what is buffered, at 16-aligned file offsets inside a data
        // segment (when the program headers told where those are).
        let mut from = 0;
        while let Some(i) = finder.find(&s.buf[from..]).map(|i| i + from) {
            let offset = s.start + i as u64;
            from = i + 1;
            if !offset.is_multiple_of(ALIGN)
                || ranges
                    .as_ref()
                    .is_some_and(|r| !r.iter().any(|&(a, b)| a <= offset && offset < b))
            {
                continue;
            }
            // Drop what precedes the header, then make sure it is whole.
            s.buf.drain(..i);
            s.start = offset;
            s.fill(HEADER_LEN)?;
            if s.buf.len() < HEADER_LEN {
                return Ok(None);
            }
            let flags = s.buf[15];
            if flags & 2 == 0 {
                return Err(GoBuildInfoError::NeedsRandomAccess { offset });
            }
            let mut at = HEADER_LEN;
            let version = s.varint_string(&mut at, "version", MAX_VERSION_LEN)?;
            let modinfo = s.varint_string(&mut at, "module info", MAX_MODINFO_LEN)?;
            return finish(version, modinfo, GoBuildInfoFormat::Inline).map(Some);
        }
        if s.eof {
            return Ok(None);
        }
        // Keep the last 13 bytes (a magic may straddle the boundary), read on.
        let keep = s.buf.len().min(MAGIC.len() - 1);
        let cut = s.buf.len() - keep;
        s.buf.drain(..cut);
        s.start += cut as u64;
        s.fill(SEARCH_LEN as usize)?;
    }
}

/// The file ranges of the writable, non-executable loadable segments, from
/// the program headers in the first bytes of the file; `None` when they are
/// not there (then the whole file is searched).
fn data_ranges(head: &[u8]) -> Option<Vec<(u64, u64)>> {
    let elf = Elf::parse_program_headers(head).ok()?;
    let ranges: Vec<(u64, u64)> = elf
        .segments
        .iter()
        .filter(|s| s.is_data())
        .map(|s| (s.offset, s.offset.saturating_add(s.filesz)))
        .collect();
    (!elf.segments.is_empty()).then_some(ranges)
}

/// A forward-only reader keeping a window of the file.
struct StreamScanner<R> {
    r: R,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    start: u64,
    eof: bool,
}

impl<R: Read> StreamScanner<R> {
    /// Reads until `buf` holds at least `want` bytes or the stream ends.
    fn fill(&mut self, want: usize) -> Result<(), GoBuildInfoError> {
        let mut chunk = [0u8; 16 * 1024];
        while self.buf.len() < want && !self.eof {
            match self.r.read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(GoBuildInfoError::Io(e.to_string())),
            }
        }
        Ok(())
    }

    fn varint_string(
        &mut self,
        at: &mut usize,
        what: &'static str,
        max: u64,
    ) -> Result<Vec<u8>, GoBuildInfoError> {
        self.fill(*at + 10)?;
        let (len, n) = uvarint(self.buf.get(*at..).unwrap_or(&[])).ok_or_else(|| {
            GoBuildInfoError::BadHeader {
                offset: self.start,
                reason: format!("the {what} length is not a valid varint"),
            }
        })?;
        if len > max {
            return Err(GoBuildInfoError::TooLong { what, len, max });
        }
        *at += n;
        // `len <= max`, a small bound: it fits in usize.
        let end = *at + len as usize;
        self.fill(end)?;
        let Some(bytes) = self.buf.get(*at..end) else {
            return Err(GoBuildInfoError::Truncated {
                what,
                len,
                available: self.buf.len().saturating_sub(*at) as u64,
            });
        };
        let s = bytes.to_vec();
        *at = end;
        Ok(s)
    }
}

/// The packages a Go binary at `database` (its image path), introduced by
/// `layer`, contains: `stdlib`, the main module, every dependency.
///
/// ```
/// use trawl_inventory::golang::{packages, parse_modinfo, GoBuildInfo, GoBuildInfoFormat};
/// use trawl_inventory::PackageRole;
///
/// let m = parse_modinfo("mod\texample.com/app\t(devel)\t\ndep\tgolang.org/x/text\tv0.14.0\th1:x=\n").unwrap();
/// let info = GoBuildInfo { go_version: "go1.21.5".into(), format: GoBuildInfoFormat::Inline,
///                          path: None, main: m.main, deps: m.deps };
/// let pkgs = packages(&info, "usr/local/bin/app", Some("sha256:l1"));
/// assert_eq!(pkgs[0].purl, "pkg:golang/stdlib@go1.21.5");
/// assert_eq!(pkgs[0].role, Some(PackageRole::Toolchain));
/// assert_eq!(pkgs[1].purl, "pkg:golang/example.com/app");
/// assert_eq!(pkgs[2].purl, "pkg:golang/golang.org/x/text@v0.14.0");
/// ```
pub fn packages(info: &GoBuildInfo, database: &str, layer: Option<&str>) -> Vec<Package> {
    let mut out = Vec::with_capacity(info.deps.len() + 2);
    out.push(go_package(
        "stdlib",
        &info.go_version,
        PackageRole::Toolchain,
        "buildinfo".into(),
        database,
        layer,
    ));
    if let Some(main) = &info.main
        && !main.path.is_empty()
    {
        let (path, version, found_by) = linked(main);
        out.push(go_package(
            path,
            version,
            PackageRole::Main,
            found_by,
            database,
            layer,
        ));
    }
    for dep in &info.deps {
        let (path, version, found_by) = linked(dep);
        out.push(go_package(
            path,
            version,
            PackageRole::Dependency,
            found_by,
            database,
            layer,
        ));
    }
    out
}

/// The module actually linked (the replacement, if any) and the evidence.
fn linked(m: &GoModule) -> (&str, &str, String) {
    match &m.replace {
        Some(r) => (
            r.path.as_str(),
            r.version.as_str(),
            format!("buildinfo (replaces {} {})", m.path, m.version),
        ),
        None => (m.path.as_str(), m.version.as_str(), "buildinfo".into()),
    }
}

fn go_package(
    path: &str,
    version: &str,
    role: PackageRole,
    found_by: String,
    database: &str,
    layer: Option<&str>,
) -> Package {
    Package {
        kind: PackageKind::Golang,
        name: path.to_string(),
        version: version.to_string(),
        arch: None,
        source_name: path.to_string(),
        source_version: version.to_string(),
        purl: golang_purl(path, version),
        layer: layer.map(str::to_string),
        database: database.to_string(),
        maintainer: None,
        license: None,
        epoch: None,
        release: None,
        vendor: None,
        modularity_label: None,
        database_line: None,
        nested: Vec::new(),
        found_by: Some(found_by),
        role: Some(role),
        owned_by: None,
    }
}

/// `pkg:golang/<namespace>/<name>@<version>`: the module path's last element
/// is the name; no version for `(devel)` or an empty one.
fn golang_purl(path: &str, version: &str) -> String {
    let (namespace, name) = match path.rsplit_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, path),
    };
    let version = (!version.is_empty() && version != "(devel)").then_some(version);
    let built = packageurl::PackageUrl::new("golang", name).map(|mut p| {
        if let Some(ns) = namespace {
            let _ = p.with_namespace(ns);
        }
        if let Some(v) = version {
            let _ = p.with_version(v);
        }
        p.to_string()
    });
    built.unwrap_or_else(|_| match version {
        Some(v) => format!("pkg:golang/{path}@{v}"),
        None => format!("pkg:golang/{path}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uvarint_matches_go() {
        assert_eq!(uvarint(&[0x05]), Some((5, 1)));
        assert_eq!(uvarint(&[0x80, 0x01]), Some((128, 2)));
        assert_eq!(uvarint(&[0x80]), None);
        assert_eq!(uvarint(&[0xff; 11]), None);
    }

    #[test]
    fn replacement_needs_a_module_before_it() {
        let err = parse_modinfo("=>\ta\tb\tc\n").unwrap_err();
        assert!(matches!(err, GoBuildInfoError::BadModinfo { line: 1, .. }));
        let err = parse_modinfo("dep\ta\n").unwrap_err();
        assert!(matches!(err, GoBuildInfoError::BadModinfo { line: 1, .. }));
    }

    #[test]
    fn last_line_without_newline_is_ignored_like_go() {
        let info = parse_modinfo("dep\ta\tv1\ndep\tb\tv2").unwrap();
        assert_eq!(info.deps.len(), 1);
    }

    #[test]
    fn purls() {
        assert_eq!(
            golang_purl("github.com/foo/bar", "v1.2.3"),
            "pkg:golang/github.com/foo/bar@v1.2.3"
        );
        assert_eq!(
            golang_purl("stdlib", "go1.21.5"),
            "pkg:golang/stdlib@go1.21.5"
        );
        assert_eq!(
            golang_purl("example.com/app", "(devel)"),
            "pkg:golang/example.com/app"
        );
    }
}
