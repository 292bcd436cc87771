//! The GitHub Advisory Database: a checkout and GitHub's archive zip of it,
//! reviewed advisories only, unmatched ecosystems and GIT ranges counted, and
//! hostile archives (zip bombs, giant entries, too many entries) bounded.

use std::io::Write;
use std::path::{Path, PathBuf};

use trawl_advisory::ghsa::{self, GhsaOptions};
use trawl_advisory::limits::FeedLimits;
use trawl_advisory::{
    AdvisoryDb, AdvisoryStore, FeedError, FeedPaths, FixState, PackageQuery, StoreBuilder,
    WarningReason, WarningSummary,
};

fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ghsa")
}

const REVIEWED: [&str; 5] = [
    "GHSA-c2qf-rxjj-qqgw",
    "GHSA-mrrh-fwg8-r2c3",
    "GHSA-r9hx-vwmv-q579",
    "GHSA-tr4w-0000-0001",
    "GHSA-tr4w-0000-0002",
];

fn ids(load: &trawl_advisory::osv::OsvLoad) -> Vec<String> {
    let mut ids: Vec<String> = load.advisories.iter().map(|a| a.id.clone()).collect();
    ids.sort();
    ids
}

/// Zips `root`'s files as GitHub's archive of the repository does: below one
/// top-level directory, deflated.
fn zip_checkout(root: &Path, out: &Path, extra: &[(&str, Vec<u8>)]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(out).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    zip.add_directory("advisory-database-main/", options)
        .unwrap();
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.unwrap();
        if !entry.file_type().is_file() {
            continue;
        }
        let relative = entry.path().strip_prefix(root).unwrap();
        zip.start_file(
            format!("advisory-database-main/{}", relative.display()),
            options,
        )
        .unwrap();
        zip.write_all(&std::fs::read(entry.path()).unwrap())
            .unwrap();
    }
    for (name, bytes) in extra {
        zip.start_file(format!("advisory-database-main/{name}"), options)
            .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn a_checkout_reads_reviewed_advisories_from_any_of_its_levels() {
    let root = checkout();
    for path in [
        root.clone(),
        root.join("advisories"),
        root.join("advisories/github-reviewed"),
    ] {
        let load = ghsa::load(&path).expect("readable");
        assert_eq!(ids(&load), REVIEWED, "{}", path.display());
        assert_eq!(load.files, 5, "{}", path.display());
        assert!(load.warnings.is_empty(), "{:#?}", load.warnings);
    }
    let all = ghsa::load_with(
        &root,
        &GhsaOptions {
            include_unreviewed: true,
            ..GhsaOptions::default()
        },
    )
    .expect("readable");
    assert_eq!(all.advisories.len(), 6);
    assert!(ids(&all).contains(&"GHSA-tr4w-0000-0003".to_string()));
}

#[test]
fn unmatched_ecosystems_and_git_ranges_are_counted_not_errors() {
    let mut db = AdvisoryDb::new();
    let warnings = db
        .add_ghsa(checkout(), &GhsaOptions::default())
        .expect("readable");
    let summary = WarningSummary::of(&warnings);
    assert_eq!(summary.git_ranges, 1, "{warnings:#?}");
    assert_eq!(
        summary
            .unknown_ecosystems
            .iter()
            .map(|(e, n)| (e.as_str(), *n))
            .collect::<Vec<_>>(),
        [("GitHub Actions", 1), ("SwiftURL", 1)]
    );
    assert_eq!(summary.other, 0, "{warnings:#?}");
    // Each warning names the file and the record.
    let pub_warning = warnings
        .iter()
        .find(|w| matches!(&w.reason, WarningReason::UnknownEcosystem { ecosystem, .. } if ecosystem == "SwiftURL"))
        .unwrap();
    assert!(
        pub_warning
            .path
            .as_ref()
            .unwrap()
            .ends_with("GHSA-tr4w-0000-0001.json")
    );
    assert_eq!(db.len(), 5);
}

fn query<'a>(ecosystem: &'a str, name: &'a str, version: &'a str) -> PackageQuery<'a> {
    PackageQuery {
        ecosystem,
        name,
        version,
    }
}

