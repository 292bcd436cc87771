//! Packagist (Composer) versions, normalised and ordered as Composer does it.
//!
//! Composer reads a version with `VersionParser::normalize` and orders normalised
//! versions with `Comparator`, both from the `composer/semver` library
//! (<https://getcomposer.org/doc/articles/versions.md>,
//! <https://github.com/composer/semver>); `Comparator` defers to PHP's
//! `version_compare` (`ext/standard/versioning.c`). This is a hand-written port of
//! composer/semver 3.3 and PHP 8.2 (Debian 12's `php-composer-semver` and `php8.2`),
//! checked against them by `tests/composer_differential.rs`.
//!
//! Hand-written on purpose: of the crates that port composer/semver, `composer-semver`
//! 0.2 needs Rust 1.95 (this workspace supports 1.85) and is EUPL-licensed, and
//! `semver-php` 0.1 disagrees with Composer on the differential test's inputs (285 of
//! 11,754 normalisations, e.g. it refuses `2\n@dev` and accepts
//! `9223372036854775808.123Alpha.0-1`; 556 of 11,599 comparisons, e.g. around numbers
//! beyond 2⁶³) and pulls in `regex`. The normaliser is a few fixed patterns, written
//! out here with their PCRE semantics (possessive runs, backtracking order, `$` before
//! a final newline).
//!
//! Normalisation, in composer's order:
//! - surrounding blanks, an ` as alias` and an `@stability` flag are dropped;
//!   `master`, `trunk` and `default` become `dev-master` …, and any `dev-` prefix
//!   makes a branch, kept as is;
//! - `+build` metadata is dropped;
//! - `[v]M[.m[.p[.x]]]` (major of at most 5 digits) becomes `M.m.p.x`, and a date
//!   `YYYY[.MM…]` keeps its digits; either may carry a stability suffix
//!   (`alpha`/`a`, `beta`/`b`, `RC`, `patch`/`pl`/`p`, then a number) and `-dev`:
//!   `v1.2-beta.1` → `1.2.0.0-beta1`, `1.0-p2` → `1.0.0.0-patch2`;
//! - `1.x-dev` and other numeric branches become `1.9999999.9999999.9999999-dev`;
//! - anything else is invalid.
//!
//! Ordering is `version_compare` on the normalised forms: dot-separated parts (a
//! change between digits and letters also separates), numbers numerically (beyond
//! 2⁶³ − 1 they all equal it, as C's `strtol` saturates), `dev < alpha < beta < RC <`
//! a number `< patch`, other words below `dev`, a missing part counting as a number.
//! Branches (`dev-…`) are below every numbered version; Composer has no order
//! between two different branches, so here they are ordered by name.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use super::{InvalidVersion, VersionError};

/// A valid Composer version.
///
/// Equality, ordering and hashing follow Composer's `Comparator` on the normalised
/// forms: `1.0`, `v1.0.0` and `1.0.0.0` are equal, `1.0-RC1` = `1.0.0-rc1`.
/// [`Display`](fmt::Display) prints the version as given.
///
/// ```
/// use trawl_advisory::version::ComposerVersion;
///
/// let v = |s| ComposerVersion::parse(s).unwrap();
/// assert_eq!(v("v2.1-beta.3").normalized(), "2.1.0.0-beta3");
/// assert!(v("2.1.0-RC1") < v("2.1.0") && v("2.1.0") < v("2.1.0-p1"));
/// assert!(v("dev-main").is_branch() && v("dev-main") < v("0.0.1"));
/// ```
#[derive(Debug, Clone)]
pub struct ComposerVersion {
    text: String,
    normalized: String,
    /// `php_canonicalize_version` of `normalized`, for numbered versions.
    canonical: Option<Vec<u8>>,
}

