//! The registry-side scanning service behind `cargo run --example watch`:
//! everything but argument parsing, so tests can run it in-process.
//!
//! # How it works
//!
//! - The HTTP server ([`server`]) bounds every connection: idle, header and
//!   request timeouts, a connection cap, and a stop that does not wait for
//!   idle clients.
//! - `POST /events` ([`api`]) takes a registry's notification envelope
//!   ([`events`]), records the pushes and pulls of image manifests, and queues
//!   a scan for each pushed image without a report ([`store`]: the queue is a
//!   table of the same SQLite file as the results, so it survives a crash).
//!   Only events naming a configured registry ([`Config::registries`]) are
//!   taken; any other host is refused, logged and counted, and nothing is
//!   pulled from it. Duplicates coalesce: an image queued, being scanned or
//!   already scanned is not queued again. Back-pressure is per event: once
//!   `max_pending` scans wait, the next event that needs one and all after it
//!   are not recorded and the answer is 503 with `Retry-After`; the registry
//!   sends the envelope again later, and the part already recorded records
//!   again without effect ([`store::Store::apply`]).
//! - `workers` tasks take jobs oldest first, each under a lease renewed while
//!   it scans ([`store`] explains how a crash is charged only to the job
//!   running alone). A scan pulls the image from the configured registry the
//!   event named, at its pull address, with that registry's credentials only
//!   ([`trawl::Scanner::inventory`]: the blocking work runs on a thread of its
//!   own), stores the inventory, matches it against the current advisory
//!   database and stores the report.
//! - The advisory database file is polled (its device, inode, size, mtime and
//!   ctime) every `db_poll_interval`. The service never reads that file in
//!   place: a new version is copied into `DATA/advisory-db/`, the copy is
//!   verified whole ([`AdvisoryStore::verify`]) and then used, so a file
//!   rewritten in place (which would turn the mapped pages of a database in
//!   use into a SIGBUS) is at worst a torn copy that is refused and logged
//!   until the file is whole again. `db build` and `db pull` replace it by
//!   rename, as they should. Then every image pushed or pulled within
//!   `rescan_window` whose report came from another database (or policy) is
//!   matched again from its stored inventory: nothing is pulled. The same
//!   pass runs at start, for a database replaced while the service was down.
//!   Matching and storing hold one lock, so a scan finishing during a rescan
//!   is matched against the new database, never stored with the old one.
//! - The policy's ignore and VEX files are polled the same way, and so is
//!   the date (an ignore rule that expires stops suppressing). When what the
//!   policy decides changes ([`policy_id`]), the same images are classified
//!   again; every report records the database and the policy it came from.
//! - A `delete` of a manifest removes it from that repository's listing; an
//!   image no repository holds any more is forgotten, its queued job too.
//! - After each scan the on-disk layer cache is pruned to `cache_max_bytes`,
//!   least recently used entries first.
//! - Error messages are stored, served and logged with the query strings and
//!   user info of URLs redacted ([`redact_urls`]): a blob download redirected
//!   to presigned storage URL must not publish its signature.
//! - Stopping (the `shutdown` future) stops taking events and jobs; scans in
//!   progress are put back in the queue and redone at the next start.

#[path = "api.rs"]
mod api;
#[path = "events.rs"]
mod events;
#[path = "../support/policy.rs"]
pub mod policy;
#[path = "server.rs"]
pub mod server;
#[path = "store.rs"]
mod store;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use tokio::sync::{Notify, watch};
use tracing::{debug, error, info, warn};
use trawl::advisory::AdvisoryStore;
use trawl::registry::{Credentials, RegistryReference};
use trawl::{ImageSource, Policy, RegistryOptions, Report, Scanned, Scanner};

use store::{Job, MatchResult, Store, StoreError};

/// A registry `watch` scans for: events must name it, and images are pulled
/// from it with its own credentials and never sent anywhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedRegistry {
    /// `HOST[:PORT]` as the registry's events name it (the host clients
    /// push to; compared without regard to case).
    pub host: String,
    /// `HOST[:PORT]` to pull from: `host` itself, or another address of the
    /// same registry (an internal name, a relay).
    pub pull_from: String,
    /// Credentials sent to `pull_from`; without them Docker's configuration
    /// for that host is used, as `scan` does.
    pub credentials: Option<Credentials>,
}

