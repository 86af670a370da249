//! Differential bundles (`save --base`) and `airlock inventory`, against real
//! `docker-registry` instances.
//!
//! The scenario of every test: a source registry holds three images (two single-platform
//! ones and a two-platform index, all on one shared base layer); a full bundle is saved;
//! then one image gets a new top layer (same base) and a new, unrelated image appears. A
//! differential bundle saved against the full bundle (or against an inventory of a
//! registry that received it) must hold every manifest, only the new configs and
//! layers, and push into that registry so that every tag serves the source's digest.
//! What landed is checked with the registries' own answers, never with airlock's view.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use serde_json::Value;
use support::cli::{Bundle, airlock};
use support::corpus::{Corpus, app_layer, base_layer};
use support::images::{Flavor, Image, ImageSpec, PushOptions, layer, push, random_file};
use support::registry::TestRegistry;
use support::registry_api::{get_json, registry_digest};

const KEEP: PushOptions<'static> = PushOptions {
    format: None,
    creds: None,
};

/// The names (repository:tag) of the scenario, on every registry.
const WEB: &str = "team/web:1";
const API: &str = "team/api:1";
const MULTI: &str = "team/multi:1";
const TOOLS: &str = "team/tools:1";
/// A new repository whose image is on the shared base layer (mounted on push).
const WORKER: &str = "team/worker:1";

/// This file's images: a base layer they all share (os-release, 512 KiB of data) and a
/// 24 KiB app layer per seed.
static IMAGES: LazyLock<Corpus> = LazyLock::new(|| {
    Corpus::new(
        base_layer(
            "airlock-differential-test",
            &[random_file("usr/lib/base.bin", 4242, 512 * 1024)],
        ),
        |seed| app_layer(seed, 24 * 1024),
    )
});

/// A new image sharing nothing with the others.
fn tools() -> Image {
    ImageSpec::new("linux/amd64")
        .layer(&layer(&[random_file("opt/tools.bin", 777, 32 * 1024)]))
        .build()
}

/// Config and layer digests of images.
fn content(images: &[&Image]) -> BTreeSet<String> {
    images
        .iter()
        .flat_map(|i| {
            std::iter::once(i.config.digest.clone())
                .chain(i.layers.iter().map(|l| l.gz.digest.clone()))
        })
        .collect()
}

/// The source registry, the full bundle saved from it, and the differential content.
struct Scenario {
    src: TestRegistry,
    dir: tempfile::TempDir,
    full: PathBuf,
    /// Config and layer digests of the images as the full bundle has them.
    before: BTreeSet<String>,
    /// Config and layer digests of the images after the change.
    after: BTreeSet<String>,
    /// Every manifest and index digest after the change.
    manifests_after: BTreeSet<String>,
}

