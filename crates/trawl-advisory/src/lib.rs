//! Version schemes, advisory feeds, the advisory database and matching for Trawl.
//!
//! # Brief overview
//!
//! - [`Advisory`] (module [`osv`]) is one OSV record, the data model for every feed:
//!   osv.dev exports load directly with [`osv::load_dir`]; vendor feeds are
//!   converted into it: Alpine's secdb ([`secdb::load_path`], YAML or JSON) and the
//!   Debian security tracker JSON ([`debian_tracker::load_file`]). OSV already
//!   models ranges, aliases and severity, and osv.dev itself publishes these
//!   vendors' data in it; what OSV cannot say (never affected, will not fix, the
//!   vendor's urgency) travels as a typed [`VendorStatement`] on the
//!   [`Affected`] entry. Everything stays plain serde data, for a compiled
//!   database to store.
//! - [`AdvisoryDb`] holds records indexed by (normalised [`Ecosystem`], package
//!   name); [`AdvisoryDb::matches`] takes a [`PackageQuery`] (source package name
//!   and version) and returns [`AdvisoryMatch`]es, each with the record ([`AdvisoryRef`]), the
//!   matching [`Affected`] entry, a [`FixState`] and the vendor severity.
//!   [`AdvisoryDb::assess`] also returns "not affected" statements.
//!   [`AdvisoryDb::from_paths`] loads all three kinds of feed.
//! - [`VersionScheme`] orders versions per ecosystem: [`dpkg`](version::dpkg)
//!   ([`DpkgVersion`]), [`rpm`](version::rpm) ([`RpmVersion`]),
//!   [`apk`](version::apk) ([`ApkVersion`]) and [`semver`](version::semver)
//!   ([`SemVersion`], on the `semver` crate; also crates.io's), and for language
//!   ecosystems [`pypi`](version::pypi) ([`Pep440Version`], PEP 440 as Python's
//!   `packaging` has it), [`npm`](version::npm) ([`NpmVersion`], node's `semver`)
//!   and [`go`](version::go) ([`GoVersion`], module versions and Go release tags,
//!   as `golang.org/x/mod/semver`). dpkg, rpm and apk are hand-written
//!   ports of the reference C code: no crate matches them exactly, and the
//!   `debian-packaging` crate alone pulls 335 crates for about a hundred lines;
//!   each language scheme's module says why it is hand-written too.
//!   Agreement is proven by differential tests against `dpkg --compare-versions`,
//!   rpm's `rpm.vercmp()`, `packaging`, node's `semver`, x/mod and Cargo's
//!   `semver` over thousands of real and generated versions, and by
//!   every vector of apk-tools' own `version.data`.
//! - A bad file, record or range in a feed becomes a [`FeedWarning`] naming the file
//!   and record; only an unreadable feed is a [`FeedError`]. Queries fail with
//!   [`QueryError`], versions with [`VersionError`].
//!
//! [`AdvisoryStore`](store::AdvisoryStore) is the compiled, on-disk form (one
//! SQLite file, opened read-only and queried by index); the `fetch` feature
//! downloads the feeds from their publishers with conditional requests.
//!
//! # Example
//!
//! ```
//! use trawl_advisory::{Advisory, AdvisoryDb, FixState, PackageQuery};
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
//! assert_eq!(found[0].fix_state, FixState::Fixed("2.36-9+deb12u3".into()));
//!
//! let patched = PackageQuery { version: "2.36-9+deb12u3", ..query };
//! assert!(db.matches(&patched)?.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod canonical;
pub mod db;
pub mod debian_tracker;
pub mod ecosystem;
pub mod feed;
#[cfg(feature = "fetch")]
pub mod fetch;
pub mod fix;
pub mod ghsa;
pub mod limits;
mod memo;
pub mod osv;
pub mod secdb;
pub mod store;
pub mod version;

pub use db::{AdvisoryDb, AdvisoryMatch, AdvisoryRef, AdvisorySource, PackageQuery, QueryError};
pub use ecosystem::Ecosystem;
pub use feed::{
    ConvertedFeed, ConvertedRecord, FeedError, FeedWarning, RecordRef, WarningReason,
    WarningSummary,
};
pub use fix::{FixState, VendorStatement, VendorStatus};
pub use memo::Memoized;
pub use osv::{Advisory, Affected};
pub use store::{AdvisoryStore, FeedPaths, StoreBuilder, StoreError, StoreInfo};
pub use version::{
    ApkVersion, DpkgVersion, GoVersion, InvalidVersion, NpmVersion, Pep440Version, RpmVersion,
    SemVersion, Version, VersionError, VersionScheme,
};
