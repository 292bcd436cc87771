//! Maven versions, ordered as Maven's `ComparableVersion` orders them.
//!
//! Maven has no version syntax: any string is a version, and
//! `org.apache.maven.artifact.versioning.ComparableVersion` (module `maven-artifact`)
//! defines the order (<https://maven.apache.org/pom.html#version-order-specification>).
//! This is a hand-written port of that class as Maven 3.8.7 ships it (Debian 12's
//! `libmaven3-core-java`, the differential reference in `tests/maven_differential.rs`).
//!
//! Hand-written on purpose: the one crate for it, `mvn_version` 0.1, ports an older
//! `ComparableVersion` and disagrees with Maven 3.8 on plain inputs: it has no
//! `int`/`long`/`BigInteger` item kinds (`1.0000000000.1` = `1.0.1` for it, `>` for
//! Maven), nor the rule that reads `.X1` as `-X1` (`1.0.0.X1 > 1.0.0-X2` for it, `<`
//! for Maven; `1.0.0.a1` and `1.0.0-alpha-1` differ for it, are equal for Maven); it
//! also uses `unsafe`.
//!
//! The rules, in Maven's terms:
//! - the version is lower-cased (`Locale.ENGLISH`) and split into *items* at `.`, at
//!   `-`, and at every transition between digits and non-digits; `-` and a transition
//!   start a nested *list*, and so does `.` before a qualifier (`1.0.RC1` reads as
//!   `1.0-RC1`);
//! - numbers compare numerically, but by kind first: up to 9 digits (an `int`) <
//!   10–18 digits (a `long`) < longer (a `BigInteger`), counting digits after leading
//!   zeros are stripped — so `0000000000` is a `long` zero, above every `int`;
//! - qualifiers: `alpha` = `a` (before a digit) < `beta` = `b` < `milestone` = `m` <
//!   `rc` = `cr` < `snapshot` < (none) = `ga` = `final` = `release` < `sp` < any other
//!   string, other strings in lexical (UTF-16) order;
//! - a number > a nested list > a qualifier; trailing zeros, empty qualifiers and empty
//!   lists are dropped (`1.0.0` = `1`, `1-ga` = `1`), and a missing item compares as
//!   "nothing" (`1-rc < 1 < 1-sp < 1.1`).
//!
//! Digits are what Java's `Character.isDigit(char)` accepts (Unicode `Nd` in the Basic
//! Multilingual Plane, Unicode 13 as in Java 17), each with its numeric value; lower-casing
//! is Rust's, except for the characters that Unicode 13 did not yet have, which Java 17
//! leaves alone. One known difference remains: whether a capital sigma becomes final
//! `ς` or `σ` is decided by Java with its word `BreakIterator` and here by Unicode's
//! Final_Sigma rule; they differ when `Σ` ends a letter run that continues after `-`,
//! `_` or digits (`ΑΣ-x`), which only changes how such a qualifier sorts.
//!
//! Maven's order is not transitive for some versions, and neither is this one, since
//! it answers every comparison as Maven does: `0 < 0-0-1 < 0.rc.foo < 0` (a nested
//! list is above a qualifier, yet `0.rc.foo`, a list starting with a pre-release
//! qualifier, is below "nothing"). Sorting such versions with `slice::sort` may panic
//! (the standard library checks for a total order); sort them with a method that does
//! not, or compare pairs.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use super::{InvalidVersion, VersionError};

/// A Maven version.
///
/// Equality, ordering and hashing follow `ComparableVersion`: `1.0`, `1`, `1-ga` and
/// `1.0.0.FINAL` are all equal. [`Display`](fmt::Display) prints the version as given;
/// [`canonical`](Self::canonical) is Maven's `getCanonical()`.
///
/// ```
/// use trawl_advisory::version::MavenVersion;
///
/// let v = |s| MavenVersion::parse(s).unwrap();
/// assert!(v("1.0-alpha-1") < v("1.0-RC1") && v("1.0-RC1") < v("1.0") && v("1.0") < v("1.0-sp"));
/// assert_eq!(v("1.0.0.Final"), v("1"));
/// assert_eq!(v("1.0-CR2").canonical(), "1-rc-2");
/// ```
#[derive(Debug, Clone)]
pub struct MavenVersion {
    text: String,
    items: Items,
}

