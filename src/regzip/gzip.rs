//! gzip framing (RFC 1952) around the bit-exact DEFLATE encoders: the header exactly as
//! recorded from the original blob, the deflate stream, then CRC-32 and size mod 2^32.
//!
//! The header is kept as bytes rather than as fields because writers differ in what they
//! put there (mtime, XFL, OS byte, name, extra field) and every byte counts toward the
//! digest; [`header_len`] finds where a recorded blob's header ends.

use std::io::{self, Read, Write};

use super::goflate;

const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("gzip header: {what}"))
}

/// Length of the gzip member header at the start of `blob` (fixed part, extra field,
/// name, comment, header CRC), or an error if it is not a complete deflate gzip header.
pub fn header_len(blob: &[u8]) -> io::Result<usize> {
    if blob.len() < 10 {
        return Err(bad("shorter than 10 bytes"));
    }
    if blob[0] != 0x1f || blob[1] != 0x8b || blob[2] != 8 {
        return Err(bad("not gzip with deflate (magic 1f 8b 08)"));
    }
    let flags = blob[3];
    if flags & 0xe0 != 0 {
        return Err(bad("reserved flag bits set"));
    }
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let xlen = blob
            .get(at..at + 2)
            .ok_or_else(|| bad("truncated extra field"))?;
        at += 2 + u16::from_le_bytes([xlen[0], xlen[1]]) as usize;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let rest = blob.get(at..).ok_or_else(|| bad("truncated"))?;
            let nul = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(|| bad("unterminated name or comment"))?;
            at += nul + 1;
        }
    }
    if flags & FHCRC != 0 {
        at += 2;
    }
    if at > blob.len() {
        return Err(bad("truncated"));
    }
    Ok(at)
}

/// Writes `header` (recorded bytes), then `input` compressed by Go's classic
/// `compress/flate` at `level` the way `gzip.Writer` feeds it, then the trailer: the
/// blob Go's `gzip.NewWriterLevel` + `io.Copy` + `Close` writes. Returns the input size.
pub fn encode_go(
    header: &[u8],
    level: i32,
    input: impl Read,
    mut out: impl Write,
) -> io::Result<u64> {
    out.write_all(header)?;
    let mut enc = goflate::Encoder::new(level, &mut out)?;
    let mut crc = flate2::Crc::new();
    let total = goflate::feed(input, |chunk| {
        crc.update(chunk);
        enc.write(chunk)
    })?;
    enc.finish()?;
    let mut trailer = [0u8; 8];
    trailer[..4].copy_from_slice(&crc.sum().to_le_bytes());
    trailer[4..].copy_from_slice(&(total as u32).to_le_bytes());
    out.write_all(&trailer)?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_len_walks_every_optional_field() {
        let plain = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255, 0xaa];
        assert_eq!(header_len(&plain).unwrap(), 10);
        let mut all = vec![
            0x1f,
            0x8b,
            8,
            FEXTRA | FNAME | FCOMMENT | FHCRC,
            1,
            2,
            3,
            4,
            0,
            3,
        ];
        all.extend_from_slice(&[2, 0, b'x', b'y']);
        all.extend_from_slice(b"name\0comment\0");
        all.extend_from_slice(&[9, 9, 0xaa]);
        assert_eq!(header_len(&all).unwrap(), all.len() - 1);
        assert!(header_len(&all[..15]).is_err());
        assert!(header_len(b"PK\x03\x04 not gzip").is_err());
    }

    #[test]
    fn output_is_a_gzip_stream_of_the_input() {
        let input: Vec<u8> = (0..100_000u32)
            .map(|i| (i.wrapping_mul(i) % 251) as u8)
            .collect();
        let header = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
        let mut blob = Vec::new();
        assert_eq!(
            encode_go(&header, -1, &input[..], &mut blob).unwrap(),
            input.len() as u64
        );
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&blob[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, input);
    }
}
