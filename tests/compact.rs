//! Compact bundles (`save --compact`, issue 14) against real components: layers written
//! by the independent writers (Go's own `compress/gzip` through `tests/go/gzipwrite`,
//! Python's `gzip` at level 9, pigz's zopfli `-11`, which airlock cannot rebuild; GNU
//! `gzip -9` in the recipe test), put into a real registry as OCI layouts
//! with `skopeo copy --preserve-digests`, saved compact, verified, damaged, pushed to a
//! fresh registry (whose own answers are compared with the source's) and loaded into a
//! real dockerd from the decompressed stream.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use support::cli::{Bundle, airlock, blob_path, cmd, copy_with_flipped_byte};
use support::dockerd::{TestDockerd, assert_root};
use support::gzipwrite::gzipwrite;
use support::images::{
    Blob, Image, ImageSpec, Layer, OCI_LAYER_GZIP, PushOptions, file, layer, push, sha256,
};
use support::registry::TestRegistry;
use support::registry_api::{registry_manifest, try_registry_manifest};
use support::regzip_inputs::sorted_files;

const KEEP: PushOptions<'static> = PushOptions {
    format: None,
    creds: None,
};
const V2S2: PushOptions<'static> = PushOptions {
    format: Some("v2s2"),
    creds: None,
};

/// Runs `program args` with `input` on stdin; its stdout.
fn filter(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "{program} {args:?} failed");
    out.stdout
}

#[derive(Clone, Copy)]
enum Writer {
    /// Go's compress/gzip at the default level (what Docker pushes).
    Go,
    /// Python's `gzip.compress(level=9, mtime=0)` (stock zlib).
    Python9,
    /// GNU `gzip -9 -n` (its own deflate, `regzip::gnugzip`).
    Gnu9,
    /// `pigz -11 -n`: zopfli, an encoder airlock does not have.
    Zopfli,
}

fn compress(writer: Writer, tar: &[u8]) -> Vec<u8> {
    match writer {
        Writer::Go => {
            let bin = gzipwrite().to_str().unwrap().to_string();
            filter(&bin, &["-1", "-", "-"], tar)
        }
        Writer::Python9 => filter(
            "python3",
            &[
                "-c",
                "import gzip,sys; sys.stdout.buffer.write(gzip.compress(sys.stdin.buffer.read(), 9, mtime=0))",
            ],
            tar,
        ),
        Writer::Gnu9 => filter("gzip", &["-9", "-n", "-c"], tar),
        Writer::Zopfli => filter("pigz", &["-11", "-n", "-c"], tar),
    }
}

/// A layer of the real files under `/usr/lib/python3.11/<dirs>` (at most `max` bytes of
/// them), compressed by `writer`.
fn real_layer(dirs: &[&str], max: usize, writer: Writer) -> Layer {
    let mut files = Vec::new();
    let mut total = 0;
    for d in dirs {
        for p in sorted_files(Path::new("/usr/lib/python3.11").join(d)) {
            let content = std::fs::read(&p).unwrap();
            if total + content.len() > max {
                break;
            }
            total += content.len();
            let rel = p.strip_prefix("/usr/lib/python3.11").unwrap();
            files.push(file(&format!("usr/lib/python/{}", rel.display()), content));
        }
    }
    let mut l = layer(&files);
    l.gz = Blob::new(OCI_LAYER_GZIP, compress(writer, &l.tar));
    l
}

struct Source {
    reg: TestRegistry,
    dir: tempfile::TempDir,
    one: Image,
    two: Image,
    names: Vec<String>,
}

