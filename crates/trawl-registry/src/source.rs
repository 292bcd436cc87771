//! Naming an image: `oci-dir:PATH[:REF]`, `oci-archive:FILE[:REF]`,
//! `docker-archive:FILE[:REF]`, `dir:ROOTFS` (skopeo's `oci:` is accepted for `oci-dir:`),
//! `registry:REFERENCE` (skopeo's `docker://REFERENCE`, or a bare reference like `debian:12`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::{RegistryError, RegistryReference};

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ImageSource {
    /// An OCI image layout directory; `reference` matches `org.opencontainers.image.ref.name`.
    OciDir {
        /// The layout directory.
        path: PathBuf,
        /// The image's ref name, when the layout holds several.
        reference: Option<String>,
    },
    /// A tar of an OCI image layout.
    OciArchive {
        /// The archive file.
        path: PathBuf,
        /// The image's ref name, when the layout holds several.
        reference: Option<String>,
    },
    /// A `docker save` archive; `reference` matches a RepoTag (or `@N`, the N-th image).
    DockerArchive {
        /// The archive file.
        path: PathBuf,
        /// The image's tag, when the archive holds several.
        reference: Option<String>,
    },
    /// An unpacked root filesystem.
    Dir {
        /// Its top directory.
        path: PathBuf,
    },
    /// An image on an OCI / Docker Registry 2.0 registry.
    Registry {
        /// Which image.
        reference: RegistryReference,
    },
}

/// The source prefixes [`ImageSource::from_str`] accepts.
pub const ACCEPTED_PREFIXES: &str = "oci-dir:, oci:, oci-archive:, docker-archive:, dir:, registry:, docker://, or a bare image reference";

impl FromStr for ImageSource {
    type Err = RegistryError;

    /// Parses `KIND:PATH[:REF]`.
    ///
    /// Paths may contain `:`. When the whole rest names an existing path there is no
    /// reference; otherwise the longest existing prefix ending before a `:` is the path,
    /// and failing that the split is at the last `:` (the first for docker archives, whose
    /// references contain `:` themselves). `registry:REF` and `docker://REF` name registry
    /// images; input with no known prefix that parses as an image reference (`debian:12`,
    /// `localhost:5000/x`) does too.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let Some((kind, rest)) = input.split_once(':') else {
            return bare_reference(input);
        };
        let empty = || RegistryError::EmptySourcePath {
            input: input.to_owned(),
        };
        if kind == "registry" {
            return Ok(Self::Registry {
                reference: rest.parse()?,
            });
        }
        if let ("docker", Some(reference)) = (kind, rest.strip_prefix("//")) {
            return Ok(Self::Registry {
                reference: reference.parse()?,
            });
        }
        if kind == "dir" {
            if rest.is_empty() {
                return Err(empty());
            }
            return Ok(Self::Dir { path: rest.into() });
        }
        let last_colon_fallback = match kind {
            "oci-dir" | "oci" | "oci-archive" => true,
            "docker-archive" => false,
            _ => return bare_reference(input),
        };
        let (path, reference) = split_reference(rest, last_colon_fallback);
        if path.is_empty() {
            return Err(empty());
        }
        let path = PathBuf::from(path);
        let reference = reference.filter(|r| !r.is_empty()).map(str::to_owned);
        Ok(match kind {
            "docker-archive" => Self::DockerArchive { path, reference },
            "oci-archive" => Self::OciArchive { path, reference },
            _ => Self::OciDir { path, reference },
        })
    }
}

/// Input without a known prefix: an image reference, or else not understood at all.
fn bare_reference(input: &str) -> Result<ImageSource, RegistryError> {
    match input.parse() {
        Ok(reference) => Ok(ImageSource::Registry { reference }),
        Err(_) => Err(unknown(input)),
    }
}

fn unknown(input: &str) -> RegistryError {
    RegistryError::UnknownSourceKind {
        input: input.to_owned(),
        accepted: ACCEPTED_PREFIXES,
    }
}

