//! The normalized layout of findings (PostgreSQL): findings stored once
//! per (match target, package) instead of once per image.
//!
//! # Why
//!
//! Images share most of their packages (base layers), and what the matcher
//! and the classifier make of a package depends on the package and the
//! image's OS, not on which image holds it. One row per image and finding
//! (`findings_own`, ~190 per image) made every advisory database update
//! write ~24 new rows into every image (and read back every image's stored
//! keys to find them); a full replacement rewrote all of them. Stored once
//! per package instead, an update writes a package's findings once for the
//! whole registry, and an image's rescan writes only its `images` row.
//!
//! # Tables
//!
//! | table | key | holds |
//! |---|---|---|
//! | `image_packages` (links) | (digest, n) | one row per package of the image's inventory: its package key ([`package_key`]), layer and location; written by the scan (or when an existing image is first normalized), never by a rescan (the inventory does not change) |
//! | `match_targets` | id; (advisory_db, policy) | the targets (a small id table) |
//! | `package_targets` | (target, pkey) | a package's findings under a target were written: the claim of the writer that wrote them, and the SHA-256 of the rows ([`PackageRows::sha256`]) |
//! | `package_findings` | (target, pkey, id) | the image-independent columns of a finding row: id, aliases, keys, package, version, source package and version, ecosystem, severity, fix state, fixed version, suppressed, and whether the finding is located (a language package's finding carries its path) |
//! | `findings_own` | (digest, id, fkey) | the rows of images in *own mode* (`images.own`): today's per-image layout |
//!
//! An image in normalized mode carries its target's id (`images.target`).
//! `findings_normalized` is the view of its rows: its links joined with
//! the `package_findings` of its target (layer and path from the link; the
//! key built as [`super::finding_keys`] builds it; no value hash: nothing
//! compares those rows). `findings` is a view with the columns the
//! per-image table had: `findings_own` and `findings_normalized`, united.
//! The query layer (shared with SQLite) reads it unchanged, but for a page
//! of findings in the registry's order, which it reads from each of the
//! two in their index order and unites (through the union, PostgreSQL
//! would join and sort every finding first).
//!
//! Indexes: `package_findings` by every id and alias (GIN, without a
//! pending list: it is written rarely and searched by every id lookup), by
//! package, by source package, and in the registry's order (severity, id)
//! for the findings that count; links by package key (from a package's
//! findings to the images holding it) and by image. `findings_own` keeps
//! the per-image table's indexes.
//!
//! # Exact by construction
//!
//! An image is stored normalized only when the view gives exactly its
//! finding rows; else it stays (or goes back) in own mode. At every write
//! (scan or rescan) of an image:
//!
//! 1. [`layout`] maps each finding row to the package it is of (name,
//!    version, layer and, for a located finding, location), groups the
//!    rows by package key, and rebuilds the image's rows from its links
//!    and those groups. Any finding that maps to no package or to packages
//!    of two keys, a package whose findings differ between two of its
//!    instances, repeated keys, or a rebuilt row set that differs in any
//!    column from the actual one: the image stays in own mode (why is
//!    logged at debug).
//! 2. The writer claims each of its package keys for the target in a short
//!    transaction (`INSERT … ON CONFLICT DO NOTHING` into
//!    `package_targets`, in key order) and copies the rows of the keys it
//!    won. N processes can race; the first claim of a (target, key) wins,
//!    and its rows are never changed afterwards.
//! 3. In the write's transaction, the SHA-256 of each of the image's keys
//!    is read back: the image is normalized only when every one equals its
//!    own (the stored rows are then the ones it would have written), else
//!    its rows go to `findings_own`. (Per-image VEX statements, a policy
//!    rule naming the image, anything the package key does not capture
//!    all end there.)
//!
//! Rows of targets that no normalized image is on are deleted when a
//! rescan is planned (under the planning lock, which every write of
//! normalized images holds shared while it reads the hashes back: a
//! target whose rows were collected reads back nothing, and the image goes
//! to own mode).
//!
//! # Cost
//!
//! A rescan computes the layout of every image of its batch in the
//! service, so it is paid per image (`cargo bench --bench rematch` times
//! it). Alone, an image's layout cost ~0.15 ms of CPU (2026-12-05, 87
//! packages and ~217 finding rows per image): half of it SHA-256 over
//! JSON for the package keys and over the rows of each package, the rest
//! maps of strings. The images of a batch share most packages, and a
//! package's rows are the same in every image holding it (the point of
//! this layout), so [`BatchCache`] computes each distinct key and row hash
//! once per batch, found again by comparing fields (cheaper than hashing
//! them, and exact). The links borrow from the inventory (most layouts are
//! compared, not written), and rows are looked up by key only for packages
//! with several instances. The batch's layouts then cost ~0.08 ms an
//! image (see the README's "per-package work once per batch").

