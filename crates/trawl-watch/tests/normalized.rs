//! PostgreSQL's normalized layout (findings stored once per match target
//! and package, images linked to their packages; the store's `layout`
//! module): images sharing packages share rows, every answer is what the
//! same results give in own mode (one row per image and finding) and on
//! SQLite, an image whose findings of a package differ from the stored
//! ones falls back to own mode, unused targets' rows are collected, and a
//! store of schema version 7 is migrated and normalized by its rescans.

#[macro_use]
mod support;

use serde_json::{Value, json};
use support::postgres::Postgres;
use support::{Backend, fresh, open};
use trawl::Report;
use trawl_watch::events::{Deleted, Deletion, ImageEvent, Kind, Recorded};
use trawl_watch::store::{
    FindingQuery, FindingRow, MatchResult, MatchTarget, Rematched, RescanBatch, RescanPlan, Scope,
};
use trawl_watch::{Store, StoreLocation};

const OWNER: &str = "tester";

fn digest(n: usize) -> String {
    format!("sha256:{n:064x}")
}

fn target(db: &str) -> MatchTarget {
    MatchTarget {
        advisory_db: db.into(),
        policy: "p1".into(),
    }
}

/// A package of a test image: an OS package (no location of its own in
/// findings) or an npm package at `location`.
#[derive(Clone)]
struct P {
    name: &'static str,
    version: &'static str,
    layer: String,
    location: Option<String>,
}

fn deb(name: &'static str, layer: &str) -> P {
    P {
        name,
        version: "1.0-1",
        layer: layer.into(),
        location: None,
    }
}

fn npm(name: &'static str, location: &str, layer: &str) -> P {
    P {
        name,
        version: "4.17.20",
        layer: layer.into(),
        location: Some(location.into()),
    }
}

/// A finding of a test image: id, aliases, the package (index), severity,
/// fixed version, suppressed.
#[derive(Clone)]
struct F {
    id: &'static str,
    aliases: &'static [&'static str],
    package: usize,
    severity: &'static str,
    fixed: Option<&'static str>,
    suppressed: bool,
}

fn f(id: &'static str, package: usize, severity: &'static str) -> F {
    F {
        id,
        aliases: &[],
        package,
        severity,
        fixed: None,
        suppressed: false,
    }
}

/// A report as `scan --format json` writes it, of a Debian 12 image.
fn report(packages: &[P], findings: &[F]) -> Report {
    let finding = |x: &F| {
        let p = &packages[x.package];
        json!({
            "id": x.id, "aliases": x.aliases, "package": p.name,
            "installed_version": p.version,
            "source_name": format!("{}-src", p.name), "source_version": p.version,
            "fixed_version": x.fixed,
            "fix_state": if x.fixed.is_some() { "fixed" } else { "unfixed" },
            "severity": x.severity, "severity_source": "CVSS_V3",
            "ecosystem": if p.location.is_some() { "npm" } else { "Debian:12" },
            "layer": p.layer, "path": p.location, "remediation": "upgrade",
        })
    };
    let package = |p: &P| match &p.location {
        None => json!({
            "type": "deb", "name": p.name, "version": p.version, "arch": "amd64",
            "source_name": format!("{}-src", p.name), "source_version": p.version,
            "purl": format!("pkg:deb/debian/{}@{}?arch=amd64", p.name, p.version),
            "layer": p.layer, "database": "var/lib/dpkg/status",
        }),
        Some(location) => json!({
            "type": "npm", "name": p.name, "version": p.version,
            "source_name": format!("{}-src", p.name), "source_version": p.version,
            "purl": format!("pkg:npm/{}@{}", p.name, p.version),
            "layer": p.layer, "database": location,
        }),
    };
    let (suppressed, counting): (Vec<&F>, Vec<&F>) = findings.iter().partition(|x| x.suppressed);
    let verdict = if counting.is_empty() {
        "healthy"
    } else {
        "unhealthy"
    };
    serde_json::from_value(json!({
        "schema_version": 1, "source": "registry:r/x@sha256:aa",
        "image": {"manifest_digest": null, "layers": [], "diff_ids": []},
        "os": {"id": "debian", "version_id": "12", "source_file": "etc/os-release"},
        "verdict": verdict, "verdict_reason": "test", "ecosystem": "Debian:12",
        "summary": {"packages": packages.len(), "findings": counting.len(), "fixable": 0,
                    "suppressed": suppressed.len(), "by_severity": {}, "by_fix_state": {}},
        "remediation": [],
        "packages": packages.iter().map(package).collect::<Vec<Value>>(),
        "findings": counting.into_iter().map(finding).collect::<Vec<_>>(),
        "suppressed": suppressed.into_iter().map(finding).collect::<Vec<_>>(),
        "warnings": [],
    }))
    .expect("a report")
}

