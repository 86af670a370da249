//! The staging directory of a save: a private, content-addressed scratch space next to
//! the output (same file system, so nothing is copied across devices).
//!
//! Small objects (indexes, manifests, configs) are written here while the image graph
//! is walked, and layers land here as they are fetched, each verified before it is
//! moved under its digest name. A file under `blobs/sha256/<hex>` is therefore always
//! complete and correct; partial downloads only ever exist under a `.part` name.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::digest::Digest;

pub struct Staging {
    dir: tempfile::TempDir,
}

impl Staging {
    /// Creates `.<output name>.staging-XXXX` beside `output`.
    pub fn beside(output: &Path) -> anyhow::Result<Staging> {
        let parent = match output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = tempfile::Builder::new()
            .prefix(&format!(".{name}.staging-"))
            .tempdir_in(&parent)
            .with_context(|| {
                format!(
                    "cannot create a staging directory in `{}` (is it writable?)",
                    parent.display()
                )
            })?;
        fs::create_dir_all(dir.path().join("blobs/sha256"))?;
        Ok(Staging { dir })
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Where the verified blob `digest` lives once staged.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.path().join(digest.blob_path())
    }

    /// Where a blob is written while it downloads.
    pub fn part_path(&self, digest: &Digest) -> PathBuf {
        self.dir
            .path()
            .join(format!("blobs/sha256/{}.part", digest.hex()))
    }

    /// Stores bytes already verified against `digest`. Several images may share an
    /// object and stage it from different threads at once: each writes its own
    /// temporary file and the rename is atomic, so the name only ever holds whole content.
    pub fn put(&self, digest: &Digest, bytes: &[u8]) -> io::Result<()> {
        let target = self.blob_path(digest);
        if target.exists() {
            return Ok(());
        }
        let mut tmp = tempfile::NamedTempFile::new_in(self.dir.path().join("blobs/sha256"))?;
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
