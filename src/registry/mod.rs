//! The distribution-spec registry client: pull (manifests, blobs, tags) and push
//! (blob existence, mounts, uploads, manifests).
//!
//! One [`Client`] is shared by all worker threads of a run (an `Arc` inside), so the
//! connection pool, the credentials looked up and the bearer tokens fetched are shared
//! too. The pieces, each owning one concern:
//! - `transport`: scheme/host per registry, the ureq agent (TLS, timeouts), URL
//!   resolution, retry policy;
//! - `request`: one logical request end to end (auth, redirects, retries, errors);
//! - `challenge`, `auth`, `credentials`: WWW-Authenticate parsing, the token cache,
//!   Docker's config.json and credential helpers;
//! - `blob`: the resuming blob download; `upload`: the push side;
//! - `error`: [`RegistryError`].
//!
//! Registries differ ("dialects"); what one answers once is remembered per registry in
//! the client for the run ([`Quirks`]): a manifest `HEAD` answered 400/405/501 is not
//! sent again (a `GET` tells instead), and a monolithic upload refused with
//! `BLOB_UPLOAD_INVALID` switches that registry to `PATCH` uploads (see `upload`), and a
//! referrers request answered 404 (or not with an index) marks it as having no referrers
//! API (see `referrers`).
//!
//! Manifests are returned byte-exact with their digest computed here and checked
//! against what was asked for and what the registry announced; blobs are streamed and
//! never buffered whole (their digest is checked by the caller while reading).

mod auth;
mod blob;
mod challenge;
pub mod credentials;
mod error;
mod referrers;
mod request;
mod transport;
mod upload;

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ureq::http::Method;

pub(crate) use error::Unreachable;
pub use error::{Kind, Op, RegistryError};
pub use referrers::Referrers;

use crate::digest::Digest;
use crate::oci::{self, RawManifest};
use auth::{Auth, Scope};
use credentials::CredentialStore;
use error::display_url;
use request::{Ctx, Req};

/// How often a manifest whose bytes do not match the digest asked for (or announced)
/// is fetched before giving up.
const MANIFEST_MISMATCH_ATTEMPTS: u32 = 3;

/// How the client reaches registries.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Hosts (`host[:port]`) spoken to over plain HTTP in addition to loopback ones.
    /// A bare host matches any port.
    pub insecure_hosts: Vec<String>,
    /// Extra PEM CA certificates trusted in addition to the system store.
    pub ca_file: Option<PathBuf>,
    /// Directory holding Docker's `config.json`; `None` means `$DOCKER_CONFIG`, else `~/.docker`.
    pub docker_config_dir: Option<PathBuf>,
    /// Directory searched for `docker-credential-*` helpers; `None` means `$PATH`.
    pub helper_dir: Option<PathBuf>,
    /// Attempts per request (and per blob download) before giving up; at least 1.
    pub retry_attempts: u32,
    /// First backoff delay; doubled per failure, with jitter.
    pub retry_base_delay: Duration,
    /// Longest `Retry-After` honoured.
    pub max_retry_after: Duration,
    /// Connection (and DNS) timeout.
    pub connect_timeout: Duration,
    /// Longest silence on an open connection before it is treated as dead.
    pub read_timeout: Duration,
    /// Blobs larger than this are uploaded in `PATCH` chunks of this size, each held in
    /// memory (so it can be re-sent), one per concurrent upload. `u64::MAX` (the default)
    /// streams every blob as one `PUT` in constant memory; set a size only for a registry
    /// or proxy that limits the request size.
    pub chunk_size: u64,
    /// Upload every blob by `PATCH` (one streamed `PATCH`, or chunks of `chunk_size`,
    /// whatever the blob's size), then an empty `PUT ?digest=`: for registries that
    /// refuse a monolithic `PUT` with a body. Chosen by itself for a registry that
    /// refuses one (`BLOB_UPLOAD_INVALID`).
    pub patch_uploads: bool,
}

/// What the client learned about one registry during this run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quirks {
    /// It does not answer `HEAD` on manifests usefully (400/405/501): ask with `GET`.
    pub manifest_head_useless: bool,
    /// It refused a monolithic upload: upload by `PATCH`.
    pub patch_uploads: bool,
    /// It has no OCI 1.1 referrers API (404, or an answer that is not an index): use the
    /// referrers tag schema instead.
    pub no_referrers_api: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure_hosts: Vec::new(),
            ca_file: None,
            docker_config_dir: None,
            helper_dir: None,
            retry_attempts: 5,
            retry_base_delay: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            chunk_size: u64::MAX,
            patch_uploads: false,
        }
    }
}

/// A registry client shared by all threads of one run.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    opts: ClientOptions,
    agent: ureq::Agent,
    auth: Auth,
    quirks: Mutex<HashMap<String, Quirks>>,
}

