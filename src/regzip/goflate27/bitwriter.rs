//! Go 1.27's block writer: chooses per block between stored, fixed-Huffman, a new
//! dynamic table, or continuing the previous dynamic table (a block whose table is
//! reused has no header of its own: the previous block is simply not ended), and
//! writes it. `write_block_huff` is the literal-only path (Huffman-only level and
//! blocks with almost no matches).
//!
//! The bit order is RFC 1951's; Go's 48-bit accumulator and 246-byte staging buffer
//! only change when bytes reach the writer, not which bytes, so output goes straight
//! into `out` here. What has to match Go exactly is every size comparison, including
//! the reuse estimate (`Tokens::estimated_bits` plus a penalty of
//! 1/2^`log_new_table_penalty`) and the stale table entries Go leaves in place.

use super::super::deflate::bits::{self, BAD_CODE, CODEGEN_ORDER, run_length_code};
use super::super::deflate::codes::{
    LENGTH_BASE, LENGTH_EXTRA_BITS, OFFSET_BASE, OFFSET_EXTRA_BITS, length_code,
};
use super::super::deflate::tokens::{
    END_BLOCK, LITERAL_COUNT, OFFSET_CODE_COUNT, OFFSET_MASK, Tokens,
};
use super::huffman::{
    HuffmanEncoder, code_bits, code_len, fixed_literal, fixed_offset, huff_offset,
};

const LENGTH_CODES_START: usize = 257;
const CODEGEN_CODE_COUNT: usize = 19;
const MAX_PREDEFINED_TOKENS: usize = 250;
const MAX_STORE_BLOCK_SIZE: usize = 65535;

/// Which literal table a block is written with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Table {
    Fixed,
    Dynamic,
}

pub(super) struct BitWriter {
    bits: u64,
    nbits: u32,
    /// Compressed bytes not yet handed on.
    pub out: Vec<u8>,
    wrote_huffman: bool,
    literal_encoding: HuffmanEncoder,
    tmp_lit_encoding: HuffmanEncoder,
    offset_encoding: HuffmanEncoder,
    codegen_encoding: HuffmanEncoder,
    /// Header size in bits of the open dynamic block (0: no block open).
    prev_header: i32,
    pub log_new_table_penalty: u32,
    literal_freq: [u16; LENGTH_CODES_START + 32],
    offset_freq: [u16; 32],
    codegen_freq: [u16; CODEGEN_CODE_COUNT],
    codegen: [u8; LITERAL_COUNT + OFFSET_CODE_COUNT + 1],
}

