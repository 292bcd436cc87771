//! .NET deps.json reader over arbitrary bytes: must not panic; a library's
//! name and version, when it has them, are non-empty parts of its key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_inventory::dotnet::parse_deps;

fuzz_target!(|data: &[u8]| {
    if let Ok(libs) = parse_deps(data) {
        for lib in &libs {
            if let Some((name, version)) = lib.name_version() {
                assert!(!name.is_empty() && !version.is_empty());
                assert_eq!(format!("{name}/{version}"), lib.key);
            }
        }
    }
});
