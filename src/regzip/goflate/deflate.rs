//! The compressor behind every level: Go's `deflate.go`, its window, its per-level
//! "step" (store, Huffman-only, level 1, lazy matching) and when each one cuts a block.
//!
//! Block boundaries are part of the output, so the windows and triggers are Go's:
//! levels 0, -2 and 1 cut a block each time 65535 bytes have been buffered; levels 2–9
//! keep a 64 KiB window, slide it by 32 KiB when fewer than 262 bytes are left past the
//! cursor, and cut a block at 16384 tokens. Data only arrives through `write` (Go's
//! `Write`: run the step, then fill), and `finish` is Go's `Close`: drain with `sync`
//! set, then an empty final stored block.
//!
//! Levels 2–9 share one loop with Go's two flavours: 2 and 3 take the first match of at
//! least 4 bytes and skip hashing inside long ones ("fast skip"), 4–9 defer each match by
//! one byte to see if the next position matches longer (lazy). A 4-byte match is only
//! taken within 4096 bytes. Positions are hashed as 4-byte big-endian values times
//! 0x1e35a7bd, top 17 bits; chain entries hold `position + hash_offset`.

use std::io;

use super::bitwriter::BitWriter;
use super::common_prefix;
use super::fast::FastEncoder;
use super::tokens::{self, literal};

const WINDOW_SIZE: usize = 1 << 15;
const WINDOW_MASK: usize = WINDOW_SIZE - 1;
const MIN_MATCH: usize = 4;
const MAX_MATCH: usize = 258;
const MAX_FLATE_BLOCK_TOKENS: usize = 1 << 14;
pub const MAX_STORE_BLOCK: usize = 65535;
const HASH_BITS: u32 = 17;
const HASH_SIZE: usize = 1 << HASH_BITS;
const HASH_MASK: u32 = HASH_SIZE as u32 - 1;
const MAX_HASH_OFFSET: usize = 1 << 24;
const HASH_MUL: u32 = 0x1e35a7bd;
const SKIP_NEVER: usize = i32::MAX as usize;

/// Go's per-level tuning: `good` (cut the chain search when a match this long is already
/// known), `lazy` (stop looking for a better match past this length), `nice` (stop the
/// search at this length), `chain` (how many candidates to try), `fast_skip` (levels 2
/// and 3: not lazy, and matches up to this long get their positions hashed).
#[derive(Clone, Copy)]
struct Params {
    good: usize,
    lazy: usize,
    nice: usize,
    chain: usize,
    fast_skip: usize,
}

const fn p(good: usize, lazy: usize, nice: usize, chain: usize, fast_skip: usize) -> Params {
    Params {
        good,
        lazy,
        nice,
        chain,
        fast_skip,
    }
}

fn params(level: i32) -> Params {
    match level {
        2 => p(4, 0, 16, 8, 5),
        3 => p(4, 0, 32, 32, 6),
        4 => p(4, 4, 16, 16, SKIP_NEVER),
        5 => p(8, 16, 32, 32, SKIP_NEVER),
        6 => p(8, 16, 128, 128, SKIP_NEVER),
        7 => p(8, 32, 128, 256, SKIP_NEVER),
        8 => p(32, 128, 258, 1024, SKIP_NEVER),
        _ => p(32, 258, 258, 4096, SKIP_NEVER),
    }
}

#[inline]
fn hash4(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]).wrapping_mul(HASH_MUL) >> (32 - HASH_BITS)
}

/// Levels 2–9 state (Go's `compressor` fields for `deflate`).
struct Lazy {
    p: Params,
    hash_head: Box<[u32; HASH_SIZE]>,
    hash_prev: Box<[u32; WINDOW_SIZE]>,
    hash_offset: usize,
    chain_head: isize,
    index: usize,
    block_start: usize,
    byte_available: bool,
    length: usize,
    offset: usize,
    max_insert_index: usize,
}

