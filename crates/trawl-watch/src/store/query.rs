//! Registry-wide questions over the `findings` rows: which vulnerabilities
//! the images have ([`Store::vulnerabilities`]), which images have one
//! ([`Store::vulnerability`], by any id or alias), the findings across
//! images a page at a time ([`Store::findings_page`]), and counts
//! ([`Store::summary`]); each seen through a token's [`Scope`].
//!
//! Both stores run the same SQL (built here, in each one's dialect: its
//! placeholders, its JSON aggregate, its id lookup), so they give the same
//! answers. Only the findings that count are asked about: those the policy
//! suppresses are left out everywhere.
//!
//! An image is *in* a repository when a tag (or its untagged listing)
//! names it there. A repository prefix `team-a` covers `team-a` and
//! `team-a/…`, not `team-ab`; a trailing `/` is the same prefix.
//!
//! [`Store::vulnerabilities`]: super::Store::vulnerabilities
//! [`Store::vulnerability`]: super::Store::vulnerability
//! [`Store::findings_page`]: super::Store::findings_page
//! [`Store::summary`]: super::Store::summary

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};
use trawl::Severity;
use trawl::classify::FixStateKind;

use super::{StoreError, fix_state_of, severity_of_rank, severity_rank};

/// The repositories a token may see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    /// Every repository (the unscoped API token).
    #[default]
    All,
    /// The repositories under these prefixes only: images in none of them
    /// do not exist for this token, and of an image it sees only the tags
    /// in them.
    Prefixes(Vec<String>),
}

impl Scope {
    /// A scope of repository prefixes (a trailing `/` dropped). Empty
    /// prefixes are refused: they would cover everything.
    pub fn prefixes<I, S>(prefixes: I) -> Result<Scope, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut kept = Vec::new();
        for p in prefixes {
            let p = p.as_ref().trim().trim_end_matches('/');
            if p.is_empty() {
                return Err("an empty repository prefix".into());
            }
            kept.push(p.to_string());
        }
        if kept.is_empty() {
            return Err("no repository prefix".into());
        }
        Ok(Scope::Prefixes(kept))
    }

    /// Whether `repository` is in scope.
    pub fn covers(&self, repository: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Prefixes(prefixes) => prefixes.iter().any(|p| under(repository, p)),
        }
    }
}

/// Whether `repository` is `prefix` or below it.
pub(crate) fn under(repository: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    repository == prefix
        || (repository.len() > prefix.len()
            && repository.starts_with(prefix)
            && repository.as_bytes()[prefix.len()] == b'/')
}

/// Which findings a registry-wide question is about; every condition given
/// must hold. Only findings that count (not suppressed) are considered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FindingQuery {
    /// The asking token's scope.
    pub scope: Scope,
    /// At or above this severity (unknown < negligible < … < critical).
    pub severity: Option<Severity>,
    /// This fix state.
    pub fix_state: Option<FixStateKind>,
    /// The binary package, or the source package it was built from.
    pub package: Option<String>,
    /// The feed ecosystem: `Debian:12`, or `Debian` for every release.
    pub ecosystem: Option<String>,
    /// Images in a repository under this prefix.
    pub repository: Option<String>,
    /// The layer (digest) that introduced the package.
    pub layer: Option<String>,
    /// The finding's id or one of its aliases (case-insensitive).
    pub id: Option<String>,
    /// Images pushed at or after this time (Unix seconds).
    pub pushed_since: Option<i64>,
    /// Images pulled at or after this time (Unix seconds).
    pub pulled_since: Option<i64>,
}

/// One row of [`Store::vulnerabilities`](super::Store::vulnerabilities):
/// a vulnerability id and what the matching findings say of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VulnerabilityRow {
    /// The id findings carry.
    pub id: String,
    /// The highest severity among its findings.
    pub severity: Severity,
    /// `fixed` when a fix exists for any of its findings, else `unfixed`
    /// when any is waiting for one, else `will_not_fix`.
    pub fix_state: FixStateKind,
    /// Images with at least one of its findings.
    pub images: i64,
    /// Finding rows (an image may have it in several packages).
    pub findings: i64,
    /// The binary packages it was found in, sorted.
    pub packages: Vec<String>,
    /// Its other ids (DSA, GHSA, …), sorted.
    pub aliases: Vec<String>,
}

/// A finding of one image, as registry-wide answers show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ImageFinding {
    /// The vulnerability id.
    pub id: String,
    /// Its other ids.
    pub aliases: Vec<String>,
    /// The installed binary package.
    pub package: String,
    /// Its installed version.
    pub version: String,
    /// The source package.
    pub source_name: String,
    /// The source version compared.
    pub source_version: String,
    /// The feed ecosystem that matched.
    pub ecosystem: String,
    /// How serious.
    pub severity: Severity,
    /// Fixed, unfixed, will not be fixed.
    pub fix_state: FixStateKind,
    /// The version that fixes it.
    pub fixed_version: Option<String>,
    /// The layer that introduced the package.
    pub layer: Option<String>,
}

