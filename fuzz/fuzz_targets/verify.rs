//! `verify` on arbitrary bytes (written to a temp file, as `.tar`; the storage is
//! detected from the content).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.tar");
    std::fs::write(&path, data).unwrap();
    let _ = airlock::bundle::verify(&path, &airlock::progress::Silent);
});
