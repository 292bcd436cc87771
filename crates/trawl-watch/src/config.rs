//! What the service needs to run: [`Config`], the registries it scans for
//! ([`WatchedRegistry`]), the policy's files ([`PolicyFiles`]), and the
//! parsers of their command-line spellings (`--registry`,
//! `--registry-auth`, durations) that a binary over this crate shares.

use std::path::{Path, PathBuf};
use std::time::Duration;

use trawl::registry::Credentials;
use trawl::{Policy, RegistryOptions, Severity};

use crate::notify::Notifications;
use crate::store::{Scope, StoreLocation};

/// An API bearer token that sees only the images in repositories under
/// its prefixes, in every endpoint: lists, counts and the summary leave the
/// others out, and looking one up by digest answers 404, as for an image
/// that does not exist. Of an image it sees, it sees only the tags in its
/// repositories.
#[derive(Clone, PartialEq, Eq)]
pub struct ScopedToken {
    /// The secret.
    pub token: String,
    /// What it sees ([`Scope::Prefixes`]).
    pub scope: Scope,
}

impl ScopedToken {
    /// A token for the repositories under `prefixes` (`team-a` covers
    /// `team-a` and `team-a/…`); an empty list or prefix is refused.
    pub fn new<I, S>(token: impl Into<String>, prefixes: I) -> Result<ScopedToken, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(ScopedToken {
            token: token.into(),
            scope: Scope::prefixes(prefixes)?,
        })
    }
}

impl std::fmt::Debug for ScopedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedToken")
            .field("token", &"<redacted>")
            .field("scope", &self.scope)
            .finish()
    }
}

/// Reads `--scoped-token-file PREFIX[,PREFIX...]=FILE`: the repository
/// prefixes, and the file holding the token (the secret is never an
/// argument).
pub fn parse_scoped_token_file(spec: &str) -> Result<(Vec<String>, PathBuf), String> {
    let usage = || format!("{spec:?}: use PREFIX[,PREFIX...]=FILE");
    let (prefixes, file) = spec.split_once('=').ok_or_else(usage)?;
    if file.is_empty() {
        return Err(usage());
    }
    let prefixes: Vec<String> = prefixes.split(',').map(str::to_string).collect();
    Scope::prefixes(&prefixes).map_err(|e| format!("{spec:?}: {e}"))?;
    Ok((prefixes, PathBuf::from(file)))
}

/// A registry the service scans for: events must name it, and images are
/// pulled from it with its own credentials and never sent anywhere else.
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

impl WatchedRegistry {
    /// A registry pulled from where its events name it, without credentials
    /// of its own.
    pub fn new(host: impl Into<String>) -> WatchedRegistry {
        let host = host.into();
        WatchedRegistry {
            pull_from: host.clone(),
            host,
            credentials: None,
        }
    }
}

/// What counts toward the verdict, and the files it is read from; the
/// files are watched while the service runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PolicyFiles {
    /// Findings below this severity do not count (unknown always counts).
    pub severity_threshold: Severity,
    /// Findings without a fixed version do not count.
    pub ignore_unfixed: bool,
    /// Ignore files: `ID [package=NAME] [expires=YYYY-MM-DD] reason="..."` per line.
    pub ignore_files: Vec<PathBuf>,
    /// OpenVEX documents; `not_affected` statements suppress.
    pub vex_files: Vec<PathBuf>,
}

impl Default for PolicyFiles {
    /// Everything counts; no files.
    fn default() -> Self {
        PolicyFiles {
            severity_threshold: Severity::Unknown,
            ignore_unfixed: false,
            ignore_files: Vec::new(),
            vex_files: Vec::new(),
        }
    }
}

impl PolicyFiles {
    /// Reads the ignore and VEX files into a policy as of today (which
    /// decides the expired ignore rules). A file that cannot be read or
    /// parsed is an error naming it and the line.
    pub fn load(&self) -> Result<Policy, trawl::classify::policy::PolicyError> {
        let mut policy = Policy {
            severity_threshold: self.severity_threshold,
            ignore_unfixed: self.ignore_unfixed,
            ..Policy::default()
        };
        for f in &self.ignore_files {
            policy
                .ignores
                .extend(trawl::classify::policy::read_ignore_file(f)?);
        }
        for f in &self.vex_files {
            policy
                .vex
                .extend(trawl::classify::policy::read_vex_file(f)?);
        }
        Ok(policy)
    }
}

