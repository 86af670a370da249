//! pigz's single-member gzip output rebuilt with stock zlib: what `pigz` (Mark Adler's
//! parallel gzip, checked against 2.6 as Debian ships it, linked with zlib ≥ 1.2.6)
//! writes at levels 1–9, with any block size (`-b`) and with or without `-i`.
//!
//! How pigz lays out its deflate stream (read from its source, tag v2.6, and checked
//! against the real tool by `tests/regzip_pigz.rs`):
//!
//! - the raw bytes are cut into blocks of exactly `-b` KiB (default 128 KiB, at least
//!   32 KiB), the last one shorter; a stream whose length is a multiple of the block
//!   size has no empty last block (pigz reads ahead to know whether more follows);
//! - each block is compressed on its own: one zlib stream per thread, opened with
//!   `deflateInit2(6, -15, 8, strategy)`, then per block `deflateReset` and
//!   `deflateParams(level)` (which right after a reset only sets the level's match
//!   parameters) and, unless `-i`, `deflateSetDictionary` with the last 32 KiB of the
//!   input before the block (with blocks of at least 32 KiB: the previous block's
//!   tail); the first block has no dictionary;
//! - a block that is not the last is flushed to a byte boundary: `Z_BLOCK`, then, if
//!   zlib holds an odd number of bits (or with `-i`), `Z_SYNC_FLUSH` (an empty stored
//!   block); with an even, non-zero number it adds empty static blocks (10 bits each,
//!   `deflatePrime(10, 2)`) until the bits make whole bytes; with `-i` a `Z_FULL_FLUSH`
//!   follows (a second empty stored block); the last block ends with `Z_FINISH`.
//!
//! Because every block's compressor starts from a reset state plus a dictionary, the
//! output does not depend on how many threads (`-p` 2 or more) compressed it. With one
//! thread (`-p 1`, and pigz's default on a one-CPU machine) pigz takes another path: one
//! zlib stream goes on across blocks with the same flushes between them, reset only
//! with `-i`. At levels 4–9 (zlib's lazy matcher, which indexes every string) that
//! writes the same bytes as the parallel path; at levels 1–3 (zlib's fast matcher,
//! which skips indexing inside long matches, where a dictionary indexes everything) it
//! does not, so a recipe says which path (`single_thread`); the tests check both
//! against `-p 1` and `-p 2`. Here the blocks are compressed one after another,
//! streaming: raw bytes go into zlib as they come (zlib's output does not depend on the
//! input's chunking), and only the flush that ends a block waits for the next byte (or
//! the end). Memory: one zlib state and a 32 KiB tail.
//!
//! Not covered: `-11` (zopfli, a different encoder: such a layer gets no recipe and is
//! kept as is), `-0` (zlib's stored level, whose block cuts follow the output buffer's
//! room), `--rsyncable` (`-R`, content-defined block cuts), and `-H`/`-U` (Huffman-only
//! and RLE strategies).

use std::io;

use super::identify::{Candidate, Encoder};
use super::zlib::{Deflater, Flush, ZlibParams};

/// pigz's default block size (`-b 128`).
pub const BLOCK_SIZE: u64 = 128 << 10;
/// pigz's smallest block size (`-b 32`); also how much history primes a block.
pub const DICT: usize = 32 << 10;
/// pigz's largest block size (512 MiB).
pub const MAX_BLOCK_SIZE: u64 = 1 << 29;

/// pigz at one level, block size and independence: an encoder a recipe names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pigz {
    /// 1..=9 (zlib's levels).
    pub level: u8,
    /// Bytes per block (`-b` KiB × 1024): 32 KiB to 512 MiB, a multiple of 1 KiB.
    pub block_size: u64,
    /// `-i`: blocks compressed without the previous block's history.
    pub independent: bool,
    /// pigz's one-thread path (`-p 1`): one zlib stream across blocks instead of a
    /// reset and a dictionary per block. Matters at levels 1–3 only.
    pub single_thread: bool,
}

impl Pigz {
    /// pigz at `level` with its defaults (128 KiB blocks, history carried over).
    pub fn level(level: u8) -> Pigz {
        Pigz {
            level,
            block_size: BLOCK_SIZE,
            independent: false,
            single_thread: false,
        }
    }
}

/// pigz's levels as `identify` tries them: its default (6) first, then by ascending
/// level, then the one-thread path at the levels where it differs (1–3); default block
/// size, history carried over.
pub fn pigz_encoders() -> Vec<Pigz> {
    let parallel = [6, 1, 2, 3, 4, 5, 7, 8, 9].into_iter().map(Pigz::level);
    let single = (1..=3).map(|level| Pigz {
        single_thread: true,
        ..Pigz::level(level)
    });
    parallel.chain(single).collect()
}

impl Encoder for Pigz {
    fn name(&self) -> String {
        format!(
            "pigz level {} ({} KiB blocks{}{}; pigz 2.6 over stock zlib)",
            self.level,
            self.block_size >> 10,
            if self.independent {
                ", independent"
            } else {
                ""
            },
            if self.single_thread {
                ", one thread"
            } else {
                ""
            }
        )
    }

