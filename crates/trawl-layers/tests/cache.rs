//! The per-layer cache: memory and disk hits never open the blob, corrupt
//! entries are rebuilt, diff_ids are checked, concurrent readers share one read.

use std::io::{self, Cursor, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};
use trawl_layers::{
    ExtractOptions, LayerCache, LayerError, LayerStream, Limits, MergedFs, Selection, extract_with,
};

fn layer(files: &[(&str, &[u8])]) -> (Vec<u8>, String) {
    let mut b = tar::Builder::new(Vec::new());
    for (p, d) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(d.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, p, *d).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let diff_id = format!("sha256:{}", hex::encode(Sha256::digest(&tar)));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), diff_id)
}

struct Image {
    layers: Vec<(Vec<u8>, String)>,
    opens: Arc<AtomicUsize>,
}

impl Image {
    fn new() -> Self {
        Image {
            layers: vec![
                layer(&[
                    ("etc/os-release", b"ID=debian\n"),
                    ("var/lib/dpkg/status", b"Package: a\n"),
                ]),
                layer(&[("var/lib/dpkg/status", b"Package: b\n")]),
            ],
            opens: Arc::default(),
        }
    }

    fn streams(&self) -> Vec<LayerStream<'_>> {
        self.layers
            .iter()
            .enumerate()
            .map(|(i, (blob, diff_id))| {
                let opens = self.opens.clone();
                LayerStream::lazy(format!("sha256:blob{i}"), move || {
                    opens.fetch_add(1, Ordering::SeqCst);
                    Ok(Box::new(Cursor::new(blob.clone())) as Box<dyn Read + Send>)
                })
                .with_diff_id(diff_id.clone())
            })
            .collect()
    }

    fn scan(&self, cache: &LayerCache, sel: &Selection) -> Result<MergedFs, LayerError> {
        extract_with(
            self.streams(),
            sel,
            &Limits::default(),
            ExtractOptions {
                threads: 2,
                cache: Some(cache),
                ..ExtractOptions::default()
            },
        )
    }
}

fn entry_names(dir: &std::path::Path) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".layer"))
        .collect()
}

fn set_age(path: &std::path::Path, seconds: u64) {
    let when = std::time::SystemTime::now() - std::time::Duration::from_secs(seconds);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

#[test]
fn pruning_removes_least_recently_used_entries_first() {
    let dir = tempfile::tempdir().unwrap();
    let first = Image::new();
    let second = Image {
        layers: vec![
            layer(&[("etc/os-release", b"ID=alpine\n")]),
            layer(&[("var/lib/dpkg/status", b"Package: c\n")]),
        ],
        opens: Arc::default(),
    };
    first
        .scan(&LayerCache::with_dir(dir.path()).unwrap(), &sel())
        .unwrap();
    let first_entries = entry_names(dir.path());
    second
        .scan(&LayerCache::with_dir(dir.path()).unwrap(), &sel())
        .unwrap();
    let second_entries: std::collections::BTreeSet<String> = entry_names(dir.path())
        .difference(&first_entries)
        .cloned()
        .collect();
    assert_eq!((first_entries.len(), second_entries.len()), (2, 2));
    // The first image's entries were written first and are older...
    for (age, name) in first_entries.iter().chain(&second_entries).enumerate() {
        set_age(&dir.path().join(name), 400 - 100 * age as u64);
    }
    // ...but it is scanned again (from disk), which makes them the most recently used.
    first
        .scan(&LayerCache::with_dir(dir.path()).unwrap(), &sel())
        .unwrap();
    assert_eq!(first.opens.load(Ordering::SeqCst), 2, "served from disk");
    let size = |names: &std::collections::BTreeSet<String>| -> u64 {
        names
            .iter()
            .map(|n| std::fs::metadata(dir.path().join(n)).unwrap().len())
            .sum()
    };
    let (first_size, second_size) = (size(&first_entries), size(&second_entries));
    // Not entries: left alone, except a temporary file abandoned over an hour ago.
    std::fs::write(dir.path().join("README"), "mine").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join(".tmpOLD123"), "half an entry").unwrap();
    set_age(&dir.path().join(".tmpOLD123"), 7200);
    std::fs::write(dir.path().join(".tmpNEW456"), "being written").unwrap();

    let cache = LayerCache::with_dir(dir.path()).unwrap();
    let pruned = cache.prune(first_size).unwrap();
    assert_eq!(
        pruned,
        trawl_layers::Pruned {
            removed_entries: 2,
            removed_bytes: second_size,
            removed_temporary: 1,
            kept_entries: 2,
            kept_bytes: first_size,
        }
    );
    assert_eq!(entry_names(dir.path()), first_entries);
    for kept in ["README", "sub", ".tmpNEW456"] {
        assert!(dir.path().join(kept).exists(), "{kept}");
    }
    assert!(!dir.path().join(".tmpOLD123").exists());

    // Within the limit: nothing to do.
    assert_eq!(cache.prune(first_size).unwrap().removed_entries, 0);
    // What was pruned is read again; what was kept is not.
    first.scan(&cache, &sel()).unwrap();
    second.scan(&cache, &sel()).unwrap();
    assert_eq!(first.opens.load(Ordering::SeqCst), 2);
    assert_eq!(second.opens.load(Ordering::SeqCst), 4);
    // A limit of zero empties it; an in-memory cache has nothing to prune.
    let all = cache.prune(0).unwrap();
    assert_eq!((all.removed_entries, all.kept_entries), (4, 0));
    assert!(entry_names(dir.path()).is_empty());
    assert_eq!(
        LayerCache::in_memory().prune(0).unwrap(),
        trawl_layers::Pruned::default()
    );
}

