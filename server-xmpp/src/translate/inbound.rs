//! A bound client's stanzas, read into engine inputs or answered by the shell (RFC 6120/6121, XEP-0030, 0092, 0199).

use presence_core::compose::{EndpointPresence, Show};
use presence_core::message::{Message, MessageKind};
use presence_core::roster::SubscriptionAction;
use presence_core::stanza::{ErrorCondition, IqKind, RoutedIq};
use presence_core::time::Timestamp;
use presence_core::{FullJid, Input, Jid, SessionId};
use xmpp_codec::{Element, IqType, Stanza, StanzaKind};

use super::features::offline::NS_DELAY;
use super::features::xml::Texts;
use super::features::{Features, Iq};
use super::presence;
use super::{iq_error, stanza_error};

/// What a client's stanza turns into.
#[derive(Debug)]
pub enum FromClient {
    /// Hand this to the engine.
    Engine(Input),
    /// Send this straight back to the client.
    Reply(Element),
    /// Nothing to do (an answer to a push, a probe from a client…).
    Nothing,
    /// Answer from the user's message archive: a read the connection makes from the store.
    Archive(super::features::mam::ArchiveRequest),
    /// Ask the upload service for a slot (XEP-0363): issuing may read the disk, so the connection does it off
    /// the I/O workers.
    Upload(super::features::upload::SlotRequest),
    /// Search the user directory (XEP-0055): a query the connection makes.
    Search(super::features::search::SearchRequest),
    /// Change the user's password or remove the account (XEP-0077): store writes the connection makes.
    Register(super::features::register::ChangeRequest),
}

/// Who the client is, as the translation needs it.
pub struct Me<'a> {
    /// The session.
    pub session: SessionId,
    /// Its full address.
    pub jid: &'a FullJid,
    /// The served domain.
    pub domain: &'a str,
    /// The features the server offers.
    pub features: &'a Features,
}

/// Reads one stanza from a bound client.
pub fn from_client(stanza: Stanza, me: &Me<'_>, now: Timestamp) -> FromClient {
    let to = match stanza.to().map(Jid::new).transpose() {
        Ok(to) => to,
        Err(_) => {
            return reply_error(
                &stanza,
                me,
                ErrorCondition::BadRequest,
                Some("the 'to' address is not a valid JID"),
            );
        }
    };
    // The room service's domain is the engine's rooms, whatever the stanza (XEP-0045).
    if let (Some(to), Some(service)) = (&to, me.features.muc_domain())
        && to.bare().domain() == service
    {
        return super::features::muc::from_client(stanza, me, to.clone(), now);
    }
    match stanza.kind() {
        StanzaKind::Presence => presence(&stanza, me, to),
        StanzaKind::Message => message(stanza, me, to, now),
        StanzaKind::Iq => iq(&stanza, me, to),
    }
}

fn reply_error(
    stanza: &Stanza,
    me: &Me<'_>,
    condition: ErrorCondition,
    text: Option<&str>,
) -> FromClient {
    match stanza.kind() {
        StanzaKind::Iq => FromClient::Reply(iq_error(
            stanza.id(),
            &me.jid.to_string(),
            stanza.to(),
            condition,
            text,
        )),
        kind => FromClient::Reply(stanza_error(
            kind.as_str(),
            stanza.id(),
            &me.jid.to_string(),
            stanza.to(),
            condition,
            text,
        )),
    }
}

/// The subscription action a presence `type` names (RFC 6121 §3), if it names one.
pub(crate) fn subscription_action(presence_type: &str) -> Option<SubscriptionAction> {
    match presence_type {
        "subscribe" => Some(SubscriptionAction::Subscribe),
        "subscribed" => Some(SubscriptionAction::Subscribed),
        "unsubscribe" => Some(SubscriptionAction::Unsubscribe),
        "unsubscribed" => Some(SubscriptionAction::Unsubscribed),
        _ => None,
    }
}

fn presence(stanza: &Stanza, me: &Me<'_>, to: Option<Jid>) -> FromClient {
    let el = stanza.element();
    let action = match stanza.stanza_type() {
        None => None,
        Some("unavailable") => {
            return FromClient::Engine(Input::Presence {
                session: me.session,
                to,
                presence: None,
            });
        }
        Some("probe" | "error") => return FromClient::Nothing,
        Some(t) => match subscription_action(t) {
            Some(action) => Some(action),
            None => {
                return reply_error(
                    stanza,
                    me,
                    ErrorCondition::BadRequest,
                    Some("unknown presence type"),
                );
            }
        },
    };
    if let Some(action) = action {
        let Some(to) = to else {
            return reply_error(
                stanza,
                me,
                ErrorCondition::BadRequest,
                Some("a subscription stanza needs a 'to'"),
            );
        };
        // Subscriptions are between bare addresses (RFC 6121 §3.1.1): a resource is dropped.
        return FromClient::Engine(Input::Subscription {
            session: me.session,
            to: to.bare().clone(),
            action,
        });
    }
    let content = el.ns.as_str();
    let show = match el.child(content, "show").map(|s| s.text()) {
        None => Show::Available,
        Some(s) => match s.trim() {
            "chat" => Show::Chat,
            "away" => Show::Away,
            "xa" => Show::Xa,
            "dnd" => Show::Dnd,
            _ => {
                return reply_error(
                    stanza,
                    me,
                    ErrorCondition::BadRequest,
                    Some("unknown <show/> value"),
                );
            }
        },
    };
    // A client's own <delay/> is not trusted, as on messages.
    let body = presence::read_body(el, |c| c.is(NS_DELAY, "delay"));
    FromClient::Engine(Input::Presence {
        session: me.session,
        to,
        presence: Some(EndpointPresence {
            show,
            status: body.status,
            priority: body.priority,
            extensions: body.extensions.into(),
            avatar: body.avatar,
            ..EndpointPresence::default()
        }),
    })
}

