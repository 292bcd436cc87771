//! Image sources for Trawl: OCI layouts, OCI and docker archives, root filesystems (and registries).
#![deny(missing_docs)]
