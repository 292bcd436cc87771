//! The running service: [`Service`] (workers, rescans, watching the
//! advisory database and the policy) and [`run`] (the service behind its
//! HTTP server).
//!
//! # How it works
//!
//! - `POST /events` ([`api`](crate::api)) takes a registry's notification
//!   envelope ([`events`](crate::events)), records the pushes and pulls of
//!   image manifests, and queues a scan for each pushed image without a
//!   report ([`Store::apply`]: the queue lives in the store, so it survives
//!   a crash and, with PostgreSQL, is shared by every process). Only events
//!   naming a configured registry ([`Config::registries`]) are taken; any
//!   other host is refused, logged and counted, and nothing is pulled from
//!   it. Back-pressure is per event.
//! - `workers` tasks take jobs oldest first, each under a lease renewed while
//!   it scans ([`store`](crate::store) explains how a crash is charged only
//!   to the job running alone). A scan pulls the image from the configured
//!   registry the event named, at its pull address, with that registry's
//!   credentials only, stores the inventory, matches it against the current
//!   advisory database and stores the report and its findings.
//! - The advisory database file is polled every `db_poll_interval` and read
//!   only through a verified private copy ([`database`](crate::database)).
//!   When it or the policy changes ([`policy_id`]: the ignore and VEX files
//!   are polled too, and the date, as ignore rules expire), the process
//!   plans a rescan of the window ([`Store::plan_rescan`]) and a rescan task
//!   in every process matching against the same database and policy claims
//!   its batches ([`Store::claim_rescan`]), matches the stored inventories
//!   again (nothing is pulled) and stores the results. The same plan is made
//!   at start, for a change made while the service was down. Matching and
//!   storing a scan hold the matcher lock, and so do taking a new database
//!   and planning, so a scan finishing during a change is either planned
//!   for rescanning or matched against the new database.
//! - After each scan the on-disk layer cache is pruned to `cache_max_bytes`.
//! - Errors are stored, served and logged with URL secrets redacted.
//! - Stopping stops taking events, jobs and batches; scans and batches in
//!   progress are put back, uncharged.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use tokio::sync::{Notify, watch};
use tracing::{debug, error, info, warn};
use trawl::registry::RegistryReference;
use trawl::{ImageSource, Policy, Scanned, Scanner};

use crate::config::{Config, PolicyFiles, WatchedRegistry};
use crate::database::{
    FileIdentity, copies_dir, file_identity, new_database, open_database_at_start, remove_copy,
};
use crate::redact::error_chain;
use crate::server::{self, HttpLimits};
use crate::store::{
    Job, MatchResult, MatchTarget, Rematched, RescanBatch, RescanPlan, Store, StoreError,
    StoredReport,
};

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// Two API tokens are the same (a scoped token must differ from the
    /// unscoped one and from every other), or one is empty.
    #[error("API tokens must be distinct and not empty: {0}")]
    Tokens(String),
}

/// The advisory database and policy in use, and the scanner that matches
/// and classifies with them.
struct Matcher {
    scanner: Scanner,
    target: MatchTarget,
    /// The private copy of the database in use.
    db_copy: PathBuf,
}

/// State shared by the HTTP handlers, the workers and the watchers.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) store: Store,
    /// Held while matching and storing, so results follow database changes in order.
    matcher: tokio::sync::Mutex<Matcher>,
    /// The current database's content SHA-256 and policy id, for `GET /healthz`.
    pub(crate) ids: RwLock<MatchTarget>,
    /// Scanners that pull, one per configured registry (credentials are per registry).
    pullers: Mutex<HashMap<String, Scanner>>,
    /// The configured registry hosts, as events name them.
    pub(crate) registry_hosts: Vec<String>,
    /// Events refused since the start because they named another registry.
    pub(crate) unknown_registry_events: AtomicU64,
    /// Images this process matched again since it started.
    pub(crate) rescanned: AtomicU64,
    /// This process's name on leases.
    pub(crate) owner: String,
    /// Woken when jobs are queued.
    pub(crate) work: Notify,
    /// Woken when a rescan is planned.
    rescans: Notify,
    /// One rescan batch matched at a time ([`rematch`] spreads a batch
    /// over every core); the others meanwhile read or write theirs.
    matching: tokio::sync::Semaphore,
    /// Woken when events may have been written into the outbox.
    outbox: Notify,
}