/// What the service needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen for the webhook and the API.
    pub listen: SocketAddr,
    /// The results store and layer cache live here.
    pub data_dir: PathBuf,
    /// The compiled advisory database; watched for replacement.
    pub advisory_db: PathBuf,
    /// Bearer token of the REST API.
    pub api_token: String,
    /// Bearer token the registry sends with notifications.
    pub webhook_token: String,
    /// How registries are reached (CA, plain-HTTP hosts, platform, Docker config).
    pub registry: RegistryOptions,
    /// The registries scanned for. An event naming any other host is
    /// refused and nothing is pulled from it.
    pub registries: Vec<WatchedRegistry>,
    /// Scans run at once.
    pub workers: usize,
    /// Scans that may wait before `POST /events` answers 503.
    pub max_pending: usize,
    /// Images pushed or pulled this recently are matched again when the
    /// advisory database changes.
    pub rescan_window: Duration,
    /// How often the advisory database and policy files are checked for changes.
    pub db_poll_interval: Duration,
    /// What counts toward the verdict; its files are watched like the database.
    pub policy: policy::PolicyArgs,
    /// The layer cache under `data_dir` is pruned to this size (least
    /// recently used entries first) after each scan.
    pub cache_max_bytes: u64,
    /// Timeouts and the connection cap of the HTTP server.
    pub http: server::HttpLimits,
    /// How long a running job's lease lasts without being renewed; it is
    /// renewed every third of it while the scan runs.
    pub job_lease: Duration,
}

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The results store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The advisory database could not be opened.
    #[error(transparent)]
    AdvisoryDb(#[from] trawl::advisory::StoreError),
    /// An ignore or VEX file could not be read.
    #[error(transparent)]
    Policy(#[from] trawl::classify::policy::PolicyError),
    /// The layer cache directory could not be created.
    #[error("cannot create the layer cache in {}: {source}", path.display())]
    Cache {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The advisory database could not be copied for use.
    #[error("cannot copy the advisory database {} to {}: {source}", from.display(), to.display())]
    AdvisoryDbCopy {
        /// The database file.
        from: PathBuf,
        /// The copy.
        to: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The advisory database (its copy) did not open or verify.
    #[error("advisory database {} not usable: {reason}", path.display())]
    AdvisoryDbUnusable {
        /// The database file.
        path: PathBuf,
        /// Why, with the store's error.
        reason: String,
    },
    /// The advisory database kept changing while it was copied.
    #[error("the advisory database {} keeps changing while it is read; replace it by rename", path.display())]
    AdvisoryDbChanging {
        /// The database file.
        path: PathBuf,
    },
    /// A job names a registry that is not configured (any more).
    #[error("registry {0:?} is not configured (--registry): nothing is pulled from it")]
    UnknownRegistry(String),
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A stored inventory or a report could not be (de)serialized.
    #[error("stored JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A background task ended without an answer.
    #[error("a background task was lost")]
    Lost,
}

/// The advisory database and policy in use, and the scanner that matches
/// and classifies with them.
struct Matcher {
    scanner: Scanner,
    /// The database's content SHA-256.
    db_id: String,
    /// The policy's id ([`policy_id`]).
    policy_id: String,
    /// The private copy of the database in use.
    db_copy: PathBuf,
}

/// State shared by the HTTP handlers, the workers and the database watcher.
struct Shared {
    config: Config,
    store: Arc<Store>,
    /// Held while matching and storing, so results follow database changes in order.
    matcher: tokio::sync::Mutex<Matcher>,
    /// The current database's content SHA-256 and policy id, for `GET /healthz`.
    ids: RwLock<(String, String)>,
    /// Scanners that pull, one per configured registry (credentials are per registry).
    pullers: Mutex<HashMap<String, Scanner>>,
    /// The configured registry hosts, as events name them.
    registry_hosts: Vec<String>,
    /// Events refused since the start because they named another registry.
    unknown_registry_events: AtomicU64,
    /// This process's name on job leases.
    owner: String,
    /// Woken when jobs are queued.
    work: Notify,
}

impl Shared {
    /// Runs a store call on the blocking pool.
    async fn store<T, F>(&self, call: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || call(&store))
            .await
            .map_err(|_| StoreError::Lost)?
    }

    /// The configured registry events name `host`, and the scanner that
    /// pulls from it (with its credentials, sent to its pull address only).
    fn puller(&self, host: &str) -> Result<(WatchedRegistry, Scanner), ServiceError> {
        let registry = self
            .config
            .registries
            .iter()
            .find(|r| r.host.eq_ignore_ascii_case(host))
            .cloned()
            .ok_or_else(|| ServiceError::UnknownRegistry(host.to_string()))?;
        let mut pullers = self.pullers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(scanner) = pullers.get(&registry.host) {
            return Ok((registry, scanner.clone()));
        }
        let mut options = self.config.registry.clone();
        if let Some(credentials) = &registry.credentials {
            options = options.credentials(registry.pull_from.clone(), credentials.clone());
        }
        let cache = self.config.data_dir.join("layers");
        let scanner = Scanner::builder()
            .registry_options(options)
            .cache_dir(&cache)
            .build()
            .map_err(|source| ServiceError::Cache {
                path: cache,
                source,
            })?;
        pullers.insert(registry.host.clone(), scanner.clone());
        Ok((registry, scanner))
    }

    /// Counts (and logs) an event naming a registry that is not configured.
    fn refuse_unknown_registry(&self, id: &str, host: &str) {
        self.unknown_registry_events.fetch_add(1, Ordering::Relaxed);
        // Both come from whoever made the request: bounded and escaped.
        let shorten = |s: &str| s.chars().take(256).collect::<String>();
        warn!(
            id = ?shorten(id),
            host = ?shorten(host),
            "event names a registry that is not configured (--registry): refused, nothing pulled"
        );
    }
}

/// Runs the service until `shutdown` completes, then stops: no new
/// requests or jobs; scans in progress go back to the queue.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServiceError> {
    let data_dir = config.data_dir.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&data_dir))
        .await
        .map_err(|_| ServiceError::Lost)??;
    let store = Arc::new(store);
    let owner = format!("{}-{}", std::process::id(), now_ms());
    // The store's lock proves no other process runs: every job left running
    // belongs to one that died.
    let recovered = store.recover_orphans(&owner, true, now_ms())?;
    if recovered.jobs > 0 {
        info!(
            jobs = recovered.jobs,
            charged = recovered.charged,
            "scans interrupted by the last stop are queued again, to run one at a time"
        );
    }
    let policy_seen = policy_inputs(&config.policy);
    let policy = config.policy.load()?;
    for note in policy::expired_rules(&policy) {
        warn!("{note}");
    }
    let policy_id = policy_id(&policy);
    let (db, db_copy, identity) =
        open_database_at_start(&config.advisory_db, &copies_dir(&config.data_dir)).await?;
    let db_id = db.info().content_sha256.clone();
    info!(path = %config.advisory_db.display(), records = db.info().records, "advisory database opened");
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServiceError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().unwrap_or(config.listen);
    info!(%addr, workers = config.workers, "listening");

    let cache = config.data_dir.join("layers");
    let base = Scanner::builder()
        .cache_dir(&cache)
        .policy(policy)
        .build()
        .map_err(|source| ServiceError::Cache {
            path: cache,
            source,
        })?;
    let shared = Arc::new(Shared {
        store,
        matcher: tokio::sync::Mutex::new(Matcher {
            scanner: base.with_database(db),
            db_id: db_id.clone(),
            policy_id: policy_id.clone(),
            db_copy,
        }),
        ids: RwLock::new((db_id, policy_id)),
        pullers: Mutex::new(HashMap::new()),
        registry_hosts: config.registries.iter().map(|r| r.host.clone()).collect(),
        unknown_registry_events: AtomicU64::new(0),
        owner,
        work: Notify::new(),
        config,
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(watch_inputs(
        shared.clone(),
        identity,
        policy_seen,
        stop_rx.clone(),
    ));
    for _ in 0..shared.config.workers.max(1) {
        tasks.spawn(worker(shared.clone(), stop_rx.clone()));
    }
    let app = api::router(shared.clone());
    let mut server_stop = stop_rx.clone();
    let limits = shared.config.http;
    let server = tokio::spawn(async move {
        server::serve(listener, app, limits, async move {
            stopped(&mut server_stop).await;
        })
        .await;
    });
    shutdown.await;
    info!("stopping");
    let _ = stop_tx.send(true);
    let served = server.await;
    while tasks.join_next().await.is_some() {}
    served.map_err(|_| ServiceError::Lost)
}

/// Completes once the service is told to stop (or its stop sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`: drop it here.
    let _ = stop.wait_for(|stop| *stop).await.map(|_| ());
}

