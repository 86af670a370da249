//! What an unfinished bundle already holds, so that a rerun of an interrupted `save`
//! copies it instead of fetching it again.
//!
//! A save writes its bundle to hidden files beside the output
//! ([`OutputFiles::partial`], `.<name>.partial`, or for `--split`
//! [`OutputFiles::partial_part`], `.<name>.000.partial`, …) and keeps them when it
//! fails or is interrupted after layers started arriving. They
//! are an ordinary bundle cut at some byte: by an error, by Ctrl-C (then everything
//! compressed so far was written out), or anywhere at all by `kill -9` or a power loss.
//!
//! [`Partial::scan`] reads such files once, front to back, and records every
//! `blobs/sha256/<hex>` entry that lies wholly inside them:
//!
//! - plain tar: the tar crate walks the headers, seeking over the data;
//! - zstd: the frames are walked in order, each sized by walking its block headers
//!   (RFC 8878: a few bytes read per 128 KiB block, never the frame's data, so memory
//!   does not grow with the frame) and by its content-size field (the writer always sets
//!   it); the first frame that is cut, damaged in its header or block headers, or is the
//!   seek table ends the walk. The frames found become the frame map of the usual
//!   seekable reader, over which the tar crate walks the headers as for plain tar. An
//!   entry may start in one frame and end in another: a compact bundle's coarse frames
//!   (32–64 MiB, up to 128 MiB for a group of similar layers) span entries, and a
//!   kept compact partial ends after its last complete frame, wherever that falls
//!   inside an entry. What counts is only that the entry's data ends within the
//!   complete frames.
//!
//! A compact partial also says how its raw layer tars rebuild the gzip layers: the
//! `compact` list of its TOC (`airlock.json`, read when its entry is whole and its
//! checksum matches), kept as [`Partial::compact_layer`]. Nothing there is trusted
//! either: the rerun proves each recipe again on the raw bytes it reads from here
//! (`export::compact`), and [`Partial::forget`]s a raw tar that fails, so that nothing
//! else takes it from here.
//!
//! A split partial is read as the concatenation of its parts. The scan trusts nothing
//! inside the data: [`Partial::open`] hands out the recorded bytes unverified, and the
//! caller reads them through a `VerifyingReader`, so a blob that was cut, damaged on
//! disk or is simply not what its name says is caught there (and fetched again). A file
//! that is no bundle at all yields no blobs. Memory is the decoder's window and one map
//! entry per blob (and per recipe).
//!
//! [`Partial::discard`] deletes the files it was given, which are the save's own hidden
//! files (found under their fixed names by `export::resume`): a save only ever deletes
//! files it created, never files found by a name pattern.
//!
//! [`OutputFiles::partial`]: super::output::OutputFiles::partial
//! [`OutputFiles::partial_part`]: super::output::OutputFiles::partial_part

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::blob_name_digest;
use super::parts::{Location, PartSet};
use super::reader::{Storage, open_stream};
use super::seekable::{Frame, ZSTD_MAGIC};
use super::source::BundleFile;
use super::toc::{TOC_NAME, TocCompact, checksum_problem};
use crate::digest::Digest;
use crate::sync::lock;

/// The blobs an unfinished bundle holds, and how to read them.
pub(crate) struct Partial {
    files: Vec<PathBuf>,
    loc: Location,
    storage: Storage,
    /// Digest → (offset of the data in the tar stream, size).
    blobs: HashMap<Digest, (u64, u64)>,
    /// A compact partial's recipes (its TOC's `compact` list), by gzip layer digest.
    compact: HashMap<Digest, TocCompact>,
    /// Blobs found unusable since the scan ([`Partial::forget`]).
    forgotten: Mutex<HashSet<Digest>>,
    discarded: AtomicBool,
}

impl std::fmt::Debug for Partial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partial")
            .field("files", &self.files)
            .field("blobs", &self.blobs.len())
            .finish()
    }
}

