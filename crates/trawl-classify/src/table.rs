//! The person-readable report: a short header and aligned columns.

use std::io::{self, Write};

use crate::report::{Report, Verdict};
use crate::severity::Severity;

/// Writes `rows` as columns separated by two spaces, the first row as header.
fn columns(out: &mut dyn Write, rows: &[Vec<String>]) -> io::Result<()> {
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
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
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
            hex.chars().take(12).collect()
        }
        None => "-".to_string(),
    }
}

fn header(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    writeln!(out, "Source:    {}", report.source)?;
    if let Some(d) = &report.image.manifest_digest {
        writeln!(out, "Manifest:  {d}")?;
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
    writeln!(out, "OS:        {os}")?;
    writeln!(out, "Packages:  {}", report.packages.len())?;
    Ok(())
}

/// Writes the vulnerability report as a person reads it.
pub fn write_table(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    header(out, report)?;
    let verdict = report.verdict.as_str().to_uppercase();
    writeln!(out, "Verdict:   {verdict}: {}", report.verdict_reason)?;
    if report.verdict == Verdict::Unhealthy {
        let counts: Vec<String> = Severity::ALL
            .iter()
            .filter_map(|s| {
                let n = report.summary.by_severity.get(s).copied().unwrap_or(0);
                (n > 0).then(|| format!("{s} {n}"))
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
                f.id.clone(),
                f.package.clone(),
                f.installed_version.clone(),
                f.fixed_version
                    .clone()
                    .unwrap_or_else(|| "(no fix yet)".into()),
                short(f.layer.as_deref()),
            ]);
        }
        columns(out, &rows)?;
    }
    for w in &report.warnings {
        writeln!(out, "warning: {w}")?;
    }
    Ok(())
}

/// Writes the package inventory as a person reads it.
pub fn write_inventory_table(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    header(out, report)?;
    writeln!(out)?;
    let mut rows = vec![
        ["NAME", "VERSION", "ARCH", "SOURCE", "LAYER"]
            .map(String::from)
            .to_vec(),
    ];
    for p in &report.packages {
        let source = if p.source_name == p.name && p.source_version == p.version {
            String::new()
        } else if p.source_version == p.version {
            p.source_name.clone()
        } else {
            format!("{} ({})", p.source_name, p.source_version)
        };
        rows.push(vec![
            p.name.clone(),
            p.version.clone(),
            p.arch.clone().unwrap_or_default(),
            source,
            short(p.layer.as_deref()),
        ]);
    }
    columns(out, &rows)?;
    for w in &report.warnings {
        writeln!(out, "warning: {w}")?;
    }
    Ok(())
}