/// Seconds since the Unix epoch.
fn now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Milliseconds since the Unix epoch (leases).
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Takes jobs until told to stop.
async fn worker(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let lease = shared.config.job_lease.max(MIN_LEASE);
    loop {
        if *stop.borrow() {
            return;
        }
        // Registered before looking, so a job queued meanwhile wakes us.
        let notified = shared.work.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let owner = shared.owner.clone();
        let claimed = shared
            .store(move |s| {
                let now = now_ms();
                s.claim(&owner, now, now.saturating_add(millis(lease)))
            })
            .await;
        match claimed {
            Ok(Some(job)) => {
                scan(&shared, job, &mut stop).await;
                // A job that had to run alone may have kept others waiting.
                shared.work.notify_waiters();
            }
            Ok(None) => {
                tokio::select! {
                    () = notified => {}
                    // Leases of other owners expire without a notification.
                    () = tokio::time::sleep(lease) => {}
                    () = stopped(&mut stop) => return,
                }
            }
            Err(e) => {
                error!(error = %e, "cannot take a job from the queue");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = stopped(&mut stop) => return,
                }
            }
        }
    }
}

/// The shortest job lease (a shorter configured one is raised to it).
const MIN_LEASE: Duration = Duration::from_millis(300);

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renews a running job's lease every third of its length, until aborted.
async fn heartbeat(store: Arc<Store>, digest: String, token: i64, lease: Duration) {
    let lease = lease.max(MIN_LEASE);
    let mut ticks = tokio::time::interval(lease / 3);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let (store, job) = (store.clone(), digest.clone());
        let renewed = tokio::task::spawn_blocking(move || {
            store.heartbeat(&job, token, now_ms().saturating_add(millis(lease)))
        })
        .await;
        match renewed {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                debug!(%digest, "the job's lease is gone (deleted or recovered)");
                return;
            }
            Ok(Err(e)) => warn!(%digest, error = %e, "cannot renew the job's lease"),
            Err(_) => return,
        }
    }
}

