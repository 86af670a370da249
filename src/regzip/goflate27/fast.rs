//! Go 1.27's fast match finders of levels 1–6 (klauspost/compress style): each
//! encodes one block of at most 65 535 bytes into tokens, finding matches through
//! hash tables of positions into a history that keeps the previous 32 KiB, skipping
//! ahead faster the longer no match turns up. This file holds what they share
//! (history, hashes, match length) and levels 1–3; levels 4–6 are in `fast_long`.
//!
//! Positions are `i32` as in Go, stored in tables offset by `cur` (which grows as the
//! history moves down and is rebased before it nears 2^31), so the same arithmetic
//! and the same edge decisions (`<` vs `<=` against the 32 KiB window) carry over.

use super::super::deflate::tokens::Tokens;
use super::fast_long::{FastL4, FastL5, FastL6};

pub(super) const MAX_MATCH_OFFSET: i32 = 1 << 15;
pub(super) const MAX_MATCH_LENGTH: i32 = 258;
pub(super) const MAX_STORE_BLOCK_SIZE: i32 = 65535;
pub(super) const TABLE_BITS: u32 = 15;
pub(super) const TABLE_SIZE: usize = 1 << TABLE_BITS;
pub(super) const HASH_LONG_BYTES: u32 = 7;
pub(super) const INPUT_MARGIN: i32 = 12 - 1;
pub(super) const MIN_NON_LITERAL_BLOCK_SIZE: usize = 1 + 1 + INPUT_MARGIN as usize;
const ALLOC_HISTORY: usize = MAX_STORE_BLOCK_SIZE as usize * 5;
pub(super) const BUFFER_RESET: i32 =
    ((1u32 << 31) - ALLOC_HISTORY as u32 - MAX_STORE_BLOCK_SIZE as u32 - 1) as i32;

const PRIME3: u32 = 506_832_829;
const PRIME4: u32 = 2_654_435_761;
const PRIME5: u64 = 889_523_592_379;
const PRIME6: u64 = 227_718_039_650_203;
const PRIME7: u64 = 58_295_818_150_454_627;
const PRIME8: u64 = 0xcf1b_bcdc_b7a5_6463;

/// Hash of the low `n` bytes of `u` into `b` bits (Go's `hashLen`).
#[inline(always)]
pub(super) fn hash_len(u: u64, b: u32, n: u32) -> u32 {
    match n {
        3 => ((u << 8) as u32).wrapping_mul(PRIME3) >> (32 - b),
        5 => ((u << (64 - 40)).wrapping_mul(PRIME5) >> (64 - b)) as u32,
        6 => ((u << (64 - 48)).wrapping_mul(PRIME6) >> (64 - b)) as u32,
        7 => ((u << (64 - 56)).wrapping_mul(PRIME7) >> (64 - b)) as u32,
        8 => (u.wrapping_mul(PRIME8) >> (64 - b)) as u32,
        _ => (u as u32).wrapping_mul(PRIME4) >> (32 - b),
    }
}

#[inline(always)]
pub(super) fn load32(b: &[u8], i: i32) -> u32 {
    u32::from_le_bytes(b[i as usize..i as usize + 4].try_into().unwrap())
}

#[inline(always)]
pub(super) fn load64(b: &[u8], i: i32) -> u64 {
    u64::from_le_bytes(b[i as usize..i as usize + 8].try_into().unwrap())
}

/// Length of the common prefix of `a` and `b`; `a` is the shorter.
#[inline]
pub(super) fn match_len(a: &[u8], b: &[u8]) -> i32 {
    let n = a.len();
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().unwrap())
            ^ u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        if x != 0 {
            return (i + (x.trailing_zeros() / 8) as usize) as i32;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i as i32
}

/// The history shared by the fast levels: the current block after (up to) the
/// previous 32 KiB, and `cur`, the offset of position 0 in the tables.
pub(super) struct FastGen {
    pub hist: Vec<u8>,
    /// Go's `cap(hist)`: 0 until the first block, then `ALLOC_HISTORY`.
    cap: usize,
    pub cur: i32,
}

impl FastGen {
    fn new() -> FastGen {
        FastGen {
            hist: Vec::new(),
            cap: 0,
            cur: MAX_STORE_BLOCK_SIZE,
        }
    }

