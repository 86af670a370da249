//! Signatures, attestations and SBOMs pushed with their images: which of the bundle's
//! artifacts (the TOC's `artifacts`) go where, and the phase that writes them.
//!
//! An artifact goes with the images whose graph its subject chain leads to (its
//! subject, or the subject of the artifact it refers to, and so on) in the target
//! repository its own `repository` maps to; an artifact of an image not pushed (not
//! chosen with `--image`) stays behind. Artifacts listed inside an image's index
//! (BuildKit's attestation manifests, found `in-index`) are children of that index
//! and go with its graph, so they are not planned here. The blobs of the others join
//! the images' blob phase (so they are checked present, uploaded or mounted, and left
//! out of a differential bundle like any blob); this phase runs after the images'
//! manifests and before their tags, so that a tag appears only once its signatures are
//! there: an artifact that cannot be written takes out the images it belongs to, like
//! a manifest would.
//!
//! Per artifact, in order of chain depth (an artifact before the artifacts about it):
//! its manifest by digest, byte-exact (`HEAD` first: present ones are skipped); then,
//! for referrers (a manifest with a `subject`), the referrers tag index of the subject
//! unless the registry indexed it itself ([`super::referrers`]); then cosign's tag
//! (`sha256-<hex>.sig`), pointed at it (a tag that pointed elsewhere, perhaps at a
//! signature made on this side, is moved like an image tag, with a note naming what
//! it held).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow, bail};
use rayon::prelude::*;
use serde_json::Value;

use super::plan::{Plan, PlannedImage};
use super::referrers::{self, IndexOutcome};
use super::summary::{Action, ArtifactTotals};
use super::target::repository_for;
use super::{Ctx, Failure};
use crate::bundle::Bundle;
use crate::bundle::graph::read_manifest;
use crate::bundle::toc::{ArtifactFound, TocArtifact};
use crate::digest::Digest;
use crate::oci::{Descriptor, Parsed, RawManifest};
use crate::reference::Reference;
use crate::settings::PushSettings;
use crate::sync::lock;

/// How long a chain of artifacts about artifacts may be (a signature on an SBOM on an
/// image is 2).
const MAX_CHAIN: usize = 8;

/// One artifact and where it goes.
#[derive(Debug, Clone)]
pub(crate) struct PlannedArtifact {
    pub toc: TocArtifact,
    /// The target repository.
    pub repo: String,
    /// The manifests to push in order: an index artifact's children first, the
    /// artifact's own manifest last.
    pub manifests: Vec<Arc<RawManifest>>,
    /// Its configs and layers, each once.
    pub blobs: Vec<Descriptor>,
    /// 0 when its subject is an image's manifest, 1 + the depth of its subject otherwise.
    pub depth: usize,
    /// The `subject` field of its manifest: it is a referrer of that digest.
    pub referrer_of: Option<Digest>,
    /// Its entry in a referrers index (OCI distribution spec: media type, digest,
    /// size, artifactType and annotations).
    pub descriptor: Value,
    /// Indexes into the plan's images it belongs to.
    pub images: Vec<usize>,
}

