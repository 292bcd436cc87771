//! Platforms (`os/architecture[/variant]`) and choosing an image from an index by platform.
//!
//! Names follow the [OCI image index](https://github.com/opencontainers/image-spec/blob/main/image-index.md#image-index-property-descriptions)
//! `platform` object, which uses Go's `GOOS`/`GOARCH` values.

use std::fmt;
use std::str::FromStr;

use crate::RegistryError;

/// The platform an image is built for, e.g. `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// CPU architecture in Go's naming, e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// Architecture variant, e.g. `v7`; `None` matches any variant.
    pub variant: Option<String>,
}

impl Platform {
    /// `linux` on the architecture this program runs on.
    pub fn host() -> Self {
        Self {
            os: "linux".to_owned(),
            architecture: host_architecture().to_owned(),
            variant: None,
        }
    }

    /// Whether an index entry's platform satisfies this wanted platform.
    ///
    /// A wanted variant must match the entry's; `arm64` entries without a variant count as
    /// `v8`, its only variant in practice.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        if self.os != os || self.architecture != architecture {
            return false;
        }
        let Some(wanted) = self.variant.as_deref() else {
            return true;
        };
        let variant = variant.or((architecture == "arm64").then_some("v8"));
        variant == Some(wanted)
    }
}

impl Default for Platform {
    fn default() -> Self {
        Self::host()
    }
}

impl FromStr for Platform {
    type Err = RegistryError;

    /// Parses `os/architecture[/variant]`.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = || RegistryError::InvalidPlatform {
            input: input.to_owned(),
        };
        let mut parts = input.split('/');
        let (Some(os), Some(architecture)) = (parts.next(), parts.next()) else {
            return Err(invalid());
        };
        let variant = parts.next();
        if parts.next().is_some()
            || os.is_empty()
            || architecture.is_empty()
            || variant.is_some_and(str::is_empty)
        {
            return Err(invalid());
        }
        Ok(Self {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// The host's architecture in OCI (Go) naming.
pub(crate) fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        let p: Platform = "linux/arm/v7".parse().unwrap();
        assert_eq!(p.variant.as_deref(), Some("v7"));
        assert_eq!(p.to_string(), "linux/arm/v7");
        assert_eq!(
            "linux/amd64".parse::<Platform>().unwrap().to_string(),
            "linux/amd64"
        );
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", "linux/arm/"] {
            assert!(
                matches!(
                    bad.parse::<Platform>(),
                    Err(RegistryError::InvalidPlatform { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn matches_variants() {
        let any_arm: Platform = "linux/arm64".parse().unwrap();
        let v8: Platform = "linux/arm64/v8".parse().unwrap();
        assert!(any_arm.matches("linux", "arm64", Some("v8")));
        assert!(v8.matches("linux", "arm64", None));
        assert!(!v8.matches("linux", "arm64", Some("v9")));
        assert!(!v8.matches("linux", "amd64", None));
        assert!(!any_arm.matches("windows", "arm64", None));
    }
}
