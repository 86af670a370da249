//! `airlock convert`: a compact bundle (`save --compact`) back into the ordinary bundle,
//! for tools other than airlock (skopeo, crane, plain OCI readers).
//!
//! Every compact layer is rebuilt from its raw tar and recipe through [`Bundle::blob`]
//! (verified against the layer digest, streaming) and written under its gzip digest;
//! the TOC loses its `compact` entries and lists the gzip layers where their raw tars
//! were (a raw tar is kept only when a manifest names it as a layer of its own), and
//! `manifest.json` points at the gzip layers again, each image's from its own
//! manifest. Other entries are copied, every blob hashed again by the writer. With the
//! same zstd level, the result is byte for byte the bundle a plain `save` with the same
//! creation time writes (`tests/compact.rs` checks it). A signature is dropped: it
//! covered the compact table of contents, which the new bundle no longer has.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;

use super::reader::Bundle;
use super::toc::TocBlob;
use super::writer::{BundleWriter, Compression, Head, WriteOptions};
use crate::digest::Digest;
use crate::oci::{DockerLoadEntry, ImageManifest, media};
use crate::progress::{Progress, human_bytes};
use crate::words::count;

/// The largest `manifest.json` / `index.json` / `repositories` / manifest read.
const DOC_LIMIT: u64 = 64 << 20;

/// What a conversion wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ConvertSummary {
    pub bundle: PathBuf,
    pub output: PathBuf,
    /// Layers rebuilt from raw tar + recipe.
    pub rebuilt: usize,
    pub rebuilt_bytes: u64,
    pub blobs: usize,
    pub file_size: u64,
    /// Whether the input's signature was dropped.
    pub signature_dropped: bool,
}

impl ConvertSummary {
    pub fn print_human(&self, w: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            w,
            "{}: {}, {} rebuilt ({}), {} on disk",
            self.output.display(),
            count(self.blobs as u64, "blob"),
            count(self.rebuilt as u64, "gzip layer"),
            human_bytes(self.rebuilt_bytes),
            human_bytes(self.file_size)
        )?;
        if self.signature_dropped {
            writeln!(
                w,
                "note: the signature of {} covers its compact table of contents, so it is not carried over",
                self.bundle.display()
            )?;
        }
        Ok(())
    }
}

/// Writes the ordinary bundle of the (compact) bundle at `input` to `output`.
pub fn convert(
    input: &Path,
    output: &Path,
    zstd_level: i32,
    progress: &dyn Progress,
) -> anyhow::Result<ConvertSummary> {
    if output.exists() {
        bail!(
            "{} exists; remove it or choose another name",
            output.display()
        );
    }
    let bundle = Bundle::open(input)?;
    let mut toc = bundle.toc().clone();
    let compact = std::mem::take(&mut toc.compact);
    // Raw tars some manifest names as a layer of its own stay.
    let mut named: HashSet<Digest> = HashSet::new();
    for b in &toc.blobs {
        if media::is_manifest(&b.media_type) {
            let bytes = bundle.read_entry(&b.digest.blob_path(), DOC_LIMIT)?;
            if let Ok(m) = serde_json::from_slice::<ImageManifest>(&bytes) {
                named.extend(m.layers.into_iter().map(|l| l.digest));
            }
        }
    }
    let mut blobs: Vec<TocBlob> = Vec::with_capacity(toc.blobs.len() + compact.len());
    for b in &toc.blobs {
        let layers: Vec<TocBlob> = compact
            .iter()
            .filter(|c| c.raw == b.digest)
            .map(|c| TocBlob {
                digest: c.digest.clone(),
                size: c.size,
                media_type: c.media_type.clone(),
            })
            .collect();
        if layers.is_empty() || named.contains(&b.digest) {
            blobs.push(b.clone());
        }
        blobs.extend(layers);
    }
    toc.blobs = blobs;
    let manifest_json = docker_manifest(&bundle, &toc)?;
    let mtime = toc
        .created
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second().unsigned_abs());
    let mut options = WriteOptions::for_path(output);
    if let Compression::Zstd { level } = &mut options.compression {
        *level = zstd_level;
    }
    options.threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    options.mtime = mtime;
    let mut writer = BundleWriter::create(output, options)?;
    writer.add_head(&Head {
        toc: &serde_json::to_vec_pretty(&toc)?,
        signature: None,
        index_json: &bundle.read_entry("index.json", DOC_LIMIT)?,
        manifest_json: &manifest_json,
        repositories: &bundle.read_entry("repositories", DOC_LIMIT)?,
    })?;
    let total = toc.blobs.iter().map(|b| b.size).sum();
    progress.phase_of("converting", "blob", total, toc.blobs.len() as u64);
    for b in &toc.blobs {
        let item = progress.item(b.digest.short(), b.size);
        let mut reader = bundle.blob(&b.digest)?;
        let mut reader = crate::progress::ProgressReader::new(&mut reader, &*item);
        writer
            .add_blob(&b.digest, b.size, &mut reader)
            .with_context(|| format!("cannot write {} into {}", b.digest, output.display()))?;
        item.done();
    }
    progress.finish_phase();
    let written = writer.finish()?;
    Ok(ConvertSummary {
        bundle: input.to_path_buf(),
        output: output.to_path_buf(),
        rebuilt: compact.len(),
        rebuilt_bytes: compact.iter().map(|c| c.size).sum(),
        blobs: toc.blobs.len(),
        file_size: written.bytes,
        signature_dropped: bundle.entry(super::signature::SIG_NAME).is_some(),
    })
}

/// `manifest.json` with each image's layers named as its Docker manifest names them.
fn docker_manifest(bundle: &Bundle, toc: &super::toc::Toc) -> anyhow::Result<Vec<u8>> {
    let bytes = bundle.read_entry("manifest.json", DOC_LIMIT)?;
    let mut entries: Vec<DockerLoadEntry> =
        serde_json::from_slice(&bytes).context("manifest.json is not a docker load manifest")?;
    let dockers = toc.images.iter().filter_map(|i| i.docker.as_ref());
    for (entry, docker) in entries.iter_mut().zip(dockers) {
        let m = bundle.read_entry(&docker.manifest.blob_path(), DOC_LIMIT)?;
        let m: ImageManifest = serde_json::from_slice(&m)
            .with_context(|| format!("manifest {} is not an image manifest", docker.manifest))?;
        entry.layers = m.layers.iter().map(|l| l.digest.blob_path()).collect();
    }
    Ok(serde_json::to_vec_pretty(&entries)?)
}
