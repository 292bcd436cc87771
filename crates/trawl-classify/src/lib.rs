//! Severity, image verdicts, findings and report formats for Trawl.
//!
//! # Brief overview
//!
//! - [`Report::generate`]: a pure function from an [`Inventory`] and an
//!   [`AdvisoryDb`] to a [`Report`] — findings per installed package, each
//!   with [`Severity`], fixed version and remediation, and the image
//!   [`Verdict`] (`healthy`, `unhealthy`, or `unsupported`, which is never
//!   to be read as healthy).
//! - [`Judgement::generate_cached`]: what a report decides (verdict, reason,
//!   summary, each finding's facts) without the report, for services that
//!   re-judge many stored inventories; [`MatchCache`] shares the lookups of
//!   a batch between them (and [`Report::generate_cached`]).
//! - [`severity::rate`]: the severity of an advisory for one affected
//!   package: the feed's own rating first, else computed from CVSS vectors.
//! - [`write_table`] / [`write_inventory_table`]: the person-readable forms;
//!   the JSON form is the [`Report`]'s serde serialisation, described by
//!   [`report_schema`] (a JSON Schema, `docs/report.schema.json`).
//!
//! ```
//! use trawl_advisory::AdvisoryDb;
//! use trawl_classify::{ImageInfo, Report, Verdict};
//! use trawl_inventory::Inventory;
//!
//! // No package database at all: the image cannot be judged.
//! let report = Report::generate("dir:/empty", ImageInfo::default(), Inventory::default(), &AdvisoryDb::new());
//! assert_eq!(report.verdict, Verdict::Unsupported);
//! let json = serde_json::to_value(&report).unwrap();
//! assert_eq!(json["verdict"], "unsupported");
//! ```
//!
//! [`Inventory`]: trawl_inventory::Inventory
//! [`AdvisoryDb`]: trawl_advisory::AdvisoryDb
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod formats;
pub mod policy;
mod report;
pub mod severity;
mod table;

pub use policy::{IgnoreRule, Policy, PolicyError, VexStatement, VexStatus};
pub use report::{
    AdvisoryDatabaseInfo, Finding, FindingFacts, FixStateKind, ImageInfo, InventoryDocument,
    Judgement, MAX_REPORT_WARNINGS, MatchCache, RemediationStep, Report, SCHEMA_VERSION, Summary,
    Suppression, Verdict, inventory_schema, report_schema,
};
pub use severity::{Rating, Severity};
pub use table::{escape_terminal, write_inventory_table, write_table, write_table_with};
