//! Interchange formats for a [`Report`]: the files other tools read.
//!
//! - [`write_sarif`]: SARIF 2.1.0
//!   (<https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html>), the
//!   format code-scanning dashboards (GitHub, Azure DevOps) ingest: one rule per
//!   vulnerability, one result per finding.
//! - [`write_cyclonedx`]: a CycloneDX 1.6 JSON BOM
//!   (<https://cyclonedx.org/docs/1.6/json/>) with the image, its OS, its
//!   packages and the vulnerabilities affecting them.
//! - [`write_spdx`]: an SPDX 2.3 JSON SBOM
//!   (<https://spdx.github.io/spdx-spec/v2.3/>) of the image and its packages.
//!
//! Every output is a function of the report alone (SPDX also takes its
//! creation time), so scanning the same image with the same advisory data
//! gives byte-identical files: identifiers that must be unique per document
//! (the CycloneDX serial number, the SPDX namespace) are derived from the
//! image digest and the report's content instead of drawn at random.
//!
//! ```
//! use trawl_advisory::AdvisoryDb;
//! use trawl_classify::{ImageInfo, Report, formats};
//! use trawl_inventory::Inventory;
//!
//! let report = Report::generate("dir:/empty", ImageInfo::default(), Inventory::default(), &AdvisoryDb::new());
//! let mut sarif = Vec::new();
//! formats::write_sarif(&mut sarif, &report)?;
//! let sarif: serde_json::Value = serde_json::from_slice(&sarif)?;
//! assert_eq!(sarif["version"], "2.1.0");
//! assert_eq!(sarif["runs"][0]["tool"]["driver"]["name"], "trawl");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cyclonedx;
mod sarif;
mod spdx;

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use trawl_inventory::Package;

use crate::report::Report;

pub use cyclonedx::write_cyclonedx;
pub use sarif::write_sarif;
pub use spdx::write_spdx;

/// The tool name written into every format.
const TOOL_NAME: &str = "trawl";
/// The version written into every format: the workspace version, which the
/// `trawl` facade shares.
const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Where the tool is documented (SARIF `tool.driver.informationUri`): the
/// facade crate's documentation, the project having no public repository yet.
const TOOL_INFORMATION_URI: &str = "https://docs.rs/trawl-scan";

/// A report could not be written in an interchange format.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Serialising or writing the document failed (an I/O error of the
    /// writer, most likely).
    #[error("writing the {format} document: {source}")]
    Write {
        /// The format being written (`SARIF`, `CycloneDX`, `SPDX`).
        format: &'static str,
        /// The serialiser's error, which carries the writer's I/O error.
        #[source]
        source: serde_json::Error,
    },
}

/// Serialises `document` as pretty JSON with a final newline.
fn write_json(
    out: &mut dyn std::io::Write,
    format: &'static str,
    document: &impl serde::Serialize,
) -> Result<(), FormatError> {
    let wrap = |source| FormatError::Write { format, source };
    serde_json::to_writer_pretty(&mut *out, document).map_err(wrap)?;
    out.write_all(b"\n")
        .map_err(|e| wrap(serde_json::Error::io(e)))
}

/// The installed package each finding is about, by index into
/// `report.packages`.
///
/// A finding names its package by name and installed version only, which
/// is ambiguous when a multi-arch package is installed for two
/// architectures: the report emits one finding per installed binary in
/// package order, so the n-th finding of an advisory for `(name, version)`
/// belongs to the n-th package with that name and version.
fn finding_packages(report: &Report) -> Vec<Option<usize>> {
    let mut by_key: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (i, p) in report.packages.iter().enumerate() {
        by_key
            .entry((p.name.as_str(), p.version.as_str()))
            .or_default()
            .push(i);
    }
    let mut seen: HashMap<(&str, &str, &str), usize> = HashMap::new();
    report
        .findings
        .iter()
        .map(|f| {
            // A language finding names its instance's place in the image.
            if let Some(path) = &f.path {
                return report.packages.iter().position(|p| {
                    p.name == f.package && p.version == f.installed_version && p.location() == *path
                });
            }
            let key = (f.package.as_str(), f.installed_version.as_str());
            let candidates = by_key.get(&key)?;
            let nth = seen.entry((f.id.as_str(), key.0, key.1)).or_default();
            let index = candidates.get(*nth).or(candidates.first()).copied();
            *nth += 1;
            index
        })
        .collect()
}

/// A hash of what the report says about the image: its digest and every
/// package and finding. Two reports with equal content hash equally; fields
/// are length-prefixed so no two different reports share an input.
fn content_hash(report: &Report) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut field = |s: &str| {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    field(&report.source);
    field(report.image.manifest_digest.as_deref().unwrap_or(""));
    for layer in &report.image.layers {
        field(layer);
    }
    for p in &report.packages {
        for s in [&p.name, &p.version, &p.purl, &p.database] {
            field(s);
        }
        field(p.layer.as_deref().unwrap_or(""));
    }
    for f in &report.findings {
        for s in [&f.id, &f.package, &f.installed_version] {
            field(s);
        }
        field(f.fixed_version.as_deref().unwrap_or(""));
        field(f.severity.as_str());
    }
    h.finalize().into()
}

/// A UUID (RFC 9562 version 8, the layout for name-based UUIDs from hashes
/// other than MD5 and SHA-1) made from the first 16 bytes of `hash`.
fn uuid_from_hash(hash: &[u8; 32]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&hash[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Hex SHA-256 of the parts, each followed by a NUL so that `("ab", "c")`
/// and `("a", "bc")` differ.
fn sha256_hex(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// The hex of a `sha256:` digest, when it is one.
fn sha256_of_digest(digest: &str) -> Option<&str> {
    digest
        .strip_prefix("sha256:")
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `time` as an RFC 3339 UTC timestamp to the second
/// (`2024-05-01T12:00:00Z`), the form SPDX requires. Times before 1970 are
/// written as the epoch.
fn rfc3339_utc(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = crate::policy::civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The package a finding index maps to.
fn package_at(report: &Report, index: Option<usize>) -> Option<&Package> {
    index.and_then(|i| report.packages.get(i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        let at = |secs| rfc3339_utc(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        // 2000-02-29 (a leap day of a century leap year) 23:59:59.
        assert_eq!(at(951_868_799), "2000-02-29T23:59:59Z");
        assert_eq!(at(1_714_564_800), "2024-05-01T12:00:00Z");
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn uuids_are_version_8_variant_rfc() {
        let u = uuid_from_hash(&[0xff; 32]);
        assert_eq!(u, "ffffffff-ffff-8fff-bfff-ffffffffffff");
    }

    #[test]
    fn only_sha256_digests_have_a_hex() {
        let hex = "a".repeat(64);
        assert_eq!(
            sha256_of_digest(&format!("sha256:{hex}")),
            Some(hex.as_str())
        );
        assert_eq!(sha256_of_digest("sha512:abcd"), None);
        assert_eq!(sha256_of_digest("sha256:xyz"), None);
    }
}
