//! Images from a `docker save` archive (`docker-archive:FILE[:REF]`), in both formats.
//!
//! - Legacy (Docker ≤ 24, and any graphdriver engine): `manifest.json` lists
//!   `{"Config": "<hex>.json", "RepoTags": [...], "Layers": ["<id>/layer.tar", ...]}`;
//!   layers are uncompressed tars (Docker links a repeated layer to its first copy
//!   with a symlink). There is no registry manifest at all, so airlock always writes
//!   one, compressing the uncompressed layers ([`super::convert`]); a layer that is
//!   already gzip or zstd (a tool other than Docker wrote the archive) is kept.
//! - Docker 25+ hybrid: `oci-layout` + `index.json` + `blobs/sha256/…` (plus a
//!   `manifest.json` for old loaders). Read as an OCI layout ([`super::layout`]):
//!   images with compressed layers (containerd image store) keep their manifests and
//!   digests byte-exact; images with uncompressed layers are converted.
//!
//! The archive is never extracted: its tar headers are walked once (the `tar` crate's
//! seeking iteration skips the data) to index entry name → offset and size, and each
//! file is then read with a seek and a bounded read. Symlinks and hard links between
//! entries are followed.
//!
//! Names: `RepoTags` (normalized), or the `index.json` annotations (and `RepoTags`) in
//! the hybrid format. An image with no name at all is called
//! `localhost/<archive file stem>:<n>`, n being its 1-based position in `manifest.json`
//! (or `index.json`). `docker-archive:FILE:REF` selects the image carrying the name REF
//! and records only that name.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};

use super::convert::{self, ConvertInput};
use super::layout::{self, Files, LayoutStore, Selected, Stager};
use super::tar_header;
use super::{BlobStore, OpenContext, SourceImage};
use crate::digest::{Digest, Hasher};
use crate::oci::{self, Descriptor, DockerLoadEntry, Parsed, RawManifest, media};
use crate::reference::Reference;
use crate::words::count;

/// What a tar entry is, for reading.
#[derive(Debug, Clone)]
enum Node {
    File {
        offset: u64,
        size: u64,
    },
    /// A symlink or hard link, its target already resolved to an archive path.
    Link(String),
}

/// Random access to the regular files of a tar archive.
pub(crate) struct TarFiles {
    path: PathBuf,
    entries: HashMap<String, Node>,
    /// A temporary archive (from the engine) removed when the last reader is dropped.
    _temp: Option<tempfile::TempPath>,
}

/// `./a//b/../c` → `a/c`; `None` for a path that climbs out of the archive.
fn normalize(path: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Some(parts.join("/"))
}

