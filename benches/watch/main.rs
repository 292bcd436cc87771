//! The registry-side service (`trawl-watch`) on PostgreSQL at scale: a
//! benchmark, not a timed test (`cargo bench --bench watch`).
//!
//! 1. A fresh PostgreSQL cluster (the crate's test support) and a store
//!    filled with `TRAWL_BENCH_IMAGES` (default 100,000) images, as the
//!    service stores a scan: the image row with its inventory (compact JSON
//!    of [`trawl::Scanned`]) and a tag. The inventories are the rescan
//!    bench's synthetic variations of the Debian (80%) and distroless test
//!    images (`benches/peers/rescan.rs`), each with its own digests, built
//!    0–6 Debian point releases back, a third lacking some packages.
//! 2. Services in separate OS processes (this program re-executed, running
//!    [`trawl_watch::run`]), sharing the store. They first match every
//!    stored inventory against the base database (the store starts without
//!    findings). Then the database file of every running process is
//!    replaced and the time until every image is matched against the new one
//!    is taken, with one process and with two: a day's update (the base plus
//!    300 new records, 20 of them about the images' own packages), back to
//!    the base, and a full replacement (every record drawn anew, so every
//!    image's findings change) and back.
//! 3. With one process serving: p50 and p99 of `GET /v1/vulnerabilities/ID`
//!    for an id in ~0.4% and one in ~10% of the images, and of
//!    `GET /v1/summary`, unscoped and for one repository prefix, over HTTP.
//! 4. Push-to-result: the Debian test image pushed with `skopeo` to a real
//!    `docker-registry` that notifies the service; the time from the end of
//!    the push until the API shows the image scanned. Cold (empty layer
//!    cache), then a variant of the manifest (an annotation: the same
//!    layers, so they come from the cache).
//!
//! Each rescan reports the services' CPU and PostgreSQL's (every process
//! of the cluster, backends and background workers, from `/proc`).
//!
//! Knobs: `TRAWL_BENCH_EXPLAIN` (print the plans of an id's lookup),
//! `TRAWL_BENCH_PROFILE` (per rescan: every statement's time, summed by
//! kind, from the server's log; the rows written per table and how many
//! updates were HOT), `TRAWL_BENCH_DUMP` (a directory: the store is
//! `pg_dump`ed there before each rescan, `N.dump`, to replay its
//! statements by hand), `TRAWL_BENCH_IMAGES`, `TRAWL_BENCH_RESCAN_CONCURRENCY`
//! (`--rescan-concurrency`, default 2 as `trawl watch`'s), `TRAWL_BENCH_BATCH` (`--rescan-batch`,
//! default 256), `TRAWL_BENCH_ROUNDS` (requests per endpoint, default 200,
//! each endpoint at most 60 s), `TRAWL_TEST_IMAGES` (the built test
//! images). The databases are built once into `target/bench-data/`.

#[path = "../../tests/common/mod.rs"]
#[allow(dead_code)]
mod common;
#[path = "../../crates/trawl-watch/tests/support/postgres.rs"]
#[allow(dead_code)]
mod postgres;
#[path = "../../crates/trawl-registry/tests/registry_support/mod.rs"]
mod registry_support;
#[path = "../peers/rescan.rs"]
#[allow(dead_code)]
mod rescan;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rescan::Edition;
use trawl::advisory::AdvisoryStore;
use trawl::{ImageSource, Scanned, Scanner};
use trawl_watch::{HttpLimits, PolicyFiles, WatchedRegistry};

