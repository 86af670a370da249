//! gzip member headers (RFC 1952) parsed byte-exactly, and a whole gzip blob's
//! layout: its members (header bytes, deflate length, CRC32, ISIZE) and any bytes
//! after the last member.
//!
//! A rebuild keeps every header as the exact bytes it found (so fields airlock does
//! not interpret, like FEXTRA subfields or a header CRC, survive), which is why
//! [`Member`] carries `header_bytes` next to the parsed [`Header`]. One blob may hold
//! several members (`cat a.gz b.gz`, some parallel compressors) and may end in
//! padding or garbage that gzip readers ignore; both are recorded rather than
//! refused, since the layer digest covers them.
//!
//! [`walk`] reads a blob once, streaming, with bounded memory (a 64 KiB read buffer,
//! a 64 KiB inflate buffer, the decoder's window): flate2's raw inflater finds where
//! each deflate stream ends, and a [`Visitor`] sees each member's compressed and
//! decompressed bytes as they pass (the encoder identification rides on it).
//! [`layout`] is `walk` with a visitor that only collects the members.

use std::io::{self, BufRead, BufReader, Read};

use flate2::{Crc, Decompress, FlushDecompress, Status};

/// The two bytes every gzip member starts with.
pub const MAGIC: [u8; 2] = [0x1f, 0x8b];
/// FLG bits (RFC 1952 §2.3.1).
pub const FTEXT: u8 = 0x01;
pub const FHCRC: u8 = 0x02;
pub const FEXTRA: u8 = 0x04;
pub const FNAME: u8 = 0x08;
pub const FCOMMENT: u8 = 0x10;
const RESERVED: u8 = 0xe0;
/// A header longer than this (an unterminated name or comment) is refused rather
/// than buffered.
pub const MAX_HEADER: usize = 1 << 20;

/// A parsed gzip member header. `len` is its exact length in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub flags: u8,
    pub mtime: u32,
    pub xfl: u8,
    pub os: u8,
    /// FEXTRA's payload (without its 2-byte length).
    pub extra: Option<Vec<u8>>,
    /// FNAME without its terminating NUL (ISO 8859-1 bytes, kept as bytes).
    pub name: Option<Vec<u8>>,
    /// FCOMMENT without its terminating NUL.
    pub comment: Option<Vec<u8>>,
    /// FHCRC's value (low 16 bits of the CRC32 of the bytes before it), checked.
    pub header_crc: Option<u16>,
    pub len: usize,
}

/// Why bytes are not a gzip member header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("not gzip: the first bytes are {0}, not the gzip magic 1f 8b")]
    NotGzip(String),
    #[error("gzip header: compression method {0}, but only 8 (deflate) exists")]
    Method(u8),
    #[error("gzip header: reserved flag bits set (flags {0:#04x})")]
    ReservedFlags(u8),
    #[error("gzip header truncated after {0} bytes")]
    Truncated(usize),
    #[error("gzip header longer than {MAX_HEADER} bytes (a file name or comment without its end)")]
    TooLong,
    #[error("gzip header CRC is {found:04x}, the header's bytes give {computed:04x}")]
    HeaderCrc { found: u16, computed: u16 },
}

/// Parses the gzip member header at the start of `buf` (which may hold more after it).
pub fn parse_header(buf: &[u8]) -> Result<Header, HeaderError> {
    let mut bytes = buf.iter().copied();
    let mut seen = Vec::new();
    read_header_from(&mut || Ok::<_, HeaderError>(bytes.next()), &mut seen)
}

