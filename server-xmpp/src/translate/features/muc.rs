//! Multi-user chat (XEP-0045) on the room service's domain: a client's presence, messages and IQs for that domain
//! read into `Input::Room`, and the engine's room stanzas rendered back. The admin and owner IQs are read and
//! answered in [`super::muc_admin`] and [`super::muc_owner`], invitations, declines and voice requests in
//! [`super::muc_mediated`]; XEP-0410 self-ping, IQs between occupants and XEP-0421 occupant ids are here.

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use presence_core::compose::Show;
use presence_core::message::Message;
use presence_core::rooms::{
    HistoryRequest, JoinOptions, OccupantPresence, RoomAnswer, RoomCall, RoomInfo, RoomRequest,
    RoomStanza, StatusCode,
};
use presence_core::stanza::{ErrorAbout, ErrorCondition, Stanza as CoreStanza};
use presence_core::time::Timestamp;
use presence_core::{Input, Jid};
use xmpp_codec::{Element, IqType, Stanza, StanzaKind, StreamHeader, StreamWriter, ns};

use super::super::inbound::{FromClient, Me, read_message, read_routed_iq};
use super::super::{Outgoing, parse_stamp, stanza_error};
use super::disco::{NS_DISCO_INFO, NS_DISCO_ITEMS};
use super::{Feature, Iq, mam, muc_admin, muc_mediated, muc_owner, ping};

/// XEP-0045 (the join element).
pub const NS_MUC: &str = "http://jabber.org/protocol/muc";
/// XEP-0045 occupant details.
pub const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
/// XEP-0421.
pub const NS_OCCUPANT_ID: &str = "urn:xmpp:occupant-id:0";
/// XEP-0203.
const NS_DELAY: &str = "urn:xmpp:delay";

/// The registry's entry. The service lives on its own domain, so the server's own disco#info lists nothing for it
/// and no IQ to the server is its; being on is what makes the shell route the service's domain here (see
/// [`super::Features::with_muc`]) and list it in the server's disco#items.
pub const FEATURE: Feature = Feature {
    name: "muc",
    disco: &[],
    payloads: &[],
    iq: |_| None,
};

/// Reads a stanza a client sent to the room service's domain (`to` is there).
pub fn from_client(stanza: Stanza, me: &Me<'_>, to: Jid, now: Timestamp) -> FromClient {
    let room = to.bare().clone();
    let nick = match &to {
        Jid::Full(f) => Some(f.resource().to_owned()),
        Jid::Bare(_) => None,
    };
    let request = match stanza.kind() {
        StanzaKind::Presence => match presence(&stanza, nick) {
            Ok(Some(r)) => r,
            Ok(None) => return FromClient::Nothing,
            Err(text) => return error(&stanza, me, ErrorCondition::BadRequest, text),
        },
        StanzaKind::Message => {
            if stanza.stanza_type() == Some("error") {
                return FromClient::Nothing;
            }
            // Invitations, declines and voice requests go to the room itself, not to an occupant.
            let mediated = nick
                .is_none()
                .then(|| muc_mediated::read(&stanza))
                .flatten();
            match mediated {
                Some(Ok(what)) => {
                    return FromClient::Engine(Input::Room {
                        session: me.session,
                        room,
                        stamp: now,
                        request: RoomRequest::Mediated {
                            id: stanza.id().map(str::to_owned),
                            what,
                        },
                    });
                }
                Some(Err(text)) => return error(&stanza, me, ErrorCondition::BadRequest, text),
                None => {}
            }
            RoomRequest::Message {
                nick,
                message: read_message(stanza, now),
            }
        }
        StanzaKind::Iq if asks_archive_form(&stanza) => {
            // The form is the same for every archive: the shell answers it, whatever the room.
            let mut el = Element::new(ns::CLIENT, "iq")
                .with_attr("type", "result")
                .with_attr("to", me.jid.to_string())
                .with_attr("from", to.to_string())
                .with_child(mam::form());
            if let Some(id) = stanza.id() {
                el = el.with_attr("id", id);
            }
            return FromClient::Reply(el);
        }
        StanzaKind::Iq => match iq(&stanza, nick, &to) {
            Ok(Some(r)) => r,
            Ok(None) => return FromClient::Nothing,
            Err((condition, text)) => return error(&stanza, me, condition, text),
        },
    };
    FromClient::Engine(Input::Room {
        session: me.session,
        room,
        stamp: now,
        request,
    })
}

