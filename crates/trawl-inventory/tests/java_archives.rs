//! The Java archive reader against Debian's jars and a Spring Boot fat jar,
//! a war, an ear and a shaded jar made by the JDK's `jar` tool
//! (`scripts/lang-artifacts/build-binaries.sh`), each compared with what
//! `unzip -p` shows of its `pom.properties` and manifests
//! (`scripts/lang-artifacts/java-expected.py`); and against zip bombs and
//! broken archives written with the `zip` crate.

mod common_lang;

use std::fs::File;
use std::io::{Cursor, Write};
use std::path::PathBuf;

use trawl_inventory::java::{
    JavaArchive, JavaError, JavaEvidence, JavaLimits, packages, problem_location, read_archive,
};
use zip::write::SimpleFileOptions;

fn java_dir() -> PathBuf {
    common_lang::artifacts().join("java")
}

fn rows(archive: &JavaArchive) -> Vec<String> {
    archive
        .artifacts
        .iter()
        .map(|a| {
            format!(
                "{}\t{}\t{}\t{}\t{}",
                a.nested.join(" > "),
                a.group_id,
                a.artifact_id,
                a.version,
                a.found_by.as_str()
            )
        })
        .collect()
}

fn read_file(name: &str) -> JavaArchive {
    let path = java_dir().join(name);
    let mut f = File::open(&path).unwrap();
    let len = f.metadata().unwrap().len();
    read_archive(&mut f, len, name, &JavaLimits::default()).unwrap()
}

#[test]
fn every_archive_matches_unzip() {
    let mut names: Vec<String> = std::fs::read_dir(java_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| trawl_inventory::java::is_archive_name(n))
        .collect();
    names.sort();
    assert!(names.len() >= 14, "{names:?}");
    for name in &names {
        let archive = read_file(name);
        assert_eq!(archive.problems, [], "{name}");
        let want: Vec<String> =
            std::fs::read_to_string(java_dir().join(format!("{name}.expected.tsv")))
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect();
        assert!(!want.is_empty(), "{name}");
        assert_eq!(rows(&archive), want, "{name}");
    }
}

#[test]
fn spring_boot_jar_packages_carry_the_chain() {
    let archive = read_file("demo-boot-0.0.1-SNAPSHOT.jar");
    let pkgs = packages(&archive, "app/demo-boot.jar", Some("sha256:app"));
    let by_name = |n: &str| pkgs.iter().find(|p| p.name == n).unwrap();
    let own = by_name("com.example:demo-boot");
    assert!(own.nested.is_empty());
    assert_eq!(own.purl, "pkg:maven/com.example/demo-boot@0.0.1-SNAPSHOT");
    let lang = by_name("org.apache.commons:commons-lang3");
    assert_eq!(
        lang.location(),
        "app/demo-boot.jar!/BOOT-INF/lib/commons-lang3-3.12.0.jar"
    );
    assert_eq!(lang.found_by.as_deref(), Some("pom.properties"));
    assert_eq!(lang.layer.as_deref(), Some("sha256:app"));
    let jsr = by_name("jsr305");
    assert_eq!(jsr.found_by.as_deref(), Some("file-name"));
    assert_eq!(jsr.purl, "pkg:maven/jsr305@0.1~%2Bsvn49");
    // The launch-script jar reads the same.
    assert_eq!(read_file("demo-boot-exec.jar").artifacts, archive.artifacts);
}

#[test]
fn shaded_jar_lists_both_itself_and_what_it_shades() {
    let archive = read_file("shaded-app.jar");
    let evidence: Vec<(&str, JavaEvidence)> = archive
        .artifacts
        .iter()
        .map(|a| (a.artifact_id.as_str(), a.found_by))
        .collect();
    assert_eq!(
        evidence,
        [
            ("slf4j-api", JavaEvidence::PomProperties),
            ("shaded-app", JavaEvidence::Manifest)
        ]
    );
}

// ---------------------------------------------------------------- bad input

fn options() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated)
}

fn stored() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored)
}

fn pom(group: &str, artifact: &str, version: &str) -> (String, Vec<u8>) {
    (
        format!("META-INF/maven/{group}/{artifact}/pom.properties"),
        format!("groupId={group}\nartifactId={artifact}\nversion={version}\n").into_bytes(),
    )
}

