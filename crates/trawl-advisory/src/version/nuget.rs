//! NuGet package versions, as NuGet.Versioning parses and orders them.
//!
//! NuGet versions are SemVer 2.0 with NuGet's extensions
//! (<https://learn.microsoft.com/en-us/nuget/concepts/package-versioning>): one to four
//! numeric parts (`1`, `1.0` and `1.0.0.0` are `1.0.0`; a fourth, *revision* part is a
//! legacy version), leading zeros allowed and ignored (`1.01` = `1.1`), and release
//! labels compared case-insensitively. This is a hand-written port of
//! `NuGetVersion.TryParse` and `VersionComparer.Default` (`src/NuGet.Core/NuGet.Versioning`
//! in NuGet.Client); no crate implements them. .NET does not run here, so the port is
//! held to NuGet.Versioning's own published test vectors (`tests/nuget_vectors.rs`).
//!
//! Parsing (`NuGetVersion.TryParse`), after trimming blanks:
//! - the version is split at the first `-` or `+` into numbers, release labels (up to
//!   `+`) and metadata;
//! - numbers: one to four `.`-separated non-negative 32-bit integers, each possibly
//!   surrounded by blanks (`1 .2` is `1.2`);
//! - labels: `.`-separated, non-empty, `[0-9A-Za-z-]`, no leading zero in an all-digit
//!   label; metadata: the same, leading zeros allowed.
//!
//! Ordering (`VersionComparer.Default`): major, minor, patch, revision numerically; a
//! version with labels below one without; labels one by one, a label that .NET's
//! `int.TryParse` reads as a number (`-?[0-9]+` within 32 bits) below one it does not,
//! numbers numerically, others case-insensitively; more labels above fewer. Metadata
//! is ignored.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use super::{InvalidVersion, VersionError};

/// A valid NuGet version.
///
/// Equality, ordering and hashing follow `VersionComparer.Default`: `1.0` =
/// `1.0.0.0` = `1.0.0+build`, `1.0.0-BETA` = `1.0.0-beta`. [`Display`](fmt::Display)
/// prints the version as given.
///
/// ```
/// use trawl_advisory::version::NuGetVersion;
///
/// let v = |s| NuGetVersion::parse(s).unwrap();
/// assert_eq!(v("1.0"), v("1.0.0.0"));
/// assert!(v("1.0.0-Beta.2") < v("1.0.0-beta.10") && v("1.0.0-beta.10") < v("1.0.0"));
/// assert_eq!(v("1.02.3.4-RC+build").normalized(), "1.2.3.4-RC");
/// ```
#[derive(Debug, Clone)]
pub struct NuGetVersion {
    text: String,
    numbers: [u32; 4],
    /// Byte ranges of the release labels within `trimmed`.
    labels: Vec<(usize, usize)>,
    /// Byte range of the version without surrounding blanks within `text`.
    trimmed: (usize, usize),
    /// Byte offset of the metadata within `text`, after the `+`.
    metadata: Option<usize>,
}

impl NuGetVersion {
    /// Parses a version as `NuGetVersion.TryParse` does.
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        let err = |reason| VersionError::new(input, reason);
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(err(InvalidVersion::Empty));
        }
        let offset = input.len() - input.trim_start().len();
        let (numbers_part, rest) = match trimmed.find(['-', '+']) {
            Some(i) => (&trimmed[..i], Some(i)),
            None => (trimmed, None),
        };
        // `ParseSections` quirk: a `-` or `+` as the very last character stays in the
        // number part (and makes it invalid).
        let numbers = if rest == Some(trimmed.len() - 1) {
            None
        } else {
            parse_numbers(numbers_part)
        };
        let numbers = numbers.ok_or_else(|| err(InvalidVersion::NotNuGet))?;

        let mut labels = Vec::new();
        let mut metadata = None;
        if let Some(i) = rest {
            let (label_text, meta_at) = if trimmed.as_bytes()[i] == b'+' {
                ("", Some(i + 1))
            } else {
                let after = i + 1;
                match trimmed[after..].find('+') {
                    Some(p) => (&trimmed[after..after + p], Some(after + p + 1)),
                    None => (&trimmed[after..], None),
                }
            };
            if trimmed.as_bytes()[i] == b'-' {
                let mut at = i + 1;
                for label in label_text.split('.') {
                    if !is_valid_part(label, false) {
                        return Err(err(InvalidVersion::NotNuGet));
                    }
                    labels.push((at, at + label.len()));
                    at += label.len() + 1;
                }
            }
            if let Some(m) = meta_at {
                if !trimmed[m..]
                    .split('.')
                    .all(|part| is_valid_part(part, true))
                {
                    return Err(err(InvalidVersion::NotNuGet));
                }
                metadata = Some(offset + m);
            }
        }
        Ok(Self {
            text: input.to_owned(),
            numbers,
            labels,
            trimmed: (offset, offset + trimmed.len()),
            metadata,
        })
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

    /// Major, minor, patch and revision (0 when not given).
    pub fn numbers(&self) -> [u32; 4] {
        self.numbers
    }

    /// The release labels, as written (`1.0.0-RC.1` → `["RC", "1"]`).
    pub fn release_labels(&self) -> impl Iterator<Item = &str> {
        let trimmed = &self.text[self.trimmed.0..self.trimmed.1];
        self.labels.iter().map(move |&(a, b)| &trimmed[a..b])
    }

    /// Whether the version has release labels.
    pub fn is_prerelease(&self) -> bool {
        !self.labels.is_empty()
    }

    /// The build metadata after `+`, if any.
    pub fn metadata(&self) -> Option<&str> {
        self.metadata.map(|m| &self.text[m..self.trimmed.1])
    }

    /// NuGet's normalised form (`ToNormalizedString`): `major.minor.patch`, `.revision`
    /// when it is not 0, `-labels`; no leading zeros, no metadata.
    pub fn normalized(&self) -> String {
        let [major, minor, patch, revision] = self.numbers;
        let mut out = format!("{major}.{minor}.{patch}");
        if revision > 0 {
            out.push_str(&format!(".{revision}"));
        }
        for (i, label) in self.release_labels().enumerate() {
            out.push(if i == 0 { '-' } else { '.' });
            out.push_str(label);
        }
        out
    }
}