impl Scenario {
    /// Builds the source, saves `full.tar.zst`, then changes `api` and adds `tools`.
    fn new() -> Scenario {
        let src = TestRegistry::start();
        let addr = src.addr();
        let (web, api, m) = (
            IMAGES.image("linux/amd64", 1),
            IMAGES.image("linux/amd64", 2),
            IMAGES.two_platform_index(Flavor::Oci, 3),
        );
        push(web.clone(), &format!("{addr}/{WEB}"), &KEEP);
        push(api.clone(), &format!("{addr}/{API}"), &KEEP);
        push(m.clone(), &format!("{addr}/{MULTI}"), &KEEP);
        let dir = tempfile::tempdir().unwrap();
        let full = dir.path().join("full.tar.zst");
        save(&addr, &[WEB, API, MULTI], &full, None);
        let before = content(&[&web, &api, &m.images[0], &m.images[1]]);

        // One image changes (new top layer, same base); one is new.
        let api2 = IMAGES.image("linux/amd64", 20);
        let t = tools();
        let w = IMAGES.image("linux/amd64", 30);
        push(api2.clone(), &format!("{addr}/{API}"), &KEEP);
        push(t.clone(), &format!("{addr}/{TOOLS}"), &KEEP);
        push(w.clone(), &format!("{addr}/{WORKER}"), &KEEP);
        let after = content(&[&web, &api2, &m.images[0], &m.images[1], &t, &w]);
        let manifests_after = [
            &web.manifest,
            &api2.manifest,
            &m.index,
            &m.images[0].manifest,
            &m.images[1].manifest,
            &t.manifest,
            &w.manifest,
        ]
        .iter()
        .map(|b| b.digest.clone())
        .collect();
        Scenario {
            src,
            dir,
            full,
            before,
            after,
            manifests_after,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// What a differential bundle must leave out: what it needs and the base has.
    fn expected_omitted(&self) -> BTreeSet<String> {
        self.after.intersection(&self.before).cloned().collect()
    }

    /// Saves every image of the changed source against `base`.
    fn save_diff(&self, name: &str, base: &Path) -> PathBuf {
        let out = self.path(name);
        save(
            &self.src.addr(),
            &[WEB, API, MULTI, TOOLS, WORKER],
            &out,
            Some(base),
        );
        out
    }

    /// Every tag on `tgt` (under `prefix`) serves the source's digest.
    fn assert_target_matches_source(&self, tgt: &str, prefix: &str) {
        for name in [WEB, API, MULTI, TOOLS, WORKER] {
            let (repo, tag) = name.split_once(':').unwrap();
            let source = registry_digest(&self.src.addr(), repo, tag);
            let target = registry_digest(tgt, &format!("{prefix}{repo}"), tag);
            assert_eq!(
                target, source,
                "{tgt}/{prefix}{name} differs from the source"
            );
        }
    }
}

/// `airlock save` of `names` on `addr` into `out`, with `--base`; must succeed.
fn save(addr: &str, names: &[&str], out: &Path, base: Option<&Path>) {
    let mut args: Vec<String> = vec!["save".into()];
    args.extend(names.iter().map(|n| format!("{addr}/{n}")));
    args.extend(["-o".into(), out.display().to_string()]);
    if let Some(b) = base {
        args.extend(["--base".into(), b.display().to_string()]);
    }
    airlock(&args).ok();
}

fn run(args: &[&str]) -> support::cli::Run {
    airlock(args)
}

fn strs(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

/// The differential bundle holds every manifest, only the new configs and layers, and
/// says in its TOC what it left out; `manifest.json` lists only complete images.
fn assert_differential(s: &Scenario, diff: &Path, kind: &str, base_file: &str) -> Value {
    let b = Bundle::open(diff);
    let toc = b.toc();
    let held: BTreeSet<String> = b.blob_digests().into_iter().collect();
    for m in &s.manifests_after {
        assert!(
            held.contains(m),
            "manifest {m} missing from {}",
            diff.display()
        );
    }
    let expected = s.expected_omitted();
    assert!(!expected.is_empty());
    for d in &expected {
        assert!(!held.contains(d), "{d} should have been left out");
    }
    for d in s.after.difference(&s.before) {
        assert!(
            held.contains(d),
            "new blob {d} missing from the differential bundle"
        );
    }
    let base = &toc["base"];
    assert_eq!(base["kind"], kind, "{toc:#}");
    assert_eq!(base["file"], base_file);
    assert!(base["created"].is_string());
    let omitted: BTreeSet<String> = base["omitted"]
        .as_array()
        .expect("omitted")
        .iter()
        .map(|o| o["digest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(omitted, expected, "the TOC's omitted blobs");
    for o in base["omitted"].as_array().unwrap() {
        assert!(
            !o["repositories"].as_array().unwrap().is_empty(),
            "no location for {o}"
        );
    }
    let toc_blobs: BTreeSet<String> = toc["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["digest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        toc_blobs, held,
        "TOC blobs must be exactly what the file holds"
    );
    // Only `tools` (which shares nothing with the base) can be loaded by Docker alone.
    let docker = b.docker_manifest();
    let tags: Vec<String> = docker
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| strs(&e["RepoTags"]))
        .collect();
    assert_eq!(tags.len(), 1, "manifest.json: {docker:#}");
    assert!(tags[0].ends_with(TOOLS), "{tags:?}");
    for img in toc["images"].as_array().unwrap() {
        let name = img["name"].as_str().unwrap();
        if name.ends_with(TOOLS) {
            assert!(img["docker"].is_object(), "{img:#}");
        } else {
            assert!(img["docker"].is_null(), "{img:#}");
            let why = img["docker_skipped"].as_str().unwrap_or_default();
            assert!(why.contains("differential"), "{name}: {why}");
        }
    }
    toc
}

/// `ls --json` shows the base, the left-out count and bytes, and what was saved.
fn assert_ls(diff: &Path, toc: &Value) {
    let omitted_bytes: u64 = toc["base"]["omitted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["size"].as_u64().unwrap())
        .sum();
    let ls = run(&["ls", diff.to_str().unwrap(), "--json"]).ok().json();
    let base = &ls["base"];
    assert_eq!(base["file"], toc["base"]["file"], "{ls:#}");
    assert_eq!(
        base["omitted_blobs"].as_u64().unwrap() as usize,
        toc["base"]["omitted"].as_array().unwrap().len()
    );
    assert_eq!(base["omitted_bytes"].as_u64().unwrap(), omitted_bytes);
    assert_eq!(base["saved_bytes"].as_u64().unwrap(), omitted_bytes);
    let human = run(&["ls", diff.to_str().unwrap()]).ok().stdout;
    assert!(human.contains("differential against"), "{human}");
}

#[test]
fn differential_against_a_bundle_verifies_pushes_and_refuses_an_empty_target() {
    let s = Scenario::new();
    let diff = s.save_diff("diff.tar.zst", &s.full);
    let toc = assert_differential(&s, &diff, "bundle", "full.tar.zst");
    assert_ls(&diff, &toc);

    // The figure for the closing note: against a full bundle of the same images.
    let full_now = s.path("full-now.tar.zst");
    save(
        &s.src.addr(),
        &[WEB, API, MULTI, TOOLS, WORKER],
        &full_now,
        None,
    );
    let full_size = std::fs::metadata(&full_now).unwrap().len();
    let diff_size = std::fs::metadata(&diff).unwrap().len();
    eprintln!(
        "differential bundle: {diff_size} bytes vs full {full_size} bytes of the same images: \
         {} bytes ({:.1}%) smaller",
        full_size - diff_size,
        100.0 * (full_size - diff_size) as f64 / full_size as f64
    );
    assert!(diff_size * 4 < full_size, "{diff_size} vs {full_size}");

    // verify: omitted blobs are not missing; --base checks them against the base.
    let d = diff.to_str().unwrap();
    let plain = run(&["verify", d, "--json"]).ok().json();
    let note = plain["differential"].as_str().unwrap_or_default();
    assert!(note.contains("full.tar.zst"), "{plain:#}");
    run(&["verify", d, "--base", s.full.to_str().unwrap()]).ok();
    let partial = s.path("partial.tar.zst");
    save(&s.src.addr(), &[TOOLS], &partial, None);
    let bad = run(&["verify", d, "--base", partial.to_str().unwrap(), "--json"]).expect_code(1);
    let report = bad.json();
    let text = report.to_string();
    let missing = s.expected_omitted();
    assert!(
        missing.iter().all(|m| text.contains(m.as_str())),
        "every blob the base lacks is a finding: {report:#}"
    );

    // An empty registry: refused before anything is written, naming the missing blobs.
    let empty = TestRegistry::start();
    let refused = run(&["push", d, &empty.addr()]).expect_code(1);
    let out = refused.output();
    for m in &missing {
        assert!(out.contains(m.as_str()), "{m} not named in {refused}");
    }
    assert!(out.contains("full.tar.zst"), "{refused}");
    let (status, body) = get_json(&empty.addr(), "/v2/_catalog", None);
    assert_eq!(status, 200);
    assert!(
        body["repositories"].as_array().is_none_or(|a| a.is_empty()),
        "the empty registry got {body}"
    );

    // The base pushed first, then the differential bundle: every digest is the source's.
    let tgt = TestRegistry::start();
    run(&["push", s.full.to_str().unwrap(), &tgt.addr()]).ok();
    let summary = run(&["push", d, &tgt.addr(), "--json"]).ok().json();
    let uploaded: u64 = summary["blobs"]["uploaded"].as_u64().unwrap();
    assert_eq!(
        uploaded as usize,
        s.after.difference(&s.before).count(),
        "only the new blobs are uploaded: {summary:#}"
    );
    assert!(
        summary["blobs"]["mounted"].as_u64().unwrap() >= 1,
        "the base layer is mounted into the new repository: {summary:#}"
    );
    s.assert_target_matches_source(&tgt.addr(), "");

    // `load` skips what the bundle cannot give Docker alone, saying why.
    let docker_tar = s.path("docker.tar");
    let load = run(&[
        "load",
        d,
        "-o",
        docker_tar.to_str().unwrap(),
        "--json",
        "--image",
        &format!("{}/{API}", s.src.addr()),
    ])
    .expect_code(1);
    assert!(load.output().contains("differential"), "{load}");
}

#[test]
fn inventory_of_the_target_makes_the_same_differential_bundle() {
    let s = Scenario::new();
    let tgt = TestRegistry::start();
    let target = format!("{}/mirror", tgt.addr());
    run(&["push", s.full.to_str().unwrap(), &target]).ok();
    // A repository outside the prefix is not part of the inventory.
    push(tools(), &format!("{}/other/thing:1", tgt.addr()), &KEEP);

    let inv = s.path("inventory.json");
    let summary = run(&[
        "inventory",
        &target,
        "-o",
        inv.to_str().unwrap(),
        "--jobs",
        "2",
        "--json",
    ])
    .ok()
    .json();
    assert_eq!(summary["repositories"], 3, "{summary:#}");
    let doc: Value = serde_json::from_slice(&std::fs::read(&inv).unwrap()).unwrap();
    assert_eq!(doc["format"], "airlock-inventory");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["registry"], tgt.addr());
    assert_eq!(doc["prefix"], "mirror");
    let repos: BTreeSet<String> = doc["repositories"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let expected: BTreeSet<String> = ["mirror/team/api", "mirror/team/multi", "mirror/team/web"]
        .map(String::from)
        .into();
    assert_eq!(repos, expected);
    let web = &doc["repositories"]["mirror/team/web"];
    assert_eq!(
        web["tags"]["1"],
        registry_digest(&tgt.addr(), "mirror/team/web", "1")
    );
    let multi = &doc["repositories"]["mirror/team/multi"];
    assert_eq!(multi["manifests"].as_array().unwrap().len(), 3, "{multi:#}");
    let all_blobs: BTreeSet<String> = doc["repositories"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|r| strs(&r["blobs"]))
        .collect();
    assert_eq!(
        all_blobs, s.before,
        "the inventory's blobs are the full bundle's"
    );
    // No temporary file is left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(s.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let diff = s.save_diff("diff-inv.tar.zst", &inv);
    let toc = assert_differential(&s, &diff, "inventory", "inventory.json");
    assert_ls(&diff, &toc);
    run(&[
        "verify",
        diff.to_str().unwrap(),
        "--base",
        inv.to_str().unwrap(),
    ])
    .ok();

    let summary = run(&["push", diff.to_str().unwrap(), &target, "--json"])
        .ok()
        .json();
    assert_eq!(
        summary["blobs"]["uploaded"].as_u64().unwrap() as usize,
        s.after.difference(&s.before).count(),
        "{summary:#}"
    );
    s.assert_target_matches_source(&tgt.addr(), "mirror/");
}
