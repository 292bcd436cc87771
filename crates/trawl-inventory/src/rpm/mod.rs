//! The rpm package database, read directly from its files (never by running
//! rpm), in all three of its storage backends:
//!
//! | file | backend | distributions |
//! |---|---|---|
//! | `rpmdb.sqlite` | [`sqlite`] | Fedora 33+, RHEL 9, CBL-Mariner / Azure Linux, Amazon Linux 2023 |
//! | `Packages.db` | [`ndb`], rpm's own format | SUSE, openSUSE |
//! | `Packages` | [`bdb`], Berkeley DB hash | CentOS / RHEL ≤ 8, Amazon Linux 2 |
//!
//! Each stores one [header blob](header) per installed package
//! (<https://rpm-software-management.github.io/rpm/manual/format_header.html>).
//! The database lives in `/var/lib/rpm/` or `/usr/lib/sysimage/rpm/` (Fedora
//! and SUSE link the former to the latter; the merged view follows the link).
//!
//! ```
//! use trawl_inventory::rpm::{read_packages, RpmDbKind};
//! let db = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"),
//!     "/../../../shared/fixtures/rpm/libuuid-bdb/Packages")).unwrap();
//! let headers = read_packages(RpmDbKind::BerkeleyDb, &db).unwrap();
//! let libuuid = headers[0].as_ref().unwrap();
//! assert_eq!((libuuid.name.as_str(), libuuid.evr().as_str()), ("libuuid", "2.32.1-42.el8_8"));
//! ```

pub mod bdb;
pub mod header;
pub mod ndb;
pub mod sqlite;

use std::collections::HashSet;
use std::ops::ControlFlow;

use trawl_layers::{MergedFs, Selection};

pub use bdb::{BdbError, BdbHash, BdbPair};
pub use header::{HeaderError, RpmHeader};
pub use ndb::{NdbBlob, NdbError, read_ndb};
pub use sqlite::{SqliteError, read_sqlite};

use crate::layer_attribution;
use crate::os::OsRelease;
use crate::package::{Package, PackageKind};
use crate::skipped::{EntryLog, oversized};
use crate::{Cataloger, Inventory, InventoryWarning};

/// Where rpm keeps its database, newest convention first.
const DB_DIRS: [&str; 2] = ["usr/lib/sysimage/rpm", "var/lib/rpm"];

/// The database files, by backend. When an image holds several (a database
/// converted to a newer backend and its leftover predecessor), the newest
/// backend is the one rpm uses.
const DB_FILES: [(&str, RpmDbKind); 3] = [
    ("rpmdb.sqlite", RpmDbKind::Sqlite),
    ("Packages.db", RpmDbKind::Ndb),
    ("Packages", RpmDbKind::BerkeleyDb),
];

/// The pseudo-package rpm records for each imported signing key.
const GPG_PUBKEY: &str = "gpg-pubkey";

/// An rpm database backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RpmDbKind {
    /// `rpmdb.sqlite`.
    Sqlite,
    /// `Packages.db`.
    Ndb,
    /// `Packages`.
    BerkeleyDb,
}

/// At most this many entries (packages, readable or not) are read from one
/// rpm database; the largest real installations hold a few thousand.
pub const MAX_ENTRIES: usize = 100_000;