impl MavenVersion {
    /// Parses a version. Maven reads every string as a version; the only one refused
    /// here is the empty string, which Maven would read as `0`.
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        if input.is_empty() {
            return Err(VersionError::new(input, InvalidVersion::Empty));
        }
        Ok(Self {
            text: input.to_owned(),
            items: Items::parse(input),
        })
    }

    /// Compares with `other` parsed as a version; fails as [`parse`](Self::parse) would
    /// on `other`.
    pub(crate) fn cmp_str(&self, other: &str) -> Result<Ordering, VersionError> {
        Ok(self.cmp(&Self::parse(other)?))
    }

    /// The version as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Maven's canonical form (`ComparableVersion.getCanonical()`): items lower-cased,
    /// aliases resolved, zeros and empty qualifiers dropped, e.g. `1.0-RC1` → `1-rc-1`.
    pub fn canonical(&self) -> String {
        self.items.canonical()
    }
}

/// Compares two version strings as `ComparableVersion.compareTo` does.
///
/// Fails only if either string is empty (see [`MavenVersion::parse`]).
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    MavenVersion::parse(a)?.cmp_str(b)
}

impl FromStr for MavenVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for MavenVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Ord for MavenVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.items.cmp_with(&other.items)
    }
}

impl PartialOrd for MavenVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for MavenVersion {
    fn eq(&self, other: &Self) -> bool {
        // Normalised item trees compare equal exactly when they are identical (every
        // kind of item differs from every other kind, and normalisation leaves no
        // list that equals "nothing"), so structural equality is Maven's equality.
        self.items == other.items
    }
}

impl Eq for MavenVersion {}

impl Hash for MavenVersion {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.items.hash(state);
    }
}

/// One item that is not a list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Atom {
    /// A number of at most 9 digits (Java `IntItem`).
    Int(u32),
    /// A number of 10 to 18 digits (`LongItem`).
    Long(u64),
    /// A longer number (`BigIntegerItem`): its value in ASCII digits, no leading zeros.
    Big(Box<str>),
    /// A qualifier (`StringItem`), aliases resolved.
    Text(Box<str>),
}

/// The qualifiers Maven knows, in order; `""` is a release.
const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
const RELEASE_RANK: usize = 5;

impl Atom {
    fn text(value: &str, followed_by_digit: bool) -> Self {
        let value = match value {
            "a" if followed_by_digit => "alpha",
            "b" if followed_by_digit => "beta",
            "m" if followed_by_digit => "milestone",
            "ga" | "final" | "release" => "",
            "cr" => "rc",
            other => other,
        };
        Self::Text(value.into())
    }

    /// `parseItem(true, digits)`: a run of digits by kind and value.
    fn number(digits: &str) -> Self {
        // `stripLeadingZeroes` strips ASCII zeros only, and keeps an all-zero run whole.
        let stripped = digits.trim_start_matches('0');
        let kind_digits = if stripped.is_empty() {
            digits
        } else {
            stripped
        };
        let len = kind_digits.chars().count();
        let mut value = String::with_capacity(kind_digits.len());
        for c in kind_digits.chars() {
            let digit = java_digit(c).unwrap_or(0);
            if !(value.is_empty() && digit == 0) {
                value.push(char::from(b'0' + digit));
            }
        }
        if len <= 9 {
            Self::Int(value.parse().unwrap_or(0))
        } else if len <= 18 {
            Self::Long(value.parse().unwrap_or(0))
        } else {
            if value.is_empty() {
                value.push('0');
            }
            Self::Big(value.into())
        }
    }

    fn is_null(&self) -> bool {
        match self {
            Self::Int(v) => *v == 0,
            Self::Long(v) => *v == 0,
            Self::Big(v) => &**v == "0",
            Self::Text(v) => v.is_empty(),
        }
    }

    /// `item.compareTo(null)`: against "no item".
    fn cmp_nothing(&self) -> Ordering {
        match self {
            Self::Text(v) => qualifier_rank(v).cmp_release(),
            number if number.is_null() => Ordering::Equal,
            _ => Ordering::Greater,
        }
    }

