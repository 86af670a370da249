//! The bundle format end to end, without a registry: write synthetic image graphs in
//! both compressions, read them back at random, verify them, damage them.

mod support;

use support::images::seeded_bytes;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use airlock::bundle::seekable::read_seek_table;
use airlock::bundle::toc::{FORMAT_VERSION, TOC_NAME, Toc, TocBlob, TocDocker, TocImage};
use airlock::bundle::writer::FRAME_INPUT;
use airlock::bundle::{
    Bundle, BundleError, BundleWriter, FindingKind, VerifyReport, WriteOptions, verify,
};
use airlock::digest::{Digest, VerifyingReader};
use airlock::inspect::ListReport;
use airlock::oci::media;
use airlock::progress::Silent;
use serde_json::json;

const NGINX: &str = "docker.io/library/nginx:1.25";
const MULTI: &str = "registry.example/team/multi:2";

struct Fixture {
    /// Blobs in bundle order (index, manifest, config, layers) with media types.
    blobs: Vec<(Digest, String, Vec<u8>)>,
    toc: Toc,
    index_json: Vec<u8>,
    manifest_json: Vec<u8>,
    big_layer: Digest,
    small_layer: Digest,
}

fn desc(mt: &str, bytes: &[u8]) -> serde_json::Value {
    json!({"mediaType": mt, "digest": Digest::of(bytes).to_string(), "size": bytes.len()})
}

