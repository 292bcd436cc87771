//! A token service for distribution's `auth: token`: `GET /token?service=…&scope=…` with
//! HTTP basic credentials answers a JWT (ES256, `x5c` = the certificate the registry trusts
//! through `rootcertbundle`) granting the requested actions.
//!
//! Repositories under `denied/` are granted nothing (the registry then answers 401 even to
//! a fresh token). Anonymous requests get 401.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

pub const SERVICE: &str = "trawl-test-registry";
pub const ISSUER: &str = "trawl-test-token-service";

pub struct TokenService {
    port: u16,
    /// Tokens issued so far.
    pub issued: Arc<AtomicUsize>,
}

struct Signer {
    key: EncodingKey,
    x5c: String,
}

impl TokenService {
    pub fn start(cert_pem: &Path, key_pem: &Path) -> Self {
        let pem = std::fs::read_to_string(cert_pem).unwrap();
        let der_b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let signer = Arc::new(Signer {
            key: EncodingKey::from_ec_pem(&std::fs::read(key_pem).unwrap()).unwrap(),
            x5c: der_b64,
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let issued = Arc::new(AtomicUsize::new(0));
        let counter = issued.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let signer = signer.clone();
                let counter = counter.clone();
                std::thread::spawn(move || serve(stream, &signer, &counter));
            }
        });
        TokenService { port, issued }
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }
}

fn serve(stream: TcpStream, signer: &Signer, issued: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(value.trim().to_owned());
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let mut service = None;
    let mut scopes = Vec::new();
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match k {
            "service" => service = Some(v),
            "scope" => scopes.push(v),
            _ => {}
        }
    }
    let user = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|up| *up == format!("{}:{}", super::USER, super::PASSWORD))
        .map(|_| super::USER.to_owned());
    let (status, body) = match (user, service.as_deref()) {
        (Some(user), Some(SERVICE)) => {
            issued.fetch_add(1, Ordering::SeqCst);
            (200, issue(signer, &user, &scopes))
        }
        (None, _) => (
            401,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#.to_owned(),
        ),
        _ => (400, "{}".to_owned()),
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn issue(signer: &Signer, user: &str, scopes: &[String]) -> String {
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|scope| {
            let mut parts = scope.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            let actions: Vec<&str> = if name.starts_with("denied/") {
                Vec::new()
            } else {
                actions.split(',').collect()
            };
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions}))
        })
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": user, "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{}", rand_suffix()),
        "access": access,
    });
    let mut header = Header::new(Algorithm::ES256);
    header.x5c = Some(vec![signer.x5c.clone()]);
    let token = jsonwebtoken::encode(&header, &claims, &signer.key).unwrap();
    serde_json::json!({"token": token, "access_token": token, "expires_in": 300}).to_string()
}

fn rand_suffix() -> u64 {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst) as u64
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
