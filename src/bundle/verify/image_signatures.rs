//! The image signature step of `verify --key`/`--policy`, and the same check for `push`:
//! each TOC image with the signature manifests the TOC records for it, judged by
//! [`crate::trust`].
//!
//! This is the glue between the bundle and the trust decisions: which artifacts are an
//! image's signatures (the TOC's `artifacts` of kind `signature` whose subject is the
//! image's digest, or one of its children's for an index) and where their bytes come
//! from (`verify`: the small JSON blobs its pass kept in memory, so no extra read;
//! `push`: the bundle, read blob by blob). The decisions are all in `trust`, which
//! checks every byte it is handed against its digest.

use std::collections::BTreeSet;

use super::{Finding, FindingKind, Pass};
use crate::bundle::Bundle;
use crate::bundle::toc::{ArtifactKind, Toc, TocImage};
use crate::digest::Digest;
use crate::oci::{ImageIndex, media};
use crate::trust::{
    Blobs, ImageInput, ImageVerdict, Policy, Problem, SignatureManifest, cosign::MAX_PAYLOAD,
    evaluate,
};

/// The signature manifests the TOC records about `subject`, each once, with their
/// bytes from `blobs`.
fn signatures_of(toc: &Toc, subject: &Digest, blobs: Blobs<'_>) -> Vec<SignatureManifest> {
    let mut seen = BTreeSet::new();
    toc.artifacts
        .iter()
        .filter(|a| a.kind == ArtifactKind::Signature && &a.subject == subject)
        .filter(|a| seen.insert(a.digest.clone()))
        .map(|a| SignatureManifest {
            digest: a.digest.clone(),
            bytes: blobs(&a.digest),
        })
        .collect()
}

/// What `trust` needs to judge `image`.
fn input(toc: &Toc, image: &TocImage, blobs: Blobs<'_>) -> ImageInput {
    let children = if media::is_index(&image.media_type) {
        blobs(&image.digest)
            .and_then(|b| serde_json::from_slice::<ImageIndex>(&b).ok())
            .map(|index| {
                index
                    .manifests
                    .into_iter()
                    .map(|c| {
                        let sigs = signatures_of(toc, &c.digest, blobs);
                        (c.digest, sigs)
                    })
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    ImageInput {
        name: image.name.clone(),
        source: image.source.clone(),
        digest: image.digest.clone(),
        signatures: signatures_of(toc, &image.digest, blobs),
        children,
    }
}

/// Judges each of `images` (TOC images of `toc`) by `policy`.
pub fn check_images(
    toc: &Toc,
    images: &[&TocImage],
    policy: &Policy,
    blobs: Blobs<'_>,
) -> Vec<ImageVerdict> {
    images
        .iter()
        .map(|image| evaluate(policy, &input(toc, image, blobs), blobs))
        .collect()
}

/// [`check_images`] for every image of `toc` (`save --policy`, on the TOC it is about to
/// write and the blobs it staged).
pub fn check_toc_images(toc: &Toc, policy: &Policy, blobs: Blobs<'_>) -> Vec<ImageVerdict> {
    let images: Vec<&TocImage> = toc.images.iter().collect();
    check_images(toc, &images, policy, blobs)
}

/// [`check_images`] reading the signature manifests and payloads from `bundle` (small
/// blobs only: a blob that cannot be read is absent, which `trust` reports).
pub fn check_bundle_images(
    bundle: &Bundle,
    images: &[&TocImage],
    policy: &Policy,
) -> Vec<ImageVerdict> {
    let read = |d: &Digest| -> Option<Vec<u8>> {
        let size = bundle.entry(&d.blob_path())?.size;
        if size > MAX_PAYLOAD.max(crate::oci::MAX_MANIFEST_SIZE) {
            return None;
        }
        let mut out = Vec::with_capacity(size as usize);
        std::io::Read::read_to_end(&mut bundle.blob(d).ok()?, &mut out).ok()?;
        Some(out)
    };
    check_images(bundle.toc(), images, policy, &read)
}

/// The finding kind of a refusal.
fn kind(p: &Problem) -> FindingKind {
    match p {
        Problem::NoSignature => FindingKind::ImageUnsigned,
        Problem::WrongKey { .. } => FindingKind::ImageWrongKey,
        Problem::PayloadDigest { .. } => FindingKind::ImagePayloadDigest,
        Problem::Identity { .. } => FindingKind::ImageIdentity,
        Problem::BadEncoding { .. } => FindingKind::ImageSignatureEncoding,
        Problem::Unsupported { .. } => FindingKind::ImageSignatureUnsupported,
        Problem::NotPinned { .. } => FindingKind::ImageNotPinned,
        Problem::Rejected { .. } => FindingKind::ImageRejected,
    }
}

/// One finding per problem of each refused image, naming the image and (for a
/// signature problem) the signature manifest's blob.
pub fn findings(verdicts: &[ImageVerdict]) -> Vec<Finding> {
    verdicts
        .iter()
        .flat_map(|v| {
            v.problems.iter().zip(v.lines()).map(|(p, line)| {
                let f = Finding::new(kind(p), line).with_images(vec![v.image.clone()]);
                match p.manifest() {
                    Some(m) => f.with_entry(m.blob_path()).with_digest(m.clone()),
                    None => f.with_digest(v.digest.clone()),
                }
            })
        })
        .collect()
}

impl Pass<'_> {
    /// Judges every TOC image by `policy`, from the blobs the scan kept in memory.
    pub(super) fn check_image_signatures(&self, policy: &Policy) -> Vec<ImageVerdict> {
        let Some(toc) = &self.toc else {
            return Vec::new();
        };
        let blobs = |d: &Digest| self.seen.json.get(d).cloned();
        check_toc_images(toc, policy, &blobs)
    }
}
