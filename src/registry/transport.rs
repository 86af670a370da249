//! The HTTP layer under the client: which scheme and host a registry is spoken to on,
//! the shared ureq agent (TLS roots, timeouts, User-Agent), URL resolution for
//! `Location` headers, origin checks, and the retry/backoff policy.
//!
//! ureq is configured to follow no redirects and to return error statuses as
//! responses: the client follows redirects itself so that `Authorization` only ever
//! goes to the registry's own origin, and it maps statuses to [`RegistryError`]s
//! with the registry/repository context only it knows.
//!
//! [`RegistryError`]: super::RegistryError

use std::hash::{BuildHasher, Hasher as _};
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use ureq::http::Uri;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use super::RegistryError;

/// Builds the agent every request of one client goes through.
pub fn agent(
    ca_file: Option<&Path>,
    connect_timeout: Duration,
    read_timeout: Duration,
) -> Result<ureq::Agent, RegistryError> {
    let mut roots: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
        .certs
        .into_iter()
        .map(|der| Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    if let Some(path) = ca_file {
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|e| RegistryError::CaFile {
            path: shown.clone(),
            problem: "cannot read the file".into(),
            source: Some(e),
        })?;
        let mut found = 0;
        for item in ureq::tls::parse_pem(&pem) {
            match item {
                Ok(PemItem::Certificate(c)) => {
                    roots.push(c);
                    found += 1;
                }
                Ok(_) => {}
                Err(_) => {
                    return Err(RegistryError::CaFile {
                        path: shown,
                        problem: "it is not valid PEM".into(),
                        source: None,
                    });
                }
            }
        }
        if found == 0 {
            return Err(RegistryError::CaFile {
                path: shown,
                problem: "it holds no PEM certificate".into(),
                source: None,
            });
        }
    }
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::new_with_certs(&roots))
        .build();
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("airlock/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(connect_timeout))
        .timeout_resolve(Some(connect_timeout))
        .timeout_per_read(Some(read_timeout))
        .timeout_per_write(Some(read_timeout))
        .tls_config(tls)
        .build();
    Ok(config.new_agent())
}

/// Splits `host[:port]` (IPv6 in brackets) into host and optional port.
pub(crate) fn split_host_port(registry: &str) -> (&str, Option<&str>) {
    if let Some(rest) = registry.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            return (host, after.strip_prefix(':'));
        }
        return (registry, None);
    }
    // A bare IPv6 address (more than one colon) has no port.
    if registry.matches(':').count() > 1 {
        return (registry, None);
    }
    match registry.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (registry, None),
    }
}

/// True when `registry` is spoken to over plain HTTP: loopback (as Docker does) or
/// listed in `insecure` (`host:port` exactly, or a bare host for any port).
pub(crate) fn is_plain_http(registry: &str, insecure: &[String]) -> bool {
    let (host, _) = split_host_port(registry);
    let loopback = host.eq_ignore_ascii_case("localhost")
        || match host.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => v4.is_loopback(),
            Ok(IpAddr::V6(v6)) => v6 == Ipv6Addr::LOCALHOST,
            Err(_) => false,
        };
    loopback
        || insecure.iter().any(|entry| {
            let entry = entry
                .trim()
                .trim_start_matches("http://")
                .trim_start_matches("https://")
                .trim_end_matches('/');
            if entry.eq_ignore_ascii_case(registry) {
                return true;
            }
            let (eh, ep) = split_host_port(entry);
            ep.is_none() && eh.eq_ignore_ascii_case(host)
        })
}

/// `scheme://host[:port]` for a registry; Docker Hub is served at `registry-1.docker.io`.
pub(crate) fn base_url(registry: &str, insecure: &[String]) -> String {
    let host = match registry {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        other => other,
    };
    let scheme = if is_plain_http(registry, insecure) {
        "http"
    } else {
        "https"
    };
    format!("{scheme}://{host}")
}

/// `scheme://authority` of an absolute URL, lowercased, with the default port made
/// explicit so `https://h` and `https://h:443` are one origin.
pub fn origin(url: &str) -> Option<String> {
    let uri: Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.to_ascii_lowercase();
    let port = uri.port_u16().unwrap_or(match scheme.as_str() {
        "http" => 80,
        _ => 443,
    });
    Some(format!("{scheme}://{host}:{port}"))
}

/// Resolves a `Location` header against the URL of the request that got it
/// (RFC 3986 §5.2 for the shapes servers send: absolute, scheme-relative,
/// absolute-path, relative-path, query-only). The query of `location` is kept whole.
pub(crate) fn resolve(base: &str, location: &str) -> Option<String> {
    let location = location.trim();
    if location.is_empty() {
        return None;
    }
    let lower = location.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Some(location.to_string());
    }
    let uri: Uri = base.parse().ok()?;
    let scheme = uri.scheme_str()?;
    let authority = uri.authority()?.as_str();
    if let Some(rest) = location.strip_prefix("//") {
        return Some(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Some(format!("{scheme}://{authority}{location}"));
    }
    let path = uri.path();
    if location.starts_with('?') {
        return Some(format!("{scheme}://{authority}{path}{location}"));
    }
    let dir = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    };
    // Remove dot segments from the merged path.
    let merged = format!("{dir}{location}");
    let (merged_path, query) = match merged.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (merged, None),
    };
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = merged_path.split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == segments.len() - 1 {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if i == segments.len() - 1 {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let mut path = out.join("/");
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    Some(match query {
        Some(q) => format!("{scheme}://{authority}{path}?{q}"),
        None => format!("{scheme}://{authority}{path}"),
    })
}

/// Appends `key=value` pairs (percent-encoded) to a URL that may already have a query.
pub(crate) fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = url.to_string();
    for (k, v) in pairs {
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(&encode(k));
        out.push('=');
        out.push_str(&encode(v));
    }
    out
}

