//! A small client for the Docker engine API: what `docker-daemon:` sources and
//! `airlock load` need, and nothing more (ping, version, inspect, save, load).
//!
//! The endpoint comes from `DOCKER_HOST` as the docker CLI reads it: `unix:///path`
//! (the default is `unix:///var/run/docker.sock`) or `tcp://host:port` (plain HTTP; TLS
//! to a remote engine is not supported). ureq does all of the HTTP; for a unix socket
//! it is given a [`Connector`] that opens a [`UnixStream`] instead of a TCP socket,
//! so requests go to `http://localhost/...` and never touch a resolver or the network.
//!
//! Requests use unversioned paths (`/images/get`), which every engine answers with
//! its own default API version; the bodies airlock sends and reads (tar streams,
//! `docker inspect` JSON, the load progress lines) have been stable since API 1.24.
//! Image tars flow through in both directions as streams, never held in memory.
//! Every error names the endpoint and, where it helps, what the operator can do.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, ShutdownHandle, Transport,
};

/// The endpoint used when `DOCKER_HOST` is not set.
pub(crate) const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Why a request to the engine failed. Each message names the endpoint.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "DOCKER_HOST `{0}` is not supported (expected unix:///path/to/docker.sock or tcp://host:port)"
    )]
    BadHost(String),
    #[error(
        "cannot reach the Docker engine at {endpoint}: {source} (is dockerd running? set DOCKER_HOST to its socket, for example unix:///var/run/docker.sock)"
    )]
    Unreachable {
        endpoint: String,
        #[source]
        source: ureq::Error,
    },
    #[error("the Docker engine at {endpoint} answered {request} with HTTP {status}: {message}")]
    Api {
        endpoint: String,
        request: String,
        status: u16,
        message: String,
    },
    #[error("the Docker engine at {endpoint} failed to load the images: {message}")]
    Load { endpoint: String, message: String },
    #[error("the Docker engine at {endpoint} failed to pull {image}: {message}")]
    Pull {
        endpoint: String,
        image: String,
        message: String,
    },
    #[error("reading the answer of the Docker engine at {endpoint} to {request}: {source}")]
    Io {
        endpoint: String,
        request: String,
        #[source]
        source: io::Error,
    },
}

impl EngineError {
    /// Whether the engine said the object does not exist (HTTP 404), as for an image
    /// it does not have.
    pub fn is_not_found(&self) -> bool {
        matches!(self, EngineError::Api { status: 404, .. })
    }
}

/// What [`Engine::version`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineVersion {
    /// The engine's release, `20.10.24+dfsg1`.
    pub version: String,
    /// The API version it speaks by default, `1.41`.
    pub api_version: String,
    /// `linux` (or `windows`).
    pub os: String,
    /// Go's architecture name: `amd64`, `arm64`.
    pub arch: String,
}

/// A connection to one Docker engine.
#[derive(Clone)]
pub struct Engine {
    agent: ureq::Agent,
    /// `http://localhost` for a unix socket, `http://host:port` for tcp.
    base: String,
    /// The endpoint as the operator wrote it, for messages.
    endpoint: String,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl Engine {
    /// The engine `DOCKER_HOST` names, or the default socket.
    pub(crate) fn from_env() -> Result<Engine, EngineError> {
        match std::env::var("DOCKER_HOST") {
            Ok(h) if !h.is_empty() => Engine::new(&h),
            _ => Engine::new(DEFAULT_HOST),
        }
    }

    /// An engine at `unix:///path` or `tcp://host:port` (`http://host:port` is
    /// accepted too). Nothing is contacted yet.
    pub fn new(host: &str) -> Result<Engine, EngineError> {
        // No proxy: the engine is local (a socket) or named explicitly by DOCKER_HOST.
        let config = ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .user_agent(concat!("airlock/", env!("CARGO_PKG_VERSION")))
            .build();
        if let Some(path) = host.strip_prefix("unix://") {
            if path.is_empty() || !path.starts_with('/') {
                return Err(EngineError::BadHost(host.to_string()));
            }
            let connector = UnixConnector {
                path: PathBuf::from(path),
            };
            return Ok(Engine {
                agent: ureq::Agent::with_parts(config, connector, UnixResolver),
                base: "http://localhost".to_string(),
                endpoint: host.to_string(),
            });
        }
        let hostport = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
            .ok_or_else(|| EngineError::BadHost(host.to_string()))?
            .trim_end_matches('/');
        if hostport.is_empty() || hostport.contains('/') {
            return Err(EngineError::BadHost(host.to_string()));
        }
        // Docker's own default for tcp:// without a port is 2375 (plain HTTP).
        let hostport = if hostport
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.contains(']'))
        {
            hostport.to_string()
        } else {
            format!("{hostport}:2375")
        };
        Ok(Engine {
            agent: ureq::Agent::new_with_config(config),
            base: format!("http://{hostport}"),
            endpoint: host.to_string(),
        })
    }

