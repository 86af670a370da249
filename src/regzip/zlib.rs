//! Stock zlib's deflate as a rebuild encoder: raw deflate (no zlib or gzip wrapper)
//! at levels 1–9 with the zlib parameters a recipe records (window bits, memory
//! level, strategy).
//!
//! Why stock zlib C and not flate2's encoder: the project's flate2 runs on the
//! zlib-rs backend, whose deflate output differs from stock zlib's at most levels
//! (zlib-rs follows zlib-ng's matchers), and a rebuild must reproduce the bytes the
//! original producer (Python's `gzip`, anything linking the system zlib) wrote. So
//! this module drives `libz-sys` (the bundled stock zlib, compiled in statically by
//! its `static` feature) through a small safe wrapper, [`Deflater`]. flate2 stays the
//! decoder everywhere else.
//!
//! Shape: a [`Deflater`] is fed raw bytes in any chunking and appends compressed
//! bytes to a caller's `Vec`; stock zlib's output at levels 1–9 does not depend on
//! how the input is chunked or how much output room each call has (it decides block
//! boundaries from its own symbol buffer), which the tests check. Memory is zlib's
//! own state (about 256 KiB at the defaults) plus whatever the caller keeps. For
//! pigz's block framing (`pigz`) it also offers reset + level, a dictionary, the
//! `Z_BLOCK`/`Z_SYNC_FLUSH`/`Z_FULL_FLUSH` flushes, the pending bit count and
//! `deflatePrime`.

use std::alloc::{self, Layout};
use std::ffi::{CStr, c_int, c_uint, c_void};
use std::io::{self, Read, Write};
use std::ptr;

use libz_sys as z;

/// zlib's `strategy` argument to `deflateInit2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// `Z_DEFAULT_STRATEGY` (0): what Python, gzip tools and most callers use.
    Default,
    /// `Z_FILTERED` (1).
    Filtered,
    /// `Z_HUFFMAN_ONLY` (2).
    HuffmanOnly,
    /// `Z_RLE` (3).
    Rle,
    /// `Z_FIXED` (4).
    Fixed,
}

impl Strategy {
    fn raw(self) -> c_int {
        match self {
            Strategy::Default => z::Z_DEFAULT_STRATEGY,
            Strategy::Filtered => z::Z_FILTERED,
            Strategy::HuffmanOnly => z::Z_HUFFMAN_ONLY,
            Strategy::Rle => z::Z_RLE,
            Strategy::Fixed => z::Z_FIXED,
        }
    }

    /// The name a recipe records.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Default => "default",
            Strategy::Filtered => "filtered",
            Strategy::HuffmanOnly => "huffman-only",
            Strategy::Rle => "rle",
            Strategy::Fixed => "fixed",
        }
    }
}

/// Everything stock zlib's raw deflate output depends on besides the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ZlibParams {
    /// 1 (fastest) to 9 (best).
    pub level: u8,
    /// log2 of the window, 9–15 (raw deflate; a gzip member's deflate part is the
    /// same whether zlib wrote the gzip wrapper itself, windowBits 31, or not).
    pub window_bits: u8,
    /// 1–9; zlib's default is 8.
    pub mem_level: u8,
    pub strategy: Strategy,
}

impl ZlibParams {
    /// zlib's defaults at `level`: windowBits 15, memLevel 8, the default strategy —
    /// what Python's `gzip` module uses (`compressobj(level, DEFLATED, -MAX_WBITS,
    /// DEF_MEM_LEVEL, 0)`).
    pub fn level(level: u8) -> ZlibParams {
        ZlibParams {
            level,
            window_bits: 15,
            mem_level: 8,
            strategy: Strategy::Default,
        }
    }

