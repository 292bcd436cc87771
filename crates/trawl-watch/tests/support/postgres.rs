//! A real PostgreSQL server for tests and benches: Debian's `postgresql`
//! package, a fresh cluster per test process in a temporary directory, on a
//! free loopback port. (`#[path]`-included by the facade's benches and by
//! the store's unit tests in `src/store/postgres.rs` too.)
//!
//! `initdb` and `pg_ctl` refuse to run as root, so under root they run as
//! the package's `postgres` user (`runuser`), which is given the temporary
//! directory. The cluster is started by a small shell that then waits on
//! its standard input: the test process holds the other end, so when the
//! process ends (passed, failed, panicked or killed) the shell sees end of
//! file, stops the server (`pg_ctl stop -m immediate`) and removes the
//! directory. Nothing outlives the test run. The shell runs in a process
//! group of its own, so that a signal to the test's group (a `kill -- -PGID`
//! of the whole run, or Ctrl-C) kills the test, not its keeper: the keeper
//! then sees end of file and cleans up as after any other end.
//!
//! Each caller gets a database of its own ([`Postgres::database`]) on the one
//! cluster: tests run in parallel threads without seeing each other's rows.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// The cluster of this test process.
pub struct Postgres {
    port: u16,
    dir: PathBuf,
    bin: PathBuf,
    user: Option<String>,
    /// The shell that tears the cluster down when this end closes.
    _keeper: Mutex<(Child, ChildStdin)>,
    next: AtomicUsize,
}

/// The database superuser the cluster is made with.
pub const SUPERUSER: &str = "trawl";

impl Postgres {
    /// The cluster, started on first use.
    pub fn get() -> &'static Postgres {
        static CLUSTER: OnceLock<Postgres> = OnceLock::new();
        CLUSTER.get_or_init(Postgres::start)
    }

    fn start() -> Postgres {
        let bin = bin_dir();
        let root_user = is_root();
        let user = root_user.then(|| "postgres".to_string());
        // Under /tmp (world-traversable) so that `postgres` reaches it.
        let dir = tempfile::Builder::new()
            .prefix("trawl-pg-")
            .tempdir_in(std::env::temp_dir())
            .expect("a temporary directory for PostgreSQL")
            .keep();
        if let Some(user) = &user {
            let status = Command::new("chown")
                .arg(format!("{user}:"))
                .arg(&dir)
                .status()
                .expect("run chown");
            assert!(status.success(), "chown {user} {}", dir.display());
        }
        for attempt in 0..5 {
            let port = free_port();
            match launch(&bin, &dir, port, user.as_deref()) {
                Ok(keeper) => {
                    return Postgres {
                        port,
                        dir,
                        bin,
                        user,
                        _keeper: Mutex::new(keeper),
                        next: AtomicUsize::new(0),
                    };
                }
                Err(log) if attempt < 4 && log.contains("could not bind") => continue,
                Err(log) => panic!("PostgreSQL did not start:\n{log}"),
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A new, empty database; its URL (`postgres://trawl@127.0.0.1:PORT/NAME`,
    /// trust authentication on loopback).
    pub fn database(&self, prefix: &str) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}_{}_{n}", std::process::id());
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs SQL in database `db` with `psql`; its output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", SUPERUSER, "-d", db, "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Stops the server (as a crash would: `-m immediate`) and starts it
    /// again on the same port and data; for tests of reconnection.
    pub fn restart(&self) {
        let data = self.dir.join("data");
        let script = format!(
            "{pg_ctl} -D {data} -m immediate -w stop >/dev/null && \
             {pg_ctl} -D {data} -l {log} -w -t 60 start >/dev/null",
            pg_ctl = self.bin.join("pg_ctl").display(),
            data = data.display(),
            log = self.dir.join("server.log").display(),
        );
        let status = as_user(self.user.as_deref(), &script)
            .status()
            .expect("run pg_ctl");
        assert!(status.success(), "pg_ctl restart failed");
    }
}

/// Debian's `/usr/lib/postgresql/VERSION/bin`, the newest installed.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (apt-get install postgresql)")
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .expect("initdb in /usr/lib/postgresql/*/bin")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A loopback port nobody listens on (a race is possible: the caller retries).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// `sh -c script`, as `user` when given.
fn as_user(user: Option<&str>, script: &str) -> Command {
    match user {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--", "sh", "-c", script]);
            c
        }
        None => {
            let mut c = Command::new("sh");
            c.args(["-c", script]);
            c
        }
    }
}

/// Makes and starts the cluster in `dir`; returns the keeper shell, or the
/// log when it did not start.
fn launch(
    bin: &Path,
    dir: &Path,
    port: u16,
    user: Option<&str>,
) -> Result<(Child, ChildStdin), String> {
    let data = dir.join("data");
    let log = dir.join("server.log");
    // Loopback only, sockets in the directory, a few connections per test
    // process beyond the pools' needs. No fsync (the page cache survives
    // the server's death, and tests never outlive the machine), but
    // synchronous commits: a commit is in the WAL when it returns, so a
    // server killed and restarted (`restart`) has lost nothing committed.
    // In the configuration file, so that a restart keeps them.
    let settings = dir.join("settings.conf");
    std::fs::write(
        &settings,
        format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{dir}'\n\
             fsync = off\nfull_page_writes = off\n\
             max_connections = 300\n",
            dir = dir.display()
        ),
    )
    .map_err(|e| format!("cannot write {}: {e}", settings.display()))?;
    let script = format!(
        "set -e
         [ -d {data} ] || {bin}/initdb -D {data} -U {SUPERUSER} -A trust -E UTF8 --no-locale >{dir}/initdb.log 2>&1
         cp {settings} {data}/postgresql.auto.conf
         {bin}/pg_ctl -D {data} -l {log} -w -t 60 start >/dev/null 2>&1 || {{ cat {log} {dir}/initdb.log; exit 1; }}
         echo started
         cat >/dev/null || true
         {bin}/pg_ctl -D {data} -m immediate -w stop >/dev/null 2>&1 || true
         rm -rf {dir}",
        bin = bin.display(),
        data = data.display(),
        dir = dir.display(),
        log = log.display(),
        settings = settings.display(),
    );
    let mut child = as_user(user, &script)
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run the PostgreSQL keeper: {e}"))?;
    let stdin = child.stdin.take().ok_or("no stdin")?;
    let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
    let mut first = String::new();
    let _ = stdout.read_line(&mut first);
    if first.trim() == "started" {
        return Ok((child, stdin));
    }
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
    let _ = child.wait();
    Err(format!("{first}{rest}"))
}
