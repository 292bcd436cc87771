//! The GitHub Advisory Database archive reader over arbitrary bytes: a file
//! that is not a zip, a truncated or lying central directory, entries that
//! inflate without end, names reaching outside, records that are not OSV. It
//! must return records and typed warnings, or a typed error, within its
//! limits, and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_advisory::FeedError;
use trawl_advisory::ghsa::{self, GhsaOptions};
use trawl_advisory::limits::FeedLimits;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("trawl-fuzz-ghsa-{}.zip", std::process::id()));
    std::fs::write(&path, data).expect("temp file writable");
    let options = GhsaOptions {
        include_unreviewed: data.first().is_some_and(|b| b & 1 == 1),
        limits: FeedLimits {
            max_entries: 10_000,
            max_entry_size: 1 << 20,
            max_unpacked: 8 << 20,
            ratio_floor: 64 << 10,
            ..FeedLimits::default()
        },
    };
    match ghsa::load_with(&path, &options) {
        Ok(load) => {
            // Each record came from one read entry; an array file may hold more.
            assert!(load.files <= 10_000);
        }
        Err(FeedError::Archive { .. } | FeedError::ArchiveLimit { .. }) => {}
        Err(other) => panic!("unexpected error kind: {other}"),
    }
});
