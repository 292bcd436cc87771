//! SPDX 2.3 JSON (<https://spdx.github.io/spdx-spec/v2.3/>): an SBOM of the
//! image and its OS packages. Vulnerabilities have no place in SPDX 2.3; the
//! SARIF and CycloneDX forms carry them.
//!
//! Written with serde structs of our own: no maintained Rust crate writes
//! SPDX 2.3 (`spdx-rs` models 2.2 and has not been released since 2022).
//!
//! - `documentNamespace` is `https://spdx.org/spdxdocs/trawl/<image>/<uuid>`
//!   (the spec's suggested form for tools without a site of their own), where
//!   `<image>` is the manifest digest when there is one and the UUID is
//!   derived from the report's content: the same image gives the same
//!   namespace.
//! - `created` is the caller's: a function of the report alone could not know
//!   the time, and tests need a fixed one.
//! - Packages: the image (`primaryPackagePurpose` `CONTAINER`, version and
//!   checksum from the manifest digest), the OS (`OPERATING-SYSTEM`) and each
//!   OS package with its purl as a `PACKAGE-MANAGER` external reference (the
//!   2.3 spelling; `PACKAGE_MANAGER` is the 2.2 one) and its source package
//!   in `sourceInfo`. Relationships: the document `DESCRIBES` the image, the
//!   image `CONTAINS` the OS and every package.
//! - Licenses are left out rather than written as `NOASSERTION` (2.3 makes
//!   them optional): package databases hold free text that is not always a
//!   valid SPDX license expression.

use std::collections::BTreeSet;
use std::io::Write;
use std::time::SystemTime;

use serde::Serialize;

use super::{
    FormatError, TOOL_NAME, TOOL_VERSION, content_hash, rfc3339_utc, sha256_of_digest,
    uuid_from_hash, write_json,
};
use crate::report::Report;

/// Writes `report`'s image and packages as an SPDX 2.3 JSON document
/// created at `created`.
pub fn write_spdx(
    out: &mut dyn Write,
    report: &Report,
    created: SystemTime,
) -> Result<(), FormatError> {
    write_json(out, "SPDX", &to_document(report, created))
}