    /// The endpoint as given (`unix:///var/run/docker.sock`), for messages.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn unreachable(&self, source: ureq::Error) -> EngineError {
        EngineError::Unreachable {
            endpoint: self.endpoint.clone(),
            source,
        }
    }

    fn io(&self, request: &str, source: io::Error) -> EngineError {
        EngineError::Io {
            endpoint: self.endpoint.clone(),
            request: request.to_string(),
            source,
        }
    }

    /// Turns a non-2xx answer into an error carrying the engine's `message`.
    fn check(
        &self,
        request: &str,
        mut resp: ureq::http::Response<ureq::Body>,
    ) -> Result<ureq::http::Response<ureq::Body>, EngineError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_string()
            .unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
            .unwrap_or_else(|| body.trim().to_string());
        Err(EngineError::Api {
            endpoint: self.endpoint.clone(),
            request: request.to_string(),
            status: status.as_u16(),
            message,
        })
    }

    fn get_json(&self, path: &str) -> Result<serde_json::Value, EngineError> {
        let request = format!("GET {path}");
        let resp = self
            .agent
            .get(self.url(path))
            .call()
            .map_err(|e| self.unreachable(e))?;
        let mut resp = self.check(&request, resp)?;
        let text = resp
            .body_mut()
            .with_config()
            .limit(16 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| self.io(&request, e.into_io()))?;
        serde_json::from_str(&text).map_err(|e| self.io(&request, io::Error::other(e)))
    }

    /// `GET /_ping`: is the engine there and answering?
    pub fn ping(&self) -> Result<(), EngineError> {
        let resp = self
            .agent
            .get(self.url("/_ping"))
            .call()
            .map_err(|e| self.unreachable(e))?;
        self.check("GET /_ping", resp)?;
        Ok(())
    }

    /// `GET /version`: the engine's release, API version and platform.
    pub fn version(&self) -> Result<EngineVersion, EngineError> {
        let v = self.get_json("/version")?;
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        Ok(EngineVersion {
            version: s("Version"),
            api_version: s("ApiVersion"),
            os: s("Os"),
            arch: s("Arch"),
        })
    }

    /// `GET /images/{name}/json`, as `docker image inspect` shows it. An image the
    /// engine does not have gives an error for which [`EngineError::is_not_found`] holds.
    pub fn inspect(&self, name: &str) -> Result<serde_json::Value, EngineError> {
        // Names hold `/`, `:` and `@`, which the engine's router accepts unescaped.
        self.get_json(&format!("/images/{name}/json"))
    }

    /// `GET /images/get?names=…`: the `docker save` tar of these images, streamed.
    pub fn save(&self, names: &[String]) -> Result<impl Read + Send + 'static, EngineError> {
        let request = format!("GET /images/get?names={}", names.join(","));
        let mut req = self.agent.get(self.url("/images/get"));
        for n in names {
            req = req.query("names", n);
        }
        let resp = req.call().map_err(|e| self.unreachable(e))?;
        let resp = self.check(&request, resp)?;
        let endpoint = self.endpoint.clone();
        Ok(ContextReader {
            inner: resp.into_body().into_reader(),
            what: format!("the image tar from the Docker engine at {endpoint}"),
        })
    }

    /// `POST /images/load`: streams a `docker load` tar to the engine and returns what
    /// it printed (`Loaded image: app:1` lines). An `errorDetail` in the engine's
    /// output becomes [`EngineError::Load`].
    pub fn load(&self, mut body: impl Read) -> Result<String, EngineError> {
        let request = "POST /images/load";
        let resp = self
            .agent
            .post(self.url("/images/load"))
            .query("quiet", "1")
            .header("Content-Type", "application/x-tar")
            .send(ureq::SendBody::from_reader(&mut body))
            .map_err(|e| self.unreachable(e))?;
        let mut resp = self.check(request, resp)?;
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| self.io(request, e.into_io()))?;
        parse_load_output(&text).map_err(|message| EngineError::Load {
            endpoint: self.endpoint.clone(),
            message,
        })
    }

    /// `POST /images/create?fromImage=…&tag=…`: pulls `image` (a repository with its
    /// registry) at `reference` (a tag or a digest), for `platform` when given, as
    /// `docker pull` does. Returns the engine's status lines; an `errorDetail` in them
    /// becomes [`EngineError::Pull`].
    pub fn pull(
        &self,
        image: &str,
        reference: &str,
        platform: Option<&str>,
    ) -> Result<String, EngineError> {
        let request = format!("POST /images/create?fromImage={image}&tag={reference}");
        let mut req = self
            .agent
            .post(self.url("/images/create"))
            .query("fromImage", image)
            .query("tag", reference);
        if let Some(p) = platform {
            req = req.query("platform", p);
        }
        let resp = req.send_empty().map_err(|e| self.unreachable(e))?;
        let mut resp = self.check(&request, resp)?;
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| self.io(&request, e.into_io()))?;
        parse_load_output(&text).map_err(|message| EngineError::Pull {
            endpoint: self.endpoint.clone(),
            image: format!("{image}@{reference}"),
            message,
        })
    }

    /// `POST /images/{name}/tag?repo=…&tag=…`: `docker tag NAME REPO:TAG`.
    pub fn tag(&self, name: &str, repo: &str, tag: &str) -> Result<(), EngineError> {
        let request = format!("POST /images/{name}/tag?repo={repo}&tag={tag}");
        let resp = self
            .agent
            .post(self.url(&format!("/images/{name}/tag")))
            .query("repo", repo)
            .query("tag", tag)
            .send_empty()
            .map_err(|e| self.unreachable(e))?;
        self.check(&request, resp)?;
        Ok(())
    }

    /// Whether the engine's requests to 127.0.0.1 reach this host's loopback: true for
    /// a local socket or a tcp:// engine on loopback (a rootless engine in its own
    /// network namespace is the exception the caller's error explains).
    pub(crate) fn is_local(&self) -> bool {
        self.endpoint.starts_with("unix://")
            || ["http://127.", "http://localhost", "http://[::1]"]
                .iter()
                .any(|p| self.base.starts_with(p))
    }
}

