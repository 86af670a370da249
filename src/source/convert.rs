//! Turning local images with uncompressed layers into gzip images, fast.
//!
//! `docker save` (graphdriver store, every Docker version) and some OCI layouts hold
//! layers as plain tars. Carrying them that way would double the bundle, so when such
//! an image is opened its layers are gzip-compressed once, into a private staging OCI
//! layout (`blobs/sha256/…` under [`OpenContext::staging`](super::OpenContext)), and a
//! new Docker schema-2 manifest is written for it. The config is kept byte-exact, so
//! the image ID (the config digest) is the one Docker showed; the manifest is new
//! content with a new digest, which [`SourceImage::note`](super::SourceImage) says.
//!
//! Compression is parallel across layers *and* within a layer: [`ParallelGzip`] cuts a
//! stream into [`CHUNK_SIZE`] chunks, compresses each as its own gzip member on a
//! thread pool and writes the members in order ([`crate::ordered`]). A multi-member
//! gzip file is one valid gzip stream (RFC 1952 §2.2); Go's `compress/gzip` reader
//! (Docker, containerd, skopeo), GNU gzip and flate2's `MultiGzDecoder` read it whole.
//! Chunks in flight are bounded by a budget shared by the layers compressed at once, so
//! memory stays flat whatever the layer sizes, and a layer stops at its next chunk once
//! Ctrl-C or SIGTERM has been received. The output is deterministic (fixed level and
//! chunking, gzip mtime 0), so the same layer always gets the same digest.
//!
//! Nothing is assumed: the compressed digest and size are computed while writing, and
//! the uncompressed stream is hashed and checked against the config's `diff_ids`
//! (a mismatch means the archive is damaged). A layer compressed earlier in the same
//! staging dir (same diff_id) is reused: `airlock-diffids/<hex>` records it.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

use super::BlobStore;
use crate::digest::{Digest, Hasher};
use crate::oci::{self, Descriptor, ImageConfig, ImageManifest, RawManifest, media};
use crate::ordered;
use crate::progress::Progress;
use crate::sync::lock;
use crate::words::count;

/// Bytes of uncompressed input per gzip member.
pub(crate) const CHUNK_SIZE: usize = 4 * 1024 * 1024;
/// The gzip level airlock uses for layers it compresses (zlib's default).
pub(crate) const LEVEL: u32 = 6;

/// Compresses `input` into `output` as a multi-member gzip stream, chunks compressed
/// in parallel on `threads` threads at `level` (0–9). Returns the digest and size of
/// what was written.
#[cfg(test)]
pub(crate) fn gzip_parallel(
    input: &mut dyn Read,
    output: &mut dyn Write,
    threads: usize,
    level: u32,
) -> io::Result<(Digest, u64)> {
    let gz = ParallelGzip::new(threads, level)?;
    Ok(gz.compress(input, output, &|_| {})?.compressed)
}

/// What [`ParallelGzip::compress`] read and wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GzipStats {
    /// Digest and size of the gzip stream written.
    pub compressed: (Digest, u64),
    /// Digest and size of the input (for a layer, its diff_id).
    pub uncompressed: (Digest, u64),
}

/// A chunked parallel gzip compressor: one pool of threads and one budget of chunks in
/// flight ([`ordered::Pool`]), shared by every stream compressed with it (several may
/// run at once, from different threads).
pub(crate) struct ParallelGzip {
    pool: ordered::Pool,
}

impl ParallelGzip {
    /// A compressor using `threads` worker threads (at least one).
    pub fn new(threads: usize, level: u32) -> io::Result<ParallelGzip> {
        let threads = threads.max(1);
        let level = Compression::new(level.min(9));
        // Enough to keep every worker busy while finished chunks wait to be written.
        let pool = ordered::Pool::new("gzip", threads, 2 * threads + 2, move |chunk| {
            gzip_member(chunk, level)
        })?;
        Ok(ParallelGzip { pool })
    }

