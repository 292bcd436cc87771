//! Alpine's security database ("secdb"): which package revision fixed which CVEs.
//!
//! Alpine publishes one document per release and repository, as JSON at
//! <https://secdb.alpinelinux.org/> (`v3.18/main.json`) and, historically, as YAML
//! in the `alpine-secdb` repository. Both have the same shape, generated from the
//! `secfixes` comments of APKBUILDs
//! (<https://wiki.alpinelinux.org/wiki/APKBUILD_Reference#secfixes>):
//!
//! ```yaml
//! distroversion: v3.4
//! reponame: main
//! packages:
//!   - pkg:
//!       name: openssl            # the origin (source) package
//!       secfixes:
//!         1.0.2h-r2:             # the first revision with the fixes
//!           - CVE-2016-2177
//!           - CVE-2017-8904 XSA-214   # an id, then other names for it
//!         "0":                   # "never affected"
//!           - CVE-2016-0000
//! ```
//!
//! Conversion, per (package, vulnerability) of one document, into an OSV record
//! for ecosystem `Alpine:<distroversion>` and package `<name>`:
//! - fixed in `V`: range `introduced 0, fixed V`, so exactly the versions *below*
//!   `V` (apk ordering) are affected. When a vulnerability is listed under several
//!   versions (a fix completed later), the highest one is the fix;
//! - listed under `0`: a [`VendorStatus::NotAffected`](crate::VendorStatus)
//!   statement, which never matches and suppresses other matches of that id;
//! - a list item `CVE-2017-8904 XSA-214` gives id `CVE-2017-8904`, alias `XSA-214`.
//!
//! A version that is not a valid apk version, or an entry of the wrong shape, is a
//! warning naming the file and entry; the rest of the document still loads.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::feed::{
    ConvertedFeed, ConvertedRecord, FeedError, FeedWarning, RecordRef, WarningReason, file_kind,
    read_feed_file, read_regular,
};
use crate::fix::{VendorStatement, VendorStatus};
use crate::osv::{Advisory, Affected, Event, Package, Range, RangeType};
use crate::version::ApkVersion;

/// Loads a secdb document (`*.json`, `*.yaml`, `*.yml`), or every such file under a
/// directory, recursively, in file-name order.
///
/// Fails only if `path` itself cannot be read (or is a FIFO, device or socket:
/// [`FeedError::NotARegularFile`]); unreadable or invalid files and entries
/// inside become warnings, as do FIFOs and devices named like documents.
pub fn load_path(path: impl AsRef<Path>) -> Result<ConvertedFeed, FeedError> {
    let path = path.as_ref();
    let metadata = std::fs::metadata(path).map_err(|source| FeedError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    let mut feed = ConvertedFeed::default();
    if !metadata.is_dir() {
        let bytes = read_feed_file(path)?;
        feed.files = 1;
        convert_document(path, &bytes, &mut feed);
        return Ok(feed);
    }
    let walk = walkdir::WalkDir::new(path)
        .follow_links(true)
        .sort_by_file_name();
    for entry in walk {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) if err.depth() == 0 => {
                return Err(FeedError::ReadDir {
                    path: path.to_owned(),
                    source: err.into_io_error().unwrap_or_else(|| {
                        std::io::Error::other("cannot walk the secdb directory")
                    }),
                });
            }
            Err(err) => {
                feed.warnings.push(FeedWarning {
                    path: err.path().map(Path::to_owned),
                    record: None,
                    reason: WarningReason::Unreadable {
                        message: err.to_string(),
                    },
                });
                continue;
            }
        };
        let file = entry.path();
        let is_document = file
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "json" | "yaml" | "yml"));
        if !is_document || entry.file_type().is_dir() {
            continue;
        }
        if !entry.file_type().is_file() {
            // A FIFO or device named like a document: never opened.
            feed.warnings.push(FeedWarning {
                path: Some(file.to_owned()),
                record: None,
                reason: WarningReason::Unreadable {
                    message: format!("not a regular file but a {}", file_kind(&entry.file_type())),
                },
            });
            continue;
        }
        feed.files += 1;
        match read_regular(file) {
            Ok(bytes) => convert_document(file, &bytes, &mut feed),
            Err(err) => feed.warnings.push(FeedWarning {
                path: Some(file.to_owned()),
                record: None,
                reason: WarningReason::Unreadable {
                    message: err.to_string(),
                },
            }),
        }
    }
    Ok(feed)
}

