//! Reading an image's graph back out of a bundle, verified: for `push` and `load`, and
//! for `inventory::base`, which reads which images use which blobs (of a base bundle for
//! `save --base`, of a differential bundle for `verify --base`).
//!
//! It lives with the bundle because it only reads one: every command that needs an
//! image's manifests from a bundle reaches down to it, never sideways into another
//! command's module.
//!
//! Starting from a TOC name, the root manifest or index is read from the bundle and
//! rehashed; an index's children are read the same way, recursively. The result lists
//! the manifests in push order (children before the indexes that name them) and every
//! config and layer descriptor once. Layers are not read here: callers stream them
//! through a [`crate::digest::VerifyingReader`] when they need the bytes.

use std::collections::{BTreeSet, HashSet};

use anyhow::{Context, bail};

use super::Bundle;
use super::toc::TocImage;
use crate::digest::Digest;
use crate::oci::{Descriptor, ImageManifest, MAX_MANIFEST_SIZE, Parsed, Platform, RawManifest};
use crate::reference::Reference;

/// An image manifest of the graph, with the platform its index gave it (if any).
#[derive(Debug, Clone)]
pub struct GraphManifest {
    pub digest: Digest,
    pub platform: Option<Platform>,
    pub manifest: ImageManifest,
}

/// One TOC name's image, as the bundle holds it.
#[derive(Debug, Clone)]
pub struct ImageGraph {
    pub name: Reference,
    /// The manifest or index the name points at.
    pub root: RawManifest,
    /// Every manifest and index under the root, then the root itself: the order in which
    /// a registry accepts them (it rejects an index whose children are missing).
    pub manifests: Vec<RawManifest>,
    /// The image manifests reached, for choosing a platform.
    pub images: Vec<GraphManifest>,
    /// Configs and layers, each once.
    pub blobs: Vec<Descriptor>,
}

/// Reads and verifies the graph of `image` from `bundle`.
pub fn read_graph(bundle: &Bundle, image: &TocImage) -> anyhow::Result<ImageGraph> {
    let name = Reference::parse(&image.name)
        .with_context(|| format!("the bundle's TOC holds an invalid name `{}`", image.name))?;
    let root = read_manifest(bundle, &image.digest, &image.media_type)?;
    let mut graph = ImageGraph {
        name,
        root: root.clone(),
        manifests: Vec::new(),
        images: Vec::new(),
        blobs: Vec::new(),
    };
    let mut seen = BTreeSet::new();
    let mut blobs_seen = HashSet::new();
    walk(
        bundle,
        &root,
        None,
        0,
        &mut graph,
        &mut seen,
        &mut blobs_seen,
    )?;
    Ok(graph)
}

fn walk(
    bundle: &Bundle,
    raw: &RawManifest,
    platform: Option<Platform>,
    depth: usize,
    graph: &mut ImageGraph,
    seen: &mut BTreeSet<Digest>,
    blobs_seen: &mut HashSet<Digest>,
) -> anyhow::Result<()> {
    if depth > 4 {
        bail!("index {} nests deeper than 4 levels", raw.digest);
    }
    if !seen.insert(raw.digest.clone()) {
        return Ok(());
    }
    match raw.parse()? {
        Parsed::Index(index) => {
            for child in &index.manifests {
                let bytes = read_manifest(bundle, &child.digest, &child.media_type)
                    .with_context(|| format!("index {} lists it", raw.digest))?;
                walk(
                    bundle,
                    &bytes,
                    child.platform.clone(),
                    depth + 1,
                    graph,
                    seen,
                    blobs_seen,
                )?;
            }
        }
        Parsed::Manifest(manifest) => {
            // A set, not a scan of the list: a hostile manifest (4 MiB) can name tens of
            // thousands of layers.
            for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
                if blobs_seen.insert(d.digest.clone()) {
                    graph.blobs.push(d.clone());
                }
            }
            graph.images.push(GraphManifest {
                digest: raw.digest.clone(),
                platform,
                manifest,
            });
        }
    }
    graph.manifests.push(raw.clone());
    Ok(())
}

/// Reads a manifest or index from the bundle and checks it hashes to `digest`.
pub(crate) fn read_manifest(
    bundle: &Bundle,
    digest: &Digest,
    media_type: &str,
) -> anyhow::Result<RawManifest> {
    let bytes = bundle.read_entry(&digest.blob_path(), MAX_MANIFEST_SIZE)?;
    let raw = RawManifest {
        digest: Digest::of(&bytes),
        media_type: media_type.to_string(),
        bytes,
    };
    if &raw.digest != digest {
        bail!(
            "manifest {digest} in bundle `{}` is damaged (its bytes hash to {}); run `airlock verify` on it",
            bundle.path().display(),
            raw.digest
        );
    }
    Ok(raw)
}
