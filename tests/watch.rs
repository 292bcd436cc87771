//! The `watch` service (the `trawl-watch` crate) end to end, run
//! in-process, and its binary (`trawl watch`): Debian's
//! `docker-registry` with htpasswd auth sends its notifications to the
//! service, images are pushed and pulled with `skopeo`, the advisory database
//! file is replaced, and everything is checked through the REST API.
//!
//! - `registry_scanning_service`: pushes are scanned once each; a pull is
//!   recorded (Trawl's own pulls are not); replacing the database rescans,
//!   from stored inventories, the images pushed or pulled within the window
//!   and no other; finding filters; a failed scan; auth on the API and the
//!   webhook; a restart keeps everything.
//! - `back_pressure_and_crash_recovery`: with one worker stuck on a scan and
//!   the queue full, the webhook answers 503 and the registry retries; the
//!   service is killed (no shutdown code runs) with one scan running and one
//!   queued, and at the next start both are redone and the retried event is
//!   taken.
//!
//! Hostile network (issue 15), in-process or with the `watch` binary itself
//! (signals, crashes):
//!
//! - `credentials_go_only_to_configured_registries`: events naming a second
//!   real registry (by URL, by request host) are refused and counted; it gets
//!   no request at all.
//! - `presigned_urls_are_redacted_from_errors`: blobs redirected to presigned
//!   storage that does not answer; the stored error has no signature.
//! - `back_pressure_is_per_event`: a 3,000-event envelope queues up to
//!   `max_pending`, is answered 503, and applies exactly again when re-sent.
//! - `slow_clients_cannot_hold_the_server`: 300 half-open connections
//!   against a cap of 100; a normal request answers within 5 s; header, idle
//!   and request timeouts; SIGTERM with idle clients exits at once.
//! - `a_crash_is_charged_to_the_job_running_alone`: SIGKILL with three scans
//!   running charges none; then the one running alone is charged each time,
//!   given up after three, and the others are scanned.
//! - `advisory_database_rewritten_in_place`: the database file is truncated
//!   and rewritten in place while images are scanned and the API is asked;
//!   the service stays up, refuses the torn file and takes the whole one.
//! - `secrets_never_on_the_command_line`: `--token` and `--webhook-token`
//!   are refused; tokens come from files or the environment; a password in
//!   `--store`'s URL is refused.
//!
//! Several processes on one PostgreSQL store (a real server, started for
//! this test process by the crate's test support):
//!
//! - `two_processes_share_one_postgres_store`: two services on one
//!   database, every scan claimed once; one is killed mid-scan and its jobs
//!   are taken over when their leases expire; a database change is
//!   rescanned once across both.
//!
//! The reliability test with 50 pushes, two `watch` processes, SIGKILL and
//! a PostgreSQL restart is `tests/watch_reliability.rs` (a test binary of
//! its own: it restarts the cluster).

mod common;
#[path = "../crates/trawl-registry/tests/registry_support/mod.rs"]
mod registry_support;
#[path = "common/watch.rs"]
mod watch_common;
#[path = "../crates/trawl-watch/tests/support/mod.rs"]
mod watch_support;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use registry_support::proxy::{Fault, Proxy};
use registry_support::{Auth, Notifications, PASSWORD, Registry, USER};
use reqwest::StatusCode;
use serde_json::{Value, json};
use trawl::advisory::StoreBuilder;
use trawl::registry::Credentials;
use trawl::{ImageSource, RegistryOptions, Scanner};
use trawl_watch::{HttpLimits, PolicyFiles, WatchedRegistry};
use watch_common::*;

/// The service on a runtime of its own, in a thread.
struct Watch {
    api: Api,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    kill: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl Watch {
    /// Starts the service and waits until `GET /healthz` answers. The port
    /// may still be held by a service just stopped: then it tries again.
    fn start(config: TestConfig) -> Watch {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let mut watch = Watch::spawn(config.clone());
            loop {
                if let Ok(r) = client().get(watch.url("/healthz")).send()
                    && r.status() == StatusCode::OK
                {
                    return watch;
                }
                if watch.thread.as_ref().is_some_and(|t| t.is_finished()) {
                    let result = watch.thread.take().unwrap().join().unwrap();
                    let error = result.expect_err("the service stopped by itself");
                    assert!(
                        error.contains("cannot listen") && Instant::now() < deadline,
                        "{error}"
                    );
                    std::thread::sleep(Duration::from_millis(50));
                    break;
                }
                assert!(Instant::now() < deadline, "the service did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    fn spawn(config: TestConfig) -> Watch {
        let addr = config.listen;
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (kill, kill_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let result = runtime.block_on(async move {
                let shutdown = async {
                    let _ = stop_rx.await;
                };
                tokio::select! {
                    r = trawl_watch::run(config.service, addr, config.limits, shutdown) => {
                        r.map_err(|e| e.to_string())
                    }
                    // A crash: the service's futures are dropped where they stand.
                    _ = kill_rx => Ok(()),
                }
            });
            runtime.shutdown_timeout(Duration::from_secs(10));
            result
        });
        Watch {
            api: Api { addr },
            stop: Some(stop),
            kill: Some(kill),
            thread: Some(thread),
        }
    }

    /// A graceful stop, as on SIGTERM.
    fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.thread.take().unwrap().join().unwrap().unwrap();
    }

    /// Stops without running any of the service's shutdown code.
    fn kill(mut self) {
        let _ = self.kill.take().unwrap().send(());
        self.thread.take().unwrap().join().unwrap().unwrap();
    }
}

impl std::ops::Deref for Watch {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The service's logs, shown for a failing test (`TRAWL_LOG`, default `info`).
fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRAWL_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .try_init();
}

/// The registry events name `host`, pulled from `pull_from` with the test
/// user's credentials.
fn watched(host: &str, pull_from: &str) -> WatchedRegistry {
    WatchedRegistry {
        host: host.into(),
        pull_from: pull_from.into(),
        credentials: Some(Credentials::new(USER, PASSWORD)),
    }
}

/// The service's configuration, where it listens and its HTTP limits.
#[derive(Clone)]
struct TestConfig {
    service: trawl_watch::Config,
    listen: SocketAddr,
    limits: HttpLimits,
}

impl std::ops::Deref for TestConfig {
    type Target = trawl_watch::Config;

