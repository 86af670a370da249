//! Rebuilding gzip layers bit-exactly: a gzip blob is described (members, headers,
//! trailer, trailing bytes: `header`), its encoder identified (`identify`), and its
//! deflate streams rewritten by the same encoder so the rebuilt blob has the layer's
//! digest. Kept apart from the bundle code: this module only turns bytes into bytes.
//!
//! A bundle that stores a layer's raw tar can only give the layer back if it can
//! recompress it to the very same bytes, which needs the encoder that wrote it
//! reproduced exactly (match finder, block splitting, Huffman tie-breaking), not just
//! any DEFLATE encoder. Each encoder lives in its own submodule:
//!
//! - `zlib`: stock zlib (Python's `gzip`; pigz builds on it);
//! - `goflate`: Go's classic `compress/flate` (Go 1.7–1.26 at the default level; the
//!   exact range per level is in its docs), which Docker 20.10 (Go 1.19 in Debian)
//!   pushes layers with; `gzip` frames it as Go's `gzip.Writer` does, around header
//!   bytes as recorded;
//! - `goflate27`: Go 1.27's rewritten `compress/flate` (Go 1.27.0–1.27.3), whose
//!   output differs from the classic one at every level;
//! - `pigz`: pigz's blocks (stock zlib per block, primed with the previous block's
//!   tail, joined by flushes);
//! - `gnugzip`: GNU gzip 1.12's own deflate (`tar | gzip`), not zlib, levels 1–9;
//! - `klauspost`: klauspost/compress 1.15's flate under pgzip 1.2 (containers/image:
//!   skopeo, podman, buildah).
//!
//! `deflate` holds the primitives the encoder ports share (RFC 1951 code tables, the
//! token block of klauspost and Go 1.27), never their block policies.

pub mod deflate;
pub mod gnugzip;
pub mod goflate;
pub mod goflate27;
pub mod gzip;
pub mod header;
pub mod identify;
pub mod klauspost;
pub mod pigz;
pub mod recipe;
#[cfg(test)]
mod testdata;
pub mod zlib;