use std::borrow::Cow;
use std::collections::HashMap;

use sha2::{Digest, Sha256};
use trawl::inventory::{OsRelease, Package, PackageKind, PackageRole};

use super::{FindingRow, KEY_SEPARATOR, json_hash, severity_rank};

/// What [`package_key`] hashes of an image's OS: its id, release, code
/// name and the distributions it derives from.
type OsFields<'a> = (
    &'a String,
    &'a Option<String>,
    &'a Option<String>,
    &'a Vec<String>,
);

/// Everything [`package_key`] hashes, in its order: the OS's fields and
/// the package's. One definition for the key and for the comparison of
/// [`BatchCache`], so that the two cannot disagree on a field.
type KeyFields<'a> = (
    Option<OsFields<'a>>,
    (
        &'a PackageKind,
        &'a String,
        &'a String,
        &'a Option<String>,
        &'a String,
        &'a String,
        &'a String,
        &'a Option<String>,
        &'a Option<String>,
        &'a Option<u32>,
        &'a Option<String>,
        &'a Option<String>,
        &'a Option<String>,
        &'a Option<String>,
        &'a Option<PackageRole>,
        &'a Option<String>,
    ),
);

fn key_fields<'a>(os: Option<&'a OsRelease>, p: &'a Package) -> KeyFields<'a> {
    let os = os.map(|os| (&os.id, &os.version_id, &os.version_codename, &os.id_like));
    (
        os,
        (
            &p.kind,
            &p.name,
            &p.version,
            &p.arch,
            &p.source_name,
            &p.source_version,
            &p.purl,
            &p.maintainer,
            &p.license,
            &p.epoch,
            &p.release,
            &p.vendor,
            &p.modularity_label,
            &p.found_by,
            &p.role,
            &p.owned_by,
        ),
    )
}

/// Whether two packages (with their images' OS) have the same
/// [`package_key`] fields. Every field of [`KeyFields`] is destructured: a
/// field added to the key and not compared here does not compile.
fn same_key_fields(a: &KeyFields<'_>, b: &KeyFields<'_>) -> bool {
    let (a_os, (a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15)) = a;
    let (b_os, (b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15)) = b;
    // The most telling fields first: most packages differ by name.
    (a1, a2, a5, a4, a0, a3) == (b1, b2, b5, b4, b0, b3)
        && (a6, a7, a8, a9, a10, a11) == (b6, b7, b8, b9, b10, b11)
        && (a12, a13, a14, a15) == (b12, b13, b14, b15)
        && a_os == b_os
}

/// The identity of an inventory package as the matcher and the classifier
/// see it: the first 8 bytes of a SHA-256 over the image's OS identity
/// (what chooses the feeds: distribution id, release, code name, the
/// distributions it derives from) and every field of the package they can
/// read (kind, name, version, architecture, source package and version,
/// package URL, maintainer, license, epoch, release, vendor, module
/// stream, what it was found by, its role, the OS package owning it), but
/// not where it is (layer, database, line, nested archive entries). Two
/// images holding the same package instance give it the same key.
///
/// The key only decides which rows images *may* share: whether an image is
/// stored normalized is decided by comparing rows (see the module docs),
/// so a field the key misses costs sharing, never a wrong answer.
pub fn package_key(os: Option<&OsRelease>, p: &Package) -> i64 {
    // These bytes are the key's, stored in `image_packages` and
    // `package_targets`: they must not change (a test pins them).
    json_hash(&key_fields(os, p))
}

/// What the layouts of a batch's images share, each computed once: the
/// [`package_key`] of each distinct (OS, package), and the [`rows_sha256`]
/// of each distinct package's rows. The images of a batch share most of
/// their packages (their base layers; a key leaves out where a package is,
/// so the same package in two layers shares it too), and a package's rows
/// are the same in every image holding it (that is what lets them be
/// stored once). Both are SHA-256 over bytes written out for it (a key
/// ~0.5 µs, a package's rows ~0.1 µs a row); a look-up compares the
/// fields instead, so that what is found here is exactly what would be
/// computed: packages by name and version, then every keyed field
/// ([`same_key_fields`]); rows by package key and count, then every
/// hashed column ([`same_package_row`]).
#[derive(Default)]
pub(crate) struct BatchCache<'a> {
    /// Keys by (name, version): the entries whose other fields differ
    /// share the bucket.
    keys: HashMap<(&'a str, &'a str), Vec<(KeyFields<'a>, i64)>>,
    /// Row hashes by package key: the rows hashed (those of the first
    /// image that had them) and their hash.
    rows: HashMap<i64, Vec<HashedRows<'a>>>,
}

/// Rows of a package and their [`rows_sha256`].
type HashedRows<'a> = (Vec<&'a FindingRow>, [u8; 32]);

