//! Raw and RLE blocks read straight from the file, without a zstd decoder: the fast
//! path for a caller that hashes every byte it reads against a digest.
//!
//! Container layers are gzip, which zstd cannot shrink, so nearly every frame of a
//! bundle's blob data is a run of raw blocks (RFC 8878 §3.1.1.2: a 3-byte header, then
//! the bytes as they are). The streaming decoder copies such bytes twice (into its
//! window, then out) and keeps a window as large as the frame (4 MiB) per open reader;
//! [`RawCursor`] instead reads a raw block's bytes with one `pread` into the caller's
//! buffer, keeps no window, and walks the block headers to find an offset inside a
//! frame. It skips what only the decoder checks: the frame's content checksum (XXH64)
//! and the entropy-coded blocks. So it is used only where the bytes are hashed anyway
//! (a full blob checked against its sha256), and it gives up — [`None`], and the
//! reader falls back to the decoder at the same offset — at anything else: a compressed
//! or reserved block, a frame header airlock does not write (dictionary, no content
//! size), sizes that disagree with the seek table, a short read or an I/O error. The
//! decoder is thus still the one that reports every damage it would have reported.

use super::Frame;
use crate::bundle::source::BundleFile;

/// The largest block zstd allows (`Block_Maximum_Size` never exceeds it).
const MAX_BLOCK: u64 = 128 * 1024;

/// Where a walk over the blocks of consecutive frames stands.
#[derive(Debug)]
pub(super) struct RawCursor {
    /// Index of the frame being read.
    frame: usize,
    /// File offset of the current block's next content byte (raw), or of the next
    /// block header when the current block is done.
    c_pos: u64,
    /// Stream offset of the next byte this cursor yields.
    pub d_pos: u64,
    /// Bytes of the current block not yet yielded.
    left: u64,
    /// The byte an RLE block repeats (`None` for a raw block).
    rle: Option<u8>,
    /// Whether the current block is its frame's last.
    last: bool,
    /// Whether the frame ends in a 4-byte content checksum.
    checksum: bool,
}

impl RawCursor {
    /// A cursor at stream offset `pos` inside frame `idx`, or `None` when the blocks up
    /// to `pos` are not all raw or RLE (or anything looks off).
    pub(super) fn seek(
        file: &BundleFile,
        frames: &[Frame],
        idx: usize,
        pos: u64,
    ) -> Option<RawCursor> {
        let mut cur = RawCursor {
            frame: idx,
            c_pos: 0,
            d_pos: 0,
            left: 0,
            rle: None,
            last: false,
            checksum: false,
        };
        cur.enter_frame(file, frames, idx)?;
        loop {
            cur.next_block(file, frames)?;
            if cur.d_pos + cur.left > pos {
                let skip = pos - cur.d_pos;
                if cur.rle.is_none() {
                    cur.c_pos += skip;
                }
                cur.d_pos = pos;
                cur.left -= skip;
                return Some(cur);
            }
            cur.d_pos += cur.left;
            if cur.rle.is_none() {
                cur.c_pos += cur.left;
            }
            cur.left = 0;
            if cur.last {
                return None; // `pos` is not inside this frame
            }
        }
    }

    /// Reads up to `buf.len()` bytes: `Some(0)` at the end of the last frame, `None` when
    /// the decoder has to take over at `self.d_pos`.
    pub(super) fn read(
        &mut self,
        file: &BundleFile,
        frames: &[Frame],
        buf: &mut [u8],
    ) -> Option<usize> {
        loop {
            if self.left > 0 {
                let n = buf
                    .len()
                    .min(usize::try_from(self.left).unwrap_or(usize::MAX));
                let n = match self.rle {
                    Some(b) => {
                        buf[..n].fill(b);
                        n
                    }
                    None => match file.read_at(&mut buf[..n], self.c_pos) {
                        Ok(0) | Err(_) => return None,
                        Ok(got) => {
                            self.c_pos += got as u64;
                            got
                        }
                    },
                };
                self.d_pos += n as u64;
                self.left -= n as u64;
                return Some(n);
            }
            if !self.last {
                self.next_block(file, frames)?;
                continue;
            }
            // The frame is done: it must end where the seek table says.
            let f = frames[self.frame];
            let tail = if self.checksum { 4 } else { 0 };
            if self.d_pos != f.d_off + f.d_size || self.c_pos + tail != f.c_off + f.c_size {
                return None;
            }
            if self.frame + 1 == frames.len() {
                return Some(0);
            }
            self.enter_frame(file, frames, self.frame + 1)?;
        }
    }

    /// Positions the cursor after the header of frame `idx`.
    fn enter_frame(&mut self, file: &BundleFile, frames: &[Frame], idx: usize) -> Option<()> {
        let f = frames[idx];
        let mut head = [0u8; super::MAX_FRAME_HEADER];
        let n = read_fully(file, &mut head[..(f.c_size.min(18) as usize)], f.c_off)?;
        let (len, checksum) = frame_header(&head[..n], &f)?;
        *self = RawCursor {
            frame: idx,
            c_pos: f.c_off + len,
            d_pos: f.d_off,
            left: 0,
            rle: None,
            last: false,
            checksum,
        };
        Some(())
    }

