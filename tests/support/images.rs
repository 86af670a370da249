//! Deterministic test images, built here rather than pulled, so that the input of every
//! test comes from outside airlock.
//!
//! Layers are real tars (fixed mtimes, uids and modes) gzip-compressed with a zero
//! gzip mtime; configs carry `rootfs.diff_ids` computed from the uncompressed tars;
//! manifests and indexes come in OCI or Docker media types. The same inputs always give
//! the same bytes, so digests are stable across runs and machines (the shipped
//! `fixtures/` are made by [`write_fixtures`], through `examples/make_fixtures.rs`).
//!
//! Images reach a registry through the real `skopeo copy` ([`push`]); the registry's
//! own view of a tag (its `Docker-Content-Digest`) is read back with the helpers in
//! `support/registry_api.rs`, so tests compare airlock's output with what the registry
//! says, not with what airlock says.
//!
//! This file is also compiled into `examples/make_fixtures.rs` with `#[path]`, so it
//! uses only crates that are dependencies of airlock, and nothing from airlock itself.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The mtime of every file in every layer (2023-11-14T22:13:20Z).
pub const MTIME: u64 = 1_700_000_000;
/// The `created` time of every config and history entry.
pub const CREATED: &str = "2024-01-01T00:00:00Z";

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The hex part of a `sha256:<hex>` digest.
pub fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").expect("a sha256 digest")
}

/// `len` bytes of seeded pseudo-random data (splitmix64): incompressible, so a layer
/// made of it is as large gzipped as it is plain, and the same seed gives the same bytes.
pub fn seeded_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Some bytes with a media type and their digest: a manifest, index, config or layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub media_type: String,
    pub digest: String,
    pub bytes: Vec<u8>,
}

impl Blob {
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Blob {
        Blob {
            media_type: media_type.to_string(),
            digest: sha256(&bytes),
            bytes,
        }
    }

    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    pub fn hex(&self) -> &str {
        hex_of(&self.digest)
    }

    /// `{"mediaType","digest","size"}`.
    pub fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size()})
    }
}

/// One file in a layer.
#[derive(Debug, Clone)]
pub struct FileSpec {
    pub path: String,
    pub content: Vec<u8>,
    pub mode: u32,
}

/// A regular file, mode 0644.
pub fn file(path: &str, content: impl Into<Vec<u8>>) -> FileSpec {
    FileSpec {
        path: path.to_string(),
        content: content.into(),
        mode: 0o644,
    }
}

/// An executable file, mode 0755.
pub fn exe(path: &str, content: impl Into<Vec<u8>>) -> FileSpec {
    FileSpec {
        mode: 0o755,
        ..file(path, content)
    }
}

/// A file of `len` seeded pseudo-random bytes.
pub fn random_file(path: &str, seed: u64, len: usize) -> FileSpec {
    file(path, seeded_bytes(seed, len))
}

/// A layer: the uncompressed tar, its diff ID, and the gzip blob a registry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub tar: Vec<u8>,
    pub diff_id: String,
    /// The gzip-compressed tar, with the OCI gzip layer media type (a Docker image
    /// built from it gets the same bytes with the Docker type).
    pub gz: Blob,
}

impl Layer {
    pub fn digest(&self) -> &str {
        &self.gz.digest
    }
}

/// Builds a layer from files: parent directories are added (0755), every header has
/// uid/gid 0, no user names and [`MTIME`], entries in the order given.
pub fn layer(files: &[FileSpec]) -> Layer {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dirs: Vec<String> = Vec::new();
    for f in files {
        let parts: Vec<&str> = f.path.split('/').filter(|p| !p.is_empty()).collect();
        for i in 1..parts.len() {
            let dir = format!("{}/", parts[..i].join("/"));
            if !dirs.contains(&dir) {
                let mut h = header(tar::EntryType::Directory, 0o755, 0);
                builder
                    .append_data(&mut h, &dir, std::io::empty())
                    .expect("tar dir");
                dirs.push(dir);
            }
        }
        let mut h = header(tar::EntryType::Regular, f.mode, f.content.len() as u64);
        builder
            .append_data(&mut h, parts.join("/"), &f.content[..])
            .expect("tar file");
    }
    let tar = builder.into_inner().expect("finish tar");
    let gz = gzip(&tar);
    Layer {
        diff_id: sha256(&tar),
        gz: Blob::new(OCI_LAYER_GZIP, gz),
        tar,
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME);
    h.set_size(size);
    h
}

