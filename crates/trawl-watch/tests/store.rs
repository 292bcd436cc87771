//! The store's behaviour, the same tests against SQLite and against a real
//! PostgreSQL (a fresh cluster for this test process, a database per test;
//! see `support/postgres.rs`): events, back-pressure, the queue and its
//! leases, crash charging, findings rows, shared rescans, migrations.

#[macro_use]
mod support;

use serde_json::json;
use support::{Backend, fresh, open};
use trawl::Report;
use trawl_watch::events::{Deleted, Deletion, ImageEvent, Kind, Recorded};
use trawl_watch::store::{
    Applied, ImageState, Job, JobStatus, MAX_ATTEMPTS, MatchResult, MatchTarget, Recovered,
    Rematched, RescanPlan,
};
use trawl_watch::{Store, StoreError};

both!(
    pushes_coalesce_and_tags_move,
    back_pressure_is_per_event_and_retries_are_exact,
    a_crash_is_charged_only_to_a_job_running_alone,
    jobs_claimed_together_are_not_alone,
    stale_claims_store_nothing,
    deletes_untag_and_forget_in_order,
    findings_are_rows,
    rescans_write_only_what_changed,
    rescans_are_planned_recent_and_stale,
    rescan_batches_are_shared_and_written_once,
    a_newer_target_supersedes_an_older_one,
    scans_and_failures_write_events_with_their_result,
    a_database_update_gives_one_verdict_change_per_image,
    deliveries_are_leased_retried_and_pruned,
);

fn digest(byte: char) -> String {
    format!("sha256:{}", byte.to_string().repeat(64))
}

