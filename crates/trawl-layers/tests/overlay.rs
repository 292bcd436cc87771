//! Overlay semantics and hostile input, on layers built in memory.

#[path = "support/oci_layout.rs"]
mod oci_layout;

use std::io::{self, Cursor, Read, Write};

use oci_layout::{E, tar_of};

use trawl_layers::{
    Compression, LayerError, LayerStream, LayerWarning, Limits, MergedFs, Selection, extract,
    read_layer,
};

/// Overwrites the start of the name field of the header at `at`, fixing the checksum.
fn patch_name(raw: &mut [u8], at: usize, name: &[u8]) {
    raw[at..at + name.len()].copy_from_slice(name);
    let mut h = tar::Header::new_old();
    h.as_mut_bytes().copy_from_slice(&raw[at..at + 512]);
    h.set_cksum();
    raw[at..at + 512].copy_from_slice(h.as_bytes());
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn merge(layers: Vec<Vec<u8>>, sel: &Selection) -> MergedFs {
    let streams = layers
        .into_iter()
        .enumerate()
        .map(|(i, l)| LayerStream::new(format!("sha256:l{i}"), Cursor::new(l)))
        .collect();
    extract(streams, sel, &Limits::default()).unwrap()
}

fn all() -> Selection {
    Selection::new()
        .with_prefix("etc")
        .with_prefix("var")
        .with_prefix("usr")
}

fn text<'a>(fs: &'a MergedFs, p: &str) -> Option<&'a str> {
    fs.file(p).map(|f| std::str::from_utf8(f.data).unwrap())
}

#[test]
fn whiteout_hides_lower_file_and_history_records_it() {
    let fs = merge(
        vec![
            tar_of(&[E::File("etc/a", b"1"), E::File("etc/b", b"2")]),
            tar_of(&[E::File("etc/.wh.a", b"")]),
            tar_of(&[E::File("etc/.wh.does-not-exist", b"")]),
        ],
        &all(),
    );
    assert_eq!(text(&fs, "etc/a"), None);
    assert_eq!(text(&fs, "etc/b"), Some("2"));
    let h = fs.history("etc/a");
    assert_eq!(h.len(), 2);
    assert_eq!(
        (h[0].layer, h[0].data),
        (Some("sha256:l0"), Some(&b"1"[..]))
    );
    assert_eq!((h[1].layer, h[1].data), (Some("sha256:l1"), None));
    assert!(!fs.exists("etc/does-not-exist"));
}

#[test]
fn opaque_directory_hides_lower_entries_but_not_its_own_layer() {
    let fs = merge(
        vec![
            tar_of(&[
                E::File("etc/apt/a", b"old"),
                E::File("etc/apt/sub/b", b"old"),
                E::File("etc/keep", b"k"),
            ]),
            tar_of(&[
                E::Dir("etc/apt"),
                E::File("etc/apt/.wh..wh..opq", b""),
                E::File("etc/apt/c", b"new"),
            ]),
        ],
        &all(),
    );
    assert_eq!(text(&fs, "etc/apt/a"), None);
    assert_eq!(text(&fs, "etc/apt/sub/b"), None);
    assert_eq!(text(&fs, "etc/apt/c"), Some("new"));
    assert_eq!(text(&fs, "etc/keep"), Some("k"));
    let under: Vec<&str> = fs.files_under("etc/apt").iter().map(|f| f.path).collect();
    assert_eq!(under, ["etc/apt/c"]);
}

#[test]
fn file_replaces_directory_and_directory_replaces_file() {
    let fs = merge(
        vec![
            tar_of(&[E::File("etc/x/inner", b"1"), E::File("etc/y", b"file")]),
            tar_of(&[
                E::File("etc/x", b"now a file"),
                E::Dir("etc/y"),
                E::File("etc/y/z", b"z"),
            ]),
        ],
        &all(),
    );
    assert_eq!(text(&fs, "etc/x"), Some("now a file"));
    assert_eq!(text(&fs, "etc/x/inner"), None);
    assert_eq!(text(&fs, "etc/y"), None);
    assert_eq!(text(&fs, "etc/y/z"), Some("z"));
}

