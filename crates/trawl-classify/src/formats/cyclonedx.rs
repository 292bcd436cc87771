//! CycloneDX 1.6 JSON (<https://cyclonedx.org/docs/1.6/json/>): the image as
//! the BOM's subject, its OS and packages as components, and the
//! vulnerabilities affecting them.
//!
//! Written with serde structs of our own: the `cyclonedx-bom` crate (0.8)
//! models specification versions 1.3 to 1.5 only, and pulls XML, SPDX
//! expression and URI parsers a writer of one JSON layout does not need.
//!
//! - `serialNumber` is a `urn:uuid` derived from the image digest and the
//!   report's content (see the parent module), so the same scan gives the
//!   same BOM; no `metadata.timestamp` for the same reason.
//! - `metadata.component` is the image (`container`; version and hash from
//!   the manifest digest). `components` hold the OS (`operating-system`, as
//!   the specification has a type for it) and every OS package (`library`)
//!   with its purl and `trawl:*` properties for the source package, layer
//!   and database.
//! - One vulnerability per (id, source package): the advisory is written
//!   against the source package, so its fix and recommendation hold for every
//!   binary built from it, which `affects` lists. `analysis` is given when a
//!   fix is known (`response: update`); the report does not yet tell "no fix
//!   yet" from "will not fix", so nothing is claimed for unfixed findings.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;

use serde::Serialize;

use super::{
    FormatError, TOOL_NAME, TOOL_VERSION, content_hash, finding_packages, sha256_of_digest,
    uuid_from_hash, write_json,
};
use crate::report::{Finding, Report};
use crate::severity::Severity;

/// Writes `report` as a CycloneDX 1.6 JSON BOM.
pub fn write_cyclonedx(out: &mut dyn Write, report: &Report) -> Result<(), FormatError> {
    write_json(out, "CycloneDX", &to_bom(report))
}

// The structs below carry only the fields Trawl fills; names follow the
// specification's JSON keys.

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Bom {
    bom_format: &'static str,
    spec_version: &'static str,
    serial_number: String,
    version: u32,
    metadata: Metadata,
    components: Vec<Component>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    vulnerabilities: Vec<Vulnerability>,
}

#[derive(Serialize)]
struct Metadata {
    tools: Tools,
    component: Component,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
}

#[derive(Serialize)]
struct Tools {
    components: Vec<Component>,
}

#[derive(Serialize, Default)]
struct Component {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref", skip_serializing_if = "Option::is_none")]
    bom_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    publisher: Option<String>,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hashes: Vec<Hash>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    licenses: Vec<LicenseChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purl: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
}

#[derive(Serialize)]
struct Hash {
    alg: &'static str,
    content: String,
}

#[derive(Serialize)]
struct LicenseChoice {
    license: License,
}

/// A license by name: package databases hold free text (`GPL2`,
/// `MIT AND BSD`), not necessarily SPDX identifiers or expressions.
#[derive(Serialize)]
struct License {
    name: String,
}

#[derive(Serialize)]
struct Property {
    name: &'static str,
    value: String,
}

#[derive(Serialize)]
struct Vulnerability {
    #[serde(rename = "bom-ref")]
    bom_ref: String,
    id: String,
    source: Source,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    references: Vec<Reference>,
    ratings: Vec<Rating>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    recommendation: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    analysis: Option<Analysis>,
    affects: Vec<Affects>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
}

#[derive(Serialize, Clone)]
struct Source {
    name: String,
}

#[derive(Serialize)]
struct Reference {
    id: String,
    source: Source,
}

#[derive(Serialize)]
struct Rating {
    source: Source,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f64>,
    severity: &'static str,
    method: &'static str,
    justification: String,
}

#[derive(Serialize)]
struct Analysis {
    response: Vec<&'static str>,
    detail: String,
}

#[derive(Serialize)]
struct Affects {
    #[serde(rename = "ref")]
    reference: String,
    versions: Vec<AffectedVersion>,
}

#[derive(Serialize)]
struct AffectedVersion {
    version: String,
    status: &'static str,
}

