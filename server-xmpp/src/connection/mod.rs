//! One client connection (RFC 6120): mandatory STARTTLS (or TLS from the first byte on the direct-TLS port,
//! XEP-0368), SASL, resource binding, then stanzas between the socket and the hub until either side ends the
//! stream. A client that falls silent is pinged (XEP-0199) and closed as dead if it does not answer. Stream
//! management (XEP-0198, see `sm.rs`) acknowledges stanzas and lets a client resume its session on a new
//! connection; client state indication (XEP-0352, see `csi.rs`) holds presence back while the client is
//! inactive. The entity capabilities of the client's presence become its PEP interests (see `caps.rs`).
//!
//! A WebSocket client (RFC 7395) or a BOSH session (XEP-0206), see `web/`, runs through the same state machine
//! with [`serve_framed`]: only the transport and the framing differ (no STARTTLS; `<open/>` and `<close/>` for
//! the stream's tags), and it counts against the same connection caps, handshake timeout, rates and outbound
//! queues.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use presence_core::engine::{BindError, CloseReason};
use presence_core::rate::{Rate, TokenBucket};
use presence_core::runtime::{
    self, Ended as SessionEnded, Handle, Permit, Protocol, Rejection, SessionReceiver, StanzaKind,
    SubmitError, ToSession,
};
use presence_core::stanza::{ErrorAbout, ErrorCondition, Stanza as CoreStanza, StanzaError};
use presence_core::store::{ScramCredentials, Store, StoreError};
use presence_core::{BareJid, FullJid, Input, Jid, SessionId};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, debug_span};
use xmpp_codec::{Element, Nonza, StreamEvent, StreamHeader, ns};

use crate::caps::{self, SessionCaps};
use crate::csi::Csi;
use crate::sasl::{self, CredentialLookup, SaslServer, Step};
use crate::sm;
use crate::translate::{self, FromClient, Me};
use crate::wire::{Ended, Wire};

mod bind;
mod handshake;
mod liveness;

use bind::*;
pub use handshake::Security;
use handshake::*;
use liveness::*;

/// What every connection shares.
pub struct Shared<S> {
    /// The served domain.
    pub domain: String,
    /// TLS for STARTTLS.
    pub tls: TlsAcceptor,
    /// TLS for the direct-TLS port: the same identity, with ALPN `xmpp-client`.
    pub direct_tls: TlsAcceptor,
    /// The engine's runtime.
    pub hub: Handle,
    /// Accounts, for SASL.
    pub store: Arc<S>,
    /// Permits for connections that have not authenticated yet.
    pub unauthenticated: Arc<Semaphore>,
    /// Codec limits (they also bound each connection's read buffer).
    pub limits: xmpp_codec::Limits,
    /// Time allowed from connect to a bound session.
    pub handshake_timeout: Duration,
    /// Time a bound session may stay silent before it is closed.
    pub idle_timeout: Duration,
    /// Silence after which a bound session is pinged (XEP-0199); `None`: never.
    pub ping_interval: Option<Duration>,
    /// Time a pinged session may stay silent before it is closed as dead.
    pub ping_timeout: Duration,
    /// Stanzas that may wait for a slow client before its session is ended.
    pub outbound_queue: usize,
    /// Bytes (estimated) that may wait for a slow client before its session is ended.
    pub outbound_bytes: usize,
    /// The inbound rate of one connection.
    pub rate: Rate,
    /// Secret mixed into fake SCRAM salts for unknown users.
    pub secret: [u8; 16],
    /// The features offered to bound clients.
    pub features: translate::Features,
    /// Sessions that may be resumed (XEP-0198).
    pub sm: Arc<sm::Registry>,
    /// How long a session whose connection dropped waits for its client to resume it.
    pub sm_resume_timeout: Duration,
    /// Unacknowledged (and, while detached, undelivered) stanzas a session may have before it is ended.
    pub sm_max_unacked: usize,
    /// Senders whose presence may wait for an inactive client (XEP-0352).
    pub csi_max_queued: usize,
    /// Clients' verified entity capabilities, as PEP interests (XEP-0115, XEP-0163 §4.3.3).
    pub caps: Arc<crate::caps::Cache>,
}

/// How many failed SASL attempts a connection gets before it is closed.
const MAX_AUTH_ATTEMPTS: u32 = 3;

/// How long writing to a client may stall before it counts as not reading (a slow consumer).
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// Awaits a future from the heap: for paths a connection rarely takes, so that the state it keeps while it idles
/// does not also keep room for theirs (an async fn's state is as large as its largest await). Built and boxed in
/// a statement of its own, because a temporary of the statement that awaits keeps its room in the state even
/// once moved into the box.
macro_rules! boxed {
    ($f:expr) => {{
        let f = Box::pin($f);
        f.await
    }};
}

/// How a listener's connections begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A plain stream that must upgrade with STARTTLS (RFC 6120 §5).
    StartTls,
    /// TLS from the first byte, then the stream (XEP-0368).
    DirectTls,
}

