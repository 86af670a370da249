//! GNU gzip's block side (its `trees.c`): the token buffer and when it cuts a block,
//! the Huffman code construction with its exact tie-breaking and length limiting, the
//! stored/fixed/dynamic choice by estimated size, and the block formats.
//!
//! Kept as gzip structures it, because each decision shows in the output: a block ends
//! when 32767 tokens are buffered, or earlier at every 4096th token from level 3 on
//! when the buffered tokens already look well compressed; the heap orders equal
//! frequencies by subtree depth; over-long codes are shortened by moving leaves in
//! heap order; the code-length code is sent with gzip's run-length rules.

use super::bits::BitWriter;

const LITERALS: usize = 256;
const END_BLOCK: usize = 256;
const LENGTH_CODES: usize = 29;
/// Literal/length codes (no 286, 287).
const L_CODES: usize = LITERALS + 1 + LENGTH_CODES;
const D_CODES: usize = 30;
const BL_CODES: usize = 19;
const HEAP_SIZE: usize = 2 * L_CODES + 1;
const MAX_BITS: usize = 15;
const MAX_BL_BITS: usize = 7;
/// Token buffer size: a block is cut at one token less.
const LIT_BUFSIZE: usize = 0x8000;
const DIST_BUFSIZE: usize = LIT_BUFSIZE;
const REP_3_6: usize = 16;
const REPZ_3_10: usize = 17;
const REPZ_11_138: usize = 18;

const EXTRA_LBITS: [u8; LENGTH_CODES] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const EXTRA_DBITS: [u8; D_CODES] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
const EXTRA_BLBITS: [u8; BL_CODES] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 3, 7];
const BL_ORDER: [usize; BL_CODES] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// The RFC 1951 code tables, built once per encoder.
struct Tables {
    /// Length code (0-based, without the 257 offset) for `length - 3`.
    length_code: [u8; 256],
    base_length: [u16; LENGTH_CODES],
    base_dist: [u16; D_CODES],
    static_llen: [u16; L_CODES + 2],
    static_lcode: [u16; L_CODES + 2],
    static_dcode: [u16; D_CODES],
}

impl Tables {
    fn new() -> Tables {
        let mut length_code = [0u8; 256];
        let mut base_length = [0u16; LENGTH_CODES];
        let mut length = 0usize;
        for code in 0..LENGTH_CODES - 1 {
            base_length[code] = length as u16;
            for _ in 0..1 << EXTRA_LBITS[code] {
                length_code[length] = code as u8;
                length += 1;
            }
        }
        // Length 258 has its own code, taking the last slot of code 27's range.
        length_code[length - 1] = (LENGTH_CODES - 1) as u8;
        let mut base_dist = [0u16; D_CODES];
        let mut dist = 0u32;
        for code in 0..D_CODES {
            base_dist[code] = dist as u16;
            dist += 1 << EXTRA_DBITS[code];
        }
        let mut static_llen = [0u16; L_CODES + 2];
        for (n, l) in static_llen.iter_mut().enumerate() {
            *l = match n {
                0..=143 => 8,
                144..=255 => 9,
                256..=279 => 7,
                _ => 8,
            };
        }
        let mut count = [0u16; MAX_BITS + 1];
        for &l in &static_llen {
            count[l as usize] += 1;
        }
        let mut static_lcode = [0u16; L_CODES + 2];
        gen_codes(&static_llen, &mut static_lcode, L_CODES + 1, &count);
        let mut static_dcode = [0u16; D_CODES];
        for (n, c) in static_dcode.iter_mut().enumerate() {
            *c = reverse(n as u16, 5);
        }
        Tables {
            length_code,
            base_length,
            base_dist,
            static_llen,
            static_lcode,
            static_dcode,
        }
    }

    fn d_code(&self, dist: u16) -> usize {
        // The largest code whose base is at most `dist`.
        self.base_dist.partition_point(|&b| b <= dist) - 1
    }
}

fn reverse(code: u16, len: u16) -> u16 {
    code.reverse_bits() >> (16 - len)
}

/// Canonical codes for `lens[0..=max_code]` given the count of codes per length.
fn gen_codes(lens: &[u16], codes: &mut [u16], max_code: usize, bl_count: &[u16]) {
    let mut next = [0u16; MAX_BITS + 1];
    let mut code = 0u16;
    for bits in 1..=MAX_BITS {
        code = (code.wrapping_add(bl_count[bits - 1])) << 1;
        next[bits] = code;
    }
    for n in 0..=max_code {
        let len = lens[n];
        if len != 0 {
            codes[n] = reverse(next[len as usize], len);
            next[len as usize] += 1;
        }
    }
}

