//! `airlock push` into real `docker-registry` instances.
//!
//! Every test builds its images with the deterministic builder, puts them into a
//! source registry with the real `skopeo copy`, saves them with `airlock save`, and
//! pushes the bundle into a second, empty registry. What landed is checked with the
//! registries' own answers (`Docker-Content-Digest`, tag lists, the catalog) and with
//! skopeo reading the target, never with airlock's own view.

mod support;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use serde_json::Value;
use support::cli::{
    Bundle, airlock, blob_path, cmd, copy_with_flipped_byte, docker_config_with_auth,
};
use support::corpus::{Corpus, app_layer, base_layer, passwd};
use support::images::{
    DOCKER_LIST, DOCKER_MANIFEST, Flavor, OCI_INDEX, OCI_MANIFEST, PushOptions, push, random_file,
    skopeo,
};
use support::registry::TestRegistry;
use support::registry_api::{
    catalog, get_json, registry_digest, registry_manifest, tags, try_registry_manifest,
};

const V2S2: PushOptions<'static> = PushOptions {
    format: Some("v2s2"),
    creds: None,
};
const KEEP: PushOptions<'static> = PushOptions {
    format: None,
    creds: None,
};

/// This file's images: a base layer they all share (os-release, passwd, 16 KiB of data)
/// and an 8 KiB app layer per seed.
static IMAGES: LazyLock<Corpus> = LazyLock::new(|| {
    Corpus::new(
        base_layer(
            "airlock-push-test",
            &[
                passwd(),
                random_file("usr/share/base/data.bin", 999, 16 * 1024),
            ],
        ),
        |seed| app_layer(seed, 8 * 1024),
    )
});

/// `airlock save NAMES -o OUT`, which must succeed.
fn save(names: &[String], out: &Path) {
    let mut args: Vec<String> = vec!["save".into()];
    args.extend(names.iter().cloned());
    args.push("-o".into());
    args.push(out.display().to_string());
    airlock(&args).ok();
}

/// `airlock push BUNDLE TARGET --json EXTRA...`, which must succeed; its JSON summary.
fn push_json(bundle: &Path, target: &str, extra: &[&str]) -> Value {
    let mut args: Vec<String> = vec![
        "push".into(),
        bundle.display().to_string(),
        target.into(),
        "--json".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    airlock(&args).ok().json()
}

/// Asserts that `tgt/<tgt_repo>:tag` serves the very manifest `src/<src_repo>:tag`
/// does: same `Docker-Content-Digest`, same bytes, same type.
fn assert_same_manifest(
    src: &str,
    src_repo: &str,
    tgt: &str,
    tgt_repo: &str,
    tag: &str,
    creds: Option<(&str, &str)>,
) {
    let s = registry_manifest(src, src_repo, tag, None);
    let t = registry_manifest(tgt, tgt_repo, tag, creds);
    assert_eq!(
        t.digest, s.digest,
        "digest of {tgt}/{tgt_repo}:{tag} differs from {src}/{src_repo}:{tag}"
    );
    assert_eq!(t.bytes, s.bytes, "bytes of {tgt_repo}:{tag}");
    assert_eq!(t.content_type, s.content_type, "type of {tgt_repo}:{tag}");
}

/// The JSON summary's entry for `name`.
fn image_entry<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["images"]
        .as_array()
        .expect("images")
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no image {name} in {summary:#}"))
}

/// Source registry with a Docker v2s2 image, an OCI image, a multi-arch OCI index, a
/// Docker manifest list and one image under three tags; returns it, the names and
/// the bundle (`.tar.zst`) saved from it.
struct Source {
    reg: TestRegistry,
    names: Vec<String>,
    _dir: tempfile::TempDir,
    bundle: PathBuf,
}

fn source_with_everything() -> Source {
    let reg = TestRegistry::start();
    let addr = reg.addr();
    push(
        IMAGES.image("linux/amd64", 1),
        &format!("{addr}/docker/app:1"),
        &V2S2,
    );
    push(
        IMAGES.image("linux/amd64", 2),
        &format!("{addr}/oci/app:2"),
        &KEEP,
    );
    push(
        IMAGES.two_platform_index(Flavor::Oci, 3),
        &format!("{addr}/multi:1"),
        &KEEP,
    );
    push(
        IMAGES.two_platform_index(Flavor::Oci, 5),
        &format!("{addr}/dlist:1"),
        &V2S2,
    );
    let three = IMAGES.image("linux/amd64", 7);
    for t in ["a", "b", "c"] {
        push(&three, &format!("{addr}/three:{t}"), &KEEP);
    }
    let names: Vec<String> = [
        "docker/app:1",
        "oci/app:2",
        "multi:1",
        "dlist:1",
        "three:a",
        "three:b",
        "three:c",
    ]
    .iter()
    .map(|n| format!("{addr}/{n}"))
    .collect();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("everything.tar.zst");
    save(&names, &bundle);
    Source {
        reg,
        names,
        _dir: dir,
        bundle,
    }
}

/// (`repo`, `tag`) of a source name `127.0.0.1:PORT/repo:tag`.
fn repo_tag<'a>(name: &'a str, addr: &str) -> (&'a str, &'a str) {
    support::cli::split_name(name, addr)
}

