//! The zstd seekable format: the seek table airlock appends to a `.tar.zst` bundle,
//! and a `Read + Seek` view of the decompressed stream built on it.
//!
//! The layout is facebook/zstd's `contrib/seekable_format` (documented again in
//! `docs/bundle-format.md`): after the last data frame comes one skippable frame
//! (magic `0x184D2A5E`) holding, per data frame, its compressed and decompressed size
//! (u32 LE each, no checksums), then a 9-byte footer: frame count (u32 LE), a
//! descriptor byte, and the magic `0x8F92EAB1`. Ordinary zstd decoders skip the
//! skippable frame, so `zstd -d` still works on the whole file.
//!
//! [`ZstdSeekReader`] maps a decompressed offset to the frame that holds it and starts
//! decoding there. The writer starts every tar entry in a new frame, so seeking to an
//! entry never decompresses the entries before it (except in a compact bundle, whose
//! coarse frames span entries: an entry is reached by decoding its frame from the
//! start, up to 128 MiB). When a `.zst` file has no (valid)
//! seek table, the reader treats the whole file as one frame: sequential reads still
//! work, seeks forward decode and discard, seeks backward restart from the beginning.
//! The table is written and parsed by hand because it is a dozen documented bytes;
//! decoding the frames is the `zstd` crate's job (except the raw-block pass below,
//! which only copies stored bytes and hands everything else to it). The reader works on a
//! [`BundleFile`], so a split bundle's parts read as one file: frame offsets are offsets
//! in the joined bundle.
//!
//! A reader made [`passing_raw_blocks`](ZstdSeekReader::passing_raw_blocks) (for callers
//! that hash every byte against a digest) reads raw and RLE blocks straight from the
//! file ([`raw`]) and brings in the decoder only for a compressed block or anything
//! unusual: blob data is mostly raw blocks, and the decoder's window (as large as the
//! frame, per open reader) and double copy are what made serving a `.tar.zst` slower
//! and bigger than a `.tar`. Such a reader holds no buffer of its own until it needs
//! the decoder; the decoder, when used, holds its window and a `buffer`-sized input
//! buffer.

mod raw;

#[cfg(test)]
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::sync::Arc;

use super::source::BundleFile;

/// Magic number of the skippable frame that holds the seek table.
pub(crate) const SKIPPABLE_MAGIC: u32 = 0x184D_2A5E;
/// Magic number at the very end of a seekable zstd file.
pub(crate) const SEEKABLE_MAGIC: u32 = 0x8F92_EAB1;
/// The most frames a seek table may list (16 TiB of tar stream in 4 MiB frames; the
/// frame map then takes 128 MiB of memory): a bound on what a hostile table can cost.
pub(crate) const MAX_FRAMES: u64 = 1 << 22;
/// Size of the seek table footer (frame count, descriptor, magic).
pub(crate) const FOOTER_SIZE: u64 = 9;
/// The magic number that starts every zstd data frame (LE bytes).
pub(crate) const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// One zstd frame of the file: where it sits compressed and what it decompresses to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Offset of the frame in the file.
    pub c_off: u64,
    pub c_size: u64,
    /// Offset of the frame's content in the decompressed stream.
    pub d_off: u64,
    pub d_size: u64,
}

/// The seek table of a file, as read from its end.
#[derive(Debug, Clone)]
pub struct SeekTable {
    pub frames: Vec<Frame>,
    /// Size of the whole skippable frame holding the table (header, entries, footer).
    pub table_size: u64,
}

impl SeekTable {
    /// Total decompressed size.
    pub fn decompressed_size(&self) -> u64 {
        self.frames.last().map_or(0, |f| f.d_off + f.d_size)
    }
}

/// The bytes of a seek table for frames given as (compressed, decompressed) sizes.
pub fn encode_seek_table(frames: &[(u32, u32)]) -> Vec<u8> {
    let payload = frames.len() * 8 + FOOTER_SIZE as usize;
    let mut out = Vec::with_capacity(8 + payload);
    out.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
    out.extend_from_slice(&(payload as u32).to_le_bytes());
    for (c, d) in frames {
        out.extend_from_slice(&c.to_le_bytes());
        out.extend_from_slice(&d.to_le_bytes());
    }
    out.extend_from_slice(&(frames.len() as u32).to_le_bytes());
    out.push(0); // descriptor: no checksums, reserved bits zero
    out.extend_from_slice(&SEEKABLE_MAGIC.to_le_bytes());
    out
}

