//! `airlock verify PART --part`: one part of a split bundle checked on its own, before
//! the others arrive (parts coming over a diode one by one).
//!
//! Three things, and only these: the parts index beside the part is signed (by a
//! trusted key with `--trust`) and its signed statement matches it; the part is listed
//! in it; and the part's size and sha256 are the ones listed. The other parts are not
//! needed, and nothing inside the part is parsed: it is bytes, and the signed index
//! vouches for exactly these bytes. What the bundle holds is `verify`'s business once
//! every part is there.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde::Serialize;

use super::signed::problem_kind;
use super::{Finding, FindingKind};
use crate::bundle::BundleError;
use crate::bundle::parts::{PartsIndex, index_path};
use crate::bundle::signature::{SignatureReport, check_parts_index};
use crate::digest::Hasher;
use crate::paths::name_of;
use crate::signing::PublicKey;

/// The verdict on one part, printed by `verify --part` (JSON as serialized).
#[derive(Debug, Clone, Serialize)]
pub struct PartReport {
    /// The part file checked.
    pub part: String,
    /// Its number (from 1) and the number of parts, when the index lists it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<usize>,
    pub count: usize,
    /// The joined bundle's name and the set's identity, from the parts index.
    pub bundle: String,
    pub id: String,
    /// The parts index used.
    pub index: String,
    pub ok: bool,
    pub signature: SignatureReport,
    pub findings: Vec<Finding>,
}

impl PartReport {
    /// `part 4 of 9 (b.tar.zst.003) of bundle b.tar.zst, signed by …: bytes verified`,
    /// or the findings and a FAILED line.
    pub fn print_human(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        for f in &self.findings {
            writeln!(w, "{}: {}", f.kind.label(), f.message)?;
        }
        let which = match self.number {
            Some(n) => format!("part {n} of {} ({})", self.count, self.part),
            None => format!("{} (not listed in {})", self.part, self.index),
        };
        let signers: Vec<String> = self
            .signature
            .signers
            .iter()
            .filter(|s| s.valid)
            .map(|s| format!("{}{}", s.key_id, if s.trusted { " (trusted)" } else { "" }))
            .collect();
        let by = if signers.is_empty() {
            ", parts index not signed".to_string()
        } else {
            format!(", signed by {}", signers.join(" and "))
        };
        if self.ok {
            writeln!(
                w,
                "OK: {which} of bundle {} (id {}){by}: bytes verified",
                self.bundle, self.id
            )
        } else {
            writeln!(
                w,
                "FAILED: {which} of bundle {} (id {}){by}: {} problem{}",
                self.bundle,
                self.id,
                self.findings.len(),
                if self.findings.len() == 1 { "" } else { "s" }
            )
        }
    }
}

/// Checks the part at `path` against the parts index beside it; `Err` only when there
/// is no readable index to check it against.
pub fn check_part(path: &Path, trusted: &[PublicKey]) -> Result<PartReport, BundleError> {
    let name = name_of(path, "");
    let base = crate::bundle::parts::index::strip_part_suffix(&name).ok_or_else(|| {
        BundleError::BadPartsIndex {
            path: path.to_path_buf(),
            reason: format!(
                "`{name}` is not named like a part (`BUNDLE.000`, `BUNDLE.001`, …); give \
                 --part one part of a split bundle"
            ),
        }
    })?;
    let index_file = index_path(&path.with_file_name(base));
    if !index_file.is_file() {
        return Err(BundleError::NoPartsIndex {
            part: path.to_path_buf(),
            index: index_file,
            base: base.to_string(),
        });
    }
    let index = PartsIndex::read(&index_file)?;
    let checked = check_parts_index(&index, None, trusted);
    let mut findings: Vec<Finding> = checked
        .problems
        .iter()
        .map(|p| Finding::new(problem_kind(p), p.to_string()))
        .collect();
    let count = index.parts.len();
    let number = index.parts.iter().position(|p| p.name == name);
    match number {
        None => findings.push(Finding::new(
            FindingKind::ExtraPart,
            format!(
                "{name} is not one of the {count} parts listed in {}; it belongs to another \
                 bundle or was renamed",
                index_file.display()
            ),
        )),
        Some(i) => {
            let listed = &index.parts[i];
            match hash_file(path) {
                Err(e) => findings.push(Finding::new(
                    FindingKind::Unreadable,
                    format!("part {} of {count} ({name}) cannot be read ({e}); copy it again", i + 1),
                )),
                Ok((size, _)) if size != listed.size => findings.push(Finding::new(
                    FindingKind::PartSize,
                    format!(
                        "part {} of {count} ({name}) is {size} bytes but the parts index says {}: {}",
                        i + 1,
                        listed.size,
                        if size < listed.size {
                            "it was cut short, copy it again"
                        } else {
                            "it is damaged or from another bundle, copy it again"
                        }
                    ),
                )),
                Ok((_, sha)) if sha != listed.sha256 => {
                    let holds = index.parts.iter().position(|p| p.sha256 == sha);
                    let message = match holds {
                        Some(j) => format!(
                            "part {} of {count} ({name}) holds the content of part {} ({}): the \
                             parts were swapped or renamed; give each part its own name back",
                            i + 1,
                            j + 1,
                            index.parts[j].name
                        ),
                        None => format!(
                            "part {} of {count} ({name}) hashes to sha256:{sha}, not the \
                             sha256:{} the parts index lists: it is damaged or another \
                             bundle's part; copy the right part",
                            i + 1,
                            listed.sha256
                        ),
                    };
                    let kind = if holds.is_some() {
                        FindingKind::MisplacedPart
                    } else {
                        FindingKind::ForeignPart
                    };
                    findings.push(Finding::new(kind, message));
                }
                Ok(_) => {}
            }
        }
    }
    Ok(PartReport {
        part: path.display().to_string(),
        number: number.map(|i| i + 1),
        count,
        bundle: index.bundle.clone(),
        id: index.id.clone(),
        index: index_file.display().to_string(),
        ok: findings.is_empty(),
        signature: checked.report,
        findings,
    })
}

/// Size and hex sha256 of a file, read once.
fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = File::open(path)?;
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let (digest, size) = hasher.finish();
    Ok((size, digest.hex().to_string()))
}
