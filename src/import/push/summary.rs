//! What a push did (or, with `--dry-run`, would do): the `--json` document and its
//! human form. Totals count what happened; in a dry run they count what would happen.
//! A push that wrote only some images returns a [`PartialPush`] error holding it.

use std::io::{self, Write};

use serde::Serialize;

use crate::bundle::toc::ArtifactKind;
use crate::digest::Digest;
use crate::progress::human_bytes;
use crate::words::count;

/// What a push did (or, with `--dry-run`, would do).
#[derive(Debug, Clone, Serialize)]
pub struct PushSummary {
    /// `host[:port][/prefix]`.
    pub target: String,
    pub dry_run: bool,
    pub images: Vec<ImageReport>,
    pub blobs: BlobTotals,
    pub manifests: ManifestTotals,
    pub tags: TagTotals,
    /// Signatures, attestations and SBOMs pushed with the images (absent when none).
    #[serde(skip_serializing_if = "ArtifactTotals::is_empty")]
    pub artifacts: ArtifactTotals,
}

/// One TOC name.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    /// The name in the bundle.
    pub name: String,
    /// `registry/repo:tag` (or `@digest` for a name saved by digest only).
    pub target: String,
    /// The digest the target now serves for it (the bundle's).
    pub digest: Digest,
    /// The source's digest, when it differs (platforms filtered at save time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_digest: Option<Digest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub status: ImageStatus,
    /// Configs and layers, with what was done to each in the target repository.
    pub blobs: Vec<BlobReport>,
    /// Manifests and indexes (root last), with what was done to each.
    pub manifests: Vec<ManifestReport>,
    /// The artifacts (signatures, attestations, SBOMs) pushed with it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<ArtifactReport>,
}

/// One artifact pushed with an image.
#[derive(Debug, Clone, Serialize)]
pub struct ArtifactReport {
    pub digest: Digest,
    /// `signature`, `attestation`, `sbom` or `other`.
    pub kind: ArtifactKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// What it refers to.
    pub subject: Digest,
    /// Its cosign tag, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// What was done to its manifest; absent when it was not pushed (it failed, or
    /// what it refers to did).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// Artifact manifests, cosign tags and referrers indexes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ArtifactTotals {
    /// Artifact manifests pushed by digest (or that would be).
    pub pushed: u64,
    /// Artifact manifests the target already had.
    pub skipped: u64,
    /// Cosign tags set (or that would be).
    pub tags_pushed: u64,
    pub tags_unchanged: u64,
    /// Referrers tag indexes created or merged (or that would be).
    pub indexes_written: u64,
    /// Referrers tag indexes that already listed every referrer.
    pub indexes_unchanged: u64,
    /// Referrers the target indexed itself (it has the referrers API).
    pub indexed_by_registry: u64,
}

impl ArtifactTotals {
    pub fn is_empty(&self) -> bool {
        self.pushed + self.skipped + self.tags_pushed + self.tags_unchanged == 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageStatus {
    /// The tag (or, for a digest-only name, the root manifest) was written.
    Pushed,
    /// The target already had it.
    Unchanged,
    /// Dry run: it would be written.
    #[serde(rename = "would push")]
    WouldPush,
    /// Something it needs could not be pushed: its tag (or root) was not written.
    #[serde(rename = "not written")]
    Failed,
}

impl ImageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageStatus::Pushed => "pushed",
            ImageStatus::Unchanged => "unchanged",
            ImageStatus::WouldPush => "would push",
            ImageStatus::Failed => "NOT WRITTEN",
        }
    }
}

/// A push that wrote some images and not others: the error (its message names the
/// images not written; the causes follow in the chain) carries the summary, which the
/// binary still prints.
#[derive(Debug)]
pub struct PartialPush {
    pub message: String,
    pub summary: PushSummary,
}

impl std::fmt::Display for PartialPush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What happened to one blob or manifest in one repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Action {
    #[serde(rename = "uploaded")]
    Uploaded,
    #[serde(rename = "mounted")]
    Mounted,
    #[serde(rename = "pushed")]
    Pushed,
    /// The target already had it.
    #[serde(rename = "skipped")]
    Skipped,
    #[serde(rename = "would upload")]
    WouldUpload,
    #[serde(rename = "would mount")]
    WouldMount,
    #[serde(rename = "would push")]
    WouldPush,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Uploaded => "uploaded",
            Action::Mounted => "mounted",
            Action::Pushed => "pushed",
            Action::Skipped => "skipped",
            Action::WouldUpload => "would upload",
            Action::WouldMount => "would mount",
            Action::WouldPush => "would push",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BlobReport {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub action: Action,
}

#[derive(Debug, Clone, Serialize)]
pub struct ManifestReport {
    pub digest: Digest,
    pub media_type: String,
    pub action: Action,
}

/// Blob counts over (repository, blob) pairs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BlobTotals {
    pub uploaded: u64,
    pub uploaded_bytes: u64,
    pub mounted: u64,
    pub skipped: u64,
}

