//! `regzip::klauspost` against the real thing: klauspost's pgzip over klauspost's flate
//! (Debian 12's -dev sources, what its skopeo and podman link), driven by
//! `tests/go/pgzipwrite` the way containers/image compresses layers, must produce the
//! same bytes as the Rust encoder at every level, on the inputs `tests/regzip_go.rs`
//! uses plus sizes around pgzip's 1 MiB blocks; and a layer skopeo itself compresses
//! is rebuilt by `find_recipe`.

mod support;

use std::path::Path;
use std::process::Command;

use airlock::regzip::header;
use airlock::regzip::klauspost;
use airlock::regzip::recipe::{EncoderSpec, default_encoders, find_recipe, rebuild};
use support::pgzipwrite::pgzipwrite;
use support::regzip_compare::{difference, every_level};
use support::regzip_inputs::{log_text, mix_of, own_sources, random, small_and_edge, tar_of};

/// Every level pgzip accepts; "default" is what containers/image uses (`NewWriter`).
const LEVELS: [&str; 12] = [
    "default", "-2", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9",
];

/// (level, input group) pairs not reproduced yet: a listed pair that matches fails the
/// test, so the list always says exactly what is missing.
const KNOWN_FAILING: &[(&str, &str)] = &[];

fn rust_level(level: &str) -> i32 {
    if level == "default" {
        -1
    } else {
        level.parse().unwrap()
    }
}

