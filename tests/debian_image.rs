//! End to end on real Debian images built by scripts/build-test-images.sh:
//! every local source kind, inventory against dpkg-query, whiteouts, matching
//! against OSV records written for the installed versions, verdicts.

mod common;
#[path = "../crates/trawl-classify/tests/schema_check/mod.rs"]
mod schema_check;

use std::collections::BTreeSet;

use serde_json::json;
use trawl::layers::{LayerStream, Limits, Selection};
use trawl::{AdvisoryDb, ImageSource, Report, Scanner, Severity, Verdict};

fn source(s: String) -> ImageSource {
    s.parse().unwrap()
}

fn debian_oci() -> ImageSource {
    source(format!(
        "oci-dir:{}:bookworm",
        common::images().join("debian/oci").display()
    ))
}

fn pairs(report: &Report) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = report
        .packages
        .iter()
        .map(|p| (p.name.clone(), p.version.clone()))
        .collect();
    p.sort();
    p
}

#[test]
fn inventory_equals_dpkg_query_for_every_source_kind() {
    let images = common::images();
    let expected = common::tsv_pairs(&images.join("debian/expected-dpkg-query.tsv"));
    assert!(expected.len() > 50, "the test image has a real package set");
    let scanner = Scanner::builder().build().unwrap();
    let sources = [
        debian_oci(),
        source(format!(
            "oci-archive:{}",
            images.join("debian/debian.oci.tar").display()
        )),
        source(format!(
            "docker-archive:{}",
            images.join("debian/debian.docker.tar").display()
        )),
    ];
    let mut reports = Vec::new();
    for s in &sources {
        let report = scanner
            .scan_blocking(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(pairs(&report), expected, "{s}");
        let os = report.os.as_ref().unwrap();
        assert_eq!(
            (os.id.as_str(), os.version_id.as_deref()),
            ("debian", Some("12"))
        );
        assert_eq!(report.image.layers.len(), 2, "{s}");
        assert!(
            report.packages.iter().all(|p| p.layer.is_some()),
            "{s}: every package attributed to a layer"
        );
        reports.push(report);
    }
    // The same image through every transport: the same packages, sources and
    // the same introducing layer (by position).
    let by_position = |r: &Report| -> Vec<(String, String, String, usize)> {
        r.packages
            .iter()
            .map(|p| {
                let pos = r
                    .image
                    .layers
                    .iter()
                    .position(|l| Some(l) == p.layer.as_ref())
                    .unwrap();
                (
                    p.name.clone(),
                    p.source_name.clone(),
                    p.source_version.clone(),
                    pos,
                )
            })
            .collect()
    };
    assert_eq!(by_position(&reports[0]), by_position(&reports[1]));
    assert_eq!(by_position(&reports[0]), by_position(&reports[2]));
    assert_eq!(reports[0].image.diff_ids, reports[2].image.diff_ids);
    assert_eq!(
        reports[0].image.manifest_digest,
        reports[1].image.manifest_digest
    );
    assert!(reports[0].image.manifest_digest.is_some());
}

#[test]
fn layer_attribution_and_the_purged_package() {
    let images = common::images();
    let removed = std::fs::read_to_string(images.join("debian/removed-package.txt")).unwrap();
    let report = Scanner::builder()
        .build()
        .unwrap()
        .scan_blocking(&debian_oci())
        .unwrap();
    let layer = |name: &str| {
        let p = report
            .packages
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("{name} installed"));
        report
            .image
            .layers
            .iter()
            .position(|l| Some(l) == p.layer.as_ref())
            .unwrap()
    };
    assert_eq!(
        layer("base-files"),
        0,
        "a minbase package comes from the base layer"
    );
    assert_eq!(layer("curl"), 1, "curl is installed by the second layer");
    assert!(
        !report.packages.iter().any(|p| p.name == removed.trim()),
        "{removed} was purged in layer 2"
    );
}

