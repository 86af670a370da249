//! `airlock push`: a bundle's images into a registry, every digest kept.
//!
//! This module owns the push pipeline and its error reporting; the parts are:
//! - [`plan`]: which TOC names go where (selection, target references) and what each
//!   target repository needs, built from the bundle alone and checked against it
//!   before the target is touched;
//! - [`blobs`]: HEAD, upload once, mount the rest, streaming from the bundle with
//!   every byte re-hashed;
//! - [`manifests`]: image manifests by digest, then indexes level by level, then tags;
//! - [`artifacts`] and [`referrers`]: the signatures, attestations and SBOMs of the
//!   images pushed (after their manifests, before their tags), cosign's tags, and the
//!   referrers tag index merged on a target without the referrers API;
//! - [`summary`]: the `--json` document and the human report;
//! - [`failures`]: the error of a failed push, with advice per cause (registry dialects
//!   included);
//! - [`base`]: for a differential bundle, the check that the target already holds
//!   every blob it leaves out (before anything is written), and where to mount them from;
//! - [`target`]: the name mapping, where a source name goes under the target prefix.
//!
//! The order is the contract: all blobs (across every repository) before any manifest,
//! child manifests before the indexes naming them, then the images' artifacts, tags
//! last (level by level, image manifests' before indexes'). A failed blob stops the
//! push before any manifest. A manifest or tag the target refuses takes out only the
//! images needing it: no index above it and none of their tags is written, every other
//! image whose whole graph arrived is tagged, and the push fails (exit 1) naming the
//! images not written ([`PartialPush`] carries the summary). So no tag on the target
//! ever points at something incomplete, and a failed or interrupted push is finished
//! by running it again (everything already there is found and skipped, see
//! [`failures`] for the messages); Ctrl-C or SIGTERM stops the push the
//! same way, at the next read of the bundle or the next unit of work, and says where
//! it was ([`crate::interrupt`]). Work within a phase runs on a pool
//! of `--jobs` threads; memory stays flat because blobs are only ever streamed, and
//! only manifests (small) are held.

mod artifacts;
mod base;
mod blobs;
mod failures;
mod manifests;
mod plan;
mod referrers;
mod summary;
mod target;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, anyhow};
use rayon::prelude::*;

pub use summary::{
    Action, ArtifactReport, ArtifactTotals, BlobReport, BlobTotals, ImageReport, ImageStatus,
    ManifestReport, ManifestTotals, PartialPush, PushSummary, TagTotals,
};

use crate::bundle::Bundle;
use crate::bundle::graph::{ImageGraph, read_graph};
use crate::digest::Digest;
use crate::progress::Progress;
use crate::registry::Client;
use crate::settings::PushSettings;
use crate::sync::lock;
use crate::words::count;
use failures::{failed, registry_error};

/// Everything the phases share.
pub(crate) struct Ctx<'a> {
    client: &'a Client,
    bundle: &'a Bundle,
    registry: &'a str,
    pool: &'a rayon::ThreadPool,
    progress: &'a dyn Progress,
    /// `--dry-run`: nothing is written, so a failure leaves nothing to finish.
    dry_run: bool,
    /// Set on an authentication failure or an unreachable registry: every further request would fail the same way.
    abort: AtomicBool,
    /// After Ctrl-C: the first unit of work (kind, repository, digest) not started.
    stopped_at: std::sync::Mutex<Option<(&'static str, String, Digest)>>,
}

impl Ctx<'_> {
    fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed) || crate::interrupt::requested()
    }

    /// Runs one unit of work on (`repo`, `digest`) unless the push was aborted
    /// (`Ok(None)`); a failure is returned as a [`Failure`] for the final report.
    fn run<T>(
        &self,
        repo: &str,
        digest: &Digest,
        kind: &'static str,
        work: impl FnOnce() -> anyhow::Result<T>,
    ) -> Result<Option<T>, Failure> {
        if self.aborted() {
            if crate::interrupt::requested() {
                let mut at = lock(&self.stopped_at);
                at.get_or_insert_with(|| (kind, repo.to_string(), digest.clone()));
            }
            return Ok(None);
        }
        work().map(Some).map_err(|error| {
            if registry_error(&error).is_some_and(|e| e.is_auth() || e.unreachable().is_some()) {
                self.abort.store(true, Ordering::Relaxed);
            }
            Failure {
                kind,
                repo: repo.to_string(),
                digest: digest.clone(),
                target: None,
                error,
            }
        })
    }
}

/// One blob, manifest or tag that could not be pushed.
pub(crate) struct Failure {
    /// `blob`, `manifest` or `tag`.
    kind: &'static str,
    repo: String,
    /// The blob or manifest (for a tag: its root).
    digest: Digest,
    /// For a tag: the target reference (`registry/repo:tag`) that was not set.
    target: Option<String>,
    error: anyhow::Error,
}

