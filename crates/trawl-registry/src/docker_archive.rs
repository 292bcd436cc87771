//! Docker archives, as written by `docker save` and `skopeo copy … docker-archive:`.
//!
//! A tar holding `manifest.json` — `[{"Config": …, "RepoTags": […], "Layers": […]}]` — the
//! config files and one tar per layer, at `<id>/layer.tar`, `<diff_id hex>.tar` or (Docker
//! 25+) `blobs/sha256/<hex>`. See the
//! [format notes](https://github.com/moby/moby/blob/master/image/spec/v1.2.md#combined-image-json--filesystem-changeset-format).
//! There is no manifest blob, so layers are verified against what their path names, or
//! else against the config's diff_id (layers in these archives are uncompressed).

use std::io::Read;

use serde::Deserialize;

use crate::RegistryError;
use crate::digest::{sha256_hex, sha256_of};
use crate::image::{
    LayerDescriptor, LocalImage, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, MEDIA_TYPE_LAYER_GZIP,
    MEDIA_TYPE_LAYER_TAR, MEDIA_TYPE_LAYER_ZSTD, parse_config, read_verified,
};
use crate::oci::parse_json;
use crate::store::{BlobStore, read_capped};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Opens the image tagged `reference` (or the only one; `@N` picks the N-th) of a docker archive.
pub(crate) fn open_archive(
    store: Box<dyn BlobStore>,
    source_name: String,
    reference: Option<&str>,
) -> Result<LocalImage, RegistryError> {
    let name = source_name.as_str();
    let manifest_bytes = read_capped(store.as_ref(), name, "manifest.json", MAX_MANIFEST_SIZE)?
        .ok_or_else(|| RegistryError::Malformed {
            source_name: name.to_owned(),
            document: "docker archive".to_owned(),
            reason: "no manifest.json".to_owned(),
        })?;
    let entries: Vec<Entry> = parse_json(name, "manifest.json", &manifest_bytes)?;
    let entry = choose(name, &entries, reference)?;

    // The config's file name is its digest in every writer we know; verify when it is.
    let config_bytes =
        match digest_from_path(&entry.config) {
            Some(digest) => read_verified(
                store.as_ref(),
                name,
                &entry.config,
                &digest,
                None,
                MAX_CONFIG_SIZE,
            )?,
            None => read_capped(store.as_ref(), name, &entry.config, MAX_CONFIG_SIZE)?.ok_or_else(
                || RegistryError::BlobNotFound {
                    digest: entry.config.clone(),
                    source_name: name.to_owned(),
                },
            )?,
        };
    let config_digest = sha256_of(&config_bytes);
    let config = parse_config(name, &config_digest, &config_bytes)?;
    if config.diff_ids.len() != entry.layers.len() {
        return Err(RegistryError::Malformed {
            source_name: name.to_owned(),
            document: "manifest.json".to_owned(),
            reason: format!(
                "{} layers but the config lists {} diff_ids",
                entry.layers.len(),
                config.diff_ids.len()
            ),
        });
    }

    let mut layers = Vec::with_capacity(entry.layers.len());
    for (path, diff_id) in entry.layers.iter().zip(&config.diff_ids) {
        let mut blob = store
            .open(path)?
            .ok_or_else(|| RegistryError::BlobNotFound {
                digest: path.clone(),
                source_name: name.to_owned(),
            })?;
        let mut magic = Vec::with_capacity(4);
        (&mut blob.reader)
            .take(4)
            .read_to_end(&mut magic)
            .map_err(|error| RegistryError::Io {
                source_name: name.to_owned(),
                path: path.into(),
                error,
            })?;
        let media_type = match magic.as_slice() {
            [0x1f, 0x8b, ..] => MEDIA_TYPE_LAYER_GZIP,
            [0x28, 0xb5, 0x2f, 0xfd] => MEDIA_TYPE_LAYER_ZSTD,
            _ => MEDIA_TYPE_LAYER_TAR,
        };
        layers.push(LayerDescriptor {
            digest: digest_from_blobs_path(path).unwrap_or_else(|| diff_id.clone()),
            media_type: media_type.to_owned(),
            size: Some(blob.len),
            diff_id: Some(diff_id.clone()),
        });
    }
    Ok(LocalImage {
        source_name,
        store,
        manifest_digest: None,
        config_digest,
        config,
        layers,
        layer_paths: entry.layers.clone(),
    })
}

fn choose<'a>(
    source_name: &str,
    entries: &'a [Entry],
    reference: Option<&str>,
) -> Result<&'a Entry, RegistryError> {
    let available = || {
        entries
            .iter()
            .enumerate()
            .flat_map(|(i, e)| match e.repo_tags.as_deref() {
                Some(tags) if !tags.is_empty() => tags.to_vec(),
                _ => vec![format!("@{i}")],
            })
            .collect::<Vec<_>>()
    };
    match reference {
        Some(reference) => {
            let by_position = reference
                .strip_prefix('@')
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| entries.get(n));
            let wanted = normalize_tag(reference);
            by_position
                .or_else(|| {
                    entries.iter().find(|e| {
                        e.repo_tags
                            .iter()
                            .flatten()
                            .any(|t| t == reference || normalize_tag(t) == wanted)
                    })
                })
                .ok_or_else(|| RegistryError::UnknownReference {
                    source_name: source_name.to_owned(),
                    reference: reference.to_owned(),
                    available: available(),
                })
        }
        None => match entries {
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

/// `docker.io/library/debian:12` and `debian:12` name the same image.
fn normalize_tag(tag: &str) -> &str {
    let tag = tag.strip_prefix("docker.io/").unwrap_or(tag);
    tag.strip_prefix("library/").unwrap_or(tag)
}

/// The digest a `blobs/sha256/<hex>` path names.
fn digest_from_blobs_path(path: &str) -> Option<String> {
    let hex = path
        .trim_start_matches("./")
        .strip_prefix("blobs/sha256/")?;
    let digest = format!("sha256:{hex}");
    sha256_hex(&digest).ok()?;
    Some(digest)
}

/// The digest a config path names: `blobs/sha256/<hex>` or `<hex>.json`.
fn digest_from_path(path: &str) -> Option<String> {
    digest_from_blobs_path(path).or_else(|| {
        let hex = path.trim_start_matches("./").strip_suffix(".json")?;
        let digest = format!("sha256:{hex}");
        sha256_hex(&digest).ok()?;
        Some(digest)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_normalize() {
        assert_eq!(
            normalize_tag("docker.io/trawl/debian:bookworm"),
            "trawl/debian:bookworm"
        );
        assert_eq!(normalize_tag("docker.io/library/debian:12"), "debian:12");
        assert_eq!(normalize_tag("quay.io/x/y:1"), "quay.io/x/y:1");
    }

    #[test]
    fn digests_from_paths() {
        let hex = "ab".repeat(32);
        assert_eq!(
            digest_from_path(&format!("{hex}.json")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(
            digest_from_path(&format!("blobs/sha256/{hex}")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(digest_from_path("abc/json"), None);
        assert_eq!(digest_from_blobs_path(&format!("{hex}/layer.tar")), None);
    }
}
