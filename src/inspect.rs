//! `airlock ls`: what a bundle holds, from its table of contents alone.
//!
//! Everything shown comes from `airlock.json` (read by [`Bundle::open`], which also
//! indexes the tar headers), so listing a bundle of terabytes reads a few kilobytes and
//! never touches layer data. The JSON shape of [`ListReport`] is a contract (scripts
//! and tests read it): the TOC's own fields plus the bundle's path, size and
//! compression, with `images` serialized exactly as `airlock.json` holds them.

use std::io::{self, Write};

use serde::Serialize;

use crate::bundle::Bundle;
use crate::bundle::toc::TocImage;
use crate::progress::human_bytes;

/// The `ls` report.
#[derive(Debug, Clone, Serialize)]
pub struct ListReport {
    pub bundle: String,
    /// Size of the bundle file on disk.
    pub file_size: u64,
    /// `"zstd"` or `"none"`.
    pub compression: String,
    pub tool: String,
    pub created: String,
    pub format_version: u32,
    pub docker_platform: String,
    pub images: Vec<TocImage>,
    pub blob_count: usize,
    /// Sum of the sizes of all blobs (each counted once).
    pub blob_bytes: u64,
}

impl ListReport {
    pub fn from_bundle(bundle: &Bundle) -> ListReport {
        let toc = bundle.toc();
        ListReport {
            bundle: bundle.path().display().to_string(),
            file_size: bundle.file_size(),
            compression: if bundle.compressed() { "zstd" } else { "none" }.to_string(),
            tool: toc.tool.clone(),
            created: toc.created.clone(),
            format_version: toc.format_version,
            docker_platform: toc.docker_platform.clone(),
            images: toc.images.clone(),
            blob_count: toc.blobs.len(),
            blob_bytes: toc.blobs.iter().map(|b| b.size).sum(),
        }
    }

    /// A summary line, a table (NAME, DIGEST, PLATFORMS, SIZE) and notes.
    pub fn print_human(&self, w: &mut dyn Write) -> io::Result<()> {
        writeln!(
            w,
            "{}: {} image{}, {} blobs, {} ({}, {} on disk); made by {} at {}",
            self.bundle,
            self.images.len(),
            if self.images.len() == 1 { "" } else { "s" },
            self.blob_count,
            human_bytes(self.blob_bytes),
            self.compression,
            human_bytes(self.file_size),
            self.tool,
            self.created
        )?;
        if self.images.is_empty() {
            return Ok(());
        }
        let rows: Vec<[String; 4]> = self
            .images
            .iter()
            .map(|i| {
                [
                    i.name.clone(),
                    format!("sha256:{}", i.digest.short()),
                    i.platforms.join(","),
                    human_bytes(i.size),
                ]
            })
            .collect();
        let header = ["NAME", "DIGEST", "PLATFORMS", "SIZE"].map(str::to_string);
        let mut width = [0usize; 4];
        for row in std::iter::once(&header).chain(&rows) {
            for (wd, cell) in width.iter_mut().zip(row) {
                *wd = (*wd).max(cell.chars().count());
            }
        }
        writeln!(w)?;
        for row in std::iter::once(&header).chain(&rows) {
            writeln!(
                w,
                "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}",
                row[0],
                row[1],
                row[2],
                row[3],
                w0 = width[0],
                w1 = width[1],
                w2 = width[2],
                w3 = width[3]
            )?;
        }
        let mut notes = Vec::new();
        for i in &self.images {
            if let Some(src) = &i.source_digest {
                notes.push(format!(
                    "{}: saved as {}, the source serves {}{}",
                    i.name,
                    i.digest,
                    src,
                    i.note
                        .as_ref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                ));
            } else if let Some(n) = &i.note {
                notes.push(format!("{}: {n}", i.name));
            }
            if let Some(why) = &i.docker_skipped {
                notes.push(format!(
                    "{}: not in manifest.json, so `docker load` skips it: {why}",
                    i.name
                ));
            }
        }
        if !notes.is_empty() {
            writeln!(w)?;
            for n in notes {
                writeln!(w, "note: {n}")?;
            }
        }
        if self.images.iter().any(|i| i.docker.is_some()) {
            writeln!(w)?;
            writeln!(w, "docker load platform: {}", self.docker_platform)?;
        }
        Ok(())
    }
}