#[test]
fn push_keeps_every_digest_and_skopeo_reads_the_target() {
    let src = source_with_everything();
    let src_addr = src.reg.addr();
    let tgt = TestRegistry::start();
    let tgt_addr = tgt.addr();

    let summary = push_json(&src.bundle, &tgt_addr, &["--jobs", "3"]);
    assert_eq!(summary["target"], tgt_addr);
    assert_eq!(summary["dry_run"], false);
    assert_eq!(summary["images"].as_array().unwrap().len(), src.names.len());
    for name in &src.names {
        let (repo, tag) = repo_tag(name, &src_addr);
        assert_same_manifest(&src_addr, repo, &tgt_addr, repo, tag, None);
        let e = image_entry(&summary, name);
        assert_eq!(e["target"], format!("{tgt_addr}/{repo}:{tag}"));
        assert_eq!(e["status"], "pushed", "{e:#}");
        assert_eq!(
            e["digest"],
            registry_manifest(&src_addr, repo, tag, None).digest
        );
        assert!(e.get("source_digest").is_none(), "{e:#}");
    }
    assert_eq!(
        registry_manifest(&tgt_addr, "docker/app", "1", None).content_type,
        DOCKER_MANIFEST
    );
    assert_eq!(
        registry_manifest(&tgt_addr, "oci/app", "2", None).content_type,
        OCI_MANIFEST
    );
    assert_eq!(
        registry_manifest(&tgt_addr, "multi", "1", None).content_type,
        OCI_INDEX
    );
    assert_eq!(
        registry_manifest(&tgt_addr, "dlist", "1", None).content_type,
        DOCKER_LIST
    );
    assert_eq!(tags(&tgt_addr, "three", None), ["a", "b", "c"]);
    // Every child of the indexes is there by digest, with the source's bytes.
    for repo in ["multi", "dlist"] {
        let idx: Value =
            serde_json::from_slice(&registry_manifest(&tgt_addr, repo, "1", None).bytes).unwrap();
        for child in idx["manifests"].as_array().unwrap() {
            let d = child["digest"].as_str().unwrap();
            assert_same_manifest(&src_addr, repo, &tgt_addr, repo, d, None);
        }
    }
    // Blob totals: the shared base layer is uploaded once and mounted elsewhere.
    let blobs = &summary["blobs"];
    assert!(blobs["uploaded"].as_u64().unwrap() > 0, "{summary:#}");
    assert!(blobs["uploaded_bytes"].as_u64().unwrap() > 0, "{summary:#}");
    assert!(blobs["mounted"].as_u64().unwrap() > 0, "{summary:#}");
    assert_eq!(blobs["skipped"], 0, "{summary:#}");
    assert!(summary["manifests"]["pushed"].as_u64().unwrap() >= 7);
    assert_eq!(summary["tags"]["pushed"], 7);

    // skopeo reads the target: inspect a tag, copy the multi-arch index whole with
    // its digests kept.
    let inspect = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--no-creds",
        &format!("docker://{tgt_addr}/oci/app:2"),
    ]);
    let inspect: Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(
        inspect["Digest"],
        registry_manifest(&src_addr, "oci/app", "2", None).digest
    );
    let out = tempfile::tempdir().unwrap();
    skopeo(&[
        "--insecure-policy",
        "copy",
        "--quiet",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        "--src-no-creds",
        &format!("docker://{tgt_addr}/multi:1"),
        &format!("oci:{}:copy", out.path().display()),
    ]);
    let layout: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("index.json")).unwrap()).unwrap();
    assert_eq!(
        layout["manifests"][0]["digest"],
        registry_manifest(&src_addr, "multi", "1", None).digest
    );
    skopeo(&[
        "--insecure-policy",
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--src-no-creds",
        &format!("docker://{tgt_addr}/docker/app:1"),
        &format!("oci:{}:single", out.path().display()),
    ]);

    // The human report: one line per image, and totals.
    let tgt2 = TestRegistry::start();
    let run = airlock(&[
        "push",
        src.bundle.to_str().unwrap(),
        &tgt2.addr(),
        "--no-progress",
    ])
    .ok();
    for name in &src.names {
        let (repo, tag) = repo_tag(name, &src_addr);
        assert!(
            run.stderr
                .contains(&format!("{name} -> {}/{repo}:{tag}@sha256:", tgt2.addr())),
            "{run}"
        );
    }
    assert!(run.stderr.contains("(pushed)"), "{run}");
    assert!(run.stderr.contains("uploaded"), "{run}");
}