/// An IQ get of the archive query form (XEP-0313 §5.1.1) to the room.
fn asks_archive_form(stanza: &Stanza) -> bool {
    let mut payloads = stanza.payloads();
    stanza.iq_type() == Some(IqType::Get)
        && matches!(
            (payloads.next(), payloads.next()),
            (Some(p), None) if p.is(mam::NS_MAM, "query")
        )
}

fn error(stanza: &Stanza, me: &Me<'_>, condition: ErrorCondition, text: &str) -> FromClient {
    FromClient::Reply(stanza_error(
        stanza.kind().as_str(),
        stanza.id(),
        &me.jid.to_string(),
        stanza.to(),
        condition,
        Some(text),
    ))
}

/// Presence to `room/nick`: entering (with the `<x/>` options), a new show, a nickname change, or leaving.
fn presence(stanza: &Stanza, nick: Option<String>) -> Result<Option<RoomRequest>, &'static str> {
    let available = match stanza.stanza_type() {
        None => true,
        Some("unavailable") => false,
        // Subscriptions, probes and errors mean nothing to a room.
        Some(_) => return Ok(None),
    };
    let Some(nick) = nick else {
        return if available {
            Err("presence to a room names a nickname: room@service/nick")
        } else {
            Ok(None)
        };
    };
    let el = stanza.element();
    let content = el.ns.as_str();
    let show = match el
        .child(content, "show")
        .map(|s| s.text())
        .as_deref()
        .map(str::trim)
    {
        None => Show::Available,
        Some("chat") => Show::Chat,
        Some("away") => Show::Away,
        Some("xa") => Show::Xa,
        Some("dnd") => Show::Dnd,
        Some(_) => return Err("unknown <show/> value"),
    };
    let status = el.child(content, "status").map(|s| s.text());
    let mut join = JoinOptions::default();
    if let Some(x) = el.child(NS_MUC, "x") {
        join.password = x.child(NS_MUC, "password").map(|p| p.text());
        if let Some(h) = x.child(NS_MUC, "history") {
            let number = |name: &str| h.attr(name).and_then(|v| v.trim().parse::<u64>().ok());
            join.history = HistoryRequest {
                max_stanzas: number("maxstanzas").map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
                seconds: number("seconds"),
                since: h.attr("since").and_then(parse_stamp),
                none: number("maxchars") == Some(0),
            };
        }
    }
    Ok(Some(RoomRequest::Presence {
        nick,
        presence: available.then_some(OccupantPresence { show, status }),
        join,
    }))
}