/// A bound session's future, boxed: what a connection's task awaits for the rest of its life.
type Session = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Serves one accepted TCP connection to the end; `admitted` is its place under the connection caps (`Err`:
/// refused, told so, closed).
///
/// The task's own state is two pointers: the handshake is a boxed future of its own, freed when it ends, and
/// the session it hands back is boxed too. Awaited inside one async fn, the task kept room for the
/// handshake's locals and arguments for as long as the client stayed (2.7 KiB of each idle client, issue 17).
pub fn serve<S: Store + Send + Sync + 'static>(
    tcp: TcpStream,
    peer: std::net::SocketAddr,
    shared: Arc<Shared<S>>,
    admitted: Result<Permit, runtime::Refused>,
    transport: Transport,
) -> impl std::future::Future<Output = ()> + Send {
    let connecting = Box::pin(connect(tcp, peer, shared, admitted, transport));
    async move {
        if let Some(session) = connecting.await {
            session.await;
        }
    }
}

/// Everything before the bound session of [`serve`]: admission, STARTTLS or direct TLS, SASL. Returns the
/// session to run, or `None` when the connection ended before it.
async fn connect<S: Store + Send + Sync + 'static>(
    tcp: TcpStream,
    peer: std::net::SocketAddr,
    shared: Arc<Shared<S>>,
    admitted: Result<Permit, runtime::Refused>,
    transport: Transport,
) -> Option<Session> {
    // Before TLS nothing can be said on the direct-TLS port (a plaintext stream error would be garbage to a TLS
    // client), and a TLS handshake just to refuse would spend the CPU an overload cannot spare: refusals there
    // are a plain close.
    let plain = transport == Transport::StartTls;
    // The connection's span is the parent of its events rather than entered around every poll: entering costs
    // a few hundred nanoseconds each time, and a busy connection is polled for every stanza. It is a debug span,
    // as the connection's own events are: at the default level it is never built, where it would cost each idle
    // connection about a kilobyte for the life of the connection.
    let span = debug_span!("c2s", %peer, user = tracing::field::Empty);
    let _ = tcp.set_nodelay(true);
    let mut wire = Wire::new(tcp, shared.limits);
    let place = match admitted {
        Ok(p) => p,
        Err(refused) => {
            debug!(parent: &span, %refused, "connection refused");
            if plain {
                let why = refused.to_string();
                boxed!(wire.fail(&shared.domain, "policy-violation", Some(&why)));
            }
            return None;
        }
    };
    let Ok(permit) = shared.unauthenticated.clone().try_acquire_owned() else {
        shared.hub.metrics().rejected(Rejection::Unauthenticated);
        if plain {
            boxed!(wire.fail(
                &shared.domain,
                "resource-constraint",
                Some("too many connections are authenticating"),
            ));
        }
        return None;
    };
    // The TLS handshake of either port runs under the handshake timeout, so a peer that stalls it is cut off.
    // The phases are boxed: an async fn's state holds every phase's locals at once (and copies of what is moved
    // into an awaited call), so unboxed the task of an idle client kept 31 KiB, mostly of the handshake it had
    // finished long ago (issue 17's heap profile). Boxed, the handshake's state is freed when it ends.
    // Each boxed in a statement of its own (see `boxed!`).
    let negotiating = Box::pin(negotiate(wire, &shared, permit, transport, peer.ip()));
    let handshake = tokio::time::timeout(shared.handshake_timeout, negotiating).await;
    let Ok(Some((wire, user))) = handshake else {
        return None;
    };
    // Binding is part of the handshake too; the permit was released at SASL success.
    span.record("user", tracing::field::display(&user));
    // Boxed before the block takes it, or the block's state would hold the wire as well as the session's.
    let wire = Box::new(wire);
    let session = Box::pin(async move {
        // The place under the connection caps is held for as long as the session runs.
        let _place = place;
        established(wire, &shared, user, &span).await;
    });
    // What each bound client keeps for its session's state, whatever it does (issue 17's idle measurements).
    debug!(bytes = std::mem::size_of_val(&*session), "session state");
    Some(session)
}

/// Serves one WebSocket (RFC 7395) or BOSH (XEP-0206) client to the end: `io` carries one element per message
/// (see `web::socket` and `web::bosh::io`), `security` says whether SASL may run over it, `transport` names it
/// in logs. `admitted` is its place under the connection caps (`Err`: refused with a stream error, closed).
pub async fn serve_framed<S, T>(
    io: T,
    peer: std::net::SocketAddr,
    shared: Arc<Shared<S>>,
    admitted: Result<Permit, runtime::Refused>,
    security: Security,
    transport: &'static str,
) where
    S: Store + Send + Sync + 'static,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let span = debug_span!("c2s", %peer, transport, user = tracing::field::Empty);
    let mut wire = Wire::framed(io, shared.limits);
    let _place = match admitted {
        Ok(p) => p,
        Err(refused) => {
            debug!(parent: &span, %refused, "connection refused");
            fail_bounded(
                &mut wire,
                &shared.domain,
                "policy-violation",
                Some(&refused.to_string()),
            )
            .await;
            return;
        }
    };
    let Ok(permit) = shared.unauthenticated.clone().try_acquire_owned() else {
        shared.hub.metrics().rejected(Rejection::Unauthenticated);
        fail_bounded(
            &mut wire,
            &shared.domain,
            "resource-constraint",
            Some("too many connections are authenticating"),
        )
        .await;
        return;
    };
    let negotiating = Box::pin(negotiate_framed(wire, &shared, permit, security, peer.ip()));
    let handshake = tokio::time::timeout(shared.handshake_timeout, negotiating).await;
    let Ok(Some((wire, user))) = handshake else {
        return;
    };
    span.record("user", tracing::field::display(&user));
    let session = Box::pin(established(Box::new(wire), &shared, user, &span));
    session.await;
}

