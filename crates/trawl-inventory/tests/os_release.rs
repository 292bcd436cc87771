//! OS detection on every os-release fixture directory (real files from 20+
//! distributions, some with only legacy release files), and on legacy files
//! of the distributions the fixtures lack, written as those distributions
//! ship them.

use std::path::{Path, PathBuf};

use trawl_inventory::os::Distro;
use trawl_inventory::{OsRelease, catalog, selection};
use trawl_layers::{Limits, read_rootfs};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/os-release")
}

fn detect_dir(root: &Path) -> Option<OsRelease> {
    let fs = read_rootfs(root, &selection(), &Limits::default()).unwrap();
    catalog(&fs).os
}

/// What detection and the feed mapping give for one image.
#[derive(Debug, PartialEq, Eq)]
struct Detected {
    id: String,
    version_id: Option<String>,
    source_file: String,
    distro: Option<Distro>,
    release_key: Option<String>,
    osv_ecosystem: Option<String>,
}

fn detected(os: &OsRelease) -> Detected {
    Detected {
        id: os.id.clone(),
        version_id: os.version_id.clone(),
        source_file: os.source_file.clone(),
        distro: os.distro(),
        release_key: os.release_key(),
        osv_ecosystem: os.osv_ecosystem(),
    }
}

/// (fixture or case name, id, version_id, source file, distro, release key, OSV ecosystem)
type Row = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    Option<Distro>,
    Option<&'static str>,
    Option<&'static str>,
);

fn expected(row: &Row) -> Detected {
    Detected {
        id: row.1.into(),
        version_id: row.2.map(Into::into),
        source_file: row.3.into(),
        distro: row.4,
        release_key: row.5.map(Into::into),
        osv_ecosystem: row.6.map(Into::into),
    }
}

const ETC: &str = "etc/os-release";
const USR: &str = "usr/lib/os-release";

