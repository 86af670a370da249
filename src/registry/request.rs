//! One logical registry request, end to end: attach credentials, follow redirects by
//! hand, answer 401 challenges, retry transient failures with backoff, and turn error
//! answers into [`RegistryError`]s that name the registry, repository and reference.
//!
//! The order is deliberate: a 401 gets exactly one re-authentication (a stale cached
//! token is dropped and refetched once); 429/5xx and connection errors get bounded,
//! jittered backoff (honouring `Retry-After`); a request whose body is a one-shot
//! stream is never replayed. `Authorization` is attached only when the URL's origin is
//! the registry's own, on the first hop and on every redirect hop.

use std::io::Read;
use std::time::Duration;

use ureq::http::{self, Method, Response};
use ureq::{Body, SendBody};

use super::auth::{self, Scope, Sent};
use super::challenge::{self, Scheme};
use super::error::{ErrorBody, Kind, Op, display_url, is_tls, is_transient_status};
use super::transport::{self, RetryPolicy};
use super::{Inner, RegistryError};

/// At most this many redirects per request.
const MAX_REDIRECTS: usize = 5;
/// Error bodies are read up to this size.
const MAX_ERROR_BODY: u64 = 64 * 1024;
/// Token answers are read up to this size.
const MAX_TOKEN_BODY: u64 = 1024 * 1024;

/// What a request sends.
pub(crate) enum ReqBody<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// A one-shot stream of exactly `len` bytes: sent once, never replayed.
    Stream {
        reader: Option<&'a mut dyn Read>,
        len: u64,
    },
}

impl ReqBody<'_> {
    fn replayable(&self) -> bool {
        match self {
            ReqBody::Stream { reader, .. } => reader.is_some(),
            _ => true,
        }
    }
}

/// One request to a registry.
pub(crate) struct Req<'a> {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: ReqBody<'a>,
}

impl<'a> Req<'a> {
    pub fn new(method: Method, url: String) -> Req<'a> {
        Req {
            method,
            url,
            headers: Vec::new(),
            body: ReqBody::Empty,
        }
    }
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Req<'a> {
        self.headers.push((name, value.into()));
        self
    }
    pub fn body(mut self, body: ReqBody<'a>) -> Req<'a> {
        self.body = body;
        self
    }
}

/// What a request is about, for auth scope and error messages.
#[derive(Debug, Clone)]
pub(crate) struct Ctx<'a> {
    pub registry: &'a str,
    pub repository: &'a str,
    /// Tag or digest ("" when none).
    pub reference: &'a str,
    pub kind: Kind,
    /// Short description, such as "GET manifest" (used in messages).
    pub what: Op,
    pub scope: Scope,
}

/// A final (non-redirect) response and the URL that gave it.
pub struct Answer {
    pub response: Response<Body>,
    pub url: String,
}

impl Answer {
    pub fn status(&self) -> u16 {
        self.response.status().as_u16()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
    }

    /// One page of a paginated list (`tags/list`, `referrers`): its body, at most
    /// `limit` bytes, and the next page's URL from the `Link` header, resolved against
    /// the URL that answered.
    pub(crate) fn into_page(
        mut self,
        limit: u64,
    ) -> Result<(Vec<u8>, Option<String>), RegistryError> {
        let next = self
            .header("link")
            .and_then(transport::next_link)
            .and_then(|l| transport::resolve(&self.url, &l));
        let bytes = self
            .response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| RegistryError::Transport {
                url: display_url(&self.url),
                tls: false,
                source: e,
            })?;
        Ok((bytes, next))
    }
}

