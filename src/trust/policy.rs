//! `--policy FILE`: which images are accepted, by registry/repository prefix.
//!
//! The file is JSON (there is no YAML: no well-kept YAML crate fits the dependency
//! rules; `docs/policy.md` documents the format):
//!
//! ```json
//! {
//!   "version": 1,
//!   "default": { "require_signature": false },
//!   "rules": [
//!     { "prefix": "registry.corp.example", "keys": ["keys/corp.pub"], "require_digest": true },
//!     { "prefix": "docker.io/library", "keys": ["keys/mirror.pub", "keys/old-mirror.pub"] },
//!     { "prefix": "docker.io/badorg", "reject": true, "reason": "not allowed since 2024" }
//!   ]
//! }
//! ```
//!
//! The rule for an image is the one whose prefix is the longest that matches the image's
//! repository on a path-component boundary (`docker.io/library` matches
//! `docker.io/library/nginx`, not `docker.io/libraryx`), else `default` (which accepts
//! everything when absent). Prefixes are normalized like image names (`nginx` is
//! `docker.io/library/nginx`, `index.docker.io` is `docker.io`). Key paths are relative
//! to the policy file. `require_signature` is true when `keys` are given and false
//! otherwise; asking for it without keys, or giving keys and turning it off, is an
//! error. Every error names the file and the field (`rules[2].keys[0]`), and unknown
//! fields are errors (a misspelt `require_signatur` must not silently accept).
//!
//! `--key PEM` on the command line is the policy whose default rule requires a
//! signature by one of those keys ([`Policy::keys`]).

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::keys::CosignKey;

/// A loaded policy: its rules, their keys loaded.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Where it came from: the file, or `--key`.
    origin: String,
    default: Rule,
    /// Longest prefix first.
    rules: Vec<Rule>,
}

/// One rule of a policy.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The normalized prefix; `None` for the default rule.
    pub prefix: Option<String>,
    /// What to call it in messages: `rule docker.io/library (policy.json)`.
    pub label: String,
    pub keys: Vec<CosignKey>,
    pub require_signature: bool,
    pub require_digest: bool,
    pub reject: bool,
    pub reason: Option<String>,
}

/// What is wrong with a policy file: the file, the field and why.
#[derive(Debug, thiserror::Error)]
#[error("policy {}: {}{}", file.display(), field.as_deref().map(|f| format!("`{f}`: ")).unwrap_or_default(), detail)]
pub struct PolicyError {
    pub file: PathBuf,
    /// The field, as a path: `rules[1].keys[0]`; `None` for the file as a whole.
    pub field: Option<String>,
    pub detail: String,
}

const TOP_FIELDS: [&str; 3] = ["version", "default", "rules"];
const RULE_FIELDS: [&str; 6] = [
    "prefix",
    "keys",
    "require_signature",
    "require_digest",
    "reject",
    "reason",
];

impl Policy {
    /// Reads and checks the policy in `file`, and loads every key it names.
    pub fn load(file: &Path) -> Result<Policy, PolicyError> {
        let err = |field: Option<String>, detail: String| PolicyError {
            file: file.to_path_buf(),
            field,
            detail,
        };
        let bytes = std::fs::read(file).map_err(|e| err(None, format!("cannot read it: {e}")))?;
        let doc: Value = serde_json::from_slice(&bytes)
            .map_err(|e| err(None, format!("not valid JSON ({e})")))?;
        let dir = file.parent().unwrap_or(Path::new("."));
        Policy::from_value(&doc, file, dir)
    }

    /// The policy `--key` stands for: every image must carry a signature by one of
    /// `keys`.
    pub fn keys(keys: Vec<CosignKey>) -> Policy {
        Policy {
            origin: "--key".into(),
            default: Rule {
                prefix: None,
                label: "--key".into(),
                keys,
                require_signature: true,
                require_digest: false,
                reject: false,
                reason: None,
            },
            rules: Vec::new(),
        }
    }

