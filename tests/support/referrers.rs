//! Signed images in a real registry: cosign-style signatures, SPDX SBOMs (OCI 1.1
//! artifacts with a `subject`), the referrers tag schema, and BuildKit-style indexes
//! with attestation manifests, for the tests of `save`, `push`, `ls` and `verify`.
//!
//! Everything is written by the test side, never by airlock: keys and signatures by the
//! real `openssl` ([`Keys`]), images by the real `skopeo` ([`super::images::push`]),
//! artifacts and indexes by plain HTTP `PUT`s ([`push_blob`], [`push_manifest`],
//! [`push_artifact`]) to a real `docker-registry` or to the referrers API server of
//! `referrers_api.rs` in front of one (which records manifests that have a `subject`).
//!
//! The main entry points:
//! - [`signed_debian`]: `corp/debian:12` with a cosign signature under the tag
//!   `sha256-<hex>.sig`, an SPDX SBOM with `subject` (listed in the fallback index under
//!   the tag `sha256-<hex>` when [`Options::fallback_tag`]), and optionally a cosign
//!   signature on the SBOM (a referrer of a referrer);
//! - [`buildkit_index`]: an index of a linux/amd64 and a linux/arm64 image plus one
//!   attestation manifest per image (in-toto layer, platform `unknown/unknown`, the
//!   `vnd.docker.reference.*` annotations), as `docker buildx` pushes it;
//! - the pieces, to build other cases: [`Keys::generate`] and [`Keys::sign`] (sign any
//!   payload, e.g. with a wrong key or tampered), [`simple_signing_payload`],
//!   [`cosign_signature`] / [`cosign_signature_of`] (a signature artifact from a payload
//!   and a base64 signature), [`sbom`], [`artifact`] (any OCI 1.1 artifact with a
//!   subject), [`fallback_index`], [`push_artifact`].
//!
//! Layout of a cosign signature (sigstore/cosign `pkg/oci/static`, `pkg/oci/mutate`):
//! an OCI manifest whose config is an image config with empty os/architecture and one
//! `diff_id` per layer, and one layer per signature of media type
//! `application/vnd.dev.cosign.simplesigning.v1+json` (the payload) carrying the
//! annotation `dev.cosignproject.cosign/signature` (base64 ASN.1 DER ECDSA P-256 /
//! SHA-256 over the payload bytes).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Value, json};

use super::cli::tool_ok;
use super::corpus::{Corpus, app_layer, base_layer, passwd};
use super::images::{
    Blob, CREATED, Image, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, PushOptions, hex_of, push,
};

/// The repository and tag of [`signed_debian`].
pub const DEBIAN_REPO: &str = "corp/debian";
pub const DEBIAN_TAG: &str = "12";
/// Media types and annotations of the artifacts.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const COSIGN_SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
pub const SPDX_JSON: &str = "application/spdx+json";
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// An ECDSA P-256 key pair made by `openssl`, in a temp dir that lives as long as this.
pub struct Keys {
    dir: tempfile::TempDir,
    /// PKCS#8 PEM private key (`openssl pkcs8 -topk8 -nocrypt`), as cosign can import.
    pub private_pem: PathBuf,
    /// PKIX (SPKI) PEM public key, as cosign writes `cosign.pub`.
    pub public_pem: PathBuf,
}

impl Keys {
    /// A fresh key pair: `openssl ecparam -genkey -name prime256v1`, then `openssl
    /// pkcs8 -topk8 -nocrypt` and `openssl ec -pubout`.
    pub fn generate() -> Keys {
        let dir = tempfile::tempdir().expect("temp dir for keys");
        let ec = dir.path().join("ec.pem");
        let private_pem = dir.path().join("cosign.key");
        let public_pem = dir.path().join("cosign.pub");
        let p = |p: &Path| p.to_str().expect("utf-8 temp path").to_string();
        tool_ok(
            "openssl",
            "openssl",
            &[
                "ecparam",
                "-genkey",
                "-name",
                "prime256v1",
                "-noout",
                "-out",
                &p(&ec),
            ],
        );
        tool_ok(
            "openssl",
            "openssl",
            &[
                "pkcs8",
                "-topk8",
                "-nocrypt",
                "-in",
                &p(&ec),
                "-out",
                &p(&private_pem),
            ],
        );
        tool_ok(
            "openssl",
            "openssl",
            &["ec", "-in", &p(&ec), "-pubout", "-out", &p(&public_pem)],
        );
        Keys {
            dir,
            private_pem,
            public_pem,
        }
    }

