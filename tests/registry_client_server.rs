//! The registry client against a small in-test HTTP server (sitting in front of a real
//! `docker-registry` where it can) for what no real component here produces: a Bearer
//! token server, a connection dropped mid-blob, 429 with Retry-After, 503s, a redirect
//! to another host, a manifest whose bytes do not match the digest asked for, and tag
//! lists in pages. The tests against plain registries are in `registry_client.rs`.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlock::digest::Digest;
use airlock::registry::{Client, RegistryError};
use support::cli::docker_config_with_auth;
use support::client::{Setup, basic, client, options, read_all, setup};

// ---------------------------------------------------------------------------------
// A minimal HTTP/1.1 server for the tests (one request per connection, bounded).

struct Request {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

struct TestServer {
    addr: String,
    stop: Arc<AtomicBool>,
}

impl TestServer {
    fn start<F>(handler: F) -> TestServer
    where
        F: Fn(&Request, &mut TcpStream) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handler = Arc::new(handler);
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut served = 0;
            while !stop2.load(Ordering::SeqCst) && Instant::now() < deadline && served < 10_000 {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        served += 1;
                        let h = handler.clone();
                        std::thread::spawn(move || {
                            let _ = s.set_nonblocking(false);
                            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                            if let Some(req) = read_request(&mut s) {
                                h(&req, &mut s);
                            }
                            let _ = s.flush();
                            let _ = s.shutdown(std::net::Shutdown::Both);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        TestServer { addr, stop }
    }

    fn addr(&self) -> String {
        self.addr.clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn read_request(s: &mut TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(s.try_clone().ok()?);
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        head.extend_from_slice(&line);
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(&head).ok()?;
    let method = req.method?.to_string();
    let path = req.path?.to_string();
    let headers: HashMap<String, String> = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

fn respond(s: &mut TcpStream, status: u16, headers: &[(&str, String)], body: &[u8]) {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let _ = s.write_all(out.as_bytes());
    let _ = s.write_all(body);
}

/// The upstream's answer to `req` (with `path`), headers lowercased: the fault proxy's
/// forwarding, given this server's request.
fn fetch_upstream(
    upstream: &str,
    req: &Request,
    path: &str,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let forwarded = support::faulty::Request {
        method: req.method.clone(),
        path: path.to_string(),
        headers: req
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        body: req.body.clone(),
    };
    support::faulty::forward_to(upstream, &forwarded)
}

fn forward(upstream: &str, req: &Request, path: &str, s: &mut TcpStream) {
    let (status, headers, body) = fetch_upstream(upstream, req, path);
    let headers: Vec<(&str, String)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    if req.method == "HEAD" {
        let mut out = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
        for (k, v) in &headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("Content-Length: 0\r\n\r\n");
        let _ = s.write_all(out.as_bytes());
        return;
    }
    respond(s, status, &headers, &body);
}

// ---------------------------------------------------------------------------------
// Through the test server.

#[test]
fn digest_reference_must_match_bytes() {
    let Setup {
        reg,
        image: p,
        client: c,
    } = setup("x/y", 10, None);
    // Ask for a digest that the registry answers with other bytes: impossible with a
    // sound registry, so use a fake front that serves the tag's bytes for any digest.
    let upstream = reg.url();
    let front = TestServer::start(move |req, s| {
        let path = if req.path.contains("/manifests/sha256:") {
            "/v2/x/y/manifests/v1".to_string()
        } else {
            req.path.clone()
        };
        forward(&upstream, req, &path, s);
    });
    let wanted = Digest::of(b"something else");
    let e = c
        .get_manifest(&front.addr(), "x/y", wanted.as_str())
        .unwrap_err();
    match &e {
        RegistryError::DigestMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, wanted.as_str());
            assert_eq!(actual.as_str(), p.digest);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn resumes_a_blob_when_the_connection_drops() {
    for honour_range in [true, false] {
        let Setup {
            reg,
            image: p,
            client: c,
        } = setup("r/blob", 400_000, None);
        let upstream = reg.url();
        let blob_gets = Arc::new(AtomicUsize::new(0));
        let ranges = Arc::new(Mutex::new(Vec::<String>::new()));
        let (gets, seen) = (blob_gets.clone(), ranges.clone());
        let front = TestServer::start(move |req, s| {
            if req.method == "GET" && req.path.contains("/blobs/") {
                let n = gets.fetch_add(1, Ordering::SeqCst);
                if let Some(r) = req.header("range") {
                    seen.lock().unwrap().push(r.to_string());
                }
                if n < 2 {
                    // Announce everything, send a part, hang up.
                    let (status, headers, body) = fetch_upstream(&upstream, req, &req.path);
                    let mut out = format!(
                        "HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {}\r\n",
                        body.len()
                    );
                    for (k, v) in &headers {
                        out.push_str(&format!("{k}: {v}\r\n"));
                    }
                    out.push_str("\r\n");
                    let _ = s.write_all(out.as_bytes());
                    let _ = s.write_all(&body[..body.len() / 3]);
                    return;
                }
                let mut req2 = Request {
                    method: req.method.clone(),
                    path: req.path.clone(),
                    headers: req.headers.clone(),
                    body: Vec::new(),
                };
                if !honour_range {
                    req2.headers.remove("range");
                }
                forward(&upstream, &req2, &req.path, s);
                return;
            }
            forward(&upstream, req, &req.path, s);
        });
        let got = read_all(
            c.get_blob(
                &front.addr(),
                "r/blob",
                &p.layer_digest,
                p.layer.len() as u64,
            )
            .unwrap(),
        );
        assert_eq!(got.len(), p.layer.len());
        assert!(
            got == p.layer,
            "resumed bytes differ (honour_range={honour_range})"
        );
        assert_eq!(blob_gets.load(Ordering::SeqCst), 3);
        let ranges = ranges.lock().unwrap().clone();
        assert_eq!(ranges.len(), 2, "{ranges:?}");
        assert!(
            ranges
                .iter()
                .all(|r| r.starts_with("bytes=") && r.ends_with('-')),
            "{ranges:?}"
        );
        assert_eq!(Digest::of(&got), p.layer_digest);
    }
}

#[test]
fn a_blob_that_keeps_dropping_gives_up() {
    let Setup {
        reg,
        image: p,
        client: c,
    } = setup("r/blob", 50_000, None);
    let upstream = reg.url();
    let front = TestServer::start(move |req, s| {
        if req.method == "GET" && req.path.contains("/blobs/") {
            let (status, headers, body) = fetch_upstream(&upstream, req, &req.path);
            let mut out = format!(
                "HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {}\r\n",
                body.len()
            );
            for (k, v) in &headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            let _ = s.write_all(out.as_bytes());
            let _ = s.write_all(&body[..body.len().min(10)]);
            return;
        }
        forward(&upstream, req, &req.path, s);
    });
    let mut r = c
        .get_blob(
            &front.addr(),
            "r/blob",
            &p.layer_digest,
            p.layer.len() as u64,
        )
        .unwrap();
    let mut v = Vec::new();
    let e = r.read_to_end(&mut v).unwrap_err();
    let inner = e.into_inner().unwrap();
    let reg_err = inner.downcast_ref::<RegistryError>().unwrap();
    assert!(
        matches!(reg_err, RegistryError::RetriesExhausted { attempts: 4, .. }),
        "{reg_err:?}"
    );
}

#[test]
fn honours_429_retry_after_and_retries_5xx() {
    let Setup {
        reg,
        image: p,
        client: c,
    } = setup("t/app", 10, None);
    let upstream = reg.url();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let front = TestServer::start(move |req, s| {
        if req.path.contains("/manifests/") {
            match h.fetch_add(1, Ordering::SeqCst) {
                0 => {
                    return respond(
                        s,
                        429,
                        &[("Retry-After", "1".into())],
                        br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#,
                    );
                }
                1 => return respond(s, 502, &[], b"bad gateway"),
                _ => {}
            }
        }
        forward(&upstream, req, &req.path, s);
    });
    let start = Instant::now();
    let m = c.get_manifest(&front.addr(), "t/app", "v1").unwrap();
    assert_eq!(m.bytes, p.manifest);
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "Retry-After honoured"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[test]
fn persistent_503_exhausts_retries() {
    let front = TestServer::start(|_req, s| {
        respond(
            s,
            503,
            &[],
            br#"{"errors":[{"code":"UNAVAILABLE","message":"maintenance"}]}"#,
        )
    });
    let e = client()
        .get_manifest(&front.addr(), "t/app", "v1")
        .unwrap_err();
    match &e {
        RegistryError::RetriesExhausted {
            attempts, source, ..
        } => {
            assert_eq!(*attempts, 4);
            assert_eq!(source.status(), Some(503));
            assert!(source.to_string().contains("maintenance"), "{source}");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("t/app:v1"), "{e}");
}

#[test]
fn redirects_do_not_carry_authorization_to_another_host() {
    let Setup { reg, image: p, .. } = setup("red/app", 20_000, Some(("carol", "pw-carol")));
    let auth = basic("carol", "pw-carol");
    // Storage on another origin (`localhost:<port>` is another host than 127.0.0.1).
    let storage_auth = Arc::new(Mutex::new(Vec::<Option<String>>::new()));
    let seen = storage_auth.clone();
    let layer = p.layer.clone();
    let storage = TestServer::start(move |req, s| {
        seen.lock()
            .unwrap()
            .push(req.header("authorization").map(str::to_string));
        respond(s, 200, &[], &layer);
    });
    let storage_port = storage.addr().rsplit(':').next().unwrap().to_string();
    let upstream = reg.url();
    let front_auth = Arc::new(Mutex::new(Vec::<Option<String>>::new()));
    let seen_front = front_auth.clone();
    let front = TestServer::start(move |req, s| {
        if req.path.contains("/blobs/") {
            seen_front
                .lock()
                .unwrap()
                .push(req.header("authorization").map(str::to_string));
            if req.header("authorization").is_none() {
                return respond(
                    s,
                    401,
                    &[("WWW-Authenticate", r#"Basic realm="test""#.into())],
                    b"",
                );
            }
            if req.path.starts_with("/v2/") {
                // First hop: same origin, relative redirect; second: to the storage.
                return respond(
                    s,
                    307,
                    &[("Location", format!("/same-origin{}", req.path))],
                    b"",
                );
            }
            return respond(
                s,
                302,
                &[(
                    "Location",
                    format!("http://localhost:{storage_port}/bucket/o?sig=abc"),
                )],
                b"",
            );
        }
        forward(&upstream, req, &req.path, s);
    });
    let cfg = docker_config_with_auth(&front.addr(), "carol", "pw-carol");
    let c = Client::new(options(cfg.path())).unwrap();
    let got = read_all(
        c.get_blob(
            &front.addr(),
            "red/app",
            &p.layer_digest,
            p.layer.len() as u64,
        )
        .unwrap(),
    );
    assert_eq!(got, p.layer);
    let front_seen = front_auth.lock().unwrap().clone();
    assert_eq!(
        front_seen.last().cloned().flatten().as_deref(),
        Some(auth.as_str()),
        "same origin keeps auth: {front_seen:?}"
    );
    let storage_seen = storage_auth.lock().unwrap().clone();
    assert_eq!(
        storage_seen,
        vec![None],
        "storage must not see Authorization"
    );
}

/// A Bearer token server plus a registry front that demands its tokens.
struct TokenFront {
    front: TestServer,
    token_requests: Arc<Mutex<Vec<Request>>>,
    valid: Arc<Mutex<Vec<String>>>,
}

fn token_front(upstream: String, user: &'static str, pass: &'static str) -> TokenFront {
    let token_requests = Arc::new(Mutex::new(Vec::<Request>::new()));
    let valid = Arc::new(Mutex::new(Vec::<String>::new()));
    let counter = Arc::new(AtomicUsize::new(0));
    let (tr, va) = (token_requests.clone(), valid.clone());
    let self_addr = Arc::new(Mutex::new(String::new()));
    let sa = self_addr.clone();
    let front = TestServer::start(move |req, s| {
        if req.path.starts_with("/token") {
            tr.lock().unwrap().push(Request {
                method: req.method.clone(),
                path: req.path.clone(),
                headers: req.headers.clone(),
                body: req.body.clone(),
            });
            let body = String::from_utf8_lossy(&req.body).to_string();
            let ok = req.header("authorization") == Some(basic(user, pass).as_str())
                || body.contains("refresh_token=refresh-123");
            if !ok {
                return respond(s, 401, &[], br#"{"details":"bad credentials"}"#);
            }
            let t = format!("tok-{}", counter.fetch_add(1, Ordering::SeqCst));
            va.lock().unwrap().push(format!("Bearer {t}"));
            let key = if req.method == "POST" {
                "access_token"
            } else {
                "token"
            };
            return respond(
                s,
                200,
                &[],
                format!(r#"{{"{key}":"{t}","expires_in":300}}"#).as_bytes(),
            );
        }
        let authorized = req
            .header("authorization")
            .is_some_and(|a| va.lock().unwrap().iter().any(|v| v == a));
        if !authorized {
            let realm = format!("http://{}/token", sa.lock().unwrap());
            let challenge = format!(
                r#"Bearer realm="{realm}",service="test-service",scope="repository:tok/app:pull""#
            );
            return respond(
                s,
                401,
                &[("WWW-Authenticate", challenge)],
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            );
        }
        let mut fwd = Request {
            method: req.method.clone(),
            path: req.path.clone(),
            headers: req.headers.clone(),
            body: req.body.clone(),
        };
        fwd.headers.remove("authorization");
        forward(&upstream, &fwd, &req.path, s);
    });
    *self_addr.lock().unwrap() = front.addr();
    TokenFront {
        front,
        token_requests,
        valid,
    }
}

#[test]
fn bearer_tokens_are_fetched_cached_and_renewed() {
    let Setup { reg, image: p, .. } = setup("tok/app", 5000, None);
    let tf = token_front(reg.url(), "dave", "pw-dave");
    let addr = tf.front.addr();
    let cfg = docker_config_with_auth(&addr, "dave", "pw-dave");
    let c = Client::new(options(cfg.path())).unwrap();

    let m = c.get_manifest(&addr, "tok/app", "v1").unwrap();
    assert_eq!(m.bytes, p.manifest);
    let blob = read_all(c.get_blob(&addr, "tok/app", &p.layer_digest, 5000).unwrap());
    assert_eq!(blob, p.layer);
    c.get_manifest(&addr, "tok/app", &p.digest).unwrap();
    {
        let reqs = tf.token_requests.lock().unwrap();
        assert_eq!(reqs.len(), 1, "one token for one scope");
        assert_eq!(reqs[0].method, "GET");
        assert!(
            reqs[0].path.contains("service=test-service"),
            "{}",
            reqs[0].path
        );
        assert!(
            reqs[0].path.contains("scope=repository%3Atok%2Fapp%3Apull"),
            "{}",
            reqs[0].path
        );
    }

    // The registry stops accepting the token: dropped, refetched once, request succeeds.
    tf.valid.lock().unwrap().clear();
    c.get_manifest(&addr, "tok/app", "v1").unwrap();
    assert_eq!(tf.token_requests.lock().unwrap().len(), 2);

    // Push scope is a separate token with pull,push.
    let blob = b"pushed through bearer".to_vec();
    let d = Digest::of(&blob);
    c.upload_blob(&addr, "tok/app", &d, blob.len() as u64, &mut &blob[..])
        .unwrap();
    let reqs = tf.token_requests.lock().unwrap();
    assert!(
        reqs.iter().any(|r| r
            .path
            .contains("scope=repository%3Atok%2Fapp%3Apull%2Cpush")),
        "push scope requested"
    );
}

#[test]
fn bearer_with_rejected_credentials_and_anonymous() {
    let Setup { reg, .. } = setup("tok/app", 10, None);
    let tf = token_front(reg.url(), "erin", "pw-erin");
    let addr = tf.front.addr();
    let cfg = docker_config_with_auth(&addr, "erin", "NOT-the-password");
    let c = Client::new(options(cfg.path())).unwrap();
    let e = c.get_manifest(&addr, "tok/app", "v1").unwrap_err();
    assert!(
        matches!(
            e,
            RegistryError::Unauthorized {
                credentials: Some(_),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string().contains(&addr) && e.to_string().contains("config.json"),
        "{e}"
    );
    assert!(!format!("{e:?}").contains("NOT-the-password"));

    let e = client().get_manifest(&addr, "tok/app", "v1").unwrap_err();
    assert!(e.is_auth(), "{e:?}");
    assert!(
        e.to_string().contains(&format!("docker login {addr}")),
        "{e}"
    );
}

#[test]
fn identity_tokens_use_the_oauth2_refresh_grant() {
    let Setup { reg, image: p, .. } = setup("tok/app", 10, None);
    let tf = token_front(reg.url(), "unused", "unused");
    let addr = tf.front.addr();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        format!(r#"{{"auths":{{"http://{addr}/v1/":{{"identitytoken":"refresh-123"}}}}}}"#),
    )
    .unwrap();
    let c = Client::new(options(dir.path())).unwrap();
    let m = c.get_manifest(&addr, "tok/app", "v1").unwrap();
    assert_eq!(m.bytes, p.manifest);
    let reqs = tf.token_requests.lock().unwrap();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "POST");
    let body = String::from_utf8_lossy(&reqs[0].body);
    for part in [
        "grant_type=refresh_token",
        "refresh_token=refresh-123",
        "service=test-service",
        "client_id=airlock",
        "scope=repository%3Atok%2Fapp%3Apull",
    ] {
        assert!(body.contains(part), "{part} missing in {body}");
    }
}

#[test]
fn tag_lists_follow_link_pages() {
    let front = TestServer::start(|req, s| {
        let (tags, link) = if req.path.contains("last=b") {
            (r#"["c"]"#, None)
        } else {
            (
                r#"["a","b"]"#,
                Some(r#"</v2/p/app/tags/list?last=b&n=2>; rel="next""#.to_string()),
            )
        };
        let headers: Vec<(&str, String)> = link.into_iter().map(|l| ("Link", l)).collect();
        respond(
            s,
            200,
            &headers,
            format!(r#"{{"name":"p/app","tags":{tags}}}"#).as_bytes(),
        );
    });
    let tags = client().list_tags(&front.addr(), "p/app").unwrap();
    assert_eq!(tags, vec!["a", "b", "c"]);
}
