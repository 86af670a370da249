//! Independent readers of airlock's bundles (skopeo, umoci), and the shipped fixtures:
//! `save` from `oci:fixtures/oci` (what the README's demo does) and from the legacy
//! `docker save` fixture, and a check that the committed fixtures are exactly what the
//! builder makes.

mod support;

use std::fs;
use std::path::Path;

use serde_json::Value;
use support::cli::{Bundle, airlock, blob_path, repo_root, tool_ok};
use support::images::{
    self, FIXTURE_ARCHIVE_TAG, FIXTURE_HELLO, FIXTURE_HELLO_LATEST, FIXTURE_MULTI, FIXTURE_WORLD,
    Flavor, ImageSpec, PushOptions, exe, file, index, layer, push, random_file, skopeo,
};
use support::registry::TestRegistry;
use support::registry_api::registry_manifest;

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

#[test]
fn skopeo_and_umoci_read_the_oci_side_of_a_bundle() {
    let reg = TestRegistry::start();
    let addr = reg.addr();
    let base = layer(&[file("etc/os-release", "ID=readers\n")]);
    let image = ImageSpec::new("linux/amd64")
        .layer(&base)
        .layer(&layer(&[
            exe("bin/hello", "#!/bin/sh\necho read me\n"),
            random_file("opt/data.bin", 5, 16 * 1024),
        ]))
        .build();
    let multi = index(
        Flavor::Oci,
        ["linux/amd64", "linux/arm64"]
            .iter()
            .enumerate()
            .map(|(i, p)| {
                ImageSpec::new(p)
                    .layer(&base)
                    .layer(&layer(&[exe(
                        "bin/arch",
                        format!("#!/bin/sh\necho {p} {i}\n"),
                    )]))
                    .build()
            })
            .collect(),
    );
    let keep = PushOptions::default();
    push(&image, &format!("{addr}/readers/app:1.0"), &keep);
    push(&multi, &format!("{addr}/readers/multi:2.0"), &keep);
    let app_served = registry_manifest(&addr, "readers/app", "1.0", None);
    let multi_served = registry_manifest(&addr, "readers/multi", "2.0", None);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("readers.tar");
    let out_s = out.to_str().unwrap();
    airlock(&[
        "save",
        &format!("{addr}/readers/app:1.0"),
        &format!("{addr}/readers/multi:2.0"),
        "-o",
        out_s,
    ])
    .ok();

    // skopeo reads the tar as an OCI archive, by the tag in org.opencontainers.image.ref.name.
    let inspect: Value =
        serde_json::from_str(&skopeo(&["inspect", &format!("oci-archive:{out_s}:1.0")]))
            .expect("skopeo inspect JSON");
    assert_eq!(inspect["Digest"], app_served.digest, "{inspect:#}");
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(strings(&inspect["Layers"]), {
        let mut v: Vec<String> = image
            .layers
            .iter()
            .map(|l| l.digest().to_string())
            .collect();
        v.sort();
        v
    });
    let raw = skopeo(&["inspect", "--raw", &format!("oci-archive:{out_s}:2.0")]);
    assert_eq!(
        raw.as_bytes(),
        &multi_served.bytes[..],
        "the index, byte-exact"
    );
    // A full copy out of the bundle back into a registry keeps every digest.
    skopeo(&[
        "--insecure-policy",
        "copy",
        "--quiet",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--dest-no-creds",
        &format!("oci-archive:{out_s}:2.0"),
        &format!("docker://{addr}/copied/multi:2.0"),
    ]);
    assert_eq!(
        registry_manifest(&addr, "copied/multi", "2.0", None).digest,
        multi_served.digest
    );

    // umoci needs a directory: extract the bundle's tar and read it as a layout.
    let layout = dir.path().join("layout");
    Bundle::open(&out).extract_to(&layout);
    let layout_s = layout.to_str().unwrap();
    let tags = tool_ok("umoci", "umoci", &["ls", "--layout", layout_s]);
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort();
    assert_eq!(tags, ["1.0", "2.0"]);
    let stat: Value = serde_json::from_str(&tool_ok(
        "umoci",
        "umoci",
        &["stat", "--image", &format!("{layout_s}:1.0"), "--json"],
    ))
    .expect("umoci stat JSON");
    let history = stat["history"].as_array().expect("history");
    assert_eq!(history.len(), 2);
    for (h, l) in history.iter().zip(&image.layers) {
        assert_eq!(h["layer"]["digest"], l.digest());
        assert_eq!(h["diff_id"], l.diff_id);
    }
    let unpacked = dir.path().join("unpacked");
    tool_ok(
        "umoci",
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{layout_s}:1.0"),
            unpacked.to_str().unwrap(),
        ],
    );
    assert_eq!(
        fs::read_to_string(unpacked.join("rootfs/bin/hello")).unwrap(),
        "#!/bin/sh\necho read me\n"
    );
    assert_eq!(
        fs::read(unpacked.join("rootfs/opt/data.bin")).unwrap(),
        images::seeded_bytes(5, 16 * 1024)
    );
}

