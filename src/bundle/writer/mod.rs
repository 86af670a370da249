//! Writing a bundle: a tar stream, optionally cut into independent zstd frames that are
//! compressed in parallel, with a seek table at the end.
//!
//! The writer knows tar entries and, through [`BundleWriter::add_head`], the bundle's
//! fixed head (the layout file, the TOC, the Docker documents and the blob directories,
//! in the order `docs/bundle-format.md` gives); which blobs a bundle holds and in what
//! order is the save pipeline's business. What it guarantees:
//!
//! - Nothing half-written ever sits under the final name: bytes go to a hidden file in
//!   the same directory, [`OutputFiles::partial`] (`.<name>.partial`), which
//!   [`BundleWriter::finish`] fsyncs and renames into place. Dropping the writer deletes
//!   it (the only file it ever deletes, and one it created), unless
//!   [`BundleWriter::keep_on_drop`] was set: then everything compressed so far
//!   is written out (with coarse frames only the frames already compressed: the
//!   writer never waits for one in flight) and the file is left for `save` to resume
//!   from (see [`resume`](super::resume)). The name is fixed so that a rerun finds it; the save
//!   pipeline holds a lock file so two saves never write it at once.
//! - Every blob is hashed while it streams ([`VerifyingReader`]); a mismatch fails the
//!   call and poisons the writer, so a bundle with a wrong blob is never finished.
//! - For zstd, each entry (header, data, padding) starts a new frame and big entries are
//!   cut into frames of at most [`FRAME_INPUT`] bytes. Frames are compressed on a pool
//!   of their own with a bounded number in flight, two per thread plus the one being
//!   filled (memory stays flat), and written in order ([`crate::ordered`]), recording
//!   sizes for the seek table. One frame per chunk costs a little ratio but buys random
//!   access, and layers are mostly compressed already. A compact bundle's raw layer tars
//!   are not: with [`Frames::Coarse`] frames span entries (32–64 MiB) and use
//!   long-distance matching, so similar layers compress against each other.
//! - With a part size ([`BundleWriter::create_split`], `save --split`), the same bytes
//!   go to numbered parts instead of one file ([`PartWriter`]): cut at exact byte
//!   counts, each hashed while written, under temporary names until `finish` renames
//!   them and writes the parts index. Nothing else changes: the parts joined are the
//!   bundle the writer would have written in one file.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use tempfile::TempPath;

use self::sink::{Counting, Output, Sink, ZstdSink, is_sink_error};
use super::output::{OutputFiles, create_hidden};
use super::parts::{IndexSigner, PartWriter, SplitSummary};
use super::signature::SIG_NAME;
use super::toc::TOC_NAME;
use super::{BundleError, name_problem};
use crate::digest::{Digest, Mismatch, VerifyingReader};

mod sink;

/// Most bytes of tar stream one zstd frame holds.
pub const FRAME_INPUT: usize = 4 * 1024 * 1024;

/// Most bytes of tar stream one coarse frame ([`Frames::Coarse`]) holds.
pub const COARSE_FRAME_INPUT: usize = 64 * 1024 * 1024;

/// A coarse frame ends at the first entry boundary after this many bytes.
pub const COARSE_FRAME_MIN: usize = 32 * 1024 * 1024;

/// Most bytes of tar stream a coarse frame holding a group of similar layers
/// ([`BundleWriter::begin_group`]) holds: the largest window, so the last byte of the
/// group still reaches back to the first.
pub const COARSE_GROUP_INPUT: usize = 1 << LONG_WINDOW_LOG;

/// The largest zstd window a coarse frame uses (its frames are smaller, so in practice
/// the window is the frame): what a reader must be ready to hold.
pub const LONG_WINDOW_LOG: u32 = 27;