/// The CycloneDX severity word. Negligible is CycloneDX's `none`, as it is
/// CVSS's "None" band.
fn severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "critical",
        Severity::High => "high",
        Severity::Medium => "medium",
        Severity::Low => "low",
        Severity::Negligible => "none",
        Severity::Unknown => "unknown",
    }
}

/// The scoring method of a rating source, as the report names it.
fn method(severity_source: &str) -> &'static str {
    match severity_source {
        "CVSS_V2" => "CVSSv2",
        "CVSS_V3" => "CVSSv3",
        "CVSS_V4" => "CVSSv4",
        _ => "other",
    }
}

const IMAGE_REF: &str = "image";
const OS_REF: &str = "os";

/// The BOM of `report`.
fn to_bom(report: &Report) -> Bom {
    let image = image_component(report);

    let mut components = Vec::with_capacity(report.packages.len() + 1);
    if let Some(os) = &report.os {
        components.push(Component {
            kind: "operating-system",
            bom_ref: Some(OS_REF.to_string()),
            name: os.id.clone(),
            version: os.version_id.clone(),
            description: os.pretty_name.clone(),
            ..Component::default()
        });
    }
    // bom-refs must be unique; purls are, except for a package recorded in
    // two databases, which gets a numbered suffix.
    let mut used: BTreeSet<String> = [IMAGE_REF, OS_REF].map(String::from).into();
    let mut refs = Vec::with_capacity(report.packages.len());
    for p in &report.packages {
        let base = if p.purl.is_empty() {
            format!("pkg:{}/{}@{}", p.kind.purl_type(), p.name, p.version)
        } else {
            p.purl.clone()
        };
        let mut bom_ref = base.clone();
        let mut n = 1;
        while !used.insert(bom_ref.clone()) {
            n += 1;
            bom_ref = format!("{base}#{n}");
        }
        refs.push(bom_ref.clone());

        let mut properties = vec![
            Property {
                name: "trawl:package:type",
                value: p.kind.purl_type().to_string(),
            },
            Property {
                name: "trawl:package:source_name",
                value: p.source_name.clone(),
            },
            Property {
                name: "trawl:package:source_version",
                value: p.source_version.clone(),
            },
            Property {
                name: "trawl:package:database",
                value: p.database.clone(),
            },
        ];
        if let Some(layer) = &p.layer {
            properties.push(Property {
                name: "trawl:package:layer",
                value: layer.clone(),
            });
        }
        if let Some(arch) = &p.arch {
            properties.push(Property {
                name: "trawl:package:arch",
                value: arch.clone(),
            });
        }
        components.push(Component {
            kind: "library",
            bom_ref: Some(bom_ref),
            publisher: p.maintainer.clone(),
            name: p.name.clone(),
            version: Some(p.version.clone()),
            licenses: p
                .license
                .iter()
                .map(|l| LicenseChoice {
                    license: License { name: l.clone() },
                })
                .collect(),
            purl: (!p.purl.is_empty()).then(|| p.purl.clone()),
            properties,
            ..Component::default()
        });
    }

    let mut metadata_properties = vec![
        Property {
            name: "trawl:verdict",
            value: report.verdict.as_str().to_string(),
        },
        Property {
            name: "trawl:verdict_reason",
            value: report.verdict_reason.clone(),
        },
    ];
    if let Some(eco) = &report.ecosystem {
        metadata_properties.push(Property {
            name: "trawl:ecosystem",
            value: eco.clone(),
        });
    }

    Bom {
        bom_format: "CycloneDX",
        spec_version: "1.6",
        serial_number: format!("urn:uuid:{}", uuid_from_hash(&content_hash(report))),
        version: 1,
        metadata: Metadata {
            tools: Tools {
                components: vec![Component {
                    kind: "application",
                    name: TOOL_NAME.to_string(),
                    version: Some(TOOL_VERSION.to_string()),
                    ..Component::default()
                }],
            },
            component: image,
            properties: metadata_properties,
        },
        components,
        vulnerabilities: vulnerabilities(report, &refs),
    }
}

