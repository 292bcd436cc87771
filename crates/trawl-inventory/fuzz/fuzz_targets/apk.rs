//! apk installed-database parser over arbitrary bytes: must not panic, and
//! every entry it accepts names a package at a version.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_inventory::apk::ApkInstalledDb;

fuzz_target!(|data: &[u8]| {
    let db = ApkInstalledDb::parse(data);
    for e in &db.entries {
        assert!(!e.name.is_empty() && !e.version.is_empty());
        assert!(e.line >= 1);
    }
    for e in &db.errors {
        assert!(e.line >= 1);
    }
});
