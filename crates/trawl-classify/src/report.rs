//! The report: inventory + matches → findings and a verdict. A pure function
//! of its inputs.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use trawl_advisory::{
    AdvisoryMatch, AdvisorySource, Ecosystem, FixState, PackageQuery, VersionScheme,
};
use trawl_inventory::{Inventory, OsRelease, Package, PackageKind};

use crate::policy::{IgnoreRule, Policy, VexStatus, product_matches};
use crate::severity::{Rating, Severity, rate};

/// Version of the JSON report layout. Any change to the report's shape (a
/// field added, removed or retyped, a new enum value) changes
/// [`report_schema`] and bumps this: a test records the schema's hash per
/// version.
pub const SCHEMA_VERSION: u32 = 1;

/// The JSON Schema (draft 2020-12) of the JSON report: what [`Report`]'s
/// serde serialisation writes, generated from the Rust types. `trawl schema
/// report` prints it and `docs/report.schema.json` is this, committed; its
/// `schema_version` property is the constant [`SCHEMA_VERSION`], so a tool
/// can tell which layout it is reading.
///
/// ```
/// let schema = trawl_classify::report_schema();
/// assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
/// assert_eq!(schema["properties"]["schema_version"]["const"], trawl_classify::SCHEMA_VERSION);
/// ```
pub fn report_schema() -> serde_json::Value {
    let mut generator = schema_generator();
    let database = generator.subschema_for::<AdvisoryDatabaseInfo>();
    let mut value = generator.into_root_schema_for::<Report>().to_value();
    if let Some(root) = value.as_object_mut() {
        root.insert("title".into(), "Trawl report".into());
        if let Some(properties) = root.get_mut("properties").and_then(|p| p.as_object_mut()) {
            properties.insert("advisory_database".into(), database.to_value());
        }
    }
    value
}

/// The JSON Schema (draft 2020-12) of the inventory document
/// ([`InventoryDocument`], `trawl scan --inventory-only --format json`),
/// printed by `trawl schema inventory`, committed as
/// `docs/inventory.schema.json`. Its `schema_version` is the report's.
pub fn inventory_schema() -> serde_json::Value {
    let mut value = schema_generator()
        .into_root_schema_for::<InventoryDocument>()
        .to_value();
    if let Some(root) = value.as_object_mut() {
        root.insert("title".into(), "Trawl inventory".into());
    }
    value
}

/// The generator of the published schemas: draft 2020-12, describing what
/// serialisation writes, every object closed (the documents write exactly
/// the properties their types declare, so a validator catches a field the
/// schema lacks).
fn schema_generator() -> schemars::SchemaGenerator {
    let close = |schema: &mut schemars::Schema| {
        if schema.get("properties").is_some() && schema.get("additionalProperties").is_none() {
            schema.insert("additionalProperties".into(), false.into());
        }
    };
    schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .with_transform(schemars::transform::RecursiveTransform(close))
        .into_generator()
}

/// What an image holds, without matching: `trawl scan --inventory-only
/// --format json`. The [`Report`]'s inventory fields, under the same
/// [`SCHEMA_VERSION`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryDocument {
    /// [`SCHEMA_VERSION`].
    #[schemars(extend("const" = SCHEMA_VERSION))]
    pub schema_version: u32,
    /// The image reference as given.
    pub source: String,
    /// Manifest and layer digests.
    pub image: ImageInfo,
    /// The detected OS.
    pub os: Option<OsRelease>,
    /// Installed packages.
    pub packages: Vec<Package>,
    /// The catalogers that looked at the image.
    pub catalogers: Vec<String>,
    /// Problems that did not stop the scan.
    pub warnings: Vec<String>,
}

impl From<&Report> for InventoryDocument {
    fn from(report: &Report) -> Self {
        InventoryDocument {
            schema_version: report.schema_version,
            source: report.source.clone(),
            image: report.image.clone(),
            os: report.os.clone(),
            packages: report.packages.clone(),
            catalogers: report.catalogers.clone(),
            warnings: report.warnings.clone(),
        }
    }
}

/// The compiled advisory database a report was matched against, as `trawl
/// scan`'s JSON report carries it: an `advisory_database` property beside
/// the [`Report`]'s own (absent when the advisories came from feed files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AdvisoryDatabaseInfo {
    /// The file.
    pub path: std::path::PathBuf,
    /// When it was built (RFC 3339, UTC); `None` for a file that does not say.
    pub built_at: Option<String>,
    /// Its age at the time of the scan, in seconds.
    pub age_seconds: Option<u64>,
}

/// What the image is, as far as the report is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImageInfo {
    /// Digest of the image manifest, when the source has one.
    pub manifest_digest: Option<String>,
    /// Layer blob digests, base first.
    pub layers: Vec<String>,
    /// Uncompressed layer digests (`rootfs.diff_ids`), base first, when known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diff_ids: Vec<String>,
}

/// The overall judgement of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Verdict {
    /// Scanned fully and nothing known affects it.
    Healthy,
    /// At least one known vulnerability affects it.
    Unhealthy,
    /// It could not be judged: no package database, unknown OS, or no
    /// advisory data for its distribution. Never to be read as healthy.
    Unsupported,
    /// Some layer or package database could not be read, so packages may be
    /// missing; nothing found in the rest counts against it. Never to be read
    /// as healthy. (An image with findings is `unhealthy` even when the scan
    /// was incomplete.)
    Partial,
}

impl Verdict {
    /// The lower-case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Unhealthy => "unhealthy",
            Verdict::Unsupported => "unsupported",
            Verdict::Partial => "partial",
        }
    }
}

/// Whether and how a finding can be fixed.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FixStateKind {
    /// A fixed version is available.
    Fixed,
    /// No fix is known yet.
    Unfixed,
    /// The vendor will not fix it in this release.
    WillNotFix,
}

impl FixStateKind {
    /// The snake_case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            FixStateKind::Fixed => "fixed",
            FixStateKind::Unfixed => "unfixed",
            FixStateKind::WillNotFix => "will_not_fix",
        }
    }
}

/// Why a finding does not count toward the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Suppression {
    /// `severity-threshold`, `ignore-unfixed`, `ignore-file` or `vex`.
    pub by: String,
    /// The reason, in words.
    pub reason: String,
    /// Where the rule was written (`file:line`, `file#statementN`), if from a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// One vulnerability affecting one installed package. Records of several
