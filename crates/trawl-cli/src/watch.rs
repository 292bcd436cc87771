//! `trawl watch`: scan images as they are pushed to a registry, and rescan the ones
//! in use whenever the advisory database changes.
//!
//! ```text
//! trawl watch --db trawl.db --data /var/lib/trawl-watch \
//!     --token-file api.token --webhook-token-file webhook.token \
//!     [--scoped-token-file PREFIX[,PREFIX...]=FILE]... \
//!     [--store postgres://USER@HOST[:PORT]/DB [--store-password-file FILE]] \
//!     --registry HOST[:PORT][=PULL_HOST[:PORT]]... \
//!     [--registry-auth HOST[:PORT]=USER:PASSWORD_FILE]... \
//!     [--listen 127.0.0.1:8780] [--ca-file PEM] [--insecure-registry HOST[:PORT]]... \
//!     [--platform OS/ARCH[/VARIANT]] [--workers N] [--max-pending N] \
//!     [--rescan-window 30d] [--rescan-batch 256] [--rescan-concurrency 1] [--job-lease 30s] \
//!     [--cache-max-size 1G] [--idle-timeout 60s] \
//!     [--header-timeout 10s] [--request-timeout 30s] [--max-connections 512] \
//!     [--notify URL=SECRET_FILE]... [--notify-timeout 10s] [--notify-give-up-after 24h] \
//!     [--severity-threshold SEVERITY] [--ignore-unfixed] [--ignore-file FILE]... [--vex FILE]...
//! ```
//!
//! Point the registry's notifications at it (Docker Registry 2.0 /
//! distribution `config.yml`; the header must carry the webhook token):
//!
//! ```yaml
//! notifications:
//!   endpoints:
//!     - name: trawl-watch
//!       url: http://127.0.0.1:8780/events
//!       headers:
//!         Authorization: [Bearer WEBHOOK_TOKEN]
//!       timeout: 5s
//!       threshold: 5
//!       backoff: 10s
//!       ignoredmediatypes:
//!         - application/octet-stream
//! ```
//!
//! Secrets are never arguments (`ps` shows arguments to everyone): the API
//! and webhook tokens come from `--token-file` and `--webhook-token-file` or
//! from `TRAWL_WATCH_TOKEN` and `TRAWL_WATCH_WEBHOOK_TOKEN` (removed from the
//! environment once read, so helpers the service starts do not inherit
//! them), registry passwords from the files `--registry-auth` names.
//! `--scoped-token-file team-a,team-b=FILE` adds an API token (read from
//! FILE) that sees only images in repositories under those prefixes
//! (`team-a` covers `team-a` and `team-a/…`): every endpoint leaves the
//! others out, and looking one up answers 404 as if it did not exist.
//!
//! Only the registries given with `--registry` are scanned for: `HOST[:PORT]`
//! as the registry's events name it (the host its clients push to), and
//! optionally `=PULL_HOST[:PORT]`, another address to pull from (an
//! internal name). An event naming any other host (clients choose the
//! `Host:` header the registry puts into its events) is refused, logged and
//! counted in `/healthz`; nothing is pulled from it, with or without
//! credentials. `--registry-auth HOST=USER:PASSWORD_FILE` gives a registry
//! its credentials, sent to its pull address only; a registry without them
//! uses Docker's config file for that address, as `scan` does. `--ca-file`,
//! `--insecure-registry` and `--platform` are `scan`'s.
//!
//! `--notify URL=SECRET_FILE` POSTs `scan.completed`, `scan.failed` and
//! `verdict.changed` events as JSON to URL, signed with HMAC-SHA256 keyed
//! with the secret read from SECRET_FILE (headers `X-Trawl-Event`,
//! `X-Trawl-Event-Id`, `X-Trawl-Timestamp`, `X-Trawl-Signature:
//! sha256=HEX`); delivered at least once from an outbox in the store,
//! retried with backoff until `--notify-give-up-after`. See
//! [`trawl_watch::notify`] and the README's Notifications section.
//!
//! Every push of an image manifest or index (imports too) is scanned once.
//! Pulls record when an image was last used (pulls by Trawl itself, user
//! agent `trawl/…`, do not count; an image never seen is scanned on its first
//! pull). When `--max-pending` scans wait, the next event of an envelope that
//! needs a scan and the events after it are not recorded, and the answer is
//! 503 with `Retry-After`: the registry sends the whole envelope again later
//! and the events recorded the first time record again without effect.
//! Replace `--db` atomically (`trawl db build -o`, `trawl db pull -o`) and every image
//! pushed or pulled within `--rescan-window` is matched again from its
//! stored inventory, without pulling; the service reads a verified private
//! copy of the file (in `DATA/advisory-db/`), so a file rewritten in place
//! is refused until whole instead of crashing it. Results, inventories and
//! the scan queue live in `DATA/watch.sqlite` (one process per data
//! directory); a scan interrupted by a crash is redone at the next start, one
//! at a time, and only a scan that was running alone when the process died
//! is charged for it (given up after three). The layer cache in
//! `DATA/layers` is kept under `--cache-max-size`, least recently used
//! layers removed first.
//!
//! The HTTP server closes a connection that sends nothing for
//! `--idle-timeout`, or does not complete a request's head within
//! `--header-timeout`; a request must be answered (503 otherwise) and the
//! answer written within `--request-timeout`; at most `--max-connections`
//! are open, and at the cap the one waiting longest without a request in
//! progress is closed for the new one.
//!
//! The policy flags are `scan`'s. The ignore and VEX files are watched like
//! the database: when one is edited or replaced, or an ignore rule's expiry
//! date passes, the images in the window are classified again (an unreadable
//! file is reported and the policy in use is kept). A manifest deleted from
//! the registry (`delete` events; `storage.delete.enabled` in its config) is
//! removed from that repository's listing, and forgotten once no repository
//! holds it; a deleted tag is removed from its image.
//!
//! The REST API (`Authorization: Bearer TOKEN`):
//!
//! ```text
//! GET /v1/images                      [{repository, tag, digest, state, verdict, counts, scans, rescans, last_scanned, last_pushed, last_pulled}]
//! GET /v1/images/DIGEST               one image: tags, verdict and reason, counts, advisory_db, error, job, history
//! GET /v1/images/DIGEST/findings?severity=high&fix_state=fixed&package=openssl&id=CVE-2024-5535[&suppressed=true]
//! GET /v1/vulnerabilities?severity=&fix_state=&package=&ecosystem=&repository=
//!                                     one row per vulnerability id: severity, fix state, images, packages, aliases
//! GET /v1/vulnerabilities/ID          by id or alias: every affected image with its package versions and fixed version
//! GET /v1/findings?…&layer=&pushed_within=30d&pulled_within=&limit=100&cursor=
//!                                     findings across images, a page at a time (next_cursor, next, Link)
//! GET /v1/summary[?repository=]       images by verdict, findings by severity and fix state, top packages and repositories
//! GET /healthz                        no token; queue lengths, the advisory database in use, unknown_registry_events
//! ```
//!
//! `Accept: text/csv` on /v1/images, /v1/vulnerabilities and /v1/findings
//! answers RFC 4180 CSV with a header row.
//!
//! `severity` keeps findings at or above it (unknown ranks lowest), `package`
//! matches the binary or source package, `id` the id or any alias. `counts`
//! are those of the findings that count toward the verdict, by severity and
//! by fix state. Errors are served and logged with URL query strings and
//! user info redacted (presigned storage URLs carry signatures). Logs go to
//! stderr (`TRAWL_LOG`, default `info`). SIGINT or SIGTERM stops it
//! gracefully, without waiting for idle clients.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use trawl::RegistryOptions;
use trawl_watch::{Config, HttpLimits, StoreLocation};