enum Mode {
    Store,
    Huffman,
    Fast(Box<FastEncoder>),
    Lazy(Box<Lazy>),
}

/// A raw DEFLATE encoder with Go 1.19's output at one level.
pub struct Compressor {
    mode: Mode,
    pub w: BitWriter,
    window: Vec<u8>,
    window_end: usize,
    tokens: Vec<u32>,
    sync: bool,
}

impl Compressor {
    /// `level`: -2 (Huffman only), -1 (default = 6), 0 (stored) ..= 9.
    pub fn new(level: i32) -> Option<Self> {
        let (mode, window) = match level {
            0 => (Mode::Store, MAX_STORE_BLOCK),
            -2 => (Mode::Huffman, MAX_STORE_BLOCK),
            1 => (Mode::Fast(Box::new(FastEncoder::new())), MAX_STORE_BLOCK),
            -1 | 2..=9 => {
                let lazy = Lazy {
                    p: params(if level == -1 { 6 } else { level }),
                    hash_head: vec![0; HASH_SIZE].try_into().unwrap(),
                    hash_prev: vec![0; WINDOW_SIZE].try_into().unwrap(),
                    hash_offset: 1,
                    chain_head: -1,
                    index: 0,
                    block_start: 0,
                    byte_available: false,
                    length: MIN_MATCH - 1,
                    offset: 0,
                    max_insert_index: 0,
                };
                (Mode::Lazy(Box::new(lazy)), 2 * WINDOW_SIZE)
            }
            _ => return None,
        };
        Some(Compressor {
            mode,
            w: BitWriter::new(),
            window: vec![0; window],
            window_end: 0,
            tokens: Vec::with_capacity(MAX_STORE_BLOCK + 1),
            sync: false,
        })
    }

    /// Go's `Write`: step, then copy into the window, until `data` is used up. After
    /// each step, `drain` gets the finished bytes once there are `drain_at` of them, so
    /// one huge call needs no more memory than a small one.
    pub fn write(
        &mut self,
        mut data: &[u8],
        drain_at: usize,
        drain: &mut dyn FnMut(&mut Vec<u8>) -> io::Result<()>,
    ) -> io::Result<()> {
        while !data.is_empty() {
            self.step();
            if self.w.out.len() >= drain_at {
                drain(&mut self.w.out)?;
            }
            let n = self.fill(data);
            data = &data[n..];
        }
        Ok(())
    }

    /// Go's `Flush`: everything so far out, then an empty non-final stored block.
    pub fn flush(&mut self) {
        self.sync = true;
        self.step();
        self.w.write_stored_header(0, false);
        self.w.flush();
        self.sync = false;
    }

    /// Go's `Close`: everything out, then an empty final stored block.
    pub fn finish(&mut self) {
        self.sync = true;
        self.step();
        self.w.write_stored_header(0, true);
        self.w.flush();
    }

    fn fill(&mut self, data: &[u8]) -> usize {
        if let Mode::Lazy(z) = &mut self.mode
            && z.index >= 2 * WINDOW_SIZE - (MIN_MATCH + MAX_MATCH)
        {
            slide(z, &mut self.window);
            self.window_end -= WINDOW_SIZE;
        }
        let n = data.len().min(self.window.len() - self.window_end);
        self.window[self.window_end..self.window_end + n].copy_from_slice(&data[..n]);
        self.window_end += n;
        n
    }

