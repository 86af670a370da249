//! OCI and Docker image types: media types, descriptors, manifests, indexes, configs
//! and platforms.
//!
//! These types are for *reading* what a registry or a layout holds. They are never
//! serialized back where a digest depends on the bytes: airlock keeps manifests and
//! indexes as the raw bytes it received ([`RawManifest`]) and parses a copy. Only the
//! fields airlock needs are typed; unknown fields are ignored by serde, so a manifest
//! with extra fields (annotations, subject, artifactType) still parses.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

pub mod media {
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub(crate) const DOCKER_FOREIGN_LAYER_GZIP: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    /// Docker's uncompressed layer type, as written by some tools.
    pub(crate) const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

    /// The `Accept` header for manifest requests: all four manifest and index types.
    pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
        application/vnd.oci.image.manifest.v1+json, \
        application/vnd.docker.distribution.manifest.list.v2+json, \
        application/vnd.docker.distribution.manifest.v2+json";

    pub(crate) fn is_index(mt: &str) -> bool {
        mt == OCI_INDEX || mt == DOCKER_LIST
    }
    pub(crate) fn is_manifest(mt: &str) -> bool {
        mt == OCI_MANIFEST || mt == DOCKER_MANIFEST
    }
    pub(crate) fn is_zstd_layer(mt: &str) -> bool {
        mt.ends_with("+zstd") || mt.ends_with(".zstd")
    }
    pub(crate) fn is_uncompressed_layer(mt: &str) -> bool {
        mt == OCI_LAYER_TAR
            || mt == DOCKER_LAYER_TAR
            || mt == "application/vnd.oci.image.layer.nondistributable.v1.tar"
    }
}

/// A content descriptor, as in OCI `descriptor.md` and Docker's manifest v2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            platform: None,
            annotations: None,
            urls: None,
            artifact_type: None,
        }
    }
}

/// An OS/architecture pair with optional variant, as in an index entry or a config.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

/// Why a `--platform` value is not `os/arch[/variant]`.
#[derive(Debug, thiserror::Error)]
#[error(
    "platform `{0}` is not of the form os/arch[/variant] (for example linux/amd64 or linux/arm/v7)"
)]
pub struct PlatformError(String);

impl Platform {
    /// Parses `os/arch[/variant]` (as Docker's `--platform` does).
    pub fn parse(s: &str) -> Result<Platform, PlatformError> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &&str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(ok) {
            return Err(PlatformError(s.to_string()));
        }
        Ok(Platform {
            os: parts[0].to_ascii_lowercase(),
            architecture: parts[1].to_ascii_lowercase(),
            variant: parts.get(2).map(|v| v.to_ascii_lowercase()),
            os_version: None,
        })
    }

    pub fn linux_amd64() -> Platform {
        Platform::parse("linux/amd64").expect("valid")
    }

    /// Whether an image for `self` serves a request for `wanted`. The variant is
    /// compared only when the request names one, with the usual defaults
    /// (arm64 ⇒ v8, arm ⇒ v7) so that `linux/arm64` matches `linux/arm64/v8`.
    pub fn satisfies(&self, wanted: &Platform) -> bool {
        if self.os != wanted.os || self.architecture != wanted.architecture {
            return false;
        }
        match &wanted.variant {
            None => true,
            Some(w) => {
                let default = match self.architecture.as_str() {
                    "arm64" => Some("v8"),
                    "arm" => Some("v7"),
                    _ => None,
                };
                let have = self.variant.as_deref().or(default);
                have == Some(w.as_str())
            }
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// The few fields of an image config airlock reads.
#[derive(Debug, Clone, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
    pub rootfs: Option<RootFs>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

impl ImageConfig {
    pub fn platform(&self) -> Platform {
        Platform {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            variant: self.variant.clone(),
            os_version: None,
        }
    }
}

/// One entry of a `docker save` archive's `manifest.json` (what `docker load` reads).
/// Paths are relative to the archive root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DockerLoadEntry {
    pub config: String,
    /// Familiar references with tags (`nginx:1.25`); `null` loads the image untagged.
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(default)]
    pub layers: Vec<String>,
}

/// A manifest or index exactly as received, with its media type and digest.
/// The bytes are the truth; [`RawManifest::parse`] gives a typed view of them.
#[derive(Debug, Clone)]
pub struct RawManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

