//! Hostile images, scanned by `trawl scan` as a registry-side scanner
//! would run it. Each image is an OCI layout the test writes itself (tar and
//! gzip from the `tar` and `flate2` crates) around a small attack; every one
//! must be scanned within the resource bounds of issue 15:
//!
//! - the scan ends within [`MAX_WALL`];
//! - peak RSS stays under [`MAX_RSS`] (`wait4` on the child);
//! - temporary disk under [`MAX_TEMP`]: `TMPDIR` points at a fresh directory
//!   whose files, and the child's open files under it (deleted temporary
//!   files count), are measured while it runs; nothing is left behind;
//! - the JSON report stays under [`MAX_REPORT`];
//! - the valid packages are kept, the verdict is never `healthy` and the
//!   exit status never 0.
//!
//! To add an image: write a builder (`fn(&Path) -> Image`, using
//! [`oci_layout`], [`tar_of`] and friends, or raw tar bytes for a malformed
//! stream) and add a [`Case`] to [`cases`].

mod common;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

#[path = "../crates/trawl-layers/tests/support/oci_layout.rs"]
mod oci_layout_support;
#[path = "../crates/trawl-classify/tests/schema_check/mod.rs"]
mod schema_check;

const MAX_WALL: Duration = Duration::from_secs(60);
const MAX_RSS: u64 = 256 << 20;
const MAX_TEMP: u64 = 512 << 20;
const MAX_REPORT: u64 = 16 << 20;

/// What a builder made: the `scan` source and any extra arguments (feeds).
struct Image {
    source: String,
    args: Vec<String>,
}

/// What the scan of one image must show, besides the resource bounds.
struct Expect {
    /// `partial` or `unhealthy` (never `healthy`).
    verdict: &'static str,
    /// Package names the report must list.
    packages: &'static [&'static str],
    /// Package names it must not list.
    absent: &'static [&'static str],
    /// Text some warning (or the verdict reason) must contain.
    warning: Option<&'static str>,
    /// Also check the table output: only the table's own colour sequences.
    table: bool,
}

struct Case {
    name: &'static str,
    build: fn(&Path) -> Image,
    expect: Expect,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "rpmdb.sqlite whose Packages is a recursive view",
            build: recursive_view_rpmdb,
            expect: Expect {
                verdict: "partial",
                packages: &["libuuid"],
                absent: &[],
                warning: Some("Packages is a view, not a table"),
                table: false,
            },
        },
        Case {
            name: "30 MiB apk installed database of junk lines",
            build: junk_apk_installed,
            expect: Expect {
                verdict: "partial",
                packages: &["musl", "busybox", "zlib"],
                absent: &[],
                warning: Some("more skipped entries not listed"),
                table: false,
            },
        },
        Case {
            name: "dpkg status entry without a Status field",
            build: status_entry_without_status,
            expect: Expect {
                verdict: "unhealthy",
                packages: &["fdisk", "libc6"],
                absent: &["ghost-package"],
                warning: Some("ghost-package: no Status field"),
                table: false,
            },
        },
        Case {
            name: "dir: root file system whose dpkg status is a FIFO",
            build: fifo_dpkg_status,
            expect: Expect {
                verdict: "partial",
                packages: &["libc6"],
                absent: &[],
                warning: Some("FIFO"),
                table: false,
            },
        },
        Case {
            name: "control characters in package names",
            build: control_characters,
            expect: Expect {
                verdict: "unhealthy",
                packages: &["evil\x1b[2J\x1b]0;pwned\x07", "rev\u{202e}txt.exe"],
                absent: &[],
                warning: None,
                table: true,
            },
        },
        Case {
            name: "symlink target of 80,000 components",
            build: long_symlink,
            expect: layered_expect(),
        },
        Case {
            name: "1 GiB GNU long name",
            build: long_name,
            expect: layered_expect(),
        },
        Case {
            name: "4 x 256 MiB status.d files",
            build: big_files,
            expect: layered_expect(),
        },
        Case {
            name: "tar stream ending inside a status.d entry",
            build: ends_inside_an_entry,
            expect: layered_expect(),
        },
    ]
}

/// A hostile layer above a Debian base: the base's packages are kept, and
/// the scan is `partial`.
fn layered_expect() -> Expect {
    Expect {
        verdict: "partial",
        packages: &["dpkg", "libc6"],
        absent: &[],
        warning: None,
        table: false,
    }
}

