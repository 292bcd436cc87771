//! The inventory table: OS packages first, then the language packages grouped
//! by ecosystem, each with the path it was found at and its owning OS
//! package. A `dir:` tree has no layers: its layer column says `-`.

use trawl_advisory::AdvisoryDb;
use trawl_classify::{ImageInfo, Report, write_inventory_table};
use trawl_layers::{Limits, read_rootfs};

mod schema_check;

const FILES: &[(&str, &str)] = &[
    (
        "etc/os-release",
        "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
    ),
    (
        "var/lib/dpkg/status",
        "Package: python3-six\nStatus: install ok installed\nVersion: 1.16.0-4\nArchitecture: all\nSource: six\n",
    ),
    (
        "var/lib/dpkg/info/python3-six.list",
        "/usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA\n",
    ),
    (
        "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
        "Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n",
    ),
    (
        "usr/local/lib/python3.11/site-packages/urllib3-2.2.1.dist-info/METADATA",
        "Metadata-Version: 2.1\nName: urllib3\nVersion: 2.2.1\n",
    ),
    (
        "app/node_modules/lodash/package.json",
        r#"{"name": "lodash", "version": "4.17.20"}"#,
    ),
];

#[test]
fn language_packages_are_grouped_by_ecosystem_with_their_paths() {
    let dir = tempfile::tempdir().unwrap();
    for (path, data) in FILES {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    let inventory = trawl_inventory::catalog(
        &read_rootfs(
            dir.path(),
            &trawl_inventory::selection(),
            &Limits::default(),
        )
        .unwrap(),
    );
    let report = Report::generate("dir:x", ImageInfo::default(), inventory, &AdvisoryDb::new());
    schema_check::assert_serializes_to_valid_report(&report);
    let mut out = Vec::new();
    write_inventory_table(&mut out, &report).unwrap();
    let text = String::from_utf8(out).unwrap();
    let body: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("OS packages"))
        .map(str::trim_end)
        .collect();
    let squeeze = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
    let body: Vec<String> = body.iter().map(|l| squeeze(l)).collect();
    assert_eq!(
        body,
        [
            "OS packages (1)",
            "NAME VERSION ARCH SOURCE LAYER",
            "python3-six 1.16.0-4 all six -",
            "",
            "PyPI packages (2)",
            "NAME VERSION PATH LAYER OWNED BY",
            "six 1.16.0 usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA - python3-six",
            "urllib3 2.2.1 usr/local/lib/python3.11/site-packages/urllib3-2.2.1.dist-info/METADATA -",
            "",
            "npm packages (1)",
            "NAME VERSION PATH LAYER",
            "lodash 4.17.20 app/node_modules/lodash/package.json -",
            // No advisories at all: the language packages could not be matched.
            "warning: no advisory data for PyPI (1 package not matched)",
            "warning: no advisory data for npm (1 package not matched)",
        ],
        "{text}"
    );
}