/// Why a file that ends in the seekable magic still has no usable seek table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableProblem {
    /// No seekable footer at the end: an ordinary zstd file (or a truncated one).
    Absent,
    /// A footer is there but the table is inconsistent with the file.
    Invalid(String),
}

/// Reads and checks the seek table at the end of `file` (`file_size` bytes long). The
/// frame sizes must add up exactly to the bytes before the table.
pub fn read_seek_table<R: Read + Seek>(
    file: &mut R,
    file_size: u64,
) -> io::Result<Result<SeekTable, TableProblem>> {
    if file_size < 8 + FOOTER_SIZE {
        return Ok(Err(TableProblem::Absent));
    }
    let mut footer = [0u8; FOOTER_SIZE as usize];
    file.seek(SeekFrom::Start(file_size - FOOTER_SIZE))?;
    file.read_exact(&mut footer)?;
    if u32::from_le_bytes(footer[5..9].try_into().expect("4 bytes")) != SEEKABLE_MAGIC {
        return Ok(Err(TableProblem::Absent));
    }
    let count = u64::from(u32::from_le_bytes(
        footer[0..4].try_into().expect("4 bytes"),
    ));
    let descriptor = footer[4];
    if descriptor & 0b0111_1100 != 0 {
        return Ok(Err(TableProblem::Invalid(format!(
            "seek table descriptor {descriptor:#04x} has reserved bits set"
        ))));
    }
    if count > MAX_FRAMES {
        return Ok(Err(TableProblem::Invalid(format!(
            "seek table claims {count} frames, more than the {MAX_FRAMES} a bundle can have"
        ))));
    }
    let entry_size = if descriptor & 0x80 != 0 { 12 } else { 8 };
    let table_size = 8 + count * entry_size + FOOTER_SIZE;
    if table_size > file_size {
        return Ok(Err(TableProblem::Invalid(format!(
            "seek table claims {count} frames, more than the file can hold"
        ))));
    }
    let start = file_size - table_size;
    file.seek(SeekFrom::Start(start))?;
    let mut head = [0u8; 8];
    file.read_exact(&mut head)?;
    let magic = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes"));
    let frame_size = u64::from(u32::from_le_bytes(head[4..8].try_into().expect("4 bytes")));
    if magic != SKIPPABLE_MAGIC || frame_size != table_size - 8 {
        return Ok(Err(TableProblem::Invalid(format!(
            "no skippable frame header at offset {start} where the seek table should start"
        ))));
    }
    let mut reader = BufReader::with_capacity(64 * 1024, &mut *file);
    let mut frames = Vec::with_capacity(count.min(1 << 20) as usize);
    let (mut c_off, mut d_off) = (0u64, 0u64);
    let mut entry = [0u8; 12];
    for _ in 0..count {
        reader.read_exact(&mut entry[..entry_size as usize])?;
        let c_size = u64::from(u32::from_le_bytes(entry[0..4].try_into().expect("4")));
        let d_size = u64::from(u32::from_le_bytes(entry[4..8].try_into().expect("4")));
        frames.push(Frame {
            c_off,
            c_size,
            d_off,
            d_size,
        });
        c_off += c_size;
        d_off += d_size;
        if c_off > start {
            return Ok(Err(TableProblem::Invalid(format!(
                "seek table frames add up to more than the {start} bytes before the table"
            ))));
        }
    }
    if c_off != start {
        return Ok(Err(TableProblem::Invalid(format!(
            "seek table frames add up to {c_off} bytes but the data before the table is {start} bytes"
        ))));
    }
    Ok(Ok(SeekTable { frames, table_size }))
}

/// The most bytes a zstd frame header takes (magic, descriptor, window, dictionary id,
/// content size).
pub(crate) const MAX_FRAME_HEADER: usize = 18;

