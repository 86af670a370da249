//! `airlock serve` against real clients: images built here, written as an OCI layout,
//! saved with `airlock save` (as a `.tar.zst`, as split parts, as a plain `.tar`), then
//! served by the real binary on a free loopback port and read by `skopeo`, a real
//! Docker 20.10 engine and plain HTTP (`ureq`). The clients are the judges: digests
//! must equal the source's, Docker's image IDs the source configs.

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cli::{airlock, blob_path, copy_with_flip_in_raw_block, copy_with_flipped_byte};
use support::corpus::{Corpus, base_layer, data_layer};
use support::dockerd::{TestDockerd, assert_root};
use support::images::{Flavor, Image, Index, OciLayout, skopeo};
use support::serve::{Answer, Served, get, request};

/// This file's images: a shared base layer and a 300 KiB incompressible layer per seed
/// (several zstd frames, and across parts when split at 128 KiB).
static IMAGES: LazyLock<Corpus> = LazyLock::new(|| {
    Corpus::new(base_layer("airlock-serve-test", &[]), |seed| {
        data_layer(seed, 300 * 1024)
    })
});

/// The served content: an OCI image, a Docker schema 2 image and an OCI index.
struct Source {
    oci: Image,
    docker: Image,
    multi: Index,
}

static SOURCE: LazyLock<Source> = LazyLock::new(|| Source {
    oci: IMAGES.image("linux/amd64", 1),
    docker: IMAGES.two_platform_index(Flavor::Docker, 2).images[0].clone(),
    multi: IMAGES.two_platform_index(Flavor::Oci, 4),
});

/// Writes the source images as an OCI layout and saves it as `out` (with `extra` args).
fn save_bundle(dir: &Path, out: &Path, extra: &[&str]) {
    let layout = dir.join("layout");
    if !layout.exists() {
        let mut l = OciLayout::new();
        l.add(SOURCE.oci.clone(), "1", Some("example.com/serve/oci:1"));
        l.add(
            SOURCE.docker.clone(),
            "1",
            Some("example.com/serve/docker:1"),
        );
        l.add(SOURCE.multi.clone(), "3", Some("example.com/serve/multi:3"));
        l.write(&layout);
    }
    let mut args = vec![
        "save".to_string(),
        format!("oci:{}", layout.display()),
        "-o".into(),
        out.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    airlock(&args).ok();
}

/// Every blob of `root`'s graph that skopeo wrote into the OCI layout at `dir`, with the
/// layout's index naming `want` as the copied root.
fn assert_layout_holds(dir: &Path, want: &str, blobs: &[&support::images::Blob]) {
    let index: Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).expect("index.json")).unwrap();
    assert_eq!(index["manifests"][0]["digest"], want, "{index:#}");
    for b in blobs {
        let got = fs::read(dir.join(blob_path(&b.digest)))
            .unwrap_or_else(|e| panic!("{} missing from the copy: {e}", b.digest));
        assert_eq!(got, b.bytes, "{}", b.digest);
    }
}

/// skopeo inspect, list-tags and copy --all --preserve-digests from `served`.
fn check_with_skopeo(served: &Served, scratch: &Path) {
    let addr = &served.addr;
    let s = &*SOURCE;
    for (repo, tag, top) in [
        ("serve/oci", "1", &s.oci.manifest.digest),
        ("serve/docker", "1", &s.docker.manifest.digest),
        ("serve/multi", "3", &s.multi.index.digest),
    ] {
        let raw = skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{addr}/{repo}:{tag}"),
        ]);
        assert_eq!(
            support::images::sha256(raw.as_bytes()),
            *top,
            "{repo}:{tag} raw manifest"
        );
        let tags: Value = serde_json::from_str(&skopeo(&[
            "list-tags",
            "--tls-verify=false",
            &format!("docker://{addr}/{repo}"),
        ]))
        .unwrap();
        assert_eq!(tags["Tags"], serde_json::json!([tag]), "{tags:#}");
        let out = scratch.join(repo.replace('/', "_"));
        fs::create_dir_all(&out).unwrap();
        skopeo(&[
            "--insecure-policy",
            "copy",
            "--quiet",
            "--all",
            "--preserve-digests",
            "--src-tls-verify=false",
            &format!("docker://{addr}/{repo}:{tag}"),
            &format!("oci:{}:x", out.display()),
        ]);
        let blobs = match repo {
            "serve/oci" => s.oci.blobs(),
            "serve/docker" => s.docker.blobs(),
            _ => s.multi.blobs(),
        };
        assert_layout_holds(&out, top, &blobs);
    }
    let cfg: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--config",
        "--tls-verify=false",
        &format!("docker://{addr}/serve/oci:1"),
    ]))
    .unwrap();
    assert_eq!(cfg["architecture"], "amd64");
}

