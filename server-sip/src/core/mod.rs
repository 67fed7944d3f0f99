//! The SIP core: every piece of SIP state (transactions, registrations, publications, subscription dialogs, the
//! engine sessions of SIP users) as a sans-IO state machine, like the engine and sip-codec's transactions:
//! [`SipPresence::handle`] takes an [`Event`] at a time `now`, [`SipPresence::poll_output`] yields what to do
//! ([`Output`]: bytes to send on a flow, engine inputs, account lookups), [`SipPresence::poll_timeout`] says when
//! to hand it [`Event::Timeout`]. No sockets, no tokio, no clock reads, no store; randomness comes from a
//! generator seeded at construction. The tokio side (`crate::driver`) only moves events in and carries
//! outputs out.
//!
//! What it asks the outside, and how:
//! - Whether the engine's queue is full: a value in each [`Event::Message`] (checked at intake, as before the
//!   split; a request refused for it touches no state).
//! - Where a user is served in a cluster, and a fresh session id: the [`Runtime`] trait, synchronous, because
//!   both are reads of shared state that answer at once and cannot fail; an output with an answer would park a
//!   request for nothing.
//! - Accounts (digest checks, "does the target exist"): [`Output::LookupAccount`] answered by
//!   [`Event::Account`]. The request waits parked (bounded: 503 with Retry-After past [`MAX_PARKED`]) and is
//!   handled again from the start with the answers it has; every lookup happens before a request changes any
//!   state or answers, so handling it again is safe. The driver answers on the service thread as before, so
//!   the order of work is what it was.
//! - Metrics: an `Arc<Metrics>` of atomic counters; counting is not I/O.
//!
//! Event packages are behind one trait ([`packages::EventPackage`]), registered in [`packages::PACKAGES`].

mod accounts;
mod dialog_package;
mod endpoints;
mod event;
mod flow;
mod outgoing;
pub mod packages;
mod publish_step;
mod requests;
mod rng;
#[cfg(test)]
mod tests;
mod timer_lanes;

pub use event::{Event, Output, Runtime};
pub use flow::Flow;
pub(crate) use requests::refusal;

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hashbrown::HashMap;
use presence_core::runtime::Metrics;
use presence_core::store::{Account, StoreError};
use presence_core::time::Timestamp;
use presence_core::{BareJid, SessionId, WatchId};
use sip_codec::header::HeaderName;
use sip_codec::transaction::{ServerNonInvite, Timers, TransactionKey};
use sip_codec::{Message, Request, Response};

use crate::SipSettings;
use crate::caps::Holdings;
use crate::dialog_publications::DialogPublications;
use crate::dialogs::Dialog;
use crate::digest::Authenticator;
use crate::publications::Publications;
use crate::registrar::Registrar;
use accounts::AccountCache;
use endpoints::Endpoint;
use outgoing::{ClientTx, PendingMessage};
use rng::Rng;
use timer_lanes::TimerLanes;

/// Requests that may wait for account lookups at once; past it, 503 with Retry-After.
pub const MAX_PARKED: usize = 4096;

/// Something that must happen at a time; checked against the real state when it fires (stale entries are
/// skipped), so nothing has to be removed from the heap. Lapses of registrations, publications and
/// subscriptions are not timers: their indexes know the next one (`next_wake`), so a flood of refreshes, which
/// is never refused, leaves no trail of stale entries behind.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Timer {
    Server(TransactionKey),
    Client(String),
}

/// What the request being handled brought with it: read by the handlers, reset for each request.
#[derive(Debug, Default)]
struct Intake {
    engine_busy: bool,
    received: Timestamp,
    /// Accounts looked up for this request so far.
    answers: Answers,
    /// The account the handler found missing from `answers`: the request is to be parked for it.
    needed: Option<BareJid>,
}

/// Accounts by user, for one request (one or two entries).
#[derive(Debug, Default, Clone)]
struct Answers(Vec<(BareJid, Result<Option<Account>, StoreError>)>);

impl Answers {
    fn get(&self, user: &BareJid) -> Option<&Result<Option<Account>, StoreError>> {
        self.0.iter().find(|(u, _)| u == user).map(|(_, r)| r)
    }
}

/// A request waiting for an account lookup.
#[derive(Debug)]
struct Parked {
    req: Request,
    flow: Flow,
    key: Option<TransactionKey>,
    engine_busy: bool,
    received: Timestamp,
    answers: Answers,
    user: BareJid,
}

