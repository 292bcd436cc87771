//! How records and index entries are laid out inside the store: a compact
//! hand-written encoding (see [`wire`](super::wire)), framed with a checksum.
//!
//! A record is the OSV [`Advisory`] field by field, enums as one-byte tags and
//! raw JSON (`database_specific`, `ecosystem_specific`) as a tagged tree, so
//! that decoding allocates only the strings and lists the record owns and
//! parses no text. The store tests compare decoded records with the originals.
//!
//! Every blob is framed as `CRC-32 (u32, little endian) ++ payload`, so a flipped
//! bit in a record is caught when that record is read, without reading the rest of
//! the file. (CRC-32 rather than Adler-32: it catches more damage, and with the
//! CPU's carry-less multiply it is several times faster to check.)

use serde_json::Value;

use super::wire::{Reader, Writer};
use crate::db::affected::{CompiledAffected, Installed};
use crate::fix::{FixState, VendorStatement, VendorStatus};
use crate::osv::{
    Advisory, Affected, Event, Package, Range, RangeType, Reference, Severity, SeverityType,
};

/// Why a stored blob could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BlobError {
    /// Shorter than its checksum.
    #[error("blob of {0} bytes is shorter than its checksum")]
    Short(usize),
    /// The checksum does not match the payload.
    #[error("checksum mismatch (stored {stored:08x}, computed {computed:08x})")]
    Checksum {
        /// As stored.
        stored: u32,
        /// Over the payload read.
        computed: u32,
    },
    /// The payload is not a record of this schema.
    #[error("undecodable record: {0}")]
    Decode(String),
}

/// Frames `payload` with its checksum.
pub(crate) fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Checks a framed blob and returns its payload.
pub(crate) fn unframe(blob: &[u8]) -> Result<&[u8], BlobError> {
    let (head, payload) = blob
        .split_first_chunk::<4>()
        .ok_or(BlobError::Short(blob.len()))?;
    let stored = u32::from_le_bytes(*head);
    let computed = crc32fast::hash(payload);
    if stored != computed {
        return Err(BlobError::Checksum { stored, computed });
    }
    Ok(payload)
}

/// Encodes the part of an `affected` entry that matching reads, stored in the
/// package's `packages` row (see [`encode_package`]) so that candidates are
/// evaluated without decoding whole records: the vendor status and the entry
/// compiled for matching (see [`CompiledAffected::encode`]). Not framed: the
/// row it sits in is.
pub(crate) fn encode_entry(status: Option<VendorStatus>, compiled: &CompiledAffected) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(match status {
        None => 0,
        Some(VendorStatus::NotAffected) => 1,
        Some(VendorStatus::WillNotFix) => 2,
    });
    compiled.encode(&mut w);
    w.finish()
}

/// Evaluates an entry [`encode_entry`] wrote for an installed version, as
/// `AdvisoryDb` does the entry it came from: `None` when the entry does not
/// cover the version.
pub(crate) fn evaluate_entry(
    payload: &[u8],
    installed: &Installed<'_>,
) -> Result<Option<FixState>, BlobError> {
    let mut input = Reader::new(payload)?;
    let status = match input.u8()? {
        0 => None,
        1 => Some(VendorStatus::NotAffected),
        2 => Some(VendorStatus::WillNotFix),
        tag => return Err(bad_tag("vendor status", tag)),
    };
    if status == Some(VendorStatus::NotAffected) {
        return Ok(Some(FixState::NotAffected));
    }
    let verdict = CompiledAffected::evaluate_encoded(&mut input, installed)?;
    input.finish()?;
    Ok(verdict.map(|verdict| match verdict.fixed {
        Some(version) => FixState::Fixed(version),
        None if status == Some(VendorStatus::WillNotFix) => FixState::WillNotFix,
        None => FixState::Unfixed,
    }))
}

/// One index entry of a package, as a `packages` row holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoredEntry<'a> {
    /// The position of the entry in its record's `affected`.
    pub affected: u32,
    /// Its record's `seq`.
    pub seq: i64,
    /// What [`encode_entry`] wrote; `None` for an ecosystem without a
    /// version scheme (such entries never match).
    pub entry: Option<&'a [u8]>,
}

/// The packages one `packages` row holds (one, unless the names' keys
/// collide): (ecosystem, name, its entries in `AdvisoryDb` order).
pub(crate) type PackageRow<'a> = [(&'a str, &'a str, Vec<StoredEntry<'a>>)];

/// Encodes a `packages` row: each package's ecosystem and name, then its
/// entries, framed with one checksum for the whole row.
pub(crate) fn encode_package(packages: &PackageRow<'_>) -> Vec<u8> {
    let mut w = Writer::default();
    w.len(packages.len());
    for (ecosystem, name, entries) in packages {
        w.str(ecosystem);
        w.str(name);
        w.len(entries.len());
        for entry in entries {
            w.len(entry.affected as usize);
            // Sequence numbers are never negative (they count records).
            w.len(usize::try_from(entry.seq).unwrap_or(0));
            match entry.entry {
                None => w.u8(0),
                Some(payload) => {
                    w.u8(1);
                    w.nested(payload);
                }
            }
        }
    }
    frame(&w.finish())
}

/// Reads a `packages` row as [`encode_package`] wrote it, in place: checks
/// the checksum, then gives each package ([`next_package`](Self::next_package))
/// and its entries ([`entry`](Self::entry), as many as the package has).
pub(crate) struct PackageReader<'a> {
    input: Reader<'a>,
    packages: usize,
}

