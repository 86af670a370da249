//! `push` of a bundle carrying signatures, attestations and SBOMs, into a real
//! `docker-registry` (distribution 2.8, which has no referrers API): every artifact
//! manifest arrives by digest with its exact bytes, cosign's tag is set, and the
//! referrers tag index (`sha256-<hex>`) of each subject lists its referrers, merged
//! with what the target already had. The referrers API (`OCI-Subject` on a manifest
//! `PUT`) and a concurrent writer are played by the fault proxy in front of the real
//! registry (`support/faulty.rs`), the one thing distribution 2.8 cannot do itself.
//!
//! The bundles are built by hand (`support/artifact_bundle.rs`): an image manifest and
//! an index of it, with a cosign signature (tag), an SBOM referrer, a signature of the
//! SBOM and an attestation of the index. `referrers_roundtrip.rs` does the same from
//! bundles `airlock save` made of a real registry.

#[path = "support/artifact_bundle.rs"]
mod artifact_bundle;
mod support;

use std::collections::BTreeSet;
use std::path::Path;

use airlock::bundle::toc::{TocBase, TocOmitted};
use airlock::digest::Digest;
use airlock::oci::media;
use artifact_bundle::{EMPTY, Fixture, desc, fixture, write, write_with};
use serde_json::{Value, json};
use support::cli::airlock;
use support::client::{raw_agent, raw_push_blob};
use support::faulty::{Fault, FaultyProxy, Rule};
use support::registry::TestRegistry;
use support::registry_api::{registry_manifest, tags, try_registry_manifest};

const REPO: &str = "registry.example/corp/debian";
/// Where REPO lands under the target prefix `mirror`.
const TARGET_REPO: &str = "mirror/corp/debian";

fn referrers_tag(d: &Digest) -> String {
    format!("sha256-{}", d.hex())
}

/// The referrers index of `subject` on the registry at `addr`, if any.
fn referrers_index(addr: &str, subject: &Digest) -> Option<Value> {
    try_registry_manifest(addr, TARGET_REPO, &referrers_tag(subject), None)
        .ok()
        .map(|m| {
            assert_eq!(m.content_type, media::OCI_INDEX);
            serde_json::from_slice(&m.bytes).unwrap()
        })
}

/// The descriptors an index lists, each as its JSON text (a set: order not compared).
fn entries(index: &Value) -> BTreeSet<String> {
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.to_string())
        .collect()
}

/// The descriptor the OCI distribution spec puts in a referrers index for `b`.
fn spec_descriptor(fx: &Fixture, b: &artifact_bundle::Blob) -> Value {
    let doc: Value = serde_json::from_slice(&b.bytes).unwrap();
    let mut d = desc(&b.media_type, &b.bytes);
    d["artifactType"] = doc["artifactType"].clone();
    if let Some(a) = doc.get("annotations") {
        d["annotations"] = a.clone();
    }
    let _ = fx;
    d
}

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

/// Every artifact manifest is on the registry by digest with the bundle's bytes.
fn assert_artifacts_there(addr: &str, fx: &Fixture, which: &[&artifact_bundle::Blob]) {
    for b in which {
        let m = registry_manifest(addr, TARGET_REPO, b.digest.as_str(), None);
        assert_eq!(m.digest, b.digest.as_str());
        assert!(m.bytes == b.bytes, "{} arrived with other bytes", b.digest);
    }
    let _ = fx;
}

