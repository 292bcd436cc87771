//! Language packages against the ecosystems' own tools, on test data built by
//! scripts/lang-artifacts/build-packages.sh from real packages (pip, npm,
//! pnpm, composer, Debian's python3-*, ruby-* and libruby packages unpacked by
//! dpkg): each format's list equals its tool's list exactly (name, version,
//! path), and OS-owned metadata files carry the owner dpkg names.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use trawl_inventory::{Inventory, Package, PackageKind};
use trawl_layers::{Limits, MergedFs, read_layer, read_rootfs};

/// The built test data (`target/lang-artifacts`, or `$TRAWL_LANG_ARTIFACTS`),
/// built on first use.
fn artifacts() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let dir = std::env::var_os("TRAWL_LANG_ARTIFACTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/lang-artifacts"));
        let status = Command::new("bash")
            .arg(root.join("scripts/lang-artifacts/build-packages.sh"))
            .arg(&dir)
            .status()
            .expect("run scripts/lang-artifacts/build-packages.sh");
        assert!(
            status.success(),
            "building the language test data failed: {status}"
        );
        dir
    })
}

/// The rootfs through the crate's own selection (globs) and `catalog`, as a
/// `dir:` scan reads it.
fn scan(root: &Path) -> (MergedFs, Inventory) {
    let fs = read_rootfs(root, &trawl_inventory::selection(), &Limits::default()).unwrap();
    let inv = trawl_inventory::catalog(&fs);
    (fs, inv)
}

fn inventory() -> &'static Inventory {
    static INV: OnceLock<Inventory> = OnceLock::new();
    INV.get_or_init(|| scan(&artifacts().join("rootfs")).1)
}

/// `name<TAB>version<TAB>path` rows of an expected list, sorted.
fn expected(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(artifacts().join("expected").join(name)).unwrap();
    let mut rows: Vec<String> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    rows.sort();
    rows
}

fn ours(kind: PackageKind, under: &[&str]) -> Vec<String> {
    let mut rows: Vec<String> = inventory()
        .packages
        .iter()
        .filter(|p| p.kind == kind && under.iter().any(|u| p.database.starts_with(u)))
        .map(|p| format!("{}\t{}\t{}", p.name, p.version, p.database))
        .collect();
    rows.sort();
    rows
}

#[test]
fn python_matches_importlib_metadata() {
    let ours = ours(PackageKind::Pypi, &[""]);
    assert_eq!(ours, expected("python.tsv"));
    assert!(ours.len() >= 30, "{}", ours.len());
    let by_path = |suffix: &str| -> &Package {
        inventory()
            .packages
            .iter()
            .find(|p| p.database.ends_with(suffix))
            .unwrap()
    };
    let zope = by_path("zope.interface-6.0.dist-info/METADATA");
    assert_eq!(zope.purl, "pkg:pypi/zope-interface@6.0");
    assert_eq!(zope.found_by.as_deref(), Some("dist-info"));
    let legacy = by_path("Hello_World.Legacy-1.0.post1.egg-info");
    assert_eq!(legacy.purl, "pkg:pypi/hello-world-legacy@1.0.post1");
    assert_eq!(legacy.found_by.as_deref(), Some("egg-info"));
    let distro_info = by_path("distro_info-1.5+deb12u1.egg-info/PKG-INFO");
    assert_eq!(distro_info.purl, "pkg:pypi/distro-info@1.5%2Bdeb12u1");
}

#[test]
fn npm_matches_npm_ls_and_pnpm_ls() {
    assert_eq!(ours(PackageKind::Npm, &["app/"]), expected("npm.tsv"));
    assert_eq!(ours(PackageKind::Npm, &["srv/pnpm/"]), expected("pnpm.tsv"));
    let nested = ours(PackageKind::Npm, &["app/node_modules/debug/node_modules/"]);
    assert_eq!(
        nested,
        ["ms\t2.0.0\tapp/node_modules/debug/node_modules/ms/package.json"]
    );
    let scoped = inventory()
        .packages
        .iter()
        .find(|p| p.database == "app/node_modules/@babel/code-frame/package.json")
        .unwrap();
    assert_eq!(scoped.purl, "pkg:npm/%40babel/code-frame@7.22.13");
    // Files inside packages that are not package roots are not packages.
    assert!(
        inventory()
            .warnings
            .iter()
            .all(|w| !w.to_string().contains("node_modules")),
        "{:?}",
        inventory().warnings
    );
}