    fn deref(&self) -> &trawl_watch::Config {
        &self.service
    }
}

impl std::ops::DerefMut for TestConfig {
    fn deref_mut(&mut self) -> &mut trawl_watch::Config {
        &mut self.service
    }
}

fn config(root: &Path, listen: SocketAddr, registries: Vec<WatchedRegistry>) -> TestConfig {
    let mut service = trawl_watch::Config::new(
        root.join("db/trawl.db"),
        root.join("data"),
        API_TOKEN,
        WEBHOOK_TOKEN,
        registries,
    );
    service.registry = RegistryOptions::default()
        .docker_config(root.join("no-docker-config.json"))
        .retry_base_delay(Duration::from_millis(20));
    service.workers = 2;
    service.max_pending = 16;
    service.rescan_window = trawl_watch::parse_duration("30d").unwrap();
    service.db_poll_interval = Duration::from_millis(100);
    let mut policy = PolicyFiles::default();
    policy.ignore_files = vec![ignore_file(root)];
    service.policy = policy;
    service.cache_max_bytes = CACHE_MAX_BYTES;
    service.job_lease = Duration::from_secs(30);
    TestConfig {
        service,
        listen,
        limits: HttpLimits::default(),
    }
}

const HOOK_SECRET: &str = "hook-secret";

/// A notification receiver on loopback (an axum server on a thread of its
/// own): keeps each POST's event, checking its signature.
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let keep = got.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let app = axum::Router::new().route(
                    "/hook",
                    axum::routing::post(
                        move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                            let keep = keep.clone();
                            async move {
                                let h = |n: &str| headers[n].to_str().unwrap().to_string();
                                assert!(trawl_watch::notify::verify(
                                    HOOK_SECRET.as_bytes(),
                                    &h("x-trawl-timestamp"),
                                    &body,
                                    &h("x-trawl-signature"),
                                ));
                                let event: Value = serde_json::from_slice(&body).unwrap();
                                assert_eq!(event["id"], h("x-trawl-event-id"));
                                assert_eq!(event["type"], h("x-trawl-event"));
                                keep.lock().unwrap().push(event);
                                axum::http::StatusCode::NO_CONTENT
                            }
                        },
                    ),
                );
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        Receiver { addr, got }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The distinct events of `kind` received (by id).
    fn of(&self, kind: &str) -> Vec<Value> {
        let mut events: Vec<Value> = Vec::new();
        for e in self.got.lock().unwrap().iter() {
            if e["type"] == kind && !events.iter().any(|seen| seen["id"] == e["id"]) {
                events.push(e.clone());
            }
        }
        events
    }

    /// Waits for an event of `kind` that `matches`.
    fn wait_for(&self, kind: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(e) = self.of(kind).into_iter().find(|e| matches(e)) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no {kind} event: {:?}",
                self.got.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The layer cache bound the tests give the service: room for the Debian
/// image's larger layer entry (about 440 KiB with the language catalogers'
/// selection), not for both of its entries.
const CACHE_MAX_BYTES: u64 = 560 << 10;

/// The service's ignore file; empty until a test writes rules into it.
fn ignore_file(root: &Path) -> std::path::PathBuf {
    let path = root.join("policy/ignore.txt");
    if !path.exists() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "").unwrap();
    }
    path
}

/// Replaces a file by rename, as editors and config management do.
fn replace_file(path: &Path, contents: &str) {
    let next = path.with_extension("next");
    std::fs::write(&next, contents).unwrap();
    std::fs::rename(&next, path).unwrap();
}

/// Test registries on one storage: `notifying` sends its events to
/// `watch_url`, `silent` sends none.
struct Registries {
    notifying: Registry,
    silent: Registry,
}

fn registries(root: &Path, watch: SocketAddr) -> Registries {
    let storage = root.join("storage");
    std::fs::create_dir_all(&storage).unwrap();
    let htpasswd = root.join("htpasswd");
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    std::fs::write(&htpasswd, format!("{USER}:{hash}\n")).unwrap();
    let notifications = Notifications {
        url: format!("http://{watch}/events"),
        authorization: format!("Bearer {WEBHOOK_TOKEN}"),
    };
    let auth = Auth::Htpasswd(htpasswd);
    Registries {
        notifying: Registry::start_with(root, &storage, &auth, None, Some(&notifications)),
        silent: Registry::start(root, &storage, &auth, None),
    }
}

/// Pushes the test image `name` (`debian`, `distroless`, `scratch`) to `host/repo:tag`;
/// returns its manifest digest.
fn push(name: &str, host: &str, repo: &str, tag: &str) -> String {
    let layout = common::images().join(name).join("oci");
    let source_tag = if name == "debian" {
        "bookworm"
    } else {
        "latest"
    };
    let creds = format!("{USER}:{PASSWORD}");
    skopeo(&[
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &format!("oci:{}:{source_tag}", layout.display()),
        &format!("docker://{host}/{repo}:{tag}"),
    ]);
    registry_support::layout_manifest(&layout).0
}

/// A push event as distribution 2.8 sends it, `days` days ago.
fn push_event(host: &str, repo: &str, tag: &str, digest: &str, days: i64) -> Value {
    let at = chrono::Utc::now() - chrono::Duration::days(days);
    json!({"events": [{
        "id": format!("test-{digest}"),
        "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "action": "push",
        "target": {
            "mediaType": OCI_MANIFEST, "size": 509, "digest": digest, "length": 509,
            "repository": repo, "url": format!("http://{host}/v2/{repo}/manifests/{digest}"),
            "tag": tag,
        },
        "request": {"id": "r1", "addr": "127.0.0.1:40000", "host": host, "method": "PUT",
                    "useragent": "skopeo/1.9.3"},
        "actor": {"name": USER},
        "source": {"addr": "registry:5000", "instanceID": "test"},
    }]})
}