fn split_reference(rest: &str, last_colon_fallback: bool) -> (&str, Option<&str>) {
    if Path::new(rest).exists() {
        return (rest, None);
    }
    let colons: Vec<usize> = rest.match_indices(':').map(|(i, _)| i).collect();
    if let Some(&i) = colons
        .iter()
        .rev()
        .find(|&&i| Path::new(&rest[..i]).exists())
    {
        return (&rest[..i], Some(&rest[i + 1..]));
    }
    let split = if last_colon_fallback {
        colons.last()
    } else {
        colons.first()
    };
    match split {
        Some(&i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    }
}

impl fmt::Display for ImageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, path, reference) = match self {
            Self::OciDir { path, reference } => ("oci-dir", path, reference),
            Self::OciArchive { path, reference } => ("oci-archive", path, reference),
            Self::DockerArchive { path, reference } => ("docker-archive", path, reference),
            Self::Dir { path } => ("dir", path, &None),
            Self::Registry { reference } => return write!(f, "registry:{reference}"),
        };
        write!(f, "{kind}:{}", path.display())?;
        if let Some(reference) = reference {
            write!(f, ":{reference}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> ImageSource {
        s.parse().unwrap()
    }

    #[test]
    fn parses_each_kind() {
        assert_eq!(
            parse("oci-dir:/nonexistent/layout:bookworm"),
            ImageSource::OciDir {
                path: "/nonexistent/layout".into(),
                reference: Some("bookworm".into())
            }
        );
        assert_eq!(
            parse("oci:/nonexistent/layout"),
            ImageSource::OciDir {
                path: "/nonexistent/layout".into(),
                reference: None
            }
        );
        assert_eq!(
            parse("oci-archive:/nonexistent/a.tar:v1"),
            ImageSource::OciArchive {
                path: "/nonexistent/a.tar".into(),
                reference: Some("v1".into())
            }
        );
        assert_eq!(
            parse("docker-archive:/nonexistent/d.tar:trawl/debian:bookworm"),
            ImageSource::DockerArchive {
                path: "/nonexistent/d.tar".into(),
                reference: Some("trawl/debian:bookworm".into())
            }
        );
        assert_eq!(
            parse("dir:/a:b"),
            ImageSource::Dir {
                path: "/a:b".into()
            }
        );
    }

    #[test]
    fn existing_paths_with_colons_are_not_split() {
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("we:ird");
        std::fs::create_dir(&odd).unwrap();
        let whole = format!("oci-dir:{}", odd.display());
        assert_eq!(
            parse(&whole),
            ImageSource::OciDir {
                path: odd.clone(),
                reference: None
            }
        );
        assert_eq!(
            parse(&format!("{whole}:latest")),
            ImageSource::OciDir {
                path: odd.clone(),
                reference: Some("latest".into())
            }
        );
        let file = dir.path().join("a:b.tar");
        std::fs::write(&file, b"").unwrap();
        assert_eq!(
            parse(&format!("docker-archive:{}:x/y:z", file.display())),
            ImageSource::DockerArchive {
                path: file,
                reference: Some("x/y:z".into())
            }
        );
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "oci-dir:/x/y:bookworm",
            "oci-dir:/x/y",
            "oci-archive:/x/a.tar:v1",
            "docker-archive:/x/d.tar:trawl/debian:bookworm",
            "dir:/rootfs",
            "registry:docker.io/library/debian:12",
            "registry:127.0.0.1:5000/trawl/debian:bookworm",
        ] {
            assert_eq!(parse(s).to_string(), s);
            assert_eq!(parse(&parse(s).to_string()), parse(s));
        }
        assert_eq!(parse("oci:/x/y:1").to_string(), "oci-dir:/x/y:1");
    }

    #[test]
    fn parses_registry_references() {
        let debian = ImageSource::Registry {
            reference: "docker.io/library/debian:12".parse().unwrap(),
        };
        assert_eq!(parse("debian:12"), debian);
        assert_eq!(parse("registry:debian:12"), debian);
        assert_eq!(parse("docker://debian:12"), debian);
        assert_eq!(
            parse("ubuntu").to_string(),
            "registry:docker.io/library/ubuntu:latest"
        );
        assert_eq!(
            parse("localhost:5000/x").to_string(),
            "registry:localhost:5000/x:latest"
        );
        assert!(matches!(
            "registry:Bad//Ref".parse::<ImageSource>(),
            Err(RegistryError::InvalidReference { .. })
        ));
    }

    #[test]
    fn rejects_unknown_and_empty() {
        let e = "ftp://debian:12".parse::<ImageSource>().unwrap_err();
        assert!(matches!(e, RegistryError::UnknownSourceKind { .. }));
        assert!(e.to_string().contains("oci-archive:"), "{e}");
        assert!(matches!(
            "No Spaces Allowed".parse::<ImageSource>(),
            Err(RegistryError::UnknownSourceKind { .. })
        ));
        assert!(matches!(
            "oci-dir:".parse::<ImageSource>(),
            Err(RegistryError::EmptySourcePath { .. })
        ));
        assert!(matches!(
            "dir:".parse::<ImageSource>(),
            Err(RegistryError::EmptySourcePath { .. })
        ));
    }
}
