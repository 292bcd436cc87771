//! Scan one image with the library API and print the verdict and findings.
//!
//! ```sh
//! cargo run --release --example scan_image -- SOURCE [OSV_DIR]...
//! cargo run --release --example scan_image -- oci-dir:target/test-images/debian/oci:bookworm target/osv/Debian
//! ```
//!
//! SOURCE is any image source `trawl scan` takes (`registry:`, a bare
//! reference such as `debian:12`, `oci-dir:`, `oci-archive:`,
//! `docker-archive:`, `dir:`); each OSV_DIR is a directory of OSV records,
//! such as osv.dev's `Debian/all.zip` unpacked.

use trawl::{AdvisoryDb, ImageSource, Scanner};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: scan_image SOURCE [OSV_DIR]...";
    let source: ImageSource = args.next().ok_or(usage)?.parse()?;
    let osv_dirs: Vec<String> = args.collect();

    // Records that cannot be read are skipped and reported, not fatal.
    let (db, skipped) = AdvisoryDb::from_osv_dirs(&osv_dirs)?;
    if !skipped.is_empty() {
        eprintln!("{} advisory record(s) skipped", skipped.len());
    }
    let scanner = Scanner::builder().database(db).build()?;
    // `scan` is the async twin, for callers inside an executor.
    let report = scanner.scan_blocking(&source)?;

    println!("{}: {}", report.verdict.as_str(), report.verdict_reason);
    for f in &report.findings {
        let fix = f.fixed_version.as_deref().unwrap_or("no fix");
        println!(
            "{:<20} {:<9} {} {} -> {fix}",
            f.id,
            f.severity.as_str(),
            f.package,
            f.installed_version
        );
    }
    Ok(())
}
