//! The release binary (issue 17): `scripts/release.sh` builds it with cargo-zigbuild
//! for `x86_64-unknown-linux-gnu.2.17`; this test builds it through the script into a
//! temp dir, checks with binutils' `readelf` (not with the script's own checks) that
//! it needs at most `GLIBC_2.17` and only the base libraries, checks `SHA256SUMS`,
//! and then runs the README's main job with it (save `oci:fixtures/oci` → verify → ls)
//! and one push into a real `docker-registry` on loopback.
//!
//! The zig build takes a minute or three on 2 cores; it uses its own target dir
//! (`target/release-zig`) so the dev build's cache stays warm.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use support::cli::{airlock_bin, repo_root};
use support::registry::TestRegistry;
use support::registry_api::registry_manifest;

/// Libraries every glibc system has; anything else in `NEEDED` is a failure.
const BASE_LIBS: &[&str] = &[
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libgcc_s.so.1",
    "ld-linux-x86-64.so.2",
];

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown} exited {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `readelf ARGS FILE`'s stdout.
fn readelf(args: &[&str], file: &Path) -> String {
    text(&run(Command::new("readelf")
        .args(args)
        .arg(file)
        .env("LC_ALL", "C")))
}

/// `(major, minor)` of `GLIBC_2.17`-style names (a third part, as in 2.2.5, is ignored).
fn glibc_version(name: &str) -> (u32, u32) {
    let mut it = name.trim_start_matches("GLIBC_").split('.').map(|p| {
        p.parse::<u32>()
            .unwrap_or_else(|_| panic!("odd version {name}"))
    });
    (it.next().unwrap(), it.next().unwrap_or(0))
}

/// Every `GLIBC_x.y` the binary's version-needs section asks for.
fn glibc_versions_needed(file: &Path) -> Vec<String> {
    let mut v: Vec<String> = readelf(&["-V", "-W"], file)
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .filter(|w| {
            w.strip_prefix("GLIBC_")
                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        })
        .map(str::to_string)
        .collect();
    v.sort_by_key(|n| glibc_version(n));
    v.dedup();
    v
}

/// The `NEEDED` entries of the dynamic section.
fn needed_libs(file: &Path) -> Vec<String> {
    readelf(&["-d", "-W"], file)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split_once('[')?.1.split_once(']')?.0.to_string()))
        .collect()
}

/// Runs the release binary (stdin closed, an empty `DOCKER_CONFIG`, no `DOCKER_HOST`).
fn release_airlock(bin: &Path, config: &Path, args: &[&str]) -> String {
    text(&run(Command::new(bin)
        .args(args)
        .env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_HOST")
        .env("NO_COLOR", "1")))
}

fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Builds the release binary with `scripts/release.sh OUT`; its path.
fn build_release(out: &Path) -> PathBuf {
    let root = repo_root();
    let mut script = Command::new("bash");
    script
        .arg(root.join("scripts/release.sh"))
        .arg(out)
        .current_dir(&root)
        // The script picks its own target dir; never one a caller set for the dev build.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET");
    // What `cargo test` sets for this process (CARGO_MANIFEST_DIR, CARGO_PKG_NAME, ...)
    // must not reach the inner build: build scripts such as ring's watch those names
    // (`rerun-if-env-changed`), so they would rebuild and make the cache of a plain
    // `bash scripts/release.sh` stale.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_BIN_")
            || key.starts_with("CARGO_CFG_")
            || matches!(
                &*key,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_MANIFEST_LINKS"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "OUT_DIR"
            )
        {
            script.env_remove(&*key);
        }
    }
    let build = run(&mut script);
    let report = text(&build);
    eprintln!("{report}{}", String::from_utf8_lossy(&build.stderr));
    assert!(report.contains("glibc floor: "), "{report}");
    assert!(report.contains("build time: "), "{report}");
    let bin = out.join(format!("airlock-{}-x86_64-linux", version()));
    assert!(
        bin.is_file(),
        "{} is missing; the script said:\n{report}",
        bin.display()
    );
    bin
}

