//! Pulling from and pushing to OCI / Docker Registry 2.0 registries.
//!
//! Implements the client side of the [OCI distribution specification](https://github.com/opencontainers/distribution-spec/blob/main/spec.md):
//! manifests (OCI image manifest and index, Docker v2 schema 2 manifest and manifest list)
//! with platform selection, blobs streamed with `Range` resumption, tag and catalog
//! listing with `Link` pagination, `HEAD` digest lookup, and pushing an OCI artifact.
//!
//! The HTTP client is a blocking `reqwest` one, used directly from the layer-reading
//! threads: each layer's `Read` is its own HTTP response body, so parallel layers are
//! parallel downloads without an async bridge in between. `oci-client` parses references
//! and pushes artifacts; it has no blocking blob reader, no `Range` resumption, no retries
//! and no Docker credential helpers, so pulls use `reqwest` directly (see `transport`).

mod blob;
mod credentials;
mod limits;
mod push;
mod transport;

use std::io::Read;
use std::sync::Arc;

use reqwest::header;
use reqwest::{Method, StatusCode};
use serde::Deserialize;

use crate::digest::sha256_of;
use crate::image::{LayerDescriptor, LocalImage, MAX_MANIFEST_SIZE, blob_path};
use crate::oci::{
    Index, Kind, MAX_INDEX_DEPTH, Manifest, choose_platform, document_kind, image_from_manifest,
    parse_json,
};
use crate::store::BlobStore;
use crate::verify::VerifyingReader;
use crate::{RegistryError, RegistryReference};

use crate::options::RegistryOptions;
use blob::RegistryStore;
use limits::{ClockedReader, TransferClock, redact_url};
use transport::{Request, Transport};

/// What manifest requests accept: every manifest type this crate reads.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// Largest page of a tag or catalog listing read.
const MAX_LISTING_PAGE: u64 = 4 * 1024 * 1024;
/// Most names a listing returns, and most pages followed.
const MAX_LISTING_ENTRIES: usize = 1_000_000;
const MAX_LISTING_PAGES: usize = 10_000;

/// A client for OCI / Docker Registry 2.0 registries; cheap to clone, usable from many
/// threads.
///
/// It remembers per host how to authenticate (and the tokens it got), so reuse one client
/// for many requests.
#[derive(Clone)]
pub struct RegistryClient {
    transport: Arc<Transport>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("platform", &self.transport.options.platform)
            .finish_non_exhaustive()
    }
}

/// A manifest as the registry served it, checked against its digest.
struct FetchedManifest {
    digest: String,
    media_type: Option<String>,
    bytes: Vec<u8>,
}

impl RegistryClient {
    /// A client with these options (reads the CA files now).
    pub fn new(options: RegistryOptions) -> Result<Self, RegistryError> {
        Ok(Self {
            transport: Arc::new(Transport::new(options)?),
        })
    }

    /// Resolves `reference` to an image manifest for the configured platform, reads and
    /// verifies it and its config, and returns the image; layers stream on demand from
    /// [`LocalImage::open_layer`].
    pub fn open_image(&self, reference: &RegistryReference) -> Result<LocalImage, RegistryError> {
        let source_name = format!("registry:{reference}");
        let mut fetched =
            self.fetch_manifest(reference, &source_name, reference.manifest_target(), None)?;
        for _ in 0..=MAX_INDEX_DEPTH {
            let hint = fetched.media_type.as_deref();
            match document_kind(&source_name, &fetched.digest, &fetched.bytes, hint)? {
                Kind::Manifest => {
                    let document = format!("manifest {}", fetched.digest);
                    let manifest: Manifest = parse_json(&source_name, &document, &fetched.bytes)?;
                    let store = self.store(reference, &source_name);
                    return image_from_manifest(
                        Box::new(store),
                        source_name,
                        fetched.digest,
                        &manifest,
                    );
                }
                Kind::Index => {
                    let document = format!("index {}", fetched.digest);
                    let index: Index = parse_json(&source_name, &document, &fetched.bytes)?;
                    let chosen = choose_platform(
                        &source_name,
                        &fetched.digest,
                        &index.manifests,
                        &self.transport.options.platform,
                    )?;
                    let expected = (chosen.digest.as_str(), chosen.size);
                    fetched = self.fetch_manifest(
                        reference,
                        &source_name,
                        &chosen.digest,
                        Some(expected),
                    )?;
                }
            }
        }
        Err(RegistryError::IndexTooDeep {
            source_name,
            limit: MAX_INDEX_DEPTH,
        })
    }

