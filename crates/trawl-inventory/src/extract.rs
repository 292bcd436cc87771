//! Extraction glue between the binary and archive readers and the layer
//! reader: what runs on a file while its layer streams, the compact result
//! kept, and the packages and warnings made from that result afterwards.
//!
//! This follows the `trawl-layers` extractor design (an extractor is asked
//! about each regular file by path, size and mode, sniffs its first bytes,
//! and gets its content in memory, seekable on disk, or as a one-pass
//! stream). [`FileContent`] is that content; the `Extractor` trait
//! implementations are thin adapters over [`ElfDepsExtractor`] and
//! [`JavaArchiveExtractor`].
//!
//! - [`ElfDepsExtractor`] (`elf-deps/1`): every executable ELF file, read
//!   once for both Go build info and cargo-auditable data. From a stream
//!   (a binary over the spool budget) only Go's inline build info can be
//!   read; anything else is reported as not inspected.
//! - [`JavaArchiveExtractor`] (`java-archive/1`): files named like Java
//!   archives, read with random access (in memory or spooled); from a
//!   stream they are reported as not inspected.
//!
//! The results are postcard-encoded [`ElfDeps`] and
//! [`crate::java::JavaArchive`] values; [`elf_packages`] and
//! [`java_packages`] turn a stored result (or the error kept in its place)
//! into packages and [`InventoryWarning::UnreadableFile`] warnings.

use std::io::{Cursor, Read};

use serde::{Deserialize, Serialize};

use crate::cargo_auditable::{self, AuditableDeps, AuditableLimits};
use crate::elf::Elf;
use crate::golang::{self, GoBuildInfo, GoBuildInfoError};
use crate::java::{self, JavaArchive, JavaLimits, zip::ReadSeek};
use crate::{InventoryWarning, Package};

