//! What one package database may add to the warnings: the first
//! [`MAX_ENTRY_WARNINGS`] skipped entries, one count of the rest, and, when
//! the database is mostly junk or hit a cap, an
//! [`InventoryWarning::UnreadableDatabase`] that makes the scan incomplete.
//! A database of millions of junk lines thus costs a few kilobytes of
//! warnings, not gigabytes, and is never taken for a healthy one.

use crate::{Inventory, InventoryWarning};

/// Skipped entries listed one by one per package database; the rest are
/// counted in one [`InventoryWarning::EntriesNotListed`].
pub const MAX_ENTRY_WARNINGS: usize = 100;

/// The longest name, version, architecture or other identifying field an
/// entry may carry (bytes). Real ones are under a hundred; a longer one is a
/// malformed entry, so that one hostile field cannot swell every report line
/// that names the package.
pub const MAX_FIELD_LEN: usize = 4096;

/// Counts the entries of one package database as it is read.
pub(crate) struct EntryLog {
    database: String,
    listed: Vec<InventoryWarning>,
    skipped: usize,
    read: usize,
    stopped: Option<String>,
}

impl EntryLog {
    pub(crate) fn new(database: impl Into<String>) -> EntryLog {
        EntryLog {
            database: database.into(),
            listed: Vec::new(),
            skipped: 0,
            read: 0,
            stopped: None,
        }
    }

    /// An entry that was read (installed or not).
    pub(crate) fn read(&mut self) {
        self.read += 1;
    }

    /// An entry that was skipped; `reason` is only built for listed ones.
    pub(crate) fn skip(&mut self, line: usize, reason: impl FnOnce() -> String) {
        self.skipped += 1;
        if self.listed.len() < MAX_ENTRY_WARNINGS {
            self.listed.push(InventoryWarning::MalformedEntry {
                database: self.database.clone(),
                line,
                reason: reason(),
            });
        }
    }

    /// [`EntryLog::skip`] for an entry of one file of a database made of
    /// several (dpkg's `status.d/`), named in the warning.
    pub(crate) fn skip_in(&mut self, file: &str, line: usize, reason: impl FnOnce() -> String) {
        self.skipped += 1;
        if self.listed.len() < MAX_ENTRY_WARNINGS {
            self.listed.push(InventoryWarning::MalformedEntry {
                database: file.to_string(),
                line,
                reason: reason(),
            });
        }
    }

    /// Reading stopped at a cap before the end of the database.
    pub(crate) fn stop(&mut self, reason: String) {
        self.stopped.get_or_insert(reason);
    }

    /// Adds the warnings to `inv`.
    pub(crate) fn finish(self, inv: &mut Inventory) {
        let EntryLog {
            database,
            listed,
            skipped,
            read,
            stopped,
        } = self;
        let not_listed = skipped - listed.len();
        inv.warnings.extend(listed);
        if not_listed > 0 {
            inv.warnings.push(InventoryWarning::EntriesNotListed {
                database: database.clone(),
                count: not_listed,
            });
        }
        let reason = match stopped {
            Some(reason) => Some(reason),
            None if skipped > MAX_ENTRY_WARNINGS || skipped > read => Some(format!(
                "{skipped} of {} entries are malformed: packages may be missing",
                skipped + read
            )),
            None => None,
        };
        if let Some(reason) = reason {
            inv.warnings
                .push(InventoryWarning::UnreadableDatabase { database, reason });
        }
    }
}

/// The first of `fields` (name, value) longer than [`MAX_FIELD_LEN`], as a
/// reason to skip the entry.
pub(crate) fn oversized<'a>(
    fields: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Option<String> {
    fields.into_iter().find_map(|(name, value)| {
        let len = value?.len();
        (len > MAX_FIELD_LEN)
            .then(|| format!("{name} is {len} bytes long (at most {MAX_FIELD_LEN})"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warnings(skipped: usize, read: usize) -> Vec<InventoryWarning> {
        let mut log = EntryLog::new("db");
        for i in 0..skipped {
            log.skip(i + 1, || format!("junk {i}"));
        }
        for _ in 0..read {
            log.read();
        }
        let mut inv = Inventory::default();
        log.finish(&mut inv);
        inv.warnings
    }

    #[test]
    fn a_few_skipped_entries_are_listed_and_the_database_stays_readable() {
        let w = warnings(3, 10);
        assert_eq!(w.len(), 3);
        assert!(w.iter().all(|w| !w.makes_incomplete()));
    }

    #[test]
    fn mostly_junk_is_unreadable() {
        let w = warnings(3, 2);
        assert_eq!(w.len(), 4);
        assert_eq!(
            w[3],
            InventoryWarning::UnreadableDatabase {
                database: "db".into(),
                reason: "3 of 5 entries are malformed: packages may be missing".into()
            }
        );
    }

    #[test]
    fn past_the_cap_one_count_and_unreadable() {
        let w = warnings(1_000_000, 5_000_000);
        assert_eq!(w.len(), MAX_ENTRY_WARNINGS + 2);
        assert_eq!(
            w[MAX_ENTRY_WARNINGS],
            InventoryWarning::EntriesNotListed {
                database: "db".into(),
                count: 1_000_000 - MAX_ENTRY_WARNINGS
            }
        );
        assert!(w[MAX_ENTRY_WARNINGS + 1].makes_incomplete());
    }

    #[test]
    fn oversized_fields() {
        let long = "x".repeat(MAX_FIELD_LEN + 1);
        assert_eq!(oversized([("name", Some("a")), ("arch", None)]), None);
        assert_eq!(
            oversized([("name", Some("a")), ("version", Some(long.as_str()))]),
            Some("version is 4097 bytes long (at most 4096)".into())
        );
    }
}
