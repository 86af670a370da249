//! Differential bundles (`save --base FILE`): leave out every config and layer the base
//! already has.
//!
//! The walk still fetches every config (the `docker load` side and platform detection
//! need them) and lists every layer; this stage then drops the configs and layers the
//! [`BaseSet`] vouches for from what is written, before any layer is fetched, so a
//! left-out layer is never downloaded. Manifests and indexes are always kept: they are
//! small and `push` needs them to write the tags. Nor are cosign signature payloads
//! (a few hundred bytes each): `verify --key` and `push --key` judge an image by the
//! bundle alone, so a delta must carry its images' signatures whole. What was left out
//! is recorded in the TOC's `base` with, per blob, where the target should hold it.

use std::collections::BTreeSet;

use super::plan::WalkedImage;
use crate::bundle::toc::{TocBase, TocBlob, TocOmitted};
use crate::digest::Digest;
use crate::inventory::base::BaseSet;
use crate::oci::Descriptor;
use crate::trust::cosign::SIMPLE_SIGNING;

/// Splits the blobs and layers to write into those kept and those the base has.
/// Returns the kept blobs, the kept layers and the TOC record (`None` without a base).
pub(crate) fn leave_out(
    base: Option<&BaseSet>,
    images: &[&WalkedImage],
    blobs: Vec<TocBlob>,
    layers: Vec<Descriptor>,
) -> (Vec<TocBlob>, Vec<Descriptor>, Option<TocBase>) {
    let Some(base) = base else {
        return (blobs, layers, None);
    };
    // Only configs and layers may be left out, never a manifest or an index.
    let eligible: BTreeSet<&Digest> = images
        .iter()
        .flat_map(|i| {
            i.manifests.iter().map(|m| &m.config.digest).chain(
                i.layers
                    .iter()
                    .filter(|l| l.media_type != SIMPLE_SIGNING)
                    .map(|l| &l.digest),
            )
        })
        .collect();
    let omit = |d: &Digest| eligible.contains(d) && base.has(d);
    let mut omitted = Vec::new();
    let mut kept = Vec::with_capacity(blobs.len());
    for b in blobs {
        if omit(&b.digest) {
            omitted.push(TocOmitted {
                repositories: base.locations(&b.digest).to_vec(),
                digest: b.digest,
                size: b.size,
                media_type: b.media_type,
            });
        } else {
            kept.push(b);
        }
    }
    let layers = layers.into_iter().filter(|l| !omit(&l.digest)).collect();
    (kept, layers, Some(base.toc_base(omitted)))
}
