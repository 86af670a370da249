//! The bit-level primitives of the three ports' block writers, which are Go's
//! `huffmanBitWriter` pieces in all of them: the 64-bit accumulator that hands out six
//! bytes whenever 48 bits are pending, the zero-padding to a byte boundary, the
//! run-length coding of code lengths (RFC 1951 §3.2.7) and the dynamic header that
//! sends them.
//!
//! Free functions over the writer's own fields rather than a struct: the hot token
//! loops copy the accumulator into locals (so it stays in registers while the code
//! tables are borrowed) and call `put` on those.

use std::ops::AddAssign;

/// The end of the code lengths in a codegen array.
pub const BAD_CODE: u8 = 255;

/// Adds the low `n` bits of `v` above the `nbits` pending in `bits`; once 48 or more
/// are pending, their first six bytes go to `out`. `v` must fit in `n` bits.
#[inline(always)]
pub fn put(bits: &mut u64, nbits: &mut u32, out: &mut Vec<u8>, v: u64, n: u32) {
    *bits |= v << (*nbits & 63);
    *nbits += n;
    if *nbits >= 48 {
        out.extend_from_slice(&bits.to_le_bytes()[..6]);
        *bits >>= 48;
        *nbits -= 48;
    }
}

/// Hands the pending bits to `out` as whole bytes, the last one zero-padded.
#[inline]
pub fn pad(bits: &mut u64, nbits: &mut u32, out: &mut Vec<u8>) {
    let n = nbits.div_ceil(8) as usize;
    out.extend_from_slice(&bits.to_le_bytes()[..n]);
    *bits = 0;
    *nbits = 0;
}

/// Run-length codes, in place, the code lengths in `cg` (ended by `BAD_CODE`) with the
/// code-length alphabet (16: repeat the previous 3–6 times, 17: 3–10 zeros, 18: 11–138
/// zeros, each followed by its count), ends the result with `BAD_CODE`, and counts
/// each symbol used in `freq` (which the caller zeroes).
pub fn run_length_code<F: AddAssign + From<u8>>(cg: &mut [u8], freq: &mut [F]) {
    let mut size = cg[0];
    let mut count: i32 = 1;
    let mut out = 0;
    let mut input = 1;
    while size != BAD_CODE {
        let next = cg[input];
        input += 1;
        if next == size {
            count += 1;
            continue;
        }
        if size != 0 {
            cg[out] = size;
            out += 1;
            freq[size as usize] += F::from(1);
            count -= 1;
            while count >= 3 {
                let n = count.min(6);
                cg[out] = 16;
                cg[out + 1] = (n - 3) as u8;
                out += 2;
                freq[16] += F::from(1);
                count -= n;
            }
        } else {
            while count >= 11 {
                let n = count.min(138);
                cg[out] = 18;
                cg[out + 1] = (n - 11) as u8;
                out += 2;
                freq[18] += F::from(1);
                count -= n;
            }
            if count >= 3 {
                cg[out] = 17;
                cg[out + 1] = (count - 3) as u8;
                out += 2;
                freq[17] += F::from(1);
                count = 0;
            }
        }
        while count > 0 {
            cg[out] = size;
            out += 1;
            freq[size as usize] += F::from(1);
            count -= 1;
        }
        size = next;
        count = 1;
    }
    cg[out] = BAD_CODE;
}

/// Order in which a dynamic header sends the code-length code's lengths (RFC 1951
/// §3.2.7).
pub const CODEGEN_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// A dynamic block's header through `put(value, bits)`: block type, alphabet sizes, the
/// first `num_codegens` code-length code lengths in `CODEGEN_ORDER`, then the
/// run-length coded lengths in `codegen` (as `run_length_code` left them), each symbol
/// written with `code(symbol)` = (bits, length) of the code-length code.
pub fn dynamic_header(
    mut put: impl FnMut(u64, u32),
    code: impl Fn(usize) -> (u64, u32),
    codegen: &[u8],
    (num_literals, num_offsets, num_codegens): (usize, usize, usize),
    eof: bool,
) {
    put(if eof { 5 } else { 4 }, 3);
    put((num_literals - 257) as u64, 5);
    put((num_offsets - 1) as u64, 5);
    put((num_codegens - 4) as u64, 4);
    for &sym in &CODEGEN_ORDER[..num_codegens] {
        put(code(sym).1 as u64, 3);
    }
    let mut i = 0;
    loop {
        let sym = codegen[i];
        i += 1;
        if sym == BAD_CODE {
            break;
        }
        let (bits, len) = code(sym as usize);
        put(bits, len);
        let extra = match sym {
            16 => 2,
            17 => 3,
            18 => 7,
            _ => continue,
        };
        put(codegen[i] as u64, extra);
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulator_hands_out_six_bytes_and_pads() {
        let (mut bits, mut nbits, mut out) = (0u64, 0u32, Vec::new());
        for _ in 0..5 {
            put(&mut bits, &mut nbits, &mut out, 0x3ff, 10);
        }
        assert_eq!(out, [0xff; 6]);
        assert_eq!(nbits, 2);
        put(&mut bits, &mut nbits, &mut out, 0, 7);
        pad(&mut bits, &mut nbits, &mut out);
        assert_eq!(out, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x03, 0x00]);
        assert_eq!((bits, nbits), (0, 0));
    }

    #[test]
    fn code_lengths_are_run_length_coded() {
        // eight 8s, two 0s, a 5 and 150 0s
        let mut cg = vec![8u8; 8];
        cg.extend([0, 0, 5]);
        cg.extend([0; 150]);
        cg.push(BAD_CODE);
        let mut freq = [0i32; 19];
        run_length_code(&mut cg, &mut freq);
        let end = cg.iter().position(|&c| c == BAD_CODE).unwrap();
        assert_eq!(&cg[..end], [8, 16, 3, 8, 0, 0, 5, 18, 127, 18, 1]);
        assert_eq!(
            (freq[8], freq[16], freq[0], freq[5], freq[18]),
            (2, 1, 2, 1, 2)
        );
    }
}
