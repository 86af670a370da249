//! The zstd seek table parser and the frame header check, on arbitrary file tails.
#![no_main]

use std::io::Cursor;

use airlock::bundle::seekable::{check_frame_header, damaged_footer, read_seek_table};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    if let Ok(Ok(table)) = read_seek_table(&mut Cursor::new(data), len) {
        let _ = table.decompressed_size();
        for f in &table.frames {
            let start = usize::try_from(f.c_off).unwrap().min(data.len());
            let _ = check_frame_header(&data[start..], f);
        }
    }
    let _ = damaged_footer(&mut Cursor::new(data), len);
});
