//! Go's classic `compress/flate` encoder, reproduced bit for bit at every level: -2
//! (Huffman only), 0 (stored), 1 (BestSpeed), 2–9, and -1 (default, which is 6). The
//! reference is Go 1.19; which Go releases write the same bytes (from the encoder's
//! history, and measured for 1.26.6 and 1.27.3):
//!
//! - levels 2–9 and -1: Go 1.7 through 1.26 (the encoder did not change);
//! - level 0: Go 1.8 through 1.26 (1.7 cut a stored block at every `Write`);
//! - level -2: Go 1.15 through 1.26 (before, the stored-or-Huffman size estimate
//!   left out the distance code's one bit);
//! - level 1: Go 1.15.4 through 1.26 (1.8–1.14 differ in that same estimate and past
//!   1 GiB of input, 1.15.0–1.15.3 past 2 GiB, 1.7 everywhere).
//!
//! Go 1.27 replaced the encoder (klauspost/compress's, one commit, April 2026): its
//! output differs at every level and is not this module's.
//!
//! Split as Go splits it, because each part decides visible bits: `deflate` (windows,
//! block cuts, the lazy match finder of levels 2–9), `fast` (level 1's match finder),
//! `bitwriter` (stored/fixed/dynamic choice and the block formats), `huffman` (the
//! length-limited code construction and its tie-breaking), `tokens` (the packed token
//! and the RFC 1951 code tables).
//!
//! Go's output depends on the bytes and, in one corner, on where its `Write` calls
//! split them: levels 2–9 can decide one position differently when a call ends so that
//! the window slides just before that position rather than after. Writes of 32 KiB from
//! the start (Go's `io.Copy`) and one big `Write` give the same bytes; [`encode`] feeds
//! 32 KiB writes. Memory is bounded: a 64 KiB window, the hash tables and one block.

mod bitwriter;
mod deflate;
mod fast;
pub(crate) mod huffman;
mod tokens;

use std::io::{self, Read, Write};

use super::identify::{Candidate, Encoder as RecipeEncoder};

/// A streaming raw DEFLATE encoder producing Go 1.19's `compress/flate` bytes.
pub struct Encoder<W: Write> {
    inner: deflate::Compressor,
    out: W,
}

/// Bytes buffered in the bit writer before they are handed to the output.
const DRAIN_AT: usize = 1 << 16;

impl<W: Write> Encoder<W> {
    /// `level` as Go's: -2 Huffman only, -1 default (6), 0 stored, 1 fastest … 9 best.
    pub fn new(level: i32, out: W) -> io::Result<Self> {
        let inner = deflate::Compressor::new(level).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("flate level {level} is not in -2..=9"),
            )
        })?;
        Ok(Encoder { inner, out })
    }

    /// Like one Go `Write` call with `data` (where Go's `Write` calls split the input
    /// matters in one corner case: see the module docs).
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let out = &mut self.out;
        self.inner.write(data, DRAIN_AT, &mut |buf: &mut Vec<u8>| {
            out.write_all(buf)?;
            buf.clear();
            Ok(())
        })
    }

    /// Go's `Flush`: pending data out, then an empty non-final stored block.
    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush();
        self.drain(0)?;
        self.out.flush()
    }

    /// Go's `Close`: pending data out, then an empty final stored block. Returns the writer.
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

/// Write-call size that reproduces Go's `io.Copy` into the encoder.
pub const CHUNK: usize = 32 * 1024;

/// Reads `input` to its end and writes its raw DEFLATE stream (Go's `flate.NewWriter` at
/// `level`, then `Write`s, then `Close`) to `out`. Returns the number of bytes read.
pub fn encode(level: i32, input: impl Read, out: impl Write) -> io::Result<u64> {
    let mut enc = Encoder::new(level, out)?;
    let total = feed(input, |chunk| enc.write(chunk))?;
    enc.finish()?;
    Ok(total)
}

