//! The OSV format: one JSON object per vulnerability or advisory.
//!
//! Specification: <https://ossf.github.io/osv-schema/> (schema 1.6). osv.dev exports
//! each ecosystem as a directory (or zip) of one-record `*.json` files, for Debian with
//! ids such as `DSA-5417-1`, `DLA-3456-1` and `DEBIAN-CVE-2023-4911`; [`load_dir`]
//! reads such a directory, [`load_file`] a single file.
//!
//! The types are lenient on purpose: unknown fields are ignored, missing lists default
//! to empty (a JSON `null` too), and `database_specific` / `ecosystem_specific` stay
//! raw JSON. Timestamps are kept as the RFC 3339 strings the feed gives.

pub(crate) mod load;

pub use load::{OsvLoad, load_dir, load_file};

use serde::{Deserialize, Deserializer, Serialize};

use crate::fix::VendorStatement;

/// One OSV record: a vulnerability or an advisory about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advisory {
    /// The OSV schema version the record claims, e.g. `1.6.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<String>,
    /// The record id, e.g. `DSA-5417-1` or `DEBIAN-CVE-2023-4911`.
    pub id: String,
    /// When the record last changed (RFC 3339). Required by the spec, tolerated missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    /// When the record was first published (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    /// When the record was withdrawn (RFC 3339); withdrawn records are never matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn: Option<String>,
    /// Ids of the same vulnerability in other databases.
    #[serde(default, deserialize_with = "null_as_default")]
    pub aliases: Vec<String>,
    /// Ids of closely related but distinct vulnerabilities.
    #[serde(default, deserialize_with = "null_as_default")]
    pub related: Vec<String>,
    /// Ids of the upstream records this one is derived from (e.g. the CVE of a DSA).
    #[serde(default, deserialize_with = "null_as_default")]
    pub upstream: Vec<String>,
    /// One-line summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Longer description (CommonMark).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// Severity scores for the whole record.
    #[serde(default, deserialize_with = "null_as_default")]
    pub severity: Vec<Severity>,
    /// The affected packages and versions.
    #[serde(default, deserialize_with = "null_as_default")]
    pub affected: Vec<Affected>,
    /// Links to advisories, fixes, reports.
    #[serde(default, deserialize_with = "null_as_default")]
    pub references: Vec<Reference>,
    /// Database-specific data, kept as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_specific: Option<serde_json::Value>,
}

impl Advisory {
    /// Whether the record has been withdrawn.
    pub fn is_withdrawn(&self) -> bool {
        self.withdrawn.is_some()
    }
}

/// A severity score: its kind and the score string (e.g. a CVSS vector).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Severity {
    /// Which scoring system `score` belongs to.
    #[serde(rename = "type")]
    pub kind: SeverityType,
    /// The score: a CVSS vector, or a word for `Ubuntu`.
    pub score: String,
}

/// The scoring system of a [`Severity`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeverityType {
    /// A CVSS v2 vector.
    #[serde(rename = "CVSS_V2")]
    CvssV2,
    /// A CVSS v3.x vector.
    #[serde(rename = "CVSS_V3")]
    CvssV3,
    /// A CVSS v4.0 vector.
    #[serde(rename = "CVSS_V4")]
    CvssV4,
    /// Ubuntu's priority words.
    Ubuntu,
    /// A type this crate does not know.
    #[serde(untagged)]
    Other(String),
}

/// One affected package, with the versions it is affected in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Affected {
    /// The package; for Debian the *source* package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<Package>,
    /// Severity specific to this package.
    #[serde(default, deserialize_with = "null_as_default")]
    pub severity: Vec<Severity>,
    /// Version ranges; any range containing a version makes it affected.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ranges: Vec<Range>,
    /// Explicitly listed affected versions.
    #[serde(default, deserialize_with = "null_as_default")]
    pub versions: Vec<String>,
    /// Ecosystem-specific data (Debian: `urgency`), kept as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecosystem_specific: Option<serde_json::Value>,
    /// Database-specific data, kept as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_specific: Option<serde_json::Value>,
    /// Not part of OSV: the vendor's statement, set by this crate's converters of
    /// vendor feeds (Alpine secdb, Debian security tracker); `None` in OSV input.
    #[serde(
        default,
        rename = "trawl_vendor_statement",
        skip_serializing_if = "Option::is_none"
    )]
    pub vendor: Option<VendorStatement>,
}

