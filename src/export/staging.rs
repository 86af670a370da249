//! The staging directory of a save: a private, content-addressed scratch space next to
//! the output (same file system, so nothing is copied across devices).
//!
//! Small objects (indexes, manifests, configs) are written here while the image graph
//! is walked, and layers land here as they are fetched, each verified before it is
//! moved under its digest name. A file under `blobs/sha256/<hex>` is therefore always
//! complete and correct; partial downloads only ever exist under a `.part` name.
//!
//! The directory has a fixed name, `.<output name>.staging`, so that whatever a killed
//! save left there is removed by the next save to the same output (which holds the
//! output's lock, so no other save is using it); it is removed at start and at the end.
//! **What may be deleted.** A save only ever deletes files it created, never files
//! found by a name pattern: the directory holds a marker file ([`MARKER`]) written when
//! it is made, and a directory of that name without the marker is someone else's — the
//! save refuses to start rather than delete it. The name comes from the save's
//! [`OutputFiles`].

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::bundle::output::OutputFiles;
use crate::digest::Digest;

/// The file that marks a staging directory as airlock's own.
pub(crate) const MARKER: &str = "airlock-staging";

pub(crate) struct Staging {
    dir: PathBuf,
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Staging {
    /// Creates `.<output name>.staging` beside the output `files` names
    /// ([`OutputFiles::staging`]), emptying what an earlier, killed save left there. The
    /// caller holds the output's lock.
    pub fn beside(files: &OutputFiles) -> anyhow::Result<Staging> {
        let parent = files.dir();
        let dir = files.staging();
        if fs::symlink_metadata(&dir).is_ok() {
            if !dir.join(MARKER).is_file() {
                anyhow::bail!(
                    "`{}` is in the way: airlock needs that name for its scratch space, and did \
                     not make what is there; move it away (or write the bundle under another name)",
                    dir.display()
                );
            }
            fs::remove_dir_all(&dir).with_context(|| {
                format!(
                    "cannot remove `{}`, left by an earlier save; remove it by hand",
                    dir.display()
                )
            })?;
        }
        let made = fs::create_dir(&dir)
            .and_then(|()| fs::write(dir.join(MARKER), b"scratch space of an airlock save\n"))
            .and_then(|()| fs::create_dir_all(dir.join("blobs/sha256")));
        made.with_context(|| {
            format!(
                "cannot create a staging directory in `{}` (is it writable?)",
                parent.display()
            )
        })?;
        Ok(Staging { dir })
    }

    pub fn root(&self) -> &Path {
        &self.dir
    }

    /// Where the verified blob `digest` lives once staged.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.blob_path())
    }

    /// Where a blob is written while it downloads.
    pub(crate) fn part_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(format!("blobs/sha256/{}.part", digest.hex()))
    }

    /// Stores bytes already verified against `digest`. Several images may share an
    /// object and stage it from different threads at once: each writes its own
    /// temporary file and the rename is atomic, so the name only ever holds whole content.
    pub fn put(&self, digest: &Digest, bytes: &[u8]) -> io::Result<()> {
        let target = self.blob_path(digest);
        if target.exists() {
            return Ok(());
        }
        let mut tmp = tempfile::NamedTempFile::new_in(self.dir.join("blobs/sha256"))?;
        tmp.write_all(bytes)?;
        tmp.persist(&target).map_err(|e| e.error)?;
        Ok(())
    }

    pub fn open(&self, digest: &Digest) -> io::Result<File> {
        File::open(self.blob_path(digest))
    }

    pub fn remove(&self, digest: &Digest) {
        let _ = fs::remove_file(self.blob_path(digest));
    }
}
