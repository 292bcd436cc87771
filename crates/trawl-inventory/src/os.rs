//! OS detection from `os-release`
//! (<https://www.freedesktop.org/software/systemd/man/os-release.html>) and
//! the legacy release files old images carry instead, and the mapping from a
//! detected OS to the release keys advisory feeds use.
//!
//! # Detection order
//!
//! 1. `/etc/os-release`, then `/usr/lib/os-release` (os-release(5) order). A
//!    Debian os-release without `VERSION_ID` (testing, distroless) takes the
//!    major release from `/etc/debian_version` when that holds a number.
//! 2. Without os-release, the legacy files, most specific first:
//!    `alpine-release` (the version alone), `lsb-release` (Ubuntu before
//!    os-release; `DISTRIB_ID`/`DISTRIB_RELEASE`), `oracle-release`,
//!    `centos-release`, `rocky-release`, `almalinux-release`,
//!    `redhat-release`, `system-release` (all `<Name> release <version>
//!    (<code name>)`; Oracle Linux's `redhat-release` claims Red Hat, hence
//!    the vendor files first), `SuSE-release` (`VERSION =` and `PATCHLEVEL =`
//!    lines), `photon-release`, `mariner-release` (`<Name> <version>`),
//!    `system-release-cpe` (a CPE 2.2 or 2.3 name), and last
//!    `debian_version`.
//!
//! An image without any of these (a `busybox` or `scratch` image) has no
//! detected OS: busybox is a userland, not a distribution with advisories,
//! and reading its binary to print a version would keep a megabyte of every
//! image in memory for nothing a feed can key on. An os-release with neither
//! `ID` nor `NAME` (an empty file) identifies nothing either.
//!
//! # Release keys
//!
//! [`OsRelease::distro`] names the distribution ([`Distro`]) when Trawl knows
//! it; only `ID` counts, never `ID_LIKE`, because a derivative's packages are
//! not its parent's. [`OsRelease::release_key`] is the release the advisory
//! feeds of that distribution are split by, and [`OsRelease::osv_ecosystem`]
//! the OSV ecosystem string, following the OSV schema's ecosystem list
//! (<https://ossf.github.io/osv-schema/#affectedpackage-field>,
//! `ecosystems.json` in <https://github.com/ossf/osv-schema>):
//!
//! | distro | `VERSION_ID` | release key | OSV ecosystem |
//! |---|---|---|---|
//! | Alpine | `3.16.2` | `v3.16` (`edge` for `_alpha` builds) | `Alpine:v3.16` |
//! | Wolfi, Chainguard | `20230201` | none (rolling) | `Wolfi`, `Chainguard` |
//! | Debian | `12`, `12.5` | `12` | `Debian:12` |
//! | Ubuntu | `22.04` | `22.04` | `Ubuntu:22.04:LTS` (`Ubuntu:23.10` for non-LTS) |
//! | RHEL/UBI, CentOS, Oracle, Scientific | `9.3` | `9` | none: Red Hat's OSV ecosystem is keyed by product CPE, not os-release |
//! | Rocky, AlmaLinux | `9.3` | `9` | `Rocky Linux:9`, `AlmaLinux:9` |
//! | Fedora | `39` | `39` | none |
//! | Amazon Linux | `2018.03`, `2`, `2023` | `1`, `2`, `2023` | none (ALAS is not in OSV) |
//! | CBL-Mariner | `2.0` | `2.0` | none |
//! | Azure Linux | `3.0` | `3.0` | `Azure Linux:3` |
//! | SLES | `15.5` | `15.5` | `SUSE:<PRETTY_NAME>` |
//! | openSUSE Leap | `15.5` | `15.5` | `openSUSE:<PRETTY_NAME>` |
//! | openSUSE Tumbleweed | `20240101` | none (rolling) | `openSUSE:<PRETTY_NAME>` |
//! | Photon OS | `5.0` | `5.0` | `Photon OS:5.0` |

use serde::{Deserialize, Serialize};
use trawl_layers::{MergedFs, Selection};

