//! Runs the built `airlock` binary and reads what it wrote.
//!
//! [`airlock`] runs the binary with arguments (stdin closed, `DOCKER_CONFIG` pointed at
//! an empty dir unless the test sets it, so the host's credentials never leak into a
//! test) and captures stdout, stderr and the exit code. [`Bundle`] reads a `.tar` or
//! `.tar.zst` bundle with the `tar` and `zstd` crates — not with airlock's reader — for
//! assertions on entries, blobs, `index.json`, `manifest.json` and `airlock.json`.
//! [`KillOnDrop`] holds an airlock started in the background, so a test that panics
//! never leaves it running.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// The path of the airlock binary cargo built for these tests.
pub fn airlock_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_airlock"))
}

/// The repository root (where `fixtures/` lives).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A finished airlock run.
#[derive(Debug)]
pub struct Run {
    pub args: Vec<String>,
    /// The exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics (showing the whole run) unless the exit code is 0.
    pub fn ok(self) -> Run {
        self.expect_code(0)
    }

    /// Panics (showing the whole run) unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit code {code} from {self}",
        );
        self
    }

    /// stdout and stderr together, for "the message says" checks.
    pub fn output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// stdout parsed as one JSON document.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}) in {self}"))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`airlock {}` exited {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }
}

/// A command line for airlock, with environment.
pub struct Airlock {
    args: Vec<String>,
    envs: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    _empty_config: tempfile::TempDir,
}

/// Starts building an airlock run.
pub fn cmd<S: AsRef<OsStr>>(args: &[S]) -> Airlock {
    let empty = tempfile::tempdir().expect("temp dir for an empty DOCKER_CONFIG");
    Airlock {
        args: args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect(),
        envs: vec![(
            "DOCKER_CONFIG".to_string(),
            empty.path().display().to_string(),
        )],
        cwd: None,
        _empty_config: empty,
    }
}

/// Runs airlock with `args` and the default environment.
pub fn airlock<S: AsRef<OsStr>>(args: &[S]) -> Run {
    cmd(args).run()
}

