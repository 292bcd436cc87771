//! Whole-image harness: end-to-end scan times and peak memory on the real test
//! images, next to the physical floors (decompressing the same layers with
//! `libdeflate-gunzip`, `gzip` and `zstd` in parallel), printed as ratios.
//!
//! ```text
//! cargo bench --bench whole_image
//! ```
//!
//! Measured: inventory of the Debian test image from an OCI layout (cold, no
//! cache), from a real `docker-registry` on loopback, from its zstd twin, and
//! warm from the on-disk layer cache (a fresh process each time); peak RSS of
//! a scan of the Debian image and of an image whose layer holds a 1 GiB file.

#[path = "../tests/common/mod.rs"]
#[allow(dead_code)]
mod common;
#[path = "../crates/trawl-registry/tests/registry_support/mod.rs"]
mod registry_support;

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use trawl::registry::{Credentials, OpenedSource};
use trawl::{ImageSource, RegistryOptions, Scanner};

const RUNS: usize = 7;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        child(&args[2..]);
        return;
    }
    let images = common::images();
    let work = images.join("../bench");
    std::fs::create_dir_all(&work).unwrap();
    let debian = images.join("debian/oci");
    let layout = format!("oci-dir:{}:bookworm", debian.display());
    let zstd_layout = zstd_twin(&debian, &work.join("debian-zstd"));
    let blobs = layer_blobs(&layout);
    let zstd_blobs = layer_blobs(&zstd_layout);
    println!(
        "Debian test image: {} layers, {:.1} MiB compressed",
        blobs.len(),
        mib(total_size(&blobs))
    );

    // Floors: every layer decompressed in parallel by the reference tools.
    let libdeflate = floor("libdeflate-gunzip", &["-c"], &blobs);
    let gzip = floor("gzip", &["-dc"], &blobs);
    let zstd = floor("zstd", &["-dcq"], &zstd_blobs);

    // In-process cold scans (a fresh scanner, so no cache).
    let cold = median(|| inventory(&layout, RegistryOptions::default(), None));
    let cold_zstd = median(|| inventory(&zstd_layout, RegistryOptions::default(), None));

    // The same image from a real registry over loopback.
    let registry = Registry::start(&debian);
    let pulled = format!("registry:{}/bench/debian:bookworm", registry.host);
    let registry_cold = median(|| inventory(&pulled, registry.options(), None));

    // Warm: a fresh process each time, layer results from the on-disk cache.
    let cache = work.join("layer-cache");
    let _ = std::fs::remove_dir_all(&cache);
    inventory(&layout, RegistryOptions::default(), Some(&cache));
    let warm = median(|| child_run(&[&layout, "--cache-dir", cache.to_str().unwrap()]).0);
    let (_, rss_debian) = child_run(&[&layout]);
    let big = big_layer_image(&work.join("big-layer"));
    let (big_time, rss_big) = child_run(&[&format!("oci-dir:{}:big", big.display())]);

    // The language-heavy image (scripts/lang-artifacts/build-image.sh):
    // thousands of metadata files, Go binaries with hundreds of modules, a
    // cargo-auditable binary, nested jars.
    let lang_dir = std::env::var_os("TRAWL_LANG_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/lang-artifacts"))
        .join("image");
    let lang = lang_dir.join("index.json").exists().then(|| {
        let source = format!("oci-dir:{}:lang", lang_dir.display());
        let blobs = layer_blobs(&source);
        println!(
            "language test image: {} layers, {:.1} MiB compressed",
            blobs.len(),
            mib(total_size(&blobs))
        );
        let floor = floor("libdeflate-gunzip", &["-c"], &blobs);
        let cold = median(|| inventory(&source, RegistryOptions::default(), None));
        let (_, rss) = child_run(&[&source]);
        (floor, cold, rss)
    });
    let big_lang = big_lang_image(&work.join("big-lang")).map(|layout| {
        let (time, rss) = child_run(&[&format!("oci-dir:{}:big-lang", layout.display())]);
        (time, rss)
    });
    if lang.is_none() {
        println!(
            "no language test image at {}: see scripts/lang-artifacts/build-image.sh",
            lang_dir.display()
        );
    }

    println!();
    println!("{:<48} {:>10}", "measurement", "median");
    let row = |name: &str, d: Option<Duration>| match d {
        Some(d) => println!("{name:<48} {:>8.1} ms", d.as_secs_f64() * 1e3),
        None => println!("{name:<48} {:>10}", "n/a"),
    };
    row("floor: libdeflate-gunzip, layers in parallel", libdeflate);
    row("floor: gzip -dc, layers in parallel", gzip);
    row("floor: zstd -dc (zstd twin), layers in parallel", zstd);
    row("trawl inventory, OCI layout, cold", Some(cold));
    row("trawl inventory, zstd twin, cold", Some(cold_zstd));
    row(
        "trawl inventory, registry over loopback, cold",
        Some(registry_cold),
    );
    row("trawl scan process, warm layer cache", Some(warm));
    row("trawl scan process, 1 GiB-file layer", Some(big_time));
    println!(
        "{:<48} {:>7.1} MiB",
        "peak RSS, Debian image scan process",
        rss_debian as f64 / 1024.0
    );
    println!(
        "{:<48} {:>7.1} MiB",
        "peak RSS, 1 GiB-file layer scan process",
        rss_big as f64 / 1024.0
    );
    if let Some((floor, cold, rss)) = lang {
        row("floor: libdeflate-gunzip, language image", floor);
        row("trawl inventory, language image, cold", Some(cold));
        println!(
            "{:<48} {:>7.1} MiB",
            "peak RSS, language image scan process",
            rss as f64 / 1024.0
        );
    }

    println!();
    println!("ratios (goal in brackets)");
    let ratio = |name: &str, a: Duration, b: Option<Duration>, goal: &str| match b {
        Some(b) => println!(
            "{name:<48} {:>6.2}x  [{goal}]",
            a.as_secs_f64() / b.as_secs_f64()
        ),
        None => println!("{name:<48} {:>7}  [{goal}]", "n/a"),
    };
    ratio(
        "OCI layout cold / libdeflate floor",
        cold,
        libdeflate,
        "<= 1.5x",
    );
    ratio(
        "zstd twin cold / zstd -dc floor",
        cold_zstd,
        zstd,
        "<= 1.5x",
    );
    ratio(
        "registry cold / OCI layout cold",
        registry_cold,
        Some(cold),
        "<= 1.2x",
    );
    ratio(
        "warm process / Trivy warm (90 ms here)",
        warm,
        Some(Duration::from_millis(90)),
        "<= 0.3x",
    );
    println!(
        "{:<48} {:>6.1} MiB [< 64 MiB]",
        "peak RSS with a 1 GiB layer",
        rss_big as f64 / 1024.0
    );
    if let Some((time, rss)) = big_lang {
        row(
            "trawl scan process, 1 GiB Go binary + 300 MiB jar",
            Some(time),
        );
        println!(
            "{:<48} {:>6.1} MiB [<= 64 MiB]",
            "peak RSS, 1 GiB Go binary + 300 MiB jar",
            rss as f64 / 1024.0
        );
    }
    if let Some((floor, cold, _)) = lang {
        ratio(
            "language image cold / libdeflate floor",
            cold,
            floor,
            "<= 1.3x",
        );
    }
}

