//! Canonical package names per ecosystem: the one spelling under which an
//! advisory's package and an installed package meet.
//!
//! The same canonicalisation is applied on both sides: when records are
//! indexed ([`AdvisoryDb`](crate::AdvisoryDb), the
//! [`StoreBuilder`](crate::StoreBuilder)) and when a
//! [`PackageQuery`](crate::PackageQuery) is answered, so a caller may pass a
//! name as the package manager wrote it.
//!
//! | ecosystem | rule | example |
//! |---|---|---|
//! | `PyPI` | PEP 503: lower case, each run of `-`, `_`, `.` becomes `-` | `Zope.Interface` → `zope-interface` |
//! | `Packagist` | lower case (Composer names are case-insensitive) | `Symfony/Console` → `symfony/console` |
//! | `NuGet` | lower case (package ids are case-insensitive) | `Newtonsoft.Json` → `newtonsoft.json` |
//! | `Go` | as is: module paths are case-sensitive and keep `/v2` suffixes | `github.com/beego/beego/v2` |
//! | `npm` | as is (`@scope/name`) | `@babel/core` |
//! | `Maven` | as is, `group:artifact` | `org.apache.logging.log4j:log4j-core` |
//! | `crates.io`, `RubyGems` | as is (the names are case-sensitive in OSV) | `serde`, `rack` |
//! | anything else (distributions) | as is | `openssl` |
//!
//! ```
//! use trawl_advisory::canonical::package_name;
//! assert_eq!(package_name("PyPI", "Foo__Bar.baz"), "foo-bar-baz");
//! assert_eq!(package_name("NuGet", "Newtonsoft.Json"), "newtonsoft.json");
//! assert_eq!(package_name("Go", "github.com/BurntSushi/toml"), "github.com/BurntSushi/toml");
//! assert_eq!(package_name("Debian:12", "Python3.11"), "Python3.11");
//! ```

use std::borrow::Cow;

use crate::ecosystem::Ecosystem;

/// The canonical name of package `name` in OSV ecosystem `ecosystem`
/// (written in any form [`Ecosystem::parse`] takes); borrowed when the name
/// is already canonical.
pub fn package_name<'a>(ecosystem: &str, name: &'a str) -> Cow<'a, str> {
    let ecosystem = Ecosystem::parse(ecosystem);
    match ecosystem.distro() {
        "PyPI" => pep503(name),
        "Packagist" | "NuGet" => lowercase(name),
        _ => Cow::Borrowed(name),
    }
}

fn lowercase(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) || !name.is_ascii() {
        Cow::Owned(name.to_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

/// PEP 503 normalisation: `re.sub(r"[-_.]+", "-", name).lower()`.
fn pep503(name: &str) -> Cow<'_, str> {
    let canonical = {
        let mut prev_sep = false;
        name.chars().all(|c| {
            let sep = matches!(c, '-' | '_' | '.');
            let ok = !(c.is_uppercase() || c == '_' || c == '.' || (sep && prev_sep));
            prev_sep = sep;
            ok
        })
    };
    if canonical {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len());
    let mut prev_sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !prev_sep {
                out.push('-');
            }
            prev_sep = true;
        } else {
            out.extend(c.to_lowercase());
            prev_sep = false;
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pep503_cases() {
        // The examples of PEP 503 and packaging's canonicalize_name tests.
        for (input, want) in [
            ("friendly-bard", "friendly-bard"),
            ("Friendly-Bard", "friendly-bard"),
            ("FRIENDLY-BARD", "friendly-bard"),
            ("friendly.bard", "friendly-bard"),
            ("friendly_bard", "friendly-bard"),
            ("friendly--bard", "friendly-bard"),
            ("FrIeNdLy-._.-bArD", "friendly-bard"),
            ("urllib3", "urllib3"),
            ("PyYAML", "pyyaml"),
        ] {
            assert_eq!(package_name("PyPI", input), want, "{input}");
        }
        assert!(matches!(package_name("PyPI", "requests"), Cow::Borrowed(_)));
    }

    #[test]
    fn both_sides_of_the_in_memory_db_meet() {
        let record: crate::Advisory = serde_json::from_value(serde_json::json!({
            "id": "TEST-1",
            "affected": [{"package": {"ecosystem": "PyPI", "name": "Zope.Interface"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "5.0"}]}]}]
        }))
        .unwrap();
        let mut db = crate::AdvisoryDb::new();
        assert!(db.add_osv(record).is_empty());
        for name in [
            "zope-interface",
            "zope_interface",
            "ZOPE.INTERFACE",
            "Zope.Interface",
        ] {
            let query = crate::PackageQuery {
                ecosystem: "PyPI",
                name,
                version: "4.7",
            };
            assert_eq!(db.matches(&query).unwrap().len(), 1, "{name}");
        }
        let other = crate::PackageQuery {
            ecosystem: "PyPI",
            name: "zopeinterface",
            version: "4.7",
        };
        assert!(db.matches(&other).unwrap().is_empty());
    }

    #[test]
    fn other_ecosystems() {
        assert_eq!(
            package_name("Packagist", "Symfony/Console"),
            "symfony/console"
        );
        assert_eq!(
            package_name("NuGet", "System.Text.Json"),
            "system.text.json"
        );
        assert_eq!(package_name("npm", "@Scope/Name"), "@Scope/Name");
        assert_eq!(package_name("Maven", "org.Foo:Bar"), "org.Foo:Bar");
        assert_eq!(package_name("RubyGems", "RedCloth"), "RedCloth");
        assert_eq!(package_name("crates.io", "Inflector"), "Inflector");
        assert_eq!(
            package_name("Go", "github.com/beego/beego/v2"),
            "github.com/beego/beego/v2"
        );
    }
}
