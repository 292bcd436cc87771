//! The registry-wide queries, the same tests against SQLite and a real
//! PostgreSQL (see `support/`): images and findings are stored the way
//! scans store them (`apply`, `claim`, `finish_scan` with reports), then
//! asked about through the store and through the HTTP API as served
//! (`Accept: text/csv`, scoped tokens).

#[macro_use]
mod support;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use support::{Backend, fresh, open};
use trawl::Report;
use trawl::Severity;
use trawl::classify::FixStateKind;
use trawl_watch::events::{Deleted, Deletion, ImageEvent, Kind, Recorded};
use trawl_watch::store::{Cursor, FindingQuery, MatchResult, MatchTarget, Scope};
use trawl_watch::{Config, ScopedToken, Service, Store, WatchedRegistry};

both!(
    vulnerabilities_are_grouped_and_filtered,
    a_vulnerability_is_found_by_any_alias,
    pages_walk_every_finding_once,
    the_summary_counts_what_the_scope_sees,
    the_api_answers_in_json_and_csv_within_scope,
    scopes_cover_exactly_the_names_under_their_prefixes,
);

/// A finding of a test report.
#[derive(Clone)]
struct F {
    id: &'static str,
    aliases: &'static [&'static str],
    package: &'static str,
    severity: &'static str,
    fixed: Option<&'static str>,
    ecosystem: &'static str,
    layer: &'static str,
}

const fn f(
    id: &'static str,
    aliases: &'static [&'static str],
    package: &'static str,
    severity: &'static str,
    fixed: Option<&'static str>,
    ecosystem: &'static str,
) -> F {
    F {
        id,
        aliases,
        package,
        severity,
        fixed,
        ecosystem,
        layer: "sha256:base",
    }
}

const CVE1_ALIASES: &[&str] = &["DSA-9999-1", "GHSA-abcd-efgh-ijkl"];

/// A report as `scan --format json` writes it.
fn report(findings: &[F], suppressed: &[F]) -> Report {
    let finding = |x: &F| {
        json!({
            "id": x.id, "aliases": x.aliases, "package": x.package,
            "installed_version": "1.0-1",
            "source_name": format!("{}-src", x.package), "source_version": "1.0-1",
            "fixed_version": x.fixed,
            "fix_state": match x.fixed { Some(_) => "fixed", None if x.severity == "medium" => "will_not_fix", None => "unfixed" },
            "severity": x.severity, "severity_source": "CVSS_V3", "ecosystem": x.ecosystem,
            "layer": x.layer, "remediation": "upgrade"
        })
    };
    let verdict = if findings.is_empty() {
        "healthy"
    } else {
        "unhealthy"
    };
    // The packages the findings are of, once each: PostgreSQL stores the
    // findings of packages that images share once (where the images'
    // findings of a package differ, they are stored per image).
    let mut packages: Vec<(&str, &str)> = findings
        .iter()
        .chain(suppressed)
        .map(|x| (x.package, x.layer))
        .collect();
    packages.sort();
    packages.dedup();
    let packages: Vec<Value> = packages
        .iter()
        .map(|(name, layer)| {
            json!({
                "type": "deb", "name": name, "version": "1.0-1", "arch": "amd64",
                "source_name": format!("{name}-src"), "source_version": "1.0-1",
                "purl": format!("pkg:deb/debian/{name}@1.0-1?arch=amd64"),
                "layer": layer, "database": "var/lib/dpkg/status"
            })
        })
        .collect();
    serde_json::from_value(json!({
        "schema_version": 1, "source": "registry:r/x@sha256:aa",
        "image": {"manifest_digest": null, "layers": [], "diff_ids": []},
        "os": null, "verdict": verdict, "verdict_reason": "test",
        "ecosystem": "Debian:12",
        "summary": {"packages": 2, "findings": findings.len(), "fixable": 0,
                    "suppressed": suppressed.len(), "by_severity": {}, "by_fix_state": {}},
        "remediation": [], "packages": packages,
        "findings": findings.iter().map(finding).collect::<Vec<_>>(),
        "suppressed": suppressed.iter().map(finding).collect::<Vec<_>>(),
        "warnings": [],
    }))
    .expect("a report")
}

fn digest(byte: char) -> String {
    format!("sha256:{}", byte.to_string().repeat(64))
}

/// An image to store: digest byte, (repository, tag) names, push time,
/// findings that count, suppressed ones.
struct Img {
    byte: char,
    names: &'static [(&'static str, Option<&'static str>)],
    pushed: i64,
    findings: Vec<F>,
    suppressed: Vec<F>,
}

/// Records the pushes of `images` and finishes their scans with their reports.
async fn seed(store: &Store, images: &[Img]) {
    let mut events = Vec::new();
    for img in images {
        for (repository, tag) in img.names {
            events.push(Recorded::Image(ImageEvent {
                kind: Kind::Push,
                digest: digest(img.byte),
                registry: "127.0.0.1:5000".into(),
                repository: (*repository).into(),
                tag: tag.map(str::to_string),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                at: img.pushed,
            }));
        }
    }
    store.apply(events, 1000, 1).await.unwrap();
    let target = MatchTarget {
        advisory_db: "db1".into(),
        policy: "p1".into(),
    };
    while let Some(job) = store.claim("seeder", 2_000, 60_000).await.unwrap() {
        let img = images
            .iter()
            .find(|i| digest(i.byte) == job.digest)
            .unwrap();
        let result = MatchResult::new(&report(&img.findings, &img.suppressed), &target).unwrap();
        assert!(
            store
                .finish_scan(&job.digest, job.token, "{}".into(), result, 3)
                .await
                .unwrap()
        );
    }
}

