//! The independent gzip writer of the compact-bundle tests: `tests/go/gzipwrite`, a
//! stdlib-only Go program built once per test binary with the `go` on PATH (Debian's
//! golang-go 1.19, installed by scripts/test.sh), offline and with private caches.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

struct Built {
    _dir: tempfile::TempDir,
    bin: PathBuf,
}

/// The built `gzipwrite` binary (built on first use; the Go version is printed once).
pub fn gzipwrite() -> &'static Path {
    static GO: OnceLock<Built> = OnceLock::new();
    &GO.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("gzipwrite");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/gzipwrite/main.go");
        let out = Command::new("go")
            .arg("build")
            .arg("-o")
            .arg(&bin)
            .arg(&src)
            .env("GOCACHE", dir.path().join("cache"))
            .env("GOPATH", dir.path().join("gopath"))
            .env("GOFLAGS", "")
            .env("GOPROXY", "off")
            .env("GOTOOLCHAIN", "local")
            .env("GO111MODULE", "off")
            .output()
            .expect("`go` not found: install Debian's golang-go (scripts/test.sh does)");
        assert!(
            out.status.success(),
            "go build gzipwrite: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let version = Command::new("go").arg("version").output().unwrap();
        eprintln!("Go: {}", String::from_utf8_lossy(&version.stdout).trim());
        Built { _dir: dir, bin }
    })
    .bin
}
