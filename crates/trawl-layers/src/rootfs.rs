//! A plain root file system directory (`dir:ROOTFS`) read as one unlayered view.
//!
//! Only the selected paths are visited. Symlinks are recorded, never followed on
//! the host: their targets are resolved inside the image root by [`MergedFs`],
//! so a link to `/etc/shadow` or `../../..` can never reach the host's files.
//!
//! Only regular files are read. A FIFO, socket or device where a selected file is
//! expected is never opened; it is listed as dropped ([`MergedFs::dropped`]) with a
//! warning, so the scan goes on but is incomplete. Files are opened with
//! `O_NONBLOCK` and checked with `fstat` on the open handle, so a file swapped for a
//! FIFO after it was listed cannot block the scan either.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use crate::budget::{Budget, Limits, Pool, Reservation};
use crate::error::{LayerError, LayerWarning};
use crate::extractor::{self, EntryInfo, Extractor};
use crate::layer::{Change, LayerChanges, Regular, extraction_results, link_too_long};
use crate::merged::MergedFs;
use crate::selection::{Selection, normalize};

/// Deepest directory tree walked below a selected prefix.
const MAX_DEPTH: usize = 16;
/// Most leading bytes read for extractors' sniffing.
const MAX_SNIFF: usize = 64 << 10;

/// Reads the selected files of the root file system at `root`.
///
/// Exact paths and prefixes are visited directly. With globs or extractors
/// in the selection the whole tree is walked, at most
/// [`Limits::max_entries`] directory entries; a walk that stops there lists
/// the directory it stopped in as [`MergedFs::dropped`].
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
    let budget = Budget::new(limits, None);
    let mut walk = Walk {
        root,
        selection,
        limits,
        budget: &budget,
        extractors: selection.extractors().collect(),
        changes: LayerChanges::default(),
        seen: BTreeSet::new(),
        visits: 0,
        unread: Vec::new(),
    };
    if selection.records_everything() {
        walk.walk_all();
    }
    // (path, keep its contents even if unselected: it is the target of a selected link)
    let mut queue: Vec<(String, bool)> = selection
        .paths()
        .chain(selection.prefixes())
        .map(|p| (p.to_string(), false))
        .collect();
    while let Some((path, followed)) = queue.pop() {
        walk.visit(&path, followed, &mut queue);
    }
    let unread = std::mem::take(&mut walk.unread);
    Ok(MergedFs::unlayered(walk.changes, limits, unread))
}

struct Walk<'a> {
    root: &'a Path,
    selection: &'a Selection,
    limits: &'a Limits,
    budget: &'a Budget,
    extractors: Vec<&'a dyn Extractor>,
    changes: LayerChanges,
    seen: BTreeSet<String>,
    visits: u64,
    unread: Vec<(String, String)>,
}

