//! GNU gzip's match side (its `deflate.c`): the 64 KiB window refilled and slid as
//! gzip reads a file, the 15-bit hash chains, the longest-match search, and the two
//! parsers: greedy (`deflate_fast`, levels 1–3, where the level's "lazy" value limits
//! which matches get their strings inserted) and lazy (levels 4–9).
//!
//! The window is reproduced byte for byte, stale bytes included: near the end of the
//! input gzip hashes and compares bytes past the data (left from before a slide, or
//! the two zeros written at end of file), and those bytes steer which match it picks.
//! gzip reads a regular file in full-size reads (64 KiB first, then whatever fills the
//! window); the encoder waits for that much input (or the end) before each refill, so
//! its output does not depend on how callers split the input.

use super::bits::BitWriter;
use super::trees::Trees;

const WSIZE: usize = 0x8000;
const WMASK: usize = WSIZE - 1;
const WINDOW_SIZE: usize = 2 * WSIZE;
const HASH_SIZE: usize = 1 << 15;
const HASH_MASK: usize = HASH_SIZE - 1;
const H_SHIFT: u32 = 5;
const MIN_MATCH: u32 = 3;
const MAX_MATCH: u32 = 258;
const MIN_LOOKAHEAD: u32 = MAX_MATCH + MIN_MATCH + 1;
const MAX_DIST: u32 = WSIZE as u32 - MIN_LOOKAHEAD;
const TOO_FAR: u32 = 4096;

/// Per level: good length, lazy (levels 1–3: insert) limit, nice length, chain length.
const CONFIG: [(u32, u32, u32, u32); 10] = [
    (0, 0, 0, 0),
    (4, 4, 8, 4),
    (4, 5, 16, 8),
    (4, 6, 32, 32),
    (4, 4, 16, 16),
    (8, 16, 32, 32),
    (8, 16, 128, 128),
    (8, 32, 128, 256),
    (32, 128, 258, 1024),
    (32, 258, 258, 4096),
];

/// One deflate stream being compressed as gzip 1.12 does at one level.
pub(super) struct Deflate {
    level: u32,
    good_match: u32,
    max_lazy: u32,
    nice_match: u32,
    max_chain: u32,
    /// The window plus room for the search's look past its end (zeros).
    window: Vec<u8>,
    prev: Vec<u16>,
    head: Vec<u16>,
    ins_h: usize,
    strstart: u32,
    block_start: i64,
    lookahead: u32,
    eofile: bool,
    match_start: u32,
    prev_length: u32,
    match_length: u32,
    prev_match: u32,
    match_available: bool,
    started: bool,
    done: bool,
    /// Input not yet read into the window, from `pending_at` on.
    pending: Vec<u8>,
    pending_at: usize,
    finishing: bool,
    trees: Trees,
    pub(super) w: BitWriter,
}

impl Deflate {
    /// `level` 1..=9.
    pub(super) fn new(level: u32) -> Deflate {
        let (good, lazy, nice, chain) = CONFIG[level as usize];
        Deflate {
            level,
            good_match: good,
            max_lazy: lazy,
            nice_match: nice,
            max_chain: chain,
            window: vec![0; WINDOW_SIZE + MAX_MATCH as usize + 8],
            prev: vec![0; WSIZE],
            head: vec![0; HASH_SIZE],
            ins_h: 0,
            strstart: 0,
            block_start: 0,
            lookahead: 0,
            eofile: false,
            match_start: 0,
            prev_length: MIN_MATCH - 1,
            match_length: MIN_MATCH - 1,
            prev_match: 0,
            match_available: false,
            started: false,
            done: false,
            pending: Vec::new(),
            pending_at: 0,
            finishing: false,
            trees: Trees::new(level),
            w: BitWriter::new(),
        }
    }

    /// Takes more input and compresses as far as gzip would have read it.
    pub(super) fn write(&mut self, data: &[u8]) {
        if self.pending_at > 0 && self.pending_at >= self.pending.len() / 2 {
            self.pending.drain(..self.pending_at);
            self.pending_at = 0;
        }
        self.pending.extend_from_slice(data);
        self.run();
    }

    /// Ends the input: the rest is compressed and the final block written.
    pub(super) fn finish(&mut self) {
        self.finishing = true;
        self.run();
        debug_assert!(self.done);
    }