/// One dynamic tree being built: frequencies, then lengths and codes. Sized for the
/// leaves plus the internal nodes the heap creates.
struct Tree {
    freq: Vec<u32>,
    len: Vec<u16>,
    dad: Vec<u16>,
    code: Vec<u16>,
    /// The largest code with a non-zero frequency (after padding to two codes).
    max_code: usize,
}

impl Tree {
    fn new() -> Tree {
        Tree {
            freq: vec![0; HEAP_SIZE],
            len: vec![0; HEAP_SIZE],
            dad: vec![0; HEAP_SIZE],
            code: vec![0; HEAP_SIZE],
            max_code: 0,
        }
    }
}

/// What differs between the three trees gzip builds.
struct Desc {
    elems: usize,
    extra: &'static [u8],
    extra_base: usize,
    max_length: usize,
}

const L_DESC: Desc = Desc {
    elems: L_CODES,
    extra: &EXTRA_LBITS,
    extra_base: LITERALS + 1,
    max_length: MAX_BITS,
};
const D_DESC: Desc = Desc {
    elems: D_CODES,
    extra: &EXTRA_DBITS,
    extra_base: 0,
    max_length: MAX_BITS,
};
const BL_DESC: Desc = Desc {
    elems: BL_CODES,
    extra: &EXTRA_BLBITS,
    extra_base: 0,
    max_length: MAX_BL_BITS,
};

/// The block state: buffered tokens, trees, size estimates.
pub(super) struct Trees {
    tables: Tables,
    /// Tokens: (distance, literal or length - 3); distance 0 is a literal.
    tokens: Vec<(u16, u8)>,
    last_dist: usize,
    ltree: Tree,
    dtree: Tree,
    bltree: Tree,
    heap: Vec<usize>,
    heap_len: usize,
    heap_max: usize,
    depth: Vec<u8>,
    bl_count: [u16; MAX_BITS + 1],
    opt_len: i64,
    static_len: i64,
    level: u32,
}

impl Trees {
    pub(super) fn new(level: u32) -> Trees {
        let mut t = Trees {
            tables: Tables::new(),
            tokens: Vec::with_capacity(LIT_BUFSIZE),
            last_dist: 0,
            ltree: Tree::new(),
            dtree: Tree::new(),
            bltree: Tree::new(),
            heap: vec![0; HEAP_SIZE],
            heap_len: 0,
            heap_max: 0,
            depth: vec![0; HEAP_SIZE],
            bl_count: [0; MAX_BITS + 1],
            opt_len: 0,
            static_len: 0,
            level,
        };
        t.init_block();
        t
    }

    fn init_block(&mut self) {
        self.ltree.freq[..L_CODES].fill(0);
        self.dtree.freq[..D_CODES].fill(0);
        self.bltree.freq[..BL_CODES].fill(0);
        self.ltree.freq[END_BLOCK] = 1;
        self.opt_len = 0;
        self.static_len = 0;
        self.tokens.clear();
        self.last_dist = 0;
    }

    /// Records a literal (`dist` 0, `lc` the byte) or a match (`lc` = length - 3);
    /// true when the block should be flushed now. `in_length` is the input the block
    /// covers so far (gzip's `strstart - block_start`).
    pub(super) fn tally(&mut self, dist: u32, lc: u32, in_length: u64) -> bool {
        self.tokens.push((dist as u16, lc as u8));
        if dist == 0 {
            self.ltree.freq[lc as usize] += 1;
        } else {
            let d = (dist - 1) as u16;
            self.ltree.freq[self.tables.length_code[lc as usize] as usize + LITERALS + 1] += 1;
            self.dtree.freq[self.tables.d_code(d)] += 1;
            self.last_dist += 1;
        }
        let last_lit = self.tokens.len();
        if self.level > 2 && last_lit & 0xfff == 0 {
            let mut out_length = last_lit as u64 * 8;
            for (f, x) in self.dtree.freq[..D_CODES].iter().zip(EXTRA_DBITS) {
                out_length += *f as u64 * (5 + x as u64);
            }
            out_length >>= 3;
            if self.last_dist < last_lit / 2 && out_length < in_length / 2 {
                return true;
            }
        }
        last_lit == LIT_BUFSIZE - 1 || self.last_dist == DIST_BUFSIZE
    }

