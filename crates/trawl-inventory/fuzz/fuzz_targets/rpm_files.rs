//! rpm header file-list reader (BASENAMES/DIRNAMES/DIRINDEXES, OLDFILENAMES)
//! over arbitrary bytes: must not panic, and never visits more files than the
//! blob has bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_inventory::rpm::header::visit_files;

fuzz_target!(|data: &[u8]| {
    let mut n = 0usize;
    let _ = visit_files(data, |_, _| n += 1);
    assert!(n <= data.len());
});
