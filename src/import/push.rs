//! `airlock push` (STUB: being written).

use std::io::{self, Write};

use crate::progress::Progress;
use crate::settings::PushSettings;

/// What a push did (or, with `--dry-run`, would do).
#[derive(Debug, serde::Serialize)]
pub struct PushSummary {}

impl PushSummary {
    pub fn print_human(&self, _w: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
}

pub fn push(_settings: &PushSettings, _progress: &dyn Progress) -> anyhow::Result<PushSummary> {
    anyhow::bail!("push is not implemented yet")
}
