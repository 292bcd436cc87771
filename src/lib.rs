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
//! [`Scanner`] wires them together. Scanning is blocking work (decompression,
//! hashing, parsing), so the `async` methods run it on a thread of its own
//! and never stall the caller's executor; the `_blocking` twins run it on
//! the calling thread. Both work with any executor or none.
//!
//! With a [`tracing`](https://docs.rs/tracing) subscriber installed, a scan
//! shows where its time goes: a `scan` span (info, `source`) holds an `image`
//! span (info: `source`, manifest `digest`, `layers`), which holds one
//! `layer` span per layer (debug: `index`, `digest`, `size`, and `cached`
//! when the layer cache answered; on the reader's worker threads, under the
//! caller's subscriber) and one `cataloger` span per cataloger (debug:
//! `name`); matching is a `match` span (debug: `source`, `packages`).
//! Without a subscriber they cost next to nothing.
//!
//! # Features
//!
//! All on by default; each forwards to the stage crate that has it.
//!
//! - `registry`: `registry:` sources and [`registry::RegistryClient`] (reqwest
//!   with rustls, tokio, oci-client). Without it OCI layouts, archives and
//!   `dir:` scan as before; a `registry:` source fails to open with
//!   [`registry::RegistryError::RegistrySupportNotBuilt`].
//! - `fetch`: `advisory::fetch`, downloading advisory feeds (reqwest, zip).
//! - `rpm-sqlite`: rpm's SQLite database (Fedora 33+, RHEL 9); without it
//!   such an image's scan is `partial`.
//! - `bundled-sqlite`: SQLite compiled in; off, the system libsqlite3 is
//!   linked.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let (rootfs, osv) = (dir.path().join("rootfs"), dir.path().join("osv"));
//! # example_files(&rootfs, &osv)?;
//! use trawl::{AdvisoryDb, ImageSource, Scanner, Verdict};
//!
//! // OSV's Debian export, unpacked (osv.dev/…/Debian/all.zip), or a compiled
//! // database: `trawl::advisory::AdvisoryStore::open("trawl.db")?`.
//! let (db, _skipped) = AdvisoryDb::from_osv_dirs(&[&osv])?;
//! let scanner = Scanner::builder().database(db).build()?;
//!
//! // A registry image, an OCI layout, a `docker save` tar or a root file system.
//! let source: ImageSource = format!("dir:{}", rootfs.display()).parse()?;
//! let report = block_on(scanner.scan(&source))?;
//!
//! assert_eq!(report.verdict, Verdict::Unhealthy);
//! for step in &report.remediation {
//!     // "upgrade openssl from 3.0.11-1~deb12u1 to 3.0.15-1~deb12u1 (fixes DSA-5764-1)"
//!     println!("upgrade {} from {} to {} (fixes {})",
//!              step.package, step.from, step.to, step.fixes.join(", "));
//! }
//! assert_eq!(report.remediation[0].to, "3.0.15-1~deb12u1");
//! # Ok(())
//! # }
//! # // Any executor works; the example drives the future with tokio's.
//! # fn block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! # fn example_files(rootfs: &std::path::Path, osv: &std::path::Path) -> std::io::Result<()> {
//! #     std::fs::create_dir_all(rootfs.join("etc"))?;
//! #     std::fs::create_dir_all(rootfs.join("var/lib/dpkg"))?;
//! #     std::fs::create_dir_all(osv)?;
//! #     std::fs::write(rootfs.join("etc/os-release"),
//! #         "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n")?;
//! #     std::fs::write(rootfs.join("var/lib/dpkg/status"),
//! #         "Package: openssl\nStatus: install ok installed\nArchitecture: amd64\n\
//! #          Version: 3.0.11-1~deb12u1\n")?;
//! #     std::fs::write(osv.join("DSA-5764-1.json"), r#"{"id": "DSA-5764-1",
//! #         "modified": "2024-09-03T00:00:00Z", "aliases": ["CVE-2024-5535"],
//! #         "affected": [{"package": {"ecosystem": "Debian:12", "name": "openssl"},
//! #         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"},
//! #         {"fixed": "3.0.15-1~deb12u1"}]}]}]}"#)?;
//! #     Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

// The README's code blocks run as doc tests, so its embedding snippet
// compiles against the API it shows.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

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

