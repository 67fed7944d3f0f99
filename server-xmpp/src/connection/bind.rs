//! Resource binding (RFC 6120 §7) or resumption (XEP-0198) after SASL, and sending a client to the node that
//! serves its user.

use super::*;

/// Why a client whose user is between nodes is turned away.
pub(super) const NOWHERE_TEXT: &str = "no node serves this user right now; try again shortly";
/// Why a session ends when its user moves to another node and the new home is not known yet.
pub(super) const MOVED_TEXT: &str = "this user moved to another node; sign in again";

/// Ends the stream when `user` is not served here: `<see-other-host/>` to the node that serves it (RFC 6120
/// §4.9.3.19), or a temporary error while no node does (a failed node before its peer took its users over).
/// Returns whether the stream was ended.
pub(super) async fn send_home<S: Store, T: AsyncRead + AsyncWrite + Unpin>(
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
pub(super) async fn moved_away<S: Store, T: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<T>,
    shared: &Shared<S>,
    user: &BareJid,
) {
    if !send_home(wire, shared, user).await {
        fail_bounded(wire, &shared.domain, "reset", Some(MOVED_TEXT)).await;
    }
}

/// What the handshake ended with.
pub(super) enum Bound {
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
pub(super) async fn bind<S: Store, T: AsyncRead + AsyncWrite + Unpin>(
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
pub(super) async fn resume<S>(
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
