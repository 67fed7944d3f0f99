//! Inbound streams: a peer connects, we offer STARTTLS, then SASL EXTERNAL when its certificate proves the
//! domain its stream names (`trust`) and dialback, accept EXTERNAL for that domain, verify the keys it presents with its
//! authoritative server (XEP-0220 §2.3), answer key checks for the streams we opened elsewhere (§2.4), and carry
//! its stanzas from the domains it authenticated into the engine.

use std::net::SocketAddr;
use std::sync::Arc;

use presence_core::Input;
use presence_core::runtime::SubmitError;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tracing::{debug, info, warn};
use xmpp_codec::{Element, StreamEvent, ns};

use super::Shared;
use super::dialback::{NS_DIALBACK, NS_DIALBACK_FEATURE};
use super::outbound;
use super::peer::{self, Refused};
use super::stream::{Io, S2sWire, StreamFailure, header};
use crate::wire::{Ended, Wire};

/// Why an inbound stream was ended by us.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("the stream is not a jabber:server stream")]
    Namespace,
    #[error("the stream is for {0:?}, which is not served here")]
    HostUnknown(String),
    #[error("TLS is required before dialback or stanzas")]
    TlsRequired,
    #[error("a stanza came before any domain was authenticated")]
    NotAuthorized,
    #[error("a stanza's 'from' names a domain this stream did not authenticate")]
    InvalidFrom,
    #[error("the dialback key for {0} was not valid")]
    InvalidKey(String),
    #[error("the stream was silent too long")]
    Timeout,
    #[error("the TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error(transparent)]
    Stream(#[from] Ended),
}

impl Refusal {
    /// The stream error condition to send (RFC 6120 §4.9.3), or nothing when the stream is already gone.
    fn condition(&self) -> Option<&'static str> {
        Some(match self {
            Refusal::Namespace => "invalid-namespace",
            Refusal::HostUnknown(_) => "host-unknown",
            Refusal::TlsRequired => "policy-violation",
            Refusal::NotAuthorized | Refusal::InvalidKey(_) => "not-authorized",
            Refusal::InvalidFrom => "invalid-from",
            Refusal::Timeout => "connection-timeout",
            Refusal::Stream(Ended::Codec(_)) => "not-well-formed",
            Refusal::Tls(_) | Refusal::Stream(_) => return None,
        })
    }
}

/// Serves one inbound stream until it ends; `_permit` counts it against the inbound cap. On the direct-TLS port
/// (XEP-0368) the TLS handshake comes first.
pub(super) async fn serve(
    tcp: TcpStream,
    addr: SocketAddr,
    shared: Arc<Shared>,
    _permit: OwnedSemaphorePermit,
    direct_tls: bool,
) {
    let _ = tcp.set_nodelay(true);
    let mut certs = None;
    let io: Box<dyn Io> = if direct_tls {
        let handshake = tokio::time::timeout(
            shared.settings.connect_timeout,
            shared.direct_acceptor.accept(tcp),
        )
        .await;
        match handshake {
            Ok(Ok(tls)) => {
                certs = Some(peer_certificates(tls.get_ref().1));
                Box::new(tls)
            }
            Ok(Err(e)) => {
                info!(%addr, error = %e, "s2s direct TLS handshake failed");
                return;
            }
            Err(_) => {
                info!(%addr, "s2s direct TLS handshake timed out");
                return;
            }
        }
    } else {
        Box::new(tcp)
    };
    let mut wire: S2sWire = Wire::new(io, shared.settings.limits);
    let mut authenticated = Vec::new();
    let local = shared.settings.domain.clone();
    match session(&mut wire, &shared, &mut authenticated, certs).await {
        Ok(reason) => {
            info!(%addr, peers = ?authenticated, %reason, "s2s inbound stream closed");
            wire.close().await;
        }
        Err(refusal) => {
            info!(%addr, peers = ?authenticated, %refusal, "s2s inbound stream ended");
            if let Some(condition) = refusal.condition() {
                if !wire.opened() {
                    let _ = wire
                        .open_header(header(&local, None, Some(&crate::random_id())))
                        .await;
                }
                wire.fail(&local, condition, Some(&refusal.to_string()))
                    .await;
            }
        }
    }
}

