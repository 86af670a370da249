//! The names of every file a save writes beside its output, in one place.
//!
//! A save to `d/out.tar.zst` touches, in `d/` and nowhere else (so that every final
//! rename stays on one file system):
//!
//! | name | what | written by |
//! |------|------|------------|
//! | `out.tar.zst` | the bundle | [`writer`](super::writer) |
//! | `out.tar.zst.000`, `.001`, … | its parts (`--split`) | [`parts`](super::parts) |
//! | `out.tar.zst.parts.json` | the parts index | [`parts`](super::parts) |
//! | `.out.tar.zst.partial` (split: `.out.tar.zst.000.partial`, …) | the bundle being written | writer, parts |
//! | `.out.tar.zst.parts.json.partial-<random>` | the parts index being written | parts |
//! | `.out.tar.zst.resume` (split: `.out.tar.zst.000.resume`, …) | an interrupted run's partial, being reused | `export::resume` |
//! | `.out.tar.zst.lock`, `.out.tar.zst.lock.<pid>` | the lock of a running save, and its temporary | `export::resume` |
//! | `.out.tar.zst.staging/` | scratch space of earlier airlock versions, removed when it has their marker (scratch now goes to `--scratch DIR`) | `export::staging` |
//!
//! [`OutputFiles`] is computed once from the output path and handed to each of them, so
//! that the writer, the resume logic, the lock and the staging directory cannot
//! disagree on a name. The hidden names are fixed (not random) so that a rerun finds
//! what an interrupted save left. The naming rules of a split bundle's files are here
//! too ([`INDEX_SUFFIX`], [`part_name`], [`width_for`]), below the parts format that
//! uses them, so this module depends on nothing in `bundle` and everything that names
//! an output's files can depend on it.
//!
//! Every path is `<directory of the output>/<name>`, the directory being `.` for a bare
//! file name (so a save to `b.tar` works on `./.b.tar.partial`). An output without a
//! file name (which `save` refuses earlier) is taken to be named `bundle`.
//!
//! This module only names files and creates the writer's hidden ones
//! ([`create_hidden`]); deleting is left to the modules that own each file, and they
//! follow one rule: a save only ever deletes files it created, never files found by a
//! name pattern.

use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use tempfile::TempPath;

use crate::paths::{dir_of, name_of};

/// The name an output without a file name is given.
const NAMELESS: &str = "bundle";

/// Suffix of the parts index, after the bundle's name.
pub const INDEX_SUFFIX: &str = ".parts.json";

/// The file name of part `i` (0-based) of the bundle `base` when part numbers have
/// `width` digits (`b.tar`, 7, 3 → `b.tar.007`).
pub(crate) fn part_name(base: &str, i: usize, width: usize) -> String {
    format!("{base}.{i:0width$}")
}

/// The digit count of the part numbers of a set of `count` parts (at least 3).
pub(crate) fn width_for(count: usize) -> usize {
    count.saturating_sub(1).to_string().len().max(3)
}

/// The files beside one output; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFiles {
    output: PathBuf,
    dir: PathBuf,
    name: String,
}

impl OutputFiles {
    /// The files beside `output`.
    pub fn new(output: &Path) -> OutputFiles {
        OutputFiles {
            output: output.to_path_buf(),
            dir: dir_of(output),
            name: name_of(output, NAMELESS),
        }
    }

    /// The output itself, as given.
    pub fn output(&self) -> &Path {
        &self.output
    }

    /// The directory every file is in (`.` for a bare file name).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The output's file name (`bundle` when it has none).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `.<name>.<suffix>` in the output's directory.
    fn hidden(&self, suffix: &str) -> PathBuf {
        self.dir.join(format!(".{}.{suffix}", self.name))
    }

    /// `.<name>.partial`: the bundle being written, until it is finished.
    pub fn partial(&self) -> PathBuf {
        self.hidden("partial")
    }

    /// `.<name>.000.partial`, …: part `n` (0-based) of a split bundle being written.
    pub(crate) fn partial_part(&self, n: usize) -> PathBuf {
        self.hidden(&format!("{n:03}.partial"))
    }

    /// `.<name>.resume`: an interrupted run's partial bundle while a rerun reuses it.
    pub fn resume(&self) -> PathBuf {
        self.hidden("resume")
    }

