//! Which OS package installed a language package's metadata file.
//!
//! Debian's `python3-urllib3`, Alpine's `py3-*`, Fedora's `python3-*`, the
//! distributions' Ruby and Java packages install the same metadata files a
//! language package manager would. Such a language package is kept in the
//! inventory with [`Package::owned_by`](crate::Package::owned_by) naming the
//! OS package, so that it is matched through the OS package (whose
//! distribution backports fixes) and not against language advisories.
//!
//! The owners come from the OS package managers' own file lists:
//! - dpkg: `var/lib/dpkg/info/<package>[:<arch>].list`, one absolute path a
//!   line ([`dpkg_list_package`], [`dpkg_list_paths`]);
//! - rpm: each header's `BASENAMES`/`DIRNAMES`/`DIRINDEXES`
//!   ([`crate::rpm::header::visit_files`]);
//! - apk: the `F:` (directory) and `R:` (file) lines of each record of
//!   `lib/apk/db/installed` ([`apk_files`]).
//!
//! Paths are compared after resolving symlinks in the merged view on both
//! sides: dpkg on a merged-`/usr` system lists `/lib/...` for a file that sits
//! at `usr/lib/...`, and a metadata file's own path is the resolved one.
//!
//! Memory is bounded by the number of metadata files asked about, not by the
//! file lists: a list is scanned line by line, and only a line whose last
//! component is the file name of one of those metadata files is resolved
//! and compared; nothing else is kept. A hostile `.list` with millions of
//! lines costs time linear in its size and no memory.

use std::collections::{HashMap, HashSet};

use trawl_layers::{MergedFs, Selection};

use crate::Inventory;

/// Where dpkg keeps its per-package file lists.
pub const DPKG_INFO_DIR: &str = "var/lib/dpkg/info";

/// Globs of the files ownership is read from (rpm's and apk's databases are
/// selected by their catalogers).
pub const GLOBS: &[&str] = &["var/lib/dpkg/info/*.list"];

/// The files this module reads beyond what the OS catalogers select: dpkg's
/// file lists.
pub fn selection() -> Selection {
    let mut sel = Selection::new();
    for glob in GLOBS {
        sel = sel.with_glob(glob);
    }
    sel
}

/// The package a dpkg file list belongs to, from its file name
/// (`python3-urllib3.list`, `libssl3:amd64.list` → `libssl3`).
///
/// ```
/// use trawl_inventory::ownership::dpkg_list_package;
/// assert_eq!(dpkg_list_package("var/lib/dpkg/info/libssl3:amd64.list"), Some("libssl3"));
/// assert_eq!(dpkg_list_package("var/lib/dpkg/info/python3-six.md5sums"), None);
/// ```
pub fn dpkg_list_package(path: &str) -> Option<&str> {
    let file = path.rsplit('/').next()?;
    let stem = file.strip_suffix(".list")?;
    let name = stem.split_once(':').map_or(stem, |(name, _)| name);
    (!name.is_empty()).then_some(name)
}

/// The absolute paths of a dpkg `.list` file with their 1-based lines
/// (lines that are not absolute paths, such as dpkg's `/.` for the root, are
/// skipped; so are lines that are not UTF-8, which no metadata path is).
///
/// ```
/// use trawl_inventory::ownership::dpkg_list_paths;
/// let l: Vec<_> = dpkg_list_paths(b"/.\n/usr\n/usr/lib/a.egg-info/PKG-INFO\n").collect();
/// assert_eq!(l, [(2, "/usr"), (3, "/usr/lib/a.egg-info/PKG-INFO")]);
/// ```
pub fn dpkg_list_paths(data: &[u8]) -> impl Iterator<Item = (usize, &str)> {
    data.split(|&b| b == b'\n')
        .enumerate()
        .filter_map(|(i, line)| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let s = std::str::from_utf8(line).ok()?;
            (s.len() > 1 && s.starts_with('/') && s != "/.").then_some((i + 1, s))
        })
}

/// The files of apk's installed database: `(package, directory, file)` for
/// each `R:` line, the directory being the record's latest `F:` line
/// (relative to the root, as apk writes it) and the package its `P:` line.
/// A record's `P:` may follow its files; apk writes it first, and files
/// before any `P:` are reported with an empty package name.
///
/// ```
/// use trawl_inventory::ownership::apk_files;
/// let db = b"P:py3-six\nV:1.16.0-r3\nF:usr/lib/python3.11/site-packages/six-1.16.0.dist-info\nR:METADATA\n\nP:b\n";
/// let files: Vec<_> = apk_files(db).collect();
/// assert_eq!(files, [("py3-six", "usr/lib/python3.11/site-packages/six-1.16.0.dist-info", "METADATA")]);
/// ```
pub fn apk_files(data: &[u8]) -> impl Iterator<Item = (&str, &str, &str)> {
    let mut package = "";
    let mut dir = "";
    data.split(|&b| b == b'\n').filter_map(move |line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() < 2 {
            // apk-tools: a line shorter than two bytes ends the record.
            package = "";
            dir = "";
            return None;
        }
        let value = std::str::from_utf8(line.get(2..)?).ok();
        match (line[0], line[1], value) {
            (b'P', b':', Some(v)) => package = v,
            (b'F', b':', Some(v)) => dir = v,
            (b'R', b':', Some(v)) => return Some((package, dir, v)),
            _ => {}
        }
        None
    })
}

