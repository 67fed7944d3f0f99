//! External components (XEP-0114, Jabber Component Protocol): a trusted service (a push app server, a gateway,
//! a bot platform) connects, proves it knows its domain's shared secret, and from then on receives every stanza
//! addressed to its domain and sends stanzas from it to local users.
//!
//! Decisions:
//! - **Where.** Its own listener (`[xmpp] component_bind`, default loopback `127.0.0.1:5347`), opened only when
//!   components are configured: the protocol has no TLS, so it is for the same host or a private network.
//! - **Authentication.** `<handshake/>` carries hex(SHA-1(stream id + secret)) (XEP-0114 §3); compared in
//!   constant time. A domain nobody configured gets `<host-unknown/>`, a wrong secret `<not-authorized/>`, a
//!   domain already connected `<conflict/>`.
//! - **Stanzas from the component** must come from its domain (`<invalid-from/>` otherwise, XEP-0114 §3) and
//!   go to the served domain; messages, IQs, subscription stanzas, probes and unavailable presence are carried
//!   into the engine as stanzas from another domain. Available presence from a component is not carried yet (it
//!   needs the presence reading that federation will share).
//! - **Stanzas for the component** wait in a queue of `outbound_queue` stanzas; past it, what needs an answer
//!   bounces to its sender like a stanza for an unreachable domain, and the rest is dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use presence_core::runtime::{DomainSink, Handle, SubmitError};
use presence_core::stanza::{ErrorCondition, PresenceKind, Stanza as CoreStanza};
use presence_core::{Input, Jid};
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use xmpp_codec::{Element, IqType, Stanza, StreamEvent, ns};

use crate::ServeError;
use crate::translate::{Outgoing, inbound, stanza_error, to_peer};
use crate::wire::{Ended, Wire};

/// One configured component.
#[derive(Clone)]
pub struct Component {
    /// Its domain (e.g. `push.example.com`).
    pub domain: String,
    /// The secret it authenticates with.
    pub secret: String,
}

impl std::fmt::Debug for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Component")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

/// How the component listener is set up.
#[derive(Debug, Clone)]
pub struct ComponentSettings {
    /// The served domain: where components' stanzas may go.
    pub domain: String,
    /// Where to listen.
    pub bind: SocketAddr,
    /// The components that may connect.
    pub components: Vec<Component>,
    /// Codec limits per connection.
    pub limits: xmpp_codec::Limits,
    /// Time from connect to a completed handshake.
    pub handshake_timeout: Duration,
    /// Stanzas that may wait for one component.
    pub outbound_queue: usize,
}

struct Shared {
    settings: ComponentSettings,
    hub: Handle,
}

