//! `FeedMirror` against a real HTTP server on loopback serving copies of the
//! fixture feeds at the publishers' paths: the first update downloads and builds,
//! the second sends the validators, gets 304 everywhere and leaves the database
//! alone, a changed feed is downloaded again and rebuilt.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use trawl_advisory::fetch::{FeedMirror, FeedSources, FetchError, FetchOutcome};
use trawl_advisory::{AdvisoryDb, AdvisoryStore, PackageQuery};

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
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                let mut headers = HashMap::new();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = header.trim_end().split_once(':') {
                        headers.insert(name.to_ascii_lowercase(), value.trim().to_owned());
                    }
                }
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
                let reason = match status {
                    200 => "OK",
                    304 => "Not Modified",
                    _ => "Not Found",
                };
                let head = format!(
                    "HTTP/1.1 {status} {reason}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    if status == 304 { 0 } else { body.len() }
                );
                let _ = stream.write_all(head.as_bytes());
                if status != 304 {
                    let _ = stream.write_all(body);
                }
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