#[cfg(unix)]
fn mode_of(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn mode_of(_: &fs::Metadata) -> u32 {
    0o644
}

impl Walk<'_> {
    fn warn(&mut self, warning: LayerWarning) {
        let max = self.limits.max_warnings;
        if self.changes.warnings.len() < max {
            self.changes.warnings.push(warning);
        } else {
            self.changes.more_warnings += 1;
        }
    }

    /// Counts a visit; false (and the place is listed as unread) once the
    /// cap is reached.
    fn count_visit(&mut self, at: &str) -> bool {
        if self.visits >= self.limits.max_entries {
            if self.unread.is_empty() {
                self.unread.push((
                    if at.is_empty() { "/" } else { at }.to_string(),
                    format!(
                        "the walk stopped after {} entries (the max_entries limit); the rest of the tree was not read",
                        self.limits.max_entries
                    ),
                ));
            }
            return false;
        }
        self.visits += 1;
        true
    }

    /// The whole tree, for globs and extractors: symlinks recorded (never
    /// followed), selected files read, wanted files handed to extractors.
    fn walk_all(&mut self) {
        let mut dirs = vec![String::new()];
        while let Some(dir) = dirs.pop() {
            let entries = match fs::read_dir(self.root.join(&dir)) {
                Ok(entries) => entries,
                Err(e) => {
                    if !dir.is_empty() {
                        self.warn(LayerWarning::Unreadable {
                            path: dir.clone(),
                            reason: e.to_string(),
                        });
                    }
                    continue;
                }
            };
            for entry in entries.flatten() {
                if !self.count_visit(&dir) {
                    return;
                }
                let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                let path = if dir.is_empty() {
                    name
                } else {
                    format!("{dir}/{name}")
                };
                if path.len() > self.limits.max_path_len {
                    self.warn(LayerWarning::PathTooLong {
                        layer: "rootfs".to_string(),
                        start: path.chars().take(64).collect(),
                        len: path.len(),
                        limit: self.limits.max_path_len,
                    });
                    continue;
                }
                let Ok(ft) = entry.file_type() else { continue };
                if ft.is_symlink() {
                    self.record_link(&path);
                } else if ft.is_dir() {
                    if self.selection.is_relevant(&path) {
                        self.changes.entries.insert(path.clone(), Change::Dir);
                    }
                    dirs.push(path);
                } else if ft.is_file() {
                    let Ok(meta) = entry.metadata() else { continue };
                    if self.selection.selects(&path) {
                        self.read_file(&path, &meta);
                    } else if !self.extractors.is_empty() {
                        self.extract_file(&path, &meta);
                    }
                } else if self.selection.selects(&path) {
                    self.special_file(&path, &meta_kind(&entry));
                } else if self.selection.is_relevant(&path) {
                    self.changes.entries.insert(path, Change::Opaque);
                }
            }
        }
    }

    /// Records the symlink at `path` (its target resolved later, inside the
    /// image root); returns its target when it can be followed.
    fn record_link(&mut self, path: &str) -> Option<String> {
        let target = fs::read_link(self.root.join(path)).ok()?;
        let target = target.to_string_lossy().into_owned();
        let components = target.split('/').count();
        if target.len() > self.limits.max_link_target_len
            || components > self.limits.max_link_components
        {
            self.warn(LayerWarning::LinkTooLong {
                layer: "rootfs".to_string(),
                path: path.to_string(),
                len: target.len(),
                components,
            });
            self.changes.entries.insert(
                path.to_string(),
                Change::Regular(Regular::dropped(link_too_long(target.len(), components))),
            );
            return None;
        }
        self.changes
            .entries
            .insert(path.to_string(), Change::Symlink(target.clone()));
        Some(target)
    }

    /// Visits `path` component by component, recording symlinks on the way and
    /// queueing their (root-confined) targets.
    fn visit(&mut self, path: &str, followed: bool, queue: &mut Vec<(String, bool)>) {
        if !self.seen.insert(path.to_string()) || !self.count_visit(path) {
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
                let Some(target) = self.record_link(&here) else {
                    return;
                };
                let parent = parts[..i - 1].join("/");
                let rest = parts[i..].join("/");
                let joined = if target.starts_with('/') {
                    format!("{target}/{rest}")
                } else {
                    format!("{parent}/{target}/{rest}")
                };
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
                self.read_file(&here, &meta);
            } else if !ft.is_file() && (followed || self.selection.selects(&here)) {
                self.special_file(&here, kind_of(&meta));
            } else {
                self.changes.entries.insert(here, Change::Opaque);
            }
        }
    }

    fn walk_dir(&mut self, dir: &str, depth: usize, queue: &mut Vec<(String, bool)>) {
        if depth >= MAX_DEPTH {
            self.unread.push((
                dir.to_string(),
                format!("deeper than {MAX_DEPTH} directories; not read"),
            ));
            return;
        }
        let Ok(entries) = fs::read_dir(self.root.join(dir)) else {
            return;
        };
        for entry in entries.flatten() {
            if !self.count_visit(dir) {
                return;
            }
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
                if let Ok(meta) = entry.metadata() {
                    self.read_file(&path, &meta);
                }
            } else if self.selection.selects(&path) {
                self.special_file(&path, &meta_kind(&entry));
            }
        }
    }

    /// A selected path that is a FIFO, socket or device: never opened (a FIFO
    /// would block), listed as dropped with a warning.
    fn special_file(&mut self, path: &str, kind: &str) {
        let reason = format!("a {kind}, not a regular file; not read");
        self.warn(LayerWarning::Unreadable {
            path: path.to_string(),
            reason: reason.clone(),
        });
        self.changes
            .entries
            .insert(path.to_string(), Change::Regular(Regular::dropped(reason)));
    }

    fn read_file(&mut self, path: &str, meta: &fs::Metadata) {
        if matches!(self.changes.entries.get(path), Some(Change::Regular(_))) {
            return;
        }
        let len = meta.len();
        let regular = if len > self.limits.max_file_size {
            self.warn(LayerWarning::FileTooLarge {
                layer: "rootfs".to_string(),
                path: path.to_string(),
                size: len,
                limit: self.limits.max_file_size,
            });
            Regular::dropped(format!(
                "{len} bytes, over the {}-byte limit for one file",
                self.limits.max_file_size
            ))
        } else if let Some(reservation) = Reservation::take(self.budget, Pool::Kept, len) {
            let mut data = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            let read = open_regular(&self.root.join(path))
                .and_then(|f| f.take(len).read_to_end(&mut data));
            match read {
                Ok(_) => {
                    reservation.keep();
                    let data = Arc::new(data);
                    let info = EntryInfo {
                        path,
                        size: len,
                        mode: mode_of(meta),
                    };
                    let wanting: Vec<&dyn Extractor> = self
                        .extractors
                        .iter()
                        .copied()
                        .filter(|x| x.wants(&info))
                        .collect();
                    let extracted = if wanting.is_empty() {
                        Arc::default()
                    } else {
                        let outcomes = extractor::run_in_memory(&wanting, &info, &data);
                        extraction_results(&wanting, outcomes, self.budget).0
                    };
                    Regular {
                        data: Some(data),
                        dropped: None,
                        extracted,
                    }
                }
                Err(e) => {
                    self.warn(LayerWarning::Unreadable {
                        path: path.to_string(),
                        reason: e.to_string(),
                    });
                    Regular::dropped(format!("unreadable: {e}"))
                }
            }
        } else {
            Regular::dropped(format!(
                "{len} bytes, over what is left of the scan's {}-byte memory budget",
                self.limits.max_kept_bytes
            ))
        };
        self.changes
            .entries
            .insert(path.to_string(), Change::Regular(regular));
    }

    /// Hands a file to the extractors that want it: in memory when small, else
    /// the file itself (a host file is seekable; nothing is spooled).
    fn extract_file(&mut self, path: &str, meta: &fs::Metadata) {
        let len = meta.len();
        let info = EntryInfo {
            path,
            size: len,
            mode: mode_of(meta),
        };
        let mut wanting: Vec<&dyn Extractor> = self
            .extractors
            .iter()
            .copied()
            .filter(|x| x.wants(&info))
            .collect();
        if wanting.is_empty() {
            return;
        }
        let outcomes = match self.run_extractors(&info, &mut wanting) {
            Ok(Some(outcomes)) => outcomes,
            Ok(None) => return,
            Err(e) => wanting
                .iter()
                .map(|_| Err(format!("unreadable: {e}")))
                .collect(),
        };
        let (extracted, _) = extraction_results(&wanting, outcomes, self.budget);
        if !extracted.is_empty() {
            self.changes.entries.insert(
                path.to_string(),
                Change::Regular(Regular {
                    extracted,
                    ..Default::default()
                }),
            );
        }
    }

    /// Sniffs and runs `wanting` (narrowed to those whose sniff passed);
    /// `None` when none did.
    fn run_extractors(
        &self,
        info: &EntryInfo<'_>,
        wanting: &mut Vec<&dyn Extractor>,
    ) -> std::io::Result<Option<Vec<extractor::Outcome>>> {
        let mut file = open_regular(&self.root.join(info.path))?;
        let sniff = wanting
            .iter()
            .map(|x| x.sniff_len())
            .max()
            .unwrap_or(0)
            .min(MAX_SNIFF);
        if sniff > 0 {
            let mut head = Vec::new();
            (&mut file).take(sniff as u64).read_to_end(&mut head)?;
            wanting.retain(|x| {
                let n = x.sniff_len().min(head.len());
                x.sniff_len() == 0 || x.sniff(&head[..n])
            });
            if wanting.is_empty() {
                return Ok(None);
            }
            file.seek(SeekFrom::Start(0))?;
        }
        let len = info.size;
        let small = len <= self.limits.max_extract_memory;
        if let Some(_held) = small
            .then(|| Reservation::take(self.budget, Pool::Kept, len))
            .flatten()
        {
            let mut data = Vec::with_capacity(len.min(1 << 20) as usize);
            file.take(len).read_to_end(&mut data)?;
            return Ok(Some(extractor::run_in_memory(wanting, info, &data)));
        }
        let mut bounded = file.take(len);
        let mut limited = LimitedFile {
            file: &mut bounded,
            len,
        };
        Ok(Some(extractor::run_seekable(
            wanting,
            info,
            &mut limited,
            len,
        )))
    }
}

