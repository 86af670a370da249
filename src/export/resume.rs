//! Resuming an interrupted save, and the lock that keeps two saves off one output.
//!
//! Every file a save keeps beside its output has a fixed hidden name derived from the
//! output's (`out.tar.zst` → `.out.tar.zst.…`), all given by one [`OutputFiles`]
//! computed once per save:
//!
//! | name | what |
//! |------|------|
//! | `.out.tar.zst.lock` | held while a save runs: pid and process start time ([`OutputLock`]) |
//! | `.out.tar.zst.partial` (split: `.out.tar.zst.000.partial`, …) | the bundle being written |
//! | `.out.tar.zst.resume` (split: `.out.tar.zst.000.resume`, …) | an interrupted run's partial, being reused |
//! | `.out.tar.zst.staging/` | only from earlier airlock versions: scratch is in `--scratch DIR` now ([`Staging`](super::staging::Staging)) |
//!
//! [`prepare`] runs at the start of a save: with `--fresh` it deletes any partial
//! bundle; otherwise it renames the partial aside to the `.resume` name (so the new
//! writer can use the partial name) and scans it once ([`Partial::scan`]). The fetch
//! stage then takes each layer the old file holds from it instead of the network,
//! verified; once they are all copied the old file is deleted, so the disk holds at
//! most the old partial and the new bundle. Layers keep the bundle's fixed order (so
//! that a resumed save writes the same bytes as an uninterrupted one): the interrupted
//! run wrote in that order too, so what its partial holds is the first layers of it,
//! and a rerun of the same command copies them first and deletes the old file right
//! after. (With other inputs, the old file stays until the last layer it holds is
//! copied.) If the rerun is stopped while it still copies, the `.resume` file is the
//! more complete one and the next run starts from it again (a `.partial` beside a
//! `.resume` is dropped). [`Reuse`] is that bookkeeping during a run.
//!
//! **Compact saves** (`--compact`) differ in two ways. Their layers are raw tars plus
//! recipes, proved again from the partial by `compact::identify_all`; [`Reuse::plan`]
//! points each such layer's job at its raw tar in the partial (a local blob store,
//! [`KeptRaw`], read when the layer's turn comes and stored by `compact::write_kept`,
//! which the writer checks against the raw sha256 again). And their frames are coarse
//! (32–128 MiB): a layer copied into the new bundle is on disk only once its frame is
//! compressed and written, and a stopped save keeps only complete frames without
//! waiting for those in flight. So the old partial stays until the save finishes, and a
//! save that stops keeps whichever of the two files holds more, as found by scanning
//! the new one ([`keep_compact`]); the other is deleted.
//!
//! **What may be deleted.** A save only ever deletes files it created, never files
//! found by a name pattern: here, the hidden partial and resume files under their fixed
//! names (a save holding the output's lock is the only writer of those names), the
//! lock file it linked into place and its own `.lock.<pid>` temporary, and a stale lock
//! whose process is gone.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};

use super::compact::Recipes;
use super::fetch::{LayerJob, Origin};
use crate::bundle::output::OutputFiles;
use crate::bundle::resume::{KeptBlob, Partial};
use crate::digest::Digest;
use crate::oci::Descriptor;
use crate::oci::RawManifest;
use crate::progress::human_bytes;
use crate::source::BlobStore;

/// The files of an unfinished bundle under the given names: the single file if it
/// exists, else the consecutive parts from 000.
fn existing(single: PathBuf, part: impl Fn(usize) -> PathBuf) -> Vec<PathBuf> {
    if single.is_file() {
        return vec![single];
    }
    (0..)
        .map(part)
        .take_while(|p| p.is_file())
        .collect::<Vec<_>>()
}

fn partial_files(files: &OutputFiles) -> Vec<PathBuf> {
    existing(files.partial(), |n| files.partial_part(n))
}

fn resume_files(files: &OutputFiles) -> Vec<PathBuf> {
    existing(files.resume(), |n| files.resume_part(n))
}