impl ComposerVersion {
    /// Parses a version with `VersionParser::normalize`.
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        let normalized = normalize(input)
            .ok_or_else(|| VersionError::new(input, InvalidVersion::NotComposer))?;
        let canonical =
            (!normalized.starts_with("dev-")).then(|| canonicalize(normalized.as_bytes()));
        Ok(Self {
            text: input.to_owned(),
            normalized,
            canonical,
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

    /// The normalised form, as `VersionParser::normalize` returns it
    /// (`1.2.0.0-beta1`, `dev-main`).
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// Whether this is a branch (`dev-…`), which Composer does not order against
    /// other branches.
    pub fn is_branch(&self) -> bool {
        self.canonical.is_none()
    }
}

/// Compares two version strings as Composer's `Comparator` orders their normalised
/// forms (two different branches are ordered by name).
///
/// Fails if either string is not a version (see [`ComposerVersion::parse`]).
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    ComposerVersion::parse(a)?.cmp_str(b)
}

impl FromStr for ComposerVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ComposerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Ord for ComposerVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        match (&self.canonical, &other.canonical) {
            (Some(a), Some(b)) => compare_canonical(a, b),
            // `version_compare` puts `dev…` below any version starting with a digit.
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (None, None) => self.normalized.cmp(&other.normalized),
        }
    }
}

impl PartialOrd for ComposerVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for ComposerVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ComposerVersion {}

impl Hash for ComposerVersion {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match &self.canonical {
            None => self.normalized.hash(state),
            // Normalised forms have no empty parts and no `#`, so two of them compare
            // equal exactly when their parts are pairwise equal: numbers by
            // (saturated) value, words by rank.
            Some(canonical) => {
                for part in canonical.split(|&b| b == b'.') {
                    if part.first().is_some_and(u8::is_ascii_digit) {
                        (0u8, strtol(part)).hash(state);
                    } else {
                        (1u8, special_form(part)).hash(state);
                    }
                }
            }
        }
    }
}

// ---- VersionParser::normalize -------------------------------------------------------

/// PHP's `trim()` characters.
fn is_php_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0 | 0x0b)
}

/// PCRE's `\s` (C locale).
fn is_pcre_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn php_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_ascii() && is_php_blank(c as u8))
}

/// PCRE's `$` without the `D` modifier: the end, or before a final newline.
fn at_end(b: &[u8], i: usize) -> bool {
    i == b.len() || (i + 1 == b.len() && b[i] == b'\n')
}

fn run(b: &[u8], from: usize, pred: impl Fn(u8) -> bool) -> usize {
    b.get(from..)
        .map_or(0, |rest| rest.iter().take_while(|&&c| pred(c)).count())
}

fn starts_with_ci(b: &[u8], at: usize, word: &str) -> bool {
    b.get(at..at + word.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(word.as_bytes()))
}

fn normalize(input: &str) -> Option<String> {
    let mut version = php_trim(input);

    // `^([^,\s]++) ++as ++([^,\s]++)$`
    if let Some(source) = strip_alias(version) {
        version = source;
    }
    // `@(?:stable|RC|beta|alpha|dev)$`i: the match (without a final newline) is cut
    // from the end.
    if let Some(len) = stability_flag_len(version.as_bytes()) {
        version = &version[..version.len() - len];
    }
    let named;
    if matches!(version, "master" | "trunk" | "default") {
        named = format!("dev-{version}");
        version = &named;
    }
    if starts_with_ci(version.as_bytes(), 0, "dev-") {
        return Some(format!("dev-{}", &version[4..]));
    }
    // `^([^,\s+]++)\+[^\s]++$`
    if let Some(stripped) = strip_build(version) {
        version = stripped;
    }
    if let Some(normalized) = classical(version).or_else(|| date(version)) {
        return Some(normalized);
    }
    // `(.*?)[.-]?dev$`i, then a numeric branch only.
    let branch = normalize_branch(dev_branch_name(version)?)?;
    Some(branch)
}

