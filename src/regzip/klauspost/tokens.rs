//! The token buffer between klauspost's match finders and its block writer, with the
//! running histograms it keeps as tokens are added, and the size estimate
//! (`estimated_bits`) the block writer uses to decide whether to start a new table.
//!
//! Packing (visible only through the thresholds that count tokens): a literal is its
//! byte; the end-of-block token is 256; a match sets bit 30, holds `length - 3` in bits
//! 22..30, its distance code in bits 16..21 and `distance - 1` in bits 0..16. The
//! histograms are `u16` as in the original: a window never holds more than 65535 tokens.
//! The estimate uses the original's single-precision logarithm approximation, step for
//! step (IEEE f32 arithmetic, no fused multiply-add: what Go emits for amd64).

pub const MATCH: u32 = 1 << 30;
const LENGTH_SHIFT: u32 = 22;
pub const END_BLOCK: u32 = 256;
/// The literal/length alphabet (0..=285).
pub const LITERAL_COUNT: usize = 286;
/// The distance alphabet.
pub const OFFSET_CODE_COUNT: usize = 30;
/// The largest window a fast level encodes at once (and the stored block limit).
pub const MAX_STORE_BLOCK: usize = 65535;

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

/// Length symbol index (0..=28) of `xlength` (length - 3, 0..=255).
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

/// Distance symbol of `xoffset` (distance - 1), by the original's two-table lookup:
/// above 255 the value is shifted right by 7 and truncated to a byte, so 32768 (which
/// level 9's gain estimate passes, a distance rather than `distance - 1`) maps to 14.
#[inline]
pub fn offset_code(xoffset: u32) -> u32 {
    let small = |x: u32| {
        if x < 2 {
            x
        } else {
            let n = 31 - x.leading_zeros();
            2 * n + ((x >> (n - 1)) & 1)
        }
    };
    if xoffset < 256 {
        small(xoffset)
    } else {
        small((xoffset >> 7) & 0xff) + 14
    }
}

#[inline]
pub fn xlength(t: u32) -> u32 {
    (t >> LENGTH_SHIFT) & 0xff
}

#[inline]
pub fn xoffset(t: u32) -> u32 {
    t & 0xffff
}

#[inline]
pub fn ocode(t: u32) -> usize {
    ((t >> 16) & 31) as usize
}

/// A block's tokens with their histograms (literals, length symbols, distance symbols).
pub struct Tokens {
    pub extra_hist: [u16; 32],
    pub off_hist: [u16; 32],
    pub lit_hist: [u16; 256],
    pub n: usize,
    pub tokens: Vec<u32>,
}

impl Tokens {
    pub fn new() -> Tokens {
        Tokens {
            extra_hist: [0; 32],
            off_hist: [0; 32],
            lit_hist: [0; 256],
            n: 0,
            tokens: vec![0; MAX_STORE_BLOCK + 1],
        }
    }

    pub fn reset(&mut self) {
        if self.n == 0 {
            return;
        }
        self.n = 0;
        self.lit_hist = [0; 256];
        self.extra_hist = [0; 32];
        self.off_hist = [0; 32];
    }

    #[inline]
    pub fn add_literal(&mut self, b: u8) {
        self.tokens[self.n] = b as u32;
        self.lit_hist[b as usize] = self.lit_hist[b as usize].wrapping_add(1);
        self.n += 1;
    }

    pub fn add_literals(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.add_literal(b);
        }
    }

    /// A match of `xlength` (length - 3, at most 255) at `xoffset` (distance - 1).
    #[inline]
    pub fn add_match(&mut self, xlength: u32, xoffset: u32) {
        let oc = offset_code(xoffset);
        self.extra_hist[length_code(xlength) + 1] += 1;
        self.off_hist[oc as usize] += 1;
        self.tokens[self.n] = MATCH | (xlength << LENGTH_SHIFT) | (oc << 16) | xoffset;
        self.n += 1;
    }

    /// A match of any length (split into pieces of at most 258, never leaving less
    /// than 3 for the last) at `xoffset`.
    #[inline]
    pub fn add_match_long(&mut self, mut length: i32, xoffset: u32) {
        let oc = offset_code(xoffset);
        let packed_off = (oc << 16) | xoffset;
        while length > 0 {
            let mut xl = length;
            if xl > 258 {
                xl = if xl > 258 + 3 { 258 } else { 258 - 3 };
            }
            length -= xl;
            let xl = (xl - 3) as u32;
            self.extra_hist[length_code(xl & 0xff) + 1] += 1;
            self.off_hist[oc as usize] += 1;
            self.tokens[self.n] = MATCH | (xl << LENGTH_SHIFT) | packed_off;
            self.n += 1;
        }
    }

    pub fn add_eob(&mut self) {
        self.tokens[self.n] = END_BLOCK;
        self.extra_hist[0] += 1;
        self.n += 1;
    }

    pub fn slice(&self) -> &[u32] {
        &self.tokens[..self.n]
    }

    /// The original's entropy estimate of the block in bits.
    pub fn estimated_bits(&self) -> i32 {
        let mut shannon = 0f32;
        let mut bits = 0i32;
        let mut n_matches = 0i32;
        let total = self.n as i32;
        if total > 0 {
            let inv_total = 1.0f32 / total as f32;
            for &v in &self.lit_hist {
                if v > 0 {
                    let n = v as f32;
                    shannon += at_least_one(-fast_log2(n * inv_total)) * n;
                }
            }
            shannon += 15.0;
            for (i, &v) in self.extra_hist[1..LITERAL_COUNT - 256].iter().enumerate() {
                if v > 0 {
                    let n = v as f32;
                    shannon += at_least_one(-fast_log2(n * inv_total)) * n;
                    bits += LENGTH_EXTRA_BITS[i & 31] as i32 * v as i32;
                    n_matches += v as i32;
                }
            }
        }
        if n_matches > 0 {
            let inv_total = 1.0f32 / n_matches as f32;
            for (i, &v) in self.off_hist[..OFFSET_CODE_COUNT].iter().enumerate() {
                if v > 0 {
                    let n = v as f32;
                    shannon += at_least_one(-fast_log2(n * inv_total)) * n;
                    bits += OFFSET_EXTRA_BITS[i & 31] as i32 * v as i32;
                }
            }
        }
        shannon as i32 + bits
    }
}

fn at_least_one(v: f32) -> f32 {
    v.clamp(1.0, 15.0)
}

/// The original's approximate log2 (exponent plus a quadratic on the mantissa); its
/// constants are written as the original spells them so they round to the same f32.
#[allow(clippy::excessive_precision)]
fn fast_log2(val: f32) -> f32 {
    let mut ux = val.to_bits() as i32;
    let mut log2 = (((ux >> 23) & 255) - 128) as f32;
    ux &= -0x7f80_0001;
    ux += 127 << 23;
    let uval = f32::from_bits(ux as u32);
    log2 += ((-0.34484843f32) * uval + 2.02466578f32) * uval - 0.67487759f32;
    log2
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
        assert_eq!(offset_code(0), 0);
        assert_eq!(offset_code(4), 4);
        assert_eq!(offset_code(5), 4);
        assert_eq!(offset_code(6), 5);
        assert_eq!(offset_code(32767), 29);
        assert_eq!(offset_code(32768), 14);
        for (c, &base) in OFFSET_BASE[..30].iter().enumerate() {
            assert_eq!(offset_code(base), c as u32);
        }
    }
}