/// OSV records for Debian 12: `old` ones that affect nothing in the test
/// images (an openssl fix older than any installed version); with `new`, also
/// a critical openssl issue fixed after the installed version (alias
/// CVE-2099-0001) and an unfixed low one in util-linux.
fn write_db(path: &Path, openssl_version: &str, new: bool) {
    let feed = tempfile::tempdir().unwrap();
    let record = |id: &str, name: &str, extra: Value| {
        let mut r = json!({
            "schema_version": "1.6.0", "id": id, "modified": "2026-11-01T00:00:00Z",
            "summary": format!("test record {id}"),
            "affected": [{"package": {"ecosystem": "Debian:12", "name": name}}],
        });
        for (k, v) in extra.as_object().unwrap() {
            if k == "ranges" || k == "database_specific" {
                r["affected"][0][k] = v.clone();
            } else {
                r[k] = v.clone();
            }
        }
        r
    };
    let mut records = vec![record(
        "TRAWL-W-OLD",
        "openssl",
        json!({"ranges": [{"type": "ECOSYSTEM",
                "events": [{"introduced": "0"}, {"fixed": "1.0.0-1"}]}]}),
    )];
    if new {
        records.push(record(
            "TRAWL-W-CRIT",
            "openssl",
            json!({"aliases": ["CVE-2099-0001"],
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"},
                           {"fixed": format!("{openssl_version}+trawl1")}]}],
                "severity": [{"type": "CVSS_V3",
                              "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}),
        ));
        records.push(record(
            "TRAWL-W-LOW",
            "util-linux",
            json!({"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
                   "database_specific": {"severity": "low"}}),
        ));
    }
    for r in &records {
        std::fs::write(
            feed.path()
                .join(format!("{}.json", r["id"].as_str().unwrap())),
            r.to_string(),
        )
        .unwrap();
    }
    let mut builder = StoreBuilder::new();
    let warnings = builder.add_osv_dir(feed.path()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    // Written beside the database, then renamed over it: one atomic replacement.
    let next = path.with_extension("next");
    builder.write(&next).unwrap();
    std::fs::rename(&next, path).unwrap();
}

/// Binary packages of the Debian test image built from `source`.
fn binaries_of(packages: &[trawl::Package], source: &str) -> Vec<String> {
    let mut names: Vec<String> = packages
        .iter()
        .filter(|p| p.source_name == source)
        .map(|p| p.name.clone())
        .collect();
    names.sort();
    names
}

fn zero_counts(image: &Value) -> bool {
    let counts = &image["counts"];
    counts["findings"] == 0
        && counts["by_severity"]
            .as_object()
            .is_some_and(|m| !m.is_empty() && m.values().all(|v| v == 0))
        && counts["by_fix_state"]
            .as_object()
            .is_some_and(|m| !m.is_empty() && m.values().all(|v| v == 0))
}

fn ids(findings: &[Value]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = findings
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                f["package"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// A test's working directory, with logging set up and a `db/` directory,
/// holding an empty advisory database (`db/trawl.db`, epoch "0") when
/// `with_db`.
fn work_dir(with_db: bool) -> tempfile::TempDir {
    logs();
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("db")).unwrap();
    if with_db {
        write_db(&root.path().join("db/trawl.db"), "0", false);
    }
    root
}

#[test]
fn registry_scanning_service() {
    let root = work_dir(false);
    let root = root.path();
    let debian_layout = common::images().join("debian/oci");
    let inventory = Scanner::builder()
        .build()
        .unwrap()
        .inventory_blocking(
            &format!("oci-dir:{}:bookworm", debian_layout.display())
                .parse::<ImageSource>()
                .unwrap(),
        )
        .unwrap()
        .inventory;
    let openssl = inventory
        .packages
        .iter()
        .find(|p| p.source_name == "openssl")
        .expect("the Debian image has openssl")
        .source_version
        .clone();
    let openssl_binaries = binaries_of(&inventory.packages, "openssl");
    let util_linux_binaries = binaries_of(&inventory.packages, "util-linux");
    assert!(openssl_binaries.contains(&"libssl3".to_string()));
    assert!(util_linux_binaries.len() > 1);
    write_db(&root.join("db/trawl.db"), &openssl, false);

    let listen: SocketAddr = format!("127.0.0.1:{}", registry_support::free_port())
        .parse()
        .unwrap();
    let regs = registries(root, listen);
    let (r, silent) = (&regs.notifying.host, &regs.silent.host);
    let hooks = Receiver::start();
    let mut cfg = config(root, listen, vec![watched(r, r)]);
    cfg.notify.targets =
        vec![trawl_watch::NotifyTarget::new(hooks.url(), HOOK_SECRET.as_bytes()).unwrap()];
    cfg.notify.poll_interval = Duration::from_millis(100);
    let watch = Watch::start(cfg);

    // Auth: the API wants its token, the webhook its own; /healthz is open.
    let images_url = watch.url("/v1/images");
    for token in [None, Some("wrong"), Some(WEBHOOK_TOKEN)] {
        let mut request = client().get(&images_url);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = request.send().unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
    for token in [None, Some("wrong"), Some(API_TOKEN)] {
        let mut request = client().post(watch.url("/events")).body("{\"events\":[]}");
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        assert_eq!(
            request.send().unwrap().status(),
            StatusCode::UNAUTHORIZED,
            "{token:?}"
        );
    }
    let garbage = client()
        .post(watch.url("/events"))
        .bearer_auth(WEBHOOK_TOKEN)
        .body("not an envelope")
        .send()
        .unwrap();
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        client().get(watch.url("/healthz")).send().unwrap().status(),
        StatusCode::OK
    );

    // Debian and distroless were pushed 40 days ago: through the silent
    // registry, their notifications delivered now as the registry would have
    // sent them then. Scratch is pushed now, through the notifying registry.
    let debian = push("debian", silent, "trawl/debian", "bookworm");
    let distroless = push("distroless", silent, "trawl/distroless", "latest");
    for (repo, tag, digest) in [
        ("trawl/debian", "bookworm", &debian),
        ("trawl/distroless", "latest", &distroless),
    ] {
        let response = watch.post_events(&push_event(r, repo, tag, digest, 40));
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(response.json::<Value>().unwrap()["queued"], 1);
    }
    let scratch = push("scratch", r, "trawl/scratch", "latest");
    for digest in [&debian, &distroless, &scratch] {
        watch.wait_for(digest, "scan", |i| i["state"] == "scanned");
    }
    let d = watch.image(&debian);
    assert_eq!(
        (&d["verdict"], &d["scans"], &d["rescans"]),
        (&json!("healthy"), &json!(1), &json!(0)),
        "{d}"
    );
    assert!(zero_counts(&d), "{d}");
    assert!(watch.findings(&debian, "").is_empty());
    let s = watch.image(&distroless);
    assert_eq!((&s["verdict"], &s["scans"]), (&json!("healthy"), &json!(1)));
    assert!(zero_counts(&s), "{s}");
    let x = watch.image(&scratch);
    assert_eq!(
        (&x["verdict"], &x["scans"]),
        (&json!("unsupported"), &json!(1))
    );
    assert_eq!(
        x["tags"],
        json!([{"repository": "trawl/scratch", "tag": "latest"}])
    );

    // A pull through the registry is recorded; the service's own pulls of
    // the same registry (delivered before it) are not.
    let creds = format!("{USER}:{PASSWORD}");
    skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        &creds,
        &format!("docker://{r}/trawl/debian:bookworm"),
    ]);
    watch.wait_for(&debian, "the pull", |i| i["last_pulled"].is_string());
    for digest in [&distroless, &scratch] {
        assert_eq!(watch.image(digest)["last_pulled"], Value::Null, "{digest}");
    }
    let (status, list) = watch.get("/v1/images");
    assert_eq!(status, StatusCode::OK);
    let rows: Vec<(String, String, String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["repository"].as_str().unwrap().to_string(),
                row["tag"].as_str().unwrap().to_string(),
                row["digest"].as_str().unwrap().to_string(),
                row["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let row = |repo: &str, tag: &str, digest: &str, verdict: &str| {
        (
            repo.to_string(),
            tag.to_string(),
            digest.to_string(),
            verdict.to_string(),
        )
    };
    assert_eq!(
        rows,
        [
            row("trawl/debian", "bookworm", &debian, "healthy"),
            row("trawl/distroless", "latest", &distroless, "healthy"),
            row("trawl/scratch", "latest", &scratch, "unsupported"),
        ]
    );
    assert!(list[0]["last_pulled"].is_string() && list[0]["last_scanned"].is_string());

    // A new database: the pulled image and the one pushed now are matched
    // again from their stored inventories; distroless (pushed 40 days ago,
    // never pulled) keeps its old result.
    let (_, health) = watch.get("/healthz");
    let old_db = health["advisory_db"].clone();
    write_db(&root.join("db/trawl.db"), &openssl, true);
    let d = watch.wait_for(&debian, "the rescan", |i| i["verdict"] == "unhealthy");
    watch.wait_for(&scratch, "the rescan", |i| i["rescans"] == 1);
    let (_, health) = watch.get("/healthz");
    assert_ne!(health["advisory_db"], old_db);
    assert_eq!(d["advisory_db"], health["advisory_db"]);
    assert_eq!((&d["scans"], &d["rescans"]), (&json!(1), &json!(1)), "{d}");
    let (n_openssl, n_util) = (openssl_binaries.len(), util_linux_binaries.len());
    let counts = &d["counts"];
    assert_eq!(counts["findings"], n_openssl + n_util, "{d}");
    assert_eq!(counts["by_severity"]["critical"], n_openssl);
    assert_eq!(counts["by_severity"]["low"], n_util);
    assert_eq!(counts["by_fix_state"]["fixed"], n_openssl);
    assert_eq!(counts["by_fix_state"]["unfixed"], n_util);
    assert_eq!(counts["fixable"], n_openssl);
    let s = watch.image(&distroless);
    assert_eq!(
        (&s["verdict"], &s["scans"], &s["rescans"]),
        (&json!("healthy"), &json!(1), &json!(0)),
        "distroless carries libssl3 but was not in the window: {s}"
    );
    assert_eq!(s["advisory_db"], old_db);
    // One verdict.changed, for the one image whose verdict changed, with
    // its new findings; every scan reported.
    let change = hooks.wait_for("verdict.changed", |e| {
        e["image"]["digest"] == debian.as_str()
    });
    assert_eq!(
        (&change["previous_verdict"], &change["verdict"]),
        (&json!("healthy"), &json!("unhealthy"))
    );
    assert_eq!(change["advisory_db"]["sha256"], health["advisory_db"]);
    assert_eq!(change["findings_total"], n_openssl + n_util);
    assert_eq!(change["findings_omitted"], 0);
    let first = &change["findings"][0];
    assert_eq!(
        (&first["id"], &first["severity"], &first["fixed_version"]),
        (
            &json!("CVE-2099-0001"),
            &json!("critical"),
            &json!(format!("{openssl}+trawl1"))
        )
    );
    // The rescan stored no report: the one served is rebuilt from the
    // stored inventory against the new database, and has exactly the
    // findings the rescan matched (those its event carries), served the
    // same again from the cache it wrote back.
    let fields = |f: &Value| {
        (
            f["id"].clone(),
            f["aliases"].clone(),
            f["package"].clone(),
            f["ecosystem"].clone(),
            f["severity"].clone(),
            f["fix_state"].clone(),
            f["fixed_version"].clone(),
        )
    };
    let served: Vec<_> = watch.findings(&debian, "").iter().map(fields).collect();
    let mut matched: Vec<_> = change["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(fields)
        .collect();
    let mut sorted = served.clone();
    sorted.sort_by_key(|f| format!("{f:?}"));
    matched.sort_by_key(|f| format!("{f:?}"));
    assert_eq!(sorted, matched);
    let again: Vec<_> = watch.findings(&debian, "").iter().map(fields).collect();
    assert_eq!(again, served);
    // And they are what a fresh scan of the image against the new database
    // finds (the policy's ignore file is empty here).
    let fresh = Scanner::builder()
        .database(trawl::advisory::AdvisoryStore::open(root.join("db/trawl.db")).unwrap())
        .build()
        .unwrap()
        .scan_blocking(
            &format!("oci-dir:{}:bookworm", debian_layout.display())
                .parse::<ImageSource>()
                .unwrap(),
        )
        .unwrap();
    let mut expected: Vec<_> = fresh
        .findings
        .iter()
        .map(|f| fields(&serde_json::to_value(f).unwrap()))
        .collect();
    expected.sort_by_key(|f| format!("{f:?}"));
    assert_eq!(sorted, expected);
    for digest in [&debian, &distroless, &scratch] {
        let done = hooks.wait_for("scan.completed", |e| {
            e["image"]["digest"] == digest.as_str()
        });
        assert_eq!(done["advisory_db"]["sha256"], old_db);
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        hooks.of("verdict.changed").len(),
        1,
        "the rescan changed one verdict"
    );
    let x = watch.image(&scratch);
    assert_eq!(
        (&x["scans"], &x["verdict"]),
        (&json!(1), &json!("unsupported"))
    );

    // Findings and their filters.
    let critical: Vec<(String, String)> = openssl_binaries
        .iter()
        .map(|p| ("CVE-2099-0001".to_string(), p.clone()))
        .collect();
    let low: Vec<(String, String)> = util_linux_binaries
        .iter()
        .map(|p| ("TRAWL-W-LOW".to_string(), p.clone()))
        .collect();
    let all = watch.findings(&debian, "");
    assert_eq!(all.len(), n_openssl + n_util);
    for query in ["?severity=critical", "?severity=high", "?fix_state=fixed"] {
        assert_eq!(ids(&watch.findings(&debian, query)), critical, "{query}");
    }
    assert_eq!(watch.findings(&debian, "?severity=low").len(), all.len());
    assert_eq!(ids(&watch.findings(&debian, "?fix_state=unfixed")), low);
    assert_eq!(
        ids(&watch.findings(&debian, "?package=libssl3")),
        [("CVE-2099-0001".to_string(), "libssl3".to_string())]
    );
    assert_eq!(ids(&watch.findings(&debian, "?package=openssl")), critical);
    for query in ["?id=TRAWL-W-CRIT", "?id=cve-2099-0001"] {
        assert_eq!(ids(&watch.findings(&debian, query)), critical, "{query}");
    }
    assert!(
        watch
            .findings(&debian, "?severity=critical&fix_state=unfixed")
            .is_empty()
    );
    let f = &watch.findings(&debian, "?package=libssl3")[0];
    assert_eq!(f["fixed_version"], format!("{openssl}+trawl1"));
    assert_eq!(f["severity"], "critical");
    for bad in ["?severity=dire", "?fix_state=maybe", "?colour=red"] {
        let (status, body) = watch.get(&format!("/v1/images/{debian}/findings{bad}"));
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    assert!(watch.findings(&distroless, "").is_empty());
    let unknown = format!("sha256:{}", "0".repeat(64));
    for path in [
        format!("/v1/images/{unknown}"),
        format!("/v1/images/{unknown}/findings"),
    ] {
        assert_eq!(watch.get(&path).0, StatusCode::NOT_FOUND, "{path}");
    }

    // A scan that fails (the manifest is not in the registry) is recorded as
    // failed, with the registry's answer; it has no report.
    let missing = format!("sha256:{}", "e".repeat(64));
    let response = watch.post_events(&push_event(r, "trawl/debian", "gone", &missing, 0));
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let m = watch.wait_for(&missing, "the failure", |i| i["state"] == "failed");
    let failed = hooks.wait_for("scan.failed", |e| e["image"]["digest"] == missing.as_str());
    assert_eq!(
        failed["image"]["tags"],
        json!([{"repository": "trawl/debian", "tag": "gone"}])
    );
    assert_eq!(failed["error"], m["error"]);
    assert_eq!(
        (&m["scans"], &m["failures"], &m["verdict"], &m["counts"]),
        (&json!(0), &json!(1), &Value::Null, &Value::Null),
        "{m}"
    );
    assert!(m["error"].as_str().unwrap().contains(&missing), "{m}");
    assert!(m["last_failed"].is_string() && m["last_scanned"].is_null());
    assert_eq!(
        watch.get(&format!("/v1/images/{missing}/findings")).0,
        StatusCode::CONFLICT
    );

    // Duplicates coalesce: a push of the scanned image under a new tag, and
    // the old notification again, record the tag and the time only.
    push("debian", r, "trawl/debian", "v2");
    let d = watch.wait_for(&debian, "the new tag", |i| {
        i["tags"]
            .as_array()
            .unwrap()
            .contains(&json!({"repository": "trawl/debian", "tag": "v2"}))
    });
    assert_eq!(d["scans"], 1);
    let again = watch.post_events(&push_event(r, "trawl/debian", "bookworm", &debian, 40));
    assert_eq!(again.json::<Value>().unwrap()["queued"], 0);
    let d = watch.image(&debian);
    assert_eq!((&d["scans"], &d["rescans"]), (&json!(1), &json!(1)));

    // A restart on the same data directory keeps everything, and rescans
    // nothing (the database did not change meanwhile).
    // (Push and pull times are left out: a late notification may move them.)
    let settled = |list: Value| -> Vec<Value> {
        let mut rows = list.as_array().unwrap().clone();
        for row in &mut rows {
            let row = row.as_object_mut().unwrap();
            row.remove("last_pushed");
            row.remove("last_pulled");
        }
        rows
    };
    let (_, before) = watch.get("/v1/images");
    watch.stop();
    let watch = Watch::start(config(root, listen, vec![watched(r, r)]));
    let (status, after) = watch.get("/v1/images");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(settled(after.clone()), settled(before));
    assert_eq!(after.as_array().unwrap().len(), 5, "{after}");
    assert_eq!(watch.findings(&debian, "").len(), n_openssl + n_util);
    let d = watch.image(&debian);
    assert_eq!(
        (&d["verdict"], &d["scans"], &d["rescans"]),
        (&json!("unhealthy"), &json!(1), &json!(1))
    );

    // The layer cache stays within its bound.
    // (The Debian image's two entries alone are larger.)
    let cached: Vec<u64> = std::fs::read_dir(root.join("data/layers"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".layer"))
        .map(|e| e.metadata().unwrap().len())
        .collect();
    let total: u64 = cached.iter().sum();
    assert!(
        !cached.is_empty() && total <= CACHE_MAX_BYTES,
        "{cached:?} cached"
    );

    // The policy changes: an ignore rule for the low finding. The images in
    // the window are classified again; the rule's findings are suppressed,
    // listed apart with the reason, and no longer counted.
    let (_, health) = watch.get("/healthz");
    let first_policy = health["policy"].clone();
    assert_eq!(d["policy"], first_policy);
    let ignore = ignore_file(root);
    replace_file(&ignore, "TRAWL-W-LOW reason=\"accepted: not reachable\"\n");
    let d = watch.wait_for(&debian, "the policy rescan", |i| i["rescans"] == 2);
    let (_, health) = watch.get("/healthz");
    assert_ne!(health["policy"], first_policy);
    assert_eq!(d["policy"], health["policy"]);
    assert_eq!(
        (
            &d["verdict"],
            &d["counts"]["findings"],
            &d["counts"]["suppressed"]
        ),
        (&json!("unhealthy"), &json!(n_openssl), &json!(n_util)),
        "{d}"
    );
    assert_eq!(ids(&watch.findings(&debian, "")), critical);
    let suppressed = watch.findings(&debian, "?suppressed=true");
    assert_eq!(ids(&suppressed), low);
    assert!(
        suppressed[0]["suppression"]
            .to_string()
            .contains("accepted: not reachable"),
        "{}",
        suppressed[0]
    );
    watch.wait_for(&scratch, "the policy rescan", |i| i["rescans"] == 2);
    assert_eq!(watch.image(&distroless)["rescans"], 0, "outside the window");

    // A policy file that does not parse is reported and the policy in use stays.
    replace_file(&ignore, "TRAWL-W-LOW expires=someday reason=\"x\"\n");
    std::thread::sleep(Duration::from_millis(600));
    let (_, unchanged) = watch.get("/healthz");
    assert_eq!(unchanged["policy"], health["policy"]);
    assert_eq!(watch.image(&debian)["rescans"], 2);
    // An expired rule does not suppress: back to counting everything.
    replace_file(
        &ignore,
        "TRAWL-W-LOW expires=2020-01-31 reason=\"until the January release\"\n",
    );
    let d = watch.wait_for(&debian, "the next policy rescan", |i| i["rescans"] == 3);
    assert_eq!(
        (&d["counts"]["findings"], &d["counts"]["suppressed"]),
        (&json!(n_openssl + n_util), &json!(0)),
        "{d}"
    );

    // Deletes. Distroless is pushed to a second repository, then deleted
    // from its first: it stays, listed under the second. Scratch is deleted
    // from its only repository: forgotten.
    push("distroless", r, "trawl/mirror", "latest");
    let mirror = json!({"repository": "trawl/mirror", "tag": "latest"});
    watch.wait_for(&distroless, "the mirror push", |i| {
        i["tags"].as_array().unwrap().contains(&mirror)
    });
    for image in ["trawl/distroless:latest", "trawl/scratch:latest"] {
        skopeo(&[
            "delete",
            "--tls-verify=false",
            "--creds",
            &creds,
            &format!("docker://{r}/{image}"),
        ]);
    }
    let s = watch.wait_for(&distroless, "the delete", |i| i["tags"] == json!([mirror]));
    assert_eq!((&s["scans"], &s["verdict"]), (&json!(1), &json!("healthy")));
    let deadline = Instant::now() + DEADLINE;
    while watch.get(&format!("/v1/images/{scratch}")).0 != StatusCode::NOT_FOUND {
        assert!(Instant::now() < deadline, "scratch was not forgotten");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        watch.get(&format!("/v1/images/{scratch}/findings")).0,
        StatusCode::NOT_FOUND
    );
    let (_, list) = watch.get("/v1/images");
    let mut repositories: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["repository"].as_str().unwrap())
        .collect();
    repositories.dedup();
    assert_eq!(repositories, ["trawl/debian", "trawl/mirror"], "{list}");
    watch.stop();
}

/// The scratch image's manifest with an annotation, PUT to `host` under
/// `trawl/scratch:tag` (the blobs are there already); returns its digest.
fn scratch_variant(host: &str, tag: &str) -> String {
    let layout = common::images().join("scratch/oci");
    let (digest, _) = registry_support::layout_manifest(&layout);
    let blob = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(blob).unwrap()).unwrap();
    manifest["annotations"] = json!({"org.example.variant": tag});
    let body = serde_json::to_vec(&manifest).unwrap();
    registry_support::put_manifest(host, "trawl/scratch", tag, OCI_MANIFEST, &body);
    format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body))
    )
}