fn strip_alias(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let plain = |c: u8| c != b',' && !is_pcre_space(c);
    let source = run(b, 0, plain);
    if source == 0 {
        return None;
    }
    let mut i = source;
    let spaces = run(b, i, |c| c == b' ');
    if spaces == 0 || !starts_with(b, i + spaces, b"as") {
        return None;
    }
    i += spaces + 2;
    let spaces = run(b, i, |c| c == b' ');
    if spaces == 0 {
        return None;
    }
    i += spaces;
    let target = run(b, i, plain);
    (target > 0 && at_end(b, i + target)).then(|| &s[..source])
}

fn starts_with(b: &[u8], at: usize, prefix: &[u8]) -> bool {
    b.get(at..).is_some_and(|rest| rest.starts_with(prefix))
}

const STABILITY_FLAGS: [&str; 5] = ["stable", "RC", "beta", "alpha", "dev"];

fn stability_flag_len(b: &[u8]) -> Option<usize> {
    b.iter().enumerate().find_map(|(at, &c)| {
        if c != b'@' {
            return None;
        }
        STABILITY_FLAGS
            .iter()
            .find(|flag| starts_with_ci(b, at + 1, flag) && at_end(b, at + 1 + flag.len()))
            .map(|flag| 1 + flag.len())
    })
}

fn strip_build(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let source = run(b, 0, |c| c != b',' && c != b'+' && !is_pcre_space(c));
    if source == 0 || b.get(source) != Some(&b'+') {
        return None;
    }
    let build = run(b, source + 1, |c| !is_pcre_space(c));
    (build > 0 && at_end(b, source + 1 + build)).then(|| &s[..source])
}

/// What the stability modifier `[._-]?(?:(W)((?:[.-]?\d+)*+)?)?([.-]?dev)?$` captured.
struct Modifier {
    /// The stability word, as written.
    word: Option<(usize, usize)>,
    /// The number after it (possibly empty).
    number: Option<(usize, usize)>,
    dev: bool,
}

/// In PCRE's alternation order: `beta` before `b`, `patch` before `pl` before `p`.
const STABILITY_WORDS: [&str; 9] = [
    "stable", "beta", "b", "RC", "alpha", "a", "patch", "pl", "p",
];

/// Matches the modifier and `$` from `at`, trying alternatives in PCRE's order.
fn modifier(b: &[u8], at: usize) -> Option<Modifier> {
    let separated = b
        .get(at)
        .is_some_and(|c| matches!(c, b'.' | b'_' | b'-'))
        .then_some(at + 1);
    for start in separated.into_iter().chain([at]) {
        for word in STABILITY_WORDS {
            if !starts_with_ci(b, start, word) {
                continue;
            }
            let after = start + word.len();
            let number_end = number_run(b, after);
            for (number, rest) in [(Some((after, number_end)), number_end), (None, after)] {
                if let Some(dev) = dev_then_end(b, rest) {
                    return Some(Modifier {
                        word: Some((start, after)),
                        number,
                        dev,
                    });
                }
            }
        }
        if let Some(dev) = dev_then_end(b, start) {
            return Some(Modifier {
                word: None,
                number: None,
                dev,
            });
        }
    }
    None
}

/// The possessive `(?:[.-]?\d+)*+` from `at`: where it stops.
fn number_run(b: &[u8], mut at: usize) -> usize {
    loop {
        // Without the separator, `\d+` cannot start on it: one try is enough.
        let sep = usize::from(b.get(at).is_some_and(|c| matches!(c, b'.' | b'-')));
        let digits = run(b, at + sep, |c| c.is_ascii_digit());
        if digits == 0 {
            return at;
        }
        at += sep + digits;
    }
}

/// `([.-]?dev)?$` from `at`: `Some(matched dev)` if it matches.
fn dev_then_end(b: &[u8], at: usize) -> Option<bool> {
    if b.get(at).is_some_and(|c| matches!(c, b'.' | b'-'))
        && starts_with_ci(b, at + 1, "dev")
        && at_end(b, at + 4)
    {
        return Some(true);
    }
    if starts_with_ci(b, at, "dev") && at_end(b, at + 3) {
        return Some(true);
    }
    at_end(b, at).then_some(false)
}