    /// The digest of the manifest `reference` names, from a `HEAD` request (no body is
    /// downloaded): compare it with a previous scan's to skip an unchanged image.
    ///
    /// For a multi-platform image this is the index's digest. Registries that send no
    /// `Docker-Content-Digest` are asked with `GET`, and the digest is computed.
    pub fn manifest_digest(&self, reference: &RegistryReference) -> Result<String, RegistryError> {
        let source_name = format!("registry:{reference}");
        let path = format!(
            "/v2/{}/manifests/{}",
            reference.repository(),
            reference.manifest_target()
        );
        let scope = pull_scope(reference);
        let request = self.request(
            reference,
            &source_name,
            &scope,
            Method::HEAD,
            &path,
            vec![(header::ACCEPT, MANIFEST_ACCEPT.to_owned())],
        );
        let response = self.transport.send(&request)?;
        if response.status() != StatusCode::OK {
            return Err(self.transport.status_error(&request, response));
        }
        let header_digest = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .filter(|d| crate::digest::sha256_hex(d).is_ok())
            .map(str::to_owned);
        match header_digest {
            Some(digest) => Ok(digest),
            None => Ok(self
                .fetch_manifest(reference, &source_name, reference.manifest_target(), None)?
                .digest),
        }
    }

    /// The tags of `reference`'s repository, following `Link` pagination.
    pub fn tags(&self, reference: &RegistryReference) -> Result<Vec<String>, RegistryError> {
        let source_name = format!(
            "registry:{}/{}",
            reference.registry(),
            reference.repository()
        );
        let path = format!(
            "/v2/{}/tags/list?n={}",
            reference.repository(),
            self.transport.options.listing_page_size
        );
        self.list(
            reference,
            &source_name,
            &pull_scope(reference),
            &path,
            "tags",
        )
    }

    /// The repositories on `registry` (`HOST[:PORT]`), following `Link` pagination.
    ///
    /// Registries usually restrict the catalog to administrators; a refusal is
    /// [`RegistryError::Unauthorized`].
    pub fn catalog(&self, registry: &str) -> Result<Vec<String>, RegistryError> {
        let reference = RegistryReference::with_tag(registry, "_catalog", "latest");
        let source_name = format!("registry:{registry}");
        let path = format!(
            "/v2/_catalog?n={}",
            self.transport.options.listing_page_size
        );
        self.list(
            &reference,
            &source_name,
            "registry:catalog:*",
            &path,
            "repositories",
        )
    }

    /// Pushes an [OCI artifact](https://github.com/opencontainers/image-spec/blob/main/manifest.md#guidelines-for-artifact-usage):
    /// one blob of `blob_media_type` and a manifest with `artifactType` and the empty config,
    /// tagged as `reference`. Returns the manifest's digest.
    pub fn push_artifact(
        &self,
        reference: &RegistryReference,
        artifact_type: &str,
        blob_media_type: &str,
        blob: Vec<u8>,
    ) -> Result<String, RegistryError> {
        push::push_artifact(self, reference, artifact_type, blob_media_type, blob)?;
        self.manifest_digest(reference)
    }

    /// Reads the manifest of an OCI artifact (as [`RegistryClient::push_artifact`] writes
    /// them); its blobs stream from [`Artifact::open_blob`].
    pub fn pull_artifact(&self, reference: &RegistryReference) -> Result<Artifact, RegistryError> {
        let source_name = format!("registry:{reference}");
        let fetched =
            self.fetch_manifest(reference, &source_name, reference.manifest_target(), None)?;
        let document = format!("manifest {}", fetched.digest);
        match document_kind(
            &source_name,
            &fetched.digest,
            &fetched.bytes,
            fetched.media_type.as_deref(),
        )? {
            Kind::Manifest => {}
            Kind::Index => {
                return Err(RegistryError::Malformed {
                    source_name,
                    document,
                    reason: "an image index, not an artifact manifest".to_owned(),
                });
            }
        }
        let manifest: Manifest = parse_json(&source_name, &document, &fetched.bytes)?;
        let artifact_type = manifest
            .artifact_type
            .clone()
            .or_else(|| manifest.config.media_type.clone());
        let blobs = manifest
            .layers
            .iter()
            .map(|layer| LayerDescriptor {
                digest: layer.digest.clone(),
                media_type: layer.media_type.clone().unwrap_or_default(),
                size: Some(layer.size),
                diff_id: None,
            })
            .collect();
        Ok(Artifact {
            manifest_digest: fetched.digest,
            artifact_type,
            blobs,
            store: self.store(reference, &source_name),
        })
    }