    /// Compresses one stream. `on_read` is told how many input bytes were consumed,
    /// chunk by chunk (for progress).
    pub fn compress(
        &self,
        input: &mut dyn Read,
        output: &mut dyn Write,
        on_read: &dyn Fn(u64),
    ) -> io::Result<GzipStats> {
        let mut in_hash = Hasher::new();
        let members = Members {
            out: output,
            hash: Hasher::new(),
        };
        let mut stream = ordered::Stream::new(&self.pool, CHUNK_SIZE, members);
        stream.read_from(input, &mut |chunk| {
            in_hash.update(chunk);
            on_read(chunk.len() as u64);
        })?;
        let Members { out, hash } = stream.finish()?;
        out.flush()?;
        Ok(GzipStats {
            compressed: hash.finish(),
            uncompressed: in_hash.finish(),
        })
    }
}

/// Where the members of one stream go, hashed as they are written.
struct Members<'a> {
    out: &'a mut dyn Write,
    hash: Hasher,
}

impl ordered::ChunkOut for Members<'_> {
    fn put(&mut self, member: &[u8], _input_len: usize) -> io::Result<()> {
        self.out.write_all(member)?;
        self.hash.update(member);
        Ok(())
    }
}

/// One complete gzip member (header, deflate data, CRC and size trailer).
fn gzip_member(data: &[u8], level: Compression) -> io::Result<Vec<u8>> {
    let mut enc = GzEncoder::new(Vec::with_capacity(data.len() / 2 + 64), level);
    enc.write_all(data)?;
    enc.finish()
}

/// Where conversions write: a staging OCI layout and the threads to use.
pub(crate) struct Staging<'a> {
    pub dir: &'a Path,
    pub jobs: usize,
    pub progress: &'a dyn Progress,
    /// Keeps a private staging dir alive as long as the stores that read from it.
    pub keep: Option<Arc<tempfile::TempDir>>,
}

/// An image to convert: its config (bytes kept exactly), its layers as the source
/// describes them, and the store that serves them.
pub(crate) struct ConvertInput {
    /// For messages: `docker-archive:app.tar (docker.io/library/app:1)`.
    pub image: String,
    pub config: Descriptor,
    pub config_bytes: Vec<u8>,
    /// Layer descriptors; uncompressed ones are compressed, the others kept. An
    /// uncompressed layer's digest is its diff_id.
    pub layers: Vec<Descriptor>,
    /// Where each layer comes from, for messages (an archive entry, a blob path).
    pub labels: Vec<String>,
    pub store: Arc<dyn BlobStore>,
}

/// A converted image: its new root manifest and a store serving its blobs.
pub(crate) struct Converted {
    pub manifest: RawManifest,
    pub store: Arc<dyn BlobStore>,
    /// How many layers airlock compressed (reused ones included).
    pub compressed: usize,
}

impl Converted {
    /// The operator-facing note for [`super::SourceImage::note`].
    pub fn note(&self) -> String {
        if self.compressed > 0 {
            format!(
                "{} gzip-compressed by airlock; the image ID (config digest) is unchanged, the manifest is new ({})",
                match self.compressed {
                    1 => "1 uncompressed layer was".to_string(),
                    n => format!("{n} uncompressed layers were"),
                },
                self.manifest.digest
            )
        } else {
            format!(
                "airlock wrote a manifest for this image ({}); the image ID (config digest) is unchanged",
                self.manifest.digest
            )
        }
    }
}

/// Whether an image with these layers needs [`convert`].
pub(crate) fn needs_conversion(layers: &[Descriptor]) -> bool {
    layers
        .iter()
        .any(|l| media::is_uncompressed_layer(&l.media_type))
}

/// What `airlock-diffids/<hex>` records for a layer compressed earlier.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    digest: Digest,
    size: u64,
}

