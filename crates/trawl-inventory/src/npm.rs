//! Installed npm packages: the `package.json` at the root of every package
//! under a `node_modules` directory.
//!
//! # Which `package.json` files are packages
//!
//! Decided from the path alone, the way npm's tree loader (`@npmcli/arborist`
//! `loadActual`, what `npm ls` prints) walks an installation: from a project,
//! into its `node_modules`, into each package found there, and only into that
//! package's own `node_modules`. A directory `D` is a package root when its
//! path ends in `node_modules/<name>` or `node_modules/@<scope>/<name>` (names
//! not starting with `.`) and the directory holding that `node_modules` is
//! - outside every `node_modules` (a project: `app/`, or `usr/lib/` for
//!   global installs), or
//! - itself a package root (nested: `node_modules/a/node_modules/b`), or
//! - a pnpm virtual-store entry, `node_modules/.pnpm/<name>@<version>`
//!   (`node_modules/.pnpm/<name>@<version>/node_modules/<name>`).
//!
//! So `node_modules/a/lib/package.json`, `node_modules/a/test/fixtures/x/package.json`
//! and `node_modules/a/lib/node_modules/b/package.json` are not packages (npm
//! never loads them), and `node_modules/.bin` or `.cache` never are. pnpm's
//! top-level `node_modules/<name>` entries and the dependency entries inside
//! `.pnpm/<entry>/node_modules/` are symlinks into the store: only regular
//! files are read, so each package is listed once per physical copy.
//!
//! # Which packages are listed
//!
//! The `name` and `version` of the `package.json` (an npm alias installed as
//! `node_modules/<alias>` is listed under the real package's name, the one
//! advisories use). A `package.json` without a string `name` and `version` is
//! skipped with an [`InventoryWarning::MalformedEntry`](crate::InventoryWarning);
//! one that is not JSON at all is an unreadable file.
//!
//! The purl is `pkg:npm/<name>@<version>`, a scope being the purl namespace
//! (`pkg:npm/%40babel/core@7.24.0`).

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::json::{self, KeySeed, Str, StrSeed};
use crate::lang::{FilePackage, FileRead, MetadataCataloger, purl};
use crate::package::PackageKind;

/// Where a package root sits: the name its directory gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackageDir<'a> {
    /// `@scope` when the package is scoped.
    pub scope: Option<&'a str>,
    /// The directory name.
    pub name: &'a str,
}

#[derive(Clone, Copy)]
enum State<'a> {
    /// Not inside any `node_modules`, or in a project directory below one.
    Outside,
    /// Just entered a `node_modules`.
    NodeModules,
    /// In `node_modules/@scope`.
    Scope(&'a str),
    /// In `node_modules/.pnpm`.
    PnpmStore,
    /// In `node_modules/.pnpm/<entry>`.
    PnpmEntry,
    /// At a package root.
    Package(PackageDir<'a>),
    /// Anywhere npm's loader never looks for packages.
    Dead,
}

/// The package whose root holds the `package.json` at `path` (normalised),
/// or `None` when that file is not a package root's manifest (see the
/// module docs for the rule).
///
/// ```
/// use trawl_inventory::npm::package_dir;
/// assert_eq!(package_dir("app/node_modules/@babel/core/package.json").map(|d| (d.scope, d.name)),
///            Some((Some("@babel"), "core")));
/// assert!(package_dir("app/node_modules/.pnpm/ms@2.1.3/node_modules/ms/package.json").is_some());
/// assert!(package_dir("app/node_modules/a/node_modules/b/package.json").is_some());
/// assert!(package_dir("app/node_modules/a/lib/package.json").is_none());
/// assert!(package_dir("app/package.json").is_none());
/// ```
pub fn package_dir(path: &str) -> Option<PackageDir<'_>> {
    let dir = path.strip_suffix("package.json")?;
    let dir = dir.strip_suffix('/')?;
    let mut state = State::Outside;
    for comp in dir.split('/') {
        state = match (state, comp) {
            (State::Dead, _) => return None,
            (_, "" | "." | "..") => return None,
            (State::Outside | State::Package(_) | State::PnpmEntry, "node_modules") => {
                State::NodeModules
            }
            (State::Outside, _) => State::Outside,
            (State::Package(_) | State::PnpmEntry, _) => State::Dead,
            (State::NodeModules, ".pnpm") => State::PnpmStore,
            (State::NodeModules | State::Scope(_), c) if c.starts_with('.') => State::Dead,
            (State::NodeModules, c) if c.starts_with('@') => {
                if c.len() > 1 {
                    State::Scope(c)
                } else {
                    State::Dead
                }
            }
            (State::NodeModules, c) => State::Package(PackageDir {
                scope: None,
                name: c,
            }),
            (State::Scope(scope), c) => State::Package(PackageDir {
                scope: Some(scope),
                name: c,
            }),
            (State::PnpmStore, "node_modules") => State::NodeModules,
            (State::PnpmStore, _) => State::PnpmEntry,
        };
    }
    match state {
        State::Package(d) => Some(d),
        _ => None,
    }
}

