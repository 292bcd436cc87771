//! Alpine package versions: `digits{.digits}[letter]{_suffix[digits]}[~hash][-rN]`.
//!
//! The format is documented in `apk-version(8)` and Alpine's APKBUILD reference
//! (<https://wiki.alpinelinux.org/wiki/APKBUILD_Reference#pkgver>); its definition is
//! apk-tools' `src/version.c` (<https://gitlab.alpinelinux.org/alpine/apk-tools>), of
//! which this is a hand-written port (no crate implements it). Every vector of
//! apk-tools' own `test/unit/version.data` holds (`tests/apk_version_data.rs`).
//!
//! Ordering, token by token:
//! - the first number and `.`-separated numbers compare numerically, except that a
//!   `.`-number with a leading zero compares as a string with the other
//!   (`1.01 < 1.1`, `8.2.0015 < 8.2.002`);
//! - one lower-case letter may follow the numbers (`1.0a > 1.0`);
//! - suffixes: `_alpha < _beta < _pre < _rc <` (none) `< _cvs < _svn < _git < _hg <
//!   _p`, each with an optional number;
//! - `~hash` (lower-case hex, a commit id) compares as a string;
//! - `-rN` is the package revision, numeric;
//! - when one version runs out first, it is older unless the other continues with a
//!   pre-release suffix (`1.0_rc1 < 1.0 < 1.0-r1 < 1.0.1`).
//!
//! Numbers are read into 64 bits with wrap-around, as apk does.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use super::{InvalidVersion, VersionError};

/// A valid Alpine package version.
///
/// Equality, ordering and hashing follow apk: `1.0-r0` and `1.0-r00` are equal, but
/// `1.0` and `1.00` are not (the leading zero makes it a string comparison).
/// [`Display`](fmt::Display) prints the version as given.
#[derive(Debug, Clone)]
pub struct ApkVersion {
    text: String,
}

impl ApkVersion {
    /// Parses a version, accepting exactly what `apk_version_validate()` accepts.
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        validate(input)?;
        Ok(Self {
            text: input.to_owned(),
        })
    }

    /// Compares with `other` as a version, without allocating; fails as
    /// [`parse`](Self::parse) would on `other`.
    pub(crate) fn cmp_str(&self, other: &str) -> Result<Ordering, VersionError> {
        validate(other)?;
        Ok(compare_tokens(
            self.text.as_bytes(),
            other.as_bytes(),
            false,
        ))
    }

    /// The version as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The package revision (`N` of `-rN`), 0 when absent.
    pub fn revision(&self) -> u64 {
        let mut tokens = Tokens::new(self.text.as_bytes());
        loop {
            let token = tokens.next_token();
            match token.kind {
                Kind::RevisionNo => return token.number,
                Kind::End | Kind::Invalid => return 0,
                _ => {}
            }
        }
    }
}

/// `apk_version_validate()`, with the reason for a rejection.
fn validate(input: &str) -> Result<(), VersionError> {
    if input.is_empty() {
        return Err(VersionError::new(input, InvalidVersion::Empty));
    }
    let mut tokens = Tokens::new(input.as_bytes());
    loop {
        match tokens.next_token().kind {
            Kind::End => return Ok(()),
            Kind::Invalid => {
                return Err(VersionError::new(
                    input,
                    InvalidVersion::ApkSyntax {
                        offset: tokens.invalid_at,
                    },
                ));
            }
            _ => {}
        }
    }
}

/// Compares two strings exactly as `apk_version_compare()` does, valid or not.
///
/// For invalid versions apk still gives an answer (the common valid prefix decides,
/// then the token kinds); this reproduces it. Prefer [`ApkVersion`] for data.
pub fn compare(a: &str, b: &str) -> Ordering {
    compare_tokens(a.as_bytes(), b.as_bytes(), false)
}

/// apk's fuzzy comparison (`~` in dependencies, `apk version -t` with `~`):
/// [`Ordering::Equal`] when every token of `prefix` matches the start of `version`,
/// so `3.6.9 ~ 3.6`; otherwise the ordering of [`compare`].
pub fn compare_fuzzy(version: &str, prefix: &str) -> Ordering {
    compare_tokens(version.as_bytes(), prefix.as_bytes(), true)
}

/// Whether apk considers `version` valid (`apk_version_validate()`).
pub fn is_valid(version: &str) -> bool {
    ApkVersion::parse(version).is_ok()
}

impl FromStr for ApkVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ApkVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Ord for ApkVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_tokens(self.text.as_bytes(), other.text.as_bytes(), false)
    }
}

impl PartialOrd for ApkVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for ApkVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ApkVersion {}

