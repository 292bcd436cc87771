//! The two halves of a minimal HTTP/1.1 server standing in for feed hosts
//! (GET only, one request per connection): reading a request and writing
//! the reply. Shared by `fetch_feeds.rs` and trawl-cli's tests
//! (`#[path]`-included), which answer differently but speak the same.

#![allow(dead_code)] // each including test uses its own part

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

/// A request as the server read it.
#[derive(Debug, Clone)]
pub struct Request {
    /// The path asked for.
    pub path: String,
    /// Its headers, by lower-case name.
    pub headers: HashMap<String, String>,
}

impl Request {
    /// The value of header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// Reads a request's line and headers from `stream`; `None` when the
/// connection ended or failed before its request line.
pub fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return None;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
            break;
        }
        if let Some((name, value)) = header.trim_end().split_once(':') {
            headers.insert(name.to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    Some(Request { path, headers })
}

/// Writes a reply and leaves the connection to be closed: `status` (200,
/// 304 or 404 get their reason phrase), the header lines `headers` (each
/// ending in `\r\n`), `Content-Length` and `body` (neither for a 304).
/// A client gone meanwhile is not an error of the server.
pub fn write_reply(stream: &mut TcpStream, status: u16, headers: &str, body: &[u8]) {
    let reason = match status {
        200 => "OK",
        304 => "Not Modified",
        404 => "Not Found",
        _ => "Status",
    };
    let length = if status == 304 {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\n{headers}{length}Connection: close\r\n\r\n"
    );
    if status != 304 {
        let _ = stream.write_all(body);
    }
}
