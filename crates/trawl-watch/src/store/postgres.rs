//! The PostgreSQL store, for many `watch` processes on many machines
//! sharing one database.
//!
//! The client is `tokio-postgres` with a `deadpool-postgres` pool. Why
//! these: `tokio-postgres` is the maintained asynchronous client that the
//! synchronous `postgres` crate and most of the ecosystem build on; it
//! speaks the binary `COPY` protocol (findings are written that way, not row
//! by row), caches prepared statements per connection (through the pool)
//! and runs on the tokio runtime the service already has. `deadpool-postgres`
//! is a small pool over it that recycles a broken connection after a server
//! restart. `sqlx` would bring a far larger tree (its macros, drivers for
//! other databases, a runtime of its own) for compile-time checked queries
//! that need a database at build time.
//!
//! How processes cooperate:
//!
//! - Jobs are claimed with `SELECT … FOR UPDATE SKIP LOCKED` in the order
//!   they arrived (jobs after a crash first), so processes never wait for
//!   each other's claims and no job is claimed twice. The lease's expiry is
//!   in the server's clock (see [`PgStore::now_ms`]).
//! - Envelopes of events are applied one at a time across all processes
//!   (`pg_advisory_xact_lock`): the per-event back-pressure counts waiting
//!   jobs exactly, and two envelopes never move the same tag at once.
//! - Rescan planning takes another transaction-scoped advisory lock, and
//!   storing a rescan batch the same lock shared, so a batch is never
//!   stored for a target that a plan just superseded.
//! - Findings are stored once per (match target, package) and images are
//!   linked to their packages, with a per-image fallback (own mode) for any
//!   image whose rows the shared ones would not give exactly: the `layout`
//!   module. Whichever process first needs a package's rows under a target
//!   writes them (a claim per (target, package), `ON CONFLICT DO NOTHING`,
//!   in a short transaction of its own); the others compare.
//! - Schema migrations are numbered, recorded in `trawl_watch_migrations`
//!   and applied at open under a session advisory lock (`pg_advisory_lock`),
//!   so processes starting together apply each exactly once; a database
//!   whose schema is newer than this program is refused.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Transaction};
use tokio_postgres::NoTls;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tracing::{debug, warn};

use super::layout::{BatchCache, Layout, PackageRows};
use super::outbox::{self, Delivery, DeliveryOutcome, EventImage, NewEvent, OutboxCounts};
use super::query::Value;
use super::{
    Applied, FindingRow, ImageRecord, ImageState, Job, JobStatus, MAX_ATTEMPTS, MatchResult,
    MatchTarget, Recovered, Rematched, RescanBatch, RescanPlan, StoreError, StoredInventory,
    StoredReport, finding_keys, fix_state_of, local_now_ms, severity_of_rank, severity_rank,
    stored_report,
};
use crate::events::{Deleted, Deletion, ImageEvent, Kind, Recorded};

/// Advisory lock keys (one namespace: the bytes of "trawlw" and a number).
const MIGRATION_LOCK: i64 = 0x7472_6177_6c77_0001;
const APPLY_LOCK: i64 = 0x7472_6177_6c77_0002;
const PLAN_LOCK: i64 = 0x7472_6177_6c77_0003;

/// The migrations, in order: (version, SQL). A version once released is
/// never edited; changes come as a new version.
///
/// Versions are applied in order.
fn migrations() -> Vec<(i64, String)> {
    vec![
        (1, SCHEMA_1.to_string()),
        (2, QUERY_INDEXES_2.to_string()),
        (3, OUTBOX_3.to_string()),
        (4, STABLE_FINDING_KEYS_4.to_string()),
        (5, super::counters::postgres_migration()),
        (6, super::counters::postgres_prefix_migration()),
        (7, super::counters::postgres_image_counts_migration()),
        (8, NORMALIZED_FINDINGS_8.to_string()),
        (9, super::counters::postgres_fold_migration()),
        (10, LINKS_BY_PACKAGE_AND_DIGEST_10.to_string()),
        (11, super::counters::postgres_counts_change_migration()),
        (
            12,
            format!(
                "{IMAGE_STORAGE_12}{}",
                super::counters::postgres_deltas_migration()
            ),
        ),
        (13, super::counters::postgres_update_trigger_migration()),
    ]
}

/// How `images` is stored, for the rescan that updates every row of it and
/// reads every inventory (storage settings only: no row changes shape);
/// with the deltas' table and fold of
/// [`postgres_deltas_migration`](super::counters::postgres_deltas_migration).
///
/// - Half of each page is left free (`fillfactor` 50) for the next version
///   of its rows. A row is about 1.3 kB without its out-of-line inventory
///   and report (six to a page), so a rescan that rewrites them all found
///   no room beside them: 80% of its updates were not HOT, and each put
///   three index entries (the digest, `last_pushed`, `last_pulled`) and a
///   page elsewhere in the WAL. None of the columns a rescan changes is
///   indexed, so with room every update can be HOT.
/// - The large values (inventory, report, summary, counts and their
///   change) are compressed with LZ4 instead of pglz, when the server has
///   it (Debian's and most builds do; a server without it keeps pglz). A
///   rescan decompresses every image's inventory (~35 kB of JSON) and
///   compresses each new `counts`; pglz was 8% of the server's CPU in a
///   day's update. Values written before keep their compression until
///   they are written again.
///
/// Both take effect for rows written from now on; `VACUUM FULL images`
/// rewrites an existing table at once (it locks it while it runs).
const IMAGE_STORAGE_12: &str = "
ALTER TABLE images SET (fillfactor = 50);
DO $$
BEGIN
    ALTER TABLE images ALTER COLUMN inventory SET COMPRESSION lz4,
        ALTER COLUMN report SET COMPRESSION lz4,
        ALTER COLUMN summary SET COMPRESSION lz4,
        ALTER COLUMN counts SET COMPRESSION lz4,
        ALTER COLUMN counts_change SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this server has no LZ4: images keep pglz';
END $$;
";

/// The normalized layout (the `layout` module): findings stored once per
/// (match target, package), images linked to their packages. Cheap on a
/// big store: the per-image table is renamed (its rows, indexes and
/// triggers kept) to `findings_own`, every existing image starts in own
/// mode, and each is normalized by its next write (scan or rescan).
/// `findings` becomes a view with the table's columns.
const NORMALIZED_FINDINGS_8: &str = "
ALTER TABLE findings RENAME TO findings_own;
ALTER TABLE images ADD COLUMN own boolean NOT NULL DEFAULT true, ADD COLUMN target bigint,
    ADD COLUMN links bytea;
CREATE TABLE match_targets (
    id bigserial PRIMARY KEY,
    advisory_db text NOT NULL,
    policy text NOT NULL,
    UNIQUE (advisory_db, policy)
);
CREATE TABLE image_packages (
    digest text NOT NULL REFERENCES images (digest) ON DELETE CASCADE,
    n integer NOT NULL,
    pkey bigint NOT NULL,
    layer text,
    location text NOT NULL,
    PRIMARY KEY (digest, n)
);
CREATE INDEX image_packages_by_pkey ON image_packages (pkey);
CREATE TABLE package_targets (
    target bigint NOT NULL,
    pkey bigint NOT NULL,
    rows_sha256 bytea NOT NULL,
    PRIMARY KEY (target, pkey)
);
CREATE TABLE package_findings (
    target bigint NOT NULL,
    pkey bigint NOT NULL,
    id text NOT NULL,
    aliases text[] NOT NULL,
    keys text[] NOT NULL,
    package text NOT NULL,
    version text NOT NULL,
    source_name text NOT NULL,
    source_version text NOT NULL,
    ecosystem text NOT NULL,
    severity smallint NOT NULL,
    fix_state text NOT NULL,
    fixed_version text,
    located boolean NOT NULL,
    suppressed boolean NOT NULL,
    PRIMARY KEY (target, pkey, id)
);
CREATE INDEX package_findings_by_key ON package_findings USING gin (keys)
    WITH (fastupdate = off);