use crate::{policy, size};

/// `trawl watch`'s options.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Where to listen: the webhook is POST /events, the API /v1/.
    #[arg(long, default_value = "127.0.0.1:8780")]
    listen: SocketAddr,
    /// The compiled advisory database; replacing it triggers rescans.
    #[arg(long, value_name = "FILE")]
    db: PathBuf,
    /// Where the layer cache lives, and by default the results store.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// The results store: postgres://USER@HOST[:PORT]/DB (shared by several
    /// processes) or sqlite:FILE (default: DATA/watch.sqlite).
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// A file holding the PostgreSQL password (else $TRAWL_WATCH_STORE_PASSWORD).
    #[arg(long, value_name = "FILE")]
    store_password_file: Option<PathBuf>,
    /// A file holding the API's bearer token (else $TRAWL_WATCH_TOKEN).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// An API token limited to repositories under the prefixes, read from
    /// FILE. Repeatable.
    #[arg(
        long = "scoped-token-file",
        value_name = "PREFIX[,PREFIX...]=FILE",
        value_parser = trawl_watch::parse_scoped_token_file
    )]
    scoped_token_files: Vec<(Vec<String>, PathBuf)>,
    /// A file holding the token the registry sends (else $TRAWL_WATCH_WEBHOOK_TOKEN).
    #[arg(long, value_name = "FILE")]
    webhook_token_file: Option<PathBuf>,
    /// A registry to scan for, as its events name it; optionally another
    /// address to pull from. Repeatable; events naming any other host are refused.
    #[arg(
        long = "registry",
        value_name = "HOST[:PORT][=PULL_HOST[:PORT]]",
        required = true,
        value_parser = trawl_watch::parse_registry
    )]
    registries: Vec<(String, String)>,
    /// Credentials of a --registry: the user, and a file holding the password. Repeatable.
    #[arg(
        long = "registry-auth",
        value_name = "HOST[:PORT]=USER:PASSWORD_FILE",
        value_parser = trawl_watch::parse_registry_auth
    )]
    registry_auths: Vec<(String, String, PathBuf)>,
    /// POST HMAC-signed events (scan.completed, scan.failed,
    /// verdict.changed) to URL, signed with the secret read from
    /// SECRET_FILE (split at the last `=`). Repeatable; give every process
    /// on one store the same ones.
    #[arg(
        long = "notify",
        value_name = "URL=SECRET_FILE",
        value_parser = trawl_watch::notify::parse_notify
    )]
    notify: Vec<(String, PathBuf)>,
    /// One notification POST's time limit.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = positive_duration)]
    notify_timeout: Duration,
    /// A notification not delivered this long after it was written is given
    /// up (retries back off from 1 s, doubling, to 1 h apart).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = positive_duration)]
    notify_give_up_after: Duration,
    /// An extra CA certificate (PEM) to trust for registries.
    #[arg(long, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// Allow plain HTTP for this registry (loopback is always allowed). Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    insecure_registries: Vec<String>,
    /// Platform to pick from multi-platform images (default: linux and the host's architecture).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// Scans run at once by this process (default: the number of cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Scans that may wait; beyond, the webhook answers 503 and the registry retries.
    #[arg(long, default_value_t = 256, value_parser = at_least_one)]
    max_pending: usize,
    /// Images pushed or pulled this recently are rescanned when the database changes.
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = trawl_watch::parse_duration)]
    rescan_window: Duration,
    /// Images per rescan batch: the unit processes claim.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = at_least_one)]
    rescan_batch: usize,
    /// Rescan batches this process works on at once (one is matched while
    /// another is read or written; 1: one after the other).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = at_least_one)]
    rescan_concurrency: usize,
    /// How long a scan or rescan batch stays claimed by a process that stops
    /// renewing it (renewed every third of it while it runs).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = positive_duration)]
    job_lease: Duration,
    /// Bound on the layer cache under --data; least recently used layers go first.
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = size::parse_size)]
    cache_max_size: u64,
    /// A connection that sends nothing (no request in progress) this long is closed.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = positive_duration)]
    idle_timeout: Duration,
    /// A request's head must be complete this long after its first byte.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = positive_duration)]
    header_timeout: Duration,
    /// A request is answered within this (503 beyond), and the answer written within it again.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = positive_duration)]
    request_timeout: Duration,
    /// Connections open at once; at the cap, the one waiting longest without a request goes.
    #[arg(long, value_name = "N", default_value_t = 512, value_parser = at_least_one)]
    max_connections: usize,
    #[command(flatten)]
    policy: policy::PolicyArgs,
}

fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{text:?}: use a whole number of at least 1")),
    }
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    match trawl_watch::parse_duration(text)? {
        d if d.is_zero() => Err(format!("{text:?}: use at least 1s")),
        d => Ok(d),
    }
}

/// Takes `env` out of the environment, so that processes the service starts
/// (credential helpers) do not inherit the secret in it.
fn take_env(env: &str) -> Option<std::ffi::OsString> {
    let value = std::env::var_os(env);
    if value.is_some() {
        // SAFETY: called from `run` before the runtime (or any other thread)
        // starts, so nothing reads the environment concurrently.
        unsafe { std::env::remove_var(env) };
    }
    value
}

/// A secret from a file, else from the environment variable `env` (one
/// line; surrounding white space dropped). Never from the command line.
fn secret(
    file: Option<&Path>,
    flag: &str,
    env: &str,
    what: &str,
) -> Result<Option<String>, Box<dyn std::error::Error>> {
    let secret = match (file, take_env(env)) {
        (Some(_), Some(_)) => {
            return Err(format!("the {what} is given twice: {flag} and ${env}").into());
        }
        (Some(f), None) => read_secret_file(f, what)?,
        (None, Some(v)) => v
            .into_string()
            .map_err(|_| format!("${env} is not UTF-8"))?,
        (None, None) => return Ok(None),
    };
    let secret = secret.trim().to_string();
    if secret.is_empty() {
        return Err(format!("the {what} is empty").into());
    }
    Ok(Some(secret))
}

