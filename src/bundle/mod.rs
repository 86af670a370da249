//! The bundle format: one tar stream (optionally zstd, seekable) that is at once an OCI
//! image layout and a `docker save` archive, plus airlock's table of contents.
//!
//! The module is split by the three ways a bundle is touched:
//!
//! - [`writer`] produces it (the save pipeline streams blobs in; zstd frames are
//!   compressed in parallel and a seek table is appended),
//! - [`reader`] gives random access to it (index the tar headers once, then reach any
//!   blob without decompressing what comes before it; `push`, `load` and `ls` use it),
//! - [`verify`] checks it in one sequential pass and reports every problem it finds,
//!   because an operator on the far side of an air gap needs the whole list at once.
//!
//! [`seekable`] holds the zstd seekable-format framing both sides share, [`toc`] the
//! `airlock.json` contract, and [`signature`] the signed statements of a signed bundle
//! (`airlock.sig.json` and the parts index's signature) and their checks. [`parts`]
//! writes a bundle as numbered parts with a parts index (`save --split`) and finds and
//! checks them again; [`source`] reads one file or a set of parts as one stream, so
//! everything above it works on split bundles unchanged; [`resume`] finds what an
//! unfinished bundle left by an interrupted save holds; [`graph`] reads one image's
//! manifests back out of a bundle, verified (for `push`, `load` and a base bundle).
//! [`output`] names every file a save writes beside its output (the bundle, its parts
//! and index, and the hidden partial, resume, lock and staging names), once, for the
//! writer here and for `export`. The byte-level format is documented in
//! `docs/bundle-format.md`; keep it in step with this code.

use std::io;
use std::path::PathBuf;

use crate::digest::{Digest, Mismatch};

pub mod convert;
pub mod graph;
pub mod output;
pub mod parts;
pub mod reader;
pub mod resume;
pub mod seekable;
pub mod signature;
pub(crate) mod source;
pub mod toc;
pub mod verify;
pub mod writer;

pub use output::OutputFiles;
pub use parts::{PartProblem, PartSet, PartsIndex, SplitSummary, parse_split};
pub use reader::{Bundle, Entry};
pub use verify::{Finding, FindingKind, VerifyReport, verify};
pub use writer::{BundleWriter, Compression, WriteOptions, WriteSummary};

/// The largest `airlock.json` a reader accepts (about a million blobs).
pub(crate) const MAX_TOC_SIZE: u64 = 256 * 1024 * 1024;
/// The largest `index.json`, `manifest.json` or `repositories` a reader accepts.
pub(crate) const MAX_METADATA_SIZE: u64 = 64 * 1024 * 1024;