CREATE INDEX package_findings_by_package ON package_findings (package);
CREATE INDEX package_findings_by_source ON package_findings (source_name);
CREATE INDEX package_findings_sorted ON package_findings
    (severity DESC, id COLLATE \"C\") WHERE NOT suppressed;
CREATE VIEW findings_normalized AS
SELECT l.digest,
       pf.package || E'\\x1f' || CASE WHEN pf.located THEN l.location ELSE '' END
           || E'\\x1f' || pf.version AS fkey,
       pf.id, pf.aliases, pf.keys, pf.package, pf.version, pf.source_name, pf.source_version,
       pf.ecosystem, pf.severity, pf.fix_state, pf.fixed_version, l.layer,
       CASE WHEN pf.located THEN l.location END AS path, pf.suppressed, NULL::bigint AS h
FROM images i
JOIN image_packages l ON l.digest = i.digest
JOIN package_findings pf ON pf.target = i.target AND pf.pkey = l.pkey
WHERE NOT i.own;
CREATE VIEW findings AS
SELECT digest, fkey, id, aliases, keys, package, version, source_name, source_version,
       ecosystem, severity, fix_state, fixed_version, layer, path, suppressed, h
FROM findings_own
UNION ALL
SELECT digest, fkey, id, aliases, keys, package, version, source_name, source_version,
       ecosystem, severity, fix_state, fixed_version, layer, path, suppressed, h
FROM findings_normalized;
";

/// The links by (package key, digest) rather than by package key alone:
/// a page of normalized findings reads each package row's images in
/// digest order and stops at the page (`query::findings_page`), instead of
/// joining every image of the package and sorting them. The index serves
/// the lookups by package key as the old one did.
const LINKS_BY_PACKAGE_AND_DIGEST_10: &str = "
DROP INDEX image_packages_by_pkey;
CREATE INDEX image_packages_by_pkey ON image_packages (pkey, digest COLLATE \"C\");
";

/// Findings keyed by what does not move when another finding comes or
/// goes, (digest, id, key) ([`super::finding_keys`]), instead of their
/// place in the report: a rescan then writes only the rows that changed.
/// The report order is derived from the columns (severity, package, id,
/// key). `h` is a hash of the other columns ([`FindingRow::value_hash`]),
/// so that a rescan compares rows without reading them whole. Rows stored
/// before have no path and no hash: their key is computed without the path
/// (a language package's finding is keyed anew, once, by the next rescan
/// that writes its image, and every row is updated once to gain its hash). The stored report becomes a cache
/// stamped with what it was matched against (`report_db`,
/// `report_policy`): a rescan no longer rewrites it.
const STABLE_FINDING_KEYS_4: &str = "
ALTER TABLE images ADD COLUMN report_db text, ADD COLUMN report_policy text;
UPDATE images SET report_db = advisory_db, report_policy = policy WHERE report IS NOT NULL;
ALTER TABLE findings ADD COLUMN path text, ADD COLUMN fkey text, ADD COLUMN h bigint;
UPDATE findings AS f SET fkey = k.base || CASE WHEN k.n > 1 THEN E'\\x1f' || (k.n - 1) ELSE '' END
FROM (SELECT digest, ord, package || E'\\x1f' || E'\\x1f' || version AS base,
             row_number() OVER (PARTITION BY digest, id, package, version ORDER BY ord) AS n
      FROM findings) AS k
WHERE f.digest = k.digest AND f.ord = k.ord;
ALTER TABLE findings ALTER COLUMN fkey SET NOT NULL;
DROP INDEX findings_sorted;
ALTER TABLE findings DROP CONSTRAINT findings_pkey;
ALTER TABLE findings DROP COLUMN ord;
ALTER TABLE findings ADD PRIMARY KEY (digest, id, fkey);
CREATE INDEX findings_sorted ON findings
    (severity DESC, id COLLATE \"C\", digest COLLATE \"C\", fkey COLLATE \"C\") WHERE NOT suppressed;
";

/// The notification outbox ([`super::outbox`]).
const OUTBOX_3: &str = "
CREATE TABLE outbox (
    seq bigserial PRIMARY KEY,
    event_id text NOT NULL,
    target text NOT NULL,
    kind text NOT NULL,
    body text NOT NULL,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'given_up')),
    attempts bigint NOT NULL DEFAULT 0,
    next_attempt bigint NOT NULL,
    last_error text,
    lease_owner text,
    lease_token bigint,
    lease_until bigint,
    created bigint NOT NULL,
    done bigint,
    UNIQUE (event_id, target)
);
CREATE INDEX outbox_due ON outbox (next_attempt, seq) WHERE state = 'pending';
CREATE INDEX outbox_done ON outbox (done) WHERE state <> 'pending';
";

/// The server's clock in Unix milliseconds, in SQL.
const SERVER_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// The index of the registry-wide findings order (`GET /v1/findings`
/// pages through it; byte-wise order, as SQLite's), and findings by layer.
const QUERY_INDEXES_2: &str = "
CREATE INDEX findings_sorted ON findings
    (severity DESC, id COLLATE \"C\", digest COLLATE \"C\", ord) WHERE NOT suppressed;
CREATE INDEX findings_by_layer ON findings (layer);
";

const SCHEMA_1: &str = "
CREATE TABLE images (
    digest text PRIMARY KEY,
    registry text NOT NULL,
    repository text NOT NULL,
    media_type text NOT NULL,
    verdict text,
    verdict_reason text,
    summary text,
    inventory text,
    report text,
    report_sha256 text,
    advisory_db text,
    policy text,
    error text,
    scans bigint NOT NULL DEFAULT 0,
    rescans bigint NOT NULL DEFAULT 0,
    failures bigint NOT NULL DEFAULT 0,
    first_seen bigint NOT NULL,
    last_scanned bigint,
    last_failed bigint,
    last_matched bigint,
    last_pushed bigint,
    last_pulled bigint
);
CREATE INDEX images_by_push ON images (last_pushed);
CREATE INDEX images_by_pull ON images (last_pulled);
CREATE TABLE tags (
    repository text NOT NULL,
    tag text NOT NULL,
    digest text NOT NULL REFERENCES images (digest),
    PRIMARY KEY (repository, tag, digest)
);
CREATE INDEX tags_by_digest ON tags (digest);
CREATE TABLE jobs (
    seq bigserial PRIMARY KEY,
    digest text NOT NULL UNIQUE REFERENCES images (digest),
    registry text NOT NULL,
    repository text NOT NULL,
    state text NOT NULL CHECK (state IN ('queued', 'running')),
    attempts bigint NOT NULL DEFAULT 0,
    enqueued bigint NOT NULL,
    lease_owner text,
    lease_token bigint,
    lease_until bigint,
    alone boolean NOT NULL DEFAULT false,
    after_crash boolean NOT NULL DEFAULT false
);
CREATE INDEX jobs_queue ON jobs (after_crash DESC, seq) WHERE state = 'queued';
CREATE INDEX jobs_by_owner ON jobs (lease_owner) WHERE state = 'running';
CREATE INDEX jobs_by_lease ON jobs (lease_until) WHERE state = 'running';
CREATE SEQUENCE lease_tokens;
CREATE TABLE findings (
    digest text NOT NULL REFERENCES images (digest) ON DELETE CASCADE,
    ord integer NOT NULL,
    id text NOT NULL,
    aliases text[] NOT NULL,
    keys text[] NOT NULL,
    package text NOT NULL,
    version text NOT NULL,
    source_name text NOT NULL,
    source_version text NOT NULL,
    ecosystem text NOT NULL,
    severity smallint NOT NULL,
    fix_state text NOT NULL,
    fixed_version text,
    layer text,
    suppressed boolean NOT NULL,
    PRIMARY KEY (digest, ord)
);
CREATE INDEX findings_by_key ON findings USING gin (keys);
CREATE INDEX findings_by_package ON findings (package);
CREATE INDEX findings_by_source ON findings (source_name);
CREATE INDEX findings_by_severity ON findings (severity, fix_state);
CREATE TABLE rescans (
    id bigserial PRIMARY KEY,
    seq bigint NOT NULL,
    advisory_db text NOT NULL,
    policy text NOT NULL,
    planned bigint NOT NULL,
    UNIQUE (advisory_db, policy)
);
CREATE TABLE rescan_batches (
    id bigserial PRIMARY KEY,
    rescan bigint NOT NULL REFERENCES rescans (id) ON DELETE CASCADE,
    digests text[] NOT NULL,
    state text NOT NULL CHECK (state IN ('queued', 'running')),
    attempts bigint NOT NULL DEFAULT 0,
    lease_owner text,
    lease_token bigint,
    lease_until bigint
);
CREATE INDEX rescan_batches_by_rescan ON rescan_batches (rescan, state, id);
";

/// The columns `COPY` writes into `findings`, and their types.
const COPY_FINDINGS: &str = "COPY findings_own (digest, fkey, id, aliases, keys, package, version,
    source_name, source_version, ecosystem, severity, fix_state, fixed_version, layer, path,
    suppressed, h) FROM STDIN BINARY";
const FINDING_TYPES: [Type; 17] = [
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT_ARRAY,
    Type::TEXT_ARRAY,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT2,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::BOOL,
    Type::INT8,
];

/// A session's staging table for a rescan's new finding rows: no indexes,
/// not logged, emptied at every commit.
const NEW_FINDINGS: &str = "CREATE TEMPORARY TABLE IF NOT EXISTS new_findings (
    digest text NOT NULL, fkey text NOT NULL, id text NOT NULL, aliases text[] NOT NULL,
    keys text[] NOT NULL, package text NOT NULL, version text NOT NULL,
    source_name text NOT NULL, source_version text NOT NULL, ecosystem text NOT NULL,
    severity smallint NOT NULL, fix_state text NOT NULL, fixed_version text, layer text,
    path text, suppressed boolean NOT NULL, h bigint NOT NULL
) ON COMMIT DELETE ROWS";

/// [`COPY_FINDINGS`] into [`NEW_FINDINGS`].
const COPY_NEW_FINDINGS: &str = "COPY new_findings (digest, fkey, id, aliases, keys, package,
    version, source_name, source_version, ecosystem, severity, fix_state, fixed_version, layer,
    path, suppressed, h) FROM STDIN BINARY";

/// Updates the stored rows that have a staged row of the same key to it.
const UPDATE_FROM_NEW_FINDINGS: &str = "UPDATE findings_own AS f SET aliases = n.aliases,
    keys = n.keys, package = n.package, version = n.version, source_name = n.source_name,
    source_version = n.source_version, ecosystem = n.ecosystem, severity = n.severity,
    fix_state = n.fix_state, fixed_version = n.fixed_version, layer = n.layer, path = n.path,
    suppressed = n.suppressed, h = n.h
    FROM new_findings AS n
    WHERE f.digest = n.digest AND f.id = n.id AND f.fkey = n.fkey";

/// The PostgreSQL store: a connection pool and what this process knows of
/// the server's clock.
#[derive(Clone)]
pub(super) struct PgStore {
    pool: Pool,
    shown: String,
    /// The server's clock minus the local one (ms), and when it was measured.
    clock: Arc<Mutex<Option<(Instant, i64)>>>,
    /// Claims of this process, one at a time: whether a job runs alone is
    /// decided per owner, from the jobs it already runs.
    claims: Arc<tokio::sync::Mutex<()>>,
}

/// A rescan batch written and committed ([`PgStore::finish_rescan`]), and
/// what is left to do after the commit ([`PgStore::after_rescan_batch`]).
#[derive(Debug)]
pub(super) struct BatchWritten {
    /// The images written (each counted as one rescan).
    pub(super) written: usize,
    /// The rescan the batch was of.
    rescan: i64,
    /// Whether images were linked to their packages anew (the normalized
    /// tables' statistics may be due).
    linked_anew: bool,
}

/// The server options every connection of the store starts with (see
/// [`PgStore::open`]).
const NO_PARALLEL_WORKERS: &str = "-c max_parallel_workers_per_gather=0";

/// How long a measured clock offset is used before it is measured again.
const CLOCK_TTL: std::time::Duration = std::time::Duration::from_secs(60);

impl PgStore {
    pub(super) async fn open(
        mut config: tokio_postgres::Config,
        shown: String,
        pool_size: usize,
    ) -> Result<PgStore, StoreError> {
        // No parallel workers for the store's statements, unless the URL's
        // `options` say otherwise (they come after, and the last setting
        // wins). The API's reads are small and many at once: starting two
        // workers for an id in 400 images took longer (9-13 ms) than the
        // statement alone (4-5 ms), and a team's vulnerabilities at 100,000
        // images ran no faster with them (47-51 ms against 37-47 ms) on the
        // two cores shared with the services. The writes run no parallel
        // plans anyway.
        let options = match config.get_options() {
            Some(given) => format!("{NO_PARALLEL_WORKERS} {given}"),
            None => NO_PARALLEL_WORKERS.to_string(),
        };
        config.options(options);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                // A connection the server closed (a restart) is dropped, not reused.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(2))
            .build()
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        let store = PgStore {
            pool,
            shown,
            clock: Arc::new(Mutex::new(None)),
            claims: Arc::new(tokio::sync::Mutex::new(())),
        };
        let mut client = store.client().await?;
        migrate(&mut client, &store.shown).await?;
        Ok(store)
    }

