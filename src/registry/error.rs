//! [`RegistryError`]: every way talking to a registry can fail, worded for the operator.
//!
//! Each variant carries the registry, repository and reference it concerns, so the
//! top-level message alone says *what* failed and *what to do*; the underlying cause
//! (an I/O or TLS error, the last error before giving up) is kept as `source` and
//! printed by the binary as "Caused by:", never repeated in the message. URLs kept in
//! errors have their query stripped (pre-signed storage URLs carry signatures), and no
//! variant ever holds a password, token or `Authorization` value.

use std::fmt;

use serde::Deserialize;

use crate::digest::Digest;

/// Errors talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The manifest, blob or repository does not exist (404, `*_UNKNOWN`).
    #[error(
        "{kind} not found on {registry}: {repository}{}",
        reference_suffix(reference)
    )]
    NotFound {
        kind: Kind,
        registry: String,
        repository: String,
        /// Tag or digest; empty for a whole repository.
        reference: String,
    },

    /// The registry wants credentials we do not have, or rejected the ones we sent.
    #[error("{}", unauthorized_message(registry, repository, credentials.as_deref()))]
    Unauthorized {
        registry: String,
        repository: String,
        /// Where the credentials that were rejected came from (`None`: we had none).
        credentials: Option<String>,
    },

    /// 403: authenticated, but not allowed.
    #[error(
        "{registry} denied access to {repository}{}: check that your account may {action} this repository",
        detail(message)
    )]
    Denied {
        registry: String,
        repository: String,
        action: &'static str,
        message: String,
    },

    /// Any other error answer, with the registry's own code and message.
    #[error(
        "{registry} answered HTTP {status}{} to {what} {repository}{}",
        code_suffix(code, message),
        reference_suffix(reference)
    )]
    Status {
        registry: String,
        repository: String,
        reference: String,
        what: Op,
        status: u16,
        code: String,
        message: String,
    },

    /// The registry could not be reached (DNS, connection, TLS, I/O, timeout).
    #[error("cannot talk to {url}{}{}", tls_hint(*tls, source), unreachable_hint(source))]
    Transport {
        url: String,
        /// True when the failure looks like a TLS/certificate problem.
        tls: bool,
        #[source]
        source: ureq::Error,
    },

    /// A manifest or index PUT refused because something it names is not in the
    /// repository (`BLOB_UNKNOWN`, `MANIFEST_BLOB_UNKNOWN`, `MANIFEST_UNKNOWN`): a missing
    /// config, layer or child manifest. `message` is the registry's own text (which
    /// often names the digest).
    #[error(
        "{registry} refused manifest {repository}{}: it says a blob or child manifest it names \
         is missing from {repository} ({code}{})",
        reference_suffix(reference),
        detail_after(message)
    )]
    MissingChild {
        registry: String,
        repository: String,
        reference: String,
        code: String,
        message: String,
    },

    /// Bytes whose digest is not the one asked for or announced.
    #[error(
        "{registry}/{repository}{}: the registry served content with digest {actual}, expected {expected}",
        reference_suffix(reference)
    )]
    DigestMismatch {
        registry: String,
        repository: String,
        reference: String,
        expected: String,
        actual: Digest,
    },

    /// A manifest bigger than airlock accepts.
    #[error(
        "the manifest {repository}{} on {registry} is larger than the {limit} bytes airlock accepts",
        reference_suffix(reference)
    )]
    TooLarge {
        registry: String,
        repository: String,
        reference: String,
        limit: u64,
    },

    /// Transient failures (connection errors, 429, 5xx) went on for every attempt.
    #[error("giving up on {what} after {attempts} attempts")]
    RetriesExhausted {
        what: String,
        attempts: u32,
        #[source]
        source: Box<RegistryError>,
    },

    /// The registry said something the protocol does not allow.
    #[error(
        "{registry} answered {what} for {repository} in a way airlock does not understand: {problem}"
    )]
    Protocol {
        registry: String,
        repository: String,
        what: &'static str,
        problem: String,
    },

    /// The token server would not hand out a token.
    #[error("cannot get an access token for {registry} ({scope}) from {realm}")]
    Token {
        registry: String,
        scope: String,
        realm: String,
        #[source]
        source: Box<RegistryError>,
    },

    /// Docker's config.json or a credential helper failed.
    #[error("cannot look up the credentials for {registry}")]
    Credentials {
        registry: String,
        #[source]
        source: super::credentials::CredentialsError,
    },

    /// `--ca-file` could not be read or holds no certificate.
    #[error("cannot load CA certificates from {path}: {problem}")]
    CaFile {
        path: String,
        problem: String,
        #[source]
        source: Option<std::io::Error>,
    },

    /// Reading the local content to upload failed.
    #[error("cannot read the content of {digest} to upload it to {registry}/{repository}")]
    UploadSource {
        registry: String,
        repository: String,
        digest: Digest,
        #[source]
        source: std::io::Error,
    },
}