impl<'a> BatchCache<'a> {
    /// [`package_key`]`(os, p)`.
    pub(crate) fn key(&mut self, os: Option<&'a OsRelease>, p: &'a Package) -> i64 {
        let fields = key_fields(os, p);
        let entries = self
            .keys
            .entry((p.name.as_str(), p.version.as_str()))
            .or_default();
        if let Some((_, key)) = entries.iter().find(|(f, _)| same_key_fields(f, &fields)) {
            return *key;
        }
        let key = json_hash(&fields);
        if entries.len() < MAX_VARIANTS {
            entries.push((fields, key));
        }
        key
    }

    /// [`rows_sha256`] of `rows`, the rows of the package `pkey` (not
    /// empty: the hash of no rows is a constant).
    fn rows_sha256(&mut self, pkey: i64, rows: &[&'a FindingRow]) -> [u8; 32] {
        let entries = self.rows.entry(pkey).or_default();
        let same = |known: &[&FindingRow]| {
            known.len() == rows.len() && known.iter().zip(rows).all(|(a, b)| same_package_row(a, b))
        };
        if let Some((_, sha256)) = entries.iter().find(|(known, _)| same(known)) {
            return *sha256;
        }
        let sha256 = rows_sha256(rows.iter().copied());
        if entries.len() < MAX_VARIANTS {
            entries.push((rows.to_vec(), sha256));
        }
        sha256
    }
}

/// The most entries [`BatchCache`] keeps under one name and version (or
/// one package key): past them, what is not found is computed and not
/// kept, so that an inventory of many packages alike in name and version
/// (or a package whose rows differ in every image) costs each look-up a
/// bounded scan, not one growing with the batch.
const MAX_VARIANTS: usize = 8;

/// One package of an image's inventory, as `image_packages` holds it
/// (borrowed from the inventory: most layouts are compared, not written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link<'a> {
    /// [`package_key`].
    pub pkey: i64,
    /// The layer that introduced it.
    pub layer: Option<&'a str>,
    /// Where it is ([`Package::location`]): the path of its located findings.
    pub location: Cow<'a, str>,
}

/// [`Package::location`], borrowed when the package is not inside an archive.
fn location(p: &Package) -> Cow<'_, str> {
    if p.nested.is_empty() {
        Cow::Borrowed(p.database.as_str())
    } else {
        Cow::Owned(p.location())
    }
}

/// The findings of one package key, as `package_findings` holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PackageRows {
    /// [`package_key`].
    pub pkey: i64,
    /// The image's finding rows of the package (indices into the result's
    /// findings), one per id, by id (byte-wise).
    pub rows: Vec<usize>,
    /// The SHA-256 of those rows' image-independent columns, in that order
    /// ([`rows_sha256`]): what a writer compares with the stored rows'.
    pub sha256: [u8; 32],
}

/// How an image's findings are stored normalized: its links, and its
/// findings grouped by package key (every key of its links, those without
/// findings too), by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout<'a> {
    /// One per inventory package, in inventory order.
    pub links: Vec<Link<'a>>,
    /// One per distinct package key of the links, by key.
    pub packages: Vec<PackageRows>,
    /// The SHA-256 of the links ([`links_sha256`]): stored with the image
    /// (`images.links`), so that links written by another version of the
    /// program (another package key) are seen and written anew.
    pub links_sha256: [u8; 32],
}

