//! Stanzas between the engine and a federated peer: the engine's stanzas rendered for `jabber:server`, a peer's
//! stanzas read into the engine's.

use presence_core::compose::Show;
use presence_core::stanza::{PresenceKind, PresenceView, Stanza as CoreStanza};
use presence_core::{Jid, runtime};
use xmpp_codec::{Element, Name, Node, Stanza, ns};

use crate::translate::{Outgoing, inbound, presence, to_peer};

/// Renders an engine stanza for a peer in `jabber:server`, with a `from` on every stanza (RFC 6120 §4.7.1:
/// a server stream's stanzas always name their sender). `None` for what never leaves a node.
pub(super) fn render(stanza: CoreStanza, local: &str) -> Option<Outgoing> {
    let mut out = match stanza {
        // Probes ask the peer for its users' presence (RFC 6121 §4.3); the client renderer has no use for them.
        CoreStanza::Presence {
            from,
            to,
            kind: PresenceKind::Probe,
        } => Element::new(ns::SERVER, "presence")
            .with_attr("from", from.to_string())
            .with_attr("to", to.to_string())
            .with_attr("type", "probe")
            .into(),
        stanza => to_peer(stanza, local, crate::random_id)?,
    };
    rename_ns(&mut out.element, ns::CLIENT, ns::SERVER);
    if out.element.attr("from").is_none() {
        out.element.set_attr("from", local);
    }
    Some(out)
}

/// Moves the stanza and its children from the content namespace `from` to `to`: `jabber:client` to
/// `jabber:server` on the way out, and back on the way in, where a peer's `<error/>` (or any other child in its
/// stream's default namespace) would otherwise reach a client as an element it does not know.
fn rename_ns(el: &mut Element, from: &'static str, to: &'static str) {
    if el.ns == from {
        el.ns = Name::from_static(to);
    }
    for child in el.children.iter_mut() {
        if let Node::Element(c) = child {
            rename_ns(c, from, to);
        }
    }
}

/// Why a peer's stanza was not taken.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refused {
    /// Its `from` is missing or names a domain the stream did not authenticate: the stream ends.
    InvalidFrom,
    /// Its `to` is missing or not the served domain.
    BadTo,
    /// Not carried (an error presence, an unknown presence type, an IQ without id): dropped.
    Ignored,
}

/// Reads a peer's stanza into the engine's, checking its sender against `authenticated` and its recipient
/// against `local`.
pub(super) fn read(
    mut s: Stanza,
    local: &str,
    authenticated: &[String],
) -> Result<CoreStanza, Refused> {
    rename_ns(s.element_mut(), ns::SERVER, ns::CLIENT);
    let from = s
        .from()
        .and_then(|f| Jid::new(f).ok())
        .filter(|f| authenticated.iter().any(|d| d == f.bare().domain()))
        .ok_or(Refused::InvalidFrom)?;
    let to = s
        .to()
        .and_then(|t| Jid::new(t).ok())
        .filter(|t| t.bare().domain() == local)
        .ok_or(Refused::BadTo)?;
    Ok(match s {
        Stanza::Message(_) => CoreStanza::Message {
            from,
            to,
            message: inbound::read_message(s, runtime::timestamp()),
            delayed: None,
        },
        Stanza::Iq(_) => {
            let (Some(kind), Some(id)) = (s.iq_type(), s.id()) else {
                return Err(Refused::Ignored);
            };
            CoreStanza::Iq {
                from,
                iq: inbound::read_routed_iq(&s, to, kind, id),
            }
        }
        Stanza::Presence(_) => {
            if let Some(action) = s.stanza_type().and_then(inbound::subscription_action) {
                return Ok(CoreStanza::Subscription {
                    from: from.bare().clone(),
                    to: to.bare().clone(),
                    action,
                });
            }
            let kind = match s.stanza_type() {
                Some("probe") => PresenceKind::Probe,
                Some("unavailable") => PresenceKind::Unavailable,
                None => PresenceKind::Available(std::sync::Arc::new(available(s.element()))),
                _ => return Err(Refused::Ignored),
            };
            CoreStanza::Presence { from, to, kind }
        }
    })
}

