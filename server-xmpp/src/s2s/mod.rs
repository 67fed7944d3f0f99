//! Federation: XMPP server-to-server streams (RFC 6120, `jabber:server`) with other domains.
//!
//! Decisions:
//! - **Finding peers.** Static routes (`[s2s.routes]`) first: each routed domain is attached to the runtime's
//!   domain table (`presence_core::runtime::domains`), so the engine's stanzas for it come here. Then, unless
//!   DNS is off, every other domain is attached too (`found`), and its servers are looked up when a stream is
//!   opened: DNS SRV `_xmpps-server._tcp` and `_xmpp-server._tcp`, then A/AAAA (`resolve`, hickory-resolver).
//!   A domain that cannot be found bounces with `remote-server-not-found`.
//! - **Direct TLS (XEP-0368).** Optionally a second listener (`tls_bind`) where TLS starts at once, ALPN
//!   `xmpp-server`; outbound, a route marked direct TLS or an `_xmpps-server._tcp` SRV answer is reached the same
//!   way (`resolve::Target`). Such a stream is already encrypted: no STARTTLS, the rest is the same.
//! - **Security.** STARTTLS (rustls) on every stream, required by default (`require_tls`); then the peer's
//!   domain is authenticated with SASL EXTERNAL when its certificate proves it (RFC 6120 §13.7.1.2: chains to
//!   the configured trust store `ca_file` and names the domain, RFC 6125 DNS-ID, checked by webpki; `trust`),
//!   else with server dialback (XEP-0220, keys per XEP-0185), whose call back to the peer's authoritative server
//!   proves the domain whatever certificate it shows. Without `ca_file` no certificate is trusted: dialback only.
//!   Outbound, our certificate is shown as the TLS client certificate, and EXTERNAL is used when the peer offers
//!   it (a peer offers it only when our certificate satisfied it); a refused EXTERNAL falls back to dialback.
//! - **Outbound.** One connection per peer domain, opened on the first stanza and reused; stanzas wait in a
//!   bounded queue while it is set up and bounce to their senders with `remote-server-timeout` when it cannot be
//!   (`outbound`). An idle connection is closed.
//! - **Inbound.** A peer's stanzas enter the engine as stanzas from another domain (`Input::FromRemote`), only
//!   from a domain it authenticated and only to the served domain (`inbound`, `peer`).
//! - **Policy.** `allow` (when not empty) and `deny` name whole peer domains; a denied domain is neither
//!   connected to nor accepted.

pub mod dialback;
mod found;
mod inbound;
mod outbound;
mod peer;
pub mod resolve;
mod stream;
pub mod trust;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use presence_core::runtime::{Attached, Handle};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::{CertSource, ServeError};
pub use dialback::Secret;
pub use resolve::{Nameserver, Target};
pub use trust::{TrustError, TrustStore};

/// How federation is set up.
#[derive(Debug, Clone)]
pub struct S2sSettings {
    /// The served domain: what peers connect to and what our stanzas come from.
    pub domain: String,
    /// Where to listen for peers; `None`: outbound only.
    pub bind: Option<SocketAddr>,
    /// The certificate offered to peers (STARTTLS).
    pub cert: CertSource,
    /// Where peers connect with TLS from the first byte (XEP-0368, ALPN `xmpp-server`); `None`: no such port.
    pub tls_bind: Option<SocketAddr>,
    /// Where each peer domain is reached (lower-case domain to address, and whether with direct TLS), whatever
    /// DNS says.
    pub routes: HashMap<String, Target>,
    /// The DNS asked for the other peer domains' servers.
    pub nameserver: Nameserver,
    /// When not empty, the only peer domains federated with.
    pub allow: Vec<String>,
    /// Peer domains never federated with.
    pub deny: Vec<String>,
    /// Whether a stream must be encrypted before dialback.
    pub require_tls: bool,
    /// The CAs (PEM) whose certificates prove a peer's domain (SASL EXTERNAL); `None`: dialback only.
    pub ca_file: Option<std::path::PathBuf>,
    /// The secret dialback keys are made from.
    pub secret: Secret,
    /// Codec limits per stream.
    pub limits: xmpp_codec::Limits,
    /// Time to open and authenticate a stream (either way).
    pub connect_timeout: Duration,
    /// Silence after which a stream (either way) is closed.
    pub idle_timeout: Duration,
    /// Stanzas that may wait for one peer.
    pub outbound_queue: usize,
    /// Inbound streams at once.
    pub max_inbound: usize,
}

