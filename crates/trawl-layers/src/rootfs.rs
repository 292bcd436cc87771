//! A plain root file system directory (`dir:ROOTFS`) read as one unlayered view.
//!
//! Only the selected paths are visited. Symlinks are recorded, never followed on
//! the host: their targets are resolved inside the image root by [`MergedFs`],
//! so a link to `/etc/shadow` or `../../..` can never reach the host's files.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::Path;

use crate::error::{LayerError, LayerWarning};
use crate::layer::{Change, LayerChanges, Limits};
use crate::merged::MergedFs;
use crate::selection::{Selection, normalize};

/// Upper bounds on what a directory walk visits, whatever the tree holds.
const MAX_VISITS: usize = 100_000;
const MAX_DEPTH: usize = 16;

/// Reads the selected files of the root file system at `root`.
///
/// ```no_run
/// use trawl_layers::{read_rootfs, Limits, Selection};
/// let sel = Selection::new().with_path("etc/os-release");
/// let fs = read_rootfs("/srv/rootfs".as_ref(), &sel, &Limits::default()).unwrap();
/// println!("{:?}", fs.file("etc/os-release").map(|f| f.data.len()));
/// ```
pub fn read_rootfs(
    root: &Path,
    selection: &Selection,
    limits: &Limits,
) -> Result<MergedFs, LayerError> {
    let meta = fs::metadata(root).map_err(|source| LayerError::Rootfs {
        path: root.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(LayerError::Rootfs {
            path: root.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        });
    }
    let mut walk = Walk {
        root,
        selection,
        limits,
        changes: LayerChanges::default(),
        seen: BTreeSet::new(),
        visits: 0,
    };
    // (path, keep its contents even if unselected: it is the target of a selected link)
    let mut queue: Vec<(String, bool)> = selection
        .paths()
        .chain(selection.prefixes())
        .map(|p| (p.to_string(), false))
        .collect();
    while let Some((path, followed)) = queue.pop() {
        walk.visit(&path, followed, &mut queue);
    }
    Ok(MergedFs::unlayered(walk.changes))
}

struct Walk<'a> {
    root: &'a Path,
    selection: &'a Selection,
    limits: &'a Limits,
    changes: LayerChanges,
    seen: BTreeSet<String>,
    visits: usize,
}

impl Walk<'_> {
    /// Visits `path` component by component, recording symlinks on the way and
    /// queueing their (root-confined) targets.
    fn visit(&mut self, path: &str, followed: bool, queue: &mut Vec<(String, bool)>) {
        if !self.seen.insert(path.to_string()) || self.visits >= MAX_VISITS {
            return;
        }
        let parts: Vec<&str> = path.split('/').collect();
        for i in 1..=parts.len() {
            self.visits += 1;
            let here = parts[..i].join("/");
            let Ok(meta) = fs::symlink_metadata(self.root.join(&here)) else {
                return;
            };
            let ft = meta.file_type();
            if ft.is_symlink() {
                let Ok(target) = fs::read_link(self.root.join(&here)) else {
                    return;
                };
                let target = target.to_string_lossy().into_owned();
                let parent = parts[..i - 1].join("/");
                let rest = parts[i..].join("/");
                let joined = if target.starts_with('/') {
                    format!("{target}/{rest}")
                } else {
                    format!("{parent}/{target}/{rest}")
                };
                self.changes.entries.insert(here, Change::Symlink(target));
                if let Some(next) = normalize(&joined) {
                    queue.push((next, true));
                }
                return;
            }
            if i < parts.len() {
                if !ft.is_dir() {
                    self.changes.entries.insert(here, Change::Opaque);
                    return;
                }
                continue;
            }
            if ft.is_dir() {
                self.changes.entries.insert(here.clone(), Change::Dir);
                self.walk_dir(&here, 0, queue);
            } else if ft.is_file() && (followed || self.selection.selects(&here)) {
                self.read_file(&here, meta.len());
            } else {
                self.changes.entries.insert(here, Change::Opaque);
            }
        }
    }

    fn walk_dir(&mut self, dir: &str, depth: usize, queue: &mut Vec<(String, bool)>) {
        if depth >= MAX_DEPTH {
            return;
        }
        let Ok(entries) = fs::read_dir(self.root.join(dir)) else {
            return;
        };
        for entry in entries.flatten() {
            if self.visits >= MAX_VISITS {
                return;
            }
            self.visits += 1;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let path = format!("{dir}/{name}");
            if !self.selection.is_relevant(&path) {
                continue;
            }
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_symlink() {
                // Recorded and resolved in the image root by the visit.
                queue.push((path, false));
            } else if ft.is_dir() {
                self.changes.entries.insert(path.clone(), Change::Dir);
                self.walk_dir(&path, depth + 1, queue);
            } else if ft.is_file() && self.selection.selects(&path) {
                let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
                self.read_file(&path, len);
            }
        }
    }

    fn read_file(&mut self, path: &str, len: u64) {
        if len > self.limits.max_file_size {
            self.changes.warnings.push(LayerWarning::FileTooLarge {
                layer: "rootfs".to_string(),
                path: path.to_string(),
                size: len,
                limit: self.limits.max_file_size,
            });
            self.changes
                .entries
                .insert(path.to_string(), Change::Opaque);
            return;
        }
        let mut data = Vec::with_capacity(len.min(1 << 20) as usize);
        let read = fs::File::open(self.root.join(path))
            .and_then(|f| f.take(self.limits.max_file_size + 1).read_to_end(&mut data));
        match read {
            Ok(_) => {
                self.changes
                    .entries
                    .insert(path.to_string(), Change::File(data.into()));
            }
            Err(e) => {
                self.changes.warnings.push(LayerWarning::Unreadable {
                    path: path.to_string(),
                    reason: e.to_string(),
                });
                self.changes
                    .entries
                    .insert(path.to_string(), Change::Opaque);
            }
        }
    }
}