/// Two images sharing one manifest: NGINX points at the manifest, MULTI at an index of it.
fn fixture() -> Fixture {
    let big = seeded_bytes(1, FRAME_INPUT * 2 + 12345);
    let small = seeded_bytes(2, 1000);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [Digest::of(b"diff1").to_string(), Digest::of(b"diff2").to_string()]}
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "config": desc(media::OCI_CONFIG, &config),
        "layers": [desc(media::OCI_LAYER_GZIP, &big), desc(media::OCI_LAYER_GZIP, &small)]
    }))
    .unwrap();
    let mut mdesc = desc(media::OCI_MANIFEST, &manifest);
    mdesc["platform"] = json!({"architecture": "amd64", "os": "linux"});
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": [mdesc]
    }))
    .unwrap();
    let blobs = vec![
        (
            Digest::of(&index),
            media::OCI_INDEX.to_string(),
            index.clone(),
        ),
        (
            Digest::of(&manifest),
            media::OCI_MANIFEST.to_string(),
            manifest.clone(),
        ),
        (
            Digest::of(&config),
            media::OCI_CONFIG.to_string(),
            config.clone(),
        ),
        (
            Digest::of(&big),
            media::OCI_LAYER_GZIP.to_string(),
            big.clone(),
        ),
        (
            Digest::of(&small),
            media::OCI_LAYER_GZIP.to_string(),
            small.clone(),
        ),
    ];
    let total: u64 = blobs[1..].iter().map(|b| b.2.len() as u64).sum();
    let image = |name: &str, root: &[u8], mt: &str| TocImage {
        name: name.to_string(),
        source: name.to_string(),
        digest: Digest::of(root),
        media_type: mt.to_string(),
        platforms: vec!["linux/amd64".to_string()],
        size: total
            + if mt == media::OCI_INDEX {
                root.len() as u64
            } else {
                0
            },
        source_digest: None,
        note: None,
        docker: Some(TocDocker {
            manifest: Digest::of(&manifest),
            config: Digest::of(&config),
            platform: "linux/amd64".to_string(),
        }),
        docker_skipped: None,
    };
    let toc = Toc {
        format_version: FORMAT_VERSION,
        tool: "airlock test".to_string(),
        created: "2024-05-01T12:00:00Z".to_string(),
        docker_platform: "linux/amd64".to_string(),
        images: vec![
            image(NGINX, &manifest, media::OCI_MANIFEST),
            image(MULTI, &index, media::OCI_INDEX),
        ],
        blobs: blobs
            .iter()
            .map(|(d, mt, b)| TocBlob {
                digest: d.clone(),
                size: b.len() as u64,
                media_type: mt.clone(),
            })
            .collect(),
        base: None,
        artifacts: Vec::new(),
        compact: Vec::new(),
    };
    let annotated = |root: &[u8], mt: &str, name: &str, tag: &str| {
        let mut d = desc(mt, root);
        d["annotations"] =
            json!({"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag});
        d
    };
    let index_json = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": media::OCI_INDEX,
        "manifests": [annotated(&manifest, media::OCI_MANIFEST, NGINX, "1.25"), annotated(&index, media::OCI_INDEX, MULTI, "2")]
    }))
    .unwrap();
    let cfg = Digest::of(&config).blob_path();
    let manifest_json = serde_json::to_vec(&json!([
        {"Config": cfg, "RepoTags": ["nginx:1.25"], "Layers": [Digest::of(&big).blob_path(), Digest::of(&small).blob_path()]},
        {"Config": cfg, "RepoTags": ["registry.example/team/multi:2"], "Layers": [Digest::of(&big).blob_path(), Digest::of(&small).blob_path()]}
    ]))
    .unwrap();
    Fixture {
        big_layer: Digest::of(&big),
        small_layer: Digest::of(&small),
        blobs,
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

/// Writes the fixture as a bundle, leaving out the blobs in `skip`.
fn write(fx: &Fixture, path: &Path, skip: &[&Digest]) -> airlock::bundle::WriteSummary {
    let mut w = BundleWriter::create(path, pinned(path)).unwrap();
    w.add_file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .unwrap();
    w.add_file(TOC_NAME, &serde_json::to_vec_pretty(&fx.toc).unwrap())
        .unwrap();
    w.add_file("index.json", &fx.index_json).unwrap();
    w.add_file("manifest.json", &fx.manifest_json).unwrap();
    let config_hex = fx.blobs[2].0.hex().to_string();
    w.add_file(
        "repositories",
        &serde_json::to_vec(&json!({"nginx": {"1.25": config_hex}})).unwrap(),
    )
    .unwrap();
    w.add_dir("blobs").unwrap();
    w.add_dir("blobs/sha256/").unwrap();
    for (d, _, bytes) in &fx.blobs {
        if skip.contains(&d) {
            continue;
        }
        w.add_blob(d, bytes.len() as u64, &mut &bytes[..]).unwrap();
        assert!(w.contains(d));
    }
    w.finish().unwrap()
}

fn paths(dir: &Path) -> [PathBuf; 2] {
    [dir.join("b.tar"), dir.join("b.tar.zst")]
}

fn verify_quiet(path: &Path) -> VerifyReport {
    verify(path, &Silent).unwrap()
}

#[test]
fn round_trip_random_access_and_verify() {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    for path in paths(dir.path()) {
        let summary = write(&fx, &path, &[]);
        assert_eq!(summary.bytes, fs::metadata(&path).unwrap().len());
        assert_eq!(summary.entries, 5 + 2 + fx.blobs.len());
        let zst = path.extension().unwrap() == "zst";
        if zst {
            assert!(
                summary.bytes > 2 * FRAME_INPUT as u64,
                "noise does not compress"
            );
        } else {
            assert_eq!(summary.bytes, summary.uncompressed);
        }

        let b = Bundle::open(&path).unwrap();
        assert_eq!(b.compressed(), zst);
        assert_eq!(b.seekable(), zst);
        assert_eq!(b.toc().images.len(), 2);
        assert_eq!(b.file_size(), summary.bytes);
        let names: Vec<&str> = b.entries().iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            &names[..7],
            &[
                "oci-layout",
                "airlock.json",
                "index.json",
                "manifest.json",
                "repositories",
                "blobs",
                "blobs/sha256"
            ]
        );
        assert_eq!(b.read_entry("index.json", 1 << 20).unwrap(), fx.index_json);
        assert!(matches!(
            b.read_entry("index.json", 10),
            Err(BundleError::TooLarge { .. })
        ));
        // Every blob, in reverse order to exercise seeking backwards.
        for (d, _, bytes) in fx.blobs.iter().rev() {
            assert!(b.has_blob(d));
            let mut got = Vec::new();
            VerifyingReader::new(b.blob(d).unwrap(), d.clone(), bytes.len() as u64)
                .read_to_end(&mut got)
                .unwrap();
            assert!(got == *bytes, "blob {d} differs in {}", path.display());
        }
        assert!(matches!(
            b.blob(&Digest::of(b"nope")),
            Err(BundleError::MissingBlob { .. })
        ));

        // Many threads at once.
        std::thread::scope(|s| {
            for (d, _, bytes) in &fx.blobs {
                let b = &b;
                s.spawn(move || {
                    let mut got = Vec::new();
                    b.blob(d).unwrap().read_to_end(&mut got).unwrap();
                    assert_eq!(got.len(), bytes.len());
                });
            }
        });

        let report = verify_quiet(&path);
        assert!(report.ok, "{:#?}", report.findings);
        assert_eq!((report.images, report.blobs), (2, fx.blobs.len()));
        assert_eq!(
            report.bytes,
            fx.blobs.iter().map(|b| b.2.len() as u64).sum::<u64>()
        );
        let mut human = Vec::new();
        report.print_human(&mut human).unwrap();
        assert!(
            String::from_utf8(human)
                .unwrap()
                .starts_with("OK: 2 images, 5 blobs")
        );
    }
    // No temporary files left behind.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
}

