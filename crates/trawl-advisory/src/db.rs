//! The in-memory advisory database and matching installed packages against it.
//!
//! Records are indexed by (normalised ecosystem, package name), so a query touches
//! only the entries for its package. Range events are parsed once, when a record is
//! added, under the [`VersionScheme`] of the record's ecosystem. Every feed ends up
//! as OSV [`Advisory`] records (plain serde data, so a compiled database can store
//! them as they are): OSV loads directly, [`secdb`](crate::secdb) and
//! [`debian_tracker`](crate::debian_tracker) convert into it.

pub(crate) mod affected;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::canonical;
use crate::ecosystem::Ecosystem;
use crate::feed::{FeedError, FeedWarning, RecordRef, WarningReason};
use crate::fix::{FixState, VendorStatus};
use crate::osv::{self, Advisory, Affected};
use crate::version::VersionError;
use affected::{CompiledAffected, PreparedQuery};

/// Advisories held in memory, indexed for matching.
///
/// Withdrawn records are never indexed. When two OSV records share an id, the one
/// with the later `modified` time wins (the first one added on a tie), and a newer
/// withdrawn copy removes an older live one. Records converted from vendor feeds
/// are told apart by their source (file, release, package) instead, since they
/// reuse CVE ids across packages: loading the same file twice adds nothing.
#[derive(Debug, Default)]
pub struct AdvisoryDb {
    slots: Vec<Option<Advisory>>,
    /// Deduplication key (the OSV id, or a converter's source key) -> entry.
    by_key: HashMap<String, IdEntry>,
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
    /// `None` when the ecosystem has no version scheme.
    compiled: Option<CompiledAffected>,
}

/// One installed package to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackageQuery<'a> {
    /// The OSV ecosystem, e.g. `Debian:12`, `Alpine:v3.18` (or `Alpine:3.18.4`:
    /// names are normalised, see [`Ecosystem`]).
    pub ecosystem: &'a str,
    /// The package name advisories are written against: the *source* package
    /// (Debian `Source`, apk origin, the name of rpm's SOURCERPM); for a
    /// language ecosystem the package's name, in any spelling
    /// [`canonical::package_name`] maps to its canonical one.
    pub name: &'a str,
    /// The installed version the feeds compare against.
    pub version: &'a str,
}

/// The record of an [`AdvisoryMatch`]: borrowed from an in-memory
/// [`AdvisoryDb`], shared, or read from a compiled database
/// ([`AdvisoryStore`](crate::AdvisoryStore)) and decoded only when asked.
///
/// It dereferences to the whole [`Advisory`]. A record from a store keeps its
/// checked bytes and its ids ([`id`](Self::id), [`aliases`](Self::aliases),
/// [`upstream`](Self::upstream), read without decoding anything else); the
/// first dereference decodes the rest, once for all the matches (clones)
/// sharing it. Its bytes were checksummed and checked whole by the query
/// that read them, so decoding later cannot fail. Cloning never copies the
/// record.
#[derive(Clone)]
pub struct AdvisoryRef<'a>(RefKind<'a>);

#[derive(Clone)]
enum RefKind<'a> {
    Borrowed(&'a Advisory),
    Shared(Arc<Advisory>),
    Stored(Arc<crate::store::record::StoredRecord>),
}

impl<'a> AdvisoryRef<'a> {
    /// A record read from a store, not yet decoded.
    pub(crate) fn stored(record: Arc<crate::store::record::StoredRecord>) -> Self {
        Self(RefKind::Stored(record))
    }

    /// The record's id, without decoding it.
    pub fn id(&self) -> &str {
        match &self.0 {
            RefKind::Borrowed(a) => &a.id,
            RefKind::Shared(a) => &a.id,
            RefKind::Stored(r) => r.id(),
        }
    }

    /// Its aliases, without decoding it.
    pub fn aliases(&self) -> impl Iterator<Item = &str> {
        self.list(false)
    }

    /// Its upstream ids, without decoding it.
    pub fn upstream(&self) -> impl Iterator<Item = &str> {
        self.list(true)
    }

