//! The tokio side of the SIP service: one task on its own thread that moves events into the sans-IO core
//! ([`crate::core::SipPresence`]) and carries out what it asks — bytes onto sockets and connection writers,
//! inputs into the engine, account lookups from the store (here, on the service thread, as before the split:
//! a store read must not hold up an I/O worker) — and arms the one timer the core asks for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hashbrown::HashMap;
use presence_core::runtime::{self, Handle, Location, SharedSink};
use presence_core::store::Store;
use presence_core::{BareJid, SessionId};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::SipSettings;
use crate::core::{Event, Flow, Output, Runtime, SipPresence};
use crate::transport::Inbound;
use crate::udp_batch::UdpBatch;

/// Deliveries and watch updates that may wait for the service before the engine waits for it in turn.
const ENGINE_CHANNEL: usize = 8192;

/// Events taken from one source at a time. The datagrams they produce are sent when the batch is done, so a
/// PUBLISH's 200 and NOTIFYs wait for every event before them in its batch: at 64, under a PUBLISH load at
/// 1,000/s with 10 watchers each, that was a median of 1.1 ms from the PUBLISH reaching the server to its 200
/// leaving (p99 4 ms, as the wire saw it: benches/sip `CAPTURE_RATE`); at 8 it is 0.3 ms (p99 1.1 ms), with the
/// same CPU per PUBLISH, as the loop's own cost is small beside the events'.
const BATCH: usize = 8;

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
    tcp: HashMap<u64, mpsc::Sender<Bytes>>,
    /// Datagrams gathered while a batch of events is handled, sent at its end.
    udp_out: UdpBatch,
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
        udp_out: UdpBatch::default(),
        deliveries_tx,
    };
    tokio::pin!(stop);
    // One timer, moved when the core's next deadline moves: a fresh `Sleep` per event registered and dropped a
    // timer-wheel entry for each of the tens of thousands of events a second under load.
    let sleep = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(sleep);
    let mut armed = None;
    let mut from_sockets = Vec::with_capacity(BATCH);
    let mut from_sessions = Vec::with_capacity(BATCH);
    let mut from_watches = Vec::with_capacity(BATCH);
    loop {
        let next = d.core.poll_timeout();
        if next != armed {
            if let Some(at) = next {
                sleep.as_mut().reset(at.into());
            }
            armed = next;
        }
        // Whatever is ready is taken in batches: the loop's own cost (polling every source, the timer) is paid
        // once per batch rather than once per datagram or engine update.
        tokio::select! {
            n = inbound.recv_many(&mut from_sockets, BATCH) => {
                if n == 0 { break }
                for ev in from_sockets.drain(..) {
                    d.inbound(ev);
                }
            }
            n = deliveries.recv_many(&mut from_sessions, BATCH), if !deliveries.is_closed() || !deliveries.is_empty() => {
                for (session, msg) in from_sessions.drain(..n) {
                    d.handle(Event::Delivery(session, msg));
                }
            }
            n = watches.recv_many(&mut from_watches, BATCH), if !watches.is_closed() || !watches.is_empty() => {
                for (watch, state) in from_watches.drain(..n) {
                    d.handle(Event::Watch(watch, state));
                }
            }
            _ = &mut sleep, if armed.is_some() => {
                // Re-armed from the core's answer after this, even when it names the same instant.
                armed = None;
                d.handle(Event::Timeout);
            }
            _ = &mut stop => {
                d.handle(Event::Shutdown);
                d.flush_udp();
                // The NOTIFYs are queued on their flows; give TCP writers a moment to send them.
                tokio::time::sleep(SHUTDOWN_GRACE).await;
                break;
            }
        }
        d.flush_udp();
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
                    if let Err(client) = self.transmit(flow, bytes, client) {
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
                    if let Err(e) = self.hub.submit_here(input) {
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

    /// Sends the datagrams the last batch of events produced; a request that could not go fails its
    /// transaction, which may send more (and so on, until nothing is left).
    fn flush_udp(&mut self) {
        while !self.udp_out.is_empty() {
            for client in self.udp_out.flush(&self.udp) {
                self.handle(Event::TransmitFailed {
                    client: Some(client),
                });
            }
        }
    }

    /// Sends bytes over a flow; when they could not go, hands back `client` (the client transaction they are a
    /// request of) to be failed. A datagram is queued for the end of the batch, and its failure reported then.
    fn transmit(
        &mut self,
        flow: Flow,
        bytes: Bytes,
        client: Option<String>,
    ) -> Result<(), Option<String>> {
        match flow {
            // A full socket buffer is rare on loopback; a blocking send would stall every other peer.
            Flow::Udp(to) => {
                self.udp_out.push(to, bytes, client);
                Ok(())
            }
            // A TCP peer that lets its writer queue fill is not reading: it loses the connection rather than
            // grow our memory (its writer ends when the sender is dropped).
            Flow::Tcp(conn) | Flow::Tls(conn) => {
                match self.tcp.get(&conn).map(|tx| tx.try_send(bytes)) {
                    Some(Ok(())) => Ok(()),
                    Some(Err(_)) => {
                        tracing::warn!(conn, "SIP TCP peer is not reading: closing its connection");
                        self.tcp.remove(&conn);
                        Err(client)
                    }
                    None => Err(client),
                }
            }
        }
    }
}