    pub(super) fn shown(&self) -> &str {
        &self.shown
    }

    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => StoreError::Postgres(e),
            e => StoreError::Pool(e.to_string()),
        })
    }

    /// Unix milliseconds by the server's clock.
    pub(super) async fn now_ms(&self) -> Result<i64, StoreError> {
        let known = *self.clock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, offset)) = known
            && at.elapsed() < CLOCK_TTL
        {
            return Ok(local_now_ms().saturating_add(offset));
        }
        let client = self.client().await?;
        let before = local_now_ms();
        let server: i64 = client
            .query_one(
                "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
                &[],
            )
            .await?
            .get(0);
        let after = local_now_ms();
        let offset = server - before / 2 - after / 2;
        *self.clock.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), offset));
        Ok(local_now_ms().saturating_add(offset))
    }

    pub(super) async fn recover_orphans(
        &self,
        owner: &str,
        owners_gone: bool,
        now_ms: i64,
    ) -> Result<Recovered, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let recovered = recover(&tx, owner, owners_gone, now_ms).await?;
        tx.commit().await?;
        Ok(recovered)
    }

    pub(super) async fn apply(
        &self,
        events: &[Recorded],
        max_pending: usize,
        now: i64,
    ) -> Result<Applied, StoreError> {
        let max_pending = max_pending.max(1);
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&APPLY_LOCK])
            .await?;
        let before = queued_jobs(&tx).await?;
        let mut applied = Applied {
            pending: before,
            ..Applied::default()
        };
        for event in events {
            match event {
                Recorded::Image(ev) => {
                    if applied.pending >= max_pending && needs_scan(&tx, ev).await? {
                        break;
                    }
                    if record_image(&tx, ev, now).await? {
                        applied.pending += 1;
                    }
                }
                Recorded::Delete(deletion) => {
                    applied.forgotten += usize::from(delete(&tx, deletion).await?);
                    applied.pending = queued_jobs(&tx).await?;
                }
            }
            applied.recorded += 1;
        }
        applied.deferred = events.len() - applied.recorded;
        applied.queued = applied.pending.saturating_sub(before);
        tx.commit().await?;
        Ok(applied)
    }

    pub(super) async fn claim(
        &self,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        notify: &[String],
    ) -> Result<Option<Job>, StoreError> {
        let _one_at_a_time = self.claims.lock().await;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        recover(&tx, owner, false, now_ms).await?;
        let row = query_one(
            &tx,
            "SELECT count(*), count(*) FILTER (WHERE after_crash) FROM jobs
             WHERE state = 'running' AND lease_owner = $1",
            &[&owner],
        )
        .await?;
        let (running, running_after_crash): (i64, i64) = (row.get(0), row.get(1));
        if running_after_crash > 0 {
            return Ok(None);
        }
        let job = loop {
            let row = query_opt(
                &tx,
                "SELECT digest, registry, repository, attempts, after_crash FROM jobs
                 WHERE state = 'queued' ORDER BY after_crash DESC, seq LIMIT 1
                 FOR UPDATE SKIP LOCKED",
                &[],
            )
            .await?;
            let Some(row) = row else { break None };
            let (digest, registry, repository, attempts, after_crash): (
                String,
                String,
                String,
                i64,
                bool,
            ) = (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
            if attempts >= MAX_ATTEMPTS {
                let error = super::sqlite::given_up(attempts);
                record_failure(&tx, &digest, &error, now_ms / 1000, notify).await?;
                continue;
            }
            if after_crash && running > 0 {
                break None;
            }
            let token = new_token(&tx).await?;
            let alone = running == 0;
            if !alone {
                execute(
                    &tx,
                    "UPDATE jobs SET alone = false WHERE state = 'running' AND lease_owner = $1",
                    &[&owner],
                )
                .await?;
            }
            execute(
                &tx,
                "UPDATE jobs SET state = 'running', lease_owner = $2, lease_token = $3,
                 lease_until = $4, alone = $5 WHERE digest = $1",
                &[&digest, &owner, &token, &lease_until_ms, &alone],
            )
            .await?;
            break Some(Job {
                digest,
                registry,
                repository,
                token,
            });
        };
        tx.commit().await?;
        Ok(job)
    }

    pub(super) async fn heartbeat(
        &self,
        digest: &str,
        token: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE jobs SET lease_until = $3
                 WHERE digest = $1 AND lease_token = $2 AND state = 'running'",
            )
            .await?;
        Ok(client.execute(&stmt, &[&digest, &token, &until_ms]).await? == 1)
    }

    pub(super) async fn release(&self, digest: &str, token: i64) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_token = NULL,
                 lease_until = NULL WHERE digest = $1 AND lease_token = $2 AND state = 'running'",
                &[&digest, &token],
            )
            .await?;
        Ok(())
    }

    pub(super) async fn finish_scan(
        &self,
        digest: &str,
        token: i64,
        inventory: &str,
        result: &MatchResult,
        now: i64,
        notify: &[String],
    ) -> Result<bool, StoreError> {
        let layout = match result.layout(&mut BatchCache::default()) {
            Ok(layout) => {
                self.claim_packages(&result.target, &[(&result.findings, &layout)])
                    .await?;
                Some(layout)
            }
            Err(why) => {
                debug!(digest, why, "findings stored in own mode");
                None
            }
        };
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Locked: a recovery cannot take the job over while it is stored.
        let held = query_opt(
            &tx,
            "SELECT 1 FROM jobs WHERE digest = $1 AND lease_token = $2 AND state = 'running'
             FOR UPDATE",
            &[&digest, &token],
        )
        .await?
        .is_some();
        if !held {
            return Ok(false);
        }
        // Shared with other writers, exclusive with the collection of
        // unused targets' package rows: those read back stay until the commit.
        tx.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&PLAN_LOCK])
            .await?;
        let (normalized, target_id) = match &layout {
            Some(layout) => {
                let keys: Vec<i64> = layout.packages.iter().map(|p| p.pkey).collect();
                let (id, stored) = stored_hashes(&tx, &result.target, &keys).await?;
                let ok = id.is_some() && matches_stored(layout, &stored);
                if !ok {
                    debug!(
                        digest,
                        "findings stored in own mode: its packages' rows differ from the stored ones"
                    );
                }
                (ok, id.filter(|_| ok))
            }
            None => (false, None),
        };
        let before = if notify.is_empty() {
            Vec::new()
        } else {
            event_images(&tx, &[digest]).await?
        };
        execute(
            &tx,
            "UPDATE images SET inventory = $2, verdict = $3, verdict_reason = $4, summary = $5,
             report = $6, report_sha256 = $7, advisory_db = $8, policy = $9, error = NULL,
             report_db = $8, report_policy = $9, counts = $11::text::jsonb,
             own = $12, target = $13, links = $14,
             scans = scans + 1, last_scanned = $10, last_matched = $10 WHERE digest = $1",
            &[
                &digest,
                &inventory,
                &result.verdict,
                &result.verdict_reason,
                &result.summary,
                &result.report,
                &result.report_sha256,
                &result.target.advisory_db,
                &result.target.policy,
                &now,
                &result.counts.json(),
                &!normalized,
                &target_id,
                &layout.as_ref().map(|l| l.links_sha256.as_slice()),
            ],
        )
        .await?;
        execute(
            &tx,
            "DELETE FROM findings_own WHERE digest = $1",
            &[&digest],
        )
        .await?;
        execute(
            &tx,
            "DELETE FROM image_packages WHERE digest = $1",
            &[&digest],
        )
        .await?;
        if let Some(layout) = &layout {
            copy_links(&tx, &[(digest, layout)]).await?;
        }
        if !normalized {
            copy_findings(&tx, &[(digest, result.findings.as_slice())]).await?;
        }
        execute(&tx, "DELETE FROM jobs WHERE digest = $1", &[&digest]).await?;
        if let Some((image, previous)) = before.into_iter().next() {
            let mut events = vec![outbox::scan_completed(&image, result, now)];
            if outbox::changed(previous.as_deref(), &result.verdict) {
                events.push(outbox::verdict_changed(
                    &image,
                    previous.as_deref().unwrap_or_default(),
                    result,
                    None,
                    now,
                ));
            }
            write_events(&tx, &events, notify).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn fail_scan(
        &self,
        digest: &str,
        token: i64,
        error: &str,
        now: i64,
        notify: &[String],
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let held = query_opt(
            &tx,
            "SELECT 1 FROM jobs WHERE digest = $1 AND lease_token = $2 AND state = 'running'
             FOR UPDATE",
            &[&digest, &token],
        )
        .await?
        .is_some();
        if held {
            record_failure(&tx, digest, error, now, notify).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn plan_rescan(
        &self,
        target: &MatchTarget,
        since: i64,
        batch_size: usize,
        replace: bool,
    ) -> Result<RescanPlan, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PLAN_LOCK])
            .await?;
        let newest: i64 = query_one(&tx, "SELECT coalesce(max(seq), 0) FROM rescans", &[])
            .await?
            .get(0);
        let known = query_opt(
            &tx,
            "SELECT id, seq FROM rescans WHERE advisory_db = $1 AND policy = $2",
            &[&target.advisory_db, &target.policy],
        )
        .await?
        .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)));
        let now = local_now_ms() / 1000;
        let id = match known {
            Some((id, seq)) if seq == newest => id,
            Some((id, _)) if replace => {
                execute(
                    &tx,
                    "UPDATE rescans SET seq = $2, planned = $3 WHERE id = $1",
                    &[&id, &(newest + 1), &now],
                )
                .await?;
                id
            }
            Some(_) => return Ok(RescanPlan::Superseded),
            None => query_one(
                &tx,
                "INSERT INTO rescans (seq, advisory_db, policy, planned) VALUES ($1, $2, $3, $4)
                 RETURNING id",
                &[&(newest + 1), &target.advisory_db, &target.policy, &now],
            )
            .await?
            .get(0),
        };
        execute(
            &tx,
            "DELETE FROM rescan_batches WHERE rescan <> $1 AND state = 'queued'",
            &[&id],
        )
        .await?;
        let batch_size = i64::try_from(batch_size).unwrap_or(i64::MAX);
        let planned = query(
            &tx,
            "INSERT INTO rescan_batches (rescan, digests, state)
             SELECT $1, array_agg(digest ORDER BY digest), 'queued' FROM (
                 SELECT digest, (row_number() OVER (ORDER BY digest) - 1) / $2 AS batch
                 FROM images
                 WHERE inventory IS NOT NULL AND (last_pushed >= $3 OR last_pulled >= $3)
                 AND (advisory_db IS DISTINCT FROM $4 OR policy IS DISTINCT FROM $5)
                 AND digest NOT IN (SELECT unnest(digests) FROM rescan_batches WHERE rescan = $1)
             ) stale GROUP BY batch ORDER BY batch
             RETURNING cardinality(digests)",
            &[
                &id,
                &batch_size,
                &since,
                &target.advisory_db,
                &target.policy,
            ],
        )
        .await?;
        collect_package_rows(&tx, target).await?;
        tx.commit().await?;
        let images: i32 = planned.iter().map(|r| r.get::<_, i32>(0)).sum();
        Ok(RescanPlan::Planned {
            images: usize::try_from(images).unwrap_or(0),
            batches: planned.len(),
        })
    }

    pub(super) async fn claim_rescan(
        &self,
        owner: &str,
        target: &MatchTarget,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Option<RescanBatch>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let Some(rescan) = newest_rescan_of(&tx, target).await? else {
            return Ok(None);
        };
        let batch = loop {
            let row = query_opt(
                &tx,
                "SELECT id, digests, state, attempts FROM rescan_batches
                 WHERE rescan = $1 AND (state = 'queued' OR lease_until < $2)
                 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
                &[&rescan, &now_ms],
            )
            .await?;
            let Some(row) = row else { break None };
            let (id, digests, state, mut attempts): (i64, Vec<String>, String, i64) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            if state == "running" {
                attempts += 1;
                if attempts >= MAX_ATTEMPTS {
                    warn!(
                        batch = id,
                        "a rescan batch was abandoned {attempts} times: dropped"
                    );
                    execute(&tx, "DELETE FROM rescan_batches WHERE id = $1", &[&id]).await?;
                    continue;
                }
            }
            let token = new_token(&tx).await?;
            execute(
                &tx,
                "UPDATE rescan_batches SET state = 'running', attempts = $2, lease_owner = $3,
                 lease_token = $4, lease_until = $5 WHERE id = $1",
                &[&id, &attempts, &owner, &token, &until_ms],
            )
            .await?;
            break Some(RescanBatch {
                id,
                token,
                target: target.clone(),
                digests,
            });
        };
        tx.commit().await?;
        Ok(batch)
    }

    pub(super) async fn renew_rescan(
        &self,
        id: i64,
        token: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "UPDATE rescan_batches SET lease_until = $3
                 WHERE id = $1 AND lease_token = $2 AND state = 'running'",
                &[&id, &token, &until_ms],
            )
            .await?
            == 1)
    }

    pub(super) async fn release_rescan(&self, id: i64, token: i64) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE rescan_batches SET state = 'queued', lease_owner = NULL,
                 lease_token = NULL, lease_until = NULL
                 WHERE id = $1 AND lease_token = $2 AND state = 'running'",
                &[&id, &token],
            )
            .await?;
        Ok(())
    }

    pub(super) async fn inventories(
        &self,
        digests: &[String],
    ) -> Result<Vec<StoredInventory>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT digest, inventory, report_sha256 FROM images
                 WHERE digest = ANY($1) AND inventory IS NOT NULL ORDER BY digest",
            )
            .await?;
        Ok(client
            .query(&stmt, &[&digests])
            .await?
            .into_iter()
            .map(|r| StoredInventory {
                digest: r.get(0),
                inventory: r.get(1),
                report_sha256: r.get(2),
            })
            .collect())
    }

    /// Writes a rescan batch in one transaction (after the package rows'
    /// claims, in one of their own): `None` when nothing was written (the
    /// claim no longer held it, or its target was superseded), else what
    /// was written and what [`PgStore::after_rescan_batch`] is to do once
    /// it committed. Safe to run again whole when PostgreSQL aborted it to
    /// break a deadlock: the aborted transaction stored nothing, and the
    /// claims committed before it are idempotent.
    pub(super) async fn finish_rescan(
        &self,
        batch: &RescanBatch,
        results: &[Rematched],
        now: i64,
        notify: &[String],
    ) -> Result<Option<BatchWritten>, StoreError> {
        // How each image's findings would be stored normalized, and the
        // package rows of the target they need, written first (a short
        // transaction of their own). Package keys and row hashes are
        // computed once per distinct package of the batch.
        let mut cache = BatchCache::default();
        let layouts: Vec<Option<Layout>> = results
            .iter()
            .map(|r| match r.result.layout(&mut cache) {
                Ok(layout) => Some(layout),
                Err(why) => {
                    debug!(digest = %r.digest, why, "findings stored in own mode");
                    None
                }
            })
            .collect();
        let claims: Vec<(&[FindingRow], &Layout)> = results
            .iter()
            .zip(&layouts)
            .filter_map(|(r, l)| Some((r.result.findings.as_slice(), l.as_ref()?)))
            .collect();
        self.claim_packages(&batch.target, &claims).await?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Shared with other batches, exclusive with a plan: a target is not
        // superseded between the check below and the commit (nor its
        // package rows collected).
        tx.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&PLAN_LOCK])
            .await?;
        // FOR KEY SHARE, not FOR UPDATE: the process's lease renewals
        // (`renew_rescan`) go on while the batch is written; that the claim
        // still holds at the commit is checked by the final DELETE.
        let held: Option<i64> = query_opt(
            &tx,
            "SELECT rescan FROM rescan_batches
             WHERE id = $1 AND lease_token = $2 AND state = 'running' FOR KEY SHARE",
            &[&batch.id, &batch.token],
        )
        .await?
        .map(|r| r.get(0));
        let Some(rescan) = held else {
            return Ok(None);
        };
        if newest_rescan_of(&tx, &batch.target).await? != Some(rescan) {
            execute(
                &tx,
                "DELETE FROM rescan_batches WHERE id = $1",
                &[&batch.id],
            )
            .await?;
            tx.commit().await?;
            return Ok(None);
        }
        let (db, policy) = (&batch.target.advisory_db, &batch.target.policy);
        // Which images are stored normalized: those whose every package has
        // the rows stored that the image has.
        let mut keys: Vec<i64> = claims
            .iter()
            .flat_map(|(_, l)| l.packages.iter().map(|p| p.pkey))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let (target_id, stored) = stored_hashes(&tx, &batch.target, &keys).await?;
        let normalized: Vec<bool> = results
            .iter()
            .zip(&layouts)
            .map(|(r, l)| {
                let ok = target_id.is_some()
                    && l.as_ref().is_some_and(|l| matches_stored(l, &stored));
                if l.is_some() && !ok {
                    debug!(
                        digest = %r.digest,
                        "findings stored in own mode: its packages' rows differ from the stored ones"
                    );
                }
                ok
            })
            .collect();
        // The stale images of the batch and whether they are in own mode
        // now, locked until the commit (in digest order, as every writer
        // of images locks them).
        let all: Vec<&str> = results.iter().map(|r| r.digest.as_str()).collect();
        // Each image's place in the batch (the first, were one repeated).
        let mut place: HashMap<&str, usize> = HashMap::with_capacity(results.len());
        for (i, r) in results.iter().enumerate() {
            place.entry(r.digest.as_str()).or_insert(i);
        }
        let mut was_own: HashMap<String, bool> = HashMap::with_capacity(all.len());
        // Their `counts` now, read under the lock: the UPDATE below says
        // how each changes (`counts_change`), so that the counters' trigger
        // checks the change rather than comparing both documents whole.
        let mut old_counts: HashMap<String, String> = HashMap::with_capacity(all.len());
        // Images whose stored links are not the layout's (none, or written
        // by another version): linked anew when normalized.
        let mut relink: HashSet<&str> = HashSet::new();
        for row in query(
            &tx,
            "SELECT digest, own, links, counts::text FROM images
             WHERE digest = ANY($1) AND inventory IS NOT NULL
             AND (advisory_db IS DISTINCT FROM $2 OR policy IS DISTINCT FROM $3)
             ORDER BY digest FOR NO KEY UPDATE",
            &[&all, db, policy],
        )
        .await?
        {
            let digest: &str = row.try_get(0)?;
            let links: Option<&[u8]> = row.try_get(2)?;
            old_counts.insert(digest.to_string(), row.try_get(3)?);
            if let Some(&i) = place.get(digest)
                && let Some(layout) = &layouts[i]
                && links != Some(layout.links_sha256.as_slice())
            {
                relink.insert(results[i].digest.as_str());
            }
            was_own.insert(digest.to_string(), row.try_get(1)?);
        }
        let mut unchanged: Vec<(&Rematched, bool)> = Vec::new();
        let mut changed: Vec<(&Rematched, bool)> = Vec::new();
        for (r, normalized) in results.iter().zip(normalized.iter().copied()) {
            if r.previous_sha256.as_deref() == Some(r.result.report_sha256.as_str()) {
                unchanged.push((r, !normalized));
            } else {
                changed.push((r, !normalized));
            }
        }
        let layout_of = |digest: &str| place.get(digest).and_then(|&i| layouts[i].as_ref());
        // Images written: those normalized now (those that were in own mode
        // have their own rows deleted; those whose links are not the
        // layout's are linked anew), and those in own mode now (their rows
        // written as the difference with the stored ones: all of them for
        // an image normalized before).
        let mut now_normalized: Vec<&str> = Vec::new();
        let mut linked_anew: Vec<&str> = Vec::new();
        let mut now_own: Vec<(&str, &[FindingRow])> = Vec::new();
        let mut written = 0;
        if !unchanged.is_empty() {
            let mut digests: Vec<&str> = Vec::new();
            let mut hashes: Vec<&str> = Vec::new();
            let mut own: Vec<bool> = Vec::new();
            for (r, o) in &unchanged {
                digests.push(&r.digest);
                hashes.push(&r.result.report_sha256);
                own.push(*o);
            }
            let rows = query(
                &tx,
                "UPDATE images AS i SET advisory_db = $3, policy = $4, rescans = rescans + 1,
                 last_matched = $5, own = u.own, target = CASE WHEN u.own THEN NULL ELSE $7::bigint END
                 FROM unnest($1::text[], $2::text[], $6::bool[]) AS u(digest, sha, own)
                 WHERE i.digest = u.digest AND i.report_sha256 = u.sha
                 AND (i.advisory_db IS DISTINCT FROM $3 OR i.policy IS DISTINCT FROM $4)
                 RETURNING i.digest",
                &[&digests, &hashes, db, policy, &now, &own, &target_id],
            )
            .await?;
            written += rows.len() as u64;
            for row in &rows {
                let digest: &str = row.try_get(0)?;
                let Some(&i) = place.get(digest) else {
                    continue;
                };
                let (r, own) = (&results[i], !normalized[i]);
                if !own && relink.contains(r.digest.as_str()) {
                    linked_anew.push(r.digest.as_str());
                }
                match (was_own.get(digest).copied().unwrap_or(true), own) {
                    (true, false) => now_normalized.push(r.digest.as_str()),
                    // Its rows are not stored anywhere yet: all written.
                    (false, true) => now_own.push((r.digest.as_str(), &r.result.findings)),
                    _ => {}
                }
            }
        }
        if !changed.is_empty() {
            // The verdicts before (rows locked until the commit), for the events.
            let before = if notify.is_empty() {
                Vec::new()
            } else {
                let digests: Vec<&str> = changed.iter().map(|(r, _)| r.digest.as_str()).collect();
                event_images(&tx, &digests).await?
            };
            let mut columns: [Vec<&str>; 5] = Default::default();
            // The report goes only to an image stored without one (no hash).
            let mut reports: Vec<Option<&str>> = Vec::with_capacity(changed.len());
            let mut own: Vec<bool> = Vec::with_capacity(changed.len());
            // The aggregate the summary's counters take (`images.counts`):
            // its triggers turn old → new counts into deltas.
            let mut counts: Vec<String> = Vec::with_capacity(changed.len());
            let mut changes: Vec<Option<String>> = Vec::with_capacity(changed.len());
            for (r, o) in &changed {
                counts.push(r.result.counts.json());
                changes.push(
                    old_counts
                        .get(&r.digest)
                        .and_then(|old| r.result.counts.change_from(old)),
                );
                let values = [
                    r.digest.as_str(),
                    r.result.verdict.as_str(),
                    r.result.verdict_reason.as_str(),
                    r.result.summary.as_str(),
                    r.result.report_sha256.as_str(),
                ];
                for (column, value) in columns.iter_mut().zip(values) {
                    column.push(value);
                }
                reports.push(
                    r.result
                        .report
                        .as_deref()
                        .filter(|_| r.previous_sha256.is_none()),
                );
                own.push(*o);
            }
            let [digests, verdicts, reasons, summaries, hashes] = &columns;
            // The report is not written: the one stored stays as a cache of
            // its target (report_db, report_policy), rebuilt when served.
            let rows = query(
                &tx,
                "UPDATE images AS i SET verdict = u.verdict, verdict_reason = u.reason,
                 summary = u.summary, report_sha256 = u.sha, counts = u.counts::jsonb,
                 counts_change = u.change::jsonb, report = coalesce(i.report, u.report),
                 report_db = CASE WHEN i.report IS NULL AND u.report IS NOT NULL
                                  THEN $7 ELSE i.report_db END,
                 report_policy = CASE WHEN i.report IS NULL AND u.report IS NOT NULL
                                      THEN $8 ELSE i.report_policy END,
                 advisory_db = $7, policy = $8, rescans = rescans + 1, last_matched = $9,
                 own = u.own, target = CASE WHEN u.own THEN NULL ELSE $11::bigint END
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                             $6::text[], $10::text[], $12::bool[], $13::text[])
                     AS u(digest, verdict, reason, summary, sha, report, counts, own, change)
                 WHERE i.digest = u.digest AND i.inventory IS NOT NULL
                 AND (i.advisory_db IS DISTINCT FROM $7 OR i.policy IS DISTINCT FROM $8)
                 RETURNING i.digest",
                &[
                    digests, verdicts, reasons, summaries, hashes, &reports, db, policy, &now,
                    &counts, &target_id, &own, &changes,
                ],
            )
            .await?;
            let mut stored: HashSet<&str> = HashSet::with_capacity(rows.len());
            for row in &rows {
                stored.insert(row.try_get(0)?);
            }
            for (r, own) in &changed {
                if !stored.contains(r.digest.as_str()) {
                    continue;
                }
                if *own {
                    // Compared with the stored own rows (none for an image
                    // normalized before, or stored without a report: all
                    // copied in), whatever the caller says it had before.
                    now_own.push((r.digest.as_str(), r.result.findings.as_slice()));
                } else {
                    if was_own.get(&r.digest).copied().unwrap_or(true) {
                        now_normalized.push(r.digest.as_str());
                    }
                    if relink.contains(r.digest.as_str()) {
                        linked_anew.push(r.digest.as_str());
                    }
                }
            }
            written += u64::try_from(stored.len()).unwrap_or(u64::MAX);
            if !before.is_empty() {
                let seq: i64 = query_one(&tx, "SELECT seq FROM rescans WHERE id = $1", &[&rescan])
                    .await?
                    .get(0);
                let mut events = Vec::new();
                for (image, previous) in &before {
                    let Some(r) = place.get(image.digest.as_str()).map(|&i| &results[i]) else {
                        continue;
                    };
                    if stored.contains(r.digest.as_str())
                        && outbox::changed(previous.as_deref(), &r.result.verdict)
                    {
                        events.push(outbox::verdict_changed(
                            image,
                            previous.as_deref().unwrap_or_default(),
                            &r.result,
                            Some(seq),
                            now,
                        ));
                    }
                }
                write_events(&tx, &events, notify).await?;
            }
        }
        if !now_normalized.is_empty() {
            execute(
                &tx,
                "DELETE FROM findings_own WHERE digest = ANY($1)",
                &[&now_normalized],
            )
            .await?;
        }
        if !linked_anew.is_empty() {
            execute(
                &tx,
                "DELETE FROM image_packages WHERE digest = ANY($1)",
                &[&linked_anew],
            )
            .await?;
            let links: Vec<(&str, &Layout)> = linked_anew
                .iter()
                .filter_map(|d| Some((*d, layout_of(d)?)))
                .collect();
            copy_links(&tx, &links).await?;
            let hashes: Vec<&[u8]> = links
                .iter()
                .map(|(_, l)| l.links_sha256.as_slice())
                .collect();
            let digests: Vec<&str> = links.iter().map(|(d, _)| *d).collect();
            execute(
                &tx,
                "UPDATE images AS i SET links = u.links
                 FROM unnest($1::text[], $2::bytea[]) AS u(digest, links)
                 WHERE i.digest = u.digest",
                &[&digests, &hashes],
            )
            .await?;
        }
        let (deleted, updated, inserted) = apply_findings(&tx, &now_own).await?;
        debug!(
            batch = batch.id,
            normalized = normalized.iter().filter(|n| **n).count(),
            own = normalized.iter().filter(|n| !**n).count(),
            newly_normalized = now_normalized.len(),
            own_rows_written = now_own.len(),
            deleted,
            updated,
            inserted,
            "rescan batch written"
        );
        // The claim still holds (a takeover after an expired lease changed
        // the token): else nothing of this batch is stored.
        let still_held = execute(
            &tx,
            "DELETE FROM rescan_batches WHERE id = $1 AND lease_token = $2 AND state = 'running'",
            &[&batch.id, &batch.token],
        )
        .await?
            == 1;
        if !still_held {
            tx.rollback().await?;
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(BatchWritten {
            written: usize::try_from(written).unwrap_or(usize::MAX),
            rescan,
            linked_anew: !linked_anew.is_empty(),
        }))
    }

    /// What follows a rescan batch's commit ([`PgStore::finish_rescan`]),
    /// in transactions and statements of its own: the statistics refreshed
    /// when images were linked anew and, after the rescan's last batch, the
    /// package rows of the targets the images were on before collected,
    /// the statistics refreshed and the counters' deltas folded and
    /// vacuumed. Every step is safe to run again (each looks at what is
    /// stored now), so a deadlock here is retried on its own
    /// ([`super::Store::finish_rescan`]). (When it was part of the batch's
    /// write, a deadlock here ran the write again, which found its batch
    /// gone and reported no image written although all were.)
    pub(super) async fn after_rescan_batch(
        &self,
        target: &MatchTarget,
        batch: &BatchWritten,
    ) -> Result<(), StoreError> {
        let rescan = batch.rescan;
        let mut client = self.client().await?;
        if batch.linked_anew {
            analyze_when_grown(&client).await?;
        }
        // The rescan's last batch: the package rows of the targets the
        // images were on before are collected now rather than at the next
        // plan (a lookup by id reads the rows of every target kept).
        let tx = client.transaction().await?;
        let last = query_one(
            &tx,
            "SELECT NOT EXISTS (SELECT 1 FROM rescan_batches WHERE rescan = $1)",
            &[&rescan],
        )
        .await?
        .get::<_, bool>(0);
        if last
            && query_one(&tx, "SELECT pg_try_advisory_xact_lock($1)", &[&PLAN_LOCK])
                .await?
                .get::<_, bool>(0)
            && newest_rescan_of(&tx, target).await? == Some(rescan)
        {
            collect_package_rows(&tx, target).await?;
        }
        tx.commit().await?;
        if last {
            // Every image rescanned is on the new target now, and every
            // package row written: what the planner knows of the images'
            // targets (one value, the old one) would have it join the
            // `findings` view as if no image had rows until autovacuum's
            // next analysis. A sample of the tables, once per rescan.
            client
                .batch_execute("ANALYZE images, package_targets, package_findings, match_targets")
                .await?;
            debug!(rescan, "statistics refreshed at the rescan's end");
            // The rescan's deltas folded, and the table they went through
            // vacuumed: a summary reads `summary_deltas` whole, dead rows
            // included, until autovacuum comes by (up to a minute later).
            // After a day's update of 10,000 images the summary took
            // 51/59 ms p50/p99 so. Best effort: the rescan is written.
            // (Two statements: VACUUM runs outside any transaction, a
            // string of several statements is one.)
            let vacuumed = match client.batch_execute("SELECT summary_fold()").await {
                Ok(()) => client.batch_execute("VACUUM summary_deltas").await,
                Err(e) => Err(e),
            };
            if let Err(e) = vacuumed {
                warn!(rescan, error = %e, "the counters' deltas were not vacuumed at the rescan's end");
            }
        }
        Ok(())
    }

    /// Claims the package keys of `images` under `target` and writes the
    /// rows of those it won, in a short transaction of its own (so that
    /// other writers wait for it only that long): each (target, key) is
    /// written by the first writer to claim it, with its row hash, and
    /// never changed afterwards. Keys are claimed in key order, so that two
    /// writers claiming overlapping keys cannot deadlock. Of a key in
    /// several images, the rows of the first are offered; images that
    /// disagree with the stored rows go to own mode when written.
    async fn claim_packages(
        &self,
        target: &MatchTarget,
        images: &[(&[FindingRow], &Layout<'_>)],
    ) -> Result<(), StoreError> {
        let mut offered: std::collections::BTreeMap<i64, (&[FindingRow], &PackageRows)> =
            std::collections::BTreeMap::new();
        for (findings, layout) in images {
            for p in &layout.packages {
                offered.entry(p.pkey).or_insert((findings, p));
            }
        }
        if offered.is_empty() {
            return Ok(());
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // No collection of unused targets while the claims are made.
        tx.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&PLAN_LOCK])
            .await?;
        let (db, policy) = (&target.advisory_db, &target.policy);
        execute(
            &tx,
            "INSERT INTO match_targets (advisory_db, policy) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
            &[db, policy],
        )
        .await?;
        let id: i64 = query_one(
            &tx,
            "SELECT id FROM match_targets WHERE advisory_db = $1 AND policy = $2",
            &[db, policy],
        )
        .await?
        .get(0);
        // Only the keys not written yet are offered (most are, after the
        // first batches of a target).
        let keys: Vec<i64> = offered.keys().copied().collect();
        let known = query(
            &tx,
            "SELECT pkey FROM package_targets WHERE target = $1 AND pkey = ANY($2)",
            &[&id, &keys],
        )
        .await?;
        for row in &known {
            offered.remove(&row.try_get::<_, i64>(0)?);
        }
        if offered.is_empty() {
            tx.commit().await?;
            return Ok(());
        }
        let keys: Vec<i64> = offered.keys().copied().collect();
        let hashes: Vec<&[u8]> = offered.values().map(|(_, p)| p.sha256.as_slice()).collect();
        let won = query(
            &tx,
            "INSERT INTO package_targets (target, pkey, rows_sha256)
             SELECT $1, u.pkey, u.sha FROM unnest($2::bigint[], $3::bytea[]) AS u(pkey, sha)
             ORDER BY u.pkey
             ON CONFLICT DO NOTHING RETURNING pkey",
            &[&id, &keys, &hashes],
        )
        .await?;
        let mut rows: Vec<(i64, &FindingRow)> = Vec::new();
        for row in &won {
            let pkey: i64 = row.try_get(0)?;
            if let Some((findings, p)) = offered.get(&pkey) {
                rows.extend(p.rows.iter().map(|&i| (pkey, &findings[i])));
            }
        }
        copy_package_findings(&tx, id, &rows).await?;
        tx.commit().await?;
        debug!(
            offered = keys.len(),
            won = won.len(),
            rows = rows.len(),
            "package rows written"
        );
        Ok(())
    }

    pub(super) async fn select_images(
        &self,
        digest: Option<&str>,
    ) -> Result<Vec<ImageRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT i.digest, i.registry, i.media_type, j.state, i.report IS NOT NULL,
                        i.verdict, i.verdict_reason, i.summary, i.advisory_db, i.error,
                        i.scans, i.rescans, i.failures, i.last_scanned, i.last_matched,
                        i.last_pushed, i.last_pulled, i.last_failed, i.policy,
                        j.attempts, j.after_crash
                 FROM images i LEFT JOIN jobs j ON j.digest = i.digest
                 WHERE $1::text IS NULL OR i.digest = $1 ORDER BY i.digest",
                &[&digest],
            )
            .await?;
        let mut images: Vec<ImageRecord> = rows
            .iter()
            .map(|r| {
                let job: Option<String> = r.get(3);
                ImageRecord {
                    digest: r.get(0),
                    registry: r.get(1),
                    media_type: r.get(2),
                    tags: Vec::new(),
                    state: ImageState::of(job.as_deref(), r.get(4)),
                    verdict: r.get(5),
                    verdict_reason: r.get(6),
                    summary: r.get(7),
                    advisory_db: r.get(8),
                    error: r.get(9),
                    scans: r.get(10),
                    rescans: r.get(11),
                    failures: r.get(12),
                    last_scanned: r.get(13),
                    last_matched: r.get(14),
                    last_pushed: r.get(15),
                    last_pulled: r.get(16),
                    last_failed: r.get(17),
                    policy: r.get(18),
                    job: r.get::<_, Option<i64>>(19).map(|attempts| JobStatus {
                        attempts,
                        after_crash: r.get::<_, Option<bool>>(20).unwrap_or(false),
                    }),
                }
            })
            .collect();
        let tags = client
            .query(
                "SELECT digest, repository, tag FROM tags WHERE $1::text IS NULL OR digest = $1
                 ORDER BY digest, repository, tag",
                &[&digest],
            )
            .await?;
        for row in tags {
            let (digest, repository, tag): (String, String, String) =
                (row.get(0), row.get(1), row.get(2));
            if let Ok(i) = images.binary_search_by(|img| img.digest.as_str().cmp(&digest)) {
                images[i]
                    .tags
                    .push((repository, (!tag.is_empty()).then_some(tag)));
            }
        }
        Ok(images)
    }

    pub(super) async fn report(
        &self,
        digest: &str,
    ) -> Result<Option<Option<StoredReport>>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT report, report_db, report_policy, advisory_db, policy,
                        CASE WHEN report_db IS DISTINCT FROM advisory_db
                             OR report_policy IS DISTINCT FROM policy THEN inventory END
                 FROM images WHERE digest = $1",
                &[&digest],
            )
            .await?;
        Ok(row.map(|r| {
            r.get::<_, Option<String>>(0).map(|report| {
                stored_report(report, (r.get(1), r.get(2)), (r.get(3), r.get(4)), r.get(5))
            })
        }))
    }

    pub(super) async fn cache_report(
        &self,
        digest: &str,
        target: &MatchTarget,
        report: &str,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "UPDATE images SET report = $2, report_db = $3, report_policy = $4
                 WHERE digest = $1 AND advisory_db = $3 AND policy = $4 AND report IS NOT NULL",
                &[&digest, &report, &target.advisory_db, &target.policy],
            )
            .await?
            == 1)
    }

    pub(super) async fn finding_versions(
        &self,
        digest: &str,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, fkey, v FROM (
                 SELECT id, fkey, xmin::text::bigint AS v FROM findings_own WHERE digest = $1
                 UNION ALL
                 SELECT pf.id, pf.package || E'\\x1f' || CASE WHEN pf.located THEN l.location
                            ELSE '' END || E'\\x1f' || pf.version,
                        pf.xmin::text::bigint
                 FROM images i
                 JOIN image_packages l ON l.digest = i.digest
                 JOIN package_findings pf ON pf.target = i.target AND pf.pkey = l.pkey
                 WHERE i.digest = $1 AND NOT i.own) f
                 ORDER BY id COLLATE \"C\", fkey COLLATE \"C\"",
                &[&digest],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    pub(super) async fn findings(&self, digest: &str) -> Result<Vec<FindingRow>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, aliases, package, version, source_name, source_version, ecosystem,
                        severity, fix_state, fixed_version, layer, suppressed, path
                 FROM findings WHERE digest = $1
                 ORDER BY suppressed, severity DESC, package COLLATE \"C\", id COLLATE \"C\",
                          fkey COLLATE \"C\"",
                &[&digest],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| FindingRow {
                id: r.get(0),
                aliases: r.get(1),
                package: r.get(2),
                version: r.get(3),
                source_name: r.get(4),
                source_version: r.get(5),
                ecosystem: r.get(6),
                severity: severity_of_rank(r.get(7)),
                fix_state: fix_state_of(r.get(8)),
                fixed_version: r.get(9),
                layer: r.get(10),
                suppressed: r.get(11),
                path: r.get(12),
            })
            .collect())
    }

    pub(super) async fn claim_deliveries(
        &self,
        owner: &str,
        targets: &[String],
        now_ms: i64,
        until_ms: i64,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let token = new_token(&tx).await?;
        let rows = query(
            &tx,
            "UPDATE outbox SET lease_owner = $1, lease_token = $2, lease_until = $3
             WHERE seq IN (SELECT seq FROM outbox WHERE state = 'pending' AND next_attempt <= $4
                           AND (lease_until IS NULL OR lease_until < $4)
                           AND target = ANY($5)
                           ORDER BY next_attempt, seq LIMIT $6 FOR UPDATE SKIP LOCKED)
             RETURNING seq, event_id, kind, target, body, attempts, created",
            &[&owner, &token, &until_ms, &now_ms, &targets, &limit],
        )
        .await?;
        tx.commit().await?;
        let mut claimed: Vec<Delivery> = rows
            .iter()
            .map(|r| Delivery {
                seq: r.get(0),
                token,
                event_id: r.get(1),
                kind: r.get(2),
                target: r.get(3),
                body: r.get(4),
                attempts: r.get(5),
                created_ms: r.get(6),
            })
            .collect();
        claimed.sort_by_key(|d| d.seq);
        Ok(claimed)
    }

    pub(super) async fn finish_delivery(
        &self,
        seq: i64,
        token: i64,
        outcome: &DeliveryOutcome,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let (state, next, error, done) = match outcome {
            DeliveryOutcome::Delivered => ("delivered", None, None, Some(now_ms)),
            DeliveryOutcome::Retry { at_ms, error } => {
                ("pending", Some(*at_ms), Some(error.as_str()), None)
            }
            DeliveryOutcome::GivenUp { error } => {
                ("given_up", None, Some(error.as_str()), Some(now_ms))
            }
        };
        let stmt = client
            .prepare_cached(
                "UPDATE outbox SET state = $3, attempts = attempts + 1,
                 next_attempt = coalesce($4, next_attempt), last_error = $5, done = $6,
                 lease_owner = NULL, lease_token = NULL, lease_until = NULL
                 WHERE seq = $1 AND lease_token = $2 AND state = 'pending'",
            )
            .await?;
        let n = client
            .execute(&stmt, &[&seq, &token, &state, &next, &error, &done])
            .await?;
        Ok(n == 1)
    }

    pub(super) async fn release_deliveries(&self, owner: &str) -> Result<u64, StoreError> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "UPDATE outbox SET lease_owner = NULL, lease_token = NULL, lease_until = NULL
                 WHERE lease_owner = $1 AND state = 'pending'",
                &[&owner],
            )
            .await?)
    }

    pub(super) async fn expire_outbox(
        &self,
        before_ms: i64,
        now_ms: i64,
        error: &str,
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "UPDATE outbox SET state = 'given_up', done = $2,
                 last_error = coalesce(last_error || '; ', '') || $3
                 WHERE state = 'pending' AND created < $1
                 AND (lease_until IS NULL OR lease_until < $2)",
                &[&before_ms, &now_ms, &error],
            )
            .await?)
    }

    pub(super) async fn prune_outbox(&self, before_ms: i64) -> Result<u64, StoreError> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "DELETE FROM outbox WHERE state <> 'pending' AND done < $1",
                &[&before_ms],
            )
            .await?)
    }

    pub(super) async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT state, count(*) FROM outbox GROUP BY state", &[])
            .await?;
        let mut counts = OutboxCounts::default();
        for row in &rows {
            let (state, n): (&str, i64) = (row.get(0), row.get(1));
            match state {
                "pending" => counts.pending = n,
                "delivered" => counts.delivered = n,
                _ => counts.given_up = n,
            }
        }
        Ok(counts)
    }

    pub(super) async fn outbox_event(
        &self,
        event_id: &str,
    ) -> Result<Vec<(String, String, i64, String)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT target, state, attempts, body FROM outbox WHERE event_id = $1
                 ORDER BY target COLLATE \"C\"",
                &[&event_id],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }

    pub(super) async fn outbox_events(&self) -> Result<Vec<(String, String)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT event_id, kind FROM outbox GROUP BY event_id, kind ORDER BY min(seq)",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub(super) async fn queue_lengths(&self) -> Result<(i64, i64), StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT count(*) FILTER (WHERE state = 'queued'),
                        count(*) FILTER (WHERE state = 'running') FROM jobs",
                &[],
            )
            .await?;
        Ok((row.get(0), row.get(1)))
    }
}

