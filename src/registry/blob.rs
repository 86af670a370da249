//! A streamed blob download that survives dropped connections.
//!
//! Layers are large and links are flaky, so a body that fails mid-way (an I/O error,
//! or fewer bytes than the descriptor's size) is resumed with `Range: bytes=<pos>-`:
//! a 206 continues where it stopped, a 200 (server ignores ranges) is skipped forward
//! to `pos`. Resumes share the client's bounded retry budget. The reader never yields
//! more than the declared size; verifying the digest is the caller's job (it reads
//! through a `VerifyingReader`), so this layer only moves bytes.

use std::io::{self, Read};
use std::sync::Arc;

use ureq::BodyReader;
use ureq::http::Method;

use super::auth::Scope;
use super::error::{Kind, Op, display_url};
use super::request::{Ctx, Req};
use super::{Inner, RegistryError};
use crate::digest::Digest;

pub(crate) struct BlobReader {
    inner: Arc<Inner>,
    registry: String,
    repository: String,
    digest: Digest,
    size: u64,
    pos: u64,
    body: Option<BodyReader<'static>>,
    url: String,
    failures: u32,
}

impl BlobReader {
    /// Opens the blob (errors such as NotFound surface here, not on the first read).
    pub fn open(
        inner: Arc<Inner>,
        registry: &str,
        repository: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<BlobReader, RegistryError> {
        let mut r = BlobReader {
            inner,
            registry: registry.to_string(),
            repository: repository.to_string(),
            digest: digest.clone(),
            size,
            pos: 0,
            body: None,
            url: String::new(),
            failures: 0,
        };
        r.connect()?;
        Ok(r)
    }

    fn connect(&mut self) -> Result<(), RegistryError> {
        let url = format!(
            "{}/v2/{}/blobs/{}",
            self.inner.base(&self.registry),
            self.repository,
            self.digest
        );
        let ctx = Ctx {
            registry: &self.registry,
            repository: &self.repository,
            reference: self.digest.as_str(),
            kind: Kind::Blob,
            what: Op::GetBlob,
            scope: Scope::pull(&self.repository),
        };
        let mut req = Req::new(Method::GET, url);
        if self.pos > 0 {
            req = req.header("range", format!("bytes={}-", self.pos));
        }
        let answer = match self.inner.execute(&ctx, &mut req) {
            Ok(a) => a,
            Err(e) if self.pos > 0 && e.status() == Some(416) => {
                return Err(self.protocol(format!(
                    "the blob ends at byte {} but its descriptor says {} bytes",
                    self.pos, self.size
                )));
            }
            Err(e) => return Err(e),
        };
        self.url = display_url(&answer.url);
        let status = answer.status();
        let partial = self.pos > 0 && status == 206;
        if partial {
            // Content-Range: bytes <start>-<end>/<total>
            let start = answer
                .header("content-range")
                .and_then(|v| v.trim().strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|s| s.trim().parse::<u64>().ok());
            if start != Some(self.pos) {
                return Err(self.protocol(format!(
                    "a resumed download from byte {} got a range starting elsewhere",
                    self.pos
                )));
            }
        } else if !(200..300).contains(&status) || status == 206 && self.pos == 0 {
            return Err(self.protocol(format!("unexpected HTTP {status} for a blob download")));
        }
        let mut body = answer.response.into_body().into_reader();
        if self.pos > 0 && !partial {
            // The server ignored Range: skip what we already have.
            let skipped = io::copy(&mut (&mut body).take(self.pos), &mut io::sink())
                .map_err(|e| self.transport(e))?;
            if skipped != self.pos {
                return Err(self.transport(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the connection closed while skipping to the resume point",
                )));
            }
        }
        self.body = Some(body);
        Ok(())
    }

    fn protocol(&self, problem: String) -> RegistryError {
        RegistryError::Protocol {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            what: "a blob download",
            problem: format!("{problem} ({})", self.digest),
        }
    }

    fn transport(&self, e: io::Error) -> RegistryError {
        RegistryError::Transport {
            url: self.url.clone(),
            tls: false,
            source: ureq::Error::Io(e),
        }
    }

    /// Records a mid-body failure; errors out once the retry budget is spent.
    fn failed(&mut self, cause: io::Error) -> io::Result<()> {
        self.body = None;
        self.failures += 1;
        let policy = self.inner.policy();
        if self.failures >= policy.attempts {
            return Err(io::Error::other(RegistryError::RetriesExhausted {
                what: format!(
                    "download of {} from {}/{} (at byte {} of {})",
                    self.digest, self.registry, self.repository, self.pos, self.size
                ),
                attempts: self.failures,
                source: Box::new(self.transport(cause)),
            }));
        }
        std::thread::sleep(policy.delay(self.failures, None));
        Ok(())
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.pos >= self.size {
                return Ok(0);
            }
            if self.body.is_none() {
                self.connect().map_err(io::Error::other)?;
            }
            let Some(body) = self.body.as_mut() else {
                continue;
            };
            let want = (self.size - self.pos).min(buf.len() as u64) as usize;
            match body.read(&mut buf[..want]) {
                Ok(0) => {
                    let cause = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the registry ended the body after {} of {} bytes",
                            self.pos, self.size
                        ),
                    );
                    self.failed(cause)?;
                }
                Ok(n) => {
                    self.pos += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.failed(e)?,
            }
        }
    }
}