#[test]
fn whiteout_file_is_not_seen() {
    let images = common::images();
    let path = std::fs::read_to_string(images.join("debian/whiteout.txt")).unwrap();
    let path = path.trim();
    let image = match trawl::registry::open(&debian_oci()).unwrap() {
        trawl::registry::OpenedSource::Image(i) => i,
        other => panic!("{other:?}"),
    };
    let streams = (0..image.layers().len())
        .map(|i| {
            LayerStream::new(
                image.layers()[i].digest.clone(),
                image.open_layer(i).unwrap(),
            )
        })
        .collect();
    let fs = trawl::layers::extract(
        streams,
        &Selection::new().with_path(path),
        &Limits::default(),
    )
    .unwrap();
    assert!(
        fs.file(path).is_none(),
        "{path} is deleted by a whiteout in layer 2"
    );
    let history = fs.history(path);
    assert_eq!(
        history.len(),
        2,
        "written by layer 1, whited out by layer 2: {history:?}"
    );
    assert!(history[0].data.is_some_and(|d| !d.is_empty()));
    assert_eq!(history[1].data, None);
    assert_eq!(history[1].layer, Some(image.layers()[1].digest.as_str()));
}

#[test]
fn osv_records_above_below_and_without_fix_give_exactly_the_right_findings() {
    let inventory_only = Scanner::builder()
        .build()
        .unwrap()
        .scan_blocking(&debian_oci())
        .unwrap();
    let feed = tempfile::tempdir().unwrap();
    common::write_osv_feed(feed.path(), &inventory_only);
    let (db, warnings) = AdvisoryDb::from_osv_dirs(&[feed.path()]).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let report = Scanner::builder()
        .database(db)
        .build()
        .unwrap()
        .scan_blocking(&debian_oci())
        .unwrap();

    let binaries = |source: &str| -> Vec<&trawl::Package> {
        report
            .packages
            .iter()
            .filter(|p| p.source_name == source)
            .collect()
    };
    let openssl_fix = format!("{}+trawl1", binaries("openssl")[0].source_version);
    // (advisory, source package, fixed version, severity): one finding per
    // installed binary of the source package.
    let cases = [
        (
            "TRAWL-ABOVE",
            "openssl",
            Some(openssl_fix.clone()),
            Severity::Critical,
        ),
        ("TRAWL-NOFIX", "util-linux", None, Severity::Low),
        ("TRAWL-LASTAFF", "tar", None, Severity::Unknown),
        ("TRAWL-VERSIONS", "coreutils", None, Severity::Unknown),
    ];
    let mut expected = BTreeSet::new();
    for (id, source, fixed, severity) in cases {
        for p in binaries(source) {
            expected.insert((id.to_string(), p.name.clone(), fixed.clone(), severity));
        }
    }
    assert!(
        binaries("util-linux").len() > 1,
        "util-linux builds several installed binaries"
    );
    let got: BTreeSet<_> = report
        .findings
        .iter()
        .map(|f| {
            (
                f.id.clone(),
                f.package.clone(),
                f.fixed_version.clone(),
                f.severity,
            )
        })
        .collect();
    assert_eq!(got, expected);
    assert_eq!(
        report.findings.len(),
        expected.len(),
        "one finding per (advisory, package)"
    );
    assert_eq!(report.verdict, Verdict::Unhealthy);
    assert_eq!(report.ecosystem.as_deref(), Some("Debian:12"));
    assert_eq!(report.summary.fixable, binaries("openssl").len());
    assert_eq!(
        report.findings[0].severity,
        Severity::Critical,
        "most serious first"
    );

    let libssl = report
        .findings
        .iter()
        .find(|f| f.package == "libssl3")
        .unwrap();
    assert_eq!(libssl.source_name, "openssl");
    assert_eq!(libssl.aliases, ["TRAWL-ALIAS-TRAWL-ABOVE"]);
    assert_eq!(libssl.cvss_score, Some(9.8));
    assert_eq!(
        libssl.remediation,
        format!("upgrade libssl3 (source openssl) to {openssl_fix} or later")
    );
    let pkg = report
        .packages
        .iter()
        .find(|p| p.name == "libssl3")
        .unwrap();
    assert_eq!(libssl.layer, pkg.layer);

    // The JSON contract.
    let v = serde_json::to_value(&report).unwrap();
    schema_check::assert_valid_report(&v);
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["verdict"], "unhealthy");
    assert_eq!(v["os"]["id"], "debian");
    assert_eq!(v["os"]["version_id"], "12");
    for key in [
        "type",
        "name",
        "version",
        "arch",
        "source_name",
        "source_version",
        "purl",
        "layer",
    ] {
        assert!(v["packages"][0].get(key).is_some(), "packages[].{key}");
    }
    for key in [
        "id",
        "aliases",
        "package",
        "installed_version",
        "source_name",
        "fixed_version",
        "severity",
        "layer",
        "remediation",
    ] {
        assert!(v["findings"][0].get(key).is_some(), "findings[].{key}");
    }
    assert_eq!(v["packages"][0]["type"], "deb");
}

