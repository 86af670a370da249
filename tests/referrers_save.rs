//! `airlock save` carries signatures, attestations and SBOMs (issue 11, save side).
//!
//! The registry is a real `docker-registry` (distribution 2.8: no referrers API, so the
//! referrers tag schema and cosign's tags are the way), or `referrers_api.rs` in front
//! of one for the OCI 1.1 API path. Signatures are made by `openssl`, images pushed by
//! `skopeo`, artifacts by plain HTTP `PUT`s (`support/referrers.rs`). Bundles are read
//! back with an independent tar reader (`support::cli::Bundle`) and checked with
//! `airlock verify` and the real `docker load`.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use support::cli::{Bundle, airlock};
use support::dockerd::TestDockerd;
use support::images::{Blob, sha256};
use support::referrers::{
    Artifact, DEBIAN_REPO, OCI_EMPTY, Options, SPDX_JSON, artifact, buildkit_index, push_artifact,
    signed_debian,
};
use support::referrers_api::ReferrersApi;
use support::registry::TestRegistry;

const CYCLONEDX: &str = "application/vnd.cyclonedx+json";

fn save(args: &[&str]) -> support::cli::Run {
    let mut all = vec!["save"];
    all.extend_from_slice(args);
    airlock(&all)
}

/// `verify` (JSON) says the bundle is sound.
fn assert_verifies(bundle: &Path) {
    let report = airlock(&["verify", bundle.to_str().unwrap(), "--json"])
        .ok()
        .json();
    assert_eq!(report["ok"], true, "verify --json: {report:#}");
}

