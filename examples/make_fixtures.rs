//! Regenerates the shipped test images under `fixtures/`:
//!
//! ```text
//! cargo run --example make_fixtures            # writes ./fixtures
//! cargo run --example make_fixtures -- DIR     # writes DIR instead
//! ```
//!
//! The images are built by the same deterministic builder the integration tests use
//! (`tests/support/images.rs`), so a rerun gives identical bytes; the test
//! `fixtures_are_reproducible` (tests/save_readers.rs) fails when the committed
//! fixtures drift from the builder.

#[path = "../tests/support/images.rs"]
mod images;

use std::path::PathBuf;

fn main() {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures"));
    images::write_fixtures(&root);
    let f = images::fixtures();
    println!("wrote {}", root.display());
    println!(
        "  oci/  {}  {}",
        images::FIXTURE_HELLO,
        f.hello.manifest.digest
    );
    println!(
        "  oci/  {}  {}",
        images::FIXTURE_HELLO_LATEST,
        f.hello.manifest.digest
    );
    println!(
        "  oci/  {}  {}",
        images::FIXTURE_WORLD,
        f.world.manifest.digest
    );
    println!(
        "  oci/  {}  {} (linux/amd64, linux/arm64/v8)",
        images::FIXTURE_MULTI,
        f.multi.index.digest
    );
    println!(
        "  docker-archive/legacy.tar  {}  config {}",
        images::FIXTURE_ARCHIVE_TAG,
        f.legacy.config.digest
    );
}
