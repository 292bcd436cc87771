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

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};
use trawl::inventory::{OsRelease, Package};

use super::{FindingRow, KEY_SEPARATOR, json_hash, severity_rank};

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
    json_hash(&fields)
}

/// One package of an image's inventory, as `image_packages` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    /// [`package_key`].
    pub pkey: i64,
    /// The layer that introduced it.
    pub layer: Option<String>,
    /// Where it is ([`Package::location`]): the path of its located findings.
    pub location: String,
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
pub(crate) struct Layout {
    /// One per inventory package, in inventory order.
    pub links: Vec<Link>,
    /// One per distinct package key of the links, by key.
    pub packages: Vec<PackageRows>,
    /// The SHA-256 of the links ([`links_sha256`]): stored with the image
    /// (`images.links`), so that links written by another version of the
    /// program (another package key) are seen and written anew.
    pub links_sha256: [u8; 32],
}

/// The SHA-256 of links, in order: every value length-prefixed.
pub(crate) fn links_sha256(links: &[Link]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((links.len() as u64).to_le_bytes());
    for link in links {
        h.update(link.pkey.to_le_bytes());
        match &link.layer {
            Some(layer) => {
                h.update([1]);
                h.update((layer.len() as u64).to_le_bytes());
                h.update(layer.as_bytes());
            }
            None => h.update([0]),
        }
        h.update((link.location.len() as u64).to_le_bytes());
        h.update(link.location.as_bytes());
    }
    h.finalize().into()
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

/// The image's layout, or why its findings cannot be stored normalized
/// (then they are stored in own mode). See the module docs.
pub(crate) fn layout(
    os: Option<&OsRelease>,
    packages: &[Package],
    findings: &[FindingRow],
) -> Result<Layout, String> {
    let links: Vec<Link> = packages
        .iter()
        .map(|p| Link {
            pkey: package_key(os, p),
            layer: p.layer.clone(),
            location: p.location(),
        })
        .collect();
    // Packages by what a finding names of them (and its layer: compared
    // below rather than hashed, a digest being longer than the rest).
    let mut by_name: HashMap<(&str, &str), Vec<usize>> = HashMap::with_capacity(packages.len());
    for (i, p) in packages.iter().enumerate() {
        by_name
            .entry((p.name.as_str(), p.version.as_str()))
            .or_default()
            .push(i);
    }
    let mut groups: BTreeMap<i64, BTreeMap<&str, usize>> = BTreeMap::new();
    for link in &links {
        groups.entry(link.pkey).or_default();
    }
    for (i, f) in findings.iter().enumerate() {
        let candidates = by_name
            .get(&(f.package.as_str(), f.version.as_str()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut pkey = None;
        for &c in candidates {
            if packages[c].layer != f.layer {
                continue;
            }
            if f.path
                .as_ref()
                .is_some_and(|path| *path != links[c].location)
            {
                continue;
            }
            match pkey {
                None => pkey = Some(links[c].pkey),
                Some(k) if k == links[c].pkey => {}
                Some(_) => {
                    return Err(format!(
                        "finding {} of {} {} matches packages of two keys",
                        f.id, f.package, f.version
                    ));
                }
            }
        }
        let Some(pkey) = pkey else {
            return Err(format!(
                "finding {} of {} {} matches no package of the inventory",
                f.id, f.package, f.version
            ));
        };
        let group = groups.entry(pkey).or_default();
        match group.get(f.id.as_str()) {
            None => {
                group.insert(f.id.as_str(), i);
            }
            Some(&j) if same_package_row(f, &findings[j]) => {}
            Some(_) => {
                return Err(format!(
                    "two findings {} of package {} {} differ",
                    f.id, f.package, f.version
                ));
            }
        }
    }
    // The rows rebuilt from the links and the groups must be the image's
    // rows, each once. Compared by id and the parts of the stored key
    // ([`FindingRow::key_base`]: package, path, version) rather than by
    // the key built: without the separator in them, equal parts are equal
    // keys (and a row whose parts hold it stays in own mode).
    let mut actual: HashMap<(&str, &str, &str, &str), usize> =
        HashMap::with_capacity(findings.len());
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
        let key = (f.id.as_str(), f.package.as_str(), path, f.version.as_str());
        if actual.insert(key, i).is_some() {
            return Err(format!(
                "finding {} of {} {} repeats a key",
                f.id, f.package, f.version
            ));
        }
    }
    let mut seen = vec![false; findings.len()];
    for link in &links {
        for &j in groups[&link.pkey].values() {
            let model = &findings[j];
            let path = model.path.as_ref().map(|_| link.location.as_str());
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
                && f.layer == link.layer
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
    let packages = groups
        .into_iter()
        .map(|(pkey, rows)| {
            let rows: Vec<usize> = rows.into_values().collect();
            // Most packages have no findings: their hash is computed once.
            static NONE: std::sync::LazyLock<[u8; 32]> =
                std::sync::LazyLock::new(|| rows_sha256(std::iter::empty()));
            let sha256 = if rows.is_empty() {
                *NONE
            } else {
                rows_sha256(rows.iter().map(|&i| &findings[i]))
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
        let layout = layout(None, &packages, &findings).unwrap();
        assert_eq!(layout.links.len(), 4);
        // libssl3, bash (no findings), lodash once for both instances.
        assert_eq!(layout.packages.len(), 3);
        let rows: usize = layout.packages.iter().map(|p| p.rows.len()).sum();
        assert_eq!(rows, 2);
        let empty = layout.packages.iter().find(|p| p.rows.is_empty()).unwrap();
        assert_eq!(empty.sha256, rows_sha256(std::iter::empty()));

        // One lodash instance without its finding: not rebuilt exactly.
        let e = super::layout(None, &packages, &findings[..2]).unwrap_err();
        assert!(e.contains("would appear"), "{e}");
        // The two instances' findings differ (one suppressed).
        let mut differ = findings.clone();
        differ[2].suppressed = true;
        let e = super::layout(None, &packages, &differ).unwrap_err();
        assert!(e.contains("differ"), "{e}");
        // A finding of a package the inventory does not hold.
        let mut stray = findings.to_vec();
        stray.push(row("CVE-2", "zlib1g", "l1", None));
        let e = super::layout(None, &packages, &stray).unwrap_err();
        assert!(e.contains("no package"), "{e}");
        // Another layer than the package's: no package either.
        let mut moved = findings.clone();
        moved[0].layer = Some("l9".into());
        assert!(super::layout(None, &packages, &moved).is_err());
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

    #[test]
    fn row_hashes_see_every_shared_column() {
        let base = row("CVE-1", "libssl3", "l1", None);
        let h = |r: &FindingRow| rows_sha256(std::iter::once(r));
        let changes: [fn(&mut FindingRow); 9] = [
            |r| r.id = "CVE-2".into(),
            |r| r.aliases.push("DSA-1".into()),
            |r| r.source_version = "1.1".into(),
            |r| r.ecosystem = "Debian:11".into(),
            |r| r.severity = Severity::Low,
            |r| r.fix_state = FixStateKind::Fixed,
            |r| r.fixed_version = Some("1.1".into()),
            |r| r.path = Some(String::new()),
            |r| r.suppressed = true,
        ];
        for change in changes {
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
