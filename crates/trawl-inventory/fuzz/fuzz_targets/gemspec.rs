//! Gemspec (Ruby source) reader over arbitrary bytes: must not panic or loop,
//! and a gem it reads has a non-empty name and version.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_inventory::ruby::parse_gemspec;

fuzz_target!(|data: &[u8]| {
    if let Ok(g) = parse_gemspec(data) {
        assert!(!g.name.is_empty() && !g.version.is_empty());
        assert!(g.line >= 1);
    }
});
