//! `airlock push`: a bundle's images into a registry, every digest kept.
//!
//! This module owns the push pipeline and its error reporting; the parts are:
//! - [`plan`]: which TOC names go where (selection, target references) and what each
//!   target repository needs, built from the bundle alone and checked against it
//!   before the target is touched;
//! - [`blobs`]: HEAD, upload once, mount the rest, streaming from the bundle with
//!   every byte re-hashed;
//! - [`manifests`]: image manifests by digest, then indexes level by level, then tags;
//! - [`summary`]: the `--json` document and the human report;
//! - [`base`]: for a differential bundle, the check that the target already holds
//!   every blob it leaves out (before anything is written), and where to mount them from;
//! - [`target`]: the name mapping, where a source name goes under the target prefix.
//!
//! The order is the contract: all blobs (across every repository) before any manifest,
//! child manifests before the indexes naming them, tags last. A phase that fails stops
//! the push before the next, so no tag on the target ever points at something
//! incomplete, and an interrupted push is finished by running it again (everything
//! already there is found by `HEAD` and skipped); Ctrl-C or SIGTERM stops the push the
//! same way, at the next read of the bundle or the next unit of work, and says where
//! it was ([`crate::interrupt`]). Work within a phase runs on a pool
//! of `--jobs` threads; memory stays flat because blobs are only ever streamed, and
//! only manifests (small) are held.

mod base;
mod blobs;
mod manifests;
mod plan;
mod summary;
mod target;

use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, anyhow};
use rayon::prelude::*;

pub use summary::{
    Action, BlobReport, BlobTotals, ImageReport, ImageStatus, ManifestReport, ManifestTotals,
    PushSummary, TagTotals,
};

use crate::bundle::Bundle;
use crate::bundle::graph::{ImageGraph, read_graph};
use crate::digest::{Digest, Mismatch};
use crate::progress::Progress;
use crate::registry::{Client, RegistryError};
use crate::settings::PushSettings;
use crate::sync::lock;
use plan::Plan;

/// How many failures an error message lists before summarizing the rest.
const MAX_LISTED_FAILURES: usize = 20;

/// Everything the phases share.
pub(crate) struct Ctx<'a> {
    client: &'a Client,
    bundle: &'a Bundle,
    registry: &'a str,
    pool: &'a rayon::ThreadPool,
    progress: &'a dyn Progress,
    /// Set on an authentication failure: every further request would fail the same way.
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
            if registry_error(&error).is_some_and(RegistryError::is_auth) {
                self.abort.store(true, Ordering::Relaxed);
            }
            Failure {
                kind,
                repo: repo.to_string(),
                digest: digest.clone(),
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
        abort: AtomicBool::new(false),
        stopped_at: std::sync::Mutex::new(None),
    };
    let dry = settings.dry_run;
    // A differential bundle: what it leaves out must be on the target already.
    let mount_from = base::check_omitted(&ctx, &plan, settings)?;
    let (blob_actions, blob_totals) = blobs::push_blobs(&ctx, &plan, dry, &mount_from).map_err(|f| {
        failed(
            &ctx,
            &plan,
            f,
            "no manifest or tag was written, so nothing on the target points at an incomplete image; \
             fix the cause and run the same command again to finish (what is already there is skipped)",
        )
    })?;
    let (manifest_actions, manifest_totals) =
        manifests::push_manifests(&ctx, &plan, dry).map_err(|f| {
            failed(
                &ctx,
                &plan,
                f,
                "no index or tag naming it was written; fix the cause and run the same command again to finish",
            )
        })?;
    let (tag_actions, tag_totals) = manifests::push_tags(&ctx, &plan, dry).map_err(|f| {
        failed(
            &ctx,
            &plan,
            f,
            "every blob and manifest is on the target, only tags are missing; run the same command again to finish",
        )
    })?;

    let status = |a: Option<&Action>| match a {
        Some(Action::Pushed) => ImageStatus::Pushed,
        Some(Action::WouldPush) => ImageStatus::WouldPush,
        _ => ImageStatus::Unchanged,
    };
    let reports = plan
        .images
        .iter()
        .map(|image| {
            let key = |d: &Digest| (image.repo.clone(), d.clone());
            ImageReport {
                name: image.name.clone(),
                target: image.target.clone(),
                digest: image.root.clone(),
                source_digest: image.source_digest.clone(),
                note: image.note.clone(),
                status: match image.tag {
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
            }
        })
        .collect();
    Ok(PushSummary {
        target: settings.target.to_string(),
        dry_run: dry,
        images: reports,
        blobs: blob_totals,
        manifests: manifest_totals,
        tags: tag_totals,
    })
}

