//! The byte encoding of stored records and index entries, written and read by
//! hand (no serde) so that decoding allocates exactly what the result owns.
//!
//! A payload is `LEB128 structure length ++ structure ++ text`: the structure
//! holds one-byte tags and LEB128 numbers (counts, string lengths); the bytes
//! of every string follow, in order, in the text part. The text part is
//! checked as UTF-8 once, as a whole, instead of string by string.

use super::record::BlobError;

/// Builds one payload.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    structure: Vec<u8>,
    text: String,
}

impl Writer {
    /// One byte (a tag).
    pub(crate) fn u8(&mut self, b: u8) {
        self.structure.push(b);
    }

    /// `n` as unsigned LEB128.
    pub(crate) fn len(&mut self, mut n: usize) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.structure.push(byte);
                return;
            }
            self.structure.push(byte | 0x80);
        }
    }

    /// `N` raw bytes.
    pub(crate) fn bytes<const N: usize>(&mut self, bytes: [u8; N]) {
        self.structure.extend_from_slice(&bytes);
    }

    /// A nested payload (another [`Writer`]'s [`finish`](Self::finish)):
    /// its length and its bytes, both in the structure, so that a reader
    /// can take it whole without reading inside it.
    pub(crate) fn nested(&mut self, payload: &[u8]) {
        self.len(payload.len());
        self.structure.extend_from_slice(payload);
    }

    /// A string: its length in the structure, its bytes in the text.
    pub(crate) fn str(&mut self, s: &str) {
        self.len(s.len());
        self.text.push_str(s);
    }

    /// `0`, or `1` and the string.
    pub(crate) fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
        }
    }

    /// A list of strings.
    pub(crate) fn strings(&mut self, items: &[String]) {
        self.len(items.len());
        for s in items {
            self.str(s);
        }
    }

    /// The payload.
    pub(crate) fn finish(self) -> Vec<u8> {
        let mut head = Writer::default();
        head.len(self.structure.len());
        let mut out =
            Vec::with_capacity(head.structure.len() + self.structure.len() + self.text.len());
        out.extend_from_slice(&head.structure);
        out.extend_from_slice(&self.structure);
        out.extend_from_slice(self.text.as_bytes());
        out
    }
}

/// Reads what a [`Writer`] wrote; every read is bounds-checked, so damaged
/// input is an error, never a panic or an oversized allocation.
pub(crate) struct Reader<'a> {
    structure: &'a [u8],
    text: &'a str,
}

impl<'a> Reader<'a> {
    /// Splits a payload into its structure and its text, checking the text.
    pub(crate) fn new(payload: &'a [u8]) -> Result<Self, BlobError> {
        let (structure, text) = Self::split(payload)?;
        Ok(Self::from_parts(structure, text))
    }

    /// A payload's structure and its text, the text checked as UTF-8.
    pub(crate) fn split(payload: &'a [u8]) -> Result<(&'a [u8], &'a str), BlobError> {
        let mut head = Reader {
            structure: payload,
            text: "",
        };
        let n = head.len()?;
        if n > head.structure.len() {
            return Err(Self::short());
        }
        let (structure, text) = head.structure.split_at(n);
        let text = std::str::from_utf8(text).map_err(|e| BlobError::Decode(e.to_string()))?;
        Ok((structure, text))
    }

    /// Reads a structure and a text [`split`](Self::split) gave.
    pub(crate) fn from_parts(structure: &'a [u8], text: &'a str) -> Self {
        Self { structure, text }
    }

    /// How many bytes of the text are not read yet.
    pub(crate) fn text_left(&self) -> usize {
        self.text.len()
    }

    fn short() -> BlobError {
        BlobError::Decode("unexpected end of data".into())
    }

    /// One byte.
    pub(crate) fn u8(&mut self) -> Result<u8, BlobError> {
        let (&b, rest) = self.structure.split_first().ok_or_else(Self::short)?;
        self.structure = rest;
        Ok(b)
    }