/// How a zstd bundle's tar stream is cut into frames (`docs/bundle-format.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Frames {
    /// A new frame for every entry, and every [`FRAME_INPUT`] bytes inside an entry:
    /// any entry is reached without decoding another. For ordinary bundles, whose
    /// layers are gzip already and gain nothing from a bigger window.
    #[default]
    PerEntry,
    /// Frames of [`COARSE_FRAME_MIN`]..[`COARSE_FRAME_INPUT`] bytes that span entries,
    /// compressed with long-distance matching: for compact bundles, whose raw layer tars
    /// compress against each other. Reaching an entry decodes its frame from the start.
    Coarse,
}

impl Frames {
    fn max_input(self) -> usize {
        match self {
            Frames::PerEntry => FRAME_INPUT,
            Frames::Coarse => COARSE_FRAME_INPUT,
        }
    }

    /// The chunk size of the frame stream: the biggest frame.
    fn chunk_input(self) -> usize {
        match self {
            Frames::PerEntry => FRAME_INPUT,
            Frames::Coarse => COARSE_GROUP_INPUT,
        }
    }

    fn min_input(self) -> usize {
        match self {
            Frames::PerEntry => 0,
            Frames::Coarse => COARSE_FRAME_MIN,
        }
    }
}

/// How the tar stream is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Zstd { level: i32 },
}

impl Compression {
    /// The zstd level used unless asked otherwise: fast on already-compressed layers.
    pub(crate) const DEFAULT_ZSTD_LEVEL: i32 = 3;

    /// The zstd level of a compact bundle unless asked otherwise (`save --compact`): its
    /// raw layer tars do compress, so a higher level pays; chosen by measurement
    /// (`docs/bundle-format.md`, compact frames; `bench/results.md`).
    pub(crate) const COMPACT_ZSTD_LEVEL: i32 = 9;

    /// zstd for `*.tar.zst`, `*.tzst` and `*.zst`, none otherwise (`*.tar`).
    pub(crate) fn from_path(path: &Path) -> Compression {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if name.ends_with(".zst") || name.ends_with(".tzst") {
            Compression::Zstd {
                level: Self::DEFAULT_ZSTD_LEVEL,
            }
        } else {
            Compression::None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    pub compression: Compression,
    /// Compression threads; 0 means one per core.
    pub threads: usize,
    /// The modification time stamped on every tar entry, in seconds since the epoch;
    /// `None`: when the writer is created. Two bundles of the same entries written with
    /// the same time are the same bytes.
    pub mtime: Option<u64>,
    /// How zstd frames are cut (ignored for plain tar).
    pub frames: Frames,
}

impl Default for WriteOptions {
    /// Plain tar, one thread per core.
    fn default() -> WriteOptions {
        WriteOptions {
            compression: Compression::None,
            threads: 0,
            mtime: None,
            frames: Frames::PerEntry,
        }
    }
}

impl WriteOptions {
    /// Compression chosen from the output name, one thread per core.
    pub fn for_path(path: &Path) -> WriteOptions {
        WriteOptions {
            compression: Compression::from_path(path),
            threads: 0,
            mtime: None,
            frames: Frames::PerEntry,
        }
    }
}

/// The name of the OCI layout file, the bundle's first entry.
pub(crate) const OCI_LAYOUT_NAME: &str = "oci-layout";
/// Its content.
pub(crate) const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// The documents of a bundle's head ([`BundleWriter::add_head`]), as the bytes to store.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head<'a> {
    /// `airlock.json`.
    pub toc: &'a [u8],
    /// `airlock.sig.json`, the signature document of a signed bundle
    /// ([`signature`](crate::bundle::signature)); `None` for an unsigned one, which is
    /// then byte for byte what it was before bundles could be signed.
    pub signature: Option<&'a [u8]>,
    pub index_json: &'a [u8],
    pub manifest_json: &'a [u8],
    pub repositories: &'a [u8],
}

/// What [`BundleWriter::finish`] wrote.
#[derive(Debug, Clone)]
pub struct WriteSummary {
    pub path: PathBuf,
    /// Size of the file on disk.
    pub bytes: u64,
    /// Size of the tar stream.
    pub uncompressed: u64,
    /// Tar entries written (files and directories).
    pub entries: usize,
    /// For a split bundle, its parts and parts index (`path` then names the joined
    /// bundle, which does not exist as one file; readers accept it, the first part or
    /// the index).
    pub split: Option<SplitSummary>,
}

/// Writes one bundle; see the module docs.
pub struct BundleWriter {
    path: PathBuf,
    temp: Option<TempPath>,
    tar: Option<tar::Builder<Sink>>,
    names: HashSet<String>,
    blobs: HashSet<Digest>,
    mtime: u64,
    entries: usize,
    poisoned: bool,
    toc_sha256: Option<Digest>,
    keep_on_drop: bool,
    blob_bytes: u64,
}

impl BundleWriter {
    /// Starts a bundle that will appear at `path` when [`finish`](Self::finish) succeeds.
    pub fn create(path: &Path, opts: WriteOptions) -> Result<BundleWriter, BundleError> {
        Self::create_split(path, opts, None)
    }

