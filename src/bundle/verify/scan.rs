//! The tar stream scan: reads the bundle's entries one after another, from its first
//! byte to its end-of-archive blocks, and records what the tar layer itself gets wrong.
//!
//! Entries are read sequentially, never seeking over padding or skipped data, so the
//! zstd decoder runs through every frame to its end and checks its checksum; the stream
//! goes through a [`Watch`] that checks each entry's padding is zero as the tar reader
//! passes it ([`ZeroWatch`]); every header's checksum field must be in a canonical form
//! ([`checksum_field_problem`]); and after the last entry only zero blocks may follow
//! ([`Pass::check_end`]). The signature entry, when there is one, must come right after
//! the TOC. A read error either stops the pass or lets it start again at
//! a later offset ([`Scan`]): at the next header when the seek table (or the next part
//! of a split bundle) allows it, or at the next plausible header ([`Pass::resync`]).
//! What each entry's content holds is the business of `entries`.

use std::cell::RefCell;
use std::io::{self, Read, Seek, SeekFrom};
use std::rc::Rc;

use super::{Finding, FindingKind, Pass, READ_BUFFER, is_part_error};
use crate::bundle::parts::Location;
use crate::bundle::reader::{EntryCheck, ReadSeek, Storage, check_entry, open_stream};
use crate::bundle::seekable::FrameError;
use crate::bundle::signature::SIG_NAME;
use crate::bundle::toc::TOC_NAME;
use crate::bundle::{blob_name_digest, is_expected_name};
use crate::digest::Digest;

/// The most zero bytes accepted after the last entry (tar pads to its record size,
/// 10 KiB for GNU tar; airlock writes 1 KiB).
const MAX_END_BYTES: u64 = 1024 * 1024;

/// How a [`Pass::scan`] from some offset ended.
pub(super) enum Scan {
    /// The stream ended (cleanly or not; findings say which).
    End,
    /// Reading broke inside an entry but the stream can be read again from this offset
    /// (the next header).
    Resume(u64),
    /// A header at this stream offset could not be read; try to resynchronise. The
    /// reason is set when no finding has been recorded for it yet.
    Lost(u64, Option<String>),
}

/// A stream seen from `base` on, so a fresh `tar::Archive` can start mid-stream.
struct OffsetView<R> {
    inner: R,
    base: u64,
}

impl<R: Read> Read for OffsetView<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<R: Seek> Seek for OffsetView<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let pos = match pos {
            SeekFrom::Start(n) => SeekFrom::Start(self.base + n),
            other => other,
        };
        Ok(self.inner.seek(pos)?.saturating_sub(self.base))
    }
}

/// A range of the stream that must be zero (an entry's padding), and the first
/// offset in it found not to be.
#[derive(Default)]
struct ZeroWatch {
    from: u64,
    to: u64,
    bad: Option<u64>,
}

impl ZeroWatch {
    fn expect(&mut self, from: u64, to: u64) {
        *self = ZeroWatch {
            from,
            to,
            bad: None,
        };
    }

    fn take(&mut self) -> Option<u64> {
        let bad = self.bad.take();
        self.from = self.to;
        bad
    }
}

/// The tar stream as the scan reads it: tracks the stream offset and checks the bytes
/// of the current [`ZeroWatch`] range as they go by.
struct Watch<R> {
    inner: R,
    pos: u64,
    zeros: Rc<RefCell<ZeroWatch>>,
}

impl<R: Read> Read for Watch<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let end = self.pos + n as u64;
        let mut z = self.zeros.borrow_mut();
        if z.bad.is_none() && end > z.from && self.pos < z.to {
            let lo = z.from.max(self.pos);
            let hi = z.to.min(end);
            let slice = &buf[(lo - self.pos) as usize..(hi - self.pos) as usize];
            if let Some(i) = slice.iter().position(|b| *b != 0) {
                z.bad = Some(lo + i as u64);
            }
        }
        self.pos = end;
        Ok(n)
    }
}

/// Why a tar header's checksum field is not in a canonical form (the checksum itself was
/// checked by the tar reader): seven octal digits and a NUL (the Rust `tar` crate,
/// airlock's writer) or six digits, a NUL and a space (GNU tar, POSIX). tar readers
/// accept spaces and NULs in other places; a bit flipped there would go unnoticed.
fn checksum_field_problem(header: &[u8; 512]) -> Option<String> {
    let field = &header[148..156];
    let sum: u32 = header
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    let rust = format!("{sum:07o}\0");
    let posix = format!("{sum:06o}\0 ");
    if field == rust.as_bytes() || field == posix.as_bytes() {
        None
    } else {
        Some(format!(
            "its checksum field {:?} is not in canonical form",
            String::from_utf8_lossy(field)
        ))
    }
}