    /// `openssl dgst -sha256 -sign` over `payload`: the base64 of the DER signature.
    pub fn sign(&self, payload: &[u8]) -> String {
        let input = self.dir.path().join("payload");
        let output = self.dir.path().join("payload.sig");
        std::fs::write(&input, payload).expect("write payload");
        tool_ok(
            "openssl",
            "openssl",
            &[
                "dgst",
                "-sha256",
                "-sign",
                self.private_pem.to_str().unwrap(),
                "-out",
                output.to_str().unwrap(),
                input.to_str().unwrap(),
            ],
        );
        let der = std::fs::read(&output).expect("read signature");
        base64::engine::general_purpose::STANDARD.encode(der)
    }

    /// `openssl dgst -sha256 -verify` of a base64 signature over `payload`.
    pub fn verify(&self, payload: &[u8], signature_b64: &str) -> bool {
        let input = self.dir.path().join("check");
        let sig = self.dir.path().join("check.sig");
        std::fs::write(&input, payload).unwrap();
        std::fs::write(
            &sig,
            base64::engine::general_purpose::STANDARD
                .decode(signature_b64)
                .unwrap(),
        )
        .unwrap();
        super::cli::tool(
            "openssl",
            "openssl",
            &[
                "dgst",
                "-sha256",
                "-verify",
                self.public_pem.to_str().unwrap(),
                "-signature",
                sig.to_str().unwrap(),
                input.to_str().unwrap(),
            ],
        )
        .status
        .success()
    }
}

/// An artifact: its manifest, the blobs it names, what it refers to and its tag.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub manifest: Blob,
    /// Config first, then layers.
    pub blobs: Vec<Blob>,
    /// The digest of the manifest it is about.
    pub subject: String,
    /// The tag it is pushed under (cosign's `sha256-<hex>.sig`), if any.
    pub tag: Option<String>,
}

impl Artifact {
    pub fn digest(&self) -> &str {
        &self.manifest.digest
    }
    /// Its descriptor as a referrers index lists it (with `artifactType`).
    pub fn descriptor(&self, artifact_type: &str) -> Value {
        let mut d = self.manifest.descriptor();
        d["artifactType"] = json!(artifact_type);
        d
    }
}

/// Cosign's simple-signing payload for `digest`, identity `docker_reference`
/// (`127.0.0.1:PORT/corp/debian`), exactly as cosign writes it (compact JSON).
pub fn simple_signing_payload(docker_reference: &str, digest: &str) -> Vec<u8> {
    format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{docker_reference}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
    )
    .into_bytes()
}

/// A cosign signature manifest over `payload` with `signature_b64` in the layer
/// annotation, tagged `sha256-<hex of subject>.sig`. Use it for wrong-key or tampered
/// cases (sign one payload, put another; sign with another key).
pub fn cosign_signature_of(subject: &str, payload: Vec<u8>, signature_b64: &str) -> Artifact {
    let layer = Blob::new(SIMPLE_SIGNING, payload);
    let config = json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
        "config": {},
    });
    let config = Blob::new(OCI_CONFIG, serde_json::to_vec(&config).unwrap());
    let mut layer_desc = layer.descriptor();
    layer_desc["annotations"] = json!({ COSIGN_SIGNATURE_ANNOTATION: signature_b64 });
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer_desc],
    });
    Artifact {
        manifest: Blob::new(OCI_MANIFEST, serde_json::to_vec(&manifest).unwrap()),
        blobs: vec![config, layer],
        subject: subject.to_string(),
        tag: Some(format!("sha256-{}.sig", hex_of(subject))),
    }
}

/// A valid cosign signature by `keys` of `subject` for `docker_reference`.
pub fn cosign_signature(keys: &Keys, docker_reference: &str, subject: &str) -> Artifact {
    let payload = simple_signing_payload(docker_reference, subject);
    let signature = keys.sign(&payload);
    cosign_signature_of(subject, payload, &signature)
}

