//! Go 1.27's levels 7–9: hash chains over a 64 KiB window with lazy matching (a match
//! is held back one byte to see whether the next position starts a longer one), a
//! look at the end of each match for a better one two bytes on, and skipping ahead
//! through long literal runs. Level 9 also weighs each candidate by an estimate of
//! its bits against coding the bytes as literals, from a literal table built over
//! the next 32 K bytes of input. A block is cut every 32 768 tokens.
//!
//! The window is filled and processed only when full (or on `Flush`/`Close`), so
//! the output does not depend on how the input is split into writes.

use super::super::deflate::codes::{
    LENGTH_EXTRA_BITS, OFFSET_EXTRA_BITS, length_code, offset_code,
};
use super::super::deflate::tokens::Tokens;
use super::bitwriter::BitWriter;
use super::huffman::HuffmanEncoder;

const WINDOW_SIZE: i32 = 1 << 15;
const WINDOW_MASK: i32 = WINDOW_SIZE - 1;
const MIN_MATCH_LENGTH: i32 = 4;
const MAX_MATCH_LENGTH: i32 = 258;
const MAX_FLATE_BLOCK_TOKENS: usize = 1 << 15;
const HASH_BITS: u32 = 17;
const HASH_SIZE: usize = 1 << HASH_BITS;
const HASH_MASK: u32 = (1 << HASH_BITS) - 1;
const MAX_HASH_OFFSET: i32 = 1 << 28;

#[inline(always)]
fn hash4(b: &[u8], i: i32) -> u32 {
    let u = u32::from_le_bytes(b[i as usize..i as usize + 4].try_into().unwrap());
    u.wrapping_mul(2_654_435_761) >> (32 - HASH_BITS)
}

pub(super) struct Lazy {
    lazy: i32,
    nice: i32,
    chain: i32,
    /// Literal code lengths for level 9's match gain estimate.
    h: Option<HuffmanEncoder>,
    window: Vec<u8>,
    window_end: i32,
    block_start: i32,
    sync: bool,
    byte_available: bool,
    length: i32,
    offset: i32,
    max_insert_index: i32,
    chain_head: i32,
    hash_offset: i32,
    literal_counter: u16,
    index: i32,
    hash_head: Vec<i32>,
    hash_prev: Vec<i32>,
}

impl Lazy {
    pub fn new(level: i32) -> Lazy {
        // Go's table also has a "good" length per level, which this matcher never reads.
        let (lazy, nice, chain) = match level {
            7 => (12, 16, 24),
            8 => (30, 40, 64),
            _ => (258, 258, 1024),
        };
        Lazy {
            lazy,
            nice,
            chain,
            h: None,
            window: vec![0; 2 * WINDOW_SIZE as usize],
            window_end: 0,
            block_start: 0,
            sync: false,
            byte_available: false,
            length: MIN_MATCH_LENGTH - 1,
            offset: 0,
            max_insert_index: 0,
            chain_head: -1,
            hash_offset: 1,
            literal_counter: 0,
            index: 0,
            hash_head: vec![0; HASH_SIZE],
            hash_prev: vec![0; WINDOW_SIZE as usize],
        }
    }

    /// Go's `Write` for these levels.
    pub fn write(&mut self, mut b: &[u8], tok: &mut Tokens, w: &mut BitWriter) {
        while !b.is_empty() {
            if self.window_end as usize == self.window.len() {
                self.deflate(tok, w);
            }
            let n = self.fill(b);
            b = &b[n..];
        }
    }

    /// Everything buffered is coded and written (Go's step with `sync` set).
    pub fn sync(&mut self, tok: &mut Tokens, w: &mut BitWriter) {
        self.sync = true;
        self.deflate(tok, w);
        self.sync = false;
    }

    fn fill(&mut self, b: &[u8]) -> usize {
        if self.index >= 2 * WINDOW_SIZE - (MIN_MATCH_LENGTH + MAX_MATCH_LENGTH) {
            let ws = WINDOW_SIZE as usize;
            self.window.copy_within(ws..2 * ws, 0);
            self.index -= WINDOW_SIZE;
            self.window_end -= WINDOW_SIZE;
            if self.block_start >= WINDOW_SIZE {
                self.block_start -= WINDOW_SIZE;
            } else {
                self.block_start = i32::MAX;
            }
            self.hash_offset += WINDOW_SIZE;
            if self.hash_offset > MAX_HASH_OFFSET {
                let delta = self.hash_offset - 1;
                self.hash_offset -= delta;
                self.chain_head -= delta;
                for v in self.hash_prev.iter_mut().chain(self.hash_head.iter_mut()) {
                    *v = (*v - delta).max(0);
                }
            }
        }
        let start = self.window_end as usize;
        let n = (self.window.len() - start).min(b.len());
        self.window[start..start + n].copy_from_slice(&b[..n]);
        self.window_end += n as i32;
        n
    }

