//! Credentials from a `docker-credential-*` helper named by `credHelpers` or `credsStore`.
//!
//! Its own test binary with one test: the helper is found through `PATH`, which this test
//! changes for the whole process.

mod common;
mod registry_support;

use std::os::unix::fs::PermissionsExt;

use registry_support::{DISTROLESS_REPO, PASSWORD, USER, fixture};
use trawl_registry::{RegistryClient, RegistryError, RegistryOptions, RegistryReference};

#[test]
fn credential_helpers_supply_credentials() {
    let f = fixture();
    let bin = tempfile::tempdir().unwrap();
    let helper = bin.path().join("docker-credential-trawltest");
    // Answers for the basic-auth registry only, like a real store with one login.
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread -r server\nif [ \"$server\" = \"{}\" ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\nelse\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
            f.basic.host
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // SAFETY: the only test of this binary; no other thread reads the environment now.
    unsafe { std::env::set_var("PATH", path) };

    let reference: RegistryReference = format!("{}/{DISTROLESS_REPO}:latest", f.basic.host)
        .parse()
        .unwrap();
    for config in [
        format!(r#"{{"credHelpers": {{"{}": "trawltest"}}}}"#, f.basic.host),
        r#"{"credsStore": "trawltest"}"#.to_owned(),
    ] {
        let file = bin.path().join("config.json");
        std::fs::write(&file, &config).unwrap();
        let client = RegistryClient::new(RegistryOptions::default().docker_config(&file)).unwrap();
        let image = client
            .open_image(&reference)
            .unwrap_or_else(|e| panic!("{config}: {e}"));
        assert_eq!(image.layers().len(), 1, "{config}");
    }

    // The helper has nothing for the TLS registry: anonymous, which it refuses.
    let file = bin.path().join("config.json");
    std::fs::write(&file, r#"{"credsStore": "trawltest"}"#).unwrap();
    let client = RegistryClient::new(
        RegistryOptions::default()
            .docker_config(&file)
            .ca_file(&f.pki.ca),
    )
    .unwrap();
    let tls_ref: RegistryReference = format!("{}/{DISTROLESS_REPO}:latest", f.tls.host)
        .parse()
        .unwrap();
    let e = client.open_image(&tls_ref).unwrap_err();
    assert!(
        matches!(&e, RegistryError::Unauthorized { reason, .. } if reason.contains("none are configured")),
        "{e}"
    );
}
