//! The Go build-info reader against binaries built by real Go toolchains
//! (Debian's Go 1.19: inline format; bullseye's Go 1.15: pointer format; six
//! architectures, both byte orders and pointer sizes), each compared with
//! what `go version -m` printed for it; and against truncated and lying
//! files.

mod common_lang;

use std::fs::File;
use std::path::{Path, PathBuf};

use trawl_inventory::golang::{
    GoBuildInfo, GoBuildInfoError, GoBuildInfoFormat, packages, read_elf, read_elf_seekable,
    read_stream,
};
use trawl_inventory::{PackageKind, PackageRole};

fn go_dir() -> PathBuf {
    common_lang::artifacts().join("go")
}

/// `(name, version, role, found_by)` of each module `go version -m` lists,
/// with replacements applied the way `packages` documents.
fn expected(path: &Path) -> Vec<(String, String, PackageRole, String)> {
    let text = std::fs::read_to_string(path.with_extension(expected_ext(path))).unwrap();
    let mut lines = text.lines();
    let first = lines.next().unwrap();
    let version = first.rsplit_once(": ").unwrap().1.to_string();
    let mut out = vec![(
        "stdlib".to_string(),
        version,
        PackageRole::Toolchain,
        "buildinfo".to_string(),
    )];
    for line in lines {
        let cols: Vec<&str> = line
            .strip_prefix('\t')
            .unwrap_or(line)
            .split('\t')
            .collect();
        match cols[0] {
            "mod" => out.push((
                cols[1].into(),
                cols[2].into(),
                PackageRole::Main,
                "buildinfo".into(),
            )),
            "dep" => out.push((
                cols[1].into(),
                cols[2].into(),
                PackageRole::Dependency,
                "buildinfo".into(),
            )),
            "=>" => {
                let last = out.last_mut().unwrap();
                last.3 = format!("buildinfo (replaces {} {})", last.0, last.1);
                last.0 = cols[1].into();
                last.1 = cols[2].into();
            }
            _ => {}
        }
    }
    out
}

fn expected_ext(path: &Path) -> String {
    match path.extension() {
        Some(e) => format!("{}.expected", e.to_string_lossy()),
        None => "expected".into(),
    }
}

fn ours(info: &GoBuildInfo, database: &str) -> Vec<(String, String, PackageRole, String)> {
    packages(info, database, Some("sha256:layer"))
        .into_iter()
        .map(|p| {
            assert_eq!(p.kind, PackageKind::Golang);
            assert_eq!(p.database, database);
            assert_eq!(p.layer.as_deref(), Some("sha256:layer"));
            (p.name, p.version, p.role.unwrap(), p.found_by.unwrap())
        })
        .collect()
}