/// The same report without its packages: the store cannot tell which
/// package a finding is of, so PostgreSQL stores its rows in own mode.
fn without_packages(mut report: Report) -> Report {
    report.packages.clear();
    report
}

/// The `n`-th image of the registry: a shared base (libssl3 with CVE-1
/// and its aliases, bash with a suppressed CVE-2, util-linux with none),
/// lodash (GHSA-1) in its own place and layer, and `extra` findings.
fn image(n: usize, extra: &[F]) -> (Vec<P>, Vec<F>) {
    let packages = vec![
        deb("libssl3", "sha256:base"),
        deb("bash", "sha256:base"),
        deb("util-linux", "sha256:base"),
        npm(
            "lodash",
            &format!("app{n}/node_modules/lodash/package.json"),
            &format!("sha256:app{n}"),
        ),
    ];
    let mut findings = vec![
        F {
            aliases: &["DSA-9999-1", "GHSA-abcd-efgh-ijkl"],
            fixed: Some("1.0-2"),
            ..f("CVE-2099-0001", 0, "critical")
        },
        F {
            suppressed: true,
            ..f("CVE-2099-0002", 1, "medium")
        },
        f("GHSA-1111-2222-3333", 3, "high"),
    ];
    findings.extend_from_slice(extra);
    (packages, findings)
}

/// The reports of images `0..images` ([`image`], no extra findings).
fn base_reports(images: usize) -> Vec<Report> {
    (0..images)
        .map(|n| {
            let (p, f) = image(n, &[]);
            report(&p, &f)
        })
        .collect()
}

/// The name of a PostgreSQL location's database.
fn db_name(location: &StoreLocation) -> String {
    location.to_string().rsplit('/').next().unwrap().to_string()
}

fn psql(location: &StoreLocation, sql: &str) -> String {
    Postgres::get().psql(&db_name(location), sql)
}

/// Pushes the images `0..reports.len()` and stores their scans, in order.
async fn scan_all(store: &Store, reports: &[Report], target: &MatchTarget) {
    let events: Vec<Recorded> = (0..reports.len())
        .map(|n| {
            Recorded::Image(ImageEvent {
                kind: Kind::Push,
                digest: digest(n),
                registry: "127.0.0.1:5000".into(),
                repository: format!("team-{}/app", n % 2),
                tag: Some("1".into()),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                at: 100,
            })
        })
        .collect();
    store.apply(events, 1000, 1).await.unwrap();
    for _ in 0..reports.len() {
        let job = store.claim(OWNER, 2_000, 60_000).await.unwrap().unwrap();
        let n = (0..reports.len())
            .find(|n| digest(*n) == job.digest)
            .unwrap();
        let result = MatchResult::new(&reports[n], target).unwrap();
        assert!(
            store
                .finish_scan(&job.digest, job.token, "{}".into(), result, 3)
                .await
                .unwrap()
        );
    }
}

/// The targets that have package rows stored, by name.
const TARGETS_WITH_ROWS: &str =
    "SELECT string_agg(DISTINCT t.advisory_db, ',' ORDER BY t.advisory_db)
    FROM package_findings pf JOIN match_targets t ON t.id = pf.target";

