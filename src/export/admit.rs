//! `save --policy`: every image judged before the trip, by the same check `verify` and
//! `push` run on a bundle ([`crate::bundle::verify::check_toc_images`], decisions in
//! [`crate::trust`]), on the TOC about to be written.
//!
//! It runs after the walk and compose, before anything is written or any layer fetched.
//! Manifests (signature manifests included) are staged by then; a signature's payload is
//! carried like a layer, so it is not yet here: the few payload blobs a check asks for
//! (each at most [`MAX_PAYLOAD`] bytes) are read from the image's source now, and again
//! with the layers if the image is accepted. `trust` checks every byte against its digest.

use std::io::Read;

use super::compose::Named;
use super::staging::Staging;
use crate::bundle::toc::Toc;
use crate::digest::Digest;
use crate::trust::{Policy, cosign::MAX_PAYLOAD, refuse};

/// `Err` naming each image `policy` refuses and why; nothing has been written.
pub(crate) fn check(
    policy: &Policy,
    toc: &Toc,
    named: &[Named<'_>],
    staging: &Staging,
) -> anyhow::Result<()> {
    let blobs = |d: &Digest| -> Option<Vec<u8>> {
        if let Ok(bytes) = std::fs::read(staging.blob_path(d)) {
            return Some(bytes);
        }
        let (desc, store) = named.iter().find_map(|n| {
            n.image
                .layers
                .iter()
                .find(|l| &l.digest == d && l.size <= MAX_PAYLOAD)
                .map(|l| (l, &n.image.store))
        })?;
        let mut out = Vec::new();
        store
            .blob(desc)
            .ok()?
            .take(MAX_PAYLOAD + 1)
            .read_to_end(&mut out)
            .ok()?;
        Some(out)
    };
    let verdicts = crate::bundle::verify::check_toc_images(toc, policy, &blobs);
    refuse(&verdicts, policy.origin(), "no bundle was written")?;
    Ok(())
}