#[test]
fn back_pressure_and_crash_recovery() {
    let root = work_dir(true);
    let root = root.path();
    let listen: SocketAddr = format!("127.0.0.1:{}", registry_support::free_port())
        .parse()
        .unwrap();
    let regs = registries(root, listen);
    let r = &regs.notifying.host;
    push("scratch", &regs.silent.host, "trawl/scratch", "latest");

    // One worker, room for one waiting scan, and every scan pulls through
    // the gate (--registry), which holds it until opened.
    let gate = Gate::start(r);
    let mut cfg = config(root, listen, vec![watched(r, &gate.host)]);
    cfg.workers = 1;
    cfg.max_pending = 1;
    let watch = Watch::start(cfg.clone());
    let a = scratch_variant(r, "a");
    watch.wait_for(&a, "a running scan", |i| i["state"] == "scanning");
    let b = scratch_variant(r, "b");
    watch.wait_for(&b, "a queued scan", |i| i["state"] == "queued");
    // The queue is full: an event that needs a scan is refused, not recorded.
    let c_digest_unpushed = format!("sha256:{}", "c".repeat(64));
    let refused = watch.post_events(&push_event(r, "trawl/scratch", "c", &c_digest_unpushed, 0));
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(
        watch.get(&format!("/v1/images/{c_digest_unpushed}")).0,
        StatusCode::NOT_FOUND
    );
    // A real push meanwhile: the registry's notification is refused the same
    // way, and the registry keeps retrying it.
    let c = scratch_variant(r, "c");
    let (_, health) = watch.get("/healthz");
    assert_eq!(
        (&health["queued"], &health["running"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(
        watch.get(&format!("/v1/images/{c}")).0,
        StatusCode::NOT_FOUND
    );

    // A crash with one scan running and one queued; then a start with the
    // registry reachable: both are redone, and the retried event is taken.
    watch.kill();
    gate.open();
    let watch = Watch::start(cfg);
    for digest in [&a, &b, &c] {
        let image = watch.wait_for(digest, "the scan", |i| i["state"] == "scanned");
        assert_eq!(
            (&image["scans"], &image["verdict"]),
            (&json!(1), &json!("unsupported")),
            "{image}"
        );
    }
    let (_, health) = watch.get("/healthz");
    assert_eq!(
        (&health["queued"], &health["running"]),
        (&json!(0), &json!(0))
    );
    watch.stop();
}

// ---------------------------------------------------------------------------
// Hostile network (issue 15).

/// Token and password files, the arguments every run of the binary shares.
fn binary_args(root: &Path) -> Vec<String> {
    let secrets = root.join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    for (name, value) in [
        ("api.token", API_TOKEN),
        ("webhook.token", WEBHOOK_TOKEN),
        ("registry.password", PASSWORD),
    ] {
        std::fs::write(secrets.join(name), format!("{value}\n")).unwrap();
    }
    [
        "--db",
        &root.join("db/trawl.db").display().to_string(),
        "--data",
        &root.join("data").display().to_string(),
        "--token-file",
        &secrets.join("api.token").display().to_string(),
        "--webhook-token-file",
        &secrets.join("webhook.token").display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn credentials_go_only_to_configured_registries() {
    let root = work_dir(true);
    let root = root.path();
    let listen = free_addr();
    let regs = registries(root, listen);
    let r = &regs.notifying.host;
    // A second real registry (the same storage, the same user and password),
    // behind a proxy that records every request.
    let other = Proxy::start(&regs.silent.host, None);
    let watch = Watch::start(config(root, listen, vec![watched(r, r)]));
    let debian = push("debian", &regs.silent.host, "trawl/debian", "bookworm");

    // Events naming the other registry, as the notifying registry sends them
    // for a client that put another name in `Host:`: by the URL, by the
    // request's host alone, and by both.
    let mut by_request_host = push_event(&other.host, "trawl/debian", "one", &debian, 0);
    by_request_host["events"][0]["target"]["url"] = json!("");
    let mut by_url = push_event(r, "trawl/debian", "two", &debian, 0);
    by_url["events"][0]["target"]["url"] = json!(format!(
        "http://{}/v2/trawl/debian/manifests/{debian}",
        other.host
    ));
    for envelope in [
        push_event(&other.host, "trawl/debian", "bookworm", &debian, 0),
        by_request_host,
        by_url,
    ] {
        let response = watch.post_events(&envelope);
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let body: Value = response.json().unwrap();
        assert_eq!(
            (&body["queued"], &body["unknown_registry"]),
            (&json!(0), &json!(1)),
            "{body}"
        );
    }
    // Pushes through the configured registry are scanned meanwhile.
    let scratch = push("scratch", r, "trawl/scratch", "latest");
    watch.wait_for(&scratch, "scan", |i| i["state"] == "scanned");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(other.requests().len(), 0, "{:?}", other.requests());
    assert_eq!(
        watch.get(&format!("/v1/images/{debian}")).0,
        StatusCode::NOT_FOUND
    );
    let (_, health) = watch.get("/healthz");
    assert_eq!(health["unknown_registry_events"], 3, "{health}");
    watch.stop();
}

#[test]
fn presigned_urls_are_redacted_from_errors() {
    let root = work_dir(true);
    let root = root.path();
    let listen = free_addr();
    let regs = registries(root, listen);
    let r = &regs.notifying.host;
    // Blobs are sent to "storage" that does not answer, by a presigned URL.
    let proxy = Proxy::start(r, None);
    let storage = format!(
        "http://127.0.0.1:{}/bucket/blob?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIATRAWLTEST%2F20261120&X-Amz-Signature=5ec2e7deadbeef&path=",
        registry_support::free_port()
    );
    proxy.add("GET", "/blobs/", Fault::Redirect(storage), usize::MAX);
    let watch = Watch::start(config(root, listen, vec![watched(r, &proxy.host)]));
    let scratch = push("scratch", r, "trawl/scratch", "latest");
    let image = watch.wait_for(&scratch, "the failure", |i| i["state"] == "failed");
    let error = image["error"].as_str().unwrap();
    for secret in ["5ec2e7deadbeef", "AKIATRAWLTEST", "X-Amz-Signature"] {
        assert!(!error.contains(secret), "{error}");
    }
    assert!(error.contains("/bucket/blob?<redacted>"), "{error}");
    watch.stop();
}

/// A push event of `n` images (digests of their numbers) in one envelope.
fn flood_envelope(host: &str, n: usize) -> Value {
    let events: Vec<Value> = (0..n)
        .map(|i| {
            let digest = format!(
                "sha256:{}",
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(i.to_string()))
            );
            push_event(host, "trawl/flood", &format!("t{i}"), &digest, 0)["events"][0].clone()
        })
        .collect();
    json!({ "events": events })
}

#[test]
fn back_pressure_is_per_event() {
    let root = work_dir(true);
    let root = root.path();
    let listen = free_addr();
    let regs = registries(root, listen);
    let r = &regs.notifying.host;
    // Scans hang in the gate, so the queue only fills.
    let gate = Gate::start(r);
    let mut cfg = config(root, listen, vec![watched(r, &gate.host)]);
    cfg.workers = 2;
    cfg.max_pending = 16;
    let watch = Watch::start(cfg);
    let envelope = flood_envelope(r, 3_000);
    let response = watch.post_events(&envelope);
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().unwrap();
    let (_, health) = watch.get("/healthz");
    assert!(
        health["queued"].as_i64().unwrap() <= 16 && health["running"].as_i64().unwrap() <= 2,
        "{health}"
    );
    let (_, list) = watch.get("/v1/images");
    let listed = list.as_array().unwrap().len();
    assert_eq!(body["recorded"], listed, "{body}");
    assert!(listed <= 18, "{listed} images recorded");
    assert_eq!(body["deferred"], 3_000 - listed, "{body}");
    // The registry sends the whole envelope again: what was applied applies
    // again without effect (one job per image, nothing queued twice), and as
    // the workers took jobs meanwhile, a little more fits.
    let again = watch.post_events(&envelope);
    assert_eq!(again.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = again.json().unwrap();
    let (_, list) = watch.get("/v1/images");
    let now_listed = list.as_array().unwrap().len();
    let (_, health) = watch.get("/healthz");
    let jobs = health["queued"].as_u64().unwrap() + health["running"].as_u64().unwrap();
    assert!(health["queued"].as_u64().unwrap() <= 16, "{health}");
    assert_eq!(jobs, now_listed as u64, "{health}");
    assert_eq!(body["recorded"], now_listed, "{body}");
    assert_eq!(body["queued"], now_listed - listed, "{body}");
    assert_eq!(body["deferred"], 3_000 - now_listed, "{body}");
    watch.stop();
}

/// Whether the server closed `stream` (EOF or reset) within `within`.
fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
    }
}

/// The done-when: while 300 half-open connections are held, a
/// normal request still answers within 5 s; SIGTERM with idle clients exits
/// promptly. With a cap of 100 connections, so that the cap is reached too.
#[test]
fn slow_clients_cannot_hold_the_server() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    std::fs::create_dir_all(root.join("db")).unwrap();
    write_db(&root.join("db/trawl.db"), "0", false);
    let addr = free_addr();
    let mut args = binary_args(root);
    args.extend(
        [
            "--registry",
            "127.0.0.1:1",
            "--header-timeout",
            "3s",
            "--idle-timeout",
            "4s",
            "--max-connections",
            "100",
            "--request-timeout",
            "2s",
        ]
        .map(String::from),
    );
    let mut watch = WatchProcess::start(addr, &args, &[], &root.join("watch.log"));
    // A request whose body trickles: answered 503 at the request deadline,
    // and the registry would send it again.
    let mut slow = TcpStream::connect(addr).unwrap();
    write!(
        slow,
        "POST /events HTTP/1.1\r\nHost: watch\r\nAuthorization: Bearer {WEBHOOK_TOKEN}\r\nContent-Length: 1000\r\n\r\n{{\"events\": ["
    )
    .unwrap();
    let sent = Instant::now();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = [0u8; 12];
    slow.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 503");
    let waited = sent.elapsed();
    assert!(
        waited >= Duration::from_millis(1_900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // 300 connections that send half a request and then nothing.
    let held_since = Instant::now();
    let mut held: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /v1/images HTTP/1.1\r\nHost: watch\r\nAuthorization: Bearer ")
                .unwrap();
            s
        })
        .collect();
    let quick = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = Instant::now();
    let health = quick.get(watch.url("/healthz")).send();
    assert!(
        health.is_ok_and(|r| r.status() == StatusCode::OK),
        "no answer in 5 s: {}",
        watch.logs()
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // None of them gets more than the header timeout.
    for (i, stream) in held.iter_mut().enumerate() {
        let left = Duration::from_secs(8).saturating_sub(held_since.elapsed());
        assert!(
            closed_by_server(stream, left.max(Duration::from_millis(10))),
            "held connection {i} still open after {:?}",
            held_since.elapsed()
        );
    }
    // A client that sends nothing is closed after the idle timeout.
    let mut idle = TcpStream::connect(addr).unwrap();
    let opened = Instant::now();
    assert!(closed_by_server(&mut idle, Duration::from_secs(8)));
    let waited = opened.elapsed();
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(7),
        "{waited:?}"
    );

    // SIGTERM with idle clients, half-open ones and a kept-alive one: it
    // exits promptly.
    let _idle: Vec<TcpStream> = (0..50).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let _half: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"POST /events HTTP/1.1\r\nHost: w").unwrap();
            s
        })
        .collect();
    let mut kept = TcpStream::connect(addr).unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: watch\r\n\r\n")
        .unwrap();
    let mut answer = [0u8; 12];
    kept.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    let status = watch.terminate(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}: {}",
        watch.logs()
    );
}