/// What an image says about its operating system.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

/// A distribution whose advisory feeds Trawl knows how to key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Distro {
    /// Alpine Linux (`alpine`).
    Alpine,
    /// Wolfi (`wolfi`), a rolling apk distribution.
    Wolfi,
    /// Chainguard OS (`chainguard`), Wolfi's commercial sibling.
    Chainguard,
    /// Debian (`debian`).
    Debian,
    /// Ubuntu (`ubuntu`).
    Ubuntu,
    /// Red Hat Enterprise Linux and the Universal Base Images (`rhel`).
    Rhel,
    /// CentOS Linux and CentOS Stream (`centos`).
    CentOs,
    /// Rocky Linux (`rocky`).
    Rocky,
    /// AlmaLinux (`almalinux`).
    AlmaLinux,
    /// Oracle Linux (`ol`).
    OracleLinux,
    /// Scientific Linux (`scientific`).
    ScientificLinux,
    /// Fedora (`fedora`).
    Fedora,
    /// Amazon Linux 1, 2 and 2023 (`amzn`).
    AmazonLinux,
    /// CBL-Mariner 1 and 2 (`mariner`).
    Mariner,
    /// Azure Linux 3 and later, Mariner's successor (`azurelinux`).
    AzureLinux,
    /// SUSE Linux Enterprise Server, including the BCI images (`sles`).
    Sles,
    /// openSUSE Leap (`opensuse-leap`, `opensuse` before Leap 15).
    OpenSuseLeap,
    /// openSUSE Tumbleweed (`opensuse-tumbleweed`), rolling.
    OpenSuseTumbleweed,
    /// VMware Photon OS (`photon`).
    Photon,
}

impl Distro {
    /// The distribution an os-release `ID` names, `None` for ids Trawl has no
    /// feed mapping for.
    pub fn from_os_id(id: &str) -> Option<Distro> {
        Some(match id {
            "alpine" => Distro::Alpine,
            "wolfi" => Distro::Wolfi,
            "chainguard" => Distro::Chainguard,
            "debian" => Distro::Debian,
            "ubuntu" => Distro::Ubuntu,
            "rhel" => Distro::Rhel,
            "centos" => Distro::CentOs,
            "rocky" => Distro::Rocky,
            "almalinux" => Distro::AlmaLinux,
            "ol" => Distro::OracleLinux,
            "scientific" => Distro::ScientificLinux,
            "fedora" => Distro::Fedora,
            "amzn" => Distro::AmazonLinux,
            "mariner" => Distro::Mariner,
            "azurelinux" => Distro::AzureLinux,
            "sles" | "sles_sap" => Distro::Sles,
            "opensuse-leap" | "opensuse" => Distro::OpenSuseLeap,
            "opensuse-tumbleweed" => Distro::OpenSuseTumbleweed,
            "photon" => Distro::Photon,
            _ => return None,
        })
    }

    /// True for distributions without releases, whose feeds are not split by
    /// release.
    pub fn is_rolling(self) -> bool {
        matches!(
            self,
            Distro::Wolfi | Distro::Chainguard | Distro::OpenSuseTumbleweed
        )
    }
}

const OS_RELEASE: [&str; 2] = ["etc/os-release", "usr/lib/os-release"];
const DEBIAN_VERSION: &str = "etc/debian_version";
const ALPINE_RELEASE: &str = "etc/alpine-release";
const LSB_RELEASE: &str = "etc/lsb-release";
/// `<Name> release <version> (<code name>)` files, most specific first.
const RELEASE_TEXT_FILES: [&str; 6] = [
    "etc/oracle-release",
    "etc/centos-release",
    "etc/rocky-release",
    "etc/almalinux-release",
    "etc/redhat-release",
    "etc/system-release",
];
const SUSE_RELEASE: &str = "etc/SuSE-release";
const PHOTON_RELEASE: &str = "etc/photon-release";
const MARINER_RELEASE: &str = "etc/mariner-release";
const SYSTEM_RELEASE_CPE: &str = "etc/system-release-cpe";

