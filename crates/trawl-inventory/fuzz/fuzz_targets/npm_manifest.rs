//! package.json reader and the package-root path rule over arbitrary input:
//! must not panic; names and versions it returns are non-empty.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_inventory::npm::{package_dir, parse_manifest};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = parse_manifest(data) {
        assert!(m.name().is_none_or(|n| !n.trim().is_empty()));
        assert!(m.version().is_none_or(|v| !v.trim().is_empty()));
    }
    if let Ok(path) = std::str::from_utf8(data)
        && let Some(dir) = package_dir(path)
    {
        assert!(!dir.name.is_empty() && !dir.name.starts_with('.'));
        assert!(path.ends_with("/package.json"));
    }
});
