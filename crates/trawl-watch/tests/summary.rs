//! The summary's counters (issue 14) against the aggregate over the rows
//! (`Store::summary_recount`, the query the summary ran before): after
//! random sequences of pushes and scans, rescans, tag moves, deletions
//! and suppressions, on SQLite and a real PostgreSQL, unscoped and scoped;
//! and two PostgreSQL writers at once, folding as they go.

#[macro_use]
mod support;

use serde_json::json;
use support::{Backend, open};
use trawl::Report;
use trawl_watch::events::{Deleted, Deletion, ImageEvent, Kind, Recorded};
use trawl_watch::store::{MatchResult, MatchTarget, Rematched, RescanPlan, Scope};
use trawl_watch::{Store, StoreLocation};

/// splitmix64: a fixed sequence per seed, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const REPOSITORIES: &[&str] = &[
    "team-a",
    "team-a/app",
    "team-a/lib",
    "team-ab/x",
    "team-b/app",
    "team-b/shared",
];
const TAGS: &[Option<&str>] = &[Some("1"), Some("2"), Some("latest"), None];
const PACKAGES: &[&str] = &["libssl3", "openssl", "zlib1g", "bash", "util-linux"];
const SEVERITIES: &[&str] = &["critical", "high", "medium", "low", "negligible"];

fn digest(n: usize) -> String {
    format!("sha256:{n:064x}")
}

/// A report of up to six findings (a package may come twice) and up to two
/// suppressed ones.
fn report(rng: &mut Rng) -> Report {
    let finding = |rng: &mut Rng, i: usize| {
        let fixed = rng.below(2) == 0;
        let severity = *rng.pick(SEVERITIES);
        json!({
            "id": format!("CVE-2099-{:04}", rng.below(9) + i), "aliases": [],
            "package": rng.pick(PACKAGES), "installed_version": "1.0-1",
            "source_name": "src", "source_version": "1.0-1",
            "fixed_version": fixed.then_some("1.0-2"),
            "fix_state": if fixed { "fixed" } else if severity == "medium" { "will_not_fix" } else { "unfixed" },
            "severity": severity, "severity_source": "CVSS_V3", "ecosystem": "Debian:12",
            "layer": null, "remediation": "upgrade"
        })
    };
    let findings: Vec<_> = (0..rng.below(7)).map(|i| finding(rng, i)).collect();
    let suppressed: Vec<_> = (0..rng.below(3)).map(|i| finding(rng, i)).collect();
    let verdict = if findings.is_empty() {
        "healthy"
    } else {
        "unhealthy"
    };
    serde_json::from_value(json!({
        "schema_version": 1, "source": "registry:r/x@sha256:aa",
        "image": {"manifest_digest": null, "layers": [], "diff_ids": []},
        "os": null, "verdict": verdict, "verdict_reason": "test",
        "ecosystem": "Debian:12",
        "summary": {"packages": 2, "findings": findings.len(), "fixable": 0,
                    "suppressed": suppressed.len(), "by_severity": {}, "by_fix_state": {}},
        "remediation": [], "packages": [],
        "findings": findings, "suppressed": suppressed, "warnings": [],
    }))
    .expect("a report")
}

/// A report of the first `n` of a fixed list of findings (so that two
/// differ by a few keys of their counts).
fn fixed_report(n: usize) -> Report {
    let findings: Vec<_> = (0..n)
        .map(|i| {
            let fixed = i % 2 == 0;
            json!({
                "id": format!("CVE-2098-{i:04}"), "aliases": [],
                "package": PACKAGES[i % PACKAGES.len()], "installed_version": "1.0-1",
                "source_name": "src", "source_version": "1.0-1",
                "fixed_version": fixed.then_some("1.0-2"),
                "fix_state": if fixed { "fixed" } else { "unfixed" },
                "severity": SEVERITIES[i % SEVERITIES.len()], "severity_source": "CVSS_V3",
                "ecosystem": "Debian:12", "layer": null, "remediation": "upgrade"
            })
        })
        .collect();
    serde_json::from_value(json!({
        "schema_version": 1, "source": "registry:r/x@sha256:aa",
        "image": {"manifest_digest": null, "layers": [], "diff_ids": []},
        "os": null, "verdict": if n == 0 { "healthy" } else { "unhealthy" },
        "verdict_reason": "test", "ecosystem": "Debian:12",
        "summary": {"packages": 2, "findings": n, "fixable": 0,
                    "suppressed": 0, "by_severity": {}, "by_fix_state": {}},
        "remediation": [], "packages": [],
        "findings": findings, "suppressed": [], "warnings": [],
    }))
    .expect("a report")
}