    fn store(&self, reference: &RegistryReference, source_name: &str) -> RegistryStore {
        RegistryStore {
            transport: self.transport.clone(),
            reference: reference.clone(),
            source_name: source_name.to_owned(),
        }
    }

    fn request<'a>(
        &self,
        reference: &'a RegistryReference,
        source_name: &'a str,
        scope: &'a str,
        method: Method,
        path: &'a str,
        headers: Vec<(header::HeaderName, String)>,
    ) -> Request<'a> {
        Request {
            reference: source_name,
            registry: reference.registry(),
            host: reference.api_host(),
            scope,
            method,
            path,
            headers,
        }
    }

    /// `GET`s a manifest by tag or digest, capped at [`MAX_MANIFEST_SIZE`], and checks its
    /// digest: against the reference's or descriptor's digest when there is one, else
    /// against the registry's `Docker-Content-Digest`.
    fn fetch_manifest(
        &self,
        reference: &RegistryReference,
        source_name: &str,
        target: &str,
        expected: Option<(&str, u64)>,
    ) -> Result<FetchedManifest, RegistryError> {
        let path = format!("/v2/{}/manifests/{target}", reference.repository());
        let scope = pull_scope(reference);
        let request = self.request(
            reference,
            source_name,
            &scope,
            Method::GET,
            &path,
            vec![(header::ACCEPT, MANIFEST_ACCEPT.to_owned())],
        );
        let mut clock = TransferClock::start(
            &self.transport.options,
            format!("{source_name} manifest {target}"),
        );
        let response = self.transport.send(&request)?;
        if response.status() != StatusCode::OK {
            return Err(self.transport.status_error(&request, response));
        }
        clock.rename(format!(
            "{source_name} manifest {target} from {}",
            redact_url(response.url())
        ));
        clock.check(0)?;
        let document = format!("manifest {target}");
        let too_large = |size| RegistryError::DocumentTooLarge {
            source_name: source_name.to_owned(),
            document: document.clone(),
            size,
            limit: MAX_MANIFEST_SIZE,
        };
        if let Some(len) = response.content_length().filter(|&l| l > MAX_MANIFEST_SIZE) {
            return Err(too_large(len));
        }
        let media_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned())
            // Generic types say nothing; the document's own mediaType or fields decide then.
            .filter(|v| {
                !matches!(
                    v.as_str(),
                    "" | "application/json" | "text/plain" | "application/octet-stream"
                )
            });
        let header_digest = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut bytes = Vec::new();
        ClockedReader {
            inner: response.take(MAX_MANIFEST_SIZE + 1),
            clock,
        }
        .read_to_end(&mut bytes)
        .map_err(|e| {
            RegistryError::take_from_io(e).unwrap_or_else(|e| RegistryError::Request {
                reference: source_name.to_owned(),
                method: "GET".to_owned(),
                url: path.clone(),
                status: Some(200),
                attempts: 1,
                reason: format!("reading the manifest: {}", transport::error_chain(&e)),
            })
        })?;
        if bytes.len() as u64 > MAX_MANIFEST_SIZE {
            return Err(too_large(bytes.len() as u64));
        }
        let digest = sha256_of(&bytes);
        let blob = format!("{source_name} {document}");
        let promised = match expected {
            Some((digest, size)) => {
                if bytes.len() as u64 != size {
                    return Err(RegistryError::Malformed {
                        source_name: source_name.to_owned(),
                        document,
                        reason: format!("{} bytes, but its descriptor says {size}", bytes.len()),
                    });
                }
                Some(digest.to_owned())
            }
            None if target.starts_with("sha256:") => Some(target.to_owned()),
            None => header_digest.filter(|d| d.starts_with("sha256:")),
        };
        if let Some(promised) = promised.filter(|p| *p != digest) {
            return Err(RegistryError::DigestMismatch {
                blob,
                expected: promised,
                actual: digest,
            });
        }
        Ok(FetchedManifest {
            digest,
            media_type,
            bytes,
        })
    }

    /// Collects `field` (`tags`, `repositories`) over all pages of a listing.
    fn list(
        &self,
        reference: &RegistryReference,
        source_name: &str,
        scope: &str,
        first_path: &str,
        field: &str,
    ) -> Result<Vec<String>, RegistryError> {
        #[derive(Deserialize)]
        struct Page {
            tags: Option<Vec<String>>,
            repositories: Option<Vec<String>>,
        }
        let mut names = Vec::new();
        let mut next = Some(first_path.to_owned());
        let mut pages = 0;
        while let Some(path) = next.take() {
            pages += 1;
            let request = self.request(
                reference,
                source_name,
                scope,
                Method::GET,
                &path,
                Vec::new(),
            );
            let mut clock = TransferClock::start(
                &self.transport.options,
                format!("{source_name} {field} page {pages}"),
            );
            let response = self.transport.send(&request)?;
            if response.status() != StatusCode::OK {
                return Err(self.transport.status_error(&request, response));
            }
            clock.rename(format!(
                "{source_name} {field} page {pages} from {}",
                redact_url(response.url())
            ));
            clock.check(0)?;
            next = response
                .headers()
                .get(header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let mut bytes = Vec::new();
            ClockedReader {
                inner: response.take(MAX_LISTING_PAGE + 1),
                clock,
            }
            .read_to_end(&mut bytes)
            .map_err(|e| {
                RegistryError::take_from_io(e).unwrap_or_else(|e| {
                    self.transport.request_error(
                        &request,
                        &path,
                        Some(StatusCode::OK),
                        1,
                        transport::error_chain(&e),
                    )
                })
            })?;
            if bytes.len() as u64 > MAX_LISTING_PAGE {
                return Err(RegistryError::DocumentTooLarge {
                    source_name: source_name.to_owned(),
                    document: format!("{field} page {pages}"),
                    size: bytes.len() as u64,
                    limit: MAX_LISTING_PAGE,
                });
            }
            let page: Page = parse_json(source_name, &format!("{field} page {pages}"), &bytes)?;
            let entries = if field == "tags" {
                page.tags
            } else {
                page.repositories
            };
            names.extend(entries.unwrap_or_default());
            if names.len() > MAX_LISTING_ENTRIES || (next.is_some() && pages >= MAX_LISTING_PAGES) {
                return Err(RegistryError::DocumentTooLarge {
                    source_name: source_name.to_owned(),
                    document: format!("{field} listing"),
                    size: names.len() as u64,
                    limit: MAX_LISTING_ENTRIES as u64,
                });
            }
        }
        Ok(names)
    }
}

