//! The parts index (`<bundle>.parts.json`) and the names of a split bundle's files:
//! what the index holds ([`PartsIndex`], [`PartEntry`]), reading and checking it
//! ([`PartsIndex::read`]), recognising part and index names, and the questions asked by
//! name alone — which files an output would replace ([`is_output_file`]), which bundle a
//! path stands for ([`bundle_named`]), which files only look like parts
//! ([`look_alike_parts`]) and which parts an earlier index lists ([`listed_parts`]).
//!
//! It reads and lists but never deletes: when the [`writer`](super::writer) removes the
//! parts of an earlier save it goes by [`listed_parts`], never by a name pattern (see
//! "What may be deleted" in [`parts`](super)). The rules for the names a save writes
//! are in [`output`](crate::bundle::output); this module recognises them.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bundle::BundleError;
pub use crate::bundle::output::INDEX_SUFFIX;
use crate::paths::{dir_of, name_of, resolved, same_file};

/// Version of the parts index format this build writes and reads.
pub const PARTS_FORMAT: u32 = 1;
/// How many leading bytes of each part `head_sha256` covers.
pub const HEAD_SIZE: u64 = 4096;
/// The largest parts index a reader accepts.
const MAX_INDEX_SIZE: u64 = 64 * 1024 * 1024;

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
    /// Optional, in a signed split bundle: the parts statement (exact text) over the
    /// fields above, which `signatures` sign. What they are is the business of
    /// [`bundle::signature`](crate::bundle::signature); this module only carries them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// The signatures of `statement`, as [`bundle::signature`](crate::bundle::signature)
    /// writes and reads them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signatures: Option<serde_json::Value>,
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

impl PartsIndex {
    /// Reads the parts index at `path` and checks that it describes a set of parts
    /// airlock could have written: plain names `<bundle>.<number>`, each listed once,
    /// sizes that fit the part size and add up to the total, well-formed hashes.
    pub fn read(path: &Path) -> Result<PartsIndex, BundleError> {
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
            start += p.size;
        }
        if start != index.total_size {
            return Err(bad(format!(
                "its parts add up to {start} bytes, but `total_size` says {}",
                index.total_size
            )));
        }
        Ok(index)
    }
}

/// The path of the parts index of the bundle named `base` (`b.tar.zst` → `b.tar.zst.parts.json`).
pub fn index_path(base: &Path) -> PathBuf {
    let mut s = base.as_os_str().to_os_string();
    s.push(INDEX_SUFFIX);
    PathBuf::from(s)
}

/// If `name` is `<base>.<digits>` (three or more digits), `<base>`.
pub(crate) fn strip_part_suffix(name: &str) -> Option<&str> {
    let (base, num) = name.rsplit_once('.')?;
    (num.len() >= 3 && num.bytes().all(|b| b.is_ascii_digit()) && !base.is_empty()).then_some(base)
}

/// Whether `name` is a plain file name (no directory, not `.` or `..`).
pub(super) fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

/// The files in `dir` named like a part of the set `index` describes — `<bundle>.`
/// followed by as many digits as its parts have — that it does not list, sorted. A
/// dated copy (`b.tar.zst.20240101`) or a differently numbered file is not one.
pub(super) fn look_alike_parts(dir: &Path, index: &PartsIndex) -> Vec<String> {
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
pub(super) fn listed_parts(index: &Path, base: &str) -> Vec<String> {
    match PartsIndex::read(index) {
        Ok(index) if index.bundle == base => index.parts.into_iter().map(|p| p.name).collect(),
        _ => Vec::new(),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
