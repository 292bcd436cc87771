//! Notifications end to end through the service: a registry event whose
//! scan fails (nothing listens where the registry is said to be) gives a
//! `scan.failed` event, POSTed to a real HTTP receiver on loopback (an axum
//! server in this test) with an HMAC signature; retried with the same id
//! after a 500; given up after a 404; left in the outbox by a service that
//! stopped and delivered by the next one over the same store. On SQLite
//! and on a real PostgreSQL (`support/postgres.rs`).

#[macro_use]
mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use support::{Backend, fresh};
use trawl_watch::notify::verify;
use trawl_watch::{Config, HttpLimits, NotifyTarget, Service};

const SECRET: &[u8] = b"receiver-secret";
const REGISTRY: &str = "127.0.0.1:1";
const DIGEST: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// What a receiver got: headers and body of every POST.
#[derive(Clone, Default)]
struct Received {
    requests: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    /// Answers to give, in order; 200 once they run out.
    script: Arc<Mutex<Vec<StatusCode>>>,
}

impl Received {
    fn all(&self) -> Vec<(HeaderMap, Bytes)> {
        self.requests.lock().unwrap().clone()
    }
}

async fn receive(State(r): State<Received>, headers: HeaderMap, body: Bytes) -> StatusCode {
    r.requests.lock().unwrap().push((headers, body));
    let mut script = r.script.lock().unwrap();
    if script.is_empty() {
        StatusCode::OK
    } else {
        script.remove(0)
    }
}

/// A receiver on `addr` (a free loopback port when `None`).
async fn receiver(addr: Option<SocketAddr>, script: Vec<StatusCode>) -> (SocketAddr, Received) {
    let received = Received {
        script: Arc::new(Mutex::new(script)),
        ..Received::default()
    };
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind(addr.unwrap_or(([127, 0, 0, 1], 0).into()))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, received)
}

both!(
    signed_events_are_retried_with_the_same_id_and_refusals_given_up,
    the_outbox_outlives_the_process,
);

fn config(
    dir: &std::path::Path,
    store: &trawl_watch::StoreLocation,
    targets: Vec<NotifyTarget>,
) -> Config {
    let mut config = support::config(dir, "api-token", REGISTRY);
    config.store = store.clone();
    config.notify.targets = targets;
    config.notify.first_retry = Duration::from_millis(100);
    config.notify.poll_interval = Duration::from_millis(100);
    config.notify.timeout = Duration::from_secs(5);
    config
}

/// Starts `service`'s API on a loopback port.
async fn serve(service: &Service) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(trawl_watch::serve(
        listener,
        service.router(),
        HttpLimits::default(),
        async {
            let _ = stopped.await;
        },
    ));
    (addr, stop)
}

/// Tells the service that `DIGEST` was pushed to `REGISTRY`.
async fn push(api: SocketAddr) {
    let envelope = json!({"events": [{
        "id": "e1", "timestamp": "2026-01-01T00:00:00Z", "action": "push",
        "target": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 500,
            "digest": DIGEST, "length": 500, "repository": "team/app",
            "url": format!("http://{REGISTRY}/v2/team/app/manifests/{DIGEST}"), "tag": "1.0",
        },
        "request": {"id": "r1", "addr": "127.0.0.1:40000", "host": REGISTRY, "method": "PUT"},
        "actor": {}, "source": {"addr": "registry:5000", "instanceID": "t"},
    }]});
    let answer = reqwest::Client::new()
        .post(format!("http://{api}/events"))
        .bearer_auth("webhook-token")
        .header(
            "content-type",
            "application/vnd.docker.distribution.events.v1+json",
        )
        .body(envelope.to_string())
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
}

