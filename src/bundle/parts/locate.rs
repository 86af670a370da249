//! The reading side of split bundles: which files a path given to `open` or `verify`
//! stands for ([`locate()`]: the first part, the index, or the base name when only parts
//! exist), the set of parts an index describes ([`PartSet`]), and the cheap checks
//! (existence, sizes, stray parts, a hash of the first 4 KiB of each part) that name a
//! missing, truncated, swapped or foreign part ([`PartProblem`]) before anything is
//! read. `verify` adds the full per-part sha256 (see
//! [`source::PartHashes`](crate::bundle::source::PartHashes)). Nothing here writes or
//! deletes a file.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::index::{
    HEAD_SIZE, INDEX_SUFFIX, PARTS_FORMAT, PartEntry, PartsIndex, index_path, look_alike_parts,
    strip_part_suffix,
};
use crate::bundle::BundleError;
use crate::bundle::output::part_name;
use crate::digest::Digest;
use crate::paths::dir_of;

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
                statement: None,
                signatures: None,
            },
            parts,
        })
    }

    /// Reads and checks the parts index at `path` ([`PartsIndex::read`]).
    pub(crate) fn load(path: &Path) -> Result<PartSet, BundleError> {
        let index = PartsIndex::read(path)?;
        let dir = dir_of(path);
        let mut parts = Vec::with_capacity(index.parts.len());
        let mut start = 0u64;
        for p in &index.parts {
            parts.push(PartLoc {
                path: dir.join(&p.name),
                start,
                size: p.size,
            });
            start += p.size;
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
    if path.is_dir() {
        return Err(BundleError::IsDir {
            path: path.to_path_buf(),
            oci_layout: path.join("oci-layout").is_file(),
        });
    }
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
