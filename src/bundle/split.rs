//! Split bundles: one bundle written as numbered parts of a fixed size, for media and
//! links that cap the size of a file (FAT32 sticks, discs, diodes).
//!
//! `save --split 4G -o bundle.tar.zst` writes `bundle.tar.zst.000`, `.001`, … directly
//! while the bundle is written (never the whole bundle first), plus a parts index
//! `bundle.tar.zst.parts.json` listing each part's name, size and sha256 (hashed as it
//! is written), the total size and the bundle's identity. Parts are cut at exact byte
//! counts, so `cat bundle.tar.zst.0*` is byte for byte the ordinary bundle: same tar,
//! same zstd frames, same seek table, whose offsets are offsets in the joined stream.
//!
//! This module holds the three pieces that know about parts:
//!
//! - [`parse_split`], the `--split` size syntax;
//! - [`PartWriter`], the `Write` the bundle writer streams into when splitting: each
//!   part is written under a temporary name and hashed on the way; [`PartWriter::finish`]
//!   renames the parts to their final names and the index last, so a set without its
//!   index is an unfinished one, and dropping the writer deletes every part (or, for a
//!   save that can be resumed, keeps them under their hidden names
//!   `.<name>.000.partial`, …: [`OutputFiles::partial_part`]);
//! - [`locate`] and [`PartSet`], the reading side: which files a path given to `open`
//!   or `verify` stands for (the first part, the index, or the base name when only parts
//!   exist), and the cheap checks (existence, sizes, stray parts, a hash of the first
//!   4 KiB of each part) that name a missing, truncated, swapped or foreign part before
//!   anything is read. `verify` adds the full per-part sha256 (see
//!   [`source::PartHashes`](super::source::PartHashes)).
//!
//! **What may be deleted.** A save only ever deletes files it created: its own hidden
//! partials, and — when a new set replaces an older, longer one under the same name —
//! the parts the older set's index lists by name ([`listed_parts`]). Files found by a
//! name pattern (`<bundle>.<digits>`: a dated copy, a user's `b.tar.zst.0001`) are never
//! removed; the ones that look like parts of the new set are named in the save's notes.
//!
//! The format is documented in `docs/bundle-format.md` ("Split bundles"); every name
//! a save gives its files comes from [`OutputFiles`].

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tempfile::TempPath;

use super::BundleError;
pub use super::output::INDEX_SUFFIX;
use super::output::{OutputFiles, create_hidden, part_name};
use crate::digest::{Digest, Hasher};
use crate::paths::{dir_of, name_of, resolved, same_file};

/// Version of the parts index format this build writes and reads.
pub const PARTS_FORMAT: u32 = 1;
/// How many leading bytes of each part `head_sha256` covers.
pub const HEAD_SIZE: u64 = 4096;
/// The largest file FAT32 can hold (4 GiB − 1 byte): `--split fat32`.
pub const FAT32_MAX: u64 = 4 * 1024 * 1024 * 1024 - 1;
/// The smallest part size `--split` accepts.
pub const MIN_SPLIT: u64 = 4096;
/// The largest parts index a reader accepts.
const MAX_INDEX_SIZE: u64 = 64 * 1024 * 1024;

/// Parses a `--split` size: a byte count (`1000000`), a number with a binary unit
/// (`64K`, `700M`, `4G`, `1T`, also written `KiB`, `MiB`, `GiB`, `TiB`), with a decimal
/// unit (`KB`, `MB`, `GB`, `TB`: powers of 1000), or `fat32` (4 GiB − 1 byte, the largest
/// file a FAT32 stick holds; note that `4G` is one byte too many for FAT32).
pub fn parse_split(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("fat32") {
        return Ok(FAT32_MAX);
    }
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    let bad = || {
        format!(
            "`{s}` is not a part size; write a byte count (1000000), a size with a unit \
             (700M, 4G, 4GiB; K/M/G/T are powers of 1024, KB/MB/GB/TB powers of 1000), or `fat32`"
        )
    };
    if num.is_empty() {
        return Err(bad());
    }
    let n: u64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim();
    let mult: u64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KI" | "KIB" => 1 << 10,
        "M" | "MI" | "MIB" => 1 << 20,
        "G" | "GI" | "GIB" => 1 << 30,
        "T" | "TI" | "TIB" => 1 << 40,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return Err(bad()),
    };
    let bytes = n
        .checked_mul(mult)
        .ok_or_else(|| format!("part size `{s}` is too large"))?;
    if bytes < MIN_SPLIT {
        return Err(format!(
            "part size `{s}` is {bytes} bytes; parts must be at least {MIN_SPLIT} bytes"
        ));
    }
    Ok(bytes)
}

