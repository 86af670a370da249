//! Which encoder wrote a gzip blob: one streaming pass that decompresses each member
//! while every candidate encoder compresses the same raw bytes, each candidate's
//! output compared with the original compressed bytes as both are produced.
//!
//! A candidate is dropped at its first differing byte, so wrong encoders cost about
//! one deflate block each (the cheap prefix trial), and a candidate still alive at
//! the member's end has rebuilt the member's deflate bytes exactly (the full
//! rebuild) — both in the same pass over the blob, with memory bounded by the
//! encoders' state plus the distance between the original stream and the slowest
//! live candidate (capped at [`MAX_LAG`]; a candidate lagging further is dropped).
//!
//! Encoders plug in through two small traits: [`Encoder`] (a recipe entry: a name
//! and a way to start) and [`Candidate`] (one running compressor: raw bytes in,
//! compressed bytes out, incrementally). Stock zlib implements both here; other
//! encoders (Go's flate) implement them in their own modules.
//!
//! Ties: several encoders may produce the same bytes for a member (random data is
//! all stored blocks at many zlib levels). Any of them rebuilds it, so the choice
//! only has to be deterministic: the first matching encoder in the caller's list,
//! which is therefore a preference order (zlib's list, [`zlib_encoders`], is by
//! ascending level: the lowest level is the fastest rebuild).

use std::io::{self, Read};

use super::header::{GzipError, Header, Layout, Member, Visitor, walk};
use super::zlib::{Deflater, ZlibParams};

/// One running compressor being tried against a member's deflate stream.
pub trait Candidate: Send {
    /// Compresses `raw`, appending whatever compressed bytes are ready to `out`.
    fn write(&mut self, raw: &[u8], out: &mut Vec<u8>) -> io::Result<()>;
    /// Ends the stream, appending the remaining compressed bytes to `out`.
    fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()>;
}

/// An encoder configuration a recipe can name (e.g. zlib level 9).
pub trait Encoder: Sync {
    /// How reports and recipes name it.
    fn name(&self) -> String;
    /// A fresh compressor for one deflate stream.
    fn start(&self) -> io::Result<Box<dyn Candidate>>;
}

/// `input` compressed in one go by a fresh compressor of `encoder`: its whole raw
/// deflate stream (the encoders' one-shot `encode`/`deflate` functions).
pub fn deflate_all(encoder: &dyn Encoder, input: &[u8]) -> io::Result<Vec<u8>> {
    let mut c = encoder.start()?;
    let mut out = Vec::new();
    c.write(input, &mut out)?;
    c.finish(&mut out)?;
    Ok(out)
}

impl Candidate for Deflater {
    fn write(&mut self, raw: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        Deflater::write(self, raw, out)
    }
    fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        Deflater::finish(self, out)
    }
}

impl Encoder for ZlibParams {
    fn name(&self) -> String {
        format!(
            "zlib level {} (window bits {}, memory level {}, strategy {})",
            self.level,
            self.window_bits,
            self.mem_level,
            self.strategy.name()
        )
    }
    fn start(&self) -> io::Result<Box<dyn Candidate>> {
        Ok(Box::new(Deflater::new(*self)?))
    }
}

/// Stock zlib at levels 1–9 with its default parameters (what Python's `gzip` and
/// most zlib users write), lowest level first.
pub fn zlib_encoders() -> Vec<ZlibParams> {
    (1..=9).map(ZlibParams::level).collect()
}

/// A candidate further than this behind the original stream (or this far ahead of
/// it) is dropped, which bounds the bytes held for comparison.
pub const MAX_LAG: usize = 16 << 20;

/// Which encoders rebuilt one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMatch {
    /// Indices into the encoder list of every encoder whose output equals the
    /// member's deflate bytes, in list order.
    pub matching: Vec<usize>,
}

impl MemberMatch {
    /// The encoder a recipe records: the first matching one in list order.
    pub fn chosen(&self) -> Option<usize> {
        self.matching.first().copied()
    }
}