/// Manifest and index PUTs by digest, over (repository, manifest) pairs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ManifestTotals {
    pub pushed: u64,
    pub skipped: u64,
}

/// Tag PUTs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TagTotals {
    pub pushed: u64,
    pub unchanged: u64,
}

impl PushSummary {
    pub fn print_human(&self, w: &mut dyn Write) -> io::Result<()> {
        for image in &self.images {
            writeln!(
                w,
                "{} -> {}@{} ({})",
                image.name,
                image.target,
                image.digest,
                image.status.as_str()
            )?;
            if self.dry_run {
                for b in &image.blobs {
                    writeln!(
                        w,
                        "  blob     {} {:>10}  {}",
                        b.digest,
                        human_bytes(b.size),
                        b.action.as_str()
                    )?;
                }
                for m in &image.manifests {
                    writeln!(
                        w,
                        "  manifest {} {:>10}  {}",
                        m.digest,
                        "",
                        m.action.as_str()
                    )?;
                }
                for a in &image.artifacts {
                    writeln!(
                        w,
                        "  artifact {} {:>10}  {}{}",
                        a.digest,
                        kind_label(a.kind),
                        a.action.map_or("NOT WRITTEN", Action::as_str),
                        a.tag
                            .as_deref()
                            .map(|t| format!(" (tag {t})"))
                            .unwrap_or_default()
                    )?;
                }
            }
            if let Some(source) = &image.source_digest {
                writeln!(
                    w,
                    "  note: {} with digest {}; the source's was {}{}",
                    if self.dry_run {
                        "would be pushed"
                    } else {
                        "pushed"
                    },
                    image.digest,
                    source,
                    image
                        .note
                        .as_deref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                )?;
            } else if let Some(note) = &image.note {
                writeln!(w, "  note: {note}")?;
            }
        }
        let b = &self.blobs;
        let m = &self.manifests;
        let t = &self.tags;
        let a = self.artifacts_phrase();
        if self.dry_run {
            writeln!(
                w,
                "Dry run, nothing written to {}: would upload {} ({}), mount {}, skip {} present; \
                 push {}, skip {} present; set {}, {} already set{a}",
                self.target,
                count(b.uploaded, "blob"),
                human_bytes(b.uploaded_bytes),
                b.mounted,
                b.skipped,
                count(m.pushed, "manifest"),
                m.skipped,
                count(t.pushed, "tag"),
                t.unchanged
            )
        } else {
            let failed = self
                .images
                .iter()
                .filter(|i| i.status == ImageStatus::Failed)
                .count();
            writeln!(
                w,
                "Pushed {} to {}: blobs {} uploaded ({}), {} mounted, {} already present; \
                 manifests {} pushed, {} already present; tags {} set, {} unchanged{a}",
                count((self.images.len() - failed) as u64, "image name"),
                self.target,
                b.uploaded,
                human_bytes(b.uploaded_bytes),
                b.mounted,
                b.skipped,
                m.pushed,
                m.skipped,
                t.pushed,
                t.unchanged
            )
        }
    }
}

impl PushSummary {
    /// `; artifacts …` for the summary line, or nothing when the push had none.
    fn artifacts_phrase(&self) -> String {
        let a = &self.artifacts;
        if a.is_empty() {
            return String::new();
        }
        let verb = if self.dry_run { "would push" } else { "pushed" };
        format!(
            "; artifacts {} {verb}, {} already present, cosign tags {} set, {} unchanged, \
             referrers indexes {} written, {} unchanged, {} indexed by the registry",
            a.pushed,
            a.skipped,
            a.tags_pushed,
            a.tags_unchanged,
            a.indexes_written,
            a.indexes_unchanged,
            a.indexed_by_registry
        )
    }
}

/// `signature`, `attestation`, `sbom`, `other`.
pub(crate) fn kind_label(kind: ArtifactKind) -> &'static str {
    match kind {
        ArtifactKind::Signature => "signature",
        ArtifactKind::Attestation => "attestation",
        ArtifactKind::Sbom => "sbom",
        ArtifactKind::Other => "other",
    }
}
