//! Where the bundle writer's tar stream goes: the [`Sink`] the tar builder writes into
//! (plain, or cut into zstd frames compressed in parallel by [`crate::ordered`] with a
//! seek table at the end), the [`Output`] behind it (one hidden file or a
//! [`PartWriter`]) and the [`Counting`] writer that measures what reaches the disk.
//!
//! Kept apart from [`BundleWriter`](super::BundleWriter), which decides what entries a
//! bundle holds; this module only knows bytes, frames and where they land. Errors from
//! writing the output are marked ([`sink_error`]) so the writer can tell a full disk
//! from a blob source that failed.

use std::fs::File;
use std::io::{self, BufWriter, Write};

use super::{COARSE_GROUP_INPUT, Frames, LONG_WINDOW_LOG};
use crate::bundle::parts::PartWriter;
use crate::bundle::seekable::encode_seek_table;
use crate::ordered;

/// Marks io errors that came from writing the output rather than reading a blob.
#[derive(Debug, thiserror::Error)]
#[error("writing the bundle file failed")]
pub(super) struct SinkError(#[source] io::Error);

pub(super) fn sink_error(e: io::Error) -> io::Error {
    io::Error::other(SinkError(e))
}

pub(super) fn is_sink_error(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<SinkError>())
}

/// Where the bytes go: one temporary file, or parts.
pub(super) enum Output {
    Single(BufWriter<File>),
    Split(Box<PartWriter>),
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Single(w) => w.write(buf),
            Output::Split(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Single(w) => w.flush(),
            Output::Split(w) => w.flush(),
        }
    }
}

/// The file writer, counting what reaches the disk.
pub(super) struct Counting {
    pub(super) inner: Output,
    pub(super) written: u64,
    /// Set while a kept writer is taken apart: the tar end blocks must not be written.
    pub(super) discard: bool,
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.discard {
            return Ok(buf.len());
        }
        let n = self.inner.write(buf).map_err(sink_error)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().map_err(sink_error)
    }
}

/// What the tar builder writes into.
pub(super) enum Sink {
    Plain(Counting),
    Zstd(ZstdSink),
}

impl Sink {
    /// Ends the current zstd frame (an entry boundary); nothing for plain tar.
    pub(super) fn cut(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(_) => Ok(()),
            Sink::Zstd(z) => {
                z.cut();
                Ok(())
            }
        }
    }

    /// See [`BundleWriter::begin_group`](super::BundleWriter::begin_group).
    pub(super) fn begin_group(&mut self, bytes: u64) {
        if let Sink::Zstd(z) = self {
            z.begin_group(bytes);
        }
    }

    /// See [`BundleWriter::continue_group`](super::BundleWriter::continue_group).
    pub(super) fn continue_group(&mut self) {
        if let Sink::Zstd(z) = self {
            z.continue_group();
        }
    }

    /// Writes what a kept bundle keeps to the file: for ordinary frames, every frame
    /// compressed so far and the one being filled (they are small: waiting for them is
    /// quick); for [`Frames::Coarse`] only the frames already compressed, in order,
    /// without waiting for those in flight (one can take minutes at a high level) or
    /// compressing the one being filled, so the file ends after the last complete frame.
    pub(super) fn write_pending(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(out) => out.flush(),
            Sink::Zstd(z) if z.policy == Frames::Coarse => {
                z.stream.write_ready()?;
                z.stream.get_mut().out.flush()
            }
            Sink::Zstd(z) => {
                z.stream.drain()?;
                z.filled = 0;
                z.limit = z.policy.max_input();
                z.join_next = false;
                z.stream.get_mut().out.flush()
            }
        }
    }

    pub(super) fn out(&self) -> &Counting {
        match self {
            Sink::Plain(out) => out,
            Sink::Zstd(z) => &z.stream.get_ref().out,
        }
    }

    pub(super) fn out_mut(&mut self) -> &mut Counting {
        match self {
            Sink::Plain(out) => out,
            Sink::Zstd(z) => &mut z.stream.get_mut().out,
        }
    }

    /// The file writer, without finishing anything.
    pub(super) fn into_out(self) -> Counting {
        match self {
            Sink::Plain(out) => out,
            Sink::Zstd(z) => z.stream.into_inner().out,
        }
    }

    /// Flushes everything; returns the file writer and the uncompressed size.
    pub(super) fn finish(self) -> io::Result<(Counting, u64)> {
        match self {
            Sink::Plain(mut out) => {
                out.flush()?;
                let n = out.written;
                Ok((out, n))
            }
            Sink::Zstd(z) => z.finish(),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(out) => out.write(buf),
            Sink::Zstd(z) => z.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        // Frames are cut only at entry boundaries and at FRAME_INPUT; a flush from the
        // tar builder must not create tiny frames.
        match self {
            Sink::Plain(out) => out.flush(),
            Sink::Zstd(_) => Ok(()),
        }
    }
}

/// Cuts the tar stream into zstd frames of at most [`super::FRAME_INPUT`] bytes (and at every
/// entry boundary, [`Sink::cut`]), compressed on its own pool by [`ordered`], recording
/// each frame's sizes for the seek table. With [`Frames::Coarse`] (compact bundles) the
/// frames are bigger and span entries; see [`Frames`].
pub(super) struct ZstdSink {
    pub(super) stream: ordered::Stream<FrameSizes>,
    policy: Frames,
    /// Bytes in the frame being filled.
    filled: usize,
    /// Where the frame being filled ends at the latest: the policy's maximum, or
    /// [`COARSE_GROUP_INPUT`] while a group of similar layers is written.
    limit: usize,
    /// The next entry boundary does not end the frame (a group's next member).
    join_next: bool,
}

