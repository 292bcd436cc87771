//! A `dir:` root file system with a FIFO, a socket or a device where a package
//! database is expected (issue 15, item 11): the walk never opens it, lists it
//! as dropped with a warning, and reads the rest. Real FIFOs, made with
//! `mkfifo`; each walk runs on its own thread under a bound that only guards
//! against a hang.

use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use trawl_layers::{Limits, MergedFs, Selection};

fn mkfifo(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}: {status}", path.display());
}

/// `read_rootfs` on its own thread; fails if it has not returned in 20 s.
fn read_promptly(root: &Path, selection: Selection) -> MergedFs {
    let (tx, rx) = mpsc::channel();
    let root = root.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(trawl_layers::read_rootfs(
            &root,
            &selection,
            &Limits::default(),
        ));
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("read_rootfs still blocked after 20 s")
        .unwrap()
}

fn assert_dropped_with_warning(fs: &MergedFs, path: &str, kind: &str) {
    let dropped: Vec<_> = fs.dropped().map(|d| (d.path, d.reason)).collect();
    assert!(
        dropped
            .iter()
            .any(|(p, reason)| *p == path && reason.contains(kind)),
        "{path} not dropped as a {kind}: {dropped:?}"
    );
    assert!(
        fs.warnings().iter().any(|w| {
            let text = w.to_string();
            text.contains(path) && text.contains(kind)
        }),
        "no warning about {path}: {:?}",
        fs.warnings()
    );
    assert!(fs.file(path).is_none_or(|f| f.data.is_empty()));
}

fn tree(root: &Path) {
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\n",
    )
    .unwrap();
    mkfifo(&root.join("var/lib/dpkg/status"));
    // A socket and a device node need privileges or a listener; a FIFO under
    // status.d/ stands for the rest.
    mkfifo(&root.join("var/lib/dpkg/status.d/base"));
}

#[test]
fn fifo_package_databases_are_dropped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    tree(root);
    let selection = Selection::new()
        .with_path("etc/os-release")
        .with_path("var/lib/dpkg/status")
        .with_prefix("var/lib/dpkg/status.d");
    let fs = read_promptly(root, selection);
    assert_dropped_with_warning(&fs, "var/lib/dpkg/status", "FIFO");
    assert_dropped_with_warning(&fs, "var/lib/dpkg/status.d/base", "FIFO");
    let os_release = fs.file("etc/os-release").expect("os-release read");
    assert!(os_release.data.starts_with(b"ID=debian"));
}

#[test]
fn fifo_found_by_a_whole_tree_walk_is_dropped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    tree(root);
    // A glob makes the walk visit the whole tree.
    let selection = Selection::new()
        .with_path("etc/os-release")
        .with_glob("var/lib/dpkg/stat*");
    let fs = read_promptly(root, selection);
    assert_dropped_with_warning(&fs, "var/lib/dpkg/status", "FIFO");
    assert!(fs.file("etc/os-release").is_some());
}
