//! Java archives (`*.jar`, `*.war`, `*.ear`, `*.par`, `*.jpi`, `*.hpi`):
//! the Maven artifacts they are and contain.
//!
//! # What is read
//!
//! An archive is a ZIP file, read through its central directory with
//! [`zip`]'s bounded reader. In each archive (and, recursively, in every
//! archive inside it: Spring Boot's `BOOT-INF/lib/`, a war's `WEB-INF/lib/`,
//! an ear's `lib/` and modules, any nested jar):
//!
//! 1. every `…META-INF/maven/<group>/<artifact>/pom.properties` with an
//!    `artifactId` and a `version` is an artifact (evidence `pom.properties`);
//!    two with the same coordinates in one archive are one artifact;
//! 2. the archive's own identity, when none of those `pom.properties` is the
//!    archive itself, comes from `META-INF/MANIFEST.MF` (evidence
//!    `MANIFEST.MF`: `Implementation-Title`/`-Version`, else
//!    `Bundle-SymbolicName`/`-Version`; `Implementation-Vendor-Id` as the
//!    group), or, when the manifest names no version, from the file name
//!    (`name-1.2.3.jar`, evidence `file-name`).
//!
//! A `pom.properties` is taken to be the archive itself when its
//! `artifactId` equals the name in the file name or in the manifest, or when
//! it is the archive's only `pom.properties` and its version equals the
//! manifest's or the file name's (compared as OSGi writes versions: `1.3`
//! is `1.3.0`; `-`, `_` and `.` separate alike). This is Syft's identity rule (a pom whose artifact is the
//! archive's name merges into the archive's package) without Syft's
//! manifest-name heuristics, and Trivy's (the manifest is used only when no
//! `pom.properties` matches the file) without its Maven Central lookups
//! (none here: offline). On the ground truth — `unzip -p` of every
//! `pom.properties` and manifest — it lists every `pom.properties` once, and
//! a fat or shaded jar that carries another artifact's `pom.properties` but
//! not its own is listed as both (that is what it is).
//!
//! # Bounds
//!
//! [`JavaLimits`] caps the entries of one archive and of the whole walk, the
//! number of archives, the nesting depth, the size of a metadata file, the
//! bytes inflated in all and held in memory at once, and the compression
//! ratio of what is inflated. A nested archive stored uncompressed (Spring
//! Boot requires it) is read in place, through a window of its parent; a
//! deflated one is inflated into memory under those caps, or reported as not
//! inspected. A problem inside the archive (a corrupt nested jar, a zip bomb
//! entry) is recorded with the chain of entries leading to it and the walk
//! goes on; only an unreadable top-level archive is an error.

pub mod metadata;
pub mod zip;

use std::io::{Cursor, Read};

use serde::{Deserialize, Serialize};

use crate::extract::{JavaArchiveExtractor, java_packages};
use crate::{Cataloger, Inventory, OsRelease, Package, PackageKind};
use trawl_layers::{MergedFs, Selection};
use zip::{DEFLATED, Entry, ReadSeek, STORED, Window};

/// The Maven artifacts of the image's Java archives (from the
/// [`JavaArchiveExtractor`] results the layer reader kept); an archive, or a
/// nested one, that could not be read is an
/// [`crate::InventoryWarning::UnreadableFile`] naming its entry chain.
#[derive(Debug, Clone, Copy, Default)]
pub struct JavaArchiveCataloger;

impl Cataloger for JavaArchiveCataloger {
    fn name(&self) -> &'static str {
        "java-archive"
    }

    fn selection(&self) -> Selection {
        Selection::new().with_extractor(JavaArchiveExtractor::default())
    }

    fn catalog(&self, fs: &MergedFs, _os: Option<&OsRelease>, inventory: &mut Inventory) {
        for x in fs.extracted(JavaArchiveExtractor::ID) {
            let (pkgs, warnings) = java_packages(x.path, x.layer, x.result);
            inventory.packages.extend(pkgs);
            inventory.warnings.extend(warnings);
        }
    }
}

