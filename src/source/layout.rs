//! Images from an OCI image layout directory (STUB: the local-sources helper owns this).

use std::path::Path;

use super::SourceImage;

pub fn open(
    _input: &str,
    _dir: &Path,
    _reference: Option<&str>,
) -> anyhow::Result<Vec<SourceImage>> {
    anyhow::bail!("oci: sources are not implemented yet")
}