    /// Like [`create`](Self::create); with `split`, writes the bundle as parts of that
    /// many bytes, `<path>.000`, `<path>.001`, …, plus `<path>.parts.json` (see
    /// [`parts`](super::parts)). Compression still follows `opts` (usually chosen from
    /// `path`'s name).
    pub fn create_split(
        path: &Path,
        opts: WriteOptions,
        split: Option<u64>,
    ) -> Result<BundleWriter, BundleError> {
        Self::create_files(&OutputFiles::new(path), opts, split)
    }

    /// Like [`create_split`](Self::create_split), for the output `files` names; the
    /// save pipeline computes its [`OutputFiles`] once and passes them here.
    pub(crate) fn create_files(
        files: &OutputFiles,
        opts: WriteOptions,
        split: Option<u64>,
    ) -> Result<BundleWriter, BundleError> {
        let path = files.output();
        let create_err = |source| BundleError::Create {
            path: path.to_path_buf(),
            source,
        };
        let (inner, temp) = match split {
            Some(limit) => (
                Output::Split(Box::new(
                    PartWriter::create(files, limit).map_err(create_err)?,
                )),
                None,
            ),
            None => {
                let (file, temp) = create_hidden(&files.partial()).map_err(create_err)?;
                (
                    Output::Single(BufWriter::with_capacity(1024 * 1024, file)),
                    Some(temp),
                )
            }
        };
        let out = Counting {
            inner,
            written: 0,
            discard: false,
        };
        let sink = match opts.compression {
            Compression::None => Sink::Plain(out),
            Compression::Zstd { level } => Sink::Zstd(
                ZstdSink::new(out, level, opts.threads, opts.frames).map_err(create_err)?,
            ),
        };
        let tar = tar::Builder::new(sink);
        let mtime = opts.mtime.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
        Ok(BundleWriter {
            path: path.to_path_buf(),
            temp,
            tar: Some(tar),
            names: HashSet::new(),
            blobs: HashSet::new(),
            mtime,
            entries: 0,
            poisoned: false,
            toc_sha256: None,
            keep_on_drop: false,
            blob_bytes: 0,
        })
    }

    /// The final path of the bundle.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// With `true`, dropping the writer unfinished keeps what it wrote: every entry
    /// compressed so far is written out and the partial file (or parts) stays under its
    /// hidden name for a later save to resume from. Without it (the default), dropping
    /// deletes the partial output.
    pub(crate) fn keep_on_drop(&mut self, keep: bool) {
        self.keep_on_drop = keep;
    }

    /// The hidden files the bundle is being written to (one, or the parts so far).
    pub(crate) fn partial_files(&self) -> Vec<PathBuf> {
        if let Some(t) = &self.temp {
            return vec![t.to_path_buf()];
        }
        match self.tar.as_ref().map(|t| &t.get_ref().out().inner) {
            Some(Output::Split(p)) => p.partial_files(),
            _ => Vec::new(),
        }
    }