/// gzip with a zero mtime and no file name, so the output depends only on the input.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::new(6));
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip finish")
}

/// Which family of media types an image or index uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Oci,
    Docker,
}

/// `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn parse(s: &str) -> Platform {
        let parts: Vec<&str> = s.split('/').collect();
        assert!(
            (2..=3).contains(&parts.len()),
            "platform {s} is not os/arch[/variant]"
        );
        Platform {
            os: parts[0].to_string(),
            architecture: parts[1].to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
        }
    }

    pub fn json(&self) -> Value {
        let mut v = json!({"architecture": self.architecture, "os": self.os});
        if let Some(var) = &self.variant {
            v["variant"] = json!(var);
        }
        v
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// What an image is made of, before its config and manifest are written.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    pub platform: Platform,
    pub flavor: Flavor,
    pub layers: Vec<Layer>,
    pub cmd: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

impl ImageSpec {
    /// An OCI image for `platform` (`linux/amd64`), no layers yet.
    pub fn new(platform: &str) -> ImageSpec {
        ImageSpec {
            platform: Platform::parse(platform),
            flavor: Flavor::Oci,
            layers: Vec::new(),
            cmd: vec!["/bin/hello".to_string()],
            labels: BTreeMap::new(),
        }
    }

    pub fn flavor(mut self, flavor: Flavor) -> ImageSpec {
        self.flavor = flavor;
        self
    }

    pub fn layer(mut self, layer: &Layer) -> ImageSpec {
        self.layers.push(layer.clone());
        self
    }

    /// A label, which also makes the config (and so the image ID) unique.
    pub fn label(mut self, key: &str, value: &str) -> ImageSpec {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    pub fn cmd(mut self, cmd: &[&str]) -> ImageSpec {
        self.cmd = cmd.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn build(self) -> Image {
        let (config_type, layer_type, manifest_type) = match self.flavor {
            Flavor::Oci => (OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST),
            Flavor::Docker => (DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST),
        };
        let history: Vec<Value> = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                json!({"created": CREATED,
                       "created_by": format!("airlock-test layer {i} {}", &hex_of(&l.diff_id)[..12])})
            })
            .collect();
        let mut config = json!({
            "architecture": self.platform.architecture,
            "os": self.platform.os,
            "created": CREATED,
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": self.cmd,
                "Labels": self.labels,
            },
            "rootfs": {
                "type": "layers",
                "diff_ids": self.layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
            },
            "history": history,
        });
        if let Some(v) = &self.platform.variant {
            config["variant"] = json!(v);
        }
        let config = Blob::new(config_type, serde_json::to_vec(&config).expect("config"));
        let layers: Vec<Layer> = self
            .layers
            .into_iter()
            .map(|mut l| {
                l.gz.media_type = layer_type.to_string();
                l
            })
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": config.descriptor(),
            "layers": layers.iter().map(|l| l.gz.descriptor()).collect::<Vec<_>>(),
        });
        let manifest = Blob::new(
            manifest_type,
            serde_json::to_vec_pretty(&manifest).expect("manifest"),
        );
        Image {
            platform: self.platform,
            config,
            layers,
            manifest,
        }
    }
}

/// A built single-platform image.
#[derive(Debug, Clone)]
pub struct Image {
    pub platform: Platform,
    pub config: Blob,
    pub layers: Vec<Layer>,
    pub manifest: Blob,
}

