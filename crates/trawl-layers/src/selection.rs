//! Which files the catalogers want from an image, and path normalisation.
//!
//! Paths are image paths relative to the root, without a leading `/`
//! (`var/lib/dpkg/status`). A selection names exact files, whole directory
//! trees, glob patterns matched anywhere in the tree, and [`Extractor`]s that
//! read large files as they stream. Everything that is neither selected nor
//! on the way to something selected is skipped while streaming, without
//! buffering.

use std::collections::BTreeSet;
use std::sync::Arc;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::extractor::Extractor;

/// The set of image paths a scan keeps: exact files, whole directory trees
/// and glob patterns; plus the extractors that read large files.
///
/// ```
/// use trawl_layers::Selection;
/// let sel = Selection::new()
///     .with_path("/var/lib/dpkg/status")
///     .with_prefix("var/lib/dpkg/status.d/")
///     .with_glob("**/node_modules/*/package.json");
/// assert!(sel.selects("var/lib/dpkg/status"));
/// assert!(sel.selects("var/lib/dpkg/status.d/libc6"));
/// assert!(sel.selects("app/node_modules/left-pad/package.json"));
/// assert!(!sel.selects("app/node_modules/left-pad/lib/package.json"));
/// assert!(!sel.selects("usr/bin/ls"));
/// ```
#[derive(Clone, Default)]
pub struct Selection {
    exact: BTreeSet<String>,
    prefixes: BTreeSet<String>,
    /// Every proper ancestor directory of a selected path or prefix.
    ancestors: BTreeSet<String>,
    globs: BTreeSet<String>,
    /// `globs`, compiled; `None` when there are none.
    matcher: Option<GlobSet>,
    /// One per id, in the order they were added.
    extractors: Vec<Arc<dyn Extractor>>,
}

/// A glob pattern that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid glob pattern {pattern:?}: {message}")]
pub struct GlobError {
    /// The pattern as given.
    pub pattern: String,
    /// What is wrong with it.
    pub message: String,
}

impl Selection {
    /// An empty selection (selects nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an exact file path (leading `/` or `./` is ignored).
    pub fn with_path(mut self, path: &str) -> Self {
        self.add_path(path);
        self
    }

    /// Adds a directory whose whole tree is selected (`var/lib/dpkg/status.d/`).
    pub fn with_prefix(mut self, dir: &str) -> Self {
        self.add_prefix(dir);
        self
    }

    /// Adds a glob pattern, for patterns written in code: files anywhere in
    /// the tree whose normalised path matches are kept whole, like
    /// [`with_path`](Self::with_path) files. The syntax is the `globset`
    /// crate's (`**`, `*`, `?`, `[ab]`, `{a,b}`), with `*` and `?` never
    /// matching `/`; a leading `/` is ignored. A pattern that does not parse
    /// selects nothing and is logged; use [`add_glob`](Self::add_glob) for
    /// patterns from input.
    ///
    /// Once a selection has globs or extractors, whiteouts, opaque
    /// directories and symlinks are recorded for every path of every layer
    /// (a match can be anywhere), and so are compact fingerprints of every
    /// other entry (so that a later layer replacing a directory with a file
    /// still hides what was below it).
    pub fn with_glob(mut self, pattern: &str) -> Self {
        if let Err(e) = self.add_glob(pattern) {
            tracing::error!(error = %e, "glob pattern ignored");
        }
        self
    }

    /// Adds a glob pattern in place (see [`with_glob`](Self::with_glob)).
    pub fn add_glob(&mut self, pattern: &str) -> Result<(), GlobError> {
        let pattern = pattern.trim_start_matches('/');
        compile_glob(pattern)?;
        if self.globs.insert(pattern.to_string()) {
            self.compile();
        }
        Ok(())
    }

    /// Adds an extractor (see [`Extractor`]); one with the id of an extractor
    /// already present is ignored.
    pub fn with_extractor(mut self, extractor: impl Extractor + 'static) -> Self {
        self.add_extractor(Arc::new(extractor));
        self
    }

    /// Adds a shared extractor in place (see [`with_extractor`](Self::with_extractor)).
    pub fn add_extractor(&mut self, extractor: Arc<dyn Extractor>) {
        if !self.extractors.iter().any(|x| x.id() == extractor.id()) {
            self.extractors.push(extractor);
        }
    }