    fn check(&self) -> io::Result<()> {
        let bad = |what: String| Err(io::Error::new(io::ErrorKind::InvalidInput, what));
        if !(1..=9).contains(&self.level) {
            return bad(format!("zlib level {} is not 1-9", self.level));
        }
        if !(9..=15).contains(&self.window_bits) {
            return bad(format!("zlib window bits {} is not 9-15", self.window_bits));
        }
        if !(1..=9).contains(&self.mem_level) {
            return bad(format!("zlib memory level {} is not 1-9", self.mem_level));
        }
        Ok(())
    }
}

/// The version string of the zlib compiled in (e.g. "1.3.1").
pub fn version() -> &'static str {
    // SAFETY: zlibVersion returns a pointer to a static NUL-terminated string.
    unsafe { CStr::from_ptr(z::zlibVersion()) }
        .to_str()
        .unwrap_or("unknown")
}

/// One raw deflate stream being written by stock zlib.
pub struct Deflater {
    /// Boxed: zlib's state keeps a pointer back to its `z_stream` and checks it on
    /// every call, so the stream must not move after `deflateInit2_`.
    strm: Box<z::z_stream>,
    params: ZlibParams,
    finished: bool,
}

// SAFETY: the zlib stream and its state are owned by this value alone and zlib keeps
// no thread-local or global state for a stream, so moving it to another thread is fine.
unsafe impl Send for Deflater {}

/// Input is handed to zlib in pieces of at most this many bytes (`avail_in` is 32-bit).
const MAX_IN: usize = 1 << 30;
/// Output room added before each call to zlib.
const OUT_STEP: usize = 64 * 1024;

impl Deflater {
    pub fn new(params: ZlibParams) -> io::Result<Deflater> {
        params.check()?;
        let mut strm = Box::new(z::z_stream {
            next_in: ptr::null_mut(),
            avail_in: 0,
            total_in: 0,
            next_out: ptr::null_mut(),
            avail_out: 0,
            total_out: 0,
            msg: ptr::null_mut(),
            state: ptr::null_mut(),
            zalloc,
            zfree,
            opaque: ptr::null_mut(),
            data_type: 0,
            adler: 0,
            reserved: 0,
        });
        // SAFETY: strm is a valid, boxed z_stream with our allocator; the version
        // string and struct size are the ones libz-sys was built against.
        let rc = unsafe {
            z::deflateInit2_(
                &mut *strm,
                c_int::from(params.level),
                z::Z_DEFLATED,
                -c_int::from(params.window_bits),
                c_int::from(params.mem_level),
                params.strategy.raw(),
                z::zlibVersion(),
                std::mem::size_of::<z::z_stream>() as c_int,
            )
        };
        if rc != z::Z_OK {
            return Err(zlib_error("deflateInit2", rc));
        }
        Ok(Deflater {
            strm,
            params,
            finished: false,
        })
    }

    pub fn params(&self) -> ZlibParams {
        self.params
    }

    /// Raw bytes consumed so far.
    #[allow(clippy::useless_conversion)] // zlib's counters are c_ulong: 32-bit on some targets
    pub fn total_in(&self) -> u64 {
        u64::from(self.strm.total_in)
    }

    /// Compressed bytes produced so far.
    #[allow(clippy::useless_conversion)] // zlib's counters are c_ulong: 32-bit on some targets
    pub fn total_out(&self) -> u64 {
        u64::from(self.strm.total_out)
    }

    /// Compresses `input`, appending whatever compressed bytes zlib emits to `out`.
    pub fn write(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        if self.finished {
            return Err(io::Error::other("zlib deflate: write after finish"));
        }
        for piece in input.chunks(MAX_IN) {
            self.strm.next_in = piece.as_ptr().cast_mut();
            self.strm.avail_in = piece.len() as u32;
            loop {
                let (rc, filled) = self.step(z::Z_NO_FLUSH, out);
                if rc != z::Z_OK && rc != z::Z_BUF_ERROR {
                    return Err(zlib_error("deflate", rc));
                }
                if self.strm.avail_in == 0 && !filled {
                    break;
                }
            }
        }
        self.strm.next_in = ptr::null_mut();
        Ok(())
    }