    fn from_value(doc: &Value, file: &Path, dir: &Path) -> Result<Policy, PolicyError> {
        let err = |field: &str, detail: String| PolicyError {
            file: file.to_path_buf(),
            field: Some(field.to_string()),
            detail,
        };
        let Value::Object(top) = doc else {
            return Err(PolicyError {
                file: file.to_path_buf(),
                field: None,
                detail: "not a JSON object".into(),
            });
        };
        unknown_fields(top, &TOP_FIELDS, "", file)?;
        if let Some(v) = top.get("version")
            && v.as_u64() != Some(1)
        {
            return Err(err(
                "version",
                format!("is {v}; this airlock reads version 1"),
            ));
        }
        let origin = file.display().to_string();
        let default = match top.get("default") {
            None => Rule::accept_all(format!("default rule ({origin})")),
            Some(v) => parse_rule(v, "default", false, file, dir, &origin)?,
        };
        let mut rules = Vec::new();
        let mut seen = BTreeSet::new();
        match top.get("rules") {
            None => {}
            Some(Value::Array(list)) => {
                for (i, v) in list.iter().enumerate() {
                    let field = format!("rules[{i}]");
                    let rule = parse_rule(v, &field, true, file, dir, &origin)?;
                    let prefix = rule.prefix.clone().unwrap_or_default();
                    if !seen.insert(prefix.clone()) {
                        return Err(err(
                            &format!("{field}.prefix"),
                            format!("`{prefix}` has a rule already; merge the two"),
                        ));
                    }
                    rules.push(rule);
                }
            }
            Some(_) => return Err(err("rules", "must be a list of rules".into())),
        }
        rules.sort_by_key(|r| std::cmp::Reverse(r.prefix.as_ref().map_or(0, String::len)));
        Ok(Policy {
            origin,
            default,
            rules,
        })
    }

    /// Where the policy came from (the file, or `--key`).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The rule for a normalized repository (`registry/path`): the longest matching
    /// prefix, else the default.
    pub fn rule_for(&self, repository: &str) -> &Rule {
        self.rules
            .iter()
            .find(|r| {
                r.prefix.as_deref().is_some_and(|p| {
                    repository == p
                        || repository
                            .strip_prefix(p)
                            .is_some_and(|rest| rest.starts_with('/'))
                })
            })
            .unwrap_or(&self.default)
    }
}

impl Rule {
    fn accept_all(label: String) -> Rule {
        Rule {
            prefix: None,
            label,
            keys: Vec::new(),
            require_signature: false,
            require_digest: false,
            reject: false,
            reason: None,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

fn unknown_fields(
    obj: &Map<String, Value>,
    known: &[&str],
    at: &str,
    file: &Path,
) -> Result<(), PolicyError> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(PolicyError {
            file: file.to_path_buf(),
            field: Some(format!("{at}{}{k}", if at.is_empty() { "" } else { "." })),
            detail: format!("unknown field (known: {})", known.join(", ")),
        }),
    }
}

fn parse_rule(
    v: &Value,
    field: &str,
    needs_prefix: bool,
    file: &Path,
    dir: &Path,
    origin: &str,
) -> Result<Rule, PolicyError> {
    let err = |f: &str, detail: String| PolicyError {
        file: file.to_path_buf(),
        field: Some(if f.is_empty() {
            field.to_string()
        } else {
            format!("{field}.{f}")
        }),
        detail,
    };
    let Value::Object(obj) = v else {
        return Err(err("", "must be an object".into()));
    };
    let known: &[&str] = if needs_prefix {
        &RULE_FIELDS
    } else {
        &RULE_FIELDS[1..]
    };
    unknown_fields(obj, known, field, file)?;
    let boolean = |name: &str| -> Result<Option<bool>, PolicyError> {
        match obj.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(err(name, format!("must be true or false, not {other}"))),
        }
    };
    let prefix = if needs_prefix {
        let Some(Value::String(p)) = obj.get("prefix") else {
            return Err(err(
                "prefix",
                "missing, or not a string; give a registry or repository prefix such as \
                 `registry.corp.example/team`"
                    .into(),
            ));
        };
        Some(normalize_prefix(p).map_err(|why| err("prefix", why))?)
    } else {
        None
    };
    let mut keys = Vec::new();
    match obj.get("keys") {
        None => {}
        Some(Value::Array(list)) => {
            for (i, k) in list.iter().enumerate() {
                let Value::String(rel) = k else {
                    return Err(err(
                        &format!("keys[{i}]"),
                        "must be the path of a PEM public key".into(),
                    ));
                };
                let path = dir.join(rel);
                let key = CosignKey::load(&path)
                    .map_err(|e| err(&format!("keys[{i}]"), e.to_string()))?;
                keys.push(key);
            }
        }
        Some(_) => {
            return Err(err(
                "keys",
                "must be a list of PEM public key paths (relative to the policy file)".into(),
            ));
        }
    }
    let require_signature = match boolean("require_signature")? {
        None => !keys.is_empty(),
        Some(true) if keys.is_empty() => {
            return Err(err(
                "keys",
                "require_signature is true but no key is given: list the accepted public keys"
                    .into(),
            ));
        }
        Some(false) if !keys.is_empty() => {
            return Err(err(
                "require_signature",
                "is false but keys are given: drop the keys, or require the signature".into(),
            ));
        }
        Some(b) => b,
    };
    let reason = match obj.get("reason") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(err("reason", format!("must be a string, not {other}"))),
    };
    let label = match &prefix {
        Some(p) => format!("rule `{p}` ({origin})"),
        None => format!("default rule ({origin})"),
    };
    Ok(Rule {
        prefix,
        label,
        keys,
        require_signature,
        require_digest: boolean("require_digest")?.unwrap_or(false),
        reject: boolean("reject")?.unwrap_or(false),
        reason,
    })
}

