//! Hostile paths: a FIFO, a device or a directory where a feed file or the
//! database is expected is refused at once (a FIFO with no writer would block
//! an ordinary `open` forever), and a database file rewritten or truncated in
//! place while open makes queries fail with a typed error, never a crash
//! (it is read with `read(2)`, not through a memory mapping).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use trawl_advisory::{
    AdvisoryStore, FeedError, FeedPaths, PackageQuery, StoreError, WarningReason, debian_tracker,
    osv, secdb,
};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `mkfifo`, the real tool.
fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Runs `f` on another thread and fails the test if it does not return within
/// 10 s (instead of hanging the suite when a FIFO blocks).
fn promptly<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = send.send(f());
    });
    receive
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{what} did not return within 10 s"))
}

#[test]
fn a_fifo_given_as_a_feed_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("feed.json");
    mkfifo(&fifo);

    let path = fifo.clone();
    let err = promptly("osv::load_file", move || osv::load_file(&path)).expect_err("a FIFO");
    assert!(
        matches!(&err, FeedError::NotARegularFile { path, kind: "FIFO" } if *path == fifo),
        "{err}"
    );
    assert!(err.to_string().contains(&fifo.display().to_string()));

    let path = fifo.clone();
    let err = promptly("debian_tracker::load_file", move || {
        debian_tracker::load_file(&path)
    })
    .expect_err("a FIFO");
    assert!(
        matches!(&err, FeedError::NotARegularFile { kind: "FIFO", .. }),
        "{err}"
    );

    let path = fifo.clone();
    let err = promptly("secdb::load_path", move || secdb::load_path(&path)).expect_err("a FIFO");
    assert!(
        matches!(&err, FeedError::NotARegularFile { kind: "FIFO", .. }),
        "{err}"
    );

    // A character device is no feed either.
    let err = debian_tracker::load_file("/dev/null").expect_err("a device");
    assert!(
        matches!(
            &err,
            FeedError::NotARegularFile {
                kind: "character device",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_fifo_inside_a_feed_directory_is_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let osv_dir = dir.path().join("osv");
    std::fs::create_dir(&osv_dir).unwrap();
    for entry in std::fs::read_dir(fixtures().join("osv/debian")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), osv_dir.join(entry.file_name())).unwrap();
    }
    let fifo = osv_dir.join("AAAA-fifo.json");
    mkfifo(&fifo);
    let intact = osv::load_dir(fixtures().join("osv/debian")).unwrap();
    let load = promptly("osv::load_dir", move || osv::load_dir(&osv_dir)).unwrap();
    assert_eq!(load.advisories.len(), intact.advisories.len());
    assert!(
        load.warnings.iter().any(|w| w.path.as_deref() == Some(&*fifo)
            && matches!(&w.reason, WarningReason::Unreadable { message } if message.contains("FIFO"))),
        "{:?}",
        load.warnings
    );

    let secdb_dir = dir.path().join("secdb");
    std::fs::create_dir(&secdb_dir).unwrap();
    std::fs::copy(
        shared().join("secdb/v3.4/main.yaml"),
        secdb_dir.join("main.yaml"),
    )
    .unwrap();
    let fifo = secdb_dir.join("community.json");
    mkfifo(&fifo);
    let feed = promptly("secdb::load_path", move || secdb::load_path(&secdb_dir)).unwrap();
    assert_eq!(feed.files, 1);
    assert!(!feed.records.is_empty());
    assert!(
        feed.warnings
            .iter()
            .any(|w| w.path.as_deref() == Some(&*fifo)),
        "{:?}",
        feed.warnings
    );
}

#[test]
fn a_fifo_device_or_directory_is_no_database() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("trawl.db");
    mkfifo(&fifo);
    let path = fifo.clone();
    let err =
        promptly("AdvisoryStore::open", move || AdvisoryStore::open(&path)).expect_err("a FIFO");
    assert!(
        matches!(&err, StoreError::NotARegularFile { path, kind: "FIFO" } if *path == fifo),
        "{err}"
    );
    let err = AdvisoryStore::open("/dev/zero").expect_err("a device");
    assert!(
        matches!(
            &err,
            StoreError::NotARegularFile {
                kind: "character device",
                ..
            }
        ),
        "{err}"
    );
    let err = AdvisoryStore::open(dir.path()).expect_err("a directory");
    assert!(
        matches!(
            &err,
            StoreError::NotARegularFile {
                kind: "directory",
                ..
            }
        ),
        "{err}"
    );
}