impl S2sSettings {
    /// Defaults for `domain`, listening on `bind`.
    pub fn new(domain: &str, bind: Option<SocketAddr>, cert: CertSource, secret: Secret) -> Self {
        S2sSettings {
            domain: domain.to_ascii_lowercase(),
            bind,
            tls_bind: None,
            cert,
            routes: HashMap::new(),
            nameserver: Nameserver::System,
            allow: Vec::new(),
            deny: Vec::new(),
            require_tls: true,
            ca_file: None,
            secret,
            limits: xmpp_codec::Limits::default(),
            connect_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(300),
            outbound_queue: 1000,
            max_inbound: 1000,
        }
    }

    /// Whether the policy lets us federate with `domain`.
    pub fn permits(&self, domain: &str) -> bool {
        let domain = domain.to_ascii_lowercase();
        if domain == self.domain || self.deny.iter().any(|d| d.eq_ignore_ascii_case(&domain)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|d| d.eq_ignore_ascii_case(&domain))
    }
}

/// The ALPN protocol name XEP-0368 gives server-to-server XMPP over direct TLS.
pub const ALPN_XMPP_SERVER: &[u8] = b"xmpp-server";

/// The direct-TLS listener's configuration: the STARTTLS one, answering ALPN `xmpp-server` (a peer offering no
/// ALPN is still served; one offering only other protocols is refused in the handshake).
fn direct_server_config(base: &rustls::ServerConfig) -> Arc<rustls::ServerConfig> {
    let mut config = base.clone();
    config.alpn_protocols = vec![ALPN_XMPP_SERVER.to_vec()];
    Arc::new(config)
}

/// The client configuration for direct TLS: the STARTTLS one, offering ALPN `xmpp-server` (XEP-0368 §3).
fn direct_client_config(base: &rustls::ClientConfig) -> Arc<rustls::ClientConfig> {
    let mut config = base.clone();
    config.alpn_protocols = vec![ALPN_XMPP_SERVER.to_vec()];
    Arc::new(config)
}

/// A listener on `addr`, when there is one.
async fn listen(addr: Option<SocketAddr>) -> Result<Option<TcpListener>, ServeError> {
    match addr {
        Some(addr) => TcpListener::bind(addr)
            .await
            .map(Some)
            .map_err(|source| ServeError::Bind { addr, source }),
        None => Ok(None),
    }
}

/// What the listener and the outbound connections share.
pub(crate) struct Shared {
    settings: S2sSettings,
    hub: Handle,
    acceptor: tokio_rustls::TlsAcceptor,
    connector: tokio_rustls::TlsConnector,
    /// The same two for direct TLS (XEP-0368): they speak ALPN `xmpp-server`.
    direct_acceptor: tokio_rustls::TlsAcceptor,
    direct_connector: tokio_rustls::TlsConnector,
    /// Which certificates prove a peer's domain.
    trust: TrustStore,
    inbound: Arc<Semaphore>,
    /// Where peer domains' servers are.
    resolver: resolve::Resolver,
    /// Where outbound connections' tasks run (the sinks are called on the engine thread).
    tasks: tokio::runtime::Handle,
}

/// A bound, not yet running federation service.
pub struct S2sServer {
    listener: Option<TcpListener>,
    /// The direct-TLS listener (XEP-0368), when configured.
    direct_listener: Option<TcpListener>,
    shared: Arc<Shared>,
    /// The routed domains (and with DNS, every other domain), attached to the runtime while this lives.
    _routes: Vec<Attached>,
}

