//! Resume of an interrupted `save --compact`: the partial bundle keeps its complete
//! coarse frames, and a rerun takes the raw layer tars they hold without the network,
//! proving each recipe again, and writes the bundle an uninterrupted save writes.
//!
//! Real registry behind the throttling proxy of `support::throttle` (which records the
//! blob requests, so the test tells which layers a rerun fetched), real SIGKILL; the
//! source images and the run helpers are `support::resume`'s.

mod support;

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use support::cli::{Run, airlock};
use support::images::{Blob, Layer, OCI_LAYER_GZIP};
use support::registry::TestRegistry;
use support::resume::*;
use support::throttle::Throttle;

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
