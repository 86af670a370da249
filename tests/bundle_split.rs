//! Split bundles (`save --split`): written as parts while writing, read back from the
//! first part, the parts index or the base name exactly like the bundle in one file,
//! joined with `cat` into that bundle, and every damage to the set (a missing, swapped,
//! truncated, foreign or extra part, a lost index) named by `open` and `verify`.
//! Through the library with synthetic images, and through the binary.

mod support;

use support::images::seeded_bytes;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use airlock::bundle::toc::{FORMAT_VERSION, TOC_NAME, Toc, TocBlob, TocDocker, TocImage};
use airlock::bundle::writer::FRAME_INPUT;
use airlock::bundle::{
    Bundle, BundleError, BundleWriter, FindingKind, PartProblem, PartsIndex, VerifyReport,
    WriteOptions, WriteSummary, verify,
};
use airlock::digest::Digest;
use airlock::inspect::ListReport;
use airlock::oci::media;
use airlock::progress::Silent;
use serde_json::json;
use support::cli::{airlock, cmd, repo_root};

/// The part size of the tests: small, so a bundle of a few MiB has dozens of parts.
const SPLIT: u64 = 64 * 1024;
const NAMES: [&str; 2] = ["b.tar", "b.tar.zst"];

struct Fixture {
    /// Blobs in bundle order (manifest, config, layers).
    blobs: Vec<(Digest, Vec<u8>)>,
    toc: Toc,
    toc_json: Vec<u8>,
    index_json: Vec<u8>,
    manifest_json: Vec<u8>,
}

fn desc(mt: &str, bytes: &[u8]) -> serde_json::Value {
    json!({"mediaType": mt, "digest": Digest::of(bytes).to_string(), "size": bytes.len()})
}

/// One image: a manifest, a config, a layer of `big` bytes (several zstd frames when
/// larger than FRAME_INPUT) and a small one. `seed` makes different bundles.
fn fixture(seed: u64, big: usize) -> Fixture {
    let big = seeded_bytes(seed, big);
    let small = seeded_bytes(seed + 100, 1000);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [Digest::of(b"d1").to_string(), Digest::of(b"d2").to_string()]}
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "config": desc(media::OCI_CONFIG, &config),
        "layers": [desc(media::OCI_LAYER_GZIP, &big), desc(media::OCI_LAYER_GZIP, &small)]
    }))
    .unwrap();
    let typed = [
        (media::OCI_MANIFEST, manifest.clone()),
        (media::OCI_CONFIG, config.clone()),
        (media::OCI_LAYER_GZIP, big.clone()),
        (media::OCI_LAYER_GZIP, small.clone()),
    ];
    let name = format!("registry.example/split/app:{seed}");
    let toc = Toc {
        format_version: FORMAT_VERSION,
        tool: "airlock test".to_string(),
        created: format!("2024-05-0{}T12:00:00Z", seed % 9 + 1),
        docker_platform: "linux/amd64".to_string(),
        images: vec![TocImage {
            name: name.clone(),
            source: name.clone(),
            digest: Digest::of(&manifest),
            media_type: media::OCI_MANIFEST.to_string(),
            platforms: vec!["linux/amd64".to_string()],
            size: typed.iter().map(|(_, b)| b.len() as u64).sum(),
            source_digest: None,
            note: None,
            docker: Some(TocDocker {
                manifest: Digest::of(&manifest),
                config: Digest::of(&config),
                platform: "linux/amd64".to_string(),
            }),
            docker_skipped: None,
        }],
        blobs: typed
            .iter()
            .map(|(mt, b)| TocBlob {
                digest: Digest::of(b),
                size: b.len() as u64,
                media_type: mt.to_string(),
            })
            .collect(),
        base: None,
        artifacts: Vec::new(),
        compact: Vec::new(),
    };
    let mut root = desc(media::OCI_MANIFEST, &manifest);
    root["annotations"] = json!({"io.containerd.image.name": name, "org.opencontainers.image.ref.name": seed.to_string()});
    let index_json = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": [root]
    }))
    .unwrap();
    let manifest_json = serde_json::to_vec(&json!([{
        "Config": Digest::of(&config).blob_path(),
        "RepoTags": [format!("registry.example/split/app:{seed}")],
        "Layers": [Digest::of(&big).blob_path(), Digest::of(&small).blob_path()]
    }]))
    .unwrap();
    Fixture {
        blobs: typed
            .into_iter()
            .map(|(_, b)| (Digest::of(&b), b))
            .collect(),
        toc_json: serde_json::to_vec_pretty(&toc).unwrap(),
        toc,
        index_json,
        manifest_json,
    }
}

