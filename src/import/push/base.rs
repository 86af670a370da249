//! Pushing a differential bundle: the blobs it leaves out must already be on the target.
//!
//! Before anything is written, every (repository, blob) pair of the plan whose blob the
//! bundle leaves out (the TOC's `base.omitted`) is checked on the target: present in
//! that repository (`HEAD`), or present in a repository it can be mounted from. The
//! candidates are the repositories the TOC records for the blob (for a bundle base, the
//! base's image names mapped through the same target mapping as this push; for an
//! inventory base, the inventory's repositories as they are), then every repository of
//! this push needing it. If any pair can be found nowhere, the push is refused with
//! every such blob, the images needing it, where it was looked for, and what to do.
//! Otherwise the blob phase mounts each missing pair from the repository found here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use anyhow::bail;
use rayon::prelude::*;

use super::Ctx;
use super::plan::{Plan, list};
use super::target::repository_for;
use crate::bundle::toc::{TocBase, TocOmitted};
use crate::digest::Digest;
use crate::inventory::base::KIND_BUNDLE;
use crate::progress::human_bytes;
use crate::reference::Reference;
use crate::settings::PushSettings;
use crate::words::count;

/// Per left-out digest, a target repository that holds it (to mount from).
pub(crate) type MountFrom = HashMap<Digest, String>;

/// How many missing blobs the refusal lists before summarizing the rest.
const MAX_LISTED: usize = 20;

/// Checks that the target holds every left-out blob the plan needs; returns where to
/// mount each from. A bundle that is not differential passes with nothing to mount.
pub(crate) fn check_omitted(
    ctx: &Ctx<'_>,
    plan: &Plan,
    settings: &PushSettings,
) -> anyhow::Result<MountFrom> {
    let Some(base) = &ctx.bundle.toc().base else {
        return Ok(MountFrom::new());
    };
    let omitted: HashMap<&Digest, &TocOmitted> =
        base.omitted.iter().map(|o| (&o.digest, o)).collect();
    // Repositories of this push needing each left-out digest.
    let mut needing: BTreeMap<&Digest, Vec<&str>> = BTreeMap::new();
    for b in &plan.blobs {
        if omitted.contains_key(&b.desc.digest) {
            needing.entry(&b.desc.digest).or_default().push(&b.repo);
        }
    }
    if needing.is_empty() {
        return Ok(MountFrom::new());
    }
    // Candidate repositories per digest: the recorded ones first, then those needing it.
    let mut candidates: BTreeMap<&Digest, Vec<String>> = BTreeMap::new();
    for (digest, repos) in &needing {
        let mut c: Vec<String> = Vec::new();
        for loc in &omitted[digest].repositories {
            if let Some(repo) = target_repository(base, loc, settings)
                && !c.contains(&repo)
            {
                c.push(repo);
            }
        }
        for r in repos {
            if !c.iter().any(|have| have == r) {
                c.push(r.to_string());
            }
        }
        candidates.insert(digest, c);
    }
    let pairs: Vec<(&Digest, &str)> = candidates
        .iter()
        .flat_map(|(d, repos)| repos.iter().map(move |r| (*d, r.as_str())))
        .collect();
    let answers: Vec<Result<bool, String>> = ctx.pool.install(|| {
        pairs
            .par_iter()
            .map(|(d, repo)| {
                ctx.client
                    .blob_exists(ctx.registry, repo, d)
                    .map_err(|e| e.to_string())
            })
            .collect()
    });
    let mut present: BTreeSet<(&Digest, &str)> = BTreeSet::new();
    let mut first_error: Option<String> = None;
    for (pair, a) in pairs.iter().zip(answers) {
        match a {
            Ok(true) => {
                present.insert(*pair);
            }
            Ok(false) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }

    let mut mount_from = MountFrom::new();
    let mut missing: Vec<(&Digest, &Vec<String>)> = Vec::new();
    for (digest, repos) in &candidates {
        let holder = repos
            .iter()
            .find(|r| present.contains(&(*digest, r.as_str())));
        let all_there = needing[digest]
            .iter()
            .all(|r| present.contains(&(*digest, *r)));
        match holder {
            Some(h) => {
                mount_from.insert((*digest).clone(), h.clone());
            }
            None if all_there => {}
            None => missing.push((digest, repos)),
        }
    }
    if missing.is_empty() {
        return Ok(mount_from);
    }
    bail!(refusal(ctx, plan, base, &omitted, &missing, first_error))
}

/// Where a recorded location is on this target: a bundle base records source names
/// (mapped like this push maps its own), an inventory base target repositories.
fn target_repository(base: &TocBase, loc: &str, settings: &PushSettings) -> Option<String> {
    if base.kind == KIND_BUNDLE {
        let r = Reference::parse(loc).ok()?;
        repository_for(&settings.target, &r, settings.keep_registry).ok()
    } else {
        Some(loc.to_string())
    }
}

fn refusal(
    ctx: &Ctx<'_>,
    plan: &Plan,
    base: &TocBase,
    omitted: &HashMap<&Digest, &TocOmitted>,
    missing: &[(&Digest, &Vec<String>)],
    error: Option<String>,
) -> String {
    let registry = ctx.registry;
    let bytes: u64 = missing.iter().map(|(d, _)| omitted[*d].size).sum();
    let mut msg = format!(
        "bundle {} is differential: it leaves out {} ({}) that {registry} does not have, \
         so nothing was pushed:",
        ctx.bundle.path().display(),
        count(missing.len() as u64, "blob"),
        human_bytes(bytes)
    );
    for (digest, repos) in missing.iter().take(MAX_LISTED) {
        let o = omitted[*digest];
        let names: Vec<&str> = repos.iter().map(String::as_str).collect();
        let _ = write!(
            msg,
            "\n  {} ({}, {}), needed by {}; looked for in {}",
            o.digest,
            human_bytes(o.size),
            o.media_type,
            plan.users_of(&o.digest),
            list(&names, 5)
        );
    }
    if missing.len() > MAX_LISTED {
        let _ = write!(msg, "\n  and {} more", missing.len() - MAX_LISTED);
    }
    if let Some(e) = error {
        let _ = write!(msg, "\n(some checks failed: {e})");
    }
    let created = base
        .created
        .as_deref()
        .map(|c| format!(", made {c}"))
        .unwrap_or_default();
    if base.kind == KIND_BUNDLE {
        let _ = write!(
            msg,
            "\nThis bundle was made with `save --base {}`{created}: push that base bundle to {registry} \
             first (same target, same options), then this one; or save a full bundle (without --base).",
            base.file
        );
    } else {
        let of = base
            .registry
            .as_deref()
            .map(|r| format!(" of {r}"))
            .unwrap_or_default();
        let _ = write!(
            msg,
            "\nThis bundle was made with `save --base {}`, an inventory{of}{created}, which no longer \
             matches {registry}: take a fresh `airlock inventory` of the target, carry it out and save \
             again with it; or save a full bundle (without --base).",
            base.file
        );
    }
    msg
}
