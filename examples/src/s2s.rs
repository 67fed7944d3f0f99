//! `[s2s]`: federation with other XMPP domains (server-to-server), and the dialback secret kept in `data_dir`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use server_xmpp::s2s::{Nameserver, S2sSettings, Secret, Target};

/// The file in `data_dir` holding the generated dialback secret.
pub const SECRET_FILE: &str = "s2s_dialback_secret";

/// `[s2s]`: server-to-server streams (RFC 6120) authenticated with dialback (XEP-0220).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S2sConfig {
    /// Address peers connect to (STARTTLS); `"off"` for none (stanzas still go out over `routes`).
    #[serde(deserialize_with = "crate::config::address_or_off")]
    pub bind: Option<SocketAddr>,
    /// Address peers connect to with TLS from the first byte (XEP-0368, ALPN `xmpp-server`); `"off"` (the
    /// default) for none.
    #[serde(deserialize_with = "crate::config::address_or_off")]
    pub tls_bind: Option<SocketAddr>,
    /// Where each peer domain is reached: `"example.org" = "192.0.2.1:5269"` (STARTTLS) or
    /// `"tls://192.0.2.1:5270"` (direct TLS), whatever DNS says. A domain with no route is looked up in DNS (SRV
    /// `_xmpps-server._tcp` and `_xmpp-server._tcp`, then A/AAAA) unless `nameserver` is `"off"`.
    #[serde(deserialize_with = "routes")]
    pub routes: BTreeMap<String, Target>,
    /// Which DNS finds peers: `"system"` (resolv.conf, the default), `"off"` (static routes only) or the
    /// `IP:port` of one nameserver.
    #[serde(deserialize_with = "nameserver")]
    pub nameserver: Nameserver,
    /// When not empty, the only peer domains this server federates with.
    pub allow: Vec<String>,
    /// Peer domains this server never federates with (neither connects to nor accepts).
    pub deny: Vec<String>,
    /// Whether a stream must be encrypted (STARTTLS) before dialback.
    pub require_tls: bool,
    /// The CA certificates (PEM) trusted to prove peer domains: a peer whose certificate chains to one of them
    /// and names its domain is authenticated with SASL EXTERNAL. Not set: no certificate is trusted, every peer
    /// uses dialback.
    pub ca_file: Option<PathBuf>,
    /// The secret dialback keys are made from; generated into `data_dir` when not set. Nodes serving one
    /// domain must share it.
    pub dialback_secret: Option<String>,
    /// Time to open and authenticate a stream.
    #[serde(deserialize_with = "crate::config::duration")]
    pub connect_timeout: Duration,
    /// Silence after which a stream is closed (the next stanza opens a new one).
    #[serde(deserialize_with = "crate::config::duration")]
    pub idle_timeout: Duration,
    /// Stanzas that may wait for one peer; past it they bounce.
    pub outbound_queue: usize,
}

impl std::fmt::Debug for S2sConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S2sConfig")
            .field("bind", &self.bind)
            .field("tls_bind", &self.tls_bind)
            .field("routes", &self.routes)
            .field("nameserver", &self.nameserver)
            .field("allow", &self.allow)
            .field("deny", &self.deny)
            .field("require_tls", &self.require_tls)
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

impl Default for S2sConfig {
    fn default() -> Self {
        S2sConfig {
            bind: Some(SocketAddr::from(([0, 0, 0, 0], 5269))),
            tls_bind: None,
            routes: BTreeMap::new(),
            nameserver: Nameserver::System,
            allow: Vec::new(),
            deny: Vec::new(),
            require_tls: true,
            ca_file: None,
            dialback_secret: None,
            connect_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(300),
            outbound_queue: 1000,
        }
    }
}

/// Why the dialback secret could not be had.
#[derive(Debug, thiserror::Error)]
#[error("cannot read or create the dialback secret {path}: {source}")]
pub struct SecretError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

impl S2sConfig {
    /// The federation settings for `domain`, with TLS identity `cert`.
    pub fn settings(
        &self,
        domain: &str,
        data_dir: &Path,
        cert: server_xmpp::CertSource,
    ) -> Result<S2sSettings, SecretError> {
        let secret = match &self.dialback_secret {
            Some(s) => Secret::new(s),
            None => Secret::new(&stored_secret(&data_dir.join(SECRET_FILE))?),
        };
        let mut s = S2sSettings::new(domain, self.bind, cert, secret);
        s.tls_bind = self.tls_bind;
        s.routes = self
            .routes
            .iter()
            .map(|(d, a)| (d.to_ascii_lowercase(), *a))
            .collect();
        s.nameserver = self.nameserver;
        s.allow = self.allow.iter().map(|d| d.to_ascii_lowercase()).collect();
        s.deny = self.deny.iter().map(|d| d.to_ascii_lowercase()).collect();
        s.require_tls = self.require_tls;
        s.ca_file = self.ca_file.clone();
        s.connect_timeout = self.connect_timeout;
        s.idle_timeout = self.idle_timeout;
        s.outbound_queue = self.outbound_queue;
        Ok(s)
    }
}