/// A repository and tag naming an image (`tag: None`: listed untagged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagName {
    /// The repository.
    pub repository: String,
    /// The tag.
    pub tag: Option<String>,
}

/// An image affected by a vulnerability, with its findings of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AffectedImage {
    /// The manifest digest.
    pub digest: String,
    /// Its repositories and tags (those in the asking token's scope).
    pub tags: Vec<TagName>,
    /// Its verdict.
    pub verdict: Option<String>,
    /// When (Unix seconds; RFC 3339 in JSON) of its last push.
    #[serde(serialize_with = "rfc3339")]
    pub last_pushed: Option<i64>,
    /// When (Unix seconds; RFC 3339 in JSON) of its last pull.
    #[serde(serialize_with = "rfc3339")]
    pub last_pulled: Option<i64>,
    /// Its findings of the vulnerability, in report order.
    pub findings: Vec<ImageFinding>,
}

/// One finding of [`Store::findings_page`](super::Store::findings_page),
/// with its image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RegistryFinding {
    /// The image's manifest digest.
    pub digest: String,
    /// The finding's place in the image's report.
    pub ord: i64,
    /// The image's repositories and tags (in the token's scope).
    pub tags: Vec<TagName>,
    /// The image's verdict.
    pub verdict: Option<String>,
    /// When (Unix seconds; RFC 3339 in JSON) of the image's last push.
    #[serde(serialize_with = "rfc3339")]
    pub last_pushed: Option<i64>,
    /// When (Unix seconds; RFC 3339 in JSON) of the image's last pull.
    #[serde(serialize_with = "rfc3339")]
    pub last_pulled: Option<i64>,
    /// The finding.
    #[serde(flatten)]
    pub finding: ImageFinding,
}

/// A page of findings, and where the next one starts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FindingsPage {
    /// Sorted by severity (highest first), id, digest, place in the report.
    pub findings: Vec<RegistryFinding>,
    /// Give it back for the next page; `None` on the last.
    pub next: Option<Cursor>,
}

/// Where a page of findings starts: after this finding in the sort order.
/// Rows written after a page was read appear on a later page only if they
/// sort after it; none is ever repeated or skipped otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    severity: i16,
    id: String,
    digest: String,
    /// The finding's stable key within its image ([`super::finding_keys`]).
    key: String,
}

impl Cursor {
    /// The opaque text form (URL-safe base64).
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// Reads [`Cursor::encode`]'s form.
    pub fn decode(text: &str) -> Option<Cursor> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim())
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// How many findings and images, in one scope.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RegistrySummary {
    /// Images, by verdict (`not_scanned` for those without one).
    pub images_by_verdict: BTreeMap<String, i64>,
    /// All images.
    pub images: i64,
    /// Finding rows that count.
    pub findings: i64,
    /// Of them, by severity.
    pub findings_by_severity: BTreeMap<Severity, i64>,
    /// Of them, by fix state.
    pub findings_by_fix_state: BTreeMap<FixStateKind, i64>,
    /// The ten packages in the most images (then with the most findings).
    pub top_packages: Vec<Affected>,
    /// The ten repositories with the most findings (then the most affected images).
    pub top_repositories: Vec<Affected>,
}

/// A package or repository and how much of the registry it affects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Affected {
    /// Its name.
    pub name: String,
    /// Images with findings in it.
    pub images: i64,
    /// Finding rows in it.
    pub findings: i64,
}

/// Unix seconds as RFC 3339 (UTC), as the API shows times.
pub(crate) fn rfc3339_text(secs: Option<i64>) -> Option<String> {
    chrono::DateTime::from_timestamp(secs?, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn rfc3339<S: serde::Serializer>(secs: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    rfc3339_text(*secs).serialize(s)
}

/// A value a query binds or reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    Null,
    Int(i64),
    Text(String),
}

impl Value {
    pub(super) fn int(&self) -> i64 {
        match self {
            Value::Int(n) => *n,
            Value::Text(t) => t.parse().unwrap_or(0),
            Value::Null => 0,
        }
    }

    fn opt_int(&self) -> Option<i64> {
        match self {
            Value::Null => None,
            v => Some(v.int()),
        }
    }

    pub(super) fn text(&self) -> String {
        match self {
            Value::Text(t) => t.clone(),
            Value::Int(n) => n.to_string(),
            Value::Null => String::new(),
        }
    }

    fn opt_text(&self) -> Option<String> {
        match self {
            Value::Null => None,
            v => Some(v.text()),
        }
    }
}

/// Which SQL a store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Sqlite,
    Postgres,
}

