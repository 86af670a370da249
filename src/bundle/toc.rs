//! `airlock.json`, the bundle's table of contents.
//!
//! Written as the second entry of every bundle (after `oci-layout`), so `ls` and the
//! start of `push` learn everything about a bundle from its first few kilobytes. It
//! describes; it does not replace: the OCI layout and the blobs stay the truth, and
//! `verify` checks that this table agrees with them. The format is documented in
//! `docs/bundle-format.md`; bump [`FORMAT_VERSION`] on any incompatible change.
//!
//! Serializing a [`Toc`] adds a `checksum` field, the sha256 of the document's canonical
//! form ([`checksum_problem`] checks it): in a plain `.tar` bundle nothing else protects
//! the table of contents from a flipped bit (zstd frames have their own checksums, split
//! parts their sha256), and `push` trusts its names.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::regzip::recipe::Recipe;

/// The TOC format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The name of the TOC entry in the bundle.
pub const TOC_NAME: &str = "airlock.json";

/// The TOC. Serializing it adds a `checksum` field (see [`checksum_problem`]); reading
/// ignores that field, so check it on the raw bytes.
#[derive(Debug, Clone, Deserialize)]
pub struct Toc {
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// `airlock <version>`.
    pub tool: String,
    /// RFC 3339 UTC time the bundle was written.
    pub created: String,
    /// The platform chosen for the `docker load` side (`manifest.json`), e.g. `linux/amd64`.
    pub docker_platform: String,
    /// Every image (one entry per name: a tag, or a digest when saved by digest only).
    pub images: Vec<TocImage>,
    /// Every blob in the bundle (manifests, indexes, configs, layers), each once.
    pub blobs: Vec<TocBlob>,
    /// Set in a differential bundle (`save --base`): the base and the blobs left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<TocBase>,
    /// Signatures, attestations, SBOMs and other artifacts that refer to a manifest in
    /// the bundle, each once. Their manifests and blobs are in [`Toc::blobs`]; they are
    /// not images: no `manifest.json` entry, no `index.json` entry of their own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<TocArtifact>,
    /// Set in a compact bundle (`save --compact`): the gzip layers stored as their raw
    /// tar plus a recipe that rebuilds the exact gzip bytes. Those layers are not in
    /// [`Toc::blobs`] (the file does not hold them); their raw tars are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compact: Vec<TocCompact>,
}

/// A gzip layer a compact bundle stores as its raw bytes plus a recipe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TocCompact {
    /// The gzip layer's digest, as manifests name it (not an entry of the file).
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    /// sha256 of the raw bytes (the layer's diff_id), stored as `blobs/sha256/<hex>` and
    /// listed in [`Toc::blobs`].
    pub raw: Digest,
    pub raw_size: u64,
    /// How the gzip bytes are rebuilt from the raw bytes (`docs/bundle-format.md`).
    pub recipe: Recipe,
}

/// The media type a compact layer's raw tar is listed with in [`Toc::blobs`].
pub const RAW_LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

/// One artifact manifest that refers to another manifest (its subject).
///
/// An artifact found twice (say, by the referrers API and by a cosign tag) is recorded
/// once, with the first way it was found; one found in two repositories is recorded once
/// per repository, since `push` recreates it (and its tag) in each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TocArtifact {
    /// Digest of the artifact's manifest (stored byte-exact, listed in [`Toc::blobs`]).
    pub digest: Digest,
    /// Media type of that manifest.
    pub media_type: String,
    pub size: u64,
    /// The manifest's `artifactType`, else its config's media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// What it is, for people: see [`ArtifactKind`].
    pub kind: ArtifactKind,
    /// The digest of the manifest or index it refers to: its `subject`, the digest in
    /// its cosign tag, or the `vnd.docker.reference.digest` annotation of a BuildKit
    /// attestation. Always a manifest in the bundle, or another artifact.
    pub subject: Digest,
    /// The repository it was found in, normalized without tag: `docker.io/library/nginx`.
    pub repository: String,
    /// How it was found.
    pub found: ArtifactFound,
    /// The tag it had in the source (`sha256-<hex>.sig`), when it was found by a tag
    /// that names it alone (cosign's tags). `push` recreates the tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// What an artifact is, from its tag, artifact type and layer media types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactKind {
    /// A cosign signature (`.sig` tag, simple-signing layers) or a Sigstore bundle.
    Signature,
    /// An in-toto / DSSE attestation (`.att` tag, BuildKit attestation manifests).
    Attestation,
    /// An SPDX or CycloneDX document (`.sbom` tag, SBOM artifact types).
    Sbom,
    Other,
}

