//! An OCI 1.1 referrers API in front of a real `docker-registry` (distribution 2.8 has
//! none): the one place a mock is right, since no registry installable here has the API.
//!
//! [`ReferrersApi::start`] listens on loopback and forwards every request to the
//! upstream registry (with `faulty.rs`'s forwarding), except:
//! - `GET /v2/<name>/referrers/<digest>[?artifactType=T]`: an OCI index of the
//!   referrers it knows for that subject in that repository (an empty index for none),
//!   filtered by `artifactType` when asked (then `OCI-Filters-Applied: artifactType`),
//!   in pages of [`ReferrersApi::set_page_size`] descriptors (default: all in one) with a
//!   `Link: <…?page=N>; rel="next"` header to the next page;
//! - `PUT /v2/<name>/manifests/<ref>` whose body has a `subject`: forwarded, and when
//!   the registry took it (201), the manifest is recorded as a referrer of its subject
//!   (descriptor with `artifactType` — its own, else its config's media type — and its
//!   annotations, as the spec says) and the answer carries `OCI-Subject: <digest>`.
//!
//! Referrers can also be told about directly ([`ReferrersApi::add_referrer`]). Every
//! referrers request is counted ([`ReferrersApi::referrers_requests`]) and every request
//! is logged ([`ReferrersApi::seen`]), so tests can check "one request per manifest".
//! Dropping it stops the server and joins its threads.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::faulty::{Request, Server, bind, forward_to, read_body, respond};
use super::images::{OCI_INDEX, sha256};

struct State {
    upstream: String,
    page_size: AtomicUsize,
    /// (repository, subject digest) → descriptors, in the order they arrived.
    referrers: Mutex<BTreeMap<(String, String), Vec<Value>>>,
    referrers_requests: AtomicUsize,
    seen: Mutex<Vec<(String, String)>>,
}

/// The referrers API server. See the module doc.
pub struct ReferrersApi {
    state: Arc<State>,
    addr: String,
    _server: Server,
}

impl ReferrersApi {
    /// A server forwarding to `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> ReferrersApi {
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            page_size: AtomicUsize::new(usize::MAX),
            referrers: Mutex::new(BTreeMap::new()),
            referrers_requests: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        });
        let listener = bind();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let server = Server::start(listener, stop, {
            let state = state.clone();
            move |mut req, reader, s| {
                if !read_body(reader, &mut req, usize::MAX) {
                    return;
                }
                state
                    .seen
                    .lock()
                    .unwrap()
                    .push((req.method.clone(), req.path.clone()));
                let (status, headers, body) = handle(&state, &req);
                respond(s, status, &headers, &body);
            }
        });
        ReferrersApi {
            state,
            addr,
            _server: server,
        }
    }

    /// `127.0.0.1:PORT`: a loopback registry, so airlock speaks plain HTTP to it.
    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    /// Descriptors per page of a referrers answer (at least 1).
    pub fn set_page_size(&self, n: usize) {
        self.state.page_size.store(n.max(1), Ordering::SeqCst);
    }

    /// Records `descriptor` as a referrer of `subject` in `repository`, as if a manifest
    /// with that subject had been PUT through the server.
    pub fn add_referrer(&self, repository: &str, subject: &str, descriptor: Value) {
        self.state
            .referrers
            .lock()
            .unwrap()
            .entry((repository.to_string(), subject.to_string()))
            .or_default()
            .push(descriptor);
    }

    /// The referrers known for `subject` in `repository`.
    pub fn referrers(&self, repository: &str, subject: &str) -> Vec<Value> {
        self.state
            .referrers
            .lock()
            .unwrap()
            .get(&(repository.to_string(), subject.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// How many `GET …/referrers/…` requests (pages included) were answered.
    pub fn referrers_requests(&self) -> usize {
        self.state.referrers_requests.load(Ordering::SeqCst)
    }

    /// Every request seen so far: (method, path with query).
    pub fn seen(&self) -> Vec<(String, String)> {
        self.state.seen.lock().unwrap().clone()
    }
}

type Answer = (u16, Vec<(String, String)>, Vec<u8>);

fn handle(state: &State, req: &Request) -> Answer {
    let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
    if let Some(rest) = path.strip_prefix("/v2/")
        && let Some((name, subject)) = rest.rsplit_once("/referrers/")
        && matches!(req.method.as_str(), "GET" | "HEAD")
    {
        state.referrers_requests.fetch_add(1, Ordering::SeqCst);
        return referrers_page(state, name, subject, query);
    }
    if req.method == "PUT"
        && let Some(rest) = path.strip_prefix("/v2/")
        && let Some((name, _)) = rest.rsplit_once("/manifests/")
        && let Ok(manifest) = serde_json::from_slice::<Value>(&req.body)
        && let Some(subject) = manifest["subject"]["digest"].as_str()
    {
        let (status, mut headers, body) = forward_to(&state.upstream, req);
        if status == 201 {
            let media_type = manifest["mediaType"]
                .as_str()
                .map(str::to_string)
                .or_else(|| req.header("content-type").map(str::to_string))
                .unwrap_or_default();
            let mut d = json!({
                "mediaType": media_type,
                "digest": sha256(&req.body),
                "size": req.body.len(),
            });
            let artifact_type = manifest["artifactType"]
                .as_str()
                .or(manifest["config"]["mediaType"].as_str());
            if let Some(t) = artifact_type {
                d["artifactType"] = json!(t);
            }
            if manifest["annotations"].is_object() {
                d["annotations"] = manifest["annotations"].clone();
            }
            let key = (name.to_string(), subject.to_string());
            let mut all = state.referrers.lock().unwrap();
            let list = all.entry(key).or_default();
            if !list.iter().any(|x| x["digest"] == d["digest"]) {
                list.push(d);
            }
            headers.push(("OCI-Subject".into(), subject.to_string()));
        }
        return (status, headers, body);
    }
    forward_to(&state.upstream, req)
}

/// One page of the referrers of `subject` in `name`.
fn referrers_page(state: &State, name: &str, subject: &str, query: &str) -> Answer {
    let param = |key: &str| {
        query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.replace("%2F", "/").replace("%2B", "+"))
    };
    let filter = param("artifactType");
    let page: usize = param("page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let all: Vec<Value> = state
        .referrers
        .lock()
        .unwrap()
        .get(&(name.to_string(), subject.to_string()))
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|d| {
            filter
                .as_deref()
                .is_none_or(|t| d["artifactType"].as_str() == Some(t))
        })
        .collect();
    let size = state.page_size.load(Ordering::SeqCst);
    let start = page.saturating_mul(size).min(all.len());
    let end = start.saturating_add(size).min(all.len());
    let body = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": all[start..end],
    });
    let mut headers = vec![("Content-Type".to_string(), OCI_INDEX.to_string())];
    if filter.is_some() {
        headers.push(("OCI-Filters-Applied".into(), "artifactType".into()));
    }
    if end < all.len() {
        let mut next = format!("/v2/{name}/referrers/{subject}?page={}", page + 1);
        if let Some(t) = &filter {
            next.push_str(&format!("&artifactType={t}"));
        }
        headers.push(("Link".into(), format!("<{next}>; rel=\"next\"")));
    }
    (200, headers, serde_json::to_vec(&body).unwrap())
}
