//! The bytes of a bundle, read at any offset: one file, or the concatenation of the
//! parts of a split bundle (see [`parts`](super::parts)).
//!
//! Everything above this layer (the zstd seek reader, the tar index, `verify`) sees one
//! stream of `total_size` bytes; offsets are offsets in the joined bundle, which is why
//! a seek table written across parts needs no translation. [`BundleFile`] reads with
//! positional reads (`pread`), so a reader and the decoder it feeds share one handle
//! without seeking it. For parts, it opens one part at a time, lazily, and names the
//! part in the error when a part is missing or shorter than the index says, so a read
//! that crosses a damaged part fails with a message an operator can act on.
//!
//! [`PartHashes`] lets `verify` hash every part while it streams the bundle for its own
//! checks: each read that continues a part where the previous one ended feeds that
//! part's hasher; a read that skips ahead first hashes the bytes skipped; what the scan
//! never read (the seek table, the tar end blocks) is hashed by [`PartHashes::finish`].
//! So each byte of each part is read about once, never twice on the sequential path.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use super::parts::{Location, PartProblem, PartSet};
use crate::digest::{Digest, Hasher};
use crate::sync::lock;

/// A bundle's bytes, readable at any offset from several places at once.
pub(crate) struct BundleFile {
    inner: Inner,
}

enum Inner {
    Single(File),
    Parts {
        set: Arc<PartSet>,
        /// The part read last and its handle.
        open: Mutex<Option<(usize, File)>>,
        hashes: Option<Arc<PartHashes>>,
    },
}

impl BundleFile {
    #[cfg(test)]
    pub(crate) fn single(file: File) -> BundleFile {
        BundleFile {
            inner: Inner::Single(file),
        }
    }

    /// Opens the bundle at `loc`; for a split bundle, `hashes` (if given) receives what
    /// is read. Parts are opened when first read.
    pub(crate) fn open(loc: &Location, hashes: Option<&Arc<PartHashes>>) -> io::Result<BundleFile> {
        Ok(BundleFile {
            inner: match loc {
                Location::File(path) => Inner::Single(File::open(path)?),
                Location::Parts(set) => Inner::Parts {
                    set: Arc::clone(set),
                    open: Mutex::new(None),
                    hashes: hashes.cloned(),
                },
            },
        })
    }

    /// Size of the bundle (the sum of the parts the index lists).
    pub(crate) fn len(&self) -> io::Result<u64> {
        match &self.inner {
            Inner::Single(f) => Ok(f.metadata()?.len()),
            Inner::Parts { set, .. } => Ok(set.total_size()),
        }
    }

    /// Reads at `offset` of the bundle; never crosses a part boundary in one call.
    pub(crate) fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let (set, open, hashes) = match &self.inner {
            Inner::Single(f) => return f.read_at(buf, offset),
            Inner::Parts { set, open, hashes } => (set, open, hashes),
        };
        if buf.is_empty() || offset >= set.total_size() {
            return Ok(0);
        }
        let i = set.part_at(offset);
        let part = &set.parts[i];
        let rel = offset - part.start;
        let want = buf
            .len()
            .min(usize::try_from(part.size - rel).unwrap_or(usize::MAX));
        let mut guard = lock(open);
        if guard.as_ref().is_none_or(|(j, _)| *j != i) {
            *guard = None;
            let file = File::open(&part.path).map_err(|e| {
                let problem = if e.kind() == io::ErrorKind::NotFound {
                    set.missing(i)
                } else {
                    set.unreadable(i, &e)
                };
                io::Error::other(problem)
            })?;
            *guard = Some((i, file));
        }
        let file = &guard.as_ref().expect("part open").1;
        let n = file
            .read_at(&mut buf[..want], rel)
            .map_err(|e| io::Error::other(set.unreadable(i, &e)))?;
        if n == 0 {
            let size = file.metadata().map_or(rel, |m| m.len());
            return Err(io::Error::other(set.short(i, size)));
        }
        if let Some(h) = hashes {
            h.saw(i, file, rel, &buf[..n]);
        }
        Ok(n)
    }
}