#[test]
fn artifacts_arrive_by_digest_with_their_tag_and_referrers_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture(REPO, 11);
    let path = dir.path().join("a.tar.zst");
    write(&fx, &path);
    let reg = TestRegistry::start();
    let target = format!("{}/mirror", reg.addr());

    let summary = push(&path, &target, &[]).ok().json();
    let a = &summary["artifacts"];
    assert_eq!(
        (a["pushed"].as_u64(), a["tags_pushed"].as_u64()),
        (Some(4), Some(1)),
        "{summary}"
    );
    // Three subjects have referrers: the manifest (SBOM), the SBOM (its signature)
    // and the index (attestation).
    assert_eq!(a["indexes_written"], 3, "{summary}");
    assert_eq!(a["indexed_by_registry"], 0, "{summary}");

    let addr = reg.addr();
    assert_artifacts_there(&addr, &fx, &[&fx.sig, &fx.sbom, &fx.sbom_sig, &fx.att]);
    // The artifacts' blobs came too (a registry refuses a manifest without them, but
    // check the bytes).
    let (status, _) = support::registry_api::get_json(
        &addr,
        &format!("/v2/{TARGET_REPO}/blobs/{}", fx.sbom_layer.digest),
        None,
    );
    assert_eq!(status, 200);
    // The tags: the images', cosign's, and one referrers index per subject.
    let mut want = vec![
        "12".to_string(),
        "multi".to_string(),
        fx.sig_tag.clone(),
        referrers_tag(&fx.manifest.digest),
        referrers_tag(&fx.sbom.digest),
        referrers_tag(&fx.index.digest),
    ];
    want.sort();
    assert_eq!(tags(&addr, TARGET_REPO, None), want);
    assert_eq!(
        registry_manifest(&addr, TARGET_REPO, &fx.sig_tag, None).digest,
        fx.sig.digest.as_str()
    );
    // Each index lists exactly its referrers, with the fields the spec asks for.
    for (subject, referrer) in [
        (&fx.manifest, &fx.sbom),
        (&fx.sbom, &fx.sbom_sig),
        (&fx.index, &fx.att),
    ] {
        let index = referrers_index(&addr, &subject.digest).expect("a referrers index");
        assert_eq!(index["schemaVersion"], 2);
        assert_eq!(
            entries(&index),
            BTreeSet::from([spec_descriptor(&fx, referrer).to_string()]),
            "referrers of {}",
            subject.digest
        );
    }

    // Again: everything is there, nothing is written.
    let before = registry_manifest(
        &addr,
        TARGET_REPO,
        &referrers_tag(&fx.manifest.digest),
        None,
    );
    let again = push(&path, &target, &[]).ok().json();
    let a = &again["artifacts"];
    assert_eq!(
        (
            a["pushed"].as_u64(),
            a["skipped"].as_u64(),
            a["tags_unchanged"].as_u64(),
            a["indexes_unchanged"].as_u64(),
            a["indexes_written"].as_u64()
        ),
        (Some(0), Some(4), Some(1), Some(3), Some(0)),
        "{again}"
    );
    let after = registry_manifest(
        &addr,
        TARGET_REPO,
        &referrers_tag(&fx.manifest.digest),
        None,
    );
    assert_eq!(before.digest, after.digest);
}

/// PUTs `bytes` as a manifest of `media_type` under `reference` with plain ureq.
fn raw_put_manifest(addr: &str, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) {
    let resp = raw_agent()
        .put(format!("http://{addr}/v2/{repo}/manifests/{reference}"))
        .header("content-type", media_type)
        .send(bytes)
        .unwrap();
    assert_eq!(resp.status(), 201, "PUT manifest {reference}");
}

/// Puts on the registry, as another client would, a referrer of `subject` and a
/// referrers index listing it (with a field airlock never writes). Returns the
/// index's descriptor.
fn foreign_referrer(addr: &str, subject: &artifact_bundle::Blob) -> Value {
    let base = format!("http://{addr}");
    raw_push_blob(&base, TARGET_REPO, b"{}", None);
    let layer = br#"{"vulnerabilities":[]}"#;
    raw_push_blob(&base, TARGET_REPO, layer, None);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "artifactType": "application/vnd.example.scan+json",
        "config": desc(EMPTY, b"{}"),
        "layers": [desc("application/vnd.example.scan+json", layer)],
        "subject": desc(&subject.media_type, &subject.bytes),
    }))
    .unwrap();
    let digest = Digest::of(&manifest);
    raw_put_manifest(
        addr,
        TARGET_REPO,
        digest.as_str(),
        media::OCI_MANIFEST,
        &manifest,
    );
    let mut d = desc(media::OCI_MANIFEST, &manifest);
    d["artifactType"] = json!("application/vnd.example.scan+json");
    d["annotations"] = json!({"com.example.scanner": "other-tool"});
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": media::OCI_INDEX,
        "manifests": [d.clone()],
        "annotations": {"com.example.written-by": "another client"}
    }))
    .unwrap();
    raw_put_manifest(
        addr,
        TARGET_REPO,
        &referrers_tag(&subject.digest),
        media::OCI_INDEX,
        &index,
    );
    d
}

