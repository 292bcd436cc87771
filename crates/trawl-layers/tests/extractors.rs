//! Extractors: files handed over in memory, spooled to the scan's temporary
//! directory or streamed, as the limits and the shared budget allow; their
//! results (and errors) in the merged view, through whiteouts, the cache and
//! `dir:` sources; and selected files that were not kept.

#[path = "support/oci_layout.rs"]
mod oci_layout;

use std::io::{Cursor, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use oci_layout::{E, tar_of};
use sha2::{Digest, Sha256};
use trawl_layers::{
    Content, EntryInfo, ExtractOptions, Extractor, LayerCache, LayerError, LayerStream, Limits,
    MergedFs, Selection, extract_with, read_layer,
};

/// An "ELF" file of `len` bytes: the magic, then bytes derived from `seed`.
fn elf(len: usize, seed: u8) -> Vec<u8> {
    let mut data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect();
    data[..4].copy_from_slice(b"\x7fELF");
    data
}

/// What [`Probe`] reports for `data` read as `kind`.
fn expected(kind: &str, data: &[u8]) -> String {
    format!(
        "{kind} {} {}",
        data.len(),
        hex::encode(&Sha256::digest(data)[..8])
    )
}

/// A test extractor: executables starting with the ELF magic; reports how
/// it got the content, its length and a digest of every byte. With
/// `needs_seek`, it refuses stream-only content, as an extractor that reads
/// an ELF's section headers must. It can also note the scan's temporary
/// directory while it holds a spooled file, and meet another extraction
/// (to make two layers hold the budget at once).
#[derive(Debug, Default)]
struct Probe {
    id: &'static str,
    needs_seek: bool,
    temp_base: Option<PathBuf>,
    seen_in_temp: Mutex<Vec<usize>>,
    meet: Option<Arc<Rendezvous>>,
}

impl Extractor for Probe {
    fn id(&self) -> &'static str {
        self.id
    }
    fn wants(&self, entry: &EntryInfo<'_>) -> bool {
        entry.mode & 0o111 != 0
    }
    fn sniff_len(&self) -> usize {
        4
    }
    fn sniff(&self, head: &[u8]) -> bool {
        head == b"\x7fELF"
    }
    fn extract(
        &self,
        _: &EntryInfo<'_>,
        content: &mut Content<'_>,
    ) -> Result<Option<Vec<u8>>, String> {
        if let Some(meet) = &self.meet {
            meet.arrive();
        }
        let len = content.len();
        let kind = if content.bytes().is_some() {
            "memory"
        } else if content.seekable().is_some() {
            "seekable"
        } else {
            "stream"
        };
        if kind == "seekable" {
            if let Some(base) = &self.temp_base {
                let scan_dirs = std::fs::read_dir(base).map(|d| d.count()).unwrap_or(0);
                self.seen_in_temp.lock().unwrap().push(scan_dirs);
            }
            // Seeking works: the last byte, then back to the start.
            let file = content.seekable().unwrap();
            file.seek(SeekFrom::End(-1)).map_err(|e| e.to_string())?;
            file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        }
        if kind == "stream" && self.needs_seek {
            return Err("over the temporary-space budget; not inspected".to_string());
        }
        let mut all = Vec::new();
        content
            .stream()
            .read_to_end(&mut all)
            .map_err(|e| format!("reading: {e}"))?;
        assert_eq!(all.len() as u64, len);
        Ok(Some(expected(kind, &all).into_bytes()))
    }
}

/// Two parties meet: the first to arrive waits (at most 10 s) for the other.
#[derive(Debug, Default)]
struct Rendezvous {
    arrived: Mutex<usize>,
    all_here: Condvar,
}

impl Rendezvous {
    fn arrive(&self) {
        let mut n = self.arrived.lock().unwrap();
        *n += 1;
        if *n >= 2 {
            self.all_here.notify_all();
            return;
        }
        let _ = self
            .all_here
            .wait_timeout_while(n, Duration::from_secs(10), |n| *n < 2)
            .unwrap();
    }
}

fn results(fs: &MergedFs, id: &str) -> Vec<(String, Option<String>, Result<String, String>)> {
    fs.extracted(id)
        .map(|x| {
            (
                x.path.to_string(),
                x.layer.map(str::to_string),
                x.result
                    .map(|b| String::from_utf8(b.to_vec()).unwrap())
                    .map_err(str::to_string),
            )
        })
        .collect()
}

