//! Outbound streams: one per peer domain, opened when the engine first routes a stanza there, authenticated with
//! dialback, reused while it lives and closed when idle. Also the one-off stream a receiving server opens to
//! verify a dialback key with the peer's authoritative server.

use std::sync::{Arc, Mutex};

use presence_core::Input;
use presence_core::runtime::{self, DomainSink};
use presence_core::stanza::{ErrorCondition, Stanza as CoreStanza};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use xmpp_codec::{Element, StreamEvent, ns};

use super::Shared;
use super::dialback::NS_DIALBACK;
use super::peer;
use super::stream::{
    S2sWire, StreamFailure, establish, features, header, offers_external, stream_error_text,
};

/// The route to one peer domain: the engine's stanzas for it go to the task holding its stream, started when
/// there is none.
pub(super) struct Peer {
    domain: String,
    shared: Arc<Shared>,
    queue: Mutex<Option<mpsc::Sender<CoreStanza>>>,
}

impl Peer {
    /// The route to `domain` (found when a stream is opened); nothing connects until a stanza comes.
    pub(super) fn new(domain: &str, shared: Arc<Shared>) -> Self {
        Peer {
            domain: domain.to_owned(),
            shared,
            queue: Mutex::new(None),
        }
    }
}

impl Peer {
    /// Whether a stream task is open or opening for this peer.
    pub(super) fn has_stream(&self) -> bool {
        let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        queue.as_ref().is_some_and(|q| !q.is_closed())
    }
}

impl DomainSink for Peer {
    fn send(&self, stanza: CoreStanza) -> Result<(), Box<CoreStanza>> {
        // Never poisoned in practice (nothing here panics); a poisoned lock still holds a usable sender.
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let stanza = match queue.as_ref() {
            Some(q) => match q.try_send(stanza) {
                Ok(()) => return Ok(()),
                // Too far behind: bounced like a stanza for an unreachable domain.
                Err(mpsc::error::TrySendError::Full(s)) => return Err(Box::new(s)),
                Err(mpsc::error::TrySendError::Closed(s)) => s,
            },
            None => stanza,
        };
        // No stream, or its task ended (idle, or the peer went away): a new one.
        let (tx, rx) = mpsc::channel(self.shared.settings.outbound_queue.max(1));
        let sent = tx.try_send(stanza);
        *queue = Some(tx);
        self.shared
            .tasks
            .spawn(run(self.domain.clone(), self.shared.clone(), rx));
        sent.map_err(|e| match e {
            mpsc::error::TrySendError::Full(s) | mpsc::error::TrySendError::Closed(s) => {
                Box::new(s)
            }
        })
    }
}

/// Opens, authenticates and serves the stream to `domain` until it fails or idles; what is queued when it
/// cannot be opened bounces with `remote-server-timeout`.
async fn run(domain: String, shared: Arc<Shared>, mut rx: mpsc::Receiver<CoreStanza>) {
    let timeout = shared.settings.connect_timeout;
    let opened = match tokio::time::timeout(timeout, open(&shared, &domain)).await {
        Ok(r) => r,
        Err(_) => Err(StreamFailure::Protocol("timed out")),
    };
    let (mut wire, method) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            warn!(%domain, error = %e, "s2s outbound stream failed");
            // A domain with no server to find is not found (RFC 6120 §8.3.3.17); one that did not answer in
            // time, timed out (§8.3.3.16).
            let condition = match e {
                StreamFailure::NotFound(_) => ErrorCondition::RemoteServerNotFound,
                _ => ErrorCondition::RemoteServerTimeout,
            };
            rx.close();
            while let Ok(stanza) = rx.try_recv() {
                bounce(&shared, &stanza, condition);
            }
            return;
        }
    };
    info!(%domain, %method, "s2s outbound stream authenticated");
    let local = shared.settings.domain.clone();
    let idle = shared.settings.idle_timeout;
    let ended: String = loop {
        tokio::select! {
            next = rx.recv() => {
                let Some(stanza) = next else { break "no more stanzas".into() };
                queue(&mut wire, stanza, &local);
                while let Ok(more) = rx.try_recv() {
                    queue(&mut wire, more, &local);
                }
                if let Err(e) = wire.flush_out().await {
                    break e.to_string();
                }
            }
            ev = wire.next() => match ev {
                // Nothing is expected from the peer on our stream but its close or an error.
                Ok(StreamEvent::Close) => break "the peer closed the stream".into(),
                Ok(StreamEvent::Element(el)) if el.is(ns::STREAMS, "error") => {
                    break format!("stream error: {}", stream_error_text(&el));
                }
                Ok(_) => {}
                Err(e) => break e.to_string(),
            },
            () = tokio::time::sleep(idle) => {
                // Idle: closed; the next stanza opens a new stream.
                break "idle".into();
            }
        }
    };
    info!(%domain, reason = %ended, "s2s outbound stream closed");
    // Stanzas that came in after the end bounce: the next one starts a new stream.
    rx.close();
    while let Ok(stanza) = rx.try_recv() {
        bounce(&shared, &stanza, ErrorCondition::RemoteServerTimeout);
    }
    wire.close().await;
}