#[test]
fn release_binary_needs_glibc_2_17_and_runs_the_main_job_and_a_push() {
    let dist = tempfile::tempdir().unwrap();
    let bin = build_release(dist.path());
    let name = bin.file_name().unwrap().to_str().unwrap().to_string();

    // glibc floor: nothing above GLIBC_2.17 (checked here with readelf, independently
    // of the script's own check).
    let versions = glibc_versions_needed(&bin);
    let highest = versions.last().expect("a glibc-linked binary");
    assert!(
        glibc_version(highest) <= (2, 17),
        "{name} needs {highest}; all: {versions:?}"
    );
    // Dynamic dependencies: only the base libraries.
    let needed = needed_libs(&bin);
    assert!(needed.iter().any(|l| l == "libc.so.6"), "{needed:?}");
    for lib in &needed {
        assert!(
            BASE_LIBS.contains(&lib.as_str()),
            "{name} needs {lib}, which a bare machine may not have; all: {needed:?}"
        );
    }
    let program_headers = readelf(&["-l", "-W"], &bin);
    assert!(
        program_headers.contains("[Requesting program interpreter: /lib64/ld-linux-x86-64.so.2]"),
        "{program_headers}"
    );

    // SHA256SUMS: one line, in `sha256sum -c` format, that sha256sum itself accepts.
    let sums = fs::read_to_string(dist.path().join("SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), 1, "{sums}");
    assert!(sums.ends_with(&format!("  {name}\n")), "{sums}");
    run(Command::new("sha256sum")
        .args(["--strict", "-c", "SHA256SUMS"])
        .current_dir(dist.path()));

    // The script's own checks refuse the normal build, which needs the build host's glibc
    // (2.34 and newer on Debian 12): this is what the release build is for.
    let dev = Command::new("bash")
        .arg(repo_root().join("scripts/release.sh"))
        .arg("--check")
        .arg(airlock_bin())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let dev_err = String::from_utf8_lossy(&dev.stderr);
    assert_eq!(dev.status.code(), Some(1), "{dev_err}");
    assert!(
        dev_err.contains("FAILED") && dev_err.contains("above the promised 2.17"),
        "{dev_err}"
    );

    // The README's main job with the release binary: save the fixtures, verify, ls.
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("docker-config");
    fs::create_dir(&config).unwrap();
    let got = release_airlock(&bin, &config, &["--version"]);
    assert_eq!(got.trim(), format!("airlock {}", version()));
    let bundle = work.path().join("fixtures.tar.zst");
    let fixtures = format!("oci:{}", repo_root().join("fixtures/oci").display());
    release_airlock(
        &bin,
        &config,
        &[
            "--no-progress",
            "save",
            &fixtures,
            "-o",
            bundle.to_str().unwrap(),
        ],
    );
    let verify: Value = serde_json::from_str(&release_airlock(
        &bin,
        &config,
        &[
            "--no-progress",
            "verify",
            "--json",
            bundle.to_str().unwrap(),
        ],
    ))
    .unwrap();
    assert_eq!(verify["ok"], true, "{verify:#}");
    assert_eq!(verify["images"], 4, "{verify:#}");
    let ls: Value = serde_json::from_str(&release_airlock(
        &bin,
        &config,
        &["ls", "--json", bundle.to_str().unwrap()],
    ))
    .unwrap();
    let index: Value =
        serde_json::from_slice(&fs::read(repo_root().join("fixtures/oci/index.json")).unwrap())
            .unwrap();
    let listed: Vec<(String, String)> = ls["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_string(),
                i["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for m in index["manifests"].as_array().unwrap() {
        let want = (
            m["annotations"]["io.containerd.image.name"]
                .as_str()
                .unwrap()
                .to_string(),
            m["digest"].as_str().unwrap().to_string(),
        );
        assert!(listed.contains(&want), "ls lacks {want:?}: {ls:#}");
    }

    // One push into a real registry: every tag lands with the fixture's digest.
    let reg = TestRegistry::start();
    let addr = reg.addr();
    let summary: Value = serde_json::from_str(&release_airlock(
        &bin,
        &config,
        &[
            "--no-progress",
            "push",
            bundle.to_str().unwrap(),
            &addr,
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(
        summary["images"].as_array().unwrap().len(),
        4,
        "{summary:#}"
    );
    for (name, digest) in &listed {
        let (repo, tag) = name
            .strip_prefix("example.com/")
            .and_then(|r| r.rsplit_once(':'))
            .unwrap_or_else(|| panic!("odd fixture name {name}"));
        assert_eq!(
            &registry_manifest(&addr, repo, tag, None).digest,
            digest,
            "{addr}/{repo}:{tag}"
        );
    }
}