/// A bound, not yet running component listener.
pub struct ComponentServer {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl ComponentServer {
    /// Opens the listener; stanzas go to the engine behind `hub`.
    pub async fn bind(settings: ComponentSettings, hub: Handle) -> Result<Self, ServeError> {
        let addr = settings.bind;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        Ok(ComponentServer {
            listener,
            shared: Arc::new(Shared { settings, hub }),
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts components until `stop` resolves.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        info!(addr = ?self.listener.local_addr().ok(), "XMPP component listener up");
        tokio::pin!(stop);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        tokio::spawn(serve(tcp, peer, self.shared.clone()));
                    }
                    Err(e) => {
                        warn!(error = %e, "component accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                () = &mut stop => break,
            }
        }
    }
}

/// Carries the engine's stanzas for the component's domain to its connection.
struct Outbox(mpsc::Sender<CoreStanza>);

impl DomainSink for Outbox {
    fn send(&self, stanza: CoreStanza) -> Result<(), Box<CoreStanza>> {
        self.0.try_send(stanza).map_err(|e| match e {
            mpsc::error::TrySendError::Full(s) | mpsc::error::TrySendError::Closed(s) => {
                Box::new(s)
            }
        })
    }
}

/// Why a component's stream ended before it was serving.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("the stream is not a component stream")]
    Namespace,
    #[error("no component is configured for {0:?}")]
    HostUnknown(Option<String>),
    #[error("the handshake did not prove the secret of {0}")]
    NotAuthorized(String),
    #[error("{0} is already connected")]
    Conflict(String),
    #[error("the handshake timed out")]
    Timeout,
    #[error(transparent)]
    Stream(#[from] Ended),
}

impl Refusal {
    fn condition(&self) -> Option<&'static str> {
        match self {
            Refusal::Namespace => Some("invalid-namespace"),
            Refusal::HostUnknown(_) => Some("host-unknown"),
            Refusal::NotAuthorized(_) => Some("not-authorized"),
            Refusal::Conflict(_) => Some("conflict"),
            Refusal::Timeout => Some("connection-timeout"),
            Refusal::Stream(Ended::Codec(_)) => Some("not-well-formed"),
            Refusal::Stream(_) => None,
        }
    }
}

async fn serve(tcp: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let _ = tcp.set_nodelay(true);
    let mut wire = Wire::new(tcp, shared.settings.limits);
    let timeout = shared.settings.handshake_timeout;
    let (tx, rx) = mpsc::channel(shared.settings.outbound_queue.max(1));
    let accepted = match tokio::time::timeout(timeout, handshake(&mut wire, &shared, tx)).await {
        Ok(r) => r,
        Err(_) => Err(Refusal::Timeout),
    };
    match accepted {
        Ok((domain, attached)) => {
            info!(%domain, %peer, "component connected");
            let ended = stream(&mut wire, &shared, &domain, rx).await;
            // Detach before anything else: stanzas for the domain bounce from now on.
            drop(attached);
            info!(%domain, %peer, reason = %ended, "component disconnected");
        }
        Err(refusal) => {
            debug!(%peer, %refusal, "component refused");
            if let Some(condition) = refusal.condition() {
                if !wire.opened() {
                    let _ = wire
                        .open_as(
                            ns::COMPONENT_ACCEPT,
                            &shared.settings.domain,
                            &crate::random_id(),
                            None,
                        )
                        .await;
                }
                wire.fail(
                    &shared.settings.domain,
                    condition,
                    Some(&refusal.to_string()),
                )
                .await;
            }
        }
    }
}

/// The stream header and `<handshake/>`; on success the domain is attached to the engine.
async fn handshake(
    wire: &mut Wire<TcpStream>,
    shared: &Shared,
    tx: mpsc::Sender<CoreStanza>,
) -> Result<(String, presence_core::runtime::Attached), Refusal> {
    let StreamEvent::Open(header) = wire.next().await? else {
        return Err(Refusal::Namespace);
    };
    if header.content_ns != ns::COMPONENT_ACCEPT {
        return Err(Refusal::Namespace);
    }
    let to = header.to.as_deref().map(str::to_ascii_lowercase);
    let Some(component) = to.as_deref().and_then(|to| {
        shared
            .settings
            .components
            .iter()
            .find(|c| c.domain.eq_ignore_ascii_case(to))
    }) else {
        return Err(Refusal::HostUnknown(header.to));
    };
    let domain = component.domain.to_ascii_lowercase();
    let id = crate::random_id();
    wire.open_as(ns::COMPONENT_ACCEPT, &domain, &id, None)
        .await
        .map_err(Ended::Io)?;
    let proof = loop {
        match wire.next().await? {
            StreamEvent::Element(el) if el.is(ns::COMPONENT_ACCEPT, "handshake") => {
                break el.text();
            }
            StreamEvent::Element(_) => continue,
            _ => return Err(Refusal::NotAuthorized(domain)),
        }
    };
    if !proves(&id, &component.secret, proof.trim()) {
        return Err(Refusal::NotAuthorized(domain));
    }
    let attached = shared
        .hub
        .attach_domain(&domain, Arc::new(Outbox(tx)))
        .map_err(|_| Refusal::Conflict(domain.clone()))?;
    wire.send(&Element::new(ns::COMPONENT_ACCEPT, "handshake"))
        .await
        .map_err(Ended::Io)?;
    Ok((domain, attached))
}

/// Whether `proof` is hex(SHA-1(stream id + secret)), XEP-0114 §3.
fn proves(id: &str, secret: &str, proof: &str) -> bool {
    let mut h = Sha1::new();
    h.update(id.as_bytes());
    h.update(secret.as_bytes());
    let expected: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let proof = proof.to_ascii_lowercase();
    expected.len() == proof.len() && bool::from(expected.as_bytes().ct_eq(proof.as_bytes()))
}

/// Serves an authenticated component until its stream ends.
async fn stream(
    wire: &mut Wire<TcpStream>,
    shared: &Shared,
    domain: &str,
    mut rx: mpsc::Receiver<CoreStanza>,
) -> String {
    loop {
        tokio::select! {
            ev = wire.next() => match ev {
                Ok(StreamEvent::Stanza(s)) => {
                    if let Err(reply) = inbound(s, shared, domain) {
                        match reply {
                            Reply::Stanza(el) => {
                                if let Err(e) = wire.send(&component_ns(el)).await {
                                    return e.to_string();
                                }
                            }
                            Reply::InvalidFrom => {
                                wire.fail(domain, "invalid-from", Some("stanzas must come from the component's domain")).await;
                                return "invalid-from".into();
                            }
                        }
                    }
                }
                Ok(StreamEvent::Close) => {
                    wire.close().await;
                    return "closed its stream".into();
                }
                Ok(_) => {}
                Err(e) => {
                    if matches!(e, Ended::Codec(_)) {
                        wire.fail(domain, "not-well-formed", None).await;
                    }
                    return e.to_string();
                }
            },
            out = rx.recv() => {
                let Some(stanza) = out else { return "detached".into() };
                queue_for_component(wire, stanza, &shared.settings.domain);
                // Whatever else is already waiting goes in the same write.
                while let Ok(more) = rx.try_recv() {
                    queue_for_component(wire, more, &shared.settings.domain);
                }
                if let Err(e) = wire.flush_out().await {
                    return e.to_string();
                }
            }
        }
    }
}

/// Renders an engine stanza for the component and adds it to the output (nothing for what never leaves a node).
fn queue_for_component(wire: &mut Wire<TcpStream>, stanza: CoreStanza, domain: &str) {
    if let Some(o) = to_peer(stanza, domain, crate::random_id) {
        wire.queue(&Outgoing {
            element: component_ns(o.element),
            raw_children: o.raw_children,
        });
    }
}

/// What the connection answers a stanza it could not pass on.
enum Reply {
    /// A stanza error for the component.
    Stanza(Element),
    /// The stanza claimed an address outside the component's domain: the stream ends.
    InvalidFrom,
}

/// Carries one stanza from the component into the engine.
fn inbound(s: Stanza, shared: &Shared, domain: &str) -> Result<(), Reply> {
    let from = s.from().and_then(|f| Jid::new(f).ok());
    let Some(from) = from.filter(|f| f.bare().domain() == domain) else {
        return Err(Reply::InvalidFrom);
    };
    let kind = s.kind();
    let id = s.id().map(str::to_owned);
    let addressed = s.to().map(str::to_owned);
    // Errors are never answered with errors (RFC 6120 §8.3.1), nor are results.
    let answerable = s.stanza_type() != Some("error") && s.iq_type() != Some(IqType::Result);
    let error = |condition, text: &str| {
        answerable.then(|| {
            stanza_error(
                kind.as_str(),
                id.as_deref(),
                &from.to_string(),
                addressed.as_deref(),
                condition,
                Some(text),
            )
        })
    };
    let to = match s.to().map(Jid::new) {
        Some(Ok(to)) if to.bare().domain() == shared.settings.domain => to,
        Some(Ok(_)) => {
            return error(
                ErrorCondition::RemoteServerNotFound,
                "a component reaches only the server's own domain",
            )
            .map_or(Ok(()), |e| Err(Reply::Stanza(e)));
        }
        _ => {
            return error(ErrorCondition::BadRequest, "a valid 'to' is required")
                .map_or(Ok(()), |e| Err(Reply::Stanza(e)));
        }
    };
    let stanza = match translate(s, from.clone(), to) {
        Ok(Some(stanza)) => stanza,
        Ok(None) => return Ok(()),
        Err(text) => {
            return error(ErrorCondition::BadRequest, text)
                .map_or(Ok(()), |e| Err(Reply::Stanza(e)));
        }
    };
    match shared.hub.submit(Input::FromRemote(stanza)) {
        Ok(()) => Ok(()),
        Err(r) if matches!(r.error, SubmitError::Busy { .. }) => {
            let Input::FromRemote(stanza) = *r.input else {
                return Ok(());
            };
            busy_reply(stanza).map_or(Ok(()), |e| Err(Reply::Stanza(e)))
        }
        Err(_) => Ok(()),
    }
}

/// The engine's stanza for a component's stanza; `Ok(None)` for what is not carried.
fn translate(s: Stanza, from: Jid, to: Jid) -> Result<Option<CoreStanza>, &'static str> {
    Ok(Some(match s {
        Stanza::Message(_) => CoreStanza::Message {
            from,
            to,
            message: inbound::read_message(s, presence_core::runtime::timestamp()),
            delayed: None,
        },
        Stanza::Iq(_) => {
            let (Some(kind), Some(id)) = (s.iq_type(), s.id()) else {
                return Err("an iq needs a type and an 'id'");
            };
            CoreStanza::Iq {
                from,
                iq: inbound::read_routed_iq(&s, to, kind, id),
            }
        }
        Stanza::Presence(_) => {
            if let Some(action) = s.stanza_type().and_then(inbound::subscription_action) {
                return Ok(Some(CoreStanza::Subscription {
                    from: from.bare().clone(),
                    to: to.bare().clone(),
                    action,
                }));
            }
            let kind = match s.stanza_type() {
                Some("probe") => PresenceKind::Probe,
                Some("unavailable") => PresenceKind::Unavailable,
                _ => return Ok(None),
            };
            CoreStanza::Presence { from, to, kind }
        }
    }))
}

