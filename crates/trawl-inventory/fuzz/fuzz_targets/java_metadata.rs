//! The `pom.properties`, manifest and file-name parsers over arbitrary
//! text. Must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_inventory::java::metadata::{
    file_name_identity, manifest_identity, manifest_main, osgi_equal, pom_properties,
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = pom_properties(&text);
    let (_, name, version) = manifest_identity(&manifest_main(&text));
    if let (Some(n), Some(v)) = (name, version) {
        assert!(!n.is_empty() && !v.is_empty());
        assert!(osgi_equal(&v, &v));
    }
    let (stem, version) = file_name_identity(&text);
    if let Some(v) = version {
        assert!(v.starts_with(|c: char| c.is_ascii_digit()));
        assert!(!stem.is_empty());
    }
});
