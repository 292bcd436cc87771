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
    pub raw: &'a str,
    /// Under the ecosystem's scheme.
    pub version: Version,
    /// Under SemVer, when the ecosystem's scheme is another and the text parses.
    pub semver: Option<Version>,
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
        let semver = (scheme != VersionScheme::Semver)
            .then(|| VersionScheme::Semver.parse(query.version).ok())
            .flatten();
        Ok(PreparedQuery {
            ecosystem,
            installed: Installed {
                raw: query.version,
                version,
                semver,
            },
        })
    }

    /// The index keys to look in: the release's ecosystem, and the
    /// release-less one of its distribution (`Debian:12`, then `Debian`).
    pub fn keys(&self) -> Vec<&str> {
        if self.ecosystem.release().is_none() {
            vec![self.ecosystem.as_str()]
        } else {
            vec![self.ecosystem.as_str(), self.ecosystem.distro()]
        }
    }
}

impl Installed<'_> {
    fn under(&self, scheme: VersionScheme) -> Option<&Version> {
        if self.version.scheme() == scheme {
            Some(&self.version)
        } else if scheme == VersionScheme::Semver {
            self.semver.as_ref()
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
                RangeType::Semver => VersionScheme::Semver,
                // Commit ranges say nothing about package versions.
                RangeType::Git => continue,
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
            text == installed.raw
                || parsed
                    .as_ref()
                    .is_some_and(|v| is_eq(&installed.version, v))
        });
        listed.then_some(Verdict { fixed: None })
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
