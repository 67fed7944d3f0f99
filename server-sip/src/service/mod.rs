//! The SIP service: one task that owns every piece of SIP state (transactions, registrations, publications,
//! subscription dialogs, the engine sessions of SIP users) and is driven by three queues — the sockets, the
//! engine's deliveries and the engine's watch updates — plus its own timers. One task means no locks; the
//! engine behind it is the same one the XMPP shell feeds.

mod dialog_package;
mod endpoints;
mod outgoing;
mod requests;

pub(crate) use requests::refusal;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hashbrown::HashMap;
use presence_core::runtime::{self, Handle, SharedSink};
use presence_core::store::Store;
use presence_core::{BareJid, SessionId, WatchId};
use sip_codec::header::HeaderName;
use sip_codec::transaction::{ServerNonInvite, Timers, TransactionKey};
use sip_codec::{Message, Request, Response};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::SipSettings;
use crate::caps::Holdings;
use crate::dialog_publications::DialogPublications;
use crate::dialogs::Dialog;
use crate::digest::Authenticator;
use crate::publications::Publications;
use crate::registrar::Registrar;
use crate::transport::{Flow, Inbound};
use endpoints::Endpoint;
use outgoing::{ClientTx, PendingMessage};

/// Something that must happen at a time; checked against the real state when it fires (stale entries are
/// skipped), so nothing has to be removed from the heap. Lapses of registrations, publications and
/// subscriptions are not timers: their indexes know the next one (`next_wake`), so a flood of refreshes, which
/// is never refused, leaves no trail of stale entries behind.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Timer {
    Server(TransactionKey),
    Client(String),
}

/// The state of the SIP side of the server.
pub struct Service<S> {
    settings: SipSettings,
    store: Arc<S>,
    hub: Handle,
    auth: Authenticator,
    udp: Arc<UdpSocket>,
    /// Writers of stream connections (TCP and TLS), by connection number.
    tcp: HashMap<u64, mpsc::Sender<Vec<u8>>>,
    tcp_peers: HashMap<u64, std::net::SocketAddr>,
    /// TLS connections whose client certificate names a trusted call-control peer.
    trusted_conns: hashbrown::HashSet<u64>,
    timers: Timers,
    server_txs: HashMap<TransactionKey, (ServerNonInvite, Flow)>,
    client_txs: HashMap<String, ClientTx>,
    registrar: Registrar,
    publications: Publications,
    dialog_publications: DialogPublications,
    endpoints: HashMap<BareJid, Endpoint>,
    by_session: HashMap<SessionId, BareJid>,
    /// The line and calendar last told to the engine for users whose trusted peers publish any (`apply_system`).
    system_sent: HashMap<BareJid, crate::publications::SystemState>,
    dialogs: HashMap<WatchId, Dialog>,
    dialog_keys: HashMap<(String, String), WatchId>,
    /// Subscription dialogs by expiry (fetches, which end with their first NOTIFY, are not in it).
    dialog_expiry: BTreeSet<(Instant, WatchId)>,
    /// Who holds each subscription dialog (the authenticated subscriber), over which flow: for the caps.
    subscriptions: Holdings<WatchId>,
    pending_messages: HashMap<u64, PendingMessage>,
    deliveries_tx: SharedSink,
    /// Deadlines in order, each naming its timer in `wake_what` (timers need no ordering of their own).
    wake: BinaryHeap<Reverse<(Instant, u64)>>,
    wake_what: HashMap<u64, Timer>,
    next_id: u64,
}

/// Deliveries and watch updates that may wait for the service before the engine waits for it in turn.
const ENGINE_CHANNEL: usize = 8192;

/// How long a shutdown waits for the final NOTIFYs to leave.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(200);

