//! Version schemes, advisory feeds, the advisory database and matching for Trawl.
#![deny(missing_docs)]
