//! SARIF 2.1.0 (<https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html>),
//! written with the `serde-sarif` crate's types (generated from the OASIS
//! schema).
//!
//! Layout, as GitHub code scanning reads it
//! (<https://docs.github.com/en/code-security/code-scanning/integrating-with-code-scanning/sarif-support-for-code-scanning>):
//!
//! - one run; the driver is `trawl` with one rule per vulnerability id. The
//!   rule's `properties.security-severity` is the CVSS base score when the
//!   severity was computed from a vector, else a score in the middle of the
//!   severity's CVSS band, because GitHub ranks alerts by that number alone.
//!   Unknown severities get none rather than an invented one.
//! - one result per finding: `level` `error` for critical and high,
//!   `warning` for medium, `note` below; the location is the package
//!   database file in the image, with the package as a logical location.
//!   GitHub requires a `region.startLine`: the line where the package's
//!   entry starts in a text database (dpkg `status`, apk `installed`), line 1
//!   for rpm's binary databases.
//! - `partialFingerprints["trawl/v1"]` hashes the vulnerability, package,
//!   installed version and architecture, so an alert keeps its identity
//!   across scans and closes when the package is upgraded.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use serde_json::Value;
use serde_sarif::sarif::{
    ArtifactLocation, Location, LogicalLocation, Message, MultiformatMessageString,
    PhysicalLocation, PropertyBag, Region, ReportingDescriptor, Result as SarifResult, ResultLevel,
    Run, Sarif, Tool, ToolComponent,
};

use super::{
    FormatError, TOOL_INFORMATION_URI, TOOL_NAME, TOOL_VERSION, finding_packages, package_at,
    sha256_hex, write_json,
};
use crate::report::{Finding, Report};
use crate::severity::Severity;

/// The OASIS schema of SARIF 2.1.0 (errata 01), the `$schema` of the log.
const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// The key of the fingerprint in `partialFingerprints`; versioned as the
/// SARIF spec (§3.27.17) recommends, so a change of recipe is a new key.
const FINGERPRINT_KEY: &str = "trawl/v1";

/// Writes `report` as a SARIF 2.1.0 log.
pub fn write_sarif(out: &mut dyn Write, report: &Report) -> Result<(), FormatError> {
    write_json(out, "SARIF", &to_sarif(report))
}

/// The SARIF level of a severity.
fn level(severity: Severity) -> ResultLevel {
    match severity {
        Severity::Critical | Severity::High => ResultLevel::Error,
        Severity::Medium => ResultLevel::Warning,
        Severity::Low | Severity::Negligible | Severity::Unknown => ResultLevel::Note,
    }
}

/// The `security-severity` GitHub ranks by: the CVSS score when there is
/// one, else the middle of the severity's CVSS v3 band (negligible is CVSS
/// "None", 0.0). `None` for unknown severities.
fn security_severity(finding: &Finding) -> Option<String> {
    if let Some(score) = finding.cvss_score {
        return Some(format!("{score:.1}"));
    }
    let score = match finding.severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "2.0",
        Severity::Negligible => "0.0",
        Severity::Unknown => return None,
    };
    Some(score.to_string())
}

/// One line per affected package: what is installed and what fixes it.
fn fix_line(f: &Finding) -> String {
    match &f.fixed_version {
        Some(fixed) => format!(
            "{} {} (source {} {}): fixed in {fixed}",
            f.package, f.installed_version, f.source_name, f.source_version
        ),
        None => format!(
            "{} {} (source {} {}): no fixed version available",
            f.package, f.installed_version, f.source_name, f.source_version
        ),
    }
}

