//! `airlock save`: from a list of inputs to one verified bundle file.
//!
//! The pipeline runs in four stages, each finishing before the next so that errors
//! are found as early and as cheaply as possible:
//! 1. **open** every input (registry manifests, local layouts and archives), in
//!    parallel; every input that fails is reported, not just the first;
//! 2. **walk** each image's graph ([`plan`]): child manifests and configs are fetched,
//!    verified and staged, layers are listed; then what refers to each manifest saved
//!    (signatures, attestations, SBOMs: [`referrers`]) is found, its manifests staged
//!    and its blobs listed with the layers;
//! 3. **compose** the small documents ([`compose`]): TOC, `index.json`,
//!    `manifest.json`, written first so `ls` never reads a layer; with `--base`, the
//!    configs and layers the base has are dropped here ([`differential`]), so they are
//!    never fetched or written;
//! 4. **fetch** the layers concurrently ([`fetch`]) and append each, verified, to the
//!    bundle in a fixed order (the order `collect_blobs` gives, whatever the order
//!    they arrive in), through a bounded prefetch window ([`window`]), so each byte
//!    reaches the output's disk once; the bundle is renamed into place only when
//!    complete.
//!
//! Nothing in the bundle depends on timing: with the creation time pinned (`--created`,
//! `SOURCE_DATE_EPOCH`: the TOC's `created` and every entry's mtime), two saves of the
//! same inputs are byte-identical, whatever `--jobs` and the network do.
//!
//! [`save`] takes the output's lock, its scratch space (in `--scratch DIR`, never
//! beside the output; [`staging`]) and any partial bundle to resume from, then runs the
//! stages in order: `open_all`, `walk_all`, `compose` (with `name_images`,
//! `collect_blobs` and `differential::leave_out`) and `write_bundle`, which writes the
//! head ([`BundleWriter::add_head`]), the staged small blobs and the layers, with
//! [`resume::Reuse`] doing the bookkeeping of a resumed run. With `--sign-key`, the
//! head carries the signature of the bundle statement (over the TOC bytes just
//! serialized, and the base's identity for a differential bundle), and a split bundle's
//! parts index is signed when it is written ([`crate::bundle::signature`]).
//!
//! A save can be resumed ([`resume`]): it holds a lock on its output, writes to a fixed
//! hidden name, and when it fails or is interrupted (Ctrl-C, SIGTERM) after layers
//! started arriving it keeps that partial bundle and says so. Run again, it takes every
//! layer the partial bundle holds from there (verified) instead of the network.

mod admit;
mod compact;
pub mod compose;
pub mod differential;
pub mod fetch;
pub mod plan;
pub mod referrers;
pub mod resume;
mod similar;
pub mod staging;
pub mod summary;
pub mod window;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::{Context, bail};
use rayon::prelude::*;

use self::compose::{Documents, Named, collect_blobs, compose};
use self::fetch::{LayerJob, Origin, fetch_all};
use self::plan::{WalkedImage, Walker};
use self::staging::Staging;
use crate::bundle::output::OutputFiles;
use crate::bundle::resume::Partial;
use crate::bundle::signature::{self, BundleStatement};
use crate::bundle::toc::TocBlob;
use crate::bundle::writer::{BundleWriter, Frames, Head, WriteOptions, WriteSummary};
use crate::digest::Digest;
use crate::interrupt::{self, Interrupted};
use crate::inventory::base::BaseSet;
use crate::oci::Descriptor;
use crate::progress::{Progress, blob_label, human_bytes};
use crate::registry::Client;
use crate::settings::SaveSettings;
use crate::source::{self, BlobStore, OpenContext, SourceImage};

pub use self::summary::SaveSummary;

/// Where the layers of this run came from.
#[derive(Debug, Default)]
struct Tally {
    reused: usize,
    reused_bytes: u64,
    fetched: usize,
    fetched_bytes: u64,
}

impl Tally {
    fn add(&mut self, origin: Origin, size: u64) {
        match origin {
            Origin::Reused => {
                self.reused += 1;
                self.reused_bytes += size;
            }
            Origin::Fetched => {
                self.fetched += 1;
                self.fetched_bytes += size;
            }
        }
    }
}

