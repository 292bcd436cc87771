//! What a report says about a scan that could not read everything, and how
//! it shows strings from a hostile image: never `healthy` when anything was
//! left unread, a bounded warnings list, and table output in which package
//! names cannot drive the terminal.

use std::path::Path;

use trawl_advisory::AdvisoryDb;
use trawl_classify::{
    ImageInfo, MAX_REPORT_WARNINGS, Report, Verdict, escape_terminal, write_inventory_table,
    write_table_with,
};
use trawl_inventory::{Inventory, InventoryWarning};
use trawl_layers::{Limits, read_rootfs};

mod schema_check;

fn inventory(status: &str) -> Inventory {
    let dir = tempfile::tempdir().unwrap();
    for (path, data) in [
        ("var/lib/dpkg/status", status),
        (
            "etc/os-release",
            "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
        ),
    ] {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    trawl_inventory::catalog(
        &read_rootfs(
            dir.path(),
            &trawl_inventory::selection(),
            &Limits::default(),
        )
        .unwrap(),
    )
}

const STATUS: &str = "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u1\nArchitecture: amd64\nSource: glibc\n\n\
                      Package: apt\nStatus: install ok installed\nVersion: 2.6.1\nArchitecture: amd64\n";

/// A Debian 12 database with one advisory about glibc, fixed in `fixed`.
fn database(dir: &Path, package: &str, fixed: &str) -> AdvisoryDb {
    let record = serde_json::json!({
        "id": "DEBIAN-CVE-2023-4911", "upstream": ["CVE-2023-4911"],
        "affected": [{"package": {"ecosystem": "Debian:12", "name": package},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]
    });
    std::fs::write(dir.join("r.json"), record.to_string()).unwrap();
    AdvisoryDb::from_osv_dirs(&[dir]).unwrap().0
}

/// One warning of every kind that leaves packages unread.
fn incompleteness() -> Vec<InventoryWarning> {
    vec![
        InventoryWarning::UnreadableDatabase {
            database: "var/lib/rpm/rpmdb.sqlite".into(),
            reason: "SQLite database refused: Packages is a view, not a table".into(),
        },
        InventoryWarning::UnreadableLayer {
            layer: "sha256:ab".into(),
            message: "layer sha256:ab: gzip: invalid block".into(),
        },
        InventoryWarning::UnreadableFile {
            path: "app/app.jar".into(),
            layer: None,
            reason: "corrupt zip".into(),
        },
        InventoryWarning::EntriesNotListed {
            database: "lib/apk/db/installed".into(),
            count: 2_000_000,
        },
    ]
}

#[test]
fn incompleteness_is_never_healthy() {
    let dir = tempfile::tempdir().unwrap();
    // An advisory for another package: the distribution is covered, nothing
    // matches, so a complete scan is healthy.
    let db = database(dir.path(), "openssl", "3.0.15-1~deb12u1");
    let complete = Report::generate("dir:x", ImageInfo::default(), inventory(STATUS), &db);
    schema_check::assert_serializes_to_valid_report(&complete);
    assert_eq!(complete.verdict, Verdict::Healthy);
    for warning in incompleteness() {
        let mut inv = inventory(STATUS);
        inv.warnings.push(warning.clone());
        let report = Report::generate("dir:x", ImageInfo::default(), inv, &db);
        schema_check::assert_serializes_to_valid_report(&report);
        assert_eq!(report.verdict, Verdict::Partial, "{warning:?}");
        assert_eq!(report.verdict_reason, format!("incomplete scan: {warning}"));
    }
}

#[test]
fn findings_with_incompleteness_are_unhealthy_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), "glibc", "2.36-9+deb12u3");
    let mut inv = inventory(STATUS);
    inv.warnings.extend(incompleteness());
    let report = Report::generate("dir:x", ImageInfo::default(), inv, &db);
    schema_check::assert_serializes_to_valid_report(&report);
    assert_eq!(report.verdict, Verdict::Unhealthy);
    let [first, second, third, _] = &incompleteness()[..] else {
        unreachable!()
    };
    assert_eq!(
        report.verdict_reason,
        format!(
            "1 known vulnerabilities (1 with a fix available); the scan is incomplete, more may exist: \
             {first}; {second}; {third}; and 1 more (see the warnings)"
        )
    );
}

#[test]
fn a_package_that_cannot_be_matched_makes_the_scan_partial() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), "openssl", "3.0.15-1~deb12u1");
    // A version dpkg's ordering cannot read: whether advisories affect it is unknown.
    let inv = inventory(
        "Package: openssl\nStatus: install ok installed\nVersion: 3.0.15-1~deb12u1\n\n\
         Package: tool\nStatus: install ok installed\nVersion: :::\n",
    );
    assert_eq!(inv.packages.len(), 2);
    assert!(!inv.is_incomplete());
    let report = Report::generate("dir:x", ImageInfo::default(), inv, &db);
    schema_check::assert_serializes_to_valid_report(&report);
    assert_eq!(report.verdict, Verdict::Partial);
    assert_eq!(
        report.verdict_reason,
        "incomplete scan: source package tool :::: not matched: \
         package tool in Debian:12: invalid version \":::\": epoch in version is empty"
    );
}

