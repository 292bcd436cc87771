//! The checks the fuzz targets of schemes with a normal form share (Go,
//! npm, PyPI): over arbitrary text (two versions, split at the first
//! newline) the parser must not panic; the ordering must be a consistent
//! total order (reflexive, antisymmetric, agreeing with `Eq`, `Hash` and
//! `VersionScheme::compare`), and the normal form must read back as the
//! same version.

/// A fuzz target for `$ty` (parsed with `$ty::parse`, normal form
/// `$normal(&version)`) compared as `$scheme`.
macro_rules! normalized_target {
    ($ty:ty, $scheme:expr, $normal:expr) => {
        libfuzzer_sys::fuzz_target!(|data: &[u8]| {
            use std::cmp::Ordering;
            use std::hash::{BuildHasher, RandomState};

            let Ok(text) = std::str::from_utf8(data) else {
                return;
            };
            let (a, b) = text.split_once('\n').unwrap_or((text, ""));
            let (Ok(x), y) = (<$ty>::parse(a), <$ty>::parse(b)) else {
                return;
            };
            assert_eq!(x.cmp(&x), Ordering::Equal);
            let normal: String = $normal(&x);
            let again = <$ty>::parse(&normal).expect("the normal form parses");
            assert_eq!(again, x);
            let Ok(y) = y else {
                return;
            };
            let order = x.cmp(&y);
            assert_eq!(y.cmp(&x), order.reverse());
            assert_eq!(x == y, order == Ordering::Equal);
            assert_eq!($scheme.compare(a, b).ok(), Some(order));
            if order == Ordering::Equal {
                let hasher = RandomState::new();
                assert_eq!(hasher.hash_one(&x), hasher.hash_one(&y));
            }
        });
    };
}