/// A prefix in the form image repositories are normalized to (`registry/path`): a
/// prefix that starts with a registry host (it has a `.` or a `:`, or is `localhost`)
/// keeps its path as written (`docker.io/library` stays, `index.docker.io` becomes
/// `docker.io`); one without a host is on Docker Hub as Docker reads short names
/// (`nginx` → `docker.io/library/nginx`, `bitnami` → `docker.io/library/bitnami`,
/// `bitnami/redis` → `docker.io/bitnami/redis`).
fn normalize_prefix(p: &str) -> Result<String, String> {
    let p = p.trim().trim_end_matches('/');
    if p.is_empty() {
        return Err("is empty; use `default` for the rule of every other image".into());
    }
    let not_prefix =
        || format!("`{p}` is not a registry or repository prefix (no tag, digest or spaces)");
    if p.contains('@') || p.contains(char::is_whitespace) || p.contains("//") {
        return Err(not_prefix());
    }
    let (first, rest) = match p.split_once('/') {
        Some((f, r)) => (f, Some(r)),
        None => (p, None),
    };
    let is_host = first.contains('.') || first.contains(':') || first == "localhost";
    let (host, path) = if is_host {
        if first
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(not_prefix());
        }
        let host = first.to_ascii_lowercase();
        let host = if host == "index.docker.io" || host == "registry-1.docker.io" {
            "docker.io".to_string()
        } else {
            host
        };
        (host, rest.map(str::to_string))
    } else if rest.is_none() {
        ("docker.io".to_string(), Some(format!("library/{p}")))
    } else {
        ("docker.io".to_string(), Some(p.to_string()))
    };
    match path {
        Some(path) if path.contains(':') || path.chars().any(|c| c.is_ascii_uppercase()) => {
            Err(not_prefix())
        }
        Some(path) => Ok(format!("{host}/{path}")),
        None => Ok(host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_normalize_like_names() {
        assert_eq!(
            normalize_prefix("nginx").unwrap(),
            "docker.io/library/nginx"
        );
        assert_eq!(normalize_prefix("index.docker.io/").unwrap(), "docker.io");
        assert_eq!(
            normalize_prefix("docker.io/library/").unwrap(),
            "docker.io/library"
        );
        assert_eq!(
            normalize_prefix("localhost:5000").unwrap(),
            "localhost:5000"
        );
        assert_eq!(
            normalize_prefix("registry.lan/team/app").unwrap(),
            "registry.lan/team/app"
        );
        assert!(normalize_prefix("nginx:1.25").is_err());
        assert!(normalize_prefix("").is_err());
    }

    fn policy(doc: Value) -> Result<Policy, PolicyError> {
        Policy::from_value(&doc, Path::new("p.json"), Path::new("."))
    }

    #[test]
    fn longest_prefix_on_a_component_boundary_wins() {
        let p = policy(serde_json::json!({
            "rules": [
                {"prefix": "docker.io", "reject": true},
                {"prefix": "docker.io/library", "require_digest": true},
                {"prefix": "registry.lan/team", "reason": "x", "reject": true}
            ]
        }))
        .unwrap();
        assert!(p.rule_for("docker.io/library/nginx").require_digest);
        assert!(p.rule_for("docker.io/libraryx/nginx").reject);
        assert!(p.rule_for("registry.lan/team").reject);
        assert!(p.rule_for("registry.lan/team/app").reject);
        assert!(!p.rule_for("registry.lan/teamx/app").reject);
        assert!(p.rule_for("registry.lan/teamx/app").prefix.is_none());
    }

    #[test]
    fn errors_name_the_field() {
        let e =
            policy(serde_json::json!({"rules": [{"prefix": "a.b/c", "require_signatur": true}]}))
                .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("rules[0].require_signatur"));
        let e = policy(serde_json::json!({"default": {"require_signature": true}})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("default.keys"));
        let e = policy(serde_json::json!({"rules": [{"prefix": "a.b"}, {"prefix": "a.b/"}]}))
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("rules[1].prefix"));
        let e = policy(serde_json::json!({"rules": [{"prefix": "a.b", "keys": ["nope.pub"]}]}))
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("rules[0].keys[0]"));
        assert!(
            e.to_string()
                .starts_with("policy p.json: `rules[0].keys[0]`: "),
            "{e}"
        );
        let e = policy(serde_json::json!({"version": 2})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("version"));
        let e =
            policy(serde_json::json!({"rules": [{"prefix": "a.b", "reject": "yes"}]})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("rules[0].reject"));
    }
}