#[test]
fn skopeo_reads_a_served_zst_bundle_and_split_parts_with_every_digest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let zst = dir.path().join("b.tar.zst");
    save_bundle(dir.path(), &zst, &[]);
    let split = dir.path().join("s.tar.zst");
    save_bundle(dir.path(), &split, &["--split", "128K"]);
    assert!(dir.path().join("s.tar.zst.002").exists(), "several parts");

    let served = Served::start(&[&zst], &[]);
    check_with_skopeo(&served, &dir.path().join("from-zst"));
    drop(served);
    // The split bundle named by its first part.
    let served = Served::start(&[&dir.path().join("s.tar.zst.000")], &["-q"]);
    check_with_skopeo(&served, &dir.path().join("from-split"));
    assert_eq!(served.log(), "", "-q: no access log");
}

#[test]
fn http_answers_head_range_pagination_and_errors_as_distribution_does() {
    let dir = tempfile::tempdir().unwrap();
    let zst = dir.path().join("b.tar.zst");
    save_bundle(dir.path(), &zst, &[]);
    let served = Served::start(&[&zst], &["--prefix", "mirror"]);
    let addr = &served.addr;
    let s = &*SOURCE;

    let a = request("GET", addr, "/v2/", &[]);
    assert_eq!(a.status, 200);
    assert_eq!(
        a.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );

    // Manifests: stored bytes and type, by tag and by digest; HEAD has no body.
    let m = request("GET", addr, "/v2/mirror/serve/docker/manifests/1", &[]);
    assert_eq!(m.status, 200);
    assert_eq!(m.body.as_ref().unwrap(), &s.docker.manifest.bytes);
    assert_eq!(
        m.header("content-type"),
        Some(s.docker.manifest.media_type.as_str())
    );
    assert_eq!(
        m.header("docker-content-digest"),
        Some(s.docker.manifest.digest.as_str())
    );
    let path = format!("/v2/mirror/serve/multi/manifests/{}", s.multi.index.digest);
    let h = request("HEAD", addr, &path, &[]);
    assert_eq!(h.status, 200);
    assert_eq!(
        h.header("content-length"),
        Some(s.multi.index.size().to_string().as_str())
    );
    assert_eq!(h.body.unwrap(), b"");

    // Blobs: full, HEAD, ranges, unsatisfiable range.
    let layer = &s.oci.layers[1].gz;
    let bpath = format!("/v2/mirror/serve/oci/blobs/{}", layer.digest);
    let full = request("GET", addr, &bpath, &[]);
    assert_eq!(full.status, 200);
    assert_eq!(full.body.as_ref().unwrap(), &layer.bytes);
    let h = request("HEAD", addr, &bpath, &[]);
    assert_eq!(
        h.header("content-length"),
        Some(layer.size().to_string().as_str())
    );
    assert_eq!(
        h.header("docker-content-digest"),
        Some(layer.digest.as_str())
    );
    let size = layer.size();
    for (range, from, to) in [
        ("bytes=0-99".to_string(), 0, 99),
        (format!("bytes={}-", size - 10), size - 10, size - 1),
        ("bytes=-7".to_string(), size - 7, size - 1),
        ("bytes=200000-250000".to_string(), 200_000, 250_000),
    ] {
        let r = request("GET", addr, &bpath, &[("Range", &range)]);
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {from}-{to}/{size}").as_str())
        );
        assert_eq!(
            r.body.unwrap(),
            &layer.bytes[from as usize..=to as usize],
            "{range}"
        );
    }
    let r = request("GET", addr, &bpath, &[("Range", &format!("bytes={size}-"))]);
    assert_eq!(r.status, 416);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{size}").as_str())
    );

    // Catalog and tags, with pagination.
    let c = request("GET", addr, "/v2/_catalog", &[]);
    assert_eq!(
        c.json()["repositories"],
        serde_json::json!([
            "mirror/serve/docker",
            "mirror/serve/multi",
            "mirror/serve/oci"
        ])
    );
    let c = request("GET", addr, "/v2/_catalog?n=2", &[]);
    assert_eq!(
        c.json()["repositories"],
        serde_json::json!(["mirror/serve/docker", "mirror/serve/multi"])
    );
    let link = c.header("link").expect("Link header").to_string();
    assert_eq!(
        link,
        "</v2/_catalog?last=mirror%2Fserve%2Fmulti&n=2>; rel=\"next\""
    );
    let next = link.trim_start_matches('<').split('>').next().unwrap();
    let c = request("GET", addr, next, &[]);
    assert_eq!(
        c.json()["repositories"],
        serde_json::json!(["mirror/serve/oci"])
    );
    assert!(c.header("link").is_none());
    let t = request("GET", addr, "/v2/mirror/serve/multi/tags/list", &[]);
    assert_eq!(
        t.json(),
        serde_json::json!({"name": "mirror/serve/multi", "tags": ["3"]})
    );

    // Writes are refused; unknown things are distribution's errors.
    for (method, path) in [
        ("POST", "/v2/mirror/serve/oci/blobs/uploads/"),
        ("PUT", "/v2/mirror/serve/oci/manifests/2"),
        ("DELETE", bpath.as_str()),
        ("PATCH", "/v2/mirror/serve/oci/blobs/uploads/x"),
    ] {
        let a = request(method, addr, path, &[]);
        assert_eq!(a.status, 405, "{method} {path}");
        assert_eq!(a.error_code(), "UNSUPPORTED");
    }
    for (path, code) in [
        ("/v2/mirror/serve/oci/manifests/nope", "MANIFEST_UNKNOWN"),
        ("/v2/serve/oci/manifests/1", "NAME_UNKNOWN"),
        ("/v2/nobody/tags/list", "NAME_UNKNOWN"),
        (
            "/v2/mirror/serve/oci/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "BLOB_UNKNOWN",
        ),
    ] {
        let a = request("GET", addr, path, &[]);
        assert_eq!(a.status, 404, "{path}");
        assert_eq!(a.error_code(), code, "{path}");
    }
    let log = served.log();
    assert!(
        log.contains(&format!("\"GET {bpath} HTTP/1.1\" 200 {size}")),
        "access log:\n{log}"
    );
}