/// A statement and what it binds.
#[derive(Debug, Clone)]
pub(super) struct Sql {
    dialect: Dialect,
    pub(super) text: String,
    pub(super) params: Vec<Value>,
    /// It holds a repository range ([`Sql::under_any`]): PostgreSQL plans
    /// it for its values each time rather than once for any. How many
    /// rows a prefix covers (one repository, a team, everything) decides
    /// the plan, and a generic plan cannot know it: at 100,000 images the
    /// one PostgreSQL switched to after five runs of a scoped id took
    /// 300 ms (every image of the scope, then its findings), the plan for
    /// the values 3 ms (the id's findings, then the scope's tags).
    /// Statements over the findings are planned per run too
    /// ([`Sql::over_findings`]).
    pub(super) planned_per_run: bool,
}

impl Sql {
    pub(super) fn new(dialect: Dialect) -> Sql {
        Sql {
            dialect,
            text: String::new(),
            params: Vec::new(),
            planned_per_run: false,
        }
    }

    /// The statement reads the findings: on PostgreSQL the `findings`
    /// view, a union with a join of links and package rows (the `layout`
    /// module), which a generic plan gets wrong: not knowing how few
    /// package rows an id selects, it merges every link of the registry
    /// (90-150 ms at 20,000 images, where the plan for the values takes
    /// 2-20 ms). So it is planned for its values each time.
    fn over_findings(mut self) -> Sql {
        self.planned_per_run = true;
        self
    }

