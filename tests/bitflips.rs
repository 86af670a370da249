//! Damaged bundles: a single flipped bit anywhere in a real bundle (`.tar`, `.tar.zst`,
//! and the parts of a split `.tar.zst`) is caught by `verify`, and so is truncation at
//! any point. (In a single `.tar.zst`, a flip counts as inert, not missed, only when
//! the damaged file still decodes to exactly the original stream: zstd ignores a few
//! bits inside compressed blocks.) `push` and `load` refuse a bundle with a damaged
//! layer before anything that depends on it reaches the target, and the findings name
//! the blob, its images and where it sits.
//!
//! The bundles are made by the binary from the shipped fixtures (`oci:fixtures/oci`).
//! Flip positions come from a seeded xorshift generator (deterministic: a failure
//! names its seed, format and offset and reproduces exactly) and cover the whole file:
//! random positions plus every structure a reader uses (each tar header and its
//! checksum field, entry padding, the end-of-archive blocks, the TOC, every zstd frame
//! header and checksum, every byte of the seek table, both ends of every part). The
//! big campaign calls `airlock::bundle::verify` in process (a spawn per flip would cost
//! more than the verification); a handful of flips go through the binary.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use airlock::bundle::seekable::read_seek_table;
use airlock::bundle::{FindingKind, VerifyReport, verify};
use airlock::progress::Silent;
use support::cli::{airlock, cmd, dir_listing, repo_root};
use support::registry::TestRegistry;

/// xorshift64*: small, deterministic, good enough to spread positions.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn bit(&mut self) -> u8 {
        1 << self.below(8)
    }
}

/// `airlock save oci:fixtures/oci -o DIR/NAME [--split 48K]`, from the repo root.
fn save(dir: &Path, name: &str, split: bool) -> PathBuf {
    let out = dir.join(name);
    let mut c = cmd(&["save", "oci:fixtures/oci", "-o", out.to_str().unwrap()]).arg("-q");
    if split {
        c = c.arg("--split").arg("48K");
    }
    c.current_dir(repo_root()).run().ok();
    out
}

/// Whether `verify` (in process) rejects the bundle at `path`.
fn rejected(path: &Path) -> (bool, String) {
    match verify(path, &Silent) {
        Ok(r) => {
            let why = r
                .findings
                .first()
                .map(|f| format!("{:?}: {}", f.kind, f.message))
                .unwrap_or_default();
            (!r.ok, why)
        }
        Err(e) => (true, format!("error: {e}")),
    }
}

fn report(path: &Path) -> VerifyReport {
    verify(path, &Silent).expect("verify runs")
}

/// What a reader finds at each byte of a tar stream: header, data, padding, end.
#[derive(Debug, Clone)]
struct TarMap {
    /// (header offset, data offset, size, name)
    entries: Vec<(u64, u64, u64, String)>,
    /// Where the end-of-archive blocks start.
    end: u64,
}

fn tar_map(tar: &[u8]) -> TarMap {
    let mut entries = Vec::new();
    let mut end = 0;
    let mut archive = tar::Archive::new(tar);
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        let data = e.raw_file_position();
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        entries.push((data - 512, data, e.size(), name));
        end = data + e.size().div_ceil(512) * 512;
    }
    TarMap { entries, end }
}

impl TarMap {
    fn describe(&self, at: u64) -> String {
        for (h, d, s, n) in &self.entries {
            if (*h..*d).contains(&at) {
                return format!("header of `{n}` byte {}", at - h);
            }
            if (*d..d + s).contains(&at) {
                return format!("data of `{n}` byte {}", at - d);
            }
            if (d + s..d + s.div_ceil(512) * 512).contains(&at) {
                return format!("padding after `{n}`");
            }
        }
        format!("end blocks byte {}", at - self.end)
    }

    /// Structural positions: every header (random bytes and the whole checksum field),
    /// padding, the end blocks, and the small JSON entries.
    fn positions(&self, rng: &mut Rng, len: u64) -> Vec<u64> {
        let mut out = Vec::new();
        for (h, d, s, n) in &self.entries {
            out.push(h + rng.below(512));
            out.push(h + rng.below(100)); // the name
            out.push(h + 124 + rng.below(12)); // the size
            out.extend((148..156).map(|i| h + i)); // the checksum field
            out.push(h + 257 + rng.below(8)); // magic and version
            let pad = s.div_ceil(512) * 512 - s;
            if pad > 0 {
                out.push(d + s + rng.below(pad));
                out.push(d + s + pad - 1);
            }
            // Dense in the TOC and the layout documents: free text lives there.
            let k = match n.as_str() {
                "airlock.json" => 40,
                "index.json" | "manifest.json" | "repositories" => 12,
                _ if *s < 2048 => 4,
                _ => 0,
            };
            {
                for _ in 0..k {
                    if *s > 0 {
                        out.push(d + rng.below(*s));
                    }
                }
            }
        }
        for _ in 0..8 {
            out.push(self.end + rng.below(len - self.end));
        }
        out.push(len - 1);
        out
    }
}

