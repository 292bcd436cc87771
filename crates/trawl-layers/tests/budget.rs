//! The scan budget against hostile layers (issue 15): each reproduction is
//! built here with the `tar` and `flate2` crates, and memory is measured
//! with a counting allocator (the peak of bytes allocated while the layer is
//! read), so "bounded" is asserted, not assumed. Tests in this file run one
//! at a time, so that the peaks are their own.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Cursor, Read, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use trawl_layers::{
    ExtractOptions, LayerError, LayerStream, LayerWarning, Limits, MergedFs, Selection,
    extract_partial, extract_with, read_layer,
};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only
// the sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
            let now = CURRENT.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `f` alone; returns its result and the peak of bytes it had
/// allocated at any one time (above what was allocated before).
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

const MIB: usize = 1 << 20;

/// A gzip layer written entry by entry, never holding a large entry.
struct Layer {
    gz: flate2::write::GzEncoder<Vec<u8>>,
}

impl Layer {
    fn new() -> Self {
        Layer {
            gz: flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best()),
        }
    }

    fn header(&mut self, path: &str, size: u64, kind: tar::EntryType) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(kind);
        h.set_cksum();
        self.gz.write_all(h.as_bytes()).unwrap();
        self
    }

    /// `len` bytes of `byte`, then the padding to the next block.
    fn content(&mut self, len: u64, byte: u8) -> &mut Self {
        self.content_after(&[], len, byte)
    }

    /// `start`, then `byte` up to `len` bytes in all, then the padding.
    fn content_after(&mut self, start: &[u8], len: u64, byte: u8) -> &mut Self {
        let pad = (512 - len % 512) % 512;
        self.gz.write_all(start).unwrap();
        let mut len = len - start.len() as u64;
        let buf = vec![byte; MIB];
        while len > 0 {
            let n = len.min(MIB as u64) as usize;
            self.gz.write_all(&buf[..n]).unwrap();
            len -= n as u64;
        }
        self.gz.write_all(&vec![0; pad as usize]).unwrap();
        self
    }

    fn bytes(&mut self, data: &[u8]) -> &mut Self {
        self.gz.write_all(data).unwrap();
        let pad = (512 - data.len() % 512) % 512;
        self.gz.write_all(&vec![0; pad]).unwrap();
        self
    }

    fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.header(path, data.len() as u64, tar::EntryType::Regular)
            .bytes(data)
    }

    /// The end-of-archive marker and the end of the gzip stream.
    fn finish(self) -> Vec<u8> {
        let mut gz = self.gz;
        gz.write_all(&[0; 1024]).unwrap();
        gz.finish().unwrap()
    }

    /// The end of the gzip stream, without an end-of-archive marker.
    fn cut(self) -> Vec<u8> {
        self.gz.finish().unwrap()
    }
}

fn dpkg() -> Selection {
    Selection::new()
        .with_path("etc/os-release")
        .with_path("var/lib/dpkg/status")
        .with_prefix("var/lib/dpkg/status.d")
}

