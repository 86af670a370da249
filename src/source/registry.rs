//! Images from a registry: the root manifest is fetched by tag or digest, everything
//! else by digest from the same repository.

use std::io::Read;
use std::sync::Arc;

use anyhow::{Context, bail};

use super::{BlobStore, SourceImage};
use crate::oci::{Descriptor, RawManifest};
use crate::reference::Reference;
use crate::registry::Client;

struct Repository {
    client: Client,
    registry: String,
    repository: String,
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
        }),
        note: None,
    })
}
