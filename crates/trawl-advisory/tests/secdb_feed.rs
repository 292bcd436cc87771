//! Alpine secdb: the real 2020 YAML snapshot, the published JSON shape, and the
//! real Alpine 3.4 installed packages matched against the real 3.4 secdb.

use std::path::{Path, PathBuf};

use trawl_advisory::{AdvisoryDb, FixState, PackageQuery, RecordRef, WarningReason, secdb};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

/// (installed package, version, origin) from the fixture's expected.tsv.
fn alpine_3_4_installed() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(shared().join("apk/alpine-3.4/expected.tsv"))
        .expect("fixture readable");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_owned(), f[1].to_owned(), f[2].to_owned())
        })
        .collect()
}

#[test]
fn alpine_3_4_installed_packages_against_the_3_4_secdb() {
    let mut db = AdvisoryDb::new();
    let warnings = db
        .add_secdb(shared().join("secdb/v3.4"))
        .expect("secdb readable");
    // icu "57-1-r2" and irssi "0.8.21.r2" are not apk versions (see below).
    assert_eq!(warnings.len(), 2, "{warnings:#?}");

    let installed = alpine_3_4_installed();
    assert_eq!(installed.len(), 15);
    let mut findings: Vec<(String, String, String)> = Vec::new();
    for (package, version, origin) in &installed {
        let query = PackageQuery {
            ecosystem: "Alpine:3.4.6", // as os-release says it; normalised to v3.4
            name: origin,
            version,
        };
        for m in db.matches(&query).expect("valid apk versions") {
            let FixState::Fixed(fixed) = &m.fix_state else {
                panic!("secdb only knows fixed versions: {m:?}");
            };
            findings.push((package.clone(), m.advisory.id.clone(), fixed.clone()));
        }
    }
    findings.sort();

    // Read by hand from secdb/v3.4/main.yaml: a secfix applies when its version is
    // greater than the installed one (apk ordering).
    let expect = |package: &str, cves: &[(&str, &str)]| -> Vec<(String, String, String)> {
        cves.iter()
            .map(|(cve, fixed)| (package.to_owned(), (*cve).to_owned(), (*fixed).to_owned()))
            .collect()
    };
    // musl 1.1.14-r10: r13 and r16 are later.
    let musl = [
        ("CVE-2016-8859", "1.1.14-r13"),
        ("CVE-2017-15650", "1.1.14-r16"),
    ];
    // busybox 1.24.2-r9: r12 and r13 are later; 1.24.2-r0 (CVE-2016-2147/2148) is not.
    let busybox = [
        ("CVE-2016-6301", "1.24.2-r12"),
        ("CVE-2017-15873", "1.24.2-r13"),
        ("CVE-2017-16544", "1.24.2-r13"),
    ];
    let zlib = [
        ("CVE-2016-9840", "1.2.11-r0"),
        ("CVE-2016-9841", "1.2.11-r0"),
        ("CVE-2016-9842", "1.2.11-r0"),
        ("CVE-2016-9843", "1.2.11-r0"),
    ];
    // openssl 1.0.2h-r1: the 1.0.2h-r0 and 1.0.2h-r1 fixes are in; everything from
    // 1.0.2h-r2 on is not. CVE-2017-3738 is listed under 1.0.2n-r0 and again under
    // 1.0.2o-r0: the later listing is the complete fix.
    let openssl = [
        ("CVE-2016-2179", "1.0.2h-r3"),
        ("CVE-2016-2180", "1.0.2h-r2"),
        ("CVE-2016-2181", "1.0.2h-r4"),
        ("CVE-2016-2182", "1.0.2h-r3"),
        ("CVE-2016-2183", "1.0.2i-r0"),
        ("CVE-2016-6302", "1.0.2h-r3"),
        ("CVE-2016-6303", "1.0.2h-r3"),
        ("CVE-2016-6304", "1.0.2i-r0"),
        ("CVE-2016-6306", "1.0.2i-r0"),
        ("CVE-2016-7052", "1.0.2j-r0"),
        ("CVE-2016-7055", "1.0.2k-r0"),
        ("CVE-2017-3731", "1.0.2k-r0"),
        ("CVE-2017-3732", "1.0.2k-r0"),
        ("CVE-2017-3735", "1.0.2m-r0"),
        ("CVE-2017-3736", "1.0.2m-r0"),
        ("CVE-2017-3737", "1.0.2n-r0"),
        ("CVE-2017-3738", "1.0.2o-r0"),
        ("CVE-2018-0732", "1.0.2o-r1"),
        ("CVE-2018-0733", "1.0.2o-r0"),
        ("CVE-2018-0734", "1.0.2q-r0"),
        ("CVE-2018-0737", "1.0.2o-r2"),
        ("CVE-2018-0739", "1.0.2o-r0"),
        ("CVE-2018-5407", "1.0.2q-r0"),
    ];
    let mut want = Vec::new();
    want.extend(expect("busybox", &busybox));
    want.extend(expect("libcrypto1.0", &openssl));
    want.extend(expect("libssl1.0", &openssl));
    want.extend(expect("musl", &musl));
    want.extend(expect("musl-utils", &musl));
    want.extend(expect("zlib", &zlib));
    want.sort();
    assert_eq!(findings, want);
    // 32 distinct (origin, CVE) findings, 57 per installed package; sqlite
    // 3.26.0-r3 is past both of its 3.13.0 fixes, and the other origins have no
    // secfixes in 3.4.
    assert_eq!(findings.len(), 57);
}