fn streams(layers: &[Vec<u8>]) -> Vec<LayerStream<'static>> {
    layers
        .iter()
        .enumerate()
        .map(|(i, l)| LayerStream::new(format!("sha256:l{i}"), Cursor::new(l.clone())))
        .collect()
}

fn options(threads: usize, temp: Option<&Path>) -> ExtractOptions<'_> {
    ExtractOptions {
        threads,
        temp_dir: temp,
        ..ExtractOptions::default()
    }
}

#[test]
fn content_is_in_memory_spooled_or_streamed_as_the_limits_allow() {
    let small = elf(1000, 1);
    let medium = elf(3 << 20, 2);
    let large = elf(10 << 20, 3);
    let script = b"#!/bin/sh\necho not an ELF\n".to_vec();
    let layer = tar_of(&[
        E::Exec("usr/bin/small", &small),
        E::Exec("usr/bin/medium", &medium),
        E::Exec("opt/large", &large),
        E::Exec("usr/bin/script", &script),
        E::File("usr/lib/not-executable.so", &small),
        E::File("etc/os-release", b"ID=test\n"),
    ]);
    let temp = tempfile::tempdir().unwrap();
    let probe = Arc::new(Probe {
        id: "probe/1",
        temp_base: Some(temp.path().to_path_buf()),
        ..Probe::default()
    });
    let mut sel = Selection::new().with_path("etc/os-release");
    sel.add_extractor(probe.clone());
    let limits = Limits {
        max_extract_memory: 1 << 20,
        max_temp_bytes: 8 << 20,
        ..Limits::default()
    };
    let fs = extract_with(
        streams(&[layer]),
        &sel,
        &limits,
        options(1, Some(temp.path())),
    )
    .unwrap();
    let l0 = Some("sha256:l0".to_string());
    assert_eq!(
        results(&fs, "probe/1"),
        [
            (
                "opt/large".into(),
                l0.clone(),
                Ok(expected("stream", &large))
            ),
            (
                "usr/bin/medium".into(),
                l0.clone(),
                Ok(expected("seekable", &medium))
            ),
            (
                "usr/bin/small".into(),
                l0.clone(),
                Ok(expected("memory", &small))
            ),
        ]
    );
    // The spooled copy lived in the scan's own directory, removed at the end.
    assert_eq!(*probe.seen_in_temp.lock().unwrap(), [1]);
    assert_eq!(std::fs::read_dir(temp.path()).unwrap().count(), 0);
    // Only the selected file is kept whole; unknown extractor ids give nothing.
    let kept: Vec<&str> = fs.files().map(|f| f.path).collect();
    assert_eq!(kept, ["etc/os-release"]);
    assert_eq!(fs.extracted("other/1").count(), 0);
    assert_eq!(fs.dropped().count(), 0);
}

#[test]
fn several_extractors_read_one_stream_together() {
    let large = elf(5 << 20, 9);
    let layer = tar_of(&[
        E::Exec("opt/large", &large),
        E::Exec("opt/small", &elf(10, 1)),
    ]);
    let sel = Selection::new()
        .with_extractor(Probe {
            id: "a/1",
            ..Probe::default()
        })
        .with_extractor(Probe {
            id: "b/1",
            ..Probe::default()
        })
        .with_extractor(Probe {
            id: "c/1",
            needs_seek: true,
            ..Probe::default()
        });
    let limits = Limits {
        max_extract_memory: 1 << 20,
        max_temp_bytes: 1 << 20,
        ..Limits::default()
    };
    let fs = extract_with(streams(&[layer]), &sel, &limits, options(1, None)).unwrap();
    for id in ["a/1", "b/1"] {
        let got = results(&fs, id);
        assert_eq!(got[0].2, Ok(expected("stream", &large)), "{id}");
        assert_eq!(got[1].2, Ok(expected("memory", &elf(10, 1))), "{id}");
    }
    assert_eq!(
        results(&fs, "c/1")[0].2,
        Err("over the temporary-space budget; not inspected".to_string())
    );
}