/// The one header parser: pulls bytes from `next` (None at the end of input),
/// appending each to `seen`, which ends up holding the header's exact bytes.
fn read_header_from<E: From<HeaderError>>(
    next: &mut impl FnMut() -> Result<Option<u8>, E>,
    seen: &mut Vec<u8>,
) -> Result<Header, E> {
    let mut byte = |seen: &mut Vec<u8>| -> Result<u8, E> {
        if seen.len() >= MAX_HEADER {
            return Err(HeaderError::TooLong.into());
        }
        match next()? {
            Some(b) => {
                seen.push(b);
                Ok(b)
            }
            None if seen.len() < 2 => Err(HeaderError::NotGzip(hex_bytes(seen)).into()),
            None => Err(HeaderError::Truncated(seen.len()).into()),
        }
    };
    let magic = [byte(seen)?, byte(seen)?];
    if magic != MAGIC {
        return Err(HeaderError::NotGzip(hex_bytes(seen)).into());
    }
    let method = byte(seen)?;
    if method != 8 {
        return Err(HeaderError::Method(method).into());
    }
    let flags = byte(seen)?;
    if flags & RESERVED != 0 {
        return Err(HeaderError::ReservedFlags(flags).into());
    }
    let mut mtime = 0u32;
    for i in 0..4 {
        mtime |= u32::from(byte(seen)?) << (8 * i);
    }
    let xfl = byte(seen)?;
    let os = byte(seen)?;
    let extra = if flags & FEXTRA != 0 {
        let xlen = usize::from(byte(seen)?) | usize::from(byte(seen)?) << 8;
        let mut v = Vec::with_capacity(xlen);
        for _ in 0..xlen {
            v.push(byte(seen)?);
        }
        Some(v)
    } else {
        None
    };
    let mut zero_terminated = |seen: &mut Vec<u8>| -> Result<Vec<u8>, E> {
        let mut v = Vec::new();
        loop {
            match byte(seen)? {
                0 => return Ok(v),
                b => v.push(b),
            }
        }
    };
    let name = if flags & FNAME != 0 {
        Some(zero_terminated(seen)?)
    } else {
        None
    };
    let comment = if flags & FCOMMENT != 0 {
        Some(zero_terminated(seen)?)
    } else {
        None
    };
    let header_crc = if flags & FHCRC != 0 {
        let computed = crc32(seen) as u16;
        let found = u16::from(byte(seen)?) | u16::from(byte(seen)?) << 8;
        if found != computed {
            return Err(HeaderError::HeaderCrc { found, computed }.into());
        }
        Some(found)
    } else {
        None
    };
    Ok(Header {
        flags,
        mtime,
        xfl,
        os,
        extra,
        name,
        comment,
        header_crc,
        len: seen.len(),
    })
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = Crc::new();
    crc.update(bytes);
    crc.sum()
}

fn hex_bytes(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "nothing (empty input)".to_string();
    }
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One gzip member of a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Offset of the member's first byte in the blob.
    pub offset: u64,
    pub header: Header,
    /// The header exactly as found (`header.len` bytes).
    pub header_bytes: Vec<u8>,
    /// Length of the deflate stream between header and trailer.
    pub deflate_len: u64,
    /// The trailer's CRC32 (checked against the decompressed bytes).
    pub crc32: u32,
    /// The trailer's ISIZE: the decompressed length mod 2^32 (checked).
    pub isize: u32,
    /// The decompressed length (not reduced mod 2^32).
    pub raw_len: u64,
}

impl Member {
    /// The member's whole length: header + deflate + 8-byte trailer.
    pub fn len(&self) -> u64 {
        self.header.len as u64 + self.deflate_len + 8
    }

    /// Never: a member has at least a header and a trailer.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// A whole gzip blob: its members in order, then `trailing_len` bytes that are not
/// a member (padding or garbage gzip readers ignore).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub members: Vec<Member>,
    pub trailing_len: u64,
    /// Whether the trailing bytes are all zero (true when there are none).
    pub trailing_zeros: bool,
    pub total_len: u64,
}

impl Layout {
    /// The decompressed length of all members together.
    pub fn raw_len(&self) -> u64 {
        self.members.iter().map(|m| m.raw_len).sum()
    }
}

