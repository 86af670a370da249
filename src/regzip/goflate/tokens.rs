//! The token stream between the match finders and the block writer (the RFC 1951
//! length/distance code tables it is written with are `regzip::deflate::codes`).
//!
//! A token is one `u32`, packed the way Go's `compress/flate` packs it: a literal is its
//! byte value; a match sets bit 30 and holds `length - 3` in bits 22..30 and
//! `distance - 1` in bits 0..22. Keeping Go's packing keeps the "more tokens than the
//! block allows" thresholds and the literal/match test (`token < MATCH`) identical.

/// Bit set on match tokens; every literal token is below it.
pub const MATCH: u32 = 1 << 30;
const LENGTH_SHIFT: u32 = 22;
const OFFSET_MASK: u32 = (1 << LENGTH_SHIFT) - 1;

/// The end-of-block symbol in the literal/length alphabet.
pub const END_BLOCK: usize = 256;
/// First length symbol in the literal/length alphabet.
pub const LENGTH_CODES_START: usize = 257;
/// Size of the literal/length alphabet (286 symbols: 0..=285).
pub const NUM_LITERALS: usize = 286;
/// Size of the distance alphabet.
pub const NUM_OFFSETS: usize = 30;

#[inline]
pub fn literal(b: u8) -> u32 {
    b as u32
}

/// A match of `xlength = length - 3` bytes at `xoffset = distance - 1`.
#[inline]
pub fn matched(xlength: u32, xoffset: u32) -> u32 {
    MATCH | (xlength << LENGTH_SHIFT) | xoffset
}

#[inline]
pub fn xlength(t: u32) -> u32 {
    (t - MATCH) >> LENGTH_SHIFT
}

#[inline]
pub fn xoffset(t: u32) -> u32 {
    t & OFFSET_MASK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_tokens_unpack() {
        let t = matched(255, 32767);
        assert!(t >= MATCH && xlength(t) == 255 && xoffset(t) == 32767);
    }
}
