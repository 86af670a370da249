//! `airlock ls`: what a bundle holds, from its table of contents alone.
//!
//! Everything shown comes from `airlock.json` (read by [`Bundle::open`], which also
//! indexes the tar headers), so listing a bundle of terabytes reads a few kilobytes and
//! never touches layer data. The JSON shape of [`ListReport`] is a contract (scripts
//! and tests read it): the TOC's own fields plus the bundle's path, size and
//! compression, with `images` serialized exactly as `airlock.json` holds them. A split
//! bundle adds `parts` (count, part size, the parts index); one in a single file omits it.
//! A differential bundle adds `base` (what it was made against, how many blobs and
//! bytes it left out, and what share of a full bundle it is). A signed bundle adds
//! `signature`, who signed it (the text form says `unsigned` when nobody did): the
//! signature entry is read (a few
//! hundred bytes) and checked mathematically, not against any trusted key, since `ls`
//! takes no `--trust`.
//!
//! A bundle carrying signatures, attestations or SBOMs (the TOC's `artifacts`) lists,
//! under each image, the artifacts that refer to it, to one of its manifests, or
//! (recursively) to such an artifact; `--json` adds an `artifacts` array to that image,
//! each entry the TOC's record plus its `depth` (1: about the image). Finding which
//! manifests an index holds reads the image's index entries (a few kilobytes, and only
//! when the bundle has artifacts); an image without artifacts is shown as before.
//!
//! A compact bundle (`save --compact`) adds `compact`: each gzip layer, `rebuilt` (raw
//! tar + recipe, with the raw size and encoder) or `kept` as is, from the TOC alone.

use std::io::{self, Write};

use serde::Serialize;

use crate::bundle::Bundle;
use crate::bundle::signature::{self, SignatureReport};
use crate::bundle::toc::{Toc, TocArtifact, TocImage};
use crate::digest::Digest;
use crate::oci::Parsed;
use crate::progress::human_bytes;
use crate::reference::Reference;
use crate::settings::RegistryPrefix;
use crate::words::count;

/// The `ls` report.
#[derive(Debug, Clone, Serialize)]
pub struct ListReport {
    pub bundle: String,
    /// Size of the bundle file on disk.
    pub file_size: u64,
    /// `"zstd"` or `"none"`.
    pub compression: String,
    /// For a split bundle, how it is split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts: Option<ListParts>,
    pub tool: String,
    pub created: String,
    pub format_version: u32,
    pub docker_platform: String,
    /// The TOC's images as `airlock.json` holds them, each with its artifacts (if any).
    pub images: Vec<ListImage>,
    pub blob_count: usize,
    /// Sum of the sizes of all blobs (each counted once).
    pub blob_bytes: u64,
    /// For a differential bundle (`save --base`): its base and what it left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<ListBase>,
    /// Who signed the bundle, each signature checked, no key trusted; absent for an
    /// unsigned bundle (whose report is then what it always was).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureReport>,
    /// What is wrong with the signature, if anything (a bad signature, a statement
    /// that does not match this bundle).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signature_problems: Vec<String>,
    /// A compact bundle (`save --compact`): each gzip layer, rebuilt from raw tar +
    /// recipe or kept as is; absent otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub compact: Vec<ListCompact>,
}

/// One gzip layer of a compact bundle.
#[derive(Debug, Clone, Serialize)]
pub struct ListCompact {
    pub digest: Digest,
    /// The gzip layer's size.
    pub size: u64,
    /// `rebuilt` (stored as raw tar + recipe) or `kept` (stored as is).
    pub stored: &'static str,
    /// For a rebuilt layer: the raw tar's size and the encoders of its recipe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_size: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub encoders: Vec<String>,
}

/// The gzip layers of a compact bundle, rebuilt ones first, in TOC order.
fn compact_of(toc: &Toc) -> Vec<ListCompact> {
    if toc.compact.is_empty() {
        return Vec::new();
    }
    let rebuilt = toc.compact.iter().map(|c| ListCompact {
        digest: c.digest.clone(),
        size: c.size,
        stored: "rebuilt",
        raw_size: Some(c.raw_size),
        encoders: c.recipe.encoders().iter().map(|e| e.short()).collect(),
    });
    let kept = toc
        .blobs
        .iter()
        .filter(|b| b.media_type.ends_with("+gzip") || b.media_type.ends_with(".gzip"))
        .map(|b| ListCompact {
            digest: b.digest.clone(),
            size: b.size,
            stored: "kept",
            raw_size: None,
            encoders: Vec::new(),
        });
    rebuilt.chain(kept).collect()
}