/// The TOC's artifacts, by digest.
fn toc_artifacts(bundle: &Bundle) -> Vec<Value> {
    bundle.toc()["artifacts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn toc_artifact(bundle: &Bundle, digest: &str) -> Value {
    toc_artifacts(bundle)
        .into_iter()
        .find(|a| a["digest"] == digest)
        .unwrap_or_else(|| panic!("no artifact {digest} in the TOC: {:#}", bundle.toc()))
}

/// The artifact is recorded as expected, its manifest is in the bundle byte-exact (and
/// listed in the TOC's blobs), and so is every blob it names; it is no image.
fn assert_carried(
    bundle: &Bundle,
    a: &Artifact,
    kind: &str,
    found: &str,
    repository: &str,
    artifact_type: Option<&str>,
) {
    let t = toc_artifact(bundle, a.digest());
    assert_eq!(t["subject"], a.subject.as_str(), "subject of {t:#}");
    assert_eq!(t["kind"], kind, "kind of {t:#}");
    assert_eq!(t["found"], found, "found of {t:#}");
    assert_eq!(t["repository"], repository, "repository of {t:#}");
    assert_eq!(t["size"], a.manifest.size(), "size of {t:#}");
    assert_eq!(t["media_type"], a.manifest.media_type.as_str());
    match &a.tag {
        Some(tag) => assert_eq!(t["tag"], tag.as_str(), "tag of {t:#}"),
        None => assert!(t.get("tag").is_none(), "no tag expected: {t:#}"),
    }
    if let Some(at) = artifact_type {
        assert_eq!(t["artifact_type"], at, "artifact type of {t:#}");
    }
    let stored = bundle.blob(a.digest());
    assert_eq!(
        sha256(stored),
        a.digest(),
        "stored manifest hashes to its digest"
    );
    assert_eq!(stored, &a.manifest.bytes[..], "manifest stored byte-exact");
    let listed: BTreeSet<String> = bundle.toc()["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["digest"].as_str().unwrap().to_string())
        .collect();
    assert!(listed.contains(a.digest()), "manifest listed in TOC blobs");
    for b in &a.blobs {
        assert_eq!(bundle.blob(&b.digest), &b.bytes[..], "blob {}", b.digest);
        assert!(listed.contains(&b.digest), "blob {} in TOC blobs", b.digest);
    }
    let index = bundle.index();
    assert!(
        !index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["digest"] == a.digest()),
        "an artifact has no index.json entry of its own"
    );
}

/// Neither the artifact's manifest nor its blobs are in the bundle (but the 2-byte empty
/// config, which every OCI 1.1 artifact shares).
fn assert_absent(bundle: &Bundle, a: &Artifact) {
    assert!(!bundle.has_blob(a.digest()), "{} not carried", a.digest());
    for b in a.blobs.iter().filter(|b| b.media_type != OCI_EMPTY) {
        assert!(!bundle.has_blob(&b.digest), "blob {} not carried", b.digest);
    }
}

fn image_blob_set(blobs: &[&Blob]) -> BTreeSet<String> {
    blobs.iter().map(|b| b.digest.clone()).collect()
}

/// Tag schema path (distribution 2.8): the `.sig`, the SBOM listed in the fallback index
/// and the signature on the SBOM all come along, and the image stays loadable.
#[test]
fn tag_schema_carries_signature_sbom_and_its_signature() {
    let reg = TestRegistry::start();
    let signed = signed_debian(
        &reg.addr(),
        Options {
            fallback_tag: true,
            sbom_signature: true,
        },
    );
    let sbom_sig = signed.sbom_signature.clone().unwrap();
    assert!(
        signed
            .keys
            .verify(&signed.signature.blobs[1].bytes, &sig_of(&signed.signature)),
        "openssl verifies the signature the test made"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("signed.tar");
    let run = save(&[&signed.name, "-o", out.to_str().unwrap()]).ok();
    assert!(
        run.stderr.contains("Carried 3 artifacts"),
        "summary names the artifacts: {run}"
    );
    let bundle = Bundle::open(&out);
    bundle.assert_sound();
    let repo = format!("{}/{DEBIAN_REPO}", reg.addr());
    assert_carried(
        &bundle,
        &signed.signature,
        "signature",
        "cosign-tag",
        &repo,
        None,
    );
    assert_carried(
        &bundle,
        &signed.sbom,
        "sbom",
        "referrers-tag",
        &repo,
        Some(SPDX_JSON),
    );
    assert_carried(&bundle, &sbom_sig, "signature", "cosign-tag", &repo, None);
    assert_eq!(toc_artifacts(&bundle).len(), 3, "{:#}", bundle.toc());
    // The fallback index is how they were found, not something carried.
    let fallback = signed.fallback_index.as_ref().unwrap();
    assert!(!bundle.has_blob(&fallback.digest));
    // One image, one index.json entry, one manifest.json entry.
    assert_eq!(bundle.index()["manifests"].as_array().unwrap().len(), 1);
    let docker = bundle.docker_manifest();
    assert_eq!(docker.as_array().unwrap().len(), 1, "{docker:#}");
    assert_eq!(
        docker[0]["Config"],
        format!("blobs/sha256/{}", signed.image.config.hex())
    );
    let image = bundle.toc_image(&signed.name);
    assert_eq!(image["digest"], signed.digest.as_str());
    assert_eq!(image["platforms"], serde_json::json!(["linux/amd64"]));
    assert_verifies(&out);
    airlock(&["ls", out.to_str().unwrap()]).ok();
}

/// The base64 signature annotation of a cosign signature artifact.
fn sig_of(a: &Artifact) -> String {
    let m: Value = serde_json::from_slice(&a.manifest.bytes).unwrap();
    m["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .unwrap()
        .to_string()
}

/// OCI 1.1 API path, pages of one descriptor: both referrers of the image are found by
/// the API, the cosign tags still by tag, and each manifest costs one referrers request
/// per page (no fallback-tag reads).
#[test]
fn referrers_api_path_with_pagination() {
    let reg = TestRegistry::start();
    let api = ReferrersApi::start(&reg.url());
    api.set_page_size(1);
    let signed = signed_debian(
        &api.addr(),
        Options {
            fallback_tag: false,
            sbom_signature: true,
        },
    );
    let cdx = artifact(
        &signed.image.manifest,
        CYCLONEDX,
        br#"{"bomFormat":"CycloneDX","specVersion":"1.5","components":[]}"#.to_vec(),
    );
    push_artifact(&api.addr(), DEBIAN_REPO, &cdx);
    assert_eq!(
        api.referrers(DEBIAN_REPO, &signed.digest).len(),
        2,
        "the API server saw both artifacts with a subject"
    );
    let before = api.referrers_requests();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("api.tar.zst");
    save(&[&signed.name, "-o", out.to_str().unwrap()]).ok();
    let bundle = Bundle::open(&out);
    let repo = format!("{}/{DEBIAN_REPO}", api.addr());
    assert_carried(
        &bundle,
        &signed.sbom,
        "sbom",
        "referrers-api",
        &repo,
        Some(SPDX_JSON),
    );
    assert_carried(
        &bundle,
        &cdx,
        "sbom",
        "referrers-api",
        &repo,
        Some(CYCLONEDX),
    );
    assert_carried(
        &bundle,
        &signed.signature,
        "signature",
        "cosign-tag",
        &repo,
        None,
    );
    let sbom_sig = signed.sbom_signature.clone().unwrap();
    assert_carried(&bundle, &sbom_sig, "signature", "cosign-tag", &repo, None);
    assert_eq!(toc_artifacts(&bundle).len(), 4);
    // The image: 2 pages; its 3 artifacts: 1 each; the SBOM's signature: 1.
    assert_eq!(api.referrers_requests() - before, 6, "{:#?}", api.seen());
    let fallback = format!(
        "/manifests/sha256-{}",
        support::images::hex_of(&signed.digest)
    );
    assert!(
        !api.seen().iter().any(|(_, p)| p.ends_with(&fallback)),
        "with the API, the fallback tag is not read"
    );
    let tag_lists = api
        .seen()
        .iter()
        .filter(|(_, p)| p.contains("/tags/list"))
        .count();
    assert_eq!(tag_lists, 1, "tags listed once");
    assert_verifies(&out);

    // One artifact type: the registry filters (OCI-Filters-Applied), only the SPDX SBOM.
    let spdx = dir.path().join("spdx.tar");
    save(&[
        &signed.name,
        "--referrers-type",
        SPDX_JSON,
        "-o",
        spdx.to_str().unwrap(),
    ])
    .ok();
    assert!(
        api.seen().iter().any(|(_, p)| p.contains("/referrers/")
            && p.contains("artifactType=application%2Fspdx%2Bjson")),
        "the filter is passed to the API: {:#?}",
        api.seen()
    );
    let bundle = Bundle::open(&spdx);
    assert_carried(
        &bundle,
        &signed.sbom,
        "sbom",
        "referrers-api",
        &repo,
        Some(SPDX_JSON),
    );
    assert_absent(&bundle, &cdx);
    assert_absent(&bundle, &signed.signature);
    assert_eq!(toc_artifacts(&bundle).len(), 1);
}

/// A BuildKit index: the attestation manifests are carried as in-index artifacts with
/// their blobs, the image's platforms are the real ones; `--platform linux/amd64` keeps
/// only the amd64 attestation.
#[test]
fn buildkit_attestations_carried_and_filtered_by_platform() {
    let reg = TestRegistry::start();
    let bk = buildkit_index(&reg.addr(), "corp/app", "1.0", 40);
    let repo = format!("{}/corp/app", reg.addr());
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.tar");
    save(&[&bk.name, "-o", all.to_str().unwrap()]).ok();
    let bundle = Bundle::open(&all);
    bundle.assert_sound();
    for a in &bk.attestations {
        assert_carried(&bundle, a, "attestation", "in-index", &repo, None);
    }
    let image = bundle.toc_image(&bk.name);
    assert_eq!(
        image["digest"],
        bk.index.digest.as_str(),
        "index kept whole"
    );
    assert_eq!(
        image["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"]),
        "attestations are not platforms"
    );
    assert_eq!(bundle.blob(&bk.index.digest), &bk.index.bytes[..]);
    assert_verifies(&all);

    let amd64 = dir.path().join("amd64.tar");
    save(&[
        &bk.name,
        "--platform",
        "linux/amd64",
        "-o",
        amd64.to_str().unwrap(),
    ])
    .ok();
    let bundle = Bundle::open(&amd64);
    bundle.assert_sound();
    assert_carried(
        &bundle,
        &bk.attestations[0],
        "attestation",
        "in-index",
        &repo,
        None,
    );
    assert_absent(&bundle, &bk.attestations[1]);
    assert_eq!(toc_artifacts(&bundle).len(), 1);
    let image = bundle.toc_image(&bk.name);
    assert_eq!(
        image["digest"],
        bk.images[0].manifest.digest.as_str(),
        "one platform left: the name points at its manifest"
    );
    assert_verifies(&amd64);
}

/// `--no-referrers`: exactly the image's blobs, no artifacts.
#[test]
fn no_referrers_carries_nothing() {
    let reg = TestRegistry::start();
    let signed = signed_debian(&reg.addr(), Options::default());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plain.tar");
    let run = save(&[&signed.name, "--no-referrers", "-o", out.to_str().unwrap()]).ok();
    assert!(!run.stderr.contains("Carried"), "{run}");
    let bundle = Bundle::open(&out);
    assert!(
        bundle.toc().get("artifacts").is_none(),
        "{:#}",
        bundle.toc()
    );
    let got: BTreeSet<String> = bundle.blob_digests().into_iter().collect();
    assert_eq!(got, image_blob_set(&signed.image.blobs()));
    assert_verifies(&out);
}

/// `--referrers-type sbom` keeps only the SBOM; an unknown word is a usage error.
#[test]
fn referrers_type_keeps_only_what_is_asked() {
    let reg = TestRegistry::start();
    let signed = signed_debian(&reg.addr(), Options::default());
    let dir = tempfile::tempdir().unwrap();
    let repo = format!("{}/{DEBIAN_REPO}", reg.addr());
    let out = dir.path().join("sbom.tar");
    save(&[
        &signed.name,
        "--referrers-type",
        "sbom",
        "-o",
        out.to_str().unwrap(),
    ])
    .ok();
    let bundle = Bundle::open(&out);
    assert_carried(
        &bundle,
        &signed.sbom,
        "sbom",
        "referrers-tag",
        &repo,
        Some(SPDX_JSON),
    );
    assert_absent(&bundle, &signed.signature);
    assert_eq!(toc_artifacts(&bundle).len(), 1);
    assert_verifies(&out);

    let out = dir.path().join("sig.tar");
    save(&[
        &signed.name,
        "--referrers-type",
        "signature",
        "-o",
        out.to_str().unwrap(),
    ])
    .ok();
    let bundle = Bundle::open(&out);
    assert_carried(
        &bundle,
        &signed.signature,
        "signature",
        "cosign-tag",
        &repo,
        None,
    );
    assert_absent(&bundle, &signed.sbom);

    let run = save(&[
        &signed.name,
        "--referrers-type",
        "sboms",
        "-o",
        dir.path().join("x.tar").to_str().unwrap(),
    ])
    .expect_code(2);
    assert!(run.stderr.contains("--referrers-type `sboms`"), "{run}");
}

/// A cosign signature saved by its tag is an image name but not a container image: no
/// `manifest.json` entry (the TOC says why), and `docker load` of the bundle works.
#[test]
fn cosign_signature_by_tag_stays_out_of_manifest_json() {
    let reg = TestRegistry::start();
    let signed = signed_debian(&reg.addr(), Options::default());
    let sig_name = format!(
        "{}/{DEBIAN_REPO}:{}",
        reg.addr(),
        signed.signature.tag.as_deref().unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("with-sig.tar");
    save(&[&signed.name, &sig_name, "-o", out.to_str().unwrap()]).ok();
    let bundle = Bundle::open(&out);
    let sig_image = bundle.toc_image(&sig_name);
    assert!(sig_image.get("docker").is_none(), "{sig_image:#}");
    let why = sig_image["docker_skipped"].as_str().unwrap_or_default();
    assert!(
        why.contains("not a container image") && why.contains("simplesigning"),
        "docker_skipped says why: {sig_image:#}"
    );
    let docker = bundle.docker_manifest();
    assert_eq!(docker.as_array().unwrap().len(), 1, "{docker:#}");
    assert_verifies(&out);

    let dockerd = TestDockerd::start();
    let loaded = dockerd.docker_ok(&["load", "-i", out.to_str().unwrap()]);
    assert!(loaded.contains(&signed.name), "docker load: {loaded}");
    let inspect: Value =
        serde_json::from_str(&dockerd.docker_ok(&["image", "inspect", &signed.name])).unwrap();
    assert_eq!(inspect[0]["Id"], signed.image.config.digest.as_str());
}

/// A differential bundle against a full one: artifact manifests are stored again, their
/// blobs left out like layers, except signature payloads, so `verify --key` passes on
/// the delta alone.
#[test]
fn differential_leaves_out_artifact_blobs_keeps_manifests() {
    let reg = TestRegistry::start();
    let signed = signed_debian(&reg.addr(), Options::default());
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.tar");
    save(&[&signed.name, "-o", full.to_str().unwrap()]).ok();
    let diff = dir.path().join("diff.tar");
    save(&[
        &signed.name,
        "--base",
        full.to_str().unwrap(),
        "-o",
        diff.to_str().unwrap(),
    ])
    .ok();
    let bundle = Bundle::open(&diff);
    let omitted: BTreeSet<String> = bundle.toc()["base"]["omitted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["digest"].as_str().unwrap().to_string())
        .collect();
    for a in [&signed.signature, &signed.sbom] {
        assert_eq!(bundle.blob(a.digest()), &a.manifest.bytes[..]);
        for b in &a.blobs {
            // Signature payloads travel in every delta: `verify --key` judges by the bundle alone.
            if b.media_type == "application/vnd.dev.cosign.simplesigning.v1+json" {
                assert!(!omitted.contains(&b.digest), "{} kept", b.digest);
                assert_eq!(bundle.blob(&b.digest), &b.bytes[..]);
            } else {
                assert!(omitted.contains(&b.digest), "{} omitted", b.digest);
                assert!(!bundle.has_blob(&b.digest));
            }
        }
    }
    assert_eq!(toc_artifacts(&bundle).len(), 2);
    let key = signed.keys.public_pem.to_str().unwrap();
    airlock(&["verify", diff.to_str().unwrap(), "--key", key]).ok();
}

/// A failure to look for referrers (other than "no API") fails the save and names
/// `--no-referrers`, which then gets the images across without them.
#[test]
fn discovery_failure_fails_the_save_and_names_no_referrers() {
    use support::faulty::{Fault, FaultyProxy, Rule};
    let reg = TestRegistry::start();
    signed_debian(&reg.addr(), Options::default());
    let proxy = FaultyProxy::start(
        &reg.url(),
        vec![Rule::new(
            "GET",
            "/tags/list",
            Fault::refuse(403, "DENIED", "listing tags is not allowed"),
        )],
    );
    let name = format!("{}/{DEBIAN_REPO}:12", proxy.addr());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("denied.tar");
    let run = save(&[&name, "-o", out.to_str().unwrap()]).expect_code(1);
    assert!(
        run.stderr.contains("--no-referrers") && run.stderr.contains(DEBIAN_REPO),
        "the message names the image and the way around: {run}"
    );
    assert!(!out.exists(), "nothing written under the final name");
    save(&[&name, "--no-referrers", "-o", out.to_str().unwrap()]).ok();
    assert!(
        Bundle::open(&out).toc().get("artifacts").is_none(),
        "--no-referrers saves the image alone"
    );
}

/// Not a check but a measurement (run with `--ignored --nocapture`): a corpus of 12
/// images (6 single-platform and signed with an SBOM, 6 two-platform indexes), saved
/// from the real registry through a counting proxy with and without `--no-referrers`;
/// prints wall times and the requests discovery added.
#[test]
#[ignore = "a measurement, run by hand"]
fn measure_discovery() {
    use support::corpus::{Corpus, app_layer, base_layer, passwd};
    use support::faulty::FaultyProxy;
    use support::images::{Flavor, PushOptions, push};
    use support::referrers::{cosign_signature, fallback_index, fallback_tag, push_manifest, sbom};
    let reg = TestRegistry::start();
    let corpus = Corpus::new(base_layer("measure", &[passwd()]), |s| {
        app_layer(s, 64 * 1024)
    });
    let keys = support::referrers::Keys::generate();
    let mut names = Vec::new();
    for i in 0..6u64 {
        let image = corpus.image("linux/amd64", 100 + i);
        let repo = format!("measure/single{i}");
        push(
            &image,
            &format!("{}/{repo}:1", reg.addr()),
            &PushOptions::default(),
        );
        let sig = cosign_signature(
            &keys,
            &format!("{}/{repo}", reg.addr()),
            &image.manifest.digest,
        );
        push_artifact(&reg.addr(), &repo, &sig);
        let s = sbom(&image.manifest, &repo);
        push_artifact(&reg.addr(), &repo, &s);
        push_manifest(
            &reg.addr(),
            &repo,
            &fallback_tag(&image.manifest.digest),
            &fallback_index(&[(&s, SPDX_JSON)]),
        );
        names.push(format!("{repo}:1"));
        let multi = corpus.two_platform_index(Flavor::Oci, 200 + 2 * i);
        let repo = format!("measure/multi{i}");
        push(
            &multi,
            &format!("{}/{repo}:1", reg.addr()),
            &PushOptions::default(),
        );
        names.push(format!("{repo}:1"));
    }
    let dir = tempfile::tempdir().unwrap();
    for (label, extra) in [("--no-referrers", true), ("with referrers", false)] {
        let proxy = FaultyProxy::start(&reg.url(), vec![]);
        let mut args: Vec<String> = vec!["save".into()];
        args.extend(names.iter().map(|n| format!("{}/{n}", proxy.addr())));
        if extra {
            args.push("--no-referrers".into());
        }
        let out = dir.path().join(format!("m{extra}.tar"));
        args.extend(["-o".into(), out.display().to_string()]);
        let start = std::time::Instant::now();
        airlock(&args[..]).ok();
        let secs = start.elapsed().as_secs_f64();
        let seen = proxy.seen();
        let count = |f: &dyn Fn(&str) -> bool| seen.iter().filter(|s| f(&s.path)).count();
        eprintln!(
            "{label}: {secs:.2}s, {} requests ({} referrers API, {} tags/list, {} manifests, {} blobs), {} artifacts",
            seen.len(),
            count(&|p| p.contains("/referrers/")),
            count(&|p| p.contains("/tags/list")),
            count(&|p| p.contains("/manifests/")),
            count(&|p| p.contains("/blobs/")),
            toc_artifacts(&Bundle::open(&out)).len()
        );
    }
}

/// An SBOM pushed with a subject by an independent client (the `oras` Python SDK)
/// through the referrers API server is found by the API and carried byte-exact.
#[test]
fn sbom_pushed_by_oras_is_carried() {
    use support::referrers::oras_push_sbom;
    use support::registry_api::registry_manifest;
    let reg = TestRegistry::start();
    let api = ReferrersApi::start(&reg.url());
    let signed = signed_debian(
        &api.addr(),
        Options {
            fallback_tag: false,
            sbom_signature: false,
        },
    );
    let digest = oras_push_sbom(
        &api.addr(),
        DEBIAN_REPO,
        "sbom-oras",
        &signed.image.manifest,
        br#"{"spdxVersion":"SPDX-2.3","name":"oras"}"#,
    );
    let served = registry_manifest(&reg.addr(), DEBIAN_REPO, &digest, None);
    assert_eq!(served.digest, digest);
    let listed = api.referrers(DEBIAN_REPO, &signed.digest);
    assert!(
        listed.iter().any(|d| d["digest"] == digest.as_str()),
        "the API server recorded oras's manifest: {listed:#?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("oras.tar");
    save(&[&signed.name, "-o", out.to_str().unwrap()]).ok();
    let bundle = Bundle::open(&out);
    let t = toc_artifact(&bundle, &digest);
    assert_eq!(t["kind"], "sbom", "{t:#}");
    assert_eq!(t["found"], "referrers-api", "{t:#}");
    assert_eq!(t["subject"], signed.digest.as_str());
    assert_eq!(bundle.blob(&digest), &served.bytes[..], "byte-exact");
    let m: Value = serde_json::from_slice(&served.bytes).unwrap();
    for d in std::iter::once(&m["config"]).chain(m["layers"].as_array().unwrap()) {
        assert!(bundle.has_blob(d["digest"].as_str().unwrap()), "{d}");
    }
    assert_verifies(&out);
}

/// `--platform` keeping two of three platforms writes a new index: it lists the two
/// images and their attestations (carried); the third attestation stays behind. With
/// `--no-referrers` the new index lists the images only.
#[test]
fn platform_subset_keeps_attestations_of_kept_images_in_the_new_index() {
    use support::referrers::buildkit_index_for;
    let reg = TestRegistry::start();
    let bk = buildkit_index_for(
        &reg.addr(),
        "corp/three",
        "1",
        60,
        &["linux/amd64", "linux/arm64", "linux/s390x"],
    );
    let repo = format!("{}/corp/three", reg.addr());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("two.tar");
    save(&[
        &bk.name,
        "--platform",
        "linux/amd64,linux/arm64",
        "-o",
        out.to_str().unwrap(),
    ])
    .ok();
    let bundle = Bundle::open(&out);
    bundle.assert_sound();
    let image = bundle.toc_image(&bk.name);
    assert_eq!(image["source_digest"], bk.index.digest.as_str());
    let note = image["note"].as_str().unwrap_or_default();
    assert!(
        note.contains("kept 4 of the source index's 6 entries"),
        "{note}"
    );
    let new_index: Value =
        serde_json::from_slice(bundle.blob(image["digest"].as_str().unwrap())).unwrap();
    let listed: BTreeSet<String> = new_index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["digest"].as_str().unwrap().to_string())
        .collect();
    let expected: BTreeSet<String> = bk.images[..2]
        .iter()
        .map(|i| i.manifest.digest.clone())
        .chain(bk.attestations[..2].iter().map(|a| a.digest().to_string()))
        .collect();
    assert_eq!(listed, expected, "{new_index:#}");
    for a in &bk.attestations[..2] {
        assert_carried(&bundle, a, "attestation", "in-index", &repo, None);
    }
    assert_absent(&bundle, &bk.attestations[2]);
    assert_verifies(&out);

    let out = dir.path().join("two-plain.tar");
    save(&[
        &bk.name,
        "--platform",
        "linux/amd64,linux/arm64",
        "--no-referrers",
        "-o",
        out.to_str().unwrap(),
    ])
    .ok();
    let bundle = Bundle::open(&out);
    let image = bundle.toc_image(&bk.name);
    let new_index: Value =
        serde_json::from_slice(bundle.blob(image["digest"].as_str().unwrap())).unwrap();
    assert_eq!(
        new_index["manifests"].as_array().unwrap().len(),
        2,
        "{new_index:#}"
    );
    for a in &bk.attestations {
        assert_absent(&bundle, a);
    }
    assert!(bundle.toc().get("artifacts").is_none());
    assert_verifies(&out);
}

/// A fallback index whose descriptor lies about a referrer's size: the referrer is not
/// trusted, the save fails naming it and `--no-referrers`.
#[test]
fn referrer_not_matching_its_descriptor_fails_the_save() {
    use support::referrers::{fallback_index, fallback_tag, push_manifest};
    let reg = TestRegistry::start();
    let signed = signed_debian(
        &reg.addr(),
        Options {
            fallback_tag: false,
            sbom_signature: false,
        },
    );
    let s = &signed.sbom;
    // The SBOM's digest with one byte more: the descriptor no longer matches what is served.
    let index = fallback_index(&[(s, SPDX_JSON)]);
    let text = String::from_utf8(index.bytes.clone()).unwrap();
    let size = format!("\"size\":{}", s.manifest.size());
    assert!(text.contains(&size), "{text}");
    let text = text.replace(&size, &format!("\"size\":{}", s.manifest.size() + 1));
    let lying = Blob::new(&index.media_type, text.into_bytes());
    push_manifest(
        &reg.addr(),
        DEBIAN_REPO,
        &fallback_tag(&signed.digest),
        &lying,
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lying.tar");
    let run = save(&[&signed.name, "-o", out.to_str().unwrap()]).expect_code(1);
    assert!(
        run.stderr.contains(s.digest()) && run.stderr.contains("--no-referrers"),
        "{run}"
    );
    assert!(!out.exists());
}