/// Pulls and scans one image and stores the result.
async fn scan(shared: &Shared, job: Job, stop: &mut watch::Receiver<bool>) {
    let _beat = AbortOnDrop(tokio::spawn(heartbeat(
        shared.store.clone(),
        job.digest.clone(),
        job.token,
        shared.config.job_lease,
    )));
    let digest = job.digest.clone();
    let token = job.token;
    let started = Instant::now();
    let puller = shared.puller(&job.registry);
    let (source, pulled) = match &puller {
        Ok((registry, puller)) => {
            let reference =
                RegistryReference::with_tag(&registry.pull_from, &job.repository, "latest")
                    .with_digest(&job.digest);
            let source = ImageSource::Registry { reference };
            tokio::select! {
                result = puller.inventory(&source) => (source.to_string(), result.map_err(|e| error_chain(&e))),
                () = stopped(stop) => {
                    info!(%source, "stopping: the scan is queued again");
                    if let Err(e) = shared.store(move |s| s.release(&digest, token)).await {
                        error!(error = %e, "cannot put the scan back in the queue");
                    }
                    return;
                }
            }
        }
        Err(e) => (
            format!("{}/{}@{}", job.registry, job.repository, job.digest),
            Err(error_chain(e)),
        ),
    };
    if let Ok((_, puller)) = puller {
        prune_cache(puller, shared.config.cache_max_bytes).await;
    }
    let outcome = match pulled {
        Ok(scanned) => {
            let packages = scanned.inventory.packages.len();
            match_and_store(shared, &job, scanned)
                .await
                .map(|verdict| (verdict, packages))
                .map_err(|e| error_chain(&e))
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok((verdict, packages)) => {
            info!(%source, verdict, packages, elapsed = ?started.elapsed(), "scanned")
        }
        Err(message) => {
            warn!(%source, error = %message, "scan failed");
            if let Err(e) = shared
                .store(move |s| s.fail_scan(&digest, token, &message, now()))
                .await
            {
                error!(error = %e, "cannot record the failed scan");
            }
        }
    }
}

/// Bounds the on-disk layer cache (shared by every puller).
async fn prune_cache(puller: Scanner, max_bytes: u64) {
    let pruned = tokio::task::spawn_blocking(move || puller.layer_cache().prune(max_bytes)).await;
    match pruned {
        Ok(Ok(p)) if p.removed_entries > 0 || p.removed_temporary > 0 => debug!(
            removed = p.removed_entries,
            removed_bytes = p.removed_bytes,
            kept_bytes = p.kept_bytes,
            "layer cache pruned"
        ),
        Ok(Ok(_)) | Err(_) => {}
        Ok(Err(e)) => warn!(error = %e, "cannot prune the layer cache"),
    }
}

/// Stores a fresh inventory and its report against the current database;
/// returns the verdict.
async fn match_and_store(
    shared: &Shared,
    job: &Job,
    scanned: Scanned,
) -> Result<&'static str, ServiceError> {
    let matcher = shared.matcher.lock().await;
    let scanner = matcher.scanner.clone();
    let ids = (matcher.db_id.clone(), matcher.policy_id.clone());
    let store = shared.store.clone();
    let (digest, token) = (job.digest.clone(), job.token);
    let verdict = tokio::task::spawn_blocking(move || {
        let inventory = serde_json::to_string(&scanned)?;
        let report = scanner.rematch(scanned);
        let result = match_result(&report, &ids)?;
        store.finish_scan(&digest, token, &inventory, &result, now())?;
        Ok::<_, ServiceError>(report.verdict.as_str())
    })
    .await
    .map_err(|_| ServiceError::Lost)??;
    drop(matcher);
    Ok(verdict)
}

/// What the store keeps of a report matched against the (database, policy) `ids`.
fn match_result(
    report: &Report,
    (advisory_db, policy): &(String, String),
) -> Result<MatchResult, serde_json::Error> {
    Ok(MatchResult {
        verdict: report.verdict.as_str().to_string(),
        verdict_reason: report.verdict_reason.clone(),
        summary: serde_json::to_string(&report.summary)?,
        report: serde_json::to_string(report)?,
        advisory_db: advisory_db.clone(),
        policy: policy.clone(),
    })
}

/// Identifies what a policy decides: its threshold, flags, rules and
/// statements (with where each was read), and which ignore rules have
/// expired. Not the date itself, so a day passing changes the id only when a
/// rule expires with it.
fn policy_id(policy: &Policy) -> String {
    let expired: Vec<&str> = policy
        .ignores
        .iter()
        .filter(|r| r.expired(&policy.today))
        .map(|r| r.origin.as_str())
        .collect();
    let text = format!(
        "trawl-watch-policy-v1\n{:?}\n{}\n{:?}\n{:?}\n{:?}",
        policy.severity_threshold, policy.ignore_unfixed, policy.ignores, policy.vex, expired
    );
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// What the policy is read from as of now: today's date (ignore rules
/// expire) and the identity of each of its files.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PolicyInputs {
    today: String,
    files: Vec<Option<FileIdentity>>,
}

fn policy_inputs(args: &policy::PolicyArgs) -> PolicyInputs {
    PolicyInputs {
        today: trawl::classify::policy::today(),
        files: args
            .ignore_files
            .iter()
            .chain(&args.vex_files)
            .map(|f| file_identity(f))
            .collect(),
    }
}

/// How many stored inventories one rescan batch re-matches together.
const RESCAN_BATCH: usize = 256;

/// Matches the stored inventories of recently pushed or pulled images
/// against the matcher's database (the caller holds the matcher lock).
async fn rescan(shared: &Shared, matcher: &Matcher) -> Result<usize, ServiceError> {
    let window = i64::try_from(shared.config.rescan_window.as_secs()).unwrap_or(i64::MAX);
    let since = now().saturating_sub(window);
    let ids = (matcher.db_id.clone(), matcher.policy_id.clone());
    let scanner = matcher.scanner.clone();
    let store = shared.store.clone();
    tokio::task::spawn_blocking(move || {
        let mut done = 0;
        let candidates = store.rescan_candidates(since, &ids.0, &ids.1)?;
        // In batches: each distinct (package, version) is looked up once per
        // batch, and memory stays bounded however many images there are.
        for batch in candidates.chunks(RESCAN_BATCH) {
            let mut digests = Vec::with_capacity(batch.len());
            let mut stored = Vec::with_capacity(batch.len());
            for digest in batch {
                let Some(inventory) = store.inventory(digest)? else {
                    continue;
                };
                match serde_json::from_str::<Scanned>(&inventory) {
                    Ok(scanned) => {
                        digests.push(digest);
                        stored.push(scanned);
                    }
                    Err(e) => {
                        warn!(%digest, error = %e, "stored inventory unreadable; not rescanned");
                    }
                }
            }
            for (digest, report) in digests.into_iter().zip(scanner.rematch_all(stored)) {
                store.finish_rescan(digest, &match_result(&report, &ids)?, now())?;
                debug!(%digest, verdict = report.verdict.as_str(), "rescanned");
                done += 1;
            }
        }
        Ok(done)
    })
    .await
    .map_err(|_| ServiceError::Lost)?
}

