//! One client connection (RFC 6120): mandatory STARTTLS (or TLS from the first byte on the direct-TLS port,
//! XEP-0368), SASL, resource binding, then stanzas between the socket and the hub until either side ends the
//! stream. A client that falls silent is pinged (XEP-0199) and closed as dead if it does not answer. Stream
//! management (XEP-0198, see `sm.rs`) acknowledges stanzas and lets a client resume its session on a new
//! connection; client state indication (XEP-0352, see `csi.rs`) holds presence back while the client is
//! inactive.

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

use crate::csi::Csi;
use crate::sasl::{self, CredentialLookup, SaslServer, Step};
use crate::sm;
use crate::translate::{self, FromClient, Me};
use crate::wire::{Ended, Wire};

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
}

/// How many failed SASL attempts a connection gets before it is closed.
const MAX_AUTH_ATTEMPTS: u32 = 3;

/// How long writing to a client may stall before it counts as not reading (a slow consumer).
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// How a listener's connections begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A plain stream that must upgrade with STARTTLS (RFC 6120 §5).
    StartTls,
    /// TLS from the first byte, then the stream (XEP-0368).
    DirectTls,
}

/// Serves one accepted TCP connection to the end; `admitted` is its place under the connection caps (`Err`:
/// refused, told so, closed).
pub async fn serve<S: Store + Send + Sync + 'static>(
    tcp: TcpStream,
    peer: std::net::SocketAddr,
    shared: Arc<Shared<S>>,
    admitted: Result<Permit, runtime::Refused>,
    transport: Transport,
) {
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
    let _place = match admitted {
        Ok(p) => p,
        Err(refused) => {
            debug!(parent: &span, %refused, "connection refused");
            if plain {
                wire.fail(
                    &shared.domain,
                    "policy-violation",
                    Some(&refused.to_string()),
                )
                .await;
            }
            return;
        }
    };
    let Ok(permit) = shared.unauthenticated.clone().try_acquire_owned() else {
        shared.hub.metrics().rejected(Rejection::Unauthenticated);
        if plain {
            wire.fail(
                &shared.domain,
                "resource-constraint",
                Some("too many connections are authenticating"),
            )
            .await;
        }
        return;
    };
    // The TLS handshake of either port runs under the handshake timeout, so a peer that stalls it is cut off.
    let handshake = tokio::time::timeout(
        shared.handshake_timeout,
        negotiate(wire, &shared, permit, transport, peer.ip()),
    )
    .await;
    let Ok(Some((wire, user))) = handshake else {
        return;
    };
    // Binding is part of the handshake too; the permit was released at SASL success.
    span.record("user", tracing::field::display(&user));
    established(wire, &shared, user, &span).await;
}

/// Plain TCP: only STARTTLS is allowed (on the direct-TLS port, TLS at once). Then TLS and SASL. Returns the
/// authenticated stream and user.
async fn negotiate<S: Store + Send + Sync + 'static>(
    mut wire: Wire<TcpStream>,
    shared: &Shared<S>,
    permit: OwnedSemaphorePermit,
    transport: Transport,
    ip: std::net::IpAddr,
) -> Option<(Wire<tokio_rustls::server::TlsStream<TcpStream>>, BareJid)> {
    let domain = shared.domain.as_str();
    loop {
        // On the direct-TLS port there is no plaintext stream at all; once TLS is up both ports offer the
        // same features, which never include STARTTLS again.
        if transport == Transport::DirectTls {
            break;
        }
        match wire.next().await {
            Ok(StreamEvent::Open(h)) => {
                if !open_stream(&mut wire, domain, &h).await {
                    return None;
                }
                let features = Element::new(ns::STREAMS, "features").with_child(
                    Element::new(ns::TLS, "starttls").with_child(Element::new(ns::TLS, "required")),
                );
                wire.send(&features).await.ok()?;
            }
            Ok(StreamEvent::Element(el)) => match Nonza::classify(&el) {
                Some(Nonza::StartTls) => {
                    wire.send(&Element::new(ns::TLS, "proceed")).await.ok()?;
                    break;
                }
                Some(Nonza::SaslAuth { .. }) => {
                    // RFC 6120 §6.4.5: no mechanism is available before TLS.
                    let failure = Element::new(ns::SASL, "failure")
                        .with_child(Element::new(ns::SASL, "encryption-required"));
                    wire.send(&failure).await.ok()?;
                }
                _ => {
                    wire.fail(domain, "policy-violation", Some("STARTTLS is required"))
                        .await;
                    return None;
                }
            },
            Ok(StreamEvent::Stanza(_)) => {
                wire.fail(
                    domain,
                    "not-authorized",
                    Some("STARTTLS and authentication come first"),
                )
                .await;
                return None;
            }
            Ok(StreamEvent::Close) => {
                wire.close().await;
                return None;
            }
            Err(e) => return end_with(&mut wire, domain, e).await,
        }
    }
    let (tcp, spare) = wire.into_io();
    let acceptor = match transport {
        Transport::StartTls => &shared.tls,
        Transport::DirectTls => &shared.direct_tls,
    };
    // A failed handshake (plaintext on the direct-TLS port, an ALPN other than xmpp-client) just closes.
    let tls = acceptor.accept(tcp).await.ok()?;
    let mut wire = spare.with_io(tls);
    let user = authenticate(&mut wire, shared, ip).await?;
    drop(permit);
    Some((wire, user))
}

