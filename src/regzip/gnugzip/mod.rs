//! GNU gzip's own deflate (gzip 1.12's `deflate.c` + `trees.c`, zlib's ancestor but
//! not zlib: no zlib level writes the same bytes), reproduced bit for bit at levels
//! 1–9, for layers written by `tar | gzip` and tools that shell out to gzip.
//!
//! Split as gzip splits it, because each part decides visible bits: `deflate` (window,
//! hash chains, match search, the greedy parser of levels 1–3 and the lazy one of
//! 4–9), `trees` (block cuts, Huffman construction and tie-breaking, block type
//! choice, block formats), `bits` (the bit packing).
//!
//! Only the deflate stream is produced; gzip's header (name, mtime, the XFL byte it
//! sets to 2 at level 9 and 4 at level 1) is recorded bytes in a recipe. `--rsyncable`
//! output (extra block cuts) is not reproduced. Memory is bounded: a 64 KiB window,
//! the hash tables, one block of tokens, and the caller's unread input.

mod bits;
mod deflate;
mod trees;

use std::io;

use super::identify::{Candidate, Encoder};

/// GNU gzip at `level` (1..=9; gzip's default is 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GnuGzip {
    pub level: u32,
}

impl Encoder for GnuGzip {
    fn name(&self) -> String {
        format!("GNU gzip 1.12 level {}", self.level)
    }
    fn start(&self) -> io::Result<Box<dyn Candidate>> {
        if !(1..=9).contains(&self.level) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("GNU gzip level {} is not in 1..=9", self.level),
            ));
        }
        Ok(Box::new(Running(deflate::Deflate::new(self.level))))
    }
}

/// GNU gzip at its default level first (what `tar | gzip` writes), then 1–9.
pub fn gnu_encoders() -> Vec<GnuGzip> {
    [6, 1, 2, 3, 4, 5, 7, 8, 9]
        .into_iter()
        .map(|level| GnuGzip { level })
        .collect()
}

struct Running(deflate::Deflate);

impl Candidate for Running {
    fn write(&mut self, raw: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        self.0.write(raw);
        out.append(&mut self.0.w.out);
        Ok(())
    }
    fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        self.0.finish();
        out.append(&mut self.0.w.out);
        Ok(())
    }
}

/// The raw deflate stream GNU gzip writes for `data` at `level`.
pub fn deflate(level: u32, data: &[u8]) -> io::Result<Vec<u8>> {
    super::identify::deflate_all(&GnuGzip { level }, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regzip::testdata::{inflate, sample};

    #[test]
    fn every_level_round_trips() {
        let data = sample(200_000);
        for level in 1..=9 {
            for input in [&data[..], &[][..], &b"a"[..], &data[..70_000]] {
                let z = deflate(level, input).unwrap();
                assert!(inflate(&z) == input, "level {level}, {} bytes", input.len());
            }
        }
    }

    #[test]
    fn level_outside_1_to_9_is_refused() {
        for level in [0, 10] {
            assert!(GnuGzip { level }.start().is_err());
        }
    }
}