/// An OCI 1.1 artifact about `subject`: `artifactType` = `artifact_type`, the empty
/// config, one layer of `content` with that media type, and `subject`.
pub fn artifact(subject: &Blob, artifact_type: &str, content: Vec<u8>) -> Artifact {
    let layer = Blob::new(artifact_type, content);
    let config = Blob::new(OCI_EMPTY, b"{}".to_vec());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": config.descriptor(),
        "layers": [layer.descriptor()],
        "subject": subject.descriptor(),
        "annotations": {"org.opencontainers.image.created": CREATED},
    });
    Artifact {
        manifest: Blob::new(OCI_MANIFEST, serde_json::to_vec(&manifest).unwrap()),
        blobs: vec![config, layer],
        subject: subject.digest.clone(),
        tag: None,
    }
}

/// An SPDX 2.3 SBOM as an OCI 1.1 artifact: `artifactType: application/spdx+json`,
/// the empty config, one SPDX layer, and `subject` = `subject` (a manifest blob).
pub fn sbom(subject: &Blob, name: &str) -> Artifact {
    let doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": format!("https://example.com/spdx/{}", hex_of(&subject.digest)),
        "creationInfo": {"created": CREATED, "creators": ["Tool: airlock-tests"]},
        "packages": [{
            "name": "base-files", "SPDXID": "SPDXRef-Package-base-files",
            "versionInfo": "12.4+deb12u5", "downloadLocation": "NOASSERTION",
        }],
    });
    artifact(subject, SPDX_JSON, serde_json::to_vec_pretty(&doc).unwrap())
}

/// The referrers tag schema's index listing `referrers` (`(artifact, artifactType)`).
pub fn fallback_index(referrers: &[(&Artifact, &str)]) -> Blob {
    let body = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": referrers.iter().map(|(a, t)| a.descriptor(t)).collect::<Vec<_>>(),
    });
    Blob::new(OCI_INDEX, serde_json::to_vec(&body).unwrap())
}

/// The tag the referrers tag schema uses for `subject`: `sha256-<hex>`.
pub fn fallback_tag(subject: &str) -> String {
    format!("sha256-{}", hex_of(subject))
}

// ---------------------------------------------------------------------------------
// Plain HTTP writes.

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent()
}

/// Uploads `blob` into `repo` at `addr` (`127.0.0.1:PORT`): `POST` then `PUT ?digest=`.
pub fn push_blob(addr: &str, repo: &str, blob: &Blob) {
    let agent = agent();
    let resp = agent
        .post(&format!("http://{addr}/v2/{repo}/blobs/uploads/"))
        .send_empty()
        .expect("POST blob upload");
    assert_eq!(resp.status().as_u16(), 202, "POST upload to {addr}/{repo}");
    let loc = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("upload Location")
        .to_string();
    let loc = if loc.starts_with('/') {
        format!("http://{addr}{loc}")
    } else {
        loc
    };
    let sep = if loc.contains('?') { '&' } else { '?' };
    let resp = agent
        .put(&format!("{loc}{sep}digest={}", blob.digest))
        .header("content-type", "application/octet-stream")
        .send(&blob.bytes[..])
        .expect("PUT blob");
    assert_eq!(
        resp.status().as_u16(),
        201,
        "PUT blob {} to {addr}/{repo}",
        blob.digest
    );
}

/// PUTs `manifest` as `repo:reference` (a tag or its digest) at `addr`; returns the
/// answer's headers (lowercased names) so callers can read `OCI-Subject`.
pub fn push_manifest(
    addr: &str,
    repo: &str,
    reference: &str,
    manifest: &Blob,
) -> Vec<(String, String)> {
    let mut resp = agent()
        .put(&format!("http://{addr}/v2/{repo}/manifests/{reference}"))
        .header("content-type", manifest.media_type.as_str())
        .send(&manifest.bytes[..])
        .expect("PUT manifest");
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    assert_eq!(
        status, 201,
        "PUT manifest {addr}/{repo}:{reference} ({}): {body}",
        manifest.digest
    );
    resp.headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect()
}

/// Pushes an artifact: its blobs, its manifest by digest, then its tag if it has one.
pub fn push_artifact(addr: &str, repo: &str, artifact: &Artifact) {
    for b in &artifact.blobs {
        push_blob(addr, repo, b);
    }
    push_manifest(addr, repo, &artifact.manifest.digest, &artifact.manifest);
    if let Some(tag) = &artifact.tag {
        push_manifest(addr, repo, tag, &artifact.manifest);
    }
}

