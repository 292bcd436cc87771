//! Image references: `[HOST[:PORT]/]REPOSITORY[:TAG][@DIGEST]`, with Docker's defaults.
//!
//! The grammar is the [distribution reference](https://github.com/distribution/reference/blob/main/reference.go)
//! one; parsing is `oci-spec`'s (which `oci-client` uses too). A first component with a `.` or `:`, or `localhost`, is a
//! host; otherwise the host is `docker.io`, single-component repositories there get
//! `library/`, and a reference without tag or digest means `latest`.

use std::fmt;
use std::str::FromStr;

use crate::RegistryError;

/// A fully qualified image reference on a registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegistryReference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Docker Hub's name in references, and the host its API is served from.
const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

impl RegistryReference {
    /// A reference to `repository` on `registry` by tag.
    pub fn with_tag(registry: &str, repository: &str, tag: &str) -> Self {
        Self {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag: Some(tag.to_owned()),
            digest: None,
        }
    }

    /// The same repository, pinned to `digest`.
    pub fn with_digest(&self, digest: &str) -> Self {
        Self {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest.to_owned()),
        }
    }

    /// The registry as named in the reference, e.g. `docker.io`, `localhost:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host (and port) the registry API is served from (`docker.io` is
    /// `registry-1.docker.io`).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The repository, e.g. `library/debian`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference pins one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// What the manifest endpoint is asked for: the digest when pinned, else the tag.
    #[cfg(feature = "registry")]
    pub(crate) fn manifest_target(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl FromStr for RegistryReference {
    type Err = RegistryError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: String| RegistryError::InvalidReference {
            input: input.to_owned(),
            reason,
        };
        if input.is_empty() {
            return Err(invalid("empty".to_owned()));
        }
        let parsed: oci_spec::distribution::Reference = input
            .parse()
            .map_err(|e: oci_spec::distribution::ParseError| invalid(e.to_string()))?;
        if parsed.repository().bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid("repository names must be lowercase".to_owned()));
        }
        let digest = parsed.digest().map(str::to_owned);
        if let Some(digest) = &digest {
            crate::digest::sha256_hex(digest)
                .map_err(|_| invalid(format!("unsupported digest {digest:?} (sha256 only)")))?;
        }
        Ok(Self {
            registry: parsed.registry().to_owned(),
            repository: parsed.repository().to_owned(),
            tag: parsed.tag().map(str::to_owned),
            digest,
        })
    }
}

impl fmt::Display for RegistryReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> RegistryReference {
        s.parse().unwrap()
    }

    #[test]
    fn applies_docker_defaults() {
        let r = parse("debian:12");
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("docker.io", "library/debian", Some("12"))
        );
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(
            parse("ubuntu").to_string(),
            "docker.io/library/ubuntu:latest"
        );
        assert_eq!(
            parse("bitnami/redis").to_string(),
            "docker.io/bitnami/redis:latest"
        );
        assert_eq!(
            parse("index.docker.io/library/alpine:3").to_string(),
            "docker.io/library/alpine:3"
        );
    }

    #[test]
    fn detects_hosts_like_docker() {
        let r = parse("localhost:5000/x");
        assert_eq!((r.registry(), r.repository()), ("localhost:5000", "x"));
        assert_eq!(parse("localhost/x").registry(), "localhost");
        assert_eq!(parse("127.0.0.1:5000/a/b:t").repository(), "a/b");
        assert_eq!(parse("quay.io/org/img:1").registry(), "quay.io");
        // No dot, colon or localhost: a Docker Hub namespace, not a host.
        assert_eq!(parse("myhost/img").registry(), "docker.io");
        assert_eq!(parse("myhost/img").repository(), "myhost/img");
    }

    #[test]
    fn parses_digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = parse(&format!("127.0.0.1:5000/x@{d}"));
        assert_eq!(r.digest(), Some(d.as_str()));
        assert_eq!(r.tag(), None);
        #[cfg(feature = "registry")]
        assert_eq!(r.manifest_target(), d);
        assert_eq!(r.to_string(), format!("127.0.0.1:5000/x@{d}"));
        assert_eq!(parse(&r.to_string()), r);
    }

    #[test]
    fn rejects_bad_references() {
        for bad in ["", "UPPER/case", "a@sha256:1234", "x:", "host:5000/a//b"] {
            assert!(
                matches!(
                    bad.parse::<RegistryReference>(),
                    Err(RegistryError::InvalidReference { .. })
                ),
                "{bad}"
            );
        }
    }
}
