//! `serve --print-config containerd|docker|podman`: the client configuration that makes
//! an engine pull from the served address, printed on stdout (nothing is served).
//!
//! Plain HTTP needs the engine's consent except on loopback for Docker; a listen address
//! of `0.0.0.0` or `::` is printed as `<this-host>`, to be replaced by an address the
//! clients can reach.

use std::net::SocketAddr;

use crate::cli::ClientKind;

/// The configuration text for `kind` to pull from `listen` (`tls`: served over HTTPS).
pub fn client_config(kind: ClientKind, listen: SocketAddr, tls: bool) -> String {
    let host = if listen.ip().is_unspecified() {
        format!("<this-host>:{}", listen.port())
    } else {
        listen.to_string()
    };
    let scheme = if tls { "https" } else { "http" };
    match kind {
        ClientKind::Containerd => format!(
            "# /etc/containerd/certs.d/{host}/hosts.toml\n\
             # (containerd reads it when its CRI config sets config_path = \"/etc/containerd/certs.d\";\n\
             # `ctr images pull` needs --hosts-dir /etc/containerd/certs.d)\n\
             server = \"{scheme}://{host}\"\n\
             \n\
             [host.\"{scheme}://{host}\"]\n  \
             capabilities = [\"pull\", \"resolve\"]\n{}",
            if tls {
                "  # ca = \"/etc/containerd/certs.d/<host>/ca.crt\"   (the CA that signed --tls-cert)\n"
            } else {
                ""
            }
        ),
        ClientKind::Docker => {
            let mut s = String::new();
            if listen.ip().is_loopback() {
                s.push_str(&format!(
                    "# Docker pulls from a loopback registry without any configuration:\n\
                     #   docker pull {host}/<repository>:<tag>\n"
                ));
            } else if tls {
                s.push_str(&format!(
                    "# Put the CA that signed --tls-cert in /etc/docker/certs.d/{host}/ca.crt;\n\
                     # no daemon.json change is needed. Then: docker pull {host}/<repository>:<tag>\n"
                ));
            } else {
                s.push_str(&format!(
                    "# /etc/docker/daemon.json (merge with what is there; restart dockerd):\n\
                     {{\n  \"insecure-registries\": [\"{host}\"]\n}}\n"
                ));
            }
            s.push_str(&format!(
                "# To serve Docker Hub names as a mirror (`docker pull nginx` goes to it), add\n\
                 #   \"registry-mirrors\": [\"{scheme}://{host}\"]\n\
                 # (names are served without their registry host, as Docker asks a mirror for them)\n"
            ));
            s
        }
        ClientKind::Podman => format!(
            "# /etc/containers/registries.conf.d/airlock.conf\n\
             [[registry]]\n\
             location = \"{host}\"\n\
             insecure = {}\n",
            !tls
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_name_the_address() {
        let lo: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:5443".parse().unwrap();
        let c = client_config(ClientKind::Containerd, lo, false);
        assert!(c.contains("server = \"http://127.0.0.1:5000\""), "{c}");
        let d = client_config(ClientKind::Docker, any, false);
        assert!(
            d.contains("\"insecure-registries\": [\"<this-host>:5443\"]"),
            "{d}"
        );
        let p = client_config(ClientKind::Podman, any, true);
        assert!(p.contains("location = \"<this-host>:5443\"") && p.contains("insecure = false"));
    }
}