/// Compresses the uncompressed layers of an image into the staging layout and writes a
/// new Docker schema-2 manifest for it (an OCI manifest if a kept layer is zstd, which
/// Docker's manifest type cannot express).
pub(crate) fn convert(input: ConvertInput, staging: &Staging<'_>) -> anyhow::Result<Converted> {
    let image = &input.image;
    let config: ImageConfig = serde_json::from_slice(&input.config_bytes).with_context(|| {
        format!(
            "{image}: the image config {} is not valid JSON",
            input.config.digest
        )
    })?;
    let Some(rootfs) = config.rootfs else {
        bail!(
            "{image}: the image config {} has no rootfs",
            input.config.digest
        );
    };
    if rootfs.diff_ids.len() != input.layers.len() {
        bail!(
            "{image}: the image has {} but its config lists {}: the archive is damaged",
            count(input.layers.len() as u64, "layer"),
            count(rootfs.diff_ids.len() as u64, "diff_id")
        );
    }
    let dirs = StagingDirs::create(staging.dir)?;

    // Unique diff_ids still to compress; reuse what this staging dir already holds.
    let mut done: HashMap<Digest, Record> = HashMap::new();
    let mut todo: Vec<usize> = Vec::new();
    for (i, layer) in input.layers.iter().enumerate() {
        if !media::is_uncompressed_layer(&layer.media_type) {
            continue;
        }
        let diff_id = &rootfs.diff_ids[i];
        if done.contains_key(diff_id) || todo.iter().any(|&j| &rootfs.diff_ids[j] == diff_id) {
            continue;
        }
        match dirs.reusable(diff_id) {
            Some(r) => {
                done.insert(diff_id.clone(), r);
            }
            None => todo.push(i),
        }
    }

    if !todo.is_empty() {
        let total: u64 = todo.iter().map(|&i| input.layers[i].size).sum();
        staging
            .progress
            .phase("compressing", total, todo.len() as u64);
        let result = compress_layers(&input, &rootfs.diff_ids, &todo, &dirs, staging);
        staging.progress.finish_phase();
        done.extend(result?);
    }

    let oci_out = input
        .layers
        .iter()
        .any(|l| media::is_zstd_layer(&l.media_type));
    let (manifest_type, config_type, gzip_type) = if oci_out {
        (
            media::OCI_MANIFEST,
            media::OCI_CONFIG,
            media::OCI_LAYER_GZIP,
        )
    } else {
        (
            media::DOCKER_MANIFEST,
            media::DOCKER_CONFIG,
            media::DOCKER_LAYER_GZIP,
        )
    };
    let mut compressed = 0;
    let mut layers = Vec::with_capacity(input.layers.len());
    for (i, l) in input.layers.iter().enumerate() {
        if media::is_uncompressed_layer(&l.media_type) {
            let r = &done[&rootfs.diff_ids[i]];
            layers.push(Descriptor::new(gzip_type, r.digest.clone(), r.size));
            compressed += 1;
            continue;
        }
        let mt = if media::is_zstd_layer(&l.media_type) {
            media::OCI_LAYER_ZSTD
        } else if l.urls.is_some() && !oci_out {
            media::DOCKER_FOREIGN_LAYER_GZIP
        } else {
            gzip_type
        };
        let mut d = Descriptor::new(mt, l.digest.clone(), l.size);
        d.urls = l.urls.clone();
        layers.push(d);
    }
    let config_desc = Descriptor::new(config_type, input.config.digest.clone(), input.config.size);
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(manifest_type.to_string()),
        config: config_desc,
        layers,
        annotations: None,
    };
    let bytes = serde_json::to_vec_pretty(&manifest).context("serializing a manifest")?;
    let manifest = RawManifest::new(bytes, Some(manifest_type));
    dirs.put_small(&input.config.digest, &input.config_bytes)?;
    dirs.put_small(&manifest.digest, &manifest.bytes)?;

    Ok(Converted {
        manifest,
        store: Arc::new(StagedStore {
            blobs: dirs.blobs.clone(),
            fallback: Arc::clone(&input.store),
            _keep: staging.keep.clone(),
        }),
        compressed,
    })
}

