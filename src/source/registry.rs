//! Images from a registry: the root manifest is fetched by tag or digest, everything
//! else by digest from the same repository.
//!
//! Referrers (signatures, attestations, SBOMs) are found three ways, per subject: the
//! OCI 1.1 referrers API (one request; a registry without it is remembered by the
//! client and not asked again), else the referrers tag schema's index under the tag
//! `sha256-<hex>`, and cosign's tags `sha256-<hex>.sig`, `.att`, `.sbom`. To keep the
//! tag lookups at no request per manifest, the repository's tags are listed once (on
//! the first subject) and only tags that exist are fetched.

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, bail};

use super::{BlobStore, FoundBy, Referrer, SourceImage};
use crate::digest::Digest;
use crate::oci::{Descriptor, Parsed, RawManifest};
use crate::reference::Reference;
use crate::registry::Client;

/// Cosign's tag suffixes, in the order they are looked for.
const COSIGN_SUFFIXES: [&str; 3] = [".sig", ".att", ".sbom"];

struct Repository {
    client: Client,
    registry: String,
    repository: String,
    /// The repository's tags, listed once, on the first referrers lookup that needs them.
    tags: OnceLock<Result<BTreeSet<String>, String>>,
}

impl Repository {
    fn tags(&self) -> anyhow::Result<&BTreeSet<String>> {
        let listed = self.tags.get_or_init(|| {
            match self.client.list_tags(&self.registry, &self.repository) {
                Ok(t) => Ok(t.into_iter().collect()),
                // A repository the registry cannot list has no tags to find referrers by.
                Err(e) if e.is_not_found() => Ok(BTreeSet::new()),
                Err(e) => Err(format!("{e}")),
            }
        });
        listed
            .as_ref()
            .map_err(|e| anyhow::anyhow!("cannot list the tags of {}: {e}", self.describe()))
    }

    fn by_tag(&self, tag: &str) -> anyhow::Result<RawManifest> {
        self.client
            .get_manifest(&self.registry, &self.repository, tag)
            .with_context(|| {
                format!(
                    "cannot fetch the manifest tagged {tag} in {}",
                    self.describe()
                )
            })
    }
}

impl BlobStore for Repository {
    fn describe(&self) -> String {
        format!("registry {}/{}", self.registry, self.repository)
    }
    fn manifest(&self, desc: &Descriptor) -> anyhow::Result<RawManifest> {
        Ok(self
            .client
            .get_manifest(&self.registry, &self.repository, desc.digest.as_str())?)
    }
    fn blob(&self, desc: &Descriptor) -> anyhow::Result<Box<dyn Read + Send>> {
        Ok(self
            .client
            .get_blob(&self.registry, &self.repository, &desc.digest, desc.size)?)
    }
    fn referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> anyhow::Result<Vec<Referrer>> {
        let mut out = Vec::new();
        let api = self
            .client
            .referrers(&self.registry, &self.repository, subject, artifact_type)
            .with_context(|| format!("cannot list the referrers of {subject}"))?;
        let tag_base = subject.referrers_tag();
        let has_api = api.is_some();
        if let Some(api) = api {
            out.extend(api.manifests.into_iter().map(|desc| Referrer {
                desc,
                found: FoundBy::Api,
                manifest: None,
            }));
        }
        let tags = self.tags()?;
        if !has_api && tags.contains(&tag_base) {
            let raw = self.by_tag(&tag_base)?;
            let Ok(Parsed::Index(index)) = raw.parse() else {
                bail!(
                    "the referrers tag {tag_base} in {} holds {} ({}), not an index",
                    self.describe(),
                    raw.digest,
                    raw.media_type
                );
            };
            out.extend(index.manifests.into_iter().map(|desc| Referrer {
                desc,
                found: FoundBy::FallbackTag,
                manifest: None,
            }));
        }
        for suffix in COSIGN_SUFFIXES {
            let tag = format!("{tag_base}{suffix}");
            if !tags.contains(&tag) {
                continue;
            }
            let raw = self.by_tag(&tag)?;
            let desc = Descriptor::new(&raw.media_type, raw.digest.clone(), raw.bytes.len() as u64);
            out.push(Referrer {
                desc,
                found: FoundBy::CosignTag(tag),
                manifest: Some(raw),
            });
        }
        Ok(out)
    }
}

pub fn open(input: &str, reference: &Reference, client: &Client) -> anyhow::Result<SourceImage> {
    let root = client
        .get_manifest(
            reference.registry(),
            reference.repository(),
            &reference.manifest_reference(),
        )
        .with_context(|| format!("cannot fetch the manifest of {reference}"))?;
    if let Some(d) = reference.digest()
        && &root.digest != d
    {
        bail!(
            "{reference}: the registry served a manifest whose digest is {}",
            root.digest
        );
    }
    Ok(SourceImage {
        input: input.to_string(),
        names: vec![reference.clone()],
        root,
        store: Arc::new(Repository {
            client: client.clone(),
            registry: reference.registry().to_string(),
            repository: reference.repository().to_string(),
            tags: OnceLock::new(),
        }),
        note: None,
    })
}