/// Answers a stream header: checks it is for us, then opens our side.
async fn open_stream<T: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<T>,
    domain: &str,
    h: &StreamHeader,
) -> bool {
    if h.content_ns != ns::CLIENT {
        wire.fail(
            domain,
            "invalid-namespace",
            Some("this is a client-to-server port"),
        )
        .await;
        return false;
    }
    if h.to.as_deref().map(str::to_ascii_lowercase).as_deref() != Some(domain) {
        wire.fail(
            domain,
            "host-unknown",
            Some("this server does not serve that domain"),
        )
        .await;
        return false;
    }
    if wire
        .open(domain, &crate::random_id(), h.lang.as_deref())
        .await
        .is_err()
    {
        return false;
    }
    true
}

async fn end_with<T: AsyncRead + AsyncWrite + Unpin, R>(
    wire: &mut Wire<T>,
    domain: &str,
    e: Ended,
) -> Option<R> {
    if let Ended::Codec(err) = &e {
        wire.fail(domain, err.condition().as_str(), Some(&err.to_string()))
            .await;
    }
    None
}

/// The store as SASL sees it: owned, because every SASL step runs on the blocking pool (the verifier lookup
/// reads the store and PLAIN runs PBKDF2; neither may hold up an I/O worker).
struct Accounts<S> {
    store: Arc<S>,
    domain: String,
}

impl<S: Store> CredentialLookup for Accounts<S> {
    fn credentials(&self, username: &str) -> Result<Option<Vec<ScramCredentials>>, StoreError> {
        let Ok(jid) = BareJid::from_parts(Some(username), &self.domain) else {
            return Ok(None);
        };
        Ok(self.store.account(&jid)?.map(|a| a.credentials))
    }
}

/// Starts a SASL exchange off the I/O workers.
async fn sasl_start<S: Store + Send + Sync + 'static>(
    lookup: Arc<Accounts<S>>,
    mechanism: String,
    initial: Option<Vec<u8>>,
    secret: [u8; 16],
) -> Result<(SaslServer, Step), sasl::Failure> {
    let nonce = sasl::server_nonce(&crate::random_bytes::<18>());
    tokio::task::spawn_blocking(move || {
        let params = sasl::Params {
            tls: true,
            server_nonce: &nonce,
            secret: &secret,
        };
        SaslServer::start(&mechanism, initial.as_deref(), params, lookup.as_ref())
    })
    .await
    .unwrap_or(Err(sasl::Failure::TemporaryAuthFailure))
}

/// Takes a SASL response off the I/O workers.
async fn sasl_step<S: Store + Send + Sync + 'static>(
    lookup: Arc<Accounts<S>>,
    mut server: SaslServer,
    response: Vec<u8>,
) -> (Option<SaslServer>, Step) {
    tokio::task::spawn_blocking(move || {
        let step = server.step(&response, lookup.as_ref());
        (Some(server), step)
    })
    .await
    .unwrap_or((None, Step::Failure(sasl::Failure::TemporaryAuthFailure)))
}

/// SASL over TLS (RFC 6120 §6). Returns the authenticated user, with the stream restarted.
async fn authenticate<S: Store + Send + Sync + 'static, T: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<T>,
    shared: &Shared<S>,
    ip: std::net::IpAddr,
) -> Option<BareJid> {
    let domain = shared.domain.as_str();
    let lookup = Arc::new(Accounts {
        store: shared.store.clone(),
        domain: domain.to_owned(),
    });
    let mut exchange: Option<SaslServer> = None;
    let mut failures = 0;
    loop {
        let event = match wire.next().await {
            Ok(ev) => ev,
            Err(e) => return end_with(wire, domain, e).await,
        };
        let step = match event {
            StreamEvent::Open(h) => {
                if !open_stream(wire, domain, &h).await {
                    return None;
                }
                let mut mechs = Element::new(ns::SASL, "mechanisms");
                for m in sasl::offered(true) {
                    mechs =
                        mechs.with_child(Element::new(ns::SASL, "mechanism").with_text(m.name()));
                }
                let mut features = Element::new(ns::STREAMS, "features").with_child(mechs);
                if shared.features.registration().is_some() {
                    use translate::features::register::NS_REGISTER_FEATURE;
                    features = features.with_child(Element::new(NS_REGISTER_FEATURE, "register"));
                }
                wire.send(&features).await.ok()?;
                continue;
            }
            StreamEvent::Element(el) => match Nonza::classify(&el) {
                Some(Nonza::SaslAuth {
                    mechanism,
                    initial_response,
                }) => match decode(&initial_response) {
                    Ok(initial) => {
                        match sasl_start(
                            lookup.clone(),
                            mechanism.to_owned(),
                            initial,
                            shared.secret,
                        )
                        .await
                        {
                            Ok((server, step)) => {
                                exchange = Some(server);
                                Ok(step)
                            }
                            Err(f) => Ok(Step::Failure(f)),
                        }
                    }
                    Err(()) => Err(()),
                },
                Some(Nonza::SaslResponse(data)) => match (exchange.take(), decode(&data)) {
                    (Some(server), Ok(bytes)) => {
                        let (server, step) =
                            sasl_step(lookup.clone(), server, bytes.unwrap_or_default()).await;
                        exchange = server;
                        Ok(step)
                    }
                    (None, _) => Ok(Step::Failure(sasl::Failure::MalformedRequest)),
                    (_, Err(())) => Err(()),
                },
                Some(Nonza::SaslAbort) => Ok(Step::Failure(sasl::Failure::Aborted)),
                _ => {
                    wire.fail(domain, "not-authorized", Some("authenticate first"))
                        .await;
                    return None;
                }
            },
            StreamEvent::Stanza(stanza) => {
                // In-band registration is the one thing a client may do before authenticating (XEP-0077 §3.1).
                if let Some(registration) = shared.features.registration()
                    && translate::features::register::is_request(&stanza)
                {
                    let answer = translate::features::register::unauthenticated(
                        registration.clone(),
                        shared.store.clone(),
                        domain,
                        ip,
                        &stanza,
                    )
                    .await;
                    wire.send(&answer).await.ok()?;
                    continue;
                }
                wire.fail(domain, "not-authorized", Some("authenticate first"))
                    .await;
                return None;
            }
            StreamEvent::Close => {
                wire.close().await;
                return None;
            }
        };
        // Undecodable base64 is its own condition (RFC 6120 §6.5.3).
        let step = step.unwrap_or_else(|()| {
            exchange = None;
            Step::Failure(sasl::Failure::MalformedRequest)
        });
        match step {
            Step::Challenge(data) => {
                wire.send(&Element::new(ns::SASL, "challenge").with_text(B64.encode(data)))
                    .await
                    .ok()?;
            }
            Step::Success {
                username,
                authzid,
                additional_data,
            } => {
                let user = BareJid::from_parts(Some(&username), domain).ok()?;
                // Acting for another user is not offered: an authzid may only name the user (RFC 6120 §6.3.8).
                if authzid.is_some_and(|a| BareJid::new(&a).ok().as_ref() != Some(&user)) {
                    failures += 1;
                    let failure = Element::new(ns::SASL, "failure").with_child(Element::new(
                        ns::SASL,
                        sasl::Failure::InvalidAuthzid.condition(),
                    ));
                    wire.send(&failure).await.ok()?;
                    continue;
                }
                let mut success = Element::new(ns::SASL, "success");
                if !additional_data.is_empty() {
                    success = success.with_text(B64.encode(additional_data));
                }
                wire.send(&success).await.ok()?;
                wire.restart();
                return Some(user);
            }
            Step::Failure(f) => {
                exchange = None;
                failures += 1;
                let failure = Element::new(ns::SASL, "failure")
                    .with_child(Element::new(ns::SASL, f.condition()));
                wire.send(&failure).await.ok()?;
                if failures >= MAX_AUTH_ATTEMPTS {
                    wire.fail(
                        domain,
                        "policy-violation",
                        Some("too many failed authentication attempts"),
                    )
                    .await;
                    return None;
                }
            }
        }
    }
}