/// The `trawl` binary's allocator, so that the service processes started
/// from this program allocate as `trawl watch` does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const API_TOKEN: &str = "bench-api-token";
const WEBHOOK_TOKEN: &str = "bench-webhook-token";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Set in a child: run one service from the `TB_*` variables.
const CHILD: &str = "TRAWL_BENCH_WATCH_CHILD";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::var_os(CHILD).is_some() {
        child();
        return;
    }
    // `cargo bench` passes `--bench`; nothing else is taken.
    let images = env_usize("TRAWL_BENCH_IMAGES", 100_000);
    let batch = env_usize("TRAWL_BENCH_BATCH", 256);
    let rounds = env_usize("TRAWL_BENCH_ROUNDS", 200);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::Builder::new()
        .prefix("trawl-watch-bench-")
        .tempdir()
        .expect("a work directory");
    let work = work.path();
    eprintln!("work directory {}", work.display());

    // The inventories' bases and the three databases.
    let inventory = |name: &str, tag: &str| -> Scanned {
        let layout = common::images().join(name).join("oci");
        let source: ImageSource = format!("oci:{}:{tag}", layout.display())
            .parse()
            .expect("a valid source");
        Scanner::builder()
            .build()
            .expect("a scanner builds")
            .inventory_blocking(&source)
            .expect("the image scans")
    };
    let debian = inventory("debian", "bookworm");
    let distroless = inventory("distroless", "latest");
    let mut sources: BTreeMap<String, String> = BTreeMap::new();
    for scanned in [&debian, &distroless] {
        for p in &scanned.inventory.packages {
            sources
                .entry(p.source_name.clone())
                .or_insert_with(|| p.source_version.clone());
        }
    }
    let bench_data = root.join("target/bench-data");
    let db = |e| rescan::database_edition(&bench_data, &sources, e);
    let (base, update, replacement) = (
        db(Edition::Base),
        db(Edition::Update),
        db(Edition::Replacement),
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let pg = postgres::Postgres::get();
    let url = pg.database("watchbench");
    let db_name = url.rsplit('/').next().expect("a database name").to_string();
    let location: trawl_watch::StoreLocation = url.parse().expect("a PostgreSQL URL");
    // Opening the store creates the schema.
    runtime.block_on(async {
        trawl_watch::Store::open(&location)
            .await
            .expect("the store opens")
    });
    let started = Instant::now();
    runtime.block_on(fill(&url, images, &debian, &distroless));
    pg.psql(
        &db_name,
        "INSERT INTO tags (repository, tag, digest) SELECT repository, 'latest', digest FROM images;
         ANALYZE",
    );
    let fill_time = started.elapsed();
    let stored = pg.psql(
        &db_name,
        "SELECT pg_size_pretty(pg_total_relation_size('images'))",
    );
    eprintln!("stored {images} images in {fill_time:.1?}: {stored} on disk");

    let profile = std::env::var_os("TRAWL_BENCH_PROFILE").map(|_| {
        pg.psql(
            &db_name,
            &format!(
                "ALTER DATABASE {db_name} SET log_min_duration_statement = 0;
                 ALTER DATABASE {db_name} SET log_parameter_max_length = 0"
            ),
        );
        let data = pg.psql(&db_name, "SHOW data_directory");
        Path::new(&data)
            .parent()
            .expect("the cluster directory")
            .join("server.log")
    });
    let data = pg.psql(&db_name, "SHOW data_directory");
    let postmaster: u32 = std::fs::read_to_string(Path::new(&data).join("postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next()?.trim().parse().ok())
        .expect("the postmaster's pid");
    let poller = runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connect to PostgreSQL");
        tokio::spawn(connection);
        client
    });
    let bench = Bench {
        pg,
        db_name: db_name.clone(),
        url: url.clone(),
        work: work.to_path_buf(),
        images,
        batch,
        next_child: std::cell::Cell::new(0),
        current: std::cell::RefCell::new(None),
        profile,
        dumps: std::cell::Cell::new(0),
        postmaster,
        poller,
        runtime: runtime.handle().clone(),
    };
    // The store starts without findings: everything is matched first. In
    // this order (each starts from the previous one's database).
    let results = vec![
        bench.rescan("first match (no findings before)", &base, 2, true),
        bench.rescan("day's update", &update, 1, false),
        bench.rescan("back to the base (the update undone)", &base, 1, false),
        bench.rescan("day's update", &update, 2, false),
        bench.rescan("full replacement", &replacement, 2, false),
        bench.rescan("full replacement (back to the base)", &base, 1, false),
    ];

    let findings = pg.psql(&db_name, "SELECT count(*) FROM findings");
    eprintln!(
        "\n{images} images, {findings} finding rows, --rescan-batch {batch}, \
         --rescan-concurrency {}",
        env_usize("TRAWL_BENCH_RESCAN_CONCURRENCY", 2)
    );
    let layout = pg.psql(
        &db_name,
        "SELECT (SELECT count(*) FROM images WHERE own) || ' images in own mode, '
             || (SELECT count(*) FROM findings_own) || ' rows of theirs, '
             || (SELECT count(*) FROM image_packages) || ' package links, '
             || (SELECT count(*) FROM package_targets) || ' (target, package) pairs, '
             || (SELECT count(*) FROM package_findings) || ' package finding rows'",
    );
    eprintln!("{layout}");
    eprintln!(
        "{:<40} {:>9} {:>9} {:>10} {:>10} {:>12} {:>12}",
        "rescan", "processes", "changed", "seconds", "images/s", "service CPU", "PG CPU"
    );
    for r in &results {
        eprintln!(
            "{:<40} {:>9} {:>9} {:>10.1} {:>10.0} {:>11.1}s {:>11.1}s",
            r.what,
            r.processes,
            r.changed,
            r.elapsed.as_secs_f64(),
            images as f64 / r.elapsed.as_secs_f64(),
            r.cpu.as_secs_f64(),
            r.pg_cpu.as_secs_f64()
        );
    }

    // Latency of the registry-wide queries, one process serving.
    let service = bench.spawn(&base, None);
    let pick = |share: f64| -> (String, i64) {
        let target = ((images as f64) * share).round() as i64;
        let row = pg.psql(
            &db_name,
            &format!(
                "SELECT id || ' ' || n FROM (SELECT id, count(DISTINCT digest) AS n FROM findings
                 WHERE NOT suppressed GROUP BY id) c ORDER BY abs(n - {target}), id LIMIT 1"
            ),
        );
        let (id, n) = row.split_once(' ').expect("an id and a count");
        (id.to_string(), n.parse().expect("a count"))
    };
    let (typical, typical_n) = pick(0.004);
    let (hot, hot_n) = pick(0.1);
    // `TRAWL_BENCH_EXPLAIN`: the plans of the two statements of an id's
    // lookup, as the query layer writes them (the typical id).
    if std::env::var_os("TRAWL_BENCH_EXPLAIN").is_some() {
        let key = typical.to_ascii_lowercase();
        for sql in [
            format!(
                "SELECT DISTINCT unnest(f.keys) FROM findings f
                 WHERE f.keys @> ARRAY['{key}'] AND NOT f.suppressed"
            ),
            format!(
                "SELECT f.digest, i.verdict, f.id, f.package FROM findings f
                 JOIN images i ON i.digest = f.digest
                 WHERE f.keys @> ARRAY['{key}'] AND NOT f.suppressed
                 ORDER BY f.digest COLLATE \"C\", f.severity DESC, f.package COLLATE \"C\",
                          f.id COLLATE \"C\", f.fkey COLLATE \"C\""
            ),
        ] {
            eprintln!(
                "{}",
                pg.psql(&db_name, &format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"))
            );
        }
    }
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("an HTTP client");
    eprintln!(
        "\n{:<58} {:>9} {:>9} {:>8} {:>10}",
        "request", "p50", "p99", "n", "bytes"
    );
    for (what, path) in [
        (
            format!("vulnerability in {typical_n} images"),
            format!("/v1/vulnerabilities/{typical}"),
        ),
        (
            format!("vulnerability in {hot_n} images"),
            format!("/v1/vulnerabilities/{hot}"),
        ),
        ("summary".to_string(), "/v1/summary".to_string()),
        (
            "summary, one team (repository=team07/)".to_string(),
            "/v1/summary?repository=team07/".to_string(),
        ),
    ] {
        let mut times = Vec::new();
        let mut bytes = 0;
        let began = Instant::now();
        while times.len() < rounds && (times.len() < 5 || began.elapsed() < Duration::from_secs(60))
        {
            let t = Instant::now();
            let response = client
                .get(format!("http://{}{path}", service.addr))
                .bearer_auth(API_TOKEN)
                .send()
                .expect("the service answers");
            let status = response.status();
            let body = response.bytes().expect("a body");
            times.push(t.elapsed());
            assert!(status.is_success(), "{path}: {status}");
            bytes = body.len();
        }
        times.sort();
        let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
        eprintln!(
            "{:<58} {:>9.1?} {:>9.1?} {:>8} {:>10}",
            format!("{what}: {path}"),
            pct(0.5),
            pct(0.99),
            times.len(),
            bytes
        );
    }
    service.stop();

    // Push to result through the real registry.
    push_to_result(&bench, &base, &client);
}

