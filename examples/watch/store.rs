//! The results store: one SQLite file, `DATA/watch.sqlite`, that survives
//! restarts.
//!
//! | table | key | holds |
//! |---|---|---|
//! | `images` | manifest digest | where to pull it, the stored inventory and report (JSON), verdict, summary, scan and rescan counts, when it was last scanned, matched, pushed and pulled |
//! | `tags` | (repository, tag, digest) | the repositories and tags naming each image; tag `''` lists an image pushed by digest only |
//! | `jobs` | manifest digest | the scan queue: `queued` or `running`, in arrival order |
//!
//! Every change is one transaction, so a crash leaves the queue as it was at
//! the last commit: a job that was `running` is set back to `queued` at the
//! next start ([`Store::requeue_interrupted`]) and scanned again. A job whose
//! scan was interrupted [`MAX_ATTEMPTS`] times (the process died each time) is
//! given up, so one poisonous image cannot keep the service in a crash loop.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::events::{Deleted, Deletion, ImageEvent, Kind, Recorded};

/// The schema this file writes (SQLite's `user_version`). Version 1 (before
/// policies were recorded) is upgraded in place.
const SCHEMA_VERSION: i64 = 2;

/// Attempts at one job before it is given up.
pub const MAX_ATTEMPTS: i64 = 3;

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
    enqueued INTEGER NOT NULL
);
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
}

/// A scan to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The manifest digest.
    pub digest: String,
    /// The registry to pull from.
    pub registry: String,
    /// The repository to pull from.
    pub repository: String,
}

/// What became of a batch of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Recorded; `queued` new scans.
    Accepted {
        /// New jobs.
        queued: usize,
        /// Events recorded.
        recorded: usize,
        /// Images forgotten: deleted from the last repository holding them.
        forgotten: usize,
    },
    /// Nothing recorded: the batch needs new scans and `pending` are already waiting.
    Full {
        /// Jobs waiting for a worker.
        pending: usize,
    },
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
        // WAL: readers do not wait for the writer; FULL: a committed queue
        // change survives a power loss, not only a crash.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        match version {
            0 => {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
                tx.execute_batch(SCHEMA)?;
                tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
                tx.commit()?;
            }
            1 => {
                // Reports of version 1 name no policy: the next rescan redoes them.
                let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
                tx.execute_batch("ALTER TABLE images ADD COLUMN policy TEXT")?;
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

    /// Sets jobs left `running` by a process that stopped back to `queued`;
    /// returns how many.
    pub fn requeue_interrupted(&self) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "UPDATE jobs SET state = 'queued' WHERE state = 'running'",
            [],
        )?)
    }

    /// Records a batch of events in one transaction, in order: tags, push
    /// and pull times, a scan job for each image that needs one, and
    /// deletions. An image needs a scan when it is pushed and has no report
    /// yet (new, or its scans failed), or when it is pulled and was never
    /// seen; never while a job for it is queued or running. An image deleted
    /// from the last repository that holds it is forgotten: its results, its
    /// job, its tags. When the batch needs new jobs and `max_pending` jobs are
    /// already queued, nothing is recorded.
    pub fn apply(
        &self,
        events: &[Recorded],
        max_pending: usize,
        now: i64,
    ) -> Result<Applied, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let pending = queued_jobs(&tx)?;
        let mut forgotten = 0;
        for event in events {
            match event {
                Recorded::Image(ev) => record_image(&tx, ev, now)?,
                Recorded::Delete(deletion) => forgotten += usize::from(delete(&tx, deletion)?),
            }
        }
        let after = queued_jobs(&tx)?;
        // New jobs, net of the queued ones deletions removed.
        let queued = after.saturating_sub(pending);
        if queued > 0 && pending >= max_pending {
            // Dropping the transaction rolls it back.
            return Ok(Applied::Full { pending });
        }
        tx.commit()?;
        Ok(Applied::Accepted {
            queued,
            recorded: events.len(),
            forgotten,
        })
    }

    /// Takes the oldest queued job and marks it `running`. Jobs interrupted
    /// [`MAX_ATTEMPTS`] times are given up (recorded as failed) on the way.
    pub fn claim(&self, now: i64) -> Result<Option<Job>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let job = loop {
            let row = tx
                .query_row(
                    "SELECT digest, registry, repository, attempts FROM jobs
                     WHERE state = 'queued' ORDER BY seq LIMIT 1",
                    [],
                    |r| {
                        Ok((
                            Job {
                                digest: r.get(0)?,
                                registry: r.get(1)?,
                                repository: r.get(2)?,
                            },
                            r.get::<_, i64>(3)?,
                        ))
                    },
                )
                .optional()?;
            let Some((job, attempts)) = row else {
                break None;
            };
            if attempts >= MAX_ATTEMPTS {
                let error = format!(
                    "given up: the scan was interrupted {attempts} times (the process stopped during it)"
                );
                record_failure(&tx, &job.digest, &error, now)?;
                continue;
            }
            tx.execute(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1 WHERE digest = ?1",
                [&job.digest],
            )?;
            break Some(job);
        };
        tx.commit()?;
        Ok(job)
    }

    /// Puts a running job back in the queue without counting the attempt
    /// (the service is stopping).
    pub fn release(&self, digest: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE jobs SET state = 'queued', attempts = max(attempts - 1, 0)
             WHERE digest = ?1 AND state = 'running'",
            [digest],
        )?;
        Ok(())
    }

    /// Stores a scan's inventory and report and removes its job (nothing, if
    /// the image was deleted meanwhile).
    pub fn finish_scan(
        &self,
        digest: &str,
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
        tx.execute("DELETE FROM jobs WHERE digest = ?1", [digest])?;
        tx.commit()?;
        Ok(())
    }

    /// Records a failed scan and removes its job (the next push queues it again).
    pub fn fail_scan(&self, digest: &str, error: &str, now: i64) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        record_failure(&tx, digest, error, now)?;
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
                    i.last_pushed, i.last_pulled, i.last_failed, i.policy
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