/// The error of a save stopped before the writer started: only an earlier partial
/// bundle (if any) is kept.
fn stopped_early(e: anyhow::Error, resume: Option<&Partial>) -> anyhow::Error {
    let kept = resume.map(|p| {
        format!(
            "the partial bundle of the earlier run is kept in {} ({} blobs, {}); run the same command \
             again to resume, or add --fresh to start over",
            resume::describe_files(p.files()),
            p.len(),
            human_bytes(p.bytes())
        )
    });
    if interrupt::requested() {
        return Interrupted(match kept {
            Some(k) => format!("interrupted; {k}"),
            None => "interrupted before any layer was fetched; nothing was written".to_string(),
        })
        .into();
    }
    match kept {
        Some(k) => e.context(crate::hint::Hint(k)),
        None => e,
    }
}

/// A compact save that stopped after its writer started: it keeps its own partial
/// bundle or the earlier run's, whichever holds more (`kept`, from
/// [`resume::keep_compact`]: only complete frames count), and the message says what.
fn compact_stopped(
    e: anyhow::Error,
    kept: Option<(Vec<std::path::PathBuf>, (usize, u64))>,
    all: (usize, u64),
    output: &std::path::Path,
) -> anyhow::Error {
    let notice = match kept {
        Some((files, held)) => resume::kept_notice(&files, held, all),
        None => "no frame of the compact bundle was complete yet, so nothing is kept".to_string(),
    };
    stopped_keeping(e, &notice, output)
}

/// A save that stopped after its writer started, with `notice` saying what is kept:
/// "interrupted; …" after Ctrl-C, otherwise the error with the notice as its hint.
fn stopped_keeping(e: anyhow::Error, notice: &str, output: &std::path::Path) -> anyhow::Error {
    let e = if interrupt::requested() {
        Interrupted(format!("interrupted; {notice}")).into()
    } else {
        e.context(crate::hint::Hint(format!(
            "the save of {} stopped; {notice}",
            output.display()
        )))
    };
    Stopped(e).into()
}

/// Fails with [`Interrupted`] once Ctrl-C has been pressed.
fn check_interrupt() -> anyhow::Result<()> {
    if interrupt::requested() {
        return Err(Interrupted("interrupted".to_string()).into());
    }
    Ok(())
}

pub fn save(settings: &SaveSettings, progress: &dyn Progress) -> anyhow::Result<SaveSummary> {
    // A differential save reads its base first, so a wrong --base fails before any fetch.
    let base = settings.base.as_deref().map(BaseSet::open).transpose()?;
    let client = Client::new(settings.client.clone())?;
    let output_files = OutputFiles::new(&settings.output);
    let _lock = resume::OutputLock::acquire(&output_files)?;
    let staging = Staging::create(&settings.scratch, &output_files)?;
    let partial = resume::prepare(&output_files, settings.fresh)?;
    if let Some(p) = &partial {
        progress.message(&format!(
            "resuming: {} holds {} blobs ({}) of an interrupted save; they are reused where they are still sound",
            resume::describe_files(p.files()),
            p.len(),
            human_bytes(p.bytes())
        ));
    }
    let result = save_with(
        settings,
        &output_files,
        progress,
        base.as_ref(),
        &client,
        &staging,
        partial.as_ref(),
    );
    result.map_err(|e| match e.downcast::<Stopped>() {
        Ok(stopped) => stopped.0,
        Err(e) => stopped_early(e, partial.as_ref()),
    })
}

/// An error already explained (what was kept, how to go on): passed through as is.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct Stopped(anyhow::Error);

