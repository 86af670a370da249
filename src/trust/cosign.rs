//! One image against its cosign signatures: the classic "simple signing" format that
//! cosign stores under the tag `sha256-<hex>.sig`.
//!
//! A signature manifest is an OCI image manifest whose layers have the media type
//! [`SIMPLE_SIGNING`]; each such layer is one signature: its blob is the payload (JSON,
//! `critical.identity.docker-reference`, `critical.image.docker-manifest-digest`,
//! `critical.type`), and its annotation [`SIGNATURE_ANNOTATION`] holds the base64
//! signature over the payload's bytes exactly as stored (see [`super::keys`] for what
//! each kind of key signs). An image is signed when at least one layer of one of its
//! signature manifests
//!
//! 1. verifies with an accepted key,
//! 2. has a payload naming this image's digest, and
//! 3. has a payload whose `docker-reference` is this image's repository
//!    ([`same_repository`]: both normalized as Docker does, tags and digests ignored).
//!
//! Order matters for the verdict, not for safety: the signature is checked before the
//! payload is even parsed, so what an unverified payload says is never reported as a
//! fact about the image. Every manifest and payload must also hash to the digest it is
//! known by (the caller's bytes are not trusted). Nothing here reads a file or talks to
//! a registry: the caller hands in the bytes.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::keys::CosignKey;
use super::{Problem, Signer};
use crate::digest::Digest;
use crate::oci::ImageManifest;
use crate::reference::Reference;

/// The media type of a cosign simple-signing layer (one signature each).
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The `critical.type` cosign writes; Red Hat's simple signing says the second.
const PAYLOAD_TYPES: [&str; 2] = [
    "cosign container image signature",
    "atomic container signature",
];
/// A payload larger than this is not a simple-signing payload.
pub const MAX_PAYLOAD: u64 = 1024 * 1024;

/// A signature manifest said to be about an image, and its bytes (`None` when they are
/// not at hand, e.g. not in the bundle).
#[derive(Debug, Clone)]
pub struct SignatureManifest {
    pub digest: Digest,
    pub bytes: Option<Vec<u8>>,
}

/// Where payload blobs come from: their bytes by digest, `None` when absent. The bytes
/// are checked against the digest here.
pub type Blobs<'a> = &'a dyn Fn(&Digest) -> Option<Vec<u8>>;

#[derive(Deserialize)]
struct Payload {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    identity: Identity,
    image: PayloadImage,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Deserialize)]
struct PayloadImage {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

/// The image's digest and repository (`registry/path`, normalized as
/// [`normalize_repository`] does), what its signatures must name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Subject {
    pub digest: Digest,
    pub repository: String,
}

/// Checks `subject` against the signature manifests said to be about it: the first
/// layer that is a valid signature by one of `keys` for this digest and repository, or
/// every reason none is (one per signature layer or manifest; [`Problem::NoSignature`]
/// when there are none at all).
pub fn check(
    subject: &Subject,
    manifests: &[SignatureManifest],
    blobs: Blobs<'_>,
    keys: &[CosignKey],
) -> Result<Signer, Vec<Problem>> {
    if manifests.is_empty() {
        return Err(vec![Problem::NoSignature]);
    }
    let mut problems = Vec::new();
    for m in manifests {
        match check_manifest(subject, m, blobs, keys) {
            Ok(signer) => return Ok(signer),
            Err(mut p) => problems.append(&mut p),
        }
    }
    Err(problems)
}