/// What identifies one version of a file that is replaced by rename (or,
/// less wisely, rewritten in place): on Unix its device, inode, size, mtime
/// and ctime.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileIdentity(Vec<i128>);

impl FileIdentity {
    /// The same file (device and inode), whatever its contents.
    fn same_file(&self, other: &FileIdentity) -> bool {
        cfg!(unix) && self.0.get(..2) == other.0.get(..2)
    }
}

fn file_identity(path: &Path) -> Option<FileIdentity> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some(FileIdentity(vec![
            i128::from(meta.dev()),
            i128::from(meta.ino()),
            i128::from(meta.size()),
            i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        ]))
    }
    #[cfg(not(unix))]
    {
        let modified = meta
            .modified()
            .ok()?
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()?;
        Some(FileIdentity(vec![
            i128::from(meta.len()),
            i128::try_from(modified.as_nanos()).ok()?,
        ]))
    }
}

/// Rescans at start, then whenever the advisory database file is replaced
/// or the policy changes: an ignore or VEX file edited or replaced, or an
/// ignore rule expiring.
async fn watch_inputs(
    shared: Arc<Shared>,
    mut db_seen: Option<FileIdentity>,
    mut policy_seen: PolicyInputs,
    mut stop: watch::Receiver<bool>,
) {
    {
        let matcher = shared.matcher.lock().await;
        match rescan(&shared, &matcher).await {
            Ok(0) => {}
            Ok(n) => info!(
                images = n,
                "rescanned against the advisory database and policy (changed while stopped)"
            ),
            Err(e) => error!(error = %error_chain(&e), "rescan failed"),
        }
    }
    let mut ticks = tokio::time::interval(shared.config.db_poll_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (mut db_problem, mut policy_problem) = (None, None);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = stopped(&mut stop) => return,
        }
        let copies = copies_dir(&shared.config.data_dir);
        let db = new_database(
            &shared.config.advisory_db,
            &copies,
            &mut db_seen,
            &mut db_problem,
        )
        .await;
        let policy = new_policy(&shared.config.policy, &mut policy_seen, &mut policy_problem).await;
        if db.is_none() && policy.is_none() {
            continue;
        }
        let mut matcher = shared.matcher.lock().await;
        let mut changed = Vec::new();
        let mut next = Matcher {
            scanner: matcher.scanner.clone(),
            db_id: matcher.db_id.clone(),
            policy_id: matcher.policy_id.clone(),
            db_copy: matcher.db_copy.clone(),
        };
        let mut unused_copy = None;
        if let Some((db, copy)) = db {
            let db_id = db.info().content_sha256.clone();
            if db_id == next.db_id {
                debug!("advisory database replaced by an identical one");
                unused_copy = Some(copy);
            } else {
                info!(records = db.info().records, "advisory database changed");
                next.scanner = next.scanner.with_database(db);
                next.db_id = db_id;
                unused_copy = Some(std::mem::replace(&mut next.db_copy, copy));
                changed.push("advisory database");
            }
        }
        if let Some(policy) = policy {
            let id = policy_id(&policy);
            if id != next.policy_id {
                info!(
                    ignore_rules = policy.ignores.len(),
                    vex_statements = policy.vex.len(),
                    "policy changed"
                );
                for note in policy::expired_rules(&policy) {
                    warn!("{note}");
                }
                changed.push("policy");
                next.policy_id = id;
            }
            // Even when nothing it decides changed: the new one knows today's date.
            next.scanner = next.scanner.with_policy(policy);
        }
        *shared.ids.write().unwrap_or_else(|e| e.into_inner()) =
            (next.db_id.clone(), next.policy_id.clone());
        *matcher = next;
        if let Some(copy) = unused_copy {
            // Scans still matching against it keep their open file.
            remove_copy(&copy);
        }
        if changed.is_empty() {
            continue;
        }
        let started = Instant::now();
        match rescan(&shared, &matcher).await {
            Ok(n) => {
                info!(changed = ?changed, images = n, elapsed = ?started.elapsed(), "rescanned")
            }
            Err(e) => error!(error = %error_chain(&e), "rescan failed"),
        }
    }
}

/// Where the private copies of the advisory database live.
fn copies_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("advisory-db")
}

fn remove_copy(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            warn!(path = %path.display(), error = %e, "cannot remove an old copy of the advisory database");
        }
    }
}

/// What became of an attempt to take a new version of the advisory database.
enum Copied {
    /// Copied, opened and verified: the store reads the copy.
    Ready(Box<AdvisoryStore>, PathBuf),
    /// The file changed while it was copied: try again at the next tick.
    Changing,
    /// The file (as it is now) is not a usable database.
    Unusable(String),
}