/// A blob's layout and, per member, the encoders that rebuild it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identified {
    pub layout: Layout,
    pub members: Vec<MemberMatch>,
}

impl Identified {
    /// Whether every member has an encoder (the blob can be stored as raw + recipe).
    pub fn rebuildable(&self) -> bool {
        self.members.iter().all(|m| m.chosen().is_some())
    }
}

/// Reads `blob` once and finds, for each member, which of `encoders` reproduce its
/// deflate stream byte for byte.
pub fn identify(blob: impl Read, encoders: &[&dyn Encoder]) -> Result<Identified, GzipError> {
    identify_with(blob, encoders, &mut |_| {})
}

/// [`identify`], also handing every decompressed byte to `on_raw` as it comes out (so a
/// caller can hash the raw stream in the same pass).
pub fn identify_with(
    blob: impl Read,
    encoders: &[&dyn Encoder],
    on_raw: &mut dyn FnMut(&[u8]),
) -> Result<Identified, GzipError> {
    let mut trial = Trial {
        on_raw,
        encoders,
        alive: Vec::new(),
        window: Vec::new(),
        base: 0,
        scratch: Vec::new(),
        members: Vec::new(),
    };
    let layout = walk(blob, &mut trial)?;
    Ok(Identified {
        layout,
        members: trial.members,
    })
}

struct Running {
    index: usize,
    candidate: Box<dyn Candidate>,
    /// Bytes of its output found equal to the original so far.
    matched: u64,
    /// Its output beyond what the original stream has shown yet.
    ahead: Vec<u8>,
}

struct Trial<'a> {
    on_raw: &'a mut dyn FnMut(&[u8]),
    encoders: &'a [&'a dyn Encoder],
    alive: Vec<Running>,
    /// The member's original compressed bytes from offset `base` on: what the
    /// slowest live candidate has not been compared with yet.
    window: Vec<u8>,
    base: u64,
    scratch: Vec<u8>,
    members: Vec<MemberMatch>,
}

impl Trial<'_> {
    fn end(&self) -> u64 {
        self.base + self.window.len() as u64
    }

    /// Compares a candidate's pending output with the original as far as both go;
    /// false when it differs (or falls too far behind).
    fn advance(run: &mut Running, window: &[u8], base: u64) -> bool {
        let end = base + window.len() as u64;
        let n = ((end - run.matched) as usize).min(run.ahead.len());
        let from = (run.matched - base) as usize;
        if run.ahead[..n] != window[from..from + n] {
            return false;
        }
        run.matched += n as u64;
        run.ahead.drain(..n);
        run.ahead.len() <= MAX_LAG && (end - run.matched) as usize <= MAX_LAG
    }

    /// Drops compared bytes no live candidate needs any more (in large steps, so
    /// the copying stays linear).
    fn trim(&mut self) {
        let low = self
            .alive
            .iter()
            .map(|r| r.matched)
            .min()
            .unwrap_or(self.end());
        let k = (low - self.base) as usize;
        if k >= (1 << 20) || (k > 0 && k == self.window.len()) {
            self.window.drain(..k);
            self.base = low;
        }
    }
}

