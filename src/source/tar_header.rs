//! Telling a tar file from anything else before the tar library reads it, and
//! quoting the library's errors without the raw input bytes they may hold: used by
//! [`super::archive`] for `docker-archive:FILE`.

use std::fs::File;
use std::io::Read;

/// Reads until `buf` is full or the file ends; how many bytes were read.
pub(crate) fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Whether a 512-byte block is a tar header (its checksum field matches, the sum of its
/// bytes with that field as spaces) or the all-zero block that ends an empty archive.
pub(crate) fn is_tar_header(block: &[u8; 512]) -> bool {
    if block.iter().all(|&b| b == 0) {
        return true;
    }
    let field = &block[148..156];
    let digits: String = field
        .iter()
        .map(|&b| b as char)
        .filter(|c| !matches!(c, ' ' | '\0'))
        .collect();
    let Ok(stored) = u32::from_str_radix(&digits, 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    sum == stored
}

/// `text` with control characters and undecodable bytes (U+FFFD) shown as `?`, for
/// messages that quote input.
pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || c == '\u{fffd}' {
                '?'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tar_header_is_told_from_noise() {
        let mut block = [0u8; 512];
        assert!(is_tar_header(&block), "the end-of-archive block");
        block[..5].copy_from_slice(b"hello");
        block[156] = b'0';
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum::<u32>() + 8 * 32;
        block[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        assert!(is_tar_header(&block));
        block[0] = b'j';
        assert!(!is_tar_header(&block), "checksum no longer matches");
        assert_eq!(printable("a\u{1b}b\u{fffd}c"), "a?b?c");
    }
}
