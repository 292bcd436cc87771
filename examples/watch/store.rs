//! The results store: one SQLite file, `DATA/watch.sqlite`, that survives
//! restarts.
//!
//! | table | key | holds |
//! |---|---|---|
//! | `images` | manifest digest | where to pull it, the stored inventory and report (JSON), verdict, summary, scan and rescan counts, when it was last scanned, matched, pushed and pulled |
//! | `tags` | (repository, tag, digest) | the repositories and tags naming each image; tag `''` lists an image pushed by digest only |
//! | `jobs` | manifest digest | the scan queue: `queued` or `running`, in arrival order, and the lease of a running job |
//!
//! Every change is one transaction, so a crash leaves the queue as it was at
//! the last commit. The file is locked for the life of the [`Store`]
//! (SQLite's exclusive locking mode): one process per data directory.
//!
//! # Leases, and which job a crash is charged to
//!
//! A running job holds a lease: its owner (one per process), a token (one
//! per claim) and an expiry that the worker renews while it scans
//! ([`Store::heartbeat`]). A job whose lease expired, or whose owner is known
//! to be gone (at start: the lock proves the previous process is), is
//! *orphaned*: its process died during the scan ([`Store::recover_orphans`]).
//!
//! A crash takes every scan of the process with it, and only one of them
//! may have caused it. So a job is charged an attempt only when it was
//! running *alone* in its process since it was claimed; jobs that ran beside
//! others are not charged but marked `after_crash`, and such jobs then run
//! one at a time (no other job is claimed by a process running one, and one
//! is claimed only by a process running nothing). A poisonous image is thus
//! charged for each crash it causes, and the images that happened to be
//! scanned beside it are not; after [`MAX_ATTEMPTS`] crashes it is given up,
//! so it cannot keep the service in a crash loop.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::events::{Deleted, Deletion, ImageEvent, Kind, Recorded};

/// The schema this file writes (SQLite's `user_version`). Versions 1
/// (before policies were recorded) and 2 (before job leases) are upgraded in
/// place.
const SCHEMA_VERSION: i64 = 3;

/// Crashes charged to one job before it is given up.
pub const MAX_ATTEMPTS: i64 = 3;

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

const SCHEMA: &str = "
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

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory could not be created.
    #[error("cannot create data directory {}: {source}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// SQLite failed.
    #[error("results store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Another process holds the file.
    #[error("results store {} is in use by another process (one watch per data directory)", path.display())]
    Locked {
        /// The file.
        path: PathBuf,
    },
    /// The file was written by a newer (or unknown) version of `watch`.
    #[error("results store {}: schema version {found}, this program reads {SCHEMA_VERSION}", path.display())]
    Schema {
        /// The file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
    },
    /// A blocking task running a store call ended without an answer.
    #[error("results store: the task running the query was lost")]
    Lost,
}

/// Where a scan of one image stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageState {
    /// Waiting for a worker.
    Queued,
    /// A worker is pulling it.
    Scanning,
    /// It has a report.
    Scanned,
    /// Its last scan failed and it has no report.
    Failed,
}

impl ImageState {
    /// The lower-case name the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageState::Queued => "queued",
            ImageState::Scanning => "scanning",
            ImageState::Scanned => "scanned",
            ImageState::Failed => "failed",
        }
    }
}

/// One image as stored, without its inventory and report.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    /// The manifest digest.
    pub digest: String,
    /// The registry it is pulled from.
    pub registry: String,
    /// The manifest media type.
    pub media_type: String,
    /// (repository, tag) pairs naming it; `None` for an untagged push.
    pub tags: Vec<(String, Option<String>)>,
    /// Where its scan stands.
    pub state: ImageState,
    /// `healthy`, `unhealthy`, `unsupported` or `partial`, once scanned.
    pub verdict: Option<String>,
    /// Why, in words.
    pub verdict_reason: Option<String>,
    /// The report's summary (JSON), once scanned.
    pub summary: Option<String>,
    /// The content SHA-256 of the advisory database the report was matched against.
    pub advisory_db: Option<String>,
    /// The id of the policy the report was classified under.
    pub policy: Option<String>,
    /// The last scan failure, if the last scan failed.
    pub error: Option<String>,
    /// Scans (pulls of the image).
    pub scans: i64,
    /// Re-matches of the stored inventory against a new advisory database.
    pub rescans: i64,
    /// Failed scans.
    pub failures: i64,
    /// Unix seconds of the last successful scan, last match (scan or
    /// rescan), last push, last pull and last failed scan.
    pub last_scanned: Option<i64>,
    /// See `last_scanned`.
    pub last_matched: Option<i64>,
    /// See `last_scanned`.
    pub last_pushed: Option<i64>,
    /// See `last_scanned`.
    pub last_pulled: Option<i64>,
    /// See `last_scanned`.
    pub last_failed: Option<i64>,
    /// Its scan job, while it has one.
    pub job: Option<JobStatus>,
}

