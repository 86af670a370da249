//! `regzip::gnugzip` against the real thing: `/usr/bin/gzip` (GNU gzip 1.12) at every
//! level on the inputs the other encoder tests use, compared with the Rust deflate
//! stream byte for byte; and gzip's own files (with and without name and mtime) found
//! by `find_recipe` with the default encoder list and rebuilt exactly.

mod support;

use std::path::Path;
use std::process::Command;

use airlock::regzip::gnugzip;

use support::regzip_inputs::{log_text, mix, own_sources, random, tar_of};

/// `gzip ARGS FILE` in `dir` (the file is compressed in place, `FILE.gz` read and removed).
fn gnu_gzip(dir: &Path, name: &str, input: &[u8], args: &[&str]) -> Vec<u8> {
    let src = dir.join(name);
    std::fs::write(&src, input).unwrap();
    let out = Command::new("gzip").args(args).arg(&src).output().unwrap();
    assert!(
        out.status.success(),
        "gzip: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gz = dir.join(format!("{name}.gz"));
    let blob = std::fs::read(&gz).unwrap();
    std::fs::remove_file(&gz).unwrap();
    blob
}

/// The deflate stream of a gzip blob with a plain 10-byte header (`-n`).
fn deflate_of(blob: &[u8]) -> &[u8] {
    assert_eq!(blob[3], 0, "no optional header fields");
    &blob[10..blob.len() - 8]
}

fn inputs() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("empty", Vec::new()),
        ("one-byte", b"x".to_vec()),
        ("zeros", vec![0u8; 300_000]),
        ("random", random(300_000, 42)),
        ("log", log_text(1 << 20)),
        ("sources", own_sources()),
        ("tar", tar_of("/usr/share/doc", 2 << 20)),
        ("mix", mix()),
        ("window-65535", log_text(65_535)),
        ("window-65536", log_text(65_536)),
        ("window-65400", log_text(65_400)),
        ("window-98304", log_text(98_304)),
    ]
}

/// First differing byte, for messages.
fn first_diff(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[test]
fn every_level_matches_gnu_gzip_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (name, input) in inputs() {
        for level in 1..=9u32 {
            let blob = gnu_gzip(dir.path(), name, &input, &["-n", &format!("-{level}")]);
            let want = deflate_of(&blob);
            let got = gnugzip::deflate(level, &input).unwrap();
            if got != want {
                failures.push(format!(
                    "{name} ({} bytes) level {level}: differs at byte {} of {} (rust {})",
                    input.len(),
                    first_diff(&got, want),
                    want.len(),
                    got.len()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
