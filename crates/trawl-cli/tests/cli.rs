//! The `trawl` binary as users run it: completions and man pages from the
//! clap definitions, `trawl db build|info`, and `trawl scan` on the real
//! Debian test image: exit status by verdict, `--output`, `--quiet` and
//! colour; `trawl schema report`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const BIN: &str = env!("CARGO_BIN_EXE_trawl");
const SUBCOMMANDS: [&str; 6] = ["scan", "db", "watch", "completions", "man", "schema"];
const DB_SUBCOMMANDS: [&str; 5] = ["build", "info", "update", "push", "pull"];

/// A default database path that does not exist, so that no test reads the
/// user's own cache.
const NO_DB: &str = "/nonexistent/trawl-tests/trawl.db";

mod common;
#[path = "../../trawl-classify/tests/schema_check/mod.rs"]
mod schema_check;

use common::{debian, text};

fn trawl(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("NO_COLOR")
        .env("TRAWL_DB", NO_DB)
        .output()
        .unwrap()
}

#[test]
fn completions_cover_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let out = trawl(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.len() > 1000, "{shell}: {script}");
        for name in SUBCOMMANDS.iter().chain(&DB_SUBCOMMANDS) {
            assert!(script.contains(name), "{shell} completes {name}");
        }
        for option in ["output", "severity-threshold", "rescan-window"] {
            // fish names a long option `-l NAME`.
            let spelled = match shell {
                "fish" => format!("-l {option}"),
                _ => format!("--{option}"),
            };
            assert!(script.contains(&spelled), "{shell} completes {spelled}");
        }
    }
    assert!(!trawl(&["completions", "tcsh"]).status.success());
}

#[test]
fn schema_prints_the_published_schemas() {
    for (document, committed) in [
        ("report", schema_check::REPORT_SCHEMA),
        ("inventory", schema_check::INVENTORY_SCHEMA),
    ] {
        let out = trawl(&["schema", document]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout),
            committed,
            "`trawl schema {document}` is docs/{document}.schema.json"
        );
        let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
    }
    assert!(!trawl(&["schema", "sbom"]).status.success());
}

