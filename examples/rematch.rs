//! Re-match stored inventories against a new advisory database, without
//! pulling an image again: what a registry does when advisories change.
//!
//! ```sh
//! # Inventory images once and store them (JSON files in STORE):
//! cargo run --release --example rematch -- inventory STORE SOURCE...
//! # Whenever the database changes, match every stored inventory again:
//! cargo run --release --example rematch -- match STORE trawl.db
//! ```
//!
//! `trawl.db` is a compiled database (`trawl db build`, `trawl db pull`).
//! [`Scanner::rematch_all`] looks each distinct package version up once
//! for the whole batch and spreads the work over the cores; a thousand
//! stored inventories take well under a second.

use std::path::Path;

use trawl::advisory::AdvisoryStore;
use trawl::{ImageSource, Scanned, Scanner};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [command, store, sources @ ..] if command == "inventory" => {
            // No database needed to list packages.
            let scanner = Scanner::builder().build()?;
            std::fs::create_dir_all(store)?;
            for (i, source) in sources.iter().enumerate() {
                let scanned = scanner.inventory_blocking(&source.parse::<ImageSource>()?)?;
                let file = Path::new(store).join(format!("{i}.json"));
                std::fs::write(&file, serde_json::to_vec(&scanned)?)?;
                println!("{source}: {} packages", scanned.inventory.packages.len());
            }
        }
        [command, store, db] if command == "match" => {
            let mut stored: Vec<Scanned> = Vec::new();
            for entry in std::fs::read_dir(store)? {
                stored.push(serde_json::from_slice(&std::fs::read(entry?.path())?)?);
            }
            let scanner = Scanner::builder()
                .database(AdvisoryStore::open(db)?)
                .build()?;
            for report in scanner.rematch_all(stored) {
                let counted = report.findings.iter().filter(|f| f.suppression.is_none());
                println!(
                    "{}: {} ({} findings)",
                    report.source,
                    report.verdict.as_str(),
                    counted.count()
                );
            }
        }
        _ => {
            return Err("usage: rematch inventory STORE SOURCE... | rematch match STORE DB".into());
        }
    }
    Ok(())
}