/// An OCI artifact on a registry: its manifest, checked, and its blobs.
pub struct Artifact {
    manifest_digest: String,
    artifact_type: Option<String>,
    blobs: Vec<LayerDescriptor>,
    store: RegistryStore,
}

impl std::fmt::Debug for Artifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Artifact")
            .field("manifest_digest", &self.manifest_digest)
            .field("artifact_type", &self.artifact_type)
            .field("blobs", &self.blobs)
            .finish_non_exhaustive()
    }
}

impl Artifact {
    /// `sha256:` of the manifest.
    pub fn manifest_digest(&self) -> &str {
        &self.manifest_digest
    }

    /// The manifest's `artifactType`, else its config's media type.
    pub fn artifact_type(&self) -> Option<&str> {
        self.artifact_type.as_deref()
    }

    /// The blobs (the manifest's `layers`), in order.
    pub fn blobs(&self) -> &[LayerDescriptor] {
        &self.blobs
    }

    /// Streams blob `index`, verifying its size and digest as it is read (see
    /// [`LocalImage::open_layer`] for how failures surface).
    pub fn open_blob(&self, index: usize) -> Result<Box<dyn Read + Send>, RegistryError> {
        let blob = self
            .blobs
            .get(index)
            .ok_or(RegistryError::LayerOutOfRange {
                index,
                count: self.blobs.len(),
            })?;
        let path = blob_path(&blob.digest)?;
        let stored = self
            .store
            .open(&path)?
            .ok_or_else(|| RegistryError::BlobNotFound {
                digest: blob.digest.clone(),
                source_name: self.store.source_name.clone(),
            })?;
        Ok(Box::new(VerifyingReader::new(
            stored.reader,
            format!("{} {path}", self.store.source_name),
            blob.digest.clone(),
            blob.size,
        )))
    }
}

fn pull_scope(reference: &RegistryReference) -> String {
    format!("repository:{}:pull", reference.repository())
}

/// The target of `rel="next"` in a `Link` header (`<url>; rel="next"`).
fn next_link(value: &str) -> Option<String> {
    value.split(',').find_map(|link| {
        let (target, params) = link.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_next_links() {
        assert_eq!(
            next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=b&n=2")
        );
        assert_eq!(
            next_link(r#"<https://x/prev>; rel="prev", <https://x/next>; rel="next""#).as_deref(),
            Some("https://x/next")
        );
        assert_eq!(next_link(r#"</v2/x>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }
}
