//! Where images come from: registries, OCI layouts, `docker save` archives and the
//! local Docker engine, behind one small interface.
//!
//! A user's input string is parsed into a [`SourceSpec`]; [`open`] turns it into one or
//! more [`SourceImage`]s, each with its root manifest or index already fetched (as raw
//! bytes) and a [`BlobStore`] to fetch the rest from. The save pipeline never asks what
//! kind of source it is talking to. Stores return *unverified* streams: the pipeline
//! wraps every one in [`crate::digest::VerifyingReader`], in one place.
//!
//! Stores may also say what refers to a manifest ([`BlobStore::referrers`]: signatures,
//! attestations, SBOMs); only registries have such things, so the method defaults to
//! none and only `registry` implements it.
//!
//! Local images whose layers are uncompressed tars (`docker save` output, the engine)
//! are converted once when opened: layers are gzip-compressed in parallel into a
//! staging OCI layout and a new manifest is written for them; see [`archive`].

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::oci::{Descriptor, RawManifest};
use crate::progress::Progress;
use crate::reference::{Reference, ReferenceError};
use crate::registry::Client;

pub mod archive;
pub mod convert;
pub mod daemon;
pub mod layout;
pub mod registry;
pub(crate) mod tar_header;

/// A store of manifests and blobs for one image (a registry repository, a layout, …).
pub trait BlobStore: Send + Sync {
    /// For messages: `registry localhost:5000/library/nginx`, `OCI layout fixtures/hello`.
    fn describe(&self) -> String;
    /// A child manifest of an index. The returned bytes are not yet checked against
    /// `desc.digest`; [`RawManifest::digest`] is computed from them, so callers compare.
    fn manifest(&self, desc: &Descriptor) -> anyhow::Result<RawManifest>;
    /// A stream of a blob's bytes, unverified.
    fn blob(&self, desc: &Descriptor) -> anyhow::Result<Box<dyn Read + Send>>;
    /// Whether blobs are read from local files (a layout, an archive, converted layers):
    /// then the save reads each one when its turn in the bundle comes instead of
    /// fetching it ahead (there is no network to wait for).
    fn local(&self) -> bool {
        false
    }
    /// The manifests that refer to `subject` (signatures, attestations, SBOMs) by the
    /// OCI 1.1 referrers API, the referrers tag schema or cosign's tags. Only
    /// registries have them; other sources find none. `artifact_type` is a hint the
    /// store may pass on (the caller filters anyway). Errors are real failures (a
    /// registry without the API or the tags is not one).
    fn referrers(
        &self,
        _subject: &crate::digest::Digest,
        _artifact_type: Option<&str>,
    ) -> anyhow::Result<Vec<Referrer>> {
        Ok(Vec::new())
    }
}

/// How a [`Referrer`] was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FoundBy {
    /// Listed by the OCI 1.1 referrers API.
    Api,
    /// Listed in the index under the referrers tag schema's tag `sha256-<hex>`.
    FallbackTag,
    /// Under cosign's tag `sha256-<hex>.sig` / `.att` / `.sbom` (the tag, whole).
    CosignTag(String),
}

/// A manifest found referring to another one.
#[derive(Debug, Clone)]
pub struct Referrer {
    /// Its descriptor as listed (digest, size, media type, artifact type). For a cosign
    /// tag, made from the manifest served under the tag.
    pub desc: Descriptor,
    pub found: FoundBy,
    /// The manifest itself when the discovery already fetched it (cosign tags: its digest
    /// is whatever the registry served, checked against `Docker-Content-Digest`).
    pub manifest: Option<RawManifest>,
}

/// One image ready to be saved: its root manifest or index and where the rest is.
pub struct SourceImage {
    /// The user's input that produced this image, for messages and the TOC.
    pub input: String,
    /// The names to record in the bundle: full normalized references, each with a tag
    /// or (for an image asked for by digest only) a digest.
    pub names: Vec<Reference>,
    /// The root manifest or index, byte-exact as the source holds it.
    pub root: RawManifest,
    pub store: Arc<dyn BlobStore>,
    /// Set when airlock had to rewrite the image (compressing local layers), saying so.
    pub note: Option<String>,
}

