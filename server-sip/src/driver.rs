//! The tokio side of the SIP service: one task on its own thread that moves events into the sans-IO core
//! ([`crate::core::SipPresence`]) and carries out what it asks — bytes onto sockets and connection writers,
//! inputs into the engine, account lookups from the store (here, on the service thread, as before the split:
//! a store read must not hold up an I/O worker) — and arms the one timer the core asks for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hashbrown::HashMap;
use presence_core::runtime::{self, Handle, Location, SharedSink};
use presence_core::store::Store;
use presence_core::{BareJid, SessionId};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::SipSettings;
use crate::core::{Event, Flow, Output, Runtime, SipPresence};
use crate::transport::Inbound;

/// Deliveries and watch updates that may wait for the service before the engine waits for it in turn.
const ENGINE_CHANNEL: usize = 8192;

/// How long a shutdown waits for the final NOTIFYs to leave.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(200);

/// The runtime's answers to the core's synchronous questions.
struct HubRuntime(Handle);

impl Runtime for HubRuntime {
    fn locate(&self, user: &BareJid) -> Location {
        self.0.locate(user)
    }

    fn new_session(&self) -> SessionId {
        self.0.new_session()
    }
}

/// The I/O around the core.
struct Driver<S> {
    core: SipPresence,
    store: Arc<S>,
    hub: Handle,
    udp: Arc<UdpSocket>,
    /// Writers of stream connections (TCP and TLS), by connection number.
    tcp: HashMap<u64, mpsc::Sender<Vec<u8>>>,
    deliveries_tx: SharedSink,
}

/// Runs the service until the sockets' queue closes or `stop` resolves; on `stop` every subscription is
/// terminated with a NOTIFY first (RFC 6665 §4.2.2).
pub async fn run<S: Store + Send + Sync + 'static>(
    settings: SipSettings,
    store: Arc<S>,
    hub: Handle,
    udp: Arc<UdpSocket>,
    mut inbound: mpsc::Receiver<Inbound>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let (deliveries_tx, mut deliveries) = runtime::shared_channel(ENGINE_CHANNEL);
    let (watch_tx, mut watches) = runtime::watch_channel(ENGINE_CHANNEL);
    if hub.watches(watch_tx).is_err() {
        return;
    }
    let core = SipPresence::new(
        settings,
        Instant::now(),
        Box::new(HubRuntime(hub.clone())),
        hub.metrics().clone(),
        runtime::random_bytes::<32>(),
        u64::from_be_bytes(runtime::random_bytes::<8>()),
    );
    let mut d = Driver {
        core,
        store,
        hub,
        udp,
        tcp: HashMap::new(),
        deliveries_tx,
    };
    tokio::pin!(stop);
    loop {
        let next = d.core.poll_timeout();
        tokio::select! {
            ev = inbound.recv() => {
                let Some(ev) = ev else { break };
                d.inbound(ev);
            }
            Some((session, msg)) = deliveries.recv() => d.handle(Event::Delivery(session, msg)),
            Some((watch, state)) = watches.recv() => d.handle(Event::Watch(watch, state)),
            _ = sleep_until(next), if next.is_some() => d.handle(Event::Timeout),
            _ = &mut stop => {
                d.handle(Event::Shutdown);
                // The NOTIFYs are queued on their flows; give TCP writers a moment to send them.
                tokio::time::sleep(SHUTDOWN_GRACE).await;
                break;
            }
        }
    }
}

impl<S: Store + Send + Sync + 'static> Driver<S> {
    fn inbound(&mut self, ev: Inbound) {
        let event = match ev {
            Inbound::Opened {
                flow,
                peer,
                tx,
                trusted_subject,
            } => {
                if let Some(conn) = flow.conn() {
                    self.tcp.insert(conn, tx);
                }
                Event::FlowOpened {
                    flow,
                    peer,
                    trusted_subject,
                }
            }
            Inbound::Closed { flow } => {
                if let Some(conn) = flow.conn() {
                    self.tcp.remove(&conn);
                }
                Event::FlowClosed(flow)
            }
            Inbound::Message { flow, parsed, raw } => Event::Message {
                flow,
                parsed,
                raw,
                engine_busy: self.hub.is_busy(),
                received: runtime::timestamp(),
            },
        };
        self.handle(event);
    }

    /// Hands the core one event and carries out everything it asks for, answers included.
    fn handle(&mut self, event: Event) {
        let now = Instant::now();
        self.core.handle(now, event);
        while let Some(out) = self.core.poll_output() {
            match out {
                Output::Transmit {
                    flow,
                    bytes,
                    client,
                } => {
                    if !self.transmit(flow, bytes) {
                        self.core.handle(now, Event::TransmitFailed { client });
                    }
                }
                Output::CloseFlow(flow) => {
                    if let Some(conn) = flow.conn() {
                        // Its writer ends when the sender is dropped, and the connection with it.
                        self.tcp.remove(&conn);
                    }
                }
                Output::OpenSession(session) => {
                    let _ = self.hub.attach_shared(session, self.deliveries_tx.clone());
                }
                Output::Submit(input) => {
                    if let Err(e) = self.hub.submit(input) {
                        tracing::warn!(error = %e, "an input from the SIP side was refused");
                    }
                }
                Output::SubmitAndFlush {
                    input,
                    session,
                    token,
                } => {
                    if self.hub.submit_and_flush(*input, session, token).is_err() {
                        self.core
                            .handle(now, Event::FlushRefused { session, token });
                    }
                }
                Output::CloseSession(session) => self.hub.close(session),
                Output::LookupAccount { lookup, user } => {
                    let result = self.store.account(&user);
                    self.core.handle(now, Event::Account { lookup, result });
                }
            }
        }
    }

    /// Sends bytes over a flow; whether they went.
    fn transmit(&mut self, flow: Flow, bytes: Vec<u8>) -> bool {
        match flow {
            // A full socket buffer is rare on loopback; a blocking send would stall every other peer.
            Flow::Udp(addr) => self.udp.try_send_to(&bytes, addr).is_ok(),
            // A TCP peer that lets its writer queue fill is not reading: it loses the connection rather than
            // grow our memory (its writer ends when the sender is dropped).
            Flow::Tcp(conn) | Flow::Tls(conn) => {
                match self.tcp.get(&conn).map(|tx| tx.try_send(bytes)) {
                    Some(Ok(())) => true,
                    Some(Err(_)) => {
                        tracing::warn!(conn, "SIP TCP peer is not reading: closing its connection");
                        self.tcp.remove(&conn);
                        false
                    }
                    None => false,
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