/// One image: the TOC's record, and the artifacts that refer to it.
#[derive(Debug, Clone, Serialize)]
pub struct ListImage {
    #[serde(flatten)]
    pub image: TocImage,
    /// Signatures, attestations, SBOMs about it, each after the one it refers to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<ListArtifact>,
    /// With `--target`: the reference to pull it by there (`127.0.0.1:5000/library/nginx:1.25`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull: Option<String>,
}

/// An artifact under an image.
#[derive(Debug, Clone, Serialize)]
pub struct ListArtifact {
    #[serde(flatten)]
    pub artifact: TocArtifact,
    /// 1 when it refers to the image or one of its manifests, 2 when it refers to an
    /// artifact of depth 1, and so on.
    pub depth: usize,
}

/// What a differential bundle was made against and how much it saved.
#[derive(Debug, Clone, Serialize)]
pub struct ListBase {
    /// `bundle` or `inventory`.
    pub kind: String,
    /// The base's file name.
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// For an inventory base, the registry it describes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// Configs and layers left out.
    pub omitted_blobs: usize,
    /// Their total size.
    pub omitted_bytes: u64,
    /// Bytes this file saves against a full bundle (the left-out blobs are already
    /// compressed, so a full bundle would be about this much larger).
    pub saved_bytes: u64,
    /// This file's size as a percentage of the estimated full bundle (file + saved).
    pub percent_of_full: f64,
}

impl ListBase {
    fn new(base: &crate::bundle::toc::TocBase, file_size: u64) -> ListBase {
        let saved = base.omitted_bytes();
        let full = file_size + saved;
        ListBase {
            kind: base.kind.clone(),
            file: base.file.clone(),
            created: base.created.clone(),
            registry: base.registry.clone(),
            omitted_blobs: base.omitted.len(),
            omitted_bytes: saved,
            saved_bytes: saved,
            percent_of_full: if full == 0 {
                100.0
            } else {
                (1000.0 * file_size as f64 / full as f64).round() / 10.0
            },
        }
    }
}

/// How a split bundle is split.
#[derive(Debug, Clone, Serialize)]
pub struct ListParts {
    /// Number of parts.
    pub count: usize,
    /// Size of every part but the last.
    pub part_size: u64,
    /// The parts index file.
    pub index: String,
    /// The parts' file names, in order.
    pub names: Vec<String>,
}

impl ListReport {
    pub fn from_bundle(bundle: &Bundle) -> ListReport {
        let toc = bundle.toc();
        let (signature, signature_problems) = match signature::check_opened(bundle, &[]) {
            Ok((checked, parts)) => {
                let problems = checked
                    .problems
                    .iter()
                    .chain(parts.iter().flat_map(|p| &p.problems))
                    .map(ToString::to_string)
                    .collect();
                (checked.report, problems)
            }
            // The signature entry is indexed but cannot be read: say so, list the rest.
            Err(e) => (
                SignatureReport {
                    signed: true,
                    ..SignatureReport::default()
                },
                vec![format!("the signature cannot be read: {e}")],
            ),
        };
        ListReport {
            bundle: bundle.path().display().to_string(),
            file_size: bundle.file_size(),
            compression: if bundle.compressed() { "zstd" } else { "none" }.to_string(),
            parts: bundle.parts().map(|set| ListParts {
                count: set.count(),
                part_size: set.index().part_size,
                index: set.index_path().display().to_string(),
                names: set.index().parts.iter().map(|p| p.name.clone()).collect(),
            }),
            tool: toc.tool.clone(),
            created: toc.created.clone(),
            format_version: toc.format_version,
            docker_platform: toc.docker_platform.clone(),
            images: toc
                .images
                .iter()
                .map(|i| ListImage {
                    image: i.clone(),
                    artifacts: artifacts_of(bundle, toc, i),
                    pull: None,
                })
                .collect(),
            blob_count: toc.blobs.len(),
            blob_bytes: toc.blobs.iter().map(|b| b.size).sum(),
            base: toc
                .base
                .as_ref()
                .map(|b| ListBase::new(b, bundle.file_size())),
            signature: signature.signed.then_some(signature),
            signature_problems,
            compact: compact_of(toc),
        }
    }

    /// `--target`: each image's pull reference on `target`, named as `push` and `serve`
    /// name it ([`RegistryPrefix::repository_for`]), by tag, or by digest for a name
    /// saved by digest only.
    pub fn add_pull_references(
        &mut self,
        target: &RegistryPrefix,
        keep_registry: bool,
    ) -> anyhow::Result<()> {
        for i in &mut self.images {
            let name = Reference::parse(&i.image.name)?;
            let repo = target.repository_for(&name, keep_registry)?;
            i.pull = Some(match name.tag() {
                Some(tag) => format!("{}/{repo}:{tag}", target.registry),
                None => format!("{}/{repo}@{}", target.registry, i.image.digest),
            });
        }
        Ok(())
    }