/// Matches language packages against a store built from the checkout, with
/// GitHub's severity and CVSS vectors kept for the report to rate.
#[test]
fn a_store_built_from_the_checkout_matches_language_packages() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("trawl.db");
    let feeds = FeedPaths {
        ghsa_paths: vec![checkout()],
        ..FeedPaths::default()
    };
    let (info, warnings) = AdvisoryStore::build(&feeds, &out).expect("builds");
    assert_eq!(info.records, 5);
    assert_eq!(info.skipped_git_ranges, Some(1));
    assert_eq!(WarningSummary::of(&warnings).git_ranges, 1);
    let store = AdvisoryStore::open(&out).expect("opens");
    assert_eq!(store.info().skipped_git_ranges, Some(1), "kept in meta");
    store.verify().expect("verifies");

    let found = store
        .matches(&query("PyPI", "SetupTools", "65.5.0"))
        .unwrap();
    assert_eq!(found.len(), 1);
    let m = &found[0];
    assert_eq!(m.advisory.id, "GHSA-r9hx-vwmv-q579");
    assert_eq!(m.fix_state, FixState::Fixed("65.5.1".into()));
    assert_eq!(
        m.advisory.database_specific.as_ref().unwrap()["severity"],
        "MODERATE"
    );
    assert_eq!(
        m.advisory.severity[0].score,
        "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:H"
    );
    assert!(
        store
            .matches(&query("PyPI", "setuptools", "65.5.1"))
            .unwrap()
            .is_empty()
    );

    // Three affected entries for one package: the one containing the version.
    for (version, fix) in [
        ("6.3.0", Some("6.3.1")),
        ("5.7.1", Some("5.7.2")),
        ("7.5.2", None),
    ] {
        let found = store.matches(&query("npm", "semver", version)).unwrap();
        assert_eq!(
            found
                .iter()
                .map(|m| m.fixed_version.as_deref())
                .collect::<Vec<_>>(),
            fix.map(Some).into_iter().collect::<Vec<_>>(),
            "semver {version}"
        );
    }
    let go = store
        .matches(&query("Go", "github.com/trawl-fixture/ghsa", "v1.3.9"))
        .unwrap();
    assert_eq!(go.len(), 1);
    // The GIT range is skipped; the ECOSYSTEM range decides.
    let rust = store
        .matches(&query("crates.io", "trawl-fixture", "0.2.0"))
        .unwrap();
    assert_eq!(rust[0].fix_state, FixState::Fixed("0.3.1".into()));
    assert!(
        store
            .matches(&query("crates.io", "trawl-fixture", "0.0.1"))
            .unwrap()
            .is_empty()
    );
    // Pub and Hex order versions as SemVer.
    assert_eq!(
        store
            .matches(&query("Pub", "trawl_fixture", "1.0.0"))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .matches(&query("Hex", "trawl_fixture", "0.9.0"))
            .unwrap()
            .len(),
        0
    );
    // Unmatched ecosystems are stored (and listed) but never match.
    assert!(store.info().ecosystems.iter().any(|(e, _)| e == "SwiftURL"));
    assert!(matches!(
        store.matches(&query("SwiftURL", "github.com/trawl/fixture", "1.0.1")),
        Err(trawl_advisory::StoreError::Query(
            trawl_advisory::QueryError::UnsupportedEcosystem { .. }
        ))
    ));
    // The unreviewed record was not read.
    assert!(
        store
            .matches(&query("PyPI", "setuptools", "99.0"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn the_archive_zip_reads_as_the_checkout() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("advisory-database-main.zip");
    zip_checkout(&checkout(), &archive, &[]);
    let from_zip = ghsa::load(&archive).expect("readable");
    let from_dir = ghsa::load(checkout()).expect("readable");
    assert_eq!(ids(&from_zip), REVIEWED);
    assert_eq!(from_zip.files, 5);
    assert!(from_zip.warnings.is_empty(), "{:#?}", from_zip.warnings);
    let mut a = from_zip.advisories.clone();
    let mut b = from_dir.advisories.clone();
    a.sort_by(|x, y| x.id.cmp(&y.id));
    b.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(a, b, "the same records, field for field");

    // A store from the zip answers as one from the checkout.
    let mut builder = StoreBuilder::new();
    let warnings = builder.add_ghsa(&archive, &GhsaOptions::default()).unwrap();
    assert_eq!(WarningSummary::of(&warnings).unknown_ecosystems.len(), 2);
    let out = dir.path().join("zip.db");
    builder.write(&out).unwrap();
    let store = AdvisoryStore::open(&out).unwrap();
    assert_eq!(
        store
            .matches(&query("npm", "semver", "7.0.0"))
            .unwrap()
            .len(),
        1
    );

    let all = ghsa::load_with(
        &archive,
        &GhsaOptions {
            include_unreviewed: true,
            ..GhsaOptions::default()
        },
    )
    .unwrap();
    assert_eq!(all.advisories.len(), 6);
}

fn small_limits() -> GhsaOptions {
    GhsaOptions {
        limits: FeedLimits {
            max_entry_size: 4 << 20,
            max_unpacked: 64 << 20,
            ..FeedLimits::default()
        },
        ..GhsaOptions::default()
    }
}

#[test]
fn a_zip_bomb_entry_is_skipped_with_a_typed_warning() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("bomb.zip");
    // 3 MiB of spaces deflate about a thousandfold.
    let mut bomb = b"{\"id\": \"GHSA-bomb-bomb-bomb\"".to_vec();
    bomb.resize(3 << 20, b' ');
    bomb.push(b'}');
    zip_checkout(
        &checkout(),
        &archive,
        &[(
            "advisories/github-reviewed/2024/03/GHSA-bomb/GHSA-bomb.json",
            bomb,
        )],
    );
    let load = ghsa::load_with(&archive, &small_limits()).expect("the rest is read");
    assert_eq!(ids(&load), REVIEWED);
    assert_eq!(load.warnings.len(), 1, "{:#?}", load.warnings);
    assert_eq!(
        load.warnings[0].reason,
        WarningReason::ArchiveEntryOverLimit {
            entry:
                "advisory-database-main/advisories/github-reviewed/2024/03/GHSA-bomb/GHSA-bomb.json"
                    .into(),
            limit: "max_ratio",
            max: 100,
        }
    );
}

/// Incompressible text (hex of a counter's hash-like mix), so the entry
/// trips the size limit, not the ratio.
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b"0123456789abcdef"[(state & 15) as usize]
        })
        .collect()
}