#[test]
fn a_damaged_blob_is_cut_off_and_named_and_verify_first_refuses_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("b.tar");
    save_bundle(dir.path(), &tar, &[]);
    let damaged = dir.path().join("damaged.tar");
    let layer = &SOURCE.oci.layers[1].gz;
    copy_with_flipped_byte(&tar, &damaged, &blob_path(&layer.digest), 1000);
    let served = Served::start(&[&damaged], &[]);
    let bad = request(
        "GET",
        &served.addr,
        &format!("/v2/serve/oci/blobs/{}", layer.digest),
        &[],
    );
    assert_eq!(bad.status, 200);
    assert!(bad.body.is_err(), "a damaged blob must not arrive whole");
    // A range is served as stored (it cannot be checked), every other blob in full.
    let base = &SOURCE.oci.layers[0].gz;
    let (status, body) = get(
        &served.addr,
        &format!("/v2/serve/oci/blobs/{}", base.digest),
        &[],
    );
    assert_eq!((status, body), (200, base.bytes.clone()));
    let log = served.log();
    assert!(
        log.contains(&format!("blob {} in bundle", layer.digest)) && log.contains("damaged"),
        "the log names the damaged blob:\n{log}"
    );
    drop(served);

    // --verify checks every blob first: the damaged bundle is refused, the sound one served.
    let run = airlock(&[
        "serve",
        damaged.to_str().unwrap(),
        "--verify",
        "--listen",
        "127.0.0.1:0",
    ])
    .expect_code(1);
    assert!(run.stderr.contains("failed `verify`"), "{}", run.stderr);
    assert!(run.stderr.contains(&layer.digest), "{}", run.stderr);
    let served = Served::start(&[&tar], &["--verify", "-q"]);
    let (status, body) = get(
        &served.addr,
        &format!("/v2/serve/oci/blobs/{}", layer.digest),
        &[],
    );
    assert_eq!((status, body), (200, layer.bytes.clone()));
}