/// A typed view of a [`RawManifest`].
#[allow(clippy::large_enum_variant)] // short-lived parse results, never stored in bulk
#[derive(Debug, Clone)]
pub enum Parsed {
    Index(ImageIndex),
    Manifest(ImageManifest),
}

/// Why manifest bytes could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{digest} is not valid JSON for a manifest or index")]
    Json {
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{digest} has media type `{media_type}`, which is neither an image manifest nor an index"
    )]
    UnknownType { digest: Digest, media_type: String },
    #[error(
        "{digest} is a schema 1 manifest; only schema 2 and OCI images are supported (re-push the image with a current Docker or skopeo)"
    )]
    Schema1 { digest: Digest },
}

/// The largest manifest or index airlock accepts (the distribution registry's own limit is 4 MiB).
pub(crate) const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;
/// The largest image config airlock reads into memory.
pub(crate) const MAX_CONFIG_SIZE: u64 = 8 * 1024 * 1024;

impl RawManifest {
    /// Wraps bytes from a source; the digest is computed here, never taken on trust.
    /// `declared_type` is the `Content-Type` or descriptor media type, used when the
    /// bytes themselves carry no `mediaType` field.
    pub fn new(bytes: Vec<u8>, declared_type: Option<&str>) -> RawManifest {
        let digest = Digest::of(&bytes);
        let media_type = sniff_media_type(&bytes)
            .or(declared_type.map(str::to_string))
            .unwrap_or_default();
        RawManifest {
            bytes,
            media_type,
            digest,
        }
    }

    pub fn parse(&self) -> Result<Parsed, ManifestError> {
        let json = |e| ManifestError::Json {
            digest: self.digest.clone(),
            source: e,
        };
        if media::is_index(&self.media_type) {
            return serde_json::from_slice(&self.bytes)
                .map(Parsed::Index)
                .map_err(json);
        }
        if media::is_manifest(&self.media_type) {
            return serde_json::from_slice(&self.bytes)
                .map(Parsed::Manifest)
                .map_err(json);
        }
        if self.media_type.contains("manifest.v1") {
            return Err(ManifestError::Schema1 {
                digest: self.digest.clone(),
            });
        }
        Err(ManifestError::UnknownType {
            digest: self.digest.clone(),
            media_type: self.media_type.clone(),
        })
    }
}

/// The media type a manifest declares in its own `mediaType` field, or infers from its
/// shape (`manifests` ⇒ OCI index, `config` ⇒ OCI manifest) as the OCI spec allows.
pub fn sniff_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        schema_version: Option<u32>,
        manifests: Option<serde::de::IgnoredAny>,
        config: Option<serde::de::IgnoredAny>,
    }
    let probe: Probe = serde_json::from_slice(bytes).ok()?;
    if let Some(mt) = probe.media_type {
        return Some(mt);
    }
    if probe.schema_version == Some(1) {
        return Some("application/vnd.docker.distribution.manifest.v1+json".to_string());
    }
    if probe.manifests.is_some() {
        return Some(media::OCI_INDEX.to_string());
    }
    if probe.config.is_some() {
        return Some(media::OCI_MANIFEST.to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_parse_and_match() {
        let p = Platform::parse("linux/arm64").unwrap();
        assert_eq!(p.to_string(), "linux/arm64");
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux/arm/v7/x").is_err());
        let have = Platform::parse("linux/arm64/v8").unwrap();
        assert!(have.satisfies(&p));
        assert!(
            Platform::parse("linux/arm64")
                .unwrap()
                .satisfies(&Platform::parse("linux/arm64/v8").unwrap())
        );
        assert!(
            !Platform::parse("linux/arm/v6")
                .unwrap()
                .satisfies(&Platform::parse("linux/arm/v7").unwrap())
        );
        assert!(!Platform::linux_amd64().satisfies(&p));
    }

    #[test]
    fn sniffs_types() {
        assert_eq!(
            sniff_media_type(br#"{"schemaVersion":2,"manifests":[]}"#).unwrap(),
            media::OCI_INDEX
        );
        let m = RawManifest::new(br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"x","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#.to_vec(), None);
        assert!(matches!(m.parse().unwrap(), Parsed::Manifest(_)));
        let bad = RawManifest::new(b"{}".to_vec(), Some("text/plain"));
        assert!(matches!(
            bad.parse(),
            Err(ManifestError::UnknownType { .. })
        ));
    }
}
