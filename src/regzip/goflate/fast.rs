//! Level 1 (BestSpeed): Go's `deflatefast.go` match finder, a Snappy-style single-probe
//! hash table over 4-byte values that also matches into the previous block.
//!
//! Its state carries across blocks (table entries hold `position + cur`, `prev` keeps the
//! previous block's bytes), and Go's exact arithmetic is visible in the output: how far
//! the search skips ahead after misses, that candidates farther than 32768 bytes are
//! refused, that a candidate in a previous block too short to reach is still emitted as a
//! 4-byte match, the `cur` bump on a reset and the rebasing near `i32::MAX`. All offsets
//! are `i32`, as in Go.

use super::common_prefix;
use super::tokens::{self, literal};

const TABLE_BITS: u32 = 14;
const TABLE_SIZE: usize = 1 << TABLE_BITS;
const TABLE_MASK: u32 = TABLE_SIZE as u32 - 1;
const TABLE_SHIFT: u32 = 32 - TABLE_BITS;
const MAX_STORE_BLOCK: i32 = 65535;
const MAX_MATCH_OFFSET: i32 = 1 << 15;
const MAX_MATCH_LENGTH: i32 = 258;
const BUFFER_RESET: i32 = i32::MAX - MAX_STORE_BLOCK * 2;
const INPUT_MARGIN: i32 = 16 - 1;
const MIN_NON_LITERAL_BLOCK: usize = 1 + 1 + INPUT_MARGIN as usize;

#[derive(Clone, Copy, Default)]
struct Entry {
    val: u32,
    offset: i32,
}

pub struct FastEncoder {
    table: Vec<Entry>,
    prev: Vec<u8>,
    cur: i32,
}

#[inline]
fn load32(b: &[u8], i: i32) -> u32 {
    let i = i as usize;
    u32::from_le_bytes(b[i..i + 4].try_into().unwrap())
}

#[inline]
fn load64(b: &[u8], i: i32) -> u64 {
    let i = i as usize;
    u64::from_le_bytes(b[i..i + 8].try_into().unwrap())
}

#[inline]
fn hash(u: u32) -> u32 {
    u.wrapping_mul(0x1e35a7bd) >> TABLE_SHIFT
}

fn emit_literals(dst: &mut Vec<u32>, lit: &[u8]) {
    dst.extend(lit.iter().map(|&b| literal(b)));
}

impl FastEncoder {
    pub fn new() -> Self {
        FastEncoder {
            table: vec![Entry::default(); TABLE_SIZE],
            prev: Vec::with_capacity(MAX_STORE_BLOCK as usize),
            cur: MAX_STORE_BLOCK,
        }
    }

    /// Appends the tokens of block `src` (at most 65535 bytes) to `dst`.
    pub fn encode(&mut self, dst: &mut Vec<u32>, src: &[u8]) {
        if self.cur >= BUFFER_RESET {
            self.shift_offsets();
        }
        if src.len() < MIN_NON_LITERAL_BLOCK {
            self.cur += MAX_STORE_BLOCK;
            self.prev.clear();
            emit_literals(dst, src);
            return;
        }
        let s_limit = src.len() as i32 - INPUT_MARGIN;
        let mut next_emit: i32 = 0;
        let mut s: i32 = 0;
        let mut cv = load32(src, s);
        let mut next_hash = hash(cv);

        'outer: loop {
            // Probe one position per step, stepping farther the longer nothing matches.
            let mut skip: i32 = 32;
            let mut next_s = s;
            let mut candidate;
            loop {
                s = next_s;
                let step = skip >> 5;
                next_s = s + step;
                skip += step;
                if next_s > s_limit {
                    break 'outer;
                }
                let slot = (next_hash & TABLE_MASK) as usize;
                candidate = self.table[slot];
                let now = load32(src, next_s);
                self.table[slot] = Entry {
                    offset: s + self.cur,
                    val: cv,
                };
                next_hash = hash(now);
                let offset = s - (candidate.offset - self.cur);
                if offset > MAX_MATCH_OFFSET || cv != candidate.val {
                    cv = now;
                    continue;
                }
                break;
            }
            emit_literals(dst, &src[next_emit as usize..s as usize]);

            // Emit matches while the position right after each one matches again.
            loop {
                s += 4;
                let t = candidate.offset - self.cur + 4;
                let l = self.match_len(s, t, src);
                dst.push(tokens::matched((l + 4 - 3) as u32, (s - t - 1) as u32));
                s += l;
                next_emit = s;
                if s >= s_limit {
                    break 'outer;
                }
                let mut x = load64(src, s - 1);
                let prev_hash = hash(x as u32);
                self.table[(prev_hash & TABLE_MASK) as usize] = Entry {
                    offset: self.cur + s - 1,
                    val: x as u32,
                };
                x >>= 8;
                let curr_hash = hash(x as u32);
                let slot = (curr_hash & TABLE_MASK) as usize;
                candidate = self.table[slot];
                self.table[slot] = Entry {
                    offset: self.cur + s,
                    val: x as u32,
                };
                let offset = s - (candidate.offset - self.cur);
                if offset > MAX_MATCH_OFFSET || x as u32 != candidate.val {
                    cv = (x >> 8) as u32;
                    next_hash = hash(cv);
                    s += 1;
                    break;
                }
            }
        }

        if (next_emit as usize) < src.len() {
            emit_literals(dst, &src[next_emit as usize..]);
        }
        self.cur += src.len() as i32;
        self.prev.clear();
        self.prev.extend_from_slice(src);
    }

    /// Match length from `src[s..]` against position `t` (negative: in `prev`), at most
    /// 254 bytes (the 4 already compared make 258).
    fn match_len(&self, s: i32, t: i32, src: &[u8]) -> i32 {
        let s1 = (s + MAX_MATCH_LENGTH - 4).min(src.len() as i32) as usize;
        let s = s as usize;
        if t >= 0 {
            let t = t as usize;
            return common_prefix(&src[s..s1], &src[t..t + (s1 - s)]) as i32;
        }
        let tp = self.prev.len() as i32 + t;
        if tp < 0 {
            return 0;
        }
        let b = &self.prev[tp as usize..];
        let a = &src[s..s1];
        let m = a.len().min(b.len());
        let n = common_prefix(&a[..m], &b[..m]);
        if n < m || s + n == s1 {
            return n as i32;
        }
        // The match ran to the end of the previous block: continue at this block's start.
        let a = &src[s + n..s1];
        (n + common_prefix(a, &src[..a.len()])) as i32
    }

    /// Forgets the previous block (Go: after a small block written without matching).
    pub fn reset(&mut self) {
        self.prev.clear();
        self.cur += MAX_MATCH_OFFSET;
        if self.cur >= BUFFER_RESET {
            self.shift_offsets();
        }
    }

    fn shift_offsets(&mut self) {
        if self.prev.is_empty() {
            self.table.fill(Entry::default());
        } else {
            for e in self.table.iter_mut() {
                e.offset = (e.offset - self.cur + MAX_MATCH_OFFSET + 1).max(0);
            }
        }
        self.cur = MAX_MATCH_OFFSET + 1;
    }
}
