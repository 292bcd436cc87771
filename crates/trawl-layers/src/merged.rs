//! The merged view: layers applied in order, with the history of every kept path.

use std::collections::{BTreeMap, HashMap};

use crate::budget::Limits;
use crate::error::LayerWarning;
use crate::layer::{Change, LayerChanges, Regular, fingerprint};
use crate::selection::{is_within, normalize};

/// How many symlinks one lookup may follow before it is treated as a loop
/// (Linux's own limit).
const MAX_SYMLINKS: usize = 40;

/// One kept path as some layer left it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    layer: usize,
    /// `None` when the layer deleted the path (whiteout, opaque directory, or a
    /// file replacing a parent directory).
    change: Option<Change>,
}

/// The image's file system as the catalogers see it: only the selected paths,
/// every layer applied in order, symlinks resolved inside the image root.
///
/// Besides the final state it keeps each path's history (which layer wrote
/// which contents), so a cataloger can tell which layer introduced a package.
///
/// ```
/// use trawl_layers::{MergedFs, Selection, Limits, read_layer};
/// let mut tar = tar::Builder::new(Vec::new());
/// let mut h = tar::Header::new_gnu();
/// h.set_size(6);
/// h.set_cksum();
/// tar.append_data(&mut h, "etc/hostname", &b"trawl\n"[..]).unwrap();
/// let blob = tar.into_inner().unwrap();
///
/// let sel = Selection::new().with_path("etc/hostname");
/// let changes = read_layer("sha256:abc", &blob[..], &sel, &Limits::default()).unwrap();
/// let fs = MergedFs::from_layers(vec![("sha256:abc".to_string(), changes)]);
/// let file = fs.file("/etc/hostname").unwrap();
/// assert_eq!(file.data, b"trawl\n");
/// assert_eq!(file.layer, Some("sha256:abc"));
/// ```
#[derive(Debug, Clone)]
pub struct MergedFs {
    layers: Vec<String>,
    /// Current state: path -> (layer index, change). Never holds deletions.
    current: BTreeMap<String, (usize, Change)>,
    history: BTreeMap<String, Vec<Version>>,
    warnings: Vec<LayerWarning>,
    /// Warnings beyond `max_warnings`, counted only.
    more_warnings: u64,
    max_warnings: usize,
    max_path_len: usize,
    /// Parts of the image left unread that are not single files (a `dir:`
    /// walk that stopped at its cap): (path, reason).
    unread: Vec<(String, String)>,
    /// True for a plain directory tree (`dir:` source): no layers to attribute.
    unlayered: bool,
}

impl Default for MergedFs {
    fn default() -> Self {
        MergedFs::with_limits(&Limits::default())
    }
}

/// A file found in the merged view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileView<'a> {
    /// The path after resolving symlinks (normalised, relative to the root).
    pub path: &'a str,
    /// The file's contents.
    pub data: &'a [u8],
    /// The layer that wrote this version (its id as given to the merge), or
    /// `None` for a source without layers.
    pub layer: Option<&'a str>,
}

/// One version of a path in a path's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileVersion<'a> {
    /// Position of the layer in the image, from 0 (the base).
    pub layer_index: usize,
    /// The layer's id, or `None` for a source without layers.
    pub layer: Option<&'a str>,
    /// The contents this layer left, or `None` when it deleted the path or left
    /// something that is not a readable regular file there.
    pub data: Option<&'a [u8]>,
}

/// What an [`Extractor`](crate::Extractor) got from a file present in the
/// final view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extracted<'a> {
    /// The file's path (normalised).
    pub path: &'a str,
    /// The layer that wrote the file, or `None` for a source without layers.
    pub layer: Option<&'a str>,
    /// The bytes the extractor kept, or why it could not read the file (a
    /// truncated binary, a corrupt archive, over a budget).
    pub result: Result<&'a [u8], &'a str>,
}

