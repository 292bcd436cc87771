//! RubyGems versions, as `Gem::Version` parses and orders them.
//!
//! RubyGems defines versions in code: `lib/rubygems/version.rb`
//! (<https://guides.rubygems.org/patterns/#semantic-versioning>,
//! <https://docs.ruby-lang.org/en/master/Gem/Version.html>). This is a hand-written
//! port of that class as RubyGems 3.3 (Debian 12's Ruby 3.1) has it, checked against
//! Ruby itself by `tests/rubygems_differential.rs`.
//!
//! Hand-written on purpose: the `gem_version` crate (1.0) pulls in `regex` for one
//! pattern and disagrees with Ruby on the differential test's inputs: it accepts
//! Unicode blanks around a version (`"2\u{a0}"`), and misorders numbers beyond 64 bits
//! (708 of 14,104 pairs, e.g. `01099999999999999999999` against
//! `0199999999999999999999.99999999999999999999.123alpha`).
//!
//! The rules:
//! - valid versions match `Gem::Version::ANCHORED_VERSION_PATTERN`:
//!   `\A\s*([0-9]+(\.[0-9a-zA-Z]+)*(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?)?\s*\z`
//!   (`Gem::Version.correct?`); surrounding blanks are dropped and every `-` reads
//!   as `.pre.`;
//! - the version splits into segments, runs of digits (numbers, of any size) and runs
//!   of letters (strings); `.` only separates;
//! - a version with a letter is a prerelease;
//! - comparison uses the *canonical segments*: the numbers before the first string
//!   and the segments from it, each part without its trailing zeros
//!   (`1.0.a` = `1.0.0.a`, `1.0` = `1`); then segment by segment, missing ones as 0,
//!   numbers numerically, strings byte-wise (case matters), a string below a number.
//!
//! Ruby reads a blank version as `0`; here a blank string is refused as
//! [`InvalidVersion::Empty`], since no gem has one.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use super::{InvalidVersion, VersionError};

/// A valid RubyGems version.
///
/// Equality, ordering and hashing follow `Gem::Version#<=>`: `1.0` = `1` = `1.0.0`,
/// and `1.0.a` = `1.0.0.a`. [`Display`](fmt::Display) prints the version as given.
///
/// ```
/// use trawl_advisory::version::GemVersion;
///
/// let v = |s| GemVersion::parse(s).unwrap();
/// assert!(v("1.0.0.rc1") < v("1.0.0") && v("1.0.0") < v("1.0.1"));
/// assert!(v("2.0.0-beta").is_prerelease());
/// assert!(GemVersion::parse("1.0-").is_err());
/// ```
#[derive(Debug, Clone)]
pub struct GemVersion {
    text: String,
    prerelease: bool,
    canonical: Vec<Segment>,
}

/// One canonical segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Segment {
    /// Digits without leading zeros (`""` is zero).
    Number(Box<str>),
    /// ASCII letters.
    Text(Box<str>),
}

impl GemVersion {
    /// Parses a version, accepting what `Gem::Version.correct?` accepts except a
    /// blank string.
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        let core = validate(input)?;
        let mut segments = Vec::new();
        let bytes = core.as_bytes();
        let mut i = 0;
        // `_segments`: /[0-9]+|[a-z]+/i over the version with `-` read as `.pre.`;
        // the `pre` that a hyphen stands for is a string segment of its own.
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'-' {
                segments.push(Segment::Text("pre".into()));
                i += 1;
                continue;
            }
            let run = |pred: fn(&u8) -> bool| bytes[i..].iter().take_while(|c| pred(c)).count();
            if b.is_ascii_digit() {
                let len = run(u8::is_ascii_digit);
                let digits = core[i..i + len].trim_start_matches('0');
                segments.push(Segment::Number(digits.into()));
                i += len;
            } else if b.is_ascii_alphabetic() {
                let len = run(u8::is_ascii_alphabetic);
                segments.push(Segment::Text(core[i..i + len].into()));
                i += len;
            } else {
                i += 1;
            }
        }
        let prerelease = segments.iter().any(|s| matches!(s, Segment::Text(_)));
        Ok(Self {
            text: input.to_owned(),
            prerelease,
            canonical: canonical_segments(segments),
        })
    }

    /// Compares with `other` parsed as a version; fails as [`parse`](Self::parse)
    /// would on `other`.
    pub(crate) fn cmp_str(&self, other: &str) -> Result<Ordering, VersionError> {
        Ok(self.cmp(&Self::parse(other)?))
    }

    /// Whether the version has a letter (`Gem::Version#prerelease?`).
    pub fn is_prerelease(&self) -> bool {
        self.prerelease
    }

    /// The version as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The canonical segments joined with `.` (`Gem::Version#canonical_segments`),
    /// e.g. `1.0.0-rc1` → `1.pre.rc.1`.
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        for (i, segment) in self.canonical.iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            match segment {
                Segment::Number(digits) if digits.is_empty() => out.push('0'),
                Segment::Number(s) | Segment::Text(s) => out.push_str(s),
            }
        }
        out
    }
}