/// SASL payloads are base64: no text means no data, a single `=` an empty response (RFC 6120 §6.4.2).
fn decode(text: &str) -> Result<Option<Vec<u8>>, ()> {
    match text.trim() {
        "" => Ok(None),
        "=" => Ok(Some(Vec::new())),
        t => B64.decode(t).map(Some).map_err(|_| ()),
    }
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

/// Writes a stanza the shell itself makes (a reply, a ping), counted like any other.
fn write_own<T: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<T>,
    el: Element,
    sm: &mut Option<sm::Counters>,
) {
    let o = el.into();
    wire.queue(&o);
    if let Some(c) = sm.as_mut() {
        c.sent(o, None);
    }
}

/// What writing to the client needs.
struct Outbound<'a> {
    jid: &'a FullJid,
    domain: &'a str,
    pushes: &'a mut u64,
    metrics: &'a runtime::Metrics,
    sm: &'a mut Option<sm::Counters>,
}

/// XEP-0352's namespace.
pub const NS_CSI: &str = "urn:xmpp:csi:0";

/// The authenticated stream: bind a resource (or resume a session, XEP-0198), then exchange stanzas with the
/// engine.
async fn established<S, T>(
    mut wire: Wire<T>,
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
    let bound = tokio::time::timeout(
        shared.handshake_timeout,
        bind(&mut wire, shared, &user, fresh, sink, &mut rx),
    )
    .await
    .ok()
    .flatten();
    let mut sm: Option<sm::Counters> = None;
    let mut claims: Option<tokio::sync::mpsc::Receiver<sm::Claim>> = None;
    let mut pushes = 0u64;
    let mut csi = Csi::new(shared.csi_max_queued);
    let (session, jid) = match bound {
        None => {
            // The engine may have bound the session after all (the client left mid-bind): release it.
            shared.hub.close(fresh);
            return;
        }
        Some(Bound::Fresh(jid)) => (fresh, jid),
        Some(Bound::Resumed { parked, previd }) => {
            // The fresh session was never bound; the resumed one carries on with its address and deliveries.
            shared.hub.close(fresh);
            let sm::Parked {
                session,
                jid,
                rx: resumed_rx,
                counters,
                pending,
            } = parked;
            rx = resumed_rx;
            claims = Some(shared.sm.register_as(&previd, user.clone()));
            // Exactly what the client had not acknowledged, in order, then what arrived meanwhile.
            for o in counters.resend() {
                wire.queue(o);
            }
            sm = Some(counters);
            let mut out = Outbound {
                jid: &jid,
                domain,
                pushes: &mut pushes,
                metrics: &metrics,
                sm: &mut sm,
            };
            for stanza in pending {
                write_delivery(&mut wire, stanza, &mut out);
            }
            if send_bounded(&mut wire).await.is_err() {
                let parked = sm::Parked {
                    session,
                    jid,
                    rx,
                    counters: sm.take().expect("set above"),
                    pending: Default::default(),
                };
                let detach = detach_of(shared);
                match claims {
                    Some(c) => sm::park(detach, parked, previd, c),
                    None => sm::end(&detach.hub, parked, true).await,
                }
                return;
            }
            (session, jid)
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
    // While the client is over its inbound rate, reading pauses until then (deliveries keep flowing).
    let mut paused_until: Option<Instant> = None;
    let mut live = Liveness::new(
        shared.ping_interval,
        shared.ping_timeout,
        shared.idle_timeout,
        clock(),
        wire.bytes_read(),
    );
    let end = loop {
        let read_from = wire.bytes_read();
        tokio::select! {
            read = live.next(&mut wire), if paused_until.is_none() => {
                let spent = wire.bytes_read() - read_from;
                let pause = bucket.charge(Instant::now(), usize::try_from(spent).unwrap_or(usize::MAX));
                if !pause.is_zero() {
                    metrics.rate_limited(Protocol::Xmpp);
                    paused_until = Some(Instant::now() + pause);
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
                            break End::Lost;
                        }
                    }
                    Err(Silence::Dead) => {
                        debug!(parent: span, "no answer to a ping: the connection is dead");
                        fail_bounded(&mut wire, domain, "connection-timeout", Some("no answer to a ping")).await;
                        break End::Lost;
                    }
                    Err(Silence::Idle) => {
                        fail_bounded(&mut wire, domain, "connection-timeout", Some("idle for too long")).await;
                        break End::Close;
                    }
                    Ok(Ok(StreamEvent::Stanza(stanza))) => {
                        if let Some(kind) = StanzaKind::from_name(stanza.kind().as_str()) {
                            metrics.stanza_in(kind);
                        }
                        if let Some(c) = sm.as_mut() {
                            c.handled();
                        }
                        match translate::from_client(stanza, &me, runtime::timestamp()) {
                            FromClient::Engine(input) => {
                                match shared.hub.submit(input).map_err(|r| (r.error, r.input)) {
                                    Ok(()) => {}
                                    Err((SubmitError::Busy { .. }, input)) => {
                                        // The engine is saturated: a temporary error, the stream stays up.
                                        debug!(parent: span, "engine busy: stanza refused");
                                        if let Some(answer) = busy_answer(&input, &jid).and_then(|e| {
                                            translate::to_client(CoreStanza::Error(e), &jid, domain, String::new)
                                        }) {
                                            write_own(&mut wire, answer.element, &mut sm);
                                            if send_bounded(&mut wire).await.is_err() {
                                                break End::Lost;
                                            }
                                        }
                                    }
                                    Err((SubmitError::Stopped, _)) => {
                                        fail_bounded(&mut wire, domain, "system-shutdown", None).await;
                                        break End::EngineKnows;
                                    }
                                }
                            }
                            FromClient::Reply(el) => {
                                write_own(&mut wire, el, &mut sm);
                                if send_bounded(&mut wire).await.is_err() {
                                    break End::Lost;
                                }
                            }
                            FromClient::Nothing => {}
                            FromClient::Upload(request) => {
                                let answer = match me.features.upload() {
                                    Some(issuer) => translate::features::upload::answer(issuer.clone(), &jid, request).await,
                                    // Only offered while an issuer is configured.
                                    None => crate::translate::iq_error(Some(&request.id), &jid.to_string(), request.to.as_deref(), presence_core::stanza::ErrorCondition::ServiceUnavailable, None),
                                };
                                write_own(&mut wire, answer, &mut sm);
                                if send_bounded(&mut wire).await.is_err() {
                                    break End::Lost;
                                }
                            }
                            FromClient::Register(request) => {
                                // Only produced while registration is on.
                                let Some(registration) = me.features.registration().cloned() else {
                                    unreachable!("register requests come only from the register feature, on only with a registration")
                                };
                                let removed = request.change == translate::features::register::Change::Remove;
                                let answer = translate::features::register::change(registration, shared.store.clone(), &jid, request).await;
                                let done = answer.attr("type") == Some("result");
                                write_own(&mut wire, answer, &mut sm);
                                if send_bounded(&mut wire).await.is_err() {
                                    break End::Lost;
                                }
                                // XEP-0077 §3.2: the account is gone, so is its stream.
                                if removed && done {
                                    fail_bounded(&mut wire, domain, "not-authorized", Some("the account was removed")).await;
                                    break End::Close;
                                }
                            }
                            FromClient::Archive(request) => {
                                // Counted like any stanza sent, so stream management acknowledges them too.
                                for el in crate::archive::answer(shared.store.clone(), &jid, request).await {
                                    write_own(&mut wire, el, &mut sm);
                                }
                                if send_bounded(&mut wire).await.is_err() {
                                    break End::Lost;
                                }
                            }
                        }
                    }
                    Ok(Ok(StreamEvent::Element(el))) => {
                        match Nonza::classify(&el) {
                            Some(Nonza::SmEnable { resume, .. }) if sm.is_none() => {
                                let id = (resume && !shared.sm_resume_timeout.is_zero()).then(|| {
                                    let (id, rx) = shared.sm.register(user.clone());
                                    claims = Some(rx);
                                    id
                                });
                                wire.queue(&sm::enabled(id.as_deref(), shared.sm_resume_timeout).into());
                                sm = Some(sm::Counters::new(id));
                            }
                            Some(Nonza::SmEnable { .. }) => wire.queue(&sm::failed("unexpected-request").into()),
                            Some(Nonza::SmRequest) => match &sm {
                                Some(c) => wire.queue(&sm::ack(c.h()).into()),
                                None => wire.queue(&sm::failed("unexpected-request").into()),
                            },
                            Some(Nonza::SmAck { h }) => {
                                if let Some(Err(e)) = sm.as_mut().map(|c| c.ack(h)) {
                                    fail_bounded(&mut wire, domain, "undefined-condition", Some(&e.to_string())).await;
                                    break End::Close;
                                }
                            }
                            None if el.ns == NS_CSI && el.name == "inactive" => csi.inactive(),
                            None if el.ns == NS_CSI && el.name == "active" => {
                                let mut out = Outbound { jid: &jid, domain, pushes: &mut pushes, metrics: &metrics, sm: &mut sm };
                                for stanza in csi.active() {
                                    write_delivery(&mut wire, stanza, &mut out);
                                }
                            }
                            _ => {
                                wire.fail(domain, "unsupported-stanza-type", Some("that element is not supported here")).await;
                                break End::Close;
                            }
                        }
                        if send_bounded(&mut wire).await.is_err() {
                            break End::Lost;
                        }
                    }
                    Ok(Ok(StreamEvent::Open(_))) => {
                        wire.fail(domain, "not-authorized", Some("the stream cannot be restarted now")).await;
                        break End::Close;
                    }
                    Ok(Ok(StreamEvent::Close)) => {
                        wire.close().await;
                        break End::Close;
                    }
                    Ok(Err(Ended::Codec(e))) => {
                        let _: Option<()> = end_with(&mut wire, domain, Ended::Codec(e)).await;
                        break End::Close;
                    }
                    Ok(Err(_)) => break End::Lost,
                }
            }
            _ = sleep_until(paused_until), if paused_until.is_some() => paused_until = None,
            Some(claim) = next_claim(&mut claims) => {
                // The client came back on another connection before this one was found dead.
                debug!(parent: span, "session resumed on another connection");
                fail_bounded(&mut wire, domain, "conflict", Some("the session was resumed on another connection")).await;
                break End::Handed(claim);
            }
            msg = rx.recv() => match msg {
                Some(ToSession::Stanza(stanza)) => {
                    // Write everything already waiting in one go; a non-stanza message ends the batch and is
                    // handled after the flush, never dropped.
                    let mut next = Some(stanza);
                    let mut after = None;
                    let mut out = Outbound { jid: &jid, domain, pushes: &mut pushes, metrics: &metrics, sm: &mut sm };
                    while let Some(stanza) = next.take() {
                        for stanza in csi.deliver(stanza) {
                            write_delivery(&mut wire, stanza, &mut out);
                        }
                        match rx.try_recv() {
                            Some(ToSession::Stanza(s)) => next = Some(s),
                            Some(other) => after = Some(other),
                            None => {}
                        }
                    }
                    if let Some(c) = sm.as_mut() {
                        if c.unacked() > shared.sm_max_unacked {
                            fail_bounded(&mut wire, domain, "policy-violation", Some(UNACKED_TEXT)).await;
                            break End::Close;
                        }
                        if c.wants_request() {
                            wire.queue(&sm::request().into());
                        }
                    }
                    match send_bounded(&mut wire).await {
                        Ok(()) => {}
                        Err(SendFailed::Stalled) => {
                            fail_bounded(&mut wire, domain, "policy-violation", Some(SLOW_TEXT)).await;
                            break End::Close;
                        }
                        Err(SendFailed::Io) => break End::Lost,
                    }
                    if let Some(msg) = after {
                        break ended_by_runtime(&mut wire, shared, me.jid.bare(), msg).await;
                    }
                }
                Some(msg) => break ended_by_runtime(&mut wire, shared, me.jid.bare(), msg).await,
                None => {
                    fail_bounded(&mut wire, domain, "system-shutdown", None).await;
                    break End::EngineKnows;
                }
            },
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
        counters,
    };
    let detach = detach_of(shared);
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

/// Now by tokio's clock (the same as the system's, except in tests that pause time), which the timers of
/// [`Liveness`] run on.
fn clock() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// XEP-0199's namespace (kept here rather than shared with the stanza translation, which it is no part of).
const NS_PING: &str = "urn:xmpp:ping";

/// What the inbound silence of a bound session calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Silence {
    /// Silent for the ping interval: ask whether the client is still there.
    PingDue,
    /// Pinged, and silent for the ping timeout since: the connection is dead (a vanished peer, a NAT that
    /// dropped the mapping), and only this tells the engine the user went offline.
    Dead,
    /// Silent for the idle timeout.
    Idle,
}

/// Watches a session's inbound traffic for XEP-0199 server pings and the idle close. Any byte from the client
/// counts as a sign of life, not only the ping's answer: a busy client need not be pinged, and whitespace
/// keepalives keep a session up as they are meant to.
struct Liveness {
    /// When inbound bytes were last seen, and how many had been read by then.
    heard_at: Instant,
    heard_bytes: u64,
    /// When the outstanding ping was sent; cleared by any inbound traffic.
    pinged_at: Option<Instant>,
    /// The id of the last ping, so its answer is taken here and never reaches the stanza translation.
    ping_id: Option<String>,
    pings: u64,
    /// Ping answers taken here since the caller last looked (they count as handled stanzas for XEP-0198).
    swallowed: u32,
    interval: Option<Duration>,
    timeout: Duration,
    idle: Duration,
}

impl Liveness {
    fn new(
        interval: Option<Duration>,
        timeout: Duration,
        idle: Duration,
        now: Instant,
        bytes: u64,
    ) -> Self {
        Liveness {
            heard_at: now,
            heard_bytes: bytes,
            pinged_at: None,
            ping_id: None,
            pings: 0,
            swallowed: 0,
            // A zero interval would ping again the moment each answer arrives: it means no pings.
            interval: interval.filter(|d| !d.is_zero()),
            timeout,
            idle,
        }
    }

    /// When the silence so far runs out, and what happens then.
    fn deadline(&self) -> (Instant, Silence) {
        let idle = self.heard_at + self.idle;
        let (at, why) = match (self.pinged_at, self.interval) {
            (Some(sent), _) => (sent + self.timeout, Silence::Dead),
            (None, Some(every)) => (self.heard_at + every, Silence::PingDue),
            (None, None) => (idle, Silence::Idle),
        };
        if idle <= at {
            (idle, Silence::Idle)
        } else {
            (at, why)
        }
    }

    fn heard(&mut self, now: Instant, bytes: u64) {
        self.heard_at = now;
        self.heard_bytes = bytes;
        self.pinged_at = None;
    }

    /// The next stream event, or the silence that came first. Cancel-safe like [`Wire::next`]: what was read
    /// stays in the wire, and the time of the last traffic stays here.
    async fn next<T: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        wire: &mut Wire<T>,
    ) -> Result<Result<StreamEvent, Ended>, Silence> {
        loop {
            let (at, why) = self.deadline();
            match tokio::time::timeout_at(at.into(), wire.next()).await {
                Ok(event) => {
                    self.heard(clock(), wire.bytes_read());
                    if let Ok(StreamEvent::Stanza(stanza)) = &event
                        && self.answers_ping(stanza)
                    {
                        self.ping_id = None;
                        self.swallowed = self.swallowed.saturating_add(1);
                        continue;
                    }
                    return Ok(event);
                }
                // Bytes that did not make a whole event yet (whitespace, a stanza still arriving) are traffic.
                Err(_) if wire.bytes_read() != self.heard_bytes => {
                    self.heard(clock(), wire.bytes_read());
                }
                Err(_) => return Err(why),
            }
        }
    }

    /// Whether `stanza` is the client's answer to our last ping: a result, or an error from a client that does
    /// not do XEP-0199, which proves it alive all the same.
    fn answers_ping(&self, stanza: &xmpp_codec::Stanza) -> bool {
        matches!(
            stanza.iq_type(),
            Some(xmpp_codec::IqType::Result | xmpp_codec::IqType::Error)
        ) && self.ping_id.is_some()
            && stanza.id() == self.ping_id.as_deref()
    }

    /// The ping to send now (XEP-0199 §4.2), marked outstanding.
    fn ping(&mut self, domain: &str, to: &FullJid) -> Element {
        self.pings += 1;
        let id = format!("ping{}", self.pings);
        self.ping_id = Some(id.clone());
        self.pinged_at = Some(clock());
        Element::new(ns::CLIENT, "iq")
            .with_attr("type", "get")
            .with_attr("id", id)
            .with_attr("from", domain)
            .with_attr("to", to.to_string())
            .with_child(Element::new(NS_PING, "ping"))
    }
}

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
    let _ = tokio::time::timeout(Duration::from_secs(2), wire.fail(domain, condition, text)).await;
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
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

