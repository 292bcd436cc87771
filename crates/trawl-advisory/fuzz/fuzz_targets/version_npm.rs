//! The npm version parser over arbitrary text: see `normalized.rs`.
#![no_main]

#[macro_use]
mod normalized;

use trawl_advisory::{NpmVersion, VersionScheme};

normalized_target!(NpmVersion, VersionScheme::Npm, NpmVersion::normalized);