    fn list(&self, upstream: bool) -> Strs<'_> {
        match &self.0 {
            RefKind::Borrowed(a) => Strs::Decoded(pick_list(a, upstream).iter()),
            RefKind::Shared(a) => Strs::Decoded(pick_list(a, upstream).iter()),
            RefKind::Stored(r) => Strs::Stored(r.ids(upstream)),
        }
    }

    /// The ids it is known by: its own, its aliases and its upstream ids,
    /// without decoding it.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id())
            .chain(self.aliases())
            .chain(self.upstream())
    }

    /// Whether reading the whole record is free: it is borrowed or shared,
    /// or a stored record some clone has already decoded.
    pub fn is_decoded(&self) -> bool {
        match &self.0 {
            RefKind::Borrowed(_) | RefKind::Shared(_) => true,
            RefKind::Stored(r) => r.is_decoded(),
        }
    }

    /// The whole record (decoding a stored one on the first call).
    pub fn advisory(&self) -> &Advisory {
        match &self.0 {
            RefKind::Borrowed(a) => a,
            RefKind::Shared(a) => a,
            RefKind::Stored(r) => r.advisory(),
        }
    }

    /// Whether two refer to the same record in memory (a clone of one
    /// another, or borrowing the same record).
    pub fn same_record(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (RefKind::Borrowed(a), RefKind::Borrowed(b)) => std::ptr::eq(*a, *b),
            (RefKind::Shared(a), RefKind::Shared(b)) => Arc::ptr_eq(a, b),
            (RefKind::Stored(a), RefKind::Stored(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// `aliases`, or `upstream` with `upstream`.
fn pick_list(advisory: &Advisory, upstream: bool) -> &[String] {
    if upstream {
        &advisory.upstream
    } else {
        &advisory.aliases
    }
}

/// A record's aliases or upstream ids.
enum Strs<'r> {
    Decoded(std::slice::Iter<'r, String>),
    Stored(crate::store::record::StoredStrs<'r>),
}

impl<'r> Iterator for Strs<'r> {
    type Item = &'r str;

    fn next(&mut self) -> Option<&'r str> {
        match self {
            Strs::Decoded(items) => items.next().map(String::as_str),
            Strs::Stored(items) => items.next(),
        }
    }
}

impl<'a> From<&'a Advisory> for AdvisoryRef<'a> {
    fn from(advisory: &'a Advisory) -> Self {
        Self(RefKind::Borrowed(advisory))
    }
}

impl From<Arc<Advisory>> for AdvisoryRef<'_> {
    fn from(advisory: Arc<Advisory>) -> Self {
        Self(RefKind::Shared(advisory))
    }
}

impl From<Advisory> for AdvisoryRef<'_> {
    fn from(advisory: Advisory) -> Self {
        Self(RefKind::Shared(Arc::new(advisory)))
    }
}

impl std::ops::Deref for AdvisoryRef<'_> {
    type Target = Advisory;
    fn deref(&self) -> &Advisory {
        self.advisory()
    }
}

impl AsRef<Advisory> for AdvisoryRef<'_> {
    fn as_ref(&self) -> &Advisory {
        self.advisory()
    }
}

impl std::fmt::Debug for AdvisoryRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            RefKind::Borrowed(a) => f.debug_tuple("Borrowed").field(a).finish(),
            RefKind::Shared(a) => f.debug_tuple("Shared").field(a).finish(),
            RefKind::Stored(r) => f.debug_tuple("Stored").field(r).finish(),
        }
    }
}

impl Serialize for AdvisoryRef<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.advisory().serialize(serializer)
    }
}

/// What one advisory says about a queried package.
///
/// The matched `affected` entry is one of the record's, read with
/// [`affected`](Self::affected): an answer never holds a second copy of it.
#[derive(Debug, Clone)]
pub struct AdvisoryMatch<'a> {
    /// The record: borrowed from an in-memory database, or read from a
    /// compiled one and decoded on first use (shared between the matches of
    /// one record). Its ids ([`AdvisoryRef::id`], [`AdvisoryRef::ids`]) are
    /// read without decoding it.
    pub advisory: AdvisoryRef<'a>,
    /// Which of `advisory.affected` matched: always a valid index.
    affected: usize,
    /// Fixed (with the version), unfixed, will not be fixed, or not affected.
    pub fix_state: FixState,
    /// The version that fixes the installed one, as the feed writes it: the
    /// version of [`FixState::Fixed`], `None` otherwise.
    pub fixed_version: Option<String>,
    /// The vendor's own severity word where the feed has one (Debian urgency,
    /// from the tracker or OSV `ecosystem_specific.urgency`), as given.
    pub vendor_severity: Option<String>,
}