fn sel() -> Selection {
    Selection::new()
        .with_path("etc/os-release")
        .with_path("var/lib/dpkg/status")
}

fn status(fs: &MergedFs) -> String {
    String::from_utf8(fs.file("var/lib/dpkg/status").unwrap().data.to_vec()).unwrap()
}

#[test]
fn memory_hits_do_not_open_blobs() {
    let img = Image::new();
    let cache = LayerCache::in_memory();
    let first = img.scan(&cache, &sel()).unwrap();
    assert_eq!(img.opens.load(Ordering::SeqCst), 2);
    let second = img.scan(&cache, &sel()).unwrap();
    assert_eq!(
        img.opens.load(Ordering::SeqCst),
        2,
        "no layer opened on a warm cache"
    );
    assert_eq!(status(&second), "Package: b\n");
    assert_eq!(status(&first), status(&second));
    assert_eq!(second.history("var/lib/dpkg/status").len(), 2);
    let s = cache.stats();
    assert_eq!((s.misses, s.memory_hits, s.disk_hits), (2, 2, 0));

    // Another selection is another key.
    img.scan(&cache, &Selection::new().with_path("etc/os-release"))
        .unwrap();
    assert_eq!(img.opens.load(Ordering::SeqCst), 4);
}

#[test]
fn disk_entries_survive_the_process_and_corrupt_ones_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let img = Image::new();
    img.scan(&LayerCache::with_dir(dir.path()).unwrap(), &sel())
        .unwrap();
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        entries.len(),
        2,
        "one entry per layer, no temporary files left: {entries:?}"
    );

    // A new cache over the same directory: a new process.
    let warm = LayerCache::with_dir(dir.path()).unwrap();
    let fs = img.scan(&warm, &sel()).unwrap();
    assert_eq!(img.opens.load(Ordering::SeqCst), 2);
    assert_eq!(warm.stats().disk_hits, 2);
    assert_eq!(status(&fs), "Package: b\n");

    // Damage one entry (a flipped byte) and truncate the other.
    let mut bytes = std::fs::read(&entries[0]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&entries[0], bytes).unwrap();
    let bytes = std::fs::read(&entries[1]).unwrap();
    std::fs::write(&entries[1], &bytes[..bytes.len() / 2]).unwrap();
    let rebuilt = LayerCache::with_dir(dir.path()).unwrap();
    let fs = img.scan(&rebuilt, &sel()).unwrap();
    assert_eq!(status(&fs), "Package: b\n");
    assert_eq!(rebuilt.stats().corrupt_entries, 2);
    assert_eq!(
        img.opens.load(Ordering::SeqCst),
        4,
        "both layers read again"
    );
    let again = LayerCache::with_dir(dir.path()).unwrap();
    img.scan(&again, &sel()).unwrap();
    assert_eq!(
        (again.stats().disk_hits, again.stats().corrupt_entries),
        (2, 0),
        "entries rewritten whole"
    );
}

