//! klauspost's fastest levels, 1–4 (`level1.go`…`level4.go`): one-probe greedy match
//! finders. 1 and 2 hash 5 bytes into one table (2^15 and 2^17 buckets) and skip ahead
//! faster on misses; 3 keeps two candidates per bucket and picks the longer match; 4
//! has a 4-byte and a 7-byte table and checks whether the next position matches longer.
//! After a match each level re-hashes a few positions inside it and immediately tries
//! the match's end again. The shared history, hashing and emitting are in `fast`.

use super::super::deflate::tokens::Tokens;
use super::fast::{
    B_TABLE_BITS, FastEnc, FastGen, INPUT_MARGIN, MAX_MATCH_OFFSET, Pair, TABLE_BITS, emit,
    emit_remainder, hash4, hash5, hash7, load32, load64, match_len, matchlen_long, start,
};

pub struct L1 {
    pub(super) g: FastGen,
    pub(super) table: Vec<i32>,
}

impl FastEnc for L1 {
    fn reset(&mut self) {
        self.g.reset();
    }

    fn encode(&mut self, dst: &mut Tokens, src: &[u8]) {
        let Some(mut s) = start(&mut self.g, dst, src) else {
            return;
        };
        let cur = self.g.cur;
        let src = &self.g.hist[..];
        let table = &mut self.table[..];
        let h = |u: u64| hash5(u, TABLE_BITS);
        let mut next_emit = s;
        let s_limit = src.len() as i32 - INPUT_MARGIN;
        let mut cv = load64(src, s);
        'outer: loop {
            let mut next_s;
            let mut candidate;
            loop {
                let nh = h(cv);
                candidate = table[nh];
                next_s = s + 2 + ((s - next_emit) >> 5);
                if next_s > s_limit {
                    break 'outer;
                }
                let mut now = load64(src, next_s);
                table[nh] = s + cur;
                let nh = h(now);
                let offset = s - (candidate - cur);
                if offset < MAX_MATCH_OFFSET && cv as u32 == load32(src, candidate - cur) {
                    table[nh] = next_s + cur;
                    break;
                }
                cv = now;
                s = next_s;
                next_s += 1;
                candidate = table[nh];
                now >>= 8;
                table[nh] = s + cur;
                let offset = s - (candidate - cur);
                if offset < MAX_MATCH_OFFSET && cv as u32 == load32(src, candidate - cur) {
                    table[nh] = next_s + cur;
                    break;
                }
                cv = now;
                s = next_s;
            }
            loop {
                let t = candidate - cur;
                let l = matchlen_long(s + 4, t + 4, src) + 4;
                let (end, l, _) = emit(dst, src, s, t, l, next_emit);
                s = end;
                next_emit = s;
                if next_s >= s {
                    s = next_s + 1;
                }
                if s >= s_limit {
                    if ((s + l + 8) as usize) < src.len() {
                        table[h(load64(src, s))] = s + cur;
                    }
                    break 'outer;
                }
                let mut x = load64(src, s - 2);
                let o = cur + s - 2;
                table[h(x)] = o;
                x >>= 16;
                let ch = h(x);
                candidate = table[ch];
                table[ch] = o + 2;
                let offset = s - (candidate - cur);
                if offset > MAX_MATCH_OFFSET || x as u32 != load32(src, candidate - cur) {
                    cv = x >> 8;
                    s += 1;
                    break;
                }
            }
        }
        emit_remainder(dst, src, next_emit);
    }
}

pub struct L2 {
    pub(super) g: FastGen,
    pub(super) table: Vec<i32>,
}

impl FastEnc for L2 {
    fn reset(&mut self) {
        self.g.reset();
    }

