//! klauspost's block writer (`huffman_bit_writer.go` in klauspost/compress 1.15): how a
//! window's tokens become a stored, fixed-Huffman or dynamic-Huffman block, and — what
//! sets it apart from Go's classic writer — when it keeps the previous dynamic table.
//!
//! A block that does not end the stream (no sync) is written *without* its end-of-block
//! code and with all 286/30 code lengths declared, so the next window can continue the
//! same block with the same table when that costs fewer bits than a new header (decided
//! from the token histograms and the `estimated_bits` entropy guess, penalised by
//! `log_new_table_penalty`). The end-of-block code is written only when the block ends:
//! a new table, a stored or fixed block, a sync flush or the end. Huffman-only windows
//! (`write_block_huff`) keep a literal-only table the same way. Which choice is made at
//! each step is visible in the output, so every comparison is the original's, in its
//! order, with its `<` vs `<=`.
//!
//! Bits are packed LSB first into `out`; how the original buffers them does not change
//! the bytes, so this writer simply appends whole bytes as they fill.

use super::super::deflate::bits::{self, BAD_CODE, CODEGEN_ORDER, run_length_code};
use super::super::deflate::codes::{
    LENGTH_BASE, LENGTH_EXTRA_BITS, OFFSET_BASE, OFFSET_EXTRA_BITS, length_code,
};
use super::super::deflate::tokens::{
    END_BLOCK, LITERAL_COUNT, MAX_STORE_BLOCK, OFFSET_CODE_COUNT, Tokens, ocode, xlength, xoffset,
};
use super::super::goflate::huffman::HuffmanEncoder;

const CODEGEN_CODE_COUNT: usize = 19;
const MAX_PREDEFINED_TOKENS: usize = 250;
const EOB: usize = END_BLOCK as usize;

pub struct BitWriter {
    pub out: Vec<u8>,
    bits: u64,
    nbits: u32,
    last_huffman: bool,
    literal: HuffmanEncoder,
    tmp_literal: HuffmanEncoder,
    offset: HuffmanEncoder,
    codegen_enc: HuffmanEncoder,
    fixed_literal: HuffmanEncoder,
    fixed_offset: HuffmanEncoder,
    /// The offset table of Huffman-only blocks: one 1-bit code for distance 0.
    huff_offset: HuffmanEncoder,
    /// Bits of the open dynamic block's header; 0 when no block is open.
    last_header: i32,
    pub log_new_table_penalty: u32,
    literal_freq: [i32; 257 + 32],
    offset_freq: [i32; 32],
    codegen_freq: [i32; CODEGEN_CODE_COUNT],
    codegen: [u8; LITERAL_COUNT + OFFSET_CODE_COUNT + 1],
}

fn storable(input: Option<&[u8]>) -> Option<i32> {
    match input {
        Some(b) if b.len() <= MAX_STORE_BLOCK => Some((b.len() as i32 + 5) * 8),
        _ => None,
    }
}

fn can_reuse_bits(h: &HuffmanEncoder, freq: &[i32]) -> i32 {
    let mut total = 0i32;
    for (i, &f) in freq.iter().enumerate() {
        if f != 0 {
            let len = h.codes[i].len;
            if len == 0 {
                return i32::MAX;
            }
            total += f * len as i32;
        }
    }
    total
}

fn bit_length(h: &HuffmanEncoder, freq: &[i32]) -> i32 {
    h.bit_length(&freq[..freq.len().min(h.codes.len())]) as i32
}

impl BitWriter {
    pub fn new(log_new_table_penalty: u32) -> BitWriter {
        let mut huff_offset = HuffmanEncoder::new(OFFSET_CODE_COUNT);
        let mut f = [0i32; OFFSET_CODE_COUNT];
        f[0] = 1;
        huff_offset.generate(&f, 15);
        BitWriter {
            out: Vec::new(),
            bits: 0,
            nbits: 0,
            last_huffman: false,
            literal: HuffmanEncoder::new(LITERAL_COUNT),
            tmp_literal: HuffmanEncoder::new(LITERAL_COUNT),
            offset: HuffmanEncoder::new(OFFSET_CODE_COUNT),
            codegen_enc: HuffmanEncoder::new(CODEGEN_CODE_COUNT),
            fixed_literal: HuffmanEncoder::fixed_literals(),
            fixed_offset: HuffmanEncoder::fixed_offsets(),
            huff_offset,
            last_header: 0,
            log_new_table_penalty,
            literal_freq: [0; 289],
            offset_freq: [0; 32],
            codegen_freq: [0; CODEGEN_CODE_COUNT],
            codegen: [0; LITERAL_COUNT + OFFSET_CODE_COUNT + 1],
        }
    }

    #[inline]
    fn write_bits(&mut self, b: u64, nb: u32) {
        bits::put(&mut self.bits, &mut self.nbits, &mut self.out, b, nb);
    }

