//! klauspost's levels 7–9 (`deflateLazy` in `deflate.go`, klauspost/compress 1.15): a
//! hash-chain matcher with lazy evaluation, derived from Go's classic one but not the
//! same (Go's `goflate` does not write these bytes).
//!
//! A 64 KiB window slides by 32 KiB when fewer than 262 bytes are left past the cursor;
//! 4-byte hashes (17 bits) chain positions stored as `position + hash_offset`. Where it
//! differs from Go's: after a deferred match it tries once more to lengthen the previous
//! match from the bucket of its tail; level 9 (chain > 100) ranks candidates by an
//! estimated gain (the literal bits the match saves, from a Huffman code of the bytes
//! ahead, minus its extra bits); after long runs of literals it emits several literals
//! per step without searching; blocks are cut at 32768 tokens and go through the
//! dynamic block writer (which may keep the previous table).
//!
//! A dictionary is hashed into the window and the first block's "input" (what a stored
//! block would hold) starts at the window's start, dictionary included, as in the
//! original. The original re-bases `hash_offset` after 256 MiB through one writer; a
//! pgzip block never gets there.

use super::super::deflate::codes::{
    LENGTH_EXTRA_BITS, OFFSET_EXTRA_BITS, length_code, offset_code,
};
use super::super::deflate::tokens::Tokens;
use super::super::goflate::huffman::HuffmanEncoder;
use super::writer::BitWriter;

const WINDOW_SIZE: usize = 1 << 15;
const WINDOW_MASK: usize = WINDOW_SIZE - 1;
const MIN_MATCH: usize = 4;
const MAX_MATCH: usize = 258;
const MAX_FLATE_BLOCK_TOKENS: usize = 1 << 15;
const HASH_BITS: u32 = 17;
const HASH_SIZE: usize = 1 << HASH_BITS;
const PRIME4: u32 = 2654435761;

#[inline]
fn hash4(b: &[u8]) -> usize {
    (u32::from_le_bytes([b[0], b[1], b[2], b[3]]).wrapping_mul(PRIME4) >> (32 - HASH_BITS)) as usize
}

#[inline]
fn match_len(a: &[u8], b: &[u8]) -> usize {
    super::super::goflate::common_prefix(a, &b[..a.len()])
}

pub struct Lazy {
    lazy: usize,
    nice: usize,
    chain: usize,
    length: usize,
    offset: usize,
    max_insert_index: usize,
    chain_head: i64,
    hash_offset: usize,
    ii: u16,
    index: usize,
    hash_head: Vec<u32>,
    hash_prev: Vec<u32>,
    /// A Huffman code of the bytes ahead (level 9's gain estimate).
    h: HuffmanEncoder,
    block_start: usize,
    byte_available: bool,
}

impl Lazy {
    pub fn new(level: i32) -> Lazy {
        // (the original's table also has a "good" length, which it never reads)
        let (lazy, nice, chain) = match level {
            7 => (12, 16, 24),
            8 => (30, 40, 64),
            _ => (258, 258, 1024),
        };
        Lazy {
            lazy,
            nice,
            chain,
            length: MIN_MATCH - 1,
            offset: 0,
            max_insert_index: 0,
            chain_head: -1,
            hash_offset: 1,
            ii: 0,
            index: 0,
            hash_head: vec![0; HASH_SIZE],
            hash_prev: vec![0; WINDOW_SIZE],
            h: HuffmanEncoder::new(256),
            block_start: 0,
            byte_available: false,
        }
    }

    fn insert(&mut self, window: &[u8], at: usize) {
        let h = hash4(&window[at..]);
        self.hash_prev[at & WINDOW_MASK] = self.hash_head[h];
        self.hash_head[h] = (at + self.hash_offset) as u32;
    }

    /// Hashes `dict` (its last 32 KiB) into the empty window; returns its length.
    pub fn fill_window(&mut self, window: &mut [u8], dict: &[u8]) -> usize {
        let b = &dict[dict.len().saturating_sub(WINDOW_SIZE)..];
        let n = b.len();
        window[..n].copy_from_slice(b);
        let loops = (n + 256 - MIN_MATCH) / 256;
        for j in 0..loops {
            let start = j * 256;
            let end = (start + 256 + MIN_MATCH - 1).min(n);
            if end < start + MIN_MATCH {
                continue;
            }
            for di in start..=end - MIN_MATCH {
                self.insert(window, di);
            }
        }
        self.index = n;
        n
    }