    /// Adds an exact file path in place.
    pub fn add_path(&mut self, path: &str) {
        if let Some(p) = normalize(path) {
            self.add_ancestors(&p);
            self.exact.insert(p);
        }
    }

    /// Adds a directory tree in place.
    pub fn add_prefix(&mut self, dir: &str) {
        if let Some(p) = normalize(dir) {
            self.add_ancestors(&p);
            self.prefixes.insert(p);
        }
    }

    /// Adds everything `other` selects, and its extractors.
    pub fn extend(&mut self, other: &Selection) {
        self.exact.extend(other.exact.iter().cloned());
        self.prefixes.extend(other.prefixes.iter().cloned());
        self.ancestors.extend(other.ancestors.iter().cloned());
        let globs = self.globs.len();
        self.globs.extend(other.globs.iter().cloned());
        if self.globs.len() != globs {
            self.compile();
        }
        for x in &other.extractors {
            self.add_extractor(x.clone());
        }
    }

    fn compile(&mut self) {
        let mut set = GlobSetBuilder::new();
        for g in &self.globs {
            // Every pattern was checked when it was added.
            if let Ok(glob) = compile_glob(g) {
                set.add(glob);
            }
        }
        self.matcher = match set.build() {
            Ok(set) if !set.is_empty() => Some(set),
            Ok(_) => None,
            Err(e) => {
                tracing::error!(error = %e, "glob patterns ignored");
                None
            }
        };
    }

    fn add_ancestors(&mut self, path: &str) {
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            end += i;
            self.ancestors.insert(path[..end].to_string());
            end += 1;
        }
    }

    /// True when the contents of the file at `path` (normalised) are kept:
    /// an exact path, below a selected prefix, or matching a glob.
    pub fn selects(&self, path: &str) -> bool {
        self.exact.contains(path) || self.under_prefix(path) || self.glob_matches(path)
    }

    /// True when `path` matches one of the glob patterns.
    pub fn glob_matches(&self, path: &str) -> bool {
        self.matcher.as_ref().is_some_and(|m| m.is_match(path))
    }

    fn under_prefix(&self, path: &str) -> bool {
        self.prefixes
            .iter()
            .any(|p| path.len() > p.len() && is_within(path, p))
    }

    /// True when an entry at `path` can change what an exact path or prefix
    /// resolves to: the path itself, anything under a selected prefix, or an
    /// ancestor directory of a selected path (a symlink, whiteout or file
    /// there matters). With globs or extractors, any path may matter: see
    /// [`records_everything`](Self::records_everything).
    pub fn is_relevant(&self, path: &str) -> bool {
        self.selects(path) || self.leads_to(path)
    }

    /// True when `path` is a selected prefix or an ancestor of a selected
    /// path or prefix.
    pub(crate) fn leads_to(&self, path: &str) -> bool {
        self.ancestors.contains(path) || self.prefixes.contains(path)
    }

    /// True when the selection has globs or extractors, so that layer
    /// readers record whiteouts, opaque directories and symlinks everywhere.
    pub fn records_everything(&self) -> bool {
        self.matcher.is_some() || !self.extractors.is_empty()
    }

    /// True when nothing is selected and nothing is to be extracted.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty()
            && self.prefixes.is_empty()
            && self.globs.is_empty()
            && self.extractors.is_empty()
    }

    /// The exact paths, in order.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.exact.iter().map(String::as_str)
    }

    /// The selected directory trees, in order.
    pub fn prefixes(&self) -> impl Iterator<Item = &str> {
        self.prefixes.iter().map(String::as_str)
    }

    /// The glob patterns, in order.
    pub fn globs(&self) -> impl Iterator<Item = &str> {
        self.globs.iter().map(String::as_str)
    }

    /// The extractors, in the order they were added.
    pub fn extractors(&self) -> impl Iterator<Item = &dyn Extractor> {
        self.extractors.iter().map(|x| &**x)
    }
}

impl PartialEq for Selection {
    fn eq(&self, other: &Self) -> bool {
        self.exact == other.exact
            && self.prefixes == other.prefixes
            && self.globs == other.globs
            && self.extractors.len() == other.extractors.len()
            && self
                .extractors
                .iter()
                .zip(&other.extractors)
                .all(|(a, b)| a.id() == b.id())
    }
}

impl Eq for Selection {}

