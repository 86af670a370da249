//! `save --compact`: gzip layers stored as their raw tar plus a recipe.
//!
//! The bundle's head (TOC, `manifest.json`) is written before any layer, and it must
//! already say which layers are stored raw and how to rebuild them. So the encoders are
//! found in a pass of their own before the head ([`identify_all`]): every gzip layer is
//! read once from its source, verified, and run through [`find_recipe`] (parallel
//! across layers, bounded memory: one identification per worker). That pass is the
//! proof: a recipe is only returned when its encoder rebuilt the whole blob from the
//! raw bytes, and the raw bytes' sha256 is recorded with it. [`apply`] then rewrites the
//! documents: the layer leaves `blobs[]` for its raw tar, the TOC's `compact` gets its
//! recipe, and `manifest.json` points at the raw tar so that `zstd -dc | docker load`
//! still works. When its turn comes, [`write_layer`] decompresses the layer (fetched a
//! second time, verified again) into the raw entry, which the writer hashes: the save
//! fails unless the stored bytes have the sha256 the recipe was proven on, so no recipe
//! is written that was not proven on the very bytes stored — with one encoder run per
//! layer, not two.
//!
//! Reading each layer twice from its source is the price of the head-first layout; a
//! later version can keep the identified layers in the scratch space instead.
//!
//! **Resuming.** A rerun of an interrupted compact save finds the raw tars its partial
//! bundle holds, with the recipes of the partial's TOC ([`Partial::compact_layer`]).
//! [`identify_all`] proves such a recipe again without the network: the raw bytes read
//! from the partial must have the recipe's raw sha256, and the gzip rebuilt from them
//! the layer's digest and size, exactly the proof a fresh identification gives (nothing
//! in the partial is trusted). A layer that fails is [forgotten](Partial::forget) there
//! and identified from its source as usual. A gzip layer the partial holds as it is (no
//! recipe) is identified from that copy, verified against its digest. The fetch stage
//! then stores the proven raw bytes from the partial ([`write_kept`], checked again
//! against the raw sha256 by the writer); `resume::Reuse` decides which layers those are.

use std::collections::BTreeMap;
use std::io::{self, Read};

use anyhow::Context;
use rayon::prelude::*;

use super::check_interrupt;
use super::compose::Documents;
use super::fetch::LayerJob;
use super::similar::{self, Candidate, Place, Sketch, SketchBuilder};
use crate::bundle::resume::Partial;
use crate::bundle::toc::{RAW_LAYER_TYPE, TocBlob, TocCompact};
use crate::bundle::writer::BundleWriter;
use crate::digest::{Digest, VerifyingReader};
use crate::interrupt::{self, InterruptibleReader};
use crate::progress::{Progress, ProgressReader, human_bytes};
use crate::regzip::header::GzipError;
use crate::regzip::recipe::{
    EncoderSpec, Found, RebuildReader, default_encoders, find_recipe_seeing,
};

/// The gzip layers that have a recipe, by layer digest.
pub(crate) type Recipes = BTreeMap<Digest, Found>;

/// What the encoder search learnt: the recipes, and a sketch of each rebuilt layer's raw
/// bytes ([`similar`]) for the layer order.
#[derive(Default)]
pub(crate) struct Identified {
    pub(crate) recipes: Recipes,
    sketches: BTreeMap<Digest, Sketch>,
}

/// Where each compact layer goes among the coarse frames ([`similar::group`]), by layer
/// digest; layers not listed are written as usual.
pub(crate) type Placement = BTreeMap<Digest, Place>;

/// Whether a layer's media type says gzip (OCI `…tar+gzip`, Docker `…tar.gzip`).
fn is_gzip(media_type: &str) -> bool {
    media_type.ends_with("+gzip") || media_type.ends_with(".gzip")
}