/// Rescans every scanned image against target `db`, each with `report`.
async fn rescan_with(store: &Store, owner: &str, db: u64, report: &Report) {
    let planned = rescan_each(store, owner, db, || report.clone()).await;
    assert!(planned.is_some(), "a rescan against db{db} was planned");
}

fn target(n: u64) -> MatchTarget {
    MatchTarget {
        advisory_db: format!("db{n}"),
        policy: "p1".into(),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn now_ms() -> i64 {
    now() * 1000
}

/// The scopes compared: everything, prefixes, `?repository=`, both.
fn scopes() -> Vec<(Scope, Option<&'static str>)> {
    vec![
        (Scope::All, None),
        (Scope::prefixes(["team-a"]).unwrap(), None),
        (Scope::prefixes(["team-b", "team-ab/"]).unwrap(), None),
        (Scope::All, Some("team-a/app")),
        (Scope::All, Some("team-b")),
        (Scope::prefixes(["team-a"]).unwrap(), Some("team-a/lib")),
        (Scope::prefixes(["nobody"]).unwrap(), None),
    ]
}

async fn assert_counts(store: &Store, context: &str) {
    for (scope, repository) in scopes() {
        let counted = store.summary(&scope, repository).await.unwrap();
        let recounted = store.summary_recount(&scope, repository).await.unwrap();
        assert_eq!(
            counted, recounted,
            "{context}: scope {scope:?}, repository {repository:?}"
        );
    }
}

/// One random write: a push (maybe moving a tag) with its scan or not, a
/// pull, a tag or manifest deleted, or a rescan of everything (new reports,
/// new suppressions). Returns what it did.
async fn step(store: &Store, rng: &mut Rng, images: usize, owner: &str, db: &mut u64) -> String {
    let registry = "127.0.0.1:5000".to_string();
    let media_type = "application/vnd.oci.image.manifest.v1+json".to_string();
    let what = rng.below(10);
    match what {
        0..=4 => {
            let d = digest(rng.below(images));
            let repository = rng.pick(REPOSITORIES).to_string();
            let tag = rng.pick(TAGS).map(str::to_string);
            let event = ImageEvent {
                kind: Kind::Push,
                digest: d.clone(),
                registry,
                repository: repository.clone(),
                tag: tag.clone(),
                media_type,
                at: now(),
            };
            store
                .apply(vec![Recorded::Image(event)], 1000, now())
                .await
                .unwrap();
            // Most pushes are scanned; some wait (no verdict yet).
            if rng.below(4) != 0 {
                scan_all(store, rng, owner).await;
            }
            format!("push {d} {repository}:{tag:?}")
        }
        5 => {
            let d = digest(rng.below(images));
            let repository = rng.pick(REPOSITORIES).to_string();
            let event = ImageEvent {
                kind: Kind::Pull,
                digest: d.clone(),
                registry,
                repository: repository.clone(),
                tag: None,
                media_type,
                at: now(),
            };
            store
                .apply(vec![Recorded::Image(event)], 1000, now())
                .await
                .unwrap();
            format!("pull {d} {repository}")
        }
        6 => {
            let repository = rng.pick(REPOSITORIES).to_string();
            let tag = rng.pick(&TAGS[..3]).unwrap().to_string();
            let deletion = Deletion {
                repository: repository.clone(),
                deleted: Deleted::Tag(tag.clone()),
            };
            store
                .apply(vec![Recorded::Delete(deletion)], 1000, now())
                .await
                .unwrap();
            format!("delete tag {repository}:{tag}")
        }
        7 => {
            let d = digest(rng.below(images));
            let repository = rng.pick(REPOSITORIES).to_string();
            let deletion = Deletion {
                repository: repository.clone(),
                deleted: Deleted::Manifest(d.clone()),
            };
            store
                .apply(vec![Recorded::Delete(deletion)], 1000, now())
                .await
                .unwrap();
            format!("delete manifest {repository}@{d}")
        }
        _ => {
            *db += 1;
            let n = rescan(store, rng, owner, *db).await;
            format!("rescan db{db}: {n} images")
        }
    }
}

/// Scans every queued job with a random report.
async fn scan_all(store: &Store, rng: &mut Rng, owner: &str) {
    while let Some(job) = store
        .claim(owner, now_ms(), now_ms() + 60_000)
        .await
        .unwrap()
    {
        let result = MatchResult::new(&report(rng), &target(0)).unwrap();
        store
            .finish_scan(&job.digest, job.token, "{}".into(), result, now())
            .await
            .unwrap();
    }
}

/// Rescans every scanned image against a new target, with new reports.
async fn rescan(store: &Store, rng: &mut Rng, owner: &str, db: u64) -> usize {
    rescan_each(store, owner, db, || report(rng))
        .await
        .unwrap_or(0)
}

/// Rescans every scanned image against target `db`, each with the next
/// of `reports`: how many were written, or None when no rescan was
/// planned (nothing to rescan, or db already planned).
async fn rescan_each(
    store: &Store,
    owner: &str,
    db: u64,
    mut reports: impl FnMut() -> Report,
) -> Option<usize> {
    let target = target(db);
    match store.plan_rescan(&target, 0, 3, false).await.unwrap() {
        RescanPlan::Planned { .. } => {}
        _ => return None,
    }
    let mut written = 0;
    while let Some(batch) = store
        .claim_rescan(owner, &target, now_ms(), now_ms() + 60_000)
        .await
        .unwrap()
    {
        let results = batch
            .digests
            .iter()
            .map(|d| Rematched {
                digest: d.clone(),
                previous_sha256: None,
                result: MatchResult::new(&reports(), &target).unwrap(),
            })
            .collect();
        written += store.finish_rescan(&batch, results, now()).await.unwrap();
    }
    Some(written)
}

/// A fresh store and, on PostgreSQL, its database's name (for `psql`).
fn location(backend: Backend, name: &str) -> (StoreLocation, Option<String>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    match backend {
        Backend::Sqlite => (
            StoreLocation::sqlite(dir.path().join("watch.sqlite")),
            None,
            dir,
        ),
        Backend::Postgres => {
            let url = support::postgres::Postgres::get().database(name);
            let db = url.rsplit('/').next().unwrap().to_string();
            (url.parse().unwrap(), Some(db), dir)
        }
    }
}

fn psql(db: &str, sql: &str) -> String {
    support::postgres::Postgres::get().psql(db, sql)
}

async fn random_writes_keep_the_counts(backend: Backend) {
    let (location, db, _dir) = location(backend, "counts");
    let store = open(&location).await;
    assert_counts(&store, "empty").await;
    let mut target_n = 0;
    for seed in 1..=3u64 {
        let mut rng = Rng(seed);
        for i in 0..60 {
            let what = step(&store, &mut rng, 10, "tester", &mut target_n).await;
            assert_counts(&store, &format!("seed {seed}, step {i}: {what}")).await;
            // PostgreSQL: fold the deltas now and then, as a writer would.
            if let Some(db) = &db
                && i % 17 == 16
            {
                assert_eq!(psql(db, "SELECT summary_fold()"), "t");
                assert_eq!(psql(db, "SELECT count(*) FROM summary_deltas"), "0");
                assert_counts(&store, &format!("seed {seed}, step {i}, folded")).await;
            }
        }
    }
    let summary = store.summary(&Scope::All, None).await.unwrap();
    assert!(summary.images > 0 && summary.findings > 0, "{summary:?}");
    if let Some(db) = &db {
        assert_image_counts(db, "after the random writes");
    }
}

/// A store written before the counters existed is back-filled: the rows
/// are written, the counters dropped and rebuilt by the migration's SQL.
async fn a_migrated_store_is_backfilled(backend: Backend) {
    let (location, db, dir) = location(backend, "backfill");
    {
        let store = open(&location).await;
        let mut rng = Rng(42);
        let mut target_n = 0;
        for _ in 0..40 {
            step(&store, &mut rng, 8, "tester", &mut target_n).await;
        }
        assert_counts(&store, "before").await;
    }
    // Back to the schema before the counters: drop them and the version.
    let drop = "DROP TABLE summary_counts; DROP TABLE summary_deltas;
                DROP TABLE summary_images; DROP TABLE summary_packages;";
    match &db {
        Some(db) => {
            psql(
                db,
                &format!(
                    "{}{}",
                    support::PG_WITHOUT_NORMALIZED,
                    support::PG_WITHOUT_COUNTERS
                ),
            );
        }
        None => {
            let conn = rusqlite::Connection::open(dir.path().join("watch.sqlite")).unwrap();
            let triggers: Vec<String> = conn
                .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'summary_%'")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(triggers.len() >= 10, "{triggers:?}");
            for t in triggers {
                conn.execute_batch(&format!("DROP TRIGGER {t}")).unwrap();
            }
            conn.execute_batch(&format!("{drop} PRAGMA user_version = 7;"))
                .unwrap();
        }
    }
    let store = open(&location).await;
    assert_counts(&store, "migrated").await;
    if let Some(db) = &db {
        assert_image_counts(db, "back-filled");
    }
    let mut rng = Rng(43);
    let mut target_n = 100;
    for i in 0..20 {
        let what = step(&store, &mut rng, 8, "tester", &mut target_n).await;
        assert_counts(&store, &format!("after migration, step {i}: {what}")).await;
    }
}

/// PostgreSQL's version 7 alone: a store whose counters were kept from
/// the finding rows (version 6's triggers; the counters are as those left
/// them) gains `images.counts`, back-filled from the rows, and the
/// counters stay exact as the images' results change after it (every
/// change is new counts less the back-filled ones).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_version_7_backfills_image_counts() {
    let (location, db, _dir) = location(Backend::Postgres, "counts7");
    let db = db.unwrap();
    random_history(&location, 71, 40).await;
    // Back to version 6 as far as version 7 can tell: no column, no
    // triggers on images (its deltas stay: version 6 left them); and
    // without version 8's layout (these images' rows are all their own).
    psql(&db, support::PG_WITHOUT_NORMALIZED);
    psql(
        &db,
        "DROP TRIGGER summary_images_insert ON images;
         DROP TRIGGER summary_images_delete ON images;
         DROP TRIGGER summary_images_update ON images;
         DROP FUNCTION summary_images_inserted(), summary_images_deleted(),
             summary_images_updated(), summary_expand(text, jsonb);
         ALTER TABLE images DROP COLUMN counts;
         DELETE FROM trawl_watch_migrations WHERE version = 7;",
    );
    let store = open(&location).await;
    assert_image_counts(&db, "back-filled by version 7");
    assert_counts(&store, "after version 7").await;
    let mut rng = Rng(72);
    let mut target_n = 500;
    for i in 0..30 {
        let what = step(&store, &mut rng, 8, "tester", &mut target_n).await;
        assert_counts(&store, &format!("after version 7, step {i}: {what}")).await;
    }
    assert_eq!(psql(&db, "SELECT summary_fold()"), "t");
    assert_counts(&store, "after version 7, folded").await;
    assert_image_counts(&db, "after version 7's steps");
}

/// Two processes' stores (two pools) writing at once, with overlapping
/// images and the same repositories, while deltas are folded: no deadlock,
/// no error, no count lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_postgres_writers_lose_nothing() {
    let (location, db, _dir) = location(Backend::Postgres, "concurrent");
    let db = db.unwrap();
    let first = open(&location).await;
    let second = open(&location).await;
    let writer = |store: Store, seed: u64, owner: &'static str| {
        tokio::spawn(async move {
            let mut rng = Rng(seed);
            let mut target_n = seed * 1000;
            for _ in 0..80 {
                step(&store, &mut rng, 12, owner, &mut target_n).await;
            }
        })
    };
    let folder = {
        let db = db.clone();
        tokio::task::spawn_blocking(move || {
            for _ in 0..40 {
                psql(&db, "SELECT summary_fold()");
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
        })
    };
    let (a, b, f) = tokio::join!(
        writer(first.clone(), 7, "one"),
        writer(second.clone(), 8, "two"),
        folder
    );
    a.unwrap();
    b.unwrap();
    f.unwrap();
    assert_counts(&first, "after two writers").await;
    psql(&db, "SELECT summary_fold()");
    assert_counts(&second, "after two writers, folded").await;
    // Every image's aggregate is exact too.
    assert_image_counts(&db, "after two writers");
}

