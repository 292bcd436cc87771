//! What the `trawl watch` end-to-end tests (`tests/watch.rs`,
//! `tests/watch_reliability.rs`) share: the tokens, an HTTP client, the
//! service's REST API, `trawl watch` as an OS process, a gate that holds
//! connections to a registry, and `skopeo`. Each test binary uses a part.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

/// The API token the tests' services take.
pub const API_TOKEN: &str = "api-token-4f1c";
/// The webhook token the tests' services take.
pub const WEBHOOK_TOKEN: &str = "webhook-token-9d2e";
/// The media type of distribution's notification envelopes.
pub const EVENTS_MEDIA_TYPE: &str = "application/vnd.docker.distribution.events.v1+json";
/// The OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// How long an awaited state may take (the slowest test's need: a 2-core
/// machine shared with other builds).
pub const DEADLINE: Duration = Duration::from_secs(90);

/// One blocking HTTP client for the test binary.
pub fn client() -> &'static reqwest::blocking::Client {
    static CLIENT: OnceLock<reqwest::blocking::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    })
}

/// A free loopback address to listen on.
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Runs `skopeo ARGS`; panics with its stderr when it fails.
pub fn skopeo(args: &[&str]) {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("run skopeo (apt-get install skopeo)");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The REST API of a service at `addr`.
pub struct Api {
    /// Where the service listens.
    pub addr: SocketAddr,
}

impl Api {
    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `GET path` with the API token: status and JSON body.
    pub fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = client()
            .get(self.url(path))
            .bearer_auth(API_TOKEN)
            .send()
            .unwrap();
        let status = r.status();
        (status, r.json().unwrap_or(Value::Null))
    }

    /// `GET /healthz`, which must answer 200.
    pub fn health(&self) -> Value {
        let (status, body) = self.get("/healthz");
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// `GET /v1/images/{digest}`, which must answer 200.
    pub fn image(&self, digest: &str) -> Value {
        let (status, body) = self.get(&format!("/v1/images/{digest}"));
        assert_eq!(status, StatusCode::OK, "{digest}: {body}");
        body
    }

    /// `GET /v1/images/{digest}/findings{query}`, which must answer 200.
    pub fn findings(&self, digest: &str, query: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/v1/images/{digest}/findings{query}"));
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        body.as_array().unwrap().clone()
    }

    /// Polls `GET /v1/images/{digest}` until `done` holds.
    pub fn wait_for(&self, digest: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let (status, body) = self.get(&format!("/v1/images/{digest}"));
            if status == StatusCode::OK && done(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{digest}: {what} did not happen; last answer {status}: {body}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// POSTs a notification envelope with the webhook token.
    pub fn post_events(&self, envelope: &Value) -> reqwest::blocking::Response {
        client()
            .post(self.url("/events"))
            .bearer_auth(WEBHOOK_TOKEN)
            .header("Content-Type", EVENTS_MEDIA_TYPE)
            .body(envelope.to_string())
            .send()
            .unwrap()
    }
}

/// A `trawl watch` OS process, as operators run it; killed when dropped.
pub struct WatchProcess {
    child: Child,
    api: Api,
    log: PathBuf,
}

impl WatchProcess {
    /// Starts `trawl watch --listen addr ARGS` with `env` added, its stderr
    /// appended to `log`, and waits until `/healthz` answers.
    pub fn start(addr: SocketAddr, args: &[String], env: &[(&str, &str)], log: &Path) -> Self {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut command = Command::new(crate::common::trawl_bin());
        command
            .arg("watch")
            .arg("--listen")
            .arg(addr.to_string())
            .args(args)
            .env("TRAWL_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut p = WatchProcess {
            child: command.spawn().unwrap(),
            api: Api { addr },
            log: log.to_owned(),
        };
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(r) = client().get(p.url("/healthz")).send()
                && r.status() == StatusCode::OK
            {
                return p;
            }
            if let Some(status) = p.child.try_wait().unwrap() {
                panic!("watch exited with {status}: {}", p.logs());
            }
            assert!(
                Instant::now() < deadline,
                "watch did not start: {}",
                p.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What it logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its REST API (a handle of its own, not borrowing the process).
    pub fn api(&self) -> Api {
        Api {
            addr: self.api.addr,
        }
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGTERM, then the exit status if it exits within `within`.
    pub fn terminate(&mut self, within: Duration) -> Option<ExitStatus> {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl std::ops::Deref for WatchProcess {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for WatchProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP relay to `upstream` that holds every connection until opened.
pub struct Gate {
    /// Where the relay listens (`127.0.0.1:port`).
    pub host: String,
    open: Arc<(Mutex<bool>, Condvar)>,
}

impl Gate {
    /// Starts the relay, closed.
    pub fn start(upstream: &str) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let open: Arc<(Mutex<bool>, Condvar)> = Arc::default();
        let (gate, upstream) = (open.clone(), upstream.to_string());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (gate, upstream) = (gate.clone(), upstream.clone());
                std::thread::spawn(move || {
                    let (lock, opened) = &*gate;
                    drop(opened.wait_while(lock.lock().unwrap(), |open| !*open));
                    let Ok(server) = TcpStream::connect(&upstream) else {
                        return;
                    };
                    let (mut c_in, mut s_out) =
                        (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let up = std::thread::spawn(move || {
                        let _ = std::io::copy(&mut c_in, &mut s_out);
                        let _ = s_out.shutdown(std::net::Shutdown::Write);
                    });
                    let (mut s_in, mut c_out) = (server, client);
                    let _ = std::io::copy(&mut s_in, &mut c_out);
                    let _ = c_out.shutdown(std::net::Shutdown::Write);
                    let _ = up.join();
                });
            }
        });
        Gate { host, open }
    }

    /// Lets every held and future connection through.
    pub fn open(&self) {
        let (lock, opened) = &*self.open;
        *lock.lock().unwrap() = true;
        opened.notify_all();
    }
}
