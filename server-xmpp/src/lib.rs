//! The XMPP client-to-server shell: a thin tokio layer over `presence-core` and `xmpp-codec`.
//!
//! Each connection runs on the I/O workers: TCP, mandatory STARTTLS (rustls) or direct TLS on a second port
//! (XEP-0368), SASL (SCRAM-SHA-256, SCRAM-SHA-1,
//! PLAIN over TLS), resource binding, then stanzas translated to engine inputs. Web clients reach the same
//! connection state machine over RFC 7395 WebSocket on the process's HTTP listener (`web`). The engine runs behind
//! `presence_core::runtime`, shared with every other shell of the process. Nothing here decides behaviour:
//! presence, rosters, forking and offline storage are the engine's.
#![forbid(unsafe_code)]

pub mod archive;
pub mod caps;
pub mod component;
pub mod connection;
pub mod csi;
pub mod directory;
pub mod s2s;
pub mod sasl;
pub mod sm;
pub mod tls;
pub mod tls_stream;
pub mod translate;
pub mod web;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use presence_core::rate::Rate;
use presence_core::runtime::Handle;
use presence_core::store::{Store, StoreError};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{info, warn};

pub use tls::{CertSource, TlsError};

/// How the XMPP service is set up.
#[derive(Debug, Clone)]
pub struct XmppSettings {
    /// The served domain.
    pub domain: String,
    /// Where to listen for clients (STARTTLS).
    pub bind: SocketAddr,
    /// Where to listen for clients that start TLS at once (XEP-0368), if anywhere.
    pub direct_tls_bind: Option<SocketAddr>,
    /// The TLS certificate.
    pub cert: CertSource,
    /// Codec limits per connection.
    pub limits: xmpp_codec::Limits,
    /// Connections allowed to be authenticating at once.
    pub max_unauthenticated: usize,
    /// Time from connect to a bound session.
    pub handshake_timeout: Duration,
    /// Inbound silence after which a bound session is closed (clients keep alive with pings or whitespace).
    /// With server pings on, a client that answers them is never silent this long; this is the backstop for
    /// `ping_interval: None`.
    pub idle_timeout: Duration,
    /// Inbound silence after which the server pings the client (XEP-0199); `None`: no server pings.
    pub ping_interval: Option<Duration>,
    /// How long a pinged client may stay silent before its connection is closed as dead.
    pub ping_timeout: Duration,
    /// Stanzas that may wait for one slow client before its session is ended.
    pub outbound_queue: usize,
    /// Bytes that may wait for one slow client before its session is ended (a roster result can be large).
    pub outbound_bytes: usize,
    /// Inbound bytes per second (and burst) of one connection; reading pauses above it.
    pub rate: Rate,
    /// The features offered to bound clients (and listed in disco#info).
    pub features: translate::Features,
    /// How long a stream-managed session whose connection dropped stays bound, waiting to be resumed
    /// (XEP-0198); then it is closed and its unacknowledged messages are held offline.
    pub sm_resume_timeout: Duration,
    /// Unacknowledged stanzas (plus, while detached, deliveries not yet written) one session may have; past it
    /// the session is ended and its messages held offline.
    pub sm_max_unacked: usize,
    /// Senders whose latest presence may wait for an inactive client (XEP-0352); past it everything waiting
    /// is sent.
    pub csi_max_queued: usize,
}