fn build(entries: &[(String, Vec<u8>)], opts: SimpleFileOptions) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in entries {
        w.start_file(name.as_str(), opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn read(bytes: &[u8], limits: &JavaLimits) -> Result<JavaArchive, JavaError> {
    read_archive(
        &mut Cursor::new(bytes),
        bytes.len() as u64,
        "test.jar",
        limits,
    )
}

#[test]
fn entry_count_over_the_cap_is_a_typed_error() {
    let mut entries: Vec<(String, Vec<u8>)> = (0..2000)
        .map(|i| (format!("c/{i}.class"), vec![]))
        .collect();
    entries.push(pom("g", "a", "1"));
    let bytes = build(&entries, stored());
    let limits = JavaLimits {
        max_entries: 1000,
        ..JavaLimits::default()
    };
    assert_eq!(
        read(&bytes, &limits).unwrap_err(),
        JavaError::TooManyEntries {
            count: 2001,
            max: 1000
        }
    );
    assert_eq!(
        read(&bytes, &JavaLimits::default())
            .unwrap()
            .artifacts
            .len(),
        1
    );
}

#[test]
fn lying_entry_count_is_a_typed_error() {
    let mut bytes = build(&[pom("g", "a", "1")], stored());
    let eocd = bytes.len() - 22;
    bytes[eocd + 8..eocd + 12].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    assert!(matches!(
        read(&bytes, &JavaLimits::default()).unwrap_err(),
        JavaError::Malformed {
            what: "central directory",
            ..
        }
    ));
}

/// A deflated pom.properties that inflates to 1 GiB while the directory
/// says 60 bytes: stopped at the metadata cap, kept nothing, the other
/// entries still read.
#[test]
fn inflating_bomb_entries_stop_at_the_cap() {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let (name, _) = pom("bomb", "bomb", "1");
    w.start_file(name.as_str(), options()).unwrap();
    let chunk = vec![b'#'; 1 << 20];
    for _ in 0..1024 {
        w.write_all(&chunk).unwrap();
    }
    let (name, data) = pom("g", "ok", "2");
    w.start_file(name.as_str(), options()).unwrap();
    w.write_all(&data).unwrap();
    let bytes = w.finish().unwrap().into_inner();
    assert!(bytes.len() < 8 << 20);
    let archive = read(&bytes, &JavaLimits::default()).unwrap();
    assert_eq!(rows(&archive), ["\tg\tok\t2\tpom.properties"]);
    assert_eq!(archive.problems.len(), 1);
    assert!(
        archive.problems[0].error.contains("over the limit"),
        "{}",
        archive.problems[0].error
    );

    // The same bomb with its directory sizes set to lie (60 bytes): the
    // inflater stops at the ratio cap.
    let mut lying = bytes.clone();
    patch_central_sizes(&mut lying, 0, 60);
    let archive = read(&lying, &JavaLimits::default()).unwrap();
    assert_eq!(archive.artifacts.len(), 1);
    assert!(
        archive.problems[0].error.contains("zip bomb")
            || archive.problems[0].error.contains("over the limit"),
        "{}",
        archive.problems[0].error
    );
}

/// Sets the uncompressed size of central record `index` (not ZIP64).
fn patch_central_sizes(bytes: &mut [u8], index: usize, uncompressed: u32) {
    let eocd = bytes.len() - 22;
    let mut at = u32::from_le_bytes(bytes[eocd + 16..eocd + 20].try_into().unwrap()) as usize;
    for _ in 0..index {
        let n = u16::from_le_bytes([bytes[at + 28], bytes[at + 29]]) as usize;
        let x = u16::from_le_bytes([bytes[at + 30], bytes[at + 31]]) as usize;
        let c = u16::from_le_bytes([bytes[at + 32], bytes[at + 33]]) as usize;
        at += 46 + n + x + c;
    }
    bytes[at + 24..at + 28].copy_from_slice(&uncompressed.to_le_bytes());
}

/// A nested archive over the in-memory cap is reported, not read; the
/// walk's inflated total is bounded too.
#[test]
fn total_size_caps() {
    let inner = build(&[pom("g", "inner", "1")], stored());
    let mut big = inner.clone();
    big.resize(3 << 20, 0); // Trailing junk: still a zip, 3 MiB.
    let outer = build(
        &[
            ("lib/big-1.0.jar".to_string(), big),
            ("lib/small-1.0.jar".to_string(), inner),
        ],
        options(),
    );
    let limits = JavaLimits {
        max_in_memory: 1 << 20,
        ..JavaLimits::default()
    };
    let archive = read(&outer, &limits).unwrap();
    assert_eq!(
        rows(&archive),
        ["lib/small-1.0.jar\tg\tinner\t1\tpom.properties"]
    );
    assert_eq!(archive.problems.len(), 1);
    assert_eq!(archive.problems[0].nested, ["lib/big-1.0.jar"]);
    assert_eq!(
        problem_location("app.jar", &archive.problems[0]),
        "app.jar!/lib/big-1.0.jar"
    );
    let limits = JavaLimits {
        max_total_inflated: 1 << 20,
        ..JavaLimits::default()
    };
    let archive = read(&outer, &limits).unwrap();
    assert_eq!(archive.problems.len(), 1, "{:?}", archive.problems);
}

/// Jars nested ten deep: the first four levels are read, the fifth is a
/// problem naming its chain.
#[test]
fn nesting_depth_is_bounded() {
    let mut jar = build(&[pom("g", "level10", "1")], stored());
    for level in (0..10).rev() {
        jar = build(
            &[
                pom("g", &format!("level{level}"), "1"),
                (format!("lib/level{}-1.jar", level + 1), jar),
            ],
            stored(),
        );
    }
    let archive = read(&jar, &JavaLimits::default()).unwrap();
    let names: Vec<&str> = archive
        .artifacts
        .iter()
        .map(|a| a.artifact_id.as_str())
        .collect();
    assert_eq!(names, ["level0", "level1", "level2", "level3", "level4"]);
    assert_eq!(archive.problems.len(), 1);
    assert_eq!(archive.problems[0].nested.len(), 5);
    assert!(archive.problems[0].error.contains("deep"));
}

/// An archive whose entries are all the same stored jar, nested: the fan-out
/// is bounded by the archive budget.
#[test]
fn fan_out_is_bounded() {
    let leaf = build(&[pom("g", "leaf", "1")], stored());
    let mut level = leaf;
    for _ in 0..3 {
        let entries: Vec<(String, Vec<u8>)> = (0..40)
            .map(|i| (format!("lib/x{i}-1.jar"), level.clone()))
            .collect();
        level = build(&entries, stored());
    }
    // 40^3 = 64,000 leaves; the default budget opens 5,000 archives.
    let archive = read(&level, &JavaLimits::default()).unwrap();
    assert!(archive.artifacts.len() < 5_000);
    assert!(
        archive
            .problems
            .iter()
            .any(|p| p.error.contains("archive budget")),
        "{:?}",
        archive.problems.first()
    );
}

#[test]
fn corrupt_nested_archive_keeps_the_rest() {
    let good = build(&[pom("g", "good", "1")], options());
    let mut bad = build(&[pom("g", "bad", "1")], options());
    let n = bad.len();
    bad.truncate(n - 30); // Cut into the central directory and end record.
    let outer = build(
        &[
            ("lib/bad-1.jar".to_string(), bad),
            ("lib/good-1.jar".to_string(), good),
            pom("g", "outer", "1"),
        ],
        options(),
    );
    let archive = read(&outer, &JavaLimits::default()).unwrap();
    assert_eq!(
        rows(&archive),
        [
            "\tg\touter\t1\tpom.properties",
            "lib/good-1.jar\tg\tgood\t1\tpom.properties"
        ]
    );
    assert_eq!(archive.problems.len(), 1);
    assert_eq!(archive.problems[0].nested, ["lib/bad-1.jar"]);
}

/// Every prefix of a real fat jar, and every single-byte corruption of its
/// central directory, gives a result or a typed error, never a panic.
#[test]
fn truncated_and_corrupted_jars() {
    let bytes = std::fs::read(java_dir().join("demo-web.war")).unwrap();
    let len = bytes.len();
    for cut in (0..len).step_by(len / 200 + 1).chain(len - 100..len) {
        let _ = read(&bytes[..cut], &JavaLimits::default());
    }
    assert!(matches!(
        read(&bytes[..len / 2], &JavaLimits::default()),
        Err(JavaError::NotZip(_))
    ));
    for i in (len - 2000..len).step_by(7) {
        let mut b = bytes.clone();
        b[i] ^= 0x5a;
        let _ = read(&b, &JavaLimits::default());
    }
}

#[test]
fn unsupported_and_encrypted_entries_are_problems() {
    let mut bytes = build(&[pom("g", "a", "1"), pom("g", "b", "2")], stored());
    // Method 12 (bzip2) in the first central record.
    let eocd = bytes.len() - 22;
    let at = u32::from_le_bytes(bytes[eocd + 16..eocd + 20].try_into().unwrap()) as usize;
    bytes[at + 10..at + 12].copy_from_slice(&12u16.to_le_bytes());
    let archive = read(&bytes, &JavaLimits::default()).unwrap();
    assert_eq!(rows(&archive), ["\tg\tb\t2\tpom.properties"]);
    assert!(archive.problems[0].error.contains("method 12"));
}
