//! apk's installed-package database, `/lib/apk/db/installed`, as Alpine,
//! Wolfi and Chainguard images carry it.
//!
//! The format is apk-tools' "FDB" text database
//! (<https://wiki.alpinelinux.org/wiki/Apk_spec#Installed_Database_V2>): one
//! record per installed package, records separated by blank lines, each line a
//! one-letter field tag, a colon and the value (`P:musl`, `V:1.2.3-r4`). The
//! package fields are the index fields (`P` name, `V` version, `A` arch, `o`
//! origin, i.e. the source package, `m` maintainer, `L` license, ...); the
//! file list (`F:` directories, `R:` files, `Z:` checksums, `a:`/`M:` ACLs)
//! follows in the same record.
//!
//! Where this reader follows apk-tools (`apk_db_fdb_read` and
//! `apk_pkgtmpl_add_info` in apk-tools 2.x and 3.x):
//! - lines are split on `\n` only, and a line shorter than two bytes ends the
//!   record, as it does there;
//! - a repeated field overwrites the earlier value (last wins), because
//!   apk-tools assigns each field as it reads it.
//!
//! Where it is deliberately more lenient, because a scanner should report
//! what it can: apk-tools rejects the whole database on a line that is not
//! `X:value` or a record without a name or version; here such a line is
//! skipped, such a record is skipped, each with an [`ApkEntryError`], and the
//! rest of the database still loads.
//!
//! The parser is written here: the format is a few lines of splitting, and no
//! maintained crate reads it.

use std::collections::HashSet;

use trawl_layers::{MergedFs, Selection};

use crate::layer_attribution;
use crate::os::OsRelease;
use crate::package::{Package, PackageKind};
use crate::skipped::{EntryLog, oversized};
use crate::{Cataloger, Inventory};

/// Where apk keeps its installed database. apk-tools reads the first; images
/// with a merged `/usr` reach it through a `/lib` symlink, and some carry only
/// the second.
pub const INSTALLED_PATHS: [&str; 2] = ["lib/apk/db/installed", "usr/lib/apk/db/installed"];

/// How many characters of an offending line an error quotes.
const QUOTE_LIMIT: usize = 60;

/// One package record of the installed database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApkEntry {
    /// Package name (`P:`).
    pub name: String,
    /// Installed version in apk's own syntax (`V:`, `1.2.3-r4`).
    pub version: String,
    /// Architecture (`A:`), when recorded.
    pub arch: Option<String>,
    /// The source package it was built from (`o:`), when recorded.
    pub origin: Option<String>,
    /// Maintainer (`m:`), when recorded.
    pub maintainer: Option<String>,
    /// License expression (`L:`), when recorded.
    pub license: Option<String>,
    /// 1-based line where the record starts.
    pub line: usize,
}

/// What was wrong with a line or record of the installed database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApkEntryProblem {
    /// A line that is not `X:value`; the line is skipped.
    #[error("not an `X:value` line: {text:?}")]
    MalformedLine {
        /// The start of the offending line.
        text: String,
    },
    /// A record without a (non-empty) `P:` field; the record is skipped.
    #[error("record has no P: (package name) field")]
    MissingName,
    /// A record without a (non-empty) `V:` field; the record is skipped.
    #[error("package {name}: no V: (version) field")]
    MissingVersion {
        /// The record's package name.
        name: String,
    },
}

/// A problem in the installed database and the line it is on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct ApkEntryError {
    /// 1-based line: the offending line, or the first line of the record.
    pub line: usize,
    /// What was wrong.
    pub problem: ApkEntryProblem,
}

/// A parsed installed database: the usable records, and what was skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApkInstalledDb {
    /// Installed packages, in database order.
    pub entries: Vec<ApkEntry>,
    /// Lines and records that were skipped, in database order.
    pub errors: Vec<ApkEntryError>,
}

/// The fields of one record being read.
#[derive(Default)]
struct RecordFields {
    start_line: usize,
    any_field: bool,
    name: Option<String>,
    version: Option<String>,
    arch: Option<String>,
    origin: Option<String>,
    maintainer: Option<String>,
    license: Option<String>,
}