#[test]
fn the_warnings_list_is_capped() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), "openssl", "3.0.15-1~deb12u1");
    let mut inv = inventory(STATUS);
    for i in 0..5000 {
        inv.warnings.push(InventoryWarning::Layer {
            message: format!("layer problem {i}"),
        });
    }
    let report = Report::generate("dir:x", ImageInfo::default(), inv, &db);
    schema_check::assert_serializes_to_valid_report(&report);
    assert_eq!(report.warnings.len(), MAX_REPORT_WARNINGS + 1);
    assert_eq!(report.warnings[0], "layer problem 0");
    assert_eq!(
        report.warnings[MAX_REPORT_WARNINGS],
        format!("{} more warnings not listed", 5000 - MAX_REPORT_WARNINGS)
    );
    // Skipped layer entries alone leave the packages read: still healthy.
    assert_eq!(report.verdict, Verdict::Healthy);
}

/// Names and versions as a hostile image might write them: an escape
/// sequence clearing the screen, a carriage return overwriting the line,
/// a bell, the one-byte C1 CSI, a right-to-left override, a backslash.
const HOSTILE: [&str; 6] = [
    "evil\x1b[2J\x1b]0;pwned\x07",
    "hidden\rlibc6",
    "bell\x07",
    "c1\u{9b}31m",
    "rev\u{202e}txt.exe",
    "back\\u{1b}slash",
];

fn hostile_inventory() -> Inventory {
    let mut status = String::new();
    for (i, name) in HOSTILE.iter().enumerate() {
        status.push_str(&format!(
            "Package: {name}\nStatus: install ok installed\nVersion: 2.36-{i}\nArchitecture: amd64\u{2066}\nSource: glibc\n\n"
        ));
    }
    let inv = inventory(&status);
    assert_eq!(
        inv.packages.len(),
        HOSTILE.len(),
        "the names are read as written: {:?}",
        inv.warnings
    );
    inv
}

/// Every control character in `text` is one of the table's own colour
/// sequences (`ESC [ digits;… m`) or a newline.
fn only_own_controls(text: &str) {
    for (at, c) in text.char_indices() {
        if c == '\x1b' {
            let rest = &text[at + 1..];
            let end = rest.find('m').expect("an SGR sequence ends with m");
            let params = &rest[..end];
            assert!(
                params.starts_with('[')
                    && params[1..].chars().all(|c| c.is_ascii_digit() || c == ';'),
                "foreign escape sequence at {at}: {:?}",
                &text[at..(at + 20).min(text.len())]
            );
            continue;
        }
        assert!(
            c == '\n'
                || !(c.is_control() || ('\u{2066}'..='\u{2069}').contains(&c) || c == '\u{202e}'),
            "raw {c:?} at {at} in {text:?}"
        );
    }
}

#[test]
fn hostile_names_are_escaped_in_every_table() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), "glibc", "2.36-9+deb12u3");
    let report = Report::generate(
        "dir:x\x1b[1m",
        ImageInfo::default(),
        hostile_inventory(),
        &db,
    );
    schema_check::assert_serializes_to_valid_report(&report);
    assert_eq!(report.verdict, Verdict::Unhealthy);
    assert_eq!(report.findings.len(), HOSTILE.len());
    // The JSON report keeps the names exactly.
    assert!(report.packages.iter().any(|p| p.name == HOSTILE[0]));

    for color in [false, true] {
        let mut out = Vec::new();
        write_table_with(&mut out, &report, color).unwrap();
        let text = String::from_utf8(out).unwrap();
        only_own_controls(&text);
        for name in HOSTILE {
            assert!(
                text.contains(&*escape_terminal(name)),
                "{name:?} in\n{text}"
            );
        }
        assert!(
            text.contains("evil\\u{1b}[2J\\u{1b}]0;pwned\\u{7}"),
            "{text}"
        );
        assert!(text.contains("hidden\\rlibc6"));
        assert!(text.contains("c1\\u{9b}31m"));
        assert!(text.contains("rev\\u{202e}txt.exe"));
        assert!(
            text.contains("back\\\\u{1b}slash"),
            "a backslash cannot forge an escape"
        );
        assert!(text.contains("Source:    dir:x\\u{1b}[1m"));
    }
    let mut out = Vec::new();
    write_inventory_table(&mut out, &report).unwrap();
    let text = String::from_utf8(out).unwrap();
    only_own_controls(&text);
    assert!(!text.contains('\x1b'));
    assert!(text.contains("amd64\\u{2066}"), "every column is escaped");
    for name in HOSTILE {
        assert!(
            text.contains(&*escape_terminal(name)),
            "{name:?} in\n{text}"
        );
    }
}

#[test]
fn escaped_warnings_and_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), "openssl", "3.0.15-1~deb12u1");
    let mut inv = inventory(STATUS);
    inv.warnings.push(InventoryWarning::UnreadableDatabase {
        database: "var/lib/dpkg/status.d/\x1b[2Jx".into(),
        reason: "bad\r".into(),
    });
    let report = Report::generate("dir:x", ImageInfo::default(), inv, &db);
    schema_check::assert_serializes_to_valid_report(&report);
    assert_eq!(report.verdict, Verdict::Partial);
    let mut out = Vec::new();
    write_table_with(&mut out, &report, true).unwrap();
    let text = String::from_utf8(out).unwrap();
    only_own_controls(&text);
    assert!(text.contains("status.d/\\u{1b}[2Jx: package database unreadable: bad\\r"));
}
