//! What a failed push tells the operator: one line per blob, manifest or tag that
//! could not be pushed, naming it, the images needing it and the target repository,
//! with advice for the causes operators hit (a damaged bundle, a failing or full
//! registry, request size limits, refused manifest types, registry dialects such as
//! repositories that must exist first, path-depth limits and missing children), and
//! the report of a push stopped by Ctrl-C or SIGTERM.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use anyhow::anyhow;

use super::plan::Plan;
use super::{Ctx, Failure};
use crate::digest::{Digest, Mismatch};
use crate::oci::{Parsed, RawManifest};
use crate::registry::{Kind, RegistryError, Unreachable};
use crate::sync::lock;

/// How many failures an error message lists before summarizing the rest.
const MAX_LISTED_FAILURES: usize = 20;

/// The error for a failed phase: one line per failure naming what failed, the images
/// needing it, the target repository and what to do; `consequence` says what was (not)
/// written. An authentication failure is reported alone, as one line.
pub(crate) fn failed(
    ctx: &Ctx<'_>,
    plan: &Plan,
    failures: Vec<Failure>,
    consequence: &str,
) -> anyhow::Error {
    let registry = ctx.registry;
    if crate::interrupt::requested() {
        return interrupted(ctx, plan, &failures, consequence);
    }
    // A dry run writes nothing: there is nothing to finish, only what was not checked.
    let dry_consequence = format!(
        "this was a dry run, so nothing was written and nothing needs finishing; what {registry} \
         already has could not be checked"
    );
    let consequence = if ctx.dry_run {
        dry_consequence.as_str()
    } else {
        consequence
    };
    let Some(first) = failures.first() else {
        return anyhow!("the push to {registry} was stopped; {consequence}");
    };
    // The registry cannot be reached at all: one line of cause and one hint, not one
    // line per blob that was in flight.
    let unreachable: Vec<Option<Unreachable>> = failures
        .iter()
        .map(|f| registry_error(&f.error).and_then(RegistryError::unreachable))
        .collect();
    if let Some(Some(kind)) = unreachable.first()
        && unreachable.iter().all(|u| *u == Some(*kind))
    {
        let (cause, hint) = match kind {
            Unreachable::NoSuchHost => (
                "the host name does not resolve",
                "check the name's spelling, DNS, or /etc/hosts",
            ),
            Unreachable::Refused => (
                "the connection is refused",
                "is the registry running, and is the port right?",
            ),
        };
        let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
        let host = if *kind == Unreachable::NoSuchHost {
            host
        } else {
            registry
        };
        return anyhow!("cannot reach {host}: {cause}; {consequence}")
            .context(crate::hint::Hint(hint.to_string()));
    }
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
    explain(
        ctx.registry,
        ctx.bundle.path(),
        f.kind,
        &f.repo,
        plan.manifest(&f.digest).map(|m| &**m),
        &f.error,
    )
}