    /// Binds `value`; its placeholder (typed for PostgreSQL, which infers
    /// nothing from a comparison with a `smallint`).
    fn bind(&mut self, value: Value) -> String {
        let typ = match value {
            Value::Int(_) => "bigint",
            _ => "text",
        };
        self.params.push(value);
        let n = self.params.len();
        match self.dialect {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}::{typ}"),
        }
    }

    pub(super) fn text_param(&mut self, text: &str) -> String {
        self.bind(Value::Text(text.to_string()))
    }

    /// Text compared byte-wise, as SQLite does.
    fn c(&self, expr: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => expr.to_string(),
            Dialect::Postgres => format!("{expr} COLLATE \"C\""),
        }
    }

    /// The JSON array of the distinct values of `expr` (text).
    fn json_set(&self, expr: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => format!("json_group_array(DISTINCT {expr})"),
            Dialect::Postgres => format!("json_agg(DISTINCT {expr})::text"),
        }
    }

    /// The finding's aliases as a JSON array (text).
    fn aliases(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "f.aliases",
            Dialect::Postgres => "to_json(f.aliases)::text",
        }
    }

    /// The order of findings within an image's report, for the findings
    /// table as `t`: severity (highest first), package, id, key; what
    /// [`trawl::Report`] sorts by (severity, package, id, path), with the
    /// key's version and repeat count after the path.
    fn report_order(&self, t: &str) -> String {
        format!(
            "{t}.severity DESC, {}, {}, {}",
            self.c(&format!("{t}.package")),
            self.c(&format!("{t}.id")),
            self.c(&format!("{t}.fkey"))
        )
    }

    /// How many findings `g` of the image of the finding `p` that count
    /// come before it in report order ([`Sql::report_order`]): its place
    /// in the report's findings.
    fn before_in_report(&self, g: &str, p: &str) -> String {
        let c = |t: &str, col: &str| self.c(&format!("{t}.{col}"));
        let not_suppressed = match self.dialect {
            Dialect::Sqlite => format!("{g}.suppressed = 0"),
            Dialect::Postgres => format!("NOT {g}.suppressed"),
        };
        format!(
            "SELECT count(*) FROM findings {g} WHERE {g}.digest = {p}.digest AND {not_suppressed}
             AND ({g}.severity > {p}.severity OR ({g}.severity = {p}.severity
                  AND ({gp}, {gi}, {gk}) < ({pp}, {pi}, {pk})))",
            gp = c(g, "package"),
            gi = c(g, "id"),
            gk = c(g, "fkey"),
            pp = c(p, "package"),
            pi = c(p, "id"),
            pk = c(p, "fkey"),
        )
    }

    /// The tables (or views) that together hold the findings: SQLite's
    /// `findings`; PostgreSQL's own rows and its normalized ones (the
    /// `findings` view is their union; see the `layout` module).
    fn finding_tables(&self) -> &'static [&'static str] {
        match self.dialect {
            Dialect::Sqlite => &["findings"],
            Dialect::Postgres => &["findings_own", "findings_normalized"],
        }
    }

    fn not_suppressed(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "f.suppressed = 0",
            Dialect::Postgres => "NOT f.suppressed",
        }
    }

    /// `expr` is one of the strings of the JSON array `list`.
    fn in_json(&mut self, expr: &str, list: &[String]) -> String {
        let json = serde_json::to_string(list).unwrap_or_else(|_| "[]".into());
        let p = self.text_param(&json);
        match self.dialect {
            Dialect::Sqlite => format!("{expr} IN (SELECT value FROM json_each({p}))"),
            Dialect::Postgres => format!("{expr} IN (SELECT json_array_elements_text({p}::json))"),
        }
    }

    /// The finding `f` has this id or alias.
    fn has_key(&mut self, key: &str) -> String {
        let p = self.text_param(&key.to_ascii_lowercase());
        match self.dialect {
            Dialect::Sqlite => {
                format!("f.n IN (SELECT finding FROM finding_ids WHERE key = {p})")
            }
            Dialect::Postgres => format!("f.keys @> ARRAY[{p}]"),
        }
    }

    /// `repo` (an expression) is under one of `prefixes`: equal to one, or
    /// in the byte-wise range `[p/, p0)` (`'0'` is the byte after `'/'`),
    /// which holds exactly the names that start with `p/`. A range, so
    /// that an index on the repository (byte-wise: SQLite's `BINARY`,
    /// PostgreSQL's `COLLATE "C"`) finds the names.
    pub(super) fn under_any(&mut self, repo: &str, prefixes: &[String]) -> String {
        self.planned_per_run = true;
        let r = self.c(repo);
        let parts: Vec<String> = prefixes
            .iter()
            .map(|p| {
                let p = self.text_param(p.trim_end_matches('/'));
                format!("{r} = {p} OR ({r} >= {p} || '/' AND {r} < {p} || '0')")
            })
            .collect();
        format!("({})", parts.join(" OR "))
    }

    /// The image `digest` (an expression) is in a repository that the
    /// scope covers and that is under `repository`: one tag row must hold
    /// both, so a filter cannot tell of repositories out of scope.
    fn image_in(&mut self, digest: &str, scope: &Scope, repository: Option<&str>) -> String {
        let mut conds = Vec::new();
        if let Scope::Prefixes(prefixes) = scope {
            conds.push(self.under_any("t.repository", prefixes));
        }
        if let Some(r) = repository {
            conds.push(self.under_any("t.repository", &[r.to_string()]));
        }
        if conds.is_empty() {
            return "true".into();
        }
        format!(
            "EXISTS (SELECT 1 FROM tags t WHERE t.digest = {digest} AND {})",
            conds.join(" AND ")
        )
    }

    /// The conditions of `q` on findings `f` joined with images `i`.
    fn finding_conditions(&mut self, q: &FindingQuery) -> String {
        let mut conds = vec![self.not_suppressed().to_string()];
        if let Some(s) = q.severity {
            let p = self.bind(Value::Int(severity_rank(s).into()));
            conds.push(format!("f.severity >= {p}"));
        }
        if let Some(k) = q.fix_state {
            let p = self.text_param(k.as_str());
            conds.push(format!("f.fix_state = {p}"));
        }
        if let Some(pkg) = &q.package {
            let p = self.text_param(pkg);
            conds.push(format!("(f.package = {p} OR f.source_name = {p})"));
        }
        if let Some(e) = &q.ecosystem {
            let p = self.text_param(e);
            conds.push(format!(
                "(f.ecosystem = {p} OR substr(f.ecosystem, 1, length({p}) + 1) = {p} || ':')"
            ));
        }
        if let Some(l) = &q.layer {
            let p = self.text_param(l);
            conds.push(format!("f.layer = {p}"));
        }
        if let Some(id) = &q.id {
            conds.push(self.has_key(id));
        }
        if let Some(t) = q.pushed_since {
            let p = self.bind(Value::Int(t));
            conds.push(format!("i.last_pushed >= {p}"));
        }
        if let Some(t) = q.pulled_since {
            let p = self.bind(Value::Int(t));
            conds.push(format!("i.last_pulled >= {p}"));
        }
        conds.push(self.image_in("f.digest", &q.scope, q.repository.as_deref()));
        conds.join(" AND ")
    }
}

/// The columns of a finding, read by [`finding`].
fn finding_columns(sql: &Sql) -> String {
    format!(
        "f.id, {}, f.package, f.version, f.source_name, f.source_version, f.ecosystem,
         f.severity, f.fix_state, f.fixed_version, f.layer",
        sql.aliases()
    )
}

fn finding(row: &[Value]) -> Result<ImageFinding, StoreError> {
    Ok(ImageFinding {
        id: row[0].text(),
        aliases: serde_json::from_str(&row[1].text())?,
        package: row[2].text(),
        version: row[3].text(),
        source_name: row[4].text(),
        source_version: row[5].text(),
        ecosystem: row[6].text(),
        severity: severity_of_rank(i16::try_from(row[7].int()).unwrap_or(0)),
        fix_state: fix_state_of(&row[8].text()),
        fixed_version: row[9].opt_text(),
        layer: row[10].opt_text(),
    })
}

