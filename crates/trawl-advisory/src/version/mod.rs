//! Version schemes: how the versions of one ecosystem are parsed and ordered.
//!
//! Each packaging world orders versions its own way, so an advisory range can only be
//! evaluated under the scheme of its ecosystem. [`VersionScheme::for_ecosystem`] picks
//! the scheme from an OSV ecosystem name (see [`Ecosystem`](crate::Ecosystem));
//! [`Version`] is a version parsed under a scheme. Schemes: [`dpkg`], [`rpm`],
//! [`apk`], [`semver`] (also crates.io's); for language ecosystems also
//! [`pypi`], [`npm`], [`go`], [`maven`], [`rubygems`], [`composer`] (Packagist)
//! and [`nuget`].

pub mod apk;
pub mod composer;
pub mod dpkg;
pub mod go;
pub mod maven;
pub mod npm;
pub mod nuget;
pub mod pypi;
pub mod rpm;
pub mod rubygems;
pub mod semver;

use std::cmp::Ordering;
use std::fmt;

pub use apk::ApkVersion;
pub use composer::ComposerVersion;
pub use dpkg::DpkgVersion;
pub use go::{GoError, GoVersion};
pub use maven::MavenVersion;
pub use npm::{NpmError, NpmVersion};
pub use nuget::NuGetVersion;
pub use pypi::{Pep440Error, Pep440Version};
pub use rpm::RpmVersion;
pub use rubygems::GemVersion;
pub use semver::SemVersion;

/// A version ordering, chosen from an ecosystem name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum VersionScheme {
    /// Debian package versions, as `dpkg --compare-versions` orders them
    /// (ecosystems `Debian…` and `Ubuntu…`).
    Dpkg,
    /// RPM `[epoch:]version[-release]`, as rpm orders them (Red Hat, Rocky Linux,
    /// AlmaLinux, SUSE, openSUSE, Mageia, Photon OS).
    Rpm,
    /// Alpine package versions, as apk-tools orders them (Alpine, Wolfi, Chainguard).
    Apk,
    /// Semantic Versioning 2.0.0 precedence (OSV `SEMVER` ranges; crates.io, Hex,
    /// Pub).
    Semver,
    /// PEP 440, as Python's `packaging` orders versions (PyPI).
    Pep440,
    /// node-semver, as npm orders versions.
    Npm,
    /// Go module versions and Go release tags, as `golang.org/x/mod/semver` orders
    /// them (Go).
    Go,
    /// Maven's `ComparableVersion` (ecosystem `Maven`).
    Maven,
    /// RubyGems' `Gem::Version` (ecosystem `RubyGems`).
    RubyGems,
    /// Composer's normalised versions and `Comparator` (ecosystem `Packagist`).
    Composer,
    /// NuGet.Versioning's `NuGetVersion` (ecosystem `NuGet`).
    NuGet,
}

impl VersionScheme {
    /// The scheme for an OSV ecosystem such as `Debian:12`, `Alpine:v3.18` or
    /// `Rocky Linux:9`, decided by the distribution part (see
    /// [`Ecosystem::scheme`](crate::Ecosystem::scheme)); `None` if no scheme is
    /// implemented.
    pub fn for_ecosystem(ecosystem: &str) -> Option<Self> {
        crate::Ecosystem::parse(ecosystem).scheme()
    }

    /// Parses `version` under this scheme.
    pub fn parse(self, version: &str) -> Result<Version, VersionError> {
        match self {
            Self::Dpkg => DpkgVersion::parse(version).map(Version::Dpkg),
            Self::Rpm => RpmVersion::parse(version).map(Version::Rpm),
            Self::Apk => ApkVersion::parse(version).map(Version::Apk),
            Self::Semver => SemVersion::parse(version).map(Version::Semver),
            Self::Pep440 => Pep440Version::parse(version).map(Version::Pep440),
            Self::Npm => NpmVersion::parse(version).map(Version::Npm),
            Self::Go => GoVersion::parse(version).map(Version::Go),
            Self::Maven => MavenVersion::parse(version).map(Version::Maven),
            Self::RubyGems => GemVersion::parse(version).map(Version::RubyGems),
            Self::Composer => ComposerVersion::parse(version).map(Version::Composer),
            Self::NuGet => NuGetVersion::parse(version).map(Version::NuGet),
        }
    }

