//! The SQLite store: one file (by default `DATA/watch.sqlite`), locked to
//! one process for its life (SQLite's exclusive locking mode), so a second
//! `watch` on the same file fails at start instead of taking the first
//! one's jobs. Calls are short transactions on one connection behind a
//! mutex, run on the blocking pool by [`Store`](super::Store).
//!
//! The schema version is SQLite's `user_version`. Versions 1 (before
//! policies were recorded), 2 (before job leases) and 3 (before findings
//! rows and shared rescans) are upgraded in place at open; version 4 rows
//! of `findings` are filled from the stored reports then. Version 5 added
//! the indexes of the registry-wide queries, version 6 the notification
//! outbox, version 7 stable finding keys and the report cache (its rows of
//! `findings` are filled again from the stored reports), version 8 the
//! summary's counters and their triggers ([`super::counters`]), version 9
//! the counters' totals per repository prefix (scoped summaries).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, ToSql, Transaction, TransactionBehavior, params};
use tracing::warn;
use trawl::Report;

use super::Applied;
use super::outbox::{self, Delivery, DeliveryOutcome, EventImage, NewEvent, OutboxCounts};
use super::query::Value;
use super::{
    FindingRow, ImageRecord, ImageState, Job, JobStatus, MAX_ATTEMPTS, MatchResult, MatchTarget,
    Recovered, Rematched, RescanBatch, RescanPlan, StoreError, StoredInventory, StoredReport,
    create_parent, finding_keys, fix_state_of, severity_of_rank, severity_rank, stored_report,
};
use crate::events::{Deleted, Deletion, ImageEvent, Kind, Recorded};

/// The schema this file writes.
const SCHEMA_VERSION: i64 = 9;

/// What version 7 changed: findings keyed by what does not move when
/// another finding comes or goes, (digest, id, key)
/// ([`super::finding_keys`]), not by their place in the report, so that a
/// rescan writes only the rows that changed; `finding_ids` point at their
/// finding's row number. The stored report becomes a cache stamped with
/// what it was matched against (`report_db`, `report_policy`). The rows
/// are filled again from the stored reports (current until this version).
const STABLE_FINDING_KEYS: &str = "
DROP TABLE finding_ids;
DROP TABLE findings;
ALTER TABLE images ADD COLUMN report_db TEXT;
ALTER TABLE images ADD COLUMN report_policy TEXT;
UPDATE images SET report_db = advisory_db, report_policy = policy WHERE report IS NOT NULL;
CREATE TABLE findings (
    n INTEGER PRIMARY KEY,
    digest TEXT NOT NULL REFERENCES images(digest) ON DELETE CASCADE,
    id TEXT NOT NULL,
    fkey TEXT NOT NULL,
    aliases TEXT NOT NULL,
    package TEXT NOT NULL,
    version TEXT NOT NULL,
    source_name TEXT NOT NULL,
    source_version TEXT NOT NULL,
    ecosystem TEXT NOT NULL,
    severity INTEGER NOT NULL,
    fix_state TEXT NOT NULL,
    fixed_version TEXT,
    layer TEXT,
    path TEXT,
    suppressed INTEGER NOT NULL,
    UNIQUE (digest, id, fkey)
);
CREATE INDEX findings_by_package ON findings(package);
CREATE INDEX findings_by_source ON findings(source_name);
CREATE INDEX findings_by_severity ON findings(severity, fix_state);
CREATE INDEX findings_sorted ON findings(severity DESC, id, digest, fkey) WHERE suppressed = 0;
CREATE INDEX findings_by_layer ON findings(layer);
CREATE TABLE finding_ids (
    key TEXT NOT NULL,
    finding INTEGER NOT NULL REFERENCES findings(n) ON DELETE CASCADE,
    PRIMARY KEY (key, finding)
) WITHOUT ROWID;
CREATE INDEX finding_ids_by_finding ON finding_ids(finding);
";

/// What version 6 added: the notification outbox ([`super::outbox`]).
const OUTBOX: &str = "
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    target TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'given_up')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    last_error TEXT,
    lease_owner TEXT,
    lease_token INTEGER,
    lease_until INTEGER,
    created INTEGER NOT NULL,
    done INTEGER,
    UNIQUE (event_id, target)
);
CREATE INDEX outbox_due ON outbox(next_attempt) WHERE state = 'pending';
CREATE INDEX outbox_done ON outbox(done) WHERE state != 'pending';
";

/// What version 5 added: the index of the registry-wide findings order
/// (`GET /v1/findings` pages through it), and findings by layer.
const QUERY_INDEXES: &str = "
CREATE INDEX findings_sorted ON findings(severity DESC, id, digest, ord) WHERE suppressed = 0;
CREATE INDEX findings_by_layer ON findings(layer);
";

/// What version 3 added: the lease columns of `jobs`.
const LEASE_COLUMNS: &str = "
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_token INTEGER;
ALTER TABLE jobs ADD COLUMN lease_until INTEGER;
ALTER TABLE jobs ADD COLUMN alone INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN after_crash INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_by_owner ON jobs(lease_owner) WHERE state = 'running';
CREATE TABLE lease_tokens (token INTEGER PRIMARY KEY AUTOINCREMENT);
";

/// What version 4 added: findings rows, the report's hash, shared rescans.
const FINDINGS_AND_RESCANS: &str = "
ALTER TABLE images ADD COLUMN report_sha256 TEXT;
CREATE INDEX images_by_push ON images(last_pushed);
CREATE INDEX images_by_pull ON images(last_pulled);
CREATE TABLE findings (
    digest TEXT NOT NULL REFERENCES images(digest) ON DELETE CASCADE,
    ord INTEGER NOT NULL,
    id TEXT NOT NULL,
    aliases TEXT NOT NULL,
    package TEXT NOT NULL,
    version TEXT NOT NULL,
    source_name TEXT NOT NULL,
    source_version TEXT NOT NULL,
    ecosystem TEXT NOT NULL,
    severity INTEGER NOT NULL,
    fix_state TEXT NOT NULL,
    fixed_version TEXT,
    layer TEXT,
    suppressed INTEGER NOT NULL,
    PRIMARY KEY (digest, ord)
) WITHOUT ROWID;
CREATE INDEX findings_by_package ON findings(package);
CREATE INDEX findings_by_source ON findings(source_name);
CREATE INDEX findings_by_severity ON findings(severity, fix_state);
CREATE TABLE finding_ids (
    key TEXT NOT NULL,
    digest TEXT NOT NULL,
    ord INTEGER NOT NULL,
    PRIMARY KEY (key, digest, ord),
    FOREIGN KEY (digest, ord) REFERENCES findings(digest, ord) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX finding_ids_by_finding ON finding_ids(digest, ord);
CREATE TABLE rescans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    seq INTEGER NOT NULL,
    advisory_db TEXT NOT NULL,
    policy TEXT NOT NULL,
    planned INTEGER NOT NULL,
    UNIQUE (advisory_db, policy)
);
CREATE TABLE rescan_batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rescan INTEGER NOT NULL REFERENCES rescans(id) ON DELETE CASCADE,
    digests TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running')),
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_token INTEGER,
    lease_until INTEGER
);
CREATE INDEX rescan_batches_by_rescan ON rescan_batches(rescan, state);
";