/// A registry with two images: `compact/one:1` (OCI; a Go, a Python -9 and a zopfli
/// layer) and `compact/two:1` (Docker types; the same Go layer and another).
fn source() -> Source {
    let go = real_layer(&["email", "json"], 1_500_000, Writer::Go);
    let go2 = real_layer(&["asyncio"], 1_500_000, Writer::Go);
    let py = real_layer(&["xml", "http"], 1_500_000, Writer::Python9);
    let zopfli = real_layer(&["logging"], 400_000, Writer::Zopfli);
    let one = ImageSpec::new("linux/amd64")
        .layer(&go)
        .layer(&py)
        .layer(&zopfli)
        .label("compact", "one")
        .build();
    let two = ImageSpec::new("linux/amd64")
        .layer(&go)
        .layer(&go2)
        .label("compact", "two")
        .build();
    let reg = TestRegistry::start();
    let addr = reg.addr();
    push(&one, &format!("{addr}/compact/one:1"), &KEEP);
    // As Docker schema 2 (skopeo converts the manifest; layers and config keep their bytes).
    push(&two, &format!("{addr}/compact/two:1"), &V2S2);
    let names = vec![
        format!("{addr}/compact/one:1"),
        format!("{addr}/compact/two:1"),
    ];
    Source {
        reg,
        dir: tempfile::tempdir().unwrap(),
        one,
        two,
        names,
    }
}