/// Chooses and reads the artifacts of the images in `images` (whose `artifacts` lists
/// are filled in here). Errors name the artifact and the bundle.
pub(crate) fn plan_artifacts(
    bundle: &Bundle,
    settings: &PushSettings,
    images: &mut [PlannedImage],
) -> anyhow::Result<Vec<PlannedArtifact>> {
    let toc = bundle.toc();
    let mut by_digest: HashMap<&Digest, &TocArtifact> = HashMap::new();
    for a in &toc.artifacts {
        by_digest.entry(&a.digest).or_insert(a);
    }
    let mut out: Vec<PlannedArtifact> = Vec::new();
    let mut seen: HashSet<(String, Digest)> = HashSet::new();
    for a in &toc.artifacts {
        if a.found == ArtifactFound::InIndex {
            continue;
        }
        // Follow the subject chain down to a manifest that is not an artifact.
        let mut root = &a.subject;
        let mut depth = 0;
        while let Some(up) = by_digest.get(root) {
            if up.found == ArtifactFound::InIndex {
                break;
            }
            depth += 1;
            if depth > MAX_CHAIN {
                bail!(
                    "artifact {} in bundle {} refers to a chain of more than {MAX_CHAIN} artifacts \
                     (or a loop); run `airlock verify` on it, or push with --no-referrers",
                    a.digest,
                    bundle.path().display()
                );
            }
            root = &up.subject;
        }
        let name = Reference::parse(&a.repository).with_context(|| {
            format!(
                "artifact {} in bundle {} names an invalid repository `{}`",
                a.digest,
                bundle.path().display(),
                a.repository
            )
        })?;
        let repo = repository_for(&settings.target, &name, settings.keep_registry)?;
        let owners: Vec<usize> = images
            .iter()
            .enumerate()
            .filter(|(_, i)| i.repo == repo && (i.root == *root || i.manifests.contains(root)))
            .map(|(n, _)| n)
            .collect();
        if owners.is_empty() || !seen.insert((repo.clone(), a.digest.clone())) {
            continue;
        }
        let planned = read_artifact(bundle, a, repo, depth, owners).with_context(|| {
            format!(
                "cannot read {} {} (of {}) from bundle {}; run `airlock verify` on it, or push \
                 with --no-referrers",
                a.kind.word(),
                a.digest,
                a.subject,
                bundle.path().display()
            )
        })?;
        for &i in &planned.images {
            images[i].artifacts.push(a.digest.clone());
        }
        out.push(planned);
    }
    Ok(out)
}

/// Reads an artifact's manifest (and, for an index, its children) from the bundle,
/// each rehashed.
fn read_artifact(
    bundle: &Bundle,
    a: &TocArtifact,
    repo: String,
    depth: usize,
    images: Vec<usize>,
) -> anyhow::Result<PlannedArtifact> {
    let raw = read_manifest(bundle, &a.digest, &a.media_type)?;
    let mut manifests = Vec::new();
    let mut blobs: Vec<Descriptor> = Vec::new();
    let add = |blobs: &mut Vec<Descriptor>, d: &Descriptor| {
        if !blobs.iter().any(|b| b.digest == d.digest) {
            blobs.push(d.clone());
        }
    };
    match raw.parse()? {
        Parsed::Manifest(m) => {
            for d in std::iter::once(&m.config).chain(&m.layers) {
                add(&mut blobs, d);
            }
        }
        Parsed::Index(index) => {
            for child in &index.manifests {
                let c = read_manifest(bundle, &child.digest, &child.media_type)
                    .with_context(|| format!("its index lists {}", child.digest))?;
                if let Parsed::Manifest(m) = c.parse()? {
                    for d in std::iter::once(&m.config).chain(&m.layers) {
                        add(&mut blobs, d);
                    }
                }
                manifests.push(Arc::new(c));
            }
        }
    }
    let doc: Value = serde_json::from_slice(&raw.bytes)
        .with_context(|| format!("manifest {} is not JSON", a.digest))?;
    let referrer_of = doc
        .pointer("/subject/digest")
        .and_then(Value::as_str)
        .map(|d| {
            Digest::parse(d).map_err(|e| anyhow!("its `subject` digest `{d}` is invalid: {e}"))
        })
        .transpose()?;
    let descriptor = referrers::descriptor_of(&raw, &doc);
    manifests.push(Arc::new(raw));
    Ok(PlannedArtifact {
        toc: a.clone(),
        repo,
        manifests,
        blobs,
        depth,
        referrer_of,
        descriptor,
        images,
    })
}

/// A referrer to index, with whether its `PUT` was answered with `OCI-Subject`
/// (`None`: it was not `PUT` this run).
pub(crate) type Referrer<'a> = (&'a PlannedArtifact, Option<bool>);

