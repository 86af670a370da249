//! `regzip::pigz` against the real thing: Debian's pigz 2.6 (linked with the system
//! zlib) compresses the inputs the Go tests use (`support::regzip_inputs`) at levels
//! 1–9, with `-b 32`, `-i` and `-p 1`/`-p 2`; airlock reads each blob's header as
//! recorded, compresses the raw bytes with its pigz encoder over its own stock zlib and
//! appends the trailer: the result must be the same bytes. `find_recipe` with the
//! default encoder list must find a recipe that rebuilds pigz's output (also after a
//! JSON round trip), and `pigz -11` (zopfli) must get none.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use airlock::regzip::header;
use airlock::regzip::pigz::{self, Pigz};
use airlock::regzip::recipe::{EncoderSpec, Recipe, default_encoders, find_recipe, rebuild};
use support::regzip_inputs::{log_text, mix, own_sources, random, tar_of};

/// pigz's gzip of the file `input` with `args` (its header keeps the name and mtime).
fn pigz_file(input: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("pigz")
        .arg("-c")
        .args(args)
        .arg(input)
        .stderr(Stdio::inherit())
        .output()
        .expect("run pigz (apt-get install pigz)");
    assert!(out.status.success(), "pigz {args:?} failed: {}", out.status);
    out.stdout
}

/// The blob airlock builds: pigz's header bytes, the Rust deflate stream, CRC-32, size.
fn rust_blob(header: &[u8], spec: Pigz, input: &[u8]) -> Vec<u8> {
    let mut blob = header.to_vec();
    blob.extend(pigz::encode(spec, input).unwrap());
    let mut crc = flate2::Crc::new();
    crc.update(input);
    blob.extend_from_slice(&crc.sum().to_le_bytes());
    blob.extend_from_slice(&(input.len() as u32).to_le_bytes());
    blob
}

fn difference(theirs: &[u8], ours: &[u8]) -> Option<String> {
    if theirs == ours {
        return None;
    }
    let at = theirs
        .iter()
        .zip(ours)
        .position(|(a, b)| a != b)
        .unwrap_or(theirs.len().min(ours.len()));
    Some(format!(
        "first difference at byte {at} (pigz {} bytes, Rust {} bytes)",
        theirs.len(),
        ours.len()
    ))
}

/// pigz's arguments for `spec`: level, block size, `-i`, and `-p 1` for the one-thread
/// path, `-p 2` otherwise.
fn args_for(spec: Pigz) -> Vec<String> {
    let mut args = vec![
        format!("-{}", spec.level),
        "-b".to_string(),
        (spec.block_size >> 10).to_string(),
    ];
    if spec.independent {
        args.push("-i".to_string());
    }
    args.push("-p".to_string());
    args.push(if spec.single_thread { "1" } else { "2" }.to_string());
    args
}

fn pigz_spec(path: &Path, spec: Pigz) -> Vec<u8> {
    let args = args_for(spec);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    pigz_file(path, &argv)
}

/// Compresses `input` with pigz for every spec; returns the mismatches.
fn compare(name: &str, input: &[u8], specs: &[Pigz]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, input).unwrap();
    let mut failures = Vec::new();
    for &spec in specs {
        let theirs = pigz_spec(&path, spec);
        let h = header::parse_header(&theirs).unwrap();
        assert_eq!(
            h.name.as_deref(),
            Some(name.as_bytes()),
            "pigz keeps the name"
        );
        let ours = rust_blob(&theirs[..h.len], spec, input);
        if let Some(d) = difference(&theirs, &ours) {
            failures.push(format!(
                "{name} with pigz {}: {d}",
                args_for(spec).join(" ")
            ));
        }
    }
    failures
}

fn levels() -> Vec<Pigz> {
    (1..=9).map(Pigz::level).collect()
}

/// Every (block size, -i, -p) combination tested at `level`.
fn variants(level: u8) -> Vec<Pigz> {
    let mut out = Vec::new();
    for block_size in [32 << 10, pigz::BLOCK_SIZE] {
        for independent in [false, true] {
            for single_thread in [false, true] {
                out.push(Pigz {
                    level,
                    block_size,
                    independent,
                    single_thread,
                });
            }
        }
    }
    out
}