    /// Appends `src` to the history (moving the last 32 KiB down when full);
    /// returns where `src` starts in it.
    pub fn add_block(&mut self, src: &[u8]) -> i32 {
        if self.hist.len() + src.len() > self.cap {
            if self.cap == 0 {
                self.hist = Vec::with_capacity(ALLOC_HISTORY);
                self.cap = ALLOC_HISTORY;
            } else {
                let offset = self.hist.len() as i32 - MAX_MATCH_OFFSET;
                self.hist
                    .copy_within(offset as usize..(offset + MAX_MATCH_OFFSET) as usize, 0);
                self.cur += offset;
                self.hist.truncate(MAX_MATCH_OFFSET as usize);
            }
        }
        let s = self.hist.len() as i32;
        self.hist.extend_from_slice(src);
        s
    }

    /// Matches with earlier data become impossible (Go's `fastGen.reset`).
    fn reset(&mut self) {
        if self.cap < ALLOC_HISTORY {
            self.hist = Vec::with_capacity(ALLOC_HISTORY);
            self.cap = ALLOC_HISTORY;
        }
        if self.cur <= BUFFER_RESET {
            self.cur += MAX_MATCH_OFFSET + self.hist.len() as i32;
        }
        self.hist.clear();
    }

    /// Match length at `s` against `t`, at most 254.
    #[inline]
    pub fn match_len_limited(&self, s: i32, t: i32) -> i32 {
        let src = &self.hist;
        let end = ((s + MAX_MATCH_LENGTH - 4) as usize).min(src.len());
        match_len(&src[s as usize..end], &src[t as usize..])
    }

    /// Match length at `s` against `t` (`s` > `t`), unbounded.
    #[inline]
    pub fn match_len_long(&self, s: i32, t: i32) -> i32 {
        match_len(&self.hist[s as usize..], &self.hist[t as usize..])
    }

    /// Go's guard against `cur` wrapping: what to do to the tables before a block.
    pub fn rebase(&mut self) -> Rebase {
        if self.cur < BUFFER_RESET {
            return Rebase::Keep;
        }
        if self.hist.is_empty() {
            self.cur = MAX_MATCH_OFFSET;
            return Rebase::Clear;
        }
        let min_off = self.cur + self.hist.len() as i32 - MAX_MATCH_OFFSET;
        let cur = self.cur;
        self.cur = MAX_MATCH_OFFSET;
        Rebase::Shift { min_off, cur }
    }
}

/// Table maintenance before a block (see [`FastGen::rebase`]).
pub(super) enum Rebase {
    Keep,
    Clear,
    /// Offsets at or below `min_off` become 0, the others are moved by `cur`.
    Shift {
        min_off: i32,
        cur: i32,
    },
}

impl Rebase {
    /// Applies the rebase to a one-entry table.
    pub fn table(&self, table: &mut [i32]) {
        match *self {
            Rebase::Keep => {}
            Rebase::Clear => table.fill(0),
            Rebase::Shift { .. } => table.iter_mut().for_each(|v| *v = self.shift(*v)),
        }
    }

    /// Applies the rebase to a two-entry table; when `together` (levels 5 and 6) a
    /// dropped current entry drops the previous one too.
    pub fn prev_table(&self, table: &mut [(i32, i32)], together: bool) {
        match *self {
            Rebase::Keep => {}
            Rebase::Clear => table.fill((0, 0)),
            Rebase::Shift { .. } => {
                for (cur, prev) in table.iter_mut() {
                    let c = self.shift(*cur);
                    *prev = if together && c == 0 {
                        0
                    } else {
                        self.shift(*prev)
                    };
                    *cur = c;
                }
            }
        }
    }

    fn shift(&self, v: i32) -> i32 {
        match *self {
            Rebase::Shift { min_off, cur } if v > min_off => v - cur + MAX_MATCH_OFFSET,
            _ => 0,
        }
    }
}

/// Emits the literals `hist[from..to]`.
#[inline]
pub(super) fn emit_literals(dst: &mut Tokens, hist: &[u8], from: i32, to: i32) {
    dst.add_literals(&hist[from as usize..to as usize]);
}

/// One of the six fast encoders.
pub(super) enum FastEnc {
    L1(Box<FastL1>),
    L2(Box<FastL2>),
    L3(Box<FastL3>),
    L4(Box<FastL4>),
    L5(Box<FastL5>),
    L6(Box<FastL6>),
}

