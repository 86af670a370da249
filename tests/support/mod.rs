//! Shared helpers for the integration tests: real components started on loopback
//! (`docker-registry`, `dockerd`), test images built as OCI layouts, plain-HTTP reads
//! of a registry's API, signed images and a referrers API server (`referrers.rs`,
//! `referrers_api.rs`), cosign-format signatures by openssl over any key type
//! (`image_trust.rs`), clients for the registry-client tests, and a runner for the
//! airlock binary and for a running `airlock serve`. Each test file that needs them says
//! `mod support;`.
#![allow(dead_code)]

pub mod cli;
pub mod client;
pub mod corpus;
pub mod dockerd;
pub mod faulty;
pub mod gzipwrite;
pub mod image_trust;
pub mod images;
pub mod pgzipwrite;
pub mod referrers;
pub mod referrers_api;
pub mod registry;
pub mod registry_api;
pub mod regzip_compare;
pub mod regzip_inputs;
pub mod resume;
pub mod serve;
pub mod throttle;
pub mod tls;
pub mod tmpfs;