/// What the orchestrator knows.
struct Bench {
    pg: &'static postgres::Postgres,
    db_name: String,
    url: String,
    work: PathBuf,
    images: usize,
    batch: usize,
    next_child: std::cell::Cell<usize>,
    /// The database the store was last matched against.
    current: std::cell::RefCell<Option<PathBuf>>,
    /// With `TRAWL_BENCH_PROFILE`: the server's log, every statement's
    /// duration in it.
    profile: Option<PathBuf>,
    /// Dumps written so far (`TRAWL_BENCH_DUMP`).
    dumps: std::cell::Cell<usize>,
    /// The cluster's postmaster (its processes' CPU is measured).
    postmaster: u32,
    /// The connection that polls for a rescan's end, and its runtime.
    poller: tokio_postgres::Client,
    runtime: tokio::runtime::Handle,
}

/// One measured rescan.
struct Rescan {
    what: &'static str,
    processes: usize,
    changed: i64,
    elapsed: Duration,
    /// CPU time of the service processes meanwhile.
    cpu: Duration,
    /// CPU time of PostgreSQL's processes meanwhile.
    pg_cpu: Duration,
}

impl Bench {
    /// Starts a service process on a copy of `db`; waits until it answers.
    fn spawn(&self, db: &Path, registry: Option<&str>) -> Service {
        self.spawn_at(db, registry, free_addr())
    }