impl Inner {
    /// Base URL of `registry`, e.g. `https://registry-1.docker.io`.
    pub fn base(&self, registry: &str) -> String {
        transport::base_url(registry, &self.opts.insecure_hosts)
    }

    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            attempts: self.opts.retry_attempts.max(1),
            base: self.opts.retry_base_delay,
            max_delay: Duration::from_secs(30),
            max_retry_after: self.opts.max_retry_after,
        }
    }

    /// Runs `req`, returning a 2xx (or other non-error) answer; error statuses become
    /// [`RegistryError`]s.
    pub(crate) fn execute(
        &self,
        ctx: &Ctx<'_>,
        req: &mut Req<'_>,
    ) -> Result<Answer, RegistryError> {
        let policy = self.policy();
        let registry_origin = transport::origin(&self.base(ctx.registry));
        let mut failures = 0u32;
        let mut reauthenticated = false;
        loop {
            let sent = self.authorization(ctx)?;
            let result = self.send_following(req, sent.header(), registry_origin.as_deref());
            let answer = match result {
                Ok(a) => a,
                Err(e) => {
                    failures += 1;
                    if !e.is_transient() || !req.body.replayable() {
                        return Err(e);
                    }
                    // A refused connection is retried once (a registry restarting), not
                    // for the whole backoff: most often nothing listens on that port.
                    let refused = e.unreachable() == Some(super::error::Unreachable::Refused);
                    if failures >= policy.attempts || (refused && failures >= 2) {
                        return Err(exhausted(ctx, failures, e));
                    }
                    std::thread::sleep(policy.delay(failures, None));
                    continue;
                }
            };
            let status = answer.status();
            if status == 401 && !reauthenticated && req.body.replayable() {
                reauthenticated = true;
                if self.on_unauthorized(ctx, &answer, &sent)? {
                    continue;
                }
            }
            if status < 400 {
                return Ok(answer);
            }
            let retry_after = transport::parse_retry_after(answer.header("retry-after"));
            let err = self.status_error(ctx, answer, &sent)?;
            if is_transient_status(status) && req.body.replayable() {
                failures += 1;
                if failures >= policy.attempts {
                    return Err(exhausted(ctx, failures, err));
                }
                std::thread::sleep(policy.delay(failures, retry_after));
                continue;
            }
            return Err(err);
        }
    }

    /// The `Authorization` for a request, from what the registry asked for before.
    fn authorization(&self, ctx: &Ctx<'_>) -> Result<Sent, RegistryError> {
        let Some(challenge) = self.auth.challenge(ctx.registry) else {
            return Ok(Sent::Nothing);
        };
        match challenge.scheme {
            Scheme::Basic => Ok(self
                .auth
                .credentials(ctx.registry)?
                .as_ref()
                .and_then(auth::basic_for)
                .map_or(Sent::Nothing, Sent::Basic)),
            Scheme::Bearer => {
                let key = auth::scope_key(&ctx.scope);
                if let Some(t) = self.auth.cached_token(ctx.registry, &key) {
                    return Ok(Sent::Bearer {
                        key,
                        value: t.bearer(),
                    });
                }
                let request =
                    self.auth
                        .token_request(ctx.registry, &challenge, &ctx.scope, false)?;
                let (token, ttl) = self.fetch_token(ctx, &request)?;
                self.auth
                    .store_token(ctx.registry, &key, token.clone(), ttl);
                Ok(Sent::Bearer {
                    key,
                    value: token.bearer(),
                })
            }
            Scheme::Other(_) => Ok(Sent::Nothing),
        }
    }

    /// Handles a 401: remembers the challenge, drops a stale token, fetches a new one.
    /// True when the request is worth sending again.
    fn on_unauthorized(
        &self,
        ctx: &Ctx<'_>,
        answer: &Answer,
        sent: &Sent,
    ) -> Result<bool, RegistryError> {
        let challenges: Vec<_> = answer
            .response
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(challenge::parse)
            .collect();
        let Some(chosen) = challenge::pick(&challenges).cloned() else {
            return Ok(false);
        };
        if !auth::usable(&chosen) {
            return Ok(false);
        }
        self.auth.remember_challenge(ctx.registry, chosen.clone());
        if let Sent::Bearer { key, .. } = sent {
            self.auth.drop_token(ctx.registry, key);
        }
        match chosen.scheme {
            Scheme::Basic => {
                let creds = self.auth.credentials(ctx.registry)?;
                // Retry only when we have Basic credentials we did not send yet.
                Ok(creds.as_ref().and_then(auth::basic_for).is_some()
                    && !matches!(sent, Sent::Basic(_)))
            }
            Scheme::Bearer => {
                let key = auth::scope_key(&ctx.scope);
                let request = self
                    .auth
                    .token_request(ctx.registry, &chosen, &ctx.scope, true)?;
                let (token, ttl) = self.fetch_token(ctx, &request)?;
                self.auth.store_token(ctx.registry, &key, token, ttl);
                Ok(true)
            }
            Scheme::Other(_) => Ok(false),
        }
    }

    /// Asks a token realm for a token (GET with Basic or anonymous; POST with an
    /// identity token), with the same retry policy.
    fn fetch_token(
        &self,
        ctx: &Ctx<'_>,
        request: &auth::TokenRequest,
    ) -> Result<(auth::Token, Duration), RegistryError> {
        let scope_text = request.scopes.join(" ");
        let wrap = |source: RegistryError| RegistryError::Token {
            registry: ctx.registry.to_string(),
            scope: scope_text.clone(),
            realm: display_url(&request.realm),
            source: Box::new(source),
        };
        if let Some(host) = cleartext_realm(
            &self.base(ctx.registry),
            &request.realm,
            &self.opts.insecure_hosts,
        ) {
            return Err(wrap(RegistryError::Protocol {
                registry: ctx.registry.to_string(),
                repository: ctx.repository.to_string(),
                what: "an authentication challenge",
                problem: format!(
                    "the HTTPS registry names a plain-HTTP token realm ({}); credentials and tokens would \
                     cross the network unencrypted, so airlock refuses (add --insecure-registry {host} if that \
                     host is trusted)",
                    display_url(&request.realm)
                ),
            }));
        }
        let service = request.service.as_deref().unwrap_or("");
        let identity = request.credentials.as_ref().and_then(|c| match &c.secret {
            super::credentials::Secret::IdentityToken { token } => Some(token.as_str()),
            _ => None,
        });
        let form_body;
        let mut req = match identity {
            Some(refresh) => {
                form_body = transport::form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh),
                    ("service", service),
                    ("scope", &scope_text),
                    ("client_id", "airlock"),
                ]);
                Req::new(Method::POST, request.realm.clone())
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(ReqBody::Bytes(form_body.as_bytes()))
            }
            None => {
                let mut pairs: Vec<(&str, &str)> = Vec::new();
                if !service.is_empty() {
                    pairs.push(("service", service));
                }
                for s in &request.scopes {
                    pairs.push(("scope", s));
                }
                let mut r = Req::new(Method::GET, transport::with_query(&request.realm, &pairs));
                if let Some(basic) = request.credentials.as_ref().and_then(auth::basic_for) {
                    r = r.header("authorization", basic);
                }
                r
            }
        };
        let policy = self.policy();
        let mut failures = 0u32;
        loop {
            let result = self.send_following(&mut req, None, None);
            let err = match result {
                Ok(mut a) if a.status() < 300 => {
                    let bytes = a
                        .response
                        .body_mut()
                        .with_config()
                        .limit(MAX_TOKEN_BODY)
                        .read_to_vec()
                        .map_err(|e| {
                            wrap(RegistryError::Transport {
                                url: display_url(&a.url),
                                tls: false,
                                source: e,
                            })
                        })?;
                    return auth::parse_token_answer(&bytes).map_err(|problem| {
                        wrap(RegistryError::Protocol {
                            registry: ctx.registry.to_string(),
                            repository: ctx.repository.to_string(),
                            what: "a token request",
                            problem,
                        })
                    });
                }
                Ok(a) if a.status() == 401 || a.status() == 403 => {
                    // The token server refused the credentials (or anonymous access).
                    return Err(RegistryError::Unauthorized {
                        registry: ctx.registry.to_string(),
                        repository: ctx.repository.to_string(),
                        credentials: request.credentials.as_ref().map(|c| c.source.clone()),
                    });
                }
                Ok(a) => {
                    let token_ctx = Ctx {
                        what: Op::Token,
                        ..ctx.clone()
                    };
                    self.status_error(&token_ctx, a, &Sent::Nothing)?
                }
                Err(e) => e,
            };
            failures += 1;
            if !err.is_transient() {
                return Err(wrap(err));
            }
            if failures >= policy.attempts {
                return Err(wrap(exhausted(ctx, failures, err)));
            }
            std::thread::sleep(policy.delay(failures, None));
        }
    }

    /// Sends `req` and follows up to [`MAX_REDIRECTS`] redirects. `authorization` is
    /// attached only to URLs whose origin is `auth_origin`.
    pub(crate) fn send_following(
        &self,
        req: &mut Req<'_>,
        authorization: Option<&str>,
        auth_origin: Option<&str>,
    ) -> Result<Answer, RegistryError> {
        let mut url = req.url.clone();
        let mut method = req.method.clone();
        for _ in 0..=MAX_REDIRECTS {
            let same_origin = match auth_origin {
                Some(o) => transport::origin(&url).as_deref() == Some(o),
                None => false,
            };
            let auth = if same_origin { authorization } else { None };
            let response = self.send_one(&method, &url, req, auth)?;
            let status = response.status().as_u16();
            if !matches!(status, 301 | 302 | 303 | 307 | 308) {
                return Ok(Answer { response, url });
            }
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| transport::resolve(&url, l));
            let Some(next) = location else {
                return Ok(Answer { response, url });
            };
            if status == 303 || (matches!(status, 301 | 302) && method == Method::POST) {
                method = Method::GET;
                req.body = ReqBody::Empty;
            } else if !req.body.replayable() {
                return Err(RegistryError::Protocol {
                    registry: display_url(&url),
                    repository: String::new(),
                    what: "an upload",
                    problem: format!("it redirected a streamed upload (HTTP {status})"),
                });
            }
            url = next;
        }
        Err(RegistryError::Protocol {
            registry: display_url(&req.url),
            repository: String::new(),
            what: "a request",
            problem: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    fn send_one(
        &self,
        method: &Method,
        url: &str,
        req: &mut Req<'_>,
        authorization: Option<&str>,
    ) -> Result<Response<Body>, RegistryError> {
        let transport_err = |e: ureq::Error| RegistryError::Transport {
            url: display_url(url),
            tls: is_tls(&e),
            source: e,
        };
        let mut b = http::Request::builder().method(method.clone()).uri(url);
        for (k, v) in &req.headers {
            b = b.header(*k, v.as_str());
        }
        if let Some(a) = authorization {
            b = b.header("authorization", a);
        }
        let build_err = |e: http::Error| transport_err(ureq::Error::Http(e));
        let has_body = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
        let result = match &mut req.body {
            _ if !has_body => self.agent.run(b.body(()).map_err(build_err)?),
            ReqBody::Empty => self.agent.run(b.body(&[][..]).map_err(build_err)?),
            ReqBody::Bytes(bytes) => self.agent.run(b.body(*bytes).map_err(build_err)?),
            ReqBody::Stream { reader, len } => {
                let Some(reader) = reader.take() else {
                    return Err(RegistryError::Protocol {
                        registry: display_url(url),
                        repository: String::new(),
                        what: "an upload",
                        problem: "a streamed body cannot be sent twice".into(),
                    });
                };
                let mut limited = reader.take(*len);
                let request = b
                    .header("content-length", len.to_string())
                    .body(SendBody::from_reader(&mut limited))
                    .map_err(build_err)?;
                self.agent.run(request)
            }
        };
        result.map_err(transport_err)
    }

    /// Maps an error answer to a [`RegistryError`], reading its JSON error body.
    pub(crate) fn status_error(
        &self,
        ctx: &Ctx<'_>,
        mut answer: Answer,
        sent: &Sent,
    ) -> Result<RegistryError, RegistryError> {
        let status = answer.status();
        let body = if ctx_allows_body(&answer) {
            answer
                .response
                .body_mut()
                .with_config()
                .limit(MAX_ERROR_BODY)
                .read_to_vec()
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let e = ErrorBody::parse(&body);
        let registry = ctx.registry.to_string();
        let repository = ctx.repository.to_string();
        let reference = ctx.reference.to_string();
        Ok(match (status, e.code.as_str()) {
            (_, "BLOB_UNKNOWN" | "MANIFEST_BLOB_UNKNOWN" | "MANIFEST_UNKNOWN")
                if ctx.what == Op::PutManifest =>
            {
                RegistryError::MissingChild {
                    registry,
                    repository,
                    reference,
                    code: e.code,
                    message: e.message,
                }
            }
            (_, "MANIFEST_UNKNOWN" | "BLOB_UNKNOWN" | "BLOB_UPLOAD_UNKNOWN") | (404, "") => {
                RegistryError::NotFound {
                    kind: ctx.kind,
                    registry,
                    repository,
                    reference,
                }
            }
            (_, "NAME_UNKNOWN") => RegistryError::NotFound {
                kind: Kind::Repository,
                registry,
                repository,
                reference: String::new(),
            },
            (401, _) | (_, "UNAUTHORIZED") => {
                let credentials = match sent {
                    Sent::Nothing => None,
                    _ => self.auth.credentials(ctx.registry)?.map(|c| c.source),
                };
                RegistryError::Unauthorized {
                    registry,
                    repository,
                    credentials,
                }
            }
            (403, _) | (_, "DENIED") => RegistryError::Denied {
                registry,
                repository,
                action: ctx.scope.action(),
                message: e.message,
            },
            _ => RegistryError::Status {
                registry,
                repository,
                reference,
                what: ctx.what,
                status,
                code: e.code,
                message: e.message,
            },
        })
    }
}

fn ctx_allows_body(answer: &Answer) -> bool {
    // HEAD answers and 204s have no body to read.
    answer.status() != 204
        && answer
            .response
            .headers()
            .get("content-length")
            .is_none_or(|v| v != "0")
}

pub(crate) fn exhausted(ctx: &Ctx<'_>, attempts: u32, last: RegistryError) -> RegistryError {
    let mut target = format!("{} {}/{}", ctx.what, ctx.registry, ctx.repository);
    if !ctx.reference.is_empty() {
        target.push(if ctx.reference.contains(':') {
            '@'
        } else {
            ':'
        });
        target.push_str(ctx.reference);
    }
    RegistryError::RetriesExhausted {
        what: target,
        attempts,
        source: Box::new(last),
    }
}

/// The realm's host when an HTTPS registry (`registry_base`) names a plain-HTTP token
/// realm that the user has not accepted as plain HTTP (loopback or `--insecure-registry`):
/// credentials and tokens must not cross the network in clear.
fn cleartext_realm(registry_base: &str, realm: &str, insecure: &[String]) -> Option<String> {
    if !registry_base.starts_with("https://") {
        return None;
    }
    let rest = realm.strip_prefix("http://")?;
    let host = rest.split(['/', '?']).next().unwrap_or(rest);
    (!transport::is_plain_http(host, insecure)).then(|| host.to_string())
}

#[cfg(test)]
mod realm_tests {
    use super::*;

    #[test]
    fn an_https_registry_may_not_send_credentials_to_a_cleartext_realm() {
        let none: &[String] = &[];
        let https = "https://registry.example.com";
        assert_eq!(
            cleartext_realm(https, "http://auth.example.com/token", none).as_deref(),
            Some("auth.example.com")
        );
        assert_eq!(
            cleartext_realm(https, "https://auth.example.com/token", none),
            None
        );
        assert_eq!(
            cleartext_realm(https, "http://127.0.0.1:5001/token", none),
            None,
            "loopback is plain by rule"
        );
        let trusted = ["auth.lan:8080".to_string()];
        assert_eq!(
            cleartext_realm(https, "http://auth.lan:8080/token?x=1", &trusted),
            None
        );
        assert_eq!(
            cleartext_realm(
                "http://127.0.0.1:5000",
                "http://auth.example.com/token",
                none
            ),
            None
        );
    }
}