fn remove_all(files: &[PathBuf]) -> anyhow::Result<()> {
    for f in files {
        match fs::remove_file(f) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove `{}`", f.display()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Finds what an interrupted save to the output `files` names left and makes it ready
/// for reuse (see the module docs); `None` when there is nothing to reuse or `fresh` is
/// set.
pub(crate) fn prepare(files: &OutputFiles, fresh: bool) -> anyhow::Result<Option<Partial>> {
    let partial = partial_files(files);
    let resume = resume_files(files);
    if fresh {
        remove_all(&partial)?;
        remove_all(&resume)?;
        return Ok(None);
    }
    let source = if !resume.is_empty() {
        // A rerun stopped while copying: its .partial holds only a part of the .resume.
        remove_all(&partial)?;
        resume
    } else if !partial.is_empty() {
        let mut moved = Vec::with_capacity(partial.len());
        for (i, from) in partial.iter().enumerate() {
            let to = if partial.len() == 1 && *from == files.partial() {
                files.resume()
            } else {
                files.resume_part(i)
            };
            fs::rename(from, &to).with_context(|| {
                format!(
                    "cannot rename `{}` to `{}` to resume from it; add --fresh to start over",
                    from.display(),
                    to.display()
                )
            })?;
            moved.push(to);
        }
        moved
    } else {
        return Ok(None);
    };
    let scanned = Partial::scan(source.clone()).with_context(|| {
        format!(
            "cannot read `{}`, left by an interrupted save; add --fresh to start over",
            source[0].display()
        )
    })?;
    if scanned.is_empty() {
        scanned.discard();
        return Ok(None);
    }
    Ok(Some(scanned))
}

/// What a rerun takes from the partial bundle of an interrupted save, and when that
/// bundle may go: the bookkeeping `save` does around the fetch. The layers the partial
/// bundle holds are counted ([`Reuse::plan`]); each one copied into the new
/// bundle is counted ([`Reuse::copied`]), and after the last one the old file is
/// deleted, so the disk never holds more than it and the new bundle. Until then the
/// old file is the more complete one, and a save that stops keeps it
/// ([`Reuse::pending`]).
pub(crate) struct Reuse<'p> {
    partial: Option<&'p Partial>,
    /// Layers still to copy from `partial`.
    left: usize,
    /// Layers `partial` held at the start.
    held: usize,
    /// Compact layers whose raw tar is taken from `partial` (their jobs read it there).
    raw: HashSet<Digest>,
    /// A compact save: `partial` stays until the save finishes ([`keep_compact`]).
    hold: bool,
}

impl<'p> Reuse<'p> {
    /// Counts the layers of `jobs` that `partial` holds; a partial bundle holding none
    /// of them is deleted at once. A compact layer (in `recipes`) whose raw tar the
    /// partial holds under the same recipe — the one `compact::identify_all` proved on
    /// those bytes — has its job read that raw tar from the partial ([`KeptRaw`]). The
    /// order of `jobs` is left alone: it is the bundle's fixed order, the one the
    /// interrupted run wrote in too, so what it kept is a prefix of it (see the module
    /// docs).
    pub(crate) fn plan(
        partial: Option<&'p Partial>,
        jobs: &mut [LayerJob],
        recipes: &Recipes,
    ) -> Reuse<'p> {
        let mut reuse = Reuse {
            partial,
            left: 0,
            held: 0,
            raw: HashSet::new(),
            hold: !recipes.is_empty(),
        };
        let Some(p) = partial else { return reuse };
        for job in jobs {
            let digest = &job.desc.digest;
            let kept_raw = recipes
                .get(digest)
                .and_then(|f| {
                    p.compact_layer(digest).filter(|c| {
                        c.raw == f.raw_digest && c.raw_size == f.raw_len && c.recipe == f.recipe
                    })
                })
                .and_then(|c| p.blob(&c.raw));
            if let Some(blob) = kept_raw {
                job.store = Arc::new(KeptRaw {
                    blob,
                    file: p.files()[0].clone(),
                });
                reuse.raw.insert(digest.clone());
                reuse.left += 1;
            } else if p.has(digest, job.desc.size) {
                reuse.left += 1;
            }
        }
        reuse.held = reuse.left;
        if reuse.left == 0 {
            p.discard();
        }
        reuse
    }

    /// Whether `job` is a compact layer whose raw tar comes from the partial bundle: its
    /// bytes are that raw tar (`compact::write_kept`), not the gzip blob.
    pub(crate) fn takes_raw(&self, job: &LayerJob) -> bool {
        self.raw.contains(&job.desc.digest)
    }

    /// Where `job`'s bytes came from, as the fetch reports it (`origin`) but counting a
    /// raw tar read from the partial as reused.
    pub(crate) fn origin(&self, job: &LayerJob, origin: Origin) -> Origin {
        if self.takes_raw(job) {
            Origin::Reused
        } else {
            origin
        }
    }

    /// The partial bundle this run resumes from, if any.
    pub fn partial(&self) -> Option<&'p Partial> {
        self.partial
    }

    /// Counts a layer written into the new bundle; deletes the partial bundle once every
    /// layer it held has been copied.
    pub fn copied(&mut self, job: &LayerJob) {
        let Some(p) = self.partial else { return };
        if self.left > 0 && (self.takes_raw(job) || p.has(&job.desc.digest, job.desc.size)) {
            self.left -= 1;
            if self.left == 0 && !self.hold {
                p.discard();
            }
        }
    }

    /// The partial bundle while it still holds layers the new one lacks: the file to
    /// keep (and name) when the save stops now. (A compact save's stays to the end and
    /// may hold more or less than the new one: [`keep_compact`].)
    pub(crate) fn pending(&self) -> Option<&'p Partial> {
        self.partial
            .filter(|_| self.left > 0 || (self.hold && self.held > 0))
    }

    /// The save is complete: the partial bundle, if any, goes.
    pub fn finish(self) {
        if let Some(p) = self.partial {
            p.discard();
        }
    }
}