#[test]
fn every_level_matches_pigz_on_the_shared_inputs() {
    let block = pigz::BLOCK_SIZE as usize;
    let mut failures = Vec::new();
    for (name, input) in [
        ("empty", Vec::new()),
        ("short-text", log_text(127)),
        ("one-block", log_text(block)),
        ("one-block-and-a-byte", log_text(block + 1)),
        ("random-1m", random(1 << 20, 42)),
        ("log-2m", log_text(2 << 20)),
        ("own-sources", own_sources()),
        ("mix", mix()),
        ("doc-tar", tar_of("/usr/share/doc", 4 << 20)),
    ] {
        failures.extend(compare(name, &input, &levels()));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn block_size_independent_blocks_and_thread_count_match_pigz() {
    let specs: Vec<Pigz> = [1, 2, 3, 6, 9].into_iter().flat_map(variants).collect();
    let mut failures = compare("mix", &mix(), &specs);
    failures.extend(compare("log", &log_text(1 << 20), &specs));
    failures.extend(compare(
        "doc-tar",
        &tar_of("/usr/share/doc", 2 << 20),
        &specs,
    ));
    // the one-thread path at every level, default blocks
    let single: Vec<Pigz> = (1..=9)
        .map(|level| Pigz {
            single_thread: true,
            ..Pigz::level(level)
        })
        .collect();
    failures.extend(compare("own-sources", &own_sources(), &single));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn thread_count_changes_pigz_output_at_levels_1_to_3_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    std::fs::write(&path, log_text(1 << 20)).unwrap();
    for level in 1..=9u8 {
        let one = pigz_spec(
            &path,
            Pigz {
                single_thread: true,
                ..Pigz::level(level)
            },
        );
        let two = pigz_spec(&path, Pigz::level(level));
        let four = pigz_file(&path, &[&format!("-{level}"), "-p", "4"]);
        assert!(two == four, "level {level}: -p 2 and -p 4 differ");
        assert_eq!(one == two, level >= 4, "level {level}: -p 1 vs -p 2");
    }
}

/// find_recipe with `encoders` on pigz's blob of `input`; the recipe must rebuild the
/// blob from the raw bytes, also after a JSON round trip. Returns the recipe.
fn found_and_rebuilt(blob: &[u8], input: &[u8], encoders: &[EncoderSpec]) -> Recipe {
    let found = find_recipe(blob, encoders).unwrap().expect("a recipe");
    assert_eq!(found.raw_len, input.len() as u64);
    assert_eq!(found.recipe.members.len(), 1);
    let json = serde_json::to_string(&found.recipe).unwrap();
    let back: Recipe = serde_json::from_str(&json).unwrap();
    assert_eq!(back, found.recipe);
    let mut out = Vec::new();
    rebuild(&back, input, &mut out).unwrap();
    assert!(out == blob, "rebuild differs: {json}");
    back
}

#[test]
fn pigz_blobs_are_identified_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let input = tar_of("/usr/share/doc", 3 << 20);
    let path = dir.path().join("layer.tar");
    std::fs::write(&path, &input).unwrap();
    let defaults = default_encoders();
    for level in 1..=9u8 {
        let blob = pigz_file(&path, &[&format!("-{level}")]);
        let recipe = found_and_rebuilt(&blob, &input, &defaults);
        let encoder = recipe.members[0].encoder;
        // another pigz level may write the same bytes (a tie): any pigz one rebuilds it
        assert!(
            matches!(encoder, EncoderSpec::Pigz { block_size, independent: false, .. }
                if block_size == pigz::BLOCK_SIZE),
            "level {level}: {}",
            encoder.short()
        );
        if level == 6 {
            assert_eq!(encoder, EncoderSpec::pigz(6), "{}", encoder.short());
            let json = serde_json::to_string(&recipe).unwrap();
            assert!(
                json.contains(
                    r#""encoder":{"family":"pigz","level":6,"block_size":131072,"independent":false}"#
                ),
                "{json}"
            );
            assert_eq!(encoder.short(), "pigz level 6 (128 KiB blocks)");
        }
    }

    // the one-thread path at level 1 (a one-CPU machine's default) is in the list
    let one = Pigz {
        single_thread: true,
        ..Pigz::level(1)
    };
    let blob = pigz_spec(&path, one);
    let recipe = found_and_rebuilt(&blob, &input, &defaults);
    assert_eq!(recipe.members[0].encoder, EncoderSpec::from(one));
    let json = serde_json::to_string(&recipe).unwrap();
    assert!(
        json.contains(r#""independent":false,"single_thread":true}"#),
        "{json}"
    );

    // -b 32 and -i are not in the default list: found when the list names them
    for spec in [
        Pigz {
            block_size: 32 << 10,
            ..Pigz::level(6)
        },
        Pigz {
            independent: true,
            ..Pigz::level(6)
        },
    ] {
        let blob = pigz_spec(&path, spec);
        let wanted = EncoderSpec::from(spec);
        assert_eq!(find_recipe(&blob[..], &defaults).unwrap(), None, "{spec:?}");
        let recipe = found_and_rebuilt(&blob, &input, &[EncoderSpec::pigz(6), wanted]);
        assert_eq!(recipe.members[0].encoder, wanted, "{spec:?}");
    }
}

#[test]
fn zopfli_level_11_gets_no_recipe() {
    let dir = tempfile::tempdir().unwrap();
    let input = log_text(300_000);
    let path = dir.path().join("log");
    std::fs::write(&path, &input).unwrap();
    let blob = pigz_file(&path, &["-11"]);
    let mut back = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut back).unwrap();
    assert!(back == input, "pigz -11 round trip");
    assert_eq!(find_recipe(&blob[..], &default_encoders()).unwrap(), None);
}
