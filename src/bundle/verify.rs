//! `airlock verify`: check a whole bundle offline and list every problem.
//!
//! One sequential pass over the tar stream rehashes every `blobs/sha256/*` entry while it
//! streams and keeps the small JSON entries (layout files, manifests, indexes, configs,
//! each under a size cap) in memory. The image graph is checked afterwards, from the
//! TOC's images and from `index.json`, so the verdict does not depend on entry order.
//!
//! Verification never stops at the first problem: an operator on the far side of an air
//! gap cannot fetch a blob again, so they need the full list, each finding naming the
//! blob, the entry and the images (TOC names) it breaks. A corrupt zstd frame is
//! reported and, when the seek table is readable, the pass resumes at the next entry;
//! a damaged tar header is skipped by resynchronising on the next frame (zstd) or the
//! next valid header block (plain tar). Only a file that cannot be opened at all is an
//! `Err`; everything else is a [`Finding`].
//!
//! The pass is strict enough that a single flipped bit anywhere in a bundle is reported
//! (`tests/bitflips.rs` proves it): entries are read sequentially, never seeking, so every
//! zstd frame is decoded to its end and its content checksum checked, and entry padding
//! goes by a `Watch` that checks it is zero; the end-of-archive blocks must be zero;
//! tar checksum fields must be in a canonical form; every frame the seek table lists must
//! start where it says with a header matching it ([`check_frame_header`]); the TOC's own
//! checksum must match; and `index.json`, `manifest.json` and `repositories`, which
//! nothing hashes in a plain tar, must agree with the TOC (`check_docs`).
//!
//! A split bundle is verified from its first part, its parts index or its base name:
//! every part must be there with its size (checked first), the pass reads the parts as
//! one stream, and each part's sha256 is computed from what the pass reads
//! ([`PartHashes`]) and compared with the index at the end, which names a part that was
//! swapped with another (its content is another part's) or that comes from another
//! bundle (its content is no part's). Stray parts the index does not list are reported.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::reader::{
    EntryCheck, Probe, ReadSeek, Storage, check_entry, open_stream, parse_toc, probe,
};
use super::seekable::{
    FrameError, MAX_FRAME_HEADER, TableProblem, check_frame_header, damaged_footer,
};
use super::source::{BundleFile, Cursor, PartHashes};
use super::split::{Location, PartProblem, locate};
use super::toc::{TOC_NAME, Toc, checksum_problem};
use super::{BundleError, MAX_METADATA_SIZE, MAX_TOC_SIZE, blob_name_digest, is_expected_name};
use crate::digest::{Digest, Hasher};
use crate::oci::{
    self, Descriptor, ImageConfig, ImageIndex, ImageManifest, MAX_CONFIG_SIZE, media,
};
use crate::progress::{Progress, human_bytes};
use crate::reference::Reference;

/// What kind of problem a [`Finding`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A blob's content does not hash to its name.
    DigestMismatch,
    /// A blob's size differs from what the TOC or a descriptor says.
    SizeMismatch,
    /// A blob the TOC or the image graph needs is not in the bundle.
    MissingBlob,
    /// A required file entry (`oci-layout`, `airlock.json`, `index.json`, `manifest.json`) is missing.
    MissingEntry,
    /// An entry or a manifest/index/config blob is not the JSON it must be.
    InvalidJson,
    /// A `manifest.json` (docker load) entry is inconsistent.
    DockerManifest,
    /// A TOC image's manifest or index is not in the bundle.
    MissingImage,
    /// `airlock.json` disagrees with the bundle's content.
    TocMismatch,
    /// An entry a bundle never holds.
    UnexpectedEntry,
    /// An entry name that appears twice.
    DuplicateEntry,
    /// An absolute path, `..`, a link or a device.
    HostileEntry,
    /// The file ends early.
    Truncated,
    /// A zstd frame cannot be decoded.
    CorruptFrame,
    /// The zstd seek table is present but inconsistent.
    SeekTable,
    /// A tar header is damaged, or the file cannot be read at some offset.
    Unreadable,
    /// Bytes a reader skips but that airlock always writes the same way are not: tar
    /// padding or end-of-archive blocks that are not zero, a tar checksum field or a zstd
    /// frame header that is not in its canonical form. A sign of damage (or tampering).
    Damaged,
    /// A part of a split bundle is missing.
    MissingPart,
    /// A part of a split bundle is shorter (or longer) than its parts index says.
    PartSize,
    /// A part of a split bundle holds another part's content (parts swapped or renamed).
    MisplacedPart,
    /// A part of a split bundle holds content of no part of it (another bundle's part).
    ForeignPart,
    /// A file named like a part that the parts index does not list.
    ExtraPart,
    /// `verify --base`: a blob a differential bundle leaves out is not in the given base.
    MissingFromBase,
}

impl FindingKind {
    fn label(self) -> &'static str {
        match self {
            FindingKind::DigestMismatch => "digest mismatch",
            FindingKind::SizeMismatch => "size mismatch",
            FindingKind::MissingBlob => "missing blob",
            FindingKind::MissingEntry => "missing entry",
            FindingKind::InvalidJson => "invalid JSON",
            FindingKind::DockerManifest => "manifest.json",
            FindingKind::MissingImage => "missing image",
            FindingKind::TocMismatch => "airlock.json",
            FindingKind::UnexpectedEntry => "unexpected entry",
            FindingKind::DuplicateEntry => "duplicate entry",
            FindingKind::HostileEntry => "hostile entry",
            FindingKind::Truncated => "truncated",
            FindingKind::CorruptFrame => "corrupt zstd frame",
            FindingKind::SeekTable => "seek table",
            FindingKind::Unreadable => "unreadable",
            FindingKind::Damaged => "damaged",
            FindingKind::MissingPart => "missing part",
            FindingKind::PartSize => "part size",
            FindingKind::MisplacedPart => "misplaced part",
            FindingKind::ForeignPart => "foreign part",
            FindingKind::ExtraPart => "extra part",
            FindingKind::MissingFromBase => "not in base",
        }
    }
}

/// One problem found in a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// The blob concerned, if any.
    pub digest: Option<Digest>,
    /// The tar entry concerned, if any.
    pub entry: Option<String>,
    pub message: String,
    /// The TOC image names this problem breaks.
    pub images: Vec<String>,
}

/// The outcome of [`verify`]; printed as JSON by `verify --json` exactly as serialized.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyReport {
    pub bundle: String,
    /// True when there are no findings.
    pub ok: bool,
    /// Images in the TOC (or in `index.json` when the TOC is unreadable).
    pub images: usize,
    /// Blob entries read.
    pub blobs: usize,
    /// Blob bytes read and hashed.
    pub bytes: u64,
    /// Number of parts of a split bundle (absent for a bundle in one file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<usize>,
    /// For a differential bundle: what it was made against and what it leaves out
    /// (those blobs are not missing; `verify --base FILE` checks them against the base).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub differential: Option<String>,
    pub findings: Vec<Finding>,
}