/// What [`AdvisoryMatch::affected`] gives should a stored record fail to
/// decode after its check (which the store's tests rule out).
static NO_ENTRY: Affected = Affected {
    package: None,
    severity: Vec::new(),
    ranges: Vec::new(),
    versions: Vec::new(),
    ecosystem_specific: None,
    database_specific: None,
    vendor: None,
};

impl<'a> AdvisoryMatch<'a> {
    /// A match of `advisory`'s `affected`-th entry, with the verdict on the
    /// installed version; `fixed_version` is taken from `fix_state` and
    /// `vendor_severity` from the entry (OSV `ecosystem_specific.urgency`, or
    /// the vendor statement's). `None` if the record has no such entry.
    pub fn new(
        advisory: impl Into<AdvisoryRef<'a>>,
        affected: usize,
        fix_state: FixState,
    ) -> Option<Self> {
        let advisory = advisory.into();
        let entry = advisory.affected.get(affected)?;
        let vendor_severity = vendor_severity(entry).map(str::to_owned);
        Some(Self::checked(
            advisory,
            affected,
            fix_state,
            vendor_severity,
        ))
    }

    /// A match whose entry the caller has checked exists, with its vendor
    /// severity already read.
    pub(crate) fn checked(
        advisory: AdvisoryRef<'a>,
        affected: usize,
        fix_state: FixState,
        vendor_severity: Option<String>,
    ) -> Self {
        Self {
            fixed_version: fix_state.fixed_version().map(str::to_owned),
            fix_state,
            vendor_severity,
            affected,
            advisory,
        }
    }

    /// The `affected` entry of [`advisory`](Self::advisory) that matched
    /// (decoding a stored record on first use).
    pub fn affected(&self) -> &Affected {
        self.advisory
            .affected
            .get(self.affected)
            .unwrap_or(&NO_ENTRY)
    }

    /// Its position in `advisory.affected`.
    pub fn affected_index(&self) -> usize {
        self.affected
    }
}

impl Serialize for AdvisoryMatch<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("AdvisoryMatch", 5)?;
        s.serialize_field("advisory", &self.advisory)?;
        s.serialize_field("affected", self.affected())?;
        s.serialize_field("fix_state", &self.fix_state)?;
        s.serialize_field("fixed_version", &self.fixed_version)?;
        s.serialize_field("vendor_severity", &self.vendor_severity)?;
        s.end()
    }
}

/// Anything advisories can be matched against: the in-memory [`AdvisoryDb`],
/// or a compiled database read on demand.
pub trait AdvisorySource: Send + Sync {
    /// The advisories affecting an installed package (see [`AdvisoryDb::matches`]).
    fn matches(&self, query: &PackageQuery<'_>) -> Result<Vec<AdvisoryMatch<'_>>, QueryError>;
    /// Whether any record covers the ecosystem, so that a package without
    /// matches can be called unaffected rather than unknown.
    fn has_ecosystem(&self, ecosystem: &str) -> bool;
}

impl AdvisorySource for AdvisoryDb {
    fn matches(&self, query: &PackageQuery<'_>) -> Result<Vec<AdvisoryMatch<'_>>, QueryError> {
        AdvisoryDb::matches(self, query)
    }

    fn has_ecosystem(&self, ecosystem: &str) -> bool {
        AdvisoryDb::has_ecosystem(self, ecosystem)
    }
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
    /// The advisory source itself failed (a damaged compiled database).
    #[error("advisory source failed: {message}")]
    Source {
        /// What failed, naming the file and record.
        message: String,
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
            warnings.extend(db.add_osv_dir(dir.as_ref())?);
        }
        Ok((db, warnings))
    }