fn event(kind: Kind, digest_byte: char, repository: &str, tag: Option<&str>) -> ImageEvent {
    ImageEvent {
        kind,
        digest: digest(digest_byte),
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

fn deletion(repository: &str, deleted: Deleted) -> Recorded {
    Recorded::Delete(Deletion {
        repository: repository.into(),
        deleted,
    })
}

fn target(db: &str, policy: &str) -> MatchTarget {
    MatchTarget {
        advisory_db: db.into(),
        policy: policy.into(),
    }
}

/// A report as `scan --format json` writes it: two findings that count
/// (one with an alias), one suppressed; `fixed` decides the first one's
/// fixed version, so reports differ by it.
fn report(fixed: &str) -> Report {
    let finding = |id: &str, aliases: &[&str], package: &str, severity: &str, fix: Option<&str>| {
        json!({
            "id": id, "aliases": aliases, "package": package, "installed_version": "1.0-1",
            "source_name": format!("{package}-src"), "source_version": "1.0-1",
            "fixed_version": fix, "fix_state": if fix.is_some() { "fixed" } else { "unfixed" },
            "severity": severity, "severity_source": "CVSS_V3", "ecosystem": "Debian:12",
            "layer": "sha256:1111", "remediation": "upgrade"
        })
    };
    serde_json::from_value(json!({
        "schema_version": 1, "source": "registry:r/x@sha256:aa",
        "image": {"manifest_digest": null, "layers": [], "diff_ids": []},
        "os": null, "verdict": "unhealthy", "verdict_reason": "2 findings",
        "ecosystem": "Debian:12",
        "summary": {"packages": 2, "findings": 2, "fixable": 1, "suppressed": 1,
                    "by_severity": {}, "by_fix_state": {}},
        "remediation": [], "packages": [],
        "findings": [
            finding("CVE-2099-0001", &["DSA-9999-1", "GHSA-abcd-efgh-ijkl"], "libssl3", "critical", Some(fixed)),
            finding("TRAWL-LOW", &[], "util-linux", "low", None),
        ],
        "suppressed": [finding("CVE-2099-0002", &[], "bash", "medium", None)],
        "warnings": [],
    }))
    .expect("a report")
}

fn result(db: &str, policy: &str) -> MatchResult {
    MatchResult::new(&report("1.0-2"), &target(db, policy)).unwrap()
}

/// The default result: database `db1`, policy `p1`.
fn r1() -> MatchResult {
    result("db1", "p1")
}

/// (id, place in its image's report) of the first 10 findings of the
/// registry-wide page.
async fn places(store: &Store) -> Vec<(String, i64)> {
    let page = store
        .findings_page(&Default::default(), None, 10)
        .await
        .unwrap();
    page.findings
        .iter()
        .map(|f| (f.finding.id.clone(), f.ord))
        .collect()
}

async fn tags(store: &Store, digest: &str) -> Vec<(String, Option<String>)> {
    store.image(digest).await.unwrap().unwrap().tags
}

async fn job_status(store: &Store, digest: &str) -> Option<JobStatus> {
    store.image(digest).await.unwrap().unwrap().job
}

const OWNER: &str = "test-owner";

/// Claims for [`OWNER`] at second `now`, leased for a minute.
async fn claim(store: &Store, now: i64) -> Option<Job> {
    store
        .claim(OWNER, now * 1000, now * 1000 + 60_000)
        .await
        .unwrap()
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

async fn pushes_coalesce_and_tags_move(backend: Backend) {
    let (location, _dir) = fresh(backend, "coalesce");
    let store = open(&location).await;
    let a = event(Kind::Push, 'a', "team/app", Some("1"));
    // The same digest twice in one batch, and again later: one job.
    assert_eq!(
        store
            .apply(images(&[a.clone(), a.clone()]), 10, 1)
            .await
            .unwrap(),
        accepted(2, 1, 0, 1)
    );
    assert_eq!(
        store
            .apply(images(std::slice::from_ref(&a)), 10, 2)
            .await
            .unwrap(),
        accepted(1, 0, 0, 1)
    );
    let job = claim(&store, 3).await.unwrap();
    assert_eq!(job.digest, a.digest);
    assert_eq!(
        store.image(&a.digest).await.unwrap().unwrap().state,
        ImageState::Scanning
    );
    // Running: not queued again.
    assert_eq!(
        store
            .apply(images(std::slice::from_ref(&a)), 10, 4)
            .await
            .unwrap(),
        accepted(1, 0, 0, 0)
    );
    assert!(
        store
            .finish_scan(&a.digest, job.token, "{}".into(), r1(), 5)
            .await
            .unwrap()
    );
    // Scanned: a push records the tag only.
    let mut a2 = a.clone();
    a2.tag = Some("2".into());
    assert_eq!(
        store.apply(images(&[a2]), 10, 6).await.unwrap(),
        accepted(1, 0, 0, 0)
    );
    assert_eq!(claim(&store, 7).await, None);
    let image = store.image(&a.digest).await.unwrap().unwrap();
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
    store.apply(images(&[b1, b2.clone()]), 10, 8).await.unwrap();
    assert_eq!(tags(&store, &a.digest).await, [("team/app".into(), None)]);
    assert_eq!(tags(&store, &b2.digest).await.len(), 2);
}

async fn back_pressure_is_per_event_and_retries_are_exact(backend: Backend) {
    let (location, _dir) = fresh(backend, "pressure");
    let store = open(&location).await;
    let pushes: Vec<ImageEvent> = "abcdef"
        .chars()
        .map(|c| event(Kind::Push, c, "x", Some("t")))
        .collect();
    // One envelope of six new images, room for four: the first four are
    // applied, the rest (and nothing of them) deferred.
    let applied = store.apply(images(&pushes), 4, 1).await.unwrap();
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
    assert!(store.image(&pushes[4].digest).await.unwrap().is_none());
    // (Tag `t` moved along the envelope: the last applied push has it.)
    assert_eq!(
        tags(&store, &pushes[3].digest).await,
        [("x".into(), Some("t".into()))]
    );
    // The registry sends it again whole: the applied part changes nothing.
    assert_eq!(
        store.apply(images(&pushes), 4, 2).await.unwrap(),
        Applied {
            queued: 0,
            ..applied
        }
    );
    assert_eq!(store.queue_lengths().await.unwrap(), (4, 0));
    // A worker takes one: the next event fits, the last does not.
    let job = claim(&store, 3).await.unwrap();
    let applied = store.apply(images(&pushes), 4, 4).await.unwrap();
    assert_eq!(
        (applied.recorded, applied.queued, applied.deferred),
        (5, 1, 1)
    );
    store
        .finish_scan(&job.digest, job.token, "{}".into(), r1(), 5)
        .await
        .unwrap();
    // A pull of a known image needs no scan: applied even when full,
    // unless an event before it is deferred.
    let pull = event(Kind::Pull, 'a', "x", None);
    let applied = store
        .apply(images(std::slice::from_ref(&pull)), 4, 6)
        .await
        .unwrap();
    assert_eq!((applied.recorded, applied.deferred), (1, 0));
    assert_eq!(
        store
            .image(&pushes[0].digest)
            .await
            .unwrap()
            .unwrap()
            .last_pulled,
        Some(100)
    );
    let mut late = pull.clone();
    late.at = 200;
    let applied = store
        .apply(images(&[pushes[5].clone(), late]), 4, 7)
        .await
        .unwrap();
    assert_eq!((applied.recorded, applied.deferred), (0, 2));
    assert_eq!(
        store
            .image(&pushes[0].digest)
            .await
            .unwrap()
            .unwrap()
            .last_pulled,
        Some(100)
    );
    // A delete frees room for the pushes after it in the same envelope
    // (one queued job goes, one comes: net, nothing more is queued).
    let envelope = vec![
        deletion("x", Deleted::Manifest(pushes[1].digest.clone())),
        Recorded::Image(pushes[5].clone()),
    ];
    let applied = store.apply(envelope, 4, 8).await.unwrap();
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
        store.image(&pushes[5].digest).await.unwrap().unwrap().state,
        ImageState::Queued
    );
}

async fn a_crash_is_charged_only_to_a_job_running_alone(backend: Backend) {
    let (location, _dir) = fresh(backend, "crash");
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
        let store = open(&location).await;
        store
            .apply(images(&[a.clone(), b.clone(), c.clone()]), 10, 1)
            .await
            .unwrap();
        // Three running in one process when it dies.
        for _ in 0..3 {
            claim(&store, 2).await.unwrap();
        }
    }
    // The next process: none is charged; each runs alone.
    let store = open(&location).await;
    assert_eq!(
        store.recover_orphans("next", true, 3_000).await.unwrap(),
        Recovered {
            jobs: 3,
            charged: 0
        }
    );
    for e in [&a, &b, &c] {
        assert_eq!(job_status(&store, &e.digest).await, status(0, true));
    }
    let first = store.claim("next", 4_000, 64_000).await.unwrap().unwrap();
    assert_eq!(first.digest, a.digest);
    assert_eq!(
        store.claim("next", 4_000, 64_000).await.unwrap(),
        None,
        "a runs alone"
    );
    // Another process takes the next one, alone in it.
    let other = store.claim("other", 4_000, 5_000).await.unwrap().unwrap();
    assert_eq!(other.digest, b.digest);
    assert!(
        store
            .heartbeat(&b.digest, other.token, 6_000)
            .await
            .unwrap()
    );
    // "other" dies: its lease expires at 6 s, and b was alone in it.
    assert_eq!(
        store.recover_orphans("next", false, 5_500).await.unwrap(),
        Recovered::default()
    );
    assert_eq!(
        store.recover_orphans("next", false, 6_001).await.unwrap(),
        Recovered {
            jobs: 1,
            charged: 1
        }
    );
    assert_eq!(job_status(&store, &b.digest).await, status(1, true));
    // The stale claim can neither renew, fail nor release the job.
    assert!(
        !store
            .heartbeat(&b.digest, other.token, 9_000)
            .await
            .unwrap()
    );
    store
        .fail_scan(&b.digest, other.token, "stale", 7)
        .await
        .unwrap();
    store.release(&b.digest, other.token).await.unwrap();
    assert_eq!(store.image(&b.digest).await.unwrap().unwrap().failures, 0);
    assert_eq!(job_status(&store, &b.digest).await, status(1, true));
    drop(store);

    // "next" dies with a alone: a is charged; c is not.
    for crash in 1..MAX_ATTEMPTS {
        let store = open(&location).await;
        let owner = format!("again-{crash}");
        assert_eq!(
            store.recover_orphans(&owner, true, 8_000).await.unwrap(),
            Recovered {
                jobs: 1,
                charged: 1
            },
            "crash {crash}"
        );
        assert_eq!(job_status(&store, &a.digest).await, status(crash, true));
        assert_eq!(job_status(&store, &c.digest).await, status(0, true));
        assert_eq!(
            store
                .claim(&owner, 9_000, 69_000)
                .await
                .unwrap()
                .unwrap()
                .digest,
            a.digest
        );
    }
    // Charged MAX_ATTEMPTS times: given up; the next is taken.
    let store = open(&location).await;
    store.recover_orphans("last", true, 10_000).await.unwrap();
    let job = store.claim("last", 11_000, 71_000).await.unwrap().unwrap();
    assert_eq!(job.digest, b.digest);
    let given_up = store.image(&a.digest).await.unwrap().unwrap();
    assert_eq!(given_up.state, ImageState::Failed);
    assert!(given_up.error.unwrap().contains("given up"));
    store
        .finish_scan(&job.digest, job.token, "{}".into(), r1(), 12)
        .await
        .unwrap();
    let job = store.claim("last", 12_000, 72_000).await.unwrap().unwrap();
    assert_eq!(job.digest, c.digest);
    // A graceful stop charges nothing, and the job keeps its place.
    store.release(&c.digest, job.token).await.unwrap();
    assert_eq!(job_status(&store, &c.digest).await, status(0, true));
    assert_eq!(
        store
            .claim("last", 13_000, 73_000)
            .await
            .unwrap()
            .unwrap()
            .digest,
        c.digest
    );
}

async fn jobs_claimed_together_are_not_alone(backend: Backend) {
    let (location, _dir) = fresh(backend, "together");
    let (a, b) = (
        event(Kind::Push, 'a', "x", None),
        event(Kind::Push, 'b', "x", None),
    );
    {
        let store = open(&location).await;
        store
            .apply(images(&[a.clone(), b.clone()]), 10, 1)
            .await
            .unwrap();
        let first = claim(&store, 2).await.unwrap();
        let second = claim(&store, 2).await.unwrap();
        assert_eq!(
            (first.digest.as_str(), second.digest.as_str()),
            (a.digest.as_str(), b.digest.as_str())
        );
        // b finished: a was not alone all along, so it is not charged.
        store
            .finish_scan(&b.digest, second.token, "{}".into(), r1(), 3)
            .await
            .unwrap();
    }
    let store = open(&location).await;
    assert_eq!(
        store.recover_orphans("next", true, 5_000).await.unwrap(),
        Recovered {
            jobs: 1,
            charged: 0
        }
    );
}

/// A claim taken over (its lease expired) stores nothing, so a scan is
/// completed once however many processes ran it.
async fn stale_claims_store_nothing(backend: Backend) {
    let (location, _dir) = fresh(backend, "stale");
    let store = open(&location).await;
    let a = event(Kind::Push, 'a', "x", None);
    store
        .apply(images(std::slice::from_ref(&a)), 10, 1)
        .await
        .unwrap();
    let slow = store.claim("slow", 1_000, 2_000).await.unwrap().unwrap();
    // "slow" stops renewing; "fast" takes the job over after its lease.
    assert_eq!(store.claim("fast", 1_500, 60_000).await.unwrap(), None);
    let fast = store.claim("fast", 2_001, 60_000).await.unwrap().unwrap();
    assert_eq!(fast.digest, a.digest);
    assert_ne!(fast.token, slow.token);
    assert!(
        !store
            .finish_scan(&a.digest, slow.token, "{}".into(), r1(), 3)
            .await
            .unwrap()
    );
    assert_eq!(store.image(&a.digest).await.unwrap().unwrap().scans, 0);
    assert!(
        store
            .finish_scan(&a.digest, fast.token, "{}".into(), r1(), 4)
            .await
            .unwrap()
    );
    let image = store.image(&a.digest).await.unwrap().unwrap();
    assert_eq!((image.scans, image.state), (1, ImageState::Scanned));
    assert!(
        !store
            .finish_scan(&a.digest, fast.token, "{}".into(), r1(), 5)
            .await
            .unwrap()
    );
    assert_eq!(store.image(&a.digest).await.unwrap().unwrap().scans, 1);
}

async fn deletes_untag_and_forget_in_order(backend: Backend) {
    let (location, _dir) = fresh(backend, "deletes");
    let store = open(&location).await;
    let a = event(Kind::Push, 'a', "team/app", Some("1"));
    let a_mirror = event(Kind::Push, 'a', "mirror/app", Some("1"));
    let b = event(Kind::Push, 'b', "team/app", Some("2"));
    store
        .apply(images(&[a.clone(), a_mirror.clone(), b.clone()]), 10, 1)
        .await
        .unwrap();
    let job = claim(&store, 2).await.unwrap();
    store
        .finish_scan(&job.digest, job.token, "{}".into(), r1(), 3)
        .await
        .unwrap();

    // A tag deleted alone: the manifest stays, untagged.
    store
        .apply(vec![deletion("team/app", Deleted::Tag("2".into()))], 10, 4)
        .await
        .unwrap();
    assert_eq!(tags(&store, &b.digest).await, [("team/app".into(), None)]);

    // A manifest deleted from one of its repositories: kept, pulled from the other.
    let applied = store
        .apply(
            vec![
                deletion("team/app", Deleted::Manifest(a.digest.clone())),
                deletion("team/app", Deleted::Tag("1".into())),
            ],
            10,
            5,
        )
        .await
        .unwrap();
    assert_eq!(applied, accepted(2, 0, 0, 1));
    assert_eq!(
        tags(&store, &a.digest).await,
        [("mirror/app".into(), Some("1".into()))]
    );
    let job_b = claim(&store, 6).await.unwrap();
    assert_eq!(
        (
            job_b.digest.as_str(),
            job_b.registry.as_str(),
            job_b.repository.as_str()
        ),
        (b.digest.as_str(), b.registry.as_str(), "team/app")
    );
    // From its last repository: forgotten, the running job with it, its
    // findings too, and the scan that finishes afterwards stores nothing. A
    // blob digest or an unknown one changes nothing.
    assert_eq!(store.findings(&a.digest).await.unwrap().len(), 3);
    let applied = store
        .apply(
            vec![
                deletion("mirror/app", Deleted::Manifest(a.digest.clone())),
                deletion("team/app", Deleted::Manifest(b.digest.clone())),
                deletion("team/app", Deleted::Manifest(digest('f'))),
            ],
            10,
            7,
        )
        .await
        .unwrap();
    assert_eq!(applied.forgotten, 2);
    assert!(
        !store
            .finish_scan(&b.digest, job_b.token, "{}".into(), r1(), 8)
            .await
            .unwrap()
    );
    assert!(store.image(&a.digest).await.unwrap().is_none());
    assert!(store.image(&b.digest).await.unwrap().is_none());
    assert!(store.findings(&a.digest).await.unwrap().is_empty());
    assert!(store.images().await.unwrap().is_empty());
    assert_eq!(store.queue_lengths().await.unwrap(), (0, 0));

    // Pushed again after its deletion, in the same batch: a new image, scanned anew.
    let applied = store
        .apply(
            vec![
                Recorded::Image(a.clone()),
                deletion("team/app", Deleted::Manifest(a.digest.clone())),
                Recorded::Image(a.clone()),
            ],
            10,
            9,
        )
        .await
        .unwrap();
    assert_eq!(applied, accepted(3, 1, 1, 1));
    let image = store.image(&a.digest).await.unwrap().unwrap();
    assert_eq!((image.state, image.scans), (ImageState::Queued, 0));
}

async fn findings_are_rows(backend: Backend) {
    let (location, _dir) = fresh(backend, "findings");
    let store = open(&location).await;
    let a = event(Kind::Push, 'a', "x", None);
    store
        .apply(images(std::slice::from_ref(&a)), 10, 1)
        .await
        .unwrap();
    let job = claim(&store, 2).await.unwrap();
    let result = r1();
    store
        .finish_scan(&a.digest, job.token, "{}".into(), result.clone(), 3)
        .await
        .unwrap();
    let rows = store.findings(&a.digest).await.unwrap();
    assert_eq!(rows, result.findings);
    let summary: Vec<(&str, &str, trawl::Severity, bool)> = rows
        .iter()
        .map(|f| (f.id.as_str(), f.package.as_str(), f.severity, f.suppressed))
        .collect();
    assert_eq!(
        summary,
        [
            ("CVE-2099-0001", "libssl3", trawl::Severity::Critical, false),
            ("TRAWL-LOW", "util-linux", trawl::Severity::Low, false),
            ("CVE-2099-0002", "bash", trawl::Severity::Medium, true),
        ]
    );
    assert_eq!(rows[0].aliases, ["DSA-9999-1", "GHSA-abcd-efgh-ijkl"]);
    assert_eq!(rows[0].fixed_version.as_deref(), Some("1.0-2"));
    assert_eq!(rows[0].layer.as_deref(), Some("sha256:1111"));
    assert_eq!(
        rows[0].keys(),
        ["cve-2099-0001", "dsa-9999-1", "ghsa-abcd-efgh-ijkl"]
    );
    let report = store.report(&a.digest).await.unwrap().unwrap().unwrap();
    assert_eq!(Some(&report.report), result.report.as_ref());
    assert!(report.is_current());
}

/// A report of `findings` (id, package, severity), in report order, as
/// `report` writes them.
fn report_of(findings: &[(&str, &str, &str)]) -> Report {
    let findings: Vec<serde_json::Value> = findings
        .iter()
        .map(|(id, package, severity)| {
            json!({
                "id": id, "aliases": [], "package": package, "installed_version": "1.0-1",
                "source_name": format!("{package}-src"), "source_version": "1.0-1",
                "fixed_version": null, "fix_state": "unfixed",
                "severity": severity, "severity_source": "CVSS_V3", "ecosystem": "Debian:12",
                "layer": "sha256:1111", "remediation": "upgrade"
            })
        })
        .collect();
    serde_json::from_value(json!({
        "schema_version": 1, "source": "registry:r/x@sha256:aa",
        "image": {"manifest_digest": null, "layers": [], "diff_ids": []},
        "os": null, "verdict": "unhealthy", "verdict_reason": "findings",
        "ecosystem": "Debian:12",
        "summary": {"packages": 3, "findings": findings.len(), "fixable": 0, "suppressed": 0,
                    "by_severity": {}, "by_fix_state": {}},
        "remediation": [], "packages": [],
        "findings": findings, "suppressed": [], "warnings": [],
    }))
    .expect("a report")
}

/// A rescan writes only the finding rows that changed, keyed by what does
/// not move (id, package, path, version): a finding added before the
/// others leaves them untouched, a removed one goes, a changed severity is
/// updated in place; the report is not rewritten but stays a cache of the
/// scan's target until it is cached anew.
async fn rescans_write_only_what_changed(backend: Backend) {
    let (location, _dir) = fresh(backend, "delta");
    let store = open(&location).await;
    let a = event(Kind::Push, 'a', "x", None);
    store
        .apply(images(std::slice::from_ref(&a)), 10, 1)
        .await
        .unwrap();
    let job = claim(&store, 2).await.unwrap();
    let before = report_of(&[
        ("CVE-2099-0001", "libssl3", "critical"),
        ("CVE-2099-0003", "zlib1g", "medium"),
        ("TRAWL-LOW", "util-linux", "low"),
    ]);
    let first = MatchResult::new(&before, &target("db1", "p1")).unwrap();
    store
        .finish_scan(&a.digest, job.token, "{}".into(), first.clone(), 3)
        .await
        .unwrap();
    let versions = store.finding_versions(&a.digest).await.unwrap();
    assert_eq!(versions.len(), 3);
    let version_of = |versions: &[(String, String, i64)], id: &str| {
        versions
            .iter()
            .find(|(i, _, _)| i == id)
            .map(|(_, key, v)| (key.clone(), *v))
    };

    // The new database: one finding more, ahead of the others in report
    // order; one gone; one more serious.
    let t2 = target("db2", "p1");
    let after = report_of(&[
        ("CVE-2099-0001", "libssl3", "critical"),
        ("CVE-2099-0009", "bash", "high"),
        ("TRAWL-LOW", "util-linux", "medium"),
    ]);
    let second = MatchResult::new(&after, &t2).unwrap();
    assert_eq!(
        store.plan_rescan(&t2, 0, 10, false).await.unwrap(),
        RescanPlan::Planned {
            images: 1,
            batches: 1
        }
    );
    let batch = store
        .claim_rescan("one", &t2, 1_000, 60_000)
        .await
        .unwrap()
        .unwrap();
    let rematched = vec![Rematched {
        digest: a.digest.clone(),
        previous_sha256: Some(first.report_sha256.clone()),
        result: second.clone(),
    }];
    assert_eq!(store.finish_rescan(&batch, rematched, 5).await.unwrap(), 1);
    assert_eq!(store.findings(&a.digest).await.unwrap(), second.findings);
    let now = store.finding_versions(&a.digest).await.unwrap();
    let ids: Vec<&str> = now.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(ids, ["CVE-2099-0001", "CVE-2099-0009", "TRAWL-LOW"]);
    // Untouched: the same row version, the same key.
    assert_eq!(
        version_of(&now, "CVE-2099-0001"),
        version_of(&versions, "CVE-2099-0001")
    );
    // Updated in place: the same key (and, in SQLite, the same row).
    let (low_key, low_version) = version_of(&now, "TRAWL-LOW").unwrap();
    let (old_low_key, old_low_version) = version_of(&versions, "TRAWL-LOW").unwrap();
    assert_eq!(low_key, old_low_key);
    match backend {
        Backend::Sqlite => assert_eq!(low_version, old_low_version),
        Backend::Postgres => assert_ne!(low_version, old_low_version),
    }
    assert_eq!(low_key, "util-linux\u{1f}\u{1f}1.0-1");
    let image = store.image(&a.digest).await.unwrap().unwrap();
    assert_eq!(
        (image.advisory_db.as_deref(), image.rescans),
        (Some("db2"), 1)
    );
    assert_eq!(image.summary.as_deref(), Some(second.summary.as_str()));

    // The report was not rewritten: the scan's, stale, with the inventory
    // to rebuild it from; cached anew, it is current.
    let stored = store.report(&a.digest).await.unwrap().unwrap().unwrap();
    assert_eq!(Some(&stored.report), first.report.as_ref());
    assert!(!stored.is_current());
    assert_eq!(stored.inventory.as_deref(), Some("{}"));
    assert_eq!(
        (stored.cached, stored.current),
        (Some(target("db1", "p1")), Some(t2.clone()))
    );
    // Only for the image's current target.
    assert!(
        !store
            .cache_report(
                &a.digest,
                &target("db1", "p1"),
                first.report.as_deref().unwrap()
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .cache_report(&a.digest, &t2, second.report.as_deref().unwrap())
            .await
            .unwrap()
    );
    let stored = store.report(&a.digest).await.unwrap().unwrap().unwrap();
    assert!(stored.is_current());
    assert_eq!(Some(&stored.report), second.report.as_ref());
    // The registry-wide page gives each finding its place in the report.
    assert_eq!(
        places(&store).await,
        [
            ("CVE-2099-0001".to_string(), 0),
            ("CVE-2099-0009".into(), 1),
            ("TRAWL-LOW".into(), 2)
        ]
    );

    // Every finding different (PostgreSQL writes such an image whole): the
    // new rows, nothing of the old.
    let t3 = target("db3", "p1");
    let third = MatchResult::new(
        &report_of(&[
            ("CVE-2099-0100", "zlib1g", "high"),
            ("CVE-2099-0102", "libc6", "low"),
            ("CVE-2099-0101", "perl-base", "low"),
            ("CVE-2099-0103", "tar", "low"),
        ]),
        &t3,
    )
    .unwrap();
    store.plan_rescan(&t3, 0, 10, false).await.unwrap();
    let batch = store
        .claim_rescan("one", &t3, 1_000, 60_000)
        .await
        .unwrap()
        .unwrap();
    let rematched = vec![Rematched {
        digest: a.digest.clone(),
        previous_sha256: Some(second.report_sha256.clone()),
        result: third.clone(),
    }];
    assert_eq!(store.finish_rescan(&batch, rematched, 6).await.unwrap(), 1);
    assert_eq!(store.findings(&a.digest).await.unwrap(), third.findings);
    assert_eq!(store.finding_versions(&a.digest).await.unwrap().len(), 4);
}

/// Scans `pushes` (each with its own report) and finishes them under `db1`/`p1`.
async fn scanned(store: &Store, pushes: &[ImageEvent]) {
    store.apply(images(pushes), 100, 1).await.unwrap();
    for _ in pushes {
        let job = claim(store, 2).await.unwrap();
        store
            .finish_scan(&job.digest, job.token, "{}".into(), r1(), 3)
            .await
            .unwrap();
    }
}

async fn rescans_are_planned_recent_and_stale(backend: Backend) {
    let (location, _dir) = fresh(backend, "plan");
    let store = open(&location).await;
    let mut old = event(Kind::Push, 'a', "x", None);
    old.at = 10;
    let mut recent = event(Kind::Push, 'b', "x", None);
    recent.at = 1_000;
    scanned(&store, &[old.clone(), recent.clone()]).await;
    let planned = |images, batches| RescanPlan::Planned { images, batches };
    // The same database and policy: nothing to do.
    assert_eq!(
        store
            .plan_rescan(&target("db1", "p1"), 500, 10, false)
            .await
            .unwrap(),
        planned(0, 0)
    );
    // A new database: the recent image only.
    assert_eq!(
        store
            .plan_rescan(&target("db2", "p1"), 500, 10, false)
            .await
            .unwrap(),
        planned(1, 1)
    );
    // Planned again: what open batches hold is not planned twice.
    assert_eq!(
        store
            .plan_rescan(&target("db2", "p1"), 500, 10, false)
            .await
            .unwrap(),
        planned(0, 0)
    );
    // Pulled since: the old one is recent now, and joins the plan.
    let mut pulled = event(Kind::Pull, 'a', "x", None);
    pulled.at = 2_000;
    store.apply(images(&[pulled]), 10, 4).await.unwrap();
    assert_eq!(
        store
            .plan_rescan(&target("db2", "p1"), 500, 10, false)
            .await
            .unwrap(),
        planned(1, 1)
    );
    let mut claimed = Vec::new();
    while let Some(batch) = store
        .claim_rescan(OWNER, &target("db2", "p1"), 5_000, 65_000)
        .await
        .unwrap()
    {
        claimed.extend(batch.digests);
    }
    claimed.sort();
    assert_eq!(claimed, [old.digest.clone(), recent.digest.clone()]);
    // Another policy makes both stale too, in batches of one.
    assert_eq!(
        store
            .plan_rescan(&target("db2", "p2"), 500, 1, false)
            .await
            .unwrap(),
        planned(2, 2)
    );
    // Nothing of a target that is not the newest is handed out.
    assert_eq!(
        store
            .claim_rescan(OWNER, &target("db2", "p1"), 6_000, 66_000)
            .await
            .unwrap(),
        None
    );
}

/// Two processes share one rescan: every batch goes to one of them, a
/// batch whose process died is taken over, and each image is written once.
async fn rescan_batches_are_shared_and_written_once(backend: Backend) {
    let (location, _dir) = fresh(backend, "shared");
    let one = open(&location).await;
    // Two connections for PostgreSQL; SQLite's file is one process's: the
    // two owners share its store.
    let two = match backend {
        Backend::Sqlite => one.clone(),
        Backend::Postgres => open(&location).await,
    };
    let pushes: Vec<ImageEvent> = "abcdefg"
        .chars()
        .map(|c| event(Kind::Push, c, "x", None))
        .collect();
    scanned(&one, &pushes).await;
    let t2 = target("db2", "p1");
    assert_eq!(
        two.plan_rescan(&t2, 0, 2, false).await.unwrap(),
        RescanPlan::Planned {
            images: 7,
            batches: 4
        }
    );
    let first = one
        .claim_rescan("one", &t2, 1_000, 2_000)
        .await
        .unwrap()
        .unwrap();
    let second = two
        .claim_rescan("two", &t2, 1_000, 61_000)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(first.id, second.id);
    assert!(first.digests.iter().all(|d| !second.digests.contains(d)));
    // "one" dies holding its batch; "two" takes it over once the lease is out.
    let third = two
        .claim_rescan("two", &t2, 1_500, 61_000)
        .await
        .unwrap()
        .unwrap();
    let fourth = two
        .claim_rescan("two", &t2, 1_500, 61_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        two.claim_rescan("two", &t2, 1_500, 61_000).await.unwrap(),
        None
    );
    let taken_over = two
        .claim_rescan("two", &t2, 2_001, 62_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken_over.id, first.id);
    assert!(!one.renew_rescan(&first, 9_000).await.unwrap());
    // Results: the first batch's reports did not change, the others did.
    let rematch = |batch: &trawl_watch::store::RescanBatch, fixed: &str| -> Vec<Rematched> {
        let previous = r1().report_sha256;
        batch
            .digests
            .iter()
            .map(|d| Rematched {
                digest: d.clone(),
                previous_sha256: Some(previous.clone()),
                result: MatchResult::new(&report(fixed), &t2).unwrap(),
            })
            .collect()
    };
    // The stale claim of "one" writes nothing.
    assert_eq!(
        one.finish_rescan(&first, rematch(&first, "1.0-2"), 10)
            .await
            .unwrap(),
        0
    );
    let mut written = 0;
    for (batch, fixed) in [
        (&taken_over, "1.0-2"),
        (&second, "1.0-3"),
        (&third, "1.0-3"),
        (&fourth, "1.0-3"),
    ] {
        written += two
            .finish_rescan(batch, rematch(batch, fixed), 11)
            .await
            .unwrap();
    }
    assert_eq!(written, 7);
    // A batch finished twice writes nothing the second time.
    assert_eq!(
        two.finish_rescan(&second, rematch(&second, "1.0-3"), 12)
            .await
            .unwrap(),
        0
    );
    for push in &pushes {
        let image = one.image(&push.digest).await.unwrap().unwrap();
        assert_eq!(
            (image.rescans, image.advisory_db.as_deref()),
            (1, Some("db2"))
        );
        let fixed = one.findings(&push.digest).await.unwrap()[0]
            .fixed_version
            .clone();
        let expected = if first.digests.contains(&push.digest) {
            "1.0-2"
        } else {
            "1.0-3"
        };
        assert_eq!(fixed.as_deref(), Some(expected), "{}", push.digest);
    }
    // Nothing is left to plan or claim.
    assert_eq!(
        one.plan_rescan(&t2, 0, 2, false).await.unwrap(),
        RescanPlan::Planned {
            images: 0,
            batches: 0
        }
    );
    assert_eq!(
        one.claim_rescan("one", &t2, 3_000, 63_000).await.unwrap(),
        None
    );
}

/// The newest planned target wins; an older one is planned again only when
/// it is deliberately taken back.
async fn a_newer_target_supersedes_an_older_one(backend: Backend) {
    let (location, _dir) = fresh(backend, "supersede");
    let store = open(&location).await;
    let pushes: Vec<ImageEvent> = "abc"
        .chars()
        .map(|c| event(Kind::Push, c, "x", None))
        .collect();
    scanned(&store, &pushes).await;
    let (t2, t3) = (target("db2", "p1"), target("db3", "p1"));
    store.plan_rescan(&t2, 0, 1, false).await.unwrap();
    let running = store
        .claim_rescan("a", &t2, 1_000, 61_000)
        .await
        .unwrap()
        .unwrap();
    // A process with a newer database plans it: t2's waiting batches go,
    // and the running one stores nothing.
    assert_eq!(
        store.plan_rescan(&t3, 0, 10, false).await.unwrap(),
        RescanPlan::Planned {
            images: 3,
            batches: 1
        }
    );
    assert_eq!(
        store.claim_rescan("a", &t2, 1_000, 61_000).await.unwrap(),
        None
    );
    let rematched = vec![Rematched {
        digest: running.digests[0].clone(),
        previous_sha256: None,
        result: MatchResult::new(&report("9"), &t2).unwrap(),
    }];
    assert_eq!(
        store.finish_rescan(&running, rematched, 5).await.unwrap(),
        0
    );
    // A process starting with the older database does not take it back ...
    assert_eq!(
        store.plan_rescan(&t2, 0, 10, false).await.unwrap(),
        RescanPlan::Superseded
    );
    // ... one told to (its file was changed back) does.
    assert_eq!(
        store.plan_rescan(&t2, 0, 10, true).await.unwrap(),
        RescanPlan::Planned {
            images: 3,
            batches: 1
        }
    );
    assert_eq!(
        store.claim_rescan("b", &t3, 1_000, 61_000).await.unwrap(),
        None
    );
    assert!(
        store
            .claim_rescan("b", &t2, 1_000, 61_000)
            .await
            .unwrap()
            .is_some()
    );
}

/// Two processes opening a new database at once apply its migrations once;
/// a database of a newer schema is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migrations_apply_once_and_newer_schemas_are_refused() {
    let cluster = support::postgres::Postgres::get();
    let url = cluster.database("migrations");
    let location: trawl_watch::StoreLocation = url.parse().unwrap();
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let location = location.clone();
            tokio::spawn(async move { Store::open(&location).await.map(|_| ()) })
        })
        .collect();
    for open in opens {
        open.await.unwrap().unwrap();
    }
    let name = url.rsplit('/').next().unwrap();
    assert_eq!(
        cluster.psql(
            name,
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM trawl_watch_migrations"
        ),
        "1,2,3,4,5,6,7,8,9,10,11,12,13"
    );
    // Version 12: room on each page of images for the next version of its
    // rows, and its large values compressed with LZ4 (Debian's server has it).
    assert_eq!(
        cluster.psql(
            name,
            "SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = 'images'"
        ),
        "fillfactor=50"
    );
    assert_eq!(
        cluster.psql(
            name,
            "SELECT string_agg(attname || '=' || attcompression::text, ',' ORDER BY attname)
             FROM pg_attribute WHERE attrelid = 'images'::regclass
             AND attname IN ('counts', 'counts_change', 'inventory', 'report', 'summary')"
        ),
        "counts=l,counts_change=l,inventory=l,report=l,summary=l"
    );
    // Version 9's fold runs without JIT, as the triggers do.
    assert_eq!(
        cluster.psql(
            name,
            "SELECT proconfig::text FROM pg_proc WHERE proname = 'summary_fold'"
        ),
        "{jit=off}"
    );
    cluster.psql(
        name,
        "INSERT INTO trawl_watch_migrations (version) VALUES (99)",
    );
    match Store::open(&location).await {
        Err(StoreError::Schema {
            found: 99, known, ..
        }) => assert!(known < 99),
        other => panic!("{other:?}"),
    }
}

