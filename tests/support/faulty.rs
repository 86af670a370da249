//! A fault-injecting HTTP/1.1 proxy in front of a real `docker-registry`, on loopback.
//!
//! Each connection carries one request (answers say `Connection: close`). A request is
//! read whole (`httparse` for the head; `Content-Length` or chunked body), matched
//! against the [`Rule`]s in order, and either forwarded to the upstream registry with
//! `ureq` (the answer is read whole, then written back) or answered with a [`Fault`].
//! The first rule whose method and path match and whose [`When`] fires injects its
//! fault; every rule that matches counts the request.
//!
//! Faults that concern "the body" use the request body when the request has one (a
//! blob upload) and the answer's body otherwise (a blob download). Every request is
//! logged as a [`Seen`] (with its `Authorization`), so tests can check who was sent
//! what. [`FaultyProxy::bearer`] adds a token server ("the realm") and makes the proxy
//! demand its tokens, to test the Bearer flow against an anonymous real registry.
//!
//! Loops are bounded and every socket has timeouts; dropping the proxy stops the
//! acceptor, cuts stalls short and joins every thread.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;

/// What to do to a matching request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Close the connection after this many bytes of the body (the request's when it
    /// has one, else the answer's, whose headers announce the full length).
    DropAfter(usize),
    /// Answer this status with a distribution error body, without forwarding.
    Status(u16),
    /// Answer 429 with `Retry-After: <secs>`, without forwarding.
    TooManyRequests { retry_after_secs: u64 },
    /// Forward, send the answer's headers and `after` bytes of its body (nothing at all
    /// when `after` is 0), then go silent for `pause` (longer than the client's read
    /// timeout) and close.
    Stall { after: usize, pause: Duration },
    /// Flip one bit in the middle of the body (the request's when it has one, else
    /// the answer's): bytes that do not match their digest.
    FlipByte,
    /// Forward, then replace (or add) this header of the answer.
    SetHeader(&'static str, String),
    /// Answer 307 to `<base><path>` (base such as `http://localhost:PORT`).
    Redirect(String),
    /// Forward, then wait this long before answering (a slow blob: changes the order
    /// in which concurrent downloads finish).
    Delay(Duration),
    /// Answer `status` with a distribution error body `{code, message, detail}` (no
    /// body to a HEAD), without forwarding: a registry dialect such as HEAD answered
    /// 405, `BLOB_UPLOAD_INVALID`, `MANIFEST_INVALID`, `NAME_UNKNOWN`, `NAME_INVALID`
    /// or `BLOB_UNKNOWN`.
    Refuse {
        status: u16,
        code: &'static str,
        message: String,
        detail: String,
    },
}

impl Fault {
    /// [`Fault::Refuse`] with no detail.
    pub fn refuse(status: u16, code: &'static str, message: &str) -> Fault {
        Fault::Refuse {
            status,
            code,
            message: message.to_string(),
            detail: String::new(),
        }
    }
}

/// Which of a rule's matching requests get the fault.
#[derive(Debug, Clone, Copy)]
pub enum When {
    Always,
    /// The first n matching requests.
    First(usize),
    /// Every nth matching request (the nth, 2nth, ...).
    Every(usize),
}

/// A method (or `*`), a path substring, a fault and when to inject it.
#[derive(Debug, Clone)]
pub struct Rule {
    pub method: String,
    pub path_contains: String,
    pub fault: Fault,
    pub when: When,
    /// Only requests that carry a body (`Some(true)`) or none (`Some(false)`).
    pub with_body: Option<bool>,
    /// Only requests whose `Content-Type` starts with this.
    pub content_type: Option<String>,
}

impl Rule {
    /// `fault` on every `method` request whose path contains `path_contains`.
    pub fn new(method: &str, path_contains: &str, fault: Fault) -> Rule {
        Rule {
            method: method.to_string(),
            path_contains: path_contains.to_string(),
            fault,
            when: When::Always,
            with_body: None,
            content_type: None,
        }
    }
    /// Only requests that carry a body (a monolithic upload `PUT`), or only those that
    /// do not.
    pub fn with_body(mut self, body: bool) -> Rule {
        self.with_body = Some(body);
        self
    }
    /// Only requests whose `Content-Type` starts with `media_type`.
    pub fn content_type(mut self, media_type: &str) -> Rule {
        self.content_type = Some(media_type.to_string());
        self
    }
    pub fn first(mut self, n: usize) -> Rule {
        self.when = When::First(n);
        self
    }
    pub fn every(mut self, n: usize) -> Rule {
        self.when = When::Every(n);
        self
    }
    fn matches(&self, req: &Request) -> bool {
        (self.method == "*" || self.method == req.method)
            && req.path.contains(&self.path_contains)
            && self.with_body.is_none_or(|b| b == has_body(req))
            && self.content_type.as_deref().is_none_or(|t| {
                req.header("content-type")
                    .is_some_and(|c| c.trim().starts_with(t))
            })
    }
    fn fires(&self, nth: usize) -> bool {
        match self.when {
            When::Always => true,
            When::First(n) => nth <= n,
            When::Every(n) => n > 0 && nth.is_multiple_of(n),
        }
    }
}

