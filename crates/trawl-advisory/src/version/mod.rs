//! Version schemes: how the versions of one ecosystem are parsed and ordered.
//!
//! Each packaging world orders versions its own way, so an advisory range can only be
//! evaluated under the scheme of its ecosystem. [`VersionScheme::for_ecosystem`] picks
//! the scheme from an OSV ecosystem name; [`Version`] is a version parsed under a
//! scheme. Only [`dpkg`] exists today; rpm, apk and semver schemes plug in as new
//! variants of both enums.

pub mod dpkg;

use std::cmp::Ordering;
use std::fmt;

pub use dpkg::DpkgVersion;

/// A version ordering, chosen from an ecosystem name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[non_exhaustive]
pub enum VersionScheme {
    /// Debian package versions, as `dpkg --compare-versions` orders them
    /// (ecosystems `Debian…` and `Ubuntu…`).
    Dpkg,
}

impl VersionScheme {
    /// The scheme for an OSV ecosystem such as `Debian:12` or `Ubuntu:22.04:LTS`,
    /// decided by the part before the first `:`; `None` if no scheme is implemented.
    pub fn for_ecosystem(ecosystem: &str) -> Option<Self> {
        let base = ecosystem.split(':').next().unwrap_or(ecosystem);
        match base {
            "Debian" | "Ubuntu" => Some(Self::Dpkg),
            _ => None,
        }
    }

    /// Parses `version` under this scheme.
    pub fn parse(self, version: &str) -> Result<Version, VersionError> {
        match self {
            Self::Dpkg => DpkgVersion::parse(version).map(Version::Dpkg),
        }
    }

    /// Compares two version strings under this scheme.
    pub fn compare(self, a: &str, b: &str) -> Result<Ordering, VersionError> {
        let (a, b) = (self.parse(a)?, self.parse(b)?);
        // Both were parsed by the same scheme, so they are comparable.
        Ok(a.partial_cmp(&b).unwrap_or(Ordering::Equal))
    }
}

impl fmt::Display for VersionScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dpkg => "dpkg",
        })
    }
}

/// A version parsed under some [`VersionScheme`].
///
/// Versions of the same scheme are totally ordered; versions of different schemes are
/// incomparable (`partial_cmp` returns `None`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Version {
    /// A Debian package version.
    Dpkg(DpkgVersion),
}

impl Version {
    /// The scheme this version was parsed under.
    pub fn scheme(&self) -> VersionScheme {
        match self {
            Self::Dpkg(_) => VersionScheme::Dpkg,
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match (self, other) {
            (Self::Dpkg(a), Self::Dpkg(b)) => Some(a.cmp(b)),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dpkg(v) => v.fmt(f),
        }
    }
}

/// A version string that its scheme rejects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid version {version:?}: {reason}")]
pub struct VersionError {
    /// The rejected string, as given.
    pub version: String,
    /// What is wrong with it.
    pub reason: InvalidVersion,
}

impl VersionError {
    fn new(version: &str, reason: InvalidVersion) -> Self {
        Self {
            version: version.to_owned(),
            reason,
        }
    }
}

/// Why a version string is invalid. The wording follows dpkg's messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidVersion {
    /// The string is empty or only blanks.
    #[error("version string is empty")]
    Empty,
    /// Blanks inside the version.
    #[error("version string has embedded spaces")]
    EmbeddedBlank,
    /// Nothing, or no digits, before the epoch colon.
    #[error("epoch in version is empty")]
    EmptyEpoch,
    /// The epoch has characters other than digits.
    #[error("epoch in version is not number")]
    EpochNotNumber,
    /// The epoch is negative.
    #[error("epoch in version is negative")]
    NegativeEpoch,
    /// The epoch is above `i32::MAX`.
    #[error("epoch in version is too big")]
    EpochTooBig,
    /// The version ends with the epoch colon.
    #[error("nothing after colon in version number")]
    NothingAfterColon,
    /// The version ends with a hyphen.
    #[error("revision number is empty")]
    EmptyRevision,
    /// Nothing between the epoch and the revision.
    #[error("version number is empty")]
    EmptyUpstream,
    /// A character not allowed in an upstream version.
    #[error("invalid character {0:?} in version number")]
    InvalidUpstreamChar(char),
    /// A character not allowed in a revision.
    #[error("invalid character {0:?} in revision number")]
    InvalidRevisionChar(char),
}
