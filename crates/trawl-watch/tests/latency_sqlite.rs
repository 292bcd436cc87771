//! Latency of the registry-wide queries on the SQLite store (the embedded
//! default) at 100,000 images: the registry of `latency.rs`, the same
//! requests; a measurement, not a timed test.
//!
//! ```text
//! cargo test --profile bench -p trawl-watch --test latency_sqlite -- --ignored --nocapture
//! ```

mod support;

#[path = "support/latency.rs"]
mod latency;

use std::time::Instant;

use latency::ask;
use support::serve;
use trawl_watch::Service;

const IMAGES: i64 = 100_000;
const FINDINGS: i64 = 20;

/// The same registry in the SQLite store (the embedded default): the rows
/// written with SQLite's own SQL into the file, findings before tags (so
/// that the triggers count each image's findings in its repository once,
/// as its tag comes), then the same requests through the HTTP API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn registry_queries_at_100k_images_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let config = latency::config(dir.path());
    // Starting the service creates the schema; the file is its alone
    // while it runs.
    Service::start(config.clone()).await.unwrap().stop().await;
    let started = Instant::now();
    let file = dir.path().join("data").join("watch.sqlite");
    tokio::task::spawn_blocking(move || {
        let conn = rusqlite::Connection::open(file).unwrap();
        conn.execute_batch(&format!(
            "BEGIN;
             WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {IMAGES})
             INSERT INTO images (digest, registry, repository, media_type, verdict, first_seen,
                                 last_scanned, last_pushed, last_pulled, report)
             SELECT 'sha256:' || printf('%064x', g), '127.0.0.1:5000',
                    'team-' || (g % 50) || '/app-' || (g % 997),
                    'application/vnd.oci.image.manifest.v1+json',
                    CASE WHEN g % 5 = 0 THEN 'healthy' ELSE 'unhealthy' END, 0, 0,
                    unixepoch() - (g % 90) * 86400, unixepoch() - (g % 45) * 86400, '{{}}'
             FROM s;
             WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {IMAGES}),
             m(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM m WHERE n < {FINDINGS} - 1),
             v AS (SELECT g, n, k, 'CVE-2099-' || printf('%05d', k) AS id,
                          'DSA-' || (10000 + k) || '-1' AS alias,
                          'pkg' || (k % 700) || CASE WHEN g % 2 = 0 THEN '' ELSE '-bin' END
                              AS package
                   FROM (SELECT g, n, (g * 31 + n * 977) % 5000 AS k FROM s, m))
             INSERT INTO findings (digest, id, fkey, aliases, package, version, source_name,
                                   source_version, ecosystem, severity, fix_state, fixed_version,
                                   layer, suppressed)
             SELECT 'sha256:' || printf('%064x', g), id,
                    package || char(31, 31) || '1.0-1' || char(31) || n, json_array(alias),
                    package, '1.0-1', package || '-src', '1.0-1', 'Debian:12', k % 6,
                    CASE WHEN k % 3 = 0 THEN 'unfixed' ELSE 'fixed' END,
                    CASE WHEN k % 3 = 0 THEN NULL ELSE '1.0-2' END, 'sha256:layer' || (g % 100),
                    n = {FINDINGS} - 1 AND g % 4 = 0
             FROM v;
             WITH RECURSIVE s(g) AS (SELECT 10 UNION ALL SELECT g + 10 FROM s WHERE g < {IMAGES})
             INSERT INTO findings (digest, id, fkey, aliases, package, version, source_name,
                                   source_version, ecosystem, severity, fix_state, fixed_version,
                                   layer, suppressed)
             SELECT 'sha256:' || printf('%064x', g), 'CVE-2024-3094',
                    'liblzma5' || char(31, 31) || '5.6.0-0.2', json_array('DSA-5649-1'),
                    'liblzma5', '5.6.0-0.2', 'xz-utils', '5.6.0-0.2', 'Debian:12', 5, 'fixed',
                    '5.6.1+really5.4.5-1', 'sha256:layer0', 0
             FROM s;
             INSERT INTO finding_ids (key, finding)
             SELECT lower(id), n FROM findings
             UNION SELECT lower(a.value), f.n FROM findings AS f, json_each(f.aliases) AS a;
             WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {IMAGES})
             INSERT INTO tags (repository, tag, digest)
             SELECT 'team-' || (g % 50) || '/app-' || (g % 997), 'v' || (g % 7),
                    'sha256:' || printf('%064x', g)
             FROM s;
             COMMIT;
             ANALYZE;"
        ))
        .unwrap();
    })
    .await
    .unwrap();
    eprintln!(
        "seeded {IMAGES} images in SQLite in {:.1?}",
        started.elapsed()
    );
    let service = Service::start(config).await.unwrap();
    let (addr, stop, server) = serve(&service).await;
    ask(addr).await;
    let team_7 = trawl_watch::Scope::prefixes(["team-7"]).unwrap();
    for scope in [trawl_watch::Scope::All, team_7] {
        assert_eq!(
            service.store().summary(&scope, None).await.unwrap(),
            service.store().summary_recount(&scope, None).await.unwrap()
        );
    }
    let _ = stop.send(());
    server.await.unwrap();
    service.stop().await;
}
