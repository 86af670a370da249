//! Go 1.27's levels 4–6: two tables, short (4-byte) and long (7-byte) hashes. Level 4
//! keeps one candidate per entry; level 5 keeps two long candidates and tries the
//! match end for a better match; level 6 indexes more positions and also tries the
//! previous match's distance ("repeat") first. Shared machinery is in `fast`.

use super::super::deflate::tokens::Tokens;
use super::fast::{
    FastGen, HASH_LONG_BYTES, INPUT_MARGIN, MAX_MATCH_LENGTH, MAX_MATCH_OFFSET,
    MIN_NON_LITERAL_BLOCK_SIZE, TABLE_BITS, TABLE_SIZE, emit_literals, hash_len, load32, load64,
    match_len,
};

const HS: u32 = 4;
const HL: u32 = HASH_LONG_BYTES;

#[inline(always)]
fn hs(u: u64) -> usize {
    hash_len(u, TABLE_BITS, HS) as usize
}

#[inline(always)]
fn hl(u: u64) -> usize {
    hash_len(u, TABLE_BITS, HL) as usize
}

/// Pushes `v` as the current entry of a two-entry slot.
#[inline(always)]
fn push(slot: &mut (i32, i32), v: i32) {
    *slot = (v, slot.0);
}

/// Level 4: short and long table, one candidate each.
pub(super) struct FastL4 {
    pub(super) g: FastGen,
    table: Vec<i32>,
    b_table: Vec<i32>,
}

impl FastL4 {
    pub(super) fn new(g: FastGen) -> FastL4 {
        FastL4 {
            g,
            table: vec![0; TABLE_SIZE],
            b_table: vec![0; TABLE_SIZE],
        }
    }