/// File-name extensions of Java archives (lower case, without the dot).
pub const ARCHIVE_EXTENSIONS: [&str; 6] = ["jar", "war", "ear", "par", "jpi", "hpi"];

/// Whether a path names a Java archive, by its extension (any case).
///
/// ```
/// assert!(trawl_inventory::java::is_archive_name("app/lib/spring-core-6.1.2.JAR"));
/// assert!(!trawl_inventory::java::is_archive_name("app/lib/jar"));
/// ```
pub fn is_archive_name(path: &str) -> bool {
    path.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty()
            && !stem.ends_with('/')
            && ARCHIVE_EXTENSIONS
                .iter()
                .any(|e| ext.eq_ignore_ascii_case(e))
    })
}

/// Bounds on what reading one archive (with everything inside it) may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JavaLimits {
    /// Entries one archive's central directory may declare. Default 100,000.
    pub max_entries: u64,
    /// Central-directory records read in the whole walk. Default 1,000,000.
    pub max_total_entries: u64,
    /// Archives opened in the whole walk, the outer one included. Default 5,000.
    pub max_archives: usize,
    /// Nesting depth: 0 reads no nested archive. Default 4 (an ear holding
    /// a war holding a jar holding a jar).
    pub max_depth: usize,
    /// Largest metadata file (`pom.properties`, `MANIFEST.MF`). Default 1 MiB.
    pub max_metadata_size: u64,
    /// Bytes inflated in the whole walk. Default 512 MiB.
    pub max_total_inflated: u64,
    /// Bytes of inflated nested archives held in memory at once. Default 64 MiB.
    pub max_in_memory: u64,
    /// Largest inflated/compressed ratio of an entry that is inflated.
    /// Default 200 (deflate's limit is about 1,032; real metadata and jars
    /// stay far below 20).
    pub max_ratio: u64,
}

impl Default for JavaLimits {
    fn default() -> Self {
        JavaLimits {
            max_entries: 100_000,
            max_total_entries: 1_000_000,
            max_archives: 5_000,
            max_depth: 4,
            max_metadata_size: 1 << 20,
            max_total_inflated: 512 << 20,
            max_in_memory: 64 << 20,
            max_ratio: 200,
        }
    }
}

/// What a Java artifact was identified from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum JavaEvidence {
    /// `META-INF/maven/<group>/<artifact>/pom.properties`.
    PomProperties,
    /// `META-INF/MANIFEST.MF`.
    Manifest,
    /// The archive's file name.
    FileName,
}

impl JavaEvidence {
    /// `pom.properties`, `MANIFEST.MF` or `file-name`.
    pub fn as_str(self) -> &'static str {
        match self {
            JavaEvidence::PomProperties => "pom.properties",
            JavaEvidence::Manifest => "MANIFEST.MF",
            JavaEvidence::FileName => "file-name",
        }
    }
}

/// One Maven artifact found in an archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JavaArtifact {
    /// `groupId` (empty when the evidence names none).
    pub group_id: String,
    /// `artifactId`.
    pub artifact_id: String,
    /// Version.
    pub version: String,
    /// What it was identified from.
    pub found_by: JavaEvidence,
    /// The archive entries leading to the archive it was found in, outermost
    /// first (empty: the file itself).
    pub nested: Vec<String>,
}

/// Something inside an archive that could not be read; the rest was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JavaProblem {
    /// The entries leading to it, outermost first.
    pub nested: Vec<String>,
    /// What was wrong.
    pub error: String,
}

/// Everything read from one archive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JavaArchive {
    /// The artifacts, outer archive first, then nested ones depth-first in
    /// central-directory order.
    pub artifacts: Vec<JavaArtifact>,
    /// What could not be read.
    pub problems: Vec<JavaProblem>,
}

