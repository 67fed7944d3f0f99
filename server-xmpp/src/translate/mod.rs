//! Between the codec's XML elements and the engine's protocol-neutral values.

pub mod features;
pub mod inbound;
pub(crate) mod presence;
pub(crate) mod render;
mod stamp;

use presence_core::compose::Show;
use presence_core::message::MessageKind;
use presence_core::stanza::{
    ErrorAbout, ErrorCondition, IqKind, PresenceKind, Stanza as CoreStanza, StanzaError,
};
use presence_core::{FullJid, Jid};
use xmpp_codec::{Element, ns};

pub use features::Features;
pub use inbound::{FromClient, Me, from_client};
pub use stamp::{format_stamp, parse_stamp};

/// An element to write to a client, with raw XML payloads (opaque message extensions) to place inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The element.
    pub element: Element,
    /// Serialized children appended after the element's own children.
    pub raw_children: Vec<String>,
}

impl From<Element> for Outgoing {
    fn from(element: Element) -> Self {
        Outgoing {
            element,
            raw_children: Vec::new(),
        }
    }
}

fn condition_name(c: ErrorCondition) -> &'static str {
    match c {
        ErrorCondition::BadRequest => "bad-request",
        ErrorCondition::Conflict => "conflict",
        ErrorCondition::InternalServerError => "internal-server-error",
        ErrorCondition::ItemNotFound => "item-not-found",
        ErrorCondition::NotAllowed => "not-allowed",
        ErrorCondition::NotAcceptable => "not-acceptable",
        ErrorCondition::PolicyViolation => "policy-violation",
        ErrorCondition::RecipientUnavailable => "recipient-unavailable",
        ErrorCondition::RemoteServerNotFound => "remote-server-not-found",
        ErrorCondition::RemoteServerTimeout => "remote-server-timeout",
        ErrorCondition::ResourceConstraint => "resource-constraint",
        ErrorCondition::ServiceUnavailable => "service-unavailable",
        ErrorCondition::Forbidden => "forbidden",
        ErrorCondition::NotAuthorized => "not-authorized",
        ErrorCondition::RegistrationRequired => "registration-required",
        ErrorCondition::FeatureNotImplemented => "feature-not-implemented",
        // XEP-0060 §7.1.5: a conflict, named precisely by the pubsub condition `error_child` adds.
        ErrorCondition::PreconditionNotMet => "conflict",
    }
}

/// The error type RFC 6120 §8.3.3 pairs with each condition.
fn error_type(c: ErrorCondition) -> &'static str {
    match c {
        ErrorCondition::Forbidden
        | ErrorCondition::NotAuthorized
        | ErrorCondition::RegistrationRequired => "auth",
        ErrorCondition::BadRequest
        | ErrorCondition::NotAcceptable
        | ErrorCondition::PolicyViolation => "modify",
        // The engine only says internal-server-error when its store failed: trying again later may work, so
        // `wait` rather than the `cancel` RFC 6120 §8.3.3.5 shows.
        ErrorCondition::RecipientUnavailable
        | ErrorCondition::ResourceConstraint
        | ErrorCondition::RemoteServerTimeout
        | ErrorCondition::InternalServerError => "wait",
        _ => "cancel",
    }
}

fn error_child(condition: ErrorCondition, text: Option<&str>) -> Element {
    let mut e = Element::new(ns::CLIENT, "error")
        .with_attr("type", error_type(condition))
        .with_child(Element::new(ns::STANZA_ERRORS, condition_name(condition)));
    if let Some(t) = text {
        e = e.with_child(Element::new(ns::STANZA_ERRORS, "text").with_text(t));
    }
    // RFC 6120 §8.3.2: the application-specific condition follows the text.
    if condition == ErrorCondition::PreconditionNotMet {
        e = e.with_child(Element::new(
            features::pep::NS_PUBSUB_ERRORS,
            "precondition-not-met",
        ));
    }
    e
}

/// An `<iq type='error'/>` answering request `id`.
pub fn iq_error(
    id: Option<&str>,
    to: &str,
    from: Option<&str>,
    condition: ErrorCondition,
    text: Option<&str>,
) -> Element {
    stanza_error("iq", id, to, from, condition, text)
}