/// All (name, bytes) file entries of a plain tar stream, read with the tar crate.
fn tar_files(r: impl Read) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in tar::Archive::new(r).entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        out.insert(name, bytes);
    }
    out
}

#[test]
fn zstd_bundle_is_a_plain_zstd_stream_with_a_seek_table() {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    let [tar_path, zst_path] = paths(dir.path());
    write(&fx, &tar_path, &[]);
    let summary = write(&fx, &zst_path, &[]);

    let plain = tar_files(fs::File::open(&tar_path).unwrap());
    let decoded =
        tar_files(zstd::stream::read::Decoder::new(fs::File::open(&zst_path).unwrap()).unwrap());
    assert_eq!(plain, decoded);
    assert!(plain.contains_key(&fx.big_layer.blob_path()));
    assert_eq!(
        zstd::decode_all(fs::File::open(&zst_path).unwrap()).unwrap(),
        fs::read(&tar_path).unwrap(),
        "the zstd bundle decompresses to exactly the plain bundle"
    );

    // The seek table accounts for every byte of the file.
    let size = fs::metadata(&zst_path).unwrap().len();
    let table = read_seek_table(&mut fs::File::open(&zst_path).unwrap(), size)
        .unwrap()
        .unwrap();
    let compressed: u64 = table.frames.iter().map(|f| f.c_size).sum();
    assert_eq!(compressed + table.table_size, size);
    assert_eq!(table.decompressed_size(), summary.uncompressed);
    assert_eq!(table.table_size, 8 + 8 * table.frames.len() as u64 + 9);
    // One frame per entry, two more for the big layer, one for the end blocks.
    assert_eq!(table.frames.len(), summary.entries + 2 + 1);
    assert!(table.frames.iter().all(|f| f.d_size <= FRAME_INPUT as u64));
    // Every entry starts a frame.
    let b = Bundle::open(&zst_path).unwrap();
    for e in b.entries() {
        let header = e.offset - 512;
        assert!(
            table.frames.iter().any(|f| f.d_off == header),
            "{} does not start a frame",
            e.name
        );
    }

    // The zstd command line tool, when present, reads it too.
    let zstd_cli = Command::new("zstd")
        .arg("--version")
        .stdout(Stdio::null())
        .status();
    if zstd_cli.is_ok_and(|s| s.success()) {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("zstd -d -c < '{}' | tar t", zst_path.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listing = String::from_utf8(out.stdout).unwrap();
        assert!(listing.contains(&fx.big_layer.blob_path()), "{listing}");
        assert!(listing.contains("airlock.json"));
    }
}

#[test]
fn wrong_blob_or_drop_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for path in paths(dir.path()) {
        let mut w = BundleWriter::create(&path, WriteOptions::for_path(&path)).unwrap();
        w.add_file("oci-layout", b"{}").unwrap();
        let data = seeded_bytes(3, FRAME_INPUT + 10);
        let mut bad = data.clone();
        bad[5] ^= 1;
        let err = w
            .add_blob(&Digest::of(&data), data.len() as u64, &mut &bad[..])
            .unwrap_err();
        assert!(matches!(err, BundleError::BlobMismatch { .. }), "{err}");
        assert!(err.to_string().contains(Digest::of(&data).as_str()));
        assert!(matches!(w.finish(), Err(BundleError::Poisoned { .. })));
        assert!(!path.exists());

        let mut w = BundleWriter::create(&path, WriteOptions::for_path(&path)).unwrap();
        w.add_blob(&Digest::of(&data), data.len() as u64, &mut &data[..])
            .unwrap();
        drop(w);
        assert!(!path.exists());
        // A short stream is a mismatch too.
        let mut w = BundleWriter::create(&path, WriteOptions::for_path(&path)).unwrap();
        let err = w
            .add_blob(&Digest::of(&data), data.len() as u64, &mut &data[..100])
            .unwrap_err();
        assert!(matches!(err, BundleError::BlobMismatch { .. }), "{err}");
        drop(w);
    }
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// Flips one byte of the file at `offset`.
fn flip(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x55;
    fs::write(path, bytes).unwrap();
}

fn findings_for<'a>(r: &'a VerifyReport, d: &Digest) -> Vec<&'a airlock::bundle::Finding> {
    r.findings
        .iter()
        .filter(|f| f.digest.as_ref() == Some(d))
        .collect()
}