#[test]
fn an_existing_referrers_index_keeps_its_entries_across_a_concurrent_change() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture(REPO, 12);
    let path = dir.path().join("a.tar.zst");
    write(&fx, &path);
    let reg = TestRegistry::start();
    let theirs = foreign_referrer(&reg.addr(), &fx.manifest);

    // The first check of the index tag before the PUT sees another digest, as if
    // another client had written it since airlock read it: airlock reads it again.
    let tag_path = format!("/manifests/{}", referrers_tag(&fx.manifest.digest));
    let proxy = FaultyProxy::start(
        &reg.url(),
        vec![
            Rule::new(
                "HEAD",
                &tag_path,
                Fault::SetHeader(
                    "Docker-Content-Digest",
                    Digest::of(b"someone else's index").to_string(),
                ),
            )
            .first(1),
        ],
    );
    let summary = push(&path, &format!("{}/mirror", proxy.addr()), &[])
        .ok()
        .json();
    assert_eq!(proxy.injected(), 1, "the concurrent change was played");
    let gets = proxy
        .seen()
        .iter()
        .filter(|s| s.method == "GET" && s.path.ends_with(&tag_path))
        .count();
    assert!(
        gets >= 3,
        "read, read again after the change, read back: {gets}"
    );
    assert_eq!(summary["artifacts"]["indexes_written"], 3, "{summary}");

    let index = referrers_index(&reg.addr(), &fx.manifest.digest).unwrap();
    assert_eq!(
        entries(&index),
        BTreeSet::from([
            theirs.to_string(),
            spec_descriptor(&fx, &fx.sbom).to_string()
        ]),
        "the other client's entry is kept, field for field, and the SBOM added"
    );
    assert_eq!(
        index["annotations"]["com.example.written-by"], "another client",
        "the index's own fields are kept"
    );
}

#[test]
fn an_index_that_keeps_changing_fails_the_push_and_no_image_tag_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture(REPO, 13);
    let path = dir.path().join("a.tar.zst");
    write(&fx, &path);
    let reg = TestRegistry::start();
    let theirs = foreign_referrer(&reg.addr(), &fx.manifest);
    let tag = referrers_tag(&fx.manifest.digest);
    let proxy = FaultyProxy::start(
        &reg.url(),
        vec![Rule::new(
            "HEAD",
            &format!("/manifests/{tag}"),
            Fault::SetHeader(
                "Docker-Content-Digest",
                Digest::of(b"always another index").to_string(),
            ),
        )],
    );
    let run = push(&path, &format!("{}/mirror", proxy.addr()), &[]).expect_code(1);
    let text = run.stderr.clone();
    assert!(
        text.contains(&format!(
            "the referrers index {}/{TARGET_REPO}:{tag} (of {}) changed under airlock 5 times",
            proxy.addr(),
            fx.manifest.digest
        )),
        "{run}"
    );
    // The SBOM's images (both reach the manifest) were not tagged; the other
    // client's index is as it was.
    let t = tags(&reg.addr(), TARGET_REPO, None);
    assert!(
        !t.contains(&"12".to_string()) && !t.contains(&"multi".to_string()),
        "{t:?}"
    );
    let index = referrers_index(&reg.addr(), &fx.manifest.digest).unwrap();
    assert_eq!(entries(&index), BTreeSet::from([theirs.to_string()]));
}