impl super::query::Rows for PgStore {
    /// A statement with a repository range is not prepared, so that it is
    /// planned for its values ([`super::query::Sql::planned_per_run`]);
    /// the others are prepared once per connection and cached.
    async fn rows(&self, sql: &super::query::Sql) -> Result<Vec<Vec<Value>>, StoreError> {
        let client = self.client().await?;
        let params: Vec<(Box<dyn ToSql + Sync + Send>, Type)> = sql
            .params
            .iter()
            .map(|p| -> (Box<dyn ToSql + Sync + Send>, Type) {
                match p {
                    Value::Null => (Box::new(None::<String>), Type::TEXT),
                    Value::Int(n) => (Box::new(*n), Type::INT8),
                    Value::Text(t) => (Box::new(t.clone()), Type::TEXT),
                }
            })
            .collect();
        let rows = if sql.planned_per_run {
            let typed: Vec<(&(dyn ToSql + Sync), Type)> = params
                .iter()
                .map(|(p, t)| (p.as_ref() as &(dyn ToSql + Sync), t.clone()))
                .collect();
            client.query_typed(&sql.text, &typed).await?
        } else {
            let stmt = client.prepare_cached(&sql.text).await?;
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|(p, _)| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            client.query(&stmt, &refs).await?
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut values = Vec::with_capacity(row.len());
            for (c, column) in row.columns().iter().enumerate() {
                let t = column.type_();
                let value = if *t == Type::INT2 {
                    row.try_get::<_, Option<i16>>(c)?
                        .map(|n| Value::Int(n.into()))
                } else if *t == Type::INT4 {
                    row.try_get::<_, Option<i32>>(c)?
                        .map(|n| Value::Int(n.into()))
                } else if *t == Type::INT8 {
                    row.try_get::<_, Option<i64>>(c)?.map(Value::Int)
                } else {
                    row.try_get::<_, Option<String>>(c)?.map(Value::Text)
                };
                values.push(value.unwrap_or(Value::Null));
            }
            out.push(values);
        }
        Ok(out)
    }
}

