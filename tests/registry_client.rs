//! The registry client against real `docker-registry` instances, and against a small
//! in-test HTTP server (sitting in front of a real registry where it can) for what no
//! real component here produces: a Bearer token server, a connection dropped mid-blob,
//! 429 with Retry-After, 503s, and a redirect to another host.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlock::digest::Digest;
use airlock::oci::RawManifest;
use airlock::registry::{Client, ClientOptions, RegistryError};
use base64::Engine as _;
use support::registry::TestRegistry;

// ---------------------------------------------------------------------------------
// Helpers: clients, raw pushes.

fn options() -> ClientOptions {
    let empty = tempfile::tempdir().unwrap().keep();
    ClientOptions {
        docker_config_dir: Some(empty),
        retry_attempts: 4,
        retry_base_delay: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(2),
        ..ClientOptions::default()
    }
}

fn client() -> Client {
    Client::new(options()).unwrap()
}

/// A config dir whose config.json holds Basic credentials for `registry`.
fn config_with_basic(registry: &str, user: &str, pass: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    std::fs::write(
        dir.path().join("config.json"),
        format!(r#"{{"auths":{{"{registry}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    dir
}

fn raw_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent()
}

/// Pushes one blob with plain ureq calls (independent of the client under test).
fn raw_push_blob(base: &str, repo: &str, bytes: &[u8], auth: Option<&str>) -> Digest {
    let agent = raw_agent();
    let digest = Digest::of(bytes);
    let mut post = agent.post(format!("{base}/v2/{repo}/blobs/uploads/"));
    if let Some(a) = auth {
        post = post.header("authorization", a);
    }
    let resp = post.send_empty().unwrap();
    assert_eq!(resp.status(), 202, "POST upload");
    let loc = resp
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let loc = if loc.starts_with('/') {
        format!("{base}{loc}")
    } else {
        loc
    };
    let sep = if loc.contains('?') { '&' } else { '?' };
    let mut put = agent
        .put(format!("{loc}{sep}digest={digest}"))
        .header("content-type", "application/octet-stream");
    if let Some(a) = auth {
        put = put.header("authorization", a);
    }
    let resp = put.send(bytes).unwrap();
    assert_eq!(resp.status(), 201, "PUT blob");
    digest
}

struct Pushed {
    manifest: Vec<u8>,
    digest: String,
    layer: Vec<u8>,
    layer_digest: Digest,
    config_digest: Digest,
}

fn layer_bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

fn manifest_for(config: &Digest, config_len: usize, layer: &Digest, layer_len: usize) -> Vec<u8> {
    format!(
        "{{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n  \
         \"config\": {{\"mediaType\": \"application/vnd.oci.image.config.v1+json\", \"digest\": \"{config}\", \"size\": {config_len}}},\n  \
         \"layers\": [{{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar+gzip\", \"digest\": \"{layer}\", \"size\": {layer_len}}}]\n}}"
    )
    .into_bytes()
}

/// Pushes config + layer + manifest (tag) with raw ureq calls; returns what was pushed
/// and the registry's `Docker-Content-Digest` for the manifest.
fn raw_push_image(
    base: &str,
    repo: &str,
    tag: &str,
    layer_len: usize,
    auth: Option<&str>,
) -> Pushed {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = layer_bytes(layer_len, tag.len() as u8);
    let config_digest = raw_push_blob(base, repo, config, auth);
    let layer_digest = raw_push_blob(base, repo, &layer, auth);
    let manifest = manifest_for(&config_digest, config.len(), &layer_digest, layer.len());
    let mut put = raw_agent()
        .put(format!("{base}/v2/{repo}/manifests/{tag}"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json");
    if let Some(a) = auth {
        put = put.header("authorization", a);
    }
    let resp = put.send(&manifest[..]).unwrap();
    assert_eq!(resp.status(), 201, "PUT manifest");
    let digest = resp
        .headers()
        .get("docker-content-digest")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    Pushed {
        manifest,
        digest,
        layer,
        layer_digest,
        config_digest,
    }
}

fn read_all(mut r: Box<dyn Read + Send>) -> Vec<u8> {
    let mut v = Vec::new();
    r.read_to_end(&mut v).unwrap();
    v
}

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

// ---------------------------------------------------------------------------------
// Against the real registry.

#[test]
fn pulls_manifests_and_blobs_byte_exact() {
    let reg = TestRegistry::start();
    let p = raw_push_image(&reg.url(), "team/app", "v1", 300_000, None);
    let c = client();

    let m = c.get_manifest(&reg.addr(), "team/app", "v1").unwrap();
    assert_eq!(m.bytes, p.manifest, "raw bytes kept");
    assert_eq!(
        m.digest.as_str(),
        p.digest,
        "digest = Docker-Content-Digest"
    );
    assert_eq!(m.media_type, "application/vnd.oci.image.manifest.v1+json");

    let by_digest = c.get_manifest(&reg.addr(), "team/app", &p.digest).unwrap();
    assert_eq!(by_digest.bytes, p.manifest);

    let blob = read_all(
        c.get_blob(
            &reg.addr(),
            "team/app",
            &p.layer_digest,
            p.layer.len() as u64,
        )
        .unwrap(),
    );
    assert_eq!(blob, p.layer);
    // Never more than the declared size.
    let short = read_all(
        c.get_blob(&reg.addr(), "team/app", &p.layer_digest, 1000)
            .unwrap(),
    );
    assert_eq!(short, &p.layer[..1000]);
}

#[test]
fn missing_things_are_not_found() {
    let reg = TestRegistry::start();
    let p = raw_push_image(&reg.url(), "team/app", "v1", 10, None);
    let c = client();
    let e = c.get_manifest(&reg.addr(), "team/app", "nope").unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(&reg.addr()) && msg.contains("team/app:nope"),
        "{msg}"
    );

    let e = c
        .get_manifest(&reg.addr(), "team/absent", "v1")
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");

    let missing = Digest::of(b"not there");
    let e = c
        .get_blob(&reg.addr(), "team/app", &missing, 9)
        .err()
        .unwrap();
    assert!(e.is_not_found(), "{e:?}");
    assert!(!c.blob_exists(&reg.addr(), "team/app", &missing).unwrap());
    assert!(
        c.blob_exists(&reg.addr(), "team/app", &p.layer_digest)
            .unwrap()
    );
}

#[test]
fn basic_auth_from_config_json() {
    let reg = TestRegistry::start_with_basic_auth("alice", "s3cret-pw");
    let p = raw_push_image(
        &reg.url(),
        "priv/app",
        "v1",
        1000,
        Some(&basic("alice", "s3cret-pw")),
    );

    let cfg = config_with_basic(&reg.addr(), "alice", "s3cret-pw");
    let c = Client::new(ClientOptions {
        docker_config_dir: Some(cfg.path().to_path_buf()),
        ..options()
    })
    .unwrap();
    let m = c.get_manifest(&reg.addr(), "priv/app", "v1").unwrap();
    assert_eq!(m.bytes, p.manifest);
    let blob = read_all(
        c.get_blob(&reg.addr(), "priv/app", &p.layer_digest, 1000)
            .unwrap(),
    );
    assert_eq!(blob, p.layer);

    // Anonymous: told to log in.
    let e = client()
        .get_manifest(&reg.addr(), "priv/app", "v1")
        .unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains(&format!("docker login {}", reg.addr())),
        "{e}"
    );

    // Wrong password: rejected, named, never echoed.
    let bad = config_with_basic(&reg.addr(), "alice", "WRONG-pass-123");
    let c = Client::new(ClientOptions {
        docker_config_dir: Some(bad.path().to_path_buf()),
        ..options()
    })
    .unwrap();
    let e = c.get_manifest(&reg.addr(), "priv/app", "v1").unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e:?}");
    let full = format!("{e} {e:?} {:?}", std::error::Error::source(&e));
    assert!(e.to_string().contains(&reg.addr()), "{e}");
    assert!(e.to_string().contains("rejected"), "{e}");
    assert!(!full.contains("WRONG-pass-123"), "{full}");
    let b64 = base64::engine::general_purpose::STANDARD.encode("alice:WRONG-pass-123");
    assert!(!full.contains(&b64), "{full}");
}