impl S2sServer {
    /// Opens the listener (when configured) and attaches the routed domains; stanzas go to the engine behind
    /// `hub`. Must be called on the tokio runtime.
    pub async fn bind(settings: S2sSettings, hub: Handle) -> Result<Self, ServeError> {
        let trust = match &settings.ca_file {
            Some(path) => TrustStore::load(path)?,
            None => TrustStore::none(),
        };
        // Peers are asked for a certificate only when one could prove anything.
        let server_config = if trust.is_empty() {
            crate::tls::server_config(&settings.cert)?
        } else {
            crate::tls::server_config_with_client_auth(&settings.cert, trust::AnyPeerCert::new())?
        };
        let direct_acceptor = tokio_rustls::TlsAcceptor::from(direct_server_config(&server_config));
        let acceptor = tokio_rustls::TlsAcceptor::from(server_config);
        let client_config = stream::client_config(&settings.cert)?;
        let direct_connector =
            tokio_rustls::TlsConnector::from(direct_client_config(&client_config));
        let connector = tokio_rustls::TlsConnector::from(client_config);
        let listener = listen(settings.bind).await?;
        let direct_listener = listen(settings.tls_bind).await?;
        let resolver = resolve::Resolver::new(settings.routes.clone(), settings.nameserver)?;
        let shared = Arc::new(Shared {
            inbound: Arc::new(Semaphore::new(settings.max_inbound.max(1))),
            resolver,
            settings,
            hub,
            acceptor,
            connector,
            direct_acceptor,
            direct_connector,
            trust,
            tasks: tokio::runtime::Handle::current(),
        });
        let mut routes = Vec::new();
        for domain in shared.settings.routes.keys() {
            if !shared.settings.permits(domain) {
                info!(%domain, "s2s route not attached: the domain is denied");
                continue;
            }
            let sink = Arc::new(outbound::Peer::new(domain, shared.clone()));
            match shared.hub.attach_domain(domain, sink) {
                Ok(a) => routes.push(a),
                Err(e) => warn!(%domain, error = %e, "s2s route not attached"),
            }
        }
        if shared.resolver.has_dns() {
            let sink = Arc::new(found::FoundPeers::new(shared.clone()));
            match shared.hub.attach_other_domains(sink) {
                Ok(a) => routes.push(a),
                Err(e) => warn!(error = %e, "s2s: domains found by DNS not attached"),
            }
        }
        Ok(S2sServer {
            listener,
            direct_listener,
            shared,
            _routes: routes,
        })
    }

    /// The address the listener is bound to, if there is one.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The address the direct-TLS listener is bound to, if there is one.
    pub fn direct_tls_addr(&self) -> Option<SocketAddr> {
        self.direct_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// Serves an accepted peer under the inbound cap (both ports count against it).
    fn admit(&self, accepted: std::io::Result<(TcpStream, SocketAddr)>, direct_tls: bool) {
        match accepted {
            Ok((tcp, peer)) => match self.shared.inbound.clone().try_acquire_owned() {
                Ok(permit) => {
                    tokio::spawn(inbound::serve(
                        tcp,
                        peer,
                        self.shared.clone(),
                        permit,
                        direct_tls,
                    ));
                }
                Err(_) => warn!(%peer, "s2s stream refused: too many inbound streams"),
            },
            Err(e) => warn!(error = %e, "s2s accept failed"),
        }
    }

    /// Accepts peers until `stop` resolves; the routes stay attached until then.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        info!(
            addr = ?self.local_addr(),
            direct_tls = ?self.direct_tls_addr(),
            routes = self.shared.settings.routes.len(),
            "XMPP s2s up"
        );
        tokio::pin!(stop);
        loop {
            let failed = tokio::select! {
                accepted = crate::accept_on(self.listener.as_ref()) => {
                    let failed = accepted.is_err();
                    self.admit(accepted, false);
                    failed
                }
                accepted = crate::accept_on(self.direct_listener.as_ref()) => {
                    let failed = accepted.is_err();
                    self.admit(accepted, true);
                    failed
                }
                () = &mut stop => break,
            };
            if failed {
                // Out of descriptors, typically: a pause instead of a busy loop.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        info!("XMPP s2s closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_denies_listed_and_unlisted_domains() {
        let cert = CertSource::SelfSigned {
            dir: "/nonexistent".into(),
            domain: "a.example".into(),
        };
        let mut s = S2sSettings::new("a.example", None, cert, Secret::new("x"));
        assert!(s.permits("b.example"));
        assert!(!s.permits("A.example"), "never with ourselves");
        s.deny = vec!["evil.example".into()];
        assert!(!s.permits("Evil.Example"));
        s.allow = vec!["b.example".into()];
        assert!(s.permits("b.example"));
        assert!(!s.permits("c.example"));
    }
}
