//! `docker load -i` of an uncompressed bundle on a real Docker engine (Debian's
//! docker.io 20.10, started for this test): every tag is there and every image ID is
//! the source's config digest. One engine for several images keeps the suite quick.

mod support;

use std::sync::LazyLock;

use serde_json::Value;
use support::cli::{Bundle, airlock};
use support::corpus::{Corpus, base_layer, opt_app_layer};
use support::dockerd::TestDockerd;
use support::images::{Flavor, PushOptions, push};
use support::registry::TestRegistry;
use support::registry_api::registry_manifest;

/// This file's images: a base layer they all share (os-release) and a 32 KiB app
/// layer per seed.
static IMAGES: LazyLock<Corpus> = LazyLock::new(|| {
    Corpus::new(base_layer("docker-load-test", &[]), |seed| {
        opt_app_layer(seed, 32 * 1024)
    })
});

#[test]
fn docker_load_of_a_bundle_keeps_tags_and_image_ids() {
    assert!(
        is_root(),
        "this test starts dockerd, which needs root (CI runs as root)"
    );
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
    push(&multi, &format!("{addr}/load/multi:1"), &v2s2);
    assert_eq!(
        registry_manifest(&addr, "load/oci", "1", None).digest,
        oci_image.manifest.digest
    );

    // (name, expected image ID)
    let expected: Vec<(String, String)> = vec![
        (
            format!("{addr}/load/docker:1"),
            docker_image.config.digest.clone(),
        ),
        (
            format!("{addr}/load/oci:1"),
            oci_image.config.digest.clone(),
        ),
        (format!("{addr}/load/tags:a"), tagged.config.digest.clone()),
        (format!("{addr}/load/tags:b"), tagged.config.digest.clone()),
        (format!("{addr}/load/tags:c"), tagged.config.digest.clone()),
        (
            format!("{addr}/load/multi:1"),
            multi.child("linux/amd64").config.digest.clone(),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("load.tar");
    let mut args: Vec<String> = vec!["save".into()];
    args.extend(expected.iter().map(|(n, _)| n.clone()));
    args.extend(["-o".into(), out.display().to_string()]);
    airlock(&args[..]).ok();
    Bundle::open(&out).assert_sound();
    airlock(&["verify", out.to_str().unwrap()]).ok();

    let dockerd = TestDockerd::start();
    let loaded = dockerd.docker_ok(&["load", "-i", out.to_str().unwrap()]);
    for (name, id) in &expected {
        assert!(
            loaded.contains(name.as_str()),
            "docker load reports {name}: {loaded}"
        );
        let inspect = dockerd.docker_ok(&["image", "inspect", name]);
        let inspect: Value = serde_json::from_str(&inspect).expect("inspect JSON");
        let i = &inspect[0];
        assert_eq!(i["Id"], *id, "image ID of {name}");
        assert!(
            i["RepoTags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|x| x == name.as_str())),
            "RepoTags of {name}: {i:#}"
        );
        assert_eq!(i["Architecture"], "amd64");
        assert_eq!(i["Os"], "linux");
    }
    // The three tags are one image.
    let inspect: Value = serde_json::from_str(&dockerd.docker_ok(&[
        "image",
        "inspect",
        &format!("{addr}/load/tags:a"),
    ]))
    .unwrap();
    let mut tags: Vec<String> = inspect[0]["RepoTags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        ["a", "b", "c"].map(|t| format!("{addr}/load/tags:{t}"))
    );
    // Layers arrive with their diff IDs (docker checks each against the config).
    let inspect: Value = serde_json::from_str(&dockerd.docker_ok(&[
        "image",
        "inspect",
        &format!("{addr}/load/docker:1"),
    ]))
    .unwrap();
    let layers: Vec<&str> = inspect[0]["RootFS"]["Layers"]
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
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