#[test]
fn no_matching_advisories_is_healthy_and_no_feed_is_unsupported() {
    let feed = tempfile::tempdir().unwrap();
    let record = json!({"id": "TRAWL-OLD", "modified": "2026-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "Debian:12", "name": "openssl"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0.0-1"}]}]}]});
    std::fs::write(feed.path().join("old.json"), record.to_string()).unwrap();
    let (db, _) = AdvisoryDb::from_osv_dirs(&[feed.path()]).unwrap();
    let healthy = Scanner::builder()
        .database(db)
        .build()
        .unwrap()
        .scan_blocking(&debian_oci())
        .unwrap();
    assert_eq!(healthy.verdict, Verdict::Healthy);
    assert!(healthy.findings.is_empty());

    let unjudged = Scanner::builder()
        .build()
        .unwrap()
        .scan_blocking(&debian_oci())
        .unwrap();
    assert_eq!(
        unjudged.verdict,
        Verdict::Unsupported,
        "no advisory data for Debian:12 is not healthy"
    );
    assert!(
        unjudged.verdict_reason.contains("Debian:12"),
        "{}",
        unjudged.verdict_reason
    );
}

#[test]
fn distroless_and_scratch_images() {
    let images = common::images();
    let feed = tempfile::tempdir().unwrap();
    let record = json!({"id": "TRAWL-OLD", "affected": [{"package": {"ecosystem": "Debian:12", "name": "glibc"},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0-1"}]}]}]});
    std::fs::write(feed.path().join("old.json"), record.to_string()).unwrap();
    let (db, _) = AdvisoryDb::from_osv_dirs(&[feed.path()]).unwrap();
    let scanner = Scanner::builder().database(db).build().unwrap();

    let distroless = scanner
        .scan_blocking(&source(format!(
            "oci-dir:{}:latest",
            images.join("distroless/oci").display()
        )))
        .unwrap();
    assert_eq!(
        pairs(&distroless),
        common::tsv_pairs(&images.join("distroless/expected.tsv"))
    );
    assert_eq!(distroless.verdict, Verdict::Healthy);
    let libc = distroless
        .packages
        .iter()
        .find(|p| p.name == "libc6")
        .unwrap();
    assert_eq!(libc.source_name, "glibc");
    assert!(libc.database.starts_with("var/lib/dpkg/status.d/"));

    let scratch = scanner
        .scan_blocking(&source(format!(
            "oci-dir:{}:latest",
            images.join("scratch/oci").display()
        )))
        .unwrap();
    assert_eq!(scratch.verdict, Verdict::Unsupported);
    assert!(scratch.packages.is_empty());
    assert_eq!(scratch.verdict_reason, "no OS package database found");
}

#[test]
fn dir_source_reads_a_root_file_system() {
    // A rootfs made of the image's own dpkg status and os-release copies.
    let images = common::images();
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("var/lib/dpkg")).unwrap();
    std::fs::create_dir_all(root.path().join("usr/lib")).unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::copy(
        images.join("debian/dpkg-status"),
        root.path().join("var/lib/dpkg/status"),
    )
    .unwrap();
    std::fs::copy(
        images.join("debian/os-release"),
        root.path().join("usr/lib/os-release"),
    )
    .unwrap();
    std::os::unix::fs::symlink("../usr/lib/os-release", root.path().join("etc/os-release"))
        .unwrap();
    let report = Scanner::builder()
        .build()
        .unwrap()
        .scan_blocking(&source(format!("dir:{}", root.path().display())))
        .unwrap();
    assert_eq!(
        pairs(&report),
        common::tsv_pairs(&images.join("debian/expected-dpkg-query.tsv"))
    );
    assert_eq!(report.os.as_ref().map(|o| o.id.as_str()), Some("debian"));
    assert!(report.image.layers.is_empty());
    assert!(report.packages.iter().all(|p| p.layer.is_none()));
}

/// A copy of the Debian OCI layout in a temporary directory (`oci/` in it)
/// that a test may change, and the copy as a source.
fn debian_copy() -> (tempfile::TempDir, ImageSource) {
    let tmp = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(common::images().join("debian/oci"))
        .arg(tmp.path().join("oci"))
        .status()
        .unwrap();
    assert!(status.success());
    let src = source(format!(
        "oci-dir:{}:bookworm",
        tmp.path().join("oci").display()
    ));
    (tmp, src)
}

/// Copies the Debian OCI layout and damages its top layer blob with `damage`.
fn damaged_layout(damage: impl FnOnce(&mut Vec<u8>)) -> (tempfile::TempDir, ImageSource, String) {
    let (tmp, src) = debian_copy();
    let digest = match trawl::registry::open(&src).unwrap() {
        trawl::registry::OpenedSource::Image(i) => i.layers()[1].digest.clone(),
        other => panic!("{other:?}"),
    };
    let blob = tmp
        .path()
        .join("oci/blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&blob).unwrap();
    damage(&mut bytes);
    std::fs::write(&blob, bytes).unwrap();
    (tmp, src, digest)
}

/// A layer whose content cannot be read (here: over the size limit) is left
/// out; the report is `partial`, never healthy, and names the layer. Findings
/// in the rest still make it unhealthy.
#[test]
fn unreadable_layer_makes_the_scan_partial() {
    let limits = Limits {
        // The base layer is 121 MB of tar, the top one 37 MB.
        max_layer_size: 64 << 20,
        ..Limits::default()
    };
    let full = Scanner::builder()
        .build()
        .unwrap()
        .scan_blocking(&debian_oci())
        .unwrap();
    let base = full.image.layers[0].clone();

    // Advisories for Debian 12, none about the packages here.
    let feed = tempfile::tempdir().unwrap();
    std::fs::write(
        feed.path().join("TRAWL-OTHER.json"),
        json!({"id": "TRAWL-OTHER", "modified": "2026-11-01T00:00:00Z",
               "affected": [{"package": {"ecosystem": "Debian:12", "name": "not-installed"},
                             "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]})
        .to_string(),
    )
    .unwrap();
    let load = || AdvisoryDb::from_osv_dirs(&[feed.path()]).unwrap().0;
    let healthy = Scanner::builder()
        .database(load())
        .build()
        .unwrap()
        .scan_blocking(&debian_oci())
        .unwrap();
    assert_eq!(healthy.verdict, Verdict::Healthy);

    let partial = Scanner::builder()
        .database(load())
        .limits(limits)
        .build()
        .unwrap()
        .scan_blocking(&debian_oci())
        .unwrap();
    assert_eq!(
        partial.verdict,
        Verdict::Partial,
        "{}",
        partial.verdict_reason
    );
    let expected = format!(
        "incomplete scan: layer {base}: decompressed size exceeds the limit of {} bytes",
        64 << 20
    );
    assert_eq!(partial.verdict_reason, expected);
    assert_eq!(
        partial.warnings,
        [expected["incomplete scan: ".len()..].to_string()]
    );
    // What the top layer holds is still inventoried (its dpkg status lists
    // every package), attributed to the only layer read.
    assert_eq!(pairs(&partial), pairs(&full));
    assert!(
        partial
            .packages
            .iter()
            .all(|p| p.layer.as_deref() == Some(full.image.layers[1].as_str()))
    );

    // Without the base layer there is no os-release: the OS is unknown.
    assert_eq!(partial.os, None);

    // A corrupt top layer whose digests are consistent (the image was built
    // that way): the base layer is read, its packages are matched, and the
    // findings make the verdict unhealthy, saying the scan is incomplete.
    let (_tmp, damaged, top) = relabelled_layout(|b| {
        let n = b.len() / 2;
        b[n..n + 64].fill(0x55);
    });
    let feed = tempfile::tempdir().unwrap();
    common::write_osv_feed(feed.path(), &full);
    let (db, _) = AdvisoryDb::from_osv_dirs(&[feed.path()]).unwrap();
    let unhealthy = Scanner::builder()
        .database(db)
        .build()
        .unwrap()
        .scan_blocking(&damaged)
        .unwrap();
    assert_eq!(
        unhealthy.verdict,
        Verdict::Unhealthy,
        "{}",
        unhealthy.verdict_reason
    );
    let reason = &unhealthy.verdict_reason;
    let incomplete = format!(
        "; the scan is incomplete, more may exist: layer {top}: gzip stream is corrupt or truncated"
    );
    assert!(reason.contains(&incomplete), "{reason}");
    assert!(!unhealthy.findings.is_empty());
    assert!(
        unhealthy
            .findings
            .iter()
            .all(|f| f.layer.as_deref() == Some(base.as_str()))
    );
}

/// Copies the Debian OCI layout, damages its top layer blob with `damage`, and
/// stores it under its new digest, updating the manifest and index, so the
/// image is consistent but its top layer cannot be decompressed.
fn relabelled_layout(
    damage: impl FnOnce(&mut Vec<u8>),
) -> (tempfile::TempDir, ImageSource, String) {
    use sha2::Digest;
    let (tmp, _, old) = damaged_layout(damage);
    let blobs = tmp.path().join("oci/blobs/sha256");
    let hex = |d: &str| d.trim_start_matches("sha256:").to_string();
    let bytes = std::fs::read(blobs.join(hex(&old))).unwrap();
    let new = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
    std::fs::write(blobs.join(hex(&new)), &bytes).unwrap();

    let index_path = tmp.path().join("oci/index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest = std::fs::read_to_string(blobs.join(hex(&manifest_digest))).unwrap();
    let manifest = manifest.replace(&old, &new);
    let manifest_digest = format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(manifest.as_bytes()))
    );
    std::fs::write(blobs.join(hex(&manifest_digest)), &manifest).unwrap();
    index["manifests"][0]["digest"] = json!(manifest_digest);
    index["manifests"][0]["size"] = json!(manifest.len());
    std::fs::write(&index_path, index.to_string()).unwrap();
    let src = source(format!(
        "oci-dir:{}:bookworm",
        tmp.path().join("oci").display()
    ));
    (tmp, src, new)
}

/// A blob that is not what its digest says fails the scan, however its
/// damage shows (a truncated stream, a corrupt deflate block).
#[test]
fn truncated_layer_and_digest_mismatch_are_errors_naming_the_layer() {
    let (_t, src, digest) = damaged_layout(|b| b.truncate(b.len() / 2));
    let err = Scanner::builder()
        .build()
        .unwrap()
        .scan_blocking(&src)
        .unwrap_err();
    assert!(err.to_string().contains(&digest), "{err}");

    let (_t, src, digest) = damaged_layout(|b| {
        let n = b.len() - 100;
        b[n] ^= 0xff;
    });
    let err = Scanner::builder()
        .build()
        .unwrap()
        .scan_blocking(&src)
        .unwrap_err();
    let mut chain = err.to_string();
    let mut s = std::error::Error::source(&err);
    while let Some(e) = s {
        chain.push_str(&format!(" / {e}"));
        s = e.source();
    }
    assert!(chain.contains(&digest), "{chain}");
    assert!(
        chain.to_lowercase().contains("digest") || chain.contains("corrupt"),
        "{chain}"
    );
}

#[test]
fn table_report_is_readable() {
    let feed = tempfile::tempdir().unwrap();
    let inventory_only = Scanner::builder()
        .build()
        .unwrap()
        .scan_blocking(&debian_oci())
        .unwrap();
    common::write_osv_feed(feed.path(), &inventory_only);
    let (db, _) = AdvisoryDb::from_osv_dirs(&[feed.path()]).unwrap();
    let report = Scanner::builder()
        .database(db)
        .build()
        .unwrap()
        .scan_blocking(&debian_oci())
        .unwrap();
    let mut out = Vec::new();
    trawl::classify::write_table(&mut out, &report).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("Verdict:   UNHEALTHY"), "{text}");
    assert!(
        text.contains("OS:        Debian GNU/Linux 12 (bookworm) [Debian:12]"),
        "{text}"
    );
    let header = text.lines().find(|l| l.starts_with("SEVERITY")).unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        [
            "SEVERITY",
            "ID",
            "PACKAGE",
            "INSTALLED",
            "FIXED",
            "IN",
            "LAYER"
        ]
    );
    let first = text
        .lines()
        .skip_while(|l| !l.starts_with("SEVERITY"))
        .nth(1)
        .unwrap();
    assert!(first.starts_with("critical  TRAWL-ABOVE"), "{first}");
}

#[test]
fn warm_cache_scan_opens_no_layer() {
    let (tmp, src) = debian_copy();
    let cache_dir = tmp.path().join("cache");
    let cold = Scanner::builder().cache_dir(&cache_dir).build().unwrap();
    let first = cold.scan_blocking(&src).unwrap();
    assert_eq!(cold.layer_cache().stats().misses, 2);

    // Remove the layer blobs: a warm scan (a new scanner, as a new process
    // would be) must not need them.
    for layer in &first.image.layers {
        let blob = tmp
            .path()
            .join("oci/blobs/sha256")
            .join(layer.trim_start_matches("sha256:"));
        std::fs::remove_file(blob).unwrap();
    }
    let warm = Scanner::builder().cache_dir(&cache_dir).build().unwrap();
    let second = warm.scan_blocking(&src).unwrap();
    assert_eq!(warm.layer_cache().stats().disk_hits, 2);
    assert_eq!(warm.layer_cache().stats().misses, 0);
    assert_eq!(
        second, first,
        "a warm scan reports exactly what the cold one did"
    );
}

#[test]
fn compiled_database_gives_the_same_report_as_the_feeds() {
    let inventory_only = Scanner::builder()
        .build()
        .unwrap()
        .scan_blocking(&debian_oci())
        .unwrap();
    let feed = tempfile::tempdir().unwrap();
    common::write_osv_feed(feed.path(), &inventory_only);
    let (db, _) = AdvisoryDb::from_osv_dirs(&[feed.path()]).unwrap();
    let from_feeds = Scanner::builder()
        .database(db)
        .build()
        .unwrap()
        .scan_blocking(&debian_oci())
        .unwrap();

    let mut builder = trawl::advisory::StoreBuilder::new();
    builder.add_osv_dir(feed.path()).unwrap();
    let file = feed.path().join("trawl.db");
    builder.write(&file).unwrap();
    let store = trawl::advisory::AdvisoryStore::open(&file).unwrap();
    let from_store = Scanner::builder()
        .database(store)
        .build()
        .unwrap()
        .scan_blocking(&debian_oci())
        .unwrap();
    assert_eq!(from_store, from_feeds);
    assert_eq!(from_store.verdict, Verdict::Unhealthy);
}

/// The async API gives what the blocking one does, for several images at
/// once on a single-threaded executor, and a stored inventory re-matched
/// against another database gives what a fresh scan against it would.
#[test]
fn async_scans_and_rematch_of_a_stored_inventory() {
    let scanner = Scanner::builder().build().unwrap();
    let blocking = scanner.scan_blocking(&debian_oci()).unwrap();
    let archive = source(format!(
        "oci-archive:{}",
        common::images().join("debian/debian.oci.tar").display()
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let layout = debian_oci();
    let (a, b, scanned) = runtime.block_on(async {
        let a = scanner.scan(&layout);
        let b = scanner.scan(&archive);
        let c = scanner.inventory(&layout);
        // All three run at once, each on its own thread.
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        (a, b, c.await.unwrap())
    });
    assert_eq!(a, blocking);
    assert_eq!(pairs(&b), pairs(&blocking));

    // Store the inventory, then match it against a database that arrives later.
    let stored = serde_json::to_string(&scanned).unwrap();
    let feed = tempfile::tempdir().unwrap();
    common::write_osv_feed(feed.path(), &blocking);
    let (db, _) = AdvisoryDb::from_osv_dirs(&[feed.path()]).unwrap();
    let updated = scanner.with_database(db);
    let rematched = updated.rematch(serde_json::from_str(&stored).unwrap());
    let fresh = updated.scan_blocking(&debian_oci()).unwrap();
    assert_eq!(rematched, fresh);
    assert_eq!(rematched.verdict, Verdict::Unhealthy);
    // A batch gives the same, in order.
    let batch = updated.rematch_all(vec![serde_json::from_str(&stored).unwrap(); 3]);
    assert_eq!(batch, vec![fresh.clone(); 3]);
    // The new scanner shares the layer cache: the fresh scan read no layer.
    assert_eq!(updated.layer_cache().stats().misses, 2);
}

/// Progress observers see every layer blob read to its stated size, and
/// nothing for layers answered from the cache.
#[test]
fn progress_reports_every_layer_read_to_its_end() {
    let events: std::sync::Arc<std::sync::Mutex<Vec<trawl::LayerProgress>>> =
        std::sync::Arc::default();
    let seen = events.clone();
    let scanner = Scanner::builder()
        .on_progress(move |p| seen.lock().unwrap().push(p.clone()))
        .build()
        .unwrap();
    let report = scanner.scan_blocking(&debian_oci()).unwrap();
    let taken = std::mem::take(&mut *events.lock().unwrap());
    for (i, digest) in report.image.layers.iter().enumerate() {
        let layer: Vec<&trawl::LayerProgress> = taken.iter().filter(|e| e.index == i).collect();
        assert!(layer.len() > 1, "layer {i}: {layer:?}");
        assert!(layer.windows(2).all(|w| w[0].read <= w[1].read));
        let last = layer.last().unwrap();
        assert_eq!(&last.digest, digest);
        assert!(last.done);
        assert_eq!(Some(last.read), last.size);
        assert_eq!(layer.iter().filter(|e| e.done).count(), 1);
    }
    // A second scan is answered from the in-memory cache: no blob is read.
    scanner.scan_blocking(&debian_oci()).unwrap();
    assert_eq!(scanner.layer_cache().stats().misses, 2);
    assert_eq!(*events.lock().unwrap(), []);
}