/// Copies `path` into `dir` and opens and verifies the copy. The database
/// is never read in place: its writer may rewrite it while it is read, and
/// a store mapping a file that shrinks dies of SIGBUS. A copy taken while
/// the file changed is dropped (its identity differs before and after);
/// a torn copy fails [`AdvisoryStore::verify`], which reads all of it.
fn copy_database(path: &Path, dir: &Path, before: &FileIdentity) -> Copied {
    let copy = dir.join(format!("{}.db", now_ms()));
    let unusable = |copy: &Path, message: String| {
        remove_copy(copy);
        Copied::Unusable(message)
    };
    if let Err(source) = std::fs::create_dir_all(dir) {
        return Copied::Unusable(error_chain(&ServiceError::AdvisoryDbCopy {
            from: path.to_owned(),
            to: dir.to_owned(),
            source,
        }));
    }
    if let Err(source) = std::fs::copy(path, &copy) {
        let error = ServiceError::AdvisoryDbCopy {
            from: path.to_owned(),
            to: copy.clone(),
            source,
        };
        return unusable(&copy, error_chain(&error));
    }
    if file_identity(path).as_ref() != Some(before) {
        remove_copy(&copy);
        return Copied::Changing;
    }
    let db = match AdvisoryStore::open(&copy) {
        Ok(db) => db,
        Err(e) => return unusable(&copy, error_chain(&e)),
    };
    match db.verify() {
        Ok(()) => Copied::Ready(Box::new(db), copy),
        Err(e) => {
            drop(db);
            unusable(&copy, error_chain(&e))
        }
    }
}

/// The advisory database at start: old copies are removed, then the file is
/// copied and opened (a few tries while it is changing).
async fn open_database_at_start(
    path: &Path,
    dir: &Path,
) -> Result<(AdvisoryStore, PathBuf, Option<FileIdentity>), ServiceError> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            remove_copy(&entry.path());
        }
    }
    for _ in 0..20 {
        let Some(identity) = file_identity(path) else {
            // Not there: the store says so, with the path.
            let path = path.to_owned();
            return match tokio::task::spawn_blocking(move || AdvisoryStore::open(path)).await {
                Ok(Err(e)) => Err(e.into()),
                _ => Err(ServiceError::Lost),
            };
        };
        let (from, to, seen) = (path.to_owned(), dir.to_owned(), identity.clone());
        let copied = tokio::task::spawn_blocking(move || copy_database(&from, &to, &seen))
            .await
            .map_err(|_| ServiceError::Lost)?;
        match copied {
            Copied::Ready(db, copy) => return Ok((*db, copy, Some(identity))),
            Copied::Changing => tokio::time::sleep(Duration::from_millis(250)).await,
            Copied::Unusable(reason) => {
                return Err(ServiceError::AdvisoryDbUnusable {
                    path: path.to_owned(),
                    reason,
                });
            }
        }
    }
    Err(ServiceError::AdvisoryDbChanging {
        path: path.to_owned(),
    })
}

/// The advisory database (and its private copy), when a new version of the
/// file is in place and verifies. A version that does not is reported once
/// and not tried again; the next change of the file is.
async fn new_database(
    path: &Path,
    copies: &Path,
    seen: &mut Option<FileIdentity>,
    last_problem: &mut Option<String>,
) -> Option<(AdvisoryStore, PathBuf)> {
    let identity = file_identity(path)?;
    if Some(&identity) == seen.as_ref() {
        return None;
    }
    if let Some(old) = seen.as_ref() {
        if old.same_file(&identity) {
            warn!(
                path = %path.display(),
                "the advisory database was modified in place; it is only read through a \
                 verified copy, but replace it by rename (as `db build -o` and `db pull -o` do)"
            );
        }
    }
    let (from, to, seen_now) = (path.to_owned(), copies.to_owned(), identity.clone());
    let copied = tokio::task::spawn_blocking(move || copy_database(&from, &to, &seen_now))
        .await
        .ok()?;
    match copied {
        Copied::Ready(db, copy) => {
            *seen = Some(identity);
            *last_problem = None;
            Some((*db, copy))
        }
        Copied::Changing => None,
        Copied::Unusable(problem) => {
            *seen = Some(identity);
            if last_problem.as_ref() != Some(&problem) {
                warn!(error = %problem, "new advisory database not usable; keeping the one in use");
                *last_problem = Some(problem);
            }
            None
        }
    }
}

/// The policy read again, when a file of it changed or the date did. Files
/// that do not read are retried every tick and reported once; the policy in
/// use stays meanwhile.
async fn new_policy(
    args: &policy::PolicyArgs,
    seen: &mut PolicyInputs,
    last_problem: &mut Option<String>,
) -> Option<Policy> {
    let inputs = policy_inputs(args);
    if inputs == *seen {
        return None;
    }
    let read = args.clone();
    match tokio::task::spawn_blocking(move || read.load()).await {
        Ok(Ok(policy)) => {
            *seen = inputs;
            *last_problem = None;
            Some(policy)
        }
        Ok(Err(e)) => {
            let problem = error_chain(&e);
            if last_problem.as_ref() != Some(&problem) {
                warn!(error = %problem, "changed policy not usable; keeping the one in use");
                *last_problem = Some(problem);
            }
            None
        }
        Err(_) => None,
    }
}

/// An error and its causes, on one line, with URL secrets redacted
/// ([`redact_urls`]): this is what is logged, stored and served.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    redact_urls(&message)
}

/// `text` with the secrets of every `http://` or `https://` URL in it
/// replaced by `<redacted>`: the query and fragment (presigned storage URLs
/// carry their signature and credential there) and any user info. A URL
/// ends at white space, a quote or an angle bracket; closing punctuation
/// right after it stays.
pub fn redact_urls(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = ["http://", "https://"]
        .iter()
        .filter_map(|scheme| lower[at..].find(scheme).map(|i| (at + i, scheme.len())))
        .min()
    {
        let (start, scheme_len) = found;
        let rest = &text[start..];
        let len = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .unwrap_or(rest.len());
        let token = &rest[..len];
        let url = token.trim_end_matches([')', ']', '}', ',', '.', ';', ':']);
        out.push_str(&text[at..start]);
        out.push_str(&redact_url(url, scheme_len));
        out.push_str(&token[url.len()..]);
        at = start + len;
    }
    out.push_str(&text[at..]);
    out
}