/// Reads `[s2s.routes]`: each value an `IP:port` (STARTTLS) or `tls://IP:port` (direct TLS, XEP-0368).
fn routes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Target>, D::Error> {
    BTreeMap::<String, String>::deserialize(d)?
        .into_iter()
        .map(|(domain, text)| {
            let (direct_tls, addr) = match text.strip_prefix("tls://") {
                Some(addr) => (true, addr),
                None => (false, text.as_str()),
            };
            let addr: SocketAddr = addr.parse().map_err(|_| {
                serde::de::Error::custom(format!(
                    "route {text:?} for {domain} is not an IP:port or tls://IP:port"
                ))
            })?;
            Ok((domain, Target { addr, direct_tls }))
        })
        .collect()
}

/// The secret in `path`, made (32 random bytes, hex, readable by the owner only) when the file is missing.
/// Reads `nameserver`: "system", "off", or an `IP:port`.
fn nameserver<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Nameserver, D::Error> {
    let text = String::deserialize(d)?;
    match text.as_str() {
        "system" => Ok(Nameserver::System),
        "off" => Ok(Nameserver::Off),
        addr => addr.parse().map(Nameserver::At).map_err(|_| {
            serde::de::Error::custom(format!(
                "nameserver {addr:?} is not \"system\", \"off\" or an IP:port"
            ))
        }),
    }
}

fn stored_secret(path: &Path) -> Result<String, SecretError> {
    let fail = |source| SecretError {
        path: path.to_owned(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Ok(_) => Err(fail(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the file is empty",
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret: String = server_xmpp::random_bytes::<32>()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(fail)?;
            }
            let mut f = {
                use std::os::unix::fs::OpenOptionsExt as _;
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(fail)?
            };
            f.write_all(secret.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(fail)?;
            Ok(secret)
        }
        Err(e) => Err(fail(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_generated_once_and_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(SECRET_FILE);
        let first = stored_secret(&path).expect("made");
        assert_eq!(first.len(), 64);
        assert_eq!(stored_secret(&path).expect("read"), first);
    }

    #[test]
    fn routes_and_lists_are_read_lower_case() {
        let c: S2sConfig = toml::from_str(
            "bind = \"off\"\ndeny = [\"Evil.Example\"]\n[routes]\n\"B.Example\" = \"127.0.0.1:5270\"\n",
        )
        .expect("parses");
        assert_eq!(c.bind, None);
        let cert = server_xmpp::CertSource::SelfSigned {
            dir: "/nonexistent".into(),
            domain: "a.example".into(),
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let mut c = c;
        c.dialback_secret = Some("s".into());
        let s = c.settings("a.example", dir.path(), cert).expect("settings");
        assert_eq!(
            s.routes.get("b.example"),
            Some(&Target::starttls("127.0.0.1:5270".parse().unwrap()))
        );
        assert!(!s.permits("evil.example"));
    }

    #[test]
    fn a_tls_route_is_direct_tls_and_tls_bind_is_off_by_default() {
        let c: S2sConfig = toml::from_str(
            "[routes]\n\"b.example\" = \"tls://127.0.0.1:5270\"\n\"c.example\" = \"127.0.0.1:5269\"\n",
        )
        .expect("parses");
        assert_eq!(c.tls_bind, None);
        assert!(c.routes["b.example"].direct_tls);
        assert!(!c.routes["c.example"].direct_tls);
        assert_eq!(
            c.routes["b.example"].addr,
            "127.0.0.1:5270".parse().unwrap()
        );
        let err = toml::from_str::<S2sConfig>("[routes]\n\"b.example\" = \"tcp://127.0.0.1:1\"\n")
            .expect_err("not a route");
        assert!(err.to_string().contains("tcp://127.0.0.1:1"), "{err}");
        let c: S2sConfig = toml::from_str("tls_bind = \"127.0.0.1:5270\"").expect("parses");
        assert_eq!(c.tls_bind, Some("127.0.0.1:5270".parse().unwrap()));
    }

    #[test]
    fn the_trust_store_is_unset_by_default_and_passed_on_when_set() {
        let cert = || server_xmpp::CertSource::SelfSigned {
            dir: "/nonexistent".into(),
            domain: "a.example".into(),
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let mut c: S2sConfig = toml::from_str("").expect("parses");
        c.dialback_secret = Some("s".into());
        let s = c
            .settings("a.example", dir.path(), cert())
            .expect("settings");
        assert_eq!(s.ca_file, None);
        let mut c: S2sConfig = toml::from_str("ca_file = \"/etc/ca.pem\"").expect("parses");
        c.dialback_secret = Some("s".into());
        let s = c
            .settings("a.example", dir.path(), cert())
            .expect("settings");
        assert_eq!(
            s.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
    }

    #[test]
    fn the_nameserver_is_the_systems_off_or_an_address() {
        let read = |text: &str| toml::from_str::<S2sConfig>(text).map(|c| c.nameserver);
        assert_eq!(read("").expect("default"), Nameserver::System);
        assert_eq!(read("nameserver = \"off\"").expect("off"), Nameserver::Off);
        assert_eq!(
            read("nameserver = \"127.0.0.1:5353\"").expect("address"),
            Nameserver::At("127.0.0.1:5353".parse().unwrap())
        );
        let err = read("nameserver = \"dns.example\"").expect_err("not an address");
        assert!(err.to_string().contains("dns.example"), "{err}");
    }
}