// Only the fields Trawl fills; names follow the specification's JSON keys.

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    spdx_version: &'static str,
    data_license: &'static str,
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    name: String,
    document_namespace: String,
    creation_info: CreationInfo,
    packages: Vec<Package>,
    relationships: Vec<Relationship>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreationInfo {
    creators: Vec<String>,
    created: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Package {
    name: String,
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_info: Option<String>,
    download_location: &'static str,
    files_analyzed: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checksums: Vec<Checksum>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_info: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_refs: Vec<ExternalRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    primary_package_purpose: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Checksum {
    algorithm: &'static str,
    checksum_value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    reference_category: &'static str,
    reference_type: &'static str,
    reference_locator: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Relationship {
    spdx_element_id: String,
    relationship_type: &'static str,
    related_spdx_element: String,
}

const DOCUMENT_ID: &str = "SPDXRef-DOCUMENT";
const IMAGE_ID: &str = "SPDXRef-Image";
const OS_ID: &str = "SPDXRef-OperatingSystem";

/// `s` with every character outside `[A-Za-z0-9.-]` (the SPDX identifier
/// alphabet after `SPDXRef-`) replaced by `-`.
fn id_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// `s` as one URI path segment: bytes outside RFC 3986's unreserved set are
/// percent-encoded.
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The SPDX document of `report`.
fn to_document(report: &Report, created: SystemTime) -> Document {
    let uuid = uuid_from_hash(&content_hash(report));
    let subject = match report.image.manifest_digest.as_deref() {
        Some(digest) => path_segment(digest),
        None => path_segment(&report.source),
    };
    let digest = report.image.manifest_digest.clone();

    let mut packages = Vec::with_capacity(report.packages.len() + 2);
    let mut relationships = Vec::with_capacity(report.packages.len() + 2);
    let mut relate = |from: &str, kind, to: &str| {
        relationships.push(Relationship {
            spdx_element_id: from.to_string(),
            relationship_type: kind,
            related_spdx_element: to.to_string(),
        });
    };

    packages.push(Package {
        name: report.source.clone(),
        spdx_id: IMAGE_ID.to_string(),
        version_info: digest.clone(),
        download_location: "NOASSERTION",
        files_analyzed: false,
        checksums: digest
            .as_deref()
            .and_then(sha256_of_digest)
            .map(|hex| Checksum {
                algorithm: "SHA256",
                checksum_value: hex.to_string(),
            })
            .into_iter()
            .collect(),
        source_info: None,
        comment: None,
        external_refs: Vec::new(),
        primary_package_purpose: Some("CONTAINER"),
    });
    relate(DOCUMENT_ID, "DESCRIBES", IMAGE_ID);

    if let Some(os) = &report.os {
        packages.push(Package {
            name: os.id.clone(),
            spdx_id: OS_ID.to_string(),
            version_info: os.version_id.clone(),
            download_location: "NOASSERTION",
            files_analyzed: false,
            checksums: Vec::new(),
            source_info: None,
            comment: os.pretty_name.clone(),
            external_refs: Vec::new(),
            primary_package_purpose: Some("OPERATING-SYSTEM"),
        });
        relate(IMAGE_ID, "CONTAINS", OS_ID);
    }

    // Identifiers must be unique; sanitising can make two packages'
    // identifiers equal, so a number is appended when it does.
    let mut used: BTreeSet<String> = [DOCUMENT_ID, IMAGE_ID, OS_ID].map(String::from).into();
    for p in &report.packages {
        let mut base = format!(
            "SPDXRef-Package-{}-{}-{}",
            p.kind.purl_type(),
            id_part(&p.name),
            id_part(&p.version)
        );
        if let Some(arch) = &p.arch {
            base.push('-');
            base.push_str(&id_part(arch));
        }
        let mut id = base.clone();
        let mut n = 1;
        while !used.insert(id.clone()) {
            n += 1;
            id = format!("{base}-{n}");
        }
        let mut comment = format!("from {}", p.database);
        if let Some(layer) = &p.layer {
            comment.push_str(&format!(", introduced by layer {layer}"));
        }
        packages.push(Package {
            name: p.name.clone(),
            spdx_id: id.clone(),
            version_info: Some(p.version.clone()),
            download_location: "NOASSERTION",
            files_analyzed: false,
            checksums: Vec::new(),
            source_info: Some(format!(
                "built from source package {} {}",
                p.source_name, p.source_version
            )),
            comment: Some(comment),
            external_refs: (!p.purl.is_empty())
                .then(|| ExternalRef {
                    reference_category: "PACKAGE-MANAGER",
                    reference_type: "purl",
                    reference_locator: p.purl.clone(),
                })
                .into_iter()
                .collect(),
            primary_package_purpose: Some("LIBRARY"),
        });
        relate(IMAGE_ID, "CONTAINS", &id);
    }

    Document {
        spdx_version: "SPDX-2.3",
        data_license: "CC0-1.0",
        spdx_id: DOCUMENT_ID,
        name: report.source.clone(),
        document_namespace: format!("https://spdx.org/spdxdocs/trawl/{subject}/{uuid}"),
        creation_info: CreationInfo {
            creators: vec![format!("Tool: {TOOL_NAME}-{TOOL_VERSION}")],
            created: rfc3339_utc(created),
        },
        packages,
        relationships,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_keep_only_the_spdx_alphabet() {
        assert_eq!(id_part("libstdc++6"), "libstdc--6");
        assert_eq!(id_part("1:2.31.1-0.4ubuntu3.1"), "1-2.31.1-0.4ubuntu3.1");
    }

    #[test]
    fn namespace_segments_are_percent_encoded() {
        assert_eq!(path_segment("sha256:ab"), "sha256%3Aab");
        assert_eq!(path_segment("dir:/x y"), "dir%3A%2Fx%20y");
    }
}
