//! The Debian security tracker's JSON export.
//!
//! Published at <https://security-tracker.debian.org/tracker/data/json> (format
//! described at <https://security-team.pages.debian.net/security_tracker/>): one
//! object keyed by *source* package, then by issue id (a CVE, or `TEMP-…` for
//! issues without one), then per release codename:
//!
//! ```json
//! { "openssl": { "CVE-2024-0727": {
//!     "description": "…", "scope": "local", "debianbug": 1060858,
//!     "releases": { "bookworm": {
//!         "status": "resolved", "fixed_version": "3.0.13-1~deb12u1",
//!         "urgency": "not yet assigned",
//!         "repositories": { "bookworm": "3.0.11-1~deb12u2" } } } } } }
//! ```
//!
//! Each (package, issue) becomes one OSV record with one `affected` entry per
//! supported release (`buster` → `Debian:10`, `bullseye` → `Debian:11`,
//! `bookworm` → `Debian:12`, `trixie` → `Debian:13`, `forky` → `Debian:14`;
//! `sid` and `experimental` have no security support and are skipped):
//!
//! | status | `fixed_version` / `nodsa_reason` / `urgency` | fix state |
//! |---|---|---|
//! | `resolved` | `fixed_version` `0` | not affected (suppresses, never matches) |
//! | `resolved` | `fixed_version` V | fixed in V: versions below V are affected |
//! | `open` | `nodsa_reason` `ignored` | will not fix |
//! | `open` | `nodsa` set, `nodsa_reason` empty (no DSA: minor issue) | will not fix |
//! | `open` | `nodsa_reason` `postponed` | unfixed (a later point update is planned) |
//! | `open` | `urgency` `end-of-life` | will not fix (no longer supported) |
//! | `open` | otherwise | unfixed |
//! | `undetermined` | — | unfixed (not assessed yet, so not known to be safe) |
//!
//! The urgency (`unimportant`, `low`, `medium`, `high`, `not yet assigned`,
//! `end-of-life`) is kept as the vendor severity. The file is read one package at a
//! time; an entry of unexpected shape is a warning naming the package, issue and
//! release, and the rest still loads.

use std::fmt;
use std::path::Path;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::ecosystem::Ecosystem;
use crate::feed::{
    ConvertedFeed, ConvertedRecord, FeedError, FeedWarning, RecordRef, WarningReason,
    read_feed_file,
};
use crate::fix::{VendorStatement, VendorStatus};
use crate::osv::{Advisory, Affected, Event, Package, Range, RangeType};
use crate::version::DpkgVersion;

/// Reads a tracker JSON file.
///
/// Fails only if the file cannot be read or is not a regular file
/// ([`FeedError::NotARegularFile`]: a FIFO is refused, not waited on); invalid JSON and malformed entries are
/// warnings (for invalid JSON, the entries before the error are kept).
pub fn load_file(path: impl AsRef<Path>) -> Result<ConvertedFeed, FeedError> {
    let path = path.as_ref();
    let bytes = read_feed_file(path)?;
    let mut feed = ConvertedFeed {
        files: 1,
        ..ConvertedFeed::default()
    };
    convert_document(path, &bytes, &mut feed);
    Ok(feed)
}

/// Converts a tracker document's bytes, read from `path`.
pub fn convert_document(path: &Path, bytes: &[u8], feed: &mut ConvertedFeed) {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let outcome = deserializer
        .deserialize_map(Packages {
            path,
            feed: &mut *feed,
        })
        .and_then(|()| deserializer.end());
    if let Err(err) = outcome {
        let reason = if err.is_data() {
            WarningReason::InvalidEntry {
                message: format!("the document is not an object of packages: {err}"),
            }
        } else {
            WarningReason::InvalidJson {
                message: err.to_string(),
            }
        };
        feed.warnings.push(FeedWarning {
            path: Some(path.to_owned()),
            record: None,
            reason,
        });
    }
}

/// Visits the top-level object one package at a time.
struct Packages<'a> {
    path: &'a Path,
    feed: &'a mut ConvertedFeed,
}

impl<'de> Visitor<'de> for Packages<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object keyed by source package")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(package) = map.next_key::<String>()? {
            let issues: Value = map.next_value()?;
            convert_package(self.path, &package, issues, self.feed);
        }
        Ok(())
    }
}

