//! How records are laid out inside the store: postcard, framed with a checksum.
//!
//! postcard is compact and decodes without a schema lookup, but it is not
//! self-describing: it cannot read serde's untagged enums, fields skipped when
//! empty, or `serde_json::Value`. The OSV types use all three for JSON's sake, so
//! they are mirrored here by plain structs (raw JSON kept as its text) with
//! lossless conversions both ways; the store tests compare decoded records with
//! the originals.
//!
//! Every blob is framed as `adler32 (u32, little endian) ++ payload`, so a flipped
//! bit in a record is caught when that record is read, without reading the rest of
//! the file.

use serde::{Deserialize, Serialize};

use crate::fix::{VendorStatement, VendorStatus};
use crate::osv::{
    Advisory, Affected, Event, Package, Range, RangeType, Reference, Severity, SeverityType,
};

/// Why a stored blob could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BlobError {
    /// Shorter than its checksum.
    #[error("blob of {0} bytes is shorter than its checksum")]
    Short(usize),
    /// The checksum does not match the payload.
    #[error("checksum mismatch (stored {stored:08x}, computed {computed:08x})")]
    Checksum {
        /// As stored.
        stored: u32,
        /// Over the payload read.
        computed: u32,
    },
    /// The payload is not a record of this schema.
    #[error("undecodable record: {0}")]
    Decode(String),
}

/// Frames `payload` with its checksum.
pub(crate) fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&adler2::adler32_slice(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Checks a framed blob and returns its payload.
pub(crate) fn unframe(blob: &[u8]) -> Result<&[u8], BlobError> {
    let (head, payload) = blob
        .split_first_chunk::<4>()
        .ok_or(BlobError::Short(blob.len()))?;
    let stored = u32::from_le_bytes(*head);
    let computed = adler2::adler32_slice(payload);
    if stored != computed {
        return Err(BlobError::Checksum { stored, computed });
    }
    Ok(payload)
}

/// The part of an `affected` entry that matching reads, stored in the index so
/// that candidates are evaluated without decoding whole records.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MatchEntry {
    pub ranges: Vec<StoredRange>,
    pub versions: Vec<String>,
    pub status: Option<VendorStatus>,
}

impl MatchEntry {
    pub(crate) fn of(affected: &Affected) -> Self {
        Self {
            ranges: affected.ranges.iter().map(StoredRange::from).collect(),
            versions: affected.versions.clone(),
            status: affected.vendor.as_ref().and_then(|v| v.status),
        }
    }

    /// The entry as an [`Affected`] carrying only what matching reads.
    pub(crate) fn to_affected(&self, name: &str) -> Affected {
        Affected {
            package: Some(Package {
                ecosystem: String::new(),
                name: name.to_owned(),
                purl: None,
            }),
            severity: Vec::new(),
            ranges: self.ranges.iter().map(Range::from).collect(),
            versions: self.versions.clone(),
            ecosystem_specific: None,
            database_specific: None,
            vendor: None,
        }
    }
}

pub(crate) fn encode_entry(entry: &MatchEntry) -> Vec<u8> {
    frame(&postcard::to_stdvec(entry).unwrap_or_default())
}

pub(crate) fn decode_entry(blob: &[u8]) -> Result<MatchEntry, BlobError> {
    postcard::from_bytes(unframe(blob)?).map_err(|e| BlobError::Decode(e.to_string()))
}

pub(crate) fn encode_advisory(advisory: &Advisory) -> Vec<u8> {
    // Serialising plain owned data into a Vec cannot fail.
    frame(&postcard::to_stdvec(&StoredAdvisory::from(advisory)).unwrap_or_default())
}