/// An IQ to the service, a room or an occupant: what it asks (`None`: nothing to do), or why it is refused.
fn iq(
    stanza: &Stanza,
    nick: Option<String>,
    to: &Jid,
) -> Result<Option<RoomRequest>, (ErrorCondition, &'static str)> {
    let Some(iq_type) = stanza.iq_type() else {
        return Ok(None);
    };
    let answer = matches!(iq_type, IqType::Result | IqType::Error);
    let Some(id) = stanza.id() else {
        // An answer without an id answers nothing; a request without one is refused.
        return if answer {
            Ok(None)
        } else {
            Err((ErrorCondition::BadRequest, "an iq needs an 'id'"))
        };
    };
    let self_ping = stanza
        .payloads()
        .next()
        .is_some_and(|p| p.is(ping::NS_PING, "ping"));
    // To an occupant: answers to what the room forwarded, and requests other than XEP-0410 self-ping (which the
    // service answers), travel between the occupants' clients.
    if let Some(nick) = &nick
        && (answer || !self_ping)
    {
        return Ok(Some(RoomRequest::OccupantIq {
            nick: nick.clone(),
            iq: read_routed_iq(stanza, to.clone(), iq_type, id),
        }));
    }
    // Answers to nobody's request: the service itself sends no IQs.
    if answer {
        return Ok(None);
    }
    let mut payloads = stanza.payloads();
    let (Some(payload), None) = (payloads.next(), payloads.next()) else {
        return Err((
            ErrorCondition::BadRequest,
            "an iq get or set carries exactly one child",
        ));
    };
    let call = match (iq_type, payload.ns.as_str(), payload.name.as_str()) {
        (IqType::Get, ping::NS_PING, "ping") => Ok(RoomCall::Ping),
        (IqType::Get, NS_DISCO_INFO, "query") if payload.attr("node").is_none() => {
            Ok(RoomCall::Info)
        }
        (IqType::Get, NS_DISCO_ITEMS, "query") if payload.attr("node").is_none() => {
            Ok(RoomCall::Items)
        }
        (t, muc_admin::NS_MUC_ADMIN, "query") => muc_admin::read(t, payload),
        (t, muc_owner::NS_MUC_OWNER, "query") => muc_owner::read(t, payload),
        // XEP-0313 to the room: the room decides who may read; the connection reads the store.
        (IqType::Set, mam::NS_MAM, "query") => {
            mam::room_read(payload).map(|r| RoomCall::ArchiveQuery(Box::new(r)))
        }
        _ => Err((
            ErrorCondition::ServiceUnavailable,
            "the room service does not answer that",
        )),
    };
    call.map(|call| {
        Some(RoomRequest::Iq {
            id: id.to_owned(),
            nick,
            call,
        })
    })
}

/// Renders a room stanza for its recipient.
pub fn render(stanza: RoomStanza, domain: &str) -> Option<Outgoing> {
    Some(match stanza {
        RoomStanza::Presence {
            from,
            to,
            presence,
            item,
            codes,
            destroyed,
            occupant_id,
        } => {
            let mut el = Element::new(ns::CLIENT, "presence")
                .with_attr("from", from.to_string())
                .with_attr("to", to.to_string());
            match &presence {
                None => el = el.with_attr("type", "unavailable"),
                Some(p) => {
                    if let Some(show) = crate::translate::show_text(p.show) {
                        el = el.with_child(Element::new(ns::CLIENT, "show").with_text(show));
                    }
                    if let Some(s) = &p.status {
                        el = el.with_child(Element::new(ns::CLIENT, "status").with_text(s));
                    }
                }
            }
            let mut x =
                Element::new(NS_MUC_USER, "x").with_child(muc_admin::item(NS_MUC_USER, &item));
            for c in codes {
                x = x.with_child(status(c));
            }
            if let Some(d) = destroyed {
                x = x.with_child(muc_owner::destroy_element(NS_MUC_USER, &d));
            }
            el.with_child(x)
                .with_child(
                    Element::new(NS_OCCUPANT_ID, "occupant-id").with_attr("id", occupant_id),
                )
                .into()
        }
        RoomStanza::Message {
            from,
            to,
            message,
            delayed,
            occupant_id,
            codes,
            private,
        } => {
            // Only the envelope (`to`) differs between the recipients of one broadcast: the children are
            // serialized once and reused (see `shared_children`).
            let element = super::super::message_envelope(&from, &Jid::Full(to), &message);
            let children = shared_children(SharedKey {
                message,
                from,
                delayed,
                occupant_id,
                codes,
                private,
            });
            Outgoing {
                element,
                raw_children: vec![children],
            }
        }
        RoomStanza::Answer {
            id,
            from,
            to,
            answer,
        } => {
            let mut el = Element::new(ns::CLIENT, "iq")
                .with_attr("type", "result")
                .with_attr("id", id)
                .with_attr("from", from.to_string())
                .with_attr("to", to.to_string());
            if let Some(payload) = answer_payload(&from, answer) {
                el = el.with_child(payload);
            }
            el.into()
        }
        RoomStanza::Iq { from, iq } => super::super::render_iq(&Jid::Full(from), iq),
        RoomStanza::VoiceRequest {
            from,
            to,
            nick,
            jid,
        } => muc_mediated::voice_request(&from, &to, &nick, &jid).into(),
        RoomStanza::Error(e) => {
            let to = e.to.to_string();
            // XEP-0045 §7.2.6: a refused entry names the protocol, which is how clients tell it from other errors.
            let entry = matches!(e.about, ErrorAbout::Presence { .. });
            let mut out = super::super::addressed(CoreStanza::Error(e), &to, domain)?;
            if entry {
                out.element = out.element.with_child(Element::new(NS_MUC, "x"));
            }
            out
        }
    })
}

