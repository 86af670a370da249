//! Compact bundles of layers that a real Docker engine wrote: dockerd 20.10 (Debian's
//! docker.io) imports a tar of real files, builds an image on it with a COPY-only
//! Dockerfile and `docker push`es it to a real registry, so every gzip layer is the
//! engine's own compression, not ours and not a test writer's. Issue 14 measured that
//! these layers are Go's classic `compress/gzip` at the default level; this test holds
//! airlock to it end to end: `save --compact` rebuilds every one of them, `verify`
//! passes, `push` to a fresh registry gives the same manifest and layer bytes, and the
//! engine itself pulls the pushed image by digest.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::cli::{Bundle, airlock};
use support::dockerd::{TestDockerd, assert_root};
use support::images::sha256;
use support::registry::TestRegistry;
use support::registry_api::registry_manifest;
use support::regzip_inputs::sorted_files;

/// Copies up to `max` bytes of regular files from `from` (sorted walk) into `to`.
fn copy_tree(from: &str, to: &Path, max: usize) {
    let mut total = 0;
    for p in sorted_files(from) {
        let content = std::fs::read(&p).unwrap();
        if total + content.len() > max {
            break;
        }
        total += content.len();
        let dest = to.join(p.strip_prefix(from).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, content).unwrap();
    }
}

/// The bytes of blob `digest` of `repo` as the registry at `addr` serves them.
fn registry_blob(addr: &str, repo: &str, digest: &str) -> Vec<u8> {
    let url = format!("http://{addr}/v2/{repo}/blobs/{digest}");
    let mut resp = ureq::get(&url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    resp.body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap()
}

#[test]
fn layers_pushed_by_docker_are_all_rebuilt_and_push_back_byte_for_byte() {
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A base file system of real files, imported as the base image's one layer.
    let rootfs = d.join("rootfs");
    copy_tree(
        "/usr/lib/python3.11/email",
        &rootfs.join("usr/lib/email"),
        3_000_000,
    );
    copy_tree("/etc", &rootfs.join("etc"), 500_000);
    let base_tar = d.join("base.tar");
    let status = Command::new("tar")
        .arg("-cf")
        .arg(&base_tar)
        .arg("-C")
        .arg(&rootfs)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success(), "tar of the base file system");
    // Two COPY layers of real files on top.
    let ctx = d.join("ctx");
    copy_tree("/usr/lib/python3.11/json", &ctx.join("app"), 2_000_000);
    copy_tree("/usr/lib/python3.11/asyncio", &ctx.join("lib"), 2_000_000);
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM airlock-test/base:1\nCOPY app /app\nCOPY lib /lib/asyncio\n",
    )
    .unwrap();

    let reg = TestRegistry::start();
    let addr = reg.addr();
    let name = format!("{addr}/compact/docker:1");
    let dockerd = TestDockerd::start();
    dockerd.docker_ok(&["import", base_tar.to_str().unwrap(), "airlock-test/base:1"]);
    let out = Command::new("docker")
        .env("DOCKER_HOST", dockerd.host())
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", &name])
        .arg(&ctx)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker build: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        dockerd.log_tail()
    );
    dockerd.docker_ok(&["push", &name]);
    let source = registry_manifest(&addr, "compact/docker", "1", None);
    let manifest: Value = serde_json::from_slice(&source.bytes).unwrap();
    let layers: Vec<String> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(layers.len(), 3, "{manifest:#}");

    // Every layer the engine pushed is rebuilt by Go's classic encoder.
    let bundle = d.join("docker.tar.zst");
    airlock(&["save", &name, "-o", bundle.to_str().unwrap(), "--compact"]).ok();
    let ls = airlock(&["ls", bundle.to_str().unwrap(), "--json"])
        .ok()
        .json();
    let listed = ls["compact"].as_array().expect("ls --json has compact");
    for digest in &layers {
        let entry = listed
            .iter()
            .find(|c| c["digest"] == digest.as_str())
            .unwrap_or_else(|| panic!("layer {digest} not listed: {ls:#}"));
        assert_eq!(entry["stored"], "rebuilt", "{entry:#}");
    }
    let b = Bundle::open(&bundle);
    for c in b.toc()["compact"].as_array().unwrap() {
        assert_eq!(
            c["recipe"]["members"][0]["encoder"],
            serde_json::json!({"family": "go-flate", "variant": "classic", "level": 6}),
            "the engine's encoder: {c:#}"
        );
        assert!(!b.has_blob(c["digest"].as_str().unwrap()));
    }
    airlock(&["verify", bundle.to_str().unwrap()]).ok();

    // Pushed to a fresh registry: the same manifest, every layer the engine's bytes.
    let target = TestRegistry::start();
    let taddr = target.addr();
    airlock(&["push", bundle.to_str().unwrap(), &format!("{taddr}/mirror")]).ok();
    let pushed = registry_manifest(&taddr, "mirror/compact/docker", "1", None);
    assert_eq!(pushed.digest, source.digest);
    assert!(pushed.bytes == source.bytes, "manifest bytes differ");
    for digest in &layers {
        let want = registry_blob(&addr, "compact/docker", digest);
        let got = registry_blob(&taddr, "mirror/compact/docker", digest);
        assert_eq!(sha256(&got), *digest);
        assert!(got == want, "layer {digest} differs from the engine's push");
    }
    // The engine takes the rebuilt image by digest.
    dockerd.docker_ok(&["rmi", "-f", &name]);
    let by_digest = format!("{taddr}/mirror/compact/docker@{}", source.digest);
    dockerd.docker_ok(&["pull", &by_digest]);
}