/// Why a blob could not be walked.
#[derive(Debug, thiserror::Error)]
pub enum GzipError {
    #[error("reading the gzip blob: {0}")]
    Io(#[from] io::Error),
    #[error("gzip member {member} at offset {offset}: {err}")]
    Header {
        member: usize,
        offset: u64,
        err: HeaderError,
    },
    #[error("gzip member {member} at offset {offset}: {what}")]
    Corrupt {
        member: usize,
        offset: u64,
        what: String,
    },
    #[error("gzip walk stopped by its visitor: {0}")]
    Visitor(io::Error),
}

/// What [`walk`] tells as it reads a blob. Every method has a no-op default.
pub trait Visitor {
    /// A member starts; its header has been read.
    fn member_start(
        &mut self,
        _index: usize,
        _header: &Header,
        _header_bytes: &[u8],
    ) -> io::Result<()> {
        Ok(())
    }
    /// The next compressed bytes of the current member's deflate stream (they
    /// arrive before the decompressed bytes they decode to).
    fn compressed(&mut self, _bytes: &[u8]) -> io::Result<()> {
        Ok(())
    }
    /// The next decompressed bytes of the current member.
    fn raw(&mut self, _bytes: &[u8]) -> io::Result<()> {
        Ok(())
    }
    /// The member ended; its trailer was read and checked.
    fn member_end(&mut self, _member: &Member) -> io::Result<()> {
        Ok(())
    }
}

/// A visitor that does nothing: [`walk`] with it is [`layout`].
pub struct NoVisitor;
impl Visitor for NoVisitor {}

/// Describes a gzip blob (reads it once, bounded memory).
pub fn layout(blob: impl Read) -> Result<Layout, GzipError> {
    walk(blob, &mut NoVisitor)
}

const BUF: usize = 64 * 1024;

/// Reads a gzip blob once, member by member, telling `visitor` what passes.
pub fn walk(blob: impl Read, visitor: &mut impl Visitor) -> Result<Layout, GzipError> {
    let mut r = Counted {
        inner: BufReader::with_capacity(BUF, blob),
        pos: 0,
    };
    let mut members = Vec::new();
    let mut out = vec![0u8; BUF];
    loop {
        let index = members.len();
        let offset = r.pos;
        let mut header_bytes = Vec::new();
        let header = match read_header_from(&mut || r.next_byte(), &mut header_bytes) {
            Ok(h) => h,
            Err(WalkErr::Header(HeaderError::NotGzip(_))) if index > 0 => {
                // Not a member: padding or garbage after the last one.
                let mut trailing_zeros = header_bytes.iter().all(|&b| b == 0);
                let mut trailing_len = header_bytes.len() as u64;
                loop {
                    let buf = r.inner.fill_buf()?;
                    if buf.is_empty() {
                        break;
                    }
                    trailing_zeros &= buf.iter().all(|&b| b == 0);
                    let n = buf.len();
                    trailing_len += n as u64;
                    r.consume(n);
                }
                return Ok(Layout {
                    members,
                    trailing_len,
                    trailing_zeros,
                    total_len: r.pos,
                });
            }
            Err(WalkErr::Header(err)) => {
                return Err(GzipError::Header {
                    member: index,
                    offset,
                    err,
                });
            }
            Err(WalkErr::Io(e)) => return Err(e.into()),
        };
        visitor
            .member_start(index, &header, &header_bytes)
            .map_err(GzipError::Visitor)?;
        let corrupt = |what: String| GzipError::Corrupt {
            member: index,
            offset,
            what,
        };

        let mut inflater = Decompress::new(false);
        let mut crc = Crc::new();
        let deflate_start = r.pos;
        loop {
            let buf = r.inner.fill_buf()?;
            let eof = buf.is_empty();
            let (in0, out0) = (inflater.total_in(), inflater.total_out());
            let status = inflater
                .decompress(buf, &mut out, FlushDecompress::None)
                .map_err(|e| corrupt(format!("corrupt deflate data: {e}")))?;
            let used = (inflater.total_in() - in0) as usize;
            let produced = (inflater.total_out() - out0) as usize;
            visitor
                .compressed(&buf[..used])
                .map_err(GzipError::Visitor)?;
            r.consume(used);
            crc.update(&out[..produced]);
            visitor.raw(&out[..produced]).map_err(GzipError::Visitor)?;
            if status == Status::StreamEnd {
                break;
            }
            if eof && used == 0 && produced == 0 {
                return Err(corrupt(
                    "the deflate stream is cut short (the blob ends inside it)".into(),
                ));
            }
        }
        let deflate_len = r.pos - deflate_start;
        let mut trailer = [0u8; 8];
        for slot in trailer.iter_mut() {
            *slot = match r.next_byte() {
                Ok(Some(b)) => b,
                Ok(None) => return Err(corrupt("the blob ends inside the 8-byte trailer".into())),
                Err(WalkErr::Io(e)) => return Err(e.into()),
                Err(WalkErr::Header(e)) => return Err(corrupt(e.to_string())),
            };
        }
        let crc32 = u32::from_le_bytes(trailer[..4].try_into().unwrap());
        let isize = u32::from_le_bytes(trailer[4..].try_into().unwrap());
        let raw_len = inflater.total_out();
        if crc32 != crc.sum() {
            return Err(corrupt(format!(
                "trailer CRC32 {crc32:08x} but the data's is {:08x}",
                crc.sum()
            )));
        }
        if isize != raw_len as u32 {
            return Err(corrupt(format!(
                "trailer length {isize} but the data is {raw_len} bytes (mod 2^32: {})",
                raw_len as u32
            )));
        }
        let member = Member {
            offset,
            header,
            header_bytes,
            deflate_len,
            crc32,
            isize,
            raw_len,
        };
        visitor.member_end(&member).map_err(GzipError::Visitor)?;
        members.push(member);
        if r.inner.fill_buf()?.is_empty() {
            return Ok(Layout {
                members,
                trailing_len: 0,
                trailing_zeros: true,
                total_len: r.pos,
            });
        }
    }
}

enum WalkErr {
    Io(io::Error),
    Header(HeaderError),
}

impl From<HeaderError> for WalkErr {
    fn from(e: HeaderError) -> Self {
        WalkErr::Header(e)
    }
}

/// A buffered reader that knows its position.
struct Counted<R> {
    inner: BufReader<R>,
    pos: u64,
}

impl<R: Read> Counted<R> {
    fn consume(&mut self, n: usize) {
        self.inner.consume(n);
        self.pos += n as u64;
    }

