//! Images from the local Docker engine (STUB: the local-sources helper owns this).

use super::{OpenContext, SourceImage};
use crate::reference::Reference;

pub fn open(
    _input: &str,
    _reference: &Reference,
    _ctx: &OpenContext<'_>,
) -> anyhow::Result<Vec<SourceImage>> {
    anyhow::bail!("docker-daemon: sources are not implemented yet")
}