fn check(name: &str, format: GoBuildInfoFormat) {
    let path = go_dir().join(name);
    let bytes = std::fs::read(&path).unwrap();
    let from_memory = read_elf(&bytes).unwrap().expect("a Go binary");
    assert_eq!(from_memory.format, format, "{name}");
    assert_eq!(ours(&from_memory, name), expected(&path), "{name}");
    let from_file = read_elf_seekable(File::open(&path).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(from_file, from_memory, "{name}");
    match format {
        GoBuildInfoFormat::Inline => {
            let streamed = read_stream(File::open(&path).unwrap()).unwrap().unwrap();
            assert_eq!(streamed, from_memory, "{name}");
        }
        GoBuildInfoFormat::Pointer => {
            let err = read_stream(File::open(&path).unwrap()).unwrap_err();
            assert!(
                matches!(err, GoBuildInfoError::NeedsRandomAccess { .. }),
                "{name}: {err}"
            );
        }
    }
}

#[test]
fn go119_inline_all_architectures_match_go_version_m() {
    for arch in ["amd64", "386", "arm64", "ppc64", "mips", "s390x"] {
        check(&format!("app-go1.19-{arch}"), GoBuildInfoFormat::Inline);
    }
}

#[test]
fn go115_pointer_format_all_architectures_match_go_version_m() {
    for arch in ["amd64", "386", "s390x", "mips"] {
        check(&format!("app-go1.15-{arch}"), GoBuildInfoFormat::Pointer);
    }
}

#[test]
fn go115_gopath_binary_has_only_the_toolchain() {
    check("go1.15-gofmt", GoBuildInfoFormat::Pointer);
    let info = read_elf(&std::fs::read(go_dir().join("go1.15-gofmt")).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(info.main, None);
    assert!(info.deps.is_empty());
}

#[test]
fn replacements_and_devel_main_module() {
    let bytes = std::fs::read(go_dir().join("app-go1.19-amd64")).unwrap();
    let info = read_elf(&bytes).unwrap().unwrap();
    let pkgs = packages(&info, "app/bin/app", None);
    let purls: Vec<&str> = pkgs.iter().map(|p| p.purl.as_str()).collect();
    assert_eq!(
        purls,
        [
            "pkg:golang/stdlib@go1.19.8",
            "pkg:golang/example.com/app",
            "pkg:golang/./greet",
            "pkg:golang/example.com/new@v1.1.0",
            "pkg:golang/example.com/quote@v1.2.3",
        ]
    );
    let old = info
        .deps
        .iter()
        .find(|d| d.path == "example.com/old")
        .unwrap();
    assert_eq!(old.version, "v1.0.0");
    let rep = old.replace.as_ref().unwrap();
    assert_eq!(
        (rep.path.as_str(), rep.version.as_str()),
        ("example.com/new", "v1.1.0")
    );
    assert!(rep.sum.starts_with("h1:"));
}

/// The peer scanners `scripts/peer-scanners.sh` fetches are large real Go
/// binaries with hundreds of modules; compared when they are there.
#[test]
fn peer_scanner_binaries_match_go_version_m() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/peers/bin");
    for name in ["trivy", "syft"] {
        let path = dir.join(name);
        let expected_file = go_dir().join(format!("{name}.expected"));
        if !path.exists() || !expected_file.exists() {
            eprintln!("skipping {name}: run scripts/peer-scanners.sh, then build-binaries.sh");
            continue;
        }
        let info = read_elf_seekable(File::open(&path).unwrap())
            .unwrap()
            .unwrap();
        let want = expected(&go_dir().join(name));
        assert!(want.len() > 100, "{name}: {} modules", want.len());
        assert_eq!(ours(&info, name), want, "{name}");
        let streamed = read_stream(File::open(&path).unwrap()).unwrap().unwrap();
        assert_eq!(streamed, info);
    }
}

// ---------------------------------------------------------------- bad input

fn app() -> Vec<u8> {
    std::fs::read(go_dir().join("app-go1.19-amd64")).unwrap()
}

fn pointer_app() -> Vec<u8> {
    std::fs::read(go_dir().join("app-go1.15-amd64")).unwrap()
}

/// Every prefix of a real binary gives a typed error or `None`, never a
/// panic, and never a build info that differs from the real one.
#[test]
fn truncated_binaries_give_typed_errors() {
    for bytes in [app(), pointer_app()] {
        let whole = read_elf(&bytes).unwrap().unwrap();
        let len = bytes.len();
        let mut cuts: Vec<usize> = (0..256).collect();
        cuts.extend((1..64).map(|i| len * i / 64));
        cuts.extend(len - 64..len);
        for cut in cuts {
            let prefix = &bytes[..cut];
            if let Ok(Some(info)) = read_elf(prefix) {
                assert_eq!(info, whole, "cut at {cut}");
            }
            if let Ok(Some(info)) = read_stream(prefix) {
                assert_eq!(info, whole, "stream cut at {cut}");
            }
        }
        // Cut right after the ELF headers: the section headers are gone.
        assert!(matches!(
            read_elf(&bytes[..4096]),
            Err(GoBuildInfoError::Elf(_))
        ));
    }
}

fn header_offset(bytes: &[u8]) -> usize {
    let mut at = 0;
    loop {
        let i = bytes[at..]
            .windows(14)
            .position(|w| w == trawl_inventory::golang::MAGIC)
            .unwrap()
            + at;
        if i % 16 == 0 {
            return i;
        }
        at = i + 1;
    }
}

#[test]
fn inline_lengths_that_lie_are_typed_errors() {
    let mut bytes = app();
    let at = header_offset(&bytes);
    // The version's varint length, set to 5 GB.
    let huge = [0x80, 0xe4, 0x97, 0xd0, 0x12];
    bytes.splice(at + 32..at + 33, huge);
    let err = read_elf(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            GoBuildInfoError::TooLong {
                what: "version",
                ..
            } | GoBuildInfoError::Elf(_)
        ),
        "{err}"
    );
    let err = read_stream(&bytes[..]).unwrap_err();
    assert!(
        matches!(
            err,
            GoBuildInfoError::TooLong {
                what: "version",
                ..
            }
        ),
        "{err}"
    );

    // A varint that never ends.
    let mut bytes = app();
    let at = header_offset(&bytes);
    for b in &mut bytes[at + 32..at + 44] {
        *b = 0xff;
    }
    let err = read_stream(&bytes[..]).unwrap_err();
    assert!(matches!(err, GoBuildInfoError::BadHeader { .. }), "{err}");
}

