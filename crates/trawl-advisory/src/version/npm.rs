//! npm package versions, as node's `semver` package parses and orders them
//! (<https://github.com/npm/node-semver>, `semver.compare(a, b)` with
//! `loose = false`): the reference npm itself uses, which this module follows
//! exactly.
//!
//! Syntax is SemVer 2.0.0 (<https://semver.org/spec/v2.0.0.html>) with node's
//! additions and limits:
//! - surrounding whitespace is trimmed as JavaScript's `String.prototype.trim`
//!   does (including U+FEFF, excluding U+0085), and one leading `v` is allowed;
//! - a version longer than 256 UTF-16 code units (before trimming) is refused;
//! - major, minor and patch above `Number.MAX_SAFE_INTEGER` (2⁵³ − 1) are
//!   refused.
//!
//! Ordering is SemVer precedence (build metadata ignored, a pre-release below its
//! release, numeric identifiers below alphanumeric ones and compared as numbers,
//! alphanumeric ones compared as ASCII strings, a longer list above its prefix),
//! with one consequence of JavaScript numbers kept: numeric pre-release
//! identifiers compare as doubles, so `1.0.0-9007199254740993` equals
//! `1.0.0-9007199254740992`. Node stops at such a tie and calls the two versions
//! equal even when later identifiers differ, an answer that is not transitive;
//! here the tie moves on to the next identifier instead, so that the ordering is
//! total. That is the only difference from `semver.compare`, and needs numeric
//! identifiers of 16 digits or more.
//!
//! node's loose mode and `semver.coerce` are not implemented: OSV's npm
//! records (ECOSYSTEM and SEMVER events, `versions` lists) hold versions as the
//! registry normalised them, which the strict grammar takes.
//!
//! # Why not a crate
//!
//! The `semver` crate implements Cargo's flavour (no `v`, no trimming, no length
//! or size limits, exact big numbers); the `node-semver` crate accepts loose forms
//! (`01.2.3`, `1.2.3beta`, `V1.2.3`) that `semver.compare` refuses, refuses
//! `9007199254740991.0.0`, which node takes, and does not trim U+FEFF. Both were
//! found by the differential test (`tests/npm_differential.rs`), which holds this
//! module to node's `semver` over the npm registry's versions and generated ones.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Range;
use std::str::FromStr;

use super::{InvalidVersion, VersionError};

/// node-semver's `MAX_LENGTH`.
const MAX_LENGTH: usize = 256;
/// `Number.MAX_SAFE_INTEGER`.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A valid npm version, ordered as `semver.compare` orders it.
///
/// Equality and hashing follow the ordering (build metadata is ignored);
/// [`Display`](fmt::Display) prints the version as given, [`normalized`]
/// (Self::normalized) as node-semver's `version` property does.
///
/// ```
/// use trawl_advisory::NpmVersion;
///
/// let v = |s: &str| NpmVersion::parse(s).unwrap();
/// assert!(v("1.0.0-alpha.1") < v("1.0.0-alpha.beta") && v("1.0.0-rc.1") < v("1.0.0"));
/// assert!(v("1.0.0-2") < v("1.0.0-10"));
/// assert_eq!(v(" v1.2.3+build.5"), v("1.2.3"));
/// assert_eq!(v(" v1.2.3+build.5").normalized(), "1.2.3");
/// assert!(NpmVersion::parse("=1.2.3").is_err()); // loose only
/// ```
#[derive(Debug, Clone)]
pub struct NpmVersion {
    text: String,
    major: u64,
    minor: u64,
    patch: u64,
    pre: Vec<Identifier>,
    /// Where the pre-release identifiers are in `text`.
    pre_span: Range<usize>,
}

/// A pre-release identifier. Numbers are kept as the double JavaScript makes of
/// them (its bits, which order as the values do for non-negative doubles); they
/// sort before text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Identifier {
    Number(u64),
    Text(Box<str>),
}

