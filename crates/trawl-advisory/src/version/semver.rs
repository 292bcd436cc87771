//! Semantic versions (<https://semver.org/spec/v2.0.0.html>), as OSV `SEMVER` ranges
//! and semver-ordered ecosystems (crates.io, Hex, Pub) use them.
//!
//! Parsing is the `semver` crate's (strict SemVer 2.0.0: no `v` prefix, no missing
//! minor or patch). Ordering is SemVer precedence: build metadata is ignored, as the
//! specification and OSV require, so `1.0.0+a` equals `1.0.0+b`.
//!
//! This is exactly crates.io's scheme, so crates.io needs no wrapper of its own:
//! Cargo and crates.io parse versions with this same crate, and where Cargo's
//! `Ord` goes past precedence (build metadata breaks its ties) crates.io does
//! not, since it refuses to publish a version that differs from an existing one
//! only in build metadata. `tests/crates_differential.rs` holds this module to
//! Cargo's reading over the versions in cargo's registry index.
//! npm and Go have their own flavours ([`npm`](super::npm), [`go`](super::go)).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use super::{InvalidVersion, VersionError};

/// A parsed semantic version, ordered by SemVer precedence.
#[derive(Debug, Clone)]
pub struct SemVersion {
    text: String,
    version: semver::Version,
}

impl SemVersion {
    /// Parses a SemVer 2.0.0 version.
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        let version = parse_semver(input)?;
        Ok(Self {
            text: input.to_owned(),
            version,
        })
    }

    /// Compares with `other` parsed as a version; fails as
    /// [`parse`](Self::parse) would on `other`.
    pub(crate) fn cmp_str(&self, other: &str) -> Result<Ordering, VersionError> {
        Ok(self.version.cmp_precedence(&parse_semver(other)?))
    }

    /// The parsed version.
    pub fn as_semver(&self) -> &semver::Version {
        &self.version
    }

    /// The version as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn parse_semver(input: &str) -> Result<semver::Version, VersionError> {
    if input.is_empty() {
        return Err(VersionError::new(input, InvalidVersion::Empty));
    }
    semver::Version::parse(input)
        .map_err(|err| VersionError::new(input, InvalidVersion::Semver(err.to_string())))
}

impl FromStr for SemVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for SemVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Ord for SemVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.version.cmp_precedence(&other.version)
    }
}

impl PartialOrd for SemVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for SemVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SemVersion {}

impl Hash for SemVersion {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let v = &self.version;
        (v.major, v.minor, v.patch, v.pre.as_str()).hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        let v = |s: &str| SemVersion::parse(s).expect("valid");
        assert!(v("1.0.0-alpha") < v("1.0.0-alpha.1"));
        assert!(v("1.0.0-alpha.beta") < v("1.0.0-beta"));
        assert!(v("1.0.0-rc.1") < v("1.0.0"));
        assert!(v("1.0.0-2") < v("1.0.0-10"));
        assert!(v("1.9.0") < v("1.10.0"));
        assert_eq!(v("1.0.0+build.1"), v("1.0.0+build.2"));
        assert!(matches!(
            SemVersion::parse("v1.0.0").expect_err("prefix").reason,
            InvalidVersion::Semver(_)
        ));
    }
}
