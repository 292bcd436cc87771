//! dpkg's package database: `/var/lib/dpkg/status`, and the one-file-per-package
//! `/var/lib/dpkg/status.d/` that distroless images carry instead.
//!
//! Both are deb822 control files (<https://manpages.debian.org/deb822>):
//! paragraphs of `Field: value` lines separated by blank lines, continuation
//! lines starting with a space or tab. The parser is written here rather than
//! taken from `debian-packaging`, which even without default features pulls
//! 335 crates (pgp, async-std, ...) for what is a short routine.

use std::collections::HashSet;

use trawl_layers::{MergedFs, Selection};

use crate::layer_attribution;
use crate::os::OsRelease;
use crate::package::{Package, PackageKind};
use crate::skipped::{EntryLog, oversized};
use crate::{Cataloger, Inventory};

const STATUS: &str = "var/lib/dpkg/status";
const STATUS_D: &str = "var/lib/dpkg/status.d";

/// One deb822 paragraph: fields in order, names as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paragraph {
    fields: Vec<(String, String)>,
    /// 1-based line where the paragraph starts.
    pub line: usize,
}

impl Paragraph {
    /// The value of a field, matched case-insensitively as deb822 requires.
    /// Continuation lines are joined with `\n`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A paragraph that could not be parsed, with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParagraphError {
    /// 1-based line of the offending text.
    pub line: usize,
    /// What was wrong.
    pub reason: String,
}

/// The most fields a paragraph may have (real status entries have about
/// twenty); past it the paragraph is malformed, so that one endless paragraph
/// cannot hold millions of fields in memory.
pub const MAX_FIELDS: usize = 1000;

/// Splits deb822 text into paragraphs. A malformed paragraph is returned as an
/// error in place and does not affect its neighbours. (Holds them all;
/// [`paragraphs`] streams them instead.)
pub fn parse_paragraphs(text: &str) -> Vec<Result<Paragraph, ParagraphError>> {
    paragraphs(text).collect()
}

/// [`parse_paragraphs`] one paragraph at a time, so that a reader keeps only
/// what it needs.
///
/// ```
/// use trawl_inventory::dpkg::paragraphs;
/// let mut it = paragraphs("Package: a\nVersion: 1\n\nnot a field\n\nPackage: b\n");
/// assert_eq!(it.next().unwrap().unwrap().get("version"), Some("1"));
/// assert_eq!(it.next().unwrap().unwrap_err().line, 4);
/// assert_eq!(it.next().unwrap().unwrap().get("Package"), Some("b"));
/// assert!(it.next().is_none());
/// ```
pub fn paragraphs(text: &str) -> impl Iterator<Item = Result<Paragraph, ParagraphError>> + '_ {
    let mut lines = text.lines().enumerate();
    let mut current = Paragraph::default();
    let mut broken: Option<ParagraphError> = None;
    let mut done = false;
    let flush = |current: &mut Paragraph, broken: &mut Option<ParagraphError>| {
        let p = std::mem::take(current);
        match broken.take() {
            Some(e) => Some(Err(e)),
            None if !p.fields.is_empty() => Some(Ok(p)),
            None => None,
        }
    };
    std::iter::from_fn(move || {
        while !done {
            let Some((i, line)) = lines.next() else {
                done = true;
                return flush(&mut current, &mut broken);
            };
            let lineno = i + 1;
            if line.trim().is_empty() {
                match flush(&mut current, &mut broken) {
                    Some(p) => return Some(p),
                    None => continue,
                }
            }
            if current.fields.is_empty() && broken.is_none() {
                current.line = lineno;
            }
            if broken.is_some() {
                continue;
            }
            if line.starts_with('#') && current.fields.is_empty() {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                match current.fields.last_mut() {
                    Some((_, v)) => {
                        v.push('\n');
                        v.push_str(line.trim());
                    }
                    None => {
                        broken = Some(ParagraphError {
                            line: lineno,
                            reason: "continuation line before any field".into(),
                        })
                    }
                }
                continue;
            }
            match line.split_once(':') {
                Some(_) if current.fields.len() == MAX_FIELDS => {
                    broken = Some(ParagraphError {
                        line: lineno,
                        reason: format!("more than {MAX_FIELDS} fields"),
                    });
                    current.fields = Vec::new();
                }
                Some((name, value)) if is_field_name(name) => {
                    current
                        .fields
                        .push((name.to_string(), value.trim().to_string()));
                }
                _ => {
                    broken = Some(ParagraphError {
                        line: lineno,
                        reason: format!("not a `Field: value` line: {:?}", truncate(line, 60)),
                    })
                }
            }
        }
        None
    })
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn is_field_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['#', '-'])
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