/// feeds about the same vulnerability (a DSA and its CVE, a CVE record and
/// the tracker's entry) are one finding carrying every id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    /// The vulnerability id: its CVE when the finding has exactly one, else
    /// the advisory id (`DSA-5739-1`, `GHSA-…`).
    pub id: String,
    /// Every other id of the same issue (advisories, aliases, upstream ids).
    pub aliases: Vec<String>,
    /// One-line summary, when a feed has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The installed binary package.
    pub package: String,
    /// Its installed version.
    pub installed_version: String,
    /// The source package the advisories are about.
    pub source_name: String,
    /// The installed source version the advisories were compared with.
    pub source_version: String,
    /// The (source) version that fixes it, or `None` when there is no fix.
    pub fixed_version: Option<String>,
    /// Fixed, unfixed, or will not be fixed.
    pub fix_state: FixStateKind,
    /// How serious it is.
    pub severity: Severity,
    /// Where the severity came from (`vendor:Debian`, `database_specific.severity`, `CVSS_V3`, ...).
    pub severity_source: String,
    /// The CVSS base score, when the severity was computed from a vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss_score: Option<f64>,
    /// The feed ecosystem that matched (`Debian:12`, `npm`, `PyPI`).
    pub ecosystem: String,
    /// For a language package: where it is in the image, as
    /// [`Package::location`] gives it (its metadata file, binary or archive,
    /// then any archive entries inside it joined by `!/`). Every instance of a
    /// package is a finding of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// For a language package: its package URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    /// The layer that introduced the package at its installed version.
    pub layer: Option<String>,
    /// What to do about it, in words.
    pub remediation: String,
    /// A VEX `affected`/`fixed`/`under_investigation` statement about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vex_status: Option<VexStatus>,
    /// Why it does not count, for findings in [`Report::suppressed`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppression: Option<Suppression>,
}

/// One upgrade that clears every fixable finding of a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RemediationStep {
    /// The binary package to upgrade.
    pub package: String,
    /// For a language package: where the instance to upgrade is (see
    /// [`Finding::path`]); each instance is a step of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// For a language package: its ecosystem (`npm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecosystem: Option<String>,
    /// Its installed version.
    pub from: String,
    /// The smallest version that fixes every fixable finding of the package.
    pub to: String,
    /// The ids of the findings it fixes.
    pub fixes: Vec<String>,
    /// The most serious of them.
    pub max_severity: Severity,
    /// The layer that introduced the package (a base-image layer shows the
    /// problem is the base image's).
    pub layer: Option<String>,
    /// Findings of the package that no upgrade fixes today.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub still_unfixed: Vec<String>,
}

/// Finding counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    /// Number of packages inventoried.
    pub packages: usize,
    /// Number of findings that count.
    pub findings: usize,
    /// Findings with a fixed version available.
    pub fixable: usize,
    /// Findings per severity (every severity present, zero included).
    #[schemars(extend("propertyNames" = {"$ref": "#/$defs/Severity"}))]
    pub by_severity: BTreeMap<Severity, usize>,
    /// Findings per fix state (every state present, zero included).
    #[schemars(extend("propertyNames" = {"$ref": "#/$defs/FixStateKind"}))]
    pub by_fix_state: BTreeMap<FixStateKind, usize>,
    /// Findings suppressed by the policy.
    pub suppressed: usize,
}

/// A scan's result: what the image holds and what affects it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    #[schemars(extend("const" = SCHEMA_VERSION))]
    pub schema_version: u32,
    /// The image reference as given (`oci-dir:/path:tag`).
    pub source: String,
    /// Manifest and layer digests.
    pub image: ImageInfo,
    /// The detected OS.
    pub os: Option<OsRelease>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why the verdict is what it is, in words.
    pub verdict_reason: String,
    /// The advisory ecosystem the packages were matched in (`Debian:12`).
    pub ecosystem: Option<String>,
    /// Counts.
    pub summary: Summary,
    /// Upgrades that clear the fixable findings, most serious first.
    pub remediation: Vec<RemediationStep>,
    /// The catalogers that looked at the image (`dpkg`, `apk`, `rpm`, ...):
    /// what kinds of packages the inventory covers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub catalogers: Vec<String>,
    /// Installed packages.
    pub packages: Vec<Package>,
    /// Findings that count, most serious first.
    pub findings: Vec<Finding>,
    /// Findings the policy suppressed, each with its reason.
    #[serde(default)]
    pub suppressed: Vec<Finding>,
    /// Ignore rules past their expiry date: they suppressed nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expired_ignores: Vec<IgnoreRule>,
    /// Problems that did not stop the scan (skipped entries, unreadable versions).
    pub warnings: Vec<String>,
}

impl Report {
    /// [`Report::generate_with_policy`] under the default policy (everything counts).
    pub fn generate(
        source: impl Into<String>,
        image: ImageInfo,
        inventory: Inventory,
        db: &dyn AdvisorySource,
    ) -> Report {
        Self::generate_with_policy(source, image, inventory, db, &Policy::default())
    }

    /// Matches the inventory against the advisories and classifies the result.
    ///
    /// Each package is looked up by its *source* package and source version
    /// (dpkg `Source:`, rpm SOURCERPM, apk origin) in the ecosystem of the
    /// image's OS; findings are reported per installed binary package.
    pub fn generate_with_policy(
        source: impl Into<String>,
        image: ImageInfo,
        inventory: Inventory,
        db: &dyn AdvisorySource,
        policy: &Policy,
    ) -> Report {
        Self::generate_shared(source, image, inventory, db, policy, None)
    }

    /// [`Report::generate_with_policy`] for one of many inventories matched
    /// against the same `db`: what a (source package, version) amounts to
    /// (its advisories grouped into vulnerabilities) is worked out once per
    /// `cache`, whichever report asks first. Gives exactly what
    /// [`Report::generate_with_policy`] gives. The cache must not outlive
    /// `db`'s contents: keep one per batch, against one database.
    ///
    /// ```
    /// use trawl_advisory::AdvisoryDb;
    /// use trawl_classify::{MatchCache, Policy, Report};
    /// # let inventory = trawl_inventory::Inventory::default();
    /// # let image = trawl_classify::ImageInfo::default();
    /// let db = AdvisoryDb::new();
    /// let cache = MatchCache::default();
    /// let report = Report::generate_cached("img", image, inventory, &db, &Policy::default(), &cache);
    /// # assert!(report.findings.is_empty());
    /// ```
    pub fn generate_cached(
        source: impl Into<String>,
        image: ImageInfo,
        inventory: Inventory,
        db: &dyn AdvisorySource,
        policy: &Policy,
        cache: &MatchCache,
    ) -> Report {
        Self::generate_shared(source, image, inventory, db, policy, Some(cache))
    }

