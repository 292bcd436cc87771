//! The Java archive reader (zip central directory, metadata, nested
//! archives) over arbitrary bytes, with small limits so that bombs are
//! reached quickly. Must not panic; every artifact has a name and version.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_inventory::java::{JavaLimits, read_archive};

fuzz_target!(|data: &[u8]| {
    let limits = JavaLimits {
        max_entries: 2000,
        max_total_entries: 20_000,
        max_archives: 200,
        max_depth: 4,
        max_metadata_size: 64 * 1024,
        max_total_inflated: 8 << 20,
        max_in_memory: 4 << 20,
        max_ratio: 200,
    };
    let mut cursor = std::io::Cursor::new(data);
    if let Ok(archive) = read_archive(&mut cursor, data.len() as u64, "fuzz-1.0.jar", &limits) {
        for a in &archive.artifacts {
            assert!(!a.artifact_id.is_empty() && !a.version.is_empty());
            assert!(a.nested.len() <= 4);
        }
    }
});
