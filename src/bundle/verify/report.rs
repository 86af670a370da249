//! What `verify` hands back: the [`Finding`]s (each of one [`FindingKind`]) and the
//! [`VerifyReport`] that carries them, printed one line per finding (or as JSON by
//! `verify --json`, exactly as serialized).
//!
//! A signed bundle's report carries who signed it ([`SignatureReport`]), and every
//! signature problem is a finding of its own kind (`unsigned`, `untrusted signer`,
//! `bad signature`, `statement mismatch`), listed first.
//!
//! With `--key` or `--policy`, each image's verdict ([`ImageVerdict`]) is carried too,
//! and each refusal is a finding of an `image_*` kind naming the image, the signature
//! manifest and the reason.
//!
//! These are the only public types of `verify` besides the entry point; they live
//! apart from the pass so that the rest of the crate (`verify --base` adds its own
//! findings) depends on the report's shape, never on how the pass produces it.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::bundle::signature::SignatureReport;
use crate::digest::Digest;
use crate::progress::human_bytes;
use crate::trust::ImageVerdict;
use crate::words::count;

/// What kind of problem a [`Finding`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A blob's content does not hash to its name.
    DigestMismatch,
    /// A blob's size differs from what the TOC or a descriptor says.
    SizeMismatch,
    /// A blob the TOC or the image graph needs is not in the bundle.
    MissingBlob,
    /// A required file entry (`oci-layout`, `airlock.json`, `index.json`, `manifest.json`) is missing.
    MissingEntry,
    /// An entry or a manifest/index/config blob is not the JSON it must be.
    InvalidJson,
    /// A `manifest.json` (docker load) entry is inconsistent.
    DockerManifest,
    /// A TOC image's manifest or index is not in the bundle.
    MissingImage,
    /// `airlock.json` disagrees with the bundle's content.
    TocMismatch,
    /// An entry a bundle never holds.
    UnexpectedEntry,
    /// An entry name that appears twice.
    DuplicateEntry,
    /// An absolute path, `..`, a link or a device.
    HostileEntry,
    /// The file ends early.
    Truncated,
    /// A zstd frame cannot be decoded.
    CorruptFrame,
    /// The zstd seek table is present but inconsistent.
    SeekTable,
    /// A tar header is damaged, or the file cannot be read at some offset.
    Unreadable,
    /// Bytes a reader skips but that airlock always writes the same way are not: tar
    /// padding or end-of-archive blocks that are not zero, a tar checksum field or a zstd
    /// frame header that is not in its canonical form. A sign of damage (or tampering).
    Damaged,
    /// A part of a split bundle is missing.
    MissingPart,
    /// A part of a split bundle is shorter (or longer) than its parts index says.
    PartSize,
    /// A part of a split bundle holds another part's content (parts swapped or renamed).
    MisplacedPart,
    /// A part of a split bundle holds content of no part of it (another bundle's part).
    ForeignPart,
    /// A file named like a part that the parts index does not list.
    ExtraPart,
    /// `verify --base`: a blob a differential bundle leaves out is not in the given base.
    MissingFromBase,
    /// `--trust` requires a signature and the bundle (or its parts index) has none.
    Unsigned,
    /// Valid signatures, but by none of the `--trust` keys.
    UntrustedSigner,
    /// A signature that does not verify, or a signature entry that cannot be read.
    BadSignature,
    /// The signed statement does not describe this bundle: another TOC, other parts,
    /// or (with `--base`) another base.
    StatementMismatch,
    /// A signature, attestation or SBOM the TOC records refers to something not in the
    /// bundle, or its manifest disagrees with its TOC entry.
    Artifact,
    /// `--key`/`--policy`: no cosign signature refers to the image.
    ImageUnsigned,
    /// `--key`/`--policy`: an image signature no accepted key verifies.
    ImageWrongKey,
    /// `--key`/`--policy`: a valid image signature whose payload names another digest.
    ImagePayloadDigest,
    /// `--key`/`--policy`: a valid image signature whose payload names another repository.
    ImageIdentity,
    /// `--key`/`--policy`: an image signature that is not what it must be (base64, JSON,
    /// a missing annotation or payload).
    ImageSignatureEncoding,
    /// `--key`/`--policy`: an image signature in a format airlock does not check.
    ImageSignatureUnsupported,
    /// `--policy`: the image was asked for by tag where the policy requires a digest.
    ImageNotPinned,
    /// `--policy`: the policy rejects the image's repository.
    ImageRejected,
}

