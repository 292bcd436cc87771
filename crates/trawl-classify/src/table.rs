//! The person-readable report: a short header and aligned columns.
//!
//! Every string in it that came from an image or a feed (package names and
//! versions, advisory ids, paths, OS names, warnings) goes through
//! [`escape_terminal`] first: a package named with terminal escape
//! sequences must not rewrite the screen, hide lines or reorder text.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, Write};

use trawl_inventory::Package;

use crate::report::{FixStateKind, Report, Verdict};
use crate::severity::Severity;

/// Terminal styles (ANSI SGR sequences), or nothing when colour is off.
#[derive(Debug, Clone, Copy)]
struct Style {
    color: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.color && !code.is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn severity(self, severity: Severity, text: &str) -> String {
        let code = match severity {
            Severity::Critical => "1;31",
            Severity::High => "31",
            Severity::Medium => "33",
            Severity::Low => "36",
            Severity::Negligible | Severity::Unknown => "2",
        };
        self.paint(code, text)
    }

    fn verdict(self, verdict: Verdict, text: &str) -> String {
        let code = match verdict {
            Verdict::Healthy => "1;32",
            Verdict::Unhealthy => "1;31",
            Verdict::Unsupported | Verdict::Partial => "1;33",
        };
        self.paint(code, text)
    }
}

/// `text` with everything a terminal would act on instead of showing made
/// visible, as Rust escapes it (`\u{1b}`, `\r`, `\\`): C0 and C1 control
/// characters and DEL (escape sequences, carriage return, bell, the
/// one-character CSI U+009B), Unicode bidirectional controls (U+061C,
/// U+200E, U+200F, U+202A–U+202E, U+2066–U+2069, which reorder what follows
/// them) and the line and paragraph separators U+2028 and U+2029; a
/// backslash is doubled so that an escape cannot be forged. Other text is
/// borrowed unchanged.
///
/// ```
/// use trawl_classify::escape_terminal;
/// assert_eq!(escape_terminal("libssl3"), "libssl3");
/// assert_eq!(escape_terminal("evil\x1b[2J\r"), "evil\\u{1b}[2J\\r");
/// assert_eq!(escape_terminal("a\u{202e}b"), "a\\u{202e}b");
/// ```
pub fn escape_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || c == '\\'
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// [`escape_terminal`], owned: for a table cell.
fn cell(text: &str) -> String {
    escape_terminal(text).into_owned()
}

/// Writes `rows` as columns separated by two spaces, the first row as header.
fn columns(out: &mut dyn Write, rows: &[Vec<String>]) -> io::Result<()> {
    columns_styled(out, rows, |_, cell| cell.to_string())
}

