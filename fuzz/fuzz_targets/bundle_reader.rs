//! The bundle reader: `Bundle::open` on arbitrary bytes (written to a temp file), then
//! the TOC, every entry and every blob the TOC lists, each read in full (capped).
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.tar");
    std::fs::write(&path, data).unwrap();
    let Ok(bundle) = airlock::bundle::Bundle::open(&path) else {
        return;
    };
    let toc = bundle.toc().clone();
    let names: Vec<String> = bundle.entries().iter().map(|e| e.name.clone()).collect();
    for name in names {
        let _ = bundle.read_entry(&name, 1 << 20);
    }
    for b in &toc.blobs {
        if let Ok(r) = bundle.blob(&b.digest) {
            let mut sink = Vec::new();
            let _ = r.take(16 << 20).read_to_end(&mut sink);
        }
    }
    for image in &toc.images {
        let _ = airlock::bundle::graph::read_graph(&bundle, image);
    }
});
