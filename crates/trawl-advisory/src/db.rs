//! The in-memory advisory database and matching installed packages against it.
//!
//! Records are indexed by (ecosystem, package name), so a query touches only the
//! entries for its package. Range events are parsed once, when a record is added,
//! under the [`VersionScheme`] of the record's ecosystem.

mod affected;

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use crate::feed::{FeedError, FeedWarning, RecordRef};
use crate::osv::{self, Advisory, Affected};
use crate::version::{VersionError, VersionScheme};
use affected::CompiledAffected;

/// Advisories held in memory, indexed for matching.
///
/// Withdrawn records are never indexed. When two records share an id, the one with
/// the later `modified` time wins (the first one added on a tie), and a newer withdrawn
/// copy removes an older live one.
#[derive(Debug, Default)]
pub struct AdvisoryDb {
    slots: Vec<Option<Advisory>>,
    by_id: HashMap<String, IdEntry>,
    /// ecosystem (normalised) -> package name -> entries.
    index: HashMap<String, HashMap<String, Vec<IndexEntry>>>,
    live: usize,
}

#[derive(Debug)]
struct IdEntry {
    /// `None` when the newest copy seen is withdrawn.
    slot: Option<usize>,
    modified: Option<String>,
}

#[derive(Debug)]
struct IndexEntry {
    slot: usize,
    affected: usize,
    /// `None` when the ecosystem has no version scheme yet.
    compiled: Option<CompiledAffected>,
}

/// One installed package to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackageQuery<'a> {
    /// The OSV ecosystem, e.g. `Debian:12`.
    pub ecosystem: &'a str,
    /// The package name advisories are written against; for Debian the *source*
    /// package (`openssl`, not `libssl3`).
    pub name: &'a str,
    /// The installed version; for Debian the *source* version.
    pub version: &'a str,
}

/// An advisory that affects a queried package.
#[derive(Debug, Clone, Serialize)]
pub struct AdvisoryMatch<'a> {
    /// The whole record.
    pub advisory: &'a Advisory,
    /// The `affected` entry that matched.
    pub affected: &'a Affected,
    /// The version that fixes the installed one, as the feed writes it; `None` when
    /// no fix is known yet (open range, `last_affected`, or a match through the
    /// `versions` list only).
    pub fixed_version: Option<String>,
}

/// Why a query could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// No version scheme is implemented for the ecosystem, so ranges cannot be
    /// evaluated.
    #[error("no version scheme for ecosystem {ecosystem:?}")]
    UnsupportedEcosystem {
        /// The queried ecosystem.
        ecosystem: String,
    },
    /// The installed version does not parse under the ecosystem's scheme.
    #[error("package {name} in {ecosystem}: {source}")]
    InvalidVersion {
        /// The queried ecosystem.
        ecosystem: String,
        /// The queried package name.
        name: String,
        /// The version and what is wrong with it.
        #[source]
        source: VersionError,
    },
}

impl AdvisoryDb {
    /// An empty database.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads every OSV record under each directory (see [`osv::load_dir`]).
    ///
    /// Returns the database and every warning: skipped files and records, and ranges
    /// or versions that could not be used. Fails only if a directory is unreadable.
    pub fn from_osv_dirs(dirs: &[impl AsRef<Path>]) -> Result<(Self, Vec<FeedWarning>), FeedError> {
        let mut db = Self::new();
        let mut warnings = Vec::new();
        for dir in dirs {
            let mut record_warnings = Vec::new();
            osv::load::visit_dir(
                dir.as_ref(),
                &mut |path, advisory| {
                    record_warnings.extend(db.add_osv(advisory).into_iter().map(|mut w| {
                        w.path = Some(path.to_owned());
                        w
                    }));
                },
                &mut warnings,
            )?;
            warnings.append(&mut record_warnings);
        }
        Ok((db, warnings))
    }

