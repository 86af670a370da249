//! The decisions of [`super::evaluate`], with keys made in-process (the end-to-end tests
//! in `tests/signatures.rs` use keys and signatures made by openssl).

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use serde_json::json;

use super::*;
use crate::signing::{Algorithm, PrivateKey};

struct Store(HashMap<Digest, Vec<u8>>);

impl Store {
    fn put(&mut self, bytes: Vec<u8>) -> Digest {
        let d = Digest::of(&bytes);
        self.0.insert(d.clone(), bytes);
        d
    }
}

fn payload(reference: &str, digest: &str) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"critical": {"identity": {"docker-reference": reference},
        "image": {"docker-manifest-digest": digest}, "type": "cosign container image signature"},
        "optional": null}),
    )
    .unwrap()
}

/// A `.sig` manifest with one layer per (payload, signature).
fn sig_manifest(store: &mut Store, layers: &[(Vec<u8>, String)]) -> SignatureManifest {
    let config = store.put(b"{}".to_vec());
    let layers: Vec<_> = layers
        .iter()
        .map(|(p, s)| {
            let d = store.put(p.clone());
            json!({"mediaType": cosign::SIMPLE_SIGNING, "digest": d, "size": p.len(),
                   "annotations": {cosign::SIGNATURE_ANNOTATION: s}})
        })
        .collect();
    let bytes = serde_json::to_vec(&json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": layers}))
    .unwrap();
    SignatureManifest {
        digest: Digest::of(&bytes),
        bytes: Some(bytes),
    }
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn cosign_key(k: &PrivateKey) -> CosignKey {
    CosignKey::from_pem(&k.public_key().to_pem(), Path::new("k.pub")).unwrap()
}

fn input(digest: &Digest, sigs: Vec<SignatureManifest>) -> ImageInput {
    ImageInput {
        name: "registry.lan/corp/app:1".into(),
        source: "registry.lan/corp/app:1".into(),
        digest: digest.clone(),
        signatures: sigs,
        children: Vec::new(),
    }
}

#[test]
fn each_reason_is_told_apart() {
    let key = PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let other = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let policy = Policy::keys(vec![cosign_key(&key)]);
    let image = Digest::of(b"the image manifest");
    let mut store = Store(HashMap::new());
    let sign = |k: &PrivateKey, p: &[u8]| b64(k.sign(p).as_bytes());

    let good = payload("registry.lan/corp/app", image.as_str());
    let valid = sig_manifest(&mut store, &[(good.clone(), sign(&key, &good))]);
    let wrong_key = sig_manifest(&mut store, &[(good.clone(), sign(&other, &good))]);
    let elsewhere = payload("registry.lan/corp/app", Digest::of(b"x").as_str());
    let for_other = sig_manifest(&mut store, &[(elsewhere.clone(), sign(&key, &elsewhere))]);
    let renamed = payload("registry.lan/corp/other", image.as_str());
    let identity = sig_manifest(&mut store, &[(renamed.clone(), sign(&key, &renamed))]);
    let not_b64 = sig_manifest(&mut store, &[(good.clone(), "%%%".into())]);
    let mut tampered = sig_manifest(&mut store, &[(good.clone(), sign(&key, &good))]);
    let blobs = |d: &Digest| store.0.get(d).cloned();

    let v = evaluate(&policy, &input(&image, vec![valid.clone()]), &blobs);
    assert!(v.ok, "{v:?}");
    assert_eq!(v.signed_by.as_ref().unwrap().manifest, valid.digest);
    assert_eq!(v.signed_by.unwrap().key_id, *key.key_id());

    let one = |m: &SignatureManifest| {
        let v = evaluate(&policy, &input(&image, vec![m.clone()]), &blobs);
        assert!(!v.ok);
        assert_eq!(v.problems.len(), 1, "{v:?}");
        assert_eq!(v.problems[0].manifest(), Some(&m.digest));
        v.problems[0].label()
    };
    assert_eq!(one(&wrong_key), "wrong key");
    assert_eq!(one(&for_other), "payload digest mismatch");
    assert_eq!(one(&identity), "identity mismatch");
    assert_eq!(one(&not_b64), "bad encoding");
    let v = evaluate(&policy, &input(&image, vec![]), &blobs);
    assert_eq!(v.problems, vec![Problem::NoSignature]);

    // One valid signature among bad ones is enough.
    let v = evaluate(
        &policy,
        &input(&image, vec![wrong_key, identity, valid]),
        &blobs,
    );
    assert!(v.ok, "{v:?}");

    // A signature manifest changed on the way: its bytes no longer hash to its digest.
    let altered = tampered.bytes.as_ref().unwrap().clone();
    tampered.bytes = Some([altered, b" ".to_vec()].concat());
    let v = evaluate(&policy, &input(&image, vec![tampered]), &blobs);
    assert_eq!(v.problems[0].label(), "bad encoding");
}

#[test]
fn policy_rules_reject_and_require_digests() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.json");
    std::fs::write(
        &file,
        serde_json::to_vec(&json!({"rules": [
            {"prefix": "registry.lan/corp", "require_digest": true},
            {"prefix": "registry.lan/bad", "reject": true, "reason": "no"}
        ]}))
        .unwrap(),
    )
    .unwrap();
    let policy = Policy::load(&file).unwrap();
    let image = Digest::of(b"m");
    let none = |_: &Digest| None;
    let mut i = input(&image, vec![]);
    let v = evaluate(&policy, &i, &none);
    assert!(
        matches!(v.problems[..], [Problem::NotPinned { .. }]),
        "{v:?}"
    );
    i.source = format!("registry.lan/corp/app@{image}");
    assert!(evaluate(&policy, &i, &none).ok);
    i.name = "registry.lan/bad/app:1".into();
    let v = evaluate(&policy, &i, &none);
    assert_eq!(
        v.problems,
        vec![Problem::Rejected {
            reason: Some("no".into())
        }]
    );
    i.name = "registry.lan/other/app:1".into();
    assert!(evaluate(&policy, &i, &none).ok);
}

#[test]
fn a_private_key_is_not_a_cosign_key() {
    let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let pem = key.to_pkcs8_pem();
    assert!(CosignKey::from_pem(&pem, Path::new("k.key")).is_err());
}