/// Checks the header of the data frame the seek table places at `frame.c_off`: `head`
/// holds the first bytes of the frame (up to [`MAX_FRAME_HEADER`]). The frame must be
/// a zstd data frame as airlock writes them: no dictionary, a content checksum, the
/// content size set and equal to the table's decompressed size, reserved and unused
/// descriptor bits zero, and no window larger than the frame. A decoder would accept
/// some of these bits flipped and decode the same bytes; `verify` refuses them so that
/// no damage goes unnoticed.
pub fn check_frame_header(head: &[u8], frame: &Frame) -> Result<(), String> {
    if head.len() < 5 || head[0..4] != ZSTD_MAGIC {
        return Err("there is no zstd frame where the seek table puts one".to_string());
    }
    let fhd = head[4];
    let fcs_flag = fhd >> 6;
    let single = fhd & 0x20 != 0;
    if fhd & 0x18 != 0 {
        return Err(format!(
            "the frame descriptor {fhd:#04x} has its reserved or unused bits set"
        ));
    }
    if fhd & 0x04 == 0 {
        return Err("the frame has no content checksum".to_string());
    }
    if fhd & 0x03 != 0 {
        return Err("the frame names a dictionary, which airlock never uses".to_string());
    }
    let mut at = 5;
    let window = if single {
        None
    } else {
        let wd = *head.get(at).ok_or("the frame header is cut short")?;
        at += 1;
        Some(wd)
    };
    let fcs_len = match (fcs_flag, single) {
        (0, true) => 1,
        (0, false) => 0,
        (1, _) => 2,
        (2, _) => 4,
        _ => 8,
    };
    if fcs_len == 0 {
        return Err("the frame does not record its content size".to_string());
    }
    let field = head
        .get(at..at + fcs_len)
        .ok_or("the frame header is cut short")?;
    let mut raw = [0u8; 8];
    raw[..fcs_len].copy_from_slice(field);
    let mut size = u64::from_le_bytes(raw);
    if fcs_len == 2 {
        size += 256;
    }
    if size != frame.d_size {
        return Err(format!(
            "the frame holds {size} bytes of tar stream but the seek table says {}",
            frame.d_size
        ));
    }
    if let Some(wd) = window {
        // zstd uses a window descriptor only for frames larger than the window, with a
        // power-of-two window (mantissa 0).
        let exponent = u32::from(wd >> 3);
        let window_size = 1u64 << (10 + exponent);
        if wd & 0x07 != 0 || window_size >= size.max(1024) {
            return Err(format!(
                "the frame's window descriptor {wd:#04x} does not fit its {size} bytes"
            ));
        }
    }
    Ok(())
}

/// For a zstd file whose last bytes are not the seekable magic: whether it still ends
/// in what was a seek table (a skippable frame of the right size where the footer's
/// frame count puts it), that is, a seek table whose magic number is damaged.
pub fn damaged_footer<R: Read + Seek>(file: &mut R, file_size: u64) -> io::Result<Option<String>> {
    if file_size < 8 + FOOTER_SIZE {
        return Ok(None);
    }
    let mut footer = [0u8; FOOTER_SIZE as usize];
    file.seek(SeekFrom::Start(file_size - FOOTER_SIZE))?;
    file.read_exact(&mut footer)?;
    if u32::from_le_bytes(footer[5..9].try_into().expect("4 bytes")) == SEEKABLE_MAGIC {
        return Ok(None);
    }
    let count = u64::from(u32::from_le_bytes(
        footer[0..4].try_into().expect("4 bytes"),
    ));
    for entry_size in [8, 12] {
        let table_size = 8 + count * entry_size + FOOTER_SIZE;
        if table_size > file_size {
            continue;
        }
        let mut head = [0u8; 8];
        file.seek(SeekFrom::Start(file_size - table_size))?;
        file.read_exact(&mut head)?;
        let magic = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes"));
        let frame_size = u64::from(u32::from_le_bytes(head[4..8].try_into().expect("4 bytes")));
        if magic == SKIPPABLE_MAGIC && frame_size == table_size - 8 {
            return Ok(Some(format!(
                "the file ends in a seek table of {count} frames whose footer is damaged \
                 (its last 4 bytes are not the seekable magic number)"
            )));
        }
    }
    Ok(None)
}

