//! Opening the real images built by `scripts/build-test-images.sh` from every local source kind.

mod common;

use std::io::Read;
use std::process::Command;

use sha2::{Digest, Sha256};
use trawl_registry::{
    ImageSource, LocalImage, MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_LAYER_TAR, OpenedSource,
    RegistryError, open,
};

fn open_image(source: &str) -> LocalImage {
    let source: ImageSource = source.parse().unwrap();
    match open(&source).unwrap_or_else(|e| panic!("open {source}: {e}")) {
        OpenedSource::Image(image) => image,
        OpenedSource::Rootfs(path) => panic!("{source} opened as rootfs {}", path.display()),
    }
}

/// Reads every layer to its end (which verifies it); returns the byte counts.
fn read_all_layers(image: &LocalImage) -> Vec<u64> {
    (0..image.layers().len())
        .map(|i| {
            let mut blob = image.open_layer(i).unwrap();
            std::io::copy(&mut blob, &mut std::io::sink())
                .unwrap_or_else(|e| panic!("layer {i} of {}: {e}", image.source_name()))
        })
        .collect()
}

#[test]
fn debian_image_is_the_same_from_every_source() {
    let debian = common::test_images().join("debian");
    let oci_dir = open_image(&format!(
        "oci-dir:{}:bookworm",
        debian.join("oci").display()
    ));
    let oci_archive = open_image(&format!(
        "oci-archive:{}:bookworm",
        debian.join("debian.oci.tar").display()
    ));
    let docker_archive = open_image(&format!(
        "docker-archive:{}:trawl/debian:bookworm",
        debian.join("debian.docker.tar").display()
    ));

    let diff_ids = |image: &LocalImage| -> Vec<String> {
        image
            .layers()
            .iter()
            .map(|l| l.diff_id.clone().unwrap())
            .collect()
    };
    assert_eq!(oci_dir.layers().len(), 2);
    assert_eq!(diff_ids(&oci_dir), oci_dir.config().diff_ids);
    assert_eq!(diff_ids(&oci_dir), diff_ids(&oci_archive));
    assert_eq!(diff_ids(&oci_dir), diff_ids(&docker_archive));
    assert_eq!(oci_dir.manifest_digest(), oci_archive.manifest_digest());
    assert_eq!(docker_archive.manifest_digest(), None);
    assert_eq!(oci_dir.config().os, "linux");
    assert!(!oci_dir.config().architecture.is_empty());

    for layer in oci_dir.layers() {
        assert_eq!(layer.media_type, MEDIA_TYPE_LAYER_GZIP);
    }
    // Docker archives hold uncompressed layers: blob digest == diff_id.
    for layer in docker_archive.layers() {
        assert_eq!(layer.media_type, MEDIA_TYPE_LAYER_TAR);
        assert_eq!(Some(&layer.digest), layer.diff_id.as_ref());
    }

    let compressed = read_all_layers(&oci_dir);
    assert_eq!(compressed, read_all_layers(&oci_archive));
    let sizes: Vec<u64> = oci_dir.layers().iter().map(|l| l.size.unwrap()).collect();
    assert_eq!(compressed, sizes);
    let uncompressed = read_all_layers(&docker_archive);
    assert!(
        uncompressed[1] < uncompressed[0],
        "layer 2 should be the small diff: {uncompressed:?}"
    );
}

#[test]
fn manifest_digest_matches_skopeo() {
    let layout = common::test_images().join("debian/oci");
    let image = open_image(&format!("oci-dir:{}:bookworm", layout.display()));
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:bookworm", layout.display()))
        .output();
    let expected = match raw {
        Ok(out) if out.status.success() => {
            format!("sha256:{}", hex::encode(Sha256::digest(&out.stdout)))
        }
        // Without skopeo, index.json is the other witness.
        _ => {
            let index: serde_json::Value =
                serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
            index["manifests"][0]["digest"].as_str().unwrap().to_owned()
        }
    };
    assert_eq!(image.manifest_digest(), Some(expected.as_str()));
}

#[test]
fn one_layer_images_open() {
    let images = common::test_images();
    for name in ["distroless", "scratch"] {
        let layout = images.join(name).join("oci");
        // The only image: no reference needed.
        let image = open_image(&format!("oci:{}", layout.display()));
        assert_eq!(image.layers().len(), 1, "{name}");
        assert_eq!(read_all_layers(&image).len(), 1);
        let tagged = open_image(&format!("oci-dir:{}:latest", layout.display()));
        assert_eq!(tagged.manifest_digest(), image.manifest_digest());
    }
}

#[test]
fn dir_source_is_a_rootfs() {
    let dir = tempfile::tempdir().unwrap();
    let source: ImageSource = format!("dir:{}", dir.path().display()).parse().unwrap();
    match open(&source).unwrap() {
        OpenedSource::Rootfs(path) => assert_eq!(path, dir.path()),
        OpenedSource::Image(_) => panic!("dir: opened as an image"),
    }
    let missing: ImageSource = format!("dir:{}", dir.path().join("nope").display())
        .parse()
        .unwrap();
    assert!(matches!(
        open(&missing),
        Err(RegistryError::NotADirectory { .. })
    ));
}

#[test]
fn unknown_docker_tag_lists_tags() {
    let tar = common::test_images().join("debian/debian.docker.tar");
    let source: ImageSource = format!("docker-archive:{}:trawl/debian:sid", tar.display())
        .parse()
        .unwrap();
    let err = open(&source).unwrap_err();
    assert!(
        matches!(err, RegistryError::UnknownReference { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("trawl/debian:bookworm"), "{err}");
    // Read a layer partially: dropping the stream early is fine.
    let image = open_image(&format!("docker-archive:{}", tar.display()));
    let mut head = [0u8; 512];
    image.open_layer(0).unwrap().read_exact(&mut head).unwrap();
}
