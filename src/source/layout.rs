//! Images from an OCI image layout (`oci:DIR[:REF]`), and the layout reading that the
//! Docker 25+ `docker save` format shares with it.
//!
//! A layout is read through the small [`Files`] trait (relative path → stream), so
//! the same code serves a directory here and the `oci-layout` + `index.json` +
//! `blobs/` inside a `docker save` tar in [`super::archive`]. Blobs are served from
//! `blobs/<alg>/<hex>` as they are; nothing is trusted: the root manifest's digest is
//! computed from its bytes and compared with `index.json`, and every other blob is
//! verified by the save pipeline.
//!
//! Selection (`oci:DIR:REF`): the `index.json` entries whose
//! `org.opencontainers.image.ref.name` is exactly REF (as skopeo and umoci match), or
//! whose `io.containerd.image.name` equals REF once both are normalized. Without REF,
//! every entry. Entries pointing at the same manifest become one image with several
//! names. Names, in order of preference: `io.containerd.image.name`; `ref.name` when it
//! is a full reference (contains `/`); else `localhost/<dir name>:<ref.name>`, with
//! `latest` for an entry with no `ref.name` (`latest-<n>`, n its position in
//! `index.json`, when several such entries point at different images).
//!
//! An image whose layers are uncompressed tars is converted (gzip, new manifest; see
//! [`super::convert`]) into the caller's staging dir.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::{Context, bail};
use serde::Deserialize;

use super::convert::{self, ConvertInput, Staging};
use super::{BlobStore, OpenContext, SourceImage};
use crate::digest::{self, Digest};
use crate::oci::{self, Descriptor, ImageIndex, Parsed, RawManifest};
use crate::progress::Silent;
use crate::reference::Reference;

/// The annotation Docker 25+ and containerd put the full image name in.
pub(crate) const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The OCI annotation naming an `index.json` entry (a tag, or anything).
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Read access to the files of a layout, by relative path (`index.json`, `blobs/sha256/…`).
pub(crate) trait Files: Send + Sync {
    /// For messages: `OCI layout /data/app`, `docker-archive app.tar`.
    fn describe(&self) -> String;
    /// Opens a file; a missing one is an error naming it.
    fn open(&self, path: &str) -> anyhow::Result<Box<dyn Read + Send>>;
    fn exists(&self, path: &str) -> bool;
}

/// A layout directory on disk.
pub(crate) struct DirFiles {
    root: PathBuf,
}

impl Files for DirFiles {
    fn describe(&self) -> String {
        format!("OCI layout {}", self.root.display())
    }
    fn open(&self, path: &str) -> anyhow::Result<Box<dyn Read + Send>> {
        let p = self.root.join(path);
        let f = File::open(&p).with_context(|| format!("cannot open {}", p.display()))?;
        Ok(Box::new(f))
    }
    fn exists(&self, path: &str) -> bool {
        self.root.join(path).is_file()
    }
}

/// Reads a small file whole, refusing more than `limit` bytes.
pub(crate) fn read_small(files: &dyn Files, path: &str, limit: u64) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    files
        .open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("{}: reading {path}", files.describe()))?;
    if bytes.len() as u64 > limit {
        bail!("{}: {path} is larger than {limit} bytes", files.describe());
    }
    Ok(bytes)
}

/// Serves blobs from `blobs/<alg>/<hex>`.
pub(crate) struct LayoutStore {
    pub files: Arc<dyn Files>,
}

impl BlobStore for LayoutStore {
    fn describe(&self) -> String {
        self.files.describe()
    }
    fn manifest(&self, desc: &Descriptor) -> anyhow::Result<RawManifest> {
        if desc.size > oci::MAX_MANIFEST_SIZE {
            bail!(
                "{}: manifest {} claims {} bytes, more than the {} allowed",
                self.describe(),
                desc.digest,
                desc.size,
                oci::MAX_MANIFEST_SIZE
            );
        }
        let bytes = read_small(
            &*self.files,
            &desc.digest.blob_path(),
            oci::MAX_MANIFEST_SIZE,
        )?;
        Ok(RawManifest::new(bytes, Some(&desc.media_type)))
    }
    fn blob(&self, desc: &Descriptor) -> anyhow::Result<Box<dyn Read + Send>> {
        self.files.open(&desc.digest.blob_path())
    }
    fn local(&self) -> bool {
        true
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutFile {
    image_layout_version: String,
}

/// Checks `oci-layout` and reads the entries of `index.json`.
pub(crate) fn read_index(files: &dyn Files) -> anyhow::Result<Vec<Descriptor>> {
    let what = files.describe();
    let layout = read_small(files, "oci-layout", 64 * 1024)?;
    let layout: LayoutFile = serde_json::from_slice(&layout)
        .with_context(|| format!("{what}: oci-layout is not valid JSON"))?;
    if layout.image_layout_version != "1.0.0" {
        bail!(
            "{what}: unsupported imageLayoutVersion `{}` in oci-layout (expected 1.0.0)",
            layout.image_layout_version
        );
    }
    let index = read_small(files, "index.json", oci::MAX_MANIFEST_SIZE)?;
    let index: ImageIndex = serde_json::from_slice(&index)
        .with_context(|| format!("{what}: index.json is not a valid image index"))?;
    Ok(index.manifests)
}

fn annotation<'a>(d: &'a Descriptor, key: &str) -> Option<&'a str> {
    d.annotations.as_ref()?.get(key).map(String::as_str)
}