/// Why a client whose user is between nodes is turned away.
const NOWHERE_TEXT: &str = "no node serves this user right now; try again shortly";
/// Why a session ends when its user moves to another node and the new home is not known yet.
const MOVED_TEXT: &str = "this user moved to another node; sign in again";

/// Ends the stream when `user` is not served here: `<see-other-host/>` to the node that serves it (RFC 6120
/// §4.9.3.19), or a temporary error while no node does (a failed node before its peer took its users over).
/// Returns whether the stream was ended.
async fn send_home<S: Store, T: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<T>,
    shared: &Shared<S>,
    user: &BareJid,
) -> bool {
    let domain = shared.domain.as_str();
    match shared.hub.locate(user) {
        runtime::Location::Here => false,
        runtime::Location::Node(node) => {
            match &node.xmpp {
                Some(address) => {
                    tracing::debug!(%user, node = %node.name, "sending the client to its user's node");
                    let _ = tokio::time::timeout(
                        Duration::from_secs(2),
                        wire.see_other_host(domain, address),
                    )
                    .await;
                }
                None => {
                    fail_bounded(wire, domain, "internal-server-error", Some(NOWHERE_TEXT)).await
                }
            }
            true
        }
        runtime::Location::Nowhere => {
            fail_bounded(wire, domain, "internal-server-error", Some(NOWHERE_TEXT)).await;
            true
        }
    }
}

