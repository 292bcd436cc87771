//! OS detection and OS package catalogers for Trawl.
//!
//! # Brief overview
//!
//! - [`Cataloger`]: one package database format; it names the files it needs
//!   ([`Cataloger::selection`]) and reads them from the merged image view.
//!   [`dpkg::DpkgCataloger`] reads `/var/lib/dpkg/status` and distroless
//!   `/var/lib/dpkg/status.d/`; [`apk::ApkCataloger`] reads apk's
//!   `/lib/apk/db/installed`; [`rpm::RpmCataloger`] reads the rpm database
//!   (SQLite, Berkeley DB or NDB).
//! - [`os::detect`]: the image's OS from os-release and legacy release files.
//! - [`catalog`]: runs OS detection and every cataloger, giving an
//!   [`Inventory`] of [`Package`]s, each with its source package, purl and the
//!   layer that introduced it.
//! - [`selection`]: everything all catalogers need, to hand to `trawl-layers`.
//! - Language packages recorded in small metadata files, one module per
//!   format behind [`lang::MetadataCataloger`]: [`python`] (`*.dist-info`,
//!   `*.egg-info`), [`npm`] (`node_modules/**/package.json`), [`ruby`]
//!   (`specifications/*.gemspec`), [`composer`] (`vendor/composer/installed.json`),
//!   [`dotnet`] (`*.deps.json`); [`lang::catalog_metadata_files`] turns their
//!   files into packages with path and layer.
//! - [`ownership`]: which OS package (dpkg, rpm, apk) installed a language
//!   package's metadata file, set as [`Package::owned_by`] by [`catalog`].
//! - Binaries and archives: [`golang`] (Go build info), [`cargo_auditable`]
//!   (Rust `.dep-v0` data), [`java`] (jars, wars, ears and what they nest),
//!   and [`extract`], which runs them on files while their layer streams and
//!   turns the kept results into packages.
//!
//! ```
//! use trawl_layers::{read_layer, Limits, MergedFs};
//!
//! let status = b"Package: libssl3\nStatus: install ok installed\nVersion: 3.0.15-1~deb12u1\n\
//!                Architecture: amd64\nSource: openssl\n";
//! let mut tar = tar::Builder::new(Vec::new());
//! let mut h = tar::Header::new_gnu();
//! h.set_size(status.len() as u64);
//! h.set_cksum();
//! tar.append_data(&mut h, "var/lib/dpkg/status", &status[..]).unwrap();
//! let blob = tar.into_inner().unwrap();
//!
//! let changes = read_layer("sha256:base", &blob[..], &trawl_inventory::selection(), &Limits::default()).unwrap();
//! let fs = MergedFs::from_layers(vec![("sha256:base".into(), changes)]);
//! let inventory = trawl_inventory::catalog(&fs);
//! let pkg = &inventory.packages[0];
//! assert_eq!((pkg.name.as_str(), pkg.source_name.as_str()), ("libssl3", "openssl"));
//! assert_eq!(pkg.layer.as_deref(), Some("sha256:base"));
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod apk;
pub mod cargo_auditable;
pub mod composer;
pub mod dotnet;
pub mod dpkg;
pub mod elf;
pub mod extract;
pub mod golang;
pub mod java;
mod json;
pub mod lang;
mod layer_attribution;
pub mod npm;
pub mod os;
pub mod ownership;
mod package;
pub mod python;
pub mod rpm;
pub mod ruby;
mod skipped;

use serde::{Deserialize, Serialize};
use trawl_layers::{MergedFs, Selection};

pub use os::OsRelease;
pub use package::{Package, PackageKind, PackageRole};
pub use skipped::{MAX_ENTRY_WARNINGS, MAX_FIELD_LEN};

/// A package database format.
pub trait Cataloger {
    /// A short name (`dpkg`).
    fn name(&self) -> &'static str;
    /// The files this cataloger reads.
    fn selection(&self) -> Selection;
    /// Adds the packages (and warnings) found in `fs` to `inventory`.
    fn catalog(&self, fs: &MergedFs, os: Option<&OsRelease>, inventory: &mut Inventory);
}

/// What was found in an image: its OS and its packages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// The detected OS, if any.
    pub os: Option<OsRelease>,
    /// Installed packages, in database order.
    pub packages: Vec<Package>,
    /// The package databases found (paths in the image).
    pub databases: Vec<String>,
    /// Entries that were skipped, and why.
    pub warnings: Vec<InventoryWarning>,
    /// The catalogers that looked at the image (`dpkg`, `apk`, `rpm`, ...),
    /// in the order they ran: what the inventory covers.
    #[serde(default)]
    pub catalogers: Vec<String>,
}

impl Inventory {
    /// Whether a whole layer or package database could not be read, so that
    /// packages may be missing (a scan of such an inventory is `partial`).
    ///
    /// ```
    /// use trawl_inventory::{Inventory, InventoryWarning};
    ///
    /// let mut inv = Inventory::default();
    /// assert!(!inv.is_incomplete());
    /// inv.warnings.push(InventoryWarning::UnreadableDatabase {
    ///     database: "var/lib/rpm/rpmdb.sqlite".into(),
    ///     reason: "not an rpm database".into(),
    /// });
    /// assert!(inv.is_incomplete());
    /// ```
    pub fn is_incomplete(&self) -> bool {
        self.warnings.iter().any(InventoryWarning::makes_incomplete)
    }
}

