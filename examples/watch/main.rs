//! `watch`: scan images as they are pushed to a registry, and rescan the ones
//! in use whenever the advisory database changes.
//!
//! ```text
//! cargo run --release --example watch -- --db trawl.db --data /var/lib/trawl-watch \
//!     --token-file api.token --webhook-token-file webhook.token \
//!     [--listen 127.0.0.1:8780] [--registry HOST[:PORT]] [--ca-file PEM] \
//!     [--insecure-registry HOST[:PORT]]... [--platform OS/ARCH[/VARIANT]] \
//!     [--username USER --password-file FILE] [--workers N] [--max-pending N] \
//!     [--rescan-window 30d] [--cache-max-size 1G] [--severity-threshold SEVERITY] \
//!     [--ignore-unfixed] [--ignore-file FILE]... [--vex FILE]...
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
//! Every push of an image manifest or index (imports too) is scanned once,
//! pulling from the registry that sent the event (or `--registry`) with the
//! same registry options as `scan`: `--ca-file`, `--insecure-registry`,
//! `--username` with the password in `--password-file`, else Docker's config
//! file. Credentials go to the `--registry` host, or to the host the events
//! name. Pulls record when an image was last used (pulls by Trawl itself, user
//! agent `trawl/…`, do not count; an image never seen is scanned on its first
//! pull). Replace `--db` atomically (`db build -o`, `db pull -o`) and every
//! image pushed or pulled within `--rescan-window` is matched again from its
//! stored inventory, without pulling. Results, inventories and the scan queue
//! live in `DATA/watch.sqlite`; a scan interrupted by a crash is redone at the
//! next start. The layer cache in `DATA/layers` is kept under
//! `--cache-max-size`, least recently used layers removed first.
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
//! GET /v1/images/DIGEST               one image: tags, verdict and reason, counts, advisory_db, error, history
//! GET /v1/images/DIGEST/findings?severity=high&fix_state=fixed&package=openssl&id=CVE-2024-5535[&suppressed=true]
//! GET /healthz                        no token; queue lengths and the advisory database in use
//! ```
//!
//! `severity` keeps findings at or above it (unknown ranks lowest), `package`
//! matches the binary or source package, `id` the id or any alias. `counts`
//! are those of the findings that count toward the verdict, by severity and
//! by fix state. Logs go to stderr (`TRAWL_LOG`, default `info`). SIGINT or
//! SIGTERM stops it gracefully.

mod service;

#[path = "../support/cli.rs"]
mod cli;
#[path = "../support/size.rs"]
mod size;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use trawl::RegistryOptions;
use trawl::registry::Credentials;

/// Scan images pushed to a registry (its notification webhook) and rescan
/// those in use when the advisory database changes.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Where to listen: the webhook is POST /events, the API /v1/.
    #[arg(long, default_value = "127.0.0.1:8780")]
    listen: SocketAddr,
    /// The compiled advisory database; replacing it triggers rescans.
    #[arg(long, value_name = "FILE")]
    db: PathBuf,
    /// Where results, inventories, the scan queue and the layer cache live.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Bearer token of the REST API.
    #[arg(
        long,
        required_unless_present = "token_file",
        conflicts_with = "token_file"
    )]
    token: Option<String>,
    /// A file holding the API token.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Bearer token the registry sends (its endpoint's Authorization header).
    #[arg(
        long,
        required_unless_present = "webhook_token_file",
        conflicts_with = "webhook_token_file"
    )]
    webhook_token: Option<String>,
    /// A file holding the webhook token.
    #[arg(long, value_name = "FILE")]
    webhook_token_file: Option<PathBuf>,
    /// Pull from this registry instead of the host the events name.
    #[arg(long, value_name = "HOST[:PORT]")]
    registry: Option<String>,
    /// An extra CA certificate (PEM) to trust for registries.
    #[arg(long, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// Allow plain HTTP for this registry (loopback is always allowed). Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    insecure_registries: Vec<String>,
    /// Platform to pick from multi-platform images (default: linux and the host's architecture).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// Registry user name; the password is read from --password-file.
    #[arg(long, requires = "password_file")]
    username: Option<String>,
    /// A file holding the registry password.
    #[arg(long, value_name = "FILE", requires = "username")]
    password_file: Option<PathBuf>,
    /// Scans run at once (default: the number of cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Scans that may wait; beyond, the webhook answers 503 and the registry retries.
    #[arg(long, default_value_t = 256)]
    max_pending: usize,
    /// Images pushed or pulled this recently are rescanned when the database changes.
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = service::parse_duration)]
    rescan_window: Duration,
    /// Bound on the layer cache under --data; least recently used layers go first.
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = size::parse_size)]
    cache_max_size: u64,
    #[command(flatten)]
    policy: service::policy::PolicyArgs,
}

fn main() -> ExitCode {
    cli::init_logging("info");
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => cli::fail(&*e),
    }
}

/// A secret from the command line or a file (one line; surrounding white space dropped).
fn secret(
    value: Option<String>,
    file: Option<&Path>,
    what: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let secret = match (value, file) {
        (Some(v), _) => v,
        (None, Some(f)) => std::fs::read_to_string(f)
            .map_err(|e| format!("cannot read {what} from {}: {e}", f.display()))?,
        (None, None) => return Err(format!("no {what} given").into()),
    };
    let secret = secret.trim().to_string();
    if secret.is_empty() {
        return Err(format!("the {what} is empty").into());
    }
    Ok(secret)
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
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
    let credentials = match (&args.username, &args.password_file) {
        (Some(user), Some(file)) => Some(Credentials::new(
            user.clone(),
            secret(None, Some(file), "registry password")?,
        )),
        _ => None,
    };
    let config = service::Config {
        listen: args.listen,
        api_token: secret(args.token, args.token_file.as_deref(), "API token")?,
        webhook_token: secret(
            args.webhook_token,
            args.webhook_token_file.as_deref(),
            "webhook token",
        )?,
        data_dir: args.data,
        advisory_db: args.db,
        registry,
        credentials,
        registry_override: args.registry,
        workers: args.workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        }),
        max_pending: args.max_pending,
        rescan_window: args.rescan_window,
        db_poll_interval: Duration::from_secs(1),
        policy: args.policy,
        cache_max_bytes: args.cache_max_size,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(service::run(config, shutdown_signal()))?;
    Ok(())
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