    #[inline]
    fn write_code(&mut self, code: u16, len: u16) {
        self.write_bits(code as u64, len as u32);
    }

    fn write_eob(&mut self) {
        let c = self.literal.codes[EOB];
        self.write_code(c.code, c.len);
    }

    /// Ends an open block, then pads to a byte boundary and hands out every bit.
    pub fn flush(&mut self) {
        if self.last_header > 0 {
            self.write_eob();
            self.last_header = 0;
        }
        bits::pad(&mut self.bits, &mut self.nbits, &mut self.out);
    }

    fn write_bytes(&mut self, bytes: &[u8]) {
        debug_assert_eq!(self.nbits % 8, 0);
        bits::pad(&mut self.bits, &mut self.nbits, &mut self.out);
        self.out.extend_from_slice(bytes);
    }

    fn generate_codegen(&mut self, num_literals: usize, num_offsets: usize, huff_offsets: bool) {
        self.codegen_freq = [0; CODEGEN_CODE_COUNT];
        let offsets = if huff_offsets {
            &self.huff_offset
        } else {
            &self.offset
        };
        for i in 0..num_literals {
            self.codegen[i] = self.literal.codes[i].len as u8;
        }
        for i in 0..num_offsets {
            self.codegen[num_literals + i] = offsets.codes[i].len as u8;
        }
        self.codegen[num_literals + num_offsets] = BAD_CODE;
        run_length_code(&mut self.codegen, &mut self.codegen_freq);
    }

    fn codegens(&self) -> usize {
        let mut n = CODEGEN_CODE_COUNT;
        while n > 4 && self.codegen_freq[CODEGEN_ORDER[n - 1]] == 0 {
            n -= 1;
        }
        n
    }

    fn header_size(&self) -> (i32, usize) {
        let n = self.codegens();
        let size = 3
            + 5
            + 5
            + 4
            + 3 * n as i32
            + bit_length(&self.codegen_enc, &self.codegen_freq)
            + self.codegen_freq[16] * 2
            + self.codegen_freq[17] * 3
            + self.codegen_freq[18] * 7;
        (size, n)
    }

    fn dynamic_size(&self, extra_bits: i32) -> (i32, usize) {
        let (header, n) = self.header_size();
        let size = header
            + bit_length(&self.literal, &self.literal_freq)
            + bit_length(&self.offset, &self.offset_freq)
            + extra_bits;
        (size, n)
    }

    fn extra_bit_size(&self) -> i32 {
        let mut total = 0;
        for (i, &n) in self.literal_freq[257..LITERAL_COUNT].iter().enumerate() {
            total += n * LENGTH_EXTRA_BITS[i & 31] as i32;
        }
        for (i, &n) in self.offset_freq[..OFFSET_CODE_COUNT].iter().enumerate() {
            total += n * OFFSET_EXTRA_BITS[i & 31] as i32;
        }
        total
    }

    fn fixed_size(&self, extra_bits: i32) -> i32 {
        3 + bit_length(&self.fixed_literal, &self.literal_freq)
            + bit_length(&self.fixed_offset, &self.offset_freq)
            + extra_bits
    }

    fn write_dynamic_header(
        &mut self,
        num_literals: usize,
        num_offsets: usize,
        num_codegens: usize,
        eof: bool,
    ) {
        let (mut bits, mut nbits, out) = (self.bits, self.nbits, &mut self.out);
        let codes = &self.codegen_enc.codes;
        bits::dynamic_header(
            |v, n| bits::put(&mut bits, &mut nbits, out, v, n),
            |sym| (codes[sym].code as u64, codes[sym].len as u32),
            &self.codegen,
            (num_literals, num_offsets, num_codegens),
            eof,
        );
        (self.bits, self.nbits) = (bits, nbits);
    }

    /// A stored block header of `length` bytes (the bytes follow with `write_bytes`);
    /// an empty final one is written as an empty fixed block, as the original does.
    pub fn write_stored_header(&mut self, length: usize, eof: bool) {
        if self.last_header > 0 {
            self.write_eob();
            self.last_header = 0;
        }
        if length == 0 && eof {
            self.write_fixed_header(eof);
            self.write_bits(0, 7);
            self.flush();
            return;
        }
        self.write_bits(eof as u64, 3);
        self.flush();
        self.write_bits(length as u64, 16);
        self.write_bits((!(length as u16)) as u64, 16);
    }

    pub fn write_stored(&mut self, input: &[u8], eof: bool) {
        self.write_stored_header(input.len(), eof);
        self.write_bytes(input);
    }

    fn write_fixed_header(&mut self, eof: bool) {
        if self.last_header > 0 {
            self.write_eob();
            self.last_header = 0;
        }
        self.write_bits(if eof { 3 } else { 2 }, 3);
    }