fn message(stanza: Stanza, me: &Me<'_>, to: Option<Jid>, now: Timestamp) -> FromClient {
    // A message with no 'to' is for the sender's own account (RFC 6120 §10.3.1).
    let to = to.unwrap_or_else(|| Jid::Bare(me.jid.bare().clone()));
    FromClient::Engine(Input::Message {
        session: me.session,
        to,
        message: read_message(stanza, now),
    })
}

/// The engine's message in a `<message/>` from a client or a peer, stamped `now`.
pub(crate) fn read_message(stanza: Stanza, now: Timestamp) -> Message {
    let kind = match stanza.stanza_type() {
        Some("chat") => MessageKind::Chat,
        Some("headline") => MessageKind::Headline,
        Some("groupchat") => MessageKind::Groupchat,
        Some("error") => MessageKind::Error,
        _ => MessageKind::Normal,
    };
    let id = stanza.id().map(str::to_owned);
    let el = stanza.into_element();
    let content = el.ns.clone();
    let mut message = Message {
        id,
        kind,
        stamp: now,
        ..Message::default()
    };
    let texts = Texts::new();
    for child in el.elements() {
        match (child.ns == content, child.name.as_str()) {
            (true, "body") if message.body.is_none() => message.body = Some(child.text()),
            (true, "subject") if message.subject.is_none() => message.subject = Some(child.text()),
            (true, "thread") if message.thread.is_none() => message.thread = Some(child.text()),
            // Stamps from the client are not trusted; the server adds its own when it delays a message.
            (false, "delay") if child.ns == NS_DELAY => {}
            // Nor are stanza-ids: only the archive that gave one may (XEP-0359 §3.1), so a client cannot forge
            // one that would look like ours.
            (false, "stanza-id") if child.ns == super::NS_STANZA_ID => {}
            _ => {
                mark(&mut message.marks, child);
                message.extensions.push(texts.text(child));
            }
        }
    }
    message
}

fn iq(stanza: &Stanza, me: &Me<'_>, to: Option<Jid>) -> FromClient {
    // To another entity's full address: the server only routes it, request or answer (RFC 6120 §8.5.3.1).
    // So is one for another domain (a component, XEP-0114), whatever its address.
    let routed = match &to {
        Some(Jid::Full(f)) => f != me.jid,
        Some(Jid::Bare(b)) => b.domain() != me.domain,
        None => false,
    };
    if routed
        && let Some(to) = &to
        && let (Some(kind), Some(id)) = (stanza.iq_type(), stanza.id())
    {
        return routed_iq(stanza, me, to, kind, id);
    }
    let iq_type = match stanza.iq_type() {
        Some(t @ (IqType::Get | IqType::Set)) => t,
        Some(IqType::Result | IqType::Error) => return FromClient::Nothing,
        None => {
            return reply_error(
                stanza,
                me,
                ErrorCondition::BadRequest,
                Some("unknown iq type"),
            );
        }
    };
    let Some(id) = stanza.id() else {
        return reply_error(
            stanza,
            me,
            ErrorCondition::BadRequest,
            Some("an iq needs an 'id'"),
        );
    };
    let mut payloads = stanza.payloads();
    let (Some(payload), None) = (payloads.next(), payloads.next()) else {
        return reply_error(
            stanza,
            me,
            ErrorCondition::BadRequest,
            Some("an iq get or set carries exactly one child"),
        );
    };
    me.features.iq(&Iq {
        stanza,
        payload,
        iq_type,
        id,
        to: to.as_ref(),
        me,
    })
}

/// Notes what an extension asks of the server (carbons, archiving) or says about the message (a conversation
/// signal without text).
fn mark(marks: &mut presence_core::message::Marks, child: &Element) {
    const HINTS: &str = "urn:xmpp:hints";
    match (child.ns.as_str(), child.name.as_str()) {
        (super::features::carbons::NS_CARBONS, "private") | (HINTS, "no-copy") => {
            marks.no_copy = true
        }
        (HINTS, "no-store" | "no-permanent-store") => marks.no_store = true,
        (HINTS, "store") => marks.store = true,
        ("http://jabber.org/protocol/chatstates", _)
        | ("urn:xmpp:receipts", "received")
        | ("urn:xmpp:chat-markers:0", "received" | "displayed" | "acknowledged") => {
            marks.signal = true
        }
        _ => {}
    }
}

/// An IQ for another client, handed to the engine to route: its children travel as text.
fn routed_iq(stanza: &Stanza, me: &Me<'_>, to: &Jid, kind: IqType, id: &str) -> FromClient {
    FromClient::Engine(Input::Iq {
        session: me.session,
        iq: read_routed_iq(stanza, to.clone(), kind, id),
    })
}

/// An IQ the server only routes, its children kept as text.
pub(crate) fn read_routed_iq(stanza: &Stanza, to: Jid, kind: IqType, id: &str) -> RoutedIq {
    let texts = Texts::new();
    let payload = stanza.element().elements().map(|c| texts.text(c)).collect();
    let kind = match kind {
        IqType::Get => IqKind::Get,
        IqType::Set => IqKind::Set,
        IqType::Result => IqKind::Result,
        IqType::Error => IqKind::Error,
    };
    RoutedIq {
        to,
        id: id.to_owned(),
        kind,
        payload,
    }
}
