//! Unit tests of signing and checking statements; the end-to-end tests through the
//! binary (and the openssl recipe) are in `tests/custody.rs`.

use super::*;
use crate::bundle::parts::PartEntry;
use crate::signing::Algorithm;

const TOC: &[u8] = br#"{"format_version":1,"tool":"airlock 0.1.0"}"#;

fn statement(toc: &[u8]) -> BundleStatement {
    BundleStatement {
        format_version: 1,
        tool: "airlock 0.1.0".into(),
        created: "2026-11-30T10:00:00Z".into(),
        toc_sha256: Digest::of(toc).hex().to_string(),
        base_toc_sha256: None,
    }
}

fn keys() -> Vec<PrivateKey> {
    Algorithm::ALL
        .into_iter()
        .map(|a| PrivateKey::generate(a).unwrap())
        .collect()
}

fn kinds(c: &Checked) -> Vec<String> {
    c.problems
        .iter()
        .map(|p| {
            format!("{p:?}")
                .split([' ', '{'])
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn signed_by_both_algorithms_checks_and_trusts() {
    let keys = keys();
    let doc = bundle_signature_entry(&keys, &statement(TOC));
    let parsed: SignatureDoc = serde_json::from_slice(&doc).unwrap();
    assert_eq!(parsed.signatures.len(), 2);
    assert_eq!(parsed.signatures[1].algorithm, "ecdsa-p256-sha256");

    let untrusting = check_bundle(Some(&doc), TOC, None, &[]);
    assert!(untrusting.ok(), "{:?}", untrusting.problems);
    assert!(untrusting.report.signed && !untrusting.report.trusted);
    assert!(
        untrusting
            .report
            .signers
            .iter()
            .all(|s| s.valid && !s.trusted)
    );

    let one = [keys[1].public_key().clone()];
    let trusting = check_bundle(Some(&doc), TOC, None, &one);
    assert!(trusting.ok(), "{:?}", trusting.problems);
    assert!(trusting.report.trusted);
    assert_eq!(
        trusting
            .report
            .signers
            .iter()
            .map(|s| s.trusted)
            .collect::<Vec<_>>(),
        [false, true]
    );
}

#[test]
fn unsigned_untrusted_tampered_and_mismatched_are_told_apart() {
    let keys = keys();
    let other = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let trust = [keys[0].public_key().clone()];
    assert!(check_bundle(None, TOC, None, &[]).ok());
    assert_eq!(kinds(&check_bundle(None, TOC, None, &trust)), ["Unsigned"]);

    let by_other = bundle_signature_entry(std::slice::from_ref(&other), &statement(TOC));
    let c = check_bundle(Some(&by_other), TOC, None, &trust);
    assert_eq!(kinds(&c), ["UntrustedSigner"]);
    assert!(
        c.problems[0]
            .to_string()
            .contains(&other.key_id().to_string())
    );

    // The statement changed after signing: the signature no longer verifies.
    let doc = bundle_signature_entry(&keys[..1], &statement(TOC));
    let mut parsed: SignatureDoc = serde_json::from_slice(&doc).unwrap();
    parsed.statement = parsed.statement.replace("10:00:00Z", "11:00:00Z");
    let tampered = serde_json::to_vec(&parsed).unwrap();
    assert_eq!(
        kinds(&check_bundle(Some(&tampered), TOC, None, &trust)),
        ["BadSignature"]
    );

    // Another TOC under a valid signature: the statement does not match.
    let c = check_bundle(Some(&doc), b"{}", None, &trust);
    assert_eq!(kinds(&c), ["StatementMismatch"]);
    assert!(
        c.problems[0].to_string().contains("airlock.json"),
        "{}",
        c.problems[0]
    );

    // Garbage and a key id that does not name the key.
    assert_eq!(
        kinds(&check_bundle(Some(b"nope"), TOC, None, &trust)),
        ["Malformed"]
    );
    let mut parsed: SignatureDoc = serde_json::from_slice(&doc).unwrap();
    parsed.signatures[0].key_id = other.key_id().to_string();
    let relabelled = serde_json::to_vec(&parsed).unwrap();
    let c = check_bundle(Some(&relabelled), TOC, None, &[other.public_key().clone()]);
    assert_eq!(kinds(&c), ["BadSignature"]);
}

#[test]
fn the_private_key_never_reaches_the_document() {
    let keys = keys();
    let doc = bundle_signature_entry(&keys, &statement(TOC));
    for k in &keys {
        let secret = k.secret_bytes();
        assert!(!doc.windows(secret.len()).any(|w| w == secret));
        let b64 = B64.encode(&secret);
        assert!(!String::from_utf8_lossy(&doc).contains(&b64));
    }
}

fn index() -> PartsIndex {
    PartsIndex {
        parts_format: 1,
        bundle: "b.tar".into(),
        id: "0123456789abcdef0123456789abcdef".into(),
        toc_sha256: Some(Digest::of(TOC).hex().to_string()),
        part_size: 10,
        total_size: 15,
        parts: ["b.tar.000", "b.tar.001"]
            .iter()
            .zip([10, 5])
            .map(|(n, size)| PartEntry {
                name: n.to_string(),
                size,
                sha256: Digest::of(n.as_bytes()).hex().to_string(),
                head_sha256: Digest::of(n.as_bytes()).hex().to_string(),
            })
            .collect(),
        statement: None,
        signatures: None,
    }
}

#[test]
fn parts_index_signature_covers_every_part() {
    let keys = keys();
    let trust = [keys[0].public_key().clone()];
    let mut idx = index();
    assert_eq!(kinds(&check_parts_index(&idx, None, &trust)), ["Unsigned"]);
    let (statement, sigs) = parts_signer(&keys)(&idx).unwrap();
    idx.statement = Some(statement);
    idx.signatures = Some(sigs);
    let toc = Digest::of(TOC).hex().to_string();
    let c = check_parts_index(&idx, Some(&toc), &trust);
    assert!(c.ok() && c.report.trusted, "{:?}", c.problems);

    let mut swapped = idx.clone();
    swapped.parts[1].sha256 = "0".repeat(64);
    let c = check_parts_index(&swapped, Some(&toc), &trust);
    assert_eq!(kinds(&c), ["StatementMismatch"]);
    assert!(
        c.problems[0].to_string().contains("part 2"),
        "{}",
        c.problems[0]
    );

    let c = check_parts_index(&idx, Some(&"1".repeat(64)), &trust);
    assert_eq!(kinds(&c), ["StatementMismatch"]);
}
