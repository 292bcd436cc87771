//! Broken layouts and archives: each fault gives its own error, naming the blob.

mod common;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tempfile::TempDir;
use trawl_registry::{ImageSource, LocalImage, OpenedSource, RegistryError, open};

/// A private copy of the distroless layout.
fn layout_copy() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("oci");
    common::copy_tree(&common::test_images().join("distroless/oci"), &layout);
    (dir, layout)
}

fn source(layout: &Path) -> ImageSource {
    format!("oci-dir:{}", layout.display()).parse().unwrap()
}

fn open_image(source: &ImageSource) -> LocalImage {
    match open(source).unwrap() {
        OpenedSource::Image(image) => image,
        OpenedSource::Rootfs(_) => unreachable!(),
    }
}

fn open_err(source: &ImageSource) -> RegistryError {
    match open(source) {
        Ok(opened) => panic!("{source} opened: {opened:?}"),
        Err(e) => e,
    }
}

fn blob_file(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Reads layer 0 to its end, returning the error it must end with.
fn layer_read_error(image: &LocalImage) -> std::io::Error {
    let mut blob = image.open_layer(0).unwrap();
    let err = std::io::copy(&mut blob, &mut std::io::sink()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    err
}

fn registry_error(err: &std::io::Error) -> &RegistryError {
    RegistryError::from_io(err).unwrap_or_else(|| panic!("no RegistryError in {err}"))
}

fn manifest_digest(layout: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_owned()
}

/// Stores `bytes` as a blob and points index.json's only entry at it.
fn replace_manifest(layout: &Path, bytes: &[u8], media_type: &str) -> String {
    let digest = sha256(bytes);
    fs::write(blob_file(layout, &digest), bytes).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": media_type,
            "digest": digest,
            "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": "latest"}
        }]
    });
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    digest
}

#[test]
fn corrupted_layer_byte_is_a_digest_mismatch_naming_the_blob() {
    let (_dir, layout) = layout_copy();
    let image = open_image(&source(&layout));
    let digest = image.layers()[0].digest.clone();
    let path = blob_file(&layout, &digest);
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    fs::write(&path, &bytes).unwrap();

    let err = layer_read_error(&image);
    match registry_error(&err) {
        RegistryError::DigestMismatch {
            blob,
            expected,
            actual,
        } => {
            assert_eq!(expected, &digest);
            assert_eq!(actual, &sha256(&bytes));
            assert!(
                blob.contains(digest.trim_start_matches("sha256:")),
                "{blob}"
            );
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    assert!(err.to_string().contains(&digest), "{err}");
}

#[test]
fn truncated_layer_is_reported() {
    let (_dir, layout) = layout_copy();
    let image = open_image(&source(&layout));
    let layer = image.layers()[0].clone();
    let path = blob_file(&layout, &layer.digest);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();

    let err = layer_read_error(&image);
    assert!(
        matches!(registry_error(&err), RegistryError::Truncated { expected, actual, .. }
            if Some(*expected) == layer.size && *actual == bytes.len() as u64 - 10),
        "{err}"
    );
    assert!(err.to_string().contains(&layer.digest), "{err}");
}

#[test]
fn oversized_layer_stops_at_declared_size() {
    let (_dir, layout) = layout_copy();
    let image = open_image(&source(&layout));
    let layer = image.layers()[0].clone();
    let path = blob_file(&layout, &layer.digest);
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0u8; 4096]);
    fs::write(&path, &bytes).unwrap();

    let mut blob = image.open_layer(0).unwrap();
    let mut out = Vec::new();
    let err = blob.read_to_end(&mut out).unwrap_err();
    assert!(
        matches!(registry_error(&err), RegistryError::SizeExceeded { .. }),
        "{err}"
    );
    assert_eq!(
        Some(out.len() as u64),
        layer.size,
        "no byte past the declared size"
    );
    assert!(err.to_string().contains(&layer.digest), "{err}");
}

#[test]
fn missing_blobs_are_named() {
    let (_dir, layout) = layout_copy();
    let image = open_image(&source(&layout));
    let layer_digest = image.layers()[0].digest.clone();
    fs::remove_file(blob_file(&layout, &layer_digest)).unwrap();
    match image.open_layer(0) {
        Err(RegistryError::BlobNotFound { digest, .. }) => assert_eq!(digest, layer_digest),
        Err(other) => panic!("expected BlobNotFound, got {other:?}"),
        Ok(_) => panic!("opened a missing layer"),
    }
    assert!(matches!(
        image.open_layer(7),
        Err(RegistryError::LayerOutOfRange { index: 7, count: 1 })
    ));

    let config_digest = image.config_digest().to_owned();
    fs::remove_file(blob_file(&layout, &config_digest)).unwrap();
    let err = open_err(&source(&layout));
    assert!(
        matches!(&err, RegistryError::BlobNotFound { digest, .. } if *digest == config_digest),
        "{err}"
    );
    assert!(err.to_string().contains(&config_digest), "{err}");
}

#[test]
fn corrupted_manifest_is_rejected_on_open() {
    let (_dir, layout) = layout_copy();
    let digest = manifest_digest(&layout);
    let path = blob_file(&layout, &digest);
    let text = fs::read_to_string(&path).unwrap();
    fs::write(
        &path,
        text.replacen("\"schemaVersion\":2", "\"schemaVersion\":3", 1),
    )
    .unwrap();
    let err = open_err(&source(&layout));
    assert!(
        matches!(&err, RegistryError::DigestMismatch { expected, .. } if *expected == digest),
        "{err}"
    );
    assert!(err.to_string().contains(&digest), "{err}");
}