impl Inner {
    /// What has been learned about `registry` so far.
    pub(crate) fn quirks(&self, registry: &str) -> Quirks {
        crate::sync::lock(&self.quirks)
            .get(registry)
            .copied()
            .unwrap_or_default()
    }

    /// Remembers something learned about `registry` for the rest of the run.
    pub(crate) fn learn(&self, registry: &str, f: impl FnOnce(&mut Quirks)) {
        f(crate::sync::lock(&self.quirks)
            .entry(registry.to_string())
            .or_default());
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("insecure_hosts", &self.inner.opts.insecure_hosts)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(opts: ClientOptions) -> Result<Client, RegistryError> {
        let agent = transport::agent(
            opts.ca_file.as_deref(),
            opts.connect_timeout,
            opts.read_timeout,
        )?;
        let store = CredentialStore::new(
            opts.docker_config_dir.as_deref(),
            opts.helper_dir.as_deref(),
        );
        Ok(Client {
            inner: Arc::new(Inner {
                opts,
                agent,
                auth: Auth::new(store),
                quirks: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// What the client learned about `registry` in this run (for reports and tests).
    pub fn quirks(&self, registry: &str) -> Quirks {
        self.inner.quirks(registry)
    }

    /// Fetches a manifest or index by tag or digest, byte-exact.
    ///
    /// The digest is computed from the bytes; it must equal `reference` when that is a
    /// digest, else the registry's `Docker-Content-Digest` when it sends one. A body
    /// that breaks off is fetched again (with backoff, within the retry budget), and so
    /// are bytes that do not match (up to 3 times, as `save` does for blobs).
    pub fn get_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
    ) -> Result<RawManifest, RegistryError> {
        let inner = &self.inner;
        let url = format!(
            "{}/v2/{repository}/manifests/{reference}",
            inner.base(registry)
        );
        let ctx = Ctx {
            registry,
            repository,
            reference,
            kind: Kind::Manifest,
            what: Op::GetManifest,
            scope: Scope::pull(repository),
        };
        let too_large = || RegistryError::TooLarge {
            registry: registry.to_string(),
            repository: repository.to_string(),
            reference: reference.to_string(),
            limit: oci::MAX_MANIFEST_SIZE,
        };
        let policy = inner.policy();
        let (mut failures, mut mismatches) = (0u32, 0u32);
        loop {
            let mut req =
                Req::new(Method::GET, url.clone()).header("accept", oci::media::MANIFEST_ACCEPT);
            let mut answer = inner.execute(&ctx, &mut req)?;
            if answer
                .header("content-length")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .is_some_and(|n| n > oci::MAX_MANIFEST_SIZE)
            {
                return Err(too_large());
            }
            let content_type = answer
                .header("content-type")
                .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
            let announced = answer.header("docker-content-digest").map(str::to_string);
            let shown_url = display_url(&answer.url);
            let body = answer
                .response
                .body_mut()
                .with_config()
                .limit(oci::MAX_MANIFEST_SIZE)
                .read_to_vec();
            let err = match body {
                Ok(bytes) => {
                    let manifest = RawManifest::new(bytes, content_type.as_deref());
                    let expected = if reference.contains(':') {
                        Some(reference)
                    } else {
                        announced
                            .as_deref()
                            .map(str::trim)
                            .filter(|a| a.starts_with("sha256:"))
                    };
                    match expected {
                        Some(e) if e != manifest.digest.as_str() => RegistryError::DigestMismatch {
                            registry: registry.to_string(),
                            repository: repository.to_string(),
                            reference: reference.to_string(),
                            expected: e.to_string(),
                            actual: manifest.digest.clone(),
                        },
                        _ => return Ok(manifest),
                    }
                }
                Err(ureq::Error::BodyExceedsLimit(_)) => return Err(too_large()),
                Err(e) => RegistryError::Transport {
                    url: shown_url,
                    tls: false,
                    source: e,
                },
            };
            // The body broke off, or its bytes are not the ones asked for or announced:
            // fetch it again (damage in transit at once, a few times, as for blobs;
            // connection trouble with backoff), within bounds.
            if matches!(err, RegistryError::DigestMismatch { .. }) {
                mismatches += 1;
                if mismatches >= MANIFEST_MISMATCH_ATTEMPTS {
                    return Err(err);
                }
            } else if err.is_transient() {
                failures += 1;
                if failures >= policy.attempts {
                    return Err(request::exhausted(&ctx, failures, err));
                }
                std::thread::sleep(policy.delay(failures, None));
            } else {
                return Err(err);
            }
        }
    }

    /// Opens a blob for streaming (unverified; the caller checks the digest). A dropped
    /// connection is resumed with a `Range` request; at most `size` bytes are yielded.
    pub fn get_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<Box<dyn Read + Send>, RegistryError> {
        let reader =
            blob::BlobReader::open(self.inner.clone(), registry, repository, digest, size)?;
        Ok(Box::new(reader))
    }
}
