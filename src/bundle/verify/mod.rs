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
//! (`tests/bitflips.rs` proves it), except the rare bit inside a compressed zstd block
//! that the format ignores (the file still decodes, checksums and all, to the same
//! bytes, so no reader gets anything different): entries are read sequentially, never
//! seeking, so every zstd frame is decoded to its end and its content checksum checked,
//! and entry padding goes by a `Watch` that checks it is zero; the end-of-archive
//! blocks must be zero; tar checksum fields must be in a canonical form; every frame
//! the seek table lists must start where it says with a header matching it
//! ([`check_frame_header`]); the TOC's own checksum must match; and `index.json`,
//! `manifest.json` and `repositories`, which nothing hashes in a plain tar, must agree
//! with the TOC (`check_docs`).
//!
//! A split bundle is verified from its first part, its parts index or its base name:
//! every part must be there with its size (checked first), the pass reads the parts as
//! one stream, and each part's sha256 is computed from what the pass reads
//! ([`PartHashes`]) and compared with the index at the end, which names a part that was
//! swapped with another (its content is another part's) or that comes from another
//! bundle (its content is no part's). Stray parts the index does not list are reported.
//!
//! The pass runs as a sequence of phases, each in its own module and each adding
//! [`Finding`]s to the pass (this module holds the driver, [`verify`], and the state the
//! phases share, `Pass` and `Seen`):
//!
//! 1. the parts of a split bundle, there and with their sizes, and a seek table that
//!    cannot be read (here, in [`verify`]);
//! 2. `frames`: the zstd frames against the seek table;
//! 3. `scan`: the tar stream, header by header, to its end-of-archive blocks, and
//!    `entries`: each entry's content (blobs rehashed, small JSON kept, the TOC parsed);
//! 4. the part hashes of a split bundle (here, in [`verify`]), then `compact`: every
//!    compact layer rebuilt from its raw tar and recipe and checked against its digest;
//! 5. `graph` and `docs`: the documents kept in memory, one `check_*` step per
//!    document, then the image graph's verdict (missing blobs, and the images each
//!    finding breaks), then `artifacts`: the TOC's signatures, attestations and SBOMs,
//!    whole and referring to something in the bundle;
//! 6. `signed`: the signature entry against the TOC bytes the scan read, and a split
//!    bundle's signed parts index ([`verify_trusting`] with `--trust` keys requires a
//!    trusted signer); its findings go first in the report, since a bundle whose
//!    signature fails cannot be vouched for whatever else is sound;
//! 7. `image_signatures` (with `--key` or `--policy`, [`verify_with`]): each image's
//!    cosign signatures and the policy, judged by [`crate::trust`] from the signature
//!    manifests and payloads the scan kept; its findings go last.
//!
//! `part` checks one part of a split bundle alone against its signed parts index
//! (`verify --part`, [`verify_part`]), without reading the others.
//!
//! The public types, [`Finding`], [`FindingKind`] and [`VerifyReport`], are in `report`.
//!
//! [`check_frame_header`]: super::seekable::check_frame_header

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io;
use std::path::Path;
use std::sync::Arc;

use super::BundleError;
use super::parts::{Location, PartProblem, locate};
use super::reader::{Probe, Storage, probe};
use super::seekable::TableProblem;
use super::source::PartHashes;
use super::toc::{TOC_NAME, Toc};
use crate::digest::Digest;
use crate::oci::ImageIndex;
use crate::progress::{Progress, human_bytes};
use crate::signing::PublicKey;
use crate::trust::Policy;

mod artifacts;
mod compact;
mod docs;
mod entries;
mod frames;
mod graph;
mod image_signatures;
pub mod part;
mod report;
mod scan;
mod signed;

pub use image_signatures::{check_bundle_images, check_toc_images, findings as image_findings};
pub use part::{PartReport, check_part as verify_part};
pub use report::{Finding, FindingKind, VerifyReport};

use crate::words::count;
use graph::Graph;
use scan::Scan;

/// Verifies the bundle at `path`; `Err` only when the file cannot be read at all. A
/// signed bundle's signature is checked (not trusted): see [`verify_trusting`].
pub fn verify(path: &Path, progress: &dyn Progress) -> Result<VerifyReport, BundleError> {
    verify_trusting(path, &[], progress)
}

/// [`verify`], and with `trusted` keys a valid signature by one of them is required
/// (`verify --trust`): the report is ok only if such a signature covers this bundle,
/// its statement matches it, and everything else is sound.
pub fn verify_trusting(
    path: &Path,
    trusted: &[PublicKey],
    progress: &dyn Progress,
) -> Result<VerifyReport, BundleError> {
    verify_with(path, trusted, None, progress)
}

