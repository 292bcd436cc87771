//! dpkg status parser (deb822 paragraphs, then package entries) over
//! arbitrary bytes: must not panic, and every installed entry names a package
//! at a version.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_inventory::dpkg::{EntryOutcome, entry_from_paragraph, parse_paragraphs};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for paragraph in parse_paragraphs(&text).into_iter().flatten() {
        if let EntryOutcome::Installed(e) = entry_from_paragraph(&paragraph) {
            assert!(!e.name.is_empty() && !e.version.is_empty());
        }
    }
});
