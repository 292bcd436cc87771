//! dpkg `.list` and apk `installed` file-list readers over arbitrary bytes:
//! must not panic; every dpkg path is absolute, every apk file has a name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_inventory::ownership::{apk_files, dpkg_list_package, dpkg_list_paths};

fuzz_target!(|data: &[u8]| {
    let mut last = 0;
    for (line, path) in dpkg_list_paths(data) {
        assert!(line > last && path.starts_with('/'));
        last = line;
    }
    for (_, _, file) in apk_files(data) {
        assert!(!file.contains('\n'));
    }
    if let Ok(name) = std::str::from_utf8(data)
        && let Some(pkg) = dpkg_list_package(name)
    {
        assert!(!pkg.is_empty() && !pkg.contains(':') && !pkg.contains('/'));
    }
});