/// The parts index, `<bundle>.parts.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartsIndex {
    /// [`PARTS_FORMAT`] of the writer.
    pub parts_format: u32,
    /// The joined bundle's file name (`bundle.tar.zst`); every part is named
    /// `<bundle>.<number>`.
    pub bundle: String,
    /// A random 128-bit identity (32 hex digits) of this bundle, different for every save.
    pub id: String,
    /// sha256 (hex) of the bundle's `airlock.json`, when it has one: ties the index to
    /// the table of contents inside the parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toc_sha256: Option<String>,
    /// The size every part has, except a shorter last one.
    pub part_size: u64,
    /// Size of the joined bundle (the sum of the parts).
    pub total_size: u64,
    pub parts: Vec<PartEntry>,
}

/// One part in the parts index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartEntry {
    /// File name, in the same directory as the index.
    pub name: String,
    pub size: u64,
    /// sha256 (hex) of the whole part.
    pub sha256: String,
    /// sha256 (hex) of the first [`HEAD_SIZE`] bytes of the part (all of it when smaller).
    pub head_sha256: String,
}

/// The path of the parts index of the bundle named `base` (`b.tar.zst` → `b.tar.zst.parts.json`).
pub fn index_path(base: &Path) -> PathBuf {
    let mut s = base.as_os_str().to_os_string();
    s.push(INDEX_SUFFIX);
    PathBuf::from(s)
}

/// If `name` is `<base>.<digits>` (three or more digits), `<base>`.
fn strip_part_suffix(name: &str) -> Option<&str> {
    let (base, num) = name.rsplit_once('.')?;
    (num.len() >= 3 && num.bytes().all(|b| b.is_ascii_digit()) && !base.is_empty()).then_some(base)
}

fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

// ---------------------------------------------------------------------------------
// Writing

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
/// part as it goes; see the module docs.
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
    /// resumed; see [`resume`](super::resume)).
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
    /// index (last). `toc_sha256` is the hash of the bundle's `airlock.json`, if any.
    pub fn finish(mut self, toc_sha256: Option<&Digest>) -> io::Result<SplitSummary> {
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
        };
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

/// The files in `dir` named like a part of the set `index` describes — `<bundle>.`
/// followed by as many digits as its parts have — that it does not list, sorted. A
/// dated copy (`b.tar.zst.20240101`) or a differently numbered file is not one.
fn look_alike_parts(dir: &Path, index: &PartsIndex) -> Vec<String> {
    let width = index
        .parts
        .first()
        .map_or(0, |p| p.name.len() - index.bundle.len() - 1);
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            strip_part_suffix(n) == Some(index.bundle.as_str())
                && n.len() - index.bundle.len() - 1 == width
                && !index.parts.iter().any(|p| &p.name == n)
        })
        .collect();
    found.sort();
    found
}

