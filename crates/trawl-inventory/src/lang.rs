//! What the language catalogers that read small metadata files share: the
//! [`MetadataCataloger`] trait (which files, and what one file holds), and the
//! glue that turns a file's contents into [`Package`]s with their path and
//! layer, or into warnings.
//!
//! Each format is one module: [`crate::python`] (`*.dist-info/METADATA`,
//! `*.egg-info`), [`crate::npm`] (`node_modules/**/package.json`),
//! [`crate::ruby`] (`specifications/*.gemspec`), [`crate::composer`]
//! (`vendor/composer/installed.json`) and [`crate::dotnet`] (`*.deps.json`).
//! Which OS package installed a metadata file is decided afterwards, for every
//! language package at once, by [`crate::ownership`].
//!
//! What goes wrong is reported at two levels, the same for every format:
//! - a file that cannot be read as its format at all (not UTF-8 where it must
//!   be, malformed JSON, a field over its length limit) is an
//!   [`InventoryWarning::UnreadableFile`]: the packages it describes are
//!   missing, so the inventory is incomplete;
//! - a well-formed file, or an entry in it, that does not name a package at a
//!   version (a `package.json` without `version`, a METADATA without `Name`)
//!   is an [`InventoryWarning::MalformedEntry`] and is skipped, like a dpkg
//!   paragraph without `Version`.
//!
//! ```
//! use trawl_inventory::python::PythonCataloger;
//! use trawl_inventory::{Cataloger, Inventory};
//! use trawl_layers::{read_layer, Limits, MergedFs};
//!
//! let metadata = b"Metadata-Version: 2.1\nName: Jinja2\nVersion: 3.1.2\n\nbody\n";
//! let path = "usr/lib/python3/dist-packages/Jinja2-3.1.2.dist-info/METADATA";
//! let mut tar = tar::Builder::new(Vec::new());
//! let mut h = tar::Header::new_gnu();
//! h.set_size(metadata.len() as u64);
//! h.set_cksum();
//! tar.append_data(&mut h, path, &metadata[..]).unwrap();
//! let blob = tar.into_inner().unwrap();
//! // The cataloger's selection is its globs.
//! let sel = PythonCataloger.selection();
//! let changes = read_layer("sha256:l1", &blob[..], &sel, &Limits::default()).unwrap();
//! let fs = MergedFs::from_layers(vec![("sha256:l1".into(), changes)]);
//!
//! let mut inv = Inventory::default();
//! PythonCataloger.catalog(&fs, None, &mut inv);
//! let p = &inv.packages[0];
//! assert_eq!((p.name.as_str(), p.version.as_str()), ("Jinja2", "3.1.2"));
//! assert_eq!(p.purl, "pkg:pypi/jinja2@3.1.2");
//! assert_eq!((p.database.as_str(), p.layer.as_deref()), (path, Some("sha256:l1")));
//! ```

use trawl_layers::{FileView, MergedFs};

use crate::package::{Package, PackageKind};
use crate::{Inventory, InventoryWarning};

/// Most skipped-entry warnings, and most unreadable-file warnings, one
/// cataloger run lists; the rest are counted in one warning each.
pub const MAX_WARNINGS_PER_KIND: usize = crate::skipped::MAX_ENTRY_WARNINGS;

/// A language package as one metadata file records it, before it is placed
/// in the image (path, layer, owner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePackage {
    /// The packaging system.
    pub kind: PackageKind,
    /// The name as the file writes it (for people).
    pub name: String,
    /// The version as the file writes it.
    pub version: String,
    /// The package URL, with the name normalised as the ecosystem matches it.
    pub purl: String,
    /// The kind of evidence (`dist-info`, `egg-info`, `package.json`, ...).
    pub found_by: &'static str,
    /// A platform the package is built for (a gem's `x86_64-linux`), when the
    /// file names one.
    pub arch: Option<String>,
    /// 1-based line of the entry in the file, for files listing several
    /// packages and for line-oriented formats.
    pub line: Option<usize>,
}