/// The error for a failed phase: one line per failure naming what failed, the images
/// needing it, the target repository and what to do; `consequence` says what was (not)
/// written. An authentication failure is reported alone, as one line.
fn failed(ctx: &Ctx<'_>, plan: &Plan, failures: Vec<Failure>, consequence: &str) -> anyhow::Error {
    let registry = ctx.registry;
    if crate::interrupt::requested() {
        return interrupted(ctx, plan, &failures, consequence);
    }
    let Some(first) = failures.first() else {
        return anyhow!("the push to {registry} was stopped; {consequence}");
    };
    if let Some(pos) = failures
        .iter()
        .position(|f| registry_error(&f.error).is_some_and(RegistryError::is_auth))
    {
        let f = failures.into_iter().nth(pos).expect("position is valid");
        let line = format!(
            "cannot push {} to {registry}/{}: {registry} has no push access to {} for these credentials \
             (wrong credentials, or an account that may only pull); check `docker login {registry}`",
            plan.users_of(&f.digest),
            f.repo,
            f.repo
        );
        return f.error.context(line);
    }
    let describe = |f: &Failure| {
        let subject = match f.kind {
            "tag" => plan
                .images
                .iter()
                .find(|i| i.repo == f.repo && i.root == f.digest && i.tag.is_some())
                .map(|i| format!("tag {}", i.target))
                .unwrap_or_else(|| format!("a tag for {}", f.digest)),
            "manifest" => format!(
                "manifest {} ({})",
                f.digest,
                plan.manifest(&f.digest)
                    .map(|m| m.media_type.as_str())
                    .unwrap_or("unknown type")
            ),
            kind => format!("{kind} {}", f.digest),
        };
        format!(
            "cannot push {subject} of {} to {registry}/{}{}",
            plan.users_of(&f.digest),
            f.repo,
            advice(ctx, plan, f)
        )
    };
    if failures.len() == 1 {
        let line = describe(first);
        let f = failures.into_iter().next().expect("one failure");
        return f.error.context(format!("{line}; {consequence}"));
    }
    let mut msg = format!(
        "{} pushes to {registry} failed; {consequence}:",
        failures.len()
    );
    for f in failures.iter().take(MAX_LISTED_FAILURES) {
        let _ = write!(msg, "\n  - {}: {:#}", describe(f), f.error);
    }
    if failures.len() > MAX_LISTED_FAILURES {
        let _ = write!(
            msg,
            "\n  - and {} more",
            failures.len() - MAX_LISTED_FAILURES
        );
    }
    anyhow!(msg)
}

/// The error of a push stopped by Ctrl-C or SIGTERM: what it was doing (the transfers
/// the signal cut short), what that means, and how to finish.
fn interrupted(
    ctx: &Ctx<'_>,
    plan: &Plan,
    failures: &[Failure],
    consequence: &str,
) -> anyhow::Error {
    // What failed once the signal came is what it cut short (the error a transfer
    // reports may have lost the signal's own error type on the way through the client).
    let cut: Vec<String> = failures
        .iter()
        .take(MAX_LISTED_FAILURES)
        .map(|f| {
            format!(
                "{} {} of {} to {}/{}",
                f.kind,
                f.digest,
                plan.users_of(&f.digest),
                ctx.registry,
                f.repo
            )
        })
        .collect();
    let next = lock(&ctx.stopped_at).clone();
    let at = match (cut.is_empty(), next) {
        (false, _) => format!(" while pushing {}", cut.join(", ")),
        (true, Some((kind, repo, digest))) => format!(
            " before pushing {kind} {digest} of {} to {}/{repo}",
            plan.users_of(&digest),
            ctx.registry
        ),
        (true, None) => String::new(),
    };
    let consequence = consequence.replace("fix the cause and ", "");
    anyhow::Error::new(crate::interrupt::Interrupted(format!(
        "interrupted{at}; {consequence}"
    )))
}

