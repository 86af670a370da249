//! The HTTP side of `serve` that is ours, not hyper's: the request as [`routes`] sees
//! it ([`Request`], built from hyper's parsed head), the response body type
//! ([`Answer`]) and the rustls server configuration ([`tls_config`]).
//!
//! hyper parses requests, keeps connections alive and writes responses; an
//! [`Answer`] is either a small in-memory body or the receiving end of a bounded
//! channel a blocking reader fills with blob chunks ([`Chunk`]). It counts the bytes it
//! hands to hyper and, when hyper drops it (answer done, client gone, or cut off),
//! writes the request's access log line with the outcome. A chunk that reports a
//! failure (a damaged blob, a read error) becomes a body error, on which hyper aborts
//! the connection: the client sees the body end before its `Content-Length` and fails,
//! instead of receiving wrong bytes.
//!
//! [`routes`]: super::routes

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::Context as _;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::mpsc;

use super::flight::{Member, Step};
use crate::digest::Hasher;

/// A request head, as the routes and the access log read it.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: String,
    /// The path, percent-decoded, without the query.
    pub path: String,
    /// The raw query string (after `?`), empty when there is none.
    pub query: String,
    /// `HTTP/1.0` or `HTTP/1.1`, for the access log.
    pub version: &'static str,
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The request as hyper parsed it (the body is never read).
    pub fn from_parts(parts: &hyper::http::request::Parts) -> Request {
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Request {
            method: parts.method.as_str().to_string(),
            path: decode(path),
            query: query.to_string(),
            version: if parts.version == hyper::Version::HTTP_10 {
                "HTTP/1.0"
            } else {
                "HTTP/1.1"
            },
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).trim().to_string(),
                    )
                })
                .collect(),
        }
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The value of query parameter `key`, percent-decoded.
    pub fn query_param(&self, key: &str) -> Option<String> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then(|| decode(&v.replace('+', " ")))
        })
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The server side of TLS from a PEM certificate chain and a PEM private key.
pub(crate) fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .with_context(|| {
            format!(
                "cannot read certificates from --tls-cert {}",
                cert.display()
            )
        })?;
    if certs.is_empty() {
        anyhow::bail!("--tls-cert {} holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read a private key from --tls-key {}", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS set-up")?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("--tls-cert and --tls-key do not make a usable pair")?;
    Ok(Arc::new(config))
}

/// What a blob reader sends down an [`Answer`]'s channel.
pub(crate) enum Chunk {
    Data(Bytes),
    /// The answer cannot be completed; the connection is cut.
    Failed(Sent),
}

/// How sending an answer ended (for the access log).
#[derive(Debug, Clone)]
pub(crate) enum Sent {
    /// Every byte handed over (the count of body bytes).
    Done(u64),
    /// The client went away after this many body bytes.
    ClientGone(u64),
    /// Reading the bundle failed after this many body bytes.
    SourceFailed(u64, String),
    /// The blob's bytes do not hash to its digest (they hash to this); cut before its
    /// last bytes.
    Damaged(u64, String),
}

/// Starts a reader of a blob from an offset, hashing on from a state (for a member of a
/// flight that fell behind; see [`flight`](super::flight)).
pub(crate) type ReadOn = Box<dyn FnOnce(u64, Hasher) -> mpsc::Receiver<Chunk> + Send>;

impl Sent {
    /// The same outcome, counted for an answer that had sent `sent` bytes (a reader
    /// that took over mid-blob counts only its own).
    fn after(self, sent: u64) -> Sent {
        match self {
            Sent::Done(_) => Sent::Done(sent),
            Sent::ClientGone(_) => Sent::ClientGone(sent),
            Sent::SourceFailed(_, e) => Sent::SourceFailed(sent, e),
            Sent::Damaged(_, got) => Sent::Damaged(sent, got),
        }
    }
}

enum Source {
    Bytes(Option<Bytes>),
    Channel(mpsc::Receiver<Chunk>),
    Flight(Member, Option<ReadOn>),
}

/// What an [`Answer`] calls with its outcome (writes the access log line).
type OnEnd = Box<dyn FnOnce(&Sent) + Send>;

/// A response body that writes its request's access log line when it is dropped.
pub(crate) struct Answer {
    source: Source,
    /// Body bytes promised (`Content-Length`; 0 for `HEAD`).
    len: u64,
    sent: u64,
    failed: Option<Sent>,
    on_end: Option<OnEnd>,
}

impl Answer {
    pub fn bytes(b: Bytes) -> Answer {
        Answer::new(b.len() as u64, Source::Bytes(Some(b)))
    }

    pub fn empty() -> Answer {
        Answer::new(0, Source::Bytes(None))
    }

    /// `len` bytes arriving on `rx`.
    pub fn channel(len: u64, rx: mpsc::Receiver<Chunk>) -> Answer {
        Answer::new(len, Source::Channel(rx))
    }

    /// A blob of `len` bytes taken from a shared read; `read_on` takes over if the
    /// member falls behind.
    pub fn flight(len: u64, member: Member, read_on: ReadOn) -> Answer {
        Answer::new(len, Source::Flight(member, Some(read_on)))
    }

    fn new(len: u64, source: Source) -> Answer {
        Answer {
            source,
            len,
            sent: 0,
            failed: None,
            on_end: None,
        }
    }

    /// Calls `f` with the outcome once the body is done with (sent, failed or dropped).
    pub fn on_end(mut self, f: impl FnOnce(&Sent) + Send + 'static) -> Answer {
        self.on_end = Some(Box::new(f));
        self
    }

    /// Records a failure; the error makes hyper abort the connection.
    fn fail(&mut self, why: Sent) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let e = io::Error::other(match &why {
            Sent::Damaged(..) => "damaged blob".to_string(),
            Sent::SourceFailed(_, e) => e.clone(),
            _ => "answer cut off".to_string(),
        });
        self.failed = Some(why);
        self.source = Source::Bytes(None);
        Poll::Ready(Some(Err(e)))
    }
}