#[test]
fn a_registry_with_the_referrers_api_gets_no_referrers_index() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture(REPO, 14);
    let path = dir.path().join("a.tar.zst");
    write(&fx, &path);
    let reg = TestRegistry::start();
    // Manifest PUTs are answered with OCI-Subject, as a registry with the API does.
    let proxy = FaultyProxy::start(
        &reg.url(),
        vec![
            Rule::new(
                "PUT",
                "/manifests/sha256:",
                Fault::SetHeader("OCI-Subject", fx.manifest.digest.to_string()),
            )
            .with_body(true),
        ],
    );
    let summary = push(&path, &format!("{}/mirror", proxy.addr()), &[])
        .ok()
        .json();
    assert_eq!(summary["artifacts"]["indexed_by_registry"], 3, "{summary}");
    assert_eq!(summary["artifacts"]["indexes_written"], 0, "{summary}");
    let addr = reg.addr();
    assert_artifacts_there(&addr, &fx, &[&fx.sig, &fx.sbom, &fx.sbom_sig, &fx.att]);
    let mut want = vec!["12".to_string(), "multi".to_string(), fx.sig_tag.clone()];
    want.sort();
    assert_eq!(tags(&addr, TARGET_REPO, None), want, "no referrers tag");
}

#[test]
fn no_referrers_dry_run_and_image_selection() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture(REPO, 15);
    let path = dir.path().join("a.tar.zst");
    write(&fx, &path);
    let reg = TestRegistry::start();
    let addr = reg.addr();
    let target = format!("{addr}/mirror");

    // A dry run counts the artifacts and writes nothing.
    let plan = push(&path, &target, &["--dry-run"]).ok().json();
    let a = &plan["artifacts"];
    assert_eq!(
        (
            a["pushed"].as_u64(),
            a["tags_pushed"].as_u64(),
            a["indexes_written"].as_u64()
        ),
        (Some(4), Some(1), Some(3)),
        "{plan}"
    );
    let listed: Vec<&str> = plan["images"][0]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["would push", "would push", "would push"], "{plan}");
    assert!(tags(&addr, TARGET_REPO, None).is_empty());
    let text = airlock(&["push", path.to_str().unwrap(), &target, "--dry-run"])
        .ok()
        .stdout;
    assert!(
        text.contains(&format!("  artifact {}", fx.sig.digest))
            && text.contains("artifacts 4 would push"),
        "{text}"
    );

    // --no-referrers: the images only.
    let summary = push(&path, &target, &["--no-referrers"]).ok().json();
    assert!(summary.get("artifacts").is_none(), "{summary}");
    assert_eq!(tags(&addr, TARGET_REPO, None), ["12", "multi"]);
    for b in [&fx.sig, &fx.sbom, &fx.sbom_sig, &fx.att] {
        assert!(
            try_registry_manifest(&addr, TARGET_REPO, b.digest.as_str(), None).is_err(),
            "{} was pushed",
            b.digest
        );
    }

    // --image REPO:12: the artifacts about its manifest, not the index's attestation.
    let summary = push(&path, &target, &["--image", &fx.name("12")])
        .ok()
        .json();
    assert_eq!(summary["artifacts"]["pushed"], 3, "{summary}");
    assert_artifacts_there(&addr, &fx, &[&fx.sig, &fx.sbom, &fx.sbom_sig]);
    assert!(try_registry_manifest(&addr, TARGET_REPO, fx.att.digest.as_str(), None).is_err());
    assert!(referrers_index(&addr, &fx.index.digest).is_none());
}