/// A secret that must be given.
fn required_secret(
    file: Option<&Path>,
    flag: &str,
    env: &str,
    what: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    secret(file, flag, env, what)?
        .ok_or_else(|| format!("no {what}: give {flag} FILE or set ${env}").into())
}

fn read_secret_file(file: &Path, what: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read the {what} from {}: {e}", file.display()))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("the {what} in {} is empty", file.display()));
    }
    Ok(text.to_string())
}

/// Runs the service until SIGINT or SIGTERM.
pub fn run(args: WatchArgs) -> Result<(), Box<dyn std::error::Error>> {
    let api_token = required_secret(
        args.token_file.as_deref(),
        "--token-file",
        "TRAWL_WATCH_TOKEN",
        "API token",
    )?;
    let webhook_token = required_secret(
        args.webhook_token_file.as_deref(),
        "--webhook-token-file",
        "TRAWL_WATCH_WEBHOOK_TOKEN",
        "webhook token",
    )?;
    let store_password = secret(
        args.store_password_file.as_deref(),
        "--store-password-file",
        "TRAWL_WATCH_STORE_PASSWORD",
        "store password",
    )?;
    let registries =
        trawl_watch::watched_registries(&args.registries, &args.registry_auths, |file| {
            read_secret_file(file, "registry password")
        })?;
    let mut registry = RegistryOptions::default();
    if let Some(p) = &args.platform {
        registry = registry.platform(p.parse()?);
    }
    if let Some(ca) = &args.ca_file {
        registry = registry.ca_file(ca);
    }
    for host in &args.insecure_registries {
        registry = registry.insecure_registry(host.clone());
    }
    let mut config = Config::new(args.db, args.data, api_token, webhook_token, registries);
    if let Some(store) = &args.store {
        let mut location: StoreLocation = store.parse()?;
        if location.has_password() {
            return Err(
                "--store: the URL carries a password, which `ps` shows to every user; \
                 give it with --store-password-file or $TRAWL_WATCH_STORE_PASSWORD"
                    .into(),
            );
        }
        if let Some(password) = store_password {
            location = location.with_password(password);
        }
        config.store = location;
    } else if store_password.is_some() {
        return Err("a store password is given, but no --store postgres://…".into());
    }
    config.registry = registry;
    config.scoped_tokens = scoped_tokens(&args.scoped_token_files)?;
    if let Some(workers) = args.workers {
        config.workers = workers;
    }
    config.max_pending = args.max_pending;
    config.rescan_window = args.rescan_window;
    config.rescan_batch = args.rescan_batch;
    config.rescan_concurrency = args.rescan_concurrency;
    config.job_lease = args.job_lease;
    config.policy = args.policy.files();
    config.cache_max_bytes = args.cache_max_size;
    config.notify.targets = trawl_watch::notify::notify_targets(&args.notify, |file| {
        read_secret_file(file, "notification secret")
    })?;
    config.notify.timeout = args.notify_timeout;
    config.notify.give_up_after = args.notify_give_up_after;
    let limits = HttpLimits {
        idle_timeout: args.idle_timeout,
        header_timeout: args.header_timeout,
        request_timeout: args.request_timeout,
        max_connections: args.max_connections,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(trawl_watch::run(
        config,
        args.listen,
        limits,
        shutdown_signal(),
    ));
    // A scan's blocking work (a pull) may still run on its thread; its job
    // is back in the queue, so it is not waited for.
    runtime.shutdown_timeout(Duration::from_secs(2));
    result?;
    Ok(())
}

/// The `--scoped-token-file` tokens, read from their files.
fn scoped_tokens(
    specs: &[(Vec<String>, PathBuf)],
) -> Result<Vec<trawl_watch::ScopedToken>, Box<dyn std::error::Error>> {
    let mut tokens = Vec::new();
    for (prefixes, file) in specs {
        let token = read_secret_file(file, "scoped API token")?;
        tokens.push(trawl_watch::ScopedToken::new(token, prefixes)?);
    }
    Ok(tokens)
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