impl BitWriter {
    pub fn new() -> BitWriter {
        BitWriter {
            bits: 0,
            nbits: 0,
            out: Vec::new(),
            wrote_huffman: false,
            literal_encoding: HuffmanEncoder::new(LITERAL_COUNT),
            tmp_lit_encoding: HuffmanEncoder::new(LITERAL_COUNT),
            offset_encoding: HuffmanEncoder::new(OFFSET_CODE_COUNT),
            codegen_encoding: HuffmanEncoder::new(CODEGEN_CODE_COUNT),
            prev_header: 0,
            log_new_table_penalty: 0,
            literal_freq: [0; LENGTH_CODES_START + 32],
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
    fn write_code(&mut self, c: u32) {
        self.write_bits(code_bits(c), code_len(c));
    }

    fn write_eob(&mut self) {
        let c = self.literal_encoding.codes[END_BLOCK as usize];
        self.write_code(c);
    }

    /// Ends an open dynamic block, then pads to a byte boundary.
    pub fn flush(&mut self) {
        if self.prev_header > 0 {
            self.write_eob();
            self.prev_header = 0;
        }
        bits::pad(&mut self.bits, &mut self.nbits, &mut self.out);
    }

    fn write_bytes(&mut self, bytes: &[u8]) {
        debug_assert_eq!(self.nbits & 7, 0);
        bits::pad(&mut self.bits, &mut self.nbits, &mut self.out);
        self.out.extend_from_slice(bytes);
    }

    /// The code lengths of both tables, run-length coded (RFC 1951 3.2.7), into
    /// `codegen` (ended by `BAD_CODE`) with their frequencies in `codegen_freq`.
    fn generate_codegen(&mut self, num_literals: usize, num_offsets: usize, literal_only: bool) {
        let lit = &self.literal_encoding;
        let off = if literal_only {
            huff_offset()
        } else {
            &self.offset_encoding
        };
        self.codegen_freq = [0; CODEGEN_CODE_COUNT];
        let cg = &mut self.codegen;
        for (c, &code) in cg[..num_literals].iter_mut().zip(&lit.codes) {
            *c = code_len(code) as u8;
        }
        let offsets = &mut cg[num_literals..num_literals + num_offsets];
        for (c, &code) in offsets.iter_mut().zip(&off.codes) {
            *c = code_len(code) as u8;
        }
        cg[num_literals + num_offsets] = BAD_CODE;
        run_length_code(cg, &mut self.codegen_freq);
        let freq = self.codegen_freq;
        self.codegen_encoding.generate(&freq, 7);
    }

    fn num_codegens(&self) -> usize {
        let mut n = CODEGEN_CODE_COUNT;
        while n > 4 && self.codegen_freq[CODEGEN_ORDER[n - 1]] == 0 {
            n -= 1;
        }
        n
    }

    fn header_size(&self) -> (i32, usize) {
        let n = self.num_codegens();
        let f = &self.codegen_freq;
        let size = 3
            + 5
            + 5
            + 4
            + 3 * n as i32
            + self.codegen_encoding.bit_length(f)
            + f[16] as i32 * 2
            + f[17] as i32 * 3
            + f[18] as i32 * 7;
        (size, n)
    }

    fn dynamic_size(&self, extra_bits: i32) -> (i32, usize) {
        let (header, n) = self.header_size();
        let size = header
            + self.literal_encoding.bit_length(&self.literal_freq)
            + self.offset_encoding.bit_length(&self.offset_freq)
            + extra_bits;
        (size, n)
    }

    fn extra_bit_size(&self) -> i32 {
        let mut total = 0i32;
        for (i, &n) in self.literal_freq[257..LITERAL_COUNT].iter().enumerate() {
            total += n as i32 * LENGTH_EXTRA_BITS[i & 31] as i32;
        }
        for (i, &n) in self.offset_freq[..OFFSET_CODE_COUNT].iter().enumerate() {
            total += n as i32 * OFFSET_EXTRA_BITS[i & 31] as i32;
        }
        total
    }

    fn fixed_size(&self, extra_bits: i32) -> i32 {
        3 + fixed_literal().bit_length(&self.literal_freq)
            + fixed_offset().bit_length(&self.offset_freq)
            + extra_bits
    }

    fn stored_size(input: Option<&[u8]>) -> (i32, bool) {
        match input {
            Some(b) if b.len() <= MAX_STORE_BLOCK_SIZE => ((b.len() as i32 + 5) * 8, true),
            _ => (0, false),
        }
    }

    fn write_dynamic_header(
        &mut self,
        num_literals: usize,
        num_offsets: usize,
        num_codegens: usize,
        eof: bool,
    ) {
        let (mut bits, mut nbits, out) = (self.bits, self.nbits, &mut self.out);
        let codes = &self.codegen_encoding.codes;
        bits::dynamic_header(
            |v, n| bits::put(&mut bits, &mut nbits, out, v, n),
            |sym| (code_bits(codes[sym]), code_len(codes[sym])),
            &self.codegen,
            (num_literals, num_offsets, num_codegens),
            eof,
        );
        (self.bits, self.nbits) = (bits, nbits);
    }

    /// A stored block's header; an empty final one is written as a fixed block
    /// holding only the end of block (10 bits instead of 5 bytes).
    pub fn write_stored_header(&mut self, length: usize, eof: bool) {
        if self.prev_header > 0 {
            self.write_eob();
            self.prev_header = 0;
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

    fn write_fixed_header(&mut self, eof: bool) {
        if self.prev_header > 0 {
            self.write_eob();
            self.prev_header = 0;
        }
        self.write_bits(if eof { 3 } else { 2 }, 3);
    }

    /// A stored block of `buf` (not final).
    pub fn write_stored(&mut self, buf: &[u8]) {
        self.write_stored_header(buf.len(), false);
        self.write_bytes(buf);
    }

    fn can_reuse(&self, t: &Tokens) -> bool {
        let off = &self.offset_encoding.codes;
        if t.off_hist[..OFFSET_CODE_COUNT]
            .iter()
            .zip(off)
            .any(|(&v, &c)| v != 0 && c == 0)
        {
            return false;
        }
        let lit = &self.literal_encoding.codes;
        if t.extra_hist[..LITERAL_COUNT - 256]
            .iter()
            .zip(&lit[256..LITERAL_COUNT])
            .any(|(&v, &c)| v != 0 && c == 0)
        {
            return false;
        }
        !t.lit_hist
            .iter()
            .zip(&lit[..256])
            .any(|(&v, &c)| v != 0 && c == 0)
    }

    /// Copies the block's histograms in; returns how many literal/length and
    /// distance codes the header must list.
    fn index_tokens(&mut self, t: &Tokens) -> (usize, usize) {
        self.literal_freq[..256].copy_from_slice(&t.lit_hist);
        self.literal_freq[256..288].copy_from_slice(&t.extra_hist);
        self.offset_freq = t.off_hist;
        if t.n == 0 {
            return (0, 0);
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

    fn generate(&mut self) {
        self.literal_encoding
            .generate(&self.literal_freq[..LITERAL_COUNT], 15);
        self.offset_encoding
            .generate(&self.offset_freq[..OFFSET_CODE_COUNT], 15);
    }

    fn write_stored_block(&mut self, input: &[u8], eof: bool) {
        self.write_stored_header(input.len(), eof);
        self.write_bytes(input);
    }

    /// Writes a block of `tokens` (Go's `writeBlockDynamic`): a new dynamic table,
    /// the open one continued, fixed codes or stored bytes, whichever Go's size
    /// estimates pick. `input` is the block's raw bytes when it may be stored.
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
        } else {
            tokens.extra_hist[0] = 1;
        }
        if (self.wrote_huffman || eof) && self.prev_header > 0 {
            self.write_eob();
            self.prev_header = 0;
            self.wrote_huffman = false;
        }
        if self.prev_header > 0 && !self.can_reuse(tokens) {
            self.write_eob();
            self.prev_header = 0;
        }
        let (num_literals, num_offsets) = self.index_tokens(tokens);
        let mut extra_bits = 0;
        let (ssize, storable) = Self::stored_size(input);
        if storable || self.prev_header > 0 {
            extra_bits = self.extra_bit_size();
        }
        let mut size;
        if self.prev_header > 0 {
            let mut new_size = self.prev_header + tokens.estimated_bits();
            new_size += code_len(self.literal_encoding.codes[END_BLOCK as usize]) as i32
                + (new_size >> self.log_new_table_penalty);
            let reuse_size = self.literal_encoding.bit_length(&self.literal_freq)
                + self.offset_encoding.bit_length(&self.offset_freq)
                + extra_bits;
            if new_size < reuse_size {
                self.write_eob();
                size = new_size;
                self.prev_header = 0;
            } else {
                size = reuse_size;
            }
            if tokens.n < MAX_PREDEFINED_TOKENS && self.fixed_size(extra_bits) + 7 < size {
                if storable && ssize <= size {
                    self.write_stored_block(input.unwrap(), eof);
                    return;
                }
                self.write_fixed_header(eof);
                if !sync {
                    tokens.add_eob();
                }
                self.write_tokens(tokens, Table::Fixed);
                return;
            }
            if storable && ssize <= size {
                self.write_stored_block(input.unwrap(), eof);
                return;
            }
        }
        if self.prev_header == 0 {
            self.literal_freq[END_BLOCK as usize] = 1;
            self.generate();
            self.generate_codegen(num_literals, num_offsets, false);
            let num_codegens;
            (size, num_codegens) = self.dynamic_size(extra_bits);
            if tokens.n < MAX_PREDEFINED_TOKENS {
                let pre_size = self.fixed_size(extra_bits);
                if pre_size <= size {
                    if storable && ssize <= pre_size {
                        self.write_stored_block(input.unwrap(), eof);
                        return;
                    }
                    self.write_fixed_header(eof);
                    if !sync {
                        tokens.add_eob();
                    }
                    self.write_tokens(tokens, Table::Fixed);
                    return;
                }
            }
            if storable && ssize <= size {
                self.write_stored_block(input.unwrap(), eof);
                return;
            }
            self.write_dynamic_header(num_literals, num_offsets, num_codegens, eof);
            if !sync {
                self.prev_header = self.header_size().0;
            }
            self.wrote_huffman = false;
        }
        if sync {
            self.prev_header = 0;
        }
        self.write_tokens(tokens, Table::Dynamic);
    }

    /// The block's tokens with the chosen table; a trailing end-of-block token is
    /// written last with the same table.
    fn write_tokens(&mut self, tokens: &Tokens, table: Table) {
        let (lit, off): (&HuffmanEncoder, &HuffmanEncoder) = match table {
            Table::Fixed => (fixed_literal(), fixed_offset()),
            Table::Dynamic => (&self.literal_encoding, &self.offset_encoding),
        };
        let mut toks = &tokens.tokens[..tokens.n];
        if toks.is_empty() {
            return;
        }
        let defer_eob = *toks.last().unwrap() == END_BLOCK;
        if defer_eob {
            toks = &toks[..toks.len() - 1];
        }
        let (mut bits, mut nbits) = (self.bits, self.nbits);
        let out = &mut self.out;
        let mut put = |v: u64, n: u32| bits::put(&mut bits, &mut nbits, out, v, n);
        for &t in toks {
            if t < 256 {
                let c = lit.codes[t as usize];
                put(code_bits(c), code_len(c));
                continue;
            }
            let length = (t >> 22) as u8;
            let len_code = length_code(length as u32);
            let c = lit.codes[LENGTH_CODES_START + len_code];
            put(code_bits(c), code_len(c));
            if len_code >= 8 {
                put(
                    (length - LENGTH_BASE[len_code]) as u64,
                    LENGTH_EXTRA_BITS[len_code] as u32,
                );
            }
            let offset = t & OFFSET_MASK;
            let off_code = ((offset >> 16) & 31) as usize;
            let c = off.codes[off_code];
            put(code_bits(c), code_len(c));
            if off_code >= 4 {
                put(
                    ((offset - OFFSET_BASE[off_code]) & 0xffff) as u64,
                    OFFSET_EXTRA_BITS[off_code] as u32,
                );
            }
        }
        let eob = lit.codes[END_BLOCK as usize];
        self.bits = bits;
        self.nbits = nbits;
        if defer_eob {
            self.write_code(eob);
        }
    }

    /// A literal-only block of `input` (Go's `writeBlockHuff`): stored when the bytes
    /// look incompressible or the table would not pay, else a new literal table or
    /// the open one continued.
    pub fn write_block_huff(&mut self, eof: bool, input: &[u8], sync: bool) {
        self.literal_freq = [0; LENGTH_CODES_START + 32];
        if !self.wrote_huffman {
            self.offset_freq = [0; 32];
        }
        const NUM_LITERALS: usize = END_BLOCK as usize + 1;
        const GUESS_HEADER_SIZE_BITS: i32 = 70 * 8;
        for &b in input {
            self.literal_freq[b as usize] = self.literal_freq[b as usize].wrapping_add(1);
        }
        let (ssize, storable) = Self::stored_size(Some(input));
        if storable && input.len() > 1024 {
            let mut abs = 0f64;
            let avg = input.len() as f64 / 256.0;
            let max = (input.len() * 2) as f64;
            for &v in &self.literal_freq[..256] {
                let diff = v as f64 - avg;
                abs += diff * diff;
                if abs >= max {
                    break;
                }
            }
            if abs < max {
                self.write_stored_block(input, eof);
                return;
            }
        }
        self.literal_freq[END_BLOCK as usize] = 1;
        self.tmp_lit_encoding
            .generate(&self.literal_freq[..NUM_LITERALS], 15);
        let mut est_bits = self
            .tmp_lit_encoding
            .can_encode_len(&self.literal_freq[..NUM_LITERALS]);
        if est_bits < i32::MAX {
            est_bits += self.prev_header;
            if self.prev_header == 0 {
                est_bits += GUESS_HEADER_SIZE_BITS;
            }
            est_bits += est_bits >> self.log_new_table_penalty;
        }
        if storable && ssize <= est_bits {
            self.write_stored_block(input, eof);
            return;
        }
        if self.prev_header > 0 {
            let reuse = self
                .literal_encoding
                .can_encode_len(&self.literal_freq[..256]);
            if est_bits < reuse {
                self.write_eob();
                self.prev_header = 0;
            }
        }
        if self.prev_header == 0 {
            std::mem::swap(&mut self.literal_encoding, &mut self.tmp_lit_encoding);
            self.generate_codegen(NUM_LITERALS, 1, true);
            let n = self.num_codegens();
            self.write_dynamic_header(NUM_LITERALS, 1, n, eof);
            self.wrote_huffman = true;
            self.prev_header = self.header_size().0;
        }
        let (mut bits, mut nbits) = (self.bits, self.nbits);
        let codes = &self.literal_encoding.codes;
        let out = &mut self.out;
        for &b in input {
            let c = codes[b as usize];
            bits::put(&mut bits, &mut nbits, out, code_bits(c), code_len(c));
        }
        self.bits = bits;
        self.nbits = nbits;
        if eof || sync {
            self.write_eob();
            self.prev_header = 0;
            self.wrote_huffman = false;
        }
    }
}