/// Plans the rescan of `target`, asserting that it takes the `images`
/// images in one batch.
async fn plan_one_batch(store: &Store, target: &MatchTarget, images: usize) {
    assert_eq!(
        store.plan_rescan(target, 0, 100, false).await.unwrap(),
        RescanPlan::Planned { images, batches: 1 }
    );
}

/// Plans the rescan of `target` and stores `reports` as its results.
async fn rescan_all(store: &Store, reports: &[Report], target: &MatchTarget) {
    let plan = store.plan_rescan(target, 0, 3, false).await.unwrap();
    assert!(matches!(plan, RescanPlan::Planned { .. }), "{plan:?}");
    while let Some(batch) = store
        .claim_rescan(OWNER, target, 5_000, 65_000)
        .await
        .unwrap()
    {
        let results = rematched(store, &batch, reports, target).await;
        store.finish_rescan(&batch, results, 10).await.unwrap();
    }
}

/// The results of `batch`'s images: `reports` (by image number) against
/// `target`.
async fn rematched(
    store: &Store,
    batch: &RescanBatch,
    reports: &[Report],
    target: &MatchTarget,
) -> Vec<Rematched> {
    let inventories = store.inventories(&batch.digests).await.unwrap();
    inventories
        .into_iter()
        .map(|stored| {
            let n = (0..reports.len())
                .find(|n| digest(*n) == stored.digest)
                .unwrap();
            Rematched {
                digest: stored.digest,
                previous_sha256: stored.report_sha256,
                result: MatchResult::from_report(reports[n].clone(), target, false).unwrap(),
            }
        })
        .collect()
}

