//! The SIP/SIMPLE shell: a thin tokio layer over `presence-core` and `sip-codec` on UDP and TCP (same port).
//!
//! What it serves (RFC 3261 registrar, RFC 3903 PUBLISH, RFC 6665/3856 SUBSCRIBE/NOTIFY with RFC 3857 watcher
//! info, RFC 3428 MESSAGE) is translated into engine inputs: a SIP user is the same principal as the XMPP user of
//! the same address, with one roster, one policy and one composed presence. The engine runs on the hub thread
//! shared with the XMPP shell ([`server_xmpp::hub`]); this crate never decides presence or policy itself.
#![forbid(unsafe_code)]

pub mod credentials;
pub mod dialogs;
pub mod digest;
pub mod presence_map;
pub mod publications;
pub mod registrar;
mod service;
pub mod transport;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use presence_core::store::Store;
use presence_core::time::Timestamp;
use server_xmpp::hub::HubHandle;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

pub use service::ExpiryBounds;

/// How the SIP service is set up.
#[derive(Debug, Clone)]
pub struct SipSettings {
    /// The served domain, also the digest realm.
    pub domain: String,
    /// Where to listen (UDP and TCP).
    pub bind: SocketAddr,
    /// Codec limits; the message size limit is what gets 513.
    pub limits: sip_codec::Limits,
    /// How long a digest nonce stays valid.
    pub nonce_lifetime: Duration,
    /// Registration expiry bounds.
    pub registration: ExpiryBounds,
    /// Publication expiry bounds.
    pub publication: ExpiryBounds,
    /// Subscription expiry bounds.
    pub subscription: ExpiryBounds,
    /// Call-control peers whose unauthenticated PUBLISHes carry users' phone line and calendar state.
    pub trusted_peers: Vec<std::net::IpAddr>,
}

impl SipSettings {
    /// Defaults for `domain` on `bind`.
    pub fn new(domain: &str, bind: SocketAddr) -> Self {
        SipSettings {
            domain: domain.to_owned(),
            bind,
            limits: sip_codec::Limits {
                max_message_size: 32 * 1024,
                ..sip_codec::Limits::default()
            },
            nonce_lifetime: Duration::from_secs(300),
            registration: ExpiryBounds::default(),
            publication: ExpiryBounds::default(),
            subscription: ExpiryBounds::default(),
            trusted_peers: Vec::new(),
        }
    }
}

/// Why the SIP service could not start.
#[derive(Debug, thiserror::Error)]
pub enum SipServeError {
    /// A socket could not be opened.
    #[error("cannot listen for SIP on {transport} {addr}: {source}")]
    Bind {
        /// UDP or TCP.
        transport: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A bound, not yet running SIP service.
pub struct SipServer<S> {
    settings: SipSettings,
    store: Arc<S>,
    hub: HubHandle,
    udp: Arc<UdpSocket>,
    tcp: TcpListener,
}

impl<S: Store + Send + Sync + 'static> SipServer<S> {
    /// Opens the UDP socket and the TCP listener on the same address; `hub` is the engine shared with the XMPP
    /// shell.
    pub async fn bind(
        settings: SipSettings,
        store: Arc<S>,
        hub: HubHandle,
    ) -> Result<Self, SipServeError> {
        let addr = settings.bind;
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|source| SipServeError::Bind {
                transport: "UDP",
                addr,
                source,
            })?;
        // With port 0 the OS picked the UDP port; TCP takes the same one.
        let addr = udp.local_addr().map_err(|source| SipServeError::Bind {
            transport: "UDP",
            addr,
            source,
        })?;
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|source| SipServeError::Bind {
                transport: "TCP",
                addr,
                source,
            })?;
        let settings = SipSettings {
            bind: addr,
            ..settings
        };
        Ok(SipServer {
            settings,
            store,
            hub,
            udp: Arc::new(udp),
            tcp,
        })
    }

    /// The address both transports listen on.
    pub fn local_addr(&self) -> SocketAddr {
        self.settings.bind
    }

    /// Serves forever.
    pub async fn run(self) {
        let (tx, rx) = mpsc::unbounded_channel();
        let limits = self.settings.limits;
        tokio::spawn(transport::udp_loop(self.udp.clone(), limits, tx.clone()));
        tokio::spawn(transport::tcp_loop(self.tcp, limits, tx));
        service::Service::run(self.settings, self.store, self.hub, self.udp, rx).await;
    }
}

/// Wall-clock time for message stamps (the one clock read of the shell; the engine gets it as data).
pub(crate) fn timestamp() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Timestamp::from_millis(ms)
}