fn save(names: &[String], out: &Path, extra: &[&str]) {
    let mut args: Vec<String> = vec!["save".into()];
    args.extend(names.iter().cloned());
    args.push("-o".into());
    args.push(out.display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    airlock(&args).ok();
}

/// The blob's bytes as the registry at `addr` serves them.
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

/// The offset of the first `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn toc_compact(bundle: &Bundle) -> Vec<Value> {
    bundle.toc()["compact"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn compact_bundle_is_smaller_verifies_and_pushes_every_digest_exactly() {
    let src = source();
    let d = src.dir.path();
    let (go, py, zopfli, go2) = (
        &src.one.layers[0],
        &src.one.layers[1],
        &src.one.layers[2],
        &src.two.layers[1],
    );
    let plain = d.join("plain.tar.zst");
    let compact = d.join("compact.tar.zst");
    let created = "2024-05-01T00:00:00Z";
    save(&src.names, &plain, &["--created", created]);
    save(&src.names, &compact, &["--compact", "--created", created]);
    let (plain_size, compact_size) = (
        std::fs::metadata(&plain).unwrap().len(),
        std::fs::metadata(&compact).unwrap().len(),
    );
    eprintln!(
        "plain {plain_size} bytes, compact {compact_size} bytes ({:.3}x)",
        compact_size as f64 / plain_size as f64
    );
    assert!(
        compact_size < plain_size,
        "compact {compact_size} is not smaller than plain {plain_size}"
    );
    // zstd at a high level squeezes the raw tars further; it cannot squeeze gzip.
    let compact19 = d.join("compact19.tar.zst");
    save(&src.names, &compact19, &["--compact", "--zstd-level", "19"]);
    let size19 = std::fs::metadata(&compact19).unwrap().len();
    eprintln!(
        "compact at zstd level 19: {size19} bytes ({:.3}x plain)",
        size19 as f64 / plain_size as f64
    );
    assert!(size19 < plain_size * 85 / 100, "{size19} vs {plain_size}");

    // The TOC: the Go and Python layers are raw + recipe, the zopfli one is kept as is.
    let b = Bundle::open(&compact);
    let entries = toc_compact(&b);
    let by_digest = |l: &Layer| {
        entries
            .iter()
            .find(|c| c["digest"] == l.digest())
            .cloned()
            .unwrap_or_else(|| panic!("{} is not compact: {entries:#?}", l.digest()))
    };
    assert_eq!(entries.len(), 3, "{entries:#?}");
    for (l, family) in [(go, "go-flate"), (go2, "go-flate"), (py, "zlib")] {
        let c = by_digest(l);
        assert_eq!(c["raw"], l.diff_id);
        assert_eq!(c["raw_size"], l.tar.len() as u64);
        assert_eq!(c["size"], l.gz.size());
        assert_eq!(c["recipe"]["members"][0]["encoder"]["family"], family);
        assert!(
            !b.has_blob(l.digest()),
            "the gzip bytes of {} are stored",
            l.digest()
        );
        assert_eq!(b.blob(&l.diff_id), &l.tar[..], "raw tar of {}", l.digest());
    }
    assert_eq!(by_digest(go)["recipe"]["members"][0]["encoder"]["level"], 6);
    assert!(entries.iter().all(|c| c["digest"] != zopfli.digest()));
    assert_eq!(b.blob(zopfli.digest()), &zopfli.gz.bytes[..]);
    // manifest.json points `docker load` at the raw tars.
    let docker = b.docker_manifest();
    let one_layers: Vec<String> = docker[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        one_layers,
        vec![
            blob_path(&go.diff_id),
            blob_path(&py.diff_id),
            blob_path(zopfli.digest())
        ]
    );

    // ls: per gzip layer, rebuilt (with its encoder) or kept as is.
    let ls = airlock(&["ls", compact.to_str().unwrap(), "--json"])
        .ok()
        .json();
    let listed = ls["compact"].as_array().expect("ls --json has compact");
    let stored = |l: &Layer| {
        listed
            .iter()
            .find(|c| c["digest"] == l.digest())
            .map(|c| c["stored"].as_str().unwrap().to_string())
    };
    assert_eq!(stored(go).as_deref(), Some("rebuilt"));
    assert_eq!(stored(py).as_deref(), Some("rebuilt"));
    assert_eq!(stored(zopfli).as_deref(), Some("kept"));
    let human = airlock(&["ls", compact.to_str().unwrap()]).ok().stdout;
    assert!(
        human.contains("compact: 3 of 4 gzip layers rebuilt"),
        "{human}"
    );
    let plain_ls = airlock(&["ls", plain.to_str().unwrap(), "--json"])
        .ok()
        .json();
    assert!(plain_ls.get("compact").is_none(), "{plain_ls:#}");

    let verify = airlock(&["verify", compact.to_str().unwrap()]).ok();
    eprintln!("{}", verify.output());

    // Reproducible: the same inputs and creation time give the same compact bundle.
    let again = d.join("again.tar.zst");
    save(
        &src.names,
        &again,
        &["--compact", "--created", created, "--jobs", "1"],
    );
    assert!(
        std::fs::read(&again).unwrap() == std::fs::read(&compact).unwrap(),
        "two compact saves differ"
    );

    // convert: the ordinary bundle, byte for byte what the plain save wrote.
    let converted = d.join("converted.tar.zst");
    let out = airlock(&[
        "convert",
        compact.to_str().unwrap(),
        "-o",
        converted.to_str().unwrap(),
    ])
    .ok();
    assert!(out.stderr.contains("3 gzip layers rebuilt"), "{out}");
    assert!(
        std::fs::read(&converted).unwrap() == std::fs::read(&plain).unwrap(),
        "convert does not give the plain bundle"
    );
    airlock(&["verify", converted.to_str().unwrap()]).ok();

    // Pushed to a fresh registry: the same manifests, every blob with its digest.
    let target = TestRegistry::start();
    let taddr = target.addr();
    airlock(&[
        "push",
        compact.to_str().unwrap(),
        &format!("{taddr}/mirror"),
        "--json",
    ])
    .ok();
    let addr = src.reg.addr();
    for (repo, image) in [("compact/one", &src.one), ("compact/two", &src.two)] {
        let s = registry_manifest(&addr, repo, "1", None);
        let t = registry_manifest(&taddr, &format!("mirror/{repo}"), "1", None);
        assert_eq!(t.digest, s.digest, "{repo}");
        assert_eq!(t.bytes, s.bytes, "{repo}");
        for l in &image.layers {
            let got = registry_blob(&taddr, &format!("mirror/{repo}"), l.digest());
            assert_eq!(sha256(&got), l.digest(), "layer of {repo} on the target");
            assert!(got == l.gz.bytes, "layer bytes of {repo}");
        }
    }

    // A damaged raw tar: verify names the layer, push refuses and pushes no manifest.
    let tar = d.join("compact.tar");
    save(&src.names, &tar, &["--compact"]);
    let damaged = d.join("damaged.tar");
    copy_with_flipped_byte(&tar, &damaged, &blob_path(&go.diff_id), 3000);
    let out = airlock(&["verify", damaged.to_str().unwrap()])
        .expect_code(1)
        .output();
    assert!(
        out.contains(go.digest()),
        "verify does not name the layer: {out}"
    );
    // A damaged recipe (the Go layer's level changed in airlock.json, same length):
    // verify names the layer whose rebuild fails; push refuses the damaged TOC.
    let bad_recipe = d.join("bad-recipe.tar");
    let mut bytes = std::fs::read(&tar).unwrap();
    let at = find(&bytes, b"\"level\": 6").expect("a level-6 recipe in airlock.json");
    bytes[at + 9] = b'5';
    std::fs::write(&bad_recipe, &bytes).unwrap();
    let out = airlock(&["verify", bad_recipe.to_str().unwrap()])
        .expect_code(1)
        .output();
    assert!(
        out.contains(&format!("compact layer {} does not rebuild", go.digest())),
        "verify does not name the layer: {out}"
    );
    let fresh = TestRegistry::start();
    let faddr = fresh.addr();
    airlock(&[
        "push",
        bad_recipe.to_str().unwrap(),
        &format!("{faddr}/mirror"),
    ])
    .expect_code(1);
    let out = airlock(&[
        "push",
        damaged.to_str().unwrap(),
        &format!("{faddr}/mirror"),
    ])
    .expect_code(1)
    .output();
    assert!(
        out.contains(go.digest()),
        "push does not name the layer: {out}"
    );
    for repo in ["compact/one", "compact/two"] {
        assert!(
            try_registry_manifest(&faddr, &format!("mirror/{repo}"), "1", None).is_err(),
            "{repo} was pushed from a damaged bundle"
        );
    }
}

#[test]
fn compact_bundle_loads_into_docker_from_the_decompressed_stream() {
    assert_root();
    let src = source();
    let d = src.dir.path();
    let compact = d.join("compact.tar.zst");
    save(&src.names, &compact, &["--compact"]);
    assert!(!toc_compact(&Bundle::open(&compact)).is_empty());
    let tar = d.join("stream.tar");
    let out = Command::new("zstd")
        .args(["-dc", "-o"])
        .arg(&tar)
        .arg(&compact)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dockerd = TestDockerd::start();
    dockerd.docker_ok(&["load", "-i", tar.to_str().unwrap()]);
    let addr = src.reg.addr();
    let names: Vec<(String, &Image)> = [("compact/one", &src.one), ("compact/two", &src.two)]
        .into_iter()
        .map(|(repo, image)| (format!("{addr}/{repo}:1"), image))
        .collect();
    let assert_loaded = || {
        for (name, image) in &names {
            let id = dockerd.docker_ok(&["image", "inspect", "--format", "{{.Id}}", name]);
            assert_eq!(id.trim(), image.config.digest, "image ID of {name}");
        }
    };
    assert_loaded();
    // `airlock load` into the engine reads the same entries.
    let mut rmi = vec!["rmi", "-f"];
    rmi.extend(names.iter().map(|(n, _)| n.as_str()));
    dockerd.docker_ok(&rmi);
    cmd(&["load", compact.to_str().unwrap()])
        .env("DOCKER_HOST", dockerd.host())
        .run()
        .ok();
    assert_loaded();
}

/// The recipe finder on blobs of the independent writers, without a registry: Go's
/// default level, Python's level 9 and GNU gzip -9 are found and rebuilt byte for byte;
/// zopfli is not (no recipe, stored as is).
#[test]
fn recipes_of_real_writers_rebuild_their_blobs() {
    use airlock::regzip::recipe::{EncoderSpec, default_encoders, find_recipe, rebuild};
    let l = real_layer(&["email"], 600_000, Writer::Go);
    for (writer, expected) in [
        (Writer::Go, Some(EncoderSpec::go(6))),
        (Writer::Python9, Some(EncoderSpec::zlib(9))),
        (Writer::Gnu9, Some(EncoderSpec::gnu(9))),
        (Writer::Zopfli, None),
    ] {
        let blob = compress(writer, &l.tar);
        let found = find_recipe(&blob[..], &default_encoders()).unwrap();
        let Some(found) = found else {
            assert_eq!(expected, None, "no recipe found");
            continue;
        };
        let encoder = found.recipe.members[0].encoder;
        // zlib 8 and 9 may tie on small inputs: either rebuilds the blob.
        if !(expected == Some(EncoderSpec::zlib(9)) && encoder == EncoderSpec::zlib(8)) {
            assert_eq!(Some(encoder), expected);
        }
        assert_eq!(format!("{}", found.raw_digest), l.diff_id);
        let mut out = Vec::new();
        rebuild(&found.recipe, &l.tar[..], &mut out).unwrap();
        assert!(out == blob, "rebuild differs");
    }
}

/// `/usr/bin/time -v airlock ARGS`: wall seconds and peak RSS in KiB (the run must succeed).
fn timed(args: &[&str]) -> (f64, u64) {
    let start = std::time::Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(support::cli::airlock_bin())
        .args(args)
        .arg("--no-progress")
        .output()
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "airlock {args:?}: {stderr}");
    let rss = stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (secs, rss)
}

/// A measurement, not a check (run by hand, best with `--release`): layers of this
/// machine's real files written by Go (default level) and Python (level 9), saved plain
/// and compact, then the compact bundle verified and pushed; sizes, times, peak RSS.
#[test]
#[ignore = "a measurement; run with --ignored --nocapture"]
fn measure_compact_on_real_files() {
    let go = real_layer(&["."], 60_000_000, Writer::Go);
    let py = real_layer(
        &["email", "json", "xml", "http", "asyncio"],
        8_000_000,
        Writer::Python9,
    );
    let raw: u64 = (go.tar.len() + py.tar.len()) as u64;
    let gz: u64 = go.gz.size() + py.gz.size();
    let image = ImageSpec::new("linux/amd64").layer(&go).layer(&py).build();
    let reg = TestRegistry::start();
    let name = format!("{}/measure/app:1", reg.addr());
    push(&image, &name, &KEEP);
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).display().to_string();
    eprintln!("layers: {raw} bytes raw, {gz} bytes gzip");
    for (label, out, extra) in [
        ("save plain zstd 3", "plain.tar.zst", vec![]),
        (
            "save --compact (default level)",
            "c.tar.zst",
            vec!["--compact"],
        ),
        (
            "save --compact zstd 3",
            "c3.tar.zst",
            vec!["--compact", "--zstd-level", "3"],
        ),
        (
            "save --compact zstd 9",
            "c9.tar.zst",
            vec!["--compact", "--zstd-level", "9"],
        ),
        (
            "save --compact zstd 12",
            "c12.tar.zst",
            vec!["--compact", "--zstd-level", "12"],
        ),
        (
            "save --compact zstd 19",
            "c19.tar.zst",
            vec!["--compact", "--zstd-level", "19"],
        ),
    ] {
        let o = path(out);
        let mut args = vec!["save", name.as_str(), "-o", o.as_str()];
        args.extend(extra);
        let (secs, rss) = timed(&args);
        let size = std::fs::metadata(&o).unwrap().len();
        eprintln!(
            "{label}: {size} bytes ({:.3}x gzip), {secs:.1} s ({:.1} MB/s of raw), peak RSS {} MiB",
            size as f64 / gz as f64,
            raw as f64 / secs / 1e6,
            rss / 1024
        );
    }
    let c3 = path("c.tar.zst");
    let (secs, rss) = timed(&["verify", c3.as_str()]);
    eprintln!(
        "verify compact: {secs:.1} s ({:.1} MB/s of raw), peak RSS {} MiB",
        raw as f64 / secs / 1e6,
        rss / 1024
    );
    let target = TestRegistry::start();
    let dest = format!("{}/mirror", target.addr());
    let (secs, rss) = timed(&["push", c3.as_str(), dest.as_str()]);
    eprintln!(
        "push compact: {secs:.1} s ({:.1} MB/s of raw), peak RSS {} MiB",
        raw as f64 / secs / 1e6,
        rss / 1024
    );
}