    /// gzip's `read_buf` of up to `n` bytes into the window at `at`: `None` when a
    /// regular file would have given more than is here yet.
    fn read(&mut self, at: usize, n: usize) -> Option<usize> {
        let have = self.pending.len() - self.pending_at;
        if have < n && !self.finishing {
            return None;
        }
        let k = have.min(n);
        self.window[at..at + k]
            .copy_from_slice(&self.pending[self.pending_at..self.pending_at + k]);
        self.pending_at += k;
        Some(k)
    }

    /// gzip's `lm_init` after the first read.
    fn init(&mut self) -> bool {
        let Some(n) = self.read(0, WINDOW_SIZE) else {
            return false;
        };
        self.started = true;
        if n == 0 {
            self.eofile = true;
            self.lookahead = 0;
            return true;
        }
        self.lookahead = n as u32;
        true
    }

    /// gzip's `fill_window`; false when it must wait for input (nothing changed).
    fn fill_window(&mut self) -> bool {
        let mut more = WINDOW_SIZE as u32 - self.lookahead - self.strstart;
        let slide = self.strstart >= WSIZE as u32 + MAX_DIST;
        if slide {
            more += WSIZE as u32;
        }
        let have = self.pending.len() - self.pending_at;
        if have < more as usize && !self.finishing {
            return false;
        }
        if slide {
            self.window.copy_within(WSIZE..WINDOW_SIZE, 0);
            self.match_start = self.match_start.wrapping_sub(WSIZE as u32);
            self.strstart -= WSIZE as u32;
            self.block_start -= WSIZE as i64;
            for h in self.head.iter_mut().chain(self.prev.iter_mut()) {
                *h = if *h as usize >= WSIZE {
                    *h - WSIZE as u16
                } else {
                    0
                };
            }
        }
        let at = (self.strstart + self.lookahead) as usize;
        let n = self.read(at, more as usize).expect("enough input checked");
        if n == 0 {
            self.eofile = true;
            self.window[at..at + MIN_MATCH as usize - 1].fill(0);
        } else {
            self.lookahead += n as u32;
        }
        true
    }

    fn run(&mut self) {
        if self.done {
            return;
        }
        if !self.started {
            if !self.init() {
                return;
            }
            self.ins_h = 0;
            for j in 0..MIN_MATCH as usize - 1 {
                self.ins_h = ((self.ins_h << H_SHIFT) ^ self.window[j] as usize) & HASH_MASK;
            }
        }
        loop {
            while self.lookahead < MIN_LOOKAHEAD && !self.eofile {
                if !self.fill_window() {
                    return;
                }
            }
            if self.lookahead == 0 {
                break;
            }
            if self.level <= 3 {
                self.step_fast();
            } else {
                self.step_lazy();
            }
        }
        if self.level > 3 && self.match_available {
            let in_len = self.in_length();
            let lit = self.window[self.strstart as usize - 1] as u32;
            self.trees.tally(0, lit, in_len);
        }
        self.flush_block(true);
        self.done = true;
    }

    fn in_length(&self) -> u64 {
        (self.strstart as i64 - self.block_start) as u64
    }

    fn flush_block(&mut self, eof: bool) {
        let len = self.strstart as i64 - self.block_start;
        let stored = if self.block_start >= 0 {
            let b = self.block_start as usize;
            Some(&self.window[b..b + len as usize])
        } else {
            None
        };
        self.trees.flush_block(stored, len as u64, eof, &mut self.w);
    }

    fn insert(&mut self, s: u32) -> u32 {
        let s = s as usize;
        self.ins_h = ((self.ins_h << H_SHIFT) ^ self.window[s + 2] as usize) & HASH_MASK;
        let head = self.head[self.ins_h];
        self.prev[s & WMASK] = head;
        self.head[self.ins_h] = s as u16;
        head as u32
    }

    /// Whether a match search starts at this position (gzip's guards).
    fn searchable(&self, hash_head: u32) -> bool {
        hash_head != 0
            && self.strstart - hash_head <= MAX_DIST
            && self.strstart <= WINDOW_SIZE as u32 - MIN_LOOKAHEAD
    }

