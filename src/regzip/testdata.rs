//! Test helpers the encoder ports' unit tests share: a sample with runs of text, noise
//! and repeats (so stored, fixed and dynamic blocks all show up) and a raw-deflate
//! decoder (flate2) to check that what an encoder writes decodes to its input. The
//! byte-for-byte checks against the real writers live in `tests/regzip_*.rs`.

use std::io::Read;

/// `n` bytes: runs of 5000 of text, noise and short repeats, in turn.
pub(crate) fn sample(n: usize) -> Vec<u8> {
    let mut x = 12345u32;
    (0..n as u32)
        .map(|i| {
            x = x.wrapping_mul(1664525).wrapping_add(1013904223);
            match (i / 5000) % 3 {
                0 => b"the quick brown fox "[(i % 20) as usize],
                1 => (x >> 24) as u8,
                _ => (i % 7) as u8,
            }
        })
        .collect()
}

/// The bytes a raw deflate stream decodes to.
pub(crate) fn inflate(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(data)
        .read_to_end(&mut out)
        .expect("a valid raw deflate stream");
    out
}
