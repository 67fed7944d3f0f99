//! A bound client's stanzas, read into engine inputs or answered by the shell (RFC 6120/6121, XEP-0030, 0092, 0199).

use presence_core::compose::{EndpointPresence, Show};
use presence_core::message::{Message, MessageKind};
use presence_core::policy::PolicyEntry;
use presence_core::roster::{ItemDetails, SubscriptionAction};
use presence_core::stanza::{ErrorCondition, RequestId};
use presence_core::time::Timestamp;
use presence_core::{BareJid, FullJid, Input, Jid, SessionId};
use xmpp_codec::{Element, IqType, Stanza, StanzaKind, StreamHeader, StreamWriter, ns};

use super::settings::{self, NS_PRESENCE_SETTINGS};
use super::{iq_error, stanza_error};

/// Namespaces the shell answers itself.
pub const NS_ROSTER: &str = "jabber:iq:roster";
/// XEP-0030 info.
pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// XEP-0030 items.
pub const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
/// XEP-0199.
pub const NS_PING: &str = "urn:xmpp:ping";
/// XEP-0092.
pub const NS_VERSION: &str = "jabber:iq:version";
/// RFC 3921 legacy session establishment (still sent by some clients).
pub const NS_SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
/// XEP-0203.
pub const NS_DELAY: &str = "urn:xmpp:delay";
/// XEP-0191.
pub const NS_BLOCKING: &str = "urn:xmpp:blocking";

/// Features the server advertises in disco#info.
const SERVER_FEATURES: &[&str] = &[
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    NS_PING,
    NS_VERSION,
    NS_ROSTER,
    "msgoffline",
    NS_DELAY,
    NS_BLOCKING,
    // Not a XEP: this server's own presence settings (see `translate::settings`).
    NS_PRESENCE_SETTINGS,
];

/// What a client's stanza turns into.
#[derive(Debug)]
pub enum FromClient {
    /// Hand this to the engine.
    Engine(Input),
    /// Send this straight back to the client.
    Reply(Element),
    /// Nothing to do (an answer to a push, a probe from a client…).
    Nothing,
}

/// Who the client is, as the translation needs it.
pub struct Me<'a> {
    /// The session.
    pub session: SessionId,
    /// Its full address.
    pub jid: &'a FullJid,
    /// The served domain.
    pub domain: &'a str,
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
        Some("subscribe") => Some(SubscriptionAction::Subscribe),
        Some("subscribed") => Some(SubscriptionAction::Subscribed),
        Some("unsubscribe") => Some(SubscriptionAction::Unsubscribe),
        Some("unsubscribed") => Some(SubscriptionAction::Unsubscribed),
        Some("probe" | "error") => return FromClient::Nothing,
        Some(_) => {
            return reply_error(
                stanza,
                me,
                ErrorCondition::BadRequest,
                Some("unknown presence type"),
            );
        }
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
    let status = el.child(content, "status").map(|s| s.text());
    let priority = el
        .child(content, "priority")
        .and_then(|p| p.text().trim().parse::<i32>().ok())
        .map_or(0, |p| p.clamp(-128, 127) as i8);
    FromClient::Engine(Input::Presence {
        session: me.session,
        to,
        presence: Some(EndpointPresence {
            show,
            status,
            priority,
            ..EndpointPresence::default()
        }),
    })
}