/// A `.tar.zst` stores incompressible layer bytes as raw zstd blocks, which serve reads
/// without the decoder (so without the frame's checksum) for a whole blob: the blob's
/// digest check must still stop a damaged byte there.
#[test]
fn a_damaged_raw_block_of_a_zst_bundle_is_cut_off_by_the_digest_check() {
    let dir = tempfile::tempdir().unwrap();
    let zst = dir.path().join("b.tar.zst");
    save_bundle(dir.path(), &zst, &[]);
    let layer = &SOURCE.oci.layers[1].gz;
    let damaged = dir.path().join("damaged.tar.zst");
    copy_with_flip_in_raw_block(&zst, &damaged, &layer.bytes[200_000..200_064]);
    let served = Served::start(&[&damaged], &[]);
    let path = format!("/v2/serve/oci/blobs/{}", layer.digest);
    let bad = request("GET", &served.addr, &path, &[]);
    assert_eq!(bad.status, 200);
    assert!(bad.body.is_err(), "a damaged blob must not arrive whole");
    // Every other blob still arrives whole, through the same raw-block path.
    let base = &SOURCE.oci.layers[0].gz;
    let (status, body) = get(
        &served.addr,
        &format!("/v2/serve/oci/blobs/{}", base.digest),
        &[],
    );
    assert_eq!(status, 200);
    assert!(body == base.bytes, "blob {} differs", base.digest);
    // A range before the damage is served as stored.
    let (status, body) = get(&served.addr, &path, &[("Range", "bytes=0-99999")]);
    assert_eq!(status, 206);
    assert!(body == layer.bytes[..100_000], "the range differs");
    let log = served.log();
    assert!(
        log.contains(&format!("blob {} in bundle", layer.digest)) && log.contains("damaged"),
        "the log names the damaged blob:\n{log}"
    );
}

#[test]
fn a_taken_port_and_an_unsound_bundle_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let zst = dir.path().join("b.tar.zst");
    save_bundle(dir.path(), &zst, &[]);
    let served = Served::start(&[&zst], &[]);
    let run = airlock(&["serve", zst.to_str().unwrap(), "--listen", &served.addr]).expect_code(1);
    assert!(
        run.stderr
            .contains(&format!("cannot listen on {}", served.addr)),
        "{}",
        run.stderr
    );
    let junk = dir.path().join("junk.tar");
    fs::write(&junk, b"not a bundle").unwrap();
    let run = airlock(&["serve", junk.to_str().unwrap(), "--listen", "127.0.0.1:0"]).expect_code(1);
    assert!(run.stderr.contains("cannot serve"), "{}", run.stderr);
}

