//! Composer installed.json reader (both layouts) over arbitrary bytes: must
//! not panic; entries are numbered 1.. in order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_inventory::composer::parse_installed;

fuzz_target!(|data: &[u8]| {
    if let Ok(installed) = parse_installed(data) {
        for (i, e) in installed.entries.iter().enumerate() {
            assert_eq!(e.index, i + 1);
            assert_eq!(e.problem().is_none(), e.name().is_some() && e.version().is_some());
        }
    }
});