impl Airlock {
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Airlock {
        self.args.push(a.as_ref().to_string_lossy().into_owned());
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Airlock {
        self.envs.retain(|(k, _)| k != key);
        self.envs.push((
            key.to_string(),
            value.as_ref().to_string_lossy().into_owned(),
        ));
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Airlock {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    pub fn run(self) -> Run {
        let mut c = Command::new(airlock_bin());
        c.args(&self.args)
            .stdin(Stdio::null())
            .env_remove("DOCKER_HOST")
            .env("NO_COLOR", "1");
        for (k, v) in &self.envs {
            c.env(k, v);
        }
        if let Some(d) = &self.cwd {
            c.current_dir(d);
        }
        let out = c.output().expect("run the airlock binary");
        Run {
            args: self.args,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// A temp `DOCKER_CONFIG` dir whose `config.json` holds Basic credentials for `registry`.
pub fn docker_config_with_auth(registry: &str, user: &str, pass: &str) -> tempfile::TempDir {
    use base64::Engine as _;
    let dir = tempfile::tempdir().expect("temp DOCKER_CONFIG");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    let config = serde_json::json!({"auths": {registry: {"auth": auth}}});
    fs::write(
        dir.path().join("config.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .expect("write config.json");
    dir
}

/// Every entry of a bundle, read into memory (test bundles are small), in tar order.
#[derive(Debug)]
pub struct Bundle {
    pub path: PathBuf,
    /// Regular-file entries in tar order: name and bytes. Names are as stored, less a leading `./`.
    pub entries: Vec<(String, Vec<u8>)>,
    /// Every entry name in tar order, directories included.
    pub all_names: Vec<String>,
}

/// The uncompressed tar stream of a bundle: `.tar.zst` is decompressed (all frames).
pub fn bundle_tar_bytes(path: &Path) -> Vec<u8> {
    let raw = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    if path.to_string_lossy().ends_with(".zst") {
        assert_eq!(
            &raw[..4],
            &[0x28, 0xb5, 0x2f, 0xfd],
            "{} does not start with a zstd frame",
            path.display()
        );
        let mut out = Vec::new();
        zstd::stream::read::Decoder::new(&raw[..])
            .expect("zstd decoder")
            .read_to_end(&mut out)
            .unwrap_or_else(|e| panic!("zstd -d {}: {e}", path.display()));
        out
    } else {
        raw
    }
}

impl Bundle {
    pub fn open(path: impl AsRef<Path>) -> Bundle {
        let path = path.as_ref().to_path_buf();
        let bytes = bundle_tar_bytes(&path);
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut entries = Vec::new();
        let mut all_names = Vec::new();
        for e in archive.entries().expect("tar entries") {
            let mut e = e.unwrap_or_else(|err| panic!("bad tar in {}: {err}", path.display()));
            let name = e.path().expect("entry path").to_string_lossy().into_owned();
            let name = name.strip_prefix("./").unwrap_or(&name).to_string();
            all_names.push(name.clone());
            if e.header().entry_type().is_file() {
                let mut data = Vec::new();
                e.read_to_end(&mut data).expect("read entry");
                entries.push((name, data));
            }
        }
        Bundle {
            path,
            entries,
            all_names,
        }
    }

    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// How many file entries carry `name` (a blob stored twice shows 2).
    pub fn count(&self, name: &str) -> usize {
        self.entries.iter().filter(|(n, _)| n == name).count()
    }

    pub fn try_entry(&self, name: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }

    pub fn entry(&self, name: &str) -> &[u8] {
        self.try_entry(name).unwrap_or_else(|| {
            panic!(
                "{} has no entry {name}; it has {:?}",
                self.path.display(),
                self.names()
            )
        })
    }

    pub fn json(&self, name: &str) -> Value {
        serde_json::from_slice(self.entry(name))
            .unwrap_or_else(|e| panic!("{name} in {} is not JSON: {e}", self.path.display()))
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.try_entry(&blob_path(digest)).is_some()
    }

    /// The bytes of `blobs/sha256/<hex>`.
    pub fn blob(&self, digest: &str) -> &[u8] {
        self.entry(&blob_path(digest))
    }

    /// Digests of every `blobs/sha256/*` entry.
    pub fn blob_digests(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter_map(|(n, _)| n.strip_prefix("blobs/sha256/"))
            .map(|h| format!("sha256:{h}"))
            .collect()
    }

    /// `airlock.json`.
    pub fn toc(&self) -> Value {
        self.json("airlock.json")
    }

    /// `index.json`.
    pub fn index(&self) -> Value {
        self.json("index.json")
    }

    /// `manifest.json` (the docker-save side).
    pub fn docker_manifest(&self) -> Value {
        self.json("manifest.json")
    }

    /// The `index.json` descriptor whose `io.containerd.image.name` is `name`.
    pub fn index_entry(&self, name: &str) -> Value {
        let index = self.index();
        index["manifests"]
            .as_array()
            .expect("index.json manifests")
            .iter()
            .find(|d| d["annotations"]["io.containerd.image.name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("index.json has no entry named {name}: {index:#}"))
    }

    /// The TOC image entry named `name`.
    pub fn toc_image(&self, name: &str) -> Value {
        let toc = self.toc();
        toc["images"]
            .as_array()
            .expect("airlock.json images")
            .iter()
            .find(|i| i["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("airlock.json has no image named {name}: {toc:#}"))
    }

    /// Checks the invariants every bundle must meet, whatever it holds: `oci-layout`
    /// first with version 1.0.0, `airlock.json` and `index.json` and `manifest.json`
    /// present, every blob named by its own sha256 and stored once, every blob the TOC
    /// lists present with its size, every `index.json` descriptor pointing at a blob of
    /// its size, and every `manifest.json` path present.
    pub fn assert_sound(&self) {
        assert_eq!(
            self.names().first().copied(),
            Some("oci-layout"),
            "oci-layout is not the first entry of {}",
            self.path.display()
        );
        assert_eq!(
            self.json("oci-layout")["imageLayoutVersion"],
            "1.0.0",
            "oci-layout version"
        );
        let mut seen = BTreeMap::new();
        for (name, data) in &self.entries {
            *seen.entry(name.clone()).or_insert(0) += 1;
            if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                assert_eq!(
                    super::images::sha256(data),
                    format!("sha256:{hex}"),
                    "blob {name} does not hash to its name"
                );
            }
        }
        let dups: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
        assert!(dups.is_empty(), "entries stored more than once: {dups:?}");
        let toc = self.toc();
        for b in toc["blobs"].as_array().expect("airlock.json blobs") {
            let d = b["digest"].as_str().expect("blob digest");
            assert_eq!(
                self.blob(d).len() as u64,
                b["size"].as_u64().expect("blob size"),
                "size of {d} in airlock.json"
            );
        }
        for d in self.index()["manifests"].as_array().expect("manifests") {
            let digest = d["digest"].as_str().expect("descriptor digest");
            assert_eq!(
                self.blob(digest).len() as u64,
                d["size"].as_u64().unwrap(),
                "size of {digest} in index.json"
            );
        }
        for e in self
            .docker_manifest()
            .as_array()
            .expect("manifest.json array")
        {
            self.entry(e["Config"].as_str().expect("Config path"));
            for l in e["Layers"].as_array().expect("Layers") {
                self.entry(l.as_str().expect("layer path"));
            }
        }
    }

    /// Extracts the bundle's tar into `dir` (for tools that need a directory, like umoci).
    pub fn extract_to(&self, dir: &Path) {
        let bytes = bundle_tar_bytes(&self.path);
        tar::Archive::new(&bytes[..])
            .unpack(dir)
            .unwrap_or_else(|e| panic!("unpack {}: {e}", self.path.display()));
    }
}

/// `blobs/sha256/<hex>` for `sha256:<hex>`.
pub fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", super::images::hex_of(digest))
}

/// Copies the uncompressed bundle at `src` to `dst` with one byte flipped in the data of
/// the entry `name` (at `offset` bytes into it), leaving the tar structure intact.
pub fn copy_with_flipped_byte(src: &Path, dst: &Path, name: &str, offset: u64) {
    assert!(
        !src.to_string_lossy().ends_with(".zst"),
        "flip bytes in an uncompressed bundle"
    );
    let mut bytes = fs::read(src).expect("read bundle");
    let mut position = None;
    {
        let mut archive = tar::Archive::new(&bytes[..]);
        for e in archive.entries().expect("entries") {
            let e = e.expect("entry");
            let path = e.path().unwrap().to_string_lossy().into_owned();
            if path.strip_prefix("./").unwrap_or(&path) == name {
                assert!(offset < e.size(), "{name} is only {} bytes", e.size());
                position = Some(e.raw_file_position() + offset);
                break;
            }
        }
    }
    let pos = position.unwrap_or_else(|| panic!("{} has no entry {name}", src.display())) as usize;
    bytes[pos] ^= 0x01;
    fs::write(dst, bytes).expect("write corrupted copy");
}

/// The files in `dir` (names only), for "nothing was left behind" checks.
pub fn dir_listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Runs an external tool, panicking with a message naming the apt package when it is
/// missing, and returns its output (success not required; callers assert).
pub fn tool(program: &str, apt_package: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): install Debian's `{apt_package}` package (apt-get install {apt_package})")
        })
}

/// Like [`tool`], failing the test unless the tool exits 0; returns its stdout.
pub fn tool_ok(program: &str, apt_package: &str, args: &[&str]) -> String {
    let out = tool(program, apt_package, args);
    assert!(
        out.status.success(),
        "{program} {} failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Splits a bundle image name `127.0.0.1:PORT/repo/path:tag` into (`repo/path`, `tag`)
/// for the registry at `addr`.
pub fn split_name<'a>(name: &'a str, addr: &str) -> (&'a str, &'a str) {
    let rest = name
        .strip_prefix(addr)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or_else(|| panic!("{name} is not on the registry {addr}"));
    rest.rsplit_once(':')
        .unwrap_or_else(|| panic!("{name} has no tag"))
}

impl Bundle {
    /// Checks the bundle against the registry it was saved from (`addr`): for every
    /// image, the registry's `Docker-Content-Digest` for the tag equals the digest in
    /// `airlock.json` and `index.json` (or, when airlock narrowed the image, the TOC's
    /// `source_digest`), and every manifest and index blob in the bundle reachable from
    /// the image is served by the registry under that digest with the same bytes.
    pub fn assert_matches_registry(&self, addr: &str, creds: Option<(&str, &str)>) {
        use super::registry_api::{registry_manifest, try_registry_manifest};
        let toc = self.toc();
        for image in toc["images"].as_array().expect("images") {
            let name = image["name"].as_str().expect("name");
            let (repo, tag) = split_name(name, addr);
            let served = registry_manifest(addr, repo, tag, creds);
            let digest = image["digest"].as_str().expect("digest");
            match image.get("source_digest").and_then(Value::as_str) {
                Some(source) => assert_eq!(
                    source, served.digest,
                    "source_digest of {name} is not the registry's digest"
                ),
                None => {
                    assert_eq!(
                        digest, served.digest,
                        "airlock.json digest of {name} is not the registry's"
                    );
                    assert_eq!(
                        self.blob(digest),
                        &served.bytes[..],
                        "bytes of {name}'s manifest differ from the registry's"
                    );
                }
            }
            assert_eq!(
                self.index_entry(name)["digest"],
                digest,
                "index.json and airlock.json disagree on {name}"
            );
            // Every manifest/index blob under this name, by digest, must be the registry's.
            let mut todo = vec![digest.to_string()];
            while let Some(d) = todo.pop() {
                let bytes = self.blob(&d);
                let doc: Value = serde_json::from_slice(bytes).expect("manifest JSON");
                if let Some(children) = doc["manifests"].as_array() {
                    for c in children {
                        let cd = c["digest"].as_str().expect("child digest");
                        if self.has_blob(cd) {
                            todo.push(cd.to_string());
                        }
                    }
                }
                if d == digest && image.get("source_digest").is_some() {
                    // A narrowed root may be airlock's own; its children are the source's.
                    continue;
                }
                let by_digest = try_registry_manifest(addr, repo, &d, creds)
                    .unwrap_or_else(|e| panic!("the registry does not serve {d} for {repo}: {e}"));
                assert_eq!(by_digest.digest, d, "Docker-Content-Digest of {repo}@{d}");
                assert_eq!(&by_digest.bytes[..], bytes, "bytes of {repo}@{d}");
            }
        }
    }

    /// Positions of entries, for order checks.
    pub fn position(&self, name: &str) -> usize {
        self.entries
            .iter()
            .position(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{} has no entry {name}", self.path.display()))
    }

    /// Checks that the small entries come first: `oci-layout`, `airlock.json`,
    /// `index.json`, `manifest.json` and every manifest, index and config blob precede
    /// every layer blob (layers = blobs whose TOC media type is a layer type).
    pub fn assert_small_entries_first(&self) {
        let toc = self.toc();
        let is_layer = |mt: &str| mt.contains("layer") || mt.contains("rootfs");
        let mut first_layer = usize::MAX;
        let mut last_small = 0;
        for b in toc["blobs"].as_array().expect("blobs") {
            let d = b["digest"].as_str().unwrap();
            let pos = self.position(&blob_path(d));
            if is_layer(b["media_type"].as_str().unwrap_or("")) {
                first_layer = first_layer.min(pos);
            } else {
                last_small = last_small.max(pos);
            }
        }
        for n in ["oci-layout", "airlock.json", "index.json", "manifest.json"] {
            last_small = last_small.max(self.position(n));
        }
        assert!(
            last_small < first_layer,
            "a layer comes before a small entry in {}: {:?}",
            self.path.display(),
            self.names()
        );
    }
}

/// A child process that is killed (and reaped) when dropped, unless it already ended:
/// a test that panics while an `airlock save` runs in the background does not leave it
/// running. Derefs to the [`std::process::Child`]; [`KillOnDrop::into_inner`] takes it
/// back to wait for it.
pub struct KillOnDrop(Option<std::process::Child>);

impl KillOnDrop {
    pub fn new(child: std::process::Child) -> KillOnDrop {
        KillOnDrop(Some(child))
    }

    /// The child, no longer killed on drop (to `wait_with_output` on it).
    pub fn into_inner(mut self) -> std::process::Child {
        self.0.take().expect("the child is there until taken")
    }
}

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        self.0.as_ref().expect("the child is there until taken")
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        self.0.as_mut().expect("the child is there until taken")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0
            && !matches!(child.try_wait(), Ok(Some(_)))
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Writes to `dst` a copy of the `.tar.zst` bundle `src` with one bit flipped inside
/// `needle`: bytes of a gzip layer, which the bundle stores verbatim (zstd cannot
/// shrink gzip, so it keeps a raw block). Only that blob's digest can catch it.
pub fn copy_with_flip_in_raw_block(src: &Path, dst: &Path, needle: &[u8]) {
    let mut bytes = std::fs::read(src).unwrap();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the layer's bytes are stored as a raw block");
    bytes[at + 10] ^= 0x20;
    std::fs::write(dst, &bytes).unwrap();
}
