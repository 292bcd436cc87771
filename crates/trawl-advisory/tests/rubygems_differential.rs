//! Differential test: our RubyGems versions against Ruby's own `Gem::Version`.
//!
//! The reference is `tests/reference/gem_compare.rb`, run once under Debian's Ruby
//! (RubyGems 3.3). Versions: those of the gems this Ruby has installed, the upstream
//! versions of Debian's `ruby-*` packages (real gem versions, repackaged), the real
//! Maven and NuGet versions of `fixtures/versions/` (other ecosystems' real strings,
//! for validity), and a few thousand generated around RubyGems' rules (segments,
//! prerelease letters, `-` as `.pre.`, zero padding, blanks, invalid characters).
//! Every string's validity (`Gem::Version.correct?`), prerelease flag and canonical
//! segments must agree; the valid ones are sorted with our order, and every adjacent
//! pair and a few thousand random pairs must compare as `<=>` does.

mod support;

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Instant;

use support::Rng;
use trawl_advisory::version::{GemVersion, InvalidVersion};

fn installed_gem_versions() -> Vec<String> {
    Command::new("ruby")
        .args(["-e", "Gem::Specification.each { |s| puts s.version }"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

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
        "99999999999999999999",
    ];
    const WORDS: &[&str] = &["a", "b", "pre", "rc", "A", "Z", "beta", "alpha", "RC", "x"];
    const SEPARATORS: &[&str] = &[".", ".", ".", "-", "-", ""];
    const BLANKS: &[&str] = &[" ", "\t", "\n", "\u{b}", "\u{c}", "\r", "  "];
    const JUNK: &[&str] = &["_", "+", "é", "..", "--", "~", "\u{a0}", "\0", ",", "v"];
    let mut s = String::new();
    if rng.chance(10) {
        s.push_str(rng.pick(BLANKS));
    }
    if rng.chance(25) {
        s.push_str(rng.pick(WORDS));
    }
    for i in 0..1 + rng.below(6) {
        if i > 0 {
            s.push_str(rng.pick(SEPARATORS));
        }
        if i > 0 && rng.chance(3) {
            s.push_str(rng.pick(WORDS));
        } else {
            s.push_str(rng.pick(NUMBERS));
        }
        if rng.chance(40) {
            s.push_str(rng.pick(JUNK));
        }
    }
    if rng.chance(20) {
        s.push_str(rng.pick(&[".", "-", "-a-", ".-"]));
    }
    if rng.chance(10) {
        s.push_str(rng.pick(BLANKS));
    }
    s
}

#[test]
fn gem_version_agrees() {
    if !support::runs("ruby", "--version") {
        println!("ruby is not installed; skipping the RubyGems differential test");
        return;
    }
    let started = Instant::now();
    let mut real: BTreeSet<String> = installed_gem_versions().into_iter().collect();
    let installed = real.len();
    real.extend(support::debian_upstream_versions("ruby-"));
    let debian = real.len() - installed;
    let support::Corpus {
        texts,
        others,
        generated,
        mut rng,
    } = support::Corpus::new(&real, 0x7275_6279_6765_6d73, 5000, generated_version);

    // Every string goes to Ruby, valid or not; the pairs are among the ones we find
    // valid, sorted by our order (a validity disagreement fails the test anyway).
    let parsed: Vec<_> = texts.iter().map(|t| GemVersion::parse(t)).collect();
    let mut valid: Vec<usize> = (0..texts.len()).filter(|&i| parsed[i].is_ok()).collect();
    let version = |i: usize| parsed[i].as_ref().ok();
    valid.sort_by(|&a, &b| version(a).cmp(&version(b)));
    let pairs: Vec<(usize, usize)> = support::pairs(valid.len(), 4000, &mut rng)
        .into_iter()
        .map(|(i, j)| (valid[i], valid[j]))
        .collect();
    let (answers, pair_answers) =
        support::ask_reference(gem_command(), &texts, &pairs).expect("ruby runs");

    let mut disagreements = Vec::new();
    for ((text, ours), answer) in texts.iter().zip(&parsed).zip(&answers) {
        let fields: Vec<&str> = answer.split(' ').collect();
        match (ours, fields.as_slice()) {
            (Ok(v), ["1", prerelease, canonical]) => {
                let canonical = support::unhex(canonical).expect("hex");
                if v.canonical() != canonical || (*prerelease == "1") != v.is_prerelease() {
                    disagreements.push(format!(
                        "{text:?}: ours {} prerelease {}, Ruby's {canonical} prerelease {prerelease}",
                        v.canonical(),
                        v.is_prerelease()
                    ));
                }
            }
            // Ruby reads a blank string as "0"; we refuse it on purpose.
            (Err(e), ["1", "0", ""]) if e.reason == InvalidVersion::Empty => {}
            (Err(_), ["0"]) => {}
            _ => disagreements.push(format!(
                "{text:?}: ours {:?}, Ruby's correct? answer {answer:?}",
                ours.as_ref().map(GemVersion::canonical)
            )),
        }
    }
    for (&(i, j), answer) in pairs.iter().zip(&pair_answers) {
        let (a, b) = (version(i), version(j));
        let ours = match a.cmp(&b) {
            Ordering::Less => "-1",
            Ordering::Equal => "0",
            Ordering::Greater => "1",
        };
        if answer != ours {
            disagreements.push(format!(
                "{:?} <=> {:?}: ours {ours}, Ruby's {answer}",
                texts[i], texts[j]
            ));
        }
    }
    println!(
        "rubygems differential: {} strings ({installed} installed gems, {debian} Debian ruby-* \
         upstream, {} other real, {} generated), {} valid; {} pairs ({} adjacent, 4000 random) \
         in {:.1?}; {} disagreements",
        texts.len(),
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
        "{} disagreements with Ruby, first ones: {:#?}",
        disagreements.len(),
        &disagreements[..disagreements.len().min(20)]
    );
    assert!(installed > 0, "ruby lists no installed gems");
}

fn gem_command() -> Command {
    let mut ruby = Command::new("ruby");
    ruby.arg(support::test_file("reference/gem_compare.rb"));
    ruby
}