fn message(stanza: Stanza, me: &Me<'_>, to: Option<Jid>, now: Timestamp) -> FromClient {
    let kind = match stanza.stanza_type() {
        Some("chat") => MessageKind::Chat,
        Some("headline") => MessageKind::Headline,
        Some("groupchat") => MessageKind::Groupchat,
        Some("error") => MessageKind::Error,
        _ => MessageKind::Normal,
    };
    // A message with no 'to' is for the sender's own account (RFC 6120 §10.3.1).
    let to = to.unwrap_or_else(|| Jid::Bare(me.jid.bare().clone()));
    let id = stanza.id().map(str::to_owned);
    let el = stanza.into_element();
    let content = el.ns.clone();
    let mut message = Message {
        id,
        kind,
        stamp: now,
        ..Message::default()
    };
    let writer = StreamWriter::new(&StreamHeader::new(ns::CLIENT));
    for child in el.elements() {
        match (child.ns == content, child.name.as_str()) {
            (true, "body") if message.body.is_none() => message.body = Some(child.text()),
            (true, "subject") if message.subject.is_none() => message.subject = Some(child.text()),
            (true, "thread") if message.thread.is_none() => message.thread = Some(child.text()),
            // Stamps from the client are not trusted; the server adds its own when it delays a message.
            (false, "delay") if child.ns == NS_DELAY => {}
            _ => {
                let mut out = Vec::new();
                writer.write_element(child, &mut out);
                message
                    .extensions
                    .push(String::from_utf8(out).expect("the writer emits UTF-8"));
            }
        }
    }
    FromClient::Engine(Input::Message {
        session: me.session,
        to,
        message,
    })
}

fn iq(stanza: &Stanza, me: &Me<'_>, to: Option<Jid>) -> FromClient {
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
    let for_server = match &to {
        None => true,
        Some(Jid::Bare(b)) => b.as_str() == me.domain || b == me.jid.bare(),
        Some(Jid::Full(f)) => f == me.jid,
    };
    let for_account =
        matches!(&to, Some(Jid::Bare(b)) if b.local().is_some() && b.domain() == me.domain);
    let request = RequestId(id.to_owned());
    let result = |children: Vec<Element>| {
        let mut el = Element::new(ns::CLIENT, "iq")
            .with_attr("type", "result")
            .with_attr("id", id)
            .with_attr("to", me.jid.to_string());
        if let Some(t) = stanza.to() {
            el = el.with_attr("from", t);
        }
        for c in children {
            el = el.with_child(c);
        }
        FromClient::Reply(el)
    };
    match (payload.ns.as_str(), payload.name.as_str(), iq_type) {
        (NS_ROSTER, "query", t)
            if for_server && to.as_ref().is_none_or(|t| t.bare() == me.jid.bare()) =>
        {
            match t {
                IqType::Get => FromClient::Engine(Input::RosterGet {
                    session: me.session,
                    request,
                }),
                _ => roster_set(stanza, payload, me, request),
            }
        }
        (NS_BLOCKING, name, t)
            if for_server && to.as_ref().is_none_or(|t| t.bare() == me.jid.bare()) =>
        {
            match (name, t) {
                ("blocklist", IqType::Get) => FromClient::Engine(Input::BlockListGet {
                    session: me.session,
                    request,
                }),
                ("block" | "unblock", IqType::Set) => block_set(stanza, payload, me, request),
                _ => reply_error(stanza, me, ErrorCondition::BadRequest, None),
            }
        }
        (NS_PRESENCE_SETTINGS, "settings", t)
            if for_server && to.as_ref().is_none_or(|t| t.bare() == me.jid.bare()) =>
        {
            match settings::request(t, payload, me.session, request) {
                Ok(input) => FromClient::Engine(input),
                Err((condition, text)) => reply_error(stanza, me, condition, Some(&text)),
            }
        }
        (NS_DISCO_INFO, "query", IqType::Get)
            if for_server && to.as_ref().is_none_or(|t| t.bare().as_str() == me.domain) =>
        {
            let mut q = Element::new(NS_DISCO_INFO, "query").with_child(
                Element::new(NS_DISCO_INFO, "identity")
                    .with_attr("category", "server")
                    .with_attr("type", "im")
                    .with_attr("name", "presenced"),
            );
            for f in SERVER_FEATURES {
                q = q.with_child(Element::new(NS_DISCO_INFO, "feature").with_attr("var", *f));
            }
            result(vec![q])
        }
        (NS_DISCO_INFO, "query", IqType::Get) if for_account || for_server => {
            // XEP-0030 §3.1 answered by the server on behalf of an account.
            let q = Element::new(NS_DISCO_INFO, "query")
                .with_child(
                    Element::new(NS_DISCO_INFO, "identity")
                        .with_attr("category", "account")
                        .with_attr("type", "registered"),
                )
                .with_child(Element::new(NS_DISCO_INFO, "feature").with_attr("var", NS_DISCO_INFO));
            result(vec![q])
        }
        (NS_DISCO_ITEMS, "query", IqType::Get) if for_server || for_account => {
            result(vec![Element::new(NS_DISCO_ITEMS, "query")])
        }
        (NS_PING, "ping", IqType::Get) if for_server => result(vec![]),
        (NS_VERSION, "query", IqType::Get) if for_server => result(vec![
            Element::new(NS_VERSION, "query")
                .with_child(Element::new(NS_VERSION, "name").with_text("presenced"))
                .with_child(
                    Element::new(NS_VERSION, "version").with_text(env!("CARGO_PKG_VERSION")),
                ),
        ]),
        (NS_SESSION, "session", IqType::Set) if for_server => result(vec![]),
        // Anything else, to the server or routed to another entity, is not offered yet (RFC 6120 §8.4).
        _ => reply_error(stanza, me, ErrorCondition::ServiceUnavailable, None),
    }
}

