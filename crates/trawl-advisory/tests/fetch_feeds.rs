//! `FeedMirror` against a real HTTP server on loopback serving copies of the
//! fixture feeds at the publishers' paths: the first update downloads and builds,
//! the second sends the validators, gets 304 everywhere and leaves the database
//! alone, a changed feed is downloaded again and rebuilt.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use trawl_advisory::fetch::{
    FeedLimit, FeedLimits, FeedMirror, FeedSources, FetchError, FetchOutcome,
};
use trawl_advisory::{AdvisoryDb, AdvisoryStore, PackageQuery};

#[path = "support/http.rs"]
mod http;

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

struct Resource {
    body: Vec<u8>,
    etag: Option<String>,
    last_modified: Option<String>,
}

#[derive(Debug, Clone)]
struct Request {
    path: String,
    headers: HashMap<String, String>,
    status: u16,
}

/// A minimal HTTP/1.1 server: GET only, one request per connection, honouring
/// `If-None-Match` and `If-Modified-Since` as a static file server does.
struct Server {
    base: String,
    resources: Arc<Mutex<HashMap<String, Resource>>>,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    fn start(resources: HashMap<String, Resource>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let resources = Arc::new(Mutex::new(resources));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (res, reqs) = (resources.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(http::Request { path, headers }) = http::read_request(&stream) else {
                    continue;
                };
                let resources = res.lock().unwrap();
                let (status, extra, body): (u16, String, &[u8]) = match resources.get(&path) {
                    None => (404, String::new(), b"not found"),
                    Some(r) => {
                        let etag_hit =
                            r.etag.is_some() && headers.get("if-none-match") == r.etag.as_ref();
                        let date_hit = headers
                            .contains_key("if-none-match")
                            .then_some(())
                            .is_none()
                            && r.last_modified.is_some()
                            && headers.get("if-modified-since") == r.last_modified.as_ref();
                        let mut extra = String::new();
                        if let Some(etag) = &r.etag {
                            extra += &format!("ETag: {etag}\r\n");
                        }
                        if let Some(date) = &r.last_modified {
                            extra += &format!("Last-Modified: {date}\r\n");
                        }
                        if etag_hit || date_hit {
                            (304, extra, b"")
                        } else {
                            (200, extra, &r.body)
                        }
                    }
                };
                http::write_reply(&mut stream, status, &extra, body);
                reqs.lock().unwrap().push(Request {
                    path,
                    headers,
                    status,
                });
            }
        });
        Self {
            base,
            resources,
            requests,
        }
    }

    fn take_requests(&self) -> Vec<Request> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }
}