/// What happened to each (repository, artifact): its manifest's action.
pub(crate) type ArtifactActions = HashMap<(String, Digest), Action>;

/// How an artifact's manifest went: its action, and for a `PUT`, whether the
/// registry answered with `OCI-Subject` (it indexes referrers itself).
#[derive(Clone, Copy)]
struct Pushed {
    action: Action,
    indexed: Option<bool>,
}

/// Pushes the artifacts of every image not `broken`: manifests by digest (depth by
/// depth), then referrers indexes, then cosign tags (`HEAD` only when `dry_run`).
/// Returns what was done and the failures (an authentication failure or Ctrl-C ends
/// the phase, `Err`).
pub(crate) fn push_artifacts(
    ctx: &Ctx<'_>,
    plan: &Plan,
    dry_run: bool,
    broken: &[bool],
) -> Result<(ArtifactActions, ArtifactTotals, Vec<Failure>), Vec<Failure>> {
    let live: Vec<&PlannedArtifact> = plan
        .artifacts
        .iter()
        .filter(|a| a.images.iter().any(|&i| !broken[i]))
        .collect();
    let mut failures: Vec<Failure> = Vec::new();
    let done: Mutex<(ArtifactActions, ArtifactTotals)> = Mutex::default();
    let mut pushed: HashMap<(String, Digest), Pushed> = HashMap::new();
    let mut failed: HashSet<Digest> = HashSet::new();
    let max_depth = live.iter().map(|a| a.depth).max().unwrap_or(0);
    for depth in 0..=max_depth {
        let these: Vec<&&PlannedArtifact> = live
            .iter()
            .filter(|a| a.depth == depth && !failed.contains(&a.toc.subject))
            .collect();
        let results: Vec<Result<Option<Pushed>, Failure>> = ctx.pool.install(|| {
            these
                .par_iter()
                .map(|a| {
                    ctx.run(&a.repo, &a.toc.digest, "artifact", || {
                        let p = push_manifests(ctx, a, dry_run).with_context(|| {
                            format!(
                                "{} {} (of {}) was not pushed; `push --no-referrers` pushes \
                                 the images without their artifacts",
                                &a.toc.kind.word(),
                                a.toc.digest,
                                a.toc.subject
                            )
                        })?;
                        let mut d = lock(&done);
                        match p.action {
                            Action::Skipped => d.1.skipped += 1,
                            _ => d.1.pushed += 1,
                        }
                        d.0.insert((a.repo.clone(), a.toc.digest.clone()), p.action);
                        Ok(p)
                    })
                })
                .collect()
        });
        for (a, r) in these.iter().zip(results) {
            match r {
                Ok(Some(p)) => {
                    pushed.insert((a.repo.clone(), a.toc.digest.clone()), p);
                }
                Ok(None) => {
                    failed.insert(a.toc.digest.clone());
                }
                Err(f) => {
                    failed.insert(a.toc.digest.clone());
                    failures.push(f);
                }
            }
        }
        if ctx.aborted() {
            return Err(failures);
        }
    }
    let ok = |a: &PlannedArtifact| pushed.get(&(a.repo.clone(), a.toc.digest.clone())).copied();

    // Referrers indexes, one per (repository, subject), each with every referrer of it.
    let mut groups: BTreeMap<(String, Digest), Vec<Referrer<'_>>> = BTreeMap::new();
    for a in &live {
        let (Some(subject), Some(p)) = (&a.referrer_of, ok(a)) else {
            continue;
        };
        if p.indexed == Some(true) {
            lock(&done).1.indexed_by_registry += 1;
            continue;
        }
        groups
            .entry((a.repo.clone(), subject.clone()))
            .or_default()
            .push((a, p.indexed));
    }
    let groups: Vec<_> = groups.into_iter().collect();
    let merged: Vec<Result<Option<IndexOutcome>, Failure>> = ctx.pool.install(|| {
        groups
            .par_iter()
            .map(|((repo, subject), entries)| {
                ctx.run(repo, subject, "referrers index", || {
                    referrers::merge(ctx, repo, subject, entries, dry_run)
                })
            })
            .collect()
    });
    for (((_, _), entries), r) in groups.iter().zip(merged) {
        match r {
            Ok(Some(outcome)) => {
                let t = &mut lock(&done).1;
                match outcome {
                    IndexOutcome::Unchanged => t.indexes_unchanged += 1,
                    IndexOutcome::Written => t.indexes_written += 1,
                    IndexOutcome::ByRegistry => t.indexed_by_registry += entries.len() as u64,
                }
            }
            Ok(None) => {}
            Err(f) => failures.push(f),
        }
    }
    if ctx.aborted() {
        return Err(failures);
    }

    // Cosign's tags, once what they name is there.
    let tagged: Vec<&&PlannedArtifact> = live
        .iter()
        .filter(|a| a.toc.tag.is_some() && ok(a).is_some())
        .collect();
    let tag_results: Vec<Result<Option<()>, Failure>> = ctx.pool.install(|| {
        tagged
            .par_iter()
            .map(|a| {
                let tag = a.toc.tag.as_deref().unwrap_or_default();
                ctx.run(&a.repo, &a.toc.digest, "artifact tag", || {
                    let raw = a.manifests.last().expect("the artifact's own manifest");
                    let there = ctx.client.manifest_digest(ctx.registry, &a.repo, tag)?;
                    let action = match &there {
                        Some(d) if *d == a.toc.digest => Action::Skipped,
                        _ if dry_run => Action::WouldPush,
                        _ => {
                            ctx.client.put_manifest(ctx.registry, &a.repo, tag, raw)?;
                            Action::Pushed
                        }
                    };
                    // Tags move, as image tags do; but a signature tag pointing elsewhere
                    // may hold a signature made on this side: say which one it held.
                    if let Some(old) = there.filter(|d| *d != a.toc.digest) {
                        ctx.progress.message(&format!(
                            "note: {}/{}:{tag} pointed at {old}; it {} {} ({} of {})",
                            ctx.registry,
                            a.repo,
                            if dry_run {
                                "would now point at"
                            } else {
                                "now points at"
                            },
                            a.toc.digest,
                            &a.toc.kind.word(),
                            a.toc.subject
                        ));
                    }
                    let t = &mut lock(&done).1;
                    match action {
                        Action::Skipped => t.tags_unchanged += 1,
                        _ => t.tags_pushed += 1,
                    }
                    Ok(())
                })
                .map_err(|f| Failure {
                    error: f.error.context(format!(
                        "cannot set tag {}/{}:{tag} of {} {}",
                        ctx.registry,
                        a.repo,
                        &a.toc.kind.word(),
                        a.toc.digest
                    )),
                    ..f
                })
            })
            .collect()
    });
    failures.extend(tag_results.into_iter().filter_map(Result::err));
    if ctx.aborted() {
        return Err(failures);
    }
    let (actions, totals) = done.into_inner().unwrap();
    Ok((actions, totals, failures))
}

/// Pushes an artifact's manifests by digest (children first), each skipped when the
/// repository has it.
fn push_manifests(ctx: &Ctx<'_>, a: &PlannedArtifact, dry_run: bool) -> anyhow::Result<Pushed> {
    let mut last = Pushed {
        action: Action::Skipped,
        indexed: None,
    };
    for m in &a.manifests {
        let digest = m.digest.as_str();
        let there = ctx.client.manifest_digest(ctx.registry, &a.repo, digest)?;
        last = match there {
            Some(_) => Pushed {
                action: Action::Skipped,
                indexed: None,
            },
            None if dry_run => Pushed {
                action: Action::WouldPush,
                indexed: None,
            },
            None => {
                let (_, subject) =
                    ctx.client
                        .put_manifest_subject(ctx.registry, &a.repo, digest, m)?;
                Pushed {
                    action: Action::Pushed,
                    indexed: Some(subject.is_some()),
                }
            }
        };
    }
    Ok(last)
}
