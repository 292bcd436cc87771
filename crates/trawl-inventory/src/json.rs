//! Pieces shared by the JSON metadata readers (npm, Composer, .NET): values
//! read without building a document tree, so a file costs memory for the few
//! strings kept, not for its size. Values that are not kept are skipped with
//! `serde::de::IgnoredAny`, which `serde_json` scans iteratively (about a
//! byte of state per nesting level, no recursion), so deeply nested input
//! costs neither stack nor a tree; the readers' own visitors nest to a fixed
//! depth.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A JSON value expected to be a short string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Str {
    /// The key was not present.
    #[default]
    Absent,
    /// A string of at most the reader's limit.
    Value(String),
    /// A string longer than the limit (not kept).
    TooLong,
    /// Some other JSON type.
    NotString,
}

impl Str {
    /// The string, when there is a non-empty one.
    pub(crate) fn non_empty(&self) -> Option<&str> {
        match self {
            Str::Value(s) if !s.trim().is_empty() => Some(s),
            _ => None,
        }
    }

    /// Why there is no usable string, for a warning.
    pub(crate) fn problem(&self, key: &str) -> String {
        match self {
            Str::Absent => format!("no {key:?}"),
            Str::Value(_) => format!("empty {key:?}"),
            Str::TooLong => format!("{key:?} longer than {MAX_STR} bytes"),
            Str::NotString => format!("{key:?} is not a string"),
        }
    }
}

/// Longest string kept for a name, version or type.
pub(crate) const MAX_STR: usize = 1024;

/// Reads a [`Str`].
pub(crate) struct StrSeed;

impl<'de> de::DeserializeSeed<'de> for StrSeed {
    type Value = Str;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Str, D::Error> {
        d.deserialize_any(StrVisitor)
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Str;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Str, E> {
        Ok(if v.len() > MAX_STR {
            Str::TooLong
        } else {
            Str::Value(v.to_string())
        })
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Str, E> {
        Ok(Str::NotString)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Str, E> {
        Ok(Str::NotString)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Str, E> {
        Ok(Str::NotString)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Str, E> {
        Ok(Str::NotString)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Str, E> {
        Ok(Str::NotString)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Str, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Str::NotString)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Str, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Str::NotString)
    }
}

/// An object key, compared without keeping it when it is not one of `wanted`.
pub(crate) struct KeySeed<'k>(pub &'k [&'static str]);

impl<'de> de::DeserializeSeed<'de> for KeySeed<'_> {
    /// The index of the key in `wanted`, or `None`.
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|k| *k == v))
    }
}

/// An object read for one member only: the value of `key` read with `seed`
/// (the last one when the key repeats), `None` when the object has no such
/// key; the other members are skipped unread.
pub(crate) struct Member<S> {
    /// The member wanted.
    pub key: &'static str,
    /// What the object is, for the error when the value is not an object.
    pub what: &'static str,
    /// How the member's value is read.
    pub seed: S,
}

impl<'de, S: de::DeserializeSeed<'de> + Copy> de::DeserializeSeed<'de> for Member<S> {
    type Value = Option<S::Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, S: de::DeserializeSeed<'de> + Copy> Visitor<'de> for Member<S> {
    type Value = Option<S::Value>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut value = None;
        while let Some(key) = map.next_key_seed(KeySeed(&[self.key]))? {
            match key {
                Some(_) => value = Some(map.next_value_seed(self.seed)?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(value)
    }
}

/// A JSON document's top-level shape when it is not what a reader expected.
pub(crate) fn kind_name(first: Option<u8>) -> &'static str {
    match first {
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        Some(_) => "a number",
        None => "empty",
    }
}

/// The bytes after a UTF-8 byte-order mark, which Node's and npm's readers
/// strip before parsing; leading whitespace is left to the parser.
pub(crate) fn strip_bom(data: &[u8]) -> &[u8] {
    data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data)
}

/// The first non-whitespace byte.
pub(crate) fn first_byte(data: &[u8]) -> Option<u8> {
    data.iter().copied().find(|b| !b.is_ascii_whitespace())
}

/// `serde_json`'s error (which names its line and column), for a warning.
pub(crate) fn describe(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Eof => "unexpected end of JSON",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "unexpected JSON structure",
        serde_json::error::Category::Io => "read error",
    };
    format!("{what}: {e}")
}
