//! `airlock serve`: one or more bundles served as a read-only registry, straight from
//! the bundle files.
//!
//! At start every bundle is opened with [`Bundle::open`] (which refuses a bundle whose
//! structure is unsound: hostile entries, a bad TOC, missing or foreign parts) and the
//! [`catalog`] of names and blobs is built (`--verify` first runs a full `verify` of
//! each and refuses one that fails), names mapped as `push` maps them. Then a
//! fixed pool of worker threads accepts connections on one listening socket; each
//! worker serves one connection at a time (HTTP/1.1 keep-alive, [`http`]), so the
//! number of connections being answered, and the memory they use, is bounded by the
//! pool. [`routes`] picks the answer; blobs are streamed out of the bundle through
//! the reader's random access (a `.tar.zst` decodes only the frames a request needs,
//! split parts read as one file), never extracted, never buffered whole.
//!
//! A blob served in full is hashed while it streams; before its last bytes are sent the
//! hash is checked, and on a mismatch the connection is cut and the blob named on
//! stderr, so a client sees a short body and fails instead of storing wrong bytes.
//! `--tls-cert`/`--tls-key` serve HTTPS (rustls). Every request gets an access log line
//! on stderr (JSON with `--json`; none with `-q`); [`config`] prints client
//! configuration instead (`--print-config`). Ctrl-C or SIGTERM ([`crate::interrupt`])
//! stops accepting, lets the answers in flight finish and returns (exit 0: a signal is
//! how a server is meant to stop); a second signal exits at once.

pub(crate) mod catalog;
pub mod config;
pub(crate) mod http;
pub(crate) mod routes;

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::bundle::Bundle;
use crate::cli::ServeArgs;
use crate::digest::{Digest, Hasher};
use crate::settings::{RegistryPrefix, UsageError};
use catalog::Catalog;
use http::{Conn, Next, Request};
use routes::{Body, Reply};

/// Worker threads: connections answered at once.
const WORKERS: usize = 48;
/// How long an idle keep-alive connection is kept open.
const IDLE: Duration = Duration::from_secs(10);
/// The chunk a blob is streamed in.
const CHUNK: usize = 64 * 1024;

/// What `serve` needs, validated.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub bundles: Vec<PathBuf>,
    pub listen: SocketAddr,
    /// Where names go: the listen address and `--prefix`.
    pub target: RegistryPrefix,
    pub keep_registry: bool,
    /// `--verify`: a full `verify` of every bundle before serving.
    pub verify: bool,
    /// `--tls-cert` and `--tls-key`: serve HTTPS with this certificate chain and key.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `--print-config`: print this client's configuration instead of serving.
    pub print_config: Option<config::ClientKind>,
}

impl ServeSettings {
    /// `serve`'s arguments validated: the listen address parsed, the prefix checked as
    /// a repository path the way `push` checks its target's.
    pub fn from_args(args: &ServeArgs) -> Result<ServeSettings, UsageError> {
        let listen: SocketAddr = args.listen.parse().map_err(|_| {
            UsageError(format!(
                "--listen `{}` is not an IP:PORT address (e.g. 127.0.0.1:5000 or 0.0.0.0:5000)",
                args.listen
            ))
        })?;
        let prefix = args.prefix.as_deref().unwrap_or("").trim_matches('/');
        // The host only validates the names; clients reach the server at its listen address.
        let target = if prefix.is_empty() {
            RegistryPrefix::parse("localhost")?
        } else {
            RegistryPrefix::parse(&format!("localhost/{prefix}"))
                .map_err(|e| UsageError(format!("--prefix `{prefix}`: {e}")))?
        };
        Ok(ServeSettings {
            bundles: args.bundles.clone(),
            listen,
            target,
            keep_registry: args.keep_registry,
            verify: args.verify,
            tls: match (&args.tls_cert, &args.tls_key) {
                (Some(c), Some(k)) => Some((c.clone(), k.clone())),
                (None, None) => None,
                _ => {
                    return Err(UsageError(
                        "--tls-cert and --tls-key go together: give both, or neither".to_string(),
                    ));
                }
            },
            print_config: args.print_config,
        })
    }
}

/// How the access log is written.
#[derive(Debug, Clone, Copy)]
pub struct LogMode {
    pub quiet: bool,
    pub json: bool,
}