impl XmppSettings {
    /// Defaults for `domain` on `bind` with a self-signed certificate kept in `tls_dir`.
    pub fn new(domain: &str, bind: SocketAddr, tls_dir: std::path::PathBuf) -> Self {
        XmppSettings {
            domain: domain.to_owned(),
            bind,
            direct_tls_bind: None,
            cert: CertSource::SelfSigned {
                dir: tls_dir,
                domain: domain.to_owned(),
            },
            limits: xmpp_codec::Limits::default(),
            max_unauthenticated: 1000,
            handshake_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(600),
            ping_interval: Some(Duration::from_secs(60)),
            ping_timeout: Duration::from_secs(30),
            outbound_queue: 1000,
            outbound_bytes: 1024 * 1024,
            rate: Rate {
                per_second: 64 * 1024,
                burst: 256 * 1024,
            },
            features: translate::Features::standard(),
            sm_resume_timeout: Duration::from_secs(300),
            sm_max_unacked: 500,
            csi_max_queued: 1000,
        }
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Federation's DNS could not be set up.
    #[error(transparent)]
    Resolver(#[from] s2s::resolve::ResolverSetupError),
    /// Federation's trust store could not be read.
    #[error(transparent)]
    Trust(#[from] s2s::TrustError),
}

/// A bound, not yet running XMPP service.
pub struct XmppServer<S> {
    listener: TcpListener,
    /// The direct-TLS listener (XEP-0368), when configured.
    direct: Option<TcpListener>,
    shared: Arc<connection::Shared<S>>,
}

impl<S: Store + Send + Sync + 'static> XmppServer<S> {
    /// Opens the listener and prepares TLS; stanzas go to the engine behind `hub`.
    pub async fn bind(
        settings: XmppSettings,
        store: Arc<S>,
        hub: Handle,
    ) -> Result<Self, ServeError> {
        let tls = tls::server_config(&settings.cert)?;
        let listen = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind { addr, source })
        };
        let listener = listen(settings.bind).await?;
        let direct = match settings.direct_tls_bind {
            Some(addr) => Some(listen(addr).await?),
            None => None,
        };
        let shared = Arc::new(connection::Shared {
            domain: settings.domain,
            direct_tls: tokio_rustls::TlsAcceptor::from(tls::direct_tls_config(&tls)),
            tls: tokio_rustls::TlsAcceptor::from(tls),
            hub,
            store,
            unauthenticated: Arc::new(Semaphore::new(settings.max_unauthenticated)),
            limits: settings.limits,
            handshake_timeout: settings.handshake_timeout,
            idle_timeout: settings.idle_timeout,
            ping_interval: settings.ping_interval,
            ping_timeout: settings.ping_timeout,
            outbound_queue: settings.outbound_queue,
            outbound_bytes: settings.outbound_bytes,
            rate: settings.rate,
            secret: random_bytes::<16>(),
            features: settings.features,
            sm: Arc::new(sm::Registry::default()),
            sm_resume_timeout: settings.sm_resume_timeout,
            sm_max_unacked: settings.sm_max_unacked,
            csi_max_queued: settings.csi_max_queued,
            caps: Arc::new(caps::Cache::default()),
        });
        Ok(XmppServer {
            listener,
            direct,
            shared,
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The WebSocket endpoint of this service (RFC 7395), for the process's HTTP listener: its clients share
    /// this listener's caps, limits and engine. `security` is that of the HTTP listener's transport.
    pub fn websocket(&self, security: web::Security) -> web::Endpoint<S> {
        web::Endpoint::new(self.shared.clone(), security)
    }

    /// The address the direct-TLS listener is bound to, if there is one.
    pub fn direct_tls_addr(&self) -> std::io::Result<Option<SocketAddr>> {
        self.direct
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()
    }

    /// Accepts connections until `stop` resolves; connections already open end when the engine shuts down.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        let addr = self.listener.local_addr().ok();
        let direct_tls = self.direct.as_ref().and_then(|l| l.local_addr().ok());
        info!(?addr, ?direct_tls, "XMPP listener up");
        tokio::pin!(stop);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    self.accepted(accepted, connection::Transport::StartTls).await;
                }
                accepted = accept_on(self.direct.as_ref()) => {
                    self.accepted(accepted, connection::Transport::DirectTls).await;
                }
                () = &mut stop => break,
            }
        }
        info!("XMPP listener closed");
    }

    /// Admits an accepted connection under the shared caps (both ports count against the same ones) and
    /// serves it.
    async fn accepted(
        &self,
        accepted: std::io::Result<(tokio::net::TcpStream, SocketAddr)>,
        transport: connection::Transport,
    ) {
        match accepted {
            Ok((tcp, peer)) => {
                let admitted = self.shared.hub.admission().admit(peer.ip());
                if let Err(refused) = &admitted {
                    self.shared.hub.metrics().rejected(refused.rejection());
                }
                let connection =
                    connection::serve(tcp, peer, self.shared.clone(), admitted, transport);
                // What each client's task keeps, whatever it does (issue 17's idle measurements).
                tracing::debug!(
                    bytes = std::mem::size_of_val(&connection),
                    "connection task state"
                );
                tokio::spawn(connection);
            }
            Err(e) => {
                // Out of descriptors or similar: back off instead of spinning.
                warn!(error = %e, ?transport, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Accepts on `listener`, or waits forever when there is none (a listener that is not configured).
async fn accept_on(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

pub use presence_core::runtime::random_bytes;

/// A random identifier for stream ids.
pub fn random_id() -> String {
    random_bytes::<12>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