#[test]
fn flipped_byte_in_a_layer_names_the_blob_and_images() {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    for path in paths(dir.path()) {
        write(&fx, &path, &[]);
        let b = Bundle::open(&path).unwrap();
        let entry = b.entry(&fx.big_layer.blob_path()).unwrap().clone();
        let offset = if b.compressed() {
            // The middle of the compressed frame holding the layer's second frame of data.
            let size = b.file_size();
            let table = read_seek_table(&mut fs::File::open(&path).unwrap(), size)
                .unwrap()
                .unwrap();
            let target = entry.offset + FRAME_INPUT as u64;
            let f = table
                .frames
                .iter()
                .find(|f| f.d_off <= target && target < f.d_off + f.d_size)
                .unwrap();
            f.c_off + f.c_size / 2
        } else {
            entry.offset + 4321
        };
        drop(b);
        flip(&path, offset);
        let report = verify_quiet(&path);
        assert!(!report.ok);
        let bad = findings_for(&report, &fx.big_layer);
        assert!(!bad.is_empty(), "{:#?}", report.findings);
        let expect_kind = if path.extension().unwrap() == "zst" {
            FindingKind::CorruptFrame
        } else {
            FindingKind::DigestMismatch
        };
        assert_eq!(bad[0].kind, expect_kind, "{:#?}", report.findings);
        assert_eq!(bad[0].images, vec![NGINX.to_string(), MULTI.to_string()]);
        // Only that blob is reported; the pass went on and checked the small layer after it.
        assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
        assert_eq!(report.blobs, fx.blobs.len());
        assert!(findings_for(&report, &fx.small_layer).is_empty());
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["ok"], false);
        assert!(json["findings"][0]["kind"].is_string());
        assert_eq!(json["findings"][0]["digest"], fx.big_layer.to_string());
        let mut human = Vec::new();
        report.print_human(&mut human).unwrap();
        let human = String::from_utf8(human).unwrap();
        assert!(human.contains("FAILED: 1 problem"), "{human}");
        assert!(human.contains(NGINX), "{human}");
    }
}

#[test]
fn truncation_is_reported() {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    for path in paths(dir.path()) {
        write(&fx, &path, &[]);
        let full = fs::read(&path).unwrap();
        for cut in [full.len() / 2, full.len() - 700] {
            fs::write(&path, &full[..cut]).unwrap();
            let report = verify_quiet(&path);
            assert!(!report.ok);
            assert!(
                report
                    .findings
                    .iter()
                    .any(|f| f.kind == FindingKind::Truncated && f.message.contains("offset")),
                "{} cut at {cut}: {:#?}",
                path.display(),
                report.findings
            );
        }
        // Cut exactly at the end of the plain tar's entries: no end-of-archive blocks.
        if path.extension().unwrap() == "tar" {
            fs::write(&path, &full[..full.len() - 1024]).unwrap();
            let report = verify_quiet(&path);
            assert!(
                report
                    .findings
                    .iter()
                    .any(|f| f.kind == FindingKind::Truncated),
                "{:#?}",
                report.findings
            );
        }
    }
}