/// A failure decoding a frame, carried inside the `io::Error` a [`ZstdSeekReader`]
/// returns; recover it with [`FrameError::from_io`].
#[derive(Debug, thiserror::Error)]
#[error("{}", self.describe())]
pub(crate) struct FrameError {
    pub frame: usize,
    pub c_off: u64,
    pub d_off: u64,
    /// Where the compressed data ends (the file size for a cut file).
    pub data_end: u64,
    /// Decompressed offset reached when decoding failed.
    pub at: u64,
    /// The compressed data ended before the frame did.
    pub truncated: bool,
    #[source]
    pub source: io::Error,
}

impl FrameError {
    fn describe(&self) -> String {
        if self.truncated {
            format!(
                "the file is cut short: it ends at byte {}, inside zstd frame {} (which starts at \
                 byte {}; {} bytes of it were decoded); copy the bundle again",
                self.data_end,
                self.frame,
                self.c_off,
                self.at.saturating_sub(self.d_off)
            )
        } else {
            format!(
                "zstd frame {} at file offset {} (stream offset {}) cannot be decoded",
                self.frame, self.c_off, self.d_off
            )
        }
    }

    pub(crate) fn from_io(e: &io::Error) -> Option<&FrameError> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<FrameError>())
    }
}

/// A byte range of the shared file, from `pos` on.
struct Section {
    file: Arc<BundleFile>,
    pos: u64,
    remaining: u64,
}

impl Read for Section {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        self.remaining -= n as u64;
        Ok(n)
    }
}

struct Decoding {
    decoder: zstd::stream::read::Decoder<'static, BufReader<Section>>,
    /// Decompressed offset of the next byte the decoder yields.
    pos: u64,
    /// Where the decoder started.
    started: u64,
}

/// `Read + Seek` over the decompressed content of a zstd file, using its frame map.
pub(crate) struct ZstdSeekReader {
    file: Arc<BundleFile>,
    frames: Arc<[Frame]>,
    /// End of the zstd data (the start of the seek table, or the file size).
    data_end: u64,
    pos: u64,
    dec: Option<Decoding>,
    buffer: usize,
    /// Whether raw blocks may be read without the decoder (see [`raw`]).
    pass_raw: bool,
    /// Where the raw-block walk stands, when it is in use.
    raw: Option<raw::RawCursor>,
}

impl ZstdSeekReader {
    /// Over one file (the unit tests' way in; the crate opens through
    /// [`from_source`](Self::from_source)).
    #[cfg(test)]
    fn new(file: File, frames: Arc<[Frame]>, data_end: u64) -> ZstdSeekReader {
        Self::from_source(Arc::new(BundleFile::single(file)), frames, data_end)
    }

    /// Like [`new`](Self::new), over a bundle file that may be a set of parts.
    pub(crate) fn from_source(
        file: Arc<BundleFile>,
        frames: Arc<[Frame]>,
        data_end: u64,
    ) -> ZstdSeekReader {
        ZstdSeekReader {
            file,
            frames,
            data_end,
            pos: 0,
            dec: None,
            buffer: 256 * 1024,
            pass_raw: false,
            raw: None,
        }
    }

    /// Reads raw and RLE blocks without the decoder, which leaves their frames' content
    /// checksums unchecked: only for a caller that checks every byte it reads against a
    /// digest. Has no effect without a seek table.
    pub(crate) fn passing_raw_blocks(mut self, on: bool) -> Self {
        // Only `whole_file` makes a frame of unknown size (a seek table holds u32 sizes).
        self.pass_raw = on && self.frames.first().is_none_or(|f| f.d_size != u64::MAX);
        self
    }

    /// Whether the decoder can go on from where it stands to `self.pos`.
    fn decoder_reusable(&self) -> bool {
        match &self.dec {
            Some(d) => {
                d.pos == self.pos
                    || (d.pos < self.pos && self.frame_index(d.pos) == self.frame_index(self.pos))
            }
            None => false,
        }
    }