/// What the session loop does after handling what the client sent.
enum Flow {
    /// Go on.
    Continue,
    /// Leave the loop.
    Break(End),
}

/// What woke a bound session's loop.
// Lives only until it is moved, whole, into the boxed block that handles it: boxing the delivery would add an
// allocation per delivery to spare nothing.
#[allow(clippy::large_enum_variant)]
enum Event<R> {
    /// The client sent something, or went silent for too long.
    Read(R),
    /// The inbound rate's pause is over.
    Unpaused,
    /// The session was resumed on another connection.
    Claim(sm::Claim),
    /// The engine delivered something (`None`: it stopped).
    Delivery(Option<ToSession>),
}

/// How the loop of a bound session ended, and so what becomes of the session.
enum End {
    /// The stream ended (either side closed it, or the server ended it): the engine must close the session.
    Close,
    /// The transport went away without `</stream>`: a resumable session waits for its client (XEP-0198).
    Lost,
    /// The engine ended the session already.
    EngineKnows,
    /// A new connection resumed the session: hand it over.
    Handed(sm::Claim),
}

/// Writes one engine delivery: rendered, counted and kept until acknowledged when stream management is on.
fn write_delivery<T: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<T>,
    stanza: CoreStanza,
    out: &mut Outbound<'_>,
) {
    // Presence, most of what a busy server writes, goes straight to bytes (see `translate::render`); with
    // stream management on, each stanza is also kept as an element until acknowledged, so it takes the
    // element path there.
    if out.sm.is_none()
        && let CoreStanza::Presence { from, kind, .. } = &stanza
    {
        match wire
            .queue_client(|buf, xmlns| translate::render::presence(from, out.jid, kind, xmlns, buf))
        {
            Some(true) => {
                out.metrics.stanza_out(StanzaKind::Presence);
                return;
            }
            Some(false) => return,
            None => {}
        }
    }
    let message = out.sm.as_ref().and_then(|_| sm::message_of(&stanza));
    let pushes = &mut *out.pushes;
    if let Some(o) = translate::to_client(stanza, out.jid, out.domain, || {
        *pushes += 1;
        format!("push{pushes}")
    }) {
        if let Some(kind) = StanzaKind::from_name(&o.element.name) {
            out.metrics.stanza_out(kind);
        }
        wire.queue(&o);
        if let Some(c) = out.sm.as_mut() {
            c.sent(o, message);
        }
    }
}

/// Writes one engine delivery, or holds it back while the client is inactive (XEP-0352).
fn deliver<T: AsyncRead + AsyncWrite + Unpin>(
    csi: &mut Csi,
    wire: &mut Wire<T>,
    stanza: CoreStanza,
    out: &mut Outbound<'_>,
) {
    // An active client holds nothing back: written straight, without the list `Csi::deliver` returns (an
    // allocation per delivery).
    if !csi.is_inactive() {
        write_delivery(wire, stanza, out);
        return;
    }
    for stanza in csi.deliver(stanza) {
        write_delivery(wire, stanza, out);
    }
}

/// Writes a stanza the shell itself makes (a reply, a ping), counted like any other.
fn write_own<T: AsyncRead + AsyncWrite + Unpin>(wire: &mut Wire<T>, el: Element, sm: &mut Managed) {
    let o = el.into();
    wire.queue(&o);
    if let Some(c) = sm.as_mut() {
        c.sent(o, None);
    }
}

/// A stream's XEP-0198 counters once the client enabled stream management.
type Managed = Option<Box<sm::Counters>>;

/// What writing to the client needs.
struct Outbound<'a> {
    jid: &'a FullJid,
    domain: &'a str,
    pushes: &'a mut u64,
    metrics: &'a runtime::Metrics,
    sm: &'a mut Managed,
}

/// XEP-0352's namespace.
pub const NS_CSI: &str = "urn:xmpp:csi:0";