/// The SHA-256 of links, in order: every value length-prefixed.
pub(crate) fn links_sha256(links: &[Link<'_>]) -> [u8; 32] {
    fn text(h: &mut Vec<u8>, s: &str) {
        h.extend_from_slice(&(s.len() as u64).to_le_bytes());
        h.extend_from_slice(s.as_bytes());
    }
    // Gathered, then hashed at once (the same bytes as fed value by value).
    let mut h = Vec::with_capacity(8 + links.iter().map(|l| 100 + l.location.len()).sum::<usize>());
    h.extend_from_slice(&(links.len() as u64).to_le_bytes());
    for link in links {
        h.extend_from_slice(&link.pkey.to_le_bytes());
        match link.layer {
            Some(layer) => {
                h.push(1);
                text(&mut h, layer);
            }
            None => h.push(0),
        }
        text(&mut h, &link.location);
    }
    Sha256::digest(&h).into()
}

/// Whether two finding rows agree in the columns `package_findings` keeps
/// (all but layer and path; of the path, whether there is one).
fn same_package_row(a: &FindingRow, b: &FindingRow) -> bool {
    a.id == b.id
        && a.aliases == b.aliases
        && a.package == b.package
        && a.version == b.version
        && a.source_name == b.source_name
        && a.source_version == b.source_version
        && a.ecosystem == b.ecosystem
        && a.severity == b.severity
        && a.fix_state == b.fix_state
        && a.fixed_version == b.fixed_version
        && a.suppressed == b.suppressed
        && a.path.is_some() == b.path.is_some()
}

/// No package: the end of a chain of [`layout`]'s packages by name.
const NONE: usize = usize::MAX;

/// The image's layout, or why its findings cannot be stored normalized
/// (then they are stored in own mode). See the module docs. `cache`
/// holds what the images of a batch share.
pub(crate) fn layout<'a>(
    cache: &mut BatchCache<'a>,
    os: Option<&'a OsRelease>,
    packages: &'a [Package],
    findings: &'a [FindingRow],
) -> Result<Layout<'a>, String> {
    let links: Vec<Link<'a>> = packages
        .iter()
        .map(|p| Link {
            pkey: cache.key(os, p),
            layer: p.layer.as_deref(),
            location: location(p),
        })
        .collect();
    // The distinct keys, in order; each link's place among them (its group).
    let mut pkeys: Vec<i64> = links.iter().map(|l| l.pkey).collect();
    pkeys.sort_unstable();
    pkeys.dedup();
    let group_of: Vec<usize> = links
        .iter()
        .map(|l| pkeys.binary_search(&l.pkey).unwrap_or_default())
        .collect();
    // Packages by what a finding names of them (and its layer: compared
    // below rather than hashed, a digest being longer than the rest): the
    // first of each (name, version), then each one's next, in inventory
    // order (chains rather than a vector per name).
    let mut first: HashMap<(&str, &str), usize> = HashMap::with_capacity(packages.len());
    let mut next: Vec<usize> = vec![NONE; packages.len()];
    for (i, p) in packages.iter().enumerate().rev() {
        if let Some(old) = first.insert((p.name.as_str(), p.version.as_str()), i) {
            next[i] = old;
        }
    }
    // Each finding's group, with its id: sorted below into the groups' rows.
    let mut grouped: Vec<(usize, &str, usize)> = Vec::with_capacity(findings.len());
    // Whether the finding's package has several instances.
    let mut several: Vec<bool> = Vec::with_capacity(findings.len());
    // The first package each finding matched (its layer and location are
    // the finding's): the rebuilt row there needs no comparing.
    let mut matched: Vec<usize> = Vec::with_capacity(findings.len());
    for (i, f) in findings.iter().enumerate() {
        let mut c = first
            .get(&(f.package.as_str(), f.version.as_str()))
            .copied()
            .unwrap_or(NONE);
        several.push(c != NONE && next[c] != NONE);
        let mut group = None;
        while c != NONE {
            let candidate = c;
            c = next[c];
            if packages[candidate].layer != f.layer {
                continue;
            }
            if f.path
                .as_ref()
                .is_some_and(|path| *path != links[candidate].location)
            {
                continue;
            }
            match group {
                None => {
                    group = Some(group_of[candidate]);
                    matched.push(candidate);
                }
                Some(g) if g == group_of[candidate] => {}
                Some(_) => {
                    return Err(format!(
                        "finding {} of {} {} matches packages of two keys",
                        f.id, f.package, f.version
                    ));
                }
            }
        }
        let Some(group) = group else {
            return Err(format!(
                "finding {} of {} {} matches no package of the inventory",
                f.id, f.package, f.version
            ));
        };
        grouped.push((group, f.id.as_str(), i));
    }
    // By group, then id (byte-wise), then place: a group's rows, one per
    // id (the first), the others equal to it in every shared column.
    grouped.sort_unstable();
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); pkeys.len()];
    for (n, &(group, id, i)) in grouped.iter().enumerate() {
        match n.checked_sub(1).map(|m| grouped[m]) {
            Some((g, previous, j)) if g == group && previous == id => {
                // `j` is the first of the id (or equal to it, checked before).
                if !same_package_row(&findings[i], &findings[j]) {
                    return Err(format!(
                        "two findings {} of package {} {} differ",
                        findings[i].id, findings[i].package, findings[i].version
                    ));
                }
            }
            _ => rows[group].push(i),
        }
    }
    // The rows rebuilt from the links and the groups must be the image's
    // rows, each once. Compared by id and the parts of the stored key
    // ([`FindingRow::key_base`]: package, path, version) rather than by
    // the key built: without the separator in them, equal parts are equal
    // keys (and a row whose parts hold it stays in own mode). A row is
    // looked up by its key only when its package has several instances
    // (a name and version the inventory holds more than once): those are
    // the only rows a rebuilt row can be without being its own model, and
    // the only ones whose key can repeat unseen (a repeat of a package's
    // only instance is a second row of its id there, which nothing
    // rebuilds: `seen` below finds it).
    let mut actual: HashMap<(&str, &str, &str, &str), usize> = HashMap::new();
    for (i, f) in findings.iter().enumerate() {
        let path = f.path.as_deref().unwrap_or_default();
        if [f.package.as_str(), path, f.version.as_str()]
            .iter()
            .any(|part| part.contains(KEY_SEPARATOR))
        {
            return Err(format!(
                "finding {} of {} {} holds the key separator",
                f.id, f.package, f.version
            ));
        }
        if !several[i] {
            continue;
        }
        let key = (f.id.as_str(), f.package.as_str(), path, f.version.as_str());
        if actual.insert(key, i).is_some() {
            return Err(format!(
                "finding {} of {} {} repeats a key",
                f.id, f.package, f.version
            ));
        }
    }
    let mut seen = vec![false; findings.len()];
    for (c, (link, &group)) in links.iter().zip(&group_of).enumerate() {
        for &j in &rows[group] {
            let model = &findings[j];
            // The model where it was found: itself, layer and path equal.
            if matched[j] == c {
                if std::mem::replace(&mut seen[j], true) {
                    return Err(format!(
                        "finding {} of {} {} differs between instances of the package",
                        model.id, model.package, model.version
                    ));
                }
                continue;
            }
            let path = model.path.as_ref().map(|_| link.location.as_ref());
            // The model rebuilt where it is (most packages have one
            // instance): its own row, looked up no further.
            let i = if model.path.as_deref() == path {
                j
            } else {
                let key = (
                    model.id.as_str(),
                    model.package.as_str(),
                    path.unwrap_or_default(),
                    model.version.as_str(),
                );
                let Some(&i) = actual.get(&key) else {
                    return Err(format!(
                        "finding {} of {} {} would appear where the image has none",
                        model.id, model.package, model.version
                    ));
                };
                i
            };
            let f = &findings[i];
            let same = (i == j || same_package_row(f, model))
                && f.layer.as_deref() == link.layer
                && f.path.as_deref() == path;
            if !same || std::mem::replace(&mut seen[i], true) {
                return Err(format!(
                    "finding {} of {} {} differs between instances of the package",
                    model.id, model.package, model.version
                ));
            }
        }
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        return Err(format!(
            "finding {} of {} is not rebuilt from the packages",
            findings[i].id, findings[i].package
        ));
    }
    // Most packages have no findings: their hash is computed once.
    static EMPTY: std::sync::LazyLock<[u8; 32]> =
        std::sync::LazyLock::new(|| rows_sha256(std::iter::empty()));
    let mut group: Vec<&FindingRow> = Vec::new();
    let packages = pkeys
        .into_iter()
        .zip(rows)
        .map(|(pkey, rows)| {
            let sha256 = if rows.is_empty() {
                *EMPTY
            } else {
                group.clear();
                group.extend(rows.iter().map(|&i| &findings[i]));
                cache.rows_sha256(pkey, &group)
            };
            PackageRows { pkey, sha256, rows }
        })
        .collect();
    Ok(Layout {
        links_sha256: links_sha256(&links),
        links,
        packages,
    })
}