    /// Reads the header of the block at `c_pos`; `None` unless it is a raw or RLE block
    /// that fits its frame.
    fn next_block(&mut self, file: &BundleFile, frames: &[Frame]) -> Option<()> {
        let f = frames[self.frame];
        let mut h = [0u8; 4];
        // The header and, for RLE, its byte.
        let want = (f.c_off + f.c_size).checked_sub(self.c_pos)?.min(4) as usize;
        let n = read_fully(file, &mut h[..want], self.c_pos)?;
        if n < 3 {
            return None;
        }
        let raw = u32::from_le_bytes(h);
        let last = raw & 1 != 0;
        let kind = (raw >> 1) & 3;
        let size = u64::from((raw >> 3) & 0x1F_FFFF);
        let content = match kind {
            0 => size,
            1 if n == 4 => 1,
            _ => return None,
        };
        if size > MAX_BLOCK
            || self.c_pos + 3 + content > f.c_off + f.c_size
            || self.d_pos + size > f.d_off + f.d_size
        {
            return None;
        }
        self.rle = (kind == 1).then_some(h[3]);
        self.c_pos += 3;
        if kind == 1 {
            self.c_pos += 1;
        }
        self.left = size;
        self.last = last;
        Some(())
    }
}

/// Fills `buf` from `offset`; `None` on an error, the count when the file ends early.
fn read_fully(file: &BundleFile, buf: &mut [u8], offset: u64) -> Option<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(_) => return None,
        }
    }
    Some(got)
}

