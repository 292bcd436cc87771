//! What a team decides to act on: a severity threshold, ignoring findings
//! without a fix, an ignore file with reasons and expiry dates, and OpenVEX
//! statements (<https://github.com/openvex/spec/blob/main/OPENVEX-SPEC.md>).
//!
//! Nothing here deletes a finding: a suppressed finding moves to the report's
//! `suppressed` list with the reason, and stays out of the verdict. A file
//! that cannot be read whole is an error naming the file and line; a bad VEX
//! statement rejects its document, so it never silently suppresses anything.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::severity::Severity;

/// Why a policy file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line or statement is malformed.
    #[error("{}:{line}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line (for VEX: the line where the statement starts, when known).
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// One rule of an ignore file.
///
/// The file has one rule a line: an advisory id, then optional
/// `package=NAME`, `expires=YYYY-MM-DD` and `reason="..."`; `#` starts a
/// comment. A rule without `package=` covers every package.
///
/// ```text
/// CVE-2023-4911  package=libc6  expires=2026-12-31  reason="base image update pending"
/// CVE-2011-3374  reason="apt key validation is not used in this image"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IgnoreRule {
    /// The advisory id or alias it covers.
    pub id: String,
    /// The binary or source package it is limited to.
    pub package: Option<String>,
    /// Last day it applies (`YYYY-MM-DD`); expired rules suppress nothing and are reported.
    pub expires: Option<String>,
    /// Why it is ignored.
    pub reason: String,
    /// Where it was written (`file:line`).
    pub origin: String,
}

/// A VEX status for one vulnerability in some products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VexStatus {
    /// Not affected (suppresses).
    NotAffected,
    /// Affected (annotates).
    Affected,
    /// Fixed (annotates).
    Fixed,
    /// Under investigation (annotates).
    UnderInvestigation,
}

/// One OpenVEX statement, flattened to what matching needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VexStatement {
    /// The vulnerability name (`CVE-…`) and its aliases.
    pub vulnerability: Vec<String>,
    /// Product and subcomponent identifiers (purls, image references or digests).
    pub products: Vec<String>,
    /// The status.
    pub status: VexStatus,
    /// The justification or impact statement (required for `not_affected`).
    pub justification: Option<String>,
    /// Where it was read (`file#statement`).
    pub origin: String,
}

/// The policy a report is classified under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Findings below this severity do not count. `unknown` findings always
    /// count: an unrated vulnerability is not a minor one.
    pub severity_threshold: Severity,
    /// Findings without a fixed version do not count.
    pub ignore_unfixed: bool,
    /// Ignore rules.
    pub ignores: Vec<IgnoreRule>,
    /// VEX statements.
    pub vex: Vec<VexStatement>,
    /// Today (`YYYY-MM-DD`), for expiry dates.
    pub today: String,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            severity_threshold: Severity::Unknown,
            ignore_unfixed: false,
            ignores: Vec::new(),
            vex: Vec::new(),
            today: today(),
        }
    }
}

impl Policy {
    /// One line per ignore rule that has expired as of [`Policy::today`]: it
    /// no longer suppresses, and whoever runs the policy should hear so.
    ///
    /// ```
    /// use trawl_classify::policy::{parse_ignore_file, Policy};
    /// let ignores = parse_ignore_file("CVE-2024-1 expires=2026-01-31 reason=\"waiting\"\n", "ignore".as_ref()).unwrap();
    /// let policy = Policy { ignores, today: "2026-02-01".into(), ..Policy::default() };
    /// assert_eq!(
    ///     policy.expired_rules(),
    ///     ["ignore rule for CVE-2024-1 (ignore:1) expired on 2026-01-31: it no longer suppresses"]
    /// );
    /// ```
    pub fn expired_rules(&self) -> Vec<String> {
        self.ignores
            .iter()
            .filter(|r| r.expired(&self.today))
            .map(|rule| {
                format!(
                    "ignore rule for {} ({}) expired on {}: it no longer suppresses",
                    rule.id,
                    rule.origin,
                    rule.expires.as_deref().unwrap_or_default()
                )
            })
            .collect()
    }
}

/// Today's UTC date as `YYYY-MM-DD`.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    civil_date((secs / 86_400) as i64)
}

/// Days since 1970-01-01 to a proleptic Gregorian `YYYY-MM-DD`.
fn civil_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), by
/// H. Hinnant's `civil_from_days` (<https://howardhinnant.github.io/date_algorithms.html>).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}

fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && matches!(s[5..7].parse::<u8>(), Ok(1..=12))
        && matches!(s[8..10].parse::<u8>(), Ok(1..=31))
}

impl IgnoreRule {
    /// True when the rule has an expiry date before `today`.
    pub fn expired(&self, today: &str) -> bool {
        self.expires.as_deref().is_some_and(|e| e < today)
    }
}

