//! `airlock save` from a real `docker-registry`, then `verify` and `ls` of what it wrote.
//!
//! Every test builds its images with the deterministic builder, puts them into a fresh
//! registry with the real `skopeo copy` (so the input never comes from airlock), saves
//! them with the airlock binary, and checks the bundle with an independent tar/zstd
//! reader against the registry's own answers (`Docker-Content-Digest`, bytes).

mod support;

use std::fs;
use std::sync::LazyLock;

use serde_json::Value;
use support::cli::{
    Bundle, airlock, blob_path, cmd, copy_with_flipped_byte, dir_listing, docker_config_with_auth,
    tool_ok,
};
use support::corpus::{Corpus, app_layer, base_layer, passwd};
use support::images::{
    DOCKER_CONFIG, DOCKER_LIST, DOCKER_MANIFEST, Flavor, Image, ImageSpec, OCI_INDEX, OCI_MANIFEST,
    PushOptions, exe, layer, push, random_file,
};
use support::registry::TestRegistry;
use support::registry_api::registry_manifest;

const V2S2: PushOptions<'static> = PushOptions {
    format: Some("v2s2"),
    creds: None,
};
const KEEP: PushOptions<'static> = PushOptions {
    format: None,
    creds: None,
};

/// This file's images: a base layer they all share (os-release, passwd) and an 8 KiB
/// app layer per seed.
static IMAGES: LazyLock<Corpus> = LazyLock::new(|| {
    Corpus::new(base_layer("airlock-test", &[passwd()]), |seed| {
        app_layer(seed, 8 * 1024)
    })
});

fn strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect();
    out.sort();
    out
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    out.sort();
    out
}

/// `verify` (human and JSON) says the bundle is sound.
fn assert_verifies(bundle: &std::path::Path) {
    let bundle = bundle.to_str().unwrap();
    airlock(&["verify", bundle]).ok();
    let report = airlock(&["verify", bundle, "--json"]).ok().json();
    assert_eq!(report["ok"], true, "verify --json: {report:#}");
    assert_eq!(
        report["findings"].as_array().map(Vec::len),
        Some(0),
        "verify --json findings: {report:#}"
    );
}

/// The `manifest.json` entries whose RepoTags hold `tag`.
fn docker_entry(bundle: &Bundle, tag: &str) -> Value {
    let m = bundle.docker_manifest();
    let hits: Vec<&Value> = m
        .as_array()
        .expect("manifest.json array")
        .iter()
        .filter(|e| {
            e["RepoTags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|x| x == tag))
        })
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "entries of manifest.json tagged {tag}: {m:#}"
    );
    hits[0].clone()
}

