//! Concurrent layer fetching, feeding the bundle writer in the bundle's fixed order.
//!
//! Layers go into the bundle in the order of `jobs` (the order `collect_blobs` gives),
//! never in the order they arrive, so two saves of the same inputs write the same
//! bytes whatever `--jobs` and the network's timing (issue 10). `workers` threads take
//! layers from a shared queue in that order and hand each one's bytes to the
//! [`Window`]: the layer being written (the head) streams into the writer, those
//! behind it wait in a bounded memory window, and only what does not fit is spilled to
//! the scratch directory ([`Staging::spill_path`], never the output's file system). So
//! every byte reaches the output's disk once, and memory stays bounded; see
//! [`super::window`]. The caller's thread takes the head from the window and hands its
//! bytes to `sink` (which appends them to the bundle, verifying them again).
//!
//! Every byte a worker reads goes through a [`VerifyingReader`]. A layer whose bytes
//! do not match its digest is fetched again (up to [`MISMATCH_ATTEMPTS`] times) unless
//! the writer has already started streaming it ([`Window::reset`] refuses), which only
//! happens to layers over [`window::VERIFY_FIRST`] bytes: then the save fails before
//! the layer counts, keeping what was written before it for the rerun. Layers of local
//! sources (OCI layouts, archives, converted layers; [`BlobStore::local`]) are not
//! prefetched: the writer reads them straight from their files when their turn comes.
//!
//! The first failure stops all workers (reads check a cancel flag, waits in the window
//! the window's) and is returned with the blob and the images it belongs to; Ctrl-C
//! ([`crate::interrupt`]) stops them the same way.
//!
//! When a save resumes, layers that the interrupted run's partial bundle holds
//! ([`Partial`]) are not fetched: a worker reads the old copy once through a
//! [`VerifyingReader`] and, when it is sound, the caller's thread streams it from there
//! straight into the new bundle when its turn comes ([`Origin::Reused`]); a copy that
//! is cut or damaged is fetched from the source instead, as if it had not been there.

use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow};

use super::staging::Staging;
use super::window::{self, CHUNK, Place, Ready, Window};
use crate::bundle::resume::Partial;
use crate::digest::{Mismatch, VerifyingReader};
use crate::interrupt::{self, InterruptibleReader};
use crate::oci::Descriptor;
use crate::progress::{Progress, ProgressReader, human_bytes};
use crate::source::BlobStore;
use crate::sync::lock;

/// How often a blob whose bytes do not match its digest is fetched again before the save fails.
const MISMATCH_ATTEMPTS: usize = 3;

/// One layer to fetch, where from, and which image names need it (for messages).
pub(crate) struct LayerJob {
    pub desc: Descriptor,
    /// What progress calls it ([`crate::progress::blob_label`]).
    pub label: String,
    pub store: Arc<dyn BlobStore>,
    pub images: Vec<String>,
}

impl LayerJob {
    fn describe(&self) -> String {
        let mut names = self
            .images
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if self.images.len() > 3 {
            names.push_str(&format!(" and {} more", self.images.len() - 3));
        }
        format!(
            "layer {} ({}) of {names} from {}",
            self.desc.digest,
            human_bytes(self.desc.size),
            self.store.describe()
        )
    }
}

/// Where the bytes `fetch_all` hands to its sink come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Fetched from the source.
    Fetched,
    /// Copied from the partial bundle of an interrupted run.
    Reused,
}

/// Where a finished slot's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    /// In the window (memory, then the spill file).
    Window,
    /// In the interrupted run's partial bundle, checked.
    Kept,
    /// In a local source's file, read when its turn comes.
    Local,
}

/// The first failure of a fetch, and the flag that stops every transfer.
struct Failure<'w> {
    cancel: AtomicBool,
    first: Mutex<Option<anyhow::Error>>,
    window: &'w Window<Held>,
}