impl FastEnc {
    pub fn new(level: i32) -> FastEnc {
        match level {
            1 => FastEnc::L1(Box::new(FastL1 {
                g: FastGen::new(),
                table: vec![0; TABLE_SIZE],
            })),
            2 => FastEnc::L2(Box::new(FastL2 {
                g: FastGen::new(),
                table: vec![0; L2_TABLE_SIZE],
            })),
            3 => FastEnc::L3(Box::new(FastL3 {
                g: FastGen::new(),
                table: vec![(0, 0); L3_TABLE_SIZE],
            })),
            4 => FastEnc::L4(Box::new(FastL4::new(FastGen::new()))),
            5 => FastEnc::L5(Box::new(FastL5::new(FastGen::new()))),
            _ => FastEnc::L6(Box::new(FastL6::new(FastGen::new()))),
        }
    }

    /// Tokens for `src` (one block) into `dst`.
    pub fn encode(&mut self, dst: &mut Tokens, src: &[u8]) {
        match self {
            FastEnc::L1(e) => e.encode(dst, src),
            FastEnc::L2(e) => e.encode(dst, src),
            FastEnc::L3(e) => e.encode(dst, src),
            FastEnc::L4(e) => e.encode(dst, src),
            FastEnc::L5(e) => e.encode(dst, src),
            FastEnc::L6(e) => e.encode(dst, src),
        }
    }

    pub fn reset(&mut self) {
        match self {
            FastEnc::L1(e) => e.g.reset(),
            FastEnc::L2(e) => e.g.reset(),
            FastEnc::L3(e) => e.g.reset(),
            FastEnc::L4(e) => e.g.reset(),
            FastEnc::L5(e) => e.g.reset(),
            FastEnc::L6(e) => e.g.reset(),
        }
    }
}

/// Level 1: one 32 K-entry table of 5-byte hashes, sparse indexing.
pub(super) struct FastL1 {
    g: FastGen,
    table: Vec<i32>,
}

impl FastL1 {
    fn encode(&mut self, dst: &mut Tokens, src: &[u8]) {
        const HB: u32 = 5;
        self.g.rebase().table(&mut self.table);
        let mut s = self.g.add_block(src);
        if src.len() < MIN_NON_LITERAL_BLOCK_SIZE {
            dst.n = src.len();
            return;
        }
        let g = &self.g;
        let table = &mut self.table;
        let cur = g.cur;
        let src = &g.hist[..];
        let mut next_emit = s;
        let s_limit = src.len() as i32 - INPUT_MARGIN;
        let mut cv = load64(src, s);
        'outer: loop {
            const SKIP_LOG: i32 = 5;
            const DO_EVERY: i32 = 2;
            let mut next_s;
            let mut t;
            loop {
                let mut next_hash = hash_len(cv, TABLE_BITS, HB) as usize;
                let mut candidate = table[next_hash];
                next_s = s + DO_EVERY + ((s - next_emit) >> SKIP_LOG);
                if next_s > s_limit {
                    break 'outer;
                }
                let mut now = load64(src, next_s);
                table[next_hash] = s + cur;
                next_hash = hash_len(now, TABLE_BITS, HB) as usize;
                t = candidate - cur;
                if s - t < MAX_MATCH_OFFSET && cv as u32 == load32(src, t) {
                    table[next_hash] = next_s + cur;
                    break;
                }
                cv = now;
                s = next_s;
                next_s += 1;
                candidate = table[next_hash];
                now >>= 8;
                table[next_hash] = s + cur;
                t = candidate - cur;
                if s - t < MAX_MATCH_OFFSET && cv as u32 == load32(src, t) {
                    table[next_hash] = next_s + cur;
                    break;
                }
                cv = now;
                s = next_s;
            }
            loop {
                let mut l = g.match_len_long(s + 4, t + 4) + 4;
                while t > 0 && s > next_emit && src[(t - 1) as usize] == src[(s - 1) as usize] {
                    s -= 1;
                    t -= 1;
                    l += 1;
                }
                if next_emit < s {
                    emit_literals(dst, src, next_emit, s);
                }
                dst.add_match_long(l, (s - t - 1) as u32);
                s += l;
                next_emit = s;
                if next_s >= s {
                    s = next_s + 1;
                }
                if s >= s_limit {
                    if ((s + l + 8) as usize) < src.len() {
                        let cv = load64(src, s);
                        table[hash_len(cv, TABLE_BITS, HB) as usize] = s + cur;
                    }
                    break 'outer;
                }
                let mut x = load64(src, s - 2);
                let o = cur + s - 2;
                table[hash_len(x, TABLE_BITS, HB) as usize] = o;
                x >>= 16;
                let curr_hash = hash_len(x, TABLE_BITS, HB) as usize;
                let candidate = table[curr_hash];
                table[curr_hash] = o + 2;
                t = candidate - cur;
                if s - t > MAX_MATCH_OFFSET || x as u32 != load32(src, t) {
                    cv = x >> 8;
                    s += 1;
                    break;
                }
            }
        }
        if (next_emit as usize) < src.len() && dst.n != 0 {
            emit_literals(dst, src, next_emit, src.len() as i32);
        }
    }
}

