//! `airlock convert`'s settings: the compact bundle to read, the ordinary bundle to
//! write and its zstd level. Its own file because `settings.rs` is near its size limit.

use std::path::PathBuf;

use super::{UsageError, usage};
use crate::cli::ConvertArgs;

#[derive(Debug, Clone)]
pub(crate) struct ConvertSettings {
    /// Not checked here: opening it reports a missing or damaged bundle.
    pub bundle: PathBuf,
    pub output: PathBuf,
    pub zstd_level: i32,
}

impl ConvertSettings {
    pub fn from_args(args: &ConvertArgs) -> Result<ConvertSettings, UsageError> {
        if !(1..=19).contains(&args.zstd_level) {
            return Err(usage(format!(
                "--zstd-level {} is not 1-19",
                args.zstd_level
            )));
        }
        if args.output == args.bundle {
            return Err(usage(
                "-o must name a new file, not the bundle being converted",
            ));
        }
        Ok(ConvertSettings {
            bundle: args.bundle.clone(),
            output: args.output.clone(),
            zstd_level: args.zstd_level,
        })
    }
}
