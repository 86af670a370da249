//! Throughput of the bit-exact Go flate encoders (`airlock::regzip`), single-threaded:
//!
//! ```text
//! tar cf /tmp/bench.tar -C / usr/lib/x86_64-linux-gnu/perl-base usr/share/doc   # any tar
//! cargo run --release --example regzip_bench -- /tmp/bench.tar          # default level
//! cargo run --release --example regzip_bench -- /tmp/bench.tar 1 6 9    # chosen levels
//! cargo run --release --example regzip_bench -- --go1.27 /tmp/bench.tar -1 1 9   # Go 1.27's
//! ```
//!
//! The input is read into memory first so only the encoder is timed; prints MB/s of
//! uncompressed input (1 MB = 10^6 bytes) per wall-clock second and per second of this
//! thread's CPU time (from /proc/thread-self/schedstat; the number that counts on a
//! busy machine), and the compressed size per level.

use std::io::{self, Write};
use std::time::Instant;

use airlock::regzip::{goflate, goflate27};

/// Counts bytes and drops them.
struct Count(u64);

impl Write for Count {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Nanoseconds this thread has run on a CPU (Linux), if known.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let go127 = args.next_if(|a| a == "--go1.27").is_some();
    let path = args
        .next()
        .expect("usage: regzip_bench [--go1.27] FILE [LEVEL...]");
    let mut levels: Vec<i32> = args.map(|a| a.parse().expect("level: -2..=9")).collect();
    if levels.is_empty() {
        levels.push(-1);
    }
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    for level in levels {
        let (start, cpu_start) = (Instant::now(), cpu_ns());
        let mut out = Count(0);
        if go127 {
            goflate27::encode(level, &data[..], &mut out).unwrap();
        } else {
            goflate::encode(level, &data[..], &mut out).unwrap();
        }
        let secs = start.elapsed().as_secs_f64();
        let cpu = cpu_ns().zip(cpu_start).map(|(b, a)| (b - a) as f64 / 1e9);
        let mb = data.len() as f64 / 1e6;
        println!(
            "{}level {level:>2}: {:.1} MB/s wall, {} CPU  ({} -> {} bytes, {:.3}, {secs:.2} s)",
            if go127 { "go1.27 " } else { "classic " },
            mb / secs,
            cpu.map_or("?".to_string(), |c| format!("{:.1} MB/s", mb / c)),
            data.len(),
            out.0,
            out.0 as f64 / data.len() as f64
        );
    }
}
