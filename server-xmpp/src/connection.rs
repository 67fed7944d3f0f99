//! One client connection (RFC 6120): mandatory STARTTLS, SASL, resource binding, then stanzas between the
//! socket and the hub until either side ends the stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use presence_core::engine::{BindError, CloseReason};
use presence_core::store::{ScramCredentials, Store, StoreError};
use presence_core::time::Timestamp;
use presence_core::{BareJid, FullJid, Input, SessionId};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use xmpp_codec::{Element, Nonza, StreamEvent, StreamHeader, ns};

use crate::hub::{HubMsg, ToConn};
use crate::sasl::{self, CredentialLookup, SaslServer, Step};
use crate::translate::{self, FromClient, Me};
use crate::wire::{Ended, Wire};

/// What every connection shares.
pub struct Shared<S> {
    /// The served domain.
    pub domain: String,
    /// TLS for STARTTLS.
    pub tls: TlsAcceptor,
    /// The engine's hub.
    pub hub: mpsc::UnboundedSender<HubMsg>,
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
    /// Session id source.
    pub next_session: AtomicU64,
    /// Secret mixed into fake SCRAM salts for unknown users.
    pub secret: [u8; 16],
}

/// How many failed SASL attempts a connection gets before it is closed.
const MAX_AUTH_ATTEMPTS: u32 = 3;

/// Serves one accepted TCP connection to the end.
pub async fn serve<S: Store + Send + Sync + 'static>(tcp: TcpStream, shared: Arc<Shared<S>>) {
    let _ = tcp.set_nodelay(true);
    let mut wire = Wire::new(tcp, shared.limits);
    let Ok(permit) = shared.unauthenticated.clone().try_acquire_owned() else {
        wire.fail(
            &shared.domain,
            "resource-constraint",
            Some("too many connections are authenticating"),
        )
        .await;
        return;
    };
    let handshake =
        tokio::time::timeout(shared.handshake_timeout, negotiate(wire, &shared, permit)).await;
    let Ok(Some((wire, user))) = handshake else {
        return;
    };
    // Binding is part of the handshake too; the permit was released at SASL success.
    established(wire, &shared, user).await;
}

/// Plain TCP: only STARTTLS is allowed. Then TLS and SASL. Returns the authenticated stream and user.
async fn negotiate<S: Store>(
    mut wire: Wire<TcpStream>,
    shared: &Shared<S>,
    permit: OwnedSemaphorePermit,
) -> Option<(Wire<tokio_rustls::server::TlsStream<TcpStream>>, BareJid)> {
    let domain = shared.domain.as_str();
    loop {
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
    let tls = shared.tls.accept(tcp).await.ok()?;
    let mut wire = spare.with_io(tls);
    let user = authenticate(&mut wire, shared).await?;
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

struct Accounts<'a, S> {
    store: &'a S,
    domain: &'a str,
}

impl<S: Store> CredentialLookup for Accounts<'_, S> {
    fn credentials(&self, username: &str) -> Result<Option<Vec<ScramCredentials>>, StoreError> {
        let Ok(jid) = BareJid::from_parts(Some(username), self.domain) else {
            return Ok(None);
        };
        Ok(self.store.account(&jid)?.map(|a| a.credentials))
    }
}