    /// A summary line, a table (NAME, DIGEST, PLATFORMS, SIZE), pull references
    /// (with `--target`) and notes.
    pub fn print_human(&self, w: &mut dyn Write) -> io::Result<()> {
        let split = self
            .parts
            .as_ref()
            .map(|p| {
                format!(
                    " in {} of {}",
                    count(p.count as u64, "part"),
                    human_bytes(p.part_size)
                )
            })
            .unwrap_or_default();
        writeln!(
            w,
            "{}: {}, {}, {} ({}, {} on disk{split}); made by {} at {}",
            self.bundle,
            count(self.images.len() as u64, "image"),
            count(self.blob_count as u64, "blob"),
            human_bytes(self.blob_bytes),
            // JSON says "none"; people read "uncompressed".
            if self.compression == "none" {
                "uncompressed"
            } else {
                &self.compression
            },
            human_bytes(self.file_size),
            self.tool,
            self.created
        )?;
        let unsigned = SignatureReport::default();
        for line in self.signature.as_ref().unwrap_or(&unsigned).describe() {
            writeln!(w, "{line}")?;
        }
        for p in &self.signature_problems {
            writeln!(w, "WARNING: {p}")?;
        }
        if let Some(p) = &self.parts {
            writeln!(
                w,
                "split: {} ({} … {}), parts index {}; join with `cat` in this order to get the bundle as one file",
                count(p.count as u64, "part"),
                p.names.first().map_or("", String::as_str),
                p.names.last().map_or("", String::as_str),
                p.index
            )?;
        }
        if let Some(b) = &self.base {
            writeln!(
                w,
                "differential against {} {}{}: {}, {} left out; this file is {:.1}% of a full bundle (saves {})",
                b.kind,
                b.file,
                b.created
                    .as_ref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default(),
                count(b.omitted_blobs as u64, "blob"),
                human_bytes(b.omitted_bytes),
                b.percent_of_full,
                human_bytes(b.saved_bytes)
            )?;
        }
        self.print_compact(w)?;
        if self.images.is_empty() {
            return Ok(());
        }
        let rows: Vec<[String; 4]> = self
            .images
            .iter()
            .map(|i| &i.image)
            .map(|i| {
                [
                    i.name.clone(),
                    format!("sha256:{}", i.digest.short()),
                    i.platforms.join(","),
                    human_bytes(i.size),
                ]
            })
            .collect();
        let header = ["NAME", "DIGEST", "PLATFORMS", "SIZE"].map(str::to_string);
        let mut width = [0usize; 4];
        for row in std::iter::once(&header).chain(&rows) {
            for (wd, cell) in width.iter_mut().zip(row) {
                *wd = (*wd).max(cell.chars().count());
            }
        }
        writeln!(w)?;
        let images = std::iter::once(None).chain(self.images.iter().map(Some));
        for (row, image) in std::iter::once(&header).chain(&rows).zip(images) {
            writeln!(
                w,
                "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}",
                row[0],
                row[1],
                row[2],
                row[3],
                w0 = width[0],
                w1 = width[1],
                w2 = width[2],
                w3 = width[3]
            )?;
            for a in image.iter().flat_map(|i| &i.artifacts) {
                print_artifact(w, a)?;
            }
        }
        let pulls: Vec<&str> = self
            .images
            .iter()
            .filter_map(|i| i.pull.as_deref())
            .collect();
        if !pulls.is_empty() {
            writeln!(w)?;
            writeln!(
                w,
                "pull references (as `airlock push` and `airlock serve` name them):"
            )?;
            for p in pulls {
                writeln!(w, "  {p}")?;
            }
        }
        let mut notes = Vec::new();
        for i in self.images.iter().map(|i| &i.image) {
            if let Some(src) = &i.source_digest {
                notes.push(format!(
                    "{}: saved as {}, the source serves {}{}",
                    i.name,
                    i.digest,
                    src,
                    i.note
                        .as_ref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                ));
            } else if let Some(n) = &i.note {
                notes.push(format!("{}: {n}", i.name));
            }
            if let Some(why) = &i.docker_skipped {
                notes.push(format!(
                    "{}: not in manifest.json, so `docker load` skips it: {why}",
                    i.name
                ));
            }
        }
        if !notes.is_empty() {
            writeln!(w)?;
            for n in notes {
                writeln!(w, "note: {n}")?;
            }
        }
        if self.images.iter().any(|i| i.image.docker.is_some()) {
            writeln!(w)?;
            writeln!(w, "docker load platform: {}", self.docker_platform)?;
        }
        Ok(())
    }
}