#[test]
fn push_round_trip_with_own_uploads() {
    let reg = TestRegistry::start();
    let c = Client::new(ClientOptions {
        chunk_size: 100_000,
        ..options()
    })
    .unwrap();
    let r = reg.addr();
    let config = br#"{"architecture":"arm64","os":"linux"}"#.to_vec();
    let small = layer_bytes(5_000, 1);
    let big = layer_bytes(250_000, 2); // three PATCH chunks
    for blob in [&config, &small, &big] {
        let d = Digest::of(blob);
        assert!(!c.blob_exists(&r, "src/app", &d).unwrap());
        c.upload_blob(&r, "src/app", &d, blob.len() as u64, &mut &blob[..])
            .unwrap();
        assert!(c.blob_exists(&r, "src/app", &d).unwrap());
        let back = read_all(c.get_blob(&r, "src/app", &d, blob.len() as u64).unwrap());
        assert_eq!(&back, blob);
    }
    let cd = Digest::of(&config);
    let bd = Digest::of(&big);
    let bytes = manifest_for(&cd, config.len(), &bd, big.len());
    let manifest = RawManifest::new(bytes.clone(), None);
    let d = c.put_manifest(&r, "src/app", "1.0", &manifest).unwrap();
    assert_eq!(d, manifest.digest);
    c.put_manifest(&r, "src/app", manifest.digest.as_str(), &manifest)
        .unwrap();
    c.put_manifest(&r, "src/app", "latest", &manifest).unwrap();
    let got = c.get_manifest(&r, "src/app", "1.0").unwrap();
    assert_eq!(got.bytes, bytes);

    let mut tags = c.list_tags(&r, "src/app").unwrap();
    tags.sort();
    assert_eq!(tags, vec!["1.0", "latest"]);

    // Cross-repository mount, then the same manifest in the other repository.
    assert!(c.mount_blob(&r, "dst/app", &bd, "src/app").unwrap());
    assert!(c.mount_blob(&r, "dst/app", &cd, "src/app").unwrap());
    assert!(c.blob_exists(&r, "dst/app", &bd).unwrap());
    assert!(
        !c.mount_blob(&r, "dst/app", &Digest::of(b"absent"), "src/app")
            .unwrap()
    );
    c.put_manifest(&r, "dst/app", "1.0", &manifest).unwrap();

    // A manifest whose blobs are missing is refused with the registry's code.
    let orphan = RawManifest::new(
        manifest_for(&Digest::of(b"x"), 1, &Digest::of(b"y"), 1),
        None,
    );
    let e = c
        .put_manifest(&r, "src/app", "orphan", &orphan)
        .unwrap_err();
    assert!(e.to_string().contains("MANIFEST_BLOB_UNKNOWN"), "{e}");

    // Bytes that do not match the digest are refused by the registry.
    let e = c
        .upload_blob(&r, "src/app", &Digest::of(b"abc"), 3, &mut &b"abd"[..])
        .unwrap_err();
    assert!(e.to_string().contains("DIGEST_INVALID"), "{e}");
}

