//! DEFLATE block output: the bit packer and the three block writers of Go's
//! `huffman_bit_writer.go`, with its choices between stored, fixed and dynamic blocks.
//!
//! The choice rules are what make output bit-exact, so they follow Go's exactly:
//! - `write_block` (levels 2–9): dynamic if strictly smaller than fixed, stored if strictly
//!   smaller than that; extra bits counted only when the block's input is known and fits a
//!   stored block; sizes include the 3-bit header but not the stored block's padding.
//! - `write_block_dynamic` (level 1) and `write_block_huff` (Huffman-only, level 1's
//!   incompressible blocks): never fixed; stored when its size is below 17/16 of dynamic.
//! - the dynamic header's code-length code is limited to 7 bits, run-length coded with
//!   Go's greedy use of symbols 16/17/18, and trimmed to no fewer than 4 entries.
//!
//! Bits collect in a `u64` and go out as bytes to an in-memory buffer the compressor
//! drains to its writer after each block, so the bytes do not depend on buffer sizes.

use super::super::deflate::bits::{self, BAD_CODE, CODEGEN_ORDER, run_length_code};
use super::super::deflate::codes::{
    LENGTH_BASE, LENGTH_EXTRA_BITS, OFFSET_BASE, OFFSET_EXTRA_BITS, length_code, offset_code,
};
use super::huffman::{Code, HuffmanEncoder};
use super::tokens::{self, END_BLOCK, LENGTH_CODES_START, MATCH, NUM_LITERALS, NUM_OFFSETS};

const CODEGEN_COUNT: usize = 19;
const MAX_STORE_BLOCK: usize = 65535;

pub struct BitWriter {
    bits: u64,
    nbits: u32,
    /// Finished bytes not yet handed to the output writer.
    pub out: Vec<u8>,
    literal_freq: [i32; NUM_LITERALS],
    offset_freq: [i32; NUM_OFFSETS],
    codegen_freq: [i32; CODEGEN_COUNT],
    codegen: Vec<u8>,
    literal_enc: HuffmanEncoder,
    offset_enc: HuffmanEncoder,
    codegen_enc: HuffmanEncoder,
    fixed_literal: HuffmanEncoder,
    fixed_offset: HuffmanEncoder,
    /// The distance code of Huffman-only blocks: symbol 0 alone.
    huff_offset: HuffmanEncoder,
}

/// Which table a block's tokens are coded with.
#[derive(Clone, Copy, PartialEq)]
enum Table {
    Fixed,
    Dynamic,
}

impl BitWriter {
    pub fn new() -> Self {
        let mut huff_offset = HuffmanEncoder::new(NUM_OFFSETS);
        let mut one = [0i32; NUM_OFFSETS];
        one[0] = 1;
        huff_offset.generate(&one, 15);
        BitWriter {
            bits: 0,
            nbits: 0,
            out: Vec::with_capacity(1 << 17),
            literal_freq: [0; NUM_LITERALS],
            offset_freq: [0; NUM_OFFSETS],
            codegen_freq: [0; CODEGEN_COUNT],
            codegen: vec![0; NUM_LITERALS + NUM_OFFSETS + 1],
            literal_enc: HuffmanEncoder::new(NUM_LITERALS),
            offset_enc: HuffmanEncoder::new(NUM_OFFSETS),
            codegen_enc: HuffmanEncoder::new(CODEGEN_COUNT),
            fixed_literal: HuffmanEncoder::fixed_literals(),
            fixed_offset: HuffmanEncoder::fixed_offsets(),
            huff_offset,
        }
    }

    #[inline]
    fn write_bits(&mut self, value: u32, nb: u32) {
        bits::put(
            &mut self.bits,
            &mut self.nbits,
            &mut self.out,
            value as u64,
            nb,
        );
    }

    #[inline]
    fn write_code(&mut self, c: Code) {
        self.write_bits(c.code as u32, c.len as u32);
    }

    /// Pads the pending bits to a byte boundary and moves them to `out`.
    pub fn flush(&mut self) {
        bits::pad(&mut self.bits, &mut self.nbits, &mut self.out);
    }

    /// Header of a stored block of `length` bytes (the bytes follow with `write_bytes`).
    pub fn write_stored_header(&mut self, length: usize, eof: bool) {
        self.write_bits(eof as u32, 3);
        self.flush();
        self.write_bits(length as u32, 16);
        self.write_bits(!(length as u16) as u32, 16);
    }

    /// Raw bytes; only at a byte boundary (after a stored header).
    pub fn write_bytes(&mut self, data: &[u8]) {
        debug_assert_eq!(self.nbits % 8, 0);
        self.flush();
        self.out.extend_from_slice(data);
    }

    fn write_stored(&mut self, input: &[u8], eof: bool) {
        self.write_stored_header(input.len(), eof);
        self.write_bytes(input);
    }