#[test]
fn symlinks_resolve_inside_the_root() {
    let sel = Selection::new()
        .with_path("etc/os-release")
        .with_path("usr/lib/os-release")
        .with_path("var/lib/rpm/Packages")
        .with_prefix("usr/lib/sysimage/rpm")
        .with_path("etc/escape")
        .with_path("etc/passwd")
        .with_path("etc/loop1")
        .with_path("etc/loop2");
    let fs = merge(
        vec![tar_of(&[
            E::File("usr/lib/os-release", b"ID=debian\n"),
            E::Link("etc/os-release", "../usr/lib/os-release"),
            E::File("usr/lib/sysimage/rpm/Packages", b"rpmdb"),
            E::Link("var/lib/rpm", "../../usr/lib/sysimage/rpm"),
            E::File("etc/passwd", b"root:x:0:0"),
            E::Link("etc/escape", "../../../../../../etc/passwd"),
            E::Link("etc/loop1", "loop2"),
            E::Link("etc/loop2", "/etc/loop1"),
        ])],
        &sel,
    );
    assert_eq!(text(&fs, "/etc/os-release"), Some("ID=debian\n"));
    assert_eq!(
        fs.file("etc/os-release").unwrap().path,
        "usr/lib/os-release"
    );
    assert_eq!(text(&fs, "var/lib/rpm/Packages"), Some("rpmdb"));
    // `..` at the root stays at the root: the link reaches the image's file, not the host's.
    assert_eq!(text(&fs, "etc/escape"), Some("root:x:0:0"));
    assert_eq!(fs.resolve("etc/loop1"), None);
    assert_eq!(text(&fs, "etc/loop1"), None);
}

#[test]
fn hard_links_to_same_and_lower_layers_and_dangling() {
    let sel = Selection::new().with_prefix("etc");
    let fs = merge(
        vec![
            tar_of(&[E::File("etc/base", b"B")]),
            tar_of(&[
                E::File("etc/same", b"S"),
                E::Hard("etc/same-link", "etc/same"),
                E::Hard("etc/low-link", "etc/base"),
                E::Hard("etc/dangling", "etc/nowhere"),
            ]),
        ],
        &sel,
    );
    assert_eq!(text(&fs, "etc/same-link"), Some("S"));
    assert_eq!(text(&fs, "etc/low-link"), Some("B"));
    assert_eq!(text(&fs, "etc/dangling"), None);
    assert!(fs.warnings().iter().any(
        |w| matches!(w, LayerWarning::DanglingHardLink { path, .. } if path == "etc/dangling")
    ));
    // A selected file whose content is nowhere: the scan is incomplete.
    let dropped: Vec<_> = fs.dropped().map(|d| (d.path, d.reason)).collect();
    assert_eq!(
        dropped,
        [(
            "etc/dangling",
            "hard link to etc/nowhere, whose content was not kept"
        )]
    );
}

#[test]
fn hard_links_to_unselected_files_are_dropped_when_selected() {
    // A link selected by a glob, to a file that is not: its content passed
    // unread. A link not selected, to a kept file, holds nothing.
    let sel = Selection::new().with_glob("**/package.json");
    let fs = merge(
        vec![
            tar_of(&[
                E::File("store/ab12", b"{}"),
                E::File("app/package.json", b"{\"a\":1}"),
            ]),
            tar_of(&[
                E::Hard("app/node_modules/x/package.json", "store/ab12"),
                E::Hard("store/cd34", "app/package.json"),
            ]),
        ],
        &sel,
    );
    let files: Vec<&str> = fs.files().map(|f| f.path).collect();
    assert_eq!(files, ["app/package.json"]);
    let dropped: Vec<_> = fs.dropped().map(|d| d.path).collect();
    assert_eq!(dropped, ["app/node_modules/x/package.json"]);
}

#[test]
fn duplicate_entries_last_one_wins() {
    let fs = merge(
        vec![tar_of(&[
            E::File("etc/a", b"first"),
            E::File("etc/a", b"second"),
        ])],
        &all(),
    );
    assert_eq!(text(&fs, "etc/a"), Some("second"));
}

#[test]
fn traversal_and_absolute_names_never_reach_selected_paths() {
    // The tar crate refuses to *write* such names, so patch the headers.
    let mut raw = tar_of(&[
        E::File("xx/xx/etc/passwd", b"evil"),
        E::File("xx/etc/shadow", b"abs"),
    ]);
    patch_name(&mut raw, 0, b"../../etc/passwd");
    patch_name(&mut raw, 1024, b"/etc/shadow\0\0");
    let sel = Selection::new()
        .with_path("etc/passwd")
        .with_path("etc/shadow");
    let changes = read_layer("sha256:evil", &raw[..], &sel, &Limits::default()).unwrap();
    let fs = MergedFs::from_layers(vec![("sha256:evil".into(), changes)]);
    assert_eq!(
        text(&fs, "etc/passwd"),
        None,
        "a ../ name must not land in the image root"
    );
    // An absolute name is read as relative to the image root, as tar extraction does.
    assert_eq!(text(&fs, "etc/shadow"), Some("abs"));
    assert!(fs.warnings().iter().any(
        |w| matches!(w, LayerWarning::UnsafePath { entry, .. } if entry == "../../etc/passwd")
    ));
}