impl VerifyReport {
    /// One line per finding, then a summary line.
    pub fn print_human(&self, w: &mut dyn Write) -> io::Result<()> {
        for f in &self.findings {
            write!(w, "{}: {}", f.kind.label(), f.message)?;
            if !f.images.is_empty() {
                write!(w, " (breaks {})", f.images.join(", "))?;
            }
            writeln!(w)?;
        }
        if let Some(d) = &self.differential {
            writeln!(w, "differential bundle: {d}")?;
        }
        if self.ok {
            writeln!(
                w,
                "OK: {} images, {} blobs, {} verified{}",
                self.images,
                self.blobs,
                human_bytes(self.bytes),
                self.parts
                    .map(|n| format!(", in {n} part{}", if n == 1 { "" } else { "s" }))
                    .unwrap_or_default()
            )
        } else {
            let n = self.findings.len();
            writeln!(
                w,
                "FAILED: {n} problem{} in {} ({} images, {} blobs, {} checked)",
                if n == 1 { "" } else { "s" },
                self.bundle,
                self.images,
                self.blobs,
                human_bytes(self.bytes)
            )
        }
    }
}

/// Verifies the bundle at `path`; `Err` only when the file cannot be read at all.
pub fn verify(path: &Path, progress: &dyn Progress) -> Result<VerifyReport, BundleError> {
    let loc = locate(path)?;
    let (part_findings, flagged, hashes) = match &loc {
        Location::Parts(set) => {
            let problems = set.check(false);
            // Parts already reported (missing, wrong size) are not compared by hash.
            let flagged: HashSet<usize> = problems.iter().filter_map(PartProblem::part).collect();
            let found: Vec<Finding> = problems.into_iter().map(part_finding).collect();
            (found, flagged, Some(PartHashes::new(set.count())))
        }
        Location::File(_) => (Vec::new(), HashSet::new(), None),
    };
    let probe = match probe(&loc, path) {
        Ok(p) => p,
        Err(e) if !part_findings.is_empty() => {
            // The parts are too damaged to read at all; the part findings say why.
            let mut findings = part_findings;
            findings.push(Finding {
                kind: FindingKind::Unreadable,
                digest: None,
                entry: None,
                message: format!("{}, so nothing in it was checked", error_chain(&e)),
                images: Vec::new(),
            });
            return Ok(VerifyReport {
                bundle: path.display().to_string(),
                ok: false,
                images: 0,
                blobs: 0,
                bytes: 0,
                parts: loc_parts(&loc),
                differential: None,
                findings,
            });
        }
        Err(e) => return Err(e),
    };
    let mut pass = Pass::new(path, &loc, hashes.clone(), &probe, progress);
    pass.findings = part_findings;
    if let Some(TableProblem::Invalid(why)) = &probe.table_problem {
        pass.find(
            FindingKind::SeekTable,
            None,
            None,
            format!("{why}; reading the whole file sequentially instead"),
        );
    }
    pass.check_frames();
    let mut start = 0u64;
    loop {
        // Every restart moves forward (a resync finds a header after `at`), so the
        // loop ends on any input.
        let scan = match pass.scan(start) {
            Scan::Resume(at) if at <= start => Scan::Lost(at, None),
            scan => scan,
        };
        match scan {
            Scan::End => break,
            Scan::Resume(at) => start = at,
            Scan::Lost(at, reason) => {
                let next = pass.resync(at);
                let rest = match next {
                    Some(next) => format!(
                        "stream offsets {at}..{next} were skipped and the entries there were not checked"
                    ),
                    None => format!(
                        "nothing readable follows stream offset {at}, so the rest of the bundle was not checked"
                    ),
                };
                let message = match reason {
                    Some(r) => format!("{r}; {rest}"),
                    None => rest,
                };
                pass.find(FindingKind::Unreadable, None, None, message);
                match next {
                    Some(next) => start = next,
                    None => break,
                }
            }
        }
    }
    if !pass.phase_started {
        pass.start_phase();
    }
    if let (Location::Parts(set), Some(hashes)) = (&loc, &hashes) {
        for (i, got) in hashes.finish(set).into_iter().enumerate() {
            let Some(got) = got else { continue };
            let listed = &set.index().parts[i];
            if flagged.contains(&i) || got.hex() == listed.sha256 {
                continue;
            }
            let holds = set
                .index()
                .parts
                .iter()
                .position(|p| p.sha256 == got.hex() && p.size == listed.size);
            pass.findings.push(part_finding(set.mismatch(i, holds)));
        }
    }
    progress.finish_phase();
    Ok(pass.into_report())
}

/// Whether an io error is a problem with a part of a split bundle.
fn is_part_error(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<PartProblem>())
}

/// The number of parts of a split bundle.
fn loc_parts(loc: &Location) -> Option<usize> {
    match loc {
        Location::Parts(set) => Some(set.count()),
        Location::File(_) => None,
    }
}