fn check_manifest(
    subject: &Subject,
    m: &SignatureManifest,
    blobs: Blobs<'_>,
    keys: &[CosignKey],
) -> Result<Signer, Vec<Problem>> {
    let bad = |layer: Option<usize>, detail: String| Problem::BadEncoding {
        manifest: m.digest.clone(),
        layer,
        detail,
    };
    let Some(bytes) = &m.bytes else {
        return Err(vec![bad(
            None,
            "the signature manifest is not in the bundle".into(),
        )]);
    };
    let actual = Digest::of(bytes);
    if actual != m.digest {
        return Err(vec![bad(
            None,
            format!("the signature manifest's bytes hash to {actual}"),
        )]);
    }
    let manifest: ImageManifest = serde_json::from_slice(bytes)
        .map_err(|e| vec![bad(None, format!("not an image manifest ({e})"))])?;
    let layers: Vec<_> = manifest
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| l.media_type == SIMPLE_SIGNING)
        .collect();
    if layers.is_empty() {
        let what = manifest
            .layers
            .first()
            .map(|l| l.media_type.clone())
            .unwrap_or_else(|| "no layers".into());
        return Err(vec![Problem::Unsupported {
            manifest: m.digest.clone(),
            what: format!(
                "not a cosign simple-signing signature ({what}); airlock checks only those \
                 (a Sigstore bundle travels with the image but is not verified)"
            ),
        }]);
    }
    let mut problems = Vec::new();
    for (i, layer) in layers {
        let bad = |detail: String| bad(Some(i), detail);
        let Some(b64) = layer
            .annotations
            .as_ref()
            .and_then(|a| a.get(SIGNATURE_ANNOTATION))
        else {
            problems.push(bad(format!("no `{SIGNATURE_ANNOTATION}` annotation")));
            continue;
        };
        let signature = match base64::engine::general_purpose::STANDARD.decode(b64.trim()) {
            Ok(s) => s,
            Err(e) => {
                problems.push(bad(format!("the signature is not base64 ({e})")));
                continue;
            }
        };
        if layer.size > MAX_PAYLOAD {
            problems.push(bad(format!(
                "the payload is {} bytes, more than a simple-signing payload ever is",
                layer.size
            )));
            continue;
        }
        let Some(payload) = blobs(&layer.digest) else {
            problems.push(bad(format!(
                "the payload blob {} is not in the bundle",
                layer.digest
            )));
            continue;
        };
        let got = Digest::of(&payload);
        if got != layer.digest {
            problems.push(bad(format!(
                "the payload blob {} hashes to {got}",
                layer.digest
            )));
            continue;
        }
        let Some(key) = keys.iter().find(|k| k.verifies(&payload, &signature)) else {
            problems.push(Problem::WrongKey {
                manifest: m.digest.clone(),
                layer: i,
            });
            continue;
        };
        let payload: Payload = match serde_json::from_slice(&payload) {
            Ok(p) => p,
            Err(e) => {
                problems.push(bad(format!("the payload is not simple-signing JSON ({e})")));
                continue;
            }
        };
        let c = payload.critical;
        if !PAYLOAD_TYPES.contains(&c.kind.as_str()) {
            problems.push(bad(format!(
                "the payload's critical.type is `{}`, not `{}`",
                c.kind, PAYLOAD_TYPES[0]
            )));
            continue;
        }
        if c.image.digest != subject.digest.as_str() {
            problems.push(Problem::PayloadDigest {
                manifest: m.digest.clone(),
                layer: i,
                names: c.image.digest,
            });
            continue;
        }
        if !same_repository(&c.identity.docker_reference, &subject.repository) {
            problems.push(Problem::Identity {
                manifest: m.digest.clone(),
                layer: i,
                names: c.identity.docker_reference,
                expected: subject.repository.clone(),
            });
            continue;
        }
        return Ok(Signer {
            manifest: m.digest.clone(),
            layer: i,
            key_id: key.key_id().clone(),
            key_file: key.path().display().to_string(),
            algorithm: key.algorithm().to_string(),
        });
    }
    Err(problems)
}

/// A repository name as Docker normalizes it, `registry/path` without tag or digest:
/// `nginx`, `docker.io/nginx`, `index.docker.io/library/nginx` (what go-containerregistry,
/// and so cosign, writes) and `registry-1.docker.io/library/nginx:1.25` are all
/// `docker.io/library/nginx`. Text that is no reference is kept as it is, lower-cased.
pub fn normalize_repository(name: &str) -> String {
    let name = name.trim();
    let name = match name.strip_prefix("registry-1.docker.io/") {
        Some(rest) => format!("docker.io/{rest}"),
        None => name.to_string(),
    };
    match Reference::parse(&name) {
        Ok(r) => r.name(),
        Err(_) => name.to_ascii_lowercase(),
    }
}

/// Whether a payload's `docker-reference` names `repository` (normalized): both are
/// normalized ([`normalize_repository`]) and compared whole, so `docker.io/library/x`,
/// `index.docker.io/library/x` and `x` match each other and `x` does not match
/// `docker.io/someone/x` or `registry.lan/library/x`.
pub fn same_repository(docker_reference: &str, repository: &str) -> bool {
    normalize_repository(docker_reference) == normalize_repository(repository)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_spellings_are_one_repository() {
        for s in [
            "nginx",
            "docker.io/nginx",
            "docker.io/library/nginx",
            "index.docker.io/library/nginx",
            "registry-1.docker.io/library/nginx",
            "nginx:1.25",
            "docker.io/library/nginx@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert_eq!(normalize_repository(s), "docker.io/library/nginx", "{s}");
        }
        assert!(!same_repository("someone/nginx", "nginx"));
        assert!(!same_repository("registry.lan/library/nginx", "nginx"));
        assert!(same_repository(
            "localhost:5000/corp/app",
            "localhost:5000/corp/app:1"
        ));
        assert!(!same_repository(
            "localhost:5000/corp/app",
            "localhost:5001/corp/app"
        ));
    }
}