impl RecordFields {
    fn finish(self) -> Option<Result<ApkEntry, ApkEntryError>> {
        if !self.any_field {
            return None;
        }
        let line = self.start_line;
        let Some(name) = self.name else {
            return Some(Err(ApkEntryError {
                line,
                problem: ApkEntryProblem::MissingName,
            }));
        };
        let Some(version) = self.version else {
            return Some(Err(ApkEntryError {
                line,
                problem: ApkEntryProblem::MissingVersion { name },
            }));
        };
        Some(Ok(ApkEntry {
            name,
            version,
            arch: self.arch,
            origin: self.origin,
            maintainer: self.maintainer,
            license: self.license,
            line,
        }))
    }
}

impl ApkInstalledDb {
    /// Parses the contents of an installed database. Never fails: unusable
    /// lines and records are listed in [`ApkInstalledDb::errors`]. (Holds
    /// every error; [`ApkInstalledDb::records`] streams them instead.)
    pub fn parse(data: &[u8]) -> ApkInstalledDb {
        let mut db = ApkInstalledDb::default();
        for record in Self::records(data) {
            match record {
                Ok(entry) => db.entries.push(entry),
                Err(e) => db.errors.push(e),
            }
        }
        db
    }

    /// The records and problems of an installed database one at a time, in
    /// database order (a malformed line comes before the record it is in),
    /// so that a reader can count what it does not keep.
    ///
    /// ```
    /// use trawl_inventory::apk::ApkInstalledDb;
    /// let records: Vec<_> = ApkInstalledDb::records(b"P:musl\nV:1.2.3-r4\njunk\n").collect();
    /// assert!(records[0].is_err());
    /// assert_eq!(records[1].as_ref().unwrap().name, "musl");
    /// ```
    pub fn records(data: &[u8]) -> impl Iterator<Item = Result<ApkEntry, ApkEntryError>> + '_ {
        let mut lines = data.split(|&b| b == b'\n').enumerate();
        let mut record = RecordFields::default();
        let mut done = false;
        std::iter::from_fn(move || {
            while !done {
                let Some((i, line)) = lines.next() else {
                    done = true;
                    return std::mem::take(&mut record).finish();
                };
                let lineno = i + 1;
                if line.len() < 2 {
                    match std::mem::take(&mut record).finish() {
                        Some(r) => return Some(r),
                        None => continue,
                    }
                }
                if record.start_line == 0 {
                    record.start_line = lineno;
                }
                if line[1] != b':' {
                    return Some(Err(ApkEntryError {
                        line: lineno,
                        problem: ApkEntryProblem::MalformedLine { text: quote(line) },
                    }));
                }
                record.any_field = true;
                let value = &line[2..];
                // Empty values count as absent: an empty name or version names nothing.
                let text =
                    || (!value.is_empty()).then(|| String::from_utf8_lossy(value).into_owned());
                match line[0] {
                    b'P' => record.name = text(),
                    b'V' => record.version = text(),
                    b'A' => record.arch = text(),
                    b'o' => record.origin = text(),
                    b'm' => record.maintainer = text(),
                    b'L' => record.license = text(),
                    _ => {}
                }
            }
            None
        })
    }
}

/// The first [`QUOTE_LIMIT`] characters of a line, for an error message.
fn quote(line: &[u8]) -> String {
    String::from_utf8_lossy(line)
        .chars()
        .take(QUOTE_LIMIT)
        .collect()
}

/// Reads apk's installed database.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApkCataloger;

type Key = (String, String, Option<String>);

fn key(e: &ApkEntry) -> Key {
    (e.name.clone(), e.version.clone(), e.arch.clone())
}

/// The packages one version of the database lists, for attribution.
fn installed_keys(data: &[u8]) -> HashSet<Key> {
    ApkInstalledDb::records(data)
        .flatten()
        .map(|e| key(&e))
        .collect()
}

/// `pkg:apk/<distro>/<name>@<version>?arch=<arch>&distro=<id>-<version_id>`,
/// the form syft and trivy emit; the namespace is the OS id (`alpine`,
/// `wolfi`, `chainguard`), `alpine` when the OS is unknown.
fn purl(e: &ApkEntry, os: Option<&OsRelease>) -> String {
    crate::package::distro_purl(
        crate::package::PurlParts {
            kind: "apk",
            namespace: crate::package::os_namespace(os, "alpine"),
            name: &e.name,
            version: &e.version,
            arch: e.arch.as_deref(),
            epoch: None,
        },
        os,
    )
}