/// The name an entry carries by itself: `io.containerd.image.name`, or a `ref.name`
/// that is a full reference. Only names with a tag count.
pub(crate) fn entry_name(d: &Descriptor) -> Option<Reference> {
    let tagged = |s: &str| Reference::parse(s).ok().filter(|r| r.tag().is_some());
    if let Some(r) = annotation(d, CONTAINERD_NAME).and_then(tagged) {
        return Some(r);
    }
    annotation(d, REF_NAME)
        .filter(|s| s.contains('/'))
        .and_then(tagged)
}

/// A valid single repository path component made from a file or directory name:
/// lowercase, runs of anything but `[a-z0-9]` become `-`, `image` if nothing is left.
pub(crate) fn sanitize_component(name: &str) -> String {
    let mut out = String::new();
    for c in name.to_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("image");
    }
    out.truncate(128);
    out.trim_end_matches('-').to_string()
}

/// A valid tag made from arbitrary text: `[A-Za-z0-9_.-]`, first character a word character.
pub(crate) fn sanitize_tag(tag: &str) -> String {
    let mut out: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
        out.insert(0, '_');
    }
    out.truncate(128);
    out
}

/// The last component of `dir` (after resolving `.`), as a repository component.
fn dir_component(dir: &Path) -> String {
    let name = std::fs::canonicalize(dir)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    sanitize_component(&name)
}