    fn step(&mut self) {
        match &mut self.mode {
            Mode::Store => {
                if self.window_end > 0 && (self.window_end == MAX_STORE_BLOCK || self.sync) {
                    self.w.write_stored_header(self.window_end, false);
                    self.w.write_bytes(&self.window[..self.window_end]);
                    self.window_end = 0;
                }
            }
            Mode::Huffman => {
                if self.window_end < self.window.len() && !self.sync || self.window_end == 0 {
                    return;
                }
                self.w
                    .write_block_huff(false, &self.window[..self.window_end]);
                self.window_end = 0;
            }
            Mode::Fast(fast) => {
                let end = self.window_end;
                if end < MAX_STORE_BLOCK {
                    if !self.sync {
                        return;
                    }
                    if end < 128 {
                        // Small final pieces: no matching, and the next block starts over.
                        match end {
                            0 => return,
                            1..=16 => {
                                self.w.write_stored_header(end, false);
                                self.w.write_bytes(&self.window[..end]);
                            }
                            _ => self.w.write_block_huff(false, &self.window[..end]),
                        }
                        self.window_end = 0;
                        fast.reset();
                        return;
                    }
                }
                self.tokens.clear();
                fast.encode(&mut self.tokens, &self.window[..end]);
                if self.tokens.len() > end - (end >> 4) {
                    self.w.write_block_huff(false, &self.window[..end]);
                } else {
                    self.w
                        .write_block_dynamic(&self.tokens, false, &self.window[..end]);
                }
                self.window_end = 0;
            }
            Mode::Lazy(z) => {
                deflate(
                    z,
                    &self.window,
                    self.window_end,
                    &mut self.tokens,
                    &mut self.w,
                    self.sync,
                );
            }
        }
    }
}

/// Moves the window's upper half down and rebases the hash chains (Go's `fillDeflate`).
fn slide(z: &mut Lazy, window: &mut [u8]) {
    window.copy_within(WINDOW_SIZE..2 * WINDOW_SIZE, 0);
    z.index -= WINDOW_SIZE;
    // A block that started in the discarded half can no longer be stored verbatim.
    z.block_start = if z.block_start >= WINDOW_SIZE {
        z.block_start - WINDOW_SIZE
    } else {
        usize::MAX
    };
    z.hash_offset += WINDOW_SIZE;
    if z.hash_offset > MAX_HASH_OFFSET {
        let delta = z.hash_offset - 1;
        z.hash_offset -= delta;
        z.chain_head -= delta as isize;
        for v in z.hash_prev.iter_mut().chain(z.hash_head.iter_mut()) {
            *v = if *v as usize > delta {
                (*v as usize - delta) as u32
            } else {
                0
            };
        }
    }
}

/// Emits the pending tokens as one block ending at window position `index`.
fn write_block(z: &mut Lazy, window: &[u8], tokens: &[u32], index: usize, w: &mut BitWriter) {
    if index > 0 {
        let input = if z.block_start <= index {
            Some(&window[z.block_start..index])
        } else {
            None
        };
        z.block_start = index;
        w.write_block(tokens, false, input);
    }
}

/// Best match for `pos` along the hash chain starting at `prev_head`, longer than
/// `prev_length`: `(length, distance)`.
fn find_match(
    z: &Lazy,
    window: &[u8],
    pos: usize,
    prev_head: isize,
    prev_length: usize,
    lookahead: usize,
) -> Option<(usize, usize)> {
    let max_look = lookahead.min(MAX_MATCH);
    let win = &window[..pos + max_look];
    let nice = max_look.min(z.p.nice);
    let mut tries = z.p.chain;
    let mut length = prev_length;
    if length >= z.p.good {
        tries >>= 2;
    }
    let mut found = None;
    let mut w_end = win[pos + length];
    let w_pos = &win[pos..];
    let min_index = pos as isize - WINDOW_SIZE as isize;
    let mut i = prev_head;
    while tries > 0 {
        let iu = i as usize;
        if w_end == win[iu + length] {
            let n = common_prefix(&win[iu..iu + max_look], w_pos);
            if n > length && (n > MIN_MATCH || pos - iu <= 4096) {
                length = n;
                found = Some((n, pos - iu));
                if n >= nice {
                    break;
                }
                w_end = win[pos + n];
            }
        }
        if i == min_index {
            break;
        }
        i = z.hash_prev[iu & WINDOW_MASK] as isize - z.hash_offset as isize;
        if i < min_index || i < 0 {
            break;
        }
        tries -= 1;
    }
    found
}

