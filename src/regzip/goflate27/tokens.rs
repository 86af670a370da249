//! Go 1.27's token block: packed literal/match tokens plus the three histograms kept
//! while tokens are added (literals, length codes with the end-of-block marker at 0,
//! offset codes), the RFC 1951 code tables, and the block's entropy estimate that
//! decides whether a new Huffman table pays (`estimated_bits`, float32 as Go computes
//! it: the estimate picks block boundaries, so its rounding is visible in the output).
//!
//! Histograms are 16-bit and wrap as Go's do; a block never holds more than 65 536
//! tokens.

/// Token layout: bits 0–15 offset−1, bits 16–20 offset code, bits 22–29 length−3,
/// bit 30 set for a match. A literal is its byte value; 256 is the end of block.
pub(super) const LENGTH_SHIFT: u32 = 22;
pub(super) const MATCH_TYPE: u32 = 1 << 30;
pub(super) const OFFSET_MASK: u32 = (1 << LENGTH_SHIFT) - 1;
pub(super) const MATCH_OFFSET_ONLY_MASK: u32 = 0xffff;
pub(super) const END_BLOCK_MARKER: u32 = 256;
pub(super) const LITERAL_COUNT: usize = 286;
pub(super) const OFFSET_CODE_COUNT: usize = 30;
const BASE_MATCH_LENGTH: i32 = 3;

/// Length code (0-based, code − 257) of a length − 3.
pub(super) static LENGTH_CODES: [u8; 256] = build_length_codes();

const fn build_length_codes() -> [u8; 256] {
    // RFC 1951 length bases (minus 3) for codes 257..=284; 285 is length 258.
    const BASE: [u16; 29] = [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112,
        128, 160, 192, 224, 255,
    ];
    let mut t = [0u8; 256];
    let mut code = 0;
    let mut x = 0;
    while x < 256 {
        while code + 1 < 29 && BASE[code + 1] as usize <= x {
            code += 1;
        }
        t[x] = code as u8;
        x += 1;
    }
    t
}

/// Extra bits per length code (0-based).
pub(super) static LENGTH_EXTRA_BITS: [u8; 32] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0, 0, 0, 0,
];

/// Length − 3 each length code starts at.
pub(super) static LENGTH_BASE: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128,
    160, 192, 224, 255, 0, 0, 0,
];

/// Extra bits per offset code.
pub(super) static OFFSET_EXTRA_BITS: [i8; 32] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13, 14, 14,
];

/// Offset − 1 each offset code starts at.
pub(super) static OFFSET_BASE: [u32; 32] = [
    0x0000, 0x0001, 0x0002, 0x0003, 0x0004, 0x0006, 0x0008, 0x000c, 0x0010, 0x0018, 0x0020, 0x0030,
    0x0040, 0x0060, 0x0080, 0x00c0, 0x0100, 0x0180, 0x0200, 0x0300, 0x0400, 0x0600, 0x0800, 0x0c00,
    0x1000, 0x1800, 0x2000, 0x3000, 0x4000, 0x6000, 0x8000, 0xc000,
];

/// The offset code of offset − 1 (`off` < 32 768).
#[inline]
pub(super) fn offset_code(off: u32) -> u32 {
    if off < 256 {
        SMALL_OFFSET_CODES[off as usize] as u32
    } else {
        SMALL_OFFSET_CODES[(off >> 7) as u8 as usize] as u32 + 14
    }
}

static SMALL_OFFSET_CODES: [u8; 256] = build_small_offset_codes();