impl PartSet {
    fn missing(&self, i: usize) -> PartProblem {
        PartProblem::Missing {
            number: i + 1,
            count: self.count(),
            name: self.index().parts[i].name.clone(),
        }
    }

    fn unreadable(&self, i: usize, e: &io::Error) -> PartProblem {
        PartProblem::Unreadable {
            number: i + 1,
            count: self.count(),
            name: self.index().parts[i].name.clone(),
            error: e.to_string(),
        }
    }

    fn short(&self, i: usize, size: u64) -> PartProblem {
        PartProblem::Size {
            number: i + 1,
            count: self.count(),
            name: self.index().parts[i].name.clone(),
            size,
            expected: self.parts[i].size,
        }
    }
}

/// `Read + Seek` over a [`BundleFile`].
pub(crate) struct Cursor {
    file: Arc<BundleFile>,
    pos: u64,
}

impl Cursor {
    pub(crate) fn new(file: Arc<BundleFile>) -> Cursor {
        Cursor { file, pos: 0 }
    }
}

impl Read for Cursor {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Cursor {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.file.len()?.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the bundle",
            )
        })?;
        Ok(self.pos)
    }
}

/// The sha256 of every part of a split bundle, computed from what a scan reads.
pub(crate) struct PartHashes {
    states: Mutex<Vec<PartHash>>,
}

#[derive(Default)]
struct PartHash {
    hasher: Hasher,
    /// Bytes of the part hashed so far (the next byte to hash).
    next: u64,
    /// A read of the part failed; its hash is unknown.
    broken: bool,
}

const FILL_BUFFER: usize = 256 * 1024;

/// Hashes `file` from `state.next` up to `to` (or its end when `to` is `None`).
fn fill(file: &File, state: &mut PartHash, to: Option<u64>) -> io::Result<()> {
    let mut buf = vec![0u8; FILL_BUFFER];
    loop {
        let want = match to {
            Some(to) if state.next >= to => return Ok(()),
            Some(to) => (to - state.next).min(FILL_BUFFER as u64) as usize,
            None => FILL_BUFFER,
        };
        let n = file.read_at(&mut buf[..want], state.next)?;
        if n == 0 {
            return match to {
                None => Ok(()),
                Some(_) => Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            };
        }
        state.hasher.update(&buf[..n]);
        state.next += n as u64;
    }
}

impl PartHashes {
    pub(crate) fn new(count: usize) -> Arc<PartHashes> {
        Arc::new(PartHashes {
            states: Mutex::new((0..count).map(|_| PartHash::default()).collect()),
        })
    }

    /// Records that `data` was read from part `i` at offset `rel` of the part.
    fn saw(&self, i: usize, file: &File, rel: u64, data: &[u8]) {
        let mut states = lock(&self.states);
        let s = &mut states[i];
        if s.broken {
            return;
        }
        if rel > s.next && fill(file, s, Some(rel)).is_err() {
            s.broken = true;
            return;
        }
        let end = rel + data.len() as u64;
        if rel <= s.next && end > s.next {
            s.hasher.update(&data[(s.next - rel) as usize..]);
            s.next = end;
        }
    }

    /// Hashes what the scan did not read and returns each part's sha256, `None` for a
    /// part that could not be read completely.
    pub(crate) fn finish(&self, set: &PartSet) -> Vec<Option<Digest>> {
        let mut states = lock(&self.states);
        states
            .iter_mut()
            .zip(&set.parts)
            .map(|(s, p)| {
                if s.broken {
                    return None;
                }
                let file = File::open(&p.path).ok()?;
                fill(&file, s, None).ok()?;
                Some(std::mem::take(&mut s.hasher).finish().0)
            })
            .collect()
    }
}