/// An error and its causes, joined by `: `.
fn error_chain(e: &dyn std::error::Error) -> String {
    std::iter::successors(Some(e), |e| e.source())
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

/// The finding for a problem with the parts of a split bundle.
fn part_finding(problem: PartProblem) -> Finding {
    let kind = match &problem {
        PartProblem::Missing { .. } => FindingKind::MissingPart,
        PartProblem::Unreadable { .. } => FindingKind::Unreadable,
        PartProblem::Size { .. } => FindingKind::PartSize,
        PartProblem::Misplaced { .. } => FindingKind::MisplacedPart,
        PartProblem::Foreign { .. } => FindingKind::ForeignPart,
        PartProblem::Extra { .. } => FindingKind::ExtraPart,
    };
    Finding {
        kind,
        digest: None,
        entry: None,
        message: problem.to_string(),
        images: Vec::new(),
    }
}

enum Scan {
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

/// What the pass learned about a blob entry.
struct BlobSeen {
    size: u64,
}

/// What the pass saw of the bundle.
struct Seen {
    names: HashSet<String>,
    files: HashSet<String>,
    blobs: HashMap<Digest, BlobSeen>,
    /// Manifest, index and config bytes (and the layout's own JSON files by name).
    json: HashMap<Digest, Vec<u8>>,
    meta: HashMap<String, Vec<u8>>,
}

struct Pass<'a> {
    path: &'a Path,
    loc: &'a Location,
    hashes: Option<Arc<PartHashes>>,
    storage: Storage,
    seekable: bool,
    file_size: u64,
    progress: &'a dyn Progress,
    phase_started: bool,
    seen: Seen,
    toc: Option<Toc>,
    toc_types: HashMap<Digest, String>,
    json_budget: u64,
    bytes: u64,
    findings: Vec<Finding>,
    buf: Vec<u8>,
    /// Set when a read error inside an entry leaves the rest of the stream readable
    /// from the next header on (see [`Scan::Resume`]).
    resume: bool,
}

const JSON_BUDGET: u64 = 1024 * 1024 * 1024;
/// How deep indexes may nest under an image before the walk stops.
const MAX_NESTING: usize = 16;
/// The most zero bytes accepted after the last entry (tar pads to its record size,
/// 10 KiB for GNU tar; airlock writes 1 KiB).
const MAX_END_BYTES: u64 = 1024 * 1024;
const READ_BUFFER: usize = 1024 * 1024;

impl<'a> Pass<'a> {
    fn new(
        path: &'a Path,
        loc: &'a Location,
        hashes: Option<Arc<PartHashes>>,
        probe: &Probe,
        progress: &'a dyn Progress,
    ) -> Pass<'a> {
        Pass {
            path,
            loc,
            hashes,
            storage: probe.storage.clone(),
            seekable: !matches!(
                probe.storage,
                Storage::Zstd {
                    seekable: false,
                    ..
                }
            ),
            file_size: probe.file_size,
            progress,
            phase_started: false,
            seen: Seen {
                names: HashSet::new(),
                files: HashSet::new(),
                blobs: HashMap::new(),
                json: HashMap::new(),
                meta: HashMap::new(),
            },
            toc: None,
            toc_types: HashMap::new(),
            json_budget: JSON_BUDGET,
            bytes: 0,
            findings: Vec::new(),
            buf: vec![0u8; READ_BUFFER],
            resume: false,
        }
    }

    fn find(
        &mut self,
        kind: FindingKind,
        digest: Option<Digest>,
        entry: Option<String>,
        message: String,
    ) {
        self.findings.push(Finding {
            kind,
            digest,
            entry,
            message,
            images: Vec::new(),
        });
    }

    fn start_phase(&mut self) {
        self.phase_started = true;
        let (bytes, items) = match &self.toc {
            Some(t) => (t.blobs.iter().map(|b| b.size).sum(), t.blobs.len() as u64),
            None => (self.file_size, 0),
        };
        self.progress.phase("verifying", bytes, items);
    }

    fn open(&self, at: u64) -> io::Result<OffsetView<Box<dyn ReadSeek>>> {
        let mut inner = open_stream(self.loc, &self.storage, READ_BUFFER, self.hashes.as_ref())?;
        inner.seek(SeekFrom::Start(at))?;
        Ok(OffsetView { inner, base: at })
    }

    /// Reports an error reading the stream; returns whether the pass must stop.
    fn stream_error(
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
        if let Some(fe) = FrameError::from_io(e) {
            if fe.truncated {
                let file_size = self.file_size;
                self.find(
                    FindingKind::Truncated,
                    digest,
                    entry,
                    format!(
                        "the bundle ends early: the zstd data stops at file offset {file_size}, \
                         stream offset {}{inside}",
                        fe.at
                    ),
                );
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
            self.find(
                FindingKind::CorruptFrame,
                digest,
                entry,
                format!(
                    "zstd frame {} at file offset {}{part} cannot be decoded ({cause}){inside}",
                    fe.frame, fe.c_off
                ),
            );
            self.resume = self.seekable;
            return !self.seekable;
        }
        if e.kind() == io::ErrorKind::UnexpectedEof {
            self.find(
                FindingKind::Truncated,
                digest,
                entry,
                format!("the bundle ends early, at stream offset {at}{inside}"),
            );
            return true;
        }
        if is_part_error(e) {
            // A missing or short part of a split bundle: the entries after it may be
            // readable (the part itself is reported on its own).
            self.find(
                FindingKind::Unreadable,
                digest,
                entry,
                format!("cannot read stream offset {at}{inside}: {e}"),
            );
            self.resume = true;
            return false;
        }
        self.find(
            FindingKind::Unreadable,
            digest,
            entry,
            format!("cannot read stream offset {at}{inside}: {e}"),
        );
        true
    }

    /// Reads entries from stream offset `start` until the end or a damaged header.
    fn scan(&mut self, start: u64) -> Scan {
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
                        self.find(
                            FindingKind::Truncated,
                            None,
                            None,
                            format!("the bundle ends early, inside the tar header at stream offset {next_header}"),
                        );
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
                self.find(
                    FindingKind::Damaged,
                    blob_name_digest(&label),
                    Some(label.clone()),
                    format!(
                        "the tar header of entry `{label}` at stream offset {header_at} is damaged: {why}"
                    ),
                );
            }
            let (name, is_dir) = match check_entry(&entry) {
                EntryCheck::Ok { name, is_dir } => (name, is_dir),
                EntryCheck::Ignore => continue,
                EntryCheck::Hostile { name, reason } => {
                    self.find(
                        FindingKind::HostileEntry,
                        None,
                        Some(name.clone()),
                        format!("entry `{name}` is refused: {reason}"),
                    );
                    continue;
                }
            };
            if !self.seen.names.insert(name.clone()) {
                self.find(
                    FindingKind::DuplicateEntry,
                    blob_name_digest(&name),
                    Some(name.clone()),
                    format!("entry `{name}` appears more than once"),
                );
                continue;
            }
            if !is_expected_name(&name) {
                self.find(
                    FindingKind::UnexpectedEntry,
                    None,
                    Some(name.clone()),
                    format!("entry `{name}` does not belong in an airlock bundle"),
                );
                continue;
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

    /// Checks that the seek table describes the frames that are there: a zstd data frame
    /// header at each offset, recording the decompressed size the table gives (one
    /// small read per frame). The sequential scan decodes the frames without the table,
    /// so a table entry damaged in a way that keeps the sizes' sum would otherwise go
    /// unnoticed, and send every random-access read (`push`, `load`) to the wrong place.
    /// A file whose seek table lost its magic number is reported here too.
    fn check_frames(&mut self) {
        let Storage::Zstd {
            frames, seekable, ..
        } = &self.storage
        else {
            return;
        };
        let file = match BundleFile::open(self.loc, None) {
            Ok(f) => f,
            Err(_) => return, // the scan reports it
        };
        if !seekable {
            let mut cursor = Cursor::new(Arc::new(file));
            if let Ok(Some(why)) = damaged_footer(&mut cursor, self.file_size) {
                self.find(
                    FindingKind::SeekTable,
                    None,
                    None,
                    format!("{why}; the bundle is damaged"),
                );
            }
            return;
        }
        let frames = Arc::clone(frames);
        let mut reported = 0;
        for (i, frame) in frames.iter().enumerate() {
            let mut head = [0u8; MAX_FRAME_HEADER];
            let mut got = 0;
            while got < head.len() {
                match file.read_at(&mut head[got..], frame.c_off + got as u64) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            if let Err(why) = check_frame_header(&head[..got], frame) {
                reported += 1;
                if reported <= 10 {
                    let at = self.where_is(frame.d_off);
                    self.find(
                        FindingKind::SeekTable,
                        None,
                        None,
                        format!(
                            "zstd frame {i} (stream offset {}{at}) does not match the seek table: {why}",
                            frame.d_off
                        ),
                    );
                }
            }
        }
        if reported > 10 {
            self.find(
                FindingKind::SeekTable,
                None,
                None,
                format!(
                    "{} more zstd frames do not match the seek table",
                    reported - 10
                ),
            );
        }
    }

    /// Reports non-zero padding the tar reader went through after entry `padded`.
    fn check_padding(
        &mut self,
        zeros: &RefCell<ZeroWatch>,
        padded: Option<(String, Option<Digest>)>,
    ) {
        let bad = zeros.borrow_mut().take();
        if let (Some((name, digest)), Some(at)) = (padded, bad) {
            self.find(
                FindingKind::Damaged,
                digest,
                Some(name.clone()),
                format!(
                    "the padding after entry `{name}` is not zero (stream offset {at}{}); \
                     the bundle is damaged",
                    self.where_is(at)
                ),
            );
        }
    }

    /// `, file offset N` (and the part of a split bundle) for stream offset `at`, as far
    /// as the storage tells: exact for plain tar, the frame's start for zstd.
    fn where_is(&self, at: u64) -> String {
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
            self.find(
                FindingKind::Damaged,
                None,
                None,
                format!(
                    "the tar end-of-archive blocks at stream offset {at} are not all zero \
                     (stream offset {bad}{}); the bundle is damaged",
                    self.where_is(bad)
                ),
            );
        } else if total < 1024 {
            self.find(
                FindingKind::Truncated,
                None,
                None,
                format!(
                    "the bundle ends at stream offset {} without the two tar end-of-archive blocks",
                    at + total
                ),
            );
        } else if total > MAX_END_BYTES || !total.is_multiple_of(512) {
            self.find(
                FindingKind::Damaged,
                None,
                None,
                format!(
                    "{} bytes follow the last entry at stream offset {at}; a bundle ends with \
                     two 512-byte zero blocks (or a few more)",
                    if total > MAX_END_BYTES {
                        format!("more than {MAX_END_BYTES}")
                    } else {
                        total.to_string()
                    }
                ),
            );
        }
    }

    /// Finds where entries can be read again after a damaged header at `at`.
    fn resync(&mut self, at: u64) -> Option<u64> {
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

    /// Rehashes a blob entry; keeps it in memory when it looks like a small JSON document.
    fn check_blob(
        &mut self,
        entry: &mut dyn Read,
        name: &str,
        digest: Digest,
        size: u64,
        data_at: u64,
    ) -> bool {
        if !self.phase_started {
            self.start_phase();
        }
        let item = self.progress.item(digest.short(), size);
        let is_layer = self
            .toc_types
            .get(&digest)
            .is_some_and(|mt| is_layer_type(mt));
        let mut keep = if !is_layer && size <= MAX_CONFIG_SIZE && size <= self.json_budget {
            Some(Vec::new())
        } else {
            None
        };
        let mut hasher = Hasher::new();
        let mut buf = std::mem::take(&mut self.buf);
        let mut stop = false;
        let mut failed = false;
        loop {
            match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if hasher.is_empty() && keep.is_some() && !looks_like_json(&buf[..n]) {
                        keep = None;
                    }
                    hasher.update(&buf[..n]);
                    item.advance(n as u64);
                    if let Some(k) = keep.as_mut() {
                        k.extend_from_slice(&buf[..n]);
                    }
                }
                Err(e) => {
                    stop = self.stream_error(
                        &e,
                        data_at + hasher.len(),
                        Some(digest.clone()),
                        Some(name.to_string()),
                    );
                    failed = true;
                    break;
                }
            }
        }
        self.buf = buf;
        let (actual, got) = hasher.finish();
        self.bytes += got;
        self.seen.blobs.insert(digest.clone(), BlobSeen { size });
        if failed {
            return stop;
        }
        if got < size {
            self.find(
                FindingKind::Truncated,
                Some(digest),
                Some(name.to_string()),
                format!(
                    "the bundle ends early, at stream offset {}, {got} bytes into the {size} of entry `{name}`",
                    data_at + got
                ),
            );
            return true;
        }
        if actual != digest {
            self.find(
                FindingKind::DigestMismatch,
                Some(digest.clone()),
                Some(name.to_string()),
                format!(
                    "blob {digest} is damaged: its content hashes to {actual} (entry `{name}`, \
                     {size} bytes at stream offset {data_at}{})",
                    self.where_is(data_at)
                ),
            );
        }
        if let Some(bytes) = keep {
            self.json_budget -= bytes.len() as u64;
            self.seen.json.insert(digest, bytes);
        }
        item.done();
        false
    }

    /// Keeps a top-level file entry (`index.json`, …) in memory, within its size cap.
    fn keep_metadata(&mut self, entry: &mut dyn Read, name: &str, size: u64, data_at: u64) -> bool {
        let limit = if name == TOC_NAME {
            MAX_TOC_SIZE
        } else {
            MAX_METADATA_SIZE
        };
        if size > limit {
            self.find(
                FindingKind::InvalidJson,
                None,
                Some(name.to_string()),
                format!("entry `{name}` is {size} bytes, more than the {limit} allowed"),
            );
            return false;
        }
        let mut bytes = Vec::with_capacity(size as usize);
        if let Err(e) = entry.read_to_end(&mut bytes) {
            return self.stream_error(
                &e,
                data_at + bytes.len() as u64,
                None,
                Some(name.to_string()),
            );
        }
        if (bytes.len() as u64) < size {
            self.find(
                FindingKind::Truncated,
                None,
                Some(name.to_string()),
                format!(
                    "the bundle ends early, inside entry `{name}` at stream offset {}",
                    data_at + bytes.len() as u64
                ),
            );
            return true;
        }
        if name == TOC_NAME {
            if let Some(why) = checksum_problem(&bytes) {
                self.find(
                    FindingKind::TocMismatch,
                    None,
                    Some(name.to_string()),
                    format!("the table of contents (airlock.json) is damaged: {why}"),
                );
            }
            match parse_toc(self.path, &bytes) {
                Ok(toc) => {
                    self.toc_types = toc
                        .blobs
                        .iter()
                        .map(|b| (b.digest.clone(), b.media_type.clone()))
                        .collect();
                    self.toc = Some(toc);
                }
                Err(e) => {
                    let why =
                        std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
                            .map(|e| e.to_string())
                            .collect::<Vec<_>>()
                            .join(": ");
                    self.find(FindingKind::InvalidJson, None, Some(name.to_string()), why);
                }
            }
        }
        self.seen.meta.insert(name.to_string(), bytes);
        false
    }

    fn into_report(mut self) -> VerifyReport {
        let graph = self.check_graph();
        for f in &mut self.findings {
            if let (true, Some(d)) = (f.images.is_empty(), &f.digest)
                && let Some(names) = graph.get(d)
            {
                f.images = names.iter().cloned().collect();
            }
        }
        let images = match &self.toc {
            Some(t) => t.images.len(),
            None => self
                .seen
                .meta
                .get("index.json")
                .and_then(|b| serde_json::from_slice::<ImageIndex>(b).ok())
                .map_or(0, |i| i.manifests.len()),
        };
        VerifyReport {
            bundle: self.path.display().to_string(),
            ok: self.findings.is_empty(),
            images,
            blobs: self.seen.blobs.len(),
            bytes: self.bytes,
            parts: loc_parts(self.loc),
            differential: self.toc.as_ref().and_then(|t| t.base.as_ref()).map(|b| {
                format!(
                    "made against {} {}{}; {} blob(s) ({}) left out, not checked here (check them with --base FILE)",
                    b.kind,
                    b.file,
                    b.created.as_ref().map(|c| format!(" ({c})")).unwrap_or_default(),
                    b.omitted.len(),
                    human_bytes(b.omitted_bytes())
                )
            }),
            findings: self.findings,
        }
    }

    /// Checks layout files, TOC, `index.json`, the image graph and `manifest.json`;
    /// returns, for every blob reached, the image names that reach it.
    fn check_graph(&mut self) -> HashMap<Digest, BTreeSet<String>> {
        let docs = match &self.toc {
            Some(toc) => check_docs(toc, &self.seen),
            None => Vec::new(),
        };
        let mut graph = Graph {
            seen: &self.seen,
            reach: HashMap::new(),
            problems: Vec::new(),
            missing: BTreeMap::new(),
            checked: HashSet::new(),
            children: HashMap::new(),
            described: HashMap::new(),
        };
        let mut findings = Vec::new();
        let mut find = |kind, digest: Option<Digest>, entry: Option<&str>, message: String| {
            findings.push(Finding {
                kind,
                digest,
                entry: entry.map(str::to_string),
                message,
                images: Vec::new(),
            })
        };

        // oci-layout
        match self.seen.meta.get("oci-layout") {
            None => find(
                FindingKind::MissingEntry,
                None,
                Some("oci-layout"),
                "entry `oci-layout` is missing, so OCI tools will not read the bundle".to_string(),
            ),
            Some(b) => {
                #[derive(Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct Layout {
                    image_layout_version: String,
                }
                match serde_json::from_slice::<Layout>(b) {
                    Ok(l) if l.image_layout_version == "1.0.0" => {}
                    _ => find(
                        FindingKind::InvalidJson,
                        None,
                        Some("oci-layout"),
                        "entry `oci-layout` is not {\"imageLayoutVersion\":\"1.0.0\"}".to_string(),
                    ),
                }
            }
        }

        // TOC
        let mut roots_missing = HashSet::new();
        if !self.seen.meta.contains_key(TOC_NAME) {
            find(
                FindingKind::MissingEntry,
                None,
                Some(TOC_NAME),
                "entry `airlock.json` (the table of contents) is missing".to_string(),
            );
        }
        if let Some(toc) = &self.toc {
            for img in &toc.images {
                graph.walk_root(&img.name, &img.digest, &img.media_type, "airlock.json");
                if !self.seen.blobs.contains_key(&img.digest) {
                    roots_missing.insert(img.digest.clone());
                    find(
                        FindingKind::MissingImage,
                        Some(img.digest.clone()),
                        None,
                        format!(
                            "image {} points to {}, which is not in the bundle",
                            img.name, img.digest
                        ),
                    );
                }
            }
            let listed: HashSet<&Digest> = toc.blobs.iter().map(|b| &b.digest).collect();
            for b in &toc.blobs {
                match self.seen.blobs.get(&b.digest) {
                    None => graph.need(&b.digest, &b.media_type, "airlock.json"),
                    Some(s) if s.size != b.size => find(
                        FindingKind::SizeMismatch,
                        Some(b.digest.clone()),
                        Some(&b.digest.blob_path()),
                        format!(
                            "blob {} is {} bytes but airlock.json says {}",
                            b.digest, s.size, b.size
                        ),
                    ),
                    Some(_) => {}
                }
            }
            let mut extra: Vec<&Digest> = self
                .seen
                .blobs
                .keys()
                .filter(|d| !listed.contains(d))
                .collect();
            extra.sort();
            for d in extra {
                find(
                    FindingKind::TocMismatch,
                    Some(d.clone()),
                    Some(&d.blob_path()),
                    format!("blob {d} is in the bundle but not listed in airlock.json"),
                );
            }
        }

        // index.json
        let index = match self.seen.meta.get("index.json") {
            None => {
                find(
                    FindingKind::MissingEntry,
                    None,
                    Some("index.json"),
                    "entry `index.json` is missing, so OCI tools and containerd will not find the images"
                        .to_string(),
                );
                None
            }
            Some(b) => match serde_json::from_slice::<ImageIndex>(b) {
                Ok(i) => Some(i),
                Err(e) => {
                    find(
                        FindingKind::InvalidJson,
                        None,
                        Some("index.json"),
                        format!("entry `index.json` is not a valid OCI index ({e})"),
                    );
                    None
                }
            },
        };
        if let Some(index) = &index {
            for d in &index.manifests {
                let name = d
                    .annotations
                    .as_ref()
                    .and_then(|a| {
                        a.get("io.containerd.image.name")
                            .or_else(|| a.get("org.opencontainers.image.ref.name"))
                    })
                    .cloned()
                    .unwrap_or_else(|| d.digest.to_string());
                graph.edge(&name, "index.json", d, Role::Root);
            }
            if let Some(toc) = &self.toc {
                let in_index: HashSet<&Digest> =
                    index.manifests.iter().map(|d| &d.digest).collect();
                for img in &toc.images {
                    if !in_index.contains(&img.digest) {
                        find(
                            FindingKind::TocMismatch,
                            Some(img.digest.clone()),
                            Some("index.json"),
                            format!(
                                "image {} ({}) has no entry in index.json",
                                img.name, img.digest
                            ),
                        );
                    }
                }
            }
        }

        // manifest.json
        let needs_docker = self
            .toc
            .as_ref()
            .is_some_and(|t| t.images.iter().any(|i| i.docker.is_some()));
        match self.seen.meta.get("manifest.json") {
            None if needs_docker => find(
                FindingKind::MissingEntry,
                None,
                Some("manifest.json"),
                "entry `manifest.json` is missing, so `docker load` will not work".to_string(),
            ),
            None => {}
            Some(b) => match serde_json::from_slice::<Vec<crate::oci::DockerLoadEntry>>(b) {
                Err(e) => find(
                    FindingKind::InvalidJson,
                    None,
                    Some("manifest.json"),
                    format!("entry `manifest.json` is not a docker-save manifest ({e})"),
                ),
                Ok(list) => {
                    for (i, de) in list.iter().enumerate() {
                        let tags = de.repo_tags.clone().unwrap_or_default().join(", ");
                        let what = format!("manifest.json entry {i} ({tags})");
                        for p in std::iter::once(&de.config).chain(&de.layers) {
                            if self.seen.files.contains(p.as_str()) {
                                continue;
                            }
                            if let Some(d) = blob_name_digest(p) {
                                graph.need(&d, "", "manifest.json");
                            } else {
                                find(
                                    FindingKind::DockerManifest,
                                    blob_name_digest(p),
                                    Some("manifest.json"),
                                    format!("{what} names `{p}`, which is not in the bundle"),
                                );
                            }
                        }
                        let config = blob_name_digest(&de.config)
                            .and_then(|d| self.seen.json.get(&d))
                            .and_then(|b| serde_json::from_slice::<ImageConfig>(b).ok());
                        match config {
                            Some(c) => {
                                let diff_ids = c.rootfs.map_or(0, |r| r.diff_ids.len());
                                if diff_ids != de.layers.len() {
                                    find(
                                        FindingKind::DockerManifest,
                                        blob_name_digest(&de.config),
                                        Some("manifest.json"),
                                        format!(
                                            "{what} lists {} layers but its config has {diff_ids} diff_ids; docker load would fail",
                                            de.layers.len()
                                        ),
                                    );
                                }
                            }
                            None if self.seen.files.contains(de.config.as_str()) => find(
                                FindingKind::DockerManifest,
                                blob_name_digest(&de.config),
                                Some("manifest.json"),
                                format!(
                                    "{what}: config `{}` is not a readable image config",
                                    de.config
                                ),
                            ),
                            None => {}
                        }
                    }
                }
            },
        }

        // A missing image root is reported once, as MissingImage.
        graph.missing.retain(|d, _| !roots_missing.contains(d));
        // A differential bundle leaves out configs and layers its base has (the TOC's
        // `base.omitted`); only `manifest.json` must never name one.
        if let Some(base) = self.toc.as_ref().and_then(|t| t.base.as_ref()) {
            let omitted: HashSet<&Digest> = base.omitted.iter().map(|o| &o.digest).collect();
            graph.missing.retain(|d, (_, by)| {
                !omitted.contains(d) || by.iter().any(|p| p == "manifest.json")
            });
        }
        let Graph {
            reach,
            mut problems,
            missing,
            described,
            ..
        } = graph;
        for (digest, (types, first)) in described {
            let Some(toc_type) = self.toc_types.get(&digest) else {
                continue;
            };
            if !types.contains(toc_type) {
                let named: Vec<&str> = types.iter().map(String::as_str).collect();
                problems.push(Finding {
                    kind: FindingKind::TocMismatch,
                    entry: Some(digest.blob_path()),
                    message: format!(
                        "blob {digest} has media type `{toc_type}` in airlock.json but `{}` in {first}",
                        named.join("` or `")
                    ),
                    digest: Some(digest),
                    images: Vec::new(),
                });
            }
        }
        self.findings.extend(findings);
        self.findings.extend(docs);
        self.findings.extend(problems);
        for (digest, (media_type, needed_by)) in missing {
            let what = if media_type.is_empty() {
                String::new()
            } else {
                format!(" ({media_type})")
            };
            self.findings.push(Finding {
                kind: FindingKind::MissingBlob,
                entry: Some(digest.blob_path()),
                message: format!(
                    "blob {digest}{what} is not in the bundle; needed by {}",
                    needed_by.join(", ")
                ),
                digest: Some(digest),
                images: Vec::new(),
            });
        }
        reach
    }
}