/// The operation a [`RegistryError::Status`] answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    GetManifest,
    GetBlob,
    HeadBlob,
    HeadManifest,
    MountBlob,
    UploadBlob,
    PutManifest,
    ListTags,
    /// `GET /v2/<name>/referrers/<digest>` (OCI 1.1).
    Referrers,
    /// `GET /v2/_catalog`.
    Catalog,
    Token,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::GetManifest => "GET manifest",
            Op::GetBlob => "GET blob",
            Op::HeadBlob => "HEAD blob",
            Op::HeadManifest => "HEAD manifest",
            Op::MountBlob => "mount blob",
            Op::UploadBlob => "upload blob",
            Op::PutManifest => "PUT manifest",
            Op::ListTags => "list tags of",
            Op::Referrers => "list the referrers of",
            Op::Catalog => "list the repositories of",
            Op::Token => "a token request for",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a [`RegistryError::NotFound`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Manifest,
    Blob,
    Repository,
    Upload,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Manifest => "manifest",
            Kind::Blob => "blob",
            Kind::Repository => "repository",
            Kind::Upload => "upload session",
        })
    }
}

impl RegistryError {
    /// True for a missing manifest, blob or repository (also behind retries).
    pub fn is_not_found(&self) -> bool {
        match self {
            RegistryError::NotFound { .. } => true,
            RegistryError::RetriesExhausted { source, .. } => source.is_not_found(),
            _ => false,
        }
    }

    /// The registry's error code (`NAME_INVALID`, `BLOB_UPLOAD_INVALID`, ...), when it sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            RegistryError::Status { code, .. } | RegistryError::MissingChild { code, .. } => {
                Some(code.as_str()).filter(|c| !c.is_empty())
            }
            RegistryError::RetriesExhausted { source, .. } => source.code(),
            _ => None,
        }
    }

    /// The answer to a `HEAD` a registry (or a proxy in front of it) does not implement:
    /// 400, 405 or 501. It says nothing about whether the thing exists.
    pub(crate) fn is_head_unsupported(&self) -> bool {
        matches!(
            self,
            RegistryError::Status {
                status: 400 | 405 | 501,
                ..
            }
        )
    }

    /// A monolithic upload (`PUT ?digest=` with a body) refused by a registry that takes
    /// blobs only by `PATCH`: 400 `BLOB_UPLOAD_INVALID`, or 405/501 to the `PUT`.
    pub(crate) fn is_monolithic_refused(&self) -> bool {
        match self {
            RegistryError::Status { status, code, .. } => {
                (*status == 400 && code == "BLOB_UPLOAD_INVALID") || matches!(status, 405 | 501)
            }
            _ => false,
        }
    }

    /// True for missing or rejected credentials and 403s.
    pub fn is_auth(&self) -> bool {
        match self {
            RegistryError::Unauthorized { .. } | RegistryError::Denied { .. } => true,
            RegistryError::Token { source, .. } => source.is_auth(),
            _ => false,
        }
    }

    /// The HTTP status the registry answered, when the error is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::NotFound { .. } => Some(404),
            RegistryError::Unauthorized { .. } => Some(401),
            RegistryError::Denied { .. } => Some(403),
            RegistryError::Status { status, .. } => Some(*status),
            RegistryError::RetriesExhausted { source, .. } => source.status(),
            _ => None,
        }
    }

    /// The registry refused an upload because the bytes it received do not hash to the
    /// digest (`DIGEST_INVALID`).
    pub(crate) fn is_digest_rejected(&self) -> bool {
        match self {
            RegistryError::Status { code, .. } => code == "DIGEST_INVALID",
            _ => false,
        }
    }

    /// Why the registry could not be reached, when it is a reason an operator acts on.
    pub(crate) fn unreachable(&self) -> Option<Unreachable> {
        match self {
            RegistryError::Transport { source, .. } => unreachable(source),
            RegistryError::RetriesExhausted { source, .. } => source.unreachable(),
            _ => None,
        }
    }

    /// Worth another attempt: connection trouble, 429 and 5xx gateway errors.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            // A certificate does not get trusted by asking again.
            RegistryError::Transport { tls: true, .. } => false,
            // Nor does a name resolve by asking again a second later.
            RegistryError::Transport { source, .. }
                if unreachable(source) == Some(Unreachable::NoSuchHost) =>
            {
                false
            }
            RegistryError::Transport { source, .. } => transient_ureq(source),
            RegistryError::Status { status, .. } => is_transient_status(*status),
            _ => false,
        }
    }
}