/// What a compact save that stopped keeps (see the module docs): the files of its new
/// partial bundle, `new_files` (left by the writer; they hold only complete frames), or
/// the earlier run's partial, whichever holds more bytes of whole blobs, with the blobs
/// and bytes it holds; the other is deleted. `None` when neither holds a whole blob
/// (then both are gone).
pub(crate) fn keep_compact(
    reuse: &Reuse<'_>,
    new_files: Vec<PathBuf>,
) -> Option<(Vec<PathBuf>, (usize, u64))> {
    let new = new_files
        .iter()
        .all(|f| f.is_file())
        .then(|| Partial::scan(new_files).ok())
        .flatten();
    let new_bytes = new.as_ref().map_or(0, Partial::bytes);
    let held = |p: &Partial| (p.files().to_vec(), (p.len(), p.bytes()));
    match reuse.pending() {
        Some(old) if old.bytes() >= new_bytes => {
            if let Some(n) = new {
                n.discard();
            }
            Some(held(old))
        }
        old => {
            if let Some(o) = old {
                o.discard();
            }
            let new = new?;
            if new.is_empty() {
                new.discard();
                return None;
            }
            Some(held(&new))
        }
    }
}

/// A compact layer's raw tar in the partial bundle of an interrupted run, as the blob
/// store its job reads when the layer's turn comes ([`Reuse::plan`]). Its `blob` is the
/// raw tar, not the gzip blob the descriptor names: only `compact::write_kept` reads it.
struct KeptRaw {
    blob: KeptBlob,
    file: PathBuf,
}

impl BlobStore for KeptRaw {
    fn describe(&self) -> String {
        format!("the partial bundle {}", self.file.display())
    }

    fn manifest(&self, desc: &Descriptor) -> anyhow::Result<RawManifest> {
        bail!(
            "{} holds no manifest {} (only layers are taken from it)",
            self.describe(),
            desc.digest
        )
    }

    fn blob(&self, _desc: &Descriptor) -> anyhow::Result<Box<dyn Read + Send>> {
        self.blob
            .open()
            .with_context(|| format!("cannot read {}", self.describe()))
    }

    fn local(&self) -> bool {
        true
    }
}

/// `N blob(s) (X) are kept in FILE` for the files of an unfinished bundle.
pub(crate) fn describe_files(files: &[PathBuf]) -> String {
    match files {
        [] => "nothing".to_string(),
        [one] => one.display().to_string(),
        [first, .., last] => format!(
            "{} … {} ({} parts)",
            first.display(),
            last.file_name().unwrap_or_default().to_string_lossy(),
            files.len()
        ),
    }
}

/// The notice for a save that stopped with something kept.
pub(crate) fn kept_notice(
    files: &[PathBuf],
    (blobs, bytes): (usize, u64),
    (all_blobs, all_bytes): (usize, u64),
) -> String {
    format!(
        "{blobs} of {all_blobs} blobs ({} of {}) are kept in {}; run the same command again to resume, \
         or add --fresh to start over",
        human_bytes(bytes),
        human_bytes(all_bytes),
        describe_files(files)
    )
}

/// The lock file of a running save; removed when dropped.
#[derive(Debug)]
pub(crate) struct OutputLock {
    path: PathBuf,
}

