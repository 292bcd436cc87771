//! Test support: tar layers built entry by entry, and OCI image layouts
//! written by hand around them (shared by tests and benches via `#[path]`).

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

/// One tar entry.
pub enum E<'a> {
    File(&'a str, &'a [u8]),
    /// A regular file with mode 0755.
    Exec(&'a str, &'a [u8]),
    Dir(&'a str),
    Link(&'a str, &'a str),
    Hard(&'a str, &'a str),
}

pub fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        match e {
            E::File(p, d) | E::Exec(p, d) => {
                h.set_size(d.len() as u64);
                h.set_mode(if matches!(e, E::Exec(..)) {
                    0o755
                } else {
                    0o644
                });
                h.set_cksum();
                b.append_data(&mut h, p, *d).unwrap();
            }
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_mode(0o755);
                h.set_cksum();
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            E::Link(p, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.set_mode(0o777);
                b.append_link(&mut h, p, t).unwrap();
            }
            E::Hard(p, t) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                h.set_mode(0o644);
                b.append_link(&mut h, p, t).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

pub fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

pub fn put_blob(layout: &Path, data: &[u8]) -> String {
    let digest = sha(data);
    std::fs::write(layout.join("blobs/sha256").join(&digest[7..]), data).unwrap();
    digest
}

/// Writes an OCI layout with these layers (gzip) under tag `test`; returns
/// (blob digest, diff_id, gzip bytes) per layer.
pub fn write_layout(layout: &Path, layers: &[Vec<u8>]) -> Vec<(String, String, Vec<u8>)> {
    let blobs = layers
        .iter()
        .map(|tar| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(tar).unwrap();
            (gz.finish().unwrap(), sha(tar))
        })
        .collect();
    write_layout_blobs(layout, blobs)
}

/// Writes an OCI layout of gzip layers given as (blob, diff_id) under tag
/// `test`; returns (blob digest, diff_id, blob) per layer.
pub fn write_layout_blobs(
    layout: &Path,
    blobs: Vec<(Vec<u8>, String)>,
) -> Vec<(String, String, Vec<u8>)> {
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let mut out = Vec::new();
    for (gz, diff_id) in blobs {
        out.push((put_blob(layout, &gz), diff_id, gz));
    }
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": out.iter().map(|l| l.1.clone()).collect::<Vec<_>>()},
    })
    .to_string();
    let config_digest = put_blob(layout, config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": out.iter().map(|(d, _, gz)| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": gz.len()})).collect::<Vec<_>>(),
    })
    .to_string();
    let manifest_digest = put_blob(layout, manifest.as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
                       "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": "test"}}],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    out
}
