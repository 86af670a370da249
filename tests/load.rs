//! `airlock load` against real components: images built here, put into a real
//! `docker-registry` with skopeo (or written as OCI layouts), saved with `airlock
//! save`, then loaded into a real Docker 20.10 engine (Debian's docker.io, started per
//! test) or written with `-o` and loaded with plain `docker load`. Docker is the judge:
//! every tag must be there with the source config digest as its image ID, and it
//! checks every layer against the config's diff_ids itself.

mod support;

use std::sync::LazyLock;

use std::path::Path;

use serde_json::Value;
use support::cli::{
    Bundle, Run, airlock, blob_path, cmd, copy_with_flipped_byte, dir_listing, repo_root,
};
use support::corpus::{Corpus, base_layer, opt_app_layer};
use support::dockerd::{TestDockerd, assert_root};
use support::images::{
    FIXTURE_HELLO, FIXTURE_HELLO_LATEST, FIXTURE_MULTI, FIXTURE_WORLD, Flavor, ImageSpec,
    OciLayout, PushOptions, exe, file, fixtures, layer, push, random_file, with_zstd_layer_types,
    zstd_layer,
};
use support::registry::TestRegistry;
use support::registry_api::registry_manifest;

/// This file's images: a base layer they all share (os-release) and a 24 KiB app
/// layer per seed.
static IMAGES: LazyLock<Corpus> = LazyLock::new(|| {
    Corpus::new(base_layer("airlock-load-test", &[]), |seed| {
        opt_app_layer(seed, 24 * 1024)
    })
});

/// `airlock load ARGS` against `dockerd`.
fn load(dockerd: &TestDockerd, args: &[&str]) -> Run {
    let mut c = cmd(&["load"]);
    for a in args {
        c = c.arg(a);
    }
    c.env("DOCKER_HOST", dockerd.host()).run()
}

/// `docker image inspect NAME`, or `None` when the engine does not have it.
fn inspect(dockerd: &TestDockerd, name: &str) -> Option<Value> {
    let out = dockerd.docker(&["image", "inspect", name]);
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).expect("inspect JSON");
    Some(v[0].clone())
}

/// Asserts that the engine has `name` with image ID `id`.
fn assert_loaded(dockerd: &TestDockerd, name: &str, id: &str) -> Value {
    let i = inspect(dockerd, name)
        .unwrap_or_else(|| panic!("{name} is not in the engine; log:\n{}", dockerd.log_tail()));
    assert_eq!(i["Id"], id, "image ID of {name}");
    assert!(
        i["RepoTags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|x| x == name)),
        "RepoTags of {name}: {i:#}"
    );
    i
}

/// The images of a `--json` summary, keyed by tag.
fn summary_image<'a>(summary: &'a Value, tag: &str) -> &'a Value {
    summary["images"]
        .as_array()
        .expect("images array")
        .iter()
        .find(|i| i["tag"] == tag)
        .unwrap_or_else(|| panic!("summary has no tag {tag}: {summary:#}"))
}

