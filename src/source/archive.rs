//! Images from a `docker save` archive (STUB: the local-sources helper owns this).

use std::path::Path;

use super::{OpenContext, SourceImage};
use crate::reference::Reference;

pub fn open(
    _input: &str,
    _file: &Path,
    _reference: Option<&Reference>,
    _ctx: &OpenContext<'_>,
) -> anyhow::Result<Vec<SourceImage>> {
    anyhow::bail!("docker-archive: sources are not implemented yet")
}