/// Where the frames go: the file, and what the seek table needs.
pub(super) struct FrameSizes {
    out: Counting,
    frames: Vec<(u32, u32)>,
    uncompressed: u64,
}

impl ordered::ChunkOut for FrameSizes {
    fn put(&mut self, frame: &[u8], input_len: usize) -> io::Result<()> {
        self.out.write_all(frame)?;
        self.frames.push((frame.len() as u32, input_len as u32));
        self.uncompressed += input_len as u64;
        Ok(())
    }
}

impl ZstdSink {
    pub(super) fn new(
        out: Counting,
        level: i32,
        threads: usize,
        policy: Frames,
    ) -> io::Result<ZstdSink> {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            threads
        };
        let long = policy == Frames::Coarse;
        // Two frames per thread in flight, plus the one being filled; coarse frames are
        // big, so one per thread plus the one being filled, on at most
        // COARSE_MAX_THREADS threads (memory: each holds up to 64 MiB of input, its
        // output and a zstd context, however many cores the machine has).
        let threads = if long {
            threads.min(COARSE_MAX_THREADS)
        } else {
            threads
        };
        let in_flight = if long { threads + 1 } else { 2 * threads + 1 };
        let pool = ordered::Pool::new("zstd", threads, in_flight, move |chunk| {
            compress_frame(chunk, level, long)
        })?;
        let frames = FrameSizes {
            out,
            frames: Vec::new(),
            uncompressed: 0,
        };
        Ok(ZstdSink {
            // Chunks as big as the biggest frame; the sink cuts them at `limit`.
            stream: ordered::Stream::new(&pool, policy.chunk_input(), frames),
            policy,
            filled: 0,
            limit: policy.max_input(),
            join_next: false,
        })
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.filled >= self.limit {
            // A group ended past the usual maximum, inside an entry.
            self.end_frame();
        }
        let room = self.limit - self.filled;
        let n = self.stream.write(&buf[..buf.len().min(room)])?;
        if self.policy == Frames::Coarse {
            // A coarse frame is written as soon as it is compressed, not when the next
            // one starts (which may be 128 MiB later): so a partial bundle left by Ctrl-C
            // or `kill -9` holds every frame finished by then. Order and bytes do not
            // change, only when they reach the file.
            self.stream.write_ready()?;
        }
        self.filled += n;
        if self.filled == self.limit {
            self.end_frame();
        }
        Ok(n)
    }

    fn end_frame(&mut self) {
        self.stream.cut();
        self.filled = 0;
    }

    /// An entry boundary: ends the frame, unless coarse frames want more or the entry
    /// is a group's next member.
    fn cut(&mut self) {
        if std::mem::take(&mut self.join_next) {
            return;
        }
        self.limit = self.policy.max_input();
        if self.filled >= self.policy.min_input() {
            self.end_frame();
        }
    }

    fn begin_group(&mut self, bytes: u64) {
        if self.policy != Frames::Coarse {
            return;
        }
        let fits = self.filled as u64 + bytes <= COARSE_GROUP_INPUT as u64;
        if self.filled >= self.policy.min_input() || !fits {
            self.end_frame();
        }
        self.limit = COARSE_GROUP_INPUT;
        // The first member's own entry boundary is decided here.
        self.join_next = true;
    }

    fn continue_group(&mut self) {
        if self.policy == Frames::Coarse {
            self.join_next = true;
        }
    }

    /// Writes every frame, then the seek table.
    fn finish(self) -> io::Result<(Counting, u64)> {
        let FrameSizes {
            mut out,
            frames,
            uncompressed,
        } = self.stream.finish()?;
        out.write_all(&encode_seek_table(&frames))?;
        out.flush()?;
        Ok((out, uncompressed))
    }
}

/// Most threads compressing coarse frames at once.
const COARSE_MAX_THREADS: usize = 4;

thread_local! {
    static COMPRESSOR: std::cell::RefCell<Option<((i32, bool), zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

/// One complete zstd frame (with content size and checksum) for `input`; `long`: with
/// long-distance matching over a window of up to [`LONG_WINDOW_LOG`] (zstd shrinks it to
/// the frame when the frame is smaller).
fn compress_frame(input: &[u8], level: i32, long: bool) -> io::Result<Vec<u8>> {
    use zstd::zstd_safe::CParameter;
    COMPRESSOR
        .with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.as_ref().is_none_or(|(k, _)| *k != (level, long)) {
                let mut c = zstd::bulk::Compressor::new(level)?;
                c.set_parameter(CParameter::ChecksumFlag(true))?;
                if long {
                    c.set_parameter(CParameter::EnableLongDistanceMatching(true))?;
                    c.set_parameter(CParameter::WindowLog(LONG_WINDOW_LOG))?;
                }
                *slot = Some(((level, long), c));
            }
            let (_, c) = slot.as_mut().expect("compressor set");
            c.compress(input)
        })
        .map_err(sink_error)
}