/// The authenticated stream: bind a resource (or resume a session, XEP-0198), then exchange stanzas with the
/// engine. The wire comes boxed: an async fn keeps an argument twice in its state (where it was passed, and the
/// local it is moved to, rust-lang/rust#62958), and the wire, TLS state and parser, is most of a session's.
async fn established<S, T>(
    mut wire: Box<Wire<T>>,
    shared: &Shared<S>,
    user: BareJid,
    span: &tracing::Span,
) where
    S: Store + Send + Sync + 'static,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let domain = shared.domain.as_str();
    let metrics = shared.hub.metrics().clone();
    let fresh = shared.hub.new_session();
    let (sink, rx) = runtime::session_channel(shared.outbound_queue, shared.outbound_bytes);
    let mut rx = rx;
    // Boxed like the rarely taken paths below, so the session's state while it idles does not also keep room
    // for theirs (see `serve`).
    let binding = Box::pin(bind(&mut wire, shared, &user, fresh, sink, &mut rx));
    // Boxed, like the other state only some sessions have: inline, every session's state kept room for it.
    let mut sm: Managed = None;
    let mut claims: Option<tokio::sync::mpsc::Receiver<sm::Claim>> = None;
    let mut pushes = 0u64;
    let mut csi = Csi::new(shared.csi_max_queued);
    let mut caps = SessionCaps::default();
    // The bind's outcome lives in this block only: its `match` moves it out in parts, and a partly moved local
    // keeps its room in the session's state until its scope ends (208 bytes of every idle session, issue 17).
    let (session, jid) = {
        let bound = tokio::time::timeout(shared.handshake_timeout, binding)
            .await
            .ok()
            .flatten();
        match bound {
            None => {
                // The engine may have bound the session after all (the client left mid-bind): release it.
                shared.hub.close(fresh);
                return;
            }
            Some(Bound::Fresh(jid)) => (fresh, jid),
            Some(Bound::Resumed { parked, previd }) => {
                // The fresh session was never bound; the resumed one carries on with its address and deliveries.
                shared.hub.close(fresh);
                // Boxed: inline, its locals (the parked session, the counters) kept room in every session's state.
                let resuming = Box::pin(resume(
                    &mut wire,
                    shared,
                    &user,
                    parked,
                    previd,
                    (&mut claims, &mut sm, &mut pushes),
                ));
                let Some((session, jid, resumed_rx)) = resuming.await else {
                    return;
                };
                rx = resumed_rx;
                (session, jid)
            }
        }
    };
    metrics.session_opened(Protocol::Xmpp);
    let me = Me {
        session,
        jid: &jid,
        domain,
        features: &shared.features,
    };
    let mut bucket = TokenBucket::new(shared.rate, Instant::now());
    // While the client is over its inbound rate, reading pauses until this timer fires (deliveries keep
    // flowing). Boxed and made only when a client goes over: inline, every idle session kept room for a timer
    // it almost never arms (issue 17).
    let mut paused: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    let mut live = Liveness::new(
        shared.ping_interval,
        shared.ping_timeout,
        shared.idle_timeout,
        clock(),
        wire.bytes_read(),
    );
    let end = loop {
        let read_from = wire.bytes_read();
        let event = tokio::select! {
            read = live.next(&mut wire), if paused.is_none() => Event::Read(read),
            () = paused_for(&mut paused), if paused.is_some() => Event::Unpaused,
            Some(claim) = next_claim(&mut claims) => Event::Claim(claim),
            msg = rx.recv() => Event::Delivery(msg),
        };
        // Handled in one boxed block that takes the event whole: its many paths (and their awaits) would
        // otherwise all keep room in the state every idle session holds (see `boxed!`), and so would an event
        // matched here, partly moved (a delivery is 240 bytes), across the awaits of its handling.
        let flow = boxed!(async {
            match event {
                Event::Read(read) => {
                    let spent = wire.bytes_read() - read_from;
                    let pause =
                        bucket.charge(Instant::now(), usize::try_from(spent).unwrap_or(usize::MAX));
                    if !pause.is_zero() {
                        metrics.rate_limited(Protocol::Xmpp);
                        paused = Some(Box::pin(tokio::time::sleep(pause)));
                    }
                    // Ping answers are stanzas the client sent: they count as handled (XEP-0198).
                    let swallowed = std::mem::take(&mut live.swallowed);
                    if let Some(c) = sm.as_mut() {
                        (0..swallowed).for_each(|_| c.handled());
                    }
                    match read {
                        Err(Silence::PingDue) => {
                            write_own(&mut wire, live.ping(domain, &jid), &mut sm);
                            metrics.stanza_out(StanzaKind::Iq);
                            if send_bounded(&mut wire).await.is_err() {
                                return Flow::Break(End::Lost);
                            }
                        }
                        Err(Silence::Dead) => {
                            debug!(parent: span, "no answer to a ping: the connection is dead");
                            fail_bounded(
                                &mut wire,
                                domain,
                                "connection-timeout",
                                Some("no answer to a ping"),
                            )
                            .await;
                            return Flow::Break(End::Lost);
                        }
                        Err(Silence::Idle) => {
                            fail_bounded(
                                &mut wire,
                                domain,
                                "connection-timeout",
                                Some("idle for too long"),
                            )
                            .await;
                            return Flow::Break(End::Close);
                        }
                        Ok(Ok(StreamEvent::Stanza(stanza))) => {
                            if let Some(kind) = StanzaKind::from_name(stanza.kind().as_str()) {
                                metrics.stanza_in(kind);
                            }
                            if let Some(c) = sm.as_mut() {
                                c.handled();
                            }
                            // The client's answer to the server's caps query is the server's, never a stanza to pass on.
                            if caps.answers(&stanza, domain) {
                                if let Some(notify) = caps.answer(&stanza, &shared.caps, clock()) {
                                    interests(shared, &mut caps, session, notify);
                                }
                                return Flow::Continue;
                            }
                            let seen = caps::Seen::of(&stanza);
                            match translate::from_client(stanza, &me, runtime::timestamp()) {
                                FromClient::Engine(input) => {
                                    // Run on this worker when the engine is idle: a message between online
                                    // users is then delivered without waking another thread (issue 17).
                                    match shared
                                        .hub
                                        .submit_here(input)
                                        .map_err(|r| (r.error, r.input))
                                    {
                                        // Interests follow the presence that announced them, so the engine sees the
                                        // session available first.
                                        Ok(()) => match seen.map(|seen| {
                                            caps.presence(seen, &shared.caps, domain, &jid, clock())
                                        }) {
                                            Some(caps::Step::Interests(notify)) => {
                                                interests(shared, &mut caps, session, notify)
                                            }
                                            Some(caps::Step::Query(query)) => {
                                                write_own(&mut wire, query, &mut sm);
                                                metrics.stanza_out(StanzaKind::Iq);
                                                if send_bounded(&mut wire).await.is_err() {
                                                    return Flow::Break(End::Lost);
                                                }
                                            }
                                            Some(caps::Step::Nothing) | None => {}
                                        },
                                        Err((SubmitError::Busy { .. }, input)) => {
                                            // The engine is saturated: a temporary error, the stream stays up.
                                            debug!(parent: span, "engine busy: stanza refused");
                                            if let Some(answer) = busy_answer(&input, &jid)
                                                .and_then(|e| {
                                                    translate::to_client(
                                                        CoreStanza::Error(e),
                                                        &jid,
                                                        domain,
                                                        String::new,
                                                    )
                                                })
                                            {
                                                write_own(&mut wire, answer.element, &mut sm);
                                                if send_bounded(&mut wire).await.is_err() {
                                                    return Flow::Break(End::Lost);
                                                }
                                            }
                                        }
                                        Err((SubmitError::Stopped, _)) => {
                                            fail_bounded(
                                                &mut wire,
                                                domain,
                                                "system-shutdown",
                                                None,
                                            )
                                            .await;
                                            return Flow::Break(End::EngineKnows);
                                        }
                                    }
                                }
                                FromClient::Reply(el) => {
                                    write_own(&mut wire, el, &mut sm);
                                    if send_bounded(&mut wire).await.is_err() {
                                        return Flow::Break(End::Lost);
                                    }
                                }
                                FromClient::Nothing => {}
                                FromClient::Upload(request) => {
                                    let answer = match me.features.upload() {
                                        Some(issuer) => boxed!(translate::features::upload::answer(issuer.clone(), &jid, request)),
                                        // Only offered while an issuer is configured.
                                        None => crate::translate::iq_error(Some(&request.id), &jid.to_string(), request.to.as_deref(), presence_core::stanza::ErrorCondition::ServiceUnavailable, None),
                                    };
                                    write_own(&mut wire, answer, &mut sm);
                                    if send_bounded(&mut wire).await.is_err() {
                                        return Flow::Break(End::Lost);
                                    }
                                }
                                FromClient::Search(request) => {
                                    let answer = match me.features.directory() {
                                        Some(directory) => boxed!(translate::features::search::answer(directory.clone(), &jid, request)),
                                        // Only produced while a directory is configured.
                                        None => crate::translate::iq_error(Some(&request.id), &jid.to_string(), request.to.as_deref(), presence_core::stanza::ErrorCondition::ServiceUnavailable, None),
                                    };
                                    write_own(&mut wire, answer, &mut sm);
                                    if send_bounded(&mut wire).await.is_err() {
                                        return Flow::Break(End::Lost);
                                    }
                                }
                                FromClient::Register(request) => {
                                    // Only produced while registration is on.
                                    let Some(registration) = me.features.registration().cloned()
                                    else {
                                        unreachable!(
                                            "register requests come only from the register feature, on only with a registration"
                                        )
                                    };
                                    let removed = request.change
                                        == translate::features::register::Change::Remove;
                                    let answer = boxed!(translate::features::register::change(
                                        registration,
                                        shared.store.clone(),
                                        &jid,
                                        request
                                    ));
                                    let done = answer.attr("type") == Some("result");
                                    write_own(&mut wire, answer, &mut sm);
                                    if send_bounded(&mut wire).await.is_err() {
                                        return Flow::Break(End::Lost);
                                    }
                                    // XEP-0077 §3.2: the account is gone, so is its stream.
                                    if removed && done {
                                        // The user's other sessions end too, and the engine forgets the account.
                                        let _ = shared.hub.submit(Input::AccountRemoved {
                                            user: jid.bare().clone(),
                                        });
                                        fail_bounded(
                                            &mut wire,
                                            domain,
                                            "not-authorized",
                                            Some("the account was removed"),
                                        )
                                        .await;
                                        return Flow::Break(End::Close);
                                    }
                                }
                                FromClient::Archive(request) => {
                                    // Counted like any stanza sent, so stream management acknowledges them too.
                                    for el in boxed!(crate::archive::answer(
                                        shared.store.clone(),
                                        &jid,
                                        request
                                    )) {
                                        write_own(&mut wire, el, &mut sm);
                                    }
                                    if send_bounded(&mut wire).await.is_err() {
                                        return Flow::Break(End::Lost);
                                    }
                                }
                            }
                        }
                        Ok(Ok(StreamEvent::Element(el))) => {
                            match Nonza::classify(&el) {
                                Some(Nonza::SmEnable { resume, .. }) if sm.is_none() => {
                                    let id = (resume && !shared.sm_resume_timeout.is_zero()).then(
                                        || {
                                            let (id, rx) = shared.sm.register(user.clone());
                                            claims = Some(rx);
                                            id
                                        },
                                    );
                                    wire.queue(
                                        &sm::enabled(id.as_deref(), shared.sm_resume_timeout)
                                            .into(),
                                    );
                                    sm = Some(Box::new(sm::Counters::new(id)));
                                }
                                Some(Nonza::SmEnable { .. }) => {
                                    wire.queue(&sm::failed("unexpected-request").into())
                                }
                                Some(Nonza::SmRequest) => match &sm {
                                    Some(c) => wire.queue(&sm::ack(c.h()).into()),
                                    None => wire.queue(&sm::failed("unexpected-request").into()),
                                },
                                Some(Nonza::SmAck { h }) => {
                                    if let Some(Err(e)) = sm.as_mut().map(|c| c.ack(h)) {
                                        fail_bounded(
                                            &mut wire,
                                            domain,
                                            "undefined-condition",
                                            Some(&e.to_string()),
                                        )
                                        .await;
                                        return Flow::Break(End::Close);
                                    }
                                }
                                None if el.ns == NS_CSI && el.name == "inactive" => csi.inactive(),
                                None if el.ns == NS_CSI && el.name == "active" => {
                                    let mut out = Outbound {
                                        jid: &jid,
                                        domain,
                                        pushes: &mut pushes,
                                        metrics: &metrics,
                                        sm: &mut sm,
                                    };
                                    for stanza in csi.active() {
                                        write_delivery(&mut wire, stanza, &mut out);
                                    }
                                }
                                _ => {
                                    boxed!(wire.fail(
                                        domain,
                                        "unsupported-stanza-type",
                                        Some("that element is not supported here")
                                    ));
                                    return Flow::Break(End::Close);
                                }
                            }
                            if send_bounded(&mut wire).await.is_err() {
                                return Flow::Break(End::Lost);
                            }
                        }
                        Ok(Ok(StreamEvent::Open(_))) => {
                            boxed!(wire.fail(
                                domain,
                                "not-authorized",
                                Some("the stream cannot be restarted now")
                            ));
                            return Flow::Break(End::Close);
                        }
                        Ok(Ok(StreamEvent::Close)) => {
                            boxed!(wire.close());
                            return Flow::Break(End::Close);
                        }
                        Ok(Err(Ended::Codec(e))) => {
                            let _: Option<()> =
                                boxed!(end_with(&mut wire, domain, Ended::Codec(e)));
                            return Flow::Break(End::Close);
                        }
                        Ok(Err(_)) => return Flow::Break(End::Lost),
                    }
                    Flow::Continue
                }
                Event::Unpaused => {
                    paused = None;
                    Flow::Continue
                }
                Event::Claim(claim) => {
                    // The client came back on another connection before this one was found dead.
                    debug!(parent: span, "session resumed on another connection");
                    fail_bounded(
                        &mut wire,
                        domain,
                        "conflict",
                        Some("the session was resumed on another connection"),
                    )
                    .await;
                    Flow::Break(End::Handed(claim))
                }
                Event::Delivery(msg) => match msg {
                    Some(ToSession::Stanza(stanza)) => {
                        // Write everything already waiting in one go; a non-stanza message ends the batch and is
                        // handled after the flush, never dropped.
                        let mut next = Some(stanza);
                        let mut after = None;
                        // Room archive queries a room allowed: read from the store after the batch is written.
                        let mut room_reads = Vec::new();
                        let mut out = Outbound {
                            jid: &jid,
                            domain,
                            pushes: &mut pushes,
                            metrics: &metrics,
                            sm: &mut sm,
                        };
                        while let Some(stanza) = next.take() {
                            if let Some(read) = crate::archive::room_read(&stanza) {
                                room_reads.push(read);
                            } else {
                                deliver(&mut csi, &mut wire, stanza, &mut out);
                            }
                            match rx.try_recv() {
                                Some(ToSession::Stanza(s)) => next = Some(s),
                                Some(other) => after = Some(other),
                                None => {}
                            }
                        }
                        for read in room_reads {
                            for el in boxed!(crate::archive::answer_room(
                                shared.store.clone(),
                                &jid,
                                read
                            )) {
                                write_own(&mut wire, el, &mut sm);
                            }
                        }
                        if let Some(c) = sm.as_mut() {
                            if c.unacked() > shared.sm_max_unacked {
                                fail_bounded(
                                    &mut wire,
                                    domain,
                                    "policy-violation",
                                    Some(UNACKED_TEXT),
                                )
                                .await;
                                return Flow::Break(End::Close);
                            }
                            if c.wants_request() {
                                wire.queue(&sm::request().into());
                            }
                        }
                        match send_bounded(&mut wire).await {
                            Ok(()) => {}
                            Err(SendFailed::Stalled) => {
                                fail_bounded(
                                    &mut wire,
                                    domain,
                                    "policy-violation",
                                    Some(SLOW_TEXT),
                                )
                                .await;
                                return Flow::Break(End::Close);
                            }
                            Err(SendFailed::Io) => return Flow::Break(End::Lost),
                        }
                        if let Some(msg) = after {
                            return Flow::Break(boxed!(ended_by_runtime(
                                &mut wire,
                                shared,
                                me.jid.bare(),
                                msg
                            )));
                        }
                        Flow::Continue
                    }
                    Some(msg) => Flow::Break(boxed!(ended_by_runtime(
                        &mut wire,
                        shared,
                        me.jid.bare(),
                        msg
                    ))),
                    None => {
                        fail_bounded(&mut wire, domain, "system-shutdown", None).await;
                        Flow::Break(End::EngineKnows)
                    }
                },
            }
        });
        if let Flow::Break(end) = flow {
            break end;
        }
    };
    metrics.session_closed(Protocol::Xmpp);
    debug!(parent: span, "connection ended");
    let Some(counters) = sm else {
        if matches!(end, End::Close | End::Lost) {
            shared.hub.close(session);
        }
        return;
    };
    let parked = sm::Parked {
        session,
        jid,
        rx,
        pending: csi.take().into(),
        counters: *counters,
    };
    // Boxed: inline, the parked session and what it is handed to (live across the end's awaits) kept their room
    // in every session's state, idle ones too (about 300 bytes, issue 17).
    boxed!(hand_over(detach_of(shared), span, end, parked, claims));
}

