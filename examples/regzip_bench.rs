//! Throughput of the bit-exact encoders (`airlock::regzip`), single-threaded: Go's
//! classic flate (levels as numbers), Go 1.27's rewritten flate (`go1.27:LEVEL`) and
//! klauspost's pgzip (`pgzip:LEVEL`), pigz over stock zlib (`pigz:LEVEL`, 128 KiB
//! blocks; `pigz1:LEVEL` for its one-thread path), GNU gzip's own deflate
//! (`gnu:LEVEL`); or, with
//! `--find-recipe`, of `find_recipe` (identification with the default encoder list) on a
//! gzip file:
//!
//! ```text
//! tar cf /tmp/bench.tar -C / usr/lib/x86_64-linux-gnu/perl-base usr/share/doc   # any tar
//! cargo run --release --example regzip_bench -- /tmp/bench.tar          # Go, default level
//! cargo run --release --example regzip_bench -- /tmp/bench.tar 1 6 9    # Go, chosen levels
//! cargo run --release --example regzip_bench -- /tmp/bench.tar go1.27:-1 go1.27:9
//! cargo run --release --example regzip_bench -- /tmp/bench.tar pgzip:5 pgzip:9
//! cargo run --release --example regzip_bench -- /tmp/bench.tar pigz:6 pigz:9 pigz1:1
//! cargo run --release --example regzip_bench -- /tmp/bench.tar gnu:1 gnu:6 gnu:9
//! cargo run --release --example regzip_bench -- --find-recipe /tmp/bench.tar.gz
//! ```
//!
//! The input is read into memory first so only the encoder is timed; prints MB/s of
//! uncompressed input (1 MB = 10^6 bytes) per wall-clock second and per second of this
//! thread's CPU time (from /proc/thread-self/schedstat; the number that counts on a
//! busy machine), and the compressed size per level.

use std::io::{self, Write};
use std::time::Instant;

use airlock::regzip::identify::Candidate;
use airlock::regzip::identify::Encoder as _;
use airlock::regzip::klauspost::{BLOCK_SIZE, Pgzip};
use airlock::regzip::pigz::Pigz;
use airlock::regzip::recipe::{default_encoders, find_recipe};
use airlock::regzip::{gnugzip, goflate, goflate27};

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

/// klauspost's pgzip at `level` over `data` (256 KiB writes, as a rebuild feeds it).
fn pgzip(level: i32, data: &[u8], out: &mut Count) {
    let c = Pgzip {
        level,
        block_size: BLOCK_SIZE,
    }
    .start()
    .unwrap();
    feed(c, data, out);
}

/// pigz at `level` (128 KiB blocks; `single_thread`: its -p 1 path) over `data`.
fn pigz(level: u8, single_thread: bool, data: &[u8], out: &mut Count) {
    let c = Pigz {
        single_thread,
        ..Pigz::level(level)
    }
    .start()
    .unwrap();
    feed(c, data, out);
}

/// Runs a candidate encoder over `data` in 256 KiB writes, as a rebuild feeds it.
fn feed(mut c: Box<dyn Candidate>, data: &[u8], out: &mut Count) {
    let mut buf = Vec::new();
    for piece in data.chunks(256 << 10) {
        c.write(piece, &mut buf).unwrap();
        out.0 += buf.len() as u64;
        buf.clear();
    }
    c.finish(&mut buf).unwrap();
    out.0 += buf.len() as u64;
}

/// GNU gzip's deflate at `level` over `data` (256 KiB writes, as a rebuild feeds it).
fn gnu(level: u32, data: &[u8], out: &mut Count) {
    feed(gnugzip::GnuGzip { level }.start().unwrap(), data, out);
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let find = args.next_if(|a| a == "--find-recipe").is_some();
    let path = args.next().expect(
        "usage: regzip_bench FILE [LEVEL|go1.27:LEVEL|pgzip:LEVEL|pigz:LEVEL|pigz1:LEVEL|gnu:LEVEL...] | --find-recipe FILE.gz",
    );
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    if find {
        let (start, cpu_start) = (Instant::now(), cpu_ns());
        let found = find_recipe(&data[..], &default_encoders()).unwrap();
        let secs = start.elapsed().as_secs_f64();
        let cpu = cpu_ns().zip(cpu_start).map(|(b, a)| (b - a) as f64 / 1e9);
        let raw = found.as_ref().map_or(0, |f| f.raw_len) as f64 / 1e6;
        println!(
            "find_recipe: {} ({:.1} MB/s of raw bytes wall, {} CPU, {secs:.2} s)",
            found.as_ref().map_or("no recipe".to_string(), |f| f
                .recipe
                .encoders()
                .iter()
                .map(|e| e.short())
                .collect::<Vec<_>>()
                .join(", ")),
            raw / secs,
            cpu.map_or("?".to_string(), |c| format!("{:.1} MB/s", raw / c)),
        );
        return;
    }
    let mut levels: Vec<String> = args.collect();
    if levels.is_empty() {
        levels.push("-1".into());
    }
    for level in levels {
        let (start, cpu_start) = (Instant::now(), cpu_ns());
        let mut out = Count(0);
        let (family, l) = level.split_once(':').unwrap_or(("go", level.as_str()));
        match family {
            "pgzip" => pgzip(l.parse().expect("pgzip level: -2..=9"), &data, &mut out),
            "go1.27" => {
                let l = l.parse().expect("go1.27 level: -2..=9");
                goflate27::encode(l, &data[..], &mut out).unwrap();
            }
            "pigz" | "pigz1" => {
                let l = l.parse().expect("pigz level: 1..=9");
                pigz(l, family == "pigz1", &data, &mut out);
            }
            "gnu" => gnu(l.parse().expect("gnu level: 1..=9"), &data, &mut out),
            "go" => {
                let l = l.parse().expect("level: -2..=9");
                goflate::encode(l, &data[..], &mut out).unwrap();
            }
            other => panic!("unknown encoder family {other}: go1.27, pgzip, pigz, pigz1, gnu"),
        }
        let secs = start.elapsed().as_secs_f64();
        let cpu = cpu_ns().zip(cpu_start).map(|(b, a)| (b - a) as f64 / 1e9);
        let mb = data.len() as f64 / 1e6;
        println!(
            "level {level:>8}: {:.1} MB/s wall, {} CPU  ({} -> {} bytes, {:.3}, {secs:.2} s)",
            mb / secs,
            cpu.map_or("?".to_string(), |c| format!("{:.1} MB/s", mb / c)),
            data.len(),
            out.0,
            out.0 as f64 / data.len() as f64
        );
    }
}