#[test]
fn a_spent_temporary_budget_streams_and_the_refusal_is_never_cached() {
    // Two layers, each with a 2 MiB binary, read in parallel; the budget
    // holds one spooled copy. The extractor that got one waits for the
    // other, so both are extracting at once and the second is refused.
    let bins = [elf(2 << 20, 1), elf(2 << 20, 2)];
    let layers: Vec<Vec<u8>> = bins
        .iter()
        .map(|b| tar_of(&[E::Exec("usr/bin/tool", b)]))
        .collect();
    let meet = Arc::new(Rendezvous::default());
    let sel = Selection::new().with_extractor(Probe {
        id: "seek/1",
        needs_seek: true,
        meet: Some(meet),
        ..Probe::default()
    });
    let limits = Limits {
        max_extract_memory: 1 << 20,
        max_temp_bytes: 3 << 20,
        ..Limits::default()
    };
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = LayerCache::with_dir(cache_dir.path()).unwrap();
    let keyed: Vec<LayerStream<'static>> = layers
        .iter()
        .map(|l| {
            let digest = format!("sha256:{}", hex::encode(Sha256::digest(l)));
            LayerStream::new(digest, Cursor::new(l.clone()))
        })
        .collect();
    let opts = ExtractOptions {
        threads: 2,
        cache: Some(&cache),
        ..ExtractOptions::default()
    };
    let fs = extract_with(keyed, &sel, &limits, opts).unwrap();
    // Both layers wrote usr/bin/tool; the upper one's result is what counts,
    // and across both layers exactly one was refused.
    let history: Vec<_> = fs.history("usr/bin/tool");
    assert_eq!(history.len(), 2);
    let refused = Err("over the temporary-space budget; not inspected".to_string());
    let top = results(&fs, "seek/1");
    assert_eq!(top.len(), 1);
    let top_refused = top[0].2 == refused;
    assert!(
        top_refused || top[0].2 == Ok(expected("seekable", &bins[1])),
        "{top:?}"
    );
    // The refused layer was limited by the other: only one entry on disk.
    let entries = std::fs::read_dir(cache_dir.path()).unwrap().count();
    assert_eq!(entries, 1);
    // Read again alone, with budget to spare: no refusal, and the layer that
    // was refused before is read (not served from the cache).
    let again = extract_with(
        streams(&layers),
        &Selection::new().with_extractor(Probe {
            id: "seek/1",
            needs_seek: true,
            ..Probe::default()
        }),
        &limits,
        options(1, None),
    )
    .unwrap();
    assert_eq!(
        results(&again, "seek/1")[0].2,
        Ok(expected("seekable", &bins[1]))
    );
}

#[test]
fn a_single_file_over_the_temporary_budget_is_an_error_result() {
    let big = elf(4 << 20, 5);
    let layer = tar_of(&[E::Exec("usr/bin/big", &big)]);
    let sel = Selection::new().with_extractor(Probe {
        id: "seek/1",
        needs_seek: true,
        ..Probe::default()
    });
    let limits = Limits {
        max_extract_memory: 1 << 20,
        max_temp_bytes: 2 << 20,
        ..Limits::default()
    };
    let ch = read_layer("sha256:l", &layer[..], &sel, &limits).unwrap();
    // Over the per-file spool limit whatever the other layers do: cacheable.
    assert!(!ch.is_budget_limited());
    let fs = MergedFs::from_layers(vec![("sha256:l".into(), ch)]);
    let got: Vec<_> = fs.extracted("seek/1").collect();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "usr/bin/big");
    assert_eq!(got[0].layer, Some("sha256:l"));
    assert_eq!(
        got[0].result,
        Err("over the temporary-space budget; not inspected")
    );
}

