//! NuGet versions against NuGet.Versioning's own published test vectors.
//!
//! .NET does not run here, so instead of a differential test this file transcribes the
//! parse and comparison cases of NuGet.Client's NuGet.Versioning tests, at commit
//! fac35579c8c3c92799361e5695e9f7539b4fd5a2 (test directory last changed in
//! 7a1e5b1a14edf281e82bf65d5cc55339f92dacdf), from
//! `test/NuGet.Core.Tests/NuGet.Versioning.Test/`:
//! - `NuGetVersionTest.cs`: `ParseThrowsIfStringIsNotAValidSemVer`,
//!   `ParseReadsLegacyStyleVersionNumbers`, `ParseReadsSemverAndHybridSemverVersionNumbers`,
//!   `ParseIgnoresLeadingAndTrailingWhitespace`, `TryParseHandlesValidVersionPatterns`,
//!   `StringConstructorParsesValuesCorrectly`, `SemVerLessThanAndGreaterThanOperatorsWorks`,
//!   `SemVerEqualsOperatorWorks`, `ToStringReturnsNormalizedForSemVer2`;
//! - `VersionComparerTests.cs`: `VersionComparisonDefaultEqual`,
//!   `VersionComparisonDefaultEqualWithNuGetVersion`,
//!   `VersionComparisonDefaultNotEqualWithNuGetVersion`, `VersionComparisonDefaultLess`;
//! - `VersionParsingTests.cs`: `VersionLength`, `ReleaseLabelParsing`, `MetadataParsing`,
//!   `VersionParsing`;
//! - `SemVer201SpecTests.cs`: the release-label and metadata rules and the precedence
//!   cases, which `NuGetVersion` shares with `SemanticVersion` (same `IsValidPart`, same
//!   comparer).
//!
//! On top of the vectors: every real version of `fixtures/versions/nuget.txt` (served by
//! the NuGet gallery, so valid) must parse, and where a real version is also a strict
//! SemVer 2.0.0 version the NuGet order must equal SemVer precedence on lower-cased
//! labels (the `semver` crate's), over every adjacent and a few thousand random pairs.

mod support;

use std::cmp::Ordering;

use support::Rng;
use trawl_advisory::version::NuGetVersion;