#[test]
fn uploads_with_basic_auth() {
    let reg = TestRegistry::start_with_basic_auth("bob", "pw-bob");
    let cfg = config_with_basic(&reg.addr(), "bob", "pw-bob");
    let c = Client::new(ClientOptions {
        docker_config_dir: Some(cfg.path().to_path_buf()),
        chunk_size: 1000,
        ..options()
    })
    .unwrap();
    let blob = layer_bytes(2500, 9);
    let d = Digest::of(&blob);
    c.upload_blob(&reg.addr(), "a/b", &d, blob.len() as u64, &mut &blob[..])
        .unwrap();
    let back = read_all(
        c.get_blob(&reg.addr(), "a/b", &d, blob.len() as u64)
            .unwrap(),
    );
    assert_eq!(back, blob);
}

#[test]
fn digest_reference_must_match_bytes() {
    let reg = TestRegistry::start();
    let p = raw_push_image(&reg.url(), "x/y", "v1", 10, None);
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
    let e = client()
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

/// The upstream's answer to `req` (with `path`), headers lowercased.
fn fetch_upstream(
    upstream: &str,
    req: &Request,
    path: &str,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let uri = format!("{upstream}{path}");
    let mut b = ureq::http::Request::builder()
        .method(req.method.as_str())
        .uri(&uri);
    for (k, v) in &req.headers {
        if !matches!(
            k.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding"
        ) {
            b = b.header(k.as_str(), v.as_str());
        }
    }
    if let Some(host) = req.header("host") {
        b = b.header("x-forwarded-host", host);
    }
    let agent = raw_agent();
    let mut resp = if matches!(req.method.as_str(), "POST" | "PUT" | "PATCH") {
        agent.run(b.body(req.body.clone()).unwrap()).unwrap()
    } else {
        agent.run(b.body(()).unwrap()).unwrap()
    };
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "content-length" | "connection" | "transfer-encoding"
            )
        })
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = if req.method == "HEAD" {
        Vec::new()
    } else {
        resp.body_mut().read_to_vec().unwrap_or_default()
    };
    (status, headers, body)
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
fn resumes_a_blob_when_the_connection_drops() {
    for honour_range in [true, false] {
        let reg = TestRegistry::start();
        let p = raw_push_image(&reg.url(), "r/blob", "v1", 400_000, None);
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
        let c = client();
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
    let reg = TestRegistry::start();
    let p = raw_push_image(&reg.url(), "r/blob", "v1", 50_000, None);
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
    let mut r = client()
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
    let reg = TestRegistry::start();
    let p = raw_push_image(&reg.url(), "t/app", "v1", 10, None);
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
    let m = client().get_manifest(&front.addr(), "t/app", "v1").unwrap();
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
fn connection_refused_is_a_transport_error_naming_the_url() {
    let port = support::registry::free_port();
    let e = client()
        .get_manifest(&format!("127.0.0.1:{port}"), "a/b", "v1")
        .unwrap_err();
    let RegistryError::RetriesExhausted { source, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(
        matches!(**source, RegistryError::Transport { .. }),
        "{source:?}"
    );
    assert!(
        source
            .to_string()
            .contains(&format!("http://127.0.0.1:{port}/v2/a/b/manifests/v1"))
    );
}

#[test]
fn redirects_do_not_carry_authorization_to_another_host() {
    let reg = TestRegistry::start_with_basic_auth("carol", "pw-carol");
    let auth = basic("carol", "pw-carol");
    let p = raw_push_image(&reg.url(), "red/app", "v1", 20_000, Some(&auth));
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
    let cfg = config_with_basic(&front.addr(), "carol", "pw-carol");
    let c = Client::new(ClientOptions {
        docker_config_dir: Some(cfg.path().to_path_buf()),
        ..options()
    })
    .unwrap();
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
    let reg = TestRegistry::start();
    let p = raw_push_image(&reg.url(), "tok/app", "v1", 5000, None);
    let tf = token_front(reg.url(), "dave", "pw-dave");
    let addr = tf.front.addr();
    let cfg = config_with_basic(&addr, "dave", "pw-dave");
    let c = Client::new(ClientOptions {
        docker_config_dir: Some(cfg.path().to_path_buf()),
        ..options()
    })
    .unwrap();

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
    let reg = TestRegistry::start();
    raw_push_image(&reg.url(), "tok/app", "v1", 10, None);
    let tf = token_front(reg.url(), "erin", "pw-erin");
    let addr = tf.front.addr();
    let cfg = config_with_basic(&addr, "erin", "NOT-the-password");
    let c = Client::new(ClientOptions {
        docker_config_dir: Some(cfg.path().to_path_buf()),
        ..options()
    })
    .unwrap();
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
    let reg = TestRegistry::start();
    let p = raw_push_image(&reg.url(), "tok/app", "v1", 10, None);
    let tf = token_front(reg.url(), "unused", "unused");
    let addr = tf.front.addr();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        format!(r#"{{"auths":{{"http://{addr}/v1/":{{"identitytoken":"refresh-123"}}}}}}"#),
    )
    .unwrap();
    let c = Client::new(ClientOptions {
        docker_config_dir: Some(dir.path().to_path_buf()),
        ..options()
    })
    .unwrap();
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

#[test]
fn credential_helper_supplies_basic_auth() {
    let reg = TestRegistry::start_with_basic_auth("frank", "pw-frank");
    let p = raw_push_image(
        &reg.url(),
        "h/app",
        "v1",
        10,
        Some(&basic("frank", "pw-frank")),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"test"}}}}"#, reg.addr()),
    )
    .unwrap();
    let helper = dir.path().join("docker-credential-test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread url\n[ \"$url\" = \"{}\" ] || {{ echo 'credentials not found'; exit 1; }}\n\
             echo '{{\"ServerURL\":\"'\"$url\"'\",\"Username\":\"frank\",\"Secret\":\"pw-frank\"}}'\n",
            reg.addr()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let c = Client::new(ClientOptions {
        docker_config_dir: Some(dir.path().to_path_buf()),
        helper_dir: Some(dir.path().to_path_buf()),
        ..options()
    })
    .unwrap();
    let m = c.get_manifest(&reg.addr(), "h/app", "v1").unwrap();
    assert_eq!(m.bytes, p.manifest);
}

#[test]
fn one_client_serves_many_threads() {
    let reg = TestRegistry::start_with_basic_auth("gina", "pw-gina");
    let p = Arc::new(raw_push_image(
        &reg.url(),
        "m/app",
        "v1",
        100_000,
        Some(&basic("gina", "pw-gina")),
    ));
    let cfg = config_with_basic(&reg.addr(), "gina", "pw-gina");
    let c = Client::new(ClientOptions {
        docker_config_dir: Some(cfg.path().to_path_buf()),
        ..options()
    })
    .unwrap();
    let addr = reg.addr();
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let (c, p, addr) = (c.clone(), p.clone(), addr.clone());
            std::thread::spawn(move || {
                let m = c.get_manifest(&addr, "m/app", "v1").unwrap();
                assert_eq!(m.bytes, p.manifest);
                let b = read_all(
                    c.get_blob(&addr, "m/app", &p.layer_digest, 100_000)
                        .unwrap(),
                );
                assert_eq!(b, p.layer);
                let mut cfg = c
                    .get_blob(&addr, "m/app", &p.config_digest, 1 << 20)
                    .unwrap();
                let e = cfg.read_to_end(&mut Vec::new()).unwrap_err().to_string();
                assert!(e.contains("descriptor says 1048576 bytes"), "{e}");
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn a_bad_ca_file_is_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, "not a certificate\n").unwrap();
    let e = Client::new(ClientOptions {
        ca_file: Some(path.clone()),
        ..options()
    })
    .unwrap_err();
    assert!(matches!(e, RegistryError::CaFile { .. }), "{e:?}");
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    let missing = dir.path().join("absent.pem");
    let e = Client::new(ClientOptions {
        ca_file: Some(missing),
        ..options()
    })
    .unwrap_err();
    assert!(e.to_string().contains("absent.pem"), "{e}");
}