/// A scratch variant pushed to the notifying registry: its notification
/// makes the service queue its scan.
#[test]
fn a_crash_is_charged_to_the_job_running_alone() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    std::fs::create_dir_all(root.join("db")).unwrap();
    write_db(&root.join("db/trawl.db"), "0", false);
    let addr = free_addr();
    let regs = registries(root, addr);
    let r = &regs.notifying.host;
    push("scratch", &regs.silent.host, "trawl/scratch", "latest");
    let gate = Gate::start(r);
    let mut args = binary_args(root);
    args.extend(
        [
            "--registry",
            &format!("{r}={}", gate.host),
            "--registry-auth",
            &format!(
                "{r}={USER}:{}",
                root.join("secrets/registry.password").display()
            ),
            "--workers",
            "3",
        ]
        .map(String::from),
    );
    let log = root.join("watch.log");
    let watch = WatchProcess::start(addr, &args, &[], &log);
    let api = watch.api();
    let jobs: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|t| scratch_variant(r, t))
        .collect();
    for digest in &jobs {
        api.wait_for(digest, "a running scan", |i| i["state"] == "scanning");
    }
    // The process dies with three scans running: none of them is charged;
    // each runs again alone.
    watch.kill();
    let (a, b, c) = (&jobs[0], &jobs[1], &jobs[2]);
    for crash in 1..=3 {
        let watch = WatchProcess::start(addr, &args, &[], &log);
        let api = watch.api();
        let i = api.wait_for(a, "a scan running alone", |i| i["state"] == "scanning");
        assert_eq!(i["job"]["attempts"], crash - 1, "{i}");
        for other in [b, c] {
            let i = api.wait_for(other, "waiting", |i| i["state"] == "queued");
            assert_eq!(i["job"]["attempts"], 0, "{i}");
        }
        // It dies again, with `a` alone running: `a` is charged.
        watch.kill();
    }
    // Charged three times, `a` is given up; `b` and `c` are scanned.
    gate.open();
    let watch = WatchProcess::start(addr, &args, &[], &log);
    let api = watch.api();
    let i = api.wait_for(a, "given up", |i| i["state"] == "failed");
    assert!(i["error"].as_str().unwrap().contains("given up"), "{i}");
    for other in [b, c] {
        let i = api.wait_for(other, "the scan", |i| i["state"] == "scanned");
        assert_eq!((&i["scans"], &i["failures"]), (&json!(1), &json!(0)), "{i}");
    }
}