    /// Go's `fillDeflate`: slides the window when the cursor is near its end, then
    /// copies in what fits; returns how much of `b` was taken.
    pub fn fill(&mut self, window: &mut [u8], window_end: &mut usize, b: &[u8]) -> usize {
        if self.index >= 2 * WINDOW_SIZE - (MIN_MATCH + MAX_MATCH) {
            window.copy_within(WINDOW_SIZE.., 0);
            self.index -= WINDOW_SIZE;
            *window_end -= WINDOW_SIZE;
            if self.block_start >= WINDOW_SIZE {
                self.block_start -= WINDOW_SIZE;
            } else {
                self.block_start = i32::MAX as usize;
            }
            self.hash_offset += WINDOW_SIZE;
        }
        let n = b.len().min(window.len() - *window_end);
        window[*window_end..*window_end + n].copy_from_slice(&b[..n]);
        *window_end += n;
        n
    }

    fn write_block(&mut self, w: &mut BitWriter, tokens: &mut Tokens, window: &[u8], sync: bool) {
        let index = self.index;
        if index > 0 {
            let input = (self.block_start <= index).then(|| &window[self.block_start..index]);
            self.block_start = index;
            w.write_block_dynamic(tokens, false, input, sync);
        }
        tokens.reset();
    }

    fn find_match(
        &self,
        window: &[u8],
        pos: usize,
        prev_head: i64,
        lookahead: usize,
    ) -> Option<(usize, usize)> {
        let min_match_look = MAX_MATCH.min(lookahead);
        let win = &window[..pos + min_match_look];
        let nice = (win.len() - pos).min(self.nice);
        let mut tries = self.chain;
        let mut length = MIN_MATCH - 1;
        let mut w_end = win[pos + length];
        let w_pos = &win[pos..];
        let min_index = pos.saturating_sub(WINDOW_SIZE) as i64;
        let mut found = None;
        let mut c_gain = 0i64;
        let mut i = prev_head;
        while tries > 0 {
            let iu = i as usize;
            if w_end == win[iu + length] {
                let n = match_len(&win[iu..iu + min_match_look], w_pos);
                if n > length {
                    let better = if self.chain < 100 {
                        true
                    } else {
                        let bits: i64 = w_pos[..n]
                            .iter()
                            .map(|&b| self.h.codes[b as usize].len as i64)
                            .sum();
                        let gain = bits
                            - OFFSET_EXTRA_BITS[offset_code((pos - iu) as u32) as usize] as i64
                            - 6
                            - LENGTH_EXTRA_BITS[length_code((n - 3) as u32)] as i64;
                        if gain > c_gain {
                            c_gain = gain;
                            true
                        } else {
                            false
                        }
                    };
                    if better {
                        length = n;
                        found = Some((n, pos - iu));
                        if n >= nice {
                            break;
                        }
                        w_end = win[pos + n];
                    }
                }
            }
            if i <= min_index {
                break;
            }
            i = self.hash_prev[iu & WINDOW_MASK] as i64 - self.hash_offset as i64;
            if i < min_index {
                break;
            }
            tries -= 1;
        }
        found
    }