    /// Reads through the raw-block walk; `None` when the decoder has to do this read.
    /// A decoder in use keeps the rest of its frame; at the next frame's start the walk
    /// is tried again, and the decoder is dropped when it succeeds.
    fn read_raw(&mut self, buf: &mut [u8]) -> Option<usize> {
        let mut cur = match self.raw.take() {
            Some(c) if c.d_pos == self.pos => c,
            _ => {
                let idx = self.frame_index(self.pos);
                let frame_start = self.frames.get(idx).is_some_and(|f| f.d_off == self.pos);
                if self.decoder_reusable() && !frame_start {
                    return None;
                }
                if idx >= self.frames.len() {
                    return Some(0);
                }
                let cur = raw::RawCursor::seek(&self.file, &self.frames, idx, self.pos)?;
                self.dec = None;
                cur
            }
        };
        let n = cur.read(&self.file, &self.frames, buf)?;
        self.pos += n as u64;
        self.raw = Some(cur);
        Some(n)
    }

    /// The frame map for a file without a seek table: one frame of unknown size.
    pub(crate) fn whole_file(file_size: u64) -> Arc<[Frame]> {
        Arc::from(vec![Frame {
            c_off: 0,
            c_size: file_size,
            d_off: 0,
            d_size: u64::MAX,
        }])
    }

    /// Size of the buffer between the file and the decoder (bigger for sequential scans).
    pub(crate) fn with_buffer_size(mut self, bytes: usize) -> Self {
        self.buffer = bytes;
        self
    }

    /// The index of the frame holding decompressed offset `pos` (`frames.len()` past the end).
    pub(crate) fn frame_index(&self, pos: u64) -> usize {
        self.frames
            .partition_point(|f| f.d_off.saturating_add(f.d_size) <= pos)
    }

    /// Starts a decoder at the frame holding `self.pos`; false when past the end.
    fn start(&mut self) -> io::Result<bool> {
        self.dec = None;
        let idx = self.frame_index(self.pos);
        let Some(frame) = self.frames.get(idx).copied() else {
            return Ok(false);
        };
        let section = Section {
            file: Arc::clone(&self.file),
            pos: frame.c_off,
            remaining: self.data_end.saturating_sub(frame.c_off),
        };
        let decoder = zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(
            self.buffer,
            section,
        ))?;
        self.dec = Some(Decoding {
            decoder,
            pos: frame.d_off,
            started: frame.d_off,
        });
        Ok(true)
    }

    fn frame_error(&mut self, source: io::Error) -> io::Error {
        let dec = self.dec.take();
        let at = dec.as_ref().map_or(self.pos, |d| d.pos);
        let mut idx = self
            .frame_index(at)
            .min(self.frames.len().saturating_sub(1));
        // A checksum is checked after the frame's last byte came out, so the decoder
        // stands at the start of the next frame: the damage is in the one before.
        if idx > 0
            && self.frames[idx].d_off == at
            && source.to_string().contains("checksum")
            && dec.as_ref().is_some_and(|d| d.started < at)
        {
            idx -= 1;
        }
        let frame = self.frames.get(idx).copied().unwrap_or(Frame {
            c_off: 0,
            c_size: 0,
            d_off: 0,
            d_size: 0,
        });
        let truncated = dec.is_some_and(|d| d.decoder.get_ref().get_ref().remaining == 0)
            && source.kind() == io::ErrorKind::UnexpectedEof;
        let kind = if truncated {
            io::ErrorKind::UnexpectedEof
        } else {
            io::ErrorKind::InvalidData
        };
        io::Error::new(
            kind,
            FrameError {
                frame: idx,
                c_off: frame.c_off,
                d_off: frame.d_off,
                data_end: self.data_end,
                at,
                truncated,
                source,
            },
        )
    }
}

impl Read for ZstdSeekReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.pass_raw
            && let Some(n) = self.read_raw(buf)
        {
            return Ok(n);
        }
        self.raw = None;
        if !self.decoder_reusable() && !self.start()? {
            return Ok(0);
        }
        // Skip forward inside the frame to the wanted offset (the scratch buffer is
        // zeroed only when there is something to skip).
        let mut scratch = Vec::new();
        loop {
            let dec = self.dec.as_mut().expect("decoder started");
            if dec.pos >= self.pos {
                break;
            }
            if scratch.is_empty() {
                scratch = vec![0u8; 8192];
            }
            let want = (self.pos - dec.pos).min(scratch.len() as u64) as usize;
            match dec.decoder.read(&mut scratch[..want]) {
                Ok(0) => {
                    self.dec = None;
                    return Ok(0);
                }
                Ok(n) => dec.pos += n as u64,
                Err(e) => return Err(self.frame_error(e)),
            }
        }
        let dec = self.dec.as_mut().expect("decoder started");
        match dec.decoder.read(buf) {
            Ok(n) => {
                dec.pos += n as u64;
                self.pos += n as u64;
                Ok(n)
            }
            Err(e) => Err(self.frame_error(e)),
        }
    }
}

