//! `airlock save`: from a list of inputs to one verified bundle file.
//!
//! The pipeline runs in four stages, each finishing before the next so that errors
//! are found as early and as cheaply as possible:
//! 1. **open** every input (registry manifests, local layouts and archives), in
//!    parallel; every input that fails is reported, not just the first;
//! 2. **walk** each image's graph ([`plan`]): child manifests and configs are fetched,
//!    verified and staged, layers are listed;
//! 3. **compose** the small documents ([`compose`]): TOC, `index.json`,
//!    `manifest.json`, written first so `ls` never reads a layer; with `--base`, the
//!    configs and layers the base has are dropped here ([`differential`]), so they are
//!    never fetched or written;
//! 4. **fetch** the layers concurrently ([`fetch`]) and append each, verified, to the
//!    bundle, which is renamed into place only when complete.

pub mod compose;
pub mod differential;
pub mod fetch;
pub mod plan;
pub mod staging;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use rayon::prelude::*;

use self::compose::{Named, collect_blobs, compose};
use self::fetch::{LayerJob, fetch_all};
use self::plan::{WalkedImage, Walker};
use self::staging::Staging;
use crate::bundle::toc::{TOC_NAME, TocImage};
use crate::bundle::writer::{BundleWriter, WriteOptions};
use crate::digest::Digest;
use crate::inventory::base::BaseSet;
use crate::progress::Progress;
use crate::registry::Client;
use crate::settings::SaveSettings;
use crate::source::{self, BlobStore, OpenContext, SourceImage};

/// What a save produced, for the closing report.
#[derive(Debug, serde::Serialize)]
pub struct SaveSummary {
    pub output: PathBuf,
    /// Names written (tags and digest-only names).
    pub images: Vec<TocImage>,
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
}

pub fn save(settings: &SaveSettings, progress: &dyn Progress) -> anyhow::Result<SaveSummary> {
    // A differential save reads its base first, so a wrong --base fails before any fetch.
    let base = settings.base.as_deref().map(BaseSet::open).transpose()?;
    let client = Client::new(settings.client.clone())?;
    let staging = Staging::beside(&settings.output)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(settings.jobs)
        .build()?;

    // 1. Open every input.
    let ctx = OpenContext {
        client: &client,
        staging: staging.root(),
        jobs: settings.jobs,
        progress,
    };
    let opened: Vec<anyhow::Result<Vec<SourceImage>>> = pool.install(|| {
        settings
            .inputs
            .par_iter()
            .map(|input| {
                source::open(&input.text, &input.spec, &ctx)
                    .with_context(|| format!("cannot get `{}`", input.text))
            })
            .collect()
    });
    let images: Vec<SourceImage> = all_or_report(opened, "image")?
        .into_iter()
        .flatten()
        .collect();

    // 2. Walk every image's graph.
    let walker = Walker {
        staging: &staging,
        platforms: settings.platforms.as_deref(),
    };
    let walked: Vec<anyhow::Result<WalkedImage>> = pool.install(|| {
        images
            .par_iter()
            .map(|img| {
                walker
                    .walk(img)
                    .with_context(|| format!("cannot read `{}`", img.input))
            })
            .collect()
    });
    let walked = all_or_report(walked, "image")?;

    // 3. Names, blobs and the small documents.
    let named = name_images(&images, &walked)?;
    let used: Vec<&WalkedImage> = named.iter().map(|n| n.image).collect();
    let (blobs, layers) = collect_blobs(&used);
    let (blobs, layers, toc_base) = differential::leave_out(base.as_ref(), &used, blobs, layers);
    let docs = compose(&named, &blobs, &settings.docker_platform, toc_base)?;
    let layer_jobs = layer_jobs(&layers, &named);

    // 4. Write: small entries first, then layers as they arrive.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let options = WriteOptions {
        compression: settings.compression,
        threads,
    };
    let mut writer = BundleWriter::create_split(&settings.output, options, settings.split)?;
    writer.add_file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    writer.add_file(TOC_NAME, &serde_json::to_vec_pretty(&docs.toc)?)?;
    writer.add_file("index.json", &docs.index_json)?;
    writer.add_file("manifest.json", &docs.manifest_json)?;
    writer.add_file("repositories", &docs.repositories)?;
    writer.add_dir("blobs")?;
    writer.add_dir("blobs/sha256")?;
    let layer_set: std::collections::BTreeSet<&Digest> = layers.iter().map(|d| &d.digest).collect();
    for blob in blobs.iter().filter(|b| !layer_set.contains(&b.digest)) {
        let mut f = staging
            .open(&blob.digest)
            .with_context(|| format!("staged {} is missing", blob.digest))?;
        writer.add_blob(&blob.digest, blob.size, &mut f)?;
    }
    let layer_bytes = layers.iter().map(|d| d.size).sum();
    progress.phase("fetching", layer_bytes, layers.len() as u64);
    fetch_all(
        layer_jobs,
        &staging,
        settings.jobs,
        progress,
        |job, mut file| {
            writer
                .add_blob(&job.desc.digest, job.desc.size, &mut file)
                .with_context(|| format!("cannot write {} into the bundle", job.desc.digest))
        },
    )?;
    progress.finish_phase();
    let written = writer.finish()?;
    Ok(SaveSummary {
        omitted: docs.toc.base.as_ref().map_or(0, |b| b.omitted.len()),
        omitted_bytes: docs.toc.base.as_ref().map_or(0, |b| b.omitted_bytes()),
        output: settings.output.clone(),
        blobs: blobs.len(),
        blob_bytes: blobs.iter().map(|b| b.size).sum(),
        file_size: written.bytes,
        parts: written
            .split
            .as_ref()
            .map(|s| s.parts.clone())
            .unwrap_or_default(),
        images: docs.toc.images,
    })
}

