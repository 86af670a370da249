//! klauspost/compress's `flate` encoder under klauspost's `pgzip` framing, reproduced bit
//! for bit: what skopeo, podman and buildah (containers/image's gzip compressor:
//! `pgzip.NewWriter`, i.e. level -1, which flate runs as level 5) write for layers. The
//! reference is Debian 12: golang-github-klauspost-compress-dev 1.15.12 and
//! golang-github-klauspost-pgzip-dev 1.2.5, which its skopeo 1.9.3 and podman 4.3.1 are
//! built from; other versions are not claimed (a layer they wrote differently is simply
//! not identified, never mis-rebuilt).
//!
//! **pgzip**: the raw stream is cut into blocks of exactly 1 MiB (the last one shorter,
//! possibly empty), each compressed by its own flate writer whose dictionary is the
//! previous block's last 16 KiB (none for the first block); each block ends with a sync flush (an empty stored block), the last one also
//! with flate's `Close` (an empty final fixed block). Blocks are compressed in parallel
//! goroutines but written in order, and nothing a block's compressor does depends on
//! another's state (a pooled writer is fully reset, see `fast`), so the output does not
//! depend on scheduling, and here the blocks are simply compressed one after another,
//! streaming: memory is one compressor and its window, never a whole block of output.
//! Output comes out window by window (at most 64 KiB of input behind the raw bytes fed),
//! so `identify` compares as it goes, far inside its `MAX_LAG`, and a wrong level is
//! dropped after its first window.
//!
//! Split as the original is, because each part decides visible bits: `compressor` (the
//! window, steps, flush/close, dictionary), `fast` and `greedy` (levels 1–6's match
//! finders), `lazy` (levels 7–9), `writer` (block type choice and table reuse). The
//! token block (histograms and the size estimate) and the code tables are in
//! `regzip::deflate`, shared with `goflate27` (Go 1.27 took them over unchanged). The
//! Huffman code construction is Go's (`goflate::huffman`): klauspost's is the same
//! algorithm with the same (frequency, symbol) order.

mod compressor;
mod fast;
mod greedy;
mod lazy;
mod writer;

use std::io;

use super::identify::{Candidate, Encoder as RecipeEncoder};
use compressor::Compressor;

/// pgzip's block size (`defaultBlockSize`), which containers/image does not change.
pub const BLOCK_SIZE: u64 = 1 << 20;
/// The largest block size a recipe may name.
pub const MAX_BLOCK_SIZE: u64 = 256 << 20;
/// How much of the previous block primes the next one (`tailSize`).
pub const TAIL_SIZE: usize = 16384;

/// klauspost's pgzip at one flate level and block size: an encoder a recipe names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pgzip {
    /// -2 (Huffman only), 0 (stored), 1..=9; -1 writes what 5 writes.
    pub level: i32,
    pub block_size: u64,
}

/// Every level, in the order `identify` tries them: the default (5) first, then the
/// others by ascending level, stored and Huffman only last.
pub fn pgzip_encoders() -> Vec<Pgzip> {
    [5, 1, 2, 3, 4, 6, 7, 8, 9, 0, -2]
        .into_iter()
        .map(|level| Pgzip {
            level,
            block_size: BLOCK_SIZE,
        })
        .collect()
}

impl Pgzip {
    fn compressor(&self) -> io::Result<Compressor> {
        Compressor::new(self.level).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "klauspost flate level {} is not reproduced (-2..=9 are)",
                    self.level
                ),
            )
        })
    }
}