/// Converts one document's bytes; JSON when the file name says so, else YAML.
pub fn convert_document(path: &Path, bytes: &[u8], feed: &mut ConvertedFeed) {
    let is_json = path.extension().is_some_and(|e| e == "json");
    let parsed = if is_json {
        parse_json(bytes)
    } else {
        parse_yaml(bytes)
    };
    let warn = |record, reason| FeedWarning {
        path: Some(path.to_owned()),
        record,
        reason,
    };
    let (header, packages) = match parsed {
        Ok(parsed) => parsed,
        Err(reason) => return feed.warnings.push(warn(None, reason)),
    };
    let Some(release) = header.distroversion.filter(|r| !r.trim().is_empty()) else {
        return feed.warnings.push(warn(
            None,
            WarningReason::InvalidEntry {
                message: "no `distroversion`; the document was skipped".into(),
            },
        ));
    };
    let repository = header.reponame.unwrap_or_default();
    let ecosystem = format!("Alpine:{}", release.trim());

    // (package, id) -> what the document says about it.
    let mut statements: BTreeMap<(String, String), Statement> = BTreeMap::new();
    for (index, package) in packages {
        let package = match package {
            Ok(package) => package,
            Err(message) => {
                feed.warnings.push(warn(
                    Some(RecordRef::Entry(format!("packages[{index}]"))),
                    WarningReason::InvalidEntry { message },
                ));
                continue;
            }
        };
        let name = package.pkg.name;
        for (fixed, items) in package.pkg.secfixes.unwrap_or_default() {
            let entry = || RecordRef::Entry(format!("packages[{index}] {name} secfixes {fixed:?}"));
            let fix = if fixed.trim() == "0" {
                Fix::NotAffected
            } else {
                match ApkVersion::parse(fixed.trim()) {
                    Ok(version) => Fix::In(version),
                    Err(error) => {
                        feed.warnings.push(warn(
                            Some(entry()),
                            WarningReason::InvalidVersion {
                                package: name.clone(),
                                error,
                            },
                        ));
                        continue;
                    }
                }
            };
            for item in items.unwrap_or_default() {
                let Some(text) = item.and_then(Item::into_text) else {
                    feed.warnings.push(warn(
                        Some(entry()),
                        WarningReason::InvalidEntry {
                            message: "a vulnerability id is not a string; it was skipped".into(),
                        },
                    ));
                    continue;
                };
                let mut names = text.split_whitespace().map(str::to_owned);
                let Some(id) = names.next() else {
                    continue;
                };
                let statement = statements.entry((name.clone(), id)).or_default();
                for alias in names {
                    if !statement.aliases.contains(&alias) {
                        statement.aliases.push(alias);
                    }
                }
                match &fix {
                    Fix::NotAffected => statement.not_affected = true,
                    Fix::In(version) => {
                        if statement.fixed.as_ref().is_none_or(|best| version > best) {
                            statement.fixed = Some(version.clone());
                        }
                    }
                }
            }
        }
    }

    for ((name, id), statement) in statements {
        let (ranges, vendor) = if statement.not_affected {
            (
                Vec::new(),
                Some(VendorStatement {
                    status: Some(VendorStatus::NotAffected),
                    ..VendorStatement::default()
                }),
            )
        } else if let Some(fixed) = statement.fixed {
            let range = Range {
                kind: RangeType::Ecosystem,
                repo: None,
                events: vec![
                    Event::Introduced("0".into()),
                    Event::Fixed(fixed.as_str().to_owned()),
                ],
                database_specific: None,
            };
            (vec![range], None)
        } else {
            continue;
        };
        let key = format!("alpine-secdb:{release}/{repository}:{name}:{id}");
        let advisory = Advisory {
            schema_version: None,
            id,
            modified: None,
            published: None,
            withdrawn: None,
            aliases: statement.aliases,
            related: Vec::new(),
            upstream: Vec::new(),
            summary: None,
            details: None,
            severity: Vec::new(),
            affected: vec![Affected {
                package: Some(Package {
                    ecosystem: ecosystem.clone(),
                    name,
                    purl: None,
                }),
                severity: Vec::new(),
                ranges,
                versions: Vec::new(),
                ecosystem_specific: None,
                database_specific: None,
                vendor,
            }],
            references: Vec::new(),
            database_specific: Some(serde_json::json!({
                "source": "alpine-secdb",
                "repository": repository,
            })),
        };
        feed.records.push(ConvertedRecord {
            advisory,
            key,
            path: path.to_owned(),
        });
    }
}