async fn health(api: SocketAddr) -> Value {
    reqwest::get(format!("http://{api}/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "waited a minute for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).unwrap().to_str().unwrap()
}

async fn signed_events_are_retried_with_the_same_id_and_refusals_given_up(backend: Backend) {
    let (store, dir) = fresh(backend, "notify_retries");
    let (flaky, flaky_got) = receiver(None, vec![StatusCode::INTERNAL_SERVER_ERROR]).await;
    let (refusing, refusing_got) = receiver(None, vec![StatusCode::NOT_FOUND]).await;
    let targets = vec![
        NotifyTarget::new(format!("http://{flaky}/hook"), SECRET).unwrap(),
        NotifyTarget::new(format!("http://{refusing}/hook"), SECRET).unwrap(),
    ];
    let service = Service::start(config(dir.path(), &store, targets))
        .await
        .unwrap();
    let (api, stop) = serve(&service).await;
    push(api).await;
    wait_for("the retry", async || flaky_got.all().len() >= 2).await;
    wait_for("the health counts", async || {
        let h = health(api).await;
        h["notifications"]["delivered"] == 1 && h["notifications"]["given_up"] == 1
    })
    .await;

    let got = flaky_got.all();
    assert_eq!(got.len(), 2, "one 500, then delivered");
    let (first, second) = (&got[0], &got[1]);
    assert_eq!(header(&first.0, "x-trawl-event"), "scan.failed");
    let id = header(&first.0, "x-trawl-event-id");
    assert!(id.starts_with("evt_"));
    assert_eq!(header(&second.0, "x-trawl-event-id"), id, "the same id");
    assert_eq!(first.1, second.1, "the same body");
    assert_eq!(header(&first.0, "x-trawl-delivery-attempt"), "1");
    assert_eq!(header(&second.0, "x-trawl-delivery-attempt"), "2");
    assert_eq!(header(&first.0, "content-type"), "application/json");
    for (headers, body) in &got {
        let timestamp = header(headers, "x-trawl-timestamp");
        let signature = header(headers, "x-trawl-signature");
        assert!(signature.starts_with("sha256="));
        assert!(verify(SECRET, timestamp, body, signature));
        assert!(!verify(b"another secret", timestamp, body, signature));
        assert!(!verify(SECRET, "1", body, signature));
    }
    let event: Value = serde_json::from_slice(&first.1).unwrap();
    assert_eq!(event["id"], id);
    assert_eq!(event["type"], "scan.failed");
    assert_eq!(event["image"]["digest"], DIGEST);
    assert_eq!(event["image"]["registry"], REGISTRY);
    assert_eq!(
        event["image"]["tags"],
        json!([{"repository": "team/app", "tag": "1.0"}])
    );
    assert!(!event["error"].as_str().unwrap().is_empty());

    // The refusing receiver got it once: a 404 is not retried.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refused = refusing_got.all();
    assert_eq!(refused.len(), 1);
    assert_eq!(header(&refused[0].0, "x-trawl-event-id"), id);
    let h = health(api).await;
    assert_eq!(h["notifications"]["pending"], 0);
    assert_eq!(h["notifications"]["targets"], 2);

    let _ = stop.send(());
    service.stop().await;
}

async fn the_outbox_outlives_the_process(backend: Backend) {
    let (location, dir) = fresh(backend, "notify_restart");
    // Nothing listens there while the first service runs.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let target = || vec![NotifyTarget::new(format!("http://{addr}/hook"), SECRET).unwrap()];
    let first = Service::start(config(dir.path(), &location, target()))
        .await
        .unwrap();
    let (api, stop) = serve(&first).await;
    push(api).await;
    let store = first.store().clone();
    wait_for("a failed attempt", async || {
        let Some((id, _)) = store.outbox_events().await.unwrap().into_iter().next() else {
            return false;
        };
        let rows = store.outbox_event(&id).await.unwrap();
        rows[0].1 == "pending" && rows[0].2 >= 1
    })
    .await;
    let written = store.outbox_events().await.unwrap();
    assert_eq!(written.len(), 1);
    assert_eq!(health(api).await["notifications"]["pending"], 1);
    drop(store);
    let _ = stop.send(());
    first.stop().await;

    let (_, got) = receiver(Some(addr), Vec::new()).await;
    let second = Service::start(config(dir.path(), &location, target()))
        .await
        .unwrap();
    wait_for("the delivery by the next process", async || {
        !got.all().is_empty()
    })
    .await;
    let got = got.all();
    assert_eq!(header(&got[0].0, "x-trawl-event-id"), written[0].0);
    assert_eq!(header(&got[0].0, "x-trawl-event"), "scan.failed");
    wait_for("the delivery recorded", async || {
        second.store().outbox_counts().await.unwrap().delivered == 1
    })
    .await;
    second.stop().await;
}
