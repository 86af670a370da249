//! Signed bundles (chain of custody): what is signed, where the signatures live, and
//! how they are checked against the keys a user trusts.
//!
//! A signature never covers JSON: it covers a small text *statement* ([`statement`]),
//! signed as exact bytes, that names the bundle's TOC by its sha256. The TOC lists
//! every blob's digest and size, and every blob is named by its digest, so one
//! signature over a few hundred bytes covers every byte of the bundle; and because the
//! TOC is written before any layer, so is the signature, in the entry
//! [`SIG_NAME`] right after `airlock.json` ([`SignatureDoc`]). A split bundle's parts
//! index carries a second statement, over each part's name, size and sha256, so one
//! part can be checked on its own as it arrives (`verify --part`, in
//! [`verify::part`](super::verify::part)).
//!
//! This module owns the statements, the signature document (serde), signing a
//! statement with a set of [`PrivateKey`]s ([`sign`]) and checking a document against
//! a set of trusted [`PublicKey`]s ([`check_bundle`], [`check_parts_index`],
//! [`check_opened`]): the result is a [`SignatureReport`] (who signed, with which
//! algorithm and when, and whether each signer is trusted) and the
//! [`SignatureProblem`]s found (unsigned, no trusted signer, a bad signature, a
//! statement that does not match this bundle, naming what differs). Keys and the
//! cryptography are [`crate::signing`]'s; what to do with a problem (a `verify`
//! finding, a refused `push`) is the caller's. `parts/` knows nothing of signing: the
//! writer hands it a closure ([`parts_signer`]) that signs the finished index.
//!
//! The format is documented in `docs/bundle-format.md`, "Signatures", precisely enough
//! for an independent verifier; keep the two in step.

pub mod statement;

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

pub use self::statement::{BundleStatement, PartLine, PartsStatement};
use super::parts::PartsIndex;
use super::{Bundle, BundleError};
use crate::digest::Digest;
use crate::signing::{Algorithm, PrivateKey, PublicKey, Signature};

/// The tar entry holding a bundle's [`SignatureDoc`], right after `airlock.json`.
pub const SIG_NAME: &str = "airlock.sig.json";
/// The largest signature entry a reader accepts.
pub(crate) const MAX_SIG_SIZE: u64 = 1024 * 1024;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The content of `airlock.sig.json`: the statement, and one signature of its exact
/// bytes per signing key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureDoc {
    pub statement: String,
    pub signatures: Vec<SignatureEntry>,
}

/// One signature of a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureEntry {
    /// `sha256:` + hex sha256 of the public key's SPKI DER.
    pub key_id: String,
    /// `ed25519` or `ecdsa-p256-sha256`.
    pub algorithm: String,
    /// Base64 of the public key's SPKI DER.
    pub public_key: String,
    /// Base64 of the signature bytes (Ed25519: raw 64 bytes; ECDSA P-256: DER over
    /// SHA-256 of the statement).
    pub signature: String,
}

/// Signs `statement` with every key in `keys`, in order.
pub fn sign(keys: &[PrivateKey], statement: &str) -> Vec<SignatureEntry> {
    keys.iter()
        .map(|k| SignatureEntry {
            key_id: k.key_id().to_string(),
            algorithm: k.algorithm().name().to_string(),
            public_key: B64.encode(k.public_key().spki_der()),
            signature: B64.encode(k.sign(statement.as_bytes()).as_bytes()),
        })
        .collect()
}

/// The `airlock.sig.json` bytes for a bundle statement signed with `keys`.
pub fn bundle_signature_entry(keys: &[PrivateKey], statement: &BundleStatement) -> Vec<u8> {
    let text = statement.render();
    let doc = SignatureDoc {
        signatures: sign(keys, &text),
        statement: text,
    };
    let mut json = serde_json::to_vec_pretty(&doc).expect("a signature document serializes");
    json.push(b'\n');
    json
}

/// The signer `PartWriter::finish` calls with the finished parts index: its statement
/// and the signatures of it by `keys`, as the index stores them.
pub fn parts_signer(
    keys: &[PrivateKey],
) -> impl Fn(&PartsIndex) -> std::io::Result<(String, serde_json::Value)> + '_ {
    move |index| {
        let statement = PartsStatement::of_index(index).ok_or_else(|| {
            std::io::Error::other("the parts index has no toc_sha256 to sign (this is a bug)")
        })?;
        let text = statement.render();
        if PartsStatement::parse(&text).as_ref() != Ok(&statement) {
            return Err(std::io::Error::other(format!(
                "cannot sign the parts index of `{}`: a part name holds a line break",
                index.bundle
            )));
        }
        let sigs = serde_json::to_value(sign(keys, &text)).map_err(std::io::Error::other)?;
        Ok((text, sigs))
    }
}

