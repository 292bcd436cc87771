//! An OSV `affected` entry compiled for matching: versions parsed once, range events
//! turned into intervals.
//!
//! Semantics follow the OSV specification's evaluation rules
//! (<https://ossf.github.io/osv-schema/#evaluation>): events are sorted by version
//! (`introduced: "0"` before everything); a version is in a range if it is at or after
//! an `introduced` and before the next `fixed` / at or before the next
//! `last_affected`, and below every `limit`. Any range, or an equal entry in
//! `versions`, makes a version affected. `ECOSYSTEM` ranges are evaluated under the
//! ecosystem's scheme, `SEMVER` ranges under SemVer precedence, whatever the
//! ecosystem.

use crate::feed::WarningReason;
use crate::osv::{Affected, Event, RangeType};
use crate::version::{Version, VersionScheme};

/// The outcome for an affected version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// The earliest version that leaves every interval containing the installed
    /// version; `None` when some containing interval has no fix, or when only the
    /// `versions` list matched.
    pub fixed: Option<String>,
}

#[derive(Debug)]
pub(crate) struct CompiledAffected {
    ranges: Vec<CompiledRange>,
    versions: Vec<(String, Option<Version>)>,
}

/// An installed version, parsed under the schemes its ranges may need.
pub(crate) struct Installed<'a> {
    /// As the query wrote it.
    pub raw: std::borrow::Cow<'a, str>,
    /// Under the ecosystem's scheme.
    pub version: Version,
    /// Under SemVer, when the ecosystem's scheme is another and the text
    /// parses; parsed on first use (only `SEMVER` ranges need it, and most
    /// distribution versions fail to parse, at the cost of an error message).
    semver: std::cell::OnceCell<Option<Version>>,
}

/// A query made ready for range evaluation: the normalised ecosystem, the
/// installed version parsed under its scheme, and the index keys to look in.
/// Shared by the in-memory and the compiled database so both agree.
pub(crate) struct PreparedQuery<'a> {
    /// The normalised ecosystem.
    pub ecosystem: crate::ecosystem::Ecosystem,
    /// The installed version.
    pub installed: Installed<'a>,
}

impl<'a> PreparedQuery<'a> {
    /// Parses the query's ecosystem and version.
    pub fn new(query: &crate::db::PackageQuery<'a>) -> Result<Self, crate::db::QueryError> {
        use crate::db::QueryError;
        let ecosystem = crate::ecosystem::Ecosystem::parse(query.ecosystem);
        let scheme = ecosystem
            .scheme()
            .ok_or_else(|| QueryError::UnsupportedEcosystem {
                ecosystem: query.ecosystem.to_owned(),
            })?;
        let version = scheme
            .parse(query.version)
            .map_err(|source| QueryError::InvalidVersion {
                ecosystem: query.ecosystem.to_owned(),
                name: query.name.to_owned(),
                source,
            })?;
        Ok(PreparedQuery {
            ecosystem,
            installed: Installed {
                raw: std::borrow::Cow::Borrowed(query.version),
                version,
                semver: std::cell::OnceCell::new(),
            },
        })
    }

    /// The index keys to look in: the release's ecosystem, and the
    /// release-less one of its distribution (`Debian:12`, then `Debian`).
    pub fn keys(&self) -> impl Iterator<Item = &str> + Clone {
        index_keys(&self.ecosystem)
    }
}

/// The index keys of an ecosystem: see [`PreparedQuery::keys`].
pub(crate) fn index_keys(
    ecosystem: &crate::ecosystem::Ecosystem,
) -> impl Iterator<Item = &str> + Clone {
    let distro = ecosystem.release().map(|_| ecosystem.distro());
    std::iter::once(ecosystem.as_str()).chain(distro)
}

impl Installed<'_> {
    fn under(&self, scheme: VersionScheme) -> Option<&Version> {
        if self.version.scheme() == scheme {
            Some(&self.version)
        } else if scheme == VersionScheme::Semver {
            self.semver
                .get_or_init(|| VersionScheme::Semver.parse(&self.raw).ok())
                .as_ref()
        } else {
            None
        }
    }
}

#[derive(Debug)]
struct CompiledRange {
    scheme: VersionScheme,
    intervals: Vec<Interval>,
    limits: Vec<Version>,
}

#[derive(Debug)]
struct Interval {
    /// `None`: from the first version on (`introduced: "0"`).
    start: Option<Version>,
    end: End,
}

#[derive(Debug)]
enum End {
    Open,
    Fixed(Version, String),
    LastAffected(Version),
}

enum Bound {
    Min,
    At(Version),
}

