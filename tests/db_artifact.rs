//! A compiled advisory database round-trips through a real registry (Debian's
//! docker-registry with basic auth) as an OCI artifact, as `trawl db push`
//! and `pull` ship it: the pulled file is byte-identical, verifies and answers
//! queries.

mod common;
#[path = "../crates/trawl-registry/tests/registry_support/mod.rs"]
mod registry_support;

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use registry_support::{PASSWORD, USER, fixture};
use trawl_advisory::{AdvisoryStore, FeedPaths, PackageQuery};
use trawl_registry::{Credentials, RegistryClient, RegistryOptions, RegistryReference};

/// As in crates/trawl-cli/src/db.rs.
const ARTIFACT_TYPE: &str = "application/vnd.trawl.advisory-db.v1";
const BLOB_MEDIA_TYPE: &str = "application/vnd.trawl.advisory-db.v1.sqlite";

#[test]
fn database_round_trips_through_a_registry() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let feeds = FeedPaths {
        osv_dirs: vec![root.join("crates/trawl-advisory/tests/fixtures/osv/debian")],
        secdb_paths: vec![root.join("../shared/fixtures/secdb/v3.4")],
        debian_tracker_files: vec![
            root.join("crates/trawl-advisory/tests/fixtures/debian-tracker/tracker.json"),
        ],
        ghsa_paths: vec![],
    };
    let built = dir.path().join("trawl.db");
    let (info, _) = AdvisoryStore::build(&feeds, &built).unwrap();
    assert!(info.records > 100, "{info:?}");

    let options = RegistryOptions::default()
        .credentials(&f.basic.host, Credentials::new(USER, PASSWORD))
        .docker_config(f.dir.path().join("no-docker-config.json"))
        .retry_base_delay(Duration::from_millis(20));
    let client = RegistryClient::new(options).unwrap();
    let reference: RegistryReference = format!("{}/trawl/advisory-db:latest", f.basic.host)
        .parse()
        .unwrap();
    let bytes = std::fs::read(&built).unwrap();
    let digest = client
        .push_artifact(&reference, ARTIFACT_TYPE, BLOB_MEDIA_TYPE, bytes.clone())
        .unwrap();
    assert!(digest.starts_with("sha256:"), "{digest}");

    let artifact = client.pull_artifact(&reference).unwrap();
    assert_eq!(artifact.manifest_digest(), digest);
    assert_eq!(artifact.artifact_type(), Some(ARTIFACT_TYPE));
    assert_eq!(artifact.blobs().len(), 1);
    assert_eq!(artifact.blobs()[0].media_type, BLOB_MEDIA_TYPE);
    let mut pulled = Vec::new();
    artifact
        .open_blob(0)
        .unwrap()
        .read_to_end(&mut pulled)
        .unwrap();
    assert!(pulled == bytes, "the pulled database is byte-identical");

    let copy = dir.path().join("pulled.db");
    std::fs::write(&copy, &pulled).unwrap();
    let store = AdvisoryStore::open(&copy).unwrap();
    store.verify().unwrap();
    assert_eq!(store.info(), &info);
    let query = PackageQuery {
        ecosystem: "Alpine:3.4.6",
        name: "openssl",
        version: "1.0.2h-r1",
    };
    assert_eq!(store.matches(&query).unwrap().len(), 23);
}