/// Why an archive (or an entry of it) could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JavaError {
    /// Not a ZIP file.
    #[error("not a zip archive: {0}")]
    NotZip(String),
    /// A ZIP structure that is inconsistent.
    #[error("malformed zip {what} at offset {offset:#x}: {reason}")]
    Malformed {
        /// `central directory`, `local header`.
        what: &'static str,
        /// Offset (in the central directory, or of the local header).
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The central directory declares more entries than allowed.
    #[error("zip declares {count} entries, over the limit of {max}")]
    TooManyEntries {
        /// Declared entries.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// A walk-wide budget (entries, archives, inflated bytes) is spent.
    #[error("{what} budget of {max} spent; the rest of the archive was not read")]
    Budget {
        /// Which budget.
        what: &'static str,
        /// Its size.
        max: u64,
    },
    /// Nested deeper than [`JavaLimits::max_depth`].
    #[error("nested more than {max} archives deep; not read")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// An entry too large to read under the limits.
    #[error("{entry}: {size} bytes, over the limit of {max}")]
    EntryTooLarge {
        /// Entry name.
        entry: String,
        /// Its (declared or inflated) size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// An entry that inflates far beyond its compressed size.
    #[error(
        "{entry}: inflates more than {max_ratio} times its {compressed} compressed bytes (zip bomb)"
    )]
    Ratio {
        /// Entry name.
        entry: String,
        /// Compressed size.
        compressed: u64,
        /// The limit.
        max_ratio: u64,
    },
    /// A compression method other than stored and deflate.
    #[error("{entry}: compression method {method} not supported")]
    UnsupportedMethod {
        /// Entry name.
        entry: String,
        /// The method number.
        method: u16,
    },
    /// An encrypted entry.
    #[error("{entry}: encrypted")]
    Encrypted {
        /// Entry name.
        entry: String,
    },
    /// A corrupt deflate stream, or a size that does not match.
    #[error("{entry}: {reason}")]
    Inflate {
        /// Entry name.
        entry: String,
        /// What went wrong.
        reason: String,
    },
    /// Reading the file failed.
    #[error("reading the archive: {0}")]
    Io(String),
}

/// Reads a Java archive of `len` bytes through `Read + Seek`. `file_name`
/// (its path or name) gives the last-resort identity.
///
/// ```no_run
/// use trawl_inventory::java::{read_archive, JavaLimits};
///
/// let path = "/usr/share/java/commons-lang3.jar";
/// let mut file = std::fs::File::open(path).unwrap();
/// let len = file.metadata().unwrap().len();
/// let archive = read_archive(&mut file, len, path, &JavaLimits::default()).unwrap();
/// for a in &archive.artifacts {
///     println!("{}:{} {} ({})", a.group_id, a.artifact_id, a.version, a.found_by.as_str());
/// }
/// ```
///
/// Not a zip file at all:
///
/// ```
/// use std::io::Cursor;
/// use trawl_inventory::java::{read_archive, JavaError, JavaLimits};
///
/// let bytes = b"#!/bin/sh\necho not a jar\n".repeat(4);
/// let err = read_archive(&mut Cursor::new(&bytes), bytes.len() as u64, "x.jar", &JavaLimits::default());
/// assert!(matches!(err, Err(JavaError::NotZip(_))));
/// ```
pub fn read_archive(
    reader: &mut dyn ReadSeek,
    len: u64,
    file_name: &str,
    limits: &JavaLimits,
) -> Result<JavaArchive, JavaError> {
    let mut walk = Walk {
        limits,
        out: JavaArchive::default(),
        entries: 0,
        archives: 0,
        inflated: 0,
        held: 0,
    };
    let mut chain = Vec::new();
    walk.archive(reader, len, file_name, &mut chain)?;
    Ok(walk.out)
}

struct Walk<'l> {
    limits: &'l JavaLimits,
    out: JavaArchive,
    entries: u64,
    archives: usize,
    inflated: u64,
    held: u64,
}

/// Which entries of an archive are read.
enum Wanted {
    Pom,
    Manifest,
    Nested,
}