/// The state of the SIP side of the server.
pub struct SipPresence {
    settings: SipSettings,
    runtime: Box<dyn Runtime + Send>,
    metrics: Arc<Metrics>,
    rng: Rng,
    auth: Authenticator,
    outputs: VecDeque<Output>,
    intake: Intake,
    parked: HashMap<u64, Parked>,
    parked_keys: hashbrown::HashSet<TransactionKey>,
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
    /// Digest secrets read lately (accounts.rs): most requests need no store read.
    accounts: AccountCache,
    /// The line and calendar last told to the engine for users whose trusted peers publish any (`apply_system`).
    system_sent: HashMap<BareJid, crate::publications::SystemState>,
    dialogs: HashMap<WatchId, Dialog>,
    dialog_keys: HashMap<(String, String), WatchId>,
    /// Subscription dialogs by expiry (fetches, which end with their first NOTIFY, are not in it).
    dialog_expiry: BTreeSet<(Instant, WatchId)>,
    /// Who holds each subscription dialog (the authenticated subscriber), over which flow: for the caps.
    subscriptions: Holdings<WatchId>,
    pending_messages: HashMap<u64, PendingMessage>,
    /// The last presence document a NOTIFY carried (dialogs.rs): a change fans out with one rendering.
    last_document: crate::dialogs::LastDocument,
    /// Our addresses for Via and Contact.
    advertised: outgoing::Advertised,
    /// Transaction timers by deadline (timer_lanes.rs).
    wake: TimerLanes<Timer>,
    next_id: u64,
}

impl SipPresence {
    /// A core for `settings` at `now`. `secret` keys the digest nonces; `seed` seeds the generator of tags,
    /// branches and entity tags (both from the operating system in the server, fixed in tests).
    pub fn new(
        settings: SipSettings,
        now: Instant,
        runtime: Box<dyn Runtime + Send>,
        metrics: Arc<Metrics>,
        secret: [u8; 32],
        seed: u64,
    ) -> Self {
        let auth = Authenticator::new(&settings.domain, secret, now, settings.nonce_lifetime);
        // Each event package's publications are capped alike (`[limits] sip_publications_per_user`).
        let dialog_cap = settings.caps.publications.per_user;
        let advertised = outgoing::Advertised::new(&settings);
        SipPresence {
            settings,
            runtime,
            metrics,
            rng: Rng::new(seed),
            auth,
            outputs: VecDeque::new(),
            intake: Intake::default(),
            parked: HashMap::new(),
            parked_keys: hashbrown::HashSet::new(),
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
            accounts: AccountCache::default(),
            system_sent: HashMap::new(),
            dialogs: HashMap::new(),
            dialog_keys: HashMap::new(),
            dialog_expiry: BTreeSet::new(),
            subscriptions: Holdings::default(),
            pending_messages: HashMap::new(),
            advertised,
            last_document: Default::default(),
            wake: TimerLanes::new(now),
            next_id: 1,
        }
    }

    /// Takes in one event.
    pub fn handle(&mut self, now: Instant, event: Event) {
        self.wake.advance(now);
        match event {
            Event::Message {
                flow,
                parsed,
                raw,
                engine_busy,
                received,
            } => self.inbound(now, flow, parsed, raw, engine_busy, received),
            Event::FlowOpened {
                flow,
                peer,
                trusted_subject,
            } => {
                let Some(conn) = flow.conn() else { return };
                self.tcp_peers.insert(conn, peer);
                if let Some(subject) = trusted_subject {
                    tracing::info!(%peer, %subject, "trusted call-control peer by client certificate");
                    self.trusted_conns.insert(conn);
                }
            }
            Event::FlowClosed(flow) => {
                if let Some(conn) = flow.conn() {
                    self.tcp_peers.remove(&conn);
                    self.trusted_conns.remove(&conn);
                }
                self.flow_closed(now, flow);
            }
            Event::TransmitFailed { client } => {
                if let Some(branch) = client
                    && let Some(c) = self.client_txs.get_mut(&branch)
                {
                    c.tx.handle(now, sip_codec::transaction::Input::TransportError);
                    self.drive_client(&branch);
                }
            }
            Event::Account { lookup, result } => self.account_answer(now, lookup, result),
            Event::FlushRefused { session, token } => {
                if let Some(user) = self.by_session.get(&session).cloned() {
                    self.message_refused(now, &user, token);
                }
            }
            Event::Delivery(session, msg) => self.delivery(now, session, msg),
            Event::Watch(watch, state) => self.watch_update(now, watch, state),
            Event::Timeout => self.fire(now),
            Event::Shutdown => self.shut_down(now),
        }
    }

    /// The next thing to do, in the order the core decided them.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When the core must next be handed [`Event::Timeout`]: the earliest timer, registration, publication or
    /// subscription lapse.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.wake.next(),
            self.publications.next_expiry(),
            self.registrar.next_lapse(),
            self.dialog_expiry.first().map(|(at, _)| *at),
            self.dialog_publications.next_expiry(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn out(&mut self, output: Output) {
        self.outputs.push_back(output);
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
            self.out(Output::CloseSession(e.session()));
        }
    }

