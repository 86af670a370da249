//! Where images go on a registry: `host[:port][/prefix]`, parsed and checked once for
//! `push`, `inventory` and `serve` (which names what it serves the way `push` would).
//! Its own file because it is a value type several commands share, not one command's
//! settings.

use super::{UsageError, usage};
use crate::reference::Reference;

/// A registry and a repository path prefix in it, given as `host[:port][/prefix]`: where
/// `push` writes images and what `inventory` records. How `push` maps a source name
/// under the prefix is push's own business (`import::push::target`); this type only
/// parses the pair and checks that a repository under the prefix is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryPrefix {
    /// `host[:port]`.
    pub registry: String,
    /// Repository path prefix without slashes at either end; empty for none.
    pub prefix: String,
}

impl RegistryPrefix {
    /// Parses `host[:port][/prefix]`; the first component is always the host.
    pub fn parse(s: &str) -> Result<RegistryPrefix, UsageError> {
        let s = s
            .strip_prefix("docker://")
            .unwrap_or(s)
            .trim_end_matches('/');
        if let Some((scheme, rest)) = s.split_once("://") {
            return Err(usage(format!(
                "TARGET is host[:port][/prefix], without a scheme: write `{rest}`, not `{scheme}://{rest}` \
                 (loopback registries and those given with --insecure-registry are spoken to over plain HTTP)"
            )));
        }
        let (registry, prefix) = s.split_once('/').unwrap_or((s, ""));
        if registry.is_empty() {
            return Err(usage(format!(
                "target `{s}` names no registry (expected host[:port][/prefix])"
            )));
        }
        let target = RegistryPrefix {
            registry: registry.to_string(),
            prefix: prefix.to_string(),
        };
        // Validate host and prefix the way a full reference under them is validated:
        // as the repository an image named `x` gets under the prefix.
        let x = Reference::parse("x").expect("valid");
        target.repository(&x, x.repository())?;
        Ok(target)
    }

    /// The repository a source name maps to under this prefix: the source registry host
    /// dropped and the repository path kept (`docker.io/library/nginx` → `library/nginx`),
    /// or, with `keep_registry`, the host kept as the first path component (`:` spelled
    /// `_`). `push` writes images there and `serve` serves them there.
    pub fn repository_for(
        &self,
        name: &Reference,
        keep_registry: bool,
    ) -> Result<String, UsageError> {
        let path = if keep_registry {
            format!(
                "{}/{}",
                name.registry().replace(':', "_").to_ascii_lowercase(),
                name.repository()
            )
        } else {
            name.repository().to_string()
        };
        self.repository(name, &path)
    }

    /// The repository `<prefix>/<path>` (just `path` without a prefix), checked to make
    /// a valid reference on this registry; the error names `source`, the image that
    /// would go there.
    pub fn repository(&self, source: &Reference, path: &str) -> Result<String, UsageError> {
        let repository = if self.prefix.is_empty() {
            path.to_string()
        } else {
            format!("{}/{path}", self.prefix)
        };
        Reference::from_parts(&self.registry, &repository, Some("latest"), None).map_err(|e| {
            usage(format!(
                "cannot push `{source}` to `{}/{repository}`: {e}",
                self.registry
            ))
        })?;
        Ok(repository)
    }
}

/// `host[:port]` or `host[:port]/prefix`, as the user wrote it (less `docker://` and
/// trailing slashes).
impl std::fmt::Display for RegistryPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.registry)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}