    /// Ends the stream (final block), appending the remaining compressed bytes.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.strm.next_in = ptr::null_mut();
        self.strm.avail_in = 0;
        loop {
            let (rc, _) = self.step(z::Z_FINISH, out);
            match rc {
                z::Z_STREAM_END => break,
                z::Z_OK | z::Z_BUF_ERROR => continue,
                _ => return Err(zlib_error("deflate finish", rc)),
            }
        }
        self.finished = true;
        Ok(())
    }

    /// Starts a new raw deflate stream on the same state (`deflateReset`) at `level`
    /// (`deflateParams`, which right after a reset changes only the match parameters):
    /// what pigz does before each block.
    pub fn reset(&mut self, level: u8) -> io::Result<()> {
        let params = ZlibParams {
            level,
            ..self.params
        };
        params.check()?;
        // SAFETY: the stream was initialised by deflateInit2_ in `new`.
        let rc = unsafe { z::deflateReset(&mut *self.strm) };
        if rc != z::Z_OK {
            return Err(zlib_error("deflateReset", rc));
        }
        // SAFETY: as above.
        let rc =
            unsafe { z::deflateParams(&mut *self.strm, c_int::from(level), params.strategy.raw()) };
        if rc != z::Z_OK {
            return Err(zlib_error("deflateParams", rc));
        }
        self.params = params;
        self.finished = false;
        Ok(())
    }

    /// Primes the history with `dict` (`deflateSetDictionary`; zlib keeps its last
    /// window's worth). Only right after [`Deflater::new`] or [`Deflater::reset`].
    pub fn set_dictionary(&mut self, dict: &[u8]) -> io::Result<()> {
        let len = u32::try_from(dict.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "dictionary too big"))?;
        // SAFETY: zlib only reads `len` bytes from `dict` during the call.
        let rc = unsafe { z::deflateSetDictionary(&mut *self.strm, dict.as_ptr(), len) };
        if rc != z::Z_OK {
            return Err(zlib_error("deflateSetDictionary", rc));
        }
        Ok(())
    }

    /// Flushes what was written so far with `mode`, appending the output (pigz's loop:
    /// `deflate` again while it fills the output room).
    pub fn flush(&mut self, mode: Flush, out: &mut Vec<u8>) -> io::Result<()> {
        if self.finished {
            return Err(io::Error::other("zlib deflate: flush after finish"));
        }
        self.strm.next_in = ptr::null_mut();
        self.strm.avail_in = 0;
        let flush = match mode {
            Flush::Block => z::Z_BLOCK,
            Flush::Sync => z::Z_SYNC_FLUSH,
            Flush::Full => z::Z_FULL_FLUSH,
        };
        loop {
            let (rc, filled) = self.step(flush, out);
            if rc != z::Z_OK && rc != z::Z_BUF_ERROR {
                return Err(zlib_error("deflate flush", rc));
            }
            if !filled {
                return Ok(());
            }
        }
    }

    /// How many bits of output zlib holds back short of a byte (`deflatePending`).
    pub fn pending_bits(&mut self) -> io::Result<u32> {
        let mut bits: c_int = 0;
        // SAFETY: the stream is initialised; zlib writes one int through `bits` and
        // accepts a null `pending`.
        let rc = unsafe { deflatePending(&mut *self.strm, ptr::null_mut(), &mut bits) };
        if rc != z::Z_OK {
            return Err(zlib_error("deflatePending", rc));
        }
        Ok(bits as u32)
    }

    /// Inserts the low `bits` bits of `value` into the output (`deflatePrime`).
    pub fn prime(&mut self, bits: u8, value: u16) -> io::Result<()> {
        // SAFETY: the stream is initialised; zlib checks `bits` against its buffer.
        let rc = unsafe { z::deflatePrime(&mut *self.strm, c_int::from(bits), c_int::from(value)) };
        if rc != z::Z_OK {
            return Err(zlib_error("deflatePrime", rc));
        }
        Ok(())
    }

    /// One call to `deflate` with fresh output room at the end of `out`; returns
    /// zlib's code and whether the output room was used up (more may be pending).
    fn step(&mut self, flush: c_int, out: &mut Vec<u8>) -> (c_int, bool) {
        out.reserve(OUT_STEP);
        let len = out.len();
        let room = (out.capacity() - len).min(u32::MAX as usize);
        // SAFETY: next_out points at `room` bytes of spare capacity of `out`; zlib
        // writes at most avail_out bytes there, and we extend the length by exactly
        // what it wrote. next_in/avail_in were set by the caller to a live slice (or
        // null/0).
        unsafe {
            self.strm.next_out = out.as_mut_ptr().add(len);
            self.strm.avail_out = room as u32;
            let rc = z::deflate(&mut *self.strm, flush);
            let written = room - self.strm.avail_out as usize;
            out.set_len(len + written);
            self.strm.next_out = ptr::null_mut();
            (rc, self.strm.avail_out == 0)
        }
    }
}