/// Flips one bit at each position of `positions` in a copy of `original` written at
/// `path`, verifies, and returns (tried, missed with descriptions).
/// Flips each bit in turn and collects the flips `verify` accepts. A flip that `inert`
/// says changes nothing a reader gets is not a miss (see `inert_in_zstd`).
fn campaign(
    original: &[u8],
    path: &Path,
    positions: &[(u64, u8)],
    describe: &dyn Fn(u64) -> String,
    inert: &dyn Fn(u64, &[u8]) -> bool,
) -> (usize, Vec<String>) {
    let mut missed = Vec::new();
    let mut bytes = original.to_vec();
    for &(at, bit) in positions {
        bytes[at as usize] ^= bit;
        fs::write(path, &bytes).unwrap();
        let (caught, _) = rejected(path);
        if !caught && !inert(at, &bytes) {
            missed.push(format!("offset {at} bit {bit:#04x}: {}", describe(at)));
        }
        bytes[at as usize] ^= bit;
    }
    fs::write(path, original).unwrap();
    (positions.len(), missed)
}

fn with_bits(rng: &mut Rng, mut positions: Vec<u64>, len: u64) -> Vec<(u64, u8)> {
    positions.retain(|&p| p < len);
    positions.sort_unstable();
    positions.dedup();
    positions.into_iter().map(|p| (p, rng.bit())).collect()
}

const RANDOM_FLIPS: usize = 150;

#[test]
fn every_flipped_bit_in_a_tar_bundle_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let path = save(dir.path(), "b.tar", false);
    let original = fs::read(&path).unwrap();
    let len = original.len() as u64;
    let map = tar_map(&original);
    let mut rng = Rng::new(0x7a11);
    let mut positions = map.positions(&mut rng, len);
    positions.extend((0..RANDOM_FLIPS).map(|_| rng.below(len)));
    let flips = with_bits(&mut rng, positions, len);
    let (tried, missed) = campaign(&original, &path, &flips, &|at| map.describe(at), &|_, _| {
        false
    });
    eprintln!(".tar: {tried} flips tried, {} caught", tried - missed.len());
    assert!(tried >= 200, "only {tried} flips");
    assert!(
        missed.is_empty(),
        "flips not caught:\n{}",
        missed.join("\n")
    );
}

/// Positions in a seekable zstd bundle: frame headers, frame ends (checksums), a byte
/// inside every frame, every byte of the seek table.
fn zstd_positions(rng: &mut Rng, bytes: &[u8], path: &Path) -> (Vec<u64>, Vec<(u64, u64)>) {
    let len = bytes.len() as u64;
    let table = read_seek_table(&mut fs::File::open(path).unwrap(), len)
        .unwrap()
        .expect("a seek table");
    let mut out = Vec::new();
    let mut frames = Vec::new();
    for f in &table.frames {
        frames.push((f.c_off, f.c_size));
        out.extend((0..6).map(|i| f.c_off + i)); // magic, descriptor, first header bytes
        out.extend((1..=4).map(|i| f.c_off + f.c_size - i)); // content checksum
        out.push(f.c_off + rng.below(f.c_size));
    }
    out.extend(len - table.table_size..len);
    (out, frames)
}

/// Whether a flip at `at` (inside the zstd frames, before the seek table at
/// `table_start`) is one the zstd format ignores: the whole file still decodes, with
/// its checksums, to exactly the original tar stream `decoded`. Compressed blocks hold
/// such bits (entropy-table entries no symbol uses, for one), so a few positions, which
/// move from save to save with the bundle's bytes, change nothing any reader gets;
/// `verify` rightly accepts them. Flips in the seek table never count as inert.
fn inert_in_zstd(at: u64, flipped: &[u8], table_start: u64, decoded: &[u8]) -> bool {
    at < table_start && zstd::decode_all(flipped).is_ok_and(|d| d == decoded)
}

