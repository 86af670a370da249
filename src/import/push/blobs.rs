//! The blob phase: every config and layer into every target repository that needs it.
//!
//! It runs in three passes so that the cheapest way is always taken and a digest is
//! uploaded before anything is mounted from it:
//! 1. `HEAD` every (repository, blob) pair; present ones are skipped;
//! 2. upload each digest the target holds nowhere, once, into the first repository
//!    needing it, streaming from the bundle through a [`VerifyingReader`] (which fails before handing out the last bytes of a
//!    damaged blob, so its upload never completes);
//! 3. mount every other missing pair from a repository that holds the digest (falling
//!    back to an upload when the registry declines). Blobs a differential bundle leaves
//!    out are mounted from where [`super::base`] found them on the target.
//!
//! Each pass runs on the `--jobs` pool. Failures are collected, not thrown at the first
//! one, so the operator learns every broken blob at once (a repository that was to
//! mount a digest whose upload failed is listed too), and returned with what was done;
//! the caller then writes no manifest. A failed `HEAD` pass, an authentication failure
//! (every other request would fail the same way) or Ctrl-C ends the phase at once (`Err`).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use anyhow::Context;
use rayon::prelude::*;

use super::base::MountFrom;
use super::plan::{Plan, RepoBlob};
use super::summary::{Action, BlobTotals};
use super::{Ctx, Failure};
use crate::digest::{Digest, VerifyingReader};
use crate::progress::ProgressReader;
use crate::sync::lock;

/// What each (repository, blob) pair got.
pub(crate) type BlobActions = HashMap<(String, Digest), Action>;