/// Issue 15, item 3: a symlink whose target has ~80,000 components, in a
/// layer of a few hundred bytes, made resolving a path through it take
/// minutes (every component re-joined the whole path so far).
#[test]
fn a_symlink_of_80000_components_is_refused_and_resolution_is_linear() {
    let _alone = serial();
    let layer = |target: &str| {
        let mut l = Layer::new();
        l.header(
            "././@LongLink",
            target.len() as u64 + 1,
            tar::EntryType::GNULongLink,
        )
        .bytes(format!("{target}\0").as_bytes())
        .header("etc/os-release", 0, tar::EntryType::Symlink)
        .file("usr/lib/os-release", b"ID=test\n");
        l.finish()
    };
    let deep = "x/".repeat(80_000);
    let blob = layer(&deep);
    assert!(blob.len() < 1024, "{} bytes", blob.len());

    // Read with the default limits, the link is refused with a warning.
    let sel = dpkg().with_path("usr/lib/os-release");
    let ch = read_layer("sha256:deep", &blob[..], &sel, &Limits::default()).unwrap();
    assert!(
        ch.warnings().iter().any(|w| matches!(w,
            LayerWarning::LinkTooLong { path, components: 80_001, .. } if path == "etc/os-release")),
        "{:?}",
        ch.warnings()
    );
    let fs = MergedFs::from_layers(vec![("sha256:deep".into(), ch)]);
    assert!(fs.file("etc/os-release").is_none());
    let dropped: Vec<_> = fs.dropped().map(|d| (d.path, d.reason)).collect();
    assert_eq!(
        dropped,
        [(
            "etc/os-release",
            "a symlink whose target of 160000 bytes in 80001 components is over the limits; not followed"
        )]
    );

    // Recorded anyway (limits lifted), resolution stays linear: a path
    // that grows past max_path_len is unresolvable, and 80,000 `..`
    // climb to the root and go on from there. (A hang guard, not a speed
    // goal: the quadratic version took minutes.)
    let lifted = Limits {
        max_link_target_len: usize::MAX,
        max_link_components: usize::MAX,
        ..Limits::default()
    };
    let started = Instant::now();
    let ch = read_layer("sha256:deep", &blob[..], &sel, &lifted).unwrap();
    let fs = MergedFs::from_layers(vec![("sha256:deep".into(), ch)]);
    assert_eq!(fs.resolve("etc/os-release"), None);
    assert!(fs.file("etc/os-release").is_none());
    let climb = format!("{}usr/lib/os-release", "../".repeat(80_000));
    let blob = layer(&climb);
    let ch = read_layer("sha256:climb", &blob[..], &sel, &lifted).unwrap();
    let fs = MergedFs::from_layers(vec![("sha256:climb".into(), ch)]);
    assert_eq!(fs.file("etc/os-release").unwrap().data, b"ID=test\n");
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// Issue 15, item 4: a 1 GiB GNU long name in a 1 MB layer cost 3 GiB of
/// memory; a PAX header is read under the same cap.
#[test]
fn tar_extension_headers_are_read_under_the_cap() {
    let _alone = serial();
    let mut l = Layer::new();
    l.file("etc/os-release", b"ID=test\n")
        .header("././@LongLink", 1 << 30, tar::EntryType::GNULongName)
        .content(1 << 30, b'a')
        .file("x", b"x");
    let blob = l.finish();
    assert!(blob.len() < 2 * MIB, "{} bytes", blob.len());
    let (err, peak) = peak_of(|| read_layer("sha256:long", &blob[..], &dpkg(), &Limits::default()));
    let err = err.unwrap_err();
    assert!(
        matches!(&err, LayerError::HeaderTooLarge { entry: Some(e), limit, .. }
            if e == "etc/os-release" && *limit == 1 << 20),
        "{err:?}"
    );
    assert!(peak < 16 * MIB, "peak {} MiB", peak / MIB);

    // A PAX header, by a real writer, over a small cap; and one within it.
    let pax = |value_len: usize| {
        let mut b = tar::Builder::new(Vec::new());
        let value = vec![b'v'; value_len];
        b.append_pax_extensions([("SCHILY.xattr.user.big", &value[..])])
            .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(8);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "etc/os-release", &b"ID=pax\n\n"[..])
            .unwrap();
        b.into_inner().unwrap()
    };
    let limits = Limits {
        max_header_ext_bytes: 64 << 10,
        ..Limits::default()
    };
    let err = read_layer("sha256:pax", &pax(100_000)[..], &dpkg(), &limits).unwrap_err();
    assert!(matches!(err, LayerError::HeaderTooLarge { .. }), "{err:?}");
    let ch = read_layer("sha256:pax", &pax(1000)[..], &dpkg(), &limits).unwrap();
    let fs = MergedFs::from_layers(vec![("sha256:pax".into(), ch)]);
    assert_eq!(fs.file("etc/os-release").unwrap().data, b"ID=pax\n\n");
}

/// A path longer than max_path_len is skipped with a warning.
#[test]
fn an_overlong_path_is_skipped_with_a_warning() {
    let _alone = serial();
    let long = format!("var/lib/dpkg/status.d/{}", "p".repeat(5000));
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, &long, &b"ok"[..]).unwrap();
    let blob = b.into_inner().unwrap();
    let ch = read_layer("sha256:p", &blob[..], &dpkg(), &Limits::default()).unwrap();
    assert!(matches!(
        ch.warnings(),
        [LayerWarning::PathTooLong {
            len: 5022,
            limit: 4096,
            ..
        }]
    ));
    assert!(ch.is_empty());
}