/// SASL over TLS (RFC 6120 §6). Returns the authenticated user, with the stream restarted.
async fn authenticate<S: Store, T: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<T>,
    shared: &Shared<S>,
) -> Option<BareJid> {
    let domain = shared.domain.as_str();
    let lookup = Accounts {
        store: shared.store.as_ref(),
        domain,
    };
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
                wire.send(&Element::new(ns::STREAMS, "features").with_child(mechs))
                    .await
                    .ok()?;
                continue;
            }
            StreamEvent::Element(el) => match Nonza::classify(&el) {
                Some(Nonza::SaslAuth {
                    mechanism,
                    initial_response,
                }) => match decode(&initial_response) {
                    Ok(initial) => {
                        let nonce = sasl::server_nonce(&crate::random_bytes::<18>());
                        let params = sasl::Params {
                            tls: true,
                            server_nonce: &nonce,
                            secret: &shared.secret,
                        };
                        match SaslServer::start(mechanism, initial.as_deref(), params, &lookup) {
                            Ok((server, step)) => {
                                exchange = Some(server);
                                Ok(step)
                            }
                            Err(f) => Ok(Step::Failure(f)),
                        }
                    }
                    Err(()) => Err(()),
                },
                Some(Nonza::SaslResponse(data)) => match (exchange.as_mut(), decode(&data)) {
                    (Some(server), Ok(bytes)) => {
                        Ok(server.step(&bytes.unwrap_or_default(), &lookup))
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
            StreamEvent::Stanza(_) => {
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

/// The authenticated stream: bind a resource, then exchange stanzas with the hub.
async fn established<S, T>(mut wire: Wire<T>, shared: &Shared<S>, user: BareJid)
where
    S: Store,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let domain = shared.domain.as_str();
    let session = SessionId(shared.next_session.fetch_add(1, Ordering::Relaxed));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let Some(jid) = tokio::time::timeout(
        shared.handshake_timeout,
        bind(&mut wire, shared, &user, session, tx, &mut rx),
    )
    .await
    .ok()
    .flatten() else {
        return;
    };
    let me = Me {
        session,
        jid: &jid,
        domain,
    };
    let mut pushes = 0u64;
    let reason = loop {
        tokio::select! {
            read = tokio::time::timeout(shared.idle_timeout, wire.next()) => match read {
                Err(_) => {
                    wire.fail(domain, "connection-timeout", Some("idle for too long")).await;
                    break Some(());
                }
                Ok(Ok(StreamEvent::Stanza(stanza))) => match translate::from_client(stanza, &me, now()) {
                    FromClient::Engine(input) => {
                        if shared.hub.send(HubMsg::Input(input)).is_err() {
                            wire.fail(domain, "system-shutdown", None).await;
                            break Some(());
                        }
                    }
                    FromClient::Reply(el) => {
                        if wire.send(&el).await.is_err() {
                            break Some(());
                        }
                    }
                    FromClient::Nothing => {}
                },
                Ok(Ok(StreamEvent::Element(_))) => {
                    wire.fail(domain, "unsupported-stanza-type", Some("that element is not supported here")).await;
                    break Some(());
                }
                Ok(Ok(StreamEvent::Open(_))) => {
                    wire.fail(domain, "not-authorized", Some("the stream cannot be restarted now")).await;
                    break Some(());
                }
                Ok(Ok(StreamEvent::Close)) => {
                    wire.close().await;
                    break Some(());
                }
                Ok(Err(e)) => {
                    let _: Option<()> = end_with(&mut wire, domain, e).await;
                    break Some(());
                }
            },
            msg = rx.recv() => match msg {
                Some(ToConn::Stanza(stanza)) => {
                    // Write everything already waiting in one go; a non-stanza message ends the batch and is
                    // handled after the flush, never dropped.
                    let mut next = Some(stanza);
                    let mut after = None;
                    while let Some(stanza) = next.take() {
                        if let Some(o) = translate::to_client(stanza, &jid, domain, || {
                            pushes += 1;
                            format!("push{pushes}")
                        }) {
                            wire.queue(&o);
                        }
                        match rx.try_recv() {
                            Ok(ToConn::Stanza(s)) => next = Some(s),
                            Ok(other) => after = Some(other),
                            Err(_) => {}
                        }
                    }
                    if wire.flush_out().await.is_err() {
                        break Some(());
                    }
                    if let Some(msg) = after {
                        break ended_by_hub(&mut wire, domain, msg).await;
                    }
                }
                Some(msg) => break ended_by_hub(&mut wire, domain, msg).await,
                None => {
                    wire.fail(domain, "system-shutdown", None).await;
                    break Some(());
                }
            },
        }
    };
    if reason.is_some() {
        let _ = shared
            .hub
            .send(HubMsg::Input(Input::CloseSession { session }));
    }
}

/// Ends the stream for a hub message that is not a stanza. Returns `Some` when the engine must still be told the
/// session is gone (it already knows after a conflict).
async fn ended_by_hub<T: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<T>,
    domain: &str,
    msg: ToConn,
) -> Option<()> {
    match msg {
        ToConn::Close(CloseReason::Conflict) => {
            wire.fail(
                domain,
                "conflict",
                Some("replaced by a new session with the same resource"),
            )
            .await;
            None
        }
        _ => {
            wire.fail(domain, "system-shutdown", None).await;
            Some(())
        }
    }
}

/// Resource binding (RFC 6120 §7) through the engine.
async fn bind<S: Store, T: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<T>,
    shared: &Shared<S>,
    user: &BareJid,
    session: SessionId,
    tx: mpsc::UnboundedSender<ToConn>,
    rx: &mut mpsc::UnboundedReceiver<ToConn>,
) -> Option<FullJid> {
    let domain = shared.domain.as_str();
    let mut tx = Some(tx);
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
                let features = Element::new(ns::STREAMS, "features")
                    .with_child(Element::new(ns::BIND, "bind"))
                    .with_child(
                        Element::new(translate::inbound::NS_SESSION, "session")
                            .with_child(Element::new(translate::inbound::NS_SESSION, "optional")),
                    );
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
                let tx = tx.take()?;
                shared.hub.send(HubMsg::Attach { session, tx }).ok()?;
                shared
                    .hub
                    .send(HubMsg::Input(Input::OpenSession {
                        session,
                        user: user.clone(),
                        resource,
                    }))
                    .ok()?;
                return match rx.recv().await {
                    Some(ToConn::Bound(jid)) => {
                        let result = Element::new(ns::CLIENT, "iq")
                            .with_attr("type", "result")
                            .with_attr("id", id)
                            .with_child(Element::new(ns::BIND, "bind").with_child(
                                Element::new(ns::BIND, "jid").with_text(jid.to_string()),
                            ));
                        wire.send(&result).await.ok()?;
                        Some(jid)
                    }
                    Some(ToConn::BindRefused(reason)) => {
                        let (condition, text) = match &reason {
                            BindError::TooManySessions { .. } => (
                                presence_core::stanza::ErrorCondition::ResourceConstraint,
                                reason.to_string(),
                            ),
                            BindError::BadResource(_) => (
                                presence_core::stanza::ErrorCondition::BadRequest,
                                reason.to_string(),
                            ),
                            BindError::StoreUnavailable(_) => (
                                presence_core::stanza::ErrorCondition::InternalServerError,
                                reason.to_string(),
                            ),
                            _ => (
                                presence_core::stanza::ErrorCondition::NotAllowed,
                                reason.to_string(),
                            ),
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
                    _ => {
                        wire.fail(domain, "system-shutdown", None).await;
                        None
                    }
                };
            }
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

fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Timestamp::from_millis(ms)
}