impl<'a> PackageReader<'a> {
    /// Checks the row's checksum.
    pub(crate) fn new(blob: &'a [u8]) -> Result<Self, BlobError> {
        let mut input = Reader::new(unframe(blob)?)?;
        let packages = input.count()?;
        Ok(Self { input, packages })
    }

    /// The next package's ecosystem, name and number of entries; `None`
    /// after the last. Its entries must be read before the next package.
    pub(crate) fn next_package(&mut self) -> Result<Option<(&'a str, &'a str, usize)>, BlobError> {
        if self.packages == 0 {
            return Ok(None);
        }
        self.packages -= 1;
        let ecosystem = self.input.str()?;
        let name = self.input.str()?;
        Ok(Some((ecosystem, name, self.input.count()?)))
    }

    /// The next entry of the current package.
    pub(crate) fn entry(&mut self) -> Result<StoredEntry<'a>, BlobError> {
        let affected = u32::try_from(self.input.len()?)
            .map_err(|_| BlobError::Decode("affected index overflow".into()))?;
        let seq = i64::try_from(self.input.len()?)
            .map_err(|_| BlobError::Decode("record number overflow".into()))?;
        let entry = match self.input.u8()? {
            0 => None,
            1 => Some(self.input.nested()?),
            tag => return Err(bad_tag("entry", tag)),
        };
        Ok(StoredEntry {
            affected,
            seq,
            entry,
        })
    }

    /// Fails unless every package and entry was read, and nothing is left.
    pub(crate) fn finish(self) -> Result<(), BlobError> {
        if self.packages != 0 {
            return Err(BlobError::Decode(format!(
                "{} packages left unread",
                self.packages
            )));
        }
        self.input.finish()
    }
}

pub(crate) fn encode_advisory(advisory: &Advisory) -> Vec<u8> {
    let mut w = Writer::default();
    let out = &mut w;
    let a = advisory;
    out.opt_str(a.schema_version.as_deref());
    out.str(&a.id);
    out.opt_str(a.modified.as_deref());
    out.opt_str(a.published.as_deref());
    out.opt_str(a.withdrawn.as_deref());
    out.strings(&a.aliases);
    out.strings(&a.related);
    out.strings(&a.upstream);
    out.opt_str(a.summary.as_deref());
    out.opt_str(a.details.as_deref());
    put_severities(out, &a.severity);
    out.len(a.affected.len());
    for affected in &a.affected {
        put_affected(out, affected);
    }
    out.len(a.references.len());
    for reference in &a.references {
        out.str(&reference.kind);
        out.str(&reference.url);
    }
    put_opt_json(out, a.database_specific.as_ref());
    frame(&w.finish())
}

/// Decodes a framed record whole, checking its checksum.
#[cfg(test)]
pub(crate) fn decode_advisory(blob: &[u8]) -> Result<Advisory, BlobError> {
    decode_payload(unframe(blob)?)
}

/// A record a query matched, kept as its checked bytes: its id, aliases and
/// upstream ids are read from them in place, the whole record is decoded
/// the first time a caller asks for it, once for every match sharing it.
pub(crate) struct StoredRecord {
    /// The payload's structure and text (see [`wire`](super::wire)),
    /// accepted by [`check`](Self::check).
    structure: Box<[u8]>,
    text: Box<str>,
    /// Where the id is in the text.
    id: std::ops::Range<usize>,
    /// `affected.len()`.
    entries: usize,
    decoded: std::sync::OnceLock<Advisory>,
}

impl StoredRecord {
    /// Checks a record's payload (its frame already checked, see
    /// [`unframe`]) exactly as far as the decoder (`decode_parts`) reads it, without
    /// building the record: every tag, count, string bound, JSON depth and
    /// number, and that nothing is left over; then keeps a copy. Calls
    /// `entry` with each `affected` entry's position and its vendor severity
    /// (as `AdvisoryMatch::new` takes it from the decoded entry).
    ///
    /// The decoder succeeds on every payload this accepts, so the
    /// record can be decoded later, when a caller first reads it, with no
    /// error left to report (the tests hold the two to agreeing on every cut
    /// and many changed bytes of a record).
    pub(crate) fn check<'p>(
        payload: &'p [u8],
        mut entry: impl FnMut(usize, Option<&'p str>),
    ) -> Result<Self, BlobError> {
        let (structure, text) = Reader::split(payload)?;
        let mut r = Reader::from_parts(structure, text);
        r.opt_str()?; // schema_version
        let at = text.len() - r.text_left();
        let id = at..at + r.str()?.len();
        r.opt_str()?; // modified
        r.opt_str()?; // published
        r.opt_str()?; // withdrawn
        skip_strings(&mut r)?; // aliases
        skip_strings(&mut r)?; // related
        skip_strings(&mut r)?; // upstream
        r.opt_str()?; // summary
        r.opt_str()?; // details
        skip_severities(&mut r)?;
        let entries = r.count()?;
        for i in 0..entries {
            let severity = skip_affected(&mut r)?;
            entry(i, severity);
        }
        for _ in 0..r.count()? {
            r.str()?; // kind
            r.str()?; // url
        }
        skip_opt_json(&mut r, None)?;
        r.finish()?;
        Ok(Self {
            structure: structure.into(),
            text: text.into(),
            id,
            entries,
            decoded: std::sync::OnceLock::new(),
        })
    }