impl Hash for ApkVersion {
    /// Hashes what `token_cmp` looks at, so that equal versions hash equally.
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut tokens = Tokens::new(self.text.as_bytes());
        loop {
            let token = tokens.next_token();
            (token.kind as u8).hash(state);
            match token.kind {
                Kind::End | Kind::Invalid => return,
                Kind::Digit if token.value.first() == Some(&b'0') => token.value.hash(state),
                Kind::InitialDigit | Kind::Digit | Kind::SuffixNo | Kind::RevisionNo => {
                    token.number.hash(state)
                }
                Kind::Suffix => token.suffix.hash(state),
                Kind::Letter | Kind::CommitHash => token.value.hash(state),
            }
        }
    }
}

/// Token kinds in apk's order: a version that ends where the other goes on is
/// compared by these (a later kind is older).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    InitialDigit,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    CommitHash,
    RevisionNo,
    End,
    Invalid,
}

/// Suffix ranks; below [`SUFFIX_NONE`] is a pre-release.
const PRE_SUFFIXES: [&[u8]; 4] = [b"alpha", b"beta", b"pre", b"rc"];
const POST_SUFFIXES: [&[u8]; 5] = [b"cvs", b"svn", b"git", b"hg", b"p"];
const SUFFIX_NONE: u8 = PRE_SUFFIXES.len() as u8;

fn suffix_rank(name: &[u8]) -> Option<u8> {
    if let Some(i) = PRE_SUFFIXES.iter().position(|s| *s == name) {
        return u8::try_from(i).ok();
    }
    let i = POST_SUFFIXES.iter().position(|s| *s == name)?;
    u8::try_from(i + 1).ok().map(|i| i + SUFFIX_NONE)
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    number: u64,
    value: &'a [u8],
    suffix: u8,
}

/// apk's `token_first` / `token_next` as an iterator-like cursor.
struct Tokens<'a> {
    rest: &'a [u8],
    input_len: usize,
    current: Option<Token<'a>>,
    /// Byte offset where the string stopped being valid.
    invalid_at: usize,
}

impl<'a> Tokens<'a> {
    fn new(input: &'a [u8]) -> Self {
        // C strings end at the first NUL.
        let end = input.iter().position(|&b| b == 0).unwrap_or(input.len());
        Self {
            rest: &input[..end],
            input_len: end,
            current: None,
            invalid_at: 0,
        }
    }

    fn offset(&self) -> usize {
        self.input_len - self.rest.len()
    }

    fn digits(&mut self, kind: Kind) -> Token<'a> {
        let len = self.rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let (value, rest) = self.rest.split_at(len);
        self.rest = rest;
        let number = value.iter().fold(0u64, |n, d| {
            n.wrapping_mul(10).wrapping_add(u64::from(d - b'0'))
        });
        Token {
            kind: if value.is_empty() {
                Kind::Invalid
            } else {
                kind
            },
            number,
            value,
            suffix: 0,
        }
    }

    fn invalid(&mut self) -> Token<'a> {
        self.invalid_at = self.offset();
        Token {
            kind: Kind::Invalid,
            number: 0,
            value: &[],
            suffix: 0,
        }
    }

    fn next_token(&mut self) -> Token<'a> {
        let token = match self.current {
            None => {
                let token = self.digits(Kind::InitialDigit);
                if token.kind == Kind::Invalid {
                    self.invalid_at = self.offset();
                }
                token
            }
            Some(previous) if matches!(previous.kind, Kind::End | Kind::Invalid) => previous,
            Some(previous) => self.after(previous.kind),
        };
        self.current = Some(token);
        token
    }

    /// The token following one of kind `previous`, validating that it may follow.
    fn after(&mut self, previous: Kind) -> Token<'a> {
        let Some(&first) = self.rest.first() else {
            return Token {
                kind: Kind::End,
                number: 0,
                value: &[],
                suffix: 0,
            };
        };
        match first {
            b'a'..=b'z' => {
                if previous > Kind::Digit {
                    return self.invalid();
                }
                let (value, rest) = self.rest.split_at(1);
                self.rest = rest;
                Token {
                    kind: Kind::Letter,
                    number: 0,
                    value,
                    suffix: 0,
                }
            }
            b'.' | b'0'..=b'9' => {
                if first == b'.' {
                    if previous > Kind::Digit {
                        return self.invalid();
                    }
                    self.rest = &self.rest[1..];
                }
                let kind = match previous {
                    Kind::InitialDigit | Kind::Digit => Kind::Digit,
                    Kind::Suffix => Kind::SuffixNo,
                    _ => return self.invalid(),
                };
                let token = self.digits(kind);
                if token.kind == Kind::Invalid {
                    self.invalid_at = self.offset();
                }
                token
            }
            b'_' => {
                if previous > Kind::SuffixNo {
                    return self.invalid();
                }
                let name = &self.rest[1..];
                let len = name.iter().take_while(|b| b.is_ascii_lowercase()).count();
                let (value, rest) = name.split_at(len);
                let Some(suffix) = suffix_rank(value) else {
                    return self.invalid();
                };
                self.rest = rest;
                Token {
                    kind: Kind::Suffix,
                    number: 0,
                    value,
                    suffix,
                }
            }
            b'~' => {
                if previous >= Kind::CommitHash {
                    return self.invalid();
                }
                let hash = &self.rest[1..];
                let len = hash
                    .iter()
                    .take_while(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                    .count();
                if len == 0 {
                    return self.invalid();
                }
                let (value, rest) = hash.split_at(len);
                self.rest = rest;
                Token {
                    kind: Kind::CommitHash,
                    number: 0,
                    value,
                    suffix: 0,
                }
            }
            b'-' => {
                if previous >= Kind::RevisionNo || !self.rest.starts_with(b"-r") {
                    return self.invalid();
                }
                self.rest = &self.rest[2..];
                let token = self.digits(Kind::RevisionNo);
                if token.kind == Kind::Invalid {
                    self.invalid_at = self.offset();
                }
                token
            }
            _ => self.invalid(),
        }
    }
}