impl ArtifactKind {
    /// For people: `signature`, `attestation`, `SBOM`, `artifact`.
    pub fn word(self) -> &'static str {
        match self {
            ArtifactKind::Signature => "signature",
            ArtifactKind::Attestation => "attestation",
            ArtifactKind::Sbom => "SBOM",
            ArtifactKind::Other => "artifact",
        }
    }

    /// The kind words `--referrers-type` takes: `signature`, `attestation`, `sbom`.
    pub fn from_flag(word: &str) -> Option<ArtifactKind> {
        match word {
            "signature" => Some(ArtifactKind::Signature),
            "attestation" => Some(ArtifactKind::Attestation),
            "sbom" => Some(ArtifactKind::Sbom),
            _ => None,
        }
    }
}

/// How an artifact was found at save.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactFound {
    /// The OCI 1.1 referrers API (`GET /v2/<name>/referrers/<digest>`).
    ReferrersApi,
    /// The referrers tag schema: an index under the tag `<alg>-<hex>`.
    ReferrersTag,
    /// A cosign tag: `sha256-<hex>.sig`, `.att`, `.sbom`.
    CosignTag,
    /// Listed in the image's own index (BuildKit's attestation manifests).
    InIndex,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TocImage {
    /// Full normalized name: `docker.io/library/nginx:1.25`, or `registry/repo@sha256:…`
    /// for an image saved by digest only.
    pub name: String,
    /// What the user asked for, as typed (`nginx:1.25`, `oci:fixtures/hello:1.0`).
    pub source: String,
    /// Digest of the manifest or index this name points to in the bundle.
    pub digest: Digest,
    /// Media type of that manifest or index.
    pub media_type: String,
    /// `os/arch[/variant]` of every image manifest under this name (one for a single-platform image).
    pub platforms: Vec<String>,
    /// Total size of the unique blobs this name reaches (manifests, configs, layers).
    pub size: u64,
    /// Set when `digest` is not the digest the source serves for this name, with the
    /// source's digest (for example after `--platform` dropped children of an index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_digest: Option<Digest>,
    /// Why `digest` differs from the source, or anything else an operator must know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What `manifest.json` holds for this name, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<TocDocker>,
    /// Why this name has no `manifest.json` entry (no manifest for the Docker platform, zstd layers, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_skipped: Option<String>,
}

/// The image manifest chosen for `docker load` under a name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TocDocker {
    pub manifest: Digest,
    /// The config digest, which is the image ID Docker will show.
    pub config: Digest,
    pub platform: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TocBlob {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
}

/// What a differential bundle (`save --base`) was made against, and what it left out.
///
/// Present only in differential bundles. The blobs listed in `omitted` are configs and
/// layers the images need but the file does not hold (the base has them); they are
/// **not** in [`Toc::blobs`], which lists only what the file holds. Manifests and
/// indexes are never left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TocBase {
    /// `bundle` (another airlock bundle) or `inventory` (an `airlock inventory` file).
    pub kind: String,
    /// The base's file name (no directory).
    pub file: String,
    /// When the base was made (its TOC's or inventory's `created`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The tool that made the base (`airlock <version>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// For an inventory base: the registry (and prefix) it describes, `host[:port][/prefix]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// Every config and layer left out, each once.
    pub omitted: Vec<TocOmitted>,
}

/// One blob a differential bundle leaves out, and where the target should have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TocOmitted {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    /// Where the blob can be found: for an `inventory` base, the target repositories
    /// holding it; for a `bundle` base, names of the base bundle's images that use it
    /// (`push` maps them to target repositories the way it maps this bundle's names).
    #[serde(default)]
    pub repositories: Vec<String>,
}

impl TocBase {
    /// The sum of the omitted blobs' sizes.
    pub fn omitted_bytes(&self) -> u64 {
        self.omitted.iter().map(|o| o.size).sum()
    }

    /// The omitted entry for `digest`, if it was left out.
    pub fn omitted(&self, digest: &Digest) -> Option<&TocOmitted> {
        self.omitted.iter().find(|o| &o.digest == digest)
    }
}

/// The TOC's fields as written, in order, before the checksum.
#[derive(Serialize)]
struct TocFields<'a> {
    format_version: u32,
    tool: &'a str,
    created: &'a str,
    docker_platform: &'a str,
    images: &'a [TocImage],
    blobs: &'a [TocBlob],
    #[serde(skip_serializing_if = "Option::is_none")]
    base: &'a Option<TocBase>,
    #[serde(skip_serializing_if = "<[TocArtifact]>::is_empty")]
    artifacts: &'a [TocArtifact],
    #[serde(skip_serializing_if = "<[TocCompact]>::is_empty")]
    compact: &'a [TocCompact],
}