    fn write_block(&mut self, tok: &mut Tokens, w: &mut BitWriter, index: i32, eof: bool) {
        if index > 0 || eof {
            let window = if self.block_start <= index {
                Some(&self.window[self.block_start as usize..index as usize])
            } else {
                None
            };
            self.block_start = index;
            w.write_block_dynamic(tok, eof, window, self.sync);
        }
    }

    /// Adds a literal, cutting the block when it is full.
    fn literal(&mut self, tok: &mut Tokens, w: &mut BitWriter, b: u8) {
        tok.add_literal(b);
        if tok.n == MAX_FLATE_BLOCK_TOKENS {
            self.write_block(tok, w, self.index, false);
            tok.reset();
        }
    }

    fn insert(&mut self, at: i32) {
        let h = hash4(&self.window, at) as usize;
        let ch = self.hash_head[h];
        self.chain_head = ch;
        self.hash_prev[(at & WINDOW_MASK) as usize] = ch;
        self.hash_head[h] = at + self.hash_offset;
    }

    /// The longest match at `pos` along the hash chain from `prev_head`.
    fn find_match(&self, pos: i32, prev_head: i32, lookahead: i32) -> Option<(i32, i32)> {
        let min_match_look = lookahead.min(MAX_MATCH_LENGTH);
        let win = &self.window[..(pos + min_match_look) as usize];
        let nice = self.nice.min(win.len() as i32 - pos);
        let mut tries = self.chain;
        let mut length = MIN_MATCH_LENGTH - 1;
        let mut w_end = win[(pos + length) as usize];
        let w_pos = &win[pos as usize..];
        let min_index = (pos - WINDOW_SIZE).max(0);
        let mut found = None;
        let mut c_gain = 4;
        const BASE_COST: i32 = 3;
        let mut i = prev_head;
        while tries > 0 {
            if w_end == win[(i + length) as usize] {
                let n =
                    super::fast::match_len(&win[i as usize..(i + min_match_look) as usize], w_pos);
                let mut take = n > length;
                if take && self.chain >= 100 {
                    let h = self.h.as_ref().expect("level 9 literal table");
                    let new_gain = h.bit_length_raw(&w_pos[..n as usize])
                        - OFFSET_EXTRA_BITS[offset_code((pos - i) as u32) as usize] as i32
                        - BASE_COST
                        - LENGTH_EXTRA_BITS[length_code((n - 3) as u32)] as i32;
                    if new_gain <= c_gain {
                        take = false;
                    } else {
                        c_gain = new_gain;
                    }
                }
                if take {
                    length = n;
                    found = Some((n, pos - i));
                    if n >= nice {
                        break;
                    }
                    w_end = win[(pos + n) as usize];
                }
            }
            if i <= min_index {
                break;
            }
            i = self.hash_prev[(i & WINDOW_MASK) as usize] - self.hash_offset;
            if i < min_index {
                break;
            }
            tries -= 1;
        }
        found
    }

    /// Go's `tryBetterMatchAtEnd`: a match found two bytes into the previous match's
    /// end that reaches further replaces it, up to two bytes becoming literals.
    fn better_match_at_end(
        &mut self,
        tok: &mut Tokens,
        w: &mut BitWriter,
        mut prev_length: i32,
        prev_offset: i32,
        lookahead: i32,
    ) -> (i32, i32) {
        const CHECK_OFF: i32 = 2;
        if prev_length >= MAX_MATCH_LENGTH - CHECK_OFF {
            return (prev_length, prev_offset);
        }
        let prev_index = self.index - 1;
        if prev_index + prev_length >= self.max_insert_index {
            return (prev_length, prev_offset);
        }
        let end = lookahead.min(MAX_MATCH_LENGTH + CHECK_OFF) + prev_index;
        let min_index = (self.index - WINDOW_SIZE).max(0);
        let h = hash4(&self.window, prev_index + prev_length) as usize;
        let ch2 = self.hash_head[h] - self.hash_offset - prev_length;
        if prev_index - ch2 == prev_offset || ch2 <= min_index + CHECK_OFF {
            return (prev_length, prev_offset);
        }
        let length = super::fast::match_len(
            &self.window[(prev_index + CHECK_OFF) as usize..end as usize],
            &self.window[(ch2 + CHECK_OFF) as usize..],
        );
        if length <= prev_length {
            return (prev_length, prev_offset);
        }
        prev_length = length;
        let prev_offset = prev_index - ch2;
        let mut i = CHECK_OFF - 1;
        while i >= 0 {
            if prev_length >= MAX_MATCH_LENGTH
                || self.window[(prev_index + i) as usize] != self.window[(ch2 + i) as usize]
            {
                for j in 0..=i {
                    let b = self.window[(prev_index + j) as usize];
                    self.literal(tok, w, b);
                    self.index += 1;
                    if self.index < self.max_insert_index {
                        self.insert(self.index);
                    }
                }
                break;
            }
            prev_length += 1;
            i -= 1;
        }
        (prev_length, prev_offset)
    }