    /// Compares two version strings under this scheme.
    pub fn compare(self, a: &str, b: &str) -> Result<Ordering, VersionError> {
        match self {
            Self::Dpkg => dpkg::compare(a, b),
            Self::Rpm => rpm::compare(a, b),
            // `apk::compare` answers for invalid versions too; this does not.
            Self::Apk => ApkVersion::parse(a)?.cmp_str(b),
            Self::Semver => SemVersion::parse(a)?.cmp_str(b),
            Self::Pep440 => pypi::compare(a, b),
            Self::Npm => npm::compare(a, b),
            Self::Go => go::compare(a, b),
            Self::Maven => maven::compare(a, b),
            Self::RubyGems => rubygems::compare(a, b),
            Self::Composer => composer::compare(a, b),
            Self::NuGet => nuget::compare(a, b),
        }
    }

    /// The scheme OSV `SEMVER` ranges are evaluated under in an ecosystem of
    /// this scheme: the ecosystem's own where it is a flavour of SemVer that
    /// also reads the plain SemVer these ranges hold (npm's trims and takes a
    /// `v`; Go's installed versions carry the `v` that OSV's Go records leave
    /// out), plain SemVer everywhere else.
    pub fn for_semver_ranges(self) -> Self {
        match self {
            Self::Npm | Self::Go => self,
            _ => Self::Semver,
        }
    }
}

impl fmt::Display for VersionScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dpkg => "dpkg",
            Self::Rpm => "rpm",
            Self::Apk => "apk",
            Self::Semver => "semver",
            Self::Pep440 => "pep440",
            Self::Npm => "npm",
            Self::Go => "go",
            Self::Maven => "maven",
            Self::RubyGems => "rubygems",
            Self::Composer => "composer",
            Self::NuGet => "nuget",
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
    /// An RPM EVR.
    Rpm(RpmVersion),
    /// An Alpine package version.
    Apk(ApkVersion),
    /// A semantic version.
    Semver(SemVersion),
    /// A PEP 440 (PyPI) version.
    Pep440(Pep440Version),
    /// An npm version.
    Npm(NpmVersion),
    /// A Go module version or release tag.
    Go(GoVersion),
    /// A Maven version.
    Maven(MavenVersion),
    /// A RubyGems version.
    RubyGems(GemVersion),
    /// A Composer (Packagist) version.
    Composer(ComposerVersion),
    /// A NuGet version.
    NuGet(NuGetVersion),
}

impl Version {
    /// The scheme this version was parsed under.
    pub fn scheme(&self) -> VersionScheme {
        match self {
            Self::Dpkg(_) => VersionScheme::Dpkg,
            Self::Rpm(_) => VersionScheme::Rpm,
            Self::Apk(_) => VersionScheme::Apk,
            Self::Semver(_) => VersionScheme::Semver,
            Self::Pep440(_) => VersionScheme::Pep440,
            Self::Npm(_) => VersionScheme::Npm,
            Self::Go(_) => VersionScheme::Go,
            Self::Maven(_) => VersionScheme::Maven,
            Self::RubyGems(_) => VersionScheme::RubyGems,
            Self::Composer(_) => VersionScheme::Composer,
            Self::NuGet(_) => VersionScheme::NuGet,
        }
    }
}

impl Version {
    /// Compares with `other` parsed under this version's scheme, as
    /// `self.partial_cmp(&self.scheme().parse(other)?)` would, but without
    /// allocating for the usual versions.
    pub(crate) fn cmp_str(&self, other: &str) -> Result<Ordering, VersionError> {
        if let Some(ordering) = self.cmp_plain(other) {
            return Ok(ordering);
        }
        self.cmp_parsed(other)
    }

    /// [`cmp_str`](Self::cmp_str) without a shortcut: `other` parsed under
    /// this version's scheme.
    fn cmp_parsed(&self, other: &str) -> Result<Ordering, VersionError> {
        match self {
            Self::Dpkg(v) => v.cmp_str(other),
            Self::Rpm(v) => v.cmp_str(other),
            Self::Apk(v) => v.cmp_str(other),
            Self::Semver(v) => v.cmp_str(other),
            Self::Pep440(v) => v.cmp_str(other),
            Self::Npm(v) => v.cmp_str(other),
            Self::Go(v) => v.cmp_str(other),
            Self::Maven(v) => v.cmp_str(other),
            Self::RubyGems(v) => v.cmp_str(other),
            Self::Composer(v) => v.cmp_str(other),
            Self::NuGet(v) => v.cmp_str(other),
        }
    }
}

