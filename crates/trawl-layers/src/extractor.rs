//! Extractors: what a cataloger reads from large files (binaries, archives)
//! while the layer streams, keeping only the small result.
//!
//! The layer reader asks every extractor about every regular file from its
//! path, size and mode alone ([`Extractor::wants`]); only a wanted file's
//! leading bytes are read, for [`Extractor::sniff`], and only a sniffed one's
//! content is handed over, as a [`Content`] the reader could afford: the
//! whole file in memory when small, a spooled copy on disk when the scan's
//! temporary budget allows, else the stream itself. Nothing holds a whole
//! large binary or archive in memory. When several extractors want a file
//! that can only be streamed, each reads the stream on a thread of its own
//! as the bytes pass (in lockstep, a few chunks apart).

use std::io::{self, Cursor, Read, Seek};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Facts about a tar entry (or a root file system file) before its content
/// is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryInfo<'a> {
    /// Its normalised image path (no leading `/`).
    pub path: &'a str,
    /// Its size in bytes, as the tar header (or the file system) states.
    pub size: u64,
    /// Its permission bits (`0o755` for a typical executable).
    pub mode: u32,
}

/// Reads something small out of large files as a layer streams: the module
/// build information of Go binaries, the dependency list of a
/// cargo-auditable binary, the `pom.properties` of a jar.
///
/// Register one with [`crate::Selection::with_extractor`]; read its results
/// from [`crate::MergedFs::extracted`].
///
/// ```
/// use trawl_layers::{Content, EntryInfo, Extractor};
///
/// /// The ELF class byte of every executable ELF file.
/// #[derive(Debug)]
/// struct ElfClass;
///
/// impl Extractor for ElfClass {
///     fn id(&self) -> &'static str {
///         "elf-class/1"
///     }
///     fn wants(&self, entry: &EntryInfo<'_>) -> bool {
///         entry.mode & 0o111 != 0 && entry.size >= 5
///     }
///     fn sniff_len(&self) -> usize {
///         4
///     }
///     fn sniff(&self, head: &[u8]) -> bool {
///         head == b"\x7fELF"
///     }
///     fn extract(
///         &self,
///         _: &EntryInfo<'_>,
///         content: &mut Content<'_>,
///     ) -> Result<Option<Vec<u8>>, String> {
///         let mut head = [0u8; 5];
///         std::io::Read::read_exact(content.stream(), &mut head).map_err(|e| e.to_string())?;
///         Ok(Some(vec![head[4]]))
///     }
/// }
///
/// let elf = b"\x7fELF\x02rest of the binary";
/// let info = EntryInfo { path: "usr/bin/tool", size: elf.len() as u64, mode: 0o755 };
/// assert!(ElfClass.wants(&info) && ElfClass.sniff(&elf[..4]));
/// let got = ElfClass.extract(&info, &mut Content::from_bytes(elf)).unwrap();
/// assert_eq!(got, Some(vec![2]));
/// ```
pub trait Extractor: Send + Sync + std::fmt::Debug {
    /// Name and output format version (`"go-buildinfo/1"`); part of the
    /// layer cache's keys: change it whenever the output changes.
    fn id(&self) -> &'static str;

    /// Whether the entry may be of interest, from its path, size and mode
    /// only. Called for every regular file of every layer: must be cheap.
    fn wants(&self, entry: &EntryInfo<'_>) -> bool;

    /// How many leading bytes [`Extractor::sniff`] needs (at most 64 KiB are
    /// read); 0 = no sniffing, every wanted file is extracted.
    fn sniff_len(&self) -> usize {
        0
    }

    /// From the first `sniff_len` bytes (fewer if the file is shorter):
    /// whether the file is one of ours (ELF magic, zip magic).
    fn sniff(&self, head: &[u8]) -> bool {
        let _ = head;
        true
    }

    /// Reads what it needs and returns the bytes to keep, in its own compact
    /// encoding (`Ok(None)`: nothing of interest here). An `Err` is kept as
    /// the file's result and should say what was wrong ("truncated ELF
    /// header"); the cataloger turns it into an unreadable-file warning.
    /// Whatever the extractor does not read is skipped afterwards. An
    /// extractor that needs to seek and gets a stream-only [`Content`]
    /// returns an `Err` saying the file was not inspected.
    fn extract(
        &self,
        entry: &EntryInfo<'_>,
        content: &mut Content<'_>,
    ) -> Result<Option<Vec<u8>>, String>;
}

/// Reading and seeking, as one trait object.
pub trait ReadSeek: Read + Seek {}

impl<T: Read + Seek + ?Sized> ReadSeek for T {}

/// A file's content as the layer reader could afford to hand it to an
/// [`Extractor`]: in memory, seekable on disk, or only as a stream. The three
/// views share one read position, which starts at 0.
///
/// ```
/// use std::io::Read;
/// use trawl_layers::Content;
///
/// let mut content = Content::from_bytes(b"PK\x03\x04...");
/// assert_eq!(content.len(), 7);
/// assert_eq!(&content.bytes().unwrap()[..2], b"PK");
/// let mut head = [0u8; 2];
/// content.stream().read_exact(&mut head).unwrap();
/// assert_eq!(&head, b"PK");
///
/// let mut stream = &b"only once"[..];
/// let mut once = Content::from_stream(&mut stream, 9);
/// assert!(once.bytes().is_none() && once.seekable().is_none());
/// ```
pub struct Content<'a> {
    len: u64,
    source: Source<'a>,
}