/// A dpkg package entry as the database records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpkgEntry {
    /// Binary package name.
    pub name: String,
    /// Installed version.
    pub version: String,
    /// Architecture, when recorded.
    pub arch: Option<String>,
    /// Source package name (the binary name when not recorded).
    pub source_name: String,
    /// Source version (the binary version when not recorded).
    pub source_version: String,
    /// Maintainer, when recorded.
    pub maintainer: Option<String>,
}

/// Why a paragraph does not describe an installed package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOutcome {
    /// An installed package.
    Installed(DpkgEntry),
    /// A valid entry whose package's files are not on disk (`config-files`,
    /// `not-installed`): not an error, just not inventory.
    NotInstalled,
    /// A paragraph that is not a usable package entry.
    Invalid(String),
}

/// Which of dpkg's files a paragraph comes from: the rules for a missing
/// `Status` differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFile {
    /// `/var/lib/dpkg/status`, written by dpkg: an entry without `Status`
    /// is not installed (dpkg-query does not list it).
    Status,
    /// A distroless `/var/lib/dpkg/status.d/` file, written by the image
    /// builder: entries carry no `Status` and count as installed.
    StatusD,
}

/// Interprets one status paragraph. `Status` is honoured when present
/// (`install ok installed`, but also `hold`/`deinstall` wants and the
/// transitional states whose files are on disk). Without one, a `status`
/// entry is not a package dpkg lists (an [`EntryOutcome::Invalid`] entry,
/// to be reported), while distroless `status.d` entries count as installed.
///
/// ```
/// use trawl_inventory::dpkg::{EntryOutcome, StatusFile, entry_from_paragraph, paragraphs};
/// let p = paragraphs("Package: base-files\nVersion: 12.4\n").next().unwrap().unwrap();
/// assert!(matches!(entry_from_paragraph(&p, StatusFile::StatusD), EntryOutcome::Installed(_)));
/// assert!(matches!(entry_from_paragraph(&p, StatusFile::Status), EntryOutcome::Invalid(_)));
/// ```
pub fn entry_from_paragraph(p: &Paragraph, file: StatusFile) -> EntryOutcome {
    let Some(name) = p.get("Package").filter(|n| !n.is_empty()) else {
        return EntryOutcome::Invalid("no Package field".into());
    };
    match (p.get("Status"), file) {
        (Some(status), _) => {
            let state = status.split_whitespace().nth(2).unwrap_or("");
            match state {
                "installed" | "half-configured" | "unpacked" | "half-installed"
                | "triggers-awaited" | "triggers-pending" => {}
                "not-installed" | "config-files" => return EntryOutcome::NotInstalled,
                _ => {
                    return EntryOutcome::Invalid(format!(
                        "package {}: unknown Status {:?}",
                        truncate(name, 60),
                        truncate(status, 60)
                    ));
                }
            }
        }
        (None, StatusFile::StatusD) => {}
        (None, StatusFile::Status) => {
            return EntryOutcome::Invalid(format!(
                "package {}: no Status field (dpkg does not list it as installed)",
                truncate(name, 60)
            ));
        }
    }
    let Some(version) = p.get("Version").filter(|v| !v.is_empty()) else {
        return EntryOutcome::Invalid(format!("package {}: no Version field", truncate(name, 60)));
    };
    let (source_name, source_version) =
        match p.get("Source").map(str::trim).filter(|s| !s.is_empty()) {
            None => (name.to_string(), version.to_string()),
            Some(src) => match src.split_once('(') {
                Some((sname, rest)) => {
                    let sver = rest.trim_end().trim_end_matches(')').trim();
                    let sver = if sver.is_empty() { version } else { sver };
                    (sname.trim().to_string(), sver.to_string())
                }
                None => (src.to_string(), version.to_string()),
            },
        };
    EntryOutcome::Installed(DpkgEntry {
        name: name.to_string(),
        version: version.to_string(),
        arch: p
            .get("Architecture")
            .filter(|a| !a.is_empty())
            .map(str::to_string),
        source_name,
        source_version,
        maintainer: p.get("Maintainer").map(str::to_string),
    })
}