    fn cmp_atom(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Text(a), Self::Text(b)) => qualifier_rank(a).cmp(&qualifier_rank(b)),
            (Self::Text(_), _) => Ordering::Less,
            (_, Self::Text(_)) => Ordering::Greater,
            (Self::Int(a), Self::Int(b)) => a.cmp(b),
            (Self::Long(a), Self::Long(b)) => a.cmp(b),
            (Self::Big(a), Self::Big(b)) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
            (a, b) => a.kind().cmp(&b.kind()),
        }
    }

    fn kind(&self) -> u8 {
        match self {
            Self::Int(_) => 0,
            Self::Long(_) => 1,
            Self::Big(_) => 2,
            Self::Text(_) => 3,
        }
    }

    fn is_number(&self) -> bool {
        !matches!(self, Self::Text(_))
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(v) => v.fmt(f),
            Self::Long(v) => v.fmt(f),
            Self::Big(v) | Self::Text(v) => f.write_str(v),
        }
    }
}

/// `StringItem.comparableQualifier`: known qualifiers by index, then the others.
#[derive(Debug, PartialEq, Eq)]
enum Rank<'a> {
    Known(usize),
    Other(&'a str),
}

fn qualifier_rank(value: &str) -> Rank<'_> {
    match QUALIFIERS.iter().position(|q| *q == value) {
        Some(i) => Rank::Known(i),
        None => Rank::Other(value),
    }
}

impl Rank<'_> {
    fn cmp_release(&self) -> Ordering {
        match self {
            Self::Known(i) => i.cmp(&RELEASE_RANK),
            Self::Other(_) => Ordering::Greater,
        }
    }
}

impl Ord for Rank<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Known(a), Self::Known(b)) => a.cmp(b),
            (Self::Known(_), Self::Other(_)) => Ordering::Less,
            (Self::Other(_), Self::Known(_)) => Ordering::Greater,
            // Java compares strings by UTF-16 code unit.
            (Self::Other(a), Self::Other(b)) => a.encode_utf16().cmp(b.encode_utf16()),
        }
    }
}

impl PartialOrd for Rank<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The item tree. Maven only ever nests a new list as the last element of the
/// current one, so the tree is a chain: `lists[k]` holds the atoms of the list at
/// depth `k`, whose last element is the list `lists[k + 1]` when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Items {
    lists: Vec<Vec<Atom>>,
}

/// An element of a list: an atom, or the nested list at some depth.
enum Element<'a> {
    Atom(&'a Atom),
    List(usize),
}

impl Items {
    /// `ComparableVersion.parseVersion`.
    fn parse(version: &str) -> Self {
        let version = java_lowercase(version);
        let mut lists: Vec<Vec<Atom>> = vec![Vec::new()];
        let mut is_digit = false;
        // Byte offsets; every split point is at a character boundary.
        let mut start = 0;
        for (i, c) in version.char_indices() {
            let next = i + c.len_utf8();
            if c == '.' || c == '-' {
                let item = if i == start {
                    Atom::Int(0)
                } else {
                    parse_item(is_digit, &version[start..i])
                };
                current(&mut lists).push(item);
                start = next;
                if c == '-' {
                    lists.push(Vec::new());
                }
            } else if java_digit(c).is_some() {
                if !is_digit && i > start {
                    // `1.0.0.X1 < 1.0.0-X2`: a qualifier after `.` starts a list too.
                    if !current(&mut lists).is_empty() {
                        lists.push(Vec::new());
                    }
                    current(&mut lists).push(Atom::text(&version[start..i], true));
                    start = i;
                    lists.push(Vec::new());
                }
                is_digit = true;
            } else {
                if is_digit && i > start {
                    current(&mut lists).push(parse_item(true, &version[start..i]));
                    start = i;
                    lists.push(Vec::new());
                }
                is_digit = false;
            }
        }
        if version.len() > start {
            if !is_digit && !current(&mut lists).is_empty() {
                lists.push(Vec::new());
            }
            current(&mut lists).push(parse_item(is_digit, &version[start..]));
        }
        // `ListItem.normalize`, innermost list first: drop the nested list if it is
        // empty, then trailing null atoms (a non-empty nested list is stepped over).
        for depth in (0..lists.len()).rev() {
            if lists.len() == depth + 2 && lists[depth + 1].is_empty() {
                lists.pop();
            }
            let list = &mut lists[depth];
            while list.last().is_some_and(Atom::is_null) {
                list.pop();
            }
        }
        Self { lists }
    }

