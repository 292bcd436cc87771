//! OCI image layouts: `oci-layout`, `index.json`, manifests and image indexes.
//!
//! See the [image layout](https://github.com/opencontainers/image-spec/blob/main/image-layout.md),
//! [manifest](https://github.com/opencontainers/image-spec/blob/main/manifest.md) and
//! [index](https://github.com/opencontainers/image-spec/blob/main/image-index.md) specifications.
//! Docker's v2 schema 2 manifests and manifest lists have the same shape and are accepted.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::platform::Platform;
use crate::store::{BlobStore, read_capped};
use crate::{
    RegistryError,
    image::{
        LayerDescriptor, LocalImage, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, blob_path, parse_config,
        read_verified,
    },
};

/// OCI image manifest.
pub const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, v2 schema 2.
pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const MEDIA_TYPE_DOCKER_MANIFEST_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest, v2 schema 1 (signed): deprecated, never accepted.
const MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Docker image manifest, v2 schema 1 (unsigned): deprecated, never accepted.
const MEDIA_TYPE_DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";

/// The annotation naming an image in an OCI layout's `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// How many image indexes deep a manifest is looked for.
pub(crate) const MAX_INDEX_DEPTH: usize = 4;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Layout {
    image_layout_version: String,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    pub(crate) media_type: Option<String>,
    pub(crate) digest: String,
    pub(crate) size: u64,
    #[serde(default)]
    pub(crate) annotations: BTreeMap<String, String>,
    pub(crate) platform: Option<DescriptorPlatform>,
}

#[derive(Deserialize, Clone)]
pub(crate) struct DescriptorPlatform {
    architecture: String,
    os: String,
    variant: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct Index {
    pub(crate) manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Manifest {
    pub(crate) config: Descriptor,
    pub(crate) layers: Vec<Descriptor>,
    /// Read by the registry client's artifact pulls only.
    #[cfg_attr(not(feature = "registry"), expect(dead_code))]
    pub(crate) artifact_type: Option<String>,
}

/// Just enough of a document to tell a manifest from an index.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    schema_version: Option<u32>,
    media_type: Option<String>,
    manifests: Option<IgnoredAny>,
    layers: Option<IgnoredAny>,
}

/// What a manifest-like document is.
pub(crate) enum Kind {
    Manifest,
    Index,
}

/// Opens the image `reference` (or the only one) of the OCI layout in `store`.
pub(crate) fn open_layout(
    store: Box<dyn BlobStore>,
    source_name: String,
    reference: Option<&str>,
    platform: &Platform,
) -> Result<LocalImage, RegistryError> {
    let name = source_name.as_str();
    let not_layout = |reason: String| RegistryError::NotAnOciLayout {
        source_name: name.to_owned(),
        reason,
    };
    let layout_bytes = read_capped(store.as_ref(), name, "oci-layout", 64 * 1024)?
        .ok_or_else(|| not_layout("no oci-layout file".to_owned()))?;
    let layout: Layout = serde_json::from_slice(&layout_bytes)
        .map_err(|e| not_layout(format!("invalid oci-layout file: {e}")))?;
    if !layout.image_layout_version.starts_with("1.") {
        return Err(not_layout(format!(
            "unsupported imageLayoutVersion {:?}",
            layout.image_layout_version
        )));
    }
    let index_bytes = read_capped(store.as_ref(), name, "index.json", MAX_MANIFEST_SIZE)?
        .ok_or_else(|| not_layout("no index.json".to_owned()))?;
    let index: Index = parse_json(name, "index.json", &index_bytes)?;
    let chosen = choose_by_reference(name, &index.manifests, reference)?;
    let (manifest_digest, manifest) = resolve_manifest(store.as_ref(), name, chosen, platform, 0)?;
    image_from_manifest(store, source_name, manifest_digest, &manifest)
}

/// Reads and checks the config of `manifest` and describes its layers.
pub(crate) fn image_from_manifest(
    store: Box<dyn BlobStore>,
    source_name: String,
    manifest_digest: String,
    manifest: &Manifest,
) -> Result<LocalImage, RegistryError> {
    let name = source_name.as_str();
    let config_digest = manifest.config.digest.clone();
    let config_bytes = read_verified(
        store.as_ref(),
        name,
        &blob_path(&config_digest)?,
        &config_digest,
        Some(manifest.config.size),
        MAX_CONFIG_SIZE,
    )?;
    let config = parse_config(name, &config_digest, &config_bytes)?;
    if config.diff_ids.len() != manifest.layers.len() {
        return Err(RegistryError::Malformed {
            source_name: source_name.clone(),
            document: format!("manifest {manifest_digest}"),
            reason: format!(
                "{} layers but the config lists {} diff_ids",
                manifest.layers.len(),
                config.diff_ids.len()
            ),
        });
    }
    let mut layers = Vec::with_capacity(manifest.layers.len());
    let mut layer_paths = Vec::with_capacity(manifest.layers.len());
    for (layer, diff_id) in manifest.layers.iter().zip(&config.diff_ids) {
        layer_paths.push(blob_path(&layer.digest)?);
        layers.push(LayerDescriptor {
            digest: layer.digest.clone(),
            media_type: layer.media_type.clone().unwrap_or_default(),
            size: Some(layer.size),
            diff_id: Some(diff_id.clone()),
        });
    }
    Ok(LocalImage {
        source_name,
        store,
        manifest_digest: Some(manifest_digest),
        config_digest,
        config,
        layers,
        layer_paths,
    })
}

/// The `index.json` entry named `reference`, or the only entry when there is no reference.
fn choose_by_reference<'a>(
    source_name: &str,
    manifests: &'a [Descriptor],
    reference: Option<&str>,
) -> Result<&'a Descriptor, RegistryError> {
    let available = || {
        manifests
            .iter()
            .map(|d| {
                d.annotations
                    .get(REF_NAME_ANNOTATION)
                    .cloned()
                    .unwrap_or_else(|| d.digest.clone())
            })
            .collect::<Vec<_>>()
    };
    match reference {
        Some(reference) => manifests
            .iter()
            .find(|d| {
                d.annotations.get(REF_NAME_ANNOTATION).map(String::as_str) == Some(reference)
                    || d.digest == reference
            })
            .ok_or_else(|| RegistryError::UnknownReference {
                source_name: source_name.to_owned(),
                reference: reference.to_owned(),
                available: available(),
            }),
        None => match manifests {
            [] => Err(RegistryError::NoImage {
                source_name: source_name.to_owned(),
            }),
            [only] => Ok(only),
            _ => Err(RegistryError::AmbiguousReference {
                source_name: source_name.to_owned(),
                available: available(),
            }),
        },
    }
}

