//! The cargo-auditable reader against a binary built by `cargo auditable
//! build`, compared with what the reference reader (`rust-audit-info`)
//! printed for it; and against sections that lie or explode.

mod common_lang;

use std::fs::File;
use std::io::Write;

use trawl_inventory::cargo_auditable::{
    AuditableError, AuditableLimits, DependencyKind, packages, parse_section, read_elf,
    read_elf_seekable,
};
use trawl_inventory::{PackageKind, PackageRole};

fn demo() -> Vec<u8> {
    std::fs::read(common_lang::artifacts().join("rust/auditable-demo")).unwrap()
}

/// `(name, version, source, kind, root)` of each package the reference
/// reader lists.
fn expected() -> Vec<(String, String, String, String, bool)> {
    let text =
        std::fs::read_to_string(common_lang::artifacts().join("rust/auditable-demo.expected.json"))
            .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_str().unwrap().to_string(),
                p["source"].as_str().unwrap().to_string(),
                p["kind"].as_str().unwrap_or("runtime").to_string(),
                p["root"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

#[test]
fn matches_rust_audit_info() {
    let limits = AuditableLimits::default();
    let deps = read_elf(&demo(), &limits).unwrap().expect("audit data");
    let ours: Vec<_> = deps
        .packages
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                p.version.clone(),
                p.source.clone(),
                match p.kind {
                    DependencyKind::Build => "build".to_string(),
                    DependencyKind::Runtime => "runtime".to_string(),
                },
                p.root,
            )
        })
        .collect();
    let want = expected();
    assert_eq!(ours, want);
    assert!(want.iter().any(|p| p.3 == "build"), "a build dependency");
    let seekable = read_elf_seekable(
        File::open(common_lang::artifacts().join("rust/auditable-demo")).unwrap(),
        &limits,
    )
    .unwrap()
    .unwrap();
    assert_eq!(seekable, deps);

    let pkgs = packages(&deps, "usr/local/bin/auditable-demo", Some("sha256:l"));
    let rows: Vec<_> = pkgs
        .iter()
        .map(|p| {
            assert_eq!(p.kind, PackageKind::Cargo);
            assert_eq!(p.database, "usr/local/bin/auditable-demo");
            assert_eq!(p.found_by.as_deref(), Some("cargo-auditable"));
            (p.name.as_str(), p.role.unwrap(), p.purl.clone())
        })
        .collect();
    for ((name, role, purl), w) in rows.iter().zip(&want) {
        assert_eq!(*name, w.0);
        assert_eq!(*purl, format!("pkg:cargo/{}@{}", w.0, w.1));
        let want_role = if w.4 {
            PackageRole::Main
        } else if w.3 == "build" {
            PackageRole::Build
        } else {
            PackageRole::Dependency
        };
        assert_eq!(*role, want_role, "{name}");
    }
}

