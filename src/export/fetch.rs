//! Concurrent layer fetching into the staging directory, feeding the bundle writer.
//!
//! `workers` threads take layers from a shared queue, stream each through a
//! [`VerifyingReader`] into `staging/blobs/sha256/<hex>.part`, and rename it to its
//! digest name only once size and digest check out. Finished layers go through a
//! bounded channel to the caller's thread, which appends them to the bundle (the tar
//! stream is sequential) and deletes the staged copy. The channel bound keeps the
//! scratch space to about two layers per worker, whatever the bundle size.
//! The first failure stops all workers (reads check a cancel flag) and is returned with
//! the blob and the images it belongs to; Ctrl-C ([`crate::interrupt`]) stops them the
//! same way.
//!
//! When a save resumes, layers that the interrupted run's partial bundle holds
//! ([`Partial`]) are not fetched: a worker reads the old copy once through a
//! [`VerifyingReader`] and, when it is sound, the caller's thread streams it from there
//! straight into the new bundle ([`Origin::Reused`]); a copy that is cut or damaged is
//! fetched from the source instead, as if it had not been there.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow};

use super::staging::Staging;
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
    /// Fetched from the source (and staged).
    Fetched,
    /// Copied from the partial bundle of an interrupted run.
    Reused,
}

/// Fetches every job (or, with `reuse`, takes it from an interrupted run's partial
/// bundle) and hands each verified blob's bytes to `sink` on the calling thread.
pub(crate) fn fetch_all(
    jobs: Vec<LayerJob>,
    staging: &Staging,
    workers: usize,
    reuse: Option<&Partial>,
    progress: &dyn Progress,
    mut sink: impl FnMut(&LayerJob, Origin, &mut dyn Read) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let cancel = AtomicBool::new(false);
    let queue = Mutex::new(jobs.iter().enumerate());
    let (tx, rx) = sync_channel::<(usize, anyhow::Result<Origin>)>(workers);
    let mut first_error = None;
    std::thread::scope(|scope| {
        for _ in 0..workers.min(jobs.len()).max(1) {
            let tx = tx.clone();
            let (queue, cancel) = (&queue, &cancel);
            scope.spawn(move || {
                loop {
                    if cancel.load(Ordering::Relaxed) || interrupt::requested() {
                        break;
                    }
                    let Some((i, job)) = lock(queue).next() else {
                        break;
                    };
                    let result = match reuse.filter(|p| p.has(&job.desc.digest, job.desc.size)) {
                        Some(partial) => match check_kept(job, partial, progress, cancel) {
                            Ok(()) => Ok(Origin::Reused),
                            Err(e) if stopped(cancel) => Err(e),
                            Err(e) => {
                                progress.message(&format!(
                                    "{}: the copy in {} is unusable ({e:#}); fetching it again",
                                    job.desc.digest,
                                    partial.files()[0].display()
                                ));
                                fetch_one(job, staging, progress, cancel).map(|()| Origin::Fetched)
                            }
                        },
                        None => fetch_one(job, staging, progress, cancel).map(|()| Origin::Fetched),
                    };
                    if tx.send((i, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (i, result) in rx {
            let job = &jobs[i];
            let outcome = result.and_then(|origin| match (origin, reuse) {
                (Origin::Reused, Some(partial)) => {
                    let kept = partial.open(&job.desc.digest).with_context(|| {
                        format!(
                            "cannot read {} from {}",
                            job.describe(),
                            partial.files()[0].display()
                        )
                    })?;
                    sink(job, origin, &mut InterruptibleReader(kept))
                }
                _ => {
                    let mut file = staging
                        .open(&job.desc.digest)
                        .with_context(|| format!("cannot reopen staged {}", job.describe()))?;
                    sink(job, origin, &mut file)?;
                    staging.remove(&job.desc.digest);
                    Ok(())
                }
            });
            if let Err(e) = outcome
                && first_error.is_none()
            {
                cancel.store(true, Ordering::Relaxed);
                first_error = Some(e);
            }
        }
    });
    match first_error {
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
    let item = progress.item(
        &format!("{} (kept)", job.desc.digest.short()),
        job.desc.size,
    );
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

fn fetch_one(
    job: &LayerJob,
    staging: &Staging,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<()> {
    let digest = &job.desc.digest;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let item = progress.item(digest.short(), job.desc.size);
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
            let part = staging.part_path(digest);
            let file = File::create(&part)
                .with_context(|| format!("cannot create `{}`", part.display()))?;
            let mut out = BufWriter::with_capacity(1 << 20, file);
            io::copy(&mut verifying, &mut out)?;
            // No fsync: staging is scratch space, emptied at every start, and each staged
            // blob is verified again as it is copied into the bundle.
            out.into_inner().map_err(|e| e.into_error())?;
            fs::rename(&part, staging.blob_path(digest))?;
            Ok(())
        })();
        match result {
            Ok(()) => {
                item.done();
                return Ok(());
            }
            Err(e) => {
                let _ = fs::remove_file(staging.part_path(digest));
                let mismatch = e
                    .downcast_ref::<io::Error>()
                    .and_then(Mismatch::from_io)
                    .cloned();
                match mismatch {
                    Some(m) if attempt < MISMATCH_ATTEMPTS => {
                        progress.message(&format!(
                            "{digest}: {m}; fetching it again (attempt {} of {MISMATCH_ATTEMPTS})",
                            attempt + 1
                        ));
                    }
                    Some(m) => {
                        return Err(anyhow!(m).context(format!(
                            "the source served wrong bytes for {} ({attempt} attempts)",
                            job.describe()
                        )));
                    }
                    None => return Err(e.context(format!("cannot fetch {}", job.describe()))),
                }
            }
        }
    }
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