/// What one metadata file holds: its packages and the entries it skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileRead {
    /// The packages, in file order.
    pub packages: Vec<FilePackage>,
    /// Entries that do not name a package at a version: 1-based line (or
    /// record number, or 0 for the whole file) and why.
    pub skipped: Vec<(usize, String)>,
}

/// A language package format recorded in small metadata files that may sit
/// anywhere in the image.
pub trait MetadataCataloger: Send + Sync {
    /// A short name (`python`, `npm`).
    fn name(&self) -> &'static str;

    /// Glob patterns (`globset` syntax, `*` not crossing `/`, paths without a
    /// leading `/`) covering every file the cataloger reads; [`Self::wants`]
    /// may be narrower.
    fn globs(&self) -> &'static [&'static str];

    /// Whether the file at `path` (normalised, no leading `/`) is one of this
    /// format's metadata files: the exact rule, which the globs
    /// over-approximate.
    fn wants(&self, path: &str) -> bool;

    /// The packages in one file whose path [`Self::wants`]; `Err` when the
    /// file cannot be read as this format at all.
    fn read(&self, path: &str, data: &[u8]) -> Result<FileRead, String>;
}

/// Every metadata-file cataloger, in the order they run.
pub fn metadata_catalogers() -> Vec<Box<dyn MetadataCataloger>> {
    vec![
        Box::new(crate::python::PythonCataloger),
        Box::new(crate::npm::NpmCataloger),
        Box::new(crate::ruby::GemCataloger),
        Box::new(crate::composer::ComposerCataloger),
        Box::new(crate::dotnet::DotnetCataloger),
    ]
}

/// Implements [`Cataloger`](crate::Cataloger) for a [`MetadataCataloger`]:
/// its globs are its selection, and it reads every kept file it wants.
macro_rules! metadata_cataloger {
    ($ty:ty) => {
        impl $crate::Cataloger for $ty {
            fn name(&self) -> &'static str {
                $crate::lang::MetadataCataloger::name(self)
            }

            fn selection(&self) -> trawl_layers::Selection {
                let mut sel = trawl_layers::Selection::new();
                for glob in $crate::lang::MetadataCataloger::globs(self) {
                    sel = sel.with_glob(glob);
                }
                sel
            }

            fn catalog(
                &self,
                fs: &trawl_layers::MergedFs,
                _os: Option<&$crate::OsRelease>,
                inv: &mut $crate::Inventory,
            ) {
                $crate::lang::catalog_metadata_files(self, fs, fs.files(), inv);
            }
        }
    };
}
pub(crate) use metadata_cataloger;

/// Runs `cataloger` over `files` (those it does not want are ignored): each
/// package gets the file's path and the layer that introduced the file's
/// current content; skipped entries and unreadable files become warnings.
///
/// Warnings are bounded per run, whatever the image holds: the first
/// [`MAX_WARNINGS_PER_KIND`] skipped entries are listed, the rest counted in
/// one [`InventoryWarning::EntriesNotListed`]; the first
/// [`MAX_WARNINGS_PER_KIND`] unreadable files are listed, the rest counted
/// in one [`InventoryWarning::UnreadableDatabase`] (both make the scan
/// incomplete, as a database that is mostly junk does).
pub fn catalog_metadata_files<'a>(
    cataloger: &dyn MetadataCataloger,
    fs: &MergedFs,
    files: impl IntoIterator<Item = FileView<'a>>,
    inv: &mut Inventory,
) {
    let (mut skipped, mut unreadable) = (0usize, 0usize);
    for f in files {
        if !cataloger.wants(f.path) {
            continue;
        }
        let layer = fs.introduced_by(f.path).or(f.layer).map(str::to_string);
        match cataloger.read(f.path, f.data) {
            Ok(read) => {
                for (line, reason) in read.skipped {
                    skipped += 1;
                    if skipped <= MAX_WARNINGS_PER_KIND {
                        inv.warnings.push(InventoryWarning::MalformedEntry {
                            database: f.path.to_string(),
                            line,
                            reason,
                        });
                    }
                }
                inv.packages.extend(
                    read.packages
                        .into_iter()
                        .map(|p| to_package(p, f.path, layer.clone())),
                );
            }
            Err(reason) => {
                unreadable += 1;
                if unreadable <= MAX_WARNINGS_PER_KIND {
                    inv.warnings.push(InventoryWarning::UnreadableFile {
                        path: f.path.to_string(),
                        layer,
                        reason,
                    });
                }
            }
        }
    }
    let what = format!("{} metadata files", cataloger.name());
    if skipped > MAX_WARNINGS_PER_KIND {
        inv.warnings.push(InventoryWarning::EntriesNotListed {
            database: what.clone(),
            count: skipped - MAX_WARNINGS_PER_KIND,
        });
    }
    if unreadable > MAX_WARNINGS_PER_KIND {
        inv.warnings.push(InventoryWarning::UnreadableDatabase {
            database: what,
            reason: format!(
                "{} more unreadable files not listed",
                unreadable - MAX_WARNINGS_PER_KIND
            ),
        });
    }
}

