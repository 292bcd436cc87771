//! Content digests (`sha256:<64 lowercase hex>`), the names of blobs.
//!
//! See the [OCI descriptor specification](https://github.com/opencontainers/image-spec/blob/main/descriptor.md#digests).
//! Only sha256 is supported; it is what every image tool writes.

use sha2::{Digest as _, Sha256};

use crate::RegistryError;

/// The hex part of a `sha256:` digest, validated (so it is safe as a file name).
pub(crate) fn sha256_hex(digest: &str) -> Result<&str, RegistryError> {
    let invalid = || RegistryError::InvalidDigest {
        digest: digest.to_owned(),
    };
    let hex = digest.strip_prefix("sha256:").ok_or_else(invalid)?;
    if hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(hex)
    } else {
        Err(invalid())
    }
}

/// `sha256:<hex>` of some bytes.
pub(crate) fn sha256_of(bytes: &[u8]) -> String {
    format_sha256(Sha256::digest(bytes).as_slice())
}

pub(crate) fn format_sha256(hash: &[u8]) -> String {
    format!("sha256:{}", hex::encode(hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_digests() {
        let ok = format!("sha256:{}", "a".repeat(64));
        assert_eq!(sha256_hex(&ok).unwrap(), "a".repeat(64));
        for bad in [
            "sha256:".to_owned(),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha512:{}", "a".repeat(128)),
            format!("sha256:../{}", "a".repeat(61)),
            "a".repeat(64),
        ] {
            assert!(
                matches!(sha256_hex(&bad), Err(RegistryError::InvalidDigest { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn hashes_empty_input() {
        assert_eq!(
            sha256_of(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