pub(crate) fn decode_advisory(blob: &[u8]) -> Result<Advisory, BlobError> {
    let stored: StoredAdvisory =
        postcard::from_bytes(unframe(blob)?).map_err(|e| BlobError::Decode(e.to_string()))?;
    stored.try_into()
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredAdvisory {
    schema_version: Option<String>,
    id: String,
    modified: Option<String>,
    published: Option<String>,
    withdrawn: Option<String>,
    aliases: Vec<String>,
    related: Vec<String>,
    upstream: Vec<String>,
    summary: Option<String>,
    details: Option<String>,
    severity: Vec<(String, String)>,
    affected: Vec<StoredAffected>,
    references: Vec<(String, String)>,
    database_specific: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredAffected {
    package: Option<(String, String, Option<String>)>,
    severity: Vec<(String, String)>,
    ranges: Vec<StoredRange>,
    versions: Vec<String>,
    ecosystem_specific: Option<String>,
    database_specific: Option<String>,
    /// (status, severity, note).
    vendor: Option<(Option<VendorStatus>, Option<String>, Option<String>)>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredRange {
    kind: String,
    repo: Option<String>,
    events: Vec<Event>,
    database_specific: Option<String>,
}

impl From<&Range> for StoredRange {
    fn from(range: &Range) -> Self {
        Self {
            kind: range.kind.as_str().to_owned(),
            repo: range.repo.clone(),
            events: range.events.clone(),
            database_specific: json_text(&range.database_specific),
        }
    }
}

impl From<&StoredRange> for Range {
    /// Only used for matching, where `database_specific` is not read.
    fn from(range: &StoredRange) -> Self {
        Self {
            kind: range_type(&range.kind),
            repo: range.repo.clone(),
            events: range.events.clone(),
            database_specific: None,
        }
    }
}

fn json_text(value: &Option<serde_json::Value>) -> Option<String> {
    value.as_ref().map(serde_json::Value::to_string)
}

fn json_value(text: Option<String>) -> Result<Option<serde_json::Value>, BlobError> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| BlobError::Decode(e.to_string())))
        .transpose()
}

fn range_type(text: &str) -> RangeType {
    match text {
        "ECOSYSTEM" => RangeType::Ecosystem,
        "SEMVER" => RangeType::Semver,
        "GIT" => RangeType::Git,
        other => RangeType::Other(other.to_owned()),
    }
}

fn severity_type_text(kind: &SeverityType) -> &str {
    match kind {
        SeverityType::CvssV2 => "CVSS_V2",
        SeverityType::CvssV3 => "CVSS_V3",
        SeverityType::CvssV4 => "CVSS_V4",
        SeverityType::Ubuntu => "Ubuntu",
        SeverityType::Other(other) => other,
    }
}

fn severity_type(text: &str) -> SeverityType {
    match text {
        "CVSS_V2" => SeverityType::CvssV2,
        "CVSS_V3" => SeverityType::CvssV3,
        "CVSS_V4" => SeverityType::CvssV4,
        "Ubuntu" => SeverityType::Ubuntu,
        other => SeverityType::Other(other.to_owned()),
    }
}

fn stored_severity(severity: &[Severity]) -> Vec<(String, String)> {
    severity
        .iter()
        .map(|s| (severity_type_text(&s.kind).to_owned(), s.score.clone()))
        .collect()
}

fn severity(stored: Vec<(String, String)>) -> Vec<Severity> {
    stored
        .into_iter()
        .map(|(kind, score)| Severity {
            kind: severity_type(&kind),
            score,
        })
        .collect()
}

impl From<&Advisory> for StoredAdvisory {
    fn from(a: &Advisory) -> Self {
        Self {
            schema_version: a.schema_version.clone(),
            id: a.id.clone(),
            modified: a.modified.clone(),
            published: a.published.clone(),
            withdrawn: a.withdrawn.clone(),
            aliases: a.aliases.clone(),
            related: a.related.clone(),
            upstream: a.upstream.clone(),
            summary: a.summary.clone(),
            details: a.details.clone(),
            severity: stored_severity(&a.severity),
            affected: a.affected.iter().map(StoredAffected::from).collect(),
            references: a
                .references
                .iter()
                .map(|r| (r.kind.clone(), r.url.clone()))
                .collect(),
            database_specific: json_text(&a.database_specific),
        }
    }
}

