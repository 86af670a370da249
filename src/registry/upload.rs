//! The push side: blob existence, cross-repository mounts, uploads (monolithic and
//! chunked), manifest PUTs, tag listing and the catalog.
//!
//! All push requests use the scope `repository:<repo>:pull,push`, so one token serves
//! a whole image push. Upload sessions follow the registry's `Location` exactly
//! (relative or absolute, its query such as `_state` kept whole). A blob no larger
//! than `chunk_size` goes as one streamed `PUT ?digest=`; a larger one goes as `PATCH`
//! chunks held in memory one at a time, so a chunk can be re-sent after a transient
//! failure (the registry's `Range` tells where to resume), then an empty `PUT`.
//!
//! In `PATCH` mode (`patch_uploads`, or learned from a registry that refused a
//! monolithic `PUT` with 400 `BLOB_UPLOAD_INVALID`; the refused blob is then started
//! over that way) every blob, however small, goes by `PATCH`: in chunks of
//! `chunk_size` when one is set, else as one streamed `PATCH`; then an empty `PUT`.
//! A manifest `HEAD` a registry does not implement falls back to `GET` (remembered).

use std::io::{self, Read};

use serde::Deserialize;
use ureq::http::Method;

use super::auth::Scope;
use super::error::{Kind, Op};
use super::request::{Answer, Ctx, Req, ReqBody};
use super::transport;
use super::{Client, Inner, RegistryError};
use crate::digest::Digest;
use crate::oci::RawManifest;

/// Pages of `tags/list` followed at most.
const MAX_TAG_PAGES: usize = 10_000;
/// Largest `tags/list` page read.
const MAX_TAG_PAGE: u64 = 16 * 1024 * 1024;
/// Uploads a registry refuses as `DIGEST_INVALID` (damaged in transit) are tried this often.
const DIGEST_REJECTED_ATTEMPTS: u32 = 3;
/// Repositories asked for per catalog page.
const CATALOG_PAGE: usize = 1000;