/// Runs statements: what each store provides.
pub(super) trait Rows {
    async fn rows(&self, sql: &Sql) -> Result<Vec<Vec<Value>>, StoreError>;
}

pub(super) async fn vulnerabilities(
    db: &impl Rows,
    dialect: Dialect,
    q: &FindingQuery,
) -> Result<Vec<VulnerabilityRow>, StoreError> {
    let mut sql = Sql::new(dialect).over_findings();
    let conds = sql.finding_conditions(q);
    // The findings `q` selects from each table that holds them, then
    // grouped (PostgreSQL: each table planned with the conditions, so
    // that a repository's images lead to their findings rather than every
    // finding of a severity to the repository's images; see
    // [`Sql::finding_tables`]).
    let selected: Vec<String> = sql
        .finding_tables()
        .iter()
        .map(|table| {
            format!(
                "SELECT f.id, f.severity, f.fix_state, f.digest, f.package, {} AS aliases
                 FROM {table} f JOIN images i ON i.digest = f.digest
                 WHERE {conds}",
                sql.aliases()
            )
        })
        .collect();
    sql.text = format!(
        "SELECT f.id, max(f.severity),
                max(CASE f.fix_state WHEN 'fixed' THEN 2 WHEN 'unfixed' THEN 1 ELSE 0 END),
                count(DISTINCT f.digest), count(*), {}, {}
         FROM ({}) f
         GROUP BY f.id
         ORDER BY max(f.severity) DESC, count(DISTINCT f.digest) DESC, {}",
        sql.json_set("f.package"),
        sql.json_set("f.aliases"),
        selected.join(" UNION ALL "),
        sql.c("f.id"),
    );
    let mut out = Vec::new();
    for row in db.rows(&sql).await? {
        let mut packages: Vec<String> = serde_json::from_str(&row[5].text())?;
        packages.sort();
        let mut aliases = Vec::new();
        for set in serde_json::from_str::<Vec<String>>(&row[6].text())? {
            aliases.extend(serde_json::from_str::<Vec<String>>(&set)?);
        }
        aliases.sort();
        aliases.dedup();
        out.push(VulnerabilityRow {
            id: row[0].text(),
            severity: severity_of_rank(i16::try_from(row[1].int()).unwrap_or(0)),
            fix_state: match row[2].int() {
                2 => FixStateKind::Fixed,
                1 => FixStateKind::Unfixed,
                _ => FixStateKind::WillNotFix,
            },
            images: row[3].int(),
            findings: row[4].int(),
            packages,
            aliases,
        });
    }
    Ok(out)
}

/// The tags of `digests`, in scope, by digest.
async fn tags_of(
    db: &impl Rows,
    dialect: Dialect,
    digests: &[String],
    scope: &Scope,
) -> Result<BTreeMap<String, Vec<TagName>>, StoreError> {
    let mut tags: BTreeMap<String, Vec<TagName>> = BTreeMap::new();
    if digests.is_empty() {
        return Ok(tags);
    }
    let mut sql = Sql::new(dialect);
    let within = sql.in_json("t.digest", digests);
    let scoped = match scope {
        Scope::All => "true".to_string(),
        Scope::Prefixes(p) => sql.under_any("t.repository", p),
    };
    sql.text = format!(
        "SELECT t.digest, t.repository, t.tag FROM tags t WHERE {within} AND {scoped}
         ORDER BY {}, {}, {}",
        sql.c("t.digest"),
        sql.c("t.repository"),
        sql.c("t.tag")
    );
    for row in db.rows(&sql).await? {
        let tag = row[2].text();
        tags.entry(row[0].text()).or_default().push(TagName {
            repository: row[1].text(),
            tag: (!tag.is_empty()).then_some(tag),
        });
    }
    Ok(tags)
}