/// Reads every gzip layer once and finds its recipe. A layer no encoder rebuilds (or
/// that is not gzip after all) simply has none; a layer that cannot be read or does not
/// match its digest fails the save. With the `partial` bundle of an interrupted run,
/// what it holds is read from there instead (see the module docs).
pub(crate) fn identify_all(
    jobs: &[LayerJob],
    partial: Option<&Partial>,
    pool: &rayon::ThreadPool,
    progress: &dyn Progress,
) -> anyhow::Result<Identified> {
    let gzip: Vec<&LayerJob> = jobs
        .iter()
        .filter(|j| is_gzip(&j.desc.media_type))
        .collect();
    let bytes = gzip.iter().map(|j| j.desc.size).sum();
    progress.phase_of("finding encoders", "layer", bytes, gzip.len() as u64);
    let encoders = default_encoders();
    type Hit = (Digest, Found, Sketch);
    let results: Vec<anyhow::Result<Option<Hit>>> = pool.install(|| {
        gzip.par_iter()
            .map(|job| {
                check_interrupt()?;
                if let Some(p) = partial
                    && let Some(found) = from_partial(job, p, &encoders, progress)?
                {
                    return Ok(found.map(|(f, sketch)| (job.desc.digest.clone(), f, sketch)));
                }
                let item = progress.item(&job.label, job.desc.size);
                let mut sketch = SketchBuilder::default();
                let found = identify(
                    job,
                    job.store.blob(&job.desc)?,
                    &encoders,
                    &*item,
                    &mut sketch,
                )?;
                item.done();
                Ok(found.map(|f| (job.desc.digest.clone(), f, sketch.finish())))
            })
            .collect()
    });
    check_interrupt()?;
    progress.finish_phase();
    let mut recipes = Recipes::new();
    let mut sketches = BTreeMap::new();
    for r in results {
        if let Some((d, f, sketch)) = r? {
            sketches.insert(d.clone(), sketch);
            recipes.insert(d, f);
        }
    }
    let rebuilt: u64 = gzip
        .iter()
        .filter(|j| recipes.contains_key(&j.desc.digest))
        .map(|j| j.desc.size)
        .sum();
    progress.message(&format!(
        "compact: {} of {} gzip layers ({} of {}) are stored as raw tar + recipe; the others as they are",
        recipes.len(),
        gzip.len(),
        human_bytes(rebuilt),
        human_bytes(bytes)
    ));
    Ok(Identified { recipes, sketches })
}

/// Puts similar compact layers next to each other ([`similar::group`]): the layers in
/// their bundle order, and where each compact layer goes among the frames.
pub(crate) fn arrange(jobs: Vec<LayerJob>, identified: &Identified) -> (Vec<LayerJob>, Placement) {
    let candidates: Vec<Candidate<'_>> = jobs
        .iter()
        .map(|j| match identified.recipes.get(&j.desc.digest) {
            Some(f) => Candidate {
                size: f.raw_len,
                sketch: identified.sketches.get(&j.desc.digest),
            },
            None => Candidate {
                size: j.desc.size,
                sketch: None,
            },
        })
        .collect();
    let order = similar::group(&candidates);
    let mut slots: Vec<Option<LayerJob>> = jobs.into_iter().map(Some).collect();
    let mut placement = Placement::new();
    let mut out = Vec::with_capacity(slots.len());
    for (i, place) in order {
        let job = slots[i].take().expect("each layer placed once");
        if place != Place::Alone {
            placement.insert(job.desc.digest.clone(), place);
        }
        out.push(job);
    }
    (out, placement)
}