fn osv_zip() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut names: Vec<PathBuf> = std::fs::read_dir(fixtures().join("osv/debian"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for path in names {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        zip.start_file(name, options).unwrap();
        let mut bytes = Vec::new();
        std::fs::File::open(&path)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        zip.write_all(&bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// The YAML secdb fixture as the JSON secdb.alpinelinux.org publishes.
fn secdb_json(file: &str) -> Vec<u8> {
    let yaml: serde_json::Value =
        serde_yaml_ng::from_slice(&std::fs::read(shared().join("secdb/v3.4").join(file)).unwrap())
            .unwrap();
    serde_json::to_vec(&yaml).unwrap()
}

fn publishers() -> HashMap<String, Resource> {
    let mut resources = HashMap::new();
    resources.insert(
        "/osv/Debian/all.zip".to_owned(),
        Resource {
            body: osv_zip(),
            etag: Some("\"osv-1\"".into()),
            last_modified: Some("Mon, 01 Jan 2024 00:00:00 GMT".into()),
        },
    );
    for repo in ["main", "community"] {
        resources.insert(
            format!("/secdb/v3.4/{repo}.json"),
            Resource {
                body: secdb_json(&format!("{repo}.yaml")),
                etag: Some(format!("\"{repo}-1\"")),
                last_modified: None,
            },
        );
    }
    // Only a date, as some mirrors serve it.
    resources.insert(
        "/tracker/data/json".to_owned(),
        Resource {
            body: std::fs::read(fixtures().join("debian-tracker/tracker.json")).unwrap(),
            etag: None,
            last_modified: Some("Tue, 02 Jan 2024 00:00:00 GMT".into()),
        },
    );
    resources
}

fn sources(server: &Server) -> FeedSources {
    FeedSources {
        osv_base: format!("{}/osv", server.base),
        osv_ecosystems: vec!["Debian".into()],
        secdb_base: format!("{}/secdb/", server.base),
        alpine_releases: vec!["v3.4".into()],
        alpine_repositories: vec!["main".into(), "community".into()],
        debian_tracker: Some(format!("{}/tracker/data/json", server.base)),
    }
}

#[test]
fn second_update_is_conditional_and_leaves_the_database_alone() {
    let server = Server::start(publishers());
    let dir = tempfile::tempdir().unwrap();
    let mirror = FeedMirror::new(dir.path().join("feeds")).unwrap();
    let db_path = dir.path().join("trawl.db");
    let sources = sources(&server);

    let first = mirror.update(&sources, &db_path).expect("first update");
    assert_eq!(first.fetched.len(), 4);
    assert!(
        first
            .fetched
            .iter()
            .all(|(_, o)| matches!(o, FetchOutcome::Downloaded(n) if *n > 0)),
        "{:?}",
        first.fetched
    );
    let (info, _) = first.rebuilt.expect("built");
    let requests = server.take_requests();
    assert!(
        requests
            .iter()
            .all(|r| !r.headers.contains_key("if-none-match")
                && !r.headers.contains_key("if-modified-since"))
    );

    // The store holds what the feeds hold: the same answers as in memory.
    let paths = mirror.feed_paths(&sources).unwrap();
    assert_eq!(paths.osv_dirs.len(), 1);
    let (db, _) = AdvisoryDb::from_paths(
        &paths.osv_dirs,
        &paths.secdb_paths,
        &paths.debian_tracker_files,
    )
    .unwrap();
    assert_eq!(info.records, db.len() as u64);
    let store = AdvisoryStore::open(&db_path).unwrap();
    for (ecosystem, name, version) in [
        ("Alpine:3.4.6", "openssl", "1.0.2h-r1"),
        ("Debian:12", "glibc", "2.36-9+deb12u1"),
    ] {
        let query = PackageQuery {
            ecosystem,
            name,
            version,
        };
        let want = db.matches(&query).unwrap();
        assert!(!want.is_empty(), "{query:?}");
        assert_eq!(
            serde_json::to_value(&want).unwrap(),
            serde_json::to_value(store.matches(&query).unwrap()).unwrap()
        );
    }
    let tracker_record = store.matches(&PackageQuery {
        ecosystem: "Debian:12",
        name: "glibc",
        version: "2.36-9+deb12u1",
    });
    assert!(
        tracker_record
            .unwrap()
            .iter()
            .any(|m| m.advisory.id == "CVE-2023-4911")
    );
    drop(store);

    let before = std::fs::read(&db_path).unwrap();
    let modified = std::fs::metadata(&db_path).unwrap().modified().unwrap();
    let second = mirror.update(&sources, &db_path).expect("second update");
    assert!(second.rebuilt.is_none(), "nothing changed, nothing rebuilt");
    assert!(
        second
            .fetched
            .iter()
            .all(|(_, o)| *o == FetchOutcome::NotModified),
        "{:?}",
        second.fetched
    );
    let requests = server.take_requests();
    assert_eq!(requests.len(), 4);
    for r in &requests {
        assert_eq!(r.status, 304, "{r:?}");
        match r.path.as_str() {
            "/osv/Debian/all.zip" => {
                assert_eq!(r.headers["if-none-match"], "\"osv-1\"");
                assert_eq!(
                    r.headers["if-modified-since"],
                    "Mon, 01 Jan 2024 00:00:00 GMT"
                );
            }
            "/tracker/data/json" => {
                assert!(!r.headers.contains_key("if-none-match"));
                assert_eq!(
                    r.headers["if-modified-since"],
                    "Tue, 02 Jan 2024 00:00:00 GMT"
                );
            }
            path => {
                assert!(path.starts_with("/secdb/v3.4/"), "{path}");
                assert!(r.headers["if-none-match"].ends_with("-1\""));
            }
        }
    }
    assert_eq!(std::fs::read(&db_path).unwrap(), before);
    assert_eq!(
        std::fs::metadata(&db_path).unwrap().modified().unwrap(),
        modified
    );

    // The tracker changes: only it is downloaded, and the database is rebuilt.
    {
        let mut resources = server.resources.lock().unwrap();
        let tracker = resources.get_mut("/tracker/data/json").unwrap();
        tracker.body = br#"{"zlib": {"CVE-2023-45853": {"releases": {"bookworm": {"status": "open", "urgency": "low"}}}}}"#.to_vec();
        tracker.last_modified = Some("Wed, 03 Jan 2024 00:00:00 GMT".into());
    }
    let third = mirror.update(&sources, &db_path).expect("third update");
    let downloaded: Vec<&str> = third
        .fetched
        .iter()
        .filter(|(_, o)| matches!(o, FetchOutcome::Downloaded(_)))
        .map(|(url, _)| url.as_str())
        .collect();
    assert_eq!(downloaded, [format!("{}/tracker/data/json", server.base)]);
    assert!(third.rebuilt.is_some());
    let store = AdvisoryStore::open(&db_path).unwrap();
    let zlib = PackageQuery {
        ecosystem: "Debian:12",
        name: "zlib",
        version: "1:1.2.13.dfsg-1",
    };
    assert!(
        store
            .matches(&zlib)
            .unwrap()
            .iter()
            .any(|m| m.advisory.id == "CVE-2023-45853"),
        "the new tracker's record is in the rebuilt store"
    );
    let glibc = PackageQuery {
        ecosystem: "Debian:12",
        name: "glibc",
        version: "2.36-9+deb12u1",
    };
    let ids: Vec<String> = store
        .matches(&glibc)
        .unwrap()
        .into_iter()
        .map(|m| m.advisory.id.clone())
        .collect();
    assert!(
        !ids.iter().any(|id| id == "CVE-2023-4911") && ids.iter().any(|id| id == "DSA-5514-1"),
        "the old tracker's record is gone, OSV's stays: {ids:?}"
    );
}

#[test]
fn failures_name_the_url_and_keep_the_old_database() {
    let mut resources = publishers();
    resources.insert(
        "/osv/Broken/all.zip".to_owned(),
        Resource {
            body: b"this is not a zip archive".to_vec(),
            etag: None,
            last_modified: None,
        },
    );
    let server = Server::start(resources);
    let dir = tempfile::tempdir().unwrap();
    let mirror = FeedMirror::new(dir.path().join("feeds")).unwrap();
    let db_path = dir.path().join("trawl.db");
    let good = sources(&server);
    mirror.update(&good, &db_path).unwrap();
    let before = std::fs::read(&db_path).unwrap();

    let missing = FeedSources {
        alpine_releases: vec!["v9.9".into()],
        ..good.clone()
    };
    let err = mirror.update(&missing, &db_path).expect_err("404");
    assert!(
        matches!(&err, FetchError::Http { url, message } if url.ends_with("/secdb/v9.9/main.json") && message.contains("404")),
        "{err}"
    );
    let broken = FeedSources {
        osv_ecosystems: vec!["Broken".into()],
        ..good.clone()
    };
    let err = mirror.update(&broken, &db_path).expect_err("not a zip");
    assert!(
        matches!(&err, FetchError::Archive { url, .. } if url.ends_with("/Broken/all.zip")),
        "{err}"
    );
    let escaping = FeedSources {
        alpine_releases: vec!["../etc".into()],
        ..good
    };
    assert!(matches!(
        mirror.update(&escaping, &db_path),
        Err(FetchError::InvalidName {
            what: "release",
            ..
        })
    ));
    assert_eq!(
        std::fs::read(&db_path).unwrap(),
        before,
        "the database is untouched"
    );
}

/// A zip archive written by Python's `zipfile`, the real tool: `script` gets
/// `z`, an open `zipfile.ZipFile` (deflate), and `os`.
fn python_zip(script: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("all.zip");
    let program = format!(
        "import os, sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:\n{}",
        script
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    );
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg(&program)
        .arg(&out)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "{program}");
    std::fs::read(&out).unwrap()
}

fn serve_archive(resources: &mut HashMap<String, Resource>, ecosystem: &str, body: Vec<u8>) {
    resources.insert(
        format!("/osv/{ecosystem}/all.zip"),
        Resource {
            body,
            etag: None,
            last_modified: None,
        },
    );
}

#[test]
fn hostile_archives_and_downloads_hit_typed_limits() {
    let mut resources = publishers();
    // 8 MiB of spaces deflate to about 8 KB: a ratio near 1000.
    serve_archive(
        &mut resources,
        "Bomb",
        python_zip("z.writestr('bomb.json', b' ' * (8 << 20))"),
    );
    // 101 small entries.
    serve_archive(
        &mut resources,
        "Many",
        python_zip("for i in range(101):\n    z.writestr(f'r{i}.json', b'{}')"),
    );
    // Incompressible entries of 512 KiB each.
    serve_archive(
        &mut resources,
        "Big",
        python_zip("for i in range(3):\n    z.writestr(f'big{i}.json', os.urandom(512 << 10))"),
    );
    // One 512 KiB entry whose headers claim 10 bytes: only counting catches it.
    let mut lying = python_zip("z.writestr('liar.json', os.urandom(512 << 10))");
    let central = lying.windows(4).rposition(|w| w == b"PK\x01\x02").unwrap();
    lying[central + 24..central + 28].copy_from_slice(&10u32.to_le_bytes());
    lying[22..26].copy_from_slice(&10u32.to_le_bytes());
    serve_archive(&mut resources, "Liar", lying);

    let server = Server::start(resources);
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("trawl.db");
    let good = sources(&server);
    let only = |ecosystem: &str| FeedSources {
        osv_ecosystems: vec![ecosystem.into()],
        alpine_releases: Vec::new(),
        debian_tracker: None,
        ..good.clone()
    };
    let url = |ecosystem: &str| format!("{}/osv/{ecosystem}/all.zip", server.base);
    let defaults = FeedMirror::new(dir.path().join("feeds")).unwrap();
    assert_eq!(defaults.limits(), &FeedLimits::default());
    defaults
        .update(&good, &db_path)
        .expect("a normal feed updates");
    let before = std::fs::read(&db_path).unwrap();

    let err = defaults
        .update(&only("Bomb"), &db_path)
        .expect_err("a zip bomb");
    assert!(
        matches!(&err, FetchError::LimitExceeded { url: u, limit: FeedLimit::Ratio, max: 100, entry: Some(e) }
            if *u == url("Bomb") && e == "bomb.json"),
        "{err}"
    );
    assert!(err.to_string().contains("max_ratio"), "{err}");

    let small = FeedLimits {
        max_entries: 100,
        max_entry_size: 256 << 10,
        ..FeedLimits::default()
    };
    let mirror = FeedMirror::new(dir.path().join("feeds"))
        .unwrap()
        .with_limits(small);
    let err = mirror
        .update(&only("Many"), &db_path)
        .expect_err("101 entries");
    assert!(
        matches!(&err, FetchError::LimitExceeded { url: u, limit: FeedLimit::Entries, max: 100, entry: None }
            if *u == url("Many")),
        "{err}"
    );
    let err = mirror
        .update(&only("Big"), &db_path)
        .expect_err("512 KiB entry");
    assert!(
        matches!(&err, FetchError::LimitExceeded { limit: FeedLimit::EntrySize, max, entry: Some(e), .. }
            if *max == 256 << 10 && e == "big0.json"),
        "{err}"
    );
    let err = mirror
        .update(&only("Liar"), &db_path)
        .expect_err("lying sizes");
    assert!(
        matches!(&err, FetchError::LimitExceeded { limit: FeedLimit::EntrySize, entry: Some(e), .. }
            if e == "liar.json"),
        "{err}"
    );

    let mirror = FeedMirror::new(dir.path().join("feeds"))
        .unwrap()
        .with_limits(FeedLimits {
            max_unpacked: 1 << 20,
            ..FeedLimits::default()
        });
    let err = mirror
        .update(&only("Big"), &db_path)
        .expect_err("1.5 MiB unpacked");
    assert!(
        matches!(&err, FetchError::LimitExceeded { limit: FeedLimit::Unpacked, max, entry: Some(e), .. }
            if *max == 1 << 20 && e == "big2.json"),
        "{err}"
    );

    // A fresh mirror, so that the tracker is downloaded, not revalidated.
    let mirror = FeedMirror::new(dir.path().join("fresh"))
        .unwrap()
        .with_limits(FeedLimits {
            max_download: 1000,
            ..FeedLimits::default()
        });
    let tracker = FeedSources {
        osv_ecosystems: Vec::new(),
        alpine_releases: Vec::new(),
        ..good.clone()
    };
    let err = mirror
        .update(&tracker, &db_path)
        .expect_err("over max_download");
    assert!(
        matches!(&err, FetchError::LimitExceeded { url: u, limit: FeedLimit::Download, max: 1000, entry: None }
            if u.ends_with("/tracker/data/json")),
        "{err}"
    );

    assert_eq!(
        std::fs::read(&db_path).unwrap(),
        before,
        "the database is untouched"
    );
    let osv_copy = &defaults.feed_paths(&good).unwrap().osv_dirs[0];
    assert!(
        std::fs::read_dir(osv_copy).unwrap().count() > 0,
        "the previous OSV copy is kept"
    );
    // And a normal feed still updates afterwards.
    defaults
        .update(&good, &db_path)
        .expect("a normal feed updates");
    AdvisoryStore::open(&db_path).unwrap().verify().unwrap();
}

#[test]
fn plain_http_is_refused_except_for_loopback() {
    let server = Server::start(publishers());
    let dir = tempfile::tempdir().unwrap();
    let mirror = FeedMirror::new(dir.path().join("feeds")).unwrap();
    let db_path = dir.path().join("trawl.db");
    let good = sources(&server);
    assert!(
        good.check_urls().is_ok(),
        "http://127.0.0.1:port is loopback"
    );

    for (field, insecure) in [
        ("osv", "http://example.com/osv"),
        ("secdb", "http://example.com/secdb"),
        ("tracker", "http://127.0.0.1.example.com/json"),
    ] {
        let mut sources = good.clone();
        match field {
            "osv" => sources.osv_base = insecure.into(),
            "secdb" => sources.secdb_base = insecure.into(),
            _ => sources.debian_tracker = Some(insecure.into()),
        }
        assert!(
            matches!(sources.check_urls(), Err(FetchError::InsecureUrl { url }) if url == insecure),
            "{insecure}"
        );
        let err = mirror.update(&sources, &db_path).expect_err(insecure);
        assert!(
            matches!(&err, FetchError::InsecureUrl { url } if url == insecure),
            "{err}"
        );
        assert!(err.to_string().contains("https://"), "{err}");
    }
    assert!(
        server.take_requests().is_empty(),
        "refused before anything was requested"
    );
    assert!(!db_path.exists());

    let with = |base: &str| FeedSources {
        osv_base: base.into(),
        ..FeedSources::default()
    };
    for allowed in [
        "https://example.com/osv",
        "http://localhost:8080/osv",
        "http://LOCALHOST./osv",
        "http://127.8.9.10/osv",
        "http://[::1]:8080/osv",
    ] {
        assert!(with(allowed).check_urls().is_ok(), "{allowed}");
    }
    for refused in [
        "http://[::2]/osv",
        "http://10.0.0.1/osv",
        "http://localhost.example/osv",
    ] {
        assert!(
            matches!(
                with(refused).check_urls(),
                Err(FetchError::InsecureUrl { .. })
            ),
            "{refused}"
        );
    }
    for invalid in ["ftp://example.com/osv", "file:///etc/osv", "not a url"] {
        assert!(
            matches!(
                with(invalid).check_urls(),
                Err(FetchError::InvalidUrl { .. })
            ),
            "{invalid}"
        );
    }

    // Loopback over plain http works end to end.
    mirror
        .update(&good, &db_path)
        .expect("loopback http accepted");
}
