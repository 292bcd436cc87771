//! Go module versions and Go toolchain versions, ordered as
//! `golang.org/x/mod/semver.Compare` orders them
//! (<https://pkg.go.dev/golang.org/x/mod/semver>, <https://go.dev/ref/mod#versions>).
//!
//! Module versions are SemVer 2.0.0 with a `v` prefix: `v1.2.3`, `v1.2.3-pre.1`,
//! `v2.0.0+incompatible` (build metadata, so equal to `v2.0.0`), pseudo-versions
//! such as `v0.0.0-20191109021931-daa7c04131f5` (ordinary pre-releases, see
//! [`GoVersion::is_pseudo`]), and x/mod's shorthands `v1` = `v1.0.0` and
//! `v1.2` = `v1.2.0`. OSV's Go records write the same versions without the
//! `v` (`1.2.3`); both spellings are taken and mean the same (govulncheck does
//! the same: it puts the `v` back before comparing).
//!
//! The standard library and toolchain (the `stdlib` and `toolchain` packages of
//! the Go vulnerability database) are versioned by release tags, which are
//! mapped to semantic versions as the Go vulnerability database does
//! (`golang.org/x/vuln`'s `GoTagToSemver`); anything starting with `go` is read
//! this way:
//!
//! | tag | version |
//! |---|---|
//! | `go1` | `v1.0.0` |
//! | `go1.21` | `v1.21.0` |
//! | `go1.21.5` | `v1.21.5` |
//! | `go1.22rc1` | `v1.22.0-rc.1` |
//! | `go1.9beta2` | `v1.9.0-beta.2` |
//! | `go1.21.5 X:boringcrypto` | `v1.21.5` (only the first word counts) |
//! | `go1.0`, `devel …`, `go1.21.5-foo` | not a version |
//!
//! Versions x/mod calls invalid are invalid here too (a typed [`VersionError`]):
//! `Compare` ranks them below every valid version and equal to one another, which
//! would make matching guess.
//!
//! # Why not a crate
//!
//! No crate implements x/mod's rules (the shorthands, the `v` prefix, numbers
//! of any size), and they are a hundred lines; the differential test
//! (`tests/go_differential.rs`) holds this module to x/mod's `semver`, `module`
//! and x/vuln's tag mapping, run under the Go toolchain.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use super::{InvalidVersion, VersionError};

/// A valid Go module or toolchain version.
///
/// Equality, ordering and hashing are x/mod's (build metadata is ignored);
/// [`Display`](fmt::Display) prints the version as given, [`canonical`]
/// (Self::canonical) as `semver.Canonical` would.
///
/// ```
/// use trawl_advisory::GoVersion;
///
/// let v = |s: &str| GoVersion::parse(s).unwrap();
/// assert_eq!(v("v1.2.3"), v("1.2.3"));
/// assert_eq!(v("v2.0.0+incompatible"), v("v2.0.0"));
/// assert!(v("v0.0.0-20191109021931-daa7c04131f5") < v("v0.1.0"));
/// assert!(v("v0.0.0-20191109021931-daa7c04131f5").is_pseudo());
/// assert_eq!(v("go1.22rc1").canonical(), "v1.22.0-rc.1");
/// assert!(v("go1.22rc1") < v("1.22.0") && v("go1.21.5") == v("1.21.5"));
/// ```
#[derive(Debug, Clone)]
pub struct GoVersion {
    text: String,
    /// `vMAJOR.MINOR.PATCH[-PRERELEASE]`: `semver.Canonical` of the version.
    canonical: String,
    /// Ends of major, minor and patch in `canonical`.
    ends: [usize; 3],
    pseudo: bool,
}

/// Why a string is not a Go version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GoError {
    /// Not a module version (`[v]MAJOR[.MINOR[.PATCH[-PRERELEASE][+BUILD]]]`)
    /// from this byte offset on.
    #[error("not a Go module version: invalid from byte {offset}")]
    Syntax {
        /// Byte offset in the input of the first character x/mod cannot take.
        offset: usize,
    },
    /// Starts with `go` but is not a Go release tag (`go1.N[.P]`, `go1.NbetaM`,
    /// `go1.NrcM`).
    #[error("not a Go release tag")]
    Toolchain,
}

