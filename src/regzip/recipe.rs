//! Recipes: what it takes to turn a gzip layer's raw bytes back into the exact gzip
//! blob (per member: raw length, recorded header bytes, encoder; trailing zeros), how
//! one is found ([`find_recipe`], one pass of [`identify`](super::identify)) and how a
//! blob is rebuilt from one ([`Rebuilder`], [`rebuild`], [`RebuildReader`]).
//!
//! A recipe is serialized into the bundle's table of contents (`docs/bundle-format.md`,
//! "Compact layers"), so its JSON shape is part of the bundle format: change it only
//! additively. A rebuild is never trusted by itself: [`RebuildReader::verified`] hashes
//! the rebuilt bytes and fails at the end when they do not have the layer's digest.
//!
//! Rebuilding is push-shaped ([`Rebuilder`]: raw bytes in, gzip bytes out), so the same
//! code serves a reader (`push`, `verify`: raw entry in, gzip stream out) and a writer
//! that checks a recipe while the raw bytes pass by (`save --compact`).

use std::io::{self, Read, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use super::gnugzip::GnuGzip;
use super::goflate::GoFlate;
use super::goflate27::GoFlate127;
use super::header::GzipError;
use super::identify::{Candidate, Encoder, identify_with};
use super::klauspost::{self, Pgzip};
use super::pigz::{self, Pigz};
use super::zlib::{Strategy, ZlibParams};
use crate::digest::{Digest, Hasher};

/// How one gzip blob is rebuilt from its raw bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipe {
    /// The members, in order; their raw lengths add up to the raw bytes' length.
    pub members: Vec<MemberRecipe>,
    /// Bytes after the last member that are not a member: absent = none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trailing: Option<Trailing>,
}

/// One gzip member: `raw_len` raw bytes, compressed by `encoder`, framed by `header`
/// (recorded bytes) and a trailer recomputed from the raw bytes (CRC-32, size mod 2^32).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecipe {
    pub raw_len: u64,
    /// The member's header bytes exactly as found, base64 (RFC 4648, padded).
    pub header: String,
    pub encoder: EncoderSpec,
}

/// What follows the last member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trailing {
    /// That many zero bytes.
    Zeros(u64),
}