impl Cataloger for ApkCataloger {
    fn name(&self) -> &'static str {
        "apk"
    }

    fn selection(&self) -> Selection {
        let mut sel = Selection::new();
        for p in INSTALLED_PATHS {
            sel.add_path(p);
        }
        sel
    }

    /// Reads the first of [`INSTALLED_PATHS`] that exists, as apk-tools
    /// would: when both exist as separate files, the `/usr` copy is not the
    /// one apk uses, and reading both would list packages twice.
    fn catalog(&self, fs: &MergedFs, os: Option<&OsRelease>, inv: &mut Inventory) {
        let Some(file) = INSTALLED_PATHS.iter().find_map(|p| fs.file(p)) else {
            return;
        };
        let path = file.path.to_string();
        inv.databases.push(path.clone());
        let mut log = EntryLog::new(path.clone());
        let mut entries = Vec::new();
        for record in ApkInstalledDb::records(file.data) {
            match record {
                Ok(e) => match oversized([
                    ("P", Some(e.name.as_str())),
                    ("V", Some(e.version.as_str())),
                    ("A", e.arch.as_deref()),
                    ("o", e.origin.as_deref()),
                    ("m", e.maintainer.as_deref()),
                    ("L", e.license.as_deref()),
                ]) {
                    Some(reason) => log.skip(e.line, || reason),
                    None => {
                        log.read();
                        entries.push(e);
                    }
                },
                Err(e) => log.skip(e.line, || e.problem.to_string()),
            }
        }
        log.finish(inv);
        let keys: Vec<Key> = entries.iter().map(key).collect();
        let layers = layer_attribution::attribute(&fs.history(&path), &keys, installed_keys);
        for e in entries {
            let layer = layers.get(&key(&e)).cloned().flatten();
            inv.packages.push(Package {
                database_line: Some(e.line),
                kind: PackageKind::Apk,
                purl: purl(&e, os),
                source_name: e.origin.unwrap_or_else(|| e.name.clone()),
                source_version: e.version.clone(),
                name: e.name,
                version: e.version,
                arch: e.arch,
                layer,
                database: path.clone(),
                maintainer: e.maintainer,
                license: e.license,
                epoch: None,
                release: None,
                vendor: None,
                modularity_label: None,
                nested: Vec::new(),
                found_by: None,
                role: None,
                owned_by: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_duplicates_and_separators() {
        let db = ApkInstalledDb::parse(
            b"C:Q1abc=\nP:musl\nV:1.0-r0\nV:1.2.3-r4\nA:x86_64\no:musl\nm:Someone <s@x>\nL:MIT\nF:lib\nR:ld.so\n\n\
              P:busybox\nV:1.36-r0\n",
        );
        assert_eq!(db.errors, []);
        assert_eq!(
            db.entries,
            [
                ApkEntry {
                    name: "musl".into(),
                    version: "1.2.3-r4".into(),
                    arch: Some("x86_64".into()),
                    origin: Some("musl".into()),
                    maintainer: Some("Someone <s@x>".into()),
                    license: Some("MIT".into()),
                    line: 1,
                },
                ApkEntry {
                    name: "busybox".into(),
                    version: "1.36-r0".into(),
                    arch: None,
                    origin: None,
                    maintainer: None,
                    license: None,
                    line: 12,
                },
            ]
        );
    }

    #[test]
    fn short_line_ends_a_record_as_in_apk_tools() {
        let db = ApkInstalledDb::parse(b"P:a\nV:1\nx\nP:b\nV:2\n");
        let names: Vec<&str> = db.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(db.entries[1].line, 4);
    }

    #[test]
    fn broken_lines_and_records() {
        let db =
            ApkInstalledDb::parse(b"junk line\nP:a\nV:1\n\nP:b\n\nV:3\n\nP:\nV:4\n\nP:c\nV:\n");
        assert_eq!(db.entries.len(), 1);
        assert_eq!((db.entries[0].name.as_str(), db.entries[0].line), ("a", 1));
        let errors: Vec<String> = db.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            [
                "line 1: not an `X:value` line: \"junk line\"",
                "line 5: package b: no V: (version) field",
                "line 7: record has no P: (package name) field",
                "line 9: record has no P: (package name) field",
                "line 12: package c: no V: (version) field",
            ]
        );
    }
}