    fn encode(&mut self, dst: &mut Tokens, src: &[u8]) {
        let Some(mut s) = start(&mut self.g, dst, src) else {
            return;
        };
        let cur = self.g.cur;
        let src = &self.g.hist[..];
        let table = &mut self.table[..];
        let h = |u: u64| hash5(u, B_TABLE_BITS);
        let mut next_emit = s;
        let s_limit = src.len() as i32 - INPUT_MARGIN;
        let mut cv = load64(src, s);
        'outer: loop {
            let mut next_s = s;
            let mut candidate;
            loop {
                let nh = h(cv);
                s = next_s;
                next_s = s + 2 + ((s - next_emit) >> 5);
                if next_s > s_limit {
                    break 'outer;
                }
                candidate = table[nh];
                let mut now = load64(src, next_s);
                table[nh] = s + cur;
                let nh = h(now);
                let offset = s - (candidate - cur);
                if offset < MAX_MATCH_OFFSET && cv as u32 == load32(src, candidate - cur) {
                    table[nh] = next_s + cur;
                    break;
                }
                cv = now;
                s = next_s;
                next_s += 1;
                candidate = table[nh];
                now >>= 8;
                table[nh] = s + cur;
                let offset = s - (candidate - cur);
                if offset < MAX_MATCH_OFFSET && cv as u32 == load32(src, candidate - cur) {
                    break;
                }
                cv = now;
            }
            loop {
                let t = candidate - cur;
                let l = matchlen_long(s + 4, t + 4, src) + 4;
                let (end, l, _) = emit(dst, src, s, t, l, next_emit);
                s = end;
                next_emit = s;
                if next_s >= s {
                    s = next_s + 1;
                }
                if s >= s_limit {
                    if ((s + l + 8) as usize) < src.len() {
                        table[h(load64(src, s))] = s + cur;
                    }
                    break 'outer;
                }
                let mut i = s - l + 2;
                while i < s - 5 {
                    let mut x = load64(src, i);
                    table[h(x)] = cur + i;
                    x >>= 16;
                    table[h(x)] = cur + i + 2;
                    x >>= 16;
                    table[h(x)] = cur + i + 4;
                    i += 7;
                }
                let x = load64(src, s - 2);
                let o = cur + s - 2;
                table[h(x)] = o;
                table[h(x >> 8)] = o + 1;
                let ch = h(x >> 16);
                candidate = table[ch];
                table[ch] = o + 2;
                let offset = s - (candidate - cur);
                if offset > MAX_MATCH_OFFSET || (x >> 16) as u32 != load32(src, candidate - cur) {
                    cv = x >> 24;
                    s += 1;
                    break;
                }
            }
        }
        emit_remainder(dst, src, next_emit);
    }
}

pub struct L3 {
    pub(super) g: FastGen,
    pub(super) table: Vec<Pair>,
}

impl FastEnc for L3 {
    fn reset(&mut self) {
        self.g.reset();
    }

    fn encode(&mut self, dst: &mut Tokens, src: &[u8]) {
        let Some(mut s) = start(&mut self.g, dst, src) else {
            return;
        };
        let cur = self.g.cur;
        let src = &self.g.hist[..];
        let table = &mut self.table[..];
        let h = |u: u64| hash5(u, 16);
        let mut next_emit = s;
        let s_limit = src.len() as i32 - INPUT_MARGIN;
        let mut cv = load64(src, s);
        'outer: loop {
            let mut next_s = s;
            let mut candidate;
            loop {
                let nh = h(cv);
                s = next_s;
                next_s = s + 1 + ((s - next_emit) >> 7);
                if next_s > s_limit {
                    break 'outer;
                }
                let candidates = table[nh];
                let now = load64(src, next_s);
                let min_offset = cur + s - (MAX_MATCH_OFFSET - 4);
                table[nh] = Pair {
                    prev: candidates.cur,
                    cur: s + cur,
                };
                candidate = candidates.cur;
                if candidate < min_offset {
                    cv = now;
                    continue;
                }
                if cv as u32 == load32(src, candidate - cur) {
                    if candidates.prev < min_offset
                        || cv as u32 != load32(src, candidates.prev - cur)
                    {
                        break;
                    }
                    let offset = s - (candidate - cur);
                    let o2 = s - (candidates.prev - cur);
                    let a = &src[s as usize + 4..];
                    let l1 = match_len(a, &src[(s - offset + 4) as usize..]);
                    let l2 = match_len(a, &src[(s - o2 + 4) as usize..]);
                    if l2 > l1 {
                        candidate = candidates.prev;
                    }
                    break;
                } else {
                    candidate = candidates.prev;
                    if candidate > min_offset && cv as u32 == load32(src, candidate - cur) {
                        break;
                    }
                }
                cv = now;
            }
            loop {
                let t = candidate - cur;
                let l = matchlen_long(s + 4, t + 4, src) + 4;
                let (end, l, t) = emit(dst, src, s, t, l, next_emit);
                s = end;
                next_emit = s;
                if next_s >= s {
                    s = next_s + 1;
                }
                if s >= s_limit {
                    let t = t + l;
                    if ((t + 8) as usize) < src.len() && t > 0 {
                        table[h(load64(src, t))].push(cur + t);
                    }
                    break 'outer;
                }
                let mut i = s - l + 2;
                while i < s - 5 {
                    table[h(load64(src, i))].push(cur + i);
                    i += 6;
                }
                let mut x = load64(src, s - 2);
                table[h(x)].push(cur + s - 2);
                x >>= 8;
                table[h(x)].push(cur + s - 1);
                x >>= 8;
                let ch = h(x);
                let candidates = table[ch];
                cv = x;
                table[ch] = Pair {
                    prev: candidates.cur,
                    cur: s + cur,
                };
                candidate = candidates.cur;
                let min_offset = cur + s - (MAX_MATCH_OFFSET - 4);
                if candidate > min_offset {
                    if cv as u32 == load32(src, candidate - cur) {
                        continue;
                    }
                    candidate = candidates.prev;
                    if candidate > min_offset && cv as u32 == load32(src, candidate - cur) {
                        continue;
                    }
                }
                cv = x >> 8;
                s += 1;
                break;
            }
        }
        emit_remainder(dst, src, next_emit);
    }
}

