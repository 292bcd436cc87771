//! Arbitrary bytes as up to three layers (split at `\0LAYER\0` markers), each
//! read as a layer blob (plain tar, or gzip/zstd when the bytes say so) and
//! merged; then every query of the merged view. Nothing may panic, and the
//! limits bound what is kept.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_layers::{Limits, MergedFs, Selection, read_layer};

const MARKER: &[u8] = b"\0LAYER\0";

fuzz_target!(|data: &[u8]| {
    let selection = Selection::new()
        .with_path("etc/os-release")
        .with_path("usr/lib/os-release")
        .with_path("var/lib/dpkg/status")
        .with_prefix("var/lib/dpkg/status.d")
        .with_prefix("var/lib/rpm");
    let limits = Limits { max_file_size: 1 << 20, max_layer_size: 16 << 20 };
    let mut layers = Vec::new();
    let mut rest = data;
    for i in 0..3 {
        let (blob, next) = match rest.windows(MARKER.len()).position(|w| w == MARKER) {
            Some(at) if i < 2 => (&rest[..at], &rest[at + MARKER.len()..]),
            _ => (rest, &[][..]),
        };
        if let Ok(changes) = read_layer(&format!("sha256:{i}"), blob, &selection, &limits) {
            assert!(changes.uncompressed_size() <= limits.max_layer_size);
            layers.push((format!("sha256:{i}"), changes));
        }
        rest = next;
        if rest.is_empty() {
            break;
        }
    }
    let fs = MergedFs::from_layers(layers);
    assert!(fs.kept_bytes() <= 3 * limits.max_layer_size);
    for path in ["etc/os-release", "var/lib/dpkg/status", "var/lib/rpm/Packages", "../../etc/passwd", "/"] {
        let _ = fs.resolve(path);
        if let Some(f) = fs.file(path) {
            assert!(f.data.len() as u64 <= limits.max_file_size);
        }
        let _ = fs.history(path);
        let _ = fs.exists(path);
    }
    for f in fs.files_under("var/lib/dpkg/status.d") {
        assert!(f.path.starts_with("var/lib/dpkg/status.d/"));
    }
});
