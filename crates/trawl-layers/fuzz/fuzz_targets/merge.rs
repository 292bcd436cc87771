//! Arbitrary bytes as up to three layers (split at `\0LAYER\0` markers), each
//! read as a layer blob (plain tar, or gzip/zstd when the bytes say so) and
//! merged under one budget, with exact paths, prefixes, globs and an
//! extractor in the selection; then every query of the merged view. Nothing
//! may panic, and the limits bound what is kept.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use trawl_layers::{
    Content, EntryInfo, ExtractOptions, Extractor, LayerStream, Limits, Selection, extract_partial,
};

const MARKER: &[u8] = b"\0LAYER\0";

/// Executables with the ELF magic: keeps their length and first bytes,
/// seeking when it can.
#[derive(Debug)]
struct Head;

impl Extractor for Head {
    fn id(&self) -> &'static str {
        "fuzz-head/1"
    }
    fn wants(&self, entry: &EntryInfo<'_>) -> bool {
        entry.mode & 0o111 != 0 || entry.path.ends_with(".jar")
    }
    fn sniff_len(&self) -> usize {
        4
    }
    fn sniff(&self, head: &[u8]) -> bool {
        head.starts_with(b"\x7fELF") || head.starts_with(b"PK")
    }
    fn extract(
        &self,
        _: &EntryInfo<'_>,
        content: &mut Content<'_>,
    ) -> Result<Option<Vec<u8>>, String> {
        if let Some(file) = content.seekable() {
            file.seek(std::io::SeekFrom::End(-1))
                .map_err(|e| e.to_string())?;
            file.seek(std::io::SeekFrom::Start(0))
                .map_err(|e| e.to_string())?;
        }
        let mut head = Vec::new();
        content
            .stream()
            .take(64)
            .read_to_end(&mut head)
            .map_err(|e| e.to_string())?;
        if head.len() < 8 {
            return Err("short".into());
        }
        Ok(Some(head))
    }
}

fuzz_target!(|data: &[u8]| {
    let selection = Selection::new()
        .with_path("etc/os-release")
        .with_path("usr/lib/os-release")
        .with_path("var/lib/dpkg/status")
        .with_prefix("var/lib/dpkg/status.d")
        .with_prefix("var/lib/rpm")
        .with_glob("**/node_modules/*/package.json")
        .with_glob("**/{site,dist}-packages/*.dist-info/METADATA")
        .with_extractor(Head);
    let limits = Limits {
        max_file_size: 1 << 20,
        max_layer_size: 16 << 20,
        max_kept_bytes: 2 << 20,
        max_extract_memory: 4 << 10,
        max_temp_bytes: 64 << 10,
        max_entries: 10_000,
        max_warnings: 50,
        max_header_ext_bytes: 64 << 10,
        ..Limits::default()
    };
    let mut layers = Vec::new();
    let mut rest = data;
    for i in 0..3 {
        let (blob, next) = match rest.windows(MARKER.len()).position(|w| w == MARKER) {
            Some(at) if i < 2 => (&rest[..at], &rest[at + MARKER.len()..]),
            _ => (rest, &[][..]),
        };
        layers.push(LayerStream::new(format!("layer{i}"), blob));
        rest = next;
        if rest.is_empty() {
            break;
        }
    }
    let options = ExtractOptions {
        threads: 1,
        ..ExtractOptions::default()
    };
    let Ok((fs, _skipped)) = extract_partial(layers, &selection, &limits, options) else {
        return;
    };
    assert!(fs.kept_bytes() <= limits.max_kept_bytes);
    assert!(fs.warnings().len() <= limits.max_warnings + 1);
    let deep = "a/".repeat(2100);
    for path in [
        "etc/os-release",
        "var/lib/dpkg/status",
        "var/lib/rpm/Packages",
        "../../etc/passwd",
        "/",
        deep.as_str(),
    ] {
        let _ = fs.resolve(path);
        if let Some(f) = fs.file(path) {
            assert!(f.data.len() as u64 <= limits.max_file_size);
        }
        let _ = fs.history(path);
        let _ = fs.exists(path);
        let _ = fs.introduced_by(path);
    }
    for f in fs.files_under("var/lib/dpkg/status.d") {
        assert!(f.path.starts_with("var/lib/dpkg/status.d/"));
    }
    for f in fs.files() {
        assert!(selection.selects(f.path), "{}", f.path);
    }
    for x in fs.extracted("fuzz-head/1") {
        if let Ok(bytes) = x.result {
            assert!(bytes.len() <= 64);
        }
    }
    for d in fs.dropped() {
        assert!(!d.reason.is_empty());
    }
});