#[test]
fn every_fixture_directory() {
    use Distro::*;
    let rows: &[Row] = &[
        (
            "almalinux/from-os-release",
            "almalinux",
            Some("8.4"),
            ETC,
            Some(AlmaLinux),
            Some("8"),
            Some("AlmaLinux:8"),
        ),
        (
            "almalinux/from-redhat-release",
            "almalinux",
            Some("8.10"),
            "etc/redhat-release",
            Some(AlmaLinux),
            Some("8"),
            Some("AlmaLinux:8"),
        ),
        (
            "alpine",
            "alpine",
            Some("3.11.6"),
            ETC,
            Some(Alpine),
            Some("v3.11"),
            Some("Alpine:v3.11"),
        ),
        (
            "amazon",
            "amzn",
            Some("2"),
            ETC,
            Some(AmazonLinux),
            Some("2"),
            None,
        ),
        ("arch", "arch", None, ETC, None, None, None),
        (
            "centos",
            "centos",
            Some("8"),
            USR,
            Some(CentOs),
            Some("8"),
            None,
        ),
        (
            "centos5",
            "centos",
            Some("5.7"),
            "etc/redhat-release",
            Some(CentOs),
            Some("5"),
            None,
        ),
        (
            "centos6",
            "centos",
            Some("6"),
            "etc/system-release-cpe",
            Some(CentOs),
            Some("6"),
            None,
        ),
        // os-release is authoritative even when its fields disagree with each other.
        (
            "custom",
            "scientific",
            Some("8"),
            ETC,
            Some(ScientificLinux),
            Some("8"),
            None,
        ),
        (
            "debian/from-debian_version",
            "debian",
            Some("10"),
            ETC,
            Some(Debian),
            Some("10"),
            Some("Debian:10"),
        ),
        (
            "debian/from-os-release",
            "debian",
            Some("8"),
            USR,
            Some(Debian),
            Some("8"),
            Some("Debian:8"),
        ),
        (
            "debian/with-point-release",
            "debian",
            Some("13"),
            ETC,
            Some(Debian),
            Some("13"),
            Some("Debian:13"),
        ),
        (
            "fedora",
            "fedora",
            Some("36"),
            USR,
            Some(Fedora),
            Some("36"),
            None,
        ),
        (
            "mariner",
            "mariner",
            Some("1.0"),
            ETC,
            Some(Mariner),
            Some("1.0"),
            None,
        ),
        (
            "opensuse-leap",
            "opensuse-leap",
            Some("15.2"),
            ETC,
            Some(OpenSuseLeap),
            Some("15.2"),
            Some("openSUSE:openSUSE Leap 15.2"),
        ),
        (
            "oraclelinux",
            "ol",
            Some("8.3"),
            ETC,
            Some(OracleLinux),
            Some("8"),
            None,
        ),
        (
            "photon",
            "photon",
            Some("2.0"),
            ETC,
            Some(Photon),
            Some("2.0"),
            Some("Photon OS:2.0"),
        ),
        (
            "redhat/from-os-release",
            "rhel",
            Some("7.3"),
            USR,
            Some(Rhel),
            Some("7"),
            None,
        ),
        (
            "redhat/from-redhat-release",
            "rhel",
            Some("8.10"),
            "etc/redhat-release",
            Some(Rhel),
            Some("8"),
            None,
        ),
        (
            "rockylinux/from-os-release",
            "rocky",
            Some("8.4"),
            ETC,
            Some(Rocky),
            Some("8"),
            Some("Rocky Linux:8"),
        ),
        (
            "rockylinux/from-redhat-release",
            "rocky",
            Some("8.10"),
            "etc/redhat-release",
            Some(Rocky),
            Some("8"),
            Some("Rocky Linux:8"),
        ),
        (
            "scientific/from-os-release",
            "scientific",
            Some("7.5"),
            ETC,
            Some(ScientificLinux),
            Some("7"),
            None,
        ),
        (
            "scientific/from-redhat-release",
            "scientific",
            Some("7.9"),
            "etc/redhat-release",
            Some(ScientificLinux),
            Some("7"),
            None,
        ),
        (
            "sles",
            "sles",
            Some("15.2"),
            ETC,
            Some(Sles),
            Some("15.2"),
            Some("SUSE:SUSE Linux Enterprise Server 15 SP2"),
        ),
        (
            "ubuntu",
            "ubuntu",
            Some("20.04"),
            ETC,
            Some(Ubuntu),
            Some("20.04"),
            Some("Ubuntu:20.04:LTS"),
        ),
        (
            "wolfi",
            "wolfi",
            Some("20220914"),
            ETC,
            Some(Wolfi),
            None,
            Some("Wolfi"),
        ),
    ];
    let mut seen = Vec::new();
    for row in rows {
        let os = detect_dir(&fixtures().join(row.0)).unwrap_or_else(|| panic!("{}: no OS", row.0));
        assert_eq!(detected(&os), expected(row), "{}", row.0);
        seen.push(row.0);
    }
    // A scratch-like busybox image and an empty os-release identify nothing:
    // busybox is a userland, not a distribution (see the os module docs).
    for dir in ["busybox", "empty"] {
        assert_eq!(detect_dir(&fixtures().join(dir)), None, "{dir}");
        seen.push(dir);
    }
    // Every fixture directory is covered: a new one fails here until added above.
    let mut on_disk = Vec::new();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        let subdirs: Vec<String> = std::fs::read_dir(entry.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("from-") || n == "with-point-release")
            .collect();
        if subdirs.is_empty() {
            on_disk.push(name);
        } else {
            on_disk.extend(subdirs.into_iter().map(|s| format!("{name}/{s}")));
        }
    }
    on_disk.sort();
    seen.sort();
    assert_eq!(on_disk, seen);
}

/// A root file system holding `files`.
fn rootfs(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, data) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    dir
}

