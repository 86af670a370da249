//! The DEFLATE bit stream as gzip writes it: codes and extra bits packed from the
//! least significant bit, byte alignment before stored data and at the end. The
//! accumulator itself is the ports' shared one (`regzip::deflate::bits`).

use crate::regzip::deflate::bits::{pad, put};

/// Bits in, bytes out (`out` is drained by the caller).
pub(super) struct BitWriter {
    acc: u64,
    n: u32,
    pub(super) out: Vec<u8>,
}

impl BitWriter {
    pub(super) fn new() -> BitWriter {
        BitWriter {
            acc: 0,
            n: 0,
            out: Vec::new(),
        }
    }

    /// The low `n` bits of `value` (n <= 16).
    pub(super) fn bits(&mut self, value: u32, n: u32) {
        let v = u64::from(value) & ((1u64 << n) - 1);
        put(&mut self.acc, &mut self.n, &mut self.out, v, n);
    }

    /// Pads to a byte boundary with zero bits.
    pub(super) fn align(&mut self) {
        pad(&mut self.acc, &mut self.n, &mut self.out);
    }

    /// Whole bytes (after [`align`](Self::align)).
    pub(super) fn bytes(&mut self, data: &[u8]) {
        debug_assert_eq!(self.n, 0);
        self.out.extend_from_slice(data);
    }
}