/// The files OS detection reads.
pub fn selection() -> Selection {
    let mut sel = Selection::new();
    let legacy = [
        DEBIAN_VERSION,
        ALPINE_RELEASE,
        LSB_RELEASE,
        SUSE_RELEASE,
        PHOTON_RELEASE,
        MARINER_RELEASE,
        SYSTEM_RELEASE_CPE,
    ];
    for p in OS_RELEASE.iter().chain(&RELEASE_TEXT_FILES).chain(&legacy) {
        sel.add_path(p);
    }
    sel
}

/// Detects the OS of the merged image, in the order the module
/// documentation gives.
pub fn detect(fs: &MergedFs) -> Option<OsRelease> {
    let text = |path: &str| {
        fs.file(path)
            .map(|f| String::from_utf8_lossy(f.data).into_owned())
    };
    let debian_version = text(DEBIAN_VERSION).and_then(|t| debian_major(&t));
    if let Some(mut os) = OS_RELEASE.iter().find_map(|p| {
        let mut os = parse_os_release(&text(p)?)?;
        os.source_file = (*p).to_string();
        Some(os)
    }) {
        if os.id == "debian" && os.version_id.is_none() {
            os.version_id = debian_version;
        }
        return Some(os);
    }
    let legacy = [
        (
            ALPINE_RELEASE,
            parse_alpine_release as fn(&str) -> Option<OsRelease>,
        ),
        (LSB_RELEASE, parse_lsb_release),
    ]
    .into_iter()
    .chain(RELEASE_TEXT_FILES.map(|p| (p, parse_release_text as fn(&str) -> Option<OsRelease>)))
    .chain([
        (
            SUSE_RELEASE,
            parse_suse_release as fn(&str) -> Option<OsRelease>,
        ),
        (PHOTON_RELEASE, parse_name_version_release),
        (MARINER_RELEASE, parse_name_version_release),
        (SYSTEM_RELEASE_CPE, parse_system_release_cpe),
    ]);
    for (path, parse) in legacy {
        if let Some(mut os) = text(path).as_deref().and_then(parse) {
            os.source_file = path.to_string();
            return Some(os);
        }
    }
    debian_version.map(|major| OsRelease {
        id: "debian".into(),
        version_id: Some(major),
        source_file: DEBIAN_VERSION.into(),
        ..OsRelease::default()
    })
}

/// The major release in `/etc/debian_version` (`12.5` → `12`); `None` for
/// non-numeric contents such as `bookworm/sid`.
fn debian_major(text: &str) -> Option<String> {
    let major = text.trim().split('.').next()?;
    is_number(major).then(|| major.to_string())
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The first line of a file, trimmed; `None` when empty.
fn first_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).find(|l| !l.is_empty())
}

/// `etc/alpine-release`: the version alone (`3.4.6`).
fn parse_alpine_release(text: &str) -> Option<OsRelease> {
    let version = first_line(text)?;
    version
        .starts_with(|c: char| c.is_ascii_digit())
        .then(|| OsRelease {
            id: "alpine".into(),
            version_id: Some(version.to_string()),
            ..OsRelease::default()
        })
}

/// `etc/lsb-release`: shell assignments as os-release, with `DISTRIB_` names.
fn parse_lsb_release(text: &str) -> Option<OsRelease> {
    let mut os = OsRelease::default();
    for (key, value) in shell_assignments(text) {
        let non_empty = (!value.is_empty()).then(|| value.clone());
        match key {
            "DISTRIB_ID" => os.id = value.to_ascii_lowercase(),
            "DISTRIB_RELEASE" => os.version_id = non_empty,
            "DISTRIB_CODENAME" => os.version_codename = non_empty,
            "DISTRIB_DESCRIPTION" => os.pretty_name = non_empty,
            _ => {}
        }
    }
    (!os.id.is_empty()).then_some(os)
}