/// The flush modes [`Deflater::flush`] offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// `Z_BLOCK`: end the current block, keep the bits short of a byte pending.
    Block,
    /// `Z_SYNC_FLUSH`: end the block and add an empty stored block (byte aligned).
    Sync,
    /// `Z_FULL_FLUSH`: as `Sync`, and forget the history.
    Full,
}

// libz-sys does not declare `deflatePending` (zlib 1.2.5.1+), but the zlib it compiles
// in (its `static` feature) has it, unprefixed.
unsafe extern "C" {
    fn deflatePending(strm: z::z_streamp, pending: *mut c_uint, bits: *mut c_int) -> c_int;
}

impl Drop for Deflater {
    fn drop(&mut self) {
        // SAFETY: the stream was initialised by deflateInit2_ in `new`.
        unsafe {
            z::deflateEnd(&mut *self.strm);
        }
    }
}

/// Compresses everything `input` yields as one raw deflate stream into `out`;
/// returns the number of compressed bytes written. Memory: zlib's state plus 64 KiB
/// buffers.
pub fn deflate(params: ZlibParams, mut input: impl Read, mut out: impl Write) -> io::Result<u64> {
    let mut enc = Deflater::new(params)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending = Vec::with_capacity(OUT_STEP);
    let mut written = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        enc.write(&buf[..n], &mut pending)?;
        out.write_all(&pending)?;
        written += pending.len() as u64;
        pending.clear();
    }
    enc.finish(&mut pending)?;
    out.write_all(&pending)?;
    written += pending.len() as u64;
    Ok(written)
}

fn zlib_error(call: &str, rc: c_int) -> io::Error {
    let what = match rc {
        z::Z_STREAM_ERROR => "stream error (bad parameters)",
        z::Z_MEM_ERROR => "out of memory",
        z::Z_VERSION_ERROR => "zlib version mismatch",
        z::Z_BUF_ERROR => "no progress possible",
        _ => "unexpected error",
    };
    io::Error::other(format!("zlib {call}: {what} (code {rc})"))
}

/// Allocations handed to zlib carry their size in a 16-byte prefix so `zfree` can
/// give them back to Rust's allocator. Zeroed, like zlib's own `calloc`.
const PREFIX: usize = 16;

unsafe extern "C" fn zalloc(_opaque: *mut c_void, items: z::uInt, size: z::uInt) -> *mut c_void {
    let Some(n) = (items as usize)
        .checked_mul(size as usize)
        .and_then(|n| n.checked_add(PREFIX))
    else {
        return ptr::null_mut();
    };
    let Ok(layout) = Layout::from_size_align(n, PREFIX) else {
        return ptr::null_mut();
    };
    // SAFETY: layout has non-zero size (at least PREFIX); the prefix is aligned for usize.
    unsafe {
        let base = alloc::alloc_zeroed(layout);
        if base.is_null() {
            return ptr::null_mut();
        }
        base.cast::<usize>().write(n);
        base.add(PREFIX).cast()
    }
}

