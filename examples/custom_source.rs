//! A custom [`AdvisorySource`]: the scanner matches against anything that
//! answers "which advisories affect this package version?". This one layers
//! an in-house feed over a public one (a vendor's advisories for the
//! packages it patches, next to osv.dev's), answering from both.
//!
//! ```sh
//! cargo run --release --example custom_source -- SOURCE PUBLIC_OSV_DIR IN_HOUSE_OSV_DIR
//! ```
//!
//! Other sources fit the same trait: a service queried over the network, a
//! database of your own, a filter over another source. `matches` is called
//! once per installed package and may be called from several threads.

use trawl::advisory::{AdvisoryMatch, PackageQuery, QueryError};
use trawl::{AdvisoryDb, AdvisorySource, ImageSource, Scanner};

/// Several sources answering as one: every source's matches, in order.
struct Layered {
    sources: Vec<Box<dyn AdvisorySource>>,
}

impl AdvisorySource for Layered {
    fn matches(&self, query: &PackageQuery<'_>) -> Result<Vec<AdvisoryMatch<'_>>, QueryError> {
        let mut all = Vec::new();
        for source in &self.sources {
            all.extend(source.matches(query)?);
        }
        Ok(all)
    }

    /// A package no source matches is unaffected only if some source covers
    /// its ecosystem; otherwise the verdict says `unsupported`.
    fn has_ecosystem(&self, ecosystem: &str) -> bool {
        self.sources.iter().any(|s| s.has_ecosystem(ecosystem))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [source, public, in_house] = args.as_slice() else {
        return Err("usage: custom_source SOURCE PUBLIC_OSV_DIR IN_HOUSE_OSV_DIR".into());
    };
    let source: ImageSource = source.parse()?;
    let (public, _) = AdvisoryDb::from_osv_dirs(&[public])?;
    let (in_house, _) = AdvisoryDb::from_osv_dirs(&[in_house])?;
    let layered = Layered {
        sources: vec![Box::new(public), Box::new(in_house)],
    };

    let scanner = Scanner::builder().database(layered).build()?;
    let report = scanner.scan_blocking(&source)?;
    println!("{}: {}", report.verdict.as_str(), report.verdict_reason);
    for f in &report.findings {
        println!("{} {} {}", f.id, f.package, f.installed_version);
    }
    Ok(())
}
