//! Concurrent layer fetching into the staging directory, feeding the bundle writer.
//!
//! `workers` threads take layers from a shared queue, stream each through a
//! [`VerifyingReader`] into `staging/blobs/sha256/<hex>.part`, and rename it to its
//! digest name only once size and digest check out. Finished layers go through a
//! bounded channel to the caller's thread, which appends them to the bundle (the tar
//! stream is sequential) and deletes the staged copy. The channel bound keeps the
//! scratch space to about two layers per worker, whatever the bundle size.
//! The first failure stops all workers (reads check a cancel flag) and is returned with
//! the blob and the images it belongs to.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow};

use super::staging::Staging;
use crate::digest::{Mismatch, VerifyingReader};
use crate::oci::Descriptor;
use crate::progress::{Progress, ProgressReader, human_bytes};
use crate::source::BlobStore;

/// How often a blob whose bytes do not match its digest is fetched again before the save fails.
const MISMATCH_ATTEMPTS: usize = 3;

/// One layer to fetch, where from, and which image names need it (for messages).
pub struct LayerJob {
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

/// Fetches every job and hands each verified, staged file to `sink` on the calling thread.
pub fn fetch_all(
    jobs: Vec<LayerJob>,
    staging: &Staging,
    workers: usize,
    progress: &dyn Progress,
    mut sink: impl FnMut(&LayerJob, File) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let cancel = AtomicBool::new(false);
    let queue = Mutex::new(jobs.iter().enumerate());
    let (tx, rx) = sync_channel::<(usize, anyhow::Result<()>)>(workers);
    let mut first_error = None;
    std::thread::scope(|scope| {
        for _ in 0..workers.min(jobs.len()).max(1) {
            let tx = tx.clone();
            let (queue, cancel) = (&queue, &cancel);
            scope.spawn(move || {
                loop {
                    if cancel.load(Ordering::Relaxed) {
                        break;
                    }
                    let Some((i, job)) = queue.lock().expect("queue lock").next() else {
                        break;
                    };
                    let result = fetch_one(job, staging, progress, cancel);
                    if tx.send((i, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (i, result) in rx {
            let job = &jobs[i];
            let outcome = result.and_then(|()| {
                let file = staging
                    .open(&job.desc.digest)
                    .with_context(|| format!("cannot reopen staged {}", job.describe()))?;
                sink(job, file)?;
                staging.remove(&job.desc.digest);
                Ok(())
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
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_data().ok();
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
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other(
                "cancelled because another transfer failed",
            ));
        }
        self.inner.read(buf)
    }
}