    fn generate_shared(
        source: impl Into<String>,
        image: ImageInfo,
        inventory: Inventory,
        db: &dyn AdvisorySource,
        policy: &Policy,
        cache: Option<&MatchCache>,
    ) -> Report {
        let judged = Judgement::judge(&image, &inventory, db, policy, cache);
        let findings: Vec<Finding> = judged
            .counted
            .iter()
            .map(|h| judged.finding(h, policy))
            .collect();
        let suppressed: Vec<Finding> = judged
            .suppressed
            .iter()
            .map(|h| judged.finding(h, policy))
            .collect();
        let Judgement {
            verdict,
            verdict_reason,
            summary,
            ecosystem,
            uncovered,
            unmatched,
            ..
        } = judged;
        // The inventory's problems, then the ecosystems without advisory
        // data, then the packages the advisories could not be asked about.
        let mut warnings: Vec<String> =
            inventory.warnings.iter().map(ToString::to_string).collect();
        warnings.extend(uncovered);
        warnings.extend(unmatched);
        let expired_ignores: Vec<IgnoreRule> = policy
            .ignores
            .iter()
            .filter(|r| r.expired(&policy.today))
            .cloned()
            .collect();
        let Inventory {
            os,
            packages,
            catalogers,
            ..
        } = inventory;
        let mut remediation = remediate(&findings, &packages, ecosystem.as_deref());
        past_known_fixes(&mut remediation, &findings, db);
        Report {
            schema_version: SCHEMA_VERSION,
            source: source.into(),
            image,
            os,
            verdict,
            verdict_reason,
            ecosystem,
            summary,
            remediation,
            catalogers,
            packages,
            findings,
            suppressed,
            expired_ignores,
            warnings: cap_warnings(warnings),
        }
    }
}

/// What a report decides about an inventory, without what it explains:
/// the verdict, its reason, the summary and each finding's facts (its ids,
/// package, versions, fix, severity, ecosystem, layer and path), exactly as
/// [`Report::generate_cached`] gives them, but without the report's texts
/// (remediation, summaries, suppression reasons), its remediation steps or
/// copies of the inventory's packages: what a service that re-judges many
/// stored inventories keeps of each. The findings borrow from the
/// inventory and from the vulnerabilities the [`MatchCache`] holds.
///
/// ```
/// use trawl_advisory::AdvisoryDb;
/// use trawl_classify::{ImageInfo, Judgement, MatchCache, Policy, Report, Verdict};
/// use trawl_inventory::Inventory;
///
/// let (db, policy, cache) = (AdvisoryDb::new(), Policy::default(), MatchCache::default());
/// let (image, inventory) = (ImageInfo::default(), Inventory::default());
/// let judged = Judgement::generate_cached(&image, &inventory, &db, &policy, &cache);
/// let report = Report::generate_cached("img", image.clone(), inventory.clone(), &db, &policy, &cache);
/// assert_eq!(judged.verdict(), Verdict::Unsupported);
/// assert_eq!(judged.verdict(), report.verdict);
/// assert_eq!(judged.verdict_reason(), report.verdict_reason);
/// assert_eq!(judged.summary(), &report.summary);
/// assert_eq!(judged.findings().len(), report.findings.len());
/// ```
#[derive(Debug)]
pub struct Judgement<'i> {
    verdict: Verdict,
    verdict_reason: String,
    summary: Summary,
    /// The OS packages' advisory ecosystem (`Debian:12`).
    ecosystem: Option<String>,
    /// The vulnerabilities the findings are about, per (package, version)
    /// looked up.
    answers: Vec<Arc<Vec<Vuln>>>,
    /// Findings that count, in report order.
    counted: Vec<Hit<'i>>,
    /// Findings the policy suppressed, in report order.
    suppressed: Vec<Hit<'i>>,
    /// Ecosystems without advisory data: why their packages went unjudged.
    uncovered: Vec<String>,
    /// Packages the advisories could not be asked about.
    unmatched: Vec<String>,
}

/// The facts of one finding of a [`Judgement`]: each is the same as the
/// [`Finding`] field of the same name in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FindingFacts<'a> {
    /// [`Finding::id`].
    pub id: &'a str,
    /// [`Finding::aliases`].
    pub aliases: &'a [String],
    /// [`Finding::package`].
    pub package: &'a str,
    /// [`Finding::installed_version`].
    pub installed_version: &'a str,
    /// [`Finding::source_name`].
    pub source_name: &'a str,
    /// [`Finding::source_version`].
    pub source_version: &'a str,
    /// [`Finding::fixed_version`].
    pub fixed_version: Option<&'a str>,
    /// [`Finding::fix_state`].
    pub fix_state: FixStateKind,
    /// [`Finding::severity`].
    pub severity: Severity,
    /// [`Finding::ecosystem`].
    pub ecosystem: &'a str,
    /// [`Finding::layer`].
    pub layer: Option<&'a str>,
    /// [`Finding::path`].
    pub path: Option<&'a str>,
}

/// A finding before it is written out: which vulnerability (by its place
/// in [`Judgement::answers`]) in which package.
#[derive(Debug)]
struct Hit<'i> {
    answer: usize,
    vuln: usize,
    package: &'i Package,
    /// For a language package: its ecosystem and where it is in the image.
    language: Option<(&'static str, String)>,
    vex_status: Option<VexStatus>,
    suppression: Option<Why>,
}

impl Hit<'_> {
    fn path(&self) -> Option<&str> {
        self.language.as_ref().map(|(_, path)| path.as_str())
    }
}

/// Why the policy suppresses a finding: the rule, by its place in the policy.
#[derive(Debug, Clone, Copy)]
enum Why {
    Vex(usize),
    Ignore(usize),
    Threshold,
    Unfixed,
}