impl Pass<'_> {
    fn open(&self, at: u64) -> io::Result<OffsetView<Box<dyn ReadSeek>>> {
        let mut inner = open_stream(self.loc, &self.storage, READ_BUFFER, self.hashes.as_ref())?;
        inner.seek(SeekFrom::Start(at))?;
        Ok(OffsetView { inner, base: at })
    }

    /// Reports an error reading the stream; returns whether the pass must stop.
    pub(super) fn stream_error(
        &mut self,
        e: &io::Error,
        at: u64,
        digest: Option<Digest>,
        entry: Option<String>,
    ) -> bool {
        let inside = entry
            .as_ref()
            .map(|n| format!(" inside entry `{n}`"))
            .unwrap_or_default();
        // Every finding here is about the blob and entry being read, if any.
        let located = |f: Finding| {
            let f = f.with_digest(digest.clone());
            match &entry {
                Some(name) => f.with_entry(name.clone()),
                None => f,
            }
        };
        if let Some(fe) = FrameError::from_io(e) {
            if fe.truncated {
                let file_size = self.file_size;
                self.findings.push(located(Finding::new(
                    FindingKind::Truncated,
                    format!(
                        "the bundle ends early: the zstd data stops at file offset {file_size}, \
                         stream offset {}{inside}",
                        fe.at
                    ),
                )));
                return true;
            }
            let cause = fe.source.to_string();
            let part = match self.loc {
                Location::Parts(set) if fe.c_off < set.total_size() => {
                    let i = set.part_at(fe.c_off);
                    format!(
                        ": part {} of {} ({}) at offset {}",
                        i + 1,
                        set.count(),
                        set.index().parts[i].name,
                        fe.c_off - set.parts[i].start
                    )
                }
                _ => String::new(),
            };
            self.findings.push(located(Finding::new(
                FindingKind::CorruptFrame,
                format!(
                    "zstd frame {} at file offset {}{part} cannot be decoded ({cause}){inside}",
                    fe.frame, fe.c_off
                ),
            )));
            self.resume = self.seekable;
            return !self.seekable;
        }
        if e.kind() == io::ErrorKind::UnexpectedEof {
            self.findings.push(located(Finding::new(
                FindingKind::Truncated,
                format!("the bundle ends early, at stream offset {at}{inside}"),
            )));
            return true;
        }
        if is_part_error(e) {
            // A missing or short part of a split bundle: the entries after it may be
            // readable (the part itself is reported on its own).
            self.findings.push(located(Finding::new(
                FindingKind::Unreadable,
                format!("cannot read stream offset {at}{inside}: {e}"),
            )));
            self.resume = true;
            return false;
        }
        self.findings.push(located(Finding::new(
            FindingKind::Unreadable,
            format!("cannot read stream offset {at}{inside}: {e}"),
        )));
        true
    }

    /// Reads entries from stream offset `start` until the end or a damaged header.
    pub(super) fn scan(&mut self, start: u64) -> Scan {
        let view = match self.open(start) {
            Ok(v) => v,
            Err(e) => {
                self.stream_error(&e, start, None, None);
                return Scan::End;
            }
        };
        let zeros = Rc::new(RefCell::new(ZeroWatch::default()));
        let mut archive = tar::Archive::new(Watch {
            inner: view,
            pos: start,
            zeros: Rc::clone(&zeros),
        });
        let mut next_header = start;
        // The entry whose padding the tar reader is about to read through: (name, digest).
        let mut padded: Option<(String, Option<Digest>)> = None;
        // The last entry seen: name, digest, header offset.
        let mut last: Option<(String, Option<Digest>, u64)> = None;
        // Entries are read sequentially (never seeking over padding or skipped data), so
        // the zstd decoder runs through every frame to its end and checks its checksum,
        // and the padding goes through `Watch`, which checks that it is zero.
        let entries = match archive.entries() {
            Ok(e) => e,
            Err(e) => {
                self.stream_error(&e, start, None, None);
                return Scan::End;
            }
        };
        for entry in entries {
            self.check_padding(&zeros, padded.take());
            let mut entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let damaged_header = e.get_ref().is_none_or(|i| !i.is::<FrameError>())
                        && e.kind() != io::ErrorKind::UnexpectedEof;
                    let past_end = matches!(self.storage, Storage::Plain)
                        && next_header + 512 > self.file_size;
                    if damaged_header && past_end {
                        self.findings.push(Finding::new(
                            FindingKind::Truncated,
                            format!("the bundle ends early, inside the tar header at stream offset {next_header}"),
                        ));
                        return Scan::End;
                    }
                    if damaged_header {
                        let reason = format!(
                            "the tar header at stream offset {next_header} is damaged ({e})"
                        );
                        return Scan::Lost(next_header, Some(reason));
                    }
                    // A frame that fails at its end (its checksum) while the reader goes
                    // through the padding belongs to the entry before.
                    let (digest, name) = match (FrameError::from_io(&e), &last) {
                        (Some(fe), Some((name, digest, header)))
                            if fe.d_off >= *header && fe.d_off < next_header =>
                        {
                            (digest.clone(), Some(name.clone()))
                        }
                        _ => (None, None),
                    };
                    if self.stream_error(&e, next_header, digest, name) {
                        return Scan::End;
                    }
                    if std::mem::take(&mut self.resume) {
                        return Scan::Resume(next_header);
                    }
                    return Scan::Lost(next_header, None);
                }
            };
            let data_at = start + entry.raw_file_position();
            let size = entry.size();
            let header_at = next_header;
            next_header = data_at.saturating_add(size.div_ceil(512).saturating_mul(512));
            zeros
                .borrow_mut()
                .expect(data_at.saturating_add(size), next_header);
            let label = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            padded = Some((label.clone(), blob_name_digest(&label)));
            last = Some((label.clone(), blob_name_digest(&label), header_at));
            if let Some(why) = checksum_field_problem(entry.header().as_bytes()) {
                self.findings.push(
                    Finding::new(
                        FindingKind::Damaged,
                        format!(
                            "the tar header of entry `{label}` at stream offset {header_at} is damaged: {why}"
                        ),
                    )
                    .with_digest(blob_name_digest(&label))
                    .with_entry(label),
                );
            }
            let (name, is_dir) = match check_entry(&entry) {
                EntryCheck::Ok { name, is_dir } => (name, is_dir),
                EntryCheck::Ignore => continue,
                EntryCheck::Hostile { name, reason } => {
                    self.findings.push(
                        Finding::new(
                            FindingKind::HostileEntry,
                            format!("entry `{name}` is refused: {reason}"),
                        )
                        .with_entry(name),
                    );
                    continue;
                }
            };
            let after = self.prev_entry.replace(name.clone());
            if !self.seen.names.insert(name.clone()) {
                self.findings.push(
                    Finding::new(
                        FindingKind::DuplicateEntry,
                        format!("entry `{name}` appears more than once"),
                    )
                    .with_digest(blob_name_digest(&name))
                    .with_entry(name),
                );
                continue;
            }
            if !is_expected_name(&name) {
                self.findings.push(
                    Finding::new(
                        FindingKind::UnexpectedEntry,
                        format!("entry `{name}` does not belong in an airlock bundle"),
                    )
                    .with_entry(name),
                );
                continue;
            }
            if name == SIG_NAME && after.as_deref() != Some(TOC_NAME) {
                self.findings.push(
                    Finding::new(
                        FindingKind::UnexpectedEntry,
                        format!(
                            "entry `{SIG_NAME}` must come right after `{TOC_NAME}`, but follows {}; \
                             the bundle was rearranged",
                            after.map_or("nothing".to_string(), |a| format!("`{a}`"))
                        ),
                    )
                    .with_entry(name.clone()),
                );
            }
            if is_dir {
                continue;
            }
            self.seen.files.insert(name.clone());
            let stop = if let Some(digest) = blob_name_digest(&name) {
                self.check_blob(&mut entry, &name, digest, size, data_at)
            } else {
                self.keep_metadata(&mut entry, &name, size, data_at)
            };
            if stop {
                return Scan::End;
            }
            if std::mem::take(&mut self.resume) {
                // The stream broke inside this entry (a corrupt frame, an unreadable
                // part); start again, with a fresh decoder, at the next header.
                return Scan::Resume(next_header);
            }
        }
        drop(archive);
        self.check_padding(&zeros, padded.take());
        self.check_end(next_header);
        Scan::End
    }

    /// Reports non-zero padding the tar reader went through after entry `padded`.
    fn check_padding(
        &mut self,
        zeros: &RefCell<ZeroWatch>,
        padded: Option<(String, Option<Digest>)>,
    ) {
        let bad = zeros.borrow_mut().take();
        if let (Some((name, digest)), Some(at)) = (padded, bad) {
            self.findings.push(
                Finding::new(
                    FindingKind::Damaged,
                    format!(
                        "the padding after entry `{name}` is not zero (stream offset {at}{}); \
                     the bundle is damaged",
                        self.where_is(at)
                    ),
                )
                .with_digest(digest)
                .with_entry(name),
            );
        }
    }

    /// `, file offset N` (and the part of a split bundle) for stream offset `at`, as far
    /// as the storage tells: exact for plain tar, the frame's start for zstd.
    pub(super) fn where_is(&self, at: u64) -> String {
        let file_at = match &self.storage {
            Storage::Plain => at,
            Storage::Zstd { frames, .. } => {
                let i = frames.partition_point(|f| f.d_off.saturating_add(f.d_size) <= at);
                match frames.get(i) {
                    Some(f) if f.d_size != u64::MAX => f.c_off,
                    _ => return String::new(),
                }
            }
        };
        let exact = if matches!(self.storage, Storage::Plain) {
            "file offset"
        } else {
            "in the zstd frame at file offset"
        };
        match self.loc {
            Location::Parts(set) => {
                let i = set.part_at(file_at);
                format!(
                    ", {exact} {file_at}: part {} of {} ({}) at offset {}",
                    i + 1,
                    set.count(),
                    set.index().parts[i].name,
                    file_at - set.parts[i].start
                )
            }
            Location::File(_) => format!(", {exact} {file_at}"),
        }
    }

    /// Where the entries stop, the stream must hold the two zero end-of-archive blocks
    /// and nothing but zero blocks after them (read to the end, so that the last zstd
    /// frame is decoded to its checksum).
    fn check_end(&mut self, at: u64) {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        let mut nonzero = None;
        let res = self.open(at).and_then(|mut v| {
            loop {
                let n = match v.read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                if nonzero.is_none()
                    && let Some(i) = buf[..n].iter().position(|b| *b != 0)
                {
                    nonzero = Some(at + total + i as u64);
                }
                total += n as u64;
                if total > MAX_END_BYTES {
                    return Ok(());
                }
            }
        });
        if let Err(e) = res {
            self.stream_error(&e, at + total, None, None);
            return;
        }
        if let Some(bad) = nonzero {
            self.findings.push(Finding::new(
                FindingKind::Damaged,
                format!(
                    "the tar end-of-archive blocks at stream offset {at} are not all zero \
                     (stream offset {bad}{}); the bundle is damaged",
                    self.where_is(bad)
                ),
            ));
        } else if total < 1024 {
            self.findings.push(Finding::new(
                FindingKind::Truncated,
                format!(
                    "the bundle ends at stream offset {} without the two tar end-of-archive blocks",
                    at + total
                ),
            ));
        } else if total > MAX_END_BYTES || !total.is_multiple_of(512) {
            self.findings.push(Finding::new(
                FindingKind::Damaged,
                format!(
                    "{} bytes follow the last entry at stream offset {at}; a bundle ends with \
                     two 512-byte zero blocks (or a few more)",
                    if total > MAX_END_BYTES {
                        format!("more than {MAX_END_BYTES}")
                    } else {
                        total.to_string()
                    }
                ),
            ));
        }
    }

    /// Finds where entries can be read again after a damaged header at `at`.
    pub(super) fn resync(&mut self, at: u64) -> Option<u64> {
        match &self.storage {
            Storage::Zstd {
                frames,
                seekable: true,
                ..
            } => {
                let candidates: Vec<u64> =
                    frames.iter().map(|f| f.d_off).filter(|&d| d > at).collect();
                candidates.into_iter().find(|&c| {
                    let mut block = [0u8; 512];
                    self.open(c)
                        .and_then(|mut v| v.read_exact(&mut block))
                        .is_ok()
                        && plausible_header(&block)
                })
            }
            Storage::Zstd { .. } => None,
            Storage::Plain => {
                let mut off = at + 512;
                let mut view = self.open(off).ok()?;
                let mut block = [0u8; 512];
                loop {
                    match view.read_exact(&mut block) {
                        Ok(()) if plausible_header(&block) => return Some(off),
                        Ok(()) => off += 512,
                        Err(e) if is_part_error(&e) => {
                            // Go on at the first block after the unreadable part.
                            let Location::Parts(set) = self.loc else {
                                return None;
                            };
                            let p = &set.parts[set.part_at(off)];
                            let next = (p.start + p.size).div_ceil(512) * 512;
                            if next >= set.total_size() {
                                return None;
                            }
                            off = next;
                            view = self.open(off).ok()?;
                        }
                        Err(_) => return None,
                    }
                }
            }
        }
    }
}

/// Whether a 512-byte block is a valid tar header for an entry a bundle may hold.
fn plausible_header(block: &[u8; 512]) -> bool {
    let mut padded = block.to_vec();
    padded.resize(1024, 0);
    let mut archive = tar::Archive::new(&padded[..]);
    let Ok(mut entries) = archive.entries() else {
        return false;
    };
    match entries.next() {
        Some(Ok(e)) => {
            matches!(check_entry(&e), EntryCheck::Ok { ref name, .. } if is_expected_name(name))
        }
        _ => false,
    }
}