impl ListReport {
    /// A compact bundle's layers: a summary line, then one line per gzip layer.
    fn print_compact(&self, w: &mut dyn Write) -> io::Result<()> {
        if self.compact.is_empty() {
            return Ok(());
        }
        let rebuilt: Vec<&ListCompact> = self
            .compact
            .iter()
            .filter(|c| c.raw_size.is_some())
            .collect();
        let gzip: u64 = rebuilt.iter().map(|c| c.size).sum();
        let raw: u64 = rebuilt.iter().filter_map(|c| c.raw_size).sum();
        writeln!(
            w,
            "compact: {} of {} rebuilt on the inside from raw tar + recipe ({} of gzip stored as {} raw, for zstd to compress)",
            rebuilt.len(),
            count(self.compact.len() as u64, "gzip layer"),
            human_bytes(gzip),
            human_bytes(raw)
        )?;
        for c in &self.compact {
            let how = match c.raw_size {
                Some(raw) => format!("from {} raw, {}", human_bytes(raw), c.encoders.join(", ")),
                None => "stored as is (no encoder rebuilds it)".to_string(),
            };
            writeln!(
                w,
                "  {:<7}  sha256:{}  {:>10}  {how}",
                c.stored,
                c.digest.short(),
                human_bytes(c.size)
            )?;
        }
        Ok(())
    }
}

/// `  + signature  sha256:0123456789ab  application/…  tag sha256-….sig`, indented by depth.
fn print_artifact(w: &mut dyn Write, a: &ListArtifact) -> io::Result<()> {
    use crate::bundle::toc::ArtifactKind;
    let t = &a.artifact;
    let kind = match t.kind {
        ArtifactKind::Signature => "signature",
        ArtifactKind::Attestation => "attestation",
        ArtifactKind::Sbom => "sbom",
        ArtifactKind::Other => "other",
    };
    write!(
        w,
        "{:indent$}+ {kind:<11}  sha256:{}  {}",
        "",
        t.digest.short(),
        t.artifact_type.as_deref().unwrap_or(&t.media_type),
        indent = 2 * a.depth
    )?;
    if let Some(tag) = &t.tag {
        write!(w, "  tag {tag}")?;
    }
    writeln!(w)
}

/// How deep indexes are read to find an image's manifests, and artifact chains followed.
const MAX_DEPTH: usize = 8;

/// The artifacts of `image` (found in its repository), each after its subject.
fn artifacts_of(bundle: &Bundle, toc: &Toc, image: &TocImage) -> Vec<ListArtifact> {
    if toc.artifacts.is_empty() {
        return Vec::new();
    }
    let repository = crate::reference::Reference::parse(&image.name)
        .map(|r| r.name())
        .unwrap_or_default();
    let mine: Vec<&TocArtifact> = toc
        .artifacts
        .iter()
        .filter(|a| a.repository == repository)
        .collect();
    if mine.is_empty() {
        return Vec::new();
    }
    let subjects = manifests_of(bundle, image);
    let mut out = Vec::new();
    let mut listed = std::collections::HashSet::new();
    for a in mine.iter().filter(|a| subjects.contains(&a.subject)) {
        add_with_referrers(a, 1, &mine, &mut listed, &mut out);
    }
    out
}

/// Appends `a` and, after it, the artifacts about it (recursively).
fn add_with_referrers(
    a: &TocArtifact,
    depth: usize,
    all: &[&TocArtifact],
    listed: &mut std::collections::HashSet<Digest>,
    out: &mut Vec<ListArtifact>,
) {
    if depth > MAX_DEPTH || !listed.insert(a.digest.clone()) {
        return;
    }
    out.push(ListArtifact {
        artifact: a.clone(),
        depth,
    });
    for r in all.iter().filter(|r| r.subject == a.digest) {
        add_with_referrers(r, depth + 1, all, listed, out);
    }
}

/// The image's root and every manifest and index under it, read from its indexes (a
/// root that cannot be read counts alone: `verify` says what is wrong with it).
fn manifests_of(bundle: &Bundle, image: &TocImage) -> std::collections::HashSet<Digest> {
    let mut found = std::collections::HashSet::from([image.digest.clone()]);
    let mut todo = vec![(image.digest.clone(), image.media_type.clone(), 0usize)];
    while let Some((digest, media_type, depth)) = todo.pop() {
        if depth > MAX_DEPTH || !crate::oci::media::is_index(&media_type) {
            continue;
        }
        let Ok(raw) = crate::bundle::graph::read_manifest(bundle, &digest, &media_type) else {
            continue;
        };
        if let Ok(Parsed::Index(index)) = raw.parse() {
            for c in index.manifests {
                if found.insert(c.digest.clone()) {
                    todo.push((c.digest, c.media_type, depth + 1));
                }
            }
        }
    }
    found
}
