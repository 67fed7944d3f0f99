//! A protocol-neutral instant message.

use crate::time::Timestamp;

/// The type of a message (RFC 6121 §5.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MessageKind {
    /// One-to-one chat.
    Chat,
    /// A standalone message (the default).
    #[default]
    Normal,
    /// An alert; never stored offline.
    Headline,
    /// A group chat message; never routed to a bare user address.
    Groupchat,
    /// An error reply; never answered with another error.
    Error,
}

impl MessageKind {
    /// Whether messages of this kind are kept offline when nobody can take them (XEP-0160 §3: chat and normal).
    pub fn storable(self) -> bool {
        matches!(self, MessageKind::Chat | MessageKind::Normal)
    }
}

/// An instant message as the engine routes, forks and stores it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Message {
    /// The sender's stanza id, echoed in errors.
    pub id: Option<String>,
    /// The type.
    pub kind: MessageKind,
    /// The text.
    pub body: Option<String>,
    /// The subject line.
    pub subject: Option<String>,
    /// The conversation thread id.
    pub thread: Option<String>,
    /// When the message reached the server (stamped by the shell); shown as the delay stamp when delivered late.
    pub stamp: Timestamp,
    /// Protocol extension payloads, opaque to the engine (for XMPP, serialized child elements), passed through and
    /// stored with the message.
    pub extensions: Vec<String>,
}
