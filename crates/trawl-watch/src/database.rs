//! The advisory database as the service reads it: never in place. Each
//! new version of the file is copied into `DATA/advisory-db/`, the copy is
//! verified whole ([`AdvisoryStore::verify`]) and only then used, so a file
//! rewritten in place (which would turn the mapped pages of a database in
//! use into a SIGBUS) is at worst a torn copy that is refused and logged
//! until the file is whole again. Files are told apart by their identity
//! (device, inode, size, mtime, ctime), polled.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::warn;
use trawl::advisory::AdvisoryStore;

use crate::redact::error_chain;
use crate::service::ServiceError;
use crate::store::local_now_ms as now_ms;

/// What identifies one version of a file that is replaced by rename (or,
/// less wisely, rewritten in place): on Unix its device, inode, size, mtime
/// and ctime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileIdentity(Vec<i128>);

impl FileIdentity {
    /// The same file (device and inode), whatever its contents.
    pub(crate) fn same_file(&self, other: &FileIdentity) -> bool {
        cfg!(unix) && self.0.get(..2) == other.0.get(..2)
    }
}

pub(crate) fn file_identity(path: &Path) -> Option<FileIdentity> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some(FileIdentity(vec![
            i128::from(meta.dev()),
            i128::from(meta.ino()),
            i128::from(meta.size()),
            i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        ]))
    }
    #[cfg(not(unix))]
    {
        let modified = meta
            .modified()
            .ok()?
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .ok()?;
        Some(FileIdentity(vec![
            i128::from(meta.len()),
            i128::try_from(modified.as_nanos()).ok()?,
        ]))
    }
}

/// Where the private copies of the advisory database live.
pub(crate) fn copies_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("advisory-db")
}

pub(crate) fn remove_copy(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        warn!(path = %path.display(), error = %e, "cannot remove an old copy of the advisory database");
    }
}

/// What became of an attempt to take a new version of the advisory database.
pub(crate) enum Copied {
    /// Copied, opened and verified: the store reads the copy.
    Ready(Box<AdvisoryStore>, PathBuf),
    /// The file changed while it was copied: try again at the next tick.
    Changing,
    /// The file (as it is now) is not a usable database.
    Unusable(String),
}

/// Copies `path` into `dir` and opens and verifies the copy. The database
/// is never read in place: its writer may rewrite it while it is read, and
/// a store mapping a file that shrinks dies of SIGBUS. A copy taken while
/// the file changed is dropped (its identity differs before and after);
/// a torn copy fails [`AdvisoryStore::verify`], which reads all of it.
pub(crate) fn copy_database(path: &Path, dir: &Path, before: &FileIdentity) -> Copied {
    // Unique within the process too: two copies in one millisecond (a torn
    // file refused, then taken again) must not share a name, or removing
    // the refused one removes the one in use.
    static COPIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let copy = dir.join(format!("{}-{n}.db", now_ms()));
    let unusable = |copy: &Path, message: String| {
        remove_copy(copy);
        Copied::Unusable(message)
    };
    if let Err(source) = std::fs::create_dir_all(dir) {
        return Copied::Unusable(error_chain(&ServiceError::AdvisoryDbCopy {
            from: path.to_owned(),
            to: dir.to_owned(),
            source,
        }));
    }
    if let Err(source) = std::fs::copy(path, &copy) {
        let error = ServiceError::AdvisoryDbCopy {
            from: path.to_owned(),
            to: copy.clone(),
            source,
        };
        return unusable(&copy, error_chain(&error));
    }
    if file_identity(path).as_ref() != Some(before) {
        remove_copy(&copy);
        return Copied::Changing;
    }
    let db = match AdvisoryStore::open(&copy) {
        Ok(db) => db,
        Err(e) => return unusable(&copy, error_chain(&e)),
    };
    match db.verify() {
        Ok(()) => Copied::Ready(Box::new(db), copy),
        Err(e) => {
            drop(db);
            unusable(&copy, error_chain(&e))
        }
    }
}

