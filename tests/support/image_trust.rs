//! Cosign-format image signatures made by an independent tool, for the tests of the
//! offline signature checks (`tests/signatures.rs`): keys and signatures by the real
//! `openssl` (ECDSA P-256, Ed25519, RSA, where `referrers.rs` has ECDSA only),
//! simple-signing payloads and signature manifests written here, a bundle copied with
//! signature manifests added the way `save` records them (TOC artifacts of kind
//! `signature`, their blobs in the bundle), and readers of `verify --json`.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Value, json};

use airlock::bundle::toc::{ArtifactFound, ArtifactKind, TOC_NAME, Toc, TocArtifact, TocBlob};
use airlock::bundle::{BundleWriter, WriteOptions};
use airlock::digest::Digest;

use super::cli::{airlock, tool, tool_ok};

pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIG_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

pub fn openssl(args: &[&str]) -> String {
    tool_ok("openssl", "openssl", args)
}

#[derive(Clone, Copy, Debug)]
pub enum Alg {
    Ecdsa,
    Ed25519,
    Rsa,
}

/// A key pair written by openssl: the private key and its PKIX public key.
pub struct Key {
    pub alg: Alg,
    pub private: PathBuf,
    pub public: PathBuf,
}

pub fn key(dir: &Path, name: &str, alg: Alg) -> Key {
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let p = private.to_str().unwrap();
    match alg {
        Alg::Ecdsa => openssl(&[
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-noout",
            "-out",
            p,
        ]),
        Alg::Ed25519 => openssl(&["genpkey", "-algorithm", "ed25519", "-out", p]),
        Alg::Rsa => openssl(&["genrsa", "-out", p, "2048"]),
    };
    openssl(&[
        "pkey",
        "-in",
        p,
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    Key {
        alg,
        private,
        public,
    }
}

impl Key {
    /// openssl's signature of `payload`, base64 as cosign stores it: ECDSA and RSA
    /// (PKCS#1 v1.5) over SHA-256, Ed25519 over the raw bytes.
    pub fn sign(&self, payload: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let msg = dir.path().join("payload.json");
        let sig = dir.path().join("sig");
        fs::write(&msg, payload).unwrap();
        let (k, m, s) = (
            self.private.to_str().unwrap(),
            msg.to_str().unwrap(),
            sig.to_str().unwrap(),
        );
        match self.alg {
            Alg::Ecdsa | Alg::Rsa => openssl(&["dgst", "-sha256", "-sign", k, "-out", s, m]),
            Alg::Ed25519 => openssl(&[
                "pkeyutl", "-sign", "-inkey", k, "-rawin", "-in", m, "-out", s,
            ]),
        };
        base64::engine::general_purpose::STANDARD.encode(fs::read(&sig).unwrap())
    }
}

/// A cosign simple-signing payload.
pub fn payload(reference: &str, digest: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature"
        },
        "optional": {"creator": "openssl, by tests/signatures.rs"}
    }))
    .unwrap()
}

/// A cosign signature manifest about `subject`: its bytes and every blob it needs.
pub struct SigManifest {
    pub subject: String,
    pub bytes: Vec<u8>,
    pub blobs: Vec<(String, Vec<u8>)>,
}

impl SigManifest {
    pub fn digest(&self) -> String {
        Digest::of(&self.bytes).to_string()
    }
}

/// One layer per (payload, base64 signature), as `cosign sign` writes them.
pub fn sig_manifest(subject: &str, layers: &[(Vec<u8>, String)]) -> SigManifest {
    let config = serde_json::to_vec(&json!({"architecture": "", "os": "", "config": {},
        "rootfs": {"type": "layers", "diff_ids": []}}))
    .unwrap();
    let mut blobs = vec![(OCI_CONFIG.to_string(), config.clone())];
    let layers: Vec<Value> = layers
        .iter()
        .map(|(p, s)| {
            blobs.push((SIMPLE_SIGNING.to_string(), p.clone()));
            json!({"mediaType": SIMPLE_SIGNING, "digest": Digest::of(p).to_string(), "size": p.len(),
                   "annotations": {SIG_ANNOTATION: s}})
        })
        .collect();
    let bytes = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": Digest::of(&config).to_string(), "size": config.len()},
        "layers": layers}))
    .unwrap();
    SigManifest {
        subject: subject.to_string(),
        bytes,
        blobs,
    }
}