/// Plans and (unless `dry_run`) carries out the blob phase.
pub(crate) fn push_blobs(
    ctx: &Ctx<'_>,
    plan: &Plan,
    dry_run: bool,
    mount_from: &MountFrom,
) -> Result<(BlobActions, BlobTotals, Vec<Failure>), Vec<Failure>> {
    // 1. What does the target hold already?
    let present: Vec<Result<Option<bool>, Failure>> = ctx.pool.install(|| {
        plan.blobs
            .par_iter()
            .map(|b| {
                ctx.run(&b.repo, &b.desc.digest, "blob", || {
                    Ok(ctx
                        .client
                        .blob_exists(ctx.registry, &b.repo, &b.desc.digest)?)
                })
            })
            .collect()
    });
    let mut failures = Vec::new();
    let mut have = Vec::with_capacity(present.len());
    for p in present {
        match p {
            Ok(Some(h)) => have.push(h),
            Ok(None) => have.push(false),
            Err(f) => failures.push(f),
        }
    }
    if !failures.is_empty() || ctx.aborted() {
        return Err(failures);
    }

    // Where each digest is (or will first be) on the target.
    let mut holder: HashMap<&Digest, &str> = HashMap::new();
    for (b, &h) in plan.blobs.iter().zip(&have) {
        if h {
            holder.entry(&b.desc.digest).or_insert(&b.repo);
        }
    }
    // Blobs a differential bundle leaves out: mounted from where the target has them.
    for (digest, repo) in mount_from {
        holder.entry(digest).or_insert(repo);
    }
    let mut actions = BlobActions::new();
    let mut totals = BlobTotals::default();
    let mut uploads: Vec<&RepoBlob> = Vec::new();
    let mut mounts: Vec<(&RepoBlob, String)> = Vec::new();
    for (b, &h) in plan.blobs.iter().zip(&have) {
        let key = (b.repo.clone(), b.desc.digest.clone());
        if h {
            totals.skipped += 1;
            actions.insert(key, Action::Skipped);
        } else if let Some(from) = holder.get(&b.desc.digest) {
            mounts.push((b, from.to_string()));
        } else {
            holder.insert(&b.desc.digest, &b.repo);
            uploads.push(b);
        }
    }
    if dry_run {
        for b in &uploads {
            totals.uploaded += 1;
            totals.uploaded_bytes += b.desc.size;
            actions.insert((b.repo.clone(), b.desc.digest.clone()), Action::WouldUpload);
        }
        for (b, _) in &mounts {
            totals.mounted += 1;
            actions.insert((b.repo.clone(), b.desc.digest.clone()), Action::WouldMount);
        }
        return Ok((actions, totals, Vec::new()));
    }

    // 2. Upload each missing digest once.
    let bytes: u64 = uploads.iter().map(|b| b.desc.size).sum();
    let busy = !uploads.is_empty() || !mounts.is_empty();
    if busy {
        ctx.progress
            .phase_of("pushing", "blob", bytes, uploads.len() as u64);
    }
    let done = Mutex::new((actions, totals));
    let record = |b: &RepoBlob, action: Action| {
        let mut d = lock(&done);
        match action {
            Action::Uploaded => {
                d.1.uploaded += 1;
                d.1.uploaded_bytes += b.desc.size;
            }
            Action::Mounted => d.1.mounted += 1,
            _ => {}
        }
        d.0.insert((b.repo.clone(), b.desc.digest.clone()), action);
    };
    let uploaded: Vec<Result<Option<()>, Failure>> = ctx.pool.install(|| {
        uploads
            .par_iter()
            .map(|b| {
                ctx.run(&b.repo, &b.desc.digest, "blob", || {
                    upload(ctx, b)?;
                    record(b, Action::Uploaded);
                    Ok(())
                })
            })
            .collect()
    });
    let mut failed: HashSet<Digest> = HashSet::new();
    for (b, r) in uploads.iter().zip(uploaded) {
        match r {
            Ok(Some(())) => {}
            Ok(None) => {
                failed.insert(b.desc.digest.clone());
            }
            Err(f) => {
                failed.insert(b.desc.digest.clone());
                failures.push(f);
            }
        }
    }

    // 3. Mount the rest from where the digest now is.
    let mounted: Vec<Result<Option<()>, Failure>> = ctx.pool.install(|| {
        mounts
            .par_iter()
            .filter(|(b, _)| !failed.contains(&b.desc.digest))
            .map(|(b, from)| {
                ctx.run(&b.repo, &b.desc.digest, "blob", || {
                    let digest = &b.desc.digest;
                    let mounted = ctx.client.mount_blob(ctx.registry, &b.repo, digest, from);
                    if !matches!(mounted, Ok(true)) && !ctx.bundle.has_blob(digest) {
                        let why = anyhow::anyhow!(
                            "{} did not mount {digest} into {} from {from}, and this differential \
                             bundle leaves the blob out; check that the account may pull from {from}, \
                             or push a full bundle",
                            ctx.registry,
                            b.repo
                        );
                        return Err(match mounted {
                            Err(e) => anyhow::Error::new(e).context(why.to_string()),
                            _ => why,
                        });
                    }
                    match mounted {
                        Ok(true) => record(b, Action::Mounted),
                        // Declined, or refused (e.g. no pull access to `from`): upload.
                        Ok(false) | Err(_) => {
                            upload(ctx, b)?;
                            record(b, Action::Uploaded);
                        }
                    }
                    Ok(())
                })
            })
            .collect()
    });
    failures.extend(mounted.into_iter().filter_map(Result::err));
    // The repositories that were to mount a digest whose upload failed lack it too.
    for (b, from) in mounts
        .iter()
        .filter(|(b, _)| failed.contains(&b.desc.digest))
    {
        failures.push(Failure {
            kind: "blob",
            repo: b.repo.clone(),
            digest: b.desc.digest.clone(),
            target: None,
            error: anyhow::anyhow!(
                "it was to be mounted from {}/{from}, where its upload failed",
                ctx.registry
            ),
        });
    }
    if busy {
        ctx.progress.finish_phase();
    }
    if ctx.aborted() {
        return Err(failures);
    }
    let (actions, totals) = done.into_inner().unwrap();
    Ok((actions, totals, failures))
}

/// Streams one blob from the bundle into `b.repo`, verified on the way.
fn upload(ctx: &Ctx<'_>, b: &RepoBlob) -> anyhow::Result<()> {
    let digest = &b.desc.digest;
    let mut first = Some(
        ctx.bundle
            .blob(digest)
            .with_context(|| format!("cannot read blob {digest} from the bundle"))?,
    );
    let item = ctx
        .progress
        .item(&format!("{} → {}", digest.short(), b.repo), b.desc.size);
    {
        // A failed upload (dropped, 5xx, bytes damaged in transit) is started over by
        // the client from a fresh, again verified, read of the bundle.
        let mut open = || -> std::io::Result<Box<dyn std::io::Read + '_>> {
            let source = match first.take() {
                Some(s) => s,
                None => ctx.bundle.blob(digest).map_err(std::io::Error::other)?,
            };
            Ok(Box::new(ProgressReader::new(
                VerifyingReader::new(
                    crate::interrupt::InterruptibleReader(source),
                    digest.clone(),
                    b.desc.size,
                ),
                &*item,
            )))
        };
        ctx.client
            .upload_blob_reopening(ctx.registry, &b.repo, digest, b.desc.size, &mut open)?;
    }
    item.done();
    Ok(())
}