#[test]
fn a_binary_without_audit_data_is_none() {
    let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    assert_eq!(read_elf(&me, &AuditableLimits::default()).unwrap(), None);
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

/// A section that inflates to a gigabyte: stopped at the cap, in bounded
/// memory (the compressed bomb is about a megabyte). Built from one
/// full-flushed deflate block of a mebibyte of spaces, repeated: each block
/// restarts the dictionary, so the copies are byte-identical.
#[test]
fn a_gigabyte_section_stops_at_the_cap() {
    let spaces = vec![b' '; 1 << 20];
    let mut c = flate2::Compress::new(flate2::Compression::best(), true);
    let mut first = Vec::with_capacity(1 << 20);
    c.compress_vec(&spaces, &mut first, flate2::FlushCompress::Full)
        .unwrap();
    let mut block = Vec::with_capacity(1 << 20);
    c.compress_vec(&spaces, &mut block, flate2::FlushCompress::Full)
        .unwrap();
    let mut bomb = first;
    for _ in 1..1024 {
        bomb.extend_from_slice(&block);
    }
    assert!(bomb.len() < 2 << 20, "{}", bomb.len());
    let err = parse_section(&bomb, &AuditableLimits::default()).unwrap_err();
    assert_eq!(err, AuditableError::DecompressedTooLarge { max: 8 << 20 });
    // Over the compressed cap it is not even inflated.
    let small = AuditableLimits {
        max_compressed: 1024,
        ..AuditableLimits::default()
    };
    assert!(matches!(
        parse_section(&bomb, &small).unwrap_err(),
        AuditableError::SectionTooLarge { .. }
    ));
}

#[test]
fn corrupt_sections_are_typed_errors() {
    let limits = AuditableLimits::default();
    let good =
        zlib(br#"{"packages":[{"name":"a","version":"1.0.0","source":"local","root":true}]}"#);
    assert_eq!(parse_section(&good, &limits).unwrap().packages.len(), 1);
    // Truncated zlib stream.
    assert!(matches!(
        parse_section(&good[..good.len() / 2], &limits).unwrap_err(),
        AuditableError::Decompress { .. }
    ));
    // Not zlib at all.
    assert!(matches!(
        parse_section(b"{\"packages\":[]}", &limits).unwrap_err(),
        AuditableError::Decompress { .. }
    ));
    // A dependency index past the end, and a cycle.
    let bad = zlib(br#"{"packages":[{"name":"a","version":"1.0.0","source":"local","dependencies":[1,7]},{"name":"b","version":"1","source":"local"}]}"#);
    assert!(matches!(
        parse_section(&bad, &limits).unwrap_err(),
        AuditableError::BadDependencyIndex {
            package: 0,
            index: 7,
            count: 2,
            ..
        }
    ));
    let cycle = zlib(br#"{"packages":[{"name":"a","version":"1","source":"local","dependencies":[1]},{"name":"b","version":"1","source":"local","dependencies":[2]},{"name":"c","version":"1","source":"local","dependencies":[0]}]}"#);
    assert!(matches!(
        parse_section(&cycle, &limits).unwrap_err(),
        AuditableError::Cycle { .. }
    ));
}

/// The real binary with its section header made to lie.
#[test]
fn lying_section_headers_are_typed_errors() {
    let bytes = demo();
    // Find the .dep-v0 section header through the test's own ELF64 reading.
    let u64at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let u32at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let u16at = |b: &[u8], o: usize| u16::from_le_bytes(b[o..o + 2].try_into().unwrap());
    let shoff = u64at(&bytes, 0x28) as usize;
    let shnum = u16at(&bytes, 0x3c) as usize;
    let shstrndx = u16at(&bytes, 0x3e) as usize;
    let strtab_off = u64at(&bytes, shoff + shstrndx * 64 + 24) as usize;
    let sh = (0..shnum)
        .map(|i| shoff + i * 64)
        .find(|&sh| {
            let name = strtab_off + u32at(&bytes, sh) as usize;
            bytes[name..].starts_with(b".dep-v0\0")
        })
        .expect(".dep-v0 header");
    let limits = AuditableLimits::default();

    // Size: a terabyte.
    let mut b = bytes.clone();
    b[sh + 32..sh + 40].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(matches!(
        read_elf(&b, &limits).unwrap_err(),
        AuditableError::SectionTooLarge { .. }
    ));
    // Offset: past the end of the file.
    let mut b = bytes.clone();
    b[sh + 24..sh + 32].copy_from_slice(&(bytes.len() as u64 - 4).to_le_bytes());
    assert!(matches!(
        read_elf(&b, &limits).unwrap_err(),
        AuditableError::Elf(trawl_inventory::elf::ElfError::OutsideFile { .. })
    ));
    // Offset: somewhere that is not zlib.
    let mut b = bytes.clone();
    b[sh + 24..sh + 32].copy_from_slice(&64u64.to_le_bytes());
    assert!(matches!(
        read_elf(&b, &limits).unwrap_err(),
        AuditableError::Decompress { .. }
    ));
    // Truncated file: the section headers are cut off.
    assert!(matches!(
        read_elf(&bytes[..bytes.len() / 2], &limits).unwrap_err(),
        AuditableError::Elf(_)
    ));
}
