//! The rpm cataloger against the shared real-world rpm databases (each
//! fixture's `expected.tsv` was printed by the distribution's own `rpm -qa`),
//! against Berkeley DB files written by the real Berkeley DB tools
//! (`scripts/gen-rpm-bdb.sh`), and against Debian's `rpm` reading those.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use trawl_inventory::rpm::{RpmDbKind, RpmHeader, read_packages};
use trawl_inventory::{InventoryWarning, PackageKind, catalog, selection};
use trawl_layers::{Limits, read_rootfs};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/rpm")
}

/// The `expected.tsv` rows (name, epoch, version, release, arch, sourcerpm,
/// modularitylabel), header comment dropped.
fn expected(fixture: &str) -> Vec<String> {
    std::fs::read_to_string(fixtures().join(fixture).join("expected.tsv"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn row(h: &RpmHeader) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
        h.name,
        h.epoch.map(|e| e.to_string()).unwrap_or_default(),
        h.version,
        h.release,
        h.arch.as_deref().unwrap_or(""),
        h.source_rpm.as_deref().unwrap_or(""),
        h.modularity_label.as_deref().unwrap_or("")
    )
}

fn rows(kind: RpmDbKind, data: &[u8]) -> Vec<String> {
    read_packages(kind, data)
        .unwrap()
        .into_iter()
        .map(|h| row(&h.unwrap()))
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn check_fixture(fixture: &str, file: &str, kind: RpmDbKind, count: usize) {
    let data = std::fs::read(fixtures().join(fixture).join(file)).unwrap();
    let ours = rows(kind, &data);
    let theirs = expected(fixture);
    assert_eq!(theirs.len(), count);
    // rpm -qa's order depends on its backend's iteration; the lists, sorted,
    // must be identical line for line.
    assert_eq!(sorted(ours), sorted(theirs));
}

#[test]
fn sqlite_cbl_mariner_matches_rpm_qa() {
    check_fixture("cbl-mariner-2.0", "rpmdb.sqlite", RpmDbKind::Sqlite, 129);
}

/// The shared `sle15-bci/Packages.db` (35 packages) against the list
/// go-rpmdb's own test expects for that exact file.
#[test]
fn ndb_sle15_matches_rpm_qa() {
    check_fixture("sle15-bci", "Packages.db", RpmDbKind::Ndb, 35);
}

#[test]
fn bdb_rhel8_matches_rpm_qa() {
    check_fixture("libuuid-bdb", "Packages", RpmDbKind::BerkeleyDb, 1);
}

/// A rootfs with the database at `usr/lib/sysimage/rpm/FILE` and
/// `var/lib/rpm` a symlink to it, as Fedora and SUSE lay it out.
fn rootfs_with(fixture: &str, file: &str, os_release: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let db_dir = root.path().join("usr/lib/sysimage/rpm");
    std::fs::create_dir_all(&db_dir).unwrap();
    std::fs::copy(fixtures().join(fixture).join(file), db_dir.join(file)).unwrap();
    std::fs::create_dir_all(root.path().join("var/lib")).unwrap();
    std::os::unix::fs::symlink(
        "../../usr/lib/sysimage/rpm",
        root.path().join("var/lib/rpm"),
    )
    .unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(root.path().join("etc/os-release"), os_release).unwrap();
    root
}

#[test]
fn whole_pipeline_on_a_rootfs_with_the_fedora_layout() {
    let root = rootfs_with(
        "cbl-mariner-2.0",
        "rpmdb.sqlite",
        "ID=mariner\nVERSION_ID=\"2.0\"\n",
    );
    let fs = read_rootfs(root.path(), &selection(), &Limits::default()).unwrap();
    let inv = catalog(&fs);
    assert_eq!(inv.databases, ["usr/lib/sysimage/rpm/rpmdb.sqlite"]);
    assert_eq!(inv.warnings, Vec::<InventoryWarning>::new());
    assert_eq!(inv.packages.len(), 129);
    assert!(inv.packages.iter().all(|p| p.kind == PackageKind::Rpm));
    let ca = inv
        .packages
        .iter()
        .find(|p| p.name == "ca-certificates-base")
        .unwrap();
    assert_eq!(
        (
            ca.version.as_str(),
            ca.epoch,
            ca.release.as_deref(),
            ca.arch.as_deref(),
            ca.source_name.as_str(),
            ca.source_version.as_str(),
            ca.purl.as_str(),
            ca.layer.as_deref(),
            ca.database.as_str(),
        ),
        (
            "1:2.0.0-1.cm2",
            Some(1),
            Some("1.cm2"),
            Some("noarch"),
            "ca-certificates",
            "1:2.0.0-1.cm2",
            "pkg:rpm/mariner/ca-certificates-base@2.0.0-1.cm2?arch=noarch&distro=mariner-2.0&epoch=1",
            None,
            "usr/lib/sysimage/rpm/rpmdb.sqlite",
        )
    );
    let bash = inv.packages.iter().find(|p| p.name == "bash").unwrap();
    assert_eq!(
        (bash.version.as_str(), bash.epoch, bash.source_name.as_str()),
        ("5.1.8-1.cm2", None, "bash")
    );
    assert!(bash.license.is_some() && bash.vendor.is_some(), "{bash:?}");
    // Every package matches rpm -qa, field for field, through the pipeline too.
    let ours: Vec<String> = inv
        .packages
        .iter()
        .map(|p| {
            let srpm = format!(
                "{}-{}.src.rpm",
                p.source_name,
                p.source_version
                    .split_once(':')
                    .map_or(p.source_version.as_str(), |(_, v)| v)
            );
            format!(
                "{}\t{}\t{}\t{}\t{}\t{srpm}\t",
                p.name,
                p.epoch.map(|e| e.to_string()).unwrap_or_default(),
                p.version
                    .split_once(':')
                    .map_or(p.version.as_str(), |(_, v)| v)
                    .rsplit_once('-')
                    .unwrap()
                    .0,
                p.release.as_deref().unwrap(),
                p.arch.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(sorted(ours), sorted(expected("cbl-mariner-2.0")));
}

#[test]
fn ndb_through_the_var_lib_rpm_symlink() {
    let root = rootfs_with(
        "sle15-bci",
        "Packages.db",
        "ID=\"sles\"\nVERSION_ID=\"15.3\"\n",
    );
    let fs = read_rootfs(root.path(), &selection(), &Limits::default()).unwrap();
    let inv = catalog(&fs);
    assert_eq!(inv.packages.len(), 35);
    assert_eq!(inv.databases, ["usr/lib/sysimage/rpm/Packages.db"]);
    assert_eq!(inv.warnings, Vec::<InventoryWarning>::new());
    let bash = inv.packages.iter().find(|p| p.name == "bash").unwrap();
    assert_eq!(
        bash.purl,
        "pkg:rpm/sles/bash@4.4-19.6.1?arch=x86_64&distro=sles-15.3"
    );
}

/// The generated Berkeley DB databases, built once per test run.
struct Generated {
    dir: PathBuf,
    records: usize,
}

fn generated() -> &'static Generated {
    static GENERATED: OnceLock<Generated> = OnceLock::new();
    GENERATED.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rpm-bdb");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/gen-rpm-bdb.sh");
        let status = Command::new("sh")
            .arg(&script)
            .arg(&dir)
            .arg("8")
            .status()
            .expect("run scripts/gen-rpm-bdb.sh");
        assert!(
            status.success(),
            "scripts/gen-rpm-bdb.sh failed (needs db5.3-util and python3)"
        );
        let records = std::fs::read_to_string(dir.join("manifest.txt"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        Generated { dir, records }
    })
}

#[test]
fn generated_bdb_with_overflow_pages_in_both_byte_orders() {
    let g = generated();
    assert_eq!(g.records, 8 * 129);
    let sqlite = std::fs::read(fixtures().join("cbl-mariner-2.0/rpmdb.sqlite")).unwrap();
    let once = rows(RpmDbKind::Sqlite, &sqlite);
    let mut want: Vec<String> = (0..8).flat_map(|_| once.clone()).collect();
    want.sort();
    for (variant, big_endian) in [("le", false), ("be", true), ("le-chksum", false)] {
        let data = std::fs::read(g.dir.join(variant).join("Packages")).unwrap();
        let db = trawl_inventory::rpm::BdbHash::open(&data).unwrap();
        assert_eq!(db.is_big_endian(), big_endian, "{variant}");
        assert_eq!(db.page_size(), 4096);
        assert!(
            data.len() > g.records * 4096,
            "{variant}: values must span overflow pages"
        );
        assert_eq!(
            sorted(rows(RpmDbKind::BerkeleyDb, &data)),
            want,
            "{variant}"
        );
    }
}

#[test]
fn generated_bdb_matches_debian_rpm() {
    let g = generated();
    // rpm's read-only Berkeley DB backend reads the file without libdb; give it
    // a private copy so nothing is ever written next to the generated file.
    let dbpath = tempfile::tempdir().unwrap();
    std::fs::copy(g.dir.join("le/Packages"), dbpath.path().join("Packages")).unwrap();
    let Ok(out) = Command::new("rpm")
        .arg("--dbpath")
        .arg(dbpath.path())
        .args(["--define", "_db_backend bdb_ro", "-qa", "--qf"])
        .arg("%{NAME}\\t%|EPOCH?{%{EPOCH}}:{}|\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\t%|MODULARITYLABEL?{%{MODULARITYLABEL}}:{}|\\n")
        .output()
    else {
        eprintln!("rpm not installed (apt-get install rpm); skipping the differential test");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(theirs.len(), g.records);
    let data = std::fs::read(g.dir.join("le/Packages")).unwrap();
    // Same bucket walk, same order: compare unsorted.
    assert_eq!(rows(RpmDbKind::BerkeleyDb, &data), theirs);
}

fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, path, *data).unwrap();
    }
    tar.into_inner().unwrap()
}

#[test]
fn each_package_is_attributed_to_the_layer_that_installed_it() {
    let full = std::fs::read(fixtures().join("cbl-mariner-2.0/rpmdb.sqlite")).unwrap();
    // The base layer's database: the same one without bash, written by SQLite.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rpmdb.sqlite");
    std::fs::write(&path, &full).unwrap();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let bash: i64 = {
            let mut stmt = conn.prepare("SELECT hnum, blob FROM Packages").unwrap();
            let mut rows = stmt.query([]).unwrap();
            let mut found = None;
            while let Some(row) = rows.next().unwrap() {
                let blob: Vec<u8> = row.get(1).unwrap();
                if RpmHeader::parse(&blob).unwrap().name == "bash" {
                    found = Some(row.get(0).unwrap());
                }
            }
            found.unwrap()
        };
        // rpm's index tables reference Packages; only Packages matters here.
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        conn.execute("DELETE FROM Packages WHERE hnum = ?1", [bash])
            .unwrap();
    }
    let without_bash = std::fs::read(&path).unwrap();
    let sel = selection();
    let layers = [
        (
            "sha256:base",
            layer(&[("var/lib/rpm/rpmdb.sqlite", &without_bash)]),
        ),
        ("sha256:bash", layer(&[("var/lib/rpm/rpmdb.sqlite", &full)])),
    ];
    let fs = trawl_layers::MergedFs::from_layers(
        layers
            .iter()
            .map(|(id, blob)| {
                let changes =
                    trawl_layers::read_layer(id, &blob[..], &sel, &Limits::default()).unwrap();
                (id.to_string(), changes)
            })
            .collect(),
    );
    let inv = catalog(&fs);
    assert_eq!(inv.packages.len(), 129);
    for p in &inv.packages {
        let want = if p.name == "bash" {
            "sha256:bash"
        } else {
            "sha256:base"
        };
        assert_eq!(p.layer.as_deref(), Some(want), "{}", p.name);
    }
}