/// One request as a server of this module saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `registry` (the proxy) or `realm` (the token server).
    pub server: &'static str,
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    /// The fault injected, if any.
    pub fault: Option<String>,
}

/// A parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Lowercased names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Bearer mode: the credentials the realm accepts and the tokens it handed out.
struct Bearer {
    user: String,
    pass: String,
    realm: String,
    issued: Mutex<Vec<String>>,
}

struct State {
    upstream: String,
    rules: Vec<(Rule, AtomicUsize)>,
    seen: Mutex<Vec<Seen>>,
    bearer: Option<Bearer>,
    stop: Arc<AtomicBool>,
}

/// The proxy (and, in Bearer mode, its token server).
pub struct FaultyProxy {
    state: Arc<State>,
    addr: String,
    servers: Vec<Server>,
}

impl FaultyProxy {
    /// A proxy to `upstream` (`http://127.0.0.1:PORT`) injecting `rules`.
    pub fn start(upstream: &str, rules: Vec<Rule>) -> FaultyProxy {
        FaultyProxy::launch(upstream, rules, None)
    }

    /// Like [`start`](Self::start), and the proxy demands Bearer tokens from its own
    /// token server, which hands them out for Basic `user`/`pass`. Forwarded requests
    /// lose their `Authorization` (the upstream is anonymous).
    pub fn bearer(upstream: &str, rules: Vec<Rule>, user: &str, pass: &str) -> FaultyProxy {
        FaultyProxy::launch(upstream, rules, Some((user, pass)))
    }

    fn launch(upstream: &str, rules: Vec<Rule>, bearer: Option<(&str, &str)>) -> FaultyProxy {
        let stop = Arc::new(AtomicBool::new(false));
        let realm_listener = bearer.map(|_| bind());
        let bearer = bearer
            .zip(realm_listener.as_ref())
            .map(|((u, p), l)| Bearer {
                user: u.to_string(),
                pass: p.to_string(),
                realm: format!("http://{}/token", l.local_addr().unwrap()),
                issued: Mutex::new(Vec::new()),
            });
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            rules: rules
                .into_iter()
                .map(|r| (r, AtomicUsize::new(0)))
                .collect(),
            seen: Mutex::new(Vec::new()),
            bearer,
            stop: stop.clone(),
        });
        let listener = bind();
        let addr = listener.local_addr().unwrap().to_string();
        let mut servers = vec![Server::start(listener, stop.clone(), {
            let state = state.clone();
            move |req, r, s| serve_registry(&state, req, r, s)
        })];
        if let Some(l) = realm_listener {
            servers.push(Server::start(l, stop, {
                let state = state.clone();
                move |req, r, s| serve_realm(&state, req, r, s)
            }));
        }
        FaultyProxy {
            state,
            addr,
            servers,
        }
    }

    /// `127.0.0.1:PORT`: a loopback registry, so airlock speaks plain HTTP to it.
    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    /// Every request seen so far (registry and realm), in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// How many faults were injected.
    pub fn injected(&self) -> usize {
        self.seen().iter().filter(|s| s.fault.is_some()).count()
    }

    /// The realm URL (Bearer mode).
    pub fn realm(&self) -> Option<String> {
        self.state.bearer.as_ref().map(|b| b.realm.clone())
    }

    /// Every token the realm handed out (Bearer mode).
    pub fn tokens(&self) -> Vec<String> {
        self.state
            .bearer
            .as_ref()
            .map(|b| b.issued.lock().unwrap().clone())
            .unwrap_or_default()
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        self.servers.clear();
    }
}

pub fn bind() -> TcpListener {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.set_nonblocking(true).expect("nonblocking listener");
    l
}