impl From<&Affected> for StoredAffected {
    fn from(a: &Affected) -> Self {
        Self {
            package: a
                .package
                .as_ref()
                .map(|p| (p.ecosystem.clone(), p.name.clone(), p.purl.clone())),
            severity: stored_severity(&a.severity),
            ranges: a.ranges.iter().map(StoredRange::from).collect(),
            versions: a.versions.clone(),
            ecosystem_specific: json_text(&a.ecosystem_specific),
            database_specific: json_text(&a.database_specific),
            vendor: a
                .vendor
                .as_ref()
                .map(|v| (v.status, v.severity.clone(), v.note.clone())),
        }
    }
}

impl TryFrom<StoredAdvisory> for Advisory {
    type Error = BlobError;

    fn try_from(s: StoredAdvisory) -> Result<Self, BlobError> {
        Ok(Self {
            schema_version: s.schema_version,
            id: s.id,
            modified: s.modified,
            published: s.published,
            withdrawn: s.withdrawn,
            aliases: s.aliases,
            related: s.related,
            upstream: s.upstream,
            summary: s.summary,
            details: s.details,
            severity: severity(s.severity),
            affected: s
                .affected
                .into_iter()
                .map(Affected::try_from)
                .collect::<Result<_, _>>()?,
            references: s
                .references
                .into_iter()
                .map(|(kind, url)| Reference { kind, url })
                .collect(),
            database_specific: json_value(s.database_specific)?,
        })
    }
}

impl TryFrom<StoredAffected> for Affected {
    type Error = BlobError;

    fn try_from(s: StoredAffected) -> Result<Self, BlobError> {
        Ok(Self {
            package: s.package.map(|(ecosystem, name, purl)| Package {
                ecosystem,
                name,
                purl,
            }),
            severity: severity(s.severity),
            ranges: s
                .ranges
                .into_iter()
                .map(|r| {
                    Ok(Range {
                        kind: range_type(&r.kind),
                        repo: r.repo,
                        events: r.events,
                        database_specific: json_value(r.database_specific)?,
                    })
                })
                .collect::<Result<_, BlobError>>()?,
            versions: s.versions,
            ecosystem_specific: json_value(s.ecosystem_specific)?,
            database_specific: json_value(s.database_specific)?,
            vendor: s.vendor.map(|(status, severity, note)| VendorStatement {
                status,
                severity,
                note,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_is_caught() {
        let json = r#"{"id": "DSA-1", "modified": "2024-01-01T00:00:00Z", "aliases": ["CVE-1"],
          "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N"}, {"type": "ODD", "score": "9"}],
          "affected": [{"package": {"ecosystem": "Debian:12", "name": "x", "purl": "pkg:deb/debian/x"},
            "ranges": [{"type": "ECOSYSTEM", "repo": null, "events": [{"introduced": "0"}, {"fixed": "1.2-1"}],
                        "database_specific": {"n": 1.5}},
                       {"type": "WEIRD", "events": [{"limit": "*"}, {"last_affected": "3"}]}],
            "versions": ["1.0-1"], "ecosystem_specific": {"urgency": "high", "list": [1, null]},
            "trawl_vendor_statement": {"status": "will_not_fix", "note": "no-dsa"}}],
          "references": [{"type": "WEB", "url": "https://example.org"}],
          "database_specific": {"source": "x", "big": 18446744073709551615}}"#;
        let advisory: Advisory = serde_json::from_str(json).unwrap();
        let blob = encode_advisory(&advisory);
        assert_eq!(decode_advisory(&blob).unwrap(), advisory);

        let mut damaged = blob.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 0x40;
        assert!(matches!(
            decode_advisory(&damaged),
            Err(BlobError::Checksum { .. })
        ));
        assert_eq!(decode_advisory(&blob[..3]), Err(BlobError::Short(3)));
    }
}
