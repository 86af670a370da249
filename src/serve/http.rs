//! The HTTP/1.1 this server needs, on a plain `TcpStream`: read a request head
//! (parsed by `httparse`), write an answer with a `Content-Length`, keep the connection
//! open for the next request, and close it mid-body when a blob turns out damaged.
//!
//! It is deliberately small: `serve` only answers `GET` and `HEAD` (everything else is
//! refused before its body is read, and the connection closed after the answer), every
//! answer has a known length, and nothing is chunked. Owning the socket is what lets a
//! damaged blob's response be cut off ([`Conn::abort`]): a client then sees the body
//! end before `Content-Length` and fails, instead of receiving wrong bytes.
//!
//! With `--tls-cert`/`--tls-key` the same exchange runs inside rustls
//! ([`tls_config`]); the handshake happens on the worker's first read.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The largest request head accepted (request line and headers).
const MAX_HEAD: usize = 32 * 1024;
/// How long a read waits before the caller gets to check for Ctrl-C or idleness.
pub(crate) const POLL: Duration = Duration::from_millis(500);

/// A parsed request head.
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
    /// Whether the connection may carry another request after this one.
    pub keep_alive: bool,
    /// Whether the request announces a body (which is never read).
    pub has_body: bool,
}

impl Request {
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

/// What reading the next request gave.
pub(crate) enum Next {
    Request(Request),
    /// The client closed the connection (between requests).
    Closed,
    /// Nothing complete arrived within [`POLL`]; call again (or give up when idle).
    Idle,
    /// The head is not HTTP/1.x or too large: answer 400 and close.
    Bad(String),
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

/// A connection's byte stream: plain TCP or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Stream {
    fn socket(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &t.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(t) => t.flush(),
        }
    }
}

/// One client connection: the socket and the bytes read past the last request head.
pub(crate) struct Conn {
    stream: Stream,
    pub peer: SocketAddr,
    pending: Vec<u8>,
}

impl Conn {
    pub fn new(
        stream: TcpStream,
        peer: SocketAddr,
        tls: Option<&Arc<rustls::ServerConfig>>,
    ) -> io::Result<Conn> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(POLL))?;
        stream.set_write_timeout(Some(Duration::from_secs(120)))?;
        stream.set_nodelay(true)?;
        let stream = match tls {
            None => Stream::Plain(stream),
            Some(config) => {
                let conn =
                    rustls::ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
                Stream::Tls(Box::new(rustls::StreamOwned::new(conn, stream)))
            }
        };
        Ok(Conn {
            stream,
            peer,
            pending: Vec::new(),
        })
    }

    /// Reads until a whole request head is buffered, for at most [`POLL`].
    pub fn next_request(&mut self) -> Next {
        loop {
            if let Some(end) = find_head_end(&self.pending) {
                let head: Vec<u8> = self.pending.drain(..end).collect();
                return match parse_head(&head) {
                    Ok(r) => Next::Request(r),
                    Err(e) => Next::Bad(e),
                };
            }
            // A TLS handshake (or other binary) never ends a head: answer at once, so a
            // client that tries HTTPS first learns it is plain HTTP and falls back.
            if self
                .pending
                .first()
                .is_some_and(|b| !b.is_ascii_uppercase())
            {
                return Next::Bad("not an HTTP/1.x request (a TLS handshake?)".to_string());
            }
            if self.pending.len() > MAX_HEAD {
                return Next::Bad("request head too large".to_string());
            }
            let mut buf = [0u8; 8192];
            match self.stream.read(&mut buf) {
                Ok(0) => return Next::Closed,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Next::Idle;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Closed,
            }
        }
    }

    /// Writes a status line and headers (plus `Content-Length: len`).
    pub fn write_head(
        &mut self,
        status: u16,
        headers: &[(&str, String)],
        len: u64,
        keep_alive: bool,
    ) -> io::Result<()> {
        let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("Content-Length: {len}\r\n"));
        if !keep_alive {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        self.stream.write_all(head.as_bytes())?;
        self.stream.flush()
    }

    pub fn write_body(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Cuts the connection (a response stops mid-body; the client sees it short).
    pub fn abort(&mut self) {
        let _ = self.stream.socket().shutdown(Shutdown::Both);
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn parse_head(head: &[u8]) -> Result<Request, String> {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err("incomplete request head".to_string()),
        Err(e) => return Err(format!("malformed request: {e}")),
    }
    let method = req.method.unwrap_or("").to_string();
    let target = req.path.unwrap_or("");
    let version = if req.version == Some(0) {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    };
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut r = Request {
        method,
        path: decode(path),
        query: query.to_string(),
        version,
        headers,
        keep_alive: true,
        has_body: false,
    };
    let connection = r.header("Connection").unwrap_or("").to_ascii_lowercase();
    r.keep_alive = if version == "HTTP/1.0" {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    };
    r.has_body = r.header("Transfer-Encoding").is_some()
        || r.header("Content-Length").is_some_and(|v| v.trim() != "0");
    Ok(r)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heads() {
        let r = parse_head(
            b"GET /v2/_catalog?n=2&last=a%2Fb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/v2/_catalog");
        assert_eq!(r.query_param("n").as_deref(), Some("2"));
        assert_eq!(r.query_param("last").as_deref(), Some("a/b"));
        assert!(!r.keep_alive);
        assert!(!r.has_body);
        let r = parse_head(b"PUT /v2/x HTTP/1.0\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert!(!r.keep_alive && r.has_body);
        assert!(parse_head(b"nonsense\r\n\r\n").is_err());
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
    }
}
