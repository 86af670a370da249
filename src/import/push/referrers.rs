//! The referrers tag index on a target without the OCI referrers API: created, or
//! merged with what the target already lists, never overwritten.
//!
//! The OCI distribution spec (1.1, "referrers tag schema") has clients that push a
//! manifest with a `subject` to a registry that does not answer with `OCI-Subject`
//! maintain an index under the tag `<alg>-<hex>` of the subject, one descriptor per
//! referrer (media type, digest, size, `artifactType`, `annotations`). Other clients
//! (cosign, oras, another airlock push) write the same tag, so it is read first and
//! only the referrers it lacks are added (everything else in it, entries and fields,
//! is kept as it is). Registries offer no conditional `PUT`, so a concurrent writer is
//! caught the way the spec suggests: the tag's digest is read again just before the
//! `PUT` and compared with the one the merge started from, and the index is read back
//! after it; on a change the merge starts over from what is there now, a few times,
//! and then fails naming the tag.
//!
//! A referrer whose manifest the target already had (a push run again) was not `PUT`
//! this time, so whether the target has the referrers API is not known: when the index
//! lacks it, its manifest is `PUT` again (idempotent, same bytes) to learn that first.

use std::collections::HashSet;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::Ctx;
use super::artifacts::{PlannedArtifact, Referrer};
use crate::digest::Digest;
use crate::oci::{RawManifest, media};

/// How many times the merge starts over when another writer changes the tag meanwhile.
pub(crate) const MERGE_ATTEMPTS: usize = 5;

/// What happened to one subject's referrers index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IndexOutcome {
    /// It already listed every referrer.
    Unchanged,
    /// Created or merged (in a dry run: would be).
    Written,
    /// The target indexed the referrers itself (it answered with `OCI-Subject`).
    ByRegistry,
}

/// A referrer's entry in a referrers index: `mediaType`, `digest`, `size`, then its
/// `artifactType` (the manifest's, else its config's media type) and `annotations`
/// when it has them.
pub(crate) fn descriptor_of(raw: &RawManifest, doc: &Value) -> Value {
    let mut d = json!({
        "mediaType": raw.media_type,
        "digest": raw.digest.as_str(),
        "size": raw.bytes.len(),
    });
    let artifact_type = doc
        .get("artifactType")
        .and_then(Value::as_str)
        .or_else(|| doc.pointer("/config/mediaType").and_then(Value::as_str));
    if let Some(t) = artifact_type {
        d["artifactType"] = json!(t);
    }
    if let Some(a) = doc.get("annotations").filter(|a| a.is_object()) {
        d["annotations"] = a.clone();
    }
    d
}

