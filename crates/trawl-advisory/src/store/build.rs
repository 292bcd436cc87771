//! Building a store: feeds in, one file out, replaced atomically.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

use super::affected::CompiledAffected;
use super::record::{StoredEntry, encode_advisory, encode_entry, encode_package};
use super::{
    APPLICATION_ID, ContentHasher, FORMAT_NAME, SCHEMA, SCHEMA_VERSION, StoreError, StoreInfo,
    package_key,
};
use crate::ecosystem::Ecosystem;
use crate::feed::{ConvertedFeed, FeedError, FeedWarning, RecordRef, WarningReason};
use crate::osv::{self, Advisory};

/// Collects advisories from feeds, exactly as [`AdvisoryDb`](crate::AdvisoryDb)
/// would hold them, and writes them as one store file.
///
/// The same rules decide which copy of a record survives (the later `modified`
/// wins, a newer withdrawn copy removes an older live one, vendor records are
/// told apart by their source), and the same warnings are returned, so a store
/// answers every query exactly as an `AdvisoryDb` loaded from the same feeds.
/// Records are encoded as they arrive: the builder holds compact bytes, not
/// parsed records.
#[derive(Debug, Default)]
pub struct StoreBuilder {
    slots: Vec<Option<Pending>>,
    by_key: HashMap<String, KeyState>,
    live: usize,
    /// `GIT` ranges skipped, recorded in the store's `meta`.
    git_ranges: u64,
}

#[derive(Debug)]
struct KeyState {
    slot: Option<usize>,
    modified: Option<String>,
}

#[derive(Debug)]
struct Pending {
    data: Vec<u8>,
    /// (normalised ecosystem, package, affected index, match entry; `None` when
    /// the ecosystem has no version scheme).
    entries: Vec<(String, String, u32, Option<Vec<u8>>)>,
}

/// The feeds a store is built from, as paths on disk.
#[derive(Debug, Clone, Default)]
pub struct FeedPaths {
    /// Directories of OSV records (see [`osv::load_dir`]).
    pub osv_dirs: Vec<PathBuf>,
    /// Alpine secdb files or directories (see [`secdb::load_path`](crate::secdb::load_path)).
    pub secdb_paths: Vec<PathBuf>,
    /// Debian security tracker JSON files (see
    /// [`debian_tracker::load_file`](crate::debian_tracker::load_file)).
    pub debian_tracker_files: Vec<PathBuf>,
    /// The GitHub Advisory Database: checkouts or archive zips, reviewed
    /// advisories only (see [`ghsa`](crate::ghsa)).
    pub ghsa_paths: Vec<PathBuf>,
}