/// Collects every result; if any failed, one error lists them all.
fn all_or_report<T>(results: Vec<anyhow::Result<T>>, what: &str) -> anyhow::Result<Vec<T>> {
    let (ok, errors): (Vec<_>, Vec<_>) = results.into_iter().partition(|r| r.is_ok());
    if errors.is_empty() {
        return Ok(ok.into_iter().map(|r| r.expect("partitioned")).collect());
    }
    let errors: Vec<anyhow::Error> = errors
        .into_iter()
        .map(|r| r.err().expect("partitioned"))
        .collect();
    if errors.len() == 1 {
        return Err(errors.into_iter().next().expect("one error"));
    }
    let mut msg = format!("{} {what}s failed:", errors.len());
    for e in &errors {
        let _ = write!(msg, "\n  - {e:#}");
    }
    bail!(msg)
}

/// One entry per distinct name; the same name asked for twice must mean the same image.
fn name_images<'a>(
    images: &'a [SourceImage],
    walked: &'a [WalkedImage],
) -> anyhow::Result<Vec<Named<'a>>> {
    let mut out: Vec<Named<'a>> = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (image, w) in images.iter().zip(walked) {
        for name in &image.names {
            let key = name.to_string();
            if let Some(&i) = seen.get(&key) {
                if out[i].image.root.digest != w.root.digest {
                    bail!(
                        "`{key}` is asked for twice with different content: {} (from `{}`) and {} (from `{}`)",
                        out[i].image.root.digest,
                        out[i].input,
                        w.root.digest,
                        image.input
                    );
                }
                continue;
            }
            seen.insert(key, out.len());
            out.push(Named {
                name: name.clone(),
                input: &image.input,
                image: w,
            });
        }
    }
    Ok(out)
}

/// One fetch job per unique layer, from the first image that has it, naming every image that uses it.
fn layer_jobs(layers: &[crate::oci::Descriptor], named: &[Named<'_>]) -> Vec<LayerJob> {
    let mut users: BTreeMap<&Digest, (Arc<dyn BlobStore>, Vec<String>)> = BTreeMap::new();
    for n in named {
        for l in &n.image.layers {
            let entry = users
                .entry(&l.digest)
                .or_insert_with(|| (Arc::clone(&n.image.store), Vec::new()));
            entry.1.push(n.name.to_string());
        }
    }
    layers
        .iter()
        .map(|d| {
            let (store, images) = users
                .remove(&d.digest)
                .expect("every layer comes from a named image");
            LayerJob {
                desc: d.clone(),
                store,
                images,
            }
        })
        .collect()
}