    /// [`Bench::spawn`], listening on `addr`.
    fn spawn_at(&self, db: &Path, registry: Option<&str>, addr: SocketAddr) -> Service {
        let n = self.next_child.get();
        self.next_child.set(n + 1);
        let dir = self.work.join(format!("process-{n}"));
        std::fs::create_dir_all(&dir).expect("a process directory");
        let db_path = dir.join("trawl.db");
        std::fs::copy(db, &db_path).expect("copy the advisory database");
        let log = dir.join("log");
        let mut command = Command::new(std::env::current_exe().expect("this program"));
        command
            .env(CHILD, "1")
            .env("TB_STORE", &self.url)
            .env("TB_DB", &db_path)
            .env("TB_DATA", dir.join("data"))
            .env("TB_LISTEN", addr.to_string())
            .env("TB_BATCH", self.batch.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("a log file"));
        if let Some(host) = registry {
            command.env("TB_REGISTRY", host);
        }
        let child = command.spawn().expect("start a service process");
        let service = Service {
            child,
            addr,
            db: db_path,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        // `/healthz` answers once the service has started (its database
        // opened); the port accepts connections before that.
        let client = reqwest::blocking::Client::new();
        loop {
            if client
                .get(format!("http://{addr}/healthz"))
                .send()
                .is_ok_and(|r| r.status().is_success())
            {
                return service;
            }
            assert!(
                Instant::now() < deadline,
                "the service did not start: {}",
                std::fs::read_to_string(&service.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The newest rescan's sequence number.
    fn newest_rescan(&self) -> i64 {
        self.runtime.block_on(async {
            self.poller
                .query_one("SELECT coalesce(max(seq), 0) FROM rescans", &[])
                .await
                .expect("the newest rescan")
                .get(0)
        })
    }

    /// Whether every image is matched against `sha`. On one connection
    /// kept open, and cheaply until a rescan planned after `after` (a
    /// rescan's sequence number) has no batch left (its batches are
    /// planned with it, in one transaction): a count of the images (a scan
    /// of the table) ten times a second, each on a new connection, took a
    /// fifth of PostgreSQL's CPU in a rescan of 2,000 images.
    fn matched(&self, sha: &str, after: i64) -> bool {
        self.runtime.block_on(async {
            let pending: bool = self
                .poller
                .query_one(
                    "SELECT NOT EXISTS (SELECT 1 FROM rescans WHERE advisory_db = $1 AND seq > $2)
                         OR EXISTS (SELECT 1 FROM rescan_batches AS b JOIN rescans AS r
                                    ON r.id = b.rescan WHERE r.advisory_db = $1)",
                    &[&sha, &after],
                )
                .await
                .expect("poll the rescan")
                .get(0);
            if pending {
                return false;
            }
            let matched: i64 = self
                .poller
                .query_one(
                    "SELECT count(*) FROM images WHERE advisory_db = $1",
                    &[&sha],
                )
                .await
                .expect("count the images matched")
                .get(0);
            usize::try_from(matched).is_ok_and(|n| n == self.images)
        })
    }

    /// `processes` services; the time until every image is matched against
    /// `db`, after the database files are replaced (or, `at_start`, from the
    /// processes' start, which plans the rescan).
    fn rescan(&self, what: &'static str, db: &Path, processes: usize, at_start: bool) -> Rescan {
        let sha = AdvisoryStore::open(db)
            .expect("the database opens")
            .info()
            .content_sha256
            .clone();
        self.pg.psql(
            &self.db_name,
            "DROP TABLE IF EXISTS previous;
             CREATE TABLE previous AS SELECT digest, report_sha256 FROM images",
        );
        let current = if at_start {
            db.to_path_buf()
        } else {
            // Whatever the store holds now: nothing is planned at start.
            self.current.borrow().clone().expect("a current database")
        };
        if let Some(dir) = std::env::var_os("TRAWL_BENCH_DUMP") {
            let n = self.dumps.get();
            self.dumps.set(n + 1);
            let file = Path::new(&dir).join(format!("{n}.dump"));
            let out = Command::new("pg_dump")
                .args(["-Fc", "-h", "127.0.0.1", "-p", &self.pg.port().to_string()])
                .args(["-U", postgres::SUPERUSER, "-d", &self.db_name, "-f"])
                .arg(&file)
                .output()
                .expect("run pg_dump");
            assert!(
                out.status.success(),
                "pg_dump: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            eprintln!("dumped the store before \"{what}\" to {}", file.display());
        }
        let log_from = self
            .profile
            .as_ref()
            .map(|log| std::fs::metadata(log).map_or(0, |m| m.len()));
        let tables_before = self.profile.as_ref().map(|_| self.table_stats());
        let newest = self.newest_rescan();
        let pg_cpu_at_start = self.pg_cpu();
        let t0 = Instant::now();
        let services: Vec<Service> = (0..processes).map(|_| self.spawn(&current, None)).collect();
        let cpu_before = if at_start {
            Duration::ZERO
        } else {
            services.iter().map(Service::cpu).sum()
        };
        let pg_cpu_before = if at_start {
            pg_cpu_at_start
        } else {
            self.pg_cpu()
        };
        let t0 = if at_start {
            t0
        } else {
            for s in &services {
                let next = s.db.with_extension("next");
                std::fs::copy(db, &next).expect("copy the new database");
            }
            let t = Instant::now();
            for s in &services {
                std::fs::rename(s.db.with_extension("next"), &s.db).expect("replace the database");
            }
            t
        };
        let deadline = Instant::now() + Duration::from_secs(4 * 3600);
        loop {
            if self.matched(&sha, newest) {
                break;
            }
            assert!(Instant::now() < deadline, "the rescan did not finish");
            std::thread::sleep(Duration::from_millis(100));
        }
        let elapsed = t0.elapsed();
        let cpu: Duration = services.iter().map(Service::cpu).sum::<Duration>() - cpu_before;
        for s in services {
            s.stop();
        }
        let pg_cpu = self.pg_cpu().saturating_sub(pg_cpu_before);
        *self.current.borrow_mut() = Some(db.to_path_buf());
        if let (Some(log), Some(from)) = (&self.profile, log_from) {
            statement_profile(log, from);
        }
        if let Some(before) = tables_before {
            let after = self.table_stats();
            eprintln!(
                "    {:<16} {:>10} {:>10} {:>10} {:>10}",
                "table", "inserted", "updated", "HOT", "deleted"
            );
            for (table, a) in &after {
                let b = before.get(table).copied().unwrap_or_default();
                eprintln!(
                    "    {table:<16} {:>10} {:>10} {:>10} {:>10}",
                    a[0] - b[0],
                    a[1] - b[1],
                    a[2] - b[2],
                    a[3] - b[3]
                );
            }
        }
        let changed = self
            .pg
            .psql(
                &self.db_name,
                "SELECT count(*) FROM images i JOIN previous p USING (digest)
                 WHERE i.report_sha256 IS DISTINCT FROM p.report_sha256",
            )
            .parse()
            .expect("a count");
        eprintln!(
            "{what}, {processes} process(es): {elapsed:.1?}, {changed} images' findings changed, \
             services' CPU {cpu:.1?}, PostgreSQL's CPU {pg_cpu:.1?}"
        );
        Rescan {
            what,
            processes,
            changed,
            elapsed,
            cpu,
            pg_cpu,
        }
    }

    /// CPU time (user and system) of every process of the cluster so far:
    /// the postmaster's own and its children's that ended (which it
    /// waited for), and the living children's (backends, background
    /// workers), from `/proc`.
    fn pg_cpu(&self) -> Duration {
        let pid = self.postmaster;
        let mut ticks = proc_ticks(pid).map_or(0, |(_, t)| t);
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some((parent, t)) = proc_ticks(child)
                && parent == pid
            {
                ticks += t;
            }
        }
        Duration::from_millis(ticks * 10)
    }

    /// Rows inserted, updated, updated HOT and deleted so far, per table
    /// the rescans write.
    fn table_stats(&self) -> BTreeMap<String, [i64; 4]> {
        self.pg
            .psql(
                &self.db_name,
                "SELECT relname || ' ' || n_tup_ins || ' ' || n_tup_upd || ' ' || n_tup_hot_upd
                        || ' ' || n_tup_del
                 FROM pg_stat_user_tables
                 WHERE relname IN ('images', 'summary_counts', 'summary_counts_ranked',
                                   'summary_counts_rest', 'summary_deltas', 'findings_own',
                                   'image_packages', 'package_findings', 'package_targets')
                 ORDER BY relname",
            )
            .lines()
            .filter_map(|line| {
                let mut words = line.split(' ');
                let table = words.next()?.to_string();
                let mut n = [0i64; 4];
                for v in &mut n {
                    *v = words.next()?.parse().ok()?;
                }
                Some((table, n))
            })
            .collect()
    }
}

/// A service process; stopped gracefully when its standard input closes.
struct Service {
    child: Child,
    addr: SocketAddr,
    db: PathBuf,
    log: PathBuf,
}

impl Service {
    /// CPU time the process used so far (user and system), from `/proc`.
    fn cpu(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // The fields after the command name's closing parenthesis; utime and
        // stime are the 14th and 15th of the line, in clock ticks (100/s).
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(&b""[..], |(_, rest)| rest.as_bytes())
            .split(|b| *b == b' ')
            .filter_map(|f| std::str::from_utf8(f).ok())
            .filter(|f| !f.is_empty())
            .collect();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
            .sum();
        Duration::from_millis(ticks * 10)
    }

    fn stop(mut self) {
        drop(self.child.stdin.take());
        let status = self.child.wait().expect("wait for the service");
        assert!(
            status.success(),
            "the service failed: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// The store's images: inventory `n` of the rescan bench, in
/// `team{n % 37}/…-service{n % 2000}`, pushed 0–19 days ago.
async fn fill(url: &str, images: usize, debian: &Scanned, distroless: &Scanned) {
    use tokio_postgres::binary_copy::BinaryCopyInWriter;
    use tokio_postgres::types::{ToSql, Type};
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(connection);
    let sink = client
        .copy_in(
            "COPY images (digest, registry, repository, media_type, inventory, first_seen,
                          last_pushed, last_pulled) FROM STDIN BINARY",
        )
        .await
        .expect("COPY images");
    let writer = BinaryCopyInWriter::new(
        sink,
        &[
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::INT8,
            Type::INT8,
            Type::INT8,
        ],
    );
    let mut writer = std::pin::pin!(writer);
    let now = chrono::Utc::now().timestamp();
    for n in 0..images {
        let (base, kind) = if n % 5 == 4 {
            (distroless, "distroless")
        } else {
            (debian, "debian")
        };
        let scanned = rescan::variant(base, n);
        let digest = scanned
            .image
            .manifest_digest
            .clone()
            .expect("a variant has a manifest digest");
        let repository = format!("team{:02}/{kind}-service{:04}", n % 37, n % 2000);
        let inventory = serde_json::to_string(&scanned).expect("a Scanned serializes");
        let pushed = now - (n as i64 % 20) * 86_400;
        let row: [&(dyn ToSql + Sync); 8] = [
            &digest,
            &"registry.example.com",
            &repository,
            &OCI_MANIFEST,
            &inventory,
            &pushed,
            &pushed,
            &Option::<i64>::None,
        ];
        writer.as_mut().write(&row).await.expect("COPY a row");
    }
    writer.finish().await.expect("COPY images ends");
}

/// Push-to-result through a real registry notifying a running service.
fn push_to_result(bench: &Bench, db: &Path, client: &reqwest::blocking::Client) {
    use registry_support::{Auth, Notifications, PASSWORD, Registry, USER};
    let root = bench.work.join("registry");
    let storage = root.join("storage");
    std::fs::create_dir_all(&storage).expect("registry storage");
    let htpasswd = root.join("htpasswd");
    let hash = bcrypt::hash(PASSWORD, 4).expect("bcrypt");
    std::fs::write(&htpasswd, format!("{USER}:{hash}\n")).expect("htpasswd");
    // The service listens where the registry sends its events: start it
    // on a chosen port first, then the registry.
    let addr_hint = free_addr();
    let notifications = Notifications {
        url: format!("http://{addr_hint}/events"),
        authorization: format!("Bearer {WEBHOOK_TOKEN}"),
    };
    let registry = Registry::start_with(
        &root,
        &storage,
        &Auth::Htpasswd(htpasswd),
        None,
        Some(&notifications),
    );
    let service = bench.spawn_at(db, Some(&registry.host), addr_hint);
    let layout = common::images().join("debian/oci");
    let (digest, _) = registry_support::layout_manifest(&layout);
    let wait_scanned = |digest: &str| {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let r = client
                .get(format!("http://{}/v1/images/{digest}", service.addr))
                .bearer_auth(API_TOKEN)
                .send()
                .expect("the service answers");
            if r.status().is_success() {
                let v: serde_json::Value =
                    serde_json::from_slice(&r.bytes().expect("a body")).expect("JSON");
                if v["state"] == "scanned" {
                    return v;
                }
            }
            assert!(Instant::now() < deadline, "{digest} was not scanned");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let creds = format!("{USER}:{PASSWORD}");
    let t = Instant::now();
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds,
        ])
        .arg(format!("oci:{}:bookworm", layout.display()))
        .arg(format!("docker://{}/trawl/debian:cold", registry.host))
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pushed = t.elapsed();
    let t = Instant::now();
    let image = wait_scanned(&digest);
    let cold = t.elapsed();
    eprintln!(
        "\npush to result, Debian test image, cold: push {pushed:.1?}, then scanned {cold:.1?} later ({} findings)",
        image["counts"]["findings"]
    );
    // The same layers under another manifest (an annotation).
    let blob = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob).expect("the manifest")).expect("JSON");
    manifest["annotations"] = serde_json::json!({"org.example.variant": "cached"});
    let body = serde_json::to_vec(&manifest).expect("JSON");
    let variant = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body))
    );
    let t = Instant::now();
    registry_support::put_manifest(
        &registry.host,
        "trawl/debian",
        "cached",
        OCI_MANIFEST,
        &body,
    );
    wait_scanned(&variant);
    let cached = t.elapsed();
    eprintln!(
        "push to result, a variant sharing its layers (cached): {cached:.1?} from the manifest PUT"
    );
    service.stop();
}