#[test]
fn a_huge_single_json_file_is_skipped_at_the_entry_limit() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("huge.zip");
    let mut huge = b"{\"id\": \"GHSA-huge\", \"details\": \"".to_vec();
    huge.extend(noise(5 << 20));
    huge.extend(b"\"}");
    zip_checkout(
        &checkout(),
        &archive,
        &[(
            "advisories/github-reviewed/2024/04/GHSA-huge/GHSA-huge.json",
            huge.clone(),
        )],
    );
    let load = ghsa::load_with(&archive, &small_limits()).expect("the rest is read");
    assert_eq!(ids(&load), REVIEWED);
    assert!(
        matches!(
            &load.warnings[..],
            [w] if matches!(&w.reason, WarningReason::ArchiveEntryOverLimit { limit: "max_entry_size", max, .. } if *max == 4 << 20)
        ),
        "{:#?}",
        load.warnings
    );

    // In a checkout the same file is read whole (a regular file on the
    // user's disk) and parsed: one record, no warning.
    let tree = dir
        .path()
        .join("tree/advisories/github-reviewed/2024/04/GHSA-huge");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("GHSA-huge.json"), &huge).unwrap();
    let load = ghsa::load(dir.path().join("tree")).unwrap();
    assert_eq!(ids(&load), ["GHSA-huge"]);
}

#[test]
fn whole_archive_limits_fail_the_feed_with_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("ghsa.zip");
    zip_checkout(&checkout(), &archive, &[]);
    let limited = |limits: FeedLimits| GhsaOptions {
        limits,
        ..GhsaOptions::default()
    };
    let err = ghsa::load_with(
        &archive,
        &limited(FeedLimits {
            max_entries: 3,
            ..FeedLimits::default()
        }),
    )
    .unwrap_err();
    assert!(
        matches!(err, FeedError::ArchiveLimit { limit: "max_entries", max: 3, ref path } if *path == archive),
        "{err:?}"
    );
    let err = ghsa::load_with(
        &archive,
        &limited(FeedLimits {
            max_unpacked: 2000,
            ..FeedLimits::default()
        }),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            FeedError::ArchiveLimit {
                limit: "max_unpacked",
                max: 2000,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_file_that_is_not_a_zip_and_a_missing_path_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let not_zip = dir.path().join("ghsa.zip");
    std::fs::write(&not_zip, b"PK\x03\x04 but not really").unwrap();
    assert!(matches!(
        ghsa::load(&not_zip).unwrap_err(),
        FeedError::Archive { path, .. } if path == not_zip
    ));
    assert!(matches!(
        ghsa::load(dir.path().join("missing")).unwrap_err(),
        FeedError::ReadFile { .. }
    ));
    // A FIFO is refused, never opened.
    #[cfg(unix)]
    {
        let fifo = dir.path().join("fifo.zip");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(status.success());
        assert!(matches!(
            ghsa::load(&fifo).unwrap_err(),
            FeedError::NotARegularFile { kind: "FIFO", .. }
        ));
    }
}
