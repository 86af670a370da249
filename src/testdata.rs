//! Test inputs shared by unit tests across modules (only built for tests).

/// `len` deterministic pseudo-random bytes (xorshift64), incompressible and distinct
/// for each `seed`.
pub(crate) fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