#[test]
fn hostile_images_are_scanned_within_bounds() {
    let work = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (i, case) in cases().into_iter().enumerate() {
        let dir = work.path().join(format!("case{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let image = (case.build)(&dir);
        if let Err(e) = check(&case, &image, &dir) {
            failures.push(format!("{}: {e}", case.name));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Runs every check on one image; the first failure, in words.
fn check(case: &Case, image: &Image, dir: &Path) -> Result<(), String> {
    let mut args = image.args.clone();
    args.extend(["--format".into(), "json".into(), image.source.clone()]);
    let run = run_scan(&args, dir)?;
    eprintln!(
        "{}: exit {}, {:.2?}, peak RSS {:.1} MiB, peak temp {} B, report {} B",
        case.name,
        run.code,
        run.wall,
        run.max_rss as f64 / 1048576.0,
        run.peak_temp,
        run.stdout.len()
    );
    let expect = &case.expect;
    if run.max_rss >= MAX_RSS {
        return Err(format!("peak RSS {} bytes", run.max_rss));
    }
    if run.peak_temp >= MAX_TEMP {
        return Err(format!("{} bytes of temporary files", run.peak_temp));
    }
    if run.stdout.len() as u64 >= MAX_REPORT {
        return Err(format!("a report of {} bytes", run.stdout.len()));
    }
    let report: serde_json::Value = serde_json::from_slice(&run.stdout)
        .map_err(|e| format!("exit {}: no JSON report ({e}): {}", run.code, run.stderr))?;
    let invalid = schema_check::report_errors(&report);
    if !invalid.is_empty() {
        return Err(format!(
            "a report outside the schema: {}",
            invalid.join("; ")
        ));
    }
    let verdict = report["verdict"].as_str().unwrap_or_default();
    if verdict == "healthy" || verdict != expect.verdict {
        return Err(format!(
            "verdict {verdict} ({}), expected {}",
            report["verdict_reason"], expect.verdict
        ));
    }
    let expected_code = match verdict {
        "unhealthy" => 1,
        "partial" => 3,
        _ => unreachable!(),
    };
    if run.code != expected_code {
        return Err(format!("exit status {}: {}", run.code, run.stderr));
    }
    let names: Vec<&str> = report["packages"]
        .as_array()
        .map(|p| p.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    for name in expect.packages {
        if !names.contains(name) {
            return Err(format!("package {name:?} missing from {names:?}"));
        }
    }
    for name in expect.absent {
        if names.contains(name) {
            return Err(format!("package {name:?} listed"));
        }
    }
    if let Some(text) = expect.warning {
        let reason = report["verdict_reason"].as_str().unwrap_or_default();
        let warnings = report["warnings"].as_array().cloned().unwrap_or_default();
        if !reason.contains(text)
            && !warnings
                .iter()
                .any(|w| w.as_str().is_some_and(|w| w.contains(text)))
        {
            return Err(format!("no warning mentions {text:?}: {warnings:?}"));
        }
    }
    if expect.table {
        let mut args = image.args.clone();
        args.extend(["--format".into(), "table".into(), image.source.clone()]);
        let table = run_scan(&args, dir)?;
        let text = String::from_utf8(table.stdout).map_err(|e| e.to_string())?;
        if let Some(c) = text.chars().find(|&c| {
            (c.is_control() && c != '\n')
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
        }) {
            return Err(format!("raw {c:?} in the table:\n{text}"));
        }
        for name in expect.packages {
            let escaped = trawl::classify::escape_terminal(name);
            if !text.contains(&*escaped) {
                return Err(format!("{escaped} not in the table:\n{text}"));
            }
        }
        if table.stderr.chars().any(|c| c == '\x1b' || c == '\r') {
            return Err(format!("raw controls on stderr: {:?}", table.stderr));
        }
    }
    Ok(())
}

struct Run {
    code: i32,
    wall: Duration,
    max_rss: u64,
    peak_temp: u64,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs `scan` with `TMPDIR` in a fresh directory under `dir`, measuring
/// wall time, peak RSS and temporary disk; kills it past [`MAX_WALL`].
// The child is reaped by `wait4`, which `Child::wait` cannot replace: it
// gives no resource usage.
#[allow(clippy::zombie_processes)]
fn run_scan(args: &[String], dir: &Path) -> Result<Run, String> {
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    // Built (or found) before the clock starts: on a fresh checkout the
    // first call compiles `trawl`, which is no part of the scan's time.
    let bin = common::trawl_bin();
    let started = Instant::now();
    let mut command = Command::new(bin);
    command.arg("scan");
    command
        .args(args)
        .env("TMPDIR", &tmp)
        .env("SQLITE_TMPDIR", &tmp)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    // The child's ru_maxrss also counts the memory it ran in before exec:
    // with posix_spawn (vfork) that is this process's high-water mark, with
    // fork only its current size. A pre_exec hook makes std fork.
    // SAFETY: the hook does nothing, so it is async-signal-safe.
    unsafe { command.pre_exec(|| Ok(())) };
    let child = command.spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let mut peak_temp = 0;
    let mut killed = false;
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: pid is our child, not yet reaped; both pointers are valid.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break (status, usage);
        }
        assert_eq!(r, 0, "wait4: {}", std::io::Error::last_os_error());
        peak_temp = peak_temp.max(temp_usage(pid, &tmp));
        if started.elapsed() > MAX_WALL && !killed {
            // SAFETY: signalling our own unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = started.elapsed();
    let left: Vec<PathBuf> = walk(&tmp);
    std::fs::remove_dir_all(&tmp).unwrap();
    let stdout = std::fs::read(&out_path).unwrap();
    let stderr = String::from_utf8_lossy(&std::fs::read(&err_path).unwrap()).into_owned();
    if killed {
        return Err(format!(
            "still running after {MAX_WALL:?} (killed); peak temp {peak_temp} B"
        ));
    }
    if !left.is_empty() {
        return Err(format!("temporary files left behind: {left:?}"));
    }
    Ok(Run {
        code: if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        },
        wall,
        max_rss: usage.ru_maxrss as u64 * 1024,
        peak_temp,
        stdout,
        stderr,
    })
}

/// Disk used under `tmp`: its files, and the files `pid` holds open there
/// (a deleted temporary file still takes space).
fn temp_usage(pid: libc::pid_t, tmp: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total: u64 = walk(tmp)
        .iter()
        .filter_map(|p| std::fs::symlink_metadata(p).ok())
        .map(|m| m.blocks() * 512)
        .sum();
    if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if target.starts_with(tmp)
                && target.to_string_lossy().ends_with(" (deleted)")
                && let Ok(m) = std::fs::metadata(fd.path())
            {
                total += m.blocks() * 512;
            }
        }
    }
    total
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}

// ---- Building images ------------------------------------------------------

/// One tar entry.
#[allow(dead_code)]
enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
}

/// A well-formed tar stream of `entries`.
fn tar_of(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        match e {
            Entry::File(path, data) => {
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                h.set_cksum();
                b.append_data(&mut h, path, *data).unwrap();
            }
            Entry::Dir(path) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_mode(0o755);
                h.set_cksum();
                b.append_data(&mut h, path, std::io::empty()).unwrap();
            }
            Entry::Symlink(path, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.set_mode(0o777);
                b.append_link(&mut h, path, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn put_blob(layout: &Path, data: &[u8]) -> String {
    let digest = sha256(data);
    std::fs::write(layout.join("blobs/sha256").join(&digest[7..]), data).unwrap();
    digest
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// Writes an OCI layout under `dir/oci` whose layers are these tar streams
/// (well-formed or not), gzipped, base first; returns its `scan` source.
fn oci_layout(dir: &Path, layers: &[Vec<u8>]) -> String {
    let layout = dir.join("oci");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let layers: Vec<(String, String, usize)> = layers
        .iter()
        .map(|tar| {
            let gz = gzip(tar);
            (put_blob(&layout, &gz), sha256(tar), gz.len())
        })
        .collect();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.1.clone()).collect::<Vec<_>>()},
    })
    .to_string();
    let config_digest = put_blob(&layout, config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": layers.iter().map(|(digest, _, size)| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size})).collect::<Vec<_>>(),
    })
    .to_string();
    let manifest_digest = put_blob(&layout, manifest.as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
                       "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": "test"}}],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    format!("oci-dir:{}:test", layout.display())
}

