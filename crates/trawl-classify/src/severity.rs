//! Severity of a finding, from the advisory record.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use trawl_advisory::osv::{Advisory, Affected, SeverityType};

/// How serious a finding is, in the words distros and CVSS use.
///
/// Ordered from least to most serious, so `max()` picks the worst.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The record gives no rating that can be read.
    Unknown,
    /// Rated by the distro as not worth fixing on its own (`unimportant`).
    Negligible,
    /// Low.
    Low,
    /// Medium (also `moderate`).
    Medium,
    /// High (also `important`).
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// The lower-case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "unknown",
            Severity::Negligible => "negligible",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Every severity, most serious first.
    pub const ALL: [Severity; 6] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Negligible,
        Severity::Unknown,
    ];
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A severity word no feed is known to use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?}")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    /// Reads the words feeds use: CVSS's, Debian urgencies (`unimportant`,
    /// `low`, `medium`, `high`, with optional `*`/`**` marks), Red Hat's
    /// (`moderate`, `important`), Ubuntu's (`negligible`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let word = s.trim().trim_end_matches('*').trim().to_ascii_lowercase();
        Ok(match word.as_str() {
            "critical" => Severity::Critical,
            "high" | "important" => Severity::High,
            "medium" | "moderate" => Severity::Medium,
            "low" => Severity::Low,
            "negligible" | "unimportant" | "none" => Severity::Negligible,
            "unknown" | "not yet assigned" | "end-of-life" | "" => Severity::Unknown,
            _ => return Err(UnknownSeverity(s.to_string())),
        })
    }
}

/// Where a finding's severity came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rating {
    /// The severity.
    pub severity: Severity,
    /// What it was read from: `database_specific.severity` of the affected
    /// entry or the record, or the CVSS version of a vector.
    pub source: String,
    /// The CVSS base score, when computed from a vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

