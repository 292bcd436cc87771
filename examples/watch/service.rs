//! The registry-side scanning service behind `cargo run --example watch`:
//! everything but argument parsing, so tests can run it in-process.
//!
//! # How it works
//!
//! - `POST /events` ([`api`]) takes a registry's notification envelope
//!   ([`events`]), records the pushes and pulls of image manifests, and queues
//!   a scan for each pushed image without a report ([`store`]: the queue is a
//!   table of the same SQLite file as the results, so it survives a crash).
//!   Duplicates coalesce: an image queued, being scanned or already scanned is
//!   not queued again. When `max_pending` scans already wait and an envelope
//!   needs more, nothing of it is recorded and the answer is 503 with
//!   `Retry-After`: the registry sends the envelope again later.
//! - `workers` tasks take jobs oldest first. A scan pulls the image from the
//!   registry that sent the event ([`trawl::Scanner::inventory`]: the blocking
//!   work runs on a thread of its own), stores the inventory, matches it
//!   against the current advisory database and stores the report.
//! - The advisory database file is polled (its device, inode, size, mtime and
//!   ctime) every `db_poll_interval`. When a new file is in place (`db build`
//!   and `db pull` replace it by rename), it is opened and every image pushed
//!   or pulled within `rescan_window` whose report came from another database (or policy)
//!   is matched again from its stored inventory: nothing is pulled. The same
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
//! - Stopping (the `shutdown` future) stops taking events and jobs; scans in
//!   progress are put back in the queue and redone at the next start.

#[path = "api.rs"]
mod api;
#[path = "events.rs"]
mod events;
#[path = "../support/policy.rs"]
pub mod policy;
#[path = "store.rs"]
mod store;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use tokio::sync::{Notify, watch};
use tracing::{debug, error, info, warn};
use trawl::advisory::AdvisoryStore;
use trawl::registry::{Credentials, RegistryReference};
use trawl::{ImageSource, Policy, RegistryOptions, Report, Scanned, Scanner};

use store::{Job, MatchResult, Store, StoreError};

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
    /// Credentials for the registry scans pull from.
    pub credentials: Option<Credentials>,
    /// Pull from this `HOST[:PORT]` instead of the host the events name.
    pub registry_override: Option<String>,
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
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error("HTTP server: {0}")]
    Serve(#[source] std::io::Error),
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
}

/// State shared by the HTTP handlers, the workers and the database watcher.
struct Shared {
    config: Config,
    store: Arc<Store>,
    /// Held while matching and storing, so results follow database changes in order.
    matcher: tokio::sync::Mutex<Matcher>,
    /// The current database's content SHA-256 and policy id, for `GET /healthz`.
    ids: RwLock<(String, String)>,
    /// Scanners that pull, one per registry host (credentials are per host).
    pullers: Mutex<HashMap<String, Scanner>>,
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

    /// The scanner that pulls from `host`.
    fn puller(&self, host: &str) -> Result<Scanner, ServiceError> {
        let mut pullers = self.pullers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(scanner) = pullers.get(host) {
            return Ok(scanner.clone());
        }
        let mut options = self.config.registry.clone();
        if let Some(credentials) = &self.config.credentials {
            options = options.credentials(host, credentials.clone());
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
        pullers.insert(host.to_string(), scanner.clone());
        Ok(scanner)
    }
}

/// Runs the service until `shutdown` completes, then stops: no new
/// requests or jobs; scans in progress go back to the queue.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServiceError> {
    let store = Arc::new(Store::open(&config.data_dir)?);
    let requeued = store.requeue_interrupted()?;
    if requeued > 0 {
        info!(
            jobs = requeued,
            "scans interrupted by the last stop are queued again"
        );
    }
    let policy_seen = policy_inputs(&config.policy);
    let policy = config.policy.load()?;
    for note in policy::expired_rules(&policy) {
        warn!("{note}");
    }
    let policy_id = policy_id(&policy);
    let path = config.advisory_db.clone();
    let identity = file_identity(&path);
    let db = tokio::task::spawn_blocking(move || AdvisoryStore::open(path))
        .await
        .map_err(|_| ServiceError::Lost)??;
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
        }),
        ids: RwLock::new((db_id, policy_id)),
        pullers: Mutex::new(HashMap::new()),
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
    let mut server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                stopped(&mut server_stop).await;
            })
            .await
    });
    let early = tokio::select! {
        () = shutdown => None,
        result = &mut server => Some(result),
    };
    info!("stopping");
    let _ = stop_tx.send(true);
    let served = match early {
        Some(result) => result,
        None => server.await,
    };
    while tasks.join_next().await.is_some() {}
    match served {
        Ok(result) => result.map_err(ServiceError::Serve),
        Err(_) => Err(ServiceError::Lost),
    }
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

