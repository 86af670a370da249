//! The server loop: a tokio runtime running hyper's HTTP/1.1 connections, confined to
//! `serve` (and `load --with-digests`, which serves a bundle to the engine).
//!
//! The rest of airlock is synchronous (ureq, threads); the server is the one place
//! with many concurrent, often idle or slow, connections, so it is the one place with
//! an async runtime: [`run`] builds it, serves until told to stop and drops it. Each
//! connection is a task (TLS by tokio-rustls over the same rustls configuration), kept
//! alive between requests and closed after [`IDLE`] without a request. The bundle
//! reader is synchronous, so a blob is read on tokio's bounded blocking pool (at most
//! `workers` readers at once) and handed to hyper through a bounded channel of
//! [`CHUNK`]s; the reader waits for room before it reads the next chunk, so memory per
//! download is a few chunks, and a slow client holds its reader back instead of letting
//! it run ahead. A full blob is hashed as it is read and checked before its last chunk
//! is sent; on a mismatch the body ends with an error, hyper aborts the connection,
//! and the client sees a short body. Downloads of the same full blob that start
//! together share that read and that hash (a [`flight`]): on two cores the sha256 is
//! about half of serve's CPU, and a cluster pulling one image asks for each blob many
//! times at once. A shared download that falls behind reads on by itself, so a slow
//! client never holds back the others.
//!
//! Memory, per download being read: at most four chunks (512 KiB: one being read, one in
//! the channel, two in hyper's queue) for a range or a download reading on by itself;
//! a flight holds [`flight::WINDOW`] chunks plus the one being read, shared by its
//! members, so a download that is a flight's only member holds at most seven (896 KiB:
//! its hyper queue's two may be chunks the flight has already dropped); beyond that,
//! all flights together keep at most [`flight::BUDGET`] (16 MiB) more, for downloads
//! that join late or fall behind. A full blob's raw zstd blocks are copied from the
//! file into the chunk and add nothing; a compressed frame (small entries, tails of
//! layers, compressible data) brings in the zstd decoder for that frame: its window (at
//! most the frame's size, 4 MiB as airlock writes frames) and a 256 KiB input buffer.
//! So `workers` (48 for `serve`) downloads hold at most 58 MiB when they read raw
//! blocks, and about 270 MiB in the worst case of all 48 inside 4 MiB compressed frames.
//! A compact bundle's layers are the exception: each one read is rebuilt from its raw
//! tar, whose coarse frame brings a zstd window of up to 128 MiB, plus an encoder run on
//! a core. So at most [`REBUILDS`] such reads (a flight's lead, a range, a download
//! reading on by itself) run at once in the process, about 0.5 GiB; the others wait
//! for one to end (a client that stops reading holds its pass while it stays
//! connected; README: convert a compact bundle before serving it to many).
//!
//! Stopping (the `stop` flag, Ctrl-C or SIGTERM) closes the listener, asks every
//! connection to shut down gracefully (idle ones close at once, answers in flight
//! finish) and returns when they have.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use super::LogMode;
use super::catalog::Catalog;
use super::flight::{self, Flight, Flights};
use super::http::{self, Answer, Chunk, Request, Sent};
use super::routes::{self, Body, Reply};
use crate::digest::{Digest, Hasher};
use crate::sync::{Permit, Semaphore};

/// How long a connection may wait for its next request head (keep-alive idleness, or a
/// client that is slow to send one).
const IDLE: Duration = Duration::from_secs(10);
/// The chunk a blob is read and sent in: zstd's largest block, so a raw block is one
/// or two reads; 64 KiB chunks cost about 13% more CPU per byte served (more channel
/// hand-offs, wake-ups and writes).
const CHUNK: usize = 128 * 1024;
/// Chunks waiting in the channel to hyper per download. With hyper's queue (below)
/// a download holds at most four chunks (one being read): every one more costs 4 MiB at
/// 32 downloads.
const AHEAD: usize = 1;
/// hyper's buffer per connection: it takes body chunks while less than this is queued
/// (so at most two), and it bounds a request head. hyper's default (~400 KiB) would
/// hold six more chunks per download.
const WRITE_BUF: usize = 64 * 1024;
/// Connections open at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 1024;