pub(super) async fn vulnerability(
    db: &impl Rows,
    dialect: Dialect,
    id: &str,
    scope: &Scope,
) -> Result<Vec<AffectedImage>, StoreError> {
    // The ids of the findings that carry `id` (in scope), then every
    // finding carrying one of them: a GHSA finds the DSA filed under the
    // CVE they share. Two statements, so that the second names its keys
    // (the planner then uses the id index for each).
    let mut sql = Sql::new(dialect).over_findings();
    let key = sql.text_param(&id.to_ascii_lowercase());
    sql.text = match dialect {
        Dialect::Sqlite => {
            let within = sql.image_in("f.digest", scope, None);
            format!(
                "SELECT DISTINCT k2.key FROM findings f
                 JOIN finding_ids k1 ON k1.finding = f.n
                 JOIN finding_ids k2 ON k2.finding = f.n
                 WHERE k1.key = {key} AND f.suppressed = 0 AND {within}"
            )
        }
        // A package row's keys count when one image in scope is on its
        // target and linked to it (what `findings_normalized` joins): one
        // such image is enough, not every one (through the view, an id
        // in 400 images joined all 400 to find its two keys: 7 ms).
        Dialect::Postgres => {
            let own = sql.image_in("f.digest", scope, None);
            let linked = sql.image_in("l.digest", scope, None);
            format!(
                "SELECT unnest(f.keys) FROM findings_own f
                 WHERE f.keys @> ARRAY[{key}] AND NOT f.suppressed AND {own}
                 UNION
                 SELECT unnest(pf.keys) FROM package_findings pf
                 WHERE pf.keys @> ARRAY[{key}] AND NOT pf.suppressed
                 AND EXISTS (SELECT 1 FROM image_packages l JOIN images i ON i.digest = l.digest
                             WHERE l.pkey = pf.pkey AND i.target = pf.target AND NOT i.own
                             AND {linked})"
            )
        }
    };
    let keys: Vec<String> = db.rows(&sql).await?.iter().map(|r| r[0].text()).collect();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new(dialect).over_findings();
    let within = sql.image_in("f.digest", scope, None);
    let has_one = match dialect {
        Dialect::Sqlite => {
            let list: Vec<String> = keys.iter().map(|k| sql.text_param(k)).collect();
            format!(
                "f.n IN (SELECT finding FROM finding_ids WHERE key IN ({}))",
                list.join(", ")
            )
        }
        Dialect::Postgres => {
            let any: Vec<String> = keys
                .iter()
                .map(|k| format!("f.keys @> ARRAY[{}]", sql.text_param(k)))
                .collect();
            format!("({})", any.join(" OR "))
        }
    };
    sql.text = format!(
        "SELECT f.digest, i.verdict, i.last_pushed, i.last_pulled, {}
         FROM findings f JOIN images i ON i.digest = f.digest
         WHERE {has_one} AND {} AND {within}
         ORDER BY {}, {}",
        finding_columns(&sql),
        sql.not_suppressed(),
        sql.c("f.digest"),
        sql.report_order("f"),
    );
    let mut images: Vec<AffectedImage> = Vec::new();
    for row in db.rows(&sql).await? {
        let digest = row[0].text();
        let f = finding(&row[4..])?;
        match images.last_mut() {
            Some(last) if last.digest == digest => last.findings.push(f),
            _ => images.push(AffectedImage {
                digest,
                tags: Vec::new(),
                verdict: row[1].opt_text(),
                last_pushed: row[2].opt_int(),
                last_pulled: row[3].opt_int(),
                findings: vec![f],
            }),
        }
    }
    let digests: Vec<String> = images.iter().map(|i| i.digest.clone()).collect();
    let mut tags = tags_of(db, dialect, &digests, scope).await?;
    for image in &mut images {
        image.tags = tags.remove(&image.digest).unwrap_or_default();
    }
    Ok(images)
}

