//! Reliability of `trawl watch` on a shared PostgreSQL store (issue 14), end
//! to end with real components: Debian's `docker-registry` (htpasswd auth)
//! notifying the service, a PostgreSQL cluster (the crate's test support),
//! two `trawl watch` OS processes on one database with `--notify` to a
//! receiver in the test, and 50 image variants pushed to the registry.
//!
//! - `fifty_pushes_survive_a_killed_process_and_a_postgres_restart`:
//!   - every scan pulls through a gate that holds it: both processes have
//!     scans provably mid-flight when one of them is SIGKILLed; its jobs are
//!     taken over when their (2 s) leases expire;
//!   - PostgreSQL is stopped (`-m immediate`, as a crash) and started again
//!     while pushes and scans are in flight; the registry's notifications
//!     refused meanwhile are retried by the registry; the killed process is
//!     started again; some pushes are also sent to it directly (they
//!     coalesce);
//!   - every image ends `scanned` with one scan and no failure (no lost
//!     job, no duplicate completed scan) and exactly one `scan.completed`
//!     event id;
//!   - a new advisory database on both machines (a critical openssl issue)
//!     matches every image again exactly once across both processes (the
//!     processes' `rescanned` counters add up to 50), and every image turns
//!     unhealthy;
//!   - the receiver, which refuses the first delivery of some events (so
//!     they are retried) and checks every signature, gets a
//!     `verdict.changed` for every image at least once: de-duplicated by
//!     event id, exactly one per image.
//! - `a_connection_lost_while_storing_a_scan_is_not_a_scan_failure`: a
//!   session holds the job's row while the scan's result is stored, and the
//!   backend waiting on it is terminated (`pg_terminate_backend`, as a
//!   pooler or an administrator may); the scan is queued again and the image
//!   ends scanned, not failed (it used to be recorded as a failed scan with
//!   the store's error, and never scanned again).
//!
//! A test binary of its own: it restarts its process's PostgreSQL cluster,
//! which the tests of `tests/watch.rs` share.

mod common;
#[path = "../crates/trawl-registry/tests/registry_support/mod.rs"]
mod registry_support;
#[path = "common/watch.rs"]
mod watch_common;
#[path = "../crates/trawl-watch/tests/support/mod.rs"]
mod watch_support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use registry_support::{Auth, Notifications, PASSWORD, Registry, USER};
use reqwest::StatusCode;
use serde_json::{Value, json};
use trawl::advisory::StoreBuilder;
use watch_common::*;
use watch_support::postgres::Postgres;

const HOOK_SECRET: &str = "hook-secret-51d0";
/// Images pushed.
const IMAGES: usize = 50;

/// Held by each test for its whole run: one restarts the process's
/// PostgreSQL cluster, which would break the other's sessions.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static CLUSTER: Mutex<()> = Mutex::new(());
    CLUSTER.lock().unwrap_or_else(|e| e.into_inner())
}

/// Polls `check` every 50 ms until it gives a value; panics with `what`
/// and the last state `check` described past the deadline.
fn wait<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) => assert!(Instant::now() < deadline, "{what} did not happen: {last}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One POST the receiver took.
#[derive(Debug, Clone)]
struct Delivery {
    event: Value,
    attempt: u32,
}

/// A notification receiver on loopback (axum, a thread of its own): checks
/// each POST's signature and headers, keeps every delivery, and refuses
/// (503) the first attempt of every event whose id ends in `0`-`3`, so that
/// those are delivered again.
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Delivery>>>,
    refused: Arc<AtomicUsize>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let got: Arc<Mutex<Vec<Delivery>>> = Arc::default();
        let refused = Arc::new(AtomicUsize::new(0));
        let (keep, refusals) = (got.clone(), refused.clone());
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
                            let (keep, refusals) = (keep.clone(), refusals.clone());
                            async move {
                                let h = |n: &str| headers[n].to_str().unwrap().to_string();
                                assert!(trawl_watch::notify::verify(
                                    HOOK_SECRET.as_bytes(),
                                    &h("x-trawl-timestamp"),
                                    &body,
                                    &h("x-trawl-signature"),
                                ));
                                let event: Value = serde_json::from_slice(&body).unwrap();
                                let id = h("x-trawl-event-id");
                                assert_eq!(event["id"], id);
                                assert_eq!(event["type"], h("x-trawl-event"));
                                let attempt: u32 = h("x-trawl-delivery-attempt").parse().unwrap();
                                keep.lock().unwrap().push(Delivery { event, attempt });
                                if attempt == 1 && id.ends_with(['0', '1', '2', '3']) {
                                    refusals.fetch_add(1, Ordering::Relaxed);
                                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                                }
                                axum::http::StatusCode::NO_CONTENT
                            }
                        },
                    ),
                );
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        Receiver { addr, got, refused }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The distinct event ids of `kind` taken (answered 204), by image digest.
    fn ids_by_digest(&self, kind: &str) -> BTreeMap<String, BTreeSet<String>> {
        let mut by_digest: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for d in self.got.lock().unwrap().iter() {
            let id = d.event["id"].as_str().unwrap();
            let taken = !(d.attempt == 1 && id.ends_with(['0', '1', '2', '3']));
            if d.event["type"] == kind && taken {
                by_digest
                    .entry(d.event["image"]["digest"].as_str().unwrap().to_string())
                    .or_default()
                    .insert(id.to_string());
            }
        }
        by_digest
    }

    fn deliveries(&self, kind: &str) -> Vec<Delivery> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.event["type"] == kind)
            .cloned()
            .collect()
    }
}