/// A signature on `subject` (a digest) by `key` naming `reference` and `names`.
pub fn signed(key: &Key, subject: &str, reference: &str, names: &str) -> SigManifest {
    let p = payload(reference, names);
    let s = key.sign(&p);
    sig_manifest(subject, &[(p, s)])
}

/// Copies the bundle `src` (a `.tar`) to `dst` with `sigs` added as the save side
/// records them: each manifest and its blobs in the bundle, each manifest a TOC
/// artifact of kind `signature` whose subject is the digest it signs.
pub fn with_signatures(src: &Path, dst: &Path, repository: &str, sigs: &[&SigManifest]) {
    let mut archive = tar::Archive::new(fs::File::open(src).unwrap());
    let mut entries: Vec<(String, tar::EntryType, Vec<u8>)> = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let kind = e.header().entry_type();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
        entries.push((name, kind, bytes));
    }
    let toc_at = entries.iter().position(|e| e.0 == TOC_NAME).unwrap();
    let mut toc: Toc = serde_json::from_slice(&entries[toc_at].2).unwrap();
    let mut extra: Vec<(Digest, Vec<u8>)> = Vec::new();
    let mut add_blob = |toc: &mut Toc, mt: &str, bytes: &[u8]| {
        let d = Digest::of(bytes);
        if !toc.blobs.iter().any(|b| b.digest == d) {
            toc.blobs.push(TocBlob {
                digest: d.clone(),
                size: bytes.len() as u64,
                media_type: mt.to_string(),
            });
            extra.push((d, bytes.to_vec()));
        }
    };
    for s in sigs {
        add_blob(&mut toc, OCI_MANIFEST, &s.bytes);
        for (mt, b) in &s.blobs {
            add_blob(&mut toc, mt, b);
        }
        let subject = Digest::parse(&s.subject).unwrap();
        toc.artifacts.push(TocArtifact {
            digest: Digest::of(&s.bytes),
            media_type: OCI_MANIFEST.to_string(),
            size: s.bytes.len() as u64,
            artifact_type: Some(OCI_CONFIG.to_string()),
            kind: ArtifactKind::Signature,
            subject: subject.clone(),
            repository: repository.to_string(),
            found: ArtifactFound::CosignTag,
            tag: Some(format!("sha256-{}.sig", subject.hex())),
        });
    }
    entries[toc_at].2 = serde_json::to_vec_pretty(&toc).unwrap();
    let mut w = BundleWriter::create(dst, WriteOptions::for_path(dst)).unwrap();
    for (name, kind, bytes) in &entries {
        if kind.is_dir() {
            w.add_dir(name).unwrap();
        } else if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            let d = Digest::parse(&format!("sha256:{hex}")).unwrap();
            w.add_blob(&d, bytes.len() as u64, &mut &bytes[..]).unwrap();
        } else {
            w.add_file(name, bytes).unwrap();
        }
    }
    for (d, bytes) in &extra {
        w.add_blob(d, bytes.len() as u64, &mut &bytes[..]).unwrap();
    }
    w.finish().unwrap();
}

pub fn verify_json(bundle: &Path, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["verify", bundle.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let run = airlock(&args);
    let code = run.code;
    (code, run.json())
}

/// The image-signature findings of a `verify --json` report, as (kind, images, digest).
pub fn image_findings(report: &Value) -> Vec<(String, Vec<String>, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"].as_str().unwrap().starts_with("image_"))
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["images"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i.as_str().unwrap().to_string())
                    .collect(),
                f["digest"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

pub fn tool_ok_bytes(args: &[&str]) -> Vec<u8> {
    let out = tool("openssl", "openssl", args);
    assert!(out.status.success(), "openssl {}", args.join(" "));
    out.stdout
}

/// A policy file in `dir` with `rules`, keys relative to it.
pub fn write_policy(dir: &Path, doc: Value) -> PathBuf {
    let p = dir.join("policy.json");
    fs::write(&p, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    p
}