impl http_body::Body for Answer {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        match &mut this.source {
            Source::Bytes(b) => Poll::Ready(b.take().map(|b| {
                this.sent += b.len() as u64;
                Ok(Frame::data(b))
            })),
            Source::Channel(rx) => match rx.poll_recv(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Some(Chunk::Data(b))) => {
                    this.sent += b.len() as u64;
                    Poll::Ready(Some(Ok(Frame::data(b))))
                }
                Poll::Ready(Some(Chunk::Failed(why))) => {
                    let sent = this.sent;
                    this.fail(why.after(sent))
                }
                Poll::Ready(None) if this.sent < this.len => {
                    let sent = this.sent;
                    this.fail(Sent::SourceFailed(sent, "the blob ends early".to_string()))
                }
                Poll::Ready(None) => Poll::Ready(None),
            },
            Source::Flight(member, read_on) => match member.poll_next(cx) {
                Step::Pending => Poll::Pending,
                Step::Data(b) => {
                    this.sent += b.len() as u64;
                    Poll::Ready(Some(Ok(Frame::data(b))))
                }
                Step::End if this.sent < this.len => {
                    let sent = this.sent;
                    this.fail(Sent::SourceFailed(sent, "the blob ends early".to_string()))
                }
                Step::End => Poll::Ready(None),
                Step::Failed { damaged: true, why } => {
                    let sent = this.sent;
                    this.fail(Sent::Damaged(sent, why))
                }
                Step::Failed { why, .. } => {
                    let sent = this.sent;
                    this.fail(Sent::SourceFailed(sent, why))
                }
                Step::Lagged { offset, hashed } => match read_on.take() {
                    Some(read_on) => {
                        this.source = Source::Channel(read_on(offset, hashed));
                        Pin::new(this).poll_frame(cx)
                    }
                    None => {
                        let sent = this.sent;
                        this.fail(Sent::SourceFailed(
                            sent,
                            "the shared read fell behind".into(),
                        ))
                    }
                },
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.source {
            Source::Bytes(b) => b.is_none(),
            Source::Channel(_) | Source::Flight(..) => {
                self.failed.is_none() && self.sent >= self.len
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len.saturating_sub(self.sent))
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        let Some(f) = self.on_end.take() else {
            return;
        };
        let outcome = match self.failed.take() {
            Some(why) => why,
            None if self.sent >= self.len => Sent::Done(self.sent),
            None => Sent::ClientGone(self.sent),
        };
        f(&outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_from_parsed_heads() {
        let (parts, ()) = hyper::Request::get("/v2/_catalog?n=2&last=a%2Fb")
            .header("Host", "x")
            .body(())
            .unwrap()
            .into_parts();
        let r = Request::from_parts(&parts);
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/v2/_catalog");
        assert_eq!(r.query_param("n").as_deref(), Some("2"));
        assert_eq!(r.query_param("last").as_deref(), Some("a/b"));
        assert_eq!(r.header("HOST"), Some("x"));
        assert_eq!(r.version, "HTTP/1.1");
    }
}
