//! Issue 10: a save writes each byte to the output medium once, and bundles are
//! reproducible.
//!
//! - The output on a real tmpfs sized for the bundle plus a margin smaller than its
//!   largest layer: the save fits (nothing is staged beside the output), and the
//!   scratch directory (`--scratch`) is left empty.
//! - Two saves of the same images with `--created` pinned, `--jobs 1` and `--jobs 8`,
//!   through a proxy that delays different blobs in each run (so that downloads finish
//!   in another order), give the same sha256 for `.tar`, `.tar.zst` and each `--split`
//!   part.
//! - `SOURCE_DATE_EPOCH` pins the TOC's `created` and every entry's mtime; `--created`
//!   wins over it.
//!
//! Mounting the tmpfs needs root, as CI has (like `tests/disk_full.rs`).

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::cli::{Bundle, cmd, dir_listing};
use support::faulty::{Fault, FaultyProxy, Rule};
use support::images::{Image, ImageSpec, PushOptions, layer, push, random_file, sha256};
use support::registry::TestRegistry;
use support::tmpfs::SmallDisk;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const PINNED: &str = "2024-05-01T00:00:00Z";

/// Two images, five layers of random (incompressible) bytes, the largest a few MiB.
struct Source {
    reg: TestRegistry,
    images: Vec<Image>,
}