    /// `id`, read in place.
    pub(crate) fn id(&self) -> &str {
        self.text.get(self.id.clone()).unwrap_or_default()
    }

    /// `aliases` (`upstream` with `upstream`), read in place.
    pub(crate) fn ids(&self, upstream: bool) -> StoredStrs<'_> {
        let mut r = Reader::from_parts(&self.structure, &self.text);
        // Checked by `check`: an error here cannot happen, and would end the
        // list.
        let mut head = || -> Result<usize, BlobError> {
            r.opt_str()?; // schema_version
            r.str()?; // id
            r.opt_str()?; // modified
            r.opt_str()?; // published
            r.opt_str()?; // withdrawn
            if upstream {
                skip_strings(&mut r)?; // aliases
                skip_strings(&mut r)?; // related
            }
            r.count()
        };
        let left = head().unwrap_or(0);
        StoredStrs { reader: r, left }
    }

    /// `affected.len()`.
    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    /// Whether [`advisory`](Self::advisory) has decoded the record.
    pub(crate) fn is_decoded(&self) -> bool {
        self.decoded.get().is_some()
    }

    /// The whole record, decoded on the first call.
    pub(crate) fn advisory(&self) -> &Advisory {
        self.decoded.get_or_init(|| {
            // The payload passed `check`, which accepts only what
            // `decode_parts` decodes; should the two ever disagree, the
            // answer keeps the ids it was sorted by rather than panicking
            // (its severity unknown, which counts against a healthy
            // verdict), and says so.
            decode_parts(Reader::from_parts(&self.structure, &self.text)).unwrap_or_else(|e| {
                tracing::warn!(
                    id = self.id(),
                    error = %e,
                    "a stored record passed its check but does not decode: \
                     kept with its ids only (severity unknown)"
                );
                Advisory {
                    schema_version: None,
                    id: self.id().to_owned(),
                    modified: None,
                    published: None,
                    withdrawn: None,
                    aliases: self.ids(false).map(str::to_owned).collect(),
                    related: Vec::new(),
                    upstream: self.ids(true).map(str::to_owned).collect(),
                    summary: None,
                    details: None,
                    severity: Vec::new(),
                    affected: Vec::new(),
                    references: Vec::new(),
                    database_specific: None,
                }
            })
        })
    }
}

impl std::fmt::Debug for StoredRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredRecord")
            .field("id", &self.id())
            .field("bytes", &(self.structure.len() + self.text.len()))
            .field("decoded", &self.is_decoded())
            .finish()
    }
}

/// Runs the check a query makes of a matched record over arbitrary payload
/// bytes and holds it to the decoder (see `store::fuzz_record`).
pub(crate) fn fuzz(payload: &[u8]) {
    let mut severities = Vec::new();
    let checked = StoredRecord::check(payload, |at, s| severities.push((at, s)));
    let decoded = Reader::new(payload).and_then(decode_parts);
    match (checked, decoded) {
        (Ok(stored), Ok(decoded)) => {
            assert_eq!(stored.id(), decoded.id);
            assert!(
                stored
                    .ids(false)
                    .eq(decoded.aliases.iter().map(String::as_str))
            );
            assert!(
                stored
                    .ids(true)
                    .eq(decoded.upstream.iter().map(String::as_str))
            );
            assert_eq!(stored.entries(), decoded.affected.len());
            assert_eq!(severities.len(), decoded.affected.len());
            for ((at, severity), (i, entry)) in
                severities.iter().zip(decoded.affected.iter().enumerate())
            {
                assert_eq!((*at, *severity), (i, crate::db::vendor_severity(entry)));
            }
            assert_eq!(stored.advisory(), &decoded);
        }
        (Err(_), Err(_)) => {}
        (checked, decoded) => {
            panic!("the record check and the decoder disagree: {checked:?} / {decoded:?}")
        }
    }
}

/// A list of strings of a [`StoredRecord`], read in place.
pub(crate) struct StoredStrs<'r> {
    reader: Reader<'r>,
    left: usize,
}

impl<'r> Iterator for StoredStrs<'r> {
    type Item = &'r str;

    fn next(&mut self) -> Option<&'r str> {
        self.left = self.left.checked_sub(1)?;
        self.reader.str().ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

fn skip_strings(r: &mut Reader<'_>) -> Result<(), BlobError> {
    for _ in 0..r.count()? {
        r.str()?;
    }
    Ok(())
}

fn skip_severities(r: &mut Reader<'_>) -> Result<(), BlobError> {
    for _ in 0..r.count()? {
        match r.u8()? {
            0..=3 => {}
            4 => {
                r.str()?;
            }
            tag => return Err(bad_tag("severity type", tag)),
        }
        r.str()?; // score
    }
    Ok(())
}

/// Steps over an `affected` entry as [`read_affected`] reads it; returns its
/// vendor severity: the vendor statement's, else a string `urgency` in
/// `ecosystem_specific`.
fn skip_affected<'p>(r: &mut Reader<'p>) -> Result<Option<&'p str>, BlobError> {
    match r.u8()? {
        0 => {}
        1 => {
            r.str()?; // ecosystem
            r.str()?; // name
            r.opt_str()?; // purl
        }
        tag => return Err(bad_tag("package", tag)),
    }
    skip_severities(r)?;
    for _ in 0..r.count()? {
        match r.u8()? {
            0..=2 => {}
            3 => {
                r.str()?;
            }
            tag => return Err(bad_tag("range type", tag)),
        }
        r.opt_str()?; // repo
        for _ in 0..r.count()? {
            let tag = r.u8()?;
            r.str()?;
            if tag > 3 {
                return Err(bad_tag("event", tag));
            }
        }
        skip_opt_json(r, None)?;
    }
    skip_strings(r)?; // versions
    let urgency = skip_opt_json(r, Some("urgency"))?;
    skip_opt_json(r, None)?; // database_specific
    let vendor = match r.u8()? {
        0 => None,
        1 => {
            match r.u8()? {
                0..=2 => {}
                tag => return Err(bad_tag("vendor status", tag)),
            }
            let severity = r.opt_str()?;
            r.opt_str()?; // note
            severity
        }
        tag => return Err(bad_tag("vendor statement", tag)),
    };
    Ok(vendor.or(urgency))
}

