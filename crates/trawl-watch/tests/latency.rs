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
//! with the aggregate over the rows. `TRAWL_LATENCY_LAYOUT=normalized`
//! stores the findings normalized (PostgreSQL's layout since version 8);
//! `TRAWL_LATENCY_IMAGES` and `TRAWL_LATENCY_HOLD` (seconds to keep the
//! filled database for a look with psql) are the other knobs.

mod support;

#[path = "support/latency.rs"]
mod latency;

use std::time::Instant;

use latency::ask;

use support::postgres::Postgres;
use support::serve;
use trawl_watch::Service;

const FINDINGS: i64 = 20;

/// Images: `TRAWL_LATENCY_IMAGES`, 100,000 by default.
fn images() -> i64 {
    std::env::var("TRAWL_LATENCY_IMAGES")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(100_000)
}

/// Each image's `counts` (what the service writes with its results: its
/// findings that count per `severity|fix_state` and per package), from
/// the rows just generated (`rows`: digest, severity, fix_state, package
/// and suppressed of each finding), so that the images' trigger keeps the
/// summary's counters; then the deltas folded, as a store that has been
/// running would have them.
fn counts(rows: &str) -> String {
    format!(
        "UPDATE images AS i SET counts = a.counts
         FROM (SELECT digest, jsonb_object_agg(k, n) AS counts
               FROM (SELECT digest, 's' || severity || '|' || fix_state AS k, count(*) AS n
                     FROM ({rows}) AS r WHERE NOT suppressed GROUP BY digest, severity, fix_state
                     UNION ALL
                     SELECT digest, 'p' || package, count(*)
                     FROM ({rows}) AS r WHERE NOT suppressed GROUP BY digest, package) AS f
               GROUP BY digest) AS a
         WHERE i.digest = a.digest;
         SELECT summary_fold();"
    )
}

/// Whether the findings are written in PostgreSQL's normalized layout
/// (`TRAWL_LATENCY_LAYOUT=normalized`: every image linked to its packages,
/// each package's findings stored once) rather than one row per image and
/// finding (own mode, the default).
fn normalized() -> bool {
    std::env::var("TRAWL_LATENCY_LAYOUT").is_ok_and(|v| v == "normalized")
}

