//! Reading a bundle with random access.
//!
//! [`Bundle::open`] detects plain tar or zstd by the magic bytes, reads the zstd seek
//! table from the end of the file, and walks the tar headers once, seeking over entry
//! data, to build an index of entry name → (offset in the tar stream, size). Because
//! the writer starts every entry in a new zstd frame, reaching a header decodes only
//! the first block of its frame, never the blob data before it (a compact bundle's
//! coarse frames span entries: there the walk decodes each frame once, in order). A
//! `.zst` without a seek table (recompressed by hand) still opens, at the cost of one
//! sequential pass now and a decode from the start for every later read.
//!
//! The index is the place where hostile archives are refused: absolute paths, `..`,
//! links, devices and duplicate names make `open` fail, so nothing downstream (push,
//! load, a later extract) ever sees them. A [`Bundle`] is `Send + Sync`; every
//! [`Bundle::blob`] call opens its own file handle, so many threads can read at once.
//! Reads are not verified here: callers wrap blobs in a `VerifyingReader`.
//!
//! A split bundle opens from its first part, its parts index or its base name
//! ([`parts::locate`](super::parts)); `open` checks that every part is there with the
//! size the index gives and that the first 4 KiB of each part are the ones the index
//! hashed (cheap, so a missing, truncated, swapped or foreign part is named before
//! anything is read), then reads the parts as one stream. `verify` hashes whole parts.

use std::collections::HashMap;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::parts::{Location, PartSet, locate};
use super::seekable::{
    Frame, SKIPPABLE_MAGIC, TableProblem, ZSTD_MAGIC, ZstdSeekReader, read_seek_table,
};
use super::source::{BundleFile, Cursor, PartHashes};
use super::toc::{FORMAT_VERSION, TOC_NAME, Toc, checksum_problem, has_checksum};
use super::{BundleError, MAX_TOC_SIZE, name_problem};
use crate::digest::Digest;
use crate::regzip::recipe::RebuildReader;

/// One entry of the bundle's tar stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name, without a trailing `/` for directories.
    pub name: String,
    /// Offset of the entry's data in the (decompressed) tar stream.
    pub offset: u64,
    pub size: u64,
    pub is_dir: bool,
}

/// How the tar stream is stored in the file.
#[derive(Debug, Clone)]
pub(crate) enum Storage {
    Plain,
    Zstd {
        /// From the seek table, or one frame of unknown size when there is none.
        frames: Arc<[Frame]>,
        /// Where the zstd data ends (the seek table starts).
        data_end: u64,
        /// Whether a valid seek table was found.
        seekable: bool,
    },
}

/// `Read + Seek` over the tar stream, whatever its storage.
pub(crate) trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// What [`probe`] learns about a file before reading any entry.
pub(crate) struct Probe {
    pub file_size: u64,
    pub storage: Storage,
    /// Why a zstd file has no usable seek table, if it has none.
    pub table_problem: Option<TableProblem>,
}

/// Detects the storage of the bundle at `loc` by its first bytes and, for zstd, reads
/// the seek table. `path` is what the user named, for messages.
pub(crate) fn probe(loc: &Location, path: &Path) -> Result<Probe, BundleError> {
    let open_err = |source| BundleError::Open {
        path: path.to_path_buf(),
        source,
    };
    let read_err = |source| BundleError::Read {
        path: path.to_path_buf(),
        source,
    };
    let source = Arc::new(BundleFile::open(loc, None).map_err(open_err)?);
    let file_size = source.len().map_err(open_err)?;
    let mut file = Cursor::new(source);
    let mut head = [0u8; 512];
    let mut got = 0;
    while got < head.len() {
        match file.read(&mut head[got..]).map_err(read_err)? {
            0 => break,
            n => got += n,
        }
    }
    let magic4 = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes"));
    if got >= 4
        && (head[0..4] == ZSTD_MAGIC || magic4 & 0xFFFF_FFF0 == SKIPPABLE_MAGIC & 0xFFFF_FFF0)
    {
        let (storage, table_problem) =
            match read_seek_table(&mut file, file_size).map_err(read_err)? {
                Ok(table) => (
                    Storage::Zstd {
                        data_end: file_size - table.table_size,
                        frames: Arc::from(table.frames),
                        seekable: true,
                    },
                    None,
                ),
                Err(problem) => (
                    Storage::Zstd {
                        frames: ZstdSeekReader::whole_file(file_size),
                        data_end: file_size,
                        seekable: false,
                    },
                    Some(problem),
                ),
            };
        return Ok(Probe {
            file_size,
            storage,
            table_problem,
        });
    }
    if got == 512 && &head[257..262] == b"ustar" {
        return Ok(Probe {
            file_size,
            storage: Storage::Plain,
            table_problem: None,
        });
    }
    Err(BundleError::NotTar {
        path: path.to_path_buf(),
    })
}

