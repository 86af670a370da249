//! A throttling TCP proxy for the resume tests: forwards loopback connections to an
//! upstream (a real registry) at a rate that can change while it runs, so that a
//! transfer takes long enough to be interrupted midway, and records what passes (the
//! request lines going up, the bytes coming down) so a test can tell what a rerun
//! fetched.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Forwards loopback TCP connections to `upstream`, each direction at most `rate`
/// bytes per second (0: unlimited), changeable while running; records the request
/// lines that go up (`GET /v2/…`) and counts the bytes that come down.
pub struct Throttle {
    pub addr: String,
    rate: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<String>>>,
    down: Arc<AtomicU64>,
}

/// What a [`pipe`] records: the request lines going up, or the bytes coming down.
#[derive(Clone)]
enum Tap {
    Requests(Arc<Mutex<Vec<String>>>),
    Bytes(Arc<AtomicU64>),
}

impl Throttle {
    pub fn start(upstream: &str, rate: u64) -> Throttle {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let rate = Arc::new(AtomicU64::new(rate));
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let down = Arc::new(AtomicU64::new(0));
        let (up, r, s) = (upstream.to_string(), Arc::clone(&rate), Arc::clone(&stop));
        let taps = [
            Tap::Requests(Arc::clone(&requests)),
            Tap::Bytes(Arc::clone(&down)),
        ];
        listener.set_nonblocking(true).unwrap();
        thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(&up) else {
                            continue;
                        };
                        for ((from, to), tap) in [
                            (client.try_clone().unwrap(), server.try_clone().unwrap()),
                            (server, client),
                        ]
                        .into_iter()
                        .zip(taps.clone())
                        {
                            let (r, s) = (Arc::clone(&r), Arc::clone(&s));
                            thread::spawn(move || pipe(from, to, &r, &s, &tap));
                        }
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Throttle {
            addr,
            rate,
            stop,
            requests,
            down,
        }
    }

    pub fn set_rate(&self, rate: u64) {
        self.rate.store(rate, Ordering::Relaxed);
    }

    /// Forgets what was recorded so far.
    pub fn reset(&self) {
        self.requests.lock().unwrap().clear();
        self.down.store(0, Ordering::Relaxed);
    }

    /// How many times each blob was asked for with GET since the last reset.
    pub fn blob_gets(&self) -> BTreeMap<String, usize> {
        let mut gets = BTreeMap::new();
        for line in self.requests.lock().unwrap().iter() {
            if let Some(rest) = line.strip_prefix("GET ")
                && let Some((_, digest)) = rest.split_once("/blobs/")
            {
                let digest = digest.split_whitespace().next().unwrap_or_default();
                *gets.entry(digest.to_string()).or_insert(0) += 1;
            }
        }
        gets
    }

    /// Bytes that came down from the upstream since the last reset.
    pub fn bytes_down(&self) -> u64 {
        self.down.load(Ordering::Relaxed)
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, rate: &AtomicU64, stop: &AtomicBool, tap: &Tap) {
    let mut buf = vec![0u8; 64 * 1024];
    from.set_read_timeout(Some(Duration::from_millis(500))).ok();
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(_) => break,
        };
        match tap {
            // A request's head arrives in one piece on loopback.
            Tap::Requests(lines) => lines.lock().unwrap().extend(
                String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .filter(|l| l.starts_with("GET ") || l.starts_with("HEAD "))
                    .map(str::to_string),
            ),
            Tap::Bytes(count) => {
                count.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        let r = rate.load(Ordering::Relaxed);
        if r > 0 {
            thread::sleep(Duration::from_secs_f64(n as f64 / r as f64));
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