impl Shared {
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
    pub(crate) fn refuse_unknown_registry(&self, id: &str, host: &str) {
        self.unknown_registry_events.fetch_add(1, Ordering::Relaxed);
        // Both come from whoever made the request: bounded and escaped.
        let shorten = |s: &str| s.chars().take(256).collect::<String>();
        warn!(
            id = ?shorten(id),
            host = ?shorten(host),
            "event names a registry that is not configured (--registry): refused, nothing pulled"
        );
    }

    /// Unix milliseconds by the store's clock (the local one if it cannot
    /// be read: leases then err on the late side, by clock skew at most).
    pub(crate) async fn now_ms(&self) -> i64 {
        match self.store.now_ms().await {
            Ok(now) => now,
            Err(e) => {
                debug!(error = %e, "cannot read the store's clock");
                crate::store::local_now_ms()
            }
        }
    }
}

/// The registry-side scanning service: its store, its workers, its rescans
/// and the watchers of the advisory database and policy files, running on
/// the caller's tokio runtime. Serve [`Service::router`] with [`serve`](crate::serve)
/// (bounded connections) or mount it in a server of your own; or use
/// [`run`], which does both.
pub struct Service {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: tokio::task::JoinSet<()>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("store", &self.shared.store)
            .field("owner", &self.shared.owner)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Opens the store (bringing its schema up to date), recovers the jobs
    /// of processes that died, reads the policy and the advisory database
    /// (through a private copy), and starts the workers, the rescan task and
    /// the watchers. Must be called within a tokio runtime (multi-threaded:
    /// scans and matching block threads of their own).
    pub async fn start(config: Config) -> Result<Service, ServiceError> {
        check_tokens(&config)?;
        let store = Store::open(&config.store).await?.with_notify_targets(
            config
                .notify
                .targets
                .iter()
                .map(|t| t.url.clone())
                .collect(),
        );
        let owner = process_name();
        let now = store.now_ms().await?;
        // With SQLite, the file's lock proves no other process runs: every
        // job left running belongs to one that died. With PostgreSQL only
        // expired leases tell.
        let recovered = store
            .recover_orphans(&owner, store.single_process(), now)
            .await?;
        if recovered.jobs > 0 {
            info!(
                jobs = recovered.jobs,
                charged = recovered.charged,
                "scans interrupted by a process that died are queued again, to run one at a time"
            );
        }
        let policy_seen = policy_inputs(&config.policy);
        let policy = config.policy.load()?;
        for note in policy.expired_rules() {
            warn!("{note}");
        }
        let policy_id = policy_id(&policy);
        let (db, db_copy, identity) =
            open_database_at_start(&config.advisory_db, &copies_dir(&config.data_dir)).await?;
        let target = MatchTarget {
            advisory_db: db.info().content_sha256.clone(),
            policy: policy_id,
        };
        info!(path = %config.advisory_db.display(), records = db.info().records, store = %config.store, "advisory database opened");
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
                target: target.clone(),
                db_copy,
            }),
            ids: RwLock::new(target),
            pullers: Mutex::new(HashMap::new()),
            registry_hosts: config.registries.iter().map(|r| r.host.clone()).collect(),
            unknown_registry_events: AtomicU64::new(0),
            rescanned: AtomicU64::new(0),
            owner,
            work: Notify::new(),
            rescans: Notify::new(),
            matching: tokio::sync::Semaphore::new(1),
            outbox: Notify::new(),
            config,
        });
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(watch_inputs(
            shared.clone(),
            identity,
            policy_seen,
            stop_rx.clone(),
        ));
        for _ in 0..shared.config.rescan_concurrency.max(1) {
            tasks.spawn(rescanner(shared.clone(), stop_rx.clone()));
        }
        for _ in 0..shared.config.workers.max(1) {
            tasks.spawn(worker(shared.clone(), stop_rx.clone()));
        }
        if !shared.config.notify.targets.is_empty() {
            tasks.spawn(deliverer(shared.clone(), stop_rx.clone()));
        }
        Ok(Service {
            shared,
            stop,
            tasks,
        })
    }

    /// The webhook (`POST /events`), the REST API (`/v1/…`) and `GET
    /// /healthz`, to serve or to mount (`Router::nest("/trawl", …)`).
    pub fn router(&self) -> axum::Router {
        crate::api::router(self.shared.clone())
    }

    /// The store the service uses.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Stops taking jobs and rescan batches, puts those in progress back
    /// (uncharged) and waits for the tasks to end.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Runs the service until `shutdown` completes, serving it on `listen`
