//! The independent pgzip writer of the klauspost tests: `tests/go/pgzipwrite`, built once
//! per test binary with Debian's golang-go 1.19 in GOPATH mode against Debian's
//! klauspost compress/pgzip -dev sources under /usr/share/gocode (the sources Debian's
//! skopeo and podman are built from), offline and with a private build cache.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

struct Built {
    _dir: tempfile::TempDir,
    bin: PathBuf,
}

/// Where Debian's Go -dev packages put their sources.
pub const GOCODE: &str = "/usr/share/gocode";

/// Debian's Go 1.19 (what Debian 12 builds skopeo and podman with), even when another
/// `go` comes first on PATH; `go` from PATH when it is not installed there.
fn debian_go() -> &'static str {
    const GO119: &str = "/usr/lib/go-1.19/bin/go";
    if Path::new(GO119).exists() {
        GO119
    } else {
        "go"
    }
}

/// The built `pgzipwrite` binary (built on first use).
pub fn pgzipwrite() -> &'static Path {
    static GO: OnceLock<Built> = OnceLock::new();
    &GO.get_or_init(|| {
        let pgzip = Path::new(GOCODE).join("src/github.com/klauspost/pgzip");
        assert!(
            pgzip.exists(),
            "{} missing: install golang-github-klauspost-pgzip-dev and \
             golang-github-klauspost-compress-dev (scripts/test.sh does)",
            pgzip.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("pgzipwrite");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/pgzipwrite/main.go");
        let out = Command::new(debian_go())
            .arg("build")
            .arg("-o")
            .arg(&bin)
            .arg(&src)
            .current_dir(dir.path())
            .env("GOCACHE", dir.path().join("cache"))
            .env("GOPATH", GOCODE)
            .env("GOFLAGS", "")
            .env("GOPROXY", "off")
            .env("GOTOOLCHAIN", "local")
            .env("GO111MODULE", "off")
            .output()
            .expect("`go` not found: install Debian's golang-go (scripts/test.sh does)");
        assert!(
            out.status.success(),
            "go build pgzipwrite: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let version = Command::new(debian_go()).arg("version").output().unwrap();
        eprintln!(
            "pgzipwrite built with {}",
            String::from_utf8_lossy(&version.stdout).trim()
        );
        Built { _dir: dir, bin }
    })
    .bin
}