fn convert_package(path: &Path, package: &str, issues: Value, feed: &mut ConvertedFeed) {
    let warn = |feed: &mut ConvertedFeed, entry: String, message: String| {
        feed.warnings.push(FeedWarning {
            path: Some(path.to_owned()),
            record: Some(RecordRef::Entry(entry)),
            reason: WarningReason::InvalidEntry { message },
        });
    };
    let Value::Object(issues) = issues else {
        return warn(feed, package.to_owned(), "not an object of issues".into());
    };
    for (id, issue) in issues {
        let Some(issue) = issue.as_object() else {
            warn(feed, format!("{package} {id}"), "not an object".into());
            continue;
        };
        let releases = match issue.get("releases") {
            Some(Value::Object(releases)) => releases,
            _ => {
                warn(
                    feed,
                    format!("{package} {id}"),
                    "no `releases` object".into(),
                );
                continue;
            }
        };
        let mut affected = Vec::new();
        for (codename, release) in releases {
            let entry = || format!("{package} {id} {codename}");
            let Some(number) = Ecosystem::debian_release(codename) else {
                if !matches!(codename.as_str(), "sid" | "experimental") {
                    warn(
                        feed,
                        entry(),
                        format!("unknown release {codename:?}; skipped"),
                    );
                }
                continue;
            };
            match convert_release(package, number, release) {
                Ok(entry) => affected.push(entry),
                Err(reason) => feed.warnings.push(FeedWarning {
                    path: Some(path.to_owned()),
                    record: Some(RecordRef::Entry(entry())),
                    reason,
                }),
            }
        }
        if affected.is_empty() {
            continue;
        }
        let text = |key: &str| issue.get(key).and_then(Value::as_str).map(str::to_owned);
        let mut database_specific = serde_json::Map::new();
        database_specific.insert("source".into(), "debian-security-tracker".into());
        for key in ["scope", "debianbug"] {
            if let Some(value) = issue.get(key).filter(|v| !v.is_null()) {
                database_specific.insert(key.into(), value.clone());
            }
        }
        let advisory = Advisory {
            schema_version: None,
            id: id.clone(),
            modified: None,
            published: None,
            withdrawn: None,
            aliases: Vec::new(),
            related: Vec::new(),
            upstream: Vec::new(),
            summary: text("description").filter(|d| !d.is_empty()),
            details: None,
            severity: Vec::new(),
            affected,
            references: Vec::new(),
            database_specific: Some(Value::Object(database_specific)),
        };
        feed.records.push(ConvertedRecord {
            advisory,
            key: format!("debian-tracker:{package}:{id}"),
            path: path.to_owned(),
        });
    }
}

/// One release's entry, per the table in the module docs.
fn convert_release(package: &str, release: &str, entry: &Value) -> Result<Affected, WarningReason> {
    let invalid = |message: &str| WarningReason::InvalidEntry {
        message: message.to_owned(),
    };
    let Some(entry) = entry.as_object() else {
        return Err(invalid("not an object"));
    };
    let text = |key: &str| -> Result<Option<&str>, WarningReason> {
        match entry.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(WarningReason::InvalidEntry {
                message: format!("`{key}` is not a string"),
            }),
        }
    };
    let status = text("status")?.ok_or_else(|| invalid("no `status`"))?;
    let urgency = text("urgency")?;
    let nodsa = text("nodsa")?;
    let nodsa_reason = text("nodsa_reason")?.unwrap_or("");

    let open_range = || Range {
        kind: RangeType::Ecosystem,
        repo: None,
        events: vec![Event::Introduced("0".into())],
        database_specific: None,
    };
    let (ranges, status) = match status {
        "resolved" => {
            let fixed = text("fixed_version")?
                .ok_or_else(|| invalid("`resolved` without `fixed_version`"))?;
            if fixed == "0" {
                (Vec::new(), Some(VendorStatus::NotAffected))
            } else {
                DpkgVersion::parse(fixed).map_err(|error| WarningReason::InvalidVersion {
                    package: package.to_owned(),
                    error,
                })?;
                let range = Range {
                    events: vec![Event::Introduced("0".into()), Event::Fixed(fixed.into())],
                    ..open_range()
                };
                (vec![range], None)
            }
        }
        "open" => {
            let will_not_fix = nodsa_reason == "ignored"
                || (nodsa.is_some() && nodsa_reason.is_empty())
                || urgency == Some("end-of-life");
            let status = will_not_fix.then_some(VendorStatus::WillNotFix);
            (vec![open_range()], status)
        }
        "undetermined" => (vec![open_range()], None),
        other => {
            return Err(WarningReason::InvalidEntry {
                message: format!("unknown status {other:?}"),
            });
        }
    };
    let note = match (nodsa, nodsa_reason) {
        (Some(text), "") => Some(text.to_owned()),
        (Some(text), reason) => Some(format!("{text} ({reason})")),
        (None, "") => None,
        (None, reason) => Some(reason.to_owned()),
    };
    Ok(Affected {
        package: Some(Package {
            ecosystem: format!("Debian:{release}"),
            name: package.to_owned(),
            purl: None,
        }),
        severity: Vec::new(),
        ranges,
        versions: Vec::new(),
        ecosystem_specific: None,
        database_specific: None,
        vendor: Some(VendorStatement {
            status,
            severity: urgency.map(str::to_owned),
            note,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_document_keeps_earlier_packages() {
        let json = br#"{"a": {"CVE-1": {"releases": {"bookworm": {"status": "open"}}}}, "b": {"#;
        let mut feed = ConvertedFeed::default();
        convert_document(Path::new("t.json"), json, &mut feed);
        assert_eq!(feed.records.len(), 1);
        assert_eq!(feed.warnings.len(), 1);
        assert!(matches!(
            feed.warnings[0].reason,
            WarningReason::InvalidJson { .. }
        ));
    }

    #[test]
    fn top_level_must_be_an_object() {
        let mut feed = ConvertedFeed::default();
        convert_document(Path::new("t.json"), b"[1, 2]", &mut feed);
        assert!(feed.records.is_empty());
        assert!(
            matches!(&feed.warnings[0].reason, WarningReason::InvalidEntry { message } if message.contains("not an object of packages")),
            "{:?}",
            feed.warnings
        );
    }
}
