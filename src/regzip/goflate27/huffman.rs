//! Go 1.27's Huffman code construction: length-limited codes from a histogram
//! (the package-merge style `bit_counts`, ties between equal frequencies broken by
//! symbol value), canonical code assignment, and the size sums the block writer
//! compares. A code is packed as Go packs it: `length | reversed_code << 8`.
//!
//! Kept apart from the classic encoder's `huffman` module because the details that
//! decide visible bits differ: histograms are 16-bit, a code table keeps stale
//! entries past the histogram it was last built from (Go reuses the tables between
//! literal-only and full blocks), and the fixed tables are plain encoders.

use std::sync::OnceLock;

use super::super::deflate::tokens::{LITERAL_COUNT, OFFSET_CODE_COUNT};

const MAX_BITS_LIMIT: usize = 16;

/// A Huffman code table (reversed codes, ready to write LSB first).
#[derive(Clone)]
pub(super) struct HuffmanEncoder {
    /// `len | code << 8`; zero is "no code". Sized to the next power of two like
    /// Go's backing array, so reads past the live part see zeros or stale codes.
    pub codes: Vec<u32>,
    bit_count: [i32; 17],
    freqcache: Vec<(u16, u16)>,
}

#[inline]
pub(super) fn code_len(c: u32) -> u32 {
    c & 0xff
}

#[inline]
pub(super) fn code_bits(c: u32) -> u64 {
    (c >> 8) as u64
}

fn hcode(code: u16, len: u8) -> u32 {
    len as u32 | (code as u32) << 8
}

fn reverse_bits(x: u16, b: u8) -> u16 {
    (x << ((16 - b as u32) & 15)).reverse_bits()
}

impl HuffmanEncoder {
    pub fn new(size: usize) -> HuffmanEncoder {
        HuffmanEncoder {
            codes: vec![0; size.next_power_of_two()],
            bit_count: [0; 17],
            freqcache: vec![(0, 0); LITERAL_COUNT + 1],
        }
    }

    /// Bits needed for `freq` with this table (unset codes count zero).
    pub fn bit_length(&self, freq: &[u16]) -> i32 {
        let mut total = 0i32;
        for (i, &f) in freq.iter().enumerate() {
            if f != 0 {
                total += f as i32 * code_len(self.codes[i]) as i32;
            }
        }
        total
    }

    /// Bits needed to code `b` as literals, an unset code counting one bit.
    pub fn bit_length_raw(&self, b: &[u8]) -> i32 {
        b.iter()
            .map(|&v| code_len(self.codes[v as usize]).max(1) as i32)
            .sum()
    }

    /// Bits needed for `freq`, or `i32::MAX` if some used symbol has no code.
    pub fn can_encode_len(&self, freq: &[u16]) -> i32 {
        let mut total = 0i32;
        for (i, &f) in freq.iter().enumerate() {
            if f != 0 {
                let c = self.codes[i];
                if c == 0 {
                    return i32::MAX;
                }
                total += f as i32 * code_len(c) as i32;
            }
        }
        total
    }

    /// Rebuilds the codes for symbols `0..freq.len()` (longer codes at most `max_bits`);
    /// codes beyond `freq.len()` are left as they were.
    pub fn generate(&mut self, freq: &[u16], max_bits: i32) {
        let mut list = std::mem::take(&mut self.freqcache);
        let mut count = 0;
        for (i, &f) in freq.iter().enumerate() {
            if f != 0 {
                list[count] = (i as u16, f);
                count += 1;
            } else {
                self.codes[i] = 0;
            }
        }
        if count <= 2 {
            for (i, &(lit, _)) in list[..count].iter().enumerate() {
                self.codes[lit as usize] = hcode(i as u16, 1);
            }
            self.freqcache = list;
            return;
        }
        list[..count].sort_unstable_by_key(|&(lit, f)| ((f as u32) << 10) + lit as u32);
        let bit_count = self.bit_counts(&mut list, count, max_bits);
        self.assign(&bit_count, &mut list[..count]);
        self.freqcache = list;
    }

