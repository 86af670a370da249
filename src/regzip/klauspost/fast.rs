//! The match finders of klauspost's fast levels (1–6; `level1.go`…`level6.go` in
//! klauspost/compress 1.15), and the history they share (`fastGen`).
//!
//! Each level is a greedy, hash-table match finder over a history buffer: a window of at
//! most 65535 new bytes is appended to the history (which keeps the last 32 KiB when it
//! fills its 5 × 65535 bytes) and encoded into tokens, with table entries stored as
//! `position + cur`. Where the levels differ (hash lengths, table sizes, one or two
//! candidates per bucket, how far a miss skips ahead, which positions inside a match
//! are hashed, the extra "check a little later" tries of 5 and 6) decides every match,
//! so each level is its own function, following the original's order of reads and
//! writes of the tables.
//!
//! The original re-bases `cur` and its tables after 2 GiB of input through one encoder;
//! here an encoder lives for one pgzip block (at most a few MiB with its dictionary), so
//! that never happens. A stale table entry, whether from the original's reused encoders
//! or a fresh one's zeros, is always rejected by the distance checks, so a fresh encoder
//! per block gives the pooled original's bytes.

use super::super::deflate::tokens::{MAX_STORE_BLOCK, Tokens};
use super::greedy::{L1, L2, L3, L4};

pub const MAX_MATCH_OFFSET: i32 = 1 << 15;
pub(super) const TABLE_BITS: u32 = 15;
pub(super) const TABLE_SIZE: usize = 1 << TABLE_BITS;
pub(super) const B_TABLE_BITS: u32 = 17;
pub(super) const B_TABLE_SIZE: usize = 1 << B_TABLE_BITS;
const ALLOC_HISTORY: usize = MAX_STORE_BLOCK * 5;
pub(super) const INPUT_MARGIN: i32 = 12 - 1;
const MIN_NON_LITERAL_BLOCK: usize = 1 + 1 + INPUT_MARGIN as usize;

const PRIME4: u32 = 2654435761;
const PRIME5: u64 = 889523592379;
const PRIME7: u64 = 58295818150454627;

#[inline]
pub(super) fn load32(b: &[u8], i: i32) -> u32 {
    let i = i as usize;
    u32::from_le_bytes(b[i..i + 4].try_into().unwrap())
}

#[inline]
pub(super) fn load64(b: &[u8], i: i32) -> u64 {
    let i = i as usize;
    u64::from_le_bytes(b[i..i + 8].try_into().unwrap())
}

#[inline]
pub(super) fn hash4(u: u64, bits: u32) -> usize {
    ((u as u32).wrapping_mul(PRIME4) >> (32 - bits)) as usize
}

#[inline]
pub(super) fn hash5(u: u64, bits: u32) -> usize {
    ((u << (64 - 40)).wrapping_mul(PRIME5) >> (64 - bits)) as usize
}

#[inline]
pub(super) fn hash7(u: u64, bits: u32) -> usize {
    ((u << (64 - 56)).wrapping_mul(PRIME7) >> (64 - bits)) as usize
}

/// Length of the common prefix of `a` and `b` (`b` at least as long as `a`).
#[inline]
pub(super) fn match_len(a: &[u8], b: &[u8]) -> i32 {
    super::super::goflate::common_prefix(a, &b[..a.len()]) as i32
}

/// The history and position base shared by every fast level.
pub struct FastGen {
    pub hist: Vec<u8>,
    pub cur: i32,
}

impl FastGen {
    pub(super) fn new() -> FastGen {
        FastGen {
            hist: Vec::with_capacity(ALLOC_HISTORY),
            cur: MAX_STORE_BLOCK as i32,
        }
    }

    /// Appends `src` to the history (keeping only its last 32 KiB when full); returns
    /// where `src` starts in it.
    fn add_block(&mut self, src: &[u8]) -> i32 {
        if self.hist.len() + src.len() > ALLOC_HISTORY {
            let offset = self.hist.len() - MAX_MATCH_OFFSET as usize;
            self.hist.copy_within(offset.., 0);
            self.cur += offset as i32;
            self.hist.truncate(MAX_MATCH_OFFSET as usize);
        }
        let s = self.hist.len() as i32;
        self.hist.extend_from_slice(src);
        s
    }

    pub fn reset(&mut self) {
        self.cur += MAX_MATCH_OFFSET + self.hist.len() as i32;
        self.hist.clear();
    }
}

/// Common match length of `src[s..]` and `src[t..]`, capped so `s`'s side stays within
/// 254 bytes (a match the caller may extend).
#[inline]
fn matchlen(s: i32, t: i32, src: &[u8]) -> i32 {
    let s1 = (s as usize + 258 - 4).min(src.len());
    match_len(&src[s as usize..s1], &src[t as usize..])
}