pub(crate) fn is_transient_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

fn transient_ureq(e: &ureq::Error) -> bool {
    !matches!(
        e,
        ureq::Error::Tls(_)
            | ureq::Error::Rustls(_)
            | ureq::Error::Pem(_)
            | ureq::Error::BadUri(_)
            | ureq::Error::Http(_)
            | ureq::Error::RequireHttpsOnly(_)
            | ureq::Error::InvalidProxyUrl
            | ureq::Error::TlsRequired
    )
}

/// A registry that cannot be reached for a reason the operator can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unreachable {
    /// Nothing listens on the port (connection refused).
    Refused,
    /// The host name does not resolve.
    NoSuchHost,
}

/// Classifies a transport failure (see [`Unreachable`]).
pub(crate) fn unreachable(e: &ureq::Error) -> Option<Unreachable> {
    match e {
        ureq::Error::HostNotFound => Some(Unreachable::NoSuchHost),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            Some(Unreachable::Refused)
        }
        ureq::Error::Io(io) => {
            let text = io.to_string();
            (text.contains("failed to lookup address")
                || text.contains("Name or service not known")
                || text.contains("No address associated"))
            .then_some(Unreachable::NoSuchHost)
        }
        _ => None,
    }
}

/// What a connection refused or an unknown host name means for the operator.
fn unreachable_hint(source: &ureq::Error) -> &'static str {
    match unreachable(source) {
        Some(Unreachable::Refused) => {
            " (connection refused: is the registry running, and is the port right?)"
        }
        Some(Unreachable::NoSuchHost) => {
            " (the host name does not resolve: check its spelling, DNS, or /etc/hosts)"
        }
        None => "",
    }
}

/// True when `e` is a TLS/certificate failure (the message then says what to do).
pub(crate) fn is_tls(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => true,
        ureq::Error::Io(io) => io
            .get_ref()
            .map(|inner| {
                let text = inner.to_string().to_ascii_lowercase();
                text.contains("certificate")
                    || text.contains("corrupt message")
                    || text.contains("handshake")
            })
            .unwrap_or(false),
        _ => false,
    }
}

fn reference_suffix(reference: &str) -> String {
    if reference.is_empty() {
        String::new()
    } else if reference.contains(':') {
        format!("@{reference}")
    } else {
        format!(":{reference}")
    }
}

fn unauthorized_message(registry: &str, repository: &str, credentials: Option<&str>) -> String {
    match credentials {
        None => format!(
            "{registry} requires authentication for {repository}: run `docker login {registry}`"
        ),
        Some(source) => format!(
            "the credentials for {registry} in {source} were rejected for {repository}: \
             check them, or run `docker login {registry}` again"
        ),
    }
}

fn detail(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(" ({message})")
    }
}

fn detail_after(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

fn code_suffix(code: &str, message: &str) -> String {
    match (code.is_empty(), message.is_empty()) {
        (true, true) => String::new(),
        (false, true) => format!(" {code}"),
        (true, false) => format!(" ({message})"),
        (false, false) => format!(" {code} ({message})"),
    }
}

/// What a TLS failure means for the operator, from rustls' wording of it.
fn tls_hint(tls: bool, source: &ureq::Error) -> &'static str {
    if !tls {
        return "";
    }
    let text = source.to_string();
    if text.contains("UnknownIssuer") || text.contains("UnknownCA") {
        " (its TLS certificate is not trusted: it is signed by a CA that is not in the \
         system trust store; if the registry uses a private CA, pass that CA's certificate \
         with --ca-file)"
    } else if text.contains("NotValidForName") {
        " (its TLS certificate is not valid for this host name or IP address: use the name \
         the certificate was issued for)"
    } else if text.contains("Expired") || text.contains("NotValidYet") {
        " (its TLS certificate has expired or is not valid yet: check the registry's \
         certificate and this machine's clock)"
    } else {
        " (TLS failed: if the registry uses a private CA, pass it with --ca-file; \
         if it speaks plain HTTP, name it with --insecure-registry)"
    }
}

/// Longest registry error text kept in a message.
const MAX_ERROR_TEXT: usize = 300;