/// An error stanza of `kind` (`iq`, `message`, `presence`) answering one the client sent.
pub fn stanza_error(
    kind: &str,
    id: Option<&str>,
    to: &str,
    from: Option<&str>,
    condition: ErrorCondition,
    text: Option<&str>,
) -> Element {
    let mut el = Element::new(ns::CLIENT, kind)
        .with_attr("type", "error")
        .with_attr("to", to);
    if let Some(id) = id {
        el = el.with_attr("id", id);
    }
    if let Some(f) = from {
        el = el.with_attr("from", f);
    }
    el.with_child(error_child(condition, text))
}

/// Renders what the engine delivers to a session as the XML the client reads. `push_id` names roster pushes.
pub fn to_client(
    stanza: CoreStanza,
    me: &FullJid,
    domain: &str,
    push_id: impl FnOnce() -> String,
) -> Option<Outgoing> {
    match stanza {
        CoreStanza::Answer { request, answer } => {
            let mut el = Element::new(ns::CLIENT, "iq")
                .with_attr("type", "result")
                .with_attr("id", request.0)
                .with_attr("to", me.to_string());
            if let Some(from) = features::answer_from(&answer, me) {
                el = el.with_attr("from", from);
            }
            if let Some(payload) = features::answer(&answer) {
                el = el.with_child(payload);
            }
            Some(el.into())
        }
        CoreStanza::Push(push) => Some(features::push(push, me, push_id)),
        // Only ever routed to an app server.
        CoreStanza::AppPush(_) => None,
        CoreStanza::Room(room) => features::muc::render(*room, domain),
        stanza => addressed(stanza, &me.to_string(), domain),
    }
}

/// Renders a stanza the engine routes to another domain (a component, later a federated server) as that peer
/// reads it: addressed to its own recipient. Answers and pushes never leave for a peer. `id` names what the
/// server itself sends (push notifications).
pub fn to_peer(stanza: CoreStanza, domain: &str, id: impl FnOnce() -> String) -> Option<Outgoing> {
    match stanza {
        CoreStanza::AppPush(n) => Some(features::app_push::publish(n, id())),
        // Rooms deliver to local sessions only.
        CoreStanza::Answer { .. } | CoreStanza::Push(_) | CoreStanza::Room(_) => None,
        CoreStanza::Subscription { ref to, .. } => {
            let to = to.to_string();
            addressed(stanza, &to, domain)
        }
        stanza => {
            let to = presence_core::runtime::domains::destination(&stanza)?.to_string();
            addressed(stanza, &to, domain)
        }
    }
}

/// Presence, subscriptions, messages, errors and routed IQs, for the recipient `to`.
pub(crate) fn addressed(stanza: CoreStanza, to: &str, domain: &str) -> Option<Outgoing> {
    let me_s = to;
    Some(match stanza {
        CoreStanza::Presence { from, kind, .. } => {
            let el = Element::new(ns::CLIENT, "presence")
                .with_attr("from", from.to_string())
                .with_attr("to", me_s);
            match kind {
                PresenceKind::Available(v) => {
                    let mut el = el;
                    if let Some(s) = show_text(v.show) {
                        el = el.with_child(Element::new(ns::CLIENT, "show").with_text(s));
                    }
                    if let Some(s) = &v.status {
                        el = el.with_child(Element::new(ns::CLIENT, "status").with_text(s));
                    }
                    if v.priority != 0 {
                        el = el.with_child(
                            Element::new(ns::CLIENT, "priority").with_text(v.priority.to_string()),
                        );
                    }
                    if let Some(a) = &v.avatar {
                        el = el.with_child(features::avatar::photo_update_element(a));
                    }
                    Outgoing {
                        element: el,
                        raw_children: v.extensions.to_vec(),
                    }
                }
                PresenceKind::Unavailable => el.with_attr("type", "unavailable").into(),
                PresenceKind::Probe => return None,
            }
        }
        CoreStanza::Subscription { from, action, .. } => {
            let t = match action {
                presence_core::roster::SubscriptionAction::Subscribe => "subscribe",
                presence_core::roster::SubscriptionAction::Subscribed => "subscribed",
                presence_core::roster::SubscriptionAction::Unsubscribe => "unsubscribe",
                presence_core::roster::SubscriptionAction::Unsubscribed => "unsubscribed",
            };
            Element::new(ns::CLIENT, "presence")
                .with_attr("from", from.as_str())
                .with_attr("to", me_s)
                .with_attr("type", t)
                .into()
        }
        CoreStanza::Message {
            from,
            to,
            message,
            delayed,
        } => message_stanza(&from, &to, message, delayed, domain),
        // Queries, replies and PEP notifications between engines are never handed to a session or a peer.
        CoreStanza::Answer { .. }
        | CoreStanza::Push(_)
        | CoreStanza::AppPush(_)
        | CoreStanza::Room(_)
        | CoreStanza::Query(_)
        | CoreStanza::Reply(_)
        | CoreStanza::Notification(_) => return None,
        CoreStanza::Error(StanzaError {
            about,
            condition,
            text,
            ..
        }) => {
            let text = text.as_deref();
            match about {
                ErrorAbout::Request(r) => iq_error(Some(&r.0), me_s, None, condition, text).into(),
                ErrorAbout::Message { id, to } => stanza_error(
                    "message",
                    id.as_deref(),
                    me_s,
                    Some(&jid_str(&to)),
                    condition,
                    text,
                )
                .into(),
                ErrorAbout::Presence { to } => {
                    stanza_error("presence", None, me_s, Some(&jid_str(&to)), condition, text)
                        .into()
                }
                ErrorAbout::Iq { id, to } => {
                    iq_error(Some(&id), me_s, Some(&jid_str(&to)), condition, text).into()
                }
            }
        }
        CoreStanza::Iq { from, iq } => render_iq(&from, iq),
    })
}

