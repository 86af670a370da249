//! The zstd frames against the seek table, checked before the scan.
//!
//! The sequential scan decodes the frames without the table, so a table entry damaged
//! in a way that keeps the sizes' sum would otherwise go unnoticed, and send every
//! random-access read (`push`, `load`) to the wrong place. Here each frame the table
//! lists must start where it says, with a header that matches it
//! ([`check_frame_header`]); a file whose seek table lost its magic number (so it reads
//! as not seekable) is reported too ([`damaged_footer`]).

use std::sync::Arc;

use super::{Finding, FindingKind, Pass};
use crate::bundle::reader::Storage;
use crate::bundle::seekable::{MAX_FRAME_HEADER, check_frame_header, damaged_footer};
use crate::bundle::source::{BundleFile, Cursor};

impl Pass<'_> {
    /// Checks that the seek table describes the frames that are there: a zstd data frame
    /// header at each offset, recording the decompressed size the table gives (one
    /// small read per frame). The sequential scan decodes the frames without the table,
    /// so a table entry damaged in a way that keeps the sizes' sum would otherwise go
    /// unnoticed, and send every random-access read (`push`, `load`) to the wrong place.
    /// A file whose seek table lost its magic number is reported here too.
    pub(super) fn check_frames(&mut self) {
        let Storage::Zstd {
            frames, seekable, ..
        } = &self.storage
        else {
            return;
        };
        let file = match BundleFile::open(self.loc, None) {
            Ok(f) => f,
            Err(_) => return, // the scan reports it
        };
        if !seekable {
            let mut cursor = Cursor::new(Arc::new(file));
            if let Ok(Some(why)) = damaged_footer(&mut cursor, self.file_size) {
                self.findings.push(Finding::new(
                    FindingKind::SeekTable,
                    format!("{why}; the bundle is damaged"),
                ));
            }
            return;
        }
        let frames = Arc::clone(frames);
        let mut reported = 0;
        for (i, frame) in frames.iter().enumerate() {
            let mut head = [0u8; MAX_FRAME_HEADER];
            let mut got = 0;
            while got < head.len() {
                match file.read_at(&mut head[got..], frame.c_off + got as u64) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            if let Err(why) = check_frame_header(&head[..got], frame) {
                reported += 1;
                if reported <= 10 {
                    let at = self.where_is(frame.d_off);
                    self.findings.push(Finding::new(
                        FindingKind::SeekTable,
                        format!(
                            "zstd frame {i} (stream offset {}{at}) does not match the seek table: {why}",
                            frame.d_off
                        ),
                    ));
                }
            }
        }
        if reported > 10 {
            self.findings.push(Finding::new(
                FindingKind::SeekTable,
                format!(
                    "{} more zstd frames do not match the seek table",
                    reported - 10
                ),
            ));
        }
    }
}
