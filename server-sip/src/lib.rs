//! The SIP/SIMPLE shell: a thin tokio layer over `presence-core` and `sip-codec` on UDP and TCP (same port) and
//! TLS (its own port, RFC 3261 §26.2).
//!
//! What it serves (RFC 3261 registrar, RFC 3903 PUBLISH of presence and of RFC 4235 dialog state, RFC 6665/3856
//! SUBSCRIBE/NOTIFY with RFC 3857 watcher info, RFC 3428 MESSAGE) is translated into engine inputs: a SIP user is
//! the same principal as the XMPP user of the same address, with one roster, one policy and one composed presence.
//! The engine runs behind `presence_core::runtime`, shared with the other shells of the process; this crate never
//! decides presence or policy itself.
//!
//! Layout: [`core`] is every piece of SIP state as a sans-IO state machine ([`SipPresence`]: events in, outputs
//! out, time given); `driver` (private) runs it under tokio, and [`transport`] holds the sockets.
//!
//! Threads: the service (the core and its driver) runs on its own thread, because digest checks read the store
//! and a store read must not hold up an I/O worker; the UDP socket is read on that thread too (a datagram wakes
//! one thread, not a worker and then the service). TCP and TLS connections are read on the tokio I/O workers.
//! The service hands its inputs to the engine with `Handle::submit_here`: when the engine has nothing queued, the
//! service thread runs it for that input, so a PUBLISH's NOTIFYs come back without waking the engine's thread and
//! then this one (PUBLISH→NOTIFY p99 at 1,000 PUBLISH/s 9.9 → 2.9 ms, benches/sip).
#![forbid(unsafe_code)]

pub mod caps;
pub mod core;
pub mod credentials;
pub mod dialog_publications;
pub mod dialogs;
pub mod digest;
mod driver;
pub mod presence_map;
pub mod publications;
pub mod registrar;
pub mod tls;
pub mod transport;
mod udp_batch;
mod udp_recv;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use presence_core::rate::Rate;
use presence_core::runtime::Handle;
use presence_core::store::Store;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};

pub use crate::core::{ExpiryBounds, SipPresence};
pub use tls::SipTls;

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
    /// Inbound bytes per second (and burst) per source address; trusted peers are exempt.
    pub rate: Rate,
    /// Messages from the sockets that may wait for the service (UDP drops past it, TCP stops reading).
    pub inbound_queue: usize,
    /// What one user and one endpoint of theirs may hold: publications, subscriptions, bindings.
    pub caps: caps::StateCaps,
    /// The TLS listener; `None`: no SIP over TLS.
    pub tls: Option<SipTls>,
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
            rate: Rate {
                per_second: 256 * 1024,
                burst: 1024 * 1024,
            },
            inbound_queue: 4096,
            caps: caps::StateCaps::default(),
            tls: None,
        }
    }
}