impl Image {
    /// Manifest, config and layers.
    pub fn blobs(&self) -> Vec<&Blob> {
        let mut v = vec![&self.manifest, &self.config];
        v.extend(self.layers.iter().map(|l| &l.gz));
        v
    }
}

/// A built multi-platform index (or Docker manifest list) with its children.
#[derive(Debug, Clone)]
pub struct Index {
    pub index: Blob,
    pub images: Vec<Image>,
}

impl Index {
    /// The index and every blob of every child.
    pub fn blobs(&self) -> Vec<&Blob> {
        let mut v = vec![&self.index];
        for i in &self.images {
            v.extend(i.blobs());
        }
        v
    }

    pub fn child(&self, platform: &str) -> &Image {
        let p = Platform::parse(platform);
        self.images
            .iter()
            .find(|i| i.platform.os == p.os && i.platform.architecture == p.architecture)
            .unwrap_or_else(|| panic!("no child for {platform}"))
    }
}

/// An index over `images`, each described with its platform.
pub fn index(flavor: Flavor, images: Vec<Image>) -> Index {
    let media_type = match flavor {
        Flavor::Oci => OCI_INDEX,
        Flavor::Docker => DOCKER_LIST,
    };
    let manifests: Vec<Value> = images
        .iter()
        .map(|i| {
            let mut d = i.manifest.descriptor();
            d["platform"] = i.platform.json();
            d
        })
        .collect();
    let body = json!({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests});
    Index {
        index: Blob::new(media_type, serde_json::to_vec_pretty(&body).expect("index")),
        images,
    }
}

/// An image or an index: what a tag points to.
#[derive(Debug, Clone)]
pub enum Root {
    Image(Image),
    Index(Index),
}

impl Root {
    /// The manifest or index blob the tag points to.
    pub fn top(&self) -> &Blob {
        match self {
            Root::Image(i) => &i.manifest,
            Root::Index(x) => &x.index,
        }
    }

    pub fn digest(&self) -> &str {
        &self.top().digest
    }

    pub fn blobs(&self) -> Vec<&Blob> {
        match self {
            Root::Image(i) => i.blobs(),
            Root::Index(x) => x.blobs(),
        }
    }
}

impl From<Image> for Root {
    fn from(i: Image) -> Root {
        Root::Image(i)
    }
}

impl From<Index> for Root {
    fn from(x: Index) -> Root {
        Root::Index(x)
    }
}

impl From<&Image> for Root {
    fn from(i: &Image) -> Root {
        Root::Image(i.clone())
    }
}

impl From<&Index> for Root {
    fn from(x: &Index) -> Root {
        Root::Index(x.clone())
    }
}

/// An OCI image layout being assembled: blobs (each once) and `index.json` entries.
#[derive(Debug, Default)]
pub struct OciLayout {
    blobs: BTreeMap<String, Vec<u8>>,
    entries: Vec<Value>,
}

impl OciLayout {
    pub fn new() -> OciLayout {
        OciLayout::default()
    }

    /// Adds `root` under `org.opencontainers.image.ref.name` = `ref_name` and, when
    /// given, `io.containerd.image.name` = `full_name`.
    pub fn add(&mut self, root: impl Into<Root>, ref_name: &str, full_name: Option<&str>) {
        let root = root.into();
        for b in root.blobs() {
            self.blobs.insert(b.hex().to_string(), b.bytes.clone());
        }
        let mut annotations = serde_json::Map::new();
        if let Some(full) = full_name {
            annotations.insert("io.containerd.image.name".into(), json!(full));
        }
        annotations.insert("org.opencontainers.image.ref.name".into(), json!(ref_name));
        let mut d = root.top().descriptor();
        d["annotations"] = Value::Object(annotations);
        self.entries.push(d);
    }