unsafe extern "C" fn zfree(_opaque: *mut c_void, p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: p came from zalloc, so PREFIX bytes before it hold the allocation size
    // it was made with, and that size formed a valid layout.
    unsafe {
        let base = p.cast::<u8>().sub(PREFIX);
        let n = base.cast::<usize>().read();
        alloc::dealloc(base, Layout::from_size_align_unchecked(n, PREFIX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::DeflateDecoder;

    fn sample() -> Vec<u8> {
        let mut v = Vec::new();
        let mut x: u32 = 1;
        for i in 0..300_000u32 {
            // text-like with some noise: compressible but not trivially
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            v.extend_from_slice(if x >> 28 < 3 { b"layer " } else { b"tar " });
            v.push(b'a' + ((x >> 16) % 26) as u8);
            if i % 17 == 0 {
                v.push(b'\n');
            }
        }
        v
    }

    fn whole(params: ZlibParams, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let n = deflate(params, data, &mut out).unwrap();
        assert_eq!(n, out.len() as u64);
        out
    }

    #[test]
    fn round_trips_at_every_level() {
        let data = sample();
        for level in 1..=9 {
            let out = whole(ZlibParams::level(level), &data);
            assert!(out.len() < data.len() / 2, "level {level}: {}", out.len());
            let mut back = Vec::new();
            DeflateDecoder::new(&out[..])
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == data, "level {level} does not round-trip");
        }
    }

    #[test]
    fn output_does_not_depend_on_input_chunking() {
        let data = sample();
        for level in [1, 4, 6, 9] {
            let reference = whole(ZlibParams::level(level), &data);
            for chunk in [1usize, 7, 4096, 65_537] {
                let mut enc = Deflater::new(ZlibParams::level(level)).unwrap();
                let mut out = Vec::new();
                // a tiny chunking is slow: cover a prefix then the rest at once
                let split = if chunk == 1 { 20_000 } else { data.len() };
                for piece in data[..split].chunks(chunk) {
                    enc.write(piece, &mut out).unwrap();
                }
                enc.write(&data[split..], &mut out).unwrap();
                enc.finish(&mut out).unwrap();
                assert_eq!(enc.total_in(), data.len() as u64);
                assert_eq!(enc.total_out(), out.len() as u64);
                assert!(out == reference, "level {level} chunk {chunk} differs");
            }
        }
    }

    #[test]
    fn parameters_change_the_output_and_bad_ones_are_refused() {
        let data = sample();
        let base = whole(ZlibParams::level(6), &data);
        let small_window = whole(
            ZlibParams {
                window_bits: 9,
                ..ZlibParams::level(6)
            },
            &data,
        );
        let huffman = whole(
            ZlibParams {
                strategy: Strategy::HuffmanOnly,
                ..ZlibParams::level(6)
            },
            &data,
        );
        assert_ne!(base, small_window);
        assert_ne!(base, huffman);
        for bad in [
            ZlibParams::level(0),
            ZlibParams::level(10),
            ZlibParams {
                window_bits: 8,
                ..ZlibParams::level(6)
            },
            ZlibParams {
                mem_level: 0,
                ..ZlibParams::level(6)
            },
        ] {
            let err = Deflater::new(bad).err().expect("refused");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        }
    }

    #[test]
    fn empty_input_is_one_empty_final_block() {
        // zlib's raw deflate of nothing: a final fixed-Huffman block with only the
        // end-of-block code, 03 00.
        assert_eq!(whole(ZlibParams::level(6), b""), vec![0x03, 0x00]);
        assert!(version().starts_with('1'), "{}", version());
    }
}