#[test]
fn whole_yaml_snapshot_loads_with_exact_warnings() {
    let mut db = AdvisoryDb::new();
    let root = shared().join("secdb");
    let warnings = db.add_secdb(&root).expect("readable");
    let mut got: Vec<(String, String)> = Vec::new();
    for w in &warnings {
        let path = w.path.as_ref().expect("warnings name the file");
        assert!(matches!(w.record, Some(RecordRef::Entry(_))), "{w}");
        let WarningReason::InvalidVersion { error, .. } = &w.reason else {
            panic!("unexpected warning {w}");
        };
        let file = path.strip_prefix(&root).expect("under the root");
        got.push((file.display().to_string(), error.version.clone()));
    }
    got.sort();
    // Every fixed version in the snapshot that apk itself rejects.
    let want: Vec<(String, String)> = [
        ("v3.10/community.yaml", "4.8.0.-r1"),
        ("v3.11/community.yaml", "4.8.0.-r1"),
        ("v3.11/main.yaml", "2.7.16-33"),
        ("v3.11/main.yaml", "4.10-1-r1"),
        ("v3.11/main.yaml", "6.6.2p1-r0"),
        ("v3.3/main.yaml", "0.8.21.r2"),
        ("v3.3/main.yaml", "1.7.5.-r1"),
        ("v3.4/main.yaml", "0.8.21.r2"),
        ("v3.4/main.yaml", "57-1-r2"),
        ("v3.5/main.yaml", "0.8.21.r2"),
        ("v3.5/main.yaml", "1.18.-r2"),
        ("v3.6/main.yaml", "1.0.4.-r0"),
        ("v3.6/main.yaml", "1.11-20-r0"),
        ("v3.7/community.yaml", "0.12.5.-r0"),
        ("v3.7/main.yaml", "1.11-20-r0"),
        ("v3.7/main.yaml", "2.15.r-r1"),
        ("v3.8/community.yaml", "4.8.0.-r1"),
        ("v3.8/main.yaml", "1.11-20-r0"),
        ("v3.8/main.yaml", "10.2.22.r0"),
        ("v3.8/main.yaml", "10.2.24.r0"),
        ("v3.8/main.yaml", "10.2.26.r0"),
        ("v3.8/main.yaml", "4.10-1-r1"),
        ("v3.9/community.yaml", "4.8.0.-r1"),
        ("v3.9/main.yaml", "4.10-1-r1"),
    ]
    .iter()
    .map(|(f, v)| ((*f).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(got, want);
    assert_eq!(
        warnings
            .iter()
            .find(|w| w.to_string().contains("57-1-r2"))
            .map(|w| w.to_string().replace(&root.display().to_string(), "")),
        Some(
            "/v3.4/main.yaml: entry packages[34] icu secfixes \"57-1-r2\": package icu: invalid version \"57-1-r2\": not an apk version: invalid from byte 2".to_owned()
        )
    );
    assert!(db.len() > 5000, "{} records", db.len());

    // v3.8's `db` lists CVE-2016-0682 under "0": never affected, at any version.
    let query = PackageQuery {
        ecosystem: "Alpine:v3.8",
        name: "db",
        version: "5.3.28-r0",
    };
    let all = db.assess(&query).expect("valid");
    let zero: Vec<&FixState> = all
        .iter()
        .filter(|m| m.advisory.id == "CVE-2016-0682")
        .map(|m| &m.fix_state)
        .collect();
    assert_eq!(zero, [&FixState::NotAffected]);
    let matches = db.matches(&query).expect("valid");
    assert!(matches.iter().all(|m| m.advisory.id != "CVE-2016-0682"));
    assert!(matches.iter().all(|m| m.fix_state.is_affected()));
}

#[test]
fn published_json_shape_with_bad_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("main.json");
    // The shape secdb.alpinelinux.org serves per release and repository.
    let json = r#"{
      "apkurl": "{{urlprefix}}/{{distroversion}}/{{reponame}}/{{arch}}/{{pkg.name}}-{{pkg.ver}}.apk",
      "archs": ["aarch64", "x86_64"],
      "reponame": "main",
      "urlprefix": "https://dl-cdn.alpinelinux.org/alpine",
      "distroversion": "v3.18",
      "packages": [
        {"pkg": {"name": "openssl", "secfixes": {
          "3.1.4-r1": ["CVE-2023-5678"],
          "3.1.2-r0": ["CVE-2023-3817"],
          "0": ["CVE-2022-1343"]}}},
        {"pkg": {"name": "curl", "secfixes": {
          "8.4.0-r0": ["CVE-2023-38545 CURL-2023-38545"],
          "8.1.2_alpha-x": ["CVE-2023-0000"]}}},
        {"pkg": {"secfixes": {"1.0-r0": ["CVE-2020-0001"]}}},
        {"pkg": {"name": "busybox", "secfixes": {"1.36.1-r2": [17]}}}
      ]
    }"#;
    std::fs::write(&path, json).expect("write");
    let feed = secdb::load_path(&path).expect("readable");
    assert_eq!(feed.files, 1);
    let described: Vec<String> = feed.warnings.iter().map(ToString::to_string).collect();
    let p = path.display();
    assert_eq!(
        described,
        [
            format!(
                "{p}: entry packages[1] curl secfixes \"8.1.2_alpha-x\": package curl: invalid version \"8.1.2_alpha-x\": not an apk version: invalid from byte 11"
            ),
            format!("{p}: entry packages[2]: unexpected entry: missing field `name`"),
            format!(
                "{p}: entry packages[3] busybox secfixes \"1.36.1-r2\": unexpected entry: a vulnerability id is not a string; it was skipped"
            ),
        ]
    );
    let mut db = AdvisoryDb::new();
    // The converter's warnings come back with the records; ranges add none.
    assert_eq!(db.add_converted(feed).len(), 3);
    assert_eq!(db.len(), 4, "openssl x3 and curl x1");

    let openssl = |version| PackageQuery {
        ecosystem: "Alpine:v3.18",
        name: "openssl",
        version,
    };
    let found = db.matches(&openssl("3.1.2-r0")).expect("valid");
    let got: Vec<(&str, &FixState)> = found
        .iter()
        .map(|m| (m.advisory.id.as_str(), &m.fix_state))
        .collect();
    assert_eq!(
        got,
        [("CVE-2023-5678", &FixState::Fixed("3.1.4-r1".into()))]
    );
    let all = db.assess(&openssl("3.1.2-r0")).expect("valid");
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].advisory.id, "CVE-2022-1343");
    assert_eq!(all[0].fix_state, FixState::NotAffected);

    let curl = db
        .matches(&PackageQuery {
            ecosystem: "Alpine:3.18.4",
            name: "curl",
            version: "8.3.0-r0",
        })
        .expect("valid");
    assert_eq!(curl.len(), 1);
    assert_eq!(curl[0].advisory.aliases, ["CURL-2023-38545"]);
    assert_eq!(curl[0].fixed_version.as_deref(), Some("8.4.0-r0"));

    // Loading the same file again adds nothing.
    let again = secdb::load_path(&path).expect("readable");
    db.add_converted(again);
    assert_eq!(db.len(), 4);
}

#[test]
fn unreadable_and_broken_documents() {
    assert!(secdb::load_path("/no/such/secdb").is_err());
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.yaml"), "packages: [\n").expect("write");
    std::fs::write(
        dir.path().join("b.yaml"),
        "reponame: main\npackages:\n  - pkg:\n      name: x\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("c.txt"), "ignored").expect("write");
    let feed = secdb::load_path(dir.path()).expect("readable");
    assert_eq!(feed.files, 2);
    assert!(feed.records.is_empty());
    let reasons: Vec<&WarningReason> = feed.warnings.iter().map(|w| &w.reason).collect();
    assert!(
        matches!(
            reasons[..],
            [
                WarningReason::InvalidYaml { .. },
                WarningReason::InvalidEntry { .. }
            ]
        ),
        "{reasons:#?}"
    );
    assert_eq!(
        feed.warnings[1].to_string(),
        format!(
            "{}: unexpected entry: no `distroversion`; the document was skipped",
            dir.path().join("b.yaml").display()
        )
    );
}
