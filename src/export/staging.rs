//! The staging directory of a save: a private, content-addressed scratch space in the
//! scratch directory (`--scratch DIR`, default the system temp dir), **never** beside
//! the output, so that every byte that reaches the output's disk is a bundle byte,
//! written once (issue 10: the output is often a slow, wearing USB disk).
//!
//! What lives here, all of it small or bounded:
//! - small objects (indexes, manifests, configs), written while the image graph is
//!   walked, each verified before it is stored under `blobs/sha256/<hex>`;
//! - layers of local images that airlock compresses ([`crate::source::convert`]) and the
//!   export of the Docker engine ([`crate::source::daemon`]), via [`Staging::root`];
//! - spill files ([`Staging::spill_path`]): the part of a layer fetched ahead of the one
//!   being written that does not fit the memory window ([`super::window`]); each is
//!   deleted as soon as it has been copied into the bundle.
//!
//! A file under `blobs/sha256/<hex>` is always complete and correct.
//!
//! The directory has a fixed name per output, `airlock-save-<hash of the output's
//! absolute path>`, so that whatever a killed save left there is removed by the next
//! save to the same output (which holds the output's lock, so no other save is using
//! it); it is removed at start and at the end.
//!
//! **What may be deleted.** A save only ever deletes files it created, never files
//! found by a name pattern: the directory holds a marker file ([`MARKER`]) written when
//! it is made, and a directory of that name without the marker is someone else's — the
//! save refuses to start rather than delete it. The same rule removes the
//! `.<output>.staging` directory an earlier airlock kept beside the output
//! ([`OutputFiles::staging`]) when a save of it was killed: with the marker it goes,
//! without it it is left alone.

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

/// Removes `dir` when it is a staging directory airlock made (it has the marker).
/// `Ok(false)`: there is something else under that name.
fn remove_own(dir: &Path) -> anyhow::Result<bool> {
    if fs::symlink_metadata(dir).is_err() {
        return Ok(true);
    }
    if !dir.join(MARKER).is_file() {
        return Ok(false);
    }
    fs::remove_dir_all(dir).with_context(|| {
        format!(
            "cannot remove `{}`, left by an earlier save; remove it by hand",
            dir.display()
        )
    })?;
    Ok(true)
}

impl Staging {
    /// Creates the staging directory of the save to the output `files` names in
    /// `scratch`, emptying what an earlier, killed save to the same output left there.
    /// The caller holds the output's lock.
    pub fn create(scratch: &Path, files: &OutputFiles) -> anyhow::Result<Staging> {
        // Left beside the output by an airlock that staged there; ours only with the marker.
        remove_own(&files.staging())?;
        let dir = scratch.join(Self::name(files));
        if !remove_own(&dir)? {
            anyhow::bail!(
                "`{}` is in the way: airlock needs that name for its scratch space, and did \
                 not make what is there; move it away (or give another --scratch DIR)",
                dir.display()
            );
        }
        let made = fs::create_dir(&dir)
            .and_then(|()| fs::write(dir.join(MARKER), b"scratch space of an airlock save\n"))
            .and_then(|()| fs::create_dir_all(dir.join("blobs/sha256")));
        made.with_context(|| {
            format!(
                "cannot create a staging directory in `{}` (is it writable? choose another \
                 with --scratch DIR)",
                scratch.display()
            )
        })?;
        Ok(Staging { dir })
    }

    /// `airlock-save-<16 hex digits>`, from the output's absolute path: one name per output.
    fn name(files: &OutputFiles) -> String {
        let dir = fs::canonicalize(files.dir()).unwrap_or_else(|_| files.dir().to_path_buf());
        let full = dir.join(files.name());
        let digest = Digest::of(full.as_os_str().as_encoded_bytes());
        format!("airlock-save-{}", &digest.hex()[..16])
    }

    pub fn root(&self) -> &Path {
        &self.dir
    }

    /// Where the verified blob `digest` lives once staged.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.blob_path())
    }

    /// Where the part of layer `digest` that does not fit the memory window goes
    /// while it waits for its turn in the bundle.
    pub(crate) fn spill_path(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join(format!("blobs/sha256/{}.spill", digest.hex()))
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lives_in_scratch_and_cleans_up_only_its_own() {
        let out_dir = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let files = OutputFiles::new(&out_dir.path().join("b.tar"));
        // A marked leftover beside the output goes; the save writes nothing there.
        fs::create_dir(files.staging()).unwrap();
        fs::write(files.staging().join(MARKER), "").unwrap();
        let s = Staging::create(scratch.path(), &files).unwrap();
        assert!(s.root().starts_with(scratch.path()));
        assert_eq!(fs::read_dir(out_dir.path()).unwrap().count(), 0);
        let d = Digest::of(b"x");
        s.put(&d, b"x").unwrap();
        let root = s.root().to_path_buf();
        drop(s);
        assert!(!root.exists());
        // Someone else's directory under the name is refused, not deleted.
        fs::create_dir(&root).unwrap();
        fs::write(root.join("theirs"), "").unwrap();
        let err = Staging::create(scratch.path(), &files).err().unwrap();
        assert!(format!("{err:#}").contains("is in the way"), "{err:#}");
        assert!(root.join("theirs").exists());
    }
}