/// Why an rpm database, or one package in it, could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RpmDbError {
    /// The SQLite backend.
    #[error(transparent)]
    Sqlite(#[from] SqliteError),
    /// The NDB backend.
    #[error(transparent)]
    Ndb(#[from] NdbError),
    /// The Berkeley DB backend.
    #[error(transparent)]
    Bdb(#[from] BdbError),
    /// A package's header blob.
    #[error("rpm header: {0}")]
    Header(#[from] HeaderError),
    /// The database holds more than [`MAX_ENTRIES`] entries: the rest were
    /// not read. Always the last entry.
    #[error("more than {0} entries: the rest of the database is not read")]
    TooManyEntries(usize),
}

/// Reads every package header of a database file, in the database's order.
/// The outer error means the file as a whole is unreadable; an inner error
/// is one package that could not be read while the others were. After
/// [`MAX_ENTRIES`] entries, a last [`RpmDbError::TooManyEntries`] ends the
/// list.
pub fn read_packages(
    kind: RpmDbKind,
    data: &[u8],
) -> Result<Vec<Result<RpmHeader, RpmDbError>>, RpmDbError> {
    let mut out = Vec::new();
    visit_packages(kind, data, |entry| out.push(entry))?;
    Ok(out)
}

/// [`read_packages`], handing each entry to `visit` as it is parsed.
fn visit_packages(
    kind: RpmDbKind,
    data: &[u8],
    mut visit: impl FnMut(Result<RpmHeader, RpmDbError>),
) -> Result<(), RpmDbError> {
    let mut seen = 0usize;
    // Counts entries; past the cap, says so once and asks the reader to stop.
    let mut visit = |entry: Result<&[u8], RpmDbError>| {
        if seen == MAX_ENTRIES {
            visit(Err(RpmDbError::TooManyEntries(MAX_ENTRIES)));
            return ControlFlow::Break(());
        }
        seen += 1;
        visit(entry.and_then(|blob| RpmHeader::parse(blob).map_err(RpmDbError::from)));
        ControlFlow::Continue(())
    };
    match kind {
        RpmDbKind::Sqlite => {
            for blob in read_sqlite(data)? {
                if visit(blob.as_deref().map_err(|e| e.clone().into())).is_break() {
                    break;
                }
            }
        }
        RpmDbKind::Ndb => {
            for blob in read_ndb(data)? {
                if visit(blob.map(|b| b.data).map_err(RpmDbError::from)).is_break() {
                    break;
                }
            }
        }
        RpmDbKind::BerkeleyDb => {
            // Parsed one by one: each value's buffer is freed before the next.
            BdbHash::open(data)?.visit_pairs(|pair| match pair {
                // rpm keeps its next header number under key 0; it is no package.
                Ok((key, _)) if key.iter().all(|&b| b == 0) => ControlFlow::Continue(()),
                Ok((_, value)) => visit(Ok(&value)),
                Err(e) => visit(Err(e.into())),
            });
        }
    }
    Ok(())
}

/// Reads the rpm database.
#[derive(Debug, Clone, Copy, Default)]
pub struct RpmCataloger;

/// What identifies an installed package at one version.
type Key = (String, Option<u32>, String, String, Option<String>);

fn key(h: &RpmHeader) -> Key {
    (
        h.name.clone(),
        h.epoch,
        h.version.clone(),
        h.release.clone(),
        h.arch.clone(),
    )
}

impl Cataloger for RpmCataloger {
    fn name(&self) -> &'static str {
        "rpm"
    }

    fn selection(&self) -> Selection {
        let mut sel = Selection::new();
        for dir in DB_DIRS {
            for (file, _) in DB_FILES {
                sel.add_path(&format!("{dir}/{file}"));
            }
        }
        sel
    }

    fn catalog(&self, fs: &MergedFs, os: Option<&OsRelease>, inv: &mut Inventory) {
        let mut tried = HashSet::new();
        let mut failed = Vec::new();
        for (file, kind) in DB_FILES {
            for dir in DB_DIRS {
                let Some(f) = fs.file(&format!("{dir}/{file}")) else {
                    continue;
                };
                // Both directories may be one through a symlink.
                if !tried.insert(f.path) {
                    continue;
                }
                match read_packages(kind, f.data) {
                    Ok(entries) => {
                        // A newer backend's file that is not that backend at
                        // all (a leftover, something else under the name)
                        // does not make the inventory incomplete; one that is
                        // but could not be read is the database rpm uses.
                        inv.warnings.extend(failed.into_iter().map(|(database, e)| {
                            if is_other_format(&e) {
                                InventoryWarning::MalformedEntry {
                                    database,
                                    line: 0,
                                    reason: format!("database unreadable: {e}"),
                                }
                            } else {
                                InventoryWarning::UnreadableDatabase {
                                    database,
                                    reason: e.to_string(),
                                }
                            }
                        }));
                        add_packages(fs, f.path, (kind, f.data), entries, os, inv);
                        return;
                    }
                    Err(e) => failed.push((f.path.to_string(), e)),
                }
            }
        }
        inv.warnings.extend(failed.into_iter().map(|(database, e)| {
            InventoryWarning::UnreadableDatabase {
                database,
                reason: e.to_string(),
            }
        }));
    }
}

/// Whether a whole-file error says the file is not of its backend's format
/// at all, rather than one that could not be read.
fn is_other_format(e: &RpmDbError) -> bool {
    matches!(
        e,
        RpmDbError::Sqlite(SqliteError::NotSqlite | SqliteError::NotRpmDb)
            | RpmDbError::Ndb(NdbError::BadHeader(_))
            | RpmDbError::Bdb(BdbError::NotHash(_))
    )
}

fn add_packages(
    fs: &MergedFs,
    path: &str,
    (kind, data): (RpmDbKind, &[u8]),
    entries: Vec<Result<RpmHeader, RpmDbError>>,
    os: Option<&OsRelease>,
    inv: &mut Inventory,
) {
    inv.databases.push(path.to_string());
    let mut log = EntryLog::new(path);
    let mut headers = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        match entry {
            Ok(h) if h.name == GPG_PUBKEY => log.read(),
            Ok(h) => match oversized([
                ("NAME", Some(h.name.as_str())),
                ("VERSION", Some(h.version.as_str())),
                ("RELEASE", Some(h.release.as_str())),
                ("ARCH", h.arch.as_deref()),
                ("SOURCERPM", h.source_rpm.as_deref()),
                ("LICENSE", h.license.as_deref()),
                ("VENDOR", h.vendor.as_deref()),
                ("MODULARITYLABEL", h.modularity_label.as_deref()),
            ]) {
                Some(reason) => log.skip(i + 1, || reason),
                None => {
                    log.read();
                    headers.push(h);
                }
            },
            Err(e @ RpmDbError::TooManyEntries(_)) => log.stop(e.to_string()),
            Err(e) => log.skip(i + 1, || e.to_string()),
        }
    }
    log.finish(inv);
    let keys: Vec<Key> = headers.iter().map(key).collect();
    let current: HashSet<Key> = keys.iter().cloned().collect();
    let layers = layer_attribution::attribute(&fs.history(path), &keys, |version| {
        // The newest version is the database just read: do not parse it twice.
        if std::ptr::eq(version, data) {
            return current.clone();
        }
        read_packages(kind, version)
            .map(|entries| entries.iter().flatten().map(key).collect())
            .unwrap_or_default()
    });
    let namespace = purl_namespace(os);
    for h in headers {
        let evr = h.evr();
        let (source_name, source_version) =
            h.source().unwrap_or_else(|| (h.name.clone(), evr.clone()));
        inv.packages.push(Package {
            kind: PackageKind::Rpm,
            purl: purl(&h, namespace, os),
            layer: layers.get(&key(&h)).cloned().flatten(),
            database: path.to_string(),
            maintainer: None,
            source_name,
            source_version,
            version: evr,
            name: h.name,
            arch: h.arch,
            license: h.license,
            epoch: h.epoch,
            release: Some(h.release),
            vendor: h.vendor,
            modularity_label: h.modularity_label,
            database_line: None,
            nested: Vec::new(),
            found_by: None,
            role: None,
            owned_by: None,
        });
    }
}

/// The purl namespace: the distribution's id, as advisory feeds and SBOM tools
/// name it; `redhat` for RHEL and when the OS is unknown.
fn purl_namespace(os: Option<&OsRelease>) -> &str {
    match os.map(|o| o.id.as_str()) {
        None | Some("") | Some("rhel") => "redhat",
        Some(id) if id.starts_with("opensuse") => "opensuse",
        Some(id) => id,
    }
}

/// `pkg:rpm/<namespace>/<name>@<version>-<release>?arch=<arch>&epoch=<epoch>&distro=<id>-<version_id>`
/// (<https://github.com/package-url/purl-spec/blob/main/PURL-TYPES.rst#rpm>).
fn purl(h: &RpmHeader, namespace: &str, os: Option<&OsRelease>) -> String {
    crate::package::distro_purl(
        crate::package::PurlParts {
            kind: "rpm",
            namespace,
            name: &h.name,
            version: &format!("{}-{}", h.version, h.release),
            arch: h.arch.as_deref(),
            epoch: h.epoch,
        },
        os,
    )
}

/// Calls `visit` with every package header blob of the rpm database rpm would
/// use (the newest backend present that can be read), in database order, at
/// most [`MAX_ENTRIES`] of them; `false` when there is no readable database.
/// For readers that need more of a header than [`RpmHeader`] keeps, such as
/// its file list.
pub(crate) fn visit_header_blobs(fs: &MergedFs, mut visit: impl FnMut(&[u8])) -> bool {
    let mut tried = HashSet::new();
    for (file, kind) in DB_FILES {
        for dir in DB_DIRS {
            let Some(f) = fs.file(&format!("{dir}/{file}")) else {
                continue;
            };
            if !tried.insert(f.path) {
                continue;
            }
            let mut seen = 0usize;
            let mut each = |blob: &[u8]| {
                if seen == MAX_ENTRIES {
                    return ControlFlow::Break(());
                }
                seen += 1;
                visit(blob);
                ControlFlow::Continue(())
            };
            let ok = match kind {
                RpmDbKind::Sqlite => read_sqlite(f.data)
                    .map(|blobs| {
                        for blob in blobs.into_iter().flatten() {
                            if each(&blob).is_break() {
                                break;
                            }
                        }
                    })
                    .is_ok(),
                RpmDbKind::Ndb => read_ndb(f.data)
                    .map(|blobs| {
                        for blob in blobs.into_iter().flatten() {
                            if each(blob.data).is_break() {
                                break;
                            }
                        }
                    })
                    .is_ok(),
                RpmDbKind::BerkeleyDb => BdbHash::open(f.data)
                    .map(|db| {
                        db.visit_pairs(|pair| match pair {
                            Ok((key, _)) if key.iter().all(|&b| b == 0) => {
                                ControlFlow::Continue(())
                            }
                            Ok((_, value)) => each(&value),
                            Err(_) => ControlFlow::Continue(()),
                        })
                    })
                    .is_ok(),
            };
            if ok {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purl_forms() {
        let h = RpmHeader {
            name: "openssl-libs".into(),
            epoch: Some(1),
            version: "3.0.7".into(),
            release: "1.el9".into(),
            arch: Some("x86_64".into()),
            ..RpmHeader::default()
        };
        let rocky = OsRelease {
            id: "rocky".into(),
            version_id: Some("9.3".into()),
            ..OsRelease::default()
        };
        assert_eq!(
            purl(&h, purl_namespace(Some(&rocky)), Some(&rocky)),
            "pkg:rpm/rocky/openssl-libs@3.0.7-1.el9?arch=x86_64&distro=rocky-9.3&epoch=1"
        );
        assert_eq!(
            purl(&h, purl_namespace(None), None),
            "pkg:rpm/redhat/openssl-libs@3.0.7-1.el9?arch=x86_64&epoch=1"
        );
        let leap = OsRelease {
            id: "opensuse-leap".into(),
            ..OsRelease::default()
        };
        assert_eq!(purl_namespace(Some(&leap)), "opensuse");
    }
}
