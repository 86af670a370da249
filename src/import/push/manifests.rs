//! The manifest phases: image manifests by digest, then indexes by digest (level by
//! level, so an index is pushed only after every child index), then tags.
//!
//! Each manifest is first looked up with `HEAD` and skipped when the repository has it;
//! a tag already pointing at the bundle's digest is left alone. Bytes go out exactly as
//! stored, and `put_manifest` checks the registry's `Docker-Content-Digest` against
//! ours. Only what an image still whole needs is written: a manifest that fails takes
//! out every image needing it (in that repository), so no index above it and no tag
//! of those images is written, and the other images go on. Nothing ever names
//! something incomplete. An authentication failure or Ctrl-C stops the phase (`Err`).

use std::collections::HashMap;
use std::sync::Mutex;

use anyhow::anyhow;
use rayon::prelude::*;

use super::plan::{Plan, RepoManifest};
use super::summary::{Action, ManifestTotals, TagTotals};
use super::{Ctx, Failure};
use crate::digest::Digest;
use crate::sync::lock;

pub(crate) type ManifestActions = HashMap<(String, Digest), Action>;

/// Pushes by digest every manifest and index of the plan that an image not yet
/// `broken` needs (HEAD only when `dry_run`), level by level; the images a failure
/// takes out are marked in `broken` as it goes. Returns what was done and the failures.
pub(crate) fn push_manifests(
    ctx: &Ctx<'_>,
    plan: &Plan,
    dry_run: bool,
    broken: &mut [bool],
) -> Result<(ManifestActions, ManifestTotals, Vec<Failure>), Vec<Failure>> {
    let mut all_failures = Vec::new();
    let done = Mutex::new((ManifestActions::new(), ManifestTotals::default()));
    let max_level = plan.manifests.iter().map(|m| m.level).max().unwrap_or(0);
    for level in 0..=max_level {
        let wanted = |m: &&RepoManifest| {
            (0..plan.images.len()).any(|i| !broken[i] && plan.needs(i, &m.repo, &m.manifest.digest))
        };
        let these: Vec<&RepoManifest> = plan
            .manifests
            .iter()
            .filter(|m| m.level == level)
            .filter(wanted)
            .collect();
        let results: Vec<Result<Option<()>, Failure>> = ctx.pool.install(|| {
            these
                .par_iter()
                .map(|m| {
                    let digest = &m.manifest.digest;
                    ctx.run(&m.repo, digest, "manifest", || {
                        let there =
                            ctx.client
                                .manifest_digest(ctx.registry, &m.repo, digest.as_str())?;
                        let action = match there {
                            Some(_) => Action::Skipped,
                            None if dry_run => Action::WouldPush,
                            None => {
                                ctx.client.put_manifest(
                                    ctx.registry,
                                    &m.repo,
                                    digest.as_str(),
                                    &m.manifest,
                                )?;
                                Action::Pushed
                            }
                        };
                        let mut d = lock(&done);
                        match action {
                            Action::Skipped => d.1.skipped += 1,
                            _ => d.1.pushed += 1,
                        }
                        d.0.insert((m.repo.clone(), digest.clone()), action);
                        Ok(())
                    })
                })
                .collect()
        });
        let failures: Vec<Failure> = results.into_iter().filter_map(Result::err).collect();
        if ctx.aborted() {
            all_failures.extend(failures);
            return Err(all_failures);
        }
        plan.mark_broken(&failures, broken);
        all_failures.extend(failures);
    }
    let (actions, totals) = done.into_inner().unwrap();
    Ok((actions, totals, all_failures))
}

/// What happened to each target tag, by target reference.
pub(crate) type TagActions = HashMap<String, Action>;

/// Points every tag of an image not `broken` at its root (HEAD only when `dry_run`);
/// a tag already there is counted unchanged and not written. Returns what was done
/// and the tags that failed.
///
/// Tags go level by level too (image manifests' tags before indexes' tags): a
/// registry stores a manifest `PUT` under a tag again, and distribution 2.8 rewrites
/// the manifest's revision link while doing so; an index `PUT` checking that very
/// link at the same moment reads it empty and fails with `DIGEST_INVALID`.
pub(crate) fn push_tags(
    ctx: &Ctx<'_>,
    plan: &Plan,
    dry_run: bool,
    broken: &[bool],
) -> Result<(TagActions, TagTotals, Vec<Failure>), Vec<Failure>> {
    let done = Mutex::new((TagActions::new(), TagTotals::default()));
    let level = |i: usize| {
        let image = &plan.images[i];
        plan.manifests
            .iter()
            .find(|m| m.repo == image.repo && m.manifest.digest == image.root)
            .map_or(0, |m| m.level)
    };
    let max_level = plan.tags.iter().map(|&i| level(i)).max().unwrap_or(0);
    let mut failures = Vec::new();
    for at in 0..=max_level {
        let these: Vec<usize> = plan
            .tags
            .iter()
            .copied()
            .filter(|&i| !broken[i] && level(i) == at)
            .collect();
        failures.extend(push_tag_level(ctx, plan, dry_run, &these, &done));
        if ctx.aborted() {
            return Err(failures);
        }
    }
    let (actions, totals) = done.into_inner().unwrap();
    Ok((actions, totals, failures))
}

/// Sets the tags of images `these` (indexes into the plan's images) in parallel.
fn push_tag_level(
    ctx: &Ctx<'_>,
    plan: &Plan,
    dry_run: bool,
    these: &[usize],
    done: &Mutex<(TagActions, TagTotals)>,
) -> Vec<Failure> {
    let results: Vec<Result<Option<()>, Failure>> = ctx.pool.install(|| {
        these
            .par_iter()
            .map(|&i| {
                let image = &plan.images[i];
                let tag = image.tag.as_deref().unwrap_or_default();
                ctx.run(&image.repo, &image.root, "tag", || {
                    let root = plan.manifest(&image.root).ok_or_else(|| {
                        anyhow!(
                            "the root {} of `{}` is not in the plan",
                            image.root,
                            image.name
                        )
                    })?;
                    let there = ctx.client.manifest_digest(ctx.registry, &image.repo, tag)?;
                    let action = match there {
                        Some(d) if d == image.root => Action::Skipped,
                        _ if dry_run => Action::WouldPush,
                        _ => {
                            ctx.client
                                .put_manifest(ctx.registry, &image.repo, tag, root)?;
                            Action::Pushed
                        }
                    };
                    let mut d = lock(done);
                    match action {
                        Action::Skipped => d.1.unchanged += 1,
                        _ => d.1.pushed += 1,
                    }
                    d.0.insert(image.target.clone(), action);
                    Ok(())
                })
                .map_err(|f| Failure {
                    target: Some(image.target.clone()),
                    ..f
                })
            })
            .collect()
    });
    results.into_iter().filter_map(Result::err).collect()
}