    /// Writes `oci-layout`, `index.json` and `blobs/sha256/*` into `dir` (created).
    pub fn write(&self, dir: &Path) {
        let blobs = dir.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).expect("create layout dir");
        fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("write oci-layout");
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.entries});
        fs::write(
            dir.join("index.json"),
            serde_json::to_vec_pretty(&index).expect("index.json"),
        )
        .expect("write index.json");
        for (hex, bytes) in &self.blobs {
            fs::write(blobs.join(hex), bytes).expect("write blob");
        }
    }
}

/// Writes a legacy (Docker 20.10 style) `docker save` archive: `manifest.json`,
/// `repositories`, `<config hex>.json`, and one `<id>/{VERSION,json,layer.tar}` per
/// layer with the layer uncompressed, as `docker save` writes it before Docker 25.
/// `images` pairs each image with its RepoTags (familiar form, `example.com/app:1`).
pub fn write_docker_archive(path: &Path, images: &[(&Image, &[&str])]) {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (image, tags) in images {
        let config_name = format!("{}.json", image.config.hex());
        files.insert(config_name.clone(), image.config.bytes.clone());
        let mut layer_paths = Vec::new();
        let mut parent: Option<String> = None;
        for l in &image.layers {
            // A v1 layer ID: any stable 64-hex name; this one chains the diff IDs.
            let id = hex_of(&sha256(
                format!("{}{}", parent.as_deref().unwrap_or(""), l.diff_id).as_bytes(),
            ))
            .to_string();
            let mut v1 = json!({"id": id, "created": CREATED, "container_config": {}});
            if let Some(p) = &parent {
                v1["parent"] = json!(p);
            }
            files.insert(format!("{id}/VERSION"), b"1.0".to_vec());
            files.insert(
                format!("{id}/json"),
                serde_json::to_vec(&v1).expect("v1 json"),
            );
            files.insert(format!("{id}/layer.tar"), l.tar.clone());
            layer_paths.push(format!("{id}/layer.tar"));
            parent = Some(id);
        }
        manifest.push(json!({"Config": config_name, "RepoTags": tags, "Layers": layer_paths}));
        if let Some(top) = parent {
            for t in tags.iter() {
                let (repo, tag) = t.rsplit_once(':').expect("RepoTags carry a tag");
                repositories
                    .entry(repo.to_string())
                    .or_default()
                    .insert(tag.to_string(), top.clone());
            }
        }
    }
    files.insert(
        "manifest.json".into(),
        serde_json::to_vec(&manifest).expect("manifest.json"),
    );
    files.insert(
        "repositories".into(),
        serde_json::to_vec(&repositories).expect("repositories"),
    );
    let mut builder = tar::Builder::new(Vec::new());
    let mut dirs: Vec<String> = Vec::new();
    for (name, bytes) in &files {
        if let Some((dir, _)) = name.split_once('/') {
            let dir = format!("{dir}/");
            if !dirs.contains(&dir) {
                let mut h = header(tar::EntryType::Directory, 0o755, 0);
                builder
                    .append_data(&mut h, &dir, std::io::empty())
                    .expect("tar dir");
                dirs.push(dir);
            }
        }
        let mut h = header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
        builder
            .append_data(&mut h, name, &bytes[..])
            .expect("tar entry");
    }
    let bytes = builder.into_inner().expect("finish tar");
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create archive dir");
    }
    fs::write(path, bytes).expect("write docker archive");
}

// ---------------------------------------------------------------------------------
// The shipped fixtures.

/// Full names of the images in `fixtures/oci` (the `io.containerd.image.name` of each entry).
pub const FIXTURE_HELLO: &str = "example.com/airlock/hello:1.0";
pub const FIXTURE_HELLO_LATEST: &str = "example.com/airlock/hello:latest";
pub const FIXTURE_WORLD: &str = "example.com/airlock/world:2.0";
pub const FIXTURE_MULTI: &str = "example.com/airlock/multi:3.0";
/// RepoTag of the single image in `fixtures/docker-archive/hello.tar`.
pub const FIXTURE_ARCHIVE_TAG: &str = "example.com/airlock/legacy:1.0";

