//! Trawl: find known vulnerabilities in container images.
#![deny(missing_docs)]
