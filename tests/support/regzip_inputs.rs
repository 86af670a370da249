//! The inputs the bit-exact encoder tests (`regzip_go`, `regzip_go127`, `regzip_pgzip`)
//! compress with the real writers and with Rust: deterministic random bytes, generated
//! log text, this repository's sources, a tar of real files, mixes of random and text
//! cut at uneven sizes, small and edge sizes, 17 MiB; and for streams too big to hold, a
//! generated stream and a writer comparing with Go's as it arrives.

use std::path::{Path, PathBuf};

/// Deterministic pseudo-random bytes (xorshift), the same on every run.
pub fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A generated access log: repetitive structure, varying fields.
pub fn log_text(len: usize) -> Vec<u8> {
    let paths = [
        "/v2/",
        "/v2/library/alpine/manifests/3.19",
        "/v2/app/blobs/sha256:",
        "/healthz",
        "/v2/_catalog",
    ];
    let levels = ["INFO", "WARN", "DEBUG", "ERROR"];
    let mut out = Vec::with_capacity(len + 200);
    let mut r = random(len / 8 + 64, 7).into_iter().cycle();
    let mut n = 0u64;
    while out.len() < len {
        let a = r.next().unwrap() as usize;
        let b = r.next().unwrap() as u64;
        let line = format!(
            "2026-11-30T12:{:02}:{:02}.{:03}Z {} request id={:08x} path={}{} status={} bytes={} took={}ms\n",
            (n / 60) % 60,
            n % 60,
            (b * 7) % 1000,
            levels[a % levels.len()],
            n.wrapping_mul(0x9e37_79b9) as u32,
            paths[a % paths.len()],
            if a % 5 == 2 {
                format!("{:016x}", b.wrapping_mul(n))
            } else {
                String::new()
            },
            [200, 200, 200, 404, 500][a % 5],
            b * 131 + n % 977,
            b % 300
        );
        out.extend_from_slice(line.as_bytes());
        n += 1;
    }
    out.truncate(len);
    out
}

/// This repository's Rust sources, concatenated in path order.
pub fn own_sources() -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|p| std::fs::read(p).unwrap())
        .collect()
}

/// The regular files under `dir`, in path order (unreadable entries skipped).
pub fn sorted_files(dir: impl AsRef<Path>) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    files.sort();
    files
}

/// A tar of real files from `dir` (path order) until about `limit` bytes.
pub fn tar_of(dir: &str, limit: usize) -> Vec<u8> {
    let files = sorted_files(dir);
    let mut builder = tar::Builder::new(Vec::new());
    for f in files {
        if builder.get_ref().len() >= limit {
            break;
        }
        let rel = f.strip_prefix("/").unwrap();
        builder.append_path_with_name(&f, rel).unwrap();
    }
    builder.into_inner().unwrap()
}

/// Random and text pieces of uneven sizes, so block cuts fall inside and across them.
pub fn mix() -> Vec<u8> {
    let sizes = [30_000, 70_001, 5_000, 65_535, 100, 131_072, 12_345, 40_000];
    mix_of(400_000, 700_000, &sizes, 16)
}

/// `pieces` pieces of `sizes` (cycled), text and random in turn, cut from `text_len`
/// bytes of `log_text` and `noise_len` random bytes (enough for the pieces).
pub fn mix_of(text_len: usize, noise_len: usize, sizes: &[usize], pieces: usize) -> Vec<u8> {
    let text = log_text(text_len);
    let noise = random(noise_len, 99);
    let mut out = Vec::new();
    let (mut t, mut n) = (0, 0);
    for (i, size) in sizes.iter().cycle().take(pieces).enumerate() {
        if i % 2 == 0 {
            out.extend_from_slice(&text[t..t + size]);
            t += size;
        } else {
            out.extend_from_slice(&noise[n..n + size]);
            n += size;
        }
    }
    out
}

/// Small inputs and sizes at the encoders' edges, named: empty, one byte, 12/13,
/// 16/17, 32/33 and 127/128 bytes (where the encoders' short-input paths change), zeros,
/// and text around 64 KiB blocks.
pub fn small_and_edge() -> Vec<(String, Vec<u8>)> {
    let digits = b"0123456789abcdefg";
    let mut inputs: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), Vec::new()),
        ("one-byte".into(), b"x".to_vec()),
        ("twelve".into(), digits[..12].to_vec()),
        ("thirteen".into(), digits[..13].to_vec()),
        ("sixteen".into(), digits[..16].to_vec()),
        ("seventeen".into(), digits[..17].to_vec()),
        ("thirty-two".into(), log_text(32)),
        ("thirty-three".into(), log_text(33)),
        ("short-text".into(), log_text(127)),
        ("short-text-128".into(), log_text(128)),
        ("zeros-64k".into(), vec![0u8; 65536]),
        ("zeros-1m".into(), vec![0u8; 1 << 20]),
    ];
    for len in [65_535, 65_536, 2 * 65_535 + 1, 98_304 + 261] {
        inputs.push((format!("text-{len}"), log_text(len)));
    }
    inputs
}

/// 17 MiB of text with random pieces of growing length: the fast levels' history moves
/// down many times, the chained levels slide their window 500+ times and (Go 1.19)
/// rebase their hash chains after 16 MiB.
pub fn past_16_mib() -> Vec<u8> {
    let text = log_text(3 << 20);
    let noise = random(1 << 20, 5);
    let mut input = Vec::with_capacity(18 << 20);
    while input.len() < 17 << 20 {
        input.extend_from_slice(&text);
        input.extend_from_slice(&noise[..(input.len() / 7) % noise.len()]);
    }
    input
}

/// The pool the long-stream tests cut their streams from: 6 MiB of text, 2 MiB random.
pub fn stream_pool() -> Vec<u8> {
    let mut pool = log_text(6 << 20);
    pool.extend_from_slice(&random(2 << 20, 11));
    pool
}

/// `len` bytes made on the fly from 64 KiB pieces of `pool` at varying offsets; the
/// bytes depend only on their position, not on how they are read.
pub struct Stream<'a> {
    pub pool: &'a [u8],
    pub pos: u64,
    pub len: u64,
}

impl std::io::Read for Stream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        const PIECE: u64 = 1 << 16;
        let (piece, within) = (self.pos / PIECE, (self.pos % PIECE) as usize);
        let start =
            (piece.wrapping_mul(7919 * 64) % (self.pool.len() as u64 - PIECE)) as usize + within;
        let k = (buf.len() as u64)
            .min(PIECE - within as u64)
            .min(self.len - self.pos) as usize;
        buf[..k].copy_from_slice(&self.pool[start..start + k]);
        self.pos += k as u64;
        Ok(k)
    }
}

/// Compares what is written with Go's stdout as it arrives; remembers the first difference.
pub struct SameAs<R: std::io::Read> {
    pub go: R,
    pub at: u64,
    pub diff: Option<u64>,
}

impl<R: std::io::Read> std::io::Write for SameAs<R> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let mut theirs = vec![0u8; b.len()];
        let got = read_full(&mut self.go, &mut theirs);
        if self.diff.is_none() {
            let i = b
                .iter()
                .zip(&theirs[..got])
                .position(|(x, y)| x != y)
                .or((got < b.len()).then_some(got));
            self.diff = i.map(|i| self.at + i as u64);
        }
        self.at += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn read_full(r: &mut impl std::io::Read, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}