impl FindingKind {
    /// Whether this is a finding of `--key`/`--policy` about one image.
    pub(crate) fn is_image_trust(self) -> bool {
        matches!(
            self,
            FindingKind::ImageUnsigned
                | FindingKind::ImageWrongKey
                | FindingKind::ImagePayloadDigest
                | FindingKind::ImageIdentity
                | FindingKind::ImageSignatureEncoding
                | FindingKind::ImageSignatureUnsupported
                | FindingKind::ImageNotPinned
                | FindingKind::ImageRejected
        )
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            FindingKind::DigestMismatch => "digest mismatch",
            FindingKind::SizeMismatch => "size mismatch",
            FindingKind::MissingBlob => "missing blob",
            FindingKind::MissingEntry => "missing entry",
            FindingKind::InvalidJson => "invalid JSON",
            FindingKind::DockerManifest => "manifest.json",
            FindingKind::MissingImage => "missing image",
            FindingKind::TocMismatch => "airlock.json",
            FindingKind::UnexpectedEntry => "unexpected entry",
            FindingKind::DuplicateEntry => "duplicate entry",
            FindingKind::HostileEntry => "hostile entry",
            FindingKind::Truncated => "truncated",
            FindingKind::CorruptFrame => "corrupt zstd frame",
            FindingKind::SeekTable => "seek table",
            FindingKind::Unreadable => "unreadable",
            FindingKind::Damaged => "damaged",
            FindingKind::MissingPart => "missing part",
            FindingKind::PartSize => "part size",
            FindingKind::MisplacedPart => "misplaced part",
            FindingKind::ForeignPart => "foreign part",
            FindingKind::ExtraPart => "extra part",
            FindingKind::MissingFromBase => "not in base",
            FindingKind::Unsigned => "unsigned",
            FindingKind::UntrustedSigner => "untrusted signer",
            FindingKind::BadSignature => "bad signature",
            FindingKind::StatementMismatch => "statement mismatch",
            FindingKind::Artifact => "artifact",
            FindingKind::ImageUnsigned => "image unsigned",
            FindingKind::ImageWrongKey => "image signature: wrong key",
            FindingKind::ImagePayloadDigest => "image signature: payload digest mismatch",
            FindingKind::ImageIdentity => "image signature: identity mismatch",
            FindingKind::ImageSignatureEncoding => "image signature: bad encoding",
            FindingKind::ImageSignatureUnsupported => "image signature: unsupported",
            FindingKind::ImageNotPinned => "policy: not pinned by digest",
            FindingKind::ImageRejected => "policy: rejected",
        }
    }
}

/// One problem found in a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// The blob concerned, if any.
    pub digest: Option<Digest>,
    /// The tar entry concerned, if any.
    pub entry: Option<String>,
    pub message: String,
    /// The TOC image names this problem breaks.
    pub images: Vec<String>,
}

impl Finding {
    /// A finding of `kind` that names no blob, entry or image yet: the setters add the
    /// blob and the entry, and `verify` adds the images that reach the blob at the end.
    pub fn new(kind: FindingKind, message: impl Into<String>) -> Finding {
        Finding {
            kind,
            digest: None,
            entry: None,
            message: message.into(),
            images: Vec::new(),
        }
    }

    /// A finding about blob `digest`, in its entry (`blobs/sha256/…`).
    pub fn blob(kind: FindingKind, digest: Digest, message: impl Into<String>) -> Finding {
        Finding::new(kind, message)
            .with_entry(digest.blob_path())
            .with_digest(digest)
    }