#[test]
fn later_layers_replace_and_delete_extracted_results() {
    let v1 = elf(100, 1);
    let v2 = elf(200, 2);
    let layers = vec![
        tar_of(&[E::Exec("usr/bin/a", &v1), E::Exec("usr/bin/b", &v1)]),
        tar_of(&[E::Exec("usr/bin/a", &v2), E::File("usr/bin/.wh.b", b"")]),
        tar_of(&[
            E::Dir("usr"),
            E::File("usr/.wh..wh..opq", b""),
            E::Exec("usr/c", &v1),
        ]),
        tar_of(&[E::Exec("usr/c", &v1)]),
    ];
    let sel = Selection::new().with_extractor(Probe {
        id: "p/1",
        ..Probe::default()
    });
    let two = extract_with(
        streams(&layers[..2]),
        &sel,
        &Limits::default(),
        options(2, None),
    )
    .unwrap();
    assert_eq!(
        results(&two, "p/1"),
        [(
            "usr/bin/a".into(),
            Some("sha256:l1".into()),
            Ok(expected("memory", &v2))
        )]
    );
    let all = extract_with(streams(&layers), &sel, &Limits::default(), options(2, None)).unwrap();
    let got = results(&all, "p/1");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "usr/c");
    assert_eq!(got[0].1.as_deref(), Some("sha256:l3"));
    // Rewritten unchanged by the top layer: introduced by the one below.
    assert_eq!(all.introduced_by("usr/c"), Some("sha256:l2"));
}

#[test]
fn a_layer_that_ends_inside_an_extracted_file_is_an_error() {
    let bin = elf(1 << 20, 4);
    let layer = tar_of(&[E::Exec("usr/bin/tool", &bin)]);
    let cut = &layer[..512 + 300_000];
    let sel = Selection::new().with_extractor(Probe {
        id: "p/1",
        ..Probe::default()
    });
    for memory in [2 << 20, 0] {
        for temp in [2 << 20, 0] {
            let limits = Limits {
                max_extract_memory: memory,
                max_temp_bytes: temp,
                ..Limits::default()
            };
            let err = read_layer("sha256:cut", cut, &sel, &limits).unwrap_err();
            assert!(
                matches!(&err, LayerError::Tar { entry: Some(e), .. } if e == "usr/bin/tool"),
                "{err:?}"
            );
            assert!(err.to_string().contains("ends inside"), "{err}");
        }
    }
}

#[test]
fn cache_round_trip_keeps_extracted_results_and_drops() {
    let bin = elf(5000, 7);
    let layer = tar_of(&[
        E::Exec("usr/bin/tool", &bin),
        E::File("app/node_modules/x/package.json", b"{\"name\":\"x\"}"),
        E::File("app/node_modules/big/package.json", &[b' '; 4096]),
    ]);
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&layer)));
    let sel = || {
        Selection::new()
            .with_glob("**/node_modules/*/package.json")
            .with_extractor(Probe {
                id: "p/1",
                ..Probe::default()
            })
    };
    let limits = Limits {
        max_file_size: 1024,
        ..Limits::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let run = |cache: &LayerCache, sel: &Selection| {
        let stream = LayerStream::new(digest.clone(), Cursor::new(layer.clone()));
        let opts = ExtractOptions {
            cache: Some(cache),
            ..ExtractOptions::default()
        };
        extract_with(vec![stream], sel, &limits, opts).unwrap()
    };
    let summary = |fs: &MergedFs| {
        (
            fs.files()
                .map(|f| (f.path.to_string(), f.data.to_vec()))
                .collect::<Vec<_>>(),
            results(fs, "p/1"),
            fs.dropped()
                .map(|d| (d.path.to_string(), d.reason.to_string()))
                .collect::<Vec<_>>(),
        )
    };
    let first = run(&LayerCache::with_dir(dir.path()).unwrap(), &sel());
    let cache = LayerCache::with_dir(dir.path()).unwrap();
    let second = run(&cache, &sel());
    assert_eq!(cache.stats().disk_hits, 1);
    assert_eq!(summary(&first), summary(&second));
    let (files, extracted, dropped) = summary(&second);
    assert_eq!(files.len(), 1);
    assert_eq!(extracted[0].2, Ok(expected("memory", &bin)));
    assert_eq!(
        dropped,
        [(
            "app/node_modules/big/package.json".to_string(),
            "4096 bytes, over the 1024-byte limit for one file".to_string()
        )]
    );
    // Another extractor id is another key.
    let other = Selection::new()
        .with_glob("**/node_modules/*/package.json")
        .with_extractor(Probe {
            id: "p/2",
            ..Probe::default()
        });
    let third = run(&cache, &other);
    assert_eq!(cache.stats().misses, 1);
    assert_eq!(results(&third, "p/2").len(), 1);
}