/// within `limits` ([`serve`]); then stops: no new requests, jobs or
/// batches; those in progress go back to the store.
///
/// [`serve`]: crate::serve
pub async fn run(
    config: Config,
    listen: SocketAddr,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServiceError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServiceError::Bind {
            addr: listen,
            source,
        })?;
    let service = Service::start(config).await?;
    let addr = listener.local_addr().unwrap_or(listen);
    info!(%addr, workers = service.shared.config.workers, "listening");
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let router = service.router();
    let server = tokio::spawn(async move {
        server::serve(listener, router, limits, async move {
            stopped(&mut stop_rx).await;
        })
        .await;
    });
    shutdown.await;
    info!("stopping");
    let _ = stop_tx.send(true);
    let served = server.await;
    service.stop().await;
    served.map_err(|_| ServiceError::Lost)
}

/// A name for this process on leases, unique across machines and restarts.
fn process_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let random = {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(nanos);
        h.finish()
    };
    format!("{host}-{}-{random:016x}", std::process::id())
}

/// Completes once the service is told to stop (or its stop sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`: drop it here.
    let _ = stop.wait_for(|stop| *stop).await.map(|_| ());
}

/// Seconds since the Unix epoch.
/// Refuses empty API tokens and tokens given twice: which scope a token
/// has must not depend on the order they are tried in.
fn check_tokens(config: &Config) -> Result<(), ServiceError> {
    let mut seen = vec![config.api_token.as_str()];
    for (i, scoped) in config.scoped_tokens.iter().enumerate() {
        if seen.contains(&scoped.token.as_str()) {
            return Err(ServiceError::Tokens(format!(
                "scoped token {} is the same as another",
                i + 1
            )));
        }
        seen.push(&scoped.token);
    }
    if seen.iter().any(|t| t.trim().is_empty()) {
        return Err(ServiceError::Tokens("a token is empty".into()));
    }
    Ok(())
}

pub(crate) fn now() -> i64 {
    crate::store::local_now_ms() / 1000
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The shortest lease (a shorter configured one is raised to it).
const MIN_LEASE: Duration = Duration::from_millis(300);

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
        let now = shared.now_ms().await;
        let claimed = shared
            .store
            .claim(&shared.owner, now, now.saturating_add(millis(lease)))
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
                    // Leases of other owners expire, and other processes
                    // queue jobs, without a notification here.
                    () = tokio::time::sleep(lease.min(shared.config.db_poll_interval.max(MIN_LEASE))) => {}
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

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a heartbeat renews.
enum Leased {
    Job { digest: String, token: i64 },
    Batch(RescanBatch),
}

/// Renews a lease every third of its length, until aborted or lost.
async fn heartbeat(shared: Arc<Shared>, leased: Leased) {
    let lease = shared.config.job_lease.max(MIN_LEASE);
    let mut ticks = tokio::time::interval(lease / 3);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let until = shared.now_ms().await.saturating_add(millis(lease));
        let renewed = match &leased {
            Leased::Job { digest, token } => shared.store.heartbeat(digest, *token, until).await,
            Leased::Batch(batch) => shared.store.renew_rescan(batch, until).await,
        };
        match renewed {
            Ok(true) => {}
            Ok(false) => {
                debug!("a lease is gone (deleted, recovered or taken over)");
                return;
            }
            Err(e) => warn!(error = %e, "cannot renew a lease"),
        }
    }
}

