//! Opening a source's files from the local file system: regular files only.
//!
//! Everything a source reads from disk (`oci-layout`, `index.json`, blobs, archive files,
//! Docker's client configuration, CA files) is opened with `O_NONBLOCK`, so that opening a
//! FIFO with no writer returns at once instead of blocking the scan forever, and is then
//! checked with `fstat` on the open handle — not a `stat` of the path, which a swap between
//! the two calls would defeat — to be a regular file. A FIFO, socket, device or directory
//! where a file is expected is [`RegistryError::NotARegularFile`].
//!
//! `O_NONBLOCK` stays set on the handle; reads of a regular file ignore it.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::path::Path;

use crate::RegistryError;

/// Why [`open_regular`] failed.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// `open` or `fstat` failed.
    Io(io::Error),
    /// The path names something other than a regular file; its kind in words.
    NotRegular(&'static str),
}

impl OpenError {
    /// The crate error for `path` of `source_name` (I/O errors as [`RegistryError::Io`]).
    pub(crate) fn into_registry_error(self, source_name: &str, path: &Path) -> RegistryError {
        match self {
            OpenError::Io(error) => RegistryError::Io {
                source_name: source_name.to_owned(),
                path: path.to_owned(),
                error,
            },
            OpenError::NotRegular(kind) => RegistryError::NotARegularFile {
                source_name: source_name.to_owned(),
                path: path.to_owned(),
                kind,
            },
        }
    }
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Io(e) => e.fmt(f),
            OpenError::NotRegular(kind) => write!(f, "a {kind}, not a regular file"),
        }
    }
}

/// Opens `path` for reading without blocking and returns it with its `fstat` metadata,
/// if it is a regular file (symlinks are followed).
pub(crate) fn open_regular(path: &Path) -> Result<(File, Metadata), OpenError> {
    let file = open_nonblocking(path).map_err(OpenError::Io)?;
    let metadata = file.metadata().map_err(OpenError::Io)?;
    if metadata.is_file() {
        Ok((file, metadata))
    } else {
        Err(OpenError::NotRegular(kind_of(&metadata)))
    }
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).open(path)
}

/// What a non-regular file is, in words.
pub(crate) fn kind_of(metadata: &Metadata) -> &'static str {
    let file_type = metadata.file_type();
    if file_type.is_dir() {
        return "directory";
    }
    if file_type.is_symlink() {
        return "symbolic link";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "FIFO";
        }
        if file_type.is_socket() {
            return "socket";
        }
        if file_type.is_block_device() {
            return "block device";
        }
        if file_type.is_char_device() {
            return "character device";
        }
    }
    if file_type.is_file() {
        "regular file"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_open_and_others_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let (_, metadata) = open_regular(&file).unwrap();
        assert_eq!(metadata.len(), 1);
        assert!(matches!(
            open_regular(dir.path()),
            Err(OpenError::NotRegular("directory"))
        ));
        assert!(matches!(
            open_regular(Path::new("/dev/null")),
            Err(OpenError::NotRegular("character device"))
        ));
        assert!(matches!(
            open_regular(&dir.path().join("missing")),
            Err(OpenError::Io(e)) if e.kind() == io::ErrorKind::NotFound
        ));
    }
}