fn wanted(name: &str) -> Option<Wanted> {
    if name.ends_with("/pom.properties") {
        // …META-INF/maven/<group>/<artifact>/pom.properties
        let parts: Vec<&str> = name.rsplitn(5, '/').collect();
        let in_meta_inf = parts.len() == 5
            && parts[3] == "maven"
            && (parts[4] == "META-INF" || parts[4].ends_with("/META-INF"));
        return in_meta_inf.then_some(Wanted::Pom);
    }
    if name.eq_ignore_ascii_case("META-INF/MANIFEST.MF") {
        return Some(Wanted::Manifest);
    }
    if !name.ends_with('/') && is_archive_name(name) {
        return Some(Wanted::Nested);
    }
    None
}

impl Walk<'_> {
    fn problem(&mut self, chain: &[String], error: JavaError) {
        self.out.problems.push(JavaProblem {
            nested: chain.to_vec(),
            error: error.to_string(),
        });
    }

    /// Reads one archive; `chain` leads to it.
    fn archive(
        &mut self,
        r: &mut dyn ReadSeek,
        len: u64,
        file_name: &str,
        chain: &mut Vec<String>,
    ) -> Result<(), JavaError> {
        self.archives += 1;
        if self.archives > self.limits.max_archives {
            return Err(JavaError::Budget {
                what: "archive",
                max: self.limits.max_archives as u64,
            });
        }
        let dir = zip::directory(r, len)?;
        let left = self.limits.max_total_entries.saturating_sub(self.entries);
        if dir.entries > left {
            return Err(JavaError::Budget {
                what: "zip entry",
                max: self.limits.max_total_entries,
            });
        }
        self.entries += dir.entries;
        let entries = zip::entries(r, &dir, self.limits.max_entries, |n| wanted(n).is_some())?;

        let mut poms = Vec::new();
        let mut manifest = None;
        for e in entries.iter().filter(|e| !e.name.ends_with('/')) {
            match wanted(&e.name) {
                Some(Wanted::Pom) => match self.small_entry(r, &dir, e, len) {
                    Ok(text) => {
                        let p = metadata::pom_properties(&text);
                        if !p.artifact_id.is_empty() && !p.version.is_empty() {
                            poms.push(p);
                        }
                    }
                    Err(err) => self.problem(chain, err),
                },
                Some(Wanted::Manifest) => match self.small_entry(r, &dir, e, len) {
                    Ok(text) => manifest = Some(metadata::manifest_main(&text)),
                    Err(err) => self.problem(chain, err),
                },
                _ => {}
            }
        }

        // The pom.properties artifacts, each once.
        let mut seen = std::collections::HashSet::new();
        poms.retain(|p| {
            seen.insert((p.group_id.clone(), p.artifact_id.clone(), p.version.clone()))
        });
        for p in &poms {
            self.out.artifacts.push(JavaArtifact {
                group_id: p.group_id.clone(),
                artifact_id: p.artifact_id.clone(),
                version: p.version.clone(),
                found_by: JavaEvidence::PomProperties,
                nested: chain.clone(),
            });
        }
        // The archive's own identity, when no pom.properties is it.
        let (file_stem, file_version) = metadata::file_name_identity(file_name);
        let (m_group, m_name, m_version) = manifest
            .as_ref()
            .map(metadata::manifest_identity)
            .unwrap_or_default();
        let only = poms.len() == 1;
        let same_version =
            |a: &str, b: Option<&String>| b.is_some_and(|b| metadata::osgi_equal(a, b));
        let is_self = |p: &metadata::PomProperties| {
            p.artifact_id == file_stem
                || m_name.as_deref() == Some(p.artifact_id.as_str())
                || (only && same_version(&p.version, m_version.as_ref()))
                || (only && same_version(&p.version, file_version.as_ref()))
        };
        if !poms.iter().any(is_self) {
            if let (Some(name), Some(version)) = (&m_name, &m_version) {
                self.out.artifacts.push(JavaArtifact {
                    group_id: m_group.clone().unwrap_or_default(),
                    artifact_id: name.clone(),
                    version: version.clone(),
                    found_by: JavaEvidence::Manifest,
                    nested: chain.clone(),
                });
            } else if let Some(version) = file_version {
                self.out.artifacts.push(JavaArtifact {
                    group_id: String::new(),
                    artifact_id: file_stem,
                    version,
                    found_by: JavaEvidence::FileName,
                    nested: chain.clone(),
                });
            }
        }

        // Nested archives, depth first.
        for e in entries
            .iter()
            .filter(|e| matches!(wanted(&e.name), Some(Wanted::Nested)))
        {
            chain.push(e.name.clone());
            let result = if chain.len() > self.limits.max_depth {
                Err(JavaError::TooDeep {
                    max: self.limits.max_depth,
                })
            } else {
                self.nested(r, &dir, e, len, chain)
            };
            if let Err(err) = result {
                let stop = matches!(err, JavaError::Budget { .. });
                self.problem(chain, err);
                if stop {
                    chain.pop();
                    return Ok(());
                }
            }
            chain.pop();
        }
        Ok(())
    }

    /// Reads a nested archive in place (stored) or inflated into memory.
    fn nested(
        &mut self,
        r: &mut dyn ReadSeek,
        dir: &zip::Directory,
        e: &Entry,
        len: u64,
        chain: &mut Vec<String>,
    ) -> Result<(), JavaError> {
        check_entry(e)?;
        let (start, size) = zip::data_range(r, dir, e, len)?;
        if e.method == STORED {
            let mut window = Window::new(r, start, size);
            return self.archive(&mut window, size, &e.name, chain);
        }
        let max = self
            .limits
            .max_in_memory
            .saturating_sub(self.held)
            .min(self.limits.max_total_inflated.saturating_sub(self.inflated));
        let bytes = self.inflate(r, e, start, size, max)?;
        let n = bytes.len() as u64;
        self.held += n;
        let result = self.archive(&mut Cursor::new(bytes), n, &e.name, chain);
        self.held -= n;
        result
    }

    /// A metadata file's text.
    fn small_entry(
        &mut self,
        r: &mut dyn ReadSeek,
        dir: &zip::Directory,
        e: &Entry,
        len: u64,
    ) -> Result<String, JavaError> {
        check_entry(e)?;
        let (start, size) = zip::data_range(r, dir, e, len)?;
        let max = self
            .limits
            .max_metadata_size
            .min(self.limits.max_total_inflated.saturating_sub(self.inflated));
        let bytes = self.inflate(r, e, start, size, max)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Inflates (or copies) an entry's data, at most `max` bytes, counting
    /// them against the walk's inflated budget and checking the ratio.
    fn inflate(
        &mut self,
        r: &mut dyn ReadSeek,
        e: &Entry,
        start: u64,
        size: u64,
        max: u64,
    ) -> Result<Vec<u8>, JavaError> {
        if e.uncompressed > max {
            return Err(JavaError::EntryTooLarge {
                entry: e.name.clone(),
                size: e.uncompressed,
                max,
            });
        }
        let ratio_cap = size.saturating_mul(self.limits.max_ratio).max(64 * 1024);
        let cap = max.min(ratio_cap);
        let mut raw = Window::new(r, start, size);
        let mut out = Vec::new();
        let read = match e.method {
            STORED => (&mut raw).take(cap + 1).read_to_end(&mut out),
            DEFLATED => flate2::read::DeflateDecoder::new(std::io::BufReader::new(&mut raw))
                .take(cap + 1)
                .read_to_end(&mut out),
            method => {
                return Err(JavaError::UnsupportedMethod {
                    entry: e.name.clone(),
                    method,
                });
            }
        };
        self.inflated += out.len() as u64;
        if let Err(err) = read {
            return Err(JavaError::Inflate {
                entry: e.name.clone(),
                reason: err.to_string(),
            });
        }
        let got = out.len() as u64;
        if got > cap {
            return Err(if cap == ratio_cap && ratio_cap < max {
                JavaError::Ratio {
                    entry: e.name.clone(),
                    compressed: size,
                    max_ratio: self.limits.max_ratio,
                }
            } else {
                JavaError::EntryTooLarge {
                    entry: e.name.clone(),
                    size: got,
                    max,
                }
            });
        }
        if got != e.uncompressed {
            return Err(JavaError::Inflate {
                entry: e.name.clone(),
                reason: format!("{got} bytes, the directory says {}", e.uncompressed),
            });
        }
        Ok(out)
    }
}