/// Reads `/var/lib/dpkg/status` and `/var/lib/dpkg/status.d/*`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DpkgCataloger;

type Key = (String, String, Option<String>);

fn key(e: &DpkgEntry) -> Key {
    (e.name.clone(), e.version.clone(), e.arch.clone())
}

/// The installed entries of one version of a database file, for attribution.
fn installed_keys(data: &[u8], file: StatusFile) -> HashSet<Key> {
    paragraphs(&String::from_utf8_lossy(data))
        .filter_map(|p| match entry_from_paragraph(&p.ok()?, file) {
            EntryOutcome::Installed(e) => Some(key(&e)),
            _ => None,
        })
        .collect()
}

impl DpkgCataloger {
    fn read_file(
        &self,
        fs: &MergedFs,
        (path, data, file): (&str, &[u8], StatusFile),
        os: Option<&OsRelease>,
        log: &mut EntryLog,
        inv: &mut Inventory,
    ) {
        let text = String::from_utf8_lossy(data);
        let mut entries = Vec::new();
        let mut lines = Vec::new();
        for paragraph in paragraphs(&text) {
            match paragraph {
                Err(e) => log.skip_in(path, e.line, || e.reason),
                Ok(p) => match entry_from_paragraph(&p, file) {
                    EntryOutcome::Installed(e) => match oversized([
                        ("Package", Some(e.name.as_str())),
                        ("Version", Some(e.version.as_str())),
                        ("Architecture", e.arch.as_deref()),
                        ("Source", Some(e.source_name.as_str())),
                        ("Source version", Some(e.source_version.as_str())),
                        ("Maintainer", e.maintainer.as_deref()),
                    ]) {
                        Some(reason) => log.skip_in(path, p.line, || reason),
                        None => {
                            log.read();
                            entries.push(e);
                            lines.push(p.line);
                        }
                    },
                    EntryOutcome::NotInstalled => log.read(),
                    EntryOutcome::Invalid(reason) => log.skip_in(path, p.line, || reason),
                },
            }
        }
        let keys: Vec<Key> = entries.iter().map(key).collect();
        let layers =
            layer_attribution::attribute(&fs.history(path), &keys, |v| installed_keys(v, file));
        for (e, line) in entries.into_iter().zip(lines) {
            let layer = layers.get(&key(&e)).cloned().flatten();
            inv.packages.push(Package {
                database_line: Some(line),
                kind: PackageKind::Deb,
                purl: purl(&e, os),
                name: e.name,
                version: e.version,
                arch: e.arch,
                source_name: e.source_name,
                source_version: e.source_version,
                layer,
                database: path.to_string(),
                maintainer: e.maintainer,
                license: None,
                epoch: None,
                release: None,
                vendor: None,
                modularity_label: None,
                nested: Vec::new(),
                found_by: None,
                role: None,
                owned_by: None,
            });
        }
    }
}