/// Whether the server should stop taking work.
fn stopping(stop: &AtomicBool) -> bool {
    stop.load(Ordering::Relaxed) || crate::interrupt::requested()
}

/// Serves `cat` on `listener` (non-blocking) until `stop` is set or Ctrl-C/SIGTERM;
/// at most `workers` blobs are read from the bundles at once. Returns when every
/// connection has finished. `serve` runs it for the command's lifetime, `load
/// --with-digests` while the engine pulls.
pub(crate) fn run(
    listener: &std::net::TcpListener,
    cat: Arc<Catalog>,
    tls: Option<Arc<rustls::ServerConfig>>,
    log: LogMode,
    stop: &AtomicBool,
    workers: usize,
) -> io::Result<()> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .max_blocking_threads(workers.max(1))
        .thread_name("airlock-serve")
        .enable_io()
        .enable_time()
        .build()?;
    let listener = listener.try_clone()?;
    rt.block_on(accept_loop(listener, cat, tls, log, stop))
}

async fn accept_loop(
    listener: std::net::TcpListener,
    cat: Arc<Catalog>,
    tls: Option<Arc<rustls::ServerConfig>>,
    log: LogMode,
    stop: &AtomicBool,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let flights = Arc::new(Flights::default());
    while !stopping(stop) {
        while conns.try_join_next().is_some() {}
        if conns.len() >= MAX_CONNECTIONS {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        // Wake up now and then to look at the stop flag.
        let accepted =
            match tokio::time::timeout(Duration::from_millis(100), listener.accept()).await {
                Err(_) => continue,
                Ok(a) => a,
            };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(_) => {
                // Out of file descriptors and the like: let connections finish.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let ctx = Ctx {
            cat: Arc::clone(&cat),
            flights: Arc::clone(&flights),
            log,
            peer,
        };
        let (tls, stop_rx) = (tls.clone(), stop_rx.clone());
        conns.spawn(connection(stream, tls, ctx, stop_rx));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while conns.join_next().await.is_some() {}
    Ok(())
}

/// What answering a request needs.
#[derive(Clone)]
struct Ctx {
    cat: Arc<Catalog>,
    /// Full-blob reads under way, shared by the downloads of the same blob.
    flights: Arc<Flights>,
    log: LogMode,
    peer: SocketAddr,
}

async fn connection(
    stream: tokio::net::TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    ctx: Ctx,
    stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let Some(acceptor) = tls else {
        return http1(TokioIo::new(stream), ctx, stop).await;
    };
    // A handshake that fails or stalls ends the connection.
    if let Ok(Ok(s)) = tokio::time::timeout(IDLE, acceptor.accept(stream)).await {
        http1(TokioIo::new(s), ctx, stop).await;
    }
}

/// Runs hyper's HTTP/1.1 on one connection until it closes, idles out, or the server
/// stops (then it finishes the answer in flight first).
async fn http1<I>(io: I, ctx: Ctx, mut stop: watch::Receiver<bool>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let ctx = ctx.clone();
        async move { Ok::<_, std::convert::Infallible>(answer(ctx, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(IDLE)
        .keep_alive(true)
        .max_buf_size(WRITE_BUF)
        .serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stop.wait_for(|s| *s) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// Answers one request: [`routes::route`] decides, this streams it and logs it.
async fn answer(ctx: Ctx, req: hyper::Request<Incoming>) -> hyper::Response<Answer> {
    let started = Instant::now();
    // A request body is never read (writes are refused): answer, then close the
    // connection rather than read past it.
    let (parts, _body) = req.into_parts();
    let has_body = parts.headers.contains_key(hyper::header::TRANSFER_ENCODING)
        || parts
            .headers
            .get(hyper::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    let req = Request::from_parts(&parts);
    let head_only = req.method == "HEAD";
    let mut reply = routes::route(&ctx.cat, &req);
    let mut len = reply.len();
    let body = match take_body(&mut reply) {
        _ if head_only => Answer::empty(),
        Body::Bytes(b) => Answer::bytes(Bytes::from(b)),
        Body::Blob {
            bundle,
            digest,
            start,
            len: blob_len,
            full,
        } => {
            let blob = BlobRead {
                cat: Arc::clone(&ctx.cat),
                bundle,
                digest: digest.clone(),
                start,
                len: blob_len,
                verify: full.then(Hasher::new),
            };
            let started = if full && start == 0 {
                blob.share(&ctx.flights).await
            } else {
                blob.start().await.map(|rx| Answer::channel(blob_len, rx))
            };
            match started {
                Ok(answer) => answer,
                Err(e) => {
                    eprintln!("error: cannot read blob {digest}: {e}");
                    reply = routes::error(
                        500,
                        "UNKNOWN",
                        "cannot read the blob from the bundle",
                        digest.as_str(),
                    );
                    len = reply.len();
                    match take_body(&mut reply) {
                        Body::Bytes(b) => Answer::bytes(Bytes::from(b)),
                        Body::Blob { .. } => Answer::empty(),
                    }
                }
            }
        }
    };
    let (log, peer, status) = (ctx.log, ctx.peer, reply.status);
    let body = body.on_end(move |sent| access_log(log, &peer, &req, status, sent, started));
    response(&reply, len, has_body, body)
}

/// The reply's body, moved out (the reply keeps its status and headers).
fn take_body(reply: &mut Reply) -> Body {
    std::mem::replace(&mut reply.body, Body::Bytes(Vec::new()))
}

/// The response head: the route's headers, the API version and the body's length
/// (and `Connection: close` with `close`).
fn response(reply: &Reply, len: u64, close: bool, body: Answer) -> hyper::Response<Answer> {
    let mut b = hyper::Response::builder().status(reply.status);
    if close {
        b = b.header("Connection", "close");
    }
    for (k, v) in &reply.headers {
        b = b.header(*k, v.as_str());
    }
    b.header("Docker-Distribution-API-Version", "registry/2.0")
        .header("Content-Length", len)
        .body(body)
        .unwrap_or_else(|_| {
            let mut r = hyper::Response::new(Answer::empty());
            *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
}

/// A blob (or part of one) to read out of a bundle.
struct BlobRead {
    cat: Arc<Catalog>,
    bundle: usize,
    digest: Digest,
    start: u64,
    len: u64,
    /// For a blob read to its end: the hash of its bytes before `start`, hashed on and
    /// checked against `digest` before the last chunk is sent.
    verify: Option<Hasher>,
}

/// Most compact layers rebuilt at once (see the module doc).
const REBUILDS: usize = 4;

/// The passes for rebuilding compact layers, for the whole process: memory is.
static REBUILD_PASSES: LazyLock<Arc<Semaphore>> =
    LazyLock::new(|| Arc::new(Semaphore::new(REBUILDS)));

impl BlobRead {
    /// A pass from [`REBUILD_PASSES`] when the blob is a compact layer (rebuilt as it is
    /// read), held by the caller while it reads.
    fn rebuild_pass(&self) -> Option<Permit> {
        let bundle = &self.cat.bundles[self.bundle];
        let compact = bundle.toc().compact_layer(&self.digest).is_some();
        compact.then(|| REBUILD_PASSES.acquire())
    }

    /// The whole blob for one download: a member of the flight already reading it, or
    /// of a new flight this starts ([`flight`]); an error to open it comes back before
    /// any byte is sent (a 500).
    async fn share(self, flights: &Arc<Flights>) -> Result<Answer, String> {
        let (member, lead) = flights.join(self.bundle, &self.digest);
        if let Some(flight) = lead {
            let me = self.again();
            tokio::task::spawn_blocking(move || me.lead(&flight));
        }
        member.opened().await?;
        Ok(Answer::flight(self.len, member, self.read_on()))
    }

    /// The same read, for another thread.
    fn again(&self) -> BlobRead {
        BlobRead {
            cat: Arc::clone(&self.cat),
            bundle: self.bundle,
            digest: self.digest.clone(),
            start: self.start,
            len: self.len,
            verify: self.verify.clone(),
        }
    }

    /// What reads on by itself for a member that fell out of its flight's window.
    fn read_on(self) -> http::ReadOn {
        Box::new(move |offset, hashed| {
            let blob = BlobRead {
                start: offset,
                len: self.len - offset,
                verify: Some(hashed),
                ..self
            };
            let (tx, rx) = mpsc::channel(AHEAD);
            tokio::task::spawn_blocking(move || {
                let failed = tx.clone();
                let (opened_tx, opened_rx) = oneshot::channel();
                blob.pump(opened_tx, tx);
                if let Ok(Err(e)) = opened_rx.blocking_recv() {
                    let _ = failed.blocking_send(Chunk::Failed(Sent::SourceFailed(0, e)));
                }
            });
            rx
        })
    }

    /// Feeds `flight` with the whole blob (on the blocking pool).
    fn lead(self, flight: &Flight) {
        let bundle = &self.cat.bundles[self.bundle];
        let _pass = self.rebuild_pass();
        let mut src = match bundle.blob_from(&self.digest, 0, true) {
            Ok(r) => r,
            Err(e) => return flight.opened(Err(e.to_string())),
        };
        flight.opened(Ok(()));
        if let Some(_got) = flight.lead(&mut src, self.len, &self.digest, CHUNK) {
            damaged(&self.digest, bundle.path());
        }
    }

    /// Opens the blob on the blocking pool and returns the channel its chunks arrive
    /// on; an error to open it comes back before any byte is sent (a 500).
    async fn start(self) -> Result<mpsc::Receiver<Chunk>, String> {
        let (tx, rx) = mpsc::channel(AHEAD);
        let (opened_tx, opened_rx) = oneshot::channel();
        tokio::task::spawn_blocking(move || self.pump(opened_tx, tx));
        match opened_rx.await {
            Ok(Ok(())) => Ok(rx),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("the blob reader stopped".to_string()),
        }
    }

    /// Reads the blob in chunks into `tx`, each once the channel has room for it.
    fn pump(self, opened: oneshot::Sender<Result<(), String>>, tx: mpsc::Sender<Chunk>) {
        let bundle = &self.cat.bundles[self.bundle];
        let _pass = self.rebuild_pass();
        let mut src = match bundle.blob_from(&self.digest, self.start, self.verify.is_some()) {
            Ok(r) => r,
            Err(e) => {
                let _ = opened.send(Err(e.to_string()));
                return;
            }
        };
        if opened.send(Ok(())).is_err() {
            return;
        }
        let runtime = tokio::runtime::Handle::current();
        let mut hasher = self.verify;
        let mut sent = 0u64;
        while sent < self.len {
            // Wait for room before reading, so no chunk waits in hand for a slow client.
            let Ok(room) = runtime.block_on(tx.reserve()) else {
                return; // the client went away
            };
            let want = (self.len - sent).min(CHUNK as u64) as usize;
            let chunk = match flight::read_chunk(&mut src, want) {
                Ok(c) => c,
                Err(e) => return room.send(Chunk::Failed(Sent::SourceFailed(sent, e.to_string()))),
            };
            if let Some(h) = hasher.as_mut() {
                h.update(&chunk);
            }
            if sent + chunk.len() as u64 == self.len
                && let Some(h) = hasher.take()
            {
                let (got, _) = h.finish();
                if got != self.digest {
                    damaged(&self.digest, bundle.path());
                    return room.send(Chunk::Failed(Sent::Damaged(sent, got.to_string())));
                }
            }
            sent += chunk.len() as u64;
            room.send(Chunk::Data(chunk));
        }
    }
}

/// Names a damaged blob on stderr.
fn damaged(digest: &Digest, bundle: &std::path::Path) {
    eprintln!(
        "error: blob {digest} in bundle {} is damaged (its bytes do not hash to its \
         digest); its download was cut off. Run `airlock verify` on the bundle.",
        bundle.display()
    );
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
