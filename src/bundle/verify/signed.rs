//! The signature phase of `verify`: the signature entry (`airlock.sig.json`) against the
//! `airlock.json` bytes the scan read, and a split bundle's parts index against its own
//! signed statement and that same TOC ([`crate::bundle::signature`] does the checking;
//! this turns its problems into [`Finding`]s).
//!
//! It runs on what the sequential pass kept in memory, so it costs no extra read, and
//! its findings are put first in the report: when the signature fails, nothing else in
//! the bundle can be vouched for. Without `--trust`, an unsigned bundle has no finding
//! here and a signed one is checked mathematically (a bad signature or a statement that
//! does not match is a finding; who signed is reported).

use super::{Finding, FindingKind, Pass};
use crate::bundle::parts::Location;
use crate::bundle::signature::{
    SIG_NAME, SignatureProblem, SignatureReport, check_bundle, check_parts_index,
};
use crate::bundle::toc::TOC_NAME;
use crate::digest::Digest;
use crate::signing::PublicKey;

/// The finding kind of a signature problem.
pub(crate) fn problem_kind(p: &SignatureProblem) -> FindingKind {
    match p {
        SignatureProblem::Unsigned { .. } => FindingKind::Unsigned,
        SignatureProblem::Malformed { .. } | SignatureProblem::BadSignature { .. } => {
            FindingKind::BadSignature
        }
        SignatureProblem::UntrustedSigner { .. } => FindingKind::UntrustedSigner,
        SignatureProblem::StatementMismatch { .. } => FindingKind::StatementMismatch,
    }
}

/// What the signature phase found: the reports for `verify --json` (none for an
/// unsigned bundle checked without `--trust`, whose report is what it always was) and
/// the findings.
pub(super) struct Signed {
    pub bundle: Option<SignatureReport>,
    pub parts: Option<SignatureReport>,
    pub findings: Vec<Finding>,
}

impl Pass<'_> {
    /// Checks the signatures against what the scan read (see the module docs).
    pub(super) fn check_signatures(&self, trusted: &[PublicKey]) -> Signed {
        let mut findings = Vec::new();
        let toc_bytes = self.seen.meta.get(TOC_NAME);
        let bundle = toc_bytes
            .map(|toc| {
                let checked = check_bundle(
                    self.seen.meta.get(SIG_NAME).map(Vec::as_slice),
                    toc,
                    self.toc.as_ref(),
                    trusted,
                );
                findings.extend(checked.problems.iter().map(|p| {
                    let f = Finding::new(problem_kind(p), p.to_string());
                    match p {
                        SignatureProblem::Unsigned { .. } => f,
                        _ => f.with_entry(SIG_NAME),
                    }
                }));
                checked.report
            })
            .filter(|r| r.signed || r.trust_required);
        let parts = match self.loc {
            Location::Parts(set) => {
                let toc_hex = toc_bytes.map(|t| Digest::of(t).hex().to_string());
                let checked = check_parts_index(set.index(), toc_hex.as_deref(), trusted);
                findings.extend(
                    checked
                        .problems
                        .iter()
                        .map(|p| Finding::new(problem_kind(p), p.to_string())),
                );
                Some(checked.report).filter(|r| r.signed || r.trust_required)
            }
            Location::File(_) => None,
        };
        Signed {
            bundle,
            parts,
            findings,
        }
    }
}