    /// `.<name>.000.resume`, …: part `n` of an interrupted run's split partial bundle.
    pub(crate) fn resume_part(&self, n: usize) -> PathBuf {
        self.hidden(&format!("{n:03}.resume"))
    }

    /// `.<name>.lock`: held while a save to the output runs.
    pub fn lock(&self) -> PathBuf {
        self.hidden("lock")
    }

    /// `.<name>.lock.<pid>`: the lock's content is written here, then linked into place.
    pub(crate) fn lock_temp(&self, pid: u32) -> PathBuf {
        self.hidden(&format!("lock.{pid}"))
    }

    /// `.<name>.staging`: where earlier airlock versions put a save's scratch space
    /// (removed by a save when it has their marker; scratch is never beside the output now).
    pub fn staging(&self) -> PathBuf {
        self.hidden("staging")
    }

    /// `<name>.parts.json`: the parts index of a split bundle.
    pub fn index(&self) -> PathBuf {
        self.dir.join(self.index_name())
    }

    /// The file name of the parts index, `<name>.parts.json`.
    pub(crate) fn index_name(&self) -> String {
        format!("{}{INDEX_SUFFIX}", self.name)
    }

    /// The prefix of the temporary the parts index is written to before it is renamed
    /// into place (`.<name>.parts.json.partial-`, then random characters).
    pub(crate) fn index_temp_prefix(&self) -> String {
        format!(".{}.partial-", self.index_name())
    }

    /// The file names of the `count` parts of a split bundle, in order: `<name>.000`, …
    /// (more digits when `count` needs them).
    pub(crate) fn part_names(&self, count: usize) -> Vec<String> {
        let width = width_for(count);
        (0..count)
            .map(|i| part_name(&self.name, i, width))
            .collect()
    }

    /// `name` in the output's directory.
    pub fn beside(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Creates (or truncates) the hidden file `path` for writing, 0666 less the umask like
/// any file a user creates; it is deleted when the returned [`TempPath`] is dropped.
/// `path` is one of the fixed names of [`OutputFiles`], owned by the save that holds
/// the output's lock.
pub(crate) fn create_hidden(path: &Path) -> io::Result<(File, TempPath)> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o666)
        .open(path)?;
    Ok((file, TempPath::try_from_path(path)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_beside_the_output() {
        let f = OutputFiles::new(Path::new("/m/usb/b.tar.zst"));
        assert_eq!(f.output(), Path::new("/m/usb/b.tar.zst"));
        assert_eq!(f.partial(), Path::new("/m/usb/.b.tar.zst.partial"));
        assert_eq!(
            f.partial_part(7),
            Path::new("/m/usb/.b.tar.zst.007.partial")
        );
        assert_eq!(f.resume(), Path::new("/m/usb/.b.tar.zst.resume"));
        assert_eq!(f.resume_part(0), Path::new("/m/usb/.b.tar.zst.000.resume"));
        assert_eq!(f.lock(), Path::new("/m/usb/.b.tar.zst.lock"));
        assert_eq!(f.lock_temp(42), Path::new("/m/usb/.b.tar.zst.lock.42"));
        assert_eq!(f.staging(), Path::new("/m/usb/.b.tar.zst.staging"));
        assert_eq!(f.index(), Path::new("/m/usb/b.tar.zst.parts.json"));
        assert_eq!(f.index_temp_prefix(), ".b.tar.zst.parts.json.partial-");
        assert_eq!(f.part_names(2), ["b.tar.zst.000", "b.tar.zst.001"]);
        assert_eq!(f.part_names(1001)[1000], "b.tar.zst.1000");
        assert_eq!(f.beside("x"), Path::new("/m/usb/x"));
        assert_eq!(width_for(1), 3);
        assert_eq!(width_for(1000), 3);
        assert_eq!(width_for(1001), 4);
        assert_eq!(part_name("b.tar", 7, 3), "b.tar.007");
    }

    #[test]
    fn bare_and_nameless_outputs() {
        let f = OutputFiles::new(Path::new("b.tar"));
        assert_eq!(f.dir(), Path::new("."));
        assert_eq!(f.partial(), Path::new("./.b.tar.partial"));
        let f = OutputFiles::new(Path::new("d/.."));
        assert_eq!(f.name(), "bundle");
        assert_eq!(f.staging(), Path::new("d/.bundle.staging"));
    }
}
