//! The bundle's small documents, composed from the walked images: `index.json` (OCI
//! side), `manifest.json` and `repositories` (`docker load` side), and `airlock.json`.
//!
//! These are new documents about the images, not image content, so they are built
//! with serde; the manifests and indexes they point at are stored byte-exact.
//! The Docker side gets, for every tagged name, the manifest for the chosen Docker
//! platform, and only when Docker 20.10 can load it (gzip or plain layers, a config
//! whose `diff_ids` match the layers); otherwise the TOC says why it was left out. A
//! manifest is a container image only when every layer is a tar layer: a cosign
//! signature's config has a `rootfs` too, and `docker load` of one fails.
//!
//! Artifacts (signatures, attestations, SBOMs) go into the TOC's `artifacts`, once per
//! digest and repository; never into `index.json` or `manifest.json`.

use std::collections::{BTreeMap, BTreeSet};

use super::plan::{PlannedManifest, WalkedImage};
use crate::bundle::toc::{FORMAT_VERSION, Toc, TocArtifact, TocBase, TocBlob, TocDocker, TocImage};
use crate::digest::Digest;
use crate::oci::{Descriptor, DockerLoadEntry, ImageIndex, Platform, media};
use crate::reference::Reference;

/// One name in the bundle and the walked image it points at.
pub(crate) struct Named<'a> {
    pub name: Reference,
    pub input: &'a str,
    pub image: &'a WalkedImage,
}

pub(crate) struct Documents {
    pub toc: Toc,
    pub index_json: Vec<u8>,
    pub manifest_json: Vec<u8>,
    pub repositories: Vec<u8>,
}

/// `base` is set for a differential bundle: its left-out blobs still count in image
/// sizes, and an image needing one gets no `manifest.json` entry (`docker load` could
/// not load it from this file alone).
pub(crate) fn compose(
    names: &[Named<'_>],
    blobs: &[TocBlob],
    docker_platform: &Platform,
    base: Option<TocBase>,
    created: jiff::Timestamp,
) -> anyhow::Result<Documents> {
    let mut sizes: BTreeMap<&Digest, u64> = blobs.iter().map(|b| (&b.digest, b.size)).collect();
    let omitted: BTreeSet<&Digest> = base
        .iter()
        .flat_map(|b| b.omitted.iter().map(|o| &o.digest))
        .collect();
    for o in base.iter().flat_map(|b| &b.omitted) {
        sizes.insert(&o.digest, o.size);
    }
    let mut images = Vec::new();
    let mut index_entries = Vec::new();
    let mut docker_entries = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();

    for named in names {
        let image = named.image;
        let size = image
            .blob_digests()
            .iter()
            .map(|d| sizes.get(d).copied().unwrap_or(0))
            .sum();
        let chosen = choose_docker(image, docker_platform).and_then(|m| {
            match std::iter::once(&m.config)
                .chain(&m.layers)
                .find(|d| omitted.contains(&d.digest))
            {
                Some(d) => Err(format!(
                    "differential bundle: {} {} is left out (the {} base {} has it); \
                     push this bundle to the registry holding the base, or load a full bundle",
                    if d.digest == m.config.digest {
                        "config"
                    } else {
                        "layer"
                    },
                    d.digest.short(),
                    base.as_ref().map_or("", |b| b.kind.as_str()),
                    base.as_ref().map_or("", |b| b.file.as_str()),
                )),
                None => Ok(m),
            }
        });
        let (docker, docker_skipped) = match &chosen {
            Ok(m) => (
                Some(TocDocker {
                    manifest: m.digest.clone(),
                    config: m.config.digest.clone(),
                    platform: m
                        .platform
                        .as_ref()
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "unknown".into()),
                }),
                None,
            ),
            Err(why) => (None, Some(why.clone())),
        };
        if let Ok(m) = &chosen {
            let tags = named.name.tag().map(|_| vec![named.name.familiar()]);
            if let Some(tag) = named.name.tag() {
                repositories
                    .entry(named.name.familiar_name())
                    .or_default()
                    .insert(tag.to_string(), m.config.digest.hex().to_string());
            }
            docker_entries.push(DockerLoadEntry {
                config: m.config.digest.blob_path(),
                repo_tags: tags,
                layers: m.layers.iter().map(|l| l.digest.blob_path()).collect(),
            });
        }

        let mut annotations = BTreeMap::new();
        annotations.insert(
            "io.containerd.image.name".to_string(),
            named.name.to_string(),
        );
        if let Some(tag) = named.name.tag() {
            annotations.insert(
                "org.opencontainers.image.ref.name".to_string(),
                tag.to_string(),
            );
        }
        let mut desc = Descriptor::new(
            &image.root.media_type,
            image.root.digest.clone(),
            image.root.size,
        );
        if media::is_manifest(&image.root.media_type) {
            desc.platform = image
                .manifests
                .iter()
                .find(|m| m.digest == image.root.digest)
                .and_then(|m| m.platform.clone());
        }
        desc.annotations = Some(annotations);
        index_entries.push(desc);

        images.push(TocImage {
            name: named.name.to_string(),
            source: named.input.to_string(),
            digest: image.root.digest.clone(),
            media_type: image.root.media_type.clone(),
            platforms: image.platforms(),
            size,
            source_digest: image.source_digest.clone(),
            note: image.note.clone(),
            docker,
            docker_skipped,
        });
    }

    let index = ImageIndex {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.to_string()),
        manifests: index_entries,
        annotations: None,
    };
    let toc = Toc {
        format_version: FORMAT_VERSION,
        tool: format!("airlock {}", env!("CARGO_PKG_VERSION")),
        created: created.to_string(),
        docker_platform: docker_platform.to_string(),
        images,
        blobs: blobs.to_vec(),
        base,
        artifacts: artifacts(names),
        compact: Vec::new(),
    };
    Ok(Documents {
        index_json: serde_json::to_vec_pretty(&index)?,
        manifest_json: serde_json::to_vec_pretty(&docker_entries)?,
        repositories: serde_json::to_vec_pretty(&repositories)?,
        toc,
    })
}