impl Visitor for Trial<'_> {
    fn member_start(&mut self, _index: usize, _h: &Header, _bytes: &[u8]) -> io::Result<()> {
        self.window.clear();
        self.base = 0;
        self.alive = self
            .encoders
            .iter()
            .enumerate()
            .filter_map(|(index, e)| {
                let candidate = e.start().ok()?;
                Some(Running {
                    index,
                    candidate,
                    matched: 0,
                    ahead: Vec::new(),
                })
            })
            .collect();
        Ok(())
    }

    fn compressed(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.alive.is_empty() {
            return Ok(());
        }
        self.window.extend_from_slice(bytes);
        let (window, base) = (&self.window, self.base);
        self.alive
            .retain_mut(|run| run.ahead.is_empty() || Self::advance(run, window, base));
        self.trim();
        Ok(())
    }

    fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        (self.on_raw)(bytes);
        if bytes.is_empty() || self.alive.is_empty() {
            return Ok(());
        }
        let (window, base, scratch) = (&self.window, self.base, &mut self.scratch);
        self.alive.retain_mut(|run| {
            scratch.clear();
            if run.candidate.write(bytes, scratch).is_err() {
                return false;
            }
            run.ahead.extend_from_slice(scratch);
            Self::advance(run, window, base)
        });
        self.trim();
        Ok(())
    }

    fn member_end(&mut self, member: &Member) -> io::Result<()> {
        let (window, base, scratch) = (&self.window, self.base, &mut self.scratch);
        let end = member.deflate_len;
        let mut matching = Vec::new();
        for mut run in self.alive.drain(..) {
            scratch.clear();
            if run.candidate.finish(scratch).is_err() {
                continue;
            }
            run.ahead.extend_from_slice(scratch);
            if Self::advance(&mut run, window, base) && run.ahead.is_empty() && run.matched == end {
                matching.push(run.index);
            }
        }
        matching.sort_unstable();
        self.members.push(MemberMatch { matching });
        self.window.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regzip::zlib::deflate;

    fn gzip_member(level: u8, data: &[u8]) -> Vec<u8> {
        let mut m = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
        deflate(ZlibParams::level(level), data, &mut m).unwrap();
        let mut crc = flate2::Crc::new();
        crc.update(data);
        m.extend_from_slice(&crc.sum().to_le_bytes());
        m.extend_from_slice(&(data.len() as u32).to_le_bytes());
        m
    }

    fn text(n: usize) -> Vec<u8> {
        let words = [
            "layer", "blob", "digest", "manifest", "tar", "gzip", "zlib", "air",
        ];
        let mut x = 7u32;
        let mut v = Vec::new();
        while v.len() < n {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            v.extend_from_slice(words[(x >> 29) as usize].as_bytes());
            v.push(if x & 0x100 == 0 { b' ' } else { b'\n' });
        }
        v
    }

    #[test]
    fn each_member_is_matched_to_its_level() {
        let data = text(400_000);
        let blob = [
            gzip_member(2, &data),
            gzip_member(9, &data),
            gzip_member(5, b""),
        ]
        .concat();
        let encoders = zlib_encoders();
        let list: Vec<&dyn Encoder> = encoders.iter().map(|e| e as &dyn Encoder).collect();
        let found = identify(&blob[..], &list).unwrap();
        assert_eq!(found.layout.members.len(), 3);
        assert_eq!(found.members[0].chosen(), Some(1), "{:?}", found.members);
        // on this small-vocabulary text levels 8 and 9 find the same matches (the
        // chain limit is never reached): a tie, the lower level is chosen
        assert_eq!(found.members[1].matching, vec![7, 8]);
        assert_eq!(
            found.members[1].chosen().map(|i| encoders[i].level),
            Some(8)
        );
        // the empty stream is the same two bytes at every level: a tie, first wins
        assert_eq!(found.members[2].matching, (0..9).collect::<Vec<_>>());
        assert_eq!(found.members[2].chosen(), Some(0));
        assert!(found.rebuildable());
    }

    #[test]
    fn another_encoder_matches_nothing() {
        // flate2 here is zlib-rs, whose output differs from stock zlib's
        let data = text(400_000);
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        std::io::Write::write_all(&mut e, &data).unwrap();
        let blob = e.finish().unwrap();
        let encoders = zlib_encoders();
        let list: Vec<&dyn Encoder> = encoders.iter().map(|e| e as &dyn Encoder).collect();
        let found = identify(&blob[..], &list).unwrap();
        assert_eq!(found.members, vec![MemberMatch { matching: vec![] }]);
        assert!(!found.rebuildable());
        assert_eq!(found.layout.raw_len(), data.len() as u64);
    }
}