impl TarFiles {
    /// Indexes the archive at `path` by walking its headers once.
    pub(crate) fn index(path: &Path, temp: Option<tempfile::TempPath>) -> anyhow::Result<TarFiles> {
        let what = || format!("reading the tar archive {}", path.display());
        let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut magic = [0u8; 4];
        let n = f.read(&mut magic).with_context(what)?;
        if n >= 2 && magic[..2] == [0x1f, 0x8b] || n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
            bail!(
                "{} is compressed; decompress it first (gunzip / zstd -d) so it can be read without unpacking",
                path.display()
            );
        }
        f.seek(SeekFrom::Start(0)).with_context(what)?;
        let mut first = [0u8; 512];
        let n = tar_header::read_up_to(&mut f, &mut first).with_context(what)?;
        if n < first.len() || !tar_header::is_tar_header(&first) {
            bail!(
                "{} is not a tar archive (it does not start with a tar header); docker-archive: \
                 reads the file `docker save` writes",
                path.display()
            );
        }
        f.seek(SeekFrom::Start(0)).with_context(what)?;
        let mut archive = tar::Archive::new(BufReader::with_capacity(64 * 1024, f));
        let mut entries = HashMap::new();
        for entry in archive.entries_with_seek().with_context(what)? {
            // The tar library quotes the bytes it could not parse: never print them raw.
            let entry = entry
                .map_err(|e| anyhow::anyhow!(tar_header::printable(&e.to_string())))
                .with_context(what)?;
            let raw = entry.path().with_context(what)?.into_owned();
            let Some(name) = normalize(&raw) else {
                continue;
            };
            let node = match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => Node::File {
                    offset: entry.raw_file_position(),
                    size: entry.size(),
                },
                kind @ (tar::EntryType::Symlink | tar::EntryType::Link) => {
                    let Some(target) = entry.link_name().with_context(what)? else {
                        continue;
                    };
                    // A symlink is relative to its directory, a hard link to the root.
                    let base = match kind {
                        tar::EntryType::Symlink if !target.is_absolute() => Path::new(&name)
                            .parent()
                            .unwrap_or(Path::new(""))
                            .join(&target),
                        _ => target.into_owned(),
                    };
                    match normalize(&base) {
                        Some(t) => Node::Link(t),
                        None => continue,
                    }
                }
                _ => continue,
            };
            entries.insert(name, node);
        }
        Ok(TarFiles {
            path: path.to_path_buf(),
            entries,
            _temp: temp,
        })
    }

    /// Offset and size of a file, following links.
    fn find(&self, name: &str) -> Option<(u64, u64)> {
        let mut name = normalize(Path::new(name))?;
        for _ in 0..16 {
            match self.entries.get(&name)? {
                Node::File { offset, size } => return Some((*offset, *size)),
                Node::Link(t) => name = t.clone(),
            }
        }
        None
    }

    fn size(&self, name: &str) -> anyhow::Result<u64> {
        self.find(name)
            .map(|(_, size)| size)
            .with_context(|| format!("{} has no file {name}", self.describe()))
    }
}

impl Files for TarFiles {
    fn describe(&self) -> String {
        format!("docker-archive {}", self.path.display())
    }
    fn open(&self, name: &str) -> anyhow::Result<Box<dyn Read + Send>> {
        let (offset, size) = self
            .find(name)
            .with_context(|| format!("{} has no file {name}", self.describe()))?;
        let mut f = File::open(&self.path)
            .with_context(|| format!("cannot open {}", self.path.display()))?;
        f.seek(SeekFrom::Start(offset))
            .with_context(|| format!("{}: seeking to {name}", self.describe()))?;
        Ok(Box::new(f.take(size)))
    }
    fn exists(&self, name: &str) -> bool {
        self.find(name).is_some()
    }
}

/// Serves the blobs of a legacy archive by digest, from the paths `manifest.json` names.
struct LegacyStore {
    files: Arc<TarFiles>,
    paths: HashMap<Digest, String>,
}

impl BlobStore for LegacyStore {
    fn describe(&self) -> String {
        self.files.describe()
    }
    fn manifest(&self, desc: &Descriptor) -> anyhow::Result<RawManifest> {
        let path = self.path(&desc.digest)?;
        let bytes = layout::read_small(&*self.files, path, oci::MAX_MANIFEST_SIZE)?;
        Ok(RawManifest::new(bytes, Some(&desc.media_type)))
    }
    fn blob(&self, desc: &Descriptor) -> anyhow::Result<Box<dyn Read + Send>> {
        self.files.open(self.path(&desc.digest)?)
    }
    fn local(&self) -> bool {
        true
    }
}

impl LegacyStore {
    fn path(&self, digest: &Digest) -> anyhow::Result<&str> {
        self.paths
            .get(digest)
            .map(String::as_str)
            .with_context(|| format!("{} holds no blob {digest}", self.describe()))
    }
}

/// Opens the images of the `docker save` archive `file`.
pub fn open(
    input: &str,
    file: &Path,
    reference: Option<&Reference>,
    ctx: &OpenContext<'_>,
) -> anyhow::Result<Vec<SourceImage>> {
    let files = TarFiles::index(file, None).with_context(|| format!("{input}: cannot read"))?;
    let stem = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = stem.strip_suffix(".tar").unwrap_or(&stem);
    open_files(input, Arc::new(files), stem, reference, ctx)
}

