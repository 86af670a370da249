//! Which images go where, and what each target repository needs.
//!
//! The plan is built entirely from the bundle before the target is contacted: the
//! selected TOC names, their target references, and per target repository the blobs
//! (configs, layers) and manifests (by digest, with their nesting level so children are
//! pushed before the indexes naming them) it must end up holding. Everything the plan
//! needs is checked to be in the bundle first, so a push never starts what it cannot
//! finish for want of a blob.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::{Context, bail};

use super::Failure;
use super::artifacts::{PlannedArtifact, plan_artifacts};
use super::target::repository_for;
use crate::bundle::Bundle;
use crate::bundle::graph::ImageGraph;
use crate::bundle::toc::TocImage;
use crate::digest::Digest;
use crate::oci::{Descriptor, Parsed, RawManifest, media};
use crate::progress::human_bytes;
use crate::reference::Reference;
use crate::settings::{PushSettings, UsageError};
use crate::words::count;

/// One TOC name and where it goes.
#[derive(Debug, Clone)]
pub(crate) struct PlannedImage {
    /// The TOC name (`docker.io/library/nginx:1.25`).
    pub name: String,
    /// The target repository (`mirror/library/nginx`).
    pub repo: String,
    /// The tag to set, or `None` for a name saved by digest only.
    pub tag: Option<String>,
    /// `registry/repo:tag` or `registry/repo@digest`.
    pub target: String,
    /// The root manifest or index.
    pub root: Digest,
    pub source_digest: Option<Digest>,
    pub note: Option<String>,
    /// Configs and layers, each once.
    pub blobs: Vec<Descriptor>,
    /// Manifests and indexes in push order, root last.
    pub manifests: Vec<Digest>,
    /// The manifest digests of the artifacts pushed with it (see [`super::artifacts`]).
    pub artifacts: Vec<Digest>,
}

/// A blob one target repository needs.
#[derive(Debug, Clone)]
pub(crate) struct RepoBlob {
    pub repo: String,
    pub desc: Descriptor,
}

/// A manifest or index one target repository needs.
#[derive(Debug, Clone)]
pub(crate) struct RepoManifest {
    pub repo: String,
    pub manifest: Arc<RawManifest>,
    /// 0 for an image manifest; an index is one more than its deepest child index.
    pub level: usize,
}

#[derive(Debug)]
pub(crate) struct Plan {
    pub images: Vec<PlannedImage>,
    /// Every (repository, blob) pair once.
    pub blobs: Vec<RepoBlob>,
    /// Every (repository, manifest) pair once, children before the indexes naming them.
    pub manifests: Vec<RepoManifest>,
    /// Indexes into `images` of the tags to set, one per target tag.
    pub tags: Vec<usize>,
    /// The image names needing each blob or manifest digest (for error messages).
    pub users: HashMap<Digest, BTreeSet<String>>,
    /// Every manifest and index of the plan by digest (they are small).
    pub raw: HashMap<Digest, Arc<RawManifest>>,
    /// The artifacts to push after the images' manifests, before their tags.
    pub artifacts: Vec<PlannedArtifact>,
}

impl Plan {
    /// `a, b and 3 more` for the images needing `digest`.
    pub(crate) fn users_of(&self, digest: &Digest) -> String {
        let names: Vec<&str> = self
            .users
            .get(digest)
            .map(|s| s.iter().map(String::as_str).collect())
            .unwrap_or_default();
        list(&names, 5)
    }

    /// True when image `i` needs `digest` in `repo`: that is its repository and its
    /// graph (or one of its artifacts) holds the digest.
    pub(crate) fn needs(&self, i: usize, repo: &str, digest: &Digest) -> bool {
        let image = &self.images[i];
        image.repo == repo
            && (image.root == *digest
                || image.manifests.contains(digest)
                || image.artifacts.contains(digest)
                || image.blobs.iter().any(|b| b.digest == *digest))
    }

