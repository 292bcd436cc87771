//! Which layer introduced each package at its current version, from the
//! history of the package database file across the image's layers. Shared by
//! every cataloger whose database is one file rewritten by each install
//! (dpkg `status`, apk `installed`).

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use trawl_layers::FileVersion;

/// For each wanted key, the layer of the earliest version in the unbroken run
/// of database versions, walking back from the newest, that still lists the
/// package unchanged. `keys_in` lists the keys one version of the file holds;
/// a deleted version (whiteout) holds none.
pub(crate) fn attribute<K, F>(
    history: &[FileVersion<'_>],
    wanted: &[K],
    keys_in: F,
) -> HashMap<K, Option<String>>
where
    K: Eq + Hash + Clone,
    F: Fn(&[u8]) -> HashSet<K>,
{
    let mut out: HashMap<K, Option<String>> = HashMap::new();
    let mut open: HashSet<&K> = wanted.iter().collect();
    for v in history.iter().rev() {
        if open.is_empty() {
            break;
        }
        let present = v.data.map(&keys_in).unwrap_or_default();
        open.retain(|k| {
            if present.contains(*k) {
                out.insert((*k).clone(), v.layer.map(str::to_string));
                true
            } else {
                false
            }
        });
    }
    out
}