const fn build_small_offset_codes() -> [u8; 256] {
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

/// One block of tokens with its histograms.
pub(super) struct Tokens {
    /// Index 0: end of block; index 1 + k: length code k.
    pub extra_hist: [u16; 32],
    pub off_hist: [u16; 32],
    pub lit_hist: [u16; 256],
    pub n: usize,
    pub tokens: Box<[u32]>,
}

impl Tokens {
    pub fn new() -> Tokens {
        Tokens {
            extra_hist: [0; 32],
            off_hist: [0; 32],
            lit_hist: [0; 256],
            n: 0,
            tokens: vec![0; 1 << 16].into_boxed_slice(),
        }
    }

    /// Empties the block (histograms too), unless it holds no token.
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
    pub fn add_literal(&mut self, lit: u8) {
        self.tokens[self.n] = lit as u32;
        self.lit_hist[lit as usize] = self.lit_hist[lit as usize].wrapping_add(1);
        self.n += 1;
    }

    pub fn add_literals(&mut self, lits: &[u8]) {
        for &v in lits {
            self.add_literal(v);
        }
    }

    /// A match of length `xlength` + 3 at distance `xoffset` + 1.
    pub fn add_match(&mut self, xlength: u32, xoffset: u32) {
        let oc = offset_code(xoffset);
        let lc = LENGTH_CODES[xlength as u8 as usize] as usize + 1;
        self.extra_hist[lc] = self.extra_hist[lc].wrapping_add(1);
        self.off_hist[(oc & 31) as usize] = self.off_hist[(oc & 31) as usize].wrapping_add(1);
        self.tokens[self.n] = MATCH_TYPE | xlength << LENGTH_SHIFT | xoffset | oc << 16;
        self.n += 1;
    }

    /// A match of `xlength` bytes (not reduced by 3, may exceed 258: split as Go
    /// splits it) at distance `xoffset` + 1.
    pub fn add_match_long(&mut self, mut xlength: i32, xoffset: u32) {
        let oc = offset_code(xoffset);
        let packed = xoffset | oc << 16;
        while xlength > 0 {
            let mut xl = xlength;
            if xl > 258 {
                xl = if xl > 258 + BASE_MATCH_LENGTH {
                    258
                } else {
                    258 - BASE_MATCH_LENGTH
                };
            }
            xlength -= xl;
            xl -= BASE_MATCH_LENGTH;
            let lc = LENGTH_CODES[xl as u8 as usize] as usize + 1;
            self.extra_hist[lc] = self.extra_hist[lc].wrapping_add(1);
            self.off_hist[(oc & 31) as usize] = self.off_hist[(oc & 31) as usize].wrapping_add(1);
            self.tokens[self.n] = MATCH_TYPE | (xl as u32) << LENGTH_SHIFT | packed;
            self.n += 1;
        }
    }

    pub fn add_eob(&mut self) {
        self.tokens[self.n] = END_BLOCK_MARKER;
        self.extra_hist[0] = self.extra_hist[0].wrapping_add(1);
        self.n += 1;
    }

    /// Go's estimate of the block's optimally coded size in bits (Shannon entropy with
    /// each symbol clamped to 1..=15 bits, plus extra bits), in float32.
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
                    shannon += clamp_bits(-fast_log2(n * inv_total)) * n;
                }
            }
            shannon += 15.0;
            for (i, &v) in self.extra_hist[1..LITERAL_COUNT - 256].iter().enumerate() {
                if v > 0 {
                    let n = v as f32;
                    shannon += clamp_bits(-fast_log2(n * inv_total)) * n;
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
                    shannon += clamp_bits(-fast_log2(n * inv_total)) * n;
                    bits += OFFSET_EXTRA_BITS[i & 31] as i32 * v as i32;
                }
            }
        }
        shannon as i32 + bits
    }
}

/// Go's `min(15, max(1, x))` on float32 (no NaN reaches it).
#[inline]
fn clamp_bits(x: f32) -> f32 {
    let lo = if x > 1.0 { x } else { 1.0 };
    if lo < 15.0 { lo } else { 15.0 }
}

/// The polynomial log2 approximation Go uses, step by step in float32 (no fused
/// multiply-add: Go on amd64 does not fuse them either).
#[inline]
#[allow(clippy::excessive_precision)]
fn fast_log2(val: f32) -> f32 {
    let mut ux = val.to_bits() as i32;
    let mut log2 = (((ux >> 23) & 255) - 128) as f32;
    ux &= -0x7f80_0001;
    ux = ux.wrapping_add(127 << 23);
    let uval = f32::from_bits(ux as u32);
    let a = -0.34484843f32 * uval;
    let b = a + 2.02466578f32;
    let c = b * uval;
    log2 += c - 0.67487759f32;
    log2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_match_rfc1951() {
        assert_eq!(LENGTH_CODES[0], 0);
        assert_eq!(LENGTH_CODES[8], 8);
        assert_eq!(LENGTH_CODES[9], 8);
        assert_eq!(LENGTH_CODES[254], 27);
        assert_eq!(LENGTH_CODES[255], 28);
        assert_eq!(offset_code(0), 0);
        assert_eq!(offset_code(4), 4);
        assert_eq!(offset_code(5), 4);
        assert_eq!(offset_code(255), 15);
        assert_eq!(offset_code(256), 16);
        assert_eq!(offset_code(32767), 29);
    }
}