    /// Marks in `broken` every image a failure takes out: those needing a failed blob
    /// or manifest, and those whose tag could not be set.
    pub(crate) fn mark_broken(&self, failures: &[Failure], broken: &mut [bool]) {
        for f in failures {
            for (i, b) in broken.iter_mut().enumerate() {
                let hit = match &f.target {
                    Some(target) => self.images[i].target == *target,
                    None => self.needs(i, &f.repo, &f.digest),
                };
                *b |= hit;
            }
        }
    }

    /// The manifest or index with this digest.
    pub fn manifest(&self, digest: &Digest) -> Option<&Arc<RawManifest>> {
        self.raw.get(digest)
    }
}

/// The TOC entries to push: all, or those whose name equals one of `wanted`.
pub(crate) fn select<'a>(
    bundle: &'a Bundle,
    wanted: &[Reference],
) -> anyhow::Result<Vec<&'a TocImage>> {
    let toc = &bundle.toc().images;
    if wanted.is_empty() {
        if toc.is_empty() {
            bail!(
                "bundle {} holds no images; nothing to push",
                bundle.path().display()
            );
        }
        return Ok(toc.iter().collect());
    }
    let parsed: Vec<Option<Reference>> =
        toc.iter().map(|i| Reference::parse(&i.name).ok()).collect();
    let mut chosen = BTreeSet::new();
    let mut unmatched = Vec::new();
    for w in wanted {
        let hits: Vec<usize> = parsed
            .iter()
            .enumerate()
            .filter(|(_, p)| p.as_ref() == Some(w))
            .map(|(i, _)| i)
            .collect();
        if hits.is_empty() {
            unmatched.push(w.to_string());
        }
        chosen.extend(hits);
    }
    if !unmatched.is_empty() {
        let names: Vec<&str> = toc.iter().map(|i| i.name.as_str()).collect();
        return Err(UsageError(format!(
            "--image {} matches no image in bundle {}; it holds: {} (see `airlock ls`)",
            unmatched.join(", "),
            bundle.path().display(),
            list(&names, 20)
        ))
        .into());
    }
    Ok(chosen.into_iter().map(|i| &toc[i]).collect())
}

/// Builds the plan from the selected images and their graphs.
pub fn build(
    bundle: &Bundle,
    settings: &PushSettings,
    images: &[(&TocImage, ImageGraph)],
) -> anyhow::Result<Plan> {
    let registry = settings.target.registry.clone();
    let mut planned = Vec::new();
    let mut blobs: BTreeMap<(String, Digest), Descriptor> = BTreeMap::new();
    let mut manifests: Vec<RepoManifest> = Vec::new();
    let mut seen_manifests: BTreeSet<(String, Digest)> = BTreeSet::new();
    let mut levels: HashMap<Digest, usize> = HashMap::new();
    let mut users: HashMap<Digest, BTreeSet<String>> = HashMap::new();
    let mut raw: HashMap<Digest, Arc<RawManifest>> = HashMap::new();
    let mut by_target: BTreeMap<String, usize> = BTreeMap::new();
    let mut tags = Vec::new();

    for (toc, graph) in images {
        let repo = repository_for(&settings.target, &graph.name, settings.keep_registry)?;
        let (tag, target) = match graph.name.tag() {
            Some(t) => (Some(t.to_string()), format!("{registry}/{repo}:{t}")),
            None => (None, format!("{registry}/{repo}@{}", toc.digest)),
        };
        for m in &graph.manifests {
            let level = manifest_level(m, &levels)
                .with_context(|| format!("cannot read the graph of `{}`", toc.name))?;
            levels.insert(m.digest.clone(), level);
            users
                .entry(m.digest.clone())
                .or_default()
                .insert(toc.name.clone());
            let shared = raw
                .entry(m.digest.clone())
                .or_insert_with(|| Arc::new(m.clone()));
            if seen_manifests.insert((repo.clone(), m.digest.clone())) {
                manifests.push(RepoManifest {
                    repo: repo.clone(),
                    manifest: Arc::clone(shared),
                    level,
                });
            }
        }
        for b in &graph.blobs {
            users
                .entry(b.digest.clone())
                .or_default()
                .insert(toc.name.clone());
            blobs
                .entry((repo.clone(), b.digest.clone()))
                .or_insert_with(|| b.clone());
        }
        let index = planned.len();
        planned.push(PlannedImage {
            name: toc.name.clone(),
            repo: repo.clone(),
            tag: tag.clone(),
            target: target.clone(),
            root: toc.digest.clone(),
            source_digest: toc.source_digest.clone(),
            note: toc.note.clone(),
            blobs: graph.blobs.clone(),
            manifests: graph.manifests.iter().map(|m| m.digest.clone()).collect(),
            artifacts: Vec::new(),
        });
        if tag.is_some() {
            match by_target.get(&target) {
                None => {
                    by_target.insert(target, index);
                    tags.push(index);
                }
                Some(&other) if planned[other].root == toc.digest => {}
                Some(&other) => {
                    return Err(UsageError(format!(
                        "`{}` and `{}` would both be pushed to {target} with different digests; \
                         push with --keep-registry, or choose one with --image",
                        planned[other].name, toc.name
                    ))
                    .into());
                }
            }
        }
    }

    // Signatures, attestations and SBOMs of the images chosen: their blobs are pushed
    // with the images' blobs (and checked present with them).
    let artifacts = if settings.no_referrers {
        Vec::new()
    } else {
        plan_artifacts(bundle, settings, &mut planned)?
    };
    for a in &artifacts {
        let names: Vec<String> = a.images.iter().map(|&i| planned[i].name.clone()).collect();
        users
            .entry(a.toc.digest.clone())
            .or_default()
            .extend(names.iter().cloned());
        for b in &a.blobs {
            users
                .entry(b.digest.clone())
                .or_default()
                .extend(names.iter().cloned());
            blobs
                .entry((a.repo.clone(), b.digest.clone()))
                .or_insert_with(|| b.clone());
        }
    }
    let plan = Plan {
        images: planned,
        blobs: blobs
            .into_iter()
            .map(|((repo, _), desc)| RepoBlob { repo, desc })
            .collect(),
        manifests,
        tags,
        users,
        raw,
        artifacts,
    };
    check_blobs_present(bundle, &plan)?;
    Ok(plan)
}

