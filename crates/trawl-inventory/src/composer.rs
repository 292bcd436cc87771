//! PHP packages installed by Composer: `vendor/composer/installed.json`.
//!
//! Composer writes the list of what it installed into the vendor directory
//! (<https://getcomposer.org/doc/07-runtime.md#installed-versions>), in one
//! of two forms:
//! - Composer 1: a JSON array of package objects;
//! - Composer 2: an object `{"packages": [...], "dev": ..., "dev-package-names": [...]}`.
//!
//! Each package object has `name` (`vendor/name`) and `version`. The version
//! is kept exactly as Composer writes it, which is what `composer show`
//! prints: `v5.4.53` for a package tagged with a `v`, `1.1.4` otherwise. The
//! purl carries the same string (`pkg:composer/symfony/console@v5.4.53`), as
//! Syft and Trivy emit it. Packagist advisories (and OSV's Packagist data)
//! write versions without the `v`; Composer's own version parser treats
//! `v5.4.53` and `5.4.53` as one version, and so must a matcher.
//!
//! A package object without a string `name` and `version` is skipped with a
//! warning naming its position in the list (1-based); a file that is not
//! JSON, or JSON of another shape, is unreadable.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::json::{self, KeySeed, Str, StrSeed};
use crate::lang::{FilePackage, FileRead, MetadataCataloger, purl};
use crate::package::PackageKind;

/// Most package entries read from one file: far more than any real vendor
/// directory holds, and a bound on what a hostile list of `{}` costs.
pub const MAX_ENTRIES: usize = 65_536;

/// The installed.json layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstalledFormat {
    /// Composer 1: a top-level array.
    V1,
    /// Composer 2: `{"packages": [...]}`.
    V2,
}

/// One package entry of installed.json, as far as its fields are strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstalledEntry {
    name: Str,
    version: Str,
    /// 1-based position in the package list.
    pub index: usize,
}

impl InstalledEntry {
    /// `name` (`vendor/name`), when it is a non-empty string.
    pub fn name(&self) -> Option<&str> {
        self.name.non_empty()
    }

    /// `version`, when it is a non-empty string.
    pub fn version(&self) -> Option<&str> {
        self.version.non_empty()
    }

    /// Why the entry names no package at a version, if it does not.
    pub fn problem(&self) -> Option<String> {
        if self.name().is_none() {
            Some(self.name.problem("name"))
        } else if self.version().is_none() {
            Some(self.version.problem("version"))
        } else {
            None
        }
    }
}

/// A parsed installed.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// Which layout the file used.
    pub format: InstalledFormat,
    /// The package entries, in file order.
    pub entries: Vec<InstalledEntry>,
}

/// Why installed.json could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InstalledError {
    /// Not JSON, nested too deep, or a package entry that is not an object.
    #[error("{0}")]
    Json(String),
    /// JSON of neither layout.
    #[error("installed.json is {0}, neither an array nor an object")]
    Shape(&'static str),
    /// A Composer 2 object without a `packages` array.
    #[error("installed.json object has no \"packages\" array")]
    NoPackages,
}

/// Reads the package entries of an installed.json, either layout.
///
/// ```
/// use trawl_inventory::composer::{parse_installed, InstalledFormat};
/// let v2 = parse_installed(br#"{"packages": [{"name": "psr/log", "version": "1.1.4"}], "dev": true}"#).unwrap();
/// assert_eq!(v2.format, InstalledFormat::V2);
/// assert_eq!((v2.entries[0].name(), v2.entries[0].version()), (Some("psr/log"), Some("1.1.4")));
/// let v1 = parse_installed(br#"[{"name": "psr/log", "version": "1.1.4"}]"#).unwrap();
/// assert_eq!((v1.format, v1.entries.len()), (InstalledFormat::V1, 1));
/// ```
pub fn parse_installed(data: &[u8]) -> Result<Installed, InstalledError> {
    let data = json::strip_bom(data);
    let first = json::first_byte(data);
    let mut de = serde_json::Deserializer::from_slice(data);
    let result = match first {
        Some(b'[') => PackageList
            .deserialize(&mut de)
            .map(|entries| Some((InstalledFormat::V1, entries))),
        Some(b'{') => json::Member {
            key: "packages",
            what: "an installed.json object",
            seed: PackageList,
        }
        .deserialize(&mut de)
        .map(|entries| entries.map(|e| (InstalledFormat::V2, e))),
        _ => {
            serde_json::from_slice::<IgnoredAny>(data)
                .map_err(|e| InstalledError::Json(json::describe(&e)))?;
            return Err(InstalledError::Shape(json::kind_name(first)));
        }
    };
    let parsed = result
        .and_then(|r| de.end().map(|()| r))
        .map_err(|e| InstalledError::Json(json::describe(&e)))?;
    let (format, entries) = parsed.ok_or(InstalledError::NoPackages)?;
    Ok(Installed { format, entries })
}