/// Why the SIP service could not start.
#[derive(Debug, thiserror::Error)]
pub enum SipServeError {
    /// The service thread could not be started.
    #[error("cannot start the SIP service thread: {0}")]
    Thread(std::io::Error),
    /// A socket could not be opened.
    #[error("cannot listen for SIP on {transport} {addr}: {source}")]
    Bind {
        /// UDP, TCP or TLS.
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
    hub: Handle,
    /// Registered with the service thread's runtime when it runs (see `run`).
    udp: std::net::UdpSocket,
    tcp: TcpListener,
    tls: Option<TcpListener>,
}

impl<S: Store + Send + Sync + 'static> SipServer<S> {
    /// Opens the UDP socket and the TCP listener on the same address; `hub` is the engine shared with the other
    /// shells.
    pub async fn bind(
        settings: SipSettings,
        store: Arc<S>,
        hub: Handle,
    ) -> Result<Self, SipServeError> {
        let addr = settings.bind;
        let udp = udp_socket(addr).map_err(|source| SipServeError::Bind {
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
        let mut settings = SipSettings {
            bind: addr,
            ..settings
        };
        let tls = match settings.tls.as_mut() {
            Some(t) => {
                let listener =
                    TcpListener::bind(t.bind)
                        .await
                        .map_err(|source| SipServeError::Bind {
                            transport: "TLS",
                            addr: t.bind,
                            source,
                        })?;
                // With port 0 the OS picked one; Via and Contact must name the real one.
                t.bind = listener
                    .local_addr()
                    .map_err(|source| SipServeError::Bind {
                        transport: "TLS",
                        addr: t.bind,
                        source,
                    })?;
                Some(listener)
            }
            None => None,
        };
        Ok(SipServer {
            settings,
            store,
            hub,
            udp,
            tcp,
            tls,
        })
    }

    /// The address UDP and TCP listen on.
    pub fn local_addr(&self) -> SocketAddr {
        self.settings.bind
    }

    /// The address TLS listens on, if it does.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.settings.tls.as_ref().map(|t| t.bind)
    }

    /// Serves until `stop` resolves, then ends every subscription with a final NOTIFY and stops.
    pub async fn run(self, stop: impl Future<Output = ()>) -> Result<(), SipServeError> {
        let (tx, rx) = mpsc::channel(self.settings.inbound_queue.max(1));
        let intake = transport::Intake {
            tx,
            limits: self.settings.limits,
            rate: self.settings.rate,
            trusted: self.settings.trusted_peers.clone().into(),
            hub: self.hub.clone(),
            next_conn: Arc::new(AtomicU64::new(1)),
        };
        let tls = match (self.tls, &self.settings.tls) {
            (Some(listener), Some(t)) => Some(tokio::spawn(transport::tls_loop(
                listener,
                tokio_rustls::TlsAcceptor::from(t.config.clone()),
                t.trusted_subjects.clone().into(),
                intake.clone(),
            ))),
            _ => None,
        };
        let udp_intake = intake.clone();
        let tcp = tokio::spawn(transport::tcp_loop(self.tcp, intake));
        let (stop_tx, stop_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let addr = self.settings.bind;
        let tls_addr = self.settings.tls.as_ref().map(|t| t.bind);
        let (settings, store, hub, socket) = (self.settings, self.store, self.hub, self.udp);
        std::thread::Builder::new()
            .name("sip-service".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a current-thread runtime builds");
                rt.block_on(async move {
                    // UDP is read on this thread, beside the core, not on the I/O workers: a datagram then
                    // wakes one thread instead of a worker and then this one (thread wake-ups were a fifth of
                    // the CPU per PUBLISH under load), and a burst is taken in one wake.
                    let socket = match UdpSocket::from_std(socket) {
                        Ok(s) => Arc::new(s),
                        Err(e) => {
                            tracing::error!(error = %e, "SIP UDP socket could not join the service thread");
                            return;
                        }
                    };
                    let reader = tokio::spawn(transport::udp_loop(socket.clone(), udp_intake));
                    driver::run(settings, store, hub, socket, rx, stop_rx).await;
                    reader.abort();
                });
                let _ = done_tx.send(());
            })
            .map_err(SipServeError::Thread)?;
        tracing::info!(%addr, tls = ?tls_addr, "SIP listener up");
        let mut done_rx = done_rx;
        tokio::select! {
            () = stop => {
                let _ = stop_tx.send(());
                let _ = (&mut done_rx).await;
            }
            _ = &mut done_rx => {}
        }
        tcp.abort();
        if let Some(tls) = tls {
            tls.abort();
        }
        Ok(())
    }
}

/// What the UDP socket asks the kernel to buffer each way; the kernel caps it at `net.core.rmem_max` /
/// `wmem_max`. One PUBLISH fans out into a NOTIFY per watcher and each is answered, so a burst of answers
/// arrives at once: with the kernel's default (about 208 KiB) a burst of 20,000 NOTIFY answers per second
/// overflowed the receive buffer (datagrams dropped, then retransmitted: more work, not less).
const UDP_BUFFER: usize = 4 * 1024 * 1024;

/// The SIP UDP socket, bound to `addr`, with [`UDP_BUFFER`] asked for.
fn udp_socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // A smaller buffer than asked for is still a working socket: the kernel's cap is the operator's choice.
    if let Err(e) = socket.set_recv_buffer_size(UDP_BUFFER) {
        tracing::debug!(error = %e, "SIP UDP receive buffer left at the kernel's default");
    }
    if let Err(e) = socket.set_send_buffer_size(UDP_BUFFER) {
        tracing::debug!(error = %e, "SIP UDP send buffer left at the kernel's default");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}
