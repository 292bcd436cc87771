//! Debian package versions: `[epoch:]upstream_version[-debian_revision]`.
//!
//! The format is specified in Debian Policy §5.6.12
//! (<https://www.debian.org/doc/debian-policy/ch-controlfields.html#version>) and
//! `deb-version(7)`. This is a hand-written port of dpkg's own `parseversion` and
//! `verrevcmp` (`lib/dpkg/parsehelp.c`, `lib/dpkg/version.c`, dpkg 1.21).
//!
//! Hand-written on purpose: the `debian-packaging` crate, even with no default
//! features, pulls in 335 crates (pgp and async-std among them) for what is about a
//! hundred lines here. Agreement with `dpkg --compare-versions` is proven by a
//! differential test (`tests/dpkg_differential.rs`) over every version string found in
//! the host's dpkg status and apt package lists plus thousands of generated ones.
//!
//! Comparison rules, in dpkg's words:
//! - epochs compare numerically; a missing epoch is 0;
//! - upstream and revision compare with the same algorithm: alternating runs of
//!   non-digits (compared character by character, `~` before end of string before
//!   letters before everything else) and digits (compared numerically, of any
//!   length — no integer is ever built, so huge runs cannot overflow);
//! - the revision starts after the *last* hyphen; a missing revision equals `0`.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use super::{InvalidVersion, VersionError};

/// A parsed Debian package version.
///
/// Equality, ordering and hashing follow dpkg: `1.0`, `1.00`, `0:1.0` and `1.0-0` are
/// all equal. [`Display`](fmt::Display) prints the version exactly as it was given
/// (surrounding blanks trimmed), so parsing and printing round-trips.
#[derive(Debug, Clone)]
pub struct DpkgVersion {
    text: String,
    epoch: u32,
    /// Byte range of the upstream part within `text`.
    upstream: (usize, usize),
    /// Byte offset of the revision within `text` (after the last hyphen), if any.
    revision: Option<usize>,
}

impl DpkgVersion {
    /// Parses a version with dpkg's validity rules.
    ///
    /// Rejected: empty strings, embedded blanks, an empty / non-numeric / negative /
    /// too large (> `i32::MAX`) epoch, nothing after the epoch colon, an empty upstream
    /// part or revision, and characters outside `[A-Za-z0-9.+~-:]` (upstream) or
    /// `[A-Za-z0-9.+~]` (revision). An upstream part not starting with a digit is only a
    /// warning in dpkg, so it is accepted here.
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        let parts = Parts::parse(input)?;
        Ok(Self {
            text: parts.text.to_owned(),
            epoch: parts.epoch,
            upstream: parts.upstream,
            revision: parts.revision,
        })
    }

    fn parts(&self) -> Parts<'_> {
        Parts {
            text: &self.text,
            epoch: self.epoch,
            upstream: self.upstream,
            revision: self.revision,
        }
    }

    /// Compares with `other` parsed as a version, without allocating; fails
    /// as [`parse`](Self::parse) would on `other`.
    pub(crate) fn cmp_str(&self, other: &str) -> Result<Ordering, VersionError> {
        Ok(self.parts().cmp(&Parts::parse(other)?))
    }

    /// The epoch; 0 when the version has none.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The upstream version: between the epoch colon and the last hyphen.
    pub fn upstream(&self) -> &str {
        &self.text[self.upstream.0..self.upstream.1]
    }

    /// The Debian revision after the last hyphen, if the version has one.
    pub fn revision(&self) -> Option<&str> {
        self.revision.map(|start| &self.text[start..])
    }

    /// The version as given, surrounding blanks trimmed.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Compares two version strings exactly as `dpkg --compare-versions` does.
///
/// Fails if either string is not a valid version (see [`DpkgVersion::parse`]).
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(Parts::parse(a)?.cmp(&Parts::parse(b)?))
}

/// A version split into its parts, borrowing its text: what [`DpkgVersion`]
/// holds, without owning it.
#[derive(Debug, Clone, Copy)]
struct Parts<'a> {
    text: &'a str,
    epoch: u32,
    upstream: (usize, usize),
    revision: Option<usize>,
}

