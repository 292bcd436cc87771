//! RPM package versions: `[epoch:]version[-release]` (EVR).
//!
//! RPM has no formal version grammar; its behaviour is defined by its code, and the
//! format is described at <https://rpm-software-management.github.io/rpm/manual/dependencies.html#versioning>.
//! This is a hand-written port of rpm 4.18's `rpmvercmp()` (`rpmio/rpmvercmp.c`) and
//! of `rpmverParse()` / `rpmverCmp()` (`lib/rpmver.c`, `parseEVR()` in `lib/rpmds.c`).
//! No maintained crate implements them exactly (tilde and caret included), and the
//! code is short. Agreement with rpm's own `rpm.vercmp()` is proven by a differential
//! test (`tests/rpm_differential.rs`).
//!
//! Comparison rules:
//! - a string is split into maximal runs of ASCII digits and of ASCII letters; every
//!   other byte only separates runs (`1.0`, `1_0` and `1..0` are equal);
//! - `~` sorts before everything, end of string included (`1.0~rc1 < 1.0`);
//! - `^` sorts after the end of string but before any further run
//!   (`1.0 < 1.0^git1 < 1.0.1`);
//! - digit runs compare numerically at any length (leading zeros ignored) and are
//!   newer than letter runs; letter runs compare as ASCII strings;
//! - when every run compared equal, the string with runs left is newer.
//!
//! An EVR splits at the leading digits followed by `:` (the epoch; an empty epoch
//! is 0, a missing one is 0) and at the last `-` (the release). Epochs, versions and
//! releases compare with the rules above, in that order; a missing release sorts
//! before any release, even an empty one, as in `rpmverCmp()`.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use super::{InvalidVersion, VersionError};

/// A parsed RPM `[epoch:]version[-release]`.
///
/// Equality, ordering and hashing follow rpm: `1.0-1`, `0:1.0-1` and `1.00-1` are
/// equal. [`Display`](fmt::Display) prints the version exactly as given.
#[derive(Debug, Clone)]
pub struct RpmVersion {
    text: String,
    /// Byte range of the epoch digits within `text`, if there is an epoch.
    epoch: Option<(usize, usize)>,
    /// Byte range of the version within `text`.
    version: (usize, usize),
    /// Byte offset of the release within `text` (after the last hyphen), if any.
    release: Option<usize>,
}

impl RpmVersion {
    /// Parses an EVR the way `rpmverParse()` does.
    ///
    /// rpm accepts any non-empty string; this also rejects blanks and control
    /// characters, which rpm never allows in a package's version or release and
    /// which in a feed mean the field was mangled.
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        let parts = Parts::parse(input)?;
        Ok(Self {
            text: input.to_owned(),
            epoch: parts.epoch,
            version: parts.version,
            release: parts.release,
        })
    }

    fn parts(&self) -> Parts<'_> {
        Parts {
            text: &self.text,
            epoch: self.epoch,
            version: self.version,
            release: self.release,
        }
    }

    /// Compares with `other` parsed as an EVR, without allocating; fails as
    /// [`parse`](Self::parse) would on `other`.
    pub(crate) fn cmp_str(&self, other: &str) -> Result<Ordering, VersionError> {
        Ok(self.parts().cmp(&Parts::parse(other)?))
    }

    /// The epoch as written (digits; empty for `:1.0`); `None` when there is none.
    /// Both compare as 0.
    pub fn epoch(&self) -> Option<&str> {
        self.epoch.map(|(start, end)| &self.text[start..end])
    }

    /// The version: between the epoch and the last hyphen.
    pub fn version(&self) -> &str {
        &self.text[self.version.0..self.version.1]
    }

    /// The release after the last hyphen, if the EVR has one.
    pub fn release(&self) -> Option<&str> {
        self.release.map(|start| &self.text[start..])
    }

    /// The EVR as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// An EVR split into its parts, borrowing its text: what [`RpmVersion`]
/// holds, without owning it.
#[derive(Debug, Clone, Copy)]
struct Parts<'a> {
    text: &'a str,
    epoch: Option<(usize, usize)>,
    version: (usize, usize),
    release: Option<usize>,
}

