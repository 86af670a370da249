//! Failing registries: `airlock save` and `airlock push` through a fault-injecting proxy
//! ([`support::faulty`]) in front of a real `docker-registry`.
//!
//! For every fault the run must either finish correctly (the bundle verifies and its
//! digests are the source's; the target's tags serve the source's manifests) or fail
//! with a clear error naming the blob or image, and wrong bytes are never accepted: a
//! failed save leaves no bundle, a failed push leaves no tag. Every CLI run has a
//! generous time limit (it is killed and the test fails past it), so retries are
//! shown to be bounded. Faults that need short client timeouts (stalls) or many
//! attempts run through the library with short [`ClientOptions`] delays.
//!
//! Each test prints a table of the faults injected and how each run ended
//! (`cargo test --test faults -- --nocapture`).

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use airlock::cli::{Cli, Command as Sub};
use airlock::registry::ClientOptions;
use airlock::settings::{PushSettings, SaveSettings};
use clap::Parser as _;
use support::cli::{Bundle, Run, airlock, airlock_bin, dir_listing};
use support::corpus::{Corpus, base_layer, data_layer};
use support::faulty::{Fault, FaultyProxy, Rule};
use support::images::{Image, PushOptions, hex_of, push};
use support::registry::TestRegistry;
use support::registry_api::{registry_manifest, tags};

const KEEP: PushOptions<'static> = PushOptions {
    format: None,
    creds: None,
};

/// No CLI run may take longer than this (retries are bounded far below it).
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// This file's images: a small base layer, then ~192 KiB of incompressible bytes (the
/// "big" blob every fault aims at).
static IMAGES: LazyLock<Corpus> = LazyLock::new(|| {
    Corpus::new(base_layer("faults", &[]), |seed| {
        data_layer(seed, 192 * 1024)
    })
});

fn big_layer(img: &Image) -> String {
    img.layers[1].digest().to_string()
}