impl RecipeEncoder for Pgzip {
    fn name(&self) -> String {
        format!(
            "klauspost pgzip level {} ({} KiB blocks; compress 1.15, pgzip 1.2)",
            self.level,
            self.block_size >> 10
        )
    }
    fn start(&self) -> io::Result<Box<dyn Candidate>> {
        // Up to 256 MiB a block stays below the point where the original re-bases its
        // hash positions (which is not reproduced).
        // (pgzip itself refuses blocks of at most 16 KiB.)
        if self.block_size <= TAIL_SIZE as u64 || self.block_size > MAX_BLOCK_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "pgzip block size {} is not in 16385..=256 MiB",
                    self.block_size
                ),
            ));
        }
        Ok(Box::new(Running {
            spec: *self,
            comp: self.compressor()?,
            in_block: 0,
            tail: Vec::with_capacity(2 * TAIL_SIZE),
        }))
    }
}

/// A pgzip stream being written: the current block's compressor and the tail of the
/// current block (the next block's dictionary).
struct Running {
    spec: Pgzip,
    comp: Compressor,
    in_block: u64,
    tail: Vec<u8>,
}

impl Running {
    fn keep_tail(&mut self, chunk: &[u8]) {
        if chunk.len() >= TAIL_SIZE {
            self.tail.clear();
            self.tail
                .extend_from_slice(&chunk[chunk.len() - TAIL_SIZE..]);
        } else {
            self.tail.extend_from_slice(chunk);
            if self.tail.len() > TAIL_SIZE {
                let cut = self.tail.len() - TAIL_SIZE;
                self.tail.drain(..cut);
            }
        }
    }
}

impl Candidate for Running {
    fn write(&mut self, mut raw: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        while !raw.is_empty() {
            let k = (self.spec.block_size - self.in_block).min(raw.len() as u64) as usize;
            self.comp.write(&raw[..k]);
            self.keep_tail(&raw[..k]);
            self.in_block += k as u64;
            raw = &raw[k..];
            if self.in_block == self.spec.block_size {
                self.comp.flush();
                out.append(&mut self.comp.w.out);
                self.comp = self.spec.compressor()?;
                // (a block is always longer than the tail: see `start`)
                self.comp.set_dict(&self.tail);
                self.tail.clear();
                self.in_block = 0;
            }
        }
        out.append(&mut self.comp.w.out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        self.comp.flush();
        self.comp.close();
        out.append(&mut self.comp.w.out);
        Ok(())
    }
}

/// Compresses `input` as pgzip's deflate stream (no gzip header or trailer) at `level`.
pub fn encode(level: i32, input: &[u8]) -> io::Result<Vec<u8>> {
    let pgzip = Pgzip {
        level,
        block_size: BLOCK_SIZE,
    };
    super::identify::deflate_all(&pgzip, input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regzip::testdata::{inflate, sample};

    #[test]
    fn every_level_round_trips() {
        let input = sample(2_500_000);
        for p in pgzip_encoders() {
            for len in [0, 1, 17, 200, 70_000, 1 << 20, input.len()] {
                let out = encode(p.level, &input[..len]).unwrap();
                assert!(
                    inflate(&out) == input[..len],
                    "level {}, {len} bytes",
                    p.level
                );
            }
        }
        // the empty stream: a sync flush, then the final empty block
        assert_eq!(encode(5, b"").unwrap(), [0, 0, 0, 0xff, 0xff, 3, 0]);
        for bad in [0, TAIL_SIZE as u64, MAX_BLOCK_SIZE + 1] {
            let p = Pgzip {
                level: 5,
                block_size: bad,
            };
            assert!(p.start().is_err(), "block size {bad}");
        }
        assert!(
            Pgzip {
                level: 10,
                block_size: BLOCK_SIZE
            }
            .start()
            .is_err()
        );
    }

    #[test]
    fn output_does_not_depend_on_write_sizes() {
        let input = sample(2_300_000);
        for p in pgzip_encoders() {
            let want = encode(p.level, &input).unwrap();
            let mut c = p.start().unwrap();
            let mut got = Vec::new();
            for piece in input.chunks(12_345) {
                c.write(piece, &mut got).unwrap();
            }
            c.finish(&mut got).unwrap();
            assert!(got == want, "{}", p.name());
        }
    }
}