    fn index_tokens(&mut self, t: &Tokens, filled: bool) -> (usize, usize) {
        for (d, &s) in self.literal_freq[..256].iter_mut().zip(&t.lit_hist) {
            *d = s as i32;
        }
        for (d, &s) in self.literal_freq[256..].iter_mut().zip(&t.extra_hist) {
            *d = s as i32;
        }
        for (d, &s) in self.offset_freq.iter_mut().zip(&t.off_hist) {
            *d = s as i32;
        }
        if t.n == 0 {
            return (0, 0);
        }
        if filled {
            return (LITERAL_COUNT, OFFSET_CODE_COUNT);
        }
        let mut num_literals = self.literal_freq.len();
        while self.literal_freq[num_literals - 1] == 0 {
            num_literals -= 1;
        }
        let mut num_offsets = self.offset_freq.len();
        while num_offsets > 0 && self.offset_freq[num_offsets - 1] == 0 {
            num_offsets -= 1;
        }
        if num_offsets == 0 {
            self.offset_freq[0] = 1;
            num_offsets = 1;
        }
        (num_literals, num_offsets)
    }

    fn can_reuse(&self, t: &Tokens) -> bool {
        let zero = |h: &HuffmanEncoder, i: usize| h.codes[i].len == 0;
        for (i, &v) in t.off_hist[..OFFSET_CODE_COUNT].iter().enumerate() {
            if v != 0 && zero(&self.offset, i) {
                return false;
            }
        }
        for (i, &v) in t.extra_hist[..LITERAL_COUNT - 256].iter().enumerate() {
            if v != 0 && zero(&self.literal, 256 + i) {
                return false;
            }
        }
        for (i, &v) in t.lit_hist.iter().enumerate() {
            if v != 0 && zero(&self.literal, i) {
                return false;
            }
        }
        true
    }

    fn generate(&mut self) {
        self.literal
            .generate(&self.literal_freq[..LITERAL_COUNT], 15);
        self.offset
            .generate(&self.offset_freq[..OFFSET_CODE_COUNT], 15);
    }

    fn write_fixed_block(&mut self, tokens: &mut Tokens, eof: bool, sync: bool) {
        self.write_fixed_header(eof);
        if !sync {
            tokens.add_eob();
        }
        let (lit, off) = (
            std::mem::replace(&mut self.fixed_literal, HuffmanEncoder::new(0)),
            std::mem::replace(&mut self.fixed_offset, HuffmanEncoder::new(0)),
        );
        self.write_tokens(tokens.slice(), &lit, &off);
        self.fixed_literal = lit;
        self.fixed_offset = off;
    }

    /// A window's tokens as (part of) a dynamic block, or whatever is smaller.
    pub fn write_block_dynamic(
        &mut self,
        tokens: &mut Tokens,
        eof: bool,
        input: Option<&[u8]>,
        sync: bool,
    ) {
        let sync = sync || eof;
        if sync {
            tokens.add_eob();
        }
        if (self.last_huffman || eof) && self.last_header > 0 {
            self.write_eob();
            self.last_header = 0;
            self.last_huffman = false;
        }
        if self.last_header > 0 && !self.can_reuse(tokens) {
            self.write_eob();
            self.last_header = 0;
        }
        let (num_literals, num_offsets) = self.index_tokens(tokens, !sync);
        let mut extra_bits = 0;
        let stored = storable(input);
        if stored.is_some() || self.last_header > 0 {
            extra_bits = self.extra_bit_size();
        }
        let fits = |size: i32| stored.is_some_and(|s| s <= size);
        let mut size;
        if self.last_header > 0 {
            let mut new_size = self.last_header + tokens.estimated_bits();
            new_size +=
                self.literal.codes[EOB].len as i32 + (new_size >> self.log_new_table_penalty);
            let reuse_size = bit_length(&self.literal, &self.literal_freq)
                + bit_length(&self.offset, &self.offset_freq)
                + extra_bits;
            if new_size < reuse_size {
                self.write_eob();
                size = new_size;
                self.last_header = 0;
            } else {
                size = reuse_size;
            }
            if tokens.n < MAX_PREDEFINED_TOKENS && self.fixed_size(extra_bits) + 7 < size {
                if fits(size) {
                    self.write_stored(input.expect("storable"), eof);
                    return;
                }
                self.write_fixed_block(tokens, eof, sync);
                return;
            }
            if fits(size) {
                self.write_stored(input.expect("storable"), eof);
                return;
            }
        }
        if self.last_header == 0 {
            self.literal_freq[EOB] = 1;
            self.generate();
            self.generate_codegen(num_literals, num_offsets, false);
            self.codegen_enc.generate(&self.codegen_freq, 7);
            let (dyn_size, num_codegens) = self.dynamic_size(extra_bits);
            size = dyn_size;
            if tokens.n < MAX_PREDEFINED_TOKENS {
                let pre_size = self.fixed_size(extra_bits);
                if pre_size <= size {
                    if fits(pre_size) {
                        self.write_stored(input.expect("storable"), eof);
                        return;
                    }
                    self.write_fixed_block(tokens, eof, sync);
                    return;
                }
            }
            if fits(size) {
                self.write_stored(input.expect("storable"), eof);
                return;
            }
            self.write_dynamic_header(num_literals, num_offsets, num_codegens, eof);
            if !sync {
                self.last_header = self.header_size().0;
            }
            self.last_huffman = false;
        }
        if sync {
            self.last_header = 0;
        }
        let (lit, off) = (
            std::mem::replace(&mut self.literal, HuffmanEncoder::new(0)),
            std::mem::replace(&mut self.offset, HuffmanEncoder::new(0)),
        );
        self.write_tokens(tokens.slice(), &lit, &off);
        self.literal = lit;
        self.offset = off;
    }