/// Joins the `stream` texts of the engine's JSON-lines output; the first
/// `errorDetail.message` (or `error`) is an error. Lines that are not JSON are kept.
fn parse_load_output(text: &str) -> Result<String, String> {
    let mut out = String::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let error = v
            .pointer("/errorDetail/message")
            .or_else(|| v.get("error"))
            .and_then(|e| e.as_str());
        if let Some(e) = error {
            return Err(e.to_string());
        }
        if let Some(s) = v.get("stream").and_then(|s| s.as_str()) {
            out.push_str(s);
        }
    }
    Ok(out)
}

/// Adds what was being read to an I/O error from a response body.
struct ContextReader<R> {
    inner: R,
    what: String,
}

impl<R: Read> Read for ContextReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), format!("reading {}: {e}", self.what)))
    }
}

/// Gives ureq one placeholder address: the unix connector ignores it.
#[derive(Debug)]
struct UnixResolver;

impl Resolver for UnixResolver {
    fn resolve(
        &self,
        _uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let mut addrs = self.empty();
        addrs.push(std::net::SocketAddr::from(([127, 0, 0, 1], 80)));
        Ok(addrs)
    }
}

/// Opens a unix socket where ureq's TCP connector would open a TCP socket.
#[derive(Debug)]
struct UnixConnector {
    path: PathBuf,
}

