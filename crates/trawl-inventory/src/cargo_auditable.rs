//! Rust binaries built with `cargo auditable`: the dependency list embedded
//! in their `.dep-v0` section.
//!
//! # The format
//!
//! `cargo auditable build` (<https://github.com/rust-secure-code/cargo-auditable>)
//! links a `.dep-v0` section holding zlib-compressed JSON, the schema of its
//! `auditable-serde` crate:
//! `{"format": 1, "packages": [{"name", "version", "source", "kind",
//! "dependencies": [indices], "root": bool}]}` — `source` is `crates.io`,
//! `git`, `local`, `registry` or another string; `kind` is `runtime`
//! (the default) or `build` (used only to build: build scripts, proc
//! macros); `dependencies` index into `packages`; exactly one package (the
//! binary's own crate) may be `root`; the dependency graph has no cycles.
//!
//! # Why not `auditable-info`
//!
//! The reference reader reads the whole executable into memory (or needs
//! it as one slice), which a scan of a large binary must not do; its
//! `auditable-serde` leaves dependency indices unchecked and the package
//! count unbounded. This reader finds the section through the ELF headers
//! (a slice or a `Read + Seek` file read on demand), and enforces
//! [`AuditableLimits`]: compressed size, decompressed size (decompression
//! stops at the cap, so a section that inflates to gigabytes costs the cap,
//! not the gigabytes), and package count; indices out of range, more than
//! one root and cycles are typed errors.
//!
//! [`packages`] turns the list into [`Package`]s (`pkg:cargo/name@version`):
//! the root crate has role [`PackageRole::Main`], `build` crates
//! [`PackageRole::Build`], the others [`PackageRole::Dependency`].

use std::io::{Read, Seek};

use object::read::ReadRef;
use serde::{Deserialize, Serialize};

use crate::elf::{Elf, ElfError};
use crate::extract::{BinaryFormat, ElfDepsExtractor, elf_packages_of};
use crate::{Cataloger, Inventory, OsRelease, Package, PackageKind, PackageRole};
use trawl_layers::{MergedFs, Selection};

/// The Rust crates of the image's cargo-auditable executables (from the
/// [`ElfDepsExtractor`] results the layer reader kept). An executable that
/// could not be read at all is reported once, by
/// [`crate::golang::GoBinaryCataloger`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RustBinaryCataloger;

impl Cataloger for RustBinaryCataloger {
    fn name(&self) -> &'static str {
        "rust-binary"
    }

    fn selection(&self) -> Selection {
        Selection::new().with_extractor(ElfDepsExtractor)
    }

    fn catalog(&self, fs: &MergedFs, _os: Option<&OsRelease>, inventory: &mut Inventory) {
        for x in fs.extracted(ElfDepsExtractor::ID) {
            let (pkgs, warnings) = elf_packages_of(BinaryFormat::Rust, x.path, x.layer, x.result);
            inventory.packages.extend(pkgs);
            inventory.warnings.extend(warnings);
        }
    }
}

/// The section cargo-auditable writes.
pub const SECTION: &[u8] = b".dep-v0";

/// Bounds on what one binary's dependency data may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditableLimits {
    /// Largest `.dep-v0` section read (compressed bytes). Default 4 MiB.
    pub max_compressed: u64,
    /// Largest decompressed JSON. Default 8 MiB (`auditable-info`'s default).
    pub max_decompressed: u64,
    /// Most packages listed. Default 20,000.
    pub max_packages: usize,
}

impl Default for AuditableLimits {
    fn default() -> Self {
        AuditableLimits {
            max_compressed: 4 << 20,
            max_decompressed: 8 << 20,
            max_packages: 20_000,
        }
    }
}

/// The dependency tree of one binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditableDeps {
    /// Format revision (0 when absent).
    pub format: u32,
    /// Every crate, in the binary's order.
    pub packages: Vec<AuditablePackage>,
}

/// One crate of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditablePackage {
    /// Crate name.
    pub name: String,
    /// Crate version.
    pub version: String,
    /// Where it came from (`crates.io`, `git`, `local`, `registry`, ...).
    pub source: String,
    /// Whether it is used only at build time.
    pub kind: DependencyKind,
    /// Indices of its dependencies in the package list.
    pub dependencies: Vec<usize>,
    /// Whether it is the binary's own crate.
    pub root: bool,
}

/// cargo-auditable's dependency kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum DependencyKind {
    /// Linked into the binary (or unknown: the format's default).
    #[default]
    Runtime,
    /// Used only to build it.
    Build,
}

