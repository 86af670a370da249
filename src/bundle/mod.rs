//! The bundle format: one tar stream (optionally zstd, seekable) that is at once an OCI
//! image layout and a `docker save` archive, plus airlock's TOC (STUB: the bundle
//! helper owns this module except `toc.rs`).

pub mod toc;
