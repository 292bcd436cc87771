//! The two metadata files of a Java archive: Maven's `pom.properties`
//! (a Java properties file) and the jar manifest `META-INF/MANIFEST.MF`.

use std::collections::HashMap;

/// `groupId`, `artifactId`, `version` of a `pom.properties`, read with the
/// rules of `java.util.Properties.load`: `#`/`!` comments, `=`, `:` or
/// whitespace between key and value, a line ending in an odd number of
/// backslashes continuing on the next, `\uXXXX` and `\t`-style escapes.
/// The other keys are ignored.
pub fn pom_properties(text: &str) -> PomProperties {
    let mut out = PomProperties::default();
    for (key, value) in properties(text) {
        match key.as_str() {
            "groupId" => out.group_id = value,
            "artifactId" => out.artifact_id = value,
            "version" => out.version = value,
            _ => {}
        }
    }
    out
}

/// What a `pom.properties` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PomProperties {
    /// `groupId` (empty when missing).
    pub group_id: String,
    /// `artifactId` (empty when missing).
    pub artifact_id: String,
    /// `version` (empty when missing).
    pub version: String,
}

/// The `(key, value)` pairs of a properties file, in order.
fn properties(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = text.split(['\n', '\r']).peekable();
    while let Some(first) = lines.next() {
        let first = first.trim_start_matches([' ', '\t', '\x0c']);
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        // Join continuation lines (an odd number of trailing backslashes).
        let mut logical = String::from(first);
        while ends_in_odd_backslashes(&logical) {
            logical.pop();
            // `\r\n` splits into two lines, the second empty: skip it.
            while lines.peek() == Some(&"") {
                lines.next();
            }
            match lines.next() {
                Some(next) => logical.push_str(next.trim_start_matches([' ', '\t', '\x0c'])),
                None => break,
            }
        }
        let (key, value) = split_key_value(&logical);
        out.push((unescape(key), unescape(value)));
    }
    out
}