/// A service process: its configuration from `TB_*`; stops when its
/// standard input closes.
fn child() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRAWL_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is set"));
    let registries = match std::env::var("TB_REGISTRY") {
        Ok(host) => vec![WatchedRegistry {
            host: host.clone(),
            pull_from: host,
            credentials: Some(trawl::registry::Credentials::new(
                registry_support::USER,
                registry_support::PASSWORD,
            )),
        }],
        Err(_) => vec![WatchedRegistry::new("registry.example.com")],
    };
    let mut config = trawl_watch::Config::new(
        var("TB_DB"),
        var("TB_DATA"),
        API_TOKEN,
        WEBHOOK_TOKEN,
        registries,
    );
    config.store = var("TB_STORE").parse().expect("a store URL");
    config.rescan_batch = var("TB_BATCH").parse().expect("a batch size");
    config.rescan_concurrency = env_usize("TRAWL_BENCH_RESCAN_CONCURRENCY", 2);
    config.db_poll_interval = Duration::from_millis(100);
    config.policy = PolicyFiles::default();
    config.workers = 2;
    let listen: SocketAddr = var("TB_LISTEN").parse().expect("an address");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        let _ = stop.send(());
    });
    // Beyond the default 30 s: slow answers are measured, not cut off.
    let limits = HttpLimits {
        request_timeout: Duration::from_secs(300),
        ..HttpLimits::default()
    };
    runtime
        .block_on(trawl_watch::run(config, listen, limits, async {
            let _ = stopped.await;
        }))
        .expect("the service runs");
}

