//! Rebuilding gzip layers bit-exactly: a gzip blob is described (members, headers,
//! trailer, trailing bytes: `header`), its encoder identified (`identify`), and its
//! deflate streams rewritten by the same encoder (`zlib`, stock zlib) so the rebuilt
//! blob has the layer's digest. Kept apart from the bundle code: this module only
//! turns bytes into bytes.

pub mod header;
pub mod identify;
pub mod zlib;
