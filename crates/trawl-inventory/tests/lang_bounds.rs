//! Hostile language metadata: typed warnings, the valid packages kept, and
//! memory bounded by what is kept rather than by the input. Allocation is
//! measured with a counting allocator, so every scenario runs in the one test
//! of this binary (parallel tests would disturb the counts).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use trawl_inventory::lang::{MetadataCataloger, catalog_metadata_files};
use trawl_inventory::npm::NpmCataloger;
use trawl_inventory::ownership::FileOwners;
use trawl_inventory::python::PythonCataloger;
use trawl_inventory::{Inventory, InventoryWarning};
use trawl_layers::{Limits, MergedFs, Selection, read_layer};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f`; returns its result, the bytes it left allocated and the peak of
/// extra bytes while it ran.
fn measure<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    let before = CURRENT.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let out = f();
    let after = CURRENT.load(Ordering::Relaxed);
    let peak = PEAK.load(Ordering::Relaxed);
    (out, after.saturating_sub(before), peak - before)
}

fn merged(files: Vec<(String, Vec<u8>)>, sel: &Selection) -> MergedFs {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in &files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, path, &data[..]).unwrap();
    }
    drop(files);
    let blob = tar.into_inner().unwrap();
    let changes = read_layer("sha256:l", &blob[..], sel, &Limits::default()).unwrap();
    MergedFs::from_layers(vec![("sha256:l".into(), changes)])
}

fn run(c: &dyn MetadataCataloger, fs: &MergedFs, dir: &str) -> (Inventory, usize, usize) {
    measure(|| {
        let mut inv = Inventory::default();
        catalog_metadata_files(c, fs, fs.files_under(dir), &mut inv);
        inv
    })
}

const MIB: usize = 1 << 20;

#[test]
fn hostile_metadata_costs_bounded_memory() {
    // METADATA with megabyte lines, a megabyte-long continued header and a
    // large body: only Name and Version are copied.
    let mut meta = b"Metadata-Version: 2.1\nName: big\nSummary: ".to_vec();
    for _ in 0..16 {
        meta.extend(std::iter::repeat_n(b's', MIB));
        meta.extend_from_slice(b"\n ");
    }
    meta.extend_from_slice(b"x\nVersion: 1.0\n\n");
    meta.extend(std::iter::repeat_n(b'b', 16 * MIB));
    let mut long_name = b"Name: ".to_vec();
    long_name.extend(std::iter::repeat_n(b'n', 8 * MIB));
    long_name.extend_from_slice(b"\nVersion: 1\n");
    let site = "usr/lib/python3/site-packages";
    let fs = merged(
        vec![
            (format!("{site}/big-1.0.dist-info/METADATA"), meta),
            (format!("{site}/long-1.dist-info/METADATA"), long_name),
            (
                format!("{site}/nover-1.dist-info/METADATA"),
                b"Name: nover\n".to_vec(),
            ),
        ],
        &Selection::new().with_prefix(site),
    );
    let (inv, _, peak) = run(&PythonCataloger, &fs, site);
    assert_eq!(inv.packages.len(), 1);
    assert_eq!(inv.packages[0].name, "big");
    assert!(
        peak < 256 << 10,
        "python: {peak} bytes at peak for 40 MiB of METADATA"
    );
    assert!(
        matches!(
            &inv.warnings[..],
            [
                InventoryWarning::UnreadableFile { path, reason, .. },
                InventoryWarning::MalformedEntry { line: 1, .. },
            ] if path.contains("long-1") && reason.contains("longer than")
        ),
        "{:?}",
        inv.warnings
    );
    assert!(inv.is_incomplete());
    drop(fs);

    // 100,000 package.json files, a thousand without a version and a thousand
    // that are not JSON: memory is what the inventory keeps (the package
    // vector's last doubling briefly holds half as much again), plus a
    // constant.
    let mut files = Vec::with_capacity(102_000);
    for i in 0..100_000 {
        files.push((
            format!("app/node_modules/p{i}/package.json"),
            format!("{{\"name\":\"p{i}\",\"version\":\"1.0.{i}\",\"main\":\"index.js\"}}")
                .into_bytes(),
        ));
    }
    for i in 0..1000 {
        files.push((
            format!("app/node_modules/nov{i}/package.json"),
            format!("{{\"name\":\"nov{i}\"}}").into_bytes(),
        ));
        files.push((
            format!("app/node_modules/bad{i}/package.json"),
            b"{\"name\": ".to_vec(),
        ));
    }
    let fs = merged(files, &Selection::new().with_prefix("app"));
    let (inv, kept, peak) = run(&NpmCataloger, &fs, "app");
    assert_eq!(inv.packages.len(), 100_000);
    // A hundred of each kind listed, the rest counted.
    let count = |f: fn(&InventoryWarning) -> bool| inv.warnings.iter().filter(|w| f(w)).count();
    assert_eq!(
        count(|w| matches!(w, InventoryWarning::UnreadableFile { .. })),
        100
    );
    assert_eq!(
        count(|w| matches!(w, InventoryWarning::MalformedEntry { .. })),
        100
    );
    assert!(inv.warnings.contains(&InventoryWarning::EntriesNotListed {
        database: "npm metadata files".into(),
        count: 900
    }));
    assert!(inv.warnings.iter().any(|w| matches!(w,
        InventoryWarning::UnreadableDatabase { reason, .. } if reason == "900 more unreadable files not listed")));
    assert_eq!(inv.warnings.len(), 202);
    assert!(inv.is_incomplete());
    assert!(
        peak <= kept * 3 / 2 + 16 * MIB,
        "npm: {peak} bytes at peak, {kept} kept by the inventory"
    );
    assert!(
        kept / 102_000 < 1024,
        "{} bytes per package",
        kept / 102_000
    );
    drop((inv, fs));

    // Deeply nested JSON: skipped without recursion, about a byte per level.
    let mut deep = b"{\"name\":\"deep\",\"version\":\"1\",\"x\":".to_vec();
    deep.extend(std::iter::repeat_n(b'[', 4 * MIB));
    deep.extend(std::iter::repeat_n(b']', 4 * MIB));
    deep.push(b'}');
    let mut open = b"{\"name\":".to_vec();
    open.extend(std::iter::repeat_n(b'{', 4 * MIB));
    let fs = merged(
        vec![
            ("node_modules/deep/package.json".into(), deep),
            ("node_modules/open/package.json".into(), open),
        ],
        &Selection::new().with_prefix("node_modules"),
    );
    let (inv, _, peak) = run(&NpmCataloger, &fs, "node_modules");
    assert_eq!(inv.packages.len(), 1);
    assert!(
        matches!(&inv.warnings[..], [InventoryWarning::UnreadableFile { .. }]),
        "{:?}",
        inv.warnings
    );
    assert!(
        peak < 16 * MIB,
        "deep JSON: {peak} bytes at peak for 8 MiB of nesting"
    );
    drop(fs);

    // A dpkg file list with two million lines, a tenth of them ending in the
    // wanted file's name: nothing of it is kept.
    let wanted = "usr/lib/python3/dist-packages/a-1.dist-info/METADATA";
    let mut list = Vec::with_capacity(2_000_000 * 48);
    for i in 0..2_000_000u32 {
        if i % 10 == 0 {
            list.extend_from_slice(format!("/usr/lib/x{i}.dist-info/METADATA\n").as_bytes());
        } else {
            list.extend_from_slice(format!("/usr/share/doc/hostile/file-{i}\n").as_bytes());
        }
    }
    list.extend_from_slice(format!("/{wanted}\n").as_bytes());
    let fs = merged(
        vec![
            ("var/lib/dpkg/info/hostile.list".into(), list),
            (wanted.into(), b"Name: a\nVersion: 1\n".to_vec()),
        ],
        &Selection::new()
            .with_prefix("var/lib/dpkg/info")
            .with_path(wanted),
    );
    let (owners, _, peak) = measure(|| FileOwners::find(&fs, [wanted]));
    assert_eq!(owners.owner(wanted), Some("hostile"));
    assert!(peak < MIB, "dpkg list: {peak} bytes at peak");
}
