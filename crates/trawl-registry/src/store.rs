//! Where blobs live: a directory, or entries of a tar archive served in place.
//!
//! A tar archive is never extracted. Its headers are scanned once into an index of
//! entry name -> (data offset, size); a blob is then served by positional reads of the
//! archive file opened (once) for the index. The registry client is one more
//! implementation of [`BlobStore`].
//!
//! Files are opened with [`open_regular`]: a FIFO, socket, device or directory is
//! [`RegistryError::NotARegularFile`], never a read that could block forever.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::RegistryError;
use crate::file::{OpenError, open_regular};

/// An open blob: its bytes, and how many there are.
pub(crate) struct StoredBlob {
    pub(crate) reader: Box<dyn Read + Send>,
    pub(crate) len: u64,
}

/// Files addressed by `/`-separated paths relative to the image's root.
pub(crate) trait BlobStore: Send + Sync {
    /// Opens a file; `Ok(None)` when there is none at `path`.
    fn open(&self, path: &str) -> Result<Option<StoredBlob>, RegistryError>;
}

/// Reads at most `limit` bytes of `path`; [`RegistryError::DocumentTooLarge`] beyond that.
pub(crate) fn read_capped(
    store: &dyn BlobStore,
    source_name: &str,
    path: &str,
    limit: u64,
) -> Result<Option<Vec<u8>>, RegistryError> {
    let Some(blob) = store.open(path)? else {
        return Ok(None);
    };
    let too_large = |size| RegistryError::DocumentTooLarge {
        source_name: source_name.to_owned(),
        document: path.to_owned(),
        size,
        limit,
    };
    if blob.len > limit {
        return Err(too_large(blob.len));
    }
    let mut bytes = Vec::new();
    blob.reader
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| {
            // A registry's transfer limits and request failures keep their own variant.
            RegistryError::take_from_io(error).unwrap_or_else(|error| RegistryError::Io {
                source_name: source_name.to_owned(),
                path: PathBuf::from(path),
                error,
            })
        })?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(Some(bytes))
}

/// A directory on disk (an OCI layout).
pub(crate) struct DirStore {
    pub(crate) root: PathBuf,
    pub(crate) source_name: String,
}

impl BlobStore for DirStore {
    fn open(&self, path: &str) -> Result<Option<StoredBlob>, RegistryError> {
        let full = self.root.join(path);
        let (file, metadata) = match open_regular(&full) {
            Ok(opened) => opened,
            Err(OpenError::Io(e)) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into_registry_error(&self.source_name, &full)),
        };
        Ok(Some(StoredBlob {
            reader: Box::new(file),
            len: metadata.len(),
        }))
    }
}

/// Regular files of a tar archive, served from the archive file.
pub(crate) struct TarStore {
    /// The archive, opened once: later reads cannot be redirected by replacing the path.
    file: Arc<File>,
    entries: HashMap<String, TarEntry>,
}

enum TarEntry {
    File {
        offset: u64,
        size: u64,
    },
    /// A symbolic link, target relative to the link's directory.
    Symlink(String),
    /// A hard link, target relative to the archive root.
    Hardlink(String),
}

/// How many links a lookup follows before giving up (cycles).
const MAX_LINK_HOPS: usize = 16;