/// What becomes of a session with stream management whose connection ended (XEP-0198): handed to the connection
/// that resumed it, parked for its client to resume, or ended.
async fn hand_over(
    detach: sm::Detach,
    span: &tracing::Span,
    end: End,
    parked: sm::Parked,
    claims: Option<tokio::sync::mpsc::Receiver<sm::Claim>>,
) {
    match (end, parked.counters.id.clone(), claims) {
        (End::Handed(claim), _, _) => {
            if let Err(parked) = claim.send(parked) {
                sm::end(&detach.hub, parked, true).await;
            }
        }
        (End::Lost, Some(id), Some(claims)) => {
            debug!(parent: span, "connection lost: the session waits for its client to resume it");
            sm::park(detach, parked, id, claims);
        }
        (end, id, _) => {
            if let Some(id) = id {
                detach.registry.forget(&id);
            }
            // XEP-0198 §4: what the client never acknowledged counts as not delivered.
            sm::end(&detach.hub, parked, matches!(end, End::Close | End::Lost)).await;
        }
    }
}

/// Takes over a session resumed on this connection (XEP-0198): sends again exactly what its client had not
/// acknowledged, in order, then what arrived meanwhile. Returns the session, its address and its deliveries, or
/// `None` when the connection failed meanwhile (the session is then parked again, or ended).
async fn resume<S, T>(
    wire: &mut Wire<T>,
    shared: &Shared<S>,
    user: &BareJid,
    parked: sm::Parked,
    previd: String,
    (claims, sm, pushes): (
        &mut Option<tokio::sync::mpsc::Receiver<sm::Claim>>,
        &mut Managed,
        &mut u64,
    ),
) -> Option<(SessionId, FullJid, SessionReceiver)>
where
    S: Store + Send + Sync + 'static,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let sm::Parked {
        session,
        jid,
        rx,
        counters,
        pending,
    } = parked;
    *claims = Some(shared.sm.register_as(&previd, user.clone()));
    for o in counters.resend() {
        wire.queue(o);
    }
    *sm = Some(Box::new(counters));
    let metrics = shared.hub.metrics();
    let mut out = Outbound {
        jid: &jid,
        domain: shared.domain.as_str(),
        pushes,
        metrics,
        sm,
    };
    for stanza in pending {
        write_delivery(wire, stanza, &mut out);
    }
    if send_bounded(wire).await.is_ok() {
        return Some((session, jid, rx));
    }
    let parked = sm::Parked {
        session,
        jid,
        rx,
        counters: *sm.take().expect("set above"),
        pending: Default::default(),
    };
    let detach = detach_of(shared);
    match claims.take() {
        Some(c) => sm::park(detach, parked, previd, c),
        None => boxed!(sm::end(&detach.hub, parked, true)),
    }
    None
}

