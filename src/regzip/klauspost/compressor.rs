//! klauspost's `compressor` (`deflate.go` in klauspost/compress 1.15): the window each
//! level fills, when it runs its step, and what `Flush`, `Close` and a dictionary do.
//!
//! Levels 1–6 (and the default, which is 5) fill a 65535-byte window and, each time it
//! is full, have their match finder encode it; the window then becomes a stored block
//! (no tokens), a Huffman-only block (nearly all literals) or a dynamic block — which may
//! continue the previous window's block (see `writer`). A sync flush encodes whatever is
//! buffered (fewer than 128 bytes: stored up to 32, Huffman-only above) and writes an
//! empty stored block; `Close` ends with an empty final fixed block (`03 00`). Level 0
//! stores 65535-byte blocks, level -2 writes 32 KiB Huffman-only windows, levels 7–9
//! run the lazy matcher (`lazy`). A dictionary is encoded and its tokens dropped, so only
//! the match finder's tables and history keep it.

use super::super::deflate::tokens::{MAX_STORE_BLOCK, Tokens};
use super::fast::{FastEnc, MAX_MATCH_OFFSET, new_fast};
use super::lazy::Lazy;
use super::writer::BitWriter;

enum Mode {
    Store,
    Huff,
    Fast(Box<dyn FastEnc>),
    Lazy(Box<Lazy>),
}

/// One klauspost flate stream at one level.
pub struct Compressor {
    mode: Mode,
    pub w: BitWriter,
    window: Vec<u8>,
    window_end: usize,
    tokens: Tokens,
    sync: bool,
}

impl Compressor {
    /// `level`: -2 (Huffman only), -1 (default = 5), 0 (stored) ..= 9.
    pub fn new(level: i32) -> Option<Compressor> {
        let (mode, window, penalty) = match level {
            0 => (Mode::Store, MAX_STORE_BLOCK, 0),
            -2 => (Mode::Huff, 32 << 10, 10),
            -1 => (Mode::Fast(new_fast(5)), MAX_STORE_BLOCK, 7),
            1..=6 => (Mode::Fast(new_fast(level)), MAX_STORE_BLOCK, 7),
            7..=9 => (Mode::Lazy(Box::new(Lazy::new(level))), 2 * 32768, 8),
            _ => return None,
        };
        Some(Compressor {
            mode,
            w: BitWriter::new(penalty),
            window: vec![0; window],
            window_end: 0,
            tokens: Tokens::new(),
            sync: false,
        })
    }

    /// Primes the match finder with `dict` (the original's `ResetDict` on a fresh
    /// writer): nothing is written.
    pub fn set_dict(&mut self, dict: &[u8]) {
        match &mut self.mode {
            Mode::Store | Mode::Huff => {}
            Mode::Fast(f) => {
                let d = &dict[dict.len().saturating_sub(MAX_MATCH_OFFSET as usize)..];
                f.encode(&mut self.tokens, d);
                self.tokens.reset();
            }
            Mode::Lazy(l) => {
                self.window_end += l.fill_window(&mut self.window[self.window_end..], dict);
            }
        }
    }

    /// Go's `Write`.
    pub fn write(&mut self, mut b: &[u8]) {
        while !b.is_empty() {
            if self.window_end == self.window.len() || self.sync {
                self.step();
            }
            let n = match &mut self.mode {
                Mode::Lazy(l) => l.fill(&mut self.window, &mut self.window_end, b),
                _ => {
                    let n = b.len().min(self.window.len() - self.window_end);
                    self.window[self.window_end..self.window_end + n].copy_from_slice(&b[..n]);
                    self.window_end += n;
                    n
                }
            };
            b = &b[n..];
        }
    }

    /// Go's `Flush`: everything buffered out, then an empty stored block.
    pub fn flush(&mut self) {
        self.sync = true;
        self.step();
        self.w.write_stored_header(0, false);
        self.w.flush();
        self.sync = false;
    }

    /// Go's `Close`: everything buffered out, then an empty final block.
    pub fn close(&mut self) {
        self.sync = true;
        self.step();
        self.w.write_stored_header(0, true);
        self.w.flush();
    }

    fn step(&mut self) {
        let end = self.window_end;
        let sync = self.sync;
        let (w, tokens) = (&mut self.w, &mut self.tokens);
        match &mut self.mode {
            Mode::Store => {
                if end > 0 && (end == MAX_STORE_BLOCK || sync) {
                    w.write_stored(&self.window[..end], false);
                    self.window_end = 0;
                }
            }
            Mode::Huff => {
                if end < self.window.len() && !sync || end == 0 {
                    return;
                }
                w.write_block_huff(false, &self.window[..end], sync);
                self.window_end = 0;
            }
            Mode::Fast(f) => {
                let window = &self.window[..end];
                if end < self.window.len() {
                    if !sync {
                        return;
                    }
                    if end < 128 {
                        if end == 0 {
                            return;
                        }
                        if end <= 32 {
                            w.write_stored(window, false);
                        } else {
                            w.write_block_huff(false, window, true);
                        }
                        tokens.reset();
                        self.window_end = 0;
                        f.reset();
                        return;
                    }
                }
                f.encode(tokens, window);
                if tokens.n == 0 {
                    w.write_stored(window, false);
                } else if tokens.n > end - (end >> 4) {
                    w.write_block_huff(false, window, sync);
                } else {
                    w.write_block_dynamic(tokens, false, Some(window), sync);
                }
                tokens.reset();
                self.window_end = 0;
            }
            Mode::Lazy(l) => l.step(w, tokens, &self.window, end, sync),
        }
    }
}
