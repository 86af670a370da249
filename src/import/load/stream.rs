//! Writes the `docker load` tar for planned images straight from the bundle's blobs.
//!
//! Layout (formats.md §1): `manifest.json` first, one entry per name with
//! `"Config": "blobs/sha256/<hex>"`, `"RepoTags"` and `"Layers"`, then every config and
//! layer once under `blobs/sha256/`. Each blob is read through a
//! [`VerifyingReader`], so a damaged blob makes the write fail (the caller aborts the
//! stream; nothing half-checked reaches Docker). Gzip and plain layers pass through
//! byte for byte. A zstd layer, which Docker 20.10 cannot read, is decompressed into an
//! anonymous temporary file in the scratch directory first, because a tar header
//! carries the size before the content; its sha256 must equal the config's diff_id and
//! it is stored under that digest.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, anyhow, bail};

use super::pipe::ReaderGone;
use super::plan::{PlannedImage, PlannedLayer};
use crate::bundle::Bundle;
use crate::digest::{Digest, Hasher, Mismatch, VerifyingReader};
use crate::oci::{Descriptor, DockerLoadEntry};
use crate::progress::{Item, Progress, ProgressReader};

/// What went into the tar.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TarStats {
    /// Configs and layers written (each once).
    pub blobs: u64,
    /// zstd layers decompressed on the way.
    pub decompressed: u64,
}

/// A blob to write, once.
enum Part<'a> {
    Config(&'a Descriptor),
    Layer(&'a PlannedLayer),
}

impl Part<'_> {
    fn blob(&self) -> &Descriptor {
        match self {
            Part::Config(d) => d,
            Part::Layer(l) => &l.blob,
        }
    }
    fn path(&self) -> String {
        match self {
            Part::Config(d) => d.digest.blob_path(),
            Part::Layer(l) => l.path(),
        }
    }
}

/// Writes the whole tar for `images` into `out` and returns `out`. `scratch` is where
/// decompressed zstd layers are staged (one at a time, deleted at once).
pub(crate) fn write_docker_tar<W: Write>(
    bundle: &Bundle,
    images: &[PlannedImage],
    out: W,
    scratch: &Path,
    progress: &dyn Progress,
) -> anyhow::Result<(W, TarStats)> {
    let users = super::plan::users(images);
    let entries: Vec<DockerLoadEntry> = images
        .iter()
        .map(|i| DockerLoadEntry {
            config: i.config.digest.blob_path(),
            repo_tags: i.tag.clone().map(|t| vec![t]),
            layers: i.layers.iter().map(PlannedLayer::path).collect(),
        })
        .collect();
    let manifest_json = serde_json::to_vec_pretty(&entries)?;

    // Configs first (small), then layers; each path once.
    let mut seen = BTreeSet::new();
    let mut parts = Vec::new();
    for i in images {
        let p = Part::Config(&i.config);
        if seen.insert(p.path()) {
            parts.push(p);
        }
    }
    for i in images {
        for l in &i.layers {
            let p = Part::Layer(l);
            if seen.insert(p.path()) {
                parts.push(p);
            }
        }
    }
    let total: u64 = parts.iter().map(|p| p.blob().size).sum();
    progress.phase("loading", total, parts.len() as u64);

    let mut tar = tar::Builder::new(out);
    let mut stats = TarStats::default();
    let res = (|| -> anyhow::Result<()> {
        for dir in ["blobs/", "blobs/sha256/"] {
            let mut h = header(tar::EntryType::Directory, 0o755, 0);
            tar.append_data(&mut h, dir, io::empty())
                .map_err(|e| classify(bundle, None, &users, e))?;
        }
        let mut h = header(tar::EntryType::Regular, 0o644, manifest_json.len() as u64);
        tar.append_data(&mut h, "manifest.json", &manifest_json[..])
            .map_err(|e| classify(bundle, None, &users, e))?;
        for part in &parts {
            write_part(
                &mut tar, bundle, part, &users, scratch, progress, &mut stats,
            )?;
            stats.blobs += 1;
        }
        Ok(())
    })();
    res?;
    progress.finish_phase();
    let out = tar
        .into_inner()
        .map_err(|e| classify(bundle, None, &users, e))?;
    Ok((out, stats))
}

fn write_part<W: Write>(
    tar: &mut tar::Builder<W>,
    bundle: &Bundle,
    part: &Part<'_>,
    users: &BTreeMap<Digest, Vec<String>>,
    scratch: &Path,
    progress: &dyn Progress,
    stats: &mut TarStats,
) -> anyhow::Result<()> {
    let blob = part.blob();
    let kind = match part {
        Part::Config(_) => "config",
        Part::Layer(_) => "layer",
    };
    let item = progress.item(&format!("{kind} {}", blob.digest.short()), blob.size);
    let path = part.path();
    match part {
        Part::Layer(l) if l.decompress => {
            let (file, len) = decompress(bundle, l, users, scratch, &*item)?;
            let mut h = header(tar::EntryType::Regular, 0o644, len);
            tar.append_data(&mut h, &path, MarkReads(file))
                .map_err(|e| classify(bundle, None, users, e))
                .with_context(|| format!("copying the decompressed layer {}", l.diff_id))?;
            stats.decompressed += 1;
        }
        _ => {
            let reader = open_verified(bundle, blob, users)?;
            let mut h = header(tar::EntryType::Regular, 0o644, blob.size);
            tar.append_data(&mut h, &path, ProgressReader::new(reader, &*item))
                .map_err(|e| classify(bundle, Some(&blob.digest), users, e))?;
        }
    }
    item.done();
    Ok(())
}

