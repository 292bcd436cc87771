//! An opened image: its config, its layer descriptors, and verified layer streams.

use std::io::Read;

use serde::Deserialize;

use crate::RegistryError;
use crate::digest::{sha256_hex, sha256_of};
use crate::store::{BlobStore, read_capped};
use crate::verify::VerifyingReader;

/// Largest manifest or index read into memory.
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;
/// Largest image config read into memory (long histories make configs big).
pub const MAX_CONFIG_SIZE: u64 = 8 * 1024 * 1024;

/// OCI media type of an uncompressed layer.
pub const MEDIA_TYPE_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI media type of a gzip-compressed layer.
pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI media type of a zstd-compressed layer.
pub const MEDIA_TYPE_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// One layer of an image, as its manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDescriptor {
    /// Digest of the blob as stored (`sha256:…`); for compressed layers, of the compressed bytes.
    pub digest: String,
    /// Media type: from the manifest, or sniffed from the blob's first bytes (docker-archive).
    pub media_type: String,
    /// Size of the blob in bytes, when the source states it.
    pub size: Option<u64>,
    /// Digest of the uncompressed tar, from the config's `rootfs.diff_ids`.
    pub diff_id: Option<String>,
}

/// The parts of an image configuration that Trawl uses.
///
/// See the [OCI image configuration](https://github.com/opencontainers/image-spec/blob/main/config.md).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ImageConfig {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// CPU architecture in Go's naming, e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// Architecture variant, e.g. `v8`.
    pub variant: Option<String>,
    /// Creation time, RFC 3339, as written by the builder.
    pub created: Option<String>,
    /// Digests of the uncompressed layers, in order.
    pub diff_ids: Vec<String>,
    /// Build history, one entry per step (including steps that made no layer).
    pub history: Vec<HistoryEntry>,
}

/// One step of an image's build history.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct HistoryEntry {
    /// When the step ran.
    pub created: Option<String>,
    /// The command that made the step.
    pub created_by: Option<String>,
    /// A free-form comment.
    pub comment: Option<String>,
    /// The step made no layer.
    pub empty_layer: bool,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    variant: Option<String>,
    created: Option<String>,
    rootfs: Option<RawRootfs>,
    #[serde(default)]
    history: Vec<RawHistory>,
}

#[derive(Deserialize)]
struct RawRootfs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

#[derive(Deserialize)]
struct RawHistory {
    created: Option<String>,
    created_by: Option<String>,
    comment: Option<String>,
    #[serde(default)]
    empty_layer: bool,
}

impl ImageConfig {
    /// Parses a config blob (OCI or Docker; they share these fields).
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let raw: RawConfig = serde_json::from_slice(bytes)?;
        Ok(Self {
            os: raw.os,
            architecture: raw.architecture,
            variant: raw.variant,
            created: raw.created,
            diff_ids: raw.rootfs.map(|r| r.diff_ids).unwrap_or_default(),
            history: raw
                .history
                .into_iter()
                .map(|h| HistoryEntry {
                    created: h.created,
                    created_by: h.created_by,
                    comment: h.comment,
                    empty_layer: h.empty_layer,
                })
                .collect(),
        })
    }
}

/// An image in a local OCI layout, OCI archive or docker archive, or on a registry.
///
/// Opening it read and verified the manifest and config; layers are read on demand with
/// [`LocalImage::open_layer`].
pub struct LocalImage {
    pub(crate) source_name: String,
    pub(crate) store: Box<dyn BlobStore>,
    pub(crate) manifest_digest: Option<String>,
    pub(crate) config_digest: String,
    pub(crate) config: ImageConfig,
    pub(crate) layers: Vec<LayerDescriptor>,
    /// Where each layer's blob lives in the store.
    pub(crate) layer_paths: Vec<String>,
}

impl std::fmt::Debug for LocalImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalImage")
            .field("source", &self.source_name)
            .field("manifest_digest", &self.manifest_digest)
            .field("config_digest", &self.config_digest)
            .field("layers", &self.layers)
            .finish_non_exhaustive()
    }
}