/// The rating of `affected` in `advisory`: the feed's own word first (the
/// affected entry's `database_specific.severity`, then the record's), else the
/// newest CVSS vector's computed severity, else unknown.
pub fn rate(advisory: &Advisory, affected: &Affected) -> Rating {
    // Debian's OSV records carry the tracker's urgency in
    // `affected[].ecosystem_specific.urgency`; other feeds use `severity`.
    let words = [
        (
            affected.database_specific.as_ref(),
            "severity",
            "affected.database_specific.severity",
        ),
        (
            affected.ecosystem_specific.as_ref(),
            "severity",
            "affected.ecosystem_specific.severity",
        ),
        (
            affected.ecosystem_specific.as_ref(),
            "urgency",
            "affected.ecosystem_specific.urgency",
        ),
        (
            advisory.database_specific.as_ref(),
            "severity",
            "database_specific.severity",
        ),
    ];
    for (value, key, source) in words {
        if let Some(word) = value.and_then(|v| v.get(key)).and_then(|v| v.as_str())
            && let Ok(severity) = word.parse::<Severity>()
            && severity != Severity::Unknown
        {
            return Rating {
                severity,
                source: source.to_string(),
                score: None,
            };
        }
    }
    let vectors = affected.severity.iter().chain(&advisory.severity);
    let mut best: Option<(u8, Rating)> = None;
    for s in vectors {
        let rank = match s.kind {
            SeverityType::CvssV4 => 3,
            SeverityType::CvssV3 => 2,
            SeverityType::CvssV2 => 1,
            SeverityType::Ubuntu => {
                if let Ok(severity) = s.score.parse::<Severity>() {
                    return Rating {
                        severity,
                        source: "severity.Ubuntu".into(),
                        score: None,
                    };
                }
                continue;
            }
            _ => continue,
        };
        if best.as_ref().is_some_and(|(r, _)| *r >= rank) {
            continue;
        }
        let Ok(cvss) = s.score.parse::<cvss::Cvss>() else {
            tracing::debug!(id = %advisory.id, vector = %s.score, "unreadable CVSS vector");
            continue;
        };
        let severity = match cvss.severity() {
            cvss::Severity::None => Severity::Negligible,
            cvss::Severity::Low => Severity::Low,
            cvss::Severity::Medium => Severity::Medium,
            cvss::Severity::High => Severity::High,
            cvss::Severity::Critical => Severity::Critical,
        };
        let source = match rank {
            3 => "CVSS_V4",
            2 => "CVSS_V3",
            _ => "CVSS_V2",
        };
        best = Some((
            rank,
            Rating {
                severity,
                source: source.into(),
                score: Some(cvss.score()),
            },
        ));
    }
    best.map(|(_, r)| r).unwrap_or(Rating {
        severity: Severity::Unknown,
        source: "none".into(),
        score: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: &str) -> Advisory {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn feed_word_beats_cvss_and_cvss_is_computed() {
        let a = record(
            r#"{"id":"X","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
                "affected":[{"package":{"ecosystem":"Debian:12","name":"p"},"database_specific":{"severity":"low"}},
                            {"package":{"ecosystem":"Debian:12","name":"q"}}]}"#,
        );
        let low = rate(&a, &a.affected[0]);
        assert_eq!(
            (low.severity, low.source.as_str()),
            (Severity::Low, "affected.database_specific.severity")
        );
        let crit = rate(&a, &a.affected[1]);
        assert_eq!(
            (crit.severity, crit.source.as_str(), crit.score),
            (Severity::Critical, "CVSS_V3", Some(9.8))
        );
    }

    /// The GitHub Advisory Database's records (the trawl-advisory fixture
    /// GHSA-r9hx-vwmv-q579): `database_specific.severity` in upper case,
    /// `MODERATE` for medium, over the CVSS vector, named as its source.
    #[test]
    fn ghsa_severity_word_is_read_in_upper_case() {
        let a: Advisory = serde_json::from_str(include_str!(
            "../../trawl-advisory/tests/fixtures/ghsa/advisories/github-reviewed/2022/12/GHSA-r9hx-vwmv-q579/GHSA-r9hx-vwmv-q579.json"
        ))
        .unwrap();
        let rating = rate(&a, &a.affected[0]);
        assert_eq!(
            (rating.severity, rating.source.as_str()),
            (Severity::Medium, "database_specific.severity")
        );
        for (word, want) in [
            ("LOW", Severity::Low),
            ("HIGH", Severity::High),
            ("CRITICAL", Severity::Critical),
        ] {
            assert_eq!(word.parse::<Severity>().unwrap(), want);
        }
        // Without the word, the CVSS vector decides (5.9, medium), named as such.
        let mut bare = a.clone();
        bare.database_specific = None;
        let rating = rate(&bare, &bare.affected[0]);
        assert_eq!(
            (rating.severity, rating.source.as_str(), rating.score),
            (Severity::Medium, "CVSS_V3", Some(5.9))
        );
    }

    #[test]
    fn malformed_vector_and_missing_rating_are_unknown() {
        let a = record(
            r#"{"id":"X","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:Q"}],
                "affected":[{"package":{"ecosystem":"Debian:12","name":"p"}}]}"#,
        );
        assert_eq!(rate(&a, &a.affected[0]).severity, Severity::Unknown);
    }

    #[test]
    fn debian_urgency_is_the_vendor_rating() {
        let a = record(
            r#"{"id":"DEBIAN-CVE-2011-3374","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:L/A:N"}],
                "affected":[{"package":{"ecosystem":"Debian:12","name":"apt"},"ecosystem_specific":{"urgency":"unimportant"}},
                            {"package":{"ecosystem":"Debian:11","name":"apt"},"ecosystem_specific":{"urgency":"not yet assigned"}}]}"#,
        );
        let r = rate(&a, &a.affected[0]);
        assert_eq!(
            (r.severity, r.source.as_str()),
            (Severity::Negligible, "affected.ecosystem_specific.urgency")
        );
        // "not yet assigned" is no rating: fall back to the CVSS vector.
        let r = rate(&a, &a.affected[1]);
        assert_eq!(
            (r.severity, r.source.as_str(), r.score),
            (Severity::Low, "CVSS_V3", Some(3.7))
        );
    }

    #[test]
    fn words() {
        assert_eq!("unimportant".parse::<Severity>(), Ok(Severity::Negligible));
        assert_eq!("Moderate".parse::<Severity>(), Ok(Severity::Medium));
        assert_eq!("high**".parse::<Severity>(), Ok(Severity::High));
        assert!("severe".parse::<Severity>().is_err());
    }
}
