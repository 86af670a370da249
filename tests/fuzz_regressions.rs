//! The fuzzers' findings and seeds, kept as plain tests so CI runs them without
//! cargo-fuzz: every file under `tests/fuzz_regressions/<target>/` (crashes, hangs and
//! interesting inputs the fuzzers in `fuzz/` found) and `fuzz/seeds/<target>/` goes
//! through the same code path as the fuzz target of that name, and must end in a clean
//! result or a clean error: no panic, in bounded time. See `fuzz/README.md`.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use airlock::bundle::seekable::{check_frame_header, damaged_footer, read_seek_table};
use airlock::bundle::toc::{Toc, checksum_problem};
use airlock::bundle::{Bundle, verify};
use airlock::digest::Digest;
use airlock::oci::{
    DockerLoadEntry, ImageConfig, ImageIndex, ImageManifest, Platform, RawManifest,
    sniff_media_type,
};
use airlock::progress::Silent;
use airlock::reference::Reference;

/// What `fuzz/fuzz_targets/bundle_reader.rs` does.
fn bundle_reader(data: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.tar");
    std::fs::write(&path, data).unwrap();
    let Ok(bundle) = Bundle::open(&path) else {
        return;
    };
    let toc = bundle.toc().clone();
    let names: Vec<String> = bundle.entries().iter().map(|e| e.name.clone()).collect();
    for name in names {
        let _ = bundle.read_entry(&name, 1 << 20);
    }
    for b in &toc.blobs {
        if let Ok(r) = bundle.blob(&b.digest) {
            let mut sink = Vec::new();
            let _ = r.take(16 << 20).read_to_end(&mut sink);
        }
    }
    for image in &toc.images {
        let _ = airlock::bundle::graph::read_graph(&bundle, image);
    }
}

/// What `fuzz/fuzz_targets/verify.rs` does.
fn verify_bytes(data: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.tar");
    std::fs::write(&path, data).unwrap();
    let _ = verify(&path, &Silent);
}

/// What `fuzz/fuzz_targets/parsers.rs` does.
fn parsers(data: &[u8]) {
    let raw = RawManifest::new(
        data.to_vec(),
        Some("application/vnd.oci.image.manifest.v1+json"),
    );
    let _ = raw.parse();
    let _ = sniff_media_type(data);
    let _ = serde_json::from_slice::<Toc>(data);
    let _ = checksum_problem(data);
    let _ = serde_json::from_slice::<ImageIndex>(data);
    let _ = serde_json::from_slice::<ImageManifest>(data);
    let _ = serde_json::from_slice::<ImageConfig>(data);
    let _ = serde_json::from_slice::<Vec<DockerLoadEntry>>(data);
    let text = String::from_utf8_lossy(data);
    for s in std::iter::once(text.as_ref()).chain(text.lines()) {
        if let Ok(r) = Reference::parse(s) {
            let _ = (
                r.familiar(),
                r.familiar_name(),
                r.to_string(),
                r.manifest_reference(),
            );
        }
        if let Ok(d) = Digest::parse(s) {
            let _ = (d.blob_path(), d.short(), d.hex());
        }
        if let Ok(p) = Platform::parse(s) {
            let _ = p.satisfies(&Platform::linux_amd64());
        }
    }
}

/// What `fuzz/fuzz_targets/seek_table.rs` does.
fn seek_table(data: &[u8]) {
    let len = data.len() as u64;
    if let Ok(Ok(table)) = read_seek_table(&mut Cursor::new(data), len) {
        let _ = table.decompressed_size();
        for f in &table.frames {
            let start = usize::try_from(f.c_off).unwrap().min(data.len());
            let _ = check_frame_header(&data[start..], f);
        }
    }
    let _ = damaged_footer(&mut Cursor::new(data), len);
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    out.retain(|p| p.is_file() && p.file_name().is_none_or(|n| n != "README.md"));
    out.sort();
    out
}

/// Feeds every regression and seed file of `target` to `run`.
fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut inputs = files(&root.join("tests/fuzz_regressions").join(target));
    inputs.extend(files(&root.join("fuzz/seeds").join(target)));
    if target == "verify" {
        inputs.extend(files(&root.join("fuzz/seeds/bundle_reader")));
    }
    assert!(!inputs.is_empty(), "no inputs for {target}");
    for input in inputs {
        let data = std::fs::read(&input).unwrap();
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(
            outcome.is_ok(),
            "{target}: {} panicked (reproduce with `cargo fuzz run {target} {}`)",
            input.display(),
            input.display()
        );
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(10),
            "{target}: {} took {took:?}",
            input.display()
        );
    }
}

#[test]
fn bundle_reader_regressions() {
    replay("bundle_reader", bundle_reader);
}

#[test]
fn verify_regressions() {
    replay("verify", verify_bytes);
}

#[test]
fn parser_regressions() {
    replay("parsers", parsers);
}

#[test]
fn seek_table_regressions() {
    replay("seek_table", seek_table);
}
