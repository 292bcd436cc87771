//! The SQLite rpm reader on arbitrary bytes (seed it with real `rpmdb.sqlite`
//! files): must not panic, and never hand back more blob bytes than the file
//! holds, whatever schema or pages the bytes describe.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_inventory::rpm::read_sqlite;

fuzz_target!(|data: &[u8]| {
    if let Ok(rows) = read_sqlite(data) {
        let bytes: usize = rows.iter().flatten().map(Vec::len).sum();
        assert!(bytes <= data.len());
    }
});