/// A database of schema 3 (findings keyed by their place in the report)
/// gains stable keys: each row keyed by package, path (none before) and
/// version, a repeat counted; its report is the cache of its target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_findings_of_schema_3_are_keyed_in_place() {
    let cluster = support::postgres::Postgres::get();
    let url = cluster.database("migration4");
    let location: trawl_watch::StoreLocation = url.parse().unwrap();
    drop(Store::open(&location).await.unwrap());
    let name = url.rsplit('/').next().unwrap();
    let a = digest('a');
    // Back to schema 3's findings and images (without version 5's
    // counters), with rows as it wrote them.
    let without = support::PG_WITHOUT_COUNTERS;
    let flat = support::PG_WITHOUT_NORMALIZED;
    cluster.psql(
        name,
        &format!(
            "{flat}
             {without}
             DROP INDEX findings_sorted;
             ALTER TABLE findings DROP CONSTRAINT findings_pkey;
             ALTER TABLE findings DROP COLUMN fkey, DROP COLUMN path, DROP COLUMN h,
                 ADD COLUMN ord integer NOT NULL;
             ALTER TABLE findings ADD PRIMARY KEY (digest, ord);
             CREATE INDEX findings_sorted ON findings
                 (severity DESC, id COLLATE \"C\", digest COLLATE \"C\", ord) WHERE NOT suppressed;
             ALTER TABLE images DROP COLUMN report_db, DROP COLUMN report_policy;
             DELETE FROM trawl_watch_migrations WHERE version = 4;
             INSERT INTO images (digest, registry, repository, media_type, first_seen, report,
                                 inventory, advisory_db, policy)
             VALUES ('{a}', 'r', 'x', 'm', 1, '{{}}', '{{}}', 'db1', 'p1');
             INSERT INTO findings (digest, ord, id, aliases, keys, package, version,
                 source_name, source_version, ecosystem, severity, fix_state, suppressed)
             VALUES ('{a}', 0, 'CVE-1', '{{}}', '{{cve-1}}', 'libssl3', '1.0', 'openssl',
                     '1.0', 'Debian:12', 5, 'fixed', false),
                    ('{a}', 1, 'CVE-1', '{{}}', '{{cve-1}}', 'libssl3', '1.0', 'openssl',
                     '1.0', 'Debian:12', 5, 'fixed', false),
                    ('{a}', 2, 'CVE-2', '{{}}', '{{cve-2}}', 'bash', '5', 'bash', '5',
                     'Debian:12', 2, 'unfixed', false);"
        ),
    );
    let store = Store::open(&location).await.unwrap();
    let keys: Vec<(String, String)> = store
        .finding_versions(&a)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, key, _)| (id, key))
        .collect();
    assert_eq!(
        keys,
        [
            ("CVE-1".to_string(), "libssl3\u{1f}\u{1f}1.0".to_string()),
            ("CVE-1".into(), "libssl3\u{1f}\u{1f}1.0\u{1f}1".into()),
            ("CVE-2".into(), "bash\u{1f}\u{1f}5".into()),
        ]
    );
    let report = store.report(&a).await.unwrap().unwrap().unwrap();
    assert!(report.is_current() && report.report == "{}");
    assert_eq!(
        places(&store).await,
        [
            ("CVE-1".to_string(), 0),
            ("CVE-1".into(), 1),
            ("CVE-2".into(), 2)
        ]
    );
}

