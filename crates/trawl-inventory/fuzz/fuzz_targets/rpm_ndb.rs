//! The NDB reader and header parser on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_inventory::rpm::{RpmDbKind, read_packages};

fuzz_target!(|data: &[u8]| {
    let _ = read_packages(RpmDbKind::Ndb, data);
});
