//! The distribution API, read side: which answer each request gets.
//!
//! [`route`] maps a request to a [`Reply`]: small JSON and manifest bodies are built in
//! memory (a manifest is at most 4 MiB and is rehashed before it is served); a blob is
//! a [`Body::Blob`] that the connection streams out of the bundle, in full (hashed on
//! the way) or from a `Range` start. Errors use distribution's JSON form
//! (`{"errors":[{"code":…,"message":…,"detail":…}]}`) and codes. A client that
//! sends `Accept` gets distribution 2.8's negotiation: an OCI manifest or index it does
//! not take is `MANIFEST_UNKNOWN`, and a Docker manifest list asked for by tag is
//! answered with its linux/amd64 manifest. OCI 1.1 `referrers` are answered from the
//! manifests in the bundles that name a `subject`.

use std::borrow::Cow;

use serde_json::json;

use super::catalog::{Catalog, is_manifest_type, page};
use super::http::Request;
use crate::digest::Digest;
use crate::oci::{MAX_MANIFEST_SIZE, Parsed, RawManifest, media};

/// What a request is answered with.
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

pub(crate) enum Body {
    Bytes(Vec<u8>),
    /// `len` bytes of blob `digest` from `start` on, read from bundle `bundle`; a full
    /// blob (`start == 0 && len == size`) is hashed while it streams.
    Blob {
        bundle: usize,
        digest: Digest,
        start: u64,
        len: u64,
        full: bool,
    },
}

impl Reply {
    fn new(status: u16, body: Vec<u8>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Body::Bytes(body),
        }
    }

    fn json(status: u16, value: serde_json::Value) -> Reply {
        let mut r = Reply::new(status, value.to_string().into_bytes());
        r.headers
            .push(("Content-Type", "application/json".to_string()));
        r
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// The number of body bytes (what `Content-Length` says).
    pub fn len(&self) -> u64 {
        match &self.body {
            Body::Bytes(b) => b.len() as u64,
            Body::Blob { len, .. } => *len,
        }
    }
}

/// A distribution error answer.
pub(crate) fn error(status: u16, code: &str, message: &str, detail: &str) -> Reply {
    Reply::json(
        status,
        json!({"errors": [{"code": code, "message": message, "detail": detail}]}),
    )
}

/// Answers one request.
pub(crate) fn route(cat: &Catalog, req: &Request) -> Reply {
    let Some(rest) = req
        .path
        .strip_prefix("/v2/")
        .or_else(|| (req.path == "/v2").then_some(""))
    else {
        return error(404, "NOT_FOUND", "not found", &req.path);
    };
    if req.method != "GET" && req.method != "HEAD" {
        return error(
            405,
            "UNSUPPORTED",
            "The operation is unsupported.",
            "this registry is read-only (airlock serve)",
        )
        .header("Allow", "GET, HEAD");
    }
    if rest.is_empty() {
        return Reply::json(200, json!({}));
    }
    if rest == "_catalog" {
        return catalog(cat, req);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return tags(cat, req, name);
    }
    if let Some(i) = rest.rfind("/referrers/") {
        return referrers(cat, req, &rest[..i], &rest[i + "/referrers/".len()..]);
    }
    if let Some(i) = rest.rfind("/manifests/") {
        return manifest(cat, req, &rest[..i], &rest[i + "/manifests/".len()..]);
    }
    if let Some(i) = rest.rfind("/blobs/") {
        return blob(cat, req, &rest[..i], &rest[i + "/blobs/".len()..]);
    }
    error(404, "NOT_FOUND", "not found", &req.path)
}

fn limits(req: &Request) -> Result<(Option<String>, Option<usize>), Box<Reply>> {
    let n = match req.query_param("n") {
        None => None,
        Some(n) if n.is_empty() => None,
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            Box::new(error(
                400,
                "PAGINATION_NUMBER_INVALID",
                "invalid number of results requested",
                &n,
            ))
        })?),
    };
    Ok((req.query_param("last").filter(|l| !l.is_empty()), n))
}

/// The `Link` header for the page after `last` of at most `n`.
fn next_link(path: &str, last: &str, n: usize) -> String {
    let last: Cow<'_, str> =
        percent_encoding::utf8_percent_encode(last, percent_encoding::NON_ALPHANUMERIC).into();
    format!("<{path}?last={last}&n={n}>; rel=\"next\"")
}

fn catalog(cat: &Catalog, req: &Request) -> Reply {
    let (last, n) = match limits(req) {
        Ok(l) => l,
        Err(e) => return *e,
    };
    let (repos, more) = page(cat.repos.keys(), last.as_deref(), n);
    let link = match (more, repos.last(), n) {
        (true, Some(l), Some(n)) => Some(next_link("/v2/_catalog", l, n)),
        _ => None,
    };
    let mut r = Reply::json(200, json!({ "repositories": repos }));
    if let Some(link) = link {
        r = r.header("Link", link);
    }
    r
}