/// `name` and `version` of a `package.json`, as far as they are strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    name: Str,
    version: Str,
}

impl Manifest {
    /// The `name`, when it is a non-empty string.
    pub fn name(&self) -> Option<&str> {
        self.name.non_empty()
    }

    /// The `version`, when it is a non-empty string.
    pub fn version(&self) -> Option<&str> {
        self.version.non_empty()
    }
}

/// Why a `package.json` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Not JSON, or nested deeper than the parser's limit (128).
    #[error("{0}")]
    Json(String),
    /// JSON, but not an object.
    #[error("package.json is {0}, not an object")]
    NotAnObject(&'static str),
}

/// Reads `name` and `version` from a `package.json` (a leading byte-order
/// mark is ignored, as npm ignores it; a repeated key counts with its last
/// value, as `JSON.parse` does). Other keys are skipped without being kept.
///
/// ```
/// use trawl_inventory::npm::{parse_manifest, ManifestError};
/// let m = parse_manifest(br#"{"name": "ms", "files": ["index.js"], "version": "2.1.3"}"#).unwrap();
/// assert_eq!((m.name(), m.version()), (Some("ms"), Some("2.1.3")));
/// assert_eq!(parse_manifest(b"[]"), Err(ManifestError::NotAnObject("an array")));
/// assert!(matches!(parse_manifest(b"{\"name\": "), Err(ManifestError::Json(_))));
/// ```
pub fn parse_manifest(data: &[u8]) -> Result<Manifest, ManifestError> {
    let data = json::strip_bom(data);
    let first = json::first_byte(data);
    if first != Some(b'{') {
        // Still report invalid JSON as such.
        serde_json::from_slice::<IgnoredAny>(data)
            .map_err(|e| ManifestError::Json(json::describe(&e)))?;
        return Err(ManifestError::NotAnObject(json::kind_name(first)));
    }
    let mut de = serde_json::Deserializer::from_slice(data);
    let m = ManifestSeed
        .deserialize(&mut de)
        .and_then(|m| de.end().map(|()| m))
        .map_err(|e| ManifestError::Json(json::describe(&e)))?;
    Ok(m)
}

struct ManifestSeed;