/// apk's `token_cmp` for two tokens of the same kind.
fn token_cmp(a: &Token<'_>, b: &Token<'_>) -> Ordering {
    // apk's string sort: bytes, then length.
    let string_sort = |a: &[u8], b: &[u8]| a.cmp(b);
    match a.kind {
        Kind::Digit if a.value.first() == Some(&b'0') || b.value.first() == Some(&b'0') => {
            string_sort(a.value, b.value)
        }
        Kind::InitialDigit | Kind::Digit | Kind::SuffixNo | Kind::RevisionNo => {
            a.number.cmp(&b.number)
        }
        Kind::Letter => a.value.first().cmp(&b.value.first()),
        Kind::Suffix => a.suffix.cmp(&b.suffix),
        Kind::CommitHash | Kind::End | Kind::Invalid => string_sort(a.value, b.value),
    }
}

/// apk's `apk_version_compare_fuzzy()`.
fn compare_tokens(a: &[u8], b: &[u8], fuzzy: bool) -> Ordering {
    let (mut ta, mut tb) = (Tokens::new(a), Tokens::new(b));
    let (mut x, mut y) = (ta.next_token(), tb.next_token());
    while x.kind == y.kind && x.kind < Kind::End {
        let order = token_cmp(&x, &y);
        if order != Ordering::Equal {
            return order;
        }
        x = ta.next_token();
        y = tb.next_token();
    }
    if x.kind == y.kind || (y.kind == Kind::End && fuzzy) {
        return Ordering::Equal;
    }
    if x.kind == Kind::Suffix && x.suffix < SUFFIX_NONE {
        return Ordering::Less;
    }
    if y.kind == Kind::Suffix && y.suffix < SUFFIX_NONE {
        return Ordering::Greater;
    }
    // The version that goes on with an earlier kind of token is newer.
    y.kind.cmp(&x.kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_and_validity() {
        use Ordering::*;
        let cases = [
            ("1.0_rc1", "1.0", Less),
            ("1.0", "1.0-r1", Less),
            ("1.0-r1", "1.0.1", Less),
            ("1.0_p1", "1.0", Greater),
            ("1.0a", "1.0", Greater),
            ("1.0a", "1.0.1", Less),
            ("1.01", "1.1", Less),
            ("1.0-r0", "1.0-r00", Equal),
            ("01.0", "1.0", Equal),
            ("1.0~abc-r1", "1.0~abd-r0", Less),
            ("1.0_alpha", "1.0_beta", Less),
            ("1.0_git20240101", "1.0_p1", Less),
        ];
        for (a, b, want) in cases {
            let (va, vb) = (
                ApkVersion::parse(a).expect("valid"),
                ApkVersion::parse(b).expect("valid"),
            );
            assert_eq!(va.cmp(&vb), want, "{a} vs {b}");
            assert_eq!(vb.cmp(&va), want.reverse(), "{b} vs {a}");
        }
        assert_eq!(ApkVersion::parse("1.2.3-r7").expect("valid").revision(), 7);
        assert_eq!(ApkVersion::parse("1.2.3").expect("valid").revision(), 0);
    }

    #[test]
    fn invalid_versions_name_the_offset() {
        for (input, offset) in [("1.0bc", 4), ("1.0-r", 5), ("a", 0), ("1.0_foo", 3)] {
            let err = ApkVersion::parse(input).expect_err(input);
            assert_eq!(err.reason, InvalidVersion::ApkSyntax { offset }, "{input}");
        }
        assert_eq!(
            ApkVersion::parse("").expect_err("empty").reason,
            InvalidVersion::Empty
        );
    }
}