/// The blob's bytes, checked against its digest and size as they are read.
fn open_verified<'b>(
    bundle: &'b Bundle,
    blob: &Descriptor,
    users: &BTreeMap<Digest, Vec<String>>,
) -> anyhow::Result<MarkReads<VerifyingReader<Box<dyn Read + Send + 'b>>>> {
    let raw = bundle.blob(&blob.digest).with_context(|| {
        format!(
            "blob {} is needed by {}",
            blob.digest,
            names(users, &blob.digest)
        )
    })?;
    Ok(MarkReads(VerifyingReader::new(
        raw,
        blob.digest.clone(),
        blob.size,
    )))
}

/// Decompresses a zstd layer into an anonymous temp file in `scratch`, checks its
/// diff_id, and returns the file (rewound) with its size.
fn decompress(
    bundle: &Bundle,
    layer: &PlannedLayer,
    users: &BTreeMap<Digest, Vec<String>>,
    scratch: &Path,
    item: &dyn Item,
) -> anyhow::Result<(File, u64)> {
    let d = &layer.blob.digest;
    let raw = open_verified(bundle, &layer.blob, users)?;
    let mut file = tempfile::tempfile_in(scratch).with_context(|| {
        format!(
            "creating a temporary file in `{}` to decompress zstd layer {d} (Docker 20.10 cannot read zstd)",
            scratch.display()
        )
    })?;
    let not_zstd = |e: io::Error| {
        if is_read_failure(&e) {
            return classify(bundle, Some(d), users, e);
        }
        anyhow!(
            "zstd layer {d} of {} in bundle `{}` cannot be decompressed ({e}); the blob is damaged: run `airlock verify {}` and use a sound copy of the bundle",
            names(users, d),
            bundle.path().display(),
            bundle.path().display()
        )
    };
    let mut dec = zstd::stream::read::Decoder::new(ProgressReader::new(raw, item))
        .context("starting a zstd decoder")?;
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = dec.read(&mut buf).map_err(not_zstd)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).with_context(|| {
            format!(
                "writing decompressed layer {d} to a temporary file in `{}` (is the disk full?)",
                scratch.display()
            )
        })?;
    }
    // Read the compressed blob to its end, so its digest is checked too.
    io::copy(&mut dec.finish(), &mut io::sink())
        .map_err(|e| classify(bundle, Some(d), users, e))?;
    let (actual, len) = hasher.finish();
    if actual != layer.diff_id {
        bail!(
            "zstd layer {d} of {} decompresses to {actual}, but the image config says its diff_id is {}; Docker would reject the image (it is inconsistent at the source)",
            names(users, d),
            layer.diff_id
        );
    }
    file.seek(SeekFrom::Start(0))
        .context("rewinding the decompressed layer")?;
    Ok((file, len))
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    // GNU headers carry sizes past 8 GiB, which ustar cannot.
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h
}

/// Marks errors that come from reading (the bundle, a temp file), so that a failed
/// tar append can be told apart from a failed write of the output.
struct MarkReads<R>(R);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ReadFailed(io::Error);

impl<R: Read> Read for MarkReads<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), ReadFailed(e)))
    }
}

fn is_read_failure(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<ReadFailed>())
}

fn names(users: &BTreeMap<Digest, Vec<String>>, d: &Digest) -> String {
    users
        .get(d)
        .map(|v| v.join(", "))
        .unwrap_or_else(|| "no image".to_string())
}

/// Turns a failed tar append into an error that names the blob and the images needing
/// it (read side), or says the output stopped (write side).
fn classify(
    bundle: &Bundle,
    blob: Option<&Digest>,
    users: &BTreeMap<Digest, Vec<String>>,
    e: io::Error,
) -> anyhow::Error {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<ReadFailed>());
    if let Some(ReadFailed(read)) = inner {
        let path = bundle.path().display();
        let what = blob.map_or_else(|| "a blob".to_string(), |d| format!("blob {d}"));
        let needed = blob.map_or_else(String::new, |d| format!(" (needed by {})", names(users, d)));
        if let Some(m) = Mismatch::from_io(read) {
            return anyhow!(
                "{what} in bundle `{path}` is damaged: {m}{needed}. Run `airlock verify {path}` and use a sound copy of the bundle"
            );
        }
        return anyhow!("reading {what} from bundle `{path}`{needed}: {read}");
    }
    if e.get_ref().is_some_and(|i| i.is::<ReaderGone>()) {
        return anyhow::Error::new(ReaderGone);
    }
    // Not an io::Error in the chain: a broken pipe here must not look like success.
    anyhow!("writing the docker load stream: {e}")
}