/// [`columns`], passing each padded first cell (by row index) through `first`.
fn columns_styled(
    out: &mut dyn Write,
    rows: &[Vec<String>],
    first: impl Fn(usize, &str) -> String,
) -> io::Result<()> {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (r, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let text = if c == 0 { first(r, cell) } else { cell.clone() };
            line.push_str(&text);
            if c + 1 < row.len() {
                line.extend(std::iter::repeat_n(
                    ' ',
                    widths[c] - cell.chars().count() + 2,
                ));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// A digest shortened for a table cell (`3f2a9c1d0b7e`), `-` when absent.
fn short(digest: Option<&str>) -> String {
    match digest {
        Some(d) => {
            let hex = d.split_once(':').map_or(d, |(_, h)| h);
            cell(&hex.chars().take(12).collect::<String>())
        }
        None => "-".to_string(),
    }
}

fn header(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    writeln!(out, "Source:    {}", escape_terminal(&report.source))?;
    if let Some(d) = &report.image.manifest_digest {
        writeln!(out, "Manifest:  {}", escape_terminal(d))?;
    }
    if !report.image.layers.is_empty() {
        writeln!(out, "Layers:    {}", report.image.layers.len())?;
    }
    let os = match &report.os {
        Some(os) => {
            let name = os
                .pretty_name
                .clone()
                .unwrap_or_else(|| format!("{} {}", os.id, os.version_id.as_deref().unwrap_or("")));
            match &report.ecosystem {
                Some(e) => format!("{} [{e}]", name.trim()),
                None => name.trim().to_string(),
            }
        }
        None => "unknown".to_string(),
    };
    writeln!(out, "OS:        {}", escape_terminal(&os))?;
    writeln!(out, "Packages:  {}", report.packages.len())?;
    Ok(())
}

/// Writes the vulnerability report as a person reads it, without colour.
///
/// After the header and verdict come the findings, one per line, then the
/// remediation: each upgrade with the findings it clears, and plainly which
/// findings have no fix yet.
pub fn write_table(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    write_table_with(out, report, false)
}

/// [`write_table`], coloured with ANSI escapes when `color` is set (for a
/// terminal; honour `NO_COLOR` in the caller).
pub fn write_table_with(out: &mut dyn Write, report: &Report, color: bool) -> io::Result<()> {
    let style = Style { color };
    header(out, report)?;
    let verdict = report.verdict.as_str().to_uppercase();
    writeln!(
        out,
        "Verdict:   {}: {}",
        style.verdict(report.verdict, &verdict),
        escape_terminal(&report.verdict_reason)
    )?;
    if report.verdict == Verdict::Unhealthy {
        let counts: Vec<String> = Severity::ALL
            .iter()
            .filter_map(|s| {
                let n = report.summary.by_severity.get(s).copied().unwrap_or(0);
                (n > 0).then(|| style.severity(*s, &format!("{s} {n}")))
            })
            .collect();
        writeln!(out, "           {}", counts.join(", "))?;
        writeln!(out)?;
        let mut rows = vec![
            [
                "SEVERITY",
                "ID",
                "PACKAGE",
                "INSTALLED",
                "FIXED IN",
                "LAYER",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for f in &report.findings {
            rows.push(vec![
                f.severity.to_string(),
                cell(&f.id),
                cell(&f.package),
                cell(&f.installed_version),
                match (&f.fixed_version, f.fix_state) {
                    (Some(v), _) => cell(v),
                    (None, FixStateKind::WillNotFix) => "(will not fix)".into(),
                    (None, _) => "(no fix yet)".into(),
                },
                short(f.layer.as_deref()),
            ]);
        }
        columns_styled(out, &rows, |r, cell| match r {
            0 => cell.to_string(),
            r => style.severity(report.findings[r - 1].severity, cell),
        })?;
        remediation(out, report, style)?;
    }
    if !report.suppressed.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "Suppressed by policy: {} finding(s) (see the JSON report for each reason)",
            report.suppressed.len()
        )?;
    }
    warnings(out, report)
}

fn warnings(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    for w in &report.warnings {
        writeln!(out, "warning: {}", escape_terminal(w))?;
    }
    Ok(())
}

/// The upgrade steps, most severe first, and the findings no upgrade clears.
fn remediation(out: &mut dyn Write, report: &Report, style: Style) -> io::Result<()> {
    writeln!(out)?;
    let fixable = report.summary.fixable;
    match report.remediation.len() {
        0 => writeln!(out, "Remediation: no fix is available for any finding yet.")?,
        n => {
            writeln!(
                out,
                "Remediation: {n} upgrade(s) clear {fixable} of {} finding(s):",
                report.findings.len()
            )?;
            for step in &report.remediation {
                let layer = match &step.layer {
                    Some(l) if report.image.layers.first() == Some(l) => {
                        format!(" (installed in the base layer {})", short(Some(l)))
                    }
                    Some(l) => format!(" (installed in layer {})", short(Some(l))),
                    None => String::new(),
                };
                let fixes = match step.fixes.len() {
                    n @ 0..=3 => format!("fixes {}", step.fixes[..n].join(", ")),
                    n => format!(
                        "fixes {n} ({}, … {} more)",
                        step.fixes[..3].join(", "),
                        n - 3
                    ),
                };
                let line = format!(
                    "  upgrade {} from {} to {}: {} [{}]{layer}",
                    escape_terminal(&step.package),
                    escape_terminal(&step.from),
                    escape_terminal(&step.to),
                    escape_terminal(&fixes),
                    step.max_severity,
                );
                writeln!(out, "{}", style.severity(step.max_severity, &line))?;
            }
        }
    }
    let unfixed: Vec<&crate::report::Finding> = report
        .findings
        .iter()
        .filter(|f| f.fix_state != FixStateKind::Fixed)
        .collect();
    if !unfixed.is_empty() {
        let mut packages: Vec<&str> = unfixed.iter().map(|f| f.package.as_str()).collect();
        packages.dedup();
        let mut ids: Vec<&str> = unfixed.iter().map(|f| f.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        writeln!(
            out,
            "No fix available yet for {} finding(s) ({}) in: {}",
            unfixed.len(),
            escape_terminal(&ids.join(", ")),
            escape_terminal(&packages.join(", "))
        )?;
    }
    Ok(())
}

/// Writes the package inventory as a person reads it: the OS packages
/// first, then the language packages grouped by ecosystem, each with the
/// path where it was found (and the OS package that owns that file, if any).
pub fn write_inventory_table(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    header(out, report)?;
    let os: Vec<&Package> = report.packages.iter().filter(|p| p.kind.is_os()).collect();
    if !os.is_empty() {
        writeln!(out)?;
        writeln!(out, "OS packages ({})", os.len())?;
        let mut rows = vec![
            ["NAME", "VERSION", "ARCH", "SOURCE", "LAYER"]
                .map(String::from)
                .to_vec(),
        ];
        for p in os {
            let source = if p.source_name == p.name && p.source_version == p.version {
                String::new()
            } else if p.source_version == p.version {
                p.source_name.clone()
            } else {
                format!("{} ({})", p.source_name, p.source_version)
            };
            rows.push(vec![
                cell(&p.name),
                cell(&p.version),
                cell(p.arch.as_deref().unwrap_or_default()),
                cell(&source),
                short(p.layer.as_deref()),
            ]);
        }
        columns(out, &rows)?;
    }
    let mut by_ecosystem: BTreeMap<&str, Vec<&Package>> = BTreeMap::new();
    for p in &report.packages {
        if let Some(ecosystem) = p.kind.osv_ecosystem() {
            by_ecosystem.entry(ecosystem).or_default().push(p);
        }
    }
    for (ecosystem, packages) in by_ecosystem {
        writeln!(out)?;
        writeln!(out, "{ecosystem} packages ({})", packages.len())?;
        let owned = packages.iter().any(|p| p.owned_by.is_some());
        let mut head = vec!["NAME", "VERSION", "PATH", "LAYER"];
        if owned {
            head.push("OWNED BY");
        }
        let mut rows = vec![head.into_iter().map(String::from).collect::<Vec<_>>()];
        for p in packages {
            let mut row = vec![
                cell(&p.name),
                cell(&p.version),
                cell(&p.location()),
                short(p.layer.as_deref()),
            ];
            if owned {
                row.push(cell(p.owned_by.as_deref().unwrap_or_default()));
            }
            rows.push(row);
        }
        columns(out, &rows)?;
    }
    warnings(out, report)
}
