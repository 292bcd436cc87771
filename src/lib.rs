//! Trawl: find known vulnerabilities in container images.
//!
//! # Brief overview
//!
//! This crate is the thin front of the `trawl-*` stage crates, re-exported
//! here:
//!
//! - [`registry`] opens an image source ([`ImageSource`]: `registry:` or a
//!   bare reference such as `debian:12`, `oci-dir:`, `oci-archive:`,
//!   `docker-archive:`, `dir:`) and hands out verified layer streams;
//! - [`layers`] streams the layers once, in parallel, keeping only the files
//!   the catalogers need, and merges them ([`layers::MergedFs`]);
//! - [`inventory`] detects the OS and lists the installed packages;
//! - [`advisory`] holds advisories ([`AdvisoryDb`]) and matches packages
//!   against them with each distro's version rules;
//! - [`classify`] turns matches into a [`Report`] with a [`Verdict`].
//!
//! [`Scanner`] wires them together.
//!
//! ```no_run
//! use trawl::{AdvisoryDb, ImageSource, Scanner, Verdict};
//!
//! let (db, _warnings) = AdvisoryDb::from_osv_dirs(&["osv/debian"])?;
//! let scanner = Scanner::builder().database(db).cache_dir("/var/cache/trawl").build()?;
//! let source: ImageSource = "oci-dir:images/debian:bookworm".parse()?;
//! let report = scanner.scan(&source)?;
//! if report.verdict == Verdict::Unhealthy {
//!     for f in &report.findings {
//!         println!("{} {} {}: {}", f.severity, f.id, f.package, f.remediation);
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub use trawl_advisory as advisory;
pub use trawl_classify as classify;
pub use trawl_inventory as inventory;
pub use trawl_layers as layers;
pub use trawl_registry as registry;

pub use trawl_advisory::{AdvisoryDb, AdvisorySource};
pub use trawl_classify::Policy;
pub use trawl_classify::{Finding, ImageInfo, Report, Severity, Verdict};
pub use trawl_inventory::{Inventory, Package};
pub use trawl_layers::Limits;
pub use trawl_registry::{ImageSource, RegistryOptions};

use std::sync::Arc;

use trawl_layers::{ExtractOptions, LayerCache, LayerStream, MergedFs};
use trawl_registry::OpenedSource;

/// Why a scan failed. Problems with single entries are not errors: they are
/// warnings in the report.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The image could not be opened or a blob could not be read.
    #[error(transparent)]
    Source(#[from] trawl_registry::RegistryError),
    /// A layer could not be read (corrupt, truncated, digest mismatch, too large).
    #[error(transparent)]
    Layer(#[from] trawl_layers::LayerError),
}

/// Builds a [`Scanner`].
#[derive(Default)]
pub struct ScannerBuilder {
    database: Option<Arc<dyn AdvisorySource>>,
    policy: Policy,
    limits: Limits,
    cache_dir: Option<std::path::PathBuf>,
    registry: RegistryOptions,
}

impl ScannerBuilder {
    /// The advisories to match against: an in-memory [`AdvisoryDb`] or a
    /// compiled database (empty by default, so every verdict is `unsupported`).
    pub fn database(mut self, db: impl AdvisorySource + 'static) -> Self {
        self.database = Some(Arc::new(db));
        self
    }

    /// What counts toward the verdict: severity threshold, ignore-unfixed,
    /// ignore rules, VEX statements (default: everything counts).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Bounds on what one scan may read and keep.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// How registries are reached: platform, extra CA, plain-HTTP hosts,
    /// credentials (default: Docker's config file, the host platform, TLS).
    pub fn registry_options(mut self, options: RegistryOptions) -> Self {
        self.registry = options;
        self
    }

    /// Keeps per-layer results in `dir` across processes (layers are always
    /// cached in memory for the scanner's lifetime).
    pub fn cache_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// The scanner. Fails only when the cache directory cannot be created.
    pub fn build(self) -> Result<Scanner, std::io::Error> {
        let cache = match self.cache_dir {
            Some(dir) => LayerCache::with_dir(dir)?,
            None => LayerCache::in_memory(),
        };
        Ok(Scanner {
            database: self.database.unwrap_or_else(|| Arc::new(AdvisoryDb::new())),
            policy: self.policy,
            limits: self.limits,
            cache,
            registry: self.registry,
        })
    }
}

impl std::fmt::Debug for ScannerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScannerBuilder")
            .field("policy", &self.policy)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner")
            .field("policy", &self.policy)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// An image's identity and package inventory, before matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// The source as given.
    pub source: String,
    /// Manifest and layer digests.
    pub image: ImageInfo,
    /// OS and packages.
    pub inventory: Inventory,
}

/// Scans images: open → extract → inventory → match → classify.
pub struct Scanner {
    database: Arc<dyn AdvisorySource>,
    policy: Policy,
    limits: Limits,
    cache: LayerCache,
    registry: RegistryOptions,
}

impl Scanner {
    /// A builder with an empty database and default limits.
    pub fn builder() -> ScannerBuilder {
        ScannerBuilder::default()
    }

    /// The layer cache (its statistics tell how many layers were read).
    pub fn layer_cache(&self) -> &LayerCache {
        &self.cache
    }

    /// The advisory database in use.
    pub fn database(&self) -> &dyn AdvisorySource {
        &*self.database
    }

    /// The policy in use.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Opens the image and lists its OS packages, without matching.
    pub fn inventory(&self, source: &ImageSource) -> Result<Scanned, ScanError> {
        let selection = trawl_inventory::selection();
        let (image, fs): (ImageInfo, MergedFs) =
            match trawl_registry::open_with_options(source, &self.registry)? {
                OpenedSource::Rootfs(root) => (
                    ImageInfo::default(),
                    trawl_layers::read_rootfs(&root, &selection, &self.limits)?,
                ),
                OpenedSource::Image(img) => {
                    let img = &img;
                    let streams = img
                        .layers()
                        .iter()
                        .enumerate()
                        .map(|(i, layer)| {
                            let stream = LayerStream::lazy(layer.digest.clone(), move || {
                                img.open_layer(i).map_err(std::io::Error::other)
                            });
                            match &layer.diff_id {
                                Some(d) => stream.with_diff_id(d.clone()),
                                None => stream,
                            }
                        })
                        .collect();
                    let options = ExtractOptions {
                        cache: Some(&self.cache),
                        ..ExtractOptions::default()
                    };
                    let fs =
                        trawl_layers::extract_with(streams, &selection, &self.limits, options)?;
                    let info = ImageInfo {
                        manifest_digest: img.manifest_digest().map(str::to_string),
                        layers: img.layers().iter().map(|l| l.digest.clone()).collect(),
                        diff_ids: img.config().diff_ids.clone(),
                    };
                    (info, fs)
                }
            };
        let mut inventory = trawl_inventory::catalog(&fs);
        inventory.warnings.extend(fs.warnings().iter().map(|w| {
            trawl_inventory::InventoryWarning::Layer {
                message: w.to_string(),
            }
        }));
        Ok(Scanned {
            source: source.to_string(),
            image,
            inventory,
        })
    }

    /// Matches an inventory (fresh or stored) against the database.
    pub fn rematch(&self, scanned: Scanned) -> Report {
        Report::generate_with_policy(
            scanned.source,
            scanned.image,
            scanned.inventory,
            &*self.database,
            &self.policy,
        )
    }

    /// Scans an image: [`Scanner::inventory`] then [`Scanner::rematch`].
    pub fn scan(&self, source: &ImageSource) -> Result<Report, ScanError> {
        Ok(self.rematch(self.inventory(source)?))
    }
}