/// Reads the next item, ending the stream after `idle_timeout` of silence, or `connect_timeout` while no domain
/// is authenticated (a stalling stranger does not hold an inbound slot for long).
async fn next(
    wire: &mut S2sWire,
    shared: &Shared,
    authenticated: bool,
) -> Result<StreamEvent, Refusal> {
    let limit = if authenticated {
        shared.settings.idle_timeout
    } else {
        shared.settings.connect_timeout
    };
    match tokio::time::timeout(limit, wire.next()).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(Refusal::Timeout),
    }
}

/// The certificate chain a TLS peer showed (empty: none).
fn peer_certificates(conn: &rustls::ServerConnection) -> Vec<CertificateDer<'static>> {
    conn.peer_certificates()
        .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
        .unwrap_or_default()
}

/// The stream and its restarts; `authenticated` collects the peer domains EXTERNAL or dialback proved. `tls`:
/// the peer's certificates when the transport is encrypted already (direct TLS).
async fn session(
    wire: &mut S2sWire,
    shared: &Shared,
    authenticated: &mut Vec<String>,
    tls: Option<Vec<CertificateDer<'static>>>,
) -> Result<String, Refusal> {
    let local = shared.settings.domain.as_str();
    let mut encrypted = tls.is_some();
    // The certificate the peer showed in the TLS handshake, if any.
    let mut certs: Vec<CertificateDer<'static>> = tls.unwrap_or_default();
    let mut sasl_done = false;
    'stream: loop {
        let opening = match tokio::time::timeout(shared.settings.connect_timeout, wire.next()).await
        {
            Ok(r) => r?,
            Err(_) => return Err(Refusal::Timeout),
        };
        let StreamEvent::Open(h) = opening else {
            return Err(Refusal::Namespace);
        };
        let id = crate::random_id();
        wire.open_header(header(local, h.from.as_deref(), Some(&id)))
            .await
            .map_err(Ended::Io)?;
        if h.content_ns != ns::SERVER {
            return Err(Refusal::Namespace);
        }
        if let Some(to) = h.to.as_deref()
            && !to.eq_ignore_ascii_case(local)
        {
            return Err(Refusal::HostUnknown(to.to_owned()));
        }
        let mut features = Element::new(ns::STREAMS, "features");
        if !encrypted {
            let mut starttls = Element::new(ns::TLS, "starttls");
            if shared.settings.require_tls {
                starttls = starttls.with_child(Element::new(ns::TLS, "required"));
            }
            features = features.with_child(starttls);
        }
        // EXTERNAL only for the domain the certificate proves (RFC 6120 §13.7.1.2.1), offered once per stream.
        let external_for = match h.from.as_deref() {
            Some(from)
                if encrypted
                    && !sasl_done
                    && shared.settings.permits(from)
                    && shared.trust.vouches_for(&certs, from) =>
            {
                let mechanisms = Element::new(ns::SASL, "mechanisms")
                    .with_child(Element::new(ns::SASL, "mechanism").with_text("EXTERNAL"));
                features = features.with_child(mechanisms);
                Some(from.to_ascii_lowercase())
            }
            _ => None,
        };
        features = features.with_child(Element::new(NS_DIALBACK_FEATURE, "dialback"));
        wire.send(&features).await.map_err(Ended::Io)?;
        loop {
            match next(wire, shared, !authenticated.is_empty()).await? {
                StreamEvent::Element(el) if el.is(ns::TLS, "starttls") && !encrypted => {
                    wire.send(&Element::new(ns::TLS, "proceed"))
                        .await
                        .map_err(Ended::Io)?;
                    let placeholder: S2sWire =
                        Wire::new(Box::new(tokio::io::empty()), shared.settings.limits);
                    let (io, spare) = std::mem::replace(wire, placeholder).into_io();
                    let stream = tokio::time::timeout(
                        shared.settings.connect_timeout,
                        shared.acceptor.accept(io),
                    )
                    .await
                    .map_err(|_| Refusal::Timeout)?
                    .map_err(Refusal::Tls)?;
                    certs = peer_certificates(stream.get_ref().1);
                    *wire = spare.with_io(Box::new(stream));
                    encrypted = true;
                    continue 'stream;
                }
                StreamEvent::Element(el) if el.is(ns::SASL, "auth") => {
                    match external(&el, external_for.as_deref()) {
                        Ok(domain) => {
                            wire.send(&Element::new(ns::SASL, "success"))
                                .await
                                .map_err(Ended::Io)?;
                            info!(peer = %domain, "s2s inbound stream authenticated (SASL EXTERNAL)");
                            if !authenticated.contains(&domain) {
                                authenticated.push(domain);
                            }
                            sasl_done = true;
                            // The peer starts a new stream on the same transport (RFC 6120 §6.4.6).
                            wire.restart();
                            continue 'stream;
                        }
                        Err(condition) => {
                            info!(%condition, "s2s SASL EXTERNAL refused");
                            wire.send(
                                &Element::new(ns::SASL, "failure")
                                    .with_child(Element::new(ns::SASL, condition)),
                            )
                            .await
                            .map_err(Ended::Io)?;
                        }
                    }
                }
                StreamEvent::Element(el) if el.is(NS_DIALBACK, "result") => {
                    if shared.settings.require_tls && !encrypted {
                        return Err(Refusal::TlsRequired);
                    }
                    result(wire, shared, &el, &id, authenticated).await?;
                }
                StreamEvent::Element(el) if el.is(NS_DIALBACK, "verify") => {
                    answer_verify(wire, shared, &el).await?;
                }
                StreamEvent::Element(el) if el.is(ns::STREAMS, "error") => {
                    return Ok(format!(
                        "stream error from the peer: {}",
                        super::stream::stream_error_text(&el)
                    ));
                }
                StreamEvent::Element(el) => {
                    debug!(name = %el.name, "s2s inbound: element ignored");
                }
                StreamEvent::Stanza(s) => {
                    if authenticated.is_empty() {
                        return Err(Refusal::NotAuthorized);
                    }
                    let stanza = match peer::read(s, local, authenticated) {
                        Ok(stanza) => stanza,
                        Err(Refused::InvalidFrom) => return Err(Refusal::InvalidFrom),
                        Err(why) => {
                            debug!(?why, "s2s inbound stanza dropped");
                            continue;
                        }
                    };
                    debug!(?stanza, "s2s stanza in");
                    match shared.hub.submit(Input::FromRemote(stanza)) {
                        Ok(()) => {}
                        // The peer's stanza is dropped rather than the stream stalled: local users come first.
                        Err(r) if matches!(r.error, SubmitError::Busy { .. }) => {
                            warn!("s2s inbound stanza dropped: the engine is busy");
                        }
                        Err(_) => return Ok("the engine is shutting down".into()),
                    }
                }
                StreamEvent::Close => return Ok("the peer closed the stream".into()),
                StreamEvent::Open(_) => return Err(Refusal::Namespace),
            }
        }
    }
}