/// A queued or running job, as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobStatus {
    /// Crashes charged to it (it was running alone when its process died).
    pub attempts: i64,
    /// A process died while it ran, so it runs alone.
    pub after_crash: bool,
}

/// A scan to run, claimed under a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The manifest digest.
    pub digest: String,
    /// The configured registry (as events name it) to pull from.
    pub registry: String,
    /// The repository to pull from.
    pub repository: String,
    /// This claim's lease token: renewing, finishing and releasing the job
    /// need it, so a claim that lost its lease changes nothing of the next.
    pub token: i64,
}

/// What became of a batch of events: the first `recorded` were applied, in
/// order; the rest (`deferred`) were not, because the next of them needed a
/// scan and `max_pending` scans were waiting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Events applied.
    pub recorded: usize,
    /// New jobs, net of queued ones that deletions removed.
    pub queued: usize,
    /// Images forgotten: deleted from the last repository holding them.
    pub forgotten: usize,
    /// Events not applied.
    pub deferred: usize,
    /// Jobs waiting for a worker afterwards.
    pub pending: usize,
}

/// What [`Store::recover_orphans`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Orphaned jobs queued again (each now runs alone).
    pub jobs: usize,
    /// Of them, those charged an attempt (they were running alone).
    pub charged: usize,
}

/// A match result to store.
#[derive(Debug, Clone)]
pub struct MatchResult {
    /// The verdict's name.
    pub verdict: String,
    /// Why.
    pub verdict_reason: String,
    /// The summary, JSON.
    pub summary: String,
    /// The whole report, JSON.
    pub report: String,
    /// The advisory database's content SHA-256.
    pub advisory_db: String,
    /// The policy's id.
    pub policy: String,
}