#[test]
fn distributions_and_legacy_files_without_fixtures() {
    use Distro::*;
    let cases: &[(&[(&str, &str)], Row)] = &[
        (
            &[(
                ETC,
                "ID=chainguard\nNAME=\"Chainguard\"\nPRETTY_NAME=\"Chainguard\"\nVERSION_ID=\"20230214\"\n",
            )],
            (
                "chainguard",
                "chainguard",
                Some("20230214"),
                ETC,
                Some(Chainguard),
                None,
                Some("Chainguard"),
            ),
        ),
        (
            &[(
                ETC,
                "NAME=\"Amazon Linux\"\nVERSION=\"2023\"\nID=\"amzn\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"2023\"\nPLATFORM_ID=\"platform:al2023\"\nPRETTY_NAME=\"Amazon Linux 2023\"\n",
            )],
            (
                "amazon 2023",
                "amzn",
                Some("2023"),
                ETC,
                Some(AmazonLinux),
                Some("2023"),
                None,
            ),
        ),
        (
            &[(
                ETC,
                "NAME=\"Amazon Linux AMI\"\nVERSION=\"2018.03\"\nID=\"amzn\"\nID_LIKE=\"rhel fedora\"\nVERSION_ID=\"2018.03\"\nPRETTY_NAME=\"Amazon Linux AMI 2018.03\"\n",
            )],
            (
                "amazon 1",
                "amzn",
                Some("2018.03"),
                ETC,
                Some(AmazonLinux),
                Some("1"),
                None,
            ),
        ),
        (
            &[("etc/system-release", "Amazon Linux AMI release 2018.03\n")],
            (
                "amazon 1 system-release",
                "amzn",
                Some("2018.03"),
                "etc/system-release",
                Some(AmazonLinux),
                Some("1"),
                None,
            ),
        ),
        (
            &[(
                ETC,
                "NAME=\"Common Base Linux Mariner\"\nVERSION=\"2.0.20240123\"\nID=mariner\nVERSION_ID=\"2.0\"\nPRETTY_NAME=\"CBL-Mariner/Linux\"\n",
            )],
            (
                "mariner 2",
                "mariner",
                Some("2.0"),
                ETC,
                Some(Mariner),
                Some("2.0"),
                None,
            ),
        ),
        (
            &[(
                ETC,
                "NAME=\"Microsoft Azure Linux\"\nVERSION=\"3.0.20240824\"\nID=azurelinux\nVERSION_ID=\"3.0\"\nPRETTY_NAME=\"Microsoft Azure Linux 3.0\"\n",
            )],
            (
                "azure linux 3",
                "azurelinux",
                Some("3.0"),
                ETC,
                Some(AzureLinux),
                Some("3.0"),
                Some("Azure Linux:3"),
            ),
        ),
        (
            &[(
                ETC,
                "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"9.3 (Plow)\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.3\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 9.3 (Plow)\"\n",
            )],
            (
                "ubi 9",
                "rhel",
                Some("9.3"),
                ETC,
                Some(Rhel),
                Some("9"),
                None,
            ),
        ),
        (
            &[(
                ETC,
                "NAME=\"openSUSE Tumbleweed\"\nID=\"opensuse-tumbleweed\"\nID_LIKE=\"opensuse suse\"\nVERSION_ID=\"20240101\"\nPRETTY_NAME=\"openSUSE Tumbleweed\"\n",
            )],
            (
                "tumbleweed",
                "opensuse-tumbleweed",
                Some("20240101"),
                ETC,
                Some(OpenSuseTumbleweed),
                None,
                Some("openSUSE:openSUSE Tumbleweed"),
            ),
        ),
        (
            &[(
                ETC,
                "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.21.0_alpha20240807\nPRETTY_NAME=\"Alpine Linux edge\"\n",
            )],
            (
                "alpine edge",
                "alpine",
                Some("3.21.0_alpha20240807"),
                ETC,
                Some(Alpine),
                Some("edge"),
                Some("Alpine:edge"),
            ),
        ),
        (
            &[(
                ETC,
                "PRETTY_NAME=\"Ubuntu 23.10\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"23.10\"\nID=ubuntu\nID_LIKE=debian\n",
            )],
            (
                "ubuntu 23.10",
                "ubuntu",
                Some("23.10"),
                ETC,
                Some(Ubuntu),
                Some("23.10"),
                Some("Ubuntu:23.10"),
            ),
        ),
        (
            &[("etc/alpine-release", "3.4.6\n")],
            (
                "alpine-release",
                "alpine",
                Some("3.4.6"),
                "etc/alpine-release",
                Some(Alpine),
                Some("v3.4"),
                Some("Alpine:v3.4"),
            ),
        ),
        (
            &[
                (
                    "etc/lsb-release",
                    "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=14.04\nDISTRIB_CODENAME=trusty\nDISTRIB_DESCRIPTION=\"Ubuntu 14.04.6 LTS\"\n",
                ),
                ("etc/debian_version", "jessie/sid\n"),
            ],
            (
                "lsb-release",
                "ubuntu",
                Some("14.04"),
                "etc/lsb-release",
                Some(Ubuntu),
                Some("14.04"),
                Some("Ubuntu:14.04:LTS"),
            ),
        ),
        (
            &[
                ("etc/oracle-release", "Oracle Linux Server release 6.10\n"),
                (
                    "etc/redhat-release",
                    "Red Hat Enterprise Linux Server release 6.10 (Santiago)\n",
                ),
            ],
            (
                "oracle-release",
                "ol",
                Some("6.10"),
                "etc/oracle-release",
                Some(OracleLinux),
                Some("6"),
                None,
            ),
        ),
        (
            &[
                (
                    "etc/centos-release",
                    "CentOS Linux release 7.9.2009 (Core)\n",
                ),
                (
                    "etc/redhat-release",
                    "CentOS Linux release 7.9.2009 (Core)\n",
                ),
            ],
            (
                "centos-release",
                "centos",
                Some("7.9.2009"),
                "etc/centos-release",
                Some(CentOs),
                Some("7"),
                None,
            ),
        ),
        (
            &[(
                "etc/SuSE-release",
                "SUSE Linux Enterprise Server 11 (x86_64)\nVERSION = 11\nPATCHLEVEL = 4\n",
            )],
            (
                "SuSE-release sles",
                "sles",
                Some("11.4"),
                "etc/SuSE-release",
                Some(Sles),
                Some("11.4"),
                Some("SUSE:SUSE Linux Enterprise Server 11 (x86_64)"),
            ),
        ),
        (
            &[(
                "etc/SuSE-release",
                "openSUSE 13.2 (x86_64)\nVERSION = 13.2\nCODENAME = Harlequin\n",
            )],
            (
                "SuSE-release opensuse",
                "opensuse",
                Some("13.2"),
                "etc/SuSE-release",
                Some(OpenSuseLeap),
                Some("13.2"),
                Some("openSUSE:openSUSE 13.2 (x86_64)"),
            ),
        ),
        (
            &[(
                "etc/photon-release",
                "VMware Photon Linux 1.0\nPHOTON_BUILD_NUMBER=62c543d\n",
            )],
            (
                "photon-release",
                "photon",
                Some("1.0"),
                "etc/photon-release",
                Some(Photon),
                Some("1.0"),
                Some("Photon OS:1.0"),
            ),
        ),
        (
            &[(
                "etc/mariner-release",
                "CBL-Mariner 2.0.20220226\nMARINER_BUILD_NUMBER=0d3c2ad\n",
            )],
            (
                "mariner-release",
                "mariner",
                Some("2.0"),
                "etc/mariner-release",
                Some(Mariner),
                Some("2.0"),
                None,
            ),
        ),
        (
            &[("etc/debian_version", "7.11\n")],
            (
                "debian_version",
                "debian",
                Some("7"),
                "etc/debian_version",
                Some(Debian),
                Some("7"),
                Some("Debian:7"),
            ),
        ),
    ];
    for (files, row) in cases {
        let root = rootfs(files);
        let os = detect_dir(root.path()).unwrap_or_else(|| panic!("{}: no OS", row.0));
        assert_eq!(detected(&os), expected(row), "{}", row.0);
    }
    // Nothing recognisable: no OS rather than a guess.
    for files in [
        &[("etc/debian_version", "bookworm/sid\n")][..],
        &[("etc/redhat-release", "\n")][..],
        &[("etc/system-release-cpe", "garbage\n")][..],
        &[("etc/alpine-release", "edge\n")][..],
    ] {
        let root = rootfs(files);
        assert_eq!(detect_dir(root.path()), None, "{files:?}");
    }
}