#[test]
fn docker_pulls_by_tag_and_by_digest_from_a_zst_bundle_and_split_parts() {
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    let zst = dir.path().join("b.tar.zst");
    save_bundle(dir.path(), &zst, &[]);
    let split = dir.path().join("s.tar.zst");
    save_bundle(dir.path(), &split, &["--split", "128K"]);
    let dockerd = TestDockerd::start();
    let s = &*SOURCE;
    for bundle in [&zst, &split] {
        let served = Served::start(&[bundle], &[]);
        let addr = &served.addr;
        for (repo, tag, config, digest) in [
            (
                "serve/oci",
                "1",
                &s.oci.config.digest,
                &s.oci.manifest.digest,
            ),
            (
                "serve/docker",
                "1",
                &s.docker.config.digest,
                &s.docker.manifest.digest,
            ),
            (
                "serve/multi",
                "3",
                &s.multi.child("linux/amd64").config.digest,
                &s.multi.index.digest,
            ),
        ] {
            let by_tag = format!("{addr}/{repo}:{tag}");
            let by_digest = format!("{addr}/{repo}@{digest}");
            for name in [&by_tag, &by_digest] {
                dockerd.docker_ok(&["pull", "-q", name]);
                let id = dockerd.docker_ok(&["image", "inspect", "-f", "{{.Id}}", name]);
                assert_eq!(id.trim(), config, "image ID of {name}");
            }
            let digests =
                dockerd.docker_ok(&["image", "inspect", "-f", "{{json .RepoDigests}}", &by_tag]);
            assert!(
                digests.contains(&format!("{addr}/{repo}@{digest}")),
                "RepoDigests of {by_tag}: {digests}"
            );
            dockerd.docker_ok(&["image", "rm", "-f", &by_tag, &by_digest]);
        }
    }
}

/// Writes an OCI layout of `images` (full name, image) and saves it as `out` with `extra`.
fn save_images(dir: &Path, images: &[(&str, &Image)], out: &Path, extra: &[&str]) {
    let layout = dir.join(format!(
        "layout-{}",
        out.file_name().unwrap().to_string_lossy()
    ));
    let mut l = OciLayout::new();
    for (name, image) in images {
        let tag = name.rsplit(':').next().unwrap();
        l.add((*image).clone(), tag, Some(name));
    }
    l.write(&layout);
    let mut args = vec![
        "save".to_string(),
        format!("oci:{}", layout.display()),
        "-o".into(),
        out.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    airlock(&args).ok();
}

#[test]
fn a_delta_served_after_its_base_gets_left_out_blobs_from_it_and_its_tags_win() {
    let dir = tempfile::tempdir().unwrap();
    let (old_app, keep, new_app, added) = (
        IMAGES.image("linux/amd64", 10),
        IMAGES.image("linux/amd64", 11),
        IMAGES.image("linux/amd64", 12),
        IMAGES.image("linux/amd64", 13),
    );
    let base = dir.path().join("base.tar.zst");
    save_images(
        dir.path(),
        &[
            ("example.com/serve/app:1", &old_app),
            ("example.com/serve/keep:1", &keep),
        ],
        &base,
        &[],
    );
    let delta = dir.path().join("delta.tar.zst");
    save_images(
        dir.path(),
        &[
            ("example.com/serve/app:1", &new_app),
            ("example.com/serve/new:1", &added),
        ],
        &delta,
        &["--base", base.to_str().unwrap()],
    );
    let shared = &IMAGES.base.gz;

    // The delta alone lacks the shared base layer.
    let alone = Served::start(&[&delta], &["-q"]);
    let a = request(
        "GET",
        &alone.addr,
        &format!("/v2/serve/new/blobs/{}", shared.digest),
        &[],
    );
    assert_eq!((a.status, a.error_code().as_str()), (404, "BLOB_UNKNOWN"));
    drop(alone);

    let served = Served::start(&[&base, &delta], &["-q"]);
    let addr = &served.addr;
    for (repo, want) in [
        ("serve/app", &new_app),
        ("serve/keep", &keep),
        ("serve/new", &added),
    ] {
        let raw = skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{addr}/{repo}:1"),
        ]);
        assert_eq!(
            support::images::sha256(raw.as_bytes()),
            want.manifest.digest,
            "{repo}"
        );
        let out = dir.path().join(repo.replace('/', "_"));
        fs::create_dir_all(&out).unwrap();
        skopeo(&[
            "--insecure-policy",
            "copy",
            "--quiet",
            "--preserve-digests",
            "--src-tls-verify=false",
            &format!("docker://{addr}/{repo}:1"),
            &format!("oci:{}:x", out.display()),
        ]);
        assert_layout_holds(&out, &want.manifest.digest, &want.blobs());
    }
}

