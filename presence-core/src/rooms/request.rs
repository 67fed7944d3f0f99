//! What a session asks of a room or of the room service (XEP-0045), as the shell read it.

use super::affiliation::{Affiliation, Role};
use super::config::ConfigChange;
use super::history::HistoryRequest;
use super::occupants::OccupantPresence;
use super::stanza::Destroyed;
use crate::jid::{BareJid, Jid};
use crate::message::Message;
use crate::stanza::RoutedIq;

/// What a joining client sent along (`<x xmlns='http://jabber.org/protocol/muc'/>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct JoinOptions {
    /// The room password.
    pub password: Option<String>,
    /// How much history it wants.
    pub history: HistoryRequest,
}

/// A role change of a muc#admin set (by nickname).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoleChange {
    /// Whose.
    pub nick: String,
    /// To what.
    pub role: Role,
    /// Why.
    pub reason: Option<String>,
}

/// Whose affiliation a muc#admin item changes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Affiliate {
    /// A user by real bare address.
    Jid(BareJid),
    /// The user behind an occupant, by nickname (XEP-0045 §9: clients often name whom they see in the room).
    Nick(String),
}

/// An affiliation change of a muc#admin set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AffiliationChange {
    /// Whose.
    pub who: Affiliate,
    /// To what.
    pub affiliation: Affiliation,
    /// Why.
    pub reason: Option<String>,
}

/// Something a message to the room asks the room to do rather than say (XEP-0045 §7.8, §7.13, §8.6).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Mediated {
    /// Invite these users (mediated invitations, §7.8.2): each gets a message from the room.
    Invite(Vec<Invite>),
    /// Decline an invitation (§7.8.3): the inviter gets a message from the room.
    Decline {
        /// The inviter.
        to: Jid,
        /// Why.
        reason: Option<String>,
    },
    /// A visitor asks for voice (the `muc#request` form, §7.13): the moderators get the approval form.
    RequestVoice,
    /// A moderator's answer to a voice request (the submitted approval form, §8.6).
    AnswerVoice {
        /// Whose request.
        nick: String,
        /// Granted or not.
        allow: bool,
    },
}

/// One invitee of a mediated invitation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Invite {
    /// The invitee (a user anywhere, possibly offline).
    pub to: Jid,
    /// Why.
    pub reason: Option<String>,
}

/// An IQ request to a room, the service, or an occupant address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RoomCall {
    /// XEP-0410 self-ping, to the requester's own occupant address.
    Ping,
    /// disco#info of the room or the service.
    Info,
    /// disco#items of the service (public rooms) or a room (nothing listed).
    Items,
    /// The occupants with a role (muc#admin get).
    GetRoles(Role),
    /// The users with an affiliation (muc#admin get).
    GetAffiliations(Affiliation),
    /// Role changes, all or none (muc#admin set).
    SetRoles(Vec<RoleChange>),
    /// Affiliation changes, all or none (muc#admin set).
    SetAffiliations(Vec<AffiliationChange>),
    /// The configuration form (muc#owner get).
    GetConfig,
    /// A submitted configuration (muc#owner set with a submit form; an empty one accepts the defaults and makes an
    /// "instant room").
    SetConfig(ConfigChange),
    /// The owner cancels the configuration form: a room still locked by its creation is destroyed (XEP-0045
    /// §10.1.3); otherwise nothing changes.
    CancelConfig,
    /// Destroys the room (muc#owner set with `<destroy/>`).
    Destroy(Destroyed),
    /// A query of the room's archive (XEP-0313 to the room): the room checks who may read it and hands the query
    /// back as [`super::RoomAnswer::ArchiveRead`].
    /// (Boxed: a query is large and rare, and every room request would otherwise carry its size.)
    ArchiveQuery(Box<super::archive::ArchiveRead>),
}

/// A session's stanza for the room service.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RoomRequest {
    /// Presence to `room/nick`: join, change what one shows, change nickname, or leave (`presence: None`).
    Presence {
        /// The nickname addressed.
        nick: String,
        /// Available with what it shows, or `None` for unavailable.
        presence: Option<OccupantPresence>,
        /// What the MUC element carried; entering does not need it (old clients leave it out).
        join: JoinOptions,
    },
    /// A message to the room (`nick: None`, must be groupchat) or to an occupant (private).
    Message {
        /// The occupant addressed, for a private message.
        nick: Option<String>,
        /// The message.
        message: Message,
    },
    /// A message to the room that asks it to do something ([`Mediated`]) rather than carries text.
    Mediated {
        /// The message's id, echoed in errors.
        id: Option<String>,
        /// What it asks.
        what: Mediated,
    },
    /// An IQ to an occupant (other than the requests the service answers itself, like self-ping), or an
    /// occupant's answer to one the room forwarded: routed between the two, opaque.
    OccupantIq {
        /// The occupant addressed (the answerer, for a request; the asker, for an answer).
        nick: String,
        /// The IQ (`to` is the occupant's room address).
        iq: RoutedIq,
    },
    /// An IQ request.
    Iq {
        /// Its id.
        id: String,
        /// The occupant addressed, if any.
        nick: Option<String>,
        /// What it asks.
        call: RoomCall,
    },
}