/// The `wait` error a component gets when the engine is too busy to take its stanza.
fn busy_reply(stanza: CoreStanza) -> Option<Element> {
    let (kind, id, from, to) = match &stanza {
        CoreStanza::Message {
            from, to, message, ..
        } => ("message", message.id.clone(), from, to),
        CoreStanza::Iq { from, iq } if iq.kind.is_request() => {
            ("iq", Some(iq.id.clone()), from, &iq.to)
        }
        _ => return None,
    };
    Some(stanza_error(
        kind,
        id.as_deref(),
        &from.to_string(),
        Some(&to.to_string()),
        ErrorCondition::ResourceConstraint,
        Some("the server is busy; try again later"),
    ))
}

/// The element in the component stream's namespace: stanzas are rendered for clients (`jabber:client`), and a
/// component reads them in `jabber:component:accept` (XEP-0114 §3).
fn component_ns(mut el: Element) -> Element {
    fn walk(el: &mut Element) {
        if el.ns == ns::CLIENT {
            el.ns = xmpp_codec::Name::from_static(ns::COMPONENT_ACCEPT);
        }
        for child in el.children.iter_mut() {
            if let xmpp_codec::Node::Element(c) = child {
                walk(c);
            }
        }
    }
    walk(&mut el);
    el
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handshake_proof_is_sha1_of_id_and_secret() {
        // XEP-0114 §3's example: stream id 3BF96D32, secret "sesame" (the XEP shows the digest in hex).
        let mut h = Sha1::new();
        h.update(b"3BF96D32sesame");
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert!(proves("3BF96D32", "sesame", &hex));
        assert!(proves("3BF96D32", "sesame", &hex.to_uppercase()));
        assert!(!proves("3BF96D32", "wrong", &hex));
        assert!(!proves("3BF96D32", "sesame", ""));
    }

    #[test]
    fn rendered_stanzas_move_to_the_component_namespace() {
        let el = Element::new(ns::CLIENT, "message")
            .with_child(Element::new(ns::CLIENT, "body").with_text("hi"))
            .with_child(Element::new("urn:x", "ext"));
        let el = component_ns(el);
        assert_eq!(el.ns, ns::COMPONENT_ACCEPT);
        assert_eq!(
            el.child(ns::COMPONENT_ACCEPT, "body")
                .map(|b| b.text())
                .as_deref(),
            Some("hi")
        );
        assert!(el.child("urn:x", "ext").is_some());
    }
}