    /// How many symbols get each code length (index = length), for the `n` symbols
    /// in `list` sorted by frequency.
    fn bit_counts(&mut self, list: &mut [(u16, u16)], n: usize, max_bits: i32) -> Vec<i32> {
        #[derive(Clone, Copy, Default)]
        struct Level {
            level: i32,
            last_freq: i32,
            next_char_freq: i32,
            next_pair_freq: i32,
            needed: i32,
        }
        let n32 = n as i32;
        list[n] = (u16::MAX, u16::MAX);
        let max_bits = max_bits.min(n32 - 1);
        let mut levels = [Level::default(); MAX_BITS_LIMIT + 1];
        let mut leaf_counts = [[0i32; MAX_BITS_LIMIT]; MAX_BITS_LIMIT + 1];
        for level in 1..=max_bits {
            let l = level as usize;
            levels[l] = Level {
                level,
                last_freq: list[1].1 as i32,
                next_char_freq: list[2].1 as i32,
                next_pair_freq: list[0].1 as i32 + list[1].1 as i32,
                needed: 0,
            };
            leaf_counts[l][l] = 2;
            if level == 1 {
                levels[l].next_pair_freq = i32::MAX;
            }
        }
        levels[max_bits as usize].needed = 2 * n32 - 4;
        let mut level = max_bits as usize;
        while level < 16 {
            if levels[level].next_pair_freq == i32::MAX && levels[level].next_char_freq == i32::MAX
            {
                levels[level].needed = 0;
                levels[level + 1].next_pair_freq = i32::MAX;
                level += 1;
                continue;
            }
            let prev_freq = levels[level].last_freq;
            if levels[level].next_char_freq < levels[level].next_pair_freq {
                let nn = leaf_counts[level][level] + 1;
                levels[level].last_freq = levels[level].next_char_freq;
                leaf_counts[level][level] = nn;
                let e = list[nn as usize];
                levels[level].next_char_freq = if e.0 < u16::MAX { e.1 as i32 } else { i32::MAX };
            } else {
                levels[level].last_freq = levels[level].next_pair_freq;
                let save = leaf_counts[level][level];
                leaf_counts[level] = leaf_counts[level - 1];
                leaf_counts[level][level] = save;
                let below = levels[level].level as usize - 1;
                levels[below].needed = 2;
            }
            levels[level].needed -= 1;
            if levels[level].needed == 0 {
                if levels[level].level == max_bits {
                    break;
                }
                let up = levels[level].level as usize + 1;
                levels[up].next_pair_freq = prev_freq + levels[level].last_freq;
                level += 1;
            } else {
                while levels[level - 1].needed > 0 {
                    level -= 1;
                }
            }
        }
        assert_eq!(
            leaf_counts[max_bits as usize][max_bits as usize], n32,
            "huffman: leaf count"
        );
        let mb = max_bits as usize;
        let counts = leaf_counts[mb];
        for (bits, level) in (1..).zip((1..=mb).rev()) {
            self.bit_count[bits] = counts[level] - counts[level - 1];
        }
        self.bit_count[..=mb].to_vec()
    }

    /// Canonical codes: the least frequent symbols get the longest codes, codes of
    /// one length are assigned in symbol order.
    fn assign(&mut self, bit_count: &[i32], mut list: &mut [(u16, u16)]) {
        let mut code = 0u16;
        for (n, &bits) in bit_count.iter().enumerate() {
            code <<= 1;
            if n == 0 || bits == 0 {
                continue;
            }
            let len = list.len();
            let chunk = &mut list[len - bits as usize..];
            chunk.sort_unstable_by_key(|&(lit, _)| lit);
            for &(lit, _) in chunk.iter() {
                self.codes[lit as usize] = hcode(reverse_bits(code, n as u8), n as u8);
                code = code.wrapping_add(1);
            }
            list = &mut list[..len - bits as usize];
        }
    }
}

/// RFC 1951's fixed literal/length table.
pub(super) fn fixed_literal() -> &'static HuffmanEncoder {
    static T: OnceLock<HuffmanEncoder> = OnceLock::new();
    T.get_or_init(|| {
        let mut h = HuffmanEncoder::new(LITERAL_COUNT);
        for ch in 0..LITERAL_COUNT as u16 {
            let (bits, size) = match ch {
                0..=143 => (ch + 48, 8),
                144..=255 => (ch + 400 - 144, 9),
                256..=279 => (ch - 256, 7),
                _ => (ch + 192 - 280, 8),
            };
            h.codes[ch as usize] = hcode(reverse_bits(bits, size), size);
        }
        h
    })
}

/// RFC 1951's fixed distance table.
pub(super) fn fixed_offset() -> &'static HuffmanEncoder {
    static T: OnceLock<HuffmanEncoder> = OnceLock::new();
    T.get_or_init(|| {
        let mut h = HuffmanEncoder::new(OFFSET_CODE_COUNT);
        for ch in 0..OFFSET_CODE_COUNT {
            h.codes[ch] = hcode(reverse_bits(ch as u16, 5), 5);
        }
        h
    })
}

/// The distance table of literal-only blocks: one code of length 1 for distance 0.
pub(super) fn huff_offset() -> &'static HuffmanEncoder {
    static T: OnceLock<HuffmanEncoder> = OnceLock::new();
    T.get_or_init(|| {
        let mut h = HuffmanEncoder::new(OFFSET_CODE_COUNT);
        let mut freq = [0u16; OFFSET_CODE_COUNT];
        freq[0] = 1;
        h.generate(&freq, 15);
        h
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_canonical_and_length_limited() {
        let mut freq = [0u16; 286];
        for (i, f) in freq.iter_mut().enumerate() {
            *f = if i % 3 == 0 { 0 } else { (i as u16 % 17) + 1 };
        }
        freq[7] = 60_000;
        let mut h = HuffmanEncoder::new(286);
        // 190 symbols: 9 bits is enough room, and the skewed count forces the limit.
        h.generate(&freq, 9);
        // Kraft sum of a complete prefix code is exactly 1.
        let kraft: f64 = freq
            .iter()
            .enumerate()
            .filter(|(_, f)| **f != 0)
            .map(|(i, _)| 0.5f64.powi(code_len(h.codes[i]) as i32))
            .sum();
        assert!((kraft - 1.0).abs() < 1e-12, "{kraft}");
        assert!(h.codes.iter().all(|&c| code_len(c) <= 9));
        assert!(h.codes.iter().any(|&c| code_len(c) == 9));
        assert_eq!(code_len(h.codes[3]), 0);
    }
}