impl Partial {
    /// Scans the unfinished bundle made of `files` (one file, or the parts in order).
    /// Fails only when the files cannot be read at all.
    pub(crate) fn scan(files: Vec<PathBuf>) -> io::Result<Partial> {
        let loc = match files.as_slice() {
            [one] => Location::File(one.clone()),
            _ => Location::Parts(Arc::new(PartSet::unindexed(&files)?)),
        };
        let source = BundleFile::open(&loc, None)?;
        let file_size = source.len()?;
        let mut head = [0u8; 512];
        let got = read_full_at(&source, &mut head, 0)?;
        let storage = if got >= 4 && head[..4] == ZSTD_MAGIC {
            let frames = walk_frames(&source, file_size)?;
            let data_end = frames.last().map_or(0, |f| f.c_off + f.c_size);
            Some(Storage::Zstd {
                frames: Arc::from(frames),
                data_end,
                seekable: false,
            })
        } else if got == 512 && &head[257..262] == b"ustar" {
            Some(Storage::Plain)
        } else {
            None
        };
        let mut partial = Partial {
            files,
            loc,
            storage: storage.clone().unwrap_or(Storage::Plain),
            blobs: HashMap::new(),
            compact: HashMap::new(),
            forgotten: Mutex::new(HashSet::new()),
            discarded: AtomicBool::new(false),
        };
        if let Some(storage) = storage {
            let stream_len = match &storage {
                Storage::Plain => file_size,
                Storage::Zstd { frames, .. } => frames.last().map_or(0, |f| f.d_off + f.d_size),
            };
            (partial.blobs, partial.compact) = walk_entries(&partial.loc, &storage, stream_len)?;
        }
        Ok(partial)
    }

    /// The files scanned.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// How many whole blobs the files hold.
    pub fn len(&self) -> usize {
        let forgotten = lock(&self.forgotten);
        self.blobs.keys().filter(|d| !forgotten.contains(d)).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Their total size.
    pub fn bytes(&self) -> u64 {
        let forgotten = lock(&self.forgotten);
        self.blobs
            .iter()
            .filter(|(d, _)| !forgotten.contains(d))
            .map(|(_, (_, size))| size)
            .sum()
    }

    /// Whether the files hold a whole entry for blob `digest` of `size` bytes (not
    /// [forgotten](Self::forget)).
    pub fn has(&self, digest: &Digest, size: u64) -> bool {
        self.blobs.get(digest).is_some_and(|&(_, s)| s == size)
            && !lock(&self.forgotten).contains(digest)
    }

    /// The recipe a compact partial recorded for gzip layer `layer`, when the files also
    /// hold its raw bytes whole: what a rerun may prove again and take from here.
    /// Unverified, like everything here.
    pub fn compact_layer(&self, layer: &Digest) -> Option<&TocCompact> {
        self.compact
            .get(layer)
            .filter(|c| self.has(&c.raw, c.raw_size))
    }

    /// Blob `digest` proved unusable (its bytes or the recipe built on them are not what
    /// they claim): from now on the partial does not offer it.
    pub fn forget(&self, digest: &Digest) {
        lock(&self.forgotten).insert(digest.clone());
    }

    /// The recorded bytes of blob `digest`, unverified: read them through a
    /// `VerifyingReader`. `NotFound` when the files do not hold it.
    pub fn open(&self, digest: &Digest) -> io::Result<Box<dyn Read + Send>> {
        self.blob(digest)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{digest} is not in the partial bundle"),
                )
            })?
            .open()
    }

    /// Blob `digest` as a handle that opens it later, without borrowing the partial;
    /// `None` when the files do not hold it (or it was forgotten).
    pub(crate) fn blob(&self, digest: &Digest) -> Option<KeptBlob> {
        let &(offset, size) = self.blobs.get(digest)?;
        if lock(&self.forgotten).contains(digest) {
            return None;
        }
        Some(KeptBlob {
            loc: self.loc.clone(),
            storage: self.storage.clone(),
            offset,
            size,
        })
    }

    /// Deletes the files (once; later calls do nothing). Readers already open keep
    /// reading what they have open.
    pub(crate) fn discard(&self) {
        if !self.discarded.swap(true, Ordering::SeqCst) {
            for f in &self.files {
                let _ = std::fs::remove_file(f);
            }
        }
    }
}

/// One blob of a partial bundle ([`Partial::blob`]): where its bytes are.
#[derive(Debug, Clone)]
pub(crate) struct KeptBlob {
    loc: Location,
    storage: Storage,
    offset: u64,
    size: u64,
}