/// Reads an ignore file (format in [`IgnoreRule`]).
pub fn read_ignore_file(path: &Path) -> Result<Vec<IgnoreRule>, PolicyError> {
    let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_ignore_file(&text, path)
}

/// Parses ignore-file text; `path` names it in errors.
pub fn parse_ignore_file(text: &str, path: &Path) -> Result<Vec<IgnoreRule>, PolicyError> {
    let mut rules = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let invalid = |reason: String| PolicyError::Invalid {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let tokens = tokenize(raw).map_err(invalid)?;
        let Some((id, rest)) = tokens.split_first() else {
            continue;
        };
        if id.contains('=') {
            return Err(invalid(format!(
                "a rule starts with an advisory id, not {id:?}"
            )));
        }
        let mut rule = IgnoreRule {
            id: id.clone(),
            package: None,
            expires: None,
            reason: String::new(),
            origin: format!("{}:{line}", path.display()),
        };
        for t in rest {
            let Some((k, v)) = t.split_once('=') else {
                return Err(invalid(format!("expected key=value, found {t:?}")));
            };
            match k {
                "package" if !v.is_empty() => rule.package = Some(v.to_string()),
                "expires" if valid_date(v) => rule.expires = Some(v.to_string()),
                "expires" => {
                    return Err(invalid(format!("expires must be YYYY-MM-DD, found {v:?}")));
                }
                "reason" => rule.reason = v.to_string(),
                _ => {
                    return Err(invalid(format!(
                        "unknown or empty key {k:?} (package, expires, reason)"
                    )));
                }
            }
        }
        if rule.reason.is_empty() {
            return Err(invalid(format!(
                "rule for {} has no reason=\"...\"",
                rule.id
            )));
        }
        rules.push(rule);
    }
    Ok(rules)
}