const L2_TABLE_BITS: u32 = 17;
const L2_TABLE_SIZE: usize = 1 << L2_TABLE_BITS;

/// Level 2: one 128 K-entry table of 5-byte hashes, indexing about every 2 bytes.
pub(super) struct FastL2 {
    g: FastGen,
    table: Vec<i32>,
}

impl FastL2 {
    fn encode(&mut self, dst: &mut Tokens, src: &[u8]) {
        const HB: u32 = 5;
        const TB: u32 = L2_TABLE_BITS;
        self.g.rebase().table(&mut self.table);
        let mut s = self.g.add_block(src);
        if src.len() < MIN_NON_LITERAL_BLOCK_SIZE {
            dst.n = src.len();
            return;
        }
        let g = &self.g;
        let table = &mut self.table;
        let cur = g.cur;
        let src = &g.hist[..];
        let mut next_emit = s;
        let s_limit = src.len() as i32 - INPUT_MARGIN;
        let mut cv = load64(src, s);
        'outer: loop {
            const SKIP_LOG: i32 = 5;
            const DO_EVERY: i32 = 2;
            let mut next_s = s;
            let mut candidate;
            loop {
                let mut next_hash = hash_len(cv, TB, HB) as usize;
                s = next_s;
                next_s = s + DO_EVERY + ((s - next_emit) >> SKIP_LOG);
                if next_s > s_limit {
                    break 'outer;
                }
                candidate = table[next_hash];
                let mut now = load64(src, next_s);
                table[next_hash] = s + cur;
                next_hash = hash_len(now, TB, HB) as usize;
                let offset = s - (candidate - cur);
                if offset < MAX_MATCH_OFFSET && cv as u32 == load32(src, candidate - cur) {
                    table[next_hash] = next_s + cur;
                    break;
                }
                cv = now;
                s = next_s;
                next_s += 1;
                candidate = table[next_hash];
                now >>= 8;
                table[next_hash] = s + cur;
                let offset = s - (candidate - cur);
                if offset < MAX_MATCH_OFFSET && cv as u32 == load32(src, candidate - cur) {
                    break;
                }
                cv = now;
            }
            loop {
                let mut t = candidate - cur;
                let mut l = g.match_len_long(s + 4, t + 4) + 4;
                while t > 0 && s > next_emit && src[(t - 1) as usize] == src[(s - 1) as usize] {
                    s -= 1;
                    t -= 1;
                    l += 1;
                }
                if next_emit < s {
                    emit_literals(dst, src, next_emit, s);
                }
                dst.add_match_long(l, (s - t - 1) as u32);
                s += l;
                next_emit = s;
                if next_s >= s {
                    s = next_s + 1;
                }
                if s >= s_limit {
                    if ((s + l + 8) as usize) < src.len() {
                        let cv = load64(src, s);
                        table[hash_len(cv, TB, HB) as usize] = s + cur;
                    }
                    break 'outer;
                }
                let mut i = s - l + 2;
                while i < s - 5 {
                    let mut x = load64(src, i);
                    table[hash_len(x, TB, HB) as usize] = cur + i;
                    x >>= 16;
                    table[hash_len(x, TB, HB) as usize] = cur + i + 2;
                    x >>= 16;
                    table[hash_len(x, TB, HB) as usize] = cur + i + 4;
                    i += 7;
                }
                let x = load64(src, s - 2);
                let o = cur + s - 2;
                table[hash_len(x, TB, HB) as usize] = o;
                table[hash_len(x >> 8, TB, HB) as usize] = o + 1;
                let curr_hash = hash_len(x >> 16, TB, HB) as usize;
                candidate = table[curr_hash];
                table[curr_hash] = o + 2;
                let offset = s - (candidate - cur);
                if offset > MAX_MATCH_OFFSET || (x >> 16) as u32 != load32(src, candidate - cur) {
                    cv = x >> 24;
                    s += 1;
                    break;
                }
            }
        }
        if (next_emit as usize) < src.len() && dst.n != 0 {
            emit_literals(dst, src, next_emit, src.len() as i32);
        }
    }
}

const L3_TABLE_BITS: u32 = 16;
const L3_TABLE_SIZE: usize = 1 << L3_TABLE_BITS;