    /// Loads OSV directories, Alpine secdb files or directories
    /// ([`secdb::load_path`](crate::secdb::load_path)) and Debian security tracker
    /// JSON files ([`debian_tracker::load_file`](crate::debian_tracker::load_file)).
    ///
    /// Returns the database and every warning; fails only if a path cannot be read.
    pub fn from_paths(
        osv_dirs: &[impl AsRef<Path>],
        secdb_paths: &[impl AsRef<Path>],
        tracker_files: &[impl AsRef<Path>],
    ) -> Result<(Self, Vec<FeedWarning>), FeedError> {
        let (mut db, mut warnings) = Self::from_osv_dirs(osv_dirs)?;
        for path in secdb_paths {
            warnings.extend(db.add_secdb(path.as_ref())?);
        }
        for path in tracker_files {
            warnings.extend(db.add_debian_tracker(path.as_ref())?);
        }
        Ok((db, warnings))
    }

    /// Loads every feed in `feeds` in the order a store is built from them
    /// (OSV directories, the GitHub Advisory Database, secdb, tracker), so
    /// the two answer alike (see [`StoreBuilder::add_paths`](crate::StoreBuilder::add_paths)).
    ///
    /// Returns the database and every warning; fails only if a path cannot be read.
    pub fn from_feed_paths(
        feeds: &crate::FeedPaths,
    ) -> Result<(Self, Vec<FeedWarning>), FeedError> {
        let (mut db, mut warnings) = Self::from_osv_dirs(&feeds.osv_dirs)?;
        for path in &feeds.ghsa_paths {
            warnings.extend(db.add_ghsa(path, &crate::ghsa::GhsaOptions::default())?);
        }
        for path in &feeds.secdb_paths {
            warnings.extend(db.add_secdb(path)?);
        }
        for path in &feeds.debian_tracker_files {
            warnings.extend(db.add_debian_tracker(path)?);
        }
        Ok((db, warnings))
    }

    fn add_osv_dir(&mut self, dir: &Path) -> Result<Vec<FeedWarning>, FeedError> {
        let mut warnings = Vec::new();
        let mut record_warnings = Vec::new();
        osv::load::visit_dir(
            dir,
            &mut |path, advisory| {
                record_warnings.extend(self.add_osv(advisory).into_iter().map(|mut w| {
                    w.path = Some(path.to_owned());
                    w
                }));
            },
            &mut warnings,
        )?;
        warnings.append(&mut record_warnings);
        Ok(warnings)
    }

    /// Adds the GitHub Advisory Database at `path`, a checkout or its archive
    /// zip (see [`ghsa`](crate::ghsa)); returns the warnings.
    pub fn add_ghsa(
        &mut self,
        path: impl AsRef<Path>,
        options: &crate::ghsa::GhsaOptions,
    ) -> Result<Vec<FeedWarning>, FeedError> {
        crate::ghsa::add_all(path.as_ref(), options, &mut |advisory| {
            self.add_osv(advisory)
        })
    }

    /// Adds an Alpine secdb file, or every `*.yaml` / `*.json` file under a
    /// directory (see [`secdb::load_path`](crate::secdb::load_path)).
    pub fn add_secdb(&mut self, path: impl AsRef<Path>) -> Result<Vec<FeedWarning>, FeedError> {
        let load = crate::secdb::load_path(path)?;
        Ok(self.add_converted(load))
    }

    /// Adds a Debian security tracker JSON file (see
    /// [`debian_tracker::load_file`](crate::debian_tracker::load_file)).
    pub fn add_debian_tracker(
        &mut self,
        path: impl AsRef<Path>,
    ) -> Result<Vec<FeedWarning>, FeedError> {
        let load = crate::debian_tracker::load_file(path)?;
        Ok(self.add_converted(load))
    }

    /// Adds records converted from a vendor feed; returns the converter's warnings
    /// and those of compiling its ranges.
    pub fn add_converted(&mut self, load: crate::feed::ConvertedFeed) -> Vec<FeedWarning> {
        let mut warnings = load.warnings;
        for record in load.records {
            let path = record.path;
            warnings.extend(
                self.insert(record.advisory, record.key)
                    .into_iter()
                    .map(|mut w| {
                        w.path = Some(path.clone());
                        w
                    }),
            );
        }
        warnings
    }

    /// Adds one OSV record, replacing an older record with the same id.
    ///
    /// Returns warnings about ranges or listed versions that cannot be evaluated and
    /// were skipped; the rest of the record is still used.
    pub fn add_osv(&mut self, advisory: Advisory) -> Vec<FeedWarning> {
        let key = advisory.id.clone();
        self.insert(advisory, key)
    }