/// The length of a frame header airlock writes (no dictionary, the content size set and
/// equal to the seek table's) and whether the frame has a checksum; `None` otherwise.
fn frame_header(head: &[u8], frame: &Frame) -> Option<(u64, bool)> {
    if head.len() < 5 || head[0..4] != super::ZSTD_MAGIC {
        return None;
    }
    let fhd = head[4];
    if fhd & 0x0B != 0 {
        return None; // reserved bit, or a dictionary
    }
    let single = fhd & 0x20 != 0;
    let fcs_len = match (fhd >> 6, single) {
        (0, true) => 1,
        (0, false) => return None,
        (1, _) => 2,
        (2, _) => 4,
        _ => 8,
    };
    let at = if single { 5 } else { 6 };
    let field = head.get(at..at + fcs_len)?;
    let mut raw = [0u8; 8];
    raw[..fcs_len].copy_from_slice(field);
    let mut size = u64::from_le_bytes(raw);
    if fcs_len == 2 {
        size += 256;
    }
    if size != frame.d_size {
        return None;
    }
    Some(((at + fcs_len) as u64, fhd & 0x04 != 0))
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::sync::Arc;

    use super::super::{ZstdSeekReader, encode_seek_table, read_seek_table};

    /// Bytes zstd cannot shrink (stored as raw blocks).
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    /// A seekable file of one frame per chunk, and its frames' decompressed bytes.
    fn seekable(chunks: &[Vec<u8>]) -> (tempfile::NamedTempFile, Vec<u8>) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let mut sizes = Vec::new();
        for c in chunks {
            let mut z = zstd::bulk::Compressor::new(3).unwrap();
            z.include_checksum(true).unwrap();
            let z = z.compress(c).unwrap();
            f.write_all(&z).unwrap();
            sizes.push((z.len() as u32, c.len() as u32));
        }
        f.write_all(&encode_seek_table(&sizes)).unwrap();
        f.flush().unwrap();
        (f, chunks.concat())
    }

    fn reader(path: &std::path::Path, pass_raw: bool) -> ZstdSeekReader {
        let mut file = File::open(path).unwrap();
        let len = file.metadata().unwrap().len();
        let table = read_seek_table(&mut file, len).unwrap().unwrap();
        ZstdSeekReader::new(file, Arc::from(table.frames), len - table.table_size)
            .passing_raw_blocks(pass_raw)
    }

    fn chunks() -> Vec<Vec<u8>> {
        let text: Vec<u8> = (0..300_000u32)
            .flat_map(|i| format!("line {} ", i % 977).into_bytes())
            .take(300_000)
            .collect();
        vec![
            noise(1_000_000, 1),                                    // raw blocks
            [noise(131_072, 5), vec![7u8; 300_000]].concat(),       // raw, then RLE blocks
            text.clone(),                                           // compressed blocks
            [noise(300_000, 2), text[..200_000].to_vec()].concat(), // raw, then compressed
            noise(10, 3),                                           // a tiny raw frame
            noise(140_000, 4),
        ]
    }

    /// The block types (0 raw, 1 RLE, 2 compressed) of each frame of `bytes`.
    fn block_types(bytes: &[u8], chunks: &[Vec<u8>]) -> Vec<Vec<u32>> {
        let mut at = 0;
        let mut out = Vec::new();
        for c in chunks {
            let frame = super::Frame {
                c_off: 0,
                c_size: 0,
                d_off: 0,
                d_size: c.len() as u64,
            };
            let (h, _) = super::frame_header(&bytes[at..at + 18], &frame).unwrap();
            at += h as usize;
            let mut types = Vec::new();
            loop {
                let raw = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], 0]);
                let (kind, size) = ((raw >> 1) & 3, (raw >> 3) as usize);
                types.push(kind);
                at += 3 + if kind == 1 { 1 } else { size };
                if raw & 1 != 0 {
                    break;
                }
            }
            at += 4; // checksum
            out.push(types);
        }
        out
    }

    #[test]
    fn the_test_frames_hold_raw_rle_and_compressed_blocks() {
        let chunks = chunks();
        let (f, _) = seekable(&chunks);
        let types = block_types(&std::fs::read(f.path()).unwrap(), &chunks);
        assert!(types[0].iter().all(|&t| t == 0), "{types:?}");
        assert!(
            types[1][0] == 0 && types[1][1..].iter().all(|&t| t == 1),
            "{types:?}"
        );
        assert!(types[2].iter().all(|&t| t == 2), "{types:?}");
        assert!(types[3][0] == 0 && types[3].contains(&2), "{types:?}");
    }

    #[test]
    fn raw_blocks_read_as_the_decoder_reads_them_at_any_offset() {
        let (f, want) = seekable(&chunks());
        let mut whole = Vec::new();
        reader(f.path(), true).read_to_end(&mut whole).unwrap();
        assert!(whole == want, "a sequential read differs");
        let mut r = reader(f.path(), true);
        let mut x = 12345u64;
        for _ in 0..300 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let at = (x >> 20) % want.len() as u64;
            let len = ((x >> 8) % 300_000) as usize;
            let end = (at as usize + len).min(want.len());
            r.seek(SeekFrom::Start(at)).unwrap();
            let mut got = vec![0u8; end - at as usize];
            r.read_exact(&mut got).unwrap();
            assert!(got == want[at as usize..end], "bytes {at}..{end} differ");
        }
    }

    #[test]
    fn a_raw_frame_needs_no_decoder_and_a_compressed_one_gets_it() {
        let (f, want) = seekable(&chunks());
        let mut r = reader(f.path(), true);
        let plain = 1_000_000 + 431_072;
        let mut got = vec![0u8; plain];
        r.read_exact(&mut got).unwrap();
        assert!(got == want[..plain]);
        assert!(r.dec.is_none(), "raw and RLE frames were decoded");
        let mut more = vec![0u8; 1000];
        r.read_exact(&mut more).unwrap();
        assert!(more == want[plain..plain + 1000]);
        assert!(r.dec.is_some(), "a compressed frame is the decoder's");
        // The frames after a compressed one are read raw again.
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert!(rest == want[plain + 1000..]);
        assert!(r.dec.is_none(), "the decoder stayed on for raw frames");
        // Without the option, the decoder reads everything.
        let mut r = reader(f.path(), false);
        r.read_exact(&mut got[..1000]).unwrap();
        assert!(r.dec.is_some());
    }

    #[test]
    fn without_a_seek_table_the_decoder_reads_everything() {
        let data = noise(300_000, 7);
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&zstd::encode_all(&data[..], 3).unwrap())
            .unwrap();
        let len = f.as_file().metadata().unwrap().len();
        let file = File::open(f.path()).unwrap();
        let mut r = ZstdSeekReader::new(file, ZstdSeekReader::whole_file(len), len)
            .passing_raw_blocks(true);
        assert!(!r.pass_raw);
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert!(got == data);
    }

    #[test]
    fn a_block_header_that_disagrees_with_the_table_is_left_to_the_decoder() {
        let (f, _) = seekable(&[noise(300_000, 9)]);
        let mut bytes = std::fs::read(f.path()).unwrap();
        // The first block header follows the 6-byte frame header (magic, descriptor,
        // 1-byte window... or content size): find it by parsing.
        let (hlen, _) = super::frame_header(
            &bytes[..18],
            &super::Frame {
                c_off: 0,
                c_size: 0,
                d_off: 0,
                d_size: 300_000,
            },
        )
        .unwrap();
        let h = hlen as usize;
        assert_eq!(bytes[h] >> 1 & 3, 0, "a raw block");
        bytes[h + 1] ^= 0x01; // the block's size
        std::fs::write(f.path(), &bytes).unwrap();
        for pass_raw in [false, true] {
            let err = reader(f.path(), pass_raw)
                .read_to_end(&mut Vec::new())
                .unwrap_err();
            assert!(
                super::super::FrameError::from_io(&err).is_some(),
                "pass_raw {pass_raw}: {err}"
            );
        }
    }
}