/// The image: named by its source, versioned by its manifest digest.
fn image_component(report: &Report) -> Component {
    let digest = report.image.manifest_digest.clone();
    let hashes = digest
        .as_deref()
        .and_then(sha256_of_digest)
        .map(|hex| Hash {
            alg: "SHA-256",
            content: hex.to_string(),
        })
        .into_iter()
        .collect();
    let properties = report
        .image
        .layers
        .iter()
        .map(|l| Property {
            name: "trawl:image:layer",
            value: l.clone(),
        })
        .collect();
    Component {
        kind: "container",
        bom_ref: Some(IMAGE_REF.to_string()),
        name: report.source.clone(),
        version: digest,
        hashes,
        properties,
        ..Component::default()
    }
}

/// Findings with the same id and source package, each with the index of
/// its package in the report.
type Group<'r> = Vec<(&'r Finding, Option<usize>)>;

/// One vulnerability per (id, source package); `refs[i]` is the bom-ref of
/// `report.packages[i]`.
fn vulnerabilities(report: &Report, refs: &[String]) -> Vec<Vulnerability> {
    let packages = finding_packages(report);
    let mut order: Vec<(&str, &str)> = Vec::new();
    let mut groups: HashMap<(&str, &str), Group<'_>> = HashMap::new();
    for (f, index) in report.findings.iter().zip(packages) {
        let key = (f.id.as_str(), f.source_name.as_str());
        let group = groups.entry(key).or_default();
        if group.is_empty() {
            order.push(key);
        }
        group.push((f, index));
    }
    // An id recurs for each source package it affects: the bom-ref names both.
    order
        .into_iter()
        .filter_map(|key| {
            let group = groups.get(&key)?;
            Some(vulnerability(
                format!("vuln:{}:{}", key.0, key.1),
                group,
                refs,
            ))
        })
        .collect()
}

/// The vulnerability entry for one group of findings with the same id and
/// source package (non-empty; findings come most serious first).
fn vulnerability(
    bom_ref: String,
    group: &[(&Finding, Option<usize>)],
    refs: &[String],
) -> Vulnerability {
    let first = group.first().map(|(f, _)| *f);
    let source = Source {
        name: first.map(|f| f.ecosystem.clone()).unwrap_or_default(),
    };
    let mut recommendation: Vec<&str> = Vec::new();
    let mut affects = Vec::new();
    for (f, index) in group {
        if !recommendation.contains(&f.remediation.as_str()) {
            recommendation.push(&f.remediation);
        }
        if let Some(reference) = index.and_then(|i| refs.get(i)) {
            affects.push(Affects {
                reference: reference.clone(),
                versions: vec![AffectedVersion {
                    version: f.installed_version.clone(),
                    status: "affected",
                }],
            });
        }
    }
    let ratings = first
        .map(|f| Rating {
            source: source.clone(),
            score: f.cvss_score,
            severity: severity(f.severity),
            method: method(&f.severity_source),
            justification: format!("from {}", f.severity_source),
        })
        .into_iter()
        .collect();
    let analysis = first.and_then(|f| {
        let fixed = f.fixed_version.as_ref()?;
        Some(Analysis {
            response: vec!["update"],
            detail: format!("fixed in {} {fixed}", f.source_name),
        })
    });
    let mut properties = Vec::new();
    if let Some(f) = first {
        properties.push(Property {
            name: "trawl:source_name",
            value: f.source_name.clone(),
        });
        if let Some(fixed) = &f.fixed_version {
            properties.push(Property {
                name: "trawl:fixed_version",
                value: fixed.clone(),
            });
        }
    }
    Vulnerability {
        bom_ref,
        id: first.map(|f| f.id.clone()).unwrap_or_default(),
        references: first
            .map(|f| {
                f.aliases
                    .iter()
                    .map(|a| Reference {
                        id: a.clone(),
                        source: source.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        source,
        ratings,
        description: first.and_then(|f| f.summary.clone()),
        recommendation: recommendation.join("; "),
        analysis,
        affects,
        properties,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvss_sources_name_their_method() {
        assert_eq!(method("CVSS_V3"), "CVSSv3");
        assert_eq!(method("CVSS_V4"), "CVSSv4");
        assert_eq!(method("affected.ecosystem_specific.urgency"), "other");
    }
}
