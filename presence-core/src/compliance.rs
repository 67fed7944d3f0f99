//! Compliance archiving (the source product's "message archiver"): one record per message the server accepted,
//! for an external archive that auditors read, as opposed to the users' own archives ([`crate::archive`]).
//!
//! The engine decides what is archived and emits each record as [`Output::Comply`](crate::Output::Comply) when
//! [`EngineConfig::compliance`](crate::EngineConfig::compliance) is on; the runtime (or any shell) writes it. A
//! record is emitted once per message per cluster, at the point where the server takes responsibility for it:
//!
//! - a message for a local user, once the recipient's policy accepted it and it is delivered or held offline (on
//!   the recipient's node; a message refused, or bounced because nobody can take or hold it, is not archived);
//! - a message a local user sends to another domain (a component, a federated peer), when it is routed out;
//! - a room message, by the room code through the same hook, with the room and the occupants it went to.
//!
//! What is archived ([`archived`]): chat, normal and groupchat messages with a body. Error messages are the
//! server's or a peer's answers, not communication; headlines are alerts that are never stored anywhere; a
//! message without a body (chat states, receipts, markers, a subject change) carries no content to keep.

use crate::jid::{BareJid, Jid};
use crate::message::{Message, MessageKind};
use crate::time::Timestamp;

/// One archived message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Who sent it: the sender's full address for a local session (a room message's real sender, not the
    /// room's occupant address), as the message came for one from another domain or node.
    pub sender: Jid,
    /// Whom it was for: the address it was sent to for a 1:1 message; the real addresses of the occupants it
    /// went to for a room message.
    pub recipients: Vec<Jid>,
    /// The room, for a room message.
    pub room: Option<BareJid>,
    /// When the server received it (the message's stamp, which is also its XEP-0203 delay stamp).
    pub stamp: Timestamp,
    /// The sender's stanza id, if it gave one.
    pub id: Option<String>,
    /// The message type: chat, normal or groupchat.
    pub kind: MessageKind,
    /// The text.
    pub body: String,
}

/// Whether a message is compliance-archived: a chat, normal or groupchat message with a body.
pub fn archived(message: &Message) -> bool {
    matches!(
        message.kind,
        MessageKind::Chat | MessageKind::Normal | MessageKind::Groupchat
    ) && message.body.is_some()
}

impl Record {
    /// The record of `message`, or `None` when it is not archived.
    pub fn of(
        sender: &Jid,
        recipients: Vec<Jid>,
        room: Option<&BareJid>,
        message: &Message,
    ) -> Option<Record> {
        if !archived(message) {
            return None;
        }
        Some(Record {
            sender: sender.clone(),
            recipients,
            room: room.cloned(),
            stamp: message.stamp,
            id: message.id.clone(),
            kind: message.kind,
            body: message.body.clone()?,
        })
    }
}

/// The name of a message type as archived (`chat`, `normal`, `groupchat`, RFC 6121's names).
pub fn kind_name(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Chat => "chat",
        MessageKind::Normal => "normal",
        MessageKind::Headline => "headline",
        MessageKind::Groupchat => "groupchat",
        MessageKind::Error => "error",
    }
}