/// Why a binary's cargo-auditable data could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditableError {
    /// The ELF headers could not be used.
    #[error(transparent)]
    Elf(#[from] ElfError),
    /// The section is larger than [`AuditableLimits::max_compressed`].
    #[error(".dep-v0 section is {size} bytes, over the limit of {max}")]
    SectionTooLarge {
        /// Section size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The zlib stream is corrupt or truncated.
    #[error(".dep-v0 section: zlib data corrupt after {decompressed} decompressed bytes: {reason}")]
    Decompress {
        /// Bytes produced before the error.
        decompressed: u64,
        /// The decoder's message.
        reason: String,
    },
    /// The JSON is larger than [`AuditableLimits::max_decompressed`]
    /// (decompression stopped there).
    #[error(".dep-v0 section decompresses to more than {max} bytes")]
    DecompressedTooLarge {
        /// The limit.
        max: u64,
    },
    /// The JSON does not follow the schema.
    #[error(".dep-v0 JSON, line {line} column {column}: {reason}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// serde_json's message.
        reason: String,
    },
    /// More packages than [`AuditableLimits::max_packages`].
    #[error(".dep-v0 lists more than {max} packages")]
    TooManyPackages {
        /// The limit.
        max: usize,
    },
    /// A dependency index that names no package.
    #[error(".dep-v0 package {package} ({name}) depends on package {index}, but there are {count}")]
    BadDependencyIndex {
        /// Index of the package.
        package: usize,
        /// Its name.
        name: String,
        /// The bad index.
        index: usize,
        /// Number of packages.
        count: usize,
    },
    /// More than one package marked `root`.
    #[error(".dep-v0 marks packages {first} and {second} both as root")]
    MultipleRoots {
        /// First root index.
        first: usize,
        /// Second root index.
        second: usize,
    },
    /// The dependency graph has a cycle through this package.
    #[error(".dep-v0 dependency graph has a cycle through package {package} ({name})")]
    Cycle {
        /// Index of a package on the cycle.
        package: usize,
        /// Its name.
        name: String,
    },
}

/// Reads the dependency data of an ELF file held in memory: `Ok(None)` when
/// it has no `.dep-v0` section.
pub fn read_elf(
    data: &[u8],
    limits: &AuditableLimits,
) -> Result<Option<AuditableDeps>, AuditableError> {
    read_from(&Elf::parse(data)?, limits)
}

/// Reads the dependency data of an ELF file through `Read + Seek`, reading
/// only the headers and the section.
pub fn read_elf_seekable<R: Read + Seek>(
    file: R,
    limits: &AuditableLimits,
) -> Result<Option<AuditableDeps>, AuditableError> {
    let cache = object::ReadCache::new(file);
    read_from(&Elf::parse(&cache)?, limits)
}

/// Reads the dependency data from a parsed ELF file.
pub(crate) fn read_from<'data, R: ReadRef<'data>>(
    elf: &Elf<'data, R>,
    limits: &AuditableLimits,
) -> Result<Option<AuditableDeps>, AuditableError> {
    let Some(section) = elf.section(SECTION) else {
        return Ok(None);
    };
    if section.size > limits.max_compressed {
        return Err(AuditableError::SectionTooLarge {
            size: section.size,
            max: limits.max_compressed,
        });
    }
    let data = elf.section_data(&section, ".dep-v0 section")?;
    parse_section(data, limits).map(Some)
}

/// Decompresses and parses the content of a `.dep-v0` section.
///
/// ```
/// use std::io::Write;
/// use trawl_inventory::cargo_auditable::{parse_section, AuditableLimits, DependencyKind};
///
/// let json = br#"{"packages":[{"name":"demo","version":"0.1.0","source":"local","dependencies":[1],"root":true},
///                 {"name":"autocfg","version":"1.4.0","source":"crates.io","kind":"build"}]}"#;
/// let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
/// z.write_all(json).unwrap();
/// let deps = parse_section(&z.finish().unwrap(), &AuditableLimits::default()).unwrap();
/// assert!(deps.packages[0].root);
/// assert_eq!(deps.packages[1].kind, DependencyKind::Build);
/// ```
pub fn parse_section(
    compressed: &[u8],
    limits: &AuditableLimits,
) -> Result<AuditableDeps, AuditableError> {
    if compressed.len() as u64 > limits.max_compressed {
        return Err(AuditableError::SectionTooLarge {
            size: compressed.len() as u64,
            max: limits.max_compressed,
        });
    }
    let mut json = Vec::new();
    let mut decoder = flate2::read::ZlibDecoder::new(compressed).take(limits.max_decompressed + 1);
    if let Err(e) = decoder.read_to_end(&mut json) {
        return Err(AuditableError::Decompress {
            decompressed: json.len() as u64,
            reason: e.to_string(),
        });
    }
    if json.len() as u64 > limits.max_decompressed {
        return Err(AuditableError::DecompressedTooLarge {
            max: limits.max_decompressed,
        });
    }
    parse_json(&json, limits)
}