/// Tells the engine a session's PEP interests. Refused as busy, they are forgotten with the caps, so the
/// client's next presence tries again.
fn interests<S>(
    shared: &Shared<S>,
    caps: &mut SessionCaps,
    session: SessionId,
    notify: Vec<String>,
) {
    if shared
        .hub
        .submit(Input::Interests { session, notify })
        .is_err()
    {
        caps.forget();
    }
}

/// The next claim on a resumable session, or never when the session is not resumable.
async fn next_claim(
    claims: &mut Option<tokio::sync::mpsc::Receiver<sm::Claim>>,
) -> Option<sm::Claim> {
    match claims {
        Some(c) => c.recv().await,
        None => std::future::pending().await,
    }
}

fn detach_of<S>(shared: &Shared<S>) -> sm::Detach {
    sm::Detach {
        hub: shared.hub.clone(),
        registry: shared.sm.clone(),
        timeout: shared.sm_resume_timeout,
        max_unacked: shared.sm_max_unacked,
    }
}

const UNACKED_TEXT: &str = "too many stanzas were not acknowledged (XEP-0198)";

const SLOW_TEXT: &str = "too much is waiting to be sent: the client is not reading";

/// Why a write did not complete.
enum SendFailed {
    /// The client did not take the bytes within [`SEND_TIMEOUT`].
    Stalled,
    /// The transport failed.
    Io,
}