fn build(dir: &Path) -> PathBuf {
    let feeds = FeedPaths {
        osv_dirs: vec![fixtures().join("osv/debian")],
        secdb_paths: vec![shared().join("secdb")],
        debian_tracker_files: vec![fixtures().join("debian-tracker/tracker.json")],
        ghsa_paths: vec![],
    };
    let out = dir.join("trawl.db");
    AdvisoryStore::build(&feeds, &out).expect("store builds");
    out
}

const QUERIES: [PackageQuery<'static>; 3] = [
    PackageQuery {
        ecosystem: "Alpine:v3.4",
        name: "openssl",
        version: "1.0.2h-r1",
    },
    PackageQuery {
        ecosystem: "Debian:12",
        name: "glibc",
        version: "2.36-9+deb12u1",
    },
    PackageQuery {
        ecosystem: "Alpine:v3.4",
        name: "musl",
        version: "1.1.14-r9",
    },
];

/// Rewrites `path` in place (same inode): truncates it, then writes `bytes`.
fn rewrite_in_place(path: &Path, bytes: &[u8]) {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .unwrap();
    file.write_all(bytes).unwrap();
    file.sync_all().unwrap();
}

/// Opens the store, reads, lets `change` write to the file in place, then
/// queries again: every answer is a typed error, the process lives on.
fn survives(change: impl FnOnce(&Path, &[u8])) -> Result<AdvisoryStore, StoreError> {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    let store = AdvisoryStore::open(&path).unwrap();
    for query in &QUERIES {
        store.matches(query).expect("intact store answers");
    }
    assert!(!store.has_changed());
    assert!(store.has_ecosystem("Alpine:v3.4"));

    // File times tick coarsely (a few ms): let the write get a later one.
    std::thread::sleep(Duration::from_millis(50));
    change(&path, &bytes);
    for round in 0..3 {
        for query in &QUERIES {
            let err = store
                .matches(query)
                .expect_err("a file changed in place is not read on");
            assert!(
                matches!(&err, StoreError::Changed { path: p } if *p == path),
                "round {round}, {query:?}: {err}"
            );
            assert!(err.to_string().contains(&path.display().to_string()));
        }
    }
    assert!(store.has_changed());
    assert!(
        !store.has_ecosystem("Alpine:v3.4"),
        "a changed store vouches for nothing"
    );
    assert!(matches!(store.verify(), Err(StoreError::Changed { .. })));
    drop(store);
    // Opening it again reads what is there now.
    AdvisoryStore::open(&path)
}

#[test]
fn a_database_rewritten_in_place_fails_queries_cleanly() {
    survives(|path, bytes| {
        // Same length, other bytes: the pages after the header scrambled.
        let mut other = bytes.to_vec();
        for (i, b) in other.iter_mut().enumerate().skip(100) {
            *b ^= (i as u8) | 1;
        }
        rewrite_in_place(path, &other);
    })
    .expect_err("scrambled pages are refused on open");
}

#[test]
fn a_database_truncated_in_place_fails_queries_cleanly() {
    let err = survives(|path, bytes| rewrite_in_place(path, &bytes[..bytes.len() / 2]))
        .expect_err("half a file is refused on open");
    assert!(matches!(err, StoreError::Truncated { .. }), "{err}");
}

#[test]
fn a_database_replaced_by_another_in_place_fails_queries_cleanly() {
    // `cp other.db trawl.db`: a valid database written over the open one.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let only_osv = FeedPaths {
        osv_dirs: vec![fixtures().join("osv/debian")],
        ..FeedPaths::default()
    };
    let other_db = other.join("trawl.db");
    AdvisoryStore::build(&only_osv, &other_db).unwrap();
    let other_bytes = std::fs::read(&other_db).unwrap();
    let reopened = survives(move |path, _| rewrite_in_place(path, &other_bytes))
        .expect("the new database opens anew");
    assert!(reopened.matches(&QUERIES[0]).unwrap().is_empty());
    assert!(!reopened.matches(&QUERIES[1]).unwrap().is_empty());
}

#[test]
fn a_database_replaced_by_rename_keeps_serving_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path());
    let store = AdvisoryStore::open(&path).unwrap();
    let before = store.matches(&QUERIES[0]).unwrap();
    assert!(!before.is_empty());
    let only_osv = FeedPaths {
        osv_dirs: vec![fixtures().join("osv/debian")],
        ..FeedPaths::default()
    };
    AdvisoryStore::build(&only_osv, &path).unwrap();
    assert!(!store.has_changed(), "the opened file itself is untouched");
    for _ in 0..200 {
        assert_eq!(store.matches(&QUERIES[0]).unwrap().len(), before.len());
    }
}