    fn next_byte(&mut self) -> Result<Option<u8>, WalkErr> {
        let buf = self.inner.fill_buf().map_err(WalkErr::Io)?;
        let Some(&b) = buf.first() else {
            return Ok(None);
        };
        self.consume(1);
        Ok(Some(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regzip::zlib::{ZlibParams, deflate};

    /// A header with every optional field, its FHCRC computed.
    fn full_header() -> Vec<u8> {
        let mut h = vec![0x1f, 0x8b, 8, FTEXT | FHCRC | FEXTRA | FNAME | FCOMMENT];
        h.extend_from_slice(&0x6543_2101u32.to_le_bytes());
        h.extend_from_slice(&[2, 3]);
        h.extend_from_slice(&[6, 0, b'A', b'p', 2, 0, 0xaa, 0xbb]);
        h.extend_from_slice(b"layer.tar\0a comment\0");
        let crc = crc32(&h) as u16;
        h.extend_from_slice(&crc.to_le_bytes());
        h
    }

    fn member(header: &[u8], data: &[u8]) -> Vec<u8> {
        let mut m = header.to_vec();
        deflate(ZlibParams::level(6), data, &mut m).unwrap();
        m.extend_from_slice(&crc32(data).to_le_bytes());
        m.extend_from_slice(&(data.len() as u32).to_le_bytes());
        m
    }

    const PLAIN: [u8; 10] = [0x1f, 0x8b, 8, 0, 0x78, 0x56, 0x34, 0x12, 0, 255];

    #[test]
    fn minimal_header() {
        let mut buf = PLAIN.to_vec();
        buf.extend_from_slice(b"deflate data follows");
        let h = parse_header(&buf).unwrap();
        assert_eq!(h.len, 10);
        assert_eq!((h.flags, h.mtime, h.xfl, h.os), (0, 0x1234_5678, 0, 255));
        assert_eq!(
            (h.extra, h.name, h.comment, h.header_crc),
            (None, None, None, None)
        );
    }

    #[test]
    fn header_with_every_field() {
        let full = full_header();
        let h = parse_header(&full).unwrap();
        assert_eq!(h.len, full.len());
        assert_eq!(h.flags, 0x1f);
        assert_eq!(h.mtime, 0x6543_2101);
        assert_eq!((h.xfl, h.os), (2, 3));
        assert_eq!(
            h.extra.as_deref(),
            Some(&[b'A', b'p', 2, 0, 0xaa, 0xbb][..])
        );
        assert_eq!(h.name.as_deref(), Some(&b"layer.tar"[..]));
        assert_eq!(h.comment.as_deref(), Some(&b"a comment"[..]));
        assert_eq!(h.header_crc, Some(crc32(&full[..full.len() - 2]) as u16));
    }

    #[test]
    fn what_is_not_a_header_is_refused_clearly() {
        let err = parse_header(b"PK\x03\x04 a zip").unwrap_err();
        assert_eq!(err, HeaderError::NotGzip("50 4b".into()));
        assert!(
            err.to_string().contains("not the gzip magic 1f 8b"),
            "{err}"
        );
        assert_eq!(
            parse_header(b"").unwrap_err().to_string(),
            "not gzip: the first bytes are nothing (empty input), not the gzip magic 1f 8b"
        );
        let mut h = PLAIN;
        h[2] = 7;
        assert_eq!(parse_header(&h).unwrap_err(), HeaderError::Method(7));
        let mut h = PLAIN;
        h[3] = 0x20;
        assert_eq!(
            parse_header(&h).unwrap_err(),
            HeaderError::ReservedFlags(0x20)
        );
        let mut full = full_header();
        let n = full.len();
        full[n - 1] ^= 1;
        assert!(matches!(
            parse_header(&full).unwrap_err(),
            HeaderError::HeaderCrc { .. }
        ));
        let mut endless = PLAIN.to_vec();
        endless[3] = FNAME;
        endless.resize(MAX_HEADER + 10, b'x');
        assert_eq!(parse_header(&endless).unwrap_err(), HeaderError::TooLong);
    }

    #[test]
    fn every_cut_of_a_header_is_truncated() {
        let full = full_header();
        for cut in 0..full.len() {
            let err = parse_header(&full[..cut]).unwrap_err();
            if cut < 2 {
                assert!(matches!(err, HeaderError::NotGzip(_)), "{cut}: {err}");
            } else {
                assert_eq!(err, HeaderError::Truncated(cut));
            }
        }
    }

    #[test]
    fn layout_of_one_member() {
        let data = b"hello hello hello layer".repeat(1000);
        let blob = member(&full_header(), &data);
        let l = layout(&blob[..]).unwrap();
        assert_eq!(l.members.len(), 1);
        let m = &l.members[0];
        assert_eq!(m.offset, 0);
        assert_eq!(m.header_bytes, full_header());
        assert_eq!(m.raw_len, data.len() as u64);
        assert_eq!(m.isize, data.len() as u32);
        assert_eq!(m.crc32, crc32(&data));
        assert_eq!(m.len(), blob.len() as u64);
        assert_eq!((l.trailing_len, l.trailing_zeros), (0, true));
        assert_eq!(l.total_len, blob.len() as u64);
    }

    #[test]
    fn layout_of_several_members_then_padding_or_garbage() {
        let a = member(&PLAIN, b"first member");
        let b = member(&full_header(), b"");
        let c = member(&PLAIN, &vec![7u8; 300_000]);
        let mut blob = [a.clone(), b.clone(), c.clone()].concat();
        let l = layout(&blob[..]).unwrap();
        let offsets: Vec<u64> = l.members.iter().map(|m| m.offset).collect();
        assert_eq!(offsets, vec![0, a.len() as u64, (a.len() + b.len()) as u64]);
        assert_eq!(l.raw_len(), 12 + 300_000);
        assert_eq!(l.trailing_len, 0);

        blob.extend_from_slice(&[0u8; 1000]);
        let l = layout(&blob[..]).unwrap();
        assert_eq!(l.members.len(), 3);
        assert_eq!((l.trailing_len, l.trailing_zeros), (1000, true));
        assert_eq!(l.total_len, blob.len() as u64);

        blob.extend_from_slice(b"garbage");
        let l = layout(&blob[..]).unwrap();
        assert_eq!((l.trailing_len, l.trailing_zeros), (1007, false));

        // a lone byte of the magic at the end is trailing too
        let mut one = a.clone();
        one.push(0x1f);
        let l = layout(&one[..]).unwrap();
        assert_eq!(
            (l.members.len(), l.trailing_len, l.trailing_zeros),
            (1, 1, false)
        );
    }

    #[test]
    fn damaged_blobs_name_the_member_and_what_is_wrong() {
        let a = member(&PLAIN, b"first member");
        let b = member(&PLAIN, &b"second member ".repeat(100));
        let blob = [a.clone(), b.clone()].concat();
        let at = a.len();

        let err = layout(&b"not gzip at all"[..]).unwrap_err();
        assert!(
            err.to_string().contains("member 0 at offset 0: not gzip"),
            "{err}"
        );

        let mut crc = blob.clone();
        crc[blob.len() - 8] ^= 1;
        let err = layout(&crc[..]).unwrap_err().to_string();
        assert!(
            err.contains(&format!("member 1 at offset {at}: trailer CRC32")),
            "{err}"
        );

        let mut size = blob.clone();
        size[blob.len() - 4] ^= 1;
        let err = layout(&size[..]).unwrap_err().to_string();
        assert!(err.contains("trailer length"), "{err}");

        let err = layout(&blob[..blob.len() - 3]).unwrap_err().to_string();
        assert!(err.contains("inside the 8-byte trailer"), "{err}");
        let err = layout(&blob[..at + 15]).unwrap_err().to_string();
        assert!(err.contains("cut short"), "{err}");

        // a second member that starts like one must be one
        let mut method = blob.clone();
        method[at + 2] = 9;
        let err = layout(&method[..]).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "member 1 at offset {at}: gzip header: compression method 9"
            )),
            "{err}"
        );

        let mut bad = blob.clone();
        bad[at + 10] = 0xff; // BTYPE 11 is reserved
        let err = layout(&bad[..]).unwrap_err().to_string();
        assert!(err.contains("corrupt deflate data"), "{err}");
    }

