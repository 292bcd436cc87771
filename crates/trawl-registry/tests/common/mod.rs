//! Test images built on demand by `scripts/build-test-images.sh`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The directory holding the test images, built (once per process) if missing.
///
/// `TRAWL_TEST_IMAGES` overrides the default `<workspace>/target/test-images`.
pub fn test_images() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let out = std::env::var_os("TRAWL_TEST_IMAGES")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace.join("target/test-images"));
        let status = Command::new("bash")
            .arg(workspace.join("scripts/build-test-images.sh"))
            .arg(&out)
            .status()
            .expect("run scripts/build-test-images.sh");
        assert!(status.success(), "build-test-images.sh failed: {status}");
        out
    })
}

/// Copies a directory tree (regular files and directories only).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