/// Who signed, as `verify --json` and `ls --json` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignerReport {
    pub key_id: String,
    pub algorithm: String,
    /// When the statement says the bundle was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The signature verifies (with the key it names).
    pub valid: bool,
    /// The key is one of the `--trust` keys.
    pub trusted: bool,
}

/// What a signature check found out, for reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureReport {
    /// Whether there is a signature at all.
    pub signed: bool,
    pub signers: Vec<SignerReport>,
    /// `--trust` keys were given.
    pub trust_required: bool,
    /// A trusted key's valid signature covers this bundle and nothing is wrong.
    pub trusted: bool,
    /// Differential bundles: the base's identity the statement names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_toc_sha256: Option<String>,
}

impl SignatureReport {
    /// `signed by 3f2a1b4c5d6e (ed25519) at 2026-…` per signer, or `unsigned`.
    pub fn describe(&self) -> Vec<String> {
        if !self.signed {
            return vec!["unsigned".to_string()];
        }
        self.signers
            .iter()
            .map(|s| {
                let short = s
                    .key_id
                    .strip_prefix("sha256:")
                    .unwrap_or(&s.key_id)
                    .get(..12)
                    .unwrap_or(&s.key_id);
                let mut line = format!("signed by {short} ({})", s.algorithm);
                if let Some(c) = &s.created {
                    line.push_str(&format!(" at {c}"));
                }
                if !s.valid {
                    line.push_str(" — BAD SIGNATURE");
                } else if s.trusted {
                    line.push_str(" (trusted)");
                }
                line
            })
            .collect()
    }
}

/// Why a signature check did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureProblem {
    /// No signature where `--trust` demands one. `what`: "bundle", "parts index".
    Unsigned { what: &'static str },
    /// The signature entry or its statement cannot be read.
    Malformed { what: &'static str, why: String },
    /// A signature that does not verify.
    BadSignature {
        what: &'static str,
        key_id: String,
        why: String,
    },
    /// Valid signatures, but by no trusted key.
    UntrustedSigner {
        what: &'static str,
        signers: Vec<String>,
        trusted: Vec<String>,
    },
    /// The signed statement does not describe this bundle (or this base).
    StatementMismatch { what: &'static str, why: String },
}

impl fmt::Display for SignatureProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureProblem::Unsigned { what } => write!(
                f,
                "the {what} is not signed, but --trust requires a signature by a trusted key \
                 (sign it with `airlock save --sign-key KEY`)"
            ),
            SignatureProblem::Malformed { what, why } => {
                write!(f, "the signature of the {what} cannot be read: {why}")
            }
            SignatureProblem::BadSignature { what, key_id, why } => write!(
                f,
                "the signature of the {what} by {key_id} is not valid ({why}): the signed \
                 statement or the signature was changed after signing"
            ),
            SignatureProblem::UntrustedSigner {
                what,
                signers,
                trusted,
            } => write!(
                f,
                "the {what} is signed by {}, which is none of the trusted keys ({}); check \
                 that --trust names the signer's public key",
                signers.join(", "),
                trusted.join(", ")
            ),
            SignatureProblem::StatementMismatch { what, why } => write!(
                f,
                "the signed statement does not match this {what}: {why}; it was changed after \
                 signing, or parts of two bundles were mixed"
            ),
        }
    }
}

/// The outcome of checking one signed statement.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    pub report: SignatureReport,
    pub problems: Vec<SignatureProblem>,
}

