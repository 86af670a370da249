//! The token block between klauspost's (and Go 1.27's) match finders and their block
//! writers: packed literal/match tokens, the three histograms kept while tokens are
//! added (literals, length symbols with the end-of-block marker at 0, distance
//! symbols), and the block's entropy estimate that decides whether a new Huffman table
//! pays (`estimated_bits`, float32 as Go computes it: the estimate picks block
//! boundaries, so its rounding is visible in the output).
//!
//! Packing (visible through the thresholds that count tokens): a literal is its byte;
//! the end-of-block token is 256; a match sets bit 30, holds `length - 3` in bits
//! 22..30, its distance code in bits 16..21 and `distance - 1` in bits 0..16. The
//! histograms are `u16` and wrap as the upstream's do; a block never holds more than
//! 65 536 tokens. The estimate uses the upstream's single-precision logarithm
//! approximation step for step (IEEE f32, no fused multiply-add: what Go emits for
//! amd64).

use super::codes::{LENGTH_EXTRA_BITS, OFFSET_EXTRA_BITS, length_code, offset_code};

/// Bit set on match tokens; every literal and the end-of-block token are below it.
pub const MATCH: u32 = 1 << 30;
pub const LENGTH_SHIFT: u32 = 22;
/// A match token's distance code and `distance - 1` (bits 0..22).
pub const OFFSET_MASK: u32 = (1 << LENGTH_SHIFT) - 1;
pub const END_BLOCK: u32 = 256;
/// The literal/length alphabet (0..=285).
pub const LITERAL_COUNT: usize = 286;
/// The distance alphabet.
pub const OFFSET_CODE_COUNT: usize = 30;
/// The largest window a fast level encodes at once (and the stored block limit).
pub const MAX_STORE_BLOCK: usize = 65535;
const BASE_MATCH_LENGTH: i32 = 3;

/// `length - 3` of a match token.
#[inline]
pub fn xlength(t: u32) -> u32 {
    (t >> LENGTH_SHIFT) & 0xff
}

/// `distance - 1` of a match token.
#[inline]
pub fn xoffset(t: u32) -> u32 {
    t & 0xffff
}

/// The distance symbol of a match token.
#[inline]
pub fn ocode(t: u32) -> usize {
    ((t >> 16) & 31) as usize
}

/// One block of tokens with its histograms.
pub struct Tokens {
    /// Index 0: end of block; index 1 + k: length code k.
    pub extra_hist: [u16; 32],
    pub off_hist: [u16; 32],
    pub lit_hist: [u16; 256],
    pub n: usize,
    pub tokens: Box<[u32]>,
}

impl Default for Tokens {
    fn default() -> Tokens {
        Tokens::new()
    }
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
        let lc = length_code(xlength) + 1;
        self.extra_hist[lc] = self.extra_hist[lc].wrapping_add(1);
        self.off_hist[(oc & 31) as usize] = self.off_hist[(oc & 31) as usize].wrapping_add(1);
        self.tokens[self.n] = MATCH | xlength << LENGTH_SHIFT | xoffset | oc << 16;
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
            let lc = length_code(xl as u32) + 1;
            self.extra_hist[lc] = self.extra_hist[lc].wrapping_add(1);
            self.off_hist[(oc & 31) as usize] = self.off_hist[(oc & 31) as usize].wrapping_add(1);
            self.tokens[self.n] = MATCH | (xl as u32) << LENGTH_SHIFT | packed;
            self.n += 1;
        }
    }

    pub fn slice(&self) -> &[u32] {
        &self.tokens[..self.n]
    }

    pub fn add_eob(&mut self) {
        self.tokens[self.n] = END_BLOCK;
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
    fn match_tokens_unpack() {
        let mut t = Tokens::new();
        t.add_literal(b'a');
        t.add_match(255, 32767);
        t.add_eob();
        let s = t.slice();
        assert_eq!(s[0], b'a' as u32);
        assert!(s[1] >= MATCH && xlength(s[1]) == 255 && xoffset(s[1]) == 32767);
        assert_eq!(ocode(s[1]), 29);
        assert_eq!(s[2], END_BLOCK);
        assert_eq!(
            (t.lit_hist[b'a' as usize], t.extra_hist[29], t.extra_hist[0]),
            (1, 1, 1)
        );
    }
}
