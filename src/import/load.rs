//! `airlock load` (STUB: being written).

use std::io::{self, Write};

use crate::progress::Progress;
use crate::settings::LoadSettings;

/// What a load did.
#[derive(Debug, serde::Serialize)]
pub struct LoadSummary {}

impl LoadSummary {
    pub fn print_human(&self, _w: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
}

pub fn load(_settings: &LoadSettings, _progress: &dyn Progress) -> anyhow::Result<LoadSummary> {
    anyhow::bail!("load is not implemented yet")
}