impl<'i> Judgement<'i> {
    /// Judges `inventory` (of `image`) against `db` under `policy`, as
    /// [`Report::generate_cached`] does with the same `cache`.
    pub fn generate_cached(
        image: &ImageInfo,
        inventory: &'i Inventory,
        db: &dyn AdvisorySource,
        policy: &Policy,
        cache: &MatchCache,
    ) -> Judgement<'i> {
        Self::judge(image, inventory, db, policy, Some(cache))
    }

    /// [`Report::verdict`].
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// [`Report::verdict_reason`].
    pub fn verdict_reason(&self) -> &str {
        &self.verdict_reason
    }

    /// [`Report::summary`].
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// The findings that count, in the order of [`Report::findings`].
    pub fn findings(&self) -> impl ExactSizeIterator<Item = FindingFacts<'_>> {
        self.counted.iter().map(|h| self.facts(h))
    }

    /// The findings the policy suppressed, in the order of
    /// [`Report::suppressed`].
    pub fn suppressed(&self) -> impl ExactSizeIterator<Item = FindingFacts<'_>> {
        self.suppressed.iter().map(|h| self.facts(h))
    }

    fn vuln(&self, h: &Hit<'_>) -> &Vuln {
        &self.answers[h.answer][h.vuln]
    }

    fn ecosystem_of<'a>(&'a self, h: &'a Hit<'_>) -> &'a str {
        match &h.language {
            Some((ecosystem, _)) => ecosystem,
            None => self.ecosystem.as_deref().unwrap_or_default(),
        }
    }

    fn facts<'a>(&'a self, h: &'a Hit<'_>) -> FindingFacts<'a> {
        let (v, p) = (self.vuln(h), h.package);
        FindingFacts {
            id: &v.id,
            aliases: &v.aliases,
            package: &p.name,
            installed_version: &p.version,
            source_name: &p.source_name,
            source_version: &p.source_version,
            fixed_version: v.fixed.as_deref(),
            fix_state: v.fix_state,
            severity: v.rating.severity,
            ecosystem: self.ecosystem_of(h),
            layer: p.layer.as_deref(),
            path: h.path(),
        }
    }

    /// The report's finding for `h`.
    fn finding(&self, h: &Hit<'_>, policy: &Policy) -> Finding {
        let (v, p) = (self.vuln(h), h.package);
        let ecosystem = self.ecosystem_of(h);
        let mut f = match &h.language {
            Some((_, path)) => {
                let remediation = language_remediation(p, ecosystem, path, v);
                finding(v, p, ecosystem, Some(path.clone()), remediation)
            }
            None => finding(v, p, ecosystem, None, os_remediation(p, v)),
        };
        f.vex_status = h.vex_status;
        f.suppression = h.suppression.map(|why| match why {
            Why::Vex(i) => {
                let s = &policy.vex[i];
                Suppression {
                    by: "vex".into(),
                    reason: format!(
                        "not affected: {}",
                        s.justification.as_deref().unwrap_or_default()
                    ),
                    origin: Some(s.origin.clone()),
                }
            }
            Why::Ignore(i) => {
                let rule = &policy.ignores[i];
                Suppression {
                    by: "ignore-file".into(),
                    reason: rule.reason.clone(),
                    origin: Some(rule.origin.clone()),
                }
            }
            Why::Threshold => Suppression {
                by: "severity-threshold".into(),
                reason: format!(
                    "{} is below the {} threshold",
                    f.severity, policy.severity_threshold
                ),
                origin: None,
            },
            Why::Unfixed => Suppression {
                by: "ignore-unfixed".into(),
                reason: format!("no fixed version ({})", f.fix_state.as_str()),
                origin: None,
            },
        });
        f
    }

    /// Matches the inventory's packages against the advisories and
    /// classifies the result: the work both a report and a judgement do.
    ///
    /// Each package is looked up by its *source* package and source
    /// version (dpkg `Source:`, rpm SOURCERPM, apk origin) in the ecosystem
    /// of the image's OS; findings are reported per installed binary
    /// package.
    fn judge(
        image: &ImageInfo,
        inventory: &'i Inventory,
        db: &dyn AdvisorySource,
        policy: &Policy,
        cache: Option<&MatchCache>,
    ) -> Judgement<'i> {
        let mut incomplete: Vec<String> = inventory
            .warnings
            .iter()
            .filter(|w| w.makes_incomplete())
            .map(ToString::to_string)
            .collect();
        let os = inventory.os.as_ref();
        let ecosystem = os.and_then(OsRelease::osv_ecosystem);
        let packages = &inventory.packages;

        // Language packages are judged in their own ecosystems; an image
        // without an OS package database is judged by them alone.
        let language: Vec<&Package> = packages
            .iter()
            .filter(|p| is_language_matchable(p))
            .collect();
        let unsupported = if inventory.databases.is_empty() {
            language
                .is_empty()
                .then(|| "no OS package database found".to_string())
        } else if os.is_none() {
            Some("unknown OS: no os-release or release file".to_string())
        } else if let (Some(os), None) = (os, &ecosystem) {
            let v = os.version_id.as_deref().unwrap_or("(no version)");
            Some(format!("no advisory data source for {} {v}", os.id))
        } else {
            ecosystem
                .as_deref()
                .filter(|e| !db.has_ecosystem(e))
                .map(|e| format!("the advisory data has no records for {e}"))
        };

        let mut answers = Vec::new();
        let mut hits = Vec::new();
        let mut unmatched = Vec::new();
        if let (None, Some(eco)) = (&unsupported, ecosystem.as_deref()) {
            let os_packages: Vec<&Package> = packages.iter().filter(|p| p.kind.is_os()).collect();
            find(
                eco,
                &os_packages,
                db,
                cache,
                &mut answers,
                &mut hits,
                &mut unmatched,
            );
        }
        let uncovered = find_language(
            &language,
            db,
            cache,
            &mut answers,
            &mut hits,
            &mut unmatched,
        );
        sort_hits(&mut hits, &answers);
        // An ecosystem without advisory data leaves its packages unjudged.
        incomplete.extend(uncovered.iter().cloned());
        // A package the advisories could not be asked about may be
        // affected: the scan is as incomplete as an unread database.
        incomplete.extend(unmatched.iter().cloned());
        let incomplete = summarize(&incomplete);
        let (counted, suppressed) = apply_policy(hits, &answers, packages, image, policy);

        let vuln = |h: &Hit<'_>| &answers[h.answer][h.vuln];
        let (verdict, verdict_reason) = match (unsupported, counted.len()) {
            (_, 0) if !incomplete.is_empty() => {
                (Verdict::Partial, format!("incomplete scan: {incomplete}"))
            }
            (Some(reason), 0) => (Verdict::Unsupported, reason),
            (None, 0) if suppressed.is_empty() => {
                (Verdict::Healthy, "no known vulnerabilities".to_string())
            }
            (None, 0) => (
                Verdict::Healthy,
                format!(
                    "no vulnerabilities count under the policy ({} suppressed)",
                    suppressed.len()
                ),
            ),
            (unsupported, n) => {
                let fixable = counted
                    .iter()
                    .filter(|h| vuln(h).fix_state == FixStateKind::Fixed)
                    .count();
                let mut reason =
                    format!("{n} known vulnerabilities ({fixable} with a fix available)");
                if let Some(os_reason) = unsupported {
                    reason.push_str(&format!(
                        "; the OS packages were not judged, more may exist: {os_reason}"
                    ));
                }
                if !incomplete.is_empty() {
                    reason.push_str(&format!(
                        "; the scan is incomplete, more may exist: {incomplete}"
                    ));
                }
                (Verdict::Unhealthy, reason)
            }
        };
        let mut by_severity: BTreeMap<Severity, usize> =
            Severity::ALL.iter().map(|s| (*s, 0)).collect();
        let mut by_fix_state: BTreeMap<FixStateKind, usize> = [
            FixStateKind::Fixed,
            FixStateKind::Unfixed,
            FixStateKind::WillNotFix,
        ]
        .iter()
        .map(|s| (*s, 0))
        .collect();
        for h in &counted {
            let v = vuln(h);
            *by_severity.entry(v.rating.severity).or_default() += 1;
            *by_fix_state.entry(v.fix_state).or_default() += 1;
        }
        let summary = Summary {
            packages: packages.len(),
            findings: counted.len(),
            fixable: by_fix_state[&FixStateKind::Fixed],
            by_severity,
            by_fix_state,
            suppressed: suppressed.len(),
        };
        Judgement {
            verdict,
            verdict_reason,
            summary,
            ecosystem,
            answers,
            counted,
            suppressed,
            uncovered,
            unmatched,
        }
    }
}