#[test]
fn pointers_outside_the_file_are_typed_errors() {
    let mut bytes = pointer_app();
    let at = header_offset(&bytes);
    assert_eq!(bytes[at + 14], 8);
    // runtime.buildVersion's pointer, to an address no segment maps.
    bytes[at + 16..at + 24].copy_from_slice(&0x7fff_0000_0000u64.to_le_bytes());
    let err = read_elf(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            GoBuildInfoError::Elf(trawl_inventory::elf::ElfError::Unmapped { .. })
        ),
        "{err}"
    );

    // A string header whose length is a terabyte.
    let mut bytes = pointer_app();
    let at = header_offset(&bytes);
    let info = read_elf(&bytes).unwrap().unwrap();
    assert!(!info.deps.is_empty());
    let modinfo_ptr = u64::from_le_bytes(bytes[at + 24..at + 32].try_into().unwrap());
    let elf_offset = vaddr_to_offset(&bytes, modinfo_ptr);
    bytes[elf_offset + 8..elf_offset + 16].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let err = read_elf(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            GoBuildInfoError::TooLong {
                what: "module info",
                ..
            }
        ),
        "{err}"
    );
    // A bad pointer size.
    let mut bytes = pointer_app();
    let at = header_offset(&bytes);
    bytes[at + 14] = 3;
    assert!(matches!(
        read_elf(&bytes).unwrap_err(),
        GoBuildInfoError::BadHeader { .. }
    ));
}

/// File offset of a virtual address in a little-endian ELF64 file, from its
/// program headers (the test's own minimal reader).
fn vaddr_to_offset(b: &[u8], addr: u64) -> usize {
    let u64at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let u16at = |o: usize| u16::from_le_bytes(b[o..o + 2].try_into().unwrap());
    let u32at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let phoff = u64at(0x20) as usize;
    for i in 0..u16at(0x38) as usize {
        let ph = phoff + i * 56;
        if u32at(ph) != 1 {
            continue;
        }
        let (off, vaddr, filesz) = (u64at(ph + 8), u64at(ph + 16), u64at(ph + 32));
        if vaddr <= addr && addr < vaddr + filesz {
            return (off + addr - vaddr) as usize;
        }
    }
    panic!("unmapped {addr:#x}");
}

#[test]
fn lying_elf_headers_are_typed_errors() {
    // 65535 section headers, extended count in section 0 set to 4 billion.
    let mut bytes = app();
    let shoff = u64::from_le_bytes(bytes[0x28..0x30].try_into().unwrap()) as usize;
    bytes[0x3c..0x3e].copy_from_slice(&0u16.to_le_bytes());
    bytes[shoff + 32..shoff + 40].copy_from_slice(&(4_000_000_000u64).to_le_bytes());
    let err = read_elf(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            GoBuildInfoError::Elf(trawl_inventory::elf::ElfError::TooMany { .. })
        ),
        "{err}"
    );
    // Section headers past the end of the file.
    let mut bytes = app();
    bytes[0x28..0x30].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    assert!(matches!(read_elf(&bytes), Err(GoBuildInfoError::Elf(_))));
    // Not an ELF file.
    assert!(matches!(
        read_elf(b"MZ\x90\0 not a Linux executable"),
        Err(GoBuildInfoError::Elf(
            trawl_inventory::elf::ElfError::NotElf
        ))
    ));
    assert!(matches!(
        read_stream(&b"\x7fELF\x09\x09"[..]),
        Err(GoBuildInfoError::Elf(_))
    ));
}

#[test]
fn a_non_go_elf_is_none() {
    let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    assert_eq!(read_elf(&me).unwrap(), None);
    assert_eq!(read_stream(&me[..]).unwrap(), None);
}