/// Writes a new database over `path` in place (same inode), in two halves
/// with `between` run after the first.
fn rewrite_in_place(path: &Path, openssl: &str, between: impl FnOnce()) {
    let scratch = tempfile::tempdir().unwrap();
    let next = scratch.path().join("next.db");
    write_db(&next, openssl, true);
    let bytes = std::fs::read(&next).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .unwrap();
    file.write_all(&bytes[..bytes.len() / 2]).unwrap();
    file.sync_all().unwrap();
    between();
    file.write_all(&bytes[bytes.len() / 2..]).unwrap();
    file.sync_all().unwrap();
}

#[test]
fn advisory_database_rewritten_in_place() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    std::fs::create_dir_all(root.join("db")).unwrap();
    let db = root.join("db/trawl.db");
    let openssl = common::source_version("debian", "bookworm", "openssl");
    write_db(&db, &openssl, false);
    let addr = free_addr();
    let regs = registries(root, addr);
    let r = &regs.notifying.host;
    let mut args = binary_args(root);
    args.extend(
        [
            "--registry",
            r,
            "--registry-auth",
            &format!(
                "{r}={USER}:{}",
                root.join("secrets/registry.password").display()
            ),
        ]
        .map(String::from),
    );
    // Notifications through the binary's flags: the secret from a file.
    let hooks = Receiver::start();
    let hook_secret = root.join("secrets/hook.secret");
    std::fs::write(&hook_secret, format!("{HOOK_SECRET}\n")).unwrap();
    args.extend([
        "--notify".to_string(),
        format!("{}={}", hooks.url(), hook_secret.display()),
    ]);
    let mut watch = WatchProcess::start(addr, &args, &[], &root.join("watch.log"));
    let api = watch.api();
    let debian = push("debian", r, "trawl/debian", "bookworm");
    api.wait_for(&debian, "scan", |i| i["verdict"] == "healthy");
    let (_, health) = api.get("/healthz");
    let old_db = health["advisory_db"].clone();
    // Half of a new database is in the file while images are scanned and
    // the API is asked.
    rewrite_in_place(&db, &openssl, || {
        let distroless = push("distroless", r, "trawl/distroless", "latest");
        std::thread::sleep(Duration::from_millis(1_500));
        api.wait_for(&distroless, "scan", |i| i["verdict"] == "healthy");
        let (status, _) = api.get(&format!("/v1/images/{debian}/findings"));
        assert_eq!(status, StatusCode::OK);
        let (_, health) = api.get("/healthz");
        assert_eq!(health["advisory_db"], old_db, "a torn database is not used");
    });
    assert!(watch.alive(), "{}", watch.logs());
    // Once whole, the new database is used.
    api.wait_for(&debian, "the rescan", |i| i["verdict"] == "unhealthy");
    assert!(watch.alive(), "{}", watch.logs());
    let change = hooks.wait_for("verdict.changed", |e| {
        e["image"]["digest"] == debian.as_str()
    });
    assert_eq!(change["previous_verdict"], "healthy");
    assert_eq!(
        change["advisory_db"]["sha256"],
        api.get("/healthz").1["advisory_db"]
    );
    // Debian and distroless (pushed while the file was torn) both carry
    // libssl3: one change each.
    std::thread::sleep(Duration::from_millis(500));
    let mut changed: Vec<String> = hooks
        .of("verdict.changed")
        .iter()
        .map(|e| e["image"]["repository"].as_str().unwrap().to_string())
        .collect();
    changed.sort();
    assert_eq!(changed, ["trawl/debian", "trawl/distroless"]);
    assert_eq!(api.get("/healthz").1["notifications"]["targets"], 1);
    let logs = watch.logs();
    for said in [
        "the advisory database was modified in place",
        "new advisory database not usable; keeping the one in use",
        "advisory database changed",
    ] {
        assert!(logs.contains(said), "{said:?} not logged: {logs}");
    }
    assert!(watch.terminate(DEADLINE).is_some_and(|s| s.success()));
}

