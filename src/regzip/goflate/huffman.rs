//! Length-limited Huffman code construction exactly as Go's `compress/flate` does it.
//!
//! Which of several equally good codes an encoder picks is visible in its output, so this
//! follows Go's construction step for step: symbols sorted by (frequency, symbol), the
//! package-merge style "levels" walk that yields how many symbols get each bit length
//! (ties between a leaf and a pair go to the pair), then codes assigned from the shortest
//! length up, the most frequent symbols first, in symbol order within one length. One or
//! two used symbols get 1-bit codes in symbol order without the walk.

/// One prefix code: `code` is already bit-reversed for LSB-first output.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Code {
    pub code: u16,
    pub len: u16,
}

#[derive(Clone, Copy, Default)]
struct Node {
    symbol: u16,
    freq: i32,
}

#[derive(Clone, Copy, Default)]
struct Level {
    level: usize,
    last_freq: i32,
    next_char_freq: i32,
    next_pair_freq: i32,
    needed: i32,
}

const MAX_BITS_LIMIT: usize = 16;

/// A code for an alphabet of `codes.len()` symbols, rebuilt per block from frequencies.
pub struct HuffmanEncoder {
    pub codes: Vec<Code>,
    nodes: Vec<Node>,
}

/// `code`'s low `len` bits, reversed.
#[inline]
pub fn reverse_bits(code: u16, len: u16) -> u16 {
    code.reverse_bits() >> (16 - len)
}

impl HuffmanEncoder {
    pub fn new(size: usize) -> Self {
        HuffmanEncoder {
            codes: vec![Code::default(); size],
            nodes: Vec::with_capacity(size + 1),
        }
    }

    /// RFC 1951's fixed literal/length code (all 286 symbols).
    pub fn fixed_literals() -> Self {
        let mut h = Self::new(super::tokens::NUM_LITERALS);
        for (sym, c) in h.codes.iter_mut().enumerate() {
            let sym = sym as u16;
            let (bits, len) = match sym {
                0..=143 => (sym + 48, 8),
                144..=255 => (sym + 400 - 144, 9),
                256..=279 => (sym - 256, 7),
                _ => (sym + 192 - 280, 8),
            };
            *c = Code {
                code: reverse_bits(bits, len),
                len,
            };
        }
        h
    }

    /// RFC 1951's fixed distance code (5 bits each).
    pub fn fixed_offsets() -> Self {
        let mut h = Self::new(super::tokens::NUM_OFFSETS);
        for (sym, c) in h.codes.iter_mut().enumerate() {
            *c = Code {
                code: reverse_bits(sym as u16, 5),
                len: 5,
            };
        }
        h
    }

    /// Bits needed to code symbols with these frequencies (extra bits not included).
    pub fn bit_length(&self, freq: &[i32]) -> usize {
        freq.iter()
            .zip(&self.codes)
            .map(|(&f, c)| f as usize * c.len as usize)
            .sum()
    }

    /// Builds the code for `freq` (one entry per symbol), no code longer than `max_bits`.
    /// Unused symbols get length 0 (their `code` bits are left as they were).
    pub fn generate(&mut self, freq: &[i32], max_bits: usize) {
        self.nodes.clear();
        for (i, &f) in freq.iter().enumerate() {
            if f != 0 {
                self.nodes.push(Node {
                    symbol: i as u16,
                    freq: f,
                });
            } else {
                self.codes[i].len = 0;
            }
        }
        if self.nodes.len() <= 2 {
            for (i, n) in self.nodes.iter().enumerate() {
                self.codes[n.symbol as usize] = Code {
                    code: i as u16,
                    len: 1,
                };
            }
            return;
        }
        // (freq, symbol) is a total order: any sort gives Go's order.
        self.nodes.sort_unstable_by_key(|n| (n.freq, n.symbol));
        let bit_count = self.bit_counts(max_bits);
        self.assign(&bit_count);
    }