#[test]
fn load_from_a_registry_bundle_into_docker_and_into_a_file() {
    assert_root();
    let reg = TestRegistry::start();
    let addr = reg.addr();
    let v2s2 = PushOptions {
        format: Some("v2s2"),
        creds: None,
    };
    let keep = PushOptions::default();
    let docker_image = IMAGES.image("linux/amd64", 1);
    push(&docker_image, &format!("{addr}/load/docker:1"), &v2s2);
    let oci_image = IMAGES.image("linux/amd64", 2);
    push(&oci_image, &format!("{addr}/load/oci:1"), &keep);
    let tagged = IMAGES.image("linux/amd64", 3);
    for t in ["a", "b", "c"] {
        push(&tagged, &format!("{addr}/load/tags:{t}"), &v2s2);
    }
    let multi = IMAGES.two_platform_index(Flavor::Oci, 4);
    push(&multi, &format!("{addr}/load/multi:1"), &keep);

    // (tag, image ID, the registry's digest for the tag)
    let expected: Vec<(String, String, String)> = [
        ("load/docker", "1", &docker_image.config.digest),
        ("load/oci", "1", &oci_image.config.digest),
        ("load/tags", "a", &tagged.config.digest),
        ("load/tags", "b", &tagged.config.digest),
        ("load/tags", "c", &tagged.config.digest),
        ("load/multi", "1", &multi.child("linux/amd64").config.digest),
    ]
    .iter()
    .map(|(repo, tag, id)| {
        (
            format!("{addr}/{repo}:{tag}"),
            id.to_string(),
            registry_manifest(&addr, repo, tag, None).digest,
        )
    })
    .collect();
    assert_eq!(expected[5].2, multi.index.digest);

    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.tar.zst");
    let bundle_s = bundle.to_str().unwrap();
    let mut args: Vec<String> = vec!["save".into()];
    args.extend(expected.iter().map(|(n, _, _)| n.clone()));
    args.extend(["-o".into(), bundle_s.into()]);
    airlock(&args[..]).ok();

    // -o: a file for plain `docker load`, written without an engine.
    let out = dir.path().join("for-docker.tar");
    let summary = airlock(&["load", bundle_s, "-o", out.to_str().unwrap(), "--json"])
        .ok()
        .json();
    assert_eq!(summary["platform"], "linux/amd64");
    assert_eq!(summary["output"], out.to_str().unwrap());
    assert_eq!(summary["images"].as_array().unwrap().len(), expected.len());
    assert_eq!(summary["skipped"], serde_json::json!([]));
    for (name, id, digest) in &expected {
        let i = summary_image(&summary, name);
        assert_eq!(i["image_id"], *id, "{name}");
        assert_eq!(i["source_digest"], *digest, "{name}");
        assert_eq!(i["platform"], "linux/amd64", "{name}");
    }
    assert_eq!(
        summary_image(&summary, &expected[5].0)["manifest"],
        multi.child("linux/amd64").manifest.digest
    );
    assert_eq!(
        dir_listing(dir.path()),
        ["bundle.tar.zst", "for-docker.tar"],
        "no temporary file is left"
    );
    let file = Bundle::open(&out);
    assert_eq!(
        file.names()[0],
        "manifest.json",
        "manifest.json comes first"
    );
    for (n, _) in &file.entries {
        assert_eq!(file.count(n), 1, "{n} is written once");
    }

    let dockerd = TestDockerd::start();
    let engine_arch = dockerd.engine().version().expect("version").arch;
    dockerd.docker_ok(&["load", "-i", out.to_str().unwrap()]);
    for (name, id, _) in &expected {
        assert_loaded(&dockerd, name, id);
    }
    let i = assert_loaded(&dockerd, &expected[0].0, &expected[0].1);
    let layers: Vec<&str> = i["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let diff_ids: Vec<&str> = docker_image
        .layers
        .iter()
        .map(|l| l.diff_id.as_str())
        .collect();
    assert_eq!(layers, diff_ids);

    // Straight into the engine, after removing what `docker load` put there.
    let mut rmi = vec!["rmi", "-f"];
    rmi.extend(expected.iter().map(|(n, _, _)| n.as_str()));
    dockerd.docker_ok(&rmi);
    assert!(inspect(&dockerd, &expected[0].0).is_none());
    let summary = load(&dockerd, &[bundle_s, "--json"]).ok().json();
    assert_eq!(summary["platform"], format!("linux/{engine_arch}"));
    assert_eq!(summary["output"], Value::Null);
    assert_eq!(summary["engine"], dockerd.host());
    for (name, id, digest) in &expected {
        assert_loaded(&dockerd, name, id);
        assert_eq!(summary_image(&summary, name)["source_digest"], *digest);
    }
    // The three tags are one image.
    let i = assert_loaded(&dockerd, &expected[2].0, &expected[2].1);
    assert_eq!(i["RepoTags"].as_array().unwrap().len(), 3, "{i:#}");

    // Another platform of the multi-arch image, chosen by --image; the human report.
    let multi_name = &expected[5].0;
    let arm = multi.child("linux/arm64");
    let run = load(
        &dockerd,
        &[bundle_s, "--platform", "linux/arm64", "--image", multi_name],
    )
    .ok();
    let i = assert_loaded(&dockerd, multi_name, &arm.config.digest);
    assert_eq!(i["Architecture"], "arm64");
    assert!(
        run.stderr.contains(&format!(
            "loaded {multi_name} image {} (source digest {})",
            arm.config.digest, multi.index.digest
        )),
        "human report: {run}"
    );
    assert!(
        run.stderr.contains("registry digests"),
        "the digest hint: {run}"
    );
    assert!(
        !run.stderr.contains("load/docker"),
        "--image loads only the one name: {run}"
    );
    // The other names are untouched.
    assert_loaded(&dockerd, &expected[0].0, &expected[0].1);
}

#[test]
fn zstd_layers_are_decompressed_and_a_damaged_blob_loads_nothing() {
    assert_root();
    let zstd_app = zstd_layer(&[
        exe("bin/z", "#!/bin/sh\necho zstd\n"),
        random_file("opt/z.bin", 7, 40 * 1024),
    ]);
    let zstd_image = with_zstd_layer_types(
        ImageSpec::new("linux/amd64")
            .layer(&layer(&[file("etc/os-release", "ID=zstd-test\n")]))
            .layer(&zstd_app)
            .label("test.zstd", "1")
            .build(),
    );
    assert_eq!(
        zstd_image.layers[1].gz.media_type,
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    let plain = IMAGES.image("linux/amd64", 8);
    let zstd_name = "example.com/load/zstd:1";
    let plain_name = "example.com/load/plain:1";

    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let mut l = OciLayout::new();
    l.add(&zstd_image, "1", Some(zstd_name));
    l.add(&plain, "p1", Some(plain_name));
    l.write(&layout);
    let bundle = dir.path().join("bundle.tar");
    airlock(&[
        "save",
        &format!("oci:{}", layout.display()),
        "-o",
        bundle.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(
        Bundle::open(&bundle).blob(zstd_image.layers[1].digest()),
        &zstd_image.layers[1].gz.bytes[..],
        "save keeps the zstd bytes"
    );

    // -o: the zstd layer is stored decompressed, under its diff_id.
    let out = dir.path().join("out.tar");
    let summary = airlock(&[
        "load",
        bundle.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--json",
    ])
    .ok()
    .json();
    assert_eq!(summary["decompressed_layers"], 1, "{summary:#}");
    let file = Bundle::open(&out);
    assert_eq!(
        file.entry(&blob_path(&zstd_app.diff_id)),
        &zstd_app.tar[..],
        "the decompressed layer"
    );
    assert!(
        file.try_entry(&blob_path(zstd_image.layers[1].digest()))
            .is_none()
    );
    let m = file.json("manifest.json");
    let entry = m
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["RepoTags"][0] == zstd_name)
        .expect("zstd entry");
    assert_eq!(entry["Layers"][1], blob_path(&zstd_app.diff_id));
    assert_eq!(entry["Layers"][0], blob_path(zstd_image.layers[0].digest()));

    let dockerd = TestDockerd::start();

    // A flipped byte in a layer: exit 1 naming the blob; Docker gets nothing.
    let bad = dir.path().join("bad.tar");
    let victim = plain.layers[1].digest();
    copy_with_flipped_byte(&bundle, &bad, &blob_path(victim), 100);
    let run = load(&dockerd, &[bad.to_str().unwrap()]).expect_code(1);
    assert!(
        run.stderr.contains(victim),
        "the error names the blob: {run}"
    );
    assert!(run.stderr.contains(plain_name), "and the image: {run}");
    assert!(
        inspect(&dockerd, plain_name).is_none(),
        "{plain_name} was loaded"
    );
    assert!(
        inspect(&dockerd, zstd_name).is_none(),
        "{zstd_name} was loaded"
    );
    assert_eq!(
        dockerd.docker_ok(&["images", "-q"]).trim(),
        "",
        "no image at all"
    );
    // The same with -o: no file, no temporary file.
    let bad_out = dir.path().join("bad-out.tar");
    let run = airlock(&[
        "load",
        bad.to_str().unwrap(),
        "-o",
        bad_out.to_str().unwrap(),
    ])
    .expect_code(1);
    assert!(run.stderr.contains(victim), "{run}");
    assert!(
        !dir_listing(dir.path())
            .iter()
            .any(|n| n.contains("bad-out")),
        "{:?}",
        dir_listing(dir.path())
    );

    // The sound bundle: Docker 20.10 loads the zstd image with matching diff_ids.
    let summary = load(&dockerd, &[bundle.to_str().unwrap(), "--json"])
        .ok()
        .json();
    assert_eq!(summary["decompressed_layers"], 1);
    let i = assert_loaded(&dockerd, zstd_name, &zstd_image.config.digest);
    let layers: Vec<&str> = i["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let diff_ids: Vec<&str> = zstd_image
        .layers
        .iter()
        .map(|l| l.diff_id.as_str())
        .collect();
    assert_eq!(layers, diff_ids);
    assert_loaded(&dockerd, plain_name, &plain.config.digest);
}

/// `-o` needs no engine: selection, skipped names and platform choice on the shipped
/// fixtures.
#[test]
fn load_to_a_file_selects_names_and_platforms() {
    let f = fixtures();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("fixtures.tar.zst");
    airlock(&[
        "save",
        &format!("oci:{}", repo_root().join("fixtures/oci").display()),
        "-o",
        bundle.to_str().unwrap(),
    ])
    .ok();
    let b = bundle.to_str().unwrap();
    let out = dir.path().join("out.tar");
    let o = out.to_str().unwrap();
    let repo_tags = |path: &Path| -> Vec<String> {
        let mut v: Vec<String> = Bundle::open(path)
            .json("manifest.json")
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["RepoTags"][0].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };

    // --image, twice.
    let s = airlock(&[
        "load",
        b,
        "-o",
        o,
        "--json",
        "--image",
        FIXTURE_HELLO,
        "--image",
        FIXTURE_MULTI,
    ])
    .ok()
    .json();
    assert_eq!(repo_tags(&out), [FIXTURE_HELLO, FIXTURE_MULTI]);
    assert_eq!(s["images"].as_array().unwrap().len(), 2);
    let file = Bundle::open(&out);
    for e in file.json("manifest.json").as_array().unwrap() {
        assert!(file.try_entry(e["Config"].as_str().unwrap()).is_some());
        for l in e["Layers"].as_array().unwrap() {
            assert!(file.try_entry(l.as_str().unwrap()).is_some(), "{l}");
        }
    }
    assert!(file.try_entry(&blob_path(&f.world.config.digest)).is_none());
    assert_eq!(
        file.count(&blob_path(f.hello.layers[0].digest())),
        1,
        "the shared base layer once"
    );

    // An unknown --image: exit 1, listing the names there are; no file.
    std::fs::remove_file(&out).unwrap();
    let run =
        airlock(&["load", b, "-o", o, "--image", "example.com/airlock/nope:1"]).expect_code(1);
    for name in [
        FIXTURE_HELLO,
        FIXTURE_HELLO_LATEST,
        FIXTURE_WORLD,
        FIXTURE_MULTI,
    ] {
        assert!(run.stderr.contains(name), "the error lists {name}: {run}");
    }
    assert!(run.stderr.contains("example.com/airlock/nope:1"), "{run}");
    assert!(!out.exists());

    // linux/arm64: the index's arm64 child; single-platform images as they are.
    let s = airlock(&["load", b, "-o", o, "--json", "--platform", "linux/arm64"])
        .ok()
        .json();
    assert_eq!(s["platform"], "linux/arm64");
    let m = summary_image(&s, FIXTURE_MULTI);
    assert_eq!(m["image_id"], f.multi.child("linux/arm64").config.digest);
    assert_eq!(m["source_digest"], f.multi.index.digest);
    assert_eq!(m["platform"], "linux/arm64/v8");
    assert_eq!(
        summary_image(&s, FIXTURE_WORLD)["image_id"],
        f.world.config.digest
    );
    assert_eq!(repo_tags(&out).len(), 4);

    // A platform the index lacks: that name is skipped with a reason, the rest load.
    let s = airlock(&["load", b, "-o", o, "--json", "--platform", "linux/s390x"])
        .ok()
        .json();
    assert_eq!(s["images"].as_array().unwrap().len(), 3);
    let skipped = s["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{s:#}");
    assert_eq!(skipped[0]["name"], FIXTURE_MULTI);
    let reason = skipped[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("linux/s390x") && reason.contains("linux/arm64"),
        "{reason}"
    );
    assert_eq!(
        repo_tags(&out),
        [FIXTURE_HELLO, FIXTURE_HELLO_LATEST, FIXTURE_WORLD]
    );

    // Nothing loadable at all: an error naming why.
    let run = airlock(&["load", b, "-o", o, "--platform", "windows/amd64"]).expect_code(1);
    assert!(run.stderr.contains("nothing"), "{run}");
    assert!(run.stderr.contains(FIXTURE_MULTI), "{run}");
}

/// `load --with-digests`: the engine pulls from a loopback server of the bundle, so
/// `docker image inspect` shows RepoDigests whose digests are the source registry's
/// (a single image, a Docker v2 schema 2 image, and a multi-platform index), where a
/// plain `load` records none.
#[test]
fn load_with_digests_records_the_source_digests_in_repo_digests() {
    assert_root();
    let reg = TestRegistry::start();
    let addr = reg.addr();
    let v2s2 = PushOptions {
        format: Some("v2s2"),
        creds: None,
    };
    let oci = IMAGES.image("linux/amd64", 11);
    push(
        &oci,
        &format!("{addr}/digests/oci:1"),
        &PushOptions::default(),
    );
    let docker = IMAGES.image("linux/amd64", 12);
    push(&docker, &format!("{addr}/digests/docker:1"), &v2s2);
    let multi = IMAGES.two_platform_index(Flavor::Oci, 13);
    push(
        &multi,
        &format!("{addr}/digests/multi:1"),
        &PushOptions::default(),
    );

    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.tar.zst");
    let bundle_s = bundle.to_str().unwrap();
    let names = [
        format!("{addr}/digests/oci:1"),
        format!("{addr}/digests/docker:1"),
        format!("{addr}/digests/multi:1"),
    ];
    let mut args: Vec<&str> = vec!["save"];
    args.extend(names.iter().map(String::as_str));
    args.extend(["-o", bundle_s]);
    airlock(&args).ok();

    // Not with -o: there is no engine to pull.
    let out = dir.path().join("x.tar");
    let r = airlock(&[
        "load",
        bundle_s,
        "--with-digests",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(!out.exists());

    let dockerd = TestDockerd::start();
    let engine_arch = dockerd.engine().version().expect("version").arch;
    let summary = load(&dockerd, &[bundle_s, "--with-digests", "--json"])
        .ok()
        .json();
    let expected = [
        (&names[0], oci.config.digest.clone(), "digests/oci"),
        (&names[1], docker.config.digest.clone(), "digests/docker"),
        (
            &names[2],
            multi
                .child(&format!("linux/{engine_arch}"))
                .config
                .digest
                .clone(),
            "digests/multi",
        ),
    ];
    for (name, id, repo) in &expected {
        let source = registry_manifest(&addr, repo, "1", None).digest;
        let i = assert_loaded(&dockerd, name, id);
        let repo_digests: Vec<&str> = i["RepoDigests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        assert_eq!(repo_digests.len(), 1, "{name}: {repo_digests:?}");
        let (host_repo, digest) = repo_digests[0].split_once('@').unwrap();
        assert_eq!(
            digest, source,
            "{name}: RepoDigests carries the source digest"
        );
        assert!(
            host_repo.starts_with("127.0.0.1:") && host_repo.ends_with(&format!("/{repo}")),
            "{name}: pulled from airlock's loopback server: {host_repo}"
        );
        let s = summary_image(&summary, name);
        assert_eq!(s["repo_digest"], repo_digests[0], "{name}");
        assert_eq!(s["source_digest"], source, "{name}");
    }
    assert_eq!(
        registry_manifest(&addr, "digests/multi", "1", None).digest,
        multi.index.digest,
        "the multi-platform name is pulled by its index digest"
    );
    // The loopback server is gone with the command.
    let port = summary_image(&summary, &names[0])["repo_digest"]
        .as_str()
        .unwrap()
        .split_once('/')
        .unwrap()
        .0
        .to_string();
    assert!(
        std::net::TcpStream::connect(&port).is_err(),
        "{port} still answers"
    );
}
