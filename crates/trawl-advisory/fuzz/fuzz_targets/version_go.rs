//! The Go version parser over arbitrary text: see `normalized.rs`.
#![no_main]

#[macro_use]
mod normalized;

use trawl_advisory::{GoVersion, VersionScheme};

normalized_target!(GoVersion, VersionScheme::Go, |v: &GoVersion| v
    .canonical()
    .to_string());