/// One URL (`scheme_len` bytes of scheme and `://`) with its user info,
/// query and fragment redacted.
fn redact_url(url: &str, scheme_len: usize) -> String {
    let (scheme, rest) = url.split_at(scheme_len);
    let (before, secret) = match rest.find(['?', '#']) {
        Some(i) => (&rest[..i], true),
        None => (rest, false),
    };
    let authority_end = before.find('/').unwrap_or(before.len());
    let (authority, path) = before.split_at(authority_end);
    let mut out = String::from(scheme);
    match authority.rfind('@') {
        Some(i) => {
            out.push_str("<redacted>@");
            out.push_str(&authority[i + 1..]);
        }
        None => out.push_str(authority),
    }
    out.push_str(path);
    if secret {
        out.push_str("?<redacted>");
    }
    out
}

/// Reads `--registry HOST[:PORT][=PULL_HOST[:PORT]]`: the host events name,
/// and where to pull from (the same host unless given).
pub fn parse_registry(spec: &str) -> Result<(String, String), String> {
    let (host, pull_from) = spec.split_once('=').unwrap_or((spec, spec));
    for h in [host, pull_from] {
        if !events::is_host(h) {
            return Err(format!(
                "{h:?} is not HOST[:PORT] (use --registry HOST[:PORT][=PULL_HOST[:PORT]])"
            ));
        }
    }
    Ok((host.to_string(), pull_from.to_string()))
}

/// Reads `--registry-auth HOST[:PORT]=USER:PASSWORD_FILE`: the registry (as
/// `--registry` names it), the user name, and the file holding the password
/// (a user name has no `:`, so the file name may).
pub fn parse_registry_auth(spec: &str) -> Result<(String, String, PathBuf), String> {
    let usage = || format!("{spec:?}: use HOST[:PORT]=USER:PASSWORD_FILE");
    let (host, rest) = spec.split_once('=').ok_or_else(usage)?;
    let (user, file) = rest.split_once(':').ok_or_else(usage)?;
    if !events::is_host(host) || user.is_empty() || file.is_empty() {
        return Err(usage());
    }
    Ok((host.to_string(), user.to_string(), PathBuf::from(file)))
}

/// Pairs `--registry` and `--registry-auth` values (each auth naming a
/// configured registry once) into the registries to watch; `password` reads
/// a password file.
pub fn watched_registries(
    registries: &[(String, String)],
    auths: &[(String, String, PathBuf)],
    mut password: impl FnMut(&Path) -> Result<String, String>,
) -> Result<Vec<WatchedRegistry>, String> {
    let mut watched: Vec<WatchedRegistry> = Vec::new();
    for (host, pull_from) in registries {
        if watched.iter().any(|w| w.host.eq_ignore_ascii_case(host)) {
            return Err(format!("--registry {host} is given twice"));
        }
        watched.push(WatchedRegistry {
            host: host.clone(),
            pull_from: pull_from.clone(),
            credentials: None,
        });
    }
    for (host, user, file) in auths {
        let registry = watched
            .iter_mut()
            .find(|w| w.host.eq_ignore_ascii_case(host))
            .ok_or_else(|| format!("--registry-auth names {host}, which no --registry names"))?;
        if registry.credentials.is_some() {
            return Err(format!("--registry-auth for {host} is given twice"));
        }
        registry.credentials = Some(Credentials::new(user.clone(), password(file)?));
    }
    Ok(watched)
}