/// Compares two version strings as `VersionComparer.Default` does.
///
/// Fails if either string is not a version (see [`NuGetVersion::parse`]).
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    NuGetVersion::parse(a)?.cmp_str(b)
}

/// `TryGetNormalizedVersion`: one to four numbers, blanks allowed around each.
fn parse_numbers(s: &str) -> Option<[u32; 4]> {
    let mut numbers = [0u32; 4];
    let mut sections = s.split('.');
    for (i, section) in sections.by_ref().take(4).enumerate() {
        // NuGet refuses a trailing `.` but reads a missing section as 0 only at the end
        // of the string: `split` yields an empty last section only after a `.`.
        let digits = section.trim_matches(char::is_whitespace);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let value = digits.bytes().try_fold(0u64, |n, b| {
            let n = n * 10 + u64::from(b - b'0');
            (n <= i32::MAX as u64).then_some(n)
        })?;
        numbers[i] = u32::try_from(value).ok()?;
    }
    sections.next().is_none().then_some(numbers)
}

/// `SemanticVersion.IsValidPart`.
fn is_valid_part(s: &str, allow_leading_zeros: bool) -> bool {
    if s.is_empty() {
        return false;
    }
    let b = s.as_bytes();
    if !allow_leading_zeros && b.len() > 1 && b[0] == b'0' && b[1..].iter().all(u8::is_ascii_digit)
    {
        return false;
    }
    b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
}

/// A release label as `CompareRelease` sees it.
#[derive(Debug, PartialEq, Eq, Hash)]
enum Label<'a> {
    /// `int.TryParse` succeeds: an optional `-` and digits within 32 bits.
    Number(i32),
    /// Compared with `StringComparer.OrdinalIgnoreCase`.
    Text(Folded<'a>),
}

/// A label compared ASCII case-insensitively (labels are ASCII).
#[derive(Debug)]
struct Folded<'a>(&'a str);

impl Folded<'_> {
    fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        self.0.bytes().map(|b| b.to_ascii_uppercase())
    }
}

impl PartialEq for Folded<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(other.0)
    }
}

impl Eq for Folded<'_> {}

impl Hash for Folded<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for b in self.bytes() {
            b.hash(state);
        }
        self.0.len().hash(state);
    }
}

fn label(s: &str) -> Label<'_> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = s.parse::<i32>()
    {
        return Label::Number(n);
    }
    Label::Text(Folded(s))
}

fn cmp_label(a: &Label<'_>, b: &Label<'_>) -> Ordering {
    match (a, b) {
        (Label::Number(a), Label::Number(b)) => a.cmp(b),
        (Label::Number(_), Label::Text(_)) => Ordering::Less,
        (Label::Text(_), Label::Number(_)) => Ordering::Greater,
        (Label::Text(a), Label::Text(b)) => a.bytes().cmp(b.bytes()),
    }
}

impl FromStr for NuGetVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for NuGetVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Ord for NuGetVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.numbers.cmp(&other.numbers).then_with(|| {
            match (self.is_prerelease(), other.is_prerelease()) {
                (true, false) => Ordering::Less,
                (false, true) => Ordering::Greater,
                _ => {
                    let mut a = self.release_labels().map(label);
                    let mut b = other.release_labels().map(label);
                    loop {
                        match (a.next(), b.next()) {
                            (None, None) => return Ordering::Equal,
                            (None, Some(_)) => return Ordering::Less,
                            (Some(_), None) => return Ordering::Greater,
                            (Some(x), Some(y)) => {
                                let order = cmp_label(&x, &y);
                                if order.is_ne() {
                                    return order;
                                }
                            }
                        }
                    }
                }
            }
        })
    }
}

impl PartialOrd for NuGetVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for NuGetVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for NuGetVersion {}

impl Hash for NuGetVersion {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.numbers.hash(state);
        for l in self.release_labels() {
            label(l).hash(state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basics() {
        let v = |s: &str| NuGetVersion::parse(s).expect(s);
        assert_eq!(v("1.0"), v("1.0.0.0"));
        assert_eq!(v("1.0.0-BETA"), v("1.0.0-beta+meta"));
        assert!(v("1.0.0-beta") < v("1.0.0"));
        assert!(v("1.0.0.1") > v("1.0.0"));
        assert!(v("1.0.0-2") < v("1.0.0-10"));
        assert!(v("1.0.0--1") < v("1.0.0-0"), "int.TryParse reads -1");
        assert_eq!(v(" 1 . 2 -rc").normalized(), "1.2.0-rc");
        assert_eq!(v("1.0.0-RC.1+b").metadata(), Some("b"));
        assert_eq!(v("1.0.01.1-A.b").normalized(), "1.0.1.1-A.b");
    }
}
