//! What rooms send: their own stanza kind ([`RoomStanza`], delivered as `Stanza::Room`), so no shell can take room
//! traffic for a one-to-one message (a SIP shell ignores it: a room message never becomes a SIP MESSAGE).

use std::sync::Arc;

use super::affiliation::{Affiliation, Role};
use super::config::RoomConfig;
use super::occupants::OccupantPresence;
use crate::jid::{BareJid, FullJid, Jid};
use crate::message::Message;
use crate::stanza::{RoutedIq, StanzaError};
use crate::time::Timestamp;

/// The XEP-0045 status codes the service sends (§15.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatusCode {
    /// 100: real addresses are shown to everyone.
    NonAnonymous,
    /// 104: the configuration changed.
    ConfigChanged,
    /// 110: this presence is about you.
    SelfPresence,
    /// 170: the room is logged (archived).
    Logging,
    /// 171: the room is no longer logged.
    NotLogging,
    /// 201: a new room was created.
    Created,
    /// 210: the service changed your nickname.
    NickModified,
    /// 301: banned.
    Banned,
    /// 303: the nickname changed.
    NickChanged,
    /// 307: kicked.
    Kicked,
    /// 321: removed for a change of affiliation.
    AffiliationChanged,
    /// 322: removed because the room became members-only.
    MembersOnly,
    /// 332: removed because the service shuts down.
    Shutdown,
}

impl StatusCode {
    /// The number on the wire.
    pub fn code(self) -> u16 {
        match self {
            StatusCode::NonAnonymous => 100,
            StatusCode::ConfigChanged => 104,
            StatusCode::SelfPresence => 110,
            StatusCode::Logging => 170,
            StatusCode::NotLogging => 171,
            StatusCode::Created => 201,
            StatusCode::NickModified => 210,
            StatusCode::Banned => 301,
            StatusCode::NickChanged => 303,
            StatusCode::Kicked => 307,
            StatusCode::AffiliationChanged => 321,
            StatusCode::MembersOnly => 322,
            StatusCode::Shutdown => 332,
        }
    }
}

/// An occupant or a user as a room describes them (XEP-0045 `<item/>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Item {
    /// Their affiliation.
    pub affiliation: Affiliation,
    /// Their role (`Role::None` when not in the room).
    pub role: Role,
    /// Their real address, where the recipient may see it.
    pub jid: Option<Jid>,
    /// Their nickname: the new one in a nickname change (303), theirs in lists.
    pub nick: Option<String>,
    /// Why it changed (a kick's or ban's reason).
    pub reason: Option<String>,
}

/// How a destroyed room says goodbye (XEP-0045 §10.9).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Destroyed {
    /// Why.
    pub reason: Option<String>,
    /// Where to go instead.
    pub alternate: Option<BareJid>,
    /// The alternate room's password.
    pub password: Option<String>,
}

/// The room's facts a disco#info answer lists (XEP-0045 §6.4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoomInfo {
    /// The name.
    pub name: String,
    /// The description.
    pub description: String,
    /// Persistent rather than temporary.
    pub persistent: bool,
    /// Public rather than hidden.
    pub public: bool,
    /// Members-only rather than open.
    pub members_only: bool,
    /// Moderated rather than unmoderated.
    pub moderated: bool,
    /// Password-protected rather than unsecured.
    pub password_protected: bool,
    /// Non-anonymous rather than semi-anonymous.
    pub non_anonymous: bool,
    /// How many are in it.
    pub occupants: usize,
    /// The subject.
    pub subject: Option<String>,
    /// Whether the room archives its messages (XEP-0313 on rooms).
    pub archived: bool,
}

/// The successful answer to a request to a room or to the service.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RoomAnswer {
    /// Done, nothing to return.
    Done,
    /// The room's configuration, for the owner's form.
    Config(RoomConfig),
    /// Users or occupants (an affiliation or role list).
    Items(Vec<Item>),
    /// What the room is (disco#info).
    Info(RoomInfo),
    /// The service's public rooms with their names (disco#items).
    Rooms(Vec<(BareJid, String)>),
    /// The service itself (disco#info).
    Service,
    /// The requester may read the room's archive: the shell reads this page from the store (never engine work)
    /// and answers the IQ with it.
    ArchiveRead(Box<super::archive::ArchiveRead>),
}

