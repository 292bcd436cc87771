//! Differential overlay test: an OCI image whose layers exercise every change
//! kind is merged by trawl-layers and unpacked by `umoci unpack`; the regular
//! files (contents) and symlinks each sees must be identical, both for a
//! selection of directory trees and for one of glob patterns (where most
//! entries are not recorded, only fingerprinted).

#[path = "support/oci_layout.rs"]
mod oci_layout;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use oci_layout::{E, tar_of, write_layout};
use trawl_layers::{LayerStream, Limits, MergedFs, Selection, extract};

/// Regular files (path → contents) and symlinks (path → target) below `root`.
fn walk_rootfs(root: &Path) -> (BTreeMap<String, Vec<u8>>, BTreeMap<String, String>) {
    let (mut files, mut links) = (BTreeMap::new(), BTreeMap::new());
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let rel = e
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let ft = e.file_type().unwrap();
            if ft.is_symlink() {
                links.insert(
                    rel,
                    std::fs::read_link(e.path())
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            } else if ft.is_dir() {
                stack.push(e.path());
            } else {
                files.insert(rel, std::fs::read(e.path()).unwrap());
            }
        }
    }
    (files, links)
}

#[test]
fn merged_view_equals_umoci_unpack() {
    if Command::new("umoci").arg("--version").output().is_err() {
        eprintln!("umoci is not installed; skipping (CI installs it)");
        return;
    }
    let layers = vec![
        tar_of(&[
            E::Dir("etc"),
            E::File("etc/a", b"a0"),
            E::File("etc/b", b"b0"),
            E::Dir("etc/dir"),
            E::File("etc/dir/x", b"x0"),
            E::Dir("etc/dir/sub"),
            E::File("etc/dir/sub/y", b"y0"),
            E::Dir("etc/opq"),
            E::File("etc/opq/keep", b"k0"),
            E::Dir("etc/opq/inner"),
            E::File("etc/opq/inner/deep", b"d0"),
            E::Dir("etc/tofile"),
            E::File("etc/tofile/inner", b"i0"),
            E::File("etc/todir", b"f0"),
            E::Dir("usr"),
            E::Dir("usr/lib"),
            E::File("usr/lib/os-release", b"ID=test\n"),
            E::Link("etc/os-release", "../usr/lib/os-release"),
            E::File("etc/hl-target", b"hl0"),
            E::Hard("etc/hl", "etc/hl-target"),
            E::Link("etc/dirlink", "dir"),
            E::Dir("var"),
            E::Dir("var/lib"),
            E::File("var/lib/state", b"s0"),
            E::Dir("app"),
            E::Dir("app/node_modules"),
            E::Dir("app/node_modules/a"),
            E::File("app/node_modules/a/package.json", b"a0"),
            E::File("app/node_modules/a/index.js", b"ia0"),
            E::Dir("app/keep"),
            E::Dir("app/keep/b"),
            E::File("app/keep/b/package.json", b"b0"),
            E::Dir("usr/lib/python3"),
            E::File("usr/lib/python3/METADATA", b"m0"),
            E::Link("lib", "usr/lib"),
            E::Dir("srv"),
            E::File("srv/METADATA", b"s0"),
            E::Dir("opt"),
            E::Link("opt/tool", "../usr/lib/python3"),
        ]),
        tar_of(&[
            E::File("etc/.wh.a", b""),
            E::File("etc/dir/.wh.sub", b""),
            E::Dir("etc/opq"),
            E::File("etc/opq/.wh..wh..opq", b""),
            E::File("etc/opq/new", b"n1"),
            E::File("etc/tofile", b"now a file"),
            E::Dir("etc/todir"),
            E::File("etc/todir/z", b"z1"),
            E::File("etc/b", b"b1"),
            E::Hard("etc/hl2", "etc/hl-target"),
            E::File("etc/.wh.nonexistent", b""),
            E::File("var/.wh.lib", b""),
            E::File("app/.wh.node_modules", b""),
            E::Dir("app/keep"),
            E::File("app/keep/.wh..wh..opq", b""),
            E::Dir("app/keep/c"),
            E::File("app/keep/c/package.json", b"c1"),
            E::File("srv", b"now a file"),
            E::Dir("opt/tool"),
            E::File("opt/tool/METADATA", b"o1"),
        ]),
        tar_of(&[
            E::File("etc/a", b"a2"),
            E::File("etc/.wh.b", b""),
            E::File("usr/lib/os-release", b"ID=test2\n"),
            E::Dir("var/lib"),
            E::File("var/lib/fresh", b"v2"),
            E::Dir("app/node_modules"),
            E::Dir("app/node_modules/d"),
            E::File("app/node_modules/d/package.json", b"d2"),
        ]),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let written = write_layout(&layout, &layers);

    let bundle = tmp.path().join("bundle");
    let out = Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:test", layout.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "umoci unpack failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (want_files, want_links) = walk_rootfs(&bundle.join("rootfs"));

    let streams = || {
        written
            .iter()
            .map(|(digest, diff_id, gz)| {
                LayerStream::new(digest.clone(), Cursor::new(gz.clone()))
                    .with_diff_id(diff_id.clone())
            })
            .collect()
    };
    let show = |m: &BTreeMap<String, Vec<u8>>| -> Vec<String> {
        m.iter()
            .map(|(k, v)| format!("{k}={}", String::from_utf8_lossy(v)))
            .collect()
    };
    let trees = ["app", "etc", "lib", "opt", "srv", "usr", "var"];
    let mut sel = Selection::new();
    for t in trees {
        sel.add_prefix(t);
    }
    let fs: MergedFs = extract(streams(), &sel, &Limits::default()).unwrap();
    let got_files: BTreeMap<String, Vec<u8>> = trees
        .iter()
        .flat_map(|d| fs.files_under(d))
        .map(|f| (f.path.to_string(), f.data.to_vec()))
        .collect();
    // `srv` is itself a file in the end: a prefix selects what is below it.
    let under_trees: BTreeMap<String, Vec<u8>> = want_files
        .iter()
        .filter(|(p, _)| trees.iter().any(|t| p.starts_with(&format!("{t}/"))))
        .map(|(p, d)| (p.clone(), d.clone()))
        .collect();
    assert_eq!(show(&got_files), show(&under_trees));
    assert_links_resolve(&fs, &want_links);
    assert_eq!(fs.file("etc/os-release").unwrap().data, b"ID=test2\n");
    assert_eq!(fs.file("etc/dirlink/x").unwrap().data, b"x0");
    assert_eq!(fs.file("lib/python3/METADATA").unwrap().data, b"m0");
    assert_eq!(want_links.len(), 3, "{want_links:?}");

    // Globs: only matching files are kept, everything else is fingerprinted,
    // and the result must still be what umoci unpacked.
    let names = ["METADATA", "package.json", "inner", "x", "os-release"];
    let mut sel = Selection::new();
    for n in names {
        sel = sel.with_glob(&format!("**/{n}"));
    }
    let fs: MergedFs = extract(streams(), &sel, &Limits::default()).unwrap();
    let got: BTreeMap<String, Vec<u8>> = fs
        .files()
        .map(|f| (f.path.to_string(), f.data.to_vec()))
        .collect();
    let want: BTreeMap<String, Vec<u8>> = want_files
        .iter()
        .filter(|(p, _)| names.contains(&p.rsplit('/').next().unwrap()))
        .map(|(p, d)| (p.clone(), d.clone()))
        .collect();
    assert_eq!(show(&got), show(&want));
    assert_links_resolve(&fs, &want_links);
    // Through the `lib -> usr/lib` link, as dpkg's file lists name it.
    assert_eq!(
        fs.file("/lib/python3/METADATA").unwrap().path,
        "usr/lib/python3/METADATA"
    );
    assert_eq!(fs.dropped().count(), 0);
}

/// Each symlink umoci unpacked resolves in our view to what the link names.
fn assert_links_resolve(fs: &MergedFs, want_links: &BTreeMap<String, String>) {
    for (link, target) in want_links {
        let resolved = fs
            .resolve(link)
            .unwrap_or_else(|| panic!("{link} does not resolve"));
        let expected = trawl_layers::normalize(&format!(
            "{}/{target}",
            Path::new(link).parent().unwrap().display()
        ))
        .unwrap();
        assert_eq!(resolved, expected, "{link} -> {target}");
    }
}