/// Records one push or pull, queueing a scan when it needs one.
fn record_image(
    tx: &rusqlite::Transaction<'_>,
    ev: &ImageEvent,
    now: i64,
) -> Result<(), StoreError> {
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
    let needs_scan = !has_job
        && match (ev.kind, known) {
            (_, None) => true,
            (Kind::Push, Some(has_report)) => !has_report,
            (Kind::Pull, Some(_)) => false,
        };
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
    Ok(())
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
            Applied::Accepted {
                queued: 1,
                recorded: 2,
                forgotten: 0
            }
        );
        assert_eq!(
            store
                .apply(&images(std::slice::from_ref(&a)), 10, 2)
                .unwrap(),
            Applied::Accepted {
                queued: 0,
                recorded: 1,
                forgotten: 0
            }
        );
        let job = store.claim(3).unwrap().unwrap();
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
            Applied::Accepted {
                queued: 0,
                recorded: 1,
                forgotten: 0
            }
        );
        store.finish_scan(&a.digest, "{}", &result(), 5).unwrap();
        // Scanned: a push records the tag only.
        let mut a2 = a.clone();
        a2.tag = Some("2".into());
        assert_eq!(
            store.apply(&images(&[a2]), 10, 6).unwrap(),
            Applied::Accepted {
                queued: 0,
                recorded: 1,
                forgotten: 0
            }
        );
        assert_eq!(store.claim(7).unwrap(), None);
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
    fn a_full_queue_refuses_new_scans_but_not_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = event(Kind::Push, 'a', "x", None);
        let b = event(Kind::Push, 'b', "x", None);
        assert!(matches!(
            store
                .apply(&images(std::slice::from_ref(&a)), 1, 1)
                .unwrap(),
            Applied::Accepted { queued: 1, .. }
        ));
        assert_eq!(
            store
                .apply(&images(std::slice::from_ref(&b)), 1, 1)
                .unwrap(),
            Applied::Full { pending: 1 }
        );
        assert!(
            store.image(&b.digest).unwrap().is_none(),
            "nothing recorded"
        );
        // A pull of a known image needs no scan: recorded even when full.
        let pull = event(Kind::Pull, 'a', "x", None);
        assert!(matches!(
            store.apply(&images(&[pull]), 1, 1).unwrap(),
            Applied::Accepted { queued: 0, .. }
        ));
        assert_eq!(
            store.image(&a.digest).unwrap().unwrap().last_pulled,
            Some(100)
        );
    }

    #[test]
    fn interrupted_jobs_are_redone_then_given_up() {
        let dir = tempfile::tempdir().unwrap();
        let a = event(Kind::Push, 'a', "x", None);
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .apply(&images(std::slice::from_ref(&a)), 10, 1)
                .unwrap();
            store.claim(2).unwrap().unwrap();
        }
        for attempt in 2..=MAX_ATTEMPTS {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.requeue_interrupted().unwrap(), 1, "attempt {attempt}");
            assert_eq!(store.claim(3).unwrap().unwrap().digest, a.digest);
        }
        let store = Store::open(dir.path()).unwrap();
        store.requeue_interrupted().unwrap();
        assert_eq!(store.claim(4).unwrap(), None);
        let image = store.image(&a.digest).unwrap().unwrap();
        assert_eq!(image.state, ImageState::Failed);
        assert!(image.error.unwrap().contains("interrupted"));
        // A graceful stop does not count as an attempt.
        let b = event(Kind::Push, 'b', "x", None);
        store
            .apply(&images(std::slice::from_ref(&b)), 10, 5)
            .unwrap();
        for _ in 0..MAX_ATTEMPTS + 1 {
            store.claim(6).unwrap().unwrap();
            store.release(&b.digest).unwrap();
        }
        assert_eq!(store.claim(7).unwrap().unwrap().digest, b.digest);
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
            let job = store.claim(2).unwrap().unwrap();
            store.finish_scan(&job.digest, "{}", &result(), 3).unwrap();
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
        let job = store.claim(2).unwrap().unwrap();
        store.finish_scan(&job.digest, "{}", &result(), 3).unwrap();

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
        assert_eq!(
            applied,
            Applied::Accepted {
                queued: 0,
                recorded: 2,
                forgotten: 0
            }
        );
        assert_eq!(
            tags(&store, &a.digest),
            [("mirror/app".into(), Some("1".into()))]
        );
        assert_eq!(
            store.claim(6).unwrap().unwrap(),
            Job {
                digest: b.digest.clone(),
                registry: b.registry.clone(),
                repository: "team/app".into(),
            }
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
        assert!(matches!(applied, Applied::Accepted { forgotten: 2, .. }));
        store.finish_scan(&b.digest, "{}", &result(), 8).unwrap();
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
        assert_eq!(
            applied,
            Applied::Accepted {
                queued: 1,
                recorded: 3,
                forgotten: 1
            }
        );
        let image = store.image(&a.digest).unwrap().unwrap();
        assert_eq!((image.state, image.scans), (ImageState::Queued, 0));
    }

    #[test]
    fn a_version_1_store_is_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join("watch.sqlite")).unwrap();
            conn.execute_batch(&SCHEMA.replace("    policy TEXT,\n", ""))
                .unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let a = event(Kind::Push, 'a', "x", None);
        store
            .apply(&images(std::slice::from_ref(&a)), 10, 1)
            .unwrap();
        let job = store.claim(2).unwrap().unwrap();
        store.finish_scan(&job.digest, "{}", &result(), 3).unwrap();
        assert_eq!(
            store.image(&a.digest).unwrap().unwrap().policy.as_deref(),
            Some("p1")
        );
        drop(store);
        let conn = Connection::open(dir.path().join("watch.sqlite")).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
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