/// The SHA-256 of finding rows' `package_findings` columns, in order:
/// every value length-prefixed (absent values and flags as one tag byte),
/// the count first, so that no two row sets hash alike by shifting text
/// between fields or rows.
pub(crate) fn rows_sha256<'a>(rows: impl ExactSizeIterator<Item = &'a FindingRow>) -> [u8; 32] {
    fn text(h: &mut Vec<u8>, s: &str) {
        h.extend_from_slice(&(s.len() as u64).to_le_bytes());
        h.extend_from_slice(s.as_bytes());
    }
    // The bytes are gathered, then hashed at once: cheaper than feeding
    // the hasher each value.
    let mut h = Vec::with_capacity(256 * rows.len() + 8);
    h.extend_from_slice(&(rows.len() as u64).to_le_bytes());
    for f in rows {
        text(&mut h, &f.id);
        h.extend_from_slice(&(f.aliases.len() as u64).to_le_bytes());
        for a in &f.aliases {
            text(&mut h, a);
        }
        for s in [
            &f.package,
            &f.version,
            &f.source_name,
            &f.source_version,
            &f.ecosystem,
        ] {
            text(&mut h, s);
        }
        h.extend_from_slice(&severity_rank(f.severity).to_le_bytes());
        text(&mut h, f.fix_state.as_str());
        match &f.fixed_version {
            Some(v) => {
                h.push(1);
                text(&mut h, v);
            }
            None => h.push(0),
        }
        h.extend_from_slice(&[u8::from(f.path.is_some()), u8::from(f.suppressed)]);
    }
    Sha256::digest(&h).into()
}

#[cfg(test)]
mod tests {
    use trawl::Severity;
    use trawl::classify::FixStateKind;

    use super::*;