/// Inserts position `at` into the hash chains.
#[inline]
fn insert(z: &mut Lazy, window: &[u8], at: usize) -> u32 {
    let h = (hash4(&window[at..at + MIN_MATCH]) & HASH_MASK) as usize;
    let head = z.hash_head[h];
    z.hash_prev[at & WINDOW_MASK] = head;
    z.hash_head[h] = (at + z.hash_offset) as u32;
    head
}

/// Go's `deflate` step: tokenizes the window from `z.index` while enough lookahead is
/// buffered (all of it with `sync`), cutting blocks at 16384 tokens.
fn deflate(
    z: &mut Lazy,
    window: &[u8],
    window_end: usize,
    tokens: &mut Vec<u32>,
    w: &mut BitWriter,
    sync: bool,
) {
    if window_end - z.index < MIN_MATCH + MAX_MATCH && !sync {
        return;
    }
    z.max_insert_index = window_end.saturating_sub(MIN_MATCH - 1);
    let fast_skip = z.p.fast_skip;
    let lazy_mode = fast_skip == SKIP_NEVER;

    loop {
        let lookahead = window_end - z.index;
        if lookahead < MIN_MATCH + MAX_MATCH {
            if !sync {
                break;
            }
            if lookahead == 0 {
                if z.byte_available {
                    tokens.push(literal(window[z.index - 1]));
                    z.byte_available = false;
                }
                if !tokens.is_empty() {
                    write_block(z, window, tokens, z.index, w);
                    tokens.clear();
                }
                break;
            }
        }
        if z.index < z.max_insert_index {
            z.chain_head = insert(z, window, z.index) as isize;
        }
        let prev_length = z.length;
        let prev_offset = z.offset;
        z.length = MIN_MATCH - 1;
        z.offset = 0;
        let min_index = z.index.saturating_sub(WINDOW_SIZE) as isize;

        let head = z.chain_head - z.hash_offset as isize;
        if head >= min_index
            && (!lazy_mode && lookahead > MIN_MATCH - 1
                || lazy_mode && lookahead > prev_length && prev_length < z.p.lazy)
            && let Some((len, off)) = find_match(z, window, z.index, head, MIN_MATCH - 1, lookahead)
        {
            z.length = len;
            z.offset = off;
        }

        if !lazy_mode && z.length >= MIN_MATCH
            || lazy_mode && prev_length >= MIN_MATCH && z.length <= prev_length
        {
            // Emit a match: this position's (fast skip) or the previous position's (lazy).
            if lazy_mode {
                tokens.push(tokens::matched(
                    (prev_length - 3) as u32,
                    (prev_offset - 1) as u32,
                ));
            } else {
                tokens.push(tokens::matched(
                    (z.length - 3) as u32,
                    (z.offset - 1) as u32,
                ));
            }
            if z.length <= fast_skip {
                let new_index = if lazy_mode {
                    z.index + prev_length - 1
                } else {
                    z.index + z.length
                };
                let mut at = z.index + 1;
                while at < new_index {
                    if at < z.max_insert_index {
                        insert(z, window, at);
                    }
                    at += 1;
                }
                z.index = at;
                if lazy_mode {
                    z.byte_available = false;
                    z.length = MIN_MATCH - 1;
                }
            } else {
                z.index += z.length;
            }
            if tokens.len() == MAX_FLATE_BLOCK_TOKENS {
                write_block(z, window, tokens, z.index, w);
                tokens.clear();
            }
        } else {
            if !lazy_mode || z.byte_available {
                let at = if lazy_mode { z.index - 1 } else { z.index };
                tokens.push(literal(window[at]));
                if tokens.len() == MAX_FLATE_BLOCK_TOKENS {
                    write_block(z, window, tokens, at + 1, w);
                    tokens.clear();
                }
            }
            z.index += 1;
            if lazy_mode {
                z.byte_available = true;
            }
        }
    }
}
