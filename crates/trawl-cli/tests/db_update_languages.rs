//! `trawl db update --ecosystem <language>` end to end: a loopback HTTP server
//! serves `<Ecosystem>/all.zip` in osv.dev's layout (one record per file at the
//! archive's root) with an `ETag` and `Last-Modified`; the first run downloads
//! and builds, the store then matches each ecosystem's package; the second run
//! asks conditionally, gets `304` for every feed and leaves the file alone.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

mod common;

use common::{Log, Reply, text};
use trawl::advisory::{AdvisoryStore, PackageQuery};

const BIN: &str = env!("CARGO_BIN_EXE_trawl");

fn trawl(args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args);
    for name in ["TRAWL_DB", "XDG_CACHE_HOME", "HOME", "NO_COLOR"] {
        command.env_remove(name);
    }
    command.output().unwrap()
}

/// Per osv.dev ecosystem: a package, an affected version and the fix. The
/// records are shaped like osv.dev's (ids are Trawl's own).
const FEEDS: [(&str, &str, &str, &str); 8] = [
    ("PyPI", "setuptools", "65.5.0", "65.5.1"),
    ("npm", "semver", "7.5.1", "7.5.2"),
    ("Go", "golang.org/x/net", "0.16.0", "0.17.0"),
    (
        "Maven",
        "com.fasterxml.jackson.core:jackson-databind",
        "2.13.4",
        "2.13.4.1",
    ),
    ("crates.io", "time", "0.2.22", "0.2.23"),
    ("RubyGems", "nokogiri", "1.13.9", "1.13.10"),
    ("Packagist", "symfony/http-kernel", "5.4.19", "5.4.20"),
    ("NuGet", "Newtonsoft.Json", "12.0.3", "13.0.1"),
];

fn osv_zip(ecosystem: &str, name: &str, fixed: &str) -> Vec<u8> {
    let id = format!("TRAWL-{}-1", ecosystem.to_uppercase().replace('.', ""));
    let record = serde_json::json!({
        "schema_version": "1.6.0",
        "id": id,
        "modified": "2024-03-01T12:00:00Z",
        "published": "2024-02-01T12:00:00Z",
        "aliases": ["CVE-2099-1234"],
        "summary": format!("a flaw in {name}"),
        "affected": [{
            "package": {"ecosystem": ecosystem, "name": name},
            "ranges": [
                {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]},
                {"type": "GIT", "repo": "https://example.invalid/repo.git",
                 "events": [{"introduced": "0"}, {"fixed": "0123456789abcdef0123456789abcdef01234567"}]}
            ],
            "database_specific": {"source": format!("https://github.com/github/advisory-database/{id}.json")}
        }],
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}],
        "database_specific": {"severity": "HIGH"}
    });
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    zip.start_file(format!("{id}.json"), options).unwrap();
    zip.write_all(serde_json::to_string_pretty(&record).unwrap().as_bytes())
        .unwrap();
    zip.finish().unwrap().into_inner()
}

/// Serves every ecosystem's zip with a strong `ETag` and a `Last-Modified`,
/// answering `304` to a matching `If-None-Match`.
fn serve() -> (String, Log) {
    let zips: BTreeMap<String, Vec<u8>> = FEEDS
        .iter()
        .map(|(ecosystem, name, _, fixed)| {
            (
                format!("/{ecosystem}/all.zip"),
                osv_zip(ecosystem, name, fixed),
            )
        })
        .collect();
    common::serve(move |request| {
        let etag = format!("\"v1{}\"", request.path.replace(['/', '.'], "-"));
        let headers = format!(
            "Content-Type: application/zip\r\nETag: {etag}\r\n\
             Last-Modified: Fri, 01 Mar 2024 12:00:00 GMT\r\n"
        );
        match zips.get(&request.path) {
            None => Reply {
                status: 404,
                headers: String::new(),
                body: Vec::new(),
            },
            Some(_) if request.header("if-none-match") == Some(etag.as_str()) => Reply {
                status: 304,
                headers: format!("ETag: {etag}\r\n"),
                body: Vec::new(),
            },
            Some(body) => Reply {
                status: 200,
                headers,
                body: body.clone(),
            },
        }
    })
}