    fn smaller(freq: &[u32], depth: &[u8], n: usize, m: usize) -> bool {
        freq[n] < freq[m] || (freq[n] == freq[m] && depth[n] <= depth[m])
    }

    fn pqdownheap(&mut self, which: usize, mut k: usize) {
        let freq = match which {
            0 => &self.ltree.freq,
            1 => &self.dtree.freq,
            _ => &self.bltree.freq,
        };
        let heap = &mut self.heap;
        let depth = &self.depth;
        let v = heap[k];
        let mut j = k << 1;
        while j <= self.heap_len {
            if j < self.heap_len && Self::smaller(freq, depth, heap[j + 1], heap[j]) {
                j += 1;
            }
            if Self::smaller(freq, depth, v, heap[j]) {
                break;
            }
            heap[k] = heap[j];
            k = j;
            j <<= 1;
        }
        heap[k] = v;
    }

    fn tree(&self, which: usize) -> &Tree {
        match which {
            0 => &self.ltree,
            1 => &self.dtree,
            _ => &self.bltree,
        }
    }

    fn tree_mut(&mut self, which: usize) -> &mut Tree {
        match which {
            0 => &mut self.ltree,
            1 => &mut self.dtree,
            _ => &mut self.bltree,
        }
    }

    /// gzip's `build_tree`: lengths and codes for tree `which` (0 literal/length,
    /// 1 distance, 2 code lengths), updating the size estimates.
    fn build_tree(&mut self, which: usize) {
        let desc = match which {
            0 => &L_DESC,
            1 => &D_DESC,
            _ => &BL_DESC,
        };
        let elems = desc.elems;
        let mut max_code: isize = -1;
        self.heap_len = 0;
        self.heap_max = HEAP_SIZE;
        for n in 0..elems {
            if self.tree(which).freq[n] != 0 {
                self.heap_len += 1;
                self.heap[self.heap_len] = n;
                max_code = n as isize;
                self.depth[n] = 0;
            } else {
                self.tree_mut(which).len[n] = 0;
            }
        }
        // At least two codes: pad with codes 0 and 1 (frequency 1), minus their cost.
        while self.heap_len < 2 {
            let new = if max_code < 2 {
                max_code += 1;
                max_code as usize
            } else {
                0
            };
            self.heap_len += 1;
            self.heap[self.heap_len] = new;
            self.tree_mut(which).freq[new] = 1;
            self.depth[new] = 0;
            self.opt_len -= 1;
            if which == 0 {
                self.static_len -= self.tables.static_llen[new] as i64;
            } else if which == 1 {
                self.static_len -= 5;
            }
        }
        let max_code = max_code as usize;
        self.tree_mut(which).max_code = max_code;
        for n in (1..=self.heap_len / 2).rev() {
            self.pqdownheap(which, n);
        }
        let mut node = elems;
        loop {
            let n = self.heap[1];
            self.heap[1] = self.heap[self.heap_len];
            self.heap_len -= 1;
            self.pqdownheap(which, 1);
            let m = self.heap[1];
            self.heap_max -= 1;
            self.heap[self.heap_max] = n;
            self.heap_max -= 1;
            self.heap[self.heap_max] = m;
            let tree = match which {
                0 => &mut self.ltree,
                1 => &mut self.dtree,
                _ => &mut self.bltree,
            };
            tree.freq[node] = tree.freq[n] + tree.freq[m];
            self.depth[node] = self.depth[n].max(self.depth[m]) + 1;
            tree.dad[n] = node as u16;
            tree.dad[m] = node as u16;
            self.heap[1] = node;
            node += 1;
            self.pqdownheap(which, 1);
            if self.heap_len < 2 {
                break;
            }
        }
        self.heap_max -= 1;
        self.heap[self.heap_max] = self.heap[1];
        self.gen_bitlen(which, desc, max_code);
        let bl_count = self.bl_count;
        let tree = self.tree_mut(which);
        let (lens, codes) = (&tree.len, &mut tree.code);
        gen_codes(lens, codes, max_code, &bl_count);
    }