#[test]
fn a_wrong_diff_id_is_an_error_and_is_not_cached() {
    let (blob, _) = layer(&[("etc/os-release", b"ID=x\n")]);
    let wrong = format!("sha256:{}", "ab".repeat(32));
    let cache = LayerCache::in_memory();
    for _ in 0..2 {
        let stream =
            LayerStream::new("sha256:blob", Cursor::new(blob.clone())).with_diff_id(wrong.clone());
        let err = extract_with(
            vec![stream],
            &sel(),
            &Limits::default(),
            ExtractOptions {
                threads: 1,
                cache: Some(&cache),
                ..ExtractOptions::default()
            },
        )
        .unwrap_err();
        assert!(
            matches!(&err, LayerError::DiffIdMismatch { expected, .. } if *expected == wrong),
            "{err:?}"
        );
        assert!(err.to_string().contains("sha256:blob"), "{err}");
    }
    assert_eq!(cache.stats().misses, 2, "a failed read is not remembered");
    let stream = LayerStream::new("sha256:blob", Cursor::new(blob)).with_diff_id("md5:abc");
    let err = extract_with(
        vec![stream],
        &sel(),
        &Limits::default(),
        ExtractOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, LayerError::UnsupportedDiffId { .. }),
        "{err:?}"
    );
}

#[test]
fn concurrent_scans_share_one_read() {
    let img = Arc::new(Image::new());
    let cache = Arc::new(LayerCache::in_memory());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (img, cache) = (img.clone(), cache.clone());
            std::thread::spawn(move || status(&img.scan(&cache, &sel()).unwrap()))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), "Package: b\n");
    }
    assert_eq!(
        img.opens.load(Ordering::SeqCst),
        2,
        "each layer decompressed once in the process"
    );
}

#[test]
fn an_unopenable_blob_is_a_read_error_naming_the_layer() {
    let stream = LayerStream::lazy("sha256:gone", || {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            "blob sha256:gone not found",
        ))
    });
    let err = extract_with(
        vec![stream],
        &sel(),
        &Limits::default(),
        ExtractOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.layer(), Some("sha256:gone"));
    assert!(matches!(err, LayerError::Read { .. }));
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn os_release(fs: &MergedFs) -> String {
    String::from_utf8(fs.file("etc/os-release").unwrap().data.to_vec()).unwrap()
}

/// One layer read through `cache`, its stream opened from `blob` under `id`.
fn scan_one(
    cache: &LayerCache,
    id: &str,
    diff_id: &str,
    blob: Vec<u8>,
    opens: &Arc<AtomicUsize>,
) -> Result<MergedFs, LayerError> {
    let opens = opens.clone();
    let stream = LayerStream::lazy(id, move || {
        opens.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(Cursor::new(blob)) as Box<dyn Read + Send>)
    })
    .with_diff_id(diff_id);
    extract_with(
        vec![stream],
        &sel(),
        &Limits::default(),
        ExtractOptions {
            threads: 1,
            cache: Some(cache),
            ..ExtractOptions::default()
        },
    )
}