/// Opens the images of an indexed archive; `stem` names unnamed images.
pub(crate) fn open_files(
    input: &str,
    files: Arc<TarFiles>,
    stem: &str,
    reference: Option<&Reference>,
    ctx: &OpenContext<'_>,
) -> anyhow::Result<Vec<SourceImage>> {
    let repo = layout::sanitize_component(stem);
    let legacy = if files.exists("manifest.json") {
        let bytes = layout::read_small(&*files, "manifest.json", oci::MAX_MANIFEST_SIZE)?;
        let entries: Vec<DockerLoadEntry> = serde_json::from_slice(&bytes)
            .with_context(|| format!("{input}: manifest.json is not a docker save manifest"))?;
        Some(entries)
    } else {
        None
    };
    if files.exists("oci-layout") && files.exists("index.json") {
        return open_hybrid(
            input,
            files,
            &repo,
            legacy.unwrap_or_default(),
            reference,
            ctx,
        );
    }
    match legacy {
        Some(entries) => open_legacy(input, files, &repo, entries, reference, ctx),
        None => bail!(
            "{input}: not a docker save archive (it has neither manifest.json nor oci-layout and index.json)"
        ),
    }
}

fn unnamed(repo: &str, position: usize) -> anyhow::Result<Reference> {
    Ok(Reference::parse(&format!("localhost/{repo}:{position}"))?)
}

fn parse_tags(input: &str, tags: &[String]) -> anyhow::Result<Vec<Reference>> {
    tags.iter()
        .map(|t| {
            Reference::parse(t)
                .with_context(|| format!("{input}: RepoTags entry `{t}` in manifest.json"))
        })
        .collect()
}

/// Keeps the images named `reference` (recording only that name), or all of them.
fn select<T>(
    input: &str,
    images: Vec<(T, Vec<Reference>)>,
    reference: Option<&Reference>,
) -> anyhow::Result<Vec<(T, Vec<Reference>)>> {
    let Some(r) = reference else {
        return Ok(images);
    };
    let available: Vec<String> = images
        .iter()
        .flat_map(|(_, names)| names.iter().map(|n| n.familiar()))
        .collect();
    let chosen: Vec<_> = images
        .into_iter()
        .filter(|(_, names)| names.contains(r))
        .map(|(x, _)| (x, vec![r.clone()]))
        .collect();
    if chosen.is_empty() {
        bail!(
            "{input}: the archive has no image named {}; it has: {}",
            r.familiar(),
            if available.is_empty() {
                "no named images".to_string()
            } else {
                available.join(", ")
            }
        );
    }
    Ok(chosen)
}

fn open_hybrid(
    input: &str,
    files: Arc<TarFiles>,
    repo: &str,
    legacy: Vec<DockerLoadEntry>,
    reference: Option<&Reference>,
    ctx: &OpenContext<'_>,
) -> anyhow::Result<Vec<SourceImage>> {
    let entries = layout::read_index(&*files)?;
    let store = LayoutStore {
        files: Arc::clone(&files) as Arc<dyn Files>,
    };
    // RepoTags by config path (`blobs/sha256/<hex>`), for entries without annotations.
    let mut tags_by_config: HashMap<String, Vec<Reference>> = HashMap::new();
    for e in &legacy {
        let tags = parse_tags(input, e.repo_tags.as_deref().unwrap_or_default())?;
        tags_by_config
            .entry(layout_path(&e.config))
            .or_default()
            .extend(tags);
    }
    let mut named = Vec::new();
    for d in &entries {
        let mut names: Vec<Reference> = layout::entry_name(d).into_iter().collect();
        if media::is_manifest(&d.media_type)
            && let Ok(root) = store.manifest(d)
            && let Ok(Parsed::Manifest(m)) = root.parse()
            && let Some(tags) = tags_by_config.get(&m.config.digest.blob_path())
        {
            names.extend(tags.iter().cloned());
        }
        named.push((d.clone(), names));
    }
    let mut grouped = layout::group(named);
    for (i, s) in grouped.iter_mut().enumerate() {
        if s.names.is_empty() {
            s.names.push(unnamed(repo, i + 1)?);
        }
    }
    let images = grouped.into_iter().map(|s| (s.desc, s.names)).collect();
    let selected = select(input, images, reference)?
        .into_iter()
        .map(|(desc, names)| Selected { desc, names })
        .collect();
    let stager = Stager::new(Some(ctx));
    layout::open_selected(input, files, selected, &stager)
}