impl Seek for ZstdSeekReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => {
                let end = self
                    .frames
                    .last()
                    .map_or(0, |f| f.d_off.saturating_add(f.d_size));
                if end == u64::MAX {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        "the size of a zstd stream without a seek table is unknown",
                    ));
                }
                end.checked_add_signed(d)
            }
        };
        self.pos = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the stream",
            )
        })?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn seekable_file(chunks: &[&[u8]]) -> (tempfile::NamedTempFile, u64) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let mut sizes = Vec::new();
        for c in chunks {
            let z = zstd::bulk::compress(c, 3).unwrap();
            f.write_all(&z).unwrap();
            sizes.push((z.len() as u32, c.len() as u32));
        }
        f.write_all(&encode_seek_table(&sizes)).unwrap();
        f.flush().unwrap();
        let len = f.as_file().metadata().unwrap().len();
        (f, len)
    }

    #[test]
    fn table_round_trip_and_random_access() {
        let a = vec![b'a'; 5000];
        let b: Vec<u8> = (0..9000u32).map(|i| (i % 251) as u8).collect();
        let (f, len) = seekable_file(&[&a, &b, b"tail"]);
        let mut file = File::open(f.path()).unwrap();
        let table = read_seek_table(&mut file, len).unwrap().unwrap();
        assert_eq!(table.frames.len(), 3);
        assert_eq!(table.decompressed_size(), 14004);
        let data_end = len - table.table_size;
        let mut r = ZstdSeekReader::new(file, Arc::from(table.frames), data_end);
        r.seek(SeekFrom::Start(5000 + 100)).unwrap();
        let mut got = [0u8; 10];
        r.read_exact(&mut got).unwrap();
        assert_eq!(&got[..], &b[100..110]);
        r.seek(SeekFrom::Start(10)).unwrap();
        r.read_exact(&mut got).unwrap();
        assert_eq!(got, [b'a'; 10]);
        r.seek(SeekFrom::End(-4)).unwrap();
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"tail");
        // The whole file also decodes as one stream (the table is a skippable frame).
        let whole = zstd::decode_all(File::open(f.path()).unwrap()).unwrap();
        assert_eq!(whole.len(), 14004);
    }

    #[test]
    fn plain_zstd_has_no_table_and_still_reads() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 13) as u8).collect();
        f.write_all(&zstd::encode_all(&data[..], 3).unwrap())
            .unwrap();
        let len = f.as_file().metadata().unwrap().len();
        let mut file = File::open(f.path()).unwrap();
        assert_eq!(
            read_seek_table(&mut file, len).unwrap().unwrap_err(),
            TableProblem::Absent
        );
        let mut r = ZstdSeekReader::new(file, ZstdSeekReader::whole_file(len), len);
        r.seek(SeekFrom::Start(50_000)).unwrap();
        let mut got = [0u8; 5];
        r.read_exact(&mut got).unwrap();
        assert_eq!(&got[..], &data[50_000..50_005]);
        r.seek(SeekFrom::Start(3)).unwrap();
        r.read_exact(&mut got).unwrap();
        assert_eq!(&got[..], &data[3..8]);
    }

    #[test]
    fn truncated_stream_is_reported() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let z = zstd::encode_all(&data[..], 3).unwrap();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&z[..z.len() / 2]).unwrap();
        let len = (z.len() / 2) as u64;
        let file = File::open(f.path()).unwrap();
        let mut r = ZstdSeekReader::new(file, ZstdSeekReader::whole_file(len), len);
        let err = r.read_to_end(&mut Vec::new()).unwrap_err();
        let fe = FrameError::from_io(&err).expect("frame error");
        assert!(fe.truncated, "{err}");
    }
}