/// Everything that can go wrong writing or reading a bundle. Messages name the bundle
/// and the entry or blob, and say what to do; the underlying cause is the `source`.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot create a temporary file next to {}; check that the directory exists and is writable", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing bundle {} failed (is the disk full?); nothing was left under that name", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the content given for blob {digest} does not match it; bundle {} was not written", path.display())]
    BlobMismatch {
        path: PathBuf,
        digest: Digest,
        #[source]
        source: Mismatch,
    },
    #[error("reading blob {digest} to add it to bundle {} failed", path.display())]
    BlobSource {
        path: PathBuf,
        digest: Digest,
        #[source]
        source: io::Error,
    },
    #[error("the writer for bundle {} stopped after an earlier error; run the save again", path.display())]
    Poisoned { path: PathBuf },
    #[error("entry name `{name}` for bundle {} is not a plain relative path (this is a bug in airlock)", path.display())]
    BadName { path: PathBuf, name: String },
    #[error("bundle {} already has an entry `{name}` (this is a bug in airlock)", path.display())]
    DuplicateName { path: PathBuf, name: String },
    #[error("cannot open bundle {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read bundle {}; run `airlock verify` on it", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{} is a directory, not a bundle file{}", path.display(),
        if *oci_layout {
            format!("; it is an OCI image layout: make a bundle of it with `airlock save oci:{} -o BUNDLE.tar.zst`", path.display())
        } else {
            String::new()
        }
    )]
    IsDir { path: PathBuf, oci_layout: bool },
    #[error("{} is neither a tar nor a zstd-compressed tar file, so not an airlock bundle", path.display())]
    NotTar { path: PathBuf },
    #[error("{} is not an airlock bundle (it has no airlock.json); make bundles with `airlock save`", path.display())]
    NotAirlock { path: PathBuf },
    #[error("{} was made by a newer airlock (bundle format {found}, this airlock reads up to {supported}); use a newer airlock", path.display())]
    Newer {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("the table of contents (airlock.json) of {} is not valid; the bundle is damaged, run `airlock verify` on it", path.display())]
    BadToc {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("the table of contents (airlock.json) of {} is damaged: {reason}; run `airlock verify` on it", path.display())]
    TocChecksum { path: PathBuf, reason: String },
    #[error("bundle {} holds a suspicious entry `{entry}` ({reason}); refusing to read it", path.display())]
    Hostile {
        path: PathBuf,
        entry: String,
        reason: String,
    },
    #[error("bundle {} has no entry `{name}`", path.display())]
    MissingEntry { path: PathBuf, name: String },
    #[error(
        "{} is a part of a split bundle, but its parts index {} is missing: copy the index next \
         to the parts (or join the parts with `cat {base}.0* > {base}` and use the joined file)",
        part.display(), index.display()
    )]
    NoPartsIndex {
        part: PathBuf,
        index: PathBuf,
        base: String,
    },
    #[error("the parts index {} is not valid: {reason}; copy it again from where the bundle was saved", path.display())]
    BadPartsIndex { path: PathBuf, reason: String },
    #[error(
        "split bundle {}: {problem}{}", index.display(),
        if *more == 0 { String::new() } else { format!(" (and {more} more problem{} with its parts; `airlock verify` lists them all)", if *more == 1 { "" } else { "s" }) }
    )]
    Part {
        /// The parts index.
        index: PathBuf,
        problem: PartProblem,
        /// How many other part problems were found.
        more: usize,
    },
    #[error("bundle {} does not contain blob {digest}", path.display())]
    MissingBlob { path: PathBuf, digest: Digest },
    #[error("entry `{name}` of bundle {} is {size} bytes, more than the {limit} allowed for it", path.display())]
    TooLarge {
        path: PathBuf,
        name: String,
        size: u64,
        limit: u64,
    },
}

/// Why an entry name is not acceptable in a bundle, or `None` when it is: a relative
/// path of normal components, no `..`, no empty or `.` components, no backslashes.
pub(crate) fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("empty name");
    }
    if name.starts_with('/') {
        return Some("absolute path");
    }
    if name.contains('\\') || name.contains('\0') {
        return Some("backslash or NUL in the name");
    }
    for part in name.trim_end_matches('/').split('/') {
        match part {
            ".." => return Some("`..` in the path"),
            "" | "." => return Some("empty or `.` path component"),
            _ => {}
        }
    }
    None
}

/// The digest a `blobs/sha256/<hex>` entry name stands for, if it is one.
pub(crate) fn blob_name_digest(name: &str) -> Option<Digest> {
    let hex = name.strip_prefix("blobs/sha256/")?;
    Digest::parse(&format!("sha256:{hex}")).ok()
}

/// Whether `name` is one of the entries a bundle may hold (blobs included).
pub(crate) fn is_expected_name(name: &str) -> bool {
    matches!(
        name,
        "oci-layout"
            | toc::TOC_NAME
            | signature::SIG_NAME
            | "index.json"
            | "manifest.json"
            | "repositories"
            | "blobs"
            | "blobs/sha256"
    ) || blob_name_digest(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name_problem("blobs/sha256/ab"), None);
        assert_eq!(name_problem("blobs/"), None);
        assert!(name_problem("/etc/passwd").is_some());
        assert!(name_problem("a/../b").is_some());
        assert!(name_problem("..").is_some());
        assert!(name_problem("a//b").is_some());
        assert!(name_problem("").is_some());
        let d = Digest::of(b"x");
        assert_eq!(blob_name_digest(&d.blob_path()), Some(d));
        assert!(blob_name_digest("blobs/sha256/xyz").is_none());
        assert!(is_expected_name("airlock.json"));
        assert!(!is_expected_name("etc/passwd"));
    }
}