/// A DEFLATE encoder configuration a recipe names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "kebab-case")]
pub enum EncoderSpec {
    /// Go's `compress/flate`; `variant` `classic` is Go 1.7–1.26 (see `goflate`),
    /// `go1.27` is Go 1.27's rewrite (see `goflate27`).
    GoFlate { variant: GoVariant, level: i32 },
    /// Stock zlib's deflate (`deflateInit2` with these arguments, raw stream).
    Zlib {
        level: u8,
        window_bits: u8,
        mem_level: u8,
        strategy: ZlibStrategy,
    },
    /// klauspost's pgzip over klauspost's flate (containers/image: skopeo, podman);
    /// `variant` `compress-1.15` is compress 1.15 + pgzip 1.2 (see `klauspost`).
    Pgzip {
        variant: PgzipVariant,
        level: i32,
        block_size: u64,
    },
    /// pigz (2.6) over stock zlib: `block_size` bytes per block (`-b`), each primed
    /// with the previous block's last 32 KiB unless `independent` (`-i`); see `pigz`.
    /// `single_thread`: pigz's `-p 1` path (one stream across blocks), which differs
    /// at levels 1–3; absent = false.
    Pigz {
        level: u8,
        block_size: u64,
        independent: bool,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        single_thread: bool,
    },
    /// GNU gzip's own deflate (not zlib); `variant` `1.12` is gzip 1.12's
    /// (Debian 12; see `gnugzip`), `level` 1–9.
    GnuGzip { variant: GnuVariant, level: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GnuVariant {
    /// GNU gzip 1.12's `deflate.c` + `trees.c` (measured against Debian 12's gzip).
    #[serde(rename = "1.12")]
    Gzip112,
}

impl EncoderSpec {
    /// GNU gzip 1.12 at `level` (`gzip -6` is its default).
    pub fn gnu(level: u32) -> EncoderSpec {
        EncoderSpec::GnuGzip {
            variant: GnuVariant::Gzip112,
            level,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PgzipVariant {
    /// klauspost/compress 1.15.12's flate under pgzip 1.2.5 (Debian 12).
    #[serde(rename = "compress-1.15")]
    Compress115,
}

impl EncoderSpec {
    /// klauspost's pgzip at flate `level` with its default 1 MiB blocks (containers/image).
    pub fn pgzip(level: i32) -> EncoderSpec {
        EncoderSpec::Pgzip {
            variant: PgzipVariant::Compress115,
            level,
            block_size: klauspost::BLOCK_SIZE,
        }
    }
}

impl EncoderSpec {
    /// pigz at `level` with its defaults (128 KiB blocks, not independent).
    pub fn pigz(level: u8) -> EncoderSpec {
        EncoderSpec::Pigz {
            level,
            block_size: pigz::BLOCK_SIZE,
            independent: false,
            single_thread: false,
        }
    }
}

impl From<Pigz> for EncoderSpec {
    fn from(p: Pigz) -> EncoderSpec {
        EncoderSpec::Pigz {
            level: p.level,
            block_size: p.block_size,
            independent: p.independent,
            single_thread: p.single_thread,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GoVariant {
    /// The encoder before Go 1.27's rewrite.
    Classic,
    /// Go 1.27's rewritten encoder (Go 1.27.0–1.27.3).
    #[serde(rename = "go1.27")]
    Go127,
}

/// zlib's strategy argument, as a recipe names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ZlibStrategy {
    Default,
    Filtered,
    HuffmanOnly,
    Rle,
    Fixed,
}

impl ZlibStrategy {
    fn zlib(self) -> Strategy {
        match self {
            ZlibStrategy::Default => Strategy::Default,
            ZlibStrategy::Filtered => Strategy::Filtered,
            ZlibStrategy::HuffmanOnly => Strategy::HuffmanOnly,
            ZlibStrategy::Rle => Strategy::Rle,
            ZlibStrategy::Fixed => Strategy::Fixed,
        }
    }
}

impl EncoderSpec {
    /// Stock zlib at `level` with its default parameters (Python's `gzip`).
    pub fn zlib(level: u8) -> EncoderSpec {
        EncoderSpec::Zlib {
            level,
            window_bits: 15,
            mem_level: 8,
            strategy: ZlibStrategy::Default,
        }
    }

    /// Go's classic `compress/flate` at `level`.
    pub fn go(level: i32) -> EncoderSpec {
        EncoderSpec::GoFlate {
            variant: GoVariant::Classic,
            level,
        }
    }

    /// Short form for listings: `go-flate classic -1`, `zlib 9`.
    pub fn short(&self) -> String {
        match self {
            EncoderSpec::GoFlate {
                variant: GoVariant::Classic,
                level,
            } => format!("go-flate classic level {level}"),
            EncoderSpec::GoFlate {
                variant: GoVariant::Go127,
                level,
            } => format!("go-flate go1.27 level {level}"),
            EncoderSpec::Zlib { level, .. } => format!("zlib level {level}"),
            EncoderSpec::Pgzip {
                level, block_size, ..
            } => format!("pgzip level {level} ({} KiB blocks)", block_size >> 10),
            EncoderSpec::Pigz {
                level,
                block_size,
                independent,
                single_thread,
            } => format!(
                "pigz level {level} ({} KiB blocks{}{})",
                block_size >> 10,
                if *independent { ", independent" } else { "" },
                if *single_thread { ", one thread" } else { "" }
            ),
            EncoderSpec::GnuGzip { level, .. } => format!("gnu-gzip level {level}"),
        }
    }
}

impl EncoderSpec {
    /// The encoder this spec names, ready to start.
    fn encoder(&self) -> Box<dyn Encoder> {
        match *self {
            EncoderSpec::GoFlate {
                variant: GoVariant::Classic,
                level,
            } => Box::new(GoFlate { level }),
            EncoderSpec::GoFlate {
                variant: GoVariant::Go127,
                level,
            } => Box::new(GoFlate127 { level }),
            EncoderSpec::Zlib {
                level,
                window_bits,
                mem_level,
                strategy,
            } => Box::new(ZlibParams {
                level,
                window_bits,
                mem_level,
                strategy: strategy.zlib(),
            }),
            EncoderSpec::Pgzip {
                level, block_size, ..
            } => Box::new(Pgzip { level, block_size }),
            EncoderSpec::Pigz {
                level,
                block_size,
                independent,
                single_thread,
            } => Box::new(Pigz {
                level,
                block_size,
                independent,
                single_thread,
            }),
            EncoderSpec::GnuGzip { level, .. } => Box::new(GnuGzip { level }),
        }
    }
}

impl Encoder for EncoderSpec {
    fn name(&self) -> String {
        self.encoder().name()
    }
    fn start(&self) -> io::Result<Box<dyn Candidate>> {
        self.encoder().start()
    }
}

/// The encoders `save --compact` tries, in preference order (the first matching one is
/// recorded): Go's default level first (Docker's pushes), Go's other levels, then
/// klauspost's pgzip (skopeo/podman; its default level first), then stock zlib 1–9 (Python's `gzip`, lowest level first: the fastest rebuild), then GNU
/// gzip's own deflate (default level 6 first), then Go 1.27's rewritten encoder (its
/// default level first), then pigz (its default level first, 128 KiB blocks, then its
/// one-thread path at levels 1–3; a pigz stream shorter than a block is zlib's and
/// matches zlib first).
pub fn default_encoders() -> Vec<EncoderSpec> {
    let mut list = vec![EncoderSpec::go(6)];
    list.extend(
        [0, -2, 1, 2, 3, 4, 5, 7, 8, 9]
            .into_iter()
            .map(EncoderSpec::go),
    );
    list.extend(
        klauspost::pgzip_encoders()
            .into_iter()
            .map(|p| EncoderSpec::pgzip(p.level)),
    );
    list.extend((1..=9).map(EncoderSpec::zlib));
    // GNU gzip's own deflate (`tar | gzip`), its default level first.
    list.extend(
        super::gnugzip::gnu_encoders()
            .into_iter()
            .map(|g| EncoderSpec::gnu(g.level)),
    );
    // Go 1.27's rewritten encoder, default level first.
    list.extend(
        super::goflate27::go127_encoders()
            .into_iter()
            .map(|e| EncoderSpec::GoFlate {
                variant: GoVariant::Go127,
                level: e.level,
            }),
    );
    list.extend(pigz::pigz_encoders().into_iter().map(EncoderSpec::from));
    list
}

/// A recipe found for a blob, with what the raw bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub recipe: Recipe,
    /// sha256 of the raw bytes (for a layer: its diff_id).
    pub raw_digest: Digest,
    pub raw_len: u64,
}

/// Reads the gzip `blob` once and finds a recipe that rebuilds it with one of
/// `encoders`; `None` when some member has no matching encoder or the blob ends in
/// bytes a recipe does not record (non-zero trailing bytes). Errors are the blob's
/// (not gzip, corrupt) or the reader's.
pub fn find_recipe(blob: impl Read, encoders: &[EncoderSpec]) -> Result<Option<Found>, GzipError> {
    find_recipe_seeing(blob, encoders, &mut |_| {})
}

/// [`find_recipe`], showing every raw byte to `seen` as it is decompressed (once, in
/// order), for whatever else the caller learns from the raw bytes.
pub fn find_recipe_seeing(
    blob: impl Read,
    encoders: &[EncoderSpec],
    seen: &mut dyn FnMut(&[u8]),
) -> Result<Option<Found>, GzipError> {
    let list: Vec<&dyn Encoder> = encoders.iter().map(|e| e as &dyn Encoder).collect();
    let mut hasher = Hasher::new();
    let found = identify_with(blob, &list, &mut |raw| {
        hasher.update(raw);
        seen(raw);
    })?;
    let (raw_digest, raw_len) = hasher.finish();
    if !found.rebuildable() {
        return Ok(None);
    }
    let trailing = match (found.layout.trailing_len, found.layout.trailing_zeros) {
        (0, _) => None,
        (n, true) => Some(Trailing::Zeros(n)),
        (_, false) => return Ok(None),
    };
    let members = found
        .layout
        .members
        .iter()
        .zip(&found.members)
        .map(|(m, hit)| MemberRecipe {
            raw_len: m.raw_len,
            header: B64.encode(&m.header_bytes),
            encoder: encoders[hit.chosen().expect("rebuildable")],
        })
        .collect();
    Ok(Some(Found {
        recipe: Recipe { members, trailing },
        raw_digest,
        raw_len,
    }))
}

impl Recipe {
    /// The length of the raw bytes the recipe takes.
    pub fn raw_len(&self) -> u64 {
        self.members.iter().map(|m| m.raw_len).sum()
    }

    /// The distinct encoders it uses, for listings.
    pub fn encoders(&self) -> Vec<EncoderSpec> {
        let mut out: Vec<EncoderSpec> = Vec::new();
        for m in &self.members {
            if !out.contains(&m.encoder) {
                out.push(m.encoder);
            }
        }
        out
    }
}

fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// A running rebuild: raw bytes in ([`Rebuilder::write`]), gzip bytes out.
pub struct Rebuilder {
    recipe: Recipe,
    /// The next member to start.
    next: usize,
    current: Option<Running>,
}

struct Running {
    candidate: Box<dyn Candidate>,
    remaining: u64,
    raw_len: u64,
    crc: flate2::Crc,
}

impl Rebuilder {
    pub fn new(recipe: Recipe) -> Rebuilder {
        Rebuilder {
            recipe,
            next: 0,
            current: None,
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        let m = &self.recipe.members[self.next];
        let header = B64.decode(&m.header).map_err(|e| {
            bad(format!(
                "recipe member {}: header is not base64: {e}",
                self.next
            ))
        })?;
        out.extend_from_slice(&header);
        self.current = Some(Running {
            candidate: m.encoder.start()?,
            remaining: m.raw_len,
            raw_len: m.raw_len,
            crc: flate2::Crc::new(),
        });
        self.next += 1;
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        let mut run = self.current.take().expect("a member is running");
        run.candidate.finish(out)?;
        out.extend_from_slice(&run.crc.sum().to_le_bytes());
        out.extend_from_slice(&(run.raw_len as u32).to_le_bytes());
        Ok(())
    }

    /// Takes the next raw bytes, appending the gzip bytes ready to `out`.
    pub fn write(&mut self, mut raw: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        while !raw.is_empty() {
            if self.current.is_none() {
                if self.next == self.recipe.members.len() {
                    return Err(bad(format!(
                        "the raw bytes are longer than the recipe's {} bytes",
                        self.recipe.raw_len()
                    )));
                }
                self.start(out)?;
            }
            let run = self.current.as_mut().expect("started");
            let k = (run.remaining.min(raw.len() as u64)) as usize;
            run.candidate.write(&raw[..k], out)?;
            run.crc.update(&raw[..k]);
            run.remaining -= k as u64;
            raw = &raw[k..];
            if run.remaining == 0 {
                self.end(out)?;
            }
        }
        Ok(())
    }

    /// Ends the rebuild: the members not yet closed (they must be empty) and the
    /// trailing bytes.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        loop {
            if self.current.is_none() {
                if self.next == self.recipe.members.len() {
                    break;
                }
                self.start(out)?;
            }
            if self.current.as_ref().expect("started").remaining > 0 {
                return Err(bad(format!(
                    "the raw bytes end before the recipe's {} bytes",
                    self.recipe.raw_len()
                )));
            }
            self.end(out)?;
        }
        match self.recipe.trailing {
            None => {}
            Some(Trailing::Zeros(n)) => out.resize(out.len() + n as usize, 0),
        }
        Ok(())
    }
}

/// Rebuilds the gzip blob of `recipe` from `raw` into `out`; returns its length.
/// Not verified: see [`RebuildReader::verified`].
pub fn rebuild(recipe: &Recipe, raw: impl Read, mut out: impl Write) -> io::Result<u64> {
    let mut reader = RebuildReader::new(recipe.clone(), raw);
    io::copy(&mut reader, &mut out)
}

/// The gzip blob of a recipe as a reader over its raw bytes, rebuilt as it is read
/// (memory: the encoder's state and one chunk of output).
pub struct RebuildReader<R> {
    /// What the recipe uses, for messages.
    encoders: String,
    raw: R,
    /// `None` once finished.
    rebuilder: Option<Rebuilder>,
    buf: Vec<u8>,
    pos: usize,
    input: Vec<u8>,
    check: Option<(Digest, u64, Hasher)>,
}

impl<R: Read> RebuildReader<R> {
    pub fn new(recipe: Recipe, raw: R) -> RebuildReader<R> {
        RebuildReader {
            encoders: recipe
                .encoders()
                .iter()
                .map(EncoderSpec::short)
                .collect::<Vec<_>>()
                .join(", "),
            rebuilder: Some(Rebuilder::new(recipe)),
            raw,
            buf: Vec::new(),
            pos: 0,
            input: vec![0; 256 * 1024],
            check: None,
        }
    }

    /// The same, checked: at the end the rebuilt bytes must be `size` bytes with
    /// sha256 `digest`, else the read fails naming the digest (never hand on a rebuild
    /// that is not the layer).
    pub fn verified(recipe: Recipe, raw: R, digest: Digest, size: u64) -> RebuildReader<R> {
        let mut r = RebuildReader::new(recipe, raw);
        r.check = Some((digest, size, Hasher::new()));
        r
    }

    fn refill(&mut self) -> io::Result<()> {
        self.buf.clear();
        self.pos = 0;
        while self.buf.is_empty() {
            let Some(rebuilder) = self.rebuilder.as_mut() else {
                return Ok(());
            };
            let n = match self.raw.read(&mut self.input) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                rebuilder.finish(&mut self.buf)?;
                self.rebuilder = None;
            } else {
                rebuilder.write(&self.input[..n], &mut self.buf)?;
            }
            if let Some((_, _, h)) = self.check.as_mut() {
                h.update(&self.buf);
            }
        }
        Ok(())
    }

    fn check_end(&mut self) -> io::Result<()> {
        if let Some((digest, size, hasher)) = self.check.take() {
            let (got, len) = hasher.finish();
            if got != digest || len != size {
                return Err(bad(format!(
                    "the gzip bytes rebuilt for {digest} are {len} bytes with digest {got}, not {size} bytes with that digest: the raw bytes or the recipe ({}) are damaged",
                    self.encoders
                )));
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for RebuildReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.pos == self.buf.len() {
            self.refill()?;
            if self.buf.is_empty() {
                self.check_end()?;
                return Ok(0);
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regzip::gzip::encode_go;

    fn text(n: usize) -> Vec<u8> {
        let mut x = 1u32;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                b"abcdefgh \n"[(x >> 28) as usize % 10]
            })
            .collect()
    }

    #[test]
    fn go_blob_round_trips_and_serializes() {
        let data = text(300_000);
        let header = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
        let mut blob = Vec::new();
        encode_go(&header, -1, &data[..], &mut blob).unwrap();
        blob.extend_from_slice(&[0; 7]);
        let found = find_recipe(&blob[..], &default_encoders())
            .unwrap()
            .unwrap();
        assert_eq!(found.raw_len, data.len() as u64);
        assert_eq!(found.raw_digest, Digest::of(&data));
        assert_eq!(found.recipe.members[0].encoder, EncoderSpec::go(6));
        assert_eq!(found.recipe.trailing, Some(Trailing::Zeros(7)));
        let json = serde_json::to_string(&found.recipe).unwrap();
        assert!(json.contains(r#""family":"go-flate""#), "{json}");
        let back: Recipe = serde_json::from_str(&json).unwrap();
        let mut out = Vec::new();
        rebuild(&back, &data[..], &mut out).unwrap();
        assert!(out == blob);
        let mut ok = Vec::new();
        RebuildReader::verified(
            back.clone(),
            &data[..],
            Digest::of(&blob),
            blob.len() as u64,
        )
        .read_to_end(&mut ok)
        .unwrap();
        assert!(ok == blob);
        let mut damaged = data.clone();
        damaged[1000] ^= 1;
        let err = RebuildReader::verified(back, &damaged[..], Digest::of(&blob), blob.len() as u64)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(
            err.to_string().contains(Digest::of(&blob).as_str()),
            "{err}"
        );
    }

    #[test]
    fn empty_members_and_wrong_lengths() {
        let recipe = Recipe {
            members: vec![
                MemberRecipe {
                    raw_len: 0,
                    header: B64.encode([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]),
                    encoder: EncoderSpec::zlib(6),
                },
                MemberRecipe {
                    raw_len: 5,
                    header: B64.encode([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]),
                    encoder: EncoderSpec::zlib(9),
                },
                MemberRecipe {
                    raw_len: 0,
                    header: B64.encode([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]),
                    encoder: EncoderSpec::go(6),
                },
            ],
            trailing: None,
        };
        let mut out = Vec::new();
        rebuild(&recipe, &b"hello"[..], &mut out).unwrap();
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, b"hello");
        let found = find_recipe(&out[..], &default_encoders()).unwrap().unwrap();
        assert_eq!(found.recipe.members.len(), 3);
        assert!(rebuild(&recipe, &b"hell"[..], Vec::new()).is_err());
        assert!(rebuild(&recipe, &b"hello!"[..], Vec::new()).is_err());
    }

    #[test]
    fn unknown_encoder_has_no_recipe() {
        // flate2 here is zlib-rs, neither Go nor stock zlib on this input
        let data = text(300_000);
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(&data).unwrap();
        let blob = e.finish().unwrap();
        assert_eq!(find_recipe(&blob[..], &default_encoders()).unwrap(), None);
    }
}
