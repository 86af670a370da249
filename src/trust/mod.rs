//! Offline image signature checks and admission policy (`verify --key`, `push --key`,
//! `--policy` at save and push): is this image signed by a key we accept, for this
//! digest and this name, and does the policy let it through?
//!
//! This module owns the decisions and nothing else. It reads no bundle and talks to no
//! registry: callers (the bundle's `verify` step, `push`, `save`) hand in each image's
//! digest, name and the bytes of the signature manifests said to be about it, and a
//! way to get payload blobs by digest; it hands back an [`ImageVerdict`] per image with
//! the [`Problem`]s that name the signature manifest and the reason. The only files it
//! reads are the ones the user names: the policy and its keys ([`policy`]), the `--key`
//! files ([`CosignKey::load`]).
//!
//! - [`keys`]: cosign public keys (PEM PKIX: ECDSA P-256 and Ed25519 through
//!   [`crate::signing`], RSA through the RustCrypto `rsa` crate) and what each signs;
//! - [`cosign`]: one image against its simple-signing signatures;
//! - [`policy`]: the policy file, and the rule for a repository.
//!
//! What "signed" means for a multi-platform name: a signature covers the manifest whose
//! digest its payload names, and nothing else, so the **name's own digest** (the index,
//! for a multi-platform image) must be signed. A signature on a child manifest covers
//! only that child; such signatures are reported ([`ImageVerdict::signed_children`]),
//! never counted for the index. (`cosign sign IMAGE:TAG` signs the index; `cosign sign
//! --recursive` signs the index and every child.)

pub mod cosign;
pub mod keys;
pub mod policy;

#[cfg(test)]
mod tests;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use cosign::{Blobs, SignatureManifest, Subject, normalize_repository, same_repository};
pub use keys::CosignKey;
pub use policy::{Policy, PolicyError, Rule};

use crate::digest::Digest;
use crate::reference::Reference;

/// The signature that made an image signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signer {
    /// The signature manifest (`sha256-<hex>.sig`).
    pub manifest: Digest,
    /// Which of its layers (0-based).
    pub layer: usize,
    pub key_id: Digest,
    /// The key file that verified it.
    pub key_file: String,
    pub algorithm: String,
}

/// Why an image is not accepted. The signature variants name the signature manifest
/// (and the layer, 0-based, where there is one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// No signature manifest refers to the image.
    NoSignature,
    /// No accepted key verifies the signature (another key signed it, or the signature
    /// or its payload was altered).
    WrongKey { manifest: Digest, layer: usize },
    /// The signature is valid but its payload is about another digest.
    PayloadDigest {
        manifest: Digest,
        layer: usize,
        /// The payload's `critical.image.docker-manifest-digest`.
        names: String,
    },
    /// The signature is valid but its payload names another repository.
    Identity {
        manifest: Digest,
        layer: usize,
        /// The payload's `critical.identity.docker-reference`.
        names: String,
        expected: String,
    },
    /// Something that is not what it must be: base64, DER, JSON, a missing annotation
    /// or blob, bytes that do not hash to their digest.
    BadEncoding {
        manifest: Digest,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        layer: Option<usize>,
        detail: String,
    },
    /// A signature in a format airlock does not check (a Sigstore bundle).
    Unsupported { manifest: Digest, what: String },
    /// The policy requires a digest and the image was asked for by tag.
    NotPinned { source: String },
    /// The policy rejects the image's repository.
    Rejected {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

impl Problem {
    /// A short name for the reason, as in `verify`'s report.
    pub fn label(&self) -> &'static str {
        match self {
            Problem::NoSignature => "no signature",
            Problem::WrongKey { .. } => "wrong key",
            Problem::PayloadDigest { .. } => "payload digest mismatch",
            Problem::Identity { .. } => "identity mismatch",
            Problem::BadEncoding { .. } => "bad encoding",
            Problem::Unsupported { .. } => "unsupported signature",
            Problem::NotPinned { .. } => "not pinned by digest",
            Problem::Rejected { .. } => "rejected by policy",
        }
    }

    /// The signature manifest concerned, if any.
    pub fn manifest(&self) -> Option<&Digest> {
        match self {
            Problem::WrongKey { manifest, .. }
            | Problem::PayloadDigest { manifest, .. }
            | Problem::Identity { manifest, .. }
            | Problem::BadEncoding { manifest, .. }
            | Problem::Unsupported { manifest, .. } => Some(manifest),
            _ => None,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = |m: &Digest, layer: Option<usize>| match layer {
            Some(l) => format!("signature manifest {m} (layer {l})"),
            None => format!("signature manifest {m}"),
        };
        match self {
            Problem::NoSignature => f.write_str("no signature refers to it"),
            Problem::WrongKey { manifest, layer } => write!(
                f,
                "{}: no accepted key verifies it (signed by another key, or the signature or \
                 its payload was altered)",
                at(manifest, Some(*layer))
            ),
            Problem::PayloadDigest {
                manifest,
                layer,
                names,
            } => write!(
                f,
                "{}: valid, but its payload is for {names}, not this image",
                at(manifest, Some(*layer))
            ),
            Problem::Identity {
                manifest,
                layer,
                names,
                expected,
            } => write!(
                f,
                "{}: valid, but its payload names `{names}`, not `{expected}`",
                at(manifest, Some(*layer))
            ),
            Problem::BadEncoding {
                manifest,
                layer,
                detail,
            } => write!(f, "{}: {detail}", at(manifest, *layer)),
            Problem::Unsupported { manifest, what } => {
                write!(f, "{}: {what}", at(manifest, None))
            }
            Problem::NotPinned { source } => write!(
                f,
                "asked for by tag (`{source}`), but the policy requires images pinned by digest \
                 (name@sha256:…)"
            ),
            Problem::Rejected { reason } => match reason {
                Some(r) => write!(f, "the policy rejects it: {r}"),
                None => f.write_str("the policy rejects it"),
            },
        }
    }
}

/// The verdict on one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageVerdict {
    /// The image's name (as `ls` shows it).
    pub image: String,
    /// The digest the name points to (what a signature must name).
    pub digest: Digest,
    /// The policy rule that applied (`--key`, `rule docker.io/library (policy.json)`).
    pub rule: String,
    pub ok: bool,
    /// The signature that made it signed, when one was required and found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<Signer>,
    /// Why it is not accepted (empty when `ok`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
    /// For an index: child manifests with a valid signature of their own (they do not
    /// count for the index).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signed_children: Vec<Digest>,
}