impl<'a> Parts<'a> {
    /// `rpmverParse()` (see [`RpmVersion::parse`]).
    fn parse(input: &'a str) -> Result<Self, VersionError> {
        let err = |reason| Err(VersionError::new(input, reason));
        if input.is_empty() {
            return err(InvalidVersion::Empty);
        }
        let bad = |c: char| c.is_whitespace() || c.is_control();
        let suspect = if input.is_ascii() {
            input.bytes().any(|b| bad(char::from(b)))
        } else {
            true
        };
        if suspect && let Some(c) = input.chars().find(|&c| bad(c)) {
            return err(if c == ' ' || c == '\t' {
                InvalidVersion::EmbeddedBlank
            } else {
                InvalidVersion::InvalidChar(c)
            });
        }
        let digits = input.bytes().take_while(u8::is_ascii_digit).count();
        let (epoch, version_start) = if input.as_bytes().get(digits) == Some(&b':') {
            (Some((0, digits)), digits + 1)
        } else {
            (None, 0)
        };
        // The epoch is digits only, so the last hyphen is never inside it.
        let (version_end, release) = match input[version_start..].rfind('-') {
            Some(hyphen) => (version_start + hyphen, Some(version_start + hyphen + 1)),
            None => (input.len(), None),
        };
        Ok(Self {
            text: input,
            epoch,
            version: (version_start, version_end),
            release,
        })
    }

    fn epoch_or_zero(&self) -> &'a str {
        match self.epoch {
            Some((start, end)) if end > start => &self.text[start..end],
            _ => "0",
        }
    }

    fn version(&self) -> &'a str {
        &self.text[self.version.0..self.version.1]
    }

    fn release(&self) -> Option<&'a str> {
        self.release.map(|start| &self.text[start..])
    }

    fn cmp(&self, other: &Self) -> Ordering {
        rpmvercmp(self.epoch_or_zero(), other.epoch_or_zero())
            .then_with(|| rpmvercmp(self.version(), other.version()))
            .then_with(|| match (self.release(), other.release()) {
                (Some(a), Some(b)) => rpmvercmp(a, b),
                (a, b) => a.is_some().cmp(&b.is_some()),
            })
    }
}

/// Compares two EVR strings exactly as rpm 4.18's `rpm.vercmp()` does.
///
/// Fails if either is not a valid version (see [`RpmVersion::parse`]).
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(Parts::parse(a)?.cmp(&Parts::parse(b)?))
}

impl FromStr for RpmVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for RpmVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Ord for RpmVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts().cmp(&other.parts())
    }
}

impl PartialOrd for RpmVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for RpmVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for RpmVersion {}

impl Hash for RpmVersion {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_segments(self.parts().epoch_or_zero(), state);
        hash_segments(self.version(), state);
        match self.release() {
            Some(release) => {
                1u8.hash(state);
                hash_segments(release, state);
            }
            None => 0u8.hash(state),
        }
    }
}

/// One unit of an rpm version string, as `rpmvercmp()` walks it.
#[derive(Debug, PartialEq, Eq, Hash)]
enum Segment<'a> {
    Tilde,
    Caret,
    /// Letters only.
    Alpha(&'a [u8]),
    /// Digits only, leading zeros removed.
    Number(&'a [u8]),
}

/// The segments of `s`: separators dropped, `~` and `^` kept as their own units.
struct Segments<'a> {
    rest: &'a [u8],
}

impl<'a> Segments<'a> {
    fn new(s: &'a str) -> Self {
        let bytes = s.as_bytes();
        // C strings end at the first NUL.
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        Self {
            rest: &bytes[..end],
        }
    }
}

impl<'a> Iterator for Segments<'a> {
    type Item = Segment<'a>;

    fn next(&mut self) -> Option<Segment<'a>> {
        let skip = self
            .rest
            .iter()
            .take_while(|&&b| !(b.is_ascii_alphanumeric() || b == b'~' || b == b'^'))
            .count();
        self.rest = &self.rest[skip..];
        let first = *self.rest.first()?;
        let (segment, len) = match first {
            b'~' => (Segment::Tilde, 1),
            b'^' => (Segment::Caret, 1),
            b if b.is_ascii_digit() => {
                let len = self.rest.iter().take_while(|b| b.is_ascii_digit()).count();
                let run = &self.rest[..len];
                let zeros = run.iter().take_while(|&&b| b == b'0').count();
                (Segment::Number(&run[zeros..]), len)
            }
            _ => {
                let len = self
                    .rest
                    .iter()
                    .take_while(|b| b.is_ascii_alphabetic())
                    .count();
                (Segment::Alpha(&self.rest[..len]), len)
            }
        };
        self.rest = &self.rest[len..];
        Some(segment)
    }
}

