//! Bundles carrying signatures, attestations and SBOMs, built by hand
//! (`support/artifact_bundle.rs`): `ls` shows them under their images, `verify`
//! passes a whole one and names the artifact, its kind and subject when something of it
//! is missing or wrong. Run through the airlock binary.

#[path = "support/artifact_bundle.rs"]
mod artifact_bundle;
mod support;

use artifact_bundle::{Fixture, SPDX, fixture, write, write_with};
use serde_json::Value;
use support::cli::airlock;

use airlock::digest::Digest;

const REPO: &str = "registry.example/corp/debian";

fn bundle(dir: &std::path::Path, fx: &Fixture) -> String {
    let path = dir.join("a.tar.zst");
    write(fx, &path);
    path.display().to_string()
}

/// The `artifacts` of the image named `name` in `ls --json`, as (digest, depth).
fn listed(ls: &Value, name: &str) -> Vec<(String, u64)> {
    let image = ls["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no image {name} in {ls}"));
    image["artifacts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|a| {
                    (
                        a["digest"].as_str().unwrap().to_string(),
                        a["depth"].as_u64().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn ls_lists_artifacts_under_their_images_and_verify_passes() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture(REPO, 1);
    let path = bundle(dir.path(), &fx);

    let report = airlock(&["verify", &path, "--json"]).ok().json();
    assert_eq!(report["ok"], true, "{report}");

    let ls = airlock(&["ls", &path, "--json"]).ok().json();
    let d = |b: &Digest| b.to_string();
    // The manifest: its signature, its SBOM and, under the SBOM, the SBOM's signature.
    assert_eq!(
        listed(&ls, &fx.name("12")),
        vec![
            (d(&fx.sig.digest), 1),
            (d(&fx.sbom.digest), 1),
            (d(&fx.sbom_sig.digest), 2)
        ]
    );
    // The index reaches the manifest, so it has those too, and its own attestation.
    let multi = listed(&ls, &fx.name("multi"));
    assert_eq!(multi.len(), 4, "{multi:?}");
    assert!(multi.contains(&(d(&fx.att.digest), 1)), "{multi:?}");
    assert!(multi.contains(&(d(&fx.sbom_sig.digest), 2)), "{multi:?}");
    // Each entry is the TOC's record: subject, kind, type, tag.
    let sbom = ls["images"][0]["artifacts"][1].clone();
    assert_eq!(sbom["subject"], d(&fx.manifest.digest));
    assert_eq!(sbom["kind"], "sbom");
    assert_eq!(sbom["artifact_type"], SPDX);
    assert_eq!(sbom["found"], "referrers-tag");
    let sig = ls["images"][0]["artifacts"][0].clone();
    assert_eq!(sig["tag"], fx.sig_tag.as_str());
    assert_eq!(sig["kind"], "signature");

    // The text form: one line per artifact under its image, indented by depth.
    let text = airlock(&["ls", &path]).ok().stdout;
    let lines: Vec<&str> = text.lines().collect();
    let row = lines
        .iter()
        .position(|l| l.starts_with(&fx.name("12")))
        .unwrap_or_else(|| panic!("no row for the image in\n{text}"));
    assert!(
        lines[row + 1].starts_with("  + signature")
            && lines[row + 1].contains(fx.sig.digest.short())
            && lines[row + 1].contains(&format!("tag {}", fx.sig_tag)),
        "{text}"
    );
    assert!(
        lines[row + 2].starts_with("  + sbom") && lines[row + 2].contains(SPDX),
        "{text}"
    );
    assert!(
        lines[row + 3].starts_with("    + signature")
            && lines[row + 3].contains(fx.sbom_sig.digest.short()),
        "{text}"
    );
}

#[test]
fn a_bundle_without_artifacts_lists_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let mut fx = fixture(REPO, 2);
    fx.toc.artifacts.clear();
    let path = dir.path().join("plain.tar");
    write(&fx, &path);
    let path = path.display().to_string();
    let ls = airlock(&["ls", &path, "--json"]).ok().json();
    for image in ls["images"].as_array().unwrap() {
        assert!(image.get("artifacts").is_none(), "{image}");
    }
    // The images are the TOC's, field for field.
    assert_eq!(ls["images"], serde_json::to_value(&fx.toc.images).unwrap());
    let text = airlock(&["ls", &path]).ok().stdout;
    assert!(!text.contains("  + "), "{text}");
}

