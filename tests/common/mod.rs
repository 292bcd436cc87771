//! Test images, built on demand from Debian packages by scripts/build-test-images.sh.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The directory holding the built test images (`target/test-images`, or
/// `$TRAWL_TEST_IMAGES`). Builds them on first use; the script itself takes a
/// lock, so concurrent test binaries wait for one build.
pub fn images() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = std::env::var_os("TRAWL_TEST_IMAGES")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/test-images"));
        let status = Command::new("bash")
            .arg(root.join("scripts/build-test-images.sh"))
            .arg(&dir)
            .status()
            .expect("run scripts/build-test-images.sh");
        assert!(
            status.success(),
            "building the test images failed: {status}"
        );
        dir
    })
}

/// `name<TAB>version` lines of a file, sorted.
#[allow(dead_code)]
pub fn tsv_pairs(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut pairs: Vec<(String, String)> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (n, v) = l.split_once('\t').unwrap();
            (n.to_string(), v.to_string())
        })
        .collect();
    pairs.sort();
    pairs
}

/// The same directory, under the name the registry test support uses.
#[allow(dead_code)]
pub fn test_images() -> PathBuf {
    images().to_path_buf()
}