#[test]
fn a_differential_bundle_leaves_artifact_blobs_to_its_base() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture(REPO, 16);
    let full = dir.path().join("full.tar.zst");
    write(&fx, &full);
    // The same images and artifacts, leaving out the image layers and the SBOM's
    // layer, which the base has.
    let left_out = [&fx.blobs[3], &fx.blobs[4], &fx.sbom_layer];
    let mut toc = fx.toc.clone();
    toc.blobs
        .retain(|b| !left_out.iter().any(|l| l.digest == b.digest));
    toc.base = Some(TocBase {
        kind: "bundle".to_string(),
        file: "full.tar.zst".to_string(),
        created: Some(fx.toc.created.clone()),
        tool: Some(fx.toc.tool.clone()),
        registry: None,
        omitted: left_out
            .iter()
            .map(|b| TocOmitted {
                digest: b.digest.clone(),
                size: b.bytes.len() as u64,
                media_type: b.media_type.clone(),
                repositories: vec![fx.name("12")],
            })
            .collect(),
    });
    let diff = dir.path().join("diff.tar.zst");
    let skip: Vec<&Digest> = left_out.iter().map(|b| &b.digest).collect();
    write_with(&fx, &toc, &diff, &skip);
    airlock(&["verify", diff.to_str().unwrap()]).ok();
    airlock(&[
        "verify",
        diff.to_str().unwrap(),
        "--base",
        full.to_str().unwrap(),
    ])
    .ok();

    // A target without the base: refused before anything is written, naming the
    // SBOM's layer among the missing blobs.
    let fresh = TestRegistry::start();
    let run = push(&diff, &format!("{}/mirror", fresh.addr()), &[]).expect_code(1);
    assert!(
        run.stderr.contains(fx.sbom_layer.digest.as_str()),
        "names the left-out SBOM layer: {run}"
    );
    assert!(tags(&fresh.addr(), TARGET_REPO, None).is_empty());

    // A target holding the base: the differential bundle goes through, artifacts too.
    let reg = TestRegistry::start();
    let target = format!("{}/mirror", reg.addr());
    push(&full, &target, &["--no-referrers"]).ok();
    // The SBOM layer reached the target with the base's artifacts once; here, as
    // the base holds it, put it there the way the base push would have.
    raw_push_blob(
        &format!("http://{}", reg.addr()),
        TARGET_REPO,
        &fx.sbom_layer.bytes,
        None,
    );
    let summary = push(&diff, &target, &[]).ok().json();
    assert_eq!(summary["artifacts"]["pushed"], 4, "{summary}");
    assert_artifacts_there(
        &reg.addr(),
        &fx,
        &[&fx.sig, &fx.sbom, &fx.sbom_sig, &fx.att],
    );
}

#[test]
fn a_refused_artifact_takes_out_its_images_and_names_the_way_around() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture(REPO, 17);
    let path = dir.path().join("a.tar.zst");
    write(&fx, &path);
    let reg = TestRegistry::start();
    // A registry that refuses the SBOM's manifest (some refuse unknown artifact types).
    let proxy = FaultyProxy::start(
        &reg.url(),
        vec![Rule::new(
            "PUT",
            &format!("/manifests/{}", fx.sbom.digest),
            Fault::refuse(400, "MANIFEST_INVALID", "artifact type not allowed"),
        )],
    );
    let target = format!("{}/mirror", proxy.addr());
    let run = push(&path, &target, &[]).expect_code(1);
    let text = run.stderr.clone();
    assert!(
        text.contains(&format!(
            "SBOM {} (of {}) was not pushed; `push --no-referrers` pushes the images without their artifacts",
            fx.sbom.digest, fx.manifest.digest
        )) && text.contains("MANIFEST_INVALID"),
        "{run}"
    );
    // Both images reach the SBOM's subject: neither is tagged; the signature of the
    // SBOM (about something not there) was not attempted.
    let t = tags(&reg.addr(), TARGET_REPO, None);
    assert!(
        !t.contains(&"12".to_string()) && !t.contains(&"multi".to_string()),
        "{t:?}"
    );
    assert!(
        try_registry_manifest(&reg.addr(), TARGET_REPO, fx.sbom_sig.digest.as_str(), None).is_err()
    );
    // The way around works.
    push(&path, &target, &["--no-referrers"]).ok();
    let t = tags(&reg.addr(), TARGET_REPO, None);
    assert!(
        t.contains(&"12".to_string()) && t.contains(&"multi".to_string()),
        "{t:?}"
    );
}

