//! What the latency measurements share: the configuration and asking the
//! requests through the served API.

use std::time::{Duration, Instant};

use trawl_watch::{Config, ScopedToken};

/// How many times each request is asked.
pub const ROUNDS: usize = 200;

/// The service's configuration for the measurement: an empty advisory
/// database in `dir`, its data in `dir/data`, one worker, the `all-token`
/// and a `team-7-token` limited to `team-7`.
pub fn config(dir: &std::path::Path) -> Config {
    let mut config = crate::support::config(dir, "all-token", "127.0.0.1:5000");
    config.scoped_tokens = vec![ScopedToken::new("team-7-token", ["team-7"]).unwrap()];
    config
}

/// Asks each request `ROUNDS` times (the hot one a twentieth of that) and
/// prints p50 and p99.
pub async fn ask(addr: std::net::SocketAddr) {
    for (what, path, token) in [
        (
            "vulnerability by alias (~400 images)",
            "/v1/vulnerabilities/DSA-10042-1",
            "all-token",
        ),
        (
            "vulnerability, hot (10,000 images)",
            "/v1/vulnerabilities/CVE-2024-3094",
            "all-token",
        ),
        (
            "vulnerability by alias, one team's token",
            "/v1/vulnerabilities/DSA-10217-1",
            "team-7-token",
        ),
        (
            "findings, first page of 100, severity>=high",
            "/v1/findings?severity=high",
            "all-token",
        ),
        (
            "vulnerabilities, one team, critical",
            "/v1/vulnerabilities?severity=critical&repository=team-7",
            "all-token",
        ),
        ("summary", "/v1/summary", "all-token"),
        ("summary, one team's token", "/v1/summary", "team-7-token"),
    ] {
        let rounds = if what.contains("hot") {
            ROUNDS / 20
        } else {
            ROUNDS
        };
        let mut times = Vec::with_capacity(rounds);
        let mut bytes = 0;
        for _ in 0..rounds {
            let t = Instant::now();
            let (status, body) = get(addr, path, token).await;
            times.push(t.elapsed());
            assert_eq!(status, 200, "{path}: {body}");
            bytes = body.len();
        }
        times.sort();
        let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
        eprintln!(
            "{what:48} {path}: p50 {:>8.1?}  p99 {:>8.1?}  ({rounds} requests, {bytes} bytes)",
            pct(0.50),
            pct(0.99)
        );
    }
}

/// One HTTP/1.1 GET: status and body.
async fn get(addr: std::net::SocketAddr, path: &str, token: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: w\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(120), stream.read_to_end(&mut answer))
        .await
        .expect("an answer within two minutes")
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    (head[9..12].parse().unwrap(), body.to_string())
}