/// The os-release `ID` for a distribution's name as its release files print
/// it (`Red Hat Enterprise Linux Server` → `rhel`); the first word, lower
/// case, for names not listed.
fn id_for_name(name: &str) -> Option<String> {
    let lower = name.trim().to_ascii_lowercase();
    let known = [
        ("centos", "centos"),
        ("red hat enterprise linux", "rhel"),
        ("rocky linux", "rocky"),
        ("almalinux", "almalinux"),
        ("oracle linux", "ol"),
        ("enterprise linux", "ol"),
        ("scientific linux", "scientific"),
        ("fedora", "fedora"),
        ("amazon linux", "amzn"),
        ("vmware photon", "photon"),
        ("cbl-mariner", "mariner"),
        ("common base linux mariner", "mariner"),
        ("microsoft azure linux", "azurelinux"),
    ];
    if let Some((_, id)) = known.iter().find(|(prefix, _)| lower.starts_with(prefix)) {
        return Some((*id).to_string());
    }
    lower.split_whitespace().next().map(str::to_string)
}

/// `<Name> release <version> (<code name>)`, as `redhat-release`,
/// `centos-release`, `system-release` and friends print it.
fn parse_release_text(text: &str) -> Option<OsRelease> {
    let line = first_line(text)?;
    let lower = line.to_ascii_lowercase();
    let at = lower.find(" release ")?;
    let name = &line[..at];
    let version = line[at + " release ".len()..].split_whitespace().next()?;
    if !version.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let codename = line
        .rsplit_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    Some(OsRelease {
        id: id_for_name(name)?,
        version_id: Some(version.to_string()),
        version_codename: codename,
        pretty_name: Some(line.to_string()),
        ..OsRelease::default()
    })
}

/// `<Name> <version>` on the first line (`VMware Photon Linux 1.0`,
/// `CBL-Mariner 2.0.20220226`); the version is cut to major.minor, the form
/// those distributions' os-release `VERSION_ID` has.
fn parse_name_version_release(text: &str) -> Option<OsRelease> {
    let line = first_line(text)?;
    let (name, version) = line.rsplit_once(char::is_whitespace)?;
    if !version.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    Some(OsRelease {
        id: id_for_name(name)?,
        version_id: Some(major_minor(version).unwrap_or(version).to_string()),
        pretty_name: Some(line.to_string()),
        ..OsRelease::default()
    })
}

/// `etc/SuSE-release`: a product line, then `VERSION = 11` and
/// `PATCHLEVEL = 4`; the version becomes `11.4` as os-release writes it
/// (plain `11` for patch level 0).
fn parse_suse_release(text: &str) -> Option<OsRelease> {
    let product = first_line(text)?;
    let lower = product.to_ascii_lowercase();
    let id = if lower.starts_with("opensuse") {
        "opensuse"
    } else if lower.contains("enterprise server") {
        "sles"
    } else if lower.contains("enterprise desktop") {
        "sled"
    } else {
        return None;
    };
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    let version = field("VERSION").filter(|v| !v.is_empty());
    let version = match (version, field("PATCHLEVEL")) {
        (Some(v), Some(p)) if is_number(&p) && p != "0" => Some(format!("{v}.{p}")),
        (v, _) => v,
    };
    Some(OsRelease {
        id: id.into(),
        version_id: version,
        version_codename: field("CODENAME").filter(|c| !c.is_empty()),
        pretty_name: Some(product.to_string()),
        ..OsRelease::default()
    })
}