fn tags(cat: &Catalog, req: &Request, name: &str) -> Reply {
    let Some(tags) = cat.repos.get(name) else {
        return name_unknown(name);
    };
    let (last, n) = match limits(req) {
        Ok(l) => l,
        Err(e) => return *e,
    };
    let (list, more) = page(tags.keys(), last.as_deref(), n);
    let link = match (more, list.last(), n) {
        (true, Some(l), Some(n)) => Some(next_link(&format!("/v2/{name}/tags/list"), l, n)),
        _ => None,
    };
    let mut r = Reply::json(200, json!({ "name": name, "tags": list }));
    if let Some(link) = link {
        r = r.header("Link", link);
    }
    r
}

/// A reference that should be a digest and is not, answered as distribution does.
fn digest_invalid(reference: &str) -> Reply {
    error(
        400,
        "DIGEST_INVALID",
        "provided digest did not match uploaded content",
        reference,
    )
}

/// OCI 1.1 `GET /v2/<name>/referrers/<digest>`: an index of the manifests whose
/// `subject` is `digest`, filtered by `artifactType` when asked.
fn referrers(cat: &Catalog, req: &Request, name: &str, reference: &str) -> Reply {
    if !cat.repos.contains_key(name) {
        return name_unknown(name);
    }
    let Ok(digest) = Digest::parse(reference) else {
        return digest_invalid(reference);
    };
    let filter = req.query_param("artifactType").filter(|t| !t.is_empty());
    let manifests: Vec<&serde_json::Value> = cat
        .referrers
        .get(&digest)
        .into_iter()
        .flatten()
        .filter(|d| {
            filter
                .as_deref()
                .is_none_or(|t| d["artifactType"].as_str() == Some(t))
        })
        .collect();
    let body = json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": manifests});
    let mut r =
        Reply::new(200, body.to_string().into_bytes()).header("Content-Type", media::OCI_INDEX);
    if filter.is_some() {
        r = r.header("OCI-Filters-Applied", "artifactType");
    }
    r
}

fn name_unknown(name: &str) -> Reply {
    error(
        404,
        "NAME_UNKNOWN",
        "repository name not known to registry",
        name,
    )
}

fn manifest(cat: &Catalog, req: &Request, name: &str, reference: &str) -> Reply {
    let Some(tags) = cat.repos.get(name) else {
        return name_unknown(name);
    };
    let unknown = || error(404, "MANIFEST_UNKNOWN", "manifest unknown", reference);
    let by_tag = !reference.starts_with("sha256:");
    let (mut digest, mut media_type) = if by_tag {
        match tags.get(reference) {
            Some(t) => (t.digest.clone(), t.media_type.clone()),
            None => return unknown(),
        }
    } else {
        let Ok(d) = Digest::parse(reference) else {
            return digest_invalid(reference);
        };
        match cat.blob(&d) {
            Some(info) if is_manifest_type(&info.media_type) => (d, info.media_type.clone()),
            _ => return unknown(),
        }
    };
    let mut bytes = match read_manifest(cat, &digest) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    // Content negotiation as distribution 2.8 does it, when the client says what it takes.
    if let Some(accepted) = accepted(req) {
        let takes = |t: &str| accepted.iter().any(|a| a == t);
        if media_type == media::OCI_MANIFEST && !takes(media::OCI_MANIFEST) {
            return error(
                404,
                "MANIFEST_UNKNOWN",
                "OCI manifest found, but accept header does not support OCI manifests",
                reference,
            );
        }
        if media_type == media::OCI_INDEX && !takes(media::OCI_INDEX) {
            return error(
                404,
                "MANIFEST_UNKNOWN",
                "OCI index found, but accept header does not support OCI indexes",
                reference,
            );
        }
        if by_tag && media_type == media::DOCKER_LIST && !takes(media::DOCKER_LIST) {
            // An old client asking for a tag of a manifest list gets linux/amd64's manifest.
            let Some(child) = default_platform_child(&digest, &media_type, &bytes) else {
                return unknown();
            };
            bytes = match read_manifest(cat, &child.digest) {
                Ok(b) => b,
                Err(r) => return *r,
            };
            digest = child.digest;
            media_type = child.media_type;
        }
    }
    Reply::new(200, bytes)
        .header("Content-Type", media_type)
        .header("Docker-Content-Digest", digest.to_string())
        .header("ETag", format!("\"{digest}\""))
}

/// The media types an `Accept` header (or several) lists, or `None` when there is no
/// such header or it takes anything.
fn accepted(req: &Request) -> Option<Vec<String>> {
    let mut types = Vec::new();
    for (k, v) in &req.headers {
        if k.eq_ignore_ascii_case("Accept") {
            for t in v.split(',') {
                let t = t
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                if !t.is_empty() {
                    types.push(t);
                }
            }
        }
    }
    (!types.is_empty() && !types.iter().any(|t| t == "*/*")).then_some(types)
}