/// A directory of OSV records, each `(id, Debian:12 source package)`
/// affecting every version; returns the `--osv` arguments.
fn osv_feed(dir: &Path, records: &[(&str, &str)]) -> Vec<String> {
    let feed = dir.join("osv");
    std::fs::create_dir_all(&feed).unwrap();
    for (id, package) in records {
        let record = serde_json::json!({
            "schema_version": "1.6.0", "id": id, "modified": "2026-11-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "Debian:12", "name": package},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]
        });
        std::fs::write(feed.join(format!("{id}.json")), record.to_string()).unwrap();
    }
    vec!["--osv".into(), feed.display().to_string()]
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/fixtures")
            .join(path),
    )
    .unwrap()
}

const DEBIAN_12: &[u8] =
    b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n";

/// A 4 KB `rpmdb.sqlite`, written by SQLite, whose `Packages` is a
/// recursive view: read naively it never ends and fills the disk with the
/// sorter's temporary files. Beside it, a stale Berkeley DB `Packages`
/// (real, from RHEL 8) whose package must still be listed.
fn recursive_view_rpmdb(dir: &Path) -> Image {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE VIEW Packages AS \
         WITH RECURSIVE r(hnum, blob) AS (SELECT 1, zeroblob(1000) UNION ALL SELECT hnum + 1, blob FROM r) \
         SELECT hnum, blob FROM r;",
    )
    .unwrap();
    let sqlite = conn.serialize("main").unwrap().to_vec();
    let bdb = fixture("rpm/libuuid-bdb/Packages");
    let layer = tar_of(&[
        Entry::File(
            "etc/os-release",
            b"ID=\"rhel\"\nVERSION_ID=\"8.8\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 8.8\"\n",
        ),
        Entry::File("var/lib/rpm/rpmdb.sqlite", &sqlite),
        Entry::File("var/lib/rpm/Packages", &bdb),
    ]);
    Image {
        source: oci_layout(dir, &[layer]),
        args: Vec::new(),
    }
}

