//! Hostile layers, end to end: whatever a layer holds, the scan stays within
//! its budget and never calls an image `healthy` when something it selected
//! was left unread (issue 15, items 3, 4, 5 and 13; the same reproductions
//! at the level of the layer reader, with allocation counts, are in
//! `crates/trawl-layers/tests/budget.rs`).
//!
//! `trawl scan` runs on each hostile image as users run it, and its
//! peak memory is the kernel's count (`wait4`'s `ru_maxrss`).
//!
//! The package database is the one `dpkg` wrote on this (Debian) machine,
//! `/var/lib/dpkg/status`; the layers around it are built here.

#[path = "../crates/trawl-layers/tests/support/oci_layout.rs"]
mod oci_layout;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_layout::{E, tar_of, write_layout, write_layout_blobs};
use serde_json::json;
use sha2::{Digest, Sha256};
use trawl::inventory::InventoryWarning;
use trawl::{AdvisoryDb, ImageSource, Limits, Scanner, Verdict};

const OS_RELEASE: &[u8] = b"ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n";

/// The machine's dpkg status file (CI runs on Debian 12, with dpkg).
fn dpkg_status() -> Vec<u8> {
    std::fs::read("/var/lib/dpkg/status").expect("/var/lib/dpkg/status (a Debian machine)")
}

/// Advisories for Debian 12: `dpkg` (in every status file) is affected in
/// every version, so reading the status file gives a finding.
fn debian_feed(dir: &Path) -> AdvisoryDb {
    std::fs::write(
        dir.join("TRAWL-DPKG.json"),
        json!({"id": "TRAWL-DPKG", "modified": "2026-11-01T00:00:00Z",
               "affected": [{"package": {"ecosystem": "Debian:12", "name": "dpkg"},
                             "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]})
        .to_string(),
    )
    .unwrap();
    AdvisoryDb::from_osv_dirs(&[dir]).unwrap().0
}

/// An OCI layout of these layers; the source naming it.
fn image(dir: &Path, layers: &[Vec<u8>]) -> ImageSource {
    write_layout(&dir.join("layout"), layers);
    format!("oci-dir:{}:test", dir.join("layout").display())
        .parse()
        .unwrap()
}

/// Issue 15, item 5: a package database over the size limit was dropped
/// with a warning and the image reported healthy.
#[test]
fn a_package_database_over_the_size_limit_makes_the_scan_partial() {
    let status = dpkg_status();
    let tmp = tempfile::tempdir().unwrap();
    let feed = tmp.path().join("feed");
    std::fs::create_dir(&feed).unwrap();
    let source = image(
        tmp.path(),
        &[tar_of(&[
            E::File("etc/os-release", OS_RELEASE),
            E::File("var/lib/dpkg/status", &status),
        ])],
    );
    let scanner = Scanner::builder()
        .database(debian_feed(&feed))
        .build()
        .unwrap();
    // Read, the database gives a finding.
    let read = scanner.scan_blocking(&source).unwrap();
    assert_eq!(read.verdict, Verdict::Unhealthy);

    let limits = Limits {
        max_file_size: status.len() as u64 - 1,
        ..Limits::default()
    };
    let scanner = Scanner::builder()
        .database(debian_feed(&feed))
        .limits(limits)
        .build()
        .unwrap();
    let dropped = scanner.scan_blocking(&source).unwrap();
    assert_eq!(
        dropped.verdict,
        Verdict::Partial,
        "{}",
        dropped.verdict_reason
    );
    let scanned = scanner.inventory_blocking(&source).unwrap();
    let unreadable: Vec<&InventoryWarning> = scanned
        .inventory
        .warnings
        .iter()
        .filter(|w| w.makes_incomplete())
        .collect();
    assert_eq!(
        unreadable,
        [&InventoryWarning::UnreadableFile {
            path: "var/lib/dpkg/status".into(),
            layer: Some(read.image.layers[0].clone()),
            reason: format!(
                "{} bytes, over the {}-byte limit for one file",
                status.len(),
                status.len() - 1
            ),
        }]
    );
}

/// A gzip layer written entry by entry (never holding a large entry), and
/// the digest of its tar stream (the diff_id).
struct Layer {
    gz: flate2::write::GzEncoder<Vec<u8>>,
    tar: Sha256,
}

impl Write for Layer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tar.update(buf);
        self.gz.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Layer {
    fn new() -> Self {
        Layer {
            gz: flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best()),
            tar: Sha256::new(),
        }
    }

    fn header(&mut self, path: &str, size: u64, kind: tar::EntryType) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(kind);
        h.set_cksum();
        self.write_all(h.as_bytes()).unwrap();
        self
    }

    /// `start`, then `fill` up to `len` bytes in all, then the padding.
    fn content(&mut self, start: &[u8], len: u64, fill: u8) -> &mut Self {
        self.write_all(start).unwrap();
        let chunk = vec![fill; 1 << 20];
        let mut left = len - start.len() as u64;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            self.write_all(&chunk[..n]).unwrap();
            left -= n as u64;
        }
        let pad = (512 - len % 512) % 512;
        self.write_all(&vec![0; pad as usize]).unwrap();
        self
    }

    fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.header(path, data.len() as u64, tar::EntryType::Regular)
            .content(data, data.len() as u64, 0)
    }

    /// With the end-of-archive marker, or without (`cut`).
    fn finish(mut self, cut: bool) -> (Vec<u8>, String) {
        if !cut {
            self.write_all(&[0; 1024]).unwrap();
        }
        let diff_id = format!("sha256:{}", hex::encode(self.tar.finalize()));
        (self.gz.finish().unwrap(), diff_id)
    }
}