enum Source<'a> {
    Memory(Cursor<&'a [u8]>),
    Seekable(&'a mut dyn ReadSeek),
    Stream(&'a mut dyn Read),
}

impl<'a> Content<'a> {
    /// The whole file, in memory.
    pub fn from_bytes(bytes: &'a [u8]) -> Self {
        Content {
            len: bytes.len() as u64,
            source: Source::Memory(Cursor::new(bytes)),
        }
    }

    /// A file of `len` bytes that can be read and seeked (positioned at 0).
    pub fn from_seekable(reader: &'a mut dyn ReadSeek, len: u64) -> Self {
        Content {
            len,
            source: Source::Seekable(reader),
        }
    }

    /// A file of `len` bytes that can only be read once, front to back.
    pub fn from_stream(reader: &'a mut dyn Read, len: u64) -> Self {
        Content {
            len,
            source: Source::Stream(reader),
        }
    }

    /// The file's size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty file.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole file, when it is in memory.
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.source {
            Source::Memory(cursor) => Some(cursor.get_ref()),
            _ => None,
        }
    }

    /// The file as `Read + Seek`: in memory or spooled to disk. `None` when
    /// it can only be streamed (over the temporary-space budget).
    pub fn seekable(&mut self) -> Option<&mut dyn ReadSeek> {
        match &mut self.source {
            Source::Memory(cursor) => Some(cursor),
            Source::Seekable(reader) => Some(&mut **reader),
            Source::Stream(_) => None,
        }
    }

    /// The file as a stream; always available.
    pub fn stream(&mut self) -> &mut dyn Read {
        match &mut self.source {
            Source::Memory(cursor) => cursor,
            Source::Seekable(reader) => &mut **reader,
            Source::Stream(reader) => &mut **reader,
        }
    }
}

impl std::fmt::Debug for Content<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.source {
            Source::Memory(_) => "memory",
            Source::Seekable(_) => "seekable",
            Source::Stream(_) => "stream",
        };
        f.debug_struct("Content")
            .field("len", &self.len)
            .field("kind", &kind)
            .finish()
    }
}

/// What one extractor made of one file.
pub(crate) type Outcome = Result<Option<Vec<u8>>, String>;

/// Runs `extractors` over bytes in memory.
pub(crate) fn run_in_memory(
    extractors: &[&dyn Extractor],
    info: &EntryInfo<'_>,
    bytes: &[u8],
) -> Vec<Outcome> {
    extractors
        .iter()
        .map(|x| x.extract(info, &mut Content::from_bytes(bytes)))
        .collect()
}

/// Runs `extractors` over a seekable copy, each from the start.
pub(crate) fn run_seekable(
    extractors: &[&dyn Extractor],
    info: &EntryInfo<'_>,
    file: &mut dyn ReadSeek,
    len: u64,
) -> Vec<Outcome> {
    extractors
        .iter()
        .map(|x| {
            file.seek(io::SeekFrom::Start(0))
                .map_err(|e| format!("rewinding the spooled copy: {e}"))?;
            x.extract(info, &mut Content::from_seekable(file, len))
        })
        .collect()
}

/// Bytes per chunk handed to stream readers.
const TEE_CHUNK: usize = 64 << 10;
/// Chunks a stream reader may lag behind.
const TEE_DEPTH: usize = 4;

/// Runs `extractors` over a stream read once: one directly, several each on
/// a thread of its own, fed the same chunks.
pub(crate) fn run_streaming(
    extractors: &[&dyn Extractor],
    info: &EntryInfo<'_>,
    stream: &mut dyn Read,
    len: u64,
) -> Vec<Outcome> {
    if let [only] = extractors {
        return vec![only.extract(info, &mut Content::from_stream(stream, len))];
    }
    std::thread::scope(|scope| {
        let mut senders: Vec<Option<SyncSender<Chunk>>> = Vec::new();
        let mut workers = Vec::new();
        for x in extractors {
            let (tx, rx) = sync_channel::<Chunk>(TEE_DEPTH);
            senders.push(Some(tx));
            workers.push(scope.spawn(move || {
                let mut reader = ChunkStream {
                    rx,
                    current: Arc::from(&[][..]),
                    pos: 0,
                };
                x.extract(info, &mut Content::from_stream(&mut reader, len))
            }));
        }
        let mut buf = vec![0u8; TEE_CHUNK];
        loop {
            if senders.iter().all(Option::is_none) {
                break;
            }
            let chunk: Chunk = match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => Ok(Arc::from(&buf[..n])),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err((e.kind(), e.to_string())),
            };
            let failed = chunk.is_err();
            for slot in &mut senders {
                // A reader that has returned drops its end: stop feeding it.
                if slot
                    .as_ref()
                    .is_some_and(|tx| tx.send(chunk.clone()).is_err())
                {
                    *slot = None;
                }
            }
            if failed {
                break;
            }
        }
        // Closing the channels ends every reader's stream.
        drop(senders);
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err("the extractor panicked".to_string()))
            })
            .collect()
    })
}

type Chunk = Result<Arc<[u8]>, (io::ErrorKind, String)>;

/// The chunks of a shared stream, as one reader's `Read`.
struct ChunkStream {
    rx: Receiver<Chunk>,
    current: Arc<[u8]>,
    pos: usize,
}

impl Read for ChunkStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            match self.rx.recv() {
                Ok(Ok(next)) => {
                    self.current = next;
                    self.pos = 0;
                }
                Ok(Err((kind, message))) => return Err(io::Error::new(kind, message)),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