/// OSV records for Debian 12: one that affects nothing (an openssl fix older
/// than any installed version); with `new`, also a critical openssl issue
/// fixed after `openssl_version`.
fn write_db(path: &Path, openssl_version: &str, new: bool) {
    let feed = tempfile::tempdir().unwrap();
    let record = |id: &str, fixed: &str, extra: Value| {
        let mut r = json!({
            "schema_version": "1.6.0", "id": id, "modified": "2026-11-01T00:00:00Z",
            "summary": format!("test record {id}"),
            "affected": [{"package": {"ecosystem": "Debian:12", "name": "openssl"},
                          "ranges": [{"type": "ECOSYSTEM",
                                      "events": [{"introduced": "0"}, {"fixed": fixed}]}]}],
        });
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        r
    };
    let mut records = vec![record("TRAWL-R-OLD", "1.0.0-1", json!({}))];
    if new {
        records.push(record(
            "TRAWL-R-CRIT",
            &format!("{openssl_version}+trawl1"),
            json!({"aliases": ["CVE-2099-0014"],
                   "severity": [{"type": "CVSS_V3",
                                 "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}),
        ));
    }
    for r in &records {
        let file = feed
            .path()
            .join(format!("{}.json", r["id"].as_str().unwrap()));
        std::fs::write(file, r.to_string()).unwrap();
    }
    let mut builder = StoreBuilder::new();
    let warnings = builder.add_osv_dir(feed.path()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    // Written beside the database, then renamed over it: one atomic replacement.
    let next = path.with_extension("next");
    builder.write(&next).unwrap();
    std::fs::rename(&next, path).unwrap();
}

/// The distroless image's manifest with an annotation, PUT to `host` under
/// `trawl/app:tag` (its blobs are in the registry's storage already);
/// returns its digest.
fn variant(host: &str, tag: &str) -> String {
    let layout = common::images().join("distroless/oci");
    let (digest, _) = registry_support::layout_manifest(&layout);
    let blob = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(blob).unwrap()).unwrap();
    manifest["annotations"] = json!({"org.example.variant": tag});
    let body = serde_json::to_vec(&manifest).unwrap();
    registry_support::put_manifest(host, "trawl/app", tag, OCI_MANIFEST, &body);
    format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body))
    )
}

/// A push event as distribution sends it.
fn push_event(host: &str, tag: &str, digest: &str) -> Value {
    json!({"events": [{
        "id": format!("direct-{digest}"),
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "action": "push",
        "target": {
            "mediaType": OCI_MANIFEST, "size": 500, "digest": digest, "length": 500,
            "repository": "trawl/app", "url": format!("http://{host}/v2/trawl/app/manifests/{digest}"),
            "tag": tag,
        },
        "request": {"id": "r1", "addr": "127.0.0.1:40000", "host": host, "method": "PUT",
                    "useragent": "skopeo/1.9.3"},
        "actor": {"name": USER},
        "source": {"addr": "registry:5000", "instanceID": "test"},
    }]})
}

/// The arguments of a `trawl watch` process with its own files under
/// `dir`, sharing `store`, pulling from `pull_from`, notifying `hook`.
fn process_args(
    root: &Path,
    dir: &Path,
    store: &str,
    r: &str,
    pull_from: &str,
    hook: &str,
) -> Vec<String> {
    let secrets = root.join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    for (name, value) in [
        ("api.token", API_TOKEN),
        ("webhook.token", WEBHOOK_TOKEN),
        ("registry.password", PASSWORD),
        ("hook.secret", HOOK_SECRET),
    ] {
        std::fs::write(secrets.join(name), format!("{value}\n")).unwrap();
    }
    let s = |name: &str| secrets.join(name).display().to_string();
    [
        "--db".to_string(),
        dir.join("db/trawl.db").display().to_string(),
        "--data".into(),
        dir.join("data").display().to_string(),
        "--store".into(),
        store.into(),
        "--token-file".into(),
        s("api.token"),
        "--webhook-token-file".into(),
        s("webhook.token"),
        "--registry".into(),
        format!("{r}={pull_from}"),
        "--registry-auth".into(),
        format!("{r}={USER}:{}", s("registry.password")),
        "--notify".into(),
        format!("{hook}={}", s("hook.secret")),
        "--workers".into(),
        "2".into(),
        "--job-lease".into(),
        "2s".into(),
        "--rescan-batch".into(),
        "8".into(),
        // Two batches at once in each process: the exactly-once rescan
        // below holds across both processes' four rescanners.
        "--rescan-concurrency".into(),
        "2".into(),
    ]
    .to_vec()
}

#[test]
fn fifty_pushes_survive_a_killed_process_and_a_postgres_restart() {
    let _cluster = one_at_a_time();
    let started = Instant::now();
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let cluster = Postgres::get();
    let store = cluster.database("reliability");
    let openssl = common::source_version("distroless", "latest", "openssl");

    // One registry storage: `notifying` sends its events to A, `silent`
    // takes the blobs (pushed once with skopeo).
    let (listen_a, listen_b) = (free_addr(), free_addr());
    let storage = root.join("storage");
    std::fs::create_dir_all(&storage).unwrap();
    let htpasswd = root.join("htpasswd");
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    std::fs::write(&htpasswd, format!("{USER}:{hash}\n")).unwrap();
    let auth = Auth::Htpasswd(htpasswd);
    let notifications = Notifications {
        url: format!("http://{listen_a}/events"),
        authorization: format!("Bearer {WEBHOOK_TOKEN}"),
    };
    let notifying = Registry::start_with(root, &storage, &auth, None, Some(&notifications));
    let silent = Registry::start(root, &storage, &auth, None);
    let r = notifying.host.clone();
    skopeo(&[
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        "--dest-creds",
        &format!("{USER}:{PASSWORD}"),
        &format!(
            "oci:{}:latest",
            common::images().join("distroless/oci").display()
        ),
        &format!("docker://{}/trawl/app:base", silent.host),
    ]);

    // Every pull waits in the gate until it is opened: scans stay running.
    let gate = Gate::start(&r);
    let hooks = Receiver::start();
    let args = |name: &str| {
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("db")).unwrap();
        if !dir.join("db/trawl.db").exists() {
            write_db(&dir.join("db/trawl.db"), &openssl, false);
        }
        process_args(root, &dir, &store, &r, &gate.host, &hooks.url())
    };
    let (args_a, args_b) = (args("a"), args("b"));
    let (log_a, log_b) = (root.join("a.log"), root.join("b.log"));
    let mut a = WatchProcess::start(listen_a, &args_a, &[], &log_a);
    let b = WatchProcess::start(listen_b, &args_b, &[], &log_b);

    // The first ten pushes: both processes take two scans each, held in
    // the gate (two workers each: four running means two in B).
    let mut digests: Vec<String> = (0..10).map(|i| variant(&r, &format!("v{i}"))).collect();
    wait("four scans running", || {
        let h = a.health();
        (h["running"] == 4 && h["queued"] == 6)
            .then_some(())
            .ok_or(h.to_string())
    });
    // B dies (SIGKILL) with its two scans mid-flight; the gate opens.
    b.kill();
    gate.open();

    // The other forty are pushed while A scans and B's jobs wait for
    // their leases to expire; halfway, PostgreSQL crashes and restarts.
    let pushed = Arc::new(AtomicUsize::new(0));
    let pusher = {
        let (r, pushed) = (r.clone(), pushed.clone());
        std::thread::spawn(move || {
            (10..IMAGES)
                .map(|i| {
                    let d = variant(&r, &format!("v{i}"));
                    pushed.fetch_add(1, Ordering::Relaxed);
                    d
                })
                .collect::<Vec<String>>()
        })
    };
    wait("twenty more pushes", || {
        let n = pushed.load(Ordering::Relaxed);
        (n >= 20).then_some(()).ok_or(format!("{n} pushed"))
    });
    let (_, before) = a.get("/healthz");
    let restart = Instant::now();
    cluster.restart();
    let restart = restart.elapsed();
    digests.extend(pusher.join().unwrap());
    assert_eq!(digests.len(), IMAGES);
    assert!(a.alive(), "A died with PostgreSQL: {}", a.logs());
    // The restart was felt: A's store calls failed meanwhile.
    let logs = a.logs();
    assert!(
        logs.contains("results store"),
        "A used no connection while PostgreSQL restarted: {logs}"
    );
    // B comes back; some pushes are sent to it directly too (any process
    // takes webhooks; they coalesce with the registry's).
    let mut b = WatchProcess::start(listen_b, &args_b, &[], &log_b);
    for (i, digest) in digests.iter().enumerate().step_by(5) {
        let status = b
            .post_events(&push_event(&r, &format!("v{i}"), digest))
            .status();
        assert_eq!(status, StatusCode::ACCEPTED);
    }

    // Every image is scanned exactly once to completion, whoever took it.
    for digest in &digests {
        let image = wait("the scan", || {
            let i = a.image(digest);
            (i["state"] == "scanned")
                .then(|| i.clone())
                .ok_or(i.to_string())
        });
        assert_eq!(
            (&image["scans"], &image["failures"], &image["verdict"]),
            (&json!(1), &json!(0), &json!("healthy")),
            "{image}"
        );
    }
    for p in [&a, &b] {
        wait("an empty queue", || {
            let h = p.health();
            (h["queued"] == 0 && h["running"] == 0)
                .then_some(())
                .ok_or(h.to_string())
        });
    }
    // One scan.completed id per image (the outbox row is written with the
    // result), delivered at least once.
    let completed = wait("a scan.completed for every image", || {
        let got = hooks.ids_by_digest("scan.completed");
        (got.len() == IMAGES)
            .then(|| got.clone())
            .ok_or(format!("{} images", got.len()))
    });
    for digest in &digests {
        assert_eq!(completed[digest].len(), 1, "{digest}: {completed:?}");
    }

    // A new advisory database on both machines: every image is matched again
    // exactly once across both processes, and turns unhealthy.
    for name in ["a", "b"] {
        write_db(&root.join(name).join("db/trawl.db"), &openssl, true);
    }
    for digest in &digests {
        wait("the rescan", || {
            let i = a.image(digest);
            (i["rescans"] == 1 && i["verdict"] == "unhealthy")
                .then_some(())
                .ok_or(i.to_string())
        });
    }
    let changed = wait("a verdict.changed for every image", || {
        let got = hooks.ids_by_digest("verdict.changed");
        (got.len() == IMAGES)
            .then(|| got.clone())
            .ok_or(format!("{} images", got.len()))
    });
    // Give any second rescan or event time to show itself: there is none.
    std::thread::sleep(Duration::from_millis(2_000));
    for digest in &digests {
        let image = a.image(digest);
        assert_eq!(
            (&image["scans"], &image["rescans"], &image["failures"]),
            (&json!(1), &json!(1), &json!(0)),
            "{image}"
        );
    }
    let (ha, hb) = (a.health(), b.health());
    assert_eq!(ha["advisory_db"], hb["advisory_db"]);
    assert_eq!(
        ha["rescanned"].as_u64().unwrap() + hb["rescanned"].as_u64().unwrap(),
        IMAGES as u64,
        "A {ha}, B {hb}"
    );
    assert_eq!(hooks.ids_by_digest("verdict.changed"), changed);
    for digest in &digests {
        assert_eq!(changed[digest].len(), 1, "{digest}: {changed:?}");
    }
    for d in hooks.deliveries("verdict.changed") {
        assert_eq!(d.event["previous_verdict"], "healthy", "{:?}", d.event);
        assert_eq!(d.event["verdict"], "unhealthy", "{:?}", d.event);
        assert_eq!(d.event["advisory_db"]["sha256"], ha["advisory_db"]);
    }
    // Refused deliveries were delivered again with the same id; duplicates
    // were possible, and de-duplicated by id.
    assert!(hooks.refused.load(Ordering::Relaxed) > 0);
    let all = hooks.got.lock().unwrap().len();
    let h = wait("an empty outbox", || {
        let h = a.health();
        (h["notifications"]["pending"] == 0)
            .then(|| h.clone())
            .ok_or(h.to_string())
    });
    assert_eq!(h["notifications"]["given_up"], 0, "{h}");
    assert_eq!(h["notifications"]["delivered"], 2 * IMAGES as u64, "{h}");
    eprintln!(
        "{IMAGES} images: {all} deliveries, {} refused; PostgreSQL restart took {restart:?} \
         (health before: {before}); whole test {:?}",
        hooks.refused.load(Ordering::Relaxed),
        started.elapsed()
    );
    assert!(
        a.terminate(DEADLINE).is_some_and(|s| s.success()),
        "A did not stop on SIGTERM"
    );
    assert!(
        b.terminate(DEADLINE).is_some_and(|s| s.success()),
        "B did not stop on SIGTERM"
    );
}

