//! Resume: an interrupted `save` (Ctrl-C, SIGKILL) keeps its partial bundle and a rerun
//! of the same command reuses it (a compact save's too: its raw layer tars in complete
//! coarse frames); an interrupted `push` is finished by running it again.
//!
//! Real registries, real signals to the real process. The source (or, for push, the
//! target) sits behind a throttling TCP proxy so that a transfer takes long enough to
//! be interrupted midway; `--jobs 1` makes progress sequential. The proxy
//! (`support::throttle`) also records the blob requests that pass it, so a test can
//! tell which layers a rerun fetched.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cli::{KillOnDrop, Run, airlock, airlock_bin};
use support::images::{
    Blob, Image, ImageSpec, Layer, OCI_LAYER_GZIP, PushOptions, layer, push, random_file,
};
use support::registry::TestRegistry;
use support::registry_api::registry_digest;
use support::throttle::Throttle;

const MIB: u64 = 1024 * 1024;
/// Each test image: this many layers of this many random bytes.
const LAYERS: usize = 4;
const LAYER_SIZE: usize = 8 * 1024 * 1024;
/// Proxy rate while a run is to be interrupted.
const SLOW: u64 = 12 * MIB;

// ---------------------------------------------------------------------------------
// Source images.

/// Two images of [`LAYERS`] seeded-random layers each, in a fresh registry.
struct Source {
    reg: TestRegistry,
    images: Vec<Image>,
}

impl Source {
    fn start(seed: u64) -> Source {
        Source::start_with(seed, |l| l, |n| n)
    }