/// The parent's pid and the CPU ticks (user, system, and those of ended
/// children waited for) of process `pid`, from `/proc/PID/stat`.
fn proc_ticks(pid: u32) -> Option<(u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name's closing parenthesis: state, ppid, …; utime,
    // stime, cutime and cstime are the 12th to 15th fields from there.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let parent = fields.get(1)?.parse().ok()?;
    let ticks = (11..15)
        .map(|i| fields.get(i)?.parse::<u64>().ok())
        .sum::<Option<u64>>()?;
    Some((parent, ticks))
}

/// Sums the statement durations the server logged after byte `from` of
/// `log`, by kind (the protocol step and the statement's first words).
fn statement_profile(log: &Path, from: u64) {
    let text = std::fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(&text[usize::try_from(from).unwrap_or(0).min(text.len())..])
        .into_owned();
    let mut kinds: BTreeMap<String, (f64, u64)> = BTreeMap::new();
    for line in text.lines() {
        let Some((_, rest)) = line.split_once("duration: ") else {
            continue;
        };
        let Some((ms, statement)) = rest.split_once(" ms") else {
            continue;
        };
        let Ok(ms) = ms.parse::<f64>() else { continue };
        let statement = statement.trim_start_matches(' ');
        let kind: String = statement
            .split_whitespace()
            // Prepared statements' names (`s12`, `<unnamed>`) vary.
            .filter(|w| {
                let named =
                    w.starts_with('s') && w[1..].trim_end_matches(':').parse::<u32>().is_ok();
                !(w.starts_with('<') || named)
            })
            .take(5)
            .collect::<Vec<_>>()
            .join(" ");
        let entry = kinds.entry(kind).or_default();
        entry.0 += ms;
        entry.1 += 1;
    }
    let mut kinds: Vec<_> = kinds.into_iter().collect();
    kinds.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
    for (kind, (ms, n)) in kinds.iter().take(10) {
        eprintln!("    {:>10.1} s {n:>8}x  {kind}", ms / 1000.0);
    }
}