    /// A request the handlers left for an account lookup (`intake.needed`) is parked and the lookup asked for;
    /// otherwise it has been answered and is dropped.
    fn park_if_needed(&mut self, now: Instant, req: Request, flow: Flow) {
        let Some(user) = self.intake.needed.take() else {
            return;
        };
        if self.parked.len() >= MAX_PARKED {
            tracing::warn!("too many SIP requests wait for the store: refused");
            return self.respond_temporary(now, &req, flow, 503, "Service Unavailable");
        }
        let lookup = self.id();
        let key = TransactionKey::for_server(&req);
        if let Some(k) = &key {
            self.parked_keys.insert(k.clone());
        }
        self.parked.insert(
            lookup,
            Parked {
                req,
                flow,
                key,
                engine_busy: self.intake.engine_busy,
                received: self.intake.received,
                answers: std::mem::take(&mut self.intake.answers),
                user: user.clone(),
            },
        );
        self.out(Output::LookupAccount { lookup, user });
    }

    /// An account lookup answered: its request is handled again with what is now known.
    fn account_answer(
        &mut self,
        now: Instant,
        lookup: u64,
        result: Result<Option<Account>, StoreError>,
    ) {
        let Some(mut p) = self.parked.remove(&lookup) else {
            return;
        };
        if let Some(k) = &p.key {
            self.parked_keys.remove(k);
        }
        if let Ok(Some(account)) = &result {
            self.accounts
                .put(p.user.clone(), account.digest.clone(), now);
        }
        p.answers.0.push((p.user, result));
        self.intake = Intake {
            engine_busy: p.engine_busy,
            received: p.received,
            answers: p.answers,
            needed: None,
        };
        let span = tracing::info_span!(
            "sip",
            peer = ?self.peer(p.flow),
            method = %p.req.method,
            user = tracing::field::Empty
        );
        let _entered = span.enter();
        self.request(now, p.req, p.flow);
        self.intake = Intake::default();
    }

    fn peer(&self, flow: Flow) -> Option<std::net::SocketAddr> {
        match flow {
            Flow::Udp(addr) => Some(addr),
            Flow::Tcp(conn) | Flow::Tls(conn) => self.tcp_peers.get(&conn).copied(),
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn arm(&mut self, at: Instant, timer: Timer) {
        self.wake.arm(at, timer);
    }

    fn inbound(
        &mut self,
        now: Instant,
        flow: Flow,
        parsed: Result<Message, sip_codec::ParseError>,
        raw: Vec<u8>,
        engine_busy: bool,
        received: Timestamp,
    ) {
        match parsed {
            Ok(Message::Request(req)) => {
                // Every request carries its peer and method, and the user once authenticated (requests.rs).
                let span = tracing::info_span!(
                    "sip",
                    peer = ?self.peer(flow),
                    method = %req.method,
                    user = tracing::field::Empty
                );
                let _entered = span.enter();
                self.metrics.sip_request_in(req.method.as_str());
                self.intake = Intake {
                    engine_busy,
                    received,
                    answers: Answers::default(),
                    needed: None,
                };
                self.request(now, req, flow);
                self.intake = Intake::default();
            }
            Ok(Message::Response(resp)) => self.response(now, resp),
            Err(e) => {
                // RFC 3261 §16.3/§18: a request we cannot parse still gets an answer when its headers allow one.
                if let Some(bytes) =
                    requests::fallback_response(&raw, e.status_code(), e.reason_phrase())
                {
                    self.transmit(flow, bytes, None);
                }
                if flow.conn().is_some() {
                    // A stream cannot be resynchronised: the connection ends after the answer.
                    self.out(Output::CloseFlow(flow));
                }
            }
        }
    }

    /// Sends bytes over a flow (`client`: the client transaction they are a request of).
    fn transmit(&mut self, flow: Flow, bytes: impl Into<bytes::Bytes>, client: Option<String>) {
        self.out(Output::Transmit {
            flow,
            bytes: bytes.into(),
            client,
        });
    }

    /// Answers a request through its server transaction (which replays it to retransmissions).
    fn respond(&mut self, now: Instant, req: &Request, flow: Flow, mut resp: Response) {
        self.finish_response(&mut resp, flow);
        let Some(key) = TransactionKey::for_server(req) else {
            // RFC 2543 peers without a magic-cookie branch: answer without a transaction.
            let bytes = Message::Response(resp).to_bytes();
            self.transmit(flow, bytes, None);
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
            None => (top.value.to_string(), None),
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
        }
        .into();
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
            self.transmit(flow, b, None);
        }
        if let Some(at) = wake.filter(|_| !done) {
            self.arm(at, Timer::Server(key.clone()));
        }
    }

    fn fire(&mut self, now: Instant) {
        while let Some(timer) = self.wake.pop_due(now) {
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
        // Dialog publications count too: `poll_timeout` wakes for them, and a wake that expires nothing would
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