    /// [`Source::start`] with each layer passed through `regzip` first, and the random
    /// file of the `n`th layer (counting through both images) made from the seed of layer
    /// `same_as(n)`: layers whose file is the same are similar, not equal (their tar
    /// headers name different paths).
    fn start_with(seed: u64, regzip: fn(Layer) -> Layer, same_as: fn(usize) -> usize) -> Source {
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

    fn layer_digests(&self) -> BTreeSet<String> {
        self.images
            .iter()
            .flat_map(|i| i.layers.iter().map(|l| l.digest().to_string()))
            .collect()
    }

    fn layers(&self) -> impl Iterator<Item = &Layer> {
        self.images.iter().flat_map(|i| i.layers.iter())
    }

    fn layer_bytes(&self) -> u64 {
        self.images
            .iter()
            .flat_map(|i| i.layers.iter().map(|l| l.gz.size()))
            .sum()
    }
}

fn names(host: &str) -> Vec<String> {
    vec![format!("{host}/app:1"), format!("{host}/tools:2")]
}

// ---------------------------------------------------------------------------------
// Running airlock as a child and interrupting it.

fn save_args(host: &str, out: &Path, extra: &[&str]) -> Vec<String> {
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
fn spawn(args: &[String]) -> KillOnDrop {
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

fn finish(child: KillOnDrop, args: &[String]) -> Run {
    let out = child.into_inner().wait_with_output().unwrap();
    Run {
        args: args.to_vec(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([format!("-{sig}"), child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {}", child.id());
}

/// Total size of the hidden partial files of `out` (one file, or parts).
fn partial_size(out: &Path) -> u64 {
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
fn wait_for(child: &mut Child, what: &str, at_least: u64, size: impl Fn() -> u64) {
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
fn interrupted_save(proxy: &Throttle, out: &Path, extra: &[&str], sig: &str) -> Run {
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

fn listing(dir: &Path) -> Vec<String> {
    support::cli::dir_listing(dir)
}

/// The images (name → digest) and blob digests of a bundle, as `ls --json` shows them.
fn contents(bundle: &Path) -> (Vec<(String, String)>, BTreeSet<String>) {
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
    let toc = support::cli::Bundle::open(bundle);
    let blobs = toc
        .names()
        .into_iter()
        .filter_map(|n| n.strip_prefix("blobs/sha256/"))
        .map(|h| format!("sha256:{h}"))
        .collect();
    (images, blobs)
}

fn num(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no `{key}` in {v:#}"))
}

/// The reference: a fresh, uninterrupted save of the same images through the proxy.
fn fresh_save(proxy: &Throttle, dir: &Path, name: &str, extra: &[&str]) -> (PathBuf, Value) {
    proxy.set_rate(0);
    let out = dir.join(name);
    let args = save_args(&proxy.addr, &out, extra);
    let v = finish(spawn(&args), &args).ok().json();
    assert_eq!(num(&v, "reused"), 0, "{v:#}");
    (out, v)
}

// ---------------------------------------------------------------------------------

#[test]
fn ctrl_c_keeps_the_partial_bundle_and_the_rerun_resumes_it() {
    let src = Source::start(1);
    let proxy = Throttle::start(&src.reg.addr(), 0);
    let dir = tempfile::tempdir().unwrap();
    let (fresh, fresh_json) = fresh_save(&proxy, dir.path(), "fresh.tar.zst", &[]);
    assert_eq!(num(&fresh_json, "fetched_bytes"), src.layer_bytes());
    let out = dir.path().join("out.tar.zst");

    // A second save to the same output is refused while the first runs.
    proxy.set_rate(SLOW);
    let args = save_args(&proxy.addr, &out, &[]);
    let mut first = spawn(&args);
    wait_for(
        &mut first,
        "the partial bundle",
        5 * LAYER_SIZE as u64 / 2,
        || partial_size(&out),
    );
    let second = airlock(&save_args(&proxy.addr, &out, &[])).expect_code(1);
    assert!(
        second.stderr.contains("another airlock save is writing")
            && second.stderr.contains(&first.id().to_string()),
        "{second}"
    );
    // Ctrl-C: exit 130, the partial bundle kept, and the message says how to go on.
    signal(&first, "INT");
    let run = finish(first, &args).expect_code(130);
    proxy.set_rate(0);
    let partial = dir.path().join(".out.tar.zst.partial");
    assert!(
        run.stderr.contains(".out.tar.zst.partial")
            && run.stderr.contains("run the same command again to resume")
            && run.stderr.contains("--fresh"),
        "{run}"
    );
    eprintln!("SAVE CTRL-C MESSAGE: {}", run.stderr);
    assert!(!out.exists(), "no file under the final name: {run}");
    assert!(partial.exists(), "{:?}", listing(dir.path()));
    assert_eq!(
        listing(dir.path()),
        vec![".out.tar.zst.partial", "fresh.tar.zst"],
        "no lock or staging directory is left"
    );

    // The rerun reuses what was kept, fetches the rest, and makes the same bundle.
    let args = save_args(&proxy.addr, &out, &[]);
    let v = finish(spawn(&args), &args).ok().json();
    let (reused, fetched) = (num(&v, "reused"), num(&v, "fetched"));
    assert!(reused >= 2, "{v:#}");
    assert_eq!(reused + fetched, src.layer_digests().len() as u64, "{v:#}");
    assert!(num(&v, "fetched_bytes") < num(&fresh_json, "fetched_bytes"));
    assert_eq!(contents(&out), contents(&fresh));
    assert_eq!(
        listing(dir.path()),
        vec!["fresh.tar.zst", "out.tar.zst"],
        "the partial bundle is gone"
    );
    let pct = 100.0 * num(&v, "reused_bytes") as f64 / src.layer_bytes() as f64;
    eprintln!(
        "RESUME FIGURE (Ctrl-C, .tar.zst): the rerun did not fetch {} of {} layer bytes again ({pct:.0}%)",
        num(&v, "reused_bytes"),
        src.layer_bytes()
    );

    // The human summary says what was resumed.
    let partial_again = {
        let run = interrupted_save(&proxy, &out, &[], "INT").expect_code(130);
        assert!(partial.exists(), "{run}");
        run
    };
    let _ = partial_again;
    let mut args = save_args(&proxy.addr, &out, &[]);
    args.retain(|a| a != "--json");
    let run = finish(spawn(&args), &args).ok();
    assert!(
        run.stderr.contains("resumed: reused") && run.stderr.contains("from the interrupted run"),
        "{run}"
    );
}

#[test]
fn sigkill_anywhere_then_rerun_for_tar_zst_and_split() {
    let src = Source::start(2);
    let proxy = Throttle::start(&src.reg.addr(), 0);
    let dir = tempfile::tempdir().unwrap();
    // Pinned times: the resumed bundle must be the uninterrupted one, byte for byte.
    let pin = ["--created", "2024-05-01T12:00:00Z"];
    for (name, extra) in [
        ("k.tar", &pin[..]),
        ("k.tar.zst", &pin[..]),
        ("s.tar.zst", &["--split", "5M", pin[0], pin[1]][..]),
    ] {
        let (fresh, fresh_json) = fresh_save(&proxy, dir.path(), &format!("fresh-{name}"), extra);
        let out = dir.path().join(name);
        let run = interrupted_save(&proxy, &out, extra, "KILL");
        assert_eq!(run.code, None, "killed by a signal: {run}");
        assert!(partial_size(&out) > 0, "{name}: {:?}", listing(dir.path()));
        let args = save_args(&proxy.addr, &out, extra);
        let v = finish(spawn(&args), &args).ok().json();
        assert!(num(&v, "reused") >= 1, "{name}: {v:#}");
        assert!(
            num(&v, "fetched_bytes") < num(&fresh_json, "fetched_bytes"),
            "{name}: {v:#}"
        );
        let split = extra.contains(&"--split");
        let read_from = if split {
            dir.path().join(format!("{name}.000"))
        } else {
            out.clone()
        };
        let fresh_from = if split {
            dir.path().join(format!("fresh-{name}.000"))
        } else {
            fresh.clone()
        };
        let (images, blobs) = contents_any(&read_from);
        assert_eq!((images, blobs), contents_any(&fresh_from), "{name}");
        for (resumed, reference) in same_named_files(dir.path(), name) {
            assert!(
                fs::read(&resumed).unwrap() == fs::read(&reference).unwrap(),
                "{} differs from the uninterrupted {}",
                resumed.display(),
                reference.display()
            );
        }
        let left: Vec<String> = listing(dir.path())
            .into_iter()
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{name}: leftovers {left:?}");
        eprintln!(
            "RESUME FIGURE (SIGKILL, {name}): reused {} of {} layer bytes ({:.0}%)",
            num(&v, "reused_bytes"),
            src.layer_bytes(),
            100.0 * num(&v, "reused_bytes") as f64 / src.layer_bytes() as f64
        );
    }
}

/// The files of a resumed save named `name` (the bundle, or each part) paired with the
/// uninterrupted save's `fresh-<name>` counterparts. The parts index is not compared:
/// its `id` is random by design (it tells two saves apart).
fn same_named_files(dir: &Path, name: &str) -> Vec<(PathBuf, PathBuf)> {
    let mut pairs: Vec<(PathBuf, PathBuf)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n == name
                || n.strip_prefix(name)
                    .and_then(|r| r.strip_prefix('.'))
                    .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|n| (dir.join(&n), dir.join(format!("fresh-{n}"))))
        .collect();
    pairs.sort();
    assert!(!pairs.is_empty(), "no files named {name}*");
    for (_, reference) in &pairs {
        assert!(reference.exists(), "{} is missing", reference.display());
    }
    pairs
}

/// Like [`contents`], for a bundle or the first part of a split one (joined first).
fn contents_any(path: &Path) -> (Vec<(String, String)>, BTreeSet<String>) {
    let name = path.to_string_lossy();
    if !name.ends_with(".000") {
        return contents(path);
    }
    let v = airlock(&["verify", &name, "--json"]).ok().json();
    assert_eq!(v["ok"], true, "{v:#}");
    let base = name.trim_end_matches(".000");
    let joined = PathBuf::from(format!("{base}.joined.tar.zst"));
    let mut all = Vec::new();
    for i in 0.. {
        let p = PathBuf::from(format!("{base}.{i:03}"));
        if !p.exists() {
            break;
        }
        all.extend(fs::read(p).unwrap());
    }
    fs::write(&joined, all).unwrap();
    let c = contents(&joined);
    fs::remove_file(&joined).unwrap();
    c
}

#[test]
fn damaged_kept_blob_is_fetched_again_and_fresh_ignores_the_partial() {
    let src = Source::start(3);
    let proxy = Throttle::start(&src.reg.addr(), 0);
    let dir = tempfile::tempdir().unwrap();
    let (fresh, _) = fresh_save(&proxy, dir.path(), "fresh.tar", &[]);
    let out = dir.path().join("d.tar");
    interrupted_save(&proxy, &out, &[], "INT").expect_code(130);
    let partial = dir.path().join(".d.tar.partial");
    let saved = fs::read(&partial).unwrap();

    // Which layers the partial holds whole, and where the first one's data is.
    let layers = src.layer_digests();
    let mut kept = Vec::new();
    let mut archive = tar::Archive::new(&saved[..]);
    for e in archive.entries().unwrap() {
        let Ok(e) = e else { break };
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let (at, size) = (e.raw_file_position(), e.size());
        if at + size > saved.len() as u64 {
            break;
        }
        if let Some(hex) = name.strip_prefix("blobs/sha256/")
            && layers.contains(&format!("sha256:{hex}"))
        {
            kept.push((at, size));
        }
    }
    assert!(kept.len() >= 2, "{kept:?}");
    let mut damaged = saved.clone();
    let (at, size) = kept[0];
    damaged[(at + size / 2) as usize] ^= 0x01;
    fs::write(&partial, &damaged).unwrap();

    let args = save_args(&proxy.addr, &out, &[]);
    let run = finish(spawn(&args), &args).ok();
    let v = run.json();
    assert_eq!(num(&v, "reused"), kept.len() as u64 - 1, "{v:#}\n{run}");
    assert_eq!(contents(&out), contents(&fresh));

    // --fresh ignores (and deletes) a partial bundle.
    fs::write(&partial, &saved).unwrap();
    let args = save_args(&proxy.addr, &out, &["--fresh"]);
    let v = finish(spawn(&args), &args).ok().json();
    assert_eq!(num(&v, "reused"), 0, "{v:#}");
    assert_eq!(num(&v, "fetched_bytes"), src.layer_bytes(), "{v:#}");
    assert!(!partial.exists());
    assert_eq!(contents(&out), contents(&fresh));
}

#[test]
fn interrupted_push_is_finished_by_running_it_again() {
    let src = Source::start(4);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("b.tar.zst");
    let mut args = save_args(&src.reg.addr(), &bundle, &[]);
    args.retain(|a| a != "--jobs" && a != "1");
    finish(spawn(&args), &args).ok();

    let target = TestRegistry::start();
    let proxy = Throttle::start(&target.addr(), SLOW);
    let push_args = |json: bool| -> Vec<String> {
        let mut a: Vec<String> = [
            "push",
            bundle.to_str().unwrap(),
            &proxy.addr,
            "--jobs",
            "1",
            "--no-progress",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if json {
            a.push("--json".into());
        }
        a
    };
    let stored = || dir_size(&target.storage_dir());

    // Ctrl-C: exit 130, naming what it was pushing and how to finish.
    let args = push_args(false);
    let mut child = spawn(&args);
    wait_for(
        &mut child,
        "the target's storage",
        2 * LAYER_SIZE as u64,
        stored,
    );
    signal(&child, "INT");
    let run = finish(child, &args).expect_code(130);
    assert!(
        run.stderr.contains("interrupted")
            && run.stderr.contains("run the same command again to finish"),
        "{run}"
    );
    eprintln!("PUSH CTRL-C MESSAGE: {}", run.stderr);
    assert!(
        run.stderr.contains("pushing blob sha256:"),
        "names the blob it was at: {run}"
    );

    // SIGKILL further on, then the rerun finishes and skips what is there.
    let before = stored();
    let mut child = spawn(&args);
    wait_for(
        &mut child,
        "the target's storage",
        before + 2 * LAYER_SIZE as u64,
        stored,
    );
    signal(&child, "KILL");
    assert_eq!(finish(child, &args).code, None);

    proxy.set_rate(0);
    let v = finish(spawn(&push_args(true)), &push_args(true))
        .ok()
        .json();
    assert!(v["blobs"]["skipped"].as_u64().unwrap() >= 2, "{v:#}");
    assert_same_images(&src.reg, &target);
}

/// Both registries answer every source image with the same manifest digest.
fn assert_same_images(source: &TestRegistry, target: &TestRegistry) {
    for name in ["app:1", "tools:2"] {
        let (repo, tag) = name.split_once(':').unwrap();
        assert_eq!(
            registry_digest(&target.addr(), repo, tag),
            registry_digest(&source.addr(), repo, tag),
            "{name}"
        );
    }
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    rd.filter_map(|e| e.ok())
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

// ---------------------------------------------------------------------------------
// Compact saves.

/// The layer gzipped again by Python's `gzip` (stock zlib, level 6, mtime 0): an
/// independent writer whose output `save --compact` rebuilds, so every layer is stored
/// as raw tar + recipe.
fn python_gzip(mut l: Layer) -> Layer {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import gzip,sys; sys.stdout.buffer.write(gzip.compress(sys.stdin.buffer.read(), 6, mtime=0))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut stdin = child.stdin.take().unwrap();
    let tar = l.tar.clone();
    let writer = thread::spawn(move || stdin.write_all(&tar).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "python3 gzip failed");
    l.gz = Blob::new(OCI_LAYER_GZIP, out.stdout);
    l
}

/// The offset of the first `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = needle[0];
    (0..=haystack.len().saturating_sub(needle.len()))
        .filter(|&i| haystack[i] == first)
        .find(|&i| &haystack[i..i + needle.len()] == needle)
}

/// The layers whose raw tar lies whole in `file`, a compact partial, in the order they
/// are stored: found without airlock, by decoding the file with the zstd crate as far
/// as it goes and walking the tar entries in it.
fn raw_layers_in(src: &Source, file: &Path) -> Vec<String> {
    let mut decoder = zstd::stream::read::Decoder::new(fs::File::open(file).unwrap()).unwrap();
    let mut tar = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    while let Ok(n @ 1..) = decoder.read(&mut buf) {
        tar.extend_from_slice(&buf[..n]);
    }
    let mut kept = Vec::new();
    for entry in tar::Archive::new(&tar[..]).entries().unwrap() {
        let Ok(entry) = entry else { break };
        if entry.raw_file_position() + entry.size() > tar.len() as u64 {
            break;
        }
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if let Some(l) = src
            .layers()
            .find(|l| name == format!("blobs/sha256/{}", &l.diff_id["sha256:".len()..]))
        {
            kept.push(l.digest().to_string());
        }
    }
    kept
}

/// Where the compact partial `file` holds the middle of `layer`'s raw tar verbatim (a
/// raw zstd block: random bytes not compressed against another layer), if it does.
fn verbatim_in(src: &Source, file: &[u8], layer: &str) -> Option<usize> {
    let l = src.layers().find(|l| l.digest() == layer).unwrap();
    let mid = l.tar.len() / 2;
    find(file, &l.tar[mid..mid + 64])
}

#[test]
fn interrupted_compact_save_resumes_from_its_complete_frames() {
    // The first layer of tools:2 holds the same file as the first of app:1: the save
    // pulls it up behind that one (similar layers share a frame), which a rerun must do
    // too, from sketches it takes from the partial's raw tars.
    let src = Source::start_with(5, python_gzip, |n| if n == LAYERS { 0 } else { n });
    let proxy = Throttle::start(&src.reg.addr(), 0);
    let dir = tempfile::tempdir().unwrap();
    let extra = ["--compact", "--created", "2024-05-01T12:00:00Z"];
    let layers = src.layer_digests();

    // The reference: uninterrupted, every layer read twice (identified, then written).
    proxy.reset();
    let (fresh, fresh_json) = fresh_save(&proxy, dir.path(), "fresh-c.tar.zst", &extra);
    let gets = proxy.blob_gets();
    for d in &layers {
        assert_eq!(gets.get(d), Some(&2), "{d}: {gets:?}");
    }
    assert_eq!(num(&fresh_json, "fetched_bytes"), src.layer_bytes());
    let fresh_down = proxy.bytes_down();
    assert!(fresh_down >= 2 * src.layer_bytes(), "{fresh_down}");
    let toc = support::cli::Bundle::open(&fresh).toc();
    assert_eq!(
        toc["compact"].as_array().map_or(0, |c| c.len()),
        layers.len(),
        "every layer is stored as raw tar + recipe: {toc:#}"
    );

    // Ctrl-C once the first coarse frame (the head and the first layers, 32 MiB and
    // more of raw tar) is on disk: exit 130, the partial kept, the notice says what.
    let out = dir.path().join("c.tar.zst");
    let run = interrupted_compact_save(&proxy, &out, &extra);
    let partial = dir.path().join(".c.tar.zst.partial");
    assert!(partial.exists(), "{run}\n{:?}", listing(dir.path()));
    eprintln!("COMPACT CTRL-C MESSAGE: {}", run.stderr);
    assert!(
        run.stderr.contains(".c.tar.zst.partial")
            && run.stderr.contains("are kept in")
            && run.stderr.contains("run the same command again to resume"),
        "{run}"
    );
    let kept = raw_layers_in(&src, &partial);
    assert!(
        kept.len() >= 3 && kept.len() < layers.len(),
        "{kept:?}: {run}"
    );
    let twin = src.images[1].layers[0].digest().to_string();
    assert_eq!(kept[0], src.images[0].layers[0].digest());
    assert_eq!(kept[1], twin, "the similar layer follows its twin");
    let saved = fs::read(&partial).unwrap();

    // The same partial, damaged inside a kept raw tar (one stored verbatim, neither a
    // twin nor the frame's last), for a second output.
    let damaged_out = dir.path().join("d.tar.zst");
    let (victim, frame_end) = (kept[2].clone(), kept.last().unwrap().clone());
    assert_ne!(victim, frame_end);
    let at = verbatim_in(&src, &saved, &victim).expect("stored verbatim");
    let mut damaged = saved.clone();
    damaged[at + 10] ^= 0x01;
    fs::write(dir.path().join(".d.tar.zst.partial"), &damaged).unwrap();

    // The rerun takes every kept layer from the partial (no request for it), fetches
    // and identifies the others as usual, and writes the uninterrupted bundle, byte
    // for byte.
    proxy.reset();
    let args = save_args(&proxy.addr, &out, &extra);
    let run = finish(spawn(&args), &args).ok();
    let v = run.json();
    assert_eq!(num(&v, "reused"), kept.len() as u64, "{v:#}\n{run}");
    let gets = proxy.blob_gets();
    for d in &layers {
        let want = if kept.contains(d) { None } else { Some(&2) };
        assert_eq!(gets.get(d), want, "{d}: {gets:?}");
    }
    let kept_bytes: u64 = src
        .layers()
        .filter(|l| kept.iter().any(|k| k == l.digest()))
        .map(|l| l.gz.size())
        .sum();
    assert_eq!(num(&v, "reused_bytes"), kept_bytes, "{v:#}");
    assert!(
        proxy.bytes_down() < fresh_down - 2 * kept_bytes + MIB,
        "{} bytes came down, {fresh_down} for the uninterrupted save",
        proxy.bytes_down()
    );
    assert!(
        fs::read(&out).unwrap() == fs::read(&fresh).unwrap(),
        "the resumed compact bundle differs from the uninterrupted one"
    );
    assert_eq!(contents(&out), contents(&fresh));
    assert_eq!(
        listing(dir.path()),
        vec![".d.tar.zst.partial", "c.tar.zst", "fresh-c.tar.zst"],
        "the partial bundle is gone"
    );
    eprintln!(
        "RESUME FIGURE (Ctrl-C, --compact): the rerun did not fetch {} of {} layer bytes again \
         ({} of {} layers; {} bytes came down, {fresh_down} for an uninterrupted save)",
        kept_bytes,
        src.layer_bytes(),
        kept.len(),
        layers.len(),
        proxy.bytes_down()
    );

    // Pushed, the resumed bundle gives the source's digests.
    let target = TestRegistry::start();
    airlock(&[
        "push",
        out.to_str().unwrap(),
        &target.addr(),
        "--no-progress",
    ])
    .ok();
    assert_same_images(&src.reg, &target);

    // A damaged raw tar in the partial: that layer is read from its source again, the
    // other kept layers are still taken from the partial, the bundle is the same. (The
    // last layer of the damaged frame too is read again: reading it to the frame's end
    // runs into the frame's content checksum, which the damage breaks.)
    proxy.reset();
    let args = save_args(&proxy.addr, &damaged_out, &extra);
    let run = finish(spawn(&args), &args).ok();
    let v = run.json();
    assert_eq!(num(&v, "reused"), kept.len() as u64 - 2, "{v:#}\n{run}");
    let gets = proxy.blob_gets();
    for d in &kept {
        let want = (*d == victim || *d == frame_end).then_some(&2);
        assert_eq!(gets.get(d), want, "{d}: {gets:?}");
    }
    assert!(
        fs::read(&damaged_out).unwrap() == fs::read(&fresh).unwrap(),
        "the bundle resumed from a damaged partial differs from the uninterrupted one"
    );

    // kill -9 once the first frame is on disk (each frame is written as soon as it is
    // compressed): the rerun reuses what that frame holds and makes the same bundle.
    let killed_out = dir.path().join("k.tar.zst");
    proxy.set_rate(SLOW);
    let args = save_args(&proxy.addr, &killed_out, &extra);
    let mut child = spawn(&args);
    wait_for(&mut child, "the partial bundle", 1, || {
        partial_size(&killed_out)
    });
    wait_stable(|| partial_size(&killed_out));
    signal(&child, "KILL");
    assert_eq!(finish(child, &args).code, None);
    proxy.set_rate(0);
    let in_killed = raw_layers_in(&src, &dir.path().join(".k.tar.zst.partial"));
    assert!(!in_killed.is_empty());
    proxy.reset();
    let v = finish(spawn(&args), &args).ok().json();
    assert_eq!(num(&v, "reused"), in_killed.len() as u64, "{v:#}");
    let gets = proxy.blob_gets();
    for d in &in_killed {
        assert_eq!(gets.get(d), None, "{d}: {gets:?}");
    }
    assert!(
        fs::read(&killed_out).unwrap() == fs::read(&fresh).unwrap(),
        "the compact bundle resumed after kill -9 differs from the uninterrupted one"
    );
    let left: Vec<String> = listing(dir.path())
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "leftovers {left:?}");
}

/// Waits until `size()` has not changed for half a second.
fn wait_stable(size: impl Fn() -> u64) {
    let mut last = size();
    loop {
        thread::sleep(Duration::from_millis(500));
        let now = size();
        if now == last {
            return;
        }
        last = now;
    }
}

/// Starts a throttled compact save and sends it Ctrl-C as soon as its partial file
/// grows (the first coarse frame is being written: the save completes that write
/// before it looks at the signal).
fn interrupted_compact_save(proxy: &Throttle, out: &Path, extra: &[&str]) -> Run {
    proxy.set_rate(SLOW);
    let args = save_args(&proxy.addr, out, extra);
    let mut child = spawn(&args);
    wait_for(&mut child, "the partial bundle", 1, || partial_size(out));
    signal(&child, "INT");
    let run = finish(child, &args).expect_code(130);
    proxy.set_rate(0);
    run
}