fn describe_zstd(frames: &[(u64, u64)], at: u64) -> String {
    match frames.iter().position(|(o, s)| (*o..o + s).contains(&at)) {
        Some(i) => format!("frame {i} byte {}", at - frames[i].0),
        None => "seek table".to_string(),
    }
}

#[test]
fn every_flipped_bit_in_a_zstd_bundle_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let path = save(dir.path(), "b.tar.zst", false);
    let original = fs::read(&path).unwrap();
    let len = original.len() as u64;
    let mut rng = Rng::new(0x2575);
    let (mut positions, frames) = zstd_positions(&mut rng, &original, &path);
    positions.extend((0..RANDOM_FLIPS).map(|_| rng.below(len)));
    let flips = with_bits(&mut rng, positions, len);
    let decoded = zstd::decode_all(&original[..]).unwrap();
    let table_start = frames.iter().map(|(o, s)| o + s).max().unwrap_or(0);
    let inert = |at: u64, flipped: &[u8]| inert_in_zstd(at, flipped, table_start, &decoded);
    let (tried, missed) = campaign(
        &original,
        &path,
        &flips,
        &|at| describe_zstd(&frames, at),
        &inert,
    );
    eprintln!(
        ".tar.zst: {tried} flips tried, {} caught",
        tried - missed.len()
    );
    assert!(tried >= 200, "only {tried} flips");
    assert!(
        missed.is_empty(),
        "flips not caught:\n{}",
        missed.join("\n")
    );
}

#[test]
fn every_flipped_bit_in_a_split_bundle_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let base = save(dir.path(), "s.tar.zst", true);
    let mut parts: Vec<PathBuf> = dir_listing(dir.path())
        .into_iter()
        .filter(|n| n.starts_with("s.tar.zst.0"))
        .map(|n| dir.path().join(n))
        .collect();
    parts.sort();
    assert!(parts.len() >= 3, "{parts:?}");
    let joined: Vec<u8> = parts.iter().flat_map(|p| fs::read(p).unwrap()).collect();
    let joined_path = dir.path().join("joined.tar.zst");
    fs::write(&joined_path, &joined).unwrap();
    let mut rng = Rng::new(0x5b17);
    let (zpos, frames) = zstd_positions(&mut rng, &joined, &joined_path);
    fs::remove_file(&joined_path).unwrap();
    let (mut tried, mut missed) = (0, Vec::new());
    let mut start = 0u64;
    for (i, part) in parts.iter().enumerate() {
        let original = fs::read(part).unwrap();
        let len = original.len() as u64;
        let mut positions: Vec<u64> = zpos
            .iter()
            .filter(|&&p| (start..start + len).contains(&p))
            .map(|p| p - start)
            .collect();
        positions.extend([0, 1, 4095, 4096, len - 1]);
        positions.extend((0..RANDOM_FLIPS / 2).map(|_| rng.below(len)));
        let flips = with_bits(&mut rng, positions, len);
        // The part is verified through the base name, as an operator would.
        let mut bytes = original.clone();
        for &(at, bit) in &flips {
            bytes[at as usize] ^= bit;
            fs::write(part, &bytes).unwrap();
            tried += 1;
            if !rejected(&base).0 {
                missed.push(format!(
                    "part {i} offset {at} bit {bit:#04x}: {}",
                    describe_zstd(&frames, start + at)
                ));
            }
            bytes[at as usize] ^= bit;
        }
        fs::write(part, &original).unwrap();
        start += len;
    }
    eprintln!(
        "split .tar.zst ({} parts): {tried} flips tried, {} caught",
        parts.len(),
        tried - missed.len()
    );
    assert!(tried >= 200, "only {tried} flips");
    assert!(
        missed.is_empty(),
        "flips not caught:\n{}",
        missed.join("\n")
    );
}

