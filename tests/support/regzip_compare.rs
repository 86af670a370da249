//! How the bit-exact encoder tests (`regzip_go`, `regzip_go127`, `regzip_pgzip`) compare
//! a real writer's output with the Rust encoder's: at every level, with a list of
//! known failures that must keep failing (so the list always says exactly what is
//! missing), and side by side on streams too big to hold. The writers themselves
//! (`gzipwrite.rs`, `pgzipwrite.rs`) and the inputs (`regzip_inputs.rs`) live apart.

use std::fmt::Display;
use std::process::{Command, Stdio};

use super::regzip_inputs::{SameAs, Stream};

/// `None` when equal, else a description with the first differing offset.
pub fn difference(go: &[u8], rust: &[u8]) -> Option<String> {
    if go == rust {
        return None;
    }
    let at = go
        .iter()
        .zip(rust)
        .position(|(a, b)| a != b)
        .unwrap_or(go.len().min(rust.len()));
    Some(format!(
        "first difference at byte {at} (Go {} bytes, Rust {} bytes)",
        go.len(),
        rust.len()
    ))
}

/// Input `name` at every level of `levels`: `reference(level)` is the real writer's
/// blob, `ours(blob, level)` the Rust one (it may take the header from the real blob,
/// as a recipe records it). Returns the mismatches as (level, message).
pub fn every_level<L: Copy + Display>(
    name: &str,
    levels: &[L],
    mut reference: impl FnMut(L) -> Vec<u8>,
    mut ours: impl FnMut(&[u8], L) -> Result<Vec<u8>, String>,
) -> Vec<(L, String)> {
    let mut failures = Vec::new();
    for &level in levels {
        let theirs = reference(level);
        let diff = match ours(&theirs, level) {
            Err(e) => Some(e),
            Ok(rust) => difference(&theirs, &rust),
        };
        if let Some(diff) = diff {
            failures.push((level, format!("{name} at level {level}: {diff}")));
        }
    }
    failures
}

/// Asserts every level of input group `group` matched `writer` except those listed for
/// it in `known_failing`, each of which must have mismatched on at least one input.
pub fn check<L: Copy + PartialEq + Display>(
    results: &[(L, String)],
    group: &str,
    known_failing: &[(L, &str)],
    writer: &str,
) {
    let known = |level: L| known_failing.contains(&(level, group));
    let unexpected: Vec<&str> = results
        .iter()
        .filter(|(l, _)| !known(*l))
        .map(|(_, m)| m.as_str())
        .collect();
    assert!(
        unexpected.is_empty(),
        "Rust output differs from {writer}'s:\n{}",
        unexpected.join("\n")
    );
    for &(level, g) in known_failing {
        assert!(
            g != group || results.iter().any(|(l, _)| *l == level),
            "level {level} now matches {writer} on {group}: take it off KNOWN_FAILING"
        );
    }
}

/// Streams `len` bytes of `pool` (see `Stream`) through the gzip writer `go` (run as
/// `go LEVEL - -`) and through `encode(header, input, out)` side by side, with Go's
/// default header (XFL 4 at BestSpeed, OS 255), and asserts the two outputs are equal.
pub fn side_by_side(
    go: &std::path::Path,
    level: i32,
    pool: &[u8],
    len: u64,
    encode: impl FnOnce(&[u8], Stream<'_>, &mut SameAs<std::process::ChildStdout>),
) {
    let mut child = Command::new(go)
        .arg(level.to_string())
        .arg("-")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::scope(|s| {
        let feeder = s.spawn(move || {
            std::io::copy(&mut Stream { pool, pos: 0, len }, &mut stdin).unwrap();
        });
        let mut same = SameAs {
            go: child.stdout.take().unwrap(),
            at: 0,
            diff: None,
        };
        let xfl = if level == 1 { 4 } else { 0 };
        let header = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255];
        encode(&header, Stream { pool, pos: 0, len }, &mut same);
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut same.go, &mut rest).unwrap();
        assert!(
            rest.is_empty(),
            "level {level}: Go wrote {} bytes more",
            rest.len()
        );
        assert_eq!(
            same.diff, None,
            "level {level}: first difference at byte {:?}",
            same.diff
        );
        feeder.join()
    });
    feeder.unwrap();
    assert!(child.wait().unwrap().success());
}