impl LocalImage {
    /// The source this image came from, as given to [`crate::open`].
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// `sha256:` of the manifest's bytes; `None` for docker archives, which have no manifest.
    pub fn manifest_digest(&self) -> Option<&str> {
        self.manifest_digest.as_deref()
    }

    /// `sha256:` of the config's bytes.
    pub fn config_digest(&self) -> &str {
        &self.config_digest
    }

    /// The image configuration.
    pub fn config(&self) -> &ImageConfig {
        &self.config
    }

    /// The layers, bottom first.
    pub fn layers(&self) -> &[LayerDescriptor] {
        &self.layers
    }

    /// Streams layer `index`'s blob as stored (compressed if it is), verifying as it reads.
    ///
    /// The stream yields at most the declared size; a blob that is longer, shorter or
    /// hashes differently makes a `read` fail with an [`std::io::ErrorKind::InvalidData`]
    /// error wrapping [`RegistryError::SizeExceeded`], [`RegistryError::Truncated`] or
    /// [`RegistryError::DigestMismatch`] (the digest is checked when the blob ends, so read
    /// to EOF).
    pub fn open_layer(&self, index: usize) -> Result<Box<dyn Read + Send>, RegistryError> {
        let (Some(layer), Some(path)) = (self.layers.get(index), self.layer_paths.get(index))
        else {
            return Err(RegistryError::LayerOutOfRange {
                index,
                count: self.layers.len(),
            });
        };
        let blob = self
            .store
            .open(path)?
            .ok_or_else(|| RegistryError::BlobNotFound {
                digest: layer.digest.clone(),
                source_name: self.source_name.clone(),
            })?;
        let size = layer.size.or(Some(blob.len));
        Ok(Box::new(VerifyingReader::new(
            blob.reader,
            format!("{} {path}", self.source_name),
            layer.digest.clone(),
            size,
        )))
    }
}

/// `blobs/sha256/<hex>` for a digest.
pub(crate) fn blob_path(digest: &str) -> Result<String, RegistryError> {
    Ok(format!("blobs/sha256/{}", sha256_hex(digest)?))
}

/// Reads a small blob whole and checks it against its digest and size.
pub(crate) fn read_verified(
    store: &dyn BlobStore,
    source_name: &str,
    path: &str,
    digest: &str,
    size: Option<u64>,
    limit: u64,
) -> Result<Vec<u8>, RegistryError> {
    if let Some(size) = size
        && size > limit
    {
        return Err(RegistryError::DocumentTooLarge {
            source_name: source_name.to_owned(),
            document: format!("{path} ({digest})"),
            size,
            limit,
        });
    }
    let bytes = read_capped(store, source_name, path, limit)?.ok_or_else(|| {
        RegistryError::BlobNotFound {
            digest: digest.to_owned(),
            source_name: source_name.to_owned(),
        }
    })?;
    let actual_len = bytes.len() as u64;
    if let Some(expected) = size {
        if actual_len > expected {
            return Err(RegistryError::SizeExceeded {
                blob: path.to_owned(),
                digest: digest.to_owned(),
                expected,
            });
        }
        if actual_len < expected {
            return Err(RegistryError::Truncated {
                blob: path.to_owned(),
                digest: digest.to_owned(),
                expected,
                actual: actual_len,
            });
        }
    }
    let actual = sha256_of(&bytes);
    if actual != digest {
        return Err(RegistryError::DigestMismatch {
            blob: path.to_owned(),
            expected: digest.to_owned(),
            actual,
        });
    }
    Ok(bytes)
}

/// Parses a config blob, naming it in the error.
pub(crate) fn parse_config(
    source_name: &str,
    digest: &str,
    bytes: &[u8],
) -> Result<ImageConfig, RegistryError> {
    ImageConfig::from_json(bytes).map_err(|error| RegistryError::InvalidJson {
        source_name: source_name.to_owned(),
        document: format!("config {digest}"),
        error,
    })
}