/// A registry's own text made safe to print: control characters (terminal escapes,
/// newlines) become spaces, runs of white space one space, and at most
/// [`MAX_ERROR_TEXT`] characters are kept.
pub(crate) fn sanitize(text: &str) -> String {
    let mut out = String::new();
    let mut space = false;
    for c in text.chars() {
        if c.is_control() || c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if out.chars().count() >= MAX_ERROR_TEXT {
            out.push('…');
            break;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    out
}

/// The first `{code, message}` of a distribution JSON error body; `message` carries
/// the `detail` too, both [`sanitize`]d.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ErrorBody {
    pub code: String,
    pub message: String,
}

impl ErrorBody {
    /// Parses `{"errors":[{"code","message","detail"}]}`; anything else gives empty fields
    /// (or, for short plain text, the text as the message).
    pub fn parse(bytes: &[u8]) -> ErrorBody {
        #[derive(Deserialize)]
        struct Errors {
            #[serde(default)]
            errors: Vec<Item>,
        }
        #[derive(Deserialize)]
        struct Item {
            #[serde(default)]
            code: String,
            #[serde(default)]
            message: String,
            #[serde(default)]
            detail: serde_json::Value,
        }
        if let Ok(e) = serde_json::from_slice::<Errors>(bytes)
            && let Some(first) = e.errors.into_iter().next()
        {
            let detail = match &first.detail {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Object(o) if o.is_empty() => String::new(),
                serde_json::Value::Array(a) if a.is_empty() => String::new(),
                other => other.to_string(),
            };
            let message = match (first.message.trim().is_empty(), detail.trim().is_empty()) {
                (_, true) => first.message,
                (true, false) => detail,
                (false, false) => format!("{}; {detail}", first.message),
            };
            return ErrorBody {
                code: sanitize(&first.code),
                message: sanitize(&message),
            };
        }
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim();
        if !text.is_empty() && text.len() <= 200 && !text.starts_with('<') && !text.starts_with('{')
        {
            return ErrorBody {
                code: String::new(),
                message: sanitize(text),
            };
        }
        ErrorBody::default()
    }
}

/// Drops the query and fragment of a URL (they may carry signatures) for messages.
pub(crate) fn display_url(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    url[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_distribution_error_bodies() {
        let b = ErrorBody::parse(
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#,
        );
        assert_eq!(b.code, "MANIFEST_UNKNOWN");
        assert_eq!(b.message, r#"manifest unknown; {"Tag":"x"}"#);
        let b = ErrorBody::parse(
            b"{\"errors\":[{\"code\":\"BLOB_UPLOAD_INVALID\",\"message\":\"use PATCH\\u001b[31m\\nnow\",\"detail\":\"only chunked\"}]}",
        );
        assert_eq!(b.message, "use PATCH [31m now; only chunked");
        let long = format!(
            r#"{{"errors":[{{"code":"X","message":"{}"}}]}}"#,
            "a".repeat(5000)
        );
        assert!(ErrorBody::parse(long.as_bytes()).message.chars().count() <= MAX_ERROR_TEXT + 1);
        assert_eq!(ErrorBody::parse(b"<html>oops</html>"), ErrorBody::default());
        assert_eq!(
            ErrorBody::parse(b"404 page not found\n").message,
            "404 page not found"
        );
    }

    #[test]
    fn tls_failures_say_what_to_do_and_are_not_retried() {
        let tls = |text: &str| {
            let source = ureq::Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                text.to_string(),
            ));
            RegistryError::Transport {
                url: "https://10.0.0.1:5000/v2/".into(),
                tls: is_tls(&source),
                source,
            }
        };
        let e = tls("invalid peer certificate: UnknownIssuer");
        assert!(!e.is_transient());
        let text = e.to_string();
        assert!(
            text.contains("not trusted") && text.contains("--ca-file"),
            "{text}"
        );
        let e = tls("invalid peer certificate: NotValidForName");
        assert!(
            e.to_string().contains("not valid for this host name"),
            "{e}"
        );
        let e = tls("invalid peer certificate: Expired");
        assert!(e.to_string().contains("expired"), "{e}");
        let e = tls("received corrupt message of type InvalidContentType");
        assert!(e.to_string().contains("--insecure-registry"), "{e}");
        assert!(!e.is_transient());
        let e = tls("connection reset by peer");
        assert!(e.is_transient() && !e.to_string().contains("TLS"), "{e}");
    }

    #[test]
    fn messages_name_the_target() {
        let e = RegistryError::NotFound {
            kind: Kind::Manifest,
            registry: "docker.io".into(),
            repository: "library/nginx".into(),
            reference: "1.25".into(),
        };
        assert_eq!(
            e.to_string(),
            "manifest not found on docker.io: library/nginx:1.25"
        );
        assert!(e.is_not_found());
        let e = RegistryError::Unauthorized {
            registry: "r.lan:5000".into(),
            repository: "a/b".into(),
            credentials: None,
        };
        assert!(e.to_string().contains("docker login r.lan:5000"));
        assert_eq!(
            display_url("https://s3/x?X-Amz-Signature=abc"),
            "https://s3/x".to_string()
        );
    }
}
