//! The package model shared by every cataloger.

use serde::{Deserialize, Serialize};

/// The packaging system a package belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageKind {
    /// A Debian package recorded by dpkg.
    Deb,
    /// An Alpine (or Wolfi, Chainguard) package recorded by apk.
    Apk,
    /// An RPM package recorded in the rpm database.
    Rpm,
}

impl PackageKind {
    /// The purl type of this kind (`deb`).
    pub fn purl_type(self) -> &'static str {
        match self {
            PackageKind::Deb => "deb",
            PackageKind::Apk => "apk",
            PackageKind::Rpm => "rpm",
        }
    }
}

/// One installed OS package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// The packaging system.
    #[serde(rename = "type")]
    pub kind: PackageKind,
    /// The binary package name (`libssl3`).
    pub name: String,
    /// The installed version, as the package manager writes it.
    pub version: String,
    /// The architecture (`amd64`, `all`), when recorded.
    pub arch: Option<String>,
    /// The source package it was built from (`openssl`); the binary name when
    /// the database does not say.
    pub source_name: String,
    /// The source package's version; the binary version when not recorded.
    pub source_version: String,
    /// The package URL (<https://github.com/package-url/purl-spec>).
    pub purl: String,
    /// The layer (digest) that introduced the package at its current version;
    /// `None` for sources without layers.
    pub layer: Option<String>,
    /// The database file the package was read from (`var/lib/dpkg/status`).
    pub database: String,
    /// The maintainer, when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintainer: Option<String>,
    /// The license expression, when recorded (apk `L:`, rpm `LICENSE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// The rpm epoch, when the package sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u32>,
    /// The rpm release (`1.el9`); `version` then reads `[EPOCH:]VERSION-RELEASE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// The vendor, when recorded (rpm `VENDOR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// The module stream the package belongs to (rpm `MODULARITYLABEL`,
    /// `nodejs:18:8090020230810123456:a75119d5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modularity_label: Option<String>,
    /// The 1-based line where the package's entry starts in a text database
    /// (dpkg `status`, a `status.d` file, apk `installed`); none for rpm's
    /// binary databases. Reports point at it (SARIF regions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_line: Option<usize>,
}

/// What a package URL is made of (<https://github.com/package-url/purl-spec>).
pub(crate) struct PurlParts<'a> {
    /// `deb`, `rpm`, `apk`.
    pub kind: &'a str,
    /// The distro namespace (`debian`, `redhat`, `alpine`, ...).
    pub namespace: &'a str,
    pub name: &'a str,
    pub version: &'a str,
    pub arch: Option<&'a str>,
    /// rpm's epoch, when set.
    pub epoch: Option<u32>,
}

/// `pkg:<kind>/<namespace>/<name>@<version>?arch=<arch>[&epoch=<epoch>]&distro=<id>-<version_id>`,
/// the form other scanners and SBOM tools emit. A name the purl library
/// rejects still gets a plain `pkg:` string.
pub(crate) fn distro_purl(parts: PurlParts<'_>, os: Option<&crate::OsRelease>) -> String {
    let PurlParts {
        kind,
        namespace,
        name,
        version,
        arch,
        epoch,
    } = parts;
    let Ok(mut p) = packageurl::PackageUrl::new(kind, name) else {
        return format!("pkg:{kind}/{namespace}/{name}@{version}");
    };
    let _ = p.with_namespace(namespace);
    let _ = p.with_version(version);
    if let Some(arch) = arch {
        let _ = p.add_qualifier("arch", arch);
    }
    if let Some(epoch) = epoch {
        let _ = p.add_qualifier("epoch", epoch.to_string());
    }
    if let Some(os) = os
        && let Some(v) = &os.version_id
    {
        let _ = p.add_qualifier("distro", format!("{}-{}", os.id, v));
    }
    p.to_string()
}

/// The purl namespace for dpkg and apk packages: the OS id (`debian`,
/// `ubuntu`, `alpine`, `wolfi`), `default` when the OS is unknown.
pub(crate) fn os_namespace<'a>(os: Option<&'a crate::OsRelease>, default: &'a str) -> &'a str {
    os.map(|o| o.id.as_str())
        .filter(|id| !id.is_empty())
        .unwrap_or(default)
}