/// Finds the recipe of gzip layer `job` from its bytes `source`, verified against its
/// digest (`None`: no encoder rebuilds it, or it is not gzip after all); its raw bytes
/// go through `sketch` on the way.
fn identify(
    job: &LayerJob,
    source: Box<dyn Read + Send>,
    encoders: &[EncoderSpec],
    item: &dyn crate::progress::Item,
    sketch: &mut SketchBuilder,
) -> anyhow::Result<Option<Found>> {
    let reader = VerifyingReader::new(
        ProgressReader::new(source, item),
        job.desc.digest.clone(),
        job.desc.size,
    );
    let seen = &mut |raw: &[u8]| sketch.update(raw);
    match find_recipe_seeing(reader, encoders, seen) {
        Ok(found) => Ok(found),
        Err(GzipError::Io(e)) => {
            Err(anyhow::Error::new(e).context(format!("cannot read layer {}", job.desc.digest)))
        }
        // Not a gzip stream airlock can describe: stored as it is.
        Err(_) => Ok(None),
    }
}

/// Layer `job` identified from what the partial bundle holds of it: its raw tar, with
/// the recipe proved again on those bytes, or its gzip bytes as they are (with the
/// sketch of the raw bytes, as from the source). `None` when the partial holds neither
/// or its copy is unusable (then forgotten there; the caller reads the layer from its
/// source); errors only on Ctrl-C.
fn from_partial(
    job: &LayerJob,
    partial: &Partial,
    encoders: &[EncoderSpec],
    progress: &dyn Progress,
) -> anyhow::Result<Option<Option<(Found, Sketch)>>> {
    let digest = &job.desc.digest;
    if partial.compact_layer(digest).is_none() && !partial.has(digest, job.desc.size) {
        return Ok(None);
    }
    let item = progress.item(&format!("{} (kept)", job.label), job.desc.size);
    let mut sketch = SketchBuilder::default();
    let (attempt, copy) = if let Some(kept) = partial.compact_layer(digest) {
        let proof = (|| -> anyhow::Result<Found> {
            let raw = VerifyingReader::new(
                Seeing {
                    inner: InterruptibleReader(partial.open(&kept.raw)?),
                    sketch: &mut sketch,
                },
                kept.raw.clone(),
                kept.raw_size,
            );
            let rebuilt =
                RebuildReader::verified(kept.recipe.clone(), raw, digest.clone(), job.desc.size);
            io::copy(&mut ProgressReader::new(rebuilt, &*item), &mut io::sink())?;
            Ok(Found {
                recipe: kept.recipe.clone(),
                raw_digest: kept.raw.clone(),
                raw_len: kept.raw_size,
            })
        })();
        (proof.map(Some), kept.raw.clone())
    } else {
        let source = partial
            .open(digest)
            .map(|r| Box::new(InterruptibleReader(r)) as _);
        let found = source
            .map_err(anyhow::Error::from)
            .and_then(|s| identify(job, s, encoders, &*item, &mut sketch));
        (found, digest.clone())
    };
    match attempt {
        Ok(found) => {
            item.done();
            Ok(Some(found.map(|f| (f, sketch.finish()))))
        }
        Err(e) if interrupt::requested() => Err(e),
        Err(e) => {
            partial.forget(&copy);
            progress.message(&format!(
                "{digest}: the copy in {} is unusable ({e:#}); reading it from its source again",
                partial.files()[0].display()
            ));
            Ok(None)
        }
    }
}

/// A reader passing the bytes it reads through a sketch.
struct Seeing<'s, R> {
    inner: R,
    sketch: &'s mut SketchBuilder,
}

impl<R: Read> Read for Seeing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sketch.update(&buf[..n]);
        Ok(n)
    }
}