/// Something a room or the room service sends to an occupant's (or requester's) real session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RoomStanza {
    /// An occupant's presence in the room (`from` is `room/nick`).
    Presence {
        /// The occupant's room address.
        from: FullJid,
        /// The recipient's real address.
        to: FullJid,
        /// Available with what it shows, or `None` for unavailable.
        presence: Option<OccupantPresence>,
        /// Affiliation, role and what the recipient may know.
        item: Item,
        /// Status codes, sorted.
        codes: Vec<StatusCode>,
        /// Set when the room was destroyed.
        destroyed: Option<Destroyed>,
        /// The occupant's XEP-0421 id.
        occupant_id: String,
    },
    /// A message from the room (`from` bare: the room itself) or an occupant (`from` is `room/nick`).
    Message {
        /// The room or occupant address.
        from: Jid,
        /// The recipient's real address.
        to: FullJid,
        /// The message, shared by every recipient of one broadcast: only the envelope (`to`) differs, so a
        /// room of n occupants holds one copy of the text rather than n.
        message: Arc<Message>,
        /// Set for history: when the room got it (XEP-0203, from the room).
        delayed: Option<Timestamp>,
        /// The sender's XEP-0421 id (none for the room's own messages).
        occupant_id: Option<String>,
        /// Status codes for a message from the room itself (104 …).
        codes: Vec<StatusCode>,
        /// A private message between occupants (marked with an empty `muc#user` element).
        private: bool,
    },
    /// The answer to a request.
    Answer {
        /// The request's id.
        id: String,
        /// The room or service address it was sent to.
        from: Jid,
        /// The requester.
        to: FullJid,
        /// What it returns.
        answer: RoomAnswer,
    },
    /// An IQ between occupants, forwarded (a request under the room's id, or the answer under the asker's).
    Iq {
        /// The other occupant's room address.
        from: FullJid,
        /// The IQ, `to` the recipient's real address.
        iq: RoutedIq,
    },
    /// A visitor's voice request, for a moderator to approve (XEP-0045 §8.6: the `muc#request` form).
    VoiceRequest {
        /// The room.
        from: BareJid,
        /// The moderator's real address.
        to: FullJid,
        /// The visitor's nickname.
        nick: String,
        /// The visitor's real address (moderators see it in any room).
        jid: FullJid,
    },
    /// An error from the room about something the session sent it.
    Error(StanzaError),
}

impl RoomStanza {
    /// Whom it is for: the bare part of a session's real address.
    pub fn addressee(&self) -> &BareJid {
        match self {
            RoomStanza::Presence { to, .. }
            | RoomStanza::Message { to, .. }
            | RoomStanza::Answer { to, .. }
            | RoomStanza::VoiceRequest { to, .. } => to.bare(),
            RoomStanza::Iq { iq, .. } => iq.to.bare(),
            RoomStanza::Error(e) => e.to.bare(),
        }
    }

    /// The session it is for, by full address; `None` for an error about something sent without one.
    pub fn addressee_session(&self) -> Option<&FullJid> {
        match self {
            RoomStanza::Presence { to, .. }
            | RoomStanza::Message { to, .. }
            | RoomStanza::Answer { to, .. }
            | RoomStanza::VoiceRequest { to, .. } => Some(to),
            RoomStanza::Iq {
                iq: RoutedIq {
                    to: Jid::Full(f), ..
                },
                ..
            }
            | RoomStanza::Error(StanzaError {
                to: Jid::Full(f), ..
            }) => Some(f),
            RoomStanza::Iq { .. } | RoomStanza::Error(_) => None,
        }
    }

    /// About how many bytes it takes while queued.
    pub fn weight(&self) -> usize {
        match self {
            RoomStanza::Presence { presence, .. } => presence
                .as_ref()
                .and_then(|p| p.status.as_ref())
                .map_or(0, String::len),
            RoomStanza::Message { message, .. } => {
                message.body.as_ref().map_or(0, String::len)
                    + message.subject.as_ref().map_or(0, String::len)
                    + message.extensions.iter().map(String::len).sum::<usize>()
            }
            RoomStanza::Answer { answer, .. } => match answer {
                RoomAnswer::Items(i) => i.len() * 96,
                RoomAnswer::Rooms(r) => r.len() * 96,
                _ => 512,
            },
            RoomStanza::Error(e) => e.text.as_ref().map_or(0, String::len),
            RoomStanza::VoiceRequest { nick, .. } => 256 + nick.len(),
            RoomStanza::Iq { iq, .. } => iq.payload.iter().map(String::len).sum(),
        }
    }
}