impl GoVersion {
    /// Parses a module version (with or without `v`) or a Go release tag (`go…`).
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        let invalid = |reason| VersionError::new(input, InvalidVersion::Go(reason));
        let (semver, offset_shift) = if input.starts_with("go") {
            (
                toolchain_semver(input).ok_or(invalid(GoError::Toolchain))?,
                None,
            )
        } else if input.starts_with('v') {
            (input.to_owned(), Some(0))
        } else {
            (format!("v{input}"), Some(1))
        };
        let parsed = parse_semver(&semver).map_err(|offset| {
            invalid(match offset_shift {
                Some(shift) => GoError::Syntax {
                    offset: offset.saturating_sub(shift),
                },
                // The mapping only writes valid versions.
                None => GoError::Toolchain,
            })
        })?;
        let pseudo = offset_shift.is_some() && is_pseudo(&semver, &parsed);
        let mut canonical = semver;
        canonical.truncate(parsed.build_start);
        for (i, short) in ["", ".0", ".0.0"].iter().enumerate() {
            if parsed.missing == i {
                canonical.push_str(short);
            }
        }
        let ends = match parsed.missing {
            0 => parsed.ends,
            1 => [parsed.ends[0], parsed.ends[1], parsed.ends[1] + 2],
            _ => [parsed.ends[0], parsed.ends[0] + 2, parsed.ends[0] + 4],
        };
        Ok(Self {
            text: input.to_owned(),
            canonical,
            ends,
            pseudo,
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

    /// `vMAJOR.MINOR.PATCH[-PRERELEASE]`, as `semver.Canonical` writes it
    /// (shorthands expanded, build metadata dropped); toolchain tags mapped.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// Whether this is a pseudo-version (`module.IsPseudoVersion`): a version Go
    /// made up for a commit, such as `v0.0.0-20191109021931-daa7c04131f5` or
    /// `v1.2.4-0.20191109021931-daa7c04131f5`.
    pub fn is_pseudo(&self) -> bool {
        self.pseudo
    }

    fn major(&self) -> &str {
        &self.canonical[1..self.ends[0]]
    }

    fn minor(&self) -> &str {
        &self.canonical[self.ends[0] + 1..self.ends[1]]
    }

    fn patch(&self) -> &str {
        &self.canonical[self.ends[1] + 1..self.ends[2]]
    }

    /// The pre-release with its `-`, or empty.
    fn prerelease(&self) -> &str {
        &self.canonical[self.ends[2]..]
    }
}

/// Compares two version strings as `semver.Compare` does after putting back the
/// `v` (or mapping a `go` tag); fails if either is not a version.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    GoVersion::parse(a)?.cmp_str(b)
}

/// x/vuln's `GoTagToSemver`: `^go(\d+\.\d+)(\.\d+|)((beta|rc|-pre)(\d+))?$` on the
/// first word, with `go1` and `go1.0` as special cases.
fn toolchain_semver(tag: &str) -> Option<String> {
    let tag = tag.split_whitespace().next()?;
    if tag == "go1" {
        return Some("v1.0.0".to_owned());
    }
    if tag == "go1.0" {
        return None;
    }
    let rest = tag.strip_prefix("go")?;
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let major = digits(rest);
    let after_major = rest.get(major..)?.strip_prefix('.')?;
    let minor = digits(after_major);
    if major == 0 || minor == 0 {
        return None;
    }
    let mut version = format!("v{}", &rest[..major + 1 + minor]);
    let mut rest = &after_major[minor..];
    let patch = rest.strip_prefix('.').map_or(0, digits);
    if patch > 0 {
        version.push_str(&rest[..1 + patch]);
        rest = &rest[1 + patch..];
    } else {
        version.push_str(".0");
    }
    if !rest.is_empty() {
        let (kind, number) = ["beta", "rc", "-pre"]
            .iter()
            .find_map(|kind| Some((*kind, rest.strip_prefix(kind)?)))?;
        if number.is_empty() || digits(number) != number.len() {
            return None;
        }
        if !kind.starts_with('-') {
            version.push('-');
        }
        version.push_str(kind);
        version.push('.');
        version.push_str(number);
    }
    Some(version)
}

/// What x/mod's `parse` finds in a version that starts with `v`.
struct Parsed {
    /// Ends of the numbers that are present.
    ends: [usize; 3],
    /// How many of minor and patch are missing (the shorthands).
    missing: usize,
    /// Where `+build` starts (the length if there is none).
    build_start: usize,
    /// Where `-prerelease` starts (`build_start` if there is none).
    pre_start: usize,
}

/// x/mod's `parse`; `Err` is the offset where it gives up.
fn parse_semver(v: &str) -> Result<Parsed, usize> {
    let bytes = v.as_bytes();
    if bytes.first() != Some(&b'v') {
        return Err(0);
    }
    let mut pos = 1;
    let mut ends = [0; 3];
    for (i, end) in ends.iter_mut().enumerate() {
        if i > 0 {
            if pos == bytes.len() {
                return Ok(Parsed {
                    ends: [ends_or(ends[0], pos), ends_or(ends[1], pos), pos],
                    missing: 3 - i,
                    build_start: pos,
                    pre_start: pos,
                });
            }
            if bytes[pos] != b'.' {
                return Err(pos);
            }
            pos += 1;
        }
        let digits = bytes[pos..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 || (digits > 1 && bytes[pos] == b'0') {
            return Err(pos);
        }
        pos += digits;
        *end = pos;
    }
    let pre_start = pos;
    if bytes.get(pos) == Some(&b'-') {
        pos = identifiers(bytes, pos + 1, true)?;
    }
    let build_start = pos;
    if bytes.get(pos) == Some(&b'+') {
        pos = identifiers(bytes, pos + 1, false)?;
    }
    if pos != bytes.len() {
        return Err(pos);
    }
    Ok(Parsed {
        ends,
        missing: 0,
        build_start,
        pre_start,
    })
}

fn ends_or(end: usize, fallback: usize) -> usize {
    if end == 0 { fallback } else { end }
}

/// Dot-separated `[0-9A-Za-z-]+` identifiers from `pos`; numeric pre-release
/// identifiers must not have leading zeros. Returns where they end.
fn identifiers(bytes: &[u8], mut pos: usize, prerelease: bool) -> Result<usize, usize> {
    loop {
        let len = bytes[pos..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
            .count();
        let ident = &bytes[pos..pos + len];
        let bad_number =
            prerelease && len > 1 && ident[0] == b'0' && ident.iter().all(u8::is_ascii_digit);
        if len == 0 || bad_number {
            return Err(pos);
        }
        pos += len;
        if bytes.get(pos) == Some(&b'.') {
            pos += 1;
        } else {
            return Ok(pos);
        }
    }
}

/// `module.IsPseudoVersion` on a valid version:
/// `^v[0-9]+\.(0\.0-|\d+\.\d+-([^+]*\.)?0\.)\d{14}-[A-Za-z0-9]+(\+…)?$`.
fn is_pseudo(v: &str, parsed: &Parsed) -> bool {
    if parsed.missing != 0 || v.bytes().filter(|&b| b == b'-').count() < 2 {
        return false;
    }
    let Some(pre) = v[parsed.pre_start..parsed.build_start].strip_prefix('-') else {
        return false;
    };
    let timestamp_revision = |s: &str| {
        let bytes = s.as_bytes();
        bytes.len() > 15
            && bytes[..14].iter().all(u8::is_ascii_digit)
            && bytes[14] == b'-'
            && bytes[15..].iter().all(u8::is_ascii_alphanumeric)
    };
    let zero_base = &v[parsed.ends[0]..parsed.ends[2]] == ".0.0";
    if zero_base && timestamp_revision(pre) {
        return true;
    }
    // The revision has no dots, so `0.` is the last dot's left side.
    match pre.rsplit_once('.') {
        Some((head, tail)) => (head == "0" || head.ends_with(".0")) && timestamp_revision(tail),
        None => false,
    }
}

/// x/mod's `compareInt`: numbers without leading zeros, by length, then lexically.
fn compare_int(x: &str, y: &str) -> Ordering {
    x.len().cmp(&y.len()).then_with(|| x.cmp(y))
}

/// x/mod's `comparePrerelease` on `-…` strings (or empty).
fn compare_prerelease(x: &str, y: &str) -> Ordering {
    if x == y {
        return Ordering::Equal;
    }
    if x.is_empty() {
        return Ordering::Greater;
    }
    if y.is_empty() {
        return Ordering::Less;
    }
    let mut xs = x[1..].split('.');
    let mut ys = y[1..].split('.');
    loop {
        match (xs.next(), ys.next()) {
            (Some(dx), Some(dy)) => {
                if dx == dy {
                    continue;
                }
                let is_num = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
                return match (is_num(dx), is_num(dy)) {
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (true, true) => compare_int(dx, dy),
                    (false, false) => dx.cmp(dy),
                };
            }
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (None, None) => return Ordering::Equal,
        }
    }
}

impl Ord for GoVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_int(self.major(), other.major())
            .then_with(|| compare_int(self.minor(), other.minor()))
            .then_with(|| compare_int(self.patch(), other.patch()))
            .then_with(|| compare_prerelease(self.prerelease(), other.prerelease()))
    }
}

impl PartialOrd for GoVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for GoVersion {
    fn eq(&self, other: &Self) -> bool {
        // Numbers have no leading zeros, so equal versions are equal strings.
        self.canonical == other.canonical
    }
}

impl Eq for GoVersion {}

impl Hash for GoVersion {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.canonical.hash(state);
    }
}

