//! The Go build-info readers over arbitrary bytes: as a whole ELF file (in
//! memory and as a stream), and as the data segment of a minimal valid ELF
//! file whose `.go.buildinfo` section starts at the fuzz input, so the
//! header, varints and pointers are reached on every run. Must not panic;
//! the stream reader agrees with the in-memory one on inline build info.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_inventory::golang::{
    GoBuildInfoFormat, parse_modinfo, read_elf, read_elf_seekable, read_stream,
};

/// An ELF64 little-endian executable: one writable PT_LOAD segment holding
/// `data` at virtual address 0x10000, and a `.go.buildinfo` section on it.
fn wrap(data: &[u8]) -> Vec<u8> {
    const DATA_OFF: usize = 0x1000;
    let mut f = vec![0u8; DATA_OFF];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = 2; // 64-bit
    f[5] = 1; // little-endian
    f[6] = 1; // version
    f[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    f[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
    f[20..24].copy_from_slice(&1u32.to_le_bytes());
    f[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
    f[52..54].copy_from_slice(&64u16.to_le_bytes()); // ehsize
    f[54..56].copy_from_slice(&56u16.to_le_bytes()); // phentsize
    f[56..58].copy_from_slice(&1u16.to_le_bytes()); // phnum
    f[58..60].copy_from_slice(&64u16.to_le_bytes()); // shentsize
    // Program header: PT_LOAD, RW, data at 0x10000.
    let ph = 64;
    f[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes());
    f[ph + 4..ph + 8].copy_from_slice(&6u32.to_le_bytes());
    f[ph + 8..ph + 16].copy_from_slice(&(DATA_OFF as u64).to_le_bytes());
    f[ph + 16..ph + 24].copy_from_slice(&0x10000u64.to_le_bytes());
    f[ph + 32..ph + 40].copy_from_slice(&(data.len() as u64).to_le_bytes());
    f[ph + 40..ph + 48].copy_from_slice(&(data.len() as u64).to_le_bytes());
    f.extend_from_slice(data);
    // Section names, then three section headers (null, .go.buildinfo, .shstrtab).
    let names_off = f.len();
    f.extend_from_slice(b"\0.go.buildinfo\0.shstrtab\0");
    while f.len() % 8 != 0 {
        f.push(0);
    }
    let shoff = f.len();
    let sh = |name: u32, kind: u32, addr: u64, off: u64, size: u64| {
        let mut h = [0u8; 64];
        h[..4].copy_from_slice(&name.to_le_bytes());
        h[4..8].copy_from_slice(&kind.to_le_bytes());
        h[16..24].copy_from_slice(&addr.to_le_bytes());
        h[24..32].copy_from_slice(&off.to_le_bytes());
        h[32..40].copy_from_slice(&size.to_le_bytes());
        h
    };
    let headers = [
        sh(0, 0, 0, 0, 0),
        sh(1, 1, 0x10000, DATA_OFF as u64, data.len() as u64),
        sh(15, 3, 0, names_off as u64, 25),
    ];
    for h in headers {
        f.extend_from_slice(&h);
    }
    f[40..48].copy_from_slice(&(shoff as u64).to_le_bytes());
    f[60..62].copy_from_slice(&3u16.to_le_bytes()); // shnum
    f[62..64].copy_from_slice(&2u16.to_le_bytes()); // shstrndx
    f
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let memory = read_elf(rest);
            if let Ok(Some(info)) = &memory {
                assert!(!info.go_version.is_empty());
            }
            let _ = read_stream(rest);
        }
        1 => {
            let elf = wrap(rest);
            let memory = read_elf(&elf);
            let seekable = read_elf_seekable(std::io::Cursor::new(&elf));
            assert_eq!(memory, seekable);
            if let Ok(Some(info)) = &memory
                && info.format == GoBuildInfoFormat::Inline
            {
                assert_eq!(read_stream(&elf[..]).ok().flatten().as_ref(), Some(info));
            }
        }
        _ => {
            let _ = parse_modinfo(&String::from_utf8_lossy(rest));
        }
    }
});