#[test]
fn gems_match_rubygems() {
    let ours = ours(PackageKind::Gem, &[""]);
    assert_eq!(ours, expected("gem.tsv"));
    assert!(ours.iter().any(|r| r.contains("/specifications/default/")));
    assert!(
        ours.iter()
            .any(|r| r.contains("usr/local/bundle/specifications/rack-"))
    );
}

#[test]
fn composer_matches_composer_show() {
    assert_eq!(ours(PackageKind::Composer, &[""]), expected("composer.tsv"));
    let console = inventory()
        .packages
        .iter()
        .find(|p| p.name == "symfony/console")
        .unwrap();
    assert!(console.version.starts_with('v'), "{}", console.version);
    assert_eq!(
        console.purl,
        format!("pkg:composer/symfony/console@{}", console.version)
    );
}

#[test]
fn dotnet_matches_deps_json_libraries() {
    assert_eq!(ours(PackageKind::Nuget, &[""]), expected("dotnet.tsv"));
}

#[test]
fn os_owned_metadata_files_carry_their_dpkg_package() {
    let owners: BTreeMap<String, String> = expected("owners.tsv")
        .into_iter()
        .map(|l| {
            let (path, owner) = l.split_once('\t').unwrap();
            (path.to_string(), owner.to_string())
        })
        .collect();
    assert!(owners.values().any(|o| o == "python3-urllib3"));
    let mut checked = HashSet::new();
    for p in &inventory().packages {
        assert_eq!(
            p.owned_by.as_deref(),
            owners.get(&p.database).map(String::as_str),
            "{}",
            p.database
        );
        checked.insert(p.database.clone());
    }
    assert!(owners.keys().all(|k| checked.contains(k)));
    let urllib3 = inventory()
        .packages
        .iter()
        .find(|p| p.name == "urllib3" && p.version == "1.26.12")
        .unwrap();
    assert_eq!(urllib3.owned_by.as_deref(), Some("python3-urllib3"));
}

#[test]
fn no_warnings_on_real_data() {
    assert_eq!(inventory().warnings, vec![]);
}

/// A tar layer of `(path, contents)` files, symlinks `(path, None, target)`.
fn layer(files: &[(&str, &[u8])], links: &[(&str, &str)], whiteouts: &[&str]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, path, *data).unwrap();
    }
    for (path, target) in links {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        tar.append_link(&mut h, path, target).unwrap();
    }
    for path in whiteouts {
        let (dir, name) = path.rsplit_once('/').unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_cksum();
        tar.append_data(&mut h, format!("{dir}/.wh.{name}"), &b""[..])
            .unwrap();
    }
    tar.into_inner().unwrap()
}

#[test]
fn layers_attribute_and_usrmerge_resolves_dpkg_paths() {
    let root = artifacts().join("rootfs");
    let read = |p: &str| std::fs::read(root.join(p)).unwrap();
    let urllib3 = "usr/lib/python3/dist-packages/urllib3-1.26.12.egg-info/PKG-INFO";
    let ms = "app/node_modules/ms/package.json";
    let debug = "app/node_modules/debug/package.json";
    // dpkg's list as a merged-/usr system has it: the file under /lib, which
    // is a link to usr/lib.
    let list = read("var/lib/dpkg/info/python3-urllib3.list");
    let list = String::from_utf8(list)
        .unwrap()
        .replace("/usr/lib/python3/", "/lib/python3/");
    let (urllib3_data, ms_data, debug_data) = (read(urllib3), read(ms), read(debug));
    let base = layer(
        &[
            (urllib3, &urllib3_data),
            ("var/lib/dpkg/info/python3-urllib3.list", list.as_bytes()),
            (ms, &ms_data),
            (debug, &debug_data),
        ],
        &[("lib", "usr/lib")],
        &[],
    );
    // The app layer rewrites ms's package.json unchanged and deletes debug.
    let app = layer(&[(ms, &ms_data)], &[], &["app/node_modules/debug"]);
    let sel = trawl_inventory::selection();
    let limits = Limits::default();
    let fs = MergedFs::from_layers(vec![
        (
            "sha256:base".into(),
            read_layer("sha256:base", &base[..], &sel, &limits).unwrap(),
        ),
        (
            "sha256:app".into(),
            read_layer("sha256:app", &app[..], &sel, &limits).unwrap(),
        ),
    ]);
    let inv = trawl_inventory::catalog(&fs);
    let got: Vec<(&str, Option<&str>, Option<&str>)> = inv
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.layer.as_deref(), p.owned_by.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("urllib3", Some("sha256:base"), Some("python3-urllib3")),
            ("ms", Some("sha256:base"), None),
        ]
    );
}