/// Flushes what is queued, giving up on a client that does not read.
async fn send_bounded<T: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<T>,
) -> Result<(), SendFailed> {
    match tokio::time::timeout(SEND_TIMEOUT, wire.flush_out()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(SendFailed::Io),
        Err(_) => Err(SendFailed::Stalled),
    }
}

/// A stream error that cannot hang on a client that stopped reading.
async fn fail_bounded<T: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<T>,
    domain: &str,
    condition: &str,
    text: Option<&str>,
) {
    // Boxed: this runs once at the end of a stream, and inline it would widen the state of every await site.
    let failing = Box::pin(wire.fail(domain, condition, text));
    let _ = tokio::time::timeout(Duration::from_secs(2), failing).await;
}

/// Waits out a pause of reading, or forever when there is none.
async fn paused_for(paused: &mut Option<std::pin::Pin<Box<tokio::time::Sleep>>>) {
    match paused {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}

/// The answer to give when the engine refuses `input` as busy: a `wait`-type `resource-constraint` for a
/// request or a message; nothing for presence, which is not answered.
fn busy_answer(input: &Input, me: &FullJid) -> Option<StanzaError> {
    let about = match input {
        Input::Message { to, message, .. } => ErrorAbout::Message {
            id: message.id.clone(),
            to: to.clone(),
        },
        Input::Request { request, .. } => ErrorAbout::Request(request.clone()),
        Input::Iq { iq, .. } if iq.kind.is_request() => ErrorAbout::Iq {
            id: iq.id.clone(),
            to: iq.to.clone(),
        },
        _ => return None,
    };
    Some(StanzaError {
        to: Jid::Full(me.clone()),
        about,
        condition: ErrorCondition::ResourceConstraint,
        text: Some("the server is busy; try again shortly".into()),
    })
}

/// Ends the stream for a runtime message that is not a stanza. Says whether the engine must still be told the
/// session is gone (it already knows after a conflict, a slow consumer or a failed bind).
async fn ended_by_runtime<S: Store, T: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<T>,
    shared: &Shared<S>,
    user: &BareJid,
    msg: ToSession,
) -> End {
    let domain = shared.domain.as_str();
    if let ToSession::Closed(SessionEnded::Engine(CloseReason::Moved)) = msg {
        // The engine has forgotten the session already; the client goes to the user's new home.
        moved_away(wire, shared, user).await;
        return End::EngineKnows;
    }
    let (condition, text, tell) = match msg {
        ToSession::Closed(SessionEnded::Engine(CloseReason::Conflict)) => (
            "conflict",
            Some("replaced by a new session with the same resource"),
            false,
        ),
        // RFC 6120 §4.9.3.12: the credentials no longer exist.
        ToSession::Closed(SessionEnded::Engine(CloseReason::AccountRemoved)) => {
            ("not-authorized", Some("the account was removed"), false)
        }
        ToSession::Closed(SessionEnded::SlowConsumer) => {
            ("policy-violation", Some(SLOW_TEXT), false)
        }
        ToSession::Closed(SessionEnded::StoreFailed) => (
            "internal-server-error",
            Some("the server could not store this session's data; reconnect later"),
            false,
        ),
        ToSession::Closed(SessionEnded::Shutdown) => ("system-shutdown", None, false),
        _ => ("internal-server-error", None, true),
    };
    fail_bounded(wire, domain, condition, text).await;
    if tell { End::Close } else { End::EngineKnows }
}