/// Reads `input` in full `CHUNK`-sized pieces (short only at the end) and hands each to
/// `sink`; returns the total.
pub(crate) fn feed(
    mut input: impl Read,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let mut n = 0;
        while n < CHUNK {
            match input.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
        sink(&buf[..n])?;
        if n < CHUNK {
            return Ok(total);
        }
    }
}

/// One Go flate level as an encoder a recipe names and `identify` tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoFlate {
    /// -2, 0..=9 (-1 writes what 6 writes).
    pub level: i32,
}

/// Every distinct Go level, the fastest rebuild first (the tie rule of `identify`):
/// stored, Huffman only, 1, then 2..=9. Docker's default (-1) is 6.
pub fn go_encoders() -> Vec<GoFlate> {
    [0, -2, 1, 2, 3, 4, 5, 6, 7, 8, 9]
        .into_iter()
        .map(|level| GoFlate { level })
        .collect()
}

impl RecipeEncoder for GoFlate {
    fn name(&self) -> String {
        format!(
            "Go compress/flate level {} (classic, as Go 1.19)",
            self.level
        )
    }
    fn start(&self) -> io::Result<Box<dyn Candidate>> {
        let inner = deflate::Compressor::new(self.level).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("flate level {} is not in -2..=9", self.level),
            )
        })?;
        Ok(Box::new(Running {
            inner,
            chunk: Vec::with_capacity(CHUNK),
        }))
    }
}

/// A Go flate compressor fed the way `encode` feeds it (32 KiB writes from the
/// start), whatever sizes the raw bytes arrive in.
struct Running {
    inner: deflate::Compressor,
    chunk: Vec<u8>,
}

impl Running {
    fn write_chunk(
        inner: &mut deflate::Compressor,
        chunk: &[u8],
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        inner.write(chunk, 0, &mut |buf: &mut Vec<u8>| {
            out.append(buf);
            Ok(())
        })
    }
}

impl Candidate for Running {
    fn write(&mut self, mut raw: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        while !raw.is_empty() {
            if self.chunk.is_empty() && raw.len() >= CHUNK {
                Self::write_chunk(&mut self.inner, &raw[..CHUNK], out)?;
                raw = &raw[CHUNK..];
                continue;
            }
            let k = (CHUNK - self.chunk.len()).min(raw.len());
            self.chunk.extend_from_slice(&raw[..k]);
            raw = &raw[k..];
            if self.chunk.len() == CHUNK {
                Self::write_chunk(&mut self.inner, &self.chunk, out)?;
                self.chunk.clear();
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        if !self.chunk.is_empty() {
            Self::write_chunk(&mut self.inner, &self.chunk, out)?;
            self.chunk.clear();
        }
        self.inner.finish();
        out.append(&mut self.inner.w.out);
        Ok(())
    }
}

/// Length of the common prefix of `a` and `b` (up to the shorter one).
#[inline]
pub(crate) fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().unwrap())
            ^ u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        if x != 0 {
            return i + (x.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regzip::testdata::{inflate, sample};

    #[test]
    fn every_level_round_trips() {
        let input = sample(300_000);
        for level in -2..=9 {
            for len in [0, 1, 17, 200, 70_000, input.len()] {
                let mut out = Vec::new();
                encode(level, &input[..len], &mut out).unwrap();
                assert_eq!(inflate(&out), &input[..len], "level {level}, {len} bytes");
            }
        }
        assert!(Encoder::new(10, Vec::new()).is_err());
    }

    #[test]
    fn one_big_write_equals_32k_writes() {
        let input = sample(300_000);
        for level in -2..=9 {
            let mut chunked = Vec::new();
            encode(level, &input[..], &mut chunked).unwrap();
            let mut enc = Encoder::new(level, Vec::new()).unwrap();
            enc.write(&input).unwrap();
            assert!(chunked == enc.finish().unwrap(), "level {level}");
        }
    }

    #[test]
    fn candidate_fed_odd_pieces_equals_encode() {
        let input = sample(300_000);
        for enc in go_encoders() {
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
