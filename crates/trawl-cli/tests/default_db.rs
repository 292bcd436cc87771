//! The default advisory database: `trawl scan` finds it through `TRAWL_DB`,
//! `XDG_CACHE_HOME` or `HOME` (a real database built by `trawl db build`),
//! shows its age and warns when it is older than `--max-db-age`, says in one
//! line how to get one when there is none (verdict `unsupported`), needs none
//! for `--inventory-only`; and `trawl db update` with no feed arguments
//! fetches every default ecosystem (from a loopback server standing in for
//! osv.dev and the Debian tracker) into the default path.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

mod common;

use common::{Log, Reply, debian, text};

const BIN: &str = env!("CARGO_BIN_EXE_trawl");

/// `trawl ARGS` with exactly the environment variables given for the
/// database's location (`TRAWL_DB`, `XDG_CACHE_HOME`, `HOME`), the others
/// removed.
fn trawl_with(env: &[(&str, &Path)], args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args).env_remove("NO_COLOR");
    for name in ["TRAWL_DB", "XDG_CACHE_HOME", "HOME", "SOURCE_DATE_EPOCH"] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

/// An OSV directory with one record for the Debian image's tar, fixed in a
/// later version: a database built from it makes the scan unhealthy.
fn osv_dir() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let out = trawl_with(
            &[],
            &["scan", "--inventory-only", "--format", "json", &debian()],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let inventory: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let tar = inventory["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["source_name"] == "tar")
            .expect("the Debian image has tar");
        let version = tar["source_version"].as_str().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let osv = dir.path().join("osv");
        std::fs::create_dir(&osv).unwrap();
        let record = serde_json::json!({
            "id": "TRAWL-TAR", "modified": "2026-11-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "Debian:12", "name": "tar"},
                "ranges": [{"type": "ECOSYSTEM",
                    "events": [{"introduced": "0"}, {"fixed": format!("{version}+trawl1")}]}]}]
        });
        std::fs::write(osv.join("TRAWL-TAR.json"), record.to_string()).unwrap();
        (dir, osv)
    })
    .1
}