/// Steps over what [`put_opt_json`] wrote, as [`read_opt_json`] reads it;
/// with a `key`, returns the string the value holds under that key when it
/// is an object (the last one, as a decoded map keeps it).
fn skip_opt_json<'p>(r: &mut Reader<'p>, key: Option<&str>) -> Result<Option<&'p str>, BlobError> {
    match r.u8()? {
        0 => Ok(None),
        1 => {
            let tag = r.u8()?;
            let Some(key) = key.filter(|_| tag == 8) else {
                skip_json_tagged(r, tag, 0)?;
                return Ok(None);
            };
            let mut found = None;
            for _ in 0..r.count()? {
                let name = r.str()?;
                let tag = r.u8()?;
                if name == key {
                    found = if tag == 6 { Some(r.str()?) } else { None };
                    if tag == 6 {
                        continue;
                    }
                }
                skip_json_tagged(r, tag, 1)?;
            }
            Ok(found)
        }
        tag => Err(bad_tag("JSON option", tag)),
    }
}

/// Steps over a JSON value as [`read_json`] reads it at `depth`, its tag
/// already read.
fn skip_json_tagged(r: &mut Reader<'_>, tag: u8, depth: usize) -> Result<(), BlobError> {
    if depth > MAX_JSON_DEPTH {
        return Err(BlobError::Decode("JSON nested too deeply".into()));
    }
    match tag {
        0..=2 => {}
        3 | 4 => {
            r.array::<8>()?;
        }
        5 => {
            if !f64::from_le_bytes(r.array()?).is_finite() {
                return Err(BlobError::Decode("non-finite JSON number".into()));
            }
        }
        6 => {
            r.str()?;
        }
        7 => {
            for _ in 0..r.count()? {
                let tag = r.u8()?;
                skip_json_tagged(r, tag, depth + 1)?;
            }
        }
        8 => {
            for _ in 0..r.count()? {
                r.str()?;
                let tag = r.u8()?;
                skip_json_tagged(r, tag, depth + 1)?;
            }
        }
        tag => return Err(bad_tag("JSON", tag)),
    }
    Ok(())
}

/// Decodes a record's payload whole.
#[cfg(test)]
pub(crate) fn decode_payload(payload: &[u8]) -> Result<Advisory, BlobError> {
    decode_parts(Reader::new(payload)?)
}

/// Decodes a record whole from its payload's reader.
fn decode_parts(mut r: Reader<'_>) -> Result<Advisory, BlobError> {
    let advisory = Advisory {
        schema_version: r.opt_string()?,
        id: r.string()?,
        modified: r.opt_string()?,
        published: r.opt_string()?,
        withdrawn: r.opt_string()?,
        aliases: r.strings()?,
        related: r.strings()?,
        upstream: r.strings()?,
        summary: r.opt_string()?,
        details: r.opt_string()?,
        severity: read_severities(&mut r)?,
        affected: {
            let n = r.count()?;
            let mut affected = Vec::with_capacity(n);
            for _ in 0..n {
                affected.push(read_affected(&mut r)?);
            }
            affected
        },
        references: {
            let n = r.count()?;
            let mut references = Vec::with_capacity(n);
            for _ in 0..n {
                references.push(Reference {
                    kind: r.string()?,
                    url: r.string()?,
                });
            }
            references
        },
        database_specific: read_opt_json(&mut r)?,
    };
    r.finish()?;
    Ok(advisory)
}

fn put_affected(out: &mut Writer, a: &Affected) {
    match &a.package {
        None => out.u8(0),
        Some(p) => {
            out.u8(1);
            out.str(&p.ecosystem);
            out.str(&p.name);
            out.opt_str(p.purl.as_deref());
        }
    }
    put_severities(out, &a.severity);
    out.len(a.ranges.len());
    for range in &a.ranges {
        match &range.kind {
            RangeType::Ecosystem => out.u8(0),
            RangeType::Semver => out.u8(1),
            RangeType::Git => out.u8(2),
            RangeType::Other(other) => {
                out.u8(3);
                out.str(other);
            }
        }
        out.opt_str(range.repo.as_deref());
        out.len(range.events.len());
        for event in &range.events {
            out.u8(match event {
                Event::Introduced(_) => 0,
                Event::Fixed(_) => 1,
                Event::LastAffected(_) => 2,
                Event::Limit(_) => 3,
            });
            out.str(event.version());
        }
        put_opt_json(out, range.database_specific.as_ref());
    }
    out.strings(&a.versions);
    put_opt_json(out, a.ecosystem_specific.as_ref());
    put_opt_json(out, a.database_specific.as_ref());
    match &a.vendor {
        None => out.u8(0),
        Some(v) => {
            out.u8(1);
            out.u8(match v.status {
                None => 0,
                Some(VendorStatus::NotAffected) => 1,
                Some(VendorStatus::WillNotFix) => 2,
            });
            out.opt_str(v.severity.as_deref());
            out.opt_str(v.note.as_deref());
        }
    }
}