impl CompiledAffected {
    /// Compiles `affected` under `scheme`; parts it cannot use are reported and skipped.
    pub(crate) fn compile(
        scheme: VersionScheme,
        affected: &Affected,
        warnings: &mut Vec<WarningReason>,
    ) -> Self {
        let package = affected
            .package
            .as_ref()
            .map_or_else(String::new, |p| p.name.clone());
        let mut ranges = Vec::new();
        for range in &affected.ranges {
            let range_scheme = match &range.kind {
                RangeType::Ecosystem => scheme,
                RangeType::Semver => scheme.for_semver_ranges(),
                // Commit ranges say nothing about package versions.
                RangeType::Git => {
                    warnings.push(WarningReason::GitRange {
                        package: package.clone(),
                        repo: range.repo.clone(),
                    });
                    continue;
                }
                other => {
                    warnings.push(WarningReason::UnsupportedRangeType {
                        package: package.clone(),
                        range_type: other.as_str().to_owned(),
                    });
                    continue;
                }
            };
            match compile_events(range_scheme, &range.events) {
                Ok(compiled) => ranges.push(compiled),
                Err(error) => warnings.push(WarningReason::InvalidVersion {
                    package: package.clone(),
                    error,
                }),
            }
        }
        let versions = affected
            .versions
            .iter()
            .map(|raw| {
                let parsed = scheme
                    .parse(raw)
                    .map_err(|error| {
                        warnings.push(WarningReason::InvalidVersion {
                            package: package.clone(),
                            error,
                        })
                    })
                    .ok();
                (raw.clone(), parsed)
            })
            .collect();
        Self { ranges, versions }
    }

    /// Whether `installed` is affected, and the fix.
    pub(crate) fn evaluate(&self, installed: &Installed<'_>) -> Option<Verdict> {
        let mut in_range = false;
        let mut unfixed = false;
        let mut best_fix: Option<(&Version, &String)> = None;
        for range in &self.ranges {
            let Some(installed) = installed.under(range.scheme) else {
                continue;
            };
            if range.limits.iter().any(|limit| is_ge(installed, limit)) {
                continue;
            }
            for interval in range.intervals.iter().filter(|i| i.contains(installed)) {
                in_range = true;
                match &interval.end {
                    End::Fixed(version, text) => {
                        if best_fix.is_none_or(|(best, _)| is_gt(version, best)) {
                            best_fix = Some((version, text));
                        }
                    }
                    End::Open | End::LastAffected(_) => unfixed = true,
                }
            }
        }
        if in_range {
            let fixed = match (unfixed, best_fix) {
                (false, Some((_, text))) => Some(text.clone()),
                _ => None,
            };
            return Some(Verdict { fixed });
        }
        let listed = self.versions.iter().any(|(text, parsed)| {
            *text == *installed.raw
                || parsed
                    .as_ref()
                    .is_some_and(|v| is_eq(&installed.version, v))
        });
        listed.then_some(Verdict { fixed: None })
    }
}