impl<'a> Parts<'a> {
    /// dpkg's `parseversion` (see [`DpkgVersion::parse`]).
    fn parse(input: &'a str) -> Result<Self, VersionError> {
        let err = |reason| Err(VersionError::new(input, reason));
        if input.is_empty() {
            return err(InvalidVersion::Empty);
        }
        let text = trim_blanks(input);
        // Most versions use only the characters an upstream part allows; then
        // one pass checks everything but the revision's colons.
        // The same pass finds the first colon and the last hyphen.
        let mut plain = true;
        let (mut first_colon, mut last_hyphen) = (None, None);
        for (i, b) in text.bytes().enumerate() {
            plain &= UPSTREAM_BYTES[usize::from(b)];
            match b {
                b':' if first_colon.is_none() => first_colon = Some(i),
                b'-' => last_hyphen = Some(i),
                _ => {}
            }
        }
        if !plain && text.bytes().any(|b| b == b' ' || b == b'\t') {
            return err(InvalidVersion::EmbeddedBlank);
        }
        if text.is_empty() {
            return err(InvalidVersion::Empty);
        }

        let (epoch, rest_start) = match first_colon {
            Some(colon) => {
                let epoch = match parse_epoch(&text[..colon]) {
                    Ok(epoch) => epoch,
                    Err(reason) => return err(reason),
                };
                if colon + 1 == text.len() {
                    return err(InvalidVersion::NothingAfterColon);
                }
                (epoch, colon + 1)
            }
            None => (0, 0),
        };

        // The last hyphen, if it is after the epoch.
        let (upstream_end, revision) = match last_hyphen.filter(|&at| at >= rest_start) {
            Some(hyphen) => {
                if hyphen + 1 == text.len() {
                    return err(InvalidVersion::EmptyRevision);
                }
                (hyphen, Some(hyphen + 1))
            }
            None => (text.len(), None),
        };
        let upstream = &text[rest_start..upstream_end];
        if upstream.is_empty() {
            return err(InvalidVersion::EmptyUpstream);
        }
        let revision_text = revision.map_or("", |start| &text[start..]);
        if plain && !revision_text.as_bytes().contains(&b':') {
            return Ok(Self {
                text,
                epoch,
                upstream: (rest_start, upstream_end),
                revision,
            });
        }
        let allowed = |b: &u8, extra: &[u8]| b.is_ascii_alphanumeric() || extra.contains(b);
        if let Some(at) = upstream.bytes().position(|b| !allowed(&b, b".-+~:")) {
            // Everything before is ASCII, so `at` starts a character.
            let c = upstream[at..].chars().next().unwrap_or('\u{fffd}');
            return err(InvalidVersion::InvalidUpstreamChar(c));
        }
        if let Some(at) = revision_text.bytes().position(|b| !allowed(&b, b".+~")) {
            let c = revision_text[at..].chars().next().unwrap_or('\u{fffd}');
            return err(InvalidVersion::InvalidRevisionChar(c));
        }
        Ok(Self {
            text,
            epoch,
            upstream: (rest_start, upstream_end),
            revision,
        })
    }

    fn upstream(&self) -> &'a str {
        &self.text[self.upstream.0..self.upstream.1]
    }

    fn revision(&self) -> &'a str {
        self.revision.map_or("", |start| &self.text[start..])
    }

    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(self.upstream(), other.upstream()))
            .then_with(|| verrevcmp(self.revision(), other.revision()))
    }
}

impl FromStr for DpkgVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for DpkgVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Ord for DpkgVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts().cmp(&other.parts())
    }
}

impl PartialOrd for DpkgVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for DpkgVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for DpkgVersion {}

impl Hash for DpkgVersion {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.epoch.hash(state);
        hash_canonical(self.upstream(), state);
        hash_canonical(self.revision().unwrap_or(""), state);
    }
}