/// A selected file present in the final view whose contents were not kept,
/// or a part of the image that was not read; packages it holds are missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dropped<'a> {
    /// The file's path (normalised), or the directory where reading stopped.
    pub path: &'a str,
    /// The layer that wrote the file, or `None` for a source without layers.
    pub layer: Option<&'a str>,
    /// Why it was not kept (over the per-file limit, over the scan's memory
    /// budget, a hard link to a file that was not kept, …).
    pub reason: &'a str,
}

impl MergedFs {
    fn with_limits(limits: &Limits) -> Self {
        MergedFs {
            layers: Vec::new(),
            current: BTreeMap::new(),
            history: BTreeMap::new(),
            warnings: Vec::new(),
            more_warnings: 0,
            max_warnings: limits.max_warnings,
            max_path_len: limits.max_path_len,
            unread: Vec::new(),
            unlayered: false,
        }
    }

    /// Applies layers in order (base first). Each item is the layer's id
    /// (usually its digest) and what [`crate::read_layer`] found in it.
    /// Warnings and path resolution follow the default [`Limits`].
    pub fn from_layers(layers: Vec<(String, LayerChanges)>) -> MergedFs {
        Self::from_layers_with_limits(layers, &Limits::default())
    }

    /// [`from_layers`](Self::from_layers) with the warning cap and the
    /// longest resolvable path of `limits`.
    pub fn from_layers_with_limits(
        layers: Vec<(String, LayerChanges)>,
        limits: &Limits,
    ) -> MergedFs {
        let mut fs = MergedFs::with_limits(limits);
        let mut hidden = Vec::new();
        for (index, (id, mut changes)) in layers.into_iter().enumerate() {
            let files = std::mem::take(&mut changes.hidden_files);
            let dirs = std::mem::take(&mut changes.hidden_dirs);
            if !files.is_empty() || !dirs.is_empty() {
                hidden.push((index, files, dirs));
            }
            fs.apply(index, changes);
            fs.layers.push(id);
        }
        fs.apply_hidden(&hidden);
        if fs.more_warnings > 0 {
            fs.warnings.push(LayerWarning::MoreWarnings {
                count: fs.more_warnings,
            });
        }
        fs
    }

    pub(crate) fn unlayered(
        changes: LayerChanges,
        limits: &Limits,
        unread: Vec<(String, String)>,
    ) -> MergedFs {
        let mut fs = MergedFs::from_layers_with_limits(vec![(String::new(), changes)], limits);
        fs.unlayered = true;
        fs.unread = unread;
        fs
    }

    fn warn(&mut self, warning: LayerWarning) {
        if self.warnings.len() < self.max_warnings {
            self.warnings.push(warning);
        } else {
            self.more_warnings += 1;
        }
    }

    fn apply(&mut self, index: usize, changes: LayerChanges) {
        for w in changes.warnings {
            self.warn(w);
        }
        self.more_warnings += changes.more_warnings;
        // Whiteouts and opaque markers hide lower layers only: apply them first.
        for dir in &changes.opaque_dirs {
            self.remove_tree(index, dir, false);
        }
        for path in &changes.whiteouts {
            self.remove_tree(index, path, true);
        }
        for (path, change) in changes.entries {
            let change = match change {
                Change::HardLink { target, selected } => match self.current.get(&target) {
                    Some((_, Change::Regular(r))) => {
                        let mut r = r.linked(selected);
                        if selected && r.data.is_none() && r.dropped.is_none() {
                            r.dropped =
                                Some(format!("hard link to {target}, whose content was not kept"));
                        }
                        Change::Regular(r)
                    }
                    _ if selected => {
                        self.warn(LayerWarning::DanglingHardLink {
                            layer_index: index,
                            path: path.clone(),
                            target: target.clone(),
                        });
                        Change::Regular(Regular::dropped(format!(
                            "hard link to {target}, whose content was not kept"
                        )))
                    }
                    _ => Change::Opaque,
                },
                other => other,
            };
            if change == Change::Dir {
                // A directory replaces a file or link at that path, but keeps
                // whatever lower layers put below it.
                if matches!(self.current.get(&path), Some((_, c)) if *c != Change::Dir) {
                    self.record(index, &path, None);
                }
            } else {
                // A non-directory replaces a whole lower directory tree.
                self.remove_tree(index, &path, false);
            }
            self.record(index, &path, Some(change));
        }
    }

