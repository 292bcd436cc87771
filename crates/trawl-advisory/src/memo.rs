//! Answering the same query once: [`Memoized`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::db::{AdvisoryMatch, AdvisorySource, PackageQuery, QueryError};

type Answer<'s> = Arc<Result<Vec<AdvisoryMatch<'s>>, QueryError>>;

/// An [`AdvisorySource`] that remembers every answer of another one, for a
/// batch of work that asks the same questions many times: re-matching
/// hundreds of stored inventories of images that share base layers asks
/// about the same (package, version) pairs over and over.
///
/// Memory grows with the distinct queries asked, so keep one for a batch and
/// drop it after; it never sees changes to the source it wraps. Safe to
/// share between threads; two threads asking the same new question may both
/// ask the source.
///
/// ```
/// use trawl_advisory::{AdvisoryDb, AdvisorySource, Memoized, PackageQuery};
///
/// let db = AdvisoryDb::new();
/// let memo = Memoized::new(&db);
/// let q = PackageQuery { ecosystem: "Debian:12", name: "openssl", version: "3.0.11-1~deb12u2" };
/// assert!(memo.matches(&q)?.is_empty());
/// assert!(memo.matches(&q)?.is_empty());
/// assert_eq!(memo.asked(), 1);
/// # Ok::<(), trawl_advisory::QueryError>(())
/// ```
pub struct Memoized<'s> {
    source: &'s dyn AdvisorySource,
    answers: Mutex<HashMap<(String, String, String), Answer<'s>>>,
    ecosystems: Mutex<HashMap<String, bool>>,
}

impl<'s> Memoized<'s> {
    /// Wraps `source`.
    pub fn new(source: &'s dyn AdvisorySource) -> Self {
        Memoized {
            source,
            answers: Mutex::default(),
            ecosystems: Mutex::default(),
        }
    }

    /// How many distinct package queries went to the source.
    pub fn asked(&self) -> usize {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl std::fmt::Debug for Memoized<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memoized")
            .field("asked", &self.asked())
            .finish_non_exhaustive()
    }
}

impl AdvisorySource for Memoized<'_> {
    fn matches(&self, query: &PackageQuery<'_>) -> Result<Vec<AdvisoryMatch<'_>>, QueryError> {
        let key = (
            query.ecosystem.to_string(),
            query.name.to_string(),
            query.version.to_string(),
        );
        let known = self
            .answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .cloned();
        let answer = match known {
            Some(answer) => answer,
            None => {
                // Asked without holding the lock, so other threads go on.
                let answer = Arc::new(self.source.matches(query));
                self.answers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(key, answer.clone());
                answer
            }
        };
        (*answer).clone()
    }

    fn has_ecosystem(&self, ecosystem: &str) -> bool {
        if let Some(known) = self
            .ecosystems
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(ecosystem)
        {
            return *known;
        }
        let has = self.source.has_ecosystem(ecosystem);
        self.ecosystems
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(ecosystem.to_string(), has);
        has
    }
}
