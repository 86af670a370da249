//! The distribution-spec client (STUB: the registry helper owns this module).

use std::io::Read;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::oci::RawManifest;

/// How the client reaches registries.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Hosts (`host[:port]`) spoken to over plain HTTP in addition to loopback ones.
    pub insecure_hosts: Vec<String>,
    /// Extra PEM CA certificates trusted in addition to the system store.
    pub ca_file: Option<PathBuf>,
    /// Directory holding Docker's `config.json`; `None` means `$DOCKER_CONFIG`, else `~/.docker`.
    pub docker_config_dir: Option<PathBuf>,
}

/// Errors talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("not implemented")]
    Todo,
}

/// A registry client shared by all threads of one run.
#[derive(Clone)]
pub struct Client {}

impl Client {
    pub fn new(_opts: ClientOptions) -> Result<Client, RegistryError> {
        Ok(Client {})
    }

    /// Fetches a manifest or index by tag or digest, byte-exact.
    pub fn get_manifest(
        &self,
        _registry: &str,
        _repository: &str,
        _reference: &str,
    ) -> Result<RawManifest, RegistryError> {
        Err(RegistryError::Todo)
    }

    /// Opens a blob for streaming (unverified; the caller checks the digest).
    pub fn get_blob(
        &self,
        _registry: &str,
        _repository: &str,
        _digest: &Digest,
        _size: u64,
    ) -> Result<Box<dyn Read + Send>, RegistryError> {
        Err(RegistryError::Todo)
    }
}
