//! The RFC 1951 §3.2.5 length and distance codes: extra bits and base of every length
//! symbol (257..=285, indexed from 0) and distance symbol, and the lookups from
//! `length - 3` and `distance - 1` to their symbol, as the Go and klauspost encoders
//! compute them. The tables are 32 long (the upstream's padding), so `i & 31` indexes
//! them without a bounds check.

/// Extra bits per length symbol (index = symbol - 257).
pub const LENGTH_EXTRA_BITS: [u8; 32] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0, 0, 0, 0,
];

/// First length (minus 3) of each length symbol.
pub const LENGTH_BASE: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128,
    160, 192, 224, 255, 0, 0, 0,
];

/// Extra bits per distance symbol.
pub const OFFSET_EXTRA_BITS: [u8; 32] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13, 14, 14,
];

/// First distance (minus 1) of each distance symbol.
pub const OFFSET_BASE: [u32; 32] = [
    0x0000, 0x0001, 0x0002, 0x0003, 0x0004, 0x0006, 0x0008, 0x000c, 0x0010, 0x0018, 0x0020, 0x0030,
    0x0040, 0x0060, 0x0080, 0x00c0, 0x0100, 0x0180, 0x0200, 0x0300, 0x0400, 0x0600, 0x0800, 0x0c00,
    0x1000, 0x1800, 0x2000, 0x3000, 0x4000, 0x6000, 0x8000, 0xc000,
];

/// Length symbol index (0..=28, add 257 for the alphabet) of `xlength` (length - 3;
/// only its low byte counts, as in the upstream's byte-indexed table).
#[inline]
pub fn length_code(xlength: u32) -> usize {
    LENGTH_CODE[(xlength & 0xff) as usize] as usize
}

static LENGTH_CODE: [u8; 256] = build_length_code();

const fn build_length_code() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut x = 0;
    while x < 256 {
        // the last symbol whose first length is at most x
        let mut c = 28;
        while LENGTH_BASE[c] as usize > x {
            c -= 1;
        }
        t[x] = c as u8;
        x += 1;
    }
    t
}

/// Distance symbol of `xoffset` (distance - 1), by the upstream's two-table lookup:
/// above 255 the value is shifted right by 7 and truncated to a byte, so 32768 (which
/// klauspost's level 9 gain estimate passes, a distance rather than `distance - 1`)
/// maps to 14.
#[inline]
pub fn offset_code(xoffset: u32) -> u32 {
    if xoffset < 256 {
        SMALL_OFFSET_CODE[xoffset as usize] as u32
    } else {
        SMALL_OFFSET_CODE[((xoffset >> 7) & 0xff) as usize] as u32 + 14
    }
}

static SMALL_OFFSET_CODE: [u8; 256] = build_small_offset_code();

const fn build_small_offset_code() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut x = 0;
    let mut code = 0;
    while x < 256 {
        while code + 1 < 16 && OFFSET_BASE[code + 1] as usize <= x {
            code += 1;
        }
        t[x] = code as u8;
        x += 1;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_rfc1951() {
        assert_eq!(length_code(0), 0);
        assert_eq!(length_code(8), 8);
        assert_eq!(length_code(9), 8);
        assert_eq!(length_code(10), 9);
        assert_eq!(length_code(254), 27);
        assert_eq!(length_code(255), 28);
        for x in 0..256u32 {
            let c = length_code(x);
            assert!(LENGTH_BASE[c] as u32 <= x, "xlength {x}");
            assert!(
                x - (LENGTH_BASE[c] as u32) < 1 << LENGTH_EXTRA_BITS[c],
                "xlength {x}"
            );
        }
        assert_eq!(offset_code(0), 0);
        assert_eq!(offset_code(4), 4);
        assert_eq!(offset_code(5), 4);
        assert_eq!(offset_code(6), 5);
        assert_eq!(offset_code(255), 15);
        assert_eq!(offset_code(256), 16);
        assert_eq!(offset_code(32767), 29);
        assert_eq!(offset_code(32768), 14);
        for x in 0..32768u32 {
            let c = offset_code(x) as usize;
            assert!(
                OFFSET_BASE[c] <= x && x - OFFSET_BASE[c] < 1 << OFFSET_EXTRA_BITS[c],
                "xoffset {x}"
            );
        }
    }
}
