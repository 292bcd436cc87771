//! The rpm header blob parser on arbitrary bytes: errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_inventory::rpm::RpmHeader;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = RpmHeader::parse(data) {
        let _ = (h.evr(), h.source());
    }
});