/// Opens a fresh `Read + Seek` view of the tar stream of the bundle at `loc`; for a
/// split bundle, `hashes` (if given) receives every part byte read.
pub(crate) fn open_stream(
    loc: &Location,
    storage: &Storage,
    buffer: usize,
    hashes: Option<&Arc<PartHashes>>,
) -> io::Result<Box<dyn ReadSeek>> {
    open_stream_with(loc, storage, buffer, hashes, false)
}

/// [`open_stream`]; with `pass_raw`, a `.tar.zst` reads raw blocks without the decoder
/// (their frame checksums unchecked: only for bytes the caller hashes against a digest).
fn open_stream_with(
    loc: &Location,
    storage: &Storage,
    buffer: usize,
    hashes: Option<&Arc<PartHashes>>,
    pass_raw: bool,
) -> io::Result<Box<dyn ReadSeek>> {
    let file = Arc::new(BundleFile::open(loc, hashes)?);
    Ok(match storage {
        Storage::Plain => Box::new(BufReader::with_capacity(buffer, Cursor::new(file))),
        Storage::Zstd {
            frames, data_end, ..
        } => Box::new(
            ZstdSeekReader::from_source(file, Arc::clone(frames), *data_end)
                .with_buffer_size(buffer)
                .passing_raw_blocks(pass_raw),
        ),
    })
}

/// The file offset (in the joined bundle) where the bytes of stream offset `at` are
/// stored, as far as the storage tells (the start of the frame holding it for zstd).
fn file_offset(storage: &Storage, at: u64) -> u64 {
    match storage {
        Storage::Plain => at,
        Storage::Zstd { frames, .. } => {
            let i = frames.partition_point(|f| f.d_off.saturating_add(f.d_size) <= at);
            frames.get(i).map_or(0, |f| f.c_off)
        }
    }
}

/// What a tar entry is, as far as a bundle cares.
pub(crate) enum EntryCheck {
    /// A file or directory with an acceptable name (trailing `/` removed).
    Ok { name: String, is_dir: bool },
    /// A header to pass over silently (PAX global header).
    Ignore,
    /// Something a bundle never holds; `name` as found, `reason` why it is refused.
    Hostile { name: String, reason: String },
}

