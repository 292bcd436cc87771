//! Core metadata (METADATA / PKG-INFO) header parser over arbitrary bytes:
//! must not panic, and a result always has a non-empty name and version within
//! the length limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_inventory::python::{MAX_FIELD_LEN, normalize_name, parse_core_metadata};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = parse_core_metadata(data) {
        assert!(!m.name.is_empty() && !m.version.is_empty());
        assert!(m.name.len() <= MAX_FIELD_LEN && m.version.len() <= MAX_FIELD_LEN);
        let n = normalize_name(&m.name);
        assert!(!n.contains("--") && !n.contains('_') && !n.contains('.'));
    }
});