/// Pulls and scans one image and stores the result.
async fn scan(shared: &Arc<Shared>, job: Job, stop: &mut watch::Receiver<bool>) {
    let _beat = AbortOnDrop(tokio::spawn(heartbeat(
        shared.clone(),
        Leased::Job {
            digest: job.digest.clone(),
            token: job.token,
        },
    )));
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
                    if let Err(e) = shared.store.release(&job.digest, job.token).await {
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
            match match_and_store(shared, &job, scanned).await {
                Ok(verdict) => Ok((verdict, packages)),
                // Not the image's failure: the scan runs again (if the
                // result was committed before the connection went, the job
                // is done and releasing it does nothing).
                Err(ServiceError::Store(e)) if e.is_connection_loss() => {
                    warn!(%source, error = %e, "cannot store the scan's result (the results store is unreachable): the scan is queued again");
                    if let Err(e) = shared.store.release(&job.digest, job.token).await {
                        warn!(error = %e, "cannot put the scan back in the queue: it is taken again when its lease expires");
                    }
                    return;
                }
                Err(e) => Err(error_chain(&e)),
            }
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok((Some(verdict), packages)) => {
            info!(%source, verdict, packages, elapsed = ?started.elapsed(), "scanned")
        }
        Ok((None, _)) => {
            info!(%source, "scanned, but the job was deleted or taken over meanwhile: not stored")
        }
        Err(message) => {
            warn!(%source, error = %message, "scan failed");
            if let Err(e) = shared
                .store
                .fail_scan(&job.digest, job.token, &message, now())
                .await
            {
                error!(error = %e, "cannot record the failed scan");
            }
        }
    }
    shared.outbox.notify_one();
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
/// returns the verdict, or `None` when the job's claim no longer held.
async fn match_and_store(
    shared: &Shared,
    job: &Job,
    scanned: Scanned,
) -> Result<Option<&'static str>, ServiceError> {
    let matcher = shared.matcher.lock().await;
    let scanner = matcher.scanner.clone();
    let target = matcher.target.clone();
    let (inventory, result, verdict) = tokio::task::spawn_blocking(move || {
        let inventory = serde_json::to_string(&scanned)?;
        let report = scanner.rematch(scanned);
        let result = MatchResult::new(&report, &target)?;
        Ok::<_, ServiceError>((inventory, result, report.verdict.as_str()))
    })
    .await
    .map_err(|_| ServiceError::Lost)??;
    let stored = shared
        .store
        .finish_scan(&job.digest, job.token, inventory, result, now())
        .await?;
    drop(matcher);
    Ok(stored.then_some(verdict))
}

/// The report to serve from a stored one: the cached report when it is of
/// the image's current target; else rebuilt from the stored inventory with
/// this process's matcher, the same code a rescan runs, so it is the report
/// a rescan against that target would have stored (and written back as the
/// new cache when the image's results are of the matcher's target; when
/// they are of another, a process on another database stored them, and the
/// report is this process's view until it takes that database too).
pub(crate) async fn current_report(
    shared: &Shared,
    digest: &str,
    stored: StoredReport,
) -> Result<trawl::Report, ServiceError> {
    let Some(inventory) = stored.inventory.clone() else {
        return Ok(serde_json::from_str(&stored.report)?);
    };
    let (scanner, target) = {
        let matcher = shared.matcher.lock().await;
        (matcher.scanner.clone(), matcher.target.clone())
    };
    let (report, json) = tokio::task::spawn_blocking(move || {
        let scanned: Scanned = serde_json::from_str(&inventory)?;
        let report = scanner.rematch(scanned);
        let json = serde_json::to_string(&report)?;
        Ok::<_, ServiceError>((report, json))
    })
    .await
    .map_err(|_| ServiceError::Lost)??;
    if stored.current.as_ref() == Some(&target) {
        shared.store.cache_report(digest, &target, &json).await?;
    }
    Ok(report)
}

