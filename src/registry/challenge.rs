//! Parsing `WWW-Authenticate` challenges (RFC 7235) as registries send them.
//!
//! Registries send `Basic realm="…"` or `Bearer realm="…",service="…",scope="…"`, but
//! real headers vary: scheme case, spaces around `=` and `,`, quoted values holding
//! commas (`scope="repository:a:pull,push"`), escaped quotes, unquoted tokens, several
//! challenges in one header. This is a small tolerant tokenizer over those shapes; it
//! never fails, it just returns what it could read.

use std::collections::BTreeMap;

/// The authentication scheme of a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scheme {
    Basic,
    Bearer,
    Other(String),
}

/// One challenge: a scheme and its parameters (keys lowercased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub scheme: Scheme,
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub(crate) fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }
}

/// Parses every challenge in one header value.
pub fn parse(header: &str) -> Vec<Challenge> {
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out: Vec<Challenge> = Vec::new();
    loop {
        p.skip_ws_commas();
        let Some(scheme) = p.token() else { break };
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "basic" => Scheme::Basic,
            "bearer" => Scheme::Bearer,
            other => Scheme::Other(other.to_string()),
        };
        let mut params = BTreeMap::new();
        // Parameters: `key = value` separated by commas, until a token with no `=`
        // (the next challenge's scheme) or the end.
        loop {
            p.skip_ws_commas();
            let save = p.i;
            let Some(key) = p.token() else { break };
            p.skip_ws();
            if p.peek() != Some(b'=') {
                p.i = save;
                break;
            }
            p.i += 1;
            p.skip_ws();
            let value = if p.peek() == Some(b'"') {
                p.quoted()
            } else {
                p.token().unwrap_or_default()
            };
            params.insert(key.to_ascii_lowercase(), value);
        }
        out.push(Challenge { scheme, params });
    }
    out
}

/// Picks the challenge airlock answers: Bearer over Basic over nothing.
pub(crate) fn pick(challenges: &[Challenge]) -> Option<&Challenge> {
    challenges
        .iter()
        .find(|c| c.scheme == Scheme::Bearer)
        .or_else(|| challenges.iter().find(|c| c.scheme == Scheme::Basic))
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn skip_ws_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }
    /// An RFC 7230 token (also accepting token68's `/`, `+` and trailing `=` is left to
    /// the caller: a bare `=` ends the token).
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            let ok = c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&c);
            if !ok {
                break;
            }
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    /// A quoted string starting at `"`, with `\` escapes; an unterminated one runs to the end.
    fn quoted(&mut self) -> String {
        self.i += 1;
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                _ => out.push(c),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_bearer() {
        let c = parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, Scheme::Bearer);
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("scope"), Some("repository:library/nginx:pull"));
    }

    #[test]
    fn quoted_commas_case_and_spaces() {
        let c = parse(
            r#"bEaReR  Realm = "https://ghcr.io/token" , service="ghcr.io",scope="repository:o/a:pull,push" ,error="insufficient_scope""#,
        );
        assert_eq!(c[0].scheme, Scheme::Bearer);
        assert_eq!(c[0].param("realm"), Some("https://ghcr.io/token"));
        assert_eq!(c[0].param("scope"), Some("repository:o/a:pull,push"));
        assert_eq!(c[0].param("error"), Some("insufficient_scope"));
    }

    #[test]
    fn basic_and_unquoted_and_escapes() {
        let c = parse(r#"Basic realm="Registry \"Realm\"""#);
        assert_eq!(c[0].scheme, Scheme::Basic);
        assert_eq!(c[0].param("realm"), Some(r#"Registry "Realm""#));
        let c = parse("Basic realm=test");
        assert_eq!(c[0].param("realm"), Some("test"));
        let c = parse("Basic");
        assert_eq!(c[0].scheme, Scheme::Basic);
        assert!(c[0].params.is_empty());
    }

    #[test]
    fn several_challenges_in_one_header() {
        let c = parse(r#"Negotiate, Basic realm="x", Bearer realm="https://h/t",service="h""#);
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].scheme, Scheme::Other("negotiate".into()));
        assert_eq!(c[1].scheme, Scheme::Basic);
        assert_eq!(pick(&c).map(|c| &c.scheme), Some(&Scheme::Bearer));
        assert_eq!(c[2].param("service"), Some("h"));
    }

    #[test]
    fn garbage_does_not_panic() {
        for h in [
            "",
            "   ",
            "=",
            "Bearer realm=\"unterminated",
            ",,,",
            "Bearer ,realm=",
            "\"x\"",
        ] {
            let _ = parse(h);
        }
        assert!(parse("").is_empty());
        assert_eq!(
            parse("Bearer realm=\"unterminated")[0].param("realm"),
            Some("unterminated")
        );
    }
}