#[test]
fn prefix_keep_registry_and_image_selection() {
    let src = TestRegistry::start();
    let src_addr = src.addr();
    push(
        IMAGES.image("linux/amd64", 20),
        &format!("{src_addr}/team/app:1"),
        &KEEP,
    );
    push(
        IMAGES.image("linux/amd64", 21),
        &format!("{src_addr}/other:2"),
        &KEEP,
    );
    let names = vec![
        format!("{src_addr}/team/app:1"),
        format!("{src_addr}/other:2"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("b.tar");
    save(&names, &bundle);
    let tgt = TestRegistry::start();
    let tgt_addr = tgt.addr();

    // A prefix, and only one image.
    let s = push_json(
        &bundle,
        &format!("{tgt_addr}/mirror"),
        &["--image", &names[0]],
    );
    assert_eq!(s["target"], format!("{tgt_addr}/mirror"));
    assert_eq!(s["images"].as_array().unwrap().len(), 1, "{s:#}");
    assert_eq!(
        s["images"][0]["target"],
        format!("{tgt_addr}/mirror/team/app:1")
    );
    assert_same_manifest(
        &src_addr,
        "team/app",
        &tgt_addr,
        "mirror/team/app",
        "1",
        None,
    );
    assert_eq!(catalog(&tgt_addr, None), ["mirror/team/app"]);

    // --keep-registry keeps the source host (":" spelled "_") under the prefix.
    let s = push_json(
        &bundle,
        &format!("{tgt_addr}/kept"),
        &["--keep-registry", "--image", &names[1]],
    );
    let host = src_addr.replace(':', "_");
    assert_eq!(
        s["images"][0]["target"],
        format!("{tgt_addr}/kept/{host}/other:2")
    );
    assert_same_manifest(
        &src_addr,
        "other",
        &tgt_addr,
        &format!("kept/{host}/other"),
        "2",
        None,
    );
    assert_eq!(
        catalog(&tgt_addr, None),
        [format!("kept/{host}/other"), "mirror/team/app".to_string()]
    );

    // An --image the bundle does not hold: usage error listing what it holds.
    let run = airlock(&[
        "push",
        bundle.to_str().unwrap(),
        &tgt_addr,
        "--image",
        &format!("{src_addr}/nope:1"),
    ])
    .expect_code(2);
    assert!(run.stderr.contains("nope:1"), "{run}");
    assert!(
        run.stderr.contains(&names[0]),
        "lists the bundle's names: {run}"
    );
    assert!(
        run.stderr.contains(&names[1]),
        "lists the bundle's names: {run}"
    );
    assert_eq!(catalog(&tgt_addr, None).len(), 2, "nothing new written");
}

#[test]
fn basic_auth_target_with_docker_config_and_wrong_password() {
    let src = TestRegistry::start();
    let src_addr = src.addr();
    push(
        IMAGES.image("linux/amd64", 30),
        &format!("{src_addr}/app:1"),
        &KEEP,
    );
    let name = format!("{src_addr}/app:1");
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("b.tar.zst");
    save(std::slice::from_ref(&name), &bundle);

    let (user, pass) = ("pusher", "s3cret-pa55-for-push");
    let tgt = TestRegistry::start_with_basic_auth(user, pass);
    let tgt_addr = tgt.addr();

    // A wrong password: exit 1, the registry named, the password never shown, nothing written.
    let wrong_pass = "wr0ng-pa55-xyz";
    let wrong = docker_config_with_auth(&tgt_addr, user, wrong_pass);
    let run = cmd(&["push", bundle.to_str().unwrap(), &tgt_addr])
        .env("DOCKER_CONFIG", wrong.path())
        .run()
        .expect_code(1);
    assert!(run.stderr.contains(&tgt_addr), "names the registry: {run}");
    assert!(
        run.stderr.contains("docker login"),
        "says what to do: {run}"
    );
    assert!(!run.output().contains(wrong_pass), "password leaked: {run}");
    assert!(tags(&tgt_addr, "app", Some((user, pass))).is_empty());

    // No credentials at all: exit 1 as well.
    let run = airlock(&["push", bundle.to_str().unwrap(), &tgt_addr]).expect_code(1);
    assert!(run.stderr.contains(&tgt_addr), "{run}");

    // The right ones from $DOCKER_CONFIG/config.json.
    let good = docker_config_with_auth(&tgt_addr, user, pass);
    let run = cmd(&["push", bundle.to_str().unwrap(), &tgt_addr, "--json"])
        .env("DOCKER_CONFIG", good.path())
        .run()
        .ok();
    assert!(!run.output().contains(pass), "password leaked: {run}");
    assert_eq!(run.json()["images"][0]["status"], "pushed");
    assert_same_manifest(&src_addr, "app", &tgt_addr, "app", "1", Some((user, pass)));
}

#[test]
fn second_push_uploads_nothing_and_shared_layers_are_mounted() {
    let src = TestRegistry::start();
    let src_addr = src.addr();
    // Two repositories sharing the base layer.
    push(
        IMAGES.image("linux/amd64", 40),
        &format!("{src_addr}/one:1"),
        &KEEP,
    );
    push(
        IMAGES.image("linux/amd64", 41),
        &format!("{src_addr}/two:1"),
        &KEEP,
    );
    let names = vec![format!("{src_addr}/one:1"), format!("{src_addr}/two:1")];
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("b.tar");
    save(&names, &bundle);
    let tgt = TestRegistry::start();
    let tgt_addr = tgt.addr();

    let first = push_json(&bundle, &tgt_addr, &[]);
    let blobs = &first["blobs"];
    // one: config, base, app; two: config, app uploaded, base mounted.
    assert_eq!(blobs["uploaded"], 5, "{first:#}");
    assert_eq!(blobs["mounted"], 1, "{first:#}");
    assert_eq!(blobs["skipped"], 0, "{first:#}");
    let base = &IMAGES.base;
    let mounted: Vec<&Value> = first["images"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["blobs"].as_array().unwrap())
        .filter(|b| b["action"] == "mounted")
        .collect();
    assert_eq!(mounted.len(), 1);
    assert_eq!(mounted[0]["digest"], base.digest());
    assert_eq!(first["manifests"]["pushed"], 2);
    assert_eq!(first["tags"]["pushed"], 2);

    let second = push_json(&bundle, &tgt_addr, &[]);
    assert_eq!(second["blobs"]["uploaded"], 0, "{second:#}");
    assert_eq!(second["blobs"]["uploaded_bytes"], 0, "{second:#}");
    assert_eq!(second["blobs"]["mounted"], 0, "{second:#}");
    assert_eq!(second["blobs"]["skipped"], 6, "{second:#}");
    assert_eq!(second["manifests"]["pushed"], 0, "{second:#}");
    assert_eq!(second["manifests"]["skipped"], 2, "{second:#}");
    assert_eq!(second["tags"]["pushed"], 0, "{second:#}");
    assert_eq!(second["tags"]["unchanged"], 2, "{second:#}");
    for i in second["images"].as_array().unwrap() {
        assert_eq!(i["status"], "unchanged", "{i:#}");
    }
    for name in &names {
        let (repo, tag) = repo_tag(name, &src_addr);
        assert_same_manifest(&src_addr, repo, &tgt_addr, repo, tag, None);
    }
}

#[test]
fn a_corrupt_layer_stops_the_push_before_any_manifest() {
    let src = TestRegistry::start();
    let src_addr = src.addr();
    let victim = IMAGES.image("linux/amd64", 50);
    push(&victim, &format!("{src_addr}/victim:1"), &KEEP);
    push(
        IMAGES.image("linux/amd64", 51),
        &format!("{src_addr}/bystander:1"),
        &KEEP,
    );
    push(
        IMAGES.two_platform_index(Flavor::Oci, 52),
        &format!("{src_addr}/multi:1"),
        &KEEP,
    );
    let names = vec![
        format!("{src_addr}/victim:1"),
        format!("{src_addr}/bystander:1"),
        format!("{src_addr}/multi:1"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.tar");
    save(&names, &good);
    let bad = dir.path().join("bad.tar");
    let layer = victim.layers[1].digest().to_string();
    copy_with_flipped_byte(&good, &bad, &blob_path(&layer), 100);

    let tgt = TestRegistry::start();
    let tgt_addr = tgt.addr();
    let run = airlock(&["push", bad.to_str().unwrap(), &tgt_addr, "--jobs", "2"]).expect_code(1);
    assert!(run.stderr.contains(&layer), "names the blob: {run}");
    assert!(run.stderr.contains(&names[0]), "names the image: {run}");
    assert!(
        run.stderr.contains("airlock verify"),
        "says what to do: {run}"
    );
    // No manifest at all was written: no tags, no manifests by digest.
    for (repo, root) in [
        ("victim", victim.manifest.digest.clone()),
        (
            "bystander",
            registry_manifest(&src_addr, "bystander", "1", None).digest,
        ),
        (
            "multi",
            registry_manifest(&src_addr, "multi", "1", None).digest,
        ),
    ] {
        assert!(tags(&tgt_addr, repo, None).is_empty(), "tags of {repo}");
        assert!(
            try_registry_manifest(&tgt_addr, repo, &root, None).is_err(),
            "{repo}@{root} must not be on the target"
        );
        assert!(try_registry_manifest(&tgt_addr, repo, "1", None).is_err());
    }
    // The corrupt blob never completed an upload.
    let (status, _) = get_json(&tgt_addr, &format!("/v2/victim/blobs/{layer}"), None);
    assert_eq!(status, 404, "the damaged layer is not on the target");

    // The intact bundle then pushes fine into the same target.
    push_json(&good, &tgt_addr, &[]);
    for name in &names {
        let (repo, tag) = repo_tag(name, &src_addr);
        assert_same_manifest(&src_addr, repo, &tgt_addr, repo, tag, None);
    }
}

#[test]
fn tar_and_tar_zst_bundles_both_push() {
    let src = TestRegistry::start();
    let src_addr = src.addr();
    push(
        IMAGES.two_platform_index(Flavor::Oci, 60),
        &format!("{src_addr}/multi:1"),
        &KEEP,
    );
    push(
        IMAGES.image("linux/amd64", 62),
        &format!("{src_addr}/app:1"),
        &V2S2,
    );
    let names = vec![format!("{src_addr}/multi:1"), format!("{src_addr}/app:1")];
    let dir = tempfile::tempdir().unwrap();
    let tgt = TestRegistry::start();
    let tgt_addr = tgt.addr();
    for (file, prefix) in [("b.tar", "plain"), ("b.tar.zst", "zstd")] {
        let bundle = dir.path().join(file);
        save(&names, &bundle);
        let s = push_json(&bundle, &format!("{tgt_addr}/{prefix}"), &[]);
        assert_eq!(s["tags"]["pushed"], 2, "{file}: {s:#}");
        for name in &names {
            let (repo, tag) = repo_tag(name, &src_addr);
            assert_same_manifest(
                &src_addr,
                repo,
                &tgt_addr,
                &format!("{prefix}/{repo}"),
                tag,
                None,
            );
        }
    }
}

#[test]
fn dry_run_writes_nothing_and_reports_the_plan() {
    let src = TestRegistry::start();
    let src_addr = src.addr();
    push(
        IMAGES.image("linux/amd64", 70),
        &format!("{src_addr}/one:1"),
        &KEEP,
    );
    push(
        IMAGES.two_platform_index(Flavor::Oci, 71),
        &format!("{src_addr}/multi:1"),
        &KEEP,
    );
    let names = vec![format!("{src_addr}/one:1"), format!("{src_addr}/multi:1")];
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("b.tar.zst");
    save(&names, &bundle);
    let tgt = TestRegistry::start();
    let tgt_addr = tgt.addr();

    let s = push_json(&bundle, &format!("{tgt_addr}/m"), &["--dry-run"]);
    assert_eq!(s["dry_run"], true);
    assert!(
        catalog(&tgt_addr, None).is_empty(),
        "a dry run writes nothing"
    );
    for name in &names {
        let e = image_entry(&s, name);
        assert_eq!(e["status"], "would push", "{e:#}");
        let (repo, tag) = repo_tag(name, &src_addr);
        assert_eq!(e["target"], format!("{tgt_addr}/m/{repo}:{tag}"));
        for b in e["blobs"].as_array().unwrap() {
            assert!(
                b["action"] == "would upload" || b["action"] == "would mount",
                "{b:#}"
            );
        }
        for m in e["manifests"].as_array().unwrap() {
            assert_eq!(m["action"], "would push", "{m:#}");
        }
    }
    // Base layer: uploaded once, mounted into the other repository.
    assert_eq!(s["blobs"]["mounted"], 1, "{s:#}");
    assert!(s["blobs"]["uploaded"].as_u64().unwrap() > 0);
    assert!(s["blobs"]["uploaded_bytes"].as_u64().unwrap() > 0);
    assert_eq!(
        s["manifests"]["pushed"], 4,
        "one + index + 2 children: {s:#}"
    );
    assert_eq!(s["tags"]["pushed"], 2);

    let human = airlock(&[
        "push",
        bundle.to_str().unwrap(),
        &format!("{tgt_addr}/m"),
        "--dry-run",
        "--no-progress",
    ])
    .ok();
    assert!(human.stdout.contains("would upload"), "{human}");
    assert!(human.stdout.contains("(would push)"), "{human}");
    assert!(human.stdout.contains("Dry run"), "{human}");
    assert!(
        catalog(&tgt_addr, None).is_empty(),
        "a dry run writes nothing"
    );

    // After the real push, a dry run finds everything there.
    push_json(&bundle, &format!("{tgt_addr}/m"), &[]);
    let s = push_json(&bundle, &format!("{tgt_addr}/m"), &["--dry-run"]);
    assert_eq!(s["blobs"]["uploaded"], 0, "{s:#}");
    assert_eq!(s["blobs"]["mounted"], 0, "{s:#}");
    assert_eq!(s["manifests"]["pushed"], 0, "{s:#}");
    assert_eq!(s["tags"]["pushed"], 0, "{s:#}");
    for name in &names {
        assert_eq!(image_entry(&s, name)["status"], "unchanged");
    }
}

#[test]
fn a_platform_filtered_bundle_reports_the_changed_digest() {
    let src = TestRegistry::start();
    let src_addr = src.addr();
    let idx = IMAGES.two_platform_index(Flavor::Oci, 80);
    push(&idx, &format!("{src_addr}/multi:1"), &KEEP);
    let source_digest = registry_manifest(&src_addr, "multi", "1", None).digest;
    let name = format!("{src_addr}/multi:1");
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("arm.tar.zst");
    airlock(&[
        "save",
        &name,
        "--platform",
        "linux/arm64",
        "--docker-platform",
        "linux/arm64",
        "-o",
        bundle.to_str().unwrap(),
    ])
    .ok();
    let saved = Bundle::open(&bundle).toc_image(&name);
    let digest = saved["digest"].as_str().unwrap().to_string();
    assert_ne!(digest, source_digest);

    let tgt = TestRegistry::start();
    let tgt_addr = tgt.addr();
    let s = push_json(&bundle, &tgt_addr, &[]);
    let e = image_entry(&s, &name);
    assert_eq!(e["digest"], digest);
    assert_eq!(e["source_digest"], source_digest);
    assert!(e["note"].is_string(), "{e:#}");
    let served = registry_manifest(&tgt_addr, "multi", "1", None);
    assert_eq!(
        served.digest, digest,
        "the target serves the bundle's digest"
    );
    // The arm64 child is the source's, byte for byte.
    let arm = idx.child("linux/arm64");
    assert_eq!(
        registry_manifest(&tgt_addr, "multi", &arm.manifest.digest, None).bytes,
        arm.manifest.bytes
    );

    let tgt2 = TestRegistry::start();
    let run = airlock(&[
        "push",
        bundle.to_str().unwrap(),
        &tgt2.addr(),
        "--no-progress",
    ])
    .ok();
    assert!(
        run.stderr.contains(&format!(
            "pushed with digest {digest}; the source's was {source_digest}"
        )),
        "{run}"
    );
}

/// `--chunk-size` makes uploads go as PATCH chunks (for registries or proxies that cap
/// request size); the default streams each blob in one request. Both land byte-exact.
#[test]
fn chunked_uploads_land_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("fx.tar.zst");
    cmd(&[
        "save",
        "oci:fixtures/oci",
        "-o",
        bundle.to_str().unwrap(),
        "--no-progress",
    ])
    .current_dir(support::cli::repo_root())
    .run()
    .ok();
    let reg = TestRegistry::start();
    let pushed = airlock(&[
        "push",
        bundle.to_str().unwrap(),
        &format!("{}/chunked", reg.addr()),
        "--chunk-size",
        "16K",
        "--json",
        "--no-progress",
    ])
    .ok()
    .json();
    assert!(
        pushed["blobs"]["uploaded"].as_u64().unwrap() > 0,
        "{pushed:#}"
    );
    // The fixture layers are 24-48 KiB, so each went as two or more chunks; the registry
    // accepted every one and computed the same digests.
    for image in pushed["images"].as_array().unwrap() {
        let target = image["target"].as_str().unwrap();
        let (repo_tag, _) = target.split_once('@').unwrap_or((target, ""));
        let path = repo_tag.strip_prefix(&format!("{}/", reg.addr())).unwrap();
        let (repo, tag) = path.rsplit_once(':').unwrap();
        assert_eq!(
            registry_digest(&reg.addr(), repo, tag),
            image["digest"].as_str().unwrap(),
            "{target}"
        );
    }
    // A chunk size below the smallest accepted is a usage error.
    airlock(&[
        "push",
        bundle.to_str().unwrap(),
        &reg.addr(),
        "--chunk-size",
        "1K",
    ])
    .expect_code(2);
}