    /// Blobs written so far and their total size.
    pub(crate) fn blobs_written(&self) -> (usize, u64) {
        (self.blobs.len(), self.blob_bytes)
    }

    /// Coarse frames only (compact bundles; nothing otherwise): the blobs added next,
    /// `bytes` in all, are a group of similar layers that compress against each other,
    /// so they go into one frame of up to [`COARSE_GROUP_INPUT`] bytes. The frame being
    /// filled ends first when it is past [`COARSE_FRAME_MIN`] or too full to take the
    /// group. Each later member is announced with [`continue_group`](Self::continue_group).
    pub(crate) fn begin_group(&mut self, bytes: u64) {
        if let Some(tar) = self.tar.as_mut() {
            tar.get_mut().begin_group(bytes);
        }
    }

    /// Coarse frames only: the next entry is a later member of the group begun by
    /// [`begin_group`](Self::begin_group) and stays in its frame.
    pub(crate) fn continue_group(&mut self) {
        if let Some(tar) = self.tar.as_mut() {
            tar.get_mut().continue_group();
        }
    }

    /// Whether blob `digest` has been written already.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.blobs.contains(digest)
    }

    /// Adds a small file entry (layout, TOC, `index.json`, …) from memory.
    pub fn add_file(&mut self, name: &str, bytes: &[u8]) -> Result<(), BundleError> {
        self.check_name(name)?;
        let mut header = self.header(tar::EntryType::Regular, bytes.len() as u64, 0o644);
        self.append(name, &mut header, &mut &bytes[..])
            .map_err(|e| self.write_error(e))?;
        if name == TOC_NAME {
            self.toc_sha256 = Some(Digest::of(bytes));
        }
        Ok(())
    }

    /// Writes the bundle's fixed head, in order: `oci-layout`, `airlock.json`,
    /// `airlock.sig.json` (signed bundles only), `index.json`, `manifest.json`,
    /// `repositories`, `blobs/`, `blobs/sha256/`. Blobs follow with
    /// [`BundleWriter::add_blob`]. The signature comes before any blob, so a split
    /// bundle's first part says who made the set.
    pub(crate) fn add_head(&mut self, head: &Head<'_>) -> Result<(), BundleError> {
        self.add_file(OCI_LAYOUT_NAME, OCI_LAYOUT)?;
        self.add_file(TOC_NAME, head.toc)?;
        if let Some(sig) = head.signature {
            self.add_file(SIG_NAME, sig)?;
        }
        self.add_file("index.json", head.index_json)?;
        self.add_file("manifest.json", head.manifest_json)?;
        self.add_file("repositories", head.repositories)?;
        self.add_dir("blobs")?;
        self.add_dir("blobs/sha256")
    }

    /// Adds a directory entry (`blobs/`); a trailing `/` is optional.
    pub fn add_dir(&mut self, name: &str) -> Result<(), BundleError> {
        let name = name.trim_end_matches('/');
        self.check_name(name)?;
        let mut header = self.header(tar::EntryType::Directory, 0, 0o755);
        self.append(&format!("{name}/"), &mut header, &mut io::empty())
            .map_err(|e| self.write_error(e))?;
        Ok(())
    }

