//! What the command's integration tests share: the test images, output as
//! text, and a loopback HTTP server standing in for feed hosts.

#![allow(dead_code)] // each test binary uses its own part

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The workspace root.
pub fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The test images (`$TRAWL_TEST_IMAGES`, else `target/test-images`), built
/// on first use by scripts/build-test-images.sh, as the facade's tests do.
pub fn images() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os("TRAWL_TEST_IMAGES")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join("target/test-images"));
        let status = Command::new("bash")
            .arg(root().join("scripts/build-test-images.sh"))
            .arg(&dir)
            .status()
            .expect("run scripts/build-test-images.sh");
        assert!(status.success(), "building the test images failed");
        dir
    })
}

/// The Debian test image as a `trawl scan` source.
pub fn debian() -> String {
    format!("oci-dir:{}:bookworm", images().join("debian/oci").display())
}

#[path = "../../../trawl-advisory/tests/support/http.rs"]
mod http;

pub use http::Request;

/// An answer: status code, extra header lines (each ending in `\r\n`), body.
pub struct Reply {
    /// 200, 304 or 404.
    pub status: u16,
    /// Header lines besides `Content-Length` and `Connection`.
    pub headers: String,
    /// The body (sent unless the status is 304).
    pub body: Vec<u8>,
}

/// (path, status) of each request answered, in order.
pub type Log = Arc<Mutex<Vec<(String, u16)>>>;

/// Serves HTTP/1.1 on a free loopback port, one connection a request,
/// answering each with `answer`; returns the base URL and the request log.
pub fn serve(answer: impl Fn(&Request) -> Reply + Send + 'static) -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let log: Log = Arc::default();
    let seen = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Some(request) = http::read_request(&stream) else {
                continue;
            };
            let reply = answer(&request);
            http::write_reply(&mut stream, reply.status, &reply.headers, &reply.body);
            seen.lock().unwrap().push((request.path, reply.status));
        }
    });
    (base, log)
}