#[test]
fn save_from_the_shipped_oci_fixtures_then_verify_and_ls() {
    let f = images::fixtures();
    let root = repo_root();
    let dir = tempfile::tempdir().unwrap();
    for out_name in ["fixtures.tar.zst", "fixtures.tar"] {
        let out = dir.path().join(out_name);
        let out_s = out.to_str().unwrap();
        let run = support::cli::cmd(&["save", "oci:fixtures/oci", "-o", out_s])
            .current_dir(&root)
            .run()
            .ok();
        // Not a TTY: plain lines, no bars, no escape codes.
        assert!(
            !run.stderr.contains('\r') && !run.stderr.contains('\x1b'),
            "progress without a TTY is plain lines: {run}"
        );
        let b = Bundle::open(&out);
        b.assert_sound();
        b.assert_small_entries_first();

        let expected = [
            (FIXTURE_HELLO, &f.hello.manifest.digest),
            (FIXTURE_HELLO_LATEST, &f.hello.manifest.digest),
            (FIXTURE_WORLD, &f.world.manifest.digest),
            (FIXTURE_MULTI, &f.multi.index.digest),
        ];
        for (name, digest) in expected {
            assert_eq!(b.toc_image(name)["digest"], **digest, "{name}");
            assert_eq!(b.index_entry(name)["digest"], **digest, "{name}");
        }
        assert_eq!(b.toc()["images"].as_array().unwrap().len(), 4);
        // Every blob of the fixtures, byte for byte, each once.
        let mut all: Vec<&images::Blob> = f.hello.blobs();
        all.extend(f.world.blobs());
        all.extend(f.multi.blobs());
        for blob in &all {
            assert_eq!(b.blob(&blob.digest), &blob.bytes[..], "{}", blob.digest);
        }
        let mut unique: Vec<&str> = all.iter().map(|b| b.digest.as_str()).collect();
        unique.sort();
        unique.dedup();
        assert_eq!(b.blob_digests().len(), unique.len());
        assert_eq!(
            b.count(&blob_path(f.hello.layers[0].digest())),
            1,
            "the shared base layer is stored once"
        );
        // docker load side: RepoTags in familiar form, amd64 config for the index.
        let mut repo_tags = Vec::new();
        for e in b.docker_manifest().as_array().unwrap() {
            repo_tags.extend(strings(&e["RepoTags"]));
            if e["RepoTags"][0] == FIXTURE_MULTI {
                assert_eq!(
                    e["Config"],
                    blob_path(&f.multi.child("linux/amd64").config.digest)
                );
            }
        }
        repo_tags.sort();
        let mut want = vec![
            FIXTURE_HELLO,
            FIXTURE_HELLO_LATEST,
            FIXTURE_MULTI,
            FIXTURE_WORLD,
        ];
        want.sort();
        assert_eq!(repo_tags, want);

        airlock(&["verify", out_s]).ok();
        let report = airlock(&["verify", out_s, "--json"]).ok().json();
        // -q: nothing but errors (and the JSON report asked for).
        let quiet = airlock(&["-q", "verify", out_s]).ok();
        assert_eq!(
            (quiet.stdout.trim(), quiet.stderr.trim()),
            ("", ""),
            "{quiet}"
        );
        let quiet = airlock(&["-q", "verify", out_s, "--json"]).ok();
        assert_eq!(quiet.json()["ok"], true, "{quiet}");
        assert_eq!(report["ok"], true);
        assert_eq!(report["images"], 4);
        assert_eq!(report["blobs"], unique.len());

        let ls = airlock(&["ls", out_s, "--json"]).ok().json();
        assert_eq!(
            ls["compression"],
            if out_name.ends_with(".zst") {
                "zstd"
            } else {
                "none"
            }
        );
        let multi = ls["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == FIXTURE_MULTI)
            .expect("multi in ls");
        assert_eq!(
            strings(&multi["platforms"]),
            ["linux/amd64", "linux/arm64/v8"]
        );
        assert_eq!(multi["source"], "oci:fixtures/oci");
        let human = airlock(&["ls", out_s]).ok();
        for name in [FIXTURE_HELLO, FIXTURE_WORLD, FIXTURE_MULTI] {
            assert!(human.stdout.contains(name), "ls shows {name}: {human}");
        }
    }
    // -q save: silent on success, and the bundle is the same set of blobs.
    let quiet_out = dir.path().join("quiet.tar");
    let quiet = support::cli::cmd(&[
        "-q",
        "save",
        "oci:fixtures/oci",
        "-o",
        quiet_out.to_str().unwrap(),
    ])
    .current_dir(&root)
    .run()
    .ok();
    assert_eq!(
        (quiet.stdout.trim(), quiet.stderr.trim()),
        ("", ""),
        "{quiet}"
    );
    let mut a = Bundle::open(&quiet_out).blob_digests();
    let mut b = Bundle::open(dir.path().join("fixtures.tar")).blob_digests();
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

#[test]
fn save_from_the_shipped_docker_archive_fixture_keeps_the_image_id() {
    let f = images::fixtures();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("legacy.tar");
    let archive = repo_root().join("fixtures/docker-archive/legacy.tar");
    airlock(&[
        "save",
        &format!("docker-archive:{}", archive.display()),
        "-o",
        out.to_str().unwrap(),
    ])
    .ok();
    let b = Bundle::open(&out);
    b.assert_sound();
    let name = FIXTURE_ARCHIVE_TAG;
    let t = b.toc_image(name);
    // The layers were uncompressed: airlock gzips them, so the manifest is new, but
    // the config (the image ID) and the diff IDs are the archive's.
    assert_eq!(t["docker"]["config"], f.legacy.config.digest, "{t:#}");
    assert_eq!(b.blob(&f.legacy.config.digest), &f.legacy.config.bytes[..]);
    let manifest: Value = serde_json::from_slice(b.blob(t["digest"].as_str().unwrap())).unwrap();
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 2);
    for (l, built) in manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&f.legacy.layers)
    {
        let mut plain = Vec::new();
        use std::io::Read;
        flate2::read::GzDecoder::new(b.blob(l["digest"].as_str().unwrap()))
            .read_to_end(&mut plain)
            .expect("a gzip layer");
        assert_eq!(images::sha256(&plain), built.diff_id);
    }
    airlock(&["verify", out.to_str().unwrap()]).ok();
}

fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root).sort_by_file_name() {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            out.push((rel, fs::read(e.path()).unwrap()));
        }
    }
    out
}

#[test]
fn fixtures_are_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    images::write_fixtures(dir.path());
    for sub in ["oci", "docker-archive"] {
        let want = tree(&dir.path().join(sub));
        let have = tree(&repo_root().join("fixtures").join(sub));
        let names = |t: &[(String, Vec<u8>)]| t.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&have),
            names(&want),
            "fixtures/{sub} differs from the builder: run `cargo run --example make_fixtures`"
        );
        for ((n, a), (_, b)) in have.iter().zip(&want) {
            assert!(
                a == b,
                "fixtures/{sub}/{n} differs from the builder: run `cargo run --example make_fixtures`"
            );
        }
    }
    // The committed layout is itself a valid OCI layout that skopeo can read.
    let hello = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci:{}:1.0", repo_root().join("fixtures/oci").display()),
    ]);
    assert_eq!(
        images::sha256(hello.as_bytes()),
        images::fixtures().hello.manifest.digest
    );
}