impl Version {
    /// The order of this version and `other` when both are plain
    /// `major.minor.patch` releases (see [`plain_release`]) under a scheme
    /// where such releases order as their three numbers do: semver, PEP 440,
    /// npm, Maven, RubyGems, NuGet, and Go (with or without its `v`). This
    /// is exact: each of these parses a plain release to exactly those
    /// numbers (NuGet and PEP 440 add only zeros,
    /// which compare equal), and orders releases without pre-release or
    /// build parts by them. Composer is left out (it reads some numbers as
    /// dates), as are the distribution schemes (their own comparisons are
    /// allocation-free already). `None`: compare by parsing.
    ///
    /// Language advisories and packages mostly have such versions, and
    /// parsing them allocates (issue 13).
    fn cmp_plain<'a>(&'a self, other: &'a str) -> Option<Ordering> {
        let mine = match self {
            Self::Semver(v) => v.as_str(),
            Self::Pep440(v) => v.as_str(),
            Self::Npm(v) => v.as_str(),
            Self::Maven(v) => v.as_str(),
            Self::RubyGems(v) => v.as_str(),
            Self::NuGet(v) => v.as_str(),
            // Go takes `1.2.3` and `v1.2.3` alike.
            Self::Go(v) => {
                let unprefixed = |text: &'a str| text.strip_prefix('v').unwrap_or(text);
                return Some(
                    plain_release(unprefixed(v.as_str()))?.cmp(&plain_release(unprefixed(other))?),
                );
            }
            _ => return None,
        };
        Some(plain_release(mine)?.cmp(&plain_release(other)?))
    }
}

