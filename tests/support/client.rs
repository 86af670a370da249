//! What the tests of airlock's registry client (`tests/registry_client.rs`,
//! `tests/registry_client_server.rs`) share: client options with short retry delays and
//! a Docker config dir of the test's own ([`options`], [`client`]), images pushed with
//! plain `ureq` calls, independent of the client under test ([`raw_push_image`]), and
//! the set-up most of those tests start from ([`setup`]: a fresh registry holding one
//! such image, and a client for it).
//!
//! Every config dir is a [`TempDir`] that lives as long as what reads it, so nothing is
//! left behind in the temp directory.

use std::io::Read;
use std::ops::Deref;
use std::path::Path;
use std::time::Duration;

use airlock::digest::Digest;
use airlock::registry::{Client, ClientOptions};
use base64::Engine as _;
use tempfile::TempDir;

use super::cli::docker_config_with_auth;
use super::registry::TestRegistry;

/// The tests' client options: Docker config (credentials) from `config_dir` only,
/// 4 attempts, 10 ms backoff, Retry-After capped at 2 s.
pub fn options(config_dir: &Path) -> ClientOptions {
    ClientOptions {
        docker_config_dir: Some(config_dir.to_path_buf()),
        retry_attempts: 4,
        retry_base_delay: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(2),
        ..ClientOptions::default()
    }
}

/// A [`Client`] with [`options`] and the config dir it reads, kept for its lifetime.
pub struct TestClient {
    client: Client,
    _config: TempDir,
}

impl TestClient {
    /// A client reading its credentials from `config` (see [`docker_config_with_auth`]).
    pub fn new(config: TempDir) -> TestClient {
        TestClient {
            client: Client::new(options(config.path())).unwrap(),
            _config: config,
        }
    }
}

impl Deref for TestClient {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

/// An anonymous client: its config dir is empty.
pub fn client() -> TestClient {
    TestClient::new(tempfile::tempdir().unwrap())
}

/// `Authorization: Basic ...` for `user:pass`.
pub fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

pub fn read_all(mut r: Box<dyn Read + Send>) -> Vec<u8> {
    let mut v = Vec::new();
    r.read_to_end(&mut v).unwrap();
    v
}

// ---------------------------------------------------------------------------------
// Raw pushes.

pub fn raw_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent()
}

/// Pushes one blob with plain ureq calls (independent of the client under test).
pub fn raw_push_blob(base: &str, repo: &str, bytes: &[u8], auth: Option<&str>) -> Digest {
    let agent = raw_agent();
    let digest = Digest::of(bytes);
    let mut post = agent.post(format!("{base}/v2/{repo}/blobs/uploads/"));
    if let Some(a) = auth {
        post = post.header("authorization", a);
    }
    let resp = post.send_empty().unwrap();
    assert_eq!(resp.status(), 202, "POST upload");
    let loc = resp
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let loc = if loc.starts_with('/') {
        format!("{base}{loc}")
    } else {
        loc
    };
    let sep = if loc.contains('?') { '&' } else { '?' };
    let mut put = agent
        .put(format!("{loc}{sep}digest={digest}"))
        .header("content-type", "application/octet-stream");
    if let Some(a) = auth {
        put = put.header("authorization", a);
    }
    let resp = put.send(bytes).unwrap();
    assert_eq!(resp.status(), 201, "PUT blob");
    digest
}

/// An image pushed by [`raw_push_image`].
pub struct Pushed {
    pub manifest: Vec<u8>,
    /// The registry's `Docker-Content-Digest` for the manifest.
    pub digest: String,
    pub layer: Vec<u8>,
    pub layer_digest: Digest,
    pub config_digest: Digest,
}

pub fn layer_bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

pub fn manifest_for(
    config: &Digest,
    config_len: usize,
    layer: &Digest,
    layer_len: usize,
) -> Vec<u8> {
    format!(
        "{{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n  \
         \"config\": {{\"mediaType\": \"application/vnd.oci.image.config.v1+json\", \"digest\": \"{config}\", \"size\": {config_len}}},\n  \
         \"layers\": [{{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar+gzip\", \"digest\": \"{layer}\", \"size\": {layer_len}}}]\n}}"
    )
    .into_bytes()
}

/// Pushes config + layer + manifest (tag) with raw ureq calls; returns what was pushed
/// and the registry's `Docker-Content-Digest` for the manifest.
pub fn raw_push_image(
    base: &str,
    repo: &str,
    tag: &str,
    layer_len: usize,
    auth: Option<&str>,
) -> Pushed {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = layer_bytes(layer_len, tag.len() as u8);
    let config_digest = raw_push_blob(base, repo, config, auth);
    let layer_digest = raw_push_blob(base, repo, &layer, auth);
    let manifest = manifest_for(&config_digest, config.len(), &layer_digest, layer.len());
    let mut put = raw_agent()
        .put(format!("{base}/v2/{repo}/manifests/{tag}"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json");
    if let Some(a) = auth {
        put = put.header("authorization", a);
    }
    let resp = put.send(&manifest[..]).unwrap();
    assert_eq!(resp.status(), 201, "PUT manifest");
    let digest = resp
        .headers()
        .get("docker-content-digest")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    Pushed {
        manifest,
        digest,
        layer,
        layer_digest,
        config_digest,
    }
}

// ---------------------------------------------------------------------------------
// The common set-up.

/// A registry holding one image, and a client for it (see [`setup`]).
pub struct Setup {
    pub reg: TestRegistry,
    pub image: Pushed,
    pub client: TestClient,
}

/// Starts a `docker-registry` (with Basic auth for `creds`, when given), pushes one
/// image to it with raw calls as `repo:v1` (its layer `layer_len` bytes), and builds a
/// client whose Docker config holds `creds` for that registry (none: anonymous).
pub fn setup(repo: &str, layer_len: usize, creds: Option<(&str, &str)>) -> Setup {
    let reg = match creds {
        Some((user, pass)) => TestRegistry::start_with_basic_auth(user, pass),
        None => TestRegistry::start(),
    };
    let auth = creds.map(|(user, pass)| basic(user, pass));
    let image = raw_push_image(&reg.url(), repo, "v1", layer_len, auth.as_deref());
    let config = match creds {
        Some((user, pass)) => docker_config_with_auth(&reg.addr(), user, pass),
        None => tempfile::tempdir().unwrap(),
    };
    Setup {
        reg,
        image,
        client: TestClient::new(config),
    }
}
