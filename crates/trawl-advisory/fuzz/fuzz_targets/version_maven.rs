//! Maven's ComparableVersion over arbitrary text: two versions separated by the first newline must
//! parse or fail without panicking, print as given, compare antisymmetrically and
//! consistently with `VersionScheme::compare`, and hash alike when equal.
#![no_main]

use std::hash::BuildHasher;

use libfuzzer_sys::fuzz_target;
use trawl_advisory::version::{MavenVersion, VersionScheme};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (a, b) = text.split_once('\n').unwrap_or((&text, "1"));
    let (Ok(va), Ok(vb)) = (MavenVersion::parse(a), MavenVersion::parse(b)) else {
        return;
    };
    assert_eq!(va.to_string(), a);
    let order = va.cmp(&vb);
    assert_eq!(vb.cmp(&va), order.reverse());
    assert_eq!(VersionScheme::Maven.compare(a, b).ok(), Some(order));
    if va == vb {
        let state = std::hash::RandomState::new();
        assert_eq!(state.hash_one(&va), state.hash_one(&vb));
    }
});