/// The shared base layer of the fixtures: a tiny root file system.
pub fn fixture_base_layer() -> Layer {
    layer(&[
        file(
            "etc/os-release",
            "NAME=\"airlock test base\"\nID=airlock\nVERSION_ID=1\n",
        ),
        file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
        file("etc/group", "root:x:0:\n"),
        file(
            "usr/share/doc/airlock/README",
            "A test image built by airlock's test suite.\n".repeat(20),
        ),
    ])
}

/// The images in the fixtures, rebuilt from scratch (deterministic).
pub struct Fixtures {
    pub hello: Image,
    pub world: Image,
    pub multi: Index,
    pub legacy: Image,
}

pub fn fixtures() -> Fixtures {
    let base = fixture_base_layer();
    let hello_app = layer(&[
        exe("bin/hello", "#!/bin/sh\necho hello from airlock\n"),
        random_file("usr/share/hello/data.bin", 1, 48 * 1024),
    ]);
    let hello = ImageSpec::new("linux/amd64")
        .layer(&base)
        .layer(&hello_app)
        .label("org.opencontainers.image.title", "hello")
        .build();
    let world_app = layer(&[
        exe("bin/world", "#!/bin/sh\necho world from airlock\n"),
        random_file("usr/share/world/data.bin", 2, 32 * 1024),
    ]);
    let world = ImageSpec::new("linux/amd64")
        .layer(&base)
        .layer(&world_app)
        .cmd(&["/bin/world"])
        .label("org.opencontainers.image.title", "world")
        .build();
    let multi_children = [("linux/amd64", 3u64), ("linux/arm64/v8", 4u64)]
        .iter()
        .map(|(p, seed)| {
            let app = layer(&[
                exe("bin/hello", format!("#!/bin/sh\necho hello from {p}\n")),
                random_file("usr/share/multi/data.bin", *seed, 24 * 1024),
            ]);
            ImageSpec::new(p)
                .layer(&base)
                .layer(&app)
                .label("org.opencontainers.image.title", "multi")
                .build()
        })
        .collect();
    let multi = index(Flavor::Oci, multi_children);
    let legacy = ImageSpec::new("linux/amd64")
        .flavor(Flavor::Docker)
        .layer(&base)
        .layer(&layer(&[exe(
            "bin/legacy",
            "#!/bin/sh\necho legacy docker save\n",
        )]))
        .cmd(&["/bin/legacy"])
        .build();
    Fixtures {
        hello,
        world,
        multi,
        legacy,
    }
}

/// Writes the shipped fixtures under `root` (normally the repository's `fixtures/`):
/// `oci/` (an OCI layout: hello with two tags, world sharing hello's base layer, and a
/// linux/amd64 + linux/arm64 index) and `docker-archive/legacy.tar` (a legacy
/// `docker save` file). Existing `oci/` and `docker-archive/` are replaced.
pub fn write_fixtures(root: &Path) {
    let f = fixtures();
    let oci = root.join("oci");
    if oci.exists() {
        fs::remove_dir_all(&oci).expect("remove old fixtures/oci");
    }
    let mut layout = OciLayout::new();
    layout.add(&f.hello, "1.0", Some(FIXTURE_HELLO));
    layout.add(&f.hello, "latest", Some(FIXTURE_HELLO_LATEST));
    layout.add(&f.world, "2.0", Some(FIXTURE_WORLD));
    layout.add(&f.multi, "3.0", Some(FIXTURE_MULTI));
    layout.write(&oci);
    let archive_dir = root.join("docker-archive");
    if archive_dir.exists() {
        fs::remove_dir_all(&archive_dir).expect("remove old fixtures/docker-archive");
    }
    write_docker_archive(
        &archive_dir.join("legacy.tar"),
        &[(&f.legacy, &[FIXTURE_ARCHIVE_TAG])],
    );
}