/// The registry of these tests (times relative to `now`):
///
/// | image | repositories | pushed | findings |
/// |---|---|---|---|
/// | a | team-a/app:1 | now | CVE-1 libssl3 critical fixed; TRAWL-LOW util-linux low unfixed; (suppressed CVE-2 bash) |
/// | b | team-a/lib:latest | 10 days ago | CVE-1 libssl3 + openssl critical fixed; CVE-3 zlib1g medium will_not_fix (Debian:11) |
/// | c | team-b/app:1 | 60 days ago | CVE-4 left-pad high fixed (npm); DSA-9999-1 (alias CVE-1) libssl3 high fixed |
/// | d | team-ab/x:1 | now | CVE-1 libssl3 critical fixed |
/// | e | team-a/shared:1, team-b/shared:1 | now | none (healthy) |
fn registry(now: i64) -> Vec<Img> {
    let cve1 = f(
        "CVE-2099-0001",
        CVE1_ALIASES,
        "libssl3",
        "critical",
        Some("1.0-2"),
        "Debian:12",
    );
    vec![
        Img {
            byte: 'a',
            names: &[("team-a/app", Some("1"))],
            pushed: now,
            findings: vec![
                cve1.clone(),
                f("TRAWL-LOW", &[], "util-linux", "low", None, "Debian:12"),
            ],
            suppressed: vec![f("CVE-2099-0002", &[], "bash", "high", None, "Debian:12")],
        },
        Img {
            byte: 'b',
            names: &[("team-a/lib", Some("latest"))],
            pushed: now - 10 * 86_400,
            findings: vec![
                cve1.clone(),
                F {
                    package: "openssl",
                    layer: "sha256:top",
                    ..cve1.clone()
                },
                f("CVE-2099-0003", &[], "zlib1g", "medium", None, "Debian:11"),
            ],
            suppressed: vec![],
        },
        Img {
            byte: 'c',
            names: &[("team-b/app", Some("1"))],
            pushed: now - 60 * 86_400,
            // In report order: severity, then package.
            findings: vec![
                f(
                    "CVE-2099-0004",
                    &[],
                    "left-pad",
                    "high",
                    Some("2.0.0"),
                    "npm",
                ),
                f(
                    "DSA-9999-1",
                    &["CVE-2099-0001"],
                    "libssl3",
                    "high",
                    Some("1.0-3"),
                    "Debian:12",
                ),
            ],
            suppressed: vec![],
        },
        Img {
            byte: 'd',
            names: &[("team-ab/x", Some("1"))],
            pushed: now,
            findings: vec![cve1],
            suppressed: vec![],
        },
        Img {
            byte: 'e',
            names: &[("team-a/shared", Some("1")), ("team-b/shared", Some("1"))],
            pushed: now,
            findings: vec![],
            suppressed: vec![],
        },
    ]
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn team_a() -> Scope {
    Scope::prefixes(["team-a"]).unwrap()
}

fn q(f: impl FnOnce(&mut FindingQuery)) -> FindingQuery {
    let mut q = FindingQuery::default();
    f(&mut q);
    q
}

/// (id, severity, fix state, images, findings, packages, aliases) of each row.
type VulnSummary = (
    String,
    Severity,
    FixStateKind,
    i64,
    i64,
    Vec<String>,
    Vec<String>,
);

async fn vulns(store: &Store, query: &FindingQuery) -> Vec<VulnSummary> {
    store
        .vulnerabilities(query)
        .await
        .unwrap()
        .into_iter()
        .map(|v| {
            (
                v.id,
                v.severity,
                v.fix_state,
                v.images,
                v.findings,
                v.packages,
                v.aliases,
            )
        })
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn row(
    id: &str,
    severity: Severity,
    fix: FixStateKind,
    images: i64,
    findings: i64,
    packages: &[&str],
    aliases: &[&str],
) -> VulnSummary {
    (
        id.into(),
        severity,
        fix,
        images,
        findings,
        strings(packages),
        strings(aliases),
    )
}

async fn vulnerabilities_are_grouped_and_filtered(backend: Backend) {
    let (location, _dir) = fresh(backend, "vulns");
    let store = open(&location).await;
    let now = now();
    seed(&store, &registry(now)).await;
    use FixStateKind::*;
    use Severity::*;
    let cve1 = row(
        "CVE-2099-0001",
        Critical,
        Fixed,
        3,
        4,
        &["libssl3", "openssl"],
        CVE1_ALIASES,
    );
    let cve3 = row("CVE-2099-0003", Medium, WillNotFix, 1, 1, &["zlib1g"], &[]);
    let cve4 = row("CVE-2099-0004", High, Fixed, 1, 1, &["left-pad"], &[]);
    let dsa = row(
        "DSA-9999-1",
        High,
        Fixed,
        1,
        1,
        &["libssl3"],
        &["CVE-2099-0001"],
    );
    let low = row("TRAWL-LOW", Low, Unfixed, 1, 1, &["util-linux"], &[]);
    // Everything (the suppressed CVE-2099-0002 never): most severe first,
    // then most images, then by id.
    assert_eq!(
        vulns(&store, &FindingQuery::default()).await,
        [
            cve1.clone(),
            cve4.clone(),
            dsa.clone(),
            cve3.clone(),
            low.clone()
        ]
    );
    assert_eq!(
        vulns(&store, &q(|q| q.severity = Some(High))).await,
        [cve1.clone(), cve4.clone(), dsa.clone()]
    );
    assert_eq!(
        vulns(&store, &q(|q| q.fix_state = Some(Unfixed))).await,
        vec![low.clone()]
    );
    // A source package name finds its binary packages' findings.
    assert_eq!(
        vulns(&store, &q(|q| q.package = Some("zlib1g-src".into()))).await,
        vec![cve3.clone()]
    );
    // `Debian` is every Debian release; `Debian:11` one; `Deb` none.
    assert_eq!(
        vulns(&store, &q(|q| q.ecosystem = Some("Debian".into())))
            .await
            .len(),
        4
    );
    assert_eq!(
        vulns(&store, &q(|q| q.ecosystem = Some("Debian:11".into()))).await,
        vec![cve3.clone()]
    );
    assert_eq!(
        vulns(&store, &q(|q| q.ecosystem = Some("Deb".into()))).await,
        []
    );
    // Repository prefixes: `team-a` is not `team-ab`.
    let cve1_in_a = row(
        "CVE-2099-0001",
        Critical,
        Fixed,
        2,
        3,
        &["libssl3", "openssl"],
        CVE1_ALIASES,
    );
    assert_eq!(
        vulns(&store, &q(|q| q.repository = Some("team-a".into()))).await,
        [cve1_in_a.clone(), cve3.clone(), low.clone()]
    );
    // A scope is the same restriction, and narrows a repository filter.
    assert_eq!(
        vulns(&store, &q(|q| q.scope = team_a())).await,
        [cve1_in_a.clone(), cve3.clone(), low.clone()]
    );
    assert_eq!(
        vulns(
            &store,
            &q(|q| {
                q.scope = team_a();
                q.repository = Some("team-b".into());
            })
        )
        .await,
        []
    );
    // Pushed within 30 days: not c.
    assert_eq!(
        vulns(&store, &q(|q| q.pushed_since = Some(now - 30 * 86_400))).await,
        [cve1.clone(), cve3, low]
    );
    assert_eq!(
        vulns(&store, &q(|q| q.layer = Some("sha256:top".into()))).await,
        [row(
            "CVE-2099-0001",
            Critical,
            Fixed,
            1,
            1,
            &["openssl"],
            CVE1_ALIASES
        )]
    );
    // By alias, case-insensitive: CVE-1 and the DSA filed for it.
    assert_eq!(
        vulns(&store, &q(|q| q.id = Some("dsa-9999-1".into()))).await,
        [cve1, dsa]
    );
}

async fn a_vulnerability_is_found_by_any_alias(backend: Backend) {
    let (location, _dir) = fresh(backend, "vuln");
    let store = open(&location).await;
    let now = now();
    seed(&store, &registry(now)).await;
    let summary = |images: Vec<trawl_watch::store::AffectedImage>| {
        images
            .into_iter()
            .map(|i| {
                (
                    i.digest,
                    i.tags
                        .iter()
                        .map(|t| format!("{}:{}", t.repository, t.tag.as_deref().unwrap_or("")))
                        .collect::<Vec<_>>(),
                    i.verdict,
                    i.last_pushed,
                    i.findings
                        .iter()
                        .map(|f| {
                            (
                                f.id.clone(),
                                f.package.clone(),
                                f.version.clone(),
                                f.fixed_version.clone(),
                            )
                        })
                        .collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>()
    };
    let libssl = |id: &str, fixed: &str| {
        (
            id.to_string(),
            "libssl3".to_string(),
            "1.0-1".to_string(),
            Some(fixed.to_string()),
        )
    };
    let unhealthy = Some("unhealthy".to_string());
    let expected = vec![
        (
            digest('a'),
            strings(&["team-a/app:1"]),
            unhealthy.clone(),
            Some(now),
            vec![libssl("CVE-2099-0001", "1.0-2")],
        ),
        (
            digest('b'),
            strings(&["team-a/lib:latest"]),
            unhealthy.clone(),
            Some(now - 10 * 86_400),
            vec![
                libssl("CVE-2099-0001", "1.0-2"),
                (
                    "CVE-2099-0001".into(),
                    "openssl".into(),
                    "1.0-1".into(),
                    Some("1.0-2".into()),
                ),
            ],
        ),
        (
            digest('c'),
            strings(&["team-b/app:1"]),
            unhealthy.clone(),
            Some(now - 60 * 86_400),
            vec![libssl("DSA-9999-1", "1.0-3")],
        ),
        (
            digest('d'),
            strings(&["team-ab/x:1"]),
            unhealthy.clone(),
            Some(now),
            vec![libssl("CVE-2099-0001", "1.0-2")],
        ),
    ];
    for key in [
        "CVE-2099-0001",
        "cve-2099-0001",
        "DSA-9999-1",
        "GHSA-abcd-efgh-ijkl",
    ] {
        assert_eq!(
            summary(store.vulnerability(key, &Scope::All).await.unwrap()),
            expected,
            "{key}"
        );
    }
    // Scoped: only team-a's images.
    assert_eq!(
        summary(
            store
                .vulnerability("GHSA-abcd-efgh-ijkl", &team_a())
                .await
                .unwrap()
        ),
        expected[..2].to_vec()
    );
    // Suppressed findings and unknown ids: no image.
    assert!(
        store
            .vulnerability("CVE-2099-0002", &Scope::All)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .vulnerability("CVE-1999-9999", &Scope::All)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .vulnerability("CVE-2099-0004", &team_a())
            .await
            .unwrap()
            .is_empty()
    );
}

/// The findings that `query` selects, walked a page of `limit` at a time;
/// `between` runs after the first page.
async fn walk(
    store: &Store,
    query: &FindingQuery,
    limit: usize,
    mut between: impl AsyncFnMut(),
) -> Vec<(String, i64, String)> {
    let mut seen = Vec::new();
    let mut cursor: Option<Cursor> = None;
    let mut pages = 0;
    loop {
        let page = store
            .findings_page(query, cursor.as_ref(), limit)
            .await
            .unwrap();
        assert!(page.findings.len() <= limit);
        seen.extend(
            page.findings
                .iter()
                .map(|f| (f.digest.clone(), f.ord, f.finding.id.clone())),
        );
        pages += 1;
        if pages == 1 {
            between().await;
        }
        match page.next {
            // Through its text form, as clients get it.
            Some(next) => cursor = Some(Cursor::decode(&next.encode()).unwrap()),
            None => break,
        }
        assert!(pages < 100, "no end");
    }
    seen
}

async fn pages_walk_every_finding_once(backend: Backend) {
    let (location, _dir) = fresh(backend, "pages");
    let store = open(&location).await;
    let now = now();
    seed(&store, &registry(now)).await;
    let all = walk(&store, &FindingQuery::default(), 1000, async || {}).await;
    // The stable order: severity (highest first), id, digest, ord.
    assert_eq!(
        all,
        [
            (digest('a'), 0, "CVE-2099-0001".to_string()),
            (digest('b'), 0, "CVE-2099-0001".into()),
            (digest('b'), 1, "CVE-2099-0001".into()),
            (digest('d'), 0, "CVE-2099-0001".into()),
            (digest('c'), 0, "CVE-2099-0004".into()),
            (digest('c'), 1, "DSA-9999-1".into()),
            (digest('b'), 2, "CVE-2099-0003".into()),
            (digest('a'), 1, "TRAWL-LOW".into()),
        ]
    );
    for limit in 1..=4 {
        assert_eq!(
            walk(&store, &FindingQuery::default(), limit, async || {}).await,
            all,
            "limit {limit}"
        );
    }
    // Filters hold on every page.
    let high = q(|q| q.severity = Some(Severity::High));
    assert_eq!(walk(&store, &high, 2, async || {}).await, all[..6].to_vec());
    let scoped = q(|q| q.scope = team_a());
    let in_a: Vec<_> = all
        .iter()
        .filter(|(d, _, _)| *d == digest('a') || *d == digest('b'))
        .cloned()
        .collect();
    assert_eq!(walk(&store, &scoped, 2, async || {}).await, in_a);
    // An image scanned between pages: nothing seen twice, nothing that was
    // there missed; its findings appear where they sort after the cursor.
    let f = walk(&store, &FindingQuery::default(), 3, async || {
        seed(
            &store,
            &[Img {
                byte: 'f',
                names: &[("team-c/new", Some("1"))],
                pushed: now,
                findings: vec![
                    f("CVE-2099-0000", &[], "early", "critical", None, "Debian:12"),
                    f("ZZZ-LATE", &[], "late", "low", None, "Debian:12"),
                ],
                suppressed: vec![],
            }],
        )
        .await;
    })
    .await;
    let unique: BTreeSet<_> = f.iter().collect();
    assert_eq!(unique.len(), f.len(), "no finding twice: {f:?}");
    for old in &all {
        assert!(f.contains(old), "{old:?} missed");
    }
    // Sorted before the first page's end: not seen; after it: seen.
    assert!(!f.contains(&(digest('f'), 0, "CVE-2099-0000".into())));
    assert_eq!(f.last(), Some(&(digest('f'), 1, "ZZZ-LATE".to_string())));
}

async fn the_summary_counts_what_the_scope_sees(backend: Backend) {
    let (location, _dir) = fresh(backend, "summary");
    let store = open(&location).await;
    seed(&store, &registry(now())).await;
    let s = serde_json::to_value(store.summary(&Scope::All, None).await.unwrap()).unwrap();
    assert_eq!(
        s,
        json!({
            "images": 5,
            "images_by_verdict": {"healthy": 1, "unhealthy": 4},
            "findings": 8,
            "findings_by_severity": {"critical": 4, "high": 2, "medium": 1, "low": 1},
            "findings_by_fix_state": {"fixed": 6, "unfixed": 1, "will_not_fix": 1},
            "top_packages": [
                {"name": "libssl3", "images": 4, "findings": 4},
                {"name": "left-pad", "images": 1, "findings": 1},
                {"name": "openssl", "images": 1, "findings": 1},
                {"name": "util-linux", "images": 1, "findings": 1},
                {"name": "zlib1g", "images": 1, "findings": 1},
            ],
            "top_repositories": [
                {"name": "team-a/lib", "images": 1, "findings": 3},
                {"name": "team-a/app", "images": 1, "findings": 2},
                {"name": "team-b/app", "images": 1, "findings": 2},
                {"name": "team-ab/x", "images": 1, "findings": 1},
            ],
        })
    );
    let scoped = serde_json::to_value(store.summary(&team_a(), None).await.unwrap()).unwrap();
    let by_repo =
        serde_json::to_value(store.summary(&Scope::All, Some("team-a")).await.unwrap()).unwrap();
    assert_eq!(scoped, by_repo);
    assert_eq!(
        scoped,
        json!({
            "images": 3,
            "images_by_verdict": {"healthy": 1, "unhealthy": 2},
            "findings": 5,
            "findings_by_severity": {"critical": 3, "medium": 1, "low": 1},
            "findings_by_fix_state": {"fixed": 3, "unfixed": 1, "will_not_fix": 1},
            "top_packages": [
                {"name": "libssl3", "images": 2, "findings": 2},
                {"name": "openssl", "images": 1, "findings": 1},
                {"name": "util-linux", "images": 1, "findings": 1},
                {"name": "zlib1g", "images": 1, "findings": 1},
            ],
            "top_repositories": [
                {"name": "team-a/lib", "images": 1, "findings": 3},
                {"name": "team-a/app", "images": 1, "findings": 2},
            ],
        })
    );
}

/// One HTTP/1.1 GET: status, headers (lower-case names), body.
async fn get(
    addr: std::net::SocketAddr,
    path: &str,
    token: &str,
    accept: &str,
) -> (u16, BTreeMap<String, String>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: w\r\nAuthorization: Bearer {token}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    assert_ne!(
        headers.get("transfer-encoding").map(String::as_str),
        Some("chunked")
    );
    (status, headers, body.to_string())
}

async fn get_json(addr: std::net::SocketAddr, path: &str, token: &str) -> (u16, Value) {
    let (status, _, body) = get(addr, path, token, "application/json").await;
    (status, serde_json::from_str(&body).unwrap())
}

/// Reads RFC 4180 CSV (quoted fields, doubled quotes, CRLF rows).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "CRLF");
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        field.is_empty() && row.is_empty(),
        "the last row ends in CRLF"
    );
    rows
}

async fn the_api_answers_in_json_and_csv_within_scope(backend: Backend) {
    let (location, dir) = fresh(backend, "api");
    let now = now();
    {
        let store = open(&location).await;
        let mut images = registry(now);
        // A hostile tag and package: quoted and defused in CSV.
        images.push(Img {
            byte: 'g',
            names: &[("team-a/evil", Some("=cmd|' /C calc'!A0"))],
            pushed: now,
            findings: vec![f(
                "CVE-2099-0005",
                &[],
                "@evil,\"pkg\"",
                "low",
                None,
                "Debian:12",
            )],
            suppressed: vec![],
        });
        seed(&store, &images).await;
    }
    let db = dir.path().join("advisory.db");
    trawl::advisory::StoreBuilder::new().write(&db).unwrap();
    let mut config = Config::new(
        &db,
        dir.path().join("data"),
        "all-token",
        "webhook-token",
        vec![WatchedRegistry::new("127.0.0.1:5000")],
    );
    config.store = location;
    config.workers = 1;
    config.scoped_tokens = vec![ScopedToken::new("a-token", ["team-a/"]).unwrap()];
    let service = Service::start(config).await.unwrap();
    let (addr, stop, server) = support::serve(&service).await;

    // Vulnerabilities, JSON.
    let (status, all) = get_json(addr, "/v1/vulnerabilities?severity=high", "all-token").await;
    assert_eq!(status, 200);
    assert_eq!(
        all,
        json!([
            {"id": "CVE-2099-0001", "severity": "critical", "fix_state": "fixed", "images": 3,
             "findings": 4, "packages": ["libssl3", "openssl"], "aliases": CVE1_ALIASES},
            {"id": "CVE-2099-0004", "severity": "high", "fix_state": "fixed", "images": 1,
             "findings": 1, "packages": ["left-pad"], "aliases": []},
            {"id": "DSA-9999-1", "severity": "high", "fix_state": "fixed", "images": 1,
             "findings": 1, "packages": ["libssl3"], "aliases": ["CVE-2099-0001"]},
        ])
    );
    // Vulnerabilities, CSV, parsed back.
    let (status, headers, body) = get(
        addr,
        "/v1/vulnerabilities?repository=team-a",
        "all-token",
        "text/csv",
    )
    .await;
    assert_eq!(status, 200);
    assert!(headers["content-type"].starts_with("text/csv"));
    assert_eq!(
        parse_csv(&body),
        [
            strings(&[
                "id",
                "severity",
                "fix_state",
                "images",
                "findings",
                "packages",
                "aliases"
            ]),
            strings(&[
                "CVE-2099-0001",
                "critical",
                "fixed",
                "2",
                "3",
                "libssl3 openssl",
                "DSA-9999-1 GHSA-abcd-efgh-ijkl"
            ]),
            strings(&[
                "CVE-2099-0003",
                "medium",
                "will_not_fix",
                "1",
                "1",
                "zlib1g",
                ""
            ]),
            strings(&[
                "CVE-2099-0005",
                "low",
                "unfixed",
                "1",
                "1",
                "'@evil,\"pkg\"",
                ""
            ]),
            strings(&["TRAWL-LOW", "low", "unfixed", "1", "1", "util-linux", ""]),
        ]
    );

    // By alias.
    let (status, v) = get_json(addr, "/v1/vulnerabilities/ghsa-abcd-efgh-ijkl", "all-token").await;
    assert_eq!(status, 200);
    assert_eq!(
        v["ids"],
        json!(["CVE-2099-0001", "DSA-9999-1", "GHSA-abcd-efgh-ijkl"])
    );
    assert_eq!(v["severity"], "critical");
    let digests: Vec<&str> = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        digests,
        [digest('a'), digest('b'), digest('c'), digest('d')]
    );
    assert_eq!(
        v["images"][2],
        json!({
            "digest": digest('c'),
            "tags": [{"repository": "team-b/app", "tag": "1"}],
            "verdict": "unhealthy",
            "last_pushed": chrono::DateTime::from_timestamp(now - 60 * 86_400, 0).unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "last_pulled": null,
            "findings": [{
                "id": "DSA-9999-1", "aliases": ["CVE-2099-0001"], "package": "libssl3",
                "version": "1.0-1", "source_name": "libssl3-src", "source_version": "1.0-1",
                "ecosystem": "Debian:12", "severity": "high", "fix_state": "fixed",
                "fixed_version": "1.0-3", "layer": "sha256:base",
            }],
        })
    );
    let (status, _) = get_json(addr, "/v1/vulnerabilities/CVE-1999-1", "all-token").await;
    assert_eq!(status, 404);

    // Findings: walk the pages by their `next` links.
    let mut path = "/v1/findings?severity=low&limit=3".to_string();
    let mut seen = Vec::new();
    loop {
        let (status, headers, body) = get(addr, &path, "all-token", "application/json").await;
        assert_eq!(status, 200, "{body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        for f in page["findings"].as_array().unwrap() {
            seen.push((
                f["digest"].as_str().unwrap().to_string(),
                f["ord"].as_i64().unwrap(),
            ));
        }
        match page["next"].as_str() {
            Some(next) => {
                assert_eq!(headers["link"], format!("<{next}>; rel=\"next\""));
                assert!(next.contains("severity=low") && next.contains("limit=3"));
                path = format!("/v1/findings{next}");
            }
            None => {
                assert!(!headers.contains_key("link"));
                assert_eq!(page["next_cursor"], Value::Null);
                break;
            }
        }
    }
    assert_eq!(seen.len(), 9);
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 9);
    let (status, _) = get_json(addr, "/v1/findings?cursor=bogus", "all-token").await;
    assert_eq!(status, 400);
    let (status, _) = get_json(addr, "/v1/findings?severity=awful", "all-token").await;
    assert_eq!(status, 400);
    let (status, _) = get_json(addr, "/v1/findings?pushed_within=1w", "all-token").await;
    assert_eq!(status, 400);
    let (_, recent) = get_json(addr, "/v1/findings?pushed_within=30d", "all-token").await;
    assert!(
        recent["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["digest"] != digest('c'))
    );
    assert_eq!(recent["findings"].as_array().unwrap().len(), 7);

    // Findings, CSV: the hostile tag and package come back as given, defused.
    let (_, _, body) = get(
        addr,
        "/v1/findings?repository=team-a/evil",
        "all-token",
        "text/csv",
    )
    .await;
    let rows = parse_csv(&body);
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0][0..4],
        strings(&["severity", "id", "aliases", "package"])
    );
    let record: BTreeMap<&str, &str> = rows[0]
        .iter()
        .map(String::as_str)
        .zip(rows[1].iter().map(String::as_str))
        .collect();
    assert_eq!(record["package"], "'@evil,\"pkg\"");
    assert_eq!(record["tags"], "team-a/evil:=cmd|' /C calc'!A0");
    assert_eq!(record["digest"], digest('g'));

    // Images, CSV: a tag starting with `=` is defused.
    let (_, _, body) = get(addr, "/v1/images", "a-token", "text/csv").await;
    let rows = parse_csv(&body);
    let names: Vec<(String, String)> = rows[1..]
        .iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    assert_eq!(
        names,
        [
            ("team-a/app".to_string(), "1".to_string()),
            ("team-a/evil".into(), "'=cmd|' /C calc'!A0".into()),
            ("team-a/lib".into(), "latest".into()),
            ("team-a/shared".into(), "1".into()),
        ]
    );

    // The scoped token sees team-a only, everywhere.
    let (_, images) = get_json(addr, "/v1/images", "a-token").await;
    assert!(
        images
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["repository"].as_str().unwrap().starts_with("team-a/"))
    );
    let (_, vulns) = get_json(addr, "/v1/vulnerabilities", "a-token").await;
    let ids: Vec<&str> = vulns
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "CVE-2099-0001",
            "CVE-2099-0003",
            "CVE-2099-0005",
            "TRAWL-LOW"
        ]
    );
    assert_eq!(vulns[0]["images"], 2);
    let (status, v) = get_json(addr, "/v1/vulnerabilities/CVE-2099-0001", "a-token").await;
    assert_eq!(status, 200);
    assert_eq!(v["images"].as_array().unwrap().len(), 2);
    for out_of_scope in [
        "/v1/vulnerabilities/CVE-2099-0004".to_string(),
        format!("/v1/images/{}", digest('c')),
        format!("/v1/images/{}/findings", digest('c')),
        format!("/v1/images/{}", digest('d')),
        format!("/v1/images/{}", digest('z')),
    ] {
        let (status, body) = get_json(addr, &out_of_scope, "a-token").await;
        assert_eq!(status, 404, "{out_of_scope}");
        assert_eq!(body, json!({"error": body["error"]}));
    }
    // In both repositories: seen, with its team-a tag only.
    let (status, e) = get_json(addr, &format!("/v1/images/{}", digest('e')), "a-token").await;
    assert_eq!(status, 200);
    assert_eq!(
        e["tags"],
        json!([{"repository": "team-a/shared", "tag": "1"}])
    );
    let (_, all_e) = get_json(addr, &format!("/v1/images/{}", digest('e')), "all-token").await;
    assert_eq!(all_e["tags"].as_array().unwrap().len(), 2);
    let (_, page) = get_json(addr, "/v1/findings?limit=1000", "a-token").await;
    for f in page["findings"].as_array().unwrap() {
        let d = f["digest"].as_str().unwrap();
        assert!(
            [digest('a'), digest('b'), digest('g')].contains(&d.to_string()),
            "{d}"
        );
    }
    assert_eq!(page["findings"].as_array().unwrap().len(), 6);
    let (_, findings_b) = get_json(addr, "/v1/findings?repository=team-b", "a-token").await;
    assert_eq!(findings_b["findings"], json!([]));
    let (_, summary) = get_json(addr, "/v1/summary", "a-token").await;
    assert_eq!(summary["images"], 4);
    assert_eq!(summary["findings"], 6);
    let repos: Vec<&str> = summary["top_repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(repos, ["team-a/lib", "team-a/app", "team-a/evil"]);
    let (_, summary) = get_json(addr, "/v1/summary", "all-token").await;
    assert_eq!(summary["images"], 6);
    // Wrong tokens.
    let (status, _) = get_json(addr, "/v1/summary", "nope").await;
    assert_eq!(status, 401);

    let _ = stop.send(());
    server.await.unwrap();
    service.stop().await;
}