/// Child mode: one inventory, then report the process's peak RSS (KiB).
fn child(args: &[String]) {
    let source = &args[0];
    let cache = args
        .iter()
        .position(|a| a == "--cache-dir")
        .map(|i| PathBuf::from(&args[i + 1]));
    let scanned = inventory_scanned(source, RegistryOptions::default(), cache.as_deref());
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    println!("{hwm} {}", scanned.inventory.packages.len());
}

fn child_run(args: &[&str]) -> (Duration, u64) {
    let exe = std::env::current_exe().unwrap();
    let start = Instant::now();
    let out = Command::new(exe)
        .arg("--child")
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    assert!(out.status.success(), "child scan failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let rss = text
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (elapsed, rss)
}

fn inventory_scanned(
    source: &str,
    options: RegistryOptions,
    cache: Option<&Path>,
) -> trawl::Scanned {
    let mut builder = Scanner::builder().registry_options(options);
    if let Some(dir) = cache {
        builder = builder.cache_dir(dir);
    }
    let scanner = builder.build().unwrap();
    let source: ImageSource = source.parse().unwrap();
    scanner
        .inventory_blocking(&source)
        .unwrap_or_else(|e| panic!("{source}: {e}"))
}

fn inventory(source: &str, options: RegistryOptions, cache: Option<&Path>) -> Duration {
    let start = Instant::now();
    let scanned = inventory_scanned(source, options, cache);
    let elapsed = start.elapsed();
    assert!(!scanned.inventory.packages.is_empty());
    elapsed
}

fn median(mut f: impl FnMut() -> Duration) -> Duration {
    f(); // warm the page cache and the allocator
    let mut runs: Vec<Duration> = (0..RUNS).map(|_| f()).collect();
    runs.sort();
    runs[RUNS / 2]
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn total_size(paths: &[PathBuf]) -> u64 {
    paths
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// The blob files of an OCI-layout image's layers.
fn layer_blobs(source: &str) -> Vec<PathBuf> {
    let source: ImageSource = source.parse().unwrap();
    let ImageSource::OciDir { path, .. } = &source else {
        panic!("{source}")
    };
    let OpenedSource::Image(image) = trawl::registry::open(&source).unwrap() else {
        panic!("{source}")
    };
    image
        .layers()
        .iter()
        .map(|l| {
            path.join("blobs/sha256")
                .join(l.digest.trim_start_matches("sha256:"))
        })
        .collect()
}

/// Median time of `tool ARGS < blob > /dev/null` for every blob at once.
fn floor(tool: &str, args: &[&str], blobs: &[PathBuf]) -> Option<Duration> {
    if Command::new(tool).arg("--version").output().is_err()
        && Command::new(tool).arg("-V").output().is_err()
    {
        eprintln!("{tool} not installed: floor not measured");
        return None;
    }
    Some(median(|| {
        let start = Instant::now();
        let children: Vec<_> = blobs
            .iter()
            .map(|b| {
                Command::new(tool)
                    .args(args)
                    .stdin(std::fs::File::open(b).unwrap())
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success(), "{tool} failed");
        }
        start.elapsed()
    }))
}

/// `skopeo copy --dest-compress-format zstd` of the Debian layout (made once).
fn zstd_twin(layout: &Path, out: &Path) -> String {
    let source = format!("oci-dir:{}:bookworm", out.display());
    if !out.join("index.json").exists() {
        let status = Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-compress-format", "zstd"])
            .arg(format!("oci:{}:bookworm", layout.display()))
            .arg(format!("oci:{}:bookworm", out.display()))
            .status()
            .unwrap();
        assert!(status.success(), "skopeo copy to zstd failed");
    }
    source
}

/// What one entry of a generated layer holds.
enum Content {
    /// These bytes.
    Bytes(Vec<u8>),
    /// The file at this path, streamed.
    File(PathBuf),
    /// This many bytes of text-like filler, streamed.
    Filler(u64),
}

/// An OCI layout with one gzip layer: a dpkg status, an os-release and a
/// 1 GiB file no cataloger wants (made once; streamed, never held in memory).
fn big_layer_image(dir: &Path) -> PathBuf {
    let status = std::fs::read(common::images().join("debian/dpkg-status")).unwrap();
    let os = std::fs::read(common::images().join("debian/os-release")).unwrap();
    one_layer_image(
        dir,
        "big",
        vec![
            ("var/lib/dpkg/status", 0o644, Content::Bytes(status)),
            ("etc/os-release", 0o644, Content::Bytes(os)),
            ("opt/big.bin", 0o644, Content::Filler(1 << 30)),
        ],
    )
}

/// An OCI layout with one gzip layer: a real 1 GiB Go binary (`go build` of a
/// program embedding 1 GiB of data) and a 300 MiB Spring Boot fat jar (the
/// test data's demo-boot jar, its nested jars, and 300 MiB of stored
/// resources), both of which the catalogers read. `None` when `go` or the
/// language test data is missing.
fn big_lang_image(dir: &Path) -> Option<PathBuf> {
    if dir.join("index.json").exists() {
        return Some(dir.to_path_buf());
    }
    let artifacts = std::env::var_os("TRAWL_LANG_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/lang-artifacts"));
    let boot = artifacts.join("java/demo-boot-0.0.1-SNAPSHOT.jar");
    if !boot.exists() || Command::new("go").arg("version").output().is_err() {
        return None;
    }
    let src = dir.join("go-src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("go.mod"), "module example.com/big\n\ngo 1.19\n").unwrap();
    std::fs::write(
        src.join("main.go"),
        "package main\n\nimport _ \"embed\"\n\n//go:embed blob.bin\nvar blob []byte\n\nfunc main() { println(len(blob)) }\n",
    )
    .unwrap();
    // 1 GiB of filler: a sparse file, compressed to little in the layer.
    std::fs::File::create(src.join("blob.bin"))
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let go_binary = dir.join("big-go");
    let status = Command::new("go")
        .args(["build", "-trimpath", "-o"])
        .arg(&go_binary)
        .arg(".")
        .current_dir(&src)
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOCACHE", dir.join("gocache"))
        .status()
        .unwrap();
    assert!(status.success(), "go build of the 1 GiB binary failed");
    std::fs::remove_dir_all(&src).unwrap();
    let jar = dir.join("fat.jar");
    let status = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, zipfile\n\
             src, dst = sys.argv[1:3]\n\
             with zipfile.ZipFile(src) as zi, zipfile.ZipFile(dst, 'w') as zo:\n\
             \x20   for i in zi.infolist(): zo.writestr(i, zi.read(i.filename))\n\
             \x20   with zo.open(zipfile.ZipInfo('BOOT-INF/classes/big.bin'), 'w', force_zip64=True) as f:\n\
             \x20       for _ in range(300): f.write(b'x' * (1 << 20))\n",
        )
        .arg(&boot)
        .arg(&jar)
        .status()
        .unwrap();
    assert!(status.success(), "building the fat jar failed");
    let layout = one_layer_image(
        &dir.join("oci"),
        "big-lang",
        vec![
            (
                "usr/local/bin/big-go",
                0o755,
                Content::File(go_binary.clone()),
            ),
            ("app/fat.jar", 0o644, Content::File(jar.clone())),
        ],
    );
    std::fs::remove_file(go_binary).unwrap();
    std::fs::remove_file(jar).unwrap();
    let _ = std::fs::remove_dir_all(dir.join("gocache"));
    Some(layout)
}

/// An OCI layout at `dir` (tag `tag`) with one gzip layer of `entries`,
/// streamed from their sources; made once.
fn one_layer_image(dir: &Path, tag: &str, entries: Vec<(&str, u32, Content)>) -> PathBuf {
    if dir.join("index.json").exists() {
        return dir.to_path_buf();
    }
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let tmp = dir.join("layer.tmp");
    let mut tar_hash = Sha256::new();
    {
        let file = std::fs::File::create(&tmp).unwrap();
        let gz =
            flate2::write::GzEncoder::new(io::BufWriter::new(file), flate2::Compression::fast());
        let mut tar = tar::Builder::new(HashingWriter {
            inner: gz,
            hasher: &mut tar_hash,
        });
        for (path, mode, content) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(mode);
            match content {
                Content::Bytes(data) => {
                    h.set_size(data.len() as u64);
                    h.set_cksum();
                    tar.append_data(&mut h, path, &data[..]).unwrap();
                }
                Content::File(file) => {
                    let f = std::fs::File::open(&file).unwrap();
                    h.set_size(f.metadata().unwrap().len());
                    h.set_cksum();
                    tar.append_data(&mut h, path, io::BufReader::new(f))
                        .unwrap();
                }
                Content::Filler(len) => {
                    h.set_size(len);
                    h.set_cksum();
                    // Text-like filler: compresses about as well as real files do.
                    tar.append_data(&mut h, path, io::repeat(b'x').take(len))
                        .unwrap();
                }
            }
        }
        let hashing = tar.into_inner().unwrap();
        hashing.inner.finish().unwrap().flush().unwrap();
    }
    let diff_id = format!("sha256:{}", hex::encode(tar_hash.finalize()));
    let layer_digest = file_digest(&tmp);
    let layer_size = std::fs::metadata(&tmp).unwrap().len();
    std::fs::rename(&tmp, blobs.join(&layer_digest[7..])).unwrap();
    let config = serde_json::json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]}})
    .to_string();
    let config_digest = put(&blobs, config.as_bytes());
    let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer_size}]})
    .to_string();
    let manifest_digest = put(&blobs, manifest.as_bytes());
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest, "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": tag}}]});
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    dir.to_path_buf()
}

