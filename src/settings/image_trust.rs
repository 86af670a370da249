//! `--key PEM` and `--policy FILE` resolved into a [`Policy`] before any work starts: a
//! key that cannot be read, or a policy file with a mistake, is a usage error (exit 2)
//! naming the file (and, for a policy, the field).

use std::path::{Path, PathBuf};

use super::{UsageError, usage};
use crate::cli::ImageTrustArgs;
use crate::trust::{CosignKey, Policy};

/// `--key`/`--policy` of `verify` and `push`.
pub(crate) fn from_args(args: &ImageTrustArgs) -> Result<Option<Policy>, UsageError> {
    image_policy(&args.keys, args.policy.as_deref())
}

/// `save --policy FILE`.
pub(crate) fn policy_file(file: Option<&Path>) -> Result<Option<Policy>, UsageError> {
    image_policy(&[], file)
}

/// The policy `--key` (every image signed by one of the keys) or `--policy` stands
/// for; `None` when neither is given.
fn image_policy(keys: &[PathBuf], policy: Option<&Path>) -> Result<Option<Policy>, UsageError> {
    if let Some(file) = policy {
        return Policy::load(file)
            .map(Some)
            .map_err(|e| usage(format!("--policy: {e}")));
    }
    if keys.is_empty() {
        return Ok(None);
    }
    let keys = keys
        .iter()
        .map(|k| CosignKey::load(k).map_err(|e| usage(format!("--key: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Policy::keys(keys)))
}
