//! Python package versions (PyPI), as PEP 440 defines them
//! (<https://peps.python.org/pep-0440/>) and Python's `packaging.version.Version`
//! implements them: the reference pip uses, which this module follows exactly.
//!
//! `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`, with every spelling PEP 440's
//! normalisation accepts, case-insensitively:
//! - leading and trailing whitespace (Python's `\s`: Unicode whitespace and the
//!   ASCII separators `\x1c`–`\x1f`), a leading `v`;
//! - `.`, `-` or `_` (or nothing) before a pre-, post- or dev-release tag and
//!   between the tag and its number, which may be left out (`1.0rc` = `1.0rc0`);
//! - pre-release spellings `alpha` = `a`, `beta` = `b`, `c` = `pre` = `preview` =
//!   `rc`; post-release spellings `rev` = `r` = `post`, and the implicit post
//!   release `1.0-1` = `1.0.post1`;
//! - local versions with `.`, `-` or `_` separators (`+ubuntu-1` = `+ubuntu.1`).
//!
//! Ordering is `packaging`'s: epoch, then the release compared numerically with
//! trailing zeros ignored (`1.0.0 == 1`), then dev-only < `a` < `b` < `rc` < final,
//! each followed by its post releases; a dev release sorts before the version it
//! develops (`1.0a1.dev1 < 1.0a1 < 1.0a1.post1.dev1 < 1.0a1.post1`). A version
//! without a local part sorts before the same version with one; local parts
//! compare segment by segment, numbers numerically and above strings, strings
//! case-insensitively.
//!
//! Numbers have no size limit, as in Python, except the one `int()` has: a number
//! of more than 4,300 digits makes `packaging` raise `ValueError` (CPython's
//! integer-string conversion limit), so it is invalid here too.
//!
//! # Versions that are not PEP 440
//!
//! `packaging` (since 22.0) raises `InvalidVersion` for anything else, such as
//! `2.0-final`, `1.0.0-SNAPSHOT` or `0.1dev-r1234`, and pip skips such versions.
//! Here they fail to parse with a typed [`VersionError`]
//! ([`InvalidVersion::Pep440`]): an installed version that does not parse makes
//! the query fail (`QueryError::InvalidVersion`), and a range bound that does not
//! parse drops its range with a feed warning. Neither is ever matched or passed
//! over silently. An OSV `versions` entry that does not parse still matches an
//! installed version written identically.
//!
//! # Why not a crate
//!
//! `pep440_rs` (astral's, the parser uv grew from) agrees with `packaging` on the
//! ordering of every version both accept, but stores numbers in 64 bits and so
//! rejects versions that are on PyPI and that pip installs (`20210609131134657401`,
//! `1.99999999999999999999999`, `2.1.1.post230829038032890382908901890812`), and it
//! does not trim the whitespace `packaging` trims. Both were found by the
//! differential test (`tests/pypi_differential.rs`), which holds this module to
//! `packaging` over real PyPI versions and generated ones.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use super::{InvalidVersion, VersionError};

/// CPython's default limit on the digits `int()` converts
/// (`sys.int_info.default_max_str_digits`).
const MAX_DIGITS: usize = 4300;

/// A valid PEP 440 version, ordered as `packaging.version.Version` orders it.
///
/// Equality and hashing follow the ordering (`1.0` = `1.0.0` = `v1.0`);
/// [`Display`](fmt::Display) prints the version as given, [`normalized`]
/// (Self::normalized) as `str(Version(...))` would.
///
/// ```
/// use trawl_advisory::Pep440Version;
///
/// let v = |s: &str| Pep440Version::parse(s).unwrap();
/// assert_eq!(v("1.0RC1"), v("1.0rc1"));
/// assert_eq!(v("v1.0-1").normalized(), "1.0.post1");
/// assert!(v("1.0.dev0") < v("1.0a1") && v("1.0a1") < v("1.0") && v("1.0") < v("1.0.post1"));
/// assert!(v("1.0") < v("1.0+local") && v("1.0+abc") < v("1.0+1"));
/// assert!(Pep440Version::parse("2.0-final").is_err());
/// ```
#[derive(Debug, Clone)]
pub struct Pep440Version {
    text: String,
    epoch: Number,
    /// As written; comparisons ignore trailing zeros.
    release: Vec<Number>,
    pre: Option<(PreKind, Number)>,
    post: Option<Number>,
    dev: Option<Number>,
    /// Empty when there is no local part (PEP 440 forbids an empty one).
    local: Vec<LocalSegment>,
}