/// A peer's SASL `<auth/>`: the domain it authenticates as, when it asks for EXTERNAL, we offered EXTERNAL for
/// `offered` (its certificate proves that domain) and its authzid is empty or that domain (XEP-0178 §2); else
/// the SASL failure condition.
fn external(auth: &Element, offered: Option<&str>) -> Result<String, &'static str> {
    use base64::Engine as _;
    if auth.attr("mechanism") != Some("EXTERNAL") {
        return Err("invalid-mechanism");
    }
    let Some(domain) = offered else {
        return Err("not-authorized");
    };
    let text = auth.text();
    let text = text.trim();
    if text.is_empty() || text == "=" {
        return Ok(domain.to_owned());
    }
    let authzid = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| "incorrect-encoding")?;
    match std::str::from_utf8(&authzid) {
        Ok(a) if a.eq_ignore_ascii_case(domain) => Ok(domain.to_owned()),
        _ => Err("invalid-authzid"),
    }
}

/// A peer's `<db:result/>`: checks its key with the peer's authoritative server and answers (XEP-0220 §2.1.2).
async fn result(
    wire: &mut S2sWire,
    shared: &Shared,
    el: &Element,
    id: &str,
    authenticated: &mut Vec<String>,
) -> Result<(), Refusal> {
    let local = shared.settings.domain.as_str();
    let from = el.attr("from").unwrap_or_default().to_ascii_lowercase();
    let to = el.attr("to").unwrap_or_default();
    if !to.eq_ignore_ascii_case(local) {
        return Err(Refusal::HostUnknown(to.to_owned()));
    }
    let reply = Element::new(NS_DIALBACK, "result")
        .with_attr("from", local)
        .with_attr("to", from.as_str());
    let refuse = |condition: &str| {
        reply.clone().with_attr("type", "error").with_child(
            Element::new(NS_DIALBACK, "error")
                .with_attr("type", "cancel")
                .with_child(Element::new(ns::STANZA_ERRORS, condition)),
        )
    };
    if !shared.settings.permits(&from) {
        info!(peer = %from, "s2s peer refused by policy");
        wire.send(&refuse("forbidden")).await.map_err(Ended::Io)?;
        return Ok(());
    }
    let key = el.text();
    let checked = tokio::time::timeout(
        shared.settings.connect_timeout,
        outbound::verify(shared, &from, id, key.trim()),
    )
    .await
    .unwrap_or(Err(StreamFailure::Protocol("timed out")));
    match checked {
        Ok(true) => {
            wire.send(&reply.with_attr("type", "valid"))
                .await
                .map_err(Ended::Io)?;
            info!(peer = %from, "s2s inbound stream authenticated (dialback)");
            if !authenticated.contains(&from) {
                authenticated.push(from);
            }
            Ok(())
        }
        Ok(false) => {
            wire.send(&reply.with_attr("type", "invalid"))
                .await
                .map_err(Ended::Io)?;
            Err(Refusal::InvalidKey(from))
        }
        Err(StreamFailure::NotFound(e)) => {
            info!(peer = %from, error = %e, "s2s peer refused: its authoritative server cannot be found");
            wire.send(&refuse("remote-server-not-found"))
                .await
                .map_err(Ended::Io)?;
            Ok(())
        }
        Err(e) => {
            warn!(peer = %from, error = %e, "s2s dialback key could not be verified");
            wire.send(&refuse("remote-server-timeout"))
                .await
                .map_err(Ended::Io)?;
            Ok(())
        }
    }
}

/// A receiving server's `<db:verify/>`: whether the key is one we made for a stream we opened to it
/// (XEP-0220 §2.1.3, the authoritative server's side).
async fn answer_verify(wire: &mut S2sWire, shared: &Shared, el: &Element) -> Result<(), Refusal> {
    let local = shared.settings.domain.as_str();
    let receiving = el.attr("from").unwrap_or_default().to_ascii_lowercase();
    let to = el.attr("to").unwrap_or_default();
    let id = el.attr("id").unwrap_or_default();
    let valid = to.eq_ignore_ascii_case(local)
        && shared
            .settings
            .secret
            .verifies(&receiving, local, id, &el.text());
    debug!(%receiving, valid, "s2s dialback verify answered");
    wire.send(
        &Element::new(NS_DIALBACK, "verify")
            .with_attr("from", local)
            .with_attr("to", receiving.as_str())
            .with_attr("id", id)
            .with_attr("type", if valid { "valid" } else { "invalid" }),
    )
    .await
    .map_err(Ended::Io)?;
    Ok(())
}