    pub(super) fn encode(&mut self, dst: &mut Tokens, src: &[u8]) {
        let r = self.g.rebase();
        r.table(&mut self.table);
        r.table(&mut self.b_table);
        let mut s = self.g.add_block(src);
        if src.len() < MIN_NON_LITERAL_BLOCK_SIZE {
            dst.n = src.len();
            return;
        }
        let g = &self.g;
        let (table, b_table) = (&mut self.table, &mut self.b_table);
        let cur = g.cur;
        let src = &g.hist[..];
        let mut next_emit = s;
        let s_limit = src.len() as i32 - INPUT_MARGIN;
        let mut cv = load64(src, s);
        loop {
            const SKIP_LOG: i32 = 6;
            let mut next_s = s;
            let mut t;
            loop {
                let next_hash_s = hs(cv);
                let next_hash_l = hl(cv);
                s = next_s;
                next_s = s + 1 + ((s - next_emit) >> SKIP_LOG);
                if next_s > s_limit {
                    return finish(dst, src, next_emit);
                }
                let s_candidate = table[next_hash_s];
                let l_candidate = b_table[next_hash_l];
                let next = load64(src, next_s);
                table[next_hash_s] = s + cur;
                b_table[next_hash_l] = s + cur;
                t = l_candidate - cur;
                if s - t < MAX_MATCH_OFFSET && cv as u32 == load32(src, t) {
                    break;
                }
                t = s_candidate - cur;
                if s - t < MAX_MATCH_OFFSET && cv as u32 == load32(src, t) {
                    let l_candidate = b_table[hl(next)];
                    let l_off = l_candidate - cur;
                    if next_s - l_off < MAX_MATCH_OFFSET && load32(src, l_off) == next as u32 {
                        let l1 = match_len(&src[(s + 4) as usize..], &src[(t + 4) as usize..]);
                        let l2 = match_len(
                            &src[(next_s + 4) as usize..],
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
                if ((s + 8) as usize) < src.len() {
                    let cv = load64(src, s);
                    table[hs(cv)] = s + cur;
                    b_table[hl(cv)] = s + cur;
                }
                return finish(dst, src, next_emit);
            }
            let mut i = next_s;
            if i < s - 1 {
                let cv = load64(src, i);
                b_table[hl(cv)] = i + cur;
                b_table[hl(cv >> 8)] = i + cur + 1;
                table[hs(cv >> 8)] = i + cur + 1;
                i += 3;
                while i < s - 1 {
                    let cv = load64(src, i);
                    b_table[hl(cv)] = i + cur;
                    b_table[hl(cv >> 8)] = i + cur + 1;
                    table[hs(cv >> 8)] = i + cur + 1;
                    i += 3;
                }
            }
            let x = load64(src, s - 1);
            let o = cur + s - 1;
            table[hs(x)] = o;
            b_table[hl(x)] = o;
            cv = x >> 8;
        }
    }
}

/// The literals after the last match, unless the block has no token at all (then
/// the caller stores it).
fn finish(dst: &mut Tokens, src: &[u8], next_emit: i32) {
    if (next_emit as usize) < src.len() && dst.n != 0 {
        emit_literals(dst, src, next_emit, src.len() as i32);
    }
}

/// Level 5: short table, long table with two candidates per entry.
pub(super) struct FastL5 {
    pub(super) g: FastGen,
    table: Vec<i32>,
    b_table: Vec<(i32, i32)>,
}

impl FastL5 {
    pub(super) fn new(g: FastGen) -> FastL5 {
        FastL5 {
            g,
            table: vec![0; TABLE_SIZE],
            b_table: vec![(0, 0); TABLE_SIZE],
        }
    }

    pub(super) fn encode(&mut self, dst: &mut Tokens, src: &[u8]) {
        let r = self.g.rebase();
        r.table(&mut self.table);
        r.prev_table(&mut self.b_table, true);
        let mut s = self.g.add_block(src);
        if src.len() < MIN_NON_LITERAL_BLOCK_SIZE {
            dst.n = src.len();
            return;
        }
        let g = &self.g;
        let (table, b_table) = (&mut self.table, &mut self.b_table);
        let cur = g.cur;
        let src = &g.hist[..];
        let mut next_emit = s;
        let s_limit = src.len() as i32 - INPUT_MARGIN;
        let mut cv = load64(src, s);
        loop {
            const SKIP_LOG: i32 = 6;
            let mut next_s = s;
            let mut l = 0;
            let mut t;
            loop {
                let mut next_hash_s = hs(cv);
                let mut next_hash_l = hl(cv);
                s = next_s;
                next_s = s + 1 + ((s - next_emit) >> SKIP_LOG);
                if next_s > s_limit {
                    return finish(dst, src, next_emit);
                }
                let s_candidate = table[next_hash_s];
                let mut l_candidate = b_table[next_hash_l];
                let next = load64(src, next_s);
                table[next_hash_s] = s + cur;
                push(&mut b_table[next_hash_l], s + cur);
                next_hash_s = hs(next);
                next_hash_l = hl(next);
                t = l_candidate.0 - cur;
                if s - t < MAX_MATCH_OFFSET {
                    if cv as u32 == load32(src, t) {
                        table[next_hash_s] = next_s + cur;
                        push(&mut b_table[next_hash_l], next_s + cur);
                        let t2 = l_candidate.1 - cur;
                        if s - t2 < MAX_MATCH_OFFSET && cv as u32 == load32(src, t2) {
                            l = g.match_len_limited(s + 4, t + 4) + 4;
                            let ml1 = g.match_len_limited(s + 4, t2 + 4) + 4;
                            if ml1 > l {
                                t = t2;
                                l = ml1;
                                break;
                            }
                        }
                        break;
                    }
                    t = l_candidate.1 - cur;
                    if s - t < MAX_MATCH_OFFSET && cv as u32 == load32(src, t) {
                        table[next_hash_s] = next_s + cur;
                        push(&mut b_table[next_hash_l], next_s + cur);
                        break;
                    }
                }
                t = s_candidate - cur;
                if s - t < MAX_MATCH_OFFSET && cv as u32 == load32(src, t) {
                    l = g.match_len_limited(s + 4, t + 4) + 4;
                    l_candidate = b_table[next_hash_l];
                    table[next_hash_s] = next_s + cur;
                    push(&mut b_table[next_hash_l], next_s + cur);
                    let mut t2 = l_candidate.0 - cur;
                    if next_s - t2 < MAX_MATCH_OFFSET {
                        if load32(src, t2) == next as u32 {
                            let ml = g.match_len_limited(next_s + 4, t2 + 4) + 4;
                            if ml > l {
                                t = t2;
                                s = next_s;
                                l = ml;
                                break;
                            }
                        }
                        t2 = l_candidate.1 - cur;
                        if next_s - t2 < MAX_MATCH_OFFSET && load32(src, t2) == next as u32 {
                            let ml = g.match_len_limited(next_s + 4, t2 + 4) + 4;
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
                l = g.match_len_long(s + 4, t + 4) + 4;
            } else if l == MAX_MATCH_LENGTH {
                l += g.match_len_long(s + l, t + l);
            }
            let s_at = s + l;
            if l < 30 && s_at < s_limit {
                const SKIP_BEGINNING: i32 = 2;
                let e_long = b_table[hl(load64(src, s_at))].0;
                let t2 = e_long - cur - l + SKIP_BEGINNING;
                let s2 = s + SKIP_BEGINNING;
                let off = s2 - t2;
                if t2 >= 0 && off < MAX_MATCH_OFFSET && off > 0 {
                    let l2 = g.match_len_long(s2, t2);
                    if l2 > l {
                        t = t2;
                        l = l2;
                        s = s2;
                    }
                }
            }
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
                return finish(dst, src, next_emit);
            }
            let mut i = s - l + 1;
            if i < s - 1 {
                let mut cv = load64(src, i);
                let mut tt = i + cur;
                table[hs(cv)] = tt;
                push(&mut b_table[hl(cv)], tt);
                cv >>= 8;
                tt += 1;
                push(&mut b_table[hl(cv)], tt);
                cv >>= 8;
                tt += 1;
                table[hs(cv)] = tt;
                i += 4;
                while i < s - 1 {
                    let cv = load64(src, i);
                    push(&mut b_table[hl(cv)], i + cur);
                    table[hs(cv >> 8)] = i + cur + 1;
                    i += 3;
                }
            }
            let x = load64(src, s - 1);
            let o = cur + s - 1;
            table[hs(x)] = o;
            push(&mut b_table[hl(x)], o);
            cv = x >> 8;
        }
    }
}

/// Level 6: level 5 with denser indexing and a repeat-distance check.
pub(super) struct FastL6 {
    pub(super) g: FastGen,
    table: Vec<i32>,
    b_table: Vec<(i32, i32)>,
}

impl FastL6 {
    pub(super) fn new(g: FastGen) -> FastL6 {
        FastL6 {
            g,
            table: vec![0; TABLE_SIZE],
            b_table: vec![(0, 0); TABLE_SIZE],
        }
    }

    pub(super) fn encode(&mut self, dst: &mut Tokens, src: &[u8]) {
        let r = self.g.rebase();
        r.table(&mut self.table);
        r.prev_table(&mut self.b_table, true);
        let mut s = self.g.add_block(src);
        if src.len() < MIN_NON_LITERAL_BLOCK_SIZE {
            dst.n = src.len();
            return;
        }
        let g = &self.g;
        let (table, b_table) = (&mut self.table, &mut self.b_table);
        let cur = g.cur;
        let src = &g.hist[..];
        let mut next_emit = s;
        let s_limit = src.len() as i32 - INPUT_MARGIN;
        let mut cv = load64(src, s);
        let mut repeat: i32 = 1;
        loop {
            const SKIP_LOG: i32 = 7;
            let mut next_s = s;
            let mut l = 0;
            let mut t;
            'search: loop {
                let mut next_hash_s = hs(cv);
                let mut next_hash_l = hl(cv);
                s = next_s;
                next_s = s + 1 + ((s - next_emit) >> SKIP_LOG);
                if next_s > s_limit {
                    return finish(dst, src, next_emit);
                }
                let s_candidate = table[next_hash_s];
                let mut l_candidate = b_table[next_hash_l];
                let next = load64(src, next_s);
                table[next_hash_s] = s + cur;
                push(&mut b_table[next_hash_l], s + cur);
                next_hash_s = hs(next);
                next_hash_l = hl(next);
                t = l_candidate.0 - cur;
                if s - t < MAX_MATCH_OFFSET {
                    if cv as u32 == load32(src, t) {
                        table[next_hash_s] = next_s + cur;
                        push(&mut b_table[next_hash_l], next_s + cur);
                        let t2 = l_candidate.1 - cur;
                        if s - t2 < MAX_MATCH_OFFSET && cv as u32 == load32(src, t2) {
                            l = g.match_len_limited(s + 4, t + 4) + 4;
                            let ml1 = g.match_len_limited(s + 4, t2 + 4) + 4;
                            if ml1 > l {
                                t = t2;
                                l = ml1;
                                break;
                            }
                        }
                        break;
                    }
                    t = l_candidate.1 - cur;
                    if s - t < MAX_MATCH_OFFSET && cv as u32 == load32(src, t) {
                        table[next_hash_s] = next_s + cur;
                        push(&mut b_table[next_hash_l], next_s + cur);
                        break;
                    }
                }
                t = s_candidate - cur;
                if s - t < MAX_MATCH_OFFSET && cv as u32 == load32(src, t) {
                    l = g.match_len_limited(s + 4, t + 4) + 4;
                    l_candidate = b_table[next_hash_l];
                    table[next_hash_s] = next_s + cur;
                    push(&mut b_table[next_hash_l], next_s + cur);
                    // The previous match's distance, one byte on.
                    let t2 = s - repeat + 1;
                    if load32(src, t2) == (cv >> 8) as u32 {
                        let ml = g.match_len_limited(s + 5, t2 + 4) + 4;
                        if ml > l {
                            t = t2;
                            l = ml;
                            s += 1;
                            break 'search;
                        }
                    }
                    let mut t2 = l_candidate.0 - cur;
                    if next_s - t2 < MAX_MATCH_OFFSET {
                        if load32(src, t2) == next as u32 {
                            let ml = g.match_len_limited(next_s + 4, t2 + 4) + 4;
                            if ml > l {
                                t = t2;
                                s = next_s;
                                l = ml;
                            }
                        }
                        t2 = l_candidate.1 - cur;
                        if next_s - t2 < MAX_MATCH_OFFSET && load32(src, t2) == next as u32 {
                            let ml = g.match_len_limited(next_s + 4, t2 + 4) + 4;
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
                l = g.match_len_long(s + 4, t + 4) + 4;
            } else if l == MAX_MATCH_LENGTH {
                l += g.match_len_long(s + l, t + l);
            }
            let s_at = s + l;
            if s_at < s_limit {
                const SKIP_BEGINNING: i32 = 2;
                let e_long = b_table[hl(load64(src, s_at))];
                let t2 = e_long.0 - cur - l + SKIP_BEGINNING;
                let s2 = s + SKIP_BEGINNING;
                let off = s2 - t2;
                if off < MAX_MATCH_OFFSET {
                    if off > 0 && t2 >= 0 {
                        let l2 = g.match_len_long(s2, t2);
                        if l2 > l {
                            t = t2;
                            l = l2;
                            s = s2;
                        }
                    }
                    let t2 = e_long.1 - cur - l + SKIP_BEGINNING;
                    let off = s2 - t2;
                    if off > 0 && off < MAX_MATCH_OFFSET && t2 >= 0 {
                        let l2 = g.match_len_long(s2, t2);
                        if l2 > l {
                            t = t2;
                            l = l2;
                            s = s2;
                        }
                    }
                }
            }
            while t > 0 && s > next_emit && src[(t - 1) as usize] == src[(s - 1) as usize] {
                s -= 1;
                t -= 1;
                l += 1;
            }
            if next_emit < s {
                emit_literals(dst, src, next_emit, s);
            }
            dst.add_match_long(l, (s - t - 1) as u32);
            repeat = s - t;
            s += l;
            next_emit = s;
            if next_s >= s {
                s = next_s + 1;
            }
            if s >= s_limit {
                let mut i = next_s + 1;
                while i < src.len() as i32 - 8 {
                    let cv = load64(src, i);
                    table[hs(cv)] = i + cur;
                    push(&mut b_table[hl(cv)], i + cur);
                    i += 2;
                }
                return finish(dst, src, next_emit);
            }
            let mut i = next_s + 1;
            while i < s - 1 {
                let cv = load64(src, i);
                let tt = i + cur;
                let e1 = hl(cv);
                let e2 = hl(cv >> 8);
                table[hs(cv)] = tt;
                push(&mut b_table[e1], tt);
                push(&mut b_table[e2], tt + 1);
                i += 2;
            }
            cv = load64(src, s);
        }
    }
}