    /// Go's `deflateLazy`: matches as far as the window allows (all of it when `sync`).
    pub fn step(
        &mut self,
        w: &mut BitWriter,
        tokens: &mut Tokens,
        window: &[u8],
        window_end: usize,
        sync: bool,
    ) {
        if window_end - self.index < MIN_MATCH + MAX_MATCH && !sync {
            return;
        }
        if window_end != self.index && self.chain > 100 {
            let mut tmp = [0u16; 256];
            for &v in &window[self.index..window_end] {
                tmp[v as usize] = tmp[v as usize].wrapping_add(1);
            }
            let freq: Vec<i32> = tmp.iter().map(|&f| f as i32).collect();
            self.h.generate(&freq, 15);
        }
        self.max_insert_index = window_end.saturating_sub(MIN_MATCH - 1);
        loop {
            let lookahead = window_end - self.index;
            if lookahead < MIN_MATCH + MAX_MATCH {
                if !sync {
                    return;
                }
                if lookahead == 0 {
                    if self.byte_available {
                        tokens.add_literal(window[self.index - 1]);
                        self.byte_available = false;
                    }
                    if tokens.n > 0 {
                        self.write_block(w, tokens, window, sync);
                    }
                    return;
                }
            }
            if self.index < self.max_insert_index {
                let h = hash4(&window[self.index..]);
                let ch = self.hash_head[h];
                self.chain_head = ch as i64;
                self.hash_prev[self.index & WINDOW_MASK] = ch;
                self.hash_head[h] = (self.index + self.hash_offset) as u32;
            }
            let mut prev_length = self.length;
            let mut prev_offset = self.offset;
            self.length = MIN_MATCH - 1;
            self.offset = 0;
            let min_index = self.index.saturating_sub(WINDOW_SIZE);
            let head = self.chain_head - self.hash_offset as i64;
            if head >= min_index as i64
                && lookahead > prev_length
                && prev_length < self.lazy
                && let Some((l, o)) = self.find_match(window, self.index, head, lookahead)
            {
                self.length = l;
                self.offset = o;
            }
            if prev_length >= MIN_MATCH && self.length <= prev_length {
                // one more try at lengthening the previous match, from its tail's bucket
                let prev_index = self.index - 1;
                if prev_index + prev_length + 2 < self.max_insert_index {
                    let end = lookahead.min(MAX_MATCH) + prev_index;
                    let idx = prev_index + prev_length - 2;
                    let h = hash4(&window[idx..]);
                    let ch2 =
                        self.hash_head[h] as i64 - self.hash_offset as i64 - prev_length as i64 + 2;
                    if ch2 > min_index as i64 {
                        let l = match_len(&window[prev_index..end], &window[ch2 as usize..]);
                        if l > prev_length {
                            prev_length = l;
                            prev_offset = prev_index - ch2 as usize;
                        }
                    }
                }
                tokens.add_match((prev_length - 3) as u32, (prev_offset - 1) as u32);
                let new_index = self.index + prev_length - 1;
                let end = new_index.min(self.max_insert_index) + MIN_MATCH - 1;
                let start = (self.index + 1).min(self.max_insert_index);
                if end >= start + MIN_MATCH {
                    for di in start..=end - MIN_MATCH {
                        self.insert(window, di);
                    }
                }
                self.index = new_index;
                self.byte_available = false;
                self.length = MIN_MATCH - 1;
                if tokens.n == MAX_FLATE_BLOCK_TOKENS {
                    self.write_block(w, tokens, window, sync);
                }
                self.ii = 0;
            } else {
                if self.length >= MIN_MATCH {
                    self.ii = 0;
                }
                if self.byte_available {
                    self.ii = self.ii.wrapping_add(1);
                    tokens.add_literal(window[self.index - 1]);
                    if tokens.n == MAX_FLATE_BLOCK_TOKENS {
                        self.write_block(w, tokens, window, sync);
                    }
                    self.index += 1;
                    let n = self.ii as i64 - self.chain as i64;
                    if n > 0 {
                        let n = 1 + (n >> 6);
                        for _ in 0..n {
                            if self.index >= window_end - 1 {
                                break;
                            }
                            tokens.add_literal(window[self.index - 1]);
                            if tokens.n == MAX_FLATE_BLOCK_TOKENS {
                                self.write_block(w, tokens, window, sync);
                            }
                            if self.index < self.max_insert_index {
                                let h = hash4(&window[self.index..]);
                                let ch = self.hash_head[h];
                                self.chain_head = ch as i64;
                                self.hash_prev[self.index & WINDOW_MASK] = ch;
                                self.hash_head[h] = (self.index + self.hash_offset) as u32;
                            }
                            self.index += 1;
                        }
                        tokens.add_literal(window[self.index - 1]);
                        self.byte_available = false;
                        if tokens.n == MAX_FLATE_BLOCK_TOKENS {
                            self.write_block(w, tokens, window, sync);
                        }
                    }
                } else {
                    self.index += 1;
                    self.byte_available = true;
                }
            }
        }
    }
}
