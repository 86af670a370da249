//! Round trips of signatures, attestations and SBOMs: a real `docker-registry` →
//! `airlock save` → `airlock push` to a fresh one. The source is written by the test
//! side (`support/referrers.rs`: openssl signatures, skopeo images, plain HTTP `PUT`s),
//! never by airlock; the OCI 1.1 referrers API (which distribution 2.8 lacks) is played
//! by `support/referrers_api.rs` in front of a real registry. Compared: every artifact
//! manifest's digest and bytes, every tag (the images', cosign's, the referrers
//! indexes') and the referrers index's descriptors, source against target.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use support::cli::airlock;
use support::referrers::{
    Artifact, DEBIAN_REPO, Options, artifact, buildkit_index, cosign_signature, fallback_index,
    fallback_tag, push_artifact, push_manifest, signed_debian,
};
use support::referrers_api::ReferrersApi;
use support::registry::TestRegistry;
use support::registry_api::{registry_manifest, tags, try_registry_manifest};

fn push(bundle: &Path, target: &str, extra: &[&str]) -> support::cli::Run {
    let mut args = vec![
        "push".to_string(),
        bundle.display().to_string(),
        target.to_string(),
        "--json".to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    airlock(&args)
}

fn save_to(out: &Path, refs: &[&str], extra: &[&str]) {
    let mut args = vec!["save".to_string()];
    args.extend(refs.iter().map(|s| s.to_string()));
    args.extend(["-o".to_string(), out.display().to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    airlock(&args).ok();
}

/// A referrers index's entries as (digest, mediaType, size, artifactType).
fn descriptor_set(index: &[u8]) -> BTreeSet<(String, String, u64, String)> {
    let v: Value = serde_json::from_slice(index).unwrap();
    v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["digest"].as_str().unwrap().to_string(),
                d["mediaType"].as_str().unwrap().to_string(),
                d["size"].as_u64().unwrap(),
                d["artifactType"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The artifact is on `addr` in `repo` by digest with its exact bytes.
fn assert_arrived(addr: &str, repo: &str, a: &Artifact) {
    let m = registry_manifest(addr, repo, a.digest(), None);
    assert_eq!(m.digest, a.digest());
    assert!(
        m.bytes == a.manifest.bytes,
        "{} arrived with other bytes",
        a.digest()
    );
}

#[test]
fn round_trip_to_a_fresh_registry_keeps_every_artifact_tag_and_referrers_index() {
    let src = TestRegistry::start();
    let signed = signed_debian(
        &src.addr(),
        Options {
            fallback_tag: true,
            sbom_signature: true,
        },
    );
    let bk = buildkit_index(&src.addr(), "corp/app", "1", 31);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("signed.tar.zst");
    save_to(&bundle, &[&signed.name, &bk.name], &[]);
    airlock(&["verify", bundle.to_str().unwrap()]).ok();
    // `ls` shows each image's artifacts: the signature and the SBOM, the SBOM's
    // signature under it; BuildKit's attestations under their index.
    let ls = airlock(&["ls", bundle.to_str().unwrap(), "--json"])
        .ok()
        .json();
    let of = |name: &str| -> Vec<(String, u64)> {
        let image = ls["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {ls}"));
        image["artifacts"]
            .as_array()
            .unwrap_or_else(|| panic!("artifacts of {name} in {ls}"))
            .iter()
            .map(|a| {
                (
                    a["digest"].as_str().unwrap().to_string(),
                    a["depth"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let sbom_sig = signed.sbom_signature.as_ref().unwrap();
    let debian: BTreeSet<(String, u64)> = of(&signed.name).into_iter().collect();
    assert_eq!(
        debian,
        BTreeSet::from([
            (signed.signature.digest().to_string(), 1),
            (signed.sbom.digest().to_string(), 1),
            (sbom_sig.digest().to_string(), 2),
        ])
    );
    let app: BTreeSet<(String, u64)> = of(&bk.name).into_iter().collect();
    assert_eq!(
        app,
        bk.attestations
            .iter()
            .map(|a| (a.digest().to_string(), 1))
            .collect::<BTreeSet<_>>()
    );

    let dst = TestRegistry::start();
    let summary = push(&bundle, &dst.addr(), &[]).ok().json();
    // The signature, the SBOM and the SBOM's signature; BuildKit's attestations travel
    // inside their index.
    assert_eq!(summary["artifacts"]["pushed"], 3, "{summary}");
    for a in [&signed.signature, &signed.sbom, sbom_sig] {
        assert_arrived(&dst.addr(), DEBIAN_REPO, a);
    }
    for a in &bk.attestations {
        assert_arrived(&dst.addr(), "corp/app", a);
    }
    // Every tag of the source, each with the source's digest: the image's, cosign's
    // (the image's and the SBOM's signature) and the referrers index's.
    for repo in [DEBIAN_REPO, "corp/app"] {
        let want = tags(&src.addr(), repo, None);
        assert_eq!(tags(&dst.addr(), repo, None), want, "tags of {repo}");
        for t in want
            .iter()
            .filter(|t| !t.starts_with("sha256-") || t.ends_with(".sig"))
        {
            assert_eq!(
                registry_manifest(&dst.addr(), repo, t, None).digest,
                registry_manifest(&src.addr(), repo, t, None).digest,
                "{repo}:{t}"
            );
        }
    }
    // The referrers index: the same descriptors as the source's.
    let tag = fallback_tag(&signed.digest);
    let theirs = registry_manifest(&src.addr(), DEBIAN_REPO, &tag, None);
    let ours = registry_manifest(&dst.addr(), DEBIAN_REPO, &tag, None);
    assert_eq!(descriptor_set(&ours.bytes), descriptor_set(&theirs.bytes));
    // And a second push writes nothing.
    let again = push(&bundle, &dst.addr(), &[]).ok().json();
    assert_eq!(again["artifacts"]["pushed"], 0, "{again}");
    assert_eq!(again["artifacts"]["indexes_unchanged"], 1, "{again}");
    assert_eq!(
        registry_manifest(&dst.addr(), DEBIAN_REPO, &tag, None).digest,
        ours.digest
    );
}

#[test]
fn round_trip_keeps_a_targets_referrers_index_entries() {
    let src = TestRegistry::start();
    let signed = signed_debian(&src.addr(), Options::default());
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("signed.tar");
    save_to(&bundle, &[&signed.name], &[]);

    // The target already holds a vulnerability report about the same image, listed in
    // the image's referrers index (the subject need not be there yet).
    let dst = TestRegistry::start();
    let report = artifact(
        &signed.image.manifest,
        "application/vnd.example.vuln-report+json",
        br#"{"findings":[]}"#.to_vec(),
    );
    push_artifact(&dst.addr(), DEBIAN_REPO, &report);
    let index = fallback_index(&[(&report, "application/vnd.example.vuln-report+json")]);
    push_manifest(
        &dst.addr(),
        DEBIAN_REPO,
        &fallback_tag(&signed.digest),
        &index,
    );

    push(&bundle, &dst.addr(), &[]).ok();
    let merged = registry_manifest(
        &dst.addr(),
        DEBIAN_REPO,
        &fallback_tag(&signed.digest),
        None,
    );
    let source = registry_manifest(
        &src.addr(),
        DEBIAN_REPO,
        &fallback_tag(&signed.digest),
        None,
    );
    let mut want = descriptor_set(&source.bytes);
    want.extend(descriptor_set(&index.bytes));
    assert_eq!(
        descriptor_set(&merged.bytes),
        want,
        "theirs kept, ours added"
    );
}

#[test]
fn round_trip_through_the_referrers_api_writes_no_referrers_index() {
    let src = TestRegistry::start();
    let signed = signed_debian(&src.addr(), Options::default());
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("signed.tar");
    save_to(&bundle, &[&signed.name], &[]);

    let dst = TestRegistry::start();
    let api = ReferrersApi::start(&dst.url());
    let summary = push(&bundle, &api.addr(), &[]).ok().json();
    assert_eq!(summary["artifacts"]["indexed_by_registry"], 1, "{summary}");
    assert_eq!(summary["artifacts"]["indexes_written"], 0, "{summary}");
    // The API knows the SBOM as a referrer of the image; no fallback tag was written.
    let known: Vec<String> = api
        .referrers(DEBIAN_REPO, &signed.digest)
        .iter()
        .map(|d| d["digest"].as_str().unwrap().to_string())
        .collect();
    assert!(
        known.contains(&signed.sbom.digest().to_string()),
        "{known:?}"
    );
    let t = tags(&dst.addr(), DEBIAN_REPO, None);
    assert!(!t.contains(&fallback_tag(&signed.digest)), "{t:?}");
    assert!(t.contains(signed.signature.tag.as_ref().unwrap()), "{t:?}");
    assert_arrived(&dst.addr(), DEBIAN_REPO, &signed.sbom);

    // No tag leads to the SBOM there: an inventory finds it through the API, so its
    // blobs count as the target's for the next `save --base`.
    let inv = dir.path().join("inventory.json");
    airlock(&["inventory", &api.addr(), "-o", inv.to_str().unwrap()]).ok();
    let doc: Value = serde_json::from_slice(&std::fs::read(&inv).unwrap()).unwrap();
    let repo = &doc["repositories"][DEBIAN_REPO];
    let has = |key: &str, d: &str| {
        repo[key]
            .as_array()
            .unwrap_or_else(|| panic!("{doc}"))
            .iter()
            .any(|v| v == d)
    };
    assert!(has("manifests", signed.sbom.digest()), "{doc}");
    for b in &signed.sbom.blobs {
        assert!(has("blobs", &b.digest), "{} in {doc}", b.digest);
    }
}

#[test]
fn round_trip_without_referrers_and_differential() {
    let src = TestRegistry::start();
    let signed = signed_debian(&src.addr(), Options::default());
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.tar");
    save_to(&full, &[&signed.name], &[]);

    // --no-referrers at push: the image alone.
    let bare = TestRegistry::start();
    push(&full, &bare.addr(), &["--no-referrers"]).ok();
    assert_eq!(tags(&bare.addr(), DEBIAN_REPO, None), ["12"]);
    assert!(try_registry_manifest(&bare.addr(), DEBIAN_REPO, signed.sbom.digest(), None).is_err());

    // The SBOM gets signed at the source after the first trip; the next bundle is
    // differential against the first: the image's and the SBOM's blobs are left out.
    let sbom_sig = cosign_signature(&signed.keys, &signed.docker_reference, signed.sbom.digest());
    push_artifact(&src.addr(), DEBIAN_REPO, &sbom_sig);
    let diff = dir.path().join("diff.tar");
    save_to(&diff, &[&signed.name], &["--base", full.to_str().unwrap()]);
    airlock(&[
        "verify",
        diff.to_str().unwrap(),
        "--base",
        full.to_str().unwrap(),
    ])
    .ok();

    let dst = TestRegistry::start();
    // Without the first bundle on the target, the second is refused.
    push(&diff, &dst.addr(), &[]).expect_code(1);
    push(&full, &dst.addr(), &[]).ok();
    let summary = push(&diff, &dst.addr(), &[]).ok().json();
    assert_eq!(summary["artifacts"]["pushed"], 1, "{summary}");
    assert_arrived(&dst.addr(), DEBIAN_REPO, &sbom_sig);
    assert_eq!(
        registry_manifest(
            &dst.addr(),
            DEBIAN_REPO,
            sbom_sig.tag.as_ref().unwrap(),
            None
        )
        .digest,
        sbom_sig.digest()
    );
    assert_eq!(
        tags(&dst.addr(), DEBIAN_REPO, None),
        tags(&src.addr(), DEBIAN_REPO, None)
    );
}