fn scheme(ecosystem: &str) -> Option<VersionScheme> {
    Ecosystem::parse(ecosystem).scheme()
}

/// The larger of two versions under the scheme (the first when they cannot be compared).
fn max_version<'v>(scheme: Option<VersionScheme>, a: &'v str, b: &'v str) -> &'v str {
    match scheme.and_then(|s| s.compare(a, b).ok()) {
        Some(Ordering::Less) => b,
        _ => a,
    }
}

/// The most problems [`Report::warnings`] lists; the rest are counted in
/// one last line, so that a report stays small whatever an image holds.
pub const MAX_REPORT_WARNINGS: usize = 1000;

/// How many reasons for an incomplete scan the verdict reason names.
const INCOMPLETE_REASONS: usize = 3;

/// The first [`INCOMPLETE_REASONS`] reasons, then how many more; empty
/// when there are none.
fn summarize(reasons: &[String]) -> String {
    let mut text = reasons[..reasons.len().min(INCOMPLETE_REASONS)].join("; ");
    if reasons.len() > INCOMPLETE_REASONS {
        text.push_str(&format!(
            "; and {} more (see the warnings)",
            reasons.len() - INCOMPLETE_REASONS
        ));
    }
    text
}

/// The first [`MAX_REPORT_WARNINGS`] warnings, then a count of the rest.
fn cap_warnings(mut warnings: Vec<String>) -> Vec<String> {
    if warnings.len() > MAX_REPORT_WARNINGS {
        let more = warnings.len() - MAX_REPORT_WARNINGS;
        warnings.truncate(MAX_REPORT_WARNINGS);
        warnings.push(format!("{more} more warnings not listed"));
    }
    warnings
}

/// Groups matches that share any id (id, alias or upstream id) into one vulnerability.
fn group_matches<'m, 'a>(matches: &'m [AdvisoryMatch<'a>]) -> Vec<Vec<&'m AdvisoryMatch<'a>>> {
    let ids = |m: &AdvisoryMatch<'_>| -> BTreeSet<String> {
        m.advisory.ids().map(str::to_owned).collect()
    };
    let mut groups: Vec<(BTreeSet<String>, Vec<&AdvisoryMatch<'a>>)> = Vec::new();
    for m in matches {
        let mut mine = ids(m);
        let mut members = vec![m];
        // Merge every existing group that shares an id with this match.
        let mut i = 0;
        while i < groups.len() {
            if groups[i].0.iter().any(|id| mine.contains(id)) {
                let (g_ids, g_members) = groups.swap_remove(i);
                mine.extend(g_ids);
                members.extend(g_members);
            } else {
                i += 1;
            }
        }
        groups.push((mine, members));
    }
    groups.into_iter().map(|(_, m)| m).collect()
}

/// Vendor words outrank CVSS, which outranks nothing; within a rank, the worst.
fn rating_of(m: &AdvisoryMatch<'_>) -> (u8, Rating) {
    if let Some(word) = m.vendor_severity.as_deref()
        && let Ok(severity) = word.parse::<Severity>()
        && severity != Severity::Unknown
    {
        let distro = m
            .affected()
            .package
            .as_ref()
            .map_or("feed", |p| p.ecosystem.split(':').next().unwrap_or("feed"));
        return (
            3,
            Rating {
                severity,
                source: format!("vendor:{distro}"),
                score: None,
            },
        );
    }
    let r = rate(&m.advisory, m.affected());
    let rank = if r.score.is_some() {
        1
    } else if r.severity == Severity::Unknown {
        0
    } else {
        2
    };
    (rank, r)
}

/// What a package and version amount to in an ecosystem: its
/// vulnerabilities, or why it could not be asked about.
type SourceAnswer = Result<Arc<Vec<Vuln>>, String>;

/// What each (source package, version) of OS packages and each (name,
/// version) of language packages amounts to, shared by the reports of a
/// batch matched against one database ([`Report::generate_cached`],
/// [`Judgement::generate_cached`]): images share base layers, so most pairs
/// repeat. Safe to share between threads; grows with the distinct pairs.
#[derive(Default)]
pub struct MatchCache {
    /// By [`cache_key`].
    answers: std::sync::Mutex<HashMap<String, SourceAnswer>>,
}

impl std::fmt::Debug for MatchCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self
            .answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        f.debug_struct("MatchCache").field("answers", &n).finish()
    }
}