/// `application/x-www-form-urlencoded` body of `pairs`.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, QUERY_VALUE).to_string()
}

/// Bounded exponential backoff with jitter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Total attempts, at least 1.
    pub attempts: u32,
    pub base: Duration,
    /// Cap of one computed delay.
    pub max_delay: Duration,
    /// Cap of a server's `Retry-After`.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// The pause before attempt `failed + 1` after `failed` failures (1-based):
    /// `base * 2^(failed-1)`, capped, times a jitter in [0.5, 1.5).
    pub(crate) fn delay(&self, failed: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(ra) = retry_after {
            return ra.min(self.max_retry_after);
        }
        let exp = failed.saturating_sub(1).min(16);
        let raw = self.base.saturating_mul(1u32 << exp).min(self.max_delay);
        let jitter = 0.5 + (random_u64() % 1000) as f64 / 1000.0;
        raw.mul_f64(jitter)
    }
}

/// A random number from the std hasher's per-process random keys (no extra crate).
fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// `Retry-After` in seconds (the HTTP-date form is ignored: backoff applies then).
pub(crate) fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The `<url>` of a `Link` header's `rel="next"` entry.
pub(super) fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().to_ascii_lowercase();
            p == "rel=\"next\"" || p == "rel=next"
        });
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| url.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?last=x&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=x&n=2")
        );
        assert_eq!(
            next_link(r#"<https://h/p1>; rel="prev", <https://h/p3>; rel=next"#).as_deref(),
            Some("https://h/p3")
        );
        assert_eq!(next_link(r#"<https://h/p1>; rel="prev""#), None);
    }

    #[test]
    fn plain_http_decision() {
        let none: Vec<String> = vec![];
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "::1",
            "LOCALHOST:1",
        ] {
            assert!(is_plain_http(h, &none), "{h}");
        }
        for h in [
            "docker.io",
            "ghcr.io",
            "10.0.0.1:5000",
            "localhost.example",
            "[::2]:5000",
        ] {
            assert!(!is_plain_http(h, &none), "{h}");
        }
        let insecure = vec!["reg.lan:5000".to_string(), "any.lan".to_string()];
        assert!(is_plain_http("reg.lan:5000", &insecure));
        assert!(!is_plain_http("reg.lan:5001", &insecure));
        assert!(!is_plain_http("reg.lan", &insecure));
        assert!(is_plain_http("any.lan", &insecure));
        assert!(is_plain_http("any.lan:8443", &insecure));
    }

    #[test]
    fn base_urls() {
        let none: Vec<String> = vec![];
        assert_eq!(base_url("docker.io", &none), "https://registry-1.docker.io");
        assert_eq!(base_url("localhost:5000", &none), "http://localhost:5000");
        assert_eq!(base_url("ghcr.io", &none), "https://ghcr.io");
    }

    #[test]
    fn location_resolution() {
        let b = "http://r:5000/v2/a/b/blobs/uploads/";
        assert_eq!(
            resolve(b, "/v2/a/b/blobs/uploads/u1?_state=x%3D%3D&y=1").unwrap(),
            "http://r:5000/v2/a/b/blobs/uploads/u1?_state=x%3D%3D&y=1"
        );
        assert_eq!(
            resolve(b, "https://s3.example/bucket/o?sig=1").unwrap(),
            "https://s3.example/bucket/o?sig=1"
        );
        assert_eq!(
            resolve(b, "//cdn.example/x").unwrap(),
            "http://cdn.example/x"
        );
        assert_eq!(
            resolve(b, "u2?q=1").unwrap(),
            "http://r:5000/v2/a/b/blobs/uploads/u2?q=1"
        );
        assert_eq!(resolve(b, "../x").unwrap(), "http://r:5000/v2/a/b/blobs/x");
        assert_eq!(
            resolve(b, "?q=2").unwrap(),
            "http://r:5000/v2/a/b/blobs/uploads/?q=2"
        );
        assert!(resolve(b, "").is_none());
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin("https://H.example/x").unwrap(),
            "https://h.example:443"
        );
        assert_eq!(
            origin("https://h.example:443/y?z").unwrap(),
            origin("https://h.example/").unwrap()
        );
        assert_ne!(
            origin("http://h:5000/").unwrap(),
            origin("http://h:5001/").unwrap()
        );
        assert_ne!(origin("http://h/").unwrap(), origin("https://h/").unwrap());
    }

    #[test]
    fn query_building() {
        assert_eq!(
            with_query(
                "https://auth/token?x=1",
                &[("service", "reg"), ("scope", "repository:a/b:pull,push")]
            ),
            "https://auth/token?x=1&service=reg&scope=repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert_eq!(form(&[("a", "b c"), ("d", "e&f")]), "a=b%20c&d=e%26f");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(5),
        };
        let d1 = p.delay(1, None);
        assert!(d1 >= Duration::from_millis(50) && d1 < Duration::from_millis(150));
        let d10 = p.delay(10, None);
        assert!(d10 <= Duration::from_millis(1500));
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(60))),
            Duration::from_secs(5)
        );
        assert_eq!(parse_retry_after(Some(" 3 ")), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
    }
}