/// Whether `Gem::Version.correct?` accepts `input` (a blank string included).
pub fn is_correct(input: &str) -> bool {
    match validate(input) {
        Ok(_) => true,
        Err(e) => e.reason == InvalidVersion::Empty,
    }
}

/// Compares two version strings as `Gem::Version#<=>` does.
///
/// Fails if either string is not a version (see [`GemVersion::parse`]).
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    GemVersion::parse(a)?.cmp_str(b)
}

/// Ruby's `\s`.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Checks `ANCHORED_VERSION_PATTERN` and returns the version without its blanks.
fn validate(input: &str) -> Result<&str, VersionError> {
    let err = |reason| Err(VersionError::new(input, reason));
    let core = input.trim_matches(|c: char| c.is_ascii() && is_space(c as u8));
    if core.is_empty() {
        return err(InvalidVersion::Empty);
    }
    let b = core.as_bytes();
    let mut i = 0;
    let run = |i: usize, pred: &dyn Fn(u8) -> bool| b[i..].iter().take_while(|&&c| pred(c)).count();
    let digits = run(i, &|c| c.is_ascii_digit());
    if digits == 0 {
        return err(InvalidVersion::NotGem);
    }
    i += digits;
    // (?>\.[0-9a-zA-Z]+)*
    while i < b.len() && b[i] == b'.' {
        let len = run(i + 1, &|c| c.is_ascii_alphanumeric());
        if len == 0 {
            break;
        }
        i += 1 + len;
    }
    // (-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?
    if i < b.len() && b[i] == b'-' {
        let label = |c: u8| c.is_ascii_alphanumeric() || c == b'-';
        let len = run(i + 1, &label);
        if len > 0 {
            i += 1 + len;
            while i < b.len() && b[i] == b'.' {
                let len = run(i + 1, &label);
                if len == 0 {
                    break;
                }
                i += 1 + len;
            }
        }
    }
    if i == b.len() {
        Ok(core)
    } else {
        err(InvalidVersion::NotGem)
    }
}

/// `Gem::Version#canonical_segments`.
fn canonical_segments(mut segments: Vec<Segment>) -> Vec<Segment> {
    let is_zero = |s: &Segment| matches!(s, Segment::Number(d) if d.is_empty());
    let string_start = segments
        .iter()
        .position(|s| matches!(s, Segment::Text(_)))
        .unwrap_or(segments.len());
    let mut strings = segments.split_off(string_start);
    while segments.last().is_some_and(is_zero) {
        segments.pop();
    }
    while strings.last().is_some_and(is_zero) {
        strings.pop();
    }
    segments.append(&mut strings);
    segments
}

/// A segment as (is a string, text); a missing segment is the number 0.
fn view(segment: Option<&Segment>) -> (bool, &str) {
    match segment {
        None => (false, ""),
        Some(Segment::Number(digits)) => (false, digits),
        Some(Segment::Text(text)) => (true, text),
    }
}

fn cmp_segment(a: Option<&Segment>, b: Option<&Segment>) -> Ordering {
    match (view(a), view(b)) {
        ((false, a), (false, b)) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
        ((true, a), (true, b)) => a.as_bytes().cmp(b.as_bytes()),
        ((true, _), (false, _)) => Ordering::Less,
        ((false, _), (true, _)) => Ordering::Greater,
    }
}

impl FromStr for GemVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for GemVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Ord for GemVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (&self.canonical, &other.canonical);
        (0..a.len().max(b.len()))
            .map(|i| cmp_segment(a.get(i), b.get(i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialOrd for GemVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for GemVersion {
    fn eq(&self, other: &Self) -> bool {
        // Canonical segments never end in a zero, so padding with zeros can only make
        // identical lists equal.
        self.canonical == other.canonical
    }
}

impl Eq for GemVersion {}

impl Hash for GemVersion {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.canonical.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> GemVersion {
        GemVersion::parse(s).expect("valid")
    }

    #[test]
    fn ordering() {
        // From RubyGems' own test_gem_version.rb expectations.
        let ascending = [
            "0.0.1", "1.0.a", "1.0.b1", "1.0.rc1", "1.0", "1.0.1", "1.2.b1", "1.2.b2", "1.2",
            "1.8.2", "5.a", "5.x", "5.0",
        ];
        for pair in ascending.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(v("1.0.a"), v("1.0.0.a"));
        assert_eq!(v("1.0"), v("1"));
        assert_eq!(v("1.0.0-rc1"), v("1.0.0.pre.rc1"));
        assert!(v("1.A") < v("1.a"), "strings compare byte-wise");
        assert!(v("1.2.b1").is_prerelease() && !v("1.2").is_prerelease());
        assert_eq!(v(" 1.0.0-rc1\n").canonical(), "1.pre.rc.1");
    }

    #[test]
    fn validity() {
        for ok in ["1", "1.0.a", "1-1", "1--1", "1.0-a.b-c", " 2\t", "1.0a"] {
            assert!(GemVersion::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["1.", "1-", "1.0-", "a", "1..0", "1.0 1", "junk", "1.0.é"] {
            assert_eq!(
                GemVersion::parse(bad).expect_err(bad).reason,
                InvalidVersion::NotGem,
                "{bad}"
            );
        }
        assert!(is_correct("  ") && !is_correct("1.0-"));
    }
}