pub(super) async fn findings_page(
    db: &impl Rows,
    dialect: Dialect,
    q: &FindingQuery,
    after: Option<&Cursor>,
    limit: usize,
) -> Result<FindingsPage, StoreError> {
    let limit = limit.max(1);
    let mut sql = Sql::new(dialect).over_findings();
    let mut conds = sql.finding_conditions(q);
    // What the package rows of PostgreSQL's normalized findings must
    // satisfy for a finding of theirs to be on the page (below; bound
    // only there: SQLite refuses parameters a statement does not use).
    let normalized = dialect == Dialect::Postgres;
    let mut package_conds = vec!["NOT pf.suppressed".to_string()];
    if let Some(s) = q.severity.filter(|_| normalized) {
        let p = sql.bind(Value::Int(severity_rank(s).into()));
        package_conds.push(format!("pf.severity >= {p}"));
    }
    if let Some(c) = after {
        let s = sql.bind(Value::Int(c.severity.into()));
        let id = sql.text_param(&c.id);
        let d = sql.text_param(&c.digest);
        let k = sql.text_param(&c.key);
        let (fid, fd, fk) = (sql.c("f.id"), sql.c("f.digest"), sql.c("f.fkey"));
        conds.push_str(&format!(
            " AND (f.severity < {s} OR (f.severity = {s} AND ({fid} > {id} OR ({fid} = {id}
              AND ({fd} > {d} OR ({fd} = {d} AND {fk} > {k}))))))"
        ));
        if normalized {
            package_conds.push(format!(
                "(pf.severity < {s} OR (pf.severity = {s} AND {} >= {id}))",
                sql.c("pf.id")
            ));
        }
    }
    let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
    // The page first, then each finding's place in its image's report
    // (counted among the image's findings that sort before it in report
    // order), for the page's rows only.
    let before = sql.before_in_report("g", "p");
    // The page of each table the findings are in (PostgreSQL: the own rows
    // and the normalized ones, each read in the page's order from its
    // index and cut at the page; through the `findings` view's union the
    // planner would join and sort every finding first), then the page of
    // their union.
    let columns = format!(
        "f.digest, f.fkey, i.verdict, i.last_pushed, i.last_pulled, f.id, {} AS aliases,
         f.package, f.version, f.source_name, f.source_version, f.ecosystem, f.severity,
         f.fix_state, f.fixed_version, f.layer",
        sql.aliases()
    );
    let order = format!(
        "{}, {}, {}",
        sql.c("f.id"),
        sql.c("f.digest"),
        sql.c("f.fkey")
    );
    let pages: Vec<String> = sql
        .finding_tables()
        .iter()
        .map(|table| {
            if *table != "findings_normalized" {
                return format!(
                    "(SELECT {columns}
                      FROM {table} f JOIN images i ON i.digest = f.digest
                      WHERE {conds}
                      ORDER BY f.severity DESC, {order}
                      LIMIT {fetch})"
                );
            }
            // Normalized: the package rows in the page's order (severity,
            // id: their index), and of each the first `fetch` of its
            // findings in digest order (the links by (package key,
            // digest): migration 10), so that the page is cut from a few
            // hundred rows. Joining every link of the first id and sorting
            // them read all 10,000 images of a hot id for a page of 100
            // (65-69 ms at 100,000 images, against 2.5 ms in own mode;
            // 2.6 ms so). `f` has the view's columns (`findings_normalized`),
            // for the same conditions.
            format!(
                "(SELECT x.* FROM package_findings pf
                  CROSS JOIN LATERAL (
                      SELECT {columns}
                      FROM (SELECT l.digest,
                                   pf.package || E'\\x1f'
                                       || CASE WHEN pf.located THEN l.location ELSE '' END
                                       || E'\\x1f' || pf.version AS fkey,
                                   pf.id, pf.aliases, pf.keys, pf.package, pf.version,
                                   pf.source_name, pf.source_version, pf.ecosystem,
                                   pf.severity, pf.fix_state, pf.fixed_version, l.layer,
                                   CASE WHEN pf.located THEN l.location END AS path,
                                   pf.suppressed
                            FROM image_packages l WHERE l.pkey = pf.pkey) f
                      JOIN images i ON i.digest = f.digest
                      WHERE i.target = pf.target AND NOT i.own AND {conds}
                      ORDER BY {}, {}
                      LIMIT {fetch}) x
                  WHERE {}
                  ORDER BY pf.severity DESC, {}, {}, {}
                  LIMIT {fetch})",
                sql.c("f.digest"),
                sql.c("f.fkey"),
                package_conds.join(" AND "),
                sql.c("pf.id"),
                sql.c("x.digest"),
                sql.c("x.fkey"),
            )
        })
        .collect();
    sql.text = format!(
        "SELECT p.digest, ({before}), p.verdict, p.last_pushed, p.last_pulled, p.fkey,
                p.id, p.aliases, p.package, p.version, p.source_name, p.source_version,
                p.ecosystem, p.severity, p.fix_state, p.fixed_version, p.layer
         FROM ({}) p
         ORDER BY p.severity DESC, {}, {}, {}
         LIMIT {fetch}",
        pages.join(" UNION ALL "),
        sql.c("p.id"),
        sql.c("p.digest"),
        sql.c("p.fkey"),
    );
    let rows = db.rows(&sql).await?;
    let more = rows.len() > limit;
    let mut findings = Vec::new();
    let mut keys = Vec::new();
    for row in rows.into_iter().take(limit) {
        keys.push(row[5].text());
        findings.push(RegistryFinding {
            digest: row[0].text(),
            ord: row[1].int(),
            tags: Vec::new(),
            verdict: row[2].opt_text(),
            last_pushed: row[3].opt_int(),
            last_pulled: row[4].opt_int(),
            finding: finding(&row[6..])?,
        });
    }
    let mut digests: Vec<String> = findings.iter().map(|f| f.digest.clone()).collect();
    digests.sort();
    digests.dedup();
    let tags = tags_of(db, dialect, &digests, &q.scope).await?;
    for f in &mut findings {
        f.tags = tags.get(&f.digest).cloned().unwrap_or_default();
    }
    let next = if more {
        findings.last().zip(keys.last()).map(|(f, key)| Cursor {
            severity: severity_rank(f.finding.severity),
            id: f.finding.id.clone(),
            digest: f.digest.clone(),
            key: key.clone(),
        })
    } else {
        None
    };
    Ok(FindingsPage { findings, next })
}