/// Owners of a set of files, found by scanning the OS package managers'
/// file lists.
#[derive(Debug, Clone, Default)]
pub struct FileOwners {
    /// Resolved path of each file asked about.
    wanted: HashSet<String>,
    /// The last path component of each: the cheap filter for list lines.
    names: HashSet<String>,
    /// Resolved path -> owning OS package (first owner found).
    owners: HashMap<String, String>,
}

impl FileOwners {
    /// Looks up the owners of `paths` (image paths; resolved through symlinks
    /// here) in every file list the merged view holds: dpkg's, rpm's and
    /// apk's.
    pub fn find<'p>(fs: &MergedFs, paths: impl IntoIterator<Item = &'p str>) -> FileOwners {
        let mut owners = FileOwners::default();
        for p in paths {
            let resolved = fs.resolve(p).unwrap_or_else(|| p.to_string());
            if let Some(name) = resolved.rsplit('/').next() {
                owners.names.insert(name.to_string());
            }
            owners.wanted.insert(resolved);
        }
        if owners.wanted.is_empty() {
            return owners;
        }
        for f in fs.files_under(DPKG_INFO_DIR) {
            let Some(package) = dpkg_list_package(f.path) else {
                continue;
            };
            for (_, path) in dpkg_list_paths(f.data) {
                owners.offer(fs, package, "", path);
            }
        }
        crate::rpm::visit_header_blobs(fs, |blob| {
            let Ok(header) = crate::rpm::RpmHeader::parse(blob) else {
                return;
            };
            // A header whose file list is damaged owns nothing; the rpm
            // cataloger reports damaged headers.
            let _ = crate::rpm::header::visit_files(blob, |dir, name| {
                if let (Ok(dir), Ok(name)) = (std::str::from_utf8(dir), std::str::from_utf8(name)) {
                    owners.offer(fs, &header.name, dir, name);
                }
            });
        });
        let mut seen = HashSet::new();
        for db in crate::apk::INSTALLED_PATHS {
            let Some(f) = fs.file(db) else { continue };
            if !seen.insert(f.path) {
                continue;
            }
            for (package, dir, name) in apk_files(f.data) {
                if !package.is_empty() {
                    owners.offer(fs, package, dir, name);
                }
            }
        }
        owners
    }

    /// Records `package` as the owner of `dir` + `name` (`dir` empty when
    /// `name` is the whole path) if that is one of the wanted files.
    fn offer(&mut self, fs: &MergedFs, package: &str, dir: &str, name: &str) {
        let last = name.rsplit('/').next().unwrap_or(name);
        if !self.names.contains(last) {
            return;
        }
        let joined;
        let path = if dir.is_empty() {
            name
        } else {
            joined = format!("{}/{name}", dir.trim_end_matches('/'));
            &joined
        };
        let Some(resolved) = fs.resolve(path) else {
            return;
        };
        if self.wanted.contains(&resolved) && !self.owners.contains_key(&resolved) {
            self.owners.insert(resolved, package.to_string());
        }
    }

    /// The OS package that installed the file at `path` (resolved), if any.
    pub fn owner(&self, path: &str) -> Option<&str> {
        self.owners.get(path).map(String::as_str)
    }

    /// How many of the files have an owner.
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    /// True when none of the files has an owner.
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }
}

/// Sets [`Package::owned_by`](crate::Package::owned_by) on every language
/// package of `inventory` whose metadata file (its `database`) an OS package
/// installed. Does nothing, cheaply, when there are no language packages.
pub fn assign_owners(fs: &MergedFs, inventory: &mut Inventory) {
    let paths: HashSet<&str> = inventory
        .packages
        .iter()
        .filter(|p| !p.kind.is_os())
        .map(|p| p.database.as_str())
        .collect();
    if paths.is_empty() {
        return;
    }
    let owners = FileOwners::find(fs, paths);
    if owners.is_empty() {
        return;
    }
    for p in inventory.packages.iter_mut().filter(|p| !p.kind.is_os()) {
        let resolved = fs.resolve(&p.database);
        if let Some(owner) = owners.owner(resolved.as_deref().unwrap_or(&p.database)) {
            p.owned_by = Some(owner.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_names_and_lines() {
        assert_eq!(
            dpkg_list_package("a/b/python3-six.list"),
            Some("python3-six")
        );
        assert_eq!(dpkg_list_package(":amd64.list"), None);
        assert_eq!(dpkg_list_package("x.list.bak"), None);
        let lines: Vec<_> = dpkg_list_paths(b"/a/b\r\n\xff/x\n\n/c").collect();
        assert_eq!(lines, [(1, "/a/b"), (4, "/c")]);
    }

    #[test]
    fn apk_records_reset() {
        let db = b"P:a\nF:usr/lib\nR:one\nR:two\n\nF:etc\nR:orphan\nP:b\nR:three\n";
        let files: Vec<_> = apk_files(db).collect();
        assert_eq!(
            files,
            [
                ("a", "usr/lib", "one"),
                ("a", "usr/lib", "two"),
                ("", "etc", "orphan"),
                ("b", "etc", "three"),
            ]
        );
    }
}
