//! Image sources for Trawl: OCI layouts, OCI and docker archives, root filesystems (and registries).
//!
//! # Brief overview
//!
//! - [`ImageSource`] names an image: `oci-dir:PATH[:REF]`, `oci-archive:FILE[:REF]`,
//!   `docker-archive:FILE[:REF]`, `dir:ROOTFS`, or `registry:REFERENCE` (also a bare
//!   reference such as `debian:12`, see [`RegistryReference`]). It parses from and displays
//!   as that string.
//! - [`open`] (or [`open_with_options`], taking [`RegistryOptions`]) turns it into an
//!   [`OpenedSource`]: a [`LocalImage`], or the path of an unpacked root filesystem.
//! - [`LocalImage`] holds the verified manifest digest, the [`ImageConfig`] and one
//!   [`LayerDescriptor`] per layer. [`LocalImage::open_layer`] streams a layer blob and
//!   verifies its size and digest as it is read — from a file, or from a registry.
//! - [`RegistryClient`] talks to OCI / Docker Registry 2.0 registries: images, `HEAD`
//!   digest lookup, tag and catalog listing, and pushing and pulling OCI artifacts.
//!   It, and the HTTP, TLS and async crates under it, come with the `registry` feature
//!   (on by default); see [Features](#features).
//! - [`RegistryError`] says which source, blob or reference failed and why.
//!
//! Archives are never extracted: their tar headers are indexed once and blobs are read in
//! place. Registry blobs stream straight from the HTTP response. Manifests, indexes and
//! configs are read with a size cap and checked against their digests before they are
//! parsed.
//!
//! # Hostile files and networks
//!
//! - **Regular files only.** Every file a local source opens — `oci-layout`, `index.json`,
//!   blobs, the archive of `oci-archive:` and `docker-archive:`, Docker's client
//!   configuration, CA files — is opened with `O_NONBLOCK` and checked with `fstat` on the
//!   open handle. A FIFO (which would block the open forever), socket, device or directory
//!   is [`RegistryError::NotARegularFile`], naming the file and what it is. (`dir:` root
//!   file systems are read by `trawl-layers`, which skips such files with a warning.) An
//!   archive is opened once; its blobs are read from that handle.
//! - **Transfer limits.** The read timeout bounds each wait for bytes; on top of it every
//!   registry transfer — a manifest, a blob with all its resumptions, a listing page, a
//!   token or error body — must finish within [`RegistryOptions::transfer_deadline`]
//!   (default [`DEFAULT_TRANSFER_DEADLINE`], 30 minutes), else
//!   [`RegistryError::TransferDeadline`]; and must receive at least
//!   [`RegistryOptions::min_throughput`] bytes in every window after the first (default
//!   [`DEFAULT_MIN_THROUGHPUT_BYTES`], 64 KiB, per [`DEFAULT_THROUGHPUT_WINDOW`], 30 s),
//!   else [`RegistryError::TooSlow`]. Neither is retried or resumed.
//! - **Redacted URLs.** Errors and logs never show a URL's user name, password or query
//!   (presigned storage URLs carry their signatures in the query): they read
//!   `https://<redacted>@host/path?<redacted>`.
//!
//! # Features
//!
//! - `registry` (default): the registry client ([`RegistryClient`], [`Artifact`],
//!   [`Credentials`], and the registry settings of [`RegistryOptions`]), built on
//!   `reqwest` with rustls, `oci-client` and `tokio`. Without it OCI layouts, archives and
//!   `dir:` open as before and build none of those crates; `registry:` references still
//!   parse (so a caller can say what it was given), but opening one fails with
//!   [`RegistryError::RegistrySupportNotBuilt`]. [`RegistryError`] has the same variants
//!   either way, so matching on it compiles whichever features the build unifies.
//!
//! # Example
//!
//! ```no_run
//! use std::io::Read;
//! use trawl_registry::{ImageSource, OpenedSource, open};
//!
//! let source: ImageSource = "oci-dir:target/test-images/debian/oci:bookworm".parse()?;
//! if let OpenedSource::Image(image) = open(&source)? {
//!     println!("manifest {:?}", image.manifest_digest());
//!     for (i, layer) in image.layers().iter().enumerate() {
//!         let mut blob = image.open_layer(i)?;
//!         // Read to the end: the digest is checked there.
//!         let n = std::io::copy(&mut blob, &mut std::io::sink())?;
//!         println!("{} {} bytes ({})", layer.digest, n, layer.media_type);
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod digest;
mod docker_archive;
mod error;
mod file;
mod image;
mod oci;
mod options;
mod platform;
mod reference;
#[cfg(feature = "registry")]
mod registry;
mod source;
mod store;
mod verify;