/// Classifies a tar entry: only regular files and directories with plain relative
/// names are accepted.
pub(crate) fn check_entry<R: Read>(entry: &tar::Entry<'_, R>) -> EntryCheck {
    let raw = entry.path_bytes();
    let Ok(name) = std::str::from_utf8(&raw) else {
        return EntryCheck::Hostile {
            name: String::from_utf8_lossy(&raw).into_owned(),
            reason: "name is not UTF-8".to_string(),
        };
    };
    let kind = entry.header().entry_type();
    if kind.is_pax_global_extensions() {
        return EntryCheck::Ignore;
    }
    // `tar -C dir .` starts with the archive's root directory itself: nothing to read.
    if kind.is_dir() && (name == "./" || name == ".") {
        return EntryCheck::Ignore;
    }
    let name = name.strip_prefix("./").unwrap_or(name);
    let hostile = |reason: &str| EntryCheck::Hostile {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if kind.is_symlink() {
        return hostile("symbolic link");
    }
    if kind.is_hard_link() {
        return hostile("hard link");
    }
    if !kind.is_file() && !kind.is_dir() {
        return hostile("not a regular file or directory");
    }
    if let Some(reason) = name_problem(name) {
        return hostile(reason);
    }
    EntryCheck::Ok {
        name: name.trim_end_matches('/').to_string(),
        is_dir: kind.is_dir(),
    }
}

/// An opened bundle: its entry index and its table of contents.
#[derive(Debug)]
pub struct Bundle {
    path: PathBuf,
    loc: Location,
    file_size: u64,
    storage: Storage,
    entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
    toc: Toc,
    /// sha256 of the exact `airlock.json` bytes: what a signed statement names.
    toc_sha256: Digest,
}

impl Bundle {
    /// Opens and indexes the bundle at `path`; fails on anything that is not a sound,
    /// readable airlock bundle of a format this build understands. `path` may also be
    /// the first part or the parts index of a split bundle, or its base name when only
    /// the parts exist.
    pub fn open(path: &Path) -> Result<Bundle, BundleError> {
        Self::open_checking(path, true)
    }

    /// [`Bundle::open`] that accepts a TOC whose checksum does not match: for `verify`,
    /// which reports the checksum itself and still checks what the TOC describes.
    pub(crate) fn open_despite_toc_checksum(path: &Path) -> Result<Bundle, BundleError> {
        Self::open_checking(path, false)
    }

    fn open_checking(path: &Path, toc_checksum: bool) -> Result<Bundle, BundleError> {
        let loc = locate(path)?;
        if let Location::Parts(set) = &loc {
            let mut problems = set.check(true);
            if !problems.is_empty() {
                let problem = problems.remove(0);
                return Err(BundleError::Part {
                    index: set.index_path().to_path_buf(),
                    problem,
                    more: problems.len(),
                });
            }
        }
        let probe = probe(&loc, path)?;
        let read_err = |source| BundleError::Read {
            path: path.to_path_buf(),
            source,
        };
        let stream = open_stream(&loc, &probe.storage, 64 * 1024, None).map_err(read_err)?;
        let mut archive = tar::Archive::new(stream);
        let mut entries = Vec::new();
        let mut by_name = HashMap::new();
        let mut end = 0u64;
        let mut last = None;
        for entry in archive.entries_with_seek().map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            let (name, is_dir) = match check_entry(&entry) {
                EntryCheck::Ok { name, is_dir } => (name, is_dir),
                EntryCheck::Ignore => continue,
                EntryCheck::Hostile { name, reason } => {
                    return Err(BundleError::Hostile {
                        path: path.to_path_buf(),
                        entry: name,
                        reason,
                    });
                }
            };
            if by_name.contains_key(&name) {
                return Err(BundleError::Hostile {
                    path: path.to_path_buf(),
                    entry: name,
                    reason: "the name appears twice".to_string(),
                });
            }
            by_name.insert(name.clone(), entries.len());
            let offset = entry.raw_file_position();
            end = offset.saturating_add(entry.size().div_ceil(512).saturating_mul(512));
            last = Some((name.clone(), entry.size()));
            entries.push(Entry {
                name,
                offset,
                size: entry.size(),
                is_dir,
            });
        }
        drop(archive);
        // The tar reader seeks over entry data, so an entry whose header claims more bytes
        // than the file holds ends the walk silently: the end-of-archive blocks must be
        // where the last entry says it ends.
        if let Some((name, size)) = last {
            let mut stream = open_stream(&loc, &probe.storage, 4096, None).map_err(read_err)?;
            let mut block = [0u8; 1024];
            let fits = stream
                .seek(SeekFrom::Start(end))
                .and_then(|_| stream.read_exact(&mut block))
                .is_ok();
            if !fits {
                return Err(read_err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "entry `{name}` claims {size} bytes, which run past the end of the bundle \
                         (it is truncated or damaged)"
                    ),
                )));
            }
        }
        let mut bundle = Bundle {
            path: path.to_path_buf(),
            loc,
            file_size: probe.file_size,
            storage: probe.storage,
            entries,
            by_name,
            toc: Toc {
                format_version: 0,
                tool: String::new(),
                created: String::new(),
                docker_platform: String::new(),
                images: Vec::new(),
                blobs: Vec::new(),
                base: None,
                artifacts: Vec::new(),
                compact: Vec::new(),
            },
            toc_sha256: Digest::of(b""),
        };
        if !bundle.by_name.contains_key(TOC_NAME) {
            return Err(BundleError::NotAirlock {
                path: path.to_path_buf(),
            });
        }
        let bytes = bundle.read_entry(TOC_NAME, MAX_TOC_SIZE)?;
        if let Location::Parts(set) = &bundle.loc
            && let Some(want) = &set.index().toc_sha256
            && Digest::of(&bytes).hex() != want.as_str()
        {
            // The parts passed the cheap checks but hold another bundle's table of contents.
            let at = file_offset(
                &bundle.storage,
                bundle.entries[bundle.by_name[TOC_NAME]].offset,
            );
            return Err(BundleError::Part {
                index: set.index_path().to_path_buf(),
                problem: set.mismatch(set.part_at(at), None),
                more: 0,
            });
        }
        bundle.toc = parse_toc(path, &bytes)?;
        bundle.toc_sha256 = Digest::of(&bytes);
        // A blob whose tar entry is not the size the TOC gives is damaged or crafted;
        // refuse it here rather than when a reader trips over it.
        for b in &bundle.toc.blobs {
            if let Some(e) = bundle.entry(&b.digest.blob_path())
                && e.size != b.size
            {
                return Err(BundleError::Hostile {
                    path: path.to_path_buf(),
                    entry: e.name.clone(),
                    reason: format!(
                        "its tar header says {} bytes but airlock.json says {}",
                        e.size, b.size
                    ),
                });
            }
        }
        // A TOC written before airlock kept a checksum opens; `verify` reports it.
        if toc_checksum
            && has_checksum(&bytes)
            && let Some(reason) = checksum_problem(&bytes)
        {
            return Err(BundleError::TocChecksum {
                path: path.to_path_buf(),
                reason,
            });
        }
        Ok(bundle)
    }

    /// The parts of a split bundle (`None` for a bundle in one file).
    pub fn parts(&self) -> Option<&PartSet> {
        match &self.loc {
            Location::Parts(set) => Some(set),
            Location::File(_) => None,
        }
    }

    pub fn toc(&self) -> &Toc {
        &self.toc
    }

    /// sha256 of the exact `airlock.json` bytes in the bundle: the TOC's identity, which
    /// a signed statement (and a differential bundle made against this one) names.
    pub fn toc_sha256(&self) -> &Digest {
        &self.toc_sha256
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the tar stream is zstd-compressed.
    pub fn compressed(&self) -> bool {
        matches!(self.storage, Storage::Zstd { .. })
    }

    /// Whether the file has a zstd seek table (always false for plain tar).
    pub fn seekable(&self) -> bool {
        matches!(self.storage, Storage::Zstd { seekable: true, .. })
    }

    /// Size of the bundle file on disk (of all its parts together, when split).
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// Every entry, in tar order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name).map(|&i| &self.entries[i])
    }

    /// Whether blob `digest` can be read: its entry is there, or (a compact layer) its
    /// raw tar's entry is.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.by_name.contains_key(&self.toc.stored_path(digest))
    }

    /// Reads a small entry into memory; fails if it is larger than `limit`.
    pub fn read_entry(&self, name: &str, limit: u64) -> Result<Vec<u8>, BundleError> {
        let entry = self.entry(name).ok_or_else(|| BundleError::MissingEntry {
            path: self.path.clone(),
            name: name.to_string(),
        })?;
        if entry.size > limit {
            return Err(BundleError::TooLarge {
                path: self.path.clone(),
                name: name.to_string(),
                size: entry.size,
                limit,
            });
        }
        let mut out = Vec::with_capacity(entry.size as usize);
        self.open_entry(entry, 64 * 1024, false)?
            .read_to_end(&mut out)
            .map_err(|source| self.read_error(source))?;
        if out.len() as u64 != entry.size {
            return Err(self.read_error(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "entry `{name}` ends after {} of {} bytes",
                    out.len(),
                    entry.size
                ),
            )));
        }
        Ok(out)
    }

    /// The bytes of blob `digest`, read from its own file handle. Not verified: wrap
    /// the reader in a `VerifyingReader` with the blob's digest and size. A compact
    /// layer is rebuilt from its raw tar and recipe as it is read, and that rebuild is
    /// verified: a read fails at the end, naming the layer, when the rebuilt bytes do
    /// not have its digest.
    pub fn blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>, BundleError> {
        if let Some(c) = self.toc.compact_layer(digest) {
            let raw = self.blob(&c.raw)?;
            return Ok(Box::new(RebuildReader::verified(
                c.recipe.clone(),
                raw,
                c.digest.clone(),
                c.size,
            )));
        }
        let entry = self
            .entry(&digest.blob_path())
            .ok_or_else(|| BundleError::MissingBlob {
                path: self.path.clone(),
                digest: digest.clone(),
            })?;
        self.open_entry(entry, 256 * 1024, false)
    }

    /// The bytes of blob `digest` from offset `start` to its end (for a range request),
    /// reached by seeking: in a `.tar.zst` only the frames from the one holding `start`
    /// on are decoded. Not verified (a part of a blob cannot be). With `hashed` (the
    /// caller checks every byte it reads against the digest: a whole blob), a
    /// `.tar.zst`'s raw blocks are read without the decoder and their frames' checksums
    /// are left to that digest; without it, every frame read is decoded and checked.
    pub fn blob_from(
        &self,
        digest: &Digest,
        start: u64,
        hashed: bool,
    ) -> Result<Box<dyn Read + Send + '_>, BundleError> {
        if self.toc.compact_layer(digest).is_some() {
            // Rebuilt from the start, the bytes before `start` dropped.
            let mut whole = self.blob(digest)?;
            io::copy(&mut (&mut whole).take(start), &mut io::sink())
                .map_err(|source| self.read_error(source))?;
            return Ok(whole);
        }
        let entry = self
            .entry(&digest.blob_path())
            .ok_or_else(|| BundleError::MissingBlob {
                path: self.path.clone(),
                digest: digest.clone(),
            })?;
        let start = start.min(entry.size);
        let part = Entry {
            offset: entry.offset + start,
            size: entry.size - start,
            ..entry.clone()
        };
        self.open_entry(&part, 256 * 1024, hashed)
    }

    /// A reader of `entry`'s bytes; `pass_raw` as in [`open_stream_with`].
    fn open_entry(
        &self,
        entry: &Entry,
        buffer: usize,
        pass_raw: bool,
    ) -> Result<Box<dyn Read + Send + '_>, BundleError> {
        let mut stream = open_stream_with(&self.loc, &self.storage, buffer, None, pass_raw)
            .map_err(|source| BundleError::Open {
                path: self.path.clone(),
                source,
            })?;
        stream
            .seek(SeekFrom::Start(entry.offset))
            .map_err(|source| self.read_error(source))?;
        Ok(Box::new(stream.take(entry.size)))
    }

    fn read_error(&self, source: io::Error) -> BundleError {
        BundleError::Read {
            path: self.path.clone(),
            source,
        }
    }
}