/// What a room message's children are made of: the same for every recipient of one broadcast.
struct SharedKey {
    message: Arc<Message>,
    from: Jid,
    delayed: Option<Timestamp>,
    occupant_id: Option<String>,
    codes: Vec<StatusCode>,
    private: bool,
}

/// A room message's children as serialized once, for the message they were made of.
struct Shared {
    /// Which message: the `Weak` keeps its allocation, so an equal pointer is the same (immutable) message.
    message: Weak<Message>,
    from: Jid,
    delayed: Option<Timestamp>,
    occupant_id: Option<String>,
    codes: Vec<StatusCode>,
    private: bool,
    children: String,
}

impl Shared {
    fn is(&self, key: &SharedKey) -> bool {
        std::ptr::eq(self.message.as_ptr(), Arc::as_ptr(&key.message))
            && self.from == key.from
            && self.delayed == key.delayed
            && self.occupant_id == key.occupant_id
            && self.codes == key.codes
            && self.private == key.private
    }
}

/// How many broadcasts each thread remembers: the deliveries of a few rooms' broadcasts interleave on one worker.
const SHARED_KEPT: usize = 4;

thread_local! {
    /// The children of the room messages this thread rendered last. A broadcast to n occupants is written by n
    /// connection tasks, which run on the runtime's few worker threads: each thread serializes a message's
    /// children once rather than once per recipient.
    static SHARED: RefCell<(Vec<Shared>, usize)> = const { RefCell::new((Vec::new(), 0)) };
}

/// The serialized children of a room message (everything inside `<message/>`, its opaque extensions last), as
/// the recipient's stream writes them (`jabber:client` the default namespace).
fn shared_children(key: SharedKey) -> String {
    SHARED.with(|shared| {
        let (kept, next) = &mut *shared.borrow_mut();
        if let Some(s) = kept.iter().find(|s| s.is(&key)) {
            return s.children.clone();
        }
        let children = serialize_children(&key);
        let entry = Shared {
            message: Arc::downgrade(&key.message),
            from: key.from,
            delayed: key.delayed,
            occupant_id: key.occupant_id,
            codes: key.codes,
            private: key.private,
            children: children.clone(),
        };
        if kept.len() < SHARED_KEPT {
            kept.push(entry);
        } else {
            kept[*next] = entry;
            *next = (*next + 1) % SHARED_KEPT;
        }
        children
    })
}

fn serialize_children(key: &SharedKey) -> String {
    let room = key.from.bare();
    let message = &key.message;
    let mut children = Vec::new();
    for (name, value) in [
        ("subject", &message.subject),
        ("body", &message.body),
        ("thread", &message.thread),
    ] {
        if let Some(v) = value {
            children.push(Element::new(ns::CLIENT, name).with_text(v));
        }
    }
    if let Some(stamp) = key.delayed {
        // XEP-0045 §7.2.15: history is delayed by the room itself, which is how clients tell it apart.
        children.push(
            Element::new(NS_DELAY, "delay")
                .with_attr("from", room.as_str())
                .with_attr("stamp", super::super::format_stamp(stamp)),
        );
    }
    if key.private || !key.codes.is_empty() {
        let mut x = Element::new(NS_MUC_USER, "x");
        for c in &key.codes {
            x = x.with_child(status(*c));
        }
        children.push(x);
    }
    if let Some(id) = &key.occupant_id {
        children.push(Element::new(NS_OCCUPANT_ID, "occupant-id").with_attr("id", id));
    }
    // The room's archive id, given `by` the room (XEP-0313 §4.1.1), not by the recipient's archive.
    if let Some(id) = message.archive_id {
        children.push(
            Element::new(super::super::NS_STANZA_ID, "stanza-id")
                .with_attr("id", id.to_string())
                .with_attr("by", room.as_str()),
        );
    }
    let writer = StreamWriter::new(&StreamHeader::new(ns::CLIENT));
    let mut out = Vec::new();
    for child in &children {
        writer.write_element(child, &mut out);
    }
    for raw in &message.extensions {
        out.extend_from_slice(raw.as_bytes());
    }
    // The writer emits UTF-8 from UTF-8 input; lossy only as a guard that never loses anything here.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn status(code: StatusCode) -> Element {
    Element::new(NS_MUC_USER, "status").with_attr("code", code.code().to_string())
}

