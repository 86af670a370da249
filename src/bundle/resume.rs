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
//! - zstd: the frames are walked in order, each found with zstd's own
//!   `ZSTD_findFrameCompressedSize` and sized by its content-size field (the writer always
//!   sets it); the first frame that is cut, damaged in its header, or is the seek table
//!   ends the walk. The frames found become the frame map of the usual seekable reader,
//!   over which the tar crate walks the headers as for plain tar, decoding only the first
//!   frame of each entry (every entry starts a new frame).
//!
//! A split partial is read as the concatenation of its parts. The scan trusts nothing
//! inside the data: [`Partial::open`] hands out the recorded bytes unverified, and the
//! caller reads them through a `VerifyingReader`, so a blob that was cut, damaged on
//! disk or is simply not what its name says is caught there (and fetched again). A file
//! that is no bundle at all yields no blobs. Memory is one frame buffer and one map entry
//! per blob.
//!
//! [`Partial::discard`] deletes the files it was given, which are the save's own hidden
//! files (found under their fixed names by `export::resume`): a save only ever deletes
//! files it created, never files found by a name pattern.
//!
//! [`OutputFiles::partial`]: super::output::OutputFiles::partial
//! [`OutputFiles::partial_part`]: super::output::OutputFiles::partial_part

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::blob_name_digest;
use super::parts::{Location, PartSet};
use super::reader::{Storage, open_stream};
use super::seekable::{Frame, ZSTD_MAGIC};
use super::source::BundleFile;
use super::writer::FRAME_INPUT;
use crate::digest::Digest;

/// The blobs an unfinished bundle holds, and how to read them.
pub(crate) struct Partial {
    files: Vec<PathBuf>,
    loc: Location,
    storage: Storage,
    /// Digest → (offset of the data in the tar stream, size).
    blobs: HashMap<Digest, (u64, u64)>,
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
            discarded: AtomicBool::new(false),
        };
        if let Some(storage) = storage {
            let stream_len = match &storage {
                Storage::Plain => file_size,
                Storage::Zstd { frames, .. } => frames.last().map_or(0, |f| f.d_off + f.d_size),
            };
            partial.blobs = walk_entries(&partial.loc, &storage, stream_len)?;
        }
        Ok(partial)
    }

    /// The files scanned.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// How many whole blobs the files hold.
    pub fn len(&self) -> usize {
        self.blobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// Their total size.
    pub fn bytes(&self) -> u64 {
        self.blobs.values().map(|(_, size)| size).sum()
    }

    /// Whether the files hold a whole entry for blob `digest` of `size` bytes.
    pub fn has(&self, digest: &Digest, size: u64) -> bool {
        self.blobs.get(digest).is_some_and(|&(_, s)| s == size)
    }

    /// The recorded bytes of blob `digest`, unverified: read them through a
    /// `VerifyingReader`. `NotFound` when the files do not hold it.
    pub fn open(&self, digest: &Digest) -> io::Result<Box<dyn Read + Send + '_>> {
        let Some(&(offset, size)) = self.blobs.get(digest) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{digest} is not in the partial bundle"),
            ));
        };
        let mut stream = open_stream(&self.loc, &self.storage, 1024 * 1024, None)?;
        stream.seek(SeekFrom::Start(offset))?;
        Ok(Box::new(stream.take(size)))
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
    use zstd::zstd_safe;
    // The largest frame the writer makes, with room for headers and checksum.
    let window = zstd_safe::compress_bound(FRAME_INPUT) + 64 * 1024;
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_start = 0u64;
    let mut frames = Vec::new();
    let (mut c_off, mut d_off) = (0u64, 0u64);
    while c_off < file_size {
        let mut refilled = false;
        let (c_size, d_size) = loop {
            let rel = usize::try_from(c_off - buf_start).unwrap_or(usize::MAX);
            let here = buf.get(rel..).unwrap_or_default();
            if here.len() >= 4 && here[..4] != ZSTD_MAGIC {
                // The seek table (a skippable frame), or not ours: the data ends here.
                return Ok(frames);
            }
            if let Ok(c) = zstd_safe::find_frame_compressed_size(here)
                && let Ok(Some(d)) = zstd_safe::get_frame_content_size(here)
            {
                break (c as u64, d);
            }
            if refilled {
                // Cut (the file ends inside the frame) or damaged: stop here.
                return Ok(frames);
            }
            buf.resize(window, 0);
            let n = read_full_at(source, &mut buf, c_off)?;
            buf.truncate(n);
            buf_start = c_off;
            refilled = true;
        };
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

/// Every `blobs/sha256/<hex>` entry whose data lies wholly within `stream_len`.
fn walk_entries(
    loc: &Location,
    storage: &Storage,
    stream_len: u64,
) -> io::Result<HashMap<Digest, (u64, u64)>> {
    let stream = open_stream(loc, storage, 64 * 1024, None)?;
    let mut archive = tar::Archive::new(stream);
    let mut blobs = HashMap::new();
    for entry in archive.entries_with_seek()? {
        // A header that is cut or damaged ends what can be used.
        let Ok(entry) = entry else { break };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path_bytes();
        let Some(digest) = std::str::from_utf8(&name).ok().and_then(blob_name_digest) else {
            continue;
        };
        let (offset, size) = (entry.raw_file_position(), entry.size());
        if offset.saturating_add(size) > stream_len {
            break;
        }
        blobs.entry(digest).or_insert((offset, size));
    }
    Ok(blobs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::output::OutputFiles;
    use crate::bundle::writer::{BundleWriter, WriteOptions};
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
}
