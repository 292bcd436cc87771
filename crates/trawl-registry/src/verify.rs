//! A reader that checks a blob against its descriptor while it streams.

use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

use crate::RegistryError;
use crate::digest::format_sha256;

/// Hashes what passes through; at the inner reader's end compares digest and size.
///
/// Never hands out more than `expected_size` bytes: one byte past it is an immediate
/// [`RegistryError::SizeExceeded`]. Failures are `InvalidData` I/O errors wrapping a
/// [`RegistryError`], and repeat on every later `read`.
pub(crate) struct VerifyingReader<R> {
    inner: R,
    blob: String,
    expected_digest: String,
    expected_size: Option<u64>,
    hasher: Sha256,
    read: u64,
    state: State,
}

enum State {
    Reading,
    Verified,
    Failed(Failure),
}

#[derive(Clone)]
enum Failure {
    Digest { actual: String },
    Exceeded { expected: u64 },
    Truncated { expected: u64, actual: u64 },
}

impl<R: Read> VerifyingReader<R> {
    pub(crate) fn new(
        inner: R,
        blob: String,
        expected_digest: String,
        expected_size: Option<u64>,
    ) -> Self {
        Self {
            inner,
            blob,
            expected_digest,
            expected_size,
            hasher: Sha256::new(),
            read: 0,
            state: State::Reading,
        }
    }

    fn error(&self, failure: &Failure) -> io::Error {
        let blob = self.blob.clone();
        let digest = self.expected_digest.clone();
        match failure {
            Failure::Digest { actual } => RegistryError::DigestMismatch {
                blob,
                expected: digest,
                actual: actual.clone(),
            },
            Failure::Exceeded { expected } => RegistryError::SizeExceeded {
                blob,
                digest,
                expected: *expected,
            },
            Failure::Truncated { expected, actual } => RegistryError::Truncated {
                blob,
                digest,
                expected: *expected,
                actual: *actual,
            },
        }
        .into_io()
    }

    fn fail(&mut self, failure: Failure) -> io::Error {
        let error = self.error(&failure);
        self.state = State::Failed(failure);
        error
    }

    /// The inner reader is exhausted: check what was read.
    fn finish(&mut self) -> io::Result<usize> {
        if let Some(expected) = self.expected_size
            && self.read < expected
        {
            return Err(self.fail(Failure::Truncated {
                expected,
                actual: self.read,
            }));
        }
        let actual = format_sha256(std::mem::take(&mut self.hasher).finalize().as_slice());
        if actual != self.expected_digest {
            return Err(self.fail(Failure::Digest { actual }));
        }
        self.state = State::Verified;
        Ok(0)
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.state {
            State::Verified => return Ok(0),
            State::Failed(failure) => return Err(self.error(&failure.clone())),
            State::Reading => {}
        }
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(expected) = self.expected_size {
            if self.read >= expected {
                // At the declared size: the blob must end here.
                let mut probe = [0u8; 1];
                return match read_retrying(&mut self.inner, &mut probe)? {
                    0 => self.finish(),
                    _ => Err(self.fail(Failure::Exceeded { expected })),
                };
            }
            let remaining = expected - self.read;
            let len = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
            let n = read_retrying(&mut self.inner, &mut buf[..len])?;
            if n == 0 {
                return self.finish();
            }
            self.hasher.update(&buf[..n]);
            self.read += n as u64;
            return Ok(n);
        }
        let n = read_retrying(&mut self.inner, buf)?;
        if n == 0 {
            return self.finish();
        }
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

fn read_retrying<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256_of;

    fn reader(
        data: &'static [u8],
        digest: String,
        size: Option<u64>,
    ) -> VerifyingReader<&'static [u8]> {
        VerifyingReader::new(data, "blobs/sha256/x".to_owned(), digest, size)
    }

    fn registry_error(e: &io::Error) -> &RegistryError {
        RegistryError::from_io(e).expect("a RegistryError inside")
    }

    #[test]
    fn passes_matching_content() {
        let mut out = Vec::new();
        reader(b"hello", sha256_of(b"hello"), Some(5))
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello");
        let mut out = Vec::new();
        reader(b"hello", sha256_of(b"hello"), None)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello");
    }

    #[test]
    fn rejects_wrong_digest_at_eof() {
        let mut r = reader(b"hellp", sha256_of(b"hello"), Some(5));
        let e = r.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(matches!(
            registry_error(&e),
            RegistryError::DigestMismatch { .. }
        ));
        assert!(e.to_string().contains("blobs/sha256/x"), "{e}");
        // The failure repeats.
        assert!(r.read(&mut [0; 8]).is_err());
    }

    #[test]
    fn stops_at_declared_size() {
        let mut r = reader(b"hello world", sha256_of(b"hello"), Some(5));
        let mut out = Vec::new();
        let e = r.read_to_end(&mut out).unwrap_err();
        assert!(matches!(
            registry_error(&e),
            RegistryError::SizeExceeded { expected: 5, .. }
        ));
        assert_eq!(out, b"hello");
    }

    #[test]
    fn reports_truncation() {
        let e = reader(b"hel", sha256_of(b"hello"), Some(5))
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(matches!(
            registry_error(&e),
            RegistryError::Truncated {
                expected: 5,
                actual: 3,
                ..
            }
        ));
    }
}
