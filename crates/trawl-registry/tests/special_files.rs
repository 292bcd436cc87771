//! Sources open only regular files (issue 15, item 11: "a FIFO in an OCI layout hangs the
//! scan"). Real FIFOs, made with `mkfifo`, stand where a source expects files: each open or
//! read must come back at once with [`RegistryError::NotARegularFile`] naming the file and
//! what it is. Each case runs on its own thread under a generous bound that only guards
//! against the hang itself.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use tempfile::TempDir;
use trawl_registry::{ImageSource, OpenedSource, RegistryError, open};

/// Longer than any of these cases takes by orders of magnitude; only a hang reaches it.
const HANG_GUARD: Duration = Duration::from_secs(20);

/// Runs `f` on its own thread; fails the test if it does not finish within [`HANG_GUARD`].
fn promptly<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(HANG_GUARD) {
        Ok(value) => value,
        // The thread stays blocked in open(2); the test process ends with the test.
        Err(_) => panic!("{what}: still blocked after {HANG_GUARD:?}"),
    }
}

fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}: {status}", path.display());
}

/// A private copy of the distroless layout.
fn layout_copy() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("oci");
    common::copy_tree(&common::test_images().join("distroless/oci"), &layout);
    (dir, layout)
}

fn source(spec: String) -> ImageSource {
    spec.parse().unwrap()
}

fn blob_file(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

/// The manifest of the layout's only image.
fn manifest(layout: &Path) -> serde_json::Value {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    serde_json::from_slice(&std::fs::read(blob_file(layout, digest)).unwrap()).unwrap()
}

/// Asserts `error` is `NotARegularFile` for `path`, of `kind`, and says so in words.
fn assert_not_regular(error: &RegistryError, path: &Path, kind: &str) {
    match error {
        RegistryError::NotARegularFile {
            path: p, kind: k, ..
        } => {
            assert_eq!(p, path, "{error}");
            assert_eq!(*k, kind, "{error}");
        }
        other => panic!(
            "expected NotARegularFile for {}, got {other}",
            path.display()
        ),
    }
    let message = error.to_string();
    assert!(
        message.contains(&path.display().to_string())
            && message.contains(kind)
            && message.contains("not a regular file"),
        "{message}"
    );
}

fn open_err(source: ImageSource) -> RegistryError {
    let what = source.to_string();
    promptly(&what.clone(), move || match open(&source) {
        Ok(opened) => panic!("{what} opened: {opened:?}"),
        Err(e) => e,
    })
}

#[test]
fn index_json_fifo_is_refused() {
    let (_dir, layout) = layout_copy();
    let index = layout.join("index.json");
    mkfifo(&index);
    let error = open_err(source(format!("oci-dir:{}", layout.display())));
    assert_not_regular(&error, &index, "FIFO");
}

#[test]
fn oci_layout_fifo_is_refused() {
    let (_dir, layout) = layout_copy();
    let marker = layout.join("oci-layout");
    mkfifo(&marker);
    let error = open_err(source(format!("oci-dir:{}", layout.display())));
    assert_not_regular(&error, &marker, "FIFO");
}

#[test]
fn config_blob_fifo_is_refused() {
    let (_dir, layout) = layout_copy();
    let config = blob_file(
        &layout,
        manifest(&layout)["config"]["digest"].as_str().unwrap(),
    );
    mkfifo(&config);
    let error = open_err(source(format!("oci-dir:{}", layout.display())));
    assert_not_regular(&error, &config, "FIFO");
}

#[test]
fn layer_blob_fifo_is_refused_when_read() {
    let (_dir, layout) = layout_copy();
    let layer = blob_file(
        &layout,
        manifest(&layout)["layers"][0]["digest"].as_str().unwrap(),
    );
    mkfifo(&layer);
    let spec = source(format!("oci-dir:{}", layout.display()));
    let error = promptly("open_layer of a FIFO blob", move || {
        let OpenedSource::Image(image) = open(&spec).unwrap() else {
            unreachable!()
        };
        match image.open_layer(0) {
            Ok(_) => panic!("a FIFO layer opened"),
            Err(e) => e,
        }
    });
    assert_not_regular(&error, &layer, "FIFO");
}

#[test]
fn blob_that_is_a_directory_is_refused() {
    let (_dir, layout) = layout_copy();
    let config = blob_file(
        &layout,
        manifest(&layout)["config"]["digest"].as_str().unwrap(),
    );
    std::fs::remove_file(&config).unwrap();
    std::fs::create_dir(&config).unwrap();
    let error = open_err(source(format!("oci-dir:{}", layout.display())));
    assert_not_regular(&error, &config, "directory");
}

#[test]
fn archive_fifos_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for kind in ["docker-archive", "oci-archive"] {
        let archive = dir.path().join(format!("{kind}.tar"));
        mkfifo(&archive);
        let error = open_err(source(format!("{kind}:{}", archive.display())));
        assert_not_regular(&error, &archive, "FIFO");
    }
    // A character device is no archive either.
    let error = open_err(source("docker-archive:/dev/zero".to_owned()));
    assert_not_regular(&error, Path::new("/dev/zero"), "character device");
}