/// Why a string is not a PEP 440 version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Pep440Error {
    /// `packaging` raises `InvalidVersion`: the text does not follow PEP 440's
    /// grammar from this byte offset on.
    #[error("not a PEP 440 version: invalid from byte {offset}")]
    Syntax {
        /// Byte offset of the first character the grammar cannot take.
        offset: usize,
    },
    /// A number has more digits than Python's `int()` converts, so `packaging`
    /// raises `ValueError`.
    #[error("a number has more than {MAX_DIGITS} digits")]
    TooManyDigits,
}

/// A non-negative integer of any size: the common ones inline, the rest as their
/// digits without leading zeros, which then order by length, then lexically.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Number {
    Small(u64),
    Big(Box<str>),
}

impl Number {
    const ZERO: Number = Number::Small(0);

    fn from_digits(digits: &str) -> Number {
        let digits = digits.trim_start_matches('0');
        match digits.parse::<u64>() {
            Ok(n) => Number::Small(n),
            Err(_) if digits.is_empty() => Number::ZERO,
            Err(_) => Number::Big(digits.into()),
        }
    }

    fn is_zero(&self) -> bool {
        *self == Number::ZERO
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Number::Small(a), Number::Small(b)) => a.cmp(b),
            (Number::Small(_), Number::Big(_)) => Ordering::Less,
            (Number::Big(_), Number::Small(_)) => Ordering::Greater,
            (Number::Big(a), Number::Big(b)) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
        }
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Small(n) => n.fmt(f),
            Number::Big(digits) => f.write_str(digits),
        }
    }
}

/// Pre-release kinds, in their order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum PreKind {
    Alpha,
    Beta,
    Rc,
}

impl PreKind {
    fn as_str(self) -> &'static str {
        match self {
            PreKind::Alpha => "a",
            PreKind::Beta => "b",
            PreKind::Rc => "rc",
        }
    }
}

/// A local-version segment: strings (lower-cased) sort before numbers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum LocalSegment {
    Text(Box<str>),
    Number(Number),
}

impl fmt::Display for LocalSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalSegment::Text(s) => f.write_str(s),
            LocalSegment::Number(n) => n.fmt(f),
        }
    }
}

impl Pep440Version {
    /// Parses a version, accepting exactly what `packaging.version.Version`
    /// accepts.
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        Parser::new(input)
            .version()
            .map_err(|reason| VersionError::new(input, InvalidVersion::Pep440(reason)))
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

    /// The normalised form, as `str(packaging.version.Version(...))` writes it:
    /// `1!2.0rc1.post0.dev3+ubuntu.1`.
    pub fn normalized(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_normalized(&mut out);
        out
    }

    fn write_normalized(&self, out: &mut String) -> fmt::Result {
        use fmt::Write;
        if !self.epoch.is_zero() {
            write!(out, "{}!", self.epoch)?;
        }
        for (i, n) in self.release.iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            write!(out, "{n}")?;
        }
        if let Some((kind, n)) = &self.pre {
            write!(out, "{}{n}", kind.as_str())?;
        }
        if let Some(n) = &self.post {
            write!(out, ".post{n}")?;
        }
        if let Some(n) = &self.dev {
            write!(out, ".dev{n}")?;
        }
        for (i, segment) in self.local.iter().enumerate() {
            out.push(if i == 0 { '+' } else { '.' });
            write!(out, "{segment}")?;
        }
        Ok(())
    }

    /// Whether this is a pre-release (`a`, `b`, `rc`) or a development release,
    /// which pip installs only when asked to.
    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some() || self.dev.is_some()
    }

    /// The release numbers without trailing zeros: what comparisons see.
    fn trimmed_release(&self) -> &[Number] {
        let end = self
            .release
            .iter()
            .rposition(|n| !n.is_zero())
            .map_or(0, |i| i + 1);
        &self.release[..end]
    }

    /// `packaging`'s suffix key: (pre rank, pre number), post (absent first),
    /// dev (present first). A dev release without pre or post ranks before `a`.
    fn suffix_key(&self) -> (i8, &Number, Option<&Number>, (bool, &Number)) {
        let (pre_rank, pre_number) = match (&self.pre, &self.post, &self.dev) {
            (None, None, Some(_)) => (-1, &Number::ZERO),
            (None, _, _) => (3, &Number::ZERO),
            (Some((kind, n)), _, _) => (*kind as i8, n),
        };
        let dev = match &self.dev {
            Some(n) => (false, n),
            None => (true, &Number::ZERO),
        };
        (pre_rank, pre_number, self.post.as_ref(), dev)
    }
}

/// Compares two version strings as `packaging` does; fails if either is not a
/// PEP 440 version.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Pep440Version::parse(a)?.cmp_str(b)
}