impl<In: Transport> Connector<In> for UnixConnector {
    type Out = UnixTransport;

    fn connect(
        &self,
        details: &ConnectionDetails,
        _chained: Option<In>,
    ) -> Result<Option<UnixTransport>, ureq::Error> {
        let stream = UnixStream::connect(&self.path).map_err(|e| {
            ureq::Error::Io(io::Error::new(
                e.kind(),
                format!("cannot connect to {}: {e}", self.path.display()),
            ))
        })?;
        let stream = Arc::new(Socket(stream));
        (details.register_shutdown)(Arc::downgrade(&stream) as Weak<dyn ShutdownHandle>)?;
        let config = details.config;
        Ok(Some(UnixTransport {
            stream,
            buffers: LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size()),
            path: self.path.clone(),
        }))
    }
}

/// A unix stream that [`ShutdownHandle`] can be implemented for.
struct Socket(UnixStream);

impl ShutdownHandle for Socket {
    fn shutdown(&self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

struct UnixTransport {
    stream: Arc<Socket>,
    buffers: LazyBuffers,
    path: PathBuf,
}

impl fmt::Debug for UnixTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixTransport")
            .field("path", &self.path)
            .finish()
    }
}

fn timeout_error(e: io::Error, timeout: NextTimeout) -> ureq::Error {
    if matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    ) {
        ureq::Error::Timeout(timeout.reason)
    } else {
        ureq::Error::Io(e)
    }
}

impl Transport for UnixTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let timeout = timeout.for_write();
        let stream = &self.stream.0;
        stream.set_write_timeout(timeout.not_zero().map(|d| *d))?;
        let output = &self.buffers.output()[..amount];
        (&*stream)
            .write_all(output)
            .map_err(|e| timeout_error(e, timeout))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let timeout = timeout.for_read();
        let stream = &self.stream.0;
        stream.set_read_timeout(timeout.not_zero().map(|d| *d))?;
        let input = self.buffers.input_append_buf();
        let n = loop {
            match (&*stream).read(input) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(timeout_error(e, timeout)),
            }
        };
        self.buffers.input_appended(n);
        Ok(n > 0)
    }

    fn is_open(&mut self) -> bool {
        // A pooled connection is usable when nothing is waiting to be read and the
        // peer has not closed it.
        let stream = &self.stream.0;
        if stream.set_nonblocking(true).is_err() {
            return false;
        }
        let mut buf = [0u8; 1];
        let open =
            matches!((&*stream).read(&mut buf), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        open && stream.set_nonblocking(false).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts() {
        let e = Engine::new("unix:///var/run/docker.sock").unwrap();
        assert_eq!(e.base, "http://localhost");
        assert_eq!(e.endpoint(), "unix:///var/run/docker.sock");
        assert_eq!(
            Engine::new("tcp://127.0.0.1:2375").unwrap().base,
            "http://127.0.0.1:2375"
        );
        assert_eq!(
            Engine::new("tcp://dockerhost").unwrap().base,
            "http://dockerhost:2375"
        );
        assert!(matches!(
            Engine::new("ssh://user@host"),
            Err(EngineError::BadHost(_))
        ));
        assert!(Engine::new("unix://relative.sock").is_err());
    }

    #[test]
    fn unreachable_socket_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let host = format!("unix://{}/nothing.sock", dir.path().display());
        let err = Engine::new(&host).unwrap().ping().unwrap_err().to_string();
        assert!(err.contains(&host), "{err}");
        assert!(err.contains("is dockerd running"), "{err}");
    }

    #[test]
    fn load_output() {
        let ok = "{\"stream\":\"Loaded image: app:1\\n\"}\n{\"stream\":\"Loaded image ID: sha256:ab\\n\"}\n";
        assert_eq!(
            parse_load_output(ok).unwrap(),
            "Loaded image: app:1\nLoaded image ID: sha256:ab\n"
        );
        let bad = "{\"errorDetail\":{\"message\":\"invalid diffID for layer 0\"},\"error\":\"invalid diffID for layer 0\"}\n";
        assert_eq!(
            parse_load_output(bad).unwrap_err(),
            "invalid diffID for layer 0"
        );
    }
}