/// A routed IQ, its children as the sender wrote them.
pub(crate) fn render_iq(from: &Jid, iq: presence_core::stanza::RoutedIq) -> Outgoing {
    let kind = match iq.kind {
        IqKind::Get => "get",
        IqKind::Set => "set",
        IqKind::Result => "result",
        IqKind::Error => "error",
    };
    Outgoing {
        element: Element::new(ns::CLIENT, "iq")
            .with_attr("type", kind)
            .with_attr("id", iq.id)
            .with_attr("from", from.to_string())
            .with_attr("to", iq.to.to_string()),
        raw_children: iq.payload,
    }
}

/// A `<message/>` as a client reads it, its opaque extensions placed after the standard children.
pub(crate) fn message_stanza(
    from: &Jid,
    to: &Jid,
    message: presence_core::message::Message,
    delayed: Option<presence_core::time::Timestamp>,
    domain: &str,
) -> Outgoing {
    let mut el = message_envelope(from, to, &message);
    for (name, value) in [
        ("subject", &message.subject),
        ("body", &message.body),
        ("thread", &message.thread),
    ] {
        if let Some(v) = value {
            el = el.with_child(Element::new(ns::CLIENT, name).with_text(v));
        }
    }
    // XEP-0359: the recipient's archive id, so a client can match what it got live with what the archive holds.
    if let Some(id) = message.archive_id {
        el = el.with_child(
            Element::new(NS_STANZA_ID, "stanza-id")
                .with_attr("id", id.to_string())
                .with_attr("by", to.bare().as_str()),
        );
    }
    if let Some(stamp) = delayed {
        el = el.with_child(
            Element::new(features::offline::NS_DELAY, "delay")
                .with_attr("from", domain)
                .with_attr("stamp", format_stamp(stamp))
                .with_text("Offline storage"),
        );
    }
    Outgoing {
        element: el,
        raw_children: message.extensions,
    }
}

/// The `<message/>` element alone, with its attributes (addresses, type, id) and no children.
pub(crate) fn message_envelope(
    from: &Jid,
    to: &Jid,
    message: &presence_core::message::Message,
) -> Element {
    let t = match message.kind {
        MessageKind::Chat => "chat",
        MessageKind::Normal => "normal",
        MessageKind::Headline => "headline",
        MessageKind::Groupchat => "groupchat",
        MessageKind::Error => "error",
    };
    let mut el = Element::new(ns::CLIENT, "message")
        .with_attr("from", from.to_string())
        .with_attr("to", to.to_string())
        .with_attr("type", t);
    if let Some(id) = &message.id {
        el = el.with_attr("id", id);
    }
    el
}

