//! Version schemes, advisory feeds, the advisory database and matching for Trawl.
//!
//! # Brief overview
//!
//! - [`Advisory`] (module [`osv`]) is one OSV record, the data model for every feed:
//!   osv.dev exports load directly with [`osv::load_dir`]; other feeds (Alpine secdb,
//!   the Debian security tracker) are to be converted into it.
//! - [`AdvisoryDb`] holds records indexed by (ecosystem, package name);
//!   [`AdvisoryDb::matches`] takes a [`PackageQuery`] and returns [`AdvisoryMatch`]es,
//!   each carrying the record, the matching [`Affected`] entry and the applicable fix.
//! - [`VersionScheme`] orders versions per ecosystem; today only
//!   [`dpkg`](version::dpkg) ([`DpkgVersion`]). It is hand-written on purpose: the
//!   `debian-packaging` crate, even with no default features, pulls 335 crates
//!   (pgp and async-std among them) for what is about a hundred lines here.
//!   Agreement with `dpkg --compare-versions` is proven by a differential test
//!   (`tests/dpkg_differential.rs`) over tens of thousands of real and generated
//!   versions.
//! - A bad file, record or range in a feed becomes a [`FeedWarning`]; only an
//!   unreadable feed is a [`FeedError`]. Queries fail with [`QueryError`], versions
//!   with [`VersionError`].
//!
//! Fetching feeds is not this crate's business: it reads what is on disk.
//!
//! # Example
//!
//! ```
//! use trawl_advisory::{Advisory, AdvisoryDb, PackageQuery};
//!
//! let record: Advisory = serde_json::from_str(r#"{
//!   "id": "DSA-5514-1",
//!   "modified": "2023-10-03T21:03:33Z",
//!   "upstream": ["CVE-2023-4911"],
//!   "affected": [{
//!     "package": {"ecosystem": "Debian:12", "name": "glibc"},
//!     "ranges": [{"type": "ECOSYSTEM",
//!                 "events": [{"introduced": "0"}, {"fixed": "2.36-9+deb12u3"}]}]
//!   }]
//! }"#)?;
//! let mut db = AdvisoryDb::new();
//! assert!(db.add_osv(record).is_empty()); // no warnings
//!
//! let query = PackageQuery { ecosystem: "Debian:12", name: "glibc", version: "2.36-9+deb12u1" };
//! let found = db.matches(&query)?;
//! assert_eq!(found.len(), 1);
//! assert_eq!(found[0].advisory.id, "DSA-5514-1");
//! assert_eq!(found[0].fixed_version.as_deref(), Some("2.36-9+deb12u3"));
//!
//! let patched = PackageQuery { version: "2.36-9+deb12u3", ..query };
//! assert!(db.matches(&patched)?.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod db;
pub mod feed;
pub mod osv;
pub mod version;

pub use db::{AdvisoryDb, AdvisoryMatch, PackageQuery, QueryError};
pub use feed::{FeedError, FeedWarning, RecordRef, WarningReason};
pub use osv::{Advisory, Affected};
pub use version::{DpkgVersion, InvalidVersion, Version, VersionError, VersionScheme};