/// Opens the bundles, listens, and serves until Ctrl-C or SIGTERM.
pub fn serve(
    settings: &ServeSettings,
    log: LogMode,
    progress: &dyn crate::progress::Progress,
) -> anyhow::Result<()> {
    if let Some(kind) = settings.print_config {
        print!(
            "{}",
            config::client_config(kind, settings.listen, settings.tls.is_some())
        );
        return Ok(());
    }
    if settings.verify {
        for path in &settings.bundles {
            let report = crate::bundle::verify::verify_trusting(path, &[], progress)?;
            if !report.ok {
                report.print_human(&mut io::stderr().lock())?;
                anyhow::bail!(
                    "{} failed `verify` (see above); it is not served",
                    path.display()
                );
            }
        }
    }
    let mut bundles = Vec::new();
    for path in &settings.bundles {
        let b = Bundle::open(path).with_context(|| {
            format!(
                "cannot serve {}: it does not open as a sound bundle",
                path.display()
            )
        })?;
        bundles.push(b);
    }
    let tls = match &settings.tls {
        Some((cert, key)) => Some(http::tls_config(cert, key)?),
        None => None,
    };
    let cat = Catalog::build(bundles, &settings.target, settings.keep_registry)?;
    let listener = TcpListener::bind(settings.listen).with_context(|| {
        format!(
            "cannot listen on {}: is another registry (or `airlock serve`) using that port? \
             Choose another with --listen",
            settings.listen
        )
    })?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    crate::interrupt::install();
    if !log.quiet {
        eprintln!(
            "serving {} from {} on {}://{addr} (read-only; Ctrl-C stops)",
            crate::words::count(cat.references.len() as u64, "image name"),
            crate::words::count(cat.bundles.len() as u64, "bundle"),
            if tls.is_some() { "https" } else { "http" }
        );
        for r in &cat.references {
            eprintln!("  {addr}/{r}");
        }
    }
    run(
        &listener,
        &cat,
        tls.as_ref(),
        log,
        &AtomicBool::new(false),
        WORKERS,
    );
    if !log.quiet {
        eprintln!("stopped serving on {addr}");
    }
    Ok(())
}

/// Serves `cat` on `listener` (non-blocking) with `workers` threads until `stop` is set
/// or Ctrl-C/SIGTERM; returns when every worker has finished its connection. `serve`
/// runs it for the command's lifetime, `load --with-digests` while the engine pulls.
pub(crate) fn run(
    listener: &TcpListener,
    cat: &Catalog,
    tls: Option<&std::sync::Arc<rustls::ServerConfig>>,
    log: LogMode,
    stop: &AtomicBool,
    workers: usize,
) {
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| worker(listener, cat, tls, log, stop));
        }
    });
}

/// Whether the server should stop taking work.
fn stopping(stop: &AtomicBool) -> bool {
    stop.load(Ordering::Relaxed) || crate::interrupt::requested()
}