/// `etc/system-release-cpe`: `cpe:/o:centos:linux:6:GA` (CPE 2.2) or
/// `cpe:2.3:o:amazon:amazon_linux:2` (CPE 2.3). The vendor and product give
/// the id; the version, joined with a numeric update (Oracle writes
/// `linux:7:9`), the version.
fn parse_system_release_cpe(text: &str) -> Option<OsRelease> {
    let cpe = first_line(text)?;
    let rest = cpe
        .strip_prefix("cpe:2.3:")
        .or_else(|| cpe.strip_prefix("cpe:/"))?;
    let mut parts = rest.split(':').skip(1);
    let vendor = parts.next()?.to_ascii_lowercase();
    let product = parts.next()?.to_ascii_lowercase();
    // RHEL writes `6server`: the number is what counts.
    let leading_number = |s: &str| {
        let end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let n = s[..end].trim_end_matches('.');
        (!n.is_empty()).then(|| n.to_string())
    };
    let version = parts.next().and_then(leading_number);
    let update = parts.next().filter(|u| is_number(u));
    let version = match (version, update) {
        (Some(v), Some(u)) if !v.contains('.') => Some(format!("{v}.{u}")),
        (v, _) => v,
    };
    let id = match (vendor.as_str(), product.as_str()) {
        ("redhat", _) => "rhel",
        ("centos", _) => "centos",
        ("amazon", _) => "amzn",
        ("oracle", _) => "ol",
        ("fedoraproject", _) => "fedora",
        ("scientificlinux", _) => "scientific",
        ("suse", "sles") => "sles",
        ("opensuse", "leap") => "opensuse-leap",
        (vendor, _) if !vendor.is_empty() && vendor != "*" => vendor,
        _ => return None,
    };
    Some(OsRelease {
        id: id.to_string(),
        version_id: version,
        ..OsRelease::default()
    })
}

/// `KEY=value` lines with os-release(5) quoting; comments and other lines
/// are skipped.
fn shell_assignments(text: &str) -> impl Iterator<Item = (&str, String)> {
    text.lines().filter_map(|line| {
        let line = line.trim();
        if line.starts_with('#') {
            return None;
        }
        let (key, value) = line.split_once('=')?;
        Some((key.trim(), unquote(value.trim())))
    })
}

