//! Which files the catalogers want from an image, and path normalisation.
//!
//! Paths are image paths relative to the root, without a leading `/`
//! (`var/lib/dpkg/status`). Everything that is neither selected nor on the way
//! to something selected is skipped while streaming, without buffering.

use std::collections::BTreeSet;

/// The set of image paths a scan keeps: exact files and whole directory trees.
///
/// ```
/// use trawl_layers::Selection;
/// let sel = Selection::new()
///     .with_path("/var/lib/dpkg/status")
///     .with_prefix("var/lib/dpkg/status.d/");
/// assert!(sel.selects("var/lib/dpkg/status"));
/// assert!(sel.selects("var/lib/dpkg/status.d/libc6"));
/// assert!(!sel.selects("usr/bin/ls"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    exact: BTreeSet<String>,
    prefixes: BTreeSet<String>,
    /// Every proper ancestor directory of a selected path or prefix.
    ancestors: BTreeSet<String>,
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

    /// Adds everything `other` selects.
    pub fn extend(&mut self, other: &Selection) {
        self.exact.extend(other.exact.iter().cloned());
        self.prefixes.extend(other.prefixes.iter().cloned());
        self.ancestors.extend(other.ancestors.iter().cloned());
    }

    fn add_ancestors(&mut self, path: &str) {
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            end += i;
            self.ancestors.insert(path[..end].to_string());
            end += 1;
        }
    }

    /// True when the contents of the file at `path` (normalised) are kept.
    pub fn selects(&self, path: &str) -> bool {
        self.exact.contains(path) || self.under_prefix(path)
    }

    fn under_prefix(&self, path: &str) -> bool {
        self.prefixes
            .iter()
            .any(|p| path.len() > p.len() && is_within(path, p))
    }

    /// True when an entry at `path` can change what a selected path resolves to:
    /// the path itself, anything under a selected prefix, or an ancestor
    /// directory of a selected path (a symlink, whiteout or file there matters).
    pub fn is_relevant(&self, path: &str) -> bool {
        self.selects(path) || self.ancestors.contains(path) || self.prefixes.contains(path)
    }

    /// True when nothing is selected.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }

    /// The exact paths, in order.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.exact.iter().map(String::as_str)
    }

    /// The selected directory trees, in order.
    pub fn prefixes(&self) -> impl Iterator<Item = &str> {
        self.prefixes.iter().map(String::as_str)
    }
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
}