impl KeptBlob {
    /// Its recorded bytes, unverified (see [`Partial::open`]). The partial's files must
    /// still exist.
    pub(crate) fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        let mut stream = open_stream(&self.loc, &self.storage, 1024 * 1024, None)?;
        stream.seek(SeekFrom::Start(self.offset))?;
        Ok(Box::new(stream.take(self.size)))
    }
}

/// Reads until `buf` is full or the data ends; returns the bytes read.
fn read_full_at(source: &BundleFile, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match source.read_at(&mut buf[got..], offset + got as u64)? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// The complete zstd data frames at the start of the file, in order.
fn walk_frames(source: &BundleFile, file_size: u64) -> io::Result<Vec<Frame>> {
    let mut frames = Vec::new();
    let (mut c_off, mut d_off) = (0u64, 0u64);
    while let Some((c_size, d_size)) = frame_at(source, c_off, file_size)? {
        frames.push(Frame {
            c_off,
            c_size,
            d_off,
            d_size,
        });
        c_off += c_size;
        d_off += d_size;
    }
    Ok(frames)
}

/// The compressed and content size of the zstd frame at `c_off`, when it is one the
/// writer makes (no dictionary, content size set) and ends within the file; `None` for
/// the seek table, anything else, or a frame that is cut.
fn frame_at(source: &BundleFile, c_off: u64, file_size: u64) -> io::Result<Option<(u64, u64)>> {
    let mut head = [0u8; 18];
    let n = read_full_at(source, &mut head, c_off)?;
    let head = &head[..n];
    if head.len() < 6 || head[..4] != ZSTD_MAGIC {
        return Ok(None);
    }
    let fhd = head[4];
    if fhd & 0x0B != 0 {
        return Ok(None); // a reserved bit, or a dictionary
    }
    let single = fhd & 0x20 != 0;
    let fcs_len = match (fhd >> 6, single) {
        (0, true) => 1,
        (0, false) => return Ok(None), // no content size
        (1, _) => 2,
        (2, _) => 4,
        _ => 8,
    };
    let at = if single { 5 } else { 6 };
    let Some(field) = head.get(at..at + fcs_len) else {
        return Ok(None);
    };
    let mut raw = [0u8; 8];
    raw[..fcs_len].copy_from_slice(field);
    let d_size = u64::from_le_bytes(raw) + if fcs_len == 2 { 256 } else { 0 };
    let checksum = if fhd & 0x04 != 0 { 4 } else { 0 };
    // The blocks: a 3-byte header each, then the content (one byte for RLE).
    let mut pos = c_off + (at + fcs_len) as u64;
    loop {
        let mut h = [0u8; 3];
        if read_full_at(source, &mut h, pos)? < 3 {
            return Ok(None);
        }
        let word = u32::from(h[0]) | u32::from(h[1]) << 8 | u32::from(h[2]) << 16;
        let size = u64::from(word >> 3);
        let content = match (word >> 1) & 3 {
            0 | 2 => size,
            1 => 1,
            _ => return Ok(None), // reserved: damaged
        };
        if size > 128 * 1024 {
            return Ok(None);
        }
        pos += 3 + content;
        if word & 1 != 0 {
            break;
        }
        if pos > file_size {
            return Ok(None);
        }
    }
    let end = pos + checksum;
    if end > file_size {
        return Ok(None);
    }
    Ok(Some((end - c_off, d_size)))
}

/// The TOC's `compact` list (nothing else of the TOC is needed here).
#[derive(serde::Deserialize)]
struct TocRecipes {
    #[serde(default)]
    compact: Vec<TocCompact>,
}

/// The largest TOC read for its recipes.
const MAX_TOC: u64 = 64 * 1024 * 1024;

/// Blob digest → (data offset, size), and the recipes by layer digest.
type Entries = (HashMap<Digest, (u64, u64)>, HashMap<Digest, TocCompact>);

/// Every `blobs/sha256/<hex>` entry whose data lies wholly within `stream_len`, and
/// the recipes of the TOC when it lies there too and its checksum matches.
fn walk_entries(loc: &Location, storage: &Storage, stream_len: u64) -> io::Result<Entries> {
    let stream = open_stream(loc, storage, 64 * 1024, None)?;
    let mut archive = tar::Archive::new(stream);
    let mut blobs = HashMap::new();
    let mut compact = HashMap::new();
    for entry in archive.entries_with_seek()? {
        // A header that is cut or damaged ends what can be used.
        let Ok(mut entry) = entry else { break };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path_bytes().into_owned();
        let (offset, size) = (entry.raw_file_position(), entry.size());
        if offset.saturating_add(size) > stream_len {
            break;
        }
        if name == TOC_NAME.as_bytes() && size <= MAX_TOC {
            let mut toc = Vec::new();
            if entry.read_to_end(&mut toc).is_ok()
                && checksum_problem(&toc).is_none()
                && let Ok(t) = serde_json::from_slice::<TocRecipes>(&toc)
            {
                compact = t
                    .compact
                    .into_iter()
                    .map(|c| (c.digest.clone(), c))
                    .collect();
            }
            continue;
        }
        let Some(digest) = std::str::from_utf8(&name).ok().and_then(blob_name_digest) else {
            continue;
        };
        blobs.entry(digest).or_insert((offset, size));
    }
    Ok((blobs, compact))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::output::OutputFiles;
    use crate::bundle::writer::{BundleWriter, FRAME_INPUT, WriteOptions};
    use std::fs;

    fn noise(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| {
                (i as u32)
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(seed as u32) as u8
            })
            .map(|b| b ^ seed)
            .collect()
    }

    /// Writes blobs, keeps the partial, and returns it with the blobs.
    fn kept(dir: &std::path::Path, name: &str) -> (PathBuf, Vec<Vec<u8>>) {
        let out = dir.join(name);
        let blobs: Vec<Vec<u8>> = (0..4u8)
            .map(|i| noise(FRAME_INPUT / 2 + 1000 * i as usize, i + 1))
            .collect();
        let mut w = BundleWriter::create(&out, WriteOptions::for_path(&out)).unwrap();
        w.add_file("oci-layout", b"{}").unwrap();
        w.add_dir("blobs/sha256").unwrap();
        for b in &blobs {
            w.add_blob(&Digest::of(b), b.len() as u64, &mut &b[..])
                .unwrap();
        }
        w.keep_on_drop(true);
        drop(w);
        let partial = OutputFiles::new(&out).partial();
        assert!(partial.exists() && !out.exists());
        (partial, blobs)
    }

    fn read_blob(p: &Partial, b: &[u8]) -> Vec<u8> {
        let mut got = Vec::new();
        p.open(&Digest::of(b))
            .unwrap()
            .read_to_end(&mut got)
            .unwrap();
        got
    }

    #[test]
    fn scan_finds_every_whole_blob_and_stops_at_any_cut() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.tar", "b.tar.zst"] {
            let (partial, blobs) = kept(dir.path(), name);
            let p = Partial::scan(vec![partial.clone()]).unwrap();
            assert_eq!(p.len(), blobs.len(), "{name}");
            for b in &blobs {
                assert!(p.has(&Digest::of(b), b.len() as u64));
                assert_eq!(&read_blob(&p, b), b);
            }
            // Cut anywhere: only whole blobs are found, each readable intact.
            let whole = fs::read(&partial).unwrap();
            for cut in [
                0,
                100,
                513,
                whole.len() / 3,
                whole.len() / 2,
                whole.len() - 1,
            ] {
                let cut_path = dir.path().join(format!("cut-{name}"));
                fs::write(&cut_path, &whole[..cut]).unwrap();
                let p = Partial::scan(vec![cut_path]).unwrap();
                assert!(
                    name.ends_with(".zst") || p.bytes() <= cut as u64,
                    "{name} cut at {cut}"
                );
                if cut <= whole.len() / 2 {
                    assert!(p.len() < blobs.len(), "{name} cut at {cut}");
                }
                for b in blobs
                    .iter()
                    .filter(|b| p.has(&Digest::of(b), b.len() as u64))
                {
                    assert_eq!(&read_blob(&p, b), b, "{name} cut at {cut}");
                }
            }
            // Split in two parts: the same blobs.
            let (a, b) = whole.split_at(whole.len() / 2 + 7);
            let (pa, pb) = (dir.path().join("p0"), dir.path().join("p1"));
            fs::write(&pa, a).unwrap();
            fs::write(&pb, b).unwrap();
            let p = Partial::scan(vec![pa, pb]).unwrap();
            assert_eq!(p.len(), blobs.len(), "{name} in parts");
            assert_eq!(&read_blob(&p, &blobs[2]), &blobs[2]);
            p.discard();
            fs::remove_file(&partial).unwrap();
        }
        // Not a bundle: nothing to reuse.
        let junk = dir.path().join("junk");
        fs::write(&junk, b"hello").unwrap();
        assert!(Partial::scan(vec![junk]).unwrap().is_empty());
    }

    /// Coarse frames (compact bundles) span entries: a partial cut anywhere holds the
    /// blobs whose data ends within its complete frames, entries cut by a frame
    /// boundary included, and no others.
    #[test]
    fn scan_finds_blobs_across_coarse_frames() {
        use crate::bundle::seekable::read_seek_table;
        use crate::bundle::writer::{COARSE_FRAME_MIN, Compression, Frames};
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("c.tar.zst");
        let opts = WriteOptions {
            compression: Compression::Zstd { level: 1 },
            threads: 2,
            mtime: Some(0),
            frames: Frames::Coarse,
        };
        // Compressible (fast at level 1), distinct per blob.
        let blob = |n: usize, seed: u8| -> Vec<u8> {
            (0..n)
                .map(|i| {
                    b"abcdefghij\n"[(i / 7 + seed as usize) % 11] ^ (i % 13 == seed as usize) as u8
                })
                .collect()
        };
        let blobs: Vec<Vec<u8>> = [20 << 20, 15 << 20, 1000, 40 << 20, 3 << 20]
            .iter()
            .enumerate()
            .map(|(i, &n)| blob(n, i as u8))
            .collect();
        let mut w = BundleWriter::create(&out, opts).unwrap();
        w.add_file("oci-layout", b"{}").unwrap();
        w.add_dir("blobs/sha256").unwrap();
        for b in &blobs {
            w.add_blob(&Digest::of(b), b.len() as u64, &mut &b[..])
                .unwrap();
        }
        w.finish().unwrap();
        let whole = fs::read(&out).unwrap();
        let table = read_seek_table(&mut fs::File::open(&out).unwrap(), whole.len() as u64)
            .unwrap()
            .unwrap();
        assert!(table.frames.len() >= 3, "{:?}", table.frames);
        assert!(table.frames[0].d_size >= COARSE_FRAME_MIN as u64);
        // Where each blob's data ends in the tar stream.
        let tar = zstd::decode_all(&whole[..]).unwrap();
        let mut ends = HashMap::new();
        for e in tar::Archive::new(&tar[..]).entries().unwrap() {
            let e = e.unwrap();
            if let Some(d) = blob_name_digest(&e.path().unwrap().to_string_lossy()) {
                ends.insert(d, e.raw_file_position() + e.size());
            }
        }
        let whole_frames = |cut: u64| -> (usize, u64) {
            let done: Vec<_> = table
                .frames
                .iter()
                .take_while(|f| f.c_off + f.c_size <= cut)
                .collect();
            (done.len(), done.last().map_or(0, |f| f.d_off + f.d_size))
        };
        let mut seen_partial_entry = false;
        for f in &table.frames {
            let frame_end = f.c_off + f.c_size;
            for cut in [
                f.c_off + 3,
                f.c_off + f.c_size / 2,
                frame_end - 1,
                frame_end,
            ] {
                let cut_path = dir.path().join("cut");
                fs::write(&cut_path, &whole[..cut as usize]).unwrap();
                let p = Partial::scan(vec![cut_path]).unwrap();
                let (_, d_end) = whole_frames(cut);
                for b in &blobs {
                    let d = Digest::of(b);
                    let within = ends[&d] <= d_end;
                    assert_eq!(p.has(&d, b.len() as u64), within, "cut at {cut}");
                    if within {
                        assert_eq!(&read_blob(&p, b), b, "cut at {cut}");
                    }
                }
                // An entry that starts in a complete frame and ends in the cut one.
                seen_partial_entry |= ends.values().any(|&e| e > d_end)
                    && blobs.iter().any(|b| p.has(&Digest::of(b), b.len() as u64));
            }
        }
        assert!(seen_partial_entry);
        // The whole file (seek table included) holds them all; a forgotten blob is not offered.
        let p = Partial::scan(vec![out.clone()]).unwrap();
        assert_eq!(p.len(), blobs.len());
        let d = Digest::of(&blobs[1]);
        p.forget(&d);
        assert!(!p.has(&d, blobs[1].len() as u64));
        assert_eq!(p.len(), blobs.len() - 1);
    }
}