/// Identifies what a policy decides: its threshold, flags, rules and
/// statements (with where each was read), and which ignore rules have
/// expired. Not the date itself, so a day passing changes the id only when a
/// rule expires with it.
pub(crate) fn policy_id(policy: &Policy) -> String {
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

fn policy_inputs(files: &PolicyFiles) -> PolicyInputs {
    PolicyInputs {
        today: trawl::classify::policy::today(),
        files: files
            .ignore_files
            .iter()
            .chain(&files.vex_files)
            .map(|f| file_identity(f))
            .collect(),
    }
}

/// The policy read again, when a file of it changed or the date did. Files
/// that do not read are retried every tick and reported once; the policy in
/// use stays meanwhile.
async fn new_policy(
    files: &PolicyFiles,
    seen: &mut PolicyInputs,
    last_problem: &mut Option<String>,
) -> Option<Policy> {
    let inputs = policy_inputs(files);
    if inputs == *seen {
        return None;
    }
    let read = files.clone();
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

/// Plans the rescan of the matcher's target (the caller holds the matcher
/// lock, so every result stored against the previous target is in). At
/// start with PostgreSQL a target that another process superseded is not
/// planned again: this process's file is the older one.
async fn plan(shared: &Shared, matcher: &Matcher, at_start: bool) {
    let window = i64::try_from(shared.config.rescan_window.as_secs()).unwrap_or(i64::MAX);
    let since = now().saturating_sub(window);
    let replace = !at_start || shared.store.single_process();
    match shared
        .store
        .plan_rescan(&matcher.target, since, shared.config.rescan_batch, replace)
        .await
    {
        Ok(RescanPlan::Planned { images, batches }) => {
            if images > 0 {
                info!(images, batches, "rescan planned");
            }
            // Every rescanner waiting: each has enabled its wake-up before
            // it last looked for a batch, so none misses these.
            shared.rescans.notify_waiters();
        }
        Ok(RescanPlan::Superseded) => warn!(
            advisory_db = %matcher.target.advisory_db,
            policy = %matcher.target.policy,
            "another process matches against a newer advisory database or policy; this process \
             scans new images but rescans nothing until it has the same (replace its --db)"
        ),
        Err(e) => error!(error = %error_chain(&e), "cannot plan the rescan"),
    }
}

/// Queues again the jobs whose lease expired (their process died), also
/// while every worker here is busy, so they wait in the queue for whichever
/// process frees a worker first.
async fn recover_expired(shared: &Shared) {
    let now = shared.now_ms().await;
    match shared
        .store
        .recover_orphans(&shared.owner, false, now)
        .await
    {
        Ok(r) if r.jobs > 0 => info!(
            jobs = r.jobs,
            charged = r.charged,
            "scans whose process stopped renewing their lease are queued again, to run one at a time"
        ),
        Ok(_) => {}
        Err(e) => debug!(error = %e, "cannot recover expired leases"),
    }
}

/// Plans a rescan at start, then whenever the advisory database file is
/// replaced or the policy changes: an ignore or VEX file edited or
/// replaced, or an ignore rule expiring.
async fn watch_inputs(
    shared: Arc<Shared>,
    mut db_seen: Option<FileIdentity>,
    mut policy_seen: PolicyInputs,
    mut stop: watch::Receiver<bool>,
) {
    {
        let matcher = shared.matcher.lock().await;
        plan(&shared, &matcher, true).await;
    }
    let mut ticks = tokio::time::interval(shared.config.db_poll_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (mut db_problem, mut policy_problem) = (None, None);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = stopped(&mut stop) => return,
        }
        recover_expired(&shared).await;
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
            target: matcher.target.clone(),
            db_copy: matcher.db_copy.clone(),
        };
        let mut unused_copy = None;
        if let Some((db, copy)) = db {
            let db_id = db.info().content_sha256.clone();
            if db_id == next.target.advisory_db {
                debug!("advisory database replaced by an identical one");
                unused_copy = Some(copy);
            } else {
                info!(records = db.info().records, "advisory database changed");
                next.scanner = next.scanner.with_database(db);
                next.target.advisory_db = db_id;
                unused_copy = Some(std::mem::replace(&mut next.db_copy, copy));
                changed.push("advisory database");
            }
        }
        if let Some(policy) = policy {
            let id = policy_id(&policy);
            if id != next.target.policy {
                info!(
                    ignore_rules = policy.ignores.len(),
                    vex_statements = policy.vex.len(),
                    "policy changed"
                );
                for note in policy.expired_rules() {
                    warn!("{note}");
                }
                changed.push("policy");
                next.target.policy = id;
            }
            // Even when nothing it decides changed: the new one knows today's date.
            next.scanner = next.scanner.with_policy(policy);
        }
        *shared.ids.write().unwrap_or_else(|e| e.into_inner()) = next.target.clone();
        *matcher = next;
        if let Some(copy) = unused_copy {
            // Scans still matching against it keep their open file.
            remove_copy(&copy);
        }
        if !changed.is_empty() {
            info!(changed = ?changed, "planning a rescan of the window");
            plan(&shared, &matcher, false).await;
        }
    }
}