impl Client {
    /// True when `repository` on `registry` already holds the blob (`HEAD` 200).
    pub fn blob_exists(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        let inner = &self.inner;
        let ctx = push_ctx(
            registry,
            repository,
            digest.as_str(),
            Kind::Blob,
            Op::HeadBlob,
        );
        let url = format!("{}/v2/{repository}/blobs/{digest}", inner.base(registry));
        match inner.execute(&ctx, &mut Req::new(Method::HEAD, url)) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The digest `reference` (a tag or digest) resolves to on the registry, from a
    /// `HEAD` request's `Docker-Content-Digest`; `None` when it does not exist. Used to
    /// skip manifests and tags a target already holds.
    ///
    /// A registry (or a proxy in front of it) that does not implement `HEAD` on
    /// manifests (400, 405, 501) is asked with `GET` instead, and remembered so that
    /// later manifests go straight to `GET`; when `GET` is refused too, the answer is
    /// `None` ("unknown": the caller writes it, and a `PUT` of the same bytes is
    /// idempotent). An answer never makes a manifest be skipped unless the registry
    /// named the digest.
    pub(crate) fn manifest_digest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
    ) -> Result<Option<Digest>, RegistryError> {
        let inner = &self.inner;
        let url = format!(
            "{}/v2/{repository}/manifests/{reference}",
            inner.base(registry)
        );
        if !inner.quirks(registry).manifest_head_useless {
            let ctx = push_ctx(
                registry,
                repository,
                reference,
                Kind::Manifest,
                Op::HeadManifest,
            );
            let mut req = Req::new(Method::HEAD, url.clone())
                .header("accept", crate::oci::media::MANIFEST_ACCEPT);
            match inner.execute(&ctx, &mut req) {
                Ok(answer) => {
                    return Ok(answer
                        .header("docker-content-digest")
                        .and_then(|d| Digest::parse(d.trim()).ok()));
                }
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) if e.is_head_unsupported() => {
                    inner.learn(registry, |q| q.manifest_head_useless = true);
                }
                Err(e) => return Err(e),
            }
        }
        let ctx = push_ctx(
            registry,
            repository,
            reference,
            Kind::Manifest,
            Op::GetManifest,
        );
        let mut req =
            Req::new(Method::GET, url).header("accept", crate::oci::media::MANIFEST_ACCEPT);
        let mut answer = match inner.execute(&ctx, &mut req) {
            Ok(a) => a,
            Err(e) if e.is_not_found() || e.is_head_unsupported() => return Ok(None),
            Err(e) => return Err(e),
        };
        let bytes = answer
            .response
            .body_mut()
            .with_config()
            .limit(crate::oci::MAX_MANIFEST_SIZE)
            .read_to_vec();
        // The digest of the bytes served; a body that cannot be read is "unknown".
        Ok(match bytes {
            Ok(b) => Some(Digest::of(&b)),
            Err(_) => None,
        })
    }

    /// Asks the registry to mount `digest` from `from_repository`: true when mounted
    /// (201), false when the registry declined (202: upload it instead).
    pub fn mount_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        from_repository: &str,
    ) -> Result<bool, RegistryError> {
        let inner = &self.inner;
        let mut ctx = push_ctx(
            registry,
            repository,
            digest.as_str(),
            Kind::Blob,
            Op::MountBlob,
        );
        ctx.scope.from = Some(from_repository.to_string());
        let url = transport::with_query(
            &format!("{}/v2/{repository}/blobs/uploads/", inner.base(registry)),
            &[("mount", digest.as_str()), ("from", from_repository)],
        );
        let answer = inner.execute(&ctx, &mut Req::new(Method::POST, url))?;
        match answer.status() {
            201 => Ok(true),
            202 => {
                // The registry opened an ordinary upload session instead; let it expire
                // on the registry, or cancel it now (best effort).
                if let Some(loc) = location(&answer) {
                    let _ = inner.execute(&ctx, &mut Req::new(Method::DELETE, loc));
                }
                Ok(false)
            }
            s => Err(unexpected(&ctx, s)),
        }
    }

    /// Uploads `size` bytes read from `reader` as blob `digest`.
    pub fn upload_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        size: u64,
        reader: &mut dyn Read,
    ) -> Result<(), RegistryError> {
        let inner = &self.inner;
        let ctx = push_ctx(
            registry,
            repository,
            digest.as_str(),
            Kind::Blob,
            Op::UploadBlob,
        );
        let start_url = format!("{}/v2/{repository}/blobs/uploads/", inner.base(registry));
        let answer = inner.execute(&ctx, &mut Req::new(Method::POST, start_url))?;
        let mut loc = match answer.status() {
            202 => location(&answer).ok_or_else(|| no_location(&ctx))?,
            s => return Err(unexpected(&ctx, s)),
        };
        let mut source = SourceReader {
            inner: reader,
            error: None,
        };
        let source_err = |e: io::Error| RegistryError::UploadSource {
            registry: registry.to_string(),
            repository: repository.to_string(),
            digest: digest.clone(),
            source: e,
        };
        let chunk_size = inner.opts.chunk_size.max(1);
        let by_patch = inner.opts.patch_uploads || inner.quirks(registry).patch_uploads;
        let answer = if size <= chunk_size && !by_patch {
            let url = transport::with_query(&loc, &[("digest", digest.as_str())]);
            let mut req = Req::new(Method::PUT, url)
                .header("content-type", "application/octet-stream")
                .body(ReqBody::Stream {
                    reader: Some(&mut source),
                    len: size,
                });
            let result = inner.execute(&ctx, &mut req);
            if let Some(e) = source.error.take() {
                return Err(source_err(e));
            }
            result?
        } else if chunk_size == u64::MAX {
            // PATCH mode without --chunk-size: the whole blob as one streamed PATCH, in
            // constant memory (a stream is not re-sent; the caller starts over).
            if size > 0 {
                let mut req = Req::new(Method::PATCH, loc.clone())
                    .header("content-type", "application/octet-stream")
                    .header("content-range", format!("0-{}", size - 1))
                    .body(ReqBody::Stream {
                        reader: Some(&mut source),
                        len: size,
                    });
                let result = inner.execute(&ctx, &mut req);
                if let Some(e) = source.error.take() {
                    return Err(source_err(e));
                }
                let answer = result?;
                loc = match answer.status() {
                    202 | 204 => location(&answer).ok_or_else(|| no_location(&ctx))?,
                    s => return Err(unexpected(&ctx, s)),
                };
            }
            let url = transport::with_query(&loc, &[("digest", digest.as_str())]);
            inner.execute(&ctx, &mut Req::new(Method::PUT, url))?
        } else {
            let mut buf = Vec::new();
            let mut offset = 0u64;
            while offset < size {
                let want = (size - offset).min(chunk_size);
                buf.clear();
                let got = (&mut source)
                    .take(want)
                    .read_to_end(&mut buf)
                    .map_err(source_err)?;
                if (got as u64) < want {
                    return Err(source_err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the content ended after {} of {size} bytes",
                            offset + got as u64
                        ),
                    )));
                }
                loc = patch_chunk(inner, &ctx, &loc, offset, &buf)?;
                offset += want;
            }
            let url = transport::with_query(&loc, &[("digest", digest.as_str())]);
            inner.execute(&ctx, &mut Req::new(Method::PUT, url))?
        };
        if answer.status() != 201 && answer.status() != 204 && answer.status() != 200 {
            return Err(unexpected(&ctx, answer.status()));
        }
        check_digest(&ctx, &answer, digest)
    }

    /// Uploads blob `digest` from content that `open` can produce again, starting the
    /// whole upload over in a new session when it fails in a way worth another try: a
    /// dropped or stalled connection, 429/5xx, or a registry that received other bytes
    /// than were sent (`DIGEST_INVALID`: the content is verified locally, so the damage
    /// happened in transit). A streamed body cannot be replayed within one session, so
    /// this is the retry for uploads; the attempts and backoff are the client's policy.
    /// Errors reading the local content (from `open` or while streaming) are not
    /// retried.
    pub(crate) fn upload_blob_reopening<'r>(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        size: u64,
        open: &mut dyn FnMut() -> io::Result<Box<dyn Read + 'r>>,
    ) -> Result<(), RegistryError> {
        let policy = self.inner.policy();
        let (mut failures, mut rejected) = (0u32, 0u32);
        loop {
            let mut reader = open().map_err(|e| RegistryError::UploadSource {
                registry: registry.to_string(),
                repository: repository.to_string(),
                digest: digest.clone(),
                source: e,
            })?;
            let err = match self.upload_blob(registry, repository, digest, size, &mut reader) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            // A registry that takes blobs only by PATCH: this blob (and every later
            // one to this registry) goes that way, starting over in a new session.
            let by_patch =
                self.inner.opts.patch_uploads || self.inner.quirks(registry).patch_uploads;
            if err.is_monolithic_refused() && !by_patch {
                self.inner.learn(registry, |q| q.patch_uploads = true);
                continue;
            }
            // Damage in transit is retried at once, a few times, as `save` does with
            // wrong bytes; trouble on the registry's side with backoff.
            let (count, limit, delay) = if err.is_digest_rejected() {
                rejected += 1;
                (rejected, DIGEST_REJECTED_ATTEMPTS, false)
            } else if err.is_transient() {
                failures += 1;
                (failures, policy.attempts, true)
            } else {
                return Err(err);
            };
            if count >= limit {
                return Err(RegistryError::RetriesExhausted {
                    what: format!("upload of {digest} to {registry}/{repository}"),
                    attempts: count,
                    source: Box::new(err),
                });
            }
            if delay {
                std::thread::sleep(policy.delay(failures, None));
            }
        }
    }

    /// Pushes a manifest or index byte-exact under `reference` (tag or digest) and
    /// returns its digest (checked against the registry's `Docker-Content-Digest`).
    pub fn put_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
        manifest: &RawManifest,
    ) -> Result<Digest, RegistryError> {
        self.put_manifest_subject(registry, repository, reference, manifest)
            .map(|(digest, _)| digest)
    }

    /// [`Client::put_manifest`], also returning the `OCI-Subject` header of the answer:
    /// a registry with the OCI 1.1 referrers API sends it for a manifest with a
    /// `subject` (and then indexes the referrer itself; `push` writes the referrers
    /// tag index only when it is absent).
    pub fn put_manifest_subject(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
        manifest: &RawManifest,
    ) -> Result<(Digest, Option<Digest>), RegistryError> {
        let inner = &self.inner;
        let ctx = push_ctx(
            registry,
            repository,
            reference,
            Kind::Manifest,
            Op::PutManifest,
        );
        if reference.contains(':') && reference != manifest.digest.as_str() {
            return Err(RegistryError::DigestMismatch {
                registry: registry.to_string(),
                repository: repository.to_string(),
                reference: reference.to_string(),
                expected: reference.to_string(),
                actual: manifest.digest.clone(),
            });
        }
        let url = format!(
            "{}/v2/{repository}/manifests/{reference}",
            inner.base(registry)
        );
        let mut req = Req::new(Method::PUT, url)
            .header("content-type", manifest.media_type.clone())
            .body(ReqBody::Bytes(&manifest.bytes));
        let answer = inner.execute(&ctx, &mut req)?;
        check_digest(&ctx, &answer, &manifest.digest)?;
        let subject = answer
            .header("oci-subject")
            .and_then(|d| Digest::parse(d.trim()).ok());
        Ok((manifest.digest.clone(), subject))
    }

    /// Every tag of `repository`, following `Link: <…>; rel="next"` pages.
    pub fn list_tags(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Vec<String>, RegistryError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let ctx = Ctx {
            registry,
            repository,
            reference: "",
            kind: Kind::Repository,
            what: Op::ListTags,
            scope: Scope::pull(repository),
        };
        let url = format!("{}/v2/{repository}/tags/list", self.inner.base(registry));
        self.paginated_list(&ctx, url, "a tag list", |p: Page| {
            p.tags.unwrap_or_default()
        })
    }

    /// Every repository the registry lists in its catalog (`GET /v2/_catalog?n=…`),
    /// following `Link: <…>; rel="next"` pages. The token scope is `registry:catalog:*`.
    /// A registry that offers no catalog answers 404 or 401/403 (see [`RegistryError`]).
    pub fn catalog(&self, registry: &str) -> Result<Vec<String>, RegistryError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            repositories: Option<Vec<String>>,
        }
        let ctx = Ctx {
            registry,
            repository: "",
            reference: "",
            kind: Kind::Repository,
            what: Op::Catalog,
            scope: Scope {
                repository: String::new(),
                push: false,
                from: None,
            },
        };
        let url = format!("{}/v2/_catalog?n={CATALOG_PAGE}", self.inner.base(registry));
        self.paginated_list(&ctx, url, "the catalog", |p: Page| {
            p.repositories.unwrap_or_default()
        })
    }

    /// GETs `url` and every page its `Link: <…>; rel="next"` headers lead to (at most
    /// [`MAX_TAG_PAGES`], each at most [`MAX_TAG_PAGE`] bytes), collecting `items(page)`.
    fn paginated_list<P: serde::de::DeserializeOwned>(
        &self,
        ctx: &Ctx<'_>,
        mut url: String,
        what: &'static str,
        items: impl Fn(P) -> Vec<String>,
    ) -> Result<Vec<String>, RegistryError> {
        let protocol = |problem: String| RegistryError::Protocol {
            registry: ctx.registry.to_string(),
            repository: ctx.repository.to_string(),
            what,
            problem,
        };
        let mut all = Vec::new();
        for _ in 0..MAX_TAG_PAGES {
            let answer = self
                .inner
                .execute(ctx, &mut Req::new(Method::GET, url.clone()))?;
            let (bytes, next) = answer.into_page(MAX_TAG_PAGE)?;
            let page: P = serde_json::from_slice(&bytes)
                .map_err(|e| protocol(format!("the answer is not {what} ({e})")))?;
            all.extend(items(page));
            match next {
                Some(n) => url = n,
                None => return Ok(all),
            }
        }
        Err(protocol(format!("more than {MAX_TAG_PAGES} pages")))
    }
}

