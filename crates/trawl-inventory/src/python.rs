//! Installed Python distributions: `*.dist-info/METADATA` and `*.egg-info`
//! (a directory holding `PKG-INFO`, or a file of the same format) directly in
//! a `site-packages` or `dist-packages` directory, the places
//! `importlib.metadata.distributions(path=[...])` and `pip inspect` look.
//!
//! Both files are "core metadata"
//! (<https://packaging.python.org/en/latest/specifications/core-metadata/>):
//! RFC 822-style headers, then an optional body (the long description) after
//! the first empty line. Only `Name` and `Version` are read. The header block
//! is parsed the way Python's `email` parser (`compat32`, what
//! `importlib.metadata` uses) parses it:
//! - lines end at `\n`, `\r\n` or `\r`;
//! - a line starting with a space or tab continues the previous header;
//! - a `Name: value` line has a name of printable ASCII other than `:`;
//! - the headers end at the first empty line, or at the first line that is
//!   neither a header nor a continuation (Python files it as the body);
//! - a header that occurs twice counts with its first value.
//!
//! Unlike Python, which decodes the whole file as UTF-8 and fails on any
//! invalid byte, only the `Name` and `Version` values must be UTF-8 here: a
//! Latin-1 `Author` line in an old `PKG-INFO` does not lose the package.
//!
//! The name is kept as written for people; the purl carries the PEP 503
//! normalised name (<https://peps.python.org/pep-0503/#normalized-names>), the
//! form advisories are matched on.
//!
//! Written here: the subset of RFC 822 that core metadata uses is a short
//! loop, and the mail-parsing crates allocate every header of a body that may
//! be megabytes long.

use crate::lang::{FilePackage, FileRead, MetadataCataloger, purl, quote};
use crate::package::PackageKind;

/// Longest `Name` or `Version` value accepted; real ones are far shorter.
pub const MAX_FIELD_LEN: usize = 1024;

/// `Name` and `Version` of a core metadata file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreMetadata {
    /// `Name`, as written.
    pub name: String,
    /// `Version`, as written.
    pub version: String,
    /// 1-based line of the `Name` header.
    pub name_line: usize,
}

/// Why a core metadata file does not give a name and a version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// A required header is absent (or empty) in the header block.
    #[error("no {field} header")]
    Missing {
        /// `Name` or `Version`.
        field: &'static str,
    },
    /// A required header's value is not UTF-8.
    #[error("line {line}: {field} is not UTF-8")]
    Encoding {
        /// `Name` or `Version`.
        field: &'static str,
        /// 1-based line where the header starts.
        line: usize,
    },
    /// A required header's value is longer than [`MAX_FIELD_LEN`].
    #[error("line {line}: {field} is longer than {MAX_FIELD_LEN} bytes")]
    TooLong {
        /// `Name` or `Version`.
        field: &'static str,
        /// 1-based line where the header starts.
        line: usize,
    },
}

impl MetadataError {
    /// Whether the file is well-formed but names no package at a version (a
    /// skipped entry), rather than damaged (an unreadable file).
    pub fn is_missing_field(&self) -> bool {
        matches!(self, MetadataError::Missing { .. })
    }
}

/// One header being collected: raw value bytes (continuations joined by a
/// space, as RFC 822 unfolding does) and its first line.
#[derive(Default)]
struct Field {
    value: Option<Vec<u8>>,
    line: usize,
    too_long: bool,
}

impl Field {
    fn start(&mut self, line: usize, value: &[u8]) {
        self.line = line;
        self.value = Some(Vec::new());
        self.append(value);
    }

    fn append(&mut self, part: &[u8]) {
        let Some(v) = &mut self.value else { return };
        let part = part.trim_ascii();
        if part.is_empty() || self.too_long {
            return;
        }
        if !v.is_empty() {
            v.push(b' ');
        }
        if v.len() + part.len() > MAX_FIELD_LEN {
            self.too_long = true;
            return;
        }
        v.extend_from_slice(part);
    }

