//! Shared by the resume tests (`tests/resume.rs`, `tests/resume_compact.rs`): the
//! seeded source images in a real registry, `save` runs of the airlock binary that are
//! interrupted by real signals once their partial file has grown, and readers of what a
//! bundle holds.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::cli::{KillOnDrop, Run, airlock, airlock_bin};
use super::images::{Image, ImageSpec, Layer, PushOptions, layer, push, random_file};
use super::registry::TestRegistry;
use super::registry_api::registry_digest;
use super::throttle::Throttle;

pub const MIB: u64 = 1024 * 1024;
/// Each test image: this many layers of this many random bytes.
pub const LAYERS: usize = 4;
pub const LAYER_SIZE: usize = 8 * 1024 * 1024;
/// Proxy rate while a run is to be interrupted.
pub const SLOW: u64 = 12 * MIB;

// ---------------------------------------------------------------------------------
// Source images.

/// Two images of [`LAYERS`] seeded-random layers each, in a fresh registry.
pub struct Source {
    pub reg: TestRegistry,
    pub images: Vec<Image>,
}

impl Source {
    pub fn start(seed: u64) -> Source {
        Source::start_with(seed, |l| l, |n| n)
    }

    /// [`Source::start`] with each layer passed through `regzip` first, and the random
    /// file of the `n`th layer (counting through both images) made from the seed of layer
    /// `same_as(n)`: layers whose file is the same are similar, not equal (their tar
    /// headers name different paths).
    pub fn start_with(
        seed: u64,
        regzip: fn(Layer) -> Layer,
        same_as: fn(usize) -> usize,
    ) -> Source {
        let reg = TestRegistry::start();
        let mut images = Vec::new();
        for (i, name) in ["app:1", "tools:2"].iter().enumerate() {
            let mut spec = ImageSpec::new("linux/amd64").label("n", name);
            for l in 0..LAYERS {
                let (n, like) = (i * LAYERS + l, same_as(i * LAYERS + l));
                let s = seed * 100 + like as u64;
                let path = match like == n {
                    true => format!("data/{l}"),
                    false => format!("data/{l}-like-{like}"),
                };
                let data = random_file(&path, s, LAYER_SIZE);
                spec = spec.layer(&regzip(layer(&[data])));
            }
            let image = spec.build();
            push(
                &image,
                &format!("{}/{name}", reg.addr()),
                &PushOptions::default(),
            );
            images.push(image);
        }
        Source { reg, images }
    }

    pub fn layer_digests(&self) -> BTreeSet<String> {
        self.images
            .iter()
            .flat_map(|i| i.layers.iter().map(|l| l.digest().to_string()))
            .collect()
    }

    pub fn layers(&self) -> impl Iterator<Item = &Layer> {
        self.images.iter().flat_map(|i| i.layers.iter())
    }

    pub fn layer_bytes(&self) -> u64 {
        self.images
            .iter()
            .flat_map(|i| i.layers.iter().map(|l| l.gz.size()))
            .sum()
    }
}

pub fn names(host: &str) -> Vec<String> {
    vec![format!("{host}/app:1"), format!("{host}/tools:2")]
}

// ---------------------------------------------------------------------------------
// Running airlock as a child and interrupting it.

pub fn save_args(host: &str, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = vec!["save".to_string()];
    a.extend(names(host));
    a.extend([
        "-o".into(),
        out.display().to_string(),
        "--jobs".into(),
        "1".into(),
    ]);
    a.extend(["--no-progress".into(), "--json".into()]);
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// Starts airlock in the background; it is killed if the test panics before [`finish`].
pub fn spawn(args: &[String]) -> KillOnDrop {
    let empty = std::env::temp_dir();
    let child = Command::new(airlock_bin())
        .args(args)
        .env("DOCKER_CONFIG", empty.join("airlock-resume-test-no-config"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start airlock");
    KillOnDrop::new(child)
}

pub fn finish(child: KillOnDrop, args: &[String]) -> Run {
    let out = child.into_inner().wait_with_output().unwrap();
    Run {
        args: args.to_vec(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([format!("-{sig}"), child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {}", child.id());
}

/// Total size of the hidden partial files of `out` (one file, or parts).
pub fn partial_size(out: &Path) -> u64 {
    let name = out.file_name().unwrap().to_string_lossy().into_owned();
    fs::read_dir(out.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(&format!(".{name}.")) && n.ends_with(".partial")
        })
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum()
}

/// Waits until `size()` reaches `at_least` while `child` runs; panics after a minute.
pub fn wait_for(child: &mut Child, what: &str, at_least: u64, size: impl Fn() -> u64) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if size() >= at_least {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("airlock ended ({status}) before {what} reached {at_least} bytes");
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not reach {at_least} bytes in time"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Starts a throttled save and stops it with `sig` once 2.5 layers are in the partial file.
pub fn interrupted_save(proxy: &Throttle, out: &Path, extra: &[&str], sig: &str) -> Run {
    proxy.set_rate(SLOW);
    let args = save_args(&proxy.addr, out, extra);
    let mut child = spawn(&args);
    wait_for(
        &mut child,
        "the partial bundle",
        5 * LAYER_SIZE as u64 / 2,
        || partial_size(out),
    );
    signal(&child, sig);
    let run = finish(child, &args);
    proxy.set_rate(0);
    run
}

pub fn listing(dir: &Path) -> Vec<String> {
    super::cli::dir_listing(dir)
}

/// The images (name → digest) and blob digests of a bundle, as `ls --json` shows them.
pub fn contents(bundle: &Path) -> (Vec<(String, String)>, BTreeSet<String>) {
    let v = airlock(&["verify", bundle.to_str().unwrap(), "--json"])
        .ok()
        .json();
    assert_eq!(v["ok"], true, "{v:#}");
    let ls = airlock(&["ls", bundle.to_str().unwrap(), "--json"])
        .ok()
        .json();
    let mut images: Vec<(String, String)> = ls["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_string(),
                i["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    images.sort();
    let toc = super::cli::Bundle::open(bundle);
    let blobs = toc
        .names()
        .into_iter()
        .filter_map(|n| n.strip_prefix("blobs/sha256/"))
        .map(|h| format!("sha256:{h}"))
        .collect();
    (images, blobs)
}

pub fn num(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no `{key}` in {v:#}"))
}

/// The reference: a fresh, uninterrupted save of the same images through the proxy.
pub fn fresh_save(proxy: &Throttle, dir: &Path, name: &str, extra: &[&str]) -> (PathBuf, Value) {
    proxy.set_rate(0);
    let out = dir.join(name);
    let args = save_args(&proxy.addr, &out, extra);
    let v = finish(spawn(&args), &args).ok().json();
    assert_eq!(num(&v, "reused"), 0, "{v:#}");
    (out, v)
}

/// Both registries answer every source image with the same manifest digest.
pub fn assert_same_images(source: &TestRegistry, target: &TestRegistry) {
    for name in ["app:1", "tools:2"] {
        let (repo, tag) = name.split_once(':').unwrap();
        assert_eq!(
            registry_digest(&target.addr(), repo, tag),
            registry_digest(&source.addr(), repo, tag),
            "{name}"
        );
    }
}