#[inline]
pub(super) fn matchlen_long(s: i32, t: i32, src: &[u8]) -> i32 {
    match_len(&src[s as usize..], &src[t as usize..])
}

/// Extends a match backwards over equal bytes, emits the literals before it and the
/// match; returns the match's end, its length and its start in the history.
#[inline]
pub(super) fn emit(
    dst: &mut Tokens,
    src: &[u8],
    mut s: i32,
    mut t: i32,
    mut l: i32,
    next_emit: i32,
) -> (i32, i32, i32) {
    while t > 0 && s > next_emit && src[t as usize - 1] == src[s as usize - 1] {
        s -= 1;
        t -= 1;
        l += 1;
    }
    if next_emit < s {
        dst.add_literals(&src[next_emit as usize..s as usize]);
    }
    dst.add_match_long(l, (s - t - 1) as u32);
    (s + l, l, t)
}

pub(super) fn emit_remainder(dst: &mut Tokens, src: &[u8], next_emit: i32) {
    if (next_emit as usize) < src.len() {
        if dst.n == 0 {
            return;
        }
        dst.add_literals(&src[next_emit as usize..]);
    }
}

/// One fast level's match finder.
pub trait FastEnc: Send {
    fn encode(&mut self, dst: &mut Tokens, src: &[u8]);
    fn reset(&mut self);
}

pub fn new_fast(level: i32) -> Box<dyn FastEnc> {
    match level {
        1 => Box::new(L1 {
            g: FastGen::new(),
            table: vec![0; TABLE_SIZE],
        }),
        2 => Box::new(L2 {
            g: FastGen::new(),
            table: vec![0; B_TABLE_SIZE],
        }),
        3 => Box::new(L3 {
            g: FastGen::new(),
            table: vec![Pair::default(); 1 << 16],
        }),
        4 => Box::new(L4 {
            g: FastGen::new(),
            table: vec![0; TABLE_SIZE],
            b_table: vec![0; TABLE_SIZE],
        }),
        5 => Box::new(L5 {
            g: FastGen::new(),
            table: vec![0; TABLE_SIZE],
            b_table: vec![Pair::default(); TABLE_SIZE],
        }),
        _ => Box::new(L6 {
            g: FastGen::new(),
            table: vec![0; TABLE_SIZE],
            b_table: vec![Pair::default(); TABLE_SIZE],
        }),
    }
}

/// A bucket remembering its last two positions.
#[derive(Clone, Copy, Default)]
pub struct Pair {
    pub cur: i32,
    pub prev: i32,
}

impl Pair {
    #[inline]
    pub(super) fn push(&mut self, v: i32) {
        self.prev = self.cur;
        self.cur = v;
    }
}

/// Starts an encode: the history grows by `src`; `None` when `src` is too short to
/// search (the original then only sets the token count).
pub(super) fn start(g: &mut FastGen, dst: &mut Tokens, src: &[u8]) -> Option<i32> {
    let s = g.add_block(src);
    if src.len() < MIN_NON_LITERAL_BLOCK {
        dst.n = src.len();
        return None;
    }
    Some(s)
}

pub struct L5 {
    g: FastGen,
    table: Vec<i32>,
    b_table: Vec<Pair>,
}

impl FastEnc for L5 {
    fn reset(&mut self) {
        self.g.reset();
    }