    /// Adds one OSV record, replacing an older record with the same id.
    ///
    /// Returns warnings about ranges or listed versions that cannot be evaluated and
    /// were skipped; the rest of the record is still used.
    pub fn add_osv(&mut self, advisory: Advisory) -> Vec<FeedWarning> {
        if let Some(existing) = self.by_id.get(&advisory.id) {
            if !is_newer(advisory.modified.as_deref(), existing.modified.as_deref()) {
                return Vec::new();
            }
            if let Some(slot) = existing.slot {
                self.remove_slot(slot);
            }
        }
        if advisory.is_withdrawn() {
            self.by_id.insert(
                advisory.id.clone(),
                IdEntry {
                    slot: None,
                    modified: advisory.modified.clone(),
                },
            );
            return Vec::new();
        }

        let slot = self.slots.len();
        let mut warnings = Vec::new();
        for (i, affected) in advisory.affected.iter().enumerate() {
            let Some(package) = &affected.package else {
                continue;
            };
            let ecosystem = normalize_ecosystem(&package.ecosystem);
            let compiled = VersionScheme::for_ecosystem(&ecosystem).map(|scheme| {
                let mut reasons = Vec::new();
                let compiled = CompiledAffected::compile(scheme, affected, &mut reasons);
                warnings.extend(reasons.into_iter().map(|reason| FeedWarning {
                    path: None,
                    record: Some(RecordRef::Id(advisory.id.clone())),
                    reason,
                }));
                compiled
            });
            self.index
                .entry(ecosystem)
                .or_default()
                .entry(package.name.clone())
                .or_default()
                .push(IndexEntry {
                    slot,
                    affected: i,
                    compiled,
                });
        }
        self.by_id.insert(
            advisory.id.clone(),
            IdEntry {
                slot: Some(slot),
                modified: advisory.modified.clone(),
            },
        );
        self.slots.push(Some(advisory));
        self.live += 1;
        warnings
    }

    /// The number of live (indexed, not withdrawn) records.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether the database holds no live records.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The live record with this id.
    pub fn get(&self, id: &str) -> Option<&Advisory> {
        let slot = self.by_id.get(id)?.slot?;
        self.slots.get(slot)?.as_ref()
    }

    /// Whether any live record covers the ecosystem (`Debian:12`), so that a
    /// package without matches can be called unaffected rather than unknown.
    pub fn has_ecosystem(&self, ecosystem: &str) -> bool {
        let ecosystem = normalize_ecosystem(ecosystem);
        let base = ecosystem.split(':').next().unwrap_or(&ecosystem);
        [ecosystem.as_str(), base].iter().any(|key| {
            self.index
                .get(*key)
                .is_some_and(|names| names.values().any(|e| !e.is_empty()))
        })
    }