#[test]
fn bad_index_json_and_missing_oci_layout() {
    let (_dir, layout) = layout_copy();
    fs::write(layout.join("index.json"), b"{\"manifests\": [").unwrap();
    let err = open_err(&source(&layout));
    assert!(
        matches!(&err, RegistryError::InvalidJson { document, .. } if document == "index.json"),
        "{err}"
    );

    fs::remove_file(layout.join("oci-layout")).unwrap();
    assert!(matches!(
        open_err(&source(&layout)),
        RegistryError::NotAnOciLayout { .. }
    ));
}

#[test]
fn unknown_reference_lists_available_refs() {
    let (_dir, layout) = layout_copy();
    let source: ImageSource = format!("oci-dir:{}:nightly", layout.display())
        .parse()
        .unwrap();
    let err = open_err(&source);
    match &err {
        RegistryError::UnknownReference {
            reference,
            available,
            ..
        } => {
            assert_eq!(reference, "nightly");
            assert_eq!(available, &["latest".to_owned()]);
        }
        other => panic!("expected UnknownReference, got {other:?}"),
    }
    assert!(err.to_string().contains("latest"), "{err}");
}

#[test]
fn two_images_without_reference_is_ambiguous() {
    let (_dir, layout) = layout_copy();
    let mut index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let mut second = index["manifests"][0].clone();
    second["annotations"]["org.opencontainers.image.ref.name"] = "other".into();
    index["manifests"].as_array_mut().unwrap().push(second);
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let err = open_err(&source(&layout));
    assert!(
        matches!(&err, RegistryError::AmbiguousReference { available, .. } if available.len() == 2),
        "{err}"
    );
    let other: ImageSource = format!("oci-dir:{}:other", layout.display())
        .parse()
        .unwrap();
    open_image(&other);
}

#[test]
fn oversized_manifest_is_rejected() {
    let (_dir, layout) = layout_copy();
    let original = fs::read(blob_file(&layout, &manifest_digest(&layout))).unwrap();
    let mut padded = original.clone();
    padded.resize(5 * 1024 * 1024, b' ');
    replace_manifest(
        &layout,
        &padded,
        "application/vnd.oci.image.manifest.v1+json",
    );
    let err = open_err(&source(&layout));
    assert!(
        matches!(&err, RegistryError::DocumentTooLarge { size, limit, .. }
            if *size == padded.len() as u64 && *limit == trawl_registry::MAX_MANIFEST_SIZE),
        "{err}"
    );
}

#[test]
fn unknown_manifest_media_type_is_rejected() {
    let (_dir, layout) = layout_copy();
    let original = fs::read(blob_file(&layout, &manifest_digest(&layout))).unwrap();
    let mut manifest: serde_json::Value = serde_json::from_slice(&original).unwrap();
    manifest["mediaType"] = "application/vnd.example.manifest+json".into();
    let digest = replace_manifest(
        &layout,
        &serde_json::to_vec(&manifest).unwrap(),
        "application/vnd.example.manifest+json",
    );
    let err = open_err(&source(&layout));
    assert!(
        matches!(&err, RegistryError::UnsupportedMediaType { digest: d, media_type, .. }
            if *d == digest && media_type == "application/vnd.example.manifest+json"),
        "{err}"
    );
}

#[test]
fn nested_index_is_followed_to_the_host_platform() {
    let (_dir, layout) = layout_copy();
    let manifest = manifest_digest(&layout);
    let size = fs::metadata(blob_file(&layout, &manifest)).unwrap().len();
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let nested = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256(b"elsewhere"),
             "size": 9, "platform": {"os": "linux", "architecture": "s390x"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest,
             "size": size, "platform": {"os": "linux", "architecture": arch}}
        ]
    });
    replace_manifest(
        &layout,
        &serde_json::to_vec(&nested).unwrap(),
        "application/vnd.oci.image.index.v1+json",
    );
    let image = open_image(&source(&layout));
    assert_eq!(image.manifest_digest(), Some(manifest.as_str()));
    assert_eq!(image.layers().len(), 1);
}

/// Packs a layout directory into a tar with `./`-prefixed names, like `tar -C dir -cf - .`.
fn pack(layout: &Path, tar_path: &Path) {
    let mut builder = tar::Builder::new(fs::File::create(tar_path).unwrap());
    builder.append_dir_all(".", layout).unwrap();
    builder.into_inner().unwrap();
}

#[test]
fn oci_archive_serves_and_verifies_blobs_in_place() {
    let (dir, layout) = layout_copy();
    let tar_path = dir.path().join("image.tar");
    pack(&layout, &tar_path);
    let archive: ImageSource = format!("oci-archive:{}", tar_path.display())
        .parse()
        .unwrap();
    let from_dir = open_image(&source(&layout));
    let from_tar = open_image(&archive);
    assert_eq!(from_dir.manifest_digest(), from_tar.manifest_digest());
    assert_eq!(from_dir.layers(), from_tar.layers());
    std::io::copy(&mut from_tar.open_layer(0).unwrap(), &mut std::io::sink()).unwrap();

    // Corrupt the layer inside the archive: same error as for a directory.
    let digest = from_dir.layers()[0].digest.clone();
    let path = blob_file(&layout, &digest);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&path, &bytes).unwrap();
    pack(&layout, &tar_path);
    let err = layer_read_error(&open_image(&archive));
    assert!(
        matches!(registry_error(&err), RegistryError::DigestMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&digest), "{err}");

    fs::write(&tar_path, b"not a tar at all, just text").unwrap();
    assert!(open(&archive).is_err());
}