/// [`verify_trusting`], and with `images` (`--key`, `--policy`) every image judged by
/// that policy (step 7, `image_signatures`): its verdicts are in the report, and each
/// refusal is a finding, after all others.
pub fn verify_with(
    path: &Path,
    trusted: &[PublicKey],
    images: Option<&Policy>,
    progress: &dyn Progress,
) -> Result<VerifyReport, BundleError> {
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
            findings.push(Finding::new(
                FindingKind::Unreadable,
                format!("{}, so nothing in it was checked", error_chain(&e)),
            ));
            return Ok(VerifyReport {
                bundle: path.display().to_string(),
                ok: false,
                images: 0,
                blobs: 0,
                bytes: 0,
                parts: loc_parts(&loc),
                differential: None,
                signature: None,
                parts_signature: None,
                image_signatures: Vec::new(),
                findings,
            });
        }
        Err(e) => return Err(e),
    };
    let mut pass = Pass::new(path, &loc, hashes.clone(), &probe, progress);
    pass.findings = part_findings;
    if let Some(TableProblem::Invalid(why)) = &probe.table_problem {
        pass.findings.push(Finding::new(
            FindingKind::SeekTable,
            format!("{why}; reading the whole file sequentially instead"),
        ));
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
                pass.findings
                    .push(Finding::new(FindingKind::Unreadable, message));
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
    pass.check_compact();
    let signed = pass.check_signatures(trusted);
    let verdicts = images
        .map(|p| pass.check_image_signatures(p))
        .unwrap_or_default();
    let mut report = pass.into_report();
    report
        .findings
        .extend(image_signatures::findings(&verdicts));
    report.image_signatures = verdicts;
    let mut findings = signed.findings;
    findings.append(&mut report.findings);
    report.findings = findings;
    report.ok = report.findings.is_empty();
    report.signature = signed.bundle;
    report.parts_signature = signed.parts;
    Ok(report)
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
    Finding::new(kind, problem.to_string())
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

/// The state of one verification: where the bundle is and how it is stored, what the
/// pass has seen so far, and the findings so far. Each phase module adds its methods.
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
    /// The name of the last entry the scan read (`airlock.sig.json` must follow
    /// `airlock.json`).
    prev_entry: Option<String>,
}

/// How many bytes of small JSON blobs the pass keeps in memory, all told.
const JSON_BUDGET: u64 = 1024 * 1024 * 1024;
/// The buffer each read of the stream goes through.
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
            prev_entry: None,
        }
    }

    fn start_phase(&mut self) {
        self.phase_started = true;
        let (bytes, items) = match &self.toc {
            Some(t) => (t.blobs.iter().map(|b| b.size).sum(), t.blobs.len() as u64),
            None => (self.file_size, 0),
        };
        self.progress.phase("verifying", bytes, items);
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
                    "made against {} {}{}; {} ({}) left out, not checked here (check them with --base FILE)",
                    b.kind,
                    b.file,
                    b.created.as_ref().map(|c| format!(" ({c})")).unwrap_or_default(),
                    count(b.omitted.len() as u64, "blob"),
                    human_bytes(b.omitted_bytes())
                )
            }),
            signature: None,
            parts_signature: None,
            image_signatures: Vec::new(),
            findings: self.findings,
        }
    }

    /// Checks layout files, TOC, `index.json`, the image graph and `manifest.json`;
    /// returns, for every blob reached, the image names that reach it. The findings
    /// follow the scan's in this order: each document's step (`oci-layout`, the TOC,
    /// `index.json`, `manifest.json`), the documents against the TOC (`docs`), what the
    /// walk found wrong, and last the blobs needed but absent.
    fn check_graph(&mut self) -> HashMap<Digest, BTreeSet<String>> {
        let toc = self.toc.as_ref();
        let docs = toc.map_or_else(Vec::new, |toc| docs::check_docs(toc, &self.seen));
        let mut graph = Graph::new(&self.seen);
        if [TOC_NAME, "oci-layout", "index.json"]
            .iter()
            .all(|n| !self.seen.meta.contains_key(*n))
        {
            // None of a bundle's entries: one finding says it is not a bundle, instead of
            // one per missing or unexpected entry. Hostile entries are still reported.
            self.findings
                .retain(|f| f.kind == FindingKind::HostileEntry);
            self.findings.push(
                Finding::new(
                    FindingKind::MissingEntry,
                    "not an airlock bundle (no airlock.json, oci-layout or index.json); \
                     make bundles with `airlock save`",
                )
                .with_entry(TOC_NAME),
            );
            return HashMap::new();
        }
        let mut findings = docs::check_layout(&self.seen);
        findings.extend(graph.check_toc(toc));
        findings.extend(graph.check_index(toc));
        findings.extend(graph.check_docker(toc));
        let mut walked = graph.finish(toc, &self.toc_types);
        let artifacts = toc.map(|t| artifacts::check_artifacts(t, &self.seen, &walked.reach));
        if let Some(a) = &artifacts {
            // A blob an artifact lacks is reported once, naming the artifact.
            walked
                .missing
                .retain(|f| f.digest.as_ref().is_none_or(|d| !a.missing.contains(d)));
        }
        self.findings.extend(findings);
        self.findings.extend(docs);
        self.findings.extend(walked.problems);
        self.findings.extend(walked.missing);
        self.findings
            .extend(artifacts.into_iter().flat_map(|a| a.findings));
        walked.reach
    }
}