/// What the service needs to run. [`Config::new`] takes what has no
/// default; the fields hold the rest and may be changed.
///
/// ```
/// use trawl_watch::{Config, StoreLocation, WatchedRegistry};
/// let mut config = Config::new(
///     "/var/lib/trawl/trawl.db",
///     "/var/lib/trawl-watch",
///     "api-token",
///     "webhook-token",
///     vec![WatchedRegistry::new("registry.example:5000")],
/// );
/// assert_eq!(config.store.to_string(), "sqlite:/var/lib/trawl-watch/watch.sqlite");
/// config.store = "postgres://watch@db.example/trawl".parse()?;
/// config.workers = 4;
/// # Ok::<(), trawl_watch::StoreError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Where results, inventories and the queue live: by default the SQLite
    /// file `DATA/watch.sqlite`; PostgreSQL for several processes.
    pub store: StoreLocation,
    /// The layer cache and the private copies of the advisory database live
    /// here (per process, also with PostgreSQL).
    pub data_dir: PathBuf,
    /// The compiled advisory database; watched for replacement. With
    /// several processes each has its own file, replaced with the same
    /// content on every machine.
    pub advisory_db: PathBuf,
    /// Bearer token of the REST API.
    pub api_token: String,
    /// More API bearer tokens, each limited to repository prefixes. A
    /// token equal to another (or to `api_token`) is refused at start.
    pub scoped_tokens: Vec<ScopedToken>,
    /// Bearer token the registry sends with notifications.
    pub webhook_token: String,
    /// How registries are reached (CA, plain-HTTP hosts, platform, Docker config).
    pub registry: RegistryOptions,
    /// The registries scanned for. An event naming any other host is
    /// refused and nothing is pulled from it.
    pub registries: Vec<WatchedRegistry>,
    /// Scans run at once by this process (default: the number of cores).
    pub workers: usize,
    /// Scans that may wait before `POST /events` answers 503 (default 256).
    pub max_pending: usize,
    /// Images pushed or pulled this recently are matched again when the
    /// advisory database or the policy changes (default 30 days).
    pub rescan_window: Duration,
    /// Images per rescan batch (default 256): the unit processes claim, and
    /// the unit each distinct package version is looked up once for.
    pub rescan_batch: usize,
    /// Rescan batches this process works on at once (default 1). With 2,
    /// one batch is matched here (one at a time: matching a batch takes
    /// every core) while another's inventories are read or its results
    /// written by the store, so that neither waits for the other: a
    /// process alone rescans about 1.5 times as fast. Two batches' results
    /// in memory at once, allocated on the matching threads and freed on
    /// others, fragment glibc's allocator: its first match of a registry
    /// then costs the process about twice the CPU. The `trawl` binary
    /// uses mimalloc and 2 (the README's "rescan at 100,000 images" has
    /// the figures); an embedder on glibc's allocator is better off with 1.
    pub rescan_concurrency: usize,
    /// How often the advisory database and policy files are checked for
    /// changes, and other processes' rescan batches looked for (default 1 s).
    pub db_poll_interval: Duration,
    /// What counts toward the verdict; its files are watched like the database.
    pub policy: PolicyFiles,
    /// The layer cache under `data_dir` is pruned to this size (least
    /// recently used entries first) after each scan (default 1 GiB).
    pub cache_max_bytes: u64,
    /// How long a running job's or rescan batch's lease lasts without being
    /// renewed (default 30 s); it is renewed every third of it. A process
    /// that dies holds its jobs this long at most.
    pub job_lease: Duration,
    /// Where HMAC-signed events go (`scan.completed`, `scan.failed`,
    /// `verdict.changed`) and how they are retried: [`crate::notify`].
    /// With several processes on one store, give every one the same
    /// targets.
    pub notify: Notifications,
}

impl Config {
    /// A configuration with the defaults the field docs give, the store in
    /// `data_dir/watch.sqlite`.
    pub fn new(
        advisory_db: impl Into<PathBuf>,
        data_dir: impl Into<PathBuf>,
        api_token: impl Into<String>,
        webhook_token: impl Into<String>,
        registries: Vec<WatchedRegistry>,
    ) -> Config {
        let data_dir = data_dir.into();
        Config {
            store: StoreLocation::sqlite(data_dir.join("watch.sqlite")),
            data_dir,
            advisory_db: advisory_db.into(),
            api_token: api_token.into(),
            scoped_tokens: Vec::new(),
            webhook_token: webhook_token.into(),
            registry: RegistryOptions::default(),
            registries,
            workers: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            max_pending: 256,
            rescan_window: Duration::from_secs(30 * 86_400),
            rescan_batch: 256,
            rescan_concurrency: 1,
            db_poll_interval: Duration::from_secs(1),
            policy: PolicyFiles::default(),
            cache_max_bytes: 1 << 30,
            job_lease: Duration::from_secs(30),
            notify: Notifications::default(),
        }
    }
}

/// Reads `--registry HOST[:PORT][=PULL_HOST[:PORT]]`: the host events name,
/// and where to pull from (the same host unless given).
pub fn parse_registry(spec: &str) -> Result<(String, String), String> {
    let (host, pull_from) = spec.split_once('=').unwrap_or((spec, spec));
    for h in [host, pull_from] {
        if !crate::events::is_host(h) {
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
    if !crate::events::is_host(host) || user.is_empty() || file.is_empty() {
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
    fn scoped_token_specs() {
        assert_eq!(
            parse_scoped_token_file("team-a/,team-b=/etc/trawl/a=b.token"),
            Ok((
                vec!["team-a/".to_string(), "team-b".to_string()],
                PathBuf::from("/etc/trawl/a=b.token")
            ))
        );
        for bad in ["team-a", "=f", "team-a=", ",x=f", "a,,b=f"] {
            assert!(parse_scoped_token_file(bad).is_err(), "{bad}");
        }
        let t = ScopedToken::new("s3cret", ["team-a"]).unwrap();
        assert!(!format!("{t:?}").contains("s3cret"));
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
}