/// `expandStability`.
fn expand_stability(word: &str) -> String {
    let lower = word.to_ascii_lowercase();
    match lower.as_str() {
        "a" => "alpha".into(),
        "b" => "beta".into(),
        "p" | "pl" => "patch".into(),
        "rc" => "RC".into(),
        _ => lower,
    }
}

/// Appends the modifier as `normalize` does (a `stable` word ends it: no `-dev`).
fn append_modifier(s: &str, mut version: String, m: &Modifier) -> String {
    if let Some((from, to)) = m.word {
        let word = &s[from..to];
        if word == "stable" {
            return version;
        }
        version.push('-');
        version.push_str(&expand_stability(word));
        if let Some((from, to)) = m.number {
            version.push_str(s[from..to].trim_start_matches(['.', '-']));
        }
    }
    if m.dev {
        version.push_str("-dev");
    }
    version
}

/// `^v?(\d{1,5})(\.\d++)?(\.\d++)?(\.\d++)?MODIFIER$`i
fn classical(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut at = usize::from(matches!(b.first(), Some(b'v' | b'V')));
    let major = run(b, at, |c| c.is_ascii_digit());
    // A longer digit run cannot match: `\d{1,5}` would have to stop before a digit.
    if major == 0 || major > 5 {
        return None;
    }
    let mut version = s[at..at + major].to_owned();
    at += major;
    // Each `(\.\d++)?` takes what it can; giving one back leaves `.digit`, which the
    // modifier cannot start with.
    let mut parts = 1;
    while parts < 4 && b.get(at) == Some(&b'.') {
        let digits = run(b, at + 1, |c| c.is_ascii_digit());
        if digits == 0 {
            break;
        }
        version.push_str(&s[at..at + 1 + digits]);
        at += 1 + digits;
        parts += 1;
    }
    for _ in parts..4 {
        version.push_str(".0");
    }
    let m = modifier(b, at)?;
    Some(append_modifier(s, version, &m))
}

/// `^v?(\d{4}(?:[.:-]?\d{2}){1,6}(?:[.:-]?\d{1,3})?)MODIFIER$`i
fn date(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let start = usize::from(matches!(b.first(), Some(b'v' | b'V')));
    if run(b, start, |c| c.is_ascii_digit()) < 4 {
        return None;
    }
    let (end, m) = date_pairs(b, start + 4, 0)?;
    let version: String = s[start..end]
        .bytes()
        .map(|c| {
            if c.is_ascii_digit() {
                char::from(c)
            } else {
                '.'
            }
        })
        .collect();
    Some(append_modifier(s, version, &m))
}

fn is_date_sep(c: Option<&u8>) -> bool {
    matches!(c, Some(b'.' | b':' | b'-'))
}

fn digits_at(b: &[u8], at: usize, n: usize) -> bool {
    b.get(at..at + n)
        .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
}

/// `(?:[.:-]?\d{2}){1,6}` after `count` pairs, greedy, then the rest.
fn date_pairs(b: &[u8], at: usize, count: usize) -> Option<(usize, Modifier)> {
    if count < 6 {
        if is_date_sep(b.get(at))
            && digits_at(b, at + 1, 2)
            && let Some(found) = date_pairs(b, at + 3, count + 1)
        {
            return Some(found);
        }
        if digits_at(b, at, 2)
            && let Some(found) = date_pairs(b, at + 2, count + 1)
        {
            return Some(found);
        }
    }
    if count == 0 {
        return None;
    }
    // `(?:[.:-]?\d{1,3})?`, greedy, then the modifier.
    let mut tries = Vec::with_capacity(7);
    if is_date_sep(b.get(at)) {
        tries.extend(
            (1..=3)
                .rev()
                .filter(|&n| digits_at(b, at + 1, n))
                .map(|n| at + 1 + n),
        );
    }
    tries.extend(
        (1..=3)
            .rev()
            .filter(|&n| digits_at(b, at, n))
            .map(|n| at + n),
    );
    tries.push(at);
    tries
        .into_iter()
        .find_map(|end| modifier(b, end).map(|m| (end, m)))
}

