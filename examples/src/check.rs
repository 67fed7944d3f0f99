//! `presenced check-config`: what `serve` would find wrong with a configuration, found without starting.
//!
//! Parsing and the per-key checks are [`Config::load`]'s; this adds the checks `serve` otherwise makes only
//! when it opens things: the certificate and key (and SIP's client CA) are readable and fit together, no two
//! listeners want the same port, the data directory can exist, the cluster settings hold together, and the
//! status page's password can be used on this listener.

use std::net::SocketAddr;
use std::path::Path;

use crate::config::Config;

/// One listener socket `serve` would open.
#[derive(Debug, Clone, Copy)]
struct Listener {
    key: &'static str,
    addr: SocketAddr,
    udp: bool,
}

/// Everything wrong with `config`, one sentence each, naming the key; empty when `serve` should start.
pub fn problems(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(cert), Some(key)) = (&config.xmpp.tls_cert, &config.xmpp.tls_key) {
        let source = server_xmpp::CertSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        };
        if let Err(e) = server_xmpp::tls::server_config(&source) {
            out.push(format!("xmpp.tls_cert/tls_key: {e}"));
        }
    }
    if let Some(ca) = &config.sip.client_ca_file
        && let Err(e) = server_sip::tls::client_verifier(ca)
    {
        out.push(format!("sip.client_ca_file: {e}"));
    }
    out.extend(listener_clashes(&listeners(config)));
    if let Some(problem) = data_dir_problem(&config.data_dir) {
        out.push(problem);
    }
    if let Some(cluster) = &config.cluster {
        if let Err(e) = cluster.validate() {
            out.push(format!("cluster: {e}"));
        }
        if let Err(e) = cluster.assignment_mode() {
            out.push(format!("cluster.assignment: {e}"));
        }
        if let Err(e) = cluster.failover_config() {
            out.push(format!("cluster.failover: {e}"));
        }
    }
    if config.http.admin_password.is_some() && !config.http.secure() {
        out.push(format!(
            "http.admin_password: the listener {} is plain HTTP on a non-loopback address, where the status \
             page takes no password; set http.tls = true or bind loopback behind a TLS proxy",
            config.http.bind
        ));
    }
    if config
        .http
        .admin_password
        .as_deref()
        .is_some_and(str::is_empty)
    {
        out.push("http.admin_password: is empty".to_owned());
    }
    out
}

/// The sockets `serve` opens for `config`.
fn listeners(config: &Config) -> Vec<Listener> {
    let tcp = |key, addr| Listener {
        key,
        addr,
        udp: false,
    };
    let mut l = vec![
        tcp("xmpp.c2s_bind", config.xmpp.c2s_bind),
        tcp("sip.bind", config.sip.bind),
        Listener {
            key: "sip.bind",
            addr: config.sip.bind,
            udp: true,
        },
        tcp("http.bind", config.http.bind),
    ];
    if let Some(a) = config.xmpp.c2s_tls_bind {
        l.push(tcp("xmpp.c2s_tls_bind", a));
    }
    if let Some(a) = config.sip.tls_bind {
        l.push(tcp("sip.tls_bind", a));
    }
    if !config.xmpp.components.is_empty() {
        l.push(tcp("xmpp.component_bind", config.xmpp.component_bind));
    }
    l
}

/// Pairs of listeners of one transport on one port whose addresses overlap (equal, or one unspecified). Port 0
/// (any free port) never clashes.
fn listener_clashes(listeners: &[Listener]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, a) in listeners.iter().enumerate() {
        for b in &listeners[i + 1..] {
            let overlap = a.addr.ip() == b.addr.ip()
                || a.addr.ip().is_unspecified()
                || b.addr.ip().is_unspecified();
            if a.udp == b.udp && a.addr.port() != 0 && a.addr.port() == b.addr.port() && overlap {
                out.push(format!(
                    "{} = {} and {} = {} want the same {} port",
                    a.key,
                    a.addr,
                    b.key,
                    b.addr,
                    if a.udp { "UDP" } else { "TCP" }
                ));
            }
        }
    }
    out
}

/// Why `dir` cannot be the data directory: it is not a directory, or it does not exist and its closest
/// existing ancestor is not a directory either.
fn data_dir_problem(dir: &Path) -> Option<String> {
    let mut at = dir;
    loop {
        match std::fs::metadata(at) {
            Ok(m) if m.is_dir() => return None,
            Ok(_) => {
                return Some(format!(
                    "data_dir: {} cannot be a directory: {} is not one",
                    dir.display(),
                    at.display()
                ));
            }
            Err(_) => match at.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => at = parent,
                // A relative path whose first component is missing: made in the working directory.
                _ => return None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass() {
        assert_eq!(problems(&Config::default()), Vec::<String>::new());
    }

    #[test]
    fn clashing_listeners_and_unreadable_certificates_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        c.http.bind = "0.0.0.0:5222".parse().expect("addr");
        c.xmpp.tls_cert = Some(dir.path().join("missing.pem"));
        c.xmpp.tls_key = Some(dir.path().join("missing.key"));
        let found = problems(&c);
        assert!(
            found
                .iter()
                .any(|p| p.contains("xmpp.c2s_bind") && p.contains("http.bind")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|p| p.starts_with("xmpp.tls_cert")),
            "{found:?}"
        );
    }

    #[test]
    fn a_file_in_the_way_of_the_data_directory_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        std::fs::write(&file, "x").expect("write");
        assert!(data_dir_problem(&file.join("data")).is_some());
        assert!(data_dir_problem(&dir.path().join("new/data")).is_none());
    }
}