/// Why a string is not a version for node's `semver` (loose = false).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NpmError {
    /// Longer than node-semver's 256 characters (UTF-16 code units, counted
    /// before trimming).
    #[error("version is longer than {MAX_LENGTH} characters ({length})")]
    TooLong {
        /// The length in UTF-16 code units.
        length: usize,
    },
    /// Not `[v]MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]` from this byte offset on.
    #[error("not a semantic version: invalid from byte {offset}")]
    Syntax {
        /// Byte offset in the input of the first character the grammar cannot take.
        offset: usize,
    },
    /// Major, minor or patch is above `Number.MAX_SAFE_INTEGER`.
    #[error("invalid {part} version: above 2^53 - 1")]
    TooBig {
        /// `major`, `minor` or `patch`.
        part: &'static str,
    },
}

impl NpmVersion {
    /// Parses a version, accepting exactly what node-semver's `new SemVer(v)`
    /// accepts.
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        parse(input).map_err(|reason| VersionError::new(input, InvalidVersion::Npm(reason)))
    }

    /// Compares with `other` parsed as a version; fails as [`parse`](Self::parse)
    /// would on `other`.
    pub(crate) fn cmp_str(&self, other: &str) -> Result<Ordering, VersionError> {
        Ok(self.cmp(&Self::parse(other)?))
    }

    /// The version as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `MAJOR.MINOR.PATCH[-PRERELEASE]`: the version without `v`, whitespace or
    /// build metadata, as node-semver's `version` property has it.
    pub fn normalized(&self) -> String {
        let mut out = format!("{}.{}.{}", self.major, self.minor, self.patch);
        if !self.pre.is_empty() {
            out.push('-');
            out.push_str(&self.text[self.pre_span.clone()]);
        }
        out
    }

    /// Whether the version has pre-release identifiers.
    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }
}

/// Compares two version strings as `semver.compare(a, b)` does (see the module
/// docs for the one difference); fails if either is not a version.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    NpmVersion::parse(a)?.cmp_str(b)
}

/// What `String.prototype.trim` removes: ECMAScript's WhiteSpace and
/// LineTerminator code points.
fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

fn parse(input: &str) -> Result<NpmVersion, NpmError> {
    let length: usize = input.chars().map(char::len_utf16).sum();
    if length > MAX_LENGTH {
        return Err(NpmError::TooLong { length });
    }
    let start = input.len() - input.trim_start_matches(is_js_space).len();
    let end = input.trim_end_matches(is_js_space).len().max(start);
    let bytes = &input.as_bytes()[..end];
    let mut pos = start;
    let error = |offset: usize| NpmError::Syntax { offset };

    if bytes.get(pos) == Some(&b'v') {
        pos += 1;
    }
    let mut parts = [0u64; 3];
    for (i, part) in parts.iter_mut().enumerate() {
        if i > 0 {
            if bytes.get(pos) != Some(&b'.') {
                return Err(error(pos));
            }
            pos += 1;
        }
        let digits = bytes[pos..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        // `0|[1-9]\d*`: a leading zero ends the number.
        let digits = match bytes.get(pos) {
            Some(b'0') => 1,
            _ => digits,
        };
        if digits == 0 {
            return Err(error(pos));
        }
        // Above 16 digits the value is past 2^53 - 1; saturate, checked below.
        *part = input[pos..pos + digits].parse().unwrap_or(u64::MAX);
        pos += digits;
    }

    let mut pre = Vec::new();
    let mut pre_span = pos..pos;
    if bytes.get(pos) == Some(&b'-') {
        pos += 1;
        pre_span.start = pos;
        loop {
            let len = identifier_len(&bytes[pos..]);
            let ident = &input[pos..pos + len];
            if len == 0 || (len > 1 && ident.starts_with('0') && is_numeric(ident)) {
                return Err(error(pos));
            }
            pre.push(if is_numeric(ident) {
                // Exactly JavaScript's `+ident` (correctly rounded); it has no
                // sign, so the bits order as the values.
                let value: f64 = ident.parse().unwrap_or(f64::INFINITY);
                Identifier::Number(value.to_bits())
            } else {
                Identifier::Text(ident.into())
            });
            pos += len;
            if bytes.get(pos) == Some(&b'.') {
                pos += 1;
            } else {
                break;
            }
        }
        pre_span.end = pos;
    }
    if bytes.get(pos) == Some(&b'+') {
        pos += 1;
        loop {
            let len = identifier_len(&bytes[pos..]);
            if len == 0 {
                return Err(error(pos));
            }
            pos += len;
            if bytes.get(pos) == Some(&b'.') {
                pos += 1;
            } else {
                break;
            }
        }
    }
    if pos != end {
        return Err(error(pos));
    }
    for (value, part) in parts.iter().zip(["major", "minor", "patch"]) {
        if *value > MAX_SAFE_INTEGER {
            return Err(NpmError::TooBig { part });
        }
    }
    let [major, minor, patch] = parts;
    Ok(NpmVersion {
        text: input.to_owned(),
        major,
        minor,
        patch,
        pre,
        pre_span,
    })
}

/// The length of the `[0-9A-Za-z-]+` run at the start of `bytes`.
fn identifier_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
        .count()
}

