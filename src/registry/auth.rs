//! Authentication state shared by every thread of one client: the challenge each
//! registry last sent, the credentials looked up for it, and bearer tokens per
//! (registry, scope) until they expire.
//!
//! A registry is first spoken to anonymously; its 401 challenge is remembered, so later
//! requests (other repositories, other threads) authenticate up front. `Basic` means
//! the credentials on every request; `Bearer` means a token from the challenge's realm
//! for the scope of the request. Locks are never held across network calls: two
//! threads missing the same token may both fetch one, which is harmless.
//!
//! A token or Basic header is only attached by the request layer to the origin of the
//! registry that challenged (see `request.rs`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use super::RegistryError;
use super::challenge::{Challenge, Scheme};
use super::credentials::{CredentialStore, Credentials, Secret};
use crate::sync::lock;

/// Tokens are refreshed this long before they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);
/// `expires_in` when the token server gives none (distribution's token spec default).
const DEFAULT_EXPIRES_IN: u64 = 60;

/// The access a request needs: `repository:<repo>:pull[,push]`, plus pull on a mount source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope {
    pub repository: String,
    pub push: bool,
    /// The repository a blob is mounted from (needs pull).
    pub from: Option<String>,
}

impl Scope {
    pub fn pull(repository: &str) -> Scope {
        Scope {
            repository: repository.to_string(),
            push: false,
            from: None,
        }
    }
    pub fn push(repository: &str) -> Scope {
        Scope {
            repository: repository.to_string(),
            push: true,
            from: None,
        }
    }

    /// The scope strings of a token request.
    pub fn strings(&self) -> Vec<String> {
        let actions = if self.push { "pull,push" } else { "pull" };
        let mut v = Vec::new();
        if !self.repository.is_empty() {
            v.push(format!("repository:{}:{actions}", self.repository));
        } else if self.from.is_none() {
            // No repository: the registry-wide catalog (`GET /v2/_catalog`).
            v.push("registry:catalog:*".to_string());
        }
        if let Some(from) = &self.from
            && from != &self.repository
        {
            v.push(format!("repository:{from}:pull"));
        }
        v
    }

    pub fn action(&self) -> &'static str {
        if self.push { "push to" } else { "pull from" }
    }
}

/// A bearer token; `Debug` is redacted.
#[derive(Clone)]
pub(crate) struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

struct CachedToken {
    token: Token,
    expires: Instant,
}

/// What a request carried, so a 401 can tell what to drop or whether credentials failed.
#[derive(Clone)]
pub(crate) enum Sent {
    Nothing,
    Basic(String),
    Bearer { key: String, value: String },
}

impl fmt::Debug for Sent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Sent::Nothing => "Nothing",
            Sent::Basic(_) => "Basic(<redacted>)",
            Sent::Bearer { .. } => "Bearer(<redacted>)",
        })
    }
}

impl Sent {
    /// The `Authorization` header value, if any.
    pub fn header(&self) -> Option<&str> {
        match self {
            Sent::Nothing => None,
            Sent::Basic(v) | Sent::Bearer { value: v, .. } => Some(v),
        }
    }
}

/// Shared auth state.
pub(crate) struct Auth {
    store: CredentialStore,
    credentials: Mutex<HashMap<String, Option<Credentials>>>,
    challenges: Mutex<HashMap<String, Challenge>>,
    tokens: Mutex<HashMap<(String, String), CachedToken>>,
}

/// What the request layer must do to fetch a token (it owns the HTTP machinery).
pub(crate) struct TokenRequest {
    pub realm: String,
    pub service: Option<String>,
    pub scopes: Vec<String>,
    pub credentials: Option<Credentials>,
}

