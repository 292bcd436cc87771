//! Pushing an OCI artifact with `oci-client`: its upload and manifest code fits as is.
//!
//! Trust, plain-HTTP choice and credentials come from our own transport, so a push goes
//! where a pull would, with the same credentials, and nowhere else.

use std::collections::BTreeMap;

use oci_client::client::{
    Certificate, CertificateEncoding, ClientConfig, ClientProtocol, Config, ImageLayer,
};
use oci_client::manifest::OciImageManifest;
use oci_client::secrets::RegistryAuth;

use crate::registry::RegistryClient;
use crate::{RegistryError, RegistryReference};

/// The OCI "empty" config of artifacts without one: `{}`.
const MEDIA_TYPE_EMPTY: &str = "application/vnd.oci.empty.v1+json";

pub(crate) fn push_artifact(
    client: &RegistryClient,
    reference: &RegistryReference,
    artifact_type: &str,
    blob_media_type: &str,
    blob: Vec<u8>,
) -> Result<(), RegistryError> {
    let source_name = format!("registry:{reference}");
    let failed = |reason: String| RegistryError::Push {
        reference: source_name.clone(),
        reason,
    };
    let Some(tag) = reference.tag() else {
        return Err(failed(
            "artifacts are pushed by tag; the reference has none".to_owned(),
        ));
    };
    let transport = &client.transport;
    let options = &transport.options;
    let host = reference.api_host();
    let base = transport.base_url(&source_name, reference.registry(), host)?;
    let auth = match transport.credentials(&source_name, reference.registry(), host)? {
        Some(c) => RegistryAuth::Basic(c.username, c.password),
        None => RegistryAuth::Anonymous,
    };
    let mut extra_root_certificates = Vec::new();
    for path in &options.ca_files {
        let cannot_read = |e: &dyn std::fmt::Display| {
            failed(format!("cannot read CA file {}: {e}", path.display()))
        };
        let (mut file, _) = crate::file::open_regular(path).map_err(|e| cannot_read(&e))?;
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut data).map_err(|e| cannot_read(&e))?;
        extra_root_certificates.push(Certificate {
            encoding: CertificateEncoding::Pem,
            data,
        });
    }
    let config = ClientConfig {
        // Our transport already chose: TLS, or plain HTTP where that is allowed and needed.
        protocol: if base.scheme() == "http" {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        extra_root_certificates,
        connect_timeout: Some(options.connect_timeout),
        read_timeout: Some(options.read_timeout),
        use_monolithic_push: true,
        ..ClientConfig::default()
    };
    let oci = oci_client::Client::new(config);
    let target = oci_client::Reference::with_tag(
        host.to_owned(),
        reference.repository().to_owned(),
        tag.to_owned(),
    );
    let layers = [ImageLayer::new(blob, blob_media_type.to_owned(), None)];
    let empty_config = Config::new(b"{}".to_vec(), MEDIA_TYPE_EMPTY.to_owned(), None);
    let mut manifest = OciImageManifest::build(&layers, &empty_config, None::<BTreeMap<_, _>>);
    manifest.artifact_type = Some(artifact_type.to_owned());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failed(format!("cannot start the async runtime: {e}")))?;
    runtime
        .block_on(oci.push(&target, &layers, empty_config, &auth, Some(manifest)))
        .map_err(|e| failed(crate::registry::limits::redact_urls_in(&e.to_string())))?;
    Ok(())
}