/// Version 3 as created new (versions 1 and 2 are derived from it by the tests).
const SCHEMA_V3: &str = "
CREATE TABLE images (
    digest TEXT PRIMARY KEY,
    registry TEXT NOT NULL,
    repository TEXT NOT NULL,
    media_type TEXT NOT NULL,
    verdict TEXT,
    verdict_reason TEXT,
    summary TEXT,
    inventory TEXT,
    report TEXT,
    advisory_db TEXT,
    policy TEXT,
    error TEXT,
    scans INTEGER NOT NULL DEFAULT 0,
    rescans INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    first_seen INTEGER NOT NULL,
    last_scanned INTEGER,
    last_failed INTEGER,
    last_matched INTEGER,
    last_pushed INTEGER,
    last_pulled INTEGER
);
CREATE TABLE tags (
    repository TEXT NOT NULL,
    tag TEXT NOT NULL,
    digest TEXT NOT NULL REFERENCES images(digest),
    PRIMARY KEY (repository, tag, digest)
) WITHOUT ROWID;
CREATE INDEX tags_by_digest ON tags(digest);
CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    digest TEXT NOT NULL UNIQUE REFERENCES images(digest),
    registry TEXT NOT NULL,
    repository TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running')),
    attempts INTEGER NOT NULL DEFAULT 0,
    enqueued INTEGER NOT NULL,
    lease_owner TEXT,
    lease_token INTEGER,
    lease_until INTEGER,
    alone INTEGER NOT NULL DEFAULT 0,
    after_crash INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_by_owner ON jobs(lease_owner) WHERE state = 'running';
CREATE TABLE lease_tokens (token INTEGER PRIMARY KEY AUTOINCREMENT);
";