/// The summary computed from the rows, the way it was before the
/// counters ([`super::counters`]): kept as the counters' oracle in tests.
/// Unscoped, every image; scoped, every *listing* (an image in each
/// repository of the scope that lists it, once per repository), the
/// counters' definition.
pub(super) async fn recount(
    db: &impl Rows,
    dialect: Dialect,
    scope: &Scope,
    repository: Option<&str>,
) -> Result<RegistrySummary, StoreError> {
    let mut out = RegistrySummary::default();
    let scoped = !matches!(scope, Scope::All) || repository.is_some();
    // The (repository, digest) listings in scope, or every image once.
    let listings = |sql: &mut Sql| -> String {
        if !scoped {
            return "(SELECT '' AS repository, digest FROM images)".to_string();
        }
        let mut conds = Vec::new();
        if let Scope::Prefixes(p) = scope {
            conds.push(sql.under_any("t.repository", p));
        }
        if let Some(r) = repository {
            conds.push(sql.under_any("t.repository", &[r.to_string()]));
        }
        format!(
            "(SELECT DISTINCT t.repository, t.digest FROM tags t WHERE {})",
            conds.join(" AND ")
        )
    };

    let mut sql = Sql::new(dialect);
    let l = listings(&mut sql);
    sql.text = format!(
        "SELECT i.verdict, count(*) FROM {l} l JOIN images i ON i.digest = l.digest
         GROUP BY i.verdict"
    );
    for row in db.rows(&sql).await? {
        let verdict = row[0].opt_text().unwrap_or_else(|| "not_scanned".into());
        out.images += row[1].int();
        *out.images_by_verdict.entry(verdict).or_default() += row[1].int();
    }

    let mut sql = Sql::new(dialect);
    let l = listings(&mut sql);
    sql.text = format!(
        "SELECT f.severity, f.fix_state, count(*) FROM {l} l
         JOIN findings f ON f.digest = l.digest
         WHERE {} GROUP BY f.severity, f.fix_state",
        sql.not_suppressed()
    );
    for row in db.rows(&sql).await? {
        let n = row[2].int();
        out.findings += n;
        let severity = severity_of_rank(i16::try_from(row[0].int()).unwrap_or(0));
        *out.findings_by_severity.entry(severity).or_default() += n;
        *out.findings_by_fix_state
            .entry(fix_state_of(&row[1].text()))
            .or_default() += n;
    }

    let mut sql = Sql::new(dialect);
    let l = listings(&mut sql);
    sql.text = format!(
        "SELECT package, count(*), CAST(sum(n) AS bigint) FROM
           (SELECT l.repository, l.digest, f.package, count(*) AS n FROM {l} l
            JOIN findings f ON f.digest = l.digest
            WHERE {} GROUP BY l.repository, l.digest, f.package) x
         GROUP BY package
         ORDER BY count(*) DESC, sum(n) DESC, {} LIMIT 10",
        sql.not_suppressed(),
        sql.c("package"),
    );
    out.top_packages = affected(db.rows(&sql).await?);

    let mut sql = Sql::new(dialect);
    let mut conds = Vec::new();
    if let Scope::Prefixes(p) = scope {
        conds.push(sql.under_any("t.repository", p));
    }
    if let Some(r) = repository {
        conds.push(sql.under_any("t.repository", &[r.to_string()]));
    }
    let conds = if conds.is_empty() {
        "true".to_string()
    } else {
        conds.join(" AND ")
    };
    sql.text = format!(
        "SELECT r.repository, count(*), CAST(sum(c.n) AS bigint) FROM
           (SELECT DISTINCT t.repository, t.digest FROM tags t WHERE {conds}) r
           JOIN (SELECT f.digest, count(*) AS n FROM findings f WHERE {} GROUP BY f.digest) c
           ON c.digest = r.digest
         GROUP BY r.repository
         ORDER BY sum(c.n) DESC, count(*) DESC, {} LIMIT 10",
        sql.not_suppressed(),
        sql.c("r.repository"),
    );
    out.top_repositories = affected(db.rows(&sql).await?);
    Ok(out)
}

fn affected(rows: Vec<Vec<Value>>) -> Vec<Affected> {
    rows.iter()
        .map(|r| Affected {
            name: r[0].text(),
            images: r[1].int(),
            findings: r[2].int(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_cover_their_repositories_only() {
        let scope = Scope::prefixes(["team-a/", "b_c"]).unwrap();
        for (repo, covered) in [
            ("team-a", true),
            ("team-a/app", true),
            ("team-a/x/y", true),
            ("team-ab", false),
            ("team-ab/app", false),
            ("team", false),
            ("b_c/x", true),
            ("bxc/x", false),
        ] {
            assert_eq!(scope.covers(repo), covered, "{repo}");
        }
        assert!(Scope::All.covers("anything"));
        assert!(Scope::prefixes(["a", " / "]).is_err());
        assert!(Scope::prefixes(Vec::<String>::new()).is_err());
    }

    #[test]
    fn cursors_round_trip() {
        let c = Cursor {
            severity: 4,
            id: "CVE-1".into(),
            digest: "sha256:aa".into(),
            key: "libssl3\u{1f}\u{1f}1.0".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("not a cursor"), None);
    }
}