fn to_package(p: FilePackage, path: &str, layer: Option<String>) -> Package {
    Package {
        kind: p.kind,
        source_name: p.name.clone(),
        source_version: p.version.clone(),
        name: p.name,
        version: p.version,
        arch: p.arch,
        purl: p.purl,
        layer,
        database: path.to_string(),
        maintainer: None,
        license: None,
        epoch: None,
        release: None,
        vendor: None,
        modularity_label: None,
        database_line: p.line,
        nested: Vec::new(),
        found_by: Some(p.found_by.to_string()),
        role: None,
        owned_by: None,
    }
}

/// `pkg:<ty>/[<namespace>/]<name>@<version>` through the purl library, which
/// applies the type's own normalisation and percent-encoding; a name the
/// library rejects still gets a plain string.
pub(crate) fn purl(ty: &str, namespace: Option<&str>, name: &str, version: &str) -> String {
    let Ok(mut p) = packageurl::PackageUrl::new(ty, name) else {
        return match namespace {
            Some(ns) => format!("pkg:{ty}/{ns}/{name}@{version}"),
            None => format!("pkg:{ty}/{name}@{version}"),
        };
    };
    if let Some(ns) = namespace {
        let _ = p.with_namespace(ns);
    }
    let _ = p.with_version(version);
    p.to_string()
}

/// At most `n` characters of `s`, for quoting hostile input in errors.
pub(crate) fn quote(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trawl_layers::{Limits, Selection, read_layer};

    fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, path, *data).unwrap();
        }
        tar.into_inner().unwrap()
    }

    #[test]
    fn introduced_by_skips_identical_rewrites() {
        let sel = Selection::new().with_prefix("a");
        let read = |id: &str, files: &[(&str, &[u8])]| {
            (
                id.to_string(),
                read_layer(id, &layer(files)[..], &sel, &Limits::default()).unwrap(),
            )
        };
        let fs = MergedFs::from_layers(vec![
            read("l0", &[("a/f", b"one")]),
            read("l1", &[("a/f", b"two")]),
            read("l2", &[("a/f", b"two"), ("a/g", b"x")]),
        ]);
        assert_eq!(fs.introduced_by("a/f"), Some("l1"));
        assert_eq!(fs.introduced_by("a/g"), Some("l2"));
        assert_eq!(fs.introduced_by("a/none"), None);
    }

    #[test]
    fn purl_encodes_and_normalises() {
        assert_eq!(
            purl("npm", Some("@babel"), "Core", "7.0.0"),
            "pkg:npm/%40babel/core@7.0.0"
        );
        assert_eq!(
            purl("pypi", None, "distro-info", "1.5+deb12u1"),
            "pkg:pypi/distro-info@1.5%2Bdeb12u1"
        );
    }
}
