//! Credentials from Docker's `config.json`, the way `docker login` leaves them.
//!
//! Lookup order per registry (docker/cli `cli/config`): `credHelpers.<host>` names a
//! helper, else `credsStore` names one, else the `auths` entry (`auth` =
//! base64 `user:pass`, or `username`/`password`, or `identitytoken`). Helpers are
//! `docker-credential-<name> get` with the server URL on stdin; their "credentials not
//! found" means anonymous (airlock then also tries a usable `auths` entry). The key
//! for Docker Hub is `https://index.docker.io/v1/`, for others `host[:port]`, and
//! legacy keys with a scheme and/or path match too.
//!
//! Secrets live only in [`Secret`], whose `Debug` is redacted and which has no
//! `Display`; errors name the file or helper, never the values.

use std::collections::HashMap;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

/// The server URL Docker uses for Docker Hub credentials.
pub(crate) const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// How long a credential helper may take (it may be waiting on a keychain).
const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

/// A secret: what goes on the wire to a registry or token server.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// A username and password (HTTP Basic, and Basic to the token realm).
    Basic { username: String, password: String },
    /// An OAuth2 refresh token ("identity token") for the token realm.
    IdentityToken { token: String },
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Secret::IdentityToken { .. } => f
                .debug_struct("IdentityToken")
                .field("token", &"<redacted>")
                .finish(),
        }
    }
}

/// Credentials for one registry and where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub secret: Secret,
    /// For messages: the config file or the helper that gave them.
    pub source: String,
}

/// Why credentials could not be looked up.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid Docker config file")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "the `auth` value for `{key}` in {path} is not base64 of `user:password`: \
         run `docker login` again"
    )]
    BadAuth { key: String, path: PathBuf },
    #[error(
        "the credential helper `{helper}` named in {path} is not installed \
         (not found {where_})"
    )]
    HelperMissing {
        helper: String,
        path: PathBuf,
        where_: String,
    },
    #[error("the credential helper `{helper}` failed{}", detail(output))]
    HelperFailed { helper: String, output: String },
    #[error("the credential helper `{helper}` did not answer within {secs} s")]
    HelperTimeout { helper: String, secs: u64 },
    #[error("the credential helper `{helper}` printed something that is not its JSON answer")]
    HelperOutput {
        helper: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot run the credential helper `{helper}`")]
    HelperIo {
        helper: String,
        #[source]
        source: std::io::Error,
    },
}

fn detail(output: &str) -> String {
    if output.is_empty() {
        String::new()
    } else {
        format!(": {output}")
    }
}

/// Where to find config.json and helpers.
#[derive(Debug, Clone)]
pub(crate) struct CredentialStore {
    config_path: PathBuf,
    /// Directory searched for `docker-credential-*` instead of `$PATH`.
    helper_dir: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(rename = "credHelpers", default)]
    cred_helpers: HashMap<String, String>,
    #[serde(rename = "credsStore", default)]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