/// The normalized layout of the same registry: a package per
/// (vulnerability, binary package) pair, 10,000 (the `-bin` ones for odd
/// images), one finding each, and liblzma5 with the hot one; every image
/// linked to its 20 packages (and liblzma5 every tenth), all on one
/// target. An image's links are written together, as a scan writes them
/// (so they share pages). (No finding is suppressed: the own-mode data suppresses one
/// per image, which a normalized image cannot share.)
fn normalized_rows(images: i64) -> String {
    format!(
        "INSERT INTO match_targets (id, advisory_db, policy) VALUES (1, 'db', 'policy');
         UPDATE images SET own = false, advisory_db = 'db', policy = 'policy', target = 1;
         INSERT INTO package_findings (target, pkey, id, aliases, keys, package, version,
             source_name, source_version, ecosystem, severity, fix_state, fixed_version,
             located, suppressed)
         SELECT 1, p, v.id, ARRAY[v.alias], ARRAY[lower(v.id), lower(v.alias)], v.package,
                '1.0-1', v.package || '-src', '1.0-1', 'Debian:12', v.k % 6,
                CASE WHEN v.k % 3 = 0 THEN 'unfixed' ELSE 'fixed' END,
                CASE WHEN v.k % 3 = 0 THEN NULL ELSE '1.0-2' END, false, false
         FROM generate_series(0, 9999) p,
              LATERAL (SELECT k, 'CVE-2099-' || lpad(k::text, 5, '0') AS id,
                              'DSA-' || (10000 + k) || '-1' AS alias,
                              'pkg' || (k % 700) || CASE WHEN p >= 5000 THEN '-bin' ELSE '' END
                                  AS package
                       FROM (SELECT p % 5000 AS k) k) v;
         INSERT INTO package_findings (target, pkey, id, aliases, keys, package, version,
             source_name, source_version, ecosystem, severity, fix_state, fixed_version,
             located, suppressed)
         VALUES (1, 10000, 'CVE-2024-3094', ARRAY['DSA-5649-1'],
                 ARRAY['cve-2024-3094', 'dsa-5649-1'], 'liblzma5', '5.6.0-0.2', 'xz-utils',
                 '5.6.0-0.2', 'Debian:12', 5, 'fixed', '5.6.1+really5.4.5-1', false, false);
         INSERT INTO package_targets (target, pkey, rows_sha256)
         SELECT DISTINCT 1, pkey, '\\x00'::bytea FROM package_findings;
         INSERT INTO image_packages (digest, n, pkey, layer, location)
         SELECT 'sha256:' || lpad(to_hex(g), 64, '0'), n,
                (g * 31 + n * 977) % 5000 + 5000 * (g % 2), 'sha256:layer' || (g % 100),
                'var/lib/dpkg/status'
         FROM generate_series(1, {images}) g, generate_series(0, {FINDINGS} - 1) n
         ORDER BY g, n;
         INSERT INTO image_packages (digest, n, pkey, layer, location)
         SELECT 'sha256:' || lpad(to_hex(g), 64, '0'), {FINDINGS}, 10000, 'sha256:layer0',
                'var/lib/dpkg/status'
         FROM generate_series(10, {images}, 10) g;"
    )
}

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

    let images = images();
    // The rows each image's counts are taken from: straight from the
    // tables just written (the `findings` view joins every image with the
    // package rows of its target, and before an ANALYZE the planner takes
    // that for a cross product: 55 GB of temporary files at 100,000).
    let (findings, rows) = if normalized() {
        (
            normalized_rows(images),
            "SELECT l.digest, pf.severity, pf.fix_state, pf.package, pf.suppressed
             FROM image_packages AS l JOIN package_findings AS pf ON pf.pkey = l.pkey",
        )
    } else {
        (
            own_rows(images),
            "SELECT digest, severity, fix_state, package, suppressed FROM findings_own",
        )
    };
    let counts = counts(rows);
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
             FROM generate_series(1, {images}) g;
             INSERT INTO tags (repository, tag, digest)
             SELECT repository, 'v' || (g % 7), digest
             FROM (SELECT g, 'sha256:' || lpad(to_hex(g), 64, '0') AS digest,
                          'team-' || (g % 50) || '/app-' || (g % 997) AS repository
                   FROM generate_series(1, {images}) g) i;
             {findings}
             ANALYZE;
             {counts}
             ANALYZE;"
        ),
    );
    // The steady state of a store that has been running: autovacuum has
    // been through the tables. (Right after the fill, the counters' delta
    // table holds the dead rows of every image's deltas, hundreds of MB
    // that a summary reads through until autovacuum gets to them: 38 ms
    // p50 against under 1 ms.)
    pg.psql(&db_name, "VACUUM (ANALYZE)");
    let rows = pg.psql(&db_name, "SELECT count(*) FROM findings");
    eprintln!(
        "seeded {images} images, {rows} finding rows ({}) in {:.1?}",
        if normalized() {
            "normalized"
        } else {
            "own mode"
        },
        started.elapsed()
    );

    // `TRAWL_LATENCY_HOLD=SECONDS`: the filled database is kept that
    // long for a look with psql (plans, statistics) before the requests.
    if let Some(secs) = std::env::var("TRAWL_LATENCY_HOLD")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        eprintln!("holding {secs} s: psql {url}");
        tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
    }
    let (addr, stop, server) = serve(&service).await;
    ask(addr).await;
    // The summary reads counters the images' trigger kept as their
    // `counts` were written; the aggregate over every row (seconds) must
    // say the same, in either layout.
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

/// The findings in own mode: a row per image and finding, the last one of
/// every fourth image suppressed, and the hot one in every tenth image.
fn own_rows(images: i64) -> String {
    format!(
        "INSERT INTO findings_own (digest, fkey, id, aliases, keys, package, version, source_name,
                                   source_version, ecosystem, severity, fix_state, fixed_version,
                                   layer, suppressed)
             SELECT 'sha256:' || lpad(to_hex(g), 64, '0'), v.package || E'\\x1f\\x1f1.0-1\\x1f' || n, v.id, ARRAY[v.alias],
                    ARRAY[lower(v.id), lower(v.alias)], v.package, '1.0-1', v.package || '-src',
                    '1.0-1', 'Debian:12', v.k % 6, CASE WHEN v.k % 3 = 0 THEN 'unfixed' ELSE 'fixed' END,
                    CASE WHEN v.k % 3 = 0 THEN NULL ELSE '1.0-2' END, 'sha256:layer' || (g % 100),
                    n = {FINDINGS} - 1 AND g % 4 = 0
             FROM generate_series(1, {images}) g, generate_series(0, {FINDINGS} - 1) n,
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
             FROM generate_series(10, {images}, 10) g;"
    )
}