/// Cut points: every 4 KiB, and around every structure boundary in `marks`.
fn cut_points(len: u64, marks: &[u64]) -> Vec<u64> {
    let mut cuts: Vec<u64> = (0..len).step_by(4096).collect();
    for &m in marks {
        cuts.extend([m.saturating_sub(1), m, m + 1]);
    }
    cuts.retain(|&c| c < len);
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

#[test]
fn truncation_anywhere_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["b.tar", "b.tar.zst"] {
        let path = save(dir.path(), name, false);
        let original = fs::read(&path).unwrap();
        let len = original.len() as u64;
        let mut marks = Vec::new();
        if name.ends_with(".zst") {
            let table = read_seek_table(&mut fs::File::open(&path).unwrap(), len)
                .unwrap()
                .unwrap();
            for f in &table.frames {
                marks.extend([f.c_off, f.c_off + f.c_size / 2, f.c_off + f.c_size - 4]);
            }
            marks.extend([len - table.table_size, len - 9, len - 4]);
        } else {
            let map = tar_map(&original);
            for (h, d, s, _) in &map.entries {
                marks.extend([*h, h + 148, *d, d + s, d + s.div_ceil(512) * 512 - 1]);
            }
            marks.extend([map.end, map.end + 512, len - 1]);
        }
        let mut cuts = cut_points(len, &marks);
        if name.ends_with(".zst") {
            // The one accepted exception: cut exactly where the seek table starts, the
            // file is a complete zstd stream of the whole tar without a seek table, which
            // the format defines as a valid bundle (read sequentially); every byte a
            // reader uses is still there and verified.
            let table = read_seek_table(&mut fs::File::open(&path).unwrap(), len)
                .unwrap()
                .unwrap();
            let table_start = len - table.table_size;
            cuts.retain(|&c| c != table_start);
            fs::write(&path, &original[..table_start as usize]).unwrap();
            let r = report(&path);
            assert!(r.ok, "{:#?}", r.findings);
            assert!(!airlock::bundle::Bundle::open(&path).unwrap().seekable());
        }
        let mut missed = Vec::new();
        for &cut in &cuts {
            fs::write(&path, &original[..cut as usize]).unwrap();
            if !rejected(&path).0 {
                missed.push(cut);
            }
        }
        eprintln!(
            "{name}: {} truncations tried, {} caught",
            cuts.len(),
            cuts.len() - missed.len()
        );
        assert!(
            missed.is_empty(),
            "{name}: truncations not caught at {missed:?}"
        );
    }

    // Split: every part cut short (and the last one cut to nothing but one byte).
    let base = save(dir.path(), "s.tar.zst", true);
    let parts: Vec<PathBuf> = (0..)
        .map(|i| dir.path().join(format!("s.tar.zst.{i:03}")))
        .take_while(|p| p.exists())
        .collect();
    let mut tried = 0;
    for part in &parts {
        let original = fs::read(part).unwrap();
        let len = original.len() as u64;
        for cut in cut_points(len, &[1, 4096, len - 1]) {
            fs::write(part, &original[..cut as usize]).unwrap();
            tried += 1;
            let r = report(&base);
            assert!(!r.ok, "{} cut at {cut} not caught", part.display());
            assert!(
                r.findings.iter().any(|f| f.kind == FindingKind::PartSize),
                "{:#?}",
                r.findings
            );
        }
        fs::write(part, &original).unwrap();
    }
    eprintln!("split parts: {tried} truncations tried, {tried} caught");
}

/// The TOC as JSON, and the offset of a layer's data in a plain tar bundle.
fn layer_in(path: &Path) -> (String, u64, u64) {
    let bundle = airlock::bundle::Bundle::open(path).unwrap();
    let layer = bundle
        .toc()
        .blobs
        .iter()
        .filter(|b| b.media_type.contains("layer"))
        .max_by_key(|b| b.size)
        .unwrap()
        .clone();
    let entry = bundle.entry(&layer.digest.blob_path()).unwrap();
    (layer.digest.to_string(), entry.offset, entry.size)
}

/// The images of the fixture bundle that reach `digest`, by the bundle's own reader.
fn images_of(path: &Path, digest: &str) -> Vec<String> {
    let bundle = airlock::bundle::Bundle::open(path).unwrap();
    let mut out: Vec<String> = bundle
        .toc()
        .images
        .iter()
        .filter(|img| {
            let g = airlock::bundle::graph::read_graph(&bundle, img).unwrap();
            g.blobs.iter().any(|b| b.digest.as_str() == digest)
        })
        .map(|img| img.name.clone())
        .collect();
    out.sort();
    out
}

