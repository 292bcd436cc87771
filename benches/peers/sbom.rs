//! The Debian packages in a CycloneDX JSON document, from each component's
//! package URL, normalised so that the three scanners' lists compare: Trivy
//! writes a dpkg epoch as an `epoch=` qualifier, Syft and Trawl inside the
//! version (`1:2.38.1-5+deb12u3`). Components without a Debian package URL
//! are counted apart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A Debian package as `name arch version` (version with its epoch).
pub type DebPackage = String;

/// What a CycloneDX document lists.
#[derive(Debug, Default)]
pub struct Listed {
    /// The distinct `pkg:deb` components.
    pub deb: BTreeSet<DebPackage>,
    /// Distinct language packages (`name version`), by package URL type
    /// (`golang`, `pypi`, `npm`, `maven`, `gem`, `composer`, `nuget`,
    /// `cargo`).
    pub lang: BTreeMap<String, BTreeSet<String>>,
    /// Other components, the operating system aside (packages without a
    /// package URL, such as those of an image whose OS went undetected).
    pub other: usize,
}

/// The components of the CycloneDX file at `path` (nested ones included).
pub fn components(path: &Path) -> Result<Listed, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bom: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut found = Listed::default();
    collect(&bom, &mut found);
    Ok(found)
}

fn collect(node: &serde_json::Value, found: &mut Listed) {
    let Some(components) = node.get("components").and_then(|c| c.as_array()) else {
        return;
    };
    for component in components {
        let purl = component.get("purl").and_then(|p| p.as_str());
        if let Some((kind, package)) = purl.and_then(parse_lang_purl) {
            found.lang.entry(kind).or_default().insert(package);
            collect(component, found);
            continue;
        }
        match purl.and_then(parse_deb_purl) {
            Some(package) => {
                found.deb.insert(package);
            }
            None if component.get("type").and_then(|t| t.as_str()) != Some("operating-system") => {
                found.other += 1;
            }
            None => {}
        }
        collect(component, found);
    }
}

/// `pkg:deb/debian/NAME@VERSION?QUALIFIERS` as `NAME ARCH [EPOCH:]VERSION`.
fn parse_deb_purl(purl: &str) -> Option<DebPackage> {
    let rest = purl.strip_prefix("pkg:deb/")?;
    let rest = rest.split('#').next()?;
    let (path, qualifiers) = rest.split_once('?').unwrap_or((rest, ""));
    let (path, version) = path.split_once('@')?;
    let name = decode(path.rsplit('/').next()?);
    let mut version = decode(version);
    let mut arch = String::new();
    for pair in qualifiers.split('&') {
        match pair.split_once('=') {
            Some(("arch", a)) => arch = decode(a),
            Some(("epoch", e)) if !version.contains(':') => version = format!("{e}:{version}"),
            _ => {}
        }
    }
    Some(format!("{name} {arch} {version}"))
}

/// The language package URL types compared.
const LANG_TYPES: [&str; 8] = [
    "golang", "pypi", "npm", "maven", "gem", "composer", "nuget", "cargo",
];

/// `pkg:TYPE/[NAMESPACE/]NAME@VERSION` of a language package as `(TYPE,
/// "NAMESPACE/NAME VERSION")`, normalised the way the purl spec says each
/// type compares: PyPI names lowercased with `_` as `-`, and Go's and
/// Maven's namespaces kept (`group/artifact`).
fn parse_lang_purl(purl: &str) -> Option<(String, String)> {
    let rest = purl.strip_prefix("pkg:")?;
    // A subpath (`#sub/path`) continues the name: Syft writes Go module
    // paths past their third element that way.
    let (rest, subpath) = match rest.split_once('#') {
        Some((rest, sub)) => (rest, Some(sub)),
        None => (rest, None),
    };
    let rest = rest.split('?').next()?;
    let (kind, path) = rest.split_once('/')?;
    let kind = kind.to_ascii_lowercase();
    if !LANG_TYPES.contains(&kind.as_str()) {
        return None;
    }
    let (name, version) = path.rsplit_once('@')?;
    let mut name = decode(name);
    if let Some(sub) = subpath.filter(|s| !s.is_empty()) {
        name.push('/');
        name.push_str(&decode(sub));
    }
    if kind == "pypi" {
        name = name.to_ascii_lowercase().replace(['_', '.'], "-");
    }
    Some((kind, format!("{name} {}", decode(version))))
}

/// Percent-decoding (package URL components are percent-encoded UTF-8).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How `other` differs from `reference`, for one line of the report:
/// `same 112 packages`, or what is missing and extra.
pub fn difference(reference: &BTreeSet<String>, other: &BTreeSet<String>) -> String {
    if reference == other {
        return "same packages and versions".to_string();
    }
    let missing: Vec<&str> = reference.difference(other).map(String::as_str).collect();
    let extra: Vec<&str> = other.difference(reference).map(String::as_str).collect();
    let list = |v: &[&str]| {
        let mut s = v.iter().take(4).copied().collect::<Vec<_>>().join(", ");
        if v.len() > 4 {
            s.push_str(&format!(", ... ({} in all)", v.len()));
        }
        s
    };
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("lacks {}", list(&missing)));
    }
    if !extra.is_empty() {
        parts.push(format!("adds {}", list(&extra)));
    }
    parts.join("; ")
}
