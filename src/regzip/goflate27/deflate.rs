//! Go 1.27's compressor driver: the window each level fills, when a block is cut
//! (level 0 every 65 535 bytes, Huffman-only every 32 KiB, levels 1–6 every 65 535
//! bytes, levels 7–9 at 32 768 tokens), how a fast block becomes stored, literal-only
//! or dynamic, and what `Flush`/`Close` add. Levels 7–9's matcher is in `lazy`.
//!
//! Every level here cuts blocks by the amount of input buffered, never by where
//! `Write` calls end, so the output does not depend on how the input is split
//! (unlike the classic encoder's corner case); `Flush` is the only thing that cuts
//! early.

use super::super::deflate::tokens::Tokens;
use super::bitwriter::BitWriter;
use super::fast::{FastEnc, MAX_STORE_BLOCK_SIZE};
use super::lazy::Lazy;

enum Mode {
    Store,
    Huff,
    Fast(FastEnc),
    Lazy(Box<Lazy>),
}

pub(super) struct Compressor {
    mode: Mode,
    /// Input not yet turned into a block (for `Lazy`: unused, it keeps its own).
    window: Vec<u8>,
    window_cap: usize,
    tokens: Tokens,
    pub w: BitWriter,
}

impl Compressor {
    /// `level` as Go's (-2..=9, -1 = 6); `None` outside that range.
    pub fn new(level: i32) -> Option<Compressor> {
        let mut w = BitWriter::new();
        let (mode, cap) = match level {
            0 => (Mode::Store, MAX_STORE_BLOCK_SIZE as usize),
            -2 => {
                w.log_new_table_penalty = 10;
                (Mode::Huff, 32 << 10)
            }
            -1 | 1..=6 => {
                w.log_new_table_penalty = 7;
                let level = if level == -1 { 6 } else { level };
                (
                    Mode::Fast(FastEnc::new(level)),
                    MAX_STORE_BLOCK_SIZE as usize,
                )
            }
            7..=9 => {
                w.log_new_table_penalty = 8;
                (Mode::Lazy(Box::new(Lazy::new(level))), 0)
            }
            _ => return None,
        };
        Some(Compressor {
            mode,
            window: Vec::with_capacity(cap),
            window_cap: cap,
            tokens: Tokens::new(),
            w,
        })
    }

    /// Go's `Write`: buffers `b`, compressing each full window.
    pub fn write(&mut self, mut b: &[u8]) {
        if let Mode::Lazy(lazy) = &mut self.mode {
            lazy.write(b, &mut self.tokens, &mut self.w);
            return;
        }
        while !b.is_empty() {
            if self.window.len() == self.window_cap {
                self.step(false);
            }
            let n = (self.window_cap - self.window.len()).min(b.len());
            self.window.extend_from_slice(&b[..n]);
            b = &b[n..];
        }
    }

    /// Go's `Flush`: everything buffered out, then an empty stored block.
    pub fn flush(&mut self) {
        self.sync_step();
        self.w.write_stored_header(0, false);
        self.w.flush();
    }

    /// Go's `Close`: everything buffered out, then an empty final block.
    pub fn finish(&mut self) {
        self.sync_step();
        self.w.write_stored_header(0, true);
        self.w.flush();
    }

    fn sync_step(&mut self) {
        if let Mode::Lazy(lazy) = &mut self.mode {
            lazy.sync(&mut self.tokens, &mut self.w);
        } else {
            self.step(true);
        }
    }

    fn step(&mut self, sync: bool) {
        let full = self.window.len() == self.window_cap;
        let window = &self.window[..];
        match &mut self.mode {
            Mode::Store => {
                if !window.is_empty() && (full || sync) {
                    self.w.write_stored(window);
                    self.window.clear();
                }
            }
            Mode::Huff => {
                if (!full && !sync) || window.is_empty() {
                    return;
                }
                self.w.write_block_huff(false, window, sync);
                self.window.clear();
            }
            Mode::Fast(fast) => {
                let n = window.len();
                if !full {
                    if !sync {
                        return;
                    }
                    if n < 128 {
                        if n == 0 {
                            return;
                        }
                        if n <= 32 {
                            self.w.write_stored(window);
                        } else {
                            self.w.write_block_huff(false, window, true);
                        }
                        self.tokens.reset();
                        self.window.clear();
                        fast.reset();
                        return;
                    }
                }
                fast.encode(&mut self.tokens, window);
                if self.tokens.n == 0 {
                    self.w.write_stored(window);
                } else if self.tokens.n as i32 > n as i32 - (n as i32 >> 4) {
                    self.w.write_block_huff(false, window, sync);
                } else {
                    self.w
                        .write_block_dynamic(&mut self.tokens, false, Some(window), sync);
                }
                self.tokens.reset();
                self.window.clear();
            }
            Mode::Lazy(_) => unreachable!("levels 7-9 keep their own window"),
        }
    }
}