/// The manifest `docker load` gets for an image, or why there is none.
fn choose_docker<'a>(
    image: &'a WalkedImage,
    platform: &Platform,
) -> Result<&'a PlannedManifest, String> {
    let single = media::is_manifest(&image.root.media_type);
    let candidates: Vec<&PlannedManifest> = if single {
        image
            .manifests
            .iter()
            .filter(|m| m.digest == image.root.digest)
            .collect()
    } else {
        image
            .manifests
            .iter()
            .filter(|m| m.platform.as_ref().is_some_and(|p| p.satisfies(platform)))
            .collect()
    };
    let Some(m) = candidates.first() else {
        let have = image.platforms();
        return Err(format!(
            "no {platform} manifest (has: {})",
            if have.is_empty() {
                "none".into()
            } else {
                have.join(", ")
            }
        ));
    };
    if let Some(l) = m
        .layers
        .iter()
        .find(|l| media::is_zstd_layer(&l.media_type))
    {
        return Err(format!(
            "layer {} is zstd-compressed, which Docker 20.10 cannot load (use `airlock load`)",
            l.digest.short()
        ));
    }
    if let Some(l) = m.layers.iter().find(|l| !is_tar_layer(&l.media_type)) {
        return Err(format!(
            "not a container image (layer {} is `{}`, not a tar layer)",
            l.digest.short(),
            l.media_type
        ));
    }
    match m.diff_ids {
        Some(n) if n == m.layers.len() => Ok(m),
        Some(n) => Err(format!(
            "config has {n} diff_ids for {} layers",
            m.layers.len()
        )),
        None => Err("not a container image (its config has no rootfs)".to_string()),
    }
}

/// The layer media types `docker load` can unpack: OCI and Docker tar layers, plain or
/// compressed (also their non-distributable variants).
fn is_tar_layer(mt: &str) -> bool {
    mt.starts_with("application/vnd.oci.image.layer.")
        || mt.starts_with("application/vnd.docker.image.rootfs.")
}

/// Every artifact of the named images, once per digest and repository, in order.
fn artifacts(names: &[Named<'_>]) -> Vec<TocArtifact> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for a in names.iter().flat_map(|n| {
        n.image
            .artifacts
            .iter()
            .map(move |a| (a, &n.image.repository))
    }) {
        let (a, repository) = a;
        if !seen.insert((a.desc.digest.clone(), repository.clone())) {
            continue;
        }
        out.push(TocArtifact {
            digest: a.desc.digest.clone(),
            media_type: a.desc.media_type.clone(),
            size: a.desc.size,
            artifact_type: a.artifact_type.clone(),
            kind: a.kind,
            subject: a.subject.clone(),
            repository: repository.clone(),
            found: a.found,
            tag: a.tag.clone(),
        });
    }
    out
}

/// Every unique blob of the walked images, small objects first, then layers.
pub(crate) fn collect_blobs(images: &[&WalkedImage]) -> (Vec<TocBlob>, Vec<Descriptor>) {
    let mut seen = BTreeSet::new();
    let mut small = Vec::new();
    let mut layers = Vec::new();
    for image in images {
        for d in &image.small {
            if seen.insert(d.digest.clone()) {
                small.push(TocBlob {
                    digest: d.digest.clone(),
                    size: d.size,
                    media_type: d.media_type.clone(),
                });
            }
        }
    }
    for image in images {
        for d in &image.layers {
            if seen.insert(d.digest.clone()) {
                layers.push(d.clone());
            }
        }
    }
    let mut all = small;
    all.extend(layers.iter().map(|d| TocBlob {
        digest: d.digest.clone(),
        size: d.size,
        media_type: d.media_type.clone(),
    }));
    (all, layers)
}