/// Whether entry `d` is what `oci:DIR:REF` asks for.
fn matches(d: &Descriptor, reference: &str) -> bool {
    if annotation(d, REF_NAME) == Some(reference) {
        return true;
    }
    match (
        annotation(d, CONTAINERD_NAME).and_then(|n| Reference::parse(n).ok()),
        Reference::parse(reference),
    ) {
        (Some(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Every name the entries of a layout offer, for "it has: …" messages.
fn available(entries: &[Descriptor]) -> String {
    let mut names: Vec<String> = Vec::new();
    for d in entries {
        for key in [REF_NAME, CONTAINERD_NAME] {
            if let Some(n) = annotation(d, key)
                && !names.iter().any(|x| x == n)
            {
                names.push(n.to_string());
            }
        }
    }
    if names.is_empty() {
        "no named entries".to_string()
    } else {
        names.join(", ")
    }
}

/// One image of a layout: its `index.json` descriptor and its names.
pub(crate) struct Selected {
    pub desc: Descriptor,
    pub names: Vec<Reference>,
}

/// Groups entries by manifest digest (first appearance first), merging their names.
pub(crate) fn group(entries: Vec<(Descriptor, Vec<Reference>)>) -> Vec<Selected> {
    let mut out: Vec<Selected> = Vec::new();
    for (desc, names) in entries {
        let sel = match out.iter_mut().find(|s| s.desc.digest == desc.digest) {
            Some(s) => s,
            None => {
                out.push(Selected {
                    desc,
                    names: Vec::new(),
                });
                out.last_mut().expect("just pushed")
            }
        };
        for n in names {
            if !sel.names.contains(&n) {
                sel.names.push(n);
            }
        }
    }
    out
}

/// Images in the layout at `dir`. Conversions (uncompressed layers) go to a private
/// temporary directory, removed when the images are dropped; [`open_with`] uses the
/// caller's staging dir and progress instead.
pub fn open(input: &str, dir: &Path, reference: Option<&str>) -> anyhow::Result<Vec<SourceImage>> {
    open_with(input, dir, reference, None)
}

/// [`open`], converting into `ctx.staging` with `ctx.jobs` threads when a context is given.
pub(crate) fn open_with(
    input: &str,
    dir: &Path,
    reference: Option<&str>,
    ctx: Option<&OpenContext<'_>>,
) -> anyhow::Result<Vec<SourceImage>> {
    if !dir.is_dir() {
        bail!("{input}: {} is not a directory", dir.display());
    }
    let files: Arc<dyn Files> = Arc::new(DirFiles {
        root: dir.to_path_buf(),
    });
    let entries =
        read_index(&*files).with_context(|| format!("{input}: not a usable OCI layout"))?;
    let chosen: Vec<(usize, &Descriptor)> = entries
        .iter()
        .enumerate()
        .filter(|(_, d)| reference.is_none_or(|r| matches(d, r)))
        .collect();
    if chosen.is_empty() {
        match reference {
            Some(r) => bail!(
                "{input}: {}/index.json has no image named `{r}`; it has: {}",
                dir.display(),
                available(&entries)
            ),
            None => bail!("{input}: {}/index.json lists no images", dir.display()),
        }
    }
    let repo = dir_component(dir);
    let unnamed: Vec<&Digest> = {
        let mut v: Vec<&Digest> = chosen
            .iter()
            .filter(|(_, d)| entry_name(d).is_none() && annotation(d, REF_NAME).is_none())
            .map(|(_, d)| &d.digest)
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let mut named = Vec::new();
    for (pos, d) in chosen {
        let name = match entry_name(d) {
            Some(n) => n,
            None => {
                let tag = match annotation(d, REF_NAME) {
                    Some(t) => sanitize_tag(t),
                    None if unnamed.len() > 1 => format!("latest-{pos}"),
                    None => "latest".to_string(),
                };
                Reference::parse(&format!("localhost/{repo}:{tag}"))
                    .with_context(|| format!("{input}: cannot name index.json entry {pos}"))?
            }
        };
        named.push((d.clone(), vec![name]));
    }
    let selected = group(named);
    if reference.is_some() && selected.len() > 1 {
        bail!(
            "{input}: `{}` names {} different images in {}/index.json ({}); name one by a unique ref",
            reference.unwrap_or_default(),
            selected.len(),
            dir.display(),
            selected
                .iter()
                .map(|s| s.desc.digest.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let stager = Stager::new(ctx);
    open_selected(input, files, selected, &stager)
}

/// Where conversions go: the caller's staging dir, or a private one made on first use.
pub(crate) struct Stager<'a> {
    ctx: Option<&'a OpenContext<'a>>,
    private: OnceLock<Arc<tempfile::TempDir>>,
}

impl<'a> Stager<'a> {
    pub fn new(ctx: Option<&'a OpenContext<'a>>) -> Stager<'a> {
        Stager {
            ctx,
            private: OnceLock::new(),
        }
    }

    pub fn staging(&self) -> anyhow::Result<Staging<'_>> {
        if let Some(ctx) = self.ctx {
            return Ok(Staging {
                dir: ctx.staging,
                jobs: ctx.jobs,
                progress: ctx.progress,
                keep: None,
            });
        }
        if self.private.get().is_none() {
            let dir = tempfile::Builder::new()
                .prefix("airlock-staging-")
                .tempdir()
                .context("creating a temporary staging directory")?;
            let _ = self.private.set(Arc::new(dir));
        }
        let keep = self.private.get().expect("set above");
        Ok(Staging {
            dir: keep.path(),
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            progress: &Silent,
            keep: Some(Arc::clone(keep)),
        })
    }
}

/// Fetches each selected root and converts the images whose layers are uncompressed.
pub(crate) fn open_selected(
    input: &str,
    files: Arc<dyn Files>,
    selected: Vec<Selected>,
    stager: &Stager<'_>,
) -> anyhow::Result<Vec<SourceImage>> {
    let store: Arc<dyn BlobStore> = Arc::new(LayoutStore {
        files: Arc::clone(&files),
    });
    let mut images = Vec::new();
    for sel in selected {
        let root = store
            .manifest(&sel.desc)
            .with_context(|| format!("{input}: cannot read the manifest {}", sel.desc.digest))?;
        if root.digest != sel.desc.digest {
            bail!(
                "{input}: index.json lists {} but {} hashes to {}: the layout is damaged",
                sel.desc.digest,
                sel.desc.digest.blob_path(),
                root.digest
            );
        }
        let what = match sel.names.first() {
            Some(n) => format!("{input} ({n})"),
            None => input.to_string(),
        };
        let image = match root.parse() {
            Ok(Parsed::Manifest(m)) if convert::needs_conversion(&m.layers) => {
                let config_bytes = read_config(&*store, &m.config)
                    .with_context(|| format!("{what}: cannot read the image config"))?;
                let labels = m.layers.iter().map(|l| l.digest.blob_path()).collect();
                let converted = convert::convert(
                    ConvertInput {
                        image: what.clone(),
                        config: m.config.clone(),
                        config_bytes,
                        layers: m.layers.clone(),
                        labels,
                        store: Arc::clone(&store),
                    },
                    &stager.staging()?,
                )?;
                SourceImage {
                    input: input.to_string(),
                    names: sel.names,
                    note: Some(converted.note()),
                    root: converted.manifest,
                    store: converted.store,
                }
            }
            _ => SourceImage {
                input: input.to_string(),
                names: sel.names,
                root,
                store: Arc::clone(&store),
                note: None,
            },
        };
        images.push(image);
    }
    Ok(images)
}

/// Reads and verifies an image config.
pub(crate) fn read_config(store: &dyn BlobStore, desc: &Descriptor) -> anyhow::Result<Vec<u8>> {
    let bytes = digest::read_verified(
        store.blob(desc)?,
        &desc.digest,
        desc.size,
        oci::MAX_CONFIG_SIZE,
    )
    .with_context(|| format!("config {}", desc.digest))?;
    Ok(bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::oci::media;
    use std::collections::BTreeMap;

    /// Writes a blob into a layout dir, returning its descriptor.
    pub fn put(dir: &Path, media_type: &str, bytes: &[u8]) -> Descriptor {
        let d = Digest::of(bytes);
        let p = dir.join(d.blob_path());
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
        Descriptor::new(media_type, d, bytes.len() as u64)
    }

    /// A small tar with one file.
    pub(crate) fn layer_tar(name: &str, content: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, content).unwrap();
        b.into_inner().unwrap()
    }

    /// An OCI image with uncompressed layers written into `dir`; returns the manifest descriptor.
    pub fn image(dir: &Path, layers: &[Vec<u8>]) -> (Descriptor, Descriptor) {
        let diff_ids: Vec<Digest> = layers.iter().map(|l| Digest::of(l)).collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap();
        let config = put(dir, media::OCI_CONFIG, &config);
        let layers: Vec<Descriptor> = layers
            .iter()
            .map(|l| put(dir, media::OCI_LAYER_TAR, l))
            .collect();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
            "config": config, "layers": layers,
        }))
        .unwrap();
        (put(dir, media::OCI_MANIFEST, &manifest), config)
    }

    pub(crate) fn write_index(dir: &Path, entries: &[Descriptor]) {
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let index = serde_json::json!({"schemaVersion": 2, "manifests": entries});
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    }

    fn annotated(d: &Descriptor, pairs: &[(&str, &str)]) -> Descriptor {
        let mut d = d.clone();
        d.annotations = Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        );
        d
    }

    fn names(images: &[SourceImage]) -> Vec<Vec<String>> {
        images
            .iter()
            .map(|i| i.names.iter().map(|n| n.to_string()).collect())
            .collect()
    }

    #[test]
    fn sanitizes() {
        assert_eq!(sanitize_component("My_App.v2"), "my-app-v2");
        assert_eq!(sanitize_component("..."), "image");
        assert_eq!(sanitize_tag("1.0+build"), "1.0-build");
        assert_eq!(sanitize_tag(".x"), "_.x");
    }

    #[test]
    fn selects_and_names_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("My Layout");
        std::fs::create_dir(&dir).unwrap();
        // Already compressed "layers" are never read here.
        let gz = put(&dir, media::OCI_LAYER_GZIP, b"not really gzip");
        let mk = |tag: &str| {
            let config = put(
                &dir,
                media::OCI_CONFIG,
                format!("{{\"tag\":\"{tag}\"}}").as_bytes(),
            );
            let m = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
                "config": config, "layers": [gz],
            }))
            .unwrap();
            put(&dir, media::OCI_MANIFEST, &m)
        };
        let (a, b, c, e) = (mk("a"), mk("b"), mk("c"), mk("e"));
        write_index(
            &dir,
            &[
                annotated(&a, &[(REF_NAME, "1.0")]),
                annotated(&a, &[(REF_NAME, "stable")]),
                annotated(
                    &b,
                    &[
                        (REF_NAME, "latest"),
                        (CONTAINERD_NAME, "docker.io/library/busybox:latest"),
                    ],
                ),
                annotated(&c, &[(REF_NAME, "ghcr.io/org/app:2")]),
                e.clone(),
            ],
        );
        let all = open("oci:x", &dir, None).unwrap();
        assert_eq!(
            names(&all),
            vec![
                vec!["localhost/my-layout:1.0", "localhost/my-layout:stable"],
                vec!["docker.io/library/busybox:latest"],
                vec!["ghcr.io/org/app:2"],
                vec!["localhost/my-layout:latest"],
            ]
        );
        assert_eq!(all[0].root.digest, a.digest);
        assert!(all.iter().all(|i| i.note.is_none()));

        let one = open("oci:x", &dir, Some("stable")).unwrap();
        assert_eq!(names(&one), vec![vec!["localhost/my-layout:stable"]]);
        // io.containerd.image.name matches after normalization.
        let one = open("oci:x", &dir, Some("busybox")).unwrap();
        assert_eq!(one[0].root.digest, b.digest);
        let one = open("oci:x", &dir, Some("ghcr.io/org/app:2")).unwrap();
        assert_eq!(one[0].root.digest, c.digest);
        let err = open("oci:x", &dir, Some("nope")).err().unwrap().to_string();
        assert!(
            err.contains("1.0, stable, latest, docker.io/library/busybox:latest"),
            "{err}"
        );
        // The store serves blobs; a missing one names its path.
        let mut bytes = Vec::new();
        all[0]
            .store
            .blob(&gz)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        assert_eq!(bytes, b"not really gzip");
        let missing = Descriptor::new(media::OCI_LAYER_GZIP, Digest::of(b"x"), 1);
        let err = format!("{:#}", all[0].store.blob(&missing).err().unwrap());
        assert!(err.contains(&Digest::of(b"x").blob_path()), "{err}");
    }

    #[test]
    fn bad_layouts() {
        let tmp = tempfile::tempdir().unwrap();
        let err = format!("{:#}", open("oci:x", tmp.path(), None).err().unwrap());
        assert!(err.contains("oci-layout"), "{err}");
        std::fs::write(
            tmp.path().join("oci-layout"),
            br#"{"imageLayoutVersion":"2.0.0"}"#,
        )
        .unwrap();
        std::fs::write(
            tmp.path().join("index.json"),
            br#"{"schemaVersion":2,"manifests":[]}"#,
        )
        .unwrap();
        let err = format!("{:#}", open("oci:x", tmp.path(), None).err().unwrap());
        assert!(err.contains("2.0.0"), "{err}");
        // A root whose bytes do not match index.json.
        let (m, _) = image(tmp.path(), &[layer_tar("a", b"a")]);
        write_index(tmp.path(), std::slice::from_ref(&m));
        std::fs::write(tmp.path().join(m.digest.blob_path()), b"{}").unwrap();
        let err = format!("{:#}", open("oci:x", tmp.path(), None).err().unwrap());
        assert!(err.contains("damaged") || err.contains("size"), "{err}");
    }

    #[test]
    fn converts_uncompressed_layouts() {
        let tmp = tempfile::tempdir().unwrap();
        let layers = vec![
            layer_tar("a.txt", b"hello"),
            layer_tar("b.txt", &[7u8; 100_000]),
        ];
        let (m, config) = image(tmp.path(), &layers);
        write_index(tmp.path(), &[annotated(&m, &[(REF_NAME, "v1")])]);
        let staging = tempfile::tempdir().unwrap();
        let client = crate::registry::Client::new(Default::default()).unwrap();
        let ctx = OpenContext {
            client: &client,
            staging: staging.path(),
            jobs: 2,
            progress: &Silent,
        };
        let images = open_with("oci:x", tmp.path(), Some("v1"), Some(&ctx)).unwrap();
        let img = &images[0];
        assert!(
            img.note
                .as_deref()
                .unwrap()
                .contains("compressed by airlock")
        );
        assert_ne!(img.root.digest, m.digest);
        let Parsed::Manifest(new) = img.root.parse().unwrap() else {
            panic!()
        };
        assert_eq!(new.config.digest, config.digest);
        for (l, want) in new.layers.iter().zip(&layers) {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(img.store.blob(l).unwrap())
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(&out, want);
        }
        // Without a context a private staging dir is used.
        let images = open("oci:x", tmp.path(), None).unwrap();
        assert_eq!(images[0].root.digest, img.root.digest, "deterministic");
    }
}