    fn encode(&mut self, dst: &mut Tokens, src: &[u8]) {
        let Some(mut s) = start(&mut self.g, dst, src) else {
            return;
        };
        let cur = self.g.cur;
        let src = &self.g.hist[..];
        let (table, b_table) = (&mut self.table[..], &mut self.b_table[..]);
        let mut next_emit = s;
        let s_limit = src.len() as i32 - INPUT_MARGIN;
        let mut cv = load64(src, s);
        'outer: loop {
            let mut next_s = s;
            let mut l: i32 = 0;
            let mut t: i32;
            loop {
                let hs = hash4(cv, TABLE_BITS);
                let hl = hash7(cv, TABLE_BITS);
                s = next_s;
                next_s = s + 1 + ((s - next_emit) >> 6);
                if next_s > s_limit {
                    break 'outer;
                }
                let s_candidate = table[hs];
                let l_candidate = b_table[hl];
                let next = load64(src, next_s);
                table[hs] = s + cur;
                b_table[hl].push(s + cur);
                let nhs = hash4(next, TABLE_BITS);
                let nhl = hash7(next, TABLE_BITS);

                t = l_candidate.cur - cur;
                if s - t < MAX_MATCH_OFFSET {
                    if cv as u32 == load32(src, t) {
                        table[nhs] = next_s + cur;
                        b_table[nhl].push(next_s + cur);
                        let t2 = l_candidate.prev - cur;
                        if s - t2 < MAX_MATCH_OFFSET && cv as u32 == load32(src, t2) {
                            l = matchlen(s + 4, t + 4, src) + 4;
                            let ml1 = matchlen(s + 4, t2 + 4, src) + 4;
                            if ml1 > l {
                                t = t2;
                                l = ml1;
                                break;
                            }
                        }
                        break;
                    }
                    t = l_candidate.prev - cur;
                    if s - t < MAX_MATCH_OFFSET && cv as u32 == load32(src, t) {
                        table[nhs] = next_s + cur;
                        b_table[nhl].push(next_s + cur);
                        break;
                    }
                }

                t = s_candidate - cur;
                if s - t < MAX_MATCH_OFFSET && cv as u32 == load32(src, t) {
                    l = matchlen(s + 4, t + 4, src) + 4;
                    let l_candidate = b_table[nhl];
                    table[nhs] = next_s + cur;
                    b_table[nhl].push(next_s + cur);
                    let mut t2 = l_candidate.cur - cur;
                    if next_s - t2 < MAX_MATCH_OFFSET {
                        if load32(src, t2) == next as u32 {
                            let ml = matchlen(next_s + 4, t2 + 4, src) + 4;
                            if ml > l {
                                t = t2;
                                s = next_s;
                                l = ml;
                                break;
                            }
                        }
                        t2 = l_candidate.prev - cur;
                        if next_s - t2 < MAX_MATCH_OFFSET && load32(src, t2) == next as u32 {
                            let ml = matchlen(next_s + 4, t2 + 4, src) + 4;
                            if ml > l {
                                t = t2;
                                s = next_s;
                                l = ml;
                                break;
                            }
                        }
                    }
                    break;
                }
                cv = next;
            }

            if l == 0 {
                l = matchlen_long(s + 4, t + 4, src) + 4;
            } else if l == 258 {
                l += matchlen_long(s + l, t + l, src);
            }

            let s_at = s + l;
            if l < 30 && s_at < s_limit {
                let e_long = b_table[hash7(load64(src, s_at), TABLE_BITS)].cur;
                let t2 = e_long - cur - l + 2;
                let s2 = s + 2;
                let off = s2 - t2;
                if t2 >= 0 && off < MAX_MATCH_OFFSET && off > 0 {
                    let l2 = matchlen_long(s2, t2, src);
                    if l2 > l {
                        t = t2;
                        l = l2;
                        s = s2;
                    }
                }
            }

            (s, l, _) = emit(dst, src, s, t, l, next_emit);
            next_emit = s;
            if next_s >= s {
                s = next_s + 1;
            }
            if s >= s_limit {
                break 'outer;
            }

            let mut i = s - l + 1;
            if i < s - 1 {
                let mut cv = load64(src, i);
                let mut e = i + cur;
                table[hash4(cv, TABLE_BITS)] = e;
                b_table[hash7(cv, TABLE_BITS)].push(e);
                cv >>= 8;
                e += 1;
                b_table[hash7(cv, TABLE_BITS)].push(e);
                cv >>= 8;
                e += 1;
                table[hash4(cv, TABLE_BITS)] = e;
                i += 4;
                while i < s - 1 {
                    let cv = load64(src, i);
                    let e = i + cur;
                    b_table[hash7(cv, TABLE_BITS)].push(e);
                    table[hash4(cv >> 8, TABLE_BITS)] = e + 1;
                    i += 3;
                }
            }

            let x = load64(src, s - 1);
            let o = cur + s - 1;
            table[hash4(x, TABLE_BITS)] = o;
            b_table[hash7(x, TABLE_BITS)].push(o);
            cv = x >> 8;
        }
        emit_remainder(dst, src, next_emit);
    }
}

pub struct L6 {
    g: FastGen,
    table: Vec<i32>,
    b_table: Vec<Pair>,
}

impl FastEnc for L6 {
    fn reset(&mut self) {
        self.g.reset();
    }