/// Why a scan failed. Problems with single entries, and layers whose content
/// cannot be read, are not errors: they are warnings in the report (the
/// latter make its verdict `partial`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The image could not be opened or a blob could not be read.
    #[error(transparent)]
    Source(#[from] trawl_registry::RegistryError),
    /// A layer failed its integrity checks (digest or diff_id mismatch) or
    /// could not be read at all.
    #[error(transparent)]
    Layer(#[from] trawl_layers::LayerError),
    /// No thread could be started to run the scan.
    #[error("could not start a scan thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// The thread running the scan ended without an answer (it panicked).
    #[error("the scan thread ended without a result")]
    Interrupted,
}

/// How far the reading of one layer blob has got, for progress displays
/// (see [`ScannerBuilder::on_progress`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerProgress {
    /// The layer's position in the image, base layer first.
    pub index: usize,
    /// The blob's digest.
    pub digest: String,
    /// The blob's size, when the source states it.
    pub size: Option<u64>,
    /// Bytes of the blob read so far.
    pub read: u64,
    /// Whether the blob has been read to its end.
    pub done: bool,
}

type ProgressFn = Arc<dyn Fn(&LayerProgress) + Send + Sync>;

/// Builds a [`Scanner`].
#[derive(Default)]
pub struct ScannerBuilder {
    database: Option<Arc<dyn AdvisorySource>>,
    policy: Policy,
    limits: Limits,
    cache_dir: Option<std::path::PathBuf>,
    registry: RegistryOptions,
    progress: Option<ProgressFn>,
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

    /// Calls `observer` as layer blobs are read (about every 256 KiB and at
    /// each blob's end), from the threads reading them. Layers answered from
    /// the cache are not read and report nothing.
    pub fn on_progress(
        mut self,
        observer: impl Fn(&LayerProgress) + Send + Sync + 'static,
    ) -> Self {
        self.progress = Some(Arc::new(observer));
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
            policy: Arc::new(self.policy),
            reader: Arc::new(Reader {
                limits: self.limits,
                cache,
                registry: self.registry,
                progress: self.progress,
            }),
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
            .field("limits", &self.reader.limits)
            .finish_non_exhaustive()
    }
}

/// An image's identity and package inventory, before matching. It
/// serializes (JSON, or any serde format), so inventories can be stored and
/// matched again later with [`Scanner::rematch`] without pulling the image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Scanned {
    /// The source as given.
    pub source: String,
    /// Manifest and layer digests.
    pub image: ImageInfo,
    /// OS and packages.
    pub inventory: Inventory,
}

/// Scans images: open → extract → inventory → match → classify.
///
/// Cloning is cheap and clones share the layer cache, so one scanner can
/// serve many tasks or threads at once.
#[derive(Clone)]
pub struct Scanner {
    database: Arc<dyn AdvisorySource>,
    policy: Arc<Policy>,
    reader: Arc<Reader>,
}

/// What reading an image needs; shared by clones.
struct Reader {
    limits: Limits,
    cache: LayerCache,
    registry: RegistryOptions,
    progress: Option<ProgressFn>,
}

/// Reports [`LayerProgress`] as a blob is read.
struct Progress<R> {
    inner: R,
    state: LayerProgress,
    reported: u64,
    observer: ProgressFn,
}

impl<R: std::io::Read> std::io::Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.state.read += n as u64;
        if n == 0 && !self.state.done {
            self.state.done = true;
            (self.observer)(&self.state);
        } else if self.state.read - self.reported >= 256 << 10 {
            self.reported = self.state.read;
            (self.observer)(&self.state);
        }
        Ok(n)
    }
}

impl Scanner {
    /// A builder with an empty database and default limits.
    pub fn builder() -> ScannerBuilder {
        ScannerBuilder::default()
    }

    /// A scanner like this one (same layer cache, policy and registry
    /// options) that matches against `db`: for when a new advisory database
    /// arrives.
    pub fn with_database(&self, db: impl AdvisorySource + 'static) -> Scanner {
        Scanner {
            database: Arc::new(db),
            ..self.clone()
        }
    }

    /// A scanner like this one (same layer cache, database and registry
    /// options) that classifies under `policy`: for a long-running service
    /// whose ignore or VEX files change, or whose ignore rules expire (the
    /// policy's `today` decides which rules have).
    ///
    /// ```
    /// use trawl::{Policy, Scanner, Severity};
    /// let scanner = Scanner::builder().build().unwrap();
    /// let strict = scanner.with_policy(Policy {
    ///     severity_threshold: Severity::High,
    ///     ..Policy::default()
    /// });
    /// assert_eq!(strict.policy().severity_threshold, Severity::High);
    /// assert_eq!(scanner.policy().severity_threshold, Severity::Unknown);
    /// ```
    pub fn with_policy(&self, policy: Policy) -> Scanner {
        Scanner {
            policy: Arc::new(policy),
            ..self.clone()
        }
    }

    /// The layer cache (its statistics tell how many layers were read).
    pub fn layer_cache(&self) -> &LayerCache {
        &self.reader.cache
    }

