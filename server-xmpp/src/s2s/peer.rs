//! Stanzas between the engine and a federated peer: the engine's stanzas rendered for `jabber:server`, a peer's
//! stanzas read into the engine's, and the error a stanza that could not be carried bounces with.

use presence_core::compose::Show;
use presence_core::message::MessageKind;
use presence_core::stanza::{
    ErrorAbout, ErrorCondition, PresenceKind, PresenceView, Stanza as CoreStanza, StanzaError,
};
use presence_core::{Jid, runtime};
use xmpp_codec::{Element, Name, Node, Stanza, ns};

use crate::translate::features::avatar;
use crate::translate::features::xml::Texts;
use crate::translate::{Outgoing, inbound, to_peer};

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
    to_server_ns(&mut out.element);
    if out.element.attr("from").is_none() {
        out.element.set_attr("from", local);
    }
    Some(out)
}

/// Moves the stanza and its children from `jabber:client` to `jabber:server`.
fn to_server_ns(el: &mut Element) {
    if el.ns == ns::CLIENT {
        el.ns = Name::from_static(ns::SERVER);
    }
    for child in el.children.iter_mut() {
        if let Node::Element(c) = child {
            to_server_ns(c);
        }
    }
}

/// The error bouncing `stanza` back to its local sender with `condition`, for what needs an answer: messages
/// (not errors) from a full address and IQ requests. Presence and subscriptions are dropped, as for an
/// unreachable domain.
pub(super) fn bounce(stanza: &CoreStanza, condition: ErrorCondition) -> Option<StanzaError> {
    let (to, about) = match stanza {
        CoreStanza::Message {
            from: from @ Jid::Full(_),
            to,
            message,
            ..
        } if message.kind != MessageKind::Error => (
            from.clone(),
            ErrorAbout::Message {
                id: message.id.clone(),
                to: to.clone(),
            },
        ),
        CoreStanza::Iq { from, iq } if iq.kind.is_request() => (
            from.clone(),
            ErrorAbout::Iq {
                id: iq.id.clone(),
                to: iq.to.clone(),
            },
        ),
        _ => return None,
    };
    let text = match condition {
        ErrorCondition::RemoteServerTimeout => {
            "the recipient's server could not be reached in time"
        }
        _ => "the recipient's domain cannot be reached from this server",
    };
    Some(StanzaError {
        to,
        about,
        condition,
        text: Some(text.into()),
    })
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
    s: Stanza,
    local: &str,
    authenticated: &[String],
) -> Result<CoreStanza, Refused> {
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
                None => PresenceKind::Available(available(s.element())),
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
    let status = el.child(content, "status").map(|s| s.text());
    let priority = el
        .child(content, "priority")
        .and_then(|p| p.text().trim().parse::<i32>().ok())
        .map_or(0, |p| p.clamp(-128, 127) as i8);
    let photo = el.elements().find_map(avatar::photo_update);
    let texts = Texts::new();
    let extensions: Vec<String> = el
        .elements()
        .filter(|c| {
            let standard =
                c.ns == content && matches!(c.name.as_str(), "show" | "status" | "priority");
            let read = photo.is_some() && c.is(avatar::NS_VCARD_UPDATE, "x");
            !(standard || read)
        })
        .map(|c| texts.text(c))
        .collect();
    PresenceView {
        show,
        status,
        priority,
        composed: show.state(),
        extensions: extensions.into(),
        avatar: photo,
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
