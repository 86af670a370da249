//! Ctrl-C and SIGTERM: stop cleanly, keep what was done, say how to continue.
//!
//! `save` and `push` call [`install`] before they start. The first signal only sets a
//! process-wide flag ([`requested`]); the pipelines check it at their next read (fetch
//! workers, uploads, the copy from an earlier partial bundle) and between work items,
//! stop, keep what they wrote and return an [`Interrupted`] error, which `main` turns
//! into exit status 130 (as a shell does for a job stopped by SIGINT). A second signal
//! exits at once, also with 130: whatever is on disk stays there, and the next run
//! copes with it (a save resumes from its partial file, a push skips what the target
//! has), exactly as after `kill -9` or a power loss, which no handler can see.
//!
//! `serve` installs it too: there a signal is the ordinary way to stop; its workers
//! stop accepting, finish the answers in flight and the command exits with 0.
//!
//! Other commands (`verify`, `ls`, `load`, `inventory`) install no handler: they write
//! nothing that must be kept, so the default (die at once) is right for them.

use std::io::Write;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

/// Exit status of a command stopped by Ctrl-C or SIGTERM.
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

static REQUESTED: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

/// Installs the Ctrl-C / SIGTERM / SIGHUP handler (once per process). When the handler
/// cannot be installed the command still runs, with the default behaviour of the signals.
pub fn install() {
    INSTALL.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if REQUESTED.swap(true, Ordering::SeqCst) {
                let _ = writeln!(std::io::stderr(), "\ninterrupted again: stopping now");
                std::process::exit(i32::from(EXIT_INTERRUPTED));
            }
            let _ = writeln!(
                std::io::stderr(),
                "\ninterrupted: stopping cleanly and keeping what is done (press Ctrl-C again to stop at once)"
            );
        });
    });
}

/// Whether Ctrl-C or SIGTERM has been received.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// The error of a command stopped by Ctrl-C or SIGTERM; its message says what was kept
/// and how to continue. `main` exits with [`EXIT_INTERRUPTED`] for it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Interrupted(pub String);

/// The `io::Error` a read returns once the flag is set. (Not `ErrorKind::Interrupted`:
/// `io::copy` and `read_exact` retry those.)
pub(crate) fn io_error() -> std::io::Error {
    std::io::Error::other(InterruptedRead)
}

/// Marks a read stopped by the flag (inside an `io::Error`).
#[derive(Debug, thiserror::Error)]
#[error("stopped by Ctrl-C or SIGTERM")]
pub(crate) struct InterruptedRead;

/// Fails the next read once the flag is set; wraps fetches, uploads and copies.
pub(crate) struct InterruptibleReader<R>(pub R);

impl<R: std::io::Read> std::io::Read for InterruptibleReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if requested() {
            return Err(io_error());
        }
        self.0.read(buf)
    }
}