    /// Streams blob `digest` of `size` bytes from `reader` into `blobs/sha256/<hex>`,
    /// hashing as it goes. Fails (and poisons the writer) when the bytes do not match.
    /// A blob already in the bundle is not written again and `reader` is not read.
    pub fn add_blob(
        &mut self,
        digest: &Digest,
        size: u64,
        reader: &mut dyn Read,
    ) -> Result<(), BundleError> {
        if self.poisoned {
            return Err(self.poisoned_error());
        }
        if self.blobs.contains(digest) {
            return Ok(());
        }
        let name = digest.blob_path();
        self.check_name(&name)?;
        let mut header = self.header(tar::EntryType::Regular, size, 0o644);
        // Large reads from the source; the VerifyingReader never asks for more than the blob.
        let mut verifying = io::BufReader::with_capacity(
            1024 * 1024,
            VerifyingReader::new(reader, digest.clone(), size),
        );
        match self.append(&name, &mut header, &mut verifying) {
            Ok(()) => {
                self.blobs.insert(digest.clone());
                self.blob_bytes += size;
                Ok(())
            }
            Err(e) => {
                self.poisoned = true;
                if let Some(m) = Mismatch::from_io(&e) {
                    return Err(BundleError::BlobMismatch {
                        path: self.path.clone(),
                        digest: digest.clone(),
                        source: m.clone(),
                    });
                }
                if e.kind() == io::ErrorKind::Other && is_sink_error(&e) {
                    return Err(self.write_error(e));
                }
                Err(BundleError::BlobSource {
                    path: self.path.clone(),
                    digest: digest.clone(),
                    source: e,
                })
            }
        }
    }

    /// Ends the tar stream, writes the seek table, fsyncs and renames the temporary file
    /// to the final name (and fsyncs the directory). A split bundle's parts are renamed
    /// to their final names and its parts index written last.
    pub fn finish(self) -> Result<WriteSummary, BundleError> {
        self.finish_signed(None)
    }

    /// [`finish`](Self::finish); a split bundle's parts index is signed by `signer`
    /// (ignored for a bundle in one file, whose signature is in its head).
    pub fn finish_signed(
        mut self,
        signer: Option<&IndexSigner<'_>>,
    ) -> Result<WriteSummary, BundleError> {
        if self.poisoned {
            return Err(self.poisoned_error());
        }
        let mut tar = self.tar.take().expect("writer not finished twice");
        let toc_sha256 = self.toc_sha256.clone();
        let res = (|| {
            tar.get_mut().cut()?;
            let sink = tar.into_inner()?;
            let (out, uncompressed) = sink.finish()?;
            let bytes = out.written;
            let split = match out.inner {
                Output::Single(w) => {
                    let file = w.into_inner().map_err(|e| e.into_error())?;
                    file.sync_all()?;
                    None
                }
                Output::Split(parts) => Some(parts.finish(toc_sha256.as_ref(), signer)?),
            };
            Ok::<_, io::Error>((bytes, uncompressed, split))
        })();
        let (bytes, uncompressed, split) = res.map_err(|e| self.write_error(e))?;
        if let Some(split) = split {
            return Ok(WriteSummary {
                path: self.path.clone(),
                bytes,
                uncompressed,
                entries: self.entries,
                split: Some(split),
            });
        }
        let temp = self.temp.take().expect("temporary file present");
        temp.persist(&self.path).map_err(|e| BundleError::Write {
            path: self.path.clone(),
            source: e.error,
        })?;
        // Make the rename durable; not every platform can open a directory.
        if let Ok(d) = File::open(crate::paths::dir_of(&self.path)) {
            let _ = d.sync_all();
        }
        Ok(WriteSummary {
            path: self.path.clone(),
            bytes,
            uncompressed,
            entries: self.entries,
            split: None,
        })
    }

    fn check_name(&mut self, name: &str) -> Result<(), BundleError> {
        if self.poisoned {
            return Err(self.poisoned_error());
        }
        if name_problem(name).is_some() {
            return Err(BundleError::BadName {
                path: self.path.clone(),
                name: name.to_string(),
            });
        }
        if self.names.contains(name) {
            return Err(BundleError::DuplicateName {
                path: self.path.clone(),
                name: name.to_string(),
            });
        }
        Ok(())
    }

    fn header(&self, kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(self.mtime);
        h
    }