impl FromStr for GoVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for GoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> GoVersion {
        GoVersion::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn ordering() {
        let sorted = [
            "v0.0.0-20191109021931-daa7c04131f5",
            "v0.0.0",
            "v0.1.0",
            "v1.0.0-alpha",
            "v1.0.0-alpha.1",
            "v1.0.0-alpha.beta",
            "v1.0.0-beta.2",
            "v1.0.0-beta.11",
            "v1.0.0-rc.1",
            "v1",
            "v1.2.3",
            "v1.2.4-0.20191109021931-daa7c04131f5",
            "v1.2.4",
            "v1.10",
            "v2.0.0+incompatible",
            "v99999999999999999999.0.0",
        ];
        for pair in sorted.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(v("v1"), v("1.0.0"));
        assert_eq!(v("v1.2"), v("v1.2.0+meta"));
        assert_eq!(compare("1.2.3", "v1.2.3"), Ok(Ordering::Equal));
    }

    #[test]
    fn toolchain() {
        for (tag, semver) in [
            ("go1", "v1.0.0"),
            ("go1.21", "v1.21.0"),
            ("go1.21.5", "v1.21.5"),
            ("go1.22rc1", "v1.22.0-rc.1"),
            ("go1.9beta2", "v1.9.0-beta.2"),
            ("go1.21.0rc2", "v1.21.0-rc.2"),
            ("go1.5-pre1", "v1.5.0-pre.1"),
            ("go1.21.5 X:boringcrypto", "v1.21.5"),
        ] {
            assert_eq!(v(tag).canonical(), semver, "{tag}");
            assert_eq!(v(tag).as_str(), tag);
            assert!(!v(tag).is_pseudo());
        }
        for tag in [
            "go1.0",
            "go",
            "go1.",
            "go1.21.",
            "go1.21rc",
            "go1.21alpha1",
            "go1.21.5-foo",
            "go1.2.3.4",
            "go01.2",
        ] {
            let err = GoVersion::parse(tag).map(|v| v.canonical().to_owned());
            assert_eq!(
                err.map_err(|e| e.reason),
                Err(InvalidVersion::Go(GoError::Toolchain)),
                "{tag}"
            );
        }
    }

    #[test]
    fn module_versions() {
        assert!(v("v1.2.3-pre.0.20191109021931-daa7c04131f5").is_pseudo());
        assert!(v("1.2.4-0.20191109021931-daa7c04131f5+incompatible").is_pseudo());
        assert!(!v("v1.2.3-20191109021931-daa7c04131f5").is_pseudo());
        assert!(!v("v1.0.0").is_pseudo());
        assert_eq!(v("v1.2.3-pre+build").canonical(), "v1.2.3-pre");
        assert_eq!(v("1.2").canonical(), "v1.2.0");
        for (input, offset) in [
            ("", 0),
            ("v", 1),
            ("1.02.3", 2),
            ("v1.2.3-", 7),
            ("v1.2.3-01", 7),
            ("v1.2-pre", 4),
            ("v1.2.3+", 7),
            ("v1.2.3.4", 6),
            ("vv1.2.3", 1),
            ("V1.2.3", 0),
        ] {
            assert_eq!(
                GoVersion::parse(input).map_err(|e| e.reason).map(|_| ()),
                Err(InvalidVersion::Go(GoError::Syntax { offset })),
                "{input:?}"
            );
        }
    }
}