/// A rule for one vulnerability id, from every finding with that id (the
/// first is the most serious: findings come sorted by severity); `None`
/// without findings.
fn rule(findings: &[&Finding]) -> Option<ReportingDescriptor> {
    let first = *findings.first()?;
    let id = first.id.as_str();
    let short = match &first.summary {
        Some(summary) => format!("{id}: {summary}"),
        None => format!("{id} in {}", first.source_name),
    };
    let mut full = short.clone();
    if !first.aliases.is_empty() {
        full.push_str(&format!(" (also {})", first.aliases.join(", ")));
    }
    let lines: Vec<String> = findings.iter().map(|f| fix_line(f)).collect();
    let help_text = format!(
        "{full}\nSeverity: {} (from {}).\nAffected packages:\n{}",
        first.severity,
        first.severity_source,
        lines
            .iter()
            .map(|l| format!("- {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let help_markdown = format!(
        "**{full}**\n\nSeverity: {} (from `{}`).\n\n| Package | Installed | Fixed version |\n|---|---|---|\n{}",
        first.severity,
        first.severity_source,
        findings
            .iter()
            .map(|f| format!(
                "| {} | {} | {} |",
                f.package,
                f.installed_version,
                f.fixed_version.as_deref().unwrap_or("none yet")
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let mut extra = BTreeMap::new();
    if let Some(score) = security_severity(first) {
        extra.insert("security-severity".to_string(), Value::String(score));
    }
    let properties = PropertyBag::builder()
        .tags(vec![
            "security".to_string(),
            "vulnerability".to_string(),
            first.severity.as_str().to_string(),
        ])
        .additional_properties(extra)
        .build();
    let rule = ReportingDescriptor::builder()
        .id(id)
        .short_description(MultiformatMessageString::builder().text(short).build())
        .full_description(MultiformatMessageString::builder().text(full).build())
        .help(
            MultiformatMessageString::builder()
                .text(help_text)
                .markdown(help_markdown)
                .build(),
        )
        .properties(properties)
        .build();
    Some(rule)
}

/// The message of one result: package, installed version and the fix.
fn message(f: &Finding) -> String {
    let fix = match &f.fixed_version {
        Some(fixed) => format!("fixed in {} {fixed}", f.source_name),
        None => "no fixed version is available yet".to_string(),
    };
    format!(
        "{} {} is affected by {} ({}); {fix}",
        f.package, f.installed_version, f.id, f.severity
    )
}

/// `path` as a relative URI reference: bytes outside RFC 3986's unreserved
/// and path characters are percent-encoded.
fn uri_path(path: &str) -> String {
    let mut uri = String::with_capacity(path.len());
    for b in path.trim_start_matches('/').bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri
}

/// The SARIF log of `report`.
fn to_sarif(report: &Report) -> Sarif {
    // Rules in first-seen order, which is most serious first.
    let mut groups: Vec<Vec<&Finding>> = Vec::new();
    let mut rule_index: HashMap<&str, usize> = HashMap::new();
    for f in &report.findings {
        let i = *rule_index.entry(f.id.as_str()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        if let Some(group) = groups.get_mut(i) {
            group.push(f);
        }
    }
    let rules: Vec<ReportingDescriptor> = groups.iter().filter_map(|g| rule(g)).collect();

    let packages = finding_packages(report);
    let results: Vec<SarifResult> = report
        .findings
        .iter()
        .zip(packages)
        .map(|(f, index)| result(f, package_at(report, index), &rule_index))
        .collect();

    let driver = ToolComponent::builder()
        .name(TOOL_NAME)
        .version(TOOL_VERSION)
        .semantic_version(TOOL_VERSION)
        .information_uri(TOOL_INFORMATION_URI)
        .rules(rules)
        .build();
    let mut run_properties = BTreeMap::new();
    run_properties.insert(
        "imageSource".to_string(),
        Value::from(report.source.clone()),
    );
    if let Some(digest) = &report.image.manifest_digest {
        run_properties.insert("manifestDigest".to_string(), Value::from(digest.clone()));
    }
    run_properties.insert("verdict".to_string(), Value::from(report.verdict.as_str()));
    run_properties.insert(
        "verdictReason".to_string(),
        Value::from(report.verdict_reason.clone()),
    );
    let run = Run::builder()
        .tool(Tool::builder().driver(driver).build())
        .results(results)
        .properties(
            PropertyBag::builder()
                .additional_properties(run_properties)
                .build(),
        )
        .build();
    Sarif::builder()
        .schema(SCHEMA)
        .version(Value::from("2.1.0"))
        .runs(vec![run])
        .build()
}

/// The result for one finding in `package` (its installed package, when
/// the report lists it).
fn result(
    f: &Finding,
    package: Option<&trawl_inventory::Package>,
    rule_index: &HashMap<&str, usize>,
) -> SarifResult {
    let arch = package.and_then(|p| p.arch.as_deref()).unwrap_or("");
    let mut fingerprints = BTreeMap::new();
    fingerprints.insert(
        FINGERPRINT_KEY.to_string(),
        match &f.path {
            // Each instance of a language package is a result of its own.
            Some(path) => sha256_hex(&[&f.id, &f.package, &f.installed_version, arch, path]),
            None => sha256_hex(&[&f.id, &f.package, &f.installed_version, arch]),
        },
    );

    let logical = LogicalLocation::builder()
        .name(f.package.clone())
        .fully_qualified_name(
            package
                .map(|p| p.purl.clone())
                .unwrap_or_else(|| format!("{}@{}", f.package, f.installed_version)),
        )
        .kind("module")
        .build();
    let mut location = Location::builder().logical_locations(vec![logical]).build();
    if let Some(p) = package.filter(|p| !p.database.is_empty()) {
        location.physical_location = Some(
            PhysicalLocation::builder()
                .artifact_location(
                    ArtifactLocation::builder()
                        .uri(uri_path(&p.database))
                        .build(),
                )
                .region(
                    Region::builder()
                        .start_line(p.database_line.unwrap_or(1) as i64)
                        .build(),
                )
                .build(),
        );
    }

    let mut props = BTreeMap::new();
    props.insert("severity".to_string(), Value::from(f.severity.as_str()));
    props.insert(
        "installedVersion".to_string(),
        Value::from(f.installed_version.clone()),
    );
    props.insert(
        "sourcePackage".to_string(),
        Value::from(f.source_name.clone()),
    );
    if let Some(fixed) = &f.fixed_version {
        props.insert("fixedVersion".to_string(), Value::from(fixed.clone()));
    }
    if let Some(layer) = &f.layer {
        props.insert("layer".to_string(), Value::from(layer.clone()));
    }

    let mut result = SarifResult::builder()
        .rule_id(f.id.clone())
        .level(level(f.severity))
        .message(Message::builder().text(message(f)).build())
        .locations(vec![location])
        .partial_fingerprints(fingerprints)
        .properties(PropertyBag::builder().additional_properties(props).build())
        .build();
    result.rule_index = rule_index.get(f.id.as_str()).map(|i| *i as i64);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_severity() {
        assert!(matches!(level(Severity::Critical), ResultLevel::Error));
        assert!(matches!(level(Severity::High), ResultLevel::Error));
        assert!(matches!(level(Severity::Medium), ResultLevel::Warning));
        assert!(matches!(level(Severity::Negligible), ResultLevel::Note));
        assert!(matches!(level(Severity::Unknown), ResultLevel::Note));
    }

    #[test]
    fn database_paths_become_relative_uris() {
        assert_eq!(uri_path("var/lib/dpkg/status"), "var/lib/dpkg/status");
        assert_eq!(
            uri_path("/var/lib/dpkg/status.d/libstdc++6"),
            "var/lib/dpkg/status.d/libstdc++6"
        );
        assert_eq!(uri_path("odd dir/ü"), "odd%20dir/%C3%BC");
    }
}