impl Checked {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the signatures over `statement` (already found to be `what`'s): each must
/// verify with the key it names, and with `trusted` non-empty one of them must be a
/// trusted key's. `created` is shown per signer.
fn check_signatures(
    what: &'static str,
    statement: &str,
    signatures: &[SignatureEntry],
    created: Option<&str>,
    trusted: &[PublicKey],
) -> Checked {
    let mut out = Checked::default();
    out.report.signed = !signatures.is_empty();
    out.report.trust_required = !trusted.is_empty();
    if signatures.is_empty() {
        if !trusted.is_empty() {
            out.problems.push(SignatureProblem::Unsigned { what });
        }
        return out;
    }
    let mut seen = BTreeSet::new();
    for e in signatures {
        let result = verify_entry(e, statement.as_bytes());
        let is_trusted = trusted.iter().any(|t| t.key_id().to_string() == e.key_id);
        if let Err(why) = &result {
            out.problems.push(SignatureProblem::BadSignature {
                what,
                key_id: e.key_id.clone(),
                why: why.clone(),
            });
        }
        if !seen.insert(e.key_id.clone()) {
            out.problems.push(SignatureProblem::Malformed {
                what,
                why: format!("key {} signs twice", e.key_id),
            });
        }
        out.report.signers.push(SignerReport {
            key_id: e.key_id.clone(),
            algorithm: e.algorithm.clone(),
            created: created.map(str::to_string),
            valid: result.is_ok(),
            trusted: is_trusted && result.is_ok(),
        });
    }
    let any_trusted = out.report.signers.iter().any(|s| s.trusted);
    let all_valid = out.report.signers.iter().all(|s| s.valid);
    if !trusted.is_empty() && !any_trusted && all_valid {
        out.problems.push(SignatureProblem::UntrustedSigner {
            what,
            signers: out
                .report
                .signers
                .iter()
                .map(|s| s.key_id.clone())
                .collect(),
            trusted: trusted.iter().map(|k| k.key_id().to_string()).collect(),
        });
    }
    out
}

/// Verifies one signature entry over `msg` with the public key it carries, after
/// checking that the key id, algorithm and key agree.
fn verify_entry(e: &SignatureEntry, msg: &[u8]) -> Result<(), String> {
    let der = B64
        .decode(&e.public_key)
        .map_err(|_| "its public_key is not base64".to_string())?;
    let key = PublicKey::from_spki_der(&der, Path::new("airlock.sig.json"))
        .map_err(|e| format!("its public_key is not a supported key: {e}"))?;
    if key.key_id().to_string() != e.key_id {
        return Err(format!(
            "its key_id does not name its public_key (that is {})",
            key.key_id()
        ));
    }
    let algorithm: Algorithm = e.algorithm.parse().map_err(|e| format!("{e}"))?;
    let bytes = B64
        .decode(&e.signature)
        .map_err(|_| "its signature is not base64".to_string())?;
    key.verify(msg, &Signature::new(algorithm, bytes))
        .map_err(|e| e.to_string())
}

/// Checks a bundle's signature entry (`doc`, `None` when the bundle has none) against
/// the bundle's `airlock.json` bytes and, when given, its parsed TOC fields.
pub fn check_bundle(
    doc: Option<&[u8]>,
    toc_bytes: &[u8],
    toc: Option<&super::toc::Toc>,
    trusted: &[PublicKey],
) -> Checked {
    const WHAT: &str = "bundle";
    let Some(doc) = doc else {
        return check_signatures(WHAT, "", &[], None, trusted);
    };
    let malformed = |why: String| Checked {
        report: SignatureReport {
            signed: true,
            trust_required: !trusted.is_empty(),
            ..SignatureReport::default()
        },
        problems: vec![SignatureProblem::Malformed { what: WHAT, why }],
    };
    let doc: SignatureDoc = match serde_json::from_slice(doc) {
        Ok(d) => d,
        Err(e) => return malformed(format!("{SIG_NAME} is not a signature document: {e}")),
    };
    let statement = match BundleStatement::parse(&doc.statement) {
        Ok(s) => s,
        Err(why) => return malformed(format!("its statement is not valid: {why}")),
    };
    let mut out = check_signatures(
        WHAT,
        &doc.statement,
        &doc.signatures,
        Some(&statement.created),
        trusted,
    );
    if doc.signatures.is_empty() {
        out.problems.push(SignatureProblem::Malformed {
            what: WHAT,
            why: format!("{SIG_NAME} holds no signature"),
        });
    }
    out.report.base_toc_sha256 = statement.base_toc_sha256.clone();
    let actual = Digest::of(toc_bytes);
    if actual.hex() != statement.toc_sha256 {
        out.problems.push(SignatureProblem::StatementMismatch {
            what: WHAT,
            why: format!(
                "it names airlock.json sha256:{}, but the bundle's airlock.json is {actual}",
                statement.toc_sha256
            ),
        });
    } else if let Some(toc) = toc {
        let mut diffs = Vec::new();
        if toc.format_version != statement.format_version {
            diffs.push(format!(
                "format_version {} (airlock.json: {})",
                statement.format_version, toc.format_version
            ));
        }
        if toc.tool != statement.tool {
            diffs.push(format!(
                "tool `{}` (airlock.json: `{}`)",
                statement.tool, toc.tool
            ));
        }
        if toc.created != statement.created {
            diffs.push(format!(
                "created {} (airlock.json: {})",
                statement.created, toc.created
            ));
        }
        if !diffs.is_empty() {
            out.problems.push(SignatureProblem::StatementMismatch {
                what: WHAT,
                why: format!("it says {}", diffs.join(", ")),
            });
        }
    }
    out.report.trusted = out.report.trust_required && out.ok();
    out
}

/// Checks the signature a parts index carries (its `statement` and `signatures`)
/// against the index's own fields and, when given, the sha256 (hex) of the
/// `airlock.json` inside the parts.
pub fn check_parts_index(
    index: &PartsIndex,
    toc_sha256: Option<&str>,
    trusted: &[PublicKey],
) -> Checked {
    const WHAT: &str = "parts index";
    let (Some(text), Some(sigs)) = (&index.statement, &index.signatures) else {
        let mut out = check_signatures(WHAT, "", &[], None, trusted);
        if index.statement.is_some() != index.signatures.is_some() {
            out.report.signed = true;
            out.problems.push(SignatureProblem::Malformed {
                what: WHAT,
                why: "it has a `statement` without `signatures`, or the other way round"
                    .to_string(),
            });
        }
        return out;
    };
    let malformed = |why: String| Checked {
        report: SignatureReport {
            signed: true,
            trust_required: !trusted.is_empty(),
            ..SignatureReport::default()
        },
        problems: vec![SignatureProblem::Malformed { what: WHAT, why }],
    };
    let entries: Vec<SignatureEntry> = match serde_json::from_value(sigs.clone()) {
        Ok(e) => e,
        Err(e) => return malformed(format!("its `signatures` are not valid: {e}")),
    };
    let statement = match PartsStatement::parse(text) {
        Ok(s) => s,
        Err(why) => return malformed(format!("its statement is not valid: {why}")),
    };
    let mut out = check_signatures(WHAT, text, &entries, None, trusted);
    if entries.is_empty() {
        out.problems.push(SignatureProblem::Malformed {
            what: WHAT,
            why: "it holds no signature".to_string(),
        });
    }
    let diffs = match PartsStatement::of_index(index) {
        Some(found) => statement.differences(&found),
        None => vec!["it has no `toc_sha256`".to_string()],
    };
    if !diffs.is_empty() {
        out.problems.push(SignatureProblem::StatementMismatch {
            what: WHAT,
            why: diffs.join("; "),
        });
    }
    if let Some(actual) = toc_sha256
        && actual != statement.toc_sha256
    {
        out.problems.push(SignatureProblem::StatementMismatch {
            what: WHAT,
            why: format!(
                "it names airlock.json sha256:{}, but the airlock.json in the parts is sha256:{actual}",
                statement.toc_sha256
            ),
        });
    }
    out.report.trusted = out.report.trust_required && out.ok();
    out
}

/// The signature checks of an opened bundle: its signature entry against its TOC and,
/// for a split bundle, its parts index's signature. Reads only the small head entries.
pub fn check_opened(
    bundle: &Bundle,
    trusted: &[PublicKey],
) -> Result<(Checked, Option<Checked>), BundleError> {
    let doc = match bundle.entry(SIG_NAME) {
        Some(_) => Some(bundle.read_entry(SIG_NAME, MAX_SIG_SIZE)?),
        None => None,
    };
    let toc_bytes = bundle.read_entry(super::toc::TOC_NAME, super::MAX_TOC_SIZE)?;
    let checked = check_bundle(doc.as_deref(), &toc_bytes, Some(bundle.toc()), trusted);
    let parts = bundle
        .parts()
        .map(|set| check_parts_index(set.index(), Some(Digest::of(&toc_bytes).hex()), trusted));
    Ok((checked, parts))
}

/// `push`/`load --trust`: the bundle's head must be signed by a trusted key, its
/// statement must match, and so must the parts index's of a split bundle. The error
/// lists every problem.
pub fn require_trusted(bundle: &Bundle, trusted: &[PublicKey]) -> anyhow::Result<Checked> {
    let (checked, parts) = check_opened(bundle, trusted)?;
    let problems: Vec<String> = checked
        .problems
        .iter()
        .chain(parts.iter().flat_map(|p| &p.problems))
        .map(ToString::to_string)
        .collect();
    if !problems.is_empty() {
        anyhow::bail!(
            "{} is not signed by a trusted key as --trust requires, so nothing was written: {}",
            bundle.path().display(),
            problems.join("; ")
        );
    }
    Ok(checked)
}

#[cfg(test)]
mod tests;