/// A token server's answer.
#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl Auth {
    pub fn new(store: CredentialStore) -> Auth {
        Auth {
            store,
            credentials: Mutex::new(HashMap::new()),
            challenges: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// The credentials for `registry` (looked up once, then cached).
    pub fn credentials(&self, registry: &str) -> Result<Option<Credentials>, RegistryError> {
        if let Some(c) = lock(&self.credentials).get(registry) {
            return Ok(c.clone());
        }
        let c = self
            .store
            .lookup(registry)
            .map_err(|source| RegistryError::Credentials {
                registry: registry.to_string(),
                source,
            })?;
        lock(&self.credentials).insert(registry.to_string(), c.clone());
        Ok(c)
    }

    pub fn challenge(&self, registry: &str) -> Option<Challenge> {
        lock(&self.challenges).get(registry).cloned()
    }

    pub(crate) fn remember_challenge(&self, registry: &str, c: Challenge) {
        lock(&self.challenges).insert(registry.to_string(), c);
    }

    /// A cached, unexpired token for `(registry, key)`.
    pub(crate) fn cached_token(&self, registry: &str, key: &str) -> Option<Token> {
        let now = Instant::now();
        let mut tokens = lock(&self.tokens);
        let k = (registry.to_string(), key.to_string());
        match tokens.get(&k) {
            Some(t) if t.expires > now => Some(t.token.clone()),
            Some(_) => {
                tokens.remove(&k);
                None
            }
            None => None,
        }
    }

    pub(crate) fn store_token(
        &self,
        registry: &str,
        key: &str,
        token: Token,
        expires_in: Duration,
    ) {
        // Refresh a little early, but never treat a short-lived token as expired at once.
        let usable = expires_in.saturating_sub(EXPIRY_MARGIN).max(expires_in / 2);
        let expires = Instant::now() + usable;
        lock(&self.tokens).insert(
            (registry.to_string(), key.to_string()),
            CachedToken { token, expires },
        );
    }

    pub(crate) fn drop_token(&self, registry: &str, key: &str) {
        lock(&self.tokens).remove(&(registry.to_string(), key.to_string()));
    }

    /// What to fetch for a Bearer `challenge` and `scope` (the challenge's own scope,
    /// if any, is added to ours).
    pub(crate) fn token_request(
        &self,
        registry: &str,
        challenge: &Challenge,
        scope: &Scope,
        use_challenge_scope: bool,
    ) -> Result<TokenRequest, RegistryError> {
        let realm = challenge
            .param("realm")
            .filter(|r| r.starts_with("https://") || r.starts_with("http://"))
            .ok_or_else(|| RegistryError::Protocol {
                registry: registry.to_string(),
                repository: scope.repository.clone(),
                what: "an authentication challenge",
                problem: "the Bearer challenge has no http(s) realm".into(),
            })?
            .to_string();
        let mut scopes = scope.strings();
        if use_challenge_scope && let Some(s) = challenge.param("scope") {
            for one in s.split(' ').filter(|s| !s.is_empty()) {
                if !scopes.iter().any(|have| have == one) {
                    scopes.push(one.to_string());
                }
            }
        }
        Ok(TokenRequest {
            realm,
            service: challenge.param("service").map(str::to_string),
            scopes,
            credentials: self.credentials(registry)?,
        })
    }
}

/// The cache key of a scope.
pub(crate) fn scope_key(scope: &Scope) -> String {
    scope.strings().join(" ")
}

/// The `Authorization: Basic` value of a username and password.
pub(crate) fn basic_header(username: &str, password: &str) -> String {
    let raw = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// `Basic` for Basic credentials (an identity token cannot do Basic).
pub(crate) fn basic_for(c: &Credentials) -> Option<String> {
    match &c.secret {
        Secret::Basic { username, password } => Some(basic_header(username, password)),
        Secret::IdentityToken { .. } => None,
    }
}

/// Parses a token server's JSON answer into a token and its lifetime.
pub(crate) fn parse_token_answer(bytes: &[u8]) -> Result<(Token, Duration), String> {
    let a: TokenAnswer = serde_json::from_slice(bytes)
        .map_err(|e| format!("the token server's answer is not JSON ({e})"))?;
    let token = a
        .token
        .filter(|t| !t.is_empty())
        .or(a.access_token.filter(|t| !t.is_empty()))
        .ok_or("the token server's answer has neither `token` nor `access_token`")?;
    let secs = a
        .expires_in
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_EXPIRES_IN);
    Ok((Token(token), Duration::from_secs(secs)))
}

impl Token {
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

/// True when a challenge is one airlock can answer.
pub fn usable(c: &Challenge) -> bool {
    matches!(c.scheme, Scheme::Basic | Scheme::Bearer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        assert_eq!(Scope::pull("a/b").strings(), vec!["repository:a/b:pull"]);
        assert_eq!(Scope::pull("").strings(), vec!["registry:catalog:*"]);
        let mut s = Scope::push("a/b");
        s.from = Some("c/d".into());
        assert_eq!(
            s.strings(),
            vec!["repository:a/b:pull,push", "repository:c/d:pull"]
        );
        assert_eq!(
            scope_key(&s),
            "repository:a/b:pull,push repository:c/d:pull"
        );
    }

    #[test]
    fn token_answers() {
        let (t, d) = parse_token_answer(br#"{"token":"abc","expires_in":300}"#).unwrap();
        assert_eq!(t.bearer(), "Bearer abc");
        assert_eq!(d, Duration::from_secs(300));
        let (t, d) = parse_token_answer(br#"{"access_token":"xyz"}"#).unwrap();
        assert_eq!(t.bearer(), "Bearer xyz");
        assert_eq!(d, Duration::from_secs(60));
        assert!(parse_token_answer(br#"{"nothing":1}"#).is_err());
        assert!(!format!("{t:?}").contains("xyz"));
    }

    #[test]
    fn token_cache_expires_and_drops() {
        let dir = tempfile::tempdir().unwrap();
        let a = Auth::new(CredentialStore::new(Some(dir.path()), None));
        a.store_token("r", "k", Token("t".into()), Duration::from_secs(60));
        assert!(a.cached_token("r", "k").is_some());
        assert!(a.cached_token("r", "other").is_none());
        assert!(a.cached_token("other", "k").is_none());
        a.drop_token("r", "k");
        assert!(a.cached_token("r", "k").is_none());
        // Shorter than the margin: still usable for half its life.
        a.store_token("r", "k", Token("t".into()), Duration::from_secs(2));
        assert!(a.cached_token("r", "k").is_some());
        a.store_token("r", "k", Token("t".into()), Duration::ZERO);
        assert!(a.cached_token("r", "k").is_none());
    }

    #[test]
    fn basic_header_shape() {
        assert_eq!(basic_header("u", "p"), "Basic dTpw");
        let s = Sent::Basic(basic_header("u", "secret"));
        assert!(!format!("{s:?}").contains("dTpz"));
    }
}
