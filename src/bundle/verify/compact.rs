//! The compact layers of a compact bundle (`save --compact`): each gzip layer the TOC
//! lists under `compact` is rebuilt from its raw tar and recipe, and the rebuilt bytes
//! must have the layer's digest and size. A layer that rebuilds is then *seen* like any
//! blob, so the graph checks that follow treat it as present; one that does not is a
//! finding naming the layer (and, through the graph, the images it breaks).
//!
//! The rebuild reads through [`Bundle::blob`], the same path `push` and `load` take,
//! so `verify` checks exactly what they would send; layers are rebuilt in parallel
//! (rayon's pool, one bundle reader per layer being rebuilt).

use std::io;

use rayon::prelude::*;

use super::report::{Finding, FindingKind};
use super::{BlobSeen, Pass, error_chain};
use crate::bundle::reader::Bundle;

impl Pass<'_> {
    pub(super) fn check_compact(&mut self) {
        let Some(toc) = self.toc.as_ref() else {
            return;
        };
        if toc.compact.is_empty() {
            return;
        }
        let layers = toc.compact.clone();
        // The TOC's checksum is a finding of its own (the scan's); the layers are still
        // checked against the TOC as it is.
        let bundle = match Bundle::open_despite_toc_checksum(self.path) {
            Ok(b) => Some(b),
            Err(e) => {
                self.findings.push(Finding::new(
                    FindingKind::Unreadable,
                    format!(
                        "the bundle cannot be opened to rebuild its {} compact layers ({}), so they were not checked",
                        layers.len(),
                        error_chain(&e)
                    ),
                ));
                None
            }
        };
        let raw_ok: Vec<bool> = layers
            .iter()
            .map(|c| {
                self.seen
                    .blobs
                    .get(&c.raw)
                    .is_some_and(|s| s.size == c.raw_size)
            })
            .collect();
        // Rebuilds are CPU-bound (one encoder run per layer): in parallel across layers,
        // one reader each; findings are reported in TOC order all the same.
        let rebuilt: Vec<Option<Result<u64, String>>> = layers
            .par_iter()
            .zip(&raw_ok)
            .map(|(c, &ok)| {
                let bundle = bundle.as_ref().filter(|_| ok)?;
                Some(
                    bundle
                        .blob(&c.digest)
                        .map_err(|e| error_chain(&e))
                        // the rebuilding reader checks the digest when it reaches the end
                        .and_then(|mut r| {
                            io::copy(&mut r, &mut io::sink()).map_err(|e| e.to_string())
                        }),
                )
            })
            .collect();
        for ((c, ok), rebuilt) in layers.iter().zip(raw_ok).zip(rebuilt) {
            if !ok {
                self.findings.push(
                    Finding::new(
                        FindingKind::MissingBlob,
                        format!(
                            "compact layer {} cannot be rebuilt: its raw tar {} is missing or damaged",
                            c.digest, c.raw
                        ),
                    )
                    .with_digest(c.digest.clone()),
                );
                continue;
            }
            match rebuilt {
                None => {}
                Some(Ok(_)) => {
                    self.seen
                        .blobs
                        .insert(c.digest.clone(), BlobSeen { size: c.size });
                }
                Some(Err(e)) => self.findings.push(
                    Finding::new(
                        FindingKind::DigestMismatch,
                        format!("compact layer {} does not rebuild: {e}", c.digest),
                    )
                    .with_entry(c.raw.blob_path())
                    .with_digest(c.digest.clone()),
                ),
            }
        }
    }
}