/// Issue 15, item 4: many large selected files from a tiny blob (4 x 256
/// MiB `status.d` files in 1 MB) were all held in memory.
#[test]
fn many_large_selected_files_stay_within_the_memory_budget() {
    let _alone = serial();
    let stanza = |i: usize| {
        format!(
            "Package: pkg{i}\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\n"
        )
    };
    let blob = |count: usize, size: u64| {
        let mut l = Layer::new();
        for i in 0..count {
            l.header(
                &format!("var/lib/dpkg/status.d/pkg{i}"),
                size,
                tar::EntryType::Regular,
            )
            .content_after(stanza(i).as_bytes(), size, b'\n');
        }
        l.finish()
    };
    // The reproduction, with the default limits: each file is over the
    // per-file limit; none is read, every one is listed as dropped.
    let big = blob(4, 256 << 20);
    assert!(big.len() < 2 * MIB);
    let (fs, peak) = peak_of(|| {
        let streams = vec![LayerStream::new("sha256:big", Cursor::new(&big[..]))];
        extract_with(
            streams,
            &dpkg(),
            &Limits::default(),
            ExtractOptions::default(),
        )
        .unwrap()
    });
    assert_eq!(fs.dropped().count(), 4);
    assert_eq!(fs.kept_bytes(), 0);
    assert!(peak < 16 * MIB, "peak {} MiB", peak / MIB);
    drop(fs);

    // Under the per-file limit, the scan's memory budget decides: in one
    // layer, the files that fit are kept and every later one is dropped.
    let limits = Limits {
        max_file_size: 64 << 20,
        max_kept_bytes: 80 << 20,
        ..Limits::default()
    };
    let four = blob(4, 32 << 20);
    let (fs, peak) = peak_of(|| {
        let streams = vec![LayerStream::new("sha256:four", Cursor::new(&four[..]))];
        extract_with(streams, &dpkg(), &limits, ExtractOptions::default()).unwrap()
    });
    let dropped: Vec<&str> = fs.dropped().map(|d| d.path).collect();
    assert_eq!(
        dropped,
        ["var/lib/dpkg/status.d/pkg2", "var/lib/dpkg/status.d/pkg3"]
    );
    assert_eq!(fs.kept_bytes(), 64 << 20);
    assert!(peak < (64 + 16) * MIB, "peak {} MiB", peak / MIB);
    drop(fs);

    // Two layers read in parallel share the budget.
    let layers = [blob(2, 32 << 20), blob(2, 32 << 20)];
    let (fs, peak) = peak_of(|| {
        let streams = layers
            .iter()
            .enumerate()
            .map(|(i, l)| LayerStream::new(format!("sha256:l{i}"), Cursor::new(&l[..])))
            .collect();
        let options = ExtractOptions {
            threads: 2,
            ..ExtractOptions::default()
        };
        extract_with(streams, &dpkg(), &limits, options).unwrap()
    });
    // pkg0 and pkg1 of the upper layer replace the lower ones: whichever
    // two of the four files fit, the final view holds at most two.
    assert!(fs.kept_bytes() <= 64 << 20);
    let kept = fs.files_under("var/lib/dpkg/status.d").len();
    assert_eq!(kept + fs.dropped().count(), 2);
    assert!(peak < (80 + 24) * MIB, "peak {} MiB", peak / MIB);
    for d in fs.dropped() {
        assert_eq!(
            d.reason,
            "33554432 bytes, over what is left of the scan's 83886080-byte memory budget"
        );
    }
}

/// Issue 15, item 13: a tar stream that ends inside an entry (a `status.d`
/// file whose header claims 8 GiB, a few bytes, then a clean end of the
/// gzip stream) is a typed error naming the entry, however the entry is
/// read.
#[test]
fn a_stream_that_ends_inside_an_entry_is_an_error() {
    let _alone = serial();
    for claimed in [8u64 << 30, 1000] {
        let mut l = Layer::new();
        l.file("etc/os-release", b"ID=test\n").header(
            "var/lib/dpkg/status.d/evil",
            claimed,
            tar::EntryType::Regular,
        );
        l.gz.write_all(b"Package: evil\n").unwrap();
        let blob = l.cut();
        let err = read_layer("sha256:cut", &blob[..], &dpkg(), &Limits::default()).unwrap_err();
        assert!(
            matches!(&err, LayerError::Tar { entry: Some(e), .. } if e == "var/lib/dpkg/status.d/evil"),
            "{claimed}: {err:?}"
        );
        let (fs, skipped) = extract_partial(
            vec![LayerStream::new("sha256:cut", Cursor::new(blob))],
            &dpkg(),
            &Limits::default(),
            ExtractOptions::default(),
        )
        .unwrap();
        assert_eq!(skipped.len(), 1);
        assert!(fs.is_empty());
    }
}