/// The vulnerabilities of `names` (one package, or the names the Go
/// toolchain goes by) at `version` in `ecosystem`, from `db`, through
/// `cache` when there is one (keyed by the first name).
fn vulns_of(
    ecosystem: &str,
    names: &[&str],
    version: &str,
    db: &dyn AdvisorySource,
    cache: Option<&MatchCache>,
) -> SourceAnswer {
    let ask = || -> SourceAnswer {
        let mut matches = Vec::new();
        for name in names {
            let query = PackageQuery {
                ecosystem,
                name,
                version,
            };
            matches.extend(db.matches(&query).map_err(|e| e.to_string())?);
        }
        let scheme = scheme(ecosystem);
        Ok(Arc::new(
            group_matches(&matches)
                .iter()
                .map(|group| vulnerability(group, scheme))
                .collect(),
        ))
    };
    let Some(cache) = cache else { return ask() };
    thread_local! {
        /// The last key looked up, kept for its capacity: a key is
        /// allocated only for an answer not known yet.
        static KEY: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    let name = names.first().copied().unwrap_or_default();
    let lock = || {
        cache
            .answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    let known = KEY.with_borrow_mut(|key| {
        write_cache_key(key, ecosystem, name, version);
        lock().get(key.as_str()).cloned()
    });
    if let Some(known) = known {
        return known;
    }
    // Worked out without holding the lock, so other threads go on.
    let answer = ask();
    lock()
        .entry(cache_key(ecosystem, name, version))
        .or_insert(answer)
        .clone()
}

/// The [`MatchCache`] key of (ecosystem, name, version): one string, each
/// of the first two preceded by its length, so that no two triples share
/// a key whatever their text holds.
fn cache_key(ecosystem: &str, name: &str, version: &str) -> String {
    let mut key = String::new();
    write_cache_key(&mut key, ecosystem, name, version);
    key
}

/// [`cache_key`] into `key` (cleared first).
fn write_cache_key(key: &mut String, ecosystem: &str, name: &str, version: &str) {
    use std::fmt::Write as _;
    key.clear();
    key.reserve(ecosystem.len() + name.len() + version.len() + 12);
    // Writing into a String cannot fail.
    let _ = write!(
        key,
        "{}:{ecosystem}{}:{name}{version}",
        ecosystem.len(),
        name.len()
    );
}

/// One vulnerability: what a group of matches about it says together.
#[derive(Debug)]
struct Vuln {
    id: String,
    aliases: Vec<String>,
    summary: Option<String>,
    fixed: Option<String>,
    fix_state: FixStateKind,
    rating: Rating,
}

fn vulnerability(group: &[&AdvisoryMatch<'_>], scheme: Option<VersionScheme>) -> Vuln {
    let mut ids: BTreeSet<&str> = BTreeSet::new();
    for m in group {
        ids.extend(m.advisory.ids());
    }
    let cves: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|i| i.starts_with("CVE-"))
        .collect();
    let id = match cves.as_slice() {
        [one] => one.to_string(),
        _ => group
            .iter()
            .map(|m| m.advisory.id())
            .min()
            .unwrap_or_default()
            .to_string(),
    };
    let aliases: Vec<String> = ids
        .iter()
        .filter(|i| **i != id)
        .map(|i| i.to_string())
        .collect();
    let summary = group.iter().find_map(|m| m.advisory.summary.clone());

    // A fix anywhere means a fix exists; the highest fixed version is
    // the one every feed agrees fixes it. Else a vendor's will-not-fix.
    let mut fixed: Option<&str> = None;
    let mut will_not_fix = false;
    for m in group {
        match &m.fix_state {
            FixState::Fixed(v) => {
                fixed = Some(fixed.map_or(v.as_str(), |f| max_version(scheme, f, v)))
            }
            FixState::WillNotFix => will_not_fix = true,
            _ => {}
        }
    }
    let fix_state = match (fixed, will_not_fix) {
        (Some(_), _) => FixStateKind::Fixed,
        (None, true) => FixStateKind::WillNotFix,
        (None, false) => FixStateKind::Unfixed,
    };
    let (_, rating) = group
        .iter()
        .map(|m| rating_of(m))
        .max_by(|a, b| a.0.cmp(&b.0).then(a.1.severity.cmp(&b.1.severity)))
        .unwrap_or((
            0,
            Rating {
                severity: Severity::Unknown,
                source: "none".into(),
                score: None,
            },
        ));
    Vuln {
        id,
        aliases,
        summary,
        fixed: fixed.map(str::to_string),
        fix_state,
        rating,
    }
}

/// OS packages: each (source package, source version) is looked up once in
/// the distribution's ecosystem; findings are reported per binary package.
/// The vulnerabilities go to `answers`, the findings (in this order: by
/// source package, vulnerability, binary package) to `hits`.
fn find<'i>(
    ecosystem: &str,
    packages: &[&'i Package],
    db: &dyn AdvisorySource,
    cache: Option<&MatchCache>,
    answers: &mut Vec<Arc<Vec<Vuln>>>,
    hits: &mut Vec<Hit<'i>>,
    warnings: &mut Vec<String>,
) {
    // Many binaries share a source package: query each (source, version)
    // once. By source package and version, each one's binaries in inventory
    // order (a stable sort: one vector, not a map of vectors).
    let mut by_source: Vec<&'i Package> = packages.to_vec();
    by_source.sort_by(|a, b| {
        (a.source_name.as_str(), a.source_version.as_str())
            .cmp(&(b.source_name.as_str(), b.source_version.as_str()))
    });
    let sources = by_source
        .chunk_by(|a, b| a.source_name == b.source_name && a.source_version == b.source_version);
    for binaries in sources {
        let (name, version) = (
            binaries[0].source_name.as_str(),
            binaries[0].source_version.as_str(),
        );
        let vulns = match vulns_of(ecosystem, &[name], version, db, cache) {
            Ok(vulns) => vulns,
            Err(e) => {
                warnings.push(format!("source package {name} {version}: not matched: {e}"));
                continue;
            }
        };
        if vulns.is_empty() {
            continue;
        }
        let answer = answers.len();
        hits.reserve(vulns.len() * binaries.len());
        for vuln in 0..vulns.len() {
            for p in binaries {
                hits.push(Hit {
                    answer,
                    vuln,
                    package: p,
                    language: None,
                    vex_status: None,
                    suppression: None,
                });
            }
        }
        answers.push(vulns);
    }
}

/// What to do about an OS package's finding.
fn os_remediation(p: &Package, v: &Vuln) -> String {
    match (&v.fixed, v.fix_state) {
        (Some(fix), _) if p.name == p.source_name => {
            format!("upgrade {} to {fix} or later", p.name)
        }
        (Some(fix), _) => format!(
            "upgrade {} (source {}) to {fix} or later",
            p.name, p.source_name
        ),
        (None, FixStateKind::WillNotFix) => {
            format!(
                "no fix: the distribution will not fix {} in this release",
                p.source_name
            )
        }
        (None, _) => format!("no fixed version of {} is available yet", p.source_name),
    }
}

fn finding(
    v: &Vuln,
    p: &Package,
    ecosystem: &str,
    path: Option<String>,
    remediation: String,
) -> Finding {
    let language = path.is_some();
    Finding {
        id: v.id.clone(),
        aliases: v.aliases.clone(),
        summary: v.summary.clone(),
        package: p.name.clone(),
        installed_version: p.version.clone(),
        source_name: p.source_name.clone(),
        source_version: p.source_version.clone(),
        fixed_version: v.fixed.clone(),
        fix_state: v.fix_state,
        severity: v.rating.severity,
        severity_source: v.rating.source.clone(),
        cvss_score: v.rating.score,
        ecosystem: ecosystem.to_string(),
        layer: p.layer.clone(),
        remediation,
        path,
        purl: language.then(|| p.purl.clone()),
        vex_status: None,
        suppression: None,
    }
}

/// Whether a language package is matched against its ecosystem's feeds: it
/// has an ecosystem, a version to compare (not a Go `(devel)` main module),
/// and no OS package owns its metadata (the OS package's advisories, which
/// know the distribution's backports, cover it).
fn is_language_matchable(p: &Package) -> bool {
    p.kind.osv_ecosystem().is_some()
        && p.owned_by.is_none()
        && !p.version.trim().is_empty()
        && p.version != "(devel)"
}

/// The Go vulnerability database's names for the Go toolchain a binary was
/// built with: the standard library, and the toolchain itself.
const GO_TOOLCHAIN_NAMES: [&str; 2] = ["stdlib", "toolchain"];

/// Language packages: each is matched in its own OSV ecosystem by name (the
/// advisory side canonicalises it, see `trawl_advisory::canonical`), and every
/// instance (path in the image) is a finding of its own. The vulnerabilities
/// go to `answers`, the findings to `hits`. Returns, for every ecosystem the
/// advisory data has no records for, why its packages went unjudged.
fn find_language<'i>(
    packages: &[&'i Package],
    db: &dyn AdvisorySource,
    cache: Option<&MatchCache>,
    answers: &mut Vec<Arc<Vec<Vuln>>>,
    hits: &mut Vec<Hit<'i>>,
    warnings: &mut Vec<String>,
) -> Vec<String> {
    let mut by_ecosystem: BTreeMap<&'static str, Vec<&'i Package>> = BTreeMap::new();
    for p in packages {
        if let Some(eco) = p.kind.osv_ecosystem() {
            by_ecosystem.entry(eco).or_default().push(p);
        }
    }
    let mut uncovered = Vec::new();
    for (ecosystem, packages) in by_ecosystem {
        if !db.has_ecosystem(ecosystem) {
            let n = packages.len();
            uncovered.push(format!(
                "no advisory data for {ecosystem} ({n} package{} not matched)",
                if n == 1 { "" } else { "s" }
            ));
            continue;
        }
        // Instances of one (name, version) share their answer.
        let mut by_name: BTreeMap<(&str, &str), Vec<&'i Package>> = BTreeMap::new();
        for p in packages {
            by_name.entry((&p.name, &p.version)).or_default().push(p);
        }
        for ((name, version), instances) in by_name {
            let is_go_toolchain = ecosystem == "Go" && name == "stdlib";
            let names: &[&str] = if is_go_toolchain {
                &GO_TOOLCHAIN_NAMES
            } else {
                std::slice::from_ref(&name)
            };
            let vulns = match vulns_of(ecosystem, names, version, db, cache) {
                Ok(vulns) => vulns,
                Err(e) => {
                    warnings.push(format!(
                        "{ecosystem} package {name} {version}: not matched: {e}"
                    ));
                    continue;
                }
            };
            if vulns.is_empty() {
                continue;
            }
            let answer = answers.len();
            for vuln in 0..vulns.len() {
                for p in &instances {
                    hits.push(Hit {
                        answer,
                        vuln,
                        package: p,
                        language: Some((ecosystem, p.location())),
                        vex_status: None,
                        suppression: None,
                    });
                }
            }
            answers.push(vulns);
        }
    }
    uncovered
}

/// What to do about a language package's finding, naming where it applies.
fn language_remediation(p: &Package, ecosystem: &str, path: &str, v: &Vuln) -> String {
    let name = &p.name;
    match (&v.fixed, p.kind) {
        (Some(fix), PackageKind::Golang) if name == "stdlib" => {
            format!("rebuild /{path} with Go {fix} or later (Go toolchain)")
        }
        (Some(fix), PackageKind::Golang | PackageKind::Cargo) => format!(
            "rebuild /{path} with {name} {fix} or later (installed {}; {ecosystem})",
            p.version
        ),
        (Some(fix), _) => format!(
            "upgrade {name} from {} to {fix} ({ecosystem}, /{path})",
            p.version
        ),
        (None, _) => format!("no fixed version of {name} is available yet ({ecosystem}, /{path})"),
    }
}

/// What [`sort_hits`] orders a finding by: severity (most serious first),
/// package, id, path, and its place before.
type HitKey<'a> = (
    std::cmp::Reverse<Severity>,
    &'a str,
    &'a str,
    Option<&'a str>,
    usize,
);

/// Sorts findings as reports list them: most serious first, then by
/// package, id and path; findings alike in all of these keep their order
/// (a stable sort). The keys are gathered once, with each finding's place
/// as the last, and sorted unstably: the same order as a stable sort by the
/// keys, without reaching each vulnerability through two indices at every
/// comparison (the sort was a tenth of a rescan's judging).
fn sort_hits(hits: &mut Vec<Hit<'_>>, answers: &[Arc<Vec<Vuln>>]) {
    let order: Vec<usize> = {
        let mut keys: Vec<HitKey<'_>> = hits
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let v = &answers[h.answer][h.vuln];
                (
                    std::cmp::Reverse(v.rating.severity),
                    h.package.name.as_str(),
                    v.id.as_str(),
                    h.path(),
                    i,
                )
            })
            .collect();
        keys.sort_unstable();
        keys.into_iter().map(|k| k.4).collect()
    };
    let mut unsorted: Vec<Option<Hit<'_>>> = hits.drain(..).map(Some).collect();
    hits.extend(order.into_iter().filter_map(|i| unsorted[i].take()));
}