/// `: <why and what to do>` for a damaged bundle blob, a failing registry (5xx), a
/// request too large for a proxy, an upload or manifest the registry refuses, a
/// repository that must exist first, a name too deep, or a manifest whose child the
/// registry says is missing; empty otherwise (the error's own message then says it all).
fn explain(
    registry: &str,
    bundle: &Path,
    kind: &str,
    repo: &str,
    manifest: Option<&RawManifest>,
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
    let media_type = manifest.map(|m| m.media_type.as_str());
    if let RegistryError::NotFound {
        kind: Kind::Repository,
        ..
    } = e
    {
        return format!(
            ": {registry} answered NAME_UNKNOWN: it has no repository {repo} and does not create \
             one on push (as ECR does); create the repository first in the registry's console or \
             API (for ECR: `aws ecr create-repository --repository-name {repo}`), then run the same \
             command again"
        );
    }
    if let RegistryError::MissingChild { message, .. } = e {
        return format!(
            ": {registry} says {} is missing from {repo}, though airlock pushed every child before \
             the manifest naming it; run the same command again (each child is checked again); if \
             it persists, check the registry's cleanup policies and whether it keeps manifests \
             pushed by digest only",
            missing_child(manifest, message)
        );
    }
    if e.code() == Some("NAME_INVALID") {
        return format!(
            ": {registry} refuses the repository name {repo} ({} path components); some \
             registries limit how deep a name may be (GitLab: the project path plus at most 3 \
             levels): push under a shorter prefix (fewer components after the host in the \
             target), or without --keep-registry",
            repo.split('/').count()
        );
    }
    match e.status() {
        Some(s) if s >= 500 => format!(
            ": {registry} failed with HTTP {s} while storing it; its storage may be full or \
             failing: check the registry's disk and log"
        ),
        Some(413) if kind == "blob" => format!(
            ": {registry} (or a proxy in front of it) refused a request as too large; push with \
             --chunk-size 16M (or smaller, below the limit) so that no request carries more, or \
             raise its request size limit"
        ),
        Some(413) => format!(
            ": {registry} (or a proxy in front of it) refused a request as too large; \
             raise its request size limit"
        ),
        Some(400) if kind == "blob" && e.code() == Some("BLOB_UPLOAD_INVALID") => format!(
            ": {registry} refused the upload (airlock already retried it by PATCH, as a registry \
             that takes only PATCH uploads needs); if a proxy in front of it limits the request \
             size, push with --patch-uploads --chunk-size 16M"
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

/// Which child of `manifest` the registry's `message` names (`blob sha256:… (layer)`,
/// `child manifest sha256:… (linux/arm64)`), else every child it could be.
fn missing_child(manifest: Option<&RawManifest>, message: &str) -> String {
    let children: Vec<(Digest, String)> = match manifest.map(RawManifest::parse) {
        Some(Ok(Parsed::Manifest(m))) => {
            std::iter::once((m.config.digest.clone(), "config".into()))
                .chain(m.layers.iter().enumerate().map(|(i, l)| {
                    (
                        l.digest.clone(),
                        format!("layer {} of {}", i + 1, m.layers.len()),
                    )
                }))
                .collect()
        }
        Some(Ok(Parsed::Index(ix))) => ix
            .manifests
            .iter()
            .map(|c| {
                let platform = c
                    .platform
                    .as_ref()
                    .map(|p| format!("child manifest for {p}"))
                    .unwrap_or_else(|| "child manifest".into());
                (c.digest.clone(), platform)
            })
            .collect(),
        _ => Vec::new(),
    };
    if let Some((d, what)) = children
        .iter()
        .find(|(d, _)| message.contains(d.as_str()) || message.contains(d.hex()))
    {
        return format!("{what} {d}");
    }
    match children.len() {
        0 => "a blob or child manifest it names".into(),
        _ => {
            let all: Vec<String> = children
                .iter()
                .take(8)
                .map(|(d, what)| format!("{what} {}", d.short()))
                .collect();
            format!(
                "one of its children (it did not say which: {})",
                all.join(", ")
            )
        }
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
pub(crate) fn registry_error(e: &anyhow::Error) -> Option<&RegistryError> {
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
        let full = explain(
            "reg.lan:5000",
            bundle,
            "blob",
            "a",
            None,
            &status(503, "", ""),
        );
        assert!(full.contains("HTTP 503") && full.contains("disk"), "{full}");

        let oci = "application/vnd.oci.image.index.v1+json";
        let child = Digest::of(b"child");
        let index = RawManifest::new(
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{oci}","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{child}","size":1,"platform":{{"architecture":"arm64","os":"linux"}}}}]}}"#
            )
            .into_bytes(),
            Some(oci),
        );
        let invalid = status(400, "MANIFEST_INVALID", "manifest invalid");
        let rejected = explain(
            "reg.lan:5000",
            bundle,
            "manifest",
            "a",
            Some(&index),
            &invalid,
        );
        assert!(rejected.contains(oci), "{rejected}");
        let missing = status(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry");
        assert_eq!(
            explain("r", bundle, "manifest", "a", Some(&index), &missing),
            ""
        );

        let damaged = io::Error::new(
            io::ErrorKind::InvalidData,
            Mismatch::Size {
                expected: 10,
                actual: 9,
            },
        );
        let damaged = anyhow::Error::new(damaged).context("upload failed");
        let text = explain("r", bundle, "blob", "a", None, &damaged);
        assert!(
            text.contains("damaged") && text.contains("airlock verify /media/usb/release.tar.zst"),
            "{text}"
        );
    }

    #[test]
    fn explains_registry_dialects() {
        let bundle = Path::new("b.tar.zst");
        let too_large = explain("r", bundle, "blob", "a", None, &status(413, "", ""));
        assert!(too_large.contains("--chunk-size"), "{too_large}");
        let patch = status(400, "BLOB_UPLOAD_INVALID", "blob upload invalid");
        let text = explain("r", bundle, "blob", "a", None, &patch);
        assert!(text.contains("--patch-uploads"), "{text}");

        let deep = status(400, "NAME_INVALID", "invalid repository name");
        let text = explain("gitlab.lan", bundle, "blob", "g/p/x/y/z/w", None, &deep);
        assert!(
            text.contains("g/p/x/y/z/w") && text.contains("6 path") && text.contains("prefix"),
            "{text}"
        );

        let unknown = anyhow::Error::new(RegistryError::NotFound {
            kind: Kind::Repository,
            registry: "ecr".into(),
            repository: "team/app".into(),
            reference: String::new(),
        });
        let text = explain("ecr", bundle, "blob", "team/app", None, &unknown);
        assert!(
            text.contains("create the repository") && text.contains("team/app"),
            "{text}"
        );

        let oci = "application/vnd.oci.image.index.v1+json";
        let child = Digest::of(b"child");
        let other = Digest::of(b"other");
        let index = RawManifest::new(
            format!(
                r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"m","digest":"{other}","size":1}},{{"mediaType":"m","digest":"{child}","size":1,"platform":{{"architecture":"arm64","os":"linux"}}}}]}}"#
            )
            .into_bytes(),
            Some(oci),
        );
        let missing = |message: String| {
            anyhow::Error::new(RegistryError::MissingChild {
                registry: "nexus".into(),
                repository: "a".into(),
                reference: "sha256:x".into(),
                code: "BLOB_UNKNOWN".into(),
                message,
            })
        };
        let named = missing(format!("blob unknown to registry; {child}"));
        let text = explain("nexus", bundle, "manifest", "a", Some(&index), &named);
        assert!(
            text.contains(&format!("child manifest for linux/arm64 {child}")),
            "{text}"
        );
        let vague = missing("blob unknown".into());
        let text = explain("nexus", bundle, "manifest", "a", Some(&index), &vague);
        assert!(
            text.contains(other.short()) && text.contains(child.short()),
            "{text}"
        );
    }
}