    fn finish(self, field: &'static str) -> Result<(String, usize), MetadataError> {
        if self.too_long {
            return Err(MetadataError::TooLong {
                field,
                line: self.line,
            });
        }
        let value = self
            .value
            .filter(|v| !v.is_empty())
            .ok_or(MetadataError::Missing { field })?;
        String::from_utf8(value)
            .map(|s| (s, self.line))
            .map_err(|_| MetadataError::Encoding {
                field,
                line: self.line,
            })
    }
}

/// The lines of `data` with their 1-based numbers, split at `\n`, `\r\n` or `\r`.
fn lines(data: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut rest = data;
    let mut n = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        n += 1;
        let end = rest
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
            .unwrap_or(rest.len());
        let line = &rest[..end];
        let skip = match rest.get(end..end + 2) {
            Some(b"\r\n") => 2,
            _ if end < rest.len() => 1,
            _ => 0,
        };
        rest = &rest[end + skip..];
        Some((n, line))
    })
}

/// A header line's name and value, when the line is one (`[!-9;-~]*:`).
fn header(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = line
        .iter()
        .position(|&b| !(b'!'..=b'~').contains(&b) || b == b':')?;
    (line[colon] == b':').then(|| (&line[..colon], &line[colon + 1..]))
}

/// Reads `Name` and `Version` from the header block of a core metadata file
/// (`METADATA`, `PKG-INFO`). Time is linear in the header block, and only the
/// two values are copied, so megabyte lines and bodies cost nothing more.
///
/// ```
/// use trawl_inventory::python::{parse_core_metadata, MetadataError};
/// let m = parse_core_metadata(b"Metadata-Version: 2.1\r\nName: zope.interface\r\n\
///     Summary: Interfaces\r\n  for Python\r\nVersion: 6.0\r\n\r\nName: not-a-header\r\n").unwrap();
/// assert_eq!((m.name.as_str(), m.version.as_str()), ("zope.interface", "6.0"));
/// assert_eq!(
///     parse_core_metadata(b"Name: x\n\nVersion: 1\n"),
///     Err(MetadataError::Missing { field: "Version" })
/// );
/// ```
pub fn parse_core_metadata(data: &[u8]) -> Result<CoreMetadata, MetadataError> {
    let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let mut name = Field::default();
    let mut version = Field::default();
    // Which field the previous header line started: continuations extend it.
    let mut current: Option<&mut Field> = None;
    let mut seen_name = false;
    let mut seen_version = false;
    for (n, line) in lines(data) {
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some(f) = current.as_deref_mut() {
                f.append(line);
            }
            continue;
        }
        let Some((key, value)) = header(line) else {
            break;
        };
        current = None;
        if key.eq_ignore_ascii_case(b"name") && !seen_name {
            seen_name = true;
            name.start(n, value);
            current = Some(&mut name);
        } else if key.eq_ignore_ascii_case(b"version") && !seen_version {
            seen_version = true;
            version.start(n, value);
            current = Some(&mut version);
        }
    }
    let (name, name_line) = name.finish("Name")?;
    let (version, _) = version.finish("Version")?;
    Ok(CoreMetadata {
        name,
        version,
        name_line,
    })
}

/// PEP 503 normalisation: lower case, every run of `-`, `_` and `.` one `-`.
///
/// ```
/// assert_eq!(trawl_inventory::python::normalize_name("Zope.Interface__x"), "zope-interface-x");
/// ```
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.extend(c.to_lowercase());
            in_run = false;
        }
    }
    out
}

/// Which metadata form a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataForm {
    /// `<site>/<dist>.dist-info/METADATA`.
    DistInfo,
    /// `<site>/<dist>.egg-info/PKG-INFO`, or the file `<site>/<dist>.egg-info`.
    EggInfo,
}

fn is_site_dir(name: &str) -> bool {
    name == "site-packages" || name == "dist-packages"
}