/// Findings of `verify --json` naming `digest`.
fn findings_for(report: &Value, digest: &Digest) -> Vec<Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["digest"] == digest.as_str())
        .cloned()
        .collect()
}

#[test]
fn a_missing_artifact_blob_is_named_with_its_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture(REPO, 3);
    let path = dir.path().join("missing.tar.zst");
    write_with(&fx, &fx.toc, &path, &[&fx.sbom_layer.digest]);
    let run = airlock(&["verify", path.to_str().unwrap(), "--json"]).expect_code(1);
    let report = run.json();
    let found = findings_for(&report, &fx.sbom_layer.digest);
    assert_eq!(found.len(), 1, "one finding for the blob: {report}");
    let f = &found[0];
    assert_eq!(f["kind"], "missing_blob");
    let message = f["message"].as_str().unwrap();
    assert!(
        message.contains("SBOM")
            && message.contains(fx.sbom.digest.as_str())
            && message.contains(fx.manifest.digest.as_str()),
        "names the artifact, its kind and subject: {message}"
    );
    let images: Vec<&str> = f["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(images, [fx.name("12"), fx.name("multi")]);

    // The artifact manifest itself missing: named, with its kind.
    let path = dir.path().join("no-sig.tar.zst");
    write_with(&fx, &fx.toc, &path, &[&fx.sig.digest]);
    let report = airlock(&["verify", path.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json();
    let found = findings_for(&report, &fx.sig.digest);
    assert_eq!(found.len(), 1, "{report}");
    assert!(
        found[0]["message"]
            .as_str()
            .unwrap()
            .contains("the manifest of signature"),
        "{report}"
    );
}

#[test]
fn wrong_or_absent_subjects_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture(REPO, 4);

    // The TOC says the SBOM is about the index; its manifest says the manifest.
    let mut toc = fx.toc.clone();
    let sbom = toc
        .artifacts
        .iter_mut()
        .find(|a| a.digest == fx.sbom.digest)
        .unwrap();
    sbom.subject = fx.index.digest.clone();
    let path = dir.path().join("mismatch.tar");
    write_with(&fx, &toc, &path, &[]);
    let report = airlock(&["verify", path.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json();
    let found = findings_for(&report, &fx.sbom.digest);
    assert_eq!(found.len(), 1, "{report}");
    assert_eq!(found[0]["kind"], "artifact");
    let message = found[0]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("has subject {}", fx.manifest.digest))
            && message.contains(&format!("records {}", fx.index.digest)),
        "{message}"
    );

    // A subject that is not in the bundle at all.
    let mut toc = fx.toc.clone();
    let stranger = Digest::of(b"not in this bundle");
    let sig = toc
        .artifacts
        .iter_mut()
        .find(|a| a.digest == fx.sig.digest)
        .unwrap();
    sig.subject = stranger.clone();
    let path = dir.path().join("stranger.tar");
    write_with(&fx, &toc, &path, &[]);
    let text = airlock(&["verify", path.to_str().unwrap()])
        .expect_code(1)
        .output();
    assert!(
        text.contains(&format!(
            "signature {} (of {stranger}, from {REPO}) refers to {stranger}, which is not in the bundle",
            fx.sig.digest
        )),
        "{text}"
    );

    // A subject that is a blob but no manifest (a layer).
    let mut toc = fx.toc.clone();
    let sig = toc
        .artifacts
        .iter_mut()
        .find(|a| a.digest == fx.sig.digest)
        .unwrap();
    sig.subject = fx.sbom_layer.digest.clone();
    let path = dir.path().join("layer.tar");
    write_with(&fx, &toc, &path, &[]);
    let text = airlock(&["verify", path.to_str().unwrap()])
        .expect_code(1)
        .output();
    assert!(
        text.contains("which is not a manifest, index or artifact"),
        "{text}"
    );
}

#[test]
fn an_artifact_recorded_with_the_wrong_size_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture(REPO, 5);
    let mut toc = fx.toc.clone();
    let att = toc
        .artifacts
        .iter_mut()
        .find(|a| a.digest == fx.att.digest)
        .unwrap();
    att.size += 1;
    let path = dir.path().join("size.tar");
    write_with(&fx, &toc, &path, &[]);
    let report = airlock(&["verify", path.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json();
    let found = findings_for(&report, &fx.att.digest);
    assert!(
        found.iter().any(|f| f["kind"] == "size_mismatch"
            && f["message"].as_str().unwrap().contains("attestation")),
        "{report}"
    );
}
