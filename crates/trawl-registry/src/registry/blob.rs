//! Blobs served from a registry: `GET /v2/<name>/blobs/<digest>`, streamed, resumed with
//! `Range` when the connection breaks.
//!
//! See the [distribution spec on pulling blobs](https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-blobs).
//! Verification (size, digest) is the caller's: [`crate::LocalImage::open_layer`] wraps
//! these streams in the crate's verifying reader.

use std::io::{self, Read};
use std::sync::Arc;

use reqwest::blocking::Response;
use reqwest::header;
use reqwest::{Method, StatusCode};

use crate::RegistryError;
use crate::RegistryReference;
use crate::registry::limits::{TransferClock, redact_url};
use crate::registry::transport::{Request, Transport, error_chain};
use crate::store::{BlobStore, StoredBlob};

/// How many times one blob download is resumed after a broken connection.
const MAX_RESUMES: u32 = 5;

/// A registry repository as a [`BlobStore`]: `blobs/sha256/<hex>` paths map to blob URLs.
pub(crate) struct RegistryStore {
    pub(crate) transport: Arc<Transport>,
    pub(crate) reference: RegistryReference,
    pub(crate) source_name: String,
}

impl RegistryStore {
    pub(crate) fn scope(&self) -> String {
        format!("repository:{}:pull", self.reference.repository())
    }

    /// `GET` of a blob from byte `offset` on.
    fn get(&self, digest: &str, offset: u64) -> Result<Response, RegistryError> {
        let path = format!("/v2/{}/blobs/{digest}", self.reference.repository());
        let scope = self.scope();
        let mut headers = Vec::new();
        if offset > 0 {
            headers.push((header::RANGE, format!("bytes={offset}-")));
        }
        let request = Request {
            reference: &self.source_name,
            registry: self.reference.registry(),
            host: self.reference.api_host(),
            scope: &scope,
            method: Method::GET,
            path: &path,
            headers,
        };
        self.transport.send(&request)
    }
}

impl BlobStore for RegistryStore {
    fn open(&self, path: &str) -> Result<Option<StoredBlob>, RegistryError> {
        let Some(hex) = path.strip_prefix("blobs/sha256/") else {
            return Ok(None);
        };
        let digest = format!("sha256:{hex}");
        crate::digest::sha256_hex(&digest)?;
        let mut clock = TransferClock::start(
            &self.transport.options,
            format!("{} blob {digest}", self.source_name),
        );
        let response = self.get(&digest, 0)?;
        clock.rename(blob_what(&self.source_name, &digest, &response));
        clock.check(0)?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => {
                let scope = self.scope();
                let request = Request {
                    reference: &self.source_name,
                    registry: self.reference.registry(),
                    host: self.reference.api_host(),
                    scope: &scope,
                    method: Method::GET,
                    path,
                    headers: Vec::new(),
                };
                return Err(self.transport.status_error(&request, response));
            }
        }
        let len = response.content_length();
        Ok(Some(StoredBlob {
            len: len.unwrap_or(0),
            reader: Box::new(ResumingBlobReader {
                store: RegistryStore {
                    transport: self.transport.clone(),
                    reference: self.reference.clone(),
                    source_name: self.source_name.clone(),
                },
                digest,
                response: Some(response),
                offset: 0,
                total: len,
                resumes: 0,
                clock,
            }),
        }))
    }
}

/// A blob download that picks up where it broke off.
///
/// A read error, or an end before `Content-Length`, reopens the blob with
/// `Range: bytes=<offset>-`. A `206` continues at that offset; a `200` (no range support)
/// starts over and the bytes already delivered are skipped.
///
/// One [`TransferClock`] watches the whole download, resumptions included; its deadline
/// and throughput failures end the download for good.
struct ResumingBlobReader {
    store: RegistryStore,
    digest: String,
    response: Option<Response>,
    offset: u64,
    total: Option<u64>,
    resumes: u32,
    clock: TransferClock,
}

/// How a blob transfer is named in errors: source, digest and the (redacted) URL served.
fn blob_what(source_name: &str, digest: &str, response: &Response) -> String {
    format!(
        "{source_name} blob {digest} from {}",
        redact_url(response.url())
    )
}

impl ResumingBlobReader {
    fn reopen(&mut self) -> io::Result<Response> {
        let mut response = self
            .store
            .get(&self.digest, self.offset)
            .map_err(io::Error::other)?;
        self.clock
            .rename(blob_what(&self.store.source_name, &self.digest, &response));
        self.clock.check(0).map_err(RegistryError::into_io)?;
        match response.status() {
            StatusCode::PARTIAL_CONTENT => {
                let start = response
                    .headers()
                    .get(header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.parse::<u64>().ok());
                if start != Some(self.offset) {
                    return Err(self.failure(format!(
                        "resumed at byte {} but the registry answered range {start:?}",
                        self.offset
                    )));
                }
            }
            StatusCode::OK => {
                let skipped =
                    copy_clocked(&mut (&mut response).take(self.offset), &mut self.clock)?;
                if skipped < self.offset {
                    return Err(self.failure(format!(
                        "restarted download ended after {skipped} of {} bytes already read",
                        self.offset
                    )));
                }
            }
            status => {
                return Err(
                    self.failure(format!("resuming at byte {}: HTTP {status}", self.offset))
                );
            }
        }
        Ok(response)
    }

    fn failure(&self, reason: String) -> io::Error {
        io::Error::other(RegistryError::Request {
            reference: self.store.source_name.clone(),
            method: "GET".to_owned(),
            url: format!(
                "/v2/{}/blobs/{}",
                self.store.reference.repository(),
                self.digest
            ),
            status: None,
            attempts: self.resumes + 1,
            reason,
        })
    }
}

impl Read for ResumingBlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let response = match self.response.as_mut() {
                Some(response) => response,
                None => {
                    let response = self.reopen()?;
                    self.response.insert(response)
                }
            };
            let outcome = response.read(buf);
            // Deadline and throughput first: they end the download, no resumption.
            let received = *outcome.as_ref().unwrap_or(&0);
            self.clock.check(received).map_err(RegistryError::into_io)?;
            let broken = match outcome {
                Ok(0) if buf.is_empty() => return Ok(0),
                Ok(0) => match self.total {
                    Some(total) if self.offset < total => {
                        format!("connection closed at byte {} of {total}", self.offset)
                    }
                    _ => return Ok(0),
                },
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => error_chain(&e),
            };
            if self.resumes >= MAX_RESUMES {
                return Err(
                    self.failure(format!("{broken}; gave up after {MAX_RESUMES} resumptions"))
                );
            }
            self.resumes += 1;
            tracing::debug!(digest = %self.digest, offset = self.offset, reason = %broken, "resuming blob download");
            self.response = None;
            std::thread::sleep(self.store.transport.backoff(self.resumes));
            self.clock.check(0).map_err(RegistryError::into_io)?;
        }
    }
}

/// Copies `reader` to nowhere, counting its bytes on `clock` too; the number copied.
fn copy_clocked<R: Read>(reader: &mut R, clock: &mut TransferClock) -> io::Result<u64> {
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        clock.check(n).map_err(RegistryError::into_io)?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}