struct HashingWriter<'h, W> {
    inner: W,
    hasher: &'h mut Sha256,
}

impl<W: Write> Write for HashingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn put(blobs: &Path, data: &[u8]) -> String {
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(data)));
    std::fs::write(blobs.join(&digest[7..]), data).unwrap();
    digest
}

fn file_digest(path: &Path) -> String {
    let mut h = Sha256::new();
    io::copy(&mut std::fs::File::open(path).unwrap(), &mut h).unwrap();
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// A real `docker-registry` with basic auth, the Debian image pushed by skopeo.
struct Registry {
    host: String,
    _server: registry_support::Registry,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start(layout: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).unwrap();
        let htpasswd = dir.path().join("htpasswd");
        let hash = bcrypt::hash(registry_support::PASSWORD, 4).unwrap();
        std::fs::write(&htpasswd, format!("{}:{hash}\n", registry_support::USER)).unwrap();
        let server = registry_support::Registry::start(
            dir.path(),
            &storage,
            &registry_support::Auth::Htpasswd(htpasswd),
            None,
        );
        let status = Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false", "--dest-creds"])
            .arg(format!(
                "{}:{}",
                registry_support::USER,
                registry_support::PASSWORD
            ))
            .arg(format!("oci:{}:bookworm", layout.display()))
            .arg(format!("docker://{}/bench/debian:bookworm", server.host))
            .status()
            .unwrap();
        assert!(status.success());
        Registry {
            host: server.host.clone(),
            _server: server,
            _dir: dir,
        }
    }

    fn options(&self) -> RegistryOptions {
        RegistryOptions::default()
            .credentials(
                &self.host,
                Credentials::new(registry_support::USER, registry_support::PASSWORD),
            )
            .docker_config("/nonexistent/trawl-bench-docker-config.json")
    }
}
