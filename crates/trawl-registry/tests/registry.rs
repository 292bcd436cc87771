//! Pulling from real registries (Debian's docker-registry, distribution 2.8) with basic
//! auth, TLS with a test CA, token auth and a multi-platform index; and every registry fault
//! through a fault-injecting proxy, each with the typed error it must give.

mod common;
mod registry_support;

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use registry_support::proxy::{Fault, Proxy};
use registry_support::{DEBIAN_REPO, DISTROLESS_REPO, MULTI_REPO, PASSWORD, USER, fixture};
use sha2::{Digest, Sha256};
use trawl_registry::{
    Credentials, ImageSource, LocalImage, OpenedSource, Platform, RegistryClient, RegistryError,
    RegistryOptions, RegistryReference, open_with_options,
};

/// Options for a test: credentials for `host`, fast retries, no Docker config of the machine.
fn options(host: &str) -> RegistryOptions {
    RegistryOptions::default()
        .credentials(host, Credentials::new(USER, PASSWORD))
        .docker_config(fixture().dir.path().join("no-docker-config.json"))
        .retry_base_delay(Duration::from_millis(20))
}

fn reference(host: &str, repo: &str, tag: &str) -> RegistryReference {
    format!("{host}/{repo}:{tag}").parse().unwrap()
}

fn open_image(
    options: &RegistryOptions,
    reference: &RegistryReference,
) -> Result<LocalImage, RegistryError> {
    RegistryClient::new(options.clone())?.open_image(reference)
}

fn layout_image(layout: &Path) -> LocalImage {
    let source: ImageSource = format!("oci-dir:{}", layout.display()).parse().unwrap();
    match open_with_options(&source, &RegistryOptions::default()).unwrap() {
        OpenedSource::Image(image) => image,
        OpenedSource::Rootfs(_) => unreachable!(),
    }
}