/// Parses os-release text. `None` when it has no `ID` (or `NAME` to derive one from).
pub fn parse_os_release(text: &str) -> Option<OsRelease> {
    let mut os = OsRelease::default();
    let mut name = None;
    for (key, value) in shell_assignments(text) {
        let non_empty = (!value.is_empty()).then(|| value.clone());
        match key {
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

/// The first component of a dotted version when it is a number (`9.3` → `9`).
fn major(version: &str) -> Option<&str> {
    let major = version.split('.').next()?;
    is_number(major).then_some(major)
}

/// The first two components of a dotted version when both are numbers
/// (`3.16.2` → `3.16`); `None` for a version with fewer.
fn major_minor(version: &str) -> Option<&str> {
    let mut parts = version.splitn(3, '.');
    let (a, b) = (parts.next()?, parts.next()?);
    (is_number(a) && is_number(b)).then(|| &version[..a.len() + 1 + b.len()])
}

impl OsRelease {
    /// The distribution, when `ID` names one Trawl has a feed mapping for.
    pub fn distro(&self) -> Option<Distro> {
        Distro::from_os_id(&self.id)
    }

    /// The release key the distribution's advisory feeds are split by (see
    /// the table in the [module documentation](self)): `v3.16`, `12`,
    /// `22.04`, `9`, `2023`, `2.0`, `15.5`. `None` for an unknown
    /// distribution, a missing or malformed version, and rolling
    /// distributions (Wolfi, Chainguard, Tumbleweed), whose feeds have no
    /// release.
    pub fn release_key(&self) -> Option<String> {
        let distro = self.distro()?;
        if distro.is_rolling() {
            return None;
        }
        let v = self.version_id.as_deref()?.trim();
        let key = match distro {
            Distro::Alpine if v.contains("_alpha") => "edge".to_string(),
            Distro::Alpine => format!("v{}", major_minor(v)?),
            Distro::Debian
            | Distro::Rhel
            | Distro::CentOs
            | Distro::Rocky
            | Distro::AlmaLinux
            | Distro::OracleLinux
            | Distro::ScientificLinux
            | Distro::Fedora => major(v)?.to_string(),
            Distro::Ubuntu => major_minor(v)?.to_string(),
            // Amazon Linux 1 numbered its releases by date (`2018.03`).
            Distro::AmazonLinux => match major(v)? {
                m if m.len() == 4 && v.contains('.') => "1".to_string(),
                m => m.to_string(),
            },
            Distro::Mariner
            | Distro::AzureLinux
            | Distro::Sles
            | Distro::OpenSuseLeap
            | Distro::Photon => match major_minor(v) {
                Some(mm) => mm.to_string(),
                None => major(v)?.to_string(),
            },
            Distro::Wolfi | Distro::Chainguard | Distro::OpenSuseTumbleweed => return None,
        };
        Some(key)
    }

    /// The OSV ecosystem string for this OS's packages (`Alpine:v3.16`,
    /// `Debian:12`, `Ubuntu:22.04:LTS`, `Rocky Linux:9`, `Wolfi`), per the
    /// table in the [module documentation](self); `None` where OSV has no
    /// ecosystem keyed by what the image says about itself.
    pub fn osv_ecosystem(&self) -> Option<String> {
        let distro = self.distro()?;
        let pretty = || self.pretty_name.as_deref().filter(|p| !p.is_empty());
        Some(match distro {
            Distro::Wolfi => "Wolfi".to_string(),
            Distro::Chainguard => "Chainguard".to_string(),
            Distro::Alpine => format!("Alpine:{}", self.release_key()?),
            Distro::Debian => format!("Debian:{}", self.release_key()?),
            Distro::Ubuntu => {
                let key = self.release_key()?;
                // LTS releases are the April releases of even years.
                let lts = key
                    .split_once('.')
                    .is_some_and(|(y, m)| m == "04" && y.parse::<u32>().is_ok_and(|y| y % 2 == 0));
                if lts {
                    format!("Ubuntu:{key}:LTS")
                } else {
                    format!("Ubuntu:{key}")
                }
            }
            Distro::Rocky => format!("Rocky Linux:{}", self.release_key()?),
            Distro::AlmaLinux => format!("AlmaLinux:{}", self.release_key()?),
            Distro::AzureLinux => {
                format!("Azure Linux:{}", major(self.version_id.as_deref()?)?)
            }
            Distro::Photon => format!("Photon OS:{}", self.release_key()?),
            Distro::Sles => format!("SUSE:{}", pretty()?),
            Distro::OpenSuseLeap | Distro::OpenSuseTumbleweed => {
                format!("openSUSE:{}", pretty()?)
            }
            Distro::Rhel
            | Distro::CentOs
            | Distro::OracleLinux
            | Distro::ScientificLinux
            | Distro::Fedora
            | Distro::AmazonLinux
            | Distro::Mariner => return None,
        })
    }
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

    #[test]
    fn version_components() {
        assert_eq!(major_minor("3.16.2"), Some("3.16"));
        assert_eq!(major_minor("2.0"), Some("2.0"));
        assert_eq!(major_minor("15"), None);
        assert_eq!(major_minor("3.x"), None);
        assert_eq!(major("9.3"), Some("9"));
        assert_eq!(major("rolling"), None);
    }

    #[test]
    fn release_text_and_cpe() {
        let os = parse_release_text("CentOS release 5.7 (Final)").unwrap();
        assert_eq!(
            (
                os.id.as_str(),
                os.version_id.as_deref(),
                os.version_codename.as_deref()
            ),
            ("centos", Some("5.7"), Some("Final"))
        );
        assert_eq!(parse_release_text("no release here"), None);
        assert_eq!(parse_release_text("Foo release x"), None);
        let cpe = |t| {
            let os = parse_system_release_cpe(t).unwrap();
            (os.id, os.version_id)
        };
        assert_eq!(
            cpe("cpe:/o:centos:linux:6:GA"),
            ("centos".into(), Some("6".into()))
        );
        assert_eq!(
            cpe("cpe:/o:redhat:enterprise_linux:6server:ga:server"),
            ("rhel".into(), Some("6".into()))
        );
        assert_eq!(
            cpe("cpe:/o:oracle:linux:7:9:server"),
            ("ol".into(), Some("7.9".into()))
        );
        assert_eq!(
            cpe("cpe:2.3:o:amazon:amazon_linux:2"),
            ("amzn".into(), Some("2".into()))
        );
        assert_eq!(parse_system_release_cpe("not a cpe"), None);
    }
}
