//! Every vector of apk-tools' own `test/unit/version.data` must hold.
//!
//! Line format, as apk-tools' `version_test.c` reads it: text after `#` is a
//! comment; `A OP B` asserts that `apk_version_match(A, OP, B)` holds, `A !OP B`
//! that it does not; a lone `V` asserts that `V` is valid, `!V` that it is not. `OP`
//! is made of `<`, `>`, `=` and `~` (fuzzy: `B` matches as a prefix of `A`).

use std::cmp::Ordering;

use trawl_advisory::version::apk;

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/apk/version.data"
);

/// `apk_version_match`: whether the comparison result is among those `op` allows.
fn holds(a: &str, op: &str, b: &str) -> bool {
    let fuzzy = op.contains('~');
    let order = if fuzzy {
        apk::compare_fuzzy(a, b)
    } else {
        apk::compare(a, b)
    };
    let allowed = |c: char| op.contains(c) || (c == '=' && fuzzy);
    match order {
        Ordering::Less => allowed('<'),
        Ordering::Equal => allowed('='),
        Ordering::Greater => allowed('>'),
    }
}

#[test]
fn every_vector_holds() {
    let text = std::fs::read_to_string(DATA).expect("the apk fixture is readable");
    let (mut comparisons, mut validity, mut failures) = (0, 0, Vec::new());
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        let ok = match fields[..] {
            [a, op, b] => {
                comparisons += 1;
                let (negated, op) = match op.strip_prefix('!') {
                    Some(op) => (true, op),
                    None => (false, op),
                };
                assert!(
                    !op.is_empty() && op.chars().all(|c| "<>=~".contains(c)),
                    "line {}: operator {op:?}",
                    number + 1
                );
                holds(a, op, b) != negated
            }
            [version] => {
                validity += 1;
                match version.strip_prefix('!') {
                    Some(invalid) => !apk::is_valid(invalid),
                    None => apk::is_valid(version),
                }
            }
            _ => panic!("line {}: unexpected format {line:?}", number + 1),
        };
        if !ok {
            failures.push(format!("line {}: {line}", number + 1));
        }
    }
    assert!(
        failures.is_empty(),
        "failed vectors:\n{}",
        failures.join("\n")
    );
    // The fixture's size, so that a truncated copy cannot pass quietly.
    assert_eq!((comparisons, validity), (754, 31), "vectors read");
}

#[test]
fn sorting_is_consistent_with_pairwise_comparison() {
    // Every valid version of the fixture, sorted with `Ord`, must also be ordered
    // pairwise by apk's comparison: a check of transitivity over real data.
    let text = std::fs::read_to_string(DATA).expect("readable");
    let mut versions: Vec<trawl_advisory::ApkVersion> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .flat_map(|l| l.split(' ').collect::<Vec<_>>())
        .filter_map(|v| trawl_advisory::ApkVersion::parse(v).ok())
        .collect();
    versions.sort();
    assert!(versions.len() > 500, "{}", versions.len());
    for (i, a) in versions.iter().enumerate() {
        for b in &versions[i..] {
            assert_ne!(
                apk::compare(a.as_str(), b.as_str()),
                Ordering::Greater,
                "{a} sorted before {b}"
            );
        }
    }
}
