//! OSV ecosystem names, normalised to (distribution, release).
//!
//! OSV names a distribution's packages `Distro[:release]`
//! (<https://ossf.github.io/osv-schema/#affectedpackage-field>, "ecosystems"):
//! `Debian:12`, `Ubuntu:22.04:LTS`, `Ubuntu:Pro:18.04:LTS`, `Alpine:v3.18`,
//! `Rocky Linux:9`, `AlmaLinux:9`, `Red Hat:enterprise_linux:9::appstream`,
//! `SUSE:Linux Enterprise Server 15 SP5`, `openSUSE:Leap 15.5`, `Wolfi`,
//! `Chainguard`, `Mageia:9`, `Photon OS:5.0`. An installed system describes itself
//! differently (`VERSION_ID=12`, `3.18.4`, `9.2`), so both sides are normalised to
//! one key before they meet:
//!
//! | written | key |
//! |---|---|
//! | `Debian:12.5`, `Debian:bookworm` | `Debian:12` (point releases share advisories; codenames 7–14) |
//! | `Ubuntu:22.04:LTS` | `Ubuntu:22.04` |
//! | `Ubuntu:Pro:18.04:LTS` | `Ubuntu:Pro:18.04` (Pro fixes are not in the plain archive) |
//! | `Alpine:3.18`, `Alpine:3.18.4`, `Alpine:v3.18` | `Alpine:v3.18` |
//! | `Rocky Linux:9.2`, `AlmaLinux:9.3` | `Rocky Linux:9`, `AlmaLinux:9` |
//! | anything else | unchanged |

use std::borrow::Cow;
use std::fmt;

use crate::version::VersionScheme;

/// A normalised OSV ecosystem: a distribution and, usually, its release.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ecosystem {
    key: String,
}

/// Debian codenames, for ecosystems written `Debian:bookworm`.
const DEBIAN_CODENAMES: [(&str, &str); 8] = [
    ("wheezy", "7"),
    ("jessie", "8"),
    ("stretch", "9"),
    ("buster", "10"),
    ("bullseye", "11"),
    ("bookworm", "12"),
    ("trixie", "13"),
    ("forky", "14"),
];

impl Ecosystem {
    /// Normalises an ecosystem name (see the module docs). Never fails: a name this
    /// crate does not know is kept as written, and simply has no scheme.
    pub fn parse(name: &str) -> Self {
        let name = name.trim();
        let (distro, release) = match name.split_once(':') {
            Some((distro, release)) => (distro, Some(release)),
            None => (name, None),
        };
        let release = release.map(|release| normalize_release(distro, release));
        let key = match release {
            Some(release) if !release.is_empty() => {
                let mut key = String::with_capacity(distro.len() + 1 + release.len());
                key.push_str(distro);
                key.push(':');
                key.push_str(&release);
                key
            }
            _ => distro.to_owned(),
        };
        Self { key }
    }