fn worker(
    listener: &TcpListener,
    cat: &Catalog,
    tls: Option<&std::sync::Arc<rustls::ServerConfig>>,
    log: LogMode,
    stop: &AtomicBool,
) {
    while !stopping(stop) {
        match listener.accept() {
            Ok((stream, peer)) => {
                if let Ok(conn) = Conn::new(stream, peer, tls) {
                    connection(conn, cat, log, stop);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Serves one connection until the client closes it, it idles too long, an answer is
/// cut off, or the server stops.
fn connection(mut conn: Conn, cat: &Catalog, log: LogMode, stop: &AtomicBool) {
    let mut idle = Instant::now();
    loop {
        let req = match conn.next_request() {
            Next::Request(r) => r,
            Next::Closed => return,
            Next::Idle => {
                if stopping(stop) || idle.elapsed() > IDLE {
                    return;
                }
                continue;
            }
            Next::Bad(why) => {
                let reply = routes::error(400, "UNSUPPORTED", "bad request", &why);
                let _ = send(&mut conn, cat, &reply, false, false);
                return;
            }
        };
        let started = Instant::now();
        let reply = routes::route(cat, &req);
        // A request body is never read: answer, then close rather than misread it.
        let keep_alive = req.keep_alive && !req.has_body && !stopping(stop);
        let outcome = send(&mut conn, cat, &reply, req.method == "HEAD", keep_alive);
        access_log(log, &conn.peer, &req, reply.status, &outcome, started);
        match outcome {
            Sent::Done(_) if keep_alive => idle = Instant::now(),
            Sent::Done(_) => return,
            Sent::ClientGone(_) | Sent::SourceFailed(..) | Sent::Damaged(..) => {
                conn.abort();
                return;
            }
        }
    }
}

/// How sending an answer ended.
enum Sent {
    /// Every byte written (the count of body bytes).
    Done(u64),
    /// The client went away after this many body bytes.
    ClientGone(u64),
    /// Reading the bundle failed after this many body bytes.
    SourceFailed(u64, String),
    /// The blob's bytes do not hash to its digest; cut before its last bytes.
    Damaged(u64, Digest),
}

fn send(conn: &mut Conn, cat: &Catalog, reply: &Reply, head_only: bool, keep_alive: bool) -> Sent {
    let mut headers = reply.headers.clone();
    headers.push((
        "Docker-Distribution-API-Version",
        "registry/2.0".to_string(),
    ));
    let len = reply.len();
    // Open the blob before the head goes out, so a bundle that cannot be read gets a 500.
    let mut source = None;
    if let Body::Blob {
        bundle,
        digest,
        start,
        ..
    } = &reply.body
        && !head_only
    {
        match cat.bundles[*bundle].blob_from(digest, *start) {
            Ok(r) => source = Some(r),
            Err(e) => {
                eprintln!("error: cannot read blob {digest}: {e}");
                let r = routes::error(
                    500,
                    "UNKNOWN",
                    "cannot read the blob from the bundle",
                    digest.as_str(),
                );
                return match send(conn, cat, &r, head_only, false) {
                    Sent::Done(_) => Sent::SourceFailed(0, e.to_string()),
                    other => other,
                };
            }
        }
    }
    if conn
        .write_head(reply.status, &headers, len, keep_alive)
        .is_err()
    {
        return Sent::ClientGone(0);
    }
    if head_only {
        return Sent::Done(0);
    }
    match (&reply.body, source) {
        (Body::Bytes(b), _) => match conn.write_body(b) {
            Ok(()) => Sent::Done(b.len() as u64),
            Err(_) => Sent::ClientGone(0),
        },
        (
            Body::Blob {
                bundle,
                digest,
                full,
                ..
            },
            Some(src),
        ) => {
            let sent = stream_blob(conn, src, len, full.then_some(digest));
            if let Sent::Damaged(..) = &sent {
                eprintln!(
                    "error: blob {digest} in bundle {} is damaged (its bytes do not hash to its \
                     digest); its download was cut off. Run `airlock verify` on the bundle.",
                    cat.bundles[*bundle].path().display()
                );
            }
            sent
        }
        (Body::Blob { .. }, None) => Sent::Done(0),
    }
}

/// Copies `len` bytes from `src` to the client; with `verify`, hashes them and checks the
/// digest before the last chunk is written.
fn stream_blob(conn: &mut Conn, mut src: impl Read, len: u64, verify: Option<&Digest>) -> Sent {
    let mut hasher = verify.map(|_| Hasher::new());
    let mut buf = vec![0u8; CHUNK];
    let mut sent = 0u64;
    while sent < len {
        let want = (len - sent).min(CHUNK as u64) as usize;
        let n = match src.read(&mut buf[..want]) {
            Ok(0) => return Sent::SourceFailed(sent, "the blob ends early".to_string()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Sent::SourceFailed(sent, e.to_string()),
        };
        if let Some(h) = hasher.as_mut() {
            h.update(&buf[..n]);
        }
        if sent + n as u64 == len
            && let (Some(h), Some(want)) = (hasher.take(), verify)
        {
            let (got, _) = h.finish();
            if &got != want {
                return Sent::Damaged(sent, got);
            }
        }
        if conn.write_body(&buf[..n]).is_err() {
            return Sent::ClientGone(sent);
        }
        sent += n as u64;
    }
    Sent::Done(sent)
}

fn access_log(
    log: LogMode,
    peer: &SocketAddr,
    req: &Request,
    status: u16,
    sent: &Sent,
    started: Instant,
) {
    if log.quiet {
        return;
    }
    let (bytes, outcome) = match sent {
        Sent::Done(n) => (*n, "ok".to_string()),
        Sent::ClientGone(n) => (*n, "client closed".to_string()),
        Sent::SourceFailed(n, e) => (*n, format!("read failed: {e}")),
        Sent::Damaged(n, got) => (*n, format!("damaged blob (hashes to {got}); cut off")),
    };
    let secs = started.elapsed().as_secs_f64();
    let target = if req.query.is_empty() {
        req.path.clone()
    } else {
        format!("{}?{}", req.path, req.query)
    };
    if log.json {
        let line = serde_json::json!({
            "peer": peer.to_string(),
            "method": req.method,
            "path": target,
            "status": status,
            "bytes": bytes,
            "seconds": secs,
            "outcome": outcome,
            "user_agent": req.header("User-Agent"),
        });
        eprintln!("{line}");
    } else {
        let note = if outcome == "ok" {
            String::new()
        } else {
            format!(" ({outcome})")
        };
        eprintln!(
            "{peer} \"{} {target} {}\" {status} {bytes} {secs:.3}s{note}",
            req.method, req.version
        );
    }
}