const HOOK_A: &str = "http://127.0.0.1:9/a";
const HOOK_B: &str = "http://127.0.0.1:9/b";

fn notifying(store: Store) -> Store {
    store.with_notify_targets(vec![HOOK_A.to_string(), HOOK_B.to_string()])
}

/// A result of `verdict` with `n` counting findings (one suppressed too).
fn result_of(verdict: &str, n: usize, db: &str) -> MatchResult {
    let mut value = serde_json::to_value(report("1.0-2")).unwrap();
    let first = value["findings"][0].clone();
    let findings: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let mut f = first.clone();
            f["id"] = json!(format!("CVE-2099-{i:04}"));
            f["severity"] = json!(if i % 2 == 0 { "low" } else { "critical" });
            f
        })
        .collect();
    value["findings"] = json!(findings);
    value["verdict"] = json!(verdict);
    let report: Report = serde_json::from_value(value).unwrap();
    MatchResult::new(&report, &target(db, "p1")).unwrap()
}

fn body(row: &(String, String, i64, String)) -> serde_json::Value {
    serde_json::from_str(&row.3).unwrap()
}

async fn scans_and_failures_write_events_with_their_result(backend: Backend) {
    let (location, _dir) = fresh(backend, "events");
    let store = notifying(open(&location).await);
    let a = event(Kind::Push, 'a', "team/x", Some("1.0"));
    let b = event(Kind::Push, 'b', "team/y", None);
    store
        .apply(images(&[a.clone(), b.clone()]), 10, 1)
        .await
        .unwrap();
    let first = claim(&store, 2).await.unwrap();
    // A claim that no longer holds its job writes no event either.
    assert!(
        !store
            .finish_scan(&a.digest, first.token + 1000, "{}".into(), r1(), 3)
            .await
            .unwrap()
    );
    assert!(store.outbox_events().await.unwrap().is_empty());
    assert!(
        store
            .finish_scan(&a.digest, first.token, "{}".into(), r1(), 3)
            .await
            .unwrap()
    );
    let second = claim(&store, 4).await.unwrap();
    store
        .fail_scan(
            &b.digest,
            second.token,
            "pull https://u:pw@r.example/x failed",
            5,
        )
        .await
        .unwrap();
    let events = store.outbox_events().await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(kinds, ["scan.completed", "scan.failed"]);
    assert_ne!(events[0].0, events[1].0);

    let rows = store.outbox_event(&events[0].0).await.unwrap();
    let targets: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(targets, [HOOK_A, HOOK_B]);
    assert!(rows.iter().all(|r| r.1 == "pending" && r.2 == 0));
    assert_eq!(rows[0].3, rows[1].3, "every target gets the same bytes");
    let completed = body(&rows[0]);
    assert_eq!(completed["id"], events[0].0.as_str());
    assert_eq!(completed["type"], "scan.completed");
    assert_eq!(completed["time"], "1970-01-01T00:00:03Z");
    assert_eq!(completed["verdict"], "unhealthy");
    assert_eq!(completed["advisory_db"]["sha256"], "db1");
    assert_eq!(completed["policy"], "p1");
    assert_eq!(completed["summary"]["findings"], 2);
    assert_eq!(
        completed["image"],
        json!({"registry": "127.0.0.1:5000", "repository": "team/x", "digest": a.digest,
               "tags": [{"repository": "team/x", "tag": "1.0"}], "tags_omitted": 0})
    );
    assert!(completed.get("previous_verdict").is_none());

    let failed = body(&store.outbox_event(&events[1].0).await.unwrap()[0]);
    assert_eq!(failed["type"], "scan.failed");
    assert_eq!(
        failed["image"]["tags"],
        json!([{"repository": "team/y", "tag": null}])
    );
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("failed") && !error.contains("pw@"),
        "{error}"
    );
}