/// Checks the layout's own documents against the TOC: `index.json` has exactly the
/// TOC's images, in order, with their digests, media types, sizes, names and tags;
/// `manifest.json` and `repositories` hold exactly the Docker side the TOC describes;
/// and each image's media type is its root blob's. In a plain `.tar` these documents
/// are not hashed anywhere, so this is what catches a damaged byte in them. (The TOC
/// itself carries a checksum.)
fn check_docs(toc: &Toc, seen: &Seen) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut find = |kind, digest: Option<Digest>, entry: &str, message: String| {
        out.push(Finding {
            kind,
            digest,
            entry: Some(entry.to_string()),
            message,
            images: Vec::new(),
        })
    };
    for img in &toc.images {
        let sniffed = seen
            .json
            .get(&img.digest)
            .and_then(|b| oci::sniff_media_type(b));
        if let Some(mt) = sniffed
            && mt != img.media_type
        {
            find(
                FindingKind::TocMismatch,
                Some(img.digest.clone()),
                TOC_NAME,
                format!(
                    "image {} is `{}` in airlock.json but its manifest {} says `{mt}`",
                    img.name, img.media_type, img.digest
                ),
            );
        }
    }
    let refs: Vec<Option<Reference>> = toc
        .images
        .iter()
        .map(|i| Reference::parse(&i.name).ok())
        .collect();
    for (img, r) in toc.images.iter().zip(&refs) {
        if r.is_none() {
            find(
                FindingKind::TocMismatch,
                Some(img.digest.clone()),
                TOC_NAME,
                format!(
                    "image name `{}` in airlock.json is not a valid reference",
                    img.name
                ),
            );
        }
    }

    // index.json
    if let Some(index) = seen
        .meta
        .get("index.json")
        .and_then(|b| serde_json::from_slice::<ImageIndex>(b).ok())
    {
        if index.schema_version != 2 || index.media_type.as_deref() != Some(media::OCI_INDEX) {
            find(
                FindingKind::InvalidJson,
                None,
                "index.json",
                format!(
                    "index.json has schemaVersion {} and mediaType {:?}, not 2 and `{}`",
                    index.schema_version,
                    index.media_type,
                    media::OCI_INDEX
                ),
            );
        }
        if index.manifests.len() != toc.images.len() {
            find(
                FindingKind::TocMismatch,
                None,
                "index.json",
                format!(
                    "index.json lists {} images but airlock.json {}",
                    index.manifests.len(),
                    toc.images.len()
                ),
            );
        }
        for (i, (d, (img, r))) in index
            .manifests
            .iter()
            .zip(toc.images.iter().zip(&refs))
            .enumerate()
        {
            let mut wrong = Vec::new();
            if d.digest != img.digest {
                wrong.push(format!(
                    "digest {} (airlock.json: {})",
                    d.digest, img.digest
                ));
            }
            if d.media_type != img.media_type {
                wrong.push(format!("media type `{}`", d.media_type));
            }
            let ann = d.annotations.clone().unwrap_or_default();
            if ann.get("io.containerd.image.name") != Some(&img.name) {
                wrong.push(format!("name {:?}", ann.get("io.containerd.image.name")));
            }
            if let Some(r) = r
                && ann
                    .get("org.opencontainers.image.ref.name")
                    .map(String::as_str)
                    != r.tag()
            {
                wrong.push(format!(
                    "tag {:?}",
                    ann.get("org.opencontainers.image.ref.name")
                ));
            }
            // The platform is optional (a manifest whose config names none has none), but
            // when present it is the image's.
            if let Some(p) = &d.platform
                && !(media::is_manifest(&img.media_type)
                    && img.platforms.first() == Some(&p.to_string()))
            {
                wrong.push(format!("platform {p} (airlock.json: {:?})", img.platforms));
            }
            if !wrong.is_empty() {
                find(
                    FindingKind::TocMismatch,
                    Some(img.digest.clone()),
                    "index.json",
                    format!(
                        "index.json entry {i} does not match image {} of airlock.json: {}",
                        img.name,
                        wrong.join(", ")
                    ),
                );
            }
        }
    }

    // Unknown keys in index.json: airlock writes none, and a damaged key name would
    // otherwise make an optional field (`platform`, `annotations`) silently disappear.
    if let Some(doc) = seen
        .meta
        .get("index.json")
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
    {
        let mut unknown = Vec::new();
        unknown_keys(&doc, INDEX_KEYS, "", &mut unknown);
        for (i, d) in doc["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = format!("manifests[{i}].");
            unknown_keys(d, DESCRIPTOR_KEYS, &at, &mut unknown);
            unknown_keys(
                &d["platform"],
                PLATFORM_KEYS,
                &format!("{at}platform."),
                &mut unknown,
            );
        }
        if !unknown.is_empty() {
            find(
                FindingKind::InvalidJson,
                None,
                "index.json",
                format!(
                    "index.json has fields airlock never writes ({}); the bundle is damaged",
                    unknown.join(", ")
                ),
            );
        }
    }

    // manifest.json and repositories: the Docker side.
    let mut expected = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (img, r) in toc.images.iter().zip(&refs) {
        let (Some(docker), Some(r)) = (&img.docker, r) else {
            continue;
        };
        let layers = seen
            .json
            .get(&docker.manifest)
            .and_then(|b| serde_json::from_slice::<ImageManifest>(b).ok())
            .map(|m| m.layers.iter().map(|l| l.digest.blob_path()).collect());
        if let Some(tag) = r.tag() {
            repositories
                .entry(r.familiar_name())
                .or_default()
                .insert(tag.to_string(), docker.config.hex().to_string());
        }
        expected.push((
            img,
            crate::oci::DockerLoadEntry {
                config: docker.config.blob_path(),
                repo_tags: r.tag().map(|_| vec![r.familiar()]),
                layers: layers.unwrap_or_default(),
            },
            seen.json.contains_key(&docker.manifest),
        ));
    }
    if let Some(list) = seen
        .meta
        .get("manifest.json")
        .and_then(|b| serde_json::from_slice::<Vec<crate::oci::DockerLoadEntry>>(b).ok())
    {
        if list.len() != expected.len() {
            find(
                FindingKind::DockerManifest,
                None,
                "manifest.json",
                format!(
                    "manifest.json has {} entries but airlock.json describes {}",
                    list.len(),
                    expected.len()
                ),
            );
        }
        for (i, (got, (img, want, know_layers))) in list.iter().zip(&expected).enumerate() {
            let same = got.config == want.config
                && got.repo_tags == want.repo_tags
                && (!know_layers || got.layers == want.layers);
            if !same {
                find(
                    FindingKind::DockerManifest,
                    img.docker.as_ref().map(|d| d.manifest.clone()),
                    "manifest.json",
                    format!(
                        "manifest.json entry {i} ({}) does not match image {} of airlock.json \
                         (config {}, tags {:?})",
                        got.repo_tags.clone().unwrap_or_default().join(", "),
                        img.name,
                        want.config,
                        want.repo_tags
                    ),
                );
            }
        }
    }
    match seen.meta.get("repositories") {
        None => {}
        // Legacy and ignored by modern Docker: every tag it has must be one the TOC
        // gives that config, but it may have fewer.
        Some(b) => match serde_json::from_slice::<BTreeMap<String, BTreeMap<String, String>>>(b) {
            Ok(got)
                if got.iter().all(|(repo, tags)| {
                    tags.iter().all(|(tag, config)| {
                        repositories.get(repo).and_then(|t| t.get(tag)) == Some(config)
                    })
                }) => {}
            Ok(_) => find(
                FindingKind::DockerManifest,
                None,
                "repositories",
                "entry `repositories` does not match the tags and configs of airlock.json"
                    .to_string(),
            ),
            Err(e) => find(
                FindingKind::InvalidJson,
                None,
                "repositories",
                format!("entry `repositories` is not a docker-save tag map ({e})"),
            ),
        },
    }
    out
}