/// 0 for an image manifest; 1 + the deepest child index level for an index. Children
/// come first in a graph's manifest list, so their levels are known.
fn manifest_level(m: &RawManifest, levels: &HashMap<Digest, usize>) -> anyhow::Result<usize> {
    if !media::is_index(&m.media_type) {
        return Ok(0);
    }
    let Parsed::Index(index) = m.parse()? else {
        return Ok(0);
    };
    Ok(1 + index
        .manifests
        .iter()
        .filter_map(|c| levels.get(&c.digest))
        .max()
        .copied()
        .unwrap_or(0))
}

/// Refuses a plan that needs a blob the bundle does not hold, naming each such blob and
/// the images needing it.
fn check_blobs_present(bundle: &Bundle, plan: &Plan) -> anyhow::Result<()> {
    let mut missing: BTreeMap<&Digest, u64> = BTreeMap::new();
    // A differential bundle legitimately lacks what it leaves out (checked on the target later).
    let omitted: BTreeSet<&Digest> = bundle
        .toc()
        .base
        .iter()
        .flat_map(|b| b.omitted.iter().map(|o| &o.digest))
        .collect();
    for b in &plan.blobs {
        if !bundle.has_blob(&b.desc.digest) && !omitted.contains(&b.desc.digest) {
            missing.insert(&b.desc.digest, b.desc.size);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let mut msg = format!(
        "bundle {} lacks {} the images need, so nothing was pushed; \
         run `airlock verify` on it and carry a complete bundle:",
        bundle.path().display(),
        count(missing.len() as u64, "blob")
    );
    for (d, size) in &missing {
        let _ = write!(
            msg,
            "\n  {d} ({}), needed by {}",
            human_bytes(*size),
            plan.users_of(d)
        );
    }
    bail!(msg)
}

/// `a, b, c and 4 more`.
pub fn list(names: &[&str], max: usize) -> String {
    let mut s = names
        .iter()
        .take(max)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > max {
        let _ = write!(s, " and {} more", names.len() - max);
    }
    s
}