enum Fix {
    NotAffected,
    In(ApkVersion),
}

#[derive(Default)]
struct Statement {
    aliases: Vec<String>,
    fixed: Option<ApkVersion>,
    not_affected: bool,
}

/// The document fields used; the others (`archs`, `urlprefix`, `apkurl`) are
/// ignored.
#[derive(Deserialize)]
struct Document {
    #[serde(default)]
    distroversion: Option<String>,
    #[serde(default)]
    reponame: Option<String>,
    #[serde(default)]
    packages: Option<Vec<PackageEntry>>,
}

struct Header {
    distroversion: Option<String>,
    reponame: Option<String>,
}

#[derive(Deserialize)]
struct PackageEntry {
    pkg: PackageBody,
}

#[derive(Deserialize)]
struct PackageBody {
    name: String,
    /// Fixed version -> ids. Keys are read as text, so an unquoted YAML key such
    /// as `1.10` keeps its spelling.
    #[serde(default)]
    secfixes: Option<BTreeMap<String, Option<Vec<Option<Item>>>>>,
}

/// One list item: normally a string; anything else is reported, not fatal.
#[derive(Deserialize)]
#[serde(untagged)]
enum Item {
    Text(String),
    Other(serde::de::IgnoredAny),
}

impl Item {
    fn into_text(self) -> Option<String> {
        match self {
            Self::Text(text) => Some(text),
            Self::Other(_) => None,
        }
    }
}

type Parsed = (Header, Vec<(usize, Result<PackageEntry, String>)>);

fn split(document: Document) -> Parsed {
    let header = Header {
        distroversion: document.distroversion,
        reponame: document.reponame,
    };
    let packages = document
        .packages
        .unwrap_or_default()
        .into_iter()
        .map(Ok)
        .enumerate()
        .collect();
    (header, packages)
}

/// Reads a YAML document: whole when it is well-formed, else entry by entry so
/// that one bad entry costs only itself.
fn parse_yaml(bytes: &[u8]) -> Result<Parsed, WarningReason> {
    if let Ok(document) = serde_yaml_ng::from_slice::<Document>(bytes) {
        return Ok(split(document));
    }
    let value: serde_yaml_ng::Value =
        serde_yaml_ng::from_slice(bytes).map_err(|err| WarningReason::InvalidYaml {
            message: err.to_string(),
        })?;
    let text = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let header = Header {
        distroversion: text("distroversion"),
        reponame: text("reponame"),
    };
    let packages = match value.get("packages") {
        None | Some(serde_yaml_ng::Value::Null) => Vec::new(),
        Some(serde_yaml_ng::Value::Sequence(items)) => items
            .iter()
            .cloned()
            .map(|item| serde_yaml_ng::from_value(item).map_err(|err| err.to_string()))
            .enumerate()
            .collect(),
        Some(_) => {
            return Err(WarningReason::InvalidEntry {
                message: "`packages` is not a list".into(),
            });
        }
    };
    Ok((header, packages))
}

/// Reads a JSON document, like [`parse_yaml`].
fn parse_json(bytes: &[u8]) -> Result<Parsed, WarningReason> {
    if let Ok(document) = serde_json::from_slice::<Document>(bytes) {
        return Ok(split(document));
    }
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|err| WarningReason::InvalidJson {
            message: err.to_string(),
        })?;
    let text = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let header = Header {
        distroversion: text("distroversion"),
        reponame: text("reponame"),
    };
    let packages = match value.get("packages") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .cloned()
            .map(|item| serde_json::from_value(item).map_err(|err| err.to_string()))
            .enumerate()
            .collect(),
        Some(_) => {
            return Err(WarningReason::InvalidEntry {
                message: "`packages` is not a list".into(),
            });
        }
    };
    Ok((header, packages))
}