/// sha256 and length of each layer, read in parallel as the extractor does.
fn read_layers(image: &LocalImage) -> Vec<Result<(String, u64), std::io::Error>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..image.layers().len())
            .map(|i| {
                scope.spawn(move || {
                    let mut reader = image.open_layer(i).map_err(std::io::Error::other)?;
                    let mut hasher = Sha256::new();
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut len = 0u64;
                    loop {
                        let n = reader.read(&mut buf)?;
                        if n == 0 {
                            break;
                        }
                        hasher.update(&buf[..n]);
                        len += n as u64;
                    }
                    Ok((format!("sha256:{}", hex::encode(hasher.finalize())), len))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The registry image has the layout's manifest, config and layers, byte for byte.
fn assert_same_image(pulled: &LocalImage, layout: &Path) {
    let local = layout_image(layout);
    assert_eq!(pulled.manifest_digest(), local.manifest_digest());
    assert_eq!(pulled.config_digest(), local.config_digest());
    assert_eq!(pulled.config().diff_ids, local.config().diff_ids);
    assert_eq!(pulled.layers(), local.layers());
    let remote_layers = read_layers(pulled);
    let local_layers = read_layers(&local);
    assert!(!remote_layers.is_empty());
    for ((remote, local), descriptor) in remote_layers
        .into_iter()
        .zip(local_layers)
        .zip(pulled.layers())
    {
        let remote = remote.expect("registry layer reads to the end");
        assert_eq!(remote, local.unwrap());
        assert_eq!(remote.0, descriptor.digest);
        assert_eq!(Some(remote.1), descriptor.size);
    }
}

fn debian_layout() -> std::path::PathBuf {
    common::test_images().join("debian/oci")
}

fn distroless_layout() -> std::path::PathBuf {
    common::test_images().join("distroless/oci")
}

#[test]
fn pulls_with_basic_auth_over_plain_http() {
    let f = fixture();
    let source: ImageSource = format!("registry:{}/{DEBIAN_REPO}:bookworm", f.basic.host)
        .parse()
        .unwrap();
    let image = match open_with_options(&source, &options(&f.basic.host)).unwrap() {
        OpenedSource::Image(image) => image,
        OpenedSource::Rootfs(_) => unreachable!(),
    };
    assert_eq!(image.source_name(), source.to_string());
    assert_same_image(&image, &debian_layout());

    // Pinned by digest, the same image.
    let digest = image.manifest_digest().unwrap().to_owned();
    let pinned = reference(&f.basic.host, DEBIAN_REPO, "x").with_digest(&digest);
    let by_digest = open_image(&options(&f.basic.host), &pinned).unwrap();
    assert_eq!(by_digest.manifest_digest(), Some(digest.as_str()));
}

#[test]
fn pulls_over_tls_with_a_custom_ca() {
    let f = fixture();
    let r = reference(&f.tls.host, DEBIAN_REPO, "bookworm");
    let with_ca = options(&f.tls.host).ca_file(&f.pki.ca);
    assert_same_image(&open_image(&with_ca, &r).unwrap(), &debian_layout());

    // Without the CA the server is not trusted, and plain HTTP does not help.
    let e = open_image(&options(&f.tls.host), &r).unwrap_err();
    assert!(matches!(e, RegistryError::Request { .. }), "{e}");
    assert!(e.to_string().contains("certificate"), "{e}");
    assert!(e.to_string().contains(&f.tls.host), "{e}");
}

#[test]
fn pulls_with_token_auth() {
    let f = fixture();
    let before = f
        .token_service
        .issued
        .load(std::sync::atomic::Ordering::SeqCst);
    let r = reference(&f.token.host, DEBIAN_REPO, "bookworm");
    assert_same_image(
        &open_image(&options(&f.token.host), &r).unwrap(),
        &debian_layout(),
    );
    assert!(
        f.token_service
            .issued
            .load(std::sync::atomic::Ordering::SeqCst)
            > before
    );
}

#[test]
fn multi_platform_index_chooses_the_platform() {
    let f = fixture();
    let r = reference(&f.basic.host, MULTI_REPO, "multi");
    let amd64 = options(&f.basic.host).platform("linux/amd64".parse().unwrap());
    assert_same_image(&open_image(&amd64, &r).unwrap(), &debian_layout());
    for arm in ["linux/arm64", "linux/arm64/v8"] {
        let arm64 = options(&f.basic.host).platform(arm.parse().unwrap());
        assert_same_image(&open_image(&arm64, &r).unwrap(), &distroless_layout());
    }

    let s390x = options(&f.basic.host).platform("linux/s390x".parse::<Platform>().unwrap());
    let e = open_image(&s390x, &r).unwrap_err();
    let RegistryError::NoMatchingPlatform {
        source_name,
        index,
        wanted,
        available,
    } = &e
    else {
        panic!("{e}");
    };
    assert_eq!(source_name, &format!("registry:{r}"));
    assert_eq!(index, &f.index_digest);
    assert_eq!(wanted, "linux/s390x");
    assert_eq!(available, &["linux/amd64", "linux/arm64/v8"]);
}

#[test]
fn head_lookup_gives_manifest_digests() {
    let f = fixture();
    let client = RegistryClient::new(options(&f.basic.host)).unwrap();
    let debian = client
        .manifest_digest(&reference(&f.basic.host, DEBIAN_REPO, "bookworm"))
        .unwrap();
    assert_eq!(
        Some(debian.as_str()),
        layout_image(&debian_layout()).manifest_digest()
    );
    let index = client
        .manifest_digest(&reference(&f.basic.host, MULTI_REPO, "multi"))
        .unwrap();
    assert_eq!(index, f.index_digest);
    let e = client
        .manifest_digest(&reference(&f.basic.host, DEBIAN_REPO, "no-such-tag"))
        .unwrap_err();
    assert!(matches!(e, RegistryError::NotFound { .. }), "{e}");
}

#[test]
fn lists_tags_and_catalog_across_pages() {
    let f = fixture();
    let proxy = Proxy::start(&f.basic.host, None);
    let client = RegistryClient::new(options(&proxy.host).listing_page_size(1)).unwrap();
    let mut tags = client
        .tags(&reference(&proxy.host, MULTI_REPO, "x"))
        .unwrap();
    tags.sort();
    assert_eq!(tags, ["amd64", "arm64", "multi"]);
    let catalog = client.catalog(&proxy.host).unwrap();
    for repo in [DEBIAN_REPO, DISTROLESS_REPO, MULTI_REPO] {
        assert!(
            catalog.iter().any(|r| r == repo),
            "{repo} not in {catalog:?}"
        );
    }
    let pages = |what: &str| {
        proxy
            .requests()
            .iter()
            .filter(|r| r.path.contains(what) && r.authorization)
            .count()
    };
    // One name per page: a request per repository, following `Link`. (distribution 2.8
    // ignores `n` for tag lists and answers in one page; the same code follows both.)
    assert!(pages("/tags/list") >= 1, "{:?}", proxy.requests());
    assert!(pages("/_catalog") >= 3, "{:?}", proxy.requests());
    assert!(
        proxy
            .requests()
            .iter()
            .any(|r| r.path.contains("/_catalog?last=")),
        "{:?}",
        proxy.requests()
    );
}

#[test]
fn pushes_and_pulls_an_artifact() {
    let f = fixture();
    let r = reference(&f.basic.host, "trawl/advisories", "v1");
    let client = RegistryClient::new(options(&f.basic.host)).unwrap();
    let payload: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let digest = client
        .push_artifact(
            &r,
            "application/vnd.trawl.advisory-db.v1",
            "application/vnd.trawl.advisory-db.v1.tar+zstd",
            payload.clone(),
        )
        .unwrap();
    let artifact = client.pull_artifact(&r).unwrap();
    assert_eq!(artifact.manifest_digest(), digest);
    assert_eq!(
        artifact.artifact_type(),
        Some("application/vnd.trawl.advisory-db.v1")
    );
    assert_eq!(artifact.blobs().len(), 1);
    assert_eq!(
        artifact.blobs()[0].media_type,
        "application/vnd.trawl.advisory-db.v1.tar+zstd"
    );
    let mut pulled = Vec::new();
    artifact
        .open_blob(0)
        .unwrap()
        .read_to_end(&mut pulled)
        .unwrap();
    assert_eq!(pulled, payload);
}

#[test]
fn credentials_come_from_docker_config() {
    use base64::Engine as _;
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    std::fs::write(
        &config,
        format!(
            r#"{{"auths": {{"http://{}": {{"auth": "{auth}"}}}}}}"#,
            f.basic.host
        ),
    )
    .unwrap();
    let options = RegistryOptions::default().docker_config(&config);
    let image = open_image(
        &options,
        &reference(&f.basic.host, DISTROLESS_REPO, "latest"),
    )
    .unwrap();
    assert_same_image(&image, &distroless_layout());
}

#[test]
fn missing_or_wrong_credentials_are_unauthorized() {
    let f = fixture();
    let r = reference(&f.basic.host, DEBIAN_REPO, "bookworm");
    let none = RegistryOptions::default().docker_config(f.dir.path().join("none.json"));
    let e = open_image(&none, &r).unwrap_err();
    assert!(
        matches!(&e, RegistryError::Unauthorized { reason, .. } if reason.contains("none are configured")),
        "{e}"
    );
    assert!(e.to_string().contains(&format!("registry:{r}")), "{e}");

    let wrong = none
        .clone()
        .credentials(&f.basic.host, Credentials::new(USER, "wrong-password"));
    let e = open_image(&wrong, &r).unwrap_err();
    assert!(
        matches!(&e, RegistryError::Unauthorized { reason, .. } if reason.contains("rejected")),
        "{e}"
    );
    assert!(!e.to_string().contains("wrong-password"), "{e}");

    let token_ref = reference(&f.token.host, DEBIAN_REPO, "bookworm");
    let wrong = none
        .clone()
        .credentials(&f.token.host, Credentials::new(USER, "wrong-password"));
    let e = open_image(&wrong, &token_ref).unwrap_err();
    assert!(
        matches!(&e, RegistryError::Unauthorized { reason, .. } if reason.contains("token service rejected")),
        "{e}"
    );
}

#[test]
fn unauthorized_after_token_refresh() {
    let f = fixture();
    // The token service grants nothing on denied/*: the registry refuses even a fresh token.
    let r = reference(&f.token.host, "denied/debian", "bookworm");
    let e = open_image(&options(&f.token.host), &r).unwrap_err();
    let RegistryError::Unauthorized {
        reference: named,
        reason,
        ..
    } = &e
    else {
        panic!("{e}");
    };
    assert_eq!(named, &format!("registry:{r}"));
    assert!(reason.contains("freshly issued token"), "{e}");
}

// ---- faults through the proxy ----

/// A proxy in front of the basic-auth registry, and a reference to Debian through it.
fn proxied() -> (Proxy, RegistryReference, RegistryOptions) {
    let f = fixture();
    let proxy = Proxy::start(&f.basic.host, None);
    let r = reference(&proxy.host, DEBIAN_REPO, "bookworm");
    let options = options(&proxy.host);
    (proxy, r, options)
}

fn largest_layer(image: &LocalImage) -> usize {
    (0..image.layers().len())
        .max_by_key(|&i| image.layers()[i].size)
        .unwrap()
}

fn layer_error(image: &LocalImage, index: usize) -> std::io::Error {
    let mut reader = image.open_layer(index).unwrap();
    std::io::copy(&mut reader, &mut std::io::sink()).unwrap_err()
}

#[test]
fn retries_server_errors() {
    let (proxy, r, options) = proxied();
    proxy.add(
        "GET",
        "/manifests/",
        Fault::Status {
            code: 500,
            retry_after: None,
        },
        2,
    );
    proxy.add(
        "GET",
        "/blobs/",
        Fault::Status {
            code: 503,
            retry_after: None,
        },
        1,
    );
    assert_same_image(&open_image(&options, &r).unwrap(), &debian_layout());
    let manifest_gets = proxy
        .requests()
        .iter()
        .filter(|l| l.method == "GET" && l.path.contains("/manifests/"))
        .count();
    assert_eq!(manifest_gets, 3);

    // A registry that keeps failing: the error names the reference, the status and the tries.
    let (proxy, r, options) = proxied();
    proxy.add(
        "GET",
        "/manifests/",
        Fault::Status {
            code: 500,
            retry_after: None,
        },
        100,
    );
    let e = open_image(&options, &r).unwrap_err();
    let RegistryError::Request {
        reference,
        status,
        attempts,
        ..
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!(reference, &format!("registry:{r}"));
    assert_eq!((*status, *attempts), (Some(500), 4));
    assert!(e.to_string().contains("injected by the test proxy"), "{e}");
}

#[test]
fn honours_retry_after_on_429() {
    let (proxy, r, options) = proxied();
    proxy.add(
        "GET",
        "/blobs/",
        Fault::Status {
            code: 429,
            retry_after: Some(1),
        },
        1,
    );
    let started = Instant::now();
    let image = open_image(&options, &r).unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_same_image(&image, &debian_layout());
}

#[test]
fn resumes_a_blob_cut_mid_download() {
    let (proxy, r, options) = proxied();
    let image = open_image(&options, &r).unwrap();
    let big = largest_layer(&image);
    let digest = image.layers()[big].digest.clone();
    let hex = digest.strip_prefix("sha256:").unwrap();
    proxy.add("GET", hex, Fault::CutAfter(1_000_000), 1);
    assert_same_image(&image, &debian_layout());
    let ranges: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|l| l.path.contains(hex))
        .filter_map(|l| l.range)
        .collect();
    assert_eq!(ranges, ["bytes=1000000-"]);
}

#[test]
fn rejects_a_blob_with_the_wrong_digest() {
    let (proxy, r, options) = proxied();
    let image = open_image(&options, &r).unwrap();
    let big = largest_layer(&image);
    proxy.add("GET", "/blobs/", Fault::Corrupt, 100);
    let e = layer_error(&image, big);
    let inner = RegistryError::from_io(&e).unwrap_or_else(|| panic!("{e}"));
    assert!(
        matches!(inner, RegistryError::DigestMismatch { expected, .. } if *expected == image.layers()[big].digest),
        "{inner}"
    );
    assert!(
        inner.to_string().contains(&format!("registry:{r}")),
        "{inner}"
    );
}

#[test]
fn aborts_a_blob_larger_than_its_descriptor() {
    let (proxy, r, options) = proxied();
    let image = open_image(&options, &r).unwrap();
    proxy.add("GET", "/blobs/", Fault::Append(10), 100);
    let e = layer_error(&image, 0);
    let inner = RegistryError::from_io(&e).unwrap_or_else(|| panic!("{e}"));
    assert!(
        matches!(inner, RegistryError::SizeExceeded { expected, .. } if Some(*expected) == image.layers()[0].size),
        "{inner}"
    );
    assert!(
        inner.to_string().contains(&format!("registry:{r}")),
        "{inner}"
    );
}

#[test]
fn rejects_a_manifest_over_4_mib() {
    let (proxy, r, options) = proxied();
    let mut body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"pad":""#.to_vec();
    body.extend(std::iter::repeat_n(b'x', 5 * 1024 * 1024));
    body.extend(br#""}}"#);
    proxy.add(
        "GET",
        "/manifests/",
        Fault::Replace {
            content_type: "application/vnd.oci.image.manifest.v1+json".into(),
            body,
        },
        1,
    );
    let e = open_image(&options, &r).unwrap_err();
    let RegistryError::DocumentTooLarge {
        source_name, limit, ..
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!(source_name, &format!("registry:{r}"));
    assert_eq!(*limit, 4 * 1024 * 1024);
}

#[test]
fn rejects_unknown_and_schema1_media_types() {
    let (proxy, r, options) = proxied();
    let body =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.example.unknown.v1+json"}"#.to_vec();
    proxy.add(
        "GET",
        "/manifests/",
        Fault::Replace {
            content_type: "application/vnd.example.unknown.v1+json".into(),
            body,
        },
        1,
    );
    let e = open_image(&options, &r).unwrap_err();
    assert!(
        matches!(&e, RegistryError::UnsupportedMediaType { source_name, media_type, .. }
        if *source_name == format!("registry:{r}") && media_type == "application/vnd.example.unknown.v1+json"),
        "{e}"
    );

    let body =
        br#"{"schemaVersion":1,"name":"trawl/debian","tag":"bookworm","fsLayers":[],"history":[]}"#
            .to_vec();
    proxy.add(
        "GET",
        "/manifests/",
        Fault::Replace {
            content_type: "application/vnd.docker.distribution.manifest.v1+prettyjws".into(),
            body,
        },
        1,
    );
    let e = open_image(&options, &r).unwrap_err();
    assert!(
        matches!(&e, RegistryError::SchemaOneManifest { source_name, .. } if *source_name == format!("registry:{r}")),
        "{e}"
    );
    assert!(e.to_string().contains("schema 1"), "{e}");
}

#[test]
fn rejects_a_manifest_that_does_not_match_its_digest() {
    let (proxy, r, options) = proxied();
    let digest = layout_image(&debian_layout())
        .manifest_digest()
        .unwrap()
        .to_owned();
    let pinned = r.with_digest(&digest);
    proxy.add("GET", "/manifests/", Fault::Corrupt, 1);
    let e = open_image(&options, &pinned).unwrap_err();
    assert!(
        matches!(&e, RegistryError::DigestMismatch { blob, expected, .. }
        if blob.contains(&format!("registry:{pinned}")) && *expected == digest),
        "{e}"
    );
}

/// "Blob storage": a proxy to the basic-auth registry that adds the
/// credentials itself, so it serves blobs to a client that sends none (as
/// presigned storage URLs do); and its port.
fn blob_storage() -> (Proxy, String) {
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    let storage = Proxy::start(&fixture().basic.host, Some(basic));
    let port = storage.host.rsplit(':').next().unwrap().to_owned();
    (storage, port)
}

#[test]
fn redirected_blobs_get_no_credentials() {
    // "Blob storage": another origin that serves blobs without asking for credentials.
    let (storage, storage_port) = blob_storage();
    let (proxy, r, options) = proxied();
    proxy.add(
        "GET",
        "/blobs/",
        Fault::Redirect(format!("http://localhost:{storage_port}")),
        1000,
    );
    assert_same_image(&open_image(&options, &r).unwrap(), &debian_layout());
    let at_storage = storage.requests();
    assert!(!at_storage.is_empty());
    assert!(
        at_storage.iter().all(|l| !l.authorization),
        "{at_storage:?}"
    );
    assert!(
        proxy
            .requests()
            .iter()
            .filter(|l| l.path.contains("/blobs/"))
            .all(|l| l.authorization)
    );
}

/// The tight transfer limits of the tests below: 2 s per transfer, 64 KiB per 1 s window.
fn tight(options: RegistryOptions) -> RegistryOptions {
    options
        .transfer_deadline(Duration::from_secs(2))
        .min_throughput(64 * 1024, Duration::from_secs(1))
}

/// Reads layer `index` to its end (or error), timed, under a hang guard of 60 s.
fn timed_layer_error(image: LocalImage, index: usize) -> (std::io::Error, Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let started = Instant::now();
        let e = layer_error(&image, index);
        let _ = tx.send((e, started.elapsed()));
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the slow transfer was not aborted within 60 s")
}

/// A registry that trickles a blob faster than the minimum throughput but never finishes
/// in time: [`RegistryError::TransferDeadline`] at the deadline, not resumed. The trickle
/// comes from the test proxy, since a real registry cannot be made to trickle.
#[test]
fn a_trickled_blob_hits_the_transfer_deadline() {
    let (proxy, r, options) = proxied();
    let options = tight(options).min_throughput(1, Duration::from_secs(1));
    let image = open_image(&options, &r).unwrap();
    let big = largest_layer(&image);
    let digest = image.layers()[big].digest.clone();
    let hex = digest.strip_prefix("sha256:").unwrap().to_owned();
    proxy.add(
        "GET",
        &hex,
        Fault::Trickle {
            chunk: 8 * 1024,
            every: Duration::from_millis(50),
        },
        10,
    );
    let (e, took) = timed_layer_error(image, big);
    let inner = RegistryError::from_io(&e).unwrap_or_else(|| panic!("{e}"));
    match inner {
        RegistryError::TransferDeadline { what, after } => {
            assert!(what.contains(&digest), "{inner}");
            assert!(*after >= Duration::from_secs(2), "{inner}");
        }
        other => panic!("expected TransferDeadline, got {other}"),
    }
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "aborted after {took:?}"
    );
    // Final: no resumption was tried.
    let gets = proxy
        .requests()
        .iter()
        .filter(|l| l.path.contains(&hex))
        .count();
    assert_eq!(gets, 1, "{:?}", proxy.requests());
}

/// A blob redirected to "storage" with a presigned query, which then trickles under the
/// minimum throughput: [`RegistryError::TooSlow`] after the second window, naming the
/// digest and the storage URL with its query (the signature) redacted.
#[test]
fn a_trickled_blob_is_too_slow_and_its_signed_url_is_redacted() {
    let (storage, storage_port) = blob_storage();
    let (proxy, r, options) = proxied();
    let options = tight(options).transfer_deadline(Duration::from_secs(60));
    let image = open_image(&options, &r).unwrap();
    let big = largest_layer(&image);
    let digest = image.layers()[big].digest.clone();
    let hex = digest.strip_prefix("sha256:").unwrap().to_owned();
    proxy.add(
        "GET",
        &hex,
        Fault::RedirectWithQuery {
            origin: format!("http://localhost:{storage_port}"),
            query: "X-Amz-Credential=AKIDSECRET&X-Amz-Signature=SIGSECRET".to_owned(),
        },
        10,
    );
    // 10 KiB/s, under 64 KiB per 1 s window.
    storage.add(
        "GET",
        &hex,
        Fault::Trickle {
            chunk: 1024,
            every: Duration::from_millis(100),
        },
        10,
    );
    let (e, took) = timed_layer_error(image, big);
    let inner = RegistryError::from_io(&e).unwrap_or_else(|| panic!("{e}"));
    match inner {
        RegistryError::TooSlow {
            what,
            bytes,
            window,
            min_bytes,
        } => {
            assert!(what.contains(&digest), "{inner}");
            assert!(
                what.contains(&format!("localhost:{storage_port}")),
                "{inner}"
            );
            assert!(*bytes < 64 * 1024, "{inner}");
            assert_eq!(*window, Duration::from_secs(1));
            assert_eq!(*min_bytes, 64 * 1024);
        }
        other => panic!("expected TooSlow, got {other}"),
    }
    let message = inner.to_string();
    for secret in ["AKIDSECRET", "SIGSECRET", PASSWORD] {
        assert!(!message.contains(secret), "{message}");
    }
    assert!(message.contains("?<redacted>"), "{message}");
    // The first window is free: the check is at the end of the second.
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "aborted after {took:?}"
    );
}

/// A manifest trickled slower than the minimum: the manifest transfer is watched too.
#[test]
fn a_trickled_manifest_is_too_slow() {
    let (proxy, r, options) = proxied();
    let options = tight(options)
        .transfer_deadline(Duration::from_secs(60))
        .min_throughput(1024, Duration::from_secs(1));
    proxy.add(
        "GET",
        "/manifests/",
        Fault::Trickle {
            chunk: 1,
            every: Duration::from_millis(100),
        },
        10,
    );
    let started = Instant::now();
    let e = open_image(&options, &r).unwrap_err();
    assert!(
        matches!(&e, RegistryError::TooSlow { what, .. } if what.contains("manifest")),
        "{e}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// The tight limits leave a registry at normal speed alone: the whole Debian image
/// (a 51 MB layer among them) pulls and verifies with 2 s per transfer and 64 KiB per 1 s.
#[test]
fn normal_transfers_pass_tight_limits() {
    let (_proxy, r, options) = proxied();
    let options = tight(options);
    assert_same_image(&open_image(&options, &r).unwrap(), &debian_layout());
}

/// A blob redirected to a presigned URL that cannot be reached: the request error quotes
/// the URL (in its `url` and in reqwest's own message) with user name, password and query
/// redacted.
#[test]
fn request_errors_redact_presigned_urls() {
    let (proxy, r, options) = proxied();
    let options = options.max_attempts(1);
    let image = open_image(&options, &r).unwrap();
    let digest = image.layers()[0].digest.clone();
    let hex = digest.strip_prefix("sha256:").unwrap().to_owned();
    // Nothing listens on port 1 of loopback.
    proxy.add(
        "GET",
        &hex,
        Fault::RedirectWithQuery {
            origin: "http://storage-user:storage-pass@127.0.0.1:1".to_owned(),
            query: "X-Amz-Signature=SIGSECRET".to_owned(),
        },
        10,
    );
    let e = match image.open_layer(0) {
        Ok(_) => panic!("the unreachable storage answered"),
        Err(e) => e,
    };
    let message = e.to_string();
    assert!(matches!(&e, RegistryError::Request { .. }), "{message}");
    for secret in ["SIGSECRET", "storage-pass", "storage-user"] {
        assert!(!message.contains(secret), "{message}");
    }
    assert!(message.contains("127.0.0.1:1"), "{message}");
}
