//! Docker-style image references, parsed and normalized exactly as Docker does.
//!
//! `nginx` means `docker.io/library/nginx:latest`; `localhost:5000/x` is on the registry
//! `localhost:5000`; `name:tag@sha256:…` keeps both. The rules are those of
//! distribution/reference (`normalize.go`, `regexp.go`), summarized in
//! `shared/docs/formats.md` §5. A [`Reference`] is always fully normalized, so two
//! spellings of one image compare equal, and [`Reference::familiar`] gives the short
//! form Docker shows (and `docker load` expects in `RepoTags`).

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

pub(crate) const DOCKER_HUB: &str = "docker.io";
const MAX_NAME_LEN: usize = 255;

/// A normalized image reference: registry, repository path, and a tag and/or digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not an image reference. Each message quotes the input.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("empty image reference")]
    Empty,
    #[error("invalid reference `{input}`: {why}")]
    Invalid { input: String, why: String },
}

fn invalid(input: &str, why: impl Into<String>) -> ReferenceError {
    ReferenceError::Invalid {
        input: input.to_string(),
        why: why.into(),
    }
}

impl Reference {
    /// Parses and normalizes a Docker-style reference.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if input.trim() != input || input.contains(char::is_whitespace) {
            return Err(invalid(input, "it contains white space"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => {
                let digest = Digest::parse(d).map_err(|e| invalid(input, e.to_string()))?;
                (rest, Some(digest))
            }
            None => (input, None),
        };
        // A tag is a `:` after the last `/` (a `:` before it belongs to a host:port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(invalid(input, "the repository name is missing"));
        }
        if let Some(tag) = tag {
            validate_tag(input, tag)?;
        }
        if digest.is_none() && tag.is_none() && is_image_id(name) {
            return Err(invalid(
                input,
                "a 64-hex-digit string is an image ID, not a name",
            ));
        }
        let (registry, path) = split_domain(name);
        let registry = if registry == "index.docker.io" {
            DOCKER_HUB.to_string()
        } else {
            registry.to_string()
        };
        validate_domain(input, &registry)?;
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        validate_path(input, &repository)?;
        if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(invalid(
                input,
                format!("the name is longer than {MAX_NAME_LEN} characters"),
            ));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// Builds a reference from parts that are already normalized (for example from a
    /// registry target and a bundle entry); validates them like [`Reference::parse`].
    pub(crate) fn from_parts(
        registry: &str,
        repository: &str,
        tag: Option<&str>,
        digest: Option<Digest>,
    ) -> Result<Reference, ReferenceError> {
        let mut s = format!("{registry}/{repository}");
        if let Some(t) = tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &digest {
            s.push('@');
            s.push_str(d.as_str());
        }
        Reference::parse(&s)
    }

    /// The registry host, with port if any (`docker.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }
    /// The repository path within the registry (`library/nginx`).
    pub fn repository(&self) -> &str {
        &self.repository
    }
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }
    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
    /// What to ask the registry for: the digest when there is one, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// Docker's short repository name: `docker.io/library/nginx` → `nginx`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DOCKER_HUB {
            self.repository
                .strip_prefix("library/")
                .filter(|r| !r.contains('/'))
                .unwrap_or(&self.repository)
                .to_string()
        } else {
            self.name()
        }
    }

    /// Docker's short form: `docker.io/library/nginx:1.25` → `nginx:1.25`,
    /// `docker.io/org/app:1` → `org/app:1`; other registries unchanged.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_str());
        }
        s
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Reference::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Splits off the registry host: the first component is a host when it contains `.`
/// or `:`, is `localhost`, or has an uppercase letter; otherwise the image is on Docker Hub.
fn split_domain(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => (DOCKER_HUB, name),
    }
}

fn validate_domain(input: &str, domain: &str) -> Result<(), ReferenceError> {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        // [IPv6]:port
        let Some((h, after)) = rest.split_once(']') else {
            return Err(invalid(
                input,
                format!("registry host `{domain}` has an unclosed `[`"),
            ));
        };
        if h.is_empty() || !h.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(invalid(
                input,
                format!("registry host `{domain}` is not a valid IPv6 address"),
            ));
        }
        (None, after.strip_prefix(':'))
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(domain), None),
        }
    };
    if let Some(h) = host {
        let good = |c: &str| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !c.starts_with('-')
                && !c.ends_with('-')
        };
        if !h.split('.').all(good) {
            return Err(invalid(
                input,
                format!("registry host `{domain}` is not a valid host name"),
            ));
        }
    }
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 5)
    {
        return Err(invalid(
            input,
            format!("registry port in `{domain}` is not a number"),
        ));
    }
    Ok(())
}