/// The options for `path`, with every entry's time pinned, so that two bundles written
/// from the same fixture compare byte for byte even when the clock ticks over a second
/// between them.
fn pinned(path: &Path) -> WriteOptions {
    WriteOptions {
        mtime: Some(1_714_564_800),
        ..WriteOptions::for_path(path)
    }
}

fn start(path: &Path, split: Option<u64>) -> BundleWriter {
    BundleWriter::create_split(path, pinned(path), split).unwrap()
}

fn write(fx: &Fixture, path: &Path, split: Option<u64>) -> WriteSummary {
    let mut w = start(path, split);
    w.add_file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .unwrap();
    w.add_file(TOC_NAME, &fx.toc_json).unwrap();
    w.add_file("index.json", &fx.index_json).unwrap();
    w.add_file("manifest.json", &fx.manifest_json).unwrap();
    w.add_file("repositories", b"{}").unwrap();
    w.add_dir("blobs").unwrap();
    w.add_dir("blobs/sha256").unwrap();
    for (d, bytes) in &fx.blobs {
        w.add_blob(d, bytes.len() as u64, &mut &bytes[..]).unwrap();
    }
    w.finish().unwrap()
}

/// Writes `fx` split into a fresh directory `sub`; returns the base path and the parts.
fn write_split(fx: &Fixture, dir: &Path, sub: &str, name: &str) -> (PathBuf, Vec<PathBuf>) {
    let d = dir.join(sub);
    fs::create_dir_all(&d).unwrap();
    let base = d.join(name);
    let s = write(fx, &base, Some(SPLIT));
    let split = s.split.expect("a split summary");
    (base, split.parts)
}

fn index_of(base: &Path) -> PathBuf {
    PathBuf::from(format!("{}.parts.json", base.display()))
}