fn push_ctx<'a>(
    registry: &'a str,
    repository: &'a str,
    reference: &'a str,
    kind: Kind,
    what: Op,
) -> Ctx<'a> {
    Ctx {
        registry,
        repository,
        reference,
        kind,
        what,
        scope: Scope::push(repository),
    }
}

/// Sends one chunk at `offset`; after a failure, asks the registry how far it got and
/// sends the rest of the chunk from there. Returns the next upload location.
fn patch_chunk(
    inner: &Inner,
    ctx: &Ctx<'_>,
    loc: &str,
    offset: u64,
    chunk: &[u8],
) -> Result<String, RegistryError> {
    let mut loc = loc.to_string();
    let mut done = 0usize;
    let mut recoveries = 0u32;
    loop {
        let part = &chunk[done..];
        let start = offset + done as u64;
        let end = start + part.len() as u64 - 1;
        let mut req = Req::new(Method::PATCH, loc.clone())
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{start}-{end}"))
            .body(ReqBody::Bytes(part));
        let err = match inner.execute(ctx, &mut req) {
            Ok(a) if a.status() == 202 || a.status() == 204 => {
                return location(&a).ok_or_else(|| no_location(ctx));
            }
            Ok(a) => unexpected(ctx, a.status()),
            Err(e) => e,
        };
        // A failed or refused (416) chunk: where does the registry stand?
        recoveries += 1;
        if recoveries > inner.policy().attempts {
            return Err(err);
        }
        let status = inner.execute(ctx, &mut Req::new(Method::GET, loc.clone()));
        let Ok(status) = status else { return Err(err) };
        let have = status
            .header("range")
            .and_then(parse_range_end)
            .map_or(0, |end| end + 1);
        if let Some(l) = location(&status) {
            loc = l;
        }
        if have < offset || have > offset + chunk.len() as u64 {
            return Err(err);
        }
        if have == offset + chunk.len() as u64 {
            return Ok(loc);
        }
        done = (have - offset) as usize;
    }
}