/// Splits findings into those that count and those the policy suppresses
/// (each with the rule that does), in their order.
fn apply_policy<'i>(
    hits: Vec<Hit<'i>>,
    answers: &[Arc<Vec<Vuln>>],
    packages: &[Package],
    image: &ImageInfo,
    policy: &Policy,
) -> (Vec<Hit<'i>>, Vec<Hit<'i>>) {
    // Only VEX statements look at package URLs.
    let purl_of: HashMap<&str, &str> = if policy.vex.is_empty() {
        HashMap::new()
    } else {
        packages
            .iter()
            .map(|p| (p.name.as_str(), p.purl.as_str()))
            .collect()
    };
    // Most findings count: room for all of them at once.
    let (mut counted, mut suppressed) = (Vec::with_capacity(hits.len()), Vec::new());
    for mut h in hits {
        let v = &answers[h.answer][h.vuln];
        let p = h.package;
        let mut suppression = None;
        if !policy.vex.is_empty() || !policy.ignores.is_empty() {
            let ids: Vec<&str> = std::iter::once(v.id.as_str())
                .chain(v.aliases.iter().map(String::as_str))
                .collect();
            let purl = match &h.language {
                Some(_) => p.purl.as_str(),
                None => purl_of.get(p.name.as_str()).copied().unwrap_or_default(),
            };
            let about_this = |vulns: &[String], products: &[String]| {
                vulns.iter().any(|v| ids.contains(&v.as_str()))
                    && products.iter().any(|p| {
                        product_matches(p, purl)
                            || image
                                .manifest_digest
                                .as_deref()
                                .is_some_and(|d| p.ends_with(d))
                    })
            };
            for (i, s) in policy.vex.iter().enumerate() {
                if about_this(&s.vulnerability, &s.products) {
                    if s.status == VexStatus::NotAffected {
                        suppression = Some(Why::Vex(i));
                    } else {
                        h.vex_status = Some(s.status);
                    }
                }
            }
            if suppression.is_none()
                && let Some(i) = policy.ignores.iter().position(|r| {
                    !r.expired(&policy.today)
                        && ids.contains(&r.id.as_str())
                        && r.package
                            .as_deref()
                            .is_none_or(|pkg| pkg == p.name || pkg == p.source_name)
                })
            {
                suppression = Some(Why::Ignore(i));
            }
        }
        let severity = v.rating.severity;
        if suppression.is_none()
            && severity != Severity::Unknown
            && severity < policy.severity_threshold
        {
            suppression = Some(Why::Threshold);
        }
        if suppression.is_none() && policy.ignore_unfixed && v.fix_state != FixStateKind::Fixed {
            suppression = Some(Why::Unfixed);
        }
        h.suppression = suppression;
        match suppression {
            Some(_) => suppressed.push(h),
            None => counted.push(h),
        }
    }
    (counted, suppressed)
}

