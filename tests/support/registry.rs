//! A real `docker-registry` (Debian's distribution 2.8) started on a free loopback port
//! for one test, with its storage, config and log in a temp dir that dies with it.
//!
//! The child's output goes to a log FILE (never an inherited pipe, which can hang CI
//! when nobody drains it); when the registry does not come up the panic shows that log.
//! A missing binary is a loud panic naming the apt package: tests never skip silently.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = "/usr/bin/docker-registry";

/// A running `docker-registry serve`, killed and reaped on drop.
pub struct TestRegistry {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl TestRegistry {
    /// An anonymous registry (no auth).
    pub fn start() -> TestRegistry {
        TestRegistry::launch(None)
    }

    /// A registry requiring HTTP Basic auth for `user`/`pass` (bcrypt htpasswd).
    pub fn start_with_basic_auth(user: &str, pass: &str) -> TestRegistry {
        TestRegistry::launch(Some((user, pass)))
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The registry's storage root (to corrupt or inspect blobs in tests).
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Everything the registry logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    fn launch(auth: Option<(&str, &str)>) -> TestRegistry {
        if !Path::new(BINARY).exists() {
            panic!(
                "{BINARY} is missing: install Debian's `docker-registry` package \
                 (apt-get install docker-registry) to run the registry tests"
            );
        }
        let dir = tempfile::tempdir().expect("temp dir for the test registry");
        let storage = dir.path().join("storage");
        fs::create_dir_all(&storage).expect("registry storage dir");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");

        let mut config = format!(
            "version: 0.1\n\
             log:\n  level: info\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {addr}\n",
            storage.display()
        );
        if let Some((user, pass)) = auth {
            let htpasswd = dir.path().join("htpasswd");
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|e| {
                    panic!("cannot run htpasswd ({e}): install apt package `apache2-utils`")
                });
            assert!(
                out.status.success(),
                "htpasswd failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            fs::write(&htpasswd, &out.stdout).expect("write htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        fs::write(&config_path, config).expect("write registry config");

        let log_path = dir.path().join("registry.log");
        let log = fs::File::create(&log_path).expect("registry log file");
        let log2 = log.try_clone().expect("registry log file");
        let child = Command::new(BINARY)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BINARY}: {e}"));

        let mut reg = TestRegistry { child, addr, dir };
        reg.wait_ready();
        reg
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "docker-registry exited early ({status}); its log:\n{}",
                    self.log()
                );
            }
            if let Some(code) = probe(&self.addr)
                && (code == 200 || code == 401)
            {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "docker-registry did not answer GET /v2/ on {} within 20 s; its log:\n{}",
                    self.addr,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago (bind to :0, read it, release it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// The status code of `GET /v2/`, or None when nothing answers yet.
fn probe(addr: &str) -> Option<u16> {
    let sock: SocketAddr = addr.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        match s.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let head = std::str::from_utf8(&buf[..n]).ok()?;
    head.split_whitespace().nth(1)?.parse().ok()
}
