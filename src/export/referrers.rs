//! Signatures, attestations and SBOMs at save: finding the artifacts that refer to the
//! manifests being saved, and carrying them (manifest byte-exact, blobs like layers).
//!
//! After an image's graph is walked ([`super::plan`]), every manifest and index saved
//! is a subject: its store is asked for referrers ([`BlobStore::referrers`]: the OCI
//! 1.1 API, the referrers tag schema, cosign's tags; only registries have them). Each
//! referrer's manifest is fetched by digest and checked against the descriptor that
//! listed it (a cosign tag's manifest is taken as the registry served it, its digest
//! checked against `Docker-Content-Digest` by the client), staged like any manifest,
//! and its config and layers are listed with the image's layers, so they are fetched,
//! verified, written and left out of a differential bundle exactly like layers. Found
//! artifacts are subjects in turn (a signature on an SBOM), to [`MAX_DEPTH`] levels,
//! each stored once.
//!
//! BuildKit's attestation manifests live inside the image's index; the walk records
//! them with [`attestation_subject`] and [`carry`] instead of walking them as images.
//!
//! A referrer that is itself an index (rare; nothing common writes one) is not carried
//! yet: its children would need a walk of their own.
//!
//! A registry without referrers (404 to the API, no such tags) is no failure. Any other
//! failure to discover fails the save and names `--no-referrers`: an operator who
//! expects signatures on the other side must not find out there that they are missing.

use std::collections::BTreeSet;

use anyhow::{Context, bail};
use serde::Deserialize;

use super::plan::{WalkedImage, Walker, check_descriptor};
use crate::bundle::toc::{ArtifactFound, ArtifactKind};
use crate::digest::Digest;
use crate::oci::{Descriptor, MAX_MANIFEST_SIZE, RawManifest, media};
use crate::settings::Wanted;
use crate::source::FoundBy;

/// Levels of artifacts on artifacts followed (an SBOM, its signature, …).
pub const MAX_DEPTH: usize = 3;

/// BuildKit's annotation naming an index entry's role, and the digest it refers to.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";

/// One artifact carried by an image.
#[derive(Debug, Clone)]
pub(crate) struct WalkedArtifact {
    /// Its manifest: digest, media type, size.
    pub desc: Descriptor,
    pub artifact_type: Option<String>,
    pub kind: ArtifactKind,
    pub subject: Digest,
    pub found: ArtifactFound,
    pub tag: Option<String>,
}

/// The fields of an artifact (or image) manifest discovery reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactManifest {
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    /// The short-lived OCI 1.1 rc artifact manifest's list of blobs.
    #[serde(default)]
    blobs: Vec<Descriptor>,
}

/// The digest a BuildKit attestation entry of an index refers to, if `d` is one.
pub(crate) fn attestation_subject(d: &Descriptor) -> Option<Digest> {
    let a = d.annotations.as_ref()?;
    if a.get(REFERENCE_TYPE).map(String::as_str) != Some("attestation-manifest") {
        return None;
    }
    Digest::parse(a.get(REFERENCE_DIGEST)?).ok()
}

/// What an artifact is, from its cosign tag, artifact type, config and layer media types.
pub fn classify(
    tag: Option<&str>,
    artifact_type: Option<&str>,
    layer_types: &[&str],
) -> ArtifactKind {
    if let Some(t) = tag {
        if t.ends_with(".sig") {
            return ArtifactKind::Signature;
        }
        if t.ends_with(".att") {
            return ArtifactKind::Attestation;
        }
        if t.ends_with(".sbom") {
            return ArtifactKind::Sbom;
        }
    }
    let of = |t: &str| {
        let t = t.to_ascii_lowercase();
        if t.starts_with("application/vnd.dev.cosign.simplesigning")
            || t.starts_with("application/vnd.dev.sigstore.bundle")
        {
            Some(ArtifactKind::Signature)
        } else if t.starts_with("application/vnd.in-toto")
            || t.starts_with("application/vnd.dsse.envelope")
        {
            Some(ArtifactKind::Attestation)
        } else if t.contains("spdx") || t.contains("cyclonedx") || t.contains("syft") {
            Some(ArtifactKind::Sbom)
        } else {
            None
        }
    };
    artifact_type
        .into_iter()
        .chain(layer_types.iter().copied())
        .find_map(of)
        .unwrap_or(ArtifactKind::Other)
}

/// How an artifact was reached: what it refers to, how it was found, its tag, and the
/// artifact type its listing gave.
pub(crate) struct Via<'a> {
    pub subject: Digest,
    pub found: ArtifactFound,
    pub tag: Option<String>,
    pub listed_type: Option<&'a str>,
}

