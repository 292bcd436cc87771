//! The Npm version parser over arbitrary text (two versions, split at the
//! first newline): must not panic; the ordering must be a consistent total order
//! (reflexive, antisymmetric, agreeing with `Eq`, `Hash` and
//! `VersionScheme::compare`), and the normal form must read back as the same
//! version.
#![no_main]

use std::cmp::Ordering;
use std::hash::{BuildHasher, RandomState};

use libfuzzer_sys::fuzz_target;
use trawl_advisory::{NpmVersion, VersionScheme};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (a, b) = text.split_once('\n').unwrap_or((text, ""));
    let (Ok(x), y) = (NpmVersion::parse(a), NpmVersion::parse(b)) else {
        return;
    };
    assert_eq!(x.cmp(&x), Ordering::Equal);
    let again = NpmVersion::parse(&x.normalized()).expect("the normal form parses");
    assert_eq!(again, x);
    let Ok(y) = y else {
        return;
    };
    let order = x.cmp(&y);
    assert_eq!(y.cmp(&x), order.reverse());
    assert_eq!(x == y, order == Ordering::Equal);
    assert_eq!(VersionScheme::Npm.compare(a, b).ok(), Some(order));
    if order == Ordering::Equal {
        let hasher = RandomState::new();
        assert_eq!(hasher.hash_one(&x), hasher.hash_one(&y));
    }
});