fn roster_set(stanza: &Stanza, query: &Element, me: &Me<'_>, request: RequestId) -> FromClient {
    let mut items = query.elements().filter(|e| e.is(NS_ROSTER, "item"));
    let (Some(item), None) = (items.next(), items.next()) else {
        return reply_error(
            stanza,
            me,
            ErrorCondition::BadRequest,
            Some("a roster set carries exactly one item"),
        );
    };
    let Some(Ok(jid)) = item.attr("jid").map(BareJid::new) else {
        return reply_error(
            stanza,
            me,
            ErrorCondition::BadRequest,
            Some("the item's 'jid' is missing or not a bare JID"),
        );
    };
    if item.attr("subscription") == Some("remove") {
        return FromClient::Engine(Input::RosterRemove {
            session: me.session,
            request,
            jid,
        });
    }
    let details = ItemDetails {
        name: item
            .attr("name")
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
        groups: item
            .elements()
            .filter(|g| g.is(NS_ROSTER, "group"))
            .map(|g| g.text())
            .collect(),
    };
    FromClient::Engine(Input::RosterSet {
        session: me.session,
        request,
        jid,
        details,
    })
}

/// A `<block/>` or `<unblock/>` set (XEP-0191 §3.3, §3.4).
fn block_set(stanza: &Stanza, command: &Element, me: &Me<'_>, request: RequestId) -> FromClient {
    let mut items = Vec::new();
    for item in command.elements().filter(|e| e.is(NS_BLOCKING, "item")) {
        let entry = match item.attr("jid").map(Jid::new) {
            Some(Ok(Jid::Bare(b))) if b.local().is_none() => {
                PolicyEntry::Domain(b.domain().to_owned())
            }
            Some(Ok(Jid::Bare(b))) => PolicyEntry::Jid(b),
            // The policy lists hold addresses and domains only (DESIGN §3); widening a resource to the whole
            // account would block more than the user asked for.
            Some(Ok(Jid::Full(_))) => {
                return reply_error(
                    stanza,
                    me,
                    ErrorCondition::BadRequest,
                    Some("only bare JIDs and domains can be blocked"),
                );
            }
            _ => {
                return reply_error(
                    stanza,
                    me,
                    ErrorCondition::BadRequest,
                    Some("an item's 'jid' is missing or not a valid JID"),
                );
            }
        };
        items.push(entry);
    }
    if command.name == "unblock" {
        // An unblock with no items unblocks everything (XEP-0191 §3.4).
        return FromClient::Engine(Input::Unblock {
            session: me.session,
            request,
            items,
        });
    }
    if items.is_empty() {
        return reply_error(
            stanza,
            me,
            ErrorCondition::BadRequest,
            Some("a block carries at least one item"),
        );
    }
    FromClient::Engine(Input::Block {
        session: me.session,
        request,
        items,
    })
}