    /// `N` raw bytes.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], BlobError> {
        let (head, rest) = self
            .structure
            .split_first_chunk::<N>()
            .ok_or_else(Self::short)?;
        self.structure = rest;
        Ok(*head)
    }

    /// A LEB128 number that fits a `usize`.
    #[inline]
    pub(crate) fn len(&mut self) -> Result<usize, BlobError> {
        // Most numbers (counts, string lengths, tags' payloads) take one byte.
        if let Some((&b, rest)) = self.structure.split_first()
            && b & 0x80 == 0
        {
            self.structure = rest;
            return Ok(usize::from(b));
        }
        self.len_long()
    }

    /// [`len`](Self::len) of a number of more than one byte.
    fn len_long(&mut self) -> Result<usize, BlobError> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return usize::try_from(n).map_err(|_| BlobError::Decode("length overflow".into()));
            }
        }
        Err(BlobError::Decode("length overflow".into()))
    }

    /// A count of items that each take at least one byte of structure: never
    /// more than the bytes left, so a damaged count cannot reserve huge vectors.
    pub(crate) fn count(&mut self) -> Result<usize, BlobError> {
        let n = self.len()?;
        if n > self.structure.len() {
            return Err(Self::short());
        }
        Ok(n)
    }

    /// What [`Writer::nested`] wrote, borrowed (not yet checked: read it
    /// with [`Reader::new`]).
    pub(crate) fn nested(&mut self) -> Result<&'a [u8], BlobError> {
        let n = self.len()?;
        if n > self.structure.len() {
            return Err(Self::short());
        }
        let (nested, rest) = self.structure.split_at(n);
        self.structure = rest;
        Ok(nested)
    }

    /// A string, borrowed.
    pub(crate) fn str(&mut self) -> Result<&'a str, BlobError> {
        let n = self.len()?;
        let s = self
            .text
            .get(..n)
            .ok_or_else(|| BlobError::Decode(format!("string of {n} bytes past the text's end")))?;
        self.text = &self.text[n..];
        Ok(s)
    }

    /// What [`Writer::opt_str`] wrote, borrowed.
    pub(crate) fn opt_str(&mut self) -> Result<Option<&'a str>, BlobError> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.str().map(Some),
            tag => Err(BlobError::Decode(format!("bad option tag {tag}"))),
        }
    }

    /// An owned string.
    pub(crate) fn string(&mut self) -> Result<String, BlobError> {
        self.str().map(str::to_owned)
    }

    /// What [`Writer::opt_str`] wrote, owned.
    pub(crate) fn opt_string(&mut self) -> Result<Option<String>, BlobError> {
        Ok(self.opt_str()?.map(str::to_owned))
    }

    /// A list of owned strings.
    pub(crate) fn strings(&mut self) -> Result<Vec<String>, BlobError> {
        let n = self.count()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.string()?);
        }
        Ok(out)
    }

    /// Fails unless everything was read.
    pub(crate) fn finish(self) -> Result<(), BlobError> {
        if self.structure.is_empty() && self.text.is_empty() {
            Ok(())
        } else {
            Err(BlobError::Decode(format!(
                "{} bytes left over",
                self.structure.len() + self.text.len()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let mut w = Writer::default();
        w.len(300);
        w.str("héllo");
        w.opt_str(None);
        w.opt_str(Some(""));
        w.strings(&["a".into(), "bc".into()]);
        w.bytes(7u64.to_le_bytes());
        let mut inner = Writer::default();
        inner.str("inner");
        w.nested(&inner.finish());
        let out = w.finish();
        let mut r = Reader::new(&out).unwrap();
        assert_eq!(r.len().unwrap(), 300);
        assert_eq!(r.str().unwrap(), "héllo");
        assert_eq!(r.opt_string().unwrap(), None);
        assert_eq!(r.opt_string().unwrap(), Some(String::new()));
        assert_eq!(r.strings().unwrap(), ["a", "bc"]);
        assert_eq!(u64::from_le_bytes(r.array().unwrap()), 7);
        let mut inner = Reader::new(r.nested().unwrap()).unwrap();
        assert_eq!(inner.str().unwrap(), "inner");
        inner.finish().unwrap();
        r.finish().unwrap();
        // A nested payload longer than what is left.
        assert!(Reader::new(&[2, 5, 0]).unwrap().nested().is_err());

        // A string cut inside a character, invalid UTF-8, a structure longer
        // than the payload, a huge count, an endless number.
        let mut w = Writer::default();
        w.len(1);
        let mut cut = w.finish();
        cut.extend_from_slice("é".as_bytes());
        assert!(Reader::new(&cut).unwrap().str().is_err());
        assert!(Reader::new(&[0, 0xff]).is_err());
        assert!(Reader::new(&[5, 1]).is_err());
        let mut r = Reader::new(&[4, 0xff, 0xff, 0xff, 0x7f]).unwrap();
        assert!(r.count().is_err());
        let mut r = Reader::new(&[
            11, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
        ])
        .unwrap();
        assert!(r.len().is_err());
    }
}