    /// Stored size in bits, when `input` is known and fits one stored block.
    fn stored_size(input: Option<&[u8]>) -> Option<usize> {
        match input {
            Some(b) if b.len() <= MAX_STORE_BLOCK => Some((b.len() + 5) * 8),
            _ => None,
        }
    }

    /// Counts symbol frequencies of `tokens` (plus end of block) and builds both codes.
    /// Returns how many literal/length and distance code lengths the header must send.
    fn index_tokens(&mut self, tokens: &[u32]) -> (usize, usize) {
        self.literal_freq = [0; NUM_LITERALS];
        self.offset_freq = [0; NUM_OFFSETS];
        for &t in tokens {
            if t < MATCH {
                self.literal_freq[t as usize] += 1;
            } else {
                self.literal_freq[LENGTH_CODES_START + length_code(tokens::xlength(t))] += 1;
                self.offset_freq[offset_code(tokens::xoffset(t)) as usize] += 1;
            }
        }
        self.literal_freq[END_BLOCK] += 1;
        let mut num_literals = NUM_LITERALS;
        while self.literal_freq[num_literals - 1] == 0 {
            num_literals -= 1;
        }
        let mut num_offsets = NUM_OFFSETS;
        while num_offsets > 0 && self.offset_freq[num_offsets - 1] == 0 {
            num_offsets -= 1;
        }
        if num_offsets == 0 {
            // A block without matches still sends one distance code length.
            self.offset_freq[0] = 1;
            num_offsets = 1;
        }
        self.literal_enc.generate(&self.literal_freq, 15);
        self.offset_enc.generate(&self.offset_freq, 15);
        (num_literals, num_offsets)
    }

    /// Run-length codes the code lengths of both alphabets into `codegen` (symbols 0..=18,
    /// each 16/17/18 followed by its repeat count), ending with `BAD_CODE`, and counts
    /// the symbols in `codegen_freq`.
    fn generate_codegen(&mut self, num_literals: usize, num_offsets: usize, huff_only: bool) {
        self.codegen_freq = [0; CODEGEN_COUNT];
        let offsets = if huff_only {
            &self.huff_offset
        } else {
            &self.offset_enc
        };
        let cg = &mut self.codegen;
        let lengths = self.literal_enc.codes[..num_literals]
            .iter()
            .chain(&offsets.codes[..num_offsets]);
        for (slot, c) in cg.iter_mut().zip(lengths) {
            *slot = c.len as u8;
        }
        cg[num_literals + num_offsets] = BAD_CODE;

        run_length_code(cg, &mut self.codegen_freq);
    }