/// PostgreSQL's version 11: a rescan says how each image's `counts`
/// changes (`counts_change`) and the trigger takes the deltas from it; a
/// store migrated from version 10 (with its counters, deltas and images)
/// gains the column, and the counters stay exact. A change that is missing,
/// stale or wrong is not believed: the two documents are compared whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_counts_change_is_checked() {
    let (location, db, _dir) = location(Backend::Postgres, "change");
    let db = db.unwrap();
    random_history(&location, 101, 30).await;
    // Back to version 10: no column (version 11's trigger is replaced when
    // the store opens again, before anything is written; 12, storage
    // settings, and 13, the trigger rewritten, apply again after it).
    psql(
        &db,
        "ALTER TABLE images DROP COLUMN counts_change;
         DELETE FROM trawl_watch_migrations WHERE version IN (11, 12, 13);",
    );
    let store = open(&location).await;
    assert_counts(&store, "after version 11").await;
    let mut rng = Rng(102);
    let mut target_n = 200;
    let mut rescans = 0;
    for i in 0..40 {
        let what = step(&store, &mut rng, 8, "tester", &mut target_n).await;
        rescans += usize::from(what.starts_with("rescan"));
        assert_counts(&store, &format!("after version 11, step {i}: {what}")).await;
    }
    assert!(rescans > 0, "some step rescanned");
    // Rescans that change a few keys of every image's counts say how (and
    // the trigger takes it: the counters stay exact); the random ones
    // above change most keys, and leave it to the documents.
    rescan_with(&store, "tester", 900, &fixed_report(5)).await;
    assert_counts(&store, "rescanned with five findings").await;
    rescan_with(&store, "tester", 901, &fixed_report(6)).await;
    assert_counts(&store, "rescanned with one finding more").await;
    let told = psql(
        &db,
        "SELECT count(*) FROM images
         WHERE counts_change->'now' = '{\"s5|unfixed\": 1, \"plibssl3\": 2}'",
    );
    assert_ne!(told, "0", "rescans wrote counts_change");
    // An image takes other counts and back, each time with a change that does not hold (stale:
    // the column left as it was; empty; not a document; none; its new
    // counts right but its old ones wrong, or left out), and with one that
    // holds. The counters must follow the documents.
    let a = psql(
        &db,
        "SELECT min(digest) FROM images WHERE counts <> '{}' AND counts_change IS NOT NULL",
    );
    let b = r#"'{"s5|fixed": 3, "s1|unfixed": 1, "pbash": 2, "pzlib1g": 2}'::jsonb"#;
    let a_counts = psql(
        &db,
        &format!("SELECT counts FROM images WHERE digest = '{a}'"),
    );
    // Image `a` takes the counts `counts` (SQL), with the change `change`.
    let set = |counts: &str, change: &str| {
        format!(
            "UPDATE images AS i SET counts = n.counts, counts_change = {change}
             FROM (SELECT {counts} AS counts) AS n WHERE i.digest = '{a}';"
        )
    };
    // The change from `i.counts` to `n.counts`, its old counts `was`.
    let change = |was: &str| {
        format!(
            "jsonb_build_object(
                 'was', (SELECT jsonb_object_agg(k, {was})
                         FROM jsonb_object_keys(i.counts || n.counts) AS k
                         WHERE i.counts->k IS DISTINCT FROM n.counts->k),
                 'now', (SELECT jsonb_object_agg(k, n.counts->k)
                         FROM jsonb_object_keys(i.counts || n.counts) AS k
                         WHERE i.counts->k IS DISTINCT FROM n.counts->k))"
        )
    };
    let holds = change("i.counts->k");
    for (i, claim) in [
        "i.counts_change".to_string(),
        "'{\"was\": {}, \"now\": {}}'".to_string(),
        "'[1, 2]'".to_string(),
        "NULL".to_string(),
        change("to_jsonb(coalesce((i.counts->>k)::integer, 0) + 1000)"),
        format!("jsonb_set({holds}, '{{was}}', '{{}}')"),
        holds.clone(),
    ]
    .iter()
    .enumerate()
    {
        psql(
            &db,
            &format!(
                "{}{}",
                set(b, claim),
                set(&format!("'{a_counts}'::jsonb"), claim)
            ),
        );
        assert_counts(
            &store,
            &format!("counts moved and back, change {i}: {claim}"),
        )
        .await;
    }
    assert_eq!(psql(&db, "SELECT summary_fold()"), "t");
    assert_counts(&store, "folded").await;
    assert_image_counts(&db, "after the changes");
    // The counters by kind, the bulk in a partition without an index on
    // the counts (updated in place); the fold leaves no row at zero.
    assert_eq!(
        psql(
            &db,
            "SELECT string_agg(c.relname || ':' || pg_get_expr(c.relpartbound, c.oid), ' '
                               ORDER BY c.relname)
             FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'summary_counts'::regclass"
        ),
        "summary_counts_ranked:FOR VALUES IN ('P', 'r') summary_counts_rest:DEFAULT"
    );
    assert_eq!(
        psql(
            &db,
            "SELECT string_agg(indexname, ' ' ORDER BY indexname) FROM pg_indexes
             WHERE tablename = 'summary_counts_rest'"
        ),
        "summary_counts_rest_pkey"
    );
    assert_eq!(
        psql(
            &db,
            "SELECT count(*) FROM summary_counts WHERE images = 0 AND findings = 0"
        ),
        "0"
    );
}