/// What the operator should know about a failure beyond the registry's own message.
fn advice(ctx: &Ctx<'_>, plan: &Plan, f: &Failure) -> String {
    let media_type = plan.manifest(&f.digest).map(|m| m.media_type.as_str());
    explain(
        ctx.registry,
        ctx.bundle.path(),
        f.kind,
        media_type,
        &f.error,
    )
}

/// `: <why and what to do>` for a damaged bundle blob, a failing registry (5xx), a
/// request too large for a proxy, or a manifest type the registry refuses; empty
/// otherwise (the error's own message then says it all).
fn explain(
    registry: &str,
    bundle: &Path,
    kind: &str,
    media_type: Option<&str>,
    error: &anyhow::Error,
) -> String {
    for cause in error.chain() {
        if let Some(m) = cause
            .downcast_ref::<io::Error>()
            .and_then(Mismatch::from_io)
        {
            return format!(
                ": the bundle's copy of it is damaged ({m}), so it was not uploaded; \
                 run `airlock verify {}` and carry an intact copy of the bundle",
                bundle.display()
            );
        }
    }
    let Some(e) = registry_error(error) else {
        return String::new();
    };
    match e.status() {
        Some(s) if s >= 500 => format!(
            ": {registry} failed with HTTP {s} while storing it; its storage may be full or \
             failing: check the registry's disk and log"
        ),
        Some(413) => format!(
            ": {registry} (or a proxy in front of it) refused a request as too large; \
             raise its request size limit"
        ),
        Some(s) if kind != "blob" && (s == 415 || (s == 400 && rejects_content(e))) => format!(
            ": {registry} rejected the manifest; it may not support the media type {}: \
             check that the registry (and its version) accepts OCI and Docker schema 2 \
             manifests and indexes",
            media_type.unwrap_or("of this manifest")
        ),
        _ => String::new(),
    }
}

/// True when the registry's error code says it would not accept the content itself.
fn rejects_content(e: &RegistryError) -> bool {
    match e {
        RegistryError::Status { code, message, .. } => {
            let text = format!("{code} {message}").to_ascii_lowercase();
            code == "MANIFEST_INVALID"
                || code == "UNSUPPORTED"
                || text.contains("media type")
                || text.contains("unsupported")
        }
        RegistryError::RetriesExhausted { source, .. } => rejects_content(source),
        _ => false,
    }
}

/// The first registry error in `e`'s chain.
fn registry_error(e: &anyhow::Error) -> Option<&RegistryError> {
    e.chain().find_map(|c| c.downcast_ref::<RegistryError>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Op;

    fn status(status: u16, code: &str, message: &str) -> anyhow::Error {
        anyhow::Error::new(RegistryError::Status {
            registry: "reg.lan:5000".into(),
            repository: "mirror/app".into(),
            reference: String::new(),
            what: Op::PutManifest,
            status,
            code: code.into(),
            message: message.into(),
        })
    }

    #[test]
    fn explains_what_operators_hit() {
        let bundle = Path::new("/media/usb/release.tar.zst");
        let full = explain("reg.lan:5000", bundle, "blob", None, &status(503, "", ""));
        assert!(full.contains("HTTP 503") && full.contains("disk"), "{full}");

        let oci = "application/vnd.oci.image.index.v1+json";
        let invalid = status(400, "MANIFEST_INVALID", "manifest invalid");
        let rejected = explain("reg.lan:5000", bundle, "manifest", Some(oci), &invalid);
        assert!(rejected.contains(oci), "{rejected}");
        let missing = status(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry");
        assert_eq!(explain("r", bundle, "manifest", Some(oci), &missing), "");

        let damaged = io::Error::new(
            io::ErrorKind::InvalidData,
            Mismatch::Size {
                expected: 10,
                actual: 9,
            },
        );
        let damaged = anyhow::Error::new(damaged).context("upload failed");
        let text = explain("r", bundle, "blob", None, &damaged);
        assert!(
            text.contains("damaged") && text.contains("airlock verify /media/usb/release.tar.zst"),
            "{text}"
        );
    }
}