/// `airlock serve` of a compact bundle answers every layer with the registry's exact
/// bytes (rebuilt from the raw tar as it streams): a skopeo copy --all
/// --preserve-digests from it holds every source blob byte for byte.
#[test]
fn serve_answers_compact_layers_with_the_source_bytes() {
    let src = source();
    let d = src.dir.path();
    let compact = d.join("compact.tar.zst");
    save(&src.names, &compact, &["--compact"]);
    assert!(!toc_compact(&Bundle::open(&compact)).is_empty());
    let served = support::serve::Served::start(&[&compact], &["-q"]);
    for (repo, image) in [("compact/one", &src.one), ("compact/two", &src.two)] {
        for layer in &image.layers {
            let (status, body) = support::serve::get(
                &served.addr,
                &format!("/v2/{repo}/blobs/{}", layer.gz.digest),
                &[],
            );
            assert_eq!(status, 200, "{repo} {}", layer.gz.digest);
            assert!(
                body == layer.gz.bytes,
                "{repo} {}: served bytes differ",
                layer.gz.digest
            );
        }
    }
    // More rebuilding reads at once than serve runs (ranges are never shared): they
    // wait their turn, and every one gets its exact bytes.
    std::thread::scope(|s| {
        for i in 0..12 {
            let (addr, layer) = (&served.addr, &src.one.layers[i % 2]);
            s.spawn(move || {
                let path = format!("/v2/compact/one/blobs/{}", layer.gz.digest);
                let (status, body) = support::serve::get(addr, &path, &[("Range", "bytes=100-")]);
                assert_eq!(status, 206, "{path}");
                assert!(body == layer.gz.bytes[100..], "{path}: range {i} differs");
            });
        }
    });
    let out = d.join("copy");
    support::images::skopeo(&[
        "--insecure-policy",
        "copy",
        "--quiet",
        "--preserve-digests",
        "--src-tls-verify=false",
        &format!("docker://{}/compact/one:1", served.addr),
        &format!("oci:{}:x", out.display()),
    ]);
    for b in src.one.blobs() {
        let got = std::fs::read(out.join(support::cli::blob_path(&b.digest))).unwrap();
        assert!(got == b.bytes, "{} differs in skopeo's copy", b.digest);
    }
}

/// A compact bundle as `--base`: its compact layers count as held, so a differential
/// save of the same images leaves every layer out.
#[test]
fn a_compact_base_vouches_for_its_rebuilt_layers() {
    let src = source();
    let d = src.dir.path();
    let base = d.join("base.tar.zst");
    save(&src.names, &base, &["--compact"]);
    let delta = d.join("delta.tar.zst");
    save(&src.names, &delta, &["--base", base.to_str().unwrap()]);
    let toc = Bundle::open(&delta).toc();
    let omitted: Vec<&str> = toc["base"]["omitted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["digest"].as_str().unwrap())
        .collect();
    for layer in src.one.layers.iter().chain(&src.two.layers) {
        assert!(
            omitted.contains(&layer.gz.digest.as_str()),
            "{} is in the compact base but not left out: {omitted:?}",
            layer.gz.digest
        );
    }
    airlock(&[
        "verify",
        delta.to_str().unwrap(),
        "--base",
        base.to_str().unwrap(),
    ])
    .ok();
}