fn save_with(
    settings: &SaveSettings,
    output_files: &OutputFiles,
    progress: &dyn Progress,
    base: Option<&BaseSet>,
    client: &Client,
    staging: &Staging,
    partial: Option<&Partial>,
) -> anyhow::Result<SaveSummary> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(settings.jobs)
        .build()?;
    // 1. Open every input.
    let ctx = OpenContext {
        client,
        staging: staging.root(),
        jobs: settings.jobs,
        progress,
    };
    let images = open_all(settings, &ctx, &pool)?;
    // 2. Walk every image's graph.
    let walked = walk_all(settings, staging, &images, &pool)?;

    // 3. Names, blobs and the small documents.
    let named = name_images(&images, &walked)?;
    let used: Vec<&WalkedImage> = named.iter().map(|n| n.image).collect();
    let (blobs, layers) = collect_blobs(&used);
    let (blobs, layers, toc_base) = differential::leave_out(base, &used, blobs, layers);
    // A pinned time (`--created`, `SOURCE_DATE_EPOCH`) makes the bundle reproducible.
    let created = settings.created.unwrap_or_else(jiff::Timestamp::now);
    let mut docs = compose(&named, &blobs, &settings.docker_platform, toc_base, created)?;
    // --policy: every image judged before the trip (no layer fetched, nothing written).
    if let Some(policy) = &settings.policy {
        admit::check(policy, &docs.toc, &named, staging)?;
    }
    let layer_jobs = layer_jobs(&layers, &named);
    // --compact: which gzip layers go in as raw tar + recipe (the head must say so).
    let identified = if settings.compact {
        compact::identify_all(&layer_jobs, partial, &pool, progress)?
    } else {
        compact::Identified::default()
    };
    // Similar compact layers side by side, so that they share a zstd frame.
    let (mut layer_jobs, placement) = compact::arrange(layer_jobs, &identified);
    let recipes = identified.recipes;
    compact::apply(&mut docs, &recipes);
    let mut reuse = resume::Reuse::plan(partial, &mut layer_jobs, &recipes);

    // 4. Write: small entries first, then layers as they arrive.
    let bundle = Planned {
        docs: &docs,
        blobs: &blobs,
        layers: &layers,
        recipes: &recipes,
        placement: &placement,
        base_identity: base
            .filter(|_| docs.toc.base.is_some())
            .map(|b| &b.identity),
    };
    let (written, tally) = write_bundle(
        settings,
        output_files,
        staging,
        progress,
        &bundle,
        layer_jobs,
        &mut reuse,
    )?;
    let resumed_from = reuse.partial().map(|p| p.files()[0].clone());
    reuse.finish();
    let split = written.split.as_ref();
    Ok(SaveSummary {
        reused: tally.reused,
        reused_bytes: tally.reused_bytes,
        fetched: tally.fetched,
        fetched_bytes: tally.fetched_bytes,
        resumed_from,
        omitted: docs.toc.base.as_ref().map_or(0, |b| b.omitted.len()),
        omitted_bytes: docs.toc.base.as_ref().map_or(0, |b| b.omitted_bytes()),
        output: settings.output.clone(),
        blobs: blobs.len(),
        blob_bytes: blobs.iter().map(|b| b.size).sum(),
        file_size: written.bytes,
        parts: split.map(|s| s.parts.clone()).unwrap_or_default(),
        left_alone: split.map(|s| s.left_alone.clone()).unwrap_or_default(),
        images: docs.toc.images,
        artifacts: docs.toc.artifacts,
    })
}

/// Stage 1: opens every input in parallel; every input that fails is reported.
fn open_all(
    settings: &SaveSettings,
    ctx: &OpenContext<'_>,
    pool: &rayon::ThreadPool,
) -> anyhow::Result<Vec<SourceImage>> {
    let opened: Vec<anyhow::Result<Vec<SourceImage>>> = pool.install(|| {
        settings
            .inputs
            .par_iter()
            .map(|input| {
                check_interrupt()?;
                source::open(&input.text, &input.spec, ctx)
                    .with_context(|| format!("cannot get `{}`", input.text))
            })
            .collect()
    });
    check_interrupt()?;
    Ok(all_or_report(opened, "image")?
        .into_iter()
        .flatten()
        .collect())
}