// ---------------------------------------------------------------------------------
// Ready-made cases.

/// What [`signed_debian`] writes.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// List the SBOM in the referrers tag schema's index (`sha256-<hex>`): for a
    /// registry without the referrers API. Off when pushing through `referrers_api.rs`.
    pub fallback_tag: bool,
    /// Sign the SBOM too (cosign tag `sha256-<sbom hex>.sig`): a referrer of a referrer.
    pub sbom_signature: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            fallback_tag: true,
            sbom_signature: false,
        }
    }
}

/// `corp/debian:12` and what refers to it, as written into a registry.
pub struct SignedImage {
    /// `ADDR/corp/debian:12`.
    pub name: String,
    /// `ADDR/corp/debian`: the signature's `docker-reference`.
    pub docker_reference: String,
    pub image: Image,
    /// The image manifest's digest (the signature's subject).
    pub digest: String,
    pub keys: Keys,
    pub signature: Artifact,
    pub sbom: Artifact,
    pub sbom_signature: Option<Artifact>,
    /// The index under the tag `sha256-<hex>` (with [`Options::fallback_tag`]).
    pub fallback_index: Option<Blob>,
}

/// The `corp/debian:12` image (linux/amd64, OCI).
pub fn debian_image() -> Image {
    Corpus::new(base_layer("debian", &[passwd()]), |s| app_layer(s, 4096)).image("linux/amd64", 12)
}

/// Writes `corp/debian:12` (by skopeo), its cosign signature (tag `.sig`), its SBOM (by
/// digest, with `subject`) and, per `opts`, the fallback tag index and a signature on
/// the SBOM, into the registry at `addr` (a real one, or `referrers_api.rs` in front).
pub fn signed_debian(addr: &str, opts: Options) -> SignedImage {
    let image = debian_image();
    let name = format!("{addr}/{DEBIAN_REPO}:{DEBIAN_TAG}");
    push(&image, &name, &PushOptions::default());
    let docker_reference = format!("{addr}/{DEBIAN_REPO}");
    let digest = image.manifest.digest.clone();
    let keys = Keys::generate();
    let signature = cosign_signature(&keys, &docker_reference, &digest);
    push_artifact(addr, DEBIAN_REPO, &signature);
    let sbom = sbom(&image.manifest, &format!("{DEBIAN_REPO}:{DEBIAN_TAG}"));
    push_artifact(addr, DEBIAN_REPO, &sbom);
    let fallback = opts.fallback_tag.then(|| {
        let index = fallback_index(&[(&sbom, SPDX_JSON)]);
        push_manifest(addr, DEBIAN_REPO, &fallback_tag(&digest), &index);
        index
    });
    let sbom_signature = opts.sbom_signature.then(|| {
        let s = cosign_signature(&keys, &docker_reference, sbom.digest());
        push_artifact(addr, DEBIAN_REPO, &s);
        s
    });
    SignedImage {
        name,
        docker_reference,
        image,
        digest,
        keys,
        signature,
        sbom,
        sbom_signature,
        fallback_index: fallback,
    }
}

/// A BuildKit-style index as written into a registry.
pub struct BuildkitImage {
    /// `ADDR/REPO:TAG`.
    pub name: String,
    pub index: Blob,
    /// One per platform, in order (linux/amd64 then linux/arm64 for [`buildkit_index`]).
    pub images: Vec<Image>,
    /// One attestation manifest per image, in the same order.
    pub attestations: Vec<Artifact>,
}

/// An in-toto attestation manifest about `subject` as BuildKit writes it: an image
/// config for `unknown/unknown` and one in-toto statement layer.
pub fn buildkit_attestation(subject: &Blob, name: &str) -> Artifact {
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://slsa.dev/provenance/v0.2",
        "subject": [{"name": name, "digest": {"sha256": hex_of(&subject.digest)}}],
        "predicate": {"builder": {"id": "https://example.com/airlock-tests"}},
    });
    let layer = Blob::new(IN_TOTO, serde_json::to_vec(&statement).unwrap());
    let config = json!({
        "architecture": "unknown",
        "os": "unknown",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
    });
    let config = Blob::new(OCI_CONFIG, serde_json::to_vec(&config).unwrap());
    let mut layer_desc = layer.descriptor();
    layer_desc["annotations"] =
        json!({"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"});
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer_desc],
    });
    Artifact {
        manifest: Blob::new(OCI_MANIFEST, serde_json::to_vec(&manifest).unwrap()),
        blobs: vec![config, layer],
        subject: subject.digest.clone(),
        tag: None,
    }
}

