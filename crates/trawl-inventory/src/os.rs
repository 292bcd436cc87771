//! OS detection from `os-release` (<https://www.freedesktop.org/software/systemd/man/os-release.html>)
//! and the legacy release files old images carry instead.

use serde::{Deserialize, Serialize};
use trawl_layers::{MergedFs, Selection};

/// What an image says about its operating system.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsRelease {
    /// Lower-case distribution id (`debian`, `ubuntu`).
    pub id: String,
    /// The release (`12`, `22.04`), when known.
    pub version_id: Option<String>,
    /// The release code name (`bookworm`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_codename: Option<String>,
    /// Distributions this one derives from (`ID_LIKE`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_like: Vec<String>,
    /// A human-readable name (`Debian GNU/Linux 12 (bookworm)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretty_name: Option<String>,
    /// The file the id and version were read from.
    pub source_file: String,
}

const OS_RELEASE: [&str; 2] = ["etc/os-release", "usr/lib/os-release"];
const DEBIAN_VERSION: &str = "etc/debian_version";

/// The files OS detection reads.
pub fn selection() -> Selection {
    let mut sel = Selection::new();
    for p in OS_RELEASE.iter().chain([&DEBIAN_VERSION]) {
        sel.add_path(p);
    }
    sel
}

/// Detects the OS of the merged image: `/etc/os-release`, then
/// `/usr/lib/os-release`, then legacy files. A Debian os-release without
/// `VERSION_ID` (testing, distroless) takes the major release from
/// `/etc/debian_version` when that holds a number.
pub fn detect(fs: &MergedFs) -> Option<OsRelease> {
    let mut os = OS_RELEASE.iter().find_map(|p| {
        let file = fs.file(p)?;
        let mut os = parse_os_release(&String::from_utf8_lossy(file.data))?;
        os.source_file = (*p).to_string();
        Some(os)
    });
    let debian_version = fs
        .file(DEBIAN_VERSION)
        .and_then(|f| debian_major(&String::from_utf8_lossy(f.data)));
    match (&mut os, debian_version) {
        (Some(os), Some(major)) if os.id == "debian" && os.version_id.is_none() => {
            os.version_id = Some(major);
        }
        (None, Some(major)) => {
            os = Some(OsRelease {
                id: "debian".into(),
                version_id: Some(major),
                source_file: DEBIAN_VERSION.into(),
                ..OsRelease::default()
            })
        }
        _ => {}
    }
    os
}

/// The major release in `/etc/debian_version` (`12.5` → `12`); `None` for
/// non-numeric contents such as `bookworm/sid`.
fn debian_major(text: &str) -> Option<String> {
    let major = text.trim().split('.').next()?;
    (!major.is_empty() && major.bytes().all(|b| b.is_ascii_digit())).then(|| major.to_string())
}

/// Parses os-release text. `None` when it has no `ID` (or `NAME` to derive one from).
pub fn parse_os_release(text: &str) -> Option<OsRelease> {
    let mut os = OsRelease::default();
    let mut name = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = unquote(value.trim());
        let non_empty = (!value.is_empty()).then(|| value.clone());
        match key.trim() {
            "ID" => os.id = value.to_ascii_lowercase(),
            "VERSION_ID" => os.version_id = non_empty,
            "VERSION_CODENAME" => os.version_codename = non_empty,
            "ID_LIKE" => os.id_like = value.split_whitespace().map(str::to_string).collect(),
            "PRETTY_NAME" => os.pretty_name = non_empty,
            "NAME" => name = non_empty,
            _ => {}
        }
    }
    if os.id.is_empty() {
        // os-release(5): ID defaults to "linux"; a file with neither ID nor NAME identifies nothing.
        let name = name?;
        os.id = name.split_whitespace().next()?.to_ascii_lowercase();
    }
    Some(os)
}

/// Shell-style unquoting as os-release(5) allows: double or single quotes,
/// backslash escapes inside double quotes.
fn unquote(v: &str) -> String {
    let bytes = v.as_bytes();
    if bytes.len() >= 2 && bytes[0] == b'\'' && bytes[bytes.len() - 1] == b'\'' {
        return v[1..v.len() - 1].to_string();
    }
    if bytes.len() >= 2 && bytes[0] == b'"' && bytes[bytes.len() - 1] == b'"' {
        let mut out = String::with_capacity(v.len());
        let mut chars = v[1..v.len() - 1].chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else {
                out.push(c);
            }
        }
        return out;
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoting_and_fields() {
        let os = parse_os_release(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID='12'\nVERSION_CODENAME=bookworm\nID_LIKE=\"rhel fedora\"\n# c\nNAME=\"a \\\"q\\\"\"\n",
        )
        .unwrap();
        assert_eq!(os.id, "debian");
        assert_eq!(os.version_id.as_deref(), Some("12"));
        assert_eq!(os.version_codename.as_deref(), Some("bookworm"));
        assert_eq!(os.id_like, ["rhel", "fedora"]);
        assert_eq!(
            os.pretty_name.as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(parse_os_release("# nothing\n"), None);
    }

    #[test]
    fn debian_major_from_debian_version() {
        assert_eq!(debian_major("12.5\n").as_deref(), Some("12"));
        assert_eq!(debian_major("10.8").as_deref(), Some("10"));
        assert_eq!(debian_major("bookworm/sid\n"), None);
        assert_eq!(debian_major(""), None);
    }
}