    fn insert(&mut self, advisory: Advisory, key: String) -> Vec<FeedWarning> {
        if let Some(existing) = self.by_key.get(&key) {
            if !is_newer(advisory.modified.as_deref(), existing.modified.as_deref()) {
                return Vec::new();
            }
            if let Some(slot) = existing.slot {
                self.remove_slot(slot);
            }
        }
        if advisory.is_withdrawn() {
            self.by_key.insert(
                key,
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
            let ecosystem = Ecosystem::parse(&package.ecosystem);
            let compiled = ecosystem.scheme().map(|scheme| {
                let mut reasons = Vec::new();
                let compiled = CompiledAffected::compile(scheme, affected, &mut reasons);
                warnings.extend(reasons.into_iter().map(|reason| FeedWarning {
                    path: None,
                    record: Some(RecordRef::Id(advisory.id.clone())),
                    reason,
                }));
                compiled
            });
            if compiled.is_none() {
                warnings.push(FeedWarning {
                    path: None,
                    record: Some(RecordRef::Id(advisory.id.clone())),
                    reason: WarningReason::UnknownEcosystem {
                        package: package.name.clone(),
                        ecosystem: package.ecosystem.clone(),
                    },
                });
            }
            self.index
                .entry(ecosystem.as_str().to_owned())
                .or_default()
                .entry(canonical::package_name(ecosystem.as_str(), &package.name).into_owned())
                .or_default()
                .push(IndexEntry {
                    slot,
                    affected: i,
                    compiled,
                });
        }
        self.by_key.insert(
            key,
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

    /// The live OSV record with this id. Records converted from vendor feeds
    /// share CVE ids across packages and are reached through matching instead.
    pub fn get(&self, id: &str) -> Option<&Advisory> {
        let slot = self.by_key.get(id)?.slot?;
        self.slots.get(slot)?.as_ref()
    }

    /// Whether any live record covers the ecosystem (`Debian:12`), so that a
    /// package without matches can be called unaffected rather than unknown.
    pub fn has_ecosystem(&self, ecosystem: &str) -> bool {
        let ecosystem = Ecosystem::parse(ecosystem);
        [ecosystem.as_str(), ecosystem.distro()].iter().any(|key| {
            self.index
                .get(*key)
                .is_some_and(|names| names.values().any(|e| !e.is_empty()))
        })
    }

    /// The advisories affecting an installed package, ordered by advisory id.
    ///
    /// A query for `Debian:12` sees records for `Debian:12` (and `Debian:12.x`) and
    /// records for the release-less `Debian`. One advisory yields one match per
    /// matching `affected` entry. Vendor statements that the package is not
    /// affected are left out, and so is every match for a vulnerability (id, alias
    /// or upstream id) that such a statement covers.
    pub fn matches(&self, query: &PackageQuery<'_>) -> Result<Vec<AdvisoryMatch<'_>>, QueryError> {
        let all = self.assess(query)?;
        let not_affected: HashSet<String> = all
            .iter()
            .filter(|m| !m.fix_state.is_affected())
            .flat_map(|m| m.advisory.ids().map(str::to_owned))
            .collect();
        Ok(all
            .into_iter()
            .filter(|m| {
                m.fix_state.is_affected() && !m.advisory.ids().any(|id| not_affected.contains(id))
            })
            .collect())
    }

    /// Every statement about an installed package, ordered by advisory id:
    /// [`matches`](Self::matches) plus [`FixState::NotAffected`] statements, with
    /// nothing suppressed.
    pub fn assess(&self, query: &PackageQuery<'_>) -> Result<Vec<AdvisoryMatch<'_>>, QueryError> {
        let prepared = PreparedQuery::new(query)?;
        let installed = &prepared.installed;
        let keys = prepared.keys();
        let name = canonical::package_name(query.ecosystem, query.name);

        let mut found = Vec::new();
        for key in keys {
            let Some(entries) = self
                .index
                .get(key)
                .and_then(|names| names.get(name.as_ref()))
            else {
                continue;
            };
            for entry in entries {
                let Some(compiled) = &entry.compiled else {
                    continue;
                };
                let Some(advisory) = self.slots.get(entry.slot).and_then(Option::as_ref) else {
                    continue;
                };
                let Some(affected) = advisory.affected.get(entry.affected) else {
                    continue;
                };
                let vendor_status = affected.vendor.as_ref().and_then(|v| v.status);
                let fix_state = if vendor_status == Some(VendorStatus::NotAffected) {
                    FixState::NotAffected
                } else {
                    let Some(verdict) = compiled.evaluate(installed) else {
                        continue;
                    };
                    match verdict.fixed {
                        Some(version) => FixState::Fixed(version),
                        None if vendor_status == Some(VendorStatus::WillNotFix) => {
                            FixState::WillNotFix
                        }
                        None => FixState::Unfixed,
                    }
                };
                found.extend(AdvisoryMatch::new(advisory, entry.affected, fix_state));
            }
        }
        found.sort_by(|a, b| a.advisory.id().cmp(b.advisory.id()));
        Ok(found)
    }

    fn remove_slot(&mut self, slot: usize) {
        let Some(old) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        self.live -= 1;
        for package in old.affected.iter().filter_map(|a| a.package.as_ref()) {
            let ecosystem = Ecosystem::parse(&package.ecosystem);
            if let Some(entries) = self.index.get_mut(ecosystem.as_str()).and_then(|names| {
                names.get_mut(canonical::package_name(ecosystem.as_str(), &package.name).as_ref())
            }) {
                entries.retain(|e| e.slot != slot);
            }
        }
    }
}

/// The vendor's severity word: a converter's statement, else the `urgency` that
/// osv.dev's Debian records carry in `ecosystem_specific`.
pub(crate) fn vendor_severity(affected: &Affected) -> Option<&str> {
    affected
        .vendor
        .as_ref()
        .and_then(|v| v.severity.as_deref())
        .or_else(|| {
            affected
                .ecosystem_specific
                .as_ref()
                .and_then(|v| v.get("urgency"))
                .and_then(|v| v.as_str())
        })
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

    /// A match of a shared record names its entry by position: clones share
    /// the record, `affected()` is that entry, and the serialized match still
    /// carries the entry itself.
    #[test]
    fn matches_share_their_record() {
        let advisory: Advisory = serde_json::from_value(serde_json::json!({
            "id": "X-1",
            "affected": [
                {"package": {"ecosystem": "npm", "name": "a"}, "versions": ["1.0.0"]},
                {"package": {"ecosystem": "npm", "name": "b"}, "versions": ["2.0.0", "2.0.1"],
                 "ecosystem_specific": {"urgency": "high"}}
            ]
        }))
        .expect("valid OSV");
        let shared = Arc::new(advisory);
        let fixed = FixState::Fixed("2.0.2".into());
        let m = AdvisoryMatch::new(shared.clone(), 1, fixed).expect("entry 1");
        assert_eq!(m.affected().package.as_ref().unwrap().name, "b");
        assert_eq!(m.affected_index(), 1);
        assert_eq!(m.fixed_version.as_deref(), Some("2.0.2"));
        assert_eq!(m.vendor_severity.as_deref(), Some("high"));
        assert_eq!(m.advisory.id(), "X-1");
        assert!(m.advisory.is_decoded());
        let copy = m.clone();
        assert!(m.advisory.same_record(&copy.advisory));
        assert_eq!(Arc::strong_count(&shared), 3);
        let other = AdvisoryMatch::new(Arc::new((*shared).clone()), 1, FixState::Unfixed).unwrap();
        assert!(!m.advisory.same_record(&other.advisory));
        let json = serde_json::to_value(&m).expect("serializes");
        assert_eq!(
            json["affected"]["versions"],
            serde_json::json!(["2.0.0", "2.0.1"])
        );
        assert_eq!(json["advisory"]["id"], "X-1");
        assert!(AdvisoryMatch::new(&*shared, 2, FixState::Unfixed).is_none());
        let borrowed = AdvisoryMatch::new(&*shared, 0, FixState::Unfixed).unwrap();
        assert!(borrowed.advisory.same_record(&borrowed.clone().advisory));
        assert_eq!(borrowed.vendor_severity, None);
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