    #[test]
    fn the_visitor_sees_every_compressed_and_raw_byte_in_order() {
        #[derive(Default)]
        struct Seen {
            events: Vec<String>,
            compressed: Vec<u8>,
            raw: Vec<u8>,
        }
        impl Visitor for Seen {
            fn member_start(&mut self, i: usize, h: &Header, bytes: &[u8]) -> io::Result<()> {
                self.events.push(format!("start {i} {}", h.len));
                assert_eq!(bytes.len(), h.len);
                Ok(())
            }
            fn compressed(&mut self, bytes: &[u8]) -> io::Result<()> {
                self.compressed.extend_from_slice(bytes);
                Ok(())
            }
            fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
                self.raw.extend_from_slice(bytes);
                Ok(())
            }
            fn member_end(&mut self, m: &Member) -> io::Result<()> {
                self.events.push(format!("end {}", m.deflate_len));
                Ok(())
            }
        }
        let data: Vec<u8> = (0..500_000u32)
            .map(|i| (i.wrapping_mul(i) >> 7) as u8)
            .collect();
        let a = member(&PLAIN, &data);
        let b = member(&full_header(), b"tail");
        let blob = [a.clone(), b.clone()].concat();
        let mut seen = Seen::default();
        let l = walk(&blob[..], &mut seen).unwrap();
        let (d0, d1) = (
            l.members[0].deflate_len as usize,
            l.members[1].deflate_len as usize,
        );
        assert_eq!(
            seen.events,
            vec![
                "start 0 10".to_string(),
                format!("end {d0}"),
                format!("start 1 {}", full_header().len()),
                format!("end {d1}"),
            ]
        );
        let expected = [&a[10..10 + d0], &b[full_header().len()..][..d1]].concat();
        assert!(seen.compressed == expected);
        assert!(seen.raw == [&data[..], b"tail"].concat());
    }
}