    /// The advisory database in use.
    pub fn database(&self) -> &dyn AdvisorySource {
        &*self.database
    }

    /// The policy in use.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Scans an image: [`Scanner::inventory`] then [`Scanner::rematch`].
    ///
    /// The work runs on a thread of its own; dropping the future does not
    /// stop it, it only discards the result.
    pub async fn scan(&self, source: &ImageSource) -> Result<Report, ScanError> {
        let scanner = self.clone();
        let source = source.clone();
        off_thread(move || scanner.scan_blocking(&source)).await
    }

    /// Opens the image and lists its OS packages, without matching (see
    /// [`Scanner::scan`] on how the work runs).
    pub async fn inventory(&self, source: &ImageSource) -> Result<Scanned, ScanError> {
        let scanner = self.clone();
        let source = source.clone();
        off_thread(move || scanner.inventory_blocking(&source)).await
    }

    /// [`Scanner::scan`] on the calling thread.
    pub fn scan_blocking(&self, source: &ImageSource) -> Result<Report, ScanError> {
        let span = tracing::info_span!("scan", source = %source);
        let _entered = span.enter();
        Ok(self.rematch(self.inventory_blocking(source)?))
    }

    /// [`Scanner::inventory`] on the calling thread.
    ///
    /// A layer whose content cannot be read (corrupt compression, malformed
    /// tar, over [`Limits`], past the deadline) is left out and recorded in
    /// the inventory's warnings, and so is every selected file that was not
    /// kept ([`trawl_layers::MergedFs::dropped`]: over a size limit or the
    /// scan's memory budget); either makes the report's verdict `partial`
    /// (or `unhealthy` with findings), never `healthy`. A blob that fails its
    /// digest or diff_id check fails the whole scan.
    pub fn inventory_blocking(&self, source: &ImageSource) -> Result<Scanned, ScanError> {
        let span = tracing::info_span!(
            "image",
            source = %source,
            digest = tracing::field::Empty,
            layers = tracing::field::Empty,
        );
        let _entered = span.enter();
        let reader = &*self.reader;
        let selection = trawl_inventory::selection();
        let (image, fs, skipped): (ImageInfo, MergedFs, Vec<trawl_layers::LayerError>) =
            match trawl_registry::open_with_options(source, &reader.registry)? {
                OpenedSource::Rootfs(root) => (
                    ImageInfo::default(),
                    trawl_layers::read_rootfs(&root, &selection, &reader.limits)?,
                    Vec::new(),
                ),
                OpenedSource::Image(img) => {
                    let img = &img;
                    if let Some(digest) = img.manifest_digest() {
                        span.record("digest", digest);
                    }
                    span.record("layers", img.layers().len());
                    let streams = img
                        .layers()
                        .iter()
                        .enumerate()
                        .map(|(i, layer)| {
                            let progress = reader.progress.clone();
                            let stream = LayerStream::lazy(layer.digest.clone(), move || {
                                let blob = img.open_layer(i).map_err(std::io::Error::other)?;
                                Ok(match progress {
                                    None => blob,
                                    Some(observer) => Box::new(Progress {
                                        inner: blob,
                                        state: LayerProgress {
                                            index: i,
                                            digest: layer.digest.clone(),
                                            size: layer.size,
                                            read: 0,
                                            done: false,
                                        },
                                        reported: 0,
                                        observer,
                                    })
                                        as Box<dyn std::io::Read + Send>,
                                })
                            });
                            let stream = match layer.size {
                                Some(size) => stream.with_size(size),
                                None => stream,
                            };
                            match &layer.diff_id {
                                Some(d) => stream.with_diff_id(d.clone()),
                                None => stream,
                            }
                        })
                        .collect();
                    let options = ExtractOptions {
                        cache: Some(&reader.cache),
                        ..ExtractOptions::default()
                    };
                    let (fs, skipped) = trawl_layers::extract_partial(
                        streams,
                        &selection,
                        &reader.limits,
                        options,
                    )?;
                    let info = ImageInfo {
                        manifest_digest: img.manifest_digest().map(str::to_string),
                        layers: img.layers().iter().map(|l| l.digest.clone()).collect(),
                        diff_ids: img.config().diff_ids.clone(),
                    };
                    (info, fs, skipped)
                }
            };
        let mut inventory = trawl_inventory::catalog(&fs);
        // A selected file that was not kept (over a size limit or the scan's
        // budget, unreadable) may hold packages: the scan is incomplete.
        inventory.warnings.extend(fs.dropped().map(|d| {
            trawl_inventory::InventoryWarning::UnreadableFile {
                path: d.path.to_string(),
                layer: d.layer.map(str::to_string),
                reason: d.reason.to_string(),
            }
        }));
        inventory.warnings.extend(skipped.iter().map(|e| {
            trawl_inventory::InventoryWarning::UnreadableLayer {
                layer: e.layer().unwrap_or_default().to_string(),
                message: e.to_string(),
            }
        }));
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

    /// Matches an inventory (fresh or stored) against the database and
    /// classifies the result under the policy. Pulls nothing; a thousand
    /// stored inventories re-match in well under a second.
    pub fn rematch(&self, scanned: Scanned) -> Report {
        let _span = tracing::debug_span!(
            "match",
            source = %scanned.source,
            packages = scanned.inventory.packages.len(),
        )
        .entered();
        Report::generate_with_policy(
            scanned.source,
            scanned.image,
            scanned.inventory,
            &*self.database,
            &self.policy,
        )
    }
}

impl Scanner {
    /// Matches many stored inventories at once, in order: what a registry
    /// does when a new advisory database arrives. Each distinct (package,
    /// version) is looked up once for the whole batch (images share base
    /// layers, so most lookups repeat) and the work is spread over the
    /// cores. Gives exactly what [`Scanner::rematch`] gives for each.
    ///
    /// ```
    /// # let scanner = trawl::Scanner::builder().build()?;
    /// # let stored: Vec<trawl::Scanned> = Vec::new();
    /// let reports = scanner.rematch_all(stored);
    /// # assert!(reports.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn rematch_all(&self, inventories: Vec<Scanned>) -> Vec<Report> {
        let memo = trawl_advisory::Memoized::new(&*self.database);
        // What each (package, version) amounts to, once per batch.
        let cache = trawl_classify::MatchCache::default();
        let jobs: Vec<std::sync::Mutex<Option<Scanned>>> = inventories
            .into_iter()
            .map(|s| std::sync::Mutex::new(Some(s)))
            .collect();
        in_parallel(jobs.len(), |i| {
            let scanned = jobs[i].lock().ok().and_then(|mut job| job.take())?;
            Some(Report::generate_cached(
                scanned.source,
                scanned.image,
                scanned.inventory,
                &memo,
                &self.policy,
                &cache,
            ))
        })
        .into_iter()
        .flatten()
        .collect()
    }

