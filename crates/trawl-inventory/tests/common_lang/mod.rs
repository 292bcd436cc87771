//! Binaries and archives built on demand by
//! `scripts/lang-artifacts/build-binaries.sh`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The directory holding them (`<workspace>/target/lang-artifacts`, or
/// `$TRAWL_LANG_ARTIFACTS`). Builds them on first use; the script takes a
/// lock, so concurrent test binaries wait for one build.
pub fn artifacts() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let dir = std::env::var_os("TRAWL_LANG_ARTIFACTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/lang-artifacts"));
        let status = Command::new("bash")
            .arg(root.join("scripts/lang-artifacts/build-binaries.sh"))
            .arg(&dir)
            .status()
            .expect("run scripts/lang-artifacts/build-binaries.sh");
        assert!(
            status.success(),
            "building the test artifacts failed: {status}"
        );
        dir
    })
}