    /// The advisories affecting an installed package, ordered by advisory id.
    ///
    /// A query for `Debian:12` sees records for `Debian:12` (and `Debian:12.x`) and
    /// records for the release-less `Debian`. One advisory yields one match per
    /// matching `affected` entry.
    pub fn matches(&self, query: &PackageQuery<'_>) -> Result<Vec<AdvisoryMatch<'_>>, QueryError> {
        let ecosystem = normalize_ecosystem(query.ecosystem);
        let scheme = VersionScheme::for_ecosystem(&ecosystem).ok_or_else(|| {
            QueryError::UnsupportedEcosystem {
                ecosystem: query.ecosystem.to_owned(),
            }
        })?;
        let installed =
            scheme
                .parse(query.version)
                .map_err(|source| QueryError::InvalidVersion {
                    ecosystem: query.ecosystem.to_owned(),
                    name: query.name.to_owned(),
                    source,
                })?;

        let base = ecosystem.split(':').next().unwrap_or(&ecosystem);
        let keys: &[&str] = if base == ecosystem {
            &[base]
        } else {
            &[&ecosystem, base]
        };
        let mut found = Vec::new();
        for key in keys {
            let Some(entries) = self.index.get(*key).and_then(|names| names.get(query.name)) else {
                continue;
            };
            for entry in entries {
                let Some(compiled) = &entry.compiled else {
                    continue;
                };
                let Some(verdict) = compiled.evaluate(&installed, query.version) else {
                    continue;
                };
                let Some(advisory) = self.slots.get(entry.slot).and_then(Option::as_ref) else {
                    continue;
                };
                let Some(affected) = advisory.affected.get(entry.affected) else {
                    continue;
                };
                found.push(AdvisoryMatch {
                    advisory,
                    affected,
                    fixed_version: verdict.fixed,
                });
            }
        }
        found.sort_by(|a, b| a.advisory.id.cmp(&b.advisory.id));
        Ok(found)
    }

    fn remove_slot(&mut self, slot: usize) {
        let Some(old) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        self.live -= 1;
        for package in old.affected.iter().filter_map(|a| a.package.as_ref()) {
            let ecosystem = normalize_ecosystem(&package.ecosystem);
            if let Some(entries) = self
                .index
                .get_mut(&ecosystem)
                .and_then(|names| names.get_mut(&package.name))
            {
                entries.retain(|e| e.slot != slot);
            }
        }
    }
}

/// `Debian:12.5` → `Debian:12`: Debian advisories are per major release.
fn normalize_ecosystem(ecosystem: &str) -> String {
    let point_release = ecosystem
        .strip_prefix("Debian:")
        .and_then(|release| release.split_once('.'))
        .filter(|(major, minor)| {
            !major.is_empty()
                && major.bytes().all(|b| b.is_ascii_digit())
                && minor.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        });
    match point_release {
        Some((major, _)) => format!("Debian:{major}"),
        None => ecosystem.to_owned(),
    }
}

/// Whether RFC 3339 time `a` is later than `b`; a missing time is the earliest.
///
/// Compares the `YYYY-MM-DDTHH:MM:SS` prefix as text, then the fraction as a decimal,
/// so `…:33.5Z` is later than `…:33Z` (plain string order would say otherwise).
fn is_newer(a: Option<&str>, b: Option<&str>) -> bool {
    fn key(t: &str) -> (&str, &str) {
        let cut = t.len().min(19);
        let (secs, rest) = if t.is_char_boundary(cut) {
            t.split_at(cut)
        } else {
            (t, "")
        };
        let frac = rest
            .strip_prefix('.')
            .map(|f| {
                let end = f.bytes().take_while(u8::is_ascii_digit).count();
                f[..end].trim_end_matches('0')
            })
            .unwrap_or("");
        (secs, frac)
    }
    match (a, b) {
        (Some(a), Some(b)) => key(a) > key(b),
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecosystem_normalisation() {
        assert_eq!(normalize_ecosystem("Debian:12.5"), "Debian:12");
        assert_eq!(normalize_ecosystem("Debian:12"), "Debian:12");
        assert_eq!(normalize_ecosystem("Debian"), "Debian");
        assert_eq!(normalize_ecosystem("Ubuntu:22.04:LTS"), "Ubuntu:22.04:LTS");
    }

    #[test]
    fn modified_times() {
        assert!(is_newer(
            Some("2024-01-02T00:00:00Z"),
            Some("2024-01-01T00:00:00Z")
        ));
        assert!(is_newer(
            Some("2024-01-01T00:00:00.5Z"),
            Some("2024-01-01T00:00:00Z")
        ));
        assert!(!is_newer(
            Some("2024-01-01T00:00:00.50Z"),
            Some("2024-01-01T00:00:00.5Z")
        ));
        assert!(is_newer(Some("2024-01-01T00:00:00Z"), None));
        assert!(!is_newer(None, None));
        assert!(!is_newer(
            Some("2024-01-01T00:00:0é"),
            Some("2024-01-01T00:00:0é")
        ));
    }
}