impl TarStore {
    /// Indexes the archive at `path` by reading its headers (file data is skipped by seeking).
    pub(crate) fn index(path: &Path, source_name: &str) -> Result<Self, RegistryError> {
        let (file, _) = open_regular(path).map_err(|e| e.into_registry_error(source_name, path))?;
        let file = Arc::new(file);
        let invalid = |error| RegistryError::InvalidArchive {
            source_name: source_name.to_owned(),
            error,
        };
        let mut archive = tar::Archive::new(PositionalReader {
            file: file.clone(),
            position: 0,
            end: u64::MAX,
        });
        let mut entries = HashMap::new();
        for entry in archive.entries_with_seek().map_err(invalid)? {
            let entry = entry.map_err(invalid)?;
            let Some(name) = normalize(&String::from_utf8_lossy(&entry.path_bytes())) else {
                continue;
            };
            let header = entry.header();
            let kind = header.entry_type();
            let link = || {
                entry
                    .link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned())
                    .unwrap_or_default()
            };
            let value = if kind.is_file() || kind == tar::EntryType::Continuous {
                TarEntry::File {
                    offset: entry.raw_file_position(),
                    size: entry.size(),
                }
            } else if kind.is_symlink() {
                TarEntry::Symlink(link())
            } else if kind.is_hard_link() {
                TarEntry::Hardlink(link())
            } else {
                continue;
            };
            // Later entries replace earlier ones, as on extraction.
            entries.insert(name, value);
        }
        Ok(Self { file, entries })
    }

    /// The data range of the regular file at `path`, following links.
    fn resolve(&self, path: &str) -> Option<(u64, u64)> {
        let mut name = normalize(path)?;
        for _ in 0..MAX_LINK_HOPS {
            match self.entries.get(&name)? {
                TarEntry::File { offset, size } => return Some((*offset, *size)),
                TarEntry::Hardlink(target) => name = normalize(target)?,
                TarEntry::Symlink(target) => {
                    let joined = if target.starts_with('/') {
                        target.clone()
                    } else {
                        match name.rsplit_once('/') {
                            Some((dir, _)) => format!("{dir}/{target}"),
                            None => target.clone(),
                        }
                    };
                    name = normalize(&joined)?;
                }
            }
        }
        None
    }
}

impl BlobStore for TarStore {
    fn open(&self, path: &str) -> Result<Option<StoredBlob>, RegistryError> {
        let Some((offset, size)) = self.resolve(path) else {
            return Ok(None);
        };
        Ok(Some(StoredBlob {
            reader: Box::new(PositionalReader {
                file: self.file.clone(),
                position: offset,
                end: offset.saturating_add(size),
            }),
            len: size,
        }))
    }
}

/// Reads `position..end` of a shared file with positional reads (`pread`), so that many
/// readers can share one handle, each at its own offset.
struct PositionalReader {
    file: Arc<File>,
    position: u64,
    end: u64,
}

impl Read for PositionalReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end.saturating_sub(self.position);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = read_at(&self.file, &mut buf[..want], self.position)?;
        self.position += n as u64;
        Ok(n)
    }
}

impl io::Seek for PositionalReader {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        let target = match pos {
            io::SeekFrom::Start(n) => Some(n),
            io::SeekFrom::Current(d) => self.position.checked_add_signed(d),
            io::SeekFrom::End(d) => self.file.metadata()?.len().checked_add_signed(d),
        };
        self.position = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.position)
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

/// `./a//b/../c` -> `a/c`; `None` for the archive root or a path escaping it.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_names() {
        assert_eq!(normalize("./index.json").as_deref(), Some("index.json"));
        assert_eq!(
            normalize("blobs//sha256/./x").as_deref(),
            Some("blobs/sha256/x")
        );
        assert_eq!(normalize("a/../b").as_deref(), Some("b"));
        assert_eq!(normalize("./"), None);
        assert_eq!(normalize("../x"), None);
    }

    #[test]
    fn serves_entries_and_follows_links() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        let mut builder = tar::Builder::new(File::create(&path).unwrap());
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, "./x/data.tar", &b"hello"[..])
            .unwrap();
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        builder
            .append_link(&mut link, "id/layer.tar", "../x/data.tar")
            .unwrap();
        builder.into_inner().unwrap();

        let store = TarStore::index(&path, "test").unwrap();
        for name in ["x/data.tar", "./x/data.tar", "id/layer.tar"] {
            let blob = store.open(name).unwrap().expect(name);
            assert_eq!(blob.len, 5);
            let mut out = String::new();
            blob.reader.take(100).read_to_string(&mut out).unwrap();
            assert_eq!(out, "hello");
        }
        assert!(store.open("missing").unwrap().is_none());
    }
}