impl Failure<'_> {
    /// Records `e` unless a failure came first (then `e` is its echo), and stops everything.
    fn fail(&self, e: anyhow::Error) {
        if !self.cancel.swap(true, Ordering::SeqCst) {
            *lock(&self.first) = Some(e);
        }
        self.window.cancel();
    }
}

/// Fetches every job (or, with `reuse`, takes it from an interrupted run's partial
/// bundle) and hands each one's bytes to `sink` on the calling thread, in the order of
/// `jobs`.
pub(crate) fn fetch_all(
    jobs: Vec<LayerJob>,
    staging: &Staging,
    workers: usize,
    reuse: Option<&Partial>,
    progress: &dyn Progress,
    mut sink: impl FnMut(&LayerJob, Origin, &mut dyn Read) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let window = Window::new(jobs.iter().map(|j| j.desc.size));
    let failure = Failure {
        cancel: AtomicBool::new(false),
        first: Mutex::new(None),
        window: &window,
    };
    let queue = Mutex::new(jobs.iter().enumerate());
    std::thread::scope(|scope| {
        for _ in 0..workers.min(jobs.len()).max(1) {
            let (queue, failure, window) = (&queue, &failure, &window);
            scope.spawn(move || {
                loop {
                    if stopped(&failure.cancel) {
                        break;
                    }
                    let Some((i, job)) = lock(queue).next() else {
                        break;
                    };
                    if window.may_start(i).is_err() {
                        break;
                    }
                    let cancel = &failure.cancel;
                    let result = match reuse.filter(|p| p.has(&job.desc.digest, job.desc.size)) {
                        Some(partial) => match check_kept(job, partial, progress, cancel) {
                            Ok(()) => {
                                window.done(i, Held::Kept);
                                Ok(())
                            }
                            Err(e) if stopped(cancel) => Err(e),
                            Err(e) => {
                                progress.message(&format!(
                                    "{}: the copy in {} is unusable ({e:#}); fetching it again",
                                    job.desc.digest,
                                    partial.files()[0].display()
                                ));
                                fetch_one(i, job, window, staging, progress, cancel)
                            }
                        },
                        None if job.store.local() => {
                            window.done(i, Held::Local);
                            Ok(())
                        }
                        None => fetch_one(i, job, window, staging, progress, cancel),
                    };
                    if let Err(e) = result {
                        failure.fail(e);
                        break;
                    }
                }
            });
        }
        for (i, job) in jobs.iter().enumerate() {
            let Ok(ready) = window.next(i) else {
                // Another transfer failed (recorded), or Ctrl-C (the caller checks).
                break;
            };
            let outcome = match (ready, reuse) {
                (Ready::Done(Held::Kept), Some(partial)) => partial
                    .open(&job.desc.digest)
                    .with_context(|| {
                        format!(
                            "cannot read {} from {}",
                            job.describe(),
                            partial.files()[0].display()
                        )
                    })
                    .and_then(|kept| sink(job, Origin::Reused, &mut InterruptibleReader(kept))),
                (Ready::Done(Held::Local), _) => {
                    // Read only now, as it goes into the bundle: its progress is the writing.
                    let item = progress.item(&job.label, job.desc.size);
                    job.store
                        .blob(&job.desc)
                        .with_context(|| format!("cannot read {}", job.describe()))
                        .and_then(|r| {
                            let mut r = ProgressReader::new(InterruptibleReader(r), &*item);
                            sink(job, Origin::Fetched, &mut r)
                        })
                        .map(|()| item.done())
                }
                _ => sink(job, Origin::Fetched, &mut window.reader(i)),
            };
            if let Err(e) = outcome {
                failure.fail(e);
                break;
            }
        }
        // Past the last layer every worker has finished; after a failure this stops them.
        if failure.cancel.load(Ordering::SeqCst) {
            window.cancel();
        }
    });
    match failure
        .first
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
    {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Whether the workers are to stop (another failed, or Ctrl-C).
fn stopped(cancel: &AtomicBool) -> bool {
    cancel.load(Ordering::Relaxed) || interrupt::requested()
}

/// Reads the interrupted run's copy of a layer once, verifying it.
fn check_kept(
    job: &LayerJob,
    partial: &Partial,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<()> {
    let item = progress.item(&format!("{} (kept)", job.label), job.desc.size);
    let reader = CancelReader {
        inner: partial.open(&job.desc.digest)?,
        cancel,
    };
    let mut verifying = VerifyingReader::new(
        ProgressReader::new(reader, &*item),
        job.desc.digest.clone(),
        job.desc.size,
    );
    io::copy(&mut verifying, &mut io::sink())?;
    item.done();
    Ok(())
}

/// Fetches layer `i` into the window, verifying it; a wrong download is fetched again
/// while the writer has not started on it.
fn fetch_one(
    i: usize,
    job: &LayerJob,
    window: &Window<Held>,
    staging: &Staging,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<()> {
    let digest = &job.desc.digest;
    let spill_path = staging.spill_path(digest);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let item = progress.item(&job.label, job.desc.size);
        let result = (|| -> anyhow::Result<()> {
            let source = job.store.blob(&job.desc)?;
            let reader = CancelReader {
                inner: source,
                cancel,
            };
            let mut verifying = VerifyingReader::new(
                ProgressReader::new(reader, &*item),
                digest.clone(),
                job.desc.size,
            );
            let mut spill: Option<File> = None;
            loop {
                let mut chunk = vec![0u8; CHUNK];
                let n = read_full(&mut verifying, &mut chunk)?;
                if n == 0 {
                    return Ok(());
                }
                chunk.truncate(n);
                match window.place(i, n as u64).map_err(io::Error::from)? {
                    Place::Memory => window.push(i, chunk),
                    Place::Spill => {
                        let file = match &mut spill {
                            Some(f) => f,
                            None => spill.insert(File::create(&spill_path).with_context(|| {
                                format!(
                                    "cannot create `{}` in the scratch directory",
                                    spill_path.display()
                                )
                            })?),
                        };
                        // No fsync: scratch space, read back (and verified again) by this run only.
                        file.write_all(&chunk)
                            .with_context(|| format!("cannot write `{}`", spill_path.display()))?;
                        window.spilled(i, &spill_path, n as u64);
                    }
                }
            }
        })();
        match result {
            Ok(()) => {
                item.done();
                window.done(i, Held::Window);
                return Ok(());
            }
            Err(e) => {
                let mismatch = e
                    .downcast_ref::<io::Error>()
                    .and_then(Mismatch::from_io)
                    .cloned();
                match mismatch {
                    Some(m) if attempt < MISMATCH_ATTEMPTS && window.reset(i) => {
                        progress.message(&format!(
                            "{digest}: {m}; fetching it again (attempt {} of {MISMATCH_ATTEMPTS})",
                            attempt + 1
                        ));
                    }
                    Some(m) if attempt >= MISMATCH_ATTEMPTS => {
                        return Err(anyhow!(m).context(format!(
                            "the source served wrong bytes for {} ({attempt} attempts)",
                            job.describe()
                        )));
                    }
                    Some(m) => {
                        return Err(anyhow!(m).context(format!(
                            "the source served wrong bytes for {}; a layer over {} goes into \
                             the bundle while it arrives, so this run cannot fetch it again",
                            job.describe(),
                            human_bytes(window::VERIFY_FIRST)
                        )));
                    }
                    None => return Err(e.context(format!("cannot fetch {}", job.describe()))),
                }
            }
        }
    }
}

/// Reads until `buf` is full or the stream ends; the count read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Stops a transfer as soon as another worker has failed.
struct CancelReader<'a, R> {
    inner: R,
    cancel: &'a AtomicBool,
}

impl<R: Read> Read for CancelReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if interrupt::requested() {
            return Err(interrupt::io_error());
        }
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other(
                "cancelled because another transfer failed",
            ));
        }
        self.inner.read(buf)
    }
}
