//! Test images, built on demand from Debian packages by scripts/build-test-images.sh.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The directory holding the built test images (`target/test-images`, or
/// `$TRAWL_TEST_IMAGES`). Builds them on first use; the script itself takes a
/// lock, so concurrent test binaries wait for one build.
pub fn images() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = std::env::var_os("TRAWL_TEST_IMAGES")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/test-images"));
        let status = Command::new("bash")
            .arg(root.join("scripts/build-test-images.sh"))
            .arg(&dir)
            .status()
            .expect("run scripts/build-test-images.sh");
        assert!(
            status.success(),
            "building the test images failed: {status}"
        );
        dir
    })
}

/// `name<TAB>version` lines of a file, sorted.
#[allow(dead_code)]
pub fn tsv_pairs(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut pairs: Vec<(String, String)> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (n, v) = l.split_once('\t').unwrap();
            (n.to_string(), v.to_string())
        })
        .collect();
    pairs.sort();
    pairs
}

/// The same directory, under the name the registry test support uses.
#[allow(dead_code)]
pub fn test_images() -> PathBuf {
    images().to_path_buf()
}

/// The source version of `source` in a test image (`debian`, `distroless`)
/// at `tag`, as the inventory lists it.
#[allow(dead_code)]
pub fn source_version(image: &str, tag: &str, source: &str) -> String {
    let layout = images().join(image).join("oci");
    let src: trawl::ImageSource = format!("oci-dir:{}:{tag}", layout.display())
        .parse()
        .unwrap();
    trawl::Scanner::builder()
        .build()
        .unwrap()
        .inventory_blocking(&src)
        .unwrap()
        .inventory
        .packages
        .iter()
        .find(|p| p.source_name == source)
        .unwrap_or_else(|| panic!("the {image} image has {source}"))
        .source_version
        .clone()
}

/// OSV records for packages of the image, written for its installed versions.
#[allow(dead_code)]
pub fn write_osv_feed(dir: &Path, report: &trawl::Report) {
    let src = |name: &str| {
        report
            .packages
            .iter()
            .find(|p| p.source_name == name)
            .unwrap_or_else(|| panic!("a package built from {name}"))
            .source_version
            .clone()
    };
    let openssl = src("openssl");
    let tar = src("tar");
    let coreutils = src("coreutils");
    let bash = src("bash");
    let range =
        |events: serde_json::Value| serde_json::json!([{"type": "ECOSYSTEM", "events": events}]);
    let record = |id: &str, eco: &str, name: &str, extra: serde_json::Value| {
        let mut r = serde_json::json!({
            "schema_version": "1.6.0", "id": id, "modified": "2026-11-01T00:00:00Z",
            "aliases": [format!("TRAWL-ALIAS-{id}")],
            "summary": format!("test record {id}"),
            "affected": [{"package": {"ecosystem": eco, "name": name}}]
        });
        for (k, v) in extra.as_object().unwrap() {
            if k == "ranges" || k == "versions" || k == "database_specific" {
                r["affected"][0][k] = v.clone();
            } else {
                r[k] = v.clone();
            }
        }
        r
    };
    let records = [
        record(
            "TRAWL-ABOVE",
            "Debian:12",
            "openssl",
            serde_json::json!({
            "ranges": range(serde_json::json!([{"introduced": "0"}, {"fixed": format!("{openssl}+trawl1")}])),
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}),
        ),
        record(
            "TRAWL-BELOW",
            "Debian:12",
            "openssl",
            serde_json::json!({
            "ranges": range(serde_json::json!([{"introduced": "0"}, {"fixed": "1.0.0-1"}]))}),
        ),
        record(
            "TRAWL-NOFIX",
            "Debian:12",
            "util-linux",
            serde_json::json!({
            "ranges": range(serde_json::json!([{"introduced": "0"}])), "database_specific": {"severity": "low"}}),
        ),
        record(
            "TRAWL-LASTAFF",
            "Debian:12",
            "tar",
            serde_json::json!({
            "ranges": range(serde_json::json!([{"introduced": "0"}, {"last_affected": tar}]))}),
        ),
        record(
            "TRAWL-LASTAFF-BELOW",
            "Debian:12",
            "tar",
            serde_json::json!({
            "ranges": range(serde_json::json!([{"introduced": "0"}, {"last_affected": "1.0-1"}]))}),
        ),
        record(
            "TRAWL-BINARY-NAME",
            "Debian:12",
            "libssl3",
            serde_json::json!({
            "ranges": range(serde_json::json!([{"introduced": "0"}]))}),
        ),
        record(
            "TRAWL-WITHDRAWN",
            "Debian:12",
            "openssl",
            serde_json::json!({
            "withdrawn": "2026-10-01T00:00:00Z", "ranges": range(serde_json::json!([{"introduced": "0"}]))}),
        ),
        record(
            "TRAWL-OTHER-RELEASE",
            "Debian:11",
            "openssl",
            serde_json::json!({
            "ranges": range(serde_json::json!([{"introduced": "0"}]))}),
        ),
        record(
            "TRAWL-VERSIONS",
            "Debian:12",
            "coreutils",
            serde_json::json!({"versions": [coreutils]}),
        ),
        record(
            "TRAWL-BINNMU",
            "Debian:12",
            "bash",
            serde_json::json!({
            "ranges": range(serde_json::json!([{"introduced": "0"}, {"fixed": bash}]))}),
        ),
        record(
            "TRAWL-INTRODUCED-LATER",
            "Debian:12",
            "openssl",
            serde_json::json!({
            "ranges": range(serde_json::json!([{"introduced": format!("{openssl}+trawl1")}, {"fixed": format!("{openssl}+trawl2")}]))}),
        ),
    ];
    for r in records {
        let id = r["id"].as_str().unwrap().to_string();
        std::fs::write(
            dir.join(format!("{id}.json")),
            serde_json::to_vec_pretty(&r).unwrap(),
        )
        .unwrap();
    }
}