    fn encode(&mut self, dst: &mut Tokens, src: &[u8]) {
        let Some(mut s) = start(&mut self.g, dst, src) else {
            return;
        };
        let cur = self.g.cur;
        let src = &self.g.hist[..];
        let (table, b_table) = (&mut self.table[..], &mut self.b_table[..]);
        let mut next_emit = s;
        let s_limit = src.len() as i32 - INPUT_MARGIN;
        let mut cv = load64(src, s);
        let mut repeat: i32 = 1;
        'outer: loop {
            let mut next_s = s;
            let mut l: i32 = 0;
            let mut t: i32;
            loop {
                let hs = hash4(cv, TABLE_BITS);
                let hl = hash7(cv, TABLE_BITS);
                s = next_s;
                next_s = s + 1 + ((s - next_emit) >> 7);
                if next_s > s_limit {
                    break 'outer;
                }
                let s_candidate = table[hs];
                let l_candidate = b_table[hl];
                let next = load64(src, next_s);
                table[hs] = s + cur;
                b_table[hl].push(s + cur);
                let nhs = hash4(next, TABLE_BITS);
                let nhl = hash7(next, TABLE_BITS);

                t = l_candidate.cur - cur;
                if s - t < MAX_MATCH_OFFSET {
                    if cv as u32 == load32(src, t) {
                        table[nhs] = next_s + cur;
                        b_table[nhl].push(next_s + cur);
                        let t2 = l_candidate.prev - cur;
                        if s - t2 < MAX_MATCH_OFFSET && cv as u32 == load32(src, t2) {
                            l = matchlen(s + 4, t + 4, src) + 4;
                            let ml1 = matchlen(s + 4, t2 + 4, src) + 4;
                            if ml1 > l {
                                t = t2;
                                l = ml1;
                                break;
                            }
                        }
                        break;
                    }
                    t = l_candidate.prev - cur;
                    if s - t < MAX_MATCH_OFFSET && cv as u32 == load32(src, t) {
                        table[nhs] = next_s + cur;
                        b_table[nhl].push(next_s + cur);
                        break;
                    }
                }

                t = s_candidate - cur;
                if s - t < MAX_MATCH_OFFSET && cv as u32 == load32(src, t) {
                    l = matchlen(s + 4, t + 4, src) + 4;
                    let l_candidate = b_table[nhl];
                    table[nhs] = next_s + cur;
                    b_table[nhl].push(next_s + cur);
                    // a repeat of the last match's distance, one byte on
                    let mut t2 = s - repeat + 1;
                    if load32(src, t2) == (cv >> 8) as u32 {
                        let ml = matchlen(s + 5, t2 + 4, src) + 4;
                        if ml > l {
                            t = t2;
                            l = ml;
                            s += 1;
                            break;
                        }
                    }
                    t2 = l_candidate.cur - cur;
                    if next_s - t2 < MAX_MATCH_OFFSET {
                        if load32(src, t2) == next as u32 {
                            let ml = matchlen(next_s + 4, t2 + 4, src) + 4;
                            if ml > l {
                                t = t2;
                                s = next_s;
                                l = ml;
                            }
                        }
                        t2 = l_candidate.prev - cur;
                        if next_s - t2 < MAX_MATCH_OFFSET && load32(src, t2) == next as u32 {
                            let ml = matchlen(next_s + 4, t2 + 4, src) + 4;
                            if ml > l {
                                t = t2;
                                s = next_s;
                                l = ml;
                                break;
                            }
                        }
                    }
                    break;
                }
                cv = next;
            }

            if l == 0 {
                l = matchlen_long(s + 4, t + 4, src) + 4;
            } else if l == 258 {
                l += matchlen_long(s + l, t + l, src);
            }

            let s_at = s + l;
            if s_at < s_limit {
                let e_long = b_table[hash7(load64(src, s_at), TABLE_BITS)];
                let mut t2 = e_long.cur - cur - l + 2;
                let s2 = s + 2;
                let off = s2 - t2;
                if off < MAX_MATCH_OFFSET {
                    if off > 0 && t2 >= 0 {
                        let l2 = matchlen_long(s2, t2, src);
                        if l2 > l {
                            t = t2;
                            l = l2;
                            s = s2;
                        }
                    }
                    t2 = e_long.prev - cur - l + 2;
                    let off = s2 - t2;
                    if off > 0 && off < MAX_MATCH_OFFSET && t2 >= 0 {
                        let l2 = matchlen_long(s2, t2, src);
                        if l2 > l {
                            t = t2;
                            l = l2;
                            s = s2;
                        }
                    }
                }
            }

            let (s0, t0, l0) = (s, t, l);
            (s, _, _) = emit(dst, src, s0, t0, l0, next_emit);
            // the distance, after extending backwards (which keeps it)
            repeat = s0 - t0;
            next_emit = s;
            if next_s >= s {
                s = next_s + 1;
            }
            if s >= s_limit {
                let mut i = next_s + 1;
                while i < src.len() as i32 - 8 {
                    let cv = load64(src, i);
                    table[hash4(cv, TABLE_BITS)] = i + cur;
                    b_table[hash7(cv, TABLE_BITS)].push(i + cur);
                    i += 2;
                }
                break 'outer;
            }
            let mut i = next_s + 1;
            while i < s - 1 {
                let cv = load64(src, i);
                let e = i + cur;
                let (h, h2) = (hash7(cv, TABLE_BITS), hash7(cv >> 8, TABLE_BITS));
                table[hash4(cv, TABLE_BITS)] = e;
                b_table[h].push(e);
                b_table[h2].push(e + 1);
                i += 2;
            }
            cv = load64(src, s);
        }
        emit_remainder(dst, src, next_emit);
    }
}