const INDEX_KEYS: &[&str] = &["schemaVersion", "mediaType", "manifests", "annotations"];
const DESCRIPTOR_KEYS: &[&str] = &[
    "mediaType",
    "digest",
    "size",
    "platform",
    "annotations",
    "urls",
    "artifactType",
];
const PLATFORM_KEYS: &[&str] = &["architecture", "os", "variant", "os.version", "os.features"];

/// Adds `prefix` + every key of the object `v` (if it is one) that is not in `known`.
fn unknown_keys(v: &serde_json::Value, known: &[&str], prefix: &str, out: &mut Vec<String>) {
    if let Some(map) = v.as_object() {
        for k in map.keys() {
            if !known.contains(&k.as_str()) {
                out.push(format!("`{prefix}{k}`"));
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A manifest or an index, from index.json or the TOC.
    Root,
    /// A child of an index.
    Child,
    Config,
    Layer,
}

/// Walks image graphs, recording which images reach which blobs and the problems on
/// the way (each reported once).
struct Graph<'s> {
    seen: &'s Seen,
    reach: HashMap<Digest, BTreeSet<String>>,
    problems: Vec<Finding>,
    /// Blobs needed but absent: media type (if known) and who needs them.
    missing: BTreeMap<Digest, (String, Vec<String>)>,
    /// (parent, child) descriptors already checked.
    checked: HashSet<(String, Digest)>,
    /// Parsed children of manifests and indexes (None: unreadable).
    children: HashMap<Digest, Option<Vec<(Descriptor, Role)>>>,
    /// The media types each blob is described with, and the first place that does.
    /// One layer may be named with a Docker type by one manifest and an OCI type by
    /// another (same bytes), so the TOC's type must be *one of* these, checked after
    /// the whole graph is walked.
    described: HashMap<Digest, (BTreeSet<String>, String)>,
}

impl Graph<'_> {
    fn walk_root(&mut self, image: &str, digest: &Digest, media_type: &str, parent: &str) {
        let size = self.seen.blobs.get(digest).map_or(0, |b| b.size);
        let d = Descriptor::new(media_type, digest.clone(), size);
        self.edge(image, parent, &d, Role::Root);
    }

    fn edge(&mut self, image: &str, parent: &str, d: &Descriptor, role: Role) {
        self.edge_at(image, parent, d, role, 0);
    }

    /// Indexes nest a level or two in practice; a crafted chain of thousands would
    /// otherwise recurse until the stack overflows.
    fn edge_at(&mut self, image: &str, parent: &str, d: &Descriptor, role: Role, depth: usize) {
        if depth > MAX_NESTING {
            self.problems.push(Finding {
                kind: FindingKind::InvalidJson,
                digest: Some(d.digest.clone()),
                entry: Some(d.digest.blob_path()),
                message: format!(
                    "{parent} nests indexes deeper than {MAX_NESTING} levels; {} and what it \
                     names were not checked",
                    d.digest
                ),
                images: Vec::new(),
            });
            return;
        }
        let newly = self
            .reach
            .entry(d.digest.clone())
            .or_default()
            .insert(image.to_string());
        if self.checked.insert((parent.to_string(), d.digest.clone())) {
            self.check_descriptor(parent, d);
        }
        if !newly || matches!(role, Role::Config | Role::Layer) {
            return;
        }
        let children = self.children_of(d).unwrap_or_default();
        let kind = if children.iter().any(|(_, r)| *r == Role::Config) {
            "manifest"
        } else {
            "index"
        };
        let label = format!("{kind} {}", d.digest);
        for (child, role) in children {
            self.edge_at(image, &label, &child, role, depth + 1);
        }
    }

    fn check_descriptor(&mut self, parent: &str, d: &Descriptor) {
        let foreign = d.urls.is_some()
            || d.media_type.contains("foreign")
            || d.media_type.contains("nondistributable");
        match self.seen.blobs.get(&d.digest) {
            None if foreign => {}
            None => self.need(&d.digest, &d.media_type, parent),
            Some(b) if b.size == d.size && parent != "airlock.json" => {
                let entry = self
                    .described
                    .entry(d.digest.clone())
                    .or_insert_with(|| (BTreeSet::new(), parent.to_string()));
                entry.0.insert(d.media_type.clone());
            }
            Some(b) if b.size != d.size && parent != "airlock.json" => {
                self.problems.push(Finding {
                    kind: FindingKind::SizeMismatch,
                    digest: Some(d.digest.clone()),
                    entry: Some(d.digest.blob_path()),
                    message: format!(
                        "blob {} is {} bytes but {parent} describes it as {}",
                        d.digest, b.size, d.size
                    ),
                    images: Vec::new(),
                })
            }
            Some(_) => {}
        }
    }

    /// Records that `parent` needs blob `digest`, which is not in the bundle.
    fn need(&mut self, digest: &Digest, media_type: &str, parent: &str) {
        let (mt, by) = self.missing.entry(digest.clone()).or_default();
        if mt.is_empty() {
            *mt = media_type.to_string();
        }
        if !by.iter().any(|p| p == parent) {
            by.push(parent.to_string());
        }
    }

    /// The descriptors a manifest or index points to.
    fn children_of(&mut self, d: &Descriptor) -> Option<Vec<(Descriptor, Role)>> {
        if let Some(c) = self.children.get(&d.digest) {
            return c.clone();
        }
        let parsed = self.parse(d);
        self.children.insert(d.digest.clone(), parsed.clone());
        parsed
    }

    fn parse(&mut self, d: &Descriptor) -> Option<Vec<(Descriptor, Role)>> {
        self.seen.blobs.get(&d.digest)?;
        let problem = |this: &mut Self, why: String| {
            this.problems.push(Finding {
                kind: FindingKind::InvalidJson,
                digest: Some(d.digest.clone()),
                entry: Some(d.digest.blob_path()),
                message: format!("blob {} {why}", d.digest),
                images: Vec::new(),
            });
            None
        };
        let Some(bytes) = self.seen.json.get(&d.digest) else {
            return problem(
                self,
                "should be a manifest or index but is not a JSON document".to_string(),
            );
        };
        let mt = oci::sniff_media_type(bytes).unwrap_or_else(|| d.media_type.clone());
        if media::is_index(&mt) {
            match serde_json::from_slice::<ImageIndex>(bytes) {
                Ok(i) => Some(i.manifests.into_iter().map(|m| (m, Role::Child)).collect()),
                Err(e) => problem(self, format!("is not a valid image index ({e})")),
            }
        } else if media::is_manifest(&mt) {
            match serde_json::from_slice::<ImageManifest>(bytes) {
                Ok(m) => Some(
                    std::iter::once((m.config, Role::Config))
                        .chain(m.layers.into_iter().map(|l| (l, Role::Layer)))
                        .collect(),
                ),
                Err(e) => problem(self, format!("is not a valid image manifest ({e})")),
            }
        } else {
            // An artifact or unknown type: nothing airlock can walk, not an error.
            Some(Vec::new())
        }
    }
}

fn is_layer_type(mt: &str) -> bool {
    mt.contains(".layer.") || mt.contains("rootfs.") || media::is_uncompressed_layer(mt)
}

fn looks_like_json(first: &[u8]) -> bool {
    first
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{' || *b == b'[')
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