impl Ord for Pep440Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| self.trimmed_release().cmp(other.trimmed_release()))
            .then_with(|| self.suffix_key().cmp(&other.suffix_key()))
            .then_with(|| match (self.local.is_empty(), other.local.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Less,
                (false, true) => Ordering::Greater,
                (false, false) => self.local.cmp(&other.local),
            })
    }
}

impl PartialOrd for Pep440Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Pep440Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pep440Version {}

impl Hash for Pep440Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.epoch.hash(state);
        self.trimmed_release().hash(state);
        self.suffix_key().hash(state);
        self.local.hash(state);
    }
}

impl FromStr for Pep440Version {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Pep440Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Python's `\s` on `str`: Unicode whitespace plus the ASCII information
/// separators, which `str.isspace()` counts too.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// A hand-written form of `packaging`'s `VERSION_PATTERN` (a regular expression
/// whose optional groups are possessive, so a greedy left-to-right reading with
/// one step of look-ahead is the same language).
struct Parser<'a> {
    input: &'a str,
    bytes: &'a [u8],
    pos: usize,
    end: usize,
    longest_number: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        let trimmed_end = input.trim_end_matches(is_python_space).len();
        let start = input.len() - input.trim_start_matches(is_python_space).len();
        Parser {
            input,
            bytes: input.as_bytes(),
            pos: start.min(trimmed_end),
            end: trimmed_end,
            longest_number: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        (self.pos < self.end).then(|| self.bytes[self.pos])
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        let at = self.pos + offset;
        (at < self.end).then(|| self.bytes[at])
    }

    fn syntax_error(&self) -> Pep440Error {
        Pep440Error::Syntax { offset: self.pos }
    }

    /// The digits at `at` (ASCII only), as a byte count.
    fn digits_at(&self, at: usize) -> usize {
        self.bytes[at.min(self.end)..self.end]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    }

    fn number(&mut self) -> Option<Number> {
        let len = self.digits_at(self.pos);
        if len == 0 {
            return None;
        }
        let digits = &self.input[self.pos..self.pos + len];
        self.pos += len;
        self.longest_number = self.longest_number.max(len);
        Some(Number::from_digits(digits))
    }

    /// Whether the (ASCII, case-insensitive) word starts at `at`.
    fn word_at(&self, at: usize, word: &str) -> bool {
        self.end >= at + word.len()
            && self.bytes[at..at + word.len()].eq_ignore_ascii_case(word.as_bytes())
    }

    fn separator_len(&self) -> usize {
        usize::from(matches!(self.peek(), Some(b'.' | b'_' | b'-')))
    }

    /// `[._-]?(word1|word2|…)[._-]?N?` at the current position: which word (its
    /// index in `words`) and the number, or nothing consumed.
    fn tagged(&mut self, words: &[&str]) -> Option<(usize, Option<Number>)> {
        let at = self.pos + self.separator_len();
        let (index, word) = words
            .iter()
            .enumerate()
            .find(|(_, word)| self.word_at(at, word))?;
        self.pos = at + word.len();
        self.pos += self.separator_len();
        Some((index, self.number()))
    }

    fn version(mut self) -> Result<Pep440Version, Pep440Error> {
        if matches!(self.peek(), Some(b'v' | b'V')) {
            self.pos += 1;
        }
        let mut epoch = Number::ZERO;
        let first = self.number().ok_or_else(|| self.syntax_error())?;
        let mut release = vec![first];
        if self.peek() == Some(b'!') {
            self.pos += 1;
            epoch = release.pop().unwrap_or(Number::ZERO);
            release.push(self.number().ok_or_else(|| self.syntax_error())?);
        }
        while self.peek() == Some(b'.') && self.digits_at(self.pos + 1) > 0 {
            self.pos += 1;
            if let Some(n) = self.number() {
                release.push(n);
            }
        }

        // Alternation order matters only where one word starts another; the
        // longer is listed first, as in the pattern.
        const PRE: [&str; 8] = ["alpha", "a", "beta", "b", "preview", "pre", "c", "rc"];
        let pre = self.tagged(&PRE).map(|(index, n)| {
            let kind = match PRE[index] {
                "alpha" | "a" => PreKind::Alpha,
                "beta" | "b" => PreKind::Beta,
                _ => PreKind::Rc,
            };
            (kind, n.unwrap_or(Number::ZERO))
        });

        let post = if self.peek() == Some(b'-') && self.digits_at(self.pos + 1) > 0 {
            self.pos += 1;
            self.number()
        } else {
            self.tagged(&["post", "rev", "r"])
                .map(|(_, n)| n.unwrap_or(Number::ZERO))
        };

        let dev = self
            .tagged(&["dev"])
            .map(|(_, n)| n.unwrap_or(Number::ZERO));

        let mut local = Vec::new();
        if self.peek() == Some(b'+') {
            self.pos += 1;
            loop {
                let len = self.bytes[self.pos..self.end]
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric())
                    .count();
                if len == 0 {
                    return Err(self.syntax_error());
                }
                let segment = &self.input[self.pos..self.pos + len];
                self.pos += len;
                local.push(if segment.bytes().all(|b| b.is_ascii_digit()) {
                    self.longest_number = self.longest_number.max(len);
                    LocalSegment::Number(Number::from_digits(segment))
                } else {
                    LocalSegment::Text(segment.to_ascii_lowercase().into())
                });
                if matches!(self.peek(), Some(b'.' | b'_' | b'-'))
                    && self.peek_at(1).is_some_and(|b| b.is_ascii_alphanumeric())
                {
                    self.pos += 1;
                } else {
                    break;
                }
            }
        }