    fn package(name: &str, layer: &str, database: &str, kind: &str) -> Package {
        serde_json::from_value(serde_json::json!({
            "type": kind, "name": name, "version": "1.0", "source_name": name,
            "source_version": "1.0", "purl": format!("pkg:{kind}/{name}@1.0"),
            "layer": layer, "database": database,
        }))
        .unwrap()
    }

    fn row(id: &str, package: &str, layer: &str, path: Option<&str>) -> FindingRow {
        FindingRow {
            id: id.into(),
            aliases: vec![],
            package: package.into(),
            version: "1.0".into(),
            source_name: package.into(),
            source_version: "1.0".into(),
            ecosystem: "Debian:12".into(),
            severity: Severity::High,
            fix_state: FixStateKind::Unfixed,
            fixed_version: None,
            layer: Some(layer.into()),
            path: path.map(str::to_string),
            suppressed: false,
        }
    }

    #[test]
    fn findings_group_by_package_and_rebuild_exactly() {
        let packages = [
            package("libssl3", "l1", "var/lib/dpkg/status", "deb"),
            package("bash", "l1", "var/lib/dpkg/status", "deb"),
            package("lodash", "l2", "a/package.json", "npm"),
            package("lodash", "l3", "b/package.json", "npm"),
        ];
        let findings = [
            row("CVE-1", "libssl3", "l1", None),
            row("GHSA-1", "lodash", "l2", Some("a/package.json")),
            row("GHSA-1", "lodash", "l3", Some("b/package.json")),
        ];
        let layout = layout(&mut BatchCache::default(), None, &packages, &findings).unwrap();
        assert_eq!(layout.links.len(), 4);
        // libssl3, bash (no findings), lodash once for both instances.
        assert_eq!(layout.packages.len(), 3);
        let rows: usize = layout.packages.iter().map(|p| p.rows.len()).sum();
        assert_eq!(rows, 2);
        let empty = layout.packages.iter().find(|p| p.rows.is_empty()).unwrap();
        assert_eq!(empty.sha256, rows_sha256(std::iter::empty()));

        // One lodash instance without its finding: not rebuilt exactly.
        let e =
            super::layout(&mut BatchCache::default(), None, &packages, &findings[..2]).unwrap_err();
        assert!(e.contains("would appear"), "{e}");
        // The two instances' findings differ (one suppressed).
        let mut differ = findings.clone();
        differ[2].suppressed = true;
        let e = super::layout(&mut BatchCache::default(), None, &packages, &differ).unwrap_err();
        assert!(e.contains("differ"), "{e}");
        // A finding of a package the inventory does not hold.
        let mut stray = findings.to_vec();
        stray.push(row("CVE-2", "zlib1g", "l1", None));
        let e = super::layout(&mut BatchCache::default(), None, &packages, &stray).unwrap_err();
        assert!(e.contains("no package"), "{e}");
        // Another layer than the package's: no package either.
        let mut moved = findings.clone();
        moved[0].layer = Some("l9".into());
        assert!(super::layout(&mut BatchCache::default(), None, &packages, &moved).is_err());
        // A row twice (its key repeats), of a package with one instance or
        // with several.
        for repeated in [&findings[0], &findings[1]] {
            let mut rows = findings.to_vec();
            rows.push(repeated.clone());
            assert!(super::layout(&mut BatchCache::default(), None, &packages, &rows).is_err());
        }
        // Two instances of a name and version that key apart (another
        // architecture), in two layers, each with a row of one id: their
        // keys (id, package, path, version) are the same.
        let mut two = packages[..2].to_vec();
        let mut other = package("libssl3", "l2", "var/lib/dpkg/status", "deb");
        other.arch = Some("arm64".into());
        two.push(other);
        let rows = [
            row("CVE-1", "libssl3", "l1", None),
            row("CVE-1", "libssl3", "l2", None),
        ];
        let e = super::layout(&mut BatchCache::default(), None, &two, &rows).unwrap_err();
        assert!(e.contains("repeats a key"), "{e}");
        // Without the repeat, each instance keeps its row.
        let layout = super::layout(&mut BatchCache::default(), None, &two, &rows[..1]).unwrap();
        assert_eq!(
            layout
                .packages
                .iter()
                .filter(|p| !p.rows.is_empty())
                .count(),
            1
        );
    }

