//! .NET packages: the `libraries` of a `*.deps.json`.
//!
//! The .NET host reads an application's `<app>.deps.json`
//! (<https://github.com/dotnet/sdk/blob/main/documentation/specs/runtime-configuration-file.md>)
//! to find its dependencies. Its `libraries` object maps `"<Name>/<Version>"`
//! to a description whose `type` says what the library is: `package` (from
//! NuGet), `project` (the application and projects it references),
//! `reference`, `runtimepack`. Only `package` libraries are NuGet packages:
//! they are listed as `pkg:nuget/<Name>@<Version>`, the name as written (NuGet
//! ids compare case-insensitively).
//!
//! A library key that is not `<Name>/<Version>`, or a library without a
//! string `type`, is skipped with a warning naming its position (1-based) in
//! `libraries`; a file that is not JSON, or has no `libraries` object, is
//! unreadable.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use crate::json::{self, KeySeed, Str, StrSeed};
use crate::lang::{FilePackage, FileRead, MetadataCataloger, purl};
use crate::package::PackageKind;

/// Most libraries read from one file (a bound on what a hostile file costs;
/// real applications list hundreds).
pub const MAX_LIBRARIES: usize = 65_536;

/// One entry of `libraries`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Library {
    /// The key, `<Name>/<Version>` (at most [`json`](crate) string limit long;
    /// longer keys are kept empty).
    pub key: String,
    /// The `type`, when it is a string.
    pub kind: Option<String>,
    /// 1-based position in `libraries`.
    pub index: usize,
}

impl Library {
    /// `(Name, Version)` from the key, when it has that shape.
    pub fn name_version(&self) -> Option<(&str, &str)> {
        let (name, version) = self.key.split_once('/')?;
        (!name.trim().is_empty() && !version.trim().is_empty() && !version.contains('/'))
            .then_some((name, version))
    }
}

/// Why a deps.json could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DepsError {
    /// Not JSON, too deep, or `libraries` of the wrong type.
    #[error("{0}")]
    Json(String),
    /// The document is not an object.
    #[error("deps.json is {0}, not an object")]
    NotAnObject(&'static str),
    /// No `libraries` object.
    #[error("deps.json has no \"libraries\" object")]
    NoLibraries,
}

/// Reads the `libraries` of a deps.json.
///
/// ```
/// use trawl_inventory::dotnet::parse_deps;
/// let libs = parse_deps(br#"{"targets": {}, "libraries": {
///     "App/1.0.0": {"type": "project"},
///     "Newtonsoft.Json/13.0.3": {"type": "package", "serviceable": true}}}"#).unwrap();
/// assert_eq!(libs[1].name_version(), Some(("Newtonsoft.Json", "13.0.3")));
/// assert_eq!(libs[1].kind.as_deref(), Some("package"));
/// ```
pub fn parse_deps(data: &[u8]) -> Result<Vec<Library>, DepsError> {
    let data = json::strip_bom(data);
    let first = json::first_byte(data);
    if first != Some(b'{') {
        serde_json::from_slice::<IgnoredAny>(data)
            .map_err(|e| DepsError::Json(json::describe(&e)))?;
        return Err(DepsError::NotAnObject(json::kind_name(first)));
    }
    let mut de = serde_json::Deserializer::from_slice(data);
    let libs = json::Member {
        key: "libraries",
        what: "a deps.json object",
        seed: Libraries,
    }
    .deserialize(&mut de)
    .and_then(|l| de.end().map(|()| l))
    .map_err(|e| DepsError::Json(json::describe(&e)))?;
    libs.ok_or(DepsError::NoLibraries)
}

/// The `libraries` object of a deps.json.
#[derive(Clone, Copy)]
struct Libraries;

impl<'de> DeserializeSeed<'de> for Libraries {
    type Value = Vec<Library>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Libraries {
    type Value = Vec<Library>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a libraries object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(key) = map.next_key_seed(StrSeed)? {
            if out.len() >= MAX_LIBRARIES {
                return Err(de::Error::custom(format_args!(
                    "more than {MAX_LIBRARIES} libraries"
                )));
            }
            let kind = map.next_value_seed(LibrarySeed)?;
            out.push(Library {
                key: match key {
                    Str::Value(k) => k,
                    _ => String::new(),
                },
                kind,
                index: out.len() + 1,
            });
        }
        Ok(out)
    }
}