/// One step per package (per instance, for language packages) with a
/// fixable finding: upgrade to the highest fixed version among them, which is
/// the smallest version that fixes them all.
fn remediate(
    findings: &[Finding],
    packages: &[Package],
    ecosystem: Option<&str>,
) -> Vec<RemediationStep> {
    let mut steps: BTreeMap<(&str, Option<&str>), RemediationStep> = BTreeMap::new();
    for f in findings {
        let language = f.path.is_some();
        let scheme = if language {
            scheme(&f.ecosystem)
        } else {
            ecosystem.and_then(scheme)
        };
        let step = steps
            .entry((f.package.as_str(), f.path.as_deref()))
            .or_insert_with(|| RemediationStep {
                package: f.package.clone(),
                path: f.path.clone(),
                ecosystem: language.then(|| f.ecosystem.clone()),
                from: f.installed_version.clone(),
                to: String::new(),
                fixes: Vec::new(),
                max_severity: Severity::Unknown,
                layer: match &f.path {
                    Some(path) => f.layer.clone().or_else(|| {
                        packages
                            .iter()
                            .find(|p| p.name == f.package && p.location() == *path)
                            .and_then(|p| p.layer.clone())
                    }),
                    None => packages
                        .iter()
                        .find(|p| p.name == f.package)
                        .and_then(|p| p.layer.clone()),
                },
                still_unfixed: Vec::new(),
            });
        match &f.fixed_version {
            Some(v) => {
                step.to = if step.to.is_empty() {
                    v.clone()
                } else {
                    max_version(scheme, &step.to, v).to_string()
                };
                if !step.fixes.contains(&f.id) {
                    step.fixes.push(f.id.clone());
                }
                step.max_severity = step.max_severity.max(f.severity);
            }
            None => step.still_unfixed.push(f.id.clone()),
        }
    }
    let mut steps: Vec<RemediationStep> =
        steps.into_values().filter(|s| !s.to.is_empty()).collect();
    steps.sort_by(|a, b| {
        b.max_severity
            .cmp(&a.max_severity)
            .then_with(|| b.fixes.len().cmp(&a.fixes.len()))
            .then_with(|| a.package.cmp(&b.package))
            .then_with(|| a.path.cmp(&b.path))
    });
    steps
}

/// Raises each step's target past fixable advisories that affect the target
/// version itself (a fix release that introduced another vulnerability, fixed
/// later), so that applying the steps leaves no fixable finding behind.
/// Advisories the target is affected by with no fix are not followed: they
/// will show up as findings after the upgrade, as they would now.
fn past_known_fixes(steps: &mut [RemediationStep], findings: &[Finding], db: &dyn AdvisorySource) {
    for step in steps.iter_mut() {
        let Some(first) = findings
            .iter()
            .find(|f| f.package == step.package && f.path == step.path)
        else {
            continue;
        };
        let ecosystem = first.ecosystem.as_str();
        let scheme = scheme(ecosystem);
        let source = first.source_name.as_str();
        let names: &[&str] =
            if first.path.is_some() && ecosystem == "Go" && first.package == "stdlib" {
                &GO_TOOLCHAIN_NAMES
            } else {
                std::slice::from_ref(&source)
            };
        // Each round moves the target strictly up; a feed that keeps
        // pointing further stops after a few rounds.
        for _ in 0..8 {
            let mut matches = Vec::new();
            for name in names {
                let query = PackageQuery {
                    ecosystem,
                    name,
                    version: &step.to,
                };
                if let Ok(m) = db.matches(&query) {
                    matches.extend(m);
                }
            }
            let not_affected: BTreeSet<&str> = matches
                .iter()
                .filter(|m| m.fix_state == FixState::NotAffected)
                .flat_map(|m| std::iter::once(m.advisory.id()).chain(m.advisory.aliases()))
                .collect();
            let mut target = step.to.clone();
            for m in &matches {
                let ids = || std::iter::once(m.advisory.id()).chain(m.advisory.aliases());
                if let (Some(fix), false) =
                    (&m.fixed_version, ids().any(|i| not_affected.contains(i)))
                {
                    target = max_version(scheme, &target, fix).to_string();
                }
            }
            if target == step.to {
                break;
            }
            step.to = target;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trawl_advisory::AdvisoryDb;

    #[test]
    fn cache_keys_tell_triples_apart() {
        let triples = [
            ("Debian:12", "a", "1"),
            ("Debian:12", "a1", ""),
            ("Debian:12a", "", "1"),
            ("Debian:1", "2a", "1"),
            ("1:x", "", ""),
            ("", "1:x", ""),
            ("", "", "1:x"),
        ];
        let keys: BTreeSet<String> = triples.iter().map(|(e, n, v)| cache_key(e, n, v)).collect();
        assert_eq!(keys.len(), triples.len());
    }

    #[test]
    fn no_database_is_unsupported_never_healthy() {
        let r = Report::generate(
            "dir:/x",
            ImageInfo::default(),
            Inventory::default(),
            &AdvisoryDb::new(),
        );
        assert_eq!(r.verdict, Verdict::Unsupported);
        assert_eq!(r.verdict_reason, "no OS package database found");
    }
}