/// Parses and validates the decompressed JSON.
pub fn parse_json(json: &[u8], limits: &AuditableLimits) -> Result<AuditableDeps, AuditableError> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let raw = RawDeps::deserialize_with_cap(&mut de, limits.max_packages);
    let raw = match raw.and_then(|r| de.end().map(|()| r)) {
        Ok(r) => r,
        Err(e) => {
            if e.to_string().starts_with(TOO_MANY) {
                return Err(AuditableError::TooManyPackages {
                    max: limits.max_packages,
                });
            }
            return Err(AuditableError::Json {
                line: e.line(),
                column: e.column(),
                reason: e.to_string(),
            });
        }
    };
    let deps = AuditableDeps {
        format: raw.format,
        packages: raw
            .packages
            .into_iter()
            .map(|p| AuditablePackage {
                name: p.name,
                version: p.version,
                source: p.source,
                kind: match p.kind.as_deref() {
                    Some("build") => DependencyKind::Build,
                    _ => DependencyKind::Runtime,
                },
                dependencies: p.dependencies,
                root: p.root,
            })
            .collect(),
    };
    validate(&deps)?;
    Ok(deps)
}

/// Index range, single root, no cycle (Kahn's algorithm: whatever cannot be
/// ordered lies on or behind a cycle).
fn validate(deps: &AuditableDeps) -> Result<(), AuditableError> {
    let n = deps.packages.len();
    let mut root = None;
    let mut indegree = vec![0usize; n];
    for (i, p) in deps.packages.iter().enumerate() {
        if p.root {
            if let Some(first) = root {
                return Err(AuditableError::MultipleRoots { first, second: i });
            }
            root = Some(i);
        }
        for &d in &p.dependencies {
            if d >= n {
                return Err(AuditableError::BadDependencyIndex {
                    package: i,
                    name: p.name.clone(),
                    index: d,
                    count: n,
                });
            }
            indegree[d] += 1;
        }
    }
    let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut done = 0;
    while let Some(i) = ready.pop() {
        done += 1;
        for &d in &deps.packages[i].dependencies {
            indegree[d] -= 1;
            if indegree[d] == 0 {
                ready.push(d);
            }
        }
    }
    if done < n
        && let Some(i) = (0..n).find(|&i| indegree[i] > 0)
    {
        return Err(AuditableError::Cycle {
            package: i,
            name: deps.packages[i].name.clone(),
        });
    }
    Ok(())
}

const TOO_MANY: &str = "too many packages";

#[derive(Deserialize)]
struct RawDeps {
    packages: Vec<RawPackage>,
    #[serde(default)]
    format: u32,
}

#[derive(Deserialize)]
struct RawPackage {
    name: String,
    version: String,
    source: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    dependencies: Vec<usize>,
    #[serde(default)]
    root: bool,
}

impl RawDeps {
    /// Deserializes with the `packages` array cut off after `max` entries,
    /// before they are all in memory.
    fn deserialize_with_cap<'de, D: serde::Deserializer<'de>>(
        de: D,
        max: usize,
    ) -> Result<RawDeps, D::Error> {
        use serde::de::{DeserializeSeed, Error, MapAccess, SeqAccess, Visitor};
        use std::fmt;

        struct Packages(usize);
        impl<'de> DeserializeSeed<'de> for Packages {
            type Value = Vec<RawPackage>;
            fn deserialize<D: serde::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Self::Value, D::Error> {
                d.deserialize_seq(self)
            }
        }
        impl<'de> Visitor<'de> for Packages {
            type Value = Vec<RawPackage>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of packages")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(p) = seq.next_element::<RawPackage>()? {
                    if out.len() == self.0 {
                        return Err(A::Error::custom(TOO_MANY));
                    }
                    out.push(p);
                }
                Ok(out)
            }
        }

        struct Top(usize);
        impl<'de> Visitor<'de> for Top {
            type Value = RawDeps;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a cargo-auditable object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawDeps, A::Error> {
                let mut packages = None;
                let mut format = 0;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "packages" => {
                            if packages.is_some() {
                                return Err(A::Error::duplicate_field("packages"));
                            }
                            packages = Some(map.next_value_seed(Packages(self.0))?);
                        }
                        "format" => format = map.next_value()?,
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(RawDeps {
                    packages: packages.ok_or_else(|| A::Error::missing_field("packages"))?,
                    format,
                })
            }
        }
        de.deserialize_map(Top(max))
    }
}