impl std::fmt::Debug for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Selection")
            .field("exact", &self.exact)
            .field("prefixes", &self.prefixes)
            .field("globs", &self.globs)
            .field(
                "extractors",
                &self.extractors.iter().map(|x| x.id()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn compile_glob(pattern: &str) -> Result<globset::Glob, GlobError> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| GlobError {
            pattern: pattern.to_string(),
            message: e.kind().to_string(),
        })
}

/// True when `path` is `dir` itself or lies below it.
pub(crate) fn is_within(path: &str, dir: &str) -> bool {
    path == dir
        || (path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/')
}

/// Normalises an image path: strips leading `/` and `./`, collapses `//` and `.`,
/// drops a trailing `/`. Returns `None` for the root itself or when a `..`
/// component would leave the root (hostile paths are never selected).
pub fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    }
}

/// Normalises a tar entry name cheaply: the common case (`./a/b`, `a/b`) needs no
/// allocation beyond the returned string. Returns `None` for non-UTF-8 names,
/// the root, and names that climb out of the root.
pub(crate) fn normalize_entry(name: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(name).ok()?;
    let simple = !s.contains("//")
        && !s.split('/').any(|c| c == ".." || c == ".")
        && !s.trim_start_matches("./").starts_with('/');
    if simple {
        let t = s
            .trim_start_matches("./")
            .trim_start_matches('/')
            .trim_end_matches('/');
        if t.is_empty() {
            None
        } else {
            Some(t.to_string())
        }
    } else {
        normalize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_paths() {
        assert_eq!(
            normalize("/etc/os-release").as_deref(),
            Some("etc/os-release")
        );
        assert_eq!(
            normalize("./var//lib/./dpkg/").as_deref(),
            Some("var/lib/dpkg")
        );
        assert_eq!(normalize("a/b/../c").as_deref(), Some("a/c"));
        assert_eq!(normalize("../../etc/passwd"), None);
        assert_eq!(normalize("/"), None);
        assert_eq!(
            normalize_entry(b"./etc/passwd").as_deref(),
            Some("etc/passwd")
        );
        assert_eq!(normalize_entry(b"../etc/passwd"), None);
        assert_eq!(normalize_entry(b"a/../../etc"), None);
        assert_eq!(normalize_entry(b"\xff\xfe"), None);
        assert_eq!(normalize_entry(b"./"), None);
    }

    #[test]
    fn relevance_covers_ancestors_and_prefix_trees() {
        let sel = Selection::new()
            .with_path("etc/os-release")
            .with_prefix("var/lib/dpkg/status.d");
        assert!(sel.is_relevant("etc"));
        assert!(sel.is_relevant("var/lib"));
        assert!(sel.is_relevant("var/lib/dpkg/status.d"));
        assert!(sel.is_relevant("var/lib/dpkg/status.d/x/y"));
        assert!(!sel.is_relevant("etc/passwd"));
        assert!(!sel.is_relevant("var/lib/dpkg/status.dx"));
        assert!(!sel.selects("var/lib/dpkg/status.d"));
        assert!(sel.selects("var/lib/dpkg/status.d/libc6"));
    }

    #[test]
    fn globs_match_anywhere_without_crossing_separators() {
        let mut sel = Selection::new()
            .with_glob("**/{site,dist}-packages/*.dist-info/METADATA")
            .with_glob("/**/node_modules/@*/*/package.json")
            .with_glob("var/lib/dpkg/info/*.list");
        assert!(sel.selects("usr/lib/python3/dist-packages/idna-3.3.dist-info/METADATA"));
        assert!(sel.selects("site-packages/a.dist-info/METADATA"));
        assert!(sel.selects("app/node_modules/@types/node/package.json"));
        assert!(sel.selects("var/lib/dpkg/info/libc6:amd64.list"));
        assert!(!sel.selects("var/lib/dpkg/info/x/libc6.list"));
        assert!(!sel.selects("usr/lib/python3/dist-packages/a/b.dist-info/METADATA"));
        assert!(sel.records_everything());
        let err = sel.add_glob("a/{b").unwrap_err();
        assert_eq!(err.pattern, "a/{b");
        assert_eq!(sel.globs().count(), 3);
        let invalid = Selection::new().with_glob("[z-a]");
        assert!(invalid.is_empty() && !invalid.records_everything());
        let mut merged = Selection::new().with_path("etc/os-release");
        merged.extend(&sel);
        assert!(merged.selects("site-packages/a.dist-info/METADATA"));
        assert_eq!(merged.globs().count(), 3);
    }
}