/// The part names the parts index at `index` lists for the bundle `base`, when it is an
/// index airlock can read; nothing otherwise (a file it cannot read was not written by
/// airlock, and nothing is removed on its word).
fn listed_parts(index: &Path, base: &str) -> Vec<String> {
    match PartSet::load(index) {
        Ok(set) if set.index.bundle == base => {
            set.index.parts.into_iter().map(|p| p.name).collect()
        }
        _ => Vec::new(),
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

// ---------------------------------------------------------------------------------
// Reading

/// Whether `file` is, or would be replaced by, a file of the bundle written to
/// `output`: the output itself (under any name: links, symlinks, `..`), its parts index,
/// one of the parts that index lists, or a part a split save would write
/// (`<output>.NNN`). A dated copy (`<output>.20240101`) is not one of them.
pub fn is_output_file(file: &Path, output: &Path) -> bool {
    let index = index_path(output);
    let listed: Vec<PathBuf> = listed_parts(&index, &name_of(output, ""))
        .into_iter()
        .map(|n| dir_of(output).join(n))
        .collect();
    if std::iter::once(output)
        .chain([index.as_path()])
        .chain(listed.iter().map(PathBuf::as_path))
        .any(|o| same_file(file, o))
    {
        return true;
    }
    let (Some(file), Some(output)) = (resolved(file), resolved(output)) else {
        return false;
    };
    if file.parent() != output.parent() {
        return false;
    }
    let (name, out) = (name_of(&file, ""), name_of(&output, ""));
    name == out
        || name == format!("{out}{INDEX_SUFFIX}")
        || (strip_part_suffix(&name) == Some(out.as_str()) && name.len() == out.len() + 4)
}

/// The bundle a path given to a reader stands for, by its base name: `b.tar` for the
/// parts index `b.tar.parts.json` and for a part `b.tar.001` whose set has an index;
/// any other path stands for itself.
pub fn bundle_named(path: &Path) -> PathBuf {
    let name = name_of(path, "");
    if let Some(base) = name.strip_suffix(INDEX_SUFFIX).filter(|b| !b.is_empty()) {
        return path.with_file_name(base);
    }
    match strip_part_suffix(&name) {
        Some(base) if index_path(&path.with_file_name(base)).is_file() => path.with_file_name(base),
        _ => path.to_path_buf(),
    }
}

/// Where a bundle's bytes are.
#[derive(Debug, Clone)]
pub(crate) enum Location {
    /// One file.
    File(PathBuf),
    /// A set of parts, read as their concatenation.
    Parts(Arc<PartSet>),
}

/// One part of a [`PartSet`], where it sits in the joined stream.
#[derive(Debug, Clone)]
pub(crate) struct PartLoc {
    pub path: PathBuf,
    /// Offset of the part's first byte in the joined bundle.
    pub start: u64,
    /// Size according to the index.
    pub size: u64,
}

/// A split bundle as its parts index describes it.
#[derive(Debug)]
pub struct PartSet {
    index_path: PathBuf,
    index: PartsIndex,
    pub(crate) parts: Vec<PartLoc>,
}

impl PartSet {
    /// The parts index file.
    pub fn index_path(&self) -> &Path {
        &self.index_path
    }

    /// What the parts index says.
    pub fn index(&self) -> &PartsIndex {
        &self.index
    }

    /// Number of parts.
    pub fn count(&self) -> usize {
        self.parts.len()
    }

    /// The path of every part, in order.
    pub fn part_paths(&self) -> impl Iterator<Item = &Path> {
        self.parts.iter().map(|p| p.path.as_path())
    }

    /// Size of the joined bundle.
    pub fn total_size(&self) -> u64 {
        self.index.total_size
    }

    fn index_name(&self) -> String {
        self.index_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn problem_at(&self, i: usize) -> (usize, usize, String) {
        (i + 1, self.parts.len(), self.index.parts[i].name.clone())
    }

    /// The hidden parts of an unfinished split bundle (`.<name>.000.partial`, …), read
    /// as one stream with the sizes the files have now; there is no index to check them
    /// against, so readers verify every blob they take from them.
    pub(crate) fn unindexed(files: &[PathBuf]) -> io::Result<PartSet> {
        let mut parts = Vec::with_capacity(files.len());
        let mut entries = Vec::with_capacity(files.len());
        let mut start = 0u64;
        for f in files {
            let size = fs::metadata(f)?.len();
            parts.push(PartLoc {
                path: f.clone(),
                start,
                size,
            });
            entries.push(PartEntry {
                name: f
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                size,
                sha256: String::new(),
                head_sha256: String::new(),
            });
            start += size;
        }
        let first = files.first().cloned().unwrap_or_default();
        Ok(PartSet {
            index_path: first,
            index: PartsIndex {
                parts_format: PARTS_FORMAT,
                bundle: String::new(),
                id: String::new(),
                toc_sha256: None,
                part_size: parts.iter().map(|p| p.size).max().unwrap_or(0),
                total_size: start,
                parts: entries,
            },
            parts,
        })
    }

    /// Reads and checks the parts index at `path`.
    pub(crate) fn load(path: &Path) -> Result<PartSet, BundleError> {
        let bad = |reason: String| BundleError::BadPartsIndex {
            path: path.to_path_buf(),
            reason,
        };
        let file = File::open(path).map_err(|source| BundleError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let mut bytes = Vec::new();
        file.take(MAX_INDEX_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| BundleError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        if bytes.len() as u64 > MAX_INDEX_SIZE {
            return Err(bad(format!("it is larger than {MAX_INDEX_SIZE} bytes")));
        }
        #[derive(Deserialize)]
        struct VersionProbe {
            parts_format: Option<u32>,
        }
        let probe: VersionProbe =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        match probe.parts_format {
            None => return Err(bad("it has no `parts_format`".to_string())),
            Some(v) if v > PARTS_FORMAT => {
                return Err(bad(format!(
                    "it was made by a newer airlock (parts format {v}, this airlock reads up to \
                     {PARTS_FORMAT}); use a newer airlock"
                )));
            }
            Some(_) => {}
        }
        let index: PartsIndex = serde_json::from_slice(&bytes).map_err(|e| bad(format!("{e}")))?;
        let hex64 =
            |s: &str| s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !plain_name(&index.bundle) {
            return Err(bad(format!(
                "`bundle` is not a plain file name: `{}`",
                index.bundle
            )));
        }
        if index.parts.is_empty() {
            return Err(bad("it lists no parts".to_string()));
        }
        let dir = dir_of(path);
        let mut parts = Vec::with_capacity(index.parts.len());
        let mut start = 0u64;
        let mut names = std::collections::HashSet::new();
        let last = index.parts.len() - 1;
        for (i, p) in index.parts.iter().enumerate() {
            if !plain_name(&p.name) || strip_part_suffix(&p.name) != Some(index.bundle.as_str()) {
                return Err(bad(format!(
                    "part {} is named `{}`, not `{}.<number>`",
                    i + 1,
                    p.name,
                    index.bundle
                )));
            }
            if !names.insert(p.name.as_str()) {
                return Err(bad(format!("part `{}` is listed twice", p.name)));
            }
            if !hex64(&p.sha256) || !hex64(&p.head_sha256) {
                return Err(bad(format!("part `{}` has no valid sha256", p.name)));
            }
            let size_ok = if i == last {
                p.size > 0 && p.size <= index.part_size
            } else {
                p.size == index.part_size
            };
            if !size_ok {
                return Err(bad(format!(
                    "part `{}` is listed with {} bytes, which does not fit the part size {}",
                    p.name, p.size, index.part_size
                )));
            }
            parts.push(PartLoc {
                path: dir.join(&p.name),
                start,
                size: p.size,
            });
            start += p.size;
        }
        if start != index.total_size {
            return Err(bad(format!(
                "its parts add up to {start} bytes, but `total_size` says {}",
                index.total_size
            )));
        }
        Ok(PartSet {
            index_path: path.to_path_buf(),
            index,
            parts,
        })
    }

    /// The cheap checks: every part present with its size, no stray part; with `heads`,
    /// also the sha256 of each part's first 4 KiB (catches swapped and foreign parts).
    pub(crate) fn check(&self, heads: bool) -> Vec<PartProblem> {
        let mut problems = Vec::new();
        let mut sized = Vec::new();
        for (i, p) in self.parts.iter().enumerate() {
            let (number, count, name) = self.problem_at(i);
            match fs::metadata(&p.path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    problems.push(PartProblem::Missing {
                        number,
                        count,
                        name,
                    })
                }
                Err(e) => problems.push(PartProblem::Unreadable {
                    number,
                    count,
                    name,
                    error: e.to_string(),
                }),
                Ok(m) if !m.is_file() => problems.push(PartProblem::Unreadable {
                    number,
                    count,
                    name,
                    error: "not a regular file".to_string(),
                }),
                Ok(m) if m.len() != p.size => problems.push(PartProblem::Size {
                    number,
                    count,
                    name,
                    size: m.len(),
                    expected: p.size,
                }),
                Ok(_) => sized.push(i),
            }
        }
        if heads {
            for i in sized {
                let got = match head_hash(&self.parts[i].path, self.parts[i].size) {
                    Ok(h) => h,
                    Err(e) => {
                        let (number, count, name) = self.problem_at(i);
                        problems.push(PartProblem::Unreadable {
                            number,
                            count,
                            name,
                            error: e.to_string(),
                        });
                        continue;
                    }
                };
                if got.hex() != self.index.parts[i].head_sha256 {
                    let size = self.parts[i].size;
                    let holds = self
                        .index
                        .parts
                        .iter()
                        .position(|o| o.head_sha256 == got.hex() && o.size == size);
                    problems.push(self.mismatch(i, holds));
                }
            }
        }
        problems.extend(self.extra_parts());
        problems
    }

    /// The problem for part `i` whose content is not what the index says: the content of
    /// part `holds`, or of no part of this bundle.
    pub(crate) fn mismatch(&self, i: usize, holds: Option<usize>) -> PartProblem {
        let (number, count, name) = self.problem_at(i);
        match holds {
            Some(j) if j != i => PartProblem::Misplaced {
                number,
                count,
                name,
                holds: j + 1,
                holds_name: self.index.parts[j].name.clone(),
            },
            _ => PartProblem::Foreign {
                number,
                count,
                name,
                index: self.index_name(),
            },
        }
    }

    /// Files named like a part of this bundle that the index does not list.
    fn extra_parts(&self) -> Vec<PartProblem> {
        let Some(dir) = self.parts.first().map(|p| dir_of(&p.path)) else {
            return Vec::new();
        };
        look_alike_parts(&dir, &self.index)
            .into_iter()
            .map(|name| PartProblem::Extra {
                name,
                count: self.parts.len(),
                index: self.index_name(),
            })
            .collect()
    }

    /// The number (0-based) of the part holding byte `offset` of the joined bundle.
    pub(crate) fn part_at(&self, offset: u64) -> usize {
        self.parts
            .partition_point(|p| p.start + p.size <= offset)
            .min(self.parts.len() - 1)
    }
}

fn head_hash(path: &Path, size: u64) -> io::Result<Digest> {
    let mut buf = Vec::with_capacity(HEAD_SIZE as usize);
    File::open(path)?
        .take(size.min(HEAD_SIZE))
        .read_to_end(&mut buf)?;
    Ok(Digest::of(&buf))
}

/// Something wrong with the parts of a split bundle. `number` counts from 1 (part 1 is
/// `.000`), `count` is the number of parts the index lists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartProblem {
    #[error("part {number} of {count} ({name}) is missing: copy it next to the others")]
    Missing {
        number: usize,
        count: usize,
        name: String,
    },
    #[error("part {number} of {count} ({name}) cannot be read ({error}); copy it again")]
    Unreadable {
        number: usize,
        count: usize,
        name: String,
        error: String,
    },
    #[error(
        "part {number} of {count} ({name}) is {size} bytes but the parts index says {expected}: {}",
        if size < expected { "it was cut short, copy it again" } else { "it is damaged or from another bundle, copy it again" }
    )]
    Size {
        number: usize,
        count: usize,
        name: String,
        size: u64,
        expected: u64,
    },
    #[error(
        "part {number} of {count} ({name}) holds the content of part {holds} ({holds_name}): \
         the parts were swapped or renamed; give each part its own name back"
    )]
    Misplaced {
        number: usize,
        count: usize,
        name: String,
        holds: usize,
        holds_name: String,
    },
    #[error(
        "part {number} of {count} ({name}) does not belong to this bundle: its content matches \
         no part listed in {index} (a part of another bundle, or a damaged one); copy the right part"
    )]
    Foreign {
        number: usize,
        count: usize,
        name: String,
        index: String,
    },
    #[error(
        "{name} is not one of the {count} parts listed in {index} (left over from another bundle \
         or an earlier save); move it away"
    )]
    Extra {
        name: String,
        count: usize,
        index: String,
    },
}