/// Opens a host file for reading without blocking (`O_NONBLOCK`: a FIFO put
/// there after the walk listed a regular file opens at once) and checks with
/// `fstat` on the handle that it is a regular file.
fn open_regular(path: &Path) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other(format!(
            "a {}, not a regular file",
            kind_of(&meta)
        )));
    }
    Ok(file)
}

/// What a directory entry is, in words (see [`kind_of`]).
fn meta_kind(entry: &fs::DirEntry) -> String {
    entry
        .metadata()
        .map_or_else(|_| "special file".to_string(), |m| kind_of(&m).to_string())
}

/// What a non-regular file is, in words: `FIFO`, `socket`, `character
/// device`, `block device`, `directory`.
fn kind_of(meta: &fs::Metadata) -> &'static str {
    let ft = meta.file_type();
    if ft.is_dir() {
        return "directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "FIFO";
        }
        if ft.is_socket() {
            return "socket";
        }
        if ft.is_char_device() {
            return "character device";
        }
        if ft.is_block_device() {
            return "block device";
        }
    }
    if ft.is_file() {
        "regular file"
    } else {
        "special file"
    }
}

/// A host file as `Read + Seek`, bounded to the size it had when listed.
struct LimitedFile<'a> {
    file: &'a mut std::io::Take<fs::File>,
    len: u64,
}

impl Read for LimitedFile<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.file.read(buf)
    }
}

impl Seek for LimitedFile<'_> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let inner = self.file.get_mut();
        let at = inner.seek(pos)?;
        self.file.set_limit(self.len.saturating_sub(at));
        Ok(at)
    }
}