/// Makes the referrers index of `subject` in `repo` list every referrer in `entries`
/// (each with whether its `PUT` was answered with `OCI-Subject`: `None` when it was not
/// `PUT` this run). In a dry run nothing is written and the outcome says what would be.
pub(crate) fn merge(
    ctx: &Ctx<'_>,
    repo: &str,
    subject: &Digest,
    entries: &[Referrer<'_>],
    dry_run: bool,
) -> anyhow::Result<IndexOutcome> {
    let tag = subject.referrers_tag();
    let place = format!("{}/{repo}:{tag}", ctx.registry);
    let mut wanted: Vec<&PlannedArtifact> = entries.iter().map(|(a, _)| *a).collect();
    let mut unknown: Vec<&PlannedArtifact> = entries
        .iter()
        .filter(|(_, indexed)| indexed.is_none())
        .map(|(a, _)| *a)
        .collect();
    let mut written = false;
    for attempt in 0..=MERGE_ATTEMPTS {
        let (mut doc, based_on) = read_index(ctx, repo, &tag, &place)?;
        let listed = listed(&doc);
        let missing: Vec<&PlannedArtifact> = wanted
            .iter()
            .copied()
            .filter(|a| !listed.contains(a.toc.digest.as_str()))
            .collect();
        if missing.is_empty() {
            return Ok(if written {
                IndexOutcome::Written
            } else {
                IndexOutcome::Unchanged
            });
        }
        if dry_run {
            return Ok(IndexOutcome::Written);
        }
        if attempt == MERGE_ATTEMPTS {
            break;
        }
        // Referrers not PUT this run: does the target index them itself?
        let probe: Vec<&PlannedArtifact> = unknown
            .iter()
            .copied()
            .filter(|a| missing.iter().any(|m| m.toc.digest == a.toc.digest))
            .collect();
        unknown.clear();
        for a in probe {
            let raw = a.manifests.last().expect("the artifact's own manifest");
            let (_, answered) = ctx
                .client
                .put_manifest_subject(ctx.registry, repo, raw.digest.as_str(), raw)
                .with_context(|| format!("cannot push {} again to {}", raw.digest, repo))?;
            if answered.is_some() {
                wanted.retain(|w| w.toc.digest != a.toc.digest);
            }
        }
        let missing: Vec<&PlannedArtifact> = missing
            .into_iter()
            .filter(|m| wanted.iter().any(|w| w.toc.digest == m.toc.digest))
            .collect();
        if missing.is_empty() {
            return Ok(IndexOutcome::ByRegistry);
        }
        let list = doc["manifests"]
            .as_array_mut()
            .expect("checked by read_index");
        for a in &missing {
            list.push(a.descriptor.clone());
        }
        let bytes = serde_json::to_vec(&doc).context("cannot serialize the referrers index")?;
        let new = RawManifest::new(bytes, Some(media::OCI_INDEX));
        // Someone else wrote the tag since it was read: start over from theirs.
        let now = ctx.client.manifest_digest(ctx.registry, repo, &tag)?;
        if now != based_on {
            continue;
        }
        ctx.client
            .put_manifest(ctx.registry, repo, &tag, &new)
            .with_context(|| format!("cannot write the referrers index {place}"))?;
        written = true;
        // Read back: a writer between the check and the PUT may have replaced it, or
        // merged on top of it; the loop checks the entries are all there.
    }
    bail!(
        "the referrers index {place} (of {subject}) changed under airlock {MERGE_ATTEMPTS} times \
         while it merged {} into it: another client is writing it at the same time; run the \
         same push again once it is done (what is there is kept, and only what is missing is added)",
        crate::words::count(wanted.len() as u64, "referrer")
    )
}

/// The referrers index under `tag` as a JSON document (a new, empty one when the tag
/// does not exist), with the digest it had (`None`: none).
fn read_index(
    ctx: &Ctx<'_>,
    repo: &str,
    tag: &str,
    place: &str,
) -> anyhow::Result<(Value, Option<Digest>)> {
    let raw = match ctx.client.get_manifest(ctx.registry, repo, tag) {
        Ok(raw) => raw,
        Err(e) if e.is_not_found() => {
            let doc = json!({
                "schemaVersion": 2,
                "mediaType": media::OCI_INDEX,
                "manifests": [],
            });
            return Ok((doc, None));
        }
        Err(e) => {
            return Err(
                anyhow::Error::new(e).context(format!("cannot read the referrers index {place}"))
            );
        }
    };
    let doc: Value = serde_json::from_slice(&raw.bytes).unwrap_or(Value::Null);
    if !media::is_index(&raw.media_type) || !doc["manifests"].is_array() {
        bail!(
            "tag {place} holds {} ({}), not a referrers index, so airlock does not overwrite it; \
             remove or rename that tag on the target, or push with --no-referrers",
            raw.digest,
            if raw.media_type.is_empty() {
                "no media type"
            } else {
                &raw.media_type
            }
        );
    }
    Ok((doc, Some(raw.digest)))
}

/// The digests a referrers index lists.
fn listed(doc: &Value) -> HashSet<&str> {
    doc["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d.get("digest").and_then(Value::as_str))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_carries_artifact_type_and_annotations() {
        let bytes = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/spdx+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"annotations":{"org.opencontainers.image.created":"2024-01-01T00:00:00Z"}}"#;
        let raw = RawManifest::new(bytes.to_vec(), None);
        let doc: Value = serde_json::from_slice(bytes).unwrap();
        let d = descriptor_of(&raw, &doc);
        assert_eq!(d["mediaType"], media::OCI_MANIFEST);
        assert_eq!(d["digest"], raw.digest.as_str());
        assert_eq!(d["size"], bytes.len());
        assert_eq!(d["artifactType"], "application/spdx+json");
        assert_eq!(
            d["annotations"]["org.opencontainers.image.created"],
            "2024-01-01T00:00:00Z"
        );
        // Without artifactType, the config's media type stands for it; no annotations, none.
        let bytes = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
        let raw = RawManifest::new(bytes.to_vec(), None);
        let d = descriptor_of(&raw, &serde_json::from_slice(bytes).unwrap());
        assert_eq!(
            d["artifactType"],
            "application/vnd.dev.cosign.simplesigning.v1+json"
        );
        assert!(d.get("annotations").is_none());
    }
}