fn update(base: &str, dir: &Path) -> Output {
    let mut args = vec![
        "db".to_string(),
        "update".into(),
        "--dir".into(),
        dir.display().to_string(),
        "--osv-base".into(),
        base.into(),
        "--no-tracker".into(),
    ];
    for (ecosystem, ..) in FEEDS {
        args.extend(["--ecosystem".to_string(), ecosystem.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    trawl(&args)
}

#[test]
fn language_feeds_download_build_match_and_come_back_304() {
    let (base, log) = serve();
    let dir = tempfile::tempdir().unwrap();
    let feeds = dir.path().join("feeds");
    let db = feeds.join("trawl.db");

    let out = update(&base, &feeds);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}\n{}", stdout, text(&out.stderr));
    for (ecosystem, ..) in FEEDS {
        assert!(
            stdout.contains(&format!("downloaded {base}/{ecosystem}/all.zip")),
            "{stdout}"
        );
        assert!(feeds.join("osv").join(ecosystem).is_dir(), "{ecosystem}");
    }
    assert!(
        stdout.contains(&format!("rebuilt {}", db.display())),
        "{stdout}"
    );
    assert!(stdout.contains("GIT ranges      8 skipped"), "{stdout}");
    // The GIT ranges are counted in one line, not listed.
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("skipped 8 GIT ranges") && !stderr.contains("warning:"),
        "{stderr}"
    );
    let first: Vec<(String, u16)> = std::mem::take(&mut *log.lock().unwrap());
    assert_eq!(first.len(), 8);
    assert!(first.iter().all(|(_, status)| *status == 200), "{first:?}");

    // The store matches each ecosystem's package: affected below the fix,
    // not at it.
    let store = AdvisoryStore::open(&db).expect("opens");
    store.verify().expect("verifies");
    assert_eq!(store.info().records, 8);
    for (ecosystem, name, affected, fixed) in FEEDS {
        let query = |version| PackageQuery {
            ecosystem,
            name,
            version,
        };
        let found = store.matches(&query(affected)).expect("valid query");
        assert_eq!(found.len(), 1, "{ecosystem} {name} {affected}");
        assert_eq!(
            found[0].fixed_version.as_deref(),
            Some(fixed),
            "{ecosystem}"
        );
        assert!(
            store.matches(&query(fixed)).unwrap().is_empty(),
            "{ecosystem} {name} {fixed}"
        );
    }
    drop(store);

    // Second run: conditional requests, 304 each, the file not rewritten.
    let before = std::fs::metadata(&db).unwrap();
    let state = std::fs::read_to_string(feeds.join("state.json")).unwrap();
    assert!(state.contains("\\\"v1-PyPI-all-zip\\\""), "{state}");
    assert!(state.contains("Fri, 01 Mar 2024 12:00:00 GMT"), "{state}");
    let out = update(&base, &feeds);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}\n{}", stdout, text(&out.stderr));
    for (ecosystem, ..) in FEEDS {
        assert!(
            stdout.contains(&format!("unchanged  {base}/{ecosystem}/all.zip")),
            "{stdout}"
        );
    }
    assert!(stdout.contains("is up to date"), "{stdout}");
    let second: Vec<(String, u16)> = std::mem::take(&mut *log.lock().unwrap());
    assert_eq!(second.len(), 8);
    assert!(
        second.iter().all(|(_, status)| *status == 304),
        "{second:?}"
    );
    let after = std::fs::metadata(&db).unwrap();
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(before.ino(), after.ino(), "not replaced");
        assert_eq!(before.mtime_nsec(), after.mtime_nsec(), "not rewritten");
        assert_eq!(before.mtime(), after.mtime(), "not rewritten");
    }

    // `trawl db info` shows the count too.
    let out = trawl(&["db", "info", db.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("GIT ranges      8 skipped"));
    assert!(text(&out.stdout).contains("PyPI"));
}

/// `trawl db build --ghsa` with a checkout of the GitHub Advisory Database
/// (the trawl-advisory fixture): unmatched ecosystems and GIT ranges are
/// counted on stderr, flagged by `db info`, and the store matches PyPI.
#[test]
fn db_build_reads_a_ghsa_checkout_and_counts_what_it_skips() {
    let checkout =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../trawl-advisory/tests/fixtures/ghsa");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("trawl.db");
    let out = trawl(&[
        "db",
        "build",
        "--ghsa",
        checkout.to_str().unwrap(),
        "-o",
        db.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("records         5"), "{stdout}");
    assert!(
        stderr.contains(
            "skipped 2 affected packages in ecosystems Trawl does not match: GitHub Actions 1, SwiftURL 1"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("skipped 1 GIT ranges"), "{stderr}");
    assert!(!stderr.contains("warning:"), "{stderr}");

    let out = trawl(&["db", "info", db.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let swift = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("SwiftURL"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        swift.ends_with("(no version scheme: never matched)"),
        "{swift}"
    );
    let pypi = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("PyPI"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(!pypi.contains("never matched"), "{pypi}");

    let store = AdvisoryStore::open(&db).unwrap();
    let found = store
        .matches(&PackageQuery {
            ecosystem: "PyPI",
            name: "setuptools",
            version: "65.0.0",
        })
        .unwrap();
    assert_eq!(found[0].advisory.id, "GHSA-r9hx-vwmv-q579");
}