/// Runs `cargo build --quiet ARGS` for this test's build profile (release
/// when the test binary is) and returns the profile's directory: the root
/// package's tests do not build other targets or packages themselves.
#[allow(dead_code)]
pub fn cargo_build(args: &[&str]) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let mut cargo = Command::new(option_env!("CARGO").unwrap_or("cargo"));
    cargo.arg("build").arg("--quiet").args(args);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cargo.arg("--release");
    }
    if std::env::var_os("CI").is_some() {
        cargo.arg("--locked");
    }
    let status = cargo
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "cargo build {args:?} failed");
    profile_dir
}

/// The `trawl` binary of this build profile, built (or found up to date) by
/// cargo first.
#[allow(dead_code)]
pub fn trawl_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| cargo_build(&["-p", "trawl-cli", "--bin", "trawl"]).join("trawl"))
}

/// The language test data (`target/lang-artifacts`, or
/// `$TRAWL_LANG_ARTIFACTS`) with its image assembled: the packages, the peer
/// scanners, the binaries and the image, built on first use (each script is
/// a no-op when its output is up to date).
#[allow(dead_code)]
pub fn lang_artifacts() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = std::env::var_os("TRAWL_LANG_ARTIFACTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/lang-artifacts"));
        let peers = root.join("target/peers");
        let script = |name: &str| root.join("scripts").join(name);
        let steps = [
            (
                script("lang-artifacts/build-packages.sh"),
                vec![dir.clone()],
            ),
            (script("peer-scanners.sh"), vec![peers.clone()]),
            (
                script("lang-artifacts/build-binaries.sh"),
                vec![dir.clone()],
            ),
            (
                script("lang-artifacts/build-image.sh"),
                vec![dir.clone(), peers.join("bin")],
            ),
        ];
        for (script, args) in steps {
            let status = Command::new("bash")
                .arg(&script)
                .args(&args)
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "{}: {status}", script.display());
        }
        dir
    })
}
