//! What `airlock load` will send: for each selected name of the bundle, the image
//! manifest for the wanted platform, its config and its layers, checked against what
//! `docker load` on Docker 20.10 accepts (formats.md §1) before a byte is streamed.
//!
//! A name that cannot be loaded (no manifest for the platform, not a container image,
//! a layer missing from the bundle, a config or layer a differential bundle leaves out)
//! is skipped with a reason rather than failing the whole load; a damaged manifest or
//! config is an error, as it means a damaged bundle.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, bail};

use crate::bundle::Bundle;
use crate::bundle::graph::{GraphManifest, ImageGraph, read_graph};
use crate::bundle::toc::TocImage;
use crate::digest::Digest;
use crate::oci::{Descriptor, ImageConfig, MAX_CONFIG_SIZE, Platform, media};
use crate::reference::Reference;

/// One name to load.
#[derive(Debug, Clone)]
pub(crate) struct PlannedImage {
    /// The full name in the bundle (`docker.io/library/nginx:1.25`).
    pub name: String,
    /// The `RepoTags` entry (`nginx:1.25`); `None` for a name saved by digest only,
    /// which Docker loads untagged.
    pub tag: Option<String>,
    /// The manifest or index the name points at in the bundle.
    pub source_digest: Digest,
    /// The TOC's source digest, when the bundle's root differs from the source's.
    pub original_digest: Option<Digest>,
    /// The image manifest chosen for the platform.
    pub manifest: Digest,
    pub platform: String,
    pub config: Descriptor,
    pub layers: Vec<PlannedLayer>,
}

/// A layer as `docker load` will get it.
#[derive(Debug, Clone)]
pub(crate) struct PlannedLayer {
    pub blob: Descriptor,
    pub diff_id: Digest,
    /// zstd: Docker 20.10 cannot read it, airlock decompresses it on the way.
    pub decompress: bool,
}

impl PlannedLayer {
    /// The path in the `docker load` tar: the blob's own path, or for a decompressed
    /// layer the path of its uncompressed content (its diff ID).
    pub fn path(&self) -> String {
        if self.decompress {
            self.diff_id.blob_path()
        } else {
            self.blob.digest.blob_path()
        }
    }
}

/// A name that will not be loaded, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
}

/// The names of the bundle to load: all, or those matching `wanted`. A wanted
/// reference that matches no name is an error listing the names there are.
pub(crate) fn select<'a>(
    bundle: &'a Bundle,
    wanted: &[Reference],
) -> anyhow::Result<Vec<&'a TocImage>> {
    let all = &bundle.toc().images;
    if wanted.is_empty() {
        return Ok(all.iter().collect());
    }
    let parsed: Vec<Option<Reference>> =
        all.iter().map(|i| Reference::parse(&i.name).ok()).collect();
    let mut chosen = BTreeSet::new();
    let mut unknown = Vec::new();
    for w in wanted {
        let mut hit = false;
        for (i, (image, name)) in all.iter().zip(&parsed).enumerate() {
            if name.as_ref().is_some_and(|n| matches(n, image, w)) {
                chosen.insert(i);
                hit = true;
            }
        }
        if !hit {
            unknown.push(w.to_string());
        }
    }
    if !unknown.is_empty() {
        let names: Vec<&str> = all.iter().map(|i| i.name.as_str()).collect();
        bail!(
            "--image {} matches no image in bundle `{}`; it holds: {}",
            unknown.join(", "),
            bundle.path().display(),
            if names.is_empty() {
                "nothing".to_string()
            } else {
                names.join(", ")
            }
        );
    }
    Ok(chosen.into_iter().map(|i| &all[i]).collect())
}

/// Whether the bundle name `name` (TOC entry `image`) is what `--image wanted` means:
/// the same name, or for a wanted `repo@digest` the same repository whose manifest or
/// index has that digest.
fn matches(name: &Reference, image: &TocImage, wanted: &Reference) -> bool {
    if name == wanted {
        return true;
    }
    match wanted.digest() {
        Some(d) => {
            name.name() == wanted.name()
                && (&image.digest == d || image.source_digest.as_ref() == Some(d))
                && (wanted.tag().is_none() || wanted.tag() == name.tag())
        }
        None => false,
    }
}

