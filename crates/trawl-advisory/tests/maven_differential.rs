//! Differential test: our Maven ordering against Maven's own `ComparableVersion`.
//!
//! The reference is `tests/reference/MavenCompare.java`, compiled with `javac` against
//! Debian's `maven-artifact` jar (package `libmaven3-core-java`, Maven 3.8.7) and run
//! once in one JVM. Versions: the real ones of `fixtures/versions/maven.txt`, those of
//! Debian's local Maven repository (`/usr/share/maven-repo`), a few thousand generated
//! around Maven's rules (qualifiers, separators, zero padding, number kinds, Unicode
//! digits and letters), and every character whose lower case differs from itself
//! (to pin Java 17's case mapping). They are sorted with our order; every adjacent
//! pair and a few thousand random pairs go to Java, whose `compareTo` must agree; so
//! must every canonical form, and `equals` must hold exactly for the equal pairs.

mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Instant;

use support::Rng;
use trawl_advisory::version::MavenVersion;

const JARS: &[&str] = &[
    "/usr/share/maven/lib/maven-artifact-3.x.jar",
    "/usr/share/java/maven3-artifact.jar",
    "/usr/share/java/maven-artifact.jar",
];

fn local_repository_versions() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![std::path::PathBuf::from("/usr/share/maven-repo")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "pom")
                && let Some(version) = dir.file_name().and_then(|n| n.to_str())
            {
                out.insert(version.to_owned());
            }
        }
    }
    out
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
        "999999999",
        "1000000000",
        "0000000000",
        "2147483648",
        "123456789012345678",
        "1234567890123456789",
        "000000000000000000001",
        "99999999999999999999999",
        "٣",
        "٠٠",
        "१०",
        "０",
        "1٣",
    ];
    const WORDS: &[&str] = &[
        "alpha",
        "a",
        "beta",
        "b",
        "milestone",
        "m",
        "rc",
        "cr",
        "snapshot",
        "ga",
        "final",
        "release",
        "sp",
        "SP",
        "Alpha",
        "RC",
        "Final",
        "GA",
        "SNAPSHOT",
        "foo",
        "x",
        "z",
        "abc",
        "pre",
        "dev",
        "jre",
        "android",
        "RELEASE",
        "ñ",
        "İ",
        "ΑΛΦΑ",
        "ΩΜΈΓΑ",
        "ﬀ",
        "é",
        "Ǆ",
        "𝟙",
        "Ⅻ",
    ];
    const SEPARATORS: &[&str] = &[".", ".", ".", "-", "-", "", "_", "+", " "];
    let mut s = String::new();
    if rng.chance(20) {
        s.push_str(rng.pick(&[".", "-", "v"]));
    }
    for i in 0..1 + rng.below(6) {
        if i > 0 {
            s.push_str(rng.pick(SEPARATORS));
        }
        if rng.chance(3) {
            s.push_str(rng.pick(WORDS));
        } else {
            s.push_str(rng.pick(NUMBERS));
        }
    }
    if rng.chance(15) {
        s.push_str(rng.pick(&[".", "-", "..", "--", ".-"]));
    }
    s
}

/// Characters whose lower case differs from themselves, for Rust (a superset of
/// Java 17's, whose Unicode is older), one per version.
fn lowercase_probes() -> Vec<String> {
    (0..=0x10FFFFu32)
        .filter_map(char::from_u32)
        .filter(|c| !c.is_ascii() && c.to_lowercase().ne([*c]))
        .map(String::from)
        .collect()
}

#[test]
fn comparable_version_agrees() {
    let Some(jar) = support::first_existing(JARS) else {
        println!("Maven's maven-artifact jar is not installed (libmaven3-core-java); skipping");
        return;
    };
    if !support::runs("javac", "-version") || !support::runs("java", "-version") {
        println!("javac/java are not installed (openjdk-17-jdk-headless); skipping");
        return;
    }
    let started = Instant::now();
    let classes = tempfile::tempdir().expect("temp dir");
    let status = Command::new("javac")
        .arg("-cp")
        .arg(&jar)
        .arg("-d")
        .arg(classes.path())
        .arg(support::test_file("reference/MavenCompare.java"))
        .status()
        .expect("javac runs");
    assert!(status.success(), "javac failed");

    let real: BTreeSet<String> = support::fixture_lines("fixtures/versions/maven.txt")
        .into_iter()
        .chain(local_repository_versions())
        .collect();
    let mut rng = Rng(0x6d61_7665_6e21_2026);
    let mut generated = BTreeSet::new();
    while generated.len() < 4000 {
        let v = generated_version(&mut rng);
        if !v.is_empty() && !real.contains(&v) {
            generated.insert(v);
        }
    }
    let probes = lowercase_probes();
    let versions: Vec<MavenVersion> = real
        .iter()
        .chain(&generated)
        .chain(&probes)
        .map(|v| MavenVersion::parse(v).expect("every non-empty string is a Maven version"))
        .collect();
    // Maven's order is not transitive everywhere (see `support::merge_sort_by`).
    let mut order: Vec<usize> = (0..versions.len()).collect();
    support::merge_sort_by(&mut order, &|&a, &b| versions[a] <= versions[b]);
    let versions: Vec<MavenVersion> = order.into_iter().map(|i| versions[i].clone()).collect();
    let sorted = Instant::now();
    let texts: Vec<String> = versions.iter().map(|v| v.as_str().to_owned()).collect();
    let pairs = support::pairs(versions.len(), 4000, &mut rng);

    let mut java = Command::new("java");
    java.arg("-cp")
        .arg(format!("{}:{}", classes.path().display(), jar.display()))
        .arg("MavenCompare");
    let (canonicals, answers) =
        support::ask_reference(java, &texts, &pairs).expect("the reference runs");
    let asked = Instant::now();

    let mut disagreements = Vec::new();
    for (v, answer) in versions.iter().zip(&canonicals) {
        let theirs = support::unhex(answer).expect("hex");
        if v.canonical() != theirs {
            disagreements.push(format!(
                "canonical of {:?}: ours {:?}, Maven's {theirs:?}",
                v.as_str(),
                v.canonical()
            ));
        }
    }
    for (&(i, j), answer) in pairs.iter().zip(&answers) {
        let (a, b) = (&versions[i], &versions[j]);
        let ours = match a.cmp(b) {
            std::cmp::Ordering::Less => "-1",
            std::cmp::Ordering::Equal => "0",
            std::cmp::Ordering::Greater => "1",
        };
        let (sign, equals) = answer.split_once(' ').expect("two fields");
        if sign != ours || (equals == "1") != (ours == "0") {
            disagreements.push(format!(
                "{:?} vs {:?}: ours {ours}, Maven's compareTo {sign} equals {equals}",
                a.as_str(),
                b.as_str()
            ));
        }
    }
    println!(
        "maven differential: {} versions ({} real, {} generated, {} case probes), {} pairs \
         ({} adjacent, 4000 random) in {:.1?} (parse and sort {:.1?}, javac and java {:.1?}); \
         {} disagreements",
        versions.len(),
        real.len(),
        generated.len(),
        probes.len(),
        pairs.len(),
        versions.len() - 1,
        started.elapsed(),
        sorted - started,
        asked - sorted,
        disagreements.len()
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements with Maven, first ones: {:#?}",
        disagreements.len(),
        &disagreements[..disagreements.len().min(20)]
    );
}