/// `./blobs/sha256/x` → `blobs/sha256/x`.
fn layout_path(p: &str) -> String {
    normalize(Path::new(p)).unwrap_or_default()
}

/// The digest a path names, if it is `blobs/sha256/<hex>` or `<hex>.json`.
fn digest_in_path(p: &str) -> Option<Digest> {
    let p = layout_path(p);
    let hex = p
        .strip_prefix("blobs/sha256/")
        .or_else(|| p.strip_suffix(".json").filter(|h| !h.contains('/')))?;
    Digest::parse(&format!("sha256:{hex}")).ok()
}

fn open_legacy(
    input: &str,
    files: Arc<TarFiles>,
    repo: &str,
    entries: Vec<DockerLoadEntry>,
    reference: Option<&Reference>,
    ctx: &OpenContext<'_>,
) -> anyhow::Result<Vec<SourceImage>> {
    if entries.is_empty() {
        bail!("{input}: manifest.json lists no images");
    }
    let mut images = Vec::new();
    for (i, e) in entries.into_iter().enumerate() {
        let mut names = parse_tags(input, e.repo_tags.as_deref().unwrap_or_default())?;
        if names.is_empty() {
            names.push(unnamed(repo, i + 1)?);
        }
        images.push((e, names));
    }
    let selected = select(input, images, reference)?;

    // Describe every selected image's blobs first; one store serves them all.
    let mut paths: HashMap<Digest, String> = HashMap::new();
    let mut prepared = Vec::new();
    for (e, names) in selected {
        let what = format!("{input} ({})", names[0].familiar());
        let config_bytes = layout::read_small(&*files, &e.config, oci::MAX_CONFIG_SIZE)
            .with_context(|| format!("{what}: cannot read the image config"))?;
        let config_digest = Digest::of(&config_bytes);
        if let Some(named) = digest_in_path(&e.config)
            && named != config_digest
        {
            bail!(
                "{what}: the config {} hashes to {config_digest}: the archive is damaged",
                e.config
            );
        }
        let config: oci::ImageConfig = serde_json::from_slice(&config_bytes)
            .with_context(|| format!("{what}: the config {} is not valid JSON", e.config))?;
        let diff_ids = config.rootfs.map(|r| r.diff_ids).unwrap_or_default();
        if diff_ids.len() != e.layers.len() {
            bail!(
                "{what}: manifest.json lists {} but the config has {}: the archive is damaged",
                count(e.layers.len() as u64, "layer"),
                count(diff_ids.len() as u64, "diff_id")
            );
        }
        paths.insert(config_digest.clone(), layout_path(&e.config));
        let mut layers = Vec::new();
        for (path, diff_id) in e.layers.iter().zip(&diff_ids) {
            let desc = describe_layer(&files, path, diff_id)
                .with_context(|| format!("{what}: layer {path}"))?;
            paths.insert(desc.digest.clone(), layout_path(path));
            layers.push(desc);
        }
        let config_desc = Descriptor::new(
            media::DOCKER_CONFIG,
            config_digest,
            config_bytes.len() as u64,
        );
        prepared.push((what, names, config_desc, config_bytes, layers, e.layers));
    }
    let store: Arc<dyn BlobStore> = Arc::new(LegacyStore {
        files: Arc::clone(&files),
        paths,
    });
    let stager = Stager::new(Some(ctx));
    let mut out = Vec::new();
    for (what, names, config, config_bytes, layers, labels) in prepared {
        let converted = convert::convert(
            ConvertInput {
                image: what,
                config,
                config_bytes,
                layers,
                labels,
                store: Arc::clone(&store),
            },
            &stager.staging()?,
        )?;
        out.push(SourceImage {
            input: input.to_string(),
            names,
            note: Some(converted.note()),
            root: converted.manifest,
            store: converted.store,
        });
    }
    Ok(out)
}