    /// One iteration of `deflate_fast`'s loop.
    fn step_fast(&mut self) {
        let hash_head = self.insert(self.strstart);
        self.prev_length = MIN_MATCH - 1;
        if self.searchable(hash_head) {
            self.match_length = self.longest_match(hash_head).min(self.lookahead);
        }
        let flush;
        if self.match_length >= MIN_MATCH {
            let in_len = self.in_length();
            flush = self.trees.tally(
                self.strstart - self.match_start,
                self.match_length - MIN_MATCH,
                in_len,
            );
            self.lookahead -= self.match_length;
            if self.match_length <= self.max_lazy {
                self.match_length -= 1;
                while self.match_length != 0 {
                    self.strstart += 1;
                    self.insert(self.strstart);
                    self.match_length -= 1;
                }
                self.strstart += 1;
            } else {
                self.strstart += self.match_length;
                self.match_length = 0;
                let s = self.strstart as usize;
                self.ins_h = self.window[s] as usize;
                self.ins_h = ((self.ins_h << H_SHIFT) ^ self.window[s + 1] as usize) & HASH_MASK;
            }
        } else {
            let in_len = self.in_length();
            let lit = self.window[self.strstart as usize] as u32;
            flush = self.trees.tally(0, lit, in_len);
            self.lookahead -= 1;
            self.strstart += 1;
        }
        if flush {
            self.flush_block(false);
            self.block_start = self.strstart as i64;
        }
    }

    /// One iteration of the lazy `deflate` loop.
    fn step_lazy(&mut self) {
        let hash_head = self.insert(self.strstart);
        self.prev_length = self.match_length;
        self.prev_match = self.match_start;
        self.match_length = MIN_MATCH - 1;
        if self.prev_length < self.max_lazy && self.searchable(hash_head) {
            self.match_length = self.longest_match(hash_head).min(self.lookahead);
            if self.match_length == MIN_MATCH
                && self.strstart.wrapping_sub(self.match_start) > TOO_FAR
            {
                self.match_length -= 1;
            }
        }
        if self.prev_length >= MIN_MATCH && self.match_length <= self.prev_length {
            let in_len = self.in_length();
            let flush = self.trees.tally(
                self.strstart.wrapping_sub(1).wrapping_sub(self.prev_match),
                self.prev_length - MIN_MATCH,
                in_len,
            );
            self.lookahead -= self.prev_length - 1;
            let mut n = self.prev_length - 2;
            while n != 0 {
                self.strstart += 1;
                self.insert(self.strstart);
                n -= 1;
            }
            self.match_available = false;
            self.match_length = MIN_MATCH - 1;
            self.strstart += 1;
            if flush {
                self.flush_block(false);
                self.block_start = self.strstart as i64;
            }
        } else if self.match_available {
            let in_len = self.in_length();
            let lit = self.window[self.strstart as usize - 1] as u32;
            if self.trees.tally(0, lit, in_len) {
                self.flush_block(false);
                self.block_start = self.strstart as i64;
            }
            self.strstart += 1;
            self.lookahead -= 1;
        } else {
            self.match_available = true;
            self.strstart += 1;
            self.lookahead -= 1;
        }
    }

    /// gzip's `longest_match`: the longest match (at least `prev_length + 1` to count)
    /// along the chain from `cur_match`; sets `match_start`.
    fn longest_match(&mut self, mut cur_match: u32) -> u32 {
        let w = &self.window;
        let mut chain = self.max_chain;
        let scan = self.strstart as usize;
        let mut best_len = self.prev_length as usize;
        let limit = self.strstart.saturating_sub(MAX_DIST);
        let mut scan_end1 = w[scan + best_len - 1];
        let mut scan_end = w[scan + best_len];
        if self.prev_length >= self.good_match {
            chain >>= 2;
        }
        loop {
            let m = cur_match as usize;
            if w[m + best_len] == scan_end
                && w[m + best_len - 1] == scan_end1
                && w[m] == w[scan]
                && w[m + 1] == w[scan + 1]
            {
                // Byte 2 is taken as equal (same hash); compare from byte 3.
                let mut len = 3;
                while len < MAX_MATCH as usize && w[scan + len] == w[m + len] {
                    len += 1;
                }
                if len > best_len {
                    self.match_start = cur_match;
                    best_len = len;
                    if len >= self.nice_match as usize {
                        break;
                    }
                    scan_end1 = w[scan + best_len - 1];
                    scan_end = w[scan + best_len];
                }
            }
            cur_match = self.prev[cur_match as usize & WMASK] as u32;
            if cur_match <= limit {
                break;
            }
            chain -= 1;
            if chain == 0 {
                break;
            }
        }
        best_len as u32
    }
}