    /// Element `index` of the list at `depth`, if it has that many.
    fn element(&self, depth: usize, index: usize) -> Option<Element<'_>> {
        let atoms = &self.lists[depth];
        match index.cmp(&atoms.len()) {
            Ordering::Less => Some(Element::Atom(&atoms[index])),
            Ordering::Equal if depth + 1 < self.lists.len() => Some(Element::List(depth + 1)),
            _ => None,
        }
    }

    /// `list.compareTo(null)` for the list at `depth`: its first element that is not
    /// "nothing" decides.
    fn list_cmp_nothing(&self, depth: usize) -> Ordering {
        self.lists[depth..]
            .iter()
            .flatten()
            .map(Atom::cmp_nothing)
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }

    /// `ListItem.compareTo(ListItem)` of the two roots, iteratively: the nested list is
    /// always the last element, so comparing two nested lists is a tail call.
    fn cmp_with(&self, other: &Self) -> Ordering {
        let (mut da, mut db) = (0, 0);
        let mut index = 0;
        loop {
            let order = match (self.element(da, index), other.element(db, index)) {
                (None, None) => return Ordering::Equal,
                (Some(Element::Atom(a)), None) => a.cmp_nothing(),
                (Some(Element::List(d)), None) => self.list_cmp_nothing(d),
                (None, Some(Element::Atom(b))) => b.cmp_nothing().reverse(),
                (None, Some(Element::List(d))) => other.list_cmp_nothing(d).reverse(),
                (Some(Element::Atom(a)), Some(Element::Atom(b))) => a.cmp_atom(b),
                // A number is above a list, a list above a qualifier.
                (Some(Element::Atom(a)), Some(Element::List(_))) => {
                    if a.is_number() {
                        Ordering::Greater
                    } else {
                        Ordering::Less
                    }
                }
                (Some(Element::List(_)), Some(Element::Atom(b))) => {
                    if b.is_number() {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    }
                }
                (Some(Element::List(a)), Some(Element::List(b))) => {
                    (da, db, index) = (a, b, 0);
                    continue;
                }
            };
            if order.is_ne() {
                return order;
            }
            index += 1;
        }
    }

    /// `ListItem.toString()` of the root: each list prints its atoms joined by `.`,
    /// then `-` and its nested list, the `-` only if it printed something before.
    fn canonical(&self) -> String {
        let mut out = String::new();
        for (depth, atoms) in self.lists.iter().enumerate() {
            let list_start = out.len();
            for atom in atoms {
                if out.len() > list_start {
                    out.push('.');
                }
                out.push_str(&atom.to_string());
            }
            if depth + 1 < self.lists.len() && out.len() > list_start {
                out.push('-');
            }
        }
        out
    }
}

fn current(lists: &mut [Vec<Atom>]) -> &mut Vec<Atom> {
    let last = lists.len() - 1;
    &mut lists[last]
}

fn parse_item(is_digit: bool, text: &str) -> Atom {
    if is_digit {
        Atom::number(text)
    } else {
        Atom::text(text, false)
    }
}

/// First code points of the runs of ten decimal digits that Java 17's
/// `Character.isDigit(char)` accepts (Unicode 13 `Nd` in the BMP); printed by Java
/// itself.
const JAVA_DIGIT_ZEROS: [u32; 37] = [
    0x0030, 0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6,
    0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80,
    0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0,
    0xFF10,
];