/// A package within an ecosystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// The ecosystem, e.g. `Debian:12`, `Ubuntu:22.04:LTS`, `Alpine:v3.19`.
    pub ecosystem: String,
    /// The package name within the ecosystem.
    pub name: String,
    /// A Package URL for the package, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
}

/// A range of affected versions, described by events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Range {
    /// How the event versions are to be ordered.
    #[serde(rename = "type")]
    pub kind: RangeType,
    /// The repository, for `GIT` ranges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// The events, in any order.
    #[serde(default, deserialize_with = "null_as_default")]
    pub events: Vec<Event>,
    /// Database-specific data, kept as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_specific: Option<serde_json::Value>,
}

/// The ordering a [`Range`] is expressed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RangeType {
    /// The ecosystem's own version ordering (dpkg for Debian).
    #[serde(rename = "ECOSYSTEM")]
    Ecosystem,
    /// Semantic Versioning 2.0.
    #[serde(rename = "SEMVER")]
    Semver,
    /// Git commit hashes.
    #[serde(rename = "GIT")]
    Git,
    /// A type this crate does not know.
    #[serde(untagged)]
    Other(String),
}

impl RangeType {
    /// The name used in OSV JSON.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Ecosystem => "ECOSYSTEM",
            Self::Semver => "SEMVER",
            Self::Git => "GIT",
            Self::Other(s) => s,
        }
    }
}

/// One event of a [`Range`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// Versions from here on are affected; `"0"` means from the very first version.
    Introduced(String),
    /// Versions from here on are no longer affected.
    Fixed(String),
    /// The last affected version; later versions are not affected.
    LastAffected(String),
    /// No version at or after this one is affected by the range.
    Limit(String),
}

impl Event {
    /// The version the event names.
    pub fn version(&self) -> &str {
        match self {
            Self::Introduced(v) | Self::Fixed(v) | Self::LastAffected(v) | Self::Limit(v) => v,
        }
    }
}

/// A link with its kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// The kind of link: `ADVISORY`, `FIX`, `WEB`, … (kept as given).
    #[serde(rename = "type")]
    pub kind: String,
    /// The URL.
    pub url: String,
}

/// Treats JSON `null` like an absent field.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_debian_record_with_unknown_fields_and_nulls() {
        let json = r#"{
          "id": "DSA-5514-1", "modified": "2023-10-03T21:03:33Z", "aliases": null,
          "upstream": ["CVE-2023-4911"], "credits": [{"name": "x"}],
          "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"},
                       {"type": "NEW_THING", "score": "7"}],
          "affected": [{
            "package": {"ecosystem": "Debian:12", "name": "glibc", "purl": "pkg:deb/debian/glibc?arch=source"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.36-9+deb12u3"}]},
                       {"type": "ODD", "events": [{"last_affected": "1"}, {"limit": "2"}]}],
            "ecosystem_specific": {"urgency": "high"}
          }],
          "references": [{"type": "ADVISORY", "url": "https://www.debian.org/security/2023/dsa-5514"}]
        }"#;
        let a: Advisory = serde_json::from_str(json).expect("valid record");
        assert_eq!(a.id, "DSA-5514-1");
        assert!(a.aliases.is_empty());
        assert_eq!(a.severity[0].kind, SeverityType::CvssV3);
        assert_eq!(a.severity[1].kind, SeverityType::Other("NEW_THING".into()));
        let affected = &a.affected[0];
        assert_eq!(affected.ranges[0].kind, RangeType::Ecosystem);
        assert_eq!(affected.ranges[1].kind, RangeType::Other("ODD".into()));
        assert_eq!(
            affected.ranges[0].events,
            [
                Event::Introduced("0".into()),
                Event::Fixed("2.36-9+deb12u3".into())
            ]
        );
        assert_eq!(affected.ranges[1].events[1], Event::Limit("2".into()));
        // Serialising and reading back loses nothing that was modelled.
        let again: Advisory =
            serde_json::from_str(&serde_json::to_string(&a).expect("serialises")).expect("valid");
        assert_eq!(again, a);
    }
}
