//! Latency of the registry-wide queries on PostgreSQL at 100,000 images: a
//! measurement, not a timed test (it asserts only that answers are right).
//!
//! ```text
//! cargo test --release -p trawl-watch --test latency -- --ignored --nocapture
//! ```
//!
//! The rows are generated in the database (`generate_series`), not pushed
//! through the API: 100,000 images in 50 teams' repositories, each with
//! `FINDINGS` findings drawn from 5,000 vulnerabilities (each in about 400
//! images, one of its two packages), every tenth image also with the "hot"
//! CVE-2024-3094 (10,000 images). Then `GET /v1/vulnerabilities/{id}` (a
//! typical id, by its alias; the hot one), `GET /v1/summary` (unscoped and
//! for one team's token) and a first page of `GET /v1/findings` are asked
//! `ROUNDS` times each through the HTTP API as served. The summary's
//! counters, kept by the triggers as the rows were inserted, are compared
//! with the aggregate over the rows.

mod support;

#[path = "support/latency.rs"]
mod latency;

use std::time::Instant;

use latency::ask;

use support::postgres::Postgres;
use support::serve;
use trawl_watch::Service;

const IMAGES: i64 = 100_000;
const FINDINGS: i64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn registry_queries_at_100k_images() {
    let pg = Postgres::get();
    let url = pg.database("latency");
    let db_name = url.rsplit('/').next().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut config = latency::config(dir.path());
    config.store = url.parse().unwrap();
    // Starting the service creates the schema.
    let service = Service::start(config).await.unwrap();

    let started = Instant::now();
    pg.psql(
        &db_name,
        &format!(
            "INSERT INTO images (digest, registry, repository, media_type, verdict, first_seen,
                                 last_scanned, last_pushed, last_pulled, report)
             SELECT 'sha256:' || lpad(to_hex(g), 64, '0'), '127.0.0.1:5000',
                    'team-' || (g % 50) || '/app-' || (g % 997), 'application/vnd.oci.image.manifest.v1+json',
                    CASE WHEN g % 5 = 0 THEN 'healthy' ELSE 'unhealthy' END, 0, 0,
                    extract(epoch FROM now())::bigint - (g % 90) * 86400,
                    extract(epoch FROM now())::bigint - (g % 45) * 86400, '{{}}'
             FROM generate_series(1, {IMAGES}) g;
             INSERT INTO tags (repository, tag, digest)
             SELECT repository, 'v' || (g % 7), digest
             FROM (SELECT g, 'sha256:' || lpad(to_hex(g), 64, '0') AS digest,
                          'team-' || (g % 50) || '/app-' || (g % 997) AS repository
                   FROM generate_series(1, {IMAGES}) g) i;
             INSERT INTO findings_own (digest, fkey, id, aliases, keys, package, version, source_name,
                                   source_version, ecosystem, severity, fix_state, fixed_version,
                                   layer, suppressed)
             SELECT 'sha256:' || lpad(to_hex(g), 64, '0'), v.package || E'\\x1f\\x1f1.0-1\\x1f' || n, v.id, ARRAY[v.alias],
                    ARRAY[lower(v.id), lower(v.alias)], v.package, '1.0-1', v.package || '-src',
                    '1.0-1', 'Debian:12', v.k % 6, CASE WHEN v.k % 3 = 0 THEN 'unfixed' ELSE 'fixed' END,
                    CASE WHEN v.k % 3 = 0 THEN NULL ELSE '1.0-2' END, 'sha256:layer' || (g % 100),
                    n = {FINDINGS} - 1 AND g % 4 = 0
             FROM generate_series(1, {IMAGES}) g, generate_series(0, {FINDINGS} - 1) n,
                  LATERAL (SELECT k, 'CVE-2099-' || lpad(k::text, 5, '0') AS id,
                                  'DSA-' || (10000 + k) || '-1' AS alias,
                                  'pkg' || (k % 700) || CASE WHEN g % 2 = 0 THEN '' ELSE '-bin' END AS package
                           FROM (SELECT (g * 31 + n * 977) % 5000 AS k) k) v;
             INSERT INTO findings_own (digest, fkey, id, aliases, keys, package, version, source_name,
                                   source_version, ecosystem, severity, fix_state, fixed_version,
                                   layer, suppressed)
             SELECT 'sha256:' || lpad(to_hex(g), 64, '0'), E'liblzma5\\x1f\\x1f5.6.0-0.2', 'CVE-2024-3094',
                    ARRAY['DSA-5649-1'], ARRAY['cve-2024-3094', 'dsa-5649-1'], 'liblzma5', '5.6.0-0.2',
                    'xz-utils', '5.6.0-0.2', 'Debian:12', 5, 'fixed', '5.6.1+really5.4.5-1',
                    'sha256:layer0', false
             FROM generate_series(10, {IMAGES}, 10) g;
             ANALYZE;"
        ),
    );
    let rows = pg.psql(&db_name, "SELECT count(*) FROM findings");
    eprintln!(
        "seeded {IMAGES} images, {rows} finding rows in {:.1?}",
        started.elapsed()
    );

    let (addr, stop, server) = serve(&service).await;
    ask(addr).await;
    // The summary reads counters the triggers kept while the rows were
    // written; the aggregate over every row (seconds) must say the same.
    let team_7 = trawl_watch::Scope::prefixes(["team-7"]).unwrap();
    for (what, scope) in [
        ("summary = recount", trawl_watch::Scope::All),
        ("summary = recount, one team's scope", team_7),
    ] {
        let t = Instant::now();
        let recount = service.store().summary_recount(&scope, None).await.unwrap();
        let took = t.elapsed();
        assert_eq!(
            service.store().summary(&scope, None).await.unwrap(),
            recount
        );
        eprintln!("{what:48} (the recount took {took:.1?})");
    }
    let _ = stop.send(());
    server.await.unwrap();
    service.stop().await;
}