#[test]
fn missing_blob_is_reported_with_its_images() {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    for path in paths(dir.path()) {
        write(&fx, &path, &[&fx.small_layer]);
        let report = verify_quiet(&path);
        assert!(!report.ok);
        let missing = findings_for(&report, &fx.small_layer);
        assert_eq!(
            missing.len(),
            1,
            "one finding per blob: {:#?}",
            report.findings
        );
        assert_eq!(missing[0].kind, FindingKind::MissingBlob);
        assert!(
            missing[0].message.contains("needed by manifest sha256:"),
            "{}",
            missing[0].message
        );
        assert!(
            missing[0].message.contains("manifest.json"),
            "{}",
            missing[0].message
        );
        assert_eq!(
            missing[0].images,
            vec![NGINX.to_string(), MULTI.to_string()]
        );
        assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
        // Still opens: the reader does not judge the graph.
        let b = Bundle::open(&path).unwrap();
        assert!(!b.has_blob(&fx.small_layer));
    }
}

#[test]
fn ls_report_shape() {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.tar.zst");
    write(&fx, &path, &[]);
    let report = ListReport::from_bundle(&Bundle::open(&path).unwrap());
    let json = serde_json::to_value(&report).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = vec![
        "bundle",
        "file_size",
        "compression",
        "tool",
        "created",
        "format_version",
        "docker_platform",
        "images",
        "blob_count",
        "blob_bytes",
    ];
    want.sort();
    let mut keys = keys;
    keys.sort();
    assert_eq!(keys, want);
    assert_eq!(json["compression"], "zstd");
    assert_eq!(json["blob_count"], fx.blobs.len());
    assert_eq!(
        json["images"],
        serde_json::to_value(&fx.toc.images).unwrap()
    );
    let mut human = Vec::new();
    report.print_human(&mut human).unwrap();
    let human = String::from_utf8(human).unwrap();
    assert!(
        human.contains("NAME") && human.contains("PLATFORMS") && human.contains(NGINX),
        "{human}"
    );
}

/// A tar with the layout files and one extra raw entry made by `extra`.
fn hostile_tar(path: &Path, extra: impl FnOnce(&mut tar::Builder<fs::File>)) {
    let fx = fixture();
    let mut b = tar::Builder::new(fs::File::create(path).unwrap());
    let add = |b: &mut tar::Builder<fs::File>, name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
    };
    add(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    add(&mut b, TOC_NAME, &serde_json::to_vec(&fx.toc).unwrap());
    extra(&mut b);
    b.into_inner().unwrap().flush().unwrap();
}

fn raw_entry(b: &mut tar::Builder<fs::File>, name: &str, kind: tar::EntryType, link: Option<&str>) {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(0);
    h.set_mode(0o644);
    // Bypass the tar crate's own path checks, as a hostile archive would.
    let raw = &mut h.as_old_mut().name;
    raw[..name.len()].copy_from_slice(name.as_bytes());
    if let Some(l) = link {
        h.set_link_name(l).unwrap();
    }
    h.set_cksum();
    b.append(&h, &[][..]).unwrap();
}

#[test]
fn hostile_entries_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, tar::EntryType, Option<&str>)> = vec![
        ("../x", tar::EntryType::Regular, None),
        ("blobs/../../x", tar::EntryType::Regular, None),
        ("/abs", tar::EntryType::Regular, None),
        (
            "blobs/sha256/link",
            tar::EntryType::Symlink,
            Some("/etc/passwd"),
        ),
        ("hard", tar::EntryType::Link, Some("oci-layout")),
        ("dev", tar::EntryType::Char, None),
    ];
    for (i, (name, kind, link)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("h{i}.tar"));
        hostile_tar(&path, |b| raw_entry(b, name, kind, link));
        match Bundle::open(&path) {
            Err(BundleError::Hostile { entry, .. }) => assert_eq!(entry, name),
            other => panic!("{name}: {other:?}"),
        }
        let report = verify_quiet(&path);
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.kind == FindingKind::HostileEntry && f.entry.as_deref() == Some(name)),
            "{name}: {:#?}",
            report.findings
        );
    }
    // A duplicate name.
    let path = dir.path().join("dup.tar");
    hostile_tar(&path, |b| {
        let mut h = tar::Header::new_ustar();
        h.set_size(2);
        b.append_data(&mut h, "oci-layout", &b"{}"[..]).unwrap();
    });
    assert!(matches!(
        Bundle::open(&path),
        Err(BundleError::Hostile { .. })
    ));
    let report = verify_quiet(&path);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::DuplicateEntry)
    );
}