/// What the stores answer about the registry, to compare.
async fn answers(store: &Store, images: usize) -> Vec<String> {
    let mut out = Vec::new();
    for n in 0..images {
        let rows: Vec<FindingRow> = store.findings(&digest(n)).await.unwrap();
        out.push(format!("{n}: {rows:?}"));
    }
    let scopes = [Scope::All, Scope::prefixes(["team-1"]).unwrap()];
    for scope in &scopes {
        for id in [
            "CVE-2099-0001",
            "dsa-9999-1",
            "GHSA-1111-2222-3333",
            "CVE-2099-0002",
            "CVE-2099-0003",
        ] {
            out.push(format!(
                "{id} in {scope:?}: {:?}",
                store.vulnerability(id, scope).await.unwrap()
            ));
        }
        let mut q = FindingQuery::default();
        q.scope = scope.clone();
        out.push(format!("{:?}", store.vulnerabilities(&q).await.unwrap()));
        let mut after = None;
        loop {
            let page = store.findings_page(&q, after.as_ref(), 4).await.unwrap();
            out.push(format!("{:?}", page.findings));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    let mut q = FindingQuery::default();
    q.package = Some("lodash".into());
    q.layer = Some("sha256:app3".into());
    out.push(format!("{:?}", store.vulnerabilities(&q).await.unwrap()));
    // Pages of other sizes and filters: a page boundary inside one
    // package row's images, inside one id's, and between ids.
    let mut high = FindingQuery::default();
    high.severity = Some(trawl::Severity::High);
    let mut team = FindingQuery::default();
    team.repository = Some("team-1".into());
    team.severity = Some(trawl::Severity::Low);
    for (q, size) in [(&high, 1), (&high, 3), (&team, 2)] {
        let mut after = None;
        loop {
            let page = store.findings_page(q, after.as_ref(), size).await.unwrap();
            out.push(format!("{size}: {:?}", page.findings));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    out
}

/// Three stores of the same results: PostgreSQL normalized, PostgreSQL in
/// own mode (the reports without packages), SQLite.
async fn three_stores() -> (
    (StoreLocation, Store),
    (StoreLocation, Store),
    Store,
    tempfile::TempDir,
) {
    let (normalized, _) = fresh(Backend::Postgres, "normalized");
    let (own, _) = fresh(Backend::Postgres, "own");
    let (sqlite, dir) = fresh(Backend::Sqlite, "sqlite");
    (
        (normalized.clone(), open(&normalized).await),
        (own.clone(), open(&own).await),
        open(&sqlite).await,
        dir,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_packages_are_stored_once_and_answer_as_in_own_mode() {
    const IMAGES: usize = 6;
    let ((loc, normalized), (own_loc, own), sqlite, _dir) = three_stores().await;
    let reports = base_reports(IMAGES);
    let stripped: Vec<Report> = reports.iter().cloned().map(without_packages).collect();
    let t1 = target("db1");
    scan_all(&normalized, &reports, &t1).await;
    scan_all(&own, &stripped, &t1).await;
    scan_all(&sqlite, &reports, &t1).await;

    // Every image normalized; the rows once per (target, package): the
    // three findings' packages are the same packages in every image
    // (lodash in a different place and layer in each).
    assert_eq!(psql(&loc, "SELECT count(*) FROM images WHERE own"), "0");
    assert_eq!(psql(&loc, "SELECT count(*) FROM findings_own"), "0");
    assert_eq!(psql(&loc, "SELECT count(*) FROM package_findings"), "3");
    assert_eq!(psql(&loc, "SELECT count(*) FROM package_targets"), "4");
    assert_eq!(
        psql(&loc, "SELECT count(*) FROM image_packages"),
        (4 * IMAGES).to_string()
    );
    assert_eq!(psql(&loc, "SELECT count(*) FROM findings"), "18");
    // In own mode: a row per image and finding, as before.
    assert_eq!(
        psql(&own_loc, "SELECT count(*) FROM images WHERE own"),
        IMAGES.to_string()
    );
    assert_eq!(psql(&own_loc, "SELECT count(*) FROM findings_own"), "18");
    assert_eq!(psql(&own_loc, "SELECT count(*) FROM package_findings"), "0");

    let expected = answers(&sqlite, IMAGES).await;
    assert_eq!(answers(&normalized, IMAGES).await, expected);
    assert_eq!(answers(&own, IMAGES).await, expected);
    // The rows are the report's, in report order.
    let first = normalized.findings(&digest(3)).await.unwrap();
    assert_eq!(first, MatchResult::new(&reports[3], &t1).unwrap().findings);
    assert_eq!(
        first[1].path.as_deref(),
        Some("app3/node_modules/lodash/package.json")
    );
    assert_eq!(first[1].layer.as_deref(), Some("sha256:app3"));

    // A day's update: a new finding of libssl3 in every image. Only the
    // new target's package rows are written, and each image's row.
    let cve3 = f("CVE-2099-0003", 0, "high");
    let updated: Vec<Report> = (0..IMAGES)
        .map(|n| {
            let (p, f) = image(n, std::slice::from_ref(&cve3));
            report(&p, &f)
        })
        .collect();
    let t2 = target("db2");
    rescan_all(&normalized, &updated, &t2).await;
    rescan_all(
        &own,
        &updated
            .iter()
            .cloned()
            .map(without_packages)
            .collect::<Vec<_>>(),
        &t2,
    )
    .await;
    rescan_all(&sqlite, &updated, &t2).await;
    assert_eq!(psql(&loc, "SELECT count(*) FROM images WHERE own"), "0");
    assert_eq!(
        psql(
            &loc,
            "SELECT count(*) FROM package_findings pf JOIN match_targets t ON t.id = pf.target
             WHERE t.advisory_db = 'db2'"
        ),
        "4"
    );
    assert_eq!(psql(&loc, "SELECT count(*) FROM findings"), "24");
    let expected = answers(&sqlite, IMAGES).await;
    assert_eq!(answers(&normalized, IMAGES).await, expected);
    assert_eq!(answers(&own, IMAGES).await, expected);

    // Unchanged results under a new target: only the target moves, and
    // the new target's rows are written for the images' packages.
    let t3 = target("db3");
    rescan_all(&normalized, &updated, &t3).await;
    rescan_all(&sqlite, &updated, &t3).await;
    assert_eq!(psql(&loc, "SELECT count(*) FROM images WHERE own"), "0");
    assert_eq!(
        answers(&normalized, IMAGES).await,
        answers(&sqlite, IMAGES).await
    );

    // Collected when a rescan ends: the targets no image is on any more
    // (db1, db2).
    assert_eq!(psql(&loc, TARGETS_WITH_ROWS), "db3");
    // And when a rescan is planned: the rows a scan wrote for a target
    // (a process with an older database) whose image was deleted since;
    // not db3 (the images') nor db4 (planned).
    let stray = digest(IMAGES);
    normalized
        .apply(
            vec![Recorded::Image(ImageEvent {
                kind: Kind::Push,
                digest: stray.clone(),
                registry: "127.0.0.1:5000".into(),
                repository: "gc/app".into(),
                tag: None,
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                at: 100,
            })],
            1000,
            1,
        )
        .await
        .unwrap();
    let job = normalized
        .claim(OWNER, 2_000, 60_000)
        .await
        .unwrap()
        .unwrap();
    let (p, f) = image(IMAGES, &[]);
    let old = MatchResult::new(&report(&p, &f), &target("db0")).unwrap();
    assert!(
        normalized
            .finish_scan(&job.digest, job.token, "{}".into(), old, 3)
            .await
            .unwrap()
    );
    assert_eq!(psql(&loc, TARGETS_WITH_ROWS), "db0,db3");
    normalized
        .apply(
            vec![Recorded::Delete(Deletion {
                repository: "gc/app".into(),
                deleted: Deleted::Manifest(stray),
            })],
            1000,
            4,
        )
        .await
        .unwrap();
    assert_eq!(psql(&loc, TARGETS_WITH_ROWS), "db0,db3");
    plan_one_batch(&normalized, &target("db4"), IMAGES).await;
    assert_eq!(psql(&loc, TARGETS_WITH_ROWS), "db3");
    assert_eq!(
        psql(
            &loc,
            "SELECT count(*) FROM package_targets WHERE target NOT IN (SELECT id FROM match_targets)"
        ),
        "0"
    );
    assert_eq!(psql(&loc, "SELECT count(*) FROM package_findings"), "4");
    assert_eq!(
        answers(&normalized, IMAGES).await,
        answers(&sqlite, IMAGES).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_differs_falls_back_to_own_mode() {
    const IMAGES: usize = 4;
    let ((loc, normalized), _, sqlite, _dir) = three_stores().await;
    // Image 3's CVE-1 is suppressed (as a VEX statement naming its digest
    // would): its libssl3 rows differ from the stored ones.
    let reports: Vec<Report> = (0..IMAGES)
        .map(|n| {
            let (p, mut f) = image(n, &[]);
            if n == 3 {
                f[0].suppressed = true;
            }
            report(&p, &f)
        })
        .collect();
    let t1 = target("db1");
    scan_all(&normalized, &reports, &t1).await;
    scan_all(&sqlite, &reports, &t1).await;
    assert_eq!(
        psql(&loc, "SELECT string_agg(digest, ',') FROM images WHERE own"),
        digest(3)
    );
    assert_eq!(
        psql(&loc, "SELECT count(*) FROM findings_own"),
        "3",
        "image 3's rows"
    );
    assert_eq!(
        answers(&normalized, IMAGES).await,
        answers(&sqlite, IMAGES).await
    );
    let rows = normalized.findings(&digest(3)).await.unwrap();
    assert!(
        rows.iter().any(|r| r.id == "CVE-2099-0001" && r.suppressed),
        "its CVE-1 is suppressed, the others' is not: {rows:?}"
    );

    // The difference gone at the next rescan: image 3 is normalized, its
    // own rows deleted.
    let same: Vec<Report> = (0..IMAGES)
        .map(|n| {
            let (p, f) = image(n, &[]);
            report(&p, &f)
        })
        .collect();
    let t2 = target("db2");
    rescan_all(&normalized, &same, &t2).await;
    rescan_all(&sqlite, &same, &t2).await;
    assert_eq!(psql(&loc, "SELECT count(*) FROM images WHERE own"), "0");
    assert_eq!(psql(&loc, "SELECT count(*) FROM findings_own"), "0");
    assert_eq!(
        answers(&normalized, IMAGES).await,
        answers(&sqlite, IMAGES).await
    );

    // And back: a normalized image whose rows come to differ is written
    // whole to its own rows, its results unchanged or not.
    let t3 = target("db3");
    rescan_all(&normalized, &reports, &t3).await;
    rescan_all(&sqlite, &reports, &t3).await;
    assert_eq!(
        psql(&loc, "SELECT string_agg(digest, ',') FROM images WHERE own"),
        digest(3)
    );
    assert_eq!(
        answers(&normalized, IMAGES).await,
        answers(&sqlite, IMAGES).await
    );
}

/// An image that repeats a key (a package listed twice, alike: its two
/// findings are alike in id, package, path and version) stays in own mode,
/// and answers right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_repeating_a_key_stays_in_own_mode() {
    const IMAGES: usize = 3;
    let ((loc, normalized), _, sqlite, _dir) = three_stores().await;
    let reports: Vec<Report> = (0..IMAGES)
        .map(|n| {
            let (mut p, mut f) = image(n, &[]);
            if n == 2 {
                p.push(p[0].clone());
                f.push(F {
                    package: 4,
                    ..f[0].clone()
                });
            }
            report(&p, &f)
        })
        .collect();
    let t1 = target("db1");
    scan_all(&normalized, &reports, &t1).await;
    scan_all(&sqlite, &reports, &t1).await;
    assert_eq!(
        psql(&loc, "SELECT string_agg(digest, ',') FROM images WHERE own"),
        digest(2)
    );
    assert_eq!(psql(&loc, "SELECT count(*) FROM findings_own"), "4");
    assert_eq!(
        answers(&normalized, IMAGES).await,
        answers(&sqlite, IMAGES).await
    );
}

/// A store of schema version 7 (one `findings` table) with its rows is
/// migrated: every image in own mode, answering from its rows; a rescan
/// normalizes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_of_version_7_is_migrated_and_normalized_by_its_rescan() {
    const IMAGES: usize = 3;
    let ((loc, store), _, sqlite, _dir) = three_stores().await;
    let reports = base_reports(IMAGES);
    let t1 = target("db1");
    // Written in own mode, then taken back to version 6's one table.
    let stripped: Vec<Report> = reports.iter().cloned().map(without_packages).collect();
    scan_all(&store, &stripped, &t1).await;
    scan_all(&sqlite, &reports, &t1).await;
    drop(store);
    psql(&loc, support::PG_WITHOUT_NORMALIZED);
    assert_eq!(psql(&loc, "SELECT count(*) FROM findings"), "9");
    let store = open(&loc).await;
    assert_eq!(
        psql(&loc, "SELECT max(version) FROM trawl_watch_migrations"),
        "13"
    );
    assert_eq!(
        psql(&loc, "SELECT count(*) FROM images WHERE own"),
        IMAGES.to_string()
    );
    assert_eq!(
        answers(&store, IMAGES).await,
        answers(&sqlite, IMAGES).await
    );
    let t2 = target("db2");
    rescan_all(&store, &reports, &t2).await;
    rescan_all(&sqlite, &reports, &t2).await;
    assert_eq!(psql(&loc, "SELECT count(*) FROM images WHERE own"), "0");
    assert_eq!(psql(&loc, "SELECT count(*) FROM findings_own"), "0");
    assert_eq!(
        answers(&store, IMAGES).await,
        answers(&sqlite, IMAGES).await
    );

    // Links as another version of the program would have written them
    // (other package keys): the next rescan sees it and links anew.
    psql(
        &loc,
        "UPDATE image_packages SET pkey = pkey # 1; UPDATE images SET links = '\\x00'",
    );
    let t3 = target("db3");
    rescan_all(&store, &reports, &t3).await;
    rescan_all(&sqlite, &reports, &t3).await;
    assert_eq!(psql(&loc, "SELECT count(*) FROM images WHERE own"), "0");
    assert_eq!(
        psql(&loc, "SELECT count(*) FROM images WHERE links = '\\x00'"),
        "0"
    );
    assert_eq!(
        answers(&store, IMAGES).await,
        answers(&sqlite, IMAGES).await
    );
}

/// The package key: the same package instance in two images, at another
/// place and layer, has one key; another version, architecture or OS
/// release has another.
#[test]
fn package_keys_ignore_where_a_package_is() {
    use trawl_watch::store::package_key;
    let (p1, _) = image(1, &[]);
    let (p2, _) = image(2, &[]);
    let r1 = report(&p1, &[]);
    let r2 = report(&p2, &[]);
    let os = r1.os.as_ref();
    for (a, b) in r1.packages.iter().zip(&r2.packages) {
        assert_eq!(package_key(os, a), package_key(os, b), "{}", a.name);
    }
    let lodash = &r1.packages[3];
    let mut other = lodash.clone();
    other.version = "4.17.21".into();
    assert_ne!(package_key(os, lodash), package_key(os, &other));
    let mut other = r1.packages[0].clone();
    other.arch = Some("i386".into());
    assert_ne!(package_key(os, &r1.packages[0]), package_key(os, &other));
    let mut release = r1.os.clone().unwrap();
    release.version_id = Some("11".into());
    assert_ne!(
        package_key(os, &r1.packages[0]),
        package_key(Some(&release), &r1.packages[0])
    );
    assert_ne!(package_key(os, lodash), package_key(None, lodash));
}

/// Writers racing for the same packages (two stores, as two processes
/// would have, finishing scans at once): one writes each package's rows,
/// every image is normalized on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_writers_share_the_package_rows() {
    const IMAGES: usize = 8;
    let ((loc, first), _, sqlite, _dir) = three_stores().await;
    let second = open(&loc).await;
    let reports = base_reports(IMAGES);
    let events: Vec<Recorded> = (0..IMAGES)
        .map(|n| {
            Recorded::Image(ImageEvent {
                kind: Kind::Push,
                digest: digest(n),
                registry: "127.0.0.1:5000".into(),
                repository: format!("team-{}/app", n % 2),
                tag: Some("1".into()),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                at: 100,
            })
        })
        .collect();
    first.apply(events, 1000, 1).await.unwrap();
    let t1 = target("db1");
    let mut writes = Vec::new();
    for i in 0..IMAGES {
        let job = first.claim(OWNER, 2_000, 60_000).await.unwrap().unwrap();
        let n = (0..IMAGES).find(|n| digest(*n) == job.digest).unwrap();
        let result = MatchResult::new(&reports[n], &t1).unwrap();
        let store = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        writes.push(tokio::spawn(async move {
            store
                .finish_scan(&job.digest, job.token, "{}".into(), result, 3)
                .await
                .unwrap()
        }));
    }
    for w in writes {
        assert!(w.await.unwrap());
    }
    scan_all(&sqlite, &reports, &t1).await;
    assert_eq!(psql(&loc, "SELECT count(*) FROM images WHERE own"), "0");
    assert_eq!(psql(&loc, "SELECT count(*) FROM package_findings"), "3");
    assert_eq!(psql(&loc, "SELECT count(*) FROM package_targets"), "4");
    assert_eq!(
        answers(&first, IMAGES).await,
        answers(&sqlite, IMAGES).await
    );
}

/// A deadlock in what follows a rescan batch's commit (here the collection
/// of the old target's package rows after the rescan's last batch) is
/// retried on its own, and the batch's images are reported written. It
/// used to run the batch's write again, which found its batch gone and
/// reported 0 images written although all 4 were.
///
/// The deadlock is a real one, made by a second session: it locks the old
/// target's package rows, waits until the store's collection waits for
/// them (holding the planning lock by then), and asks for that lock.
/// PostgreSQL aborts the store's transaction, not the other: the store's
/// sessions check for a deadlock after 5 s of waiting (the database's
/// `deadlock_timeout`, set before they connect), the other session after an
/// hour, and its request comes within the 5 s (it is made as soon as a poll
/// of `pg_stat_activity` sees the store's session wait). A check that finds
/// no cycle is not made again, so the margin is what keeps this test from
/// hanging on a loaded machine; it then fails after a minute instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlock_after_a_rescan_batch_commits_keeps_its_count() {
    const IMAGES: usize = 4;
    let (loc, _) = fresh(Backend::Postgres, "deadlock");
    let db = db_name(&loc);
    psql(
        &loc,
        &format!("ALTER DATABASE {db} SET deadlock_timeout = '5s'"),
    );
    let store = open(&loc).await;
    let reports = base_reports(IMAGES);
    let (t1, t2) = (target("db1"), target("db2"));
    scan_all(&store, &reports, &t1).await;
    plan_one_batch(&store, &t2, IMAGES).await;
    let batch = store
        .claim_rescan(OWNER, &t2, 5_000, 65_000)
        .await
        .unwrap()
        .unwrap();
    let results = rematched(&store, &batch, &reports, &t2).await;

    let url = Postgres::get().url(&db);
    let connect = || async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    };
    let (other, watcher) = (connect().await, connect().await);
    let other_pid: i32 = other
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    other
        .batch_execute("BEGIN; SET LOCAL deadlock_timeout = '1h'")
        .await
        .unwrap();
    let locked = other
        .query(
            "SELECT 1 FROM package_findings pf JOIN match_targets t ON t.id = pf.target
             WHERE t.advisory_db = 'db1' FOR UPDATE OF pf",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(locked.len(), 3, "db1's package rows");
    let deadlock = async {
        // The store's collection, waiting for the locked rows (each poll
        // its own transaction: `pg_stat_activity` is read afresh).
        let mut waiting = None;
        for _ in 0..6_000 {
            waiting = watcher
                .query_opt(
                    "SELECT pid FROM pg_stat_activity
                     WHERE $1 = ANY(pg_blocking_pids(pid))
                     AND query LIKE 'DELETE FROM package_findings%'",
                    &[&other_pid],
                )
                .await
                .unwrap()
                .map(|r| r.get::<_, i32>(0));
            if waiting.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let waiting = waiting.expect("the collection waits for the locked rows within a minute");
        // The lock it holds (the planning lock), asked for: a cycle.
        let key: i64 = watcher
            .query_one(
                "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks
                 WHERE pid = $1 AND locktype = 'advisory' AND granted",
                &[&waiting],
            )
            .await
            .unwrap()
            .get(0);
        // Granted once PostgreSQL aborted the store's transaction.
        other
            .execute("SELECT pg_advisory_xact_lock($1)", &[&key])
            .await
            .unwrap();
        other.batch_execute("COMMIT").await.unwrap();
    };
    let (written, ()) = tokio::join!(store.finish_rescan(&batch, results, 10), deadlock);
    assert_eq!(written.unwrap(), IMAGES);
    assert_eq!(
        psql(
            &loc,
            "SELECT count(*) FROM images WHERE advisory_db = 'db2' AND rescans = 1"
        ),
        IMAGES.to_string()
    );
    // db1's rows: collected by the retry if the other session had let the
    // planning lock go by then, else by the next plan.
    plan_one_batch(&store, &target("db3"), IMAGES).await;
    assert_eq!(psql(&loc, TARGETS_WITH_ROWS), "db2");
}