/// A PostgreSQL connection lost while a finished scan is being stored (its
/// backend terminated, as a pooler or an administrator may) does not make
/// the scan a failure: the image is scanned, with no failure counted.
#[test]
fn a_connection_lost_while_storing_a_scan_is_not_a_scan_failure() {
    let _cluster = one_at_a_time();
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let cluster = Postgres::get();
    let store = cluster.database("lost");
    let db_name = store.rsplit('/').next().unwrap().to_string();
    let openssl = common::source_version("distroless", "latest", "openssl");
    let listen = free_addr();
    let storage = root.join("storage");
    std::fs::create_dir_all(&storage).unwrap();
    let htpasswd = root.join("htpasswd");
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    std::fs::write(&htpasswd, format!("{USER}:{hash}\n")).unwrap();
    let auth = Auth::Htpasswd(htpasswd);
    let notifications = Notifications {
        url: format!("http://{listen}/events"),
        authorization: format!("Bearer {WEBHOOK_TOKEN}"),
    };
    let notifying = Registry::start_with(root, &storage, &auth, None, Some(&notifications));
    let silent = Registry::start(root, &storage, &auth, None);
    let r = notifying.host.clone();
    skopeo(&[
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        "--dest-creds",
        &format!("{USER}:{PASSWORD}"),
        &format!(
            "oci:{}:latest",
            common::images().join("distroless/oci").display()
        ),
        &format!("docker://{}/trawl/app:base", silent.host),
    ]);
    let gate = Gate::start(&r);
    let hooks = Receiver::start();
    let dir = root.join("a");
    std::fs::create_dir_all(dir.join("db")).unwrap();
    write_db(&dir.join("db/trawl.db"), &openssl, false);
    let args = process_args(root, &dir, &store, &r, &gate.host, &hooks.url());
    let watch = WatchProcess::start(listen, &args, &[], &root.join("a.log"));
    let digest = variant(&r, "v0");
    wait("a running scan", || {
        let (_, i) = watch.get(&format!("/v1/images/{digest}"));
        (i["state"] == "scanning")
            .then_some(())
            .ok_or(i.to_string())
    });
    // Another session holds the job's row: storing the result waits on it.
    let mut holder = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
        .args(["-h", "127.0.0.1", "-p", &cluster.port().to_string()])
        .args(["-U", watch_support::postgres::SUPERUSER, "-d", &db_name])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = holder.stdin.take().unwrap();
    std::io::Write::write_all(
        &mut input,
        format!("BEGIN;\nSELECT 1 FROM jobs WHERE digest = '{digest}' FOR UPDATE;\n").as_bytes(),
    )
    .unwrap();
    std::io::Write::flush(&mut input).unwrap();
    let holding = "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' \
                   AND query LIKE '%FOR UPDATE%'";
    wait("the row held", || {
        let n = cluster.psql(&db_name, holding);
        (n == "1").then_some(()).ok_or(n)
    });
    gate.open();
    let waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                   AND query LIKE '%lease_token%FOR UPDATE%'";
    wait("the result's store waiting on the row", || {
        let n = cluster.psql(&db_name, waiting);
        (n != "0").then_some(()).ok_or(n)
    });
    // Its connection is lost; the row is released.
    cluster.psql(
        &db_name,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE wait_event_type = 'Lock' AND query LIKE '%lease_token%FOR UPDATE%'",
    );
    std::io::Write::write_all(&mut input, b"COMMIT;\n").unwrap();
    drop(input);
    holder.wait().unwrap();
    let image = wait("the scan's end", || {
        let i = watch.image(&digest);
        (i["state"] == "scanned" || i["state"] == "failed")
            .then(|| i.clone())
            .ok_or(i.to_string())
    });
    assert_eq!(
        (&image["state"], &image["scans"], &image["failures"]),
        (&json!("scanned"), &json!(1), &json!(0)),
        "{image}\n{}",
        watch.logs()
    );
    assert!(
        watch.logs().contains("cannot store the scan's result"),
        "{}",
        watch.logs()
    );
}