fn has_suffix_ci(name: &str, suffix: &str) -> bool {
    name.len() > suffix.len()
        && name.is_char_boundary(name.len() - suffix.len())
        && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

/// The form of the metadata file at `path` (normalised), or `None` when it is
/// not one importlib would read from a `site-packages`/`dist-packages`
/// directory. Suffixes match case-insensitively, as importlib's do.
///
/// ```
/// use trawl_inventory::python::{metadata_form, MetadataForm};
/// assert_eq!(metadata_form("usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO"), Some(MetadataForm::EggInfo));
/// assert_eq!(metadata_form("venv/lib/python3.11/site-packages/pip-23.0.dist-info/METADATA"), Some(MetadataForm::DistInfo));
/// assert_eq!(metadata_form("src/pip-23.0.dist-info/METADATA"), None);
/// ```
pub fn metadata_form(path: &str) -> Option<MetadataForm> {
    let mut comps = path.rsplit('/');
    let last = comps.next()?;
    let parent = comps.next()?;
    if is_site_dir(parent) && has_suffix_ci(last, ".egg-info") {
        return Some(MetadataForm::EggInfo);
    }
    let site = comps.next()?;
    if !is_site_dir(site) {
        return None;
    }
    match last {
        "METADATA" if has_suffix_ci(parent, ".dist-info") => Some(MetadataForm::DistInfo),
        "PKG-INFO" if has_suffix_ci(parent, ".egg-info") => Some(MetadataForm::EggInfo),
        _ => None,
    }
}

/// Python distributions in `site-packages` and `dist-packages` directories.
#[derive(Debug, Clone, Copy, Default)]
pub struct PythonCataloger;

/// Globs of the files [`PythonCataloger`] reads.
pub const GLOBS: &[&str] = &[
    "**/{site,dist}-packages/*.dist-info/METADATA",
    "**/{site,dist}-packages/*.egg-info/PKG-INFO",
    "**/{site,dist}-packages/*.egg-info",
];

impl MetadataCataloger for PythonCataloger {
    fn name(&self) -> &'static str {
        "python"
    }

    fn globs(&self) -> &'static [&'static str] {
        GLOBS
    }

    fn wants(&self, path: &str) -> bool {
        metadata_form(path).is_some()
    }

    fn read(&self, path: &str, data: &[u8]) -> Result<FileRead, String> {
        let found_by = match metadata_form(path) {
            Some(MetadataForm::DistInfo) => "dist-info",
            _ => "egg-info",
        };
        match parse_core_metadata(data) {
            Ok(m) => Ok(FileRead {
                packages: vec![FilePackage {
                    kind: PackageKind::Pypi,
                    purl: purl("pypi", None, &normalize_name(&m.name), &m.version),
                    name: m.name,
                    version: m.version,
                    found_by,
                    arch: None,
                    line: Some(m.name_line),
                }],
                skipped: Vec::new(),
            }),
            Err(e) if e.is_missing_field() => Ok(FileRead {
                packages: Vec::new(),
                skipped: vec![(1, e.to_string())],
            }),
            Err(e) => Err(format!(
                "{found_by} metadata: {}",
                quote(&e.to_string(), 200)
            )),
        }
    }
}