#[test]
fn docker_v2s2_image_is_saved_byte_exact_and_verifies() {
    let reg = TestRegistry::start();
    let addr = reg.addr();
    let image = IMAGES.image("linux/amd64", 10);
    push(&image, &format!("{addr}/app:1"), &V2S2);
    let served = registry_manifest(&addr, "app", "1", None);
    assert_eq!(served.content_type, DOCKER_MANIFEST, "skopeo pushed v2s2");

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle.tar");
    let name = format!("{addr}/app:1");
    airlock(&["save", &name, "-o", out.to_str().unwrap()]).ok();
    assert_eq!(
        dir_listing(dir.path()),
        ["bundle.tar"],
        "only the bundle is left"
    );

    let b = Bundle::open(&out);
    b.assert_sound();
    b.assert_small_entries_first();
    b.assert_matches_registry(&addr, None);

    // index.json: one descriptor, the registry's manifest, with both names.
    let index = b.index();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index:#}");
    let d = b.index_entry(&name);
    assert_eq!(d["digest"], served.digest);
    assert_eq!(d["mediaType"], DOCKER_MANIFEST);
    assert_eq!(d["size"], served.bytes.len());
    assert_eq!(d["annotations"]["org.opencontainers.image.ref.name"], "1");

    // Blobs: the served manifest, the config and layers byte for byte, nothing else.
    let manifest: Value = serde_json::from_slice(&served.bytes).unwrap();
    let config = manifest["config"]["digest"].as_str().unwrap();
    assert_eq!(config, image.config.digest, "skopeo kept the config bytes");
    assert_eq!(manifest["config"]["mediaType"], DOCKER_CONFIG);
    assert_eq!(b.blob(config), &image.config.bytes[..]);
    for l in &image.layers {
        assert_eq!(b.blob(l.digest()), &l.gz.bytes[..], "layer {}", l.digest());
    }
    let mut expected = vec![served.digest.clone(), config.to_string()];
    expected.extend(image.layers.iter().map(|l| l.digest().to_string()));
    expected.sort();
    let mut have = b.blob_digests();
    have.sort();
    assert_eq!(have, expected, "the bundle's blobs");

    // The docker-save side.
    let entry = docker_entry(&b, &name);
    assert_eq!(entry["Config"], blob_path(config));
    let layers: Vec<String> = image.layers.iter().map(|l| blob_path(l.digest())).collect();
    assert_eq!(entry["Layers"], serde_json::json!(layers));
    let repositories = b.json("repositories");
    assert!(
        repositories[format!("{addr}/app")]["1"].is_string(),
        "repositories names {addr}/app:1: {repositories:#}"
    );

    // The table of contents.
    let t = b.toc_image(&name);
    assert_eq!(t["source"], name);
    assert_eq!(t["digest"], served.digest);
    assert_eq!(t["media_type"], DOCKER_MANIFEST);
    assert_eq!(strings(&t["platforms"]), ["linux/amd64"]);
    let size: u64 = served.bytes.len() as u64
        + image.config.size()
        + image.layers.iter().map(|l| l.gz.size()).sum::<u64>();
    assert_eq!(t["size"], size, "size of the unique blobs of {name}");
    assert_eq!(t["docker"]["manifest"], served.digest);
    assert_eq!(t["docker"]["config"], image.config.digest);
    assert_eq!(t["docker"]["platform"], "linux/amd64");
    assert!(t.get("source_digest").is_none(), "{t:#}");

    assert_verifies(&out);

    let ls = airlock(&["ls", out.to_str().unwrap(), "--json"])
        .ok()
        .json();
    assert_eq!(ls["compression"], "none");
    assert_eq!(ls["format_version"], 1);
    assert_eq!(ls["file_size"], fs::metadata(&out).unwrap().len());
    assert_eq!(ls["blob_count"], 4);
    assert_eq!(ls["blob_bytes"], size);
    assert_eq!(ls["images"][0]["name"], name);
    assert_eq!(ls["images"][0]["digest"], served.digest);
    assert_eq!(strings(&ls["images"][0]["platforms"]), ["linux/amd64"]);
    let human = airlock(&["ls", out.to_str().unwrap()]).ok();
    assert!(human.stdout.contains(&name), "ls names the image: {human}");
}

