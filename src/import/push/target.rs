//! Where a source name goes on the target: push's name mapping.
//!
//! The target is a [`RegistryPrefix`] (`host[:port][/prefix]`, parsed and validated
//! with the other settings, and shared with `inventory`). The mapping itself lives on
//! [`RegistryPrefix::repository_for`], so that `serve` names images exactly as `push`
//! does without reaching into `import`: the source registry host is dropped and the
//! repository path kept under the prefix, or, with `--keep-registry`, the host is kept
//! as the first path component.
//! [`plan`](super::plan) maps the bundle's names with it, and [`base`](super::base) maps a
//! base bundle's names the same way to find where its blobs already are.

use crate::reference::Reference;
use crate::settings::{RegistryPrefix, UsageError};

/// The target repository for a source name: `<prefix>/<source path>`, with the source
/// host kept as a path component (`:` spelled `_`) when `keep_registry` is set.
pub(crate) fn repository_for(
    target: &RegistryPrefix,
    name: &Reference,
    keep_registry: bool,
) -> Result<String, UsageError> {
    target.repository_for(name, keep_registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_under_the_prefix() {
        let t = RegistryPrefix::parse("registry.lan:5000/mirror").unwrap();
        let nginx = Reference::parse("nginx:1.25").unwrap();
        assert_eq!(
            repository_for(&t, &nginx, false).unwrap(),
            "mirror/library/nginx"
        );
        assert_eq!(
            repository_for(&t, &nginx, true).unwrap(),
            "mirror/docker.io/library/nginx"
        );
        let local = Reference::parse("localhost:5000/team/app:1").unwrap();
        assert_eq!(
            repository_for(&t, &local, true).unwrap(),
            "mirror/localhost_5000/team/app"
        );
        let bare = RegistryPrefix::parse("127.0.0.1:5000").unwrap();
        assert_eq!(
            repository_for(&bare, &nginx, false).unwrap(),
            "library/nginx"
        );
        assert!(RegistryPrefix::parse("host:5000/Bad").is_err());
    }
}