async fn a_database_update_gives_one_verdict_change_per_image(backend: Backend) {
    let (location, _dir) = fresh(backend, "changes");
    let store = notifying(open(&location).await);
    let pushes: Vec<ImageEvent> = "abc"
        .chars()
        .map(|c| event(Kind::Push, c, "x", Some("latest")))
        .collect();
    store.apply(images(&pushes), 100, 1).await.unwrap();
    for _ in &pushes {
        let job = claim(&store, 2).await.unwrap();
        store
            .finish_scan(
                &job.digest,
                job.token,
                "{}".into(),
                result_of("healthy", 0, "db1"),
                3,
            )
            .await
            .unwrap();
    }
    let before = store.outbox_events().await.unwrap().len();
    assert_eq!(before, 3, "three scan.completed");
    let t2 = target("db2", "p1");
    assert_eq!(
        store.plan_rescan(&t2, 0, 10, false).await.unwrap(),
        RescanPlan::Planned {
            images: 3,
            batches: 1
        }
    );
    let batch = store
        .claim_rescan(OWNER, &t2, 5_000, 65_000)
        .await
        .unwrap()
        .unwrap();
    let previous = store.inventories(&batch.digests).await.unwrap();
    let sha = |d: &str| {
        previous
            .iter()
            .find(|s| s.digest == d)
            .unwrap()
            .report_sha256
            .clone()
    };
    // a: 150 new findings, unhealthy now; b: another report, still
    // healthy; c: the same report.
    let rematched = vec![
        Rematched {
            digest: pushes[0].digest.clone(),
            previous_sha256: sha(&pushes[0].digest),
            result: result_of("unhealthy", 150, "db2"),
        },
        Rematched {
            digest: pushes[1].digest.clone(),
            previous_sha256: sha(&pushes[1].digest),
            result: MatchResult::new(
                &serde_json::from_value::<Report>({
                    let mut v = serde_json::to_value(report("9")).unwrap();
                    v["verdict"] = json!("healthy");
                    v
                })
                .unwrap(),
                &t2,
            )
            .unwrap(),
        },
        Rematched {
            digest: pushes[2].digest.clone(),
            previous_sha256: sha(&pushes[2].digest),
            result: result_of("healthy", 0, "db2"),
        },
    ];
    // The results of "healthy, 0 findings" do not name the database in
    // the report, so c's report is the same.
    assert_eq!(
        store
            .finish_rescan(&batch, rematched.clone(), 6)
            .await
            .unwrap(),
        3
    );
    // The same batch again (a stale claim) writes nothing, events neither.
    assert_eq!(store.finish_rescan(&batch, rematched, 7).await.unwrap(), 0);
    let events = store.outbox_events().await.unwrap();
    let changes: Vec<&(String, String)> = events
        .iter()
        .filter(|(_, kind)| kind == "verdict.changed")
        .collect();
    assert_eq!(changes.len(), 1, "{events:?}");
    assert_eq!(events.len(), before + 1);
    let rows = store.outbox_event(&changes[0].0).await.unwrap();
    assert_eq!(rows.len(), 2);
    let change = body(&rows[0]);
    assert_eq!(change["image"]["digest"], pushes[0].digest.as_str());
    assert_eq!(change["previous_verdict"], "healthy");
    assert_eq!(change["verdict"], "unhealthy");
    assert_eq!(change["advisory_db"]["sha256"], "db2");
    assert_eq!(change["findings_total"], 150);
    assert_eq!(change["findings_omitted"], 50);
    let findings = change["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 100);
    // The most severe first.
    assert_eq!(findings[0]["severity"], "critical");
    assert_eq!(findings[74]["severity"], "critical");
    assert_eq!(findings[75]["severity"], "low");
    for key in [
        "id",
        "package",
        "version",
        "fixed_version",
        "severity",
        "fix_state",
    ] {
        assert!(findings[0].get(key).is_some(), "{key}");
    }
    assert_eq!(findings[0]["package"], "libssl3");
    assert_eq!(findings[0]["fixed_version"], "1.0-2");
    // Nothing is stale any more: planning again changes nothing, and
    // writes no event.
    assert_eq!(
        store.plan_rescan(&t2, 0, 10, false).await.unwrap(),
        RescanPlan::Planned {
            images: 0,
            batches: 0
        }
    );
    assert_eq!(store.outbox_events().await.unwrap().len(), before + 1);
}

async fn deliveries_are_leased_retried_and_pruned(backend: Backend) {
    let (location, _dir) = fresh(backend, "deliveries");
    let one = notifying(open(&location).await);
    let two = match backend {
        Backend::Sqlite => one.clone(),
        Backend::Postgres => notifying(open(&location).await),
    };
    let a = event(Kind::Push, 'a', "x", None);
    one.apply(images(std::slice::from_ref(&a)), 10, 1)
        .await
        .unwrap();
    let job = claim(&one, 2).await.unwrap();
    one.finish_scan(&a.digest, job.token, "{}".into(), r1(), 3)
        .await
        .unwrap();
    let now = one.now_ms().await.unwrap() + 1_000;
    let only_a = [HOOK_A.to_string()];
    let claimed = one
        .claim_deliveries("p1", &only_a, now, now + 10_000, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let d = &claimed[0];
    assert_eq!(
        (d.target.as_str(), d.kind.as_str(), d.attempts),
        (HOOK_A, "scan.completed", 0)
    );
    // Leased: another process gets nothing for that target.
    assert!(
        two.claim_deliveries("p2", &only_a, now + 1, now + 10_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A retry: due again at its time, with the attempt counted.
    let retry = trawl_watch::store::DeliveryOutcome::Retry {
        at_ms: now + 5_000,
        error: "answered 500".into(),
    };
    assert!(one.finish_delivery(d, &retry, now + 2).await.unwrap());
    assert!(
        !one.finish_delivery(d, &retry, now + 3).await.unwrap(),
        "the claim is spent"
    );
    assert!(
        two.claim_deliveries("p2", &only_a, now + 4_999, now + 20_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = two
        .claim_deliveries("p2", &only_a, now + 5_000, now + 6_000, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].event_id.as_str(), again[0].attempts),
        (d.event_id.as_str(), 1)
    );
    // Given back by a process that stops: claimable at once.
    assert_eq!(two.release_deliveries("p2").await.unwrap(), 1);
    let again = two
        .claim_deliveries("p2", &only_a, now + 5_001, now + 6_000, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    // p2 dies while sending: once its lease expires p1 takes it over, and
    // p2's late answer is not recorded.
    let taken = one
        .claim_deliveries("p1", &only_a, now + 6_001, now + 16_000, 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert!(
        !two.finish_delivery(
            &again[0],
            &trawl_watch::store::DeliveryOutcome::Delivered,
            now + 6_002
        )
        .await
        .unwrap()
    );
    assert!(
        one.finish_delivery(
            &taken[0],
            &trawl_watch::store::DeliveryOutcome::Delivered,
            now + 6_003
        )
        .await
        .unwrap()
    );
    let both_targets = [HOOK_A.to_string(), HOOK_B.to_string()];
    let b = one
        .claim_deliveries("p1", &both_targets, now + 7_000, now + 17_000, 10)
        .await
        .unwrap();
    assert_eq!(b.len(), 1, "A's is delivered");
    assert_eq!(b[0].target, HOOK_B);
    let refused = trawl_watch::store::DeliveryOutcome::GivenUp {
        error: "answered 404 Not Found".into(),
    };
    assert!(
        one.finish_delivery(&b[0], &refused, now + 7_001)
            .await
            .unwrap()
    );
    let counts = two.outbox_counts().await.unwrap();
    assert_eq!(
        (counts.pending, counts.delivered, counts.given_up),
        (0, 1, 1)
    );
    let states: Vec<(String, String, i64)> = one
        .outbox_event(&d.event_id)
        .await
        .unwrap()
        .into_iter()
        .map(|(t, s, n, _)| (t, s, n))
        .collect();
    assert_eq!(
        states,
        [
            // The attempt of the process that died is not counted.
            (HOOK_A.to_string(), "delivered".to_string(), 2),
            (HOOK_B.to_string(), "given_up".to_string(), 1)
        ]
    );
    assert!(
        one.claim_deliveries("p1", &both_targets, now + 99_000, now + 100_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Expiry gives up what is pending and not being sent; here nothing.
    assert_eq!(
        one.expire_outbox(now + 99_000, now + 99_000, "late")
            .await
            .unwrap(),
        0
    );
    assert_eq!(one.prune_outbox(now + 6_500).await.unwrap(), 1);
    assert_eq!(one.prune_outbox(now + 8_000).await.unwrap(), 1);
    assert_eq!(two.outbox_counts().await.unwrap(), Default::default());

    // Concurrent claimers never get the same row.
    let pushes: Vec<ImageEvent> = "bcdefghijk"
        .chars()
        .map(|c| event(Kind::Push, c, "x", None))
        .collect();
    one.apply(images(&pushes), 100, 1).await.unwrap();
    for _ in &pushes {
        let job = claim(&one, 2).await.unwrap();
        one.fail_scan(&job.digest, job.token, "no", 3)
            .await
            .unwrap();
    }
    let at = one.now_ms().await.unwrap() + 1_000;
    let (x, y) = tokio::join!(
        one.claim_deliveries("p1", &both_targets, at, at + 10_000, 7),
        two.claim_deliveries("p2", &both_targets, at, at + 10_000, 7),
    );
    let mut seqs: Vec<i64> = x
        .unwrap()
        .iter()
        .chain(&y.unwrap())
        .map(|d| d.seq)
        .collect();
    assert_eq!(seqs.len(), 14);
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), 14, "no row claimed twice");
    // Written long ago and never delivered (say, for a target no process
    // has any more): given up, except those being sent.
    let later = at + 1_000_000;
    assert_eq!(
        one.expire_outbox(later, at + 5_000, "late").await.unwrap(),
        20 - 14
    );
    assert_eq!(
        one.expire_outbox(later, at + 20_000, "late").await.unwrap(),
        14
    );
    let counts = two.outbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.given_up), (0, 20));
}