fn read_affected(r: &mut Reader<'_>) -> Result<Affected, BlobError> {
    let package = match r.u8()? {
        0 => None,
        1 => Some(Package {
            ecosystem: r.string()?,
            name: r.string()?,
            purl: r.opt_string()?,
        }),
        tag => return Err(bad_tag("package", tag)),
    };
    let severity = read_severities(r)?;
    let n = r.count()?;
    let mut ranges = Vec::with_capacity(n);
    for _ in 0..n {
        let kind = match r.u8()? {
            0 => RangeType::Ecosystem,
            1 => RangeType::Semver,
            2 => RangeType::Git,
            3 => RangeType::Other(r.string()?),
            tag => return Err(bad_tag("range type", tag)),
        };
        let repo = r.opt_string()?;
        let n = r.count()?;
        let mut events = Vec::with_capacity(n);
        for _ in 0..n {
            let tag = r.u8()?;
            let version = r.string()?;
            events.push(match tag {
                0 => Event::Introduced(version),
                1 => Event::Fixed(version),
                2 => Event::LastAffected(version),
                3 => Event::Limit(version),
                tag => return Err(bad_tag("event", tag)),
            });
        }
        ranges.push(Range {
            kind,
            repo,
            events,
            database_specific: read_opt_json(r)?,
        });
    }
    Ok(Affected {
        package,
        severity,
        ranges,
        versions: r.strings()?,
        ecosystem_specific: read_opt_json(r)?,
        database_specific: read_opt_json(r)?,
        vendor: match r.u8()? {
            0 => None,
            1 => Some(VendorStatement {
                status: match r.u8()? {
                    0 => None,
                    1 => Some(VendorStatus::NotAffected),
                    2 => Some(VendorStatus::WillNotFix),
                    tag => return Err(bad_tag("vendor status", tag)),
                },
                severity: r.opt_string()?,
                note: r.opt_string()?,
            }),
            tag => return Err(bad_tag("vendor statement", tag)),
        },
    })
}

fn put_severities(out: &mut Writer, severity: &[Severity]) {
    out.len(severity.len());
    for s in severity {
        match &s.kind {
            SeverityType::CvssV2 => out.u8(0),
            SeverityType::CvssV3 => out.u8(1),
            SeverityType::CvssV4 => out.u8(2),
            SeverityType::Ubuntu => out.u8(3),
            SeverityType::Other(other) => {
                out.u8(4);
                out.str(other);
            }
        }
        out.str(&s.score);
    }
}

fn read_severities(r: &mut Reader<'_>) -> Result<Vec<Severity>, BlobError> {
    let n = r.count()?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let kind = match r.u8()? {
            0 => SeverityType::CvssV2,
            1 => SeverityType::CvssV3,
            2 => SeverityType::CvssV4,
            3 => SeverityType::Ubuntu,
            4 => SeverityType::Other(r.string()?),
            tag => return Err(bad_tag("severity type", tag)),
        };
        out.push(Severity {
            kind,
            score: r.string()?,
        });
    }
    Ok(out)
}

fn bad_tag(what: &str, tag: u8) -> BlobError {
    BlobError::Decode(format!("bad {what} tag {tag}"))
}

/// Deepest JSON nesting read back; deeper stored values are damage (the feeds'
/// JSON parser refuses more than 128 levels in the first place).
const MAX_JSON_DEPTH: usize = 128;

fn put_opt_json(out: &mut Writer, value: Option<&Value>) {
    match value {
        None => out.u8(0),
        Some(v) => {
            out.u8(1);
            put_json(out, v);
        }
    }
}

fn read_opt_json(r: &mut Reader<'_>) -> Result<Option<Value>, BlobError> {
    match r.u8()? {
        0 => Ok(None),
        1 => read_json(r, 0).map(Some),
        tag => Err(bad_tag("JSON option", tag)),
    }
}

/// A JSON value as a tagged tree. Numbers keep serde_json's own kind
/// (unsigned, signed, float), so they read back equal.
fn put_json(out: &mut Writer, value: &Value) {
    match value {
        Value::Null => out.u8(0),
        Value::Bool(false) => out.u8(1),
        Value::Bool(true) => out.u8(2),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.u8(3);
                out.bytes(u.to_le_bytes());
            } else if let Some(i) = n.as_i64() {
                out.u8(4);
                out.bytes(i.to_le_bytes());
            } else {
                out.u8(5);
                out.bytes(n.as_f64().unwrap_or(0.0).to_le_bytes());
            }
        }
        Value::String(s) => {
            out.u8(6);
            out.str(s);
        }
        Value::Array(items) => {
            out.u8(7);
            out.len(items.len());
            for item in items {
                put_json(out, item);
            }
        }
        Value::Object(map) => {
            out.u8(8);
            out.len(map.len());
            for (key, item) in map {
                out.str(key);
                put_json(out, item);
            }
        }
    }
}