    /// Applies what layers did at paths they did not record (known by
    /// fingerprint only): a non-directory there replaces the lower tree below
    /// it, a directory replaces a lower non-directory. Each kept path is
    /// checked against the first later layer that did so.
    fn apply_hidden(&mut self, hidden: &[(usize, Vec<u64>, Vec<u64>)]) {
        if hidden.is_empty() {
            return;
        }
        // fingerprint -> (layer, is a directory)
        let mut by_print: HashMap<u64, Vec<(usize, bool)>> = HashMap::new();
        for (layer, files, dirs) in hidden {
            for f in files {
                by_print.entry(*f).or_default().push((*layer, false));
            }
            for d in dirs {
                by_print.entry(*d).or_default().push((*layer, true));
            }
        }
        let first_after = |print: u64, after: usize, dirs: bool, files: bool| {
            by_print.get(&print).and_then(|v| {
                v.iter()
                    .filter(|(l, d)| *l > after && ((*d && dirs) || (!*d && files)))
                    .map(|(l, _)| *l)
                    .min()
            })
        };
        let mut ancestor_prints: HashMap<&str, u64> = HashMap::new();
        let mut doomed: Vec<(String, usize)> = Vec::new();
        for (path, (layer, change)) in &self.current {
            let is_dir = *change == Change::Dir;
            let mut first = first_after(fingerprint(path), *layer, !is_dir, true);
            let mut end = 0;
            while let Some(i) = path[end..].find('/') {
                end += i;
                let ancestor = &path[..end];
                let print = *ancestor_prints
                    .entry(ancestor)
                    .or_insert_with(|| fingerprint(ancestor));
                if let Some(l) = first_after(print, *layer, false, true) {
                    first = Some(first.map_or(l, |f: usize| f.min(l)));
                }
                end += 1;
            }
            if let Some(l) = first {
                doomed.push((path.clone(), l));
            }
        }
        for (path, layer) in doomed {
            self.record(layer, &path, None);
        }
    }

    /// Deletes everything below `dir` (and `dir` itself when `inclusive`).
    fn remove_tree(&mut self, index: usize, dir: &str, inclusive: bool) {
        let doomed: Vec<String> = if dir.is_empty() {
            self.current.keys().cloned().collect()
        } else {
            self.current
                .range::<str, _>((std::ops::Bound::Included(dir), std::ops::Bound::Unbounded))
                .take_while(|(p, _)| p.starts_with(dir))
                .filter(|(p, _)| is_within(p, dir) && (inclusive || p.len() > dir.len()))
                .map(|(p, _)| p.clone())
                .collect()
        };
        for path in doomed {
            self.record(index, &path, None);
        }
    }

    fn record(&mut self, layer: usize, path: &str, change: Option<Change>) {
        match &change {
            Some(c) => {
                self.current.insert(path.to_string(), (layer, c.clone()));
            }
            None => {
                self.current.remove(path);
            }
        }
        let versions = self.history.entry(path.to_string()).or_default();
        // Several changes by one layer to one path: only its last one counts.
        if versions.last().is_some_and(|v| v.layer == layer) {
            versions.pop();
        }
        versions.push(Version { layer, change });
    }

    /// The layer ids in order, base first (empty for a source without layers).
    pub fn layers(&self) -> &[String] {
        if self.unlayered { &[] } else { &self.layers }
    }

    /// Problems met while reading and merging that did not stop the scan: at
    /// most [`Limits::max_warnings`], then one [`LayerWarning::MoreWarnings`]
    /// counting the rest.
    pub fn warnings(&self) -> &[LayerWarning] {
        &self.warnings
    }

