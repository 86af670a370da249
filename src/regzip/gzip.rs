//! gzip framing (RFC 1952) around the bit-exact DEFLATE encoders: the header exactly as
//! recorded from the original blob, the deflate stream, then CRC-32 and size mod 2^32.
//!
//! The header is kept as bytes rather than as fields because writers differ in what they
//! put there (mtime, XFL, OS byte, name, extra field) and every byte counts toward the
//! digest; `header::parse_header` finds where a recorded blob's header ends.

use std::io::{self, Read, Write};

use super::{goflate, goflate27};

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
    out.write_all(&trailer(&crc, total))?;
    Ok(total)
}

/// [`encode_go`] for Go 1.27's rewritten encoder (`goflate27`): the blob Go 1.27's
/// `gzip.NewWriterLevel` + `io.Copy` + `Close` writes. `gzip.Writer` is unchanged in
/// 1.27 (it hands each `Write` to flate and frames the stream the same way), and the
/// new encoder's output does not depend on how writes are split.
pub fn encode_go127(
    header: &[u8],
    level: i32,
    input: impl Read,
    mut out: impl Write,
) -> io::Result<u64> {
    out.write_all(header)?;
    let mut enc = goflate27::Encoder::new(level, &mut out)?;
    let mut crc = flate2::Crc::new();
    let total = goflate::feed(input, |chunk| {
        crc.update(chunk);
        enc.write(chunk)
    })?;
    enc.finish()?;
    out.write_all(&trailer(&crc, total))?;
    Ok(total)
}

/// The gzip trailer: CRC-32 of the raw bytes, then their size mod 2^32, little-endian.
fn trailer(crc: &flate2::Crc, total: u64) -> [u8; 8] {
    let mut t = [0u8; 8];
    t[..4].copy_from_slice(&crc.sum().to_le_bytes());
    t[4..].copy_from_slice(&(total as u32).to_le_bytes());
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_a_gzip_stream_of_the_input() {
        type Encode = fn(&[u8], i32, &[u8], &mut Vec<u8>) -> io::Result<u64>;
        let input: Vec<u8> = (0..100_000u32)
            .map(|i| (i.wrapping_mul(i) % 251) as u8)
            .collect();
        let header = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
        let encoders: [(&str, Encode); 2] = [
            ("classic", |h, l, i, o| encode_go(h, l, i, o)),
            ("go1.27", |h, l, i, o| encode_go127(h, l, i, o)),
        ];
        for (name, encode) in encoders {
            let mut blob = Vec::new();
            assert_eq!(
                encode(&header, -1, &input, &mut blob).unwrap(),
                input.len() as u64,
                "{name}"
            );
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&blob[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, input, "{name}");
        }
    }
}