impl<'de> DeserializeSeed<'de> for ManifestSeed {
    type Value = Manifest;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Manifest, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ManifestSeed {
    type Value = Manifest;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a package.json object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Manifest, A::Error> {
        let mut m = Manifest::default();
        while let Some(key) = map.next_key_seed(KeySeed(&["name", "version"]))? {
            match key {
                Some(0) => m.name = map.next_value_seed(StrSeed)?,
                Some(_) => m.version = map.next_value_seed(StrSeed)?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(m)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Manifest, A::Error> {
        Err(de::Error::custom("not an object"))
    }
}

/// npm packages under `node_modules`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NpmCataloger;

/// Globs of the files [`NpmCataloger`] reads.
pub const GLOBS: &[&str] = &[
    "**/node_modules/*/package.json",
    "**/node_modules/@*/*/package.json",
];

impl MetadataCataloger for NpmCataloger {
    fn name(&self) -> &'static str {
        "npm"
    }

    fn globs(&self) -> &'static [&'static str] {
        GLOBS
    }

    fn wants(&self, path: &str) -> bool {
        package_dir(path).is_some()
    }

    fn read(&self, _path: &str, data: &[u8]) -> Result<FileRead, String> {
        let m = match parse_manifest(data) {
            Ok(m) => m,
            Err(e @ ManifestError::NotAnObject(_)) => {
                return Ok(FileRead {
                    packages: Vec::new(),
                    skipped: vec![(0, e.to_string())],
                });
            }
            Err(e) => return Err(format!("package.json: {e}")),
        };
        let (Some(name), Some(version)) = (m.name(), m.version()) else {
            let problem = if m.name().is_none() {
                m.name.problem("name")
            } else {
                m.version.problem("version")
            };
            return Ok(FileRead {
                packages: Vec::new(),
                skipped: vec![(0, format!("package.json: {problem}"))],
            });
        };
        let (namespace, bare) = match name.split_once('/') {
            Some((scope, bare)) if scope.starts_with('@') => (Some(scope), bare),
            _ => (None, name),
        };
        Ok(FileRead {
            packages: vec![FilePackage {
                kind: PackageKind::Npm,
                name: name.to_string(),
                version: version.to_string(),
                purl: purl("npm", namespace, bare, version),
                found_by: "package.json",
                arch: None,
                line: None,
            }],
            skipped: Vec::new(),
        })
    }
}

crate::lang::metadata_cataloger!(NpmCataloger);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_shapes() {
        let yes = [
            ("node_modules/a/package.json", None, "a"),
            ("app/node_modules/a/node_modules/b/package.json", None, "b"),
            (
                "app/node_modules/@s/a/node_modules/@t/b/package.json",
                Some("@t"),
                "b",
            ),
            (
                "usr/lib/node_modules/npm/node_modules/abbrev/package.json",
                None,
                "abbrev",
            ),
            (
                "srv/node_modules/.pnpm/@s+a@1.0.0/node_modules/@s/a/package.json",
                Some("@s"),
                "a",
            ),
            (
                "srv/node_modules/.pnpm/node_modules/a/package.json",
                None,
                "a",
            ),
            ("a/packages/web/node_modules/x/package.json", None, "x"),
        ];
        for (path, scope, name) in yes {
            assert_eq!(
                package_dir(path),
                Some(PackageDir { scope, name }),
                "{path}"
            );
        }
        let no = [
            "package.json",
            "app/package.json",
            "node_modules/package.json",
            "node_modules/@s/package.json",
            "node_modules/a/lib/package.json",
            "node_modules/a/lib/node_modules/b/package.json",
            "node_modules/a/test/fixtures/app/node_modules/b/package.json",
            "node_modules/.bin/package.json",
            "node_modules/@s/.x/package.json",
            "node_modules/@/a/package.json",
            "node_modules/.pnpm/package.json",
            "node_modules/.pnpm/a@1/package.json",
            "node_modules/.pnpm/a@1/x/node_modules/a/package.json",
            "node_modules/a/apackage.json",
        ];
        for path in no {
            assert_eq!(package_dir(path), None, "{path}");
        }
    }

    #[test]
    fn manifests() {
        let m = parse_manifest(
            b"\xef\xbb\xbf {\"name\": 1, \"x\": {\"name\": \"inner\"}, \"name\": \"last\", \"version\": [\"1\"]}",
        )
        .unwrap();
        assert_eq!(m.name(), Some("last"));
        assert_eq!(m.version(), None);
        assert_eq!(m.version.problem("version"), "\"version\" is not a string");
        assert!(matches!(
            parse_manifest(b"{\"name\": \"a\"} trailing"),
            Err(ManifestError::Json(_))
        ));
        assert_eq!(
            parse_manifest(b" \"x\""),
            Err(ManifestError::NotAnObject("a string"))
        );
        assert!(matches!(
            parse_manifest(b"nul"),
            Err(ManifestError::Json(_))
        ));
        assert!(matches!(parse_manifest(b""), Err(ManifestError::Json(_))));
    }

    #[test]
    fn deep_nesting_is_skipped_without_recursion() {
        // Values that are not kept are skipped by an iterative scanner, so a
        // million levels cost neither stack nor a tree.
        let deep = |prefix: &[u8], suffix: &[u8]| {
            let mut data = prefix.to_vec();
            data.extend(std::iter::repeat_n(b'[', 1_000_000));
            data.extend(std::iter::repeat_n(b']', 1_000_000));
            data.extend_from_slice(suffix);
            data
        };
        let m = parse_manifest(&deep(b"{\"name\":\"a\",\"version\":\"1\",\"x\":", b"}")).unwrap();
        assert_eq!((m.name(), m.version()), (Some("a"), Some("1")));
        let m = parse_manifest(&deep(b"{\"version\":\"1\",\"name\":", b"}")).unwrap();
        assert_eq!(m.name.problem("name"), "\"name\" is not a string");
        assert_eq!(
            parse_manifest(&deep(b"", b"")),
            Err(ManifestError::NotAnObject("an array"))
        );
        // Unbalanced: an error, not a crash.
        assert!(matches!(
            parse_manifest(&deep(b"{\"x\":", b"")),
            Err(ManifestError::Json(_))
        ));
    }

    #[test]
    fn cataloger_skips_and_names() {
        let c = NpmCataloger;
        let r = c
            .read(
                "node_modules/@babel/core/package.json",
                br#"{"name":"@babel/core","version":"7.24.0"}"#,
            )
            .unwrap();
        assert_eq!(r.packages[0].purl, "pkg:npm/%40babel/core@7.24.0");
        assert_eq!(r.packages[0].name, "@babel/core");
        let r = c
            .read("node_modules/x/package.json", br#"{"name":"x"}"#)
            .unwrap();
        assert_eq!(r.packages, vec![]);
        assert_eq!(
            r.skipped,
            vec![(0, "package.json: no \"version\"".to_string())]
        );
        let long = format!("{{\"name\":\"{}\",\"version\":\"1\"}}", "a".repeat(5000));
        let r = c
            .read("node_modules/x/package.json", long.as_bytes())
            .unwrap();
        assert!(r.skipped[0].1.contains("longer than"), "{:?}", r.skipped);
        assert!(c.read("node_modules/x/package.json", b"{").is_err());
    }
}