/// rpm's `rpmvercmp()`: the segment sequences compared in order, where at each
/// position `~` < end of string < `^` < letters < digits.
pub(crate) fn rpmvercmp(a: &str, b: &str) -> Ordering {
    /// Rank of what stands at a position; equal ranks compare by content.
    fn rank(segment: Option<&Segment<'_>>) -> u8 {
        match segment {
            Some(Segment::Tilde) => 0,
            None => 1,
            Some(Segment::Caret) => 2,
            Some(Segment::Alpha(_)) => 3,
            Some(Segment::Number(_)) => 4,
        }
    }
    let (mut a, mut b) = (Segments::new(a), Segments::new(b));
    loop {
        let (x, y) = (a.next(), b.next());
        let order = rank(x.as_ref()).cmp(&rank(y.as_ref()));
        if order != Ordering::Equal {
            return order;
        }
        match (x, y) {
            (None, None) => return Ordering::Equal,
            (Some(Segment::Alpha(x)), Some(Segment::Alpha(y))) => {
                let order = x.cmp(y);
                if order != Ordering::Equal {
                    return order;
                }
            }
            (Some(Segment::Number(x)), Some(Segment::Number(y))) => {
                let order = x.len().cmp(&y.len()).then_with(|| x.cmp(y));
                if order != Ordering::Equal {
                    return order;
                }
            }
            _ => {}
        }
    }
}

fn hash_segments<H: Hasher>(s: &str, state: &mut H) {
    for segment in Segments::new(s) {
        segment.hash(state);
    }
    // Terminator, so that ("1", "2") and ("12", "") hash differently.
    0xffu8.hash(state);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        match compare(a, b) {
            Ok(o) => o,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn tricky_pairs() {
        use Ordering::*;
        let cases = [
            ("1.0", "1.0", Equal),
            ("1.0", "1_0", Equal),
            ("1.0", "1.0.", Equal),
            ("1.0", "1.00", Equal),
            ("1.0a", "1.0.a", Equal),
            ("1.0", "1.0.1", Less),
            ("1.0a", "1.0", Greater),
            ("1.0a", "1.0.1", Less), // letters before digits
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0^", "1.0", Greater),
            ("1.0^git1", "1.0.1", Less),
            ("1.0^git1", "1.0~rc1", Greater),
            ("1.0^git1", "1.0^git2", Less),
            ("1.0^", "1.0~", Greater),
            ("a", "B", Greater),
            ("10", "9", Greater),
            (
                "99999999999999999999999",
                "99999999999999999999998",
                Greater,
            ),
            ("1.0-1", "1.0-2", Less),
            ("1.0", "1.0-1", Less),   // a missing release sorts first
            ("1.0-", "1.0", Greater), // even before an empty one
            ("1:1.0-1", "2.0-1", Greater),
            ("0:1.0-1", "1.0-1", Equal),
            (":1.0", "0:1.0", Equal),
            ("a:1", "1", Less), // not an epoch: version "a:1"
            ("1.2-3-4", "1.2-3", Greater),
        ];
        for (a, b, want) in cases {
            assert_eq!(cmp(a, b), want, "{a} vs {b}");
            assert_eq!(cmp(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn parts() {
        let v = RpmVersion::parse("3:1.2.3-4.el9_2").expect("valid");
        assert_eq!(v.epoch(), Some("3"));
        assert_eq!(v.version(), "1.2.3");
        assert_eq!(v.release(), Some("4.el9_2"));
        assert_eq!(v.to_string(), "3:1.2.3-4.el9_2");
        let v = RpmVersion::parse("1.2").expect("valid");
        assert_eq!((v.epoch(), v.version(), v.release()), (None, "1.2", None));
        assert_eq!(
            RpmVersion::parse("").expect_err("empty").reason,
            InvalidVersion::Empty
        );
        assert_eq!(
            RpmVersion::parse("1.0 1").expect_err("blank").reason,
            InvalidVersion::EmbeddedBlank
        );
    }

    #[test]
    fn equal_versions_hash_equally() {
        use std::collections::hash_map::DefaultHasher;
        let hash = |s: &str| {
            let mut h = DefaultHasher::new();
            RpmVersion::parse(s).expect("valid").hash(&mut h);
            h.finish()
        };
        for (a, b) in [("0:1.0-1", "1.00-1"), ("1_0", "1.0."), (":2", "0:2")] {
            assert_eq!(cmp(a, b), Ordering::Equal);
            assert_eq!(hash(a), hash(b), "{a} / {b}");
        }
        assert_ne!(hash("1.0"), hash("1.0-"));
    }
}