/// A message as one element, its extensions parsed back into elements: for stanzas carried inside another
/// (a carbon copy, an archive result), where opaque text can only sit at the top.
pub(crate) fn message_element(
    from: &Jid,
    to: &Jid,
    message: presence_core::message::Message,
    domain: &str,
) -> Element {
    let Outgoing {
        element: mut el,
        raw_children,
    } = message_stanza(from, to, message, None, domain);
    for raw in raw_children {
        if let Some(child) = features::xml::from_text(&raw) {
            el = el.with_child(child);
        }
    }
    el
}

/// XEP-0359.
pub const NS_STANZA_ID: &str = "urn:xmpp:sid:0";

fn jid_str(j: &Jid) -> String {
    j.to_string()
}

/// The `<show/>` text of a show value (RFC 6121 §4.7.2.1); none for plain available.
pub(crate) fn show_text(show: Show) -> Option<&'static str> {
    match show {
        Show::Available => None,
        Show::Chat => Some("chat"),
        Show::Away => Some("away"),
        Show::Xa => Some("xa"),
        Show::Dnd => Some("dnd"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_failure_is_a_wait_type_internal_server_error() {
        let el = stanza_error(
            "message",
            Some("m1"),
            "alice@x/pc",
            Some("bob@x"),
            ErrorCondition::InternalServerError,
            Some("try again later"),
        );
        let error = el.child(ns::CLIENT, "error").expect("an <error/> child");
        assert_eq!(error.attr("type"), Some("wait"));
        assert!(
            error
                .child(ns::STANZA_ERRORS, "internal-server-error")
                .is_some(),
            "{error:?}"
        );
    }

    /// What a client reads for `o`, as the connection writes it.
    fn written(o: &Outgoing) -> String {
        let writer = xmpp_codec::StreamWriter::new(&xmpp_codec::StreamHeader::new(ns::CLIENT));
        let mut out = Vec::new();
        writer.write_element(&o.element, &mut out);
        let mut xml = String::from_utf8(out).expect("utf-8");
        if !o.raw_children.is_empty() {
            xml.truncate(xml.len() - 2);
            xml.push('>');
            xml.extend(o.raw_children.iter().map(String::as_str));
            xml.push_str("</message>");
        }
        xml
    }

    /// A room broadcast shares one message and the children serialized from it: each recipient still reads its
    /// own `to`, and a different sender, occupant id or message is never served another's children.
    #[test]
    fn room_messages_share_their_children_but_not_their_recipient() {
        use presence_core::message::Message;
        use presence_core::rooms::RoomStanza;
        use std::sync::Arc;

        let message = Arc::new(Message {
            id: Some("m1".into()),
            kind: MessageKind::Groupchat,
            body: Some("a < b".into()),
            archive_id: std::num::NonZeroU64::new(7),
            extensions: vec!["<x xmlns='urn:example'/>".into()],
            ..Message::default()
        });
        let render = |to: &str, message: &Arc<Message>, occupant_id: &str| {
            let to = FullJid::new(to).expect("jid");
            let stanza = RoomStanza::Message {
                from: Jid::new("room@conference.x/alice").expect("jid"),
                to: to.clone(),
                message: message.clone(),
                delayed: None,
                occupant_id: Some(occupant_id.into()),
                codes: Vec::new(),
                private: false,
            };
            let o = to_client(CoreStanza::Room(Box::new(stanza)), &to, "x", String::new)
                .expect("rendered");
            written(&o)
        };
        let bob = render("bob@x/pc", &message, "occ-a");
        assert_eq!(
            bob,
            "<message from='room@conference.x/alice' to='bob@x/pc' type='groupchat' id='m1'>\
             <body>a &lt; b</body><occupant-id xmlns='urn:xmpp:occupant-id:0' id='occ-a'/>\
             <stanza-id xmlns='urn:xmpp:sid:0' id='7' by='room@conference.x'/>\
             <x xmlns='urn:example'/></message>"
        );
        let carol = render("carol@x/phone", &message, "occ-a");
        assert_eq!(carol, bob.replace("bob@x/pc", "carol@x/phone"));
        assert!(render("carol@x/phone", &message, "occ-b").contains("id='occ-b'"));
        let other = Arc::new(Message {
            body: Some("other".into()),
            ..(*message).clone()
        });
        assert!(render("bob@x/pc", &other, "occ-a").contains("<body>other</body>"));
    }
}