/// Claims and matches rescan batches of this process's target until told
/// to stop: those it planned and those other processes did.
async fn rescanner(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let lease = shared.config.job_lease.max(MIN_LEASE);
    loop {
        if *stop.borrow() {
            return;
        }
        let notified = shared.rescans.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (scanner, target) = {
            let matcher = shared.matcher.lock().await;
            (matcher.scanner.clone(), matcher.target.clone())
        };
        let now = shared.now_ms().await;
        let claimed = shared
            .store
            .claim_rescan(
                &shared.owner,
                &target,
                now,
                now.saturating_add(millis(lease)),
            )
            .await;
        match claimed {
            Ok(Some(batch)) => rescan_batch(&shared, scanner, batch, &mut stop).await,
            Ok(None) => {
                tokio::select! {
                    () = notified => {}
                    // Other processes plan batches without a notification here.
                    () = tokio::time::sleep(shared.config.db_poll_interval) => {}
                    () = stopped(&mut stop) => return,
                }
            }
            Err(e) => {
                error!(error = %e, "cannot take a rescan batch");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = stopped(&mut stop) => return,
                }
            }
        }
    }
}

/// Matches one claimed batch again from the stored inventories and stores it.
async fn rescan_batch(
    shared: &Arc<Shared>,
    scanner: Scanner,
    batch: RescanBatch,
    stop: &mut watch::Receiver<bool>,
) {
    let _beat = AbortOnDrop(tokio::spawn(heartbeat(
        shared.clone(),
        Leased::Batch(batch.clone()),
    )));
    let started = Instant::now();
    let work = async {
        let stored = shared.store.inventories(&batch.digests).await?;
        let target = batch.target.clone();
        // Never closed: an error here cannot happen, and would only mean
        // matching without waiting.
        let _matching = shared.matching.acquire().await.ok();
        let rematched = tokio::task::spawn_blocking(move || rematch(&scanner, stored, &target))
            .await
            .map_err(|_| ServiceError::Lost)??;
        Ok::<_, ServiceError>(rematched)
    };
    let rematched = tokio::select! {
        rematched = work => rematched,
        () = stopped(stop) => {
            if let Err(e) = shared.store.release_rescan(&batch).await {
                error!(error = %e, "cannot give the rescan batch back");
            }
            return;
        }
    };
    let stored = match rematched {
        Ok(rematched) => shared.store.finish_rescan(&batch, rematched, now()).await,
        Err(e) => {
            error!(error = %error_chain(&e), batch = batch.id, "rescan batch failed");
            return;
        }
    };
    match stored {
        Ok(written) => {
            shared.outbox.notify_one();
            shared
                .rescanned
                .fetch_add(u64::try_from(written).unwrap_or(0), Ordering::Relaxed);
            info!(
                batch = batch.id,
                images = written,
                elapsed = ?started.elapsed(),
                "rescanned"
            );
        }
        Err(e) => error!(error = %e, batch = batch.id, "cannot store the rescan batch"),
    }
}