/// Level 3: a 64 K-entry table of 5-byte hashes with two candidates (current,
/// previous) per entry.
pub(super) struct FastL3 {
    g: FastGen,
    /// (current, previous) offsets.
    table: Vec<(i32, i32)>,
}

impl FastL3 {
    fn encode(&mut self, dst: &mut Tokens, src: &[u8]) {
        const HB: u32 = 5;
        const TB: u32 = L3_TABLE_BITS;
        self.g.rebase().prev_table(&mut self.table, false);
        let mut s = self.g.add_block(src);
        if src.len() < MIN_NON_LITERAL_BLOCK_SIZE {
            dst.n = src.len();
            return;
        }
        let g = &self.g;
        let table = &mut self.table;
        let cur = g.cur;
        let src = &g.hist[..];
        let mut next_emit = s;
        let s_limit = src.len() as i32 - INPUT_MARGIN;
        let mut cv = load64(src, s);
        'outer: loop {
            const SKIP_LOG: i32 = 7;
            let mut next_s = s;
            let mut candidate;
            loop {
                let next_hash = hash_len(cv, TB, HB) as usize;
                s = next_s;
                next_s = s + 1 + ((s - next_emit) >> SKIP_LOG);
                if next_s > s_limit {
                    break 'outer;
                }
                let candidates = table[next_hash];
                let now = load64(src, next_s);
                let min_offset = cur + s - (MAX_MATCH_OFFSET - 4);
                table[next_hash] = (s + cur, candidates.0);
                candidate = candidates.0;
                if candidate < min_offset {
                    cv = now;
                    continue;
                }
                if cv as u32 == load32(src, candidate - cur) {
                    if candidates.1 < min_offset || cv as u32 != load32(src, candidates.1 - cur) {
                        break;
                    }
                    let offset = s - (candidate - cur);
                    let o2 = s - (candidates.1 - cur);
                    let l1 = match_len(&src[(s + 4) as usize..], &src[(s - offset + 4) as usize..]);
                    let l2 = match_len(&src[(s + 4) as usize..], &src[(s - o2 + 4) as usize..]);
                    if l2 > l1 {
                        candidate = candidates.1;
                    }
                    break;
                } else {
                    candidate = candidates.1;
                    if candidate > min_offset && cv as u32 == load32(src, candidate - cur) {
                        break;
                    }
                }
                cv = now;
            }
            loop {
                let mut t = candidate - cur;
                let mut l = g.match_len_long(s + 4, t + 4) + 4;
                while t > 0 && s > next_emit && src[(t - 1) as usize] == src[(s - 1) as usize] {
                    s -= 1;
                    t -= 1;
                    l += 1;
                }
                if next_emit < s {
                    emit_literals(dst, src, next_emit, s);
                }
                dst.add_match_long(l, (s - t - 1) as u32);
                s += l;
                next_emit = s;
                if next_s >= s {
                    s = next_s + 1;
                }
                if s >= s_limit {
                    t += l;
                    if ((t + 8) as usize) < src.len() && t > 0 {
                        let cv = load64(src, t);
                        let h = hash_len(cv, TB, HB) as usize;
                        table[h] = (cur + t, table[h].0);
                    }
                    break 'outer;
                }
                let mut i = s - l + 2;
                while i < s - 5 {
                    let h = hash_len(load64(src, i), TB, HB) as usize;
                    table[h] = (cur + i, table[h].0);
                    i += 6;
                }
                let mut x = load64(src, s - 2);
                let h = hash_len(x, TB, HB) as usize;
                table[h] = (cur + s - 2, table[h].0);
                x >>= 8;
                let h = hash_len(x, TB, HB) as usize;
                table[h] = (cur + s - 1, table[h].0);
                x >>= 8;
                let curr_hash = hash_len(x, TB, HB) as usize;
                let candidates = table[curr_hash];
                cv = x;
                table[curr_hash] = (s + cur, candidates.0);
                candidate = candidates.0;
                let min_offset = cur + s - (MAX_MATCH_OFFSET - 4);
                if candidate > min_offset {
                    if cv as u32 == load32(src, candidate - cur) {
                        continue;
                    }
                    candidate = candidates.1;
                    if candidate > min_offset && cv as u32 == load32(src, candidate - cur) {
                        continue;
                    }
                }
                cv = x >> 8;
                s += 1;
                break;
            }
        }
        if (next_emit as usize) < src.len() && dst.n != 0 {
            emit_literals(dst, src, next_emit, src.len() as i32);
        }
    }
}