impl PartProblem {
    /// The part concerned (0-based), if the problem is with a listed part.
    pub fn part(&self) -> Option<usize> {
        match self {
            PartProblem::Missing { number, .. }
            | PartProblem::Unreadable { number, .. }
            | PartProblem::Size { number, .. }
            | PartProblem::Misplaced { number, .. }
            | PartProblem::Foreign { number, .. } => Some(number - 1),
            PartProblem::Extra { .. } => None,
        }
    }
}

/// Which files `path` stands for: a parts index (`*.parts.json`), a part (`*.000`) whose
/// index sits next to it, a base name that only exists as parts, or one bundle file.
pub(crate) fn locate(path: &Path) -> Result<Location, BundleError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.ends_with(INDEX_SUFFIX) && name.len() > INDEX_SUFFIX.len() {
        return Ok(Location::Parts(Arc::new(PartSet::load(path)?)));
    }
    let dir = dir_of(path);
    if let Some(base) = strip_part_suffix(&name) {
        let index = dir.join(format!("{base}{INDEX_SUFFIX}"));
        if index.is_file() {
            return Ok(Location::Parts(Arc::new(PartSet::load(&index)?)));
        }
        // A lone `.000` is a whole (one-part) bundle; with siblings the index is needed.
        let sibling = dir.join(part_name(base, 1, name.len() - base.len() - 1));
        if path.exists() && sibling.exists() {
            return Err(BundleError::NoPartsIndex {
                part: path.to_path_buf(),
                index,
                base: base.to_string(),
            });
        }
        return Ok(Location::File(path.to_path_buf()));
    }
    if path.exists() {
        return Ok(Location::File(path.to_path_buf()));
    }
    let index = index_path(path);
    if index.is_file() {
        return Ok(Location::Parts(Arc::new(PartSet::load(&index)?)));
    }
    let first = dir.join(part_name(&name, 0, 3));
    if first.exists() {
        return Err(BundleError::NoPartsIndex {
            part: first,
            index,
            base: name,
        });
    }
    Ok(Location::File(path.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_sizes() {
        assert_eq!(parse_split("1000000"), Ok(1_000_000));
        assert_eq!(parse_split("700M"), Ok(700 << 20));
        assert_eq!(parse_split("4G"), Ok(4 << 30));
        assert_eq!(parse_split("4GiB"), Ok(4 << 30));
        assert_eq!(parse_split("4gib"), Ok(4 << 30));
        assert_eq!(parse_split("64K"), Ok(64 << 10));
        assert_eq!(parse_split("1T"), Ok(1 << 40));
        assert_eq!(parse_split("700MB"), Ok(700_000_000));
        assert_eq!(parse_split("4GB"), Ok(4_000_000_000));
        assert_eq!(parse_split(" 8 K "), Ok(8192));
        assert!(parse_split("100B").is_err());
        assert_eq!(parse_split("fat32"), Ok(4_294_967_295));
        assert_eq!(parse_split("FAT32"), Ok(FAT32_MAX));
        assert!(parse_split("").is_err());
        assert!(parse_split("G").is_err());
        assert!(parse_split("4X").is_err());
        assert!(parse_split("-4G").is_err());
        assert!(parse_split("1.5G").is_err());
        assert!(parse_split("0").unwrap_err().contains("at least"));
        assert!(
            parse_split("99999999999T")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn names() {
        assert_eq!(strip_part_suffix("b.tar.zst.000"), Some("b.tar.zst"));
        assert_eq!(strip_part_suffix("b.tar.zst.1234"), Some("b.tar.zst"));
        assert_eq!(strip_part_suffix("b.tar.zst"), None);
        assert_eq!(strip_part_suffix("b.01"), None);
        assert_eq!(strip_part_suffix(".000"), None);
        assert_eq!(
            index_path(Path::new("d/b.tar")),
            Path::new("d/b.tar.parts.json")
        );
    }

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
        let s = w.finish(None).unwrap();
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

    #[test]
    fn hostile_index_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.tar.parts.json");
        let h = "0".repeat(64);
        let idx = |name: &str| {
            format!(
                r#"{{"parts_format":1,"bundle":"b.tar","id":"x","part_size":10,"total_size":10,
                   "parts":[{{"name":"{name}","size":10,"sha256":"{h}","head_sha256":"{h}"}}]}}"#
            )
        };
        fs::write(&p, idx("../../etc/passwd")).unwrap();
        assert!(matches!(
            PartSet::load(&p),
            Err(BundleError::BadPartsIndex { .. })
        ));
        fs::write(&p, idx("b.tar.000")).unwrap();
        assert!(PartSet::load(&p).is_ok());
        fs::write(&p, r#"{"parts_format":9}"#).unwrap();
        let e = PartSet::load(&p).unwrap_err().to_string();
        assert!(e.contains("newer airlock"), "{e}");
    }
}
