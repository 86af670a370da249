//! A disk that fills up during `save` (a real tmpfs, too small for the bundle): a clear
//! error, nothing under the final name, and once there is space the same command
//! finishes (resuming from what the first run kept) with a bundle that verifies.
//! Needs root to mount the tmpfs, as CI has.

mod support;

use std::path::{Path, PathBuf};

use support::cli::{cmd, dir_listing, repo_root};
use support::tmpfs::SmallDisk;

fn save(out: &Path) -> support::cli::Run {
    cmd(&[
        "save",
        "oci:fixtures/oci",
        "-o",
        out.to_str().unwrap(),
        "--no-progress",
    ])
    .current_dir(repo_root())
    .run()
}

#[test]
fn a_full_disk_fails_cleanly_and_the_rerun_finishes() {
    // The fixtures make a ~165 KiB .tar; 96 KiB runs out part-way through the layers.
    let disk = SmallDisk::mount("96k");
    let out: PathBuf = disk.path().join("b.tar");

    let full = save(&out).expect_code(1);
    let text = full.output();
    assert!(text.contains("No space left on device"), "{full}");
    assert!(text.contains("hint: a disk is full"), "{full}");
    assert!(!out.exists(), "nothing under the final name");
    for f in dir_listing(disk.path()) {
        assert!(
            f.starts_with(".b.tar."),
            "only airlock's hidden working files are left: {f}"
        );
    }

    disk.grow("4m");
    let done = save(&out).ok();
    assert!(out.exists(), "{done}");
    assert_eq!(
        dir_listing(disk.path()),
        ["b.tar"],
        "working files are gone after success"
    );
    let verify = cmd(&["verify", out.to_str().unwrap(), "--json"])
        .run()
        .ok()
        .json();
    assert_eq!(verify["ok"], true, "{verify:#}");
    assert_eq!(verify["blobs"], 14, "{verify:#}");
}