    /// Size in bits of a dynamic block with these codes, and how many code-length code
    /// lengths its header sends.
    fn dynamic_size(&self, huff_only: bool, extra_bits: usize) -> (usize, usize) {
        let mut num_codegens = CODEGEN_COUNT;
        while num_codegens > 4 && self.codegen_freq[CODEGEN_ORDER[num_codegens - 1]] == 0 {
            num_codegens -= 1;
        }
        let header = 3
            + 5
            + 5
            + 4
            + 3 * num_codegens
            + self.codegen_enc.bit_length(&self.codegen_freq)
            + self.codegen_freq[16] as usize * 2
            + self.codegen_freq[17] as usize * 3
            + self.codegen_freq[18] as usize * 7;
        let offsets = if huff_only {
            &self.huff_offset
        } else {
            &self.offset_enc
        };
        let size = header
            + self.literal_enc.bit_length(&self.literal_freq)
            + offsets.bit_length(&self.offset_freq)
            + extra_bits;
        (size, num_codegens)
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

    /// Go's `writeBlock`: the block of `tokens` as fixed, dynamic or stored, whichever is
    /// smallest (ties: fixed over dynamic, coded over stored). `input` is the block's
    /// uncompressed bytes when still in the window.
    pub fn write_block(&mut self, tokens: &[u32], eof: bool, input: Option<&[u8]>) {
        let (num_literals, num_offsets) = self.index_tokens(tokens);
        let stored = Self::stored_size(input);
        let mut extra_bits = 0usize;
        if stored.is_some() {
            for code in LENGTH_CODES_START + 8..num_literals {
                extra_bits += self.literal_freq[code] as usize
                    * LENGTH_EXTRA_BITS[code - LENGTH_CODES_START] as usize;
            }
            let offsets = self.offset_freq.iter().zip(&OFFSET_EXTRA_BITS);
            for (&f, &extra) in offsets.take(num_offsets).skip(4) {
                extra_bits += f as usize * extra as usize;
            }
        }
        let mut size = 3
            + self.fixed_literal.bit_length(&self.literal_freq)
            + self.fixed_offset.bit_length(&self.offset_freq)
            + extra_bits;
        let mut table = Table::Fixed;

        self.generate_codegen(num_literals, num_offsets, false);
        self.codegen_enc.generate(&self.codegen_freq, 7);
        let (dynamic, num_codegens) = self.dynamic_size(false, extra_bits);
        if dynamic < size {
            size = dynamic;
            table = Table::Dynamic;
        }
        if let (Some(ssize), Some(input)) = (stored, input)
            && ssize < size
        {
            self.write_stored(input, eof);
            return;
        }
        if table == Table::Fixed {
            self.write_bits(if eof { 3 } else { 2 }, 3);
        } else {
            self.write_dynamic_header(num_literals, num_offsets, num_codegens, eof);
        }
        self.write_tokens(tokens, table);
    }

    /// Go's `writeBlockDynamic`: dynamic, or stored when that is below 17/16 of it.
    pub fn write_block_dynamic(&mut self, tokens: &[u32], eof: bool, input: &[u8]) {
        let (num_literals, num_offsets) = self.index_tokens(tokens);
        self.generate_codegen(num_literals, num_offsets, false);
        self.codegen_enc.generate(&self.codegen_freq, 7);
        let (size, num_codegens) = self.dynamic_size(false, 0);
        if let Some(ssize) = Self::stored_size(Some(input))
            && ssize < size + (size >> 4)
        {
            self.write_stored(input, eof);
            return;
        }
        self.write_dynamic_header(num_literals, num_offsets, num_codegens, eof);
        self.write_tokens(tokens, Table::Dynamic);
    }

    /// Go's `writeBlockHuff`: `input` as literals only, with a code built from its byte
    /// histogram; stored when that is below 17/16 of the coded size.
    pub fn write_block_huff(&mut self, eof: bool, input: &[u8]) {
        self.literal_freq = [0; NUM_LITERALS];
        histogram(input, &mut self.literal_freq);
        self.literal_freq[END_BLOCK] = 1;
        // Go sets only entry 0 here and leaves the rest as the last block left them;
        // only entry 0 has a code length in the Huffman-only distance code, so the
        // rest never counts.
        self.offset_freq[0] = 1;
        self.literal_enc.generate(&self.literal_freq, 15);
        self.generate_codegen(END_BLOCK + 1, 1, true);
        self.codegen_enc.generate(&self.codegen_freq, 7);
        let (size, num_codegens) = self.dynamic_size(true, 0);
        if let Some(ssize) = Self::stored_size(Some(input))
            && ssize < size + (size >> 4)
        {
            self.write_stored(input, eof);
            return;
        }
        self.write_dynamic_header(END_BLOCK + 1, 1, num_codegens, eof);
        let mut codes = [Code::default(); 256];
        codes.copy_from_slice(&self.literal_enc.codes[..256]);
        self.out.reserve(input.len() + 16);
        for &b in input {
            self.write_code(codes[b as usize]);
        }
        self.write_code(self.literal_enc.codes[END_BLOCK]);
    }

    fn write_tokens(&mut self, tokens: &[u32], table: Table) {
        let (lit, off) = match table {
            Table::Fixed => (&self.fixed_literal.codes, &self.fixed_offset.codes),
            Table::Dynamic => (&self.literal_enc.codes, &self.offset_enc.codes),
        };
        // Local copies keep the bit buffer in registers while the tables are borrowed.
        let mut bits = self.bits;
        let mut nbits = self.nbits;
        let out = &mut self.out;
        let mut put = |value: u64, nb: u32| bits::put(&mut bits, &mut nbits, out, value, nb);
        for &t in tokens {
            if t < MATCH {
                let c = lit[t as usize];
                put(c.code as u64, c.len as u32);
                continue;
            }
            let xlen = tokens::xlength(t);
            let lcode = length_code(xlen);
            let c = lit[LENGTH_CODES_START + lcode];
            put(c.code as u64, c.len as u32);
            let extra = LENGTH_EXTRA_BITS[lcode] as u32;
            if extra > 0 {
                put((xlen - LENGTH_BASE[lcode] as u32) as u64, extra);
            }
            let xoff = tokens::xoffset(t);
            let ocode = offset_code(xoff) as usize;
            let c = off[ocode];
            put(c.code as u64, c.len as u32);
            let extra = OFFSET_EXTRA_BITS[ocode] as u32;
            if extra > 0 {
                put((xoff - OFFSET_BASE[ocode]) as u64, extra);
            }
        }
        let c = lit[END_BLOCK];
        put(c.code as u64, c.len as u32);
        self.bits = bits;
        self.nbits = nbits;
    }
}

fn histogram(input: &[u8], freq: &mut [i32; NUM_LITERALS]) {
    for &b in input {
        freq[b as usize] += 1;
    }
}