#[test]
fn findings_name_the_blob_its_images_and_where_it_is() {
    let dir = tempfile::tempdir().unwrap();

    // Plain tar: a digest mismatch at a file offset.
    let tar = save(dir.path(), "b.tar", false);
    let (digest, data_at, size) = layer_in(&tar);
    let images = images_of(&tar, &digest);
    assert!(!images.is_empty());
    let mut bytes = fs::read(&tar).unwrap();
    bytes[(data_at + size / 2) as usize] ^= 0x04;
    fs::write(&tar, &bytes).unwrap();
    let run = airlock(&["verify", tar.to_str().unwrap()]).expect_code(1);
    let out = run.output();
    assert!(out.contains(&digest), "{run}");
    assert!(out.contains(&format!("file offset {data_at}")), "{run}");
    for image in &images {
        assert!(out.contains(image.as_str()), "{image} not named: {run}");
    }
    let json = airlock(&["verify", tar.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json();
    let finding = &json["findings"][0];
    assert_eq!(finding["kind"], "digest_mismatch", "{json:#}");
    assert_eq!(finding["digest"], digest.as_str());
    let named: Vec<String> = finding["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(named, images);

    // Split zstd: the corrupt frame is named with its part and offset in the part.
    let base = save(dir.path(), "s.tar.zst", true);
    let b = airlock::bundle::Bundle::open(&base).unwrap();
    let entry = b.entry(&airlock::digest::Digest::parse(&digest).unwrap().blob_path());
    let data_at = entry.unwrap().offset;
    drop(b);
    let joined: Vec<u8> = (0..3)
        .flat_map(|i| fs::read(dir.path().join(format!("s.tar.zst.{i:03}"))).unwrap())
        .collect();
    let joined_path = dir.path().join("j.tar.zst");
    fs::write(&joined_path, &joined).unwrap();
    let table = read_seek_table(
        &mut fs::File::open(&joined_path).unwrap(),
        joined.len() as u64,
    )
    .unwrap()
    .unwrap();
    let frame = table
        .frames
        .iter()
        .find(|f| f.d_off <= data_at && data_at < f.d_off + f.d_size)
        .unwrap();
    let at = frame.c_off + frame.c_size / 2;
    let part_no = (at / (48 * 1024)) as usize;
    let part = dir.path().join(format!("s.tar.zst.{part_no:03}"));
    let mut bytes = fs::read(&part).unwrap();
    bytes[(at % (48 * 1024)) as usize] ^= 0x10;
    fs::write(&part, &bytes).unwrap();
    let run = airlock(&["verify", base.to_str().unwrap()]).expect_code(1);
    let out = run.output();
    assert!(out.contains(&digest), "{run}");
    // The frame is named by where it starts (which may be in the part before the flip).
    let frame_part = (frame.c_off / (48 * 1024)) as usize;
    assert!(
        out.contains(&format!(
            "part {} of 3 (s.tar.zst.{frame_part:03}) at offset {}",
            frame_part + 1,
            frame.c_off - frame_part as u64 * 48 * 1024
        )),
        "{run}"
    );
    // And the damaged part by its hash.
    assert!(out.contains(&format!("s.tar.zst.{part_no:03}")), "{run}");
    for image in &images {
        assert!(out.contains(image.as_str()), "{image} not named: {run}");
    }
}

#[test]
fn push_and_load_refuse_a_damaged_layer() {
    let reg = TestRegistry::start();
    let addr = reg.addr();
    let dir = tempfile::tempdir().unwrap();
    for (name, flip_at) in [("b.tar", 0.5), ("b2.tar", 0.0), ("b3.tar", 0.999)] {
        let tar = save(dir.path(), name, false);
        let (digest, data_at, size) = layer_in(&tar);
        let mut bytes = fs::read(&tar).unwrap();
        let at = data_at + ((size - 1) as f64 * flip_at) as u64;
        bytes[at as usize] ^= 0x80;
        fs::write(&tar, &bytes).unwrap();
        let run = airlock(&["push", tar.to_str().unwrap(), &addr, "--no-progress"]);
        assert_eq!(run.code, Some(1), "{run}");
        assert!(run.output().contains(&digest), "{run}");
        // Not one tag reached the target.
        for image in [
            "airlock/hello:1.0",
            "airlock/hello:latest",
            "airlock/world:2.0",
            "airlock/multi:3.0",
        ] {
            let (repo, tag) = image.split_once(':').unwrap();
            assert!(
                support::registry_api::try_registry_manifest(&addr, repo, tag, None).is_err(),
                "{image} is on the target after a refused push: {run}"
            );
        }
        // load -o writes nothing at all.
        let work = tempfile::tempdir().unwrap();
        let run = cmd(&[
            "load",
            tar.to_str().unwrap(),
            "-o",
            "out.tar",
            "--no-progress",
        ])
        .current_dir(work.path())
        .run();
        assert_eq!(run.code, Some(1), "{run}");
        assert!(run.output().contains(&digest), "{run}");
        assert!(
            dir_listing(work.path()).is_empty(),
            "{:?}",
            dir_listing(work.path())
        );
    }
}
