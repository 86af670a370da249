//! A split bundle (`save --split`) round-trips through `verify`, `push` and `load`
//! exactly like the same bundle in one file: the readers see one stream whichever part
//! or index they are given.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use support::cli::{Bundle, airlock, cmd};
use support::registry::TestRegistry;
use support::registry_api::registry_digest;

fn save(out: &Path, split: Option<&str>) {
    let out = out.to_str().unwrap();
    let mut args = vec!["save", "oci:fixtures/oci", "-o", out, "--no-progress"];
    if let Some(size) = split {
        args.extend(["--split", size]);
    }
    cmd(&args).current_dir(support::cli::repo_root()).run().ok();
}

/// Every entry of a plain tar, by name.
fn tar_entries(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let b = Bundle::open(path);
    b.names()
        .into_iter()
        .map(|n| (n.to_string(), b.entry(n).to_vec()))
        .collect()
}

#[test]
fn split_bundle_verifies_pushes_and_loads_like_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.tar.zst");
    let split = dir.path().join("split.tar.zst");
    save(&whole, None);
    save(&split, Some("48K"));

    let first = dir.path().join("split.tar.zst.000");
    let index = dir.path().join("split.tar.zst.parts.json");
    assert!(first.exists() && index.exists());
    assert!(
        dir.path().join("split.tar.zst.002").exists(),
        "the fixtures make at least three 48 KiB parts"
    );
    assert!(!split.exists(), "no file under the base name when split");

    // verify accepts the first part, the index and the base name.
    for given in [&first, &index, &split] {
        let v = airlock(&["verify", given.to_str().unwrap(), "--json"])
            .ok()
            .json();
        assert_eq!(v["ok"], true, "{v:#}");
        assert_eq!(v["blobs"], 14, "{v:#}");
    }

    // push from the first part: every tag lands with the bundle's digest.
    let reg = TestRegistry::start();
    let pushed = airlock(&[
        "push",
        first.to_str().unwrap(),
        &reg.addr(),
        "--json",
        "--no-progress",
    ])
    .ok()
    .json();
    let images = pushed["images"].as_array().unwrap();
    assert_eq!(images.len(), 4, "{pushed:#}");
    let ls = airlock(&["ls", split.to_str().unwrap(), "--json"])
        .ok()
        .json();
    for image in ls["images"].as_array().unwrap() {
        let name = image["name"].as_str().unwrap();
        // Fixture names are example.com/<repo>:<tag>; the target drops the host.
        let (repo, tag) = name
            .strip_prefix("example.com/")
            .unwrap()
            .rsplit_once(':')
            .unwrap();
        assert_eq!(
            registry_digest(&reg.addr(), repo, tag),
            image["digest"].as_str().unwrap(),
            "{name}"
        );
    }

    // load -o from the split bundle writes the same docker-load archive as from the whole one.
    let from_split = dir.path().join("from-split.tar");
    let from_whole = dir.path().join("from-whole.tar");
    airlock(&[
        "load",
        index.to_str().unwrap(),
        "-o",
        from_split.to_str().unwrap(),
        "--no-progress",
    ])
    .ok();
    airlock(&[
        "load",
        whole.to_str().unwrap(),
        "-o",
        from_whole.to_str().unwrap(),
        "--no-progress",
    ])
    .ok();
    let (a, b) = (tar_entries(&from_split), tar_entries(&from_whole));
    assert!(a.contains_key("manifest.json"));
    assert_eq!(a, b, "the same entries with the same bytes");

    // A missing middle part stops push and load before they touch anything.
    std::fs::remove_file(dir.path().join("split.tar.zst.001")).unwrap();
    let empty = TestRegistry::start();
    let refused = airlock(&[
        "push",
        first.to_str().unwrap(),
        &empty.addr(),
        "--no-progress",
    ])
    .expect_code(1);
    assert!(refused.output().contains("split.tar.zst.001"), "{refused}");
    let refused = airlock(&[
        "load",
        first.to_str().unwrap(),
        "-o",
        dir.path().join("x.tar").to_str().unwrap(),
    ])
    .expect_code(1);
    assert!(refused.output().contains("split.tar.zst.001"), "{refused}");
    assert!(!dir.path().join("x.tar").exists());
}