/// A layer named by its blob digest is checked against that digest instead
/// of its diff_id, and cached by it: a hostile layer that claims a popular
/// layer's diff_id cannot stand in for it.
#[test]
fn layers_named_by_digest_are_cached_by_their_verified_digest() {
    let (genuine, diff_id) = layer(&[("etc/os-release", b"ID=debian\n")]);
    let (hostile, _) = layer(&[("etc/os-release", b"ID=evil\n")]);
    let cache = LayerCache::in_memory();
    let opens = Arc::new(AtomicUsize::new(0));

    // The hostile layer, honestly named by its own digest but claiming the
    // genuine diff_id, is read (the diff_id is not what is checked)...
    let fs = scan_one(&cache, &digest(&hostile), &diff_id, hostile.clone(), &opens).unwrap();
    assert_eq!(os_release(&fs), "ID=evil\n");
    // ... and does not answer for the genuine layer.
    let fs = scan_one(&cache, &digest(&genuine), &diff_id, genuine.clone(), &opens).unwrap();
    assert_eq!(os_release(&fs), "ID=debian\n");
    assert_eq!(opens.load(Ordering::SeqCst), 2);
    let again = scan_one(&cache, &digest(&genuine), &diff_id, genuine.clone(), &opens).unwrap();
    assert_eq!(os_release(&again), "ID=debian\n");
    assert_eq!(opens.load(Ordering::SeqCst), 2, "served from the cache");

    // Claiming the genuine digest for other bytes fails the scan as an
    // integrity error, and leaves nothing in the cache under that digest.
    let fresh = LayerCache::in_memory();
    let err = scan_one(&fresh, &digest(&genuine), &diff_id, hostile, &opens).unwrap_err();
    assert!(
        matches!(&err, LayerError::BlobDigestMismatch { layer, actual }
            if *layer == digest(&genuine) && *actual != digest(&genuine)),
        "{err:?}"
    );
    assert!(err.is_integrity());
    let fs = scan_one(&fresh, &digest(&genuine), &diff_id, genuine.clone(), &opens).unwrap();
    assert_eq!(os_release(&fs), "ID=debian\n");
    assert_eq!(
        fresh.stats().misses,
        2,
        "the failed read was not remembered"
    );

    // Even when the bytes do not decompress: not being the digest comes first
    // (an integrity error, which stops a scan, not a content error).
    let garbage = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1, 2, 3];
    let err = scan_one(
        &LayerCache::in_memory(),
        &digest(&genuine),
        &diff_id,
        garbage,
        &opens,
    )
    .unwrap_err();
    assert!(
        matches!(err, LayerError::BlobDigestMismatch { .. }),
        "{err:?}"
    );
    let err = trawl_layers::read_layer_verified("x", "md5:1", &b""[..], &sel(), &Limits::default())
        .unwrap_err();
    assert!(
        matches!(err, LayerError::UnsupportedDigest { .. }),
        "{err:?}"
    );

    // A digest id must still come with a well-formed diff_id.
    let (blob, _) = layer(&[("etc/os-release", b"ID=x\n")]);
    let err = scan_one(&cache, &digest(&blob), "md5:abc", blob, &opens).unwrap_err();
    assert!(
        matches!(err, LayerError::UnsupportedDiffId { .. }),
        "{err:?}"
    );
}

/// The diff_id covers the whole tar, contents the selection skips included.
#[test]
fn skipped_contents_count_for_the_diff_id() {
    let filler = vec![b'x'; 3 << 20];
    let (blob, diff_id) = layer(&[
        ("usr/share/big", &filler[..]),
        ("etc/os-release", b"ID=debian\n"),
        ("usr/share/more", &filler[..1000]),
    ]);
    let opens = Arc::new(AtomicUsize::new(0));
    let fs = scan_one(
        &LayerCache::in_memory(),
        "sha256:blob",
        &diff_id,
        blob.clone(),
        &opens,
    )
    .unwrap();
    assert_eq!(os_release(&fs), "ID=debian\n");
    let wrong = format!("sha256:{}", "cd".repeat(32));
    let err = scan_one(
        &LayerCache::in_memory(),
        "sha256:blob",
        &wrong,
        blob,
        &opens,
    )
    .unwrap_err();
    assert!(matches!(err, LayerError::DiffIdMismatch { .. }), "{err:?}");
}