/// Runs airlock with `args` (and `DOCKER_CONFIG` at an empty dir), killing it past
/// `limit`; output goes to files, never to pipes nobody drains.
fn run_bounded(args: &[String], limit: Duration) -> (Run, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let out = fs::File::create(dir.path().join("out")).unwrap();
    let err = fs::File::create(dir.path().join("err")).unwrap();
    let started = Instant::now();
    // Killed on drop: a panic below (or in the caller) leaves nothing running.
    let mut child = support::cli::KillOnDrop::new(
        Command::new(airlock_bin())
            .args(args)
            .env("DOCKER_CONFIG", dir.path())
            .env_remove("DOCKER_HOST")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("run airlock"),
    );
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`airlock {}` still ran after {limit:?}: retries are not bounded\n{}",
                args.join(" "),
                fs::read_to_string(dir.path().join("err")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let run = Run {
        args: args.to_vec(),
        code: status.code(),
        stdout: fs::read_to_string(dir.path().join("out")).unwrap(),
        stderr: fs::read_to_string(dir.path().join("err")).unwrap(),
    };
    (run, started.elapsed())
}

/// One line of the report table.
struct Row {
    side: &'static str,
    fault: String,
    injected: usize,
    ended: String,
    secs: f64,
}

fn print_table(title: &str, rows: &[Row]) {
    eprintln!("\n{title}");
    eprintln!(
        "| {:<5} | {:<52} | {:>8} | {:>6} | how the run ended",
        "run", "fault", "injected", "secs"
    );
    for r in rows {
        eprintln!(
            "| {:<5} | {:<52} | {:>8} | {:>6.1} | {}",
            r.side,
            r.fault,
            r.injected,
            r.secs,
            r.ended.chars().take(220).collect::<String>()
        );
    }
}

/// The first line of the error (airlock prints `error: ...` then `Caused by:` lines).
fn first_error_line(run: &Run) -> String {
    run.stderr
        .lines()
        .find(|l| l.starts_with("error"))
        .unwrap_or("")
        .to_string()
}

// ---------------------------------------------------------------------------------
// save

/// A source registry holding `app:1`.
struct Source {
    reg: TestRegistry,
    image: Image,
    digest: String,
}

fn source() -> Source {
    let reg = TestRegistry::start();
    let image = IMAGES.image("linux/amd64", 41);
    push(&image, &format!("{}/app:1", reg.addr()), &KEEP);
    let digest = registry_manifest(&reg.addr(), "app", "1", None).digest;
    Source { reg, image, digest }
}

/// The bundle is sound, verifies, holds the source's manifest digest and the big
/// layer's exact bytes.
fn assert_good_bundle(path: &Path, name: &str, src: &Source) {
    let b = Bundle::open(path);
    b.assert_sound();
    assert_eq!(b.toc_image(name)["digest"], src.digest.as_str(), "digest");
    assert_eq!(
        b.blob(&big_layer(&src.image)),
        &src.image.layers[1].gz.bytes[..]
    );
    airlock(&["verify", path.to_str().unwrap()]).ok();
}

/// `airlock save` through a proxy with `rules`; asserts the outcome and returns a row.
fn save_case(src: &Source, fault: &str, rules: Vec<Rule>, expect_ok: bool) -> Row {
    let proxy = FaultyProxy::start(&src.reg.url(), rules);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b.tar.zst");
    let name = format!("{}/app:1", proxy.addr());
    let args: Vec<String> = vec![
        "save".into(),
        name.clone(),
        "-o".into(),
        out.display().to_string(),
        "--no-progress".into(),
    ];
    let (run, took) = run_bounded(&args, RUN_LIMIT);
    let injected = proxy.injected();
    assert!(injected > 0, "{fault}: no fault was injected; {run}");
    let ended = if expect_ok {
        let run = run.ok();
        assert_good_bundle(&out, &name, src);
        let _ = run;
        "ok: bundle verifies, digests = source".to_string()
    } else {
        let run = run.expect_code(1);
        assert!(
            !out.exists(),
            "{fault}: a failed save left {}",
            out.display()
        );
        // Nothing but what resume needs: a hidden partial, kept only when layers had
        // already been written, and then the message says how to resume.
        let left = dir_listing(dir.path());
        assert!(
            left.iter().all(|f| f == ".b.tar.zst.partial"),
            "{fault}: leftovers {left:?}"
        );
        if !left.is_empty() {
            assert!(
                run.output()
                    .contains("run the same command again to resume"),
                "{fault}: a kept partial must come with how to resume: {run}"
            );
        }
        format!("exit 1, no bundle: {}", first_error_line(&run))
    };
    Row {
        side: "save",
        fault: fault.to_string(),
        injected,
        ended,
        secs: took.as_secs_f64(),
    }
}

#[test]
fn save_through_a_failing_registry() {
    let src = source();
    let digest = big_layer(&src.image);
    let layer = format!("/blobs/{digest}");
    let wrong = format!("sha256:{}", "0".repeat(64));
    // (fault, rules, None: must succeed | Some(text the error must hold))
    let cases: Vec<(&str, Vec<Rule>, Option<&str>)> = vec![
        (
            "drop mid-blob after 64 KiB (first 2 GETs)",
            vec![Rule::new("GET", &layer, Fault::DropAfter(64 * 1024)).first(2)],
            None,
        ),
        (
            "HTTP 500 on the blob (first 2 GETs)",
            vec![Rule::new("GET", &layer, Fault::Status(500)).first(2)],
            None,
        ),
        (
            "429 Retry-After: 1 on the manifest (first 2 GETs)",
            vec![Rule::new("GET", "/manifests/", too_many()).first(2)],
            None,
        ),
        (
            "HTTP 503 on every 3rd request of any kind",
            vec![Rule::new("*", "/v2/", Fault::Status(503)).every(3)],
            None,
        ),
        (
            "wrong bytes (1 bit flipped) in the blob, once",
            vec![Rule::new("GET", &layer, Fault::FlipByte).first(1)],
            None,
        ),
        (
            "wrong bytes in the blob, always",
            vec![Rule::new("GET", &layer, Fault::FlipByte)],
            Some(&digest),
        ),
        (
            "manifest with a wrong Docker-Content-Digest",
            vec![Rule::new(
                "GET",
                "/manifests/",
                Fault::SetHeader("docker-content-digest", wrong.clone()),
            )],
            Some("/app:1"),
        ),
        (
            "HTTP 500 on the blob, always",
            vec![Rule::new("GET", &layer, Fault::Status(500))],
            Some(&digest),
        ),
    ];
    let mut rows = Vec::new();
    for (fault, rules, expect) in cases {
        let row = save_case(&src, fault, rules, expect.is_none());
        if let Some(text) = expect {
            assert!(
                row.ended.contains(text) && row.ended.contains("/app:1"),
                "{fault}: the error names {text} and the image: {}",
                row.ended
            );
        }
        if fault.starts_with("429") {
            assert!(row.secs >= 2.0, "Retry-After: 1 twice was not honoured");
        }
        rows.push(row);
    }
    print_table("save through a failing registry", &rows);
}

fn too_many() -> Fault {
    Fault::TooManyRequests {
        retry_after_secs: 1,
    }
}

// ---------------------------------------------------------------------------------
// push

/// A bundle saved (without faults) from a fresh source registry.
struct Saved {
    src: Source,
    _dir: tempfile::TempDir,
    bundle: PathBuf,
}

fn saved() -> Saved {
    let src = source();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("b.tar.zst");
    let name = format!("{}/app:1", src.reg.addr());
    airlock(&["save", &name, "-o", bundle.to_str().unwrap(), "-q"]).ok();
    Saved {
        src,
        _dir: dir,
        bundle,
    }
}

/// `airlock push` through a proxy with `rules` into a fresh registry; asserts the
/// outcome and returns a row.
fn push_case(s: &Saved, fault: &str, rules: Vec<Rule>, expect_ok: bool) -> Row {
    let target = TestRegistry::start();
    let proxy = FaultyProxy::start(&target.url(), rules);
    let args: Vec<String> = vec![
        "push".into(),
        s.bundle.display().to_string(),
        proxy.addr(),
        "--no-progress".into(),
    ];
    let (run, took) = run_bounded(&args, RUN_LIMIT);
    let injected = proxy.injected();
    assert!(injected > 0, "{fault}: no fault was injected; {run}");
    let ended = if expect_ok {
        run.ok();
        let got = registry_manifest(&target.addr(), "app", "1", None);
        assert_eq!(
            got.digest, s.src.digest,
            "{fault}: tag digest on the target"
        );
        let want = registry_manifest(&s.src.reg.addr(), "app", "1", None);
        assert_eq!(got.bytes, want.bytes, "{fault}: manifest bytes");
        "ok: target tag = source digest".to_string()
    } else {
        let run = run.expect_code(1);
        assert_eq!(
            tags(&target.addr(), "app", None),
            Vec::<String>::new(),
            "{fault}: a failed push left a tag; {run}"
        );
        format!("exit 1, no tag: {}", first_error_line(&run))
    };
    Row {
        side: "push",
        fault: fault.to_string(),
        injected,
        ended,
        secs: took.as_secs_f64(),
    }
}

#[test]
fn push_through_a_failing_registry() {
    let s = saved();
    let layer = big_layer(&s.src.image);
    // The upload PUT carries `?digest=sha256%3A<hex>`.
    let hex = hex_of(&layer).to_string();
    let wrong = format!("sha256:{}", "0".repeat(64));
    let cases: Vec<(&str, Vec<Rule>, Option<&str>)> = vec![
        (
            "drop the upload after 64 KiB (first PUT)",
            vec![Rule::new("PUT", &hex, Fault::DropAfter(64 * 1024)).first(1)],
            None,
        ),
        (
            "HTTP 500 on the upload PUT (first)",
            vec![Rule::new("PUT", &hex, Fault::Status(500)).first(1)],
            None,
        ),
        (
            "429 Retry-After: 1 on upload POSTs (first 2)",
            vec![Rule::new("POST", "/blobs/uploads/", too_many()).first(2)],
            None,
        ),
        (
            "HTTP 503 on every 3rd request of any kind",
            vec![Rule::new("*", "/v2/", Fault::Status(503)).every(3)],
            None,
        ),
        (
            "wrong bytes (1 bit flipped) in the upload, once",
            vec![Rule::new("PUT", &hex, Fault::FlipByte).first(1)],
            None,
        ),
        (
            "wrong bytes in the upload, always",
            vec![Rule::new("PUT", &hex, Fault::FlipByte)],
            Some(&layer),
        ),
        (
            "manifest PUT answering a wrong Docker-Content-Digest",
            vec![Rule::new(
                "PUT",
                "/manifests/sha256:",
                Fault::SetHeader("docker-content-digest", wrong),
            )],
            Some(&s.src.digest),
        ),
    ];
    let mut rows = Vec::new();
    for (fault, rules, expect) in cases {
        let row = push_case(&s, fault, rules, expect.is_none());
        if let Some(text) = expect {
            assert!(
                row.ended.contains(text) && row.ended.contains("/app:1"),
                "{fault}: the error names {text} and the image: {}",
                row.ended
            );
        }
        rows.push(row);
    }
    print_table("push through a failing registry", &rows);
}

// ---------------------------------------------------------------------------------
// Through the library, with short timeouts and retry delays.

/// `c` with short timeouts and retry delays, reading Docker config from `config_dir`
/// (an empty dir the caller keeps) only.
fn fast(mut c: ClientOptions, config_dir: &Path) -> ClientOptions {
    c.docker_config_dir = Some(config_dir.to_path_buf());
    c.read_timeout = Duration::from_secs(1);
    c.connect_timeout = Duration::from_secs(2);
    c.retry_base_delay = Duration::from_millis(20);
    c.retry_attempts = 4;
    c
}

fn save_settings(name: &str, out: &Path, config_dir: &Path) -> SaveSettings {
    let cli = Cli::try_parse_from(["airlock", "save", name, "-o", out.to_str().unwrap()]).unwrap();
    let Sub::Save(args) = cli.command else {
        unreachable!()
    };
    let mut s = SaveSettings::from_args(&args).unwrap();
    s.client = fast(s.client, config_dir);
    s
}

fn push_settings(bundle: &Path, target: &str, config_dir: &Path) -> PushSettings {
    let cli = Cli::try_parse_from(["airlock", "push", bundle.to_str().unwrap(), target]).unwrap();
    let Sub::Push(args) = cli.command else {
        unreachable!()
    };
    let mut s = PushSettings::from_args(&args).unwrap();
    s.client = fast(s.client, config_dir);
    s
}

/// Runs `f` on its own thread and fails the test if it takes longer than `limit`.
fn bounded<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("still running after {limit:?}: retries are not bounded"))
}