    /// gzip's `gen_bitlen`: lengths from the tree, limited to the tree's maximum by
    /// its overflow fix-up.
    fn gen_bitlen(&mut self, which: usize, desc: &Desc, max_code: usize) {
        self.bl_count = [0; MAX_BITS + 1];
        let heap = &self.heap;
        let heap_max = self.heap_max;
        let static_llen = &self.tables.static_llen;
        let tree = match which {
            0 => &mut self.ltree,
            1 => &mut self.dtree,
            _ => &mut self.bltree,
        };
        tree.len[heap[heap_max]] = 0;
        let mut overflow = 0i32;
        for &n in &heap[heap_max + 1..HEAP_SIZE] {
            let mut bits = tree.len[tree.dad[n] as usize] as usize + 1;
            if bits > desc.max_length {
                bits = desc.max_length;
                overflow += 1;
            }
            tree.len[n] = bits as u16;
            if n > max_code {
                continue;
            }
            self.bl_count[bits] += 1;
            let xbits = if n >= desc.extra_base {
                desc.extra[n - desc.extra_base] as i64
            } else {
                0
            };
            let f = tree.freq[n] as i64;
            self.opt_len += f * (bits as i64 + xbits);
            match which {
                0 => self.static_len += f * (static_llen[n] as i64 + xbits),
                1 => self.static_len += f * (5 + xbits),
                _ => {}
            }
        }
        if overflow == 0 {
            return;
        }
        let max_length = desc.max_length;
        while overflow > 0 {
            let mut bits = max_length - 1;
            while self.bl_count[bits] == 0 {
                bits -= 1;
            }
            self.bl_count[bits] -= 1;
            self.bl_count[bits + 1] += 2;
            self.bl_count[max_length] -= 1;
            overflow -= 2;
        }
        let mut h = HEAP_SIZE;
        for bits in (1..=max_length).rev() {
            let mut n = self.bl_count[bits];
            while n != 0 {
                h -= 1;
                let m = heap[h];
                if m > max_code {
                    continue;
                }
                if tree.len[m] as usize != bits {
                    let delta = (bits as i64 - tree.len[m] as i64) * tree.freq[m] as i64;
                    self.opt_len += delta;
                    tree.len[m] = bits as u16;
                }
                n -= 1;
            }
        }
    }

    /// gzip's `scan_tree`: counts the code-length codes tree `which` will be sent with.
    fn scan_tree(&mut self, which: usize) {
        let tree = if which == 0 {
            &mut self.ltree
        } else {
            &mut self.dtree
        };
        let max_code = tree.max_code;
        tree.len[max_code + 1] = 0xffff; // guard
        let bl = &mut self.bltree.freq;
        for_runs(&tree.len, max_code, |run| match run {
            Run::Single(len) => bl[len] += 1,
            Run::Repeat(len, _, first) => {
                if first {
                    bl[len] += 1;
                }
                bl[REP_3_6] += 1;
            }
            Run::Zeros(count) => bl[if count <= 10 { REPZ_3_10 } else { REPZ_11_138 }] += 1,
        });
    }

    /// Ends the block: `stored` is the block's input when it is still in the window.
    pub(super) fn flush_block(
        &mut self,
        stored: Option<&[u8]>,
        stored_len: u64,
        eof: bool,
        w: &mut BitWriter,
    ) {
        self.build_tree(0);
        self.build_tree(1);
        let max_blindex = self.build_bl_tree();
        let mut opt_lenb = ((self.opt_len + 3 + 7) >> 3) as u64;
        let static_lenb = ((self.static_len + 3 + 7) >> 3) as u64;
        if static_lenb <= opt_lenb {
            opt_lenb = static_lenb;
        }
        let eofbit = eof as u32;
        match stored {
            Some(buf) if stored_len + 4 <= opt_lenb => {
                w.bits(eofbit, 3);
                w.align();
                let len = buf.len() as u16;
                w.bytes(&len.to_le_bytes());
                w.bytes(&(!len).to_le_bytes());
                w.bytes(buf);
            }
            _ if static_lenb == opt_lenb => {
                w.bits(2 + eofbit, 3);
                self.compress_block(w, true);
            }
            _ => {
                w.bits(4 + eofbit, 3);
                self.send_all_trees(max_blindex + 1, w);
                self.compress_block(w, false);
            }
        }
        self.init_block();
        if eof {
            w.align();
        }
    }

    fn build_bl_tree(&mut self) -> usize {
        self.scan_tree(0);
        self.scan_tree(1);
        self.build_tree(2);
        let mut max_blindex = BL_CODES - 1;
        while max_blindex >= 3 {
            if self.bltree.len[BL_ORDER[max_blindex]] != 0 {
                break;
            }
            max_blindex -= 1;
        }
        self.opt_len += 3 * (max_blindex as i64 + 1) + 5 + 5 + 4;
        max_blindex
    }