/// A descriptor for a legacy layer file: uncompressed (digest = diff_id), or already
/// gzip / zstd (digest from a `blobs/sha256/<hex>` path, else computed).
fn describe_layer(files: &TarFiles, path: &str, diff_id: &Digest) -> anyhow::Result<Descriptor> {
    let size = files.size(path)?;
    let mut magic = Vec::with_capacity(4);
    files.open(path)?.take(4).read_to_end(&mut magic)?;
    let media_type = if magic.starts_with(&[0x1f, 0x8b]) {
        media::DOCKER_LAYER_GZIP
    } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
        media::OCI_LAYER_ZSTD
    } else {
        return Ok(Descriptor::new(
            media::DOCKER_LAYER_TAR,
            diff_id.clone(),
            size,
        ));
    };
    let digest = match digest_in_path(path) {
        Some(d) => d, // checked when the pipeline reads it
        None => {
            let mut h = Hasher::new();
            let mut r = files.open(path)?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = r.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            h.finish().0
        }
    };
    Ok(Descriptor::new(media_type, digest, size))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::progress::Silent;
    use crate::source::layout::tests::layer_tar;
    use flate2::read::MultiGzDecoder;

    /// Builds a tar from (name, bytes) files and (name, target) symlinks.
    pub(crate) fn build_tar(path: &Path, files: &[(&str, &[u8])], links: &[(&str, &str)]) {
        let mut b = tar::Builder::new(File::create(path).unwrap());
        for (name, bytes) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *bytes).unwrap();
        }
        for (name, target) in links {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            b.append_link(&mut h, name, target).unwrap();
        }
        b.finish().unwrap();
    }

    fn config(diff_ids: &[Digest]) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap()
    }

    struct Ctx {
        client: crate::registry::Client,
        staging: tempfile::TempDir,
    }
    impl Ctx {
        fn new() -> Ctx {
            Ctx {
                client: crate::registry::Client::new(Default::default()).unwrap(),
                staging: tempfile::tempdir().unwrap(),
            }
        }
        fn ctx(&self) -> OpenContext<'_> {
            OpenContext {
                client: &self.client,
                staging: self.staging.path(),
                jobs: 2,
                progress: &Silent,
            }
        }
    }

    fn read_all(r: Box<dyn Read + Send>) -> Vec<u8> {
        let mut v = Vec::new();
        let mut r = r;
        r.read_to_end(&mut v).unwrap();
        v
    }

    fn manifest_of(img: &SourceImage) -> oci::ImageManifest {
        match img.root.parse().unwrap() {
            Parsed::Manifest(m) => m,
            Parsed::Index(_) => panic!("index"),
        }
    }

    #[test]
    fn legacy_archive() {
        let tmp = tempfile::tempdir().unwrap();
        let l1 = layer_tar("a.txt", b"hello");
        let l2 = layer_tar("b.txt", &vec![9u8; 50_000]);
        let d1 = Digest::of(&l1);
        let d2 = Digest::of(&l2);
        let c1 = config(&[d1.clone(), d2.clone()]);
        let c2 = config(std::slice::from_ref(&d1));
        let (h1, h2) = (Digest::of(&c1), Digest::of(&c2));
        let manifest = serde_json::json!([
            {"Config": format!("{}.json", h1.hex()), "RepoTags": ["app:1", "example.com/app:latest"],
             "Layers": ["l1/layer.tar", "l2/layer.tar"]},
            {"Config": format!("{}.json", h2.hex()), "RepoTags": null, "Layers": ["l3/layer.tar"]},
        ]);
        let manifest = serde_json::to_vec(&manifest).unwrap();
        let path = tmp.path().join("My.App.tar");
        let (n1, n2) = (format!("{}.json", h1.hex()), format!("{}.json", h2.hex()));
        build_tar(
            &path,
            &[
                ("manifest.json", &manifest),
                (&n1, &c1),
                (&n2, &c2),
                ("l1/layer.tar", &l1),
                ("l2/layer.tar", &l2),
                ("repositories", b"{}"),
            ],
            &[("l3/layer.tar", "../l1/layer.tar")],
        );
        let c = Ctx::new();
        let images = open("docker-archive:x", &path, None, &c.ctx()).unwrap();
        assert_eq!(images.len(), 2);
        let names: Vec<String> = images[0].names.iter().map(|n| n.to_string()).collect();
        assert_eq!(names, ["docker.io/library/app:1", "example.com/app:latest"]);
        assert_eq!(images[1].names[0].to_string(), "localhost/my-app:2");
        for (img, cfg, layers) in [
            (&images[0], &h1, vec![&l1, &l2]),
            (&images[1], &h2, vec![&l1]),
        ] {
            assert_eq!(img.root.media_type, media::DOCKER_MANIFEST);
            assert!(
                img.note
                    .as_deref()
                    .unwrap()
                    .contains("compressed by airlock")
            );
            let m = manifest_of(img);
            assert_eq!(&m.config.digest, cfg);
            assert_eq!(
                Digest::of(&read_all(img.store.blob(&m.config).unwrap())),
                *cfg
            );
            for (l, want) in m.layers.iter().zip(layers) {
                let gz = read_all(img.store.blob(l).unwrap());
                assert_eq!(Digest::of(&gz), l.digest);
                let mut out = Vec::new();
                MultiGzDecoder::new(&gz[..]).read_to_end(&mut out).unwrap();
                assert_eq!(&out, want);
            }
        }
        // Selection by reference records only that name; a missing one lists the others.
        let r = Reference::parse("app:1").unwrap();
        let one = open("docker-archive:x", &path, Some(&r), &c.ctx()).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].names, vec![r]);
        assert_eq!(one[0].root.digest, images[0].root.digest);
        let r = Reference::parse("other:1").unwrap();
        let err = open("docker-archive:x", &path, Some(&r), &c.ctx())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("app:1, example.com/app:latest, localhost/my-app:2"),
            "{err}"
        );
    }

    #[test]
    fn damaged_legacy_layer_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let l1 = layer_tar("a.txt", b"hello");
        let c1 = config(&[Digest::of(&l1)]);
        let mut bad = l1.clone();
        bad[600] ^= 0xff;
        let manifest = serde_json::to_vec(&serde_json::json!([
            {"Config": "config.json", "RepoTags": ["app:1"], "Layers": ["abc/layer.tar"]}
        ]))
        .unwrap();
        let path = tmp.path().join("a.tar");
        build_tar(
            &path,
            &[
                ("manifest.json", &manifest),
                ("config.json", &c1),
                ("abc/layer.tar", &bad),
            ],
            &[],
        );
        let c = Ctx::new();
        let err = format!(
            "{:#}",
            open("docker-archive:a.tar", &path, None, &c.ctx())
                .err()
                .unwrap()
        );
        assert!(err.contains("abc/layer.tar"), "{err}");
        assert!(err.contains("damaged"), "{err}");
    }

    #[test]
    fn hybrid_archive_keeps_compressed_images() {
        let tmp = tempfile::tempdir().unwrap();
        // Image A: uncompressed layer (graphdriver Docker 25+). Image B: gzip layer.
        let la = layer_tar("a.txt", b"aaa");
        let ca = config(&[Digest::of(&la)]);
        let lb_raw = layer_tar("b.txt", b"bbb");
        let mut lb = Vec::new();
        convert::gzip_parallel(&mut &lb_raw[..], &mut lb, 1, 6).unwrap();
        let cb = config(&[Digest::of(&lb_raw)]);
        let desc = |mt: &str, b: &[u8]| Descriptor::new(mt, Digest::of(b), b.len() as u64);
        let ma = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
            "config": desc(media::OCI_CONFIG, &ca), "layers": [desc(media::OCI_LAYER_TAR, &la)],
        }))
        .unwrap();
        let mb = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
            "config": desc(media::OCI_CONFIG, &cb), "layers": [desc(media::OCI_LAYER_GZIP, &lb)],
        }))
        .unwrap();
        let mut ea = desc(media::OCI_MANIFEST, &ma);
        ea.annotations = Some(
            [
                (
                    layout::CONTAINERD_NAME.to_string(),
                    "docker.io/library/a:1".to_string(),
                ),
                (layout::REF_NAME.to_string(), "1".to_string()),
            ]
            .into(),
        );
        let eb = desc(media::OCI_MANIFEST, &mb); // no annotations: named by RepoTags
        let index =
            serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [ea, eb]}))
                .unwrap();
        let legacy = serde_json::to_vec(&serde_json::json!([
            {"Config": Digest::of(&cb).blob_path(), "RepoTags": ["b:2"], "Layers": [Digest::of(&lb).blob_path()]}
        ]))
        .unwrap();
        let blob = |b: &[u8]| Digest::of(b).blob_path();
        let names: Vec<String> = [&la, &ca, &lb, &cb, &ma, &mb]
            .iter()
            .map(|b| blob(b))
            .collect();
        let path = tmp.path().join("h.tar");
        build_tar(
            &path,
            &[
                ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
                ("index.json", &index),
                ("manifest.json", &legacy),
                (&names[0], &la),
                (&names[1], &ca),
                (&names[2], &lb),
                (&names[3], &cb),
                (&names[4], &ma),
                (&names[5], &mb),
            ],
            &[],
        );
        let c = Ctx::new();
        let images = open("docker-archive:h.tar", &path, None, &c.ctx()).unwrap();
        assert_eq!(images.len(), 2);
        assert_eq!(images[0].names[0].to_string(), "docker.io/library/a:1");
        assert!(images[0].note.is_some());
        let m = manifest_of(&images[0]);
        assert_eq!(m.config.digest, Digest::of(&ca));
        assert_eq!(m.layers[0].media_type, media::DOCKER_LAYER_GZIP);
        // B is kept byte-exact.
        assert_eq!(images[1].names[0].to_string(), "docker.io/library/b:2");
        assert!(images[1].note.is_none());
        assert_eq!(images[1].root.bytes, mb);
        let mb_parsed = manifest_of(&images[1]);
        assert_eq!(
            read_all(images[1].store.blob(&mb_parsed.layers[0]).unwrap()),
            lb
        );
        // Selection by an annotation name.
        let r = Reference::parse("a:1").unwrap();
        let one = open("docker-archive:h.tar", &path, Some(&r), &c.ctx()).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].root.digest, images[0].root.digest);
    }

    #[test]
    fn not_an_archive() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.tar");
        build_tar(&path, &[("hello.txt", b"hi")], &[]);
        let c = Ctx::new();
        let err = format!(
            "{:#}",
            open("docker-archive:x.tar", &path, None, &c.ctx())
                .err()
                .unwrap()
        );
        assert!(err.contains("not a docker save archive"), "{err}");
        let gz = tmp.path().join("x.tar.gz");
        std::fs::write(&gz, [0x1f, 0x8b, 8, 0]).unwrap();
        let err = format!(
            "{:#}",
            open("docker-archive:x", &gz, None, &c.ctx()).err().unwrap()
        );
        assert!(err.contains("decompress it first"), "{err}");
    }
}