#[test]
fn print_config_names_the_listen_address_for_each_client() {
    for (client, want) in [
        ("containerd", "server = \"http://10.1.2.3:5000\""),
        ("podman", "location = \"10.1.2.3:5000\""),
        ("docker", "\"insecure-registries\": [\"10.1.2.3:5000\"]"),
    ] {
        let run = airlock(&[
            "serve",
            "any.tar.zst",
            "--listen",
            "10.1.2.3:5000",
            "--print-config",
            client,
        ])
        .ok();
        assert!(run.stdout.contains(want), "{client}:\n{}", run.stdout);
    }
}

#[test]
fn tls_with_a_test_ca_serves_skopeo_with_every_digest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let zst = dir.path().join("b.tar.zst");
    save_bundle(dir.path(), &zst, &[]);
    let certs = support::tls::Certs::for_ip("127.0.0.1");
    let served = Served::start_tls(&zst, &certs);
    let addr = &served.addr;
    let ca_dir = dir.path().join("ca");
    fs::create_dir_all(&ca_dir).unwrap();
    fs::copy(&certs.ca, ca_dir.join("ca.crt")).unwrap();
    let cert_dir = ca_dir.to_str().unwrap();

    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--cert-dir",
        cert_dir,
        &format!("docker://{addr}/serve/multi:3"),
    ]);
    assert_eq!(
        support::images::sha256(raw.as_bytes()),
        SOURCE.multi.index.digest
    );
    let out = dir.path().join("copy");
    fs::create_dir_all(&out).unwrap();
    skopeo(&[
        "--insecure-policy",
        "copy",
        "--quiet",
        "--all",
        "--preserve-digests",
        "--src-cert-dir",
        cert_dir,
        &format!("docker://{addr}/serve/multi:3"),
        &format!("oci:{}:x", out.display()),
    ]);
    assert_layout_holds(&out, &SOURCE.multi.index.digest, &SOURCE.multi.blobs());
    // Without the CA, the certificate is refused.
    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            &format!("docker://{addr}/serve/multi:3"),
        ])
        .env("REGISTRY_AUTH_FILE", "/nonexistent/airlock-test-auth.json")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("certificate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn thirty_two_concurrent_full_downloads_then_sigterm_stops_it_with_status_zero() {
    let dir = tempfile::tempdir().unwrap();
    let zst = dir.path().join("b.tar.zst");
    save_bundle(dir.path(), &zst, &[]);
    let mut served = Served::start(&[&zst], &["-q"]);
    let layers: Vec<&support::images::Blob> = [&SOURCE.oci, &SOURCE.docker]
        .iter()
        .flat_map(|i| i.layers.iter().map(|l| &l.gz))
        .collect();
    std::thread::scope(|s| {
        for i in 0..32 {
            let (addr, blob) = (&served.addr, layers[i % layers.len()]);
            s.spawn(move || {
                let repo = if i % 2 == 0 {
                    "serve/oci"
                } else {
                    "serve/docker"
                };
                let (status, body) = get(addr, &format!("/v2/{repo}/blobs/{}", blob.digest), &[]);
                assert_eq!(status, 200);
                assert!(body == blob.bytes, "blob {} differs", blob.digest);
            });
        }
    });
    let pid = served.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = served.child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "{}", served.log());
}

