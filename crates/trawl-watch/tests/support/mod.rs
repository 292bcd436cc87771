//! Test support shared by the crate's tests, the facade's `watch` tests and
//! benches (`#[path]`-included): a real PostgreSQL cluster per process, and
//! the two stores to run the same behaviour against.

#![allow(dead_code)]

pub mod postgres;

use trawl_watch::{Store, StoreLocation};

/// Which store a behaviour test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A file in a temporary directory.
    Sqlite,
    /// A new database on the test cluster.
    Postgres,
}

/// Runs each `$name(backend)` (an async function of the calling file,
/// which has [`Backend`] in scope) as two tests, `$name::sqlite` and
/// `$name::postgres`.
#[allow(unused_macros)]
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::Backend::Postgres).await
            }
        }
    )*};
}

/// Both backends, for tests that run against each.
pub const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

/// A fresh, empty store location of `backend`; the directory holding an
/// SQLite file lives as long as the returned guard.
pub fn fresh(backend: Backend, name: &str) -> (StoreLocation, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let location = match backend {
        Backend::Sqlite => StoreLocation::sqlite(dir.path().join("watch.sqlite")),
        Backend::Postgres => postgres::Postgres::get()
            .database(name)
            .parse()
            .expect("a PostgreSQL URL"),
    };
    (location, dir)
}

/// Opens `location` on the current runtime.
pub async fn open(location: &StoreLocation) -> Store {
    Store::open(location).await.expect("the store opens")
}

/// A service's configuration for a test: an empty advisory database in
/// `dir` (written on first use), its data in `dir/data`, the API token
/// `api_token`, the webhook token `webhook-token`, `registry` watched, one
/// worker, two rescan batches at once; the caller sets the rest.
pub fn config(dir: &std::path::Path, api_token: &str, registry: &str) -> trawl_watch::Config {
    let advisory = dir.join("advisory.db");
    if !advisory.exists() {
        trawl::advisory::StoreBuilder::new()
            .write(&advisory)
            .expect("an empty advisory database");
    }
    let mut config = trawl_watch::Config::new(
        &advisory,
        dir.join("data"),
        api_token,
        "webhook-token",
        vec![trawl_watch::WatchedRegistry::new(registry)],
    );
    config.workers = 1;
    config.rescan_concurrency = 2;
    config
}

/// Serves `service`'s API on a loopback port: its address, the stop
/// signal and the server's task.
pub async fn serve(
    service: &trawl_watch::Service,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(trawl_watch::serve(
        listener,
        service.router(),
        trawl_watch::HttpLimits::default(),
        async {
            let _ = stopped.await;
        },
    ));
    (addr, stop, server)
}

/// PostgreSQL: takes a store back to before the summary's counters
/// (migrations 5, 6, 7, 9, 11 and 13: their functions, types, tables,
/// index and columns, and their rows in the migrations table; 12, storage
/// settings only, is forgotten so that it applies again after 11), so a
/// test can see them back-filled.
pub const PG_WITHOUT_COUNTERS: &str = "
    DO $$ DECLARE f record; BEGIN
        FOR f IN SELECT oid::regprocedure AS p FROM pg_proc
                 WHERE proname LIKE 'summary\\_%' LOOP
            EXECUTE 'DROP FUNCTION ' || f.p || ' CASCADE';
        END LOOP;
    END $$;
    DROP TYPE summary_change, summary_step;
    DROP TABLE summary_counts, summary_deltas;
    DROP TABLE IF EXISTS summary_images, summary_packages;
    DROP INDEX tags_by_repository;
    ALTER TABLE images DROP COLUMN IF EXISTS counts, DROP COLUMN IF EXISTS counts_change;
    DELETE FROM trawl_watch_migrations WHERE version IN (5, 6, 7, 9, 11, 12, 13);
";

/// SQL that takes a PostgreSQL store back from the normalized layout of
/// version 8 (findings once per package) to one `findings` table, for the
/// tests that write rows as an older version did. Versions 9 (the fold
/// rewritten), 10 (an index of the links), 11 (the counts' change), 12
/// (storage settings) and 13 (the update trigger rewritten) are forgotten
/// too, so that the store migrates from 8 on (it applies the versions
/// above its highest; 9, 11, 12 and 13 apply again over themselves).
#[allow(dead_code)]
pub const PG_WITHOUT_NORMALIZED: &str = "
    DROP VIEW findings, findings_normalized;
    DROP TABLE package_findings, package_targets, image_packages, match_targets;
    ALTER TABLE findings_own RENAME TO findings;
    ALTER TABLE images DROP COLUMN own, DROP COLUMN target, DROP COLUMN links;
    DELETE FROM trawl_watch_migrations WHERE version IN (8, 9, 10, 11, 12, 13);
";