impl ImageVerdict {
    /// One line per problem: `IMAGE (sha256:…): reason`.
    pub fn lines(&self) -> Vec<String> {
        self.problems
            .iter()
            .map(|p| {
                let mut s = format!("{} ({}): {p}", self.image, self.digest);
                if matches!(p, Problem::NoSignature) && !self.signed_children.is_empty() {
                    s.push_str(&format!(
                        "; {} of its child manifests carry a valid signature, but a signature \
                         on a child covers only that child: sign the index (`cosign sign` on the tag)",
                        self.signed_children.len()
                    ));
                }
                s
            })
            .collect()
    }
}

/// Images refused by a policy: the error of `push` and `save`, one line per image and
/// reason.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    pub message: String,
    pub verdicts: Vec<ImageVerdict>,
}

/// `Err` naming every refused image and why (and `consequence`: what was not done)
/// when any of `verdicts` is not ok.
pub fn refuse(verdicts: &[ImageVerdict], origin: &str, consequence: &str) -> Result<(), Refused> {
    let refused: Vec<&ImageVerdict> = verdicts.iter().filter(|v| !v.ok).collect();
    if refused.is_empty() {
        return Ok(());
    }
    let mut message = format!(
        "{} of {} {} refused by {origin}; {consequence}:",
        refused.len(),
        verdicts.len(),
        if verdicts.len() == 1 {
            "image"
        } else {
            "images"
        }
    );
    for v in &refused {
        for line in v.lines() {
            message.push_str("\n  - ");
            message.push_str(&line);
        }
    }
    Err(Refused {
        message,
        verdicts: refused.into_iter().cloned().collect(),
    })
}

/// One image to judge: what the caller knows of it.
#[derive(Debug, Clone)]
pub struct ImageInput {
    /// The name (as `ls` shows it: `docker.io/library/nginx:1.25`).
    pub name: String,
    /// What the user asked for (to tell whether it was pinned by digest).
    pub source: String,
    pub digest: Digest,
    /// The signature manifests whose subject is `digest`.
    pub signatures: Vec<SignatureManifest>,
    /// For an index: each child's digest and the signature manifests about it.
    pub children: Vec<(Digest, Vec<SignatureManifest>)>,
}

impl ImageInput {
    /// The repository signatures must name: the name's, normalized.
    pub fn repository(&self) -> String {
        normalize_repository(&self.name)
    }

    /// Whether the user named a digest (`name@sha256:…`, with or without a tag).
    pub fn pinned(&self) -> bool {
        Reference::parse(&self.source).map_or_else(
            |_| self.source.contains("@sha256:"),
            |r| r.digest().is_some(),
        )
    }
}

/// Judges `image` by the rule `policy` has for its repository: rejected, not pinned,
/// or (when the rule requires one) not signed by one of its keys.
pub fn evaluate(policy: &Policy, image: &ImageInput, blobs: Blobs<'_>) -> ImageVerdict {
    let repository = image.repository();
    let rule = policy.rule_for(&repository);
    let mut verdict = ImageVerdict {
        image: image.name.clone(),
        digest: image.digest.clone(),
        rule: rule.label.clone(),
        ok: false,
        signed_by: None,
        problems: Vec::new(),
        signed_children: Vec::new(),
    };
    if rule.reject {
        verdict.problems.push(Problem::Rejected {
            reason: rule.reason.clone(),
        });
    }
    if rule.require_digest && !image.pinned() {
        verdict.problems.push(Problem::NotPinned {
            source: image.source.clone(),
        });
    }
    if rule.require_signature && !rule.reject {
        let subject = Subject {
            digest: image.digest.clone(),
            repository: repository.clone(),
        };
        match cosign::check(&subject, &image.signatures, blobs, &rule.keys) {
            Ok(signer) => verdict.signed_by = Some(signer),
            Err(mut p) => verdict.problems.append(&mut p),
        }
        for (child, sigs) in &image.children {
            let subject = Subject {
                digest: child.clone(),
                repository: repository.clone(),
            };
            if !sigs.is_empty() && cosign::check(&subject, sigs, blobs, &rule.keys).is_ok() {
                verdict.signed_children.push(child.clone());
            }
        }
    }
    verdict.ok = verdict.problems.is_empty();
    verdict
}
