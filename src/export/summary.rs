//! [`SaveSummary`]: what a save produced, and how it is told to the operator.
//!
//! `save` returns it; the caller prints it as JSON (`--json`, the serialized fields as
//! they are) or with [`SaveSummary::print_human`], as `push`, `load` and `inventory`
//! print their own summaries. It lives apart from the pipeline in `export/mod.rs` so
//! the report's shape and wording can change without touching the pipeline.

use std::io::{self, Write};
use std::path::PathBuf;

use crate::bundle::toc::{ArtifactKind, TocArtifact, TocImage};
use crate::progress::human_bytes;
use crate::words::count;

/// What a save produced, for the closing report.
#[derive(Debug, serde::Serialize)]
pub struct SaveSummary {
    pub output: PathBuf,
    /// Names written (tags and digest-only names).
    pub images: Vec<TocImage>,
    /// Signatures, attestations, SBOMs carried with the images.
    pub artifacts: Vec<TocArtifact>,
    pub blobs: usize,
    /// Sum of the unique blobs' sizes.
    pub blob_bytes: u64,
    /// Size of the bundle file (all parts together when split).
    pub file_size: u64,
    /// The parts written with `--split`, in order (empty otherwise).
    pub parts: Vec<PathBuf>,
    /// Configs and layers left out because the `--base` has them (differential bundles).
    pub omitted: usize,
    /// Their total size.
    pub omitted_bytes: u64,
    /// Layers taken from the partial bundle of an interrupted run instead of the network.
    pub reused: usize,
    /// Their total size.
    pub reused_bytes: u64,
    /// Layers fetched from their source by this run.
    pub fetched: usize,
    /// Their total size.
    pub fetched_bytes: u64,
    /// Files beside the parts named like one that airlock did not write and so left
    /// alone (readers report them as extra parts until they are moved away).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_alone: Vec<PathBuf>,
    /// The partial bundle this run resumed from (deleted once used), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed_from: Option<PathBuf>,
}

impl SaveSummary {
    /// The human report (on stderr, unless quiet): with `verbose`, every name first;
    /// then notes about names, the totals, the parts, and where the layers came from.
    pub fn print_human(&self, w: &mut dyn Write, verbose: bool, secs: f64) -> io::Result<()> {
        if verbose {
            for image in &self.images {
                writeln!(
                    w,
                    "{} {} [{}] {}",
                    image.name,
                    image.digest,
                    image.platforms.join(", "),
                    human_bytes(image.size)
                )?;
            }
        }
        for image in &self.images {
            if let Some(note) = &image.note {
                writeln!(w, "note: {}: {note}", image.name)?;
            }
            if let Some(why) = &image.docker_skipped {
                writeln!(
                    w,
                    "note: {}: not in manifest.json for `docker load`: {why}",
                    image.name
                )?;
            }
        }
        writeln!(
            w,
            "Saved {}, {} ({}) to {} ({} on disk) in {secs:.1}s",
            count(self.images.len() as u64, "image name"),
            count(self.blobs as u64, "blob"),
            human_bytes(self.blob_bytes),
            self.output.display(),
            human_bytes(self.file_size),
        )?;
        if !self.artifacts.is_empty() {
            let of = |k: ArtifactKind| self.artifacts.iter().filter(|a| a.kind == k).count() as u64;
            // Only the kinds there are: "2 signatures, 1 SBOM".
            let kinds: Vec<String> = [
                (ArtifactKind::Signature, "signature"),
                (ArtifactKind::Attestation, "attestation"),
                (ArtifactKind::Sbom, "SBOM"),
                (ArtifactKind::Other, "other artifact"),
            ]
            .into_iter()
            .filter(|(k, _)| of(*k) > 0)
            .map(|(k, noun)| count(of(k), noun))
            .collect();
            writeln!(
                w,
                "Carried {} with them: {}",
                count(self.artifacts.len() as u64, "artifact"),
                kinds.join(", ")
            )?;
        }
        if let (Some(first), Some(last)) = (self.parts.first(), self.parts.last()) {
            writeln!(
                w,
                "Split into {}: {} … {} (join with `cat`, or give any airlock command the first part)",
                count(self.parts.len() as u64, "part"),
                first.display(),
                last.display()
            )?;
        }
        for file in &self.left_alone {
            writeln!(
                w,
                "note: left `{}` alone: it is named like a part of this bundle, but airlock did not \
             write it; readers will report it as an extra part until you move it away",
                file.display()
            )?;
        }
        if self.resumed_from.is_some() {
            writeln!(
                w,
                "resumed: reused {} ({}) from the interrupted run, fetched {} ({})",
                count(self.reused as u64, "blob"),
                human_bytes(self.reused_bytes),
                self.fetched,
                human_bytes(self.fetched_bytes)
            )?;
        }
        if self.omitted > 0 {
            writeln!(
                w,
                "Differential: left out {} ({}) that the base already has",
                count(self.omitted as u64, "blob"),
                human_bytes(self.omitted_bytes)
            )?;
        }
        Ok(())
    }
}