/// The SQLite results store.
#[derive(Debug)]
pub(super) struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed) the file at `path`.
    pub(super) fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        create_parent(path)?;
        let mut conn = Connection::open(path)?;
        // Exclusive: the first write below takes the file's lock and it is
        // held until the connection closes, so a second process fails here
        // instead of taking the first one's jobs (and WAL needs no shared
        // memory file). WAL: a commit appends; FULL: a committed queue change
        // survives a power loss, not only a crash.
        conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE;")?;
        conn.busy_timeout(std::time::Duration::from_millis(500))?;
        let locked = conn.execute_batch("PRAGMA journal_mode = WAL; BEGIN EXCLUSIVE; COMMIT;");
        match locked {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                return Err(StoreError::Locked {
                    path: path.to_owned(),
                });
            }
            other => other?,
        }
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if !(0..=SCHEMA_VERSION).contains(&version) {
            return Err(StoreError::Schema {
                location: path.display().to_string(),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        if version < SCHEMA_VERSION {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
            migrate(&tx, version)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            tx.commit()?;
        }
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            path: path.to_owned(),
        })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction open
        // (rusqlite rolls back on drop), so the connection is still usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn recover_orphans(
        &self,
        owner: &str,
        owners_gone: bool,
        now_ms: i64,
    ) -> Result<Recovered, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let recovered = recover(&tx, owner, owners_gone, now_ms)?;
        tx.commit()?;
        Ok(recovered)
    }

    pub(super) fn apply(
        &self,
        events: &[Recorded],
        max_pending: usize,
        now: i64,
    ) -> Result<Applied, StoreError> {
        let max_pending = max_pending.max(1);
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let before = queued_jobs(&tx)?;
        let mut applied = Applied {
            pending: before,
            ..Applied::default()
        };
        for event in events {
            match event {
                Recorded::Image(ev) => {
                    if applied.pending >= max_pending && needs_scan(&tx, ev)? {
                        break;
                    }
                    if record_image(&tx, ev, now)? {
                        applied.pending += 1;
                    }
                }
                Recorded::Delete(deletion) => {
                    applied.forgotten += usize::from(delete(&tx, deletion)?);
                    applied.pending = queued_jobs(&tx)?;
                }
            }
            applied.recorded += 1;
        }
        applied.deferred = events.len() - applied.recorded;
        // New jobs, net of the queued ones deletions removed.
        applied.queued = applied.pending.saturating_sub(before);
        tx.commit()?;
        Ok(applied)
    }

    pub(super) fn claim(
        &self,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        notify: &[String],
    ) -> Result<Option<Job>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        recover(&tx, owner, false, now_ms)?;
        let (running, running_after_crash): (i64, i64) = tx.query_row(
            "SELECT count(*), coalesce(sum(after_crash), 0) FROM jobs
             WHERE state = 'running' AND lease_owner = ?1",
            [owner],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if running_after_crash > 0 {
            return Ok(None);
        }
        let job = loop {
            let row = tx
                .query_row(
                    "SELECT digest, registry, repository, attempts, after_crash FROM jobs
                     WHERE state = 'queued' ORDER BY after_crash DESC, seq LIMIT 1",
                    [],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, bool>(4)?,
                        ))
                    },
                )
                .optional()?;
            let Some((digest, registry, repository, attempts, after_crash)) = row else {
                break None;
            };
            if attempts >= MAX_ATTEMPTS {
                record_failure(&tx, &digest, &given_up(attempts), now_ms / 1000, notify)?;
                continue;
            }
            if after_crash && running > 0 {
                // It waits until this process runs nothing.
                break None;
            }
            let token = new_token(&tx)?;
            let alone = running == 0;
            if !alone {
                // The jobs already running are no longer alone either.
                tx.execute(
                    "UPDATE jobs SET alone = 0 WHERE state = 'running' AND lease_owner = ?1",
                    [owner],
                )?;
            }
            tx.execute(
                "UPDATE jobs SET state = 'running', lease_owner = ?2, lease_token = ?3,
                 lease_until = ?4, alone = ?5 WHERE digest = ?1",
                params![digest, owner, token, lease_until_ms, alone],
            )?;
            break Some(Job {
                digest,
                registry,
                repository,
                token,
            });
        };
        tx.commit()?;
        Ok(job)
    }

    pub(super) fn heartbeat(
        &self,
        digest: &str,
        token: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(self.conn().execute(
            "UPDATE jobs SET lease_until = ?3
             WHERE digest = ?1 AND lease_token = ?2 AND state = 'running'",
            params![digest, token, until_ms],
        )? == 1)
    }

    pub(super) fn release(&self, digest: &str, token: i64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_token = NULL,
             lease_until = NULL WHERE digest = ?1 AND lease_token = ?2 AND state = 'running'",
            params![digest, token],
        )?;
        Ok(())
    }

    pub(super) fn finish_scan(
        &self,
        digest: &str,
        token: i64,
        inventory: &str,
        result: &MatchResult,
        now: i64,
        notify: &[String],
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !holds_job(&tx, digest, token)? {
            return Ok(false);
        }
        let before = if notify.is_empty() {
            None
        } else {
            event_image(&tx, digest)?
        };
        tx.execute(
            "UPDATE images SET inventory = ?2, verdict = ?3, verdict_reason = ?4, summary = ?5,
             report = ?6, report_sha256 = ?7, advisory_db = ?8, policy = ?9, error = NULL,
             report_db = ?8, report_policy = ?9,
             scans = scans + 1, last_scanned = ?10, last_matched = ?10 WHERE digest = ?1",
            params![
                digest,
                inventory,
                result.verdict,
                result.verdict_reason,
                result.summary,
                result.report,
                result.report_sha256,
                result.target.advisory_db,
                result.target.policy,
                now
            ],
        )?;
        write_findings(&tx, digest, &result.findings)?;
        tx.execute("DELETE FROM jobs WHERE digest = ?1", [digest])?;
        if let Some((image, previous)) = before {
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
            write_events(&tx, &events, notify)?;
        }
        tx.commit()?;
        Ok(true)
    }

    pub(super) fn fail_scan(
        &self,
        digest: &str,
        token: i64,
        error: &str,
        now: i64,
        notify: &[String],
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if holds_job(&tx, digest, token)? {
            record_failure(&tx, digest, error, now, notify)?;
        }
        tx.commit()?;
        Ok(())
    }

    pub(super) fn plan_rescan(
        &self,
        target: &MatchTarget,
        since: i64,
        batch_size: usize,
        replace: bool,
    ) -> Result<RescanPlan, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let newest: i64 = tx.query_row("SELECT coalesce(max(seq), 0) FROM rescans", [], |r| {
            r.get(0)
        })?;
        let known: Option<(i64, i64)> = tx
            .query_row(
                "SELECT id, seq FROM rescans WHERE advisory_db = ?1 AND policy = ?2",
                [&target.advisory_db, &target.policy],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let now = now_secs();
        let id = match known {
            Some((id, seq)) if seq == newest => id,
            Some((id, _)) if replace => {
                tx.execute(
                    "UPDATE rescans SET seq = ?2, planned = ?3 WHERE id = ?1",
                    params![id, newest + 1, now],
                )?;
                id
            }
            Some(_) => return Ok(RescanPlan::Superseded),
            None => {
                tx.execute(
                    "INSERT INTO rescans (seq, advisory_db, policy, planned) VALUES (?1, ?2, ?3, ?4)",
                    params![newest + 1, target.advisory_db, target.policy, now],
                )?;
                tx.last_insert_rowid()
            }
        };
        // Waiting batches of older targets will never be wanted.
        tx.execute(
            "DELETE FROM rescan_batches WHERE rescan != ?1 AND state = 'queued'",
            [id],
        )?;
        let digests: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT digest FROM images WHERE inventory IS NOT NULL
                 AND (last_pushed >= ?2 OR last_pulled >= ?2)
                 AND (advisory_db IS NOT ?3 OR policy IS NOT ?4)
                 AND digest NOT IN (SELECT j.value FROM rescan_batches b, json_each(b.digests) j
                                    WHERE b.rescan = ?1)
                 ORDER BY digest",
            )?;
            let rows = stmt
                .query_map(params![id, since, target.advisory_db, target.policy], |r| {
                    r.get(0)
                })?;
            rows.collect::<Result<_, _>>()?
        };
        let mut batches = 0;
        for chunk in digests.chunks(batch_size) {
            tx.execute(
                "INSERT INTO rescan_batches (rescan, digests, state) VALUES (?1, ?2, 'queued')",
                params![id, serde_json::to_string(chunk)?],
            )?;
            batches += 1;
        }
        tx.commit()?;
        Ok(RescanPlan::Planned {
            images: digests.len(),
            batches,
        })
    }

    pub(super) fn claim_rescan(
        &self,
        owner: &str,
        target: &MatchTarget,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Option<RescanBatch>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(rescan) = newest_rescan_of(&tx, target)? else {
            return Ok(None);
        };
        let batch = loop {
            let row: Option<(i64, String, String, i64)> = tx
                .query_row(
                    "SELECT id, digests, state, attempts FROM rescan_batches
                     WHERE rescan = ?1 AND (state = 'queued' OR lease_until < ?2)
                     ORDER BY id LIMIT 1",
                    params![rescan, now_ms],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let Some((id, digests, state, mut attempts)) = row else {
                break None;
            };
            if state == "running" {
                // Its process died (or stalled) holding it.
                attempts += 1;
                if attempts >= MAX_ATTEMPTS {
                    warn!(
                        batch = id,
                        "a rescan batch was abandoned {attempts} times: dropped"
                    );
                    tx.execute("DELETE FROM rescan_batches WHERE id = ?1", [id])?;
                    continue;
                }
            }
            let token = new_token(&tx)?;
            tx.execute(
                "UPDATE rescan_batches SET state = 'running', attempts = ?2, lease_owner = ?3,
                 lease_token = ?4, lease_until = ?5 WHERE id = ?1",
                params![id, attempts, owner, token, until_ms],
            )?;
            break Some(RescanBatch {
                id,
                token,
                target: target.clone(),
                digests: serde_json::from_str(&digests)?,
            });
        };
        tx.commit()?;
        Ok(batch)
    }

    pub(super) fn renew_rescan(
        &self,
        id: i64,
        token: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(self.conn().execute(
            "UPDATE rescan_batches SET lease_until = ?3
             WHERE id = ?1 AND lease_token = ?2 AND state = 'running'",
            params![id, token, until_ms],
        )? == 1)
    }

    pub(super) fn release_rescan(&self, id: i64, token: i64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE rescan_batches SET state = 'queued', lease_owner = NULL, lease_token = NULL,
             lease_until = NULL WHERE id = ?1 AND lease_token = ?2 AND state = 'running'",
            params![id, token],
        )?;
        Ok(())
    }

    pub(super) fn inventories(
        &self,
        digests: &[String],
    ) -> Result<Vec<StoredInventory>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT digest, inventory, report_sha256 FROM images
             WHERE digest IN (SELECT value FROM json_each(?1)) AND inventory IS NOT NULL
             ORDER BY digest",
        )?;
        let rows = stmt.query_map([serde_json::to_string(digests)?], |r| {
            Ok(StoredInventory {
                digest: r.get(0)?,
                inventory: r.get(1)?,
                report_sha256: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(super) fn finish_rescan(
        &self,
        batch: &RescanBatch,
        results: &[Rematched],
        now: i64,
        notify: &[String],
    ) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let held: Option<i64> = tx
            .query_row(
                "SELECT rescan FROM rescan_batches
                 WHERE id = ?1 AND lease_token = ?2 AND state = 'running'",
                params![batch.id, batch.token],
                |r| r.get(0),
            )
            .optional()?;
        let Some(rescan) = held else {
            return Ok(0);
        };
        if newest_rescan_of(&tx, &batch.target)? != Some(rescan) {
            // Superseded while it ran: nothing of it is wanted.
            tx.execute("DELETE FROM rescan_batches WHERE id = ?1", [batch.id])?;
            tx.commit()?;
            return Ok(0);
        }
        let seq: i64 = tx.query_row("SELECT seq FROM rescans WHERE id = ?1", [rescan], |r| {
            r.get(0)
        })?;
        let mut written = 0;
        let mut events = Vec::new();
        for rematched in results {
            let r = &rematched.result;
            let unchanged = rematched.previous_sha256.as_deref() == Some(r.report_sha256.as_str());
            let n = if unchanged {
                tx.prepare_cached(
                    "UPDATE images SET advisory_db = ?2, policy = ?3, rescans = rescans + 1,
                     last_matched = ?4
                     WHERE digest = ?1 AND report_sha256 = ?5
                     AND (advisory_db IS NOT ?2 OR policy IS NOT ?3)",
                )?
                .execute(params![
                    rematched.digest,
                    r.target.advisory_db,
                    r.target.policy,
                    now,
                    r.report_sha256
                ])?
            } else {
                let before = if notify.is_empty() {
                    None
                } else {
                    event_image(&tx, &rematched.digest)?
                };
                let n = tx
                    .prepare_cached(
                        "UPDATE images SET verdict = ?4, verdict_reason = ?5, summary = ?6,
                         report_sha256 = ?7, advisory_db = ?2, policy = ?3,
                         report = coalesce(report, ?9),
                         report_db = CASE WHEN report IS NULL AND ?9 IS NOT NULL
                                          THEN ?2 ELSE report_db END,
                         report_policy = CASE WHEN report IS NULL AND ?9 IS NOT NULL
                                              THEN ?3 ELSE report_policy END,
                         rescans = rescans + 1, last_matched = ?8
                         WHERE digest = ?1 AND inventory IS NOT NULL
                         AND (advisory_db IS NOT ?2 OR policy IS NOT ?3)",
                    )?
                    .execute(params![
                        rematched.digest,
                        r.target.advisory_db,
                        r.target.policy,
                        r.verdict,
                        r.verdict_reason,
                        r.summary,
                        r.report_sha256,
                        now,
                        r.report
                            .as_deref()
                            .filter(|_| rematched.previous_sha256.is_none())
                    ])?;
                // The report is not written (but to an image stored without
                // one): the one stored stays as a cache of its target
                // (report_db, report_policy), rebuilt when served.
                if n == 1 {
                    apply_findings(&tx, &rematched.digest, &r.findings)?;
                    if let Some((image, previous)) = before
                        && outbox::changed(previous.as_deref(), &r.verdict)
                    {
                        events.push(outbox::verdict_changed(
                            &image,
                            previous.as_deref().unwrap_or_default(),
                            r,
                            Some(seq),
                            now,
                        ));
                    }
                }
                n
            };
            written += n;
        }
        write_events(&tx, &events, notify)?;
        tx.execute("DELETE FROM rescan_batches WHERE id = ?1", [batch.id])?;
        tx.commit()?;
        Ok(written)
    }

    pub(super) fn finding_versions(
        &self,
        digest: &str,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, fkey, n FROM findings WHERE digest = ?1 ORDER BY id, fkey",
        )?;
        let rows = stmt.query_map([digest], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(super) fn findings(&self, digest: &str) -> Result<Vec<FindingRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {FINDING_COLUMNS} FROM findings WHERE digest = ?1
             ORDER BY suppressed, severity DESC, package, id, fkey"
        ))?;
        let rows = stmt.query_map([digest], |r| finding_row(r, 0))?;
        let mut findings = Vec::new();
        for row in rows {
            let (mut finding, aliases) = row?;
            finding.aliases = serde_json::from_str(&aliases)?;
            findings.push(finding);
        }
        Ok(findings)
    }

    pub(super) fn select_images(
        &self,
        digest: Option<&str>,
    ) -> Result<Vec<ImageRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT i.digest, i.registry, i.media_type, j.state, i.report IS NOT NULL,
                    i.verdict, i.verdict_reason, i.summary, i.advisory_db, i.error,
                    i.scans, i.rescans, i.failures, i.last_scanned, i.last_matched,
                    i.last_pushed, i.last_pulled, i.last_failed, i.policy,
                    j.attempts, j.after_crash
             FROM images i LEFT JOIN jobs j ON j.digest = i.digest
             WHERE ?1 IS NULL OR i.digest = ?1 ORDER BY i.digest",
        )?;
        let rows = stmt.query_map([digest], |r| {
            let job: Option<String> = r.get(3)?;
            let has_report: bool = r.get(4)?;
            let state = ImageState::of(job.as_deref(), has_report);
            Ok(ImageRecord {
                digest: r.get(0)?,
                registry: r.get(1)?,
                media_type: r.get(2)?,
                tags: Vec::new(),
                state,
                verdict: r.get(5)?,
                verdict_reason: r.get(6)?,
                summary: r.get(7)?,
                advisory_db: r.get(8)?,
                error: r.get(9)?,
                scans: r.get(10)?,
                rescans: r.get(11)?,
                failures: r.get(12)?,
                last_scanned: r.get(13)?,
                last_matched: r.get(14)?,
                last_pushed: r.get(15)?,
                last_pulled: r.get(16)?,
                last_failed: r.get(17)?,
                policy: r.get(18)?,
                job: match r.get::<_, Option<i64>>(19)? {
                    Some(attempts) => Some(JobStatus {
                        attempts,
                        after_crash: r.get(20)?,
                    }),
                    None => None,
                },
            })
        })?;
        let mut images: Vec<ImageRecord> = rows.collect::<Result<_, _>>()?;
        let mut stmt = conn.prepare(
            "SELECT digest, repository, tag FROM tags WHERE ?1 IS NULL OR digest = ?1
             ORDER BY digest, repository, tag",
        )?;
        let tags = stmt.query_map([digest], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for row in tags {
            let (digest, repository, tag) = row?;
            if let Ok(i) = images.binary_search_by(|img| img.digest.as_str().cmp(&digest)) {
                images[i]
                    .tags
                    .push((repository, (!tag.is_empty()).then_some(tag)));
            }
        }
        Ok(images)
    }

    pub(super) fn report(&self, digest: &str) -> Result<Option<Option<StoredReport>>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT report, report_db, report_policy, advisory_db, policy,
                    CASE WHEN report_db IS NOT advisory_db OR report_policy IS NOT policy
                         THEN inventory END
             FROM images WHERE digest = ?1",
        )?;
        Ok(stmt
            .query_row([digest], |r| {
                Ok(r.get::<_, Option<String>>(0)?.map(|report| {
                    Ok::<_, rusqlite::Error>(stored_report(
                        report,
                        (r.get(1)?, r.get(2)?),
                        (r.get(3)?, r.get(4)?),
                        r.get(5)?,
                    ))
                }))
            })
            .optional()?
            .map(Option::transpose)
            .transpose()?)
    }

    pub(super) fn cache_report(
        &self,
        digest: &str,
        target: &MatchTarget,
        report: &str,
    ) -> Result<bool, StoreError> {
        Ok(self.conn().execute(
            "UPDATE images SET report = ?2, report_db = ?3, report_policy = ?4
             WHERE digest = ?1 AND advisory_db = ?3 AND policy = ?4 AND report IS NOT NULL",
            params![digest, report, target.advisory_db, target.policy],
        )? == 1)
    }

    pub(super) fn claim_deliveries(
        &self,
        owner: &str,
        targets: &[String],
        now_ms: i64,
        until_ms: i64,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let token = new_token(&tx)?;
        let claimed: Vec<Delivery> = {
            let mut stmt = tx.prepare_cached(
                "UPDATE outbox SET lease_owner = ?1, lease_token = ?2, lease_until = ?3
                 WHERE seq IN (SELECT seq FROM outbox WHERE state = 'pending'
                               AND next_attempt <= ?4
                               AND (lease_until IS NULL OR lease_until < ?4)
                               AND target IN (SELECT value FROM json_each(?5))
                               ORDER BY next_attempt, seq LIMIT ?6)
                 RETURNING seq, event_id, kind, target, body, attempts, created",
            )?;
            let rows = stmt.query_map(
                params![
                    owner,
                    token,
                    until_ms,
                    now_ms,
                    serde_json::to_string(targets)?,
                    limit
                ],
                |r| {
                    Ok(Delivery {
                        seq: r.get(0)?,
                        token,
                        event_id: r.get(1)?,
                        kind: r.get(2)?,
                        target: r.get(3)?,
                        body: r.get(4)?,
                        attempts: r.get(5)?,
                        created_ms: r.get(6)?,
                    })
                },
            )?;
            rows.collect::<Result<_, _>>()?
        };
        tx.commit()?;
        let mut claimed = claimed;
        claimed.sort_by_key(|d| d.seq);
        Ok(claimed)
    }

    pub(super) fn finish_delivery(
        &self,
        seq: i64,
        token: i64,
        outcome: &DeliveryOutcome,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let conn = self.conn();
        let (state, next, error, done) = match outcome {
            DeliveryOutcome::Delivered => ("delivered", None, None, Some(now_ms)),
            DeliveryOutcome::Retry { at_ms, error } => {
                ("pending", Some(*at_ms), Some(error.as_str()), None)
            }
            DeliveryOutcome::GivenUp { error } => {
                ("given_up", None, Some(error.as_str()), Some(now_ms))
            }
        };
        let n = conn
            .prepare_cached(
                "UPDATE outbox SET state = ?3, attempts = attempts + 1,
                 next_attempt = coalesce(?4, next_attempt), last_error = ?5, done = ?6,
                 lease_owner = NULL, lease_token = NULL, lease_until = NULL
                 WHERE seq = ?1 AND lease_token = ?2 AND state = 'pending'",
            )?
            .execute(params![seq, token, state, next, error, done])?;
        Ok(n == 1)
    }

    pub(super) fn release_deliveries(&self, owner: &str) -> Result<u64, StoreError> {
        let conn = self.conn();
        let n = conn
            .prepare_cached(
                "UPDATE outbox SET lease_owner = NULL, lease_token = NULL, lease_until = NULL
                 WHERE lease_owner = ?1 AND state = 'pending'",
            )?
            .execute([owner])?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    pub(super) fn expire_outbox(
        &self,
        before_ms: i64,
        now_ms: i64,
        error: &str,
    ) -> Result<u64, StoreError> {
        let conn = self.conn();
        let n = conn
            .prepare_cached(
                "UPDATE outbox SET state = 'given_up', done = ?2,
                 last_error = coalesce(last_error || '; ', '') || ?3
                 WHERE state = 'pending' AND created < ?1
                 AND (lease_until IS NULL OR lease_until < ?2)",
            )?
            .execute(params![before_ms, now_ms, error])?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    pub(super) fn prune_outbox(&self, before_ms: i64) -> Result<u64, StoreError> {
        let conn = self.conn();
        let n = conn
            .prepare_cached("DELETE FROM outbox WHERE state != 'pending' AND done < ?1")?
            .execute([before_ms])?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    pub(super) fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        let conn = self.conn();
        let mut counts = OutboxCounts::default();
        let mut stmt = conn.prepare_cached("SELECT state, count(*) FROM outbox GROUP BY state")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (state, n) = row?;
            match state.as_str() {
                "pending" => counts.pending = n,
                "delivered" => counts.delivered = n,
                _ => counts.given_up = n,
            }
        }
        Ok(counts)
    }

    pub(super) fn outbox_event(
        &self,
        event_id: &str,
    ) -> Result<Vec<(String, String, i64, String)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT target, state, attempts, body FROM outbox WHERE event_id = ?1 ORDER BY target",
        )?;
        let rows = stmt.query_map([event_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(super) fn outbox_events(&self) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT event_id, kind FROM outbox GROUP BY event_id, kind ORDER BY min(seq)",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(super) fn queue_lengths(&self) -> Result<(i64, i64), StoreError> {
        Ok(self.conn().query_row(
            "SELECT count(*) FILTER (WHERE state = 'queued'),
                    count(*) FILTER (WHERE state = 'running') FROM jobs",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }
}

/// Jobs waiting for a worker.
fn queued_jobs(tx: &Transaction<'_>) -> Result<usize, StoreError> {
    let n: i64 = tx.query_row(
        "SELECT COUNT(*) FROM jobs WHERE state = 'queued'",
        [],
        |r| r.get(0),
    )?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Whether recording `ev` would queue a scan.
fn needs_scan(tx: &Transaction<'_>, ev: &ImageEvent) -> Result<bool, StoreError> {
    let known: Option<bool> = tx
        .query_row(
            "SELECT report IS NOT NULL FROM images WHERE digest = ?1",
            [&ev.digest],
            |r| r.get(0),
        )
        .optional()?;
    let has_job = tx
        .query_row("SELECT 1 FROM jobs WHERE digest = ?1", [&ev.digest], |_| {
            Ok(())
        })
        .optional()?
        .is_some();
    Ok(!has_job
        && match (ev.kind, known) {
            (_, None) => true,
            (Kind::Push, Some(has_report)) => !has_report,
            (Kind::Pull, Some(_)) => false,
        })
}

/// Records one push or pull, queueing a scan when it needs one; true when
/// it did.
fn record_image(tx: &Transaction<'_>, ev: &ImageEvent, now: i64) -> Result<bool, StoreError> {
    let needs_scan = needs_scan(tx, ev)?;
    tx.execute(
        "INSERT INTO images (digest, registry, repository, media_type, first_seen)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (digest) DO NOTHING",
        params![ev.digest, ev.registry, ev.repository, ev.media_type, now],
    )?;
    match ev.kind {
        // Pull from where it was pushed last: it is certainly there.
        Kind::Push => tx.execute(
            "UPDATE images SET registry = ?2, repository = ?3, media_type = ?4,
             last_pushed = max(coalesce(last_pushed, ?5), ?5) WHERE digest = ?1",
            params![ev.digest, ev.registry, ev.repository, ev.media_type, ev.at],
        )?,
        Kind::Pull => tx.execute(
            "UPDATE images SET last_pulled = max(coalesce(last_pulled, ?2), ?2)
             WHERE digest = ?1",
            params![ev.digest, ev.at],
        )?,
    };
    match &ev.tag {
        Some(tag) => set_tag(tx, &ev.repository, tag, &ev.digest)?,
        None => list_untagged(tx, &ev.repository, &ev.digest)?,
    }
    if needs_scan {
        tx.execute(
            "INSERT INTO jobs (digest, registry, repository, state, enqueued)
             VALUES (?1, ?2, ?3, 'queued', ?4)",
            params![ev.digest, ev.registry, ev.repository, now],
        )?;
    }
    Ok(needs_scan)
}

/// See [`Store::recover_orphans`](super::Store::recover_orphans).
fn recover(
    tx: &Transaction<'_>,
    owner: &str,
    owners_gone: bool,
    now_ms: i64,
) -> Result<Recovered, StoreError> {
    let orphaned = "state = 'running' AND lease_owner IS NOT ?1
                    AND (?2 OR lease_until IS NULL OR lease_until < ?3)";
    let charged = tx.execute(
        &format!("UPDATE jobs SET attempts = attempts + 1 WHERE alone = 1 AND {orphaned}"),
        params![owner, owners_gone, now_ms],
    )?;
    let jobs = tx.execute(
        &format!(
            "UPDATE jobs SET state = 'queued', after_crash = 1, alone = 0, lease_owner = NULL,
             lease_token = NULL, lease_until = NULL WHERE {orphaned}"
        ),
        params![owner, owners_gone, now_ms],
    )?;
    Ok(Recovered { jobs, charged })
}

/// Records a deletion; true when it made the store forget an image.
fn delete(tx: &Transaction<'_>, deletion: &Deletion) -> Result<bool, StoreError> {
    let repository = deletion.repository.as_str();
    match &deletion.deleted {
        Deleted::Manifest(digest) => {
            let removed = tx.execute(
                "DELETE FROM tags WHERE repository = ?1 AND digest = ?2",
                [repository, digest],
            )?;
            if removed == 0 {
                // Not an image of this repository (a blob, or unknown).
                return Ok(false);
            }
            let elsewhere: Option<String> = tx
                .query_row(
                    "SELECT repository FROM tags WHERE digest = ?1 ORDER BY repository LIMIT 1",
                    [digest],
                    |r| r.get(0),
                )
                .optional()?;
            match elsewhere {
                // Still in another repository: pull it from there from now on.
                Some(other) => {
                    tx.execute(
                        "UPDATE images SET repository = ?2 WHERE digest = ?1 AND repository = ?3",
                        [digest, &other, repository],
                    )?;
                    Ok(false)
                }
                None => {
                    // A scan running now finds no row to store into.
                    tx.execute("DELETE FROM jobs WHERE digest = ?1", [digest])?;
                    tx.execute("DELETE FROM images WHERE digest = ?1", [digest])?;
                    Ok(true)
                }
            }
        }
        Deleted::Tag(tag) => {
            let named: Vec<String> = {
                let mut stmt =
                    tx.prepare("SELECT digest FROM tags WHERE repository = ?1 AND tag = ?2")?;
                let rows = stmt.query_map([repository, tag], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()?
            };
            for digest in named {
                tx.execute(
                    "DELETE FROM tags WHERE repository = ?1 AND tag = ?2 AND digest = ?3",
                    [repository, tag, &digest],
                )?;
                // The manifest stays in the repository, untagged.
                list_untagged(tx, repository, &digest)?;
            }
            Ok(false)
        }
    }
}

/// Points `repository:tag` at `digest`. An image the tag moved away from
/// stays listed in the repository, untagged, unless another tag names it.
fn set_tag(
    tx: &Transaction<'_>,
    repository: &str,
    tag: &str,
    digest: &str,
) -> Result<(), StoreError> {
    let previous: Vec<String> = {
        let mut stmt = tx.prepare(
            "SELECT digest FROM tags WHERE repository = ?1 AND tag = ?2 AND digest != ?3",
        )?;
        let rows = stmt.query_map([repository, tag, digest], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    for old in previous {
        tx.execute(
            "DELETE FROM tags WHERE repository = ?1 AND tag = ?2 AND digest = ?3",
            [repository, tag, &old],
        )?;
        list_untagged(tx, repository, &old)?;
    }
    tx.execute(
        "DELETE FROM tags WHERE repository = ?1 AND tag = '' AND digest = ?2",
        [repository, digest],
    )?;
    tx.execute(
        "INSERT OR IGNORE INTO tags (repository, tag, digest) VALUES (?1, ?2, ?3)",
        [repository, tag, digest],
    )?;
    Ok(())
}

/// Lists `digest` in `repository` without a tag, unless a tag already names it there.
fn list_untagged(tx: &Transaction<'_>, repository: &str, digest: &str) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO tags (repository, tag, digest) SELECT ?1, '', ?2
         WHERE NOT EXISTS (SELECT 1 FROM tags WHERE repository = ?1 AND digest = ?2)",
        [repository, digest],
    )?;
    Ok(())
}

fn record_failure(
    tx: &Transaction<'_>,
    digest: &str,
    error: &str,
    now: i64,
    notify: &[String],
) -> Result<(), StoreError> {
    if !notify.is_empty()
        && let Some((image, _)) = event_image(tx, digest)?
    {
        write_events(tx, &[outbox::scan_failed(&image, error, now)], notify)?;
    }
    tx.execute(
        "UPDATE images SET error = ?2, failures = failures + 1, last_failed = ?3
         WHERE digest = ?1",
        params![digest, error, now],
    )?;
    tx.execute("DELETE FROM jobs WHERE digest = ?1", [digest])?;
    Ok(())
}

/// An image as events name it, and its verdict, as stored now.
fn event_image(
    tx: &Transaction<'_>,
    digest: &str,
) -> Result<Option<(EventImage, Option<String>)>, StoreError> {
    let row: Option<(String, String, Option<String>)> = tx
        .prepare_cached("SELECT registry, repository, verdict FROM images WHERE digest = ?1")?
        .query_row([digest], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((registry, repository, verdict)) = row else {
        return Ok(None);
    };
    let tags = tx
        .prepare_cached(
            "SELECT repository, tag FROM tags WHERE digest = ?1 ORDER BY repository, tag",
        )?
        .query_map([digest], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let image = EventImage {
        digest: digest.to_string(),
        registry,
        repository,
        tags,
    };
    Ok(Some((image, verdict)))
}

/// Writes each event once for each target (an event already written for
/// a target is not written again).
fn write_events(
    tx: &Transaction<'_>,
    events: &[NewEvent],
    targets: &[String],
) -> Result<(), StoreError> {
    let now = super::local_now_ms();
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO outbox (event_id, target, kind, body, next_attempt, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?;
    for event in events {
        for target in targets {
            insert.execute(params![event.id, target, event.kind, event.body, now])?;
        }
    }
    Ok(())
}

/// Whether the claim `token` holds the running job of `digest`.
fn holds_job(tx: &Transaction<'_>, digest: &str, token: i64) -> Result<bool, StoreError> {
    Ok(tx
        .query_row(
            "SELECT 1 FROM jobs WHERE digest = ?1 AND lease_token = ?2 AND state = 'running'",
            params![digest, token],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// A lease token never handed out before: AUTOINCREMENT never reuses a
/// number, so a stale claim's token never matches a later one.
fn new_token(tx: &Transaction<'_>) -> Result<i64, StoreError> {
    tx.execute("INSERT INTO lease_tokens DEFAULT VALUES", [])?;
    let token = tx.last_insert_rowid();
    tx.execute("DELETE FROM lease_tokens WHERE token = ?1", [token])?;
    Ok(token)
}

/// The error recorded for a job given up after `attempts` crashes.
pub(super) fn given_up(attempts: i64) -> String {
    format!("given up: the process died {attempts} times while this scan ran alone")
}

/// The id of the rescan of `target`, if it is the newest planned.
fn newest_rescan_of(tx: &Transaction<'_>, target: &MatchTarget) -> Result<Option<i64>, StoreError> {
    Ok(tx
        .query_row(
            "SELECT id FROM rescans WHERE advisory_db = ?1 AND policy = ?2
             AND seq = (SELECT max(seq) FROM rescans)",
            [&target.advisory_db, &target.policy],
            |r| r.get(0),
        )
        .optional()?)
}

/// Replaces the finding rows of `digest`.
fn write_findings(
    tx: &Transaction<'_>,
    digest: &str,
    findings: &[FindingRow],
) -> Result<(), StoreError> {
    // finding_ids go with their findings (ON DELETE CASCADE).
    tx.prepare_cached("DELETE FROM findings WHERE digest = ?1")?
        .execute([digest])?;
    for (f, fkey) in findings.iter().zip(finding_keys(findings)) {
        insert_finding(tx, digest, &fkey, f)?;
    }
    Ok(())
}

/// A finding row's values after its key (`aliases` to `suppressed`), in
/// the order the row's `INSERT` and `UPDATE` name them.
struct Values<'f> {
    row: &'f FindingRow,
    aliases: String,
    severity: i16,
    fix_state: &'static str,
}

impl<'f> Values<'f> {
    fn of(row: &'f FindingRow) -> Result<Self, StoreError> {
        Ok(Values {
            row,
            aliases: serde_json::to_string(&row.aliases)?,
            severity: severity_rank(row.severity),
            fix_state: row.fix_state.as_str(),
        })
    }

    fn params(&self) -> [&dyn ToSql; 12] {
        let f = self.row;
        [
            &self.aliases,
            &f.package,
            &f.version,
            &f.source_name,
            &f.source_version,
            &f.ecosystem,
            &self.severity,
            &self.fix_state,
            &f.fixed_version,
            &f.layer,
            &f.path,
            &f.suppressed,
        ]
    }
}

/// Inserts one finding row and its ids.
fn insert_finding(
    tx: &Transaction<'_>,
    digest: &str,
    fkey: &str,
    f: &FindingRow,
) -> Result<(), StoreError> {
    let values = Values::of(f)?;
    let n: i64 = tx
        .prepare_cached(
            "INSERT INTO findings (digest, fkey, id, aliases, package, version, source_name,
             source_version, ecosystem, severity, fix_state, fixed_version, layer, path,
             suppressed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
             RETURNING n",
        )?
        .query_row(
            rusqlite::params_from_iter(
                [&digest as &dyn ToSql, &fkey, &f.id]
                    .into_iter()
                    .chain(values.params()),
            ),
            |r| r.get(0),
        )?;
    insert_ids(tx, n, f)
}

/// The id and alias rows of finding `n`.
fn insert_ids(tx: &Transaction<'_>, n: i64, f: &FindingRow) -> Result<(), StoreError> {
    let mut key =
        tx.prepare_cached("INSERT OR IGNORE INTO finding_ids (key, finding) VALUES (?1, ?2)")?;
    for k in f.keys() {
        key.execute(params![k, n])?;
    }
    Ok(())
}

/// The columns [`finding_row`] reads, in its order.
const FINDING_COLUMNS: &str = "id, aliases, package, version, source_name, source_version,
    ecosystem, severity, fix_state, fixed_version, layer, path, suppressed";

/// A `findings` row's [`FINDING_COLUMNS`] from column `at` on: the row,
/// with its aliases still JSON.
fn finding_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<(FindingRow, String)> {
    Ok((
        FindingRow {
            id: r.get(at)?,
            aliases: Vec::new(),
            package: r.get(at + 2)?,
            version: r.get(at + 3)?,
            source_name: r.get(at + 4)?,
            source_version: r.get(at + 5)?,
            ecosystem: r.get(at + 6)?,
            severity: severity_of_rank(r.get(at + 7)?),
            fix_state: fix_state_of(&r.get::<_, String>(at + 8)?),
            fixed_version: r.get(at + 9)?,
            layer: r.get(at + 10)?,
            path: r.get(at + 11)?,
            suppressed: r.get(at + 12)?,
        },
        r.get(at + 1)?,
    ))
}

/// Brings the finding rows of `digest` to `findings`, writing only the
/// difference: rows are compared by their stable key (id, key); a row
/// whose key is gone is deleted, a new key inserted, a row whose other
/// columns changed updated in place, an identical row left alone.
/// Returns (deleted, updated, inserted).
fn apply_findings(
    tx: &Transaction<'_>,
    digest: &str,
    findings: &[FindingRow],
) -> Result<(usize, usize, usize), StoreError> {
    let mut stored: std::collections::HashMap<(String, String), (i64, FindingRow)> = {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT n, fkey, {FINDING_COLUMNS} FROM findings WHERE digest = ?1"
        ))?;
        let rows = stmt.query_map([digest], |r| {
            let (f, aliases) = finding_row(r, 2)?;
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, aliases, f))
        })?;
        let mut stored = std::collections::HashMap::new();
        for row in rows {
            let (n, fkey, aliases, mut f) = row?;
            f.aliases = serde_json::from_str(&aliases)?;
            stored.insert((f.id.clone(), fkey), (n, f));
        }
        stored
    };
    let (mut updated, mut inserted) = (0, 0);
    for (f, fkey) in findings.iter().zip(finding_keys(findings)) {
        match stored.remove(&(f.id.clone(), fkey.clone())) {
            Some((_, old)) if old == *f => {}
            Some((n, old)) => {
                tx.prepare_cached(
                    "UPDATE findings SET aliases = ?2, package = ?3, version = ?4,
                     source_name = ?5, source_version = ?6, ecosystem = ?7, severity = ?8,
                     fix_state = ?9, fixed_version = ?10, layer = ?11, path = ?12,
                     suppressed = ?13 WHERE n = ?1",
                )?
                .execute(rusqlite::params_from_iter(
                    std::iter::once(&n as &dyn ToSql).chain(Values::of(f)?.params()),
                ))?;
                if old.keys() != f.keys() {
                    tx.prepare_cached("DELETE FROM finding_ids WHERE finding = ?1")?
                        .execute([n])?;
                    insert_ids(tx, n, f)?;
                }
                updated += 1;
            }
            None => {
                insert_finding(tx, digest, &fkey, f)?;
                inserted += 1;
            }
        }
    }
    let deleted = stored.len();
    let mut delete = tx.prepare_cached("DELETE FROM findings WHERE n = ?1")?;
    for (n, _) in stored.values() {
        delete.execute([n])?;
    }
    Ok((deleted, updated, inserted))
}

impl super::query::Rows for SqliteStore {
    async fn rows(&self, sql: &super::query::Sql) -> Result<Vec<Vec<Value>>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql.text)?;
        for (i, p) in sql.params.iter().enumerate() {
            match p {
                Value::Null => stmt.raw_bind_parameter(i + 1, rusqlite::types::Null)?,
                Value::Int(n) => stmt.raw_bind_parameter(i + 1, n)?,
                Value::Text(t) => stmt.raw_bind_parameter(i + 1, t)?,
            }
        }
        let columns = stmt.column_count();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(columns);
            for c in 0..columns {
                values.push(match row.get_ref(c)? {
                    rusqlite::types::ValueRef::Null => Value::Null,
                    rusqlite::types::ValueRef::Integer(n) => Value::Int(n),
                    rusqlite::types::ValueRef::Real(x) => Value::Int(x as i64),
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        Value::Text(String::from_utf8_lossy(t).into_owned())
                    }
                });
            }
            out.push(values);
        }
        Ok(out)
    }
}

/// Brings a store of schema `version` (0: new) to [`SCHEMA_VERSION`].
fn migrate(tx: &Transaction<'_>, version: i64) -> Result<(), StoreError> {
    match version {
        0 => tx.execute_batch(SCHEMA_V3)?,
        1 | 2 => {
            // Reports of version 1 name no policy: the next rescan redoes them.
            if version == 1 {
                tx.execute_batch("ALTER TABLE images ADD COLUMN policy TEXT")?;
            }
            // Running jobs of version 2 have no lease: recovered at start,
            // uncharged.
            tx.execute_batch(LEASE_COLUMNS)?;
        }
        _ => {}
    }
    if version < 4 {
        tx.execute_batch(FINDINGS_AND_RESCANS)?;
    }
    if version < 5 {
        tx.execute_batch(QUERY_INDEXES)?;
    }
    if version < 6 {
        tx.execute_batch(OUTBOX)?;
    }
    if version < 7 {
        tx.execute_batch(STABLE_FINDING_KEYS)?;
        if version > 0 {
            backfill_findings(tx)?;
        }
    }
    if version < 8 {
        tx.execute_batch(&super::counters::sqlite_migration())?;
    }
    if version < 9 {
        tx.execute_batch(&super::counters::sqlite_prefix_migration())?;
    }
    Ok(())
}

/// Fills `findings` and `report_sha256` from the reports stored before
/// version 7. A report that does not read loses its policy, so the next
/// rescan in its window matches it again.
fn backfill_findings(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let reports: Vec<(String, String)> = {
        let mut stmt = tx.prepare("SELECT digest, report FROM images WHERE report IS NOT NULL")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (digest, json) in reports {
        match serde_json::from_str::<Report>(&json) {
            Ok(report) => {
                // The hash a rescan compares with ([`MatchResult::report_sha256`]).
                let target = MatchTarget {
                    advisory_db: String::new(),
                    policy: String::new(),
                };
                let result = MatchResult::rematched(&report, &target, false)?;
                tx.execute(
                    "UPDATE images SET report_sha256 = ?2 WHERE digest = ?1",
                    params![digest, result.report_sha256],
                )?;
                write_findings(tx, &digest, &result.findings)?;
            }
            Err(e) => {
                warn!(%digest, error = %e, "stored report unreadable: it is matched again at the next rescan");
                tx.execute(
                    "UPDATE images SET policy = NULL WHERE digest = ?1",
                    [&digest],
                )?;
            }
        }
    }
    Ok(())
}

fn now_secs() -> i64 {
    super::local_now_ms() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoreLocation};

    const OWNER: &str = "test-owner";

    fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open(&dir.join("watch.sqlite"))
    }

    #[test]
    fn a_second_process_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).unwrap();
        assert!(matches!(open(dir.path()), Err(StoreError::Locked { .. })));
        drop(store);
        open(dir.path()).unwrap();
    }

    /// The schema of version 2: no lease columns (and of version 1: no policy).
    fn old_schema(version: i64) -> String {
        let v2 = SCHEMA_V3
            .replace(
                ",\n    lease_owner TEXT,\n    lease_token INTEGER,\n    lease_until INTEGER,\n    alone INTEGER NOT NULL DEFAULT 0,\n    after_crash INTEGER NOT NULL DEFAULT 0\n",
                "\n",
            )
            .replace(
                "CREATE INDEX jobs_by_owner ON jobs(lease_owner) WHERE state = 'running';\n",
                "",
            )
            .replace(
                "CREATE TABLE lease_tokens (token INTEGER PRIMARY KEY AUTOINCREMENT);\n",
                "",
            );
        assert!(!v2.contains("lease"), "{v2}");
        match version {
            1 => v2.replace("    policy TEXT,\n", ""),
            2 => v2,
            3 => SCHEMA_V3.to_string(),
            5 => format!("{SCHEMA_V3}{FINDINGS_AND_RESCANS}{QUERY_INDEXES}"),
            _ => format!("{SCHEMA_V3}{FINDINGS_AND_RESCANS}{QUERY_INDEXES}{OUTBOX}"),
        }
    }

    /// A report with one finding, as versions before 4 stored it.
    const REPORT: &str = r#"{"schema_version": 1, "source": "s",
        "image": {"manifest_digest": null, "layers": [], "diff_ids": []},
        "os": null, "verdict": "unhealthy", "verdict_reason": "1 finding", "ecosystem": "Debian:12",
        "summary": {"packages": 1, "findings": 1, "fixable": 1, "suppressed": 0,
                    "by_severity": {}, "by_fix_state": {}},
        "remediation": [], "packages": [],
        "findings": [{"id": "CVE-2099-1", "aliases": ["DSA-1"], "package": "libssl3",
            "installed_version": "1", "source_name": "openssl", "source_version": "1",
            "fixed_version": "2", "fix_state": "fixed", "severity": "high",
            "severity_source": "x", "ecosystem": "Debian:12", "layer": null,
            "remediation": "upgrade"}],
        "warnings": []}"#;

    /// Versions 1 to 3, and 5 and 6 (whose findings rows are keyed by their
    /// place; version 5 without the outbox): upgraded in place, the rows
    /// filled again from the stored reports.
    #[test]
    fn stores_of_versions_1_to_6_are_upgraded() {
        for version in [1, 2, 3, 5, 6] {
            upgraded(version);
        }
    }

    fn upgraded(version: i64) {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            format!("sha256:{}", "a".repeat(64)),
            format!("sha256:{}", "b".repeat(64)),
        );
        {
            let conn = Connection::open(dir.path().join("watch.sqlite")).unwrap();
            conn.execute_batch(&old_schema(version)).unwrap();
            conn.pragma_update(None, "user_version", version).unwrap();
            // A scanned image, and a job running when the old version stopped.
            conn.execute(
                "INSERT INTO images (digest, registry, repository, media_type, first_seen,
                 report, inventory, verdict) VALUES (?1, 'r', 'x', 'm', 1, ?2, '{}', 'unhealthy')",
                [&b, REPORT],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO images (digest, registry, repository, media_type, first_seen)
                 VALUES (?1, 'r', 'x', 'm', 1)",
                [&a],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO jobs (digest, registry, repository, state, attempts, enqueued)
                 VALUES (?1, 'r', 'x', 'running', 1, 1)",
                [&a],
            )
            .unwrap();
        }
        let store = open(dir.path()).unwrap();
        // Running jobs of versions before leases are recovered, uncharged.
        let recovered = store.recover_orphans(OWNER, true, 1_000).unwrap();
        assert_eq!(
            (recovered.jobs, recovered.charged),
            (1, 0),
            "from {version}"
        );
        let job = store.claim(OWNER, 2_000, 62_000, &[]).unwrap().unwrap();
        assert_eq!(job.digest, a);
        // The stored report's findings became rows.
        let rows = store.findings(&b).unwrap();
        assert_eq!(rows.len(), 1, "from {version}");
        assert_eq!(
            (rows[0].id.as_str(), rows[0].aliases.as_slice()),
            ("CVE-2099-1", &["DSA-1".to_string()][..])
        );
        assert_eq!(rows[0].keys(), ["cve-2099-1", "dsa-1"]);
        let versions = store.finding_versions(&b).unwrap();
        assert_eq!(versions[0].1, "libssl3\u{1f}\u{1f}1", "from {version}");
        // The report is the cache of the image's (unknown) target.
        let report = store.report(&b).unwrap().unwrap().unwrap();
        assert!(
            report.is_current() && report.report == REPORT,
            "from {version}"
        );
        assert_eq!(store.outbox_counts().unwrap(), OutboxCounts::default());
        drop(store);
        let conn = Connection::open(dir.path().join("watch.sqlite")).unwrap();
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(found, SCHEMA_VERSION, "from version {version}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let location = StoreLocation::sqlite(dir.path().join("watch.sqlite"));
        drop(Store::open(&location).await.unwrap());
        let conn = Connection::open(dir.path().join("watch.sqlite")).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        assert!(matches!(
            Store::open(&location).await,
            Err(StoreError::Schema { found: 99, .. })
        ));
    }
}