/// The name before a final `[.-]?dev` (`(.*?)[.-]?dev$`i, unanchored: `.` stops at a
/// newline, so the name starts after the last one).
fn dev_branch_name(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let len = b.len();
    let dev = if len >= 3 && starts_with_ci(b, len - 3, "dev") {
        len - 3
    } else if len >= 4 && b[len - 1] == b'\n' && starts_with_ci(b, len - 4, "dev") {
        len - 4
    } else {
        return None;
    };
    let end = if dev > 0 && matches!(b[dev - 1], b'.' | b'-') {
        dev - 1
    } else {
        dev
    };
    let start = b[..end]
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(0, |nl| nl + 1);
    Some(&s[start..end])
}

/// `normalizeBranch` for numeric branches:
/// `^v?(\d++)(\.(?:\d++|[xX*]))?(\.(?:\d++|[xX*]))?(\.(?:\d++|[xX*]))?$`i; other
/// names would become `dev-name`, which `normalize` refuses after `-dev`.
fn normalize_branch(name: &str) -> Option<String> {
    let name = php_trim(name);
    let b = name.as_bytes();
    let mut at = usize::from(matches!(b.first(), Some(b'v' | b'V')));
    let major = run(b, at, |c| c.is_ascii_digit());
    if major == 0 {
        return None;
    }
    let mut version = name[at..at + major].to_owned();
    at += major;
    let mut parts = 1;
    while parts < 4 && b.get(at) == Some(&b'.') {
        let digits = run(b, at + 1, |c| c.is_ascii_digit());
        if digits > 0 {
            version.push_str(&name[at..at + 1 + digits]);
            at += 1 + digits;
        } else if matches!(b.get(at + 1), Some(b'x' | b'X' | b'*')) {
            version.push_str(".x");
            at += 2;
        } else {
            break;
        }
        parts += 1;
    }
    if !at_end(b, at) {
        return None;
    }
    for _ in parts..4 {
        version.push_str(".x");
    }
    Some(version.replace('x', "9999999") + "-dev")
}

// ---- PHP's version_compare ----------------------------------------------------------

/// `php_canonicalize_version`: `-`, `_`, `+` and other non-alphanumerics become `.`,
/// a `.` goes between digits and non-digits, runs of `.` collapse.
fn canonicalize(v: &[u8]) -> Vec<u8> {
    let Some((&first, rest)) = v.split_first() else {
        return Vec::new();
    };
    let is_dig = |c: u8| c.is_ascii_digit();
    let is_ndig = |c: u8| !c.is_ascii_digit() && c != b'.';
    let mut out = Vec::with_capacity(v.len() * 2);
    out.push(first);
    let mut lp = first;
    for &c in rest {
        let lq = out.last().copied().unwrap_or(0);
        if matches!(c, b'-' | b'_' | b'+') {
            if lq != b'.' {
                out.push(b'.');
            }
        } else if (is_ndig(lp) && is_dig(c)) || (is_dig(lp) && is_ndig(c)) {
            if lq != b'.' {
                out.push(b'.');
            }
            out.push(c);
        } else if !c.is_ascii_alphanumeric() {
            if lq != b'.' {
                out.push(b'.');
            }
        } else {
            out.push(c);
        }
        lp = c;
    }
    out
}

/// `compare_special_version_forms`: the rank of a word by its prefix.
fn special_form(form: &[u8]) -> i8 {
    const FORMS: [(&[u8], i8); 10] = [
        (b"dev", 0),
        (b"alpha", 1),
        (b"a", 1),
        (b"beta", 2),
        (b"b", 2),
        (b"RC", 3),
        (b"rc", 3),
        (b"#", 4),
        (b"pl", 5),
        (b"p", 5),
    ];
    FORMS
        .iter()
        .find(|(name, _)| form.starts_with(name))
        .map_or(-1, |&(_, order)| order)
}

