//! What the scan does with each entry's content: a blob entry is rehashed as it streams
//! ([`Pass::check_blob`]) and, when it looks like a small JSON document (a manifest, an
//! index or a config, never a layer the TOC names), kept in memory for the graph and
//! document checks, within a total budget; a top-level file (`airlock.json`,
//! `index.json`, `manifest.json`, …) is kept whole, within its size cap, and the TOC is
//! parsed and its checksum checked as soon as it is read ([`Pass::keep_metadata`]).

use std::io::Read;

use super::{BlobSeen, Finding, FindingKind, Pass};
use crate::bundle::reader::parse_toc;
use crate::bundle::toc::{TOC_NAME, checksum_problem};
use crate::bundle::{MAX_METADATA_SIZE, MAX_TOC_SIZE};
use crate::digest::{Digest, Hasher};
use crate::oci::{MAX_CONFIG_SIZE, media};

impl Pass<'_> {
    /// Rehashes a blob entry; keeps it in memory when it looks like a small JSON document.
    pub(super) fn check_blob(
        &mut self,
        entry: &mut dyn Read,
        name: &str,
        digest: Digest,
        size: u64,
        data_at: u64,
    ) -> bool {
        if !self.phase_started {
            self.start_phase();
        }
        let item = self.progress.item(digest.short(), size);
        let is_layer = self
            .toc_types
            .get(&digest)
            .is_some_and(|mt| is_layer_type(mt));
        let mut keep = if !is_layer && size <= MAX_CONFIG_SIZE && size <= self.json_budget {
            Some(Vec::new())
        } else {
            None
        };
        let mut hasher = Hasher::new();
        let mut buf = std::mem::take(&mut self.buf);
        let mut stop = false;
        let mut failed = false;
        loop {
            match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if hasher.is_empty() && keep.is_some() && !looks_like_json(&buf[..n]) {
                        keep = None;
                    }
                    hasher.update(&buf[..n]);
                    item.advance(n as u64);
                    if let Some(k) = keep.as_mut() {
                        k.extend_from_slice(&buf[..n]);
                    }
                }
                Err(e) => {
                    stop = self.stream_error(
                        &e,
                        data_at + hasher.len(),
                        Some(digest.clone()),
                        Some(name.to_string()),
                    );
                    failed = true;
                    break;
                }
            }
        }
        self.buf = buf;
        let (actual, got) = hasher.finish();
        self.bytes += got;
        self.seen.blobs.insert(digest.clone(), BlobSeen { size });
        if failed {
            return stop;
        }
        if got < size {
            self.findings.push(
                Finding::new(
                    FindingKind::Truncated,
                    format!(
                        "the bundle ends early, at stream offset {}, {got} bytes into the {size} of entry `{name}`",
                        data_at + got
                    ),
                )
                .with_digest(digest)
                .with_entry(name),
            );
            return true;
        }
        if actual != digest {
            self.findings.push(
                Finding::new(
                    FindingKind::DigestMismatch,
                    format!(
                        "blob {digest} is damaged: its content hashes to {actual} (entry `{name}`, \
                     {size} bytes at stream offset {data_at}{})",
                        self.where_is(data_at)
                    ),
                )
                .with_digest(digest.clone())
                .with_entry(name),
            );
        }
        if let Some(bytes) = keep {
            self.json_budget -= bytes.len() as u64;
            self.seen.json.insert(digest, bytes);
        }
        item.done();
        false
    }

    /// Keeps a top-level file entry (`index.json`, …) in memory, within its size cap.
    pub(super) fn keep_metadata(
        &mut self,
        entry: &mut dyn Read,
        name: &str,
        size: u64,
        data_at: u64,
    ) -> bool {
        let limit = if name == TOC_NAME {
            MAX_TOC_SIZE
        } else {
            MAX_METADATA_SIZE
        };
        if size > limit {
            self.findings.push(
                Finding::new(
                    FindingKind::InvalidJson,
                    format!("entry `{name}` is {size} bytes, more than the {limit} allowed"),
                )
                .with_entry(name),
            );
            return false;
        }
        let mut bytes = Vec::with_capacity(size as usize);
        if let Err(e) = entry.read_to_end(&mut bytes) {
            return self.stream_error(
                &e,
                data_at + bytes.len() as u64,
                None,
                Some(name.to_string()),
            );
        }
        if (bytes.len() as u64) < size {
            self.findings.push(
                Finding::new(
                    FindingKind::Truncated,
                    format!(
                        "the bundle ends early, inside entry `{name}` at stream offset {}",
                        data_at + bytes.len() as u64
                    ),
                )
                .with_entry(name),
            );
            return true;
        }
        if name == TOC_NAME {
            if let Some(why) = checksum_problem(&bytes) {
                self.findings.push(
                    Finding::new(
                        FindingKind::TocMismatch,
                        format!("the table of contents (airlock.json) is damaged: {why}"),
                    )
                    .with_entry(name),
                );
            }
            match parse_toc(self.path, &bytes) {
                Ok(toc) => {
                    self.toc_types = toc
                        .blobs
                        .iter()
                        .map(|b| (b.digest.clone(), b.media_type.clone()))
                        .collect();
                    self.toc = Some(toc);
                }
                Err(e) => {
                    let why =
                        std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
                            .map(|e| e.to_string())
                            .collect::<Vec<_>>()
                            .join(": ");
                    self.findings
                        .push(Finding::new(FindingKind::InvalidJson, why).with_entry(name));
                }
            }
        }
        self.seen.meta.insert(name.to_string(), bytes);
        false
    }
}

fn is_layer_type(mt: &str) -> bool {
    mt.contains(".layer.") || mt.contains("rootfs.") || media::is_uncompressed_layer(mt)
}

fn looks_like_json(first: &[u8]) -> bool {
    first
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{' || *b == b'[')
}