/// Parses `airlock.json`, refusing unknown format versions before the full parse.
pub(crate) fn parse_toc(path: &Path, bytes: &[u8]) -> Result<Toc, BundleError> {
    #[derive(Deserialize)]
    struct VersionProbe {
        format_version: Option<u32>,
    }
    let probe: VersionProbe =
        serde_json::from_slice(bytes).map_err(|source| BundleError::BadToc {
            path: path.to_path_buf(),
            source,
        })?;
    match probe.format_version {
        None | Some(0) => Err(BundleError::NotAirlock {
            path: path.to_path_buf(),
        }),
        Some(v) if v > FORMAT_VERSION => Err(BundleError::Newer {
            path: path.to_path_buf(),
            found: v,
            supported: FORMAT_VERSION,
        }),
        Some(_) => serde_json::from_slice(bytes).map_err(|source| BundleError::BadToc {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toc_versions() {
        let p = Path::new("b.tar");
        assert!(matches!(
            parse_toc(p, br#"{"format_version":99}"#),
            Err(BundleError::Newer { found: 99, .. })
        ));
        assert!(matches!(
            parse_toc(p, br#"{"x":1}"#),
            Err(BundleError::NotAirlock { .. })
        ));
        assert!(matches!(
            parse_toc(p, b"nope"),
            Err(BundleError::BadToc { .. })
        ));
        let ok = br#"{"format_version":1,"tool":"airlock 0.1.0","created":"2024-01-01T00:00:00Z","docker_platform":"linux/amd64","images":[],"blobs":[]}"#;
        assert_eq!(parse_toc(p, ok).unwrap().format_version, 1);
    }

    #[test]
    fn not_a_tar() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.tar");
        std::fs::write(&p, b"hello").unwrap();
        assert!(matches!(Bundle::open(&p), Err(BundleError::NotTar { .. })));
    }

    #[test]
    fn bundle_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Bundle>();
    }
}
