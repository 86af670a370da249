//! Writing a bundle as parts: [`PartWriter`] is the `Write` the bundle writer streams
//! into when splitting. Each part is written under its hidden name
//! ([`OutputFiles::partial_part`]) and hashed on the way; [`PartWriter::finish`] renames
//! the parts to their final names and writes the parts index last, so a set without
//! its index is an unfinished one. Every name comes from the save's [`OutputFiles`].
//! A signed save hands `finish` an [`IndexSigner`], which turns the finished index into
//! the statement and signatures stored in it; this module never sees a key.
//!
//! **What may be deleted.** A save only ever deletes files it created: dropping the
//! writer deletes the hidden parts it wrote (unless [`PartWriter::keep`] keeps them for
//! a resume); `finish` removes a final part it renamed when a later rename fails, the
//! index an earlier save of this output wrote, and the parts that earlier index lists by
//! name ([`listed_parts`]) beyond the new set's. Files found by a name pattern are never
//! removed: they are reported in [`SplitSummary::left_alone`].

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use tempfile::TempPath;

use super::index::{
    HEAD_SIZE, PARTS_FORMAT, PartEntry, PartsIndex, listed_parts, look_alike_parts,
};
use crate::bundle::output::{OutputFiles, create_hidden};
use crate::digest::{Digest, Hasher};

/// Signs a finished parts index: returns the statement over it and the signatures of
/// that statement, which `finish` stores in the index's `statement` and `signatures`
/// (see [`bundle::signature::parts_signer`](crate::bundle::signature::parts_signer)).
pub type IndexSigner<'a> = dyn Fn(&PartsIndex) -> io::Result<(String, serde_json::Value)> + 'a;

/// What a finished split write produced.
#[derive(Debug, Clone)]
pub struct SplitSummary {
    /// The parts index.
    pub index: PathBuf,
    /// Every part, in order.
    pub parts: Vec<PathBuf>,
    pub part_size: u64,
    /// What the index says (names, sizes, hashes, identity).
    pub parts_index: PartsIndex,
    /// Files beside the parts that are named like one (`<bundle>.<number>`, as many
    /// digits as the parts have) but that no index of this output listed: airlock did
    /// not write them, so it left them alone; readers report them as extra parts.
    pub left_alone: Vec<PathBuf>,
}

struct OpenPart {
    file: BufWriter<File>,
    temp: TempPath,
    hasher: Hasher,
    head: Hasher,
    size: u64,
}

struct DonePart {
    temp: TempPath,
    size: u64,
    sha256: Digest,
    head: Digest,
}

/// Writes a byte stream as parts of `limit` bytes under temporary names, hashing each
/// part as it goes; see the [module docs](self).
pub struct PartWriter {
    files: OutputFiles,
    limit: u64,
    done: Vec<DonePart>,
    current: Option<OpenPart>,
}

fn temp_in(dir: &Path, prefix: &str) -> io::Result<(File, TempPath)> {
    let temp = tempfile::Builder::new()
        .prefix(prefix)
        // Like any file a user creates: 0666 less the umask (tempfile's default is 0600).
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)?;
    Ok(temp.into_parts())
}