pub fn push(settings: &PushSettings, progress: &dyn Progress) -> anyhow::Result<PushSummary> {
    let bundle = Bundle::open(&settings.bundle)?;
    // --trust: the signature over the head is checked before anything else is read or
    // written (a few kilobytes; the blobs are verified as they stream, as always).
    if !settings.trust.is_empty() {
        crate::bundle::signature::require_trusted(&bundle, &settings.trust)?;
    }
    let selected = plan::select(&bundle, &settings.images)?;
    // --key / --policy: every selected image judged from the signatures the bundle
    // carries, before anything is written to the target.
    if let Some(policy) = &settings.image_policy {
        let verdicts = crate::bundle::verify::check_bundle_images(&bundle, &selected, policy);
        crate::trust::refuse(&verdicts, policy.origin(), "nothing was pushed")?;
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(settings.jobs)
        .build()?;

    // Read (and verify) every selected image's manifests from the bundle.
    let graphs: Vec<anyhow::Result<ImageGraph>> = pool.install(|| {
        selected
            .par_iter()
            .map(|image| {
                read_graph(&bundle, image).with_context(|| {
                    format!(
                        "cannot read `{}` from bundle {}",
                        image.name,
                        bundle.path().display()
                    )
                })
            })
            .collect()
    });
    let mut images = Vec::new();
    let mut errors = Vec::new();
    for (toc, g) in selected.iter().zip(graphs) {
        match g {
            Ok(g) => images.push((*toc, g)),
            Err(e) => errors.push(e),
        }
    }
    if errors.len() == 1 {
        return Err(errors.remove(0).context("nothing was pushed"));
    }
    if !errors.is_empty() {
        let mut msg = format!(
            "{} images cannot be read from bundle {}, so nothing was pushed; run `airlock verify` on it:",
            errors.len(),
            bundle.path().display()
        );
        for e in &errors {
            let _ = write!(msg, "\n  - {e:#}");
        }
        return Err(anyhow!(msg));
    }

    let plan = plan::build(&bundle, settings, &images)?;
    let client = Client::new(settings.client.clone())?;
    let ctx = Ctx {
        client: &client,
        bundle: &bundle,
        registry: &settings.target.registry,
        pool: &pool,
        progress,
        dry_run: settings.dry_run,
        abort: AtomicBool::new(false),
        stopped_at: std::sync::Mutex::new(None),
    };
    let dry = settings.dry_run;
    // A differential bundle: what it leaves out must be on the target already.
    let mount_from = base::check_omitted(&ctx, &plan, settings)?;
    // A manifest or tag that fails takes out the images needing it (they get no index
    // and no tag) and the others go on; a failed blob, an authentication failure or
    // Ctrl-C stops everything.
    let mut broken = vec![false; plan.images.len()];
    let mut failures: Vec<Failure> = Vec::new();
    let (blob_actions, blob_totals) = match blobs::push_blobs(&ctx, &plan, dry, &mount_from) {
        Ok((actions, totals, f)) => {
            failures.extend(f);
            (actions, totals)
        }
        Err(f) => return Err(failed(&ctx, &plan, f, NOTHING_WRITTEN)),
    };
    // A failed blob stops the push before any manifest (a damaged bundle is not
    // trusted for any image): the phases below take out single images only.
    if !failures.is_empty() {
        return Err(failed(&ctx, &plan, failures, NOTHING_WRITTEN));
    }
    let (manifest_actions, manifest_totals) =
        match manifests::push_manifests(&ctx, &plan, dry, &mut broken) {
            Ok((actions, totals, f)) => {
                failures.extend(f);
                (actions, totals)
            }
            Err(f) => {
                failures.extend(f);
                return Err(failed(&ctx, &plan, failures, NO_INDEX_OR_TAG));
            }
        };
    if broken.iter().all(|&b| b) {
        return Err(failed(&ctx, &plan, failures, NO_INDEX_OR_TAG));
    }
    // Signatures, attestations and SBOMs, before the tags: a tag appears only with them.
    let (artifact_actions, artifact_totals) =
        match artifacts::push_artifacts(&ctx, &plan, dry, &broken) {
            Ok((actions, totals, f)) => {
                plan.mark_broken(&f, &mut broken);
                failures.extend(f);
                (actions, totals)
            }
            Err(f) => {
                failures.extend(f);
                return Err(failed(&ctx, &plan, failures, NO_INDEX_OR_TAG));
            }
        };
    if broken.iter().all(|&b| b) {
        return Err(failed(&ctx, &plan, failures, NO_INDEX_OR_TAG));
    }
    let (tag_actions, tag_totals) = match manifests::push_tags(&ctx, &plan, dry, &broken) {
        Ok((actions, totals, f)) => {
            failures.extend(f);
            (actions, totals)
        }
        Err(f) => {
            failures.extend(f);
            return Err(failed(&ctx, &plan, failures, ONLY_TAGS_MISSING));
        }
    };
    plan.mark_broken(&failures, &mut broken);
    if !failures.is_empty() && broken.iter().all(|&b| b) {
        let consequence = if failures.iter().all(|f| f.kind == "tag") {
            ONLY_TAGS_MISSING
        } else {
            NO_INDEX_OR_TAG
        };
        return Err(failed(&ctx, &plan, failures, consequence));
    }

    let status = |a: Option<&Action>| match a {
        Some(Action::Pushed) => ImageStatus::Pushed,
        Some(Action::WouldPush) => ImageStatus::WouldPush,
        _ => ImageStatus::Unchanged,
    };
    let reports = plan
        .images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            let key = |d: &Digest| (image.repo.clone(), d.clone());
            ImageReport {
                name: image.name.clone(),
                target: image.target.clone(),
                digest: image.root.clone(),
                source_digest: image.source_digest.clone(),
                note: image.note.clone(),
                status: match image.tag {
                    _ if broken[i] => ImageStatus::Failed,
                    Some(_) => status(tag_actions.get(&image.target)),
                    None => status(manifest_actions.get(&key(&image.root))),
                },
                blobs: image
                    .blobs
                    .iter()
                    .map(|b| BlobReport {
                        digest: b.digest.clone(),
                        size: b.size,
                        media_type: b.media_type.clone(),
                        action: blob_actions
                            .get(&key(&b.digest))
                            .copied()
                            .unwrap_or(Action::Skipped),
                    })
                    .collect(),
                manifests: image
                    .manifests
                    .iter()
                    .map(|d| ManifestReport {
                        digest: d.clone(),
                        media_type: plan
                            .manifest(d)
                            .map(|m| m.media_type.clone())
                            .unwrap_or_default(),
                        action: manifest_actions
                            .get(&key(d))
                            .copied()
                            .unwrap_or(Action::Skipped),
                    })
                    .collect(),
                artifacts: plan
                    .artifacts
                    .iter()
                    .filter(|a| a.images.contains(&i))
                    .map(|a| ArtifactReport {
                        digest: a.toc.digest.clone(),
                        kind: a.toc.kind,
                        artifact_type: a.toc.artifact_type.clone(),
                        subject: a.toc.subject.clone(),
                        tag: a.toc.tag.clone(),
                        action: artifact_actions
                            .get(&(a.repo.clone(), a.toc.digest.clone()))
                            .copied(),
                    })
                    .collect(),
            }
        })
        .collect();
    let summary = PushSummary {
        target: settings.target.to_string(),
        dry_run: dry,
        images: reports,
        blobs: blob_totals,
        manifests: manifest_totals,
        tags: tag_totals,
        artifacts: artifact_totals,
    };
    if failures.is_empty() {
        return Ok(summary);
    }
    // Some images were written, some not: the error carries the summary (the binary
    // still prints it) and names every image that was not written.
    let missing: Vec<String> = plan
        .images
        .iter()
        .zip(&broken)
        .filter(|(_, b)| **b)
        .map(|(i, _)| format!("{} (-> {})", i.name, i.target))
        .collect();
    let written = plan.images.len() - missing.len();
    let cause = failed(
        &ctx,
        &plan,
        failures,
        "no index or tag naming it was written",
    );
    Err(cause.context(PartialPush {
        message: format!(
            "{} of {} {} not written to {}: {}; the other {written} {} pushed \
             completely and tagged. Fix the cause below and run the same command again to finish \
             (what is already there is skipped)",
            missing.len(),
            count(plan.images.len() as u64, "image name"),
            if missing.len() == 1 { "was" } else { "were" },
            ctx.registry,
            missing.join(", "),
            if written == 1 { "was" } else { "were" }
        ),
        summary,
    }))
}

/// What was written when a blob failed for every image.
const NOTHING_WRITTEN: &str = "no manifest or tag was written, so nothing on the target points at \
     an incomplete image; fix the cause and run the same command again to finish (what is already \
     there is skipped)";
/// What was written when a manifest failed for every image.
const NO_INDEX_OR_TAG: &str =
    "no index or tag naming it was written; fix the cause and run the same command again to finish";
/// What was written when only tags failed.
const ONLY_TAGS_MISSING: &str = "every blob and manifest is on the target, only tags are \
     missing; run the same command again to finish";