fn v(s: &str) -> NuGetVersion {
    NuGetVersion::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

#[test]
fn invalid_versions() {
    // NuGetVersionTest.ParseThrowsIfStringIsNotAValidSemVer (plus Parse's null/empty).
    let invalid = [
        "",
        "         ",
        "1beta",
        "1.2Av^c",
        "1.2..",
        "1.2.3.4.5",
        "1.2.3.Beta",
        "1.2.3.4This version is full of awesomeness!!",
        "So.is.this",
        "1.34.2Alpha",
        "1.34.2Release Candidate",
        "1.4.7-",
        "1.4.7-*",
        "1.4.7+*",
        "1.4.7-AA.01^",
        "1.4.7-AA.0A^",
        "1.4.7-A^A",
        "1.4.7+AA.01^",
        "1.2147483648",
        "1.1.2147483648",
        "1.1.1.2147483648",
        "1.1.1.1.2147483648",
        "10000000000000000000",
        "1.10000000000000000000",
        "1.1.10000000000000000000",
        "1.1.1.1.10000000000000000000",
        "1..2",
        "....",
        "..1",
        "-1.1.1.1",
        "1.-1.1.1",
        "1.1.-1.1",
        "1.1.1.-1",
        "1.",
        "1.1.",
        "1.1.1.",
        "1.1.1.1.",
        "1.1.1.1.1.",
        "1     1.1.1.1",
        "1.1     1.1.1",
        "1.1.1     1.1",
        "1.1.1.1     1",
        " .1.1.1",
        "1. .1.1",
        "1.1. .1",
        "1.1.1. ",
        "1 .",
        "1.1 .",
        "1.1.1 .",
        "1.1.1.1 .",
        "2147483648.2.3.4",
        "1.2147483648.3.4",
        "1.2.2147483648.4",
        "1.2.3.2147483648",
        "..1.2",
        "-1.2.3.4",
        "1.-2.3.4",
        "1.2.-3.4",
        "1.2.3.-4",
        "   1 9",
        "   19.   1 9",
        "   19.   19.   1 9",
        "   19.   19.   19.   1 9",
        "1 9   ",
        "19   .1 9   ",
        "19   .19   .1 9   ",
        "19   .19   .19   .1 9   ",
        "   1 9   ",
        "   19   .   1 9   ",
        "   19   .   19   .   1 9   ",
        "   19   .   19   .   19   .   1 9   ",
    ];
    // SemVer201SpecTests: empty, non-ASCII or otherwise invalid labels and metadata,
    // numeric labels with leading zeros.
    let invalid_labels = [
        "0.1.2-Alpha..2",
        "0.1.2-Alpha.",
        "0.1.2-.AA",
        "0.1.2-",
        "0.1.2-alp=ha",
        "0.1.2-alp┐jj",
        "0.1.2-a&444",
        "0.1.2-a.&.444",
        "0.1.2-02",
        "0.1.2-2.02",
        "0.1.2-2.A.02",
        "0.1.2-02.A",
        "0.1.2+ÄÄ",
        "0.1.2+22.2ÄÄ",
        "0.1.2+2+A",
        "0.1.2+02A.",
        "0.1.2+02..A",
        "0.1.2+",
    ];
    for s in invalid.into_iter().chain(invalid_labels) {
        assert!(NuGetVersion::parse(s).is_err(), "{s:?} should be invalid");
    }
}

#[test]
fn valid_versions_and_their_parts() {
    // TryParseHandlesValidVersionPatterns, ParseReadsLegacyStyleVersionNumbers,
    // ParseReadsSemverAndHybridSemverVersionNumbers, ParseIgnoresLeadingAndTrailingWhitespace,
    // StringConstructorParsesValuesCorrectly, VersionParsing: numbers and release.
    let cases: &[(&str, [u32; 4], &str)] = &[
        ("   19", [19, 0, 0, 0], ""),
        ("   19.   19", [19, 19, 0, 0], ""),
        ("   19.   19.   19", [19, 19, 19, 0], ""),
        ("   19.   19.   19.   19", [19, 19, 19, 19], ""),
        ("19   ", [19, 0, 0, 0], ""),
        ("19   .19   ", [19, 19, 0, 0], ""),
        ("19   .19   .19   ", [19, 19, 19, 0], ""),
        ("19   .19   .19   .19   ", [19, 19, 19, 19], ""),
        ("   19   ", [19, 0, 0, 0], ""),
        ("   19   .   19   ", [19, 19, 0, 0], ""),
        ("   19   .   19   .   19   ", [19, 19, 19, 0], ""),
        ("   19   .   19   .   19   .   19   ", [19, 19, 19, 19], ""),
        ("01.1.1.1", [1, 1, 1, 1], ""),
        ("1.01.1.1", [1, 1, 1, 1], ""),
        ("1.1.01.1", [1, 1, 1, 1], ""),
        ("1.1.1.01", [1, 1, 1, 1], ""),
        ("2147483647.1.1.1", [2147483647, 1, 1, 1], ""),
        ("1.2147483647.1.1", [1, 2147483647, 1, 1], ""),
        ("1.1.2147483647.1", [1, 1, 2147483647, 1], ""),
        ("1.1.1.2147483647", [1, 1, 1, 2147483647], ""),
        ("1.022", [1, 22, 0, 0], ""),
        ("23.2.3", [23, 2, 3, 0], ""),
        ("1.3.42.10133", [1, 3, 42, 10133], ""),
        ("1.022-Beta", [1, 22, 0, 0], "Beta"),
        ("23.2.3-Alpha", [23, 2, 3, 0], "Alpha"),
        ("1.3.42.10133-PreRelease", [1, 3, 42, 10133], "PreRelease"),
        ("1.3.42.200930-RC-2", [1, 3, 42, 200930], "RC-2"),
        ("  1.022-Beta", [1, 22, 0, 0], "Beta"),
        ("23.2.3-Alpha  ", [23, 2, 3, 0], "Alpha"),
        (
            "    1.3.42.10133-PreRelease  ",
            [1, 3, 42, 10133],
            "PreRelease",
        ),
        ("1.0.0", [1, 0, 0, 0], ""),
        ("2.3-alpha", [2, 3, 0, 0], "alpha"),
        ("3.4.0.3-RC-3", [3, 4, 0, 3], "RC-3"),
        ("1.0.0-beta.x.y.5.79.0+aa", [1, 0, 0, 0], "beta.x.y.5.79.0"),
        ("1.0.0-beta.x.y.5.79.0+AA", [1, 0, 0, 0], "beta.x.y.5.79.0"),
        ("0.0.0", [0, 0, 0, 0], ""),
        ("3.5.1", [3, 5, 1, 0], ""),
        ("234.234234.1111", [234, 234234, 1111, 0], ""),
        ("3.5.1+Meta", [3, 5, 1, 0], ""),
        ("3.5.1-x.y.z+AA", [3, 5, 1, 0], "x.y.z"),
        ("1.0.0-RC.X.35.A.3455+Meta", [1, 0, 0, 0], "RC.X.35.A.3455"),
    ];
    for &(s, numbers, release) in cases {
        let parsed = v(s);
        assert_eq!(parsed.numbers(), numbers, "{s:?}");
        assert_eq!(
            parsed.release_labels().collect::<Vec<_>>().join("."),
            release,
            "{s:?}"
        );
        assert_eq!(parsed.is_prerelease(), !release.is_empty(), "{s:?}");
    }
    // MetadataParsing.
    for (s, metadata) in [
        ("1.0.0-Beta", None),
        ("1.0.0-Beta+Meta", Some("Meta")),
        ("1.0.0-RC.X+MetaAA", Some("MetaAA")),
        ("1.0.0-RC.X.35.A.3455+Meta-A-B-C", Some("Meta-A-B-C")),
        ("1.0.0-beta.x.y.5.79.0+AA", Some("AA")),
    ] {
        assert_eq!(v(s).metadata(), metadata, "{s:?}");
    }
    // VersionLength and ToStringReturnsNormalizedForSemVer2 (ToNormalizedString).
    for (s, normalized) in [
        ("2", "2.0.0"),
        ("2.0", "2.0.0"),
        ("2.0.0", "2.0.0"),
        ("2.0.0.0", "2.0.0"),
        ("1.0+A", "1.0.0"),
        ("1.0-1.1", "1.0.0-1.1"),
        ("1.0-1.1+B.B", "1.0.0-1.1"),
        ("1.0.0009.01-1.1+A", "1.0.9.1-1.1"),
    ] {
        assert_eq!(v(s).normalized(), normalized, "{s:?}");
    }
    // SemVer201SpecTests: valid labels and metadata.
    for s in [
        "0.1.2-Alpha",
        "0.1.2-Alpha.2.34.5.453.345.345.345.345.A.B.bbbbbbb.Csdfdfdf",
        "0.1.2-Alpha-2-5Bdd",
        "0.1.2--",
        "0.1.2--B-C-",
        "0.1.2--B2.-.C.-A0-",
        "0.1.2+NoReleaseLabel",
        "0.1.2-02A",
        "0.1.2-2.02B",
        "0.1.2-2.A.02-",
        "0.1.2-A02.A",
        "0.1.2+02A",
        "0.1.2+A",
        "0.1.2+20349244.233.344.0",
        "0.1.2+203-49244.23-3.34-4.0-.-.-",
        "0.1.2+AAaaaaAAAaaaa",
        "0.1.2+-",
        "0.1.2+----.-.-.-",
        "0.1.2----+----",
        "0.1.2+02.02-02",
        "0.1.2+02",
        "0.1.2+000000",
        "1.2.3-X.y3+0",
        "1.2.3-0",
        "1.2.3+0",
    ] {
        v(s);
    }
    for s in ["0.1.2+AA-02A", "0.1.2+A.-A-02A"] {
        assert!(!v(s).is_prerelease(), "{s:?}");
    }
}

#[test]
fn comparisons() {
    // VersionComparisonDefaultEqual, VersionComparisonDefaultEqualWithNuGetVersion,
    // SemVerEqualsOperatorWorks, SemVerSortIgnoreReleaseCasing, EqualsIsTrueForEmptyRevision.
    let equal = [
        ("1.0.0", "1.0.0"),
        ("1.0.0-BETA", "1.0.0-beta"),
        ("1.0.0-BETA+AA", "1.0.0-beta+aa"),
        ("1.0.0-BETA.X.y.5.77.0+AA", "1.0.0-beta.x.y.5.77.0+aa"),
        ("1.0.0", "1.0.0+beta"),
        ("1.0", "1.0.0.0"),
        ("1.0+test", "1.0.0.0"),
        ("1.0.0.1-1.2.A", "1.0.0.1-1.2.a+A"),
        ("1.0.01", "1.0.1.0"),
        ("1.23.01", "1.23.1"),
        ("1.45.6", "1.45.6.0"),
        ("1.45.6-Alpha", "1.45.6-Alpha"),
        ("1.6.2-BeTa", "1.6.02-beta"),
        ("22.3.07     ", "22.3.07"),
        ("1.0", "1.0.0.0+beta"),
        ("1.0.0.0+beta.2", "1.0.0.0+beta.1"),
        ("1.2.3-a", "1.2.3-A"),
        ("1.2.3-A-b2-C", "1.2.3-a-B2-c"),
        ("1.0.0.0", "1.0.0"),
        ("4.3.0", "4.3"),
    ];
    for (a, b) in equal {
        assert_eq!(v(a).cmp(&v(b)), Ordering::Equal, "{a:?} = {b:?}");
        assert_eq!(v(a), v(b));
        assert_eq!(hash(&v(a)), hash(&v(b)), "{a:?} and {b:?} hash alike");
    }
    // VersionComparisonDefaultNotEqualWithNuGetVersion. (VersionComparisonDefaultNotEqual
    // is left out: its two-argument `Equals` resolves to `object.Equals` on the strings,
    // so it asserts nothing about versions; "1.0.0-BETA+AA" and "1.0.0-beta" are in fact
    // equal under the default comparer.)
    for (a, b) in [
        ("1.0", "1.0.0.1"),
        ("1.0+test", "1.0.0.1"),
        ("1.0.0.1-1.2.A", "1.0.0.1-1.2.a.A+A"),
        ("1.0.01", "1.0.1.2"),
    ] {
        assert_ne!(v(a), v(b), "{a:?} != {b:?}");
    }
    // VersionComparisonDefaultLess, SemVerLessThanAndGreaterThanOperatorsWorks, and
    // SemVer201SpecTests' precedence cases.
    let less = [
        ("0.0.0", "1.0.0"),
        ("1.0.0", "1.1.0"),
        ("1.0.0", "1.0.1"),
        ("1.999.9999", "2.1.1"),
        ("1.0.0-BETA", "1.0.0-beta2"),
        ("1.0.0-beta+AA", "1.0.0+aa"),
        ("1.0.0-BETA", "1.0.0-beta.1+AA"),
        ("1.0.0-BETA.X.y.5.77.0+AA", "1.0.0-beta.x.y.5.79.0+aa"),
        ("1.0.0-BETA.X.y.5.79.0+AA", "1.0.0-beta.x.y.5.790.0+abc"),
        ("1.0", "1.0.1"),
        ("1.23", "1.231"),
        ("1.4.5.6", "1.45.6"),
        ("1.4.5.6", "1.4.5.60"),
        ("1.01", "1.10"),
        ("1.01-alpha", "1.10-beta"),
        ("1.01.0-RC-1", "1.10.0-rc-2"),
        ("1.01-RC-1", "1.01"),
        ("1.01", "1.2-preview"),
        ("1.2.3", "1.2.4"),
        ("1.2.3", "2.0.0"),
        ("9.9.9", "10.1.1"),
        ("1.2.3-alpha", "1.2.3"),
        ("1.2.3-2", "1.2.3-3"),
        ("1.2.3-1.9", "1.2.3-1.50"),
        ("1.2.3-2A", "1.2.3-3A"),
        ("1.2.3-1.50A", "1.2.3-1.9A"),
        ("1.2.3-999999", "1.2.3-Z"),
        ("1.2.3-A.999999", "1.2.3-A.56-2"),
        ("1.2.3-a", "1.2.3-a.2"),
        ("1.2.3-a.2.3.4", "1.2.3-a.2.3.4.5"),
    ];
    for (a, b) in less {
        assert_eq!(v(a).cmp(&v(b)), Ordering::Less, "{a:?} < {b:?}");
        assert_eq!(v(b).cmp(&v(a)), Ordering::Greater, "{b:?} > {a:?}");
    }
}

fn hash(v: &NuGetVersion) -> u64 {
    use std::hash::{BuildHasher, RandomState};
    thread_local!(static STATE: RandomState = RandomState::new());
    STATE.with(|s| s.hash_one(v))
}

/// SemVer precedence of a strict SemVer 2.0.0 version, labels lower-cased; `None` when
/// the version is not strict SemVer or NuGet would read a label differently (a label
/// starting with `-`, or all digits beyond 32 bits, which NuGet compares as text).
fn as_semver(s: &str) -> Option<semver::Version> {
    let mut parsed = semver::Version::parse(&s.to_ascii_lowercase()).ok()?;
    parsed.build = semver::BuildMetadata::EMPTY;
    let numeric_beyond_i32 =
        |l: &str| l.bytes().all(|b| b.is_ascii_digit()) && l.parse::<i32>().is_err();
    if !parsed.pre.is_empty()
        && parsed
            .pre
            .split('.')
            .any(|l| l.starts_with('-') || numeric_beyond_i32(l))
    {
        return None;
    }
    Some(parsed)
}

#[test]
fn real_versions_parse_and_agree_with_semver_precedence() {
    let real = support::fixture_lines("fixtures/versions/nuget.txt");
    let mut versions: Vec<NuGetVersion> = real.iter().map(|s| v(s)).collect();
    versions.sort();
    for pair in versions.windows(2) {
        assert!(pair[0] <= pair[1]);
    }
    let strict: Vec<(semver::Version, &NuGetVersion)> = versions
        .iter()
        .filter(|n| n.numbers()[3] == 0)
        .filter_map(|n| as_semver(n.as_str()).map(|s| (s, n)))
        .collect();
    let mut rng = Rng(0x6e75_6765_7421_2026);
    let pairs = support::pairs(strict.len(), 4000, &mut rng);
    let mut disagreements = Vec::new();
    for &(i, j) in &pairs {
        let ((sa, na), (sb, nb)) = (&strict[i], &strict[j]);
        if sa.cmp_precedence(sb) != na.cmp(nb) {
            disagreements.push(format!("{} vs {}", na.as_str(), nb.as_str()));
        }
    }
    println!(
        "nuget: {} real versions parse; {} are strict SemVer; {} pairs compared with SemVer \
         precedence, {} disagreements",
        real.len(),
        strict.len(),
        pairs.len(),
        disagreements.len()
    );
    assert!(disagreements.is_empty(), "{disagreements:#?}");
    assert!(strict.len() > 1000, "the fixture should be mostly SemVer");
}

/// Three-part versions with random labels (mixed case, numeric, hyphenated) and
/// metadata: NuGet's order must be SemVer precedence on lower-cased labels.
#[test]
fn generated_versions_agree_with_semver_precedence() {
    const NUMBERS: &[&str] = &["0", "1", "2", "9", "10", "11", "100", "2147483647"];
    const LABELS: &[&str] = &[
        "alpha", "Alpha", "ALPHA", "beta", "Beta", "rc", "RC", "a", "B", "0", "1", "2", "10", "99",
        "x-y", "X-Y", "a1", "A1", "1a", "pre", "preview", "Preview", "z", "Z", "zz",
    ];
    let mut rng = Rng(0x6e75_6765_7467_656e);
    let mut generated = std::collections::BTreeSet::new();
    while generated.len() < 3000 {
        let mut s = format!(
            "{}.{}.{}",
            rng.pick(NUMBERS),
            rng.pick(NUMBERS),
            rng.pick(NUMBERS)
        );
        if !rng.chance(4) {
            for i in 0..1 + rng.below(3) {
                s.push(if i == 0 { '-' } else { '.' });
                s.push_str(rng.pick(LABELS));
            }
        }
        if rng.chance(5) {
            s.push_str(rng.pick(&["+build", "+Build.1", "+0"]));
        }
        generated.insert(s);
    }
    let mut versions: Vec<(semver::Version, NuGetVersion)> = generated
        .iter()
        .map(|s| (as_semver(s).expect("strict SemVer"), v(s)))
        .collect();
    versions.sort_by(|a, b| a.1.cmp(&b.1));
    let pairs = support::pairs(versions.len(), 4000, &mut rng);
    let disagreements: Vec<String> = pairs
        .iter()
        .filter(|&&(i, j)| {
            versions[i].0.cmp_precedence(&versions[j].0) != versions[i].1.cmp(&versions[j].1)
        })
        .map(|&(i, j)| format!("{} vs {}", versions[i].1.as_str(), versions[j].1.as_str()))
        .collect();
    println!(
        "nuget: {} generated versions; {} pairs compared with SemVer precedence, {} disagreements",
        versions.len(),
        pairs.len(),
        disagreements.len()
    );
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}