#[test]
fn an_inventory_of_the_target_vouches_for_the_artifacts_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture(REPO, 18);
    let full = dir.path().join("full.tar.zst");
    write(&fx, &full);
    let reg = TestRegistry::start();
    push(&full, &format!("{}/mirror", reg.addr()), &[]).ok();

    // The inventory walks every tag, cosign's and the referrers indexes included, so
    // every artifact's config and layers are among the blobs the target has.
    let inv = dir.path().join("inventory.json");
    airlock(&[
        "inventory",
        &format!("{}/mirror", reg.addr()),
        "-o",
        inv.to_str().unwrap(),
    ])
    .ok();
    let doc: Value = serde_json::from_slice(&std::fs::read(&inv).unwrap()).unwrap();
    let blobs: BTreeSet<&str> = doc["repositories"][TARGET_REPO]["blobs"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc}"))
        .iter()
        .map(|b| b.as_str().unwrap())
        .collect();
    for b in &fx.blobs {
        let is_manifest = [
            &fx.manifest,
            &fx.index,
            &fx.sig,
            &fx.sbom,
            &fx.sbom_sig,
            &fx.att,
        ]
        .iter()
        .any(|m| m.digest == b.digest);
        if !is_manifest {
            assert!(
                blobs.contains(b.digest.as_str()),
                "{} ({}) not in {doc}",
                b.digest,
                b.media_type
            );
        }
    }

    // A differential bundle leaving out artifact blobs checks out against it.
    let left_out = [&fx.sbom_layer, &fx.sig_layer];
    let mut toc = fx.toc.clone();
    toc.blobs
        .retain(|b| !left_out.iter().any(|l| l.digest == b.digest));
    toc.base = Some(TocBase {
        kind: "inventory".to_string(),
        file: "inventory.json".to_string(),
        created: None,
        tool: None,
        registry: Some(format!("{}/mirror", reg.addr())),
        omitted: left_out
            .iter()
            .map(|b| TocOmitted {
                digest: b.digest.clone(),
                size: b.bytes.len() as u64,
                media_type: b.media_type.clone(),
                repositories: vec![TARGET_REPO.to_string()],
            })
            .collect(),
    });
    let diff = dir.path().join("diff.tar");
    let skip: Vec<&Digest> = left_out.iter().map(|b| &b.digest).collect();
    write_with(&fx, &toc, &diff, &skip);
    airlock(&[
        "verify",
        diff.to_str().unwrap(),
        "--base",
        inv.to_str().unwrap(),
    ])
    .ok();
    // And against an inventory of an empty registry it does not.
    let empty = TestRegistry::start();
    let inv2 = dir.path().join("empty.json");
    airlock(&["inventory", &empty.addr(), "-o", inv2.to_str().unwrap()]).ok();
    let run = airlock(&[
        "verify",
        diff.to_str().unwrap(),
        "--base",
        inv2.to_str().unwrap(),
    ])
    .expect_code(1);
    assert!(
        run.output().contains(fx.sbom_layer.digest.as_str()),
        "{run}"
    );
}

#[test]
fn a_signature_tag_pointing_elsewhere_is_moved_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture(REPO, 19);
    let path = dir.path().join("a.tar.zst");
    write(&fx, &path);
    let reg = TestRegistry::start();
    let addr = reg.addr();
    // A signature made on this side sits under cosign's tag already.
    raw_push_blob(&format!("http://{addr}"), TARGET_REPO, b"{}", None);
    let inside = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "config": desc(EMPTY, b"{}"), "layers": []
    }))
    .unwrap();
    raw_put_manifest(
        &addr,
        TARGET_REPO,
        &fx.sig_tag,
        media::OCI_MANIFEST,
        &inside,
    );
    let target = format!("{addr}/mirror");
    let run = airlock(&["push", path.to_str().unwrap(), &target]).ok();
    assert!(
        run.stderr.contains(&format!(
            "note: {addr}/{TARGET_REPO}:{} pointed at {}; it now points at {}",
            fx.sig_tag,
            Digest::of(&inside),
            fx.sig.digest
        )),
        "{run}"
    );
    assert_eq!(
        registry_manifest(&addr, TARGET_REPO, &fx.sig_tag, None).digest,
        fx.sig.digest.as_str()
    );
}
