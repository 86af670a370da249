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
//! The module is split by side, each depending only on the ones above it:
//!
//! - [`size`]: [`parse_split`], the `--split` size syntax (and [`parse_chunk_size`],
//!   `push --chunk-size`, which shares its number-and-unit parsing);
//! - [`index`]: the parts index ([`PartsIndex`], [`PartEntry`]) and the names of a
//!   split bundle's files, recognised from a path ([`is_output_file`],
//!   [`bundle_named`], the look-alike and listed parts);
//! - [`writer`]: [`PartWriter`], the `Write` the bundle writer streams into when
//!   splitting: each part is written under a temporary name and hashed on the way;
//!   [`PartWriter::finish`] renames the parts to their final names and the index last,
//!   so a set without its index is an unfinished one, and dropping the writer deletes
//!   every part (or, for a save that can be resumed, keeps them under their hidden names
//!   `.<name>.000.partial`, …: [`OutputFiles::partial_part`]);
//! - [`locate`](mod@locate): [`locate()`] and [`PartSet`], the reading side: which
//!   files a path given to `open` or `verify` stands for (the first part, the index, or
//!   the base name when only parts exist), and the cheap checks (existence, sizes, stray
//!   parts, a hash of the first 4 KiB of each part) that name a missing, truncated,
//!   swapped or foreign part ([`PartProblem`]) before anything is read. `verify` adds
//!   the full per-part sha256 (see [`source::PartHashes`](super::source::PartHashes)).
//!
//! **What may be deleted.** A save only ever deletes files it created: its own hidden
//! partials, and — when a new set replaces an older, longer one under the same name —
//! the parts the older set's index lists by name ([`index::listed_parts`]). Files found
//! by a name pattern (`<bundle>.<digits>`: a dated copy, a user's `b.tar.zst.0001`) are
//! never removed; the ones that look like parts of the new set are named in the save's
//! notes. Only [`writer`] deletes anything.
//!
//! The format is documented in `docs/bundle-format.md` ("Split bundles"); every name
//! a save gives its files comes from [`OutputFiles`].
//!
//! [`OutputFiles`]: super::output::OutputFiles
//! [`OutputFiles::partial_part`]: super::output::OutputFiles::partial_part

pub mod index;
pub mod locate;
pub mod size;
pub mod writer;

pub use index::{
    HEAD_SIZE, INDEX_SUFFIX, PARTS_FORMAT, PartEntry, PartsIndex, bundle_named, index_path,
    is_output_file,
};
pub(crate) use locate::{Location, locate};
pub use locate::{PartProblem, PartSet};
pub use size::{FAT32_MAX, MIN_CHUNK, MIN_SPLIT, parse_chunk_size, parse_split};
pub use writer::{IndexSigner, PartWriter, SplitSummary};
