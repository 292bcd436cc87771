//! The cargo-auditable reader over arbitrary bytes: as an ELF file, as a
//! zlib-compressed `.dep-v0` section, and as its JSON. Must not panic; a
//! result that validates has in-range dependency indices and one root at
//! most.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_inventory::cargo_auditable::{AuditableLimits, parse_json, parse_section, read_elf};

fuzz_target!(|data: &[u8]| {
    let limits = AuditableLimits {
        max_packages: 1000,
        ..AuditableLimits::default()
    };
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let parsed = match mode % 3 {
        0 => read_elf(rest, &limits).ok().flatten(),
        1 => parse_section(rest, &limits).ok(),
        _ => parse_json(rest, &limits).ok(),
    };
    if let Some(deps) = parsed {
        let n = deps.packages.len();
        assert!(n <= 1000);
        assert!(deps.packages.iter().filter(|p| p.root).count() <= 1);
        assert!(deps.packages.iter().all(|p| p.dependencies.iter().all(|&d| d < n)));
    }
});