impl InventoryWarning {
    /// Whether this problem means packages may be missing from the inventory
    /// (an unreadable layer, database or file, or more skipped entries than
    /// are listed), not just one skipped entry.
    pub fn makes_incomplete(&self) -> bool {
        matches!(
            self,
            InventoryWarning::UnreadableDatabase { .. }
                | InventoryWarning::UnreadableLayer { .. }
                | InventoryWarning::UnreadableFile { .. }
                | InventoryWarning::EntriesNotListed { .. }
        )
    }
}

/// A problem that made a cataloger skip something while keeping the rest.
///
/// Each package database lists at most [`MAX_ENTRY_WARNINGS`] skipped
/// entries, then one [`InventoryWarning::EntriesNotListed`]; a database with
/// more skipped entries than that, or more skipped than read, also gets an
/// [`InventoryWarning::UnreadableDatabase`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum InventoryWarning {
    /// An entry of a package database that could not be used.
    #[error("{database}:{line}: skipped entry: {reason}")]
    MalformedEntry {
        /// The database file (image path).
        database: String,
        /// 1-based line (or record number) of the entry.
        line: usize,
        /// What was wrong.
        reason: String,
    },
    /// Skipped entries of a package database beyond the first
    /// [`MAX_ENTRY_WARNINGS`], counted rather than listed.
    #[error("{database}: {count} more skipped entries not listed")]
    EntriesNotListed {
        /// The database file (image path).
        database: String,
        /// How many skipped entries are not listed.
        count: usize,
    },
    /// A package database that was found but could not be read, wholly or
    /// in part (mostly malformed, or read only up to a cap): packages it
    /// lists are missing from the inventory.
    #[error("{database}: package database unreadable: {reason}")]
    UnreadableDatabase {
        /// The database file (image path).
        database: String,
        /// What was wrong.
        reason: String,
    },
    /// A whole layer whose content could not be read (corrupt compression,
    /// malformed tar, over a size limit); the inventory was taken from the
    /// other layers and may miss or misstate packages.
    #[error("{message}")]
    UnreadableLayer {
        /// The layer's digest.
        layer: String,
        /// The layer reader's description of the problem.
        message: String,
    },
    /// A language package's metadata file, binary or archive that could not
    /// be read (a truncated ELF, a corrupt zip, malformed JSON): the packages
    /// it holds are missing from the inventory.
    #[error("{path}{}: unreadable: {reason}", layer.as_deref().map(|l| format!(" (layer {l})")).unwrap_or_default())]
    UnreadableFile {
        /// The file (image path), with `!/`-joined archive entries inside it.
        path: String,
        /// The layer that wrote the file, when known.
        layer: Option<String>,
        /// What was wrong.
        reason: String,
    },
    /// A problem reading the image's layers that did not stop the scan (an
    /// unsafe entry name, a file over the size limit, a dangling hard link).
    #[error("{message}")]
    Layer {
        /// The layer reader's description of the problem.
        message: String,
    },
}

/// The catalogers Trawl runs, in order.
pub fn catalogers() -> Vec<Box<dyn Cataloger + Send + Sync>> {
    vec![
        Box::new(dpkg::DpkgCataloger),
        Box::new(apk::ApkCataloger),
        Box::new(rpm::RpmCataloger),
        Box::new(python::PythonCataloger),
        Box::new(npm::NpmCataloger),
        Box::new(ruby::GemCataloger),
        Box::new(composer::ComposerCataloger),
        Box::new(dotnet::DotnetCataloger),
        Box::new(golang::GoBinaryCataloger),
        Box::new(cargo_auditable::RustBinaryCataloger),
        Box::new(java::JavaArchiveCataloger),
    ]
}

/// Every file OS detection and the catalogers need.
pub fn selection() -> Selection {
    let mut sel = os::selection();
    for c in catalogers() {
        sel.extend(&c.selection());
    }
    sel.extend(&ownership::selection());
    sel
}

/// Detects the OS and runs every cataloger over the merged view.
pub fn catalog(fs: &MergedFs) -> Inventory {
    let mut inventory = Inventory {
        os: os::detect(fs),
        ..Inventory::default()
    };
    let os = inventory.os.clone();
    for c in catalogers() {
        let _span = tracing::debug_span!("cataloger", name = c.name()).entered();
        c.catalog(fs, os.as_ref(), &mut inventory);
        inventory.catalogers.push(c.name().to_string());
        tracing::debug!(
            cataloger = c.name(),
            packages = inventory.packages.len(),
            "cataloged"
        );
    }
    ownership::assign_owners(fs, &mut inventory);
    for w in &inventory.warnings {
        // Debug-quoted: the text quotes image contents, which must not reach
        // a terminal raw (control characters, bidi overrides).
        tracing::warn!("{:?}", w.to_string());
    }
    inventory
}
