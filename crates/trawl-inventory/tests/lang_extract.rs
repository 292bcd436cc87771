//! The extractor glue on the real test binaries and archives, with each of
//! the three ways the layer reader can hand a file over (in memory,
//! seekable, stream), down to packages and warnings.

mod common_lang;

use std::fs::File;

use trawl_inventory::extract::{
    ElfDepsExtractor, FileContent, JavaArchiveExtractor, elf_packages, java_packages,
};
use trawl_inventory::{InventoryWarning, PackageKind};
use trawl_layers::{EntryInfo, Extractor};

fn entry(path: &str, size: usize, mode: u32) -> EntryInfo<'_> {
    EntryInfo {
        path,
        size: size as u64,
        mode,
    }
}

fn path(rel: &str) -> std::path::PathBuf {
    common_lang::artifacts().join(rel)
}

/// `(kind, name, version)` of packages, for comparing.
fn ids(pkgs: &[trawl_inventory::Package]) -> Vec<(PackageKind, String, String)> {
    pkgs.iter()
        .map(|p| (p.kind, p.name.clone(), p.version.clone()))
        .collect()
}

#[test]
fn elf_extractor_in_memory_seekable_and_streamed() {
    let x = ElfDepsExtractor;
    for (rel, kind) in [
        ("go/app-go1.19-s390x", PackageKind::Golang),
        ("rust/auditable-demo", PackageKind::Cargo),
    ] {
        let bytes = std::fs::read(path(rel)).unwrap();
        assert!(x.wants(&entry(rel, bytes.len(), 0o755)) && x.sniff(&bytes[..4]));
        assert!(!x.wants(&entry(rel, bytes.len(), 0o644)));
        let kept = x
            .extract_content(FileContent::Bytes(&bytes))
            .unwrap()
            .unwrap();
        assert!(kept.len() < 4096, "{rel}: {} bytes kept", kept.len());
        let (pkgs, warnings) = elf_packages(rel, Some("sha256:l"), Ok(&kept));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(pkgs.len() >= 4 && pkgs.iter().all(|p| p.kind == kind));

        let mut f = File::open(path(rel)).unwrap();
        let seek = x
            .extract_content(FileContent::Seekable(&mut f, bytes.len() as u64))
            .unwrap()
            .unwrap();
        assert_eq!(seek, kept, "{rel}");

        let mut f = File::open(path(rel)).unwrap();
        let streamed = x.extract_content(FileContent::Stream(&mut f, bytes.len() as u64));
        match kind {
            PackageKind::Golang => assert_eq!(streamed.unwrap().unwrap(), kept),
            _ => {
                // A Rust binary cannot be read from a stream: not inspected,
                // which the cataloger reports as an unreadable file.
                let err = streamed.unwrap_err();
                assert!(err.contains("not inspected"), "{err}");
                let (pkgs, warnings) = elf_packages(rel, None, Err(&err));
                assert!(pkgs.is_empty());
                assert!(warnings[0].makes_incomplete());
            }
        }
    }
    // Pointer-format Go from a stream: not inspected.
    let mut f = File::open(path("go/app-go1.15-amd64")).unwrap();
    let err = x
        .extract_content(FileContent::Stream(&mut f, 0))
        .unwrap_err();
    assert!(err.contains("pointer format"), "{err}");
}

#[test]
fn java_extractor_and_packages() {
    let x = JavaArchiveExtractor::default();
    let rel = "java/demo-ear-3.2.ear";
    let bytes = std::fs::read(path(rel)).unwrap();
    assert!(x.wants(&entry("srv/app/demo-ear-3.2.ear", bytes.len(), 0o644)));
    assert!(!x.wants(&entry("srv/app/demo.ear.txt", 100, 0o644)));
    let kept = x
        .extract_content("srv/app/demo-ear-3.2.ear", FileContent::Bytes(&bytes))
        .unwrap()
        .unwrap();
    let mut f = File::open(path(rel)).unwrap();
    let seek = x
        .extract_content(
            "srv/app/demo-ear-3.2.ear",
            FileContent::Seekable(&mut f, bytes.len() as u64),
        )
        .unwrap()
        .unwrap();
    assert_eq!(seek, kept);
    let (pkgs, warnings) = java_packages("srv/app/demo-ear-3.2.ear", Some("sha256:l"), Ok(&kept));
    assert!(warnings.is_empty());
    assert_eq!(
        ids(&pkgs)[..2],
        [
            (PackageKind::Maven, "demo-ear".into(), "3.2".into()),
            (
                PackageKind::Maven,
                "com.example:demo-web".into(),
                "1.4.0".into()
            ),
        ]
    );
    let nested = pkgs
        .iter()
        .find(|p| p.name == "commons-cli:commons-cli")
        .unwrap();
    assert_eq!(
        nested.location(),
        "srv/app/demo-ear-3.2.ear!/demo-web.war!/WEB-INF/lib/commons-cli-1.5.0.jar"
    );

    let mut f = File::open(path(rel)).unwrap();
    let err = x
        .extract_content(rel, FileContent::Stream(&mut f, bytes.len() as u64))
        .unwrap_err();
    let (_, warnings) = java_packages(rel, Some("sha256:l"), Err(&err));
    assert!(matches!(
        &warnings[..],
        [InventoryWarning::UnreadableFile { layer: Some(_), .. }]
    ));

    // A file named .jar that is no zip: an unreadable-file warning.
    let err = x
        .extract_content(
            "x.jar",
            FileContent::Bytes(b"this is not a zip archive at all"),
        )
        .unwrap_err();
    assert!(err.contains("not a zip"), "{err}");
}