/// The results store. Calls are short transactions behind one mutex; call
/// them from a blocking context.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if needed) `dir/watch.sqlite`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join("watch.sqlite");
        let mut conn = Connection::open(&path)?;
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
                return Err(StoreError::Locked { path });
            }
            other => other?,
        }
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        match version {
            0 => {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
                tx.execute_batch(SCHEMA)?;
                tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
                tx.commit()?;
            }
            1 | 2 => {
                // Reports of version 1 name no policy: the next rescan redoes them.
                let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
                if version == 1 {
                    tx.execute_batch("ALTER TABLE images ADD COLUMN policy TEXT")?;
                }
                // Running jobs of version 2 have no lease: recovered at start,
                // uncharged.
                tx.execute_batch(LEASE_COLUMNS)?;
                tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
                tx.commit()?;
            }
            SCHEMA_VERSION => {}
            found => return Err(StoreError::Schema { path, found }),
        }
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction open
        // (rusqlite rolls back on drop), so the connection is still usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues again the running jobs of owners other than `owner` whose
    /// lease expired before `now_ms` (Unix milliseconds) or, with
    /// `owners_gone`, all of them (at start: the file's lock proves their
    /// process is gone). Each is marked `after_crash`; one that was running
    /// alone is charged an attempt.
    pub fn recover_orphans(
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

    /// Records a batch of events in one transaction, in order: tags, push
    /// and pull times, a scan job for each image that needs one, and
    /// deletions. An image needs a scan when it is pushed and has no report
    /// yet (new, or its scans failed), or when it is pulled and was never
    /// seen; never while a job for it is queued or running. An image deleted
    /// from the last repository that holds it is forgotten: its results, its
    /// job, its tags.
    ///
    /// Back-pressure is per event: events are applied in order until one
    /// needs a scan while `max_pending` (at least 1) jobs are queued; that one
    /// and all after it are not applied ([`Applied::deferred`]). A registry
    /// sends a refused envelope again whole, and applying the events already
    /// applied once more changes nothing (jobs coalesce, tags are set, times
    /// only move forward), so the prefix semantics keep its retries exact,
    /// and an envelope larger than the queue still gets through, a part per
    /// retry, as the workers drain the queue.
    pub fn apply(
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

    /// Takes a job for `owner` under a lease until `lease_until_ms` (Unix
    /// milliseconds; `now_ms` is now), or `None`. Orphans of other owners
    /// whose lease expired are recovered first. Jobs marked `after_crash`
    /// come first and run alone: one is claimed only when `owner` runs
    /// nothing, and while it runs `owner` gets nothing else. Jobs charged
    /// [`MAX_ATTEMPTS`] crashes are given up (recorded as failed) on the way.
    pub fn claim(
        &self,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
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
                let error = format!(
                    "given up: the process died {attempts} times while this scan ran alone"
                );
                record_failure(&tx, &digest, &error, now_ms / 1000)?;
                continue;
            }
            if after_crash && running > 0 {
                // It waits until this process runs nothing.
                break None;
            }
            // AUTOINCREMENT never hands out a number twice, so a stale claim's
            // token never matches a later one.
            tx.execute("INSERT INTO lease_tokens DEFAULT VALUES", [])?;
            let token = tx.last_insert_rowid();
            tx.execute("DELETE FROM lease_tokens WHERE token = ?1", [token])?;
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

    /// Extends a running job's lease to `until_ms`; false when the claim
    /// `token` no longer holds it (the job was deleted or recovered).
    pub fn heartbeat(&self, digest: &str, token: i64, until_ms: i64) -> Result<bool, StoreError> {
        Ok(self.conn().execute(
            "UPDATE jobs SET lease_until = ?3
             WHERE digest = ?1 AND lease_token = ?2 AND state = 'running'",
            params![digest, token, until_ms],
        )? == 1)
    }

    /// Puts a running job back in the queue, uncharged (the service is
    /// stopping).
    pub fn release(&self, digest: &str, token: i64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_token = NULL,
             lease_until = NULL WHERE digest = ?1 AND lease_token = ?2 AND state = 'running'",
            params![digest, token],
        )?;
        Ok(())
    }

    /// Stores a scan's inventory and report and removes its job, if the
    /// claim `token` still holds it (nothing is stored if the image was
    /// deleted meanwhile).
    pub fn finish_scan(
        &self,
        digest: &str,
        token: i64,
        inventory: &str,
        result: &MatchResult,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE images SET inventory = ?2, verdict = ?3, verdict_reason = ?4, summary = ?5,
             report = ?6, advisory_db = ?7, policy = ?8, error = NULL, scans = scans + 1,
             last_scanned = ?9, last_matched = ?9 WHERE digest = ?1",
            params![
                digest,
                inventory,
                result.verdict,
                result.verdict_reason,
                result.summary,
                result.report,
                result.advisory_db,
                result.policy,
                now
            ],
        )?;
        tx.execute(
            "DELETE FROM jobs WHERE digest = ?1 AND lease_token = ?2",
            params![digest, token],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records a failed scan and removes its job, if the claim `token` still
    /// holds it (the next push queues it again).
    pub fn fail_scan(
        &self,
        digest: &str,
        token: i64,
        error: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let held = tx
            .query_row(
                "SELECT 1 FROM jobs WHERE digest = ?1 AND lease_token = ?2",
                params![digest, token],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if held {
            record_failure(&tx, digest, error, now)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Digests of the images to match again against advisory database
    /// `advisory_db` under policy `policy`: those with an inventory, pushed or
    /// pulled at or after `since`, whose report came from another database
    /// or another policy.
    pub fn rescan_candidates(
        &self,
        since: i64,
        advisory_db: &str,
        policy: &str,
    ) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT digest FROM images WHERE inventory IS NOT NULL
             AND (last_pushed >= ?1 OR last_pulled >= ?1)
             AND (advisory_db IS NOT ?2 OR policy IS NOT ?3)
             ORDER BY digest",
        )?;
        let rows = stmt.query_map(params![since, advisory_db, policy], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The stored inventory (JSON) of an image.
    pub fn inventory(&self, digest: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT inventory FROM images WHERE digest = ?1",
                [digest],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }

    /// Stores the result of matching a stored inventory again.
    pub fn finish_rescan(
        &self,
        digest: &str,
        result: &MatchResult,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE images SET verdict = ?2, verdict_reason = ?3, summary = ?4, report = ?5,
             advisory_db = ?6, policy = ?7, rescans = rescans + 1, last_matched = ?8
             WHERE digest = ?1",
            params![
                digest,
                result.verdict,
                result.verdict_reason,
                result.summary,
                result.report,
                result.advisory_db,
                result.policy,
                now
            ],
        )?;
        Ok(())
    }

    /// Every image, by digest.
    pub fn images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        self.select_images(None)
    }

    /// One image.
    pub fn image(&self, digest: &str) -> Result<Option<ImageRecord>, StoreError> {
        Ok(self.select_images(Some(digest))?.pop())
    }

    fn select_images(&self, digest: Option<&str>) -> Result<Vec<ImageRecord>, StoreError> {
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
            let state = match (job.as_deref(), has_report) {
                (Some("running"), _) => ImageState::Scanning,
                (Some(_), _) => ImageState::Queued,
                (None, true) => ImageState::Scanned,
                (None, false) => ImageState::Failed,
            };
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

    /// The stored report (JSON) of an image: `None` for an unknown digest,
    /// `Some(None)` when it has not been scanned yet.
    pub fn report(&self, digest: &str) -> Result<Option<Option<String>>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT report FROM images WHERE digest = ?1",
                [digest],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Jobs waiting and jobs running.
    pub fn queue_lengths(&self) -> Result<(i64, i64), StoreError> {
        Ok(self.conn().query_row(
            "SELECT count(*) FILTER (WHERE state = 'queued'),
                    count(*) FILTER (WHERE state = 'running') FROM jobs",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }
}

/// Jobs waiting for a worker.
fn queued_jobs(tx: &rusqlite::Transaction<'_>) -> Result<usize, StoreError> {
    let n: i64 = tx.query_row(
        "SELECT COUNT(*) FROM jobs WHERE state = 'queued'",
        [],
        |r| r.get(0),
    )?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Whether recording `ev` would queue a scan.
fn needs_scan(tx: &rusqlite::Transaction<'_>, ev: &ImageEvent) -> Result<bool, StoreError> {
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
fn record_image(
    tx: &rusqlite::Transaction<'_>,
    ev: &ImageEvent,
    now: i64,
) -> Result<bool, StoreError> {
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

/// See [`Store::recover_orphans`].
fn recover(
    tx: &rusqlite::Transaction<'_>,
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
fn delete(tx: &rusqlite::Transaction<'_>, deletion: &Deletion) -> Result<bool, StoreError> {
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
    tx: &rusqlite::Transaction<'_>,
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
fn list_untagged(
    tx: &rusqlite::Transaction<'_>,
    repository: &str,
    digest: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO tags (repository, tag, digest) SELECT ?1, '', ?2
         WHERE NOT EXISTS (SELECT 1 FROM tags WHERE repository = ?1 AND digest = ?2)",
        [repository, digest],
    )?;
    Ok(())
}

fn record_failure(
    tx: &rusqlite::Transaction<'_>,
    digest: &str,
    error: &str,
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE images SET error = ?2, failures = failures + 1, last_failed = ?3
         WHERE digest = ?1",
        params![digest, error, now],
    )?;
    tx.execute("DELETE FROM jobs WHERE digest = ?1", [digest])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: Kind, digest_byte: char, repository: &str, tag: Option<&str>) -> ImageEvent {
        ImageEvent {
            kind,
            digest: format!("sha256:{}", digest_byte.to_string().repeat(64)),
            registry: "127.0.0.1:5000".into(),
            repository: repository.into(),
            tag: tag.map(str::to_string),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            at: 100,
        }
    }

    fn images(events: &[ImageEvent]) -> Vec<Recorded> {
        events.iter().cloned().map(Recorded::Image).collect()
    }

    fn result() -> MatchResult {
        MatchResult {
            verdict: "healthy".into(),
            verdict_reason: "nothing found".into(),
            summary: "{}".into(),
            report: "{}".into(),
            advisory_db: "db1".into(),
            policy: "p1".into(),
        }
    }

    fn tags(store: &Store, digest: &str) -> Vec<(String, Option<String>)> {
        store.image(digest).unwrap().unwrap().tags
    }

    const OWNER: &str = "test-owner";

    /// Claims for [`OWNER`] at second `now`, leased for a minute.
    fn claim(store: &Store, now: i64) -> Option<Job> {
        store.claim(OWNER, now * 1000, now * 1000 + 60_000).unwrap()
    }

    fn accepted(recorded: usize, queued: usize, forgotten: usize, pending: usize) -> Applied {
        Applied {
            recorded,
            queued,
            forgotten,
            deferred: 0,
            pending,
        }
    }

    #[test]
    fn pushes_coalesce_and_tags_move() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = event(Kind::Push, 'a', "team/app", Some("1"));
        // The same digest twice in one batch, and again later: one job.
        assert_eq!(
            store
                .apply(&images(&[a.clone(), a.clone()]), 10, 1)
                .unwrap(),
            accepted(2, 1, 0, 1)
        );
        assert_eq!(
            store
                .apply(&images(std::slice::from_ref(&a)), 10, 2)
                .unwrap(),
            accepted(1, 0, 0, 1)
        );
        let job = claim(&store, 3).unwrap();
        assert_eq!(job.digest, a.digest);
        assert_eq!(
            store.image(&a.digest).unwrap().unwrap().state,
            ImageState::Scanning
        );
        // Running: not queued again.
        assert_eq!(
            store
                .apply(&images(std::slice::from_ref(&a)), 10, 4)
                .unwrap(),
            accepted(1, 0, 0, 0)
        );
        store
            .finish_scan(&a.digest, job.token, "{}", &result(), 5)
            .unwrap();
        // Scanned: a push records the tag only.
        let mut a2 = a.clone();
        a2.tag = Some("2".into());
        assert_eq!(
            store.apply(&images(&[a2]), 10, 6).unwrap(),
            accepted(1, 0, 0, 0)
        );
        assert_eq!(claim(&store, 7), None);
        let image = store.image(&a.digest).unwrap().unwrap();
        assert_eq!((image.state, image.scans), (ImageState::Scanned, 1));
        assert_eq!(
            image.tags,
            [
                ("team/app".to_string(), Some("1".to_string())),
                ("team/app".to_string(), Some("2".to_string()))
            ]
        );
        // Tag 1 moves to b: a keeps tag 2; once 2 moves too, a is listed untagged.
        let b1 = event(Kind::Push, 'b', "team/app", Some("1"));
        let b2 = event(Kind::Push, 'b', "team/app", Some("2"));
        store.apply(&images(&[b1, b2.clone()]), 10, 8).unwrap();
        assert_eq!(tags(&store, &a.digest), [("team/app".into(), None)]);
        assert_eq!(tags(&store, &b2.digest).len(), 2);
    }

    #[test]
    fn back_pressure_is_per_event_and_retries_are_exact() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let pushes: Vec<ImageEvent> = "abcdef"
            .chars()
            .map(|c| event(Kind::Push, c, "x", Some("t")))
            .collect();
        // One envelope of six new images, room for four: the first four are
        // applied, the rest (and nothing of them) deferred.
        let applied = store.apply(&images(&pushes), 4, 1).unwrap();
        assert_eq!(
            applied,
            Applied {
                recorded: 4,
                queued: 4,
                forgotten: 0,
                deferred: 2,
                pending: 4
            }
        );
        assert!(store.image(&pushes[4].digest).unwrap().is_none());
        // (Tag `t` moved along the envelope: the last applied push has it.)
        assert_eq!(
            tags(&store, &pushes[3].digest),
            [("x".into(), Some("t".into()))]
        );
        // The registry sends it again whole: the applied part changes nothing.
        assert_eq!(
            store.apply(&images(&pushes), 4, 2).unwrap(),
            Applied {
                queued: 0,
                ..applied
            }
        );
        assert_eq!(store.queue_lengths().unwrap(), (4, 0));
        // A worker takes one: the next event fits, the last does not.
        let job = claim(&store, 3).unwrap();
        let applied = store.apply(&images(&pushes), 4, 4).unwrap();
        assert_eq!(
            (applied.recorded, applied.queued, applied.deferred),
            (5, 1, 1)
        );
        store
            .finish_scan(&job.digest, job.token, "{}", &result(), 5)
            .unwrap();
        // A pull of a known image needs no scan: applied even when full,
        // unless an event before it is deferred.
        let pull = event(Kind::Pull, 'a', "x", None);
        let applied = store
            .apply(&images(std::slice::from_ref(&pull)), 4, 6)
            .unwrap();
        assert_eq!((applied.recorded, applied.deferred), (1, 0));
        assert_eq!(
            store.image(&pushes[0].digest).unwrap().unwrap().last_pulled,
            Some(100)
        );
        let mut late = pull.clone();
        late.at = 200;
        let applied = store
            .apply(&images(&[pushes[5].clone(), late]), 4, 7)
            .unwrap();
        assert_eq!((applied.recorded, applied.deferred), (0, 2));
        assert_eq!(
            store.image(&pushes[0].digest).unwrap().unwrap().last_pulled,
            Some(100)
        );
        // A delete frees room for the pushes after it in the same envelope
        // (one queued job goes, one comes: net, nothing more is queued).
        let envelope = vec![
            deletion("x", Deleted::Manifest(pushes[1].digest.clone())),
            Recorded::Image(pushes[5].clone()),
        ];
        let applied = store.apply(&envelope, 4, 8).unwrap();
        assert_eq!(
            applied,
            Applied {
                recorded: 2,
                queued: 0,
                forgotten: 1,
                deferred: 0,
                pending: 4
            }
        );
        assert_eq!(
            store.image(&pushes[5].digest).unwrap().unwrap().state,
            ImageState::Queued
        );
    }

    fn job_status(store: &Store, digest: &str) -> Option<JobStatus> {
        store.image(digest).unwrap().unwrap().job
    }

    #[test]
    fn a_crash_is_charged_only_to_a_job_running_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            event(Kind::Push, 'a', "x", None),
            event(Kind::Push, 'b', "x", None),
            event(Kind::Push, 'c', "x", None),
        );
        let status = |attempts, after_crash| {
            Some(JobStatus {
                attempts,
                after_crash,
            })
        };
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .apply(&images(&[a.clone(), b.clone(), c.clone()]), 10, 1)
                .unwrap();
            // Three running in one process when it dies.
            for _ in 0..3 {
                claim(&store, 2).unwrap();
            }
        }
        // The next process: none is charged; each runs alone.
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.recover_orphans("next", true, 3_000).unwrap(),
            Recovered {
                jobs: 3,
                charged: 0
            }
        );
        for e in [&a, &b, &c] {
            assert_eq!(job_status(&store, &e.digest), status(0, true));
        }
        let first = store.claim("next", 4_000, 64_000).unwrap().unwrap();
        assert_eq!(first.digest, a.digest);
        assert_eq!(
            store.claim("next", 4_000, 64_000).unwrap(),
            None,
            "a runs alone"
        );
        // Another process (the lease allows several; this store is locked
        // to one) takes the next one, alone in it.
        let other = store.claim("other", 4_000, 5_000).unwrap().unwrap();
        assert_eq!(other.digest, b.digest);
        assert!(store.heartbeat(&b.digest, other.token, 6_000).unwrap());
        // "other" dies: its lease expires at 6 s, and b was alone in it.
        assert_eq!(
            store.recover_orphans("next", false, 5_500).unwrap(),
            Recovered::default()
        );
        assert_eq!(
            store.recover_orphans("next", false, 6_001).unwrap(),
            Recovered {
                jobs: 1,
                charged: 1
            }
        );
        assert_eq!(job_status(&store, &b.digest), status(1, true));
        // The stale claim can neither renew, fail nor release the job.
        assert!(!store.heartbeat(&b.digest, other.token, 9_000).unwrap());
        store.fail_scan(&b.digest, other.token, "stale", 7).unwrap();
        store.release(&b.digest, other.token).unwrap();
        assert_eq!(store.image(&b.digest).unwrap().unwrap().failures, 0);
        assert_eq!(job_status(&store, &b.digest), status(1, true));
        drop(store);

        // "next" dies with a alone: a is charged; c is not.
        for crash in 1..MAX_ATTEMPTS {
            let store = Store::open(dir.path()).unwrap();
            let owner = format!("again-{crash}");
            assert_eq!(
                store.recover_orphans(&owner, true, 8_000).unwrap(),
                Recovered {
                    jobs: 1,
                    charged: 1
                },
                "crash {crash}"
            );
            assert_eq!(job_status(&store, &a.digest), status(crash, true));
            assert_eq!(job_status(&store, &c.digest), status(0, true));
            assert_eq!(
                store.claim(&owner, 9_000, 69_000).unwrap().unwrap().digest,
                a.digest
            );
        }
        // Charged MAX_ATTEMPTS times: given up; the next is taken.
        let store = Store::open(dir.path()).unwrap();
        store.recover_orphans("last", true, 10_000).unwrap();
        let job = store.claim("last", 11_000, 71_000).unwrap().unwrap();
        assert_eq!(job.digest, b.digest);
        let given_up = store.image(&a.digest).unwrap().unwrap();
        assert_eq!(given_up.state, ImageState::Failed);
        assert!(given_up.error.unwrap().contains("given up"));
        store
            .finish_scan(&job.digest, job.token, "{}", &result(), 12)
            .unwrap();
        let job = store.claim("last", 12_000, 72_000).unwrap().unwrap();
        assert_eq!(job.digest, c.digest);
        // A graceful stop charges nothing, and the job keeps its place.
        store.release(&c.digest, job.token).unwrap();
        assert_eq!(job_status(&store, &c.digest), status(0, true));
        assert_eq!(
            store.claim("last", 13_000, 73_000).unwrap().unwrap().digest,
            c.digest
        );
    }

    #[test]
    fn jobs_claimed_together_are_not_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            event(Kind::Push, 'a', "x", None),
            event(Kind::Push, 'b', "x", None),
        );
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .apply(&images(&[a.clone(), b.clone()]), 10, 1)
                .unwrap();
            let first = claim(&store, 2).unwrap();
            let second = claim(&store, 2).unwrap();
            assert_eq!(
                (first.digest.as_str(), second.digest.as_str()),
                (a.digest.as_str(), b.digest.as_str())
            );
            // b finished: a was not alone all along, so it is not charged.
            store
                .finish_scan(&b.digest, second.token, "{}", &result(), 3)
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.recover_orphans("next", true, 5_000).unwrap(),
            Recovered {
                jobs: 1,
                charged: 0
            }
        );
    }

    #[test]
    fn a_second_process_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::Locked { .. })
        ));
        drop(store);
        Store::open(dir.path()).unwrap();
    }

    #[test]
    fn rescan_candidates_are_recent_and_stale() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut old = event(Kind::Push, 'a', "x", None);
        old.at = 10;
        let mut recent = event(Kind::Push, 'b', "x", None);
        recent.at = 1_000;
        let mut pulled = event(Kind::Pull, 'a', "x", None);
        pulled.at = 2_000;
        store
            .apply(&images(&[old.clone(), recent.clone()]), 10, 1)
            .unwrap();
        for _ in 0..2 {
            let job = claim(&store, 2).unwrap();
            store
                .finish_scan(&job.digest, job.token, "{}", &result(), 3)
                .unwrap();
        }
        assert_eq!(
            store.rescan_candidates(500, "db2", "p1").unwrap(),
            [recent.digest.clone()]
        );
        assert!(
            store
                .rescan_candidates(500, "db1", "p1")
                .unwrap()
                .is_empty()
        );
        store.apply(&images(&[pulled]), 10, 4).unwrap();
        assert_eq!(
            store.rescan_candidates(500, "db2", "p1").unwrap(),
            [old.digest.clone(), recent.digest.clone()]
        );
        // Another policy makes them stale too.
        assert_eq!(
            store.rescan_candidates(500, "db1", "p2").unwrap(),
            [old.digest.clone(), recent.digest.clone()]
        );
    }

    fn deletion(repository: &str, deleted: Deleted) -> Recorded {
        Recorded::Delete(Deletion {
            repository: repository.into(),
            deleted,
        })
    }

    #[test]
    fn deletes_untag_and_forget_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = event(Kind::Push, 'a', "team/app", Some("1"));
        let a_mirror = event(Kind::Push, 'a', "mirror/app", Some("1"));
        let b = event(Kind::Push, 'b', "team/app", Some("2"));
        store
            .apply(&images(&[a.clone(), a_mirror.clone(), b.clone()]), 10, 1)
            .unwrap();
        let job = claim(&store, 2).unwrap();
        store
            .finish_scan(&job.digest, job.token, "{}", &result(), 3)
            .unwrap();

        // A tag deleted alone: the manifest stays, untagged.
        store
            .apply(&[deletion("team/app", Deleted::Tag("2".into()))], 10, 4)
            .unwrap();
        assert_eq!(tags(&store, &b.digest), [("team/app".into(), None)]);

        // A manifest deleted from one of its repositories: kept, pulled from the other.
        let applied = store
            .apply(
                &[
                    deletion("team/app", Deleted::Manifest(a.digest.clone())),
                    deletion("team/app", Deleted::Tag("1".into())),
                ],
                10,
                5,
            )
            .unwrap();
        assert_eq!(applied, accepted(2, 0, 0, 1));
        assert_eq!(
            tags(&store, &a.digest),
            [("mirror/app".into(), Some("1".into()))]
        );
        let job_b = claim(&store, 6).unwrap();
        assert_eq!(
            (
                job_b.digest.as_str(),
                job_b.registry.as_str(),
                job_b.repository.as_str()
            ),
            (b.digest.as_str(), b.registry.as_str(), "team/app")
        );
        // From its last repository: forgotten, the running job with it, and
        // the scan that finishes afterwards stores nothing. A blob digest or
        // an unknown one changes nothing.
        let applied = store
            .apply(
                &[
                    deletion("mirror/app", Deleted::Manifest(a.digest.clone())),
                    deletion("team/app", Deleted::Manifest(b.digest.clone())),
                    deletion(
                        "team/app",
                        Deleted::Manifest(format!("sha256:{}", "f".repeat(64))),
                    ),
                ],
                10,
                7,
            )
            .unwrap();
        assert_eq!(applied.forgotten, 2);
        store
            .finish_scan(&b.digest, job_b.token, "{}", &result(), 8)
            .unwrap();
        assert!(store.image(&a.digest).unwrap().is_none());
        assert!(store.image(&b.digest).unwrap().is_none());
        assert!(store.images().unwrap().is_empty());
        assert_eq!(store.queue_lengths().unwrap(), (0, 0));

        // Pushed again after its deletion, in the same batch: a new image, scanned anew.
        let applied = store
            .apply(
                &[
                    Recorded::Image(a.clone()),
                    deletion("team/app", Deleted::Manifest(a.digest.clone())),
                    Recorded::Image(a.clone()),
                ],
                10,
                9,
            )
            .unwrap();
        assert_eq!(applied, accepted(3, 1, 1, 1));
        let image = store.image(&a.digest).unwrap().unwrap();
        assert_eq!((image.state, image.scans), (ImageState::Queued, 0));
    }

    /// The schema of version 2: no lease columns (and of version 1: no policy).
    fn old_schema(version: i64) -> String {
        let v2 = SCHEMA
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
            _ => v2,
        }
    }

    #[test]
    fn version_1_and_2_stores_are_upgraded() {
        for version in [1, 2] {
            upgraded(version);
        }
    }

    fn upgraded(version: i64) {
        let dir = tempfile::tempdir().unwrap();
        let a = event(Kind::Push, 'a', "x", None);
        {
            let conn = Connection::open(dir.path().join("watch.sqlite")).unwrap();
            conn.execute_batch(&old_schema(version)).unwrap();
            conn.pragma_update(None, "user_version", version).unwrap();
            // A job running when the old version stopped.
            conn.execute(
                "INSERT INTO images (digest, registry, repository, media_type, first_seen)
                 VALUES (?1, 'r', 'x', 'm', 1)",
                [&a.digest],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO jobs (digest, registry, repository, state, attempts, enqueued)
                 VALUES (?1, 'r', 'x', 'running', 1, 1)",
                [&a.digest],
            )
            .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.recover_orphans(OWNER, true, 1_000).unwrap(),
            Recovered {
                jobs: 1,
                charged: 0
            }
        );
        let job = claim(&store, 2).unwrap();
        store
            .finish_scan(&job.digest, job.token, "{}", &result(), 3)
            .unwrap();
        assert_eq!(
            store.image(&a.digest).unwrap().unwrap().policy.as_deref(),
            Some("p1")
        );
        drop(store);
        let conn = Connection::open(dir.path().join("watch.sqlite")).unwrap();
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(found, SCHEMA_VERSION, "from version {version}");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join("watch.sqlite")).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::Schema { found: 99, .. })
        ));
    }
}
