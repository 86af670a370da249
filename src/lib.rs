//! airlock: carry container images across an air gap.
//!
//! The library holds everything; `main.rs` only parses the command line and maps
//! errors to exit codes. See `docs/bundle-format.md` for the bundle and the README for
//! the trip.

pub mod app;
pub mod bundle;
pub mod cli;
pub mod digest;
pub mod engine;
pub mod export;
pub(crate) mod hint;
pub mod import;
pub mod inspect;
pub(crate) mod interrupt;
pub(crate) mod inventory;
pub mod manual;
pub mod oci;
pub(crate) mod ordered;
pub(crate) mod paths;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod regzip;
pub mod serve;
pub mod settings;
pub mod signing;
pub mod source;
pub(crate) mod sync;
#[cfg(test)]
pub(crate) mod testdata;
pub mod trust;
pub mod words;