fn validate_path(input: &str, path: &str) -> Result<(), ReferenceError> {
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(invalid(input, "repository names must be lowercase"));
    }
    for component in path.split('/') {
        if !is_path_component(component) {
            return Err(invalid(
                input,
                format!(
                    "`{component}` is not a valid repository path component \
                     (lowercase letters and digits, separated by `.`, `_`, `__` or `-`)"
                ),
            ));
        }
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn validate_tag(input: &str, tag: &str) -> Result<(), ReferenceError> {
    let b = tag.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let ok = !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            input,
            format!(
                "tag `{tag}` is not valid (letters, digits, `_`, `.`, `-`; at most 128; not starting with `.` or `-`)"
            ),
        ))
    }
}

fn is_image_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn norm(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn docker_hub_normalization() {
        assert_eq!(norm("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(norm("nginx:1.25"), "docker.io/library/nginx:1.25");
        assert_eq!(norm("org/app"), "docker.io/org/app:latest");
        assert_eq!(norm("docker.io/nginx"), "docker.io/library/nginx:latest");
        assert_eq!(
            norm("index.docker.io/library/nginx:1"),
            "docker.io/library/nginx:1"
        );
        assert_eq!(
            norm("index.docker.io/nginx"),
            "docker.io/library/nginx:latest"
        );
    }

    #[test]
    fn other_registries() {
        assert_eq!(norm("localhost:5000/x:1"), "localhost:5000/x:1");
        assert_eq!(norm("localhost/x"), "localhost/x:latest");
        assert_eq!(norm("ghcr.io/org/api:v2"), "ghcr.io/org/api:v2");
        assert_eq!(norm("127.0.0.1:5000/a/b/c"), "127.0.0.1:5000/a/b/c:latest");
        assert_eq!(norm("[::1]:5000/x"), "[::1]:5000/x:latest");
        // Uppercase in the first component makes it a host.
        let r = Reference::parse("Registry/app").unwrap();
        assert_eq!(r.registry(), "Registry");
        assert_eq!(r.repository(), "app");
        // A single component without a dot is a Docker Hub path, not a host.
        assert_eq!(norm("myhost/app"), "docker.io/myhost/app:latest");
    }

    #[test]
    fn digests_and_tags() {
        let r = Reference::parse(&format!("ghcr.io/org/api@{D}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().as_str(), D);
        assert_eq!(r.manifest_reference(), D);
        let r = Reference::parse(&format!("nginx:1.25@{D}")).unwrap();
        assert_eq!(r.tag(), Some("1.25"));
        assert_eq!(r.to_string(), format!("docker.io/library/nginx:1.25@{D}"));
        assert_eq!(r.manifest_reference(), D);
        assert_eq!(
            Reference::parse("nginx").unwrap().manifest_reference(),
            "latest"
        );
    }

    #[test]
    fn familiar_form() {
        assert_eq!(
            Reference::parse("nginx:1.25").unwrap().familiar(),
            "nginx:1.25"
        );
        assert_eq!(
            Reference::parse("docker.io/org/app:1").unwrap().familiar(),
            "org/app:1"
        );
        assert_eq!(
            Reference::parse("localhost:5000/x:1").unwrap().familiar(),
            "localhost:5000/x:1"
        );
        assert_eq!(
            Reference::parse("docker.io/library/a/b")
                .unwrap()
                .familiar(),
            "library/a/b:latest"
        );
    }

    #[test]
    fn rejects_bad_input_and_quotes_it() {
        for bad in [
            "",
            "Nginx",
            "nginx:",
            "nginx:-x",
            "nginx@sha256:abc",
            "nginx@md5:abc",
            "a//b",
            "a/b/",
            "-a",
            "a--",
            "a..b",
            "a___b",
            "has space",
            "localhost:port/x",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            let err = Reference::parse(bad).unwrap_err();
            if !bad.is_empty() {
                assert!(
                    err.to_string().contains(&format!("`{bad}`")),
                    "{err} should quote {bad}"
                );
            }
        }
        let long = format!("x/{}", "a".repeat(260));
        assert!(Reference::parse(&long).is_err());
        let tag = "t".repeat(129);
        assert!(Reference::parse(&format!("x:{tag}")).is_err());
    }

    #[test]
    fn path_components() {
        for ok in ["a", "a.b", "a_b", "a__b", "a-b", "a---b", "0x"] {
            assert!(is_path_component(ok), "{ok}");
        }
        for bad in ["", "A", "a.", "_a", "a._b", "a.-b"] {
            assert!(!is_path_component(bad), "{bad}");
        }
    }

    #[test]
    fn from_parts() {
        assert_eq!(
            Reference::from_parts("localhost:5000", "m/library/nginx", Some("1"), None)
                .unwrap()
                .to_string(),
            "localhost:5000/m/library/nginx:1"
        );
    }
}