impl CredentialStore {
    /// `config_dir` or `$DOCKER_CONFIG` or `~/.docker`, holding `config.json`.
    pub fn new(config_dir: Option<&Path>, helper_dir: Option<&Path>) -> CredentialStore {
        let dir = match config_dir {
            Some(d) => d.to_path_buf(),
            None => match std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
                Some(d) => PathBuf::from(d),
                None => std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_default()
                    .join(".docker"),
            },
        };
        CredentialStore {
            config_path: dir.join("config.json"),
            helper_dir: helper_dir.map(Path::to_path_buf),
        }
    }

    /// The credentials for `registry` (a normalized host such as `docker.io` or
    /// `localhost:5000`), or `None` for anonymous access.
    pub(crate) fn lookup(&self, registry: &str) -> Result<Option<Credentials>, CredentialsError> {
        let config = match self.read_config()? {
            Some(c) => c,
            None => return Ok(None),
        };
        let want = normalize_key(registry);
        let helper = config
            .cred_helpers
            .iter()
            .find(|(k, _)| normalize_key(k) == want)
            .map(|(_, v)| v.clone())
            .or_else(|| config.creds_store.clone())
            .filter(|h| !h.is_empty());
        if let Some(helper) = helper
            && let Some(c) = self.run_helper(&helper, &server_url(registry))?
        {
            return Ok(Some(c));
        }
        self.lookup_auths(&config, registry)
    }

    fn read_config(&self) -> Result<Option<ConfigFile>, CredentialsError> {
        let bytes = match std::fs::read(&self.config_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(CredentialsError::Read {
                    path: self.config_path.clone(),
                    source: e,
                });
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| CredentialsError::Parse {
                path: self.config_path.clone(),
                source: e,
            })
    }

    fn lookup_auths(
        &self,
        config: &ConfigFile,
        registry: &str,
    ) -> Result<Option<Credentials>, CredentialsError> {
        let want = normalize_key(registry);
        let exact = server_url(registry);
        // An exact key first, then any legacy spelling of the same host.
        let mut candidates: Vec<(&String, &AuthEntry)> = config
            .auths
            .iter()
            .filter(|(k, _)| normalize_key(k) == want)
            .collect();
        candidates.sort_by_key(|(k, _)| (**k != exact, (*k).clone()));
        for (key, entry) in candidates {
            let source = self.config_path.display().to_string();
            if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
                return Ok(Some(Credentials {
                    secret: Secret::IdentityToken {
                        token: token.to_string(),
                    },
                    source,
                }));
            }
            if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
                let bad = || CredentialsError::BadAuth {
                    key: key.clone(),
                    path: self.config_path.clone(),
                };
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|_| bad())?;
                let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
                let (user, pass) = decoded.split_once(':').ok_or_else(bad)?;
                return Ok(Some(Credentials {
                    secret: Secret::Basic {
                        username: user.to_string(),
                        password: pass.to_string(),
                    },
                    source,
                }));
            }
            if let (Some(u), Some(p)) = (&entry.username, &entry.password)
                && !u.is_empty()
            {
                return Ok(Some(Credentials {
                    secret: Secret::Basic {
                        username: u.clone(),
                        password: p.clone(),
                    },
                    source,
                }));
            }
        }
        Ok(None)
    }

    fn helper_path(&self, name: &str) -> Result<PathBuf, CredentialsError> {
        let file = format!("docker-credential-{name}");
        let missing = |where_: String| CredentialsError::HelperMissing {
            helper: file.clone(),
            path: self.config_path.clone(),
            where_,
        };
        match &self.helper_dir {
            Some(dir) => {
                let p = dir.join(&file);
                if p.is_file() {
                    Ok(p)
                } else {
                    Err(missing(format!("in {}", dir.display())))
                }
            }
            None => {
                let path = std::env::var_os("PATH").unwrap_or_default();
                std::env::split_paths(&path)
                    .map(|d| d.join(&file))
                    .find(|p| p.is_file())
                    .ok_or_else(|| missing("on $PATH".to_string()))
            }
        }
    }

    fn run_helper(
        &self,
        name: &str,
        server_url: &str,
    ) -> Result<Option<Credentials>, CredentialsError> {
        let path = self.helper_path(name)?;
        let helper = format!("docker-credential-{name}");
        let io_err = |e| CredentialsError::HelperIo {
            helper: helper.clone(),
            source: e,
        };
        let mut child = Command::new(&path)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io_err)?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading stdin gives EPIPE: not our problem.
            let _ = stdin.write_all(server_url.as_bytes());
        }
        // Drain both pipes on threads so a chatty helper cannot block, and bound the wait.
        let drain = |r: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut r) = r {
                    let _ = r.by_ref().take(1 << 20).read_to_end(&mut buf);
                }
                buf
            })
        };
        let out = drain(
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        );
        let err = drain(
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        );
        let deadline = Instant::now() + HELPER_TIMEOUT;
        let status = loop {
            match child.try_wait().map_err(io_err)? {
                Some(s) => break s,
                None if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(CredentialsError::HelperTimeout {
                        helper,
                        secs: HELPER_TIMEOUT.as_secs(),
                    });
                }
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        if !status.success() {
            let text = format!(
                "{} {}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
            if text.to_ascii_lowercase().contains("credentials not found") {
                return Ok(None);
            }
            // Never echo something that might be the JSON answer (it holds the secret).
            let text = text.trim();
            let output = if text.contains("Secret") {
                String::new()
            } else {
                text.chars().take(300).collect()
            };
            return Err(CredentialsError::HelperFailed { helper, output });
        }
        let answer: HelperAnswer =
            serde_json::from_slice(&stdout).map_err(|e| CredentialsError::HelperOutput {
                helper: helper.clone(),
                source: e,
            })?;
        if answer.secret.is_empty() {
            return Ok(None);
        }
        let secret = if answer.username == "<token>" {
            Secret::IdentityToken {
                token: answer.secret,
            }
        } else {
            Secret::Basic {
                username: answer.username,
                password: answer.secret,
            }
        };
        Ok(Some(Credentials {
            secret,
            source: format!("credential helper `{helper}`"),
        }))
    }
}

/// The server URL a helper and `auths` use for `registry`.
pub(crate) fn server_url(registry: &str) -> String {
    if is_docker_hub(registry) {
        DOCKER_HUB_KEY.to_string()
    } else {
        registry.to_string()
    }
}

fn is_docker_hub(host: &str) -> bool {
    matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"
    )
}

