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
//! A split bundle is verified from its first part, its parts index or its base name:
//! every part must be there with its size (checked first), the pass reads the parts as
//! one stream, and each part's sha256 is computed from what the pass reads
//! ([`PartHashes`]) and compared with the index at the end, which names a part that was
//! swapped with another (its content is another part's) or that comes from another
//! bundle (its content is no part's). Stray parts the index does not list are reported.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::reader::{
    EntryCheck, Probe, ReadSeek, Storage, check_entry, open_stream, parse_toc, probe,
};
use super::seekable::{FrameError, TableProblem};
use super::source::PartHashes;
use super::split::{Location, PartProblem, locate};
use super::toc::{TOC_NAME, Toc};
use super::{BundleError, MAX_METADATA_SIZE, MAX_TOC_SIZE, blob_name_digest, is_expected_name};
use crate::digest::{Digest, Hasher};
use crate::oci::{
    self, Descriptor, ImageConfig, ImageIndex, ImageManifest, MAX_CONFIG_SIZE, media,
};
use crate::progress::{Progress, human_bytes};

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
    let mut start = 0u64;
    loop {
        match pass.scan(start) {
            Scan::End => break,
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
}

const JSON_BUDGET: u64 = 1024 * 1024 * 1024;
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
            self.find(
                FindingKind::CorruptFrame,
                digest,
                entry,
                format!(
                    "zstd frame {} at file offset {} cannot be decoded ({cause}){inside}",
                    fe.frame, fe.c_off
                ),
            );
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
        let mut archive = tar::Archive::new(view);
        let mut next_header = start;
        let entries = match archive.entries_with_seek() {
            Ok(e) => e,
            Err(e) => {
                self.stream_error(&e, start, None, None);
                return Scan::End;
            }
        };
        for entry in entries {
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
                    if self.stream_error(&e, next_header, None, None) {
                        return Scan::End;
                    }
                    return Scan::Lost(next_header, None);
                }
            };
            let data_at = start + entry.raw_file_position();
            let size = entry.size();
            next_header = data_at + size.div_ceil(512) * 512;
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
        }
        drop(archive);
        self.check_end(next_header);
        Scan::End
    }

    /// The stream must go on with (at least one) zero block where the entries stop.
    fn check_end(&mut self, at: u64) {
        let mut block = [0u8; 512];
        let res = self.open(at).and_then(|mut v| {
            let mut got = 0;
            while got < block.len() {
                match v.read(&mut block[got..])? {
                    0 => break,
                    n => got += n,
                }
            }
            Ok(got)
        });
        match res {
            Ok(512) => {}
            Ok(_) => self.find(
                FindingKind::Truncated,
                None,
                None,
                format!(
                    "the bundle ends at stream offset {at} without the tar end-of-archive blocks"
                ),
            ),
            Err(e) => {
                self.stream_error(&e, at, None, None);
            }
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
                format!("blob {digest} is damaged: its content hashes to {actual}"),
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
        let mut graph = Graph {
            seen: &self.seen,
            reach: HashMap::new(),
            problems: Vec::new(),
            missing: BTreeMap::new(),
            checked: HashSet::new(),
            children: HashMap::new(),
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
            problems,
            missing,
            ..
        } = graph;
        self.findings.extend(findings);
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
}

impl Graph<'_> {
    fn walk_root(&mut self, image: &str, digest: &Digest, media_type: &str, parent: &str) {
        let size = self.seen.blobs.get(digest).map_or(0, |b| b.size);
        let d = Descriptor::new(media_type, digest.clone(), size);
        self.edge(image, parent, &d, Role::Root);
    }

    fn edge(&mut self, image: &str, parent: &str, d: &Descriptor, role: Role) {
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
            self.edge(image, &label, &child, role);
        }
    }

    fn check_descriptor(&mut self, parent: &str, d: &Descriptor) {
        let foreign = d.urls.is_some()
            || d.media_type.contains("foreign")
            || d.media_type.contains("nondistributable");
        match self.seen.blobs.get(&d.digest) {
            None if foreign => {}
            None => self.need(&d.digest, &d.media_type, parent),
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