/// The stored form of a compiled entry (in a compiled database's index): the
/// ranges already sorted into intervals, each bound as its version text, so
/// that evaluating one in place parses only the bounds it compares.
impl CompiledAffected {
    /// Appends the encoded entry to `out`.
    pub(crate) fn encode(&self, out: &mut crate::store::wire::Writer) {
        out.len(self.ranges.len());
        for range in &self.ranges {
            out.u8(scheme_tag(range.scheme));
            out.len(range.limits.len());
            for limit in &range.limits {
                out.str(&limit.to_string());
            }
            out.len(range.intervals.len());
            for interval in &range.intervals {
                match &interval.start {
                    None => out.u8(0),
                    Some(start) => {
                        out.u8(1);
                        out.str(&start.to_string());
                    }
                }
                match &interval.end {
                    End::Open => out.u8(0),
                    // The text as the feed wrote it: the answer quotes it.
                    End::Fixed(_, text) => {
                        out.u8(1);
                        out.str(text);
                    }
                    End::LastAffected(last) => {
                        out.u8(2);
                        out.str(&last.to_string());
                    }
                }
            }
        }
        // Listed versions that parsed first, grouped by scheme (in practice
        // one: the entry's) and sorted by its order, so that evaluation
        // binary-searches them instead of parsing each; the others after.
        let mut listed: Vec<&(String, Option<Version>)> = self.versions.iter().collect();
        listed.sort_by(|(_, a), (_, b)| match (a, b) {
            (Some(a), Some(b)) => scheme_tag(a.scheme())
                .cmp(&scheme_tag(b.scheme()))
                .then_with(|| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
        out.len(listed.len());
        for (text, parsed) in listed {
            out.str(text);
            // 0: did not parse; else 1 + the scheme it parsed under.
            out.u8(parsed.as_ref().map_or(0, |v| 1 + scheme_tag(v.scheme())));
        }
    }

    /// Evaluates an entry as [`encode`](Self::encode) wrote it, reading it in
    /// place: the same answer as [`evaluate`](Self::evaluate) on the original,
    /// with each bound compared as text (parsed on the fly, nothing allocated
    /// but the fix's text). Fails on damaged input, including a bound that no
    /// longer parses under its scheme.
    pub(crate) fn evaluate_encoded(
        input: &mut crate::store::wire::Reader<'_>,
        installed: &Installed<'_>,
    ) -> Result<Option<Verdict>, crate::store::record::BlobError> {
        use crate::store::record::BlobError;
        use std::cmp::Ordering;
        let bad = |what: &str| BlobError::Decode(format!("bad {what}"));
        let cmp = |v: &Version, text: &str| {
            v.cmp_str(text)
                .map_err(|e| BlobError::Decode(e.to_string()))
        };
        let mut in_range = false;
        let mut unfixed = false;
        // The scheme and text of the best fix so far.
        let mut best_fix: Option<(VersionScheme, &str)> = None;
        for _ in 0..input.count()? {
            let scheme = scheme_of_tag(input.u8()?).ok_or_else(|| bad("scheme"))?;
            // `None`: the range says nothing about this version; read past it.
            let mut version = installed.under(scheme);
            for _ in 0..input.count()? {
                let limit = input.str()?;
                if let Some(v) = version
                    && cmp(v, limit)? != Ordering::Less
                {
                    version = None;
                }
            }
            for _ in 0..input.count()? {
                let start = match input.u8()? {
                    0 => None,
                    1 => Some(input.str()?),
                    _ => return Err(bad("interval start")),
                };
                let end = input.u8()?;
                let end_text = match end {
                    0 => "",
                    1 | 2 => input.str()?,
                    _ => return Err(bad("interval end")),
                };
                let Some(v) = version else {
                    continue;
                };
                if let Some(start) = start
                    && cmp(v, start)? == Ordering::Less
                {
                    continue;
                }
                match end {
                    0 => unfixed = true,
                    1 => {
                        if cmp(v, end_text)? != Ordering::Less {
                            continue;
                        }
                        let better = match best_fix {
                            None => true,
                            Some((best_scheme, best)) => {
                                best_scheme == scheme
                                    && scheme
                                        .compare(end_text, best)
                                        .map_err(|e| BlobError::Decode(e.to_string()))?
                                        == Ordering::Greater
                            }
                        };
                        if better {
                            best_fix = Some((scheme, end_text));
                        }
                    }
                    _ => {
                        if cmp(v, end_text)? == Ordering::Greater {
                            continue;
                        }
                        unfixed = true;
                    }
                }
                in_range = true;
            }
        }
        // The listed versions: equal as text to the installed one, or equal
        // under its scheme. Those of its scheme are stored sorted (see
        // `encode`): they are gathered, then binary-searched, parsing a few
        // instead of all.
        let mut listed = false;
        let mut sorted: [&str; SEARCHED] = [""; SEARCHED];
        let mut gathered = 0;
        for _ in 0..input.count()? {
            let text = input.str()?;
            let tag = input.u8()?;
            if listed || in_range {
                continue;
            }
            if text == installed.raw {
                listed = true;
                continue;
            }
            if tag == 0 {
                continue;
            }
            let scheme = scheme_of_tag(tag - 1).ok_or_else(|| bad("version scheme"))?;
            if scheme != installed.version.scheme() {
                continue;
            }
            match sorted.get_mut(gathered) {
                Some(slot) => {
                    *slot = text;
                    gathered += 1;
                }
                // Beyond what is gathered: compared one by one.
                None => listed = cmp(&installed.version, text)? == Ordering::Equal,
            }
        }
        if !listed && !in_range {
            let mut candidates = sorted.get(..gathered).unwrap_or_default();
            while let Some((middle, rest)) = candidates
                .split_at_checked(candidates.len() / 2)
                .and_then(|(below, from)| Some((from.first()?, (below, from.get(1..)?))))
            {
                match cmp(&installed.version, middle)? {
                    Ordering::Equal => {
                        listed = true;
                        break;
                    }
                    Ordering::Less => candidates = rest.0,
                    Ordering::Greater => candidates = rest.1,
                }
            }
        }
        if in_range {
            let fixed = match (unfixed, best_fix) {
                (false, Some((_, text))) => Some(text.to_owned()),
                _ => None,
            };
            return Ok(Some(Verdict { fixed }));
        }
        Ok(listed.then_some(Verdict { fixed: None }))
    }
}

impl Interval {
    fn contains(&self, v: &Version) -> bool {
        let after_start = self.start.as_ref().is_none_or(|start| is_ge(v, start));
        after_start
            && match &self.end {
                End::Open => true,
                End::Fixed(fixed, _) => is_lt(v, fixed),
                End::LastAffected(last) => !is_gt(v, last),
            }
    }
}

/// Turns a range's events into disjoint intervals.
fn compile_events(
    scheme: VersionScheme,
    events: &[Event],
) -> Result<CompiledRange, crate::version::VersionError> {
    enum Kind {
        Introduced,
        Fixed(String),
        LastAffected,
        Limit,
    }
    let mut parsed = Vec::with_capacity(events.len());
    for event in events {
        let (kind, text) = match event {
            Event::Introduced(v) => (Kind::Introduced, v),
            Event::Fixed(v) => (Kind::Fixed(v.clone()), v),
            Event::LastAffected(v) => (Kind::LastAffected, v),
            Event::Limit(v) => (Kind::Limit, v),
        };
        let bound = match (&kind, text.as_str()) {
            (Kind::Introduced, "0") => Bound::Min,
            // "*" is the spec's spelling of "no limit".
            (Kind::Limit, "*") => continue,
            _ => Bound::At(scheme.parse(text)?),
        };
        parsed.push((kind, bound));
    }
    // Stable: events at equal versions keep the feed's order.
    parsed.sort_by(|(_, a), (_, b)| match (a, b) {
        (Bound::Min, Bound::Min) => std::cmp::Ordering::Equal,
        (Bound::Min, _) => std::cmp::Ordering::Less,
        (_, Bound::Min) => std::cmp::Ordering::Greater,
        (Bound::At(a), Bound::At(b)) => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });

    let mut intervals = Vec::new();
    let mut limits = Vec::new();
    // `Some(start)` while an interval is open.
    let mut open: Option<Option<Version>> = None;
    for (kind, bound) in parsed {
        let version = match bound {
            Bound::Min => None,
            Bound::At(v) => Some(v),
        };
        match kind {
            Kind::Introduced => {
                if open.is_none() {
                    open = Some(version);
                }
            }
            Kind::Fixed(text) => {
                if let (Some(start), Some(v)) = (open.take(), version) {
                    intervals.push(Interval {
                        start,
                        end: End::Fixed(v, text),
                    });
                }
            }
            Kind::LastAffected => {
                if let (Some(start), Some(v)) = (open.take(), version) {
                    intervals.push(Interval {
                        start,
                        end: End::LastAffected(v),
                    });
                }
            }
            Kind::Limit => limits.extend(version),
        }
    }
    if let Some(start) = open {
        intervals.push(Interval {
            start,
            end: End::Open,
        });
    }
    Ok(CompiledRange {
        scheme,
        intervals,
        limits,
    })
}

/// Listed versions of the installed version's scheme an encoded entry's
/// evaluation binary-searches; more are compared one by one.
const SEARCHED: usize = 64;

fn scheme_tag(scheme: VersionScheme) -> u8 {
    match scheme {
        VersionScheme::Dpkg => 0,
        VersionScheme::Rpm => 1,
        VersionScheme::Apk => 2,
        VersionScheme::Semver => 3,
        VersionScheme::Pep440 => 4,
        VersionScheme::Npm => 5,
        VersionScheme::Go => 6,
        VersionScheme::Maven => 8,
        VersionScheme::RubyGems => 9,
        VersionScheme::Composer => 10,
        VersionScheme::NuGet => 11,
    }
}

fn scheme_of_tag(tag: u8) -> Option<VersionScheme> {
    Some(match tag {
        0 => VersionScheme::Dpkg,
        1 => VersionScheme::Rpm,
        2 => VersionScheme::Apk,
        3 => VersionScheme::Semver,
        4 => VersionScheme::Pep440,
        5 => VersionScheme::Npm,
        6 => VersionScheme::Go,
        8 => VersionScheme::Maven,
        9 => VersionScheme::RubyGems,
        10 => VersionScheme::Composer,
        11 => VersionScheme::NuGet,
        _ => return None,
    })
}

// Versions reaching here share one scheme, so they are always comparable.
fn is_lt(a: &Version, b: &Version) -> bool {
    a.partial_cmp(b) == Some(std::cmp::Ordering::Less)
}

fn is_gt(a: &Version, b: &Version) -> bool {
    a.partial_cmp(b) == Some(std::cmp::Ordering::Greater)
}

fn is_eq(a: &Version, b: &Version) -> bool {
    a.partial_cmp(b) == Some(std::cmp::Ordering::Equal)
}

fn is_ge(a: &Version, b: &Version) -> bool {
    matches!(
        a.partial_cmp(b),
        Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
    )
}