/// The bytes an upstream version may hold: `[A-Za-z0-9.+~:-]`.
const UPSTREAM_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'.' | b'+' | b'~' | b':' | b'-');
        b += 1;
    }
    table
};

/// `s` without leading and trailing blanks.
fn trim_blanks(s: &str) -> &str {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let bytes = s.as_bytes();
    let start = bytes.iter().position(|b| !blank(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |i| i + 1);
    // Blanks are ASCII, so both ends are character boundaries.
    s.get(start..end).unwrap_or_default()
}

/// The epoch as C's `strtol` reads it: optional sign, then decimal digits filling the
/// whole field.
fn parse_epoch(field: &str) -> Result<u32, InvalidVersion> {
    let (negative, digits) = match field.as_bytes().first() {
        Some(b'-') => (true, &field[1..]),
        Some(b'+') => (false, &field[1..]),
        _ => (false, field),
    };
    let run = digits.bytes().take_while(u8::is_ascii_digit).count();
    if run == 0 {
        return Err(InvalidVersion::EmptyEpoch);
    }
    if run != digits.len() {
        return Err(InvalidVersion::EpochNotNumber);
    }
    let significant = digits.trim_start_matches('0');
    if significant.is_empty() {
        return Ok(0);
    }
    if negative {
        return Err(InvalidVersion::NegativeEpoch);
    }
    match significant.parse::<u32>() {
        Ok(n) if n <= i32::MAX as u32 => Ok(n),
        _ => Err(InvalidVersion::EpochTooBig),
    }
}

/// dpkg's `order()`: the weight of one non-digit position; `None` is end of string.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

fn is_digit(c: Option<u8>) -> bool {
    c.is_some_and(|c| c.is_ascii_digit())
}

/// dpkg's `verrevcmp()`, over upstream versions or revisions.
fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // Non-digit run, position by position.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let (ac, bc) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        // Digit run, numerically: skip leading zeros, then the longer run wins, then
        // the first differing digit decides.
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while is_digit(a.get(i).copied()) && is_digit(b.get(j).copied()) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if is_digit(a.get(i).copied()) {
            return Ordering::Greater;
        }
        if is_digit(b.get(j).copied()) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

/// Hashes the equivalence class [`verrevcmp`] puts `s` in: the sequence of
/// (non-digit run, digit run without leading zeros) pairs, minus trailing pairs that
/// compare equal to end of string (an empty run and a zero / absent number).
fn hash_canonical<H: Hasher>(s: &str, state: &mut H) {
    let b = s.as_bytes();
    let mut pairs: Vec<(&[u8], &[u8])> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let nd_start = i;
        while i < b.len() && !b[i].is_ascii_digit() {
            i += 1;
        }
        let nd = &b[nd_start..i];
        while i < b.len() && b[i] == b'0' {
            i += 1;
        }
        let d_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        pairs.push((nd, &b[d_start..i]));
    }
    while pairs
        .last()
        .is_some_and(|(nd, d)| nd.is_empty() && d.is_empty())
    {
        pairs.pop();
    }
    pairs.len().hash(state);
    for (nd, d) in pairs {
        nd.hash(state);
        d.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

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
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~", "1.0", Less),
            ("1:0", "2.0", Greater),
            ("0:2.0", "2.0", Equal),
            ("1.0-1", "1.0-1+b1", Less),
            ("1.0+dfsg-1", "1.0-1", Greater),
            ("1.0+dfsg-1", "1.0.1-1", Less),
            ("2.30-1~bpo", "2.30-1", Less),
            ("2.30-1~bpo11+1", "2.30-1~bpo12+1", Less),
            ("3.0.11-1~deb12u2", "3.0.11-1", Less),
            ("2.36-9+deb12u3", "2.36-9+deb12u10", Less),
            ("1.0", "1.00", Equal),
            ("1.0", "1.0-0", Equal),
            ("1.0", "1.", Equal),
            ("1.0a", "1.0", Greater),
            ("1.0a", "1.0+", Less), // letters sort before non-letters
            ("1.0a", "1.0.", Less),
            ("1a", "1A", Greater), // ASCII order among letters
            ("10", "9", Greater),
            ("007", "7", Equal),
            (
                "99999999999999999999999999999999999999",
                "99999999999999999999999999999999999998",
                Greater,
            ),
            ("1.000000000000000000000000000000000000001", "1.1", Equal),
            ("1.2-3-4", "1.2-3", Greater), // revision split at the last hyphen
            ("1:2:3", "1:2:2", Greater),   // colons allowed in upstream after an epoch
            ("2147483647:1", "1:1", Greater),
            ("a1", "1", Greater), // no leading digit: dpkg warns, compares anyway
        ];
        for (a, b, want) in cases {
            assert_eq!(cmp(a, b), want, "{a} vs {b}");
            assert_eq!(cmp(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn parts_and_round_trip() {
        let v = DpkgVersion::parse(" 1:2.30-1~bpo12+1\t").expect("valid");
        assert_eq!(v.epoch(), 1);
        assert_eq!(v.upstream(), "2.30");
        assert_eq!(v.revision(), Some("1~bpo12+1"));
        assert_eq!(v.to_string(), "1:2.30-1~bpo12+1");
        assert_eq!(v.to_string().parse::<DpkgVersion>().expect("valid"), v);
        let v = DpkgVersion::parse("1.0-rc1-2").expect("valid");
        assert_eq!(v.upstream(), "1.0-rc1");
        assert_eq!(v.revision(), Some("2"));
        assert_eq!(DpkgVersion::parse("7").expect("valid").revision(), None);
    }

    #[test]
    fn invalid_versions() {
        let cases = [
            ("", InvalidVersion::Empty),
            ("  ", InvalidVersion::Empty),
            ("1.0 1", InvalidVersion::EmbeddedBlank),
            (":1.0", InvalidVersion::EmptyEpoch),
            ("a:1.0", InvalidVersion::EmptyEpoch),
            ("1a:1.0", InvalidVersion::EpochNotNumber),
            ("-1:1.0", InvalidVersion::NegativeEpoch),
            ("2147483648:1.0", InvalidVersion::EpochTooBig),
            ("99999999999999999999:1", InvalidVersion::EpochTooBig),
            ("1:", InvalidVersion::NothingAfterColon),
            ("1.0-", InvalidVersion::EmptyRevision),
            ("-1", InvalidVersion::EmptyUpstream),
            ("1:-1", InvalidVersion::EmptyUpstream),
            ("1.0_1", InvalidVersion::InvalidUpstreamChar('_')),
            ("1.0é", InvalidVersion::InvalidUpstreamChar('é')),
            ("1.0-1:2", InvalidVersion::EpochNotNumber), // the first colon ends the epoch
            ("1.0-1_2", InvalidVersion::InvalidRevisionChar('_')),
        ];
        for (input, reason) in cases {
            let err = DpkgVersion::parse(input).expect_err(input);
            assert_eq!(err.reason, reason, "{input:?}");
            assert_eq!(err.version, input);
        }
        // strtol accepts a sign; "-0" is not negative.
        assert_eq!(DpkgVersion::parse("+1:2").expect("valid").epoch(), 1);
        assert_eq!(DpkgVersion::parse("-0:2").expect("valid").epoch(), 0);
    }

    #[test]
    fn equal_versions_hash_equal() {
        fn h(s: &str) -> u64 {
            let mut hasher = DefaultHasher::new();
            DpkgVersion::parse(s).expect("valid").hash(&mut hasher);
            hasher.finish()
        }
        for group in [
            &["1.0", "1.00", "0:1.0", "1.0-0", "1.", "01.0-00"][..],
            &["1a", "1a0", "1a00"],
            &["2:1.0-1", "2:1.0-01"],
        ] {
            for s in group {
                assert_eq!(h(s), h(group[0]), "{s} vs {}", group[0]);
                assert_eq!(cmp(s, group[0]), Ordering::Equal);
            }
        }
        assert_ne!(h("1.0"), h("1.0a"));
    }
}