/// Takes jobs until told to stop.
async fn worker(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        // Registered before looking, so a job queued meanwhile wakes us.
        let notified = shared.work.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match shared.store(|s| s.claim(now())).await {
            Ok(Some(job)) => scan(&shared, job, &mut stop).await,
            Ok(None) => {
                tokio::select! {
                    () = notified => {}
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

/// Pulls and scans one image and stores the result.
async fn scan(shared: &Shared, job: Job, stop: &mut watch::Receiver<bool>) {
    let reference = RegistryReference::with_tag(&job.registry, &job.repository, "latest")
        .with_digest(&job.digest);
    let source = ImageSource::Registry { reference };
    let digest = job.digest.clone();
    let started = Instant::now();
    let puller = shared.puller(&job.registry);
    let pulled = match &puller {
        Ok(puller) => {
            tokio::select! {
                result = puller.inventory(&source) => result.map_err(|e| error_chain(&e)),
                () = stopped(stop) => {
                    info!(%source, "stopping: the scan is queued again");
                    if let Err(e) = shared.store(move |s| s.release(&digest)).await {
                        error!(error = %e, "cannot put the scan back in the queue");
                    }
                    return;
                }
            }
        }
        Err(e) => Err(error_chain(e)),
    };
    if let Ok(puller) = puller {
        prune_cache(puller, shared.config.cache_max_bytes).await;
    }
    let outcome = match pulled {
        Ok(scanned) => {
            let packages = scanned.inventory.packages.len();
            match_and_store(shared, digest.clone(), scanned)
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
            let digest = job.digest.clone();
            if let Err(e) = shared
                .store(move |s| s.fail_scan(&digest, &message, now()))
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
    digest: String,
    scanned: Scanned,
) -> Result<&'static str, ServiceError> {
    let matcher = shared.matcher.lock().await;
    let scanner = matcher.scanner.clone();
    let ids = (matcher.db_id.clone(), matcher.policy_id.clone());
    let store = shared.store.clone();
    let verdict = tokio::task::spawn_blocking(move || {
        let inventory = serde_json::to_string(&scanned)?;
        let report = scanner.rematch(scanned);
        let result = match_result(&report, &ids)?;
        store.finish_scan(&digest, &inventory, &result, now())?;
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

/// What identifies one version of a file that is replaced by rename.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileIdentity(Vec<i128>);

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
        let db = new_database(&shared.config.advisory_db, &mut db_seen, &mut db_problem).await;
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
        };
        if let Some(db) = db {
            let db_id = db.info().content_sha256.clone();
            if db_id == next.db_id {
                debug!("advisory database replaced by an identical one");
            } else {
                info!(records = db.info().records, "advisory database changed");
                next.scanner = next.scanner.with_database(db);
                next.db_id = db_id;
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

/// The advisory database, when a new file is in place and opens. A file
/// that does not open is retried every tick and reported once.
async fn new_database(
    path: &Path,
    seen: &mut Option<FileIdentity>,
    last_problem: &mut Option<String>,
) -> Option<AdvisoryStore> {
    let identity = file_identity(path);
    if identity.is_none() || identity == *seen {
        return None;
    }
    let open_path = path.to_owned();
    match tokio::task::spawn_blocking(move || AdvisoryStore::open(open_path)).await {
        Ok(Ok(db)) => {
            *seen = identity;
            *last_problem = None;
            Some(db)
        }
        Ok(Err(e)) => {
            let problem = error_chain(&e);
            if last_problem.as_ref() != Some(&problem) {
                warn!(error = %problem, "new advisory database not usable; keeping the old one");
                *last_problem = Some(problem);
            }
            None
        }
        Err(_) => None,
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

/// An error and its causes, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
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