    /// The key as the versions that wrote the stored links computed it:
    /// the same JSON fed to the hasher as serde_json writes it.
    fn package_key_as_written(os: Option<&OsRelease>, p: &Package) -> i64 {
        struct Feed(Sha256);
        impl std::io::Write for Feed {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.update(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut feed = Feed(Sha256::new());
        let os = os.map(|os| (&os.id, &os.version_id, &os.version_codename, &os.id_like));
        let fields = (
            os,
            (
                &p.kind,
                &p.name,
                &p.version,
                &p.arch,
                &p.source_name,
                &p.source_version,
                &p.purl,
                &p.maintainer,
                &p.license,
                &p.epoch,
                &p.release,
                &p.vendor,
                &p.modularity_label,
                &p.found_by,
                &p.role,
                &p.owned_by,
            ),
        );
        serde_json::to_writer(&mut feed, &fields).unwrap();
        i64::from_be_bytes(feed.0.finalize()[..8].try_into().unwrap())
    }

    #[test]
    fn package_keys_are_the_stored_ones() {
        let os = OsRelease {
            id: "debian".into(),
            version_id: Some("12".into()),
            version_codename: Some("bookworm".into()),
            id_like: vec!["linux".into()],
            ..OsRelease::default()
        };
        let mut quoted = package("a\"b\\c\u{1}é", "l1", "x", "deb");
        quoted.maintainer = Some("M <m@example.org>".into());
        quoted.epoch = Some(2);
        let packages = [
            package("libssl3", "l1", "var/lib/dpkg/status", "deb"),
            package("lodash", "l2", "a/package.json", "npm"),
            quoted,
        ];
        let mut keys = Vec::new();
        for p in &packages {
            for os in [None, Some(&os)] {
                // Twice: the buffer kept between keys holds nothing over.
                for _ in 0..2 {
                    assert_eq!(package_key(os, p), package_key_as_written(os, p));
                }
                keys.push(package_key(os, p));
            }
        }
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 6, "every package and OS keys apart");
        // Pinned: these bytes are in stores.
        assert_eq!(package_key(None, &packages[0]), 6_675_382_519_185_258_639);
    }

    /// The layouts of a batch computed with one cache are those computed
    /// alone: the images share a package whose rows differ in any hashed
    /// column from one image to the next, or only in where they are.
    #[test]
    fn cached_row_hashes_are_the_computed_ones() {
        let packages = [
            package("libssl3", "l1", "var/lib/dpkg/status", "deb"),
            package("lodash", "l2", "a/package.json", "npm"),
        ];
        let base = vec![
            row("CVE-1", "libssl3", "l1", None),
            row("CVE-2", "libssl3", "l1", None),
            row("GHSA-1", "lodash", "l2", Some("a/package.json")),
        ];
        let changes: [fn(&mut FindingRow); 3] = [
            |r| r.suppressed = true,
            |r| r.source_name = "openssl".into(),
            |r| r.id = "CVE-0".into(),
        ];
        let mut images = vec![base.clone()];
        for change in COLUMN_CHANGES.into_iter().chain(changes) {
            for i in 0..base.len() {
                let mut rows = base.clone();
                change(&mut rows[i]);
                images.push(rows);
            }
        }
        // One row fewer: the package's rows are a prefix of the first's.
        images.push(base[1..].to_vec());
        images.push(vec![base[0].clone(), base[2].clone()]);
        // Elsewhere: the same rows of a package in another layer.
        let mut moved_packages = packages.clone();
        moved_packages[0].layer = Some("l9".into());
        let mut moved = base.clone();
        moved[0].layer = Some("l9".into());
        moved[1].layer = Some("l9".into());
        let mut cache = BatchCache::default();
        let mut hashes = Vec::new();
        for _ in 0..2 {
            for rows in &images {
                let shared = layout(&mut cache, None, &packages, rows).unwrap();
                let alone = layout(&mut BatchCache::default(), None, &packages, rows).unwrap();
                assert_eq!(shared, alone);
                hashes.extend(shared.packages.iter().map(|p| p.sha256));
            }
            let shared = layout(&mut cache, None, &moved_packages, &moved).unwrap();
            let alone = layout(&mut BatchCache::default(), None, &moved_packages, &moved).unwrap();
            assert_eq!(shared, alone);
            assert_eq!(
                shared.packages,
                layout(&mut cache, None, &packages, &base).unwrap().packages
            );
        }
        hashes.sort_unstable();
        hashes.dedup();
        // Of libssl3: the base rows, 2 changed rows × 9 changes, two with
        // one row fewer; of lodash: the base and 9 changes.
        assert_eq!(hashes.len(), 1 + 18 + 2 + 1 + 9);
    }

    /// A batch's key cache gives every package its own key: packages that
    /// share a name and version but differ in any other keyed field (or in
    /// their image's OS) keep theirs, and where a package is does not count.
    #[test]
    fn cached_package_keys_are_the_computed_ones() {
        let debian = |version: &str| OsRelease {
            id: "debian".into(),
            version_id: Some(version.into()),
            ..OsRelease::default()
        };
        let (twelve, eleven) = (debian("12"), debian("11"));
        let base = package("libssl3", "l1", "var/lib/dpkg/status", "deb");
        let changes: [fn(&mut Package); 18] = [
            |p| p.kind = trawl::inventory::PackageKind::Apk,
            |p| p.arch = Some("amd64".into()),
            |p| p.source_name = "openssl".into(),
            |p| p.source_version = "1.1".into(),
            |p| p.purl = "pkg:deb/other".into(),
            |p| p.maintainer = Some("m".into()),
            |p| p.license = Some("MIT".into()),
            |p| p.epoch = Some(1),
            |p| p.release = Some("1.el9".into()),
            |p| p.vendor = Some("v".into()),
            |p| p.modularity_label = Some("m:1".into()),
            |p| p.found_by = Some("f".into()),
            |p| p.role = Some(PackageRole::Main),
            |p| p.owned_by = Some("o".into()),
            // Where it is: the same key.
            |p| p.layer = Some("l2".into()),
            |p| p.database = "other".into(),
            |p| p.database_line = Some(7),
            |p| p.nested = vec!["a.jar".into()],
        ];
        let mut packages = vec![base.clone()];
        for change in changes {
            let mut p = base.clone();
            change(&mut p);
            packages.push(p);
        }
        let oses = [None, Some(&twelve), Some(&eleven)];
        let mut cache = BatchCache::default();
        let mut keys = Vec::new();
        // Twice: the second round answers from the cache.
        for _ in 0..2 {
            for os in oses {
                for p in &packages {
                    let key = cache.key(os, p);
                    assert_eq!(key, package_key(os, p), "{p:?} on {os:?}");
                    keys.push(key);
                }
            }
        }
        keys.sort_unstable();
        keys.dedup();
        // 15 keyed variants (the base and 14 changes) on 3 OSes.
        assert_eq!(keys.len(), 15 * 3);
    }

    /// The rows' hash as the versions that wrote `package_targets`
    /// computed it: every value fed to the hasher in turn.
    fn rows_sha256_as_written(rows: &[FindingRow]) -> [u8; 32] {
        fn text(h: &mut Sha256, s: &str) {
            h.update((s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        }
        let mut h = Sha256::new();
        h.update((rows.len() as u64).to_le_bytes());
        for f in rows {
            text(&mut h, &f.id);
            h.update((f.aliases.len() as u64).to_le_bytes());
            for a in &f.aliases {
                text(&mut h, a);
            }
            for s in [
                &f.package,
                &f.version,
                &f.source_name,
                &f.source_version,
                &f.ecosystem,
            ] {
                text(&mut h, s);
            }
            h.update(severity_rank(f.severity).to_le_bytes());
            text(&mut h, f.fix_state.as_str());
            match &f.fixed_version {
                Some(v) => {
                    h.update([1]);
                    text(&mut h, v);
                }
                None => h.update([0]),
            }
            h.update([u8::from(f.path.is_some()), u8::from(f.suppressed)]);
        }
        h.finalize().into()
    }

    #[test]
    fn row_hashes_are_the_stored_ones() {
        let mut other = row("GHSA-1", "lodash", "l2", Some("a/package.json"));
        other.aliases = vec!["CVE-3".into(), "é".into()];
        other.fixed_version = Some("1.1".into());
        other.suppressed = true;
        let rows = [row("CVE-1", "libssl3", "l1", None), other];
        for n in 0..=rows.len() {
            assert_eq!(
                rows_sha256(rows[..n].iter()),
                rows_sha256_as_written(&rows[..n])
            );
        }
    }

    /// Changes of a finding row's columns that its package's other
    /// instances would not share (the tests add the ones they look at).
    const COLUMN_CHANGES: [fn(&mut FindingRow); 6] = [
        |r| r.aliases.push("DSA-1".into()),
        |r| r.source_version = "1.1".into(),
        |r| r.ecosystem = "Debian:11".into(),
        |r| r.severity = Severity::Low,
        |r| r.fix_state = FixStateKind::Fixed,
        |r| r.fixed_version = Some("1.1".into()),
    ];

    #[test]
    fn row_hashes_see_every_shared_column() {
        let base = row("CVE-1", "libssl3", "l1", None);
        let h = |r: &FindingRow| rows_sha256(std::iter::once(r));
        let changes: [fn(&mut FindingRow); 3] = [
            |r| r.id = "CVE-2".into(),
            |r| r.path = Some(String::new()),
            |r| r.suppressed = true,
        ];
        for change in COLUMN_CHANGES.into_iter().chain(changes) {
            let mut other = base.clone();
            change(&mut other);
            assert_ne!(h(&other), h(&base));
        }
        // Layer and path are the link's: not in the hash.
        let mut elsewhere = base.clone();
        elsewhere.layer = Some("l2".into());
        assert_eq!(h(&elsewhere), h(&base));
    }
}