/// `https://host:5000/v1/` → `host:5000`; every Docker Hub spelling → `docker.io`.
fn normalize_key(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let host = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    if is_docker_hub(&host) {
        "docker.io".to_string()
    } else {
        host
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn store_with(config: &str) -> (tempfile::TempDir, CredentialStore) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), config).unwrap();
        let store = CredentialStore::new(Some(dir.path()), Some(dir.path()));
        (dir, store)
    }

    fn basic(c: Option<Credentials>) -> (String, String) {
        match c.expect("credentials").secret {
            Secret::Basic { username, password } => (username, password),
            other => panic!("not basic: {other:?}"),
        }
    }

    #[test]
    fn missing_config_is_anonymous() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(Some(dir.path()), None);
        assert!(store.lookup("docker.io").unwrap().is_none());
    }

    #[test]
    fn auths_key_variants() {
        let config = format!(
            r#"{{"auths":{{
                "https://index.docker.io/v1/":{{"auth":"{}"}},
                "reg.lan:5000":{{"auth":"{}"}},
                "https://legacy.example/v1/":{{"auth":"{}"}},
                "http://plain.example:5000":{{"username":"pu","password":"pp"}},
                "tok.example":{{"identitytoken":"refresh-xyz"}}
            }}}}"#,
            b64("hub:hubpass"),
            b64("lan:lan:pass:with:colons"),
            b64("leg:legpass")
        );
        let (_d, s) = store_with(&config);
        assert_eq!(
            basic(s.lookup("docker.io").unwrap()),
            ("hub".into(), "hubpass".into())
        );
        assert_eq!(
            basic(s.lookup("reg.lan:5000").unwrap()),
            ("lan".into(), "lan:pass:with:colons".into())
        );
        assert!(s.lookup("reg.lan").unwrap().is_none(), "port must match");
        assert_eq!(
            basic(s.lookup("legacy.example").unwrap()),
            ("leg".into(), "legpass".into())
        );
        assert_eq!(
            basic(s.lookup("plain.example:5000").unwrap()),
            ("pu".into(), "pp".into())
        );
        assert_eq!(
            s.lookup("tok.example").unwrap().unwrap().secret,
            Secret::IdentityToken {
                token: "refresh-xyz".into()
            }
        );
        assert!(s.lookup("other.example").unwrap().is_none());
    }

    #[test]
    fn bad_auth_names_key_not_value() {
        let (_d, s) = store_with(r#"{"auths":{"r.lan":{"auth":"!!notbase64-SECRETVALUE"}}}"#);
        let e = s.lookup("r.lan").unwrap_err().to_string();
        assert!(e.contains("r.lan") && !e.contains("SECRETVALUE"), "{e}");
    }

    fn write_helper(dir: &Path, name: &str, body: &str) {
        let p = dir.join(format!("docker-credential-{name}"));
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    const TEST_HELPER: &str = r#"read url
case "$url" in
  "https://index.docker.io/v1/") echo '{"ServerURL":"'"$url"'","Username":"hubuser","Secret":"hubsecret"}' ;;
  "reg.lan:5000") echo '{"ServerURL":"reg.lan:5000","Username":"<token>","Secret":"idtoken"}' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac"#;

    #[test]
    fn creds_store_and_helpers() {
        let (d, s) = store_with(
            r#"{"credsStore":"test","credHelpers":{"helped.example":"other"},
                "auths":{"fallback.example":{"auth":"ZmI6ZmJw"}}}"#,
        );
        write_helper(d.path(), "test", TEST_HELPER);
        write_helper(
            d.path(),
            "other",
            r#"read url; echo '{"ServerURL":"'"$url"'","Username":"h","Secret":"hs"}'"#,
        );
        let hub = s.lookup("docker.io").unwrap().unwrap();
        assert_eq!(hub.source, "credential helper `docker-credential-test`");
        assert_eq!(basic(Some(hub)), ("hubuser".into(), "hubsecret".into()));
        assert_eq!(
            s.lookup("reg.lan:5000").unwrap().unwrap().secret,
            Secret::IdentityToken {
                token: "idtoken".into()
            }
        );
        // credHelpers wins over credsStore.
        assert_eq!(
            basic(s.lookup("helped.example").unwrap()),
            ("h".into(), "hs".into())
        );
        // "credentials not found" → anonymous (or the auths entry when there is one).
        assert!(s.lookup("nothing.example").unwrap().is_none());
        assert_eq!(
            basic(s.lookup("fallback.example").unwrap()),
            ("fb".into(), "fbp".into())
        );
    }

    #[test]
    fn missing_and_failing_helpers() {
        let (d, s) = store_with(r#"{"credHelpers":{"a.example":"absent","b.example":"broken"}}"#);
        write_helper(d.path(), "broken", "echo boom >&2; exit 3");
        let e = s.lookup("a.example").unwrap_err().to_string();
        assert!(e.contains("docker-credential-absent"), "{e}");
        let e = s.lookup("b.example").unwrap_err().to_string();
        assert!(
            e.contains("docker-credential-broken") && e.contains("boom"),
            "{e}"
        );
    }

    #[test]
    fn debug_is_redacted() {
        let c = Credentials {
            secret: Secret::Basic {
                username: "me".into(),
                password: "hunter2-secret".into(),
            },
            source: "x".into(),
        };
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2") && s.contains("<redacted>"), "{s}");
        let t = format!(
            "{:?}",
            Secret::IdentityToken {
                token: "tok-secret".into()
            }
        );
        assert!(!t.contains("tok-secret"), "{t}");
    }

    #[test]
    fn keys_normalize() {
        assert_eq!(normalize_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_key("http://h:5000"), "h:5000");
        assert_eq!(normalize_key("H.example/v2/"), "h.example");
        assert_eq!(server_url("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(server_url("localhost:5000"), "localhost:5000");
    }
}