/// Rewrites the documents for the layers in `recipes`: `blobs[]` lists the raw tar
/// instead (once, however many layers share it), `compact` the recipe, and
/// `manifest.json` the raw tar's path. `blobs[]` keeps the usual order (the layers of a
/// compact bundle are written in [`arrange`]'s order, not in `blobs[]`'s), so that
/// `convert` gives back the plain bundle byte for byte.
pub(crate) fn apply(docs: &mut Documents, recipes: &Recipes) {
    if recipes.is_empty() {
        return;
    }
    let mut blobs: Vec<TocBlob> = Vec::with_capacity(docs.toc.blobs.len());
    for b in &docs.toc.blobs {
        let entry = match recipes.get(&b.digest) {
            Some(f) => {
                docs.toc.compact.push(TocCompact {
                    digest: b.digest.clone(),
                    size: b.size,
                    media_type: b.media_type.clone(),
                    raw: f.raw_digest.clone(),
                    raw_size: f.raw_len,
                    recipe: f.recipe.clone(),
                });
                TocBlob {
                    digest: f.raw_digest.clone(),
                    size: f.raw_len,
                    media_type: RAW_LAYER_TYPE.to_string(),
                }
            }
            None => b.clone(),
        };
        if !blobs.iter().any(|x| x.digest == entry.digest) {
            blobs.push(entry);
        }
    }
    docs.toc.blobs = blobs;
    // Paths are `blobs/sha256/<64 hex>`: replacing them cannot touch anything else.
    let mut manifest = String::from_utf8(std::mem::take(&mut docs.manifest_json))
        .expect("manifest.json is written as UTF-8 JSON");
    for (digest, f) in recipes {
        manifest = manifest.replace(&digest.blob_path(), &f.raw_digest.blob_path());
    }
    docs.manifest_json = manifest.into_bytes();
}

/// Writes a compact layer: `data` (the gzip bytes, verified here again) decompressed into
/// its raw entry. No second rebuild: [`identify_all`] proved the recipe by rebuilding
/// the layer from its raw bytes, whose sha256 is `found.raw_digest`; the writer hashes
/// the raw bytes it stores and fails the save (poisoning the bundle) unless they have
/// that digest, so the stored bytes are the bytes the recipe was proven on.
pub(crate) fn write_layer(
    writer: &mut BundleWriter,
    job: &LayerJob,
    found: &Found,
    place: Option<&Place>,
    data: &mut dyn Read,
) -> anyhow::Result<()> {
    let digest = &job.desc.digest;
    let mut gzip = VerifyingReader::new(data, digest.clone(), job.desc.size);
    if !writer.contains(&found.raw_digest) {
        announce(writer, place);
        let mut raw = flate2::read::MultiGzDecoder::new(&mut gzip);
        writer
            .add_blob(&found.raw_digest, found.raw_len, &mut raw)
            .with_context(|| {
                format!(
                    "the raw tar of layer {digest} is not the {} bytes with digest {} its recipe \
                     was proven on, or cannot be written into the bundle",
                    found.raw_len, found.raw_digest
                )
            })?;
    }
    // The rest of the gzip bytes (trailer, padding; all of them when the raw tar is
    // already in the bundle), so their digest is checked.
    io::copy(&mut gzip, &mut io::sink()).with_context(|| format!("cannot read layer {digest}"))?;
    Ok(())
}

/// Writes a compact layer whose raw tar a resumed save takes from the interrupted run's
/// partial bundle: `raw` is those bytes, which [`identify_all`] proved the recipe on; the
/// writer checks them against `found.raw_digest` again as it stores them.
pub(crate) fn write_kept(
    writer: &mut BundleWriter,
    job: &LayerJob,
    found: &Found,
    place: Option<&Place>,
    raw: &mut dyn Read,
) -> anyhow::Result<()> {
    if !writer.contains(&found.raw_digest) {
        announce(writer, place);
        writer
            .add_blob(&found.raw_digest, found.raw_len, raw)
            .with_context(|| {
                format!(
                    "the raw tar of layer {} kept from the interrupted run changed since it was \
                     checked; add --fresh to start over",
                    job.desc.digest
                )
            })?;
    }
    Ok(())
}

/// Tells the writer where the raw entry written next goes among the frames.
fn announce(writer: &mut BundleWriter, place: Option<&Place>) {
    match place {
        Some(Place::Leads(bytes)) => writer.begin_group(*bytes),
        Some(Place::Joins) => writer.continue_group(),
        Some(Place::Alone) | None => {}
    }
}