/// Delivers the outbox's due notifications until told to stop: those this
/// process wrote (woken at once) and those of other processes and retries
/// (looked for every `poll_interval`). Prunes old delivered and given-up
/// rows and logs the counts every minute.
async fn deliverer(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let config = &shared.config.notify;
    let client = match crate::notify::client(config) {
        Ok(client) => client,
        Err(e) => {
            error!(error = %error_chain(&e), "cannot make the notification client: nothing is delivered");
            return;
        }
    };
    let targets: Vec<String> = config.targets.iter().map(|t| t.url.clone()).collect();
    // Longer than any attempt, so a live delivery is not taken over.
    let lease = (config.timeout * 2 + Duration::from_secs(5)).max(shared.config.job_lease);
    let mut housekeeping: Option<Instant> = None;
    let mut given_up_seen = 0;
    loop {
        if *stop.borrow() {
            return;
        }
        let notified = shared.outbox.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if housekeeping.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            housekeeping = Some(Instant::now());
            let now = shared.now_ms().await;
            // Also those for a target no process has any more.
            let expired = shared
                .store
                .expire_outbox(
                    now.saturating_sub(millis(config.give_up_after)),
                    now,
                    "not delivered in time: given up",
                )
                .await;
            match expired {
                Ok(n) if n > 0 => warn!(
                    notifications = n,
                    "notifications not delivered in time (or for a target no process has): given up"
                ),
                Ok(_) => {}
                Err(e) => warn!(error = %e, "cannot expire the notification outbox"),
            }
            let before = now.saturating_sub(millis(config.keep_done));
            if let Err(e) = shared.store.prune_outbox(before).await {
                warn!(error = %e, "cannot prune the notification outbox");
            }
            match shared.store.outbox_counts().await {
                Ok(counts) => {
                    if counts.given_up > given_up_seen {
                        warn!(
                            pending = counts.pending,
                            given_up = counts.given_up,
                            "notifications were given up (see GET /healthz and the logs above)"
                        );
                    } else if counts.pending > 0 {
                        info!(
                            pending = counts.pending,
                            "notifications waiting for delivery"
                        );
                    }
                    given_up_seen = counts.given_up;
                }
                Err(e) => debug!(error = %e, "cannot count the notification outbox"),
            }
        }
        let now = shared.now_ms().await;
        let claimed = shared
            .store
            .claim_deliveries(
                &shared.owner,
                &targets,
                now,
                now.saturating_add(millis(lease)),
                config.concurrency.max(1),
            )
            .await;
        match claimed {
            Ok(batch) if !batch.is_empty() => {
                let mut sending = tokio::task::JoinSet::new();
                for delivery in batch {
                    let (shared, client) = (shared.clone(), client.clone());
                    sending.spawn(async move {
                        crate::notify::deliver(&shared, &client, delivery).await;
                    });
                }
                tokio::select! {
                    () = async { while sending.join_next().await.is_some() {} } => {}
                    () = stopped(&mut stop) => {
                        // Those in flight are sent again, by whichever
                        // process comes first.
                        sending.abort_all();
                        while sending.join_next().await.is_some() {}
                        match shared.store.release_deliveries(&shared.owner).await {
                            Ok(n) if n > 0 => info!(notifications = n, "stopping: notifications in flight are given back"),
                            Ok(_) => {}
                            Err(e) => warn!(error = %e, "cannot give notifications back; sent again once their lease expires"),
                        }
                        return;
                    }
                }
            }
            Ok(_) => {
                tokio::select! {
                    () = notified => {}
                    () = tokio::time::sleep(config.poll_interval) => {}
                    () = stopped(&mut stop) => return,
                }
            }
            Err(e) => {
                warn!(error = %e, "cannot take notifications from the outbox");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = stopped(&mut stop) => return,
                }
            }
        }
    }
}