impl OutputLock {
    /// Takes the lock of the output `files` names, or fails naming the save that holds
    /// it. A lock left by a process that no longer runs (killed, power loss) is taken over.
    pub(crate) fn acquire(files: &OutputFiles) -> anyhow::Result<OutputLock> {
        let output = files.output();
        let path = files.lock();
        let me = std::process::id();
        let content = format!("{me} {}\n", start_time(me).unwrap_or(0));
        // Written whole under a private name, then linked into place: the lock never
        // exists without its content.
        let tmp = files.lock_temp(me);
        let write_tmp = || -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            f.write_all(content.as_bytes())
        };
        write_tmp().with_context(|| {
            format!(
                "cannot create the lock file `{}` (is the directory writable?)",
                path.display()
            )
        })?;
        let result = (|| {
            for _ in 0..5 {
                match fs::hard_link(&tmp, &path) {
                    Ok(()) => return Ok(OutputLock { path: path.clone() }),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        let held = fs::read_to_string(&path).unwrap_or_default();
                        let mut words = held.split_whitespace();
                        let pid: Option<u32> = words.next().and_then(|w| w.parse().ok());
                        let start: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
                        if let Some(pid) = pid
                            && alive(pid, start)
                        {
                            bail!(
                                "another airlock save is writing {} (pid {pid}); wait for it to finish \
                                 (or stop it), or, if no save is running, remove `{}`",
                                output.display(),
                                path.display()
                            );
                        }
                        // Stale: its process is gone.
                        let _ = fs::remove_file(&path);
                    }
                    Err(e) => {
                        return Err(e).with_context(|| {
                            format!("cannot create the lock file `{}`", path.display())
                        });
                    }
                }
            }
            bail!(
                "cannot take the lock file `{}`: other saves keep taking it",
                path.display()
            )
        })();
        let _ = fs::remove_file(&tmp);
        result
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Whether process `pid` runs, and (when `start` is known) is the one that started at
/// `start` (not a later process that got the same pid). Without `/proc`, a lock is
/// taken to be held: the message says how to remove it.
fn alive(pid: u32, start: u64) -> bool {
    if !Path::new("/proc/self/stat").exists() {
        return true;
    }
    match start_time(pid) {
        None => false,
        Some(now) => start == 0 || now == start,
    }
}

/// The start time of process `pid` (field 22 of `/proc/<pid>/stat`), if it runs.
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_is_exclusive_and_stale_locks_are_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutputFiles::new(&dir.path().join("b.tar.zst"));
        let lock = OutputLock::acquire(&out).unwrap();
        let err = OutputLock::acquire(&out).unwrap_err().to_string();
        assert!(
            err.contains("another airlock save") && err.contains(&std::process::id().to_string()),
            "{err}"
        );
        drop(lock);
        assert!(!out.lock().exists());
        // A lock whose process is gone (no such pid, or not started at that time).
        fs::write(out.lock(), "4194303 1\n").unwrap();
        let lock = OutputLock::acquire(&out).unwrap();
        drop(lock);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// Leaves the partial bundle of a save to `out` holding `blobs`; returns its file.
    fn kept_partial(out: &Path, blobs: &[&[u8]]) -> PathBuf {
        use crate::bundle::writer::{BundleWriter, WriteOptions};
        let mut w = BundleWriter::create(out, WriteOptions::for_path(out)).unwrap();
        w.add_dir("blobs/sha256").unwrap();
        for b in blobs {
            w.add_blob(&Digest::of(b), b.len() as u64, &mut &b[..])
                .unwrap();
        }
        w.keep_on_drop(true);
        drop(w);
        OutputFiles::new(out).partial()
    }

    #[test]
    fn a_stopped_compact_save_keeps_the_fuller_partial_and_deletes_the_other() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("b.tar");
        let files = OutputFiles::new(&out);
        let (a, b, c) = (&[1u8; 700][..], &[2u8; 900][..], &[3u8; 50][..]);
        fn reuse_of(p: &Partial) -> Reuse<'_> {
            Reuse {
                partial: Some(p),
                left: 0,
                held: 1,
                raw: HashSet::new(),
                hold: true,
            }
        }
        for (old_blobs, new_blobs, keeps_new) in [
            (&[a][..], &[a, b][..], true),
            (&[a, b][..], &[c][..], false),
            (&[a][..], &[][..], false),
        ] {
            fs::rename(kept_partial(&out, old_blobs), files.resume()).unwrap();
            let old = Partial::scan(vec![files.resume()]).unwrap();
            let new = kept_partial(&out, new_blobs);
            let (kept, (n, bytes)) = keep_compact(&reuse_of(&old), vec![new.clone()]).unwrap();
            let want = if keeps_new { new_blobs } else { old_blobs };
            assert_eq!(n, want.len());
            assert_eq!(bytes, want.iter().map(|b| b.len() as u64).sum::<u64>());
            assert_eq!(kept, vec![if keeps_new { new } else { files.resume() }]);
            // The other file is gone; only the kept one is left.
            assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
            fs::remove_file(&kept[0]).unwrap();
        }
        // Nothing whole anywhere: nothing kept, nothing left.
        let new = kept_partial(&out, &[]);
        let none = Reuse {
            partial: None,
            left: 0,
            held: 0,
            raw: HashSet::new(),
            hold: true,
        };
        assert!(keep_compact(&none, vec![new]).is_none());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn own_start_time_is_readable() {
        assert!(start_time(std::process::id()).is_some());
        assert!(alive(
            std::process::id(),
            start_time(std::process::id()).unwrap()
        ));
    }
}
