//! The XMPP client-to-server shell: a thin tokio layer over `presence-core` and `xmpp-codec`.
//!
//! Each connection runs on the I/O workers: TCP, mandatory STARTTLS (rustls), SASL (SCRAM-SHA-256, SCRAM-SHA-1,
//! PLAIN over TLS), resource binding, then stanzas translated to engine inputs. One hub thread owns the engine and
//! the store (see [`hub`]). Nothing here decides behaviour: presence, rosters, forking and offline storage are the
//! engine's.
#![forbid(unsafe_code)]

pub mod connection;
pub mod hub;
pub mod sasl;
pub mod tls;
pub mod translate;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use presence_core::store::{Store, StoreError};
use presence_core::{Engine, EngineConfig};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use tls::{CertSource, TlsError};

/// How the XMPP service is set up.
#[derive(Debug, Clone)]
pub struct XmppSettings {
    /// The served domain.
    pub domain: String,
    /// Where to listen for clients.
    pub bind: SocketAddr,
    /// The TLS certificate.
    pub cert: CertSource,
    /// The engine's configuration.
    pub engine: EngineConfig,
    /// Codec limits per connection.
    pub limits: xmpp_codec::Limits,
    /// Connections allowed to be authenticating at once.
    pub max_unauthenticated: usize,
    /// Time from connect to a bound session.
    pub handshake_timeout: Duration,
    /// Silence after which a bound session is closed (clients keep alive with pings or whitespace).
    pub idle_timeout: Duration,
}

impl XmppSettings {
    /// Defaults for `domain` on `bind` with a self-signed certificate kept in `tls_dir`.
    pub fn new(domain: &str, bind: SocketAddr, tls_dir: std::path::PathBuf) -> Self {
        XmppSettings {
            domain: domain.to_owned(),
            bind,
            cert: CertSource::SelfSigned {
                dir: tls_dir,
                domain: domain.to_owned(),
            },
            engine: EngineConfig::for_domain(domain),
            limits: xmpp_codec::Limits::default(),
            max_unauthenticated: 1000,
            handshake_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(600),
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
    /// The hub thread could not be started.
    #[error("cannot start the engine thread: {0}")]
    Thread(std::io::Error),
}

/// A bound, not yet running XMPP service.
pub struct XmppServer<S> {
    listener: TcpListener,
    shared: Arc<connection::Shared<S>>,
}

impl<S: Store + Send + Sync + 'static> XmppServer<S> {
    /// Opens the listener, prepares TLS and starts the engine thread.
    pub async fn bind(settings: XmppSettings, store: Arc<S>) -> Result<Self, ServeError> {
        let held = store.offline_total()?;
        let engine = Engine::new(settings.engine.clone()).with_offline_total(held);
        let hub = hub::spawn(engine, store.clone()).map_err(ServeError::Thread)?;
        Self::bind_with_hub(settings, store, hub).await
    }

    /// Like [`XmppServer::bind`], feeding an engine hub that already runs (shared with the SIP service).
    pub async fn bind_with_hub(
        settings: XmppSettings,
        store: Arc<S>,
        hub: hub::HubHandle,
    ) -> Result<Self, ServeError> {
        let tls = tls::server_config(&settings.cert)?;
        let listener =
            TcpListener::bind(settings.bind)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: settings.bind,
                    source,
                })?;
        let shared = Arc::new(connection::Shared {
            domain: settings.domain,
            tls: tokio_rustls::TlsAcceptor::from(tls),
            hub,
            store,
            unauthenticated: Arc::new(Semaphore::new(settings.max_unauthenticated)),
            limits: settings.limits,
            handshake_timeout: settings.handshake_timeout,
            idle_timeout: settings.idle_timeout,
            next_session: AtomicU64::new(1),
            secret: random_bytes::<16>(),
        });
        Ok(XmppServer { listener, shared })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections forever.
    pub async fn run(self) {
        loop {
            match self.listener.accept().await {
                Ok((tcp, _)) => {
                    tokio::spawn(connection::serve(tcp, self.shared.clone()));
                }
                Err(e) => {
                    // Out of descriptors or similar: back off instead of spinning.
                    eprintln!("presenced: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the operating system's random source is available");
    b
}

/// A random identifier for stream ids.
pub fn random_id() -> String {
    random_bytes::<12>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
