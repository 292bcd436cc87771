//! A fault-injecting HTTP/1.1 proxy in front of a real registry.
//!
//! Each request is forwarded to the upstream registry (one connection per request,
//! `Connection: close`) unless a [`Rule`] whose path fragment matches says otherwise. Every
//! request is logged with the headers tests assert on.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer this status without forwarding, with `Retry-After` if given.
    Status { code: u16, retry_after: Option<u32> },
    /// Forward, but close the connection after this many body bytes.
    CutAfter(usize),
    /// Forward with one body byte flipped.
    Corrupt,
    /// Forward with extra bytes appended (Content-Length adjusted).
    Append(usize),
    /// Answer 200 with this body and Content-Type instead.
    Replace { content_type: String, body: Vec<u8> },
    /// Answer 307 to the same path on this origin (e.g. `http://localhost:1234`).
    Redirect(String),
    /// Answer 307 to the same path on this origin with this query appended (a stand-in for
    /// a presigned storage URL, whose signature is in the query).
    RedirectWithQuery { origin: String, query: String },
    /// Forward, but send the body `chunk` bytes at a time, one chunk per `every`, for as
    /// long as the client reads: a registry trickling bytes, which no real registry can be
    /// made to do.
    Trickle {
        chunk: usize,
        every: std::time::Duration,
    },
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub method: &'static str,
    /// Applies to paths containing this.
    pub path_contains: String,
    pub fault: Fault,
    /// How many matching requests get the fault (then they are forwarded).
    pub times: usize,
}

#[derive(Clone, Debug)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub authorization: bool,
}

pub struct Proxy {
    pub host: String,
    pub rules: Arc<Mutex<Vec<Rule>>>,
    pub log: Arc<Mutex<Vec<Logged>>>,
}

impl Proxy {
    /// A proxy to `upstream` (`host:port`). With `inject_authorization`, it adds that
    /// header itself (a stand-in for pre-signed blob storage).
    pub fn start(upstream: &str, inject_authorization: Option<String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let rules: Arc<Mutex<Vec<Rule>>> = Arc::default();
        let log: Arc<Mutex<Vec<Logged>>> = Arc::default();
        let (r, l, up) = (rules.clone(), log.clone(), upstream.to_owned());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, l, up, inject) = (
                    r.clone(),
                    l.clone(),
                    up.clone(),
                    inject_authorization.clone(),
                );
                std::thread::spawn(move || {
                    let _ = handle(stream, &up, &r, &l, inject.as_deref());
                });
            }
        });
        Proxy { host, rules, log }
    }

    pub fn add(&self, method: &'static str, path_contains: &str, fault: Fault, times: usize) {
        self.rules.lock().unwrap().push(Rule {
            method,
            path_contains: path_contains.to_owned(),
            fault,
            times,
        });
    }

    pub fn requests(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }
}

fn handle(
    client: TcpStream,
    upstream: &str,
    rules: &Mutex<Vec<Rule>>,
    log: &Mutex<Vec<Logged>>,
    inject: Option<&str>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let path = parts.next().unwrap_or("/").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    log.lock().unwrap().push(Logged {
        method: method.clone(),
        path: path.clone(),
        range: header("range"),
        authorization: header("authorization").is_some(),
    });
    let fault = {
        let mut rules = rules.lock().unwrap();
        rules
            .iter_mut()
            .find(|r| r.times > 0 && r.method == method && path.contains(&r.path_contains))
            .map(|r| {
                r.times -= 1;
                r.fault.clone()
            })
    };
    let mut client = client;
    match &fault {
        Some(Fault::Status { code, retry_after }) => {
            let extra = retry_after.map_or(String::new(), |s| format!("Retry-After: {s}\r\n"));
            let body = r#"{"errors":[{"code":"INJECTED","message":"injected by the test proxy"}]}"#;
            return write!(
                client,
                "HTTP/1.1 {code} Injected\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        Some(Fault::Replace { content_type, body }) => {
            write!(
                client,
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            return client.write_all(body);
        }
        Some(Fault::Redirect(origin)) => {
            return write!(
                client,
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {origin}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
        Some(Fault::RedirectWithQuery { origin, query }) => {
            return write!(
                client,
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {origin}{path}?{query}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
        _ => {}
    }

    let mut up = TcpStream::connect(upstream)?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {upstream}\r\nConnection: close\r\n");
    for (name, value) in &headers {
        let skip = ["host", "connection"]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h))
            || (inject.is_some() && name.eq_ignore_ascii_case("authorization"));
        if !skip {
            head += &format!("{name}: {value}\r\n");
        }
    }
    if let Some(auth) = inject {
        head += &format!("Authorization: {auth}\r\n");
    }
    head += "\r\n";
    up.write_all(head.as_bytes())?;
    let mut response = Vec::new();
    up.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |p| p + 4);
    let (resp_head, body) = response.split_at(split);
    let mut resp_head = String::from_utf8_lossy(resp_head).into_owned();
    let mut body = body.to_vec();
    match fault {
        Some(Fault::Trickle { chunk, every }) => {
            client.write_all(resp_head.as_bytes())?;
            // Ends when the client hangs up (the write fails) or the body is sent.
            for piece in body.chunks(chunk.max(1)) {
                client.write_all(piece)?;
                client.flush()?;
                std::thread::sleep(every);
            }
            return Ok(());
        }
        Some(Fault::CutAfter(n)) => {
            client.write_all(resp_head.as_bytes())?;
            client.write_all(&body[..n.min(body.len())])?;
            client.flush()?;
            return client.shutdown(std::net::Shutdown::Both);
        }
        Some(Fault::Corrupt) if !body.is_empty() => {
            let middle = body.len() / 2;
            body[middle] ^= 0xff;
        }
        Some(Fault::Append(n)) => {
            let old = body.len();
            body.extend(std::iter::repeat_n(0u8, n));
            resp_head = resp_head.replace(
                &format!("Content-Length: {old}\r\n"),
                &format!("Content-Length: {}\r\n", body.len()),
            );
        }
        _ => {}
    }
    client.write_all(resp_head.as_bytes())?;
    client.write_all(&body)?;
    client.flush()
}