/// 30 MiB of junk lines in apk's installed database, with real records at
/// both ends (2.6 million warnings, 2.7 GiB RSS and an 859 MB report before
/// the per-database cap, and a healthy exit 0).
fn junk_apk_installed(dir: &Path) -> Image {
    let mut db = b"P:musl\nV:1.2.5-r0\nA:x86_64\no:musl\n\nP:busybox\nV:1.36.1-r29\n\n".to_vec();
    let mut n = 0usize;
    while db.len() < 30 << 20 {
        writeln!(db, "junk line {n}").unwrap();
        n += 1;
    }
    db.extend_from_slice(b"\nP:zlib\nV:1.3.1-r1\n");
    let layer = tar_of(&[
        Entry::File(
            "etc/os-release",
            b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\n",
        ),
        Entry::File("lib/apk/db/installed", &db),
    ]);
    Image {
        source: oci_layout(dir, &[layer]),
        args: Vec::new(),
    }
}

/// A real dpkg status file (from trivy's test data) with one more entry
/// without `Status`, which dpkg does not list as installed, and an advisory
/// for it: it must not be listed or found.
fn status_entry_without_status(dir: &Path) -> Image {
    let txtar = String::from_utf8(fixture("dpkg/trivy-valid.txtar")).unwrap();
    let start =
        txtar.find("-- var/lib/dpkg/status --\n").unwrap() + "-- var/lib/dpkg/status --\n".len();
    let rest = &txtar[start..];
    let status = &rest[..rest.find("\n-- ").map_or(rest.len(), |i| i + 1)];
    let status = format!(
        "{status}\nPackage: ghost-package\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: x <x@example.org>\nDescription: ghost\n"
    );
    let layer = tar_of(&[
        Entry::File("etc/os-release", DEBIAN_12),
        Entry::File("var/lib/dpkg/status", status.as_bytes()),
    ]);
    Image {
        source: oci_layout(dir, &[layer]),
        args: osv_feed(
            dir,
            &[("TRAWL-GHOST", "ghost-package"), ("TRAWL-GLIBC", "glibc")],
        ),
    }
}

/// A `dir:` root file system whose `var/lib/dpkg/status` is a FIFO (made
/// with `mkfifo`; opening it for reading would block until a writer comes),
/// beside a distroless `status.d/` entry: the FIFO is skipped with a
/// warning, the entry is listed, and the scan is partial.
fn fifo_dpkg_status(dir: &Path) -> Image {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("var/lib/dpkg/status.d")).unwrap();
    std::fs::write(root.join("etc/os-release"), DEBIAN_12).unwrap();
    std::fs::write(
        root.join("var/lib/dpkg/status.d/libc6"),
        "Package: libc6\nVersion: 2.36-9+deb12u7\nArchitecture: amd64\nSource: glibc\n",
    )
    .unwrap();
    let status = Command::new("mkfifo")
        .arg(root.join("var/lib/dpkg/status"))
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo: {status}");
    Image {
        source: format!("dir:{}", root.display()),
        args: osv_feed(dir, &[("TRAWL-ZLIB", "zlib")]),
    }
}

