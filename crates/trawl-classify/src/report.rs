//! The report: inventory + matches → findings and a verdict. A pure function
//! of its inputs.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use trawl_advisory::{AdvisoryDb, PackageQuery};
use trawl_inventory::{Inventory, OsRelease, Package, PackageKind};

use crate::severity::{Severity, rate};

/// Version of the JSON report layout. Fields are only ever added within a version.
pub const SCHEMA_VERSION: u32 = 1;

/// What the image is, as far as the report is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// Digest of the image manifest, when the source has one.
    pub manifest_digest: Option<String>,
    /// Layer blob digests, base first.
    pub layers: Vec<String>,
    /// Uncompressed layer digests (`rootfs.diff_ids`), base first, when known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diff_ids: Vec<String>,
}

/// The overall judgement of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Scanned fully and nothing known affects it.
    Healthy,
    /// At least one known vulnerability affects it.
    Unhealthy,
    /// It could not be judged: no package database, unknown OS, or no
    /// advisory data for its distribution. Never to be read as healthy.
    Unsupported,
}

impl Verdict {
    /// The lower-case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Unhealthy => "unhealthy",
            Verdict::Unsupported => "unsupported",
        }
    }
}

/// One vulnerability affecting one installed package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The advisory id (`CVE-2024-5535`, `DSA-5739-1`, ...).
    pub id: String,
    /// Other ids of the same issue.
    pub aliases: Vec<String>,
    /// One-line summary, when the feed has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The installed binary package.
    pub package: String,
    /// Its installed version.
    pub installed_version: String,
    /// The source package the advisory is about.
    pub source_name: String,
    /// The installed source version the advisory was compared with.
    pub source_version: String,
    /// The (source) version that fixes it, or `None` when no fix is known.
    pub fixed_version: Option<String>,
    /// How serious it is.
    pub severity: Severity,
    /// Where the severity came from (`database_specific.severity`, `CVSS_V3`, ...).
    pub severity_source: String,
    /// The CVSS base score, when the severity was computed from a vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss_score: Option<f64>,
    /// The feed ecosystem that matched (`Debian:12`).
    pub ecosystem: String,
    /// The layer that introduced the package at its installed version.
    pub layer: Option<String>,
    /// What to do about it, in words.
    pub remediation: String,
}

/// Finding counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of packages inventoried.
    pub packages: usize,
    /// Number of findings.
    pub findings: usize,
    /// Findings with a fixed version available.
    pub fixable: usize,
    /// Findings per severity (every severity present, zero included).
    pub by_severity: BTreeMap<Severity, usize>,
}

/// A scan's result: what the image holds and what affects it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The image reference as given (`oci-dir:/path:tag`).
    pub source: String,
    /// Manifest and layer digests.
    pub image: ImageInfo,
    /// The detected OS.
    pub os: Option<OsRelease>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why the verdict is what it is, in words.
    pub verdict_reason: String,
    /// The advisory ecosystem the packages were matched in (`Debian:12`).
    pub ecosystem: Option<String>,
    /// Counts.
    pub summary: Summary,
    /// Installed packages.
    pub packages: Vec<Package>,
    /// Findings, most serious first.
    pub findings: Vec<Finding>,
    /// Problems that did not stop the scan (skipped entries, unreadable versions).
    pub warnings: Vec<String>,
}

/// The advisory ecosystem (OSV naming) for an OS: `Debian:12`, `Ubuntu:22.04`.
/// `None` when there is none (unknown distribution or release).
pub fn ecosystem_for(os: &OsRelease) -> Option<String> {
    let version = os.version_id.as_deref()?;
    match os.id.as_str() {
        "debian" => {
            let major = version.split('.').next()?;
            (!major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()))
                .then(|| format!("Debian:{major}"))
        }
        "ubuntu" => Some(format!("Ubuntu:{version}")),
        _ => None,
    }
}