    fn layer_id(&self, index: usize) -> Option<&str> {
        if self.unlayered {
            None
        } else {
            self.layers.get(index).map(String::as_str)
        }
    }

    /// Resolves `path` to the path it names once every symlink on the way is
    /// followed, never leaving the image root (`..` at the root stays there, an
    /// absolute link target starts again at the image root). `None` on a loop
    /// (more than 40 links), and for a path that grows over
    /// [`Limits::max_path_len`]. The work is linear in the length of the
    /// path and of the link targets followed.
    pub fn resolve(&self, path: &str) -> Option<String> {
        let start = normalize(path)?;
        let mut pending: Vec<&str> = start.split('/').rev().collect();
        let mut resolved = String::with_capacity(start.len());
        let mut hops = 0;
        while let Some(comp) = pending.pop() {
            match comp {
                "" | "." => continue,
                ".." => {
                    let parent = resolved.rfind('/').unwrap_or(0);
                    resolved.truncate(parent);
                    continue;
                }
                _ => {}
            }
            let before = resolved.len();
            if !resolved.is_empty() {
                resolved.push('/');
            }
            resolved.push_str(comp);
            if resolved.len() > self.max_path_len {
                return None;
            }
            if let Some((_, Change::Symlink(target))) = self.current.get(resolved.as_str()) {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    return None;
                }
                resolved.truncate(before);
                if target.starts_with('/') {
                    resolved.clear();
                }
                pending.extend(target.split('/').rev());
            }
        }
        if resolved.is_empty() {
            None
        } else {
            Some(resolved)
        }
    }

    fn view<'a>(
        &'a self,
        path: &'a str,
        layer: usize,
        regular: &'a Regular,
    ) -> Option<FileView<'a>> {
        regular.data.as_deref().map(|data| FileView {
            data: data.as_slice(),
            path,
            layer: self.layer_id(layer),
        })
    }

    /// The regular file at `path` (symlinks followed), if it was selected and kept.
    pub fn file(&self, path: &str) -> Option<FileView<'_>> {
        let resolved = self.resolve(path)?;
        let (key, (layer, change)) = self.current.get_key_value(&resolved)?;
        match change {
            Change::Regular(r) => self.view(key, *layer, r),
            _ => None,
        }
    }

    /// True when anything (file, link, directory) exists at `path` in the merged
    /// view, among the paths the selection made relevant.
    pub fn exists(&self, path: &str) -> bool {
        self.resolve(path)
            .is_some_and(|p| self.current.contains_key(&p))
    }

    /// Every kept regular file below directory `dir` (symlinks on the way to
    /// `dir` followed), in path order.
    pub fn files_under(&self, dir: &str) -> Vec<FileView<'_>> {
        let Some(dir) = self.resolve(dir) else {
            return Vec::new();
        };
        self.current
            .range::<str, _>((
                std::ops::Bound::Included(dir.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(p, _)| p.starts_with(dir.as_str()))
            .filter(|(p, _)| p.len() > dir.len() && is_within(p, &dir))
            .filter_map(|(p, (layer, change))| match change {
                Change::Regular(r) => self.view(p, *layer, r),
                _ => None,
            })
            .collect()
    }

    /// Every kept regular file in the final view (selected by path, prefix or
    /// glob), in path order. Catalogers filter by their own patterns.
    ///
    /// ```
    /// use trawl_layers::{read_layer, Limits, MergedFs, Selection};
    /// let mut tar = tar::Builder::new(Vec::new());
    /// for path in ["app/node_modules/a/package.json", "app/node_modules/a/index.js"] {
    ///     let mut h = tar::Header::new_gnu();
    ///     h.set_size(2);
    ///     h.set_cksum();
    ///     tar.append_data(&mut h, path, &b"{}"[..]).unwrap();
    /// }
    /// let blob = tar.into_inner().unwrap();
    /// let sel = Selection::new().with_glob("**/node_modules/*/package.json");
    /// let changes = read_layer("sha256:l", &blob[..], &sel, &Limits::default()).unwrap();
    /// let fs = MergedFs::from_layers(vec![("sha256:l".into(), changes)]);
    /// let paths: Vec<&str> = fs.files().map(|f| f.path).collect();
    /// assert_eq!(paths, ["app/node_modules/a/package.json"]);
    /// ```
    pub fn files(&self) -> impl Iterator<Item = FileView<'_>> {
        self.current
            .iter()
            .filter_map(|(p, (layer, change))| match change {
                Change::Regular(r) => self.view(p, *layer, r),
                _ => None,
            })
    }

    /// What the extractor with this id got from each file present in the
    /// final view, in path order (see [`Extractor`](crate::Extractor)).
    pub fn extracted<'a>(&'a self, extractor_id: &'a str) -> impl Iterator<Item = Extracted<'a>> {
        self.current.iter().flat_map(move |(p, (layer, change))| {
            let found = match change {
                Change::Regular(r) => r.extracted.iter().find(|x| x.id == extractor_id),
                _ => None,
            };
            found.map(|x| Extracted {
                path: p,
                layer: self.layer_id(*layer),
                result: match &x.result {
                    Ok(bytes) => Ok(&bytes[..]),
                    Err(message) => Err(message.as_str()),
                },
            })
        })
    }

    /// Selected files present in the final view whose contents were not
    /// kept, with the reason, in path order; then any part of a `dir:` root
    /// that was not walked. Each means packages may be missing: the scan is
    /// incomplete.
    pub fn dropped(&self) -> impl Iterator<Item = Dropped<'_>> {
        self.current
            .iter()
            .filter_map(|(p, (layer, change))| match change {
                Change::Regular(Regular {
                    dropped: Some(reason),
                    ..
                }) => Some(Dropped {
                    path: p,
                    layer: self.layer_id(*layer),
                    reason,
                }),
                _ => None,
            })
            .chain(self.unread.iter().map(|(path, reason)| Dropped {
                path,
                layer: None,
                reason,
            }))
    }

    /// The layer that introduced the current content of the file at `path`
    /// (symlinks followed): the earliest layer of the run of versions, ending
    /// with the current one, that left the same content. `None` when there
    /// is no such file, or for a source without layers.
    pub fn introduced_by(&self, path: &str) -> Option<&str> {
        let resolved = self.resolve(path)?;
        let versions = self.history.get(&resolved)?;
        let last = versions.last()?;
        let current = last.change.as_ref()?;
        let mut first = last.layer;
        for v in versions.iter().rev().skip(1) {
            if v.change.as_ref() == Some(current) {
                first = v.layer;
            } else {
                break;
            }
        }
        self.layer_id(first)
    }

    /// The versions of the file at `path` (after resolving symlinks in the final
    /// view), one per layer that wrote or deleted it, base first.
    pub fn history(&self, path: &str) -> Vec<FileVersion<'_>> {
        let Some(resolved) = self.resolve(path) else {
            return Vec::new();
        };
        self.history
            .get(&resolved)
            .map(|versions| {
                versions
                    .iter()
                    .map(|v| FileVersion {
                        layer_index: v.layer,
                        layer: self.layer_id(v.layer),
                        data: match &v.change {
                            Some(Change::Regular(r)) => r.data.as_deref().map(Vec::as_slice),
                            _ => None,
                        },
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Total bytes of file contents and extraction results held (each shared
    /// copy counted once per path).
    pub fn kept_bytes(&self) -> u64 {
        self.current
            .values()
            .map(|(_, c)| match c {
                Change::Regular(r) => r.held_bytes(),
                _ => 0,
            })
            .sum()
    }

    /// Number of paths present in the final view.
    pub fn len(&self) -> usize {
        self.current.len()
    }

    /// True when no selected path exists in the image.
    pub fn is_empty(&self) -> bool {
        self.current.is_empty()
    }
}