/// Stages an artifact's manifest, lists its blobs with the image's layers and records
/// it. `raw` must already be checked against the descriptor that named it.
pub(crate) fn carry(
    walker: &Walker<'_>,
    out: &mut WalkedImage,
    raw: &RawManifest,
    via: Via<'_>,
    wanted: Option<&Wanted>,
) -> anyhow::Result<bool> {
    let Via {
        subject,
        found,
        tag,
        listed_type,
    } = via;
    if raw.bytes.len() as u64 > MAX_MANIFEST_SIZE {
        bail!(
            "artifact {} is {} bytes, over the {MAX_MANIFEST_SIZE}-byte limit",
            raw.digest,
            raw.bytes.len()
        );
    }
    if media::is_index(&raw.media_type) {
        // An index as a referrer (rare): its children would need a walk of their own.
        return Ok(false);
    }
    let m: ArtifactManifest = serde_json::from_slice(&raw.bytes)
        .with_context(|| format!("artifact {} is not a manifest", raw.digest))?;
    let artifact_type = m
        .artifact_type
        .clone()
        .or(listed_type.map(str::to_string))
        .or_else(|| m.config.as_ref().map(|c| c.media_type.clone()));
    let layer_types: Vec<&str> = m
        .layers
        .iter()
        .chain(&m.blobs)
        .map(|l| l.media_type.as_str())
        .collect();
    let kind = classify(tag.as_deref(), artifact_type.as_deref(), &layer_types);
    if let Some(w) = wanted
        && !w.accepts(kind, artifact_type.as_deref())
    {
        return Ok(false);
    }
    walker.stage(out, raw)?;
    out.layers
        .extend(m.config.iter().chain(&m.layers).chain(&m.blobs).cloned());
    out.artifacts.push(WalkedArtifact {
        desc: Descriptor::new(&raw.media_type, raw.digest.clone(), raw.bytes.len() as u64),
        artifact_type,
        kind,
        subject,
        found,
        tag,
    });
    Ok(true)
}

/// Finds and carries the referrers of every manifest `out` saved, recursively.
pub(crate) fn discover(
    walker: &Walker<'_>,
    out: &mut WalkedImage,
    wanted: &Wanted,
) -> anyhow::Result<()> {
    let mut seen: BTreeSet<Digest> = out.subjects.iter().cloned().collect();
    seen.extend(out.artifacts.iter().map(|a| a.desc.digest.clone()));
    let mut level: Vec<Digest> = out
        .subjects
        .iter()
        .chain(out.artifacts.iter().map(|a| &a.desc.digest))
        .cloned()
        .collect();
    for _ in 0..MAX_DEPTH {
        let mut next = Vec::new();
        for subject in &level {
            let found = out
                .store
                .referrers(subject, wanted.server_filter())
                .map_err(|e| no_referrers_hint(e, subject))?;
            for r in found {
                if seen.contains(&r.desc.digest) {
                    continue;
                }
                let raw = match r.manifest {
                    Some(raw) => raw,
                    None => {
                        let raw = out
                            .store
                            .manifest(&r.desc)
                            .with_context(|| {
                                format!("cannot fetch referrer {} of {subject}", r.desc.digest)
                            })
                            .map_err(|e| no_referrers_hint(e, subject))?;
                        check_descriptor(&r.desc, &raw)
                            .map_err(|e| no_referrers_hint(e, subject))?;
                        RawManifest {
                            media_type: r.desc.media_type.clone(),
                            ..raw
                        }
                    }
                };
                let (found, tag) = match r.found {
                    FoundBy::Api => (ArtifactFound::ReferrersApi, None),
                    FoundBy::FallbackTag => (ArtifactFound::ReferrersTag, None),
                    FoundBy::CosignTag(t) => (ArtifactFound::CosignTag, Some(t)),
                };
                let digest = raw.digest.clone();
                let via = Via {
                    subject: subject.clone(),
                    found,
                    tag,
                    listed_type: r.desc.artifact_type.as_deref(),
                };
                if carry(walker, out, &raw, via, Some(wanted))? {
                    seen.insert(digest.clone());
                    next.push(digest);
                }
            }
        }
        if next.is_empty() {
            break;
        }
        level = next;
    }
    Ok(())
}

fn no_referrers_hint(e: anyhow::Error, subject: &Digest) -> anyhow::Error {
    e.context(format!(
        "cannot discover the signatures, attestations and SBOMs of {subject}; \
         add --no-referrers to save the images without them"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_tag_type_and_layers() {
        use ArtifactKind::*;
        assert_eq!(classify(Some("sha256-ab.sig"), None, &[]), Signature);
        assert_eq!(classify(Some("sha256-ab.att"), None, &[]), Attestation);
        assert_eq!(classify(Some("sha256-ab.sbom"), None, &[]), Sbom);
        assert_eq!(
            classify(
                None,
                Some("application/vnd.oci.image.config.v1+json"),
                &["application/vnd.dev.cosign.simplesigning.v1+json"]
            ),
            Signature
        );
        assert_eq!(
            classify(
                None,
                Some("application/vnd.dev.sigstore.bundle.v0.3+json"),
                &[]
            ),
            Signature
        );
        assert_eq!(
            classify(None, None, &["application/vnd.in-toto+json"]),
            Attestation
        );
        assert_eq!(classify(None, Some("application/spdx+json"), &[]), Sbom);
        assert_eq!(
            classify(None, Some("application/vnd.cyclonedx+json"), &[]),
            Sbom
        );
        assert_eq!(classify(None, Some("application/x-thing"), &[]), Other);
    }
}
