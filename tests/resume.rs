//! Resume: an interrupted `save` (Ctrl-C, SIGKILL) keeps its partial bundle and a rerun
//! of the same command reuses it; an interrupted `push` is finished by running it again.
//! (Compact saves: `tests/resume_compact.rs`.)
//!
//! Real registries, real signals to the real process. The source (or, for push, the
//! target) sits behind a throttling TCP proxy so that a transfer takes long enough to
//! be interrupted midway; `--jobs 1` makes progress sequential. The proxy
//! (`support::throttle`) also records the blob requests that pass it. The source
//! images and the interrupted runs are `support::resume`'s.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use support::cli::airlock;
use support::registry::TestRegistry;
use support::resume::*;
use support::throttle::Throttle;

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

fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    rd.filter_map(|e| e.ok())
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}