#[test]
fn stalls_and_persistent_faults_with_short_timeouts() {
    let s = saved();
    let src = &s.src;
    // The library runs' Docker config: empty, removed with the test.
    let docker_config = tempfile::tempdir().unwrap();
    let layer = big_layer(&src.image);
    let blob_path = format!("/blobs/{layer}");
    let hex = hex_of(&layer).to_string();
    let mut rows = Vec::new();
    let stall = |after| Fault::Stall {
        after,
        pause: Duration::from_secs(4),
    };

    // save: cases as (fault, rules, expect_ok)
    let save_cases: Vec<(&str, Vec<Rule>, bool)> = vec![
        (
            "stall mid-blob past the read timeout (first 2)",
            vec![Rule::new("GET", &blob_path, stall(64 * 1024)).first(2)],
            true,
        ),
        (
            "stall before answering the manifest (first 1)",
            vec![Rule::new("GET", "/manifests/", stall(0)).first(1)],
            true,
        ),
        (
            "stall mid-manifest after 10 bytes (first 1)",
            vec![Rule::new("GET", "/manifests/", stall(10)).first(1)],
            true,
        ),
        (
            "drop mid-manifest after 10 bytes (first 2)",
            vec![Rule::new("GET", "/manifests/", Fault::DropAfter(10)).first(2)],
            true,
        ),
        (
            "stall mid-blob after 1000 bytes, always",
            vec![Rule::new("GET", &blob_path, stall(1000))],
            false,
        ),
        (
            "drop mid-blob after 1000 bytes, always",
            vec![Rule::new("GET", &blob_path, Fault::DropAfter(1000))],
            false,
        ),
    ];
    for (fault, rules, expect_ok) in save_cases {
        let proxy = FaultyProxy::start(&src.reg.url(), rules);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("b.tar");
        let name = format!("{}/app:1", proxy.addr());
        let settings = save_settings(&name, &out, docker_config.path());
        let started = Instant::now();
        let result = bounded(Duration::from_secs(60), move || {
            airlock::export::save(&settings, &airlock::progress::Silent)
                .map_err(|e| format!("{e:#}"))
        });
        let secs = started.elapsed().as_secs_f64();
        let ended = match (result, expect_ok) {
            (Ok(_), true) => {
                assert_good_bundle(&out, &name, src);
                "ok: bundle verifies, digests = source".to_string()
            }
            (Err(e), false) => {
                assert!(!out.exists(), "{fault}: a failed save left a bundle");
                assert!(e.contains(&layer), "{fault}: the error names the blob: {e}");
                format!("error: {e}")
            }
            (r, _) => panic!("{fault}: unexpected outcome {:?}", r.map(|_| ())),
        };
        rows.push(Row {
            side: "save",
            fault: fault.to_string(),
            injected: proxy.injected(),
            ended,
            secs,
        });
    }

    // push
    let push_cases: Vec<(&str, Vec<Rule>, bool)> = vec![
        (
            "stall before answering the upload PUT (first)",
            vec![Rule::new("PUT", &hex, stall(0)).first(1)],
            true,
        ),
        (
            "stall before answering the upload PUT, always",
            vec![Rule::new("PUT", &hex, stall(0))],
            false,
        ),
        (
            "HTTP 500 on the upload PUT, always",
            vec![Rule::new("PUT", &hex, Fault::Status(500))],
            false,
        ),
        (
            "drop the upload after 64 KiB, always",
            vec![Rule::new("PUT", &hex, Fault::DropAfter(64 * 1024))],
            false,
        ),
    ];
    for (fault, rules, expect_ok) in push_cases {
        let target = TestRegistry::start();
        let proxy = FaultyProxy::start(&target.url(), rules);
        let settings = push_settings(&s.bundle, &proxy.addr(), docker_config.path());
        let started = Instant::now();
        let result = bounded(Duration::from_secs(60), move || {
            airlock::import::push::push(&settings, &airlock::progress::Silent)
                .map(|_| ())
                .map_err(|e| format!("{e:#}"))
        });
        let secs = started.elapsed().as_secs_f64();
        let ended = match (result, expect_ok) {
            (Ok(()), true) => {
                let got = registry_manifest(&target.addr(), "app", "1", None);
                assert_eq!(got.digest, src.digest, "{fault}");
                "ok: target tag = source digest".to_string()
            }
            (Err(e), false) => {
                assert_eq!(
                    tags(&target.addr(), "app", None),
                    Vec::<String>::new(),
                    "{fault}"
                );
                assert!(e.contains(&layer), "{fault}: the error names the blob: {e}");
                format!("error, no tag: {e}")
            }
            (r, _) => panic!("{fault}: unexpected outcome {r:?}"),
        };
        rows.push(Row {
            side: "push",
            fault: fault.to_string(),
            injected: proxy.injected(),
            ended,
            secs,
        });
    }
    print_table(
        "library runs with a 1 s read timeout and 20 ms backoff",
        &rows,
    );
}