/// An accept loop on its own thread; joins its connection threads when dropped.
/// (Also the base of `referrers_api.rs`.)
pub struct Server {
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start<F>(listener: TcpListener, stop: Arc<AtomicBool>, handler: F) -> Server
    where
        F: Fn(Request, &mut BufReader<TcpStream>, &mut TcpStream) + Send + Sync + 'static,
    {
        let handler = Arc::new(handler);
        let stop2 = stop.clone();
        let acceptor = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(600);
            let mut workers: Vec<JoinHandle<()>> = Vec::new();
            while !stop2.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        workers.retain(|w| !w.is_finished());
                        let h = handler.clone();
                        workers.push(std::thread::spawn(move || {
                            let _ = s.set_nonblocking(false);
                            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                            let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
                            let Ok(clone) = s.try_clone() else { return };
                            let mut reader = BufReader::new(clone);
                            if let Some(req) = read_head(&mut reader) {
                                h(req, &mut reader, &mut s);
                            }
                            let _ = s.flush();
                            let _ = s.shutdown(Shutdown::Both);
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            for w in workers {
                let _ = w.join();
            }
        });
        Server {
            stop,
            acceptor: Some(acceptor),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

/// Reads a request head (`httparse`); the body is left in `reader`.
fn read_head(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 64 * 1024 || reader.read_until(b'\n', &mut head).ok()? == 0 {
            return None;
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(&head).ok()?;
    let headers = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    Some(Request {
        method: req.method?.to_string(),
        path: req.path?.to_string(),
        headers,
        body: Vec::new(),
    })
}

/// True when the request announces a body.
fn has_body(req: &Request) -> bool {
    req.header("transfer-encoding").is_some()
        || req
            .header("content-length")
            .is_some_and(|v| v.trim() != "0")
}

/// Reads the body (`Content-Length` or chunked), at most `limit` bytes of it; false
/// when the connection ended first.
pub fn read_body(reader: &mut BufReader<TcpStream>, req: &mut Request, limit: usize) -> bool {
    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        return match read_chunked(reader) {
            Some(b) => {
                req.body = b;
                true
            }
            None => false,
        };
    }
    let len: usize = req
        .header("content-length")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let want = len.min(limit).min(256 * 1024 * 1024);
    req.body = Vec::with_capacity(want.min(1 << 20));
    let got = reader
        .take(want as u64)
        .read_to_end(&mut req.body)
        .unwrap_or(0);
    got == want
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    for _ in 0..1_000_000 {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let size = usize::from_str_radix(line.trim().split(';').next()?, 16).ok()?;
        if size == 0 {
            let mut end = String::new();
            reader.read_line(&mut end).ok()?;
            return Some(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).ok()?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).ok()?;
    }
    None
}

/// The fault for `req`, counting it against every matching rule.
fn pick_fault(state: &State, req: &Request) -> Option<Fault> {
    let mut chosen = None;
    for (rule, count) in &state.rules {
        if rule.matches(req) {
            let nth = count.fetch_add(1, Ordering::SeqCst) + 1;
            if chosen.is_none() && rule.fires(nth) {
                chosen = Some(rule.fault.clone());
            }
        }
    }
    chosen
}

fn log(state: &State, server: &'static str, req: &Request, fault: Option<&Fault>) {
    state.seen.lock().unwrap().push(Seen {
        server,
        method: req.method.clone(),
        path: req.path.clone(),
        authorization: req.header("authorization").map(str::to_string),
        fault: fault.map(|f| format!("{f:?}")),
    });
}

fn serve_registry(
    state: &State,
    mut req: Request,
    reader: &mut BufReader<TcpStream>,
    s: &mut TcpStream,
) {
    let fault = pick_fault(state, &req);
    let upload = has_body(&req);
    if let (Some(Fault::DropAfter(k)), true) = (&fault, upload) {
        // Take `k` bytes of the upload, then hang up on the client mid-body.
        log(state, "registry", &req, fault.as_ref());
        read_body(reader, &mut req, *k);
        return;
    }
    if !read_body(reader, &mut req, usize::MAX) {
        return;
    }
    if let Some(b) = &state.bearer {
        let ok = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .is_some_and(|t| b.issued.lock().unwrap().iter().any(|i| i == t));
        if !ok {
            log(state, "registry", &req, None);
            let challenge = format!(r#"Bearer realm="{}",service="faulty-test""#, b.realm);
            return respond(
                s,
                401,
                &[("www-authenticate".into(), challenge)],
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            );
        }
    }
    log(state, "registry", &req, fault.as_ref());
    if state.bearer.is_some() {
        req.headers.retain(|(k, _)| k != "authorization");
    }
    match fault {
        None => {
            let (status, headers, body) = forward(state, &req);
            respond(s, status, &headers, &body);
        }
        Some(Fault::Status(code)) => respond(
            s,
            code,
            &[],
            format!(r#"{{"errors":[{{"code":"UNKNOWN","message":"injected HTTP {code}"}}]}}"#)
                .as_bytes(),
        ),
        Some(Fault::TooManyRequests { retry_after_secs }) => respond(
            s,
            429,
            &[("retry-after".into(), retry_after_secs.to_string())],
            br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"injected 429"}]}"#,
        ),
        Some(Fault::Redirect(base)) => respond(
            s,
            307,
            &[("location".into(), format!("{base}{}", req.path))],
            b"",
        ),
        Some(Fault::DropAfter(k)) => {
            let (status, headers, body) = forward(state, &req);
            write_head(s, status, &headers, body.len());
            let _ = s.write_all(&body[..k.min(body.len())]);
        }
        Some(Fault::Stall { after, pause }) => {
            let (status, headers, body) = forward(state, &req);
            if after > 0 {
                write_head(s, status, &headers, body.len());
                let _ = s.write_all(&body[..after.min(body.len())]);
                let _ = s.flush();
            }
            let until = Instant::now() + pause;
            while Instant::now() < until && !state.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Some(Fault::FlipByte) => {
            if upload && !req.body.is_empty() {
                let mid = req.body.len() / 2;
                req.body[mid] ^= 0x01;
            }
            let (status, headers, mut body) = forward(state, &req);
            if !upload && !body.is_empty() {
                let mid = body.len() / 2;
                body[mid] ^= 0x01;
            }
            respond(s, status, &headers, &body);
        }
        Some(Fault::Delay(pause)) => {
            let (status, headers, body) = forward(state, &req);
            let until = Instant::now() + pause;
            while Instant::now() < until && !state.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(10));
            }
            respond(s, status, &headers, &body);
        }
        Some(Fault::Refuse {
            status,
            code,
            message,
            detail,
        }) => {
            let body = serde_json::json!({"errors": [{
                "code": code, "message": message, "detail": detail,
            }]})
            .to_string();
            if req.method == "HEAD" {
                write_head(s, status, &[], 0);
            } else {
                respond(s, status, &[], body.as_bytes());
            }
        }
        Some(Fault::SetHeader(name, value)) => {
            let (status, mut headers, body) = forward(state, &req);
            headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
            headers.push((name.to_string(), value));
            respond(s, status, &headers, &body);
        }
    }
}

/// The token server: a token for the right Basic credentials, 401 otherwise.
fn serve_realm(
    state: &State,
    mut req: Request,
    reader: &mut BufReader<TcpStream>,
    s: &mut TcpStream,
) {
    if !read_body(reader, &mut req, 1 << 20) {
        return;
    }
    log(state, "realm", &req, None);
    let Some(b) = &state.bearer else { return };
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", b.user, b.pass))
    );
    if req.header("authorization") != Some(expected.as_str()) {
        return respond(
            s,
            401,
            &[],
            br#"{"details":"incorrect username or password"}"#,
        );
    }
    let mut issued = b.issued.lock().unwrap();
    let token = format!("sekrit-token-{}-{}", std::process::id(), issued.len());
    issued.push(token.clone());
    let body = format!(r#"{{"token":"{token}","expires_in":300}}"#);
    respond(s, 200, &[], body.as_bytes());
}

/// The upstream's answer (status, headers without framing ones, body).
fn forward(state: &State, req: &Request) -> (u16, Vec<(String, String)>, Vec<u8>) {
    forward_to(&state.upstream, req)
}

/// `req` sent to `upstream` (`http://127.0.0.1:PORT`): its answer (status, headers
/// without framing ones, body).
pub fn forward_to(upstream: &str, req: &Request) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let uri = format!("{upstream}{}", req.path);
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
        // So the registry's Location headers point back at the proxy.
        b = b.header("x-forwarded-host", host);
    }
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent();
    let result = if matches!(req.method.as_str(), "POST" | "PUT" | "PATCH") {
        agent.run(b.body(req.body.clone()).unwrap())
    } else {
        agent.run(b.body(()).unwrap())
    };
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => {
            let body = format!(r#"{{"errors":[{{"code":"UNKNOWN","message":"proxy: {e}"}}]}}"#);
            return (502, Vec::new(), body.into_bytes());
        }
    };
    let status = resp.status().as_u16();
    let headers: Vec<(String, String)> = resp
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
    if req.method == "HEAD" {
        return (status, headers, Vec::new());
    }
    let body = resp
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap_or_default();
    (status, headers, body)
}

fn write_head(s: &mut TcpStream, status: u16, headers: &[(String, String)], len: usize) {
    let mut out = format!("HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {len}\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let _ = s.write_all(out.as_bytes());
}

pub fn respond(s: &mut TcpStream, status: u16, headers: &[(String, String)], body: &[u8]) {
    write_head(s, status, headers, body.len());
    let _ = s.write_all(body);
}

/// Counts of requests by (server, method), for reports.
pub fn tally(seen: &[Seen]) -> HashMap<(String, String), usize> {
    let mut m = HashMap::new();
    for s in seen {
        *m.entry((s.server.to_string(), s.method.clone()))
            .or_insert(0) += 1;
    }
    m
}