/// The packages of a cargo-auditable binary at `database` (its image path),
/// introduced by `layer`.
///
/// ```
/// use trawl_inventory::cargo_auditable::{packages, parse_json, AuditableLimits};
/// use trawl_inventory::PackageRole;
///
/// let deps = parse_json(br#"{"packages":[{"name":"demo","version":"0.1.0","source":"local","root":true,"dependencies":[1]},
///     {"name":"itoa","version":"1.0.15","source":"crates.io"}]}"#, &AuditableLimits::default()).unwrap();
/// let pkgs = packages(&deps, "usr/local/bin/demo", None);
/// assert_eq!(pkgs[0].role, Some(PackageRole::Main));
/// assert_eq!(pkgs[1].purl, "pkg:cargo/itoa@1.0.15");
/// ```
pub fn packages(deps: &AuditableDeps, database: &str, layer: Option<&str>) -> Vec<Package> {
    deps.packages
        .iter()
        .map(|p| {
            let role = if p.root {
                PackageRole::Main
            } else if p.kind == DependencyKind::Build {
                PackageRole::Build
            } else {
                PackageRole::Dependency
            };
            let purl = packageurl::PackageUrl::new("cargo", p.name.as_str())
                .map(|mut u| {
                    if !p.version.is_empty() {
                        let _ = u.with_version(p.version.as_str());
                    }
                    u.to_string()
                })
                .unwrap_or_else(|_| format!("pkg:cargo/{}@{}", p.name, p.version));
            Package {
                kind: PackageKind::Cargo,
                name: p.name.clone(),
                version: p.version.clone(),
                arch: None,
                source_name: p.name.clone(),
                source_version: p.version.clone(),
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
                nested: Vec::new(),
                found_by: Some("cargo-auditable".into()),
                role: Some(role),
                owned_by: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> AuditableLimits {
        AuditableLimits::default()
    }

    #[test]
    fn index_out_of_range() {
        let err = parse_json(
            br#"{"packages":[{"name":"a","version":"1.0.0","source":"local","dependencies":[5]}]}"#,
            &limits(),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            AuditableError::BadDependencyIndex {
                index: 5,
                count: 1,
                ..
            }
        ));
    }

    #[test]
    fn cycles_and_roots() {
        let err = parse_json(
            br#"{"packages":[{"name":"a","version":"1.0.0","source":"local","dependencies":[1],"root":true},
                              {"name":"b","version":"1.0.0","source":"local","dependencies":[0]}]}"#,
            &limits(),
        )
        .unwrap_err();
        assert!(matches!(err, AuditableError::Cycle { .. }), "{err}");
        let err = parse_json(
            br#"{"packages":[{"name":"a","version":"1.0.0","source":"local","dependencies":[0]}]}"#,
            &limits(),
        )
        .unwrap_err();
        assert!(
            matches!(err, AuditableError::Cycle { package: 0, .. }),
            "{err}"
        );
        let err = parse_json(
            br#"{"packages":[{"name":"a","version":"1.0.0","source":"local","root":true},
                              {"name":"b","version":"1.0.0","source":"local","root":true}]}"#,
            &limits(),
        )
        .unwrap_err();
        assert_eq!(
            err,
            AuditableError::MultipleRoots {
                first: 0,
                second: 1
            }
        );
    }

    #[test]
    fn package_count_cap() {
        let one = r#"{"name":"a","version":"1.0.0","source":"crates.io"}"#;
        let json = format!("{{\"packages\":[{}]}}", [one; 11].join(","));
        let small = AuditableLimits {
            max_packages: 10,
            ..limits()
        };
        assert_eq!(
            parse_json(json.as_bytes(), &small).unwrap_err(),
            AuditableError::TooManyPackages { max: 10 }
        );
        assert_eq!(
            parse_json(json.as_bytes(), &limits())
                .unwrap()
                .packages
                .len(),
            11
        );
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let err = parse_json(b"{\"packages\":\n[{\"name\":1}]}", &limits()).unwrap_err();
        assert!(matches!(err, AuditableError::Json { line: 2, .. }), "{err}");
        let err = parse_json(b"{}", &limits()).unwrap_err();
        assert!(matches!(err, AuditableError::Json { .. }), "{err}");
    }
}