/// Applies the migrations this database lacks, under a session advisory
/// lock held on this connection until they are done.
async fn migrate(client: &mut Object, shown: &str) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let result = apply_migrations(client, shown).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    result?;
    unlocked?;
    Ok(())
}

async fn apply_migrations(client: &mut Object, shown: &str) -> Result<(), StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS trawl_watch_migrations (
                 version bigint PRIMARY KEY,
                 applied timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await?;
    let current: i64 = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM trawl_watch_migrations",
            &[],
        )
        .await?
        .get(0);
    let migrations = migrations();
    let known = migrations.last().map_or(0, |(v, _)| *v);
    if current > known {
        return Err(StoreError::Schema {
            location: shown.to_string(),
            found: current,
            known,
        });
    }
    for (version, sql) in migrations.iter().filter(|(v, _)| *v > current) {
        let tx = client.transaction().await?;
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO trawl_watch_migrations (version) VALUES ($1)",
            &[version],
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

async fn execute(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, StoreError> {
    let stmt = tx.prepare_cached(sql).await?;
    Ok(tx.execute(&stmt, params).await?)
}

async fn query(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, StoreError> {
    let stmt = tx.prepare_cached(sql).await?;
    Ok(tx.query(&stmt, params).await?)
}

async fn query_one(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<tokio_postgres::Row, StoreError> {
    let stmt = tx.prepare_cached(sql).await?;
    Ok(tx.query_one(&stmt, params).await?)
}

async fn query_opt(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<tokio_postgres::Row>, StoreError> {
    let stmt = tx.prepare_cached(sql).await?;
    Ok(tx.query_opt(&stmt, params).await?)
}

/// A lease token from a sequence: never handed out twice.
async fn new_token(tx: &Transaction<'_>) -> Result<i64, StoreError> {
    Ok(query_one(tx, "SELECT nextval('lease_tokens')", &[])
        .await?
        .get(0))
}

/// Deletes the package rows (and claims, and the id) of the targets no
/// normalized image is on, but `keep` (the target being planned, or whose
/// rescan just ended). Run
/// under the planning lock held exclusively: every writer of package rows
/// or of normalized images holds it shared while it claims, or reads the
/// stored rows' hashes back, so no write is between the two. A write that
/// claimed before and reads back after finds nothing stored for a
/// collected target, and stores its image in own mode. Returns the rows
/// deleted.
async fn collect_package_rows(tx: &Transaction<'_>, keep: &MatchTarget) -> Result<u64, StoreError> {
    let gone: Vec<i64> = query(
        tx,
        "SELECT t.id FROM match_targets t
         WHERE NOT (t.advisory_db = $1 AND t.policy = $2)
         AND NOT EXISTS (SELECT 1 FROM images i WHERE NOT i.own AND i.target = t.id)",
        &[&keep.advisory_db, &keep.policy],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    if gone.is_empty() {
        return Ok(0);
    }
    let rows = execute(
        tx,
        "DELETE FROM package_findings WHERE target = ANY($1)",
        &[&gone],
    )
    .await?;
    execute(
        tx,
        "DELETE FROM package_targets WHERE target = ANY($1)",
        &[&gone],
    )
    .await?;
    execute(tx, "DELETE FROM match_targets WHERE id = ANY($1)", &[&gone]).await?;
    debug!(
        targets = gone.len(),
        rows, "package rows of unused targets deleted"
    );
    Ok(rows)
}

/// Refreshes the planner's statistics of the normalized layout as images
/// are linked: of the link and package tables when the links have more
/// than doubled since they were last taken, of the images (their mode and
/// target) when more than a quarter of them changed since. The `findings`
/// view joins them: planned with the statistics of nearly empty tables, or
/// of images all in own mode (a new store, or the first rescan after the
/// migration normalizing every image), a query of the view chooses nested
/// loops over what are by then hundreds of thousands of links, and takes
/// minutes instead of milliseconds until autovacuum's next analysis.
/// Checked after each rescan batch that links images anew, so the tables
/// are analyzed a logarithmic number of times as they fill.
async fn analyze_when_grown(client: &Object) -> Result<(), StoreError> {
    let row = client
        .query_one(
            "SELECT (SELECT c.reltuples < s.n_live_tup / 2 FROM pg_class c
                     JOIN pg_stat_user_tables s ON s.relid = c.oid
                     WHERE c.oid = 'image_packages'::regclass),
                    (SELECT s.n_mod_since_analyze > greatest(c.reltuples, 0) / 4 FROM pg_class c
                     JOIN pg_stat_user_tables s ON s.relid = c.oid
                     WHERE c.oid = 'images'::regclass)",
            &[],
        )
        .await?;
    let (links, images): (Option<bool>, Option<bool>) = (row.get(0), row.get(1));
    if links == Some(true) {
        client
            .batch_execute(
                "ANALYZE image_packages, package_targets, package_findings, match_targets",
            )
            .await?;
        debug!("statistics of the normalized tables refreshed");
    }
    if images == Some(true) {
        client.batch_execute("ANALYZE images").await?;
        debug!("statistics of the images' layout refreshed");
    }
    Ok(())
}

/// The id of the rescan of `target`, if it is the newest planned.
async fn newest_rescan_of(
    tx: &Transaction<'_>,
    target: &MatchTarget,
) -> Result<Option<i64>, StoreError> {
    Ok(query_opt(
        tx,
        "SELECT id FROM rescans WHERE advisory_db = $1 AND policy = $2
         AND seq = (SELECT max(seq) FROM rescans)",
        &[&target.advisory_db, &target.policy],
    )
    .await?
    .map(|r| r.get(0)))
}

/// The id of `target` and the stored row hashes ([`PackageRows::sha256`])
/// of the package keys `keys` under it, by key (none for a key not
/// written; no id for a target not written, or collected meanwhile).
async fn stored_hashes(
    tx: &Transaction<'_>,
    target: &MatchTarget,
    keys: &[i64],
) -> Result<(Option<i64>, HashMap<i64, Vec<u8>>), StoreError> {
    let id: Option<i64> = query_opt(
        tx,
        "SELECT id FROM match_targets WHERE advisory_db = $1 AND policy = $2",
        &[&target.advisory_db, &target.policy],
    )
    .await?
    .map(|r| r.get(0));
    let Some(id) = id.filter(|_| !keys.is_empty()) else {
        return Ok((id, HashMap::new()));
    };
    let rows = query(
        tx,
        "SELECT pkey, rows_sha256 FROM package_targets WHERE target = $1 AND pkey = ANY($2)",
        &[&id, &keys],
    )
    .await?;
    let mut hashes = HashMap::with_capacity(rows.len());
    for row in &rows {
        hashes.insert(row.try_get(0)?, row.try_get(1)?);
    }
    Ok((Some(id), hashes))
}

/// Whether every package of `layout` has the rows stored that the image
/// has: then the `findings` view gives exactly the image's rows.
fn matches_stored(layout: &Layout, stored: &HashMap<i64, Vec<u8>>) -> bool {
    layout.packages.iter().all(|p| {
        stored
            .get(&p.pkey)
            .is_some_and(|h| h.as_slice() == p.sha256)
    })
}

/// The columns `COPY` writes into `image_packages`, and their types.
const COPY_LINKS: &str = "COPY image_packages (digest, n, pkey, layer, location) FROM STDIN BINARY";
const LINK_TYPES: [Type; 5] = [Type::TEXT, Type::INT4, Type::INT8, Type::TEXT, Type::TEXT];

/// Writes the links of images (their packages) with one binary `COPY`.
async fn copy_links(
    tx: &Transaction<'_>,
    images: &[(&str, &Layout<'_>)],
) -> Result<(), StoreError> {
    if images.iter().all(|(_, l)| l.links.is_empty()) {
        return Ok(());
    }
    let sink = tx.copy_in(COPY_LINKS).await?;
    let writer = BinaryCopyInWriter::new(sink, &LINK_TYPES);
    let mut writer = std::pin::pin!(writer);
    for (digest, layout) in images {
        for (n, link) in layout.links.iter().enumerate() {
            let n = i32::try_from(n).unwrap_or(i32::MAX);
            let location: &str = &link.location;
            let row: [&(dyn ToSql + Sync); 5] = [digest, &n, &link.pkey, &link.layer, &location];
            writer.as_mut().write(&row).await?;
        }
    }
    writer.finish().await?;
    Ok(())
}

/// The columns `COPY` writes into `package_findings`, and their types.
const COPY_PACKAGE_FINDINGS: &str = "COPY package_findings (target, pkey, id, aliases, keys,
    package, version, source_name, source_version, ecosystem, severity, fix_state,
    fixed_version, located, suppressed) FROM STDIN BINARY";
const PACKAGE_FINDING_TYPES: [Type; 15] = [
    Type::INT8,
    Type::INT8,
    Type::TEXT,
    Type::TEXT_ARRAY,
    Type::TEXT_ARRAY,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT2,
    Type::TEXT,
    Type::TEXT,
    Type::BOOL,
    Type::BOOL,
];

/// Writes the rows of packages (key, rows) under the target `target` with
/// one binary `COPY`.
async fn copy_package_findings(
    tx: &Transaction<'_>,
    target: i64,
    rows: &[(i64, &FindingRow)],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let sink = tx.copy_in(COPY_PACKAGE_FINDINGS).await?;
    let writer = BinaryCopyInWriter::new(sink, &PACKAGE_FINDING_TYPES);
    let mut writer = std::pin::pin!(writer);
    for (pkey, f) in rows {
        let severity = severity_rank(f.severity);
        let keys = f.keys();
        let fix_state = f.fix_state.as_str();
        let located = f.path.is_some();
        let row: [&(dyn ToSql + Sync); 15] = [
            &target,
            pkey,
            &f.id,
            &f.aliases,
            &keys,
            &f.package,
            &f.version,
            &f.source_name,
            &f.source_version,
            &f.ecosystem,
            &severity,
            &fix_state,
            &f.fixed_version,
            &located,
            &f.suppressed,
        ];
        writer.as_mut().write(&row).await?;
    }
    writer.finish().await?;
    Ok(())
}

/// Writes the finding rows of images with one binary `COPY`.
async fn copy_findings(
    tx: &Transaction<'_>,
    images: &[(&str, &[FindingRow])],
) -> Result<(), StoreError> {
    let mut rows: Vec<(&str, String, &FindingRow)> = Vec::new();
    for (digest, findings) in images {
        for (f, fkey) in findings.iter().zip(finding_keys(findings)) {
            rows.push((digest, fkey, f));
        }
    }
    copy_rows(tx, COPY_FINDINGS, &rows).await
}

/// Writes finding rows (digest, key, row) with the binary `COPY`
/// statement `copy` (into `findings` or `new_findings`).
async fn copy_rows(
    tx: &Transaction<'_>,
    copy: &str,
    rows: &[(&str, String, &FindingRow)],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let sink = tx.copy_in(copy).await?;
    let writer = BinaryCopyInWriter::new(sink, &FINDING_TYPES);
    let mut writer = std::pin::pin!(writer);
    for (digest, fkey, f) in rows {
        let severity = severity_rank(f.severity);
        let keys = f.keys();
        let fix_state = f.fix_state.as_str();
        let h = f.value_hash();
        let row: [&(dyn ToSql + Sync); 17] = [
            digest,
            fkey,
            &f.id,
            &f.aliases,
            &keys,
            &f.package,
            &f.version,
            &f.source_name,
            &f.source_version,
            &f.ecosystem,
            &severity,
            &fix_state,
            &f.fixed_version,
            &f.layer,
            &f.path,
            &f.suppressed,
            &h,
        ];
        writer.as_mut().write(&row).await?;
    }
    writer.finish().await?;
    Ok(())
}

/// Brings the findings of `images` (whose rows are locked by the caller's
/// update of their `images` rows) to their new rows, writing only the
/// difference: the stored keys and value hashes are read, compared here
/// with the new rows', and then the rows whose key is gone are deleted
/// (one statement), those whose hash differs updated (staged with one
/// binary `COPY` into `new_findings`, then one statement), the new keys
/// copied in; identical rows are not touched. An image whose rows would
/// nearly all be written (more than 1.5 times as many writes as it has
/// rows) has its rows deleted and copied in whole instead. Returns
/// (deleted by key, updated, inserted) rows.
async fn apply_findings(
    tx: &Transaction<'_>,
    images: &[(&str, &[FindingRow])],
) -> Result<(usize, usize, usize), StoreError> {
    if images.is_empty() {
        return Ok((0, 0, 0));
    }
    let digests: Vec<&str> = images.iter().map(|(d, _)| *d).collect();
    // A row per image, its rows' columns as arrays: far fewer rows to
    // send and decode than a row per finding. The arrays line up: the
    // executor advances all aggregates of a group with each input row in
    // turn (and a parallel plan combines their partial states row by row),
    // so the i-th elements come from one row. Were they ever not to, the
    // comparison would see keys that are not stored, and the insert of
    // one would fail on the primary key, not write a wrong row.
    let stored = query(
        tx,
        "SELECT digest, array_agg(id), array_agg(fkey), array_agg(h) FROM findings_own
         WHERE digest = ANY($1) GROUP BY digest",
        &[&digests],
    )
    .await?;
    // Borrowed from the rows read: no copy of a key is made to compare.
    // Per image, per id: the stored (key, value hash) pairs (an id has a
    // row per package it is found in, a few).
    type Stored<'r> = std::collections::HashMap<&'r str, Vec<(&'r str, Option<i64>)>>;
    let mut old: std::collections::HashMap<&str, Stored<'_>> =
        std::collections::HashMap::with_capacity(images.len());
    for r in &stored {
        let ids: Vec<&str> = r.try_get(1)?;
        let fkeys: Vec<&str> = r.try_get(2)?;
        let hashes: Vec<Option<i64>> = r.try_get(3)?;
        let rows = old.entry(r.try_get(0)?).or_default();
        for ((id, fkey), h) in ids.into_iter().zip(fkeys).zip(hashes) {
            rows.entry(id).or_default().push((fkey, h));
        }
    }
    let (mut changed, mut added): (Vec<(&str, String, &FindingRow)>, Vec<_>) = (vec![], vec![]);
    let mut gone: [Vec<String>; 3] = Default::default();
    // Images whose rows nearly all change are written whole: deleting by
    // digest and copying is cheaper than deleting, updating and inserting
    // row by row (a full replacement of the database).
    let mut rewritten: Vec<&str> = Vec::new();
    #[derive(Clone, Copy, PartialEq)]
    enum Row {
        Same,
        Changed,
        Added,
    }
    for &(digest, findings) in images {
        let mut rows = old.remove(digest).unwrap_or_default();
        let stored_rows: usize = rows.values().map(Vec::len).sum();
        let keys = finding_keys(findings);
        let mut writes = 0;
        let what: Vec<Row> = findings
            .iter()
            .zip(&keys)
            .map(|(f, fkey)| {
                let hit = rows.get_mut(f.id.as_str()).and_then(|same_id| {
                    let i = same_id.iter().position(|(k, _)| *k == fkey.as_str())?;
                    Some(same_id.swap_remove(i).1)
                });
                let row = match hit {
                    Some(Some(h)) if h == f.value_hash() => Row::Same,
                    Some(_) => Row::Changed,
                    None => Row::Added,
                };
                writes += usize::from(row != Row::Same);
                row
            })
            .collect();
        let left: usize = rows.values().map(Vec::len).sum();
        writes += left;
        if stored_rows > 0 && 2 * writes > 3 * stored_rows {
            rewritten.push(digest);
            for (f, fkey) in findings.iter().zip(keys) {
                added.push((digest, fkey, f));
            }
            continue;
        }
        for ((f, fkey), row) in findings.iter().zip(keys).zip(what) {
            match row {
                Row::Same => {}
                Row::Changed => changed.push((digest, fkey, f)),
                Row::Added => added.push((digest, fkey, f)),
            }
        }
        for (id, same_id) in rows {
            for (fkey, _) in same_id {
                gone[0].push(digest.to_string());
                gone[1].push(id.to_string());
                gone[2].push(fkey.to_string());
            }
        }
    }
    if !rewritten.is_empty() {
        execute(
            tx,
            "DELETE FROM findings_own WHERE digest = ANY($1)",
            &[&rewritten],
        )
        .await?;
    }
    if !gone[0].is_empty() {
        execute(
            tx,
            "DELETE FROM findings_own AS f USING unnest($1::text[], $2::text[], $3::text[])
                 AS u(digest, id, fkey)
             WHERE f.digest = u.digest AND f.id = u.id AND f.fkey = u.fkey",
            &[&gone[0], &gone[1], &gone[2]],
        )
        .await?;
    }
    if !changed.is_empty() {
        tx.batch_execute(NEW_FINDINGS).await?;
        copy_rows(tx, COPY_NEW_FINDINGS, &changed).await?;
        execute(tx, UPDATE_FROM_NEW_FINDINGS, &[]).await?;
    }
    copy_rows(tx, COPY_FINDINGS, &added).await?;
    Ok((gone[0].len(), changed.len(), added.len()))
}

/// See [`super::Store::recover_orphans`].
async fn recover(
    tx: &Transaction<'_>,
    owner: &str,
    owners_gone: bool,
    now_ms: i64,
) -> Result<Recovered, StoreError> {
    let orphaned = "state = 'running' AND lease_owner IS DISTINCT FROM $1
                    AND ($2 OR lease_until IS NULL OR lease_until < $3)";
    // Two processes recovering at once: the second waits for the first's
    // row locks, then finds the rows queued and leaves them alone.
    let charged = execute(
        tx,
        &format!("UPDATE jobs SET attempts = attempts + 1 WHERE alone AND {orphaned}"),
        &[&owner, &owners_gone, &now_ms],
    )
    .await?;
    let jobs = execute(
        tx,
        &format!(
            "UPDATE jobs SET state = 'queued', after_crash = true, alone = false,
             lease_owner = NULL, lease_token = NULL, lease_until = NULL WHERE {orphaned}"
        ),
        &[&owner, &owners_gone, &now_ms],
    )
    .await?;
    Ok(Recovered {
        jobs: usize::try_from(jobs).unwrap_or(usize::MAX),
        charged: usize::try_from(charged).unwrap_or(usize::MAX),
    })
}

/// Jobs waiting for a worker.
async fn queued_jobs(tx: &Transaction<'_>) -> Result<usize, StoreError> {
    let n: i64 = query_one(tx, "SELECT count(*) FROM jobs WHERE state = 'queued'", &[])
        .await?
        .get(0);
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Whether recording `ev` would queue a scan.
async fn needs_scan(tx: &Transaction<'_>, ev: &ImageEvent) -> Result<bool, StoreError> {
    let row = query_opt(
        tx,
        "SELECT i.report IS NOT NULL, j.digest IS NOT NULL
         FROM images i LEFT JOIN jobs j ON j.digest = i.digest WHERE i.digest = $1",
        &[&ev.digest],
    )
    .await?;
    Ok(
        match row.map(|r| (r.get::<_, bool>(0), r.get::<_, bool>(1))) {
            None => true,
            Some((_, true)) => false,
            Some((has_report, false)) => ev.kind == Kind::Push && !has_report,
        },
    )
}

/// Records one push or pull, queueing a scan when it needs one; true when
/// it did.
async fn record_image(tx: &Transaction<'_>, ev: &ImageEvent, now: i64) -> Result<bool, StoreError> {
    let needs_scan = needs_scan(tx, ev).await?;
    execute(
        tx,
        "INSERT INTO images (digest, registry, repository, media_type, first_seen)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (digest) DO NOTHING",
        &[
            &ev.digest,
            &ev.registry,
            &ev.repository,
            &ev.media_type,
            &now,
        ],
    )
    .await?;
    match ev.kind {
        // Pull from where it was pushed last: it is certainly there.
        Kind::Push => {
            execute(
                tx,
                "UPDATE images SET registry = $2, repository = $3, media_type = $4,
                 last_pushed = greatest(coalesce(last_pushed, $5), $5) WHERE digest = $1",
                &[
                    &ev.digest,
                    &ev.registry,
                    &ev.repository,
                    &ev.media_type,
                    &ev.at,
                ],
            )
            .await?
        }
        Kind::Pull => {
            execute(
                tx,
                "UPDATE images SET last_pulled = greatest(coalesce(last_pulled, $2), $2)
                 WHERE digest = $1",
                &[&ev.digest, &ev.at],
            )
            .await?
        }
    };
    match &ev.tag {
        Some(tag) => set_tag(tx, &ev.repository, tag, &ev.digest).await?,
        None => list_untagged(tx, &ev.repository, &ev.digest).await?,
    }
    if needs_scan {
        execute(
            tx,
            "INSERT INTO jobs (digest, registry, repository, state, enqueued)
             VALUES ($1, $2, $3, 'queued', $4)",
            &[&ev.digest, &ev.registry, &ev.repository, &now],
        )
        .await?;
    }
    Ok(needs_scan)
}

/// Records a deletion; true when it made the store forget an image.
async fn delete(tx: &Transaction<'_>, deletion: &Deletion) -> Result<bool, StoreError> {
    let repository = deletion.repository.as_str();
    match &deletion.deleted {
        Deleted::Manifest(digest) => {
            let removed = execute(
                tx,
                "DELETE FROM tags WHERE repository = $1 AND digest = $2",
                &[&repository, digest],
            )
            .await?;
            if removed == 0 {
                // Not an image of this repository (a blob, or unknown).
                return Ok(false);
            }
            let elsewhere: Option<String> = query_opt(
                tx,
                "SELECT repository FROM tags WHERE digest = $1 ORDER BY repository LIMIT 1",
                &[digest],
            )
            .await?
            .map(|r| r.get(0));
            match elsewhere {
                Some(other) => {
                    execute(
                        tx,
                        "UPDATE images SET repository = $2 WHERE digest = $1 AND repository = $3",
                        &[digest, &other, &repository],
                    )
                    .await?;
                    Ok(false)
                }
                None => {
                    // A scan running now finds no job to store into.
                    execute(tx, "DELETE FROM jobs WHERE digest = $1", &[digest]).await?;
                    execute(tx, "DELETE FROM images WHERE digest = $1", &[digest]).await?;
                    Ok(true)
                }
            }
        }
        Deleted::Tag(tag) => {
            let named: Vec<String> = query(
                tx,
                "DELETE FROM tags WHERE repository = $1 AND tag = $2 RETURNING digest",
                &[&repository, tag],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
            for digest in named {
                // The manifest stays in the repository, untagged.
                list_untagged(tx, repository, &digest).await?;
            }
            Ok(false)
        }
    }
}

/// Points `repository:tag` at `digest`. An image the tag moved away from
/// stays listed in the repository, untagged, unless another tag names it.
async fn set_tag(
    tx: &Transaction<'_>,
    repository: &str,
    tag: &str,
    digest: &str,
) -> Result<(), StoreError> {
    let previous: Vec<String> = query(
        tx,
        "DELETE FROM tags WHERE repository = $1 AND tag = $2 AND digest <> $3 RETURNING digest",
        &[&repository, &tag, &digest],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    for old in previous {
        list_untagged(tx, repository, &old).await?;
    }
    execute(
        tx,
        "DELETE FROM tags WHERE repository = $1 AND tag = '' AND digest = $2",
        &[&repository, &digest],
    )
    .await?;
    execute(
        tx,
        "INSERT INTO tags (repository, tag, digest) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        &[&repository, &tag, &digest],
    )
    .await?;
    Ok(())
}

/// Lists `digest` in `repository` without a tag, unless a tag already names it there.
async fn list_untagged(
    tx: &Transaction<'_>,
    repository: &str,
    digest: &str,
) -> Result<(), StoreError> {
    execute(
        tx,
        "INSERT INTO tags (repository, tag, digest) SELECT $1::text, '', $2::text
         WHERE NOT EXISTS (SELECT 1 FROM tags WHERE repository = $1 AND digest = $2)",
        &[&repository, &digest],
    )
    .await?;
    Ok(())
}

async fn record_failure(
    tx: &Transaction<'_>,
    digest: &str,
    error: &str,
    now: i64,
    notify: &[String],
) -> Result<(), StoreError> {
    if !notify.is_empty()
        && let Some((image, _)) = event_images(tx, &[digest]).await?.into_iter().next()
    {
        write_events(tx, &[outbox::scan_failed(&image, error, now)], notify).await?;
    }
    execute(
        tx,
        "UPDATE images SET error = $2, failures = failures + 1, last_failed = $3
         WHERE digest = $1",
        &[&digest, &error, &now],
    )
    .await?;
    execute(tx, "DELETE FROM jobs WHERE digest = $1", &[&digest]).await?;
    Ok(())
}

/// The images of `digests` as events name them, with their verdicts as
/// stored now, in digest order; their rows are locked until the commit.
async fn event_images(
    tx: &Transaction<'_>,
    digests: &[&str],
) -> Result<Vec<(EventImage, Option<String>)>, StoreError> {
    let rows = query(
        tx,
        "SELECT digest, registry, repository, verdict FROM images WHERE digest = ANY($1)
         ORDER BY digest FOR UPDATE",
        &[&digests],
    )
    .await?;
    let mut images: Vec<(EventImage, Option<String>)> = rows
        .iter()
        .map(|r| {
            (
                EventImage {
                    digest: r.get(0),
                    registry: r.get(1),
                    repository: r.get(2),
                    tags: Vec::new(),
                },
                r.get(3),
            )
        })
        .collect();
    let tags = query(
        tx,
        "SELECT digest, repository, tag FROM tags WHERE digest = ANY($1)
         ORDER BY digest, repository COLLATE \"C\", tag COLLATE \"C\"",
        &[&digests],
    )
    .await?;
    for row in &tags {
        let digest: &str = row.get(0);
        if let Some((image, _)) = images.iter_mut().find(|(i, _)| i.digest == digest) {
            image.tags.push((row.get(1), row.get(2)));
        }
    }
    Ok(images)
}

/// Writes each event once for each target (an event already written for
/// a target is not written again), due now by the server's clock.
async fn write_events(
    tx: &Transaction<'_>,
    events: &[NewEvent],
    targets: &[String],
) -> Result<(), StoreError> {
    if events.is_empty() || targets.is_empty() {
        return Ok(());
    }
    let mut columns: [Vec<&str>; 4] = Default::default();
    for event in events {
        for target in targets {
            let values = [event.id.as_str(), target, event.kind, event.body.as_str()];
            for (column, value) in columns.iter_mut().zip(values) {
                column.push(value);
            }
        }
    }
    let [ids, targets, kinds, bodies] = &columns;
    execute(
        tx,
        &format!(
            "INSERT INTO outbox (event_id, target, kind, body, next_attempt, created)
             SELECT u.id, u.target, u.kind, u.body, {SERVER_MS}, {SERVER_MS}
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
                 AS u(id, target, kind, body)
             ON CONFLICT (event_id, target) DO NOTHING"
        ),
        &[ids, targets, kinds, bodies],
    )
    .await?;
    Ok(())
}

/// The test cluster of the crate's tests (a real server per test process);
/// included here so that a test reads a setting on the store's own pooled
/// connection, which no public call shows.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../tests/support/postgres.rs"]
mod cluster;

#[cfg(test)]
mod tests {
    use super::super::{Backend, Store, StoreLocation};
    use super::cluster;

    /// The values of `settings` on a connection of the pool of a store
    /// opened on `url` (the one the migration ran on).
    async fn settings(url: &str, settings: &[&str]) -> Vec<String> {
        let location: StoreLocation = url.parse().expect("a PostgreSQL URL");
        let store = Store::open(&location).await.expect("the store opens");
        let Backend::Postgres(pg) = &store.backend else {
            panic!("{url} opened as SQLite");
        };
        let client = pg.client().await.expect("a pooled connection");
        let mut values = Vec::new();
        for setting in settings {
            let row = client
                .query_one("SELECT current_setting($1)", &[setting])
                .await
                .expect("a setting");
            values.push(row.get(0));
        }
        values
    }

    /// The store's statements run without parallel workers
    /// ([`super::NO_PARALLEL_WORKERS`]), unless the URL's `options` (given
    /// after, so they win) set them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_parallel_workers_unless_the_url_sets_them() {
        const WORKERS: &str = "max_parallel_workers_per_gather";
        let cluster = cluster::Postgres::get();
        let url = cluster.database("workers");
        let db = url.rsplit('/').next().expect("a database name");
        // The server's default, seen by a connection of its own: what the
        // store's setting is compared with.
        assert_eq!(cluster.psql(db, &format!("SHOW {WORKERS}")), "2");
        assert_eq!(settings(&url, &[WORKERS]).await, ["0"]);
        // tokio-postgres percent-decodes the URL's parameters: the options
        // are `-c max_parallel_workers_per_gather=3`.
        let given = format!("{url}?options=-c%20{WORKERS}%3D3");
        assert_eq!(settings(&given, &[WORKERS]).await, ["3"]);
        // Other options of the URL are kept beside the store's.
        let other = format!("{url}?options=-c%20work_mem%3D7MB");
        assert_eq!(settings(&other, &[WORKERS, "work_mem"]).await, ["0", "7MB"]);
    }
}