/// Builds a database from [`osv_dir`] at `path` with `trawl db build`, its
/// build time pinned by `SOURCE_DATE_EPOCH` when given.
fn build_db(path: &Path, epoch: Option<u64>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut command = Command::new(BIN);
    command.args([
        "db",
        "build",
        "--osv",
        osv_dir().to_str().unwrap(),
        "-o",
        path.to_str().unwrap(),
    ]);
    match epoch {
        Some(epoch) => command.env("SOURCE_DATE_EPOCH", epoch.to_string()),
        None => command.env_remove("SOURCE_DATE_EPOCH"),
    };
    let out = command.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Scans the Debian image as JSON; returns the exit status, the report and stderr.
fn scan_json(env: &[(&str, &Path)], extra: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let image = debian();
    let mut args = vec!["scan", "--format", "json"];
    args.extend(extra);
    args.push(&image);
    let out = trawl_with(env, &args);
    let stderr = text(&out.stderr);
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {} / {stderr}", text(&out.stdout)));
    (out.status.code(), report, stderr)
}

#[test]
fn the_default_database_is_trawl_db_then_xdg_cache_home_then_home() {
    let dir = tempfile::tempdir().unwrap();
    let (explicit, xdg, home) = (
        dir.path().join("explicit/my.db"),
        dir.path().join("xdg"),
        dir.path().join("home"),
    );
    let (explicit, xdg, home) = (explicit.as_path(), xdg.as_path(), home.as_path());
    build_db(explicit, None);
    build_db(&xdg.join("trawl/trawl.db"), None);
    build_db(&home.join(".cache/trawl/trawl.db"), None);

    let cases: [(&[(&str, &Path)], PathBuf); 3] = [
        (
            &[
                ("TRAWL_DB", explicit),
                ("XDG_CACHE_HOME", xdg),
                ("HOME", home),
            ],
            explicit.to_path_buf(),
        ),
        (
            &[("XDG_CACHE_HOME", xdg), ("HOME", home)],
            xdg.join("trawl/trawl.db"),
        ),
        (&[("HOME", home)], home.join(".cache/trawl/trawl.db")),
    ];
    for (env, expected) in cases {
        let (code, report, stderr) = scan_json(env, &[]);
        assert_eq!(
            code,
            Some(1),
            "unhealthy from {}: {stderr}",
            expected.display()
        );
        assert_eq!(report["findings"][0]["id"], "TRAWL-TAR");
        assert_eq!(
            report["advisory_database"]["path"],
            expected.to_str().unwrap(),
            "{env:?}"
        );
        // Fresh: its age is shown, no warning.
        assert!(report["advisory_database"]["age_seconds"].as_u64().unwrap() < 3600);
        assert!(report["advisory_database"]["built_at"].is_string());
        assert!(!stderr.contains("old (built"), "{stderr}");
    }

    // --db and feed options still win over the default.
    let (code, report, _) = scan_json(
        &[("TRAWL_DB", Path::new("/nonexistent/trawl.db"))],
        &["--db", explicit.to_str().unwrap()],
    );
    assert_eq!(code, Some(1));
    assert_eq!(
        report["advisory_database"]["path"],
        explicit.to_str().unwrap()
    );
    let empty = dir.path().join("empty-osv");
    std::fs::create_dir(&empty).unwrap();
    let (code, report, _) = scan_json(
        &[("TRAWL_DB", explicit)],
        &["--osv", empty.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "the feed given, not the default database");
    assert!(report.get("advisory_database").is_none());

    // The table ends with the database and its age.
    let out = trawl_with(&[("TRAWL_DB", explicit)], &["scan", &debian()]);
    assert_eq!(out.status.code(), Some(1));
    let table = text(&out.stdout);
    assert!(
        table.contains(&format!(
            "Advisory database: {} (built ",
            explicit.display()
        )),
        "{table}"
    );
}

#[test]
fn an_old_database_is_warned_about_in_the_report_and_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    let built = now() - 10 * 86_400;
    build_db(&db, Some(built));
    let info = trawl_with(&[], &["db", "info", db.to_str().unwrap()]);
    assert!(info.status.success(), "{}", text(&info.stderr));
    let expected_time = chrono_free_rfc3339(built);
    assert!(
        text(&info.stdout).contains(&format!("built at        {expected_time}")),
        "{}",
        text(&info.stdout)
    );

    let env: &[(&str, &Path)] = &[("TRAWL_DB", db.as_path())];
    let (code, report, stderr) = scan_json(env, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(report["advisory_database"]["built_at"], expected_time);
    let age = report["advisory_database"]["age_seconds"].as_u64().unwrap();
    assert!((10 * 86_400..11 * 86_400).contains(&age), "{age}");
    let warnings = report["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("is 10d 0h old")),
        "{warnings:?}"
    );
    assert!(stderr.contains("note: advisory database"), "{stderr}");
    assert!(stderr.contains("--max-db-age 5d"), "{stderr}");

    // A larger limit, or 0, keeps quiet.
    for limit in ["30d", "0"] {
        let (code, report, stderr) = scan_json(env, &["--max-db-age", limit]);
        assert_eq!(code, Some(1));
        assert!(!stderr.contains("old (built"), "{limit}: {stderr}");
        let warnings = report["warnings"].as_array().unwrap();
        assert!(
            !warnings
                .iter()
                .any(|w| w.as_str().unwrap().contains("old (built")),
            "{limit}: {warnings:?}"
        );
    }
    // A smaller one warns sooner; a bad one is a usage error.
    let (_, _, stderr) = scan_json(env, &["--max-db-age", "9d"]);
    assert!(stderr.contains("--max-db-age 9d"), "{stderr}");
    let out = trawl_with(env, &["scan", "--max-db-age", "5 days", &debian()]);
    assert_eq!(out.status.code(), Some(2));
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix time `t` (the civil-from-days algorithm,
/// independently of the binary's chrono).
fn chrono_free_rfc3339(t: u64) -> String {
    let (days, secs) = ((t / 86_400) as i64, t % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[test]
fn without_a_database_one_line_says_how_to_get_one_and_the_verdict_is_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let expected = home.join(".cache/trawl/trawl.db");
    let home = home.as_path();
    let (code, report, stderr) = scan_json(&[("HOME", home)], &[]);
    assert_eq!(code, Some(0), "unsupported exits 0: {stderr}");
    assert_eq!(report["verdict"], "unsupported");
    assert!(report.get("advisory_database").is_none());
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert_eq!(
        lines[0],
        format!(
            "note: no advisory database at {}: run `trawl db update` (or pass --db/--osv)",
            expected.display()
        )
    );
    // The table says unsupported too, never healthy.
    let out = trawl_with(&[("HOME", home)], &["scan", &debian()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        !text(&out.stdout).contains("HEALTHY"),
        "{}",
        text(&out.stdout)
    );

    // Nothing says where the database would be: still one line.
    let (code, report, stderr) = scan_json(&[], &[]);
    assert_eq!(code, Some(0));
    assert_eq!(report["verdict"], "unsupported");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("trawl db update"), "{stderr}");
}

#[test]
fn inventory_only_needs_no_database() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let env: &[(&str, &Path)] = &[("TRAWL_DB", missing.as_path())];
    let out = trawl_with(
        env,
        &["scan", "--inventory-only", "--format", "json", &debian()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let inventory: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!inventory["packages"].as_array().unwrap().is_empty());
}

// ---- trawl db update with no feed arguments ---------------------------------

/// A loopback HTTP server standing in for osv.dev and the Debian tracker:
/// `/Debian/all.zip` holds [`osv_dir`]'s record, every other `/*/all.zip` an
/// empty archive, `/tracker.json` an empty tracker; anything else is 404.
/// Logs the requests.
fn serve_feeds() -> (String, Log) {
    let zip = |with_record: bool| {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        if with_record {
            zip.start_file("TRAWL-TAR.json", zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(&std::fs::read(osv_dir().join("TRAWL-TAR.json")).unwrap())
                .unwrap();
        }
        zip.finish().unwrap().into_inner()
    };
    let (debian, empty) = (zip(true), zip(false));
    common::serve(move |request| {
        let body: Option<&[u8]> = match request.path.as_str() {
            "/Debian/all.zip" => Some(debian.as_slice()),
            "/tracker.json" => Some(&b"{}"[..]),
            p if p.ends_with("/all.zip") => Some(empty.as_slice()),
            _ => None,
        };
        match body {
            Some(body) => Reply {
                status: 200,
                headers: String::new(),
                body: body.to_vec(),
            },
            None => Reply {
                status: 404,
                headers: String::new(),
                body: b"not found".to_vec(),
            },
        }
    })
}

#[test]
fn db_update_without_feed_arguments_fetches_every_default_ecosystem_into_the_default_path() {
    let (base, paths) = serve_feeds();
    let dir = tempfile::tempdir().unwrap();
    let xdg = dir.path().join("cache");
    let xdg = xdg.as_path();
    let env: &[(&str, &Path)] = &[("XDG_CACHE_HOME", xdg)];
    let tracker = format!("{base}/tracker.json");
    let out = trawl_with(
        env,
        &[
            "db",
            "update",
            "--osv-base",
            &base,
            "--tracker-url",
            &tracker,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let db = xdg.join("trawl/trawl.db");
    assert!(db.is_file(), "{}", text(&out.stdout));
    assert!(xdg.join("trawl/feeds/osv/Debian").is_dir());
    assert!(
        text(&out.stdout).contains(&format!("rebuilt {}", db.display())),
        "{}",
        text(&out.stdout)
    );

    let asked: BTreeSet<String> = paths
        .lock()
        .unwrap()
        .iter()
        .map(|(p, _)| p.clone())
        .collect();
    let expected: BTreeSet<String> = [
        "Debian",
        "Ubuntu",
        "Alpine",
        "Wolfi",
        "Chainguard",
        "Rocky%20Linux",
        "AlmaLinux",
        "Photon%20OS",
        "SUSE",
        "openSUSE",
        "Go",
        "crates.io",
        "PyPI",
        "npm",
        "Maven",
        "RubyGems",
        "Packagist",
        "NuGet",
    ]
    .iter()
    .map(|e| format!("/{e}/all.zip"))
    .chain(["/tracker.json".to_string()])
    .collect();
    assert_eq!(asked, expected);

    // trawl scan finds it there without being told.
    let (code, report, stderr) = scan_json(env, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(report["findings"][0]["id"], "TRAWL-TAR");
    assert_eq!(report["advisory_database"]["path"], db.to_str().unwrap());

    // Naming an ecosystem downloads only it (and the tracker), as before.
    paths.lock().unwrap().clear();
    let out = trawl_with(
        env,
        &[
            "db",
            "update",
            "--osv-base",
            &base,
            "--no-tracker",
            "--ecosystem",
            "Debian",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        *paths.lock().unwrap(),
        [("/Debian/all.zip".to_string(), 200)]
    );

    // No location at all: an error naming what to set, exit 1.
    let out = trawl_with(&[], &["db", "update", "--osv-base", &base]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("pass --output"),
        "{}",
        text(&out.stderr)
    );
}