fn check_entry(e: &Entry) -> Result<(), JavaError> {
    if e.encrypted() {
        return Err(JavaError::Encrypted {
            entry: e.name.clone(),
        });
    }
    if e.method != STORED && e.method != DEFLATED {
        return Err(JavaError::UnsupportedMethod {
            entry: e.name.clone(),
            method: e.method,
        });
    }
    Ok(())
}

/// The packages of a Java archive at `database` (its image path),
/// introduced by `layer`: one per artifact, `group:artifact` (or the
/// artifact alone without a group), `pkg:maven/<group>/<artifact>@<version>`,
/// with the chain of nested archives and the evidence in `found_by`.
///
/// ```
/// use trawl_inventory::java::{packages, JavaArchive, JavaArtifact, JavaEvidence};
///
/// let archive = JavaArchive { problems: vec![], artifacts: vec![JavaArtifact {
///     group_id: "org.slf4j".into(), artifact_id: "slf4j-api".into(), version: "1.7.32".into(),
///     found_by: JavaEvidence::PomProperties, nested: vec!["BOOT-INF/lib/slf4j-api-1.7.32.jar".into()],
/// }]};
/// let p = &packages(&archive, "app/app.jar", None)[0];
/// assert_eq!(p.name, "org.slf4j:slf4j-api");
/// assert_eq!(p.purl, "pkg:maven/org.slf4j/slf4j-api@1.7.32");
/// assert_eq!(p.location(), "app/app.jar!/BOOT-INF/lib/slf4j-api-1.7.32.jar");
/// ```
pub fn packages(archive: &JavaArchive, database: &str, layer: Option<&str>) -> Vec<Package> {
    archive
        .artifacts
        .iter()
        .map(|a| {
            let name = if a.group_id.is_empty() {
                a.artifact_id.clone()
            } else {
                format!("{}:{}", a.group_id, a.artifact_id)
            };
            let purl = packageurl::PackageUrl::new("maven", a.artifact_id.as_str())
                .map(|mut u| {
                    if !a.group_id.is_empty() {
                        let _ = u.with_namespace(a.group_id.as_str());
                    }
                    let _ = u.with_version(a.version.as_str());
                    u.to_string()
                })
                .unwrap_or_else(|_| {
                    format!("pkg:maven/{}/{}@{}", a.group_id, a.artifact_id, a.version)
                });
            Package {
                kind: PackageKind::Maven,
                name: name.clone(),
                version: a.version.clone(),
                arch: None,
                source_name: name,
                source_version: a.version.clone(),
                purl,
                layer: layer.map(str::to_string),
                database: database.to_string(),
                maintainer: None,
                license: None,
                epoch: None,
                release: None,
                vendor: None,
                modularity_label: None,
                database_line: None,
                nested: a.nested.clone(),
                found_by: Some(a.found_by.as_str().to_string()),
                role: None,
                owned_by: None,
            }
        })
        .collect()
}

/// The image path of a problem inside an archive, `!/`-joined like
/// [`Package::location`].
pub fn problem_location(database: &str, problem: &JavaProblem) -> String {
    let mut s = database.to_string();
    for inner in &problem.nested {
        s.push_str("!/");
        s.push_str(inner);
    }
    s
}