/// Writes a BuildKit-style index `repo:tag` at `addr`: a linux/amd64 and a linux/arm64
/// image (seeds from `seed`) and an attestation manifest for each, listed in the index
/// with platform `unknown/unknown` and the `vnd.docker.reference.*` annotations.
pub fn buildkit_index(addr: &str, repo: &str, tag: &str, seed: u64) -> BuildkitImage {
    buildkit_index_for(addr, repo, tag, seed, &["linux/amd64", "linux/arm64"])
}

/// Like [`buildkit_index`], with one image per platform of `platforms` (seeds from
/// `seed` on), in that order.
pub fn buildkit_index_for(
    addr: &str,
    repo: &str,
    tag: &str,
    seed: u64,
    platforms: &[&str],
) -> BuildkitImage {
    let corpus = Corpus::new(base_layer("buildkit", &[passwd()]), |s| app_layer(s, 2048));
    let images: Vec<Image> = platforms
        .iter()
        .zip(seed..)
        .map(|(p, s)| corpus.image(p, s))
        .collect();
    let attestations: Vec<Artifact> = images
        .iter()
        .map(|i| buildkit_attestation(&i.manifest, &format!("{repo}:{tag}")))
        .collect();
    let mut entries = Vec::new();
    for i in &images {
        let mut d = i.manifest.descriptor();
        d["platform"] = i.platform.json();
        entries.push(d);
    }
    for a in &attestations {
        let mut d = a.manifest.descriptor();
        d["platform"] = json!({"architecture": "unknown", "os": "unknown"});
        d["annotations"] = json!({
            "vnd.docker.reference.type": "attestation-manifest",
            "vnd.docker.reference.digest": a.subject,
        });
        entries.push(d);
    }
    let body = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries});
    let index = Blob::new(OCI_INDEX, serde_json::to_vec_pretty(&body).unwrap());
    for i in &images {
        for b in i.blobs().into_iter().skip(1) {
            push_blob(addr, repo, b);
        }
        push_manifest(addr, repo, &i.manifest.digest, &i.manifest);
    }
    for a in &attestations {
        push_artifact(addr, repo, a);
    }
    push_manifest(addr, repo, tag, &index);
    BuildkitImage {
        name: format!("{addr}/{repo}:{tag}"),
        index,
        images,
        attestations,
    }
}

// ---------------------------------------------------------------------------------
// An independent writer: the `oras` Python SDK (PyPI `oras`, installed by
// scripts/test.sh).

/// Pushes `content` as an `application/spdx+json` layer with `subject` = `subject`, to
/// `addr/repo:tag`, with the `oras` Python SDK (its own config, its own manifest
/// layout: no `artifactType`, config `application/vnd.unknown.config.v1+json`).
/// Returns the manifest digest the registry announced.
pub fn oras_push_sbom(addr: &str, repo: &str, tag: &str, subject: &Blob, content: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("temp dir for oras");
    let file = dir.path().join("sbom.spdx.json");
    std::fs::write(&file, content).unwrap();
    let script = r#"
import os, sys
import oras.oci
from oras.client import OrasClient
addr, repo, tag, media_type, digest, size = sys.argv[1:7]
os.chdir(sys.argv[7])
client = OrasClient(hostname=addr, insecure=True)
r = client.push(
    target=f"{addr}/{repo}:{tag}",
    files=["sbom.spdx.json:application/spdx+json"],
    subject=oras.oci.Subject(media_type, digest, int(size)),
    quiet=True,
)
print(r.status_code, r.headers.get("Docker-Content-Digest", ""))
"#;
    let size = subject.size().to_string();
    let out = super::cli::tool_ok(
        "python3",
        "python3-pip",
        &[
            "-c",
            script,
            addr,
            repo,
            tag,
            &subject.media_type,
            &subject.digest,
            &size,
            dir.path().to_str().unwrap(),
        ],
    );
    let line = out.lines().last().unwrap_or_default();
    let (status, digest) = line
        .split_once(' ')
        .unwrap_or_else(|| panic!("oras said: {out}"));
    assert_eq!(status, "201", "oras push: {out}");
    digest.trim().to_string()
}