/// pgzip's gzip of `input` at `level`, with pgzip's default 1 MiB blocks or `block_size`.
fn go_pgzip(dir: &Path, name: &str, input: &[u8], level: &str, block_size: Option<u64>) -> Vec<u8> {
    let src = dir.join(format!("{name}.in"));
    if !src.exists() {
        std::fs::write(&src, input).unwrap();
    }
    let dst = dir.join(format!("{name}.{level}.gz"));
    let mut cmd = Command::new(pgzipwrite());
    cmd.arg(level).arg(&src).arg(&dst);
    if let Some(size) = block_size {
        cmd.arg(size.to_string());
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "pgzipwrite: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let blob = std::fs::read(&dst).unwrap();
    std::fs::remove_file(&dst).unwrap();
    blob
}

/// The Rust blob: pgzip's header bytes (as a recipe records them), the deflate stream
/// of `Pgzip { level, block_size }`, CRC-32 and size.
fn rust_pgzip(header: &[u8], input: &[u8], level: &str, block_size: u64) -> Vec<u8> {
    use airlock::regzip::identify::Encoder as _;
    let p = klauspost::Pgzip {
        level: rust_level(level),
        block_size,
    };
    let mut c = p.start().unwrap();
    let mut blob = header.to_vec();
    c.write(input, &mut blob).unwrap();
    c.finish(&mut blob).unwrap();
    trailer(&mut blob, input);
    blob
}

/// Appends the gzip trailer of `input`: CRC-32 and size.
fn trailer(blob: &mut Vec<u8>, input: &[u8]) {
    let mut crc = flate2::Crc::new();
    crc.update(input);
    blob.extend_from_slice(&crc.sum().to_le_bytes());
    blob.extend_from_slice(&(input.len() as u32).to_le_bytes());
}

/// Mismatches of `input` at every level, as (level, message).
fn compare(name: &str, input: &[u8]) -> Vec<(&'static str, String)> {
    let dir = tempfile::tempdir().unwrap();
    let pgzip = |level| go_pgzip(dir.path(), name, input, level, None);
    every_level(name, &LEVELS, pgzip, |blob, level| {
        let header = &blob[..header::parse_header(blob).unwrap().len];
        assert_eq!(header.len(), 10, "{name}: pgzip's default header");
        assert_eq!(header[9], 255, "{name}: pgzip's OS byte");
        let mut rust = header.to_vec();
        rust.extend(klauspost::encode(rust_level(level), input).map_err(|e| e.to_string())?);
        trailer(&mut rust, input);
        Ok(rust)
    })
}

fn check(results: Vec<(&'static str, String)>, group: &str) {
    support::regzip_compare::check(&results, group, KNOWN_FAILING, "pgzip");
}

/// Random and text pieces of uneven sizes, so window and block cuts fall inside them.
fn mix() -> Vec<u8> {
    let sizes = [
        30_000, 70_001, 5_000, 65_535, 100, 131_072, 12_345, 40_000, 300_000, 17,
    ];
    mix_of(1_200_000, 1_500_000, &sizes, 20)
}

#[test]
fn small_and_edge_inputs_match_pgzip_at_every_level() {
    let mut results = Vec::new();
    for (name, input) in small_and_edge() {
        results.extend(compare(&name, &input));
    }
    // around pgzip's 1 MiB blocks and its 16 KiB minimum
    for len in [(1 << 20) + 1, (1 << 20) + 16_385] {
        results.extend(compare(&format!("text-{len}"), &log_text(len)));
    }
    check(results, "small and edge inputs");
}

#[test]
fn random_bytes_match_pgzip_at_every_level() {
    check(compare("random-2m", &random(2 << 20, 42)), "random");
}

#[test]
fn text_matches_pgzip_at_every_level() {
    let mut results = compare("log-3m", &log_text(3 << 20));
    results.extend(compare("own-sources", &own_sources()));
    check(results, "text");
}

#[test]
fn tar_of_real_files_matches_pgzip_at_every_level() {
    let tar = tar_of("/usr/share/doc", 6 << 20);
    assert!(
        tar.len() > 2 << 20,
        "/usr/share/doc gave only {} bytes of tar",
        tar.len()
    );
    check(compare("doc-tar", &tar), "tar");
}

#[test]
fn random_and_text_mix_matches_pgzip_at_every_level() {
    check(compare("mix", &mix()), "mix");
}

#[test]
fn other_block_sizes_match_pgzip() {
    let input = mix();
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for block_size in [16_385u64, 100_000, 3 << 20] {
        for level in ["default", "-2", "0", "1", "6", "9"] {
            let go = go_pgzip(dir.path(), "mix", &input, level, Some(block_size));
            let rust = rust_pgzip(&go[..10], &input, level, block_size);
            if let Some(d) = difference(&go, &rust) {
                failures.push(format!("block size {block_size}, level {level}: {d}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn pgzip_blob_is_identified_and_rebuilt() {
    let tar = tar_of("/usr/share/doc", 3 << 20);
    let dir = tempfile::tempdir().unwrap();
    let blob = go_pgzip(dir.path(), "doc", &tar, "default", None);
    let found = find_recipe(&blob[..], &default_encoders())
        .unwrap()
        .expect("a recipe");
    assert_eq!(found.recipe.members.len(), 1);
    assert_eq!(
        found.recipe.members[0].encoder,
        EncoderSpec::pgzip(5),
        "{}",
        found.recipe.members[0].encoder.short()
    );
    // the recipe's JSON (part of the bundle format, docs/bundle-format.md §9)
    let json = serde_json::to_string(&found.recipe).unwrap();
    assert!(
        json.contains(
            r#""encoder":{"family":"pgzip","variant":"compress-1.15","level":5,"block_size":1048576}"#
        ),
        "{json}"
    );
    let back: airlock::regzip::recipe::Recipe = serde_json::from_str(&json).unwrap();
    let mut out = Vec::new();
    rebuild(&back, &tar[..], &mut out).unwrap();
    assert!(out == blob, "rebuild differs");
}

/// A `dir:` image (skopeo's directory transport) whose one layer is an *uncompressed*
/// tar (OCI `layer.v1.tar`), so whoever copies it compresses the layer itself.
fn uncompressed_dir_image(dir: &Path, tar: &[u8]) {
    use support::images::sha256;
    let diff_id = sha256(tar);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(&config),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": diff_id,
            "size": tar.len(),
        }],
    }))
    .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("version"), "Directory Transport Version: 1.1\n").unwrap();
    std::fs::write(dir.join("manifest.json"), &manifest).unwrap();
    let hex = |d: String| d.trim_start_matches("sha256:").to_string();
    std::fs::write(dir.join(hex(sha256(&config))), &config).unwrap();
    std::fs::write(dir.join(hex(diff_id)), tar).unwrap();
}

/// The one layer of the `dir:` image at `dir`: its digest and bytes.
fn dir_layer(dir: &Path) -> (String, Vec<u8>) {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    let digest = layers[0]["digest"].as_str().unwrap().to_string();
    let bytes = std::fs::read(dir.join(digest.trim_start_matches("sha256:"))).unwrap();
    (digest, bytes)
}

/// `find_recipe` on a layer skopeo compressed: pgzip at `level`, rebuilt from the tar
/// to the layer's digest.
fn assert_rebuilt(blob: &[u8], digest: &str, tar: &[u8], level: i32) {
    assert_eq!(support::images::sha256(blob), digest, "the layer's bytes");
    assert_eq!(&blob[..2], [0x1f, 0x8b], "skopeo gzip-compressed the layer");
    let found = find_recipe(blob, &default_encoders())
        .unwrap()
        .unwrap_or_else(|| panic!("no recipe for skopeo's layer {digest} (level {level})"));
    assert_eq!(found.raw_digest.as_str(), support::images::sha256(tar));
    let encoders = found.recipe.encoders();
    assert_eq!(
        encoders,
        vec![EncoderSpec::pgzip(level)],
        "{}",
        encoders[0].short()
    );
    let mut out = Vec::new();
    rebuild(&found.recipe, tar, &mut out).unwrap();
    assert_eq!(
        support::images::sha256(&out),
        digest,
        "the rebuilt layer's digest"
    );
}

#[test]
fn layer_skopeo_pushes_is_rebuilt() {
    use support::registry::TestRegistry;
    let tar = tar_of("/usr/share/doc", 5 << 20);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    uncompressed_dir_image(&src, &tar);
    let registry = TestRegistry::start();
    let dest = format!("docker://{}/pgzip/layer:default", registry.addr());
    support::images::skopeo(&[
        "--insecure-policy",
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        "--dest-no-creds",
        &format!("dir:{}", src.display()),
        &dest,
    ]);
    let manifest =
        support::registry_api::registry_manifest(&registry.addr(), "pgzip/layer", "default", None);
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
    let digest = manifest["layers"][0]["digest"].as_str().unwrap();
    let url = format!("http://{}/v2/pgzip/layer/blobs/{digest}", registry.addr());
    let blob = ureq::get(&url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_vec()
        .unwrap();
    // containers/image's default: pgzip.NewWriter, flate level -1, which is level 5
    assert_rebuilt(&blob, digest, &tar, 5);
}

#[test]
fn layers_skopeo_compresses_at_other_levels_are_rebuilt() {
    let tar = tar_of("/usr/share/doc", 3 << 20);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    uncompressed_dir_image(&src, &tar);
    for level in [0, 1, 2, 3, 4, 6, 7, 8, 9] {
        let dst = tmp.path().join(format!("level{level}"));
        support::images::skopeo(&[
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-compress",
            "--dest-compress-level",
            &level.to_string(),
            &format!("dir:{}", src.display()),
            &format!("dir:{}", dst.display()),
        ]);
        let (digest, blob) = dir_layer(&dst);
        assert_rebuilt(&blob, &digest, &tar, level);
    }
}

/// The blob `digest` of `repo` as the registry at `addr` serves it.
fn registry_blob(addr: &str, repo: &str, digest: &str) -> Vec<u8> {
    let url = format!("http://{addr}/v2/{repo}/blobs/{digest}");
    ureq::get(&url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap()
}

#[test]
fn compact_save_keeps_a_skopeo_layer_raw_and_push_rebuilds_it() {
    use support::cli::{Bundle, airlock};
    use support::registry::TestRegistry;
    use support::registry_api::registry_manifest;
    let tar = tar_of("/usr/share/doc", 3 << 20);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    uncompressed_dir_image(&src, &tar);
    let source = TestRegistry::start();
    let addr = source.addr();
    support::images::skopeo(&[
        "--insecure-policy",
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        "--dest-no-creds",
        &format!("dir:{}", src.display()),
        &format!("docker://{addr}/pgzip/app:1"),
    ]);
    let s = registry_manifest(&addr, "pgzip/app", "1", None);
    let manifest: serde_json::Value = serde_json::from_slice(&s.bytes).unwrap();
    let digest = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = registry_blob(&addr, "pgzip/app", &digest);

    let bundle = tmp.path().join("compact.tar.zst");
    airlock(&[
        "save",
        &format!("{addr}/pgzip/app:1"),
        "-o",
        bundle.to_str().unwrap(),
        "--compact",
    ])
    .ok();
    let toc = Bundle::open(&bundle).toc();
    let compact = toc["compact"].as_array().expect("a compact entry");
    let entry = compact
        .iter()
        .find(|e| e["digest"] == digest.as_str())
        .unwrap_or_else(|| panic!("skopeo's layer {digest} is not compact: {toc}"));
    assert_eq!(entry["raw"], support::images::sha256(&tar));
    let encoder = &entry["recipe"]["members"][0]["encoder"];
    assert_eq!(encoder["family"], "pgzip", "{encoder}");
    assert_eq!(encoder["level"], 5, "{encoder}");
    airlock(&["verify", bundle.to_str().unwrap()]).ok();

    let target = TestRegistry::start();
    let taddr = target.addr();
    airlock(&["push", bundle.to_str().unwrap(), &format!("{taddr}/mirror")]).ok();
    let t = registry_manifest(&taddr, "mirror/pgzip/app", "1", None);
    assert_eq!(t.digest, s.digest);
    let got = registry_blob(&taddr, "mirror/pgzip/app", &digest);
    assert!(got == blob, "the layer on the target differs from skopeo's");
}