impl<S: Store + Send + Sync + 'static> Service<S> {
    /// Runs the service until the sockets' queue closes or `stop` resolves; on `stop` every subscription is
    /// terminated with a NOTIFY first (RFC 6665 §4.2.2).
    pub async fn run(
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
        let auth = Authenticator::new(
            &settings.domain,
            crate::random_bytes::<32>(),
            Instant::now(),
            settings.nonce_lifetime,
        );
        // Each event package's publications are capped alike (`[limits] sip_publications_per_user`).
        let dialog_cap = settings.caps.publications.per_user;
        let mut svc = Service {
            settings,
            store,
            hub,
            auth,
            udp,
            tcp: HashMap::new(),
            tcp_peers: HashMap::new(),
            trusted_conns: hashbrown::HashSet::new(),
            timers: Timers::default(),
            server_txs: HashMap::new(),
            client_txs: HashMap::new(),
            registrar: Registrar::default(),
            publications: Publications::default(),
            dialog_publications: DialogPublications::new(dialog_cap),
            endpoints: HashMap::new(),
            by_session: HashMap::new(),
            system_sent: HashMap::new(),
            dialogs: HashMap::new(),
            dialog_keys: HashMap::new(),
            dialog_expiry: BTreeSet::new(),
            subscriptions: Holdings::default(),
            pending_messages: HashMap::new(),
            deliveries_tx,
            wake: BinaryHeap::new(),
            wake_what: HashMap::new(),
            next_id: 1,
        };
        tokio::pin!(stop);
        loop {
            let next = svc.next_wake();
            tokio::select! {
                ev = inbound.recv() => {
                    let Some(ev) = ev else { break };
                    svc.inbound(Instant::now(), ev);
                }
                Some((session, msg)) = deliveries.recv() => svc.delivery(Instant::now(), session, msg),
                Some((watch, state)) = watches.recv() => svc.watch_update(Instant::now(), watch, state),
                _ = sleep_until(next), if next.is_some() => svc.fire(Instant::now()),
                _ = &mut stop => {
                    svc.shut_down(Instant::now());
                    // The NOTIFYs are queued on their flows; give TCP writers a moment to send them.
                    tokio::time::sleep(SHUTDOWN_GRACE).await;
                    break;
                }
            }
        }
    }

    /// Ends every subscription with a final NOTIFY (`probation`: try again later, RFC 6665 §4.1.3) and every
    /// engine session of a SIP user.
    fn shut_down(&mut self, now: Instant) {
        let watches: Vec<WatchId> = self.dialogs.keys().copied().collect();
        tracing::info!(subscriptions = watches.len(), "SIP service shutting down");
        for watch in watches {
            self.send_notify(now, watch, Some(crate::dialogs::EndReason::Probation));
            self.drop_dialog(watch);
        }
        for (_, e) in std::mem::take(&mut self.endpoints) {
            self.endpoint_gone(&e);
            self.hub.close(e.session());
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn arm(&mut self, at: Instant, timer: Timer) {
        let id = self.id();
        self.wake_what.insert(id, timer);
        self.wake.push(Reverse((at, id)));
    }

    fn inbound(&mut self, now: Instant, ev: Inbound) {
        match ev {
            Inbound::Opened {
                flow,
                peer,
                tx,
                trusted_subject,
            } => {
                let Some(conn) = flow.conn() else { return };
                self.tcp.insert(conn, tx);
                self.tcp_peers.insert(conn, peer);
                if let Some(subject) = trusted_subject {
                    tracing::info!(%peer, %subject, "trusted call-control peer by client certificate");
                    self.trusted_conns.insert(conn);
                }
            }
            Inbound::Closed { flow } => {
                if let Some(conn) = flow.conn() {
                    self.tcp.remove(&conn);
                    self.tcp_peers.remove(&conn);
                    self.trusted_conns.remove(&conn);
                }
                self.flow_closed(now, flow);
            }
            Inbound::Message {
                flow,
                parsed: Ok(Message::Request(req)),
                ..
            } => {
                // Every request carries its peer and method, and the user once authenticated (requests.rs).
                let peer = match flow {
                    Flow::Udp(addr) => Some(addr),
                    Flow::Tcp(conn) | Flow::Tls(conn) => self.tcp_peers.get(&conn).copied(),
                };
                let span = tracing::info_span!(
                    "sip",
                    peer = ?peer,
                    method = %req.method,
                    user = tracing::field::Empty
                );
                let _entered = span.enter();
                self.hub.metrics().sip_request_in(req.method.as_str());
                self.request(now, req, flow)
            }
            Inbound::Message {
                parsed: Ok(Message::Response(resp)),
                ..
            } => self.response(now, resp),
            Inbound::Message {
                flow,
                parsed: Err(e),
                raw,
            } => {
                // RFC 3261 §16.3/§18: a request we cannot parse still gets an answer when its headers allow one.
                if let Some(bytes) =
                    requests::fallback_response(&raw, e.status_code(), e.reason_phrase())
                {
                    self.transmit(flow, bytes);
                }
                if let Some(conn) = flow.conn() {
                    // A stream cannot be resynchronised: the connection ends after the answer.
                    self.tcp.remove(&conn);
                }
            }
        }
    }

    /// Sends bytes over a flow; a gone TCP connection is reported as a closed flow.
    fn transmit(&mut self, flow: Flow, bytes: Vec<u8>) -> bool {
        match flow {
            Flow::Udp(addr) => {
                self.udp.try_send_to(&bytes, addr).is_ok() || {
                    // A full socket buffer is rare on loopback; a blocking send would stall every other peer.
                    false
                }
            }
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

    /// Answers a request through its server transaction (which replays it to retransmissions).
    fn respond(&mut self, now: Instant, req: &Request, flow: Flow, mut resp: Response) {
        self.finish_response(&mut resp, flow);
        let Some(key) = TransactionKey::for_server(req) else {
            // RFC 2543 peers without a magic-cookie branch: answer without a transaction.
            let bytes = Message::Response(resp).to_bytes();
            self.transmit(flow, bytes);
            return;
        };
        let (tx, _) = self
            .server_txs
            .entry(key.clone())
            .or_insert_with(|| (ServerNonInvite::new(flow.reliable(), self.timers), flow));
        tx.handle(now, sip_codec::transaction::Input::Send(resp));
        self.drive_server(&key);
    }

    /// What every response needs whatever answered it: a To tag on a final response (RFC 3261 §8.2.6.2), and
    /// over UDP the top Via stamped with where the request really came from (RFC 3261 §18.2.1 `received`,
    /// RFC 3581 `rport`), so the peer can tell and NATs keep working.
    fn finish_response(&mut self, resp: &mut Response, flow: Flow) {
        if resp.status >= 200
            && let Ok(Some(to)) = resp.headers.to()
            && to.tag().is_none()
        {
            let value = resp
                .headers
                .get(&HeaderName::To)
                .unwrap_or_default()
                .to_owned();
            let tag = self.tag();
            resp.headers
                .set(HeaderName::To, format!("{value};tag={tag}"));
        }
        let Flow::Udp(src) = flow else { return };
        let Some(top) = resp
            .headers
            .0
            .iter_mut()
            .find(|h| h.name == HeaderName::Via)
        else {
            return;
        };
        // Only the first value of the first Via line is ours to stamp.
        let (first, rest) = match top.value.split_once(',') {
            Some((f, r)) => (f.to_owned(), Some(r.to_owned())),
            None => (top.value.clone(), None),
        };
        let Ok(mut via) = sip_codec::header::parse_via(&first) else {
            return;
        };
        if via.params.get("rport").is_some() {
            via.params.set("rport", Some(&src.port().to_string()));
            via.params.set("received", Some(&src.ip().to_string()));
        } else if via.host.to_string() != src.ip().to_string() {
            via.params.set("received", Some(&src.ip().to_string()));
        }
        top.value = match rest {
            Some(r) => format!("{via},{r}"),
            None => via.to_string(),
        };
    }

    fn drive_server(&mut self, key: &TransactionKey) {
        let Some((tx, flow)) = self.server_txs.get_mut(key) else {
            return;
        };
        let flow = *flow;
        let mut sends = Vec::new();
        let mut done = false;
        while let Some(out) = tx.poll_output() {
            match out {
                sip_codec::transaction::Output::Transmit(b) => sends.push(b),
                sip_codec::transaction::Output::Event(
                    sip_codec::transaction::Event::Terminated
                    | sip_codec::transaction::Event::TransportError,
                ) => done = true,
                sip_codec::transaction::Output::Event(_) => {}
            }
        }
        let wake = tx.poll_timeout();
        if done {
            self.server_txs.remove(key);
        }
        for b in sends {
            self.transmit(flow, b);
        }
        if let Some(at) = wake.filter(|_| !done) {
            self.arm(at, Timer::Server(key.clone()));
        }
    }

    fn fire(&mut self, now: Instant) {
        while let Some(Reverse((at, _))) = self.wake.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, id))) = self.wake.pop() else {
                break;
            };
            let Some(timer) = self.wake_what.remove(&id) else {
                continue;
            };
            match timer {
                Timer::Server(key) => {
                    if let Some((tx, _)) = self.server_txs.get_mut(&key) {
                        tx.handle(now, sip_codec::transaction::Input::Timer);
                    }
                    self.drive_server(&key);
                }
                Timer::Client(branch) => self.client_timer(now, &branch),
            }
        }
        let lapsed = |at: Option<Instant>| at.is_some_and(|at| at <= now);
        // Dialog publications count too: `next_wake` wakes for them, and a wake that expires nothing would
        // come again at once (a busy loop) while their lines stayed on the phone.
        if lapsed(self.publications.next_expiry())
            || lapsed(self.registrar.next_lapse())
            || lapsed(self.dialog_publications.next_expiry())
        {
            self.expire(now);
        }
        while let Some(&(at, watch)) = self.dialog_expiry.first() {
            if at > now {
                break;
            }
            self.dialog_expiry.pop_first();
            self.dialog_timer(now, watch);
        }
    }

    /// When the service must next wake: the earliest timer, registration, publication or subscription lapse.
    fn next_wake(&self) -> Option<Instant> {
        [
            self.wake.peek().map(|Reverse((at, _))| *at),
            self.publications.next_expiry(),
            self.registrar.next_lapse(),
            self.dialog_expiry.first().map(|(at, _)| *at),
            self.dialog_publications.next_expiry(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Registrations and publications (presence and dialog) that lapsed.
    fn expire(&mut self, now: Instant) {
        let mut changed = self.registrar.expire(now, None);
        changed.extend(self.publications.expire(now));
        // A user whose many entries lapsed together is brought up to date once.
        changed.sort_unstable();
        changed.dedup();
        for user in changed {
            self.update_endpoint(&user);
            self.apply_system(&user);
        }
        for line in self.dialog_publications.expire(now) {
            self.line_changed(line);
        }
    }

    /// A TCP or TLS connection went away: its bindings and subscriptions go with it. Both are looked for among
    /// all bindings and dialogs: a cost per closed connection, not per request.
    fn flow_closed(&mut self, now: Instant, flow: Flow) {
        for user in self.registrar.expire(now, Some(flow)) {
            self.update_endpoint(&user);
        }
        let gone: Vec<WatchId> = self
            .dialogs
            .values()
            .filter(|d| d.flow == flow)
            .map(|d| d.watch)
            .collect();
        for watch in gone {
            self.drop_dialog(watch);
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// The default and bounds of requested expiry times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryBounds {
    /// Used when the request names none.
    pub default: Duration,
    /// Shorter requests get 423 with this as Min-Expires.
    pub min: Duration,
    /// Longer requests are cut to this.
    pub max: Duration,
}

impl Default for ExpiryBounds {
    fn default() -> Self {
        ExpiryBounds {
            default: Duration::from_secs(3600),
            min: Duration::from_secs(60),
            max: Duration::from_secs(7200),
        }
    }
}
