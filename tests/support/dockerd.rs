//! A real Docker engine (Debian's docker.io 20.10, `/usr/sbin/dockerd`) for one test.
//!
//! Each [`TestDockerd`] gets its own data root, exec root, pid file and API socket
//! under a short private temp dir (`/tmp/dk-XXXXXX`: unix socket paths are limited to
//! about 100 bytes, and containerd's socket lives under the exec root), uses the `vfs`
//! storage driver and touches no iptables or bridge, so several can run side by side
//! and nothing on the host changes. Output goes to a log FILE (an inherited pipe
//! would keep a test harness waiting); a start that fails panics with the log's tail.
//! Tests need root, as dockerd does. Dropping the handle stops dockerd (SIGTERM, then
//! SIGKILL) and also any process still running from its private dirs (the containerd
//! it spawned), found by pgrep on the unique temp dir path and killed by pid.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use airlock::engine::Engine;

const DOCKERD: &str = "/usr/sbin/dockerd";
const START_DEADLINE: Duration = Duration::from_secs(60);
const STOP_DEADLINE: Duration = Duration::from_secs(20);

pub struct TestDockerd {
    child: Child,
    dir: tempfile::TempDir,
    socket: PathBuf,
}

impl TestDockerd {
    /// Starts dockerd and waits until `/_ping` answers. Panics (never skips) when
    /// dockerd is missing or does not come up.
    pub fn start() -> TestDockerd {
        assert!(
            Path::new(DOCKERD).exists(),
            "{DOCKERD} is missing: install the Debian package docker.io (apt-get install docker.io)"
        );
        let dir = tempfile::Builder::new()
            .prefix("dk-")
            .tempdir_in("/tmp")
            .expect("create a temp dir for dockerd");
        let d = dir.path();
        let socket = d.join("docker.sock");
        let log_path = d.join("dockerd.log");
        let log = File::create(&log_path).expect("create the dockerd log");
        let log2 = log.try_clone().expect("clone the log handle");
        let child = Command::new(DOCKERD)
            .arg("--storage-driver=vfs")
            .arg("--iptables=false")
            .arg("--ip-masq=false")
            .arg("--bridge=none")
            .arg("--data-root")
            .arg(d.join("root"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {DOCKERD}: {e}"));
        let mut dockerd = TestDockerd { child, dir, socket };
        dockerd.wait_ready();
        dockerd
    }

    fn wait_ready(&mut self) {
        let engine = Engine::new(&self.host()).expect("valid host");
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "dockerd exited during start-up ({status}); log tail:\n{}",
                    self.log_tail()
                );
            }
            let err = match engine.ping() {
                Ok(()) => return,
                Err(e) => e,
            };
            if started.elapsed() > START_DEADLINE {
                panic!(
                    "dockerd did not answer /_ping within {START_DEADLINE:?} ({err}); log tail:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `unix:///tmp/dk-XXXXXX/docker.sock`, for `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The private temp dir (data root, exec root, log), for tests that need scratch space.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// An API client for this engine.
    pub fn engine(&self) -> Engine {
        Engine::new(&self.host()).expect("valid host")
    }

    /// Runs the `docker` CLI against this engine.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("cli-config"))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run docker {args:?}: {e}"))
    }

    /// Runs the `docker` CLI and panics (with its output and the log tail) unless it succeeds.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed ({}):\nstdout: {}\nstderr: {}\ndockerd log tail:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The last lines of dockerd's log.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Pids of processes whose command line mentions our private dir (containerd).
    fn leftovers(&self) -> Vec<String> {
        let out = Command::new("pgrep")
            .arg("-f")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output();
        match out {
            Ok(o) => String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// Panics unless the test runs as root: dockerd (and podman with its own storage) need it,
/// and CI runs as root. A test that cannot run must fail, not pass silently.
pub fn assert_root() {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    assert_eq!(
        uid, "0",
        "this test starts dockerd, which needs root (CI runs as root)"
    );
}

fn signal(sig: &str, pid: &str) {
    let _ = Command::new("kill")
        .args([sig, pid])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Drop for TestDockerd {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        signal("-TERM", &pid);
        let started = Instant::now();
        let mut exited = false;
        while started.elapsed() < STOP_DEADLINE {
            if let Ok(Some(_)) = self.child.try_wait() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // dockerd stops its containerd on SIGTERM; make sure, bounded.
        let started = Instant::now();
        loop {
            let left = self.leftovers();
            if left.is_empty() {
                break;
            }
            let sig = if started.elapsed() < Duration::from_secs(5) {
                "-TERM"
            } else {
                "-KILL"
            };
            for p in &left {
                signal(sig, p);
            }
            if started.elapsed() > Duration::from_secs(10) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // The vfs data root may hold read-only dirs; the TempDir removes what it can.
    }
}