/// `pkg:deb/<distro>/<name>@<version>?arch=<arch>&distro=<id>-<version_id>`,
/// the form other scanners and SBOM tools emit.
fn purl(e: &DpkgEntry, os: Option<&OsRelease>) -> String {
    crate::package::distro_purl(
        crate::package::PurlParts {
            kind: "deb",
            namespace: crate::package::os_namespace(os, "debian"),
            name: &e.name,
            version: &e.version,
            arch: e.arch.as_deref(),
            epoch: None,
        },
        os,
    )
}

impl Cataloger for DpkgCataloger {
    fn name(&self) -> &'static str {
        "dpkg"
    }

    fn selection(&self) -> Selection {
        Selection::new().with_path(STATUS).with_prefix(STATUS_D)
    }

    fn catalog(&self, fs: &MergedFs, os: Option<&OsRelease>, inv: &mut Inventory) {
        if let Some(f) = fs.file(STATUS) {
            inv.databases.push(f.path.to_string());
            let mut log = EntryLog::new(f.path);
            self.read_file(fs, (f.path, f.data, StatusFile::Status), os, &mut log, inv);
            log.finish(inv);
        }
        let entries = fs.files_under(STATUS_D);
        let mut log = EntryLog::new(STATUS_D);
        let mut any = false;
        for f in entries.iter().filter(|f| !f.path.ends_with(".md5sums")) {
            any = true;
            self.read_file(fs, (f.path, f.data, StatusFile::StatusD), os, &mut log, inv);
        }
        if any {
            inv.databases.push(STATUS_D.to_string());
            log.finish(inv);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installed(text: &str) -> Vec<DpkgEntry> {
        parse_paragraphs(text)
            .into_iter()
            .filter_map(
                |p| match entry_from_paragraph(&p.ok()?, StatusFile::Status) {
                    EntryOutcome::Installed(e) => Some(e),
                    _ => None,
                },
            )
            .collect()
    }

    #[test]
    fn source_forms() {
        let e = installed(
            "Package: libssl3\nStatus: install ok installed\nVersion: 3.0.15-1~deb12u1\nSource: openssl\nArchitecture: amd64\n\n\
             Package: libgcc-s1\nStatus: install ok installed\nVersion: 12.2.0-14\nSource: gcc-12 (12.2.0-14+b1)\n\n\
             Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b7\n",
        );
        assert_eq!(e.len(), 3);
        assert_eq!(
            (e[0].source_name.as_str(), e[0].source_version.as_str()),
            ("openssl", "3.0.15-1~deb12u1")
        );
        assert_eq!(e[0].arch.as_deref(), Some("amd64"));
        assert_eq!(
            (e[1].source_name.as_str(), e[1].source_version.as_str()),
            ("gcc-12", "12.2.0-14+b1")
        );
        assert_eq!(
            (e[2].source_name.as_str(), e[2].source_version.as_str()),
            ("bash", "5.2.15-2+b7")
        );
    }

    #[test]
    fn states_and_corruption() {
        let text = "Package: a\nStatus: install ok installed\nVersion: 1\n\n\
                    Package: b\nStatus: deinstall ok config-files\nVersion: 1\n\n\
                    Garbage line without colon\nPackage: c\nVersion: 1\n\n\
                    Package: d\nStatus: hold ok installed\nVersion: 2\nDescription: x\n multi\n .\n line\n\n\
                    Package: e\nStatus: install ok installed\n";
        let paras = parse_paragraphs(text);
        assert_eq!(paras.len(), 5);
        assert!(
            matches!(&paras[2], Err(ParagraphError { line: 9, .. })),
            "{:?}",
            paras[2]
        );
        let names: Vec<String> = installed(text).into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["a", "d"]);
        let d = paras[3].as_ref().unwrap();
        assert_eq!(d.get("description"), Some("x\nmulti\n.\nline"));
        assert!(matches!(
            entry_from_paragraph(paras[4].as_ref().unwrap(), StatusFile::Status),
            EntryOutcome::Invalid(_)
        ));
    }
}