impl StoreBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every feed in `feeds`, in the order [`AdvisoryDb::from_paths`](crate::AdvisoryDb::from_paths)
    /// uses; returns the warnings. Fails only if a path cannot be read.
    pub fn add_paths(&mut self, feeds: &FeedPaths) -> Result<Vec<FeedWarning>, FeedError> {
        let mut warnings = Vec::new();
        for dir in &feeds.osv_dirs {
            warnings.extend(self.add_osv_dir(dir)?);
        }
        for path in &feeds.ghsa_paths {
            warnings.extend(self.add_ghsa(path, &crate::ghsa::GhsaOptions::default())?);
        }
        for path in &feeds.secdb_paths {
            warnings.extend(self.add_converted(crate::secdb::load_path(path)?));
        }
        for path in &feeds.debian_tracker_files {
            warnings.extend(self.add_converted(crate::debian_tracker::load_file(path)?));
        }
        Ok(warnings)
    }

    /// Adds every OSV record under `dir` (see [`osv::load_dir`]).
    pub fn add_osv_dir(&mut self, dir: impl AsRef<Path>) -> Result<Vec<FeedWarning>, FeedError> {
        let mut warnings = Vec::new();
        let mut record_warnings = Vec::new();
        osv::load::visit_dir(
            dir.as_ref(),
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
    /// zip (see [`ghsa`](crate::ghsa)).
    pub fn add_ghsa(
        &mut self,
        path: impl AsRef<Path>,
        options: &crate::ghsa::GhsaOptions,
    ) -> Result<Vec<FeedWarning>, FeedError> {
        crate::ghsa::add_all(path.as_ref(), options, &mut |advisory| {
            self.add_osv(advisory)
        })
    }

    /// Adds records converted from a vendor feed (Alpine secdb, Debian tracker).
    pub fn add_converted(&mut self, feed: ConvertedFeed) -> Vec<FeedWarning> {
        let mut warnings = feed.warnings;
        for record in feed.records {
            let path = record.path;
            warnings.extend(
                self.insert(&record.advisory, record.key)
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
    pub fn add_osv(&mut self, advisory: Advisory) -> Vec<FeedWarning> {
        let key = advisory.id.clone();
        self.insert(&advisory, key)
    }

    /// The number of live records so far.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no live record has been added.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    // Mirrors `AdvisoryDb::insert`; the store tests hold both to identical answers.
    fn insert(&mut self, advisory: &Advisory, key: String) -> Vec<FeedWarning> {
        if let Some(existing) = self.by_key.get(&key) {
            if !is_newer(advisory.modified.as_deref(), existing.modified.as_deref()) {
                return Vec::new();
            }
            if let Some(slot) = existing.slot
                && self.slots.get_mut(slot).and_then(Option::take).is_some()
            {
                self.live -= 1;
            }
        }
        if advisory.is_withdrawn() {
            self.by_key.insert(
                key,
                KeyState {
                    slot: None,
                    modified: advisory.modified.clone(),
                },
            );
            return Vec::new();
        }
        let mut warnings = Vec::new();
        let mut entries = Vec::new();
        for (i, affected) in advisory.affected.iter().enumerate() {
            let Some(package) = &affected.package else {
                continue;
            };
            let ecosystem = Ecosystem::parse(&package.ecosystem);
            let entry = match ecosystem.scheme() {
                Some(scheme) => {
                    let mut reasons = Vec::new();
                    let compiled = CompiledAffected::compile(scheme, affected, &mut reasons);
                    self.git_ranges += reasons
                        .iter()
                        .filter(|r| matches!(r, WarningReason::GitRange { .. }))
                        .count() as u64;
                    warnings.extend(reasons.into_iter().map(|reason| FeedWarning {
                        path: None,
                        record: Some(RecordRef::Id(advisory.id.clone())),
                        reason,
                    }));
                    let status = affected.vendor.as_ref().and_then(|v| v.status);
                    Some(encode_entry(status, &compiled))
                }
                None => {
                    warnings.push(FeedWarning {
                        path: None,
                        record: Some(RecordRef::Id(advisory.id.clone())),
                        reason: WarningReason::UnknownEcosystem {
                            package: package.name.clone(),
                            ecosystem: package.ecosystem.clone(),
                        },
                    });
                    None
                }
            };
            // An index position beyond u32 cannot come from a real record; such an
            // entry could not be addressed, so it is not indexed.
            let Ok(index) = u32::try_from(i) else {
                continue;
            };
            entries.push((
                ecosystem.as_str().to_owned(),
                crate::canonical::package_name(ecosystem.as_str(), &package.name).into_owned(),
                index,
                entry,
            ));
        }
        let slot = self.slots.len();
        self.slots.push(Some(Pending {
            data: encode_advisory(advisory),
            entries,
        }));
        self.by_key.insert(
            key,
            KeyState {
                slot: Some(slot),
                modified: advisory.modified.clone(),
            },
        );
        self.live += 1;
        warnings
    }

    /// Writes the store to `path`: to a temporary file beside it, then renamed
    /// over it, so readers see the old file or the new one, never a partial one.
    pub fn write(self, path: impl AsRef<Path>) -> Result<StoreInfo, StoreError> {
        let path = path.as_ref();
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let io = |source| StoreError::Io {
            path: path.to_owned(),
            source,
        };
        let temp = tempfile::Builder::new()
            .prefix(".trawl-db-")
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(io)?;
        let info = self.write_sqlite(temp.path()).map_err(|e| match e {
            WriteError::Sqlite(message) => StoreError::Write {
                path: path.to_owned(),
                message,
            },
        })?;
        temp.as_file().sync_all().map_err(io)?;
        #[cfg(unix)]
        {
            // tempfile creates 0600; a database is meant to be shared like a package
            // index.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o644))
                .map_err(io)?;
        }
        temp.persist(path).map_err(|e| io(e.error))?;
        // Make the rename itself durable.
        #[cfg(unix)]
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        Ok(info)
    }

    fn write_sqlite(self, temp: &Path) -> Result<StoreInfo, WriteError> {
        let mut conn = Connection::open(temp)?;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA page_size = 4096;
             PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};
             {SCHEMA}"
        ))?;
        let mut hasher = ContentHasher::default();
        // `ord` (insertion order among live records) orders a package's entries
        // as `AdvisoryDb` does; `seq` (where the record sits) follows the first
        // package it names, so the records one query reads share pages.
        let live: Vec<Pending> = self.slots.into_iter().flatten().collect();
        let mut placement: Vec<usize> = (0..live.len()).collect();
        placement.sort_by(|&a, &b| {
            let key = |i: usize| live[i].entries.first().map(|e| (&e.0, &e.1));
            // Records without entries (no package) go last.
            (key(a).is_none(), key(a), a).cmp(&(key(b).is_none(), key(b), b))
        });
        let mut seq_of = vec![0i64; live.len()];
        let tx = conn.transaction()?;
        let mut records = 0u64;
        {
            let mut insert = tx.prepare("INSERT INTO records (seq, data) VALUES (?1, ?2)")?;
            for (seq, &ord) in placement.iter().enumerate() {
                let seq = seq as i64;
                seq_of[ord] = seq;
                insert.execute(params![seq, live[ord].data])?;
                hasher.record(seq, &live[ord].data);
                records += 1;
            }
        }
        // Ecosystems, sorted, with their entry counts; an ecosystem's position
        // is the high part of its packages' keys.
        let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
        for pending in &live {
            for (ecosystem, ..) in &pending.entries {
                match counts.get_mut(ecosystem.as_str()) {
                    Some(count) => *count += 1,
                    None => {
                        counts.insert(ecosystem.clone(), 1);
                    }
                }
            }
        }
        let index: HashMap<&str, u32> = counts
            .keys()
            .enumerate()
            .map(|(i, key)| (key.as_str(), i as u32))
            .collect();
        let mut entries = Vec::new();
        for (ord, pending) in live.iter().enumerate() {
            for (ecosystem, name, affected, entry) in &pending.entries {
                let key = package_key(index[ecosystem.as_str()], name);
                entries.push((
                    key,
                    ecosystem.as_str(),
                    name.as_str(),
                    ord,
                    StoredEntry {
                        affected: *affected,
                        seq: seq_of[ord],
                        entry: entry.as_deref(),
                    },
                ));
            }
        }
        // One row per key: its packages (one, unless names collide) by
        // ecosystem and name, each one's entries in insertion order (`ord`,
        // then position in the record), as `AdvisoryDb` answers them.
        entries.sort_unstable_by(|a, b| {
            (a.0, a.1, a.2, a.3, a.4.affected).cmp(&(b.0, b.1, b.2, b.3, b.4.affected))
        });
        let entry_count = entries.len() as u64;
        {
            let mut insert = tx.prepare("INSERT INTO packages (key, data) VALUES (?1, ?2)")?;
            let mut rest = entries.as_slice();
            while let Some(first) = rest.first() {
                let key = first.0;
                let end = rest.iter().position(|e| e.0 != key).unwrap_or(rest.len());
                let (row, after) = rest.split_at(end);
                rest = after;
                let mut packages: Vec<(&str, &str, Vec<StoredEntry<'_>>)> = Vec::new();
                for (_, ecosystem, name, _, entry) in row {
                    match packages.last_mut() {
                        Some((e, n, list)) if e == ecosystem && n == name => list.push(*entry),
                        _ => packages.push((ecosystem, name, vec![*entry])),
                    }
                }
                let data = encode_package(&packages);
                insert.execute(params![key, data])?;
                hasher.package(key, &data);
            }
        }
        let ecosystems: Vec<(String, u64)> = counts.into_iter().collect();
        let mut ecosystems_hash = Sha256::new();
        {
            let mut insert = tx.prepare("INSERT INTO ecosystems (key, entries) VALUES (?1, ?2)")?;
            for (key, count) in &ecosystems {
                insert.execute(params![key, *count as i64])?;
                super::hash_ecosystem(&mut ecosystems_hash, key, *count);
            }
        }
        let content = hasher.finish(&ecosystems_hash.clone().finalize());
        let ecosystems_sha256 = hex::encode(ecosystems_hash.finalize());
        let info = StoreInfo {
            schema_version: SCHEMA_VERSION,
            records,
            entries: entry_count,
            ecosystems,
            content_sha256: content,
            ecosystems_sha256,
            built_by: format!("trawl-advisory {}", env!("CARGO_PKG_VERSION")),
            built_at: Some(build_time()),
            skipped_git_ranges: Some(self.git_ranges),
        };
        {
            let mut insert = tx.prepare("INSERT INTO meta (key, value) VALUES (?1, ?2)")?;
            for (key, value) in [
                ("format", FORMAT_NAME.to_owned()),
                ("schema_version", SCHEMA_VERSION.to_string()),
                ("records", info.records.to_string()),
                ("entries", info.entries.to_string()),
                ("content_sha256", info.content_sha256.clone()),
                ("ecosystems_sha256", info.ecosystems_sha256.clone()),
                ("built_by", info.built_by.clone()),
                ("built_at", info.built_at.unwrap_or_default().to_string()),
                ("skipped_git_ranges", self.git_ranges.to_string()),
            ] {
                insert.execute(params![key, value])?;
            }
        }
        tx.commit()?;
        conn.close().map_err(|(_, e)| e)?;
        Ok(info)
    }
}

/// The build time recorded in `meta.built_at`: `SOURCE_DATE_EPOCH` (seconds,
/// <https://reproducible-builds.org/specs/source-date-epoch/>) when set and
/// valid, else the clock.
fn build_time() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        })
}

enum WriteError {
    Sqlite(String),
}

impl From<rusqlite::Error> for WriteError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(e.to_string())
    }
}

/// Whether RFC 3339 time `a` is later than `b`; a missing time is the earliest.
///
/// The same comparison as `AdvisoryDb` makes (private there): the
/// `YYYY-MM-DDTHH:MM:SS` prefix as text, then the fraction as a decimal.
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