    /// The Debian release number for a codename (`bookworm` → `12`).
    pub fn debian_release(codename: &str) -> Option<&'static str> {
        DEBIAN_CODENAMES
            .iter()
            .find(|(name, _)| *name == codename)
            .map(|(_, number)| *number)
    }

    /// The normalised name, e.g. `Alpine:v3.18`.
    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// The distribution (or language ecosystem): the part before the first `:`.
    pub fn distro(&self) -> &str {
        self.key.split_once(':').map_or(&self.key, |(d, _)| d)
    }

    /// The release: everything after the first `:`, if anything.
    pub fn release(&self) -> Option<&str> {
        self.key.split_once(':').map(|(_, r)| r)
    }

    /// The version scheme of the distribution's packages; `None` for ecosystems
    /// without one here (e.g. Hackage).
    pub fn scheme(&self) -> Option<VersionScheme> {
        match self.distro() {
            "Debian" | "Ubuntu" => Some(VersionScheme::Dpkg),
            "Alpine" | "Wolfi" | "Chainguard" => Some(VersionScheme::Apk),
            "Red Hat" | "Rocky Linux" | "AlmaLinux" | "SUSE" | "openSUSE" | "Mageia"
            | "Photon OS" => Some(VersionScheme::Rpm),
            "crates.io" | "Hex" | "Pub" => Some(VersionScheme::Semver),
            "PyPI" => Some(VersionScheme::Pep440),
            "npm" => Some(VersionScheme::Npm),
            "Go" => Some(VersionScheme::Go),
            "Maven" => Some(VersionScheme::Maven),
            "RubyGems" => Some(VersionScheme::RubyGems),
            "Packagist" => Some(VersionScheme::Composer),
            "NuGet" => Some(VersionScheme::NuGet),
            _ => None,
        }
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn normalize_release<'a>(distro: &str, release: &'a str) -> Cow<'a, str> {
    match distro {
        "Debian" => {
            if let Some(number) = Ecosystem::debian_release(release) {
                return Cow::Borrowed(number);
            }
            match release.split_once('.') {
                Some((major, minor))
                    if is_number(major)
                        && minor.bytes().all(|b| b.is_ascii_digit() || b == b'.') =>
                {
                    Cow::Borrowed(major)
                }
                _ => Cow::Borrowed(release),
            }
        }
        "Ubuntu" => Cow::Borrowed(release.strip_suffix(":LTS").unwrap_or(release)),
        "Alpine" => {
            let bare = release.strip_prefix('v').unwrap_or(release);
            let mut parts = bare.split('.');
            match (parts.next(), parts.next()) {
                (Some(major), Some(minor))
                    if is_number(major) && is_number(minor) && parts.all(is_number) =>
                {
                    Cow::Owned(format!("v{major}.{minor}"))
                }
                _ => Cow::Borrowed(release),
            }
        }
        "Rocky Linux" | "AlmaLinux" => match release.split_once('.') {
            Some((major, minor)) if is_number(major) && is_number(minor) => Cow::Borrowed(major),
            _ => Cow::Borrowed(release),
        },
        _ => Cow::Borrowed(release),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        let cases = [
            ("Debian:12.5", "Debian:12"),
            ("Debian:12", "Debian:12"),
            ("Debian:bookworm", "Debian:12"),
            ("Debian:sid", "Debian:sid"),
            ("Debian", "Debian"),
            ("Ubuntu:22.04:LTS", "Ubuntu:22.04"),
            ("Ubuntu:Pro:18.04:LTS", "Ubuntu:Pro:18.04"),
            ("Alpine:v3.18", "Alpine:v3.18"),
            ("Alpine:3.18.4", "Alpine:v3.18"),
            ("Alpine:3.4", "Alpine:v3.4"),
            ("Alpine:edge", "Alpine:edge"),
            ("Rocky Linux:9.2", "Rocky Linux:9"),
            ("AlmaLinux:8", "AlmaLinux:8"),
            (
                "Red Hat:enterprise_linux:9::appstream",
                "Red Hat:enterprise_linux:9::appstream",
            ),
            ("openSUSE:Leap 15.5", "openSUSE:Leap 15.5"),
            ("Wolfi", "Wolfi"),
        ];
        for (written, key) in cases {
            assert_eq!(Ecosystem::parse(written).as_str(), key, "{written}");
        }
        let e = Ecosystem::parse("Ubuntu:Pro:18.04:LTS");
        assert_eq!((e.distro(), e.release()), ("Ubuntu", Some("Pro:18.04")));
    }

    #[test]
    fn schemes() {
        let cases = [
            ("Debian:12", Some(VersionScheme::Dpkg)),
            ("Ubuntu:Pro:18.04:LTS", Some(VersionScheme::Dpkg)),
            ("Alpine:v3.18", Some(VersionScheme::Apk)),
            ("Wolfi", Some(VersionScheme::Apk)),
            ("Chainguard", Some(VersionScheme::Apk)),
            ("Rocky Linux:9", Some(VersionScheme::Rpm)),
            ("AlmaLinux:9", Some(VersionScheme::Rpm)),
            (
                "Red Hat:enterprise_linux:9::baseos",
                Some(VersionScheme::Rpm),
            ),
            (
                "SUSE:Linux Enterprise Server 15 SP5",
                Some(VersionScheme::Rpm),
            ),
            ("openSUSE:Tumbleweed", Some(VersionScheme::Rpm)),
            ("Mageia:9", Some(VersionScheme::Rpm)),
            ("Photon OS:5.0", Some(VersionScheme::Rpm)),
            ("crates.io", Some(VersionScheme::Semver)),
            ("PyPI", Some(VersionScheme::Pep440)),
            ("npm", Some(VersionScheme::Npm)),
            ("Go", Some(VersionScheme::Go)),
            ("Maven", Some(VersionScheme::Maven)),
            ("RubyGems", Some(VersionScheme::RubyGems)),
            ("Packagist", Some(VersionScheme::Composer)),
            ("NuGet", Some(VersionScheme::NuGet)),
        ];
        for (name, scheme) in cases {
            assert_eq!(Ecosystem::parse(name).scheme(), scheme, "{name}");
        }
    }
}