/// Plans one name: `Ok(Ok(plan))`, `Ok(Err(reason))` to skip it, `Err` for a damaged bundle.
pub(crate) fn plan_image(
    bundle: &Bundle,
    image: &TocImage,
    wanted: &Platform,
) -> anyhow::Result<Result<PlannedImage, String>> {
    let graph = read_graph(bundle, image)?;
    let single = graph.images.len() == 1 && graph.images[0].digest == graph.root.digest;
    let mut have = Vec::new();
    let mut chosen: Option<(&GraphManifest, ImageConfig, Platform)> = None;
    for m in &graph.images {
        // An index names each child's platform: skip the others without reading them.
        if let (false, Some(p)) = (single, &m.platform) {
            if p.os != "unknown" {
                have.push(p.to_string());
            }
            if !p.satisfies(wanted) {
                continue;
            }
        }
        if let Some(why) = left_out(bundle, "config", &m.manifest.config.digest) {
            return Ok(Err(why));
        }
        let config = read_config(bundle, &graph, m)?;
        let Some(config) = config else {
            continue;
        };
        let platform = m.platform.clone().unwrap_or_else(|| config.platform());
        if single || m.platform.is_none() {
            have.push(platform.to_string());
        }
        let fits = if single {
            // A single-platform image is loaded as it is, unless its OS cannot be.
            config.os.is_empty() || config.os == wanted.os
        } else {
            platform.satisfies(wanted)
        };
        if fits {
            chosen = Some((m, config, platform));
            break;
        }
    }
    let Some((m, config, platform)) = chosen else {
        have.sort();
        have.dedup();
        return Ok(Err(format!(
            "no {wanted} image (has: {})",
            if have.is_empty() {
                "no container images".to_string()
            } else {
                have.join(", ")
            }
        )));
    };
    let Some(rootfs) = &config.rootfs else {
        return Ok(Err(format!(
            "config {} of manifest {} has no rootfs: not a container image",
            m.manifest.config.digest, m.digest
        )));
    };
    if rootfs.diff_ids.len() != m.manifest.layers.len() {
        return Ok(Err(format!(
            "manifest {} lists {} layers but its config has {} diff_ids",
            m.digest,
            m.manifest.layers.len(),
            rootfs.diff_ids.len()
        )));
    }
    let mut layers = Vec::new();
    for (blob, diff_id) in m.manifest.layers.iter().zip(&rootfs.diff_ids) {
        if let Some(why) = left_out(bundle, "layer", &blob.digest) {
            return Ok(Err(why));
        }
        if !bundle.has_blob(&blob.digest) {
            return Ok(Err(format!(
                "layer {} ({}) is not in the bundle (a foreign layer?)",
                blob.digest, blob.media_type
            )));
        }
        let decompress = media::is_zstd_layer(&blob.media_type);
        if media::is_uncompressed_layer(&blob.media_type) && &blob.digest != diff_id {
            return Ok(Err(format!(
                "uncompressed layer {} does not match its diff_id {diff_id}",
                blob.digest
            )));
        }
        layers.push(PlannedLayer {
            blob: blob.clone(),
            diff_id: diff_id.clone(),
            decompress,
        });
    }
    let name = graph.name.clone();
    Ok(Ok(PlannedImage {
        name: image.name.clone(),
        tag: name.tag().map(|_| name.familiar()),
        source_digest: image.digest.clone(),
        original_digest: image.source_digest.clone(),
        manifest: m.digest.clone(),
        platform: platform.to_string(),
        config: m.manifest.config.clone(),
        layers,
    }))
}

/// Reads, verifies and parses the config of `m`; `None` when it is not an image config
/// (an attestation or other artifact under an index).
fn read_config(
    bundle: &Bundle,
    graph: &ImageGraph,
    m: &GraphManifest,
) -> anyhow::Result<Option<ImageConfig>> {
    let d = &m.manifest.config;
    if d.media_type != media::OCI_CONFIG && d.media_type != media::DOCKER_CONFIG {
        return Ok(None);
    }
    let bytes = bundle
        .read_entry(&d.digest.blob_path(), MAX_CONFIG_SIZE)
        .with_context(|| format!("reading config {} of {}", d.digest, graph.name))?;
    let actual = Digest::of(&bytes);
    if actual != d.digest {
        bail!(
            "config {} of {} in bundle `{}` is damaged (its bytes hash to {actual}); nothing was loaded. Run `airlock verify {}` and use a sound copy of the bundle",
            d.digest,
            graph.name,
            bundle.path().display(),
            bundle.path().display()
        );
    }
    let config: ImageConfig = serde_json::from_slice(&bytes)
        .with_context(|| format!("config {} of {} is not valid JSON", d.digest, graph.name))?;
    Ok(Some(config))
}

/// Why `digest` cannot be loaded from a differential bundle that leaves it out, if it does.
fn left_out(bundle: &Bundle, what: &str, digest: &Digest) -> Option<String> {
    let base = bundle.toc().base.as_ref()?;
    base.omitted(digest)?;
    Some(format!(
        "differential bundle: {what} {digest} is left out (its {} base {} has it); \
         push this bundle into the registry that holds the base and pull from there, or load a full bundle",
        base.kind, base.file
    ))
}

/// For error messages: which loaded names need each blob.
pub fn users(images: &[PlannedImage]) -> BTreeMap<Digest, Vec<String>> {
    let mut map: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    for i in images {
        for d in std::iter::once(&i.config.digest).chain(i.layers.iter().map(|l| &l.blob.digest)) {
            let v = map.entry(d.clone()).or_default();
            if !v.contains(&i.name) {
                v.push(i.name.clone());
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toc(name: &str, digest: &Digest, source_digest: Option<Digest>) -> TocImage {
        TocImage {
            name: name.to_string(),
            source: name.to_string(),
            digest: digest.clone(),
            media_type: media::OCI_MANIFEST.to_string(),
            platforms: vec!["linux/amd64".to_string()],
            size: 0,
            source_digest,
            note: None,
            docker: None,
            docker_skipped: None,
        }
    }

    #[test]
    fn image_selection_by_name_or_digest() {
        let d = Digest::of(b"root");
        let src = Digest::of(b"source");
        let image = toc("docker.io/library/nginx:1.25", &d, Some(src.clone()));
        let name = Reference::parse(&image.name).unwrap();
        let m = |w: &str| matches(&name, &image, &Reference::parse(w).unwrap());
        assert!(m("nginx:1.25"));
        assert!(m("docker.io/library/nginx:1.25"));
        assert!(!m("nginx"), "no tag means :latest");
        assert!(!m("nginx:1.26"));
        assert!(m(&format!("nginx@{d}")));
        assert!(m(&format!("nginx@{src}")), "the source's digest too");
        assert!(m(&format!("nginx:1.25@{d}")));
        assert!(!m(&format!("nginx:1.26@{d}")));
        assert!(!m(&format!("redis@{d}")));
    }
}
