//! `airlock serve` read by the clients not covered in `serve.rs`: containerd's `ctr`
//! (the one dockerd 20.10 runs), `podman` (Debian's 4.3), and airlock itself — `save`
//! from a served bundle must give back the bundle's digests, and agree with a `save`
//! from a real `docker-registry` that `airlock push` filled from the same bundle.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;

use serde_json::Value;
use support::cli::{Bundle, airlock};
use support::corpus::{Corpus, base_layer, data_layer};
use support::dockerd::{TestDockerd, assert_root};
use support::images::{Flavor, Image, Index, OciLayout};
use support::registry::TestRegistry;
use support::serve::Served;

static IMAGES: LazyLock<Corpus> = LazyLock::new(|| {
    Corpus::new(base_layer("airlock-serve-clients", &[]), |seed| {
        data_layer(seed, 200 * 1024)
    })
});

struct Source {
    oci: Image,
    multi: Index,
}

static SOURCE: LazyLock<Source> = LazyLock::new(|| Source {
    oci: IMAGES.image("linux/amd64", 21),
    multi: IMAGES.two_platform_index(Flavor::Oci, 22),
});

/// The source images as an OCI layout, saved as `dir/name` with `extra` args.
fn save_bundle(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let layout = dir.join("layout");
    if !layout.exists() {
        let mut l = OciLayout::new();
        l.add(SOURCE.oci.clone(), "1", Some("example.com/clients/oci:1"));
        l.add(
            SOURCE.multi.clone(),
            "2",
            Some("example.com/clients/multi:2"),
        );
        l.write(&layout);
    }
    let out = dir.join(name);
    let mut args = vec![
        "save".to_string(),
        format!("oci:{}", layout.display()),
        "-o".into(),
        out.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    airlock(&args).ok();
    out
}

/// Runs a command, panicking with its output when it fails; returns stdout.
fn run_ok(c: &mut Command) -> String {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ctr images pull --plain-http --all-platforms` of the multi-platform index and the
/// single image, from a `.tar.zst` and from split parts, into the containerd that a
/// real dockerd runs: containerd checks every digest as it ingests, and its content
/// store then holds exactly the source's blobs.
#[test]
fn ctr_pulls_every_platform_from_a_served_bundle() {
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    let zst = save_bundle(dir.path(), "b.tar.zst", &[]);
    let split = save_bundle(dir.path(), "s.tar.zst", &["--split", "128K"]);
    let dockerd = TestDockerd::start();
    let socket = dockerd.dir().join("exec/containerd/containerd.sock");
    assert!(
        socket.exists(),
        "dockerd's containerd socket: {}",
        socket.display()
    );
    let ctr = |ns: &str, args: &[&str]| {
        run_ok(
            Command::new("ctr")
                .arg("--address")
                .arg(&socket)
                .args(["--namespace", ns])
                .args(args),
        )
    };
    let s = &*SOURCE;
    for (n, bundle) in [&zst, &split].into_iter().enumerate() {
        let ns = format!("airlock{n}");
        let served = Served::start(&[bundle], &["-q"]);
        let addr = &served.addr;
        for (name, top, blobs) in [
            (
                format!("{addr}/clients/multi:2"),
                &s.multi.index.digest,
                s.multi.blobs(),
            ),
            (
                format!("{addr}/clients/oci:1"),
                &s.oci.manifest.digest,
                s.oci.blobs(),
            ),
        ] {
            ctr(
                &ns,
                &["images", "pull", "--plain-http", "--all-platforms", &name],
            );
            let listed = ctr(&ns, &["images", "ls"]);
            let line = listed
                .lines()
                .find(|l| l.split_whitespace().next() == Some(name.as_str()))
                .unwrap_or_else(|| panic!("ctr images ls has no {name}:\n{listed}"));
            assert!(line.contains(top.as_str()), "{name} is {top}: {line}");
            let content = ctr(&ns, &["content", "ls", "-q"]);
            let have: BTreeSet<&str> = content.lines().map(str::trim).collect();
            for b in blobs {
                assert!(
                    have.contains(b.digest.as_str()),
                    "{name}: {} missing",
                    b.digest
                );
            }
        }
    }
}

/// `podman pull --tls-verify=false` by tag and by digest (its own storage under a
/// temp dir, vfs): the image's digest is the source manifest's, its ID the config's.
#[test]
fn podman_pulls_by_tag_and_digest_from_a_served_bundle() {
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    let zst = save_bundle(dir.path(), "b.tar.zst", &[]);
    let served = Served::start(&[&zst], &["-q"]);
    let addr = &served.addr;
    let store = dir.path().join("podman");
    let podman = |args: &[&str]| {
        run_ok(
            Command::new("podman")
                .arg("--root")
                .arg(store.join("root"))
                .arg("--runroot")
                .arg(store.join("run"))
                .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
                .args(args),
        )
    };
    let s = &*SOURCE;
    for (name, manifest, config) in [
        (
            format!("{addr}/clients/oci:1"),
            &s.oci.manifest.digest,
            &s.oci.config.digest,
        ),
        (
            format!("{addr}/clients/oci@{}", s.oci.manifest.digest),
            &s.oci.manifest.digest,
            &s.oci.config.digest,
        ),
        (
            format!("{addr}/clients/multi:2"),
            &s.multi.index.digest,
            &s.multi.child("linux/amd64").config.digest,
        ),
    ] {
        podman(&["pull", "-q", "--tls-verify=false", "--arch", "amd64", &name]);
        let inspect: Value =
            serde_json::from_str(&podman(&["image", "inspect", &name])).expect("inspect JSON");
        let i = &inspect[0];
        assert_eq!(i["Digest"], manifest.as_str(), "{name}: {i:#}");
        assert_eq!(
            format!("sha256:{}", i["Id"].as_str().unwrap()),
            config.as_str(),
            "{name}"
        );
    }
}

/// The digests a bundle records: every name with its digest, and every blob.
fn toc_digests(bundle: &Path) -> (Vec<(String, String)>, BTreeSet<String>) {
    let toc = Bundle::open(bundle).toc();
    let mut images: Vec<(String, String)> = toc["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let name = i["name"].as_str().unwrap();
            // The repository and tag, without the host the save came from.
            let path = name.split_once('/').unwrap().1.to_string();
            (path, i["digest"].as_str().unwrap().to_string())
        })
        .collect();
    images.sort();
    let blobs = toc["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["digest"].as_str().unwrap().to_string())
        .collect();
    (images, blobs)
}

/// Round trip: `save` from `airlock serve` of a bundle gives back the bundle's digests;
/// and `push` of the bundle into a real registry, then `save` from that registry, gives
/// the same digests as the save from serve.
#[test]
fn save_from_serve_gives_back_the_bundle_and_agrees_with_a_registry() {
    let dir = tempfile::tempdir().unwrap();
    let original = save_bundle(dir.path(), "b.tar.zst", &[]);
    let (want_images, want_blobs) = toc_digests(&original);
    assert_eq!(want_images.len(), 2);

    let served = Served::start(&[&original], &["-q"]);
    let from_serve = dir.path().join("from-serve.tar.zst");
    let names: Vec<String> = ["clients/oci:1", "clients/multi:2"]
        .iter()
        .map(|n| format!("{}/{n}", served.addr))
        .collect();
    let mut args = vec!["save".to_string()];
    args.extend(names.iter().cloned());
    args.extend(["-o".to_string(), from_serve.display().to_string()]);
    airlock(&args).ok();
    assert_eq!(
        toc_digests(&from_serve),
        (want_images.clone(), want_blobs.clone())
    );
    airlock(&["verify", from_serve.to_str().unwrap()]).ok();

    let reg = TestRegistry::start();
    airlock(&["push", original.to_str().unwrap(), &reg.addr()]).ok();
    let from_registry = dir.path().join("from-registry.tar.zst");
    let mut args = vec!["save".to_string()];
    args.extend(
        ["clients/oci:1", "clients/multi:2"]
            .iter()
            .map(|n| format!("{}/{n}", reg.addr())),
    );
    args.extend(["-o".to_string(), from_registry.display().to_string()]);
    airlock(&args).ok();
    assert_eq!(toc_digests(&from_registry), (want_images, want_blobs));
}

/// `ls --target` prints the references `serve` answers: each one, read with skopeo
/// from a server with the same prefix and `--keep-registry` choice, is the image's
/// manifest (sha256 of the raw bytes = the TOC's digest).
#[test]
fn ls_target_prints_the_references_serve_answers() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = save_bundle(dir.path(), "b.tar.zst", &[]);
    let b = bundle.to_str().unwrap();
    for extra in [&[][..], &["--prefix", "mirror", "--keep-registry"][..]] {
        let served = Served::start(&[&bundle], &[&["-q"][..], extra].concat());
        let mut target = served.addr.clone();
        let mut args = vec!["ls", b, "--json", "--target"];
        if extra.contains(&"--prefix") {
            target.push_str("/mirror");
        }
        args.push(&target);
        if extra.contains(&"--keep-registry") {
            args.push("--keep-registry");
        }
        let listing = airlock(&args).ok().json();
        let images = listing["images"].as_array().unwrap();
        assert_eq!(images.len(), 2);
        for i in images {
            let pull = i["pull"].as_str().unwrap();
            assert!(pull.starts_with(&format!("{target}/")), "{pull}");
            if extra.contains(&"--keep-registry") {
                assert!(pull.contains("/example.com/clients/"), "{pull}");
            }
            let raw = support::images::skopeo(&[
                "inspect",
                "--raw",
                "--tls-verify=false",
                &format!("docker://{pull}"),
            ]);
            assert_eq!(
                support::images::sha256(raw.as_bytes()),
                i["digest"].as_str().unwrap(),
                "{pull}"
            );
        }
        let human_args: Vec<&str> = args.iter().copied().filter(|a| *a != "--json").collect();
        let human = airlock(&human_args).ok();
        for i in images {
            assert!(
                human
                    .stdout
                    .contains(&format!("  {}\n", i["pull"].as_str().unwrap())),
                "{human}"
            );
        }
    }
}
