//! A real `docker-registry` serving HTTPS with a test CA, on a host that is not
//! loopback (airlock, like Docker, always speaks plain HTTP to loopback registries).
//!
//! [`TlsHost`] is a network namespace joined to the test's namespace by a veth pair,
//! with a /30 out of 10.241.0.0/16: the test process reaches the namespace's address
//! through the veth, and nothing leaves the machine. [`Certs`] makes a CA and a server
//! certificate for that IP with the `openssl` CLI. [`TlsRegistry`] runs
//! `ip netns exec <ns> docker-registry serve` with both (output to a log file).
//!
//! Creating namespaces needs root (CI runs as root): when `ip netns add` fails the test
//! panics saying so, never skips. Drop kills and reaps the registry, then deletes the
//! namespace and the veth pair, also when the test panics.
#![allow(dead_code)]

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn ip(args: &[&str]) {
    run("ip", args).unwrap_or_else(|e| panic!("{e}"));
}

/// A network namespace reachable from the test at [`TlsHost::ns_ip`].
pub struct TlsHost {
    pub ns: String,
    veth: String,
    /// The address on the test's side of the veth.
    pub host_ip: String,
    /// The address inside the namespace (where the registry listens).
    pub ns_ip: String,
}

impl TlsHost {
    pub fn create() -> TlsHost {
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let ns = format!("airlock-tls-{pid}-{n}");
        // A /30 per host: 16384 of them in 10.241.0.0/16.
        let i = (pid.wrapping_mul(8).wrapping_add(n)) % 16384;
        let (third, fourth) = (i / 64, (i % 64) * 4);
        let host_ip = format!("10.241.{third}.{}", fourth + 1);
        let ns_ip = format!("10.241.{third}.{}", fourth + 2);
        if let Err(e) = run("ip", &["netns", "add", &ns]) {
            panic!(
                "the TLS tests need a network namespace (they run as root in CI, like the \
                 Docker tests); {e}"
            );
        }
        let host = TlsHost {
            veth: format!("al{}x{n}", pid % 1_000_000),
            ns,
            host_ip,
            ns_ip,
        };
        let peer = format!("{}p", host.veth);
        ip(&[
            "link", "add", &host.veth, "type", "veth", "peer", "name", &peer,
        ]);
        ip(&["link", "set", &peer, "netns", &host.ns]);
        ip(&[
            "addr",
            "add",
            &format!("{}/30", host.host_ip),
            "dev",
            &host.veth,
        ]);
        ip(&["link", "set", &host.veth, "up"]);
        let ns = host.ns.clone();
        let in_ns = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &ns, "ip"];
            all.extend_from_slice(args);
            ip(&all);
        };
        in_ns(&["addr", "add", &format!("{}/30", host.ns_ip), "dev", &peer]);
        in_ns(&["link", "set", &peer, "up"]);
        in_ns(&["link", "set", "lo", "up"]);
        host
    }

    /// `ip netns exec <ns> <program>`, ready for arguments.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, program]);
        c
    }
}

impl Drop for TlsHost {
    fn drop(&mut self) {
        let _ = run("ip", &["link", "del", &self.veth]);
        let _ = run("ip", &["netns", "del", &self.ns]);
    }
}

/// A test CA and a server certificate (with an IP SAN) it signed.
pub struct Certs {
    dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl ({e}): install Debian's `openssl`"));
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Certs {
    pub fn for_ip(ip: &str) -> Certs {
        let dir = tempfile::tempdir().expect("temp dir for certificates");
        let d = dir.path();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        let mut ca_args = vec!["req", "-x509", "-nodes", "-days", "2"];
        ca_args.extend_from_slice(&ec);
        ca_args.extend_from_slice(&[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=airlock test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(d, &ca_args);
        let mut csr_args = vec!["req", "-nodes"];
        csr_args.extend_from_slice(&ec);
        let subject = format!("/CN={ip}");
        csr_args.extend_from_slice(&[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            &subject,
        ]);
        openssl(d, &csr_args);
        fs::write(
            d.join("ext.cnf"),
            format!(
                "subjectAltName=IP:{ip}\nbasicConstraints=critical,CA:FALSE\n\
                 keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
            ),
        )
        .unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
                "-out",
                "server.pem",
            ],
        );
        Certs {
            ca: d.join("ca.pem"),
            cert: d.join("server.pem"),
            key: d.join("server.key"),
            dir,
        }
    }
}

/// `docker-registry` serving HTTPS at `<ns_ip>:5000` inside a [`TlsHost`].
pub struct TlsRegistry {
    child: Child,
    dir: tempfile::TempDir,
    pub certs: Certs,
    // Dropped after the child is reaped (fields drop after `Drop::drop`).
    pub host: TlsHost,
}

impl TlsRegistry {
    pub fn start() -> TlsRegistry {
        let host = TlsHost::create();
        let certs = Certs::for_ip(&host.ns_ip);
        let dir = tempfile::tempdir().expect("temp dir for the TLS registry");
        let storage = dir.path().join("storage");
        fs::create_dir_all(&storage).unwrap();
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: {}:5000\n  tls:\n    certificate: {}\n    key: {}\n",
            storage.display(),
            host.ns_ip,
            certs.cert.display(),
            certs.key.display()
        );
        let config_path = dir.path().join("config.yml");
        fs::write(&config_path, config).unwrap();
        let log = fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = host
            .command("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start docker-registry in {}: {e}", host.ns));
        let mut reg = TlsRegistry {
            child,
            dir,
            certs,
            host,
        };
        reg.wait_ready();
        reg
    }

    /// `<ns_ip>:5000`: not loopback, so airlock speaks HTTPS to it.
    pub fn addr(&self) -> String {
        format!("{}:5000", self.host.ns_ip)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let sock: SocketAddr = self.addr().parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited early ({status}):\n{}", self.log());
            }
            if TcpStream::connect_timeout(&sock, Duration::from_millis(300)).is_ok() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "the TLS registry did not listen on {} within 20 s:\n{}",
                    self.addr(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TlsRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
