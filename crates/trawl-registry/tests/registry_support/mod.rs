//! Real registries for tests: Debian's `docker-registry` (distribution 2.8) on loopback,
//! with htpasswd basic auth over plain HTTP, over TLS with a test CA, and with token auth
//! backed by a small JWT-issuing token service; plus a fault-injecting HTTP proxy.
//!
//! Every registry of one test process shares one storage directory, filled once with
//! `skopeo copy` from the test images, so each image is pushed once.

#![allow(dead_code)]

pub mod proxy;
pub mod token;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub const USER: &str = "trawl";
pub const PASSWORD: &str = "s3cret-pa55";
/// The repository and tag the Debian test image is pushed to.
pub const DEBIAN_REPO: &str = "trawl/debian";
pub const DISTROLESS_REPO: &str = "trawl/distroless";
/// Repository holding both images under one multi-platform index, tag `multi`.
pub const MULTI_REPO: &str = "trawl/multi";

/// A running `docker-registry`; stopped when the test process exits (its watchdog shell
/// sees our end of its stdin close).
pub struct Registry {
    pub host: String,
    _watchdog: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

pub enum Auth {
    Htpasswd(PathBuf),
    Token { realm: String, cert: PathBuf },
}

/// A webhook endpoint the registry sends its notifications (Docker Registry 2.0
/// `notifications.endpoints`) to.
pub struct Notifications {
    /// Where events are POSTed, e.g. `http://127.0.0.1:8780/events`.
    pub url: String,
    /// The `Authorization` header sent with each request.
    pub authorization: String,
}

impl Registry {
    pub fn start(root: &Path, storage: &Path, auth: &Auth, tls: Option<(&Path, &Path)>) -> Self {
        Self::start_with(root, storage, auth, tls, None)
    }

    /// [`Registry::start`], also sending notifications of pushes and pulls of
    /// manifests to `notifications` (blob uploads, `application/octet-stream`, are
    /// not sent). Failed deliveries are retried every 100 ms after 3 failures.
    pub fn start_with(
        root: &Path,
        storage: &Path,
        auth: &Auth,
        tls: Option<(&Path, &Path)>,
        notifications: Option<&Notifications>,
    ) -> Self {
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
            storage.display()
        );
        if let Some((cert, key)) = tls {
            config += &format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            );
        }
        match auth {
            Auth::Htpasswd(file) => {
                config += &format!(
                    "auth:\n  htpasswd:\n    realm: trawl-test\n    path: {}\n",
                    file.display()
                )
            }
            Auth::Token { realm, cert } => {
                config += &format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    token::SERVICE,
                    token::ISSUER,
                    cert.display()
                )
            }
        }
        if let Some(n) = notifications {
            // JSON strings are YAML double-quoted scalars.
            let quote = |s: &str| serde_json::Value::from(s).to_string();
            config += &format!(
                "notifications:\n  endpoints:\n    - name: trawl-test\n      url: {}\n      headers:\n        Authorization: [{}]\n      timeout: 5s\n      threshold: 3\n      backoff: 100ms\n      ignoredmediatypes:\n        - application/octet-stream\n",
                quote(&n.url),
                quote(&n.authorization)
            );
        }
        let config_path = root.join(format!("registry-{port}.yml"));
        std::fs::write(&config_path, config).unwrap();
        // The registry logs every 404 a client's probe causes: keep that out of
        // the test output, in a file that a start failure shows.
        let log_path = root.join(format!("registry-{port}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("docker-registry serve \"$1\" & r=$!; read _; exec 2>/dev/null; kill $r; wait $r")
            .arg("sh")
            .arg(&config_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start docker-registry (apt-get install docker-registry)");
        let stdin = child.stdin.take().unwrap();
        if !wait_for_port(port) {
            panic!(
                "registry on port {port} did not start: {}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        Registry {
            host,
            _watchdog: Mutex::new(stdin),
            _child: Mutex::new(child),
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits up to 20 s for something to listen on the port.
fn wait_for_port(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// A CA and a server certificate for 127.0.0.1 / localhost, made with the openssl CLI.
pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// A self-signed certificate and key the token service signs with.
    pub token_cert: PathBuf,
    pub token_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    pub fn generate(dir: &Path) -> Self {
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=trawl test CA",
        ]);
        openssl(dir, &ca);
        let mut csr = vec!["req"];
        csr.extend(ec);
        csr.extend([
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        openssl(dir, &csr);
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        );
        let mut token = vec!["req", "-x509"];
        token.extend(ec);
        token.extend([
            "-keyout",
            "token.key",
            "-out",
            "token.pem",
            "-days",
            "2",
            "-subj",
            "/CN=trawl test token issuer",
        ]);
        openssl(dir, &token);
        Pki {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            token_cert: dir.join("token.pem"),
            token_key: dir.join("token.key"),
        }
    }
}

/// The registries of this test process, with the test images pushed.
pub struct Fixture {
    pub dir: TempDir,
    pub pki: Pki,
    /// Plain HTTP, htpasswd basic auth.
    pub basic: Registry,
    /// TLS with the test CA, htpasswd basic auth.
    pub tls: Registry,
    /// Token auth via `token_service`.
    pub token: Registry,
    pub token_service: token::TokenService,
    /// Manifest digest of the multi-platform index in [`MULTI_REPO`].
    pub index_digest: String,
}

pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let images = crate::common::test_images();
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::generate(dir.path());
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).unwrap();
        let htpasswd = dir.path().join("htpasswd");
        let hash = bcrypt::hash(PASSWORD, 4).unwrap();
        std::fs::write(&htpasswd, format!("{USER}:{hash}\n")).unwrap();

        let basic = Registry::start(
            dir.path(),
            &storage,
            &Auth::Htpasswd(htpasswd.clone()),
            None,
        );
        let tls = Registry::start(
            dir.path(),
            &storage,
            &Auth::Htpasswd(htpasswd),
            Some((&pki.server_cert, &pki.server_key)),
        );
        let token_service = token::TokenService::start(&pki.token_cert, &pki.token_key);
        let token = Registry::start(
            dir.path(),
            &storage,
            &Auth::Token {
                realm: token_service.realm(),
                cert: pki.token_cert.clone(),
            },
            None,
        );

        let debian = images.join("debian/oci");
        let distroless = images.join("distroless/oci");
        skopeo_push(&debian, "bookworm", &basic.host, DEBIAN_REPO, "bookworm");
        skopeo_push(
            &distroless,
            "latest",
            &basic.host,
            DISTROLESS_REPO,
            "latest",
        );
        skopeo_push(&debian, "bookworm", &basic.host, MULTI_REPO, "amd64");
        skopeo_push(&distroless, "latest", &basic.host, MULTI_REPO, "arm64");
        let index_digest = push_index(&basic.host, &debian, &distroless);
        Fixture {
            dir,
            pki,
            basic,
            tls,
            token,
            token_service,
            index_digest,
        }
    })
}