#[test]
fn secrets_never_on_the_command_line() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    std::fs::create_dir_all(root.join("db")).unwrap();
    write_db(&root.join("db/trawl.db"), "0", false);
    let base = [
        "--db",
        &root.join("db/trawl.db").display().to_string(),
        "--data",
        &root.join("data").display().to_string(),
        "--registry",
        "127.0.0.1:1",
    ]
    .map(String::from);
    for flag in ["--token", "--webhook-token"] {
        let out = Command::new(common::trawl_bin())
            .arg("watch")
            .args(&base)
            .args([flag, "s3cret"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("unexpected argument '{flag}'")),
            "{stderr}"
        );
    }
    // Not from a file and the environment at once.
    let token = root.join("api.token");
    std::fs::write(&token, API_TOKEN).unwrap();
    let out = Command::new(common::trawl_bin())
        .arg("watch")
        .args(&base)
        .arg("--token-file")
        .arg(&token)
        .env("TRAWL_WATCH_TOKEN", API_TOKEN)
        .env("TRAWL_WATCH_WEBHOOK_TOKEN", WEBHOOK_TOKEN)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("given twice"), "{stderr}");
    // From the environment.
    let addr = free_addr();
    let watch = WatchProcess::start(
        addr,
        &base,
        &[
            ("TRAWL_WATCH_TOKEN", API_TOKEN),
            ("TRAWL_WATCH_WEBHOOK_TOKEN", WEBHOOK_TOKEN),
        ],
        &root.join("watch.log"),
    );
    let (status, _) = watch.api().get("/v1/images");
    assert_eq!(status, StatusCode::OK);
    let events = watch.api().post_events(&json!({"events": []}));
    assert_eq!(events.status(), StatusCode::ACCEPTED);
    drop(watch);
    // A database password in the store's URL would be on the command line too.
    let out = Command::new(common::trawl_bin())
        .arg("watch")
        .args(&base)
        .args(["--store", "postgres://watch:s3cret@127.0.0.1:1/trawl"])
        .env("TRAWL_WATCH_TOKEN", API_TOKEN)
        .env("TRAWL_WATCH_WEBHOOK_TOKEN", WEBHOOK_TOKEN)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--store-password-file"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

