//! What the served registry holds: the repositories and tags of every bundle given,
//! named as `push` names them ([`RegistryPrefix::repository_for`]), and for every blob
//! (manifests included) the bundle it is read from. A compact bundle's gzip layers are
//! listed too: the bundle reader rebuilds them from their raw tars, verified.
//!
//! Bundles are layered in the order given: a tag or a blob found in a later bundle is
//! served from it, so a differential bundle given after its base gets its left-out
//! blobs from the base and its new tags win. Built once at start; read-only after.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Context;

use crate::bundle::Bundle;
use crate::digest::Digest;
use crate::oci::media;
use crate::reference::Reference;
use crate::settings::RegistryPrefix;

/// A blob as the catalog knows it.
#[derive(Debug, Clone)]
pub(crate) struct BlobInfo {
    /// Index into [`Catalog::bundles`].
    pub bundle: usize,
    pub size: u64,
    pub media_type: String,
}

/// A tag: the manifest or index it points at, and that document's media type.
#[derive(Debug, Clone)]
pub(crate) struct Tagged {
    pub digest: Digest,
    pub media_type: String,
}

/// The served registry's content.
#[derive(Debug)]
pub(crate) struct Catalog {
    pub bundles: Vec<Bundle>,
    /// repository → tag → manifest; a repository named only by digest has no tags.
    pub repos: BTreeMap<String, BTreeMap<String, Tagged>>,
    pub blobs: HashMap<Digest, BlobInfo>,
    /// subject digest → descriptors of the manifests that name it as their `subject`
    /// (OCI 1.1 referrers), each with its `artifactType`.
    pub referrers: HashMap<Digest, Vec<serde_json::Value>>,
    /// One pull reference per TOC name (`repo:tag` or `repo@digest`), for the start message.
    pub references: Vec<String>,
}

/// Whether a media type is a manifest or an index (served under `/manifests/`).
pub(crate) fn is_manifest_type(media_type: &str) -> bool {
    matches!(
        media_type,
        media::OCI_INDEX | media::OCI_MANIFEST | media::DOCKER_LIST | media::DOCKER_MANIFEST
    ) || media_type.ends_with("manifest.v1+json")
        || media_type.ends_with("manifest.v1+prettyjws")
}

impl Catalog {
    /// Indexes the opened `bundles` (later ones win) under `target`'s prefix.
    pub fn build(
        bundles: Vec<Bundle>,
        target: &RegistryPrefix,
        keep_registry: bool,
    ) -> anyhow::Result<Catalog> {
        let mut repos: BTreeMap<String, BTreeMap<String, Tagged>> = BTreeMap::new();
        let mut blobs = HashMap::new();
        let mut references = BTreeSet::new();
        for (i, bundle) in bundles.iter().enumerate() {
            // A compact bundle's gzip layers too: rebuilt from their raw tars as they are read.
            let toc = bundle.toc();
            let listed = (toc.blobs.iter().map(|b| (&b.digest, b.size, &b.media_type))).chain(
                toc.compact
                    .iter()
                    .map(|c| (&c.digest, c.size, &c.media_type)),
            );
            for (digest, size, media_type) in listed {
                if bundle.has_blob(digest) {
                    blobs.insert(
                        digest.clone(),
                        BlobInfo {
                            bundle: i,
                            size,
                            media_type: media_type.clone(),
                        },
                    );
                }
            }
            for image in &bundle.toc().images {
                let name = Reference::parse(&image.name).with_context(|| {
                    format!(
                        "bundle {} names an invalid image `{}`",
                        bundle.path().display(),
                        image.name
                    )
                })?;
                let repo = target.repository_for(&name, keep_registry)?;
                let tags = repos.entry(repo.clone()).or_default();
                match name.tag() {
                    Some(tag) => {
                        tags.insert(
                            tag.to_string(),
                            Tagged {
                                digest: image.digest.clone(),
                                media_type: image.media_type.clone(),
                            },
                        );
                        references.insert(format!("{repo}:{tag}"));
                    }
                    None => {
                        references.insert(format!("{repo}@{}", image.digest));
                    }
                }
            }
        }
        let referrers = find_referrers(&bundles, &blobs);
        Ok(Catalog {
            bundles,
            repos,
            blobs,
            referrers,
            references: references.into_iter().collect(),
        })
    }

    /// The blob `digest`, if a bundle holds it.
    pub fn blob(&self, digest: &Digest) -> Option<&BlobInfo> {
        self.blobs.get(digest)
    }

    /// The bundle a blob is read from.
    pub fn bundle_of(&self, info: &BlobInfo) -> &Bundle {
        &self.bundles[info.bundle]
    }
}

/// Reads every OCI manifest and index once and indexes the ones with a `subject` by it.
/// One that cannot be read is left out here (serving it reports the damage).
fn find_referrers(
    bundles: &[Bundle],
    blobs: &HashMap<Digest, BlobInfo>,
) -> HashMap<Digest, Vec<serde_json::Value>> {
    let mut out: HashMap<Digest, Vec<serde_json::Value>> = HashMap::new();
    let mut found: Vec<(&Digest, &BlobInfo)> = blobs
        .iter()
        .filter(|(_, i)| i.media_type == media::OCI_MANIFEST || i.media_type == media::OCI_INDEX)
        .collect();
    found.sort_by(|a, b| a.0.cmp(b.0));
    for (digest, info) in found {
        let Ok(bytes) =
            bundles[info.bundle].read_entry(&digest.blob_path(), crate::oci::MAX_MANIFEST_SIZE)
        else {
            continue;
        };
        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        let Some(subject) = doc["subject"]["digest"]
            .as_str()
            .and_then(|d| Digest::parse(d).ok())
        else {
            continue;
        };
        let artifact_type = doc["artifactType"]
            .as_str()
            .or_else(|| doc["config"]["mediaType"].as_str())
            .map(str::to_string);
        let mut d = serde_json::json!({
            "mediaType": info.media_type,
            "digest": digest.to_string(),
            "size": info.size,
        });
        if let Some(t) = artifact_type {
            d["artifactType"] = t.into();
        }
        if doc["annotations"].is_object() {
            d["annotations"] = doc["annotations"].clone();
        }
        out.entry(subject).or_default().push(d);
    }
    out
}

/// One page of a sorted list after `last` (exclusive), at most `n` long, and whether
/// more follow.
pub(crate) fn page<'a>(
    items: impl Iterator<Item = &'a String>,
    last: Option<&str>,
    n: Option<usize>,
) -> (Vec<String>, bool) {
    let mut after = items.filter(|s| last.is_none_or(|l| s.as_str() > l));
    let mut out = Vec::new();
    for s in after.by_ref() {
        if n.is_some_and(|n| out.len() >= n) {
            return (out, true);
        }
        out.push(s.clone());
    }
    (out, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages() {
        let v: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        assert_eq!(page(v.iter(), None, None), (v.clone(), false));
        assert_eq!(
            page(v.iter(), None, Some(2)),
            (vec!["a".into(), "b".into()], true)
        );
        assert_eq!(
            page(v.iter(), Some("b"), Some(2)),
            (vec!["c".into(), "d".into()], false)
        );
        assert_eq!(page(v.iter(), Some("d"), Some(2)), (vec![], false));
        assert!(is_manifest_type(media::OCI_INDEX));
        assert!(!is_manifest_type(media::OCI_CONFIG));
    }
}