/// Opens the stream to `domain` and authenticates as our domain: with SASL EXTERNAL when the peer offers it
/// (RFC 6120 §6.4, XEP-0178), else, or when it refuses, with dialback (XEP-0220 §2.1). Returns the stream and
/// the method used.
async fn open(shared: &Shared, domain: &str) -> Result<(S2sWire, &'static str), StreamFailure> {
    let (mut wire, id, features) = establish(shared, domain).await?;
    let local = shared.settings.domain.as_str();
    if offers_external(&features) {
        match external(&mut wire, local, domain).await? {
            true => return Ok((wire, "SASL EXTERNAL")),
            false => {
                info!(%domain, "s2s SASL EXTERNAL refused by the peer: falling back to dialback")
            }
        }
    }
    let key = shared.settings.secret.key(domain, local, &id);
    wire.send(
        &Element::new(NS_DIALBACK, "result")
            .with_attr("from", local)
            .with_attr("to", domain)
            .with_text(key),
    )
    .await?;
    loop {
        match wire.next().await? {
            StreamEvent::Element(el) if el.is(NS_DIALBACK, "result") => {
                return match el.attr("type") {
                    Some("valid") => Ok((wire, "dialback")),
                    t => Err(StreamFailure::Refused(format!(
                        "dialback result {}",
                        t.unwrap_or("without type")
                    ))),
                };
            }
            StreamEvent::Element(el) if el.is(ns::STREAMS, "error") => {
                return Err(StreamFailure::Refused(stream_error_text(&el)));
            }
            StreamEvent::Close => return Err(StreamFailure::Refused("closed".into())),
            _ => {}
        }
    }
}

/// Authenticates as `local` with SASL EXTERNAL (authzid: our domain, XEP-0178 §2) and restarts the stream on
/// success; `false` when the peer refused (the stream is still usable for dialback).
async fn external(wire: &mut S2sWire, local: &str, domain: &str) -> Result<bool, StreamFailure> {
    use base64::Engine as _;
    let authzid = base64::engine::general_purpose::STANDARD.encode(local);
    wire.send(
        &Element::new(ns::SASL, "auth")
            .with_attr("mechanism", "EXTERNAL")
            .with_text(authzid),
    )
    .await?;
    loop {
        match wire.next().await? {
            StreamEvent::Element(el) if el.is(ns::SASL, "success") => break,
            StreamEvent::Element(el) if el.is(ns::SASL, "failure") => return Ok(false),
            StreamEvent::Element(el) if el.is(ns::STREAMS, "error") => {
                return Err(StreamFailure::Refused(stream_error_text(&el)));
            }
            StreamEvent::Close => return Err(StreamFailure::Refused("closed".into())),
            _ => {}
        }
    }
    // After SASL the stream starts over (RFC 6120 §6.4.6).
    wire.restart();
    wire.open_header(header(local, Some(domain), None)).await?;
    match wire.next().await? {
        StreamEvent::Open(h) if h.content_ns == ns::SERVER => {}
        _ => {
            return Err(StreamFailure::Protocol(
                "expected a stream header after SASL",
            ));
        }
    }
    features(wire).await?;
    Ok(true)
}

/// Asks `domain`'s authoritative server whether `key` is the one it gave for stream `id` to us
/// (XEP-0220 §2.3, the receiving server's side).
pub(super) async fn verify(
    shared: &Shared,
    domain: &str,
    id: &str,
    key: &str,
) -> Result<bool, StreamFailure> {
    let (mut wire, _, _) = establish(shared, domain).await?;
    let local = shared.settings.domain.as_str();
    wire.send(
        &Element::new(NS_DIALBACK, "verify")
            .with_attr("from", local)
            .with_attr("to", domain)
            .with_attr("id", id)
            .with_text(key),
    )
    .await?;
    let valid = loop {
        match wire.next().await? {
            StreamEvent::Element(el)
                if el.is(NS_DIALBACK, "verify") && el.attr("id") == Some(id) =>
            {
                break el.attr("type") == Some("valid");
            }
            StreamEvent::Element(el) if el.is(ns::STREAMS, "error") => {
                return Err(StreamFailure::Refused(stream_error_text(&el)));
            }
            StreamEvent::Close => return Err(StreamFailure::Refused("closed".into())),
            _ => {}
        }
    };
    wire.close().await;
    Ok(valid)
}

/// Adds a stanza to the stream's output.
fn queue(wire: &mut S2sWire, stanza: CoreStanza, local: &str) {
    if let Some(out) = peer::render(stanza, local) {
        debug!(name = %out.element.name, to = ?out.element.attr("to"), "s2s stanza out");
        wire.queue(&out);
    }
}

/// Sends the error for a stanza that could not be carried to its local sender.
pub(super) fn bounce(shared: &Shared, stanza: &CoreStanza, condition: ErrorCondition) {
    if let Some(error) = runtime::undeliverable(stanza, condition) {
        debug!(to = %error.to, ?condition, "s2s stanza bounced");
        let _ = shared
            .hub
            .submit(Input::FromRemote(CoreStanza::Error(error)));
    }
}
