//! Plain-HTTP reads of a test registry's API (`/v2/...` on `127.0.0.1:PORT`), made with
//! `ureq` rather than airlock's client so that tests check what the registry itself
//! says: a manifest with its `Docker-Content-Digest` ([`registry_manifest`]), the tags
//! of a repository ([`tags`]), the catalog ([`catalog`]), or any other GET
//! ([`get_json`]). Every helper takes optional Basic credentials.

use serde_json::Value;

fn basic_auth(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {token}")
}

/// The `Accept` header that gets any manifest or index from a distribution registry.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// A manifest or index as a registry serves it.
#[derive(Debug, Clone)]
pub struct RegistryManifest {
    /// The registry's `Docker-Content-Digest` header.
    pub digest: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// GETs `/v2/<repo>/manifests/<reference>` from the registry at `addr`
/// (`127.0.0.1:PORT`, plain HTTP) with all four manifest types in `Accept`.
/// Fails the test when the registry does not answer 200.
pub fn registry_manifest(
    addr: &str,
    repo: &str,
    reference: &str,
    creds: Option<(&str, &str)>,
) -> RegistryManifest {
    try_registry_manifest(addr, repo, reference, creds)
        .unwrap_or_else(|e| panic!("GET manifest {addr}/{repo}:{reference}: {e}"))
}

/// Like [`registry_manifest`], with the failure as a value.
pub fn try_registry_manifest(
    addr: &str,
    repo: &str,
    reference: &str,
    creds: Option<(&str, &str)>,
) -> Result<RegistryManifest, String> {
    let url = format!("http://{addr}/v2/{repo}/manifests/{reference}");
    let mut req = ureq::get(&url).header("Accept", MANIFEST_ACCEPT);
    if let Some((u, p)) = creds {
        req = req.header("Authorization", basic_auth(u, p));
    }
    let mut resp = req.call().map_err(|e| e.to_string())?;
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let digest = header("docker-content-digest").ok_or("no Docker-Content-Digest header")?;
    let content_type = header("content-type").unwrap_or_default();
    let bytes = resp
        .body_mut()
        .read_to_vec()
        .map_err(|e| format!("reading the body: {e}"))?;
    Ok(RegistryManifest {
        digest,
        content_type,
        bytes,
    })
}

/// The `Docker-Content-Digest` a registry gives for `repo:reference`.
pub fn registry_digest(addr: &str, repo: &str, reference: &str) -> String {
    registry_manifest(addr, repo, reference, None).digest
}

/// A GET of `path` (`/v2/...`) on the registry at `addr`: the status and the body as
/// JSON (`Null` when it is not JSON). Only a failed connection fails the test.
pub fn get_json(addr: &str, path: &str, creds: Option<(&str, &str)>) -> (u16, Value) {
    let url = format!("http://{addr}{path}");
    let mut req = ureq::get(&url);
    if let Some((u, p)) = creds {
        req = req.header("Authorization", basic_auth(u, p));
    }
    let mut resp = req
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_vec().unwrap_or_default();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// The repositories the registry lists in its catalog, sorted.
pub fn catalog(addr: &str, creds: Option<(&str, &str)>) -> Vec<String> {
    let (status, body) = get_json(addr, "/v2/_catalog", creds);
    assert_eq!(status, 200, "catalog of {addr}: {body}");
    sorted_strings(&body["repositories"])
}

/// The tags of `repo`, sorted (none when the repository does not exist).
pub fn tags(addr: &str, repo: &str, creds: Option<(&str, &str)>) -> Vec<String> {
    let (status, body) = get_json(addr, &format!("/v2/{repo}/tags/list"), creds);
    match status {
        200 => sorted_strings(&body["tags"]),
        404 => Vec::new(),
        s => panic!("tags/list of {repo} on {addr}: HTTP {s} {body}"),
    }
}

/// A JSON array of strings, sorted (none for `null`).
fn sorted_strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().expect("string").to_string())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}
