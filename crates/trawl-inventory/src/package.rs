//! The package model shared by every cataloger.

use serde::{Deserialize, Serialize};

/// The packaging system a package belongs to. Serialized as its purl type
/// (`deb`, `golang`, `pypi`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum PackageKind {
    /// A Debian package recorded by dpkg.
    Deb,
    /// An Alpine (or Wolfi, Chainguard) package recorded by apk.
    Apk,
    /// An RPM package recorded in the rpm database.
    Rpm,
    /// A Go module (or the Go toolchain, as `stdlib`) linked into a Go binary.
    Golang,
    /// A Rust crate listed in a binary's cargo-auditable data.
    Cargo,
    /// A Python distribution (`*.dist-info`, `*.egg-info`).
    Pypi,
    /// An npm package under `node_modules`.
    Npm,
    /// A Java artifact found in an archive (jar, war, ear, ...).
    Maven,
    /// A Ruby gem (`specifications/*.gemspec`).
    Gem,
    /// A PHP package installed by Composer.
    Composer,
    /// A .NET package listed in a `*.deps.json`.
    Nuget,
}

impl PackageKind {
    /// Every kind, OS kinds first.
    pub const ALL: [PackageKind; 11] = [
        PackageKind::Deb,
        PackageKind::Apk,
        PackageKind::Rpm,
        PackageKind::Golang,
        PackageKind::Cargo,
        PackageKind::Pypi,
        PackageKind::Npm,
        PackageKind::Maven,
        PackageKind::Gem,
        PackageKind::Composer,
        PackageKind::Nuget,
    ];

    /// The purl type of this kind (`deb`, `golang`, `pypi`).
    pub fn purl_type(self) -> &'static str {
        match self {
            PackageKind::Deb => "deb",
            PackageKind::Apk => "apk",
            PackageKind::Rpm => "rpm",
            PackageKind::Golang => "golang",
            PackageKind::Cargo => "cargo",
            PackageKind::Pypi => "pypi",
            PackageKind::Npm => "npm",
            PackageKind::Maven => "maven",
            PackageKind::Gem => "gem",
            PackageKind::Composer => "composer",
            PackageKind::Nuget => "nuget",
        }
    }

    /// Whether the kind is an OS package manager's (dpkg, apk, rpm), matched
    /// in the ecosystem of the image's distribution.
    pub fn is_os(self) -> bool {
        matches!(self, PackageKind::Deb | PackageKind::Apk | PackageKind::Rpm)
    }

    /// The OSV ecosystem of a language package kind (`Go`, `crates.io`,
    /// `PyPI`, `npm`, `Maven`, `RubyGems`, `Packagist`, `NuGet`); `None` for
    /// OS kinds, whose ecosystem is the distribution release.
    ///
    /// ```
    /// use trawl_inventory::PackageKind;
    /// assert_eq!(PackageKind::Pypi.osv_ecosystem(), Some("PyPI"));
    /// assert_eq!(PackageKind::Deb.osv_ecosystem(), None);
    /// ```
    pub fn osv_ecosystem(self) -> Option<&'static str> {
        match self {
            PackageKind::Deb | PackageKind::Apk | PackageKind::Rpm => None,
            PackageKind::Golang => Some("Go"),
            PackageKind::Cargo => Some("crates.io"),
            PackageKind::Pypi => Some("PyPI"),
            PackageKind::Npm => Some("npm"),
            PackageKind::Maven => Some("Maven"),
            PackageKind::Gem => Some("RubyGems"),
            PackageKind::Composer => Some("Packagist"),
            PackageKind::Nuget => Some("NuGet"),
        }
    }
}

/// What a language package is to the artifact it was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PackageRole {
    /// The artifact's own package: a Go binary's main module, the root crate
    /// of a Rust binary.
    Main,
    /// A dependency linked into, or installed beside, the artifact.
    Dependency,
    /// A dependency used only to build the artifact (cargo-auditable `build`
    /// kind): not linked into it.
    Build,
    /// The toolchain the artifact was built with (Go's `stdlib`).
    Toolchain,
}

/// One installed OS package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    /// The file the package was read from: a package database
    /// (`var/lib/dpkg/status`), or for a language package its metadata file,
    /// binary or archive (`usr/lib/python3/dist-packages/urllib3-1.26.12.dist-info/METADATA`,
    /// `usr/local/bin/app`, `app/app.jar`).
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
    /// For a package found inside an archive (a jar inside a jar): the chain
    /// of archive entries leading to it, outermost first, starting inside
    /// the file named by `database` (`["BOOT-INF/lib/spring-core-6.1.2.jar"]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nested: Vec<String>,
    /// What the package was identified from, for language packages whose
    /// artifacts carry several kinds of evidence (Java: `pom.properties`,
    /// `MANIFEST.MF` or `file-name`; Go: `buildinfo`; Rust:
    /// `cargo-auditable`; Python: `dist-info` or `egg-info`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found_by: Option<String>,
    /// What the package is to the artifact it was found in (Go and Rust
    /// binaries: main module, dependency, build-only dependency, toolchain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<PackageRole>,
    /// The OS package that installed this language package's metadata file
    /// (Debian's `python3-urllib3`, Alpine's `py3-*`): the package is listed,
    /// but matched only through the OS package, whose distribution backports
    /// fixes that language advisories do not know about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owned_by: Option<String>,
}

impl Package {
    /// The OSV ecosystem a language package is matched in (`PyPI`); `None`
    /// for OS packages (see [`PackageKind::osv_ecosystem`]).
    pub fn language_ecosystem(&self) -> Option<&'static str> {
        self.kind.osv_ecosystem()
    }

    /// Where the package was found, for people: the file, then any archive
    /// entries inside it, joined by `!/` (`app.jar!/BOOT-INF/lib/a-1.0.jar`).
    pub fn location(&self) -> String {
        let mut s = self.database.clone();
        for inner in &self.nested {
            s.push_str("!/");
            s.push_str(inner);
        }
        s
    }
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
