//! Extraction glue between the binary and archive readers and the layer
//! reader: what runs on a file while its layer streams, the compact result
//! kept, and the packages and warnings made from that result afterwards.
//!
//! Both implement [`trawl_layers::Extractor`]: the layer reader asks them
//! about each regular file by path, size and mode, lets them sniff its first
//! bytes, and hands them its content in memory, seekable on disk, or as a
//! one-pass stream. [`FileContent`] is that content as a plain enum, for
//! calling them without a layer reader.
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
use trawl_layers::{Content, EntryInfo, Extractor};

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

    /// Reads the file: `Ok(None)` when it is neither a Go nor a
    /// cargo-auditable binary.
    ///
    /// ```
    /// use trawl_inventory::extract::{ElfDepsExtractor, FileContent};
    ///
    /// let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    /// assert_eq!(ElfDepsExtractor.extract_content(FileContent::Bytes(&me)), Ok(None));
    /// assert!(ElfDepsExtractor.extract_content(FileContent::Bytes(b"\x7fELF\x02\x01")).is_err());
    /// ```
    pub fn extract_content(&self, content: FileContent<'_>) -> Result<Option<Vec<u8>>, String> {
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
        Err(e) => deps.problems.push(format!("{GO_PROBLEM}{e}")),
    }
    match cargo_auditable::read_from(elf, &AuditableLimits::default()) {
        Ok(rust) => deps.rust = rust,
        Err(e) => deps.problems.push(format!("{RUST_PROBLEM}{e}")),
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

    /// Reads the archive at image path `path`.
    pub fn extract_content(
        &self,
        path: &str,
        content: FileContent<'_>,
    ) -> Result<Option<Vec<u8>>, String> {
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

/// Runs `f` on the cheapest view of `content`: its bytes when in memory,
/// else a seekable copy, else the stream.
fn with_content<T>(content: &mut Content<'_>, f: impl FnOnce(FileContent<'_>) -> T) -> T {
    let len = content.len();
    if content.bytes().is_some() {
        if let Some(bytes) = content.bytes() {
            return f(FileContent::Bytes(bytes));
        }
    } else if content.seekable().is_some()
        && let Some(reader) = content.seekable()
    {
        return f(FileContent::Seekable(reader, len));
    }
    f(FileContent::Stream(content.stream(), len))
}

impl Extractor for ElfDepsExtractor {
    fn id(&self) -> &'static str {
        Self::ID
    }

    /// Any regular file with an executable bit, large enough for an ELF
    /// header.
    fn wants(&self, entry: &EntryInfo<'_>) -> bool {
        entry.mode & 0o111 != 0 && entry.size >= 52
    }

    fn sniff_len(&self) -> usize {
        4
    }

    /// The ELF magic.
    fn sniff(&self, head: &[u8]) -> bool {
        head.starts_with(b"\x7fELF")
    }

    fn extract(
        &self,
        _entry: &EntryInfo<'_>,
        content: &mut Content<'_>,
    ) -> Result<Option<Vec<u8>>, String> {
        with_content(content, |c| self.extract_content(c))
    }
}

impl Extractor for JavaArchiveExtractor {
    fn id(&self) -> &'static str {
        Self::ID
    }

    /// Files named `*.jar`, `*.war`, `*.ear`, `*.par`, `*.jpi`, `*.hpi`
    /// (no sniffing: a launch script may precede the zip).
    fn wants(&self, entry: &EntryInfo<'_>) -> bool {
        entry.size >= 22 && java::is_archive_name(entry.path)
    }

    fn extract(
        &self,
        entry: &EntryInfo<'_>,
        content: &mut Content<'_>,
    ) -> Result<Option<Vec<u8>>, String> {
        with_content(content, |c| self.extract_content(entry.path, c))
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

/// The packages of one format of an ELF executable, as the Go and Rust
/// catalogers split [`elf_packages`]: a file that could not be read at all
/// is reported once, by the Go side.
pub(crate) fn elf_packages_of(
    format: BinaryFormat,
    path: &str,
    layer: Option<&str>,
    result: Result<&[u8], &str>,
) -> (Vec<Package>, Vec<InventoryWarning>) {
    let deps = match result
        .map_err(str::to_string)
        .and_then(ElfDepsExtractor::decode)
    {
        Ok(d) => d,
        Err(e) if format == BinaryFormat::Go => {
            return (Vec::new(), vec![unreadable(path.into(), layer, e)]);
        }
        Err(_) => return (Vec::new(), Vec::new()),
    };
    let (pkgs, prefix) = match format {
        BinaryFormat::Go => (
            deps.go
                .as_ref()
                .map(|go| golang::packages(go, path, layer))
                .unwrap_or_default(),
            GO_PROBLEM,
        ),
        BinaryFormat::Rust => (
            deps.rust
                .as_ref()
                .map(|r| cargo_auditable::packages(r, path, layer))
                .unwrap_or_default(),
            RUST_PROBLEM,
        ),
    };
    let warnings = deps
        .problems
        .into_iter()
        .filter(|p| p.starts_with(prefix))
        .map(|p| unreadable(path.into(), layer, p))
        .collect();
    (pkgs, warnings)
}

/// Which half of an `elf-deps` result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryFormat {
    Go,
    Rust,
}

const GO_PROBLEM: &str = "Go build info: ";
const RUST_PROBLEM: &str = "cargo-auditable data: ";

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