/// The name of the TOC's self-checksum field.
pub(crate) const CHECKSUM_FIELD: &str = "checksum";

/// `sha256:<hex>` of the canonical form of a TOC document without its checksum field:
/// compact JSON with every object's keys sorted (by bytes), strings escaped the way
/// `serde_json` does (`"`, `\\` and control characters only). Whitespace and key order
/// in the file do not matter; every value, key and unknown field does.
fn canonical_checksum(doc: &serde_json::Value) -> Digest {
    // serde_json's map is a BTreeMap (no `preserve_order`), so keys come out sorted.
    Digest::of(&serde_json::to_vec(doc).expect("a JSON value serializes"))
}

impl Serialize for Toc {
    /// The fields, then `checksum`: the sha256 of their canonical form. The bundle
    /// is the only copy of its table of contents, and in a plain `.tar` nothing else
    /// protects it, so a flipped bit in a name, a note or a size is caught here.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeMap};
        let fields = TocFields {
            format_version: self.format_version,
            tool: &self.tool,
            created: &self.created,
            docker_platform: &self.docker_platform,
            images: &self.images,
            blobs: &self.blobs,
            base: &self.base,
            artifacts: &self.artifacts,
            compact: &self.compact,
        };
        let value = serde_json::to_value(&fields).map_err(S::Error::custom)?;
        let serde_json::Value::Object(map) = &value else {
            return Err(S::Error::custom("the TOC is not a JSON object"));
        };
        let checksum = canonical_checksum(&value);
        let mut out = serializer.serialize_map(Some(map.len() + 1))?;
        // In field order (the value's map is sorted, the file keeps the struct's order).
        out.serialize_entry("format_version", &fields.format_version)?;
        out.serialize_entry("tool", fields.tool)?;
        out.serialize_entry("created", fields.created)?;
        out.serialize_entry("docker_platform", fields.docker_platform)?;
        out.serialize_entry("images", fields.images)?;
        out.serialize_entry("blobs", fields.blobs)?;
        if let Some(base) = fields.base {
            out.serialize_entry("base", base)?;
        }
        if !fields.artifacts.is_empty() {
            out.serialize_entry("artifacts", fields.artifacts)?;
        }
        if !fields.compact.is_empty() {
            out.serialize_entry("compact", fields.compact)?;
        }
        out.serialize_entry(CHECKSUM_FIELD, checksum.as_str())?;
        out.end()
    }
}

/// What is wrong with the checksum of the TOC document `bytes`, or `None` when it
/// matches. `Some` also when the field is missing (a TOC written before airlock kept
/// one, or whose field name is damaged) or the bytes are not a JSON object.
pub fn checksum_problem(bytes: &[u8]) -> Option<String> {
    let mut doc: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => return Some(format!("it is not valid JSON ({e})")),
    };
    let Some(map) = doc.as_object_mut() else {
        return Some("it is not a JSON object".to_string());
    };
    let written = match map.remove(CHECKSUM_FIELD) {
        None => {
            return Some(format!(
                "it has no `{CHECKSUM_FIELD}` field (it was written by an older airlock, or the field's name is damaged)"
            ));
        }
        Some(serde_json::Value::String(s)) => s,
        Some(other) => return Some(format!("its `{CHECKSUM_FIELD}` is {other}, not a digest")),
    };
    let actual = canonical_checksum(&doc);
    if written == actual.as_str() {
        None
    } else {
        Some(format!(
            "its content does not match its `{CHECKSUM_FIELD}` ({written}; the content hashes to {actual})"
        ))
    }
}

/// Whether the TOC document `bytes` carries a checksum field at all.
pub(crate) fn has_checksum(bytes: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        checksum: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Probe>(bytes).is_ok_and(|p| p.checksum.is_some())
}

impl Toc {
    /// The compact entry of gzip layer `digest`, when the bundle stores it as raw + recipe.
    pub fn compact_layer(&self, digest: &Digest) -> Option<&TocCompact> {
        self.compact.iter().find(|c| &c.digest == digest)
    }

    /// The entry name that holds blob `digest` (a compact layer: its raw tar's).
    pub fn stored_path(&self, digest: &Digest) -> String {
        self.compact_layer(digest)
            .map_or_else(|| digest.blob_path(), |c| c.raw.blob_path())
    }

    /// True when `digest` is legitimately absent from the file: a differential bundle left it out.
    pub(crate) fn is_omitted(&self, digest: &Digest) -> bool {
        self.base
            .as_ref()
            .is_some_and(|b| b.omitted(digest).is_some())
    }
}