    fn start(&self) -> io::Result<Box<dyn Candidate>> {
        if self.block_size < DICT as u64
            || self.block_size > MAX_BLOCK_SIZE
            || !self.block_size.is_multiple_of(1024)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "pigz block size {} is not a multiple of 1 KiB in 32 KiB..=512 MiB",
                    self.block_size
                ),
            ));
        }
        if !(1..=9).contains(&self.level) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("pigz level {} is not reproduced (1-9 are)", self.level),
            ));
        }
        // pigz opens its stream at level 6 and sets the block's level after a reset.
        let mut z = Deflater::new(ZlibParams::level(6))?;
        z.reset(self.level)?;
        Ok(Box::new(Running {
            spec: *self,
            z,
            in_block: 0,
            tail: Vec::with_capacity(2 * DICT),
        }))
    }
}

/// A pigz stream being written: the zlib stream of the current block, how much of the
/// block it has had, and the last 32 KiB of input (the next block's dictionary).
struct Running {
    spec: Pigz,
    z: Deflater,
    in_block: u64,
    tail: Vec<u8>,
}

impl Running {
    fn keep_tail(&mut self, chunk: &[u8]) {
        if chunk.len() >= DICT {
            self.tail.clear();
            self.tail.extend_from_slice(&chunk[chunk.len() - DICT..]);
        } else {
            self.tail.extend_from_slice(chunk);
            if self.tail.len() > DICT {
                let cut = self.tail.len() - DICT;
                self.tail.drain(..cut);
            }
        }
    }

    /// Ends a block that more input follows (byte aligned, see the module doc) and
    /// starts the next one.
    fn next_block(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        let z = &mut self.z;
        z.flush(Flush::Block, out)?;
        let bits = z.pending_bits()?;
        if bits & 1 == 1 || self.spec.independent {
            z.flush(Flush::Sync, out)?;
        } else if bits & 7 != 0 {
            // an empty static block: header bits 0 (not last), 01 (static), then the
            // 7-bit end-of-block code 0000000
            while z.pending_bits()? & 7 != 0 {
                z.prime(10, 2)?;
            }
            z.flush(Flush::Block, out)?;
        }
        if self.spec.independent {
            z.flush(Flush::Full, out)?;
        }
        if self.spec.single_thread {
            // one stream goes on; `-i` resets it (same level)
            if self.spec.independent {
                z.reset(self.spec.level)?;
            }
            self.in_block = 0;
            return Ok(());
        }
        z.reset(self.spec.level)?;
        if !self.spec.independent {
            // blocks are at least DICT long, so the tail is the previous block's
            z.set_dictionary(&self.tail)?;
        }
        self.in_block = 0;
        Ok(())
    }
}

impl Candidate for Running {
    fn write(&mut self, mut raw: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        while !raw.is_empty() {
            if self.in_block == self.spec.block_size {
                self.next_block(out)?;
            }
            let k = (self.spec.block_size - self.in_block).min(raw.len() as u64) as usize;
            self.z.write(&raw[..k], out)?;
            if !self.spec.independent && !self.spec.single_thread {
                self.keep_tail(&raw[..k]);
            }
            self.in_block += k as u64;
            raw = &raw[k..];
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        self.z.finish(out)
    }
}

/// Compresses `input` as pigz's deflate stream (no gzip header or trailer).
pub fn encode(spec: Pigz, input: &[u8]) -> io::Result<Vec<u8>> {
    super::identify::deflate_all(&spec, input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regzip::testdata::{inflate, sample};

    #[test]
    fn round_trips_and_ignores_input_chunking() {
        let data = sample(700_000);
        for spec in [
            Pigz::level(6),
            Pigz::level(1),
            Pigz {
                block_size: 32 << 10,
                ..Pigz::level(9)
            },
            Pigz {
                independent: true,
                ..Pigz::level(6)
            },
            Pigz {
                single_thread: true,
                ..Pigz::level(1)
            },
        ] {
            let whole = encode(spec, &data).unwrap();
            assert_eq!(inflate(&whole), data, "{spec:?}");
            let mut c = spec.start().unwrap();
            let mut out = Vec::new();
            for piece in data.chunks(10_007) {
                c.write(piece, &mut out).unwrap();
            }
            c.finish(&mut out).unwrap();
            assert!(out == whole, "{spec:?}: chunking changed the output");
        }
    }

    #[test]
    fn blocks_end_byte_aligned_and_history_matters() {
        let data = sample(3 * BLOCK_SIZE as usize);
        let with = encode(Pigz::level(6), &data).unwrap();
        let without = encode(
            Pigz {
                independent: true,
                ..Pigz::level(6)
            },
            &data,
        )
        .unwrap();
        assert_ne!(with, without);
        // -i ends every block but the last with two empty stored blocks
        let markers = without
            .windows(5)
            .filter(|w| *w == [0, 0, 0xff, 0xff, 0])
            .count();
        assert!(markers >= 2, "{markers} full-flush markers");
        assert_eq!(inflate(&with), data);
    }

    #[test]
    fn bad_parameters_are_refused() {
        for bad in [
            Pigz::level(0),
            Pigz::level(10),
            Pigz {
                block_size: 16 << 10,
                ..Pigz::level(6)
            },
            Pigz {
                block_size: (64 << 10) + 1,
                ..Pigz::level(6)
            },
            Pigz {
                block_size: MAX_BLOCK_SIZE + 1024,
                ..Pigz::level(6)
            },
        ] {
            let err = bad.start().err().expect("refused");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        }
        assert_eq!(encode(Pigz::level(6), b"").unwrap(), vec![3, 0]);
    }
}
