//! `regzip::gnugzip` against the real thing: `/usr/bin/gzip` (GNU gzip 1.12) at every
//! level on the inputs the other encoder tests use, compared with the Rust deflate
//! stream byte for byte; and gzip's own files (with and without name and mtime) found
//! by `find_recipe` with the default encoder list and rebuilt exactly.

mod support;

use std::path::Path;
use std::process::Command;

use airlock::regzip::gnugzip;
use airlock::regzip::recipe::{EncoderSpec, Recipe, default_encoders, find_recipe, rebuild};

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

/// Finds `blob`'s recipe with the default list, checks it names `want`, survives a JSON
/// round trip and rebuilds `blob` byte for byte from `raw`.
fn recipe_rebuilds(blob: &[u8], raw: &[u8], want: EncoderSpec) -> String {
    let found = find_recipe(blob, &default_encoders())
        .unwrap()
        .expect("a recipe for GNU gzip's output");
    assert_eq!(found.raw_len, raw.len() as u64);
    assert_eq!(found.recipe.members.len(), 1);
    assert_eq!(found.recipe.members[0].encoder, want);
    let json = serde_json::to_string(&found.recipe).unwrap();
    let back: Recipe = serde_json::from_str(&json).unwrap();
    assert_eq!(back, found.recipe);
    let mut out = Vec::new();
    rebuild(&back, raw, &mut out).unwrap();
    assert!(
        out == blob,
        "rebuilt blob differs at byte {}",
        first_diff(&out, blob)
    );
    json
}

#[test]
fn gnu_gzip_files_at_every_level_are_found_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let input = [
        &log_text(150_000)[..],
        &random(20_000, 5),
        &own_sources()[..200_000],
    ]
    .concat();
    for level in 1..=9u32 {
        let blob = gnu_gzip(dir.path(), "in", &input, &["-n", &format!("-{level}")]);
        let json = recipe_rebuilds(&blob, &input, EncoderSpec::gnu(level));
        assert!(
            json.contains(&format!(
                r#""family":"gnu-gzip","variant":"1.12","level":{level}"#
            )),
            "{json}"
        );
    }
}

#[test]
fn default_gzip_with_name_and_mtime_is_rebuilt_with_its_header() {
    // `gzip FILE` with no flags: level 6, the file's name and mtime in the header.
    let dir = tempfile::tempdir().unwrap();
    let input = tar_of("/usr/share/doc", 1 << 20);
    let src = dir.path().join("layer.tar");
    std::fs::write(&src, &input).unwrap();
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    std::fs::File::options()
        .write(true)
        .open(&src)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let out = Command::new("gzip").arg(&src).output().unwrap();
    assert!(out.status.success());
    let blob = std::fs::read(dir.path().join("layer.tar.gz")).unwrap();
    assert_eq!(blob[3], 8, "FNAME set");
    assert_eq!(&blob[4..8], &1_700_000_000u32.to_le_bytes());
    assert_eq!(&blob[10..19], b"layer.tar");
    recipe_rebuilds(&blob, &input, EncoderSpec::gnu(6));
}

#[test]
fn gzip_in_a_pipe_is_rebuilt() {
    // `tar | gzip`: reads from a pipe in whatever pieces it gets; same bytes.
    let input = mix();
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feed = input.clone();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        for piece in feed.chunks(10_007) {
            stdin.write_all(piece).unwrap();
        }
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    recipe_rebuilds(&out.stdout, &input, EncoderSpec::gnu(6));
}

#[test]
fn candidate_fed_odd_pieces_equals_one_write() {
    use airlock::regzip::identify::Encoder;
    let input = mix();
    for level in [1, 6, 9] {
        let whole = gnugzip::deflate(level, &input).unwrap();
        let mut c = gnugzip::GnuGzip { level }.start().unwrap();
        let mut out = Vec::new();
        for piece in input.chunks(7_919) {
            c.write(piece, &mut out).unwrap();
        }
        c.finish(&mut out).unwrap();
        assert!(
            out == whole,
            "level {level}: differs at {}",
            first_diff(&out, &whole)
        );
    }
}

#[test]
fn rsyncable_output_is_not_claimed() {
    // `--rsyncable` cuts blocks where a rolling sum of the input says: not reproduced,
    // so no recipe may claim it (the layer is kept as is).
    let dir = tempfile::tempdir().unwrap();
    let input = tar_of("/usr/share/doc", 1 << 20);
    let plain = gnu_gzip(dir.path(), "in", &input, &["-n"]);
    let rsync = gnu_gzip(dir.path(), "in", &input, &["-n", "--rsyncable"]);
    assert!(plain != rsync, "--rsyncable changed nothing on this input");
    assert!(
        find_recipe(&rsync[..], &default_encoders())
            .unwrap()
            .is_none()
    );
}