/// A blob that trickles (a few KiB every few milliseconds).
struct Trickle {
    data: Vec<u8>,
    pos: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::thread::sleep(Duration::from_millis(5));
        let n = buf.len().min(4096).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The deadline stops every layer, the ones being read and the ones not
/// yet opened, each with a typed error.
#[test]
fn the_deadline_cancels_every_layer() {
    let _alone = serial();
    let mut l = Layer::new();
    l.file("etc/os-release", b"ID=test\n");
    // Incompressible (xorshift): the blob trickles for minutes.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for i in 0..100 {
        let data: Vec<u8> = (0..50_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        l.file(&format!("usr/share/f{i}"), &data);
    }
    let blob = l.finish();
    assert!(blob.len() > 4 * MIB, "{} bytes", blob.len());
    let opened = [(); 4].map(|_| AtomicBool::new(false));
    let streams = opened
        .iter()
        .enumerate()
        .map(|(i, flag)| {
            let data = blob.clone();
            LayerStream::lazy(format!("sha256:l{i}"), move || {
                flag.store(true, Ordering::Relaxed);
                Ok(Box::new(Trickle { data, pos: 0 }) as Box<dyn Read + Send>)
            })
        })
        .collect();
    let limits = Limits {
        deadline: Some(Duration::from_millis(300)),
        ..Limits::default()
    };
    let options = ExtractOptions {
        threads: 2,
        ..ExtractOptions::default()
    };
    let started = Instant::now();
    let (fs, skipped) = extract_partial(streams, &dpkg(), &limits, options).unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(fs.is_empty());
    assert_eq!(skipped.len(), 4);
    for e in &skipped {
        assert!(
            matches!(e, LayerError::Deadline { limit, .. } if limit.as_millis() == 300),
            "{e:?}"
        );
        assert!(!e.is_integrity());
    }
    // Two threads: the first two layers were stopped while being read, the
    // last two never opened.
    assert!(opened[0].load(Ordering::Relaxed) && opened[1].load(Ordering::Relaxed));
    assert!(!opened[2].load(Ordering::Relaxed) && !opened[3].load(Ordering::Relaxed));
}

/// Warnings stop at max_warnings, per layer and in the merged view, with
/// one summary of the rest.
#[test]
fn warnings_are_capped_with_one_summary() {
    let _alone = serial();
    let layer = || {
        let mut b = tar::Builder::new(Vec::new());
        for i in 0..3000 {
            let mut h = tar::Header::new_gnu();
            h.as_old_mut().name[..12].copy_from_slice(format!("../x{i:08}").as_bytes());
            h.set_size(0);
            h.set_mode(0o644);
            h.set_cksum();
            b.append(&h, std::io::empty()).unwrap();
        }
        b.into_inner().unwrap()
    };
    let limits = Limits {
        max_warnings: 10,
        ..Limits::default()
    };
    let ch = read_layer("sha256:w", &layer()[..], &dpkg(), &limits).unwrap();
    assert_eq!(ch.warnings().len(), 10);
    assert_eq!(ch.more_warnings(), 2990);
    let streams = vec![
        LayerStream::new("sha256:a", Cursor::new(layer())),
        LayerStream::new("sha256:b", Cursor::new(layer())),
    ];
    let fs = extract_with(streams, &dpkg(), &limits, ExtractOptions::default()).unwrap();
    assert_eq!(fs.warnings().len(), 11);
    assert_eq!(
        fs.warnings()[10],
        LayerWarning::MoreWarnings { count: 5990 }
    );
}

/// Recording every entry (globs) stops at max_entries: the layer fails
/// with a typed error instead of growing without bound.
#[test]
fn the_entry_budget_bounds_what_is_recorded() {
    let _alone = serial();
    let mut b = tar::Builder::new(Vec::new());
    for i in 0..5000 {
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, format!("srv/f{i}"), &b"x"[..])
            .unwrap();
    }
    let blob = b.into_inner().unwrap();
    let sel = dpkg().with_glob("**/package.json");
    let limits = Limits {
        max_entries: 1000,
        ..Limits::default()
    };
    let err = read_layer("sha256:e", &blob[..], &sel, &limits).unwrap_err();
    assert!(
        matches!(
            err,
            LayerError::OverBudget {
                budget: "max_entries",
                limit: 1000,
                ..
            }
        ),
        "{err:?}"
    );
    // Without globs only relevant paths are recorded: nothing here.
    let ch = read_layer("sha256:e", &blob[..], &dpkg(), &limits).unwrap();
    assert!(ch.is_empty());
}