/// The linux/amd64 child of a manifest list, as distribution picks it for a client that
/// does not take lists.
fn default_platform_child(
    digest: &Digest,
    media_type: &str,
    bytes: &[u8],
) -> Option<crate::oci::Descriptor> {
    let raw = RawManifest {
        bytes: bytes.to_vec(),
        media_type: media_type.to_string(),
        digest: digest.clone(),
    };
    match raw.parse().ok()? {
        Parsed::Index(index) => index.manifests.into_iter().find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
        }),
        Parsed::Manifest(_) => None,
    }
}

/// A manifest's bytes from its bundle, rehashed; a 500 when it cannot be read or is
/// damaged (and the damage named on stderr).
fn read_manifest(cat: &Catalog, digest: &Digest) -> Result<Vec<u8>, Box<Reply>> {
    let unknown = || {
        Box::new(error(
            404,
            "MANIFEST_UNKNOWN",
            "manifest unknown",
            digest.as_str(),
        ))
    };
    let info = cat.blob(digest).ok_or_else(unknown)?;
    let bundle = cat.bundle_of(info);
    let bytes = bundle
        .read_entry(&digest.blob_path(), MAX_MANIFEST_SIZE)
        .map_err(|e| {
            eprintln!("error: cannot read manifest {digest}: {e}");
            Box::new(error(
                500,
                "UNKNOWN",
                "cannot read the manifest from the bundle",
                digest.as_str(),
            ))
        })?;
    let got = Digest::of(&bytes);
    if &got != digest {
        eprintln!(
            "error: manifest {digest} in bundle {} is damaged (its bytes hash to {got}); not served. \
             Run `airlock verify` on the bundle.",
            bundle.path().display()
        );
        return Err(Box::new(error(
            500,
            "UNKNOWN",
            "the bundle's copy of this manifest is damaged",
            digest.as_str(),
        )));
    }
    Ok(bytes)
}

fn blob(cat: &Catalog, req: &Request, name: &str, reference: &str) -> Reply {
    if !cat.repos.contains_key(name) {
        return name_unknown(name);
    }
    let Ok(digest) = Digest::parse(reference) else {
        return digest_invalid(reference);
    };
    let Some(info) = cat.blob(&digest) else {
        return error(404, "BLOB_UNKNOWN", "blob unknown to registry", reference);
    };
    let size = info.size;
    let base = |status: u16, start: u64, len: u64| Reply {
        status,
        headers: vec![
            ("Content-Type", "application/octet-stream".to_string()),
            ("Docker-Content-Digest", digest.to_string()),
            ("Accept-Ranges", "bytes".to_string()),
            ("ETag", format!("\"{digest}\"")),
        ],
        body: Body::Blob {
            bundle: info.bundle,
            digest: digest.clone(),
            start,
            len,
            full: start == 0 && len == size,
        },
    };
    match req.header("Range").map(|r| parse_range(r, size)) {
        None | Some(Range::Ignore) => base(200, 0, size),
        Some(Range::Part(start, end)) => base(206, start, end - start + 1)
            .header("Content-Range", format!("bytes {start}-{end}/{size}")),
        Some(Range::Unsatisfiable) => error(
            416,
            "BLOB_UNKNOWN",
            "requested range not satisfiable",
            reference,
        )
        .header("Content-Range", format!("bytes */{size}")),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Range {
    /// Inclusive first and last byte.
    Part(u64, u64),
    Unsatisfiable,
    /// Not a single byte range this server answers (serve the whole blob).
    Ignore,
}

/// Parses a `Range` header for one range of a `size`-byte blob (RFC 9110 §14.1.2).
fn parse_range(header: &str, size: u64) -> Range {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Range::Ignore;
    };
    if spec.contains(',') {
        return Range::Ignore;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Range::Ignore;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // A suffix: the last `b` bytes.
        return match b.parse::<u64>() {
            Ok(0) => Range::Unsatisfiable,
            Ok(n) if size > 0 => Range::Part(size.saturating_sub(n), size - 1),
            Ok(_) => Range::Unsatisfiable,
            Err(_) => Range::Ignore,
        };
    }
    let Ok(start) = a.parse::<u64>() else {
        return Range::Ignore;
    };
    let end = if b.is_empty() {
        size.saturating_sub(1)
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e.min(size.saturating_sub(1)),
            _ => return Range::Ignore,
        }
    };
    if start >= size {
        return Range::Unsatisfiable;
    }
    Range::Part(start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Range::Part(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), Range::Part(90, 99));
        assert_eq!(parse_range("bytes=90-200", 100), Range::Part(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), Range::Part(90, 99));
        assert_eq!(parse_range("bytes=-200", 100), Range::Part(0, 99));
        assert_eq!(parse_range("bytes=100-", 100), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 100), Range::Ignore);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Range::Ignore);
        assert_eq!(parse_range("items=0-1", 100), Range::Ignore);
    }

    #[test]
    fn links() {
        assert_eq!(
            next_link("/v2/_catalog", "a/b", 2),
            "</v2/_catalog?last=a%2Fb&n=2>; rel=\"next\""
        );
    }
}