/// The base layer: the OS and a real dpkg database.
fn base_layer() -> (Vec<u8>, String) {
    let mut l = Layer::new();
    l.file("etc/os-release", OS_RELEASE)
        .file("var/lib/dpkg/status", &dpkg_status());
    l.finish(false)
}

/// The hostile reproductions of issue 15, each above the base layer.
fn hostile_layers() -> Vec<(&'static str, (Vec<u8>, String))> {
    let stanza = |name: &str| {
        format!(
            "Package: {name}\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\n"
        )
    };
    // Item 3: a symlink whose target has 80,000 components, where the
    // catalogers look for a database.
    let mut symlink = Layer::new();
    let target = format!("{}\0", "x/".repeat(80_000));
    symlink
        .header(
            "././@LongLink",
            target.len() as u64,
            tar::EntryType::GNULongLink,
        )
        .content(target.as_bytes(), target.len() as u64, 0)
        .header("var/lib/dpkg/status.d/linked", 0, tar::EntryType::Symlink);
    // Item 4: a 1 GiB GNU long name.
    let mut long_name = Layer::new();
    long_name
        .header("././@LongLink", 1 << 30, tar::EntryType::GNULongName)
        .content(b"", 1 << 30, b'a')
        .file("x", b"x");
    // Item 4: 4 x 256 MiB status.d files.
    let mut big_files = Layer::new();
    for i in 0..4 {
        let name = format!("pkg{i}");
        big_files
            .header(
                &format!("var/lib/dpkg/status.d/{name}"),
                256 << 20,
                tar::EntryType::Regular,
            )
            .content(stanza(&name).as_bytes(), 256 << 20, b'\n');
    }
    // Item 13: a status.d file whose header claims 8 GiB, a few bytes, and
    // a clean end of the gzip stream.
    let mut truncated = Layer::new();
    truncated
        .header(
            "var/lib/dpkg/status.d/evil",
            8 << 30,
            tar::EntryType::Regular,
        )
        .write_all(stanza("evil").as_bytes())
        .unwrap();
    vec![
        ("symlink-80000-components", symlink.finish(false)),
        ("gnu-long-name-1gib", long_name.finish(false)),
        ("status.d-4x256mib", big_files.finish(false)),
        ("ends-inside-an-entry", truncated.finish(true)),
    ]
}