/// Stage 2: walks every image's graph in parallel (children and configs fetched,
/// verified and staged; layers listed).
fn walk_all(
    settings: &SaveSettings,
    staging: &Staging,
    images: &[SourceImage],
    pool: &rayon::ThreadPool,
) -> anyhow::Result<Vec<WalkedImage>> {
    let walker = Walker {
        staging,
        platforms: settings.platforms.as_deref(),
        referrers: settings.referrers.as_ref(),
    };
    let walked: Vec<anyhow::Result<WalkedImage>> = pool.install(|| {
        images
            .par_iter()
            .map(|img| {
                check_interrupt()?;
                walker
                    .walk(img)
                    .with_context(|| format!("cannot read `{}`", img.input))
            })
            .collect()
    });
    check_interrupt()?;
    all_or_report(walked, "image")
}

/// What stage 3 decided the bundle holds.
struct Planned<'a> {
    docs: &'a Documents,
    /// Every blob, in bundle order.
    blobs: &'a [TocBlob],
    /// The layers among them, fetched in stage 4.
    layers: &'a [Descriptor],
    /// `--compact`: the gzip layers written as raw tar + recipe.
    recipes: &'a compact::Recipes,
    /// `--compact`: which layers share a frame with similar ones.
    placement: &'a compact::Placement,
    /// A differential bundle's base, as its signed statement names it.
    base_identity: Option<&'a Digest>,
}

/// Stage 4: writes the head and the staged small blobs, then every layer as it arrives
/// (from the interrupted run's partial bundle or from its source), and renames the
/// bundle into place. A save stopped after layers started arriving keeps what it has
/// and says how to go on (a [`Stopped`] error).
fn write_bundle(
    settings: &SaveSettings,
    output_files: &OutputFiles,
    staging: &Staging,
    progress: &dyn Progress,
    bundle: &Planned<'_>,
    layer_jobs: Vec<LayerJob>,
    reuse: &mut resume::Reuse<'_>,
) -> anyhow::Result<(WriteSummary, Tally)> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let options = WriteOptions {
        compression: settings.compression,
        threads,
        mtime: settings.created.map(|t| t.as_second().unsigned_abs()),
        // Raw layer tars compress against each other only inside one frame (a compact
        // save that found no recipe holds only gzip layers: ordinary frames).
        frames: if !bundle.recipes.is_empty() {
            Frames::Coarse
        } else {
            Frames::PerEntry
        },
    };
    let mut writer = BundleWriter::create_files(output_files, options, settings.split)?;
    let toc = serde_json::to_vec_pretty(&bundle.docs.toc)?;
    let signature = (!settings.sign_keys.is_empty()).then(|| {
        let statement = BundleStatement::of_toc(&bundle.docs.toc, &toc, bundle.base_identity);
        signature::bundle_signature_entry(&settings.sign_keys, &statement)
    });
    writer.add_head(&Head {
        toc: &toc,
        signature: signature.as_deref(),
        index_json: &bundle.docs.index_json,
        manifest_json: &bundle.docs.manifest_json,
        repositories: &bundle.docs.repositories,
    })?;
    let layer_set: BTreeSet<&Digest> = bundle.layers.iter().map(|d| &d.digest).collect();
    check_interrupt()?;
    for blob in bundle
        .blobs
        .iter()
        .filter(|b| !layer_set.contains(&b.digest))
    {
        let mut f = staging
            .open(&blob.digest)
            .with_context(|| format!("staged {} is missing", blob.digest))?;
        writer.add_blob(&blob.digest, blob.size, &mut f)?;
    }
    let layer_bytes = bundle.layers.iter().map(|d| d.size).sum();
    let all = (
        bundle.blobs.len(),
        bundle.blobs.iter().map(|b| b.size).sum::<u64>(),
    );
    // Counted as layers: the bundle's other blobs (configs, manifests) are already written.
    progress.phase_of("fetching", "layer", layer_bytes, bundle.layers.len() as u64);
    let mut tally = Tally::default();
    let fetched = fetch_all(
        layer_jobs,
        staging,
        settings.jobs,
        reuse.partial(),
        progress,
        |job, origin, data| {
            match bundle.recipes.get(&job.desc.digest) {
                Some(found) => {
                    let place = bundle.placement.get(&job.desc.digest);
                    if reuse.takes_raw(job) {
                        compact::write_kept(&mut writer, job, found, place, data)?
                    } else {
                        compact::write_layer(&mut writer, job, found, place, data)?
                    }
                }
                None => writer
                    .add_blob(&job.desc.digest, job.desc.size, data)
                    .with_context(|| format!("cannot write {} into the bundle", job.desc.digest))?,
            }
            // From the first layer on, what is written is worth keeping (a compact
            // bundle's coarse frames too: only those complete, without waiting for any).
            writer.keep_on_drop(true);
            tally.add(reuse.origin(job, origin), job.desc.size);
            reuse.copied(job);
            Ok(())
        },
    )
    .and_then(|()| check_interrupt());
    progress.finish_phase();
    let files = writer.partial_files();
    let written_so_far = writer.blobs_written();
    let stopped = |e: anyhow::Error, writer_kept: bool| -> anyhow::Error {
        // While the earlier partial bundle still exists, it holds more than the new one.
        let notice = match (reuse.pending(), writer_kept) {
            (Some(p), _) => resume::kept_notice(p.files(), (p.len(), p.bytes()), all),
            (None, true) => resume::kept_notice(&files, written_so_far, all),
            (None, false) => return Stopped(stopped_early(e, None)).into(),
        };
        stopped_keeping(e, &notice, &settings.output)
    };
    let has_layers = tally.reused + tally.fetched > 0;
    let coarse = !bundle.recipes.is_empty();
    let output = settings.output.as_path();
    if let Err(e) = fetched {
        if coarse {
            writer.keep_on_drop(has_layers);
            drop(writer);
            let kept = resume::keep_compact(reuse, files);
            return Err(compact_stopped(e, kept, all, output));
        }
        // The earlier partial bundle, when still there, is kept instead of the new one.
        let keep_new = has_layers && reuse.pending().is_none();
        writer.keep_on_drop(keep_new);
        let err = stopped(e, keep_new);
        drop(writer);
        return Err(err);
    }
    let index_signer = signature::parts_signer(&settings.sign_keys);
    progress.step("finishing", finishing_steps(settings.split.is_some()));
    let written = writer
        .finish_signed((!settings.sign_keys.is_empty()).then_some(&index_signer as _))
        .map_err(|e| {
            if coarse {
                let kept = resume::keep_compact(reuse, files.clone());
                compact_stopped(e.into(), kept, all, output)
            } else {
                stopped(e.into(), has_layers)
            }
        });
    match &written {
        Ok(_) => progress.finish_phase(),
        Err(_) => progress.abandon_phase(),
    }
    let written = written?;
    Ok((written, tally))
}