    fn append(
        &mut self,
        name: &str,
        header: &mut tar::Header,
        data: &mut dyn Read,
    ) -> io::Result<()> {
        let tar = self.tar.as_mut().expect("writer not finished");
        let res = tar
            .get_mut()
            .cut()
            .and_then(|()| tar.append_data(header, name, data));
        if res.is_ok() {
            self.names.insert(name.trim_end_matches('/').to_string());
            self.entries += 1;
        } else {
            self.poisoned = true;
        }
        res
    }

    fn write_error(&self, source: io::Error) -> BundleError {
        BundleError::Write {
            path: self.path.clone(),
            source,
        }
    }

    fn poisoned_error(&self) -> BundleError {
        BundleError::Poisoned {
            path: self.path.clone(),
        }
    }
}

impl Drop for BundleWriter {
    fn drop(&mut self) {
        if self.keep_on_drop {
            self.keep();
            return;
        }
        // Drop the stream first (its tar end blocks go nowhere useful), then the
        // temporary file, which deletes it.
        if let Some(tar) = self.tar.take()
            && let Ok(sink) = tar.into_inner()
        {
            drop(sink);
        }
        self.temp.take();
    }
}

impl BundleWriter {
    /// Writes out every frame compressed or pending (for coarse frames only those
    /// compressed already: see `Sink::write_pending`; best effort: after a write error
    /// there may be nothing more to write), and leaves the partial file(s) in place.
    /// The tar end blocks are not written, so the file ends where the data ends; a
    /// reader of the partial file stops at the first incomplete entry.
    fn keep(&mut self) {
        if let Some(mut tar) = self.tar.take() {
            let sink = tar.get_mut();
            let _ = sink.write_pending();
            sink.out_mut().discard = true;
            if let Ok(sink) = tar.into_inner() {
                let mut out = sink.into_out();
                out.discard = false;
                match out.inner {
                    Output::Single(mut w) => {
                        if w.flush().is_ok() {
                            let _ = w.get_ref().sync_data();
                        }
                    }
                    Output::Split(parts) => parts.keep(),
                }
            }
        }
        if let Some(mut temp) = self.temp.take() {
            temp.disable_cleanup(true);
        }
    }
}

#[cfg(test)]
mod coarse_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_from_name() {
        assert_eq!(
            Compression::from_path(Path::new("x/b.tar.zst")),
            Compression::Zstd { level: 3 }
        );
        assert_eq!(
            Compression::from_path(Path::new("b.TZST")),
            Compression::Zstd { level: 3 }
        );
        assert_eq!(
            Compression::from_path(Path::new("b.tar")),
            Compression::None
        );
    }

    #[test]
    fn mismatch_poisons_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.tar.zst");
        let mut w = BundleWriter::create(&path, WriteOptions::for_path(&path)).unwrap();
        w.add_file("oci-layout", b"{}").unwrap();
        let d = Digest::of(b"good");
        let err = w.add_blob(&d, 4, &mut &b"evil"[..]).unwrap_err();
        assert!(matches!(err, BundleError::BlobMismatch { .. }), "{err}");
        assert!(matches!(
            w.add_file("x", b""),
            Err(BundleError::Poisoned { .. })
        ));
        assert!(w.finish().is_err());
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn duplicate_names_and_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.tar");
        let mut w = BundleWriter::create(&path, WriteOptions::for_path(&path)).unwrap();
        w.add_file("a", b"1").unwrap();
        assert!(matches!(
            w.add_file("a", b"2"),
            Err(BundleError::DuplicateName { .. })
        ));
        assert!(matches!(
            w.add_file("../a", b"2"),
            Err(BundleError::BadName { .. })
        ));
        let d = Digest::of(b"blob");
        w.add_blob(&d, 4, &mut &b"blob"[..]).unwrap();
        assert!(w.contains(&d));
        w.add_blob(&d, 4, &mut &b"never read"[..]).unwrap();
        let s = w.finish().unwrap();
        assert_eq!(s.entries, 2);
        assert_eq!(s.bytes, std::fs::metadata(&path).unwrap().len());
    }
}