/// The package entries (Composer 1 file, or Composer 2's `packages` array).
#[derive(Clone, Copy)]
struct PackageList;

impl<'de> DeserializeSeed<'de> for PackageList {
    type Value = Vec<InstalledEntry>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for PackageList {
    type Value = Vec<InstalledEntry>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of package objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(mut entry) = seq.next_element_seed(EntrySeed)? {
            if out.len() >= MAX_ENTRIES {
                return Err(de::Error::custom(format_args!(
                    "more than {MAX_ENTRIES} package entries"
                )));
            }
            entry.index = out.len() + 1;
            out.push(entry);
        }
        Ok(out)
    }
}

struct EntrySeed;

impl<'de> DeserializeSeed<'de> for EntrySeed {
    type Value = InstalledEntry;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed {
    type Value = InstalledEntry;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a package object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut e = InstalledEntry::default();
        while let Some(key) = map.next_key_seed(KeySeed(&["name", "version"]))? {
            match key {
                Some(0) => e.name = map.next_value_seed(StrSeed)?,
                Some(_) => e.version = map.next_value_seed(StrSeed)?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(e)
    }
}

/// PHP packages in `vendor/composer/installed.json`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ComposerCataloger;

/// Globs of the files [`ComposerCataloger`] reads.
pub const GLOBS: &[&str] = &["**/vendor/composer/installed.json"];

impl MetadataCataloger for ComposerCataloger {
    fn name(&self) -> &'static str {
        "composer"
    }

    fn globs(&self) -> &'static [&'static str] {
        GLOBS
    }

    fn wants(&self, path: &str) -> bool {
        path == "vendor/composer/installed.json"
            || path.ends_with("/vendor/composer/installed.json")
    }

    fn read(&self, _path: &str, data: &[u8]) -> Result<FileRead, String> {
        let installed = parse_installed(data).map_err(|e| e.to_string())?;
        let mut read = FileRead::default();
        for e in installed.entries {
            if let Some(problem) = e.problem() {
                read.skipped
                    .push((e.index, format!("package entry {}: {problem}", e.index)));
                continue;
            }
            let (Some(name), Some(version)) = (e.name(), e.version()) else {
                continue;
            };
            let (namespace, bare) = match name.split_once('/') {
                Some((vendor, bare)) => (Some(vendor), bare),
                None => (None, name),
            };
            read.packages.push(FilePackage {
                kind: PackageKind::Composer,
                name: name.to_string(),
                version: version.to_string(),
                purl: purl("composer", namespace, bare, version),
                found_by: "installed.json",
                arch: None,
                line: Some(e.index),
            });
        }
        Ok(read)
    }
}

crate::lang::metadata_cataloger!(ComposerCataloger);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_errors() {
        assert_eq!(
            parse_installed(b"{\"dev\": true}"),
            Err(InstalledError::NoPackages)
        );
        assert_eq!(
            parse_installed(b"3"),
            Err(InstalledError::Shape("a number"))
        );
        assert!(matches!(
            parse_installed(b"[1]"),
            Err(InstalledError::Json(_))
        ));
        assert!(matches!(
            parse_installed(b"{\"packages\": {}}"),
            Err(InstalledError::Json(_))
        ));
        assert!(matches!(
            parse_installed(b"[] []"),
            Err(InstalledError::Json(_))
        ));
        let v =
            parse_installed(b"{\"packages\": [], \"packages\": [{\"name\": \"a/b\"}]}").unwrap();
        assert_eq!(v.entries.len(), 1, "the last packages key counts");
    }

    #[test]
    fn cataloger_keeps_version_as_written() {
        let r = ComposerCataloger
            .read(
                "app/vendor/composer/installed.json",
                br#"{"packages": [
                    {"name": "symfony/console", "version": "v5.4.53", "version_normalized": "5.4.53.0"},
                    {"name": "psr/log"},
                    {"name": "Psr/Container", "version": "1.1.2"}
                ]}"#,
            )
            .unwrap();
        let got: Vec<(&str, &str, &str)> = r
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.purl.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "symfony/console",
                    "v5.4.53",
                    "pkg:composer/symfony/console@v5.4.53"
                ),
                ("Psr/Container", "1.1.2", "pkg:composer/psr/container@1.1.2"),
            ]
        );
        assert_eq!(
            r.skipped,
            vec![(2, "package entry 2: no \"version\"".to_string())]
        );
        assert!(ComposerCataloger.wants("vendor/composer/installed.json"));
        assert!(!ComposerCataloger.wants("avendor/composer/installed.json"));
    }
}
