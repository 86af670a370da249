//! The token stream between the match finders and the block writer, and the DEFLATE
//! length/distance code tables (RFC 1951 §3.2.5).
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

/// Length symbol index (0..=28, add 257 for the alphabet) of `xlength` (0..=255).
#[inline]
pub fn length_code(xlength: u32) -> usize {
    LENGTH_CODE[xlength as usize] as usize
}

/// Distance symbol (0..=29) of `xoffset` (0..32768).
#[inline]
pub fn offset_code(xoffset: u32) -> usize {
    if xoffset < 2 {
        xoffset as usize
    } else {
        let n = 31 - xoffset.leading_zeros();
        (2 * n + ((xoffset >> (n - 1)) & 1)) as usize
    }
}

const fn length_code_of(x: u32) -> u8 {
    if x < 8 {
        x as u8
    } else if x == 255 {
        28
    } else {
        let n = 31 - x.leading_zeros();
        (4 * (n - 1) + ((x >> (n - 2)) & 3)) as u8
    }
}

const fn build_length_codes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = length_code_of(i as u32);
        i += 1;
    }
    t
}

static LENGTH_CODE: [u8; 256] = build_length_codes();

/// Extra bits of length symbol `code` (0..=28).
pub const fn length_extra_bits(code: usize) -> u32 {
    if code < 8 || code == 28 {
        0
    } else {
        ((code - 4) / 4) as u32
    }
}

/// Extra bits of distance symbol `code` (0..=29).
pub const fn offset_extra_bits(code: usize) -> u32 {
    if code < 4 { 0 } else { ((code - 2) / 2) as u32 }
}

const fn build_length_base() -> [u32; 29] {
    let mut t = [0u32; 29];
    let mut base = 0;
    let mut c = 0;
    while c < 28 {
        t[c] = base;
        base += 1 << length_extra_bits(c);
        c += 1;
    }
    t[28] = 255;
    t
}

const fn build_offset_base() -> [u32; 30] {
    let mut t = [0u32; 30];
    let mut base = 0;
    let mut c = 0;
    while c < 30 {
        t[c] = base;
        base += 1 << offset_extra_bits(c);
        c += 1;
    }
    t
}

/// Smallest `xlength` of each length symbol.
pub static LENGTH_BASE: [u32; 29] = build_length_base();
/// Smallest `xoffset` of each distance symbol.
pub static OFFSET_BASE: [u32; 30] = build_offset_base();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_agree_with_their_bases() {
        for x in 0..256u32 {
            let c = length_code(x);
            assert!(LENGTH_BASE[c] <= x, "xlength {x}");
            assert!(
                x - LENGTH_BASE[c] < 1 << length_extra_bits(c),
                "xlength {x}"
            );
        }
        assert_eq!(LENGTH_BASE[27], 224);
        for x in 0..32768u32 {
            let c = offset_code(x);
            assert!(
                OFFSET_BASE[c] <= x && x - OFFSET_BASE[c] < 1 << offset_extra_bits(c),
                "xoffset {x}"
            );
        }
        assert_eq!(OFFSET_BASE[29], 0x6000);
        let t = matched(255, 32767);
        assert!(t >= MATCH && xlength(t) == 255 && xoffset(t) == 32767);
    }
}