/// Reads `30d`, `12h`, `90m`, `45s` or a number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let seconds_per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "{text:?}: use a number with s, m, h or d (e.g. 30d)"
            ));
        }
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: use a number with s, m, h or d (e.g. 30d)"))?;
    number
        .checked_mul(seconds_per)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration(" 45s "), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        for bad in ["", "d", "1w", "-1d", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn policy_ids_change_when_what_the_policy_decides_changes() {
        let rules = trawl::classify::policy::parse_ignore_file(
            "CVE-2024-1 expires=2026-01-31 reason=\"waiting for 1.2\"\n",
            Path::new("ignore.txt"),
        )
        .unwrap();
        let on = |today: &str| Policy {
            ignores: rules.clone(),
            today: today.into(),
            ..Policy::default()
        };
        // A day passing changes nothing until the rule expires.
        assert_eq!(policy_id(&on("2026-01-30")), policy_id(&on("2026-01-31")));
        assert_ne!(policy_id(&on("2026-01-31")), policy_id(&on("2026-02-01")));
        assert_eq!(policy_id(&on("2026-02-01")), policy_id(&on("2027-06-01")));
        let stricter = Policy {
            ignore_unfixed: true,
            ..on("2026-01-30")
        };
        assert_ne!(policy_id(&stricter), policy_id(&on("2026-01-30")));
        assert_ne!(policy_id(&Policy::default()), policy_id(&on("2026-01-30")));
    }

    #[test]
    fn url_secrets_are_redacted() {
        let cases = [
            (
                "GET https://bucket.s3.example/blobs/sha256:ab?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F1&X-Amz-Signature=5ec2e7 failed: error sending request for url (https://bucket.s3.example/blobs/sha256:ab?X-Amz-Signature=5ec2e7): connection refused",
                "GET https://bucket.s3.example/blobs/sha256:ab?<redacted> failed: error sending request for url (https://bucket.s3.example/blobs/sha256:ab?<redacted>): connection refused",
            ),
            (
                "redirected to \"HTTP://user:pa55@cdn.example:8443/x#sig=1\", then 'https://a.example/p?sig=2'.",
                "redirected to \"HTTP://<redacted>@cdn.example:8443/x?<redacted>\", then 'https://a.example/p?<redacted>'.",
            ),
            (
                "registry:127.0.0.1:5000/team/app@sha256:ab: not found (http://127.0.0.1:5000/v2/team/app/manifests/sha256:ab)",
                "registry:127.0.0.1:5000/team/app@sha256:ab: not found (http://127.0.0.1:5000/v2/team/app/manifests/sha256:ab)",
            ),
            ("no url here? really", "no url here? really"),
            ("https://", "https://"),
        ];
        for (text, redacted) in cases {
            assert_eq!(redact_urls(text), redacted, "{text}");
        }
    }

    #[test]
    fn registry_specs() {
        assert_eq!(
            parse_registry("registry.example:5000"),
            Ok((
                "registry.example:5000".into(),
                "registry.example:5000".into()
            ))
        );
        assert_eq!(
            parse_registry("registry.example=10.0.0.5:5000"),
            Ok(("registry.example".into(), "10.0.0.5:5000".into()))
        );
        for bad in ["", "=x", "x=", "https://r.example", "r.example/x", "a=b=c"] {
            assert!(parse_registry(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_registry_auth("r.example:5000=robot:/etc/trawl/r:5000.password"),
            Ok((
                "r.example:5000".into(),
                "robot".into(),
                PathBuf::from("/etc/trawl/r:5000.password")
            ))
        );
        for bad in [
            "r.example",
            "r.example=robot",
            "r.example=:f",
            "r.example=u:",
            "=u:f",
        ] {
            assert!(parse_registry_auth(bad).is_err(), "{bad}");
        }
        let registries = [
            ("a.example".to_string(), "a.example".to_string()),
            ("b.example".to_string(), "10.0.0.2:5000".to_string()),
        ];
        let auths = [(
            "B.example".to_string(),
            "robot".to_string(),
            PathBuf::from("b.password"),
        )];
        let read = |f: &Path| Ok(format!("secret of {}", f.display()));
        let watched = watched_registries(&registries, &auths, read).unwrap();
        assert_eq!(watched[0].credentials, None);
        assert_eq!(
            watched[1].credentials,
            Some(Credentials::new("robot", "secret of b.password"))
        );
        assert_eq!(watched[1].pull_from, "10.0.0.2:5000");
        let stray = [(
            "c.example".to_string(),
            "robot".to_string(),
            PathBuf::from("c"),
        )];
        assert!(watched_registries(&registries, &stray, read).is_err());
        let twice = [auths[0].clone(), auths[0].clone()];
        assert!(watched_registries(&registries, &twice, read).is_err());
        let dup = [registries[0].clone(), registries[0].clone()];
        assert!(watched_registries(&dup, &[], read).is_err());
    }

    #[test]
    fn a_torn_database_copy_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let feed = dir.path().join("feed");
        std::fs::create_dir_all(&feed).unwrap();
        std::fs::write(
            feed.join("TRAWL-1.json"),
            r#"{"schema_version": "1.6.0", "id": "TRAWL-1", "modified": "2026-11-01T00:00:00Z",
                "affected": [{"package": {"ecosystem": "Debian:12", "name": "openssl"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0"}]}]}]}"#,
        )
        .unwrap();
        let mut builder = trawl::advisory::StoreBuilder::new();
        builder.add_osv_dir(&feed).unwrap();
        let db = dir.path().join("trawl.db");
        builder.write(&db).unwrap();
        let copies = dir.path().join("copies");
        let identity = file_identity(&db).unwrap();
        let Copied::Ready(store, copy) = copy_database(&db, &copies, &identity) else {
            panic!("a whole database is taken");
        };
        assert_eq!(store.info().records, 1);
        assert!(copy.starts_with(&copies) && copy.exists());
        // Cut short in place: refused, and the torn copy is removed.
        let bytes = std::fs::read(&db).unwrap();
        std::fs::write(&db, &bytes[..bytes.len() / 2]).unwrap();
        let torn = file_identity(&db).unwrap();
        assert!(torn.same_file(&identity) && torn != identity);
        assert!(matches!(
            copy_database(&db, &copies, &torn),
            Copied::Unusable(_)
        ));
        // Changed since it was looked at: taken at the next look.
        assert!(matches!(
            copy_database(&db, &copies, &identity),
            Copied::Changing
        ));
        let left: Vec<_> = std::fs::read_dir(&copies).unwrap().collect();
        assert_eq!(left.len(), 1, "only the copy in use is left");
        // The store in use reads its own copy, whatever happens to the file.
        std::fs::write(&db, b"").unwrap();
        assert_eq!(store.info().records, 1);
        store.verify().unwrap();
    }

    #[test]
    fn file_identity_changes_on_rename() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        std::fs::write(&path, b"one").unwrap();
        let first = file_identity(&path).unwrap();
        assert_eq!(file_identity(&path), Some(first.clone()));
        let next = dir.path().join("db.new");
        std::fs::write(&next, b"one").unwrap();
        std::fs::rename(&next, &path).unwrap();
        assert_ne!(file_identity(&path).unwrap(), first);
        assert_eq!(file_identity(&dir.path().join("missing")), None);
    }
}