#[test]
fn non_utf8_names_are_skipped() {
    let mut raw = tar_of(&[E::File("etc/abcd", b"x"), E::File("etc/ok", b"ok")]);
    patch_name(&mut raw, 0, b"etc/\xff\xfe\xfd\xfc");
    let fs = merge(vec![raw], &all());
    assert_eq!(text(&fs, "etc/ok"), Some("ok"));
    assert_eq!(fs.files_under("etc").len(), 1);
}

#[test]
fn gzip_zstd_and_plain_give_the_same_view() {
    let plain = tar_of(&[
        E::File("etc/a", b"alpha"),
        E::File("usr/lib/os-release", b"ID=x"),
    ]);
    let gz = gzip(&plain);
    let zst = zstd::encode_all(&plain[..], 3).unwrap();
    let sel = all();
    for (blob, want) in [
        (plain.clone(), Compression::None),
        (gz, Compression::Gzip),
        (zst, Compression::Zstd),
    ] {
        let ch = read_layer("sha256:x", &blob[..], &sel, &Limits::default()).unwrap();
        assert_eq!(ch.compression(), Some(want));
        assert_eq!(ch.uncompressed_size(), plain.len() as u64);
        let fs = MergedFs::from_layers(vec![("sha256:x".into(), ch)]);
        assert_eq!(text(&fs, "etc/a"), Some("alpha"));
        assert_eq!(text(&fs, "usr/lib/os-release"), Some("ID=x"));
    }
}

#[test]
fn multi_member_gzip_and_multi_frame_zstd_are_read_whole() {
    let first = tar_of(&[E::File("etc/a", b"alpha")]);
    // Split the tar into two compressed members / frames.
    let (x, y) = first.split_at(700);
    let gz = [gzip(x), gzip(y)].concat();
    let zst = [
        zstd::encode_all(x, 1).unwrap(),
        zstd::encode_all(y, 1).unwrap(),
    ]
    .concat();
    for blob in [gz, zst] {
        let ch = read_layer("sha256:m", &blob[..], &all(), &Limits::default()).unwrap();
        let fs = MergedFs::from_layers(vec![("sha256:m".into(), ch)]);
        assert_eq!(text(&fs, "etc/a"), Some("alpha"));
    }
}