/// Ends the stream of a session whose user the engine says is served elsewhere now: sent to the new node, or,
/// when placement has flipped back meanwhile, asked to sign in again.
async fn moved_away<S: Store, T: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<T>,
    shared: &Shared<S>,
    user: &BareJid,
) {
    if !send_home(wire, shared, user).await {
        fail_bounded(wire, &shared.domain, "reset", Some(MOVED_TEXT)).await;
    }
}

/// What the handshake ended with.
enum Bound {
    /// A new session bound to this address.
    Fresh(FullJid),
    /// A session resumed (XEP-0198), `<resumed/>` already written.
    Resumed {
        /// The session.
        parked: sm::Parked,
        /// Its resumption id, which the client goes on using.
        previd: String,
    },
}

/// Resource binding (RFC 6120 §7) through the engine, or the resumption of an earlier session (XEP-0198).
async fn bind<S: Store, T: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<T>,
    shared: &Shared<S>,
    user: &BareJid,
    session: SessionId,
    sink: runtime::SessionSink,
    rx: &mut SessionReceiver,
) -> Option<Bound> {
    let domain = shared.domain.as_str();
    let mut sink = Some(sink);
    loop {
        let event = match wire.next().await {
            Ok(ev) => ev,
            Err(e) => return end_with(wire, domain, e).await,
        };
        match event {
            StreamEvent::Open(h) => {
                if !open_stream(wire, domain, &h).await {
                    return None;
                }
                // In a cluster a user is served by one node: a client that reached another is sent home on
                // the restarted stream, before it binds.
                if send_home(wire, shared, user).await {
                    return None;
                }
                let features = Element::new(ns::STREAMS, "features")
                    .with_child(Element::new(ns::BIND, "bind"))
                    .with_child(
                        Element::new(translate::features::session::NS_SESSION, "session")
                            .with_child(Element::new(
                                translate::features::session::NS_SESSION,
                                "optional",
                            )),
                    )
                    .with_child(Element::new(ns::SM, "sm"))
                    .with_child(Element::new(NS_CSI, "csi"));
                let features = translate::features::roster::stream_features()
                    .into_iter()
                    .fold(features, Element::with_child)
                    .with_child(translate::features::caps::stream_feature(&shared.features));
                wire.send(&features).await.ok()?;
            }
            StreamEvent::Stanza(stanza)
                if stanza.iq_type() == Some(xmpp_codec::IqType::Set)
                    && stanza.payloads().any(|p| p.is(ns::BIND, "bind")) =>
            {
                let id = stanza.id().unwrap_or_default().to_owned();
                let resource = stanza
                    .payloads()
                    .find(|p| p.is(ns::BIND, "bind"))
                    .and_then(|b| b.child(ns::BIND, "resource"))
                    .map(|r| r.text())
                    .filter(|r| !r.is_empty());
                shared.hub.attach(session, sink.take()?).ok()?;
                let open = shared.hub.submit(Input::OpenSession {
                    session,
                    user: user.clone(),
                    resource,
                });
                let reply = match open.map_err(|r| r.error) {
                    Ok(()) => rx.recv().await,
                    Err(SubmitError::Busy { .. }) => {
                        let _ = wire
                            .send(&translate::iq_error(
                                Some(&id),
                                user.as_str(),
                                None,
                                ErrorCondition::ResourceConstraint,
                                Some("the server is busy; try again shortly"),
                            ))
                            .await;
                        wire.fail(domain, "resource-constraint", Some("the server is busy"))
                            .await;
                        return None;
                    }
                    Err(SubmitError::Stopped) => None,
                };
                return match reply {
                    Some(ToSession::Bound(jid)) => {
                        let result = Element::new(ns::CLIENT, "iq")
                            .with_attr("type", "result")
                            .with_attr("id", id)
                            .with_child(Element::new(ns::BIND, "bind").with_child(
                                Element::new(ns::BIND, "jid").with_text(jid.to_string()),
                            ));
                        wire.send(&result).await.ok()?;
                        Some(Bound::Fresh(jid))
                    }
                    Some(ToSession::BindRefused(BindError::ServedElsewhere(_))) => {
                        // Placement changed between the check before binding and the bind.
                        moved_away(wire, shared, user).await;
                        None
                    }
                    Some(ToSession::BindRefused(reason)) => {
                        let (condition, text) = match &reason {
                            BindError::TooManySessions { .. } => {
                                (ErrorCondition::ResourceConstraint, reason.to_string())
                            }
                            BindError::BadResource(_) => {
                                (ErrorCondition::BadRequest, reason.to_string())
                            }
                            BindError::StoreUnavailable(_) => {
                                (ErrorCondition::InternalServerError, reason.to_string())
                            }
                            _ => (ErrorCondition::NotAllowed, reason.to_string()),
                        };
                        let _ = wire
                            .send(&translate::iq_error(
                                Some(&id),
                                user.as_str(),
                                None,
                                condition,
                                Some(&text),
                            ))
                            .await;
                        // A store failure is the server's fault, not the client's: the client may try again.
                        let stream_condition = match reason {
                            BindError::StoreUnavailable(_) => "internal-server-error",
                            _ => "policy-violation",
                        };
                        wire.fail(domain, stream_condition, Some(&text)).await;
                        None
                    }
                    Some(ToSession::Closed(SessionEnded::StoreFailed)) => {
                        wire.fail(
                            domain,
                            "internal-server-error",
                            Some("the server could not store this session's data; reconnect later"),
                        )
                        .await;
                        None
                    }
                    _ => {
                        wire.fail(domain, "system-shutdown", None).await;
                        None
                    }
                };
            }
            StreamEvent::Element(el) if el.ns == ns::SM => match Nonza::classify(&el) {
                Some(Nonza::SmResume { previd, h }) => {
                    match resume(shared, user, previd, h).await {
                        Ok(parked) => {
                            wire.send(&sm::resumed(previd, parked.counters.h()))
                                .await
                                .ok()?;
                            return Some(Bound::Resumed {
                                parked,
                                previd: previd.to_owned(),
                            });
                        }
                        Err(e) => {
                            debug!(%user, %e, "stream management: resumption refused");
                            // The client binds normally next (XEP-0198 §5).
                            wire.send(&sm::failed("item-not-found")).await.ok()?;
                        }
                    }
                }
                // Enabling is only for a bound stream (XEP-0198 §3).
                _ => wire.send(&sm::failed("unexpected-request")).await.ok()?,
            },
            StreamEvent::Stanza(_) | StreamEvent::Element(_) => {
                wire.fail(domain, "not-authorized", Some("bind a resource first"))
                    .await;
                return None;
            }
            StreamEvent::Close => {
                wire.close().await;
                return None;
            }
        }
    }
}

