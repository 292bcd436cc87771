//! OS package file lists, the source of language packages' `owned_by`: rpm
//! header file lists of the real databases in the shared fixtures equal
//! `rpm -qa --qf '[%{=NAME} %{FILENAMES}]'` (SQLite, Berkeley DB; NDB, which
//! Debian's rpm cannot read, is read cleanly); ownership lookups through the
//! merged view name a package rpm lists the file for, also through a
//! `/lib -> usr/lib` link; apk's installed database owns its records' files.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use trawl_inventory::ownership::FileOwners;
use trawl_inventory::rpm::header::visit_files;
use trawl_inventory::rpm::{RpmDbKind, RpmHeader};
use trawl_layers::{Limits, MergedFs, Selection, read_layer};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/rpm")
}

/// One `name<TAB>path` line per file of each package.
const RPM_FILES: &[&str] = &["-qa", "--qf", "[%{=NAME}\\t%{FILENAMES}\\n]"];

/// The databases Debian's rpm can read (it has no NDB backend).
const DATABASES: [(&str, &str, RpmDbKind, &str); 2] = [
    (
        "cbl-mariner-2.0",
        "rpmdb.sqlite",
        RpmDbKind::Sqlite,
        "sqlite",
    ),
    ("libuuid-bdb", "Packages", RpmDbKind::BerkeleyDb, "bdb_ro"),
];

/// SUSE's NDB database, which only the crate's own reader (checked against
/// go-rpmdb's expectations in rpm_fixtures.rs) reads here.
#[test]
fn ndb_file_lists_read_cleanly() {
    let data = std::fs::read(fixtures().join("sle15-bci/Packages.db")).unwrap();
    let rows = ours(RpmDbKind::Ndb, &data);
    assert!(rows.len() > 1000, "{}", rows.len());
    assert!(
        rows.iter()
            .any(|r| r.starts_with("bash\t") && r.ends_with("/bin/bash"))
    );
    assert!(rows.iter().all(|r| r.contains("\t/")));
}

/// Every blob of a database, through the crate's own readers.
fn ours(kind: RpmDbKind, data: &[u8]) -> Vec<String> {
    let mut rows = Vec::new();
    let blobs: Vec<Vec<u8>> = match kind {
        RpmDbKind::Sqlite => trawl_inventory::rpm::read_sqlite(data)
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect(),
        RpmDbKind::Ndb => trawl_inventory::rpm::read_ndb(data)
            .unwrap()
            .into_iter()
            .map(|b| b.unwrap().data.to_vec())
            .collect(),
        RpmDbKind::BerkeleyDb => trawl_inventory::rpm::BdbHash::open(data)
            .unwrap()
            .pairs()
            .into_iter()
            .map(Result::unwrap)
            .filter(|(k, _)| !k.iter().all(|&b| b == 0))
            .map(|(_, v)| v.to_vec())
            .collect(),
    };
    for blob in blobs {
        let name = RpmHeader::parse(&blob).unwrap().name;
        visit_files(&blob, |dir, base| {
            rows.push(format!(
                "{name}\t{}{}",
                String::from_utf8_lossy(dir),
                String::from_utf8_lossy(base)
            ))
        })
        .unwrap();
    }
    rows.sort();
    rows
}

fn rpm_query(dir: &str, file: &str, backend: &str, args: &[&str]) -> Option<String> {
    let dbpath = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures().join(dir).join(file), dbpath.path().join(file)).unwrap();
    let out = Command::new("rpm")
        .arg("--dbpath")
        .arg(dbpath.path())
        .args(["--define", &format!("_db_backend {backend}")])
        .args(args)
        .output()
        .ok()?;
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn file_lists_match_rpm() {
    for (dir, file, kind, backend) in DATABASES {
        let data = std::fs::read(fixtures().join(dir).join(file)).unwrap();
        let ours = ours(kind, &data);
        let Some(theirs) = rpm_query(dir, file, backend, RPM_FILES) else {
            eprintln!("rpm not installed; skipping the differential half");
            return;
        };
        // rpm prints "(none)" for a package without files.
        let mut theirs: Vec<String> = theirs
            .lines()
            .filter(|l| !l.ends_with("\t(none)"))
            .map(str::to_string)
            .collect();
        theirs.sort();
        assert!(!theirs.is_empty(), "{dir}");
        assert_eq!(ours.len(), theirs.len(), "{dir}");
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(a, b, "{dir}");
        }
    }
}