pub struct L4 {
    pub(super) g: FastGen,
    pub(super) table: Vec<i32>,
    pub(super) b_table: Vec<i32>,
}

impl FastEnc for L4 {
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
        let hs = |u: u64| hash4(u, TABLE_BITS);
        let hl = |u: u64| hash7(u, TABLE_BITS);
        let mut next_emit = s;
        let s_limit = src.len() as i32 - INPUT_MARGIN;
        let mut cv = load64(src, s);
        'outer: loop {
            let mut next_s = s;
            let mut t;
            loop {
                let (nhs, nhl) = (hs(cv), hl(cv));
                s = next_s;
                next_s = s + 1 + ((s - next_emit) >> 6);
                if next_s > s_limit {
                    break 'outer;
                }
                let s_candidate = table[nhs];
                let l_candidate = b_table[nhl];
                let next = load64(src, next_s);
                table[nhs] = s + cur;
                b_table[nhl] = s + cur;
                t = l_candidate - cur;
                if s - t < MAX_MATCH_OFFSET && cv as u32 == load32(src, t) {
                    break;
                }
                t = s_candidate - cur;
                if s - t < MAX_MATCH_OFFSET && cv as u32 == load32(src, t) {
                    let l_candidate = b_table[hl(next)];
                    let l_off = next_s - (l_candidate - cur);
                    if l_off < MAX_MATCH_OFFSET && load32(src, l_candidate - cur) == next as u32 {
                        let l1 = match_len(&src[s as usize + 4..], &src[t as usize + 4..]);
                        let l2 = match_len(
                            &src[next_s as usize + 4..],
                            &src[(next_s - l_off + 4) as usize..],
                        );
                        if l2 > l1 {
                            s = next_s;
                            t = l_candidate - cur;
                        }
                    }
                    break;
                }
                cv = next;
            }
            let l = matchlen_long(s + 4, t + 4, src) + 4;
            let (end, l, _) = emit(dst, src, s, t, l, next_emit);
            s = end;
            next_emit = s;
            if next_s >= s {
                s = next_s + 1;
            }
            if s >= s_limit {
                if ((s + 8) as usize) < src.len() {
                    let cv = load64(src, s);
                    table[hs(cv)] = s + cur;
                    b_table[hl(cv)] = s + cur;
                }
                break 'outer;
            }
            let _ = l;
            let mut i = next_s;
            while i < s - 1 {
                let cv = load64(src, i);
                let e = i + cur;
                b_table[hl(cv)] = e;
                b_table[hl(cv >> 8)] = e + 1;
                table[hs(cv >> 8)] = e + 1;
                i += 3;
            }
            let x = load64(src, s - 1);
            let o = cur + s - 1;
            table[hs(x)] = o;
            b_table[hl(x)] = o;
            cv = x >> 8;
        }
        emit_remainder(dst, src, next_emit);
    }
}