// ---------------------------------------------------------------------------
// Several processes on one PostgreSQL store.

/// The `/healthz` of a service.
fn health(api: &Api) -> Value {
    let (status, body) = api.get("/healthz");
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Polls `done` on the service's `/healthz` until it holds.
fn wait_health(api: &Api, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let body = health(api);
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{what} did not happen: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_processes_share_one_postgres_store() {
    logs();
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let store: trawl_watch::StoreLocation = watch_support::postgres::Postgres::get()
        .database("two")
        .parse()
        .unwrap();
    let (listen_a, listen_b) = (free_addr(), free_addr());
    // The registry notifies process A; B takes webhooks too (below).
    let regs = registries(root, listen_a);
    let r = &regs.notifying.host;
    push("scratch", &regs.silent.host, "trawl/scratch", "latest");
    // Every pull waits in the gate until it is opened: scans stay running.
    let gate = Gate::start(r);
    let process = |name: &str, listen: SocketAddr| {
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("db")).unwrap();
        write_db(&dir.join("db/trawl.db"), "0", false);
        let mut cfg = config(root, listen, vec![watched(r, &gate.host)]);
        cfg.store = store.clone();
        cfg.data_dir = dir.join("data");
        cfg.advisory_db = dir.join("db/trawl.db");
        cfg.workers = 2;
        cfg.max_pending = 64;
        cfg.rescan_batch = 2;
        cfg.job_lease = Duration::from_millis(900);
        cfg
    };
    let (cfg_a, cfg_b) = (process("a", listen_a), process("b", listen_b));
    let a = Watch::start(cfg_a.clone());
    let b = Watch::start(cfg_b.clone());

    // Six pushes: notified to A, one of them sent to B as well (any process
    // takes webhooks; the second one coalesces).
    let digests: Vec<String> = (0..6)
        .map(|i| scratch_variant(r, &format!("v{i}")))
        .collect();
    let again = b.post_events(&push_event(r, "trawl/scratch", "v0", &digests[0], 0));
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    // Both processes run scans: two each, held in the gate.
    for api in [&*a, &*b] {
        wait_health(api, "four scans running", |h| {
            h["running"] == 4 && h["queued"] == 2
        });
    }
    let running_in = |api: &Api| -> Vec<String> {
        digests
            .iter()
            .filter(|d| api.image(d)["state"] == "scanning")
            .cloned()
            .collect()
    };
    assert_eq!(running_in(&a).len(), 4);

    // B dies with its two scans held. Their leases expire; they are queued
    // again, uncharged (they ran beside each other), to run alone.
    b.kill();
    let h = wait_health(&a, "B's scans recovered", |h| {
        h["running"] == 2 && h["queued"] == 4
    });
    assert_eq!(h["running"], 2);
    let recovered: Vec<Value> = digests
        .iter()
        .map(|d| a.image(d))
        .filter(|i| i["job"]["after_crash"] == true)
        .collect();
    assert_eq!(recovered.len(), 2, "{recovered:?}");
    for image in &recovered {
        assert_eq!(image["job"]["attempts"], 0, "{image}");
    }

    // B comes back (a new process), the gate opens: every image is scanned
    // exactly once to completion, whoever took it.
    let b = Watch::start(cfg_b.clone());
    gate.open();
    for digest in &digests {
        let image = a.wait_for(digest, "the scan", |i| i["state"] == "scanned");
        assert_eq!(
            (&image["scans"], &image["failures"], &image["verdict"]),
            (&json!(1), &json!(0), &json!("unsupported")),
            "{image}"
        );
    }
    for api in [&*a, &*b] {
        wait_health(api, "an empty queue", |h| {
            h["queued"] == 0 && h["running"] == 0
        });
    }

    // A new advisory database on both machines: the window's images are
    // matched again once, across both processes, in batches of two.
    let (_, before) = a.get("/healthz");
    for cfg in [&cfg_a, &cfg_b] {
        write_db(&cfg.advisory_db, "0", true);
    }
    for digest in &digests {
        let image = a.wait_for(digest, "the rescan", |i| i["rescans"] == 1);
        assert_ne!(image["advisory_db"], before["advisory_db"], "{image}");
    }
    let (ha, hb) = (
        wait_health(&a, "A on the new database", |h| {
            h["advisory_db"] != before["advisory_db"]
        }),
        wait_health(&b, "B on the new database", |h| {
            h["advisory_db"] != before["advisory_db"]
        }),
    );
    assert_eq!(ha["advisory_db"], hb["advisory_db"]);
    // Give any second rescan time to show itself: there is none.
    std::thread::sleep(Duration::from_millis(1_500));
    for digest in &digests {
        let image = a.image(digest);
        assert_eq!(
            (&image["rescans"], &image["scans"]),
            (&json!(1), &json!(1)),
            "{image}"
        );
    }
    let (ha, hb) = (health(&a), health(&b));
    assert_eq!(
        ha["rescanned"].as_u64().unwrap() + hb["rescanned"].as_u64().unwrap(),
        6,
        "A {ha}, B {hb}"
    );
    a.stop();
    b.stop();
}