impl Source {
    fn start() -> Source {
        let reg = TestRegistry::start();
        let sizes: [(&str, &[usize]); 2] = [
            ("app:1", &[64 * 1024, 4 * MIB as usize, 300 * 1024]),
            ("tools:2", &[MIB as usize, 3 * MIB as usize]),
        ];
        let mut images = Vec::new();
        for (i, (name, layers)) in sizes.iter().enumerate() {
            let mut spec = ImageSpec::new("linux/amd64").label("n", name);
            for (l, len) in layers.iter().enumerate() {
                let seed = 1000 + (i * 10 + l) as u64;
                spec = spec.layer(&layer(&[random_file(&format!("data/{l}"), seed, *len)]));
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

    fn largest_layer(&self) -> u64 {
        self.images
            .iter()
            .flat_map(|i| i.layers.iter().map(|l| l.gz.size()))
            .max()
            .unwrap()
    }

    /// Every layer digest, in the bundle's order (image by image, layer by layer).
    fn layer_digests(&self) -> Vec<String> {
        self.images
            .iter()
            .flat_map(|i| i.layers.iter().map(|l| l.digest().to_string()))
            .collect()
    }
}

fn save_args(host: &str, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "save".into(),
        format!("{host}/app:1"),
        format!("{host}/tools:2"),
        "-o".into(),
        out.display().to_string(),
        "--no-progress".into(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn sha_of(path: &Path) -> String {
    sha256(&fs::read(path).unwrap())
}

#[test]
fn the_output_needs_room_for_the_bundle_only() {
    let src = Source::start();
    let host = src.reg.addr();
    let roomy = tempfile::tempdir().unwrap();
    for name in ["b.tar", "b.tar.zst"] {
        let reference = roomy.path().join(name);
        cmd(&save_args(&host, &reference, &["--created", PINNED]))
            .run()
            .ok();
        let size = fs::metadata(&reference).unwrap().len();
        // The bundle, rounded up to pages, plus room for the lock file: far less than
        // the bundle and its largest layer (what staging beside the output needed).
        let margin = 64 * KIB;
        let disk_size = size.div_ceil(4096) * 4096 + margin;
        assert!(
            disk_size < size + src.largest_layer(),
            "{name}: the disk must be too small to stage a layer beside the bundle"
        );
        let disk = SmallDisk::mount(&disk_size.to_string());
        let scratch = tempfile::tempdir().unwrap();
        let out = disk.path().join(name);
        let run = cmd(&save_args(
            &host,
            &out,
            &[
                "--created",
                PINNED,
                "--scratch",
                scratch.path().to_str().unwrap(),
            ],
        ))
        .run()
        .ok();
        assert_eq!(dir_listing(disk.path()), [name], "{run}");
        assert_eq!(sha_of(&out), sha_of(&reference), "{name}: the same bundle");
        assert!(
            dir_listing(scratch.path()).is_empty(),
            "the scratch directory is emptied: {:?}",
            dir_listing(scratch.path())
        );
        eprintln!(
            "ONE WRITE: {name} of {size} bytes saved onto a {disk_size}-byte tmpfs (largest layer {})",
            src.largest_layer()
        );
    }
}

/// One save per run through a fresh proxy: `--jobs 1` with one layer delayed, then
/// `--jobs 8` with the first layer of the bundle delayed (so every other layer
/// arrives before it). Returns the two output directories.
fn two_saves(src: &Source, name: &str, extra: &[&str]) -> (tempfile::TempDir, tempfile::TempDir) {
    let layers = src.layer_digests();
    let delay = Duration::from_millis(600);
    let proxy = FaultyProxy::start(
        &src.reg.url(),
        vec![
            // Request 1 of the 4th layer (run 1), request 2 of the 1st layer (run 2).
            Rule::new("GET", &layers[3], Fault::Delay(delay)).first(1),
            Rule::new("GET", &layers[0], Fault::Delay(delay)).every(2),
        ],
    );
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (dir, jobs) in [(&dirs.0, "1"), (&dirs.1, "8")] {
        let mut args = vec!["--created", PINNED, "--jobs", jobs];
        args.extend_from_slice(extra);
        cmd(&save_args(&proxy.addr(), &dir.path().join(name), &args))
            .run()
            .ok();
    }
    assert_eq!(proxy.injected(), 2, "both delays were injected");
    dirs
}

#[test]
fn pinned_saves_are_byte_identical_whatever_jobs_and_timing() {
    let src = Source::start();
    for name in ["r.tar", "r.tar.zst"] {
        let (a, b) = two_saves(&src, name, &[]);
        let (x, y) = (sha_of(&a.path().join(name)), sha_of(&b.path().join(name)));
        assert_eq!(x, y, "{name}: --jobs 1 and --jobs 8 give the same bytes");
        eprintln!("REPRODUCIBLE: {name} sha256 {x} (jobs 1 and 8)");
        // Layers are in the bundle's fixed order, not the order they arrived in.
        let bundle = Bundle::open(a.path().join(name));
        let order: Vec<String> = bundle
            .names()
            .into_iter()
            .filter_map(|n| n.strip_prefix("blobs/sha256/"))
            .map(|h| format!("sha256:{h}"))
            .filter(|d| src.layer_digests().contains(d))
            .collect();
        assert_eq!(order, src.layer_digests(), "{name}");
    }
    let name = "s.tar.zst";
    let (a, b) = two_saves(&src, name, &["--split", "2M"]);
    let parts = |d: &Path| -> Vec<PathBuf> {
        dir_listing(d)
            .into_iter()
            .filter(|n| n.starts_with(name) && !n.ends_with(".parts.json"))
            .map(|n| d.join(n))
            .collect()
    };
    let (pa, pb) = (parts(a.path()), parts(b.path()));
    assert!(pa.len() >= 3, "{pa:?}");
    assert_eq!(pa.len(), pb.len());
    for (x, y) in pa.iter().zip(&pb) {
        assert_eq!(sha_of(x), sha_of(y), "{}", x.display());
    }
    // The parts indexes differ only in their random `id`.
    let index = |d: &Path| -> serde_json::Value {
        let mut v: serde_json::Value =
            serde_json::from_slice(&fs::read(d.join(format!("{name}.parts.json"))).unwrap())
                .unwrap();
        v.as_object_mut().unwrap().remove("id");
        v
    };
    assert_eq!(index(a.path()), index(b.path()));
    eprintln!(
        "REPRODUCIBLE: {name} --split 2M: {} identical parts",
        pa.len()
    );
}

/// The TOC's `created` and the mtime of every tar entry of a plain `.tar` bundle.
fn times(path: &Path) -> (String, Vec<u64>) {
    let toc = Bundle::open(path).toc();
    let mut archive = tar::Archive::new(fs::File::open(path).unwrap());
    let mtimes = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().header().mtime().unwrap())
        .collect();
    (toc["created"].as_str().unwrap().to_string(), mtimes)
}

#[test]
fn source_date_epoch_is_honoured_and_created_wins() {
    let src = Source::start();
    let host = src.reg.addr();
    let dir = tempfile::tempdir().unwrap();
    let epoch = dir.path().join("epoch.tar");
    cmd(&save_args(&host, &epoch, &[]))
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .run()
        .ok();
    let (created, mtimes) = times(&epoch);
    assert_eq!(created, "2023-11-14T22:13:20Z");
    assert!(mtimes.iter().all(|&m| m == 1_700_000_000), "{mtimes:?}");

    let flag = dir.path().join("flag.tar");
    cmd(&save_args(&host, &flag, &["--created", PINNED]))
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .run()
        .ok();
    let (created, mtimes) = times(&flag);
    assert_eq!(created, PINNED, "--created wins over SOURCE_DATE_EPOCH");
    assert!(mtimes.iter().all(|&m| m == 1_714_521_600), "{mtimes:?}");

    // The same time given either way is the same bundle.
    let same = dir.path().join("same.tar");
    cmd(&save_args(
        &host,
        &same,
        &["--created", "2023-11-14T22:13:20Z"],
    ))
    .run()
    .ok();
    assert_eq!(sha_of(&same), sha_of(&epoch));

    // A time that is not one is a usage error.
    let bad = cmd(&save_args(&host, &dir.path().join("x.tar"), &[]))
        .env("SOURCE_DATE_EPOCH", "tomorrow")
        .run()
        .expect_code(2);
    assert!(bad.stderr.contains("SOURCE_DATE_EPOCH"), "{bad}");
}