/// Package names with terminal escape sequences, a carriage return, a bell,
/// the C1 CSI and a right-to-left override, each affected by an advisory so
/// that it shows in every part of the table.
fn control_characters(dir: &Path) -> Image {
    let names = [
        "evil\x1b[2J\x1b]0;pwned\x07",
        "hidden\rlibc6",
        "bell\x07",
        "c1\u{9b}31m",
        "rev\u{202e}txt.exe",
    ];
    let mut status = String::new();
    for (i, name) in names.iter().enumerate() {
        status.push_str(&format!(
            "Package: {name}\nStatus: install ok installed\nVersion: 1.{i}-1\nArchitecture: amd64\u{2066}\nSource: glibc\n\n"
        ));
    }
    let layer = tar_of(&[
        Entry::File("etc/os-release", DEBIAN_12),
        Entry::File("var/lib/dpkg/status", status.as_bytes()),
    ]);
    Image {
        source: oci_layout(dir, &[layer]),
        args: osv_feed(dir, &[("TRAWL-\x1b[31mRED", "glibc")]),
    }
}

/// The hostile layers of issue 15, items 3, 4 and 13, each under 2 MiB of
/// gzip, above a real Debian base whose complete scan is healthy.
#[derive(Clone, Copy)]
enum HostileLayer {
    /// Item 3: a symlink whose target has 80,000 components (91 s before).
    LongSymlink,
    /// Item 4: a 1 GiB GNU long name (3 GiB RSS before).
    LongName,
    /// Item 4: 4 x 256 MiB `status.d` files (1.3 GiB and minutes before).
    BigFiles,
    /// Item 13: a `status.d` file whose header claims 8 GiB, a few bytes and
    /// a clean end of the gzip stream (no warning, `healthy`, before).
    EndsInsideAnEntry,
}

/// The machine's dpkg status file (CI runs on Debian 12, with dpkg).
fn dpkg_status() -> Vec<u8> {
    std::fs::read("/var/lib/dpkg/status").expect("/var/lib/dpkg/status (a Debian machine)")
}

/// The base layer and `which` above it, with an advisory that matches
/// nothing installed: without the hostile layer the image is healthy.
fn layered(dir: &Path, which: HostileLayer) -> Image {
    let layer = hostile_layer(which);
    assert!(layer.0.len() < 2 << 20, "{} bytes", layer.0.len());
    let layout = dir.join("oci");
    oci_layout_support::write_layout_blobs(&layout, vec![base_layer(), layer]);
    Image {
        source: format!("oci-dir:{}:test", layout.display()),
        args: osv_feed(dir, &[("TRAWL-OTHER", "not-installed")]),
    }
}

fn long_symlink(dir: &Path) -> Image {
    layered(dir, HostileLayer::LongSymlink)
}

fn long_name(dir: &Path) -> Image {
    layered(dir, HostileLayer::LongName)
}

fn big_files(dir: &Path) -> Image {
    layered(dir, HostileLayer::BigFiles)
}

fn ends_inside_an_entry(dir: &Path) -> Image {
    layered(dir, HostileLayer::EndsInsideAnEntry)
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
    l.file("etc/os-release", DEBIAN_12)
        .file("var/lib/dpkg/status", &dpkg_status());
    l.finish(false)
}

/// The hostile reproductions of issue 15, each above the base layer.
fn hostile_layer(which: HostileLayer) -> (Vec<u8>, String) {
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
    match which {
        HostileLayer::LongSymlink => symlink.finish(false),
        HostileLayer::LongName => long_name.finish(false),
        HostileLayer::BigFiles => big_files.finish(false),
        HostileLayer::EndsInsideAnEntry => truncated.finish(true),
    }
}

/// The control of the layered cases: the Debian base alone, with the same
/// advisories, is `healthy` (exit status 0), so their `partial` comes from
/// the hostile layer.
#[test]
fn the_base_of_the_layered_images_is_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("oci");
    oci_layout_support::write_layout_blobs(&layout, vec![base_layer()]);
    let mut args = osv_feed(dir.path(), &[("TRAWL-OTHER", "not-installed")]);
    args.extend([
        "--format".into(),
        "json".into(),
        format!("oci-dir:{}:test", layout.display()),
    ]);
    let run = run_scan(&args, dir.path()).unwrap();
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    schema_check::assert_valid_report(&report);
    assert_eq!(report["verdict"], "healthy", "{}", report["verdict_reason"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}