/// What kind of source an input string names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// `nginx:1.25`, `localhost:5000/x@sha256:…` (also `docker://…`).
    Registry(Reference),
    /// `oci:DIR[:REF]`: an OCI image layout directory; REF selects an `index.json` entry.
    Layout {
        dir: PathBuf,
        reference: Option<String>,
    },
    /// `docker-archive:FILE[:REF]`: a `docker save` tar (legacy or Docker 25+ hybrid).
    Archive {
        file: PathBuf,
        reference: Option<Reference>,
    },
    /// `docker-daemon:IMAGE`: an image in the local Docker engine.
    Daemon(Reference),
}

/// Why an input string names no source.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("`{0}` names no path (expected oci:DIR[:REF] or docker-archive:FILE[:REF])")]
    NoPath(String),
}

impl SourceSpec {
    pub fn parse(input: &str) -> Result<SourceSpec, SpecError> {
        if let Some(rest) = input.strip_prefix("oci:") {
            let (dir, reference) = split_path_ref(input, rest)?;
            return Ok(SourceSpec::Layout { dir, reference });
        }
        if let Some(rest) = input.strip_prefix("docker-archive:") {
            let (file, reference) = split_path_ref(input, rest)?;
            let reference = reference.map(|r| Reference::parse(&r)).transpose()?;
            return Ok(SourceSpec::Archive { file, reference });
        }
        if let Some(rest) = input.strip_prefix("docker-daemon:") {
            return Ok(SourceSpec::Daemon(Reference::parse(rest)?));
        }
        let rest = input.strip_prefix("docker://").unwrap_or(input);
        Ok(SourceSpec::Registry(Reference::parse(rest)?))
    }
}

/// `PATH[:REF]`: the path ends at the first `:` (as skopeo reads `oci:` names).
fn split_path_ref(input: &str, rest: &str) -> Result<(PathBuf, Option<String>), SpecError> {
    let (path, reference) = match rest.split_once(':') {
        Some((p, r)) if !r.is_empty() => (p, Some(r.to_string())),
        Some((p, _)) => (p, None),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(SpecError::NoPath(input.to_string()));
    }
    Ok((PathBuf::from(path), reference))
}

/// What opening a source may need.
pub struct OpenContext<'a> {
    pub client: &'a Client,
    /// A private directory for converted images (compressed local layers), in the scratch
    /// directory (never beside the output); removed by the caller.
    pub staging: &'a Path,
    /// Worker threads for conversions.
    pub jobs: usize,
    pub progress: &'a dyn Progress,
}

/// Opens the images an input names. A registry reference or `oci:DIR:REF` gives one
/// image; `oci:DIR` and `docker-archive:FILE` without a reference give every image
/// they hold.
pub fn open(
    input: &str,
    spec: &SourceSpec,
    ctx: &OpenContext<'_>,
) -> anyhow::Result<Vec<SourceImage>> {
    match spec {
        SourceSpec::Registry(r) => Ok(vec![registry::open(input, r, ctx.client)?]),
        SourceSpec::Layout { dir, reference } => {
            layout::open_with(input, dir, reference.as_deref(), Some(ctx))
        }
        SourceSpec::Archive { file, reference } => {
            archive::open(input, file, reference.as_ref(), ctx)
        }
        SourceSpec::Daemon(r) => daemon::open(input, r, ctx),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert!(
            matches!(SourceSpec::parse("nginx").unwrap(), SourceSpec::Registry(r) if r.to_string() == "docker.io/library/nginx:latest")
        );
        assert!(matches!(
            SourceSpec::parse("docker://nginx:1").unwrap(),
            SourceSpec::Registry(_)
        ));
        assert_eq!(
            SourceSpec::parse("oci:fixtures/hello:1.0").unwrap(),
            SourceSpec::Layout {
                dir: "fixtures/hello".into(),
                reference: Some("1.0".into())
            }
        );
        assert_eq!(
            SourceSpec::parse("oci:dir").unwrap(),
            SourceSpec::Layout {
                dir: "dir".into(),
                reference: None
            }
        );
        assert!(matches!(
            SourceSpec::parse("docker-archive:a.tar:app:1").unwrap(),
            SourceSpec::Archive { reference: Some(r), .. } if r.to_string() == "docker.io/library/app:1"
        ));
        assert!(matches!(
            SourceSpec::parse("docker-daemon:app:1").unwrap(),
            SourceSpec::Daemon(_)
        ));
        assert!(SourceSpec::parse("oci:").is_err());
        assert!(SourceSpec::parse("Bad").is_err());
    }
}