/// A file's content as the layer reader could afford it.
pub enum FileContent<'a> {
    /// The whole file in memory.
    Bytes(&'a [u8]),
    /// Readable and seekable (in memory or spooled to disk), of this length.
    Seekable(&'a mut dyn ReadSeek, u64),
    /// Readable once, front to back, of this length.
    Stream(&'a mut dyn Read, u64),
}

/// What the ELF extractor keeps of one executable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElfDeps {
    /// Its Go build info, if it is a Go binary.
    pub go: Option<GoBuildInfo>,
    /// Its cargo-auditable data, if it has a `.dep-v0` section.
    pub rust: Option<AuditableDeps>,
    /// What could not be read (one format failed, the other not).
    pub problems: Vec<String>,
}

/// Go and Rust dependency data of ELF executables.
#[derive(Debug, Clone, Copy, Default)]
pub struct ElfDepsExtractor;

impl ElfDepsExtractor {
    /// Extractor id: name and output version (part of layer-cache keys).
    pub const ID: &'static str = "elf-deps/1";
    /// Leading bytes [`ElfDepsExtractor::sniff`] needs.
    pub const SNIFF_LEN: usize = 4;

    /// Any regular file with an executable bit, large enough for an ELF
    /// header.
    pub fn wants(&self, _path: &str, size: u64, mode: u32) -> bool {
        mode & 0o111 != 0 && size >= 52
    }

    /// The ELF magic.
    pub fn sniff(&self, head: &[u8]) -> bool {
        head.starts_with(b"\x7fELF")
    }

    /// Reads the file: `Ok(None)` when it is neither a Go nor a
    /// cargo-auditable binary.
    ///
    /// ```
    /// use trawl_inventory::extract::{ElfDepsExtractor, FileContent};
    ///
    /// let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    /// assert_eq!(ElfDepsExtractor.extract(FileContent::Bytes(&me)), Ok(None));
    /// assert!(ElfDepsExtractor.extract(FileContent::Bytes(b"\x7fELF\x02\x01")).is_err());
    /// ```
    pub fn extract(&self, content: FileContent<'_>) -> Result<Option<Vec<u8>>, String> {
        let deps = match content {
            FileContent::Bytes(bytes) => from_elf(&Elf::parse(bytes).map_err(|e| e.to_string())?),
            FileContent::Seekable(reader, _) => {
                let cache = object::ReadCache::new(reader);
                from_elf(&Elf::parse(&cache).map_err(|e| e.to_string())?)
            }
            FileContent::Stream(reader, _) => match golang::read_stream(reader) {
                Ok(Some(go)) => ElfDeps {
                    go: Some(go),
                    ..ElfDeps::default()
                },
                Ok(None) => {
                    return Err(
                        "an ELF file over the temporary-space budget: read as a stream for \
                                Go build info (none), not inspected for cargo-auditable data"
                            .into(),
                    );
                }
                Err(e @ GoBuildInfoError::NeedsRandomAccess { .. }) => {
                    return Err(format!(
                        "over the temporary-space budget; not inspected: {e}"
                    ));
                }
                Err(e) => return Err(e.to_string()),
            },
        };
        if deps.go.is_none() && deps.rust.is_none() && deps.problems.is_empty() {
            return Ok(None);
        }
        postcard::to_allocvec(&deps)
            .map(Some)
            .map_err(|e| format!("encoding the result: {e}"))
    }

    /// Decodes a result [`ElfDepsExtractor::extract`] returned.
    pub fn decode(bytes: &[u8]) -> Result<ElfDeps, String> {
        postcard::from_bytes(bytes).map_err(|e| format!("undecodable elf-deps result: {e}"))
    }
}

fn from_elf<'data, R: object::ReadRef<'data>>(elf: &Elf<'data, R>) -> ElfDeps {
    let mut deps = ElfDeps::default();
    match golang::read_from(elf) {
        Ok(go) => deps.go = go,
        Err(e) => deps.problems.push(format!("Go build info: {e}")),
    }
    match cargo_auditable::read_from(elf, &AuditableLimits::default()) {
        Ok(rust) => deps.rust = rust,
        Err(e) => deps.problems.push(format!("cargo-auditable data: {e}")),
    }
    deps
}

/// Maven artifacts of Java archives.
#[derive(Debug, Clone, Copy, Default)]
pub struct JavaArchiveExtractor {
    /// The bounds of one archive walk.
    pub limits: JavaLimits,
}

impl JavaArchiveExtractor {
    /// Extractor id: name and output version (part of layer-cache keys).
    pub const ID: &'static str = "java-archive/1";

    /// Files named `*.jar`, `*.war`, `*.ear`, `*.par`, `*.jpi`, `*.hpi`
    /// (no sniffing: a launch script may precede the zip).
    pub fn wants(&self, path: &str, size: u64, _mode: u32) -> bool {
        size >= 22 && java::is_archive_name(path)
    }

    /// Reads the archive at image path `path`.
    pub fn extract(&self, path: &str, content: FileContent<'_>) -> Result<Option<Vec<u8>>, String> {
        let archive = match content {
            FileContent::Bytes(bytes) => java::read_archive(
                &mut Cursor::new(bytes),
                bytes.len() as u64,
                path,
                &self.limits,
            ),
            FileContent::Seekable(reader, len) => {
                java::read_archive(reader, len, path, &self.limits)
            }
            FileContent::Stream(_, len) => {
                return Err(format!(
                    "a {len}-byte archive over the temporary-space budget; not inspected"
                ));
            }
        }
        .map_err(|e| e.to_string())?;
        postcard::to_allocvec(&archive)
            .map(Some)
            .map_err(|e| format!("encoding the result: {e}"))
    }

    /// Decodes a result [`JavaArchiveExtractor::extract`] returned.
    pub fn decode(bytes: &[u8]) -> Result<JavaArchive, String> {
        postcard::from_bytes(bytes).map_err(|e| format!("undecodable java-archive result: {e}"))
    }
}

fn unreadable(path: String, layer: Option<&str>, reason: String) -> InventoryWarning {
    InventoryWarning::UnreadableFile {
        path,
        layer: layer.map(str::to_string),
        reason,
    }
}

/// The Go and Rust packages of the executable at `path` (image path) from
/// its stored `elf-deps` result, and a warning for each thing not read.
pub fn elf_packages(
    path: &str,
    layer: Option<&str>,
    result: Result<&[u8], &str>,
) -> (Vec<Package>, Vec<InventoryWarning>) {
    let deps = match result
        .map_err(str::to_string)
        .and_then(ElfDepsExtractor::decode)
    {
        Ok(d) => d,
        Err(e) => return (Vec::new(), vec![unreadable(path.into(), layer, e)]),
    };
    let mut pkgs = Vec::new();
    if let Some(go) = &deps.go {
        pkgs.extend(golang::packages(go, path, layer));
    }
    if let Some(rust) = &deps.rust {
        pkgs.extend(cargo_auditable::packages(rust, path, layer));
    }
    let warnings = deps
        .problems
        .into_iter()
        .map(|p| unreadable(path.into(), layer, p))
        .collect();
    (pkgs, warnings)
}

/// The Maven packages of the archive at `path` (image path) from its stored
/// `java-archive` result, and a warning for each thing inside it not read
/// (naming the nested entry: `app.jar!/BOOT-INF/lib/x.jar`).
pub fn java_packages(
    path: &str,
    layer: Option<&str>,
    result: Result<&[u8], &str>,
) -> (Vec<Package>, Vec<InventoryWarning>) {
    let archive = match result
        .map_err(str::to_string)
        .and_then(JavaArchiveExtractor::decode)
    {
        Ok(a) => a,
        Err(e) => return (Vec::new(), vec![unreadable(path.into(), layer, e)]),
    };
    let warnings = archive
        .problems
        .iter()
        .map(|p| unreadable(java::problem_location(path, p), layer, p.error.clone()))
        .collect();
    (java::packages(&archive, path, layer), warnings)
}