/// PostgreSQL: a rescan's last batch folds the rescan's deltas and
/// vacuums their table (a summary reads it whole, dead rows included), and
/// the counters stay exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rescan_end_folds_and_vacuums_the_deltas() {
    let (location, db, _dir) = location(Backend::Postgres, "vacuum");
    let db = db.unwrap();
    let store = open(&location).await;
    let mut rng = Rng(11);
    let mut target_n = 0;
    while psql(&db, "SELECT count(*) FROM images WHERE verdict IS NOT NULL") == "0" {
        step(&store, &mut rng, 8, "tester", &mut target_n).await;
    }
    let vacuums = "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'summary_deltas'";
    let before: u64 = psql(&db, vacuums).parse().unwrap();
    rescan_with(&store, "tester", 900, &fixed_report(5)).await;
    assert_eq!(psql(&db, "SELECT count(*) FROM summary_deltas"), "0");
    let after: u64 = psql(&db, vacuums).parse().unwrap();
    assert!(
        after > before,
        "summary_deltas vacuumed ({before} -> {after})"
    );
    assert_counts(&store, "after the rescan").await;
}

/// A store at `location` after `steps` random steps (8 images), its
/// counters checked, then closed (a test then takes its schema back).
async fn random_history(location: &StoreLocation, seed: u64, steps: usize) {
    let store = open(location).await;
    let mut rng = Rng(seed);
    let mut target_n = 0;
    for _ in 0..steps {
        step(&store, &mut rng, 8, "tester", &mut target_n).await;
    }
    assert_counts(&store, "before").await;
}