    /// [`Scanner::rematch_all`] for a caller that keeps only what each
    /// report decides, as a registry's rescan does: each inventory is
    /// judged ([`Judgement`](trawl_classify::Judgement): the verdict, its
    /// reason, the summary and each finding's facts, exactly as the report
    /// would have them) and handed to `keep` with its index, on the batch's
    /// threads; what `keep` gives comes back in order. Each distinct
    /// (package, version) is looked up once for the batch. Cheaper than the
    /// reports: no remediation steps, texts or copies of the packages.
    ///
    /// ```
    /// # let scanner = trawl::Scanner::builder().build()?;
    /// let stored: Vec<trawl::Scanned> = Vec::new();
    /// let verdicts = scanner.judge_all(&stored, |_, judged| judged.verdict());
    /// assert_eq!(verdicts.len(), stored.len());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn judge_all<T: Send>(
        &self,
        inventories: &[Scanned],
        keep: impl Fn(usize, trawl_classify::Judgement<'_>) -> T + Sync,
    ) -> Vec<T> {
        let memo = trawl_advisory::Memoized::new(&*self.database);
        let cache = trawl_classify::MatchCache::default();
        in_parallel(inventories.len(), |i| {
            let scanned = &inventories[i];
            let judged = trawl_classify::Judgement::generate_cached(
                &scanned.image,
                &scanned.inventory,
                &memo,
                &self.policy,
                &cache,
            );
            keep(i, judged)
        })
    }
}

/// `work(i)` for every `i` below `n`, spread over the cores; the answers
/// in order.
fn in_parallel<T: Send>(n: usize, work: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let slots: Vec<std::sync::Mutex<Option<T>>> =
        (0..n).map(|_| std::sync::Mutex::new(None)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let run = || {
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if i >= n {
                break;
            }
            let answer = work(i);
            if let Ok(mut slot) = slots[i].lock() {
                *slot = Some(answer);
            }
        }
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, n.max(1));
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(run);
        }
        run();
    });
    slots
        .into_iter()
        .filter_map(|slot| slot.into_inner().ok().flatten())
        .collect()
}

/// Runs `work` on a new thread and waits for it without blocking the
/// executor the future is polled on.
async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ScanError> + Send + 'static,
) -> Result<T, ScanError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("trawl-scan".into())
        .spawn(move || {
            // The receiver may be gone (the future was dropped): nothing to do.
            let _ = tx.send(work());
        })
        .map_err(ScanError::Spawn)?;
    rx.await.map_err(|_| ScanError::Interrupted)?
}