/// Follows indexes from `descriptor` down to an image manifest for this platform.
fn resolve_manifest(
    store: &dyn BlobStore,
    source_name: &str,
    descriptor: &Descriptor,
    platform: &Platform,
    depth: usize,
) -> Result<(String, Manifest), RegistryError> {
    if depth > MAX_INDEX_DEPTH {
        return Err(RegistryError::IndexTooDeep {
            source_name: source_name.to_owned(),
            limit: MAX_INDEX_DEPTH,
        });
    }
    let digest = &descriptor.digest;
    let bytes = read_verified(
        store,
        source_name,
        &blob_path(digest)?,
        digest,
        Some(descriptor.size),
        MAX_MANIFEST_SIZE,
    )?;
    let document = format!("manifest {digest}");
    match document_kind(
        source_name,
        digest,
        &bytes,
        descriptor.media_type.as_deref(),
    )? {
        Kind::Manifest => Ok((digest.clone(), parse_json(source_name, &document, &bytes)?)),
        Kind::Index => {
            let index: Index = parse_json(source_name, &document, &bytes)?;
            let chosen = choose_platform(source_name, digest, &index.manifests, platform)?;
            resolve_manifest(store, source_name, chosen, platform, depth + 1)
        }
    }
}

/// Tells an image manifest from an image index by its media type (the document's own, else
/// `media_type_hint` from the descriptor or HTTP response), else by its fields.
pub(crate) fn document_kind(
    source_name: &str,
    digest: &str,
    bytes: &[u8],
    media_type_hint: Option<&str>,
) -> Result<Kind, RegistryError> {
    let document = format!("manifest {digest}");
    let probe: Probe = parse_json(source_name, &document, bytes)?;
    let media_type = probe.media_type.as_deref().or(media_type_hint);
    let schema1 = || RegistryError::SchemaOneManifest {
        source_name: source_name.to_owned(),
        digest: digest.to_owned(),
    };
    match media_type {
        Some(MEDIA_TYPE_OCI_MANIFEST | MEDIA_TYPE_DOCKER_MANIFEST) => Ok(Kind::Manifest),
        Some(MEDIA_TYPE_OCI_INDEX | MEDIA_TYPE_DOCKER_MANIFEST_LIST) => Ok(Kind::Index),
        Some(MEDIA_TYPE_DOCKER_SCHEMA1 | MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED) => Err(schema1()),
        Some(other) => Err(RegistryError::UnsupportedMediaType {
            source_name: source_name.to_owned(),
            digest: digest.to_owned(),
            media_type: other.to_owned(),
        }),
        None if probe.schema_version == Some(1) => Err(schema1()),
        // OCI allows omitting mediaType; tell the two apart by their fields.
        None if probe.manifests.is_some() => Ok(Kind::Index),
        None if probe.layers.is_some() => Ok(Kind::Manifest),
        None => Err(RegistryError::Malformed {
            source_name: source_name.to_owned(),
            document,
            reason: "neither an image manifest nor an image index".to_owned(),
        }),
    }
}

/// The first entry of an index for the wanted platform.
pub(crate) fn choose_platform<'a>(
    source_name: &str,
    index_digest: &str,
    manifests: &'a [Descriptor],
    wanted: &Platform,
) -> Result<&'a Descriptor, RegistryError> {
    let matching = |d: &&Descriptor| {
        d.platform
            .as_ref()
            .is_some_and(|p| wanted.matches(&p.os, &p.architecture, p.variant.as_deref()))
    };
    manifests
        .iter()
        .find(matching)
        .ok_or_else(|| RegistryError::NoMatchingPlatform {
            source_name: source_name.to_owned(),
            index: index_digest.to_owned(),
            wanted: wanted.to_string(),
            available: manifests
                .iter()
                .map(|d| match &d.platform {
                    Some(DescriptorPlatform {
                        os,
                        architecture,
                        variant: Some(v),
                    }) => format!("{os}/{architecture}/{v}"),
                    Some(p) => format!("{}/{}", p.os, p.architecture),
                    None => format!("{} (no platform)", d.digest),
                })
                .collect(),
        })
}

pub(crate) fn parse_json<'a, T: Deserialize<'a>>(
    source_name: &str,
    document: &str,
    bytes: &'a [u8],
) -> Result<T, RegistryError> {
    serde_json::from_slice(bytes).map_err(|error| RegistryError::InvalidJson {
        source_name: source_name.to_owned(),
        document: document.to_owned(),
        error,
    })
}