impl PartWriter {
    /// Starts writing the parts of the bundle whose files `files` names; creates the
    /// first part at once, so an unwritable directory fails here. Part `n` is written to
    /// [`OutputFiles::partial_part`] (a fixed name, so that an interrupted save can be
    /// resumed; see [`resume`](crate::bundle::resume)).
    pub fn create(files: &OutputFiles, limit: u64) -> io::Result<PartWriter> {
        if limit == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the part size of a split bundle must be at least 1 byte",
            ));
        }
        let mut w = PartWriter {
            files: files.clone(),
            limit,
            done: Vec::new(),
            current: None,
        };
        w.current = Some(w.open_part()?);
        Ok(w)
    }

    fn open_part(&self) -> io::Result<OpenPart> {
        let n = self.done.len();
        let (file, temp) = create_hidden(&self.files.partial_part(n))?;
        Ok(OpenPart {
            file: BufWriter::with_capacity(1024 * 1024, file),
            temp,
            hasher: Hasher::new(),
            head: Hasher::new(),
            size: 0,
        })
    }

    fn close_current(&mut self) -> io::Result<()> {
        let Some(part) = self.current.take() else {
            return Ok(());
        };
        let file = part.file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        self.done.push(DonePart {
            temp: part.temp,
            size: part.size,
            sha256: part.hasher.finish().0,
            head: part.head.finish().0,
        });
        Ok(())
    }

    /// The hidden files written so far, in order.
    pub(crate) fn partial_files(&self) -> Vec<PathBuf> {
        self.done
            .iter()
            .map(|p| p.temp.to_path_buf())
            .chain(self.current.iter().map(|p| p.temp.to_path_buf()))
            .collect()
    }

    /// Leaves every part written so far under its hidden name (for a later resume)
    /// instead of deleting it.
    pub(crate) fn keep(mut self) {
        if let Some(mut part) = self.current.take() {
            if part.file.flush().is_ok() {
                let _ = part.file.get_ref().sync_data();
            }
            part.temp.disable_cleanup(true);
        }
        for mut p in std::mem::take(&mut self.done) {
            p.temp.disable_cleanup(true);
        }
    }

    /// Closes the last part, renames every part to its final name and writes the parts
    /// index (last). `toc_sha256` is the hash of the bundle's `airlock.json`, if any;
    /// with `signer`, the index is signed (its statement and signatures added) first.
    pub fn finish(
        mut self,
        toc_sha256: Option<&Digest>,
        signer: Option<&IndexSigner<'_>>,
    ) -> io::Result<SplitSummary> {
        self.close_current()?;
        let count = self.done.len();
        let names = self.files.part_names(count);
        let dir = self.files.dir();
        let index = PartsIndex {
            parts_format: PARTS_FORMAT,
            bundle: self.files.name().to_string(),
            id: new_id(&self.done),
            toc_sha256: toc_sha256.map(|d| d.hex().to_string()),
            part_size: self.limit,
            total_size: self.done.iter().map(|p| p.size).sum(),
            parts: self
                .done
                .iter()
                .zip(&names)
                .map(|(p, name)| PartEntry {
                    name: name.clone(),
                    size: p.size,
                    sha256: p.sha256.hex().to_string(),
                    head_sha256: p.head.hex().to_string(),
                })
                .collect(),
            statement: None,
            signatures: None,
        };
        let mut index = index;
        if let Some(sign) = signer {
            let (statement, signatures) = sign(&index)?;
            index.statement = Some(statement);
            index.signatures = Some(signatures);
        }
        let index_final = self.files.index();
        let (mut file, index_temp) = temp_in(dir, &self.files.index_temp_prefix())?;
        let mut json = serde_json::to_vec_pretty(&index).map_err(io::Error::other)?;
        json.push(b'\n');
        file.write_all(&json)?;
        file.sync_all()?;
        drop(file);

        // The parts an earlier save of this output wrote, by its index: the only files
        // beside the output that may be removed (see the module docs).
        let earlier_parts = listed_parts(&index_final, self.files.name());
        // An old index goes first, so no moment shows new parts under an old index.
        match fs::remove_file(&index_final) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut finals = Vec::with_capacity(count);
        for (part, name) in std::mem::take(&mut self.done).into_iter().zip(&names) {
            let to = self.files.beside(name);
            if let Err(e) = part.temp.persist(&to) {
                // Leave no part of an unfinished set under a final name.
                for f in &finals {
                    let _ = fs::remove_file(f);
                }
                return Err(e.error);
            }
            finals.push(to);
        }
        if let Err(e) = index_temp.persist(&index_final) {
            for f in &finals {
                let _ = fs::remove_file(f);
            }
            return Err(e.error);
        }
        // Parts of an earlier, longer bundle under this name would be stray parts now:
        // the ones its index listed go (airlock wrote them); nothing else is touched.
        for name in earlier_parts.iter().filter(|n| !names.contains(n)) {
            let path = self.files.beside(name);
            if fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
                let _ = fs::remove_file(path);
            }
        }
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        let left_alone = look_alike_parts(dir, &index)
            .into_iter()
            .map(|n| self.files.beside(&n))
            .collect();
        Ok(SplitSummary {
            index: index_final,
            parts: finals,
            part_size: self.limit,
            parts_index: index,
            left_alone,
        })
    }
}

impl Write for PartWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.current.as_ref().is_none_or(|p| p.size >= self.limit) {
            self.close_current()?;
            self.current = Some(self.open_part()?);
        }
        let part = self.current.as_mut().expect("a part is open");
        let room = usize::try_from(self.limit - part.size).unwrap_or(usize::MAX);
        let n = part.file.write(&buf[..buf.len().min(room)])?;
        let written = &buf[..n];
        part.hasher.update(written);
        if part.size < HEAD_SIZE {
            let h = usize::try_from(HEAD_SIZE - part.size).unwrap_or(usize::MAX);
            part.head.update(&written[..n.min(h)]);
        }
        part.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.current.as_mut() {
            Some(p) => p.file.flush(),
            None => Ok(()),
        }
    }
}

/// 128 bits unlikely to repeat: time, process, the parts' hashes and the random keys
/// the standard library seeds its hash maps with.
fn new_id(parts: &[DonePart]) -> String {
    use std::hash::BuildHasher;
    let mut h = Hasher::new();
    let random = std::collections::hash_map::RandomState::new();
    h.update(&random.hash_one(parts.len()).to_le_bytes());
    h.update(
        &std::collections::hash_map::RandomState::new()
            .hash_one(7u8)
            .to_le_bytes(),
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.update(&now.to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    for p in parts {
        h.update(p.temp.as_os_str().as_encoded_bytes());
        h.update(p.sha256.hex().as_bytes());
    }
    h.finish().0.hex()[..32].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::parts::PartSet;

    #[test]
    fn writer_cuts_and_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.tar");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = PartWriter::create(&OutputFiles::new(&path), 4096).unwrap();
        for chunk in data.chunks(1000) {
            w.write_all(chunk).unwrap();
        }
        // Nothing under a final name until finish.
        assert!(!dir.path().join("x.tar.000").exists());
        let s = w.finish(None, None).unwrap();
        let idx = &s.parts_index;
        assert_eq!(idx.parts.len(), 3);
        assert_eq!(idx.total_size, 10_000);
        assert_eq!(idx.id.len(), 32);
        let mut joined = Vec::new();
        for (p, e) in s.parts.iter().zip(&idx.parts) {
            let bytes = fs::read(p).unwrap();
            assert_eq!(bytes.len() as u64, e.size);
            assert_eq!(Digest::of(&bytes).hex(), e.sha256);
            assert_eq!(
                Digest::of(&bytes[..bytes.len().min(4096)]).hex(),
                e.head_sha256
            );
            joined.extend(bytes);
        }
        assert_eq!(joined, data);
        let set = PartSet::load(&s.index).unwrap();
        assert!(set.check(true).is_empty());
        assert_eq!(set.part_at(0), 0);
        assert_eq!(set.part_at(4096), 1);
        assert_eq!(set.part_at(9999), 2);
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.tar");
        let mut w = PartWriter::create(&OutputFiles::new(&path), 100).unwrap();
        w.write_all(&[1u8; 450]).unwrap();
        drop(w);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