/// C's `strtol` on a run of digits: saturates at `LONG_MAX`.
fn strtol(digits: &[u8]) -> i64 {
    digits
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .try_fold(0i64, |n, &c| {
            n.checked_mul(10)?.checked_add(i64::from(c - b'0'))
        })
        .unwrap_or(i64::MAX)
}

/// `php_version_compare` on two already canonical strings.
fn compare_canonical(a: &[u8], b: &[u8]) -> Ordering {
    let digit = |s: &[u8], at: usize| s.get(at).is_some_and(u8::is_ascii_digit);
    let part_end = |s: &[u8], at: usize| s[at..].iter().position(|&c| c == b'.').map(|n| at + n);
    let (mut p1, mut p2) = (0, 0);
    // `n1`/`n2`: whether the current part was followed by a dot (C: a non-null
    // pointer); both start "non-null".
    let (mut n1, mut n2) = (Some(0), Some(0));
    let mut order = Ordering::Equal;
    while p1 < a.len() && p2 < b.len() && n1.is_some() && n2.is_some() {
        n1 = part_end(a, p1);
        n2 = part_end(b, p2);
        let part1 = &a[p1..n1.unwrap_or(a.len())];
        let part2 = &b[p2..n2.unwrap_or(b.len())];
        order = match (digit(a, p1), digit(b, p2)) {
            (true, true) => strtol(part1).cmp(&strtol(part2)),
            (false, false) => special_form(part1).cmp(&special_form(part2)),
            (true, false) => special_form(b"#N#").cmp(&special_form(part2)),
            (false, true) => special_form(part1).cmp(&special_form(b"#N#")),
        };
        if order.is_ne() {
            break;
        }
        if let Some(n) = n1 {
            p1 = n + 1;
        }
        if let Some(n) = n2 {
            p2 = n + 1;
        }
    }
    if order.is_eq() {
        if n1.is_some() {
            order = if digit(a, p1) {
                Ordering::Greater
            } else {
                php_version_compare(&a[p1..], b"#N#")
            };
        } else if n2.is_some() {
            order = if digit(b, p2) {
                Ordering::Less
            } else {
                php_version_compare(b"#N#", &b[p2..])
            };
        }
    }
    order
}

