//! dpkg status parser (deb822 paragraphs, then package entries) over
//! arbitrary bytes: must not panic, every paragraph stays within the field
//! cap, and every installed entry names a package at a version.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_inventory::dpkg::{EntryOutcome, StatusFile, entry_from_paragraph, paragraphs};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for paragraph in paragraphs(&text).flatten() {
        assert!(paragraph.line >= 1);
        for file in [StatusFile::Status, StatusFile::StatusD] {
            if let EntryOutcome::Installed(e) = entry_from_paragraph(&paragraph, file) {
                assert!(!e.name.is_empty() && !e.version.is_empty());
            }
        }
    }
});