/// Repository names next to a prefix in byte order: a prefix of another
/// name (`team-1`, `team-10`), bytes just below and above `/` (`.`, `-`,
/// `0`, `~`), non-ASCII, an empty path component.
const EDGE_NAMES: &[&str] = &[
    "team-1",
    "team-1/x",
    "team-1/x/y",
    "team-10",
    "team-10/x",
    "team-1.x",
    "team-1-x",
    "team-10x",
    "team-1~",
    "team-1/\u{e9}t\u{e9}",
    "t\u{e9}am-1",
    "t\u{e9}am-1/x",
    "team-1//z",
    "team-2/x",
];

/// The scope filters (byte-wise ranges in SQL, per-prefix totals in the
/// summary) against [`Scope::covers`]: every question asked in scopes and
/// with `repository` prefixes next to those names answers for exactly the
/// names the prefix covers.
async fn scopes_cover_exactly_the_names_under_their_prefixes(backend: Backend) {
    let (location, _dir, db) = match backend {
        Backend::Sqlite => {
            let (location, dir) = fresh(backend, "edges");
            (location, dir, None)
        }
        Backend::Postgres => {
            let url = support::postgres::Postgres::get().database("edges");
            let db = url.rsplit('/').next().unwrap().to_string();
            (url.parse().unwrap(), tempfile::tempdir().unwrap(), Some(db))
        }
    };
    let store = open(&location).await;
    let vuln = f(
        "CVE-2099-0100",
        &["DSA-9100-1"],
        "libssl3",
        "high",
        Some("1.0-2"),
        "Debian:12",
    );
    // One image per name (digits and a-e), and image f in two names.
    let hex = "0123456789abcde";
    let mut images: Vec<Img> = EDGE_NAMES
        .iter()
        .zip(hex.chars())
        .map(|(name, byte)| Img {
            byte,
            names: Box::leak(Box::new([(*name, Some("1"))])),
            pushed: now(),
            findings: vec![vuln.clone()],
            suppressed: vec![],
        })
        .collect();
    images.push(Img {
        byte: 'f',
        names: &[("team-1/x", Some("2")), ("team-10/x", Some("1"))],
        pushed: now(),
        findings: vec![vuln.clone()],
        suppressed: vec![],
    });
    seed(&store, &images).await;
    let prefixes: &[&[&str]] = &[
        &["team-1"],
        &["team-1/"],
        &["team-1/x"],
        &["team-1/x/"],
        &["team-10"],
        &["team"],
        &["team-1/\u{e9}t\u{e9}"],
        &["t\u{e9}am-1"],
        &["team-1/", "team-1/x"],
        &["team-10", "t\u{e9}am-1"],
        &["team-1.x", "team-1~"],
        &["team-1/"],
    ];
    let mut scopes: Vec<Scope> = vec![Scope::All];
    scopes.extend(prefixes.iter().map(|p| Scope::prefixes(*p).unwrap()));
    // As seeded; after image 0 is pushed to `team-1/x` and image f deleted
    // from there (its only listing there); PostgreSQL: after the deltas are folded into the
    // counters and the prefixes' totals.
    for round in ["seeded", "moved", "folded"] {
        match round {
            "moved" => {
                let pushed = ImageEvent {
                    kind: Kind::Push,
                    digest: digest('0'),
                    registry: "127.0.0.1:5000".into(),
                    repository: "team-1/x".into(),
                    tag: Some("3".into()),
                    media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                    at: now(),
                };
                let deleted = Deletion {
                    repository: "team-1/x".into(),
                    deleted: Deleted::Manifest(digest('f')),
                };
                store
                    .apply(
                        vec![Recorded::Image(pushed), Recorded::Delete(deleted)],
                        1000,
                        now(),
                    )
                    .await
                    .unwrap();
                images[0].names = &[("team-1", Some("1")), ("team-1/x", Some("3"))];
                images.last_mut().unwrap().names = &[("team-10/x", Some("1"))];
            }
            "folded" => match &db {
                Some(db) => assert_eq!(
                    support::postgres::Postgres::get().psql(db, "SELECT summary_fold()"),
                    "t"
                ),
                None => continue,
            },
            _ => {}
        }
        check_edges(&store, &images, &scopes, round).await;
    }
}