fn answer_payload(from: &Jid, answer: RoomAnswer) -> Option<Element> {
    match answer {
        RoomAnswer::Done => None,
        RoomAnswer::Config(config) => Some(muc_owner::config_form(from.bare(), &config)),
        RoomAnswer::Items(items) => Some(muc_admin::items(&items)),
        RoomAnswer::Info(info) => Some(room_info(&info)),
        RoomAnswer::Service => Some(service_info()),
        // Read and answered by the connection (`crate::archive::answer_room`); an empty result if one slips by.
        RoomAnswer::ArchiveRead(_) => None,
        RoomAnswer::Rooms(rooms) => {
            let mut q = Element::new(NS_DISCO_ITEMS, "query");
            for (jid, name) in rooms {
                let mut item = Element::new(NS_DISCO_ITEMS, "item").with_attr("jid", jid.as_str());
                if !name.is_empty() {
                    item = item.with_attr("name", name);
                }
                q = q.with_child(item);
            }
            Some(q)
        }
    }
}

fn identity(name: &str) -> Element {
    let mut id = Element::new(NS_DISCO_INFO, "identity")
        .with_attr("category", "conference")
        .with_attr("type", "text");
    if !name.is_empty() {
        id = id.with_attr("name", name);
    }
    id
}

fn features(q: Element, vars: &[&str]) -> Element {
    vars.iter().fold(q, |q, v| {
        q.with_child(Element::new(NS_DISCO_INFO, "feature").with_attr("var", *v))
    })
}

/// The service's disco#info (XEP-0045 §6.1).
fn service_info() -> Element {
    let q = Element::new(NS_DISCO_INFO, "query").with_child(identity("Chatrooms"));
    features(
        q,
        &[
            NS_MUC,
            NS_DISCO_INFO,
            NS_DISCO_ITEMS,
            ping::NS_PING,
            NS_OCCUPANT_ID,
        ],
    )
}

/// A room's disco#info (XEP-0045 §6.4): what it is, as features clients show.
fn room_info(info: &RoomInfo) -> Element {
    let pick = |on: bool, yes: &'static str, no: &'static str| if on { yes } else { no };
    let q = Element::new(NS_DISCO_INFO, "query").with_child(identity(&info.name));
    let archive: &[&str] = if info.archived {
        &[mam::NS_MAM, super::super::NS_STANZA_ID]
    } else {
        &[]
    };
    let q = features(
        q,
        &[
            NS_MUC,
            NS_OCCUPANT_ID,
            ping::NS_PING,
            pick(info.persistent, "muc_persistent", "muc_temporary"),
            pick(info.public, "muc_public", "muc_hidden"),
            pick(info.members_only, "muc_membersonly", "muc_open"),
            pick(info.moderated, "muc_moderated", "muc_unmoderated"),
            pick(
                info.password_protected,
                "muc_passwordprotected",
                "muc_unsecured",
            ),
            pick(info.non_anonymous, "muc_nonanonymous", "muc_semianonymous"),
        ],
    );
    features(q, archive).with_child(muc_owner::room_info_form(info))
}

/// Whether an IQ for the server's domain asks for its items, which list the room service.
pub(super) fn service_item(iq: &Iq<'_>) -> Option<Element> {
    iq.me.features.muc_domain().map(|d| {
        Element::new(NS_DISCO_ITEMS, "item")
            .with_attr("jid", d)
            .with_attr("name", "Chatrooms")
    })
}