impl Report {
    /// Matches the inventory against the database and classifies the result.
    ///
    /// Debian advisories are written against source packages and source
    /// versions, so each package is looked up by its source name and version;
    /// findings are reported per installed binary package.
    pub fn generate(
        source: impl Into<String>,
        image: ImageInfo,
        inventory: Inventory,
        db: &AdvisoryDb,
    ) -> Report {
        let Inventory {
            os,
            packages,
            databases,
            warnings: inv_warnings,
        } = inventory;
        let mut warnings: Vec<String> = inv_warnings.iter().map(ToString::to_string).collect();
        let ecosystem = os.as_ref().and_then(ecosystem_for);

        let (verdict_if_clean, reason) = if databases.is_empty() {
            (
                Verdict::Unsupported,
                "no OS package database found".to_string(),
            )
        } else if let Some(os) = os.as_ref().filter(|_| ecosystem.is_none()) {
            let v = os.version_id.as_deref().unwrap_or("(no version)");
            (
                Verdict::Unsupported,
                format!("no advisory data source for {} {v}", os.id),
            )
        } else if os.is_none() {
            (
                Verdict::Unsupported,
                "unknown OS: no os-release or release file".to_string(),
            )
        } else if ecosystem.as_deref().is_some_and(|e| !db.has_ecosystem(e)) {
            (
                Verdict::Unsupported,
                format!(
                    "the advisory data has no records for {}",
                    ecosystem.as_deref().unwrap_or_default()
                ),
            )
        } else {
            (Verdict::Healthy, "no known vulnerabilities".to_string())
        };

        let mut findings = Vec::new();
        if let Some(eco) = ecosystem
            .as_deref()
            .filter(|_| verdict_if_clean == Verdict::Healthy)
        {
            findings = find(eco, &packages, db, &mut warnings);
        }
        let (verdict, verdict_reason) = if findings.is_empty() {
            (verdict_if_clean, reason)
        } else {
            let n = findings.len();
            let fixable = findings
                .iter()
                .filter(|f| f.fixed_version.is_some())
                .count();
            (
                Verdict::Unhealthy,
                format!("{n} known vulnerabilities ({fixable} with a fix available)"),
            )
        };
        let mut by_severity: BTreeMap<Severity, usize> =
            Severity::ALL.iter().map(|s| (*s, 0)).collect();
        for f in &findings {
            *by_severity.entry(f.severity).or_default() += 1;
        }
        let summary = Summary {
            packages: packages.len(),
            findings: findings.len(),
            fixable: findings
                .iter()
                .filter(|f| f.fixed_version.is_some())
                .count(),
            by_severity,
        };
        Report {
            schema_version: SCHEMA_VERSION,
            source: source.into(),
            image,
            os,
            verdict,
            verdict_reason,
            ecosystem,
            summary,
            packages,
            findings,
            warnings,
        }
    }
}

fn find(
    ecosystem: &str,
    packages: &[Package],
    db: &AdvisoryDb,
    warnings: &mut Vec<String>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    // Many binaries share a source package: query each (source, version) once.
    let mut by_source: HashMap<(&str, &str), Vec<&Package>> = HashMap::new();
    for p in packages.iter().filter(|p| p.kind == PackageKind::Deb) {
        by_source
            .entry((&p.source_name, &p.source_version))
            .or_default()
            .push(p);
    }
    let mut sources: Vec<_> = by_source.into_iter().collect();
    sources.sort_by(|a, b| a.0.cmp(&b.0));
    for ((name, version), binaries) in sources {
        let query = PackageQuery {
            ecosystem,
            name,
            version,
        };
        let matches = match db.matches(&query) {
            Ok(m) => m,
            Err(e) => {
                warnings.push(format!("source package {name} {version}: not matched: {e}"));
                continue;
            }
        };
        let mut seen = std::collections::HashSet::new();
        for m in matches {
            if !seen.insert(m.advisory.id.as_str()) {
                continue;
            }
            let rating = rate(&m.advisory, &m.affected);
            for p in &binaries {
                let remediation = match &m.fixed_version {
                    Some(fixed) if p.name == p.source_name => {
                        format!("upgrade {} to {fixed} or later", p.name)
                    }
                    Some(fixed) => format!(
                        "upgrade {} (source {}) to {fixed} or later",
                        p.name, p.source_name
                    ),
                    None => format!("no fixed version of {} is available yet", p.source_name),
                };
                findings.push(Finding {
                    id: m.advisory.id.clone(),
                    aliases: m.advisory.aliases.clone(),
                    summary: m.advisory.summary.clone(),
                    package: p.name.clone(),
                    installed_version: p.version.clone(),
                    source_name: p.source_name.clone(),
                    source_version: p.source_version.clone(),
                    fixed_version: m.fixed_version.clone(),
                    severity: rating.severity,
                    severity_source: rating.source.clone(),
                    cvss_score: rating.score,
                    ecosystem: ecosystem.to_string(),
                    layer: p.layer.clone(),
                    remediation,
                });
            }
        }
    }
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.package.cmp(&b.package))
            .then_with(|| a.id.cmp(&b.id))
    });
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(id: &str, v: Option<&str>) -> OsRelease {
        OsRelease {
            id: id.into(),
            version_id: v.map(str::to_string),
            ..OsRelease::default()
        }
    }

    #[test]
    fn ecosystems() {
        assert_eq!(
            ecosystem_for(&os("debian", Some("12"))).as_deref(),
            Some("Debian:12")
        );
        assert_eq!(
            ecosystem_for(&os("debian", Some("12.5"))).as_deref(),
            Some("Debian:12")
        );
        assert_eq!(ecosystem_for(&os("debian", None)), None);
        assert_eq!(
            ecosystem_for(&os("ubuntu", Some("22.04"))).as_deref(),
            Some("Ubuntu:22.04")
        );
        assert_eq!(ecosystem_for(&os("alpine", Some("3.16.0"))), None);
    }

    #[test]
    fn no_database_is_unsupported_never_healthy() {
        let r = Report::generate(
            "dir:/x",
            ImageInfo::default(),
            Inventory::default(),
            &AdvisoryDb::new(),
        );
        assert_eq!(r.verdict, Verdict::Unsupported);
        assert_eq!(r.verdict_reason, "no OS package database found");
    }
}