/// The three numbers of a plain release: exactly three dot-separated runs
/// of at most 9 ASCII digits (so each fits every scheme's number type),
/// none with a leading zero (which some schemes refuse) unless it is `0`;
/// nothing else, not even blanks. `None` for anything else.
fn plain_release(text: &str) -> Option<[u32; 3]> {
    let mut numbers = [0u32; 3];
    let mut part = 0;
    // Digits in the current number, and whether it started with a zero.
    let mut digits = 0;
    let mut leading_zero = false;
    for &byte in text.as_bytes() {
        match byte {
            b'0'..=b'9' => {
                if digits == 9 || leading_zero {
                    return None;
                }
                leading_zero = digits == 0 && byte == b'0';
                digits += 1;
                let number = numbers.get_mut(part)?;
                *number = *number * 10 + u32::from(byte - b'0');
            }
            b'.' if digits > 0 && part < 2 => {
                part += 1;
                digits = 0;
                leading_zero = false;
            }
            _ => return None,
        }
    }
    (part == 2 && digits > 0).then_some(numbers)
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match (self, other) {
            (Self::Dpkg(a), Self::Dpkg(b)) => Some(a.cmp(b)),
            (Self::Rpm(a), Self::Rpm(b)) => Some(a.cmp(b)),
            (Self::Apk(a), Self::Apk(b)) => Some(a.cmp(b)),
            (Self::Semver(a), Self::Semver(b)) => Some(a.cmp(b)),
            (Self::Pep440(a), Self::Pep440(b)) => Some(a.cmp(b)),
            (Self::Npm(a), Self::Npm(b)) => Some(a.cmp(b)),
            (Self::Go(a), Self::Go(b)) => Some(a.cmp(b)),
            (Self::Maven(a), Self::Maven(b)) => Some(a.cmp(b)),
            (Self::RubyGems(a), Self::RubyGems(b)) => Some(a.cmp(b)),
            (Self::Composer(a), Self::Composer(b)) => Some(a.cmp(b)),
            (Self::NuGet(a), Self::NuGet(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dpkg(v) => v.fmt(f),
            Self::Rpm(v) => v.fmt(f),
            Self::Apk(v) => v.fmt(f),
            Self::Semver(v) => v.fmt(f),
            Self::Pep440(v) => v.fmt(f),
            Self::Npm(v) => v.fmt(f),
            Self::Go(v) => v.fmt(f),
            Self::Maven(v) => v.fmt(f),
            Self::RubyGems(v) => v.fmt(f),
            Self::Composer(v) => v.fmt(f),
            Self::NuGet(v) => v.fmt(f),
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

/// Why a version string is invalid. The dpkg wording follows dpkg's messages.
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
    /// A control or blank character, never part of a version (rpm).
    #[error("invalid character {0:?} in version")]
    InvalidChar(char),
    /// Not an Alpine version (`digits{.digits}[letter]{_suffix[N]}[~hash][-rN]`);
    /// apk stops understanding it at this byte offset.
    #[error("not an apk version: invalid from byte {offset}")]
    ApkSyntax {
        /// Byte offset of the first character apk-tools rejects.
        offset: usize,
    },
    /// Not a SemVer 2.0.0 version; the `semver` crate's message.
    #[error("not a semantic version: {0}")]
    Semver(String),
    /// Not a PEP 440 version.
    #[error(transparent)]
    Pep440(Pep440Error),
    /// Not a version node's `semver` takes.
    #[error(transparent)]
    Npm(NpmError),
    /// Not a Go module version or release tag.
    #[error(transparent)]
    Go(GoError),
    /// Not a RubyGems version (`Gem::Version.correct?` is false).
    #[error("not a RubyGems version")]
    NotGem,
    /// Not a Composer version (`VersionParser::normalize` throws).
    #[error("not a Composer version")]
    NotComposer,
    /// Not a NuGet version (`NuGetVersion.TryParse` fails).
    #[error("not a NuGet version")]
    NotNuGet,
}

#[cfg(test)]
mod plain_tests {
    use super::*;

    /// The plain-release shortcut answers as parsing does, for every scheme
    /// it covers and for those it leaves out, with versions that take it and
    /// versions that must not (leading zeros, four parts, blanks, suffixes).
    #[test]
    fn plain_releases_compare_as_parsed_ones() {
        let texts = [
            "0.0.0",
            "0.0.1",
            "1.2.3",
            "1.2.10",
            "1.10.2",
            "10.0.0",
            "2.0.0",
            "999999999.0.0",
            "1.2.03",
            "01.2.3",
            "1.2",
            "1.2.3.0",
            "1.2.3.4",
            " 1.2.3",
            "1.2.3-rc1",
            "1.2.3rc1",
            "1.2.3.post1",
            "v1.2.3",
            "vv1.2.3",
            "go1.2.3",
            "1..3",
            "1000000000.0.0",
            "",
        ];
        let schemes = [
            VersionScheme::Semver,
            VersionScheme::Pep440,
            VersionScheme::Npm,
            VersionScheme::Maven,
            VersionScheme::RubyGems,
            VersionScheme::NuGet,
            VersionScheme::Composer,
            VersionScheme::Go,
            VersionScheme::Dpkg,
        ];
        let mut shortcuts = 0;
        for scheme in schemes {
            for mine in texts {
                let Ok(version) = scheme.parse(mine) else {
                    continue;
                };
                for other in texts {
                    let got = version.cmp_str(other).ok();
                    let want = version.cmp_parsed(other).ok();
                    assert_eq!(got, want, "{scheme:?}: {mine:?} against {other:?}");
                    if version.cmp_plain(other).is_some() {
                        shortcuts += 1;
                        let parsed = scheme.parse(other).ok();
                        assert_eq!(
                            got,
                            parsed.and_then(|o| version.partial_cmp(&o)),
                            "{scheme:?}: {mine:?} against {other:?}"
                        );
                    }
                }
            }
        }
        // 8 plain texts, squared, for each of the 6 schemes covered; for Go
        // also `v1.2.3`.
        assert_eq!(shortcuts, 6 * 8 * 8 + 9 * 9);
        assert_eq!(plain_release("1.2.3"), Some([1, 2, 3]));
        assert_eq!(plain_release("0.10.999999999"), Some([0, 10, 999_999_999]));
        for text in [
            "1.2.03",
            "1.2",
            "1.2.3.4",
            "1.2.x",
            "1000000000.0.0",
            "1.2.3 ",
            "1.2.3.",
            ".1.2",
            "1.2.",
            "1..2",
            "",
        ] {
            assert_eq!(plain_release(text), None, "{text:?}");
        }
    }
}
