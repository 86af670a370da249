//! `serve`'s settings: the listen address parsed, the prefix checked as a repository
//! path the way `push` checks its target's, the TLS pair complete, before anything is
//! opened or bound.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::{RegistryPrefix, UsageError};
use crate::cli::{ClientKind, ServeArgs};

/// What `serve` needs, validated.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub bundles: Vec<PathBuf>,
    pub listen: SocketAddr,
    /// Where names go: the listen address and `--prefix`.
    pub target: RegistryPrefix,
    pub keep_registry: bool,
    /// `--verify`: a full `verify` of every bundle before serving.
    pub verify: bool,
    /// `--tls-cert` and `--tls-key`: serve HTTPS with this certificate chain and key.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `--print-config`: print this client's configuration instead of serving.
    pub print_config: Option<ClientKind>,
}

impl ServeSettings {
    /// `serve`'s arguments validated: the listen address parsed, the prefix checked as
    /// a repository path the way `push` checks its target's.
    pub fn from_args(args: &ServeArgs) -> Result<ServeSettings, UsageError> {
        let listen: SocketAddr = args.listen.parse().map_err(|_| {
            UsageError(format!(
                "--listen `{}` is not an IP:PORT address (e.g. 127.0.0.1:5000 or 0.0.0.0:5000)",
                args.listen
            ))
        })?;
        let prefix = args.prefix.as_deref().unwrap_or("").trim_matches('/');
        // The host only validates the names; clients reach the server at its listen address.
        let target = if prefix.is_empty() {
            RegistryPrefix::parse("localhost")?
        } else {
            RegistryPrefix::parse(&format!("localhost/{prefix}"))
                .map_err(|e| UsageError(format!("--prefix `{prefix}`: {e}")))?
        };
        Ok(ServeSettings {
            bundles: args.bundles.clone(),
            listen,
            target,
            keep_registry: args.keep_registry,
            verify: args.verify,
            tls: match (&args.tls_cert, &args.tls_key) {
                (Some(c), Some(k)) => Some((c.clone(), k.clone())),
                (None, None) => None,
                _ => {
                    return Err(UsageError(
                        "--tls-cert and --tls-key go together: give both, or neither".to_string(),
                    ));
                }
            },
            print_config: args.print_config,
        })
    }
}