/// Takes over the session `previd` of `user` from whoever holds it, acknowledging the `h` stanzas the client
/// says it handled.
async fn resume<S>(
    shared: &Shared<S>,
    user: &BareJid,
    previd: &str,
    h: u32,
) -> Result<sm::Parked, sm::ResumeError> {
    let handed = shared.sm.claim(previd, user)?;
    let mut parked = tokio::time::timeout(Duration::from_secs(5), handed)
        .await
        .map_err(|_| sm::ResumeError::Gone)?
        .map_err(|_| sm::ResumeError::Gone)?;
    if let Err(e) = parked.counters.ack(h) {
        // A client that claims more than was sent cannot be given a consistent stream: the session ends as if
        // it had not come back.
        debug!(%user, %e, "stream management: resumption with an impossible count");
        let hub = shared.hub.clone();
        tokio::spawn(async move { sm::end(&hub, parked, true).await });
        return Err(sm::ResumeError::Gone);
    }
    Ok(parked)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn me() -> FullJid {
        FullJid::new("alice@example.com/phone").expect("a full JID")
    }

    #[test]
    fn silence_brings_a_ping_then_death_and_traffic_starts_over() {
        let t0 = Instant::now();
        let mut live = Liveness::new(Some(60 * S), 30 * S, 600 * S, t0, 0);
        assert_eq!(live.deadline(), (t0 + 60 * S, Silence::PingDue));

        let ping = live.ping("example.com", &me());
        assert_eq!(ping.attr("type"), Some("get"));
        assert_eq!(ping.attr("from"), Some("example.com"));
        assert_eq!(ping.attr("to"), Some("alice@example.com/phone"));
        assert!(ping.child(NS_PING, "ping").is_some());
        let sent = live.pinged_at.expect("a ping is outstanding");
        assert_eq!(live.deadline(), (sent + 30 * S, Silence::Dead));

        // Any traffic, not only the answer, ends the wait and restarts the interval.
        let later = sent + 5 * S;
        live.heard(later, 10);
        assert_eq!(live.deadline(), (later + 60 * S, Silence::PingDue));
    }

    #[test]
    fn idle_comes_first_when_it_is_shorter_and_is_all_there_is_without_pings() {
        let t0 = Instant::now();
        let live = Liveness::new(Some(60 * S), 30 * S, 45 * S, t0, 0);
        assert_eq!(live.deadline(), (t0 + 45 * S, Silence::Idle));
        for off in [None, Some(Duration::ZERO)] {
            let live = Liveness::new(off, 30 * S, 600 * S, t0, 0);
            assert_eq!(live.deadline(), (t0 + 600 * S, Silence::Idle), "{off:?}");
        }
    }

    #[test]
    fn only_a_result_or_error_with_the_last_ping_id_is_taken_as_the_answer() {
        let stanza = |xml: &str| {
            let mut p = xmpp_codec::StreamParser::with_limits(xmpp_codec::Limits::default());
            p.feed(b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>");
            p.feed(xml.as_bytes());
            let _header = p.next_event().expect("header");
            match p.next_event().expect("parses") {
                Some(StreamEvent::Stanza(s)) => s,
                other => panic!("not a stanza: {other:?}"),
            }
        };
        let mut live = Liveness::new(Some(S), S, 10 * S, Instant::now(), 0);
        let result = stanza("<iq type='result' id='ping1'/>");
        assert!(!live.answers_ping(&result), "no ping sent yet");
        let _ = live.ping("example.com", &me());
        assert!(live.answers_ping(&result));
        assert!(live.answers_ping(&stanza(
            "<iq type='error' id='ping1'><error type='cancel'/></iq>"
        )));
        assert!(!live.answers_ping(&stanza("<iq type='result' id='push1'/>")));
        assert!(!live.answers_ping(&stanza(
            "<iq type='get' id='ping1'><ping xmlns='urn:xmpp:ping'/></iq>"
        )));
        assert!(!live.answers_ping(&stanza("<message id='ping1'/>")));
    }

    /// The whole read path over an in-memory pipe, in paused time: a silent peer is pinged after the
    /// interval, its answer is swallowed, other traffic is passed on, and silence after a ping is death.
    #[tokio::test(start_paused = true)]
    async fn the_read_path_pings_swallows_the_answer_and_declares_the_silent_dead() {
        use tokio::io::AsyncWriteExt;
        let (server, mut client) = tokio::io::duplex(4096);
        let mut wire = Wire::new(server, xmpp_codec::Limits::default());
        client
            .write_all(b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>")
            .await
            .expect("write");
        assert!(matches!(wire.next().await, Ok(StreamEvent::Open(_))));
        let mut live = Liveness::new(Some(S), S, 100 * S, clock(), wire.bytes_read());

        assert_eq!(live.next(&mut wire).await.err(), Some(Silence::PingDue));
        let _ = live.ping("example.com", &me());
        client
            .write_all(b"<iq type='result' id='ping1'/><message to='bob@example.com'><body>hi</body></message>")
            .await
            .expect("write");
        match live.next(&mut wire).await {
            Ok(Ok(StreamEvent::Stanza(s))) => assert_eq!(s.kind().as_str(), "message"),
            other => panic!("the answer was not swallowed: {other:?}"),
        }
        assert_eq!(live.next(&mut wire).await.err(), Some(Silence::PingDue));
        let _ = live.ping("example.com", &me());
        // Whitespace is traffic too, though it makes no event.
        client.write_all(b"  ").await.expect("write");
        tokio::time::sleep(S / 2).await;
        assert_eq!(live.next(&mut wire).await.err(), Some(Silence::PingDue));
        let _ = live.ping("example.com", &me());
        assert_eq!(live.next(&mut wire).await.err(), Some(Silence::Dead));
    }
}