/// The `trawl` binary of this build profile, built (or found up to date) by
/// cargo first; tests run `trawl scan`.
fn scan_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let mut cargo = Command::new(option_env!("CARGO").unwrap_or("cargo"));
    cargo.args(["build", "--quiet", "-p", "trawl-cli", "--bin", "trawl"]);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cargo.arg("--release");
    }
    if std::env::var_os("CI").is_some() {
        cargo.arg("--locked");
    }
    let status = cargo
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "building the trawl binary failed");
    profile_dir.join("trawl")
}

/// Runs `command` to its end; its exit code and peak RSS (KiB), from
/// `wait4`, which reports exactly that process. (Linux counts the spawning
/// process's peak at `exec` in the child's, so the figure is never below
/// this test's own, some 20 MiB: an upper bound, which is what is checked.)
fn run_measured(command: &mut Command) -> (i32, u64) {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain old data, for which all-zero bytes are valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not reaped elsewhere (`Child::wait`
        // is never called on it); both pointers are to live locals.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        assert_eq!(
            std::io::Error::last_os_error().kind(),
            std::io::ErrorKind::Interrupted
        );
    }
    drop(child);
    assert!(
        libc::WIFEXITED(status),
        "scan died: wait status {status:#x}"
    );
    (
        libc::WEXITSTATUS(status),
        u64::try_from(usage.ru_maxrss).unwrap_or(u64::MAX),
    )
}

/// Issue 15, items 3, 4 and 13 as users meet them: each hostile layer sits
/// above a real Debian base, and the advisories match nothing installed, so
/// the complete image is `healthy`. With the hostile layer the scan must
/// finish within 60 s and 256 MiB, and say `partial` (exit status 3).
/// Before, these took 91 s (item 3), 3 GiB (the long name), 1.3 GiB and
/// over five minutes (the status.d files), or passed unnoticed.
#[test]
fn hostile_layers_are_bounded_and_the_scan_is_partial() {
    let tmp = tempfile::tempdir().unwrap();
    let feed = tmp.path().join("feed");
    std::fs::create_dir(&feed).unwrap();
    std::fs::write(
        feed.join("TRAWL-OTHER.json"),
        json!({"id": "TRAWL-OTHER", "modified": "2026-11-01T00:00:00Z",
               "affected": [{"package": {"ecosystem": "Debian:12", "name": "not-installed"},
                             "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]})
        .to_string(),
    )
    .unwrap();
    let scan = scan_bin();
    let run = |layout: &Path| {
        let started = Instant::now();
        let (code, rss_kib) = run_measured(
            Command::new(&scan)
                .arg("scan")
                .arg("--osv")
                .arg(&feed)
                .arg(format!("oci-dir:{}:test", layout.display())),
        );
        (code, rss_kib, started.elapsed())
    };
    let clean = tmp.path().join("clean");
    write_layout_blobs(&clean, vec![base_layer()]);
    let (code, _, _) = run(&clean);
    assert_eq!(code, 0, "the base image alone is healthy");

    for (name, layer) in hostile_layers() {
        let layout = tmp.path().join(name);
        assert!(layer.0.len() < 2 << 20, "{name}: {} bytes", layer.0.len());
        write_layout_blobs(&layout, vec![base_layer(), layer]);
        let (code, rss_kib, took) = run(&layout);
        eprintln!(
            "{name}: exit status {code}, peak RSS {:.1} MiB, {took:.2?}",
            rss_kib as f64 / 1024.0
        );
        assert_eq!(code, 3, "{name}: exit status");
        assert!(
            rss_kib < 256 << 10,
            "{name}: peak RSS {} MiB",
            rss_kib >> 10
        );
        assert!(took < Duration::from_secs(60), "{name}: {took:?}");
    }
}