fn is_numeric(ident: &str) -> bool {
    ident.bytes().all(|b| b.is_ascii_digit())
}

impl Ord for NpmVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => self.pre.cmp(&other.pre),
            })
    }
}

impl PartialOrd for NpmVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for NpmVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for NpmVersion {}

impl Hash for NpmVersion {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.major, self.minor, self.patch).hash(state);
        self.pre.hash(state);
    }
}

impl FromStr for NpmVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for NpmVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> NpmVersion {
        NpmVersion::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn precedence() {
        let sorted = [
            "1.0.0-0",
            "1.0.0-9",
            "1.0.0-10",
            "1.0.0-9007199254740991",
            "1.0.0--",
            "1.0.0-A",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.10.0",
            "9007199254740991.0.0",
        ];
        for pair in sorted.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(v("1.0.0+a"), v("v1.0.0+b"));
        assert_eq!(v("1.0.0-9007199254740993"), v("1.0.0-9007199254740992"));
        assert_eq!(compare("1.0.0", "\u{feff}1.0.0\n"), Ok(Ordering::Equal));
    }

    #[test]
    fn normalisation() {
        assert_eq!(
            v("\u{3000}v1.2.3-rc.01a.9+b.01").normalized(),
            "1.2.3-rc.01a.9"
        );
        assert_eq!(v("1.2.3-x").as_str(), "1.2.3-x");
    }

    #[test]
    fn invalid() {
        let reason = |s: &str| match NpmVersion::parse(s) {
            Err(VersionError {
                reason: InvalidVersion::Npm(reason),
                ..
            }) => reason,
            other => panic!("{s:?}: {other:?}"),
        };
        for (input, offset) in [
            ("", 0),
            ("=1.2.3", 0),
            ("V1.2.3", 0),
            ("1.2", 3),
            ("01.2.3", 1),
            ("1.2.3-01", 6),
            ("1.2.3-a..b", 8),
            ("1.2.3+", 6),
            ("1.2.3beta", 5),
            ("1.2.3\u{85}", 5),
            ("1.2.3.4", 5),
        ] {
            assert_eq!(reason(input), NpmError::Syntax { offset }, "{input:?}");
        }
        assert_eq!(
            reason("9007199254740992.0.0"),
            NpmError::TooBig { part: "major" }
        );
        assert_eq!(
            reason(&format!("1.2.3-{}", "a".repeat(251))),
            NpmError::TooLong { length: 257 }
        );
        assert!(NpmVersion::parse(&format!("1.2.3-{}", "a".repeat(250))).is_ok());
    }
}