    /// Go's `skipLiterals`: in a long literal run, emits more literals at once.
    fn skip_literals(&mut self, tok: &mut Tokens, w: &mut BitWriter) {
        let n = self.literal_counter as i32 - self.chain;
        if n <= 0 {
            return;
        }
        let n = 1 + (n >> 6);
        for _ in 0..n {
            if self.index >= self.window_end - 1 {
                break;
            }
            let b = self.window[(self.index - 1) as usize];
            self.literal(tok, w, b);
            if self.index < self.max_insert_index {
                self.insert(self.index);
            }
            self.index += 1;
        }
        let b = self.window[(self.index - 1) as usize];
        tok.add_literal(b);
        self.byte_available = false;
        if tok.n == MAX_FLATE_BLOCK_TOKENS {
            self.write_block(tok, w, self.index, false);
            tok.reset();
        }
    }

    /// Go's `deflateLazy`: codes the window up to the last 262 bytes (all of it when
    /// syncing).
    fn deflate(&mut self, tok: &mut Tokens, w: &mut BitWriter) {
        if self.window_end - self.index < MIN_MATCH_LENGTH + MAX_MATCH_LENGTH && !self.sync {
            return;
        }
        if self.window_end != self.index && self.chain > 100 {
            let h = self
                .h
                .get_or_insert_with(|| HuffmanEncoder::new(MAX_FLATE_BLOCK_TOKENS));
            let mut tmp = [0u16; 256];
            let to_index = &self.window[self.index as usize..self.window_end as usize];
            for &v in &to_index[..to_index.len().min(MAX_FLATE_BLOCK_TOKENS)] {
                tmp[v as usize] += 1;
            }
            h.generate(&tmp, 15);
        }
        self.max_insert_index = self.window_end - (MIN_MATCH_LENGTH - 1);
        loop {
            let lookahead = self.window_end - self.index;
            if lookahead < MIN_MATCH_LENGTH + MAX_MATCH_LENGTH {
                if !self.sync {
                    return;
                }
                if lookahead == 0 {
                    if self.byte_available {
                        tok.add_literal(self.window[(self.index - 1) as usize]);
                        self.byte_available = false;
                    }
                    if tok.n > 0 {
                        self.write_block(tok, w, self.index, false);
                        tok.reset();
                    }
                    return;
                }
            }
            if self.index < self.max_insert_index {
                self.insert(self.index);
            }
            let mut prev_length = self.length;
            let mut prev_offset = self.offset;
            self.length = MIN_MATCH_LENGTH - 1;
            self.offset = 0;
            let min_index = (self.index - WINDOW_SIZE).max(0);
            if self.chain_head - self.hash_offset >= min_index
                && lookahead > prev_length
                && prev_length < self.lazy
            {
                let head = self.chain_head - self.hash_offset;
                if let Some((l, o)) = self.find_match(self.index, head, lookahead) {
                    self.length = l;
                    self.offset = o;
                }
            }
            if prev_length >= MIN_MATCH_LENGTH && self.length <= prev_length {
                (prev_length, prev_offset) =
                    self.better_match_at_end(tok, w, prev_length, prev_offset, lookahead);
                tok.add_match((prev_length - 3) as u32, (prev_offset - 1) as u32);
                let new_index = self.index + prev_length - 1;
                let end = new_index.min(self.max_insert_index) + MIN_MATCH_LENGTH - 1;
                let start = (self.index + 1).min(self.max_insert_index);
                let mut di = start;
                while di + MIN_MATCH_LENGTH <= end {
                    let h = hash4(&self.window, di) as usize & HASH_MASK as usize;
                    self.hash_prev[(di & WINDOW_MASK) as usize] = self.hash_head[h];
                    self.hash_head[h] = di + self.hash_offset;
                    di += 1;
                }
                self.index = new_index;
                self.byte_available = false;
                self.length = MIN_MATCH_LENGTH - 1;
                if tok.n == MAX_FLATE_BLOCK_TOKENS {
                    self.write_block(tok, w, self.index, false);
                    tok.reset();
                }
                self.literal_counter = 0;
                continue;
            }
            if self.length >= MIN_MATCH_LENGTH {
                self.literal_counter = 0;
            }
            if self.byte_available {
                self.literal_counter = self.literal_counter.wrapping_add(1);
                let b = self.window[(self.index - 1) as usize];
                self.literal(tok, w, b);
                self.index += 1;
                self.skip_literals(tok, w);
            } else {
                self.index += 1;
                self.byte_available = true;
            }
        }
    }
}