fn read_json(r: &mut Reader<'_>, depth: usize) -> Result<Value, BlobError> {
    if depth > MAX_JSON_DEPTH {
        return Err(BlobError::Decode("JSON nested too deeply".into()));
    }
    Ok(match r.u8()? {
        0 => Value::Null,
        1 => Value::Bool(false),
        2 => Value::Bool(true),
        3 => Value::from(u64::from_le_bytes(r.array()?)),
        4 => Value::from(i64::from_le_bytes(r.array()?)),
        5 => {
            let f = f64::from_le_bytes(r.array()?);
            serde_json::Number::from_f64(f)
                .map(Value::Number)
                .ok_or_else(|| BlobError::Decode("non-finite JSON number".into()))?
        }
        6 => Value::String(r.string()?),
        7 => {
            let n = r.count()?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(read_json(r, depth + 1)?);
            }
            Value::Array(items)
        }
        8 => {
            let n = r.count()?;
            let mut map = serde_json::Map::new();
            for _ in 0..n {
                let key = r.string()?;
                map.insert(key, read_json(r, depth + 1)?);
            }
            Value::Object(map)
        }
        tag => return Err(bad_tag("JSON", tag)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_is_caught() {
        let json = r#"{"id": "DSA-1", "modified": "2024-01-01T00:00:00Z", "aliases": ["CVE-1"],
          "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N"}, {"type": "ODD", "score": "9"}],
          "affected": [{"package": {"ecosystem": "Debian:12", "name": "x", "purl": "pkg:deb/debian/x"},
            "ranges": [{"type": "ECOSYSTEM", "repo": null, "events": [{"introduced": "0"}, {"fixed": "1.2-1"}],
                        "database_specific": {"n": 1.5}},
                       {"type": "WEIRD", "events": [{"limit": "*"}, {"last_affected": "3"}]}],
            "versions": ["1.0-1"], "ecosystem_specific": {"urgency": "high", "list": [1, null]},
            "trawl_vendor_statement": {"status": "will_not_fix", "note": "no-dsa"}}],
          "references": [{"type": "WEB", "url": "https://example.org"}],
          "database_specific": {"source": "x", "big": 18446744073709551615, "neg": -3,
                                "flags": [true, false, {"deep": [[]]}], "s": "é"}}"#;
        let advisory: Advisory = serde_json::from_str(json).unwrap();
        let blob = encode_advisory(&advisory);
        assert_eq!(decode_advisory(&blob).unwrap(), advisory);

        let mut damaged = blob.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 0x40;
        assert!(matches!(
            decode_advisory(&damaged),
            Err(BlobError::Checksum { .. })
        ));
        assert_eq!(decode_advisory(&blob[..3]), Err(BlobError::Short(3)));
        // Well framed but cut short, or with bytes left over: decode errors.
        let payload = unframe(&blob).unwrap();
        for bad in [
            &payload[..payload.len() - 1],
            &[payload, &[0][..]].concat()[..],
        ] {
            assert!(matches!(
                decode_advisory(&frame(bad)),
                Err(BlobError::Decode(_))
            ));
        }
    }

    /// The check a query runs on a matched record accepts exactly what the
    /// decoder decodes: on the whole record, on every cut of it and on every
    /// byte changed in several ways; and what it reads (ids, entry count,
    /// vendor severities) is what the decoded record says.
    #[test]
    fn record_check_agrees_with_decoding() {
        let json = r#"{"id": "DSA-1", "schema_version": "1.6", "published": "2024-01-01T00:00:00Z",
          "aliases": ["CVE-1", "CVE-2"], "related": ["R-1"], "upstream": ["CVE-1"],
          "summary": "s", "details": "d",
          "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N"}, {"type": "ODD", "score": "9"}],
          "affected": [
            {"package": {"ecosystem": "Debian:12", "name": "x", "purl": "pkg:deb/debian/x"},
             "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2-1"}],
                         "database_specific": {"n": 1.5, "deep": [[{"a": null}]]}},
                        {"type": "WEIRD", "repo": "r", "events": [{"limit": "*"}, {"last_affected": "3"}]}],
             "versions": ["1.0-1", "1.1-1"], "ecosystem_specific": {"urgency": "high", "list": [1, -2, true]}},
            {"package": {"ecosystem": "Debian:11", "name": "x"},
             "ecosystem_specific": {"urgency": 3},
             "trawl_vendor_statement": {"status": "will_not_fix", "severity": "low", "note": "no-dsa"}},
            {"ranges": [{"type": "GIT", "events": [{"introduced": "abc"}]}],
             "ecosystem_specific": ["urgency", "x"], "database_specific": {"urgency": "y"}},
            {"package": {"ecosystem": "npm", "name": "y"}, "severity": [{"type": "CVSS_V4", "score": "z"}],
             "trawl_vendor_statement": {"status": "not_affected"}}
          ],
          "references": [{"type": "WEB", "url": "https://example.org"}],
          "database_specific": {"source": "x", "big": 18446744073709551615, "s": "é"}}"#;
        let advisory: Advisory = serde_json::from_str(json).unwrap();
        let blob = encode_advisory(&advisory);
        let payload = unframe(&blob).unwrap().to_vec();

        let agree = |bytes: &[u8], what: &str| {
            // What the fuzz target runs must hold here too.
            fuzz(bytes);
            let mut severities = Vec::new();
            let checked =
                StoredRecord::check(bytes, |at, s| severities.push((at, s.map(str::to_owned))));
            let decoded = decode_payload(bytes);
            assert_eq!(
                checked.is_ok(),
                decoded.is_ok(),
                "{what}: {checked:?} / {decoded:?}"
            );
            if let (Ok(stored), Ok(decoded)) = (checked, decoded) {
                assert_eq!(stored.id(), decoded.id, "{what}");
                assert_eq!(
                    stored.ids(false).collect::<Vec<_>>(),
                    decoded.aliases,
                    "{what}"
                );
                assert_eq!(
                    stored.ids(true).collect::<Vec<_>>(),
                    decoded.upstream,
                    "{what}"
                );
                assert_eq!(stored.entries(), decoded.affected.len(), "{what}");
                let want: Vec<_> = decoded
                    .affected
                    .iter()
                    .enumerate()
                    .map(|(at, a)| (at, crate::db::vendor_severity(a).map(str::to_owned)))
                    .collect();
                assert_eq!(severities, want, "{what}");
                assert_eq!(stored.advisory(), &decoded, "{what}");
            }
        };
        agree(&payload, "whole");
        let mut severities = Vec::new();
        let stored = StoredRecord::check(&payload, |at, s| severities.push((at, s))).unwrap();
        assert_eq!(stored.entries(), 4);
        assert_eq!(stored.ids(false).collect::<Vec<_>>(), ["CVE-1", "CVE-2"]);
        assert_eq!(stored.ids(true).collect::<Vec<_>>(), ["CVE-1"]);
        assert_eq!(
            severities,
            [(0, Some("high")), (1, Some("low")), (2, None), (3, None)]
        );
        for cut in 0..payload.len() {
            agree(&payload[..cut], &format!("cut at {cut}"));
        }
        let mut accepted = 0;
        for at in 0..payload.len() {
            for change in [
                |b: u8| b ^ 1,
                |b: u8| b ^ 0x80,
                |b: u8| b.wrapping_add(1),
                |b: u8| b.wrapping_sub(1),
                |_| 0,
                |_| 3,
                |_| 5,
                |_| 8,
                |_| 0xff,
            ] {
                let mut bytes = payload.clone();
                bytes[at] = change(bytes[at]);
                agree(&bytes, &format!("byte {at} changed to {}", bytes[at]));
                accepted += usize::from(decode_payload(&bytes).is_ok());
            }
        }
        // Some changes still decode (a different tag, length or letter):
        // the comparison above covered accepted records, not only errors.
        assert!(accepted > 100, "{accepted}");

        // A record kept by a query decodes on first use, once.
        let stored = StoredRecord::check(&payload, |_, _| {}).unwrap();
        assert!(!stored.is_decoded());
        assert_eq!(stored.id(), "DSA-1");
        assert_eq!(stored.advisory(), &advisory);
        assert!(stored.is_decoded());
        assert!(std::ptr::eq(stored.advisory(), stored.advisory()));
    }

    #[test]
    fn stored_entries_evaluate_as_compiled_ones() {
        use crate::db::PackageQuery;
        use crate::db::affected::PreparedQuery;
        use crate::version::VersionScheme;
        let cases = [
            (
                "Debian:12",
                r#"[{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": " 1.2-1"},
                      {"introduced": "2.0-1"}, {"last_affected": "2.5-1"}, {"limit": "3.0"}]},
                    {"type": "SEMVER", "events": [{"introduced": "1.0.0-rc.1"}, {"fixed": "2.1.0"}]},
                    {"type": "ECOSYSTEM", "events": [{"introduced": "1.1"}, {"fixed": "1.3-1"}]},
                    {"type": "ECOSYSTEM", "events": [{"introduced": "2.7"}]}]"#,
                &[
                    "0.9-1", "1.0.0", "1.1", "1.2-1", "1.2.5-1", "2.0-1", "2.5-1", "2.6", "3.0",
                    "3.1", "2.0.0", "1:0.1",
                ][..],
            ),
            (
                "Alpine:v3.18",
                r#"[{"type": "ECOSYSTEM", "events": [{"introduced": "1.0-r0"}, {"fixed": "1.2-r1"}, {"limit": "*"}]}]"#,
                &["0.9-r0", "1.0-r0", "1.1_rc1-r0", "1.2-r0", "1.2-r1", "9"][..],
            ),
            (
                "Rocky Linux:9",
                r#"[{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:1.2-3.el9"}]}]"#,
                &["1.2-3.el9", "1:1.2-2.el9", "1:1.2-3.el9", "2:0"][..],
            ),
        ];
        for (ecosystem, ranges, versions) in cases {
            let json = format!(
                r#"{{"package": {{"ecosystem": "{ecosystem}", "name": "x"}}, "ranges": {ranges},
                    "versions": ["0.9-1", "not a version", "2.6"]}}"#
            );
            let affected: Affected = serde_json::from_str(&json).unwrap();
            let scheme = VersionScheme::for_ecosystem(ecosystem).unwrap();
            let compiled = CompiledAffected::compile(scheme, &affected, &mut Vec::new());
            for status in [
                None,
                Some(VendorStatus::WillNotFix),
                Some(VendorStatus::NotAffected),
            ] {
                let blob = encode_entry(status, &compiled);
                for version in versions {
                    let query = PackageQuery {
                        ecosystem,
                        name: "x",
                        version,
                    };
                    let Ok(prepared) = PreparedQuery::new(&query) else {
                        continue;
                    };
                    let want = if status == Some(VendorStatus::NotAffected) {
                        Some(FixState::NotAffected)
                    } else {
                        compiled
                            .evaluate(&prepared.installed)
                            .map(|v| match v.fixed {
                                Some(f) => FixState::Fixed(f),
                                None if status.is_some() => FixState::WillNotFix,
                                None => FixState::Unfixed,
                            })
                    };
                    let got = evaluate_entry(&blob, &prepared.installed).unwrap();
                    assert_eq!(got, want, "{ecosystem} {version} {status:?}");
                }
                // Cut short (the row's checksum catches flipped bits, and
                // whatever an entry leaves unread).
                let damaged = &blob[..blob.len() - 1];
                let query = PackageQuery {
                    ecosystem,
                    name: "x",
                    version: versions[0],
                };
                let prepared = PreparedQuery::new(&query).unwrap();
                // A not-affected statement is answered from its first byte.
                if status != Some(VendorStatus::NotAffected) {
                    assert!(evaluate_entry(damaged, &prepared.installed).is_err());
                }
            }
        }
    }

    /// Long `versions` lists, out of order, with equal versions spelled
    /// differently and texts that do not parse: stored entries search them
    /// sorted, and answer as the compiled entry's linear scan does, also
    /// beyond the part they binary-search.
    #[test]
    fn listed_versions_are_found_as_compiled_ones_find_them() {
        use crate::db::PackageQuery;
        use crate::db::affected::PreparedQuery;
        use crate::version::VersionScheme;
        for count in [0usize, 1, 2, 7, 64, 65, 150] {
            let mut listed: Vec<String> = (0..count)
                .map(|i| match i % 5 {
                    0 => format!("{}.{}", i / 10, i % 10),
                    1 => format!("{}.{}.0", i / 10, i % 10),
                    2 => format!("{}.{}rc1", i / 10, i % 10),
                    3 => format!("not a version {i}"),
                    _ => format!("{}.{}.post{i}", i / 10, i % 10),
                })
                .collect();
            // Out of order.
            listed.reverse();
            listed.rotate_left(count / 3);
            let json = serde_json::json!({
                "package": {"ecosystem": "PyPI", "name": "x"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "100.0"}]}],
                "versions": listed,
            });
            let affected: Affected = serde_json::from_value(json).unwrap();
            let compiled =
                CompiledAffected::compile(VersionScheme::Pep440, &affected, &mut Vec::new());
            let blob = encode_entry(None, &compiled);
            let mut probes: Vec<String> = listed.clone();
            probes.extend(
                [
                    "0.0.0",
                    "1.1.0.0",
                    "1.1",
                    "1.2rc1",
                    "0.4",
                    "99",
                    "14.9.post149",
                    "0.05",
                ]
                .map(String::from),
            );
            for version in &probes {
                let query = PackageQuery {
                    ecosystem: "PyPI",
                    name: "x",
                    version,
                };
                let Ok(prepared) = PreparedQuery::new(&query) else {
                    continue;
                };
                let want = compiled
                    .evaluate(&prepared.installed)
                    .map(|_| FixState::Unfixed);
                let got = evaluate_entry(&blob, &prepared.installed).unwrap();
                assert_eq!(got, want, "{count} listed, {version}");
            }
        }
    }

    #[test]
    fn package_rows_round_trip_and_damage_is_caught() {
        let a = [1u8, 2, 3];
        let b = [4u8; 300];
        let rows: &PackageRow<'_> = &[
            (
                "Debian:12",
                "openssl",
                vec![
                    StoredEntry {
                        affected: 0,
                        seq: 7,
                        entry: Some(&a),
                    },
                    StoredEntry {
                        affected: 300,
                        seq: 1 << 40,
                        entry: None,
                    },
                ],
            ),
            (
                "Debian:12",
                "colliding",
                vec![StoredEntry {
                    affected: 2,
                    seq: 0,
                    entry: Some(&b),
                }],
            ),
            ("Debian:12", "empty", vec![]),
        ];
        let blob = encode_package(rows);
        let mut reader = PackageReader::new(&blob).unwrap();
        for (ecosystem, name, entries) in rows {
            assert_eq!(
                reader.next_package().unwrap(),
                Some((*ecosystem, *name, entries.len()))
            );
            for entry in entries {
                assert_eq!(reader.entry().unwrap(), *entry);
            }
        }
        assert_eq!(reader.next_package().unwrap(), None);
        reader.finish().unwrap();

        // Unread packages, a flipped bit, a short blob.
        let reader = PackageReader::new(&blob).unwrap();
        assert!(reader.finish().is_err());
        let mut damaged = blob.clone();
        damaged[10] ^= 1;
        assert!(matches!(
            PackageReader::new(&damaged),
            Err(BlobError::Checksum { .. })
        ));
        assert!(PackageReader::new(&blob[..2]).is_err());
        // Well framed, but cut short.
        let payload = unframe(&blob).unwrap();
        assert!(PackageReader::new(&frame(&payload[..20])).is_err());
    }
}