/// A library description: its `type`, when a string.
struct LibrarySeed;

impl<'de> DeserializeSeed<'de> for LibrarySeed {
    type Value = Option<String>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LibrarySeed {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a library object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut kind = None;
        while let Some(key) = map.next_key_seed(KeySeed(&["type"]))? {
            match key {
                Some(_) => {
                    kind = match map.next_value_seed(StrSeed)? {
                        Str::Value(s) => Some(s),
                        _ => None,
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(kind)
    }
}

/// NuGet packages in `*.deps.json` files.
#[derive(Debug, Clone, Copy, Default)]
pub struct DotnetCataloger;

/// Globs of the files [`DotnetCataloger`] reads.
pub const GLOBS: &[&str] = &["**/*.deps.json"];

impl MetadataCataloger for DotnetCataloger {
    fn name(&self) -> &'static str {
        "dotnet"
    }

    fn globs(&self) -> &'static [&'static str] {
        GLOBS
    }

    fn wants(&self, path: &str) -> bool {
        let file = path.rsplit('/').next().unwrap_or(path);
        file.len() > ".deps.json".len() && file.ends_with(".deps.json")
    }

    fn read(&self, _path: &str, data: &[u8]) -> Result<FileRead, String> {
        let libs = parse_deps(data).map_err(|e| e.to_string())?;
        let mut read = FileRead::default();
        for lib in &libs {
            match lib.kind.as_deref() {
                Some("package") => {}
                Some(_) => continue,
                None => {
                    read.skipped
                        .push((lib.index, format!("library {}: no \"type\"", lib.index)));
                    continue;
                }
            }
            let Some((name, version)) = lib.name_version() else {
                read.skipped.push((
                    lib.index,
                    format!("library {}: key is not <Name>/<Version>", lib.index),
                ));
                continue;
            };
            read.packages.push(FilePackage {
                kind: PackageKind::Nuget,
                name: name.to_string(),
                version: version.to_string(),
                purl: purl("nuget", None, name, version),
                found_by: "deps.json",
                arch: None,
                line: Some(lib.index),
            });
        }
        Ok(read)
    }
}

crate::lang::metadata_cataloger!(DotnetCataloger);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_only_and_bad_keys() {
        let r = DotnetCataloger
            .read(
                "app/App.deps.json",
                br#"{"libraries": {
                    "App/1.0.0": {"type": "project", "serviceable": false},
                    "System.Memory/4.6.3": {"sha512": "x", "type": "package"},
                    "NoVersion": {"type": "package"},
                    "Untyped/1.0": {"type": 3},
                    "runtimepack.Microsoft.NETCore.App.Runtime.linux-x64/8.0.0": {"type": "runtimepack"}
                }}"#,
            )
            .unwrap();
        let got: Vec<(&str, &str, &str)> = r
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.purl.as_str()))
            .collect();
        assert_eq!(
            got,
            [("System.Memory", "4.6.3", "pkg:nuget/System.Memory@4.6.3")]
        );
        assert_eq!(
            r.skipped,
            vec![
                (3, "library 3: key is not <Name>/<Version>".to_string()),
                (4, "library 4: no \"type\"".to_string()),
            ]
        );
    }

    #[test]
    fn shapes() {
        assert_eq!(parse_deps(b"{}"), Err(DepsError::NoLibraries));
        assert_eq!(parse_deps(b"[]"), Err(DepsError::NotAnObject("an array")));
        assert!(matches!(
            parse_deps(b"{\"libraries\": []}"),
            Err(DepsError::Json(_))
        ));
        assert!(matches!(
            parse_deps(b"{\"libraries\": {\"a/1\": 5}}"),
            Err(DepsError::Json(_))
        ));
        assert!(DotnetCataloger.wants("app/My.App.deps.json"));
        assert!(!DotnetCataloger.wants("app/.deps.json"));
        assert!(!DotnetCataloger.wants("app/deps.json"));
    }
}