/// The advisory database at start: old copies are removed, then the file is
/// copied and opened (a few tries while it is changing).
pub(crate) async fn open_database_at_start(
    path: &Path,
    dir: &Path,
) -> Result<(AdvisoryStore, PathBuf, Option<FileIdentity>), ServiceError> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            remove_copy(&entry.path());
        }
    }
    for _ in 0..20 {
        let Some(identity) = file_identity(path) else {
            // Not there: the store says so, with the path.
            let path = path.to_owned();
            return match tokio::task::spawn_blocking(move || AdvisoryStore::open(path)).await {
                Ok(Err(e)) => Err(e.into()),
                _ => Err(ServiceError::Lost),
            };
        };
        let (from, to, seen) = (path.to_owned(), dir.to_owned(), identity.clone());
        let copied = tokio::task::spawn_blocking(move || copy_database(&from, &to, &seen))
            .await
            .map_err(|_| ServiceError::Lost)?;
        match copied {
            Copied::Ready(db, copy) => return Ok((*db, copy, Some(identity))),
            Copied::Changing => tokio::time::sleep(Duration::from_millis(250)).await,
            Copied::Unusable(reason) => {
                return Err(ServiceError::AdvisoryDbUnusable {
                    path: path.to_owned(),
                    reason,
                });
            }
        }
    }
    Err(ServiceError::AdvisoryDbChanging {
        path: path.to_owned(),
    })
}

/// The advisory database (and its private copy), when a new version of the
/// file is in place and verifies. A version that does not is reported once
/// and not tried again; the next change of the file is.
pub(crate) async fn new_database(
    path: &Path,
    copies: &Path,
    seen: &mut Option<FileIdentity>,
    last_problem: &mut Option<String>,
) -> Option<(AdvisoryStore, PathBuf)> {
    let identity = file_identity(path)?;
    if Some(&identity) == seen.as_ref() {
        return None;
    }
    if let Some(old) = seen.as_ref()
        && old.same_file(&identity)
    {
        warn!(
            path = %path.display(),
            "the advisory database was modified in place; it is only read through a \
             verified copy, but replace it by rename (as `db build -o` and `db pull -o` do)"
        );
    }
    let (from, to, seen_now) = (path.to_owned(), copies.to_owned(), identity.clone());
    let copied = tokio::task::spawn_blocking(move || copy_database(&from, &to, &seen_now))
        .await
        .ok()?;
    match copied {
        Copied::Ready(db, copy) => {
            *seen = Some(identity);
            *last_problem = None;
            Some((*db, copy))
        }
        Copied::Changing => None,
        Copied::Unusable(problem) => {
            *seen = Some(identity);
            if last_problem.as_ref() != Some(&problem) {
                warn!(error = %problem, "new advisory database not usable; keeping the one in use");
                *last_problem = Some(problem);
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_database_copy_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let feed = dir.path().join("feed");
        std::fs::create_dir_all(&feed).unwrap();
        std::fs::write(
            feed.join("TRAWL-1.json"),
            r#"{"schema_version": "1.6.0", "id": "TRAWL-1", "modified": "2026-11-01T00:00:00Z",
                "affected": [{"package": {"ecosystem": "Debian:12", "name": "openssl"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0"}]}]}]}"#,
        )
        .unwrap();
        let mut builder = trawl::advisory::StoreBuilder::new();
        builder.add_osv_dir(&feed).unwrap();
        let db = dir.path().join("trawl.db");
        builder.write(&db).unwrap();
        let copies = dir.path().join("copies");
        let identity = file_identity(&db).unwrap();
        let Copied::Ready(store, copy) = copy_database(&db, &copies, &identity) else {
            panic!("a whole database is taken");
        };
        assert_eq!(store.info().records, 1);
        assert!(copy.starts_with(&copies) && copy.exists());
        // Cut short in place: refused, and the torn copy is removed.
        let bytes = std::fs::read(&db).unwrap();
        std::fs::write(&db, &bytes[..bytes.len() / 2]).unwrap();
        let torn = file_identity(&db).unwrap();
        assert!(torn.same_file(&identity) && torn != identity);
        assert!(matches!(
            copy_database(&db, &copies, &torn),
            Copied::Unusable(_)
        ));
        // Changed since it was looked at: taken at the next look.
        assert!(matches!(
            copy_database(&db, &copies, &identity),
            Copied::Changing
        ));
        let left: Vec<_> = std::fs::read_dir(&copies).unwrap().collect();
        assert_eq!(left.len(), 1, "only the copy in use is left");
        // The store in use reads its own copy, whatever happens to the file.
        std::fs::write(&db, b"").unwrap();
        assert_eq!(store.info().records, 1);
        store.verify().unwrap();
    }

    #[test]
    fn file_identity_changes_on_rename() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        std::fs::write(&path, b"one").unwrap();
        let first = file_identity(&path).unwrap();
        assert_eq!(file_identity(&path), Some(first.clone()));
        let next = dir.path().join("db.new");
        std::fs::write(&next, b"one").unwrap();
        std::fs::rename(&next, &path).unwrap();
        assert_ne!(file_identity(&path).unwrap(), first);
        assert_eq!(file_identity(&dir.path().join("missing")), None);
    }
}