/// PostgreSQL: every image's `counts` is the aggregate of its finding
/// rows that count (per severity|fix_state and per package).
fn assert_image_counts(db: &str, context: &str) {
    let differ = psql(
        db,
        "SELECT count(*) FROM images AS i
         FULL JOIN (SELECT digest, jsonb_object_agg(k, n) AS counts
                    FROM (SELECT digest, 's' || severity || '|' || fix_state AS k, count(*) AS n
                          FROM findings WHERE NOT suppressed GROUP BY digest, severity, fix_state
                          UNION ALL
                          SELECT digest, 'p' || package, count(*)
                          FROM findings WHERE NOT suppressed GROUP BY digest, package) AS f
                    GROUP BY digest) AS a ON a.digest = i.digest
         WHERE i.counts IS DISTINCT FROM coalesce(a.counts, '{}')",
    );
    assert_eq!(
        differ, "0",
        "images whose counts are not their rows', {context}"
    );
    let counted = psql(db, "SELECT count(*) FROM images WHERE counts <> '{}'");
    assert_ne!(counted, "0", "some image has findings, {context}");
}

/// PostgreSQL folds the deltas at the commit of a transaction that wrote
/// one numbered a multiple of 8,192 (2,048 before version 12): after the
/// transaction's own deltas, so ones that cancel never reach the counters.
/// Each transaction below writes at least 8,192.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_folds_deltas_at_commit() {
    let (location, db, _dir) = location(Backend::Postgres, "fold");
    let db = db.unwrap();
    let store = open(&location).await;
    let mut rng = Rng(5);
    let mut target_n = 0;
    for _ in 0..10 {
        step(&store, &mut rng, 6, "tester", &mut target_n).await;
    }
    let before = store.summary(&Scope::All, None).await.unwrap();
    let counts =
        "SELECT count(*) || ' ' || coalesce(sum(images), 0) || ' ' || coalesce(sum(findings), 0)
                  FROM summary_counts";
    psql(&db, "SELECT summary_fold()");
    let counted = psql(&db, counts);
    assert_ne!(counted, "0 0 0");
    // 5,000 deltas that cancel, then as many that add up, in one transaction.
    psql(
        &db,
        "BEGIN;
         INSERT INTO summary_deltas (kind, repository, key, images, findings)
             SELECT 'P', '', 'pkg' || (g % 100), 1, 2 FROM generate_series(1, 5000) g;
         INSERT INTO summary_deltas (kind, repository, key, images, findings)
             SELECT 'P', '', 'pkg' || (g % 100), -1, -2 FROM generate_series(1, 5000) g;
         COMMIT;",
    );
    assert_eq!(psql(&db, "SELECT count(*) FROM summary_deltas"), "0");
    assert_eq!(
        psql(&db, counts),
        counted,
        "cancelled deltas left no counter"
    );
    assert_eq!(store.summary(&Scope::All, None).await.unwrap(), before);
    psql(
        &db,
        "INSERT INTO summary_deltas (kind, repository, key, images, findings)
             SELECT 'S', '', '5|fixed', 0, 1 FROM generate_series(1, 8192) g;",
    );
    assert_eq!(psql(&db, "SELECT count(*) FROM summary_deltas"), "0");
    let after = store.summary(&Scope::All, None).await.unwrap();
    assert_eq!(after.findings, before.findings + 8192);
    // Fewer than 8,192 may not reach a multiple: the fold waits for one.
    assert_eq!(
        psql(
            &db,
            "SELECT pg_get_triggerdef(oid) LIKE '%new.seq % (8192)%'
             FROM pg_trigger WHERE tgname = 'summary_fold'"
        ),
        "t"
    );
}

both!(
    random_writes_keep_the_counts,
    a_migrated_store_is_backfilled
);