/// What an available presence from a peer shows.
fn available(el: &Element) -> PresenceView {
    let content = el.ns.as_str();
    let show = match el
        .child(content, "show")
        .map(|s| s.text())
        .as_deref()
        .map(str::trim)
    {
        Some("chat") => Show::Chat,
        Some("away") => Show::Away,
        Some("xa") => Show::Xa,
        Some("dnd") => Show::Dnd,
        _ => Show::Available,
    };
    // A peer's <delay/> is kept: it is the peer's server that stamped it.
    let body = presence::read_body(el, |_| false);
    PresenceView {
        show,
        status: body.status,
        priority: body.priority,
        composed: show.state(),
        extensions: body.extensions.into(),
        avatar: body.avatar,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stanza(xml: &str) -> Stanza {
        let mut p = xmpp_codec::StreamParser::new();
        p.feed(
            format!(
                "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
                 xmlns:db='jabber:server:dialback' version='1.0'>{xml}"
            )
            .as_bytes(),
        );
        loop {
            match p.next_event().expect("parses").expect("an event") {
                xmpp_codec::StreamEvent::Stanza(s) => return s,
                _ => continue,
            }
        }
    }

    #[test]
    fn a_peer_may_only_speak_for_its_authenticated_domains_to_ours() {
        let ok = vec!["b.example".to_owned()];
        let msg = "<message from='bob@b.example/r' to='alice@a.example' type='chat'><body>hi</body></message>";
        let read = read(stanza(msg), "a.example", &ok).expect("taken");
        assert!(matches!(read, CoreStanza::Message { .. }));
        let spoofed =
            "<message from='eve@c.example/r' to='alice@a.example'><body>x</body></message>";
        assert_eq!(read_err(spoofed, &ok), Refused::InvalidFrom);
        let elsewhere =
            "<message from='bob@b.example/r' to='carol@c.example'><body>x</body></message>";
        assert_eq!(read_err(elsewhere, &ok), Refused::BadTo);
        assert_eq!(
            read_err("<message to='alice@a.example'/>", &ok),
            Refused::InvalidFrom
        );
    }

    fn read_err(xml: &str, ok: &[String]) -> Refused {
        read(stanza(xml), "a.example", ok).expect_err("refused")
    }

    #[test]
    fn presence_from_a_peer_is_read_with_its_show_and_status() {
        let ok = vec!["b.example".to_owned()];
        let p = "<presence from='bob@b.example/r' to='alice@a.example'><show>dnd</show><status>busy</status></presence>";
        let CoreStanza::Presence {
            kind: PresenceKind::Available(view),
            ..
        } = read(stanza(p), "a.example", &ok).expect("taken")
        else {
            panic!("available presence expected");
        };
        assert_eq!(view.show, Show::Dnd);
        assert_eq!(view.status.as_deref(), Some("busy"));
        let sub = "<presence from='bob@b.example' to='alice@a.example' type='subscribe'/>";
        assert!(matches!(
            read(stanza(sub), "a.example", &ok),
            Ok(CoreStanza::Subscription { .. })
        ));
    }

    #[test]
    fn a_peers_error_is_read_in_the_client_namespace() {
        // As Prosody sends it: the <error/> in the server stream's default namespace.
        let ok = vec!["b.example".to_owned()];
        let err = "<message from='nobody@b.example' to='alice@a.example/r' type='error' id='m1'>\
                   <error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>\
                   </message>";
        let CoreStanza::Message { message, .. } =
            read(stanza(err), "a.example", &ok).expect("taken")
        else {
            panic!("a message expected");
        };
        assert_eq!(message.kind, presence_core::message::MessageKind::Error);
        let [error] = &message.extensions[..] else {
            panic!("one extension expected: {:?}", message.extensions);
        };
        let error = crate::translate::features::xml::from_text(error).expect("an element");
        assert!(error.is(ns::CLIENT, "error"), "{error:?}");
    }

    #[test]
    fn stanzas_for_a_peer_are_in_jabber_server_and_name_their_sender() {
        let probe = CoreStanza::Presence {
            from: Jid::new("alice@a.example").unwrap(),
            to: Jid::new("bob@b.example").unwrap(),
            kind: PresenceKind::Probe,
        };
        let out = render(probe, "a.example").expect("rendered");
        assert_eq!(out.element.ns, ns::SERVER);
        assert_eq!(out.element.attr("type"), Some("probe"));
        assert_eq!(out.element.attr("from"), Some("alice@a.example"));
    }
}