fn ends_in_odd_backslashes(s: &str) -> bool {
    s.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// The key ends at the first unescaped `=`, `:` or whitespace; the value
/// starts after whitespace and one `=` or `:`.
fn split_key_value(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut i = 0;
    let mut escaped = false;
    while i < bytes.len() {
        let b = bytes[i];
        if escaped {
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if matches!(b, b'=' | b':' | b' ' | b'\t' | b'\x0c') {
            break;
        }
        i += 1;
    }
    let key = &line[..i];
    let mut rest = line[i..].trim_start_matches([' ', '\t', '\x0c']);
    if let Some(r) = rest.strip_prefix(['=', ':']) {
        rest = r.trim_start_matches([' ', '\t', '\x0c']);
    }
    (key, rest)
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) if hex.len() == 4 => out.push(ch),
                    _ => out.push('\u{fffd}'),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// The main section of a jar manifest: attribute names lower-cased, values
/// with continuation lines (starting with one space) joined, as the JAR
/// specification defines them
/// (<https://docs.oracle.com/en/java/javase/17/docs/specs/jar/jar.html#jar-manifest>).
pub fn manifest_main(text: &str) -> HashMap<String, String> {
    let mut attrs: HashMap<String, String> = HashMap::new();
    let mut last: Option<String> = None;
    for line in text.split("\r\n").flat_map(|l| l.split(['\n', '\r'])) {
        if line.is_empty() {
            // The main section ends at the first blank line.
            if !attrs.is_empty() || last.is_some() {
                break;
            }
            continue;
        }
        if let Some(cont) = line.strip_prefix(' ') {
            if let Some(key) = &last
                && let Some(v) = attrs.get_mut(key)
            {
                v.push_str(cont);
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            last = None;
            continue;
        };
        let key = name.trim().to_ascii_lowercase();
        // The first occurrence wins, as in java.util.jar.Attributes.
        attrs
            .entry(key.clone())
            .or_insert_with(|| value.strip_prefix(' ').unwrap_or(value).to_string());
        last = Some(key);
    }
    attrs
}

/// A package identity from a manifest: `(group, name, version)`.
///
/// The name is `Implementation-Title`, else `Bundle-SymbolicName` (without
/// its `;` directives); the version `Implementation-Version`, else
/// `Bundle-Version`; the group `Implementation-Vendor-Id` when present.
pub fn manifest_identity(
    attrs: &HashMap<String, String>,
) -> (Option<String>, Option<String>, Option<String>) {
    let get = |k: &str| {
        attrs
            .get(k)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let name = get("implementation-title").or_else(|| {
        get("bundle-symbolicname")
            .map(|s| s.split(';').next().unwrap_or("").trim().to_string())
            .filter(|s| !s.is_empty())
    });
    let version = get("implementation-version").or_else(|| get("bundle-version"));
    (get("implementation-vendor-id"), name, version)
}

/// `(name, version)` from an archive's file name: `commons-lang3-3.12.0.jar`
/// is `commons-lang3` at `3.12.0` (the version starts at the first `-`
/// followed by a digit); `commons-lang3.jar` has no version.
pub fn file_name_identity(file_name: &str) -> (String, Option<String>) {
    let base = file_name.rsplit('/').next().unwrap_or(file_name);
    let stem = base.rsplit_once('.').map_or(base, |(s, _)| s);
    let b = stem.as_bytes();
    for i in 0..b.len() {
        if b[i] == b'-' && i > 0 && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            return (stem[..i].to_string(), Some(stem[i + 1..].to_string()));
        }
    }
    (stem.to_string(), None)
}

/// Whether two versions are equal as OSGi bundles write them: split at
/// `.`, `-`, `_`, trailing `0` components dropped (`1.3` = `1.3.0`).
pub fn osgi_equal(a: &str, b: &str) -> bool {
    fn parts(v: &str) -> Vec<&str> {
        let mut p: Vec<&str> = v.split(['.', '-', '_']).collect();
        while p.last() == Some(&"0") {
            p.pop();
        }
        p
    }
    parts(a) == parts(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_like_java() {
        let p = pom_properties(
            "#Generated by Maven\n#Tue Oct 01\n! other comment\n  groupId = org.apache\\\n    .commons\r\nartifactId:commons-lang3\nversion 3.12.0\nx\\u0041=\\u0042\n",
        );
        assert_eq!(p.group_id, "org.apache.commons");
        assert_eq!(p.artifact_id, "commons-lang3");
        assert_eq!(p.version, "3.12.0");
        assert_eq!(properties("a\\ b=c\\:d")[0], ("a b".into(), "c:d".into()));
    }

    #[test]
    fn manifest_continuations_and_sections() {
        let m = manifest_main(
            "Manifest-Version: 1.0\r\nImplementation-Title: a-very-long-\r\n title\r\nBundle-SymbolicName: org.x.y;singleton:=true\r\n\r\nName: org/x/\r\nImplementation-Title: section\r\n",
        );
        assert_eq!(m["implementation-title"], "a-very-long-title");
        let (g, n, v) = manifest_identity(&m);
        assert_eq!(
            (g, n.as_deref(), v),
            (None, Some("a-very-long-title"), None)
        );
        let m =
            manifest_main("Bundle-SymbolicName: org.x.y; singleton:=true\nBundle-Version: 2.0.1\n");
        assert_eq!(
            manifest_identity(&m),
            (None, Some("org.x.y".into()), Some("2.0.1".into()))
        );
    }

    #[test]
    fn file_names() {
        assert_eq!(
            file_name_identity("a/b/commons-lang3-3.12.0.jar"),
            ("commons-lang3".into(), Some("3.12.0".into()))
        );
        assert_eq!(
            file_name_identity("guava-31.1-jre.jar"),
            ("guava".into(), Some("31.1-jre".into()))
        );
        assert_eq!(
            file_name_identity("commons-lang3.jar"),
            ("commons-lang3".into(), None)
        );
        assert_eq!(file_name_identity("-1.0.jar"), ("-1.0".into(), None));
    }
}