/// Splits a line into whitespace-separated tokens; `key="a b"` keeps its
/// spaces; `#` outside quotes ends the line.
fn tokenize(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '#' if !quoted => break,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// Reads an OpenVEX document (v0.2.0; the older v0.0.x string forms of
/// `vulnerability` and `products` are accepted too).
pub fn read_vex_file(path: &Path) -> Result<Vec<VexStatement>, PolicyError> {
    let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_vex(&text, path)
}

/// Parses OpenVEX JSON; `path` names it in errors.
pub fn parse_vex(text: &str, path: &Path) -> Result<Vec<VexStatement>, PolicyError> {
    let invalid = |line: usize, reason: String| PolicyError::Invalid {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| invalid(e.line(), format!("not JSON: {e}")))?;
    let context = doc
        .get("@context")
        .and_then(|c| c.as_str())
        .unwrap_or_default();
    if !context.starts_with("https://openvex.dev/ns") {
        return Err(invalid(
            1,
            format!("not an OpenVEX document (@context {context:?})"),
        ));
    }
    let Some(statements) = doc.get("statements").and_then(|s| s.as_array()) else {
        return Err(invalid(1, "no statements array".into()));
    };
    // Line of the n-th statement: the n-th `"status"` key is a good anchor.
    let lines: Vec<usize> = text
        .match_indices("\"status\"")
        .map(|(i, _)| text[..i].bytes().filter(|b| *b == b'\n').count() + 1)
        .collect();
    let mut out = Vec::new();
    for (n, s) in statements.iter().enumerate() {
        let line = lines.get(n).copied().unwrap_or(1);
        let bad = |reason: String| invalid(line, format!("statement {n}: {reason}"));
        let mut vulnerability = Vec::new();
        match s.get("vulnerability") {
            Some(serde_json::Value::String(v)) => vulnerability.push(v.clone()),
            Some(v) => {
                if let Some(name) = v.get("name").and_then(|n| n.as_str()) {
                    vulnerability.push(name.to_string());
                }
                if let Some(a) = v.get("aliases").and_then(|a| a.as_array()) {
                    vulnerability.extend(a.iter().filter_map(|x| x.as_str()).map(str::to_string));
                }
            }
            None => {}
        }
        if vulnerability.is_empty() {
            return Err(bad("no vulnerability name".into()));
        }
        let mut products = Vec::new();
        for p in s
            .get("products")
            .and_then(|p| p.as_array())
            .into_iter()
            .flatten()
        {
            match p {
                serde_json::Value::String(id) => products.push(id.clone()),
                p => {
                    if let Some(id) = p.get("@id").and_then(|i| i.as_str()) {
                        products.push(id.to_string());
                    }
                    if let Some(ids) = p.get("identifiers").and_then(|i| i.as_object()) {
                        products
                            .extend(ids.values().filter_map(|v| v.as_str()).map(str::to_string));
                    }
                    for sub in p
                        .get("subcomponents")
                        .and_then(|x| x.as_array())
                        .into_iter()
                        .flatten()
                    {
                        match sub {
                            serde_json::Value::String(id) => products.push(id.clone()),
                            sub => products.extend(
                                sub.get("@id").and_then(|i| i.as_str()).map(str::to_string),
                            ),
                        }
                    }
                }
            }
        }
        if products.is_empty() {
            return Err(bad("no products".into()));
        }
        let status = match s.get("status").and_then(|x| x.as_str()) {
            Some("not_affected") => VexStatus::NotAffected,
            Some("affected") => VexStatus::Affected,
            Some("fixed") => VexStatus::Fixed,
            Some("under_investigation") => VexStatus::UnderInvestigation,
            other => return Err(bad(format!("unknown status {other:?}"))),
        };
        let justification = s
            .get("justification")
            .or_else(|| s.get("impact_statement"))
            .and_then(|j| j.as_str())
            .filter(|j| !j.trim().is_empty())
            .map(str::to_string);
        if status == VexStatus::NotAffected && justification.is_none() {
            return Err(bad(
                "not_affected needs a justification or an impact_statement".into(),
            ));
        }
        out.push(VexStatement {
            vulnerability,
            products,
            status,
            justification,
            origin: format!("{}#statement{n}", path.display()),
        });
    }
    Ok(out)
}

/// True when a VEX product identifier names this package: an equal purl, or
/// the same purl without version/qualifiers when the product gives none.
pub(crate) fn product_matches(product: &str, purl: &str) -> bool {
    if product == purl {
        return true;
    }
    let base = |p: &str| -> String { p.split(['?', '#']).next().unwrap_or(p).to_string() };
    let product_base = base(product);
    let purl_base = base(purl);
    if product_base == purl_base {
        return true;
    }
    // A product without a version covers every version of the package.
    !product_base.contains('@') && purl_base.split('@').next() == Some(product_base.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(20_780), "2026-11-23");
        assert_eq!(civil_date(11_016), "2000-02-29");
        assert!(valid_date("2026-12-31"));
        assert!(!valid_date("2026-13-01"));
        assert!(!valid_date("26-12-31"));
    }

    #[test]
    fn ignore_file() {
        let p = Path::new("trawl.ignore");
        let rules = parse_ignore_file(
            "# comment\n\nCVE-1 package=libc6 expires=2026-01-01 reason=\"base # image\"\nCVE-2 reason=x # trailing\n",
            p,
        )
        .unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].package.as_deref(), Some("libc6"));
        assert_eq!(rules[0].reason, "base # image");
        assert_eq!(rules[0].origin, "trawl.ignore:3");
        assert!(rules[0].expired("2026-01-02"));
        assert!(!rules[0].expired("2026-01-01"));
        for (text, line, needle) in [
            (
                "CVE-1 reason=a\nCVE-2 expires=2026-02-30x reason=b\n",
                2,
                "expires",
            ),
            ("CVE-1\n", 1, "no reason"),
            ("CVE-1 color=red reason=a\n", 1, "unknown"),
            ("CVE-1 reason=\"open\n", 1, "unterminated"),
            ("package=x reason=y\n", 1, "advisory id"),
        ] {
            let e = parse_ignore_file(text, p).unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("trawl.ignore:{line}:")), "{msg}");
            assert!(msg.contains(needle), "{msg}");
        }
    }

    #[test]
    fn vex_documents() {
        let p = Path::new("a.vex.json");
        let ok = r#"{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [
            {"vulnerability": {"name": "CVE-1", "aliases": ["DSA-1"]}, "products": [{"@id": "pkg:oci/app", "subcomponents": [{"@id": "pkg:deb/debian/libc6"}]}],
             "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"},
            {"vulnerability": "CVE-2", "products": ["pkg:deb/debian/bash@5.2"], "status": "affected"}]}"#;
        let s = parse_vex(ok, p).unwrap();
        assert_eq!(s[0].vulnerability, ["CVE-1", "DSA-1"]);
        assert_eq!(s[0].products, ["pkg:oci/app", "pkg:deb/debian/libc6"]);
        assert_eq!(s[1].status, VexStatus::Affected);
        let bad = r#"{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [
            {"vulnerability": {"name": "CVE-1"}, "products": [{"@id": "pkg:deb/debian/libc6"}],
             "status": "not_affected"}]}"#;
        let e = parse_vex(bad, p).unwrap_err().to_string();
        assert!(e.starts_with("a.vex.json:3: statement 0"), "{e}");
        assert!(e.contains("justification"), "{e}");
        assert!(parse_vex("{\"statements\": []}", p).is_err());
        assert!(
            parse_vex("{", p)
                .unwrap_err()
                .to_string()
                .starts_with("a.vex.json:1")
        );
    }

    #[test]
    fn products() {
        let purl = "pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12";
        assert!(product_matches("pkg:deb/debian/libc6", purl));
        assert!(product_matches("pkg:deb/debian/libc6@2.36-9", purl));
        assert!(!product_matches("pkg:deb/debian/libc6@2.36-8", purl));
        assert!(!product_matches("pkg:deb/debian/libc", purl));
    }
}