/// Compresses the layers `todo` (indexes into `input.layers`), several at once.
fn compress_layers(
    input: &ConvertInput,
    diff_ids: &[Digest],
    todo: &[usize],
    dirs: &StagingDirs,
    staging: &Staging<'_>,
) -> anyhow::Result<HashMap<Digest, Record>> {
    let jobs = staging.jobs.max(1);
    let gz = ParallelGzip::new(jobs, LEVEL).context("starting the gzip worker threads")?;
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<anyhow::Result<(Digest, Record)>>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.min(todo.len()) {
            s.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = todo.get(k) else { break };
                    let r = compress_layer(input, i, &diff_ids[i], dirs, &gz, staging.progress);
                    if r.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    lock(&results).push(r.map(|rec| (diff_ids[i].clone(), rec)));
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .collect()
}

fn compress_layer(
    input: &ConvertInput,
    i: usize,
    diff_id: &Digest,
    dirs: &StagingDirs,
    gz: &ParallelGzip,
    progress: &dyn Progress,
) -> anyhow::Result<Record> {
    let layer = &input.layers[i];
    let label = &input.labels[i];
    let what = || format!("{}: layer {} ({label})", input.image, i + 1);
    let mut reader = input
        .store
        .blob(layer)
        .with_context(|| format!("{}: cannot read", what()))?;
    let item = progress.item(&format!("layer {}", diff_id.short()), layer.size);
    let mut tmp = tempfile::NamedTempFile::new_in(&dirs.tmp)
        .with_context(|| format!("creating a file in {}", dirs.tmp.display()))?;
    let stats = {
        let mut out = BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        let stats = gz
            .compress(&mut reader, &mut out, &|n| item.advance(n))
            .with_context(|| format!("{}: compressing", what()))?;
        out.flush()
            .with_context(|| format!("writing to {}", dirs.tmp.display()))?;
        stats
    };
    let (actual, size) = &stats.uncompressed;
    if actual != diff_id {
        bail!(
            "{}: its content hashes to {actual}, but the image config says the layer is {diff_id}: the archive is damaged (create it again)",
            what()
        );
    }
    if actual != &layer.digest || *size != layer.size {
        bail!(
            "{}: its content is {actual} ({size} bytes), but the image describes it as {} ({} bytes): the archive is damaged",
            what(),
            layer.digest,
            layer.size
        );
    }
    let (digest, size) = stats.compressed;
    let dest = dirs.blobs.join(digest.hex());
    tmp.persist(&dest)
        .with_context(|| format!("storing {}", dest.display()))?;
    let record = Record { digest, size };
    dirs.record(diff_id, &record)?;
    item.done();
    Ok(record)
}

/// The staging layout's directories.
struct StagingDirs {
    blobs: PathBuf,
    tmp: PathBuf,
    diffids: PathBuf,
}

impl StagingDirs {
    fn create(root: &Path) -> anyhow::Result<StagingDirs> {
        let dirs = StagingDirs {
            blobs: root.join("blobs").join("sha256"),
            tmp: root.join("tmp"),
            diffids: root.join("airlock-diffids"),
        };
        for d in [&dirs.blobs, &dirs.tmp, &dirs.diffids] {
            fs::create_dir_all(d)
                .with_context(|| format!("creating the staging directory {}", d.display()))?;
        }
        let layout = root.join("oci-layout");
        if !layout.exists() {
            fs::write(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)
                .with_context(|| format!("writing {}", layout.display()))?;
        }
        Ok(dirs)
    }

    /// A layer compressed earlier into this staging dir, if its blob is still there.
    fn reusable(&self, diff_id: &Digest) -> Option<Record> {
        let bytes = fs::read(self.diffids.join(diff_id.hex())).ok()?;
        let r: Record = serde_json::from_slice(&bytes).ok()?;
        let meta = fs::metadata(self.blobs.join(r.digest.hex())).ok()?;
        (meta.len() == r.size).then_some(r)
    }

    fn record(&self, diff_id: &Digest, r: &Record) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec(r)?;
        self.put_atomic(&self.diffids.join(diff_id.hex()), &bytes)
    }

    /// Stores a small blob (config, manifest) under its digest.
    fn put_small(&self, digest: &Digest, bytes: &[u8]) -> anyhow::Result<()> {
        let dest = self.blobs.join(digest.hex());
        if dest.exists() {
            return Ok(());
        }
        self.put_atomic(&dest, bytes)
    }

    fn put_atomic(&self, dest: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        let mut tmp = tempfile::NamedTempFile::new_in(&self.tmp)
            .with_context(|| format!("creating a file in {}", self.tmp.display()))?;
        tmp.write_all(bytes)
            .with_context(|| format!("writing {}", dest.display()))?;
        tmp.persist(dest)
            .with_context(|| format!("storing {}", dest.display()))?;
        Ok(())
    }
}

