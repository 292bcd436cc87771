//! Differential test: our Composer versions against composer/semver itself.
//!
//! The reference is `tests/reference/composer_compare.php`, run once under Debian's
//! PHP with Debian's `php-composer-semver` (composer/semver 3.3): `VersionParser::
//! normalize` for every string, `Comparator` on the normalised forms for every pair.
//! Versions: the upstream versions of Debian's `php-*` packages (real Packagist
//! versions, repackaged), the real Maven and NuGet versions of `fixtures/versions/`
//! (other ecosystems' real strings), and a few thousand generated around Composer's
//! rules (`v` prefix, four parts, stability suffixes in any case, `-dev`, dates,
//! branches, aliases, `@stability` flags, `+build`, blanks and newlines). Every
//! string's validity and normal form must agree; the valid ones are sorted with our
//! order, and every adjacent pair and a few thousand random pairs must get the same
//! answer from `Comparator::lessThan`, `equalTo` and `greaterThan` — except that
//! Composer does not order two different branches (all three are false), which must
//! then be the case.

mod support;

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Instant;

use support::Rng;
use trawl_advisory::version::ComposerVersion;

const AUTOLOAD: &str = "/usr/share/php/Composer/Semver/autoload.php";

fn generated_version(rng: &mut Rng) -> String {
    const NUMBERS: &[&str] = &[
        "0",
        "00",
        "1",
        "2",
        "9",
        "01",
        "10",
        "123",
        "2010",
        "12345",
        "123456",
        "1234567",
        "99999999999999999999",
        "9223372036854775807",
        "9223372036854775808",
    ];
    const STABILITIES: &[&str] = &[
        "stable", "Stable", "beta", "BETA", "b", "B", "RC", "rc", "Rc", "alpha", "Alpha", "a", "A",
        "patch", "pl", "p", "P", "dev", "DEV", "foo", "x", "X", "*",
    ];
    const SEPARATORS: &[&str] = &[".", ".", ".", "-", "-", "", "_", ":"];
    const TAILS: &[&str] = &[
        "-dev",
        ".dev",
        "dev",
        "-DEV",
        "+foo",
        "+foo.bar",
        "+",
        " as 1.0",
        " as dev-x",
        "@dev",
        "@stable",
        "@RC",
        "@beta",
        "@alpha",
        "@DEV",
        "\n",
        " ",
        "\n@dev",
        "@dev\n",
        "-x-dev",
        "#abc",
        ",",
        "..",
        "-",
    ];
    const WHOLE: &[&str] = &[
        "dev-master",
        "master",
        "trunk",
        "default",
        "DEV-x",
        "dev-",
        "dev",
        "Dev-Feature/Foo",
        "1.x-dev",
        "1.2.x-dev",
        "v1.*-dev",
        "1.X-dev",
        "1.2.3.x-dev",
        "1.2.3.4.x-dev",
        "20100102",
        "2010-01-02",
        "2010.01.02.5",
        "2010:01",
        "201001021530",
        "2010-01-02-10-20",
        "feature-dev",
        "x.1-dev",
        "1.0 as 2.0",
        "dev-a as 1.0@dev",
    ];
    let mut s = String::new();
    if rng.chance(15) {
        s.push_str(rng.pick(&[" ", "\t", "\n", "\0"]));
    }
    if rng.chance(8) {
        s.push_str(rng.pick(WHOLE));
    } else {
        if rng.chance(5) {
            s.push_str(rng.pick(&["v", "V"]));
        }
        for i in 0..1 + rng.below(5) {
            if i > 0 {
                s.push('.');
            }
            s.push_str(rng.pick(NUMBERS));
        }
        if rng.chance(2) {
            s.push_str(rng.pick(SEPARATORS));
            s.push_str(rng.pick(STABILITIES));
            if rng.chance(2) {
                s.push_str(rng.pick(&["", ".", "-"]));
                s.push_str(rng.pick(NUMBERS));
                if rng.chance(4) {
                    s.push_str(rng.pick(&[".", "-"]));
                    s.push_str(rng.pick(NUMBERS));
                }
            }
        }
    }
    for _ in 0..rng.below(3) {
        s.push_str(rng.pick(TAILS));
    }
    s
}

#[test]
fn composer_comparator_agrees() {
    if !support::runs("php", "--version") || !std::path::Path::new(AUTOLOAD).exists() {
        println!("php or composer/semver (php-cli, php-composer-semver) missing; skipping");
        return;
    }
    let started = Instant::now();
    let debian: BTreeSet<String> = support::debian_upstream_versions("php-")
        .into_iter()
        .collect();
    let support::Corpus {
        texts,
        others,
        generated,
        mut rng,
    } = support::Corpus::new(&debian, 0x636f_6d70_6f73_6572, 6000, generated_version);
    let parsed: Vec<_> = texts.iter().map(|t| ComposerVersion::parse(t)).collect();
    let version = |i: usize| parsed[i].as_ref().ok();
    let mut valid: Vec<usize> = (0..texts.len()).filter(|&i| parsed[i].is_ok()).collect();
    valid.sort_by(|&a, &b| version(a).cmp(&version(b)));
    let pairs: Vec<(usize, usize)> = support::pairs(valid.len(), 4000, &mut rng)
        .into_iter()
        .map(|(i, j)| (valid[i], valid[j]))
        .collect();

    let mut php = Command::new("php");
    php.arg(support::test_file("reference/composer_compare.php"));
    let (answers, pair_answers) = support::ask_reference(php, &texts, &pairs).expect("php runs");

    let mut disagreements = Vec::new();
    for ((text, ours), answer) in texts.iter().zip(&parsed).zip(&answers) {
        let theirs = match answer.split_once(' ') {
            Some(("1", normalized)) => Some(support::unhex(normalized).expect("hex")),
            _ => None,
        };
        let ours = ours.as_ref().ok().map(|v| v.normalized().to_owned());
        if ours != theirs {
            disagreements.push(format!("{text:?}: ours {ours:?}, Composer's {theirs:?}"));
        }
    }
    let mut branch_pairs = 0;
    for (&(i, j), answer) in pairs.iter().zip(&pair_answers) {
        let (Some(a), Some(b)) = (version(i), version(j)) else {
            continue;
        };
        let expected = if a.is_branch() && b.is_branch() && a.normalized() != b.normalized() {
            branch_pairs += 1;
            "0 0 0"
        } else {
            match a.cmp(b) {
                Ordering::Less => "1 0 0",
                Ordering::Equal => "0 1 0",
                Ordering::Greater => "0 0 1",
            }
        };
        if answer != expected {
            disagreements.push(format!(
                "{:?} vs {:?} (normalised {:?}, {:?}): ours {expected}, Composer's {answer}",
                texts[i],
                texts[j],
                a.normalized(),
                b.normalized()
            ));
        }
    }
    println!(
        "composer differential: {} strings ({} Debian php-* upstream, {} other real, {} \
         generated), {} valid; {} pairs ({} adjacent, 4000 random; {branch_pairs} between two \
         branches) in {:.1?}; {} disagreements",
        texts.len(),
        debian.len(),
        others,
        generated,
        valid.len(),
        pairs.len(),
        valid.len().saturating_sub(1),
        started.elapsed(),
        disagreements.len()
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements with Composer, first ones: {:#?}",
        disagreements.len(),
        &disagreements[..disagreements.len().min(20)]
    );
}
