//! Fix states: what a match means for the person who has to act on it.
//!
//! OSV ranges say which versions are affected and which version fixes them. Vendor
//! feeds say more: Alpine's secdb and the Debian security tracker state that a
//! package was never affected, and the tracker that a vulnerability will not be
//! fixed in a release (`no-dsa`, `ignored`). Converters put such statements in
//! [`VendorStatement`] on the [`Affected`](crate::Affected) entry (a field outside
//! the OSV schema); matching combines them with the ranges into a [`FixState`].

use serde::{Deserialize, Serialize};

/// The fix state of one advisory for one installed package.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FixState {
    /// Affected; this version (as the feed writes it) fixes it.
    Fixed(String),
    /// Affected; no fix is known yet.
    Unfixed,
    /// Affected; the vendor has said it will not fix this release (Debian
    /// `no-dsa` / `ignored`, an end-of-life package).
    WillNotFix,
    /// The vendor says the package is not affected (Alpine secdb fixed version
    /// `0`, Debian tracker `fixed_version` `0`). Such a statement never counts as a
    /// finding and suppresses other matches for the same vulnerability.
    NotAffected,
}

impl FixState {
    /// Whether the installed package is affected.
    pub fn is_affected(&self) -> bool {
        !matches!(self, Self::NotAffected)
    }

    /// The fixing version, for [`FixState::Fixed`].
    pub fn fixed_version(&self) -> Option<&str> {
        match self {
            Self::Fixed(version) => Some(version),
            _ => None,
        }
    }
}

/// A vendor's statement about one package, beyond what OSV ranges express.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorStatement {
    /// The vendor's decision; `None` when it only carries severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<VendorStatus>,
    /// The vendor's own severity word, as given (Debian's urgency: `low`,
    /// `medium`, `high`, `unimportant`, `not yet assigned`, `end-of-life`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// The vendor's reason, as given (Debian's `nodsa` text and `nodsa_reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A vendor decision that ranges cannot express.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum VendorStatus {
    /// Never affected, whatever the version: matches become
    /// [`FixState::NotAffected`].
    NotAffected,
    /// Affected versions without a fix stay unfixed: matches become
    /// [`FixState::WillNotFix`] instead of [`FixState::Unfixed`].
    WillNotFix,
}