#[test]
fn owners_are_packages_rpm_lists_the_file_for() {
    let (dir, file, _, backend) = DATABASES[0];
    let data = std::fs::read(fixtures().join(dir).join(file)).unwrap();
    let Some(listing) = rpm_query(dir, file, backend, RPM_FILES) else {
        eprintln!("rpm not installed; skipping");
        return;
    };
    let mut listed: HashMap<String, HashSet<String>> = HashMap::new();
    for line in listing.lines().filter(|l| !l.ends_with("\t(none)")) {
        let (name, path) = line.split_once('\t').unwrap();
        listed
            .entry(path.to_string())
            .or_default()
            .insert(name.to_string());
    }
    // An image with the database and a /lib -> usr/lib link (merged /usr).
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "var/lib/rpm/rpmdb.sqlite", &data[..])
        .unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    tar.append_link(&mut h, "lib", "usr/lib").unwrap();
    let blob = tar.into_inner().unwrap();
    let sel = Selection::new()
        .with_path("var/lib/rpm/rpmdb.sqlite")
        .with_path("lib/x");
    let changes = read_layer("l", &blob[..], &sel, &Limits::default()).unwrap();
    let fs = MergedFs::from_layers(vec![("l".into(), changes)]);

    let mut paths: Vec<&String> = listed.keys().collect();
    paths.sort();
    let wanted: Vec<&str> = paths.iter().step_by(7).map(|p| p.as_str()).collect();
    let owners = FileOwners::find(&fs, wanted.iter().copied());
    let mut by_place: HashMap<String, HashSet<&str>> = HashMap::new();
    for (path, names) in &listed {
        let place = by_place.entry(fs.resolve(path).unwrap()).or_default();
        place.extend(names.iter().map(String::as_str));
    }
    for path in &wanted {
        let resolved = fs.resolve(path).unwrap();
        let owner = owners
            .owner(&resolved)
            .unwrap_or_else(|| panic!("{path}: no owner"));
        // Any package listing the file under a name that resolves to it.
        assert!(by_place[&resolved].contains(owner), "{path}: {owner}");
    }
    // util-linux-devel lists /lib/libuuid.so.1; in the image that is
    // usr/lib/libuuid.so.1.
    let owners = FileOwners::find(&fs, ["usr/lib/libuuid.so.1"]);
    assert_eq!(
        owners.owner("usr/lib/libuuid.so.1"),
        Some("util-linux-devel")
    );
    assert!(wanted.len() > 100, "{}", wanted.len());
}

/// apk's installed database of a real Alpine 3.16 image: files are owned by
/// the record that lists them (`lib/libc.musl-x86_64.so.1` is musl's).
#[test]
fn apk_owners_from_a_real_installed_database() {
    let db = std::fs::read(fixtures().join("../apk/alpine-3.16/installed")).unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(db.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "lib/apk/db/installed", &db[..])
        .unwrap();
    let blob = tar.into_inner().unwrap();
    let sel = Selection::new().with_path("lib/apk/db/installed");
    let changes = read_layer("l", &blob[..], &sel, &Limits::default()).unwrap();
    let fs = MergedFs::from_layers(vec![("l".into(), changes)]);
    let wanted = [
        "lib/libc.musl-x86_64.so.1",
        "/lib/ld-musl-x86_64.so.1",
        "etc/not-owned",
    ];
    let owners = FileOwners::find(&fs, wanted);
    assert_eq!(owners.owner("lib/libc.musl-x86_64.so.1"), Some("musl"));
    assert_eq!(owners.owner("lib/ld-musl-x86_64.so.1"), Some("musl"));
    assert_eq!(owners.owner("etc/not-owned"), None);
    assert_eq!(owners.len(), 2);
}