crate::lang::metadata_cataloger!(PythonCataloger);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_end_at_blank_or_non_header_line() {
        let m = parse_core_metadata(b"Name: a\nVersion: 1\n\nVersion: 2\n").unwrap();
        assert_eq!(m.version, "1");
        // A line that is no header ends the block, as in Python's parser.
        assert_eq!(
            parse_core_metadata(b"Name: a\nnot a header\nVersion: 1\n"),
            Err(MetadataError::Missing { field: "Version" })
        );
        // First occurrence wins; names are case-insensitive; \r line ends.
        let m = parse_core_metadata(b"name: first\rNAME: second\rversion:  2.0 \r").unwrap();
        assert_eq!((m.name.as_str(), m.version.as_str()), ("first", "2.0"));
    }

    #[test]
    fn continuation_lines_unfold() {
        let m = parse_core_metadata(b"Name:\n  folded-name\nVersion: 1\n\tb\n").unwrap();
        assert_eq!(
            (m.name.as_str(), m.version.as_str()),
            ("folded-name", "1 b")
        );
        assert_eq!(m.name_line, 1);
        // A continuation before any header is ignored.
        let m = parse_core_metadata(b" stray\nName: a\nVersion: 1\n").unwrap();
        assert_eq!(m.name, "a");
    }

    #[test]
    fn encoding_length_and_missing() {
        assert_eq!(
            parse_core_metadata(b"Author: Ren\xe9\nName: caf\xe9\nVersion: 1\n"),
            Err(MetadataError::Encoding {
                field: "Name",
                line: 2
            })
        );
        let m = parse_core_metadata(b"Author: Ren\xe9\nName: a\nVersion: 1\n").unwrap();
        assert_eq!(m.name, "a");
        let mut long = b"Name: a\nVersion: ".to_vec();
        long.extend(std::iter::repeat_n(b'9', MAX_FIELD_LEN + 1));
        assert_eq!(
            parse_core_metadata(&long),
            Err(MetadataError::TooLong {
                field: "Version",
                line: 2
            })
        );
        assert_eq!(
            parse_core_metadata(b"Name:   \nVersion: 1\n"),
            Err(MetadataError::Missing { field: "Name" })
        );
        assert_eq!(
            parse_core_metadata(b""),
            Err(MetadataError::Missing { field: "Name" })
        );
    }

    #[test]
    fn megabyte_lines_are_skipped_cheaply() {
        let mut data = b"Name: big\nDescription: ".to_vec();
        data.extend(std::iter::repeat_n(b'x', 4 << 20));
        data.extend_from_slice(b"\n        ");
        data.extend(std::iter::repeat_n(b'y', 4 << 20));
        data.extend_from_slice(b"\nVersion: 9\n\n");
        data.extend(std::iter::repeat_n(b'z', 4 << 20));
        let m = parse_core_metadata(&data).unwrap();
        assert_eq!((m.name.as_str(), m.version.as_str()), ("big", "9"));
    }

    #[test]
    fn names_and_paths() {
        assert_eq!(normalize_name("PyYAML"), "pyyaml");
        assert_eq!(normalize_name("ruamel.yaml.clib"), "ruamel-yaml-clib");
        assert_eq!(normalize_name("a-_.b"), "a-b");
        for (path, form) in [
            (
                "site-packages/a-1.dist-info/METADATA",
                Some(MetadataForm::DistInfo),
            ),
            (
                "x/dist-packages/A-1.DIST-INFO/METADATA",
                Some(MetadataForm::DistInfo),
            ),
            ("x/site-packages/a-1.egg-info", Some(MetadataForm::EggInfo)),
            (
                "x/site-packages/a-1.egg-info/PKG-INFO",
                Some(MetadataForm::EggInfo),
            ),
            ("x/site-packages/a/b-1.dist-info/METADATA", None),
            ("x/site-packages/a-1.dist-info/RECORD", None),
            ("x/site-packages/.dist-info/METADATA", None),
            ("x/lib/a-1.egg-info", None),
            ("METADATA", None),
        ] {
            assert_eq!(metadata_form(path), form, "{path}");
        }
    }

    #[test]
    fn cataloger_reads_and_classifies() {
        let c = PythonCataloger;
        let r = c
            .read(
                "usr/lib/python3/dist-packages/distro_info-1.5+deb12u1.egg-info/PKG-INFO",
                b"Metadata-Version: 2.1\nName: distro-info\nVersion: 1.5+deb12u1\n",
            )
            .unwrap();
        assert_eq!(
            r.packages,
            vec![FilePackage {
                kind: PackageKind::Pypi,
                name: "distro-info".into(),
                version: "1.5+deb12u1".into(),
                purl: "pkg:pypi/distro-info@1.5%2Bdeb12u1".into(),
                found_by: "egg-info",
                arch: None,
                line: Some(2),
            }]
        );
        let r = c
            .read("site-packages/x.dist-info/METADATA", b"Name: x\n")
            .unwrap();
        assert_eq!(r.skipped, vec![(1, "no Version header".to_string())]);
        assert!(
            c.read(
                "site-packages/x.dist-info/METADATA",
                b"Name: \xff\nVersion: 1\n"
            )
            .is_err()
        );
    }
}
