//! The store's record reader over arbitrary bytes: a query checks each
//! matched record in place and keeps it undecoded, decoding it only when a
//! caller reads it, so the check must accept exactly what the decoder
//! decodes (else a later read would find damage no query reported) and
//! read the same ids, entry count and vendor severities. Neither may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    trawl_advisory::store::fuzz_record(data);
});