/// [`scopes_cover_exactly_the_names_under_their_prefixes`]' questions.
async fn check_edges(store: &Store, images: &[Img], scopes: &[Scope], round: &str) {
    let repositories: &[Option<&str>] = &[
        None,
        Some("team-1"),
        Some("team-1/"),
        Some("team-1/x"),
        Some("team-10"),
        Some("t\u{e9}am-1"),
    ];
    for scope in scopes {
        for repository in repositories {
            let within = |name: &str| {
                scope.covers(name)
                    && repository.is_none_or(|r| Scope::prefixes([r]).unwrap().covers(name))
            };
            let context = format!("{round}: scope {scope:?}, repository {repository:?}");
            // The listings in scope (repository, digest), and their images.
            let listings: BTreeSet<(String, String)> = images
                .iter()
                .flat_map(|i| i.names.iter().map(move |(n, _)| (*n, digest(i.byte))))
                .filter(|(n, _)| within(n))
                .map(|(n, d)| (n.to_string(), d))
                .collect();
            let digests: BTreeSet<String> = listings.iter().map(|(_, d)| d.clone()).collect();

            let page = store
                .findings_page(
                    &q(|q| {
                        q.scope = scope.clone();
                        q.repository = repository.map(str::to_string);
                    }),
                    None,
                    100,
                )
                .await
                .unwrap();
            let found: BTreeSet<String> = page.findings.iter().map(|f| f.digest.clone()).collect();
            assert_eq!(found, digests, "findings, {context}");
            for f in &page.findings {
                assert!(
                    f.tags.iter().all(|t| scope.covers(&t.repository)),
                    "tags out of scope: {context}"
                );
            }
            let rows = vulns(
                store,
                &q(|q| {
                    q.scope = scope.clone();
                    q.repository = repository.map(str::to_string);
                }),
            )
            .await;
            let counted: i64 = rows.iter().map(|r| r.3).sum();
            assert_eq!(counted, digests.len() as i64, "vulnerabilities, {context}");

            // Scoped, the summary counts listings; unscoped, images.
            let summary = store.summary(scope, *repository).await.unwrap();
            let counted = if *scope == Scope::All && repository.is_none() {
                digests.len()
            } else {
                listings.len()
            } as i64;
            assert_eq!(summary.images, counted, "summary, {context}");
            assert_eq!(summary.findings, counted, "summary, {context}");
            assert_eq!(
                summary,
                store.summary_recount(scope, *repository).await.unwrap(),
                "recount, {context}"
            );
            let mut names: Vec<String> = summary
                .top_repositories
                .iter()
                .map(|r| r.name.clone())
                .collect();
            names.sort();
            let mut expected: Vec<String> = listings.iter().map(|(n, _)| n.clone()).collect();
            expected.dedup();
            expected.truncate(10);
            if expected.len() < 10 {
                assert_eq!(names, expected, "top repositories, {context}");
            }

            if repository.is_none() {
                for id in ["CVE-2099-0100", "dsa-9100-1"] {
                    let affected = store.vulnerability(id, scope).await.unwrap();
                    assert!(!affected.is_empty() || digests.is_empty(), "{context}");
                    let found: BTreeSet<String> =
                        affected.iter().map(|i| i.digest.clone()).collect();
                    assert_eq!(found, digests, "{id}, {context}");
                    for image in &affected {
                        let mut tags: Vec<String> =
                            image.tags.iter().map(|t| t.repository.clone()).collect();
                        tags.sort();
                        let mut expected: Vec<String> = listings
                            .iter()
                            .filter(|(_, d)| *d == image.digest)
                            .map(|(n, _)| n.clone())
                            .collect();
                        expected.sort();
                        assert_eq!(tags, expected, "{id} tags, {context}");
                    }
                }
            }
        }
    }
}