fn read_index(base: &Path) -> PartsIndex {
    serde_json::from_slice(&fs::read(index_of(base)).unwrap()).unwrap()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn problem(path: &Path) -> PartProblem {
    match Bundle::open(path) {
        Err(BundleError::Part { problem, .. }) => problem,
        Err(e) => panic!(
            "expected a part problem opening {}, got: {e}",
            path.display()
        ),
        Ok(_) => panic!("{} opened despite a damaged part", path.display()),
    }
}

fn verify_quiet(path: &Path) -> VerifyReport {
    verify(path, &Silent).unwrap()
}

fn findings_of(report: &VerifyReport, kind: FindingKind) -> Vec<String> {
    report
        .findings
        .iter()
        .filter(|f| f.kind == kind)
        .map(|f| f.message.clone())
        .collect()
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn split_bundle_reads_like_the_bundle_in_one_file() {
    let fx = fixture(1, FRAME_INPUT * 2 + 12345);
    let dir = tempfile::tempdir().unwrap();
    let (whole_dir, split_dir) = (dir.path().join("whole"), dir.path().join("split"));
    fs::create_dir_all(&whole_dir).unwrap();
    fs::create_dir_all(&split_dir).unwrap();
    for bundle_name in NAMES {
        let zst = bundle_name.ends_with(".zst");
        let whole_path = whole_dir.join(bundle_name);
        let whole = write(&fx, &whole_path, None);
        assert!(whole.split.is_none());
        let base = split_dir.join(bundle_name);
        let s = write(&fx, &base, Some(SPLIT));
        let split = s.split.clone().expect("split summary");
        assert!(!base.exists(), "no joined file is written");
        assert_eq!(s.path, base);
        let n = split.parts.len();
        assert!(n >= 4, "{n} parts");
        assert_eq!(split.index, index_of(&base));

        // The parts index: names, sizes and hashes of what is on disk.
        let idx = read_index(&base);
        assert_eq!(idx, split.parts_index);
        assert_eq!(idx.parts_format, 1);
        assert_eq!(idx.bundle, bundle_name);
        assert_eq!(idx.part_size, SPLIT);
        assert_eq!(idx.total_size, s.bytes);
        assert_eq!(idx.id.len(), 32);
        assert_eq!(
            idx.toc_sha256.as_deref(),
            Some(Digest::of(&fx.toc_json).hex())
        );
        let mut joined = Vec::new();
        for (i, (p, e)) in split.parts.iter().zip(&idx.parts).enumerate() {
            assert_eq!(name(p), format!("{bundle_name}.{i:03}"));
            assert_eq!(e.name, name(p));
            let bytes = fs::read(p).unwrap();
            assert_eq!(bytes.len() as u64, e.size);
            assert!(e.size <= SPLIT);
            if i + 1 < n {
                assert_eq!(e.size, SPLIT, "every part but the last is full");
            }
            assert_eq!(Digest::of(&bytes).hex(), e.sha256);
            assert_eq!(
                Digest::of(&bytes[..bytes.len().min(4096)]).hex(),
                e.head_sha256
            );
            joined.extend_from_slice(&bytes);
        }
        assert_eq!(joined.len() as u64, s.bytes);
        assert_eq!(s.uncompressed, whole.uncompressed);
        if !zst {
            assert_eq!(s.bytes, whole.bytes, "same tar, same length");
        }
        let joined_path = dir.path().join(format!("joined-{bundle_name}"));
        fs::write(&joined_path, &joined).unwrap();

        let reference = Bundle::open(&whole_path).unwrap();
        let first = split.parts[0].clone();
        for p in [&first, &split.index, &base, &joined_path] {
            let b = Bundle::open(p).unwrap_or_else(|e| panic!("open {}: {e}", p.display()));
            assert_eq!(
                serde_json::to_value(b.toc()).unwrap(),
                serde_json::to_value(reference.toc()).unwrap()
            );
            assert_eq!(b.entries(), reference.entries(), "same tar layout");
            assert_eq!(b.compressed(), zst);
            assert_eq!(b.seekable(), zst);
            assert_eq!(b.file_size(), s.bytes);
            assert_eq!(
                b.parts().map(|s| s.count()),
                (*p != joined_path).then_some(n)
            );
            // Every blob byte-exact, read at random (last first).
            for (d, bytes) in fx.blobs.iter().rev() {
                let mut got = Vec::new();
                b.blob(d).unwrap().read_to_end(&mut got).unwrap();
                assert!(got == *bytes, "blob {d} differs read from {}", p.display());
            }
            let report = verify_quiet(p);
            assert!(report.ok, "{}: {:#?}", p.display(), report.findings);
            assert_eq!(report.blobs, fx.blobs.len());
            assert_eq!(report.parts, (*p != joined_path).then_some(n));
        }

        // Many readers at once, each on its own handle.
        let b = Bundle::open(&base).unwrap();
        std::thread::scope(|scope| {
            for (d, bytes) in &fx.blobs {
                let b = &b;
                scope.spawn(move || {
                    let mut got = Vec::new();
                    b.blob(d).unwrap().read_to_end(&mut got).unwrap();
                    assert!(got == *bytes);
                });
            }
        });

        let ls = ListReport::from_bundle(&b);
        let parts = ls.parts.as_ref().expect("ls shows the parts");
        assert_eq!(parts.count, n);
        assert_eq!(parts.part_size, SPLIT);
        let mut human = Vec::new();
        ls.print_human(&mut human).unwrap();
        let human = String::from_utf8(human).unwrap();
        assert!(human.contains(&format!("in {n} parts of")), "{human}");
        let json = serde_json::to_value(&ls).unwrap();
        assert_eq!(json["parts"]["count"], n);
        assert!(
            serde_json::to_value(ListReport::from_bundle(&reference)).unwrap()["parts"].is_null()
        );
    }
    // Nothing but parts and indexes: no temporary file left behind.
    for f in listing(&split_dir) {
        let part = f.rsplit_once('.').is_some_and(|(b, n)| {
            NAMES.contains(&b) && n.len() == 3 && n.bytes().all(|c| c.is_ascii_digit())
        });
        assert!(part || f.ends_with(".parts.json"), "unexpected file {f}");
    }
}

#[test]
fn zstd_tool_decodes_the_joined_parts() {
    let fx = fixture(3, FRAME_INPUT + 5000);
    let dir = tempfile::tempdir().unwrap();
    let (base, parts) = write_split(&fx, dir.path(), "s", "b.tar.zst");
    assert!(parts.len() > 2);
    // Exactly what an operator types.
    let out = Command::new("sh")
        .arg("-c")
        .arg("cat b.tar.zst.0* | zstd -d -c > joined.tar")
        .current_dir(base.parent().unwrap())
        .output()
        .expect("sh, cat and zstd are installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tar_bytes = fs::read(base.parent().unwrap().join("joined.tar")).unwrap();
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut blobs = 0;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if path == TOC_NAME {
            assert_eq!(data, fx.toc_json);
        }
        if let Some(hex) = path.strip_prefix("blobs/sha256/")
            && !hex.is_empty()
        {
            assert_eq!(Digest::of(&data).hex(), hex);
            blobs += 1;
        }
    }
    assert_eq!(blobs, fx.blobs.len());
}

#[test]
fn missing_part_is_named() {
    let fx = fixture(4, FRAME_INPUT + 5000);
    let dir = tempfile::tempdir().unwrap();
    for bundle_name in NAMES {
        let (base, parts) = write_split(&fx, dir.path(), bundle_name, bundle_name);
        let n = parts.len();
        fs::remove_file(&parts[2]).unwrap();
        let expected =
            format!("part 3 of {n} ({bundle_name}.002) is missing: copy it next to the others");
        for p in [&parts[0], &index_of(&base), &base] {
            let pr = problem(p);
            assert_eq!(
                pr,
                PartProblem::Missing {
                    number: 3,
                    count: n,
                    name: format!("{bundle_name}.002")
                }
            );
            let msg = Bundle::open(p).unwrap_err().to_string();
            assert!(msg.contains(&expected), "{msg}");
            let report = verify_quiet(p);
            report.print_human(&mut std::io::stderr()).unwrap();
            assert!(!report.ok);
            assert_eq!(
                findings_of(&report, FindingKind::MissingPart),
                vec![expected.clone()]
            );
        }
        // Without the first part, verify still lists what it can instead of failing.
        fs::remove_file(&parts[0]).unwrap();
        let report = verify_quiet(&base);
        assert_eq!(
            findings_of(&report, FindingKind::MissingPart).len(),
            2,
            "{report:#?}"
        );
        assert!(matches!(
            problem(&base),
            PartProblem::Missing { number: 1, .. }
        ));
    }
}

#[test]
fn swapped_parts_are_named() {
    let fx = fixture(5, FRAME_INPUT + 5000);
    let dir = tempfile::tempdir().unwrap();
    for bundle_name in NAMES {
        let (base, parts) = write_split(&fx, dir.path(), bundle_name, bundle_name);
        let n = parts.len();
        let tmp = base.with_extension("swap");
        fs::rename(&parts[1], &tmp).unwrap();
        fs::rename(&parts[2], &parts[1]).unwrap();
        fs::rename(&tmp, &parts[2]).unwrap();
        let pr = problem(&base);
        assert_eq!(
            pr,
            PartProblem::Misplaced {
                number: 2,
                count: n,
                name: format!("{bundle_name}.001"),
                holds: 3,
                holds_name: format!("{bundle_name}.002"),
            }
        );
        assert!(pr.to_string().contains("swapped"), "{pr}");
        let report = verify_quiet(&parts[0]);
        report.print_human(&mut std::io::stderr()).unwrap();
        assert!(!report.ok);
        let misplaced = findings_of(&report, FindingKind::MisplacedPart);
        assert_eq!(misplaced.len(), 2, "{report:#?}");
        assert!(misplaced[0].starts_with(&format!(
            "part 2 of {n} ({bundle_name}.001) holds the content of part 3 ({bundle_name}.002)"
        )));
        assert!(misplaced[1].starts_with(&format!(
            "part 3 of {n} ({bundle_name}.002) holds the content of part 2 ({bundle_name}.001)"
        )));
    }
}

#[test]
fn truncated_part_is_named() {
    let fx = fixture(6, FRAME_INPUT + 5000);
    let dir = tempfile::tempdir().unwrap();
    for bundle_name in NAMES {
        let (base, parts) = write_split(&fx, dir.path(), bundle_name, bundle_name);
        let n = parts.len();
        for (i, cut) in [(3usize, SPLIT / 2), (n - 1, 10)] {
            let dir2 = dir.path().join(format!("{bundle_name}-cut{i}"));
            fs::create_dir_all(&dir2).unwrap();
            for p in parts.iter().chain([&index_of(&base)]) {
                fs::copy(p, dir2.join(name(p))).unwrap();
            }
            let victim = dir2.join(name(&parts[i]));
            let full = fs::metadata(&victim).unwrap().len();
            fs::OpenOptions::new()
                .write(true)
                .open(&victim)
                .unwrap()
                .set_len(cut)
                .unwrap();
            let base2 = dir2.join(bundle_name);
            let pr = problem(&base2);
            assert_eq!(
                pr,
                PartProblem::Size {
                    number: i + 1,
                    count: n,
                    name: name(&parts[i]),
                    size: cut,
                    expected: full
                }
            );
            assert!(pr.to_string().contains("cut short"), "{pr}");
            let report = verify_quiet(&base2);
            assert!(!report.ok);
            let found = findings_of(&report, FindingKind::PartSize);
            assert_eq!(found, vec![pr.to_string()], "{report:#?}");
        }
    }
}

#[test]
fn foreign_part_is_named() {
    let ours = fixture(7, FRAME_INPUT + 5000);
    let theirs = fixture(8, FRAME_INPUT + 5000);
    let dir = tempfile::tempdir().unwrap();
    for bundle_name in NAMES {
        let (base, parts) = write_split(
            &ours,
            dir.path(),
            &format!("ours-{bundle_name}"),
            bundle_name,
        );
        let (_, other) = write_split(
            &theirs,
            dir.path(),
            &format!("theirs-{bundle_name}"),
            bundle_name,
        );
        let n = parts.len();
        fs::copy(&other[2], &parts[2]).unwrap();
        let pr = problem(&parts[0]);
        assert_eq!(
            pr,
            PartProblem::Foreign {
                number: 3,
                count: n,
                name: format!("{bundle_name}.002"),
                index: format!("{bundle_name}.parts.json"),
            }
        );
        assert!(
            pr.to_string().contains("does not belong to this bundle"),
            "{pr}"
        );
        let report = verify_quiet(&base);
        assert!(!report.ok);
        assert_eq!(
            findings_of(&report, FindingKind::ForeignPart),
            vec![pr.to_string()]
        );

        // The index of another bundle next to our parts: every part is foreign.
        fs::copy(&other[2], &parts[2]).unwrap();
        let their_index = index_of(&other[0].parent().unwrap().join(bundle_name));
        fs::copy(&their_index, index_of(&base)).unwrap();
        assert!(matches!(
            Bundle::open(&base),
            Err(BundleError::Part {
                problem: PartProblem::Foreign { .. } | PartProblem::Size { .. },
                ..
            })
        ));
    }
}

#[test]
fn extra_part_is_reported() {
    let fx = fixture(9, FRAME_INPUT + 5000);
    let dir = tempfile::tempdir().unwrap();
    for bundle_name in NAMES {
        let (base, parts) = write_split(&fx, dir.path(), bundle_name, bundle_name);
        let n = parts.len();
        let extra = base.parent().unwrap().join(format!("{bundle_name}.{n:03}"));
        fs::copy(&parts[1], &extra).unwrap();
        let pr = problem(&base);
        assert_eq!(
            pr,
            PartProblem::Extra {
                name: name(&extra),
                count: n,
                index: format!("{bundle_name}.parts.json"),
            }
        );
        let report = verify_quiet(&base);
        assert!(!report.ok);
        assert_eq!(report.findings.len(), 1, "{report:#?}");
        assert_eq!(report.findings[0].kind, FindingKind::ExtraPart);
        assert!(report.findings[0].message.contains("move it away"));
        fs::remove_file(&extra).unwrap();
        assert!(verify_quiet(&base).ok);
    }
}

#[test]
fn lost_index_is_named() {
    let fx = fixture(10, FRAME_INPUT + 5000);
    let dir = tempfile::tempdir().unwrap();
    let (base, parts) = write_split(&fx, dir.path(), "s", "b.tar.zst");
    fs::remove_file(index_of(&base)).unwrap();
    for p in [&parts[0], &base] {
        let e = Bundle::open(p).unwrap_err();
        assert!(matches!(e, BundleError::NoPartsIndex { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("b.tar.zst.parts.json is missing"), "{msg}");
        assert!(msg.contains("cat b.tar.zst.0* > b.tar.zst"), "{msg}");
        assert!(matches!(
            verify(p, &Silent),
            Err(BundleError::NoPartsIndex { .. })
        ));
    }
    // A damaged index is refused with its name.
    fs::write(index_of(&base), b"{\"parts_format\": 1, \"bundle\": 3}").unwrap();
    let e = Bundle::open(&base).unwrap_err();
    assert!(matches!(e, BundleError::BadPartsIndex { .. }), "{e}");
}

#[test]
fn failed_or_dropped_writer_leaves_no_part() {
    let fx = fixture(11, FRAME_INPUT + 5000);
    let dir = tempfile::tempdir().unwrap();
    for bundle_name in NAMES {
        let d = dir.path().join(format!("drop-{bundle_name}"));
        fs::create_dir_all(&d).unwrap();
        let base = d.join(bundle_name);
        // Dropped halfway: nothing at all is left.
        let mut w = start(&base, Some(SPLIT));
        w.add_file("oci-layout", b"{}").unwrap();
        let (dg, bytes) = &fx.blobs[2];
        w.add_blob(dg, bytes.len() as u64, &mut &bytes[..]).unwrap();
        drop(w);
        assert_eq!(listing(&d), Vec::<String>::new());

        // A wrong blob fails the bundle: nothing left either.
        let mut w = start(&base, Some(SPLIT));
        w.add_blob(dg, bytes.len() as u64, &mut &bytes[..]).unwrap();
        let (d2, _) = &fx.blobs[3];
        assert!(w.add_blob(d2, 3, &mut &b"bad"[..]).is_err());
        assert!(w.finish().is_err());
        assert_eq!(listing(&d), Vec::<String>::new());

        // A finished set survives a later save that fails under the same name.
        let s = write(&fx, &base, Some(SPLIT));
        let before = listing(&d);
        let mut w = start(&base, Some(SPLIT));
        w.add_blob(dg, bytes.len() as u64, &mut &bytes[..]).unwrap();
        drop(w);
        assert_eq!(listing(&d), before);
        assert!(verify_quiet(&base).ok);

        // A smaller bundle saved under the same name replaces the set, stray parts included.
        let small = fixture(12, 3000);
        let s2 = write(&small, &base, Some(SPLIT));
        let parts2 = s2.split.unwrap().parts;
        assert!(parts2.len() < s.split.unwrap().parts.len());
        assert_eq!(listing(&d).len(), parts2.len() + 1, "{:?}", listing(&d));
        assert!(verify_quiet(&base).ok);
        assert_eq!(
            Bundle::open(&base).unwrap().toc().images[0].name,
            small.toc.images[0].name
        );
    }
}

#[test]
fn one_part_bundle_and_exact_multiples() {
    let fx = fixture(13, 3000);
    let dir = tempfile::tempdir().unwrap();
    for bundle_name in NAMES {
        // Fits in one part: `.000` alone is the whole bundle.
        let (base, parts) = write_split(&fx, dir.path(), bundle_name, bundle_name);
        assert_eq!(parts.len(), 1);
        assert!(verify_quiet(&parts[0]).ok);
        fs::remove_file(index_of(&base)).unwrap();
        assert!(Bundle::open(&parts[0]).unwrap().parts().is_none());
        assert!(verify_quiet(&parts[0]).ok);
    }
    // A part size dividing the bundle exactly: no empty last part.
    let d = dir.path().join("exact");
    fs::create_dir_all(&d).unwrap();
    let whole = write(&fx, &d.join("w.tar"), None);
    assert_eq!(whole.bytes % 512, 0);
    let s = write(&fx, &d.join("x.tar"), Some(512));
    let split = s.split.unwrap();
    assert_eq!(split.parts.len() as u64, whole.bytes / 512);
    assert!(split.parts_index.parts.iter().all(|p| p.size == 512));
    assert!(verify_quiet(&d.join("x.tar")).ok);
}

#[test]
fn cli_reads_split_bundles() {
    let fx = fixture(14, FRAME_INPUT + 5000);
    let dir = tempfile::tempdir().unwrap();
    let (base, parts) = write_split(&fx, dir.path(), "s", "b.tar.zst");
    let n = parts.len();
    let base_s = base.to_str().unwrap();
    let ls = airlock(&["ls", parts[0].to_str().unwrap(), "--json"])
        .ok()
        .json();
    assert_eq!(ls["parts"]["count"], n);
    assert_eq!(ls["file_size"], read_index(&base).total_size);
    let human = airlock(&["ls", base_s]).ok();
    assert!(human.stdout.contains(&format!("in {n} parts")), "{human}");
    let ok = airlock(&["verify", index_of(&base).to_str().unwrap()]).ok();
    assert!(ok.stdout.contains(&format!("in {n} parts")), "{ok}");

    fs::remove_file(&parts[2]).unwrap();
    let failed = airlock(&["verify", base_s]).expect_code(1);
    assert!(
        failed
            .output()
            .contains(&format!("part 3 of {n} (b.tar.zst.002) is missing")),
        "{failed}"
    );
    let refused = airlock(&["ls", base_s]).expect_code(1);
    assert!(
        refused.output().contains(&format!(
            "part 3 of {n} (b.tar.zst.002) is missing: copy it next to the others"
        )),
        "{refused}"
    );
}

/// `save --split` through the binary.
#[test]
fn cli_save_split() {
    let dir = tempfile::tempdir().unwrap();
    for bundle_name in NAMES {
        let base = dir.path().join(bundle_name);
        cmd(&[
            "save",
            "oci:fixtures/oci",
            "-o",
            base.to_str().unwrap(),
            "--split",
            "16K",
        ])
        .current_dir(repo_root())
        .run()
        .ok();
        let idx = read_index(&base);
        assert!(idx.parts.len() >= 2, "{idx:?}");
        assert_eq!(idx.part_size, 16 * 1024);
        assert!(!base.exists());
        let report = airlock(&["verify", base.to_str().unwrap(), "--json"])
            .ok()
            .json();
        assert_eq!(report["ok"], true);
        let b = Bundle::open(&base).unwrap();
        assert_eq!(b.parts().unwrap().count(), idx.parts.len());
        assert_eq!(b.toc().images.len(), 4);
    }
}

#[test]
fn verify_goes_on_after_a_missing_part() {
    // Parts of one tar block: removing one removes exactly the config's tar header.
    let fx = fixture(15, 20_000);
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("b.tar");
    let s = write(&fx, &base, Some(512));
    let parts = s.split.unwrap().parts;
    let (config, _) = &fx.blobs[1];
    let header_at = Bundle::open(&base)
        .unwrap()
        .entry(&config.blob_path())
        .unwrap()
        .offset
        - 512;
    let victim = &parts[(header_at / 512) as usize];
    fs::remove_file(victim).unwrap();
    let report = verify_quiet(&base);
    report.print_human(&mut std::io::stderr()).unwrap();
    assert!(!report.ok);
    assert_eq!(findings_of(&report, FindingKind::MissingPart).len(), 1);
    // The layers after the lost header are still read and checked.
    assert_eq!(report.blobs, fx.blobs.len() - 1, "{report:#?}");
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.digest.as_ref().is_none_or(|d| d == config)),
        "{report:#?}"
    );
}