    fn write_tokens(&mut self, tokens: &[u32], lit: &HuffmanEncoder, off: &HuffmanEncoder) {
        if tokens.is_empty() {
            return;
        }
        let (tokens, defer_eob) = match tokens.split_last() {
            Some((&END_BLOCK, rest)) => (rest, true),
            _ => (tokens, false),
        };
        for &t in tokens {
            if t < 256 {
                let c = lit.codes[t as usize];
                self.write_code(c.code, c.len);
                continue;
            }
            let length = xlength(t);
            let lc = length_code(length);
            let c = lit.codes[257 + lc];
            self.write_code(c.code, c.len);
            if lc >= 8 {
                self.write_bits(
                    (length - LENGTH_BASE[lc] as u32) as u64,
                    LENGTH_EXTRA_BITS[lc] as u32,
                );
            }
            let oc = ocode(t);
            let c = off.codes[oc];
            self.write_code(c.code, c.len);
            if oc >= 4 {
                self.write_bits(
                    ((xoffset(t).wrapping_sub(OFFSET_BASE[oc])) & 0xffff) as u64,
                    OFFSET_EXTRA_BITS[oc] as u32,
                );
            }
        }
        if defer_eob {
            let c = lit.codes[EOB];
            self.write_code(c.code, c.len);
        }
    }

    /// `input` as literals only (a Huffman-only window), or stored when that is smaller
    /// or the bytes look random.
    pub fn write_block_huff(&mut self, eof: bool, input: &[u8], sync: bool) {
        self.literal_freq = [0; 289];
        if !self.last_huffman {
            self.offset_freq = [0; 32];
        }
        const NUM_LITERALS: usize = EOB + 1;
        const GUESS_HEADER_BITS: i32 = 70 * 8;
        for &b in input {
            self.literal_freq[b as usize] += 1;
        }
        let stored = storable(Some(input));
        if stored.is_some() && input.len() > 1024 {
            let mut abs = 0f64;
            let avg = input.len() as f64 / 256.0;
            let max = (input.len() * 2) as f64;
            for &v in &self.literal_freq[..256] {
                let diff = v as f64 - avg;
                abs += diff * diff;
                if abs > max {
                    break;
                }
            }
            if abs < max {
                self.write_stored(input, eof);
                return;
            }
        }
        self.literal_freq[EOB] = 1;
        self.tmp_literal
            .generate(&self.literal_freq[..NUM_LITERALS], 15);
        let mut est_bits = can_reuse_bits(&self.tmp_literal, &self.literal_freq[..NUM_LITERALS]);
        if est_bits < i32::MAX {
            est_bits += self.last_header;
            if self.last_header == 0 {
                est_bits += GUESS_HEADER_BITS;
            }
            est_bits += est_bits >> self.log_new_table_penalty;
        }
        if stored.is_some_and(|s| s <= est_bits) {
            self.write_stored(input, eof);
            return;
        }
        if self.last_header > 0 {
            let reuse_size = can_reuse_bits(&self.literal, &self.literal_freq[..256]);
            if est_bits < reuse_size {
                self.write_eob();
                self.last_header = 0;
            }
        }
        if self.last_header == 0 {
            std::mem::swap(&mut self.literal, &mut self.tmp_literal);
            self.generate_codegen(NUM_LITERALS, 1, true);
            self.codegen_enc.generate(&self.codegen_freq, 7);
            let num_codegens = self.codegens();
            self.write_dynamic_header(NUM_LITERALS, 1, num_codegens, eof);
            self.last_huffman = true;
            self.last_header = self.header_size().0;
        }
        for &b in input {
            let c = self.literal.codes[b as usize];
            self.write_code(c.code, c.len);
        }
        if eof || sync {
            self.write_eob();
            self.last_header = 0;
            self.last_huffman = false;
        }
    }
}