#[test]
fn oci_image_with_a_multi_mib_layer_saves_to_zstd_and_verifies() {
    let reg = TestRegistry::start();
    let addr = reg.addr();
    // 6 MiB of incompressible bytes: the gzip layer is as big, so the bundle's zstd
    // stream spans many chunks.
    let big = layer(&[random_file("data/big.bin", 42, 6 * 1024 * 1024)]);
    let image = ImageSpec::new("linux/amd64")
        .layer(&IMAGES.base)
        .layer(&big)
        .build();
    push(&image, &format!("{addr}/big:1"), &KEEP);
    let served = registry_manifest(&addr, "big", "1", None);
    assert_eq!(served.content_type, OCI_MANIFEST);
    assert_eq!(
        served.digest, image.manifest.digest,
        "the registry kept our bytes"
    );

    let dir = tempfile::tempdir().unwrap();
    let zst = dir.path().join("bundle.tar.zst");
    let name = format!("{addr}/big:1");
    airlock(&["save", &name, "-o", zst.to_str().unwrap()]).ok();
    let raw = fs::read(&zst).unwrap();
    assert_eq!(&raw[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd magic");

    let b = Bundle::open(&zst);
    b.assert_sound();
    b.assert_small_entries_first();
    b.assert_matches_registry(&addr, None);
    assert_eq!(b.index_entry(&name)["mediaType"], OCI_MANIFEST);
    assert_eq!(
        b.blob(big.digest()),
        &big.gz.bytes[..],
        "the big layer, byte-exact"
    );
    assert_eq!(b.toc_image(&name)["media_type"], OCI_MANIFEST);

    // The reference zstd tool reads the whole stream to the same tar.
    let plain = dir.path().join("plain.tar");
    tool_ok(
        "zstd",
        "zstd",
        &[
            "-q",
            "-d",
            zst.to_str().unwrap(),
            "-o",
            plain.to_str().unwrap(),
        ],
    );
    assert_eq!(
        fs::read(&plain).unwrap(),
        support::cli::bundle_tar_bytes(&zst),
        "zstd -d gives the same tar"
    );

    assert_verifies(&zst);
    let ls = airlock(&["ls", zst.to_str().unwrap(), "--json"])
        .ok()
        .json();
    assert_eq!(ls["compression"], "zstd");
    assert_eq!(ls["images"][0]["digest"], image.manifest.digest);

    // A truncated copy is not sound.
    let cut = dir.path().join("cut.tar.zst");
    fs::write(&cut, &raw[..raw.len() * 2 / 3]).unwrap();
    let r = airlock(&["verify", cut.to_str().unwrap()]);
    assert_eq!(r.code, Some(1), "verify of a truncated bundle: {r}");
}

#[test]
fn multi_arch_indexes_are_saved_whole_with_their_digests() {
    let reg = TestRegistry::start();
    let addr = reg.addr();
    let oci = IMAGES.two_platform_index(Flavor::Oci, 20);
    push(&oci, &format!("{addr}/multi:oci"), &KEEP);
    let docker = IMAGES.two_platform_index(Flavor::Oci, 30);
    push(&docker, &format!("{addr}/multi:docker"), &V2S2);
    let oci_served = registry_manifest(&addr, "multi", "oci", None);
    let docker_served = registry_manifest(&addr, "multi", "docker", None);
    assert_eq!(oci_served.digest, oci.index.digest);
    assert_eq!(
        docker_served.content_type, DOCKER_LIST,
        "skopeo pushed a manifest list"
    );

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("multi.tar");
    let oci_name = format!("{addr}/multi:oci");
    let docker_name = format!("{addr}/multi:docker");
    airlock(&["save", &oci_name, &docker_name, "-o", out.to_str().unwrap()]).ok();
    let b = Bundle::open(&out);
    b.assert_sound();
    b.assert_small_entries_first();
    b.assert_matches_registry(&addr, None);

    for (name, served, built, media_type) in [
        (&oci_name, &oci_served, &oci, OCI_INDEX),
        (&docker_name, &docker_served, &docker, DOCKER_LIST),
    ] {
        let d = b.index_entry(name);
        assert_eq!(d["digest"], served.digest, "{name} keeps the index digest");
        assert_eq!(d["mediaType"], media_type);
        assert_eq!(b.blob(&served.digest), &served.bytes[..]);
        // Every child, with its config and layers.
        let idx: Value = serde_json::from_slice(&served.bytes).unwrap();
        let children = idx["manifests"].as_array().unwrap();
        assert_eq!(children.len(), 2);
        for c in children {
            let m: Value = serde_json::from_slice(b.blob(c["digest"].as_str().unwrap())).unwrap();
            assert!(b.has_blob(m["config"]["digest"].as_str().unwrap()));
            for l in m["layers"].as_array().unwrap() {
                assert!(
                    b.has_blob(l["digest"].as_str().unwrap()),
                    "{name}: layer {l}"
                );
            }
        }
        let t = b.toc_image(name);
        assert_eq!(t["digest"], served.digest);
        assert_eq!(t["media_type"], media_type);
        assert_eq!(strings(&t["platforms"]), ["linux/amd64", "linux/arm64"]);
        assert!(t.get("source_digest").is_none(), "{t:#}");
        // docker load gets the linux/amd64 child.
        let amd64_config = &built.child("linux/amd64").config.digest;
        assert_eq!(docker_entry(&b, name)["Config"], blob_path(amd64_config));
        assert_eq!(t["docker"]["config"], *amd64_config);
        assert_eq!(t["docker"]["platform"], "linux/amd64");
    }
    assert_verifies(&out);
    let ls = airlock(&["ls", out.to_str().unwrap(), "--json"])
        .ok()
        .json();
    let images = ls["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    for i in images {
        assert_eq!(strings(&i["platforms"]), ["linux/amd64", "linux/arm64"]);
    }
}

#[test]
fn platform_filter_keeps_one_child_and_records_the_source_digest() {
    let reg = TestRegistry::start();
    let addr = reg.addr();
    let idx = IMAGES.two_platform_index(Flavor::Oci, 40);
    push(&idx, &format!("{addr}/multi:1"), &KEEP);
    let served = registry_manifest(&addr, "multi", "1", None);
    let arm = idx.child("linux/arm64");
    let amd = idx.child("linux/amd64");

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("arm.tar");
    let name = format!("{addr}/multi:1");
    airlock(&[
        "save",
        &name,
        "--platform",
        "linux/arm64",
        "--docker-platform",
        "linux/arm64",
        "-o",
        out.to_str().unwrap(),
    ])
    .ok();
    let b = Bundle::open(&out);
    b.assert_sound();
    b.assert_matches_registry(&addr, None);

    // Only the arm64 child is there.
    for blob in arm.blobs() {
        assert!(b.has_blob(&blob.digest), "arm64 blob {}", blob.digest);
    }
    assert!(!b.has_blob(&amd.manifest.digest), "amd64 manifest dropped");
    assert!(!b.has_blob(&amd.config.digest), "amd64 config dropped");
    assert!(
        !b.has_blob(amd.layers[1].digest()),
        "amd64-only layer dropped"
    );

    let t = b.toc_image(&name);
    assert_eq!(strings(&t["platforms"]), ["linux/arm64"]);
    assert_eq!(t["source_digest"], served.digest, "{t:#}");
    assert_ne!(t["digest"], served.digest, "{t:#}");
    // One platform left: the name points at that platform's own manifest (a digest the
    // source serves too), and the note says so.
    let note = t["note"].as_str().unwrap_or_default();
    assert!(
        note.contains("--platform linux/arm64") && note.contains("that platform's manifest"),
        "the note says why the digest changed: {t:#}"
    );
    let root = t["digest"].as_str().unwrap();
    assert_eq!(root, arm.manifest.digest, "{t:#}");
    assert_eq!(b.index_entry(&name)["digest"], root);
    assert_eq!(
        docker_entry(&b, &name)["Config"],
        blob_path(&arm.config.digest)
    );
    assert_eq!(b.toc()["docker_platform"], "linux/arm64");

    assert_verifies(&out);
    let ls = airlock(&["ls", out.to_str().unwrap(), "--json"])
        .ok()
        .json();
    assert_eq!(ls["docker_platform"], "linux/arm64");
    assert_eq!(ls["images"][0]["source_digest"], served.digest);
    assert!(ls["images"][0]["note"].is_string());
    let human = airlock(&["ls", out.to_str().unwrap()]).ok();
    assert!(
        human.stdout.contains(&served.digest[7..19]) || human.stdout.contains(&served.digest),
        "ls tells the source digest plainly: {human}"
    );
}

#[test]
fn images_sharing_layers_store_each_blob_once() {
    let reg = TestRegistry::start();
    let addr = reg.addr();
    let base = IMAGES.base.clone();
    let shared = layer(&[random_file("usr/lib/shared.bin", 7, 256 * 1024)]);
    let a = ImageSpec::new("linux/amd64")
        .layer(&base)
        .layer(&shared)
        .layer(&layer(&[exe("bin/a", "#!/bin/sh\necho a\n")]))
        .build();
    let c = ImageSpec::new("linux/amd64")
        .layer(&base)
        .layer(&shared)
        .layer(&layer(&[exe("bin/c", "#!/bin/sh\necho c\n")]))
        .build();
    // One OCI, one Docker: the gzip layer bytes (and digests) are the same in both.
    push(&a, &format!("{addr}/team/a:1"), &KEEP);
    push(&c, &format!("{addr}/team/c:1"), &V2S2);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("shared.tar");
    let (na, nc) = (format!("{addr}/team/a:1"), format!("{addr}/team/c:1"));
    airlock(&["save", &na, &nc, "-o", out.to_str().unwrap()]).ok();
    let b = Bundle::open(&out);
    b.assert_sound();
    b.assert_matches_registry(&addr, None);
    for l in [&base, &shared] {
        assert_eq!(
            b.count(&blob_path(l.digest())),
            1,
            "{} stored once",
            l.digest()
        );
    }
    // 2 manifests + 2 configs + 2 shared layers + 2 own layers.
    assert_eq!(b.blob_digests().len(), 8, "{:?}", b.names());
    let toc = b.toc();
    assert_eq!(toc["blobs"].as_array().unwrap().len(), 8);
    for n in [&na, &nc] {
        let e = docker_entry(&b, n);
        assert_eq!(e["Layers"][0], blob_path(base.digest()));
        assert_eq!(e["Layers"][1], blob_path(shared.digest()));
    }
    assert_verifies(&out);
    let ls = airlock(&["ls", out.to_str().unwrap(), "--json"])
        .ok()
        .json();
    assert_eq!(ls["blob_count"], 8);
    let unique: u64 = toc["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["size"].as_u64().unwrap())
        .sum();
    assert_eq!(ls["blob_bytes"], unique);
    // Each image's own size counts the shared blobs too.
    let own = |i: &Image, manifest_len: u64| {
        manifest_len + i.config.size() + i.layers.iter().map(|l| l.gz.size()).sum::<u64>()
    };
    let ma = registry_manifest(&addr, "team/a", "1", None).bytes.len() as u64;
    let mc = registry_manifest(&addr, "team/c", "1", None).bytes.len() as u64;
    assert_eq!(b.toc_image(&na)["size"], own(&a, ma));
    assert_eq!(b.toc_image(&nc)["size"], own(&c, mc));
}

#[test]
fn one_image_with_three_tags_from_an_images_file() {
    let reg = TestRegistry::start();
    let addr = reg.addr();
    let image = IMAGES.image("linux/amd64", 50);
    let tags = ["1", "1.0", "latest"];
    for t in tags {
        push(&image, &format!("{addr}/app:{t}"), &V2S2);
    }
    let digest = registry_manifest(&addr, "app", "1", None).digest;

    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("images.txt");
    fs::write(
        &list,
        format!(
            "# release 1\n\n{addr}/app:1\n  \n# the same image again\n{addr}/app:1.0\n{addr}/app:latest\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("tags.tar");
    airlock(&[
        "save",
        "-f",
        list.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ])
    .ok();
    let b = Bundle::open(&out);
    b.assert_sound();
    b.assert_matches_registry(&addr, None);
    let names: Vec<String> = tags.iter().map(|t| format!("{addr}/app:{t}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();

    let toc = b.toc();
    let toc_names: Vec<String> = toc["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        {
            let mut v = toc_names.clone();
            v.sort();
            v
        },
        sorted(&refs)
    );
    for n in &names {
        assert_eq!(b.toc_image(n)["digest"], digest);
        assert_eq!(b.index_entry(n)["digest"], digest);
    }
    assert_eq!(b.index()["manifests"].as_array().unwrap().len(), 3);
    for (n, t) in names.iter().zip(tags) {
        assert_eq!(
            b.index_entry(n)["annotations"]["org.opencontainers.image.ref.name"],
            t
        );
    }
    let mut repo_tags: Vec<String> = Vec::new();
    for e in b.docker_manifest().as_array().unwrap() {
        assert_eq!(e["Config"], blob_path(&image.config.digest));
        repo_tags.extend(strings(&e["RepoTags"]));
    }
    repo_tags.sort();
    assert_eq!(repo_tags, sorted(&refs), "manifest.json RepoTags");
    assert_eq!(b.count(&blob_path(&digest)), 1, "one manifest blob");
    assert_eq!(b.blob_digests().len(), 4, "manifest, config, 2 layers");
    assert_verifies(&out);
}

#[test]
fn basic_auth_uses_docker_config_and_wrong_passwords_fail_cleanly() {
    let (user, pass) = ("airlock", "corr3ct-horse-battery");
    let reg = TestRegistry::start_with_basic_auth(user, pass);
    let addr = reg.addr();
    let image = IMAGES.image("linux/amd64", 60);
    push(
        &image,
        &format!("{addr}/private/app:1"),
        &PushOptions {
            format: None,
            creds: Some((user, pass)),
        },
    );
    let name = format!("{addr}/private/app:1");
    let dir = tempfile::tempdir().unwrap();

    // Good credentials from $DOCKER_CONFIG/config.json.
    let good = docker_config_with_auth(&addr, user, pass);
    let out = dir.path().join("auth.tar");
    let run = cmd(&["save", &name, "-o", out.to_str().unwrap()])
        .env("DOCKER_CONFIG", good.path())
        .run()
        .ok();
    assert!(
        !run.output().contains(pass),
        "the password is never printed: {run}"
    );
    let b = Bundle::open(&out);
    b.assert_sound();
    b.assert_matches_registry(&addr, Some((user, pass)));
    assert_eq!(b.toc_image(&name)["digest"], image.manifest.digest);
    assert!(
        !b.entries
            .iter()
            .any(|(_, data)| { data.windows(pass.len()).any(|w| w == pass.as_bytes()) }),
        "the password is not in the bundle"
    );
    assert_verifies(&out);

    // A wrong password: exit 1, the registry named, the password not shown, no bundle.
    let wrong_pass = "wr0ng-pa55word-xyz";
    let wrong = docker_config_with_auth(&addr, user, wrong_pass);
    let bad_dir = tempfile::tempdir().unwrap();
    let bad_out = bad_dir.path().join("auth.tar");
    let run = cmd(&["save", &name, "-o", bad_out.to_str().unwrap()])
        .env("DOCKER_CONFIG", wrong.path())
        .run()
        .expect_code(1);
    assert!(
        run.stderr.contains(&addr),
        "the message names the registry: {run}"
    );
    assert!(!run.output().contains(wrong_pass), "password leaked: {run}");
    assert!(
        dir_listing(bad_dir.path()).is_empty(),
        "nothing left behind"
    );

    // No credentials at all: also exit 1.
    let run = airlock(&["save", &name, "-o", bad_out.to_str().unwrap()]).expect_code(1);
    assert!(run.stderr.contains(&addr), "{run}");
    assert!(
        dir_listing(bad_dir.path()).is_empty(),
        "nothing left behind"
    );
}

#[test]
fn a_missing_image_fails_the_save_and_leaves_no_bundle() {
    let reg = TestRegistry::start();
    let addr = reg.addr();
    push(
        IMAGES.image("linux/amd64", 70),
        &format!("{addr}/app:1"),
        &KEEP,
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("missing.tar.zst");

    let missing = format!("{addr}/app:2");
    let run = airlock(&["save", &missing, "-o", out.to_str().unwrap()]).expect_code(1);
    assert!(
        run.stderr.contains(&missing),
        "the message quotes the reference: {run}"
    );
    assert!(
        dir_listing(dir.path()).is_empty(),
        "nothing left behind: {:?}",
        dir_listing(dir.path())
    );

    let no_repo = format!("{addr}/nothere:1");
    let run = airlock(&["save", &no_repo, "-o", out.to_str().unwrap()]).expect_code(1);
    assert!(run.stderr.contains(&no_repo), "{run}");

    // One good image does not make a partial bundle: the job fails as a whole.
    let good = format!("{addr}/app:1");
    let run = airlock(&["save", &good, &missing, "-o", out.to_str().unwrap()]).expect_code(1);
    assert!(run.stderr.contains(&missing), "{run}");
    assert!(
        dir_listing(dir.path()).is_empty(),
        "no partial bundle: {:?}",
        dir_listing(dir.path())
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.tar");
    let out = out.to_str().unwrap();
    let run = airlock(&["save", "Bad/Ref!", "-o", out]).expect_code(2);
    assert!(
        run.stderr.contains("Bad/Ref!"),
        "the message quotes the reference: {run}"
    );
    // No output named.
    airlock(&["save", "127.0.0.1:5000/app:1"]).expect_code(2);
    // A platform that is not os/arch.
    let run = airlock(&[
        "save",
        "127.0.0.1:5000/app:1",
        "--platform",
        "linux",
        "-o",
        out,
    ])
    .expect_code(2);
    assert!(run.stderr.contains("linux"), "{run}");
    // An unknown subcommand and an unknown flag.
    airlock(&["fly-away"]).expect_code(2);
    airlock(&["save", "--no-such-flag", "-o", out]).expect_code(2);
    assert!(dir_listing(dir.path()).is_empty());
    // verify of something that is not a bundle is a failed job, not a usage error.
    let junk = dir.path().join("junk.tar");
    fs::write(&junk, b"this is not a tar").unwrap();
    airlock(&["verify", junk.to_str().unwrap()]).expect_code(1);
    airlock(&["verify", dir.path().join("absent.tar").to_str().unwrap()]).expect_code(1);
}

#[test]
fn verify_names_the_broken_blob_and_the_images_it_breaks() {
    let reg = TestRegistry::start();
    let addr = reg.addr();
    let base = IMAGES.base.clone();
    let app = layer(&[random_file("opt/app.bin", 80, 64 * 1024)]);
    let one = ImageSpec::new("linux/amd64")
        .layer(&base)
        .layer(&app)
        .build();
    let other = IMAGES.image("linux/amd64", 81);
    push(&one, &format!("{addr}/one:1"), &V2S2);
    push(&other, &format!("{addr}/other:1"), &V2S2);
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.tar");
    let (n1, n2) = (format!("{addr}/one:1"), format!("{addr}/other:1"));
    airlock(&["save", &n1, &n2, "-o", good.to_str().unwrap()]).ok();
    assert_verifies(&good);

    let bad = dir.path().join("bad.tar");
    copy_with_flipped_byte(&good, &bad, &blob_path(app.digest()), 1000);
    let run = airlock(&["verify", bad.to_str().unwrap()]).expect_code(1);
    let text = run.output();
    assert!(
        text.contains(app.digest()) || text.contains(&app.digest()[7..]),
        "names the blob: {run}"
    );
    assert!(text.contains(&n1), "names the broken image: {run}");

    let run = airlock(&["verify", bad.to_str().unwrap(), "--json"]).expect_code(1);
    let report = run.json();
    assert_eq!(report["ok"], false);
    let findings = report["findings"].as_array().expect("findings");
    let hit = findings
        .iter()
        .find(|f| f["digest"] == app.digest())
        .unwrap_or_else(|| panic!("no finding for {}: {report:#}", app.digest()));
    let images = strings(&hit["images"]);
    assert!(images.contains(&n1), "{report:#}");
    assert!(
        !images.contains(&n2),
        "the other image is not affected: {report:#}"
    );
    assert!(
        hit["message"].is_string() && hit["kind"].is_string(),
        "{hit:#}"
    );

    // A flipped byte in a config is found as well, and blamed on its image only.
    let bad2 = dir.path().join("bad2.tar");
    copy_with_flipped_byte(&good, &bad2, &blob_path(&other.config.digest), 10);
    let report = airlock(&["verify", bad2.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json();
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["digest"] == other.config.digest && strings(&f["images"]).contains(&n2)),
        "{report:#}"
    );
}