        if self.pos != self.end {
            return Err(self.syntax_error());
        }
        if self.longest_number > MAX_DIGITS {
            return Err(Pep440Error::TooManyDigits);
        }
        Ok(Pep440Version {
            text: self.input.to_owned(),
            epoch,
            release,
            pre,
            post,
            dev,
            local,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Pep440Version {
        Pep440Version::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn normalisation() {
        let cases = [
            ("1.0RC1", "1.0rc1"),
            ("1.0-post1", "1.0.post1"),
            ("1.0.post", "1.0.post0"),
            ("v1.0", "1.0"),
            ("V1.0", "1.0"),
            ("1.0-1", "1.0.post1"),
            ("1.0alpha", "1.0a0"),
            ("1.0.beta.2", "1.0b2"),
            ("1.0c1", "1.0rc1"),
            ("1.0pre1", "1.0rc1"),
            ("1.0-preview_1", "1.0rc1"),
            ("1.0rev2", "1.0.post2"),
            ("1.0r", "1.0.post0"),
            ("1.0_dev-3", "1.0.dev3"),
            (" \t1.0\n", "1.0"),
            ("\x1c1.0\u{85}", "1.0"),
            ("01!001.010", "1!1.10"),
            ("0!1.0", "1.0"),
            ("1.0+Ubuntu-1_00", "1.0+ubuntu.1.0"),
            ("1.0a.post1", "1.0a0.post1"),
            ("1.0rc-", "1.0rc0"),
            ("1.0a--1", "1.0a0.post1"),
            ("1.99999999999999999999999", "1.99999999999999999999999"),
        ];
        for (input, normal) in cases {
            assert_eq!(v(input).normalized(), normal, "{input:?}");
            assert_eq!(v(input).as_str(), input);
        }
    }

    #[test]
    fn ordering() {
        let sorted = [
            "1.0.dev0",
            "1.0a1.dev1",
            "1.0a1",
            "1.0a1.post1.dev1",
            "1.0a1.post1",
            "1.0b1",
            "1.0rc1",
            "1.0",
            "1.0+abc",
            "1.0+abc.1",
            "1.0+1",
            "1.0+2.abc",
            "1.0+10",
            "1.0.post1.dev1",
            "1.0.post1",
            "1.0.1",
            "1.99999999999999999999",
            "1.100000000000000000000",
            "1!0.1",
        ];
        for pair in sorted.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(v("1.0.0"), v("1"));
        assert_eq!(v("1.0+ab-1"), v("1.0+AB.01"));
        assert_eq!(compare("1.0", "1.0.post0"), Ok(Ordering::Less));
    }

    #[test]
    fn invalid() {
        for (input, offset) in [
            ("", 0),
            ("2.0-final", 3),
            ("1.0.0-SNAPSHOT", 5),
            ("0.1dev-r1234", 7),
            ("1..0", 1),
            ("1.0+", 4),
            ("1.0+a..b", 5),
            ("\u{feff}1.0", 0),
            ("١.٠", 0),
            ("1!", 2),
            ("1.0a1b1", 5),
        ] {
            let err = Pep440Version::parse(input).expect_err(input);
            assert_eq!(
                err.reason,
                InvalidVersion::Pep440(Pep440Error::Syntax { offset }),
                "{input:?}"
            );
        }
        let long = format!("1.{}", "0".repeat(MAX_DIGITS + 1));
        assert_eq!(
            Pep440Version::parse(&long).expect_err("too long").reason,
            InvalidVersion::Pep440(Pep440Error::TooManyDigits)
        );
        assert!(Pep440Version::parse(&format!("1.{}", "0".repeat(MAX_DIGITS))).is_ok());
    }
}