/// What a rescan does with a claimed batch of stored inventories, between
/// reading them ([`Store::inventories`]) and storing the results
/// ([`Store::finish_rescan`]): parses each inventory, matches it against
/// `scanner`'s database under its policy (each distinct package looked up
/// once for the batch) and prepares what the store keeps of each result,
/// stamped with `target`: for an image stored with a report, only that
/// (no report is built: [`MatchResult::judged`]); for one stored without,
/// also the report's JSON. Those come after the others. Blocking: run it
/// off the async executor. An inventory that does not parse is logged and
/// left out (it is not rescanned). Public so that the CPU a rescan costs can be measured
/// (`cargo bench --bench rematch`).
///
/// ```
/// # let scanner = trawl::Scanner::builder().build()?;
/// use trawl_watch::store::MatchTarget;
///
/// let target = MatchTarget { advisory_db: "sha".into(), policy: "p".into() };
/// let rematched = trawl_watch::rematch(&scanner, Vec::new(), &target)?;
/// assert!(rematched.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn rematch(
    scanner: &Scanner,
    stored: Vec<crate::store::StoredInventory>,
    target: &MatchTarget,
) -> Result<Vec<Rematched>, ServiceError> {
    // Images stored with a report need only what the store keeps of the
    // new one (judged); one stored without gets the whole report (the
    // first match of an image written without, rare otherwise).
    let mut judged: (Vec<(String, String)>, Vec<Scanned>) = (Vec::new(), Vec::new());
    let mut reported: (Vec<String>, Vec<Scanned>) = (Vec::new(), Vec::new());
    for s in stored {
        match serde_json::from_str::<Scanned>(&s.inventory) {
            Ok(scanned) => match s.report_sha256 {
                Some(previous) => {
                    judged.0.push((s.digest, previous));
                    judged.1.push(scanned);
                }
                None => {
                    reported.0.push(s.digest);
                    reported.1.push(scanned);
                }
            },
            Err(e) => {
                warn!(digest = %s.digest, error = %e, "stored inventory unreadable; not rescanned")
            }
        }
    }
    // Each distinct (package, version) is looked up once per batch.
    let results = scanner.judge_all(&judged.1, |_, judgement| {
        MatchResult::judged(&judgement, target)
    });
    let mut rematched = Vec::with_capacity(results.len() + reported.0.len());
    // With the inventory's packages, which PostgreSQL stores the findings
    // against.
    for (((digest, previous), result), scanned) in judged.0.into_iter().zip(results).zip(judged.1) {
        rematched.push(Rematched {
            digest,
            previous_sha256: Some(previous),
            result: result?.with_inventory(scanned.inventory),
        });
    }
    let reports = scanner.rematch_all(reported.1);
    for (digest, report) in reported.0.into_iter().zip(reports) {
        rematched.push(Rematched {
            digest,
            previous_sha256: None,
            result: MatchResult::from_report(report, target, true)?,
        });
    }
    Ok(rematched)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

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
        assert!(on("2026-02-01").expired_rules()[0].contains("expired on 2026-01-31"));
        assert!(on("2026-01-31").expired_rules().is_empty());
    }

    #[test]
    fn process_names_differ() {
        assert_ne!(process_name(), process_name());
    }
}
