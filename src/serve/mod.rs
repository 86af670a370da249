//! `airlock serve`: one or more bundles served as a read-only registry, straight from
//! the bundle files.
//!
//! At start every bundle is opened with [`Bundle::open`] (which refuses a bundle whose
//! structure is unsound: hostile entries, a bad TOC, missing or foreign parts) and the
//! [`catalog`] of names and blobs is built (`--verify` first runs a full `verify` of
//! each and refuses one that fails), names mapped as `push` maps them. Then
//! [`server`] answers connections on one listening socket: hyper's HTTP/1.1
//! (keep-alive) on a tokio runtime confined to this module, at most a fixed number of
//! blobs read at once and each through a bounded channel, so memory stays bounded
//! however many clients connect. [`routes`] picks the answer ([`http`] is the request
//! and body glue); blobs are streamed out of the bundle through
//! the reader's random access (a `.tar.zst` decodes only the frames a request needs,
//! and for a full blob, which is hashed anyway, copies its raw zstd blocks without
//! decoding them; split parts read as one file), never extracted, never buffered whole.
//!
//! A blob served in full is hashed while it streams (downloads of it that start together
//! share one read and one hash: [`flight`]); before its last bytes are sent the
//! hash is checked, and on a mismatch the connection is cut and the blob named on
//! stderr, so a client sees a short body and fails instead of storing wrong bytes.
//! `--tls-cert`/`--tls-key` serve HTTPS (rustls). Every request gets an access log line
//! on stderr (JSON with `--json`; none with `-q`); [`config`] prints client
//! configuration instead (`--print-config`). Ctrl-C or SIGTERM ([`crate::interrupt`])
//! stops accepting, lets the answers in flight finish and returns (exit 0: a signal is
//! how a server is meant to stop); a second signal exits at once.

pub(crate) mod catalog;
pub mod config;
mod flight;
pub(crate) mod http;
pub(crate) mod routes;
mod server;

pub(crate) use server::run;

use std::io;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;

use crate::bundle::Bundle;
use crate::settings::ServeSettings;
use catalog::Catalog;

/// Blobs read from the bundles at once (the blocking pool's bound); more wait their turn.
const WORKERS: usize = 48;

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
        Arc::new(cat),
        tls,
        log,
        &AtomicBool::new(false),
        WORKERS,
    )
    .context("cannot start the server")?;
    if !log.quiet {
        eprintln!("stopped serving on {addr}");
    }
    Ok(())
}
