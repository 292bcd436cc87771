//! The merged view: layers applied in order, with the history of every kept path.

use std::collections::BTreeMap;

use crate::error::LayerWarning;
use crate::layer::{Change, LayerChanges};
use crate::selection::{is_within, normalize};

/// How many symlinks one lookup may follow before it is treated as a loop.
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
#[derive(Debug, Clone, Default)]
pub struct MergedFs {
    layers: Vec<String>,
    /// Current state: path -> (layer index, change). Never holds `Dir`-less deletions.
    current: BTreeMap<String, (usize, Change)>,
    history: BTreeMap<String, Vec<Version>>,
    warnings: Vec<LayerWarning>,
    /// True for a plain directory tree (`dir:` source): no layers to attribute.
    unlayered: bool,
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

impl MergedFs {
    /// Applies layers in order (base first). Each item is the layer's id
    /// (usually its digest) and what [`crate::read_layer`] found in it.
    pub fn from_layers(layers: Vec<(String, LayerChanges)>) -> MergedFs {
        let mut fs = MergedFs::default();
        for (index, (id, changes)) in layers.into_iter().enumerate() {
            fs.apply(index, changes);
            fs.layers.push(id);
        }
        fs
    }

    pub(crate) fn unlayered(changes: LayerChanges) -> MergedFs {
        let mut fs = MergedFs::from_layers(vec![(String::new(), changes)]);
        fs.unlayered = true;
        fs
    }

    fn apply(&mut self, index: usize, changes: LayerChanges) {
        self.warnings.extend(changes.warnings);
        // Whiteouts and opaque markers hide lower layers only: apply them first.
        for dir in &changes.opaque_dirs {
            self.remove_tree(index, dir, false);
        }
        for path in &changes.whiteouts {
            self.remove_tree(index, path, true);
        }
        for (path, change) in changes.entries {
            let change = match change {
                Change::HardLink(target) => match self.current.get(&target) {
                    Some((_, Change::File(data))) => Change::File(data.clone()),
                    _ => {
                        self.warnings.push(LayerWarning::DanglingHardLink {
                            layer_index: index,
                            path: path.clone(),
                            target,
                        });
                        Change::Opaque
                    }
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

    /// Problems met while reading and merging that did not stop the scan.
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
    /// absolute link target starts again at the image root). `None` on a loop.
    pub fn resolve(&self, path: &str) -> Option<String> {
        let mut pending: Vec<String> = normalize(path)?
            .split('/')
            .rev()
            .map(str::to_string)
            .collect();
        let mut resolved: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(comp) = pending.pop() {
            match comp.as_str() {
                "" | "." => continue,
                ".." => {
                    resolved.pop();
                    continue;
                }
                _ => {}
            }
            resolved.push(comp);
            let here = resolved.join("/");
            if let Some((_, Change::Symlink(target))) = self.current.get(&here) {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    return None;
                }
                resolved.pop();
                if target.starts_with('/') {
                    resolved.clear();
                }
                pending.extend(target.split('/').rev().map(str::to_string));
            }
        }
        if resolved.is_empty() {
            None
        } else {
            Some(resolved.join("/"))
        }
    }

    /// The regular file at `path` (symlinks followed), if it was selected and kept.
    pub fn file(&self, path: &str) -> Option<FileView<'_>> {
        let resolved = self.resolve(path)?;
        let (key, (layer, change)) = self.current.get_key_value(&resolved)?;
        match change {
            Change::File(data) => Some(FileView {
                path: key,
                data,
                layer: self.layer_id(*layer),
            }),
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
                Change::File(data) => Some(FileView {
                    path: p,
                    data,
                    layer: self.layer_id(*layer),
                }),
                _ => None,
            })
            .collect()
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
                            Some(Change::File(d)) => Some(&d[..]),
                            _ => None,
                        },
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Total bytes of file contents held (each shared copy counted once per path).
    pub fn kept_bytes(&self) -> u64 {
        self.current
            .values()
            .map(|(_, c)| match c {
                Change::File(d) => d.len() as u64,
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