#[test]
fn man_pages_render_with_every_subcommand_and_its_options() {
    let out = trawl(&["man"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(page.contains(".TH trawl 1"), "{page}");
    for name in SUBCOMMANDS {
        assert!(page.contains(name), "trawl.1 lists {name}");
    }

    let dir = tempfile::tempdir().unwrap();
    let out = trawl(&["man", "--out", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let read = |name: &str| {
        std::fs::read_to_string(dir.path().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    // roff escapes a hyphen as `\-`.
    let options = |page: &str| page.replace("\\-", "-");
    let scan = options(&read("trawl-scan.1"));
    assert!(scan.starts_with(".ie") || scan.contains(".TH"), "{scan}");
    for option in [
        "--output",
        "--format",
        "--db",
        "--quiet",
        "--color",
        "--ignore-file",
    ] {
        assert!(scan.contains(option), "trawl-scan.1 documents {option}");
    }
    let watch = options(&read("trawl-watch.1"));
    for option in ["--registry", "--rescan-window", "--token-file"] {
        assert!(watch.contains(option), "trawl-watch.1 documents {option}");
    }
    for name in DB_SUBCOMMANDS {
        let page = options(&read(&format!("trawl-db-{name}.1")));
        assert!(page.contains(".TH"), "trawl-db-{name}.1 renders");
    }
    assert!(options(&read("trawl-db-update.1")).contains("--no-tracker"));
    read("trawl.1");
    read("trawl-completions.1");
}

// ---- trawl scan on the real test image -------------------------------------

/// Feeds for the Debian image: `affected` has one OSV record for a package
/// it has installed, fixed in a later version (unhealthy), `unaffected` one
/// for a package it does not have (healthy: Debian 12 is covered, nothing
/// matches).
struct Feeds {
    _dir: tempfile::TempDir,
    affected: PathBuf,
    unaffected: PathBuf,
}

fn feeds() -> &'static Feeds {
    static FEEDS: OnceLock<Feeds> = OnceLock::new();
    FEEDS.get_or_init(|| {
        let out = trawl(&["scan", "--inventory-only", "--format", "json", &debian()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let inventory: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        schema_check::assert_valid_inventory(&inventory);
        let package = inventory["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["source_name"] == "tar")
            .expect("the Debian image has tar");
        let version = package["source_version"].as_str().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let record = |id: &str, name: &str, fixed: &str| {
            serde_json::json!({
                "id": id, "modified": "2026-11-01T00:00:00Z",
                "affected": [{"package": {"ecosystem": "Debian:12", "name": name},
                    "ranges": [{"type": "ECOSYSTEM",
                        "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]
            })
            .to_string()
        };
        let (affected, unaffected) = (dir.path().join("affected"), dir.path().join("unaffected"));
        std::fs::create_dir(&affected).unwrap();
        std::fs::create_dir(&unaffected).unwrap();
        std::fs::write(
            affected.join("TRAWL-TAR.json"),
            record("TRAWL-TAR", "tar", &format!("{version}+trawl1")),
        )
        .unwrap();
        std::fs::write(
            unaffected.join("TRAWL-OTHER.json"),
            record("TRAWL-OTHER", "not-installed", "1.0-1"),
        )
        .unwrap();
        Feeds {
            _dir: dir,
            affected,
            unaffected,
        }
    })
}

fn scan(args: &[&str]) -> Output {
    let mut all = vec!["scan"];
    all.extend(args);
    trawl(&all)
}

#[test]
fn exit_status_follows_the_verdict() {
    let f = feeds();
    let image = debian();
    let affected = f.affected.to_str().unwrap();
    let unaffected = f.unaffected.to_str().unwrap();

    let out = scan(&["--osv", affected, &image]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "unhealthy: {}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("TRAWL-TAR"));

    let out = scan(&["--osv", unaffected, "--format", "json", &image]);
    assert_eq!(out.status.code(), Some(0), "healthy: {}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "healthy");

    // No advisories at all: unsupported, exit 0, and a note says why.
    let out = scan(&["--format", "json", &image]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "unsupported");
    assert!(text(&out.stderr).contains("no advisory database at"));

    // The policy decides what counts: an ignore file suppresses the finding.
    let dir = tempfile::tempdir().unwrap();
    let ignore = dir.path().join("ignore");
    std::fs::write(&ignore, "TRAWL-TAR reason=\"accepted in the test\"\n").unwrap();
    let out = scan(&[
        "--osv",
        affected,
        "--ignore-file",
        ignore.to_str().unwrap(),
        &image,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "suppressed: {}",
        text(&out.stderr)
    );

    // Could not run.
    let missing = dir.path().join("missing");
    let out = scan(&[&format!("oci-dir:{}", missing.display())]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("error: "),
        "{}",
        text(&out.stderr)
    );
    let out = scan(&["--osv", affected, "--no-such-option", &image]);
    assert_eq!(out.status.code(), Some(2), "a usage error is 2 too");
}

/// A root file system whose package database cannot be read: the scan is
/// partial. (Fedora's rpm database, here not SQLite at all.)
fn unreadable_rpmdb(dir: &Path) -> String {
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::create_dir_all(dir.join("var/lib/rpm")).unwrap();
    std::fs::write(dir.join("etc/os-release"), "ID=fedora\nVERSION_ID=40\n").unwrap();
    std::fs::write(dir.join("var/lib/rpm/rpmdb.sqlite"), [0x5a; 9000]).unwrap();
    format!("dir:{}", dir.display())
}

#[test]
fn a_partial_scan_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = unreadable_rpmdb(dir.path());
    let unaffected = feeds().unaffected.to_str().unwrap();
    let out = scan(&["--osv", unaffected, "--format", "json", &rootfs]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "partial");
    assert!(text(&out.stderr).contains("note: incomplete scan"));
    // --quiet keeps the exit status and drops the notes and the log.
    let out = scan(&["--quiet", "--osv", unaffected, &rootfs]);
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

#[test]
fn output_writes_the_report_to_the_file_and_nothing_to_stdout() {
    let f = feeds();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.json");
    std::fs::write(&file, "an older report").unwrap();
    let out = scan(&[
        "--osv",
        f.affected.to_str().unwrap(),
        "--format",
        "json",
        "--output",
        file.to_str().unwrap(),
        &debian(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    schema_check::assert_valid_report(&report);
    assert_eq!(report["verdict"], "unhealthy");
    assert_eq!(report["findings"][0]["id"], "TRAWL-TAR");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["report.json"], "no temporary file is left");

    // A scan that cannot run leaves the file as it was.
    let out = scan(&["--output", file.to_str().unwrap(), "oci-dir:/nonexistent"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains("TRAWL-TAR")
    );
    // A directory that does not exist is an error, not a report on stdout.
    let nowhere = dir.path().join("no/such/dir/report.json");
    let out = scan(&["--output", nowhere.to_str().unwrap(), &debian()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("is not a directory"),
        "refused before the scan: {}",
        text(&out.stderr)
    );
}

#[test]
fn quiet_leaves_stderr_empty() {
    let f = feeds();
    let image = debian();
    // Without --quiet the missing feed is noted; with it, nothing.
    let out = scan(&["--quiet", "--format", "json", &image]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let out = scan(&["-q", "--osv", f.unaffected.to_str().unwrap(), &image]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("HEALTHY"));
    // Errors still show.
    let out = scan(&["--quiet", "oci-dir:/nonexistent"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!out.stderr.is_empty());
}

#[test]
fn colour_honours_no_color_and_the_flag() {
    let f = feeds();
    let image = debian();
    let args = |color: &str| {
        vec![
            "scan".to_string(),
            "--osv".to_string(),
            f.affected.to_str().unwrap().to_string(),
            format!("--color={color}"),
            image.clone(),
        ]
    };
    let run = |color: &str, no_color: Option<&str>| {
        let mut command = Command::new(BIN);
        command.args(args(color)).env_remove("NO_COLOR");
        if let Some(v) = no_color {
            command.env("NO_COLOR", v);
        }
        let out = command.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        out
    };
    let escapes = |out: &Output| out.stdout.contains(&0x1b) || out.stderr.contains(&0x1b);
    // The table has colour to give: `always` shows it.
    assert!(escapes(&run("always", None)), "--color always colours");
    assert!(!escapes(&run("never", None)), "--color never");
    assert!(!escapes(&run("auto", Some("1"))), "NO_COLOR=1");
    assert!(!escapes(&run("never", Some("1"))), "both");
    // Not a terminal: `auto` does not colour a pipe.
    assert!(!escapes(&run("auto", None)), "auto into a pipe");

    // clap's own usage errors follow the flag too.
    let usage = |color: &str| {
        let out = trawl(&["scan", color, "--no-such-option"]);
        assert_eq!(out.status.code(), Some(2));
        out.stderr.contains(&0x1b)
    };
    assert!(usage("--color=always"));
    assert!(!usage("--color=never"));
}

#[test]
fn the_log_honours_no_color_and_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    // The unreadable database is logged as a warning on stderr.
    let rootfs = unreadable_rpmdb(dir.path());
    let run = |color: &str, no_color: bool| {
        let mut command = Command::new(BIN);
        command
            .args([
                "scan",
                "--inventory-only",
                &format!("--color={color}"),
                &rootfs,
            ])
            .env_remove("NO_COLOR");
        if no_color {
            command.env("NO_COLOR", "1");
        }
        let out = command.output().unwrap();
        let stderr = text(&out.stderr);
        assert!(stderr.contains("WARN"), "{stderr}");
        stderr.contains('\x1b')
    };
    assert!(run("always", false), "--color always colours the log");
    assert!(!run("never", false), "--color never");
    assert!(!run("auto", true), "NO_COLOR=1");
    assert!(!run("auto", false), "auto into a pipe");
}

#[test]
fn a_database_built_with_trawl_db_serves_trawl_scan() {
    let f = feeds();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("trawl.db");
    let db_arg = db.to_str().unwrap();
    let out = trawl(&[
        "db",
        "build",
        "--osv",
        f.affected.to_str().unwrap(),
        "-o",
        db_arg,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("records         1"),
        "{}",
        text(&out.stdout)
    );
    let out = trawl(&["db", "info", db_arg]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(": verified"),
        "{}",
        text(&out.stdout)
    );

    let out = scan(&["--db", db_arg, "--format", "json", &debian()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["findings"][0]["id"], "TRAWL-TAR");

    // `trawl db` reports an error as `db: …` with exit status 1, as before.
    let out = trawl(&[
        "db",
        "info",
        dir.path().join("missing.db").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("db: "),
        "{}",
        text(&out.stderr)
    );
}