fn skopeo_push(layout: &Path, tag: &str, host: &str, repo: &str, dest_tag: &str) {
    let out = Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false", "--dest-creds"])
        .arg(format!("{USER}:{PASSWORD}"))
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{host}/{repo}:{dest_tag}"))
        .output()
        .expect("run skopeo (apt-get install skopeo)");
    assert!(
        out.status.success(),
        "skopeo copy to {host}/{repo}:{dest_tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The manifest descriptor (digest, size) of the only image in an OCI layout.
pub fn layout_manifest(layout: &Path) -> (String, u64) {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let m = &index["manifests"][0];
    (
        m["digest"].as_str().unwrap().to_owned(),
        m["size"].as_u64().unwrap(),
    )
}

/// Writes an OCI index naming the Debian image linux/amd64 and the distroless one
/// linux/arm64/v8 (a label for the test: both are really amd64), PUTs it as `multi`.
fn push_index(host: &str, debian: &Path, distroless: &Path) -> String {
    let (d_digest, d_size) = layout_manifest(debian);
    let (s_digest, s_size) = layout_manifest(distroless);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d_digest,
             "size": d_size, "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": s_digest,
             "size": s_size, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ]
    });
    let body = serde_json::to_vec(&index).unwrap();
    put_manifest(
        host,
        MULTI_REPO,
        "multi",
        "application/vnd.oci.image.index.v1+json",
        &body,
    );
    format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body))
    )
}

/// `PUT /v2/<repo>/manifests/<tag>` with basic auth over plain HTTP, by hand.
pub fn put_manifest(host: &str, repo: &str, tag: &str, media_type: &str, body: &[u8]) {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let mut stream = TcpStream::connect(host).unwrap();
    write!(
        stream,
        "PUT /v2/{repo}/manifests/{tag} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\nContent-Type: {media_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 201"),
        "PUT manifest {repo}:{tag}: {response}"
    );
}
