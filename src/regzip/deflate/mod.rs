//! What the DEFLATE encoder ports share because it is the same code upstream, kept once
//! so a fix reaches every port: the block writers' bit accumulator and code-length
//! run-length coding (`bits`) and the RFC 1951 length/distance code tables and lookups
//! (`codes`), both used by all three ports; and the token block with its running
//! histograms and entropy estimate (`tokens`) that klauspost/compress introduced and
//! Go 1.27's rewrite took over unchanged (the classic `goflate` packs its tokens
//! differently and keeps its own).
//!
//! Only primitives live here, never policies: how each port splits blocks, picks block
//! types and reuses tables stays in its own module, since that is where their outputs
//! differ.

pub mod bits;
pub mod codes;
pub mod tokens;