/// What finishing a bundle does after its last byte arrived, for the progress reporter.
fn finishing_steps(split: bool) -> &'static str {
    if split {
        "flushing the compressor, syncing to disk, renaming the parts into place, writing the parts index"
    } else {
        "flushing the compressor, syncing to disk, renaming into place"
    }
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

/// One fetch job per unique layer, from the first image that has it, naming every image
/// that uses it and labelled for progress as layer n/m of that first image.
fn layer_jobs(layers: &[Descriptor], named: &[Named<'_>]) -> Vec<LayerJob> {
    type Users = (Arc<dyn BlobStore>, Vec<String>, (usize, usize));
    let mut users: BTreeMap<&Digest, Users> = BTreeMap::new();
    for n in named {
        let of = n.image.layers.len();
        for (i, l) in n.image.layers.iter().enumerate() {
            let entry = users
                .entry(&l.digest)
                .or_insert_with(|| (Arc::clone(&n.image.store), Vec::new(), (i + 1, of)));
            entry.1.push(n.name.to_string());
        }
    }
    layers
        .iter()
        .map(|d| {
            let (store, images, (layer, of)) = users
                .remove(&d.digest)
                .expect("every layer comes from a named image");
            LayerJob {
                label: blob_label(d.digest.short(), &images[0], images.len() - 1, layer, of),
                desc: d.clone(),
                store,
                images,
            }
        })
        .collect()
}