/// Serves a converted image: blobs airlock wrote from the staging layout, the rest
/// (kept layers) from the original source.
struct StagedStore {
    blobs: PathBuf,
    fallback: Arc<dyn BlobStore>,
    _keep: Option<Arc<tempfile::TempDir>>,
}

impl StagedStore {
    fn staged(&self, digest: &Digest) -> Option<PathBuf> {
        let p = self.blobs.join(digest.hex());
        p.is_file().then_some(p)
    }
}

impl BlobStore for StagedStore {
    fn describe(&self) -> String {
        format!(
            "{} (with layers compressed by airlock in {})",
            self.fallback.describe(),
            self.blobs.display()
        )
    }
    fn manifest(&self, desc: &Descriptor) -> anyhow::Result<RawManifest> {
        let Some(path) = self.staged(&desc.digest) else {
            return self.fallback.manifest(desc);
        };
        if desc.size > oci::MAX_MANIFEST_SIZE {
            bail!(
                "{}: {} bytes is too large for a manifest",
                path.display(),
                desc.size
            );
        }
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(RawManifest::new(bytes, Some(&desc.media_type)))
    }
    fn blob(&self, desc: &Descriptor) -> anyhow::Result<Box<dyn Read + Send>> {
        let Some(path) = self.staged(&desc.digest) else {
            return self.fallback.blob(desc);
        };
        let f = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        Ok(Box::new(f))
    }
    fn local(&self) -> bool {
        self.fallback.local()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Silent;
    use flate2::read::MultiGzDecoder;

    /// Pseudo-random but compressible bytes.
    fn data(n: usize) -> Vec<u8> {
        let mut x: u32 = 12345;
        (0..n)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if i % 3 == 0 {
                    (x >> 16) as u8
                } else {
                    b'a' + (i % 7) as u8
                }
            })
            .collect()
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        MultiGzDecoder::new(bytes).read_to_end(&mut out).unwrap();
        out
    }

    /// Counts gzip members by decoding them one at a time.
    fn members(bytes: &[u8]) -> usize {
        let mut rest = bytes;
        let mut n = 0;
        while !rest.is_empty() {
            let mut d = flate2::bufread::GzDecoder::new(rest);
            io::copy(&mut d, &mut io::sink()).unwrap();
            rest = d.into_inner();
            n += 1;
        }
        n
    }

    #[test]
    fn gzip_parallel_round_trips() {
        for (n, threads) in [(0, 2), (10, 1), (CHUNK_SIZE, 2), (2 * CHUNK_SIZE + 17, 3)] {
            let input = data(n);
            let mut out = Vec::new();
            let (digest, size) = gzip_parallel(&mut &input[..], &mut out, threads, LEVEL).unwrap();
            assert_eq!(digest, Digest::of(&out));
            assert_eq!(size, out.len() as u64);
            assert_eq!(gunzip(&out), input, "size {n}");
            assert_eq!(members(&out), n.div_ceil(CHUNK_SIZE).max(1), "size {n}");
            // Deterministic whatever the thread count.
            let mut again = Vec::new();
            gzip_parallel(&mut &input[..], &mut again, 1, LEVEL).unwrap();
            assert_eq!(again, out);
        }
    }

    #[test]
    fn concurrent_streams_share_one_compressor() {
        let gz = ParallelGzip::new(2, 1).unwrap();
        let inputs: Vec<Vec<u8>> = (0..4).map(|i| data(CHUNK_SIZE * 2 + i * 1000)).collect();
        std::thread::scope(|s| {
            for input in &inputs {
                let gz = &gz;
                s.spawn(move || {
                    let mut out = Vec::new();
                    let st = gz.compress(&mut &input[..], &mut out, &|_| {}).unwrap();
                    assert_eq!(st.uncompressed, (Digest::of(input), input.len() as u64));
                    assert_eq!(&gunzip(&out), input);
                });
            }
        });
    }

    /// A store over in-memory blobs.
    pub(crate) struct MemStore(pub HashMap<Digest, Vec<u8>>);
    impl BlobStore for MemStore {
        fn describe(&self) -> String {
            "memory".into()
        }
        fn manifest(&self, desc: &Descriptor) -> anyhow::Result<RawManifest> {
            Ok(RawManifest::new(self.0[&desc.digest].clone(), None))
        }
        fn blob(&self, desc: &Descriptor) -> anyhow::Result<Box<dyn Read + Send>> {
            let b = self
                .0
                .get(&desc.digest)
                .with_context(|| format!("no blob {}", desc.digest))?;
            Ok(Box::new(io::Cursor::new(b.clone())))
        }
    }

    fn config_for(diff_ids: &[Digest]) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap()
    }

    fn input_for(
        layers: &[Vec<u8>],
        diff_ids: &[Digest],
        store: HashMap<Digest, Vec<u8>>,
    ) -> ConvertInput {
        let config_bytes = config_for(diff_ids);
        ConvertInput {
            image: "test image".into(),
            config: Descriptor::new(
                media::OCI_CONFIG,
                Digest::of(&config_bytes),
                config_bytes.len() as u64,
            ),
            config_bytes,
            layers: layers
                .iter()
                .map(|l| Descriptor::new(media::OCI_LAYER_TAR, Digest::of(l), l.len() as u64))
                .collect(),
            labels: (0..layers.len())
                .map(|i| format!("entry{i}/layer.tar"))
                .collect(),
            store: Arc::new(MemStore(store)),
        }
    }

    #[test]
    fn converts_and_keeps_config() {
        let layers = vec![data(CHUNK_SIZE + 5), data(100), data(CHUNK_SIZE + 5)];
        let diff_ids: Vec<Digest> = layers.iter().map(|l| Digest::of(l)).collect();
        let blobs = layers.iter().map(|l| (Digest::of(l), l.clone())).collect();
        let input = input_for(&layers, &diff_ids, blobs);
        let config_digest = input.config.digest.clone();
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging {
            dir: dir.path(),
            jobs: 2,
            progress: &Silent,
            keep: None,
        };
        let c = convert(input, &staging).unwrap();
        assert_eq!(c.compressed, 3);
        assert!(c.note().contains("compressed by airlock"));
        assert_eq!(c.manifest.media_type, media::DOCKER_MANIFEST);
        let oci::Parsed::Manifest(m) = c.manifest.parse().unwrap() else {
            panic!()
        };
        assert_eq!(m.config.digest, config_digest);
        assert_eq!(m.config.media_type, media::DOCKER_CONFIG);
        assert_eq!(m.layers[0], m.layers[2], "same diff_id, same blob");
        for (l, want) in m.layers.iter().zip(&layers) {
            assert_eq!(l.media_type, media::DOCKER_LAYER_GZIP);
            let mut gz = Vec::new();
            c.store.blob(l).unwrap().read_to_end(&mut gz).unwrap();
            assert_eq!(Digest::of(&gz), l.digest);
            assert_eq!(gz.len() as u64, l.size);
            assert_eq!(&gunzip(&gz), want);
        }
        assert_eq!(
            members(&{
                let mut v = Vec::new();
                c.store
                    .blob(&m.layers[0])
                    .unwrap()
                    .read_to_end(&mut v)
                    .unwrap();
                v
            }),
            2
        );
        // The config and the manifest are in the staging layout too.
        let mut cfg = Vec::new();
        c.store
            .blob(&m.config)
            .unwrap()
            .read_to_end(&mut cfg)
            .unwrap();
        assert_eq!(Digest::of(&cfg), config_digest);
        assert!(dir.path().join(c.manifest.digest.blob_path()).is_file());
        assert!(dir.path().join("oci-layout").is_file());

        // A second conversion in the same staging dir reuses the layers.
        let layers2 = vec![layers[1].clone()];
        let diff2 = vec![diff_ids[1].clone()];
        let input2 = input_for(&layers2, &diff2, HashMap::new()); // nothing to read
        let c2 = convert(input2, &staging).unwrap();
        let oci::Parsed::Manifest(m2) = c2.manifest.parse().unwrap() else {
            panic!()
        };
        assert_eq!(m2.layers[0], m.layers[1]);
    }

    #[test]
    fn damaged_layer_is_named() {
        let layers = vec![data(1000), data(2000)];
        let diff_ids: Vec<Digest> = layers.iter().map(|l| Digest::of(l)).collect();
        let mut blobs: HashMap<Digest, Vec<u8>> =
            layers.iter().map(|l| (Digest::of(l), l.clone())).collect();
        blobs.get_mut(&diff_ids[1]).unwrap()[10] ^= 1;
        let input = input_for(&layers, &diff_ids, blobs);
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging {
            dir: dir.path(),
            jobs: 2,
            progress: &Silent,
            keep: None,
        };
        let err = format!("{:#}", convert(input, &staging).err().unwrap());
        assert!(err.contains("layer 2 (entry1/layer.tar)"), "{err}");
        assert!(err.contains(diff_ids[1].as_str()), "{err}");
        assert!(err.contains("damaged"), "{err}");
    }

    #[test]
    fn layer_count_must_match_diff_ids() {
        let layers = vec![data(10)];
        let mut input = input_for(&layers, &[], HashMap::new());
        input.layers = vec![Descriptor::new(
            media::OCI_LAYER_TAR,
            Digest::of(&layers[0]),
            10,
        )];
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging {
            dir: dir.path(),
            jobs: 1,
            progress: &Silent,
            keep: None,
        };
        assert!(convert(input, &staging).is_err());
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use std::time::Instant;

    /// `AIRLOCK_BENCH_FILE=/path/to/layer.tar cargo test --lib gzip_throughput -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, not a test"]
    fn gzip_throughput() {
        let Ok(path) = std::env::var("AIRLOCK_BENCH_FILE") else {
            return;
        };
        let input = fs::read(&path).unwrap();
        let mb = input.len() as f64 / (1024.0 * 1024.0);
        let start = Instant::now();
        let mut single = GzEncoder::new(io::sink(), Compression::new(LEVEL));
        single.write_all(&input).unwrap();
        single.finish().unwrap();
        let t1 = start.elapsed().as_secs_f64();
        println!("single-threaded flate2: {:.0} MiB/s", mb / t1);
        for threads in [1, 2] {
            let start = Instant::now();
            let (_, size) =
                gzip_parallel(&mut &input[..], &mut io::sink(), threads, LEVEL).unwrap();
            let t = start.elapsed().as_secs_f64();
            println!(
                "gzip_parallel {threads} thread(s): {:.0} MiB/s, ratio {:.3}",
                mb / t,
                size as f64 / input.len() as f64
            );
        }
    }
}