/// `php_version_compare` on raw strings.
fn php_version_compare(a: &[u8], b: &[u8]) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        (false, false) => {}
    }
    let prepare = |v: &[u8]| {
        if v[0] == b'#' {
            v.to_vec()
        } else {
            canonicalize(v)
        }
    };
    compare_canonical(&prepare(a), &prepare(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        ComposerVersion::parse(s).expect(s).normalized().to_owned()
    }

    #[test]
    fn normalisation_from_composer_tests() {
        // Cases of composer/semver's VersionParserTest::successfulNormalizedVersions.
        for (input, normalized) in [
            ("1.0.0", "1.0.0.0"),
            ("1.2.3.4", "1.2.3.4"),
            ("1.0.0RC1dev", "1.0.0.0-RC1-dev"),
            ("1.0.0-rC15-dev", "1.0.0.0-RC15-dev"),
            ("1.0.0.RC.15-dev", "1.0.0.0-RC15-dev"),
            ("1.0.0-rc1", "1.0.0.0-RC1"),
            ("1.0.0.pl3-dev", "1.0.0.0-patch3-dev"),
            ("1.0-dev", "1.0.0.0-dev"),
            ("0", "0.0.0.0"),
            ("10.4.13-beta", "10.4.13.0-beta"),
            ("10.4.13beta2", "10.4.13.0-beta2"),
            ("10.4.13beta.2", "10.4.13.0-beta2"),
            ("v1.13.11-beta.0", "1.13.11.0-beta0"),
            ("10.4.13-b", "10.4.13.0-beta"),
            ("10.4.13-b5", "10.4.13.0-beta5"),
            ("v1.0.0", "1.0.0.0"),
            ("v20100102", "20100102"),
            ("2010.01", "2010.01.0.0"),
            ("2010.01.02", "2010.01.02.0"),
            ("2010-01-02", "2010.01.02"),
            ("2010-01-02.5", "2010.01.02.5"),
            ("2010.1.555", "2010.1.555.0"),
            ("2010.10.200", "2010.10.200.0"),
            ("20100102-203040", "20100102.203040"),
            ("20100102203040-10", "20100102203040.10"),
            ("20100102-203040-p1", "20100102.203040-patch1"),
            ("dev-master", "dev-master"),
            ("master", "dev-master"),
            ("dev-trunk", "dev-trunk"),
            ("1.x-dev", "1.9999999.9999999.9999999-dev"),
            ("dev-feature-foo", "dev-feature-foo"),
            ("DEV-FOOBAR", "dev-FOOBAR"),
            ("dev-feature/foo", "dev-feature/foo"),
            ("dev-feature+issue-1", "dev-feature+issue-1"),
            ("dev-master as 1.0.0", "dev-master"),
            (
                "dev-load-varnish-only-when-used as ^2.0",
                "dev-load-varnish-only-when-used",
            ),
            ("1.0.0+foo@dev", "1.0.0.0"),
            (
                "dev-load-varnish-only-when-used@dev as ^2.0@dev",
                "dev-load-varnish-only-when-used",
            ),
            ("1.0.0-beta.5+foo", "1.0.0.0-beta5"),
            ("1.0.0+foo", "1.0.0.0"),
            ("1.0.0-alpha.3.1+foo", "1.0.0.0-alpha3.1"),
            ("1.0.0-alpha2.1+foo", "1.0.0.0-alpha2.1"),
            ("1.0.0-alpha-2.1-3+foo", "1.0.0.0-alpha2.1-3"),
            ("1.0.0+foo as 2.0", "1.0.0.0"),
            ("00.01.03.04", "00.01.03.04"),
            ("000.001.003.004", "000.001.003.004"),
            ("0.000.103.204", "0.000.103.204"),
            ("0700", "0700.0.0.0"),
            ("041.x-dev", "041.9999999.9999999.9999999-dev"),
            ("dev-041.003", "dev-041.003"),
            ("dev-1.0.0-dev<1.0.5-dev", "dev-1.0.0-dev<1.0.5-dev"),
            ("dev-foo bar", "dev-foo bar"),
            ("1.0 as 1.0", "1.0.0.0"),
            ("1.0-Stable", "1.0.0.0-stable"),
            ("1.0-stable-dev", "1.0.0.0"),
            ("1.0\n@dev", "1.0.0.0"),
            ("123456", "123456"),
        ] {
            assert_eq!(n(input), normalized, "{input}");
        }
    }

    #[test]
    fn failures_from_composer_tests() {
        for bad in [
            "",
            "a",
            "1.0.0-meh",
            "1.0.0.0.0",
            "feature-foo",
            "1.0 .2",
            "1.0.0-dev<1.0.5-dev",
            "^1",
            "1.0.0+foo bar",
        ] {
            assert!(ComposerVersion::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ordering() {
        let v = |s| ComposerVersion::parse(s).expect(s);
        let ascending = [
            "dev-main",
            "1.0.0-dev",
            "1.0.0-alpha1",
            "1.0.0-beta",
            "1.0.0-RC1",
            "1.0.0",
            "1.0.0-p1",
            "1.0.1",
            "1.0.x-dev",
        ];
        for pair in ascending.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(v("1.01"), v("1.1"));
        assert_eq!(v("1.99999999999999999999"), v("1.99999999999999999998"));
    }
}