/// The value of `c` if Java counts it as a digit.
fn java_digit(c: char) -> Option<u8> {
    if c.is_ascii_digit() {
        return Some(c as u8 - b'0');
    }
    let c = u32::from(c);
    let zero = JAVA_DIGIT_ZEROS
        .iter()
        .rev()
        .find(|&&zero| zero <= c)
        .copied()?;
    (c - zero < 10).then(|| (c - zero) as u8)
}

/// Upper-case letters that Rust lower-cases but Java 17 does not know (assigned
/// after Unicode 13). The differential test checks every code point against Java.
const UNKNOWN_TO_JAVA17: [(u32, u32); 7] = [
    (0x1C89, 0x1C89),
    (0x2C2F, 0x2C2F),
    (0xA7C0, 0xA7C0),
    (0xA7CB, 0xA7DC),
    (0x10570, 0x10595),
    (0x10D50, 0x10D65),
    (0x16EA0, 0x16EB8),
];

fn unknown_to_java17(c: char) -> bool {
    let c = u32::from(c);
    UNKNOWN_TO_JAVA17
        .iter()
        .any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// `String.toLowerCase(Locale.ENGLISH)` as Java 17 does it.
fn java_lowercase(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    // Lower-case the runs between characters Java does not know: such a character
    // is neither cased nor case-ignorable for Java, so it ends the final-sigma
    // context exactly as the end of a run does for Rust.
    let mut out = String::with_capacity(s.len());
    let mut run_start = 0;
    for (i, c) in s.char_indices() {
        if unknown_to_java17(c) {
            out.push_str(&s[run_start..i].to_lowercase());
            out.push(c);
            run_start = i + c.len_utf8();
        }
    }
    out.push_str(&s[run_start..].to_lowercase());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> MavenVersion {
        MavenVersion::parse(s).expect("valid")
    }

    #[test]
    fn order_from_maven_docs() {
        // The order in Maven's "Version Order Specification" and ComparableVersion's
        // own Javadoc.
        let ascending = [
            "1-alpha1",
            "1-a2",
            "1-beta1",
            "1-b2",
            "1-milestone1",
            "1-m2",
            "1-rc1",
            "1-cr2",
            "1-snapshot",
            "1",
            "1-sp",
            "1-sp1",
            "1-abc",
            "1-1",
            "1.0.1",
            "1.1",
        ];
        for pair in ascending.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert!(v("1.0.RC2") < v("1.0-RC3") && v("1.0-RC3") < v("1.0.1"));
    }

    #[test]
    fn equalities() {
        for (a, b) in [
            ("1", "1.0.0"),
            ("1-ga", "1"),
            ("1.0.0.FINAL", "1"),
            ("1-release", "1"),
            ("1-CR1", "1-rc1"),
            ("1a1", "1-alpha-1"),
            ("1.0-0.0", "1"),
        ] {
            assert_eq!(v(a), v(b), "{a} = {b}");
        }
        assert_ne!(v("1.0000000000.1"), v("1.0.1"));
        assert!(
            v("1.0000000000.1") > v("1.0.1"),
            "a long zero is above an int"
        );
        assert!(v("1.99999999999999999999") > v("1.999999999999999999"));
    }

    #[test]
    fn canonical_forms() {
        for (input, canonical) in [
            ("1.0-RC1", "1-rc-1"),
            ("1.0.0", "1"),
            ("1-ga-1", "1-1"),
            ("1.0.0-SNAPSHOT", "1-snapshot"),
            ("ga.1", "1"),
            ("2.0.0.Final", "2"),
            ("1a1", "1-alpha-1"),
        ] {
            assert_eq!(v(input).canonical(), canonical, "{input}");
        }
        assert!(matches!(
            MavenVersion::parse("").expect_err("empty").reason,
            InvalidVersion::Empty
        ));
    }

    #[test]
    fn unicode_digits_and_case() {
        // U+0663 ARABIC-INDIC DIGIT THREE is a digit for Java; U+2163 ROMAN NUMERAL
        // FOUR is not.
        assert_eq!(v("1.\u{663}"), v("1.3"));
        assert!(java_digit('\u{2163}').is_none());
        assert_eq!(v("1-ΑΛΦΑ"), v("1-αλφα"));
        assert_eq!(java_lowercase("\u{10570}"), "\u{10570}");
    }
}