    fn send_all_trees(&self, blcodes: usize, w: &mut BitWriter) {
        let lcodes = self.ltree.max_code + 1;
        let dcodes = self.dtree.max_code + 1;
        w.bits((lcodes - 257) as u32, 5);
        w.bits((dcodes - 1) as u32, 5);
        w.bits((blcodes - 4) as u32, 4);
        for &o in &BL_ORDER[..blcodes] {
            w.bits(self.bltree.len[o] as u32, 3);
        }
        self.send_lengths(0, w);
        self.send_lengths(1, w);
    }

    /// gzip's `send_tree`: tree `which`'s code lengths in the code-length code, by the
    /// same walk [`scan_tree`](Self::scan_tree) counted them with (its guard is still set).
    fn send_lengths(&self, which: usize, w: &mut BitWriter) {
        let tree = self.tree(which);
        let bl = &self.bltree;
        let send = |w: &mut BitWriter, c: usize| w.bits(bl.code[c] as u32, bl.len[c] as u32);
        for_runs(&tree.len, tree.max_code, |run| match run {
            Run::Single(len) => send(w, len),
            Run::Repeat(len, mut count, first) => {
                if first {
                    send(w, len);
                    count -= 1;
                }
                send(w, REP_3_6);
                w.bits(count - 3, 2);
            }
            Run::Zeros(count) if count <= 10 => {
                send(w, REPZ_3_10);
                w.bits(count - 3, 3);
            }
            Run::Zeros(count) => {
                send(w, REPZ_11_138);
                w.bits(count - 11, 7);
            }
        });
    }

    fn compress_block(&self, w: &mut BitWriter, fixed: bool) {
        let t = &self.tables;
        let (lcode, llen): (&[u16], &[u16]) = if fixed {
            (&t.static_lcode, &t.static_llen)
        } else {
            (&self.ltree.code, &self.ltree.len)
        };
        let dist_code = |c: usize| -> (u32, u32) {
            if fixed {
                (t.static_dcode[c] as u32, 5)
            } else {
                (self.dtree.code[c] as u32, self.dtree.len[c] as u32)
            }
        };
        for &(dist, lc) in &self.tokens {
            let lc = lc as usize;
            if dist == 0 {
                w.bits(lcode[lc] as u32, llen[lc] as u32);
                continue;
            }
            let code = t.length_code[lc] as usize;
            let sym = code + LITERALS + 1;
            w.bits(lcode[sym] as u32, llen[sym] as u32);
            let extra = EXTRA_LBITS[code] as u32;
            if extra != 0 {
                w.bits((lc - t.base_length[code] as usize) as u32, extra);
            }
            let d = dist - 1;
            let code = t.d_code(d);
            let (c, l) = dist_code(code);
            w.bits(c, l);
            let extra = EXTRA_DBITS[code] as u32;
            if extra != 0 {
                w.bits((d - t.base_dist[code]) as u32, extra);
            }
        }
        w.bits(lcode[END_BLOCK] as u32, llen[END_BLOCK] as u32);
    }
}

/// A step of the code-length run-length walk: one length sent as it is; a length
/// repeated `count` times (the first sent as it is when it differs from the previous
/// length, `true`); `count` zeros.
enum Run {
    Single(usize),
    Repeat(usize, u32, bool),
    Zeros(u32),
}

/// The run-length walk `scan_tree` does over code lengths `lens[0..=max_code]`
/// (`lens[max_code + 1]` is the guard).
fn for_runs(lens: &[u16], max_code: usize, mut f: impl FnMut(Run)) {
    let mut prevlen: i32 = -1;
    let mut nextlen = lens[0] as i32;
    let mut count = 0;
    let (mut max_count, mut min_count) = if nextlen == 0 { (138, 3) } else { (7, 4) };
    for n in 0..=max_code {
        let curlen = nextlen;
        nextlen = lens[n + 1] as i32;
        count += 1;
        if count < max_count && curlen == nextlen {
            continue;
        } else if count < min_count {
            for _ in 0..count {
                f(Run::Single(curlen as usize));
            }
        } else if curlen != 0 {
            f(Run::Repeat(curlen as usize, count, curlen != prevlen));
        } else {
            f(Run::Zeros(count));
        }
        count = 0;
        prevlen = curlen;
        (max_count, min_count) = if nextlen == 0 {
            (138, 3)
        } else if curlen == nextlen {
            (6, 3)
        } else {
            (7, 4)
        };
    }
}