// ---------------------------------------------------------------------------------
// Into a real registry.

/// Options for [`push`].
#[derive(Debug, Clone, Default)]
pub struct PushOptions<'a> {
    /// `--format v2s2` (Docker schema 2) or `oci`; `None` keeps the source's types.
    pub format: Option<&'a str>,
    /// `--dest-creds user:pass`.
    pub creds: Option<(&'a str, &'a str)>,
}

/// Puts `root` into a registry with the real `skopeo copy`, from a one-entry OCI layout
/// written to a temp dir. `dest` is `127.0.0.1:PORT/repo:tag` (plain HTTP). An index
/// is copied whole (`--all`).
pub fn push(root: impl Into<Root>, dest: &str, opts: &PushOptions<'_>) {
    let root = root.into();
    let dir = tempfile::tempdir().expect("temp dir for skopeo's source layout");
    let mut layout = OciLayout::new();
    layout.add(root.clone(), "src", None);
    layout.write(dir.path());
    let src = format!("oci:{}:src", dir.path().display());
    let dest = format!("docker://{dest}");
    let mut args: Vec<String> = vec![
        "--insecure-policy".into(),
        "copy".into(),
        "--quiet".into(),
        "--dest-tls-verify=false".into(),
        "--preserve-digests".into(),
    ];
    if matches!(root, Root::Index(_)) {
        args.push("--all".into());
    }
    if let Some(f) = opts.format {
        args.push("--format".into());
        args.push(f.into());
        // Converting media types rewrites manifests: digests may change.
        args.retain(|a| a != "--preserve-digests");
    }
    match opts.creds {
        Some((u, p)) => {
            args.push("--dest-creds".into());
            args.push(format!("{u}:{p}"));
        }
        None => args.push("--dest-no-creds".into()),
    }
    args.push(src);
    args.push(dest.clone());
    skopeo(&args);
}

/// Runs `skopeo` with `args`, panicking with its output when it fails.
pub fn skopeo<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let out = Command::new("skopeo")
        .args(args)
        .env("REGISTRY_AUTH_FILE", "/nonexistent/airlock-test-auth.json")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run skopeo ({e}): install Debian's `skopeo` package (apt-get install skopeo)")
        });
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    assert!(
        out.status.success(),
        "skopeo {} failed ({}):\n{}{}",
        shown.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---------------------------------------------------------------------------------
// zstd layers (which Docker 20.10 cannot load by itself).

pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// Like [`layer`], but the blob is the tar compressed with zstd (level 3), typed
/// [`OCI_LAYER_ZSTD`]. Build the image with [`ImageSpec::build`], then fix the layer
/// types in its manifest with [`with_zstd_layer_types`].
pub fn zstd_layer(files: &[FileSpec]) -> Layer {
    let mut l = layer(files);
    let z = zstd::stream::encode_all(&l.tar[..], 3).expect("zstd");
    l.gz = Blob::new(OCI_LAYER_ZSTD, z);
    l
}

/// `image` (OCI flavor) with its manifest rewritten so that every layer whose blob is
/// zstd data (by its magic number) has the OCI zstd media type; [`ImageSpec::build`]
/// types every layer as gzip.
pub fn with_zstd_layer_types(mut image: Image) -> Image {
    const MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
    let mut manifest: Value = serde_json::from_slice(&image.manifest.bytes).expect("manifest");
    for (i, l) in image.layers.iter_mut().enumerate() {
        if l.gz.bytes.starts_with(&MAGIC) {
            l.gz.media_type = OCI_LAYER_ZSTD.to_string();
            manifest["layers"][i]["mediaType"] = json!(OCI_LAYER_ZSTD);
        }
    }
    image.manifest = Blob::new(
        &image.manifest.media_type,
        serde_json::to_vec_pretty(&manifest).expect("manifest"),
    );
    image
}
