//! A running `airlock serve` for the tests ([`Served`]: the real binary on a free
//! loopback port, plain or TLS, killed and reaped on drop, also on a panic), and plain
//! HTTP requests to it with `ureq` ([`request`]), which keep a body cut off before its
//! `Content-Length` as an error rather than failing the test.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::cli::airlock_bin;
use super::registry::free_port;

/// A running `airlock serve`, killed and reaped when dropped (also on a panic).
pub struct Served {
    pub child: Child,
    pub addr: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Served {
    /// Serves `bundles` over plain HTTP; waits until `/v2/` answers 200.
    pub fn start(bundles: &[&Path], extra: &[&str]) -> Served {
        let mut s = Served::spawn(bundles, extra);
        s.wait_until(|s| get(&s.addr, "/v2/", &[]).0 == 200);
        s
    }

    /// Serves `bundle` over HTTPS with `certs`' server certificate; waits until it says
    /// it is serving (a plain-HTTP probe cannot tell).
    pub fn start_tls(bundle: &Path, certs: &super::tls::Certs) -> Served {
        let (cert, key) = (certs.cert.to_string_lossy(), certs.key.to_string_lossy());
        let mut s = Served::spawn(&[bundle], &["--tls-cert", &cert, "--tls-key", &key]);
        s.wait_until(|s| s.log().contains("serving "));
        s
    }

    /// `airlock serve BUNDLES --listen <free port> EXTRA...`, stderr to a log file.
    fn spawn(bundles: &[&Path], extra: &[&str]) -> Served {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("serve.log");
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new(airlock_bin())
            .arg("serve")
            .args(bundles)
            .args(["--listen", &addr])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn airlock serve");
        Served {
            child,
            addr,
            log,
            _dir: dir,
        }
    }

    /// Waits (30 s at most) until `ready`; panics with the log if the server exits first.
    fn wait_until(&mut self, ready: impl Fn(&Served) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("airlock serve exited ({status}):\n{}", self.log());
            }
            if ready(self) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "airlock serve did not come up:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request to the server: status, headers (lower-case names), body. A body cut off
/// before its `Content-Length` is `Err`.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Result<Vec<u8>, String>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(self.body.as_ref().expect("body")).expect("JSON body")
    }

    pub fn error_code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

pub fn request(method: &str, addr: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let url = format!("http://{addr}{path}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .allow_non_standard_methods(true)
        .build()
        .into();
    let mut req = ureq::http::Request::builder().method(method).uri(&url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = match agent.run(req.body(()).expect("request")) {
        Ok(r) => r,
        Err(e) => {
            return Answer {
                status: 0,
                headers: Vec::new(),
                body: Err(e.to_string()),
            };
        }
    };
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let mut body = Vec::new();
    let read = resp.into_body().into_reader().read_to_end(&mut body);
    Answer {
        status,
        headers,
        body: read.map(|_| body).map_err(|e| e.to_string()),
    }
}

pub fn get(addr: &str, path: &str, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
    let a = request("GET", addr, path, headers);
    (a.status, a.body.unwrap_or_default())
}