use std::path::PathBuf;

pub use error::RegistryError;
pub use image::{
    HistoryEntry, ImageConfig, LayerDescriptor, LocalImage, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE,
    MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_LAYER_TAR, MEDIA_TYPE_LAYER_ZSTD,
};
pub use oci::{
    MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST_LIST, MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST, REF_NAME_ANNOTATION,
};
pub use options::RegistryOptions;
#[cfg(feature = "registry")]
pub use options::{
    Credentials, DEFAULT_MIN_THROUGHPUT_BYTES, DEFAULT_THROUGHPUT_WINDOW, DEFAULT_TRANSFER_DEADLINE,
};
pub use platform::Platform;
pub use reference::RegistryReference;
#[cfg(feature = "registry")]
pub use registry::{Artifact, RegistryClient};
pub use source::{ACCEPTED_PREFIXES, ImageSource};

use store::{DirStore, TarStore};

/// An opened source: an image whose layers are still to be applied, or a ready root filesystem.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "made once per scan; matching on the image directly beats a Box"
)]
pub enum OpenedSource {
    /// A container image.
    Image(LocalImage),
    /// An unpacked root filesystem (from `dir:`).
    Rootfs(PathBuf),
}

/// Opens an image source with default [`RegistryOptions`]: reads and verifies its manifest
/// and config.
///
/// Layers are not read here; see [`LocalImage::open_layer`].
pub fn open(source: &ImageSource) -> Result<OpenedSource, RegistryError> {
    open_with_options(source, &RegistryOptions::default())
}

/// Opens an image source: reads and verifies its manifest and config.
///
/// `options` choose the platform taken from multi-platform images (in layouts too) and how
/// registries are reached. Layers are not read here; see [`LocalImage::open_layer`].
pub fn open_with_options(
    source: &ImageSource,
    options: &RegistryOptions,
) -> Result<OpenedSource, RegistryError> {
    let source_name = source.to_string();
    tracing::debug!(source = %source_name, "opening image source");
    let image = match source {
        ImageSource::Dir { path } => {
            return if path.is_dir() {
                Ok(OpenedSource::Rootfs(path.clone()))
            } else {
                Err(RegistryError::NotADirectory { path: path.clone() })
            };
        }
        ImageSource::OciDir { path, reference } => {
            if !path.is_dir() {
                return Err(RegistryError::NotAnOciLayout {
                    source_name,
                    reason: format!("{} is not a directory", path.display()),
                });
            }
            let store = DirStore {
                root: path.clone(),
                source_name: source_name.clone(),
            };
            oci::open_layout(
                Box::new(store),
                source_name,
                reference.as_deref(),
                &options.platform,
            )?
        }
        ImageSource::OciArchive { path, reference } => {
            let store = TarStore::index(path, &source_name)?;
            oci::open_layout(
                Box::new(store),
                source_name,
                reference.as_deref(),
                &options.platform,
            )?
        }
        #[cfg(feature = "registry")]
        ImageSource::Registry { reference } => {
            RegistryClient::new(options.clone())?.open_image(reference)?
        }
        #[cfg(not(feature = "registry"))]
        ImageSource::Registry { reference } => {
            return Err(RegistryError::RegistrySupportNotBuilt {
                reference: reference.to_string(),
            });
        }
        ImageSource::DockerArchive { path, reference } => {
            let store = TarStore::index(path, &source_name)?;
            docker_archive::open_archive(Box::new(store), source_name, reference.as_deref())?
        }
    };
    Ok(OpenedSource::Image(image))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without the `registry` feature a registry reference still parses, and opening it
    /// says the build lacks registry support instead of trying the network.
    #[cfg(not(feature = "registry"))]
    #[test]
    fn registry_sources_fail_to_open_without_the_feature() {
        let source: ImageSource = "localhost:1/nothing:here".parse().unwrap();
        match open(&source) {
            Err(RegistryError::RegistrySupportNotBuilt { reference }) => {
                assert_eq!(reference, "localhost:1/nothing:here");
            }
            other => panic!("{other:?}"),
        }
    }

    /// With it, the same source goes to the network (nothing listens on port 1).
    #[cfg(feature = "registry")]
    #[test]
    fn registry_sources_reach_for_the_registry_with_the_feature() {
        let source: ImageSource = "localhost:1/nothing:here".parse().unwrap();
        let options = RegistryOptions::default().max_attempts(1);
        match open_with_options(&source, &options) {
            Err(RegistryError::Request { .. }) => {}
            other => panic!("{other:?}"),
        }
    }
}
