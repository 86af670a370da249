//! The TOC's artifacts (signatures, attestations, SBOMs): each is whole and refers to
//! something in the bundle.
//!
//! Artifacts are not images: nothing in `index.json` or the TOC's images reaches them,
//! so the image graph does not check them. This step does, from what the scan kept:
//! every artifact's manifest is in the bundle with the size and media type the TOC's
//! artifact entry and its `blobs` entry give it; its config and layers (and, for an
//! index artifact, its children) are there with the sizes its manifest gives, or left
//! out by a differential bundle for its base; its subject is a manifest, index or
//! artifact in the bundle; and a `subject` field in its manifest names the recorded
//! subject. Findings name the artifact's digest, kind and subject, and (through
//! `reach`) the images it belongs to.
//!
//! A blob an artifact needs that is missing is reported here, once, naming the
//! artifact; [`missing_reported`](Checked::missing) lets the driver drop the graph's
//! plainer finding for the same blob.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::Value;

use super::{Finding, FindingKind, Seen};
use crate::bundle::toc::{Toc, TocArtifact};
use crate::digest::Digest;
use crate::oci::{self, media};

/// What the step found, and which missing blobs it reported.
pub(super) struct Checked {
    pub(super) findings: Vec<Finding>,
    pub(super) missing: HashSet<Digest>,
}

/// How far artifact chains (an artifact about an artifact) are followed to find the
/// images they belong to.
const MAX_CHAIN: usize = 16;

/// Checks every artifact of `toc` against what the scan saw; `reach` (from the image
/// graph) names the images of each manifest.
pub(super) fn check_artifacts(
    toc: &Toc,
    seen: &Seen,
    reach: &HashMap<Digest, BTreeSet<String>>,
) -> Checked {
    let mut out = Checked {
        findings: Vec::new(),
        missing: HashSet::new(),
    };
    if toc.artifacts.is_empty() {
        return out;
    }
    let artifacts: HashMap<&Digest, &TocArtifact> =
        toc.artifacts.iter().map(|a| (&a.digest, a)).collect();
    let listed: HashMap<&Digest, &crate::bundle::toc::TocBlob> =
        toc.blobs.iter().map(|b| (&b.digest, b)).collect();
    let mut done: HashSet<&Digest> = HashSet::new();
    for a in &toc.artifacts {
        let images = images_of(a, &artifacts, reach);
        let what = format!(
            "{} {} (of {}, from {})",
            a.kind.word(),
            a.digest,
            a.subject,
            a.repository
        );
        macro_rules! push {
            ($f:expr $(,)?) => {
                out.findings.push($f.with_images(images.clone()))
            };
        }

        // The subject: a manifest, index or artifact in the bundle.
        let subject_kind = seen
            .json
            .get(&a.subject)
            .and_then(|b| oci::sniff_media_type(b));
        let subject_ok = seen.blobs.contains_key(&a.subject)
            && (artifacts.contains_key(&a.subject)
                || subject_kind.is_some_and(|mt| media::is_index(&mt) || media::is_manifest(&mt)));
        if !subject_ok {
            let why = if seen.blobs.contains_key(&a.subject) {
                "is not a manifest, index or artifact"
            } else {
                "is not in the bundle"
            };
            push!(
                Finding::new(
                    FindingKind::Artifact,
                    format!("{what} refers to {}, which {why}", a.subject),
                )
                .with_digest(a.digest.clone()),
            );
        }

        // The same manifest recorded twice (in two repositories) is checked once.
        if !done.insert(&a.digest) {
            continue;
        }
        match listed.get(&a.digest) {
            None => push!(Finding::blob(
                FindingKind::TocMismatch,
                a.digest.clone(),
                format!("{what} is not listed in airlock.json's blobs"),
            )),
            Some(b) if b.size != a.size || b.media_type != a.media_type => push!(Finding::blob(
                FindingKind::TocMismatch,
                a.digest.clone(),
                format!(
                    "{what} is recorded as {} bytes of `{}` but airlock.json's blobs list {} bytes of `{}`",
                    a.size, a.media_type, b.size, b.media_type
                ),
            )),
            Some(_) => {}
        }
        let Some(stored) = seen.blobs.get(&a.digest) else {
            out.missing.insert(a.digest.clone());
            push!(Finding::blob(
                FindingKind::MissingBlob,
                a.digest.clone(),
                format!("the manifest of {what} is not in the bundle"),
            ));
            continue;
        };
        if stored.size != a.size {
            push!(Finding::blob(
                FindingKind::SizeMismatch,
                a.digest.clone(),
                format!(
                    "the manifest of {what} is {} bytes but airlock.json records {}",
                    stored.size, a.size
                ),
            ));
        }
        let Some(doc) = seen
            .json
            .get(&a.digest)
            .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        else {
            push!(Finding::blob(
                FindingKind::InvalidJson,
                a.digest.clone(),
                format!("the manifest of {what} is not a JSON document"),
            ));
            continue;
        };
        if let Some(declared) = doc.get("mediaType").and_then(Value::as_str)
            && declared != a.media_type
        {
            push!(Finding::blob(
                FindingKind::Artifact,
                a.digest.clone(),
                format!(
                    "the manifest of {what} declares media type `{declared}` but airlock.json records `{}`",
                    a.media_type
                ),
            ));
        }
        match doc.pointer("/subject/digest").and_then(Value::as_str) {
            Some(s) if s != a.subject.as_str() => push!(Finding::blob(
                FindingKind::Artifact,
                a.digest.clone(),
                format!(
                    "the manifest of {what} has subject {s}, but airlock.json records {}",
                    a.subject
                ),
            )),
            _ => {}
        }
        // Its blobs (and an index artifact's children): there with their sizes, or
        // left out for the base.
        let parts = ["config"]
            .iter()
            .filter_map(|k| doc.get(*k))
            .chain(doc["layers"].as_array().into_iter().flatten())
            .chain(doc["manifests"].as_array().into_iter().flatten());
        for d in parts {
            let Ok(desc) = serde_json::from_value::<oci::Descriptor>(d.clone()) else {
                push!(Finding::blob(
                    FindingKind::InvalidJson,
                    a.digest.clone(),
                    format!("the manifest of {what} has a descriptor that does not parse: {d}"),
                ));
                continue;
            };
            match seen.blobs.get(&desc.digest) {
                Some(b) if b.size != desc.size => push!(Finding::blob(
                    FindingKind::SizeMismatch,
                    desc.digest.clone(),
                    format!(
                        "blob {} is {} bytes but the manifest of {what} describes it as {}",
                        desc.digest, b.size, desc.size
                    ),
                )),
                Some(_) => {}
                None if toc.is_omitted(&desc.digest) || desc.urls.is_some() => {}
                None => {
                    if out.missing.insert(desc.digest.clone()) {
                        push!(Finding::blob(
                            FindingKind::MissingBlob,
                            desc.digest.clone(),
                            format!(
                                "blob {} ({}) is not in the bundle; needed by {what}",
                                desc.digest, desc.media_type
                            ),
                        ));
                    }
                }
            }
        }
    }
    out
}

/// The images an artifact belongs to: those reaching the end of its subject chain.
fn images_of(
    a: &TocArtifact,
    artifacts: &HashMap<&Digest, &TocArtifact>,
    reach: &HashMap<Digest, BTreeSet<String>>,
) -> Vec<String> {
    let mut subject = &a.subject;
    for _ in 0..MAX_CHAIN {
        match artifacts.get(subject) {
            Some(up) if !reach.contains_key(subject) => subject = &up.subject,
            _ => break,
        }
    }
    reach
        .get(subject)
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default()
}