#[test]
fn accept_negotiation_follows_distribution() {
    let dir = tempfile::tempdir().unwrap();
    let list = IMAGES.two_platform_index(Flavor::Docker, 20);
    let oci = IMAGES.two_platform_index(Flavor::Oci, 22);
    let layout = dir.path().join("layout");
    let mut l = OciLayout::new();
    l.add(list.clone(), "1", Some("example.com/serve/list:1"));
    l.add(oci.clone(), "1", Some("example.com/serve/oci-index:1"));
    l.write(&layout);
    let zst = dir.path().join("b.tar.zst");
    airlock(&[
        "save",
        &format!("oci:{}", layout.display()),
        "-o",
        zst.to_str().unwrap(),
    ])
    .ok();
    let served = Served::start(&[&zst], &["-q"]);
    let addr = &served.addr;
    let v2 = ("Accept", support::images::DOCKER_MANIFEST);
    let digest_of = |a: &Answer| a.header("docker-content-digest").unwrap_or("").to_string();

    // A client that takes only schema 2 manifests gets linux/amd64's for the list's tag…
    let a = request("GET", addr, "/v2/serve/list/manifests/1", &[v2]);
    assert_eq!(a.status, 200);
    let amd64 = &list.child("linux/amd64").manifest;
    assert_eq!(digest_of(&a), amd64.digest);
    assert_eq!(a.body.as_ref().unwrap(), &amd64.bytes);
    // …the list itself when it takes lists, or asks by digest…
    let a = request(
        "GET",
        addr,
        "/v2/serve/list/manifests/1",
        &[("Accept", support::images::DOCKER_LIST), v2],
    );
    assert_eq!(digest_of(&a), list.index.digest);
    let path = format!("/v2/serve/list/manifests/{}", list.index.digest);
    assert_eq!(
        digest_of(&request("GET", addr, &path, &[v2])),
        list.index.digest
    );
    // …and MANIFEST_UNKNOWN for an OCI index; without Accept, the stored document.
    let a = request("GET", addr, "/v2/serve/oci-index/manifests/1", &[v2]);
    assert_eq!(
        (a.status, a.error_code().as_str()),
        (404, "MANIFEST_UNKNOWN")
    );
    let a = request("GET", addr, "/v2/serve/oci-index/manifests/1", &[]);
    assert_eq!(digest_of(&a), oci.index.digest);
}

#[test]
fn referrers_lists_the_artifacts_whose_subject_is_the_digest() {
    use support::images::{Blob, OCI_MANIFEST, Platform, file, layer};
    let dir = tempfile::tempdir().unwrap();
    let image = IMAGES.image("linux/amd64", 30);
    let empty = Blob::new("application/vnd.oci.empty.v1+json", b"{}".to_vec());
    let sbom = layer(&[file("sbom.json", "{\"packages\":[]}")]);
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom",
        "config": empty.descriptor(),
        "layers": [sbom.gz.descriptor()],
        "subject": image.manifest.descriptor(),
        "annotations": {"org.example": "yes"},
    });
    let artifact = Image {
        platform: Platform::parse("linux/amd64"),
        config: empty,
        layers: vec![sbom],
        manifest: Blob::new(OCI_MANIFEST, serde_json::to_vec(&body).unwrap()),
    };
    let zst = dir.path().join("b.tar.zst");
    save_images(
        dir.path(),
        &[
            ("example.com/serve/app:1", &image),
            ("example.com/serve/app:sbom", &artifact),
        ],
        &zst,
        &[],
    );
    let served = Served::start(&[&zst], &["-q"]);
    let path = format!("/v2/serve/app/referrers/{}", image.manifest.digest);
    let a = request("GET", &served.addr, &path, &[]);
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some(support::images::OCI_INDEX));
    let index = a.json();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index:#}");
    let d = &index["manifests"][0];
    assert_eq!(d["digest"], artifact.manifest.digest);
    assert_eq!(d["artifactType"], "application/vnd.example.sbom");
    assert_eq!(d["annotations"]["org.example"], "yes");
    let a = request(
        "GET",
        &served.addr,
        &format!("{path}?artifactType=application/vnd.other"),
        &[],
    );
    assert_eq!(a.header("oci-filters-applied"), Some("artifactType"));
    assert_eq!(a.json()["manifests"], serde_json::json!([]));
    let none = format!("/v2/serve/app/referrers/{}", artifact.manifest.digest);
    assert_eq!(
        request("GET", &served.addr, &none, &[]).json()["manifests"],
        serde_json::json!([])
    );
}
