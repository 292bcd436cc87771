//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

/// Why an image source could not be parsed, opened or read.
///
/// Every variant names the source, blob or reference it is about. Errors raised while a
/// layer stream is read (see [`crate::LocalImage::open_layer`]) travel inside an
/// [`io::Error`] of kind [`io::ErrorKind::InvalidData`]; [`RegistryError::from_io`]
/// recovers them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The source string starts with a transport this crate does not know.
    #[error("unknown image source {input:?}: expected one of {accepted}")]
    UnknownSourceKind {
        /// The string that was parsed.
        input: String,
        /// The accepted prefixes, comma separated.
        accepted: &'static str,
    },
    /// The source string has a known prefix but no path.
    #[error("image source {input:?} names no path")]
    EmptySourcePath {
        /// The string that was parsed.
        input: String,
    },
    /// A file of the source could not be read.
    #[error("{source_name}: cannot read {}: {error}", path.display())]
    Io {
        /// The source being opened.
        source_name: String,
        /// The file that failed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        error: io::Error,
    },
    /// The directory or archive is not an OCI image layout.
    #[error("{source_name}: not an OCI image layout: {reason}")]
    NotAnOciLayout {
        /// The source being opened.
        source_name: String,
        /// What is missing or wrong.
        reason: String,
    },
    /// A tar archive (oci-archive, docker-archive) could not be indexed.
    #[error("{source_name}: invalid tar archive: {error}")]
    InvalidArchive {
        /// The source being opened.
        source_name: String,
        /// The underlying error.
        #[source]
        error: io::Error,
    },
    /// A JSON document (index, manifest, config, manifest.json) does not parse.
    #[error("{source_name}: invalid {document}: {error}")]
    InvalidJson {
        /// The source being opened.
        source_name: String,
        /// Which document, e.g. `index.json` or `manifest sha256:…`.
        document: String,
        /// The parser's error.
        #[source]
        error: serde_json::Error,
    },
    /// A document parsed but breaks a rule of its format.
    #[error("{source_name}: malformed {document}: {reason}")]
    Malformed {
        /// The source being opened.
        source_name: String,
        /// Which document.
        document: String,
        /// The rule that was broken.
        reason: String,
    },
    /// No manifest carries the requested reference.
    #[error(
        "{source_name}: no image with reference {reference:?}; available: {}",
        list(available)
    )]
    UnknownReference {
        /// The source being opened.
        source_name: String,
        /// The reference asked for.
        reference: String,
        /// The references the source offers.
        available: Vec<String>,
    },
    /// No reference was given and the source holds several images.
    #[error(
        "{source_name}: holds several images, choose one by reference; available: {}",
        list(available)
    )]
    AmbiguousReference {
        /// The source being opened.
        source_name: String,
        /// The references the source offers.
        available: Vec<String>,
    },
    /// The source holds no image at all.
    #[error("{source_name}: holds no image")]
    NoImage {
        /// The source being opened.
        source_name: String,
    },
    /// An image index or manifest list has no entry for the wanted platform.
    #[error(
        "{source_name}: index {index} has no image for {wanted}; available: {}",
        list(available)
    )]
    NoMatchingPlatform {
        /// The source being opened.
        source_name: String,
        /// Digest of the index.
        index: String,
        /// The platform looked for, `os/arch`.
        wanted: String,
        /// The platforms the index offers.
        available: Vec<String>,
    },
    /// Image indexes nest deeper than this crate follows.
    #[error("{source_name}: image indexes nest deeper than {limit} levels")]
    IndexTooDeep {
        /// The source being opened.
        source_name: String,
        /// The nesting limit.
        limit: usize,
    },
    /// A manifest or index has a media type this crate does not understand.
    #[error("{source_name}: {digest} has unsupported media type {media_type:?}")]
    UnsupportedMediaType {
        /// The source being opened.
        source_name: String,
        /// Digest of the document.
        digest: String,
        /// Its media type.
        media_type: String,
    },
    /// A manifest, index or config is larger than this crate reads into memory.
    #[error("{source_name}: {document} is {size} bytes, over the {limit} byte limit")]
    DocumentTooLarge {
        /// The source being opened.
        source_name: String,
        /// Which document.
        document: String,
        /// Its size (declared, or at least this much when read).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A digest string is malformed or uses an algorithm other than sha256.
    #[error("invalid or unsupported digest {digest:?}")]
    InvalidDigest {
        /// The offending string.
        digest: String,
    },
    /// A blob the image refers to is not in the source.
    #[error("blob {digest} not found in {source_name}")]
    BlobNotFound {
        /// The blob's digest, or its path inside a docker archive.
        digest: String,
        /// The source being read.
        source_name: String,
    },
    /// A blob's content does not hash to its digest.
    #[error("blob {blob}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The blob's location in the source (`blobs/sha256/…`, `<id>/layer.tar`).
        blob: String,
        /// The digest the image promised.
        expected: String,
        /// The digest of the bytes read.
        actual: String,
    },
    /// A blob holds more bytes than its descriptor says; reading stopped there.
    #[error("blob {blob} ({digest}): larger than its declared {expected} bytes")]
    SizeExceeded {
        /// The blob's location in the source.
        blob: String,
        /// The blob's digest.
        digest: String,
        /// The declared size.
        expected: u64,
    },
    /// A blob ends before its declared size.
    #[error("blob {blob} ({digest}): truncated: {actual} of {expected} bytes")]
    Truncated {
        /// The blob's location in the source.
        blob: String,
        /// The blob's digest.
        digest: String,
        /// The declared size.
        expected: u64,
        /// The bytes actually present.
        actual: u64,
    },
    /// [`crate::LocalImage::open_layer`] was asked for a layer the image does not have.
    #[error("layer index {index} out of range: the image has {count} layers")]
    LayerOutOfRange {
        /// The index asked for.
        index: usize,
        /// The number of layers.
        count: usize,
    },
    /// Docker's deprecated v2 schema 1 manifest, which this crate never reads.
    #[error(
        "{source_name}: {digest} is a Docker schema 1 manifest, which is deprecated and not \
         supported; push the image again with a current tool"
    )]
    SchemaOneManifest {
        /// The source being opened.
        source_name: String,
        /// Digest of the document.
        digest: String,
    },
    /// A platform string is not `os/architecture[/variant]`.
    #[error("invalid platform {input:?}: expected OS/ARCH[/VARIANT], e.g. linux/arm64")]
    InvalidPlatform {
        /// The string that was parsed.
        input: String,
    },
    /// An image reference does not parse.
    #[error("invalid image reference {input:?}: {reason}")]
    InvalidReference {
        /// The string that was parsed.
        input: String,
        /// The parser's complaint.
        reason: String,
    },
    /// The registry refused access: credentials missing, rejected, or not enough.
    #[error("{reference}: access to {registry} denied: {reason}")]
    Unauthorized {
        /// The image or repository being accessed.
        reference: String,
        /// The registry host (or token service) that refused.
        registry: String,
        /// What was tried and what the server said.
        reason: String,
    },
    /// The registry has no manifest or repository by that name.
    #[error("{reference}: not found on the registry: {reason}")]
    NotFound {
        /// The image or repository asked for.
        reference: String,
        /// What the registry said.
        reason: String,
    },
    /// A registry request failed for good: an unexpected status, or a transport error that
    /// persisted through the retries.
    #[error("{reference}: {method} {url} failed after {attempts} attempt(s): {reason}")]
    Request {
        /// The image or repository being accessed.
        reference: String,
        /// HTTP method.
        method: String,
        /// The URL requested, with any user name, password and query redacted.
        url: String,
        /// The last HTTP status, if a response came.
        status: Option<u16>,
        /// How many times the request was sent.
        attempts: u32,
        /// The last error or the server's message.
        reason: String,
    },
    /// Plain HTTP was needed for a host that is neither loopback nor allowed as insecure.
    #[error(
        "{reference}: refusing plain HTTP to {url}: {host} is not an allowed insecure registry"
    )]
    InsecureTransport {
        /// The image or repository being accessed.
        reference: String,
        /// The host.
        host: String,
        /// The URL that would have been used (user name, password and query redacted).
        url: String,
    },
    /// Docker's client configuration could not be read.
    #[error("{}: cannot use Docker client config: {reason}", path.display())]
    DockerConfig {
        /// The config file.
        path: PathBuf,
        /// What went wrong (never includes secrets).
        reason: String,
    },
    /// A `docker-credential-*` helper failed.
    #[error("credential helper docker-credential-{helper} for {registry} failed: {reason}")]
    CredentialHelper {
        /// The helper's suffix, e.g. `pass`.
        helper: String,
        /// The registry host credentials were asked for.
        registry: String,
        /// What went wrong (never includes secrets).
        reason: String,
    },
    /// The HTTP client could not be set up (e.g. an unreadable or invalid CA file).
    #[error("cannot set up the registry client: {reason}")]
    ClientSetup {
        /// What went wrong.
        reason: String,
    },
    /// Pushing to a registry failed.
    #[error("{reference}: push failed: {reason}")]
    Push {
        /// The reference being pushed.
        reference: String,
        /// What went wrong.
        reason: String,
    },
    /// A file of a local source is a FIFO, socket, device or directory where a regular file
    /// is expected. Such files are never read: opening a FIFO could block forever.
    #[error("{source_name}: {} is a {kind}, not a regular file", path.display())]
    NotARegularFile {
        /// The source being opened.
        source_name: String,
        /// The file.
        path: PathBuf,
        /// What it is instead: `FIFO`, `socket`, `character device`, `block device`,
        /// `directory`, …
        kind: &'static str,
    },
    /// A registry transfer (manifest, blob, listing page) did not finish within
    /// [`crate::RegistryOptions::transfer_deadline`]; it is not resumed.
    #[error(
        "{what}: transfer aborted: not finished after {:.1} s (the transfer deadline)",
        after.as_secs_f64()
    )]
    TransferDeadline {
        /// What was being transferred: the blob's digest or document, and its URL (query and
        /// credentials redacted).
        what: String,
        /// How long the transfer had run.
        after: std::time::Duration,
    },
    /// A registry transfer received fewer bytes in one window than
    /// [`crate::RegistryOptions::min_throughput`] asks for; it is not resumed.
    #[error(
        "{what}: transfer aborted as too slow: {bytes} bytes in {:.1} s, under the minimum of \
         {min_bytes} bytes per {:.1} s",
        window.as_secs_f64(),
        window.as_secs_f64()
    )]
    TooSlow {
        /// What was being transferred: the blob's digest or document, and its URL (query and
        /// credentials redacted).
        what: String,
        /// The bytes received in that window.
        bytes: u64,
        /// The window's length.
        window: std::time::Duration,
        /// The minimum asked for per window.
        min_bytes: u64,
    },
    /// A `registry:` source was opened, but this build of `trawl-registry` has no registry
    /// client (its `registry` feature is off).
    #[error(
        "{reference}: this build cannot pull from registries (trawl-registry was built without \
         its `registry` feature); use an OCI layout, an archive or a root file system"
    )]
    RegistrySupportNotBuilt {
        /// The reference that was to be opened.
        reference: String,
    },
    /// A `dir:` source is not a directory.
    #[error("{}: not a directory", path.display())]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
}

impl RegistryError {
    /// The [`RegistryError`] inside an [`io::Error`] raised by a verifying layer stream.
    pub fn from_io(error: &io::Error) -> Option<&RegistryError> {
        error.get_ref()?.downcast_ref::<RegistryError>()
    }

    pub(crate) fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }

    /// The [`RegistryError`] an [`io::Error`] carries, taken out; else the error back.
    pub(crate) fn take_from_io(error: io::Error) -> Result<RegistryError, io::Error> {
        if RegistryError::from_io(&error).is_none() {
            return Err(error);
        }
        match error
            .into_inner()
            .map(|inner| inner.downcast::<RegistryError>())
        {
            Some(Ok(inner)) => Ok(*inner),
            // Checked above; unreachable, but keep an error either way.
            Some(Err(inner)) => Err(io::Error::other(inner)),
            None => Err(io::Error::other("unknown error")),
        }
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}
