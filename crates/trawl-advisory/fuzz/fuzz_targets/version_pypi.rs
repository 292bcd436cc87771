//! The PEP 440 version parser over arbitrary text: see `normalized.rs`.
#![no_main]

#[macro_use]
mod normalized;

use trawl_advisory::{Pep440Version, VersionScheme};

normalized_target!(
    Pep440Version,
    VersionScheme::Pep440,
    Pep440Version::normalized
);
