//! A PostgreSQL server that restarts under a running store (a test binary
//! of its own: it restarts its process's cluster, which the other tests
//! share). The pool drops the broken connections and the store answers
//! again, with nothing lost.

mod support;

use std::time::{Duration, Instant};

use support::postgres::Postgres;
use trawl_watch::Store;
use trawl_watch::events::{ImageEvent, Kind, Recorded};

fn push(byte: char) -> Recorded {
    Recorded::Image(ImageEvent {
        kind: Kind::Push,
        digest: format!("sha256:{}", byte.to_string().repeat(64)),
        registry: "127.0.0.1:5000".into(),
        repository: "x".into(),
        tag: None,
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        at: 100,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_is_reconnected() {
    let cluster = Postgres::get();
    let store = Store::open(&cluster.database("restart").parse().unwrap())
        .await
        .unwrap();
    store.apply(vec![push('a')], 10, 1).await.unwrap();
    // Every pooled connection is broken by the restart.
    tokio::task::spawn_blocking(|| Postgres::get().restart())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut failures = 0;
    let applied = loop {
        match store.apply(vec![push('b')], 10, 2).await {
            Ok(applied) => break applied,
            Err(e) => {
                failures += 1;
                assert!(
                    Instant::now() < deadline,
                    "no answer after the restart: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(
        (applied.queued, applied.pending),
        (1, 2),
        "{failures} failures"
    );
    assert_eq!(store.images().await.unwrap().len(), 2);
    assert_eq!(store.queue_lengths().await.unwrap(), (2, 0));
}
