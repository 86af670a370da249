//! Compact bundles put similar layers side by side (issue 14, "similar layers across
//! images and versions compress against each other"): three images in a real registry,
//! pushed with `skopeo`, whose layers are gzip from Go's own `compress/gzip`
//! (`tests/go/gzipwrite`). The first and last image carry near-identical layers (a
//! "slim" variant: the same real files, fewer of them, plus one of its own) with a big
//! unrelated image between them, so in image order a zstd frame boundary separates them.
//! Checked on the bundle's bytes: the two raw tars follow each other inside one frame,
//! the slim layer then costs a small fraction of what it costs alone, two saves are
//! byte-identical, the bundle verifies, and `convert` still writes the plain bundle byte
//! for byte.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use support::cli::{Bundle, airlock, blob_path};
use support::gzipwrite::gzipwrite;
use support::images::{Blob, ImageSpec, Layer, OCI_LAYER_GZIP, PushOptions, file, layer, push};
use support::registry::TestRegistry;
use support::regzip_inputs::sorted_files;

const KEEP: PushOptions<'static> = PushOptions {
    format: None,
    creds: None,
};

/// `layer`'s tar gzip-compressed by Go's compress/gzip at the default level.
fn go_gzip(mut l: Layer) -> Layer {
    let mut child = Command::new(gzipwrite())
        .args(["-1", "-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let tar = l.tar.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&tar).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "gzipwrite failed");
    l.gz = Blob::new(OCI_LAYER_GZIP, out.stdout);
    l
}

/// Real files under /usr/lib/python3.11 (sorted, `skip` of every `keep_one_in` left
/// out), at most `max` bytes.
fn python_files(keep_one_in: usize, skip: usize, max: usize) -> Vec<support::images::FileSpec> {
    let root = Path::new("/usr/lib/python3.11");
    let mut files = Vec::new();
    let mut total = 0;
    for (i, p) in sorted_files(root).into_iter().enumerate() {
        if keep_one_in > 1 && i % keep_one_in == skip {
            continue;
        }
        let content = std::fs::read(&p).unwrap();
        if total + content.len() > max {
            break;
        }
        total += content.len();
        let rel = p.strip_prefix(root).unwrap();
        files.push(file(&format!("usr/lib/python/{}", rel.display()), content));
    }
    files
}

/// 40 MiB that zstd cannot shrink (xorshift), as one file.
fn unrelated_layer() -> Layer {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let bytes: Vec<u8> = (0..40 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    go_gzip(layer(&[file("opt/data.bin", bytes)]))
}

fn save(names: &[String], out: &Path, extra: &[&str]) {
    let mut args: Vec<String> = vec!["save".into()];
    args.extend(names.iter().cloned());
    args.extend(["-o".into(), out.display().to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(["--created".into(), "2024-05-01T00:00:00Z".into()]);
    airlock(&args).ok();
}

/// The end offsets (in the tar stream) of the file's zstd data frames.
fn frame_ends(file: &[u8]) -> Vec<u64> {
    let (mut pos, mut out, mut ends) = (0, 0u64, Vec::new());
    while pos < file.len() {
        let n = zstd::zstd_safe::find_frame_compressed_size(&file[pos..]).unwrap();
        let data = zstd::decode_all(&file[pos..pos + n]).unwrap();
        if !data.is_empty() {
            out += data.len() as u64;
            ends.push(out);
        }
        pos += n;
    }
    ends
}

/// Entry name → (offset of its header, offset past its data) in the tar stream.
fn entry_spans(tar: &[u8]) -> Vec<(String, u64, u64)> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            (
                name,
                e.raw_header_position(),
                e.raw_file_position() + e.size(),
            )
        })
        .collect()
}

#[test]
fn similar_layers_of_different_images_share_one_frame() {
    let full = go_gzip(layer(&python_files(1, 0, 6 << 20)));
    // Most of the same files (one in 10 left out) and a file of its own.
    let mut slim_files = python_files(10, 3, 6 << 20);
    slim_files.push(file("etc/slim", b"slim variant\n".to_vec()));
    let slim = go_gzip(layer(&slim_files));
    let big = unrelated_layer();
    let images = [
        ImageSpec::new("linux/amd64")
            .layer(&full)
            .label("g", "full")
            .build(),
        ImageSpec::new("linux/amd64")
            .layer(&big)
            .label("g", "big")
            .build(),
        ImageSpec::new("linux/amd64")
            .layer(&slim)
            .label("g", "slim")
            .build(),
    ];
    let reg = TestRegistry::start();
    let names: Vec<String> = ["full", "big", "slim"]
        .iter()
        .map(|n| format!("{}/groups/{n}:1", reg.addr()))
        .collect();
    for (image, name) in images.iter().zip(&names) {
        push(image, name, &KEEP);
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.tar.zst");
    save(&names, &out, &["--compact"]);

    // All three layers are stored raw; the slim one right behind the full one, and both
    // inside one frame, although image order puts the big layer between them.
    let b = Bundle::open(&out);
    let compact = b.toc()["compact"].as_array().cloned().unwrap_or_default();
    assert_eq!(compact.len(), 3, "{compact:#?}");
    let file_bytes = std::fs::read(&out).unwrap();
    let tar = zstd::decode_all(&file_bytes[..]).unwrap();
    let spans = entry_spans(&tar);
    let at = |l: &Layer| {
        let name = blob_path(&l.diff_id);
        spans
            .iter()
            .position(|s| s.0 == name)
            .unwrap_or_else(|| panic!("{name} not in the bundle"))
    };
    let (i_full, i_slim, i_big) = (at(&full), at(&slim), at(&big));
    assert_eq!(i_slim, i_full + 1, "entries: {spans:?}");
    assert!(i_big > i_slim, "entries: {spans:?}");
    let ends = frame_ends(&file_bytes);
    let frame_of = |offset: u64| ends.iter().position(|&e| offset < e).unwrap();
    let (start, end) = (spans[i_full].1, spans[i_slim].2 - 1);
    assert_eq!(
        frame_of(start),
        frame_of(end),
        "full and slim layers in different frames; frame ends {ends:?}, spans {spans:?}"
    );

    // What the slim layer costs in the bundle: far less than compressed on its own.
    let without = dir.path().join("without-slim.tar.zst");
    save(&names[..2], &without, &["--compact"]);
    let cost = file_bytes.len() as i64 - std::fs::metadata(&without).unwrap().len() as i64;
    let alone = zstd::encode_all(&slim.tar[..], 9).unwrap().len() as i64;
    eprintln!("slim layer: {cost} bytes in the bundle, {alone} bytes compressed alone");
    assert!(cost < alone / 4, "slim costs {cost} bytes, alone {alone}");

    // The order is a function of the inputs: a second save is byte-identical.
    let again = dir.path().join("again.tar.zst");
    save(&names, &again, &["--compact"]);
    assert!(
        std::fs::read(&again).unwrap() == file_bytes,
        "two saves differ"
    );
    airlock(&["verify".to_string(), out.display().to_string()]).ok();

    // The TOC keeps image order, so `convert` still writes the plain bundle byte for byte.
    let plain = dir.path().join("plain.tar.zst");
    save(&names, &plain, &[]);
    let converted = dir.path().join("converted.tar.zst");
    airlock(&[
        "convert".to_string(),
        out.display().to_string(),
        "-o".to_string(),
        converted.display().to_string(),
    ])
    .ok();
    assert!(
        std::fs::read(&converted).unwrap() == std::fs::read(&plain).unwrap(),
        "convert does not give the plain bundle"
    );
}