    /// Names the blob concerned (`None` leaves it unnamed).
    pub(crate) fn with_digest(mut self, digest: impl Into<Option<Digest>>) -> Finding {
        self.digest = digest.into();
        self
    }

    /// Names the images the problem breaks (`verify` fills these in itself).
    pub(crate) fn with_images(mut self, images: Vec<String>) -> Finding {
        self.images = images;
        self
    }

    /// Names the tar entry concerned.
    pub(crate) fn with_entry(mut self, entry: impl Into<String>) -> Finding {
        self.entry = Some(entry.into());
        self
    }
}

/// The outcome of [`verify`](super::verify); printed as JSON by `verify --json` exactly as serialized.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyReport {
    pub bundle: String,
    /// True when there are no findings.
    pub ok: bool,
    /// Images in the TOC (or in `index.json` when the TOC is unreadable).
    pub images: usize,
    /// Blob entries read.
    pub blobs: usize,
    /// Blob bytes read and hashed.
    pub bytes: u64,
    /// Number of parts of a split bundle (absent for a bundle in one file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<usize>,
    /// For a differential bundle: what it was made against and what it leaves out
    /// (those blobs are not missing; `verify --base FILE` checks them against the base).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub differential: Option<String>,
    /// Who signed the bundle, each signer's key id, algorithm, time, and whether the
    /// signature is valid and the key trusted (`signed: false` when `--trust` found no
    /// signature). Absent for an unsigned bundle checked without `--trust`, and when
    /// the table of contents could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureReport>,
    /// For a split bundle, the same for its parts index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts_signature: Option<SignatureReport>,
    /// With `--key` or `--policy`: the verdict on each image (who signed it, or why it
    /// is refused; the refusals are findings too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_signatures: Vec<ImageVerdict>,
    pub findings: Vec<Finding>,
}

impl VerifyReport {
    /// One line per finding, then a summary line.
    pub fn print_human(&self, w: &mut dyn Write) -> io::Result<()> {
        for f in &self.findings {
            write!(w, "{}: {}", f.kind.label(), f.message)?;
            // An image signature finding starts with the image it is about already.
            let about_image = f.kind.is_image_trust()
                && matches!(&f.images[..], [one] if f.message.starts_with(one.as_str()));
            if !f.images.is_empty() && !about_image {
                write!(w, " (breaks {})", f.images.join(", "))?;
            }
            writeln!(w)?;
        }
        if let Some(d) = &self.differential {
            writeln!(w, "differential bundle: {d}")?;
        }
        if let Some(sig) = self.signature.as_ref().filter(|s| s.signed) {
            for line in sig.describe() {
                writeln!(w, "{line}")?;
            }
        }
        for v in &self.image_signatures {
            if let Some(s) = &v.signed_by {
                writeln!(
                    w,
                    "image signed: {} ({}) by key {} ({}, {}), signature {}",
                    v.image,
                    v.digest.short(),
                    s.key_id,
                    s.algorithm,
                    s.key_file,
                    s.manifest
                )?;
            } else if v.ok {
                writeln!(w, "image accepted: {} by {}", v.image, v.rule)?;
            }
        }
        if self.ok {
            writeln!(
                w,
                "OK: {}, {}, {} verified{}",
                count(self.images as u64, "image"),
                count(self.blobs as u64, "blob"),
                human_bytes(self.bytes),
                self.parts
                    .map(|n| format!(", in {}", count(n as u64, "part")))
                    .unwrap_or_default()
            )
        } else {
            let n = self.findings.len();
            writeln!(
                w,
                "FAILED: {} in {} ({}, {}, {} checked)",
                count(n as u64, "problem"),
                self.bundle,
                count(self.images as u64, "image"),
                count(self.blobs as u64, "blob"),
                human_bytes(self.bytes)
            )
        }
    }
}