#[test]
fn not_airlock_and_newer_bundles_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.tar");
    let mut w = BundleWriter::create(&path, WriteOptions::for_path(&path)).unwrap();
    w.add_file("oci-layout", b"{}").unwrap();
    w.finish().unwrap();
    assert!(matches!(
        Bundle::open(&path),
        Err(BundleError::NotAirlock { .. })
    ));
    let mut w = BundleWriter::create(&path, WriteOptions::for_path(&path)).unwrap();
    w.add_file(TOC_NAME, br#"{"format_version": 999}"#).unwrap();
    w.finish().unwrap();
    let err = Bundle::open(&path).unwrap_err();
    assert!(
        matches!(err, BundleError::Newer { found: 999, .. }),
        "{err}"
    );
}

#[test]
fn recompressed_without_seek_table_still_reads() {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    let [tar_path, _] = paths(dir.path());
    write(&fx, &tar_path, &[]);
    let path = dir.path().join("by-hand.tar.zst");
    let plain = fs::read(&tar_path).unwrap();
    fs::write(&path, zstd::encode_all(&plain[..], 3).unwrap()).unwrap();
    let b = Bundle::open(&path).unwrap();
    assert!(b.compressed() && !b.seekable());
    for (d, _, bytes) in fx.blobs.iter().rev() {
        let mut got = Vec::new();
        b.blob(d).unwrap().read_to_end(&mut got).unwrap();
        assert!(got == *bytes);
    }
    let report = verify_quiet(&path);
    assert!(report.ok, "{:#?}", report.findings);
}

#[test]
fn damaged_header_is_skipped_and_the_rest_checked() {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    for path in paths(dir.path()) {
        write(&fx, &path, &[]);
        let b = Bundle::open(&path).unwrap();
        let header = b.entry(&fx.big_layer.blob_path()).unwrap().offset - 512;
        let offset = if b.compressed() {
            let size = b.file_size();
            let table = read_seek_table(&mut fs::File::open(&path).unwrap(), size)
                .unwrap()
                .unwrap();
            let f = table.frames.iter().find(|f| f.d_off == header).unwrap();
            f.c_off + 30 // the tar header bytes (noise is stored nearly raw)
        } else {
            header + 20 // inside the name field
        };
        drop(b);
        flip(&path, offset);
        let report = verify_quiet(&path);
        assert!(!report.ok);
        // The big layer could not be read, so it is missing for both images...
        let big = findings_for(&report, &fx.big_layer);
        assert!(
            big.iter()
                .any(|f| f.kind == FindingKind::MissingBlob && f.images == [NGINX, MULTI]),
            "{}: {:#?}",
            path.display(),
            report.findings
        );
        // ...but the pass resynchronised and checked the small layer after it.
        assert!(
            findings_for(&report, &fx.small_layer).is_empty(),
            "{:#?}",
            report.findings
        );
        assert_eq!(report.blobs, fx.blobs.len() - 1);
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.message.contains("were not checked"))
        );
    }
}

/// Rough write/verify/read throughput on incompressible data:
/// `AIRLOCK_BENCH_MB=512 cargo test --test bundle_format throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    use std::time::Instant;
    let mb: u64 = std::env::var("AIRLOCK_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("layer");
    let mut hasher = airlock::digest::Hasher::new();
    {
        let mut random = fs::File::open("/dev/urandom").unwrap().take(mb << 20);
        let mut out = fs::File::create(&src).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = random.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).unwrap();
        }
    }
    let (digest, size) = hasher.finish();
    for path in paths(dir.path()) {
        let t = Instant::now();
        let mut w = BundleWriter::create(&path, WriteOptions::for_path(&path)).unwrap();
        w.add_blob(&digest, size, &mut fs::File::open(&src).unwrap())
            .unwrap();
        w.finish().unwrap();
        let write = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let report = verify(&path, &Silent).unwrap();
        let check = t.elapsed().as_secs_f64();
        assert_eq!(report.bytes, size);
        eprintln!(
            "{}: {mb} MiB, write {:.0} MiB/s, verify {:.0} MiB/s",
            path.display(),
            mb as f64 / write,
            mb as f64 / check
        );
    }
}