#[test]
fn truncated_gzip_and_zstd_name_the_layer() {
    let plain = tar_of(&[E::File("etc/a", &[7u8; 100_000]), E::File("etc/b", b"b")]);
    let gz = gzip(&plain);
    let zst = zstd::encode_all(&plain[..], 3).unwrap();
    for blob in [gz, zst] {
        let cut = &blob[..blob.len() / 2];
        let err = read_layer("sha256:trunc", cut, &all(), &Limits::default()).unwrap_err();
        assert_eq!(err.layer(), Some("sha256:trunc"));
        assert!(
            matches!(err, LayerError::Decompress { .. } | LayerError::Tar { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("sha256:trunc"), "{err}");
    }
    let err = read_layer("sha256:plain", &plain[..700], &all(), &Limits::default()).unwrap_err();
    assert!(matches!(err, LayerError::Tar { .. }), "{err:?}");
}

#[test]
fn corrupt_gzip_is_a_decompression_error() {
    let mut gz = gzip(&tar_of(&[E::File("etc/a", &[1u8; 50_000])]));
    let mid = gz.len() / 2;
    for b in &mut gz[mid..mid + 16] {
        *b ^= 0x5a;
    }
    let err = read_layer("sha256:bad", &gz[..], &all(), &Limits::default()).unwrap_err();
    assert!(
        matches!(
            err,
            LayerError::Decompress {
                compression: "gzip",
                ..
            } | LayerError::Tar { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn a_failing_source_is_a_read_error() {
    struct Failing(Cursor<Vec<u8>>);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.read(buf)?;
            if n == 0 {
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "digest mismatch for blob sha256:feed",
                ))
            } else {
                Ok(n)
            }
        }
    }
    let blob = gzip(&tar_of(&[E::File("etc/a", b"x")]));
    let err = read_layer(
        "sha256:feed",
        Failing(Cursor::new(blob)),
        &all(),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, LayerError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("digest mismatch"), "{err}");
}

#[test]
fn decompression_bomb_stops_at_the_layer_limit() {
    // 64 MiB of zeros compresses to ~64 KiB.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut h = tar::Header::new_gnu();
    h.set_path("etc/zeros").unwrap();
    h.set_size(64 << 20);
    h.set_cksum();
    enc.write_all(h.as_bytes()).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        enc.write_all(&zeros).unwrap();
    }
    let blob = enc.finish().unwrap();
    assert!(blob.len() < 1 << 20);
    let limits = Limits {
        max_layer_size: 8 << 20,
        max_file_size: 1 << 20,
        ..Limits::default()
    };
    let err = read_layer("sha256:bomb", &blob[..], &all(), &limits).unwrap_err();
    assert!(
        matches!(err, LayerError::TooLarge { limit, .. } if limit == 8 << 20),
        "{err:?}"
    );
}

#[test]
fn oversized_selected_file_is_reported_not_kept() {
    let big = vec![b'x'; 4096];
    let blob = tar_of(&[E::File("etc/big", &big), E::File("etc/small", b"s")]);
    let limits = Limits {
        max_file_size: 1024,
        ..Limits::default()
    };
    let ch = read_layer("sha256:big", &blob[..], &all(), &limits).unwrap();
    assert!(ch.warnings().iter().any(
        |w| matches!(w, LayerWarning::FileTooLarge { path, size: 4096, .. } if path == "etc/big")
    ));
    let fs = MergedFs::from_layers(vec![("sha256:big".into(), ch)]);
    assert_eq!(text(&fs, "etc/big"), None);
    assert_eq!(text(&fs, "etc/small"), Some("s"));
}

#[test]
fn huge_size_field_does_not_allocate_or_panic() {
    let mut h = tar::Header::new_gnu();
    h.set_path("etc/huge").unwrap();
    h.set_size(u64::MAX / 2);
    h.set_cksum();
    let mut blob = h.as_bytes().to_vec();
    blob.extend_from_slice(&[b'a'; 1000]);
    let limits = Limits {
        max_file_size: u64::MAX / 4,
        ..Limits::default()
    };
    let err = read_layer("sha256:huge", &blob[..], &all(), &limits);
    assert!(err.is_err());
}

#[test]
fn unselected_files_are_not_kept() {
    let blob = tar_of(&[
        E::File("usr/bin/ls", &[0u8; 10_000]),
        E::File("etc/os-release", b"ID=debian"),
    ]);
    let sel = Selection::new().with_path("etc/os-release");
    let ch = read_layer("sha256:s", &blob[..], &sel, &Limits::default()).unwrap();
    let fs = MergedFs::from_layers(vec![("sha256:s".into(), ch)]);
    assert_eq!(fs.len(), 1);
    assert_eq!(fs.kept_bytes(), 9);
}

#[test]
fn parallel_and_sequential_extraction_agree() {
    let layers: Vec<Vec<u8>> = (0..6)
        .map(|i| {
            let name = format!("etc/f{}", i % 3);
            let data = format!("layer {i}");
            gzip(&tar_of(&[
                E::File(&name, data.as_bytes()),
                E::File(&format!("etc/.wh.f{}", (i + 1) % 3), b""),
            ]))
        })
        .collect();
    let run = |threads| {
        let streams = layers
            .iter()
            .enumerate()
            .map(|(i, l)| LayerStream::new(format!("sha256:{i}"), Cursor::new(l.clone())))
            .collect();
        let fs = trawl_layers::extract_with_threads(streams, &all(), &Limits::default(), threads)
            .unwrap();
        let files: Vec<(String, String)> = fs
            .files_under("etc")
            .iter()
            .map(|f| {
                (
                    f.path.to_string(),
                    format!("{}@{}", String::from_utf8_lossy(f.data), f.layer.unwrap()),
                )
            })
            .collect();
        files
    };
    let one = run(1);
    assert_eq!(one, run(4));
    assert_eq!(
        one,
        [
            ("etc/f1".to_string(), "layer 4@sha256:4".to_string()),
            ("etc/f2".to_string(), "layer 5@sha256:5".to_string())
        ]
    );
}