/// `0-1234` or `bytes=0-1234` → 1234.
fn parse_range_end(v: &str) -> Option<u64> {
    let v = v.trim();
    let v = v.strip_prefix("bytes=").unwrap_or(v);
    v.split_once('-')?.1.trim().parse().ok()
}

fn location(answer: &Answer) -> Option<String> {
    answer
        .header("location")
        .and_then(|l| transport::resolve(&answer.url, l))
}

fn no_location(ctx: &Ctx<'_>) -> RegistryError {
    RegistryError::Protocol {
        registry: ctx.registry.to_string(),
        repository: ctx.repository.to_string(),
        what: "an upload",
        problem: "the answer has no Location for the upload session".into(),
    }
}

fn unexpected(ctx: &Ctx<'_>, status: u16) -> RegistryError {
    RegistryError::Protocol {
        registry: ctx.registry.to_string(),
        repository: ctx.repository.to_string(),
        what: ctx.what.as_str(),
        problem: format!("unexpected HTTP {status}"),
    }
}

fn check_digest(ctx: &Ctx<'_>, answer: &Answer, expected: &Digest) -> Result<(), RegistryError> {
    match answer.header("docker-content-digest").map(str::trim) {
        Some(d) if d.starts_with("sha256:") && d != expected.as_str() => {
            Err(RegistryError::DigestMismatch {
                registry: ctx.registry.to_string(),
                repository: ctx.repository.to_string(),
                reference: ctx.reference.to_string(),
                expected: expected.to_string(),
                actual: Digest::parse(d).unwrap_or_else(|_| expected.clone()),
            })
        }
        _ => Ok(()),
    }
}

/// Remembers the first error of the local reader, so a failed upload can say whether
/// the registry or the local source broke.
struct SourceReader<'a> {
    inner: &'a mut dyn Read,
    error: Option<io::Error>,
}

impl Read for SourceReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => Ok(n),
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.error.get_or_insert(e);
                Err(copy)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_headers() {
        assert_eq!(parse_range_end("0-1023"), Some(1023));
        assert_eq!(parse_range_end("bytes=0-9"), Some(9));
        assert_eq!(parse_range_end("junk"), None);
    }
}