#[test]
fn selected_files_not_kept_are_listed_as_dropped_while_present() {
    let layers = vec![
        tar_of(&[
            E::File("var/lib/dpkg/status", &[b'x'; 3000]),
            E::File("var/lib/dpkg/status.d/a", &[b'a'; 600]),
            E::File("var/lib/dpkg/status.d/b", &[b'b'; 600]),
        ]),
        tar_of(&[E::File("var/lib/dpkg/status.d/.wh.b", b"")]),
    ];
    let sel = Selection::new()
        .with_path("var/lib/dpkg/status")
        .with_prefix("var/lib/dpkg/status.d");
    let limits = Limits {
        max_file_size: 2000,
        max_kept_bytes: 1000,
        ..Limits::default()
    };
    let fs = extract_with(streams(&layers), &sel, &limits, options(1, None)).unwrap();
    let dropped: Vec<(String, Option<String>, String)> = fs
        .dropped()
        .map(|d| (d.path.into(), d.layer.map(Into::into), d.reason.into()))
        .collect();
    // status.d/b did not fit the scan's memory budget but is deleted above.
    assert_eq!(
        dropped,
        [(
            "var/lib/dpkg/status".to_string(),
            Some("sha256:l0".to_string()),
            "3000 bytes, over the 2000-byte limit for one file".to_string()
        )]
    );
    assert_eq!(fs.file("var/lib/dpkg/status.d/a").unwrap().data.len(), 600);
    assert!(fs.file("var/lib/dpkg/status.d/b").is_none());

    let fs = extract_with(streams(&layers[..1]), &sel, &limits, options(1, None)).unwrap();
    let reasons: Vec<&str> = fs.dropped().map(|d| d.reason).collect();
    assert_eq!(
        reasons[1],
        "600 bytes, over what is left of the scan's 1000-byte memory budget"
    );
}

#[test]
fn a_root_file_system_honours_globs_and_extractors() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let write = |p: &str, data: &[u8], mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        let path = root.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, data).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let bin = elf(3 << 20, 8);
    write(
        "usr/lib/python3/dist-packages/idna-3.3.dist-info/METADATA",
        b"Name: idna\n",
        0o644,
    );
    write("usr/bin/tool", &bin, 0o755);
    write("usr/bin/small", &elf(64, 1), 0o755);
    write("etc/os-release", b"ID=test\n", 0o644);
    std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
    // A link out of the root is recorded, never followed on the host.
    std::os::unix::fs::symlink("/etc", root.join("hostetc")).unwrap();
    let sel = Selection::new()
        .with_path("etc/os-release")
        .with_glob("**/{site,dist}-packages/*.dist-info/METADATA")
        .with_extractor(Probe {
            id: "p/1",
            ..Probe::default()
        });
    let limits = Limits {
        max_extract_memory: 1 << 20,
        ..Limits::default()
    };
    let fs = trawl_layers::read_rootfs(root, &sel, &limits).unwrap();
    let files: Vec<&str> = fs.files().map(|f| f.path).collect();
    assert_eq!(
        files,
        [
            "etc/os-release",
            "usr/lib/python3/dist-packages/idna-3.3.dist-info/METADATA"
        ]
    );
    assert_eq!(
        fs.file("lib/python3/dist-packages/idna-3.3.dist-info/METADATA")
            .unwrap()
            .data,
        b"Name: idna\n"
    );
    assert_eq!(fs.resolve("hostetc/passwd").as_deref(), Some("etc/passwd"));
    assert!(fs.file("hostetc/passwd").is_none());
    assert_eq!(
        results(&fs, "p/1"),
        [
            (
                "usr/bin/small".into(),
                None,
                Ok(expected("memory", &elf(64, 1)))
            ),
            ("usr/bin/tool".into(), None, Ok(expected("seekable", &bin))),
        ]
    );
    assert_eq!(fs.dropped().count(), 0);

    // The walk stops at the entry cap, and says so.
    let capped = Limits {
        max_entries: 3,
        ..limits
    };
    let fs = trawl_layers::read_rootfs(root, &sel, &capped).unwrap();
    let dropped: Vec<_> = fs.dropped().collect();
    assert_eq!(dropped.len(), 1);
    assert!(dropped[0].reason.contains("max_entries"), "{dropped:?}");
}