    /// How many symbols get each code length (index = length), for the sorted nodes.
    fn bit_counts(&mut self, max_bits: usize) -> [i32; MAX_BITS_LIMIT + 1] {
        assert!(max_bits < MAX_BITS_LIMIT);
        let n = self.nodes.len();
        let list = &mut self.nodes;
        list.push(Node {
            symbol: u16::MAX,
            freq: i32::MAX,
        });
        let max_bits = max_bits.min(n - 1);

        let mut levels = [Level::default(); MAX_BITS_LIMIT + 1];
        let mut leaf_counts = [[0i32; MAX_BITS_LIMIT]; MAX_BITS_LIMIT];
        for level in 1..=max_bits {
            levels[level] = Level {
                level,
                last_freq: list[1].freq,
                next_char_freq: list[2].freq,
                next_pair_freq: if level == 1 {
                    i32::MAX
                } else {
                    list[0].freq + list[1].freq
                },
                needed: 0,
            };
            leaf_counts[level][level] = 2;
        }
        levels[max_bits].needed = 2 * n as i32 - 4;

        let mut level = max_bits;
        loop {
            let l = levels[level];
            if l.next_pair_freq == i32::MAX && l.next_char_freq == i32::MAX {
                // This level has no more nodes to offer: the one above gets no pairs.
                levels[level].needed = 0;
                levels[level + 1].next_pair_freq = i32::MAX;
                level += 1;
                continue;
            }
            let prev_freq = l.last_freq;
            if l.next_char_freq < l.next_pair_freq {
                let count = leaf_counts[level][level] + 1;
                levels[level].last_freq = l.next_char_freq;
                leaf_counts[level][level] = count;
                levels[level].next_char_freq = list[count as usize].freq;
            } else {
                levels[level].last_freq = l.next_pair_freq;
                let (below, here) = leaf_counts.split_at_mut(level);
                here[0][..level].copy_from_slice(&below[level - 1][..level]);
                levels[l.level - 1].needed = 2;
            }
            levels[level].needed -= 1;
            if levels[level].needed == 0 {
                if level == max_bits {
                    break;
                }
                levels[level + 1].next_pair_freq = prev_freq + levels[level].last_freq;
                level += 1;
            } else {
                while levels[level - 1].needed > 0 {
                    level -= 1;
                }
            }
        }
        assert_eq!(
            leaf_counts[max_bits][max_bits], n as i32,
            "Huffman leaf count"
        );
        list.pop();

        let mut bit_count = [0i32; MAX_BITS_LIMIT + 1];
        let counts = &leaf_counts[max_bits];
        for (bits, level) in (1..=max_bits).rev().enumerate() {
            bit_count[bits + 1] = counts[level] - counts[level - 1];
        }
        bit_count
    }

    /// Gives the most frequent symbols the shortest codes; symbol order within a length.
    fn assign(&mut self, bit_count: &[i32; MAX_BITS_LIMIT + 1]) {
        let mut code: u16 = 0;
        let mut end = self.nodes.len();
        for (len, &count) in bit_count.iter().enumerate() {
            code <<= 1;
            if len == 0 || count == 0 {
                continue;
            }
            let chunk = &mut self.nodes[end - count as usize..end];
            chunk.sort_unstable_by_key(|n| n.symbol);
            for n in chunk.iter() {
                self.codes[n.symbol as usize] = Code {
                    code: reverse_bits(code, len as u16),
                    len: len as u16,
                };
                code = code.wrapping_add(1);
            }
            end -= count as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kraft_ok(h: &HuffmanEncoder, freq: &[i32], max_bits: u16) {
        let mut sum = 0f64;
        for (i, &f) in freq.iter().enumerate() {
            let len = h.codes[i].len;
            assert_eq!(f != 0, len != 0, "symbol {i}");
            assert!(len <= max_bits);
            if len != 0 {
                sum += 0.5f64.powi(len as i32);
            }
        }
        assert!(sum <= 1.0 + 1e-12, "Kraft sum {sum}");
    }

    #[test]
    fn codes_are_complete_and_length_limited() {
        let mut freq = vec![0i32; 286];
        // Fibonacci frequencies force long codes, so the 7- and 15-bit limits bite.
        let (mut a, mut b) = (1i32, 1i32);
        for f in freq.iter_mut().take(30) {
            *f = a;
            (a, b) = (b, a + b);
        }
        let mut h = HuffmanEncoder::new(286);
        h.generate(&freq, 15);
        kraft_ok(&h, &freq, 15);
        let mut h = HuffmanEncoder::new(19);
        h.generate(&freq[..19], 7);
        kraft_ok(&h, &freq[..19], 7);
    }
}
